/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Client of qemu-guest-agent: one command at a time over the virtio-serial
 * chardev socket, resynchronised with guest-sync-delimited whenever the
 * stream may be out of step (connect, a timeout, garbage).
 */

#include "config.h"

#include <gio/gunixsocketaddress.h>

#include "vmsup-line-stream.h"
#include "vmsup-json.h"
#include "vmsup-qga-client.h"

#define VMSUP_QGA_DEFAULT_TIMEOUT_MS 10000
/* a booting guest answers every queued sync at once; ids tell the latest apart */
#define VMSUP_QGA_SYNC_INTERVAL_MS 1000
#define VMSUP_QGA_MAX_QUEUE 64
#define VMSUP_QGA_CONNECT_ATTEMPTS 15
#define VMSUP_QGA_CONNECT_DELAY_MS 10
#define VMSUP_QGA_CONNECT_DELAY_MAX_MS 200
#define VMSUP_QGA_EXEC_POLL_FIRST_MS 50
#define VMSUP_QGA_EXEC_POLL_MAX_MS 1000
#define VMSUP_QGA_FILE_CHUNK 65536
#define VMSUP_QGA_FILE_MAX (64 * 1024 * 1024)
/* what vm.exec returns of each stream; the rest is dropped and said so */
#define VMSUP_QGA_EXEC_OUTPUT_MAX (1024 * 1024)
/*
 * QGA 7.2 keeps up to 16 MiB of each stream: base64 of both, and the JSON
 * around them, fit one line of this size. Read only while a request is in
 * flight, so a guest cannot make vmsupd hold it unasked.
 */
#define VMSUP_QGA_MAX_LINE (48 * 1024 * 1024)
/* how long a killed command is given before its status is collected */
#define VMSUP_QGA_EXEC_REAP_DELAY_MS 200

typedef enum {
	VMSUP_QGA_OP_CONNECT,
	VMSUP_QGA_OP_COMMAND,
} VmsupQgaOpKind;

/* the task data of a queued connect or command */
typedef struct {
	VmsupQgaOpKind kind;
	gchar *command;        /* owned, NULL for connect */
	JsonObject *arguments; /* owned, nullable */
	guint timeout_ms;
	gboolean no_reply;
	GSource *timeout_source; /* owned */
	GSource *cancel_source;  /* owned */
} VmsupQgaOp;

struct _VmsupQgaClient {
	GObject parent_instance;
	gchar *label;              /* owned */
	gchar *socket_path;        /* owned, NULL with a given stream */
	GIOStream *given_stream;   /* owned, until used */
	VmsupLineStream *stream;   /* owned */
	GQueue queue;              /* of GTask (owned): the head is being worked on */
	GTask *current;            /* owned: sent, waiting for its reply */
	GCancellable *cancellable; /* owned: connect attempts */
	GSource *connect_retry;    /* owned */
	guint connect_attempts;
	gboolean connecting;
	gboolean need_sync;
	gboolean syncing;
	gint64 sync_id;
	GSource *sync_retry; /* owned */
	gboolean paused;     /* the stream reads nothing: no request is in flight */
};

G_DEFINE_FINAL_TYPE(VmsupQgaClient, vmsup_qga_client, G_TYPE_OBJECT)

/* commands after which the agent sends nothing back */
static const gchar *const vmsup_qga_no_reply_commands[] = {
    "guest-shutdown",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
    NULL,
};

static void
vmsup_qga_client_process(VmsupQgaClient *self);

static void
vmsup_qga_clear_source(GSource **source)
{
	if (*source == NULL)
		return;
	g_source_destroy(*source);
	g_clear_pointer(source, g_source_unref);
}

static GSource *
vmsup_qga_attach_source(GSource *source, GSourceFunc func, gpointer data, GDestroyNotify notify)
{
	g_source_set_callback(source, func, data, notify);
	g_source_attach(source, g_main_context_get_thread_default());
	return source;
}

static void
vmsup_qga_op_free(VmsupQgaOp *op)
{
	vmsup_qga_clear_source(&op->timeout_source);
	vmsup_qga_clear_source(&op->cancel_source);
	g_free(op->command);
	g_clear_pointer(&op->arguments, json_object_unref);
	g_free(op);
}

static guint
vmsup_qga_timeout(guint timeout_ms)
{
	return timeout_ms > 0 ? timeout_ms : VMSUP_QGA_DEFAULT_TIMEOUT_MS;
}

/* detaches @task from the client (queue or in flight); the caller completes it */
static GTask *
vmsup_qga_client_take_op(VmsupQgaClient *self, GTask *task)
{
	VmsupQgaOp *op = g_task_get_task_data(task);

	vmsup_qga_clear_source(&op->timeout_source);
	vmsup_qga_clear_source(&op->cancel_source);
	if (self->current == task)
		return g_steal_pointer(&self->current);
	if (g_queue_remove(&self->queue, task))
		return task;
	return NULL;
}

static void
vmsup_qga_client_stop_sync(VmsupQgaClient *self)
{
	self->syncing = FALSE;
	vmsup_qga_clear_source(&self->sync_retry);
}

/* fails every queued and in-flight operation with a copy of @error */
static void
vmsup_qga_client_fail_all(VmsupQgaClient *self, const GError *error)
{
	g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func(g_object_unref);
	GTask *task;

	if (self->current != NULL)
		g_ptr_array_add(tasks, vmsup_qga_client_take_op(self, self->current));
	while ((task = g_queue_peek_head(&self->queue)) != NULL)
		g_ptr_array_add(tasks, vmsup_qga_client_take_op(self, task));
	for (guint i = 0; i < tasks->len; i++)
		g_task_return_error(g_ptr_array_index(tasks, i), g_error_copy(error));
}

static void
vmsup_qga_client_disconnect(VmsupQgaClient *self)
{
	vmsup_qga_client_stop_sync(self);
	self->need_sync = TRUE;
	if (self->stream == NULL)
		return;
	g_signal_handlers_disconnect_by_data(self->stream, self);
	vmsup_line_stream_close(self->stream);
	g_clear_object(&self->stream);
}

static void
vmsup_qga_client_send_sync(VmsupQgaClient *self)
{
	g_autoptr(JsonObject) message = json_object_new();
	JsonObject *args = json_object_new();
	gint64 id;

	do
		id = g_random_int_range(1, G_MAXINT32);
	while (id == self->sync_id);
	self->sync_id = id;
	json_object_set_int_member(args, "id", id);
	json_object_set_string_member(message, "execute", "guest-sync-delimited");
	json_object_set_object_member(message, "arguments", args);
	/* the leading 0xFF makes the agent drop any partial command it holds */
	vmsup_line_stream_discard_until_sentinel(self->stream);
	vmsup_line_stream_send_raw(self->stream, "\xff", 1);
	vmsup_line_stream_send(self->stream, message);
}

static gboolean
vmsup_qga_client_sync_retry_cb(gpointer user_data)
{
	VmsupQgaClient *self = VMSUP_QGA_CLIENT(user_data);
	g_debug("%s: no answer to sync yet, sending a new one", self->label);
	vmsup_qga_client_send_sync(self);
	return G_SOURCE_CONTINUE;
}

static void
vmsup_qga_client_start_sync(VmsupQgaClient *self)
{
	self->syncing = TRUE;
	vmsup_qga_client_send_sync(self);
	self->sync_retry = vmsup_qga_attach_source(g_timeout_source_new(VMSUP_QGA_SYNC_INTERVAL_MS),
						   vmsup_qga_client_sync_retry_cb,
						   self,
						   NULL);
}

static void
vmsup_qga_client_handle_sync_reply(VmsupQgaClient *self, JsonObject *message)
{
	JsonNode *ret = json_object_get_member(message, "return");

	if (ret != NULL && JSON_NODE_HOLDS_VALUE(ret) &&
	    json_node_get_value_type(ret) == G_TYPE_INT64 &&
	    json_node_get_int(ret) == self->sync_id) {
		g_debug("%s: synchronised", self->label);
		vmsup_qga_client_stop_sync(self);
		self->need_sync = FALSE;
		vmsup_qga_client_process(self);
		return;
	}
	g_debug("%s: stale reply while synchronising, dropped", self->label);
	vmsup_line_stream_discard_until_sentinel(self->stream);
}

static void
vmsup_qga_client_complete_current(VmsupQgaClient *self, JsonObject *message)
{
	g_autoptr(GTask) task = vmsup_qga_client_take_op(self, self->current);
	VmsupQgaOp *op = g_task_get_task_data(task);
	JsonNode *ret;

	if (json_object_has_member(message, "error")) {
		g_task_return_error(
		    task,
		    vmsup_error_new_from_qemu(op->command,
					      json_object_get_member(message, "error")));
		return;
	}
	ret = json_object_get_member(message, "return");
	g_task_return_pointer(task, json_node_copy(ret), (GDestroyNotify)json_node_unref);
}

static void
vmsup_qga_client_message_cb(VmsupLineStream *stream, JsonObject *message, gpointer user_data)
{
	VmsupQgaClient *self = VMSUP_QGA_CLIENT(user_data);

	if (self->syncing) {
		vmsup_qga_client_handle_sync_reply(self, message);
		return;
	}
	if (self->current != NULL && (json_object_has_member(message, "return") ||
				      json_object_has_member(message, "error"))) {
		vmsup_qga_client_complete_current(self, message);
		vmsup_qga_client_process(self);
		return;
	}
	/* nothing was asked: we are out of step with the agent */
	g_debug("%s: unexpected message, dropped", self->label);
	self->need_sync = TRUE;
}

static void
vmsup_qga_client_invalid_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	VmsupQgaClient *self = VMSUP_QGA_CLIENT(user_data);
	g_autoptr(GTask) task = NULL;
	VmsupQgaOp *op;

	if (self->syncing) {
		vmsup_line_stream_discard_until_sentinel(self->stream);
		return;
	}
	self->need_sync = TRUE;
	if (self->current == NULL)
		return;
	task = vmsup_qga_client_take_op(self, self->current);
	op = g_task_get_task_data(task);
	g_task_return_new_error(task,
				VMSUP_ERROR,
				VMSUP_ERROR_PROTOCOL,
				"%s: garbage from the guest agent of '%s': %s",
				op->command,
				self->label,
				error->message);
	vmsup_qga_client_process(self);
}

static void
vmsup_qga_client_stream_closed_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	VmsupQgaClient *self = VMSUP_QGA_CLIENT(user_data);
	g_autoptr(GError) error_closed =
	    g_error_new(VMSUP_ERROR,
			VMSUP_ERROR_CLOSED,
			"guest agent connection of '%s' closed: %s",
			self->label,
			error != NULL ? error->message : "end of stream");

	g_object_ref(self);
	vmsup_qga_client_disconnect(self);
	vmsup_qga_client_fail_all(self, error_closed);
	g_object_unref(self);
}

static void
vmsup_qga_client_attach(VmsupQgaClient *self, GIOStream *stream)
{
	self->stream = vmsup_line_stream_new(stream, self->label, VMSUP_LINE_STREAM_CRLF);
	/* QEMU prints uint64 values beyond int64 (UINT64_MAX for "none") */
	vmsup_line_stream_set_json_flags(self->stream, VMSUP_JSON_CHECK_WIDE_INTEGERS);
	vmsup_line_stream_set_max_line(self->stream, VMSUP_QGA_MAX_LINE);
	g_signal_connect(self->stream, "message", G_CALLBACK(vmsup_qga_client_message_cb), self);
	g_signal_connect(self->stream, "invalid", G_CALLBACK(vmsup_qga_client_invalid_cb), self);
	g_signal_connect(self->stream,
			 "closed",
			 G_CALLBACK(vmsup_qga_client_stream_closed_cb),
			 self);
	vmsup_line_stream_start(self->stream);
	self->need_sync = TRUE;
	self->paused = FALSE;
}

static void
vmsup_qga_client_connect_attempt(VmsupQgaClient *self);

static gboolean
vmsup_qga_client_connect_retry_cb(gpointer user_data)
{
	VmsupQgaClient *self = VMSUP_QGA_CLIENT(user_data);
	g_clear_pointer(&self->connect_retry, g_source_unref);
	vmsup_qga_client_connect_attempt(self);
	return G_SOURCE_REMOVE;
}

static void
vmsup_qga_client_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupQgaClient) self = user_data;
	g_autoptr(GSocketConnection) connection = NULL;
	g_autoptr(GError) error = NULL;

	connection = g_socket_client_connect_finish(G_SOCKET_CLIENT(source), res, &error);
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	if (connection == NULL) {
		g_autoptr(GError) error_connect = NULL;
		if ((g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
		     g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)) &&
		    self->connect_attempts < VMSUP_QGA_CONNECT_ATTEMPTS &&
		    !g_queue_is_empty(&self->queue)) {
			guint delay = MIN(VMSUP_QGA_CONNECT_DELAY_MS << self->connect_attempts,
					  VMSUP_QGA_CONNECT_DELAY_MAX_MS);
			self->connect_retry =
			    vmsup_qga_attach_source(g_timeout_source_new(delay),
						    vmsup_qga_client_connect_retry_cb,
						    self,
						    NULL);
			return;
		}
		self->connecting = FALSE;
		error_connect =
		    g_error_new(VMSUP_ERROR,
				VMSUP_ERROR_CLOSED,
				"could not connect to the guest agent socket '%s' of '%s': %s",
				self->socket_path,
				self->label,
				error->message);
		vmsup_qga_client_fail_all(self, error_connect);
		return;
	}

	self->connecting = FALSE;
	vmsup_qga_client_attach(self, G_IO_STREAM(connection));
	vmsup_qga_client_process(self);
}

static void
vmsup_qga_client_connect_attempt(VmsupQgaClient *self)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(self->socket_path);

	self->connect_attempts++;
	g_socket_client_set_enable_proxy(client, FALSE);
	g_socket_client_connect_async(client,
				      G_SOCKET_CONNECTABLE(address),
				      self->cancellable,
				      vmsup_qga_client_connect_cb,
				      g_object_ref(self));
}

/* takes @task, already out of the queue */
static void
vmsup_qga_client_send_op(VmsupQgaClient *self, GTask *task)
{
	VmsupQgaOp *op = g_task_get_task_data(task);
	g_autoptr(JsonObject) message = json_object_new();

	json_object_set_string_member(message, "execute", op->command);
	if (op->arguments != NULL)
		json_object_set_object_member(message, "arguments", json_object_ref(op->arguments));
	vmsup_line_stream_send(self->stream, message);
	if (op->no_reply) {
		/* an error reply would come unasked: resync before the next command */
		self->need_sync = TRUE;
		vmsup_qga_client_take_op(self, task);
		g_task_return_pointer(task,
				      json_node_new(JSON_NODE_NULL),
				      (GDestroyNotify)json_node_unref);
		g_object_unref(task);
		return;
	}
	self->current = task;
}

/*
 * The agent speaks only when spoken to: between requests nothing is read, so
 * a guest that floods its port fills the socket, not vmsupd's time. What it
 * sent meanwhile is skipped by a sync before the next request.
 */
static void
vmsup_qga_client_update_reading(VmsupQgaClient *self)
{
	gboolean wanted = self->syncing || self->current != NULL;

	if (self->stream == NULL || vmsup_line_stream_is_closed(self->stream))
		return;
	if (wanted && self->paused) {
		self->paused = FALSE;
		if (!self->syncing && vmsup_line_stream_has_pending_input(self->stream))
			g_debug("%s: the agent sent something unasked, resynchronising",
				self->label);
		vmsup_line_stream_set_paused(self->stream, FALSE);
	} else if (!wanted && !self->paused) {
		self->paused = TRUE;
		vmsup_line_stream_set_paused(self->stream, TRUE);
	}
}

static void
vmsup_qga_client_process_queue(VmsupQgaClient *self)
{
	while (self->current == NULL && !self->connecting && !self->syncing) {
		GTask *task = g_queue_peek_head(&self->queue);
		VmsupQgaOp *op;

		if (task == NULL)
			return;
		if (self->stream == NULL && self->given_stream != NULL) {
			g_autoptr(GIOStream) stream = g_steal_pointer(&self->given_stream);
			vmsup_qga_client_attach(self, stream);
		}
		if (self->stream == NULL && self->socket_path == NULL) {
			g_autoptr(GError) error =
			    g_error_new(VMSUP_ERROR,
					VMSUP_ERROR_CLOSED,
					"guest agent connection of '%s' closed",
					self->label);
			vmsup_qga_client_fail_all(self, error);
			return;
		}
		if (self->stream == NULL) {
			self->connecting = TRUE;
			self->connect_attempts = 0;
			vmsup_qga_client_connect_attempt(self);
			return;
		}
		/* input that came between requests was not asked for */
		if (self->paused && vmsup_line_stream_has_pending_input(self->stream))
			self->need_sync = TRUE;
		if (self->need_sync) {
			vmsup_qga_client_start_sync(self);
			return;
		}
		op = g_task_get_task_data(task);
		if (op->kind == VMSUP_QGA_OP_CONNECT) {
			vmsup_qga_client_take_op(self, task);
			g_task_return_boolean(task, TRUE);
			g_object_unref(task);
			continue;
		}
		/* its timeout keeps running while it is in flight */
		vmsup_qga_client_send_op(self, g_queue_pop_head(&self->queue));
	}
}

static void
vmsup_qga_client_process(VmsupQgaClient *self)
{
	vmsup_qga_client_process_queue(self);
	vmsup_qga_client_update_reading(self);
}

static void
vmsup_qga_client_op_ended(VmsupQgaClient *self, gboolean was_current)
{
	/* a reply may still come for what was in flight */
	if (was_current)
		self->need_sync = TRUE;
	/* nobody is waiting for the sync any more */
	if (g_queue_is_empty(&self->queue))
		vmsup_qga_client_stop_sync(self);
	vmsup_qga_client_process(self);
}

static gboolean
vmsup_qga_op_timeout_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	VmsupQgaClient *self = g_task_get_source_object(task);
	VmsupQgaOp *op = g_task_get_task_data(task);
	gboolean was_current = self->current == task;
	g_autoptr(GTask) owned = vmsup_qga_client_take_op(self, task);

	g_object_ref(self);
	/* before the caller learns of it: what it sends next must follow a sync */
	if (was_current)
		self->need_sync = TRUE;
	if (op->kind == VMSUP_QGA_OP_CONNECT)
		g_task_return_new_error(owned,
					VMSUP_ERROR,
					VMSUP_ERROR_TIMEOUT,
					"no answer from the guest agent of '%s' within %u ms; "
					"is qemu-guest-agent running in the guest?",
					self->label,
					op->timeout_ms);
	else
		g_task_return_new_error(owned,
					VMSUP_ERROR,
					VMSUP_ERROR_TIMEOUT,
					"%s: no answer from the guest agent of '%s' within %u ms",
					op->command,
					self->label,
					op->timeout_ms);
	vmsup_qga_client_op_ended(self, was_current);
	g_object_unref(self);
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_qga_op_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	VmsupQgaClient *self = g_task_get_source_object(task);
	gboolean was_current = self->current == task;
	g_autoptr(GTask) owned = vmsup_qga_client_take_op(self, task);

	g_object_ref(self);
	if (was_current)
		self->need_sync = TRUE;
	g_task_return_error_if_cancelled(owned);
	vmsup_qga_client_op_ended(self, was_current);
	g_object_unref(self);
	return G_SOURCE_REMOVE;
}

static void
vmsup_qga_client_queue_op(VmsupQgaClient *self, GTask *task, VmsupQgaOp *op)
{
	g_task_set_task_data(task, op, (GDestroyNotify)vmsup_qga_op_free);
	if (g_task_return_error_if_cancelled(task)) {
		g_object_unref(task);
		return;
	}
	if (g_queue_get_length(&self->queue) >= VMSUP_QGA_MAX_QUEUE) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_BUSY,
					"too many guest agent commands queued for '%s' (%u)",
					self->label,
					(guint)VMSUP_QGA_MAX_QUEUE);
		g_object_unref(task);
		return;
	}
	op->timeout_source = vmsup_qga_attach_source(g_timeout_source_new(op->timeout_ms),
						     vmsup_qga_op_timeout_cb,
						     task,
						     NULL);
	if (g_task_get_cancellable(task) != NULL)
		op->cancel_source =
		    vmsup_qga_attach_source(g_cancellable_source_new(g_task_get_cancellable(task)),
					    G_SOURCE_FUNC(vmsup_qga_op_cancelled_cb),
					    task,
					    NULL);
	g_queue_push_tail(&self->queue, task);
	vmsup_qga_client_process(self);
}

void
vmsup_qga_client_connect_async(VmsupQgaClient *self,
			       guint timeout_ms,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	GTask *task;
	VmsupQgaOp *op;

	g_return_if_fail(VMSUP_IS_QGA_CLIENT(self));
	g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qga_client_connect_async);
	op = g_new0(VmsupQgaOp, 1);
	op->kind = VMSUP_QGA_OP_CONNECT;
	op->timeout_ms = vmsup_qga_timeout(timeout_ms);
	vmsup_qga_client_queue_op(self, task, op);
}

gboolean
vmsup_qga_client_connect_finish(VmsupQgaClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

void
vmsup_qga_client_execute_async(VmsupQgaClient *self,
			       const gchar *command,
			       JsonObject *arguments,
			       guint timeout_ms,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	GTask *task;
	VmsupQgaOp *op;

	g_return_if_fail(VMSUP_IS_QGA_CLIENT(self));
	g_return_if_fail(command != NULL);
	g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qga_client_execute_async);
	op = g_new0(VmsupQgaOp, 1);
	op->kind = VMSUP_QGA_OP_COMMAND;
	op->command = g_strdup(command);
	op->arguments = arguments != NULL ? json_object_ref(arguments) : NULL;
	op->timeout_ms = vmsup_qga_timeout(timeout_ms);
	op->no_reply = g_strv_contains(vmsup_qga_no_reply_commands, command);
	vmsup_qga_client_queue_op(self, task, op);
}

JsonNode *
vmsup_qga_client_execute_finish(VmsupQgaClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* guest-exec */

typedef struct {
	gchar *program; /* owned, for messages */
	gint64 pid;
	gint64 deadline; /* monotonic */
	guint timeout_ms;
	guint poll_ms;
	GSource *poll_source; /* owned */
} VmsupQgaExec;

static void
vmsup_qga_exec_free(VmsupQgaExec *exec)
{
	vmsup_qga_clear_source(&exec->poll_source);
	g_free(exec->program);
	g_free(exec);
}

/* what is left of an operation's time, at least 1 ms; 0 when it is over */
static guint
vmsup_qga_remaining_ms(gint64 deadline)
{
	gint64 left = deadline - g_get_monotonic_time();
	if (left <= 0)
		return 0;
	return (guint)MAX(left / 1000, 1);
}

/* @member's base64 as valid UTF-8, at most VMSUP_QGA_EXEC_OUTPUT_MAX bytes of it */
static gchar *
vmsup_qga_decode_text(JsonObject *object, const gchar *member, gboolean *truncated)
{
	const gchar *b64 = vmsup_json_object_get_string(object, member, NULL);
	g_autofree guchar *data = NULL;
	gsize length = 0;

	if (b64 == NULL)
		return g_strdup("");
	data = g_base64_decode(b64, &length);
	if (length > VMSUP_QGA_EXEC_OUTPUT_MAX) {
		length = VMSUP_QGA_EXEC_OUTPUT_MAX;
		*truncated = TRUE;
	}
	return g_utf8_make_valid((const gchar *)data, length);
}

/* collects a finished command's status, so the agent forgets it */
static void
vmsup_qga_exec_reap_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret =
	    vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);

	if (ret == NULL)
		g_debug("guest-exec-status of a killed command: %s", error->message);
}

typedef struct {
	VmsupQgaClient *client; /* owned */
	gint64 pids[2];         /* the command, and the shell that killed it */
} VmsupQgaExecReap;

static gboolean
vmsup_qga_exec_reap_later_cb(gpointer user_data)
{
	VmsupQgaExecReap *reap = user_data;

	for (guint i = 0; i < G_N_ELEMENTS(reap->pids); i++) {
		g_autoptr(JsonObject) args = json_object_new();
		if (reap->pids[i] < 0)
			continue;
		json_object_set_int_member(args, "pid", reap->pids[i]);
		vmsup_qga_client_execute_async(reap->client,
					       "guest-exec-status",
					       args,
					       0,
					       NULL,
					       vmsup_qga_exec_reap_cb,
					       NULL);
	}
	g_object_unref(reap->client);
	g_free(reap);
	return G_SOURCE_REMOVE;
}

static void
vmsup_qga_exec_killed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupQgaExecReap *reap = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret =
	    vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);

	if (ret == NULL)
		g_message("%s: could not kill guest command %" G_GINT64_FORMAT ": %s",
			  reap->client->label,
			  reap->pids[0],
			  error->message);
	else if (JSON_NODE_HOLDS_OBJECT(ret))
		reap->pids[1] = vmsup_json_object_get_int(json_node_get_object(ret), "pid", -1);
	g_timeout_add(VMSUP_QGA_EXEC_REAP_DELAY_MS, vmsup_qga_exec_reap_later_cb, reap);
}

/*
 * A command vmsupd stopped waiting for (timed out, or its caller gave up)
 * would run on in the guest: it is killed there, with what it started
 * directly, and both are reaped from the agent's table. Plain sh and
 * /proc, as small guests have no pkill.
 */
static void
vmsup_qga_exec_kill_in_guest(VmsupQgaClient *self, gint64 pid)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autofree gchar *pid_text = g_strdup_printf("%" G_GINT64_FORMAT, pid);
	JsonArray *arg = json_array_new();
	VmsupQgaExecReap *reap = g_new0(VmsupQgaExecReap, 1);

	reap->client = g_object_ref(self);
	reap->pids[0] = pid;
	reap->pids[1] = -1;
	json_array_add_string_element(arg, "-c");
	json_array_add_string_element(
	    arg,
	    "exec kill -KILL $(cat /proc/\"$1\"/task/*/children 2>/dev/null) \"$1\"");
	json_array_add_string_element(arg, "sh");
	json_array_add_string_element(arg, pid_text);
	json_object_set_string_member(args, "path", "/bin/sh");
	json_object_set_array_member(args, "arg", arg);
	vmsup_qga_client_execute_async(self,
				       "guest-exec",
				       args,
				       0,
				       NULL,
				       vmsup_qga_exec_killed_cb,
				       reap);
}

static void
vmsup_qga_exec_schedule_poll(GTask *task);

/* the command's time is over: it is killed in the guest, and the caller told */
static void
vmsup_qga_exec_time_out(GTask *task)
{
	VmsupQgaExec *exec = g_task_get_task_data(task);
	VmsupQgaClient *self = g_task_get_source_object(task);

	vmsup_qga_exec_kill_in_guest(self, exec->pid);
	g_task_return_new_error(
	    task,
	    VMSUP_ERROR,
	    VMSUP_ERROR_TIMEOUT,
	    "'%s' in the guest of '%s' did not finish within %u ms and was killed",
	    exec->program,
	    self->label,
	    exec->timeout_ms);
	g_object_unref(task);
}

static void
vmsup_qga_exec_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	JsonObject *status;
	gint64 exit_code = -1;
	gboolean truncated;

	ret = vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);
	if (ret == NULL) {
		/* its time ran out while asking: the same as at a poll */
		if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT)) {
			vmsup_qga_exec_time_out(g_steal_pointer(&task));
			return;
		}
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			VmsupQgaExec *exec = g_task_get_task_data(task);
			vmsup_qga_exec_kill_in_guest(VMSUP_QGA_CLIENT(source), exec->pid);
		}
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!JSON_NODE_HOLDS_OBJECT(ret)) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_PROTOCOL,
					"guest-exec-status: unexpected reply");
		return;
	}
	status = json_node_get_object(ret);
	if (!vmsup_json_object_get_bool(status, "exited", FALSE)) {
		vmsup_qga_exec_schedule_poll(g_steal_pointer(&task));
		return;
	}

	result = json_object_new();
	if (json_object_has_member(status, "exitcode"))
		exit_code = vmsup_json_object_get_int(status, "exitcode", -1);
	else if (json_object_has_member(status, "signal")) {
		gint64 signal = vmsup_json_object_get_int(status, "signal", 0);
		json_object_set_int_member(result, "signal", signal);
		exit_code = 128 + signal;
	}
	truncated = vmsup_json_object_get_bool(status, "out-truncated", FALSE) ||
		    vmsup_json_object_get_bool(status, "err-truncated", FALSE);
	out = vmsup_qga_decode_text(status, "out-data", &truncated);
	err = vmsup_qga_decode_text(status, "err-data", &truncated);
	json_object_set_int_member(result, "exit_code", exit_code);
	json_object_set_string_member(result, "stdout", out);
	json_object_set_string_member(result, "stderr", err);
	if (truncated)
		json_object_set_boolean_member(result, "truncated", TRUE);
	g_task_return_pointer(task, g_steal_pointer(&result), (GDestroyNotify)json_object_unref);
}

static gboolean
vmsup_qga_exec_poll_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	VmsupQgaExec *exec = g_task_get_task_data(task);
	g_autoptr(JsonObject) args = json_object_new();

	g_clear_pointer(&exec->poll_source, g_source_unref);
	if (g_task_return_error_if_cancelled(task)) {
		vmsup_qga_exec_kill_in_guest(g_task_get_source_object(task), exec->pid);
		g_object_unref(task);
		return G_SOURCE_REMOVE;
	}
	json_object_set_int_member(args, "pid", exec->pid);
	vmsup_qga_client_execute_async(g_task_get_source_object(task),
				       "guest-exec-status",
				       args,
				       MAX(vmsup_qga_remaining_ms(exec->deadline), 1),
				       g_task_get_cancellable(task),
				       vmsup_qga_exec_status_cb,
				       task);
	return G_SOURCE_REMOVE;
}

static void
vmsup_qga_exec_schedule_poll(GTask *task)
{
	VmsupQgaExec *exec = g_task_get_task_data(task);
	guint remaining = vmsup_qga_remaining_ms(exec->deadline);

	if (remaining == 0) {
		vmsup_qga_exec_time_out(task);
		return;
	}
	exec->poll_source =
	    vmsup_qga_attach_source(g_timeout_source_new(MIN(exec->poll_ms, remaining)),
				    vmsup_qga_exec_poll_cb,
				    task,
				    NULL);
	exec->poll_ms = MIN(exec->poll_ms * 2, VMSUP_QGA_EXEC_POLL_MAX_MS);
}

static void
vmsup_qga_exec_started_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupQgaExec *exec = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	ret = vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);
	if (ret == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!JSON_NODE_HOLDS_OBJECT(ret) ||
	    vmsup_json_object_get_int(json_node_get_object(ret), "pid", -1) < 0) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_PROTOCOL,
					"guest-exec: reply without a pid");
		return;
	}
	exec->pid = vmsup_json_object_get_int(json_node_get_object(ret), "pid", -1);
	vmsup_qga_exec_schedule_poll(g_steal_pointer(&task));
}

void
vmsup_qga_client_exec_async(VmsupQgaClient *self,
			    const gchar *const *argv,
			    const gchar *stdin_data,
			    guint timeout_ms,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(JsonObject) args = json_object_new();
	JsonArray *arg = json_array_new();
	VmsupQgaExec *exec;

	g_return_if_fail(VMSUP_IS_QGA_CLIENT(self));
	g_return_if_fail(argv != NULL && argv[0] != NULL);
	g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qga_client_exec_async);
	exec = g_new0(VmsupQgaExec, 1);
	exec->program = g_strdup(argv[0]);
	exec->timeout_ms = vmsup_qga_timeout(timeout_ms);
	exec->deadline = g_get_monotonic_time() + (gint64)exec->timeout_ms * 1000;
	exec->poll_ms = VMSUP_QGA_EXEC_POLL_FIRST_MS;
	g_task_set_task_data(task, exec, (GDestroyNotify)vmsup_qga_exec_free);

	for (guint i = 1; argv[i] != NULL; i++)
		json_array_add_string_element(arg, argv[i]);
	json_object_set_string_member(args, "path", argv[0]);
	json_object_set_array_member(args, "arg", arg);
	json_object_set_boolean_member(args, "capture-output", TRUE);
	if (stdin_data != NULL) {
		g_autofree gchar *b64 =
		    g_base64_encode((const guchar *)stdin_data, strlen(stdin_data));
		json_object_set_string_member(args, "input-data", b64);
	}
	vmsup_qga_client_execute_async(self,
				       "guest-exec",
				       args,
				       exec->timeout_ms,
				       cancellable,
				       vmsup_qga_exec_started_cb,
				       g_steal_pointer(&task));
}

JsonObject *
vmsup_qga_client_exec_finish(VmsupQgaClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* guest-file-* */

typedef struct {
	gchar *path; /* owned */
	gint64 handle;
	gint64 deadline;  /* monotonic */
	GByteArray *data; /* owned */
	GError *error;    /* owned: the failure to report once the handle is closed */
} VmsupQgaReadFile;

static void
vmsup_qga_read_file_free(VmsupQgaReadFile *read)
{
	g_free(read->path);
	g_byte_array_unref(read->data);
	g_clear_error(&read->error);
	g_free(read);
}

static void
vmsup_qga_read_file_closed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupQgaReadFile *read = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret =
	    vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);

	if (ret == NULL)
		g_debug("could not close '%s' in the guest: %s", read->path, error->message);
	if (read->error != NULL) {
		g_task_return_error(task, g_steal_pointer(&read->error));
		return;
	}
	g_task_return_pointer(task,
			      g_byte_array_free_to_bytes(g_steal_pointer(&read->data)),
			      (GDestroyNotify)g_bytes_unref);
	read->data = g_byte_array_new();
}

static void
vmsup_qga_read_file_close(GTask *task)
{
	VmsupQgaReadFile *read = g_task_get_task_data(task);
	g_autoptr(JsonObject) args = json_object_new();

	/* after a timeout or a lost connection there is no one to close it with */
	if (g_error_matches(read->error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT) ||
	    g_error_matches(read->error, VMSUP_ERROR, VMSUP_ERROR_CLOSED) ||
	    g_error_matches(read->error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_task_return_error(task, g_steal_pointer(&read->error));
		g_object_unref(task);
		return;
	}
	json_object_set_int_member(args, "handle", read->handle);
	vmsup_qga_client_execute_async(g_task_get_source_object(task),
				       "guest-file-close",
				       args,
				       MAX(vmsup_qga_remaining_ms(read->deadline), 1),
				       NULL,
				       vmsup_qga_read_file_closed_cb,
				       task);
}

static void
vmsup_qga_read_file_next(GTask *task);

static void
vmsup_qga_read_file_chunk_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupQgaReadFile *read = g_task_get_task_data(task);
	g_autoptr(JsonNode) ret = NULL;
	g_autofree guchar *chunk = NULL;
	gsize length = 0;
	JsonObject *obj;

	ret = vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &read->error);
	if (ret == NULL) {
		vmsup_qga_read_file_close(g_steal_pointer(&task));
		return;
	}
	if (!JSON_NODE_HOLDS_OBJECT(ret)) {
		read->error = g_error_new(VMSUP_ERROR,
					  VMSUP_ERROR_PROTOCOL,
					  "guest-file-read: unexpected reply");
		vmsup_qga_read_file_close(g_steal_pointer(&task));
		return;
	}
	obj = json_node_get_object(ret);
	chunk = g_base64_decode(vmsup_json_object_get_string(obj, "buf-b64", ""), &length);
	if (read->data->len + length > VMSUP_QGA_FILE_MAX) {
		read->error = g_error_new(VMSUP_ERROR,
					  VMSUP_ERROR_INVALID_ARGUMENT,
					  "'%s' in the guest is larger than %u MiB",
					  read->path,
					  (guint)(VMSUP_QGA_FILE_MAX / (1024 * 1024)));
		vmsup_qga_read_file_close(g_steal_pointer(&task));
		return;
	}
	g_byte_array_append(read->data, chunk, length);
	if (vmsup_json_object_get_bool(obj, "eof", FALSE)) {
		vmsup_qga_read_file_close(g_steal_pointer(&task));
		return;
	}
	vmsup_qga_read_file_next(g_steal_pointer(&task));
}

static void
vmsup_qga_read_file_next(GTask *task)
{
	VmsupQgaReadFile *read = g_task_get_task_data(task);
	g_autoptr(JsonObject) args = json_object_new();
	guint remaining = vmsup_qga_remaining_ms(read->deadline);

	if (remaining == 0) {
		read->error = g_error_new(VMSUP_ERROR,
					  VMSUP_ERROR_TIMEOUT,
					  "reading '%s' in the guest took too long",
					  read->path);
		vmsup_qga_read_file_close(task);
		return;
	}
	json_object_set_int_member(args, "handle", read->handle);
	json_object_set_int_member(args, "count", VMSUP_QGA_FILE_CHUNK);
	vmsup_qga_client_execute_async(g_task_get_source_object(task),
				       "guest-file-read",
				       args,
				       remaining,
				       g_task_get_cancellable(task),
				       vmsup_qga_read_file_chunk_cb,
				       task);
}

static void
vmsup_qga_read_file_opened_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupQgaReadFile *read = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	ret = vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);
	if (ret == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!JSON_NODE_HOLDS_VALUE(ret) || json_node_get_value_type(ret) != G_TYPE_INT64) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_PROTOCOL,
					"guest-file-open: reply without a handle");
		return;
	}
	read->handle = json_node_get_int(ret);
	vmsup_qga_read_file_next(g_steal_pointer(&task));
}

void
vmsup_qga_client_read_file_async(VmsupQgaClient *self,
				 const gchar *path,
				 guint timeout_ms,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(JsonObject) args = json_object_new();
	VmsupQgaReadFile *read;

	g_return_if_fail(VMSUP_IS_QGA_CLIENT(self));
	g_return_if_fail(path != NULL);
	g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qga_client_read_file_async);
	read = g_new0(VmsupQgaReadFile, 1);
	read->path = g_strdup(path);
	read->deadline = g_get_monotonic_time() + (gint64)vmsup_qga_timeout(timeout_ms) * 1000;
	read->data = g_byte_array_new();
	g_task_set_task_data(task, read, (GDestroyNotify)vmsup_qga_read_file_free);

	json_object_set_string_member(args, "path", path);
	json_object_set_string_member(args, "mode", "r");
	vmsup_qga_client_execute_async(self,
				       "guest-file-open",
				       args,
				       vmsup_qga_timeout(timeout_ms),
				       cancellable,
				       vmsup_qga_read_file_opened_cb,
				       g_steal_pointer(&task));
}

GBytes *
vmsup_qga_client_read_file_finish(VmsupQgaClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

void
vmsup_qga_client_close(VmsupQgaClient *self)
{
	g_autoptr(GError) error = NULL;

	g_return_if_fail(VMSUP_IS_QGA_CLIENT(self));

	g_object_ref(self);
	g_cancellable_cancel(self->cancellable);
	g_object_unref(self->cancellable);
	self->cancellable = g_cancellable_new();
	vmsup_qga_clear_source(&self->connect_retry);
	self->connecting = FALSE;
	vmsup_qga_client_disconnect(self);
	error = g_error_new(VMSUP_ERROR,
			    VMSUP_ERROR_CLOSED,
			    "guest agent connection of '%s' closed: closed by client",
			    self->label);
	vmsup_qga_client_fail_all(self, error);
	g_object_unref(self);
}

static void
vmsup_qga_client_dispose(GObject *object)
{
	VmsupQgaClient *self = VMSUP_QGA_CLIENT(object);

	/* queued operations hold a reference: nothing is pending here */
	g_cancellable_cancel(self->cancellable);
	vmsup_qga_clear_source(&self->connect_retry);
	vmsup_qga_client_disconnect(self);
	g_clear_object(&self->given_stream);
	G_OBJECT_CLASS(vmsup_qga_client_parent_class)->dispose(object);
}

static void
vmsup_qga_client_finalize(GObject *object)
{
	VmsupQgaClient *self = VMSUP_QGA_CLIENT(object);

	g_object_unref(self->cancellable);
	g_free(self->label);
	g_free(self->socket_path);
	G_OBJECT_CLASS(vmsup_qga_client_parent_class)->finalize(object);
}

static void
vmsup_qga_client_class_init(VmsupQgaClientClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = vmsup_qga_client_dispose;
	object_class->finalize = vmsup_qga_client_finalize;
}

static void
vmsup_qga_client_init(VmsupQgaClient *self)
{
	g_queue_init(&self->queue);
	self->cancellable = g_cancellable_new();
	self->need_sync = TRUE;
}

static VmsupQgaClient *
vmsup_qga_client_new_labelled(const gchar *label)
{
	VmsupQgaClient *self = g_object_new(VMSUP_TYPE_QGA_CLIENT, NULL);

	self->label = g_strdup(label != NULL ? label : "guest");
	return self;
}

VmsupQgaClient *
vmsup_qga_client_new(const gchar *label, const gchar *socket_path)
{
	VmsupQgaClient *self;

	g_return_val_if_fail(socket_path != NULL, NULL);
	self = vmsup_qga_client_new_labelled(label);
	self->socket_path = g_strdup(socket_path);
	return self;
}

VmsupQgaClient *
vmsup_qga_client_new_for_stream(const gchar *label, GIOStream *stream)
{
	VmsupQgaClient *self;

	g_return_val_if_fail(G_IS_IO_STREAM(stream), NULL);
	self = vmsup_qga_client_new_labelled(label);
	self->given_stream = g_object_ref(stream);
	return self;
}
