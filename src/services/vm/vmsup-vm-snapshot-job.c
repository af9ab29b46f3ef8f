/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The steps a snapshot's create, restore and delete are made of: qemu-img, QMP, the entry. */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-snapshot-job.h"
void
vmsup_snapshot_job_free(VmsupSnapshotJob *job)
{
	if (job->cancel_id != 0)
		g_cancellable_disconnect(vmsup_operation_get_cancellable(job->op), job->cancel_id);
	g_clear_object(&job->vm);
	g_clear_object(&job->store);
	g_clear_object(&job->op);
	g_free(job->qemu_img);
	g_free(job->snapshot);
	g_free(job->tag);
	g_free(job->node);
	g_free(job->vm_state);
	g_free(job->tmp_path);
	g_free(job->state_path);
	if (job->fd >= 0)
		close(job->fd);
	g_clear_pointer(&job->entry, json_object_unref);
	g_clear_object(&job->qmp);
	g_clear_error(&job->error);
	g_free(job);
}

VmsupSnapshotJob *
vmsup_snapshot_job_new(VmsupVm *vm,
		       VmsupSnapshotStore *store,
		       const gchar *qemu_img,
		       const gchar *snapshot,
		       VmsupOperation *op)
{
	VmsupSnapshotJob *job = g_new0(VmsupSnapshotJob, 1);

	job->vm = g_object_ref(vm);
	job->store = g_object_ref(store);
	job->op = op != NULL ? g_object_ref(op) : NULL;
	job->qemu_img = g_strdup(qemu_img);
	job->snapshot = g_strdup(snapshot);
	job->tag = g_strconcat(VMSUP_SNAPSHOT_DISK_TAG_PREFIX, snapshot, NULL);
	job->fd = -1;
	return job;
}

void
vmsup_snapshot_job_stage(VmsupSnapshotJob *job, const gchar *stage, gdouble progress)
{
	if (job->op != NULL)
		vmsup_operation_set_stage(job->op, stage, progress);
}

gboolean
vmsup_snapshot_job_cancelled(VmsupSnapshotJob *job, GError **error)
{
	if (job->op == NULL)
		return FALSE;
	return g_cancellable_set_error_if_cancelled(vmsup_operation_get_cancellable(job->op),
						    error);
}

VmsupQmpClient *
vmsup_snapshot_vm_qmp(VmsupVm *vm)
{
	VmsupVmHandles *handles = vmsup_vm_get_handles(vm);
	VmsupQmpClient *qmp;

	if (handles == NULL || handles->process == NULL)
		return NULL;
	qmp = vmsup_qemu_process_get_qmp(handles->process);
	return qmp != NULL && vmsup_qmp_client_is_ready(qmp) ? qmp : NULL;
}

/* the disk's root node in QEMU: how vmsup attaches it (by descriptor, see vmsup-qemu-process.c) */
const gchar *
vmsup_snapshot_disk_node(const VmsupVmDef *def)
{
	return def->disk != NULL ? "vmsup-disk0" : NULL;
}

/* qemu-img, run to its end */

static void
vmsup_snapshot_img_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GSubprocess *process = G_SUBPROCESS(source);
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	GError *error = NULL;

	if (!g_subprocess_communicate_utf8_finish(process, res, &out, &err, &error)) {
		g_task_return_error(task, error);
		return;
	}
	if (!g_subprocess_get_if_exited(process) || g_subprocess_get_exit_status(process) != 0) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					"qemu-img failed: %s",
					err != NULL ? g_strstrip(err) : "?");
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/* qemu-img snapshot @flag @tag @disk */
void
vmsup_snapshot_img_async(VmsupSnapshotJob *job,
			 const gchar *flag,
			 GAsyncReadyCallback callback,
			 gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, user_data);
	g_autoptr(GSubprocess) process = NULL;
	GError *error = NULL;
	const gchar *disk = vmsup_vm_get_def(job->vm)->disk;

	process =
	    g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
			     &error,
			     job->qemu_img,
			     "snapshot",
			     flag,
			     job->tag,
			     disk,
			     NULL);
	if (process == NULL) {
		g_task_return_error(task, error);
		return;
	}
	g_subprocess_communicate_utf8_async(process,
					    NULL,
					    NULL,
					    vmsup_snapshot_img_cb,
					    g_steal_pointer(&task));
}

gboolean
vmsup_snapshot_img_finish(GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* a disk step, done over QMP (QEMU runs) or with qemu-img */
gboolean
vmsup_snapshot_step_finish(GObject *source, GAsyncResult *res, GError **error)
{
	g_autoptr(JsonNode) result = NULL;

	if (!VMSUP_IS_QMP_CLIENT(source))
		return vmsup_snapshot_img_finish(res, error);
	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, error);
	return result != NULL;
}

/* QMP, with @args (owned) */
void
vmsup_snapshot_qmp(VmsupSnapshotJob *job,
		   const gchar *command,
		   JsonObject *args,
		   GAsyncReadyCallback callback,
		   GTask *task /* owned */)
{
	vmsup_qmp_client_execute_async(job->qmp, command, args, NULL, callback, task);
	if (args != NULL)
		json_object_unref(args);
}

JsonObject *
vmsup_snapshot_disk_args(VmsupSnapshotJob *job)
{
	JsonObject *args = json_object_new();

	json_object_set_string_member(args, "device", job->node);
	json_object_set_string_member(args, "name", job->tag);
	return args;
}

/* a step on the disk's internal snapshot: over QMP while QEMU runs, else with qemu-img @flag */
void
vmsup_snapshot_disk_step(VmsupSnapshotJob *job,
			 const gchar *command,
			 const gchar *flag,
			 GAsyncReadyCallback callback,
			 GTask *task /* owned */)
{
	if (job->qmp != NULL) {
		vmsup_snapshot_qmp(job, command, vmsup_snapshot_disk_args(job), callback, task);
		return;
	}
	vmsup_snapshot_img_async(job, flag, callback, task);
}

/* the entry */

JsonObject *
vmsup_snapshot_job_entry(VmsupSnapshotJob *job, gint64 size)
{
	JsonObject *entry = json_object_new();
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autofree gchar *created = vmsup_vm_def_format_time(now);

	json_object_set_string_member(entry, "name", job->snapshot);
	json_object_set_string_member(entry, "created", created);
	json_object_set_int_member(entry, "created_unix", now);
	json_object_set_boolean_member(entry, "memory", job->memory);
	json_object_set_boolean_member(entry, "disk", vmsup_vm_get_def(job->vm)->disk != NULL);
	json_object_set_int_member(entry, "size", size);
	json_object_set_string_member(entry, "vm_state", job->vm_state);
	json_object_set_object_member(
	    entry,
	    "requires",
	    vmsup_snapshot_requires_new(vmsup_vm_get_def(job->vm), job->memory));
	return entry;
}
