/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-daemon-config.h"
#include "vmsup-policy.h"
#include "vmsup-stats-service.h"
#include "vmsup-vm-service.h"
#include "vmsup-workspace-service.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_DAEMON (vmsup_daemon_get_type())
G_DECLARE_FINAL_TYPE(VmsupDaemon, vmsup_daemon, VMSUP, DAEMON, GObject)

typedef struct {
	gboolean system_mode;
	gchar *state_dir;   /* NULL: the mode's default */
	gchar *runtime_dir; /* NULL: the mode's default */
	gchar *socket_path; /* NULL: $VMSUP_SOCKET or <runtime dir>/vmsupd.sock */
	gboolean use_dbus;
	/*
	 * a listening socket systemd passed (descriptors start at 3), served
	 * instead of binding socket_path; the daemon takes it. 0: none
	 */
	gint listen_fd;
} VmsupDaemonOptions;

/* the composition root: owns the services and the two transports; takes @config */
VmsupDaemon *
vmsup_daemon_new(const VmsupDaemonOptions *options, VmsupDaemonConfig *config);

/* creates and wires the services (no I/O); called by start, exposed for the wiring test */
void
vmsup_daemon_wire_services(VmsupDaemon *self);

/* wires, loads VMs (re-adopting running QEMUs), listens on the socket, owns the bus name */
void
vmsup_daemon_start_async(VmsupDaemon *self,
			 GCancellable *cancellable,
			 GAsyncReadyCallback callback,
			 gpointer user_data);
gboolean
vmsup_daemon_start_finish(VmsupDaemon *self, GAsyncResult *res, GError **error);

/* stops accepting requests; stops VMs only when the config says so */
void
vmsup_daemon_shutdown_async(VmsupDaemon *self,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data);
gboolean
vmsup_daemon_shutdown_finish(VmsupDaemon *self, GAsyncResult *res, GError **error);

/*
 * The policy vmsupd decides with: its owner lookups ask @vm_service and
 * @workspace_service (each nullable, kept for the policy's life). For the
 * daemon's own wiring, and for tests that put a transport in front of
 * services of their own.
 */
VmsupPolicy *
vmsup_daemon_policy_new(VmsupVmService *vm_service, VmsupWorkspaceService *workspace_service);

VmsupVmService *
vmsup_daemon_get_vm_service(VmsupDaemon *self);
VmsupStatsService *
vmsup_daemon_get_stats_service(VmsupDaemon *self);
VmsupWorkspaceService *
vmsup_daemon_get_workspace_service(VmsupDaemon *self);
const gchar *
vmsup_daemon_get_socket_path(VmsupDaemon *self);

G_END_DECLS
