/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "vmsup-accel.h"
#include "vmsup-jsonrpc-server.h"

G_BEGIN_DECLS

/* MaxVMs when the file does not say */
#define VMSUP_DAEMON_CONFIG_DEFAULT_MAX_VMS 256
/* the largest MaxVMs (and MaxVMsPerUser) accepted */
#define VMSUP_DAEMON_CONFIG_MAX_MAX_VMS 100000
/* MaxVMsPerUser when the file does not say */
#define VMSUP_DAEMON_CONFIG_DEFAULT_MAX_VMS_PER_USER 32
/* the largest MaxMemoryMiBPerUser accepted: 1 PiB */
#define VMSUP_DAEMON_CONFIG_MAX_MEMORY_MIB (1024u * 1024u * 1024u)

/* vmsupd.conf, group [vmsupd]; defaults when a key or the file is absent */
typedef struct {
	guint auto_stop_stale_after; /* seconds, 0: off */
	guint stats_poll_interval;   /* seconds, 0: off */
	VmsupAccel accel;
	gchar *qemu_binary;  /* NULL: from PATH */
	gchar *socket_group; /* system mode: group allowed on the socket, NULL: root only */
	gboolean stop_vms_on_exit;
	guint max_vms; /* most VMs defined at once; 0: no limit */
	/* for uids other than root and the daemon's own; 0: no limit (or no timeout) */
	guint max_connections_per_user;
	guint idle_timeout_sec;
	guint max_vms_per_user;
	guint max_memory_mib_per_user;
	/* where /metrics is served: ADDRESS:PORT or Unix socket paths (empty strings skipped);
	 * NULL: nowhere */
	GStrv metrics_listen;
} VmsupDaemonConfig;

VmsupDaemonConfig *
vmsup_daemon_config_new(void);
void
vmsup_daemon_config_free(VmsupDaemonConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupDaemonConfig, vmsup_daemon_config_free)

/* unknown keys warn; a bad value fails naming the key; a missing file is an error only if
 * @must_exist */
gboolean
vmsup_daemon_config_load(VmsupDaemonConfig *config,
			 const gchar *path,
			 gboolean must_exist,
			 GError **error);

G_END_DECLS
