/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-vm-def.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_VM_STORE (vmsup_vm_store_get_type())
G_DECLARE_FINAL_TYPE(VmsupVmStore, vmsup_vm_store, VMSUP, VM_STORE, GObject)

/* one JSON file per VM: <state-dir>/vms/<name>.json */
VmsupVmStore *
vmsup_vm_store_new(const gchar *state_dir);

const gchar *
vmsup_vm_store_get_dir(VmsupVmStore *self);
gchar *
vmsup_vm_store_get_path(VmsupVmStore *self, const gchar *name);

/*
 * Every readable definition, sorted by name (of VmsupVmDef). A file that
 * does not parse is moved aside to <name>.json.corrupt-<time> with a
 * warning, never deleted; the others still load. Fails only when the
 * directory itself cannot be read.
 */
GPtrArray *
vmsup_vm_store_load_all(VmsupVmStore *self, GError **error);

/* atomic and durable (fsync'd) replace of the VM's file */
gboolean
vmsup_vm_store_save(VmsupVmStore *self, const VmsupVmDef *def, GError **error);
/* the same in a worker thread; @def is serialized before this returns */
void
vmsup_vm_store_save_async(VmsupVmStore *self,
			  const VmsupVmDef *def,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data);
gboolean
vmsup_vm_store_save_finish(VmsupVmStore *self, GAsyncResult *res, GError **error);

/* a missing file is not an error */
gboolean
vmsup_vm_store_remove(VmsupVmStore *self, const gchar *name, GError **error);

G_END_DECLS
