/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "vmsup-operation.h"
#include "vmsup-vm-lock.h"
#include "vmsup-vm-service.h"
#include "vmsup-vm-snapshot-store.h"
#include "vmsup-vm.h"

G_BEGIN_DECLS

/* what the files of VMService share; not for sibling services */

/* the defined VM @name (unowned): BUSY while it is being created, NOT_FOUND when there is none */
VmsupVm *
vmsup_vm_service_find_vm(VmsupVmService *self, const gchar *name, GError **error);
VmsupVmLock *
vmsup_vm_service_get_lock(VmsupVmService *self);
VmsupSnapshotStore *
vmsup_vm_service_get_snapshots(VmsupVmService *self);
/* qemu-img beside the QEMU VMs run */
gchar *
vmsup_vm_service_find_qemu_img(VmsupVmService *self, GError **error);
/* a new operation @kind on @vm, in the registry op.* reads, owned by the VM's owner (unowned) */
VmsupOperation *
vmsup_vm_service_new_vm_operation(VmsupVmService *self, const gchar *kind, VmsupVm *vm);
/* the vm.get result */
JsonObject *
vmsup_vm_service_describe_vm(VmsupVm *vm);

/* vm.start {name, snapshot}: @vm (locked) started from its memory snapshot @snapshot */
void
vmsup_vm_service_start_snapshot_async(VmsupVmService *self,
				      VmsupVm *vm,
				      const gchar *snapshot,
				      GAsyncReadyCallback callback,
				      gpointer user_data);
gboolean
vmsup_vm_service_start_snapshot_finish(GAsyncResult *res, GError **error);

G_END_DECLS
