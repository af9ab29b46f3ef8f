/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Starting vmsupd on demand: the built vmsupd handed a listening socket as
 * systemd does (descriptor 3, LISTEN_PID set in the child between fork and
 * exec), refusing another uid on it; the CLI starting the session daemon
 * through a private session bus (GTestDBus, the service file of
 * tests/services); and the message naming a command that exists.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmsup-json.h"
#include "vmsup-jsonrpc-client.h"
#include "vmsup-test-util.h"

#define TIMEOUT_S 30
#define EXIT_NO_DAEMON 10

typedef struct {
	gchar *dir;
	gchar *socket_path;
	GPid pid;
	gboolean exited;
	gint status;
} Activated;

/* the variable systemd sets in the child; filled in there, so no allocation after fork */
static gchar listen_pid_env[32] = "LISTEN_PID=";

/* runs in the forked child, before exec: syscalls and stack memory only */
static void
listen_child_setup(gpointer user_data)
{
	gint fd = GPOINTER_TO_INT(user_data);
	gchar digits[16];
	gsize n = 0;
	gsize at = strlen("LISTEN_PID=");

	for (pid_t pid = getpid(); pid > 0 && n < sizeof(digits); pid /= 10)
		digits[n++] = (gchar)('0' + pid % 10);
	while (n > 0)
		listen_pid_env[at++] = digits[--n];
	listen_pid_env[at] = '\0';
	/* a failed assertion must not leave it holding the test's output open */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
		_exit(125);
	if (fd != 3 && dup2(fd, 3) != 3)
		_exit(125);
	/* dup2 clears close-on-exec; the same number keeps it, so clear it by hand */
	if (fcntl(3, F_SETFD, 0) != 0)
		_exit(125);
}

static void
activated_exit_cb(GPid pid, gint status, gpointer user_data)
{
	Activated *a = user_data;
	a->status = status;
	a->exited = TRUE;
	g_spawn_close_pid(pid);
}

/* a listening socket at @mode, and vmsupd started on it as systemd would */
static Activated *
activated_start(gboolean system_mode, mode_t mode)
{
	Activated *a = g_new0(Activated, 1);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	g_autofree gchar *vmsupd = vmsup_test_build_path("src", "daemon", "vmsupd", NULL);
	g_autofree gchar *state = NULL;
	g_autofree gchar *runtime = NULL;
	g_autofree gchar *config = NULL;
	g_auto(GStrv) envp = g_get_environ();
	g_autoptr(GPtrArray) env = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	gint fd;

	a->dir = vmsup_test_make_tmpdir();
	/* another uid must reach the socket for the peer check to be what refuses it */
	g_assert_cmpint(g_chmod(a->dir, 0711), ==, 0);
	a->socket_path = g_build_filename(a->dir, "activated.sock", NULL);
	state = g_build_filename(a->dir, "state", NULL);
	runtime = g_build_filename(a->dir, "run", NULL);
	config = g_build_filename(a->dir, "vmsupd.conf", NULL);
	g_assert_true(
	    g_file_set_contents(config, "[vmsupd]\nAccel=tcg\nStatsPollInterval=0\n", -1, &error));
	g_assert_no_error(error);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpuint(strlen(a->socket_path), <, sizeof(addr.sun_path));
	strcpy(addr.sun_path, a->socket_path);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	g_assert_cmpint(listen(fd, 16), ==, 0);
	g_assert_cmpint(g_chmod(a->socket_path, mode), ==, 0);

	for (guint i = 0; envp[i] != NULL; i++)
		if (!g_str_has_prefix(envp[i], "LISTEN_") &&
		    !g_str_has_prefix(envp[i], "VMSUP_SOCKET="))
			g_ptr_array_add(env, envp[i]);
	g_ptr_array_add(env, (gpointer) "LISTEN_FDS=1");
	g_ptr_array_add(env, listen_pid_env);
	g_ptr_array_add(env, NULL);
	{
		const gchar *argv[] = {vmsupd,
				       system_mode ? "--system" : "--session",
				       "--no-dbus",
				       "--state-dir",
				       state,
				       "--runtime-dir",
				       runtime,
				       "--config",
				       config,
				       NULL};
		g_spawn_async(NULL,
			      (gchar **)argv,
			      (gchar **)env->pdata,
			      G_SPAWN_DO_NOT_REAP_CHILD,
			      listen_child_setup,
			      GINT_TO_POINTER(fd),
			      &a->pid,
			      &error);
	}
	g_assert_no_error(error);
	/* systemd keeps its copy; so do we, as the daemon must not depend on it going away */
	close(fd);
	g_child_watch_add(a->pid, activated_exit_cb, a);
	return a;
}

static void
activated_stop(Activated *a)
{
	if (!a->exited) {
		kill(a->pid, SIGTERM);
		vmsup_test_wait_flag(&a->exited, TIMEOUT_S);
	}
	g_assert_true(WIFEXITED(a->status));
	g_assert_cmpint(WEXITSTATUS(a->status), ==, 0);
	vmsup_test_rm_rf(a->dir);
	g_free(a->dir);
	g_free(a->socket_path);
	g_free(a);
}

static JsonObject *
info_of(const gchar *socket_path)
{
	g_autoptr(VmsupJsonrpcClient) client = vmsup_jsonrpc_client_new();
	g_autoptr(GError) error = NULL;
	JsonObject *info;

	vmsup_jsonrpc_client_connect(client, socket_path, &error);
	g_assert_no_error(error);
	info = vmsup_jsonrpc_client_call_object(client, "daemon.info", NULL, &error);
	g_assert_no_error(error);
	return info;
}

/* /vmsup/activation/listen-fds: it serves what it was handed, and leaves the file alone */
static void
test_listen_fds(void)
{
	Activated *a = activated_start(FALSE, 0640);
	g_autoptr(JsonObject) info = info_of(a->socket_path);
	GStatBuf st;

	/* the socket it reports is the one it was handed, not its default path */
	g_assert_cmpstr(json_object_get_string_member(info, "socket"), ==, a->socket_path);
	g_assert_cmpint(json_object_get_int_member(info, "pid"), ==, a->pid);
	g_assert_cmpint(g_stat(a->socket_path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0640);

	kill(a->pid, SIGTERM);
	vmsup_test_wait_flag(&a->exited, TIMEOUT_S);
	/* systemd's file: neither removed nor changed on the way out */
	g_assert_cmpint(g_stat(a->socket_path, &st), ==, 0);
	g_assert_true(S_ISSOCK(st.st_mode));
	g_assert_cmpint(st.st_mode & 07777, ==, 0640);
	activated_stop(a);
}

/*
 * /vmsup/activation/other-uid: the socket systemd made is open to all (0666),
 * yet a socket-activated session daemon serves only its own uid (and root)
 */
static void
test_other_uid(void)
{
	Activated *a = activated_start(FALSE, 0666);
	g_autoptr(JsonObject) info = NULL;

	g_assert_cmpint(geteuid(), ==, 0);
	g_assert_cmpint(vmsup_test_probe_as_nobody(a->socket_path, TIMEOUT_S),
			==,
			VMSUP_TEST_PROBE_REFUSED);
	/* its own user is still served */
	info = info_of(a->socket_path);
	g_assert_cmpstr(json_object_get_string_member(info, "mode"), ==, "session");
	activated_stop(a);
}

/* what the CLI said and how it ended */
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

static void
cli_run(GSubprocessLauncher *launcher, const gchar *const *args, CliRun *run)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;

	g_ptr_array_add(argv, vmsup_test_build_path("src", "cli", "vmsup", NULL));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, g_strdup(args[i]));
	g_ptr_array_add(argv, NULL);
	g_subprocess_launcher_unsetenv(launcher, "LANGUAGE");
	g_subprocess_launcher_unsetenv(launcher, "LC_ALL");
	g_subprocess_launcher_setenv(launcher, "LANG", "C.UTF-8", TRUE);
	proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(proc, NULL, NULL, &run->out, &run->err, &error);
	g_assert_no_error(error);
	run->status = g_subprocess_get_exit_status(proc);
	g_test_message("vmsup %s: exit %d\n%s%s", args[0], run->status, run->out, run->err);
}

static GSubprocessLauncher *
launcher_new(void)
{
	return g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
					 G_SUBPROCESS_FLAGS_STDERR_PIPE);
}

static void
assert_contains(const gchar *haystack, const gchar *needle)
{
	if (strstr(haystack, needle) == NULL)
		g_error("'%s' not found in:\n%s", needle, haystack);
}

/* the command between "start it with '" and "'" names a program that exists here */
static gchar *
assert_start_command_exists(const gchar *err)
{
	const gchar *marker = "start it with '";
	const gchar *start = strstr(err, marker);
	const gchar *end;
	g_autofree gchar *command = NULL;
	g_auto(GStrv) words = NULL;
	g_autofree gchar *program = NULL;

	if (start == NULL)
		g_error("no start command in:\n%s", err);
	start += strlen(marker);
	end = strchr(start, '\'');
	g_assert_nonnull(end);
	command = g_strndup(start, end - start);
	words = g_strsplit(command, " ", -1);
	program = g_find_program_in_path(words[0]);
	if (program == NULL)
		g_error("'%s' names '%s', which is not a program here", command, words[0]);
	if (g_str_equal(words[0], "systemctl"))
		g_assert_true(g_str_has_suffix(command, " start vmsupd.socket"));
	else
		g_assert_true(g_str_has_suffix(command, "/vmsupd --session") ||
			      g_str_has_suffix(command, "/vmsupd --system"));
	return g_steal_pointer(&command);
}

/*
 * /vmsup/activation/cannot-reach: no daemon and no bus; the message names a
 * command that exists (the built vmsupd in PATH here, as `meson devenv` has
 * it), or else the one installed in libexec
 */
static void
test_cannot_reach(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *daemon_dir = vmsup_test_build_path("src", "daemon", NULL);
	g_autofree gchar *path = g_strdup_printf("%s:/usr/bin:/bin", daemon_dir);
	const gchar *list[] = {"list", NULL};
	const gchar *system_info[] = {"--system", "info", NULL};
	CliRun run = {0};

	{
		g_autoptr(GSubprocessLauncher) launcher = launcher_new();
		g_autofree gchar *command = NULL;
		g_subprocess_launcher_set_environ(launcher, NULL);
		g_subprocess_launcher_setenv(launcher, "PATH", path, TRUE);
		g_subprocess_launcher_setenv(launcher, "HOME", dir, TRUE);
		g_subprocess_launcher_setenv(launcher, "XDG_RUNTIME_DIR", dir, TRUE);
		cli_run(launcher, list, &run);
		g_assert_cmpint(run.status, ==, EXIT_NO_DAEMON);
		assert_contains(run.err, "cannot connect to vmsupd at ");
		assert_contains(run.err, "there is no session bus");
		command = assert_start_command_exists(run.err);
		g_assert_true(g_str_has_prefix(command, "systemctl") ||
			      g_str_equal(command, VMSUP_LIBEXECDIR "/vmsupd --session") ||
			      g_str_has_prefix(command, daemon_dir));
		cli_run_clear(&run);

		cli_run(launcher, system_info, &run);
		g_assert_cmpint(run.status, ==, EXIT_NO_DAEMON);
		assert_contains(run.err, "/run/vmsup/vmsupd.sock");
		g_free(assert_start_command_exists(run.err));
		cli_run_clear(&run);
	}
	{
		/* nothing in PATH: where `meson install` puts it, not a bare name */
		g_autoptr(GSubprocessLauncher) launcher = launcher_new();
		g_autofree gchar *in_path = g_find_program_in_path("vmsupd");
		g_subprocess_launcher_set_environ(launcher, NULL);
		g_subprocess_launcher_setenv(launcher, "PATH", "/usr/bin:/bin", TRUE);
		g_subprocess_launcher_setenv(launcher, "HOME", dir, TRUE);
		g_subprocess_launcher_setenv(launcher, "XDG_RUNTIME_DIR", dir, TRUE);
		cli_run(launcher, list, &run);
		g_assert_cmpint(run.status, ==, EXIT_NO_DAEMON);
		if (strstr(run.err, "'systemctl --user start vmsupd.socket'") == NULL &&
		    in_path == NULL)
			assert_contains(run.err,
					"start it with '" VMSUP_LIBEXECDIR "/vmsupd --session'");
		g_assert_null(strstr(run.err, "with 'vmsupd "));
		cli_run_clear(&run);
	}
	vmsup_test_rm_rf(dir);
}

/*
 * /vmsup/activation/cli-dbus: with no daemon, `vmsup list` has the session
 * bus start one and answers; an explicit --socket never does
 */
static void
test_cli_dbus(void)
{
	g_autofree gchar *tmpdir = vmsup_test_make_tmpdir();
	g_autofree gchar *services = g_test_build_filename(G_TEST_BUILT, "services", NULL);
	g_autofree gchar *config_dir = g_build_filename(tmpdir, "config", "vmsup", NULL);
	g_autofree gchar *config = g_build_filename(config_dir, "vmsupd.conf", NULL);
	g_autofree gchar *nobody_here = g_build_filename(tmpdir, "nobody-here.sock", NULL);
	g_autofree gchar *runtime_dir = g_build_filename(tmpdir, "runtime", NULL);
	g_autofree gchar *socket_path = g_build_filename(runtime_dir, "vmsup", "vmsupd.sock", NULL);
	g_autoptr(GTestDBus) bus = NULL;
	g_autoptr(GDBusConnection) conn = NULL;
	g_autoptr(GVariant) owned = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) info = NULL;
	const gchar *explicit_args[] = {"--socket", nobody_here, "list", NULL};
	const gchar *list[] = {"list", NULL};
	CliRun run = {0};
	gboolean has_owner = TRUE;
	gint64 before;
	gint pid;

	/* the activated daemon inherits the bus's environment, which is ours */
	vmsup_test_setenv_user_dirs(tmpdir);
	g_unsetenv("VMSUP_SOCKET");
	g_assert_cmpint(g_mkdir_with_parents(config_dir, 0700), ==, 0);
	g_assert_true(
	    g_file_set_contents(config, "[vmsupd]\nAccel=tcg\nStatsPollInterval=0\n", -1, &error));
	g_assert_no_error(error);

	bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_add_service_dir(bus, services);
	g_test_dbus_up(bus);
	conn = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error);
	g_assert_no_error(error);

	/* a socket named explicitly is never a reason to start anything */
	{
		g_autoptr(GSubprocessLauncher) launcher = launcher_new();
		cli_run(launcher, explicit_args, &run);
		g_assert_cmpint(run.status, ==, EXIT_NO_DAEMON);
		g_assert_null(strstr(run.err, "session bus"));
		cli_run_clear(&run);
	}
	owned = g_dbus_connection_call_sync(conn,
					    "org.freedesktop.DBus",
					    "/org/freedesktop/DBus",
					    "org.freedesktop.DBus",
					    "NameHasOwner",
					    g_variant_new("(s)", "io.github.vmsup.Supervisor1"),
					    G_VARIANT_TYPE("(b)"),
					    G_DBUS_CALL_FLAGS_NONE,
					    -1,
					    NULL,
					    &error);
	g_assert_no_error(error);
	g_variant_get(owned, "(b)", &has_owner);
	g_assert_false(has_owner);
	g_assert_false(g_file_test(socket_path, G_FILE_TEST_EXISTS));

	/* the default socket of the session: the bus starts vmsupd, the CLI waits and asks */
	before = g_get_monotonic_time();
	{
		g_autoptr(GSubprocessLauncher) launcher = launcher_new();
		/* GTestDBus unset it (lest the user's own bus be found); the CLI shares it with
		 * vmsupd */
		g_subprocess_launcher_setenv(launcher, "XDG_RUNTIME_DIR", runtime_dir, TRUE);
		cli_run(launcher, list, &run);
	}
	g_test_message("first vmsup list, vmsupd started by D-Bus: %.2f s",
		       (g_get_monotonic_time() - before) / 1e6);
	g_assert_cmpint(run.status, ==, 0);
	assert_contains(run.out, "NAME  STATE");
	cli_run_clear(&run);

	info = info_of(socket_path);
	pid = (gint)json_object_get_int_member(info, "pid");
	g_assert_cmpstr(json_object_get_string_member(info, "mode"), ==, "session");

	/* a session daemon ends with its bus */
	g_clear_object(&conn);
	g_test_dbus_down(bus);
	vmsup_test_wait_until(vmsup_test_pid_is_gone, GINT_TO_POINTER(pid), TIMEOUT_S);
	vmsup_test_rm_rf(tmpdir);
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

	g_test_add_func("/vmsup/activation/listen-fds", test_listen_fds);
	g_test_add_func("/vmsup/activation/other-uid", test_other_uid);
	g_test_add_func("/vmsup/activation/cannot-reach", test_cannot_reach);
	g_test_add_func("/vmsup/activation/cli-dbus", test_cli_dbus);
	return g_test_run();
}
