/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "vmsup-vm-service.h"

G_BEGIN_DECLS

/*
 * The snapshot verbs of VMService (the RPC table checked the params'
 * types, VM names included; snapshot names are checked here):
 *
 * snapshot.create {name, snapshot, memory? (default: whether the VM runs),
 * wait?} and snapshot.restore {name, snapshot, wait?} -> {operation, vm,
 * snapshot}: operations ("snapshot.create", "snapshot.restore") that op.get
 * follows and op.cancel stops; with wait the answer comes at their end.
 * snapshot.delete {name, snapshot} -> {name, snapshot, deleted}.
 * A VM busy with another request is BUSY, at once.
 * All three finish with vmsup_vm_service_snapshot_finish().
 */
void
vmsup_vm_service_snapshot_create_async(VmsupVmService *self,
				       const VmsupCaller *caller,
				       JsonObject *params,
				       GCancellable *cancellable,
				       GAsyncReadyCallback callback,
				       gpointer user_data);
void
vmsup_vm_service_snapshot_restore_async(VmsupVmService *self,
					const VmsupCaller *caller,
					JsonObject *params,
					GCancellable *cancellable,
					GAsyncReadyCallback callback,
					gpointer user_data);
void
vmsup_vm_service_snapshot_delete_async(VmsupVmService *self,
				       const VmsupCaller *caller,
				       JsonObject *params,
				       GCancellable *cancellable,
				       GAsyncReadyCallback callback,
				       gpointer user_data);
JsonObject *
vmsup_vm_service_snapshot_finish(VmsupVmService *self, GAsyncResult *res, GError **error);

/*
 * snapshot.list {name} -> {snapshots: [{name, created, created_unix,
 * memory, disk, size, vm_state, requires}]}, oldest first; at once
 */
JsonObject *
vmsup_vm_service_snapshot_list(VmsupVmService *self, JsonObject *params, GError **error);

G_END_DECLS
