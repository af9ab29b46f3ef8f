/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A scripted fake QMP / guest-agent peer for fault tests, in the manner of
 * libvirt's mock monitor. It frames lines on its own (not with the code under
 * test) so that a bug in the client's transport cannot hide itself.
 */

#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "vmsup-mock-qmp.h"
#include "vmsup-test-util.h"

#define VMSUP_MOCK_SYNC "guest-sync-delimited"

typedef enum {
	VMSUP_MOCK_REPLY,
	VMSUP_MOCK_RAW,
	VMSUP_MOCK_HANG,
	VMSUP_MOCK_CLOSE_MID,
	VMSUP_MOCK_SYNC_REPLY,
} VmsupMockKind;

typedef struct {
	VmsupMockKind kind;
	gchar *command; /* owned */
	gchar *text;    /* owned: reply, raw bytes or sync prelude; may be NULL */
} VmsupMockExpect;

typedef struct {
	gchar *command;      /* owned */
	JsonObject *request; /* owned */
} VmsupMockHeld;

struct _VmsupMockQmp {
	VmsupMockQmpMode mode;
	GSocketConnection *peer;   /* owned: the mock's end */
	GSocketConnection *client; /* owned: the end under test */
	GDataInputStream *input;   /* owned */
	GCancellable *cancellable; /* owned */
	GQueue expectations;       /* of VmsupMockExpect, owned */
	GPtrArray *standing;       /* of VmsupMockExpect, owned */
	GQueue held;               /* of VmsupMockHeld, owned */
	GPtrArray *requests;       /* of JsonObject, owned */
	GArray *sentinels;         /* of gboolean, per request */
	GQueue writes;             /* of GBytes, owned */
	GBytes *write_current;     /* owned */
	guint n_ops;               /* async operations in flight */
	gboolean hung_up;          /* the client closed its end */
	gboolean close_after_writes;
	gboolean closed;
};

static void
vmsup_mock_expect_free(VmsupMockExpect *expect)
{
	g_free(expect->command);
	g_free(expect->text);
	g_free(expect);
}

static void
vmsup_mock_held_free(VmsupMockHeld *held)
{
	g_free(held->command);
	json_object_unref(held->request);
	g_free(held);
}

static JsonObject *
vmsup_mock_parse_object(const gchar *text)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	JsonNode *root;

	json_parser_load_from_data(parser, text, -1, &error);
	g_assert_no_error(error);
	root = json_parser_get_root(parser);
	g_assert_true(root != NULL && JSON_NODE_HOLDS_OBJECT(root));
	return json_object_ref(json_node_get_object(root));
}

static gchar *
vmsup_mock_to_line(JsonObject *object, const gchar *prefix)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
	g_autofree gchar *text = NULL;

	json_node_set_object(node, object);
	json_generator_set_root(gen, node);
	text = json_generator_to_data(gen, NULL);
	return g_strconcat(prefix != NULL ? prefix : "", text, "\r\n", NULL);
}

static void
vmsup_mock_close_now(VmsupMockQmp *mock)
{
	if (mock->closed)
		return;
	mock->closed = TRUE;
	g_cancellable_cancel(mock->cancellable);
	g_socket_close(g_socket_connection_get_socket(mock->peer), NULL);
}

static void
vmsup_mock_write_next(VmsupMockQmp *mock);

static void
vmsup_mock_write_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupMockQmp *mock = user_data;
	g_autoptr(GError) error = NULL;

	mock->n_ops--;
	g_clear_pointer(&mock->write_current, g_bytes_unref);
	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error)) {
		/* the client hung up first, as some tests make it do */
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_test_message("mock: write failed: %s", error->message);
		return;
	}
	vmsup_mock_write_next(mock);
}

static void
vmsup_mock_write_next(VmsupMockQmp *mock)
{
	gsize size = 0;
	gconstpointer data;

	if (mock->closed || mock->write_current != NULL)
		return;
	mock->write_current = g_queue_pop_head(&mock->writes);
	if (mock->write_current == NULL) {
		if (mock->close_after_writes)
			vmsup_mock_close_now(mock);
		return;
	}
	data = g_bytes_get_data(mock->write_current, &size);
	mock->n_ops++;
	g_output_stream_write_all_async(g_io_stream_get_output_stream(G_IO_STREAM(mock->peer)),
					data,
					size,
					G_PRIORITY_DEFAULT,
					mock->cancellable,
					vmsup_mock_write_cb,
					mock);
}

static void
vmsup_mock_write(VmsupMockQmp *mock, const gchar *data, gsize length)
{
	if (mock->closed)
		return;
	g_queue_push_tail(&mock->writes, g_bytes_new(data, length));
	vmsup_mock_write_next(mock);
}

static void
vmsup_mock_write_str(VmsupMockQmp *mock, const gchar *data)
{
	vmsup_mock_write(mock, data, strlen(data));
}

static gchar *
vmsup_mock_reply_line(JsonObject *request, const gchar *reply_json)
{
	g_autoptr(JsonObject) reply = vmsup_mock_parse_object(reply_json);
	JsonNode *id = json_object_get_member(request, "id");

	if (id != NULL)
		json_object_set_member(reply, "id", json_node_copy(id));
	return vmsup_mock_to_line(reply, NULL);
}

static void
vmsup_mock_reply_sync(VmsupMockQmp *mock, JsonObject *request, const gchar *prelude)
{
	JsonNode *args = json_object_get_member(request, "arguments");
	g_autoptr(JsonObject) reply = json_object_new();
	g_autofree gchar *line = NULL;

	if (args == NULL || !JSON_NODE_HOLDS_OBJECT(args) ||
	    !json_object_has_member(json_node_get_object(args), "id")) {
		g_test_fail_printf("mock: %s without an id", VMSUP_MOCK_SYNC);
		return;
	}
	if (prelude != NULL)
		vmsup_mock_write_str(mock, prelude);
	json_object_set_member(
	    reply,
	    "return",
	    json_node_copy(json_object_get_member(json_node_get_object(args), "id")));
	line = vmsup_mock_to_line(reply, "\xff");
	vmsup_mock_write_str(mock, line);
}

static VmsupMockExpect *
vmsup_mock_find_expectation(VmsupMockQmp *mock, const gchar *command, gboolean *out_owned)
{
	VmsupMockExpect *head = g_queue_peek_head(&mock->expectations);

	if (head != NULL && g_strcmp0(head->command, command) == 0) {
		*out_owned = TRUE;
		return g_queue_pop_head(&mock->expectations);
	}
	for (guint i = 0; i < mock->standing->len; i++) {
		VmsupMockExpect *expect = g_ptr_array_index(mock->standing, i);
		if (g_strcmp0(expect->command, command) == 0) {
			*out_owned = FALSE;
			return expect;
		}
	}
	return NULL;
}

static void
vmsup_mock_handle_request(VmsupMockQmp *mock, JsonObject *request, gboolean had_sentinel)
{
	const gchar *command = NULL;
	VmsupMockExpect *expect;
	gboolean owned = FALSE;
	g_autofree gchar *line = NULL;
	gsize half;

	if (json_object_has_member(request, "execute"))
		command = json_object_get_string_member(request, "execute");
	if (command == NULL) {
		g_test_fail_printf("mock: a message without \"execute\"");
		return;
	}
	if (g_strcmp0(command, VMSUP_MOCK_SYNC) == 0 && !had_sentinel)
		g_test_fail_printf("mock: %s not preceded by a 0xFF byte", VMSUP_MOCK_SYNC);
	if (mock->mode == VMSUP_MOCK_QMP_MODE_AGENT && g_strcmp0(command, VMSUP_MOCK_SYNC) != 0 &&
	    had_sentinel)
		g_test_fail_printf("mock: '%s' preceded by a 0xFF byte", command);

	expect = vmsup_mock_find_expectation(mock, command, &owned);
	if (expect == NULL) {
		VmsupMockExpect *head = g_queue_peek_head(&mock->expectations);
		g_test_fail_printf("mock: unexpected command '%s' (next expected: '%s')",
				   command,
				   head != NULL ? head->command : "none");
		line = vmsup_mock_reply_line(request,
					     "{\"error\":{\"class\":\"MockError\","
					     "\"desc\":\"unexpected command\"}}");
		vmsup_mock_write_str(mock, line);
		return;
	}

	switch (expect->kind) {
	case VMSUP_MOCK_REPLY:
		line = vmsup_mock_reply_line(request, expect->text);
		vmsup_mock_write_str(mock, line);
		break;
	case VMSUP_MOCK_RAW:
		vmsup_mock_write_str(mock, expect->text);
		break;
	case VMSUP_MOCK_HANG: {
		VmsupMockHeld *held = g_new0(VmsupMockHeld, 1);
		held->command = g_strdup(command);
		held->request = json_object_ref(request);
		g_queue_push_tail(&mock->held, held);
		break;
	}
	case VMSUP_MOCK_CLOSE_MID:
		line = vmsup_mock_reply_line(request, expect->text);
		half = strlen(line) / 2;
		vmsup_mock_write(mock, line, half);
		vmsup_mock_qmp_close(mock);
		break;
	case VMSUP_MOCK_SYNC_REPLY:
		vmsup_mock_reply_sync(mock, request, expect->text);
		break;
	default:
		g_assert_not_reached();
	}
	if (owned)
		vmsup_mock_expect_free(expect);
}

static void
vmsup_mock_handle_line(VmsupMockQmp *mock, gchar *line, gsize length)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	gboolean had_sentinel = FALSE;
	JsonNode *root;
	gchar *text = line;

	while (length > 0 && (guchar)text[0] == 0xFF) {
		had_sentinel = TRUE;
		text++;
		length--;
	}
	if (length > 0 && text[length - 1] == '\r')
		text[--length] = '\0';
	if (length == 0)
		return;
	if (!json_parser_load_from_data(parser, text, length, &error)) {
		g_test_fail_printf("mock: the client sent invalid JSON: %s", error->message);
		return;
	}
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		g_test_fail_printf("mock: the client sent a JSON value that is not an object");
		return;
	}
	g_ptr_array_add(mock->requests, json_object_ref(json_node_get_object(root)));
	g_array_append_val(mock->sentinels, had_sentinel);
	vmsup_mock_handle_request(mock, json_node_get_object(root), had_sentinel);
}

static void
vmsup_mock_read_next(VmsupMockQmp *mock);

static void
vmsup_mock_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupMockQmp *mock = user_data;
	g_autoptr(GError) error = NULL;
	gsize length = 0;
	g_autofree gchar *line = NULL;

	mock->n_ops--;
	line =
	    g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(source), res, &length, &error);
	if (mock->closed)
		return;
	if (line == NULL) {
		mock->hung_up = TRUE;
		return;
	}
	vmsup_mock_handle_line(mock, line, length);
	vmsup_mock_read_next(mock);
}

static void
vmsup_mock_read_next(VmsupMockQmp *mock)
{
	if (mock->closed)
		return;
	mock->n_ops++;
	g_data_input_stream_read_line_async(mock->input,
					    G_PRIORITY_DEFAULT,
					    mock->cancellable,
					    vmsup_mock_read_cb,
					    mock);
}

static GSocketConnection *
vmsup_mock_connection_new(gint fd)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) socket = g_socket_new_from_fd(fd, &error);

	g_assert_no_error(error);
	return g_socket_connection_factory_create_connection(socket);
}

static void
vmsup_mock_push(VmsupMockQmp *mock, VmsupMockKind kind, const gchar *command, const gchar *text)
{
	VmsupMockExpect *expect = g_new0(VmsupMockExpect, 1);
	expect->kind = kind;
	expect->command = g_strdup(command);
	expect->text = g_strdup(text);
	g_queue_push_tail(&mock->expectations, expect);
}

VmsupMockQmp *
vmsup_mock_qmp_new(VmsupMockQmpMode mode)
{
	VmsupMockQmp *mock = g_new0(VmsupMockQmp, 1);
	gint fds[2];

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
	mock->mode = mode;
	mock->peer = vmsup_mock_connection_new(fds[0]);
	mock->client = vmsup_mock_connection_new(fds[1]);
	mock->input =
	    g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(mock->peer)));
	g_filter_input_stream_set_close_base_stream(G_FILTER_INPUT_STREAM(mock->input), FALSE);
	g_data_input_stream_set_newline_type(mock->input, G_DATA_STREAM_NEWLINE_TYPE_LF);
	mock->cancellable = g_cancellable_new();
	g_queue_init(&mock->expectations);
	g_queue_init(&mock->held);
	g_queue_init(&mock->writes);
	mock->standing = g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_mock_expect_free);
	mock->requests = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	mock->sentinels = g_array_new(FALSE, FALSE, sizeof(gboolean));

	if (mode == VMSUP_MOCK_QMP_MODE_QMP) {
		g_autofree gchar *greeting = vmsup_mock_qmp_load("greeting");
		g_autofree gchar *line = g_strconcat(greeting, "\r\n", NULL);
		vmsup_mock_write_str(mock, line);
		vmsup_mock_qmp_expect(mock, "qmp_capabilities", "{\"return\": {}}");
	}
	vmsup_mock_read_next(mock);
	return mock;
}

GIOStream *
vmsup_mock_qmp_get_stream(VmsupMockQmp *mock)
{
	return G_IO_STREAM(mock->client);
}

static gboolean
vmsup_mock_idle(gpointer user_data)
{
	VmsupMockQmp *mock = user_data;
	return mock->n_ops == 0;
}

void
vmsup_mock_qmp_free(VmsupMockQmp *mock)
{
	if (!g_queue_is_empty(&mock->expectations)) {
		g_autoptr(GString) left = g_string_new(NULL);
		for (GList *l = mock->expectations.head; l != NULL; l = l->next) {
			VmsupMockExpect *expect = l->data;
			g_string_append_printf(left, " '%s'", expect->command);
		}
		g_test_message("mock: expected commands that never came:%s", left->str);
	}
	g_assert_true(g_queue_is_empty(&mock->expectations));

	vmsup_mock_close_now(mock);
	g_io_stream_close(G_IO_STREAM(mock->client), NULL, NULL);
	vmsup_test_wait_until(vmsup_mock_idle, mock, 10);

	g_queue_clear_full(&mock->writes, (GDestroyNotify)g_bytes_unref);
	g_queue_clear_full(&mock->held, (GDestroyNotify)vmsup_mock_held_free);
	g_ptr_array_unref(mock->standing);
	g_ptr_array_unref(mock->requests);
	g_array_unref(mock->sentinels);
	g_object_unref(mock->input);
	g_object_unref(mock->peer);
	g_object_unref(mock->client);
	g_object_unref(mock->cancellable);
	g_free(mock);
}

gchar *
vmsup_mock_qmp_load(const gchar *name)
{
	g_autofree gchar *basename = g_strconcat(name, ".json", NULL);
	g_autofree gchar *path = g_test_build_filename(G_TEST_DIST, "data", "qmp", basename, NULL);
	g_autofree gchar *contents = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) object = NULL;
	g_autofree gchar *line = NULL;
	gsize length;

	g_file_get_contents(path, &contents, NULL, &error);
	g_assert_no_error(error);
	object = vmsup_mock_parse_object(contents);
	line = vmsup_mock_to_line(object, NULL);
	length = strlen(line);
	line[length - 2] = '\0';
	return g_steal_pointer(&line);
}

void
vmsup_mock_qmp_expect(VmsupMockQmp *mock, const gchar *command, const gchar *reply_json)
{
	g_autoptr(JsonObject) check = vmsup_mock_parse_object(reply_json);
	vmsup_mock_push(mock, VMSUP_MOCK_REPLY, command, reply_json);
}

void
vmsup_mock_qmp_expect_canned(VmsupMockQmp *mock, const gchar *command)
{
	g_autofree gchar *reply = vmsup_mock_qmp_load(command);
	vmsup_mock_push(mock, VMSUP_MOCK_REPLY, command, reply);
}

void
vmsup_mock_qmp_expect_error(VmsupMockQmp *mock,
			    const gchar *command,
			    const gchar *error_class,
			    const gchar *desc)
{
	g_autoptr(JsonObject) reply = json_object_new();
	JsonObject *error = json_object_new();
	g_autofree gchar *line = NULL;

	json_object_set_string_member(error, "class", error_class);
	json_object_set_string_member(error, "desc", desc);
	json_object_set_object_member(reply, "error", error);
	line = vmsup_mock_to_line(reply, NULL);
	vmsup_mock_push(mock, VMSUP_MOCK_REPLY, command, line);
}

void
vmsup_mock_qmp_expect_raw(VmsupMockQmp *mock, const gchar *command, const gchar *raw)
{
	vmsup_mock_push(mock, VMSUP_MOCK_RAW, command, raw);
}

void
vmsup_mock_qmp_expect_any(VmsupMockQmp *mock, const gchar *command, const gchar *reply_json)
{
	VmsupMockExpect *expect = g_new0(VmsupMockExpect, 1);
	g_autoptr(JsonObject) check = vmsup_mock_parse_object(reply_json);

	expect->kind = VMSUP_MOCK_REPLY;
	expect->command = g_strdup(command);
	expect->text = g_strdup(reply_json);
	g_ptr_array_add(mock->standing, expect);
}

void
vmsup_mock_qmp_expect_sync(VmsupMockQmp *mock, const gchar *prelude_raw)
{
	g_assert_cmpint(mock->mode, ==, VMSUP_MOCK_QMP_MODE_AGENT);
	vmsup_mock_push(mock, VMSUP_MOCK_SYNC_REPLY, VMSUP_MOCK_SYNC, prelude_raw);
}

void
vmsup_mock_qmp_expect_any_sync(VmsupMockQmp *mock)
{
	VmsupMockExpect *expect = g_new0(VmsupMockExpect, 1);

	g_assert_cmpint(mock->mode, ==, VMSUP_MOCK_QMP_MODE_AGENT);
	expect->kind = VMSUP_MOCK_SYNC_REPLY;
	expect->command = g_strdup(VMSUP_MOCK_SYNC);
	g_ptr_array_add(mock->standing, expect);
}

void
vmsup_mock_qmp_hang(VmsupMockQmp *mock, const gchar *command)
{
	vmsup_mock_push(mock, VMSUP_MOCK_HANG, command, NULL);
}

void
vmsup_mock_qmp_close_mid_reply(VmsupMockQmp *mock, const gchar *command, const gchar *reply_json)
{
	g_autoptr(JsonObject) check = vmsup_mock_parse_object(reply_json);
	vmsup_mock_push(mock, VMSUP_MOCK_CLOSE_MID, command, reply_json);
}

void
vmsup_mock_qmp_reply_held(VmsupMockQmp *mock, const gchar *command, const gchar *reply_json)
{
	VmsupMockHeld *held = NULL;
	g_autofree gchar *line = NULL;

	for (GList *l = mock->held.head; l != NULL; l = l->next) {
		VmsupMockHeld *h = l->data;
		if (g_strcmp0(h->command, command) == 0) {
			held = h;
			g_queue_delete_link(&mock->held, l);
			break;
		}
	}
	g_assert_nonnull(held);
	if (reply_json == NULL && g_strcmp0(command, VMSUP_MOCK_SYNC) == 0) {
		vmsup_mock_reply_sync(mock, held->request, NULL);
	} else {
		line = vmsup_mock_reply_line(held->request,
					     reply_json != NULL ? reply_json : "{\"return\": {}}");
		vmsup_mock_write_str(mock, line);
	}
	vmsup_mock_held_free(held);
}

gint64
vmsup_mock_qmp_emit_event(VmsupMockQmp *mock, const gchar *event, const gchar *data_json)
{
	g_autoptr(JsonObject) message = json_object_new();
	JsonObject *timestamp = json_object_new();
	gint64 now = g_get_real_time();
	g_autofree gchar *line = NULL;

	json_object_set_string_member(message, "event", event);
	if (data_json != NULL)
		json_object_set_object_member(message, "data", vmsup_mock_parse_object(data_json));
	json_object_set_int_member(timestamp, "seconds", now / G_USEC_PER_SEC);
	json_object_set_int_member(timestamp, "microseconds", now % G_USEC_PER_SEC);
	json_object_set_object_member(message, "timestamp", timestamp);
	line = vmsup_mock_to_line(message, NULL);
	vmsup_mock_write_str(mock, line);
	return now;
}

void
vmsup_mock_qmp_send_raw(VmsupMockQmp *mock, const gchar *data, gssize length)
{
	vmsup_mock_write(mock, data, length < 0 ? strlen(data) : (gsize)length);
}

void
vmsup_mock_qmp_close(VmsupMockQmp *mock)
{
	mock->close_after_writes = TRUE;
	vmsup_mock_write_next(mock);
}

guint
vmsup_mock_qmp_get_n_received(VmsupMockQmp *mock)
{
	return mock->requests->len;
}

JsonObject *
vmsup_mock_qmp_get_request(VmsupMockQmp *mock, guint index)
{
	g_assert_cmpuint(index, <, mock->requests->len);
	return g_ptr_array_index(mock->requests, index);
}

gboolean
vmsup_mock_qmp_get_request_had_sentinel(VmsupMockQmp *mock, guint index)
{
	g_assert_cmpuint(index, <, mock->sentinels->len);
	return g_array_index(mock->sentinels, gboolean, index);
}

static gboolean
vmsup_mock_hung_up(gpointer user_data)
{
	VmsupMockQmp *mock = user_data;
	return mock->hung_up;
}

void
vmsup_mock_qmp_wait_hangup(VmsupMockQmp *mock, guint timeout_s)
{
	vmsup_test_wait_until(vmsup_mock_hung_up, mock, timeout_s);
}

typedef struct {
	VmsupMockQmp *mock;
	guint n;
} VmsupMockWaitReceived;

static gboolean
vmsup_mock_received_enough(gpointer user_data)
{
	VmsupMockWaitReceived *wait = user_data;
	return wait->mock->requests->len >= wait->n;
}

void
vmsup_mock_qmp_wait_received(VmsupMockQmp *mock, guint n, guint timeout_s)
{
	VmsupMockWaitReceived wait = {mock, n};
	vmsup_test_wait_until(vmsup_mock_received_enough, &wait, timeout_s);
}
