/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmsupd --system on a system-style bus: a dbus-daemon of type system with
 * Debian's default policy and the project's bus policy, a polkit stand-in
 * that allows everything (real polkit has its own test: this one is about
 * what a caller allowed to call may see), and callers as root and as
 * nobody through gdbus. A caller other than root sees its own VMs only:
 * in List, in GetManagedObjects, through Properties, in the supervisor's
 * VmCount and RunningCount, and it receives none of vmsupd's signals.
 */

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-test-util.h"

#define NOBODY 65534
#define TIMEOUT_S 60
#define BUS_NAME "io.github.vmsup.Supervisor1"
#define SUPERVISOR_PATH "/io/github/vmsup/Supervisor1"
#define VM_IFACE "io.github.vmsup.VM1"

typedef struct {
	gchar *dir;
	gchar *address;
	GSubprocess *bus;
	GDBusConnection *conn; /* root's */
	GSubprocess *daemon;
	/* the polkit stand-in answers from a thread of its own: the test blocks on its clients */
	GThread *polkit_thread;
	GMainContext *polkit_context;
	GMainLoop *polkit_loop;
	gboolean polkit_ready;
} SystemBus;

static SystemBus sys;

static void
write_file(const gchar *path, const gchar *text)
{
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(path, 0644), ==, 0);
}

/* runs in the forked child before exec: syscalls only; a test that fails leaves nothing running */
static void
child_setup(gpointer user_data)
{
	guint32 uid = GPOINTER_TO_UINT(user_data);

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		_exit(121);
	if (uid != 0 && (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0))
		_exit(121);
}

static GSubprocessLauncher *
launcher_as(guint32 uid, GSubprocessFlags flags)
{
	GSubprocessLauncher *launcher = g_subprocess_launcher_new(flags);

	g_subprocess_launcher_setenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS", sys.address, TRUE);
	g_subprocess_launcher_setenv(launcher, "LC_ALL", "C.UTF-8", TRUE);
	g_subprocess_launcher_set_child_setup(launcher, child_setup, GUINT_TO_POINTER(uid), NULL);
	return launcher;
}

typedef struct {
	gboolean ok;
	gchar *out;
	gchar *err;
} GdbusResult;

static void
gdbus_result_clear(GdbusResult *result)
{
	g_clear_pointer(&result->out, g_free);
	g_clear_pointer(&result->err, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(GdbusResult, gdbus_result_clear)

/* gdbus call --system ... as @uid */
static void
gdbus_call(GdbusResult *result,
	   guint32 uid,
	   const gchar *path,
	   const gchar *method,
	   const gchar *first_arg,
	   ...)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    launcher_as(uid, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	va_list args;

	g_ptr_array_add(argv, (gpointer) "gdbus");
	g_ptr_array_add(argv, (gpointer) "call");
	g_ptr_array_add(argv, (gpointer) "--system");
	g_ptr_array_add(argv, (gpointer) "--timeout");
	g_ptr_array_add(argv, (gpointer) "30");
	g_ptr_array_add(argv, (gpointer) "--dest");
	g_ptr_array_add(argv, (gpointer)BUS_NAME);
	g_ptr_array_add(argv, (gpointer) "--object-path");
	g_ptr_array_add(argv, (gpointer)path);
	g_ptr_array_add(argv, (gpointer) "--method");
	g_ptr_array_add(argv, (gpointer)method);
	va_start(args, first_arg);
	for (const gchar *a = first_arg; a != NULL; a = va_arg(args, const gchar *))
		g_ptr_array_add(argv, (gpointer)a);
	va_end(args);
	g_ptr_array_add(argv, NULL);

	proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(proc, NULL, NULL, &result->out, &result->err, &error);
	g_assert_no_error(error);
	result->ok = g_subprocess_get_if_exited(proc) && g_subprocess_get_exit_status(proc) == 0;
	g_test_message("uid %u %s: %s%s",
		       uid,
		       method,
		       result->ok ? result->out : "failed: ",
		       result->ok ? "" : result->err);
}

/* the polkit stand-in: every caller is authorized */

static void
polkit_method_cb(GDBusConnection *connection,
		 const gchar *sender,
		 const gchar *object_path,
		 const gchar *interface_name,
		 const gchar *method_name,
		 GVariant *parameters,
		 GDBusMethodInvocation *invocation,
		 gpointer user_data)
{
	g_dbus_method_invocation_return_value(
	    invocation,
	    g_variant_new("((bb@a{ss}))",
			  TRUE,
			  FALSE,
			  g_variant_new_array(G_VARIANT_TYPE("{ss}"), NULL, 0)));
}

static const gchar polkit_xml[] =
    "<node><interface name='org.freedesktop.PolicyKit1.Authority'>"
    "<method name='CheckAuthorization'>"
    "<arg type='(sa{sv})' direction='in'/><arg type='s' direction='in'/>"
    "<arg type='a{ss}' direction='in'/><arg type='u' direction='in'/>"
    "<arg type='s' direction='in'/><arg type='(bba{ss})' direction='out'/>"
    "</method></interface></node>";

static gboolean
name_owned(gpointer user_data)
{
	return vmsup_test_bus_name_has_owner(sys.conn, user_data);
}

/*
 * Debian's system.conf, less what needs the host: the default context may
 * talk to the bus and receive what is sent to it, and services open holes
 * for their own methods (the project's policy, included last, as system.d is)
 */
static void
write_bus_config(const gchar *path, const gchar *socket_path)
{
	g_autofree gchar *policy = NULL;
	g_autofree gchar *text = NULL;
	const gchar *srcdir = g_getenv("G_TEST_SRCDIR");

	g_assert_nonnull(srcdir);
	policy = g_build_filename(srcdir, "..", "data", "io.github.vmsup.Supervisor1.conf", NULL);
	text = g_strdup_printf(
	    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	    " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	    "<busconfig>\n"
	    "  <type>system</type>\n"
	    "  <listen>unix:path=%s</listen>\n"
	    "  <auth>EXTERNAL</auth>\n"
	    "  <policy context=\"default\">\n"
	    "    <allow user=\"*\"/>\n"
	    "    <deny own=\"*\"/>\n"
	    "    <deny send_type=\"method_call\"/>\n"
	    "    <allow send_type=\"signal\"/>\n"
	    "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
	    "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
	    "    <allow receive_type=\"method_call\"/>\n"
	    "    <allow receive_type=\"method_return\"/>\n"
	    "    <allow receive_type=\"error\"/>\n"
	    "    <allow receive_type=\"signal\"/>\n"
	    "    <allow send_destination=\"org.freedesktop.DBus\"\n"
	    "           send_interface=\"org.freedesktop.DBus\"/>\n"
	    "    <allow send_destination=\"org.freedesktop.DBus\"\n"
	    "           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
	    "  </policy>\n"
	    "  <policy user=\"root\">\n"
	    "    <allow own=\"org.freedesktop.PolicyKit1\"/>\n"
	    "    <allow send_destination=\"org.freedesktop.PolicyKit1\"/>\n"
	    "  </policy>\n"
	    "  <include>%s</include>\n"
	    "</busconfig>\n",
	    socket_path,
	    policy);
	write_file(path, text);
}

static gpointer
polkit_thread_func(gpointer user_data)
{
	static const GDBusInterfaceVTable vtable = {polkit_method_cb, NULL, NULL, {NULL}};
	g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(polkit_xml, NULL);
	g_autoptr(GDBusConnection) conn = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	guint id;

	g_main_context_push_thread_default(sys.polkit_context);
	conn = g_dbus_connection_new_for_address_sync(
	    sys.address,
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL,
	    NULL,
	    &error);
	g_assert_no_error(error);
	id = g_dbus_connection_register_object(conn,
					       "/org/freedesktop/PolicyKit1/Authority",
					       node->interfaces[0],
					       &vtable,
					       NULL,
					       NULL,
					       &error);
	g_assert_no_error(error);
	reply = g_dbus_connection_call_sync(conn,
					    "org.freedesktop.DBus",
					    "/org/freedesktop/DBus",
					    "org.freedesktop.DBus",
					    "RequestName",
					    g_variant_new("(su)", "org.freedesktop.PolicyKit1", 4u),
					    G_VARIANT_TYPE("(u)"),
					    G_DBUS_CALL_FLAGS_NONE,
					    -1,
					    NULL,
					    &error);
	g_assert_no_error(error);
	g_atomic_int_set(&sys.polkit_ready, TRUE);
	g_main_loop_run(sys.polkit_loop);
	g_dbus_connection_unregister_object(conn, id);
	g_dbus_connection_close_sync(conn, NULL, NULL);
	g_main_context_pop_thread_default(sys.polkit_context);
	return NULL;
}

static void
system_bus_start(void)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autofree gchar *config = NULL;
	g_autofree gchar *socket_path = NULL;
	g_autofree gchar *daemon = vmsup_test_build_path("src", "daemon", "vmsupd", NULL);
	g_autofree gchar *state = NULL;
	g_autofree gchar *runtime = NULL;
	g_autofree gchar *vmsupd_conf = NULL;
	g_autofree gchar *vmsupd_socket = NULL;
	g_autofree gchar *vmsupd_log = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;

	sys.dir = vmsup_test_make_tmpdir();
	/* nobody reaches the bus socket in it */
	g_assert_cmpint(g_chmod(sys.dir, 0755), ==, 0);
	config = g_build_filename(sys.dir, "bus.conf", NULL);
	socket_path = g_build_filename(sys.dir, "bus", NULL);
	write_bus_config(config, socket_path);
	sys.address = g_strconcat("unix:path=", socket_path, NULL);

	/* its output is not the test's: an aborted test must not wait for the bus to close it */
	launcher =
	    launcher_as(0, G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
	sys.bus = g_subprocess_launcher_spawn(launcher,
					      &error,
					      "dbus-daemon",
					      "--nofork",
					      "--nopidfile",
					      "--config-file",
					      config,
					      NULL);
	g_clear_object(&launcher);
	g_assert_no_error(error);
	for (guint i = 0; i < TIMEOUT_S * 10 && sys.conn == NULL; i++) {
		g_clear_error(&error);
		sys.conn = g_dbus_connection_new_for_address_sync(
		    sys.address,
		    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		    NULL,
		    NULL,
		    &error);
		if (sys.conn == NULL)
			g_usleep(G_USEC_PER_SEC / 10);
	}
	g_assert_no_error(error);

	sys.polkit_context = g_main_context_new();
	sys.polkit_loop = g_main_loop_new(sys.polkit_context, FALSE);
	sys.polkit_thread = g_thread_new("polkit", polkit_thread_func, NULL);
	vmsup_test_wait_flag(&sys.polkit_ready, TIMEOUT_S);

	state = g_build_filename(sys.dir, "state", NULL);
	runtime = g_build_filename(sys.dir, "run", NULL);
	vmsupd_conf = g_build_filename(sys.dir, "vmsupd.conf", NULL);
	vmsupd_socket = g_build_filename(sys.dir, "vmsupd.sock", NULL);
	vmsupd_log = g_build_filename(sys.dir, "vmsupd.log", NULL);
	write_file(vmsupd_conf, "[vmsupd]\nAccel=tcg\nStatsPollInterval=0\n");
	launcher = launcher_as(0, G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_subprocess_launcher_set_stderr_file_path(launcher, vmsupd_log);
	sys.daemon = g_subprocess_launcher_spawn(launcher,
						 &error,
						 daemon,
						 "--system",
						 "--state-dir",
						 state,
						 "--runtime-dir",
						 runtime,
						 "--config",
						 vmsupd_conf,
						 "--socket",
						 vmsupd_socket,
						 NULL);
	g_assert_no_error(error);
	vmsup_test_wait_until(name_owned, (gpointer)BUS_NAME, TIMEOUT_S);
}

static void
system_bus_stop(void)
{
	g_autoptr(GError) error = NULL;

	g_subprocess_send_signal(sys.daemon, SIGTERM);
	g_subprocess_wait(sys.daemon, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(sys.daemon));
	g_main_loop_quit(sys.polkit_loop);
	g_thread_join(g_steal_pointer(&sys.polkit_thread));
	g_clear_pointer(&sys.polkit_loop, g_main_loop_unref);
	g_clear_pointer(&sys.polkit_context, g_main_context_unref);
	g_dbus_connection_close_sync(sys.conn, NULL, NULL);
	g_clear_object(&sys.conn);
	g_subprocess_send_signal(sys.bus, SIGTERM);
	g_subprocess_wait(sys.bus, NULL, NULL);
	g_clear_object(&sys.bus);
	g_clear_object(&sys.daemon);
	vmsup_test_rm_rf(sys.dir);
	g_clear_pointer(&sys.dir, g_free);
	g_clear_pointer(&sys.address, g_free);
}

/* gdbus monitor as @uid, its output in @path */
static GSubprocess *
monitor_start(guint32 uid, const gchar *path)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    launcher_as(uid, G_SUBPROCESS_FLAGS_STDERR_SILENCE);
	g_autoptr(GError) error = NULL;
	GSubprocess *proc;

	g_subprocess_launcher_set_stdout_file_path(launcher, path);
	/* line-buffered: the lines are read while it runs, and it ends by a signal */
	proc = g_subprocess_launcher_spawn(launcher,
					   &error,
					   "stdbuf",
					   "-oL",
					   "gdbus",
					   "monitor",
					   "--system",
					   "--dest",
					   BUS_NAME,
					   NULL);
	g_assert_no_error(error);
	return proc;
}

typedef struct {
	const gchar *path;
	const gchar *needle;
	guint count;
} FileWatch;

static guint
count_in_file(const gchar *path, const gchar *needle)
{
	g_autofree gchar *text = NULL;
	guint n = 0;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	for (const gchar *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

static gboolean
file_has(gpointer user_data)
{
	FileWatch *watch = user_data;
	return count_in_file(watch->path, watch->needle) >= watch->count;
}

static void
set_flag_cb(gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
}

static void
monitor_stop(GSubprocess *proc)
{
	g_subprocess_send_signal(proc, SIGTERM);
	g_subprocess_wait(proc, NULL, NULL);
}

static void
test_others_vms_are_invisible(void)
{
	g_auto(GdbusResult) res = {0};
	g_autofree gchar *root_log = NULL;
	g_autofree gchar *nobody_log = NULL;
	g_autoptr(GSubprocess) root_monitor = NULL;
	g_autoptr(GSubprocess) nobody_monitor = NULL;

	system_bus_start();

	/* one VM each, defined and never started: no QEMU is needed to look at them */
	gdbus_call(&res,
		   0,
		   SUPERVISOR_PATH,
		   BUS_NAME ".Create",
		   "rootvm",
		   "{'wait': <true>}",
		   NULL);
	g_assert_true(res.ok);
	gdbus_result_clear(&res);
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH,
		   BUS_NAME ".Create",
		   "nobodyvm",
		   "{'wait': <true>}",
		   NULL);
	g_assert_true(res.ok);
	gdbus_result_clear(&res);

	/* methods: the table's owner rule, as over the socket */
	gdbus_call(&res, NOBODY, SUPERVISOR_PATH, BUS_NAME ".List", "{}", NULL);
	g_assert_true(res.ok);
	g_assert_nonnull(strstr(res.out, "'nobodyvm'"));
	g_assert_null(strstr(res.out, "rootvm"));
	gdbus_result_clear(&res);
	gdbus_call(&res, NOBODY, SUPERVISOR_PATH, BUS_NAME ".Get", "rootvm", "{}", NULL);
	g_assert_false(res.ok);
	g_assert_nonnull(strstr(res.err, "belongs to uid 0, not to you (uid 65534)"));
	gdbus_result_clear(&res);

	/* the object list: nobody's own VM only; root sees both */
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH,
		   "org.freedesktop.DBus.ObjectManager.GetManagedObjects",
		   NULL);
	g_assert_true(res.ok);
	g_assert_nonnull(strstr(res.out, SUPERVISOR_PATH "/vm/nobodyvm"));
	g_assert_null(strstr(res.out, "rootvm"));
	gdbus_result_clear(&res);
	gdbus_call(&res,
		   0,
		   SUPERVISOR_PATH,
		   "org.freedesktop.DBus.ObjectManager.GetManagedObjects",
		   NULL);
	g_assert_true(res.ok);
	g_assert_nonnull(strstr(res.out, SUPERVISOR_PATH "/vm/nobodyvm"));
	g_assert_nonnull(strstr(res.out, SUPERVISOR_PATH "/vm/rootvm"));
	gdbus_result_clear(&res);

	/* the supervisor's counts: nobody's own VMs; root's everyone's */
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH,
		   "org.freedesktop.DBus.Properties.GetAll",
		   BUS_NAME,
		   NULL);
	g_assert_true(res.ok);
	g_assert_nonnull(strstr(res.out, "'VmCount': <uint32 1>"));
	g_assert_nonnull(strstr(res.out, "'RunningCount': <uint32 0>"));
	g_assert_nonnull(strstr(res.out, "'Accel': <'tcg'>"));
	gdbus_result_clear(&res);
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH,
		   "org.freedesktop.DBus.Properties.Get",
		   BUS_NAME,
		   "VmCount",
		   NULL);
	g_assert_true(res.ok);
	g_assert_nonnull(strstr(res.out, "<uint32 1>"));
	gdbus_result_clear(&res);
	gdbus_call(&res,
		   0,
		   SUPERVISOR_PATH,
		   "org.freedesktop.DBus.Properties.GetAll",
		   BUS_NAME,
		   NULL);
	g_assert_true(res.ok);
	g_assert_nonnull(strstr(res.out, "'VmCount': <uint32 2>"));
	gdbus_result_clear(&res);

	/* properties: of its own VM, not of root's, whichever way asked */
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH "/vm/nobodyvm",
		   "org.freedesktop.DBus.Properties.Get",
		   VM_IFACE,
		   "State",
		   NULL);
	g_assert_true(res.ok);
	g_assert_nonnull(strstr(res.out, "'defined'"));
	gdbus_result_clear(&res);
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH "/vm/rootvm",
		   "org.freedesktop.DBus.Properties.Get",
		   VM_IFACE,
		   "State",
		   NULL);
	g_assert_false(res.ok);
	g_assert_nonnull(strstr(res.err, "belongs to uid 0, not to you (uid 65534)"));
	gdbus_result_clear(&res);
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH "/vm/rootvm",
		   "org.freedesktop.DBus.Properties.GetAll",
		   VM_IFACE,
		   NULL);
	g_assert_false(res.ok);
	g_assert_nonnull(strstr(res.err, "belongs to uid 0"));
	gdbus_result_clear(&res);
	gdbus_call(&res,
		   0,
		   SUPERVISOR_PATH "/vm/nobodyvm",
		   "org.freedesktop.DBus.Properties.GetAll",
		   VM_IFACE,
		   NULL);
	g_assert_true(res.ok);
	g_assert_nonnull(strstr(res.out, "'State': <'defined'>"));
	gdbus_result_clear(&res);
	/* the live statistics alike: 0 for a VM that does not run */
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH "/vm/nobodyvm",
		   "org.freedesktop.DBus.Properties.Get",
		   VM_IFACE,
		   "UptimeSeconds",
		   NULL);
	g_assert_true(res.ok);
	g_assert_nonnull(strstr(res.out, "<uint64 0>"));
	gdbus_result_clear(&res);
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH "/vm/rootvm",
		   "org.freedesktop.DBus.Properties.Get",
		   VM_IFACE,
		   "RssBytes",
		   NULL);
	g_assert_false(res.ok);
	g_assert_nonnull(strstr(res.err, "belongs to uid 0"));
	gdbus_result_clear(&res);

	/* the node listing the VM objects would name them all */
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH "/vm",
		   "org.freedesktop.DBus.Introspectable.Introspect",
		   NULL);
	g_assert_false(res.ok);
	g_assert_nonnull(strstr(res.err, "AccessDenied"));
	gdbus_result_clear(&res);
	gdbus_call(&res,
		   0,
		   SUPERVISOR_PATH "/vm",
		   "org.freedesktop.DBus.Introspectable.Introspect",
		   NULL);
	g_assert_true(res.ok);
	g_assert_nonnull(strstr(res.out, "rootvm"));
	gdbus_result_clear(&res);

	/* signals: root hears every change, nobody none, not even of its own VM */
	root_log = g_build_filename(sys.dir, "root-monitor.log", NULL);
	nobody_log = g_build_filename(sys.dir, "nobody-monitor.log", NULL);
	root_monitor = monitor_start(0, root_log);
	nobody_monitor = monitor_start(NOBODY, nobody_log);
	{
		FileWatch root_ready = {root_log, "is owned by", 1};
		FileWatch nobody_ready = {nobody_log, "is owned by", 1};
		vmsup_test_wait_until(file_has, &root_ready, TIMEOUT_S);
		vmsup_test_wait_until(file_has, &nobody_ready, TIMEOUT_S);
	}
	gdbus_call(&res, 0, SUPERVISOR_PATH, BUS_NAME ".Set", "rootvm", "{'cpus': <2>}", NULL);
	g_assert_true(res.ok);
	gdbus_result_clear(&res);
	gdbus_call(&res,
		   NOBODY,
		   SUPERVISOR_PATH,
		   BUS_NAME ".Set",
		   "nobodyvm",
		   "{'cpus': <2>}",
		   NULL);
	g_assert_true(res.ok);
	gdbus_result_clear(&res);
	gdbus_call(&res, 0, SUPERVISOR_PATH, BUS_NAME ".Delete", "rootvm", "{}", NULL);
	g_assert_true(res.ok);
	gdbus_result_clear(&res);
	{
		/* the last change root hears is the removal; the bus sent nobody's copy by then */
		FileWatch root_changes = {root_log, "VmChanged", 2};
		FileWatch root_removed = {root_log, "InterfacesRemoved", 1};
		FileWatch root_count = {root_log, "('" BUS_NAME "', {'VmCount': <uint32 1>}", 1};
		vmsup_test_wait_until(file_has, &root_changes, TIMEOUT_S);
		vmsup_test_wait_until(file_has, &root_removed, TIMEOUT_S);
		vmsup_test_wait_until(file_has, &root_count, TIMEOUT_S);
	}
	/* nobody's copies, were they sent, left the bus with root's: give them a moment to land */
	{
		gboolean settled = FALSE;
		g_timeout_add_once(500, set_flag_cb, &settled);
		vmsup_test_wait_flag(&settled, TIMEOUT_S);
	}
	g_assert_cmpuint(count_in_file(root_log, "PropertiesChanged"), >=, 2);
	g_assert_cmpuint(count_in_file(root_log, "nobodyvm"), >=, 1);
	monitor_stop(root_monitor);
	monitor_stop(nobody_monitor);
	g_assert_cmpuint(count_in_file(nobody_log, "is owned by"), ==, 1);
	g_assert_cmpuint(count_in_file(nobody_log, "VmChanged"), ==, 0);
	g_assert_cmpuint(count_in_file(nobody_log, "PropertiesChanged"), ==, 0);
	g_assert_cmpuint(count_in_file(nobody_log, "Interfaces"), ==, 0);
	g_assert_cmpuint(count_in_file(nobody_log, "rootvm"), ==, 0);
	g_assert_cmpuint(count_in_file(nobody_log, "VmCount"), ==, 0);

	system_bus_stop();
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmsup/dbus-system/others-vms-are-invisible",
			test_others_vms_are_invisible);
	return g_test_run();
}
