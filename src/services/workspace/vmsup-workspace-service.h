/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-caller.h"
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
 * Who owns workspace @name (the uid that created it; 0, root, for one
 * created before owners were recorded), also while its create runs; FALSE
 * when there is no such workspace. For the RPC table, which lets a caller
 * bound by vmsup_vm_def_uid_is_restricted() act only on its own
 * workspaces. The VM of a workspace must be its owner's, too: create, open
 * and delete refuse (or, delete, leave alone) a VM of anyone else.
 */
gboolean
vmsup_workspace_service_get_owner(VmsupWorkspaceService *self, const gchar *name, guint32 *out_uid);

/*
 * The contract's workspace.* verbs: @params borrowed, the result is the
 * answer object (full) or NULL with a VMSUP_ERROR.
 *   create {name, path, vm?, cpus?, memory_mib?} -> {name, path, vm, vm_owned, created, state}
 *   open {name} -> {..., state: "open", mount: "/workspace", ready_ms}
 *   list {} -> {workspaces: [...]}
 *   delete {name, force=false} -> {name, path, vm, vm_deleted}
 *
 * create and open share a directory on behalf of @caller, the client as its
 * transport found it (SO_PEERCRED, or the D-Bus sender's uid polkit was
 * asked about), never anything from @params. In system mode
 * QEMU runs as root, so a caller other than root and the daemon's own user
 * may only share a directory it owns: its canonical path, symbolic links
 * resolved, must belong to @caller, checked at create and again at
 * every open (FAILED_PRECONDITION otherwise; nothing is changed).
 */
void
vmsup_workspace_service_create_async(VmsupWorkspaceService *self,
				     const VmsupCaller *caller,
				     JsonObject *params,
				     GCancellable *cancellable,
				     GAsyncReadyCallback callback,
				     gpointer user_data);
JsonObject *
vmsup_workspace_service_create_finish(VmsupWorkspaceService *self,
				      GAsyncResult *res,
				      GError **error);
void
vmsup_workspace_service_list_async(VmsupWorkspaceService *self,
				   const VmsupCaller *caller,
				   JsonObject *params,
				   GCancellable *cancellable,
				   GAsyncReadyCallback callback,
				   gpointer user_data);
JsonObject *
vmsup_workspace_service_list_finish(VmsupWorkspaceService *self, GAsyncResult *res, GError **error);
void
vmsup_workspace_service_delete_async(VmsupWorkspaceService *self,
				     const VmsupCaller *caller,
				     JsonObject *params,
				     GCancellable *cancellable,
				     GAsyncReadyCallback callback,
				     gpointer user_data);
JsonObject *
vmsup_workspace_service_delete_finish(VmsupWorkspaceService *self,
				      GAsyncResult *res,
				      GError **error);
void
vmsup_workspace_service_open_async(VmsupWorkspaceService *self,
				   const VmsupCaller *caller,
				   JsonObject *params,
				   GCancellable *cancellable,
				   GAsyncReadyCallback callback,
				   gpointer user_data);
JsonObject *
vmsup_workspace_service_open_finish(VmsupWorkspaceService *self, GAsyncResult *res, GError **error);

G_END_DECLS
