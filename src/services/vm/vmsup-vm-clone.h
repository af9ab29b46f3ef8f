/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-operation.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm.h"

G_BEGIN_DECLS

/* a VM may be cloned while no QEMU of it runs; else FAILED_PRECONDITION saying how to stop it */
gboolean
vmsup_vm_clone_check_source(VmsupVm *source, GError **error);

/*
 * @source's definition for the clone @new_name of @owner_uid: a new MAC
 * address, a new creation time (so a new cloud-init instance-id), no share
 * and no disk path yet; all else as the source's.
 */
VmsupVmDef *
vmsup_vm_clone_def(const VmsupVmDef *source, const gchar *new_name, guint32 owner_uid);

/*
 * The clone @def's files from @source's (a disk each): its disk, a copy of
 * the source's (a new overlay on the same base when the source overlays an
 * image), with the progress in @op's stage "copy", then its guest directory
 * with a copy of the variable store. Nothing is left on failure or cancel.
 */
void
vmsup_vm_clone_files_async(const gchar *qemu_img,
			   const VmsupVmDef *source,
			   const VmsupVmDef *def,
			   const gchar *state_dir,
			   VmsupOperation *op,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data);
gboolean
vmsup_vm_clone_files_finish(GAsyncResult *res, GError **error);

G_END_DECLS
