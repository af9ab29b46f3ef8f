/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-operation.h"
#include "vmsup-vm-accel.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-lock.h"
#include "vmsup-vm-store.h"
#include "vmsup-vm.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_VM_CREATE (vmsup_vm_create_get_type())
G_DECLARE_FINAL_TYPE(VmsupVmCreate, vmsup_vm_create, VMSUP, VM_CREATE, GObject)

/* what a create asks of the registry it adds a VM to; @user_data last */
typedef struct {
	/* the definition is saved: the VM, now in the registry (unowned) */
	VmsupVm *(*define)(VmsupVmDef *def /* owned */, gpointer user_data);
	/* undoes define: @vm leaves the registry with its disk and runtime dir */
	gboolean (*undefine)(VmsupVm *vm, GError **error, gpointer user_data);
	/* the create is over; its name and lock are freed right after, then the operation ends */
	void (*ended)(VmsupVmCreate *create, gpointer user_data);
} VmsupVmCreateHooks;

/*
 * One vm.create as operation @op: under the VM's lock, QEMU checked, the
 * accelerator decided, the disk made (with @qemu_img, under @state_dir),
 * @def saved and defined, and with @start the first start. A failure or a
 * cancel undoes all of it. @user_data (a GObject) is kept until the end.
 */
VmsupVmCreate *
vmsup_vm_create_new(VmsupOperation *op,
		    VmsupVmDef *def /* owned */,
		    const gchar *qemu_binary,
		    const gchar *qemu_img,
		    const gchar *state_dir,
		    gboolean start,
		    VmsupVmLock *lock,
		    VmsupVmStore *store,
		    VmsupVmAccel *accel,
		    const VmsupVmCreateHooks *hooks,
		    gpointer user_data);

/*
 * Makes the create a clone of @source (before run()): it holds @source's
 * lock too, refuses it unless stopped, and copies its disk and guest files
 * instead of making new ones.
 */
void
vmsup_vm_create_set_source(VmsupVmCreate *self, VmsupVm *source);

void
vmsup_vm_create_run(VmsupVmCreate *self);

VmsupOperation *
vmsup_vm_create_get_operation(VmsupVmCreate *self);
/* what is being created: its name, owner and memory count toward the limits */
const VmsupVmDef *
vmsup_vm_create_get_def(VmsupVmCreate *self);

G_END_DECLS
