/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-operation.h"
#include "vmsup-vm-snapshot-store.h"
#include "vmsup-vm.h"

G_BEGIN_DECLS

/*
 * Snapshots of one VM. Memory: the vCPUs stopped, the disk's internal
 * qcow2 snapshot taken (when it has a disk), the machine state written as
 * a migration stream into a file of @store, the entry saved, the vCPUs
 * resumed. Disk only: an internal qcow2 snapshot, over QMP while QEMU runs,
 * with qemu-img while it does not. Callers hold the VM's lock.
 */

/* whether @vm can have a snapshot (@memory or not) now; the error says why not */
gboolean
vmsup_vm_snapshot_check_create(VmsupVm *vm, gboolean memory, GError **error);
/*
 * Makes snapshot @snapshot (valid, not already there: the caller checked)
 * and completes with its entry; @op (nullable) gets the stages and its
 * cancellable stops the work. A failure or cancel leaves the VM as it was
 * (running when it ran) and nothing of the snapshot behind.
 */
void
vmsup_vm_snapshot_create_async(VmsupVm *vm,
			       VmsupSnapshotStore *store,
			       const gchar *qemu_img,
			       const gchar *snapshot,
			       gboolean memory,
			       VmsupOperation *op,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
JsonObject *
vmsup_vm_snapshot_create_finish(GAsyncResult *res, GError **error);

/*
 * The entry of snapshot @snapshot when it may be restored onto @vm now:
 * NOT_FOUND when there is none, FAILED_PRECONDITION when the definition no
 * longer matches it or (disk only) the VM runs. Nothing is changed.
 */
JsonObject *
vmsup_vm_snapshot_check_restore(VmsupVm *vm,
				VmsupSnapshotStore *store,
				const gchar *snapshot,
				GError **error);
/*
 * Restores @entry (from check_restore): QEMU stopped if it runs, the disk
 * reverted, and for a memory snapshot QEMU started from the saved state,
 * the guest's clock set through its agent. Completes with @vm running
 * (memory) or stopped (disk only).
 */
void
vmsup_vm_snapshot_restore_async(VmsupVm *vm,
				VmsupSnapshotStore *store,
				const gchar *qemu_img,
				JsonObject *entry,
				VmsupOperation *op,
				GAsyncReadyCallback callback,
				gpointer user_data);
gboolean
vmsup_vm_snapshot_restore_finish(GAsyncResult *res, GError **error);

/* drops the entry, then the saved state and the disk's snapshot */
void
vmsup_vm_snapshot_delete_async(VmsupVm *vm,
			       VmsupSnapshotStore *store,
			       const gchar *qemu_img,
			       const gchar *snapshot,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
gboolean
vmsup_vm_snapshot_delete_finish(GAsyncResult *res, GError **error);

/*
 * At daemon start: the record of @vm made to agree with what is on disk
 * (see vmsup_snapshot_store_reconcile()); stray disk snapshots are removed
 * unless @running
 */
void
vmsup_vm_snapshot_reconcile(VmsupSnapshotStore *store,
			    const VmsupVmDef *def,
			    const gchar *qemu_img,
			    gboolean running);

G_END_DECLS
