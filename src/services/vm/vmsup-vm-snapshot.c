/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Making the snapshot of one VM, in the order that keeps vmsup's record
 * and QEMU's agreeing over a crash: the entry is saved last (and, in
 * vmsup-vm-snapshot-restore.c, dropped first).
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-snapshot-job.h"
#include "vmsup-vm-snapshot.h"

/* no cap on the speed of a save: the vCPUs are stopped while it runs */
#define VMSUP_SNAPSHOT_MAX_BANDWIDTH G_GINT64_CONSTANT(1099511627776)

/* create */

gboolean
vmsup_vm_snapshot_check_create(VmsupVm *vm, gboolean memory, GError **error)
{
	const VmsupVmDef *def = vmsup_vm_get_def(vm);
	VmsupVmState state = vmsup_vm_get_state(vm);
	gboolean runs = state == VMSUP_VM_STATE_RUNNING || state == VMSUP_VM_STATE_PAUSED;

	if (vmsup_vm_has_process(vm) && (!runs || vmsup_snapshot_vm_qmp(vm) == NULL)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    _("VM '%s' is %s; wait until it runs or has stopped"),
			    def->name,
			    vmsup_vm_state_to_string(state));
		return FALSE;
	}
	if (memory && !vmsup_vm_has_process(vm)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("VM '%s' does not run, so it has no memory to save; start it, or "
			      "take a disk-only snapshot (memory false)"),
			    def->name);
		return FALSE;
	}
	/* QEMU blocks migration while the guest has the 9p share mounted, and a
	 * workspace VM has it mounted from its open on */
	if (memory && def->share_dir != NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("VM '%s' shares a workspace directory, and QEMU cannot save the "
			      "memory of a VM while its share is mounted; take a disk-only "
			      "snapshot (memory false), or stop the VM and snapshot it then"),
			    def->name);
		return FALSE;
	}
	if (!memory && def->disk == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("VM '%s' has no disk, so a disk-only snapshot would hold nothing; "
			      "take one with memory of the running VM instead"),
			    def->name);
		return FALSE;
	}
	return TRUE;
}

static void
vmsup_snapshot_create_undo(GTask *task /* owned */, GError *error /* owned */);

static void
vmsup_snapshot_create_done(GTask *task /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);

	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     vmsup_vm_get_name(job->vm),
		     "snapshot '%s' of VM '%s' taken (%s)",
		     job->snapshot,
		     vmsup_vm_get_name(job->vm),
		     job->memory ? "with memory" : "disk only");
	g_task_return_pointer(task,
			      g_steal_pointer(&job->entry),
			      (GDestroyNotify)json_object_unref);
	g_object_unref(task);
}

static void
vmsup_snapshot_create_resumed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	g_autoptr(JsonNode) result = NULL;
	g_autoptr(GError) error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL)
		g_warning("Cannot resume VM '%s' after its snapshot: %s",
			  vmsup_vm_get_name(job->vm),
			  error->message);
	if (job->error != NULL) {
		g_task_return_error(task, g_steal_pointer(&job->error));
		g_object_unref(task);
		return;
	}
	vmsup_snapshot_create_done(task);
}

/* the vCPUs go on if they ran before; then the result or the error */
static void
vmsup_snapshot_create_end(GTask *task /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);

	if (job->stopped && job->qmp != NULL) {
		job->stopped = FALSE;
		vmsup_snapshot_qmp(job, "cont", NULL, vmsup_snapshot_create_resumed_cb, task);
		return;
	}
	if (job->error != NULL) {
		g_task_return_error(task, g_steal_pointer(&job->error));
		g_object_unref(task);
		return;
	}
	vmsup_snapshot_create_done(task);
}

static gboolean
vmsup_snapshot_save_entry(VmsupSnapshotJob *job, gint64 size, GError **error)
{
	g_autoptr(JsonObject) entry = vmsup_snapshot_job_entry(job, size);

	if (!vmsup_snapshot_store_put(job->store, vmsup_vm_get_name(job->vm), entry, error))
		return FALSE;
	job->entry = g_steal_pointer(&entry);
	return TRUE;
}

static void
vmsup_snapshot_undo_disk_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	gboolean done;

	done = vmsup_snapshot_step_finish(source, res, &error);
	if (!done)
		g_warning("Cannot remove the disk snapshot '%s' of VM '%s': %s; it is removed at "
			  "the next daemon start",
			  job->tag,
			  vmsup_vm_get_name(job->vm),
			  error->message);
	vmsup_snapshot_create_end(task);
}

/* a create failed or was cancelled: nothing of it stays */
static void
vmsup_snapshot_create_undo(GTask *task /* owned */, GError *error /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);

	vmsup_error_convert(&error);
	g_clear_error(&job->error);
	job->error = error;
	if (job->fd >= 0) {
		close(job->fd);
		job->fd = -1;
	}
	if (job->tmp_path != NULL)
		g_unlink(job->tmp_path);
	if (job->disk_made) {
		job->disk_made = FALSE;
		vmsup_snapshot_disk_step(job,
					 "blockdev-snapshot-delete-internal-sync",
					 "-d",
					 vmsup_snapshot_undo_disk_cb,
					 task);
		return;
	}
	vmsup_snapshot_create_end(task);
}

/* the state is in its file: durable, under its name, then listed */
static void
vmsup_snapshot_create_saved(GTask *task /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	GError *error = NULL;
	struct stat st;
	g_autofree gchar *dir = NULL;
	gint dir_fd;

	if (fsync(job->fd) != 0 || fstat(job->fd, &st) != 0) {
		gint saved_errno = errno;
		vmsup_snapshot_create_undo(task,
					   g_error_new(VMSUP_ERROR,
						       VMSUP_ERROR_FAILED_PRECONDITION,
						       _("Cannot write the saved state '%s': %s"),
						       job->tmp_path,
						       g_strerror(saved_errno)));
		return;
	}
	close(job->fd);
	job->fd = -1;
	if (g_rename(job->tmp_path, job->state_path) != 0) {
		gint saved_errno = errno;
		vmsup_snapshot_create_undo(task,
					   g_error_new(VMSUP_ERROR,
						       VMSUP_ERROR_FAILED_PRECONDITION,
						       _("Cannot rename the saved state '%s': %s"),
						       job->tmp_path,
						       g_strerror(saved_errno)));
		return;
	}
	g_clear_pointer(&job->tmp_path, g_free);
	dir = g_path_get_dirname(job->state_path);
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd >= 0) {
		fsync(dir_fd);
		close(dir_fd);
	}
	if (!vmsup_snapshot_save_entry(job, (gint64)st.st_size, &error)) {
		g_unlink(job->state_path);
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	vmsup_snapshot_job_stage(job, "saved", 1.0);
	vmsup_snapshot_create_end(task);
}

static void
vmsup_snapshot_poll_migration(GTask *task /* owned */);

static void
vmsup_snapshot_migration_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	g_autoptr(JsonNode) result = NULL;
	GError *error = NULL;
	JsonObject *info;
	const gchar *status;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	info = JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;
	status = info != NULL ? vmsup_json_object_get_string(info, "status", "") : "";
	if (g_strcmp0(status, "completed") == 0) {
		vmsup_snapshot_create_saved(task);
		return;
	}
	if (g_strcmp0(status, "failed") == 0 || g_strcmp0(status, "cancelled") == 0) {
		if (job->cancel_sent) {
			vmsup_snapshot_create_undo(
			    task,
			    g_error_new_literal(VMSUP_ERROR,
						VMSUP_ERROR_CANCELLED,
						_("The snapshot was cancelled")));
			return;
		}
		vmsup_snapshot_create_undo(
		    task,
		    g_error_new(VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("Cannot save the memory of VM '%s': %s; check the free space "
				  "of the state directory"),
				vmsup_vm_get_name(job->vm),
				vmsup_json_object_get_string(info, "error-desc", status)));
		return;
	}
	if (info != NULL && json_object_has_member(info, "ram")) {
		JsonObject *ram = json_object_get_object_member(info, "ram");
		gdouble total = (gdouble)vmsup_json_object_get_int(ram, "total", 0);
		gdouble done = (gdouble)vmsup_json_object_get_int(ram, "transferred", 0);
		if (total > 0)
			vmsup_snapshot_job_stage(job,
						 "saving memory",
						 0.1 + 0.85 * MIN(1.0, done / total));
	}
	vmsup_snapshot_poll_migration(task);
}

static gboolean
vmsup_snapshot_poll_migration_cb(gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);

	vmsup_snapshot_qmp(job, "query-migrate", NULL, vmsup_snapshot_migration_status_cb, task);
	return G_SOURCE_REMOVE;
}

static void
vmsup_snapshot_poll_migration(GTask *task /* owned */)
{
	g_timeout_add(VMSUP_SNAPSHOT_POLL_MS, vmsup_snapshot_poll_migration_cb, task);
}

static void
vmsup_snapshot_cancel_cb(GCancellable *cancellable, gpointer user_data)
{
	VmsupSnapshotJob *job = user_data;

	/* the poll sees the migration cancelled and undoes the rest */
	job->cancel_sent = TRUE;
	vmsup_qmp_client_execute_async(job->qmp, "migrate_cancel", NULL, NULL, NULL, NULL);
}

static void
vmsup_snapshot_migrate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	g_autoptr(JsonNode) result = NULL;
	GError *error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		/* QEMU refuses at once, e.g. "Migration is disabled when VirtFS export path is
		 * mounted" */
		g_prefix_error(&error,
			       _("Cannot save the memory of VM '%s': "),
			       vmsup_vm_get_name(job->vm));
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	if (job->op != NULL)
		job->cancel_id = g_cancellable_connect(vmsup_operation_get_cancellable(job->op),
						       G_CALLBACK(vmsup_snapshot_cancel_cb),
						       job,
						       NULL);
	vmsup_snapshot_poll_migration(task);
}

static void
vmsup_snapshot_bandwidth_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	g_autoptr(JsonNode) result = NULL;
	GError *error = NULL;
	JsonObject *args;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL || vmsup_snapshot_job_cancelled(job, &error)) {
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	args = json_object_new();
	json_object_set_string_member(args, "uri", "fd:" VMSUP_SNAPSHOT_FDNAME);
	vmsup_snapshot_qmp(job, "migrate", args, vmsup_snapshot_migrate_cb, task);
}

static void
vmsup_snapshot_getfd_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	g_autoptr(JsonNode) result = NULL;
	GError *error = NULL;
	JsonObject *args;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	args = json_object_new();
	json_object_set_int_member(args, "max-bandwidth", VMSUP_SNAPSHOT_MAX_BANDWIDTH);
	vmsup_snapshot_qmp(job, "migrate-set-parameters", args, vmsup_snapshot_bandwidth_cb, task);
}

/* the machine state, as a migration stream into a file QEMU gets by descriptor */
static void
vmsup_snapshot_save_memory(GTask *task /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	const gchar *name = vmsup_vm_get_name(job->vm);
	g_autofree gchar *dir = NULL;
	GError *error = NULL;
	JsonObject *args;

	vmsup_snapshot_job_stage(job, "saving memory", 0.1);
	dir = vmsup_snapshot_store_vm_dir(job->store, name, TRUE, &error);
	if (dir == NULL) {
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	job->state_path = vmsup_snapshot_store_state_path(job->store, name, job->snapshot);
	job->tmp_path = g_strconcat(job->state_path, ".tmp", NULL);
	job->fd = open(job->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (job->fd < 0) {
		gint saved_errno = errno;
		g_clear_pointer(&job->tmp_path, g_free);
		vmsup_snapshot_create_undo(task,
					   g_error_new(VMSUP_ERROR,
						       VMSUP_ERROR_FAILED_PRECONDITION,
						       _("Cannot create the saved state '%s': %s"),
						       job->state_path,
						       g_strerror(saved_errno)));
		return;
	}
	if (!vmsup_qmp_client_send_fd(job->qmp, job->fd, &error)) {
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	args = json_object_new();
	json_object_set_string_member(args, "fdname", VMSUP_SNAPSHOT_FDNAME);
	vmsup_snapshot_qmp(job, "getfd", args, vmsup_snapshot_getfd_cb, task);
}

static void
vmsup_snapshot_disk_made_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	GError *error = NULL;
	gboolean done;

	done = vmsup_snapshot_step_finish(source, res, &error);
	if (!done) {
		g_prefix_error(&error,
			       _("Cannot snapshot the disk of VM '%s': "),
			       vmsup_vm_get_name(job->vm));
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	job->disk_made = TRUE;
	if (vmsup_snapshot_job_cancelled(job, &error)) {
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	if (job->memory) {
		vmsup_snapshot_save_memory(task);
		return;
	}
	if (!vmsup_snapshot_save_entry(job, 0, &error)) {
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	vmsup_snapshot_create_end(task);
}

/* a tag an earlier, unfinished snapshot of this name left goes first */
static void
vmsup_snapshot_disk_cleared_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);

	vmsup_snapshot_step_finish(source, res, NULL);
	vmsup_snapshot_job_stage(job, "snapshotting the disk", 0.05);
	vmsup_snapshot_disk_step(job,
				 "blockdev-snapshot-internal-sync",
				 "-c",
				 vmsup_snapshot_disk_made_cb,
				 task);
}

static void
vmsup_snapshot_create_disk(GTask *task /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);

	if (job->node == NULL) {
		vmsup_snapshot_save_memory(task);
		return;
	}
	vmsup_snapshot_disk_step(job,
				 "blockdev-snapshot-delete-internal-sync",
				 "-d",
				 vmsup_snapshot_disk_cleared_cb,
				 task);
}

static void
vmsup_snapshot_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	g_autoptr(JsonNode) result = NULL;
	GError *error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		vmsup_snapshot_create_undo(task, error);
		return;
	}
	job->stopped = TRUE;
	vmsup_snapshot_create_disk(task);
}

void
vmsup_vm_snapshot_create_async(VmsupVm *vm,
			       VmsupSnapshotStore *store,
			       const gchar *qemu_img,
			       const gchar *snapshot,
			       gboolean memory,
			       VmsupOperation *op,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	GTask *task = g_task_new(vm, NULL, callback, user_data);
	VmsupSnapshotJob *job = vmsup_snapshot_job_new(vm, store, qemu_img, snapshot, op);
	VmsupQmpClient *qmp = vmsup_snapshot_vm_qmp(vm);
	VmsupVmState state = vmsup_vm_get_state(vm);

	g_task_set_source_tag(task, vmsup_vm_snapshot_create_async);
	g_task_set_task_data(task, job, (GDestroyNotify)vmsup_snapshot_job_free);
	job->memory = memory;
	job->qmp = qmp != NULL ? g_object_ref(qmp) : NULL;
	job->node = g_strdup(vmsup_snapshot_disk_node(vmsup_vm_get_def(vm)));
	job->vm_state = g_strdup(qmp != NULL ? vmsup_vm_state_to_string(state) : "stopped");
	/* the disk and the memory are taken at one instant: the vCPUs wait for both */
	if (memory && state == VMSUP_VM_STATE_RUNNING) {
		vmsup_snapshot_job_stage(job, "stopping the vCPUs", 0.0);
		vmsup_snapshot_qmp(job, "stop", NULL, vmsup_snapshot_stopped_cb, task);
		return;
	}
	vmsup_snapshot_create_disk(task);
}

JsonObject *
vmsup_vm_snapshot_create_finish(GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
}
