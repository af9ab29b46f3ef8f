/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The CLI's side of the JSON-RPC socket: one request at a time, answers
 * matched by id, notifications kept aside for whoever asks for them.
 */

#include "config.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gi18n.h>
#include <string.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-jsonrpc-client.h"

/* far above any answer vmsupd gives; a bound so a broken peer cannot eat memory */
#define VMSUP_JSONRPC_CLIENT_MAX_LINE (64 * 1024 * 1024)

struct _VmsupJsonrpcClient {
	GObject parent_instance;
	GSocketConnection *conn; /* owned */
	GSocket *socket;         /* unowned: conn's */
	gchar *socket_path;      /* owned */
	GByteArray *inbuf;       /* owned */
	gsize scanned;
	gint64 next_id;
	GQueue notifications; /* of JsonObject, owned */
};

G_DEFINE_FINAL_TYPE(VmsupJsonrpcClient, vmsup_jsonrpc_client, G_TYPE_OBJECT)

G_DEFINE_QUARK(vmsup - jsonrpc - client - error - quark, vmsup_jsonrpc_client_error)

const gchar *
vmsup_jsonrpc_client_error_kind(const GError *error)
{
	if (error == NULL)
		return "internal";
	if (error->domain == VMSUP_ERROR)
		return vmsup_error_to_kind(error->code);
	if (error->domain == VMSUP_JSONRPC_CLIENT_ERROR) {
		switch (error->code) {
		case VMSUP_JSONRPC_CLIENT_ERROR_CONNECT:
			return "connect";
		case VMSUP_JSONRPC_CLIENT_ERROR_INVALID_PARAMS:
			return "invalid-params";
		case VMSUP_JSONRPC_CLIENT_ERROR_METHOD_NOT_FOUND:
			return "method-not-found";
		case VMSUP_JSONRPC_CLIENT_ERROR_INVALID_REQUEST:
			return "invalid-request";
		default:
			return "internal";
		}
	}
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return "cancelled";
	return "internal";
}

gint
vmsup_jsonrpc_client_error_code(const GError *error)
{
	if (error != NULL && error->domain == VMSUP_ERROR && error->code >= VMSUP_ERROR_NOT_FOUND &&
	    error->code < VMSUP_ERROR_LAST)
		return error->code;
	if (error != NULL && error->domain == VMSUP_JSONRPC_CLIENT_ERROR) {
		switch (error->code) {
		case VMSUP_JSONRPC_CLIENT_ERROR_INVALID_PARAMS:
			return -32602;
		case VMSUP_JSONRPC_CLIENT_ERROR_METHOD_NOT_FOUND:
			return -32601;
		case VMSUP_JSONRPC_CLIENT_ERROR_INVALID_REQUEST:
			return -32600;
		default:
			break;
		}
	}
	return VMSUP_ERROR_INTERNAL;
}

gboolean
vmsup_jsonrpc_client_connect(VmsupJsonrpcClient *self, const gchar *socket_path, GError **error)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketAddress) address = NULL;
	g_autoptr(GError) error_local = NULL;

	g_return_val_if_fail(VMSUP_IS_JSONRPC_CLIENT(self), FALSE);
	g_return_val_if_fail(socket_path != NULL, FALSE);
	g_return_val_if_fail(self->conn == NULL, FALSE);

	address = g_unix_socket_address_new(socket_path);
	self->conn =
	    g_socket_client_connect(client, G_SOCKET_CONNECTABLE(address), NULL, &error_local);
	if (self->conn == NULL) {
		g_set_error(error,
			    VMSUP_JSONRPC_CLIENT_ERROR,
			    VMSUP_JSONRPC_CLIENT_ERROR_CONNECT,
			    "%s",
			    error_local->message);
		return FALSE;
	}
	self->socket = g_socket_connection_get_socket(self->conn);
	g_socket_set_blocking(self->socket, FALSE);
	self->socket_path = g_strdup(socket_path);
	return TRUE;
}

typedef struct {
	gboolean ready;
	gboolean timed_out;
} VmsupJsonrpcClientWait;

static gboolean
vmsup_jsonrpc_client_wait_socket_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
	VmsupJsonrpcClientWait *wait = user_data;
	wait->ready = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_jsonrpc_client_wait_timeout_cb(gpointer user_data)
{
	VmsupJsonrpcClientWait *wait = user_data;
	wait->timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

/* TRUE: readable; FALSE with @error: cancelled; FALSE without: the deadline passed */
static gboolean
vmsup_jsonrpc_client_wait_readable(VmsupJsonrpcClient *self,
				   gint64 deadline,
				   GCancellable *cancellable,
				   GError **error)
{
	VmsupJsonrpcClientWait wait = {FALSE, FALSE};
	GMainContext *context = g_main_context_ref_thread_default();
	g_autoptr(GSource) source =
	    g_socket_create_source(self->socket, G_IO_IN | G_IO_HUP | G_IO_ERR, cancellable);
	g_autoptr(GSource) timeout = NULL;

	g_source_set_callback(source,
			      G_SOURCE_FUNC(vmsup_jsonrpc_client_wait_socket_cb),
			      &wait,
			      NULL);
	g_source_attach(source, context);
	if (deadline >= 0) {
		gint64 left_ms = MAX(0, (deadline - g_get_monotonic_time()) / 1000);
		timeout = g_timeout_source_new((guint)MIN(left_ms, G_MAXUINT));
		g_source_set_callback(timeout, vmsup_jsonrpc_client_wait_timeout_cb, &wait, NULL);
		g_source_attach(timeout, context);
	}
	while (!wait.ready && !wait.timed_out && !g_cancellable_is_cancelled(cancellable))
		g_main_context_iteration(context, TRUE);
	g_source_destroy(source);
	if (timeout != NULL)
		g_source_destroy(timeout);
	g_main_context_unref(context);
	if (g_cancellable_set_error_if_cancelled(cancellable, error))
		return FALSE;
	return wait.ready;
}

/* the next line without its newline (full); NULL with no error when @deadline passed */
static gchar *
vmsup_jsonrpc_client_read_line(VmsupJsonrpcClient *self,
			       gint64 deadline,
			       GCancellable *cancellable,
			       GError **error)
{
	guint8 buf[64 * 1024];

	for (;;) {
		g_autoptr(GError) error_local = NULL;
		guint8 *nl = NULL;
		gssize n;

		if (self->inbuf->len > self->scanned)
			nl = memchr(self->inbuf->data + self->scanned,
				    '\n',
				    self->inbuf->len - self->scanned);

		if (nl != NULL) {
			gsize len = nl - self->inbuf->data;
			gchar *line = g_strndup((const gchar *)self->inbuf->data, len);
			g_byte_array_remove_range(self->inbuf, 0, len + 1);
			self->scanned = 0;
			return line;
		}
		self->scanned = self->inbuf->len;
		if (self->inbuf->len > VMSUP_JSONRPC_CLIENT_MAX_LINE) {
			g_set_error_literal(error,
					    VMSUP_JSONRPC_CLIENT_ERROR,
					    VMSUP_JSONRPC_CLIENT_ERROR_PROTOCOL,
					    _("vmsupd sent an answer that is too long"));
			return NULL;
		}
		if (!vmsup_jsonrpc_client_wait_readable(self,
							deadline,
							cancellable,
							&error_local)) {
			if (error_local != NULL)
				g_propagate_error(error, g_steal_pointer(&error_local));
			return NULL;
		}
		n = g_socket_receive(self->socket, (gchar *)buf, sizeof(buf), NULL, &error_local);
		if (n < 0 && g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			continue;
		if (n < 0) {
			g_set_error(error,
				    VMSUP_JSONRPC_CLIENT_ERROR,
				    VMSUP_JSONRPC_CLIENT_ERROR_CLOSED,
				    _("Lost the connection to vmsupd: %s"),
				    error_local->message);
			return NULL;
		}
		if (n == 0) {
			g_set_error_literal(error,
					    VMSUP_JSONRPC_CLIENT_ERROR,
					    VMSUP_JSONRPC_CLIENT_ERROR_CLOSED,
					    _("vmsupd closed the connection"));
			return NULL;
		}
		g_byte_array_append(self->inbuf, buf, n);
	}
}

static gboolean
vmsup_jsonrpc_client_send(VmsupJsonrpcClient *self, JsonObject *message, GError **error)
{
	g_autofree gchar *text = vmsup_json_object_to_string(message, FALSE);
	g_autofree gchar *line = g_strconcat(text, "\n", NULL);
	gsize len = strlen(line);
	gsize done = 0;

	while (done < len) {
		g_autoptr(GError) error_local = NULL;
		gssize n = g_socket_send_with_blocking(self->socket,
						       line + done,
						       len - done,
						       TRUE,
						       NULL,
						       &error_local);
		if (n < 0) {
			g_set_error(error,
				    VMSUP_JSONRPC_CLIENT_ERROR,
				    VMSUP_JSONRPC_CLIENT_ERROR_CLOSED,
				    _("Lost the connection to vmsupd: %s"),
				    error_local->message);
			return FALSE;
		}
		done += n;
	}
	return TRUE;
}

static void
vmsup_jsonrpc_client_set_remote_error(JsonObject *err, GError **error)
{
	gint64 code = vmsup_json_object_get_int(err, "code", VMSUP_ERROR_INTERNAL);
	const gchar *message = vmsup_json_object_get_string(err, "message", "");
	JsonNode *data = json_object_get_member(err, "data");
	const gchar *kind = NULL;
	gint vmsup_code;

	if (data != NULL && JSON_NODE_HOLDS_OBJECT(data))
		kind = vmsup_json_object_get_string(json_node_get_object(data), "kind", NULL);
	vmsup_code = vmsup_error_from_kind(kind);
	if (vmsup_code < 0 && code >= VMSUP_ERROR_NOT_FOUND && code < VMSUP_ERROR_LAST)
		vmsup_code = (gint)code;
	if (vmsup_code > 0) {
		g_set_error_literal(error, VMSUP_ERROR, vmsup_code, message);
		return;
	}
	switch (code) {
	case -32602:
		g_set_error_literal(error,
				    VMSUP_JSONRPC_CLIENT_ERROR,
				    VMSUP_JSONRPC_CLIENT_ERROR_INVALID_PARAMS,
				    message);
		return;
	case -32601:
		g_set_error_literal(error,
				    VMSUP_JSONRPC_CLIENT_ERROR,
				    VMSUP_JSONRPC_CLIENT_ERROR_METHOD_NOT_FOUND,
				    message);
		return;
	case -32600:
	case -32700:
		g_set_error_literal(error,
				    VMSUP_JSONRPC_CLIENT_ERROR,
				    VMSUP_JSONRPC_CLIENT_ERROR_INVALID_REQUEST,
				    message);
		return;
	default:
		g_set_error_literal(error, VMSUP_ERROR, VMSUP_ERROR_INTERNAL, message);
		return;
	}
}

static JsonObject *
vmsup_jsonrpc_client_parse(const gchar *line, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	JsonObject *msg = vmsup_json_parse_object(line, -1, &error_local);
	if (msg == NULL) {
		g_set_error(error,
			    VMSUP_JSONRPC_CLIENT_ERROR,
			    VMSUP_JSONRPC_CLIENT_ERROR_PROTOCOL,
			    _("vmsupd sent something that is not JSON-RPC: %s"),
			    error_local->message);
		return NULL;
	}
	return msg;
}

static gboolean
vmsup_jsonrpc_client_is_notification(JsonObject *msg)
{
	return !json_object_has_member(msg, "id") && json_object_has_member(msg, "method");
}

JsonNode *
vmsup_jsonrpc_client_call(VmsupJsonrpcClient *self,
			  const gchar *method,
			  JsonObject *params,
			  GCancellable *cancellable,
			  GError **error)
{
	g_autoptr(JsonObject) request = json_object_new();
	gint64 id;

	g_return_val_if_fail(VMSUP_IS_JSONRPC_CLIENT(self), NULL);
	g_return_val_if_fail(method != NULL, NULL);
	g_return_val_if_fail(self->conn != NULL, NULL);

	id = ++self->next_id;
	json_object_set_string_member(request, "jsonrpc", "2.0");
	json_object_set_int_member(request, "id", id);
	json_object_set_string_member(request, "method", method);
	json_object_set_object_member(request,
				      "params",
				      params != NULL ? json_object_ref(params) : json_object_new());
	if (!vmsup_jsonrpc_client_send(self, request, error))
		return NULL;

	for (;;) {
		g_autofree gchar *line =
		    vmsup_jsonrpc_client_read_line(self, -1, cancellable, error);
		g_autoptr(JsonObject) msg = NULL;
		JsonNode *id_node;
		JsonNode *err;
		JsonNode *result;

		if (line == NULL)
			return NULL;
		msg = vmsup_jsonrpc_client_parse(line, error);
		if (msg == NULL)
			return NULL;
		if (vmsup_jsonrpc_client_is_notification(msg)) {
			g_queue_push_tail(&self->notifications, g_steal_pointer(&msg));
			continue;
		}
		id_node = json_object_get_member(msg, "id");
		err = json_object_get_member(msg, "error");
		/* an error without an id concerns the connection itself: ours, as we ask one thing
		 * at a time */
		if (id_node != NULL && JSON_NODE_HOLDS_NULL(id_node) && err != NULL &&
		    JSON_NODE_HOLDS_OBJECT(err)) {
			vmsup_jsonrpc_client_set_remote_error(json_node_get_object(err), error);
			return NULL;
		}
		if (id_node == NULL || !JSON_NODE_HOLDS_VALUE(id_node) ||
		    json_node_get_value_type(id_node) != G_TYPE_INT64 ||
		    json_node_get_int(id_node) != id)
			continue;
		if (err != NULL && JSON_NODE_HOLDS_OBJECT(err)) {
			vmsup_jsonrpc_client_set_remote_error(json_node_get_object(err), error);
			return NULL;
		}
		result = json_object_get_member(msg, "result");
		if (result == NULL) {
			g_set_error(error,
				    VMSUP_JSONRPC_CLIENT_ERROR,
				    VMSUP_JSONRPC_CLIENT_ERROR_PROTOCOL,
				    _("vmsupd answered %s with neither a result nor an error"),
				    method);
			return NULL;
		}
		return json_node_copy(result);
	}
}

JsonObject *
vmsup_jsonrpc_client_call_object(VmsupJsonrpcClient *self,
				 const gchar *method,
				 JsonObject *params,
				 GCancellable *cancellable,
				 GError **error)
{
	g_autoptr(JsonNode) result =
	    vmsup_jsonrpc_client_call(self, method, params, cancellable, error);
	if (result == NULL)
		return NULL;
	if (!JSON_NODE_HOLDS_OBJECT(result)) {
		g_set_error(error,
			    VMSUP_JSONRPC_CLIENT_ERROR,
			    VMSUP_JSONRPC_CLIENT_ERROR_PROTOCOL,
			    _("vmsupd answered %s with %s instead of an object"),
			    method,
			    vmsup_json_node_type_name(result));
		return NULL;
	}
	return json_object_ref(json_node_get_object(result));
}

JsonObject *
vmsup_jsonrpc_client_next_notification(VmsupJsonrpcClient *self,
				       gint timeout_ms,
				       GCancellable *cancellable,
				       GError **error)
{
	gint64 deadline = timeout_ms < 0 ? -1 : g_get_monotonic_time() + timeout_ms * 1000;

	g_return_val_if_fail(VMSUP_IS_JSONRPC_CLIENT(self), NULL);
	g_return_val_if_fail(self->conn != NULL, NULL);

	if (!g_queue_is_empty(&self->notifications))
		return g_queue_pop_head(&self->notifications);
	for (;;) {
		g_autoptr(GError) error_local = NULL;
		g_autofree gchar *line =
		    vmsup_jsonrpc_client_read_line(self, deadline, cancellable, &error_local);
		g_autoptr(JsonObject) msg = NULL;

		if (line == NULL) {
			if (error_local != NULL)
				g_propagate_error(error, g_steal_pointer(&error_local));
			return NULL;
		}
		msg = vmsup_jsonrpc_client_parse(line, error);
		if (msg == NULL)
			return NULL;
		if (vmsup_jsonrpc_client_is_notification(msg))
			return g_steal_pointer(&msg);
	}
}

static void
vmsup_jsonrpc_client_finalize(GObject *object)
{
	VmsupJsonrpcClient *self = VMSUP_JSONRPC_CLIENT(object);

	if (self->conn != NULL)
		g_io_stream_close(G_IO_STREAM(self->conn), NULL, NULL);
	g_clear_object(&self->conn);
	g_free(self->socket_path);
	g_byte_array_unref(self->inbuf);
	g_queue_clear_full(&self->notifications, (GDestroyNotify)json_object_unref);
	G_OBJECT_CLASS(vmsup_jsonrpc_client_parent_class)->finalize(object);
}

static void
vmsup_jsonrpc_client_class_init(VmsupJsonrpcClientClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = vmsup_jsonrpc_client_finalize;
}

static void
vmsup_jsonrpc_client_init(VmsupJsonrpcClient *self)
{
	self->inbuf = g_byte_array_new();
	g_queue_init(&self->notifications);
}

VmsupJsonrpcClient *
vmsup_jsonrpc_client_new(void)
{
	return g_object_new(VMSUP_TYPE_JSONRPC_CLIENT, NULL);
}
