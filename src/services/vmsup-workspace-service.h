/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-workspace-hooks.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_WORKSPACE_SERVICE (vmsup_workspace_service_get_type())
G_DECLARE_FINAL_TYPE(VmsupWorkspaceService,
		     vmsup_workspace_service,
		     VMSUP,
		     WORKSPACE_SERVICE,
		     GObject)

/*
 * Named workspaces: a host directory shared into a VM (virtio-9p, tag
 * "workspace", mounted by the guest at /workspace). The VM is the one named
 * at creation, or "ws-<name>" created on demand and deleted with the
 * workspace. Records live in <state-dir>/workspaces/<name>.json.
 *
 * Signals:
 *   "activity": void (self, const gchar *vm, const gchar *reason, gpointer user_data):
 *       a client used the workspace served by @vm (it was opened); the daemon
 *       relays it to vmsup_stats_service_note_activity(), whose signature it matches
 *       when connected swapped.
 */

/* takes refs on the hooks (never a pointer to VMService); loads the stored records */
VmsupWorkspaceService *
vmsup_workspace_service_new(const gchar *state_dir, const VmsupWorkspaceHooks *hooks);

const VmsupWorkspaceHooks *
vmsup_workspace_service_get_hooks(VmsupWorkspaceService *self);

/* how long open waits for the guest agent; default 60 s (boot under TCG included) */
void
vmsup_workspace_service_set_open_timeout(VmsupWorkspaceService *self, guint seconds);

/*
 * The contract's workspace.* verbs: @params borrowed, the result is the
 * answer object (full) or NULL with a VMSUP_ERROR.
 *   create {name, path, vm?, cpus?, memory_mib?} -> {name, path, vm, vm_owned, created, state}
 *   open {name} -> {..., state: "open", mount: "/workspace", ready_ms}
 *   list {} -> {workspaces: [...]}
 *   delete {name, force=false} -> {name, path, vm, vm_deleted}
 */
#define VMSUP_WORKSPACE_SERVICE_DECLARE_VERB(verb)                                                 \
	void vmsup_workspace_service_##verb##_async(VmsupWorkspaceService *self,                   \
						    JsonObject *params,                            \
						    GCancellable *cancellable,                     \
						    GAsyncReadyCallback callback,                  \
						    gpointer user_data);                           \
	JsonObject *vmsup_workspace_service_##verb##_finish(VmsupWorkspaceService *self,           \
							    GAsyncResult *res,                     \
							    GError **error);

VMSUP_WORKSPACE_SERVICE_DECLARE_VERB(create)
VMSUP_WORKSPACE_SERVICE_DECLARE_VERB(list)
VMSUP_WORKSPACE_SERVICE_DECLARE_VERB(delete)
VMSUP_WORKSPACE_SERVICE_DECLARE_VERB(open)

G_END_DECLS
