/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's configuration file: a GKeyFile read once at start-up.
 */

#include "config.h"

#include <gio/gio.h>
#include <glib/gi18n.h>

#include "vmsup-daemon-config.h"
#include "vmsup-error.h"
#include "vmsup-metrics-server.h"

#define VMSUP_CONFIG_GROUP "vmsupd"

static const gchar *const vmsup_daemon_config_keys[] = {
    "AutoStopStaleAfter",
    "StatsPollInterval",
    "Accel",
    "QemuBinary",
    "SocketGroup",
    "StopVMsOnExit",
    "MaxVMs",
    "MaxConnectionsPerUser",
    "IdleTimeoutSec",
    "MaxVMsPerUser",
    "MaxMemoryMiBPerUser",
    "MetricsListen",
    NULL,
};

VmsupDaemonConfig *
vmsup_daemon_config_new(void)
{
	VmsupDaemonConfig *config = g_new0(VmsupDaemonConfig, 1);
	config->auto_stop_stale_after = 0;
	config->stats_poll_interval = 5;
	config->accel = VMSUP_ACCEL_AUTO;
	config->max_vms = VMSUP_DAEMON_CONFIG_DEFAULT_MAX_VMS;
	config->max_connections_per_user = VMSUP_JSONRPC_DEFAULT_MAX_PER_USER;
	config->idle_timeout_sec = VMSUP_JSONRPC_DEFAULT_IDLE_TIMEOUT_S;
	config->max_vms_per_user = VMSUP_DAEMON_CONFIG_DEFAULT_MAX_VMS_PER_USER;
	config->max_memory_mib_per_user = 0;
	return config;
}

void
vmsup_daemon_config_free(VmsupDaemonConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->qemu_binary);
	g_free(config->socket_group);
	g_strfreev(config->metrics_listen);
	g_free(config);
}

static gboolean
vmsup_daemon_config_get_seconds(GKeyFile *kf, const gchar *key, guint *out, GError **error)
{
	g_autofree gchar *value = NULL;
	guint64 parsed = 0;

	if (!g_key_file_has_key(kf, VMSUP_CONFIG_GROUP, key, NULL))
		return TRUE;
	value = g_key_file_get_string(kf, VMSUP_CONFIG_GROUP, key, NULL);
	if (value == NULL ||
	    !g_ascii_string_to_unsigned(g_strstrip(value), 10, 0, 7 * 24 * 3600, &parsed, NULL)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Invalid value '%s' for %s: expected seconds from 0 to 604800"),
			    value != NULL ? value : "",
			    key);
		return FALSE;
	}
	*out = (guint)parsed;
	return TRUE;
}

/* a count from 0 (no limit) to @max */
static gboolean
vmsup_daemon_config_get_limit(GKeyFile *kf, const gchar *key, guint max, guint *out, GError **error)
{
	g_autofree gchar *value = NULL;
	guint64 parsed = 0;

	if (!g_key_file_has_key(kf, VMSUP_CONFIG_GROUP, key, NULL))
		return TRUE;
	value = g_key_file_get_string(kf, VMSUP_CONFIG_GROUP, key, NULL);
	if (value == NULL ||
	    !g_ascii_string_to_unsigned(g_strstrip(value), 10, 0, max, &parsed, NULL)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Invalid value '%s' for %s: expected a whole number from 0 (no "
			      "limit) to %u"),
			    value != NULL ? value : "",
			    key,
			    max);
		return FALSE;
	}
	*out = (guint)parsed;
	return TRUE;
}

gboolean
vmsup_daemon_config_load(VmsupDaemonConfig *config,
			 const gchar *path,
			 gboolean must_exist,
			 GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error_local = NULL;
	g_auto(GStrv) keys = NULL;
	g_autofree gchar *accel = NULL;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error_local)) {
		if (!must_exist && g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Cannot read configuration %s: %s"),
			    path,
			    error_local->message);
		return FALSE;
	}

	keys = g_key_file_get_keys(kf, VMSUP_CONFIG_GROUP, NULL, NULL);
	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		if (!g_strv_contains(vmsup_daemon_config_keys, keys[i]))
			g_warning("%s: unknown key '%s' in [%s], ignoring",
				  path,
				  keys[i],
				  VMSUP_CONFIG_GROUP);
	}

	if (!vmsup_daemon_config_get_seconds(kf,
					     "AutoStopStaleAfter",
					     &config->auto_stop_stale_after,
					     error))
		return FALSE;
	if (!vmsup_daemon_config_get_seconds(kf,
					     "StatsPollInterval",
					     &config->stats_poll_interval,
					     error))
		return FALSE;

	if (!vmsup_daemon_config_get_limit(kf,
					   "MaxVMs",
					   VMSUP_DAEMON_CONFIG_MAX_MAX_VMS,
					   &config->max_vms,
					   error) ||
	    !vmsup_daemon_config_get_limit(kf,
					   "MaxConnectionsPerUser",
					   VMSUP_JSONRPC_MAX_CONNECTIONS,
					   &config->max_connections_per_user,
					   error) ||
	    !vmsup_daemon_config_get_seconds(kf,
					     "IdleTimeoutSec",
					     &config->idle_timeout_sec,
					     error) ||
	    !vmsup_daemon_config_get_limit(kf,
					   "MaxVMsPerUser",
					   VMSUP_DAEMON_CONFIG_MAX_MAX_VMS,
					   &config->max_vms_per_user,
					   error) ||
	    !vmsup_daemon_config_get_limit(kf,
					   "MaxMemoryMiBPerUser",
					   VMSUP_DAEMON_CONFIG_MAX_MEMORY_MIB,
					   &config->max_memory_mib_per_user,
					   error))
		return FALSE;

	accel = g_key_file_get_string(kf, VMSUP_CONFIG_GROUP, "Accel", NULL);
	if (accel != NULL && !vmsup_accel_from_string(g_strstrip(accel), &config->accel)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Invalid value '%s' for Accel: expected auto, kvm or tcg"),
			    accel);
		return FALSE;
	}
	if (g_key_file_has_key(kf, VMSUP_CONFIG_GROUP, "QemuBinary", NULL)) {
		g_free(config->qemu_binary);
		config->qemu_binary =
		    g_key_file_get_string(kf, VMSUP_CONFIG_GROUP, "QemuBinary", NULL);
	}
	if (g_key_file_has_key(kf, VMSUP_CONFIG_GROUP, "SocketGroup", NULL)) {
		g_free(config->socket_group);
		config->socket_group =
		    g_key_file_get_string(kf, VMSUP_CONFIG_GROUP, "SocketGroup", NULL);
		/* empty, as documented, is root only: no group at all, not a group named "" */
		if (config->socket_group != NULL && *g_strstrip(config->socket_group) == '\0')
			g_clear_pointer(&config->socket_group, g_free);
	}
	if (g_key_file_has_key(kf, VMSUP_CONFIG_GROUP, "MetricsListen", NULL)) {
		g_autofree gchar *value =
		    g_key_file_get_string(kf, VMSUP_CONFIG_GROUP, "MetricsListen", NULL);
		g_auto(GStrv) listen = NULL;

		/* checked now: a wrong value stops the daemon before anything starts */
		listen = g_strsplit_set(value != NULL ? g_strstrip(value) : "", " \t", -1);
		for (guint i = 0; listen[i] != NULL; i++) {
			g_autoptr(GSocketAddress) address = NULL;

			if (*listen[i] == '\0')
				continue;
			address = vmsup_metrics_listen_parse(listen[i], error);
			if (address == NULL)
				return FALSE;
		}
		g_strfreev(config->metrics_listen);
		config->metrics_listen = g_steal_pointer(&listen);
	}
	if (g_key_file_has_key(kf, VMSUP_CONFIG_GROUP, "StopVMsOnExit", NULL)) {
		config->stop_vms_on_exit =
		    g_key_file_get_boolean(kf, VMSUP_CONFIG_GROUP, "StopVMsOnExit", &error_local);
		if (error_local != NULL) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("Invalid value for StopVMsOnExit: expected true or false"));
			return FALSE;
		}
	}
	return TRUE;
}
