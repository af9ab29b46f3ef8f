/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The JSON-RPC 2.0 transport of the dispatch table: a Unix stream socket,
 * one JSON value per line, many clients at once. All I/O is non-blocking
 * and every per-client resource is bounded, so a slow, dead or hostile
 * client costs only its own connection.
 *
 * The framing, the reading and the writing with back-pressure are
 * VmsupLineStream's; a connection adds the limits of its own: the calls in
 * flight, the connections per user, the idle timeout.
 */

#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-jsonrpc-server.h"
#include "vmsup-line-stream.h"
#include "vmsup-rpc-call.h"
#include "vmsup-rpc-table.h"
#include "vmsup-event-source.h"

typedef struct _VmsupJsonrpcConnection VmsupJsonrpcConnection;

struct _VmsupJsonrpcServer {
	GObject parent_instance;
	const VmsupRpcContext *ctx; /* unowned */
	GSocketService *service;    /* owned */
	gchar *socket_path;         /* owned; set while we own the socket file */
	gboolean system_mode;
	gint64 allowed_gid;
	GPtrArray *connections; /* owned: of VmsupJsonrpcConnection */
	guint64 next_serial;
	guint max_per_user;
	guint idle_timeout_s;
};

G_DEFINE_FINAL_TYPE(VmsupJsonrpcServer, vmsup_jsonrpc_server, G_TYPE_OBJECT)

struct _VmsupJsonrpcConnection {
	gint ref_count;
	VmsupJsonrpcServer *server; /* unowned; NULL once the server let go of it */
	const VmsupRpcContext *ctx; /* unowned */
	VmsupLineStream *stream;    /* owned */
	guint64 serial;
	VmsupCaller caller; /* as SO_PEERCRED found it */
	guint n_pending;    /* calls dispatched, not answered */
	gboolean eof;       /* the peer closed its side: answer what is pending, then close */
	gboolean closing;   /* flush what is queued, then close; read nothing more */
	gboolean closed;
	/* owned, while subscribed: which events the policy lets this connection hear */
	VmsupPolicySubscription *subscription;
	GSource *idle_source; /* owned; attached while an idle timeout applies */
	gint64 idle_timeout_us;
	gint64 last_active; /* monotonic: the last request read or answer made */
};

typedef struct {
	gint ref_count;
	VmsupJsonrpcConnection *conn; /* owned */
	GPtrArray *responses;         /* of JsonNode (owned), NULL for notifications */
	guint remaining;
} VmsupJsonrpcBatch;

typedef struct {
	VmsupJsonrpcConnection *conn; /* owned */
	JsonNode *id;                 /* owned; NULL for a notification */
	VmsupJsonrpcBatch *batch;     /* owned, nullable */
	guint index;
} VmsupJsonrpcRequest;

/* connection lifetime */

static VmsupJsonrpcConnection *
vmsup_jsonrpc_connection_ref(VmsupJsonrpcConnection *conn)
{
	conn->ref_count++;
	return conn;
}

static void
vmsup_jsonrpc_connection_unref(VmsupJsonrpcConnection *conn)
{
	if (--conn->ref_count > 0)
		return;
	/* an attached idle source holds a ref: none is left here */
	g_assert(conn->idle_source == NULL);
	g_signal_handlers_disconnect_by_data(conn->stream, conn);
	g_object_unref(conn->stream);
	g_clear_pointer(&conn->subscription, vmsup_policy_subscription_free);
	g_free(conn);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupJsonrpcConnection, vmsup_jsonrpc_connection_unref)

/* destroying the source may drop the last ref on the connection holding @source */
static void
vmsup_jsonrpc_connection_clear_source(GSource **source)
{
	g_autoptr(GSource) stolen = g_steal_pointer(source);

	if (stolen != NULL)
		g_source_destroy(stolen);
}

static void
vmsup_jsonrpc_connection_close(VmsupJsonrpcConnection *conn)
{
	g_autoptr(VmsupJsonrpcConnection) keep = NULL;

	if (conn->closed)
		return;
	keep = vmsup_jsonrpc_connection_ref(conn);
	conn->closed = TRUE;
	g_debug("client %" G_GUINT64_FORMAT ": closed", conn->serial);
	vmsup_jsonrpc_connection_clear_source(&conn->idle_source);
	vmsup_line_stream_close(conn->stream);
	if (conn->server != NULL) {
		VmsupJsonrpcServer *server = conn->server;
		conn->server = NULL;
		g_ptr_array_remove_fast(server->connections, conn);
	}
}

/* flush what is queued, read nothing more, then close */
static void
vmsup_jsonrpc_connection_finish(VmsupJsonrpcConnection *conn)
{
	conn->closing = TRUE;
	vmsup_line_stream_close_after_flush(conn->stream);
}

static void
vmsup_jsonrpc_connection_maybe_finish(VmsupJsonrpcConnection *conn)
{
	if (!conn->closed && conn->eof && conn->n_pending == 0)
		vmsup_jsonrpc_connection_finish(conn);
}

/* a client with as many calls in flight as it may have waits for an answer before more are read */
static void
vmsup_jsonrpc_connection_update_pause(VmsupJsonrpcConnection *conn)
{
	if (!conn->closed)
		vmsup_line_stream_set_paused(conn->stream,
					     conn->n_pending >= VMSUP_JSONRPC_MAX_PENDING);
}

/* output */

static void
vmsup_jsonrpc_connection_send(VmsupJsonrpcConnection *conn, JsonNode *node)
{
	if (!conn->closed)
		vmsup_line_stream_send_node(conn->stream, node);
}

/* responses */

static JsonNode *
vmsup_jsonrpc_response_new(JsonNode *id, JsonNode *result)
{
	g_autoptr(JsonObject) obj = json_object_new();
	json_object_set_string_member(obj, "jsonrpc", "2.0");
	json_object_set_member(obj,
			       "id",
			       id != NULL ? json_node_copy(id) : json_node_new(JSON_NODE_NULL));
	json_object_set_member(obj, "result", result);
	return vmsup_json_node_new_object(obj);
}

static JsonNode *
vmsup_jsonrpc_error_new(JsonNode *id, gint code, const gchar *kind, const gchar *message)
{
	g_autoptr(JsonObject) obj = json_object_new();
	g_autoptr(JsonObject) err = json_object_new();
	g_autoptr(JsonObject) data = json_object_new();

	json_object_set_string_member(data, "kind", kind);
	json_object_set_int_member(err, "code", code);
	json_object_set_string_member(err, "message", message);
	json_object_set_object_member(err, "data", g_steal_pointer(&data));
	json_object_set_string_member(obj, "jsonrpc", "2.0");
	json_object_set_member(obj,
			       "id",
			       id != NULL ? json_node_copy(id) : json_node_new(JSON_NODE_NULL));
	json_object_set_object_member(obj, "error", g_steal_pointer(&err));
	return vmsup_json_node_new_object(obj);
}

static JsonNode *
vmsup_jsonrpc_error_new_gerror(JsonNode *id, const GError *error)
{
	return vmsup_jsonrpc_error_new(id,
				       vmsup_error_get_code(error),
				       vmsup_error_get_kind(error),
				       error->message);
}

static void
vmsup_jsonrpc_node_unref0(gpointer node)
{
	if (node != NULL)
		json_node_unref(node);
}

static VmsupJsonrpcBatch *
vmsup_jsonrpc_batch_new(VmsupJsonrpcConnection *conn, guint n)
{
	VmsupJsonrpcBatch *batch = g_new0(VmsupJsonrpcBatch, 1);
	batch->ref_count = 1;
	batch->conn = vmsup_jsonrpc_connection_ref(conn);
	batch->responses = g_ptr_array_new_full(n, vmsup_jsonrpc_node_unref0);
	g_ptr_array_set_size(batch->responses, n);
	batch->remaining = n;
	return batch;
}

static VmsupJsonrpcBatch *
vmsup_jsonrpc_batch_ref(VmsupJsonrpcBatch *batch)
{
	batch->ref_count++;
	return batch;
}

static void
vmsup_jsonrpc_batch_unref(VmsupJsonrpcBatch *batch)
{
	if (--batch->ref_count > 0)
		return;
	g_ptr_array_unref(batch->responses);
	vmsup_jsonrpc_connection_unref(batch->conn);
	g_free(batch);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupJsonrpcBatch, vmsup_jsonrpc_batch_unref)

static void
vmsup_jsonrpc_batch_complete(VmsupJsonrpcBatch *batch)
{
	g_autoptr(JsonArray) array = json_array_new();
	g_autoptr(JsonNode) node = NULL;

	for (guint i = 0; i < batch->responses->len; i++) {
		JsonNode *response = g_ptr_array_index(batch->responses, i);
		if (response != NULL)
			json_array_add_element(array, json_node_ref(response));
	}
	/* a batch of notifications gets no answer at all */
	if (json_array_get_length(array) == 0)
		return;
	node = json_node_new(JSON_NODE_ARRAY);
	json_node_set_array(node, array);
	vmsup_jsonrpc_connection_send(batch->conn, node);
}

/* @response: full, NULL for a notification */
static void
vmsup_jsonrpc_respond(VmsupJsonrpcConnection *conn,
		      VmsupJsonrpcBatch *batch,
		      guint index,
		      JsonNode *response)
{
	if (batch != NULL) {
		g_ptr_array_index(batch->responses, index) = response;
		if (--batch->remaining == 0)
			vmsup_jsonrpc_batch_complete(batch);
		return;
	}
	if (response == NULL)
		return;
	vmsup_jsonrpc_connection_send(conn, response);
	json_node_unref(response);
}

static void
vmsup_jsonrpc_respond_error(VmsupJsonrpcConnection *conn,
			    VmsupJsonrpcBatch *batch,
			    guint index,
			    JsonNode *id,
			    gboolean notification,
			    gint code,
			    const gchar *message)
{
	vmsup_jsonrpc_respond(
	    conn,
	    batch,
	    index,
	    notification ? NULL
			 : vmsup_jsonrpc_error_new(id, code, vmsup_error_to_kind(code), message));
}

/* requests */

static void
vmsup_jsonrpc_request_free(VmsupJsonrpcRequest *req)
{
	vmsup_jsonrpc_connection_unref(req->conn);
	g_clear_pointer(&req->id, json_node_unref);
	g_clear_pointer(&req->batch, vmsup_jsonrpc_batch_unref);
	g_free(req);
}

static void
vmsup_jsonrpc_request_reply(VmsupRpcCall *call,
			    JsonNode *result,
			    const GError *error,
			    gpointer user_data)
{
	VmsupJsonrpcRequest *req = user_data;
	VmsupJsonrpcConnection *conn = req->conn;
	JsonNode *response = NULL;

	if (req->id != NULL) {
		if (error != NULL)
			response = vmsup_jsonrpc_error_new_gerror(req->id, error);
		else
			response = vmsup_jsonrpc_response_new(req->id, json_node_ref(result));
	}
	if (result != NULL)
		json_node_unref(result);
	if (error != NULL)
		g_debug("client %" G_GUINT64_FORMAT ": %s failed: %s",
			conn->serial,
			vmsup_rpc_call_get_method(call)->rpc_name,
			error->message);
	if (response != NULL && vmsup_rpc_call_get_fd_list(call) != NULL && req->batch == NULL) {
		if (!conn->closed)
			vmsup_line_stream_send_node_with_fds(conn->stream,
							     response,
							     vmsup_rpc_call_get_fd_list(call));
		json_node_unref(response);
	} else {
		vmsup_jsonrpc_respond(conn, req->batch, req->index, response);
	}
	conn->n_pending--;
	conn->last_active = g_get_monotonic_time();
	vmsup_jsonrpc_connection_update_pause(conn);
	vmsup_jsonrpc_connection_maybe_finish(conn);
}

/* events.subscribe / events.unsubscribe, which the table answers */
static void
vmsup_jsonrpc_request_subscribe(VmsupRpcCall *call, gboolean subscribe, gpointer user_data)
{
	VmsupJsonrpcRequest *req = user_data;
	VmsupJsonrpcConnection *conn = req->conn;

	g_clear_pointer(&conn->subscription, vmsup_policy_subscription_free);
	if (subscribe)
		conn->subscription = vmsup_policy_subscribe(conn->ctx->policy, &conn->caller);
}

/* {jsonrpc, method, params}; @params (borrowed, nullable) */
static JsonNode *
vmsup_jsonrpc_notification_new(const gchar *method, JsonObject *params)
{
	g_autoptr(JsonObject) obj = json_object_new();

	json_object_set_string_member(obj, "jsonrpc", "2.0");
	json_object_set_string_member(obj, "method", method);
	json_object_set_object_member(obj,
				      "params",
				      params != NULL ? json_object_ref(params) : json_object_new());
	return vmsup_json_node_new_object(obj);
}

/* a replayed event, sent ahead of the answer to events.subscribe */
static void
vmsup_jsonrpc_request_notify(VmsupRpcCall *call,
			     const gchar *method,
			     JsonObject *params,
			     gpointer user_data)
{
	VmsupJsonrpcRequest *req = user_data;
	VmsupJsonrpcConnection *conn = req->conn;
	g_autoptr(JsonNode) node = NULL;

	if (conn->closed || conn->closing)
		return;
	node = vmsup_jsonrpc_notification_new(method, params);
	vmsup_jsonrpc_connection_send(conn, node);
}

/* ids are echoed exactly: a fraction would come back rounded, so only these */
static gboolean
vmsup_jsonrpc_id_is_valid(JsonNode *id)
{
	GType type;
	if (JSON_NODE_HOLDS_NULL(id))
		return TRUE;
	if (!JSON_NODE_HOLDS_VALUE(id))
		return FALSE;
	type = json_node_get_value_type(id);
	return type == G_TYPE_STRING || type == G_TYPE_INT64;
}

/* the top-level member a problem's path lies in is its first segment: "params" of "params.name" */
static gboolean
vmsup_jsonrpc_problem_in(const VmsupJsonProblem *problem, const gchar *member)
{
	gsize len = strlen(member);
	return strncmp(problem->path, member, len) == 0 &&
	       (problem->path[len] == '\0' || problem->path[len] == '.' ||
		problem->path[len] == '[');
}

/* of request @element (-1: not in a batch), one in the id first: that decides the answer's id */
static const VmsupJsonProblem *
vmsup_jsonrpc_find_problem(GPtrArray *problems, gint element)
{
	const VmsupJsonProblem *found = NULL;

	for (guint i = 0; problems != NULL && i < problems->len; i++) {
		const VmsupJsonProblem *problem = g_ptr_array_index(problems, i);
		if (problem->element != element)
			continue;
		if (vmsup_jsonrpc_problem_in(problem, "id"))
			return problem;
		if (found == NULL)
			found = problem;
	}
	return found;
}

/* a parameter is named as the client's API names it: 'name', not 'params.name' */
static gchar *
vmsup_jsonrpc_problem_message(const gchar *prefix, const VmsupJsonProblem *problem)
{
	const gchar *path = problem->path;

	if (g_str_has_prefix(path, "params."))
		path += strlen("params.");
	/* TRANSLATORS: "Invalid params: 'name': it contains a NUL character (\u0000), ..." */
	return g_strdup_printf(_("%s: '%s': %s"), prefix, path, problem->message);
}

/* why @id cannot be echoed (the answer then has id null), or NULL */
static gchar *
vmsup_jsonrpc_id_refusal(JsonNode *id, const VmsupJsonProblem *problem)
{
	if (problem != NULL && vmsup_jsonrpc_problem_in(problem, "id"))
		return vmsup_jsonrpc_problem_message(_("Invalid request"), problem);
	if (!vmsup_jsonrpc_id_is_valid(id))
		return g_strdup(_("Invalid request: 'id' must be a string, an integer or null"));
	return NULL;
}

static void
vmsup_jsonrpc_handle_request(VmsupJsonrpcConnection *conn,
			     JsonNode *node,
			     GPtrArray *problems,
			     VmsupJsonrpcBatch *batch,
			     guint index)
{
	const VmsupJsonProblem *problem =
	    vmsup_jsonrpc_find_problem(problems, batch != NULL ? (gint)index : -1);
	JsonObject *obj;
	JsonNode *id = NULL;
	JsonNode *params_node;
	const gchar *method_name;
	const VmsupRpcMethod *method;
	gboolean notification;
	JsonObject *params = NULL;
	VmsupJsonrpcRequest *req;
	g_autoptr(VmsupRpcCall) call = NULL;

	if (!JSON_NODE_HOLDS_OBJECT(node)) {
		vmsup_jsonrpc_respond_error(conn,
					    batch,
					    index,
					    NULL,
					    FALSE,
					    VMSUP_ERROR_INVALID_REQUEST,
					    _("Invalid request: expected a JSON object"));
		return;
	}
	obj = json_node_get_object(node);
	notification = !json_object_has_member(obj, "id");
	if (!notification) {
		g_autofree gchar *refusal = NULL;
		id = json_object_get_member(obj, "id");
		refusal = vmsup_jsonrpc_id_refusal(id, problem);
		if (refusal != NULL) {
			vmsup_jsonrpc_respond_error(conn,
						    batch,
						    index,
						    NULL,
						    FALSE,
						    VMSUP_ERROR_INVALID_REQUEST,
						    refusal);
			return;
		}
	}
	if (g_strcmp0(vmsup_json_object_get_string(obj, "jsonrpc", NULL), "2.0") != 0) {
		vmsup_jsonrpc_respond_error(conn,
					    batch,
					    index,
					    id,
					    FALSE,
					    VMSUP_ERROR_INVALID_REQUEST,
					    _("Invalid request: 'jsonrpc' must be \"2.0\""));
		return;
	}
	/* json-glib's reading of such a value is not what was sent: nothing of it is acted on */
	if (problem != NULL) {
		gboolean in_params = vmsup_jsonrpc_problem_in(problem, "params");
		g_autofree gchar *msg = vmsup_jsonrpc_problem_message(
		    in_params ? _("Invalid params") : _("Invalid request"),
		    problem);
		vmsup_jsonrpc_respond_error(conn,
					    batch,
					    index,
					    id,
					    in_params && notification,
					    in_params ? VMSUP_ERROR_INVALID_PARAMS
						      : VMSUP_ERROR_INVALID_REQUEST,
					    msg);
		return;
	}
	method_name = vmsup_json_object_get_string(obj, "method", NULL);
	if (method_name == NULL) {
		vmsup_jsonrpc_respond_error(conn,
					    batch,
					    index,
					    id,
					    FALSE,
					    VMSUP_ERROR_INVALID_REQUEST,
					    _("Invalid request: 'method' must be a string"));
		return;
	}
	params_node = json_object_get_member(obj, "params");
	if (params_node != NULL && !JSON_NODE_HOLDS_NULL(params_node)) {
		if (JSON_NODE_HOLDS_ARRAY(params_node)) {
			vmsup_jsonrpc_respond_error(
			    conn,
			    batch,
			    index,
			    id,
			    notification,
			    VMSUP_ERROR_INVALID_PARAMS,
			    _("Invalid params: vmsupd takes parameters by name, as an object"));
			return;
		}
		if (!JSON_NODE_HOLDS_OBJECT(params_node)) {
			vmsup_jsonrpc_respond_error(
			    conn,
			    batch,
			    index,
			    id,
			    FALSE,
			    VMSUP_ERROR_INVALID_REQUEST,
			    _("Invalid request: 'params' must be an object or an array"));
			return;
		}
		params = json_node_get_object(params_node);
	}

	g_debug("client %" G_GUINT64_FORMAT ": %s%s",
		conn->serial,
		method_name,
		notification ? " (notification)" : "");

	method = vmsup_rpc_table_lookup(method_name);
	if (method == NULL) {
		g_autofree gchar *shown = g_strescape(method_name, NULL);
		g_autofree gchar *msg = g_strdup_printf(_("Unknown method '%s'"), shown);
		vmsup_jsonrpc_respond_error(conn,
					    batch,
					    index,
					    id,
					    notification,
					    VMSUP_ERROR_METHOD_NOT_FOUND,
					    msg);
		return;
	}

	/* a descriptor goes with its own reply's line, which a batch or a notification lacks */
	if ((method->flags & VMSUP_RPC_FLAG_RETURNS_FD) && (batch != NULL || notification)) {
		g_autofree gchar *msg = g_strdup_printf(
		    _("Invalid request: '%s' answers with a file descriptor, so it must be "
		      "sent alone and with an id, not in a batch or as a notification"),
		    method->rpc_name);
		vmsup_jsonrpc_respond_error(conn,
					    batch,
					    index,
					    id,
					    notification,
					    VMSUP_ERROR_INVALID_REQUEST,
					    msg);
		return;
	}

	req = g_new0(VmsupJsonrpcRequest, 1);
	req->conn = vmsup_jsonrpc_connection_ref(conn);
	req->id = notification ? NULL : json_node_copy(id);
	req->batch = batch != NULL ? vmsup_jsonrpc_batch_ref(batch) : NULL;
	req->index = index;
	call = vmsup_rpc_call_new(method,
				  params,
				  &conn->caller,
				  vmsup_jsonrpc_request_reply,
				  req,
				  (GDestroyNotify)vmsup_jsonrpc_request_free);
	vmsup_rpc_call_set_subscriber(call, vmsup_jsonrpc_request_subscribe, req);
	vmsup_rpc_call_set_notifier(call, vmsup_jsonrpc_request_notify, req);
	vmsup_rpc_call_set_door(call, "jsonrpc");
	conn->n_pending++;
	vmsup_rpc_table_dispatch(conn->ctx, call);
}

/* one line: a request or a batch; text that is not strict JSON is a parse error */
static void
vmsup_jsonrpc_handle_line(VmsupJsonrpcConnection *conn, const gchar *data, gsize length)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GPtrArray) problems = NULL;
	g_autoptr(VmsupJsonrpcBatch) batch = NULL;
	JsonArray *array;
	guint n;

	while (length > 0 && g_ascii_isspace(data[length - 1]))
		length--;
	while (length > 0 && g_ascii_isspace(data[0])) {
		data++;
		length--;
	}
	if (length == 0)
		return;
	if (!g_utf8_validate_len(data, length, NULL)) {
		vmsup_jsonrpc_respond_error(conn,
					    NULL,
					    0,
					    NULL,
					    FALSE,
					    VMSUP_ERROR_PARSE,
					    _("Parse error: the request is not valid UTF-8"));
		return;
	}
	root = vmsup_json_parse_checked(data, length, VMSUP_JSON_CHECK_NONE, &problems, &error);
	if (root == NULL) {
		g_autofree gchar *msg = g_strdup_printf(_("Parse error: %s"), error->message);
		vmsup_jsonrpc_respond_error(conn, NULL, 0, NULL, FALSE, VMSUP_ERROR_PARSE, msg);
		return;
	}
	if (!JSON_NODE_HOLDS_ARRAY(root)) {
		vmsup_jsonrpc_handle_request(conn, root, problems, NULL, 0);
		return;
	}

	array = json_node_get_array(root);
	n = json_array_get_length(array);
	if (n == 0) {
		vmsup_jsonrpc_respond_error(conn,
					    NULL,
					    0,
					    NULL,
					    FALSE,
					    VMSUP_ERROR_INVALID_REQUEST,
					    _("Invalid request: an empty batch"));
		return;
	}
	if (n > VMSUP_JSONRPC_MAX_BATCH) {
		g_autofree gchar *msg =
		    g_strdup_printf(_("Invalid request: a batch holds at most %d requests"),
				    VMSUP_JSONRPC_MAX_BATCH);
		vmsup_jsonrpc_respond_error(conn,
					    NULL,
					    0,
					    NULL,
					    FALSE,
					    VMSUP_ERROR_INVALID_REQUEST,
					    msg);
		return;
	}
	batch = vmsup_jsonrpc_batch_new(conn, n);
	for (guint i = 0; i < n; i++)
		vmsup_jsonrpc_handle_request(conn,
					     json_array_get_element(array, i),
					     problems,
					     batch,
					     i);
}

/* input */

static void
vmsup_jsonrpc_connection_line_cb(VmsupLineStream *stream, GBytes *line, gpointer user_data)
{
	g_autoptr(VmsupJsonrpcConnection) conn = vmsup_jsonrpc_connection_ref(user_data);
	gsize length = 0;
	const gchar *data = g_bytes_get_data(line, &length);

	conn->last_active = g_get_monotonic_time();
	vmsup_jsonrpc_handle_line(conn, data, length);
	vmsup_jsonrpc_connection_update_pause(conn);
}

static void
vmsup_jsonrpc_connection_input_ended_cb(VmsupLineStream *stream,
					const GError *error,
					gpointer user_data)
{
	g_autoptr(VmsupJsonrpcConnection) conn = vmsup_jsonrpc_connection_ref(user_data);
	g_autofree gchar *msg = NULL;

	if (error == NULL) {
		conn->eof = TRUE;
		vmsup_jsonrpc_connection_maybe_finish(conn);
		return;
	}
	/* a line over the limit: the stream cannot be resynchronised, nothing after it is read */
	msg = g_strdup_printf(_("Invalid request: a line is longer than %d bytes; closing the "
				"connection"),
			      VMSUP_JSONRPC_MAX_LINE);
	g_message("JSON-RPC client %" G_GUINT64_FORMAT " (uid %u) sent a line over %d bytes, "
		  "disconnecting it",
		  conn->serial,
		  conn->caller.uid,
		  VMSUP_JSONRPC_MAX_LINE);
	vmsup_jsonrpc_respond_error(conn, NULL, 0, NULL, FALSE, VMSUP_ERROR_INVALID_REQUEST, msg);
	vmsup_jsonrpc_connection_finish(conn);
}

static void
vmsup_jsonrpc_connection_closed_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	VmsupJsonrpcConnection *conn = user_data;

	if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_BUSY))
		g_message("JSON-RPC client %" G_GUINT64_FORMAT " (uid %u): %s, disconnecting it",
			  conn->serial,
			  conn->caller.uid,
			  error->message);
	else if (error != NULL)
		g_debug("client %" G_GUINT64_FORMAT ": %s", conn->serial, error->message);
	vmsup_jsonrpc_connection_close(conn);
}

static VmsupJsonrpcConnection *
vmsup_jsonrpc_connection_new(VmsupJsonrpcServer *server, GIOStream *io, guint32 uid)
{
	VmsupJsonrpcConnection *conn = g_new0(VmsupJsonrpcConnection, 1);
	g_autofree gchar *label = NULL;

	conn->ref_count = 1;
	conn->server = server;
	conn->ctx = server->ctx;
	conn->serial = ++server->next_serial;
	conn->caller = vmsup_caller_for_uid(uid);
	label = g_strdup_printf("client %" G_GUINT64_FORMAT, conn->serial);
	conn->stream =
	    vmsup_line_stream_new(io, label, VMSUP_LINE_STREAM_RAW | VMSUP_LINE_STREAM_HALF_CLOSE);
	vmsup_line_stream_set_max_line(conn->stream, VMSUP_JSONRPC_MAX_LINE);
	vmsup_line_stream_set_write_limits(conn->stream,
					   VMSUP_JSONRPC_HIGH_WATER,
					   VMSUP_JSONRPC_MAX_QUEUE);
	g_signal_connect(conn->stream, "line", G_CALLBACK(vmsup_jsonrpc_connection_line_cb), conn);
	g_signal_connect(conn->stream,
			 "input-ended",
			 G_CALLBACK(vmsup_jsonrpc_connection_input_ended_cb),
			 conn);
	g_signal_connect(conn->stream,
			 "closed",
			 G_CALLBACK(vmsup_jsonrpc_connection_closed_cb),
			 conn);
	return conn;
}

/* accepting */

static gboolean
vmsup_jsonrpc_peer_in_group(GSocket *socket, gid_t primary_gid, gid_t gid)
{
	g_autofree gid_t *groups = NULL;
	socklen_t len = 64 * sizeof(gid_t);

	if (primary_gid == gid)
		return TRUE;
	for (guint attempt = 0; attempt < 2; attempt++) {
		g_free(groups);
		groups = g_malloc(len);
		if (getsockopt(g_socket_get_fd(socket), SOL_SOCKET, SO_PEERGROUPS, groups, &len) ==
		    0)
			break;
		if (errno != ERANGE)
			return FALSE;
		if (attempt == 1)
			return FALSE;
	}
	for (gsize i = 0; i < len / sizeof(gid_t); i++) {
		if (groups[i] == gid)
			return TRUE;
	}
	return FALSE;
}

static gboolean
vmsup_jsonrpc_server_authorize(VmsupJsonrpcServer *self,
			       GSocket *socket,
			       guint32 *out_uid,
			       GError **error)
{
	g_autoptr(GCredentials) creds = g_socket_get_credentials(socket, error);
	const struct ucred *ucred;

	if (creds == NULL)
		return FALSE;
	ucred = g_credentials_get_native(creds, G_CREDENTIALS_TYPE_LINUX_UCRED);
	if (ucred == NULL) {
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INTERNAL,
				    "no peer credentials on the socket");
		return FALSE;
	}
	*out_uid = ucred->uid;
	if (ucred->uid == 0 || (!self->system_mode && ucred->uid == geteuid()))
		return TRUE;
	if (self->system_mode && self->allowed_gid >= 0 &&
	    vmsup_jsonrpc_peer_in_group(socket, ucred->gid, (gid_t)self->allowed_gid))
		return TRUE;
	if (self->system_mode)
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Permission denied: uid %u may not use this vmsupd; it serves root "
			      "and members of its socket group"),
			    ucred->uid);
	else
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Permission denied: uid %u may not use this vmsupd; it serves only "
			      "uid %u and root"),
			    ucred->uid,
			    geteuid());
	return FALSE;
}

/* answers once with @error, then closes */
static void
vmsup_jsonrpc_connection_refuse(VmsupJsonrpcConnection *conn, const GError *error)
{
	g_autoptr(JsonNode) response = vmsup_jsonrpc_error_new_gerror(NULL, error);
	vmsup_jsonrpc_connection_send(conn, response);
	vmsup_jsonrpc_connection_finish(conn);
}

/* idle connections */

static gboolean
vmsup_jsonrpc_idle_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	return callback(user_data);
}

/* a source that only has a ready time: moving that costs nothing while requests flow */
static GSourceFuncs vmsup_jsonrpc_idle_funcs = {
    .dispatch = vmsup_jsonrpc_idle_dispatch,
};

/*
 * A subscriber waits for events and a pending call for its answer: neither
 * is idle, however long it sends nothing.
 */
static gboolean
vmsup_jsonrpc_connection_idle_cb(gpointer user_data)
{
	VmsupJsonrpcConnection *conn = user_data;
	gint64 now = g_get_monotonic_time();
	gboolean busy = conn->n_pending > 0 || conn->subscription != NULL || conn->closing ||
			vmsup_line_stream_get_queued(conn->stream) > 0;
	g_autoptr(GError) error = NULL;
	guint timeout_s = (guint)(conn->idle_timeout_us / G_USEC_PER_SEC);

	if (busy || now - conn->last_active < conn->idle_timeout_us) {
		g_source_set_ready_time(conn->idle_source,
					(busy ? now : conn->last_active) + conn->idle_timeout_us);
		return G_SOURCE_CONTINUE;
	}
	g_debug("client %" G_GUINT64_FORMAT ": idle for %u s, closing", conn->serial, timeout_s);
	g_set_error(&error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_TIMEOUT,
		    /* TRANSLATORS: IdleTimeoutSec is a key of vmsupd.conf, do not translate it */
		    _("vmsupd closes this connection: nothing was asked on it for %u s "
		      "(IdleTimeoutSec=%u); connect again to send more"),
		    timeout_s,
		    timeout_s);
	vmsup_jsonrpc_connection_refuse(conn, error);
	return G_SOURCE_CONTINUE;
}

static void
vmsup_jsonrpc_connection_start_idle_timer(VmsupJsonrpcConnection *conn, guint timeout_s)
{
	if (timeout_s == 0)
		return;
	conn->idle_timeout_us = (gint64)timeout_s * G_USEC_PER_SEC;
	conn->last_active = g_get_monotonic_time();
	conn->idle_source = g_source_new(&vmsup_jsonrpc_idle_funcs, sizeof(GSource));
	g_source_set_ready_time(conn->idle_source, conn->last_active + conn->idle_timeout_us);
	g_source_set_callback(conn->idle_source,
			      vmsup_jsonrpc_connection_idle_cb,
			      vmsup_jsonrpc_connection_ref(conn),
			      (GDestroyNotify)vmsup_jsonrpc_connection_unref);
	g_source_attach(conn->idle_source, NULL);
}

/* connection limits */

/*
 * Root and the daemon's own uid are not counted per user and have slots no
 * one else may take, so a crowd of another user's connections never locks
 * out the administrator. Connections being refused do not count.
 */
static gboolean
vmsup_jsonrpc_server_admit(VmsupJsonrpcServer *self, VmsupJsonrpcConnection *conn, GError **error)
{
	gboolean privileged = !conn->caller.restricted;
	guint total = 0;
	guint mine = 0;

	for (guint i = 0; i < self->connections->len; i++) {
		VmsupJsonrpcConnection *other = g_ptr_array_index(self->connections, i);
		if (other == conn || other->closing || other->closed)
			continue;
		total++;
		if (other->caller.uid == conn->caller.uid)
			mine++;
	}
	if (privileged) {
		if (total < VMSUP_JSONRPC_MAX_CONNECTIONS + VMSUP_JSONRPC_RESERVED_CONNECTIONS)
			return TRUE;
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_BUSY,
		    _("vmsupd already serves %u connections, all it takes (%d for all users "
		      "and %d more kept for root and its own user); close some and try "
		      "again"),
		    total,
		    VMSUP_JSONRPC_MAX_CONNECTIONS,
		    VMSUP_JSONRPC_RESERVED_CONNECTIONS);
		return FALSE;
	}
	if (self->max_per_user > 0 && mine >= self->max_per_user) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    /* TRANSLATORS: MaxConnectionsPerUser is a key of vmsupd.conf, do not
			       translate it */
			    _("uid %u already has %u connections to vmsupd "
			      "(MaxConnectionsPerUser=%u); close some or raise the limit in "
			      "vmsupd.conf"),
			    conn->caller.uid,
			    mine,
			    self->max_per_user);
		return FALSE;
	}
	if (total >= VMSUP_JSONRPC_MAX_CONNECTIONS) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    _("vmsupd already serves %u connections, the most it takes from all "
			      "users together; try again later, or ask its administrator to lower "
			      "MaxConnectionsPerUser in vmsupd.conf"),
			    total);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vmsup_jsonrpc_server_incoming_cb(GSocketService *service,
				 GSocketConnection *stream,
				 GObject *source_object,
				 gpointer user_data)
{
	VmsupJsonrpcServer *self = VMSUP_JSONRPC_SERVER(user_data);
	g_autoptr(GError) error = NULL;
	VmsupJsonrpcConnection *conn;
	guint32 uid = G_MAXUINT32;
	gboolean authorized;

	authorized = vmsup_jsonrpc_server_authorize(self,
						    g_socket_connection_get_socket(stream),
						    &uid,
						    &error);
	conn = vmsup_jsonrpc_connection_new(self, G_IO_STREAM(stream), uid);
	g_ptr_array_add(self->connections, conn);
	/* a refusal is written, nothing is read before the client is let in */
	vmsup_line_stream_set_paused(conn->stream, TRUE);
	vmsup_line_stream_start(conn->stream);
	if (!authorized) {
		g_message("refused a JSON-RPC client of uid %u: %s", uid, error->message);
		vmsup_jsonrpc_connection_refuse(conn, error);
		return FALSE;
	}
	if (!vmsup_jsonrpc_server_admit(self, conn, &error)) {
		g_message("refused a JSON-RPC client of uid %u: %s", uid, error->message);
		vmsup_jsonrpc_connection_refuse(conn, error);
		return FALSE;
	}
	g_debug("client %" G_GUINT64_FORMAT ": connected, uid %u", conn->serial, uid);
	vmsup_jsonrpc_connection_start_idle_timer(conn, self->idle_timeout_s);
	vmsup_line_stream_set_paused(conn->stream, FALSE);
	/* a client mostly sends its request as it connects: answer it now, not one iteration later
	 */
	vmsup_line_stream_read_now(conn->stream);
	return FALSE;
}

/* takes @service; the peer checks of vmsup_jsonrpc_server_authorize() apply to every client */
static void
vmsup_jsonrpc_server_serve(VmsupJsonrpcServer *self,
			   GSocketService *service,
			   gboolean system_mode,
			   gint64 allowed_gid)
{
	self->system_mode = system_mode;
	self->allowed_gid = allowed_gid;
	g_signal_connect_object(service,
				"incoming",
				G_CALLBACK(vmsup_jsonrpc_server_incoming_cb),
				self,
				0);
	g_socket_service_start(service);
	self->service = service;
}

/* public */

gboolean
vmsup_jsonrpc_server_listen(VmsupJsonrpcServer *self,
			    const gchar *socket_path,
			    gboolean system_mode,
			    gint64 allowed_gid,
			    GError **error)
{
	g_autoptr(GSocketAddress) address = NULL;
	g_autoptr(GSocketService) service = NULL;
	gboolean group = system_mode && allowed_gid >= 0;
	mode_t mode = group ? 0660 : 0600;
	mode_t old_umask;
	gboolean ok;

	g_return_val_if_fail(VMSUP_IS_JSONRPC_SERVER(self), FALSE);
	g_return_val_if_fail(socket_path != NULL, FALSE);
	g_return_val_if_fail(self->service == NULL, FALSE);

	address = g_unix_socket_address_new(socket_path);
	service = g_socket_service_new();
	/* clients that connect in a burst wait in the backlog instead of failing */
	g_socket_listener_set_backlog(G_SOCKET_LISTENER(service),
				      VMSUP_JSONRPC_MAX_CONNECTIONS +
					  VMSUP_JSONRPC_RESERVED_CONNECTIONS);
	/* the socket file is born with its final mode: no window with a wider one */
	old_umask = umask(0777 & ~mode);
	ok = g_socket_listener_add_address(G_SOCKET_LISTENER(service),
					   address,
					   G_SOCKET_TYPE_STREAM,
					   G_SOCKET_PROTOCOL_DEFAULT,
					   /* source_object= */ NULL,
					   /* effective_address= */ NULL,
					   error);
	umask(old_umask);
	if (!ok) {
		g_prefix_error(error, _("Cannot listen on %s: "), socket_path);
		vmsup_error_convert(error);
		return FALSE;
	}
	self->socket_path = g_strdup(socket_path);
	if (chmod(socket_path, mode) != 0 ||
	    (group && chown(socket_path, (uid_t)-1, (gid_t)allowed_gid) != 0)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot set the permissions of %s: %s"),
			    socket_path,
			    g_strerror(errno));
		g_socket_listener_close(G_SOCKET_LISTENER(service));
		g_unlink(socket_path);
		g_clear_pointer(&self->socket_path, g_free);
		return FALSE;
	}
	if (group) {
		/* the group must be able to reach the socket, not to list the directory */
		g_autofree gchar *dir = g_path_get_dirname(socket_path);
		GStatBuf st;
		if (g_stat(dir, &st) == 0 && (st.st_mode & S_IXGRP) == 0 &&
		    (chown(dir, (uid_t)-1, (gid_t)allowed_gid) != 0 ||
		     chmod(dir, (st.st_mode & 07777) | S_IXGRP) != 0))
			g_warning("cannot open %s to group %" G_GINT64_FORMAT ": %s, ignoring",
				  dir,
				  allowed_gid,
				  g_strerror(errno));
	}
	vmsup_jsonrpc_server_serve(self, g_steal_pointer(&service), system_mode, allowed_gid);
	return TRUE;
}

gboolean
vmsup_jsonrpc_server_adopt(VmsupJsonrpcServer *self,
			   gint fd,
			   gboolean system_mode,
			   gint64 allowed_gid,
			   GError **error)
{
	g_autoptr(GSocketService) service = NULL;
	g_autoptr(GSocket) socket = NULL;

	g_return_val_if_fail(VMSUP_IS_JSONRPC_SERVER(self), FALSE);
	g_return_val_if_fail(fd >= 0, FALSE);
	g_return_val_if_fail(self->service == NULL, FALSE);

	socket = g_socket_new_from_fd(fd, error);
	if (socket == NULL) {
		close(fd);
		g_prefix_error(error, _("Cannot use the socket systemd passed: "));
		vmsup_error_convert(error);
		return FALSE;
	}
	service = g_socket_service_new();
	if (!g_socket_listener_add_socket(G_SOCKET_LISTENER(service),
					  socket,
					  /* source_object= */ NULL,
					  error)) {
		g_prefix_error(error, _("Cannot use the socket systemd passed: "));
		vmsup_error_convert(error);
		return FALSE;
	}
	/* self->socket_path stays NULL: the file is systemd's, never unlinked or chmod'ed here */
	vmsup_jsonrpc_server_serve(self, g_steal_pointer(&service), system_mode, allowed_gid);
	return TRUE;
}

/* whether subscriber @conn hears of @method: the policy decides, by the VM or operation named */
static gboolean
vmsup_jsonrpc_connection_may_hear(VmsupJsonrpcConnection *conn,
				  const gchar *method,
				  JsonObject *params)
{
	const gchar *name =
	    params != NULL ? vmsup_json_object_get_string(params, "name", NULL) : NULL;
	gint64 id = params != NULL ? vmsup_json_object_get_int(params, "id", 0) : 0;

	if (g_strcmp0(method, VMSUP_RPC_EVENT_VM_CHANGED) == 0)
		return vmsup_policy_subscription_admits(conn->subscription,
							VMSUP_POLICY_EVENT_VM_CHANGED,
							name,
							0);
	if (g_strcmp0(method, VMSUP_RPC_EVENT_VM_REMOVED) == 0)
		return vmsup_policy_subscription_admits(conn->subscription,
							VMSUP_POLICY_EVENT_VM_REMOVED,
							name,
							0);
	if (g_strcmp0(method, VMSUP_RPC_EVENT_OPERATION_CHANGED) == 0)
		return vmsup_policy_subscription_admits(conn->subscription,
							VMSUP_POLICY_EVENT_OPERATION_CHANGED,
							NULL,
							id);
	return FALSE;
}

void
vmsup_jsonrpc_server_emit_event(VmsupJsonrpcServer *self, const gchar *method, JsonObject *params)
{
	g_autoptr(JsonNode) node = NULL;
	g_autoptr(GBytes) line = NULL;
	g_autoptr(GPtrArray) targets = g_ptr_array_new();

	g_return_if_fail(VMSUP_IS_JSONRPC_SERVER(self));
	g_return_if_fail(method != NULL);

	for (guint i = 0; i < self->connections->len; i++) {
		VmsupJsonrpcConnection *conn = g_ptr_array_index(self->connections, i);
		if (conn->subscription != NULL && !conn->closed && !conn->closing &&
		    vmsup_jsonrpc_connection_may_hear(conn, method, params))
			g_ptr_array_add(targets, vmsup_jsonrpc_connection_ref(conn));
	}
	if (targets->len == 0)
		return;
	g_ptr_array_set_free_func(targets, (GDestroyNotify)vmsup_jsonrpc_connection_unref);

	node = vmsup_jsonrpc_notification_new(method, params);
	line = vmsup_line_stream_encode(node, VMSUP_LINE_STREAM_NONE);
	for (guint i = 0; i < targets->len; i++) {
		VmsupJsonrpcConnection *conn = g_ptr_array_index(targets, i);
		if (!conn->closed)
			vmsup_line_stream_send_line(conn->stream, line);
	}
}

void
vmsup_jsonrpc_server_close(VmsupJsonrpcServer *self)
{
	g_return_if_fail(VMSUP_IS_JSONRPC_SERVER(self));

	if (self->service != NULL) {
		g_socket_service_stop(self->service);
		g_socket_listener_close(G_SOCKET_LISTENER(self->service));
		g_clear_object(&self->service);
	}
	if (self->socket_path != NULL) {
		g_unlink(self->socket_path);
		g_clear_pointer(&self->socket_path, g_free);
	}
	while (self->connections->len > 0)
		vmsup_jsonrpc_connection_close(g_ptr_array_index(self->connections, 0));
}

void
vmsup_jsonrpc_server_set_limits(VmsupJsonrpcServer *self, guint max_per_user, guint idle_timeout_s)
{
	g_return_if_fail(VMSUP_IS_JSONRPC_SERVER(self));
	self->max_per_user = max_per_user;
	self->idle_timeout_s = idle_timeout_s;
}

guint
vmsup_jsonrpc_server_get_n_connections(VmsupJsonrpcServer *self)
{
	g_return_val_if_fail(VMSUP_IS_JSONRPC_SERVER(self), 0);
	return self->connections->len;
}

gchar *
vmsup_jsonrpc_server_process_data(VmsupJsonrpcServer *self,
				  const gchar *data,
				  gsize length,
				  guint32 uid)
{
	g_autoptr(VmsupJsonrpcConnection) conn = NULL;
	g_autoptr(GInputStream) in = NULL;
	g_autoptr(GOutputStream) out = NULL;
	g_autoptr(GIOStream) io = NULL;
	gchar *written;

	g_return_val_if_fail(VMSUP_IS_JSONRPC_SERVER(self), NULL);

	in = g_memory_input_stream_new_from_data(g_memdup2(data, length), length, g_free);
	out = g_memory_output_stream_new_resizable();
	io = g_simple_io_stream_new(in, out);
	conn = vmsup_jsonrpc_connection_new(self, io, uid);
	/* not in self->connections: it receives no events and is never counted */
	conn->server = NULL;
	vmsup_line_stream_start(conn->stream);
	vmsup_line_stream_read_now(conn->stream);
	written = g_strndup(g_memory_output_stream_get_data(G_MEMORY_OUTPUT_STREAM(out)),
			    g_memory_output_stream_get_data_size(G_MEMORY_OUTPUT_STREAM(out)));
	/* a stream nothing was written to has no data */
	if (written == NULL)
		written = g_strdup("");
	vmsup_jsonrpc_connection_close(conn);
	return written;
}

/* GObject */

static void
vmsup_jsonrpc_server_dispose(GObject *object)
{
	VmsupJsonrpcServer *self = VMSUP_JSONRPC_SERVER(object);
	vmsup_jsonrpc_server_close(self);
	G_OBJECT_CLASS(vmsup_jsonrpc_server_parent_class)->dispose(object);
}

static void
vmsup_jsonrpc_server_finalize(GObject *object)
{
	VmsupJsonrpcServer *self = VMSUP_JSONRPC_SERVER(object);
	g_ptr_array_unref(self->connections);
	G_OBJECT_CLASS(vmsup_jsonrpc_server_parent_class)->finalize(object);
}

static void
vmsup_jsonrpc_server_class_init(VmsupJsonrpcServerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = vmsup_jsonrpc_server_dispose;
	object_class->finalize = vmsup_jsonrpc_server_finalize;
}

static void
vmsup_jsonrpc_server_init(VmsupJsonrpcServer *self)
{
	self->connections =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_jsonrpc_connection_unref);
	self->allowed_gid = -1;
	self->max_per_user = VMSUP_JSONRPC_DEFAULT_MAX_PER_USER;
	self->idle_timeout_s = VMSUP_JSONRPC_DEFAULT_IDLE_TIMEOUT_S;
}

static void
vmsup_jsonrpc_server_event_cb(VmsupEventSource *events,
			      guint event,
			      const gchar *method,
			      JsonObject *params,
			      VmsupJsonrpcServer *self)
{
	gint64 time_us = 0;
	guint64 seq = vmsup_event_source_get_last_seq(events, &time_us);
	g_autofree gchar *time = vmsup_event_journal_format_time(time_us);
	g_autoptr(JsonObject) stamped = vmsup_event_source_stamp(params, seq, time);

	vmsup_jsonrpc_server_emit_event(self, method, stamped);
}

VmsupJsonrpcServer *
vmsup_jsonrpc_server_new(const VmsupRpcContext *ctx)
{
	VmsupJsonrpcServer *self;

	g_return_val_if_fail(ctx != NULL, NULL);
	g_return_val_if_fail(VMSUP_IS_POLICY(ctx->policy), NULL);
	self = g_object_new(VMSUP_TYPE_JSONRPC_SERVER, NULL);
	self->ctx = ctx;
	if (ctx->events != NULL)
		g_signal_connect_object(ctx->events,
					"event",
					G_CALLBACK(vmsup_jsonrpc_server_event_cb),
					self,
					G_CONNECT_DEFAULT);
	return self;
}
