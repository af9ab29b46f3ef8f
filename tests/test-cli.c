/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The vmsup CLI: its formatting helpers and JSON-RPC client in-process (the
 * client against a scripted daemon), then the built binary against a real
 * vmsupd (--no-dbus, private dirs): exit codes, --json, progress, Ctrl-C
 * during create, translations and shell completion.
 */

#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "vmsup-cli-format.h"
#include "vmsup-cli-progress.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-jsonrpc-client.h"
#include "vmsup-jsonrpc-server.h"
#include "vmsup-test-util.h"

#define TIMEOUT_S 60

/* the exit codes vmsup(1) documents */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 2,
	EXIT_NOT_FOUND = 3,
	EXIT_ALREADY_EXISTS = 4,
	EXIT_INVALID_ARGUMENT = 5,
	EXIT_BUSY = 6,
	EXIT_FAILED_PRECONDITION = 7,
	EXIT_CANCELLED = 8,
	EXIT_NO_DAEMON = 10,
};

/* the CLI binary */

typedef struct {
	gint status;
	gchar *out;
	gchar *err;
} CliRun;

static void
cli_run_clear(CliRun *run)
{
	g_clear_pointer(&run->out, g_free);
	g_clear_pointer(&run->err, g_free);
}

static GSubprocessLauncher *
cli_launcher(const gchar *socket_path, gboolean german, GSubprocessFlags flags)
{
	GSubprocessLauncher *launcher = g_subprocess_launcher_new(flags);

	if (socket_path != NULL)
		g_subprocess_launcher_setenv(launcher, "VMSUP_SOCKET", socket_path, TRUE);
	else
		g_subprocess_launcher_unsetenv(launcher, "VMSUP_SOCKET");
	g_subprocess_launcher_unsetenv(launcher, "LC_ALL");
	g_subprocess_launcher_unsetenv(launcher, "LC_MESSAGES");
	g_subprocess_launcher_setenv(launcher, "LANG", "C.UTF-8", TRUE);
	if (german) {
		g_autofree gchar *localedir = vmsup_test_build_path("po", NULL);
		g_subprocess_launcher_setenv(launcher, "LANGUAGE", "de", TRUE);
		g_subprocess_launcher_setenv(launcher, "VMSUP_LOCALEDIR", localedir, TRUE);
	} else {
		g_subprocess_launcher_unsetenv(launcher, "LANGUAGE");
	}
	return launcher;
}

static GSubprocess *
cli_spawn(GSubprocessLauncher *launcher, const gchar *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	GSubprocess *proc;

	g_ptr_array_add(argv, vmsup_test_build_path("src", "cli", "vmsup", NULL));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, g_strdup(args[i]));
	g_ptr_array_add(argv, NULL);
	proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	return proc;
}

/* @async: the main context runs meanwhile (a daemon of this test's own answers) */
static void
cli_run_full(GSubprocessLauncher *launcher, const gchar *const *args, gboolean async, CliRun *run)
{
	g_autoptr(GSubprocess) proc = cli_spawn(launcher, args);
	g_autoptr(GError) error = NULL;

	if (async) {
		GAsyncResult *slot = NULL;
		g_autoptr(GAsyncResult) res = NULL;

		g_subprocess_communicate_utf8_async(proc,
						    NULL,
						    NULL,
						    vmsup_test_store_result_cb,
						    &slot);
		res = vmsup_test_wait_result(&slot, TIMEOUT_S);
		g_subprocess_communicate_utf8_finish(proc, res, &run->out, &run->err, &error);
	} else {
		g_subprocess_communicate_utf8(proc, NULL, NULL, &run->out, &run->err, &error);
	}
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(proc));
	run->status = g_subprocess_get_exit_status(proc);
	g_test_message("vmsup %s -> %d\n--- stdout\n%s--- stderr\n%s",
		       args[0] != NULL ? args[0] : "",
		       run->status,
		       run->out,
		       run->err);
}

static void
cli_run_with(GSubprocessLauncher *launcher, const gchar *const *args, CliRun *run)
{
	cli_run_full(launcher, args, FALSE, run);
}

#define CLI_RUN_FLAGS (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE)

static void
cli_runv(const gchar *socket_path, gboolean german, const gchar *const *args, CliRun *run)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    cli_launcher(socket_path, german, CLI_RUN_FLAGS | G_SUBPROCESS_FLAGS_STDIN_INHERIT);
	cli_run_with(launcher, args, run);
}

#define cli_run(socket, run, ...)                                                                  \
	G_STMT_START                                                                               \
	{                                                                                          \
		const gchar *args_[] = {__VA_ARGS__, NULL};                                        \
		cli_runv((socket), FALSE, args_, (run));                                           \
	}                                                                                          \
	G_STMT_END

static void
assert_contains(const gchar *haystack, const gchar *needle)
{
	if (strstr(haystack, needle) == NULL)
		g_error("'%s' not found in:\n%s", needle, haystack);
}

/* formatting helpers, in-process */

static void
test_format_table(void)
{
	g_autoptr(VmsupCliTable) table = vmsup_cli_table_new("NAME", "ZUSTÄNDE", "X", NULL);
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;
	const gchar *row1[] = {"a", "läuft", "1"};
	const gchar *row2[] = {"longer-name", NULL, "22"};
	const gchar *row3[] = {"日本", "x", "3"};

	vmsup_cli_table_add_row(table, row1);
	vmsup_cli_table_add_row(table, row2);
	vmsup_cli_table_add_row(table, row3);
	g_assert_cmpuint(vmsup_cli_table_get_n_rows(table), ==, 3);
	text = vmsup_cli_table_to_string(table);
	lines = g_strsplit(text, "\n", -1);
	g_assert_cmpstr(lines[0], ==, "NAME         ZUSTÄNDE  X");
	g_assert_cmpstr(lines[1], ==, "a            läuft     1");
	g_assert_cmpstr(lines[2], ==, "longer-name  -         22");
	/* wide characters take two columns each */
	g_assert_cmpstr(lines[3], ==, "日本         x         3");
	g_assert_cmpstr(lines[4], ==, "");
	g_assert_cmpuint(vmsup_cli_text_width("日本"), ==, 4);
	g_assert_cmpuint(vmsup_cli_text_width("Größe"), ==, 5);
}

static void
test_format_values(void)
{
	g_autoptr(JsonObject) obj =
	    vmsup_json_parse_object("{\"b\":true,\"a\":[1,\"x\"],\"name\":\"web1\",\"n\":null,"
				    "\"o\":{\"k\":1},\"d\":1.5}",
				    -1,
				    NULL);
	const VmsupCliField labels[] = {
	    {"name", "Name", VMSUP_CLI_VALUE_PLAIN},
	    {"missing", "Missing", VMSUP_CLI_VALUE_PLAIN},
	    {"d", "Memory", VMSUP_CLI_VALUE_MIB},
	    {NULL, NULL, 0},
	};
	g_autofree gchar *fields = vmsup_cli_format_fields(obj, labels);
	g_autofree gchar *bytes = vmsup_cli_format_bytes(1536);
	g_autofree gchar *neg = vmsup_cli_format_bytes(-1);
	g_autofree gchar *d1 = vmsup_cli_format_duration(42);
	g_autofree gchar *d2 = vmsup_cli_format_duration(3 * 3600 + 120);
	g_autofree gchar *d3 = vmsup_cli_format_duration(2 * 86400 + 3600 + 60);

	g_assert_cmpstr(fields,
			==,
			"Name:   web1\n"
			"Memory: 1 MiB\n"
			"a:      1, x\n"
			"b:      yes\n"
			"n:      -\n"
			"o:      {\"k\":1}\n");
	g_assert_cmpstr(vmsup_cli_format_state("running"), ==, "running");
	g_assert_cmpstr(vmsup_cli_format_state("new-state"), ==, "new-state");
	{
		g_autoptr(JsonNode) fraction = vmsup_json_parse("0.996", -1, NULL);
		g_autoptr(JsonNode) cgroup =
		    vmsup_json_parse("{\"mode\":\"v2\",\"path\":\"/sys/fs/cgroup/x\"}", -1, NULL);
		g_autoptr(JsonNode) none = vmsup_json_parse("{\"mode\":\"none\"}", -1, NULL);
		g_autofree gchar *percent =
		    vmsup_cli_format_value_as(fraction, VMSUP_CLI_VALUE_FRACTION);
		g_autofree gchar *where = vmsup_cli_format_value_as(cgroup, VMSUP_CLI_VALUE_CGROUP);
		g_autofree gchar *mode = vmsup_cli_format_value_as(none, VMSUP_CLI_VALUE_CGROUP);
		g_assert_cmpstr(percent, ==, "100%");
		g_assert_cmpstr(where, ==, "v2: /sys/fs/cgroup/x");
		g_assert_cmpstr(mode, ==, "none");
	}
	/* g_format_size() keeps number and unit together with a no-break space */
	g_assert_cmpstr(bytes, ==, "1.5\u00a0KiB");
	g_assert_cmpstr(neg, ==, "-");
	g_assert_cmpstr(d1, ==, "42s");
	g_assert_cmpstr(d2, ==, "3h 2m");
	g_assert_cmpstr(d3, ==, "2d 1h 1m");
}

/* -o picks and orders columns, --no-headers drops the header line and its widths */
static void
test_format_columns(void)
{
	static const VmsupCliColumn columns[] = {
	    {"name", "NAME"},
	    {"state", "STATE"},
	    {"pid", "PID"},
	    {NULL, NULL},
	};
	const gchar *row[] = {"web1", "running", "42"};
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupCliTable) all = vmsup_cli_table_new_columns(columns, NULL, &error);
	g_autoptr(VmsupCliTable) picked = vmsup_cli_table_new_columns(columns, "pid, NAME", &error);
	g_autofree gchar *all_text = NULL;
	g_autofree gchar *picked_text = NULL;
	g_autofree gchar *bare_text = NULL;

	g_assert_no_error(error);
	vmsup_cli_table_add_row(all, row);
	vmsup_cli_table_add_row(picked, row);
	all_text = vmsup_cli_table_to_string(all);
	g_assert_cmpstr(all_text, ==, "NAME  STATE    PID\nweb1  running  42\n");
	picked_text = vmsup_cli_table_to_string(picked);
	g_assert_cmpstr(picked_text, ==, "PID  NAME\n42   web1\n");
	g_assert_cmpuint(vmsup_cli_table_get_source(picked, 0), ==, 2);
	vmsup_cli_table_set_headers(picked, FALSE);
	bare_text = vmsup_cli_table_to_string(picked);
	g_assert_cmpstr(bare_text, ==, "42  web1\n");

	g_assert_null(vmsup_cli_table_new_columns(columns, "name,nmae", &error));
	g_assert_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
	assert_contains(error->message, "'nmae'");
	assert_contains(error->message, "name, state, pid");
	g_clear_error(&error);
	g_assert_null(vmsup_cli_table_new_columns(columns, "", &error));
	g_assert_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
}

static void
test_progress_bar(void)
{
	g_autofree gchar *zero = vmsup_cli_progress_render_bar(0, 10);
	g_autofree gchar *half = vmsup_cli_progress_render_bar(0.5, 10);
	g_autofree gchar *full = vmsup_cli_progress_render_bar(1, 10);
	g_autofree gchar *over = vmsup_cli_progress_render_bar(7, 10);
	g_autofree gchar *nan = vmsup_cli_progress_render_bar(0.0 / 0.0, 10);

	g_assert_cmpstr(zero, ==, "[..........]   0%");
	g_assert_cmpstr(half, ==, "[#####.....]  50%");
	g_assert_cmpstr(full, ==, "[##########] 100%");
	g_assert_cmpstr(over, ==, full);
	g_assert_cmpstr(nan, ==, zero);
}

static gchar *
progress_output(gboolean interactive)
{
	gchar *buf = NULL;
	gsize size = 0;
	FILE *out = open_memstream(&buf, &size);
	VmsupCliProgress *progress = vmsup_cli_progress_new(out, interactive);

	vmsup_cli_progress_update(progress, "preflight", 0.1);
	vmsup_cli_progress_update(progress, "preflight", 0.2);
	vmsup_cli_progress_update(progress, "provision", 0.25);
	vmsup_cli_progress_update(progress, "start", 0.75);
	vmsup_cli_progress_finish(progress, "done!");
	vmsup_cli_progress_free(progress);
	fclose(out);
	return buf;
}

static void
test_progress_modes(void)
{
	g_autofree gchar *plain = progress_output(FALSE);
	g_autofree gchar *tty = progress_output(TRUE);

	/* one line per stage for logs; a bar redrawn in place on a terminal */
	g_assert_cmpstr(plain,
			==,
			"checking the host (10%)\n"
			"preparing the disk (25%)\n"
			"starting (75%)\n"
			"done!\n");
	g_assert_null(strchr(plain, '\r'));
	g_assert_nonnull(strstr(tty, "\r\033[K[###"));
	g_assert_nonnull(strstr(tty, " 20%"));
	g_assert_true(g_str_has_suffix(tty, "\ndone!\n"));
}

/* the JSON-RPC client against a scripted daemon served by this test's main context */

typedef struct {
	gchar *dir;
	gchar *socket_path;
	gint listen_fd;
	gint conn_fd;
	guint watch_id;
	GString *request; /* what the client sent */
	GString *reply;   /* sent once the first request line is in */
	gsize piece;      /* bytes per write */
	gsize close_at;   /* hang up after this many bytes of the reply */
	gsize sent;
} FakeDaemon;

static gboolean
fake_daemon_write_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	FakeDaemon *fake = user_data;
	gsize end = MIN(fake->reply->len, fake->close_at);
	gssize n = send(fd,
			fake->reply->str + fake->sent,
			MIN(fake->piece, end - fake->sent),
			MSG_NOSIGNAL);

	if (n < 0 && errno == EAGAIN)
		return G_SOURCE_CONTINUE;
	g_assert_cmpint(n, >, 0);
	fake->sent += n;
	if (fake->sent < end)
		return G_SOURCE_CONTINUE;
	if (end < fake->reply->len) {
		close(fake->conn_fd);
		fake->conn_fd = -1;
	}
	fake->watch_id = 0;
	return G_SOURCE_REMOVE;
}

static gboolean
fake_daemon_read_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	FakeDaemon *fake = user_data;
	gchar buf[4096];
	gssize n = read(fd, buf, sizeof(buf));

	if (n < 0 && errno == EAGAIN)
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		fake->watch_id = 0;
		return G_SOURCE_REMOVE;
	}
	g_string_append_len(fake->request, buf, n);
	if (strchr(fake->request->str, '\n') == NULL)
		return G_SOURCE_CONTINUE;
	fake->watch_id = g_unix_fd_add(fd, G_IO_OUT, fake_daemon_write_cb, fake);
	return G_SOURCE_REMOVE;
}

static gboolean
fake_daemon_accept_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	FakeDaemon *fake = user_data;

	fake->conn_fd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	g_assert_cmpint(fake->conn_fd, >=, 0);
	fake->watch_id = g_unix_fd_add(fake->conn_fd, G_IO_IN, fake_daemon_read_cb, fake);
	return G_SOURCE_REMOVE;
}

/* answers the first request with @reply, @piece bytes per write, hanging up after @close_at */
static FakeDaemon *
fake_daemon_new(const gchar *reply, gsize piece, gsize close_at)
{
	FakeDaemon *fake = g_new0(FakeDaemon, 1);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	fake->dir = vmsup_test_make_tmpdir();
	fake->socket_path = g_build_filename(fake->dir, "s.sock", NULL);
	fake->request = g_string_new(NULL);
	fake->reply = g_string_new(reply);
	fake->piece = piece;
	fake->close_at = close_at;
	fake->conn_fd = -1;
	g_assert_cmpuint(strlen(fake->socket_path), <, sizeof(addr.sun_path));
	strcpy(addr.sun_path, fake->socket_path);
	fake->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	g_assert_cmpint(fake->listen_fd, >=, 0);
	g_assert_cmpint(bind(fake->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	g_assert_cmpint(listen(fake->listen_fd, 4), ==, 0);
	fake->watch_id = g_unix_fd_add(fake->listen_fd, G_IO_IN, fake_daemon_accept_cb, fake);
	return fake;
}

static void
fake_daemon_free(FakeDaemon *fake)
{
	if (fake->watch_id != 0)
		g_source_remove(fake->watch_id);
	if (fake->conn_fd >= 0)
		close(fake->conn_fd);
	close(fake->listen_fd);
	vmsup_test_rm_rf(fake->dir);
	g_string_free(fake->request, TRUE);
	g_string_free(fake->reply, TRUE);
	g_free(fake->socket_path);
	g_free(fake->dir);
	g_free(fake);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FakeDaemon, fake_daemon_free)

static VmsupJsonrpcClient *
fake_daemon_client(FakeDaemon *fake)
{
	g_autoptr(VmsupJsonrpcClient) client = vmsup_jsonrpc_client_new();
	g_autoptr(GError) error = NULL;

	g_assert_true(vmsup_jsonrpc_client_connect(client, fake->socket_path, &error));
	g_assert_no_error(error);
	return g_steal_pointer(&client);
}

/* a list of @n VMs with a notification ahead of it, about 100 bytes per VM */
static gchar *
huge_list_reply(guint n)
{
	GString *reply = g_string_new("{\"jsonrpc\":\"2.0\",\"method\":\"event.vm-changed\","
				      "\"params\":{\"name\":\"early\"}}\n"
				      "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"vms\":[");

	for (guint i = 0; i < n; i++)
		g_string_append_printf(reply,
				       "%s{\"name\":\"vm%06u\",\"state\":\"running\","
				       "\"reason\":\"caf\\u00e9 \\\"quoted\\\" \\\\ text\"}",
				       i > 0 ? "," : "",
				       i);
	g_string_append(reply, "]}}\n");
	return g_string_free(reply, FALSE);
}

static void
test_client_huge_answer(void)
{
	const guint n = 20000;
	g_autofree gchar *reply = huge_list_reply(n);
	g_autoptr(FakeDaemon) fake = fake_daemon_new(reply, 4096, G_MAXSIZE);
	g_autoptr(VmsupJsonrpcClient) client = fake_daemon_client(fake);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonObject) early = NULL;
	JsonArray *vms;

	g_assert_cmpuint(strlen(reply), >, 1024 * 1024);
	result = vmsup_jsonrpc_client_call_object(client, "vm.list", NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(result);
	g_assert_true(g_str_has_prefix(fake->request->str, "{"));
	assert_contains(fake->request->str, "\"method\":\"vm.list\"");
	g_assert_true(g_str_has_suffix(fake->request->str, "}\n"));
	vms = json_object_get_array_member(result, "vms");
	g_assert_cmpuint(json_array_get_length(vms), ==, n);
	g_assert_cmpstr(
	    vmsup_json_object_get_string(json_array_get_object_element(vms, n - 1), "name", NULL),
	    ==,
	    "vm019999");
	g_assert_cmpstr(
	    vmsup_json_object_get_string(json_array_get_object_element(vms, 7), "reason", NULL),
	    ==,
	    "café \"quoted\" \\ text");
	/* the notification that came first waits for whoever asks */
	early = vmsup_jsonrpc_client_next_notification(client, 0, &error);
	g_assert_no_error(error);
	g_assert_nonnull(early);
	g_assert_cmpstr(vmsup_json_object_get_string(early, "method", NULL),
			==,
			"event.vm-changed");
}

/* what a daemon that knows vm.list's fields sends for those of 'vmsup list' */
#define LIST_TABLE_REPLY                                                                           \
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"vms\":["                                      \
	"{\"name\":\"db\",\"cpus\":1,\"memory_mib\":128,"                                          \
	"\"state\":\"defined\",\"accel\":\"tcg\"},"                                                \
	"{\"name\":\"web1\",\"cpus\":2,\"memory_mib\":256,"                                        \
	"\"state\":\"running\",\"accel\":\"tcg\",\"pid\":4242}]}}\n"
/* whole VMs, as a daemon without fields (or any daemon for --json) sends them */
#define LIST_WHOLE_RESULT                                                                          \
	"{\"vms\":["                                                                               \
	"{\"name\":\"db\",\"cpus\":1,\"memory_mib\":128,\"auto_stop\":true,"                       \
	"\"created\":\"2024-01-01T00:00:00Z\",\"state\":\"defined\",\"accel\":\"tcg\"},"           \
	"{\"name\":\"web1\",\"cpus\":2,\"memory_mib\":256,\"auto_stop\":true,"                     \
	"\"created\":\"2024-01-01T00:00:00Z\",\"state\":\"running\",\"accel\":\"tcg\","            \
	"\"pid\":4242,\"started_at\":\"2024-01-01T00:00:01Z\",\"idle_s\":3}]}"

/* the "fields" of the first request @fake got, joined by ","; NULL without */
static gchar *
fake_daemon_requested_fields(FakeDaemon *fake)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *first = g_strndup(fake->request->str, strcspn(fake->request->str, "\n"));
	g_autoptr(JsonObject) request = vmsup_json_parse_object(first, -1, &error);
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	g_auto(GStrv) fields = NULL;
	JsonObject *params;
	JsonArray *array;

	g_assert_no_error(error);
	g_assert_cmpstr(vmsup_json_object_get_string(request, "method", NULL), ==, "vm.list");
	params = json_object_has_member(request, "params")
		     ? json_object_get_object_member(request, "params")
		     : NULL;
	if (params == NULL || !json_object_has_member(params, "fields"))
		return NULL;
	array = json_object_get_array_member(params, "fields");
	for (guint i = 0; i < json_array_get_length(array); i++)
		g_strv_builder_add(builder, json_array_get_string_element(array, i));
	fields = g_strv_builder_end(builder);
	return g_strjoinv(",", fields);
}

static void
cli_run_fake(FakeDaemon *fake, const gchar *const *args, CliRun *run)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    cli_launcher(fake->socket_path, FALSE, CLI_RUN_FLAGS);
	cli_run_full(launcher, args, TRUE, run);
}

/* 'vmsup list' asks for the members it shows, --json for whole VMs */
static void
test_list_fields(void)
{
	const struct {
		const gchar *args[3];
		const gchar *fields; /* NULL: none asked for */
		const gchar *reply;
	} cases[] = {
	    {{"list", NULL}, "name,state,cpus,memory_mib,accel,pid", LIST_TABLE_REPLY},
	    {{"list", "--names", NULL},
	     "name",
	     "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"vms\":[{\"name\":\"db\"},"
	     "{\"name\":\"web1\"}]}}\n"},
	    {{"list", "--json", NULL},
	     NULL,
	     "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":" LIST_WHOLE_RESULT "}\n"},
	    {{"--json", "list", "--names"},
	     NULL,
	     "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":" LIST_WHOLE_RESULT "}\n"},
	};
	g_autofree gchar *table = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(FakeDaemon) fake = fake_daemon_new(cases[i].reply, G_MAXSIZE, G_MAXSIZE);
		g_autofree gchar *fields = NULL;
		CliRun run = {0};

		cli_run_fake(fake, cases[i].args, &run);
		g_assert_cmpint(run.status, ==, EXIT_OK);
		g_assert_cmpstr(run.err, ==, "");
		fields = fake_daemon_requested_fields(fake);
		g_assert_cmpstr(fields, ==, cases[i].fields);
		if (i == 0) {
			table = g_strdup(run.out);
			g_assert_cmpstr(table,
					==,
					"NAME  STATE    CPUS  MEMORY   ACCEL  PID\n"
					"db    defined  1     128 MiB  tcg    -\n"
					"web1  running  2     256 MiB  tcg    4242\n");
		} else if (i == 1) {
			g_assert_cmpstr(run.out, ==, "db\nweb1\n");
		} else {
			/* --json prints the whole VMs as they came */
			g_autoptr(JsonNode) printed = vmsup_json_parse(run.out, -1, NULL);
			g_autoptr(JsonNode) sent = vmsup_json_parse(LIST_WHOLE_RESULT, -1, NULL);
			g_assert_nonnull(printed);
			g_assert_true(json_node_equal(printed, sent));
		}
		cli_run_clear(&run);
	}

	/* a vmsupd older than fields refuses them: the same table from whole VMs */
	{
		g_autoptr(FakeDaemon) fake = fake_daemon_new(
		    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":"
		    "\"Unknown parameter 'fields' for vm.list\",\"data\":{\"kind\":"
		    "\"invalid-params\"}}}\n"
		    "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":" LIST_WHOLE_RESULT "}\n",
		    G_MAXSIZE,
		    G_MAXSIZE);
		const gchar *const args[] = {"list", NULL};
		g_autofree gchar *fields = NULL;
		gchar buf[4096];
		gssize n;
		CliRun run = {0};

		cli_run_fake(fake, args, &run);
		g_assert_cmpint(run.status, ==, EXIT_OK);
		g_assert_cmpstr(run.err, ==, "");
		g_assert_cmpstr(run.out, ==, table);
		fields = fake_daemon_requested_fields(fake);
		g_assert_cmpstr(fields, ==, "name,state,cpus,memory_mib,accel,pid");
		/* the second request, still unread, asks for whole VMs */
		while ((n = read(fake->conn_fd, buf, sizeof(buf))) > 0)
			g_string_append_len(fake->request, buf, n);
		g_assert_nonnull(strstr(fake->request->str, "\"id\":2"));
		g_assert_null(strstr(strstr(fake->request->str, "\"id\":2"), "fields"));
		cli_run_clear(&run);
	}
}

static void
test_client_closed_mid_answer(void)
{
	g_autofree gchar *reply = huge_list_reply(1000);
	g_autoptr(FakeDaemon) fake = fake_daemon_new(reply, 1000, strlen(reply) / 2);
	g_autoptr(VmsupJsonrpcClient) client = fake_daemon_client(fake);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) result = vmsup_jsonrpc_client_call(client, "vm.list", NULL, &error);

	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED);
	g_assert_cmpstr(error->message, ==, "vmsupd closed the connection");
	g_assert_cmpstr(vmsup_error_to_kind(error->code), ==, "internal");
	g_assert_false(vmsup_error_is_wire(error));
}

static void
test_client_answers(void)
{
	/* each: what vmsupd says, and the error (domain, code, kind) the call ends with */
	const struct {
		const gchar *reply;
		GQuark domain;
		gint code;
		const gchar *kind;
	} cases[] = {
	    {"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n"
	     "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"ok\":true}}\n",
	     0,
	     0,
	     NULL},
	    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"VM 'x' not "
	     "found\",\"data\":{\"kind\":\"not-found\"}}}\n",
	     VMSUP_ERROR,
	     VMSUP_ERROR_NOT_FOUND,
	     "not-found"},
	    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32601,\"message\":\"no\"}}\n",
	     VMSUP_ERROR,
	     VMSUP_ERROR_METHOD_NOT_FOUND,
	     "method-not-found"},
	    {"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"bad\"}}\n",
	     VMSUP_ERROR,
	     VMSUP_ERROR_INVALID_REQUEST,
	     "invalid-request"},
	    {"{\"jsonrpc\":\"2.0\",\"id\":1}\n", VMSUP_ERROR, VMSUP_ERROR_PROTOCOL, "internal"},
	    {"this is not JSON\n", VMSUP_ERROR, VMSUP_ERROR_PROTOCOL, "internal"},
	    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[1]}\n",
	     VMSUP_ERROR,
	     VMSUP_ERROR_PROTOCOL,
	     "internal"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		/* the whole script in one write: several lines arrive in one read */
		g_autoptr(FakeDaemon) fake = fake_daemon_new(cases[i].reply, G_MAXSIZE, G_MAXSIZE);
		g_autoptr(VmsupJsonrpcClient) client = fake_daemon_client(fake);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    vmsup_jsonrpc_client_call_object(client, "vm.get", NULL, &error);

		if (cases[i].kind == NULL) {
			g_assert_no_error(error);
			g_assert_true(vmsup_json_object_get_bool(result, "ok", FALSE));
			continue;
		}
		g_assert_null(result);
		g_assert_error(error, cases[i].domain, cases[i].code);
		g_assert_cmpstr(vmsup_error_to_kind(error->code), ==, cases[i].kind);
		g_assert_true(vmsup_error_is_wire(error) ==
			      (cases[i].code != VMSUP_ERROR_PROTOCOL));
	}
}

static gboolean
cancel_client_cb(gpointer user_data)
{
	vmsup_jsonrpc_client_cancel(user_data);
	return G_SOURCE_REMOVE;
}

static void
test_client_wait(void)
{
	g_autoptr(FakeDaemon) fake =
	    fake_daemon_new("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n", G_MAXSIZE, G_MAXSIZE);
	g_autoptr(VmsupJsonrpcClient) client = fake_daemon_client(fake);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonObject) none = NULL;
	gint64 start;

	/* a source dispatched during the wait cancels it */
	g_timeout_add(20, cancel_client_cb, client);
	none = vmsup_jsonrpc_client_next_notification(client, -1, &error);
	g_assert_null(none);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INTERRUPTED);
	g_assert_cmpstr(vmsup_error_to_kind(error->code), ==, "cancelled");
	g_clear_error(&error);

	/* calls run to their end however often someone cancels */
	vmsup_jsonrpc_client_cancel(client);
	result = vmsup_jsonrpc_client_call_object(client, "vm.list", NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(result);

	/* the cancel nobody saw yet ends the next wait at once, then waits time out quietly */
	none = vmsup_jsonrpc_client_next_notification(client, -1, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INTERRUPTED);
	g_clear_error(&error);
	start = g_get_monotonic_time();
	none = vmsup_jsonrpc_client_next_notification(client, 50, &error);
	g_assert_no_error(error);
	g_assert_null(none);
	/* GLib's timers fire on whole milliseconds of a cached clock: roughly the 50 ms */
	g_assert_cmpint(g_get_monotonic_time() - start, >=, 40 * 1000);
}

static void
test_client_connect(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *missing = g_build_filename(dir, "missing.sock", NULL);
	g_autofree gchar *plain = g_build_filename(dir, "plain-file", NULL);
	g_autofree gchar *long_name = g_strnfill(200, 'x');
	g_autofree gchar *too_long = g_build_filename(dir, long_name, NULL);
	const gchar *paths[] = {missing, plain, too_long};

	g_assert_true(g_file_set_contents(plain, "", 0, NULL));
	for (guint i = 0; i < G_N_ELEMENTS(paths); i++) {
		g_autoptr(VmsupJsonrpcClient) client = vmsup_jsonrpc_client_new();
		g_autoptr(GError) error = NULL;

		g_assert_false(vmsup_jsonrpc_client_connect(client, paths[i], &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CONNECT);
		g_assert_true(g_str_has_prefix(error->message, "Could not connect: "));
		g_assert_cmpstr(vmsup_error_to_kind(error->code), ==, "connect");
	}
	vmsup_test_rm_rf(dir);
}

/* without a daemon */

static void
test_usage(void)
{
	CliRun run = {0};
	const gchar *verbs[] = {"create",
				"start",
				"stop",
				"delete",
				"set",
				"list",
				"get",
				"stats",
				"health",
				"ping",
				"ports",
				"exec",
				"info",
				"events"};

	{
		const gchar *none[] = {NULL};
		cli_runv("/nonexistent/s.sock", FALSE, none, &run);
	}
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	assert_contains(run.err, "Commands:");
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "frobnicate");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	assert_contains(run.err, "unknown command 'frobnicate'");
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "get");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	assert_contains(run.err, "Missing the VM name");
	assert_contains(run.err, "vmsup get --help");
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "get", "a", "b");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "create", "a", "--cpus", "many");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "create", "a", "--forward", "80,http");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	assert_contains(run.err, "Invalid port 'http'");
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "set", "a");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	assert_contains(run.err, "Nothing to change");
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "ops", "get", "seven");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "ops");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	assert_contains(run.err, "cancel");
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "exec", "a");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "--version");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, PACKAGE_VERSION);
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "--help");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	for (guint i = 0; i < G_N_ELEMENTS(verbs); i++)
		assert_contains(run.out, verbs[i]);
	cli_run_clear(&run);

	for (guint i = 0; i < G_N_ELEMENTS(verbs); i++) {
		g_autofree gchar *usage = g_strdup_printf("vmsup %s [OPTION", verbs[i]);
		cli_run("/nonexistent/s.sock", &run, verbs[i], "--help");
		g_assert_cmpint(run.status, ==, EXIT_OK);
		assert_contains(run.out, usage);
		assert_contains(run.out, "--json");
		cli_run_clear(&run);
	}
	cli_run("/nonexistent/s.sock", &run, "create", "--help");
	assert_contains(run.out, "--no-wait");
	cli_run_clear(&run);
	/* "help VERB" is "VERB --help", also for sub-commands */
	{
		const gchar *pairs[][2][4] = {
		    {{"help", "create", NULL}, {"create", "--help", NULL}},
		    {{"help", "ops", "list", NULL}, {"ops", "list", "--help", NULL}},
		    {{"help", "ops", NULL}, {"ops", "--help", NULL}},
		};
		for (guint i = 0; i < G_N_ELEMENTS(pairs); i++) {
			CliRun direct = {0};
			cli_runv("/nonexistent/s.sock", FALSE, pairs[i][0], &run);
			cli_runv("/nonexistent/s.sock", FALSE, pairs[i][1], &direct);
			g_assert_cmpint(run.status, ==, EXIT_OK);
			g_assert_cmpstr(run.out, ==, direct.out);
			g_assert_cmpstr(run.err, ==, "");
			cli_run_clear(&direct);
			cli_run_clear(&run);
		}
	}
	cli_run("/nonexistent/s.sock", &run, "help", "create");
	assert_contains(run.out, "vmsup create [OPTION");
	assert_contains(run.out, "--no-wait");
	cli_run_clear(&run);
	cli_run("/nonexistent/s.sock", &run, "help");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "Commands:");
	cli_run_clear(&run);
	cli_run("/nonexistent/s.sock", &run, "help", "frobnicate");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	g_assert_cmpstr(run.out, ==, "");
	assert_contains(run.err, "unknown command 'frobnicate'");
	assert_contains(run.err, "Commands:");
	cli_run_clear(&run);
	cli_run("/nonexistent/s.sock", &run, "help", "ops", "frobnicate");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	assert_contains(run.err, "unknown command 'frobnicate'");
	cli_run_clear(&run);

	/* a bad column is found before vmsupd is asked: usage, not "cannot connect" */
	cli_run("/nonexistent/s.sock", &run, "list", "-o", "name,size");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	assert_contains(run.err, "Unknown column 'size'");
	cli_run_clear(&run);

	cli_run("/nonexistent/s.sock", &run, "workspace", "create", "--help");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "vmsup workspace create");
	assert_contains(run.out, "--path");
	cli_run_clear(&run);
}

static void
test_no_daemon(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *path = g_build_filename(dir, "nobody-here.sock", NULL);
	CliRun run = {0};

	cli_run(NULL, &run, "--socket", path, "list");
	g_assert_cmpint(run.status, ==, EXIT_NO_DAEMON);
	{
		g_autofree gchar *command = vmsup_jsonrpc_client_start_command(FALSE);
		g_autofree gchar *expected =
		    g_strdup_printf("cannot connect to vmsupd at %s: is it running? start it with "
				    "'%s'",
				    path,
				    command);
		assert_contains(run.err, expected);
	}
	cli_run_clear(&run);

	/* $VMSUP_SOCKET is the fallback, options after the verb work too */
	cli_run(path, &run, "get", "web1", "--json");
	g_assert_cmpint(run.status, ==, EXIT_NO_DAEMON);
	assert_contains(run.err, path);
	cli_run_clear(&run);

	cli_run(NULL, &run, "--system", "info");
	g_assert_cmpint(run.status, ==, EXIT_NO_DAEMON);
	assert_contains(run.err, "/run/vmsup/vmsupd.sock");
	{
		g_autofree gchar *command = vmsup_jsonrpc_client_start_command(TRUE);
		g_autofree gchar *expected = g_strdup_printf("start it with '%s'", command);
		assert_contains(run.err, expected);
	}
	cli_run_clear(&run);
	vmsup_test_rm_rf(dir);
}

/* exec --stdin reads all of stdin before it talks to vmsupd */
static void
test_exec_stdin(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *input = g_build_filename(dir, "input", NULL);
	g_autofree gchar *path = g_build_filename(dir, "nobody-here.sock", NULL);
	const gchar *args[] = {"exec", "--stdin", "web1", "--", "cat", NULL};
	const gchar *inputs[] = {"caf\xc3\xa9\n", "\xff\xfe not text"};
	const gint expected[] = {EXIT_NO_DAEMON, EXIT_USAGE};

	for (guint i = 0; i < G_N_ELEMENTS(inputs); i++) {
		g_autoptr(GSubprocessLauncher) launcher = cli_launcher(path, FALSE, CLI_RUN_FLAGS);
		CliRun run = {0};

		g_assert_true(g_file_set_contents(input, inputs[i], -1, NULL));
		g_subprocess_launcher_set_stdin_file_path(launcher, input);
		cli_run_with(launcher, args, &run);
		g_assert_cmpint(run.status, ==, expected[i]);
		if (expected[i] == EXIT_USAGE)
			assert_contains(run.err, "Standard input is not UTF-8 text");
		cli_run_clear(&run);
	}
	vmsup_test_rm_rf(dir);
}

static void
test_german(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *path = g_build_filename(dir, "nobody-here.sock", NULL);
	const gchar *list[] = {"list", NULL};
	const gchar *help[] = {"stop", "--help", NULL};
	CliRun run = {0};

	cli_runv(path, TRUE, list, &run);
	g_assert_cmpint(run.status, ==, EXIT_NO_DAEMON);
	assert_contains(run.err, "Keine Verbindung zu vmsupd unter");
	assert_contains(run.err, "Starten Sie ihn mit '");
	cli_run_clear(&run);

	cli_runv(path, TRUE, help, &run);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "Eine VM anhalten");
	assert_contains(run.out, "SEKUNDEN");
	cli_run_clear(&run);
	vmsup_test_rm_rf(dir);
}

/* against a real daemon */

typedef struct {
	gboolean fake_qemu; /* a QEMU that never answers: operations stay in "start" */
} FixtureOptions;

typedef struct {
	gchar *dir;
	gchar *socket_path;
	gchar *kernel;
	GSubprocess *daemon;
	GDataInputStream *daemon_err;
	GString *daemon_log;
	gboolean ready;
	gboolean log_done;
	VmsupJsonrpcClient *client;
} Fixture;

static void
daemon_line_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Fixture *f = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *line =
	    g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source),
						      res,
						      NULL,
						      &error);

	if (line == NULL) {
		f->log_done = TRUE;
		return;
	}
	g_string_append_printf(f->daemon_log, "%s\n", line);
	if (strstr(line, " ready on ") != NULL)
		f->ready = TRUE;
	g_data_input_stream_read_line_async(f->daemon_err,
					    G_PRIORITY_DEFAULT,
					    NULL,
					    daemon_line_cb,
					    f);
}

static gboolean
daemon_ready_or_gone(gpointer data)
{
	Fixture *f = data;
	return f->ready || f->log_done;
}

static JsonObject *
fixture_call(Fixture *f, const gchar *method, const gchar *params_json)
{
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(GError) error = NULL;
	JsonObject *result;

	if (params_json != NULL)
		params = vmsup_json_parse_object(params_json, -1, NULL);
	result = vmsup_jsonrpc_client_call_object(f->client, method, params, &error);
	g_assert_no_error(error);
	return result;
}

static void
write_file(const gchar *path, const gchar *contents, gint mode)
{
	g_autoptr(GError) error = NULL;
	g_file_set_contents(path, contents, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(path, mode), ==, 0);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	const FixtureOptions *options = data;
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_autoptr(GString) config_text = g_string_new(NULL);
	g_autoptr(GError) error = NULL;

	f->dir = vmsup_test_make_tmpdir();
	f->socket_path = g_build_filename(f->dir, "s.sock", NULL);
	/* direct kernel boot is only checked for being a readable file until a VM starts */
	f->kernel = g_build_filename(f->dir, "vmlinuz", NULL);
	write_file(f->kernel, "not really a kernel\n", 0644);
	if (options != NULL && options->fake_qemu) {
		g_autofree gchar *qemu = g_build_filename(f->dir, "fake-qemu", NULL);
		write_file(qemu,
			   "#!/bin/sh\n"
			   "if [ \"$1\" = --version ]; then\n"
			   "  echo 'QEMU emulator version 7.2.0'; exit 0\n"
			   "fi\n"
			   "exec sleep 30\n",
			   0755);
		g_string_append_printf(config_text, "QemuBinary=%s\n", qemu);
		/* root's QEMU runs as vmsupd's QEMU user, which must reach the script */
		g_assert_cmpint(g_chmod(f->dir, 0711), ==, 0);
	}

	f->daemon_log = g_string_new(NULL);
	f->daemon =
	    vmsup_test_spawn_vmsupd(launcher, f->dir, f->socket_path, config_text->str, FALSE);
	f->daemon_err = g_data_input_stream_new(g_subprocess_get_stderr_pipe(f->daemon));
	g_data_input_stream_read_line_async(f->daemon_err,
					    G_PRIORITY_DEFAULT,
					    NULL,
					    daemon_line_cb,
					    f);
	vmsup_test_wait_until(daemon_ready_or_gone, f, TIMEOUT_S);
	if (!f->ready)
		g_error("vmsupd did not start:\n%s", f->daemon_log->str);
	f->client = vmsup_jsonrpc_client_new();
	g_assert_true(vmsup_jsonrpc_client_connect(f->client, f->socket_path, &error));
	g_assert_no_error(error);
}

static gboolean
daemon_gone(gpointer data)
{
	Fixture *f = data;
	return f->log_done;
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_autoptr(JsonObject) list = fixture_call(f, "vm.list", NULL);
	JsonArray *vms = json_object_get_array_member(list, "vms");
	g_autoptr(GError) error = NULL;

	/* VMs outlive vmsupd by design: take them down first */
	for (guint i = 0; i < json_array_get_length(vms); i++) {
		JsonObject *vm = json_array_get_object_element(vms, i);
		g_autofree gchar *params =
		    g_strdup_printf("{\"name\":\"%s\",\"force\":true}",
				    vmsup_json_object_get_string(vm, "name", ""));
		g_autoptr(JsonObject) deleted = fixture_call(f, "vm.delete", params);
	}
	g_clear_object(&f->client);
	g_subprocess_send_signal(f->daemon, SIGTERM);
	vmsup_test_wait_until(daemon_gone, f, TIMEOUT_S);
	g_subprocess_wait(f->daemon, NULL, &error);
	g_assert_no_error(error);
	if (!g_subprocess_get_if_exited(f->daemon) || g_subprocess_get_exit_status(f->daemon) != 0)
		g_error("vmsupd did not exit cleanly:\n%s", f->daemon_log->str);
	g_clear_object(&f->daemon_err);
	g_clear_object(&f->daemon);
	g_string_free(f->daemon_log, TRUE);
	vmsup_test_rm_rf(f->dir);
	g_free(f->kernel);
	g_free(f->socket_path);
	g_free(f->dir);
}

static void
create_vm(Fixture *f, const gchar *name)
{
	CliRun run = {0};
	cli_run(f->socket_path, &run, "create", name, "--kernel", f->kernel, "--memory", "128");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	cli_run_clear(&run);
}

static void
test_exit_codes(Fixture *f, gconstpointer data)
{
	CliRun run = {0};
	g_autofree gchar *missing = g_build_filename(f->dir, "no-such-kernel", NULL);

	cli_run(f->socket_path, &run, "get", "nosuch");
	g_assert_cmpint(run.status, ==, EXIT_NOT_FOUND);
	/* the hint first, then the daemon's own words */
	assert_contains(run.err, "vmsup: It does not exist");
	assert_contains(run.err, "\nvmsupd: ");
	assert_contains(run.err, "nosuch");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "get", "Not_Valid");
	g_assert_cmpint(run.status, ==, EXIT_INVALID_ARGUMENT);
	assert_contains(run.err, "vmsup get --help");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "ops", "get", "4242");
	g_assert_cmpint(run.status, ==, EXIT_NOT_FOUND);
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "create", "web1", "--kernel", missing);
	g_assert_cmpint(run.status, ==, EXIT_INVALID_ARGUMENT);
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "create", "web1", "--cpus", "0", "--kernel", f->kernel);
	g_assert_cmpint(run.status, ==, EXIT_INVALID_ARGUMENT);
	assert_contains(run.err, "'cpus'");
	cli_run_clear(&run);

	create_vm(f, "web1");
	cli_run(f->socket_path, &run, "create", "web1", "--kernel", f->kernel);
	g_assert_cmpint(run.status, ==, EXIT_ALREADY_EXISTS);
	assert_contains(run.err, "That name is taken");
	cli_run_clear(&run);

	/* the guest agent of a VM that is not running cannot answer */
	cli_run(f->socket_path, &run, "ping", "web1");
	g_assert_cmpint(run.status, ==, EXIT_FAILED_PRECONDITION);
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "delete", "web1");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "VM 'web1' deleted");
	cli_run_clear(&run);
	cli_run(f->socket_path, &run, "get", "web1");
	g_assert_cmpint(run.status, ==, EXIT_NOT_FOUND);
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "--json", "get", "nosuch");
	g_assert_cmpint(run.status, ==, EXIT_NOT_FOUND);
	assert_contains(run.out, "\"kind\":\"not-found\"");
	cli_run_clear(&run);
}

/* activity figures move with the clock between two reads */
static void
strip_volatile(JsonNode *node)
{
	const gchar *volatile_members[] = {"idle_s",
					   "active_reason",
					   "idle_reason",
					   "auto_stop_in_s"};

	if (JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *array = json_node_get_array(node);
		for (guint i = 0; i < json_array_get_length(array); i++)
			strip_volatile(json_array_get_element(array, i));
	} else if (JSON_NODE_HOLDS_OBJECT(node)) {
		JsonObject *obj = json_node_get_object(node);
		g_autoptr(GList) members = json_object_get_members(obj);
		for (guint i = 0; i < G_N_ELEMENTS(volatile_members); i++)
			json_object_remove_member(obj, volatile_members[i]);
		for (GList *l = members; l != NULL; l = l->next) {
			JsonNode *child = json_object_get_member(obj, l->data);
			if (child != NULL)
				strip_volatile(child);
		}
	}
}

static void
test_json_is_the_result(Fixture *f, gconstpointer data)
{
	CliRun run = {0};
	const gchar *cases[][3] = {
	    {"vm.get", "{\"name\":\"db1\"}", "get"},
	    {"vm.list", NULL, "list"},
	    {"op.list", NULL, "ops"},
	};

	create_vm(f, "db1");
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(JsonObject) direct = fixture_call(f, cases[i][0], cases[i][1]);
		g_autoptr(JsonNode) direct_node = vmsup_json_node_new_object(direct);
		g_autoptr(JsonNode) printed = NULL;
		g_autoptr(GError) error = NULL;

		if (i == 0)
			cli_run(f->socket_path, &run, "--json", "get", "db1");
		else if (i == 1)
			cli_run(f->socket_path, &run, "list", "--json");
		else
			cli_run(f->socket_path, &run, "ops", "list", "--json");
		g_assert_cmpint(run.status, ==, EXIT_OK);
		printed = vmsup_json_parse(run.out, -1, &error);
		g_assert_no_error(error);
		strip_volatile(printed);
		strip_volatile(direct_node);
		g_assert_true(json_node_equal(printed, direct_node));
		cli_run_clear(&run);
	}

	cli_run(f->socket_path, &run, "info", "--json");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, f->socket_path);
	cli_run_clear(&run);

	/* the table options and -q leave --json as it was */
	{
		const gchar *plain[][5] = {{"--json", "list", NULL},
					   {"--json", "ops", "list", NULL},
					   {"--json", "get", "db1", NULL}};
		const gchar *options[][7] = {
		    {"--json", "list", "-o", "name", "--no-headers", NULL},
		    {"--json", "-q", "ops", "list", "-o", "vm", NULL},
		    {"--json", "--quiet", "get", "db1", NULL},
		};
		for (guint i = 0; i < G_N_ELEMENTS(plain); i++) {
			CliRun with = {0};
			g_autoptr(JsonNode) a = NULL;
			g_autoptr(JsonNode) b = NULL;
			cli_runv(f->socket_path, FALSE, plain[i], &run);
			cli_runv(f->socket_path, FALSE, options[i], &with);
			g_assert_cmpint(with.status, ==, EXIT_OK);
			a = vmsup_json_parse(run.out, -1, NULL);
			b = vmsup_json_parse(with.out, -1, NULL);
			g_assert_nonnull(a);
			g_assert_nonnull(b);
			strip_volatile(a);
			strip_volatile(b);
			g_assert_true(json_node_equal(a, b));
			g_assert_cmpstr(with.err, ==, "");
			cli_run_clear(&with);
			cli_run_clear(&run);
		}
	}
}

static void
test_human_output(Fixture *f, gconstpointer data)
{
	CliRun run = {0};
	g_auto(GStrv) lines = NULL;

	cli_run(f->socket_path, &run, "list");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, "NAME  STATE  CPUS  MEMORY  ACCEL  PID\n");
	cli_run_clear(&run);

	create_vm(f, "alpha");
	create_vm(f, "b");
	cli_run(f->socket_path, &run, "list");
	lines = g_strsplit(run.out, "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 4);
	g_assert_true(g_str_has_prefix(lines[0], "NAME   STATE"));
	g_assert_true(g_str_has_prefix(lines[1], "alpha  "));
	g_assert_true(g_str_has_prefix(lines[2], "b      "));
	assert_contains(lines[1], "128 MiB");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "list", "--names");
	g_assert_cmpstr(run.out, ==, "alpha\nb\n");
	cli_run_clear(&run);

	/* labels for people, values with their units; no member names */
	cli_run(f->socket_path, &run, "get", "alpha");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_true(g_str_has_prefix(run.out, "Name:"));
	assert_contains(run.out, "alpha");
	assert_contains(run.out, "\nState:  ");
	assert_contains(run.out, "defined\n");
	assert_contains(run.out, "\nMemory:  ");
	assert_contains(run.out, "128 MiB\n");
	g_assert_null(strstr(run.out, "memory_mib"));
	g_assert_null(strstr(run.out, "auto_stop"));
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "set", "alpha", "--cpus", "2", "--no-auto-stop");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "VM 'alpha' updated");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "info");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "Version:");
	assert_contains(run.out, PACKAGE_VERSION);
	assert_contains(run.out, "Accelerator:");
	/* every member of daemon.info this vmsup knows has a label */
	g_assert_null(strstr(run.out, "_service:"));
	g_assert_null(strstr(run.out, "cgroup:"));
	cli_run_clear(&run);
}

/* -o picks columns in its order, --no-headers leaves the header out; a typo is a usage error */
static void
test_columns(Fixture *f, gconstpointer data)
{
	CliRun run = {0};

	create_vm(f, "alpha");
	create_vm(f, "b");
	cli_run(f->socket_path, &run, "list", "-o", "name,state", "--no-headers");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, "alpha  defined\nb      defined\n");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "list", "--output", "memory,name,autostart");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out,
			==,
			"MEMORY   NAME   AUTOSTART\n"
			"128 MiB  alpha  no\n"
			"128 MiB  b      no\n");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "ops", "list", "-o", "vm,state", "--no-headers");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, "alpha  done\nb      done\n");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "workspace", "list", "-o", "name");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, "NAME\n");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "list", "-o", "name,nmae");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	g_assert_cmpstr(run.out, ==, "");
	assert_contains(run.err,
			"Unknown column 'nmae' for --output: the columns are name, state, "
			"cpus, memory, accel, pid, autostart, auto-stop, created");
	assert_contains(run.err, "vmsup list --help");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "ops", "list", "-o", "when");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	assert_contains(run.err, "the columns are id, kind, vm, state, stage, progress");
	cli_run_clear(&run);

	/* a table option on a verb without a table is unknown there */
	cli_run(f->socket_path, &run, "get", "alpha", "-o", "name");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	cli_run_clear(&run);
}

/* -q: no progress, no confirmations, errors still; results still */
static void
test_quiet(Fixture *f, gconstpointer data)
{
	CliRun run = {0};
	guint64 id = 0;

	cli_run(f->socket_path, &run, "-q", "create", "q1", "--kernel", f->kernel);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, "");
	g_assert_cmpstr(run.err, ==, "");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "set", "q1", "--cpus", "2", "--quiet");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, "");
	g_assert_cmpstr(run.err, ==, "");
	cli_run_clear(&run);

	/* --no-wait's result is the operation id: -q prints it alone */
	cli_run(f->socket_path, &run, "-q", "create", "q2", "--kernel", f->kernel, "--no-wait");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_true(g_str_has_suffix(run.out, "\n"));
	run.out[strlen(run.out) - 1] = '\0';
	g_assert_true(g_ascii_string_to_unsigned(run.out, 10, 1, G_MAXINT64, &id, NULL));
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "-q", "list", "--names");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "q1\n");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "-q", "delete", "q1");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, "");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "-q", "delete", "q1");
	g_assert_cmpint(run.status, ==, EXIT_NOT_FOUND);
	g_assert_cmpstr(run.out, ==, "");
	assert_contains(run.err, "It does not exist");
	cli_run_clear(&run);
}

/* labels and states in the user's language; --json stays as vmsupd said it */
static void
test_german_views(Fixture *f, gconstpointer data)
{
	const gchar *get[] = {"get", "de1", NULL};
	const gchar *ops_get[] = {"ops", "get", "1", NULL};
	const gchar *json[] = {"--json", "get", "de1", NULL};
	const gchar *list_help[] = {"list", "--help", NULL};
	CliRun run = {0};
	CliRun english = {0};

	create_vm(f, "de1");
	cli_runv(f->socket_path, TRUE, get, &run);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "Zustand:");
	assert_contains(run.out, "angelegt\n");
	assert_contains(run.out, "Arbeitsspeicher:");
	assert_contains(run.out, "128 MiB\n");
	assert_contains(run.out, "Bei Leerlauf anhalten:");
	g_assert_null(strstr(run.out, "memory_mib"));
	cli_run_clear(&run);

	cli_runv(f->socket_path, TRUE, ops_get, &run);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "Vorgang:");
	assert_contains(run.out, "abgeschlossen\n");
	cli_run_clear(&run);

	cli_runv(f->socket_path, TRUE, json, &run);
	cli_runv(f->socket_path, FALSE, json, &english);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, english.out);
	assert_contains(run.out, "\"state\":\"defined\"");
	cli_run_clear(&run);
	cli_run_clear(&english);

	cli_runv(f->socket_path, TRUE, list_help, &run);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "Spalten für --output: name, state");
	assert_contains(run.out, "Keine Kopfzeile");
	cli_run_clear(&run);
}

/* --cpu-quota and --memory-max reach the definition; 0 clears, and what is wrong is refused */
static void
test_limits(Fixture *f, gconstpointer data)
{
	CliRun run = {0};
	g_autoptr(JsonObject) vm = NULL;

	cli_run(f->socket_path,
		&run,
		"create",
		"lim",
		"--kernel",
		f->kernel,
		"--memory",
		"128",
		"--cpu-quota",
		"150",
		"--memory-max",
		"300");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	cli_run_clear(&run);
	vm = fixture_call(f, "vm.get", "{\"name\":\"lim\"}");
	g_assert_cmpint(json_object_get_int_member(vm, "cpu_quota_percent"), ==, 150);
	g_assert_cmpint(json_object_get_int_member(vm, "memory_max_mib"), ==, 300);
	g_clear_pointer(&vm, json_object_unref);

	cli_run(f->socket_path, &run, "get", "lim");
	assert_contains(run.out, "CPU quota:");
	assert_contains(run.out, " 150.0 %\n");
	assert_contains(run.out, "Memory cap:");
	assert_contains(run.out, " 300 MiB\n");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "set", "lim", "--cpu-quota", "-5");
	g_assert_cmpint(run.status, ==, EXIT_INVALID_ARGUMENT);
	assert_contains(run.err, "cpu_quota_percent");
	cli_run_clear(&run);
	cli_run(f->socket_path, &run, "set", "lim", "--memory-max", "100");
	g_assert_cmpint(run.status, ==, EXIT_INVALID_ARGUMENT);
	assert_contains(run.err, "192 MiB");
	cli_run_clear(&run);
	vm = fixture_call(f, "vm.get", "{\"name\":\"lim\"}");
	g_assert_cmpint(json_object_get_int_member(vm, "cpu_quota_percent"), ==, 150);
	g_assert_cmpint(json_object_get_int_member(vm, "memory_max_mib"), ==, 300);
	g_clear_pointer(&vm, json_object_unref);

	cli_run(f->socket_path, &run, "set", "lim", "--cpu-quota", "0", "--memory-max", "0");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "In effect now: cpu_quota_percent, memory_max_mib");
	cli_run_clear(&run);
	vm = fixture_call(f, "vm.get", "{\"name\":\"lim\"}");
	g_assert_false(json_object_has_member(vm, "cpu_quota_percent"));
	g_assert_false(json_object_has_member(vm, "memory_max_mib"));
}

/* text goes out in the locale's charset: converted where it must be, as is where it may */
static void
test_charset(Fixture *f, gconstpointer data)
{
	const gchar *create[] =
	    {"create", "umlaut", "--kernel", f->kernel, "--cmdline", "console=ttyS0 grüße", NULL};
	const gchar *get[] = {"get", "umlaut", NULL};
	const gchar *list[] = {"list", "--names", NULL};
	g_autoptr(GSubprocessLauncher) c_locale =
	    cli_launcher(f->socket_path, FALSE, CLI_RUN_FLAGS);
	CliRun run = {0};

	cli_runv(f->socket_path, FALSE, create, &run);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	cli_run_clear(&run);

	cli_runv(f->socket_path, FALSE, get, &run);
	assert_contains(run.out, "Kernel command line:");
	assert_contains(run.out, "console=ttyS0 grüße\n");
	cli_run_clear(&run);

	g_subprocess_launcher_setenv(c_locale, "LC_ALL", "C", TRUE);
	cli_run_with(c_locale, get, &run);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "console=ttyS0 gr??e\n");
	cli_run_clear(&run);
	cli_run_with(c_locale, list, &run);
	g_assert_cmpstr(run.out, ==, "umlaut\n");
	cli_run_clear(&run);
}

/* the stdout of a running vmsup, line by line, until a line starting with @wanted */
typedef struct {
	GDataInputStream *out;
	GString *text;
	const gchar *wanted; /* NULL: any line */
	gboolean seen;
	gboolean eof;
} LineWatch;

static void
line_watch_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	LineWatch *w = user_data;
	g_autofree gchar *line =
	    g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source), res, NULL, NULL);
	if (line == NULL) {
		w->eof = TRUE;
		return;
	}
	g_string_append_printf(w->text, "%s\n", line);
	if (w->wanted == NULL || g_str_has_prefix(line, w->wanted))
		w->seen = TRUE;
	g_data_input_stream_read_line_async(w->out, G_PRIORITY_DEFAULT, NULL, line_watch_cb, w);
}

static void
line_watch_start(LineWatch *w, GSubprocess *proc, const gchar *wanted)
{
	w->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc));
	w->text = g_string_new(NULL);
	w->wanted = wanted;
	g_data_input_stream_read_line_async(w->out, G_PRIORITY_DEFAULT, NULL, line_watch_cb, w);
}

static void
line_watch_clear(LineWatch *w)
{
	vmsup_test_drain_main_context();
	g_clear_object(&w->out);
	g_string_free(w->text, TRUE);
}

static gboolean
line_watch_seen_or_eof(gpointer data)
{
	LineWatch *w = data;
	return w->seen || w->eof;
}

static gboolean
line_watch_eof(gpointer data)
{
	return ((LineWatch *)data)->eof;
}

static gboolean
flag_set_cb(gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
	return G_SOURCE_REMOVE;
}

/* events stream one line each as they happen, --json as the daemon sent them */
static void
test_events(Fixture *f, gconstpointer data)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    cli_launcher(f->socket_path, FALSE, G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	g_autofree gchar *cli = vmsup_test_build_path("src", "cli", "vmsup", NULL);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	LineWatch w = {0};
	g_autoptr(JsonObject) event = NULL;

	proc = g_subprocess_launcher_spawn(launcher, &error, cli, "events", "--json", NULL);
	g_assert_no_error(error);
	line_watch_start(&w, proc, NULL);
	/* nothing says when the subscription is in place: change things until an event shows */
	for (guint i = 0; i < 100 && !line_watch_seen_or_eof(&w); i++) {
		g_autofree gchar *name = g_strdup_printf("ev%u", i);
		g_autofree gchar *params =
		    g_strdup_printf("{\"name\":\"%s\",\"kernel\":\"%s\",\"wait\":true}",
				    name,
				    f->kernel);
		g_autoptr(JsonObject) created = fixture_call(f, "vm.create", params);
		gboolean waited = FALSE;

		g_timeout_add(100, flag_set_cb, &waited);
		while (!waited && !line_watch_seen_or_eof(&w))
			g_main_context_iteration(NULL, TRUE);
		if (!waited)
			g_source_remove_by_user_data(&waited);
	}
	vmsup_test_wait_until(line_watch_seen_or_eof, &w, TIMEOUT_S);
	g_assert_true(w.seen);
	/* one JSON object per line */
	*strchr(w.text->str, '\n') = '\0';
	event = vmsup_json_parse_object(w.text->str, -1, &error);
	g_assert_no_error(error);
	g_assert_true(
	    g_str_has_prefix(vmsup_json_object_get_string(event, "method", ""), "event."));
	g_subprocess_send_signal(proc, SIGTERM);
	g_subprocess_wait(proc, NULL, &error);
	g_assert_no_error(error);
	line_watch_clear(&w);
}

static void
test_create_progress(Fixture *f, gconstpointer data)
{
	CliRun run = {0};

	/* piped: the outcome alone on stdout, one plain line per stage on stderr */
	cli_run(f->socket_path, &run, "create", "web2", "--kernel", f->kernel);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, "VM 'web2' created; start it with 'vmsup start web2'\n");
	assert_contains(run.err, "checking the host (");
	assert_contains(run.err, "saving the definition (");
	g_assert_null(strchr(run.err, '\r'));
	g_assert_null(strchr(run.err, '\033'));
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "create", "web3", "--kernel", f->kernel, "--no-wait");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "as operation ");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "--json", "create", "web4", "--kernel", f->kernel);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "\"vm\":\"web4\"");
	g_assert_cmpstr(run.err, ==, "");
	cli_run_clear(&run);
}

/* what vmsup @args writes to a pseudo-terminal as its stderr, with $TERM @term */
static gchar *
stderr_on_terminal(Fixture *f, const gchar *term, const gchar *const *args, gchar **out_stdout)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    cli_launcher(f->socket_path, FALSE, G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) text = g_string_new(NULL);
	struct termios raw;
	gint master = -1, slave = -1;
	gchar buf[4096];
	gssize n;

	g_assert_cmpint(openpty(&master, &slave, NULL, NULL, NULL), ==, 0);
	/* raw: the terminal hands over the bytes as written, "\n" not made "\r\n" */
	g_assert_cmpint(tcgetattr(slave, &raw), ==, 0);
	cfmakeraw(&raw);
	g_assert_cmpint(tcsetattr(slave, TCSANOW, &raw), ==, 0);
	g_subprocess_launcher_setenv(launcher, "TERM", term, TRUE);
	g_subprocess_launcher_take_stderr_fd(launcher, slave);
	proc = cli_spawn(launcher, args);
	/* the launcher holds the slave end open until it goes */
	g_clear_object(&launcher);
	g_subprocess_communicate_utf8(proc, NULL, NULL, out_stdout, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(proc));
	g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, EXIT_OK);
	/* what little the child wrote is buffered in the terminal; EIO once it is read */
	g_assert_true(g_unix_set_fd_nonblocking(master, TRUE, NULL));
	while ((n = read(master, buf, sizeof(buf))) > 0)
		g_string_append_len(text, buf, n);
	close(master);
	g_test_message("TERM=%s: %s", term, text->str);
	return g_strdup(text->str);
}

/* a bar only on a terminal that can draw it; TERM=dumb gets the plain lines */
static void
test_progress_terminal(Fixture *f, gconstpointer data)
{
	const gchar *create1[] = {"create", "tty1", "--kernel", f->kernel, NULL};
	const gchar *create2[] = {"create", "tty2", "--kernel", f->kernel, NULL};
	const gchar *create3[] = {"-q", "create", "tty3", "--kernel", f->kernel, NULL};
	g_autofree gchar *out1 = NULL;
	g_autofree gchar *out2 = NULL;
	g_autofree gchar *out3 = NULL;
	g_autofree gchar *bar = stderr_on_terminal(f, "xterm-256color", create1, &out1);
	g_autofree gchar *dumb = stderr_on_terminal(f, "dumb", create2, &out2);
	g_autofree gchar *quiet = stderr_on_terminal(f, "xterm-256color", create3, &out3);

	assert_contains(bar, "\r\033[K[");
	assert_contains(bar, "] 100% ");
	g_assert_true(g_str_has_suffix(bar, "\n"));
	g_assert_cmpstr(out1, ==, "VM 'tty1' created; start it with 'vmsup start tty1'\n");

	assert_contains(dumb, "checking the host (");
	g_assert_null(strchr(dumb, '\033'));
	g_assert_null(strchr(dumb, '\r'));
	g_assert_null(strstr(dumb, "[#"));
	g_assert_cmpstr(out2, ==, "VM 'tty2' created; start it with 'vmsup start tty2'\n");

	g_assert_cmpstr(quiet, ==, "");
	g_assert_cmpstr(out3, ==, "");
}

/* Ctrl-C while create waits: vmsup asks vmsupd to cancel and says so */
static void
test_create_interrupted(Fixture *f, gconstpointer data)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    cli_launcher(f->socket_path,
			 FALSE,
			 G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_autofree gchar *cli = vmsup_test_build_path("src", "cli", "vmsup", NULL);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) ops = NULL;
	LineWatch w = {0};
	JsonArray *list;
	JsonObject *op;

	proc = g_subprocess_launcher_spawn(launcher,
					   &error,
					   cli,
					   "create",
					   "slow",
					   "--kernel",
					   f->kernel,
					   "--start",
					   NULL);
	g_assert_no_error(error);
	line_watch_start(&w, proc, "starting (");
	/* this QEMU never answers, so the operation sits in "start" until cancelled */
	vmsup_test_wait_until(line_watch_seen_or_eof, &w, TIMEOUT_S);
	g_assert_true(w.seen);
	g_subprocess_send_signal(proc, SIGINT);
	vmsup_test_wait_until(line_watch_eof, &w, TIMEOUT_S);
	g_subprocess_wait(proc, NULL, &error);
	g_assert_no_error(error);
	g_test_message("%s", w.text->str);
	g_assert_true(g_subprocess_get_if_exited(proc));
	g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, EXIT_CANCELLED);
	assert_contains(w.text->str, "vmsup: Cancelling");
	assert_contains(w.text->str, "Creating VM 'slow' was cancelled");

	ops = fixture_call(f, "op.list", NULL);
	list = json_object_get_array_member(ops, "operations");
	g_assert_cmpuint(json_array_get_length(list), >=, 1);
	op = json_array_get_object_element(list, json_array_get_length(list) - 1);
	g_assert_cmpstr(vmsup_json_object_get_string(op, "vm", NULL), ==, "slow");
	g_assert_cmpstr(vmsup_json_object_get_string(op, "state", NULL), ==, "cancelled");
	line_watch_clear(&w);
}

static void
test_completion(Fixture *f, gconstpointer data)
{
	g_autofree gchar *script =
	    g_test_build_filename(G_TEST_DIST, "..", "data", "bash-completion", "vmsup", NULL);
	g_autofree gchar *fish_script =
	    g_test_build_filename(G_TEST_DIST, "..", "data", "fish-completion", "vmsup.fish", NULL);
	g_autofree gchar *zsh_script =
	    g_test_build_filename(G_TEST_DIST, "..", "data", "zsh-completion", "_vmsup", NULL);
	g_autofree gchar *cli_dir = vmsup_test_build_path("src", "cli", NULL);
	g_autofree gchar *path_env = g_strdup_printf("%s:%s", cli_dir, g_getenv("PATH"));
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *cmd = NULL;

	g_autofree gchar *image = g_build_filename(f->dir, "base.qcow2", NULL);
	g_autofree gchar *import = NULL;
	const gchar *make[] = {"qemu-img", "create", "-q", "-f", "qcow2", image, "16M", NULL};
	g_autoptr(JsonObject) imported = NULL;

	create_vm(f, "web1");
	create_vm(f, "web2");
	create_vm(f, "db");
	vmsup_test_run_tool(make);
	import = g_strdup_printf("{\"path\": \"%s\", \"wait\": true}", image);
	imported = fixture_call(f, "image.import", import);
	cmd = g_strdup_printf(
	    ". '%s'\n"
	    "complete_words() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
	    "_vmsup; printf '%%s\\n' \"${COMPREPLY[@]}\" | sort | paste -sd ' '; }\n"
	    "complete_words vmsup st\n"
	    "complete_words vmsup get we\n"
	    "complete_words vmsup --socket '%s' stop ''\n"
	    "complete_words vmsup ops ''\n"
	    "complete_words vmsup create x --no\n"
	    "complete_words vmsup exec web1 ''\n"
	    "complete_words vmsup exec web1 -- ''\n"
	    "complete_words vmsup exec web1 -- ls -\n"
	    "complete_words vmsup shell we\n"
	    "complete_words vmsup shell web1 -- ''\n"
	    "complete_words vmsup create x --firmware ''\n"
	    "complete_words vmsup help cr\n"
	    "complete_words vmsup list --no\n"
	    "complete_words vmsup list -o name,st\n"
	    "complete_words vmsup ops list --output ''\n"
	    "complete_words vmsup image ''\n"
	    "complete_words vmsup image delete ''\n"
	    "complete_words vmsup image list -o name,us\n"
	    "complete_words vmsup image build x --distro ''\n"
	    "complete_words vmsup br\n"
	    "complete_words vmsup --conn\n"
	    "complete_words vmsup --connect ''\n"
	    "complete_words vmsup snapshot ''\n"
	    "complete_words vmsup snapshot restore we\n"
	    "complete_words vmsup snapshot create web1 s1 --\n"
	    "complete_words vmsup snapshot list web1 -o name,vm\n"
	    "complete_words vmsup start web1 --sn\n"
	    "complete_words vmsup cl\n"
	    "complete_words vmsup clone we\n"
	    "complete_words vmsup set web1 --disk\n",
	    script,
	    f->socket_path);
	launcher = cli_launcher(f->socket_path, FALSE, G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	g_subprocess_launcher_setenv(launcher, "PATH", path_env, TRUE);
	proc = g_subprocess_launcher_spawn(launcher, &error, "bash", "--norc", "-c", cmd, NULL);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(proc, NULL, NULL, &out, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(
	    out,
	    ==,
	    "start stats stop\n"
	    "web1 web2\n"
	    "db web1 web2\n"
	    "cancel get list\n"
	    "--no-auto-stop --no-wait\n"
	    "\n"
	    "\n"
	    "\n"
	    "web1 web2\n"
	    "\n"
	    "bios uefi\n"
	    "create\n"
	    "--no-headers\n"
	    "name,state\n"
	    "id kind progress stage state vm\n"
	    "build delete import list\n"
	    "base\n"
	    "name,used-by\n"
	    "debian-12\n"
	    "bridge\n"
	    "--connect\n"
	    "ssh://\n"
	    "create delete list restore\n"
	    "web1 web2\n"
	    "--connect --disk-only --help --json --memory --no-wait --quiet --socket --system\n"
	    "name,vm-state\n"
	    "--snapshot\n"
	    "clone\n"
	    "web1 web2\n"
	    "--disk-gib\n");
	g_clear_pointer(&out, g_free);
	g_clear_object(&proc);
	g_clear_pointer(&cmd, g_free);

	/* fish answers as it would at a prompt: complete -C */
	cmd = g_strdup_printf(
	    "source '%s'\n"
	    "function c; complete -C $argv[1] | cut -f1 | sort | paste -sd ' '; end\n"
	    "c 'vmsup st'\n"
	    "c 'vmsup get we'\n"
	    "c 'vmsup --socket %s stop '\n"
	    "c 'vmsup exec web1 -- '\n"
	    "c 'vmsup exec web1 -- ls --'\n"
	    "c 'vmsup exec web1 ls --'\n"
	    "c 'vmsup shell we'\n"
	    "c 'vmsup shell web1 -- ls --'\n"
	    "c 'vmsup help cr'\n"
	    "c 'vmsup list -o name,st'\n"
	    "c 'vmsup workspace '\n"
	    "c 'vmsup image '\n"
	    "c 'vmsup image delete '\n"
	    "c 'vmsup br'\n"
	    "c 'vmsup --conn'\n"
	    "c 'vmsup snapshot '\n"
	    "c 'vmsup snapshot delete we'\n",
	    fish_script,
	    f->socket_path);
	proc =
	    g_subprocess_launcher_spawn(launcher, &error, "fish", "--no-config", "-c", cmd, NULL);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(proc, NULL, NULL, &out, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(out,
			==,
			"start stats stop\n"
			"web1 web2\n"
			"db web1 web2\n"
			"\n"
			"\n"
			"\n"
			"web1 web2\n"
			"\n"
			"create\n"
			"name,state\n"
			"create delete list open\n"
			"build delete import list\n"
			"base\n"
			"bridge\n"
			"--connect\n"
			"create delete list restore\n"
			"web1 web2\n");
	g_clear_pointer(&out, g_free);
	g_clear_object(&proc);

	/* zsh runs its completion only inside its line editor: here its syntax is checked */
	proc = g_subprocess_launcher_spawn(launcher, &error, "zsh", "-n", zsh_script, NULL);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_wait_check(proc, NULL, &error));
	g_assert_no_error(error);
}

/*
 * @argv (a shell and its script) in @f's directory with vmsup on its PATH; a
 * completion that hangs fails the wait, and one that prints on stderr fails too
 */
static gchar *
complete_in(Fixture *f, const gchar *const *argv)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    cli_launcher(f->socket_path, FALSE, CLI_RUN_FLAGS);
	g_autofree gchar *cli_dir = vmsup_test_build_path("src", "cli", NULL);
	g_autofree gchar *path_env = g_strdup_printf("%s:%s", cli_dir, g_getenv("PATH"));
	/* the answers that must come get all the time a loaded machine needs */
	g_autofree gchar *query_s = g_strdup_printf("%u", 10 * vmsup_test_timeout_multiplier());
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	gchar *out = NULL;
	g_autofree gchar *err = NULL;

	g_subprocess_launcher_setenv(launcher, "PATH", path_env, TRUE);
	g_subprocess_launcher_setenv(launcher, "VMSUP_COMPLETION_TIMEOUT", query_s, TRUE);
	g_subprocess_launcher_set_cwd(launcher, f->dir);
	proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8_async(proc, NULL, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	g_subprocess_communicate_utf8_finish(proc, res, &out, &err, &error);
	g_assert_no_error(error);
	g_test_message("%s completes:\n%s--- stderr\n%s", argv[0], out, err);
	g_assert_true(g_subprocess_get_if_exited(proc));
	g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, 0);
	g_assert_cmpstr(err, ==, "");
	return out;
}

/* how each shell is made to complete a line: c WORDS… prints the candidates sorted */
static const gchar bash_complete[] =
    "complete_words() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
    "_vmsup; printf '%s\\n' \"${COMPREPLY[@]}\" | sort | paste -sd ' '; }\n";

static const gchar fish_complete[] =
    "function c; complete -C $argv[1] | cut -f1 | sort | paste -sd ' '; end\n";

/*
 * zsh completes only inside its line editor: the completion system's
 * builtins are stood in for, compadd offering what matches the word typed
 * ($PREFIX) with what compset moved aside ($IPREFIX), so the function runs
 * as a TAB would run it
 */
static const gchar zsh_complete[] =
    "autoload -Uz _vmsup\n"
    "typeset -a reply\n"
    "compadd() { while (($#)) && [[ $1 != -- ]]; do shift; done; shift; "
    "reply+=($IPREFIX${^${(M)@:#${(b)PREFIX}*}}); }\n"
    "compset() { [[ $1 == -P && $PREFIX == *,* ]] && IPREFIX=${PREFIX%,*}, && "
    "PREFIX=${PREFIX##*,}; }\n"
    "_files() { compadd -- *(N); }\n"
    "_directories() { compadd -- *(N/); }\n"
    "_message() { :; }\n"
    "_call_program() { shift; eval \"$@\"; }\n"
    "c() { reply=(); words=(\"$@\"); CURRENT=$#; PREFIX=$words[CURRENT] IPREFIX=; _vmsup; "
    "print -r -- ${(j: :)${(o)reply}}; }\n";

/*
 * @lines completed in bash, fish and zsh, each answering @expected. A line
 * is the words typed, the last one (empty after a trailing space) the one
 * completed; a leading NAME=VALUE goes into the completion's environment.
 */
static void
assert_completes(Fixture *f, const gchar *const *lines, const gchar *expected)
{
	g_autofree gchar *data = g_test_build_filename(G_TEST_DIST, "..", "data", NULL);
	g_autoptr(GString) bash = g_string_new(NULL);
	g_autoptr(GString) fish = g_string_new(NULL);
	g_autoptr(GString) zsh = g_string_new(NULL);

	g_string_printf(bash, ". '%s/bash-completion/vmsup'\n%s", data, bash_complete);
	g_string_printf(fish, "source '%s/fish-completion/vmsup.fish'\n%s", data, fish_complete);
	g_string_printf(zsh, "fpath=('%s/zsh-completion' $fpath)\n%s", data, zsh_complete);
	for (guint i = 0; lines[i] != NULL; i++) {
		const gchar *typed = lines[i];
		const gchar *space = strchr(typed, ' ');
		g_autofree gchar *env = NULL;
		g_autofree gchar *fish_line = NULL;
		g_auto(GStrv) words = NULL;

		if (space != NULL && memchr(typed, '=', space - typed) != NULL) {
			env = g_strndup(typed, space - typed + 1);
			typed = space + 1;
		}
		words = g_strsplit(typed, " ", -1);
		g_string_append_printf(bash, "%scomplete_words", env != NULL ? env : "");
		g_string_append_printf(zsh, "%sc", env != NULL ? env : "");
		for (guint w = 0; words[w] != NULL; w++) {
			g_autofree gchar *quoted = g_shell_quote(words[w]);
			g_string_append_printf(bash, " %s", quoted);
			g_string_append_printf(zsh, " %s", quoted);
		}
		g_string_append_c(bash, '\n');
		g_string_append_c(zsh, '\n');
		fish_line = g_shell_quote(typed);
		g_string_append_printf(fish, "%sc %s\n", env != NULL ? env : "", fish_line);
	}
	{
		const gchar *bash_argv[] = {"bash", "--norc", "-c", bash->str, NULL};
		const gchar *fish_argv[] = {"fish", "--no-config", "-c", fish->str, NULL};
		const gchar *zsh_argv[] = {"zsh", "-f", "-c", zsh->str, NULL};
		const gchar *const *shells[] = {bash_argv, fish_argv, zsh_argv};

		for (guint i = 0; i < G_N_ELEMENTS(shells); i++) {
			g_autofree gchar *out = complete_in(f, shells[i]);
			g_assert_cmpstr(out, ==, expected);
		}
	}
}

/* a socket that takes connections and never answers them: a daemon that hangs */
static GSocket *
listen_silently(const gchar *path)
{
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(path);
	g_autoptr(GError) error = NULL;
	GSocket *socket = g_socket_new(G_SOCKET_FAMILY_UNIX,
				       G_SOCKET_TYPE_STREAM,
				       G_SOCKET_PROTOCOL_DEFAULT,
				       &error);

	g_assert_no_error(error);
	g_assert_true(g_socket_bind(socket, address, FALSE, &error));
	g_assert_true(g_socket_listen(socket, &error));
	g_assert_no_error(error);
	return socket;
}

/* names the daemon gives; nothing, quietly and soon, from one that is down or hangs */
static void
test_completion_names(Fixture *f, gconstpointer data)
{
	g_autofree gchar *image = g_build_filename(f->dir, "base.qcow2", NULL);
	g_autofree gchar *proj = g_build_filename(f->dir, "proj", NULL);
	g_autofree gchar *notes = g_build_filename(f->dir, "notes", NULL);
	g_autofree gchar *hung = g_build_filename(f->dir, "hung.sock", NULL);
	g_autoptr(GSocket) silent = listen_silently(hung);
	const gchar *make[] = {"qemu-img", "create", "-q", "-f", "qcow2", image, "16M", NULL};
	g_autofree gchar *import = g_strdup_printf("{\"path\": \"%s\", \"wait\": true}", image);
	g_autofree gchar *down_get = g_strdup_printf("vmsup --socket %s/gone.sock get ", f->dir);
	/* a daemon that does not answer is given one second, and leaves the files */
	g_autofree gchar *hung_ops =
	    g_strdup_printf("VMSUP_COMPLETION_TIMEOUT=1 vmsup --socket %s ops get ", hung);
	g_autofree gchar *hung_image =
	    g_strdup_printf("VMSUP_COMPLETION_TIMEOUT=1 vmsup --socket %s create x --image bas",
			    hung);
	const gchar *lines[] = {
	    "vmsup ops get ",
	    "vmsup ops cancel ",
	    "vmsup workspace open ",
	    "vmsup workspace delete p",
	    "vmsup workspace create x --vm d",
	    "vmsup create x --firmware bios --image ba",
	    "vmsup image delete ",
	    "vmsup get we",
	    "vmsup exec web1 -- ",
	    "vmsup list -o name,st",
	    down_get,
	    hung_ops,
	    hung_image,
	    NULL,
	};
	g_autoptr(JsonObject) imported = NULL;
	CliRun run = {0};

	create_vm(f, "web1");
	create_vm(f, "web2");
	create_vm(f, "db");
	vmsup_test_run_tool(make);
	imported = fixture_call(f, "image.import", import);
	g_assert_cmpint(g_mkdir(proj, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(notes, 0755), ==, 0);
	cli_run(f->socket_path,
		&run,
		"workspace",
		"create",
		"proj",
		"--path",
		proj,
		"--vm",
		"web1");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	cli_run_clear(&run);
	cli_run(f->socket_path,
		&run,
		"workspace",
		"create",
		"notes",
		"--path",
		notes,
		"--vm",
		"web2");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	cli_run_clear(&run);

	assert_completes(f,
			 lines,
			 "1 2 3 4\n"
			 "\n"
			 "notes proj\n"
			 "proj\n"
			 "db\n"
			 "base base.qcow2\n"
			 "base\n"
			 "web1 web2\n"
			 "\n"
			 "name,state\n"
			 "\n"
			 "\n"
			 "base.qcow2\n");
	g_socket_close(silent, NULL);
}

static gboolean
op_2_is_over(gpointer data)
{
	g_autoptr(JsonObject) op = fixture_call(data, "op.get", "{\"id\": 2}");
	return g_strcmp0(vmsup_json_object_get_string(op, "state", NULL), "running") != 0;
}

/* only an operation still under way is offered to cancel */
static void
test_completion_running_op(Fixture *f, gconstpointer data)
{
	const gchar *lines[] = {"vmsup ops cancel ", "vmsup ops get ", NULL};
	g_autoptr(JsonObject) cancelled = NULL;
	CliRun run = {0};

	create_vm(f, "idle");
	/* this QEMU never answers: the operation stays in "start" */
	cli_run(f->socket_path,
		&run,
		"-q",
		"create",
		"slow",
		"--kernel",
		f->kernel,
		"--start",
		"--no-wait");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, "2\n");
	cli_run_clear(&run);

	assert_completes(f, lines, "2\n1 2\n");

	/* the VM can be deleted once its operation is over */
	cancelled = fixture_call(f, "op.cancel", "{\"id\": 2}");
	vmsup_test_wait_until(op_2_is_over, f, TIMEOUT_S);
}

/* the image store end to end: vmsup and vmsupd over the socket, real images */
/* vmsup clone and vmsup set --disk-gib: their lines, --json, and what is refused */
static void
test_clone_and_grow(Fixture *f, gconstpointer data)
{
	g_autoptr(JsonObject) orig = NULL;
	g_autoptr(JsonObject) copy = NULL;
	CliRun run = {0};

	cli_run(f->socket_path, &run, "create", "orig", "--kernel", f->kernel, "--disk-gib", "1");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	cli_run_clear(&run);

	/* piped: the outcome on stdout, the copy's stage on stderr */
	cli_run(f->socket_path, &run, "clone", "orig", "copy1");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	g_assert_cmpstr(run.out, ==, "VM 'copy1' cloned; start it with 'vmsup start copy1'\n");
	assert_contains(run.err, "copying the disk (");
	cli_run_clear(&run);
	cli_run(f->socket_path, &run, "--json", "clone", "orig", "copy2");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "\"vm\":\"copy2\"");
	g_assert_cmpstr(run.err, ==, "");
	cli_run_clear(&run);
	cli_run(f->socket_path, &run, "clone", "orig", "copy3", "--no-wait");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "as operation ");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "clone", "orig", "copy1");
	g_assert_cmpint(run.status, ==, EXIT_ALREADY_EXISTS);
	assert_contains(run.err, "'copy1' already exists");
	cli_run_clear(&run);
	cli_run(f->socket_path, &run, "clone", "orig", "../x");
	g_assert_cmpint(run.status, ==, EXIT_INVALID_ARGUMENT);
	cli_run_clear(&run);
	cli_run(f->socket_path, &run, "clone", "orig");
	g_assert_cmpint(run.status, ==, EXIT_USAGE);
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "set", "copy1", "--disk-gib", "2");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "VM 'copy1' updated");
	cli_run_clear(&run);
	cli_run(f->socket_path, &run, "set", "copy1", "--disk-gib", "1");
	g_assert_cmpint(run.status, ==, EXIT_INVALID_ARGUMENT);
	assert_contains(run.err, "Disks only grow");
	assert_contains(run.err, "is 2.0 GiB");
	cli_run_clear(&run);

	orig = fixture_call(f, "vm.get", "{\"name\": \"orig\"}");
	copy = fixture_call(f, "vm.get", "{\"name\": \"copy1\"}");
	g_assert_cmpint(vmsup_json_object_get_int(orig, "disk_gib", 0), ==, 1);
	g_assert_cmpint(vmsup_json_object_get_int(copy, "disk_gib", 0), ==, 2);
	g_assert_cmpstr(vmsup_json_object_get_string(copy, "mac", NULL),
			!=,
			vmsup_json_object_get_string(orig, "mac", NULL));
}

static void
test_images(Fixture *f, gconstpointer data)
{
	g_autofree gchar *image = g_build_filename(f->dir, "Base Image.qcow2", NULL);
	g_autofree gchar *text = g_build_filename(f->dir, "notes.txt", NULL);
	g_autofree gchar *stored = NULL;
	const gchar *make[] = {"qemu-img", "create", "-q", "-f", "qcow2", image, "64M", NULL};
	g_autoptr(JsonObject) imported = NULL;
	g_autoptr(JsonObject) op = NULL;
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autofree gchar *op_params = NULL;
	g_autofree gchar *import_params = NULL;
	CliRun run = {0};
	JsonArray *images;

	vmsup_test_run_tool(make);
	write_file(text, "not a disk\n", 0644);

	/* the CLI: an import with its name made from the file's, and its line */
	cli_run(f->socket_path, &run, "image", "import", image);
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "Image 'base-image' imported");
	cli_run_clear(&run);
	/* the same again: the name is taken, nothing changes */
	cli_run(f->socket_path, &run, "image", "import", image);
	g_assert_cmpint(run.status, ==, EXIT_ALREADY_EXISTS);
	assert_contains(run.err, "vmsup image delete base-image");
	cli_run_clear(&run);
	cli_run(f->socket_path, &run, "image", "import", text, "--name", "notes");
	g_assert_cmpint(run.status, ==, EXIT_INVALID_ARGUMENT);
	assert_contains(run.err, "MBR or GPT");
	cli_run_clear(&run);
	cli_run(f->socket_path, &run, "image", "import", f->dir);
	g_assert_cmpint(run.status, !=, EXIT_OK);
	assert_contains(run.err, "regular file");
	cli_run_clear(&run);

	/* JSON-RPC: an import is an operation op.get follows */
	import_params =
	    g_strdup_printf("{\"path\": \"%s\", \"name\": \"second\", \"wait\": true}", image);
	imported = fixture_call(f, "image.import", import_params);
	g_assert_cmpstr(vmsup_json_object_get_string(imported, "image", NULL), ==, "second");
	op_params = g_strdup_printf("{\"id\": %" G_GINT64_FORMAT "}",
				    vmsup_json_object_get_int(imported, "operation", 0));
	op = fixture_call(f, "op.get", op_params);
	g_assert_cmpstr(vmsup_json_object_get_string(op, "kind", NULL), ==, "image.import");
	g_assert_cmpstr(vmsup_json_object_get_string(op, "state", NULL), ==, "done");
	g_assert_cmpfloat(vmsup_json_object_get_double(op, "progress", 0), ==, 1.0);

	list = fixture_call(f, "image.list", NULL);
	images = json_object_get_array_member(list, "images");
	g_assert_cmpuint(json_array_get_length(images), ==, 2);
	stored = g_strdup(
	    vmsup_json_object_get_string(json_array_get_object_element(images, 0), "path", NULL));
	g_assert_cmpstr(
	    vmsup_json_object_get_string(json_array_get_object_element(images, 0), "name", NULL),
	    ==,
	    "base-image");
	cli_run(f->socket_path, &run, "image", "list");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "NAME");
	assert_contains(run.out, "base-image");
	assert_contains(run.out, "64.0");
	cli_run_clear(&run);

	/* a VM on the stored image by its name, on an overlay of its own */
	cli_run(f->socket_path,
		&run,
		"create",
		"on-store",
		"--image",
		"base-image",
		"--memory",
		"128");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	cli_run_clear(&run);
	vm = fixture_call(f, "vm.get", "{\"name\": \"on-store\"}");
	g_assert_cmpstr(vmsup_json_object_get_string(vm, "image", NULL), ==, stored);

	/* in use: not deleted, and the store unchanged */
	cli_run(f->socket_path, &run, "image", "delete", "base-image");
	g_assert_cmpint(run.status, ==, EXIT_FAILED_PRECONDITION);
	assert_contains(run.err, "'on-store'");
	cli_run_clear(&run);
	g_assert_true(g_file_test(stored, G_FILE_TEST_IS_REGULAR));
	cli_run(f->socket_path, &run, "image", "list", "--json");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	assert_contains(run.out, "\"used_by\":[\"on-store\"]");
	cli_run_clear(&run);

	cli_run(f->socket_path, &run, "delete", "on-store");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	cli_run_clear(&run);
	cli_run(f->socket_path, &run, "image", "delete", "base-image");
	g_assert_cmpint(run.status, ==, EXIT_OK);
	cli_run_clear(&run);
	g_assert_false(g_file_test(stored, G_FILE_TEST_EXISTS));
	cli_run(f->socket_path, &run, "image", "delete", "base-image");
	g_assert_cmpint(run.status, ==, EXIT_NOT_FOUND);
	cli_run_clear(&run);
}

static gint
cmp_int64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

/* the figure DESIGN.md cares about: a vm.get through the socket of a real daemon */
static void
test_round_trip(Fixture *f, gconstpointer data)
{
	g_autoptr(GArray) samples = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_autoptr(JsonObject) params = json_object_new();
	gint64 p50, p99;

	create_vm(f, "web1");
	json_object_set_string_member(params, "name", "web1");
	for (guint i = 0; i < 1000; i++) {
		g_autoptr(GError) error = NULL;
		gint64 start = g_get_monotonic_time();
		g_autoptr(JsonObject) vm =
		    vmsup_jsonrpc_client_call_object(f->client, "vm.get", params, &error);
		gint64 elapsed = g_get_monotonic_time() - start;
		g_assert_no_error(error);
		g_assert_cmpstr(vmsup_json_object_get_string(vm, "name", NULL), ==, "web1");
		g_array_append_val(samples, elapsed);
	}
	g_array_sort(samples, cmp_int64);
	p50 = g_array_index(samples, gint64, samples->len / 2);
	p99 = g_array_index(samples, gint64, samples->len * 99 / 100);
	g_test_message("vm.get round trip against vmsupd: p50 %" G_GINT64_FORMAT
		       " us, p99 %" G_GINT64_FORMAT " us",
		       p50,
		       p99);
	/* a stall shows in the median; loose, as sanitizer builds unwind on each malloc */
	g_assert_cmpint(p50, <, 100 * 1000);
}

static gboolean
server_has_connections(gpointer data)
{
	gpointer *args = data;
	return vmsup_jsonrpc_server_get_n_connections(args[0]) >= GPOINTER_TO_UINT(args[1]);
}

/*
 * A connection vmsupd refuses is reported as refused, with the daemon's
 * message: not as a busy VM, not as a broken connection. With every slot
 * taken, the reserve for root included, even root is refused.
 */
static void
test_refused(void)
{
	const guint n_slots = VMSUP_JSONRPC_MAX_CONNECTIONS + VMSUP_JSONRPC_RESERVED_CONNECTIONS;
	const gchar *const args[] = {"list", NULL};
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *socket_path = g_build_filename(dir, "s.sock", NULL);
	g_autoptr(VmsupPolicy) policy = vmsup_policy_new(NULL);
	VmsupRpcContext ctx = {.policy = policy, .mode = "session", .socket_path = socket_path};
	g_autoptr(VmsupJsonrpcServer) server = vmsup_jsonrpc_server_new(&ctx);
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(socket_path);
	g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(GSubprocessLauncher) launcher = cli_launcher(socket_path, FALSE, CLI_RUN_FLAGS);
	g_autoptr(GError) error = NULL;
	gpointer wanted[2] = {server, GUINT_TO_POINTER(n_slots)};
	CliRun run = {0};

	g_assert_true(vmsup_jsonrpc_server_listen(server, socket_path, FALSE, -1, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < n_slots; i++) {
		GSocketConnection *conn =
		    g_socket_client_connect(client, G_SOCKET_CONNECTABLE(address), NULL, &error);
		g_assert_no_error(error);
		g_ptr_array_add(held, conn);
	}
	vmsup_test_wait_until(server_has_connections, wanted, TIMEOUT_S);

	cli_run_full(launcher, args, TRUE, &run);
	g_assert_cmpint(run.status, ==, EXIT_BUSY);
	g_assert_nonnull(strstr(run.err, "vmsupd refused this connection"));
	g_assert_nonnull(strstr(run.err, "all it takes"));
	g_assert_null(strstr(run.err, "Something else is in progress"));
	g_assert_null(strstr(run.err, "broke"));
	cli_run_clear(&run);

	g_ptr_array_set_size(held, 0);
	vmsup_jsonrpc_server_close(server);
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(dir);
}

int
main(int argc, char **argv)
{
	static const FixtureOptions fake_qemu = {TRUE};

	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	g_test_add_func("/vmsup/cli/format/table", test_format_table);
	g_test_add_func("/vmsup/cli/format/values", test_format_values);
	g_test_add_func("/vmsup/cli/format/columns", test_format_columns);
	g_test_add_func("/vmsup/cli/progress/bar", test_progress_bar);
	g_test_add_func("/vmsup/cli/progress/modes", test_progress_modes);
	g_test_add_func("/vmsup/cli/client/huge-answer", test_client_huge_answer);
	g_test_add_func("/vmsup/cli/client/closed-mid-answer", test_client_closed_mid_answer);
	g_test_add_func("/vmsup/cli/client/answers", test_client_answers);
	g_test_add_func("/vmsup/cli/client/wait", test_client_wait);
	g_test_add_func("/vmsup/cli/client/connect", test_client_connect);
	g_test_add_func("/vmsup/cli/client/refused", test_refused);
	g_test_add_func("/vmsup/cli/list-fields", test_list_fields);
	g_test_add_func("/vmsup/cli/usage", test_usage);
	g_test_add_func("/vmsup/cli/no-daemon", test_no_daemon);
	g_test_add_func("/vmsup/cli/german", test_german);
	g_test_add_func("/vmsup/cli/exec-stdin", test_exec_stdin);
#define ADD(path, func, opts) g_test_add(path, Fixture, opts, fixture_setup, func, fixture_teardown)
	ADD("/vmsup/cli/daemon/exit-codes", test_exit_codes, NULL);
	ADD("/vmsup/cli/daemon/json", test_json_is_the_result, NULL);
	ADD("/vmsup/cli/daemon/human", test_human_output, NULL);
	ADD("/vmsup/cli/daemon/columns", test_columns, NULL);
	ADD("/vmsup/cli/daemon/quiet", test_quiet, NULL);
	ADD("/vmsup/cli/daemon/german", test_german_views, NULL);
	ADD("/vmsup/cli/daemon/limits", test_limits, NULL);
	ADD("/vmsup/cli/daemon/charset", test_charset, NULL);
	ADD("/vmsup/cli/daemon/events", test_events, NULL);
	ADD("/vmsup/cli/daemon/create-progress", test_create_progress, NULL);
	ADD("/vmsup/cli/daemon/progress-terminal", test_progress_terminal, NULL);
	ADD("/vmsup/cli/daemon/create-interrupted", test_create_interrupted, &fake_qemu);
	ADD("/vmsup/cli/daemon/completion", test_completion, NULL);
	ADD("/vmsup/cli/daemon/completion-names", test_completion_names, NULL);
	ADD("/vmsup/cli/daemon/completion-running-op", test_completion_running_op, &fake_qemu);
	ADD("/vmsup/cli/daemon/round-trip", test_round_trip, NULL);
	ADD("/vmsup/cli/daemon/images", test_images, NULL);
	ADD("/vmsup/cli/daemon/clone-grow", test_clone_and_grow, NULL);
#undef ADD
	return g_test_run();
}
