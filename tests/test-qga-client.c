/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmsup-json.h"
#include "vmsup-mock-qmp.h"
#include "vmsup-qga-client.h"
#include "vmsup-test-util.h"

/* what qemu-ga 7.2 answers to the 0xFF that precedes a sync (GUEST-NOTES §5) */
#define STRAY_ERROR                                                                                \
	"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray "           \
	"'\\uFFFD'\"}}\n"

typedef struct {
	VmsupMockQmp *mock;
	VmsupQgaClient *client;
} Fixture;

static void
setup(Fixture *fx, gconstpointer data)
{
	fx->mock = vmsup_mock_qmp_new(VMSUP_MOCK_QMP_MODE_AGENT);
	fx->client = vmsup_qga_client_new_for_stream("guest", vmsup_mock_qmp_get_stream(fx->mock));
}

static void
teardown(Fixture *fx, gconstpointer data)
{
	vmsup_qga_client_close(fx->client);
	g_clear_object(&fx->client);
	vmsup_mock_qmp_free(fx->mock);
	vmsup_test_drain_main_context();
}

static gboolean
connect_client(Fixture *fx, guint timeout_ms, GError **error)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	vmsup_qga_client_connect_async(fx->client,
				       timeout_ms,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	res = vmsup_test_wait_result(&slot, 10);
	return vmsup_qga_client_connect_finish(fx->client, res, error);
}

static JsonNode *
execute(Fixture *fx, const gchar *command, const gchar *args_json, guint timeout_ms, GError **error)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonObject) args = NULL;

	if (args_json != NULL)
		args = vmsup_json_parse_object(args_json, -1, NULL);
	vmsup_qga_client_execute_async(fx->client,
				       command,
				       args,
				       timeout_ms,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	res = vmsup_test_wait_result(&slot, 10);
	return vmsup_qga_client_execute_finish(fx->client, res, error);
}

static const gchar *
request_command(Fixture *fx, guint index)
{
	return json_object_get_string_member(vmsup_mock_qmp_get_request(fx->mock, index),
					     "execute");
}

static JsonObject *
request_args(Fixture *fx, guint index)
{
	JsonObject *request = vmsup_mock_qmp_get_request(fx->mock, index);
	g_assert_true(json_object_has_member(request, "arguments"));
	return json_object_get_object_member(request, "arguments");
}

static gint64
sync_id(Fixture *fx, guint index)
{
	g_assert_cmpstr(request_command(fx, index), ==, "guest-sync-delimited");
	g_assert_true(vmsup_mock_qmp_get_request_had_sentinel(fx->mock, index));
	return json_object_get_int_member(request_args(fx, index), "id");
}

static void
assert_ping_works(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	vmsup_mock_qmp_expect(fx->mock, "guest-ping", "{\"return\": {}}");
	ret = execute(fx, "guest-ping", NULL, 0, &error);
	g_assert_no_error(error);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(ret));
	g_assert_cmpuint(json_object_get_size(json_node_get_object(ret)), ==, 0);
}

static void
test_handshake(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	/* an error line and a stale undelimited reply come before the sentinel */
	vmsup_mock_qmp_expect_sync(fx->mock, STRAY_ERROR "{\"return\": 77}\n");
	g_assert_true(connect_client(fx, 5000, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmsup_mock_qmp_get_n_received(fx->mock), ==, 1);
	g_assert_cmpint(sync_id(fx, 0), >, 0);

	/* once in step, commands go out plain, without a new sync */
	vmsup_mock_qmp_expect(fx->mock, "guest-info", "{\"return\": {\"version\": \"7.2.22\"}}");
	ret = execute(fx, "guest-info", NULL, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(vmsup_json_object_get_string(json_node_get_object(ret), "version", NULL),
			==,
			"7.2.22");
	g_assert_false(vmsup_mock_qmp_get_request_had_sentinel(fx->mock, 1));
	assert_ping_works(fx);
	g_assert_cmpuint(vmsup_mock_qmp_get_n_received(fx->mock), ==, 3);
}

static void
test_execute_connects(Fixture *fx, gconstpointer data)
{
	/* no explicit connect: the first command synchronises first */
	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	assert_ping_works(fx);
	g_assert_cmpstr(request_command(fx, 0), ==, "guest-sync-delimited");
	g_assert_cmpstr(request_command(fx, 1), ==, "guest-ping");
}

static void
test_stale_reply(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *wrong = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	gint64 id0;

	/* the agent is still booting: the first sync gets only a reply with another id */
	vmsup_mock_qmp_hang(fx->mock, "guest-sync-delimited");
	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_qga_client_connect_async(fx->client, 5000, NULL, vmsup_test_store_result_cb, &slot);
	vmsup_mock_qmp_wait_received(fx->mock, 1, 10);
	id0 = sync_id(fx, 0);
	wrong = g_strdup_printf("\xff{\"return\": %" G_GINT64_FORMAT
				"}\n{\"return\": %" G_GINT64_FORMAT "}\n",
				id0 + 1,
				id0);
	vmsup_mock_qmp_send_raw(fx->mock, wrong, -1);

	/* only the sync sent about a second later, with a new id, ends it */
	res = vmsup_test_wait_result(&slot, 10);
	g_assert_true(vmsup_qga_client_connect_finish(fx->client, res, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmsup_mock_qmp_get_n_received(fx->mock), ==, 2);
	g_assert_cmpint(sync_id(fx, 1), !=, id0);
	assert_ping_works(fx);
}

static void
test_queued_syncs(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	/* both syncs wait in the socket and are answered together when the agent starts */
	vmsup_mock_qmp_hang(fx->mock, "guest-sync-delimited");
	vmsup_mock_qmp_hang(fx->mock, "guest-sync-delimited");
	vmsup_qga_client_connect_async(fx->client, 5000, NULL, vmsup_test_store_result_cb, &slot);
	vmsup_mock_qmp_wait_received(fx->mock, 2, 10);
	g_assert_null(slot);
	vmsup_mock_qmp_reply_held(fx->mock, "guest-sync-delimited", NULL);
	vmsup_mock_qmp_reply_held(fx->mock, "guest-sync-delimited", NULL);
	res = vmsup_test_wait_result(&slot, 10);
	g_assert_true(vmsup_qga_client_connect_finish(fx->client, res, &error));
	g_assert_no_error(error);

	/* had the first (stale) answer been taken, the second would now be out of step */
	assert_ping_works(fx);
	g_assert_cmpuint(vmsup_mock_qmp_get_n_received(fx->mock), ==, 3);
}

static void
test_never_answers(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	gint64 start = g_get_monotonic_time();

	vmsup_mock_qmp_hang(fx->mock, "guest-sync-delimited");
	g_assert_false(connect_client(fx, 300, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT);
	g_assert_nonnull(strstr(error->message, "'guest'"));
	g_assert_cmpint(g_get_monotonic_time() - start, >=, 300 * 1000);
	g_assert_cmpuint(vmsup_mock_qmp_get_n_received(fx->mock), ==, 1);
}

static void
test_timeout_resyncs(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_hang(fx->mock, "guest-ping");
	ret = execute(fx, "guest-ping", NULL, 200, &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT);
	g_assert_true(g_str_has_prefix(error->message, "guest-ping: "));

	/* the late answer must not be taken for the next command's */
	vmsup_mock_qmp_reply_held(fx->mock, "guest-ping", "{\"return\": {\"late\": true}}");
	vmsup_mock_qmp_expect_sync(fx->mock, "{\"return\": {\"late\": true}}\n");
	assert_ping_works(fx);
	g_assert_cmpstr(request_command(fx, 2), ==, "guest-sync-delimited");
	g_assert_cmpint(sync_id(fx, 2), !=, sync_id(fx, 0));
}

static void
test_garbage(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_expect_raw(fx->mock, "guest-ping", "\x01garbage{\n");
	ret = execute(fx, "guest-ping", NULL, 0, &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);

	/* garbage right after a sentinel is skipped too */
	vmsup_mock_qmp_expect_sync(fx->mock, "\xffnot json\n");
	assert_ping_works(fx);
	g_assert_cmpstr(request_command(fx, 2), ==, "guest-sync-delimited");
}

/* a NUL in a guest's string fails the call by name; nothing reads the string cut short */
static void
test_nul_in_reply(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_expect_raw(fx->mock,
				  "guest-get-host-name",
				  "{\"return\":{\"host-name\":\"web\\u0000evil\"}}\n");
	ret = execute(fx, "guest-get-host-name", NULL, 0, &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	g_assert_nonnull(strstr(error->message, "guest-get-host-name"));
	g_assert_nonnull(strstr(error->message, "NUL character"));
	/* the stream is back in step for the next call */
	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	assert_ping_works(fx);
}

static void
test_error_reply(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_expect_error(fx->mock,
				    "guest-get-devices",
				    "CommandNotFound",
				    "Command guest-get-devices has been disabled");
	ret = execute(fx, "guest-get-devices", NULL, 0, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_COMMAND);
	g_assert_cmpstr(
	    error->message,
	    ==,
	    "guest-get-devices: CommandNotFound: Command guest-get-devices has been disabled");
	/* an error reply keeps the stream in step */
	assert_ping_works(fx);
	g_assert_cmpuint(vmsup_mock_qmp_get_n_received(fx->mock), ==, 3);
}

static void
test_agent_gone(Fixture *fx, gconstpointer data)
{
	GAsyncResult *slots[2] = {NULL, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) late = NULL;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_close_mid_reply(fx->mock, "guest-ping", "{\"return\": {}}");
	for (guint i = 0; i < G_N_ELEMENTS(slots); i++) {
		vmsup_qga_client_execute_async(fx->client,
					       "guest-ping",
					       NULL,
					       0,
					       NULL,
					       vmsup_test_store_result_cb,
					       &slots[i]);
	}
	for (guint i = 0; i < G_N_ELEMENTS(slots); i++) {
		g_autoptr(GAsyncResult) res = vmsup_test_wait_result(&slots[i], 10);
		g_autoptr(GError) error_i = NULL;
		g_autoptr(JsonNode) ret =
		    vmsup_qga_client_execute_finish(fx->client, res, &error_i);
		g_assert_null(ret);
		g_assert_error(error_i, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
		g_assert_true(
		    g_str_has_prefix(error_i->message, "guest agent connection of 'guest' closed"));
	}
	late = execute(fx, "guest-ping", NULL, 0, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
}

static void
test_no_socket(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *tmpdir = vmsup_test_make_tmpdir();
	g_autofree gchar *path = g_build_filename(tmpdir, "qga.sock", NULL);
	g_autoptr(VmsupQgaClient) client = vmsup_qga_client_new("gone", path);
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	vmsup_qga_client_connect_async(client, 30000, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 10);
	g_assert_false(vmsup_qga_client_connect_finish(client, res, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	g_assert_nonnull(strstr(error->message, path));
	vmsup_test_rm_rf(tmpdir);
}

static gchar *
b64(const gchar *text)
{
	return g_base64_encode((const guchar *)text, strlen(text));
}

static void
test_exec(Fixture *fx, gconstpointer data)
{
	const gchar *argv[] = {"/bin/sh", "-c", "cat; echo oops >&2; exit 3", NULL};
	g_autofree gchar *out = b64("hello\nin put\n");
	g_autofree gchar *err = b64("oops: \xc3\xa9\n");
	g_autofree gchar *status = g_strdup_printf(
	    "{\"return\": {\"exited\": true, \"exitcode\": 3, \"out-data\": \"%s\", "
	    "\"err-data\": \"%s\"}}",
	    out,
	    err);
	g_autofree gchar *stdin_b64 = b64("in put\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;
	JsonObject *args;
	JsonArray *arg;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_expect(fx->mock, "guest-exec", "{\"return\": {\"pid\": 4242}}");
	vmsup_mock_qmp_expect(fx->mock, "guest-exec-status", "{\"return\": {\"exited\": false}}");
	vmsup_mock_qmp_expect(fx->mock, "guest-exec-status", status);
	vmsup_qga_client_exec_async(fx->client,
				    argv,
				    "in put\n",
				    5000,
				    NULL,
				    vmsup_test_store_result_cb,
				    &slot);
	res = vmsup_test_wait_result(&slot, 10);
	result = vmsup_qga_client_exec_finish(fx->client, res, &error);
	g_assert_no_error(error);
	g_assert_cmpint(vmsup_json_object_get_int(result, "exit_code", -1), ==, 3);
	g_assert_cmpstr(vmsup_json_object_get_string(result, "stdout", NULL),
			==,
			"hello\nin put\n");
	g_assert_cmpstr(vmsup_json_object_get_string(result, "stderr", NULL),
			==,
			"oops: \xc3\xa9\n");

	/* the request as qemu-ga wants it: "arg", not "arguments" */
	args = request_args(fx, 1);
	g_assert_cmpstr(request_command(fx, 1), ==, "guest-exec");
	g_assert_cmpstr(vmsup_json_object_get_string(args, "path", NULL), ==, "/bin/sh");
	g_assert_false(json_object_has_member(args, "arguments"));
	arg = json_object_get_array_member(args, "arg");
	g_assert_cmpuint(json_array_get_length(arg), ==, 2);
	g_assert_cmpstr(json_array_get_string_element(arg, 0), ==, "-c");
	g_assert_cmpstr(json_array_get_string_element(arg, 1), ==, argv[2]);
	g_assert_true(vmsup_json_object_get_bool(args, "capture-output", FALSE));
	g_assert_cmpstr(vmsup_json_object_get_string(args, "input-data", NULL), ==, stdin_b64);
	for (guint i = 2; i < 4; i++) {
		g_assert_cmpstr(request_command(fx, i), ==, "guest-exec-status");
		g_assert_cmpint(vmsup_json_object_get_int(request_args(fx, i), "pid", -1),
				==,
				4242);
	}
}

static void
test_exec_signal(Fixture *fx, gconstpointer data)
{
	const gchar *argv[] = {"/bin/sleep", "100", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_expect(fx->mock, "guest-exec", "{\"return\": {\"pid\": 7}}");
	vmsup_mock_qmp_expect(fx->mock,
			      "guest-exec-status",
			      "{\"return\": {\"exited\": true, \"signal\": 9}}");
	vmsup_qga_client_exec_async(fx->client,
				    argv,
				    NULL,
				    5000,
				    NULL,
				    vmsup_test_store_result_cb,
				    &slot);
	res = vmsup_test_wait_result(&slot, 10);
	result = vmsup_qga_client_exec_finish(fx->client, res, &error);
	g_assert_no_error(error);
	g_assert_cmpint(vmsup_json_object_get_int(result, "exit_code", -1), ==, 128 + 9);
	g_assert_cmpint(vmsup_json_object_get_int(result, "signal", -1), ==, 9);
	g_assert_cmpstr(vmsup_json_object_get_string(result, "stdout", NULL), ==, "");
	g_assert_false(json_object_has_member(request_args(fx, 1), "input-data"));
}

static void
test_exec_timeout(Fixture *fx, gconstpointer data)
{
	const gchar *argv[] = {"/bin/sleep", "100", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;
	gint64 start = g_get_monotonic_time();
	guint kill_at = 0;
	guint reaped = 0;
	guint n;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_expect(fx->mock, "guest-exec", "{\"return\": {\"pid\": 7}}");
	/* the kill of the command that timed out, and the syncs the client may add on its way */
	vmsup_mock_qmp_expect(fx->mock, "guest-exec", "{\"return\": {\"pid\": 8}}");
	vmsup_mock_qmp_expect_any_sync(fx->mock);
	vmsup_mock_qmp_expect_any(fx->mock,
				  "guest-exec-status",
				  "{\"return\": {\"exited\": false}}");
	vmsup_qga_client_exec_async(fx->client,
				    argv,
				    NULL,
				    400,
				    NULL,
				    vmsup_test_store_result_cb,
				    &slot);
	res = vmsup_test_wait_result(&slot, 10);
	result = vmsup_qga_client_exec_finish(fx->client, res, &error);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT);
	g_assert_cmpint(g_get_monotonic_time() - start, >=, 400 * 1000);
	g_assert_nonnull(strstr(error->message, "was killed"));
	/* sync, exec, then status polled more than once with growing pauses (50, 100, 200 ms) */
	n = vmsup_mock_qmp_get_n_received(fx->mock);
	g_assert_cmpuint(n, >=, 4);
	g_assert_cmpuint(n, <=, 8);

	/* then it is killed in the guest, with its children, and both are reaped (syncs aside) */
	for (guint i = 2; reaped != ((1u << 7) | (1u << 8)); i++) {
		const gchar *command;
		vmsup_mock_qmp_wait_received(fx->mock, i + 1, 10);
		command = request_command(fx, i);
		if (g_strcmp0(command, "guest-exec") == 0) {
			JsonObject *args = request_args(fx, i);
			JsonArray *arg = json_object_get_array_member(args, "arg");
			g_assert_cmpuint(kill_at, ==, 0);
			kill_at = i;
			g_assert_cmpstr(vmsup_json_object_get_string(args, "path", NULL),
					==,
					"/bin/sh");
			g_assert_cmpuint(json_array_get_length(arg), ==, 4);
			g_assert_nonnull(
			    strstr(json_array_get_string_element(arg, 1), "/task/*/children"));
			g_assert_cmpstr(json_array_get_string_element(arg, 3), ==, "7");
		} else if (kill_at > 0 && g_strcmp0(command, "guest-exec-status") == 0) {
			reaped |= 1u << vmsup_json_object_get_int(request_args(fx, i), "pid", 0);
		}
	}
	g_assert_cmpuint(kill_at, >=, n - 1);
	g_assert_cmpuint(reaped, ==, (1u << 7) | (1u << 8));
}

/* more than vm.exec returns: the first MiB of each stream, and "truncated" */
static void
test_exec_output_capped(Fixture *fx, gconstpointer data)
{
	const gchar *argv[] = {"/bin/cat", "/dev/zero", NULL};
	gsize big = 3 * 1024 * 1024;
	g_autofree gchar *text = g_malloc(big + 1);
	g_autofree gchar *out = NULL;
	g_autofree gchar *status = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;

	memset(text, 'x', big);
	text[big] = '\0';
	out = b64(text);
	status = g_strdup_printf("{\"return\": {\"exited\": true, \"exitcode\": 0, "
				 "\"out-data\": \"%s\", \"err-data\": \"%s\"}}",
				 out,
				 out);
	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_expect(fx->mock, "guest-exec", "{\"return\": {\"pid\": 5}}");
	vmsup_mock_qmp_expect(fx->mock, "guest-exec-status", status);
	vmsup_qga_client_exec_async(fx->client,
				    argv,
				    NULL,
				    20000,
				    NULL,
				    vmsup_test_store_result_cb,
				    &slot);
	res = vmsup_test_wait_result(&slot, 30);
	result = vmsup_qga_client_exec_finish(fx->client, res, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(strlen(vmsup_json_object_get_string(result, "stdout", NULL)),
			 ==,
			 1024 * 1024);
	g_assert_cmpuint(strlen(vmsup_json_object_get_string(result, "stderr", NULL)),
			 ==,
			 1024 * 1024);
	g_assert_true(vmsup_json_object_get_bool(result, "truncated", FALSE));
}

static void
test_read_file(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;
	JsonObject *args;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_expect(fx->mock, "guest-file-open", "{\"return\": 1000}");
	vmsup_mock_qmp_expect(
	    fx->mock,
	    "guest-file-read",
	    "{\"return\": {\"count\": 6, \"buf-b64\": \"aGVsbG8g\", \"eof\": false}}");
	/* procfs reads may come back short, even empty, before eof */
	vmsup_mock_qmp_expect(fx->mock,
			      "guest-file-read",
			      "{\"return\": {\"count\": 0, \"buf-b64\": \"\", \"eof\": false}}");
	vmsup_mock_qmp_expect(
	    fx->mock,
	    "guest-file-read",
	    "{\"return\": {\"count\": 6, \"buf-b64\": \"d29ybGQh\", \"eof\": true}}");
	vmsup_mock_qmp_expect(fx->mock, "guest-file-close", "{\"return\": {}}");
	vmsup_qga_client_read_file_async(fx->client,
					 "/proc/net/tcp6",
					 5000,
					 NULL,
					 vmsup_test_store_result_cb,
					 &slot);
	res = vmsup_test_wait_result(&slot, 10);
	bytes = vmsup_qga_client_read_file_finish(fx->client, res, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(g_bytes_get_data(bytes, NULL),
			g_bytes_get_size(bytes),
			"hello world!",
			strlen("hello world!"));

	args = request_args(fx, 1);
	g_assert_cmpstr(vmsup_json_object_get_string(args, "path", NULL), ==, "/proc/net/tcp6");
	g_assert_cmpstr(vmsup_json_object_get_string(args, "mode", NULL), ==, "r");
	for (guint i = 2; i < 6; i++)
		g_assert_cmpint(vmsup_json_object_get_int(request_args(fx, i), "handle", -1),
				==,
				1000);
	g_assert_cmpstr(request_command(fx, 5), ==, "guest-file-close");
}

static void
test_read_file_error(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_expect(fx->mock, "guest-file-open", "{\"return\": 1001}");
	vmsup_mock_qmp_expect_error(fx->mock, "guest-file-read", "GenericError", "read failed");
	/* the handle is closed even when a read fails */
	vmsup_mock_qmp_expect(fx->mock, "guest-file-close", "{\"return\": {}}");
	vmsup_qga_client_read_file_async(fx->client,
					 "/proc/x",
					 5000,
					 NULL,
					 vmsup_test_store_result_cb,
					 &slot);
	res = vmsup_test_wait_result(&slot, 10);
	bytes = vmsup_qga_client_read_file_finish(fx->client, res, &error);
	g_assert_null(bytes);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_COMMAND);
	g_assert_cmpstr(error->message, ==, "guest-file-read: GenericError: read failed");
	g_assert_cmpint(vmsup_json_object_get_int(request_args(fx, 3), "handle", -1), ==, 1001);
}

static void
test_shutdown_no_reply(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	vmsup_mock_qmp_hang(fx->mock, "guest-shutdown");
	ret = execute(fx, "guest-shutdown", "{\"mode\": \"powerdown\"}", 0, &error);
	g_assert_no_error(error);
	g_assert_true(JSON_NODE_HOLDS_NULL(ret));
	vmsup_mock_qmp_wait_received(fx->mock, 2, 10);

	/* whatever might still come is skipped by a new sync */
	vmsup_mock_qmp_expect_sync(fx->mock, NULL);
	assert_ping_works(fx);
	g_assert_cmpstr(request_command(fx, 2), ==, "guest-sync-delimited");
}

/* /vmsup/qga/flood-between-requests: a raw agent on a socketpair */

typedef struct {
	gint fd;
	GString *in; /* what the client sent, not yet taken */
} RawAgent;

/* the next line the client sends, iterating the main loop while waiting */
static gchar *
raw_agent_read_line(RawAgent *agent)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	gchar *nl;

	while ((nl = memchr(agent->in->str, '\n', agent->in->len)) == NULL) {
		gchar buf[4096];
		gssize n = read(agent->fd, buf, sizeof(buf));
		if (n > 0) {
			g_string_append_len(agent->in, buf, n);
			continue;
		}
		g_assert_true(n < 0 && errno == EAGAIN);
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
	{
		gchar *line = g_strndup(agent->in->str, nl - agent->in->str);
		g_string_erase(agent->in, 0, nl - agent->in->str + 1);
		return line;
	}
}

static void
raw_agent_write(RawAgent *agent, const gchar *text)
{
	gsize len = strlen(text);
	gsize done = 0;
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (done < len) {
		gssize n = write(agent->fd, text + done, len - done);
		if (n > 0) {
			done += n;
			continue;
		}
		g_assert_true(n < 0 && errno == EAGAIN);
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, FALSE);
	}
}

/* answers the client's sync (which must come with its 0xFF) and then one command */
static void
raw_agent_answer(RawAgent *agent, gboolean expect_sync, const gchar *command, const gchar *reply)
{
	g_autofree gchar *line = raw_agent_read_line(agent);
	g_autoptr(JsonObject) request = NULL;

	if (expect_sync) {
		g_autofree gchar *answer = NULL;
		JsonObject *args;
		g_assert_cmpint(line[0], ==, '\xff');
		request = vmsup_json_parse_object(line + 1, -1, NULL);
		g_assert_nonnull(request);
		g_assert_cmpstr(vmsup_json_object_get_string(request, "execute", NULL),
				==,
				"guest-sync-delimited");
		args = json_object_get_object_member(request, "arguments");
		answer = g_strdup_printf("\xff{\"return\": %" G_GINT64_FORMAT "}\n",
					 json_object_get_int_member(args, "id"));
		raw_agent_write(agent, answer);
		g_clear_pointer(&request, json_object_unref);
		g_free(line);
		line = raw_agent_read_line(agent);
	}
	request = vmsup_json_parse_object(line, -1, NULL);
	g_assert_nonnull(request);
	g_assert_cmpstr(vmsup_json_object_get_string(request, "execute", NULL), ==, command);
	raw_agent_write(agent, reply);
}

/* runs @command on @client, @agent answering it with @reply; the result must be a success */
static JsonNode *
raw_agent_call(VmsupQgaClient *client,
	       RawAgent *agent,
	       gboolean expect_sync,
	       const gchar *command,
	       const gchar *reply)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	JsonNode *ret;

	vmsup_qga_client_execute_async(client,
				       command,
				       NULL,
				       0,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	raw_agent_answer(agent, expect_sync, command, reply);
	res = vmsup_test_wait_result(&slot, 10);
	ret = vmsup_qga_client_execute_finish(client, res, &error);
	g_assert_no_error(error);
	g_assert_nonnull(ret);
	return ret;
}

static void
test_flood_between_requests(void)
{
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GSocketConnection) connection = NULL;
	g_autoptr(VmsupQgaClient) client = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	RawAgent agent = {0};
	gchar junk[4096];
	gsize written = 0;
	guint blocked = 0;
	gint fds[2];

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
	g_assert_true(g_unix_set_fd_nonblocking(fds[1], TRUE, NULL));
	socket = g_socket_new_from_fd(fds[0], &error);
	g_assert_no_error(error);
	connection = g_socket_connection_factory_create_connection(socket);
	client = vmsup_qga_client_new_for_stream("flood", G_IO_STREAM(connection));
	agent.fd = fds[1];
	agent.in = g_string_new(NULL);

	ret = raw_agent_call(client, &agent, TRUE, "guest-ping", "{\"return\": {}}\n");
	g_clear_pointer(&ret, json_node_unref);

	/*
	 * Nothing asked: the guest floods. A client that reads drains it as fast
	 * as it comes; one that does not lets the socket fill, and the flood stops
	 * at what the socket holds.
	 */
	for (gsize i = 0; i + 12 <= sizeof(junk); i += 12)
		memcpy(junk + i, "{\"junk\": 1}\n", 12);
	while (blocked < 100 && written < 64 * 1024 * 1024) {
		gssize n = write(fds[1], junk, sizeof(junk) - sizeof(junk) % 12);
		if (n > 0) {
			written += n;
			blocked = 0;
			g_main_context_iteration(NULL, FALSE);
			continue;
		}
		g_assert_true(n < 0 && errno == EAGAIN);
		blocked++;
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(1000);
	}
	g_test_message("the flood stopped after %" G_GSIZE_FORMAT " bytes", written);
	g_assert_cmpuint(written, <, 16 * 1024 * 1024);

	/* the next request skips what was sent unasked, through a sync */
	ret = raw_agent_call(client,
			     &agent,
			     TRUE,
			     "guest-info",
			     "{\"return\": {\"version\": \"7.2.22\"}}\n");
	g_assert_cmpstr(vmsup_json_object_get_string(json_node_get_object(ret), "version", NULL),
			==,
			"7.2.22");

	vmsup_qga_client_close(client);
	close(fds[1]);
	g_string_free(agent.in, TRUE);
	vmsup_test_drain_main_context();
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
#define ADD(path, func) g_test_add(path, Fixture, NULL, setup, func, teardown)
	ADD("/vmsup/qga/handshake", test_handshake);
	ADD("/vmsup/qga/execute-connects", test_execute_connects);
	ADD("/vmsup/qga/stale-reply", test_stale_reply);
	ADD("/vmsup/qga/queued-syncs", test_queued_syncs);
	ADD("/vmsup/qga/never-answers", test_never_answers);
	ADD("/vmsup/qga/timeout-resyncs", test_timeout_resyncs);
	ADD("/vmsup/qga/garbage", test_garbage);
	ADD("/vmsup/qga/nul-in-reply", test_nul_in_reply);
	ADD("/vmsup/qga/error-reply", test_error_reply);
	ADD("/vmsup/qga/agent-gone", test_agent_gone);
	ADD("/vmsup/qga/no-socket", test_no_socket);
	ADD("/vmsup/qga/exec", test_exec);
	ADD("/vmsup/qga/exec-signal", test_exec_signal);
	ADD("/vmsup/qga/exec-output-capped", test_exec_output_capped);
	ADD("/vmsup/qga/exec-timeout", test_exec_timeout);
	ADD("/vmsup/qga/read-file", test_read_file);
	ADD("/vmsup/qga/read-file-error", test_read_file_error);
	ADD("/vmsup/qga/shutdown-no-reply", test_shutdown_no_reply);
#undef ADD
	g_test_add_func("/vmsup/qga/flood-between-requests", test_flood_between_requests);
	return g_test_run();
}
