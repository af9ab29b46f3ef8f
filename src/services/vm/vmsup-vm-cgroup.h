/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-cgroup.h"
#include "vmsup-vm-def.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_VM_CGROUP (vmsup_vm_cgroup_get_type())
G_DECLARE_FINAL_TYPE(VmsupVmCgroup, vmsup_vm_cgroup, VMSUP, VM_CGROUP, GObject)

/*
 * The cgroup of one VM in vmsupd's @cgroup: where its QEMU is placed right
 * after spawn or adoption, the limits changed live, and why it is not
 * there when it should be. @cancellable (nullable) ends what is under way.
 */
VmsupVmCgroup *
vmsup_vm_cgroup_new(VmsupCgroup *cgroup, const gchar *name, GCancellable *cancellable);

/* whether QEMUs get a cgroup: then they are spawned paused and resumed once placed */
gboolean
vmsup_vm_cgroup_wanted(VmsupVmCgroup *self);

/* FAILED_PRECONDITION when @def asks for limits that @cgroup cannot set */
gboolean
vmsup_vm_cgroup_check_def(VmsupCgroup *cgroup, const VmsupVmDef *def, GError **error);

/* the same against the cgroups this VM's is in */
gboolean
vmsup_vm_cgroup_check_limits(VmsupVmCgroup *self, const VmsupVmDef *def, GError **error);

/* whether @field is one of the limits a VM's cgroup keeps */
gboolean
vmsup_vm_cgroup_is_limit(const gchar *field);

/* {mode, limits_available, detail} of @cgroup into @obj */
void
vmsup_vm_cgroup_describe_mode(VmsupCgroup *cgroup, JsonObject *obj);

/*
 * Puts QEMU @pid into the VM's cgroup with the limits of @def. Failing is
 * no error: the VM runs without limits, and describe() says why; finish
 * says whether it is placed.
 */
void
vmsup_vm_cgroup_place_async(VmsupVmCgroup *self,
			    GPid pid,
			    const VmsupVmDef *def,
			    GAsyncReadyCallback callback,
			    gpointer user_data);
gboolean
vmsup_vm_cgroup_place_finish(VmsupVmCgroup *self, GAsyncResult *res);

/* whether the QEMU of this run is in its cgroup */
gboolean
vmsup_vm_cgroup_is_placed(VmsupVmCgroup *self);

/* removes the cgroup once QEMU is gone (or a leftover of a crash); logs failures */
void
vmsup_vm_cgroup_release(VmsupVmCgroup *self);

/* the limits of @def onto the placed QEMU @pid, at once */
void
vmsup_vm_cgroup_apply_async(VmsupVmCgroup *self,
			    GPid pid,
			    const VmsupVmDef *def,
			    GAsyncReadyCallback callback,
			    gpointer user_data);
gboolean
vmsup_vm_cgroup_apply_finish(VmsupVmCgroup *self, GAsyncResult *res, GError **error);

/* vm.get's "cgroup" for a VM defined as @def whose QEMU @pid runs (0: none runs) */
JsonObject *
vmsup_vm_cgroup_describe(VmsupVmCgroup *self, GPid pid, const VmsupVmDef *def);

G_END_DECLS
