/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService, a VM's cgroup: QEMU placed in it right after spawn or
 * adoption, its limits changed live by vm.set, where it is (or why it is
 * not) shown by vm.get, and the cgroup removed once QEMU has exited.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-vm-service-private.h"

VmsupCgroup *
vmsup_vm_service_get_cgroup(VmsupVmService *self)
{
	if (self->cgroup == NULL) {
		/* the runtime dir is this daemon's, over restarts too (adoption relies on it) */
		g_autofree gchar *sum =
		    g_compute_checksum_for_string(G_CHECKSUM_SHA256, self->runtime_dir, -1);
		sum[8] = '\0';
		self->cgroup = vmsup_cgroup_new(sum);
		if (vmsup_cgroup_get_mode(self->cgroup) == VMSUP_CGROUP_MODE_NONE)
			g_message("CPU and memory limits of VMs are unavailable: %s",
				  vmsup_cgroup_get_reason(self->cgroup));
		else
			g_info("VM cgroups: %s", vmsup_cgroup_get_reason(self->cgroup));
	}
	return self->cgroup;
}

gboolean
vmsup_vm_service_cgroup_wanted(VmsupVmService *self)
{
	return vmsup_cgroup_get_mode(vmsup_vm_service_get_cgroup(self)) != VMSUP_CGROUP_MODE_NONE;
}

static void
vmsup_vm_service_cgroup_limits(const VmsupVmDef *def, VmsupCgroupLimits *out_limits)
{
	out_limits->cpu_quota_percent = def->cpu_quota_percent;
	out_limits->memory_max_mib = def->memory_max_mib;
}

gboolean
vmsup_vm_service_cgroup_check_def(VmsupVmService *self, const VmsupVmDef *def, GError **error)
{
	VmsupCgroup *cgroup = vmsup_vm_service_get_cgroup(self);

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

typedef struct {
	VmsupVmRecord *rec;       /* owned */
	VmsupCgroupLimits limits; /* what is being set */
	gboolean resume;          /* QEMU was spawned paused (-S): cont once placed */
} VmsupVmCgroupOp;

static void
vmsup_vm_cgroup_op_free(VmsupVmCgroupOp *op)
{
	vmsup_vm_service_record_unref(op->rec);
	g_free(op);
}

static GTask *
vmsup_vm_service_cgroup_task_new(VmsupVmService *self,
				 VmsupVmRecord *rec,
				 const VmsupVmDef *def,
				 GAsyncReadyCallback callback,
				 gpointer user_data)
{
	GTask *task = g_task_new(self, NULL, callback, user_data);
	VmsupVmCgroupOp *op = g_new0(VmsupVmCgroupOp, 1);

	op->rec = vmsup_vm_service_record_ref(rec);
	vmsup_vm_service_cgroup_limits(def, &op->limits);
	g_task_set_task_data(task, op, (GDestroyNotify)vmsup_vm_cgroup_op_free);
	return task;
}

/* placing a new or adopted QEMU */

static void
vmsup_vm_service_cgroup_resumed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	g_autoptr(JsonNode) result = NULL;
	GError *error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_service_cgroup_place_done(GTask *task /* owned */)
{
	VmsupVmCgroupOp *op = g_task_get_task_data(task);
	VmsupVmRecord *rec = op->rec;

	/* QEMU may have exited meanwhile; the caller looks */
	if (!op->resume || rec->qmp == NULL || rec->process == NULL) {
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	vmsup_qmp_client_execute_async(rec->qmp,
				       "cont",
				       NULL,
				       NULL,
				       vmsup_vm_service_cgroup_resumed_cb,
				       task);
}

static void
vmsup_vm_service_cgroup_added_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmCgroupOp *op = g_task_get_task_data(task);
	VmsupVmRecord *rec = op->rec;
	g_autoptr(GError) error = NULL;

	g_clear_pointer(&rec->cgroup_error, g_free);
	rec->in_cgroup = vmsup_cgroup_add_finish(VMSUP_CGROUP(source), res, &error);
	if (rec->in_cgroup && rec->running_def != NULL) {
		rec->running_def->cpu_quota_percent = op->limits.cpu_quota_percent;
		rec->running_def->memory_max_mib = op->limits.memory_max_mib;
	}
	if (!rec->in_cgroup) {
		vmsup_error_convert(&error);
		rec->cgroup_error = g_strdup(error->message);
		g_warning("VM '%s' runs without its cgroup, so without limits: %s, ignoring",
			  rec->def->name,
			  error->message);
	}
	vmsup_vm_service_cgroup_place_done(g_steal_pointer(&task));
}

void
vmsup_vm_service_cgroup_place_async(VmsupVmService *self,
				    VmsupVmRecord *rec,
				    gboolean resume,
				    GAsyncReadyCallback callback,
				    gpointer user_data)
{
	VmsupCgroup *cgroup = vmsup_vm_service_get_cgroup(self);
	/* limits change live, so the definition's are what QEMU is to run with, adopted or not */
	g_autoptr(GTask) task =
	    vmsup_vm_service_cgroup_task_new(self, rec, rec->def, callback, user_data);
	VmsupVmCgroupOp *op = g_task_get_task_data(task);

	g_task_set_source_tag(task, vmsup_vm_service_cgroup_place_async);
	op->resume = resume;
	rec->in_cgroup = FALSE;
	g_clear_pointer(&rec->cgroup_error, g_free);
	if (vmsup_cgroup_get_mode(cgroup) == VMSUP_CGROUP_MODE_NONE || rec->process == NULL) {
		vmsup_vm_service_cgroup_place_done(g_steal_pointer(&task));
		return;
	}
	vmsup_cgroup_add_async(cgroup,
			       rec->def->name,
			       vmsup_qemu_process_get_pid(rec->process),
			       &op->limits,
			       self->cancellable,
			       vmsup_vm_service_cgroup_added_cb,
			       g_steal_pointer(&task));
}

gboolean
vmsup_vm_service_cgroup_place_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

void
vmsup_vm_service_cgroup_release(VmsupVmService *self, VmsupVmRecord *rec)
{
	g_autoptr(GError) error = NULL;

	rec->in_cgroup = FALSE;
	g_clear_pointer(&rec->cgroup_error, g_free);
	if (!vmsup_cgroup_remove(vmsup_vm_service_get_cgroup(self), rec->def->name, &error))
		g_warning("VM '%s': %s, ignoring", rec->def->name, error->message);
}

/* vm.set of a running VM */

static void
vmsup_vm_service_cgroup_applied_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmCgroupOp *apply = g_task_get_task_data(task);
	GError *error = NULL;

	if (!vmsup_cgroup_set_limits_finish(VMSUP_CGROUP(source), res, &error)) {
		vmsup_error_convert(&error);
		g_prefix_error(&error,
			       _("Cannot change the limits of VM '%s': "),
			       apply->rec->def->name);
		g_task_return_error(task, error);
		return;
	}
	if (apply->rec->running_def != NULL) {
		apply->rec->running_def->cpu_quota_percent = apply->limits.cpu_quota_percent;
		apply->rec->running_def->memory_max_mib = apply->limits.memory_max_mib;
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_service_cgroup_apply_async(VmsupVmService *self,
				    VmsupVmRecord *rec,
				    const VmsupVmDef *def,
				    GAsyncReadyCallback callback,
				    gpointer user_data)
{
	g_autoptr(GTask) task =
	    vmsup_vm_service_cgroup_task_new(self, rec, def, callback, user_data);
	VmsupVmCgroupOp *apply = g_task_get_task_data(task);
	GError *error = NULL;

	g_task_set_source_tag(task, vmsup_vm_service_cgroup_apply_async);
	/* limits kept as they are stay allowed, so other fields can change */
	if ((def->cpu_quota_percent != rec->def->cpu_quota_percent ||
	     def->memory_max_mib != rec->def->memory_max_mib) &&
	    !vmsup_vm_service_cgroup_check_def(self, def, &error)) {
		g_task_return_error(task, error);
		return;
	}
	/* not running, or running without its cgroup: the limits apply at the next start */
	if (rec->process == NULL || !vmsup_qemu_process_is_running(rec->process) ||
	    !rec->in_cgroup ||
	    (rec->running_def != NULL &&
	     rec->running_def->cpu_quota_percent == apply->limits.cpu_quota_percent &&
	     rec->running_def->memory_max_mib == apply->limits.memory_max_mib)) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	vmsup_cgroup_set_limits_async(vmsup_vm_service_get_cgroup(self),
				      rec->def->name,
				      vmsup_qemu_process_get_pid(rec->process),
				      &apply->limits,
				      self->cancellable,
				      vmsup_vm_service_cgroup_applied_cb,
				      g_steal_pointer(&task));
}

gboolean
vmsup_vm_service_cgroup_apply_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

gboolean
vmsup_vm_service_cgroup_is_limit(const gchar *field)
{
	return g_strcmp0(field, "cpu_quota_percent") == 0 ||
	       g_strcmp0(field, "memory_max_mib") == 0;
}

gboolean
vmsup_vm_service_cgroup_limits_kept(VmsupVmRecord *rec)
{
	/* a stopped VM gets them at its next start, which is all a change asks of it */
	if (rec->process == NULL || !vmsup_qemu_process_is_running(rec->process))
		return TRUE;
	return rec->in_cgroup;
}

/* vm.get's "cgroup" and daemon.info's */

static void
vmsup_vm_service_cgroup_set_mode(JsonObject *obj, VmsupCgroup *cgroup)
{
	VmsupCgroupMode mode = vmsup_cgroup_get_mode(cgroup);

	json_object_set_string_member(obj, "mode", vmsup_cgroup_mode_to_string(mode));
	json_object_set_boolean_member(obj, "limits_available", mode != VMSUP_CGROUP_MODE_NONE);
	json_object_set_string_member(obj, "detail", vmsup_cgroup_get_reason(cgroup));
}

JsonObject *
vmsup_vm_service_get_cgroup_info(VmsupVmService *self)
{
	JsonObject *obj = json_object_new();

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), obj);
	vmsup_vm_service_cgroup_set_mode(obj, vmsup_vm_service_get_cgroup(self));
	return obj;
}

JsonObject *
vmsup_vm_service_cgroup_describe(VmsupVmService *self, VmsupVmRecord *rec)
{
	VmsupCgroup *cgroup = vmsup_vm_service_get_cgroup(self);
	JsonObject *obj = json_object_new();
	gboolean alive = rec->process != NULL && vmsup_qemu_process_is_running(rec->process);

	vmsup_vm_service_cgroup_set_mode(obj, cgroup);
	/* no counters: vm.get answers from what VMService holds, and twins compare equal */
	if (alive && rec->in_cgroup) {
		GPid pid = vmsup_qemu_process_get_pid(rec->process);
		g_autofree gchar *path =
		    vmsup_cgroup_get_vm_dir(cgroup, rec->def->name, pid, "memory");

		if (path != NULL)
			json_object_set_string_member(obj, "path", path);
	}
	if (alive && rec->cgroup_error != NULL) {
		json_object_set_string_member(obj, "error", rec->cgroup_error);
	} else if (alive && !rec->in_cgroup &&
		   (rec->def->cpu_quota_percent > 0 || rec->def->memory_max_mib > 0)) {
		/* limits from a host that had cgroups: defined, but not kept */
		g_autofree gchar *text = g_strdup_printf("the limits are not applied: %s",
							 vmsup_cgroup_get_reason(cgroup));
		json_object_set_string_member(obj, "error", text);
	}
	return obj;
}
