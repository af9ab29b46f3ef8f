/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <string.h>

#include "vmsup-json-stream.h"
#include "vmsup-json.h"
#include "vmsup-mock-qmp.h"
#include "vmsup-test-util.h"

typedef struct {
	VmsupMockQmp *mock;
	VmsupJsonStream *stream;
	GPtrArray *messages; /* of JsonObject */
	GPtrArray *invalid;  /* of GError */
	guint n_closed;
	GError *closed_error;
	gboolean discard_on_again;
} Fixture;

static void
message_cb(VmsupJsonStream *stream, JsonObject *message, gpointer user_data)
{
	Fixture *fx = user_data;
	g_ptr_array_add(fx->messages, json_object_ref(message));
	if (fx->discard_on_again && json_object_has_member(message, "again"))
		vmsup_json_stream_discard_until_sentinel(stream);
}

static void
invalid_cb(VmsupJsonStream *stream, const GError *error, gpointer user_data)
{
	Fixture *fx = user_data;
	g_ptr_array_add(fx->invalid, g_error_copy(error));
}

static void
closed_cb(VmsupJsonStream *stream, const GError *error, gpointer user_data)
{
	Fixture *fx = user_data;
	fx->n_closed++;
	if (error != NULL)
		fx->closed_error = g_error_copy(error);
}

static void
setup(Fixture *fx, gconstpointer data)
{
	fx->mock = vmsup_mock_qmp_new(VMSUP_MOCK_QMP_MODE_RAW);
	fx->stream = vmsup_json_stream_new(vmsup_mock_qmp_get_stream(fx->mock), "test");
	fx->messages = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	fx->invalid = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
	g_signal_connect(fx->stream, "message", G_CALLBACK(message_cb), fx);
	g_signal_connect(fx->stream, "invalid", G_CALLBACK(invalid_cb), fx);
	g_signal_connect(fx->stream, "closed", G_CALLBACK(closed_cb), fx);
}

static void
teardown(Fixture *fx, gconstpointer data)
{
	guint n_closed = fx->n_closed;

	vmsup_json_stream_close(fx->stream);
	/* closing twice, or after the peer did, emits nothing more */
	vmsup_json_stream_close(fx->stream);
	g_assert_cmpuint(fx->n_closed, ==, MAX(n_closed, 1));
	g_clear_object(&fx->stream);
	vmsup_mock_qmp_free(fx->mock);
	vmsup_test_drain_main_context();
	g_ptr_array_unref(fx->messages);
	g_ptr_array_unref(fx->invalid);
	g_clear_error(&fx->closed_error);
}

static gboolean
have_messages(gpointer user_data)
{
	Fixture *fx = user_data;
	return fx->messages->len >= GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(fx->stream), "n"));
}

static void
wait_messages(Fixture *fx, guint n)
{
	g_object_set_data(G_OBJECT(fx->stream), "n", GUINT_TO_POINTER(n));
	vmsup_test_wait_until(have_messages, fx, 10);
}

static gboolean
is_closed(gpointer user_data)
{
	Fixture *fx = user_data;
	return fx->n_closed > 0;
}

static gint64
message_int(Fixture *fx, guint index, const gchar *member)
{
	g_assert_cmpuint(index, <, fx->messages->len);
	return vmsup_json_object_get_int(g_ptr_array_index(fx->messages, index), member, -1);
}

static void
test_messages(Fixture *fx, gconstpointer data)
{
	vmsup_json_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(fx->mock, "{\"a\":1}\r\n{\"b\":2}\n\n   \r\n{\"c\":", -1);
	wait_messages(fx, 2);
	g_assert_cmpint(message_int(fx, 0, "a"), ==, 1);
	g_assert_cmpint(message_int(fx, 1, "b"), ==, 2);

	/* the rest of a message split across writes */
	vmsup_mock_qmp_send_raw(fx->mock, "3}\r", -1);
	vmsup_mock_qmp_send_raw(fx->mock, "\n", -1);
	wait_messages(fx, 3);
	g_assert_cmpint(message_int(fx, 2, "c"), ==, 3);
	g_assert_cmpuint(fx->messages->len, ==, 3);
	g_assert_cmpuint(fx->invalid->len, ==, 0);
	g_assert_cmpuint(fx->n_closed, ==, 0);
}

static gboolean
count_tick(gpointer user_data)
{
	guint *ticks = user_data;
	(*ticks)++;
	return G_SOURCE_CONTINUE;
}

/* a peer that never pauses: every line arrives in order, and other sources still run */
static void
test_flood(Fixture *fx, gconstpointer data)
{
	const guint n = 100000;
	g_autoptr(GString) wire = g_string_new(NULL);
	guint ticks = 0;
	guint tick_id;

	for (guint i = 0; i < n; i++)
		g_string_append_printf(wire, "{\"n\":%u}\n", i);
	vmsup_json_stream_start(fx->stream);
	tick_id = g_timeout_add(0, count_tick, &ticks);
	vmsup_mock_qmp_send_raw(fx->mock, wire->str, wire->len);
	g_object_set_data(G_OBJECT(fx->stream), "n", GUINT_TO_POINTER(n));
	vmsup_test_wait_until(have_messages, fx, 60);
	g_source_remove(tick_id);
	g_assert_cmpuint(fx->messages->len, ==, n);
	g_assert_cmpint(message_int(fx, 0, "n"), ==, 0);
	g_assert_cmpint(message_int(fx, n / 2, "n"), ==, n / 2);
	g_assert_cmpint(message_int(fx, n - 1, "n"), ==, n - 1);
	g_assert_cmpuint(fx->invalid->len, ==, 0);
	/* about 1 MB read 64 KiB per dispatch at most: the timer ran in between */
	g_test_message("a timer ran %u times while %u lines were read", ticks, n);
	g_assert_cmpuint(ticks, >=, 8);
}

static void
test_write_order(Fixture *fx, gconstpointer data)
{
	const guint n = 200;

	vmsup_mock_qmp_expect_any(fx->mock, "n", "{\"return\": {}}");
	/* queued before start: written once started, still in order */
	for (guint i = 0; i < n; i++) {
		g_autoptr(JsonObject) message = json_object_new();
		JsonObject *args = json_object_new();
		json_object_set_int_member(args, "i", i);
		json_object_set_string_member(message, "execute", "n");
		json_object_set_object_member(message, "arguments", args);
		if (i == n / 2)
			vmsup_json_stream_send_raw(fx->stream, "\xff", 1);
		vmsup_json_stream_send(fx->stream, message);
		if (i == 10)
			vmsup_json_stream_start(fx->stream);
	}
	vmsup_mock_qmp_wait_received(fx->mock, n, 10);
	for (guint i = 0; i < n; i++) {
		JsonObject *request = vmsup_mock_qmp_get_request(fx->mock, i);
		JsonObject *args = json_object_get_object_member(request, "arguments");
		g_assert_cmpint(json_object_get_int_member(args, "i"), ==, i);
		g_assert_cmpint(
		    vmsup_mock_qmp_get_request_had_sentinel(fx->mock, i), ==, i == n / 2);
	}
	wait_messages(fx, n);
	g_assert_cmpuint(fx->n_closed, ==, 0);
}

static void
test_garbage(Fixture *fx, gconstpointer data)
{
	vmsup_json_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(
	    fx->mock, "this is not json\n[1,2]\n\"str\"\n{\"a\":\n\x01\x02\xfe\n{\"ok\":1}\n", -1);
	wait_messages(fx, 1);
	g_assert_cmpuint(fx->invalid->len, ==, 5);
	for (guint i = 0; i < fx->invalid->len; i++) {
		GError *error = g_ptr_array_index(fx->invalid, i);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	}
	g_assert_cmpint(message_int(fx, 0, "ok"), ==, 1);
	/* garbage is reported, not fatal: the stream goes on */
	g_assert_cmpuint(fx->n_closed, ==, 0);
	vmsup_mock_qmp_send_raw(fx->mock, "{\"ok\":2}\n", -1);
	wait_messages(fx, 2);
	g_assert_cmpint(message_int(fx, 1, "ok"), ==, 2);
}

/*
 * A guest's NUL in a string is refused, never cut short, and so is what is
 * not JSON; QEMU's uint64 values beyond int64 still pass.
 */
static void
test_strict(Fixture *fx, gconstpointer data)
{
	vmsup_json_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(fx->mock,
				"{\"return\":{\"name\":\"eth0\\u0000evil\"}}\n"
				"{\"return\":0x10}\n"
				"{\"return\":1} {\"return\":2}\n"
				"{\"return\":1e400}\n"
				"{\"return\":{\"max\":18446744073709551615},\"ok\":1}\n",
				-1);
	wait_messages(fx, 1);
	g_assert_cmpuint(fx->invalid->len, ==, 4);
	g_assert_nonnull(
	    strstr(((GError *)g_ptr_array_index(fx->invalid, 0))->message, "NUL character"));
	g_assert_cmpint(message_int(fx, 0, "ok"), ==, 1);
	g_assert_cmpuint(fx->n_closed, ==, 0);
}

static gchar *
object_of_length(gsize length)
{
	/* {"x":"aaa..."} */
	g_autofree gchar *pad = g_strnfill(length - 8, 'a');
	gchar *text = g_strdup_printf("{\"x\":\"%s\"}", pad);
	g_assert_cmpuint(strlen(text), ==, length);
	return text;
}

static void
test_line_limit(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *at_limit = object_of_length(64);
	g_autofree gchar *over_limit = object_of_length(65);
	g_autofree gchar *lines = g_strdup_printf("%s\r\n%s\n", at_limit, over_limit);

	vmsup_json_stream_set_max_line(fx->stream, 64);
	vmsup_json_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(fx->mock, lines, -1);
	vmsup_test_wait_until(is_closed, fx, 10);
	g_assert_cmpuint(fx->messages->len, ==, 1);
	g_assert_error(fx->closed_error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	g_assert_true(vmsup_json_stream_is_closed(fx->stream));
}

static void
test_oversized(Fixture *fx, gconstpointer data)
{
	gsize size = 2 * VMSUP_JSON_STREAM_MAX_LINE_DEFAULT;
	g_autofree gchar *flood = g_strnfill(size, 'x');

	/* a peer that never sends a newline must not make us buffer without end */
	vmsup_json_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(fx->mock, "{\"before\":1}\n", -1);
	vmsup_mock_qmp_send_raw(fx->mock, flood, size);
	vmsup_test_wait_until(is_closed, fx, 20);
	g_assert_cmpuint(fx->n_closed, ==, 1);
	g_assert_cmpuint(fx->messages->len, ==, 1);
	g_assert_error(fx->closed_error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	g_assert_nonnull(strstr(fx->closed_error->message, "longer than"));
	vmsup_mock_qmp_wait_hangup(fx->mock, 10);
}

static void
test_sentinel(Fixture *fx, gconstpointer data)
{
	fx->discard_on_again = TRUE;
	vmsup_json_stream_discard_until_sentinel(fx->stream);
	vmsup_json_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(
	    fx->mock,
	    "{\"stale\":1}\n{\"error\":{\"class\":\"GenericError\"}}\njunk no newline",
	    -1);
	vmsup_mock_qmp_send_raw(fx->mock, "\xff{\"fresh\":1,\"again\":1}\n{\"skipped\":1}\n", -1);
	vmsup_mock_qmp_send_raw(fx->mock, "more junk\xff\xff{\"after\":1}\n{\"next\":1}\n", -1);
	wait_messages(fx, 2);
	g_assert_cmpint(message_int(fx, 0, "fresh"), ==, 1);
	/* a second 0xFF right after the first starts the line: it is garbage, not a sentinel */
	g_assert_cmpuint(fx->invalid->len, ==, 1);
	g_assert_cmpint(message_int(fx, 1, "next"), ==, 1);
	g_assert_cmpuint(fx->n_closed, ==, 0);

	vmsup_mock_qmp_send_raw(fx->mock, "{\"last\":1}\n", -1);
	wait_messages(fx, 3);
	g_assert_cmpint(message_int(fx, 2, "last"), ==, 1);
	g_assert_cmpuint(fx->messages->len, ==, 3);
}

static void
test_eof(Fixture *fx, gconstpointer data)
{
	vmsup_json_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(fx->mock, "{\"a\":1}\n", -1);
	vmsup_mock_qmp_close(fx->mock);
	vmsup_test_wait_until(is_closed, fx, 10);
	g_assert_cmpuint(fx->messages->len, ==, 1);
	g_assert_no_error(fx->closed_error);
	g_assert_true(vmsup_json_stream_is_closed(fx->stream));
	vmsup_test_drain_main_context();
	g_assert_cmpuint(fx->n_closed, ==, 1);
}

static void
test_eof_mid_message(Fixture *fx, gconstpointer data)
{
	vmsup_json_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(fx->mock, "{\"a\":1}\n{\"return\": {\"sta", -1);
	vmsup_mock_qmp_close(fx->mock);
	vmsup_test_wait_until(is_closed, fx, 10);
	g_assert_cmpuint(fx->messages->len, ==, 1);
	g_assert_error(fx->closed_error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	g_assert_nonnull(strstr(fx->closed_error->message, "middle of a message"));
}

static void
test_close(Fixture *fx, gconstpointer data)
{
	g_autoptr(JsonObject) message = json_object_new();

	vmsup_json_stream_start(fx->stream);
	vmsup_json_stream_close(fx->stream);
	g_assert_cmpuint(fx->n_closed, ==, 1);
	g_assert_no_error(fx->closed_error);
	json_object_set_string_member(message, "execute", "late");
	vmsup_json_stream_send(fx->stream, message);
	vmsup_json_stream_send_raw(fx->stream, "x\n", 2);
	vmsup_mock_qmp_send_raw(fx->mock, "{\"a\":1}\n", -1);
	vmsup_test_drain_main_context();
	g_assert_cmpuint(fx->messages->len, ==, 0);
	g_assert_cmpuint(vmsup_mock_qmp_get_n_received(fx->mock), ==, 0);
	g_assert_cmpuint(fx->n_closed, ==, 1);
	/* the socket itself is closed, not just our reading */
	vmsup_mock_qmp_wait_hangup(fx->mock, 10);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
#define ADD(path, func) g_test_add(path, Fixture, NULL, setup, func, teardown)
	ADD("/vmsup/qmp/json-stream/messages", test_messages);
	ADD("/vmsup/qmp/json-stream/write-order", test_write_order);
	ADD("/vmsup/qmp/json-stream/flood", test_flood);
	ADD("/vmsup/qmp/json-stream/garbage", test_garbage);
	ADD("/vmsup/qmp/json-stream/strict", test_strict);
	ADD("/vmsup/qmp/json-stream/line-limit", test_line_limit);
	ADD("/vmsup/qmp/json-stream/oversized", test_oversized);
	ADD("/vmsup/qmp/json-stream/sentinel", test_sentinel);
	ADD("/vmsup/qmp/json-stream/eof", test_eof);
	ADD("/vmsup/qmp/json-stream/eof-mid-message", test_eof_mid_message);
	ADD("/vmsup/qmp/json-stream/close", test_close);
#undef ADD
	return g_test_run();
}
