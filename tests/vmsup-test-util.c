/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shared test helpers: waiting on the main loop for an event (never
 * sleeping), collecting async results, finding QEMU, private temp dirs.
 */

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <grp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmsup-test-util.h"

#define VMSUP_TEST_NOBODY 65534

/* conditions that depend on something outside the main loop are re-checked this often */
#define VMSUP_TEST_RECHECK_MS 50

guint
vmsup_test_timeout_multiplier(void)
{
	const gchar *env = g_getenv("VMSUP_TEST_TIMEOUT_MULTIPLIER");
	guint64 value = 1;

	if (env != NULL && !g_ascii_string_to_unsigned(env, 10, 1, 100, &value, NULL))
		g_error("VMSUP_TEST_TIMEOUT_MULTIPLIER='%s': expected a whole number from 1 to 100",
			env);
	return (guint)value;
}

static gboolean
vmsup_test_timed_out_cb(gpointer user_data)
{
	gboolean *timed_out = user_data;
	*timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_test_recheck_cb(gpointer user_data)
{
	return G_SOURCE_CONTINUE;
}

void
vmsup_test_wait_until_impl(gboolean (*cond)(gpointer data),
			   gpointer data,
			   guint timeout_s,
			   const gchar *file,
			   gint line,
			   const gchar *func)
{
	gboolean timed_out = FALSE;
	guint timeout_id;

	timeout_s *= vmsup_test_timeout_multiplier();
	timeout_id = g_timeout_add_seconds(timeout_s, vmsup_test_timed_out_cb, &timed_out);
	guint recheck_id = g_timeout_add(VMSUP_TEST_RECHECK_MS, vmsup_test_recheck_cb, NULL);

	while (!cond(data) && !timed_out)
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(recheck_id);
	if (!timed_out)
		g_source_remove(timeout_id);
	else if (!cond(data)) {
		g_autofree gchar *msg = g_strdup_printf("condition not met within %u s", timeout_s);
		g_assertion_message(G_LOG_DOMAIN, file, line, func, msg);
	}
}

gboolean
vmsup_test_flag_is_set(gpointer flag)
{
	return *(const gboolean *)flag;
}

/* the state letter of /proc/PID/stat (R, S, T, Z, ...), or '\0' once the process is gone */
static gchar
vmsup_test_pid_state(gpointer pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/stat", GPOINTER_TO_INT(pid));
	g_autofree gchar *stat = NULL;
	const gchar *end;

	if (!g_file_get_contents(path, &stat, NULL, NULL))
		return '\0';
	end = strrchr(stat, ')');
	return end != NULL && end[1] == ' ' ? end[2] : '?';
}

gboolean
vmsup_test_pid_is_stopped(gpointer pid)
{
	return vmsup_test_pid_state(pid) == 'T';
}

gboolean
vmsup_test_pid_is_gone(gpointer pid)
{
	/* a zombie whose parent is gone waits for a reaper that may never come */
	gchar state = vmsup_test_pid_state(pid);
	return state == '\0' || state == 'Z';
}

void
vmsup_test_store_result_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GAsyncResult **slot = user_data;
	g_assert_null(*slot);
	*slot = g_object_ref(res);
}

static gboolean
vmsup_test_slot_is_set(gpointer slot)
{
	return *(GAsyncResult **)slot != NULL;
}

GAsyncResult *
vmsup_test_wait_result_impl(GAsyncResult **slot,
			    guint timeout_s,
			    const gchar *file,
			    gint line,
			    const gchar *func)
{
	vmsup_test_wait_until_impl(vmsup_test_slot_is_set, slot, timeout_s, file, line, func);
	return g_steal_pointer(slot);
}

void
vmsup_test_child_dies_with_parent(gpointer unused)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		_exit(125);
}

void
vmsup_test_drain_main_context(void)
{
	while (g_main_context_iteration(NULL, FALSE))
		;
}

gchar *
vmsup_test_require_qemu(void)
{
	const gchar *env = g_getenv("VMSUP_QEMU");
	g_autofree gchar *path = NULL;

	if (env != NULL && env[0] != '\0')
		path = g_find_program_in_path(env);
	else
		path = g_find_program_in_path("qemu-system-x86_64");
	if (path == NULL)
		g_test_message("qemu-system-x86_64 not found (PATH or $VMSUP_QEMU); "
			       "install it (data/scripts/install-deps.sh) and run again");
	g_assert_nonnull(path);
	return g_steal_pointer(&path);
}

gchar *
vmsup_test_make_tmpdir(void)
{
	g_autoptr(GError) error = NULL;
	gchar *path = g_dir_make_tmp("vmsup-test-XXXXXX", &error);
	g_assert_no_error(error);
	return path;
}

void
vmsup_test_rm_rf(const gchar *path)
{
	g_autoptr(GDir) dir = NULL;
	const gchar *name;

	if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
		dir = g_dir_open(path, 0, NULL);
		while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
			g_autofree gchar *child = g_build_filename(path, name, NULL);
			vmsup_test_rm_rf(child);
		}
		g_rmdir(path);
		return;
	}
	g_unlink(path);
}

gchar *
vmsup_test_run_tool_output(const gchar *const *argv)
{
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autoptr(GError) error = NULL;
	gint status = -1;

	g_assert_true(g_spawn_sync(NULL,
				   (gchar **)argv,
				   NULL,
				   G_SPAWN_SEARCH_PATH,
				   NULL,
				   NULL,
				   &out,
				   &err,
				   &status,
				   &error));
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("%s failed: %s", argv[0], err);
	return g_steal_pointer(&out);
}

void
vmsup_test_run_tool(const gchar *const *argv)
{
	g_free(vmsup_test_run_tool_output(argv));
}

gchar *
vmsup_test_build_path(const gchar *first, ...)
{
	const gchar *root = g_getenv("VMSUP_BUILDDIR");
	g_autoptr(GPtrArray) parts = g_ptr_array_new();
	va_list args;

	g_assert_nonnull(root);
	g_ptr_array_add(parts, (gpointer)root);
	va_start(args, first);
	for (const gchar *p = first; p != NULL; p = va_arg(args, const gchar *))
		g_ptr_array_add(parts, (gpointer)p);
	va_end(args);
	g_ptr_array_add(parts, NULL);
	return g_build_filenamev((gchar **)parts->pdata);
}

void
vmsup_test_setenv_user_dirs(const gchar *root)
{
	const gchar *const dirs[][2] = {
	    {"XDG_RUNTIME_DIR", "runtime"},
	    {"XDG_STATE_HOME", "state"},
	    {"XDG_DATA_HOME", "data"},
	    {"XDG_CONFIG_HOME", "config"},
	    {"XDG_CACHE_HOME", "cache"},
	    {"HOME", "home"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
		g_autofree gchar *dir = g_build_filename(root, dirs[i][1], NULL);
		g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
		g_setenv(dirs[i][0], dir, TRUE);
	}
}

/* runs in the forked child: syscalls only */
static G_GNUC_NORETURN void
vmsup_test_probe_child(const gchar *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	const gchar request[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\"}\n";
	gchar buf[4096];
	gsize got = 0;
	gint fd;

	if (setgroups(0, NULL) != 0 || setgid(VMSUP_TEST_NOBODY) != 0 ||
	    setuid(VMSUP_TEST_NOBODY) != 0)
		_exit(VMSUP_TEST_PROBE_BROKEN);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		_exit(VMSUP_TEST_PROBE_BROKEN);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		_exit(errno == EACCES ? VMSUP_TEST_PROBE_NO_ACCESS : VMSUP_TEST_PROBE_BROKEN);
	if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) < 0 && errno != EPIPE &&
	    errno != ECONNRESET)
		_exit(VMSUP_TEST_PROBE_BROKEN);
	/* the first line decides; a refusal must then end the stream */
	while (memchr(buf, '\n', got) == NULL && got < sizeof(buf) - 1) {
		gssize n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			_exit(VMSUP_TEST_PROBE_BROKEN);
		got += n;
	}
	buf[got] = '\0';
	if (strstr(buf, "\"result\"") != NULL)
		_exit(VMSUP_TEST_PROBE_ANSWERED);
	if (strstr(buf, "\"code\":5") == NULL || strstr(buf, "uid 65534") == NULL)
		_exit(VMSUP_TEST_PROBE_BROKEN);
	for (;;) {
		gssize n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			_exit(VMSUP_TEST_PROBE_REFUSED);
		if (n < 0)
			_exit(VMSUP_TEST_PROBE_BROKEN);
	}
}

typedef struct {
	gboolean done;
	gint status;
} VmsupTestChild;

static void
vmsup_test_child_exited_cb(GPid pid, gint status, gpointer user_data)
{
	VmsupTestChild *child = user_data;
	child->status = status;
	child->done = TRUE;
	g_spawn_close_pid(pid);
}

VmsupTestProbe
vmsup_test_probe_as_nobody(const gchar *socket_path, guint timeout_s)
{
	VmsupTestChild child = {FALSE, 0};
	pid_t pid = fork();

	g_assert_cmpint(pid, >=, 0);
	if (pid == 0)
		vmsup_test_probe_child(socket_path);
	g_child_watch_add(pid, vmsup_test_child_exited_cb, &child);
	vmsup_test_wait_flag(&child.done, timeout_s);
	g_assert_true(WIFEXITED(child.status));
	return (VmsupTestProbe)WEXITSTATUS(child.status);
}

gboolean
vmsup_test_bus_name_has_owner(GDBusConnection *conn, const gchar *name)
{
	g_autoptr(GVariant) reply = g_dbus_connection_call_sync(conn,
								"org.freedesktop.DBus",
								"/org/freedesktop/DBus",
								"org.freedesktop.DBus",
								"NameHasOwner",
								g_variant_new("(s)", name),
								G_VARIANT_TYPE("(b)"),
								G_DBUS_CALL_FLAGS_NONE,
								-1,
								NULL,
								NULL);
	gboolean owned = FALSE;

	if (reply != NULL)
		g_variant_get(reply, "(b)", &owned);
	return owned;
}
