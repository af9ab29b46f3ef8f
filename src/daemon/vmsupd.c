/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmsupd: parses options, runs the daemon on the main loop, leaves on
 * SIGTERM/SIGINT with VMs left running for the next start to re-adopt.
 */

#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <sys/resource.h>

#include "vmsup-daemon.h"
#include "vmsup-error.h"
#include "vmsup-listen-fds.h"

typedef struct {
	GMainLoop *loop;
	VmsupDaemon *daemon;
	gint exit_code;
	gboolean quitting;
} VmsupdMain;

static void
vmsupd_shutdown_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupdMain *m = user_data;
	g_autoptr(GError) error = NULL;
	if (!vmsup_daemon_shutdown_finish(VMSUP_DAEMON(source), res, &error))
		g_warning("shutdown: %s", error->message);
	g_main_loop_quit(m->loop);
}

static gboolean
vmsupd_signal_cb(gpointer user_data)
{
	VmsupdMain *m = user_data;
	if (m->quitting)
		return G_SOURCE_CONTINUE;
	m->quitting = TRUE;
	g_message("vmsupd stopping; running VMs stay up and are re-adopted at next start");
	vmsup_daemon_shutdown_async(m->daemon, NULL, vmsupd_shutdown_cb, m);
	return G_SOURCE_CONTINUE;
}

static void
vmsupd_started_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupdMain *m = user_data;
	g_autoptr(GError) error = NULL;

	if (!vmsup_daemon_start_finish(VMSUP_DAEMON(source), res, &error)) {
		g_printerr("vmsupd: %s\n", error->message);
		m->exit_code = 1;
		g_main_loop_quit(m->loop);
		return;
	}
	g_message("vmsupd %s ready on %s",
		  PACKAGE_VERSION,
		  vmsup_daemon_get_socket_path(m->daemon));
}

/*
 * Each VM holds a few descriptors (QMP, agent, its /proc files) and each
 * client one; the default soft limit of 1024 would cap the VM count. The
 * main loop polls, never select()s, so the hard limit is safe to use.
 */
static void
vmsupd_raise_fd_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max)
		return;
	limit.rlim_cur = limit.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
		g_warning("Cannot raise the open file limit to %llu: %s",
			  (unsigned long long)limit.rlim_max,
			  g_strerror(errno));
}

int
main(int argc, char **argv)
{
	gboolean opt_session = FALSE;
	gboolean opt_system = FALSE;
	gboolean opt_no_dbus = FALSE;
	gboolean opt_verbose = FALSE;
	gboolean opt_version = FALSE;
	g_autofree gchar *opt_state_dir = NULL;
	g_autofree gchar *opt_runtime_dir = NULL;
	g_autofree gchar *opt_socket = NULL;
	g_autofree gchar *opt_config = NULL;
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupDaemonConfig) config = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(VmsupDaemon) daemon = NULL;
	VmsupDaemonOptions options = {0};
	VmsupdMain m = {0};
	const GOptionEntry entries[] = {
	    {"session",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_session,
	     N_("Serve the user's session (the default)"),
	     NULL},
	    {"system", 0, 0, G_OPTION_ARG_NONE, &opt_system, N_("Serve the whole system"), NULL},
	    {"state-dir",
	     0,
	     0,
	     G_OPTION_ARG_FILENAME,
	     &opt_state_dir,
	     N_("Where VM definitions and disks are kept"),
	     N_("DIR")},
	    {"runtime-dir",
	     0,
	     0,
	     G_OPTION_ARG_FILENAME,
	     &opt_runtime_dir,
	     N_("Where sockets and pid files are kept"),
	     N_("DIR")},
	    {"socket",
	     0,
	     0,
	     G_OPTION_ARG_FILENAME,
	     &opt_socket,
	     N_("JSON-RPC socket path"),
	     N_("PATH")},
	    {"config",
	     0,
	     0,
	     G_OPTION_ARG_FILENAME,
	     &opt_config,
	     N_("Configuration file"),
	     N_("FILE")},
	    {"no-dbus", 0, 0, G_OPTION_ARG_NONE, &opt_no_dbus, N_("Do not use D-Bus"), NULL},
	    {"verbose",
	     'v',
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_verbose,
	     N_("Show informational messages"),
	     NULL},
	    {"version", 0, 0, G_OPTION_ARG_NONE, &opt_version, N_("Show the version"), NULL},
	    {NULL},
	};

	setlocale(LC_ALL, "");
	bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
	textdomain(GETTEXT_PACKAGE);

	context = g_option_context_new(NULL);
	g_option_context_set_summary(context, _("vmsup daemon: supervises QEMU virtual machines"));
	g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		g_printerr("vmsupd: %s\n", error->message);
		return 2;
	}
	if (opt_version) {
		g_print("vmsupd %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (opt_session && opt_system) {
		g_printerr("vmsupd: %s\n", _("--session and --system exclude each other"));
		return 2;
	}
	if (opt_verbose)
		g_setenv("G_MESSAGES_DEBUG", "vmsup-daemon vmsup-vm vmsup-stats", FALSE);

	config = vmsup_daemon_config_new();
	if (opt_config != NULL) {
		if (!vmsup_daemon_config_load(config, opt_config, TRUE, &error)) {
			g_printerr("vmsupd: %s\n", error->message);
			return 1;
		}
	} else if (opt_system) {
		if (!vmsup_daemon_config_load(config, "/etc/vmsup/vmsupd.conf", FALSE, &error)) {
			g_printerr("vmsupd: %s\n", error->message);
			return 1;
		}
	} else {
		g_autofree gchar *path =
		    g_build_filename(g_get_user_config_dir(), "vmsup", "vmsupd.conf", NULL);
		if (!vmsup_daemon_config_load(config, path, FALSE, &error)) {
			g_printerr("vmsupd: %s\n", error->message);
			return 1;
		}
	}

	vmsupd_raise_fd_limit();
	if (!vmsup_listen_fds_take(&options.listen_fd, &error)) {
		g_printerr("vmsupd: %s\n", error->message);
		return 1;
	}
	options.system_mode = opt_system;
	options.state_dir = opt_state_dir;
	options.runtime_dir = opt_runtime_dir;
	options.socket_path = opt_socket;
	options.use_dbus = !opt_no_dbus;
	daemon = vmsup_daemon_new(&options, g_steal_pointer(&config));

	loop = g_main_loop_new(NULL, FALSE);
	m.loop = loop;
	m.daemon = daemon;
	g_unix_signal_add(SIGTERM, vmsupd_signal_cb, &m);
	g_unix_signal_add(SIGINT, vmsupd_signal_cb, &m);
	vmsup_daemon_start_async(daemon, NULL, vmsupd_started_cb, &m);
	g_main_loop_run(loop);
	return m.exit_code;
}
