/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <fcntl.h>
#include <gio/gunixsocketaddress.h>
#include <signal.h>
#include <string.h>

#include "vmsup-json.h"
#include "vmsup-mock-qmp.h"
#include "vmsup-qmp-client.h"
#include "vmsup-test-util.h"

typedef struct {
	VmsupMockQmp *mock; /* mock tests */
	gchar *tmpdir;      /* QEMU tests */
	GSubprocess *qemu;
	VmsupQmpClient *client;
	GPtrArray *events; /* of JsonObject {name, data?, timestamp} */
	guint n_closed;
	GError *closed_error;
} Fixture;

/* helpers */

static void
event_cb(VmsupQmpClient *client,
	 const gchar *name,
	 JsonObject *data,
	 gint64 timestamp_us,
	 gpointer user_data)
{
	Fixture *fx = user_data;
	JsonObject *event = json_object_new();

	json_object_set_string_member(event, "name", name);
	if (data != NULL)
		json_object_set_object_member(event, "data", json_object_ref(data));
	json_object_set_int_member(event, "timestamp", timestamp_us);
	g_ptr_array_add(fx->events, event);
}

static void
closed_cb(VmsupQmpClient *client, const GError *error, gpointer user_data)
{
	Fixture *fx = user_data;

	fx->n_closed++;
	g_assert_false(vmsup_qmp_client_is_ready(client));
	if (error != NULL)
		fx->closed_error = g_error_copy(error);
}

static void
fixture_init(Fixture *fx, const gchar *label)
{
	fx->client = vmsup_qmp_client_new(label);
	fx->events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	g_signal_connect(fx->client, "event", G_CALLBACK(event_cb), fx);
	g_signal_connect(fx->client, "closed", G_CALLBACK(closed_cb), fx);
}

static void
fixture_clear(Fixture *fx)
{
	guint n_closed = fx->n_closed;

	vmsup_qmp_client_close(fx->client);
	vmsup_qmp_client_close(fx->client);
	/* closed fires exactly once over the client's life */
	g_assert_cmpuint(fx->n_closed, ==, MAX(n_closed, 1));
	g_clear_object(&fx->client);
	g_ptr_array_unref(fx->events);
	g_clear_error(&fx->closed_error);
}

static gboolean
is_closed(gpointer user_data)
{
	Fixture *fx = user_data;
	return fx->n_closed > 0;
}

typedef struct {
	Fixture *fx;
	const gchar *name;
} EventWait;

static JsonObject *
find_event(Fixture *fx, const gchar *name)
{
	for (guint i = 0; i < fx->events->len; i++) {
		JsonObject *event = g_ptr_array_index(fx->events, i);
		if (g_strcmp0(json_object_get_string_member(event, "name"), name) == 0)
			return event;
	}
	return NULL;
}

static gboolean
has_event(gpointer user_data)
{
	EventWait *wait = user_data;
	return find_event(wait->fx, wait->name) != NULL;
}

static JsonObject *
wait_event(Fixture *fx, const gchar *name)
{
	EventWait wait = {fx, name};
	vmsup_test_wait_until(has_event, &wait, 10);
	return find_event(fx, name);
}

static JsonNode *
execute(Fixture *fx, const gchar *command, const gchar *args_json, GError **error)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonObject) args = NULL;

	if (args_json != NULL)
		args = vmsup_json_parse_object(args_json, -1, NULL);
	vmsup_qmp_client_execute_async(fx->client,
				       command,
				       args,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	res = vmsup_test_wait_result(&slot, 20);
	return vmsup_qmp_client_execute_finish(fx->client, res, error);
}

static const gchar *
return_string(JsonNode *node, const gchar *member)
{
	g_assert_nonnull(node);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
	return vmsup_json_object_get_string(json_node_get_object(node), member, NULL);
}

/* mock peer */

static void
setup_mock(Fixture *fx, gconstpointer data)
{
	fx->mock =
	    vmsup_mock_qmp_new(data != NULL ? VMSUP_MOCK_QMP_MODE_RAW : VMSUP_MOCK_QMP_MODE_QMP);
	fixture_init(fx, "mock");
}

static void
teardown_mock(Fixture *fx, gconstpointer data)
{
	fixture_clear(fx);
	vmsup_mock_qmp_free(fx->mock);
	vmsup_test_drain_main_context();
}

static void
handshake(Fixture *fx)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	vmsup_qmp_client_handshake_async(fx->client,
					 vmsup_mock_qmp_get_stream(fx->mock),
					 NULL,
					 vmsup_test_store_result_cb,
					 &slot);
	res = vmsup_test_wait_result(&slot, 10);
	g_assert_true(vmsup_qmp_client_handshake_finish(fx->client, res, &error));
	g_assert_no_error(error);
	g_assert_true(vmsup_qmp_client_is_ready(fx->client));
}

static void
test_mock_handshake(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) early = NULL;
	g_autoptr(JsonNode) ret = NULL;
	JsonObject *greeting;
	JsonObject *request;

	g_assert_null(vmsup_qmp_client_get_greeting(fx->client));
	early = execute(fx, "query-status", NULL, &error);
	g_assert_null(early);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_READY);
	g_clear_error(&error);

	handshake(fx);
	greeting = vmsup_qmp_client_get_greeting(fx->client);
	g_assert_nonnull(greeting);
	g_assert_true(json_object_has_member(greeting, "capabilities"));
	request = vmsup_mock_qmp_get_request(fx->mock, 0);
	g_assert_cmpstr(json_object_get_string_member(request, "execute"), ==, "qmp_capabilities");

	vmsup_mock_qmp_expect_canned(fx->mock, "query-status");
	ret = execute(fx, "query-status", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(return_string(ret, "status"), ==, "prelaunch");
	/* ids are fresh per command */
	request = vmsup_mock_qmp_get_request(fx->mock, 1);
	g_assert_cmpstr(
	    json_object_get_string_member(request, "id"),
	    !=,
	    json_object_get_string_member(vmsup_mock_qmp_get_request(fx->mock, 0), "id"));
}

static void
test_mock_bad_greeting(Fixture *fx, gconstpointer data)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	vmsup_mock_qmp_send_raw(fx->mock, "{\"return\": {}}\r\n", -1);
	vmsup_qmp_client_handshake_async(fx->client,
					 vmsup_mock_qmp_get_stream(fx->mock),
					 NULL,
					 vmsup_test_store_result_cb,
					 &slot);
	res = vmsup_test_wait_result(&slot, 10);
	g_assert_false(vmsup_qmp_client_handshake_finish(fx->client, res, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	g_assert_cmpuint(fx->n_closed, ==, 1);
	g_assert_error(fx->closed_error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	g_assert_null(vmsup_qmp_client_get_greeting(fx->client));
	g_assert_cmpuint(vmsup_mock_qmp_get_n_received(fx->mock), ==, 0);
}

static void
test_mock_garbage(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(JsonNode) late = NULL;

	handshake(fx);
	vmsup_mock_qmp_expect_raw(fx->mock, "query-status", "}{ not json at all\r\n");
	ret = execute(fx, "query-status", NULL, &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	g_assert_true(g_str_has_prefix(error->message, "QMP connection to 'mock' closed: "));
	g_assert_cmpuint(fx->n_closed, ==, 1);
	g_assert_error(fx->closed_error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	g_clear_error(&error);

	late = execute(fx, "query-status", NULL, &error);
	g_assert_null(late);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	/* after garbage the client hangs up rather than guess where the next message starts */
	vmsup_mock_qmp_wait_hangup(fx->mock, 10);
}

static void
test_mock_timeout(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(JsonNode) next = NULL;
	gint64 start;

	handshake(fx);
	vmsup_qmp_client_set_timeout(fx->client, 200);
	vmsup_mock_qmp_hang(fx->mock, "query-status");
	start = g_get_monotonic_time();
	ret = execute(fx, "query-status", NULL, &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT);
	g_assert_nonnull(strstr(error->message, "query-status"));
	g_assert_cmpint(g_get_monotonic_time() - start, >=, 200 * 1000);
	g_clear_error(&error);

	/* the reply that comes too late is dropped; the connection stays usable */
	vmsup_mock_qmp_reply_held(fx->mock, "query-status", NULL);
	vmsup_mock_qmp_expect_canned(fx->mock, "query-version");
	next = execute(fx, "query-version", NULL, &error);
	g_assert_no_error(error);
	g_assert_true(json_object_has_member(json_node_get_object(next), "qemu"));
	g_assert_true(vmsup_qmp_client_is_ready(fx->client));
	g_assert_cmpuint(fx->n_closed, ==, 0);
}

static void
test_mock_call_timeout(Fixture *fx, gconstpointer data)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GAsyncResult) late_res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(JsonNode) late = NULL;
	gint64 start;

	/* a call's own bound wins over the client's, in both directions */
	handshake(fx);
	vmsup_qmp_client_set_timeout(fx->client, 60000);
	vmsup_mock_qmp_hang(fx->mock, "query-status");
	start = g_get_monotonic_time();
	vmsup_qmp_client_execute_with_timeout_async(fx->client,
						    "query-status",
						    NULL,
						    150,
						    NULL,
						    vmsup_test_store_result_cb,
						    &slot);
	res = vmsup_test_wait_result(&slot, 20);
	ret = vmsup_qmp_client_execute_finish(fx->client, res, &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT);
	g_assert_nonnull(strstr(error->message, "150 ms"));
	g_assert_cmpint(g_get_monotonic_time() - start, >=, 150 * 1000);
	g_assert_cmpint(g_get_monotonic_time() - start, <, 10 * G_USEC_PER_SEC);
	g_clear_error(&error);
	vmsup_mock_qmp_reply_held(fx->mock, "query-status", NULL);

	/* 0: no bound, although the client's is short */
	vmsup_qmp_client_set_timeout(fx->client, 50);
	vmsup_mock_qmp_hang(fx->mock, "query-status");
	vmsup_qmp_client_execute_with_timeout_async(fx->client,
						    "query-status",
						    NULL,
						    0,
						    NULL,
						    vmsup_test_store_result_cb,
						    &slot);
	g_usleep(300 * 1000);
	vmsup_test_drain_main_context();
	g_assert_null(slot);
	vmsup_mock_qmp_reply_held(fx->mock,
				  "query-status",
				  "{\"return\": {\"status\": \"paused\"}}");
	late_res = vmsup_test_wait_result(&slot, 20);
	late = vmsup_qmp_client_execute_finish(fx->client, late_res, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(return_string(late, "status"), ==, "paused");
	g_assert_cmpstr(vmsup_qmp_client_get_label(fx->client), ==, "mock");
}

static void
test_mock_close_mid_reply(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autofree gchar *reply = vmsup_mock_qmp_load("query-status");

	handshake(fx);
	vmsup_mock_qmp_close_mid_reply(fx->mock, "query-status", reply);
	ret = execute(fx, "query-status", NULL, &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	g_assert_true(g_str_has_prefix(error->message, "QMP connection to 'mock' closed: "));
	vmsup_test_drain_main_context();
	g_assert_cmpuint(fx->n_closed, ==, 1);
	g_assert_error(fx->closed_error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
}

static void
test_mock_oversized(Fixture *fx, gconstpointer data)
{
	gsize size = 2 * 1024 * 1024;
	g_autofree gchar *pad = g_strnfill(size, 'a');
	g_autofree gchar *reply = g_strdup_printf("{\"return\": \"%s\"}\r\n", pad);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	handshake(fx);
	vmsup_mock_qmp_expect_raw(fx->mock, "query-status", reply);
	ret = execute(fx, "query-status", NULL, &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	g_assert_nonnull(strstr(error->message, "longer than"));
	g_assert_cmpuint(fx->n_closed, ==, 1);
}

typedef struct {
	GAsyncResult *res;
	guint order;
} Slot;

static guint completed;

static void
ordered_result_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Slot *slot = user_data;
	slot->res = g_object_ref(res);
	slot->order = completed++;
}

static gboolean
all_done(gpointer user_data)
{
	return completed == 3;
}

static void
count_cb(guint *counter)
{
	(*counter)++;
}

static void
test_mock_interleaved(Fixture *fx, gconstpointer data)
{
	const gchar *commands[] = {"query-status", "query-version", "query-name"};
	Slot slots[3] = {{NULL, 0}};
	gint64 ts_stop;
	gint64 ts_resume;
	guint stop_seen_by_detail = 0;
	g_autofree gchar *reset = vmsup_mock_qmp_load("event-reset");
	JsonObject *event;

	handshake(fx);
	g_signal_connect_swapped(fx->client,
				 "event::STOP",
				 G_CALLBACK(count_cb),
				 &stop_seen_by_detail);
	completed = 0;
	for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
		vmsup_mock_qmp_hang(fx->mock, commands[i]);
		vmsup_qmp_client_execute_async(fx->client,
					       commands[i],
					       NULL,
					       NULL,
					       ordered_result_cb,
					       &slots[i]);
	}
	vmsup_mock_qmp_wait_received(fx->mock, 4, 10);

	/* replies in reverse order with events between them */
	ts_stop = vmsup_mock_qmp_emit_event(fx->mock, "STOP", NULL);
	vmsup_mock_qmp_reply_held(fx->mock, "query-name", "{\"return\": {\"name\": \"vm3\"}}");
	ts_resume = vmsup_mock_qmp_emit_event(fx->mock, "RESUME", "{\"x\": 1}");
	vmsup_mock_qmp_reply_held(fx->mock,
				  "query-version",
				  "{\"return\": {\"package\": \"vm2\"}}");
	vmsup_mock_qmp_send_raw(fx->mock, reset, -1);
	vmsup_mock_qmp_send_raw(fx->mock, "\r\n", -1);
	vmsup_mock_qmp_reply_held(fx->mock, "query-status", "{\"return\": {\"status\": \"vm1\"}}");
	vmsup_test_wait_until(all_done, NULL, 10);

	g_assert_cmpuint(slots[2].order, ==, 0);
	g_assert_cmpuint(slots[1].order, ==, 1);
	g_assert_cmpuint(slots[0].order, ==, 2);
	for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) ret =
		    vmsup_qmp_client_execute_finish(fx->client, slots[i].res, &error);
		const gchar *members[] = {"status", "package", "name"};
		g_autofree gchar *expected = g_strdup_printf("vm%u", i + 1);
		g_assert_no_error(error);
		g_assert_cmpstr(return_string(ret, members[i]), ==, expected);
		g_object_unref(slots[i].res);
	}

	g_assert_cmpuint(fx->events->len, ==, 3);
	event = g_ptr_array_index(fx->events, 0);
	g_assert_cmpstr(json_object_get_string_member(event, "name"), ==, "STOP");
	g_assert_false(json_object_has_member(event, "data"));
	g_assert_cmpint(json_object_get_int_member(event, "timestamp"), ==, ts_stop);
	event = g_ptr_array_index(fx->events, 1);
	g_assert_cmpstr(json_object_get_string_member(event, "name"), ==, "RESUME");
	g_assert_cmpint(json_object_get_int_member(event, "timestamp"), ==, ts_resume);
	g_assert_cmpint(
	    vmsup_json_object_get_int(json_object_get_object_member(event, "data"), "x", 0),
	    ==,
	    1);
	/* an event exactly as QEMU 7.2 sent it */
	event = g_ptr_array_index(fx->events, 2);
	g_assert_cmpstr(json_object_get_string_member(event, "name"), ==, "RESET");
	g_assert_cmpint(json_object_get_int_member(event, "timestamp"),
			==,
			G_GINT64_CONSTANT(1795677328585017));
	g_assert_cmpstr(vmsup_json_object_get_string(json_object_get_object_member(event, "data"),
						     "reason",
						     NULL),
			==,
			"host-qmp-system-reset");
	g_assert_cmpuint(stop_seen_by_detail, ==, 1);
}

static void
test_mock_unknown_id(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	handshake(fx);
	vmsup_mock_qmp_hang(fx->mock, "query-status");
	vmsup_qmp_client_execute_async(fx->client,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	vmsup_mock_qmp_wait_received(fx->mock, 2, 10);
	vmsup_mock_qmp_send_raw(
	    fx->mock,
	    "{\"return\": {\"status\": \"bogus\"}, \"id\": \"vmsup-999\"}\r\n"
	    "{\"return\": {\"status\": \"bogus\"}, \"id\": 7}\r\n"
	    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no id\"}}\r\n"
	    "{\"something\": \"else\"}\r\n",
	    -1);
	vmsup_mock_qmp_reply_held(fx->mock,
				  "query-status",
				  "{\"return\": {\"status\": \"right\"}}");
	res = vmsup_test_wait_result(&slot, 10);
	ret = vmsup_qmp_client_execute_finish(fx->client, res, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(return_string(ret, "status"), ==, "right");
	g_assert_true(vmsup_qmp_client_is_ready(fx->client));
	g_assert_cmpuint(fx->n_closed, ==, 0);
}

static void
test_mock_error_reply(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(JsonNode) canned = NULL;
	g_autofree gchar *not_found = vmsup_mock_qmp_load("error-command-not-found");
	JsonObject *request;

	handshake(fx);
	vmsup_mock_qmp_expect_error(fx->mock,
				    "device_add",
				    "GenericError",
				    "Bus 'pci.9' not found");
	ret = execute(fx,
		      "device_add",
		      "{\"driver\": \"virtio-net-pci\", \"bus\": \"pci.9\"}",
		      &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_COMMAND);
	g_assert_cmpstr(error->message, ==, "device_add: GenericError: Bus 'pci.9' not found");
	request = vmsup_mock_qmp_get_request(fx->mock, 1);
	g_assert_cmpstr(
	    vmsup_json_object_get_string(json_object_get_object_member(request, "arguments"),
					 "bus",
					 NULL),
	    ==,
	    "pci.9");
	g_clear_error(&error);

	/* the error object exactly as QEMU 7.2 sends it */
	vmsup_mock_qmp_expect(fx->mock, "no-such-command", not_found);
	canned = execute(fx, "no-such-command", NULL, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_COMMAND);
	g_assert_cmpstr(error->message,
			==,
			"no-such-command: CommandNotFound: The command no-such-command has not "
			"been found");
	g_assert_cmpuint(fx->n_closed, ==, 0);
}

static void
test_mock_quit_races_eof(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	handshake(fx);
	/* QEMU may exit before its reply to quit is read */
	vmsup_mock_qmp_close_mid_reply(fx->mock, "quit", "{\"return\": {}}");
	ret = execute(fx, "quit", NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(ret);
	vmsup_test_wait_until(is_closed, fx, 10);
	g_assert_cmpuint(fx->n_closed, ==, 1);
}

static void
test_mock_eof_fails_all(Fixture *fx, gconstpointer data)
{
	GAsyncResult *slots[3] = {NULL, NULL, NULL};

	handshake(fx);
	for (guint i = 0; i < G_N_ELEMENTS(slots); i++) {
		vmsup_mock_qmp_hang(fx->mock, "query-status");
		vmsup_qmp_client_execute_async(fx->client,
					       "query-status",
					       NULL,
					       NULL,
					       vmsup_test_store_result_cb,
					       &slots[i]);
	}
	vmsup_mock_qmp_wait_received(fx->mock, 4, 10);
	vmsup_mock_qmp_close(fx->mock);
	for (guint i = 0; i < G_N_ELEMENTS(slots); i++) {
		g_autoptr(GAsyncResult) res = vmsup_test_wait_result(&slots[i], 10);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) ret = vmsup_qmp_client_execute_finish(fx->client, res, &error);
		g_assert_null(ret);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
		g_assert_cmpstr(error->message,
				==,
				"QMP connection to 'mock' closed: end of stream");
	}
	g_assert_cmpuint(fx->n_closed, ==, 1);
	g_assert_error(fx->closed_error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
}

static void
test_mock_cancel(Fixture *fx, gconstpointer data)
{
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(JsonNode) next = NULL;
	GAsyncResult *slot = NULL;

	handshake(fx);
	vmsup_mock_qmp_hang(fx->mock, "query-status");
	vmsup_qmp_client_execute_async(fx->client,
				       "query-status",
				       NULL,
				       cancellable,
				       vmsup_test_store_result_cb,
				       &slot);
	vmsup_mock_qmp_wait_received(fx->mock, 2, 10);
	g_cancellable_cancel(cancellable);
	res = vmsup_test_wait_result(&slot, 10);
	ret = vmsup_qmp_client_execute_finish(fx->client, res, &error);
	g_assert_null(ret);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_clear_error(&error);

	vmsup_mock_qmp_reply_held(fx->mock, "query-status", NULL);
	vmsup_mock_qmp_expect_canned(fx->mock, "query-status");
	next = execute(fx, "query-status", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(return_string(next, "status"), ==, "prelaunch");
}

static void
test_mock_close_fails_pending(Fixture *fx, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	GAsyncResult *slot = NULL;

	handshake(fx);
	vmsup_mock_qmp_hang(fx->mock, "query-status");
	vmsup_qmp_client_execute_async(fx->client,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	vmsup_mock_qmp_wait_received(fx->mock, 2, 10);
	vmsup_qmp_client_close(fx->client);
	g_assert_cmpuint(fx->n_closed, ==, 1);
	g_assert_null(fx->closed_error);
	res = vmsup_test_wait_result(&slot, 10);
	ret = vmsup_qmp_client_execute_finish(fx->client, res, &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	g_assert_cmpstr(error->message, ==, "QMP connection to 'mock' closed: closed by client");
}

static void
test_connect_missing_socket(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *tmpdir = vmsup_test_make_tmpdir();
	g_autofree gchar *path = g_build_filename(tmpdir, "nothing-here", "qmp.sock", NULL);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	vmsup_qmp_client_connect_async(fx->client, path, NULL, vmsup_test_store_result_cb, &slot);
	/* retried a bounded number of times, then an error */
	res = vmsup_test_wait_result(&slot, 10);
	g_assert_false(vmsup_qmp_client_connect_finish(fx->client, res, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	g_assert_nonnull(strstr(error->message, path));
	vmsup_test_rm_rf(tmpdir);
}

/* real QEMU */

static gchar *
qemu_socket_path(Fixture *fx)
{
	return g_build_filename(fx->tmpdir, "qmp.sock", NULL);
}

/* binds the QMP socket and hands it to QEMU, as the daemon does */
static void
spawn_qemu(Fixture *fx)
{
	g_autofree gchar *qemu = vmsup_test_require_qemu();
	g_autofree gchar *path = qemu_socket_path(fx);
	g_autofree gchar *log = g_build_filename(fx->tmpdir, "qemu.log", NULL);
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT);
	g_autoptr(GSocket) listener = NULL;
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(path);
	g_autoptr(GError) error = NULL;
	gint fd;

	listener = g_socket_new(G_SOCKET_FAMILY_UNIX,
				G_SOCKET_TYPE_STREAM,
				G_SOCKET_PROTOCOL_DEFAULT,
				&error);
	g_assert_no_error(error);
	g_socket_bind(listener, address, FALSE, &error);
	g_assert_no_error(error);
	g_socket_listen(listener, &error);
	g_assert_no_error(error);
	fd = fcntl(g_socket_get_fd(listener), F_DUPFD_CLOEXEC, 3);
	g_assert_cmpint(fd, >=, 0);

	g_subprocess_launcher_take_fd(launcher, fd, 3);
	g_subprocess_launcher_set_stdout_file_path(launcher, log);
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	g_subprocess_launcher_set_child_setup(launcher,
					      vmsup_test_child_dies_with_parent,
					      NULL,
					      NULL);
	fx->qemu = g_subprocess_launcher_spawn(launcher,
					       &error,
					       qemu,
					       "-S",
					       "-nodefaults",
					       "-no-user-config",
					       "-display",
					       "none",
					       "-machine",
					       "q35",
					       "-accel",
					       "tcg",
					       "-chardev",
					       "socket,id=qmp0,fd=3,server=on,wait=off",
					       "-mon",
					       "chardev=qmp0,mode=control",
					       NULL);
	g_assert_no_error(error);
}

static void
connect_qemu(Fixture *fx)
{
	g_autofree gchar *path = qemu_socket_path(fx);
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	vmsup_qmp_client_connect_async(fx->client, path, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 30);
	vmsup_qmp_client_connect_finish(fx->client, res, &error);
	g_assert_no_error(error);
	g_assert_true(vmsup_qmp_client_is_ready(fx->client));
}

static void
setup_qemu(Fixture *fx, gconstpointer data)
{
	fx->tmpdir = vmsup_test_make_tmpdir();
	fixture_init(fx, "qemu-test");
	if (data == NULL) {
		spawn_qemu(fx);
		connect_qemu(fx);
	}
}

static gint
wait_qemu_exit(Fixture *fx)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	g_subprocess_wait_async(fx->qemu, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 30);
	g_subprocess_wait_finish(fx->qemu, res, &error);
	g_assert_no_error(error);
	return g_subprocess_get_status(fx->qemu);
}

static void
teardown_qemu(Fixture *fx, gconstpointer data)
{
	fixture_clear(fx);
	if (fx->qemu != NULL) {
		g_subprocess_force_exit(fx->qemu);
		wait_qemu_exit(fx);
		g_clear_object(&fx->qemu);
	}
	if (g_test_failed()) {
		g_autofree gchar *log = g_build_filename(fx->tmpdir, "qemu.log", NULL);
		g_autofree gchar *contents = NULL;
		if (g_file_get_contents(log, &contents, NULL, NULL))
			g_test_message("qemu.log:\n%s", contents);
	}
	vmsup_test_rm_rf(fx->tmpdir);
	g_free(fx->tmpdir);
	vmsup_test_drain_main_context();
}

static GPid
qemu_pid(Fixture *fx)
{
	return (GPid)g_ascii_strtoll(g_subprocess_get_identifier(fx->qemu), NULL, 10);
}

static void
test_qemu_handshake(Fixture *fx, gconstpointer data)
{
	JsonObject *greeting = vmsup_qmp_client_get_greeting(fx->client);
	JsonObject *version;
	JsonObject *qemu;

	g_assert_nonnull(greeting);
	version = json_object_get_object_member(greeting, "version");
	g_assert_nonnull(version);
	qemu = json_object_get_object_member(version, "qemu");
	g_assert_nonnull(qemu);
	g_assert_cmpint(vmsup_json_object_get_int(qemu, "major", -1), ==, 7);
	g_assert_cmpint(vmsup_json_object_get_int(qemu, "minor", -1), >=, 0);
	g_assert_true(JSON_NODE_HOLDS_ARRAY(json_object_get_member(greeting, "capabilities")));
	g_assert_cmpuint(fx->n_closed, ==, 0);
}

static void
test_qemu_query_status(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = execute(fx, "query-status", NULL, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(return_string(ret, "status"), ==, "prelaunch");
	g_assert_false(vmsup_json_object_get_bool(json_node_get_object(ret), "running", TRUE));
}

static void
test_qemu_in_flight(Fixture *fx, gconstpointer data)
{
	const gchar *commands[] = {"query-status", "query-version", "no-such-command", "query-kvm"};
	GAsyncResult *slots[G_N_ELEMENTS(commands)] = {NULL};

	for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
		vmsup_qmp_client_execute_async(fx->client,
					       commands[i],
					       NULL,
					       NULL,
					       vmsup_test_store_result_cb,
					       &slots[i]);
	}
	for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
		g_autoptr(GAsyncResult) res = vmsup_test_wait_result(&slots[i], 10);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) ret = vmsup_qmp_client_execute_finish(fx->client, res, &error);
		JsonObject *obj;

		if (i == 2) {
			g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_COMMAND);
			g_assert_true(
			    g_str_has_prefix(error->message, "no-such-command: CommandNotFound: "));
			continue;
		}
		g_assert_no_error(error);
		obj = json_node_get_object(ret);
		if (i == 0)
			g_assert_cmpstr(vmsup_json_object_get_string(obj, "status", NULL),
					==,
					"prelaunch");
		else if (i == 1)
			g_assert_true(json_object_has_member(obj, "qemu"));
		else
			g_assert_true(json_object_has_member(obj, "enabled"));
	}
}

static void
test_qemu_cont_stop(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) cont = NULL;
	g_autoptr(JsonNode) status = NULL;
	g_autoptr(JsonNode) stop = NULL;
	JsonObject *event;
	gint64 now = g_get_real_time();

	cont = execute(fx, "cont", NULL, &error);
	g_assert_no_error(error);
	event = wait_event(fx, "RESUME");
	/* QEMU's timestamps are wall clock */
	g_assert_cmpint(ABS(json_object_get_int_member(event, "timestamp") - now),
			<,
			60 * G_USEC_PER_SEC);
	status = execute(fx, "query-status", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(return_string(status, "status"), ==, "running");

	stop = execute(fx, "stop", NULL, &error);
	g_assert_no_error(error);
	wait_event(fx, "STOP");
	g_assert_cmpuint(fx->n_closed, ==, 0);
}

static void
test_qemu_reset(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = execute(fx, "system_reset", NULL, &error);
	JsonObject *event;

	g_assert_no_error(error);
	event = wait_event(fx, "RESET");
	g_assert_cmpstr(vmsup_json_object_get_string(json_object_get_object_member(event, "data"),
						     "reason",
						     NULL),
			==,
			"host-qmp-system-reset");
}

static void
test_qemu_quit(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(JsonNode) late = NULL;
	JsonObject *event;
	guint shutdown_by_detail = 0;

	g_signal_connect_swapped(fx->client,
				 "event::SHUTDOWN",
				 G_CALLBACK(count_cb),
				 &shutdown_by_detail);
	ret = execute(fx, "quit", NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(ret);
	event = wait_event(fx, "SHUTDOWN");
	g_assert_cmpstr(vmsup_json_object_get_string(json_object_get_object_member(event, "data"),
						     "reason",
						     NULL),
			==,
			"host-qmp-quit");
	g_assert_cmpuint(shutdown_by_detail, ==, 1);

	/* EOF after quit is a clean end */
	vmsup_test_wait_until(is_closed, fx, 10);
	g_assert_null(fx->closed_error);
	g_assert_cmpint(wait_qemu_exit(fx), ==, 0);
	g_clear_object(&fx->qemu);

	late = execute(fx, "query-status", NULL, &error);
	g_assert_null(late);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	vmsup_test_drain_main_context();
	g_assert_cmpuint(fx->n_closed, ==, 1);
}

static void
test_qemu_eof_fails_pending(Fixture *fx, gconstpointer data)
{
	GPid pid = qemu_pid(fx);
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	/* a stopped QEMU cannot answer: the command is surely pending when it dies */
	g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
	vmsup_test_wait_until(vmsup_test_pid_is_stopped, GINT_TO_POINTER(pid), 10);
	vmsup_qmp_client_execute_async(fx->client,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	vmsup_test_drain_main_context();
	g_assert_null(slot);
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0);

	res = vmsup_test_wait_result(&slot, 10);
	ret = vmsup_qmp_client_execute_finish(fx->client, res, &error);
	g_assert_null(ret);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	g_assert_true(g_str_has_prefix(error->message, "QMP connection to 'qemu-test' closed: "));
	vmsup_test_wait_until(is_closed, fx, 10);
	g_assert_error(fx->closed_error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	wait_qemu_exit(fx);
	g_clear_object(&fx->qemu);
	vmsup_test_drain_main_context();
	g_assert_cmpuint(fx->n_closed, ==, 1);
}

static gboolean
spawn_qemu_cb(gpointer user_data)
{
	spawn_qemu(user_data);
	return G_SOURCE_REMOVE;
}

static void
test_qemu_late_socket(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	/* the socket appears only after the first attempt failed */
	g_timeout_add(100, spawn_qemu_cb, fx);
	connect_qemu(fx);
	ret = execute(fx, "query-status", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(return_string(ret, "status"), ==, "prelaunch");
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
#define ADD_MOCK(path, func) g_test_add(path, Fixture, NULL, setup_mock, func, teardown_mock)
#define ADD_RAW(path, func) g_test_add(path, Fixture, "raw", setup_mock, func, teardown_mock)
#define ADD_QEMU(path, func, data) g_test_add(path, Fixture, data, setup_qemu, func, teardown_qemu)
	ADD_MOCK("/vmsup/qmp/mock/handshake", test_mock_handshake);
	ADD_RAW("/vmsup/qmp/mock/bad-greeting", test_mock_bad_greeting);
	ADD_MOCK("/vmsup/qmp/mock/garbage", test_mock_garbage);
	ADD_MOCK("/vmsup/qmp/mock/timeout", test_mock_timeout);
	ADD_MOCK("/vmsup/qmp/mock/call-timeout", test_mock_call_timeout);
	ADD_MOCK("/vmsup/qmp/mock/close-mid-reply", test_mock_close_mid_reply);
	ADD_MOCK("/vmsup/qmp/mock/oversized", test_mock_oversized);
	ADD_MOCK("/vmsup/qmp/mock/interleaved", test_mock_interleaved);
	ADD_MOCK("/vmsup/qmp/mock/unknown-id", test_mock_unknown_id);
	ADD_MOCK("/vmsup/qmp/mock/error-reply", test_mock_error_reply);
	ADD_MOCK("/vmsup/qmp/mock/quit-races-eof", test_mock_quit_races_eof);
	ADD_MOCK("/vmsup/qmp/mock/eof-fails-all", test_mock_eof_fails_all);
	ADD_MOCK("/vmsup/qmp/mock/cancel", test_mock_cancel);
	ADD_MOCK("/vmsup/qmp/mock/close-fails-pending", test_mock_close_fails_pending);
	ADD_RAW("/vmsup/qmp/mock/connect-missing-socket", test_connect_missing_socket);
	ADD_QEMU("/vmsup/qmp/qemu/handshake", test_qemu_handshake, NULL);
	ADD_QEMU("/vmsup/qmp/qemu/query-status", test_qemu_query_status, NULL);
	ADD_QEMU("/vmsup/qmp/qemu/in-flight", test_qemu_in_flight, NULL);
	ADD_QEMU("/vmsup/qmp/qemu/cont-stop", test_qemu_cont_stop, NULL);
	ADD_QEMU("/vmsup/qmp/qemu/reset", test_qemu_reset, NULL);
	ADD_QEMU("/vmsup/qmp/qemu/quit", test_qemu_quit, NULL);
	ADD_QEMU("/vmsup/qmp/qemu/eof-fails-pending", test_qemu_eof_fails_pending, NULL);
	ADD_QEMU("/vmsup/qmp/qemu/late-socket", test_qemu_late_socket, "late");
#undef ADD_MOCK
#undef ADD_RAW
#undef ADD_QEMU
	return g_test_run();
}
