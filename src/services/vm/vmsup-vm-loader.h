/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-vm-accel.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-lock.h"
#include "vmsup-vm-store.h"
#include "vmsup-vm.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_VM_LOADER (vmsup_vm_loader_get_type())
G_DECLARE_FINAL_TYPE(VmsupVmLoader, vmsup_vm_loader, VMSUP, VM_LOADER, GObject)

/* what a loader asks of the registry it fills; @user_data last */
typedef struct {
	/* a definition from the store: the VM, now in the registry (unowned) */
	VmsupVm *(*add)(VmsupVmDef *def /* owned */, gpointer user_data);
	/* the VM named @name (unowned), NULL when there is none */
	VmsupVm *(*lookup)(const gchar *name, gpointer user_data);
	/* the names of all VMs, sorted */
	GStrv (*list)(gpointer user_data);
} VmsupVmLoaderHooks;

/*
 * Loads the VMs of @store into a registry and stops them again, each under
 * its lock in @lock; @state_dir and @runtime_dir are the daemon's (their
 * leftovers are looked at). @user_data (a GObject) is kept while it lives.
 */
VmsupVmLoader *
vmsup_vm_loader_new(VmsupVmStore *store,
		    VmsupVmLock *lock,
		    VmsupVmAccel *accel,
		    const gchar *state_dir,
		    const gchar *runtime_dir,
		    GCancellable *cancellable,
		    const VmsupVmLoaderHooks *hooks,
		    gpointer user_data);

/*
 * Decides the accelerator, reads definitions and outcomes, adopts what an
 * earlier daemon left running (going on without a QEMU slow to answer),
 * autostarts, and removes cgroups left behind. Fails only when the
 * definitions cannot be read.
 */
void
vmsup_vm_loader_load_async(VmsupVmLoader *self,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data);
gboolean
vmsup_vm_loader_load_finish(VmsupVmLoader *self, GAsyncResult *res, GError **error);

/* stops every running VM, giving each guest @timeout_s to power off */
void
vmsup_vm_loader_stop_all_async(VmsupVmLoader *self,
			       guint timeout_s,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
gboolean
vmsup_vm_loader_stop_all_finish(VmsupVmLoader *self, GAsyncResult *res, GError **error);

G_END_DECLS
