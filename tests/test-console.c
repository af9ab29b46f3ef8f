/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vm.console on the bundled guest through a real vmsupd: viewers by
 * descriptor (SCM_RIGHTS, and OpenConsole's `h` on a private D-Bus), what
 * they type and what they see, the latest output shown to a late viewer, a
 * viewer that never reads during a flood and one that leaves in the middle
 * of it, the cap on viewers, a stopped VM, the CLI in pipe mode, and
 * re-attaching after vmsupd was killed and started again.
 */

#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmsup-dbus-server.h"
#include "vmsup-dbus-vm-objects.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-jsonrpc-client.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-console.h"

#define VM "con1"
/* one boot of the bundled guest under TCG, with room */
#define BOOT_S 90
#define TIMEOUT_S 30

static struct {
	gchar *dir;
	gchar *socket_path;
	gchar *state;
	gchar *runtime;
	gchar *log_path;
	GSubprocess *daemon;
	VmsupJsonrpcClient *client;
	GTestDBus *bus;
	GDBusConnection *conn;
} global;

static gint
scaled_ms(guint seconds)
{
	return (gint)(seconds * vmsup_test_timeout_multiplier() * 1000);
}

static gboolean
daemon_answers(gpointer unused)
{
	g_autoptr(VmsupJsonrpcClient) client = vmsup_jsonrpc_client_new();
	return vmsup_jsonrpc_client_connect(client, global.socket_path, NULL);
}

static gboolean
bus_name_owned(gpointer unused)
{
	return vmsup_test_bus_name_has_owner(global.conn, VMSUP_DBUS_BUS_NAME);
}

/* vmsupd on the private session bus, and on its JSON-RPC socket */
static void
daemon_start(void)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_autofree gchar *daemon = vmsup_test_build_path("src", "daemon", "vmsupd", NULL);
	g_autofree gchar *config = g_build_filename(global.dir, "vmsupd.conf", NULL);
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_set_contents(config, "[vmsupd]\nAccel=tcg\n", -1, NULL));
	g_subprocess_launcher_set_stderr_file_path(launcher, global.log_path);
	g_subprocess_launcher_set_child_setup(launcher,
					      vmsup_test_child_dies_with_parent,
					      NULL,
					      NULL);
	global.daemon = g_subprocess_launcher_spawn(launcher,
						    &error,
						    daemon,
						    "--session",
						    "--state-dir",
						    global.state,
						    "--runtime-dir",
						    global.runtime,
						    "--socket",
						    global.socket_path,
						    "--config",
						    config,
						    NULL);
	g_assert_no_error(error);
	vmsup_test_wait_until(daemon_answers, NULL, TIMEOUT_S);
	vmsup_test_wait_until(bus_name_owned, NULL, TIMEOUT_S);
	g_clear_object(&global.client);
	global.client = vmsup_jsonrpc_client_new();
	g_assert_true(vmsup_jsonrpc_client_connect(global.client, global.socket_path, &error));
	g_assert_no_error(error);
}

static JsonObject *
call_ok(const gchar *method, const gchar *params_json)
{
	g_autoptr(JsonNode) node = json_from_string(params_json, NULL);
	g_autoptr(GError) error = NULL;
	JsonObject *result = vmsup_jsonrpc_client_call_object(global.client,
							      method,
							      json_node_get_object(node),
							      &error);

	g_assert_no_error(error);
	g_assert_nonnull(result);
	return result;
}

static gint
open_console_with(const gchar *name, gboolean history, GError **error)
{
	g_autoptr(JsonObject) params = json_object_new();
	json_object_set_string_member(params, "name", name);
	if (!history)
		json_object_set_boolean_member(params, "history", FALSE);
	return vmsup_jsonrpc_client_call_fd(global.client, "vm.console", params, NULL, error);
}

static gint
open_console(const gchar *name, GError **error)
{
	return open_console_with(name, TRUE, error);
}

/* a viewer of VM; the tests that look at live output only take no history */
static gint
open_console_ok(void)
{
	g_autoptr(GError) error = NULL;
	gint fd = open_console_with(VM, FALSE, &error);

	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	return fd;
}

/* OpenConsole over D-Bus: the descriptor from the reply's fd list, or -1 with an error */
static gint
dbus_open_console(const gchar *path, const gchar *iface, GVariant *args, GError **error)
{
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(GVariant) reply = NULL;
	gint32 handle = -1;

	reply = g_dbus_connection_call_with_unix_fd_list_sync(global.conn,
							      VMSUP_DBUS_BUS_NAME,
							      path,
							      iface,
							      "OpenConsole",
							      args,
							      G_VARIANT_TYPE("(h)"),
							      G_DBUS_CALL_FLAGS_NONE,
							      scaled_ms(TIMEOUT_S),
							      NULL,
							      &fds,
							      NULL,
							      error);
	if (reply == NULL)
		return -1;
	g_variant_get(reply, "(h)", &handle);
	g_assert_nonnull(fds);
	g_assert_cmpint(g_unix_fd_list_get_length(fds), ==, 1);
	return g_unix_fd_list_get(fds, handle, error);
}

/* reads @fd into @seen until it holds @wanted or @timeout_ms pass; FALSE on EOF or time up */
static gboolean
read_until(gint fd, GString *seen, const gchar *wanted, gint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (strstr(seen->str, wanted) == NULL) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		gint64 left = (deadline - g_get_monotonic_time()) / 1000;
		gchar buf[4096];
		gssize n;

		if (left <= 0 || poll(&p, 1, (gint)left) <= 0)
			return FALSE;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return FALSE;
		g_string_append_len(seen, buf, n);
	}
	return TRUE;
}

static void
type_line(gint fd, const gchar *line)
{
	g_assert_cmpint(write(fd, line, strlen(line)), ==, (gssize)strlen(line));
}

/* types @command until its output @wanted comes back: the shell starts after "ready" */
static void
type_until_seen(gint fd, GString *seen, const gchar *command, const gchar *wanted)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)scaled_ms(BOOT_S) * 1000;

	while (g_get_monotonic_time() < deadline) {
		type_line(fd, command);
		if (read_until(fd, seen, wanted, 2000))
			return;
	}
	g_error("'%s' never came back from the console; it showed:\n%s", wanted, seen->str);
}

static gchar *
console_log(void)
{
	g_autoptr(JsonObject) vm = call_ok("vm.get", "{\"name\": \"" VM "\"}");
	g_autofree gchar *path =
	    g_build_filename(vmsup_json_object_get_string(vm, "runtime_dir", ""),
			     "console.log",
			     NULL);
	gchar *text = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	return text;
}

/* /vmsup/console/two-viewers */

static void
test_two_viewers(void)
{
	g_autoptr(GString) seen_a = g_string_new(NULL);
	g_autoptr(GString) seen_b = g_string_new(NULL);
	g_autofree gchar *log = NULL;
	gint a = open_console_ok();
	gint b = open_console_ok();

	/* what one viewer types, the guest's shell answers to both */
	type_until_seen(a, seen_a, "echo two-$((20+22))\n", "two-42");
	g_assert_true(read_until(b, seen_b, "two-42", scaled_ms(TIMEOUT_S)));
	/* and the console log keeps being written */
	log = console_log();
	g_assert_nonnull(strstr(log, "vmsup-guest: ready"));
	g_assert_nonnull(strstr(log, "two-42"));
	close(a);
	close(b);
}

static gboolean
log_says_ready(gpointer unused)
{
	g_autofree gchar *log = console_log();
	return strstr(log, "vmsup-guest: ready") != NULL;
}

/* /vmsup/console/history */

static void
test_history(void)
{
	g_autoptr(GString) seen_a = g_string_new(NULL);
	g_autoptr(GString) seen_b = g_string_new(NULL);
	g_autoptr(GString) seen_c = g_string_new(NULL);
	g_autoptr(GError) error = NULL;
	gint a, b, c;

	/* nobody was attached since the boot: once it ended, the first viewer sees it from the log
	 */
	vmsup_test_wait_until(log_says_ready, NULL, BOOT_S);
	a = open_console(VM, &error);
	g_assert_no_error(error);
	g_assert_true(read_until(a, seen_a, "vmsup-guest: ready", scaled_ms(TIMEOUT_S)));
	type_until_seen(a, seen_a, "echo hist-$((3*3))\n", "hist-9");

	/* a later one, while a is attached, from what vmsupd kept; nothing typed meanwhile */
	b = open_console(VM, &error);
	g_assert_no_error(error);
	g_assert_true(read_until(b, seen_b, "hist-9", scaled_ms(TIMEOUT_S)));

	/* without history: only what comes after */
	c = open_console_with(VM, FALSE, &error);
	g_assert_no_error(error);
	type_until_seen(a, seen_a, "echo late-$((4*4))\n", "late-16");
	g_assert_true(read_until(c, seen_c, "late-16", scaled_ms(TIMEOUT_S)));
	g_assert_null(strstr(seen_c->str, "hist-9"));
	close(a);
	close(b);
	close(c);
}

/* /vmsup/console/dbus */

static void
test_dbus(void)
{
	g_autoptr(GString) seen_a = g_string_new(NULL);
	g_autoptr(GString) seen_b = g_string_new(NULL);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = vmsup_dbus_vm_object_path(VM);
	GVariantBuilder options;
	gint a, b;

	/* the VM's own object, and the supervisor with an option: both hand out working sockets */
	a = dbus_open_console(path, "io.github.vmsup.VM1", g_variant_new("(a{sv})", NULL), &error);
	g_assert_no_error(error);
	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&options, "{sv}", "history", g_variant_new_boolean(FALSE));
	b = dbus_open_console(VMSUP_DBUS_SUPERVISOR_PATH,
			      "io.github.vmsup.Supervisor1",
			      g_variant_new("(sa{sv})", VM, &options),
			      &error);
	g_assert_no_error(error);
	g_assert_cmpint(a, >=, 0);
	g_assert_cmpint(b, >=, 0);
	type_until_seen(b, seen_b, "echo bus-$((6*7))\n", "bus-42");
	g_assert_true(read_until(a, seen_a, "bus-42", scaled_ms(TIMEOUT_S)));

	/* an option of the wrong type, an unknown VM: errors, and no descriptor */
	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&options, "{sv}", "history", g_variant_new_string("yes"));
	g_assert_cmpint(dbus_open_console(VMSUP_DBUS_SUPERVISOR_PATH,
					  "io.github.vmsup.Supervisor1",
					  g_variant_new("(sa{sv})", VM, &options),
					  &error),
			==,
			-1);
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "history"));
	g_clear_error(&error);
	g_assert_cmpint(dbus_open_console(VMSUP_DBUS_SUPERVISOR_PATH,
					  "io.github.vmsup.Supervisor1",
					  g_variant_new("(sa{sv})", "con-nosuch", NULL),
					  &error),
			==,
			-1);
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "con-nosuch"));
	close(a);
	close(b);
}

/* /vmsup/console/stalled-viewer */

static void
test_stalled_viewer(void)
{
	g_autoptr(GString) seen = g_string_new(NULL);
	g_autoptr(GString) drained = g_string_new(NULL);
	gint stalled = open_console_ok();
	gint reader = open_console_ok();
	gint64 worst_us = 0;
	gint64 deadline;
	gboolean eof = FALSE;

	/* the shell is up; then about 1.2 MB through the serial port, far more than the
	 * stalled viewer's socket and its 256 KiB in vmsupd hold */
	type_until_seen(reader, seen, "echo up-$((1+1))\n", "up-2");
	type_line(
	    reader,
	    "i=0; while [ $i -lt 20000 ]; do echo flood-$i-...................................."
	    "........; i=$((i+1)); done; echo flood-$((1000*2))-end\n");
	/* while it flows, the daemon answers and the reading viewer sees all of it */
	deadline = g_get_monotonic_time() + (gint64)scaled_ms(BOOT_S * 3) * 1000;
	while (!read_until(reader, seen, "flood-2000-end", 500)) {
		gint64 t0 = g_get_monotonic_time();
		g_autoptr(JsonObject) vm = call_ok("vm.get", "{\"name\": \"" VM "\"}");
		worst_us = MAX(worst_us, g_get_monotonic_time() - t0);
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
	}
	g_test_message("vm.get during the flood: worst %" G_GINT64_FORMAT " us", worst_us);
	g_assert_cmpint(worst_us, >, 0);
	g_assert_cmpint(worst_us, <, (gint64)scaled_ms(2) * 1000);
	g_assert_nonnull(strstr(seen->str, "flood-19999-"));

	/* the stalled viewer was cut off: it reads what it was sent, then the end */
	deadline = g_get_monotonic_time() + (gint64)scaled_ms(TIMEOUT_S) * 1000;
	while (!eof && g_get_monotonic_time() < deadline) {
		struct pollfd p = {.fd = stalled, .events = POLLIN};
		gchar buf[65536];
		gssize n;

		if (poll(&p, 1, 1000) <= 0)
			break;
		n = read(stalled, buf, sizeof(buf));
		if (n <= 0)
			eof = TRUE;
		else
			g_string_append_len(drained, buf, n);
	}
	g_assert_true(eof);
	g_assert_null(strstr(drained->str, "flood-2000-end"));
	close(stalled);
	close(reader);
}

/* /vmsup/console/leaves-mid-stream */

static void
test_leaves_mid_stream(void)
{
	g_autoptr(GString) seen = g_string_new(NULL);
	g_autoptr(GString) left = g_string_new(NULL);
	gint reader = open_console_ok();
	gint quitter = open_console_ok();

	type_until_seen(reader, seen, "echo mid-$((2+3))\n", "mid-5");
	type_line(reader,
		  "i=0; while [ $i -lt 3000 ]; do echo mid-$i-..............................; "
		  "i=$((i+1)); done; echo mid-$((1000*3))-end\n");
	/* one viewer goes away while output flows to it */
	g_assert_true(read_until(quitter, left, "mid-100-", scaled_ms(BOOT_S)));
	close(quitter);
	/* the other sees all of it, and the console still takes input */
	g_assert_true(read_until(reader, seen, "mid-3000-end", scaled_ms(BOOT_S * 2)));
	g_assert_nonnull(strstr(seen->str, "mid-2999-"));
	type_until_seen(reader, seen, "echo still-$((1+1))\n", "still-2");
	close(reader);
}

/* a viewer, asking again while the cap is reached by viewers closed a moment ago */
static gint
open_console_when_room(void)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)scaled_ms(TIMEOUT_S) * 1000;

	for (;;) {
		g_autoptr(GError) error = NULL;
		gint fd = open_console_with(VM, FALSE, &error);
		if (fd >= 0)
			return fd;
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_BUSY);
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_usleep(50 * 1000);
	}
}

/* /vmsup/console/too-many */

static void
test_too_many(void)
{
	gint fds[VMSUP_VM_CONSOLE_MAX_VIEWERS];
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) seen = g_string_new(NULL);

	for (guint i = 0; i < G_N_ELEMENTS(fds); i++)
		fds[i] = open_console_when_room();
	g_assert_cmpint(open_console_with(VM, FALSE, &error), ==, -1);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_BUSY);
	g_assert_nonnull(strstr(error->message, "close one"));
	/* one leaves: there is room again, and the newcomer works */
	close(fds[0]);
	fds[0] = open_console_when_room();
	type_until_seen(fds[0], seen, "echo room-$((8*8))\n", "room-64");
	for (guint i = 0; i < G_N_ELEMENTS(fds); i++)
		close(fds[i]);
}

/* /vmsup/console/stopped */

static void
test_stopped(void)
{
	g_autoptr(JsonObject) created =
	    call_ok("vm.create", "{\"name\": \"con-off\", \"memory_mib\": 128, \"wait\": true}");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *cli = vmsup_test_build_path("src", "cli", "vmsup", NULL);
	g_autoptr(GSubprocess) proc = NULL;
	g_autofree gchar *err = NULL;
	const gchar *argv[] = {cli, "--socket", global.socket_path, "console", "con-off", NULL};

	g_assert_cmpint(open_console("con-off", &error), ==, -1);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "vmsup start con-off"));
	g_clear_error(&error);
	g_assert_cmpint(open_console("con-nosuch", &error), ==, -1);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* the CLI: the message, and failed-precondition's exit code */
	proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, NULL, &err, &error));
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(proc));
	g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, 7);
	g_assert_nonnull(strstr(err, "not running"));
	g_clear_pointer(&created, json_object_unref);
	created = call_ok("vm.delete", "{\"name\": \"con-off\"}");
}

/* /vmsup/console/cli-pipe */

static void
test_cli_pipe(void)
{
	g_autofree gchar *cli = vmsup_test_build_path("src", "cli", "vmsup", NULL);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GBytes) input = g_bytes_new_static("echo pipe-$((5*5))\n", 19);
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *text = NULL;

	proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
				&error,
				cli,
				"--socket",
				global.socket_path,
				"console",
				VM,
				"--wait",
				"3",
				NULL);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_communicate(proc, input, NULL, &out, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(proc));
	g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, 0);
	text = g_strndup(g_bytes_get_data(out, NULL), g_bytes_get_size(out));
	g_assert_nonnull(strstr(text, "pipe-25"));
}

/* /vmsup/console/after-kill */

static void
test_after_kill(void)
{
	g_autoptr(GString) seen = g_string_new(NULL);
	g_autoptr(GString) old_seen = g_string_new(NULL);
	g_autoptr(GError) error = NULL;
	gint old = open_console_ok();
	gint fresh;

	g_subprocess_send_signal(global.daemon, SIGKILL);
	g_subprocess_wait(global.daemon, NULL, &error);
	g_assert_no_error(error);
	g_clear_object(&global.daemon);
	/* the viewer of the dead daemon sees the end of its stream */
	g_assert_false(read_until(old, old_seen, "never printed", scaled_ms(TIMEOUT_S)));
	close(old);

	daemon_start();
	fresh = open_console_ok();
	type_until_seen(fresh, seen, "echo again-$((40+2))\n", "again-42");
	close(fresh);
}

int
main(int argc, char **argv)
{
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(GError) error = NULL;
	gint rc;

	vmsup_test_guard_children();
	g_test_init(&argc, &argv, NULL);
	g_free(vmsup_test_require_qemu());
	global.dir = vmsup_test_make_tmpdir();
	global.socket_path = g_build_filename(global.dir, "s.sock", NULL);
	global.state = g_build_filename(global.dir, "state", NULL);
	global.runtime = g_build_filename(global.dir, "run", NULL);
	global.log_path = g_build_filename(global.dir, "vmsupd.log", NULL);
	global.bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_up(global.bus);
	global.conn = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error);
	g_assert_no_error(error);
	daemon_start();
	created = call_ok("vm.create",
			  "{\"name\": \"" VM "\", \"memory_mib\": 128, \"start\": true, "
			  "\"wait\": true}");

	/* first: nobody has attached since the boot */
	g_test_add_func("/vmsup/console/history", test_history);
	g_test_add_func("/vmsup/console/two-viewers", test_two_viewers);
	g_test_add_func("/vmsup/console/dbus", test_dbus);
	g_test_add_func("/vmsup/console/stalled-viewer", test_stalled_viewer);
	g_test_add_func("/vmsup/console/leaves-mid-stream", test_leaves_mid_stream);
	g_test_add_func("/vmsup/console/too-many", test_too_many);
	g_test_add_func("/vmsup/console/stopped", test_stopped);
	g_test_add_func("/vmsup/console/cli-pipe", test_cli_pipe);
	g_test_add_func("/vmsup/console/after-kill", test_after_kill);
	rc = g_test_run();

	g_clear_pointer(&created, json_object_unref);
	created = call_ok("vm.delete", "{\"name\": \"" VM "\", \"force\": true}");
	g_clear_object(&global.client);
	g_subprocess_send_signal(global.daemon, SIGTERM);
	g_subprocess_wait(global.daemon, NULL, &error);
	g_clear_object(&global.daemon);
	g_clear_object(&global.conn);
	g_test_dbus_down(global.bus);
	g_clear_object(&global.bus);
	vmsup_test_rm_rf(global.dir);
	return rc;
}
