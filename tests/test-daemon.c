/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "vmsup-daemon-config.h"
#include "vmsup-daemon.h"
#include "vmsup-error.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-store.h"

#define TEST_TIMEOUT_S 60

static guint unknown_key_warnings;
static guint max_vms_warnings;

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
		if (g_strcmp0(fields[i].key, "MESSAGE") == 0 && (level & G_LOG_LEVEL_WARNING) &&
		    strstr(fields[i].value, "3 VMs are defined, more than MaxVMs=2 allows") !=
			NULL) {
			max_vms_warnings++;
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
	g_assert_cmpuint(config->max_vms, ==, 256);
	g_assert_cmpuint(config->max_connections_per_user, ==, 32);
	g_assert_cmpuint(config->idle_timeout_sec, ==, 300);
	g_assert_cmpuint(config->max_vms_per_user, ==, 32);
	g_assert_cmpuint(config->max_memory_mib_per_user, ==, 0);
	g_assert_false(vmsup_daemon_config_load(config, "/nonexistent/vmsupd.conf", TRUE, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
}

static void
test_config_values(void)
{
	g_autofree gchar *path = write_config("[vmsupd]\nAutoStopStaleAfter=600\n"
					      "StatsPollInterval=2\nAccel=tcg\n"
					      "StopVMsOnExit=true\nUnknownKey=1\nMaxVMs= 3 \n"
					      "MaxConnectionsPerUser=8\nIdleTimeoutSec=0\n"
					      "MaxVMsPerUser=5\nMaxMemoryMiBPerUser=4096\n");
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
	g_assert_cmpuint(config->max_vms, ==, 3);
	g_assert_cmpuint(config->max_connections_per_user, ==, 8);
	g_assert_cmpuint(config->idle_timeout_sec, ==, 0);
	g_assert_cmpuint(config->max_vms_per_user, ==, 5);
	g_assert_cmpuint(config->max_memory_mib_per_user, ==, 4096);
}

/* MaxVMs=0 turns the cap off; the largest value is taken */
static void
test_config_max_vms(void)
{
	const struct {
		const gchar *contents;
		guint max_vms;
	} cases[] = {
	    {"[vmsupd]\nMaxVMs=0\n", 0},
	    {"[vmsupd]\nMaxVMs=100000\n", 100000},
	    {"[vmsupd]\nAccel=tcg\n", 256},
	};
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *path = write_config(cases[i].contents);
		g_autoptr(VmsupDaemonConfig) config = vmsup_daemon_config_new();
		g_autoptr(GError) error = NULL;
		g_assert_true(vmsup_daemon_config_load(config, path, TRUE, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(config->max_vms, ==, cases[i].max_vms);
	}
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
	    {"[vmsupd]\nMaxVMs=-1\n", "MaxVMs"},
	    {"[vmsupd]\nMaxVMs=many\n", "MaxVMs"},
	    {"[vmsupd]\nMaxVMs=100001\n", "MaxVMs"},
	    {"[vmsupd]\nMaxVMs=\n", "MaxVMs"},
	    {"[vmsupd]\nMaxConnectionsPerUser=257\n", "MaxConnectionsPerUser"},
	    {"[vmsupd]\nMaxConnectionsPerUser=-1\n", "MaxConnectionsPerUser"},
	    {"[vmsupd]\nIdleTimeoutSec=forever\n", "IdleTimeoutSec"},
	    {"[vmsupd]\nMaxVMsPerUser=0x10\n", "MaxVMsPerUser"},
	    {"[vmsupd]\nMaxMemoryMiBPerUser=1073741825\n", "MaxMemoryMiBPerUser"},
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

static void
daemon_start(VmsupDaemon *daemon)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	vmsup_daemon_start_async(daemon, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_daemon_start_finish(daemon, res, &error));
	g_assert_no_error(error);
}

/* shuts @daemon down, drops it and removes @dir */
static void
daemon_stop(VmsupDaemon *daemon, const gchar *dir)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	vmsup_daemon_shutdown_async(daemon, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_daemon_shutdown_finish(daemon, res, &error));
	g_assert_no_error(error);
	g_object_unref(daemon);
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(dir);
}

/* a daemon started with more VMs than MaxVMs: all load, it warns, vm.create is refused */
static void
test_max_vms_at_load(void)
{
	const gchar *const names[] = {"a1", "a2", "a3", NULL};
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *state = g_build_filename(dir, "state", NULL);
	g_autofree gchar *runtime = g_build_filename(dir, "run", NULL);
	g_autofree gchar *socket = g_build_filename(dir, "s.sock", NULL);
	g_autofree gchar *conf = g_build_filename(dir, "vmsupd.conf", NULL);
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupDaemonConfig) config = vmsup_daemon_config_new();
	g_autoptr(VmsupDaemon) daemon = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonObject) result = NULL;
	g_auto(GStrv) loaded = NULL;
	GAsyncResult *slot = NULL;
	VmsupVmService *vm_service;
	VmsupDaemonOptions options = {
	    .state_dir = state,
	    .runtime_dir = runtime,
	    .socket_path = socket,
	    .use_dbus = FALSE,
	};

	for (guint i = 0; names[i] != NULL; i++) {
		g_autoptr(VmsupVmDef) def = vmsup_vm_def_new(names[i]);
		def->kernel = g_strdup("/nonexistent/vmlinuz");
		g_assert_true(vmsup_vm_store_save(store, def, &error));
		g_assert_no_error(error);
	}
	g_assert_true(g_file_set_contents(conf, "[vmsupd]\nMaxVMs=2\nAccel=tcg\n", -1, NULL));
	g_assert_true(vmsup_daemon_config_load(config, conf, TRUE, &error));
	g_assert_no_error(error);
	daemon = vmsup_daemon_new(&options, g_steal_pointer(&config));

	max_vms_warnings = 0;
	daemon_start(daemon);
	g_assert_cmpuint(max_vms_warnings, ==, 1);

	vm_service = vmsup_daemon_get_vm_service(daemon);
	g_assert_cmpuint(vmsup_vm_service_get_max_vms(vm_service), ==, 2);
	loaded = vmsup_vm_service_list_names(vm_service);
	g_assert_cmpstrv(loaded, names);

	json_object_set_string_member(params, "name", "a4");
	json_object_set_string_member(params, "kernel", "/nonexistent/vmlinuz");
	vmsup_vm_service_create_async(vm_service,
				      vmsup_caller_daemon(),
				      params,
				      NULL,
				      vmsup_test_store_result_cb,
				      &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	result = vmsup_vm_service_create_finish(vm_service, res, &error);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "MaxVMs"));
	g_clear_error(&error);
	g_clear_object(&res);

	daemon_stop(g_steal_pointer(&daemon), dir);
}

/*
 * An empty SocketGroup= means root only, as the manual says: the key loads as
 * no group, and a system daemon with it starts, its socket open to root alone.
 */
static void
test_config_empty_socket_group(void)
{
	const gchar *const contents[] = {"[vmsupd]\nSocketGroup=\n", "[vmsupd]\nSocketGroup=  \n"};
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *state = g_build_filename(dir, "state", NULL);
	g_autofree gchar *runtime = g_build_filename(dir, "run", NULL);
	g_autofree gchar *socket = g_build_filename(dir, "s.sock", NULL);
	g_autoptr(VmsupDaemon) daemon = NULL;
	g_autoptr(GError) error = NULL;
	GStatBuf st;
	VmsupDaemonOptions options = {
	    .system_mode = TRUE,
	    .state_dir = state,
	    .runtime_dir = runtime,
	    .socket_path = socket,
	    .use_dbus = FALSE,
	};

	for (guint i = 0; i < G_N_ELEMENTS(contents); i++) {
		g_autofree gchar *path = write_config(contents[i]);
		g_autoptr(VmsupDaemonConfig) config = vmsup_daemon_config_new();
		g_assert_true(vmsup_daemon_config_load(config, path, TRUE, &error));
		g_assert_no_error(error);
		g_assert_null(config->socket_group);
		if (i + 1 < G_N_ELEMENTS(contents))
			continue;
		config->accel = VMSUP_ACCEL_TCG;
		daemon = vmsup_daemon_new(&options, g_steal_pointer(&config));
	}
	daemon_start(daemon);
	g_assert_cmpint(g_stat(socket, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);

	daemon_stop(g_steal_pointer(&daemon), dir);
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	g_log_set_writer_func(test_log_writer, NULL, NULL);
	g_test_add_func("/vmsup/daemon/config/defaults", test_config_defaults);
	g_test_add_func("/vmsup/daemon/config/values", test_config_values);
	g_test_add_func("/vmsup/daemon/config/bad-values", test_config_bad_values);
	g_test_add_func("/vmsup/daemon/config/max-vms", test_config_max_vms);
	g_test_add_func("/vmsup/daemon/config/empty-socket-group", test_config_empty_socket_group);
	g_test_add_func("/vmsup/daemon/max-vms-at-load", test_max_vms_at_load);
	g_test_add_func("/vmsup/daemon/wiring/stats-hooks", test_wiring_stats_hooks);
	return g_test_run();
}
