/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "vmsup-daemon-config.h"
#include "vmsup-daemon.h"
#include "vmsup-error.h"

static guint unknown_key_warnings;

/* structured logging bypasses g_test_expect_message(): count the expected warning here */
static GLogWriterOutput
test_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "MESSAGE") == 0 && (level & G_LOG_LEVEL_WARNING) &&
		    strstr(fields[i].value, "unknown key 'UnknownKey'") != NULL) {
			unknown_key_warnings++;
			return G_LOG_WRITER_HANDLED;
		}
	}
	return g_log_writer_default(level, fields, n_fields, user_data);
}

static gchar *
write_config(const gchar *contents)
{
	g_autofree gchar *dir = g_dir_make_tmp("vmsup-config-XXXXXX", NULL);
	gchar *path = g_build_filename(dir, "vmsupd.conf", NULL);
	g_assert_true(g_file_set_contents(path, contents, -1, NULL));
	return path;
}

static void
test_config_defaults(void)
{
	g_autoptr(VmsupDaemonConfig) config = vmsup_daemon_config_new();
	g_autoptr(GError) error = NULL;

	/* an absent file is fine unless it was asked for */
	g_assert_true(vmsup_daemon_config_load(config, "/nonexistent/vmsupd.conf", FALSE, &error));
	g_assert_no_error(error);
	g_assert_cmpint(config->accel, ==, VMSUP_ACCEL_AUTO);
	g_assert_cmpuint(config->auto_stop_stale_after, ==, 0);
	g_assert_false(vmsup_daemon_config_load(config, "/nonexistent/vmsupd.conf", TRUE, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
}

static void
test_config_values(void)
{
	g_autofree gchar *path = write_config("[vmsupd]\nAutoStopStaleAfter=600\n"
					      "StatsPollInterval=2\nAccel=tcg\n"
					      "StopVMsOnExit=true\nUnknownKey=1\n");
	g_autoptr(VmsupDaemonConfig) config = vmsup_daemon_config_new();
	g_autoptr(GError) error = NULL;

	unknown_key_warnings = 0;
	g_assert_true(vmsup_daemon_config_load(config, path, TRUE, &error));
	g_assert_cmpuint(unknown_key_warnings, ==, 1);
	g_assert_no_error(error);
	g_assert_cmpuint(config->auto_stop_stale_after, ==, 600);
	g_assert_cmpuint(config->stats_poll_interval, ==, 2);
	g_assert_cmpint(config->accel, ==, VMSUP_ACCEL_TCG);
	g_assert_true(config->stop_vms_on_exit);
}

static void
test_config_bad_values(void)
{
	const struct {
		const gchar *contents;
		const gchar *key;
	} cases[] = {
	    {"[vmsupd]\nAutoStopStaleAfter=soon\n", "AutoStopStaleAfter"},
	    {"[vmsupd]\nStatsPollInterval=-1\n", "StatsPollInterval"},
	    {"[vmsupd]\nAccel=hyperv\n", "Accel"},
	    {"[vmsupd]\nStopVMsOnExit=maybe\n", "StopVMsOnExit"},
	    {"not a key file", "configuration"},
	};
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *path = write_config(cases[i].contents);
		g_autoptr(VmsupDaemonConfig) config = vmsup_daemon_config_new();
		g_autoptr(GError) error = NULL;
		g_assert_false(vmsup_daemon_config_load(config, path, TRUE, &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, cases[i].key));
	}
}

static void
test_wiring_stats_hooks(void)
{
	g_autofree gchar *dir = g_dir_make_tmp("vmsup-daemon-XXXXXX", NULL);
	g_autofree gchar *state = g_build_filename(dir, "state", NULL);
	g_autofree gchar *runtime = g_build_filename(dir, "run", NULL);
	VmsupDaemonOptions options = {
	    .state_dir = state,
	    .runtime_dir = runtime,
	    .use_dbus = FALSE,
	};
	g_autoptr(VmsupDaemon) daemon = vmsup_daemon_new(&options, vmsup_daemon_config_new());
	VmsupStatsService *stats;

	vmsup_daemon_wire_services(daemon);
	g_assert_nonnull(vmsup_daemon_get_vm_service(daemon));
	stats = vmsup_daemon_get_stats_service(daemon);
	g_assert_nonnull(stats);
	g_assert_true(vmsup_vm_hooks_is_complete(vmsup_stats_service_get_hooks(stats)));
	/* no VM is alive before anything started */
	g_assert_false(vmsup_vm_hooks_vm_alive(vmsup_stats_service_get_hooks(stats), "web1"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	g_log_set_writer_func(test_log_writer, NULL, NULL);
	g_test_add_func("/vmsup/daemon/config/defaults", test_config_defaults);
	g_test_add_func("/vmsup/daemon/config/values", test_config_values);
	g_test_add_func("/vmsup/daemon/config/bad-values", test_config_bad_values);
	g_test_add_func("/vmsup/daemon/wiring/stats-hooks", test_wiring_stats_hooks);
	return g_test_run();
}
