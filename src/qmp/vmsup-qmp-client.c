/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QMP client: greeting, capabilities negotiation, then commands matched to
 * replies by id, several in flight, and events as a detailed signal.
 */

#include "config.h"

#include <gio/gunixsocketaddress.h>

#include "vmsup-line-stream.h"
#include "vmsup-json.h"
#include "vmsup-qmp-client.h"

#define VMSUP_QMP_DEFAULT_TIMEOUT_MS 10000
#define VMSUP_QMP_MAX_PENDING 64
/* the socket is normally listening before we connect; this only covers a slow bind */
#define VMSUP_QMP_CONNECT_ATTEMPTS 15
#define VMSUP_QMP_CONNECT_DELAY_MS 10
#define VMSUP_QMP_CONNECT_DELAY_MAX_MS 200

typedef enum {
	VMSUP_QMP_STATE_DISCONNECTED,
	VMSUP_QMP_STATE_GREETING,
	VMSUP_QMP_STATE_CAPABILITIES,
	VMSUP_QMP_STATE_READY,
	VMSUP_QMP_STATE_CLOSED,
} VmsupQmpState;

struct _VmsupQmpClient {
	GObject parent_instance;
	gchar *label; /* owned */
	VmsupQmpState state;
	VmsupLineStream *stream; /* owned */
	GHashTable *pending;     /* id (owned by the call) -> GTask (owned) */
	guint64 next_id;
	guint timeout_ms;
	JsonObject *greeting;       /* owned */
	GTask *handshake;           /* owned, until READY */
	GSource *handshake_timeout; /* owned */
	GSource *handshake_cancel;  /* owned */
	gboolean quit_sent;
};

G_DEFINE_FINAL_TYPE(VmsupQmpClient, vmsup_qmp_client, G_TYPE_OBJECT)

enum { SIGNAL_EVENT, SIGNAL_CLOSED, N_SIGNALS };
static guint signals[N_SIGNALS] = {0};

/* one command in flight, the task data of its GTask */
typedef struct {
	gchar *id;      /* owned */
	gchar *command; /* owned */
	guint timeout_ms;
	GSource *timeout_source; /* owned */
	GSource *cancel_source;  /* owned */
} VmsupQmpCall;

typedef struct {
	gchar *socket_path; /* owned */
	guint attempts;
	GSource *retry_source; /* owned */
} VmsupQmpConnectData;

static void
vmsup_qmp_clear_source(GSource **source)
{
	if (*source == NULL)
		return;
	g_source_destroy(*source);
	g_clear_pointer(source, g_source_unref);
}

static void
vmsup_qmp_call_free(VmsupQmpCall *call)
{
	vmsup_qmp_clear_source(&call->timeout_source);
	vmsup_qmp_clear_source(&call->cancel_source);
	g_free(call->id);
	g_free(call->command);
	g_free(call);
}

static void
vmsup_qmp_connect_data_free(VmsupQmpConnectData *data)
{
	vmsup_qmp_clear_source(&data->retry_source);
	g_free(data->socket_path);
	g_free(data);
}

static GSource *
vmsup_qmp_attach_source(GSource *source, GSourceFunc func, gpointer data, GDestroyNotify notify)
{
	g_source_set_callback(source, func, data, notify);
	g_source_attach(source, g_main_context_get_thread_default());
	return source;
}

/* removes the call @id from the pending table; the caller completes the returned task */
static GTask *
vmsup_qmp_client_take_call(VmsupQmpClient *self, const gchar *id)
{
	gpointer key = NULL;
	gpointer task = NULL;
	VmsupQmpCall *call;

	if (!g_hash_table_steal_extended(self->pending, id, &key, &task))
		return NULL;
	call = g_task_get_task_data(task);
	vmsup_qmp_clear_source(&call->timeout_source);
	vmsup_qmp_clear_source(&call->cancel_source);
	return task;
}

static GError *
vmsup_qmp_client_closed_error(VmsupQmpClient *self, gint code, const gchar *detail)
{
	return g_error_new(VMSUP_ERROR,
			   code,
			   "QMP connection to '%s' closed: %s",
			   self->label,
			   detail);
}

static void
vmsup_qmp_client_end_handshake(VmsupQmpClient *self, GError *error)
{
	g_autoptr(GTask) task = g_steal_pointer(&self->handshake);

	vmsup_qmp_clear_source(&self->handshake_timeout);
	vmsup_qmp_clear_source(&self->handshake_cancel);
	if (task == NULL) {
		g_clear_error(&error);
		return;
	}
	if (error != NULL)
		g_task_return_error(task, error);
	else
		g_task_return_boolean(task, TRUE);
}

/*
 * Ends the connection. @error says why (VMSUP_ERROR_CLOSED or _PROTOCOL)
 * or is NULL when the end was asked for: vmsup_qmp_client_close(), or end of
 * stream after `quit`. Every pending command fails, except a `quit`.
 */
static void
vmsup_qmp_client_teardown(VmsupQmpClient *self, const GError *error, gboolean emit)
{
	g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(GError) error_pending = NULL;
	GHashTableIter iter;
	gpointer task;

	if (self->state == VMSUP_QMP_STATE_CLOSED)
		return;
	g_object_ref(self);
	self->state = VMSUP_QMP_STATE_CLOSED;
	if (self->stream != NULL) {
		g_signal_handlers_disconnect_by_data(self->stream, self);
		vmsup_line_stream_close(self->stream);
		g_clear_object(&self->stream);
	}

	if (error != NULL)
		error_pending = g_error_copy(error);
	else if (self->quit_sent)
		error_pending =
		    vmsup_qmp_client_closed_error(self, VMSUP_ERROR_CLOSED, "QEMU quit");
	else
		error_pending =
		    vmsup_qmp_client_closed_error(self, VMSUP_ERROR_CLOSED, "closed by client");
	vmsup_qmp_client_end_handshake(self, g_error_copy(error_pending));

	/* completing a task runs user code that may call back into us: collect first */
	g_hash_table_iter_init(&iter, self->pending);
	while (g_hash_table_iter_next(&iter, NULL, &task)) {
		VmsupQmpCall *call = g_task_get_task_data(task);
		vmsup_qmp_clear_source(&call->timeout_source);
		vmsup_qmp_clear_source(&call->cancel_source);
		g_ptr_array_add(tasks, task);
		g_hash_table_iter_steal(&iter);
	}
	for (guint i = 0; i < tasks->len; i++) {
		GTask *t = g_ptr_array_index(tasks, i);
		VmsupQmpCall *call = g_task_get_task_data(t);
		/* quit races EOF: the connection ending is its success */
		if (g_strcmp0(call->command, "quit") == 0 &&
		    g_error_matches(error_pending, VMSUP_ERROR, VMSUP_ERROR_CLOSED))
			g_task_return_pointer(t,
					      vmsup_json_node_new_object(json_object_new()),
					      (GDestroyNotify)json_node_unref);
		else
			g_task_return_error(t, g_error_copy(error_pending));
	}

	if (emit)
		g_signal_emit(self, signals[SIGNAL_CLOSED], 0, error);
	g_object_unref(self);
}

static void
vmsup_qmp_client_fail(VmsupQmpClient *self, gint code, const gchar *detail)
{
	g_autoptr(GError) error = vmsup_qmp_client_closed_error(self, code, detail);
	vmsup_qmp_client_teardown(self, error, TRUE);
}

static gboolean
vmsup_qmp_call_timeout_cb(gpointer user_data)
{
	GTask *task = user_data;
	VmsupQmpCall *call = g_task_get_task_data(task);
	VmsupQmpClient *self = g_task_get_source_object(task);
	g_autoptr(GTask) owned = vmsup_qmp_client_take_call(self, call->id);

	g_debug("%s: no reply to '%s' (%s) in time", self->label, call->command, call->id);
	g_task_return_new_error(owned,
				VMSUP_ERROR,
				VMSUP_ERROR_TIMEOUT,
				"no reply to '%s' from '%s' within %u ms",
				call->command,
				self->label,
				call->timeout_ms);
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_qmp_call_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	GTask *task = user_data;
	VmsupQmpCall *call = g_task_get_task_data(task);
	VmsupQmpClient *self = g_task_get_source_object(task);
	g_autoptr(GTask) owned = vmsup_qmp_client_take_call(self, call->id);

	/* a reply that comes later has an unknown id and is dropped */
	g_task_return_error_if_cancelled(owned);
	return G_SOURCE_REMOVE;
}

static void
vmsup_qmp_client_send_command(VmsupQmpClient *self,
			      const gchar *command,
			      JsonObject *arguments,
			      guint timeout_ms,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autoptr(JsonObject) message = json_object_new();
	VmsupQmpCall *call;

	g_task_set_source_tag(task, vmsup_qmp_client_execute_async);
	if (self->state == VMSUP_QMP_STATE_CLOSED) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_CLOSED,
					"%s: QMP connection to '%s' is closed",
					command,
					self->label);
		return;
	}
	if (g_hash_table_size(self->pending) >= VMSUP_QMP_MAX_PENDING) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_BUSY,
					"%s: too many QMP commands in flight to '%s' (%u)",
					command,
					self->label,
					(guint)VMSUP_QMP_MAX_PENDING);
		return;
	}
	if (g_task_return_error_if_cancelled(task))
		return;

	call = g_new0(VmsupQmpCall, 1);
	call->id = g_strdup_printf("vmsup-%" G_GUINT64_FORMAT, ++self->next_id);
	call->command = g_strdup(command);
	call->timeout_ms = timeout_ms;
	g_task_set_task_data(task, call, (GDestroyNotify)vmsup_qmp_call_free);
	if (timeout_ms > 0)
		call->timeout_source = vmsup_qmp_attach_source(g_timeout_source_new(timeout_ms),
							       vmsup_qmp_call_timeout_cb,
							       task,
							       NULL);
	if (cancellable != NULL)
		call->cancel_source =
		    vmsup_qmp_attach_source(g_cancellable_source_new(cancellable),
					    G_SOURCE_FUNC(vmsup_qmp_call_cancelled_cb),
					    task,
					    NULL);

	json_object_set_string_member(message, "execute", command);
	if (arguments != NULL)
		json_object_set_object_member(message, "arguments", json_object_ref(arguments));
	json_object_set_string_member(message, "id", call->id);
	if (g_strcmp0(command, "quit") == 0)
		self->quit_sent = TRUE;
	g_hash_table_insert(self->pending, call->id, g_steal_pointer(&task));
	vmsup_line_stream_send(self->stream, message);
}

static void
vmsup_qmp_client_handle_reply(VmsupQmpClient *self, JsonObject *message)
{
	const gchar *id = vmsup_json_object_get_string(message, "id", NULL);
	g_autoptr(GTask) task = NULL;
	VmsupQmpCall *call;

	if (id == NULL) {
		g_debug("%s: reply without an id, dropped", self->label);
		return;
	}
	task = vmsup_qmp_client_take_call(self, id);
	if (task == NULL) {
		g_debug("%s: reply to unknown id '%s', dropped", self->label, id);
		return;
	}
	call = g_task_get_task_data(task);
	if (json_object_has_member(message, "error")) {
		g_task_return_error(
		    task,
		    vmsup_error_new_from_qemu(call->command,
					      json_object_get_member(message, "error")));
		return;
	}
	g_task_return_pointer(task,
			      json_node_copy(json_object_get_member(message, "return")),
			      (GDestroyNotify)json_node_unref);
}

static void
vmsup_qmp_client_handle_event(VmsupQmpClient *self, JsonObject *message)
{
	const gchar *name = vmsup_json_object_get_string(message, "event", NULL);
	JsonObject *data = NULL;
	JsonObject *timestamp = NULL;
	gint64 timestamp_us = -1;

	if (name == NULL) {
		g_debug("%s: event without a name, dropped", self->label);
		return;
	}
	if (json_object_has_member(message, "data") &&
	    JSON_NODE_HOLDS_OBJECT(json_object_get_member(message, "data")))
		data = json_object_get_object_member(message, "data");
	if (json_object_has_member(message, "timestamp") &&
	    JSON_NODE_HOLDS_OBJECT(json_object_get_member(message, "timestamp"))) {
		timestamp = json_object_get_object_member(message, "timestamp");
		timestamp_us = vmsup_json_object_get_int(timestamp, "seconds", 0) * G_USEC_PER_SEC +
			       vmsup_json_object_get_int(timestamp, "microseconds", 0);
	}
	/* nobody can be connected to a detail whose quark does not exist yet */
	g_signal_emit(self,
		      signals[SIGNAL_EVENT],
		      g_quark_try_string(name),
		      name,
		      data,
		      timestamp_us);
}

static void
vmsup_qmp_client_capabilities_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupQmpClient *self = VMSUP_QMP_CLIENT(source);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = vmsup_qmp_client_execute_finish(self, res, &error);

	if (self->handshake == NULL)
		return;
	if (ret == NULL) {
		g_autoptr(GError) error_closed =
		    vmsup_qmp_client_closed_error(self, VMSUP_ERROR_PROTOCOL, error->message);
		vmsup_qmp_client_teardown(self, error_closed, TRUE);
		return;
	}
	self->state = VMSUP_QMP_STATE_READY;
	vmsup_qmp_client_end_handshake(self, NULL);
}

static void
vmsup_qmp_client_handle_greeting(VmsupQmpClient *self, JsonObject *message)
{
	JsonNode *qmp = json_object_get_member(message, "QMP");

	if (qmp == NULL || !JSON_NODE_HOLDS_OBJECT(qmp)) {
		vmsup_qmp_client_fail(self,
				      VMSUP_ERROR_PROTOCOL,
				      "expected the QMP greeting, got something else");
		return;
	}
	self->greeting = json_object_ref(json_node_get_object(qmp));
	self->state = VMSUP_QMP_STATE_CAPABILITIES;
	vmsup_qmp_client_send_command(self,
				      "qmp_capabilities",
				      NULL,
				      self->timeout_ms,
				      NULL,
				      vmsup_qmp_client_capabilities_cb,
				      NULL);
}

static void
vmsup_qmp_client_message_cb(VmsupLineStream *stream, JsonObject *message, gpointer user_data)
{
	VmsupQmpClient *self = VMSUP_QMP_CLIENT(user_data);

	if (self->state == VMSUP_QMP_STATE_GREETING) {
		vmsup_qmp_client_handle_greeting(self, message);
		return;
	}
	if (json_object_has_member(message, "event")) {
		vmsup_qmp_client_handle_event(self, message);
		return;
	}
	if (json_object_has_member(message, "return") || json_object_has_member(message, "error")) {
		vmsup_qmp_client_handle_reply(self, message);
		return;
	}
	g_debug("%s: unexpected message, dropped", self->label);
}

static void
vmsup_qmp_client_invalid_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	VmsupQmpClient *self = VMSUP_QMP_CLIENT(user_data);
	vmsup_qmp_client_fail(self, VMSUP_ERROR_PROTOCOL, error->message);
}

static void
vmsup_qmp_client_stream_closed_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	VmsupQmpClient *self = VMSUP_QMP_CLIENT(user_data);

	/* QEMU reads a byte at a time and quits with our "\r\n" unread: expect a reset */
	if (self->quit_sent &&
	    (error == NULL || g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED))) {
		vmsup_qmp_client_teardown(self, NULL, TRUE);
		return;
	}
	if (error != NULL) {
		vmsup_qmp_client_fail(self, error->code, error->message);
		return;
	}
	vmsup_qmp_client_fail(self, VMSUP_ERROR_CLOSED, "end of stream");
}

static gboolean
vmsup_qmp_client_handshake_timeout_cb(gpointer user_data)
{
	VmsupQmpClient *self = VMSUP_QMP_CLIENT(user_data);
	g_autofree gchar *detail =
	    g_strdup_printf("no QMP handshake within %u ms", self->timeout_ms);
	g_autoptr(GError) error = NULL;

	g_clear_pointer(&self->handshake_timeout, g_source_unref);
	error = g_error_new(VMSUP_ERROR,
			    VMSUP_ERROR_TIMEOUT,
			    "QMP connection to '%s' closed: %s",
			    self->label,
			    detail);
	vmsup_qmp_client_teardown(self, error, TRUE);
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_qmp_client_handshake_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	VmsupQmpClient *self = VMSUP_QMP_CLIENT(user_data);
	g_autoptr(GError) error = NULL;

	g_clear_pointer(&self->handshake_cancel, g_source_unref);
	g_cancellable_set_error_if_cancelled(cancellable, &error);
	vmsup_qmp_client_teardown(self, error, TRUE);
	return G_SOURCE_REMOVE;
}

void
vmsup_qmp_client_set_timeout(VmsupQmpClient *self, guint timeout_ms)
{
	g_return_if_fail(VMSUP_IS_QMP_CLIENT(self));
	self->timeout_ms = timeout_ms;
}

void
vmsup_qmp_client_handshake_async(VmsupQmpClient *self,
				 GIOStream *stream,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(VMSUP_IS_QMP_CLIENT(self));
	g_return_if_fail(G_IS_IO_STREAM(stream));
	g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qmp_client_handshake_async);
	if (self->state != VMSUP_QMP_STATE_DISCONNECTED) {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_CLOSED,
		    "QMP client for '%s' is %s",
		    self->label,
		    self->state == VMSUP_QMP_STATE_CLOSED ? "closed" : "already connected");
		return;
	}
	if (g_task_return_error_if_cancelled(task))
		return;

	self->stream = vmsup_line_stream_new(stream, self->label, VMSUP_LINE_STREAM_CRLF);
	/* QEMU prints uint64 values beyond int64 (UINT64_MAX for "none") */
	vmsup_line_stream_set_json_flags(self->stream, VMSUP_JSON_CHECK_WIDE_INTEGERS);
	g_signal_connect(self->stream, "message", G_CALLBACK(vmsup_qmp_client_message_cb), self);
	g_signal_connect(self->stream, "invalid", G_CALLBACK(vmsup_qmp_client_invalid_cb), self);
	g_signal_connect(self->stream,
			 "closed",
			 G_CALLBACK(vmsup_qmp_client_stream_closed_cb),
			 self);
	self->state = VMSUP_QMP_STATE_GREETING;
	self->handshake = g_steal_pointer(&task);
	if (self->timeout_ms > 0)
		self->handshake_timeout =
		    vmsup_qmp_attach_source(g_timeout_source_new(self->timeout_ms),
					    vmsup_qmp_client_handshake_timeout_cb,
					    self,
					    NULL);
	if (cancellable != NULL)
		self->handshake_cancel =
		    vmsup_qmp_attach_source(g_cancellable_source_new(cancellable),
					    G_SOURCE_FUNC(vmsup_qmp_client_handshake_cancelled_cb),
					    self,
					    NULL);
	vmsup_line_stream_start(self->stream);
}

gboolean
vmsup_qmp_client_handshake_finish(VmsupQmpClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
vmsup_qmp_client_connect_attempt(GTask *task);

static void
vmsup_qmp_client_connect_handshake_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	g_autoptr(GError) error = NULL;

	if (!vmsup_qmp_client_handshake_finish(VMSUP_QMP_CLIENT(source), res, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static gboolean
vmsup_qmp_client_connect_retry_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	VmsupQmpConnectData *data = g_task_get_task_data(task);

	g_clear_pointer(&data->retry_source, g_source_unref);
	vmsup_qmp_client_connect_attempt(g_object_ref(task));
	return G_SOURCE_REMOVE;
}

static void
vmsup_qmp_client_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupQmpClient *self = g_task_get_source_object(task);
	VmsupQmpConnectData *data = g_task_get_task_data(task);
	g_autoptr(GSocketConnection) connection = NULL;
	g_autoptr(GError) error = NULL;

	connection = g_socket_client_connect_finish(G_SOCKET_CLIENT(source), res, &error);
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (connection == NULL) {
		if ((g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
		     g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)) &&
		    data->attempts < VMSUP_QMP_CONNECT_ATTEMPTS &&
		    self->state == VMSUP_QMP_STATE_DISCONNECTED) {
			guint delay = MIN(VMSUP_QMP_CONNECT_DELAY_MS << data->attempts,
					  VMSUP_QMP_CONNECT_DELAY_MAX_MS);
			g_debug("%s: QMP socket not there yet (%s), retrying in %u ms",
				self->label,
				error->message,
				delay);
			data->retry_source =
			    vmsup_qmp_attach_source(g_timeout_source_new(delay),
						    vmsup_qmp_client_connect_retry_cb,
						    g_object_ref(task),
						    g_object_unref);
			return;
		}
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_CLOSED,
					"could not connect to the QMP socket '%s' of '%s': %s",
					data->socket_path,
					self->label,
					error->message);
		return;
	}
	{
		GCancellable *c = g_task_get_cancellable(task);
		vmsup_qmp_client_handshake_async(self,
						 G_IO_STREAM(connection),
						 c,
						 vmsup_qmp_client_connect_handshake_cb,
						 g_steal_pointer(&task));
	}
}

static void
vmsup_qmp_client_connect_attempt(GTask *task)
{
	VmsupQmpConnectData *data = g_task_get_task_data(task);
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(data->socket_path);

	data->attempts++;
	g_socket_client_set_enable_proxy(client, FALSE);
	g_socket_client_connect_async(client,
				      G_SOCKET_CONNECTABLE(address),
				      g_task_get_cancellable(task),
				      vmsup_qmp_client_connect_cb,
				      task);
}

void
vmsup_qmp_client_connect_async(VmsupQmpClient *self,
			       const gchar *socket_path,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	VmsupQmpConnectData *data;

	g_return_if_fail(VMSUP_IS_QMP_CLIENT(self));
	g_return_if_fail(socket_path != NULL);
	g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qmp_client_connect_async);
	data = g_new0(VmsupQmpConnectData, 1);
	data->socket_path = g_strdup(socket_path);
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_qmp_connect_data_free);
	vmsup_qmp_client_connect_attempt(g_steal_pointer(&task));
}

gboolean
vmsup_qmp_client_connect_finish(VmsupQmpClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

void
vmsup_qmp_client_execute_async(VmsupQmpClient *self,
			       const gchar *command,
			       JsonObject *arguments,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_QMP_CLIENT(self));
	vmsup_qmp_client_execute_with_timeout_async(self,
						    command,
						    arguments,
						    self->timeout_ms,
						    cancellable,
						    callback,
						    user_data);
}

void
vmsup_qmp_client_execute_with_timeout_async(VmsupQmpClient *self,
					    const gchar *command,
					    JsonObject *arguments,
					    guint timeout_ms,
					    GCancellable *cancellable,
					    GAsyncReadyCallback callback,
					    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(VMSUP_IS_QMP_CLIENT(self));
	g_return_if_fail(command != NULL);
	g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));

	if (self->state == VMSUP_QMP_STATE_READY || self->state == VMSUP_QMP_STATE_CLOSED) {
		vmsup_qmp_client_send_command(self,
					      command,
					      arguments,
					      timeout_ms,
					      cancellable,
					      callback,
					      user_data);
		return;
	}
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qmp_client_execute_async);
	g_task_return_new_error(task,
				VMSUP_ERROR,
				VMSUP_ERROR_NOT_READY,
				"%s: QMP connection to '%s' is not ready",
				command,
				self->label);
}

JsonNode *
vmsup_qmp_client_execute_finish(VmsupQmpClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

const gchar *
vmsup_qmp_client_get_label(VmsupQmpClient *self)
{
	g_return_val_if_fail(VMSUP_IS_QMP_CLIENT(self), NULL);
	return self->label;
}

gboolean
vmsup_qmp_client_send_fd(VmsupQmpClient *self, gint fd, GError **error)
{
	g_return_val_if_fail(VMSUP_IS_QMP_CLIENT(self), FALSE);

	if (self->state != VMSUP_QMP_STATE_READY || self->stream == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_CLOSED,
			    "QMP connection to '%s' is not ready",
			    self->label);
		return FALSE;
	}
	return vmsup_line_stream_send_fd(self->stream, fd, error);
}

gboolean
vmsup_qmp_client_is_ready(VmsupQmpClient *self)
{
	g_return_val_if_fail(VMSUP_IS_QMP_CLIENT(self), FALSE);
	return self->state == VMSUP_QMP_STATE_READY;
}

JsonObject *
vmsup_qmp_client_get_greeting(VmsupQmpClient *self)
{
	g_return_val_if_fail(VMSUP_IS_QMP_CLIENT(self), NULL);
	return self->greeting;
}

void
vmsup_qmp_client_close(VmsupQmpClient *self)
{
	g_return_if_fail(VMSUP_IS_QMP_CLIENT(self));
	vmsup_qmp_client_teardown(self, NULL, TRUE);
}

static void
vmsup_qmp_client_dispose(GObject *object)
{
	VmsupQmpClient *self = VMSUP_QMP_CLIENT(object);

	vmsup_qmp_client_teardown(self, NULL, FALSE);
	G_OBJECT_CLASS(vmsup_qmp_client_parent_class)->dispose(object);
}

static void
vmsup_qmp_client_finalize(GObject *object)
{
	VmsupQmpClient *self = VMSUP_QMP_CLIENT(object);

	g_hash_table_unref(self->pending);
	g_clear_pointer(&self->greeting, json_object_unref);
	g_free(self->label);
	G_OBJECT_CLASS(vmsup_qmp_client_parent_class)->finalize(object);
}

static void
vmsup_qmp_client_class_init(VmsupQmpClientClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = vmsup_qmp_client_dispose;
	object_class->finalize = vmsup_qmp_client_finalize;

	signals[SIGNAL_EVENT] = g_signal_new("event",
					     G_TYPE_FROM_CLASS(klass),
					     G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED,
					     0,
					     NULL,
					     NULL,
					     NULL,
					     G_TYPE_NONE,
					     3,
					     G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE,
					     JSON_TYPE_OBJECT | G_SIGNAL_TYPE_STATIC_SCOPE,
					     G_TYPE_INT64);
	signals[SIGNAL_CLOSED] = g_signal_new("closed",
					      G_TYPE_FROM_CLASS(klass),
					      G_SIGNAL_RUN_LAST,
					      0,
					      NULL,
					      NULL,
					      NULL,
					      G_TYPE_NONE,
					      1,
					      G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
vmsup_qmp_client_init(VmsupQmpClient *self)
{
	self->timeout_ms = VMSUP_QMP_DEFAULT_TIMEOUT_MS;
	self->pending = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_object_unref);
}

VmsupQmpClient *
vmsup_qmp_client_new(const gchar *label)
{
	VmsupQmpClient *self = g_object_new(VMSUP_TYPE_QMP_CLIENT, NULL);

	self->label = g_strdup(label != NULL ? label : "qemu");
	return self;
}
