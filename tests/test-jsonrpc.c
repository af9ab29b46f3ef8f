/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The JSON-RPC transport against an in-process server: protocol corner
 * cases, limits, many and misbehaving clients, peer credentials. Clients
 * are non-blocking sockets driven by the same main loop as the server.
 */

#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmsup-daemon.h"
#include "vmsup-error.h"
#include "vmsup-event-source.h"
#include "vmsup-json.h"
#include "vmsup-jsonrpc-server.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-service-workspace-hooks.h"
#include "vmsup-vm-store.h"
#include "vmsup-workspace-service.h"

#define TIMEOUT_S 20

typedef struct {
	gchar *dir;
	gchar *socket_path;
	VmsupRpcContext ctx;
	VmsupPolicy *policy;
	VmsupJsonrpcServer *server;
	VmsupVmService *vm_service; /* NULL unless a test adds one */
} Fixture;

typedef struct {
	GSocketConnection *conn;
	GSocket *socket;
	GSource *in_source;
	GSource *out_source;
	GString *in;
	GByteArray *out;
	gboolean eof;
} TestClient;

/* clients */

static gboolean
client_in_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
	TestClient *c = user_data;
	gchar buf[65536];

	for (;;) {
		g_autoptr(GError) error = NULL;
		gssize n = g_socket_receive(socket, buf, sizeof(buf), NULL, &error);
		if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			return G_SOURCE_CONTINUE;
		if (n <= 0) {
			c->eof = TRUE;
			g_clear_pointer(&c->in_source, g_source_unref);
			return G_SOURCE_REMOVE;
		}
		g_string_append_len(c->in, buf, n);
	}
}

static gboolean
client_out_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
	TestClient *c = user_data;

	while (c->out->len > 0) {
		g_autoptr(GError) error = NULL;
		gssize n =
		    g_socket_send(socket, (const gchar *)c->out->data, c->out->len, NULL, &error);
		if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			return G_SOURCE_CONTINUE;
		if (n < 0) {
			/* the server hung up on us: what is unsent stays unsent */
			g_byte_array_set_size(c->out, 0);
			break;
		}
		g_byte_array_remove_range(c->out, 0, n);
	}
	g_clear_pointer(&c->out_source, g_source_unref);
	return G_SOURCE_REMOVE;
}

/* @reads: FALSE makes a client that never reads a byte */
static TestClient *
client_new(Fixture *f, gboolean reads)
{
	TestClient *c = g_new0(TestClient, 1);
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(f->socket_path);
	g_autoptr(GError) error = NULL;

	c->conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(address), NULL, &error);
	g_assert_no_error(error);
	c->socket = g_socket_connection_get_socket(c->conn);
	g_socket_set_blocking(c->socket, FALSE);
	c->in = g_string_new(NULL);
	c->out = g_byte_array_new();
	if (reads) {
		c->in_source =
		    g_socket_create_source(c->socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
		g_source_set_callback(c->in_source, G_SOURCE_FUNC(client_in_cb), c, NULL);
		g_source_attach(c->in_source, NULL);
	}
	return c;
}

static void
client_free(TestClient *c)
{
	if (c->in_source != NULL) {
		g_source_destroy(c->in_source);
		g_source_unref(c->in_source);
	}
	if (c->out_source != NULL) {
		g_source_destroy(c->out_source);
		g_source_unref(c->out_source);
	}
	g_io_stream_close(G_IO_STREAM(c->conn), NULL, NULL);
	g_object_unref(c->conn);
	g_string_free(c->in, TRUE);
	g_byte_array_unref(c->out);
	g_free(c);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestClient, client_free)

static void
client_send_raw(TestClient *c, const gchar *data, gsize len)
{
	g_byte_array_append(c->out, (const guint8 *)data, len);
	if (c->out_source != NULL)
		return;
	c->out_source = g_socket_create_source(c->socket, G_IO_OUT, NULL);
	g_source_set_callback(c->out_source, G_SOURCE_FUNC(client_out_cb), c, NULL);
	g_source_attach(c->out_source, NULL);
}

static void
client_send(TestClient *c, const gchar *line)
{
	client_send_raw(c, line, strlen(line));
	client_send_raw(c, "\n", 1);
}

static gboolean
client_has_line(gpointer data)
{
	TestClient *c = data;
	return c->eof || memchr(c->in->str, '\n', c->in->len) != NULL;
}

static gboolean
client_is_eof(gpointer data)
{
	return ((TestClient *)data)->eof;
}

/* the next line, or NULL at end of stream */
static gchar *
client_read_line(TestClient *c)
{
	const gchar *nl;
	gchar *line;

	vmsup_test_wait_until(client_has_line, c, TIMEOUT_S);
	nl = memchr(c->in->str, '\n', c->in->len);
	if (nl == NULL)
		return NULL;
	line = g_strndup(c->in->str, nl - c->in->str);
	g_string_erase(c->in, 0, nl - c->in->str + 1);
	return line;
}

static JsonNode *
client_read_json(TestClient *c)
{
	g_autofree gchar *line = client_read_line(c);
	g_autoptr(GError) error = NULL;
	JsonNode *node;

	g_assert_nonnull(line);
	node = vmsup_json_parse(line, -1, &error);
	g_assert_no_error(error);
	return node;
}

static JsonObject *
client_read_object(TestClient *c)
{
	g_autoptr(JsonNode) node = client_read_json(c);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
	return json_object_ref(json_node_get_object(node));
}

static JsonObject *
client_call(TestClient *c, const gchar *request)
{
	client_send(c, request);
	return client_read_object(c);
}

static void
assert_error(JsonObject *reply, gint code, const gchar *kind)
{
	JsonObject *err;
	JsonObject *data;

	g_assert_cmpstr(vmsup_json_object_get_string(reply, "jsonrpc", NULL), ==, "2.0");
	g_assert_false(json_object_has_member(reply, "result"));
	err = json_object_get_object_member(reply, "error");
	g_assert_nonnull(err);
	g_assert_cmpint(vmsup_json_object_get_int(err, "code", 0), ==, code);
	g_assert_nonnull(vmsup_json_object_get_string(err, "message", NULL));
	data = json_object_get_object_member(err, "data");
	g_assert_nonnull(data);
	g_assert_cmpstr(vmsup_json_object_get_string(data, "kind", NULL), ==, kind);
}

static void
assert_id_null(JsonObject *reply)
{
	JsonNode *id = json_object_get_member(reply, "id");
	g_assert_nonnull(id);
	g_assert_true(JSON_NODE_HOLDS_NULL(id));
}

static const gchar *
error_message(JsonObject *reply)
{
	return vmsup_json_object_get_string(json_object_get_object_member(reply, "error"),
					    "message",
					    NULL);
}

/* a round trip that must work: the connection is still usable */
static void
assert_alive(TestClient *c)
{
	g_autoptr(JsonObject) reply =
	    client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":\"alive\",\"method\":\"daemon.info\"}");
	g_assert_cmpstr(vmsup_json_object_get_string(reply, "id", NULL), ==, "alive");
	g_assert_true(json_object_has_member(reply, "result"));
}

/* fixture */

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->dir = vmsup_test_make_tmpdir();
	f->socket_path = g_build_filename(f->dir, "s.sock", NULL);
	f->ctx.mode = "session";
	f->ctx.socket_path = f->socket_path;
	f->ctx.started_at = g_get_real_time();
	f->policy = vmsup_policy_new(NULL);
	f->ctx.policy = f->policy;
	f->server = vmsup_jsonrpc_server_new(&f->ctx);
	g_assert_true(vmsup_jsonrpc_server_listen(f->server, f->socket_path, FALSE, -1, &error));
	g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_clear_object(&f->server);
	g_clear_object(&f->policy);
	g_clear_object(&f->vm_service);
	vmsup_test_drain_main_context();
	/* the server removes its socket file */
	g_assert_false(g_file_test(f->socket_path, G_FILE_TEST_EXISTS));
	vmsup_test_rm_rf(f->dir);
	g_free(f->socket_path);
	g_free(f->dir);
}

/* tests */

static void
test_valid(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autoptr(JsonObject) reply = NULL;
	g_autoptr(JsonObject) reply2 = NULL;
	JsonObject *result;

	reply = client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"daemon.info\"}");
	g_assert_cmpstr(vmsup_json_object_get_string(reply, "jsonrpc", NULL), ==, "2.0");
	g_assert_cmpint(vmsup_json_object_get_int(reply, "id", 0), ==, 7);
	g_assert_false(json_object_has_member(reply, "error"));
	result = json_object_get_object_member(reply, "result");
	g_assert_cmpstr(vmsup_json_object_get_string(result, "version", NULL), ==, PACKAGE_VERSION);
	g_assert_cmpstr(vmsup_json_object_get_string(result, "socket", NULL), ==, f->socket_path);

	/* string ids come back as strings, params may be given or not */
	reply2 = client_call(c,
			     "{\"jsonrpc\":\"2.0\",\"id\":\"x-1\",\"method\":\"daemon.info\","
			     "\"params\":{}}");
	g_assert_cmpstr(vmsup_json_object_get_string(reply2, "id", NULL), ==, "x-1");
	g_assert_true(json_object_has_member(reply2, "result"));
}

static void
test_socket_mode(Fixture *f, gconstpointer data)
{
	GStatBuf st;
	g_assert_cmpint(g_stat(f->socket_path, &st), ==, 0);
	g_assert_true(S_ISSOCK(st.st_mode));
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);
}

static void
test_notification(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autoptr(JsonObject) reply = NULL;

	/* neither a notification nor a failing one is answered; the request after it is */
	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.info\"}");
	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"no.such.method\"}");
	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"vm.get\",\"params\":{\"name\":5}}");
	reply = client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"daemon.info\"}");
	g_assert_cmpint(vmsup_json_object_get_int(reply, "id", 0), ==, 2);
	g_assert_true(json_object_has_member(reply, "result"));
	g_assert_cmpuint(c->in->len, ==, 0);
}

static void
test_batch(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autoptr(JsonNode) node = NULL;
	g_autoptr(JsonObject) empty = NULL;
	JsonArray *array;
	JsonObject *r0, *r1, *r2;

	client_send(c,
		    "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\"},"
		    " {\"jsonrpc\":\"2.0\",\"method\":\"daemon.info\"},"
		    " {\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"},"
		    " 5]");
	node = client_read_json(c);
	g_assert_true(JSON_NODE_HOLDS_ARRAY(node));
	array = json_node_get_array(node);
	/* the notification gets no entry */
	g_assert_cmpuint(json_array_get_length(array), ==, 3);
	r0 = json_array_get_object_element(array, 0);
	r1 = json_array_get_object_element(array, 1);
	r2 = json_array_get_object_element(array, 2);
	g_assert_cmpint(vmsup_json_object_get_int(r0, "id", 0), ==, 1);
	g_assert_true(json_object_has_member(r0, "result"));
	g_assert_cmpint(vmsup_json_object_get_int(r1, "id", 0), ==, 2);
	assert_error(r1, -32601, "method-not-found");
	assert_id_null(r2);
	assert_error(r2, -32600, "invalid-request");

	/* an empty batch is one invalid request, not an empty array */
	empty = client_call(c, "[]");
	assert_error(empty, -32600, "invalid-request");
	assert_id_null(empty);

	/* a batch of notifications is not answered at all */
	client_send(c,
		    "[{\"jsonrpc\":\"2.0\",\"method\":\"daemon.info\"},"
		    "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.info\"}]");
	assert_alive(c);
	g_assert_cmpuint(c->in->len, ==, 0);
}

static void
test_batch_too_large(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autoptr(GString) batch = g_string_new("[");
	g_autoptr(JsonObject) reply = NULL;

	for (guint i = 0; i <= VMSUP_JSONRPC_MAX_BATCH; i++)
		g_string_append_printf(
		    batch,
		    "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"daemon.info\"}",
		    i > 0 ? "," : "",
		    i);
	g_string_append(batch, "]");
	reply = client_call(c, batch->str);
	assert_error(reply, -32600, "invalid-request");
	assert_alive(c);
}

static void
test_parse_error(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	const gchar *bad[] = {"{oops", "{\"jsonrpc\":\"2.0\",", "\"unterminated", "nul\x01l"};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(JsonObject) reply = client_call(c, bad[i]);
		assert_error(reply, -32700, "parse-error");
		assert_id_null(reply);
	}
	/* not UTF-8 */
	{
		g_autoptr(JsonObject) reply =
		    client_call(c, "{\"jsonrpc\":\"2.0\",\"x\":\"\xff\xfe\"}");
		assert_error(reply, -32700, "parse-error");
	}
	/* blank lines are no requests */
	client_send(c, "");
	client_send(c, "   \r");
	assert_alive(c);
	g_assert_cmpuint(c->in->len, ==, 0);
}

/* json-glib recurses per nesting level: without a limit this overflows the stack */
static void
test_deep_nesting(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autofree gchar *deep = g_strnfill(200000, '[');
	g_autofree gchar *within = NULL;
	g_autoptr(JsonObject) reply = NULL;
	g_autoptr(JsonObject) reply2 = NULL;

	reply = client_call(c, deep);
	assert_error(reply, -32700, "parse-error");
	g_assert_nonnull(strstr(error_message(reply), "nested"));
	/* brackets inside strings do not count */
	within = g_strdup_printf("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\"}", deep);
	reply2 = client_call(c, within);
	assert_error(reply2, -32601, "method-not-found");
	assert_alive(c);
}

static void
test_invalid_request(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	const gchar *bad[] = {
	    "42",
	    "\"daemon.info\"",
	    "{\"id\":1,\"method\":\"daemon.info\"}",
	    "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"daemon.info\"}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1}",
	    "{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"daemon.info\"}",
	    "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"daemon.info\"}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\",\"params\":\"x\"}",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(JsonObject) reply = client_call(c, bad[i]);
		g_test_message("%s", bad[i]);
		assert_error(reply, -32600, "invalid-request");
	}
	assert_alive(c);
}

static void
test_unknown_method(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autoptr(JsonObject) reply =
	    client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"vm.explode\"}");

	assert_error(reply, -32601, "method-not-found");
	g_assert_cmpint(vmsup_json_object_get_int(reply, "id", 0), ==, 3);
	g_assert_nonnull(strstr(error_message(reply), "vm.explode"));
}

static void
test_wrong_params(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autoptr(JsonObject) r1 = NULL;
	g_autoptr(JsonObject) r2 = NULL;
	g_autoptr(JsonObject) r3 = NULL;
	g_autoptr(JsonObject) r4 = NULL;
	g_autoptr(JsonObject) r5 = NULL;

	r1 = client_call(
	    c,
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vm.get\",\"params\":{\"name\":5}}");
	assert_error(r1, -32602, "invalid-params");
	g_assert_nonnull(strstr(error_message(r1), "'name'"));
	r2 = client_call(c,
			 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"vm.create\","
			 "\"params\":{\"name\":\"a\",\"colour\":\"red\"}}");
	assert_error(r2, -32602, "invalid-params");
	g_assert_nonnull(strstr(error_message(r2), "'colour'"));
	r3 = client_call(c,
			 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"vm.get\",\"params\":[\"a\"]}");
	assert_error(r3, -32602, "invalid-params");
	r4 = client_call(c,
			 "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"vm.get\","
			 "\"params\":{\"name\":\"../../etc\"}}");
	assert_error(r4, 3, "invalid-argument");
	/* well-formed, but this server has no VM service */
	r5 = client_call(c,
			 "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"vm.get\","
			 "\"params\":{\"name\":\"web1\"}}");
	assert_error(r5, 5, "failed-precondition");
}

static gboolean
connections_below(gpointer data)
{
	gpointer *args = data;
	return vmsup_jsonrpc_server_get_n_connections(args[0]) < GPOINTER_TO_UINT(args[1]);
}

static void
wait_connections_below(Fixture *f, guint n)
{
	gpointer args[2] = {f->server, GUINT_TO_POINTER(n)};
	vmsup_test_wait_until(connections_below, args, TIMEOUT_S);
}

static gboolean
connections_at_least(gpointer data)
{
	return !connections_below(data);
}

static void
wait_connections_at_least(Fixture *f, guint n)
{
	gpointer args[2] = {f->server, GUINT_TO_POINTER(n)};
	vmsup_test_wait_until(connections_at_least, args, TIMEOUT_S);
}

static void
test_oversized_line(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) big = client_new(f, TRUE);
	g_autoptr(TestClient) other = client_new(f, TRUE);
	g_autofree gchar *filler = g_strnfill(VMSUP_JSONRPC_MAX_LINE + 16, 'a');
	const gchar *prefix = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"";
	g_autoptr(JsonObject) reply = NULL;
	g_autofree gchar *after = NULL;

	/* no newline ever comes: the server must not wait for one */
	client_send_raw(big, prefix, strlen(prefix));
	client_send_raw(big, filler, strlen(filler));
	reply = client_read_object(big);
	assert_error(reply, -32600, "invalid-request");
	assert_id_null(reply);
	after = client_read_line(big);
	g_assert_null(after);
	g_assert_true(big->eof);
	assert_alive(other);
}

static void
test_oversized_line_with_newline(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autoptr(GString) line = g_string_new("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"");
	g_autoptr(JsonObject) reply = NULL;

	while (line->len <= VMSUP_JSONRPC_MAX_LINE)
		g_string_append_c(line, 'x');
	g_string_append(line, "\"}");
	reply = client_call(c, line->str);
	assert_error(reply, -32600, "invalid-request");
	vmsup_test_wait_until(client_is_eof, c, TIMEOUT_S);
}

typedef struct {
	TestClient **clients;
	guint n;
} ClientSet;

static gboolean
all_have_line(gpointer data)
{
	ClientSet *set = data;
	for (guint i = 0; i < set->n; i++) {
		if (!client_has_line(set->clients[i]))
			return FALSE;
	}
	return TRUE;
}

static void
test_many_clients(Fixture *f, gconstpointer data)
{
	const guint n = 100;
	g_autofree TestClient **clients = g_new0(TestClient *, n);
	ClientSet set = {clients, n};

	for (guint i = 0; i < n; i++)
		clients[i] = client_new(f, TRUE);
	/* all requests are out before any answer is read */
	for (guint i = 0; i < n; i++) {
		g_autofree gchar *req =
		    g_strdup_printf("{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"daemon.info\"}",
				    i + 1000);
		client_send(clients[i], req);
	}
	vmsup_test_wait_until(all_have_line, &set, TIMEOUT_S);
	g_assert_cmpuint(vmsup_jsonrpc_server_get_n_connections(f->server), ==, n);
	for (guint i = 0; i < n; i++) {
		g_autoptr(JsonObject) reply = client_read_object(clients[i]);
		g_assert_cmpint(vmsup_json_object_get_int(reply, "id", 0), ==, i + 1000);
		g_assert_true(json_object_has_member(reply, "result"));
		client_free(clients[i]);
	}
	wait_connections_below(f, 1);
}

/* a client that floods requests and never reads costs bounded memory and nobody else time */
static void
test_client_never_reads(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) stuck = client_new(f, FALSE);
	g_autoptr(TestClient) other = client_new(f, TRUE);
	GString *flood = g_string_new(NULL);

	for (guint i = 0; i < 20000; i++)
		g_string_append_printf(
		    flood,
		    "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"daemon.info\"}\n",
		    i);
	client_send_raw(stuck, flood->str, flood->len);
	g_string_free(flood, TRUE);
	for (guint i = 0; i < 20; i++)
		assert_alive(other);
	/* the stuck client's unread answers filled its socket; the server paused reading it */
	g_assert_cmpuint(stuck->out->len, >, 0);
	g_assert_cmpuint(vmsup_jsonrpc_server_get_n_connections(f->server), ==, 2);
}

/*
 * A subscriber that never reads is dropped once its queue passes the limit,
 * also when the events come faster than main-loop iterations (@data TRUE):
 * then what the socket does not take at once is queued.
 */
static void
test_subscriber_never_reads(Fixture *f, gconstpointer data)
{
	gboolean burst = GPOINTER_TO_INT(data);
	g_autoptr(TestClient) stuck = client_new(f, TRUE);
	g_autoptr(TestClient) other = client_new(f, TRUE);
	g_autoptr(JsonObject) sub = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	g_autofree gchar *blob = g_strnfill(64 * 1024, 'e');
	guint emitted = 0;

	sub = client_call(stuck, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	g_assert_true(json_object_has_member(sub, "result"));
	/* from here on the stuck client reads nothing */
	g_source_destroy(stuck->in_source);
	g_clear_pointer(&stuck->in_source, g_source_unref);

	json_object_set_string_member(params, "name", "web1");
	json_object_set_string_member(params, "blob", blob);
	while (vmsup_jsonrpc_server_get_n_connections(f->server) == 2) {
		g_assert_cmpuint(emitted, <, 1000);
		vmsup_jsonrpc_server_emit_event(f->server, "event.vm-changed", params);
		emitted++;
		if (!burst)
			vmsup_test_drain_main_context();
	}
	g_test_message("dropped after %u events of 64 KiB", emitted);
	g_assert_cmpuint(emitted, >=, VMSUP_JSONRPC_MAX_QUEUE / (64 * 1024));
	/* the socket buffer takes a few hundred KiB at most */
	g_assert_cmpuint(emitted, <, 2 * VMSUP_JSONRPC_MAX_QUEUE / (64 * 1024));
	assert_alive(other);
}

/* a line far larger than the socket buffer goes out in pieces and arrives whole */
static void
test_large_line(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autoptr(JsonObject) sub = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonObject) event = NULL;
	const gsize size = 3 * 1024 * 1024;
	g_autofree gchar *blob = g_strnfill(size, 'b');
	const gchar *got;

	sub = client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	g_assert_true(json_object_has_member(sub, "result"));
	json_object_set_string_member(params, "blob", blob);
	vmsup_jsonrpc_server_emit_event(f->server, "event.vm-changed", params);
	event = client_read_object(c);
	got = vmsup_json_object_get_string(json_object_get_object_member(event, "params"),
					   "blob",
					   NULL);
	g_assert_nonnull(got);
	g_assert_cmpuint(strlen(got), ==, size);
	g_assert_cmpstr(got, ==, blob);
	assert_alive(c);
}

/* requests written in one go, more answers than the high-water mark: all come, in order */
static void
test_pipelined(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	GString *burst = g_string_new(NULL);
	const guint n = 3000;
	gsize answered = 0;

	for (guint i = 0; i < n; i++)
		g_string_append_printf(
		    burst,
		    "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"daemon.info\"}\n",
		    i);
	client_send_raw(c, burst->str, burst->len);
	g_string_free(burst, TRUE);
	for (guint i = 0; i < n; i++) {
		g_autofree gchar *line = client_read_line(c);
		g_autoptr(JsonObject) reply = NULL;

		g_assert_nonnull(line);
		answered += strlen(line) + 1;
		reply = vmsup_json_parse_object(line, -1, NULL);
		g_assert_nonnull(reply);
		g_assert_cmpint(vmsup_json_object_get_int(reply, "id", -1), ==, i);
		g_assert_true(json_object_has_member(reply, "result"));
	}
	/* enough to pause reading on the way and to fill the socket */
	g_assert_cmpuint(answered, >, 4 * VMSUP_JSONRPC_HIGH_WATER);
	g_assert_cmpuint(c->in->len, ==, 0);
	assert_alive(c);
}

/* a request answered on the spot costs one main-loop iteration and leaves nothing behind */
static void
test_one_iteration(Fixture *f, gconstpointer data)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	const gchar request[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\"}\n";
	gint fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	memcpy(addr.sun_path, f->socket_path, strlen(f->socket_path) + 1);
	g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	wait_connections_at_least(f, 1);
	vmsup_test_drain_main_context();
	for (guint i = 0; i < 10; i++) {
		gchar buf[64 * 1024];
		gssize n;

		g_assert_cmpint(send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL),
				==,
				sizeof(request) - 1);
		g_assert_true(g_main_context_iteration(NULL, TRUE));
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		g_assert_cmpint(n, >, 0);
		/* exactly one whole line */
		g_assert_true(memchr(buf, '\n', n) == buf + n - 1);
		g_assert_false(g_main_context_pending(NULL));
	}
	close(fd);
	wait_connections_below(f, 1);
}

static void
test_events(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) sub = client_new(f, TRUE);
	g_autoptr(TestClient) plain = client_new(f, TRUE);
	g_autoptr(JsonObject) reply = NULL;
	g_autoptr(JsonObject) event = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonObject) unsub = NULL;
	g_autoptr(JsonObject) bad = NULL;
	JsonArray *names;
	JsonObject *got;

	reply = client_call(sub, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	names =
	    json_object_get_array_member(json_object_get_object_member(reply, "result"), "events");
	g_assert_cmpuint(json_array_get_length(names), ==, 3);
	g_assert_cmpstr(json_array_get_string_element(names, 0), ==, "event.vm-changed");

	json_object_set_string_member(params, "name", "web1");
	vmsup_jsonrpc_server_emit_event(f->server, "event.vm-removed", params);
	event = client_read_object(sub);
	g_assert_false(json_object_has_member(event, "id"));
	g_assert_cmpstr(vmsup_json_object_get_string(event, "jsonrpc", NULL), ==, "2.0");
	g_assert_cmpstr(vmsup_json_object_get_string(event, "method", NULL),
			==,
			"event.vm-removed");
	got = json_object_get_object_member(event, "params");
	g_assert_cmpstr(vmsup_json_object_get_string(got, "name", NULL), ==, "web1");

	/* the unsubscribed client got nothing: its next line is its own answer */
	assert_alive(plain);
	g_assert_cmpuint(plain->in->len, ==, 0);

	bad = client_call(sub,
			  "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"events.subscribe\","
			  "\"params\":{\"filter\":1}}");
	assert_error(bad, -32602, "invalid-params");
	unsub =
	    client_call(sub, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"events.unsubscribe\"}");
	g_assert_true(json_object_has_member(unsub, "result"));
	vmsup_jsonrpc_server_emit_event(f->server, "event.vm-removed", params);
	assert_alive(sub);
	g_assert_cmpuint(sub->in->len, ==, 0);
}

/* `echo request | socat - UNIX-CONNECT:...` closes its side right after writing */
static void
test_half_close(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autoptr(JsonObject) r1 = NULL;
	g_autoptr(JsonObject) r2 = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *last = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"daemon.info\"}";

	client_send(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\"}");
	/* the last line may lack its newline */
	client_send_raw(c, last, strlen(last));
	while (c->out->len > 0)
		g_main_context_iteration(NULL, TRUE);
	g_assert_true(g_socket_shutdown(c->socket, FALSE, TRUE, &error));
	g_assert_no_error(error);
	r1 = client_read_object(c);
	r2 = client_read_object(c);
	g_assert_cmpint(vmsup_json_object_get_int(r1, "id", 0), ==, 1);
	g_assert_cmpint(vmsup_json_object_get_int(r2, "id", 0), ==, 2);
	vmsup_test_wait_until(client_is_eof, c, TIMEOUT_S);
	wait_connections_below(f, 1);
}

static void
test_process_data(Fixture *f, gconstpointer data)
{
	const gchar *input = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\"}\n"
			     "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.info\"}\n"
			     "garbage\n"
			     "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"vm.get\",\"params\":{}}";
	g_autofree gchar *out =
	    vmsup_jsonrpc_server_process_data(f->server, input, strlen(input), 0);
	g_auto(GStrv) lines = g_strsplit(out, "\n", -1);

	/* three answers, each a line; the notification has none */
	g_assert_cmpuint(g_strv_length(lines), ==, 4);
	g_assert_nonnull(strstr(lines[0], "\"result\""));
	g_assert_nonnull(strstr(lines[1], "-32700"));
	g_assert_nonnull(strstr(lines[2], "-32602"));
	g_assert_cmpstr(lines[3], ==, "");
	g_assert_cmpuint(vmsup_jsonrpc_server_get_n_connections(f->server), ==, 0);
}

static gint64
percentile(GArray *samples, guint p)
{
	guint index = MIN(samples->len - 1, samples->len * p / 100);
	return g_array_index(samples, gint64, index);
}

static gint
cmp_int64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

static void
test_round_trip_time(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = client_new(f, TRUE);
	g_autoptr(GArray) samples = g_array_new(FALSE, FALSE, sizeof(gint64));

	for (guint i = 0; i < 2000; i++) {
		gint64 start = g_get_monotonic_time();
		g_autoptr(JsonObject) reply =
		    client_call(c,
				"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vm.get\",\"params\":{"
				"\"name\":\"web1\"}}");
		gint64 elapsed = g_get_monotonic_time() - start;
		g_assert_true(json_object_has_member(reply, "error"));
		g_array_append_val(samples, elapsed);
	}
	g_array_sort(samples, cmp_int64);
	g_test_message("vm.get round trip (no VM service): p50 %" G_GINT64_FORMAT
		       " us, p99 %" G_GINT64_FORMAT " us",
		       percentile(samples, 50),
		       percentile(samples, 99));
	/* a stall shows in the median; loose, as sanitizer builds unwind on each malloc */
	g_assert_cmpint(percentile(samples, 50), <, 100 * 1000);
}

/* peer credentials: a child as nobody connects */

#define NOBODY 65534

enum {
	PROBE_REFUSED = VMSUP_TEST_PROBE_REFUSED,
	PROBE_NO_ACCESS = VMSUP_TEST_PROBE_NO_ACCESS,
	PROBE_ANSWERED = VMSUP_TEST_PROBE_ANSWERED, /* the server talked to it: a failure */
	PROBE_BROKEN = VMSUP_TEST_PROBE_BROKEN,
};

typedef struct {
	gboolean done;
	gint status;
} ChildState;

static void
child_exited_cb(GPid pid, gint status, gpointer user_data)
{
	ChildState *state = user_data;
	state->status = status;
	state->done = TRUE;
	g_spawn_close_pid(pid);
}

static gint
run_probe(Fixture *f)
{
	return vmsup_test_probe_as_nobody(f->socket_path, TIMEOUT_S);
}

static void
test_permission(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) owner = NULL;

	g_assert_cmpint(geteuid(), ==, 0);
	/* the file mode alone keeps other users out ... */
	g_assert_cmpint(g_chmod(f->dir, 0711), ==, 0);
	g_assert_cmpint(run_probe(f), ==, PROBE_NO_ACCESS);
	/* ... and should the mode be opened up, the peer check still refuses */
	g_assert_cmpint(g_chmod(f->socket_path, 0666), ==, 0);
	g_assert_cmpint(run_probe(f), ==, PROBE_REFUSED);
	wait_connections_below(f, 1);
	owner = client_new(f, TRUE);
	assert_alive(owner);
}

/*
 * The uid a workspace is shared for is the connection's (SO_PEERCRED), not
 * anything the client writes: a child as nobody talks to a system-mode
 * server with a real WorkspaceService behind it.
 */

typedef struct {
	const gchar *request; /* a line, '\n' included */
	const gchar *expect;  /* in the answer */
	const gchar *refute;  /* not in the answer, or NULL */
} PeerCase;

/* runs in the forked child: syscalls only; exits 0, or 10 + the case that failed */
static G_GNUC_NORETURN void
probe_cases_as_nobody(const gchar *path, const PeerCase *cases, guint n_cases)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	gint fd;

	if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
		_exit(PROBE_BROKEN);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		_exit(PROBE_BROKEN);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		_exit(PROBE_BROKEN);
	for (guint i = 0; i < n_cases; i++) {
		gchar buf[8192];
		gsize got = 0;

		if (send(fd, cases[i].request, strlen(cases[i].request), MSG_NOSIGNAL) < 0)
			_exit(PROBE_BROKEN);
		while (got == 0 || memchr(buf, '\n', got) == NULL) {
			gssize n = read(fd, buf + got, sizeof(buf) - 1 - got);
			if (n <= 0 || got + n >= sizeof(buf) - 1)
				_exit(PROBE_BROKEN);
			got += n;
		}
		buf[got] = '\0';
		if (strstr(buf, cases[i].expect) == NULL ||
		    (cases[i].refute != NULL && strstr(buf, cases[i].refute) != NULL)) {
			if (write(STDERR_FILENO, buf, got) < 0)
				_exit(PROBE_BROKEN);
			_exit(10 + i);
		}
	}
	_exit(0);
}

static void
test_caller_uid_from_peer(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *socket_path = g_build_filename(dir, "s.sock", NULL);
	g_autofree gchar *state = g_build_filename(dir, "state", NULL);
	g_autofree gchar *run = g_build_filename(dir, "run", NULL);
	g_autofree gchar *theirs = g_build_filename(dir, "theirs", NULL);
	g_autofree gchar *mine = g_build_filename(dir, "mine", NULL);
	g_autofree gchar *req_theirs = NULL;
	g_autofree gchar *req_mine = NULL;
	g_autofree gchar *req_spoof = NULL;
	g_autofree gchar *belongs = NULL;
	g_autofree gchar *record = NULL;
	g_autoptr(VmsupVmService) vm_service = NULL;
	g_autoptr(VmsupWorkspaceService) ws = NULL;
	g_autoptr(VmsupPolicy) policy = NULL;
	g_autoptr(VmsupJsonrpcServer) server = NULL;
	g_autoptr(GError) error = NULL;
	VmsupRpcContext ctx = {0};
	ChildState state_child = {FALSE, 0};
	pid_t pid;

	/* the child becomes nobody, and the directories need owners */
	g_assert_cmpint(geteuid(), ==, 0);
	g_assert_cmpint(g_mkdir(theirs, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(mine, 0700), ==, 0);
	g_assert_cmpint(chown(mine, NOBODY, NOBODY), ==, 0);
	belongs = g_strdup_printf("'%s' belongs to uid 0, not to you (uid %d)", theirs, NOBODY);
	req_theirs =
	    g_strdup_printf("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"workspace.create\","
			    "\"params\":{\"name\":\"a\",\"path\":\"%s\"}}\n",
			    theirs);
	/* its own passes the check and reaches the next one: the VM it names */
	req_mine = g_strdup_printf("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"workspace.create\","
				   "\"params\":{\"name\":\"b\",\"path\":\"%s\",\"vm\":\"nope\"}}\n",
				   mine);
	req_spoof =
	    g_strdup_printf("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"workspace.create\","
			    "\"params\":{\"name\":\"c\",\"path\":\"%s\",\"caller_uid\":0}}\n",
			    theirs);
	{
		const PeerCase cases[] = {
		    {req_theirs, "\"code\":5", NULL},
		    {req_theirs, belongs, NULL},
		    {req_mine, "VM 'nope' does not exist", "belongs to"},
		    {req_spoof, "\"code\":-32602", "\"result\""},
		};

		vm_service = vmsup_vm_service_new(state, run, NULL, VMSUP_ACCEL_TCG);
		ws = vmsup_workspace_service_new(state,
						 vmsup_vm_service_get_workspace_hooks(vm_service));
		ctx.mode = "system";
		ctx.socket_path = socket_path;
		ctx.vm_service = vm_service;
		ctx.workspace_service = ws;
		policy = vmsup_daemon_policy_new(vm_service, ws);
		ctx.policy = policy;
		server = vmsup_jsonrpc_server_new(&ctx);
		g_assert_true(
		    vmsup_jsonrpc_server_listen(server, socket_path, TRUE, NOBODY, &error));
		g_assert_no_error(error);

		pid = fork();
		g_assert_cmpint(pid, >=, 0);
		if (pid == 0)
			probe_cases_as_nobody(socket_path, cases, G_N_ELEMENTS(cases));
		g_child_watch_add(pid, child_exited_cb, &state_child);
		vmsup_test_wait_flag(&state_child.done, TIMEOUT_S);
	}
	g_assert_true(WIFEXITED(state_child.status));
	g_assert_cmpint(WEXITSTATUS(state_child.status), ==, 0);

	/* nothing was made for the refused requests */
	record = g_build_filename(state, "workspaces", "a.json", NULL);
	g_assert_false(g_file_test(record, G_FILE_TEST_EXISTS));
	g_clear_object(&server);
	g_clear_object(&ws);
	g_clear_object(&vm_service);
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(dir);
}

/*
 * vm.create and vm.set name host files for the connection's uid, and a
 * caller other than root uses and sees only its own VMs: a child as nobody
 * against a system-mode server with a loaded VMService.
 */

static void
peer_save_def(const gchar *state, const gchar *name, guint32 owner)
{
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupVmDef) def = vmsup_vm_def_new(name);
	g_autoptr(GError) error = NULL;

	def->kernel = g_strdup("/nonexistent/kernel");
	def->owner_uid = owner;
	g_assert_true(vmsup_vm_store_save(store, def, &error));
	g_assert_no_error(error);
}

static VmsupVmService *
peer_vm_service(const gchar *state, const gchar *run)
{
	/* no QEMU: a create that passes every check stops at finding it */
	g_autoptr(VmsupVmService) vm_service =
	    vmsup_vm_service_new(state, run, "/nonexistent/qemu", VMSUP_ACCEL_TCG);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	vmsup_vm_service_load_async(vm_service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	g_assert_true(vmsup_vm_service_load_finish(vm_service, res, &error));
	g_assert_no_error(error);
	return g_steal_pointer(&vm_service);
}

static gchar *
peer_file(const gchar *dir, const gchar *name, uid_t uid, mode_t mode)
{
	gchar *path = g_build_filename(dir, name, NULL);
	g_assert_true(g_file_set_contents(path, "not a kernel", -1, NULL));
	g_assert_cmpint(chown(path, uid, (gid_t)-1), ==, 0);
	g_assert_cmpint(g_chmod(path, mode), ==, 0);
	return path;
}

static void
test_host_files_from_peer(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *socket_path = g_build_filename(dir, "s.sock", NULL);
	g_autofree gchar *state = g_build_filename(dir, "state", NULL);
	g_autofree gchar *run = g_build_filename(dir, "run", NULL);
	g_autofree gchar *secret = NULL;
	g_autofree gchar *mine = NULL;
	g_autofree gchar *req_secret = NULL;
	g_autofree gchar *req_mine = NULL;
	g_autofree gchar *req_spoof = NULL;
	g_autofree gchar *req_set_spoof = NULL;
	g_autofree gchar *not_yours = NULL;
	g_autofree gchar *created = NULL;
	g_autoptr(VmsupVmService) vm_service = NULL;
	g_autoptr(VmsupPolicy) policy = NULL;
	g_autoptr(VmsupJsonrpcServer) server = NULL;
	g_autoptr(GError) error = NULL;
	VmsupRpcContext ctx = {0};
	ChildState state_child = {FALSE, 0};
	pid_t pid;

	g_assert_cmpint(geteuid(), ==, 0);
	g_assert_cmpint(g_chmod(dir, 0711), ==, 0);
	secret = peer_file(dir, "secret", 0, 0600);
	mine = peer_file(dir, "mine", NOBODY, 0600);
	not_yours = g_strdup_printf("The kernel '%s' belongs to uid 0, who does not let others "
				    "read it, and you are uid %d",
				    secret,
				    NOBODY);
	req_secret = g_strdup_printf("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vm.create\","
				     "\"params\":{\"name\":\"x\",\"kernel\":\"%s\"}}\n",
				     secret);
	req_mine = g_strdup_printf("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"vm.create\","
				   "\"params\":{\"name\":\"x\",\"kernel\":\"%s\"}}\n",
				   mine);
	req_spoof =
	    g_strdup_printf("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"vm.create\","
			    "\"params\":{\"name\":\"x\",\"kernel\":\"%s\",\"caller_uid\":0}}\n",
			    secret);
	req_set_spoof = g_strdup("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"vm.set\","
				 "\"params\":{\"name\":\"n\",\"cpus\":2,\"owner_uid\":0}}\n");
	peer_save_def(state, "r", 0);
	peer_save_def(state, "n", NOBODY);
	{
		const PeerCase cases[] = {
		    {req_secret, "\"code\":5", NULL},
		    {req_secret, not_yours, NULL},
		    /* its own file passes, and the create goes on to look for QEMU */
		    {req_mine, "is not an executable file", "does not let others"},
		    {req_spoof, "\"code\":-32602", "\"result\""},
		    {req_set_spoof, "\"code\":-32602", "\"result\""},
		    /* root's VM: refused, and not listed */
		    {"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"vm.get\",\"params\":{\"name\":"
		     "\"r\"}}\n",
		     "VM 'r' belongs to uid 0, not to you (uid 65534)",
		     "\"result\""},
		    /* nor its console: the owner rule comes before any descriptor is made */
		    {"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"vm.console\",\"params\":{\"name\":"
		     "\"r\"}}\n",
		     "VM 'r' belongs to uid 0, not to you (uid 65534)",
		     "\"result\""},
		    {"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"vm.delete\",\"params\":{\"name\":"
		     "\"r\"}}"
		     "\n",
		     "\"code\":5",
		     "\"result\""},
		    {"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"vm.list\",\"params\":{\"fields\":"
		     "[\"name\"]}}\n",
		     "\"vms\":[{\"name\":\"n\"}]",
		     "\"r\""},
		    /* its own */
		    {"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"vm.get\",\"params\":{\"name\":"
		     "\"n\"}}\n",
		     "\"owner_uid\":65534",
		     "\"error\""},
		};

		vm_service = peer_vm_service(state, run);
		ctx.mode = "system";
		ctx.socket_path = socket_path;
		ctx.vm_service = vm_service;
		policy = vmsup_daemon_policy_new(vm_service, NULL);
		ctx.policy = policy;
		server = vmsup_jsonrpc_server_new(&ctx);
		g_assert_true(
		    vmsup_jsonrpc_server_listen(server, socket_path, TRUE, NOBODY, &error));
		g_assert_no_error(error);

		pid = fork();
		g_assert_cmpint(pid, >=, 0);
		if (pid == 0)
			probe_cases_as_nobody(socket_path, cases, G_N_ELEMENTS(cases));
		g_child_watch_add(pid, child_exited_cb, &state_child);
		vmsup_test_wait_flag(&state_child.done, TIMEOUT_S);
	}
	g_assert_true(WIFEXITED(state_child.status));
	g_assert_cmpint(WEXITSTATUS(state_child.status), ==, 0);

	/* nothing made for the refused create, nothing taken from root */
	{
		g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
		created = vmsup_vm_store_get_path(store, "x");
	}
	g_assert_false(g_file_test(created, G_FILE_TEST_EXISTS));
	g_assert_null(vmsup_vm_service_lookup(vm_service, "x"));
	{
		g_autoptr(JsonObject) r = vmsup_vm_service_lookup(vm_service, "r");
		g_assert_nonnull(r);
	}
	g_clear_object(&server);
	g_clear_object(&vm_service);
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(dir);
}

/* in the child: subscribe, tell the parent, then the next two lines must be about "n" only */
static G_GNUC_NORETURN void
listen_events_as_nobody(const gchar *path, gint sync_fd)
{
	static const gchar subscribe[] =
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}\n";
	const gchar *const expect[] = {
	    "\"method\":\"event.vm-changed\",\"params\":{\"name\":\"n\"",
	    "\"method\":\"event.vm-removed\",\"params\":{\"name\":\"n\""};
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	gchar buf[16384];
	gsize got = 0;
	gint fd;

	if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
		_exit(PROBE_BROKEN);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		_exit(PROBE_BROKEN);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    send(fd, subscribe, strlen(subscribe), MSG_NOSIGNAL) < 0)
		_exit(PROBE_BROKEN);
	/* the answer, then the two events: three lines */
	for (guint line = 0; line < 3; line++) {
		gchar *end;
		while ((end = memchr(buf, '\n', got)) == NULL) {
			gssize n = read(fd, buf + got, sizeof(buf) - 1 - got);
			if (n <= 0 || got + n >= sizeof(buf) - 1)
				_exit(PROBE_BROKEN);
			got += n;
		}
		*end = '\0';
		if (line == 0) {
			if (strstr(buf, "\"result\"") == NULL || write(sync_fd, "s", 1) != 1)
				_exit(PROBE_BROKEN);
		} else if (strstr(buf, expect[line - 1]) == NULL) {
			if (write(STDERR_FILENO, buf, end - buf) < 0)
				_exit(PROBE_BROKEN);
			_exit(10 + line);
		}
		got -= (end + 1) - buf;
		memmove(buf, end + 1, got);
	}
	_exit(0);
}

typedef struct {
	VmsupJsonrpcServer *server;
	VmsupVmService *vm_service;
	guint source_id;
	VmsupEventSource *events;
} EventsPeer;

/* the child subscribed: events of root's VM and operations first, then of its own */
static gboolean
peer_subscribed_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	EventsPeer *peer = user_data;
	const gchar *const names[] = {"r", "n"};
	gchar c;

	peer->source_id = 0;
	/* a child that failed before subscribing says so through its exit status */
	if (read(fd, &c, 1) != 1)
		return G_SOURCE_REMOVE;
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(JsonObject) vm = vmsup_vm_service_lookup(peer->vm_service, names[i]);
		g_autoptr(JsonObject) changed = json_object_new();
		g_autoptr(JsonObject) removed = json_object_new();
		g_autoptr(JsonObject) op = json_object_new();

		json_object_set_string_member(changed, "name", names[i]);
		json_object_set_object_member(changed, "vm", json_object_ref(vm));
		json_object_set_string_member(removed, "name", names[i]);
		json_object_set_int_member(op, "id", 1);
		json_object_set_string_member(op, "vm", names[i]);
		/* through the one path every event takes out of the daemon */
		vmsup_event_source_emit(peer->events, VMSUP_POLICY_EVENT_VM_CHANGED, changed);
		vmsup_event_source_emit(peer->events, VMSUP_POLICY_EVENT_OPERATION_CHANGED, op);
		vmsup_event_source_emit(peer->events, VMSUP_POLICY_EVENT_VM_REMOVED, removed);
	}
	return G_SOURCE_REMOVE;
}

static void
test_events_only_own(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *socket_path = g_build_filename(dir, "s.sock", NULL);
	g_autofree gchar *state = g_build_filename(dir, "state", NULL);
	g_autofree gchar *run = g_build_filename(dir, "run", NULL);
	g_autoptr(VmsupVmService) vm_service = NULL;
	g_autoptr(VmsupPolicy) policy = NULL;
	g_autoptr(VmsupEventSource) events = NULL;
	g_autoptr(VmsupJsonrpcServer) server = NULL;
	g_autoptr(GError) error = NULL;
	VmsupRpcContext ctx = {0};
	ChildState state_child = {FALSE, 0};
	EventsPeer peer = {0};
	gint fds[2];
	pid_t pid;

	g_assert_cmpint(geteuid(), ==, 0);
	peer_save_def(state, "r", 0);
	peer_save_def(state, "n", NOBODY);
	vm_service = peer_vm_service(state, run);
	ctx.mode = "system";
	ctx.socket_path = socket_path;
	ctx.vm_service = vm_service;
	policy = vmsup_daemon_policy_new(vm_service, NULL);
	ctx.policy = policy;
	/* no service feeds it: the test sends the events */
	events = vmsup_event_source_new(NULL);
	ctx.events = events;
	server = vmsup_jsonrpc_server_new(&ctx);
	g_assert_true(vmsup_jsonrpc_server_listen(server, socket_path, TRUE, NOBODY, &error));
	g_assert_no_error(error);
	g_assert_cmpint(pipe(fds), ==, 0);
	peer.server = server;
	peer.events = events;
	peer.vm_service = vm_service;

	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		close(fds[0]);
		listen_events_as_nobody(socket_path, fds[1]);
	}
	close(fds[1]);
	peer.source_id = g_unix_fd_add(fds[0], G_IO_IN | G_IO_HUP, peer_subscribed_cb, &peer);
	g_child_watch_add(pid, child_exited_cb, &state_child);
	vmsup_test_wait_flag(&state_child.done, TIMEOUT_S);
	if (peer.source_id != 0)
		g_source_remove(peer.source_id);
	close(fds[0]);
	g_assert_true(WIFEXITED(state_child.status));
	g_assert_cmpint(WEXITSTATUS(state_child.status), ==, 0);

	g_clear_object(&server);
	g_clear_object(&vm_service);
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(dir);
}

/*
 * What json-glib would let through and vmsupd would act on, each refused
 * with its JSON-RPC error by a server with a real VMService: afterwards no
 * VM is defined, while the one good create at the end is.
 */

typedef struct {
	const gchar *request;
	gint code;
	const gchar *kind;
	const gchar *id; /* the answer's id as JSON text */
	const gchar *message;
} StrictCase;

static const StrictCase strict_cases[] = {
    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vm.create\",\"params\":"
     "{\"name\":\"a\\u0000b/../..\",\"start\":true}}",
     -32602,
     "invalid-params",
     "1",
     "'name': it contains a NUL character"},
    {"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"vm.create\",\"params\":"
     "{\"name\":\"k\",\"kernel\":\"/etc/hostname\\u0000/x\"}}",
     -32602,
     "invalid-params",
     "2",
     "'kernel': it contains a NUL character"},
    {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"vm.list\\u0000x\"}",
     -32600,
     "invalid-request",
     "3",
     "'method': it contains a NUL character"},
    {"{\"jsonrpc\":\"2.0\",\"id\":1e400,\"method\":\"vm.list\"}",
     -32600,
     "invalid-request",
     "null",
     "'id': the number 1e400 is too large"},
    {"{\"jsonrpc\":\"2.0\",\"id\":123456789012345678901234567890,\"method\":\"vm.list\"}",
     -32600,
     "invalid-request",
     "null",
     "does not fit in 64 bits"},
    {"{\"jsonrpc\":\"2.0\",\"id\":\"x\\u0000y\",\"method\":\"vm.list\"}",
     -32600,
     "invalid-request",
     "null",
     "'id': it contains a NUL character"},
    {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"vm.list\"}",
     -32600,
     "invalid-request",
     "null",
     "'id' must be a string, an integer or null"},
    {"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"vm.create\",\"params\":"
     "{\"name\":\"hex\",\"cpus\":0x10,\"kernel\":\"/etc/hostname\"}}",
     -32700,
     "parse-error",
     "null",
     "must be decimal"},
    {"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"vm.create\",\"params\":"
     "{\"name\":\"oct\",\"cpus\":010,\"kernel\":\"/etc/hostname\"}}",
     -32700,
     "parse-error",
     "null",
     "must be decimal"},
    {"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"vm.list\"} "
     "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"vm.create\",\"params\":"
     "{\"name\":\"second\",\"kernel\":\"/etc/hostname\"}}",
     -32700,
     "parse-error",
     "null",
     "more than one JSON value"},
    {"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"vm.create\",\"params\":"
     "{\"name\":\"m\",\"memory_mib\":1e999,\"kernel\":\"/etc/hostname\"}}",
     -32602,
     "invalid-params",
     "8",
     "'memory_mib': the number 1e999 is too large"},
    {"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"vm.create\",\"params\":"
     "{\"name\":\"big\",\"memory_mib\":18446744073709551872,\"kernel\":\"/etc/hostname\"}}",
     -32602,
     "invalid-params",
     "9",
     "'memory_mib': the integer"},
};

static void
strict_fixture_add_vm_service(Fixture *f)
{
	g_autofree gchar *state = g_build_filename(f->dir, "state", NULL);
	g_autofree gchar *run = g_build_filename(f->dir, "run", NULL);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	/* QEMU from PATH: a create that passes every check really defines its VM */
	f->vm_service = vmsup_vm_service_new(state, run, NULL, VMSUP_ACCEL_TCG);
	vmsup_vm_service_load_async(f->vm_service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	g_assert_true(vmsup_vm_service_load_finish(f->vm_service, res, &error));
	g_assert_no_error(error);
	f->ctx.vm_service = f->vm_service;
	g_clear_object(&f->policy);
	f->policy = vmsup_daemon_policy_new(f->vm_service, NULL);
	f->ctx.policy = f->policy;
}

static void
test_strict_json(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) c = NULL;
	g_auto(GStrv) names = NULL;

	strict_fixture_add_vm_service(f);
	c = client_new(f, TRUE);
	for (guint i = 0; i < G_N_ELEMENTS(strict_cases); i++) {
		const StrictCase *sc = &strict_cases[i];
		g_autoptr(JsonObject) reply = NULL;
		g_autofree gchar *id = NULL;

		g_test_message("strict: %s", sc->request);
		reply = client_call(c, sc->request);
		assert_error(reply, sc->code, sc->kind);
		id = vmsup_json_to_string(json_object_get_member(reply, "id"), FALSE);
		g_assert_cmpstr(id, ==, sc->id);
		g_assert_nonnull(strstr(error_message(reply), sc->message));
	}
	/* a batch answers each request on its own */
	{
		g_autofree gchar *line = NULL;
		client_send(c,
			    "[{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"vm.list\"},"
			    "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"vm.get\",\"params\":"
			    "{\"name\":\"a\\u0000\"}}]");
		line = client_read_line(c);
		g_assert_nonnull(strstr(line, "{\"jsonrpc\":\"2.0\",\"id\":10,\"result\""));
		g_assert_nonnull(strstr(line, "\"id\":11,\"error\":{\"code\":-32602"));
	}
	/* ids that fit come back exactly as sent */
	{
		const gchar *const ids[] = {"-9223372036854775808",
					    "9223372036854775807",
					    "\"\\u00e9t\\u00e9\"",
					    "null"};
		for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
			g_autofree gchar *request = g_strdup_printf(
			    "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"vm.list\"}",
			    ids[i]);
			g_autofree gchar *expect = NULL;
			g_autofree gchar *line = NULL;
			g_autoptr(JsonNode) sent = vmsup_json_parse(ids[i], -1, NULL);
			g_autofree gchar *sent_text = vmsup_json_to_string(sent, FALSE);

			expect =
			    g_strdup_printf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\"", sent_text);
			client_send(c, request);
			line = client_read_line(c);
			g_assert_true(g_str_has_prefix(line, expect));
		}
	}
	/* nothing was defined or started, and nothing is being created */
	names = vmsup_vm_service_list_names(f->vm_service);
	g_assert_cmpuint(g_strv_length(names), ==, 0);
	g_assert_cmpuint(vmsup_vm_service_count_vms(f->vm_service), ==, 0);
	/* the same create, sent right, does define its VM: the refusals were what kept it out */
	{
		g_autoptr(JsonObject) reply = client_call(
		    c,
		    "{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"vm.create\",\"params\":"
		    "{\"name\":\"a\",\"kernel\":\"/etc/hostname\",\"wait\":true}}");
		g_assert_true(json_object_has_member(reply, "result"));
		g_assert_cmpuint(vmsup_vm_service_count_vms(f->vm_service), ==, 1);
	}
}

/*
 * Connection limits: another user's crowd of idle connections is capped per
 * user and never locks root out; an idle connection is closed.
 */

/* in the child: a connection that sent daemon.info; the first line of the answer in @buf */
static gint
nobody_connect_and_ask(const gchar *path, gchar *buf, gsize size)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	const gchar request[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\"}\n";
	gsize got = 0;
	gint fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		_exit(PROBE_BROKEN);
	/* a refusal may close the connection before the request is out */
	if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) < 0 && errno != EPIPE &&
	    errno != ECONNRESET)
		_exit(PROBE_BROKEN);
	while (memchr(buf, '\n', got) == NULL) {
		gssize n = read(fd, buf + got, size - 1 - got);
		if (n <= 0 || got + n >= size - 1)
			_exit(PROBE_BROKEN);
		got += n;
	}
	buf[got] = '\0';
	return fd;
}

/*
 * Runs in the forked child as nobody: holds @n answered connections, sees
 * the next one refused with @expect and closed, tells @sync_fd, and keeps
 * the @n open until @hold_fd is closed. Exits 0, or 10 + what failed.
 */
static G_GNUC_NORETURN void
hold_connections_as_nobody(const gchar *path,
			   guint n,
			   const gchar *expect,
			   gint sync_fd,
			   gint hold_fd)
{
	gchar buf[8192];
	gchar c;
	gint fd;

	if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
		_exit(PROBE_BROKEN);
	for (guint i = 0; i < n; i++) {
		nobody_connect_and_ask(path, buf, sizeof(buf));
		if (strstr(buf, "\"result\"") == NULL)
			_exit(10);
	}
	fd = nobody_connect_and_ask(path, buf, sizeof(buf));
	if (strstr(buf, expect) == NULL || strstr(buf, "\"id\":null") == NULL ||
	    strstr(buf, "\"code\":4") == NULL) {
		if (write(STDERR_FILENO, buf, strlen(buf)) < 0)
			_exit(PROBE_BROKEN);
		_exit(11);
	}
	for (;;) {
		gssize got = read(fd, buf, sizeof(buf));
		if (got == 0 || (got < 0 && errno == ECONNRESET))
			break;
		if (got < 0)
			_exit(12);
	}
	if (write(sync_fd, "h", 1) != 1)
		_exit(PROBE_BROKEN);
	/* EOF: the parent is done */
	if (read(hold_fd, &c, 1) != 0)
		_exit(13);
	_exit(0);
}

static gboolean
flag_fd_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
	return G_SOURCE_REMOVE;
}

typedef struct {
	guint max_per_user; /* the server's MaxConnectionsPerUser */
	guint hold;         /* connections nobody opens before one is refused */
	const gchar *expect;
} LimitCase;

static const LimitCase limit_per_user = {
    4,
    4,
    "uid 65534 already has 4 connections to vmsupd (MaxConnectionsPerUser=4); close some "
    "or raise the limit in vmsupd.conf"};
/* no share per user: the overall cap, which still leaves root its own slots */
static const LimitCase limit_overall = {0,
					VMSUP_JSONRPC_MAX_CONNECTIONS,
					"the most it takes from all users together"};

static void
fixture_setup_system(Fixture *f, gconstpointer data)
{
	const LimitCase *lc = data;
	g_autoptr(GError) error = NULL;

	f->dir = vmsup_test_make_tmpdir();
	g_assert_cmpint(g_chmod(f->dir, 0755), ==, 0);
	f->socket_path = g_build_filename(f->dir, "s.sock", NULL);
	f->ctx.mode = "system";
	f->ctx.socket_path = f->socket_path;
	f->ctx.started_at = g_get_real_time();
	f->policy = vmsup_policy_new(NULL);
	f->ctx.policy = f->policy;
	f->server = vmsup_jsonrpc_server_new(&f->ctx);
	vmsup_jsonrpc_server_set_limits(f->server, lc->max_per_user, 0);
	g_assert_true(vmsup_jsonrpc_server_listen(f->server, f->socket_path, TRUE, NOBODY, &error));
	g_assert_no_error(error);
}

static void
test_connection_limit(Fixture *f, gconstpointer data)
{
	const LimitCase *lc = data;
	ChildState child = {FALSE, 0};
	gboolean holding = FALSE;
	gint sync_fds[2];
	gint hold_fds[2];
	pid_t pid;

	g_assert_cmpint(geteuid(), ==, 0);
	g_assert_cmpint(pipe(sync_fds), ==, 0);
	g_assert_cmpint(pipe(hold_fds), ==, 0);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		close(sync_fds[0]);
		close(hold_fds[1]);
		hold_connections_as_nobody(f->socket_path,
					   lc->hold,
					   lc->expect,
					   sync_fds[1],
					   hold_fds[0]);
	}
	close(sync_fds[1]);
	close(hold_fds[0]);
	g_child_watch_add(pid, child_exited_cb, &child);
	/* a child that failed before holding says so through its exit status */
	g_unix_fd_add(sync_fds[0], G_IO_IN | G_IO_HUP, flag_fd_cb, &holding);
	vmsup_test_wait_flag(&holding, TIMEOUT_S);
	/* nobody holds all it may; root is answered all the same, on several connections */
	g_assert_false(child.done);
	g_assert_cmpuint(vmsup_jsonrpc_server_get_n_connections(f->server), ==, lc->hold);
	for (guint i = 0; i < 3; i++) {
		g_autoptr(TestClient) root = client_new(f, TRUE);
		assert_alive(root);
	}
	close(hold_fds[1]);
	vmsup_test_wait_flag(&child.done, TIMEOUT_S);
	close(sync_fds[0]);
	g_assert_true(WIFEXITED(child.status));
	g_assert_cmpint(WEXITSTATUS(child.status), ==, 0);
	wait_connections_below(f, 1);
}

static void
test_idle_timeout(Fixture *f, gconstpointer data)
{
	g_autoptr(TestClient) subscriber = NULL;
	g_autoptr(TestClient) idle = NULL;
	g_autoptr(JsonObject) subscribed = NULL;
	g_autoptr(JsonObject) notice = NULL;
	gint64 connected;

	vmsup_jsonrpc_server_set_limits(f->server, VMSUP_JSONRPC_DEFAULT_MAX_PER_USER, 1);
	subscriber = client_new(f, TRUE);
	subscribed = client_call(subscriber,
				 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	g_assert_true(json_object_has_member(subscribed, "result"));
	/* connected after the subscriber: its timer is due first, so when this one closes the
	 * subscriber's has fired */
	connected = g_get_monotonic_time();
	idle = client_new(f, TRUE);
	notice = client_read_object(idle);
	assert_error(notice, 7, "timeout");
	assert_id_null(notice);
	g_assert_nonnull(strstr(error_message(notice), "IdleTimeoutSec=1"));
	vmsup_test_wait_until(client_is_eof, idle, TIMEOUT_S);
	g_assert_cmpint(g_get_monotonic_time() - connected, >=, G_USEC_PER_SEC);
	/* a subscription is no idleness; once it ends, the connection is idle like any other */
	g_assert_false(subscriber->eof);
	assert_alive(subscriber);
	client_send(subscriber, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"events.unsubscribe\"}");
	vmsup_test_wait_until(client_is_eof, subscriber, TIMEOUT_S);
	g_assert_nonnull(strstr(subscriber->in->str, "IdleTimeoutSec=1"));
	wait_connections_below(f, 1);
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)
	ADD("/vmsup/jsonrpc/valid", test_valid);
	ADD("/vmsup/jsonrpc/socket-mode", test_socket_mode);
	ADD("/vmsup/jsonrpc/notification", test_notification);
	ADD("/vmsup/jsonrpc/batch", test_batch);
	ADD("/vmsup/jsonrpc/batch-too-large", test_batch_too_large);
	ADD("/vmsup/jsonrpc/parse-error", test_parse_error);
	ADD("/vmsup/jsonrpc/strict-json", test_strict_json);
	ADD("/vmsup/jsonrpc/deep-nesting", test_deep_nesting);
	ADD("/vmsup/jsonrpc/invalid-request", test_invalid_request);
	ADD("/vmsup/jsonrpc/unknown-method", test_unknown_method);
	ADD("/vmsup/jsonrpc/wrong-params", test_wrong_params);
	ADD("/vmsup/jsonrpc/oversized-line", test_oversized_line);
	ADD("/vmsup/jsonrpc/oversized-line-newline", test_oversized_line_with_newline);
	ADD("/vmsup/jsonrpc/many-clients", test_many_clients);
	ADD("/vmsup/jsonrpc/client-never-reads", test_client_never_reads);
	ADD("/vmsup/jsonrpc/subscriber-never-reads", test_subscriber_never_reads);
	g_test_add("/vmsup/jsonrpc/subscriber-burst",
		   Fixture,
		   GINT_TO_POINTER(TRUE),
		   fixture_setup,
		   test_subscriber_never_reads,
		   fixture_teardown);
	ADD("/vmsup/jsonrpc/large-line", test_large_line);
	ADD("/vmsup/jsonrpc/pipelined", test_pipelined);
	ADD("/vmsup/jsonrpc/one-iteration", test_one_iteration);
	ADD("/vmsup/jsonrpc/events", test_events);
	ADD("/vmsup/jsonrpc/half-close", test_half_close);
	ADD("/vmsup/jsonrpc/process-data", test_process_data);
	ADD("/vmsup/jsonrpc/round-trip-time", test_round_trip_time);
	ADD("/vmsup/jsonrpc/permission", test_permission);
	ADD("/vmsup/jsonrpc/idle-timeout", test_idle_timeout);
#undef ADD
	g_test_add("/vmsup/jsonrpc/connections-per-user",
		   Fixture,
		   &limit_per_user,
		   fixture_setup_system,
		   test_connection_limit,
		   fixture_teardown);
	g_test_add("/vmsup/jsonrpc/connections-overall",
		   Fixture,
		   &limit_overall,
		   fixture_setup_system,
		   test_connection_limit,
		   fixture_teardown);
	g_test_add_func("/vmsup/jsonrpc/caller-uid-from-peer", test_caller_uid_from_peer);
	g_test_add_func("/vmsup/jsonrpc/host-files-from-peer", test_host_files_from_peer);
	g_test_add_func("/vmsup/jsonrpc/events-only-own", test_events_only_own);
	return g_test_run();
}
