/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-vm.h"

G_BEGIN_DECLS

/* the virtual size of the qcow2 @disk, from its header */
gboolean
vmsup_vm_disk_get_size(const gchar *disk, guint64 *out_bytes, GError **error);

/*
 * Grows @vm's disk to @disk_gib: live with QMP block_resize while QEMU runs
 * (paused too), else with qemu-img resize (the one next to @qemu_binary). A smaller size is refused
 * (INVALID_ARGUMENT, naming the size now) and the same size does nothing;
 * a VM without a disk, or one starting or stopping, is FAILED_PRECONDITION.
 * Callers hold the VM's lock.
 */
void
vmsup_vm_disk_grow_async(VmsupVm *vm,
			 guint disk_gib,
			 const gchar *qemu_binary,
			 GCancellable *cancellable,
			 GAsyncReadyCallback callback,
			 gpointer user_data);
gboolean
vmsup_vm_disk_grow_finish(VmsupVm *vm, GAsyncResult *res, GError **error);

G_END_DECLS
