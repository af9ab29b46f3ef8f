/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmsup-line-stream.h"
#include "vmsup-json.h"
#include "vmsup-mock-qmp.h"
#include "vmsup-test-util.h"

typedef struct {
	VmsupMockQmp *mock;
	VmsupLineStream *stream;
	GPtrArray *messages; /* of JsonObject */
	GPtrArray *invalid;  /* of GError */
	guint n_closed;
	GError *closed_error;
	gboolean discard_on_again;
} Fixture;

static void
message_cb(VmsupLineStream *stream, JsonObject *message, gpointer user_data)
{
	Fixture *fx = user_data;
	g_ptr_array_add(fx->messages, json_object_ref(message));
	if (fx->discard_on_again && json_object_has_member(message, "again"))
		vmsup_line_stream_discard_until_sentinel(stream);
}

static void
invalid_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	Fixture *fx = user_data;
	g_ptr_array_add(fx->invalid, g_error_copy(error));
}

static void
closed_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
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
	fx->stream = vmsup_line_stream_new(vmsup_mock_qmp_get_stream(fx->mock),
					   "test",
					   VMSUP_LINE_STREAM_CRLF);
	vmsup_line_stream_set_json_flags(fx->stream, VMSUP_JSON_CHECK_WIDE_INTEGERS);
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

	vmsup_line_stream_close(fx->stream);
	/* closing twice, or after the peer did, emits nothing more */
	vmsup_line_stream_close(fx->stream);
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
	vmsup_line_stream_start(fx->stream);
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
	vmsup_line_stream_start(fx->stream);
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
			vmsup_line_stream_send_raw(fx->stream, "\xff", 1);
		vmsup_line_stream_send(fx->stream, message);
		if (i == 10)
			vmsup_line_stream_start(fx->stream);
	}
	vmsup_mock_qmp_wait_received(fx->mock, n, 10);
	for (guint i = 0; i < n; i++) {
		JsonObject *request = vmsup_mock_qmp_get_request(fx->mock, i);
		JsonObject *args = json_object_get_object_member(request, "arguments");
		g_assert_cmpint(json_object_get_int_member(args, "i"), ==, i);
		g_assert_cmpint(vmsup_mock_qmp_get_request_had_sentinel(fx->mock, i),
				==,
				i == n / 2);
	}
	wait_messages(fx, n);
	g_assert_cmpuint(fx->n_closed, ==, 0);
}

static void
test_garbage(Fixture *fx, gconstpointer data)
{
	vmsup_line_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(
	    fx->mock,
	    "this is not json\n[1,2]\n\"str\"\n{\"a\":\n\x01\x02\xfe\n{\"ok\":1}\n",
	    -1);
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
	vmsup_line_stream_start(fx->stream);
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

	vmsup_line_stream_set_max_line(fx->stream, 64);
	vmsup_line_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(fx->mock, lines, -1);
	vmsup_test_wait_until(is_closed, fx, 10);
	g_assert_cmpuint(fx->messages->len, ==, 1);
	g_assert_error(fx->closed_error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	g_assert_true(vmsup_line_stream_is_closed(fx->stream));
}

static void
test_oversized(Fixture *fx, gconstpointer data)
{
	gsize size = 2 * VMSUP_LINE_STREAM_MAX_LINE_DEFAULT;
	g_autofree gchar *flood = g_strnfill(size, 'x');

	/* a peer that never sends a newline must not make us buffer without end */
	vmsup_line_stream_start(fx->stream);
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
	vmsup_line_stream_discard_until_sentinel(fx->stream);
	vmsup_line_stream_start(fx->stream);
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
	vmsup_line_stream_start(fx->stream);
	vmsup_mock_qmp_send_raw(fx->mock, "{\"a\":1}\n", -1);
	vmsup_mock_qmp_close(fx->mock);
	vmsup_test_wait_until(is_closed, fx, 10);
	g_assert_cmpuint(fx->messages->len, ==, 1);
	g_assert_no_error(fx->closed_error);
	g_assert_true(vmsup_line_stream_is_closed(fx->stream));
	vmsup_test_drain_main_context();
	g_assert_cmpuint(fx->n_closed, ==, 1);
}

static void
test_eof_mid_message(Fixture *fx, gconstpointer data)
{
	vmsup_line_stream_start(fx->stream);
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

	vmsup_line_stream_start(fx->stream);
	vmsup_line_stream_close(fx->stream);
	g_assert_cmpuint(fx->n_closed, ==, 1);
	g_assert_no_error(fx->closed_error);
	json_object_set_string_member(message, "execute", "late");
	vmsup_line_stream_send(fx->stream, message);
	vmsup_line_stream_send_raw(fx->stream, "x\n", 2);
	vmsup_mock_qmp_send_raw(fx->mock, "{\"a\":1}\n", -1);
	vmsup_test_drain_main_context();
	g_assert_cmpuint(fx->messages->len, ==, 0);
	g_assert_cmpuint(vmsup_mock_qmp_get_n_received(fx->mock), ==, 0);
	g_assert_cmpuint(fx->n_closed, ==, 1);
	/* the socket itself is closed, not just our reading */
	vmsup_mock_qmp_wait_hangup(fx->mock, 10);
}

/* the modes of the JSON-RPC server: raw lines, the owner closes */

typedef struct {
	GPtrArray *lines; /* of gchar* */
	guint n_ended;
	GError *ended_error;
	guint n_closed;
	GError *closed_error;
} Owner;

static void
owner_line_cb(VmsupLineStream *stream, GBytes *line, gpointer user_data)
{
	Owner *owner = user_data;
	gsize length = 0;
	const gchar *data = g_bytes_get_data(line, &length);

	g_assert_cmpint(data[length], ==, '\0');
	g_ptr_array_add(owner->lines, g_strndup(data, length));
}

static void
owner_ended_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	Owner *owner = user_data;
	owner->n_ended++;
	if (error != NULL)
		owner->ended_error = g_error_copy(error);
}

static void
owner_closed_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	Owner *owner = user_data;
	owner->n_closed++;
	if (error != NULL)
		owner->closed_error = g_error_copy(error);
}

static VmsupLineStream *
owner_stream_new(Owner *owner, GIOStream *io, VmsupLineStreamFlags flags)
{
	VmsupLineStream *stream = vmsup_line_stream_new(io, "owner", flags);

	owner->lines = g_ptr_array_new_with_free_func(g_free);
	g_signal_connect(stream, "line", G_CALLBACK(owner_line_cb), owner);
	g_signal_connect(stream, "input-ended", G_CALLBACK(owner_ended_cb), owner);
	g_signal_connect(stream, "closed", G_CALLBACK(owner_closed_cb), owner);
	return stream;
}

static void
owner_clear(Owner *owner)
{
	g_ptr_array_unref(owner->lines);
	g_clear_error(&owner->ended_error);
	g_clear_error(&owner->closed_error);
}

/* a memory stream holding @input, what is written kept in *@out */
static GIOStream *
memory_io_new(const gchar *input, GOutputStream **out)
{
	g_autoptr(GInputStream) in =
	    g_memory_input_stream_new_from_data(g_strdup(input), strlen(input), g_free);

	*out = g_memory_output_stream_new_resizable();
	return g_simple_io_stream_new(in, *out);
}

static gchar *
memory_written(GOutputStream *out)
{
	return g_strndup(g_memory_output_stream_get_data(G_MEMORY_OUTPUT_STREAM(out)),
			 g_memory_output_stream_get_data_size(G_MEMORY_OUTPUT_STREAM(out)));
}

static void
test_raw_half_close(void)
{
	Owner owner = {0};
	g_autoptr(GOutputStream) out = NULL;
	g_autoptr(GIOStream) io = memory_io_new(" \n{\"a\":1}\r\n[1,2]\nlast, no newline", &out);
	g_autoptr(VmsupLineStream) stream =
	    owner_stream_new(&owner, io, VMSUP_LINE_STREAM_RAW | VMSUP_LINE_STREAM_HALF_CLOSE);
	g_autoptr(JsonNode) answer = vmsup_json_parse("{\"ok\":true}", -1, NULL);
	g_autofree gchar *written = NULL;

	vmsup_line_stream_start(stream);
	/* all of it, before the main loop runs */
	vmsup_line_stream_read_now(stream);
	g_assert_cmpuint(owner.lines->len, ==, 3);
	/* without CRLF the '\r' is the owner's to judge; blank lines are nobody's */
	g_assert_cmpstr(g_ptr_array_index(owner.lines, 0), ==, "{\"a\":1}\r");
	g_assert_cmpstr(g_ptr_array_index(owner.lines, 1), ==, "[1,2]");
	g_assert_cmpstr(g_ptr_array_index(owner.lines, 2), ==, "last, no newline");
	g_assert_cmpuint(owner.n_ended, ==, 1);
	g_assert_no_error(owner.ended_error);
	g_assert_true(vmsup_line_stream_got_eof(stream));
	/* the end of the input leaves the answers to go out */
	g_assert_cmpuint(owner.n_closed, ==, 0);
	vmsup_line_stream_send_node(stream, answer);
	vmsup_line_stream_close_after_flush(stream);
	g_assert_cmpuint(owner.n_closed, ==, 1);
	g_assert_no_error(owner.closed_error);
	written = memory_written(out);
	g_assert_cmpstr(written, ==, "{\"ok\":true}\n");
	vmsup_test_drain_main_context();
	g_assert_cmpuint(owner.n_ended, ==, 1);
	owner_clear(&owner);
}

static void
test_half_close_too_long(void)
{
	Owner owner = {0};
	g_autoptr(GOutputStream) out = NULL;
	g_autoptr(GIOStream) io = memory_io_new("12345678\n123456789\nnever read\n", &out);
	g_autoptr(VmsupLineStream) stream =
	    owner_stream_new(&owner, io, VMSUP_LINE_STREAM_RAW | VMSUP_LINE_STREAM_HALF_CLOSE);
	g_autofree gchar *written = NULL;

	vmsup_line_stream_set_max_line(stream, 8);
	vmsup_line_stream_start(stream);
	vmsup_line_stream_read_now(stream);
	g_assert_cmpuint(owner.lines->len, ==, 1);
	g_assert_cmpuint(owner.n_ended, ==, 1);
	g_assert_error(owner.ended_error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL);
	g_assert_false(vmsup_line_stream_got_eof(stream));
	/* the owner still answers the line it could not take */
	g_assert_cmpuint(owner.n_closed, ==, 0);
	vmsup_line_stream_send_raw(stream, "refused\n", 8);
	vmsup_line_stream_close_after_flush(stream);
	g_assert_cmpuint(owner.n_closed, ==, 1);
	written = memory_written(out);
	g_assert_cmpstr(written, ==, "refused\n");
	g_assert_cmpuint(owner.lines->len, ==, 1);
	owner_clear(&owner);
}

/* a connected pair: the stream's end as a GIOStream, the peer's as a blocking fd */
static GIOStream *
socket_pair_new(gint *peer_fd)
{
	gint fds[2];
	g_autoptr(GSocket) socket = NULL;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
	socket = g_socket_new_from_fd(fds[0], NULL);
	g_assert_nonnull(socket);
	*peer_fd = fds[1];
	return G_IO_STREAM(g_socket_connection_factory_create_connection(socket));
}

static void
send_lines_until_queued(VmsupLineStream *stream, gsize queued)
{
	g_autofree gchar *pad = g_strnfill(60000, 'x');
	g_autoptr(JsonObject) obj = json_object_new();

	json_object_set_string_member(obj, "pad", pad);
	while (vmsup_line_stream_get_queued(stream) <= queued &&
	       !vmsup_line_stream_is_closed(stream))
		vmsup_line_stream_send(stream, obj);
}

static void
test_write_limits(void)
{
	Owner owner = {0};
	gint peer = -1;
	g_autoptr(GIOStream) io = socket_pair_new(&peer);
	g_autoptr(VmsupLineStream) stream = owner_stream_new(&owner, io, VMSUP_LINE_STREAM_RAW);
	gchar buf[65536];
	gint64 deadline;

	vmsup_line_stream_set_write_limits(stream, 1024, 16 * 1024 * 1024);
	vmsup_line_stream_start(stream);
	/* the peer reads nothing: past the high-water mark nothing of its is read either */
	send_lines_until_queued(stream, 1024);
	g_assert_cmpint(write(peer, "held\n", 5), ==, 5);
	vmsup_test_drain_main_context();
	g_usleep(10 * 1000);
	vmsup_test_drain_main_context();
	g_assert_cmpuint(owner.lines->len, ==, 0);
	/* once it reads, its line is read too */
	g_assert_true(g_unix_set_fd_nonblocking(peer, TRUE, NULL));
	deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC * vmsup_test_timeout_multiplier();
	while (owner.lines->len == 0 && g_get_monotonic_time() < deadline) {
		while (read(peer, buf, sizeof(buf)) > 0)
			;
		g_main_context_iteration(NULL, FALSE);
	}
	g_assert_cmpuint(owner.lines->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(owner.lines, 0), ==, "held");
	g_assert_cmpuint(owner.n_closed, ==, 0);

	/* past the queue's limit the peer is cut off */
	vmsup_line_stream_set_write_limits(stream, 1024, 1024 * 1024);
	send_lines_until_queued(stream, 1024 * 1024);
	g_assert_cmpuint(owner.n_closed, ==, 1);
	g_assert_error(owner.closed_error, VMSUP_ERROR, VMSUP_ERROR_BUSY);
	close(peer);
	owner_clear(&owner);
}

static void
test_write_failure(void)
{
	Owner owner = {0};
	gint peer = -1;
	g_autoptr(GIOStream) io = socket_pair_new(&peer);
	g_autoptr(VmsupLineStream) stream = owner_stream_new(&owner, io, VMSUP_LINE_STREAM_RAW);

	/* the peer says why, and goes before it hears our request */
	g_assert_cmpint(write(peer, "refused\n", 8), ==, 8);
	close(peer);
	vmsup_line_stream_start(stream);
	vmsup_line_stream_send_raw(stream, "request\n", 8);
	vmsup_test_wait_until(vmsup_test_flag_is_set, &owner.n_closed, 10);
	/* what it said before is heard, and the failed write is why the stream ended */
	g_assert_cmpuint(owner.lines->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(owner.lines, 0), ==, "refused");
	g_assert_error(owner.closed_error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	g_assert_false(vmsup_line_stream_got_eof(stream));
	owner_clear(&owner);
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
	g_test_add_func("/vmsup/line-stream/raw-half-close", test_raw_half_close);
	g_test_add_func("/vmsup/line-stream/half-close-too-long", test_half_close_too_long);
	g_test_add_func("/vmsup/line-stream/write-limits", test_write_limits);
	g_test_add_func("/vmsup/line-stream/write-failure", test_write_failure);
	return g_test_run();
}
