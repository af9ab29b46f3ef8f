/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VmsupVmCgroup: one VM's cgroup. QEMU is placed in it right after spawn
 * or adoption, vm.set changes its limits live, vm.get shows where it is
 * (or why it is not), and it is removed once QEMU has exited.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-vm-cgroup.h"

struct _VmsupVmCgroup {
	GObject parent_instance;
	VmsupCgroup *cgroup;       /* owned: vmsupd's */
	gchar *name;               /* owned: the VM's */
	GCancellable *cancellable; /* owned, nullable */
	gboolean placed;
	gchar *error; /* owned: why this run's QEMU is not in it */
};

G_DEFINE_FINAL_TYPE(VmsupVmCgroup, vmsup_vm_cgroup, G_TYPE_OBJECT)

static void
vmsup_vm_cgroup_limits(const VmsupVmDef *def, VmsupCgroupLimits *out_limits)
{
	out_limits->cpu_quota_percent = def->cpu_quota_percent;
	out_limits->memory_max_mib = def->memory_max_mib;
}

gboolean
vmsup_vm_cgroup_wanted(VmsupVmCgroup *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_CGROUP(self), FALSE);
	return vmsup_cgroup_get_mode(self->cgroup) != VMSUP_CGROUP_MODE_NONE;
}

gboolean
vmsup_vm_cgroup_check_def(VmsupCgroup *cgroup, const VmsupVmDef *def, GError **error)
{
	if (def->cpu_quota_percent == 0 && def->memory_max_mib == 0)
		return TRUE;
	if (vmsup_cgroup_get_mode(cgroup) != VMSUP_CGROUP_MODE_NONE)
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("CPU and memory limits are unavailable in this vmsupd (%s); leave "
		      "'cpu_quota_percent' and 'memory_max_mib' unset, or run vmsupd where it "
		      "has a cgroup of its own (Delegate=yes) or as root under systemd"),
		    vmsup_cgroup_get_reason(cgroup));
	return FALSE;
}

gboolean
vmsup_vm_cgroup_check_limits(VmsupVmCgroup *self, const VmsupVmDef *def, GError **error)
{
	g_return_val_if_fail(VMSUP_IS_VM_CGROUP(self), FALSE);
	return vmsup_vm_cgroup_check_def(self->cgroup, def, error);
}

gboolean
vmsup_vm_cgroup_is_limit(const gchar *field)
{
	return g_strcmp0(field, "cpu_quota_percent") == 0 ||
	       g_strcmp0(field, "memory_max_mib") == 0;
}

void
vmsup_vm_cgroup_describe_mode(VmsupCgroup *cgroup, JsonObject *obj)
{
	VmsupCgroupMode mode = vmsup_cgroup_get_mode(cgroup);

	json_object_set_string_member(obj, "mode", vmsup_cgroup_mode_to_string(mode));
	json_object_set_boolean_member(obj, "limits_available", mode != VMSUP_CGROUP_MODE_NONE);
	json_object_set_string_member(obj, "detail", vmsup_cgroup_get_reason(cgroup));
}

static GTask *
vmsup_vm_cgroup_task_new(VmsupVmCgroup *self,
			 const VmsupVmDef *def,
			 gpointer source_tag,
			 GAsyncReadyCallback callback,
			 gpointer user_data)
{
	GTask *task = g_task_new(self, NULL, callback, user_data);
	VmsupCgroupLimits *limits = g_new0(VmsupCgroupLimits, 1);

	g_task_set_source_tag(task, source_tag);
	vmsup_vm_cgroup_limits(def, limits);
	g_task_set_task_data(task, limits, g_free);
	return task;
}

static void
vmsup_vm_cgroup_added_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmCgroup *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;

	g_clear_pointer(&self->error, g_free);
	self->placed = vmsup_cgroup_add_finish(VMSUP_CGROUP(source), res, &error);
	if (!self->placed) {
		vmsup_error_convert(&error);
		self->error = g_strdup(error->message);
		g_warning("VM '%s' runs without its cgroup, so without limits: %s, ignoring",
			  self->name,
			  error->message);
	}
	g_task_return_boolean(task, self->placed);
}

void
vmsup_vm_cgroup_place_async(VmsupVmCgroup *self,
			    GPid pid,
			    const VmsupVmDef *def,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	const VmsupCgroupLimits *limits;

	g_return_if_fail(VMSUP_IS_VM_CGROUP(self));
	task =
	    vmsup_vm_cgroup_task_new(self, def, vmsup_vm_cgroup_place_async, callback, user_data);
	self->placed = FALSE;
	g_clear_pointer(&self->error, g_free);
	if (!vmsup_vm_cgroup_wanted(self) || pid <= 0) {
		g_task_return_boolean(task, FALSE);
		return;
	}
	limits = g_task_get_task_data(task);
	vmsup_cgroup_add_async(self->cgroup,
			       self->name,
			       pid,
			       limits,
			       self->cancellable,
			       vmsup_vm_cgroup_added_cb,
			       g_steal_pointer(&task));
}

gboolean
vmsup_vm_cgroup_place_finish(VmsupVmCgroup *self, GAsyncResult *res)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), NULL);
}

gboolean
vmsup_vm_cgroup_is_placed(VmsupVmCgroup *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_CGROUP(self), FALSE);
	return self->placed;
}

void
vmsup_vm_cgroup_release(VmsupVmCgroup *self)
{
	g_autoptr(GError) error = NULL;

	g_return_if_fail(VMSUP_IS_VM_CGROUP(self));
	self->placed = FALSE;
	g_clear_pointer(&self->error, g_free);
	if (!vmsup_cgroup_remove(self->cgroup, self->name, &error))
		g_warning("VM '%s': %s, ignoring", self->name, error->message);
}

static void
vmsup_vm_cgroup_applied_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmCgroup *self = g_task_get_source_object(task);
	GError *error = NULL;

	if (!vmsup_cgroup_set_limits_finish(VMSUP_CGROUP(source), res, &error)) {
		vmsup_error_convert(&error);
		g_prefix_error(&error, _("Cannot change the limits of VM '%s': "), self->name);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_cgroup_apply_async(VmsupVmCgroup *self,
			    GPid pid,
			    const VmsupVmDef *def,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	const VmsupCgroupLimits *limits;

	g_return_if_fail(VMSUP_IS_VM_CGROUP(self));
	task =
	    vmsup_vm_cgroup_task_new(self, def, vmsup_vm_cgroup_apply_async, callback, user_data);
	limits = g_task_get_task_data(task);
	vmsup_cgroup_set_limits_async(self->cgroup,
				      self->name,
				      pid,
				      limits,
				      self->cancellable,
				      vmsup_vm_cgroup_applied_cb,
				      g_steal_pointer(&task));
}

gboolean
vmsup_vm_cgroup_apply_finish(VmsupVmCgroup *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

JsonObject *
vmsup_vm_cgroup_describe(VmsupVmCgroup *self, GPid pid, const VmsupVmDef *def)
{
	JsonObject *obj = json_object_new();
	gboolean alive = pid > 0;

	g_return_val_if_fail(VMSUP_IS_VM_CGROUP(self), obj);
	vmsup_vm_cgroup_describe_mode(self->cgroup, obj);
	/* no counters: vm.get answers from what vmsupd holds, and twins compare equal */
	if (alive && self->placed) {
		g_autofree gchar *path =
		    vmsup_cgroup_get_vm_dir(self->cgroup, self->name, pid, "memory");

		if (path != NULL)
			json_object_set_string_member(obj, "path", path);
	}
	if (alive && self->error != NULL) {
		json_object_set_string_member(obj, "error", self->error);
	} else if (alive && !self->placed &&
		   (def->cpu_quota_percent > 0 || def->memory_max_mib > 0)) {
		/* limits from a host that had cgroups: defined, but not kept */
		g_autofree gchar *text = g_strdup_printf("the limits are not applied: %s",
							 vmsup_cgroup_get_reason(self->cgroup));
		json_object_set_string_member(obj, "error", text);
	}
	return obj;
}

static void
vmsup_vm_cgroup_finalize(GObject *object)
{
	VmsupVmCgroup *self = VMSUP_VM_CGROUP(object);

	g_clear_object(&self->cgroup);
	g_clear_object(&self->cancellable);
	g_free(self->name);
	g_free(self->error);
	G_OBJECT_CLASS(vmsup_vm_cgroup_parent_class)->finalize(object);
}

static void
vmsup_vm_cgroup_class_init(VmsupVmCgroupClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = vmsup_vm_cgroup_finalize;
}

static void
vmsup_vm_cgroup_init(VmsupVmCgroup *self)
{
}

VmsupVmCgroup *
vmsup_vm_cgroup_new(VmsupCgroup *cgroup, const gchar *name, GCancellable *cancellable)
{
	VmsupVmCgroup *self = g_object_new(VMSUP_TYPE_VM_CGROUP, NULL);

	self->cgroup = g_object_ref(cgroup);
	self->name = g_strdup(name);
	self->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
	return self;
}
