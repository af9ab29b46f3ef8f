/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Restoring and deleting the snapshots of one VM, and the check at daemon
 * start that its record agrees with what is on disk.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-vm-snapshot-job.h"
#include "vmsup-vm-snapshot.h"

/* the guest's agent gets this long to take the time after a restore */
#define VMSUP_SNAPSHOT_AGENT_TIMEOUT_MS 5000

/* restore */

JsonObject *
vmsup_vm_snapshot_check_restore(VmsupVm *vm,
				VmsupSnapshotStore *store,
				const gchar *snapshot,
				GError **error)
{
	const VmsupVmDef *def = vmsup_vm_get_def(vm);
	g_autoptr(JsonObject) entry = vmsup_snapshot_store_find(store, def->name, snapshot);
	JsonNode *requires;
	const gchar *field;
	VmsupVmState state = vmsup_vm_get_state(vm);

	if (entry == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    _("VM '%s' has no snapshot '%s'; 'vmsup snapshot list %s' shows its "
			      "snapshots"),
			    def->name,
			    snapshot,
			    def->name);
		return NULL;
	}
	requires = json_object_get_member(entry, "requires");
	field = vmsup_snapshot_requires_mismatch(
	    requires != NULL && JSON_NODE_HOLDS_OBJECT(requires) ? json_node_get_object(requires)
								 : NULL,
	    def);
	if (field != NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Snapshot '%s' was taken with another '%s' than VM '%s' has now; "
			      "set it back with 'vmsup set', or delete the snapshot"),
			    snapshot,
			    field,
			    def->name);
		return NULL;
	}
	if (vmsup_vm_has_process(vm) && state != VMSUP_VM_STATE_RUNNING &&
	    state != VMSUP_VM_STATE_PAUSED) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    _("VM '%s' is %s; wait until it runs or has stopped"),
			    def->name,
			    vmsup_vm_state_to_string(state));
		return NULL;
	}
	if (!vmsup_json_object_get_bool(entry, "memory", FALSE) && vmsup_vm_has_process(vm)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Snapshot '%s' holds only the disk, which cannot change under a "
			      "running VM; stop '%s' first ('vmsup stop %s')"),
			    snapshot,
			    def->name,
			    def->name);
		return NULL;
	}
	return g_steal_pointer(&entry);
}

static void
vmsup_snapshot_restore_fail(GTask *task /* owned */, GError *error /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);

	vmsup_error_convert(&error);
	if (error->code != VMSUP_ERROR_CANCELLED)
		g_prefix_error(&error,
			       _("Cannot restore snapshot '%s' of VM '%s': "),
			       job->snapshot,
			       vmsup_vm_get_name(job->vm));
	g_task_return_error(task, error);
	g_object_unref(task);
}

static void
vmsup_snapshot_restore_done(GTask *task /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);

	vmsup_snapshot_job_stage(job, "restored", 1.0);
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     vmsup_vm_get_name(job->vm),
		     "VM '%s' restored to snapshot '%s'",
		     vmsup_vm_get_name(job->vm),
		     job->snapshot);
	g_task_return_boolean(task, TRUE);
	g_object_unref(task);
}

static void
vmsup_snapshot_time_set_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	g_autoptr(JsonNode) result = NULL;
	g_autoptr(GError) error = NULL;

	/* a guest without an agent (or without hwclock) keeps the clock it had */
	result = vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);
	if (result == NULL)
		vmsup_log_vm(G_LOG_LEVEL_INFO,
			     vmsup_vm_get_name(job->vm),
			     "the clock of VM '%s' was not set after the restore: %s",
			     vmsup_vm_get_name(job->vm),
			     error->message);
	vmsup_snapshot_restore_done(task);
}

/* the guest resumes with the clock of the save: the agent (in sync again) gets the time now */
static void
vmsup_snapshot_restore_clock(GTask *task /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	VmsupVmHandles *handles = vmsup_vm_get_handles(job->vm);
	g_autoptr(JsonObject) args = json_object_new();

	if (handles == NULL || handles->qga == NULL) {
		vmsup_snapshot_restore_done(task);
		return;
	}
	vmsup_snapshot_job_stage(job, "setting the guest's clock", 0.9);
	json_object_set_int_member(args, "time", g_get_real_time() * 1000);
	vmsup_qga_client_execute_async(handles->qga,
				       "guest-set-time",
				       args,
				       VMSUP_SNAPSHOT_AGENT_TIMEOUT_MS,
				       NULL,
				       vmsup_snapshot_time_set_cb,
				       task);
}

static void
vmsup_snapshot_poll_load(GTask *task /* owned */);

static void
vmsup_snapshot_load_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	g_autoptr(JsonNode) result = NULL;
	GError *error = NULL;
	const gchar *status = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		vmsup_snapshot_restore_fail(task, error);
		return;
	}
	if (JSON_NODE_HOLDS_OBJECT(result))
		status = vmsup_json_object_get_string(json_node_get_object(result), "status", NULL);
	if (g_strcmp0(status, "inmigrate") == 0) {
		vmsup_snapshot_poll_load(task);
		return;
	}
	vmsup_snapshot_restore_clock(task);
}

static gboolean
vmsup_snapshot_poll_load_cb(gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	VmsupQmpClient *qmp = vmsup_snapshot_vm_qmp(job->vm);

	/* a state QEMU cannot load makes it exit */
	if (qmp == NULL) {
		vmsup_snapshot_restore_fail(
		    task,
		    g_error_new(VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("QEMU could not load the saved state; see "
				  "its log in the VM's runtime directory")));
		return G_SOURCE_REMOVE;
	}
	vmsup_qmp_client_execute_async(qmp,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_snapshot_load_status_cb,
				       task);
	return G_SOURCE_REMOVE;
}

static void
vmsup_snapshot_poll_load(GTask *task /* owned */)
{
	g_timeout_add(VMSUP_SNAPSHOT_POLL_MS, vmsup_snapshot_poll_load_cb, task);
}

static void
vmsup_snapshot_started_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	GError *error = NULL;

	if (!vmsup_vm_start_finish(VMSUP_VM(source), res, &error)) {
		vmsup_snapshot_restore_fail(task, error);
		return;
	}
	/* QEMU answers once the state is loaded (it reads the file in its main loop) */
	vmsup_snapshot_poll_load_cb(task);
}

static void
vmsup_snapshot_restore_memory(GTask *task /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	g_autofree gchar *path =
	    vmsup_snapshot_store_state_path(job->store, vmsup_vm_get_name(job->vm), job->snapshot);
	gint fd;

	if (!vmsup_json_object_get_bool(job->entry, "memory", FALSE)) {
		vmsup_snapshot_restore_done(task);
		return;
	}
	vmsup_snapshot_job_stage(job, "loading memory", 0.3);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		gint saved_errno = errno;
		vmsup_snapshot_restore_fail(task,
					    g_error_new(VMSUP_ERROR,
							VMSUP_ERROR_FAILED_PRECONDITION,
							_("cannot open the saved state '%s': %s"),
							path,
							g_strerror(saved_errno)));
		return;
	}
	vmsup_vm_set_incoming(job->vm, fd);
	vmsup_vm_start_async(job->vm, NULL, vmsup_snapshot_started_cb, task);
}

static void
vmsup_snapshot_reverted_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	GError *error = NULL;

	if (!vmsup_snapshot_img_finish(res, &error)) {
		vmsup_snapshot_restore_fail(task, error);
		return;
	}
	vmsup_snapshot_restore_memory(task);
}

static void
vmsup_snapshot_restore_disk(GTask *task /* owned */)
{
	VmsupSnapshotJob *job = g_task_get_task_data(task);

	if (!vmsup_json_object_get_bool(job->entry, "disk", FALSE)) {
		vmsup_snapshot_restore_memory(task);
		return;
	}
	vmsup_snapshot_job_stage(job, "reverting the disk", 0.2);
	vmsup_snapshot_img_async(job, "-a", vmsup_snapshot_reverted_cb, task);
}

static void
vmsup_snapshot_restore_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	GError *error = NULL;

	if (!vmsup_vm_stop_finish(VMSUP_VM(source), res, &error)) {
		vmsup_snapshot_restore_fail(task, error);
		return;
	}
	vmsup_snapshot_restore_disk(task);
}

void
vmsup_vm_snapshot_restore_async(VmsupVm *vm,
				VmsupSnapshotStore *store,
				const gchar *qemu_img,
				JsonObject *entry,
				VmsupOperation *op,
				GAsyncReadyCallback callback,
				gpointer user_data)
{
	GTask *task = g_task_new(vm, NULL, callback, user_data);
	VmsupSnapshotJob *job =
	    vmsup_snapshot_job_new(vm,
				   store,
				   qemu_img,
				   vmsup_json_object_get_string(entry, "name", ""),
				   op);

	g_task_set_source_tag(task, vmsup_vm_snapshot_restore_async);
	g_task_set_task_data(task, job, (GDestroyNotify)vmsup_snapshot_job_free);
	job->entry = json_object_ref(entry);
	/* what runs now is given up for the saved state */
	if (vmsup_vm_has_process(vm)) {
		g_autofree gchar *reason =
		    g_strdup_printf("restoring snapshot '%s'", job->snapshot);
		vmsup_snapshot_job_stage(job, "stopping", 0.0);
		vmsup_vm_stop_async(vm, TRUE, 0, reason, vmsup_snapshot_restore_stopped_cb, task);
		return;
	}
	vmsup_snapshot_restore_disk(task);
}

gboolean
vmsup_vm_snapshot_restore_finish(GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* delete */

static void
vmsup_snapshot_deleted_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupSnapshotJob *job = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	gboolean done;

	done = vmsup_snapshot_step_finish(source, res, &error);
	/* the entry is gone already: what is left is removed at the next daemon start */
	if (!done)
		g_warning("Cannot remove the disk snapshot '%s' of VM '%s': %s, ignoring",
			  job->tag,
			  vmsup_vm_get_name(job->vm),
			  error->message);
	g_task_return_boolean(task, TRUE);
	g_object_unref(task);
}

void
vmsup_vm_snapshot_delete_async(VmsupVm *vm,
			       VmsupSnapshotStore *store,
			       const gchar *qemu_img,
			       const gchar *snapshot,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	GTask *task = g_task_new(vm, NULL, callback, user_data);
	VmsupSnapshotJob *job = vmsup_snapshot_job_new(vm, store, qemu_img, snapshot, NULL);
	const gchar *name = vmsup_vm_get_name(vm);
	g_autoptr(JsonObject) entry = vmsup_snapshot_store_find(store, name, snapshot);
	g_autofree gchar *path = NULL;
	GError *error = NULL;

	g_task_set_source_tag(task, vmsup_vm_snapshot_delete_async);
	g_task_set_task_data(task, job, (GDestroyNotify)vmsup_snapshot_job_free);
	if (entry == NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_NOT_FOUND,
					_("VM '%s' has no snapshot '%s'; 'vmsup snapshot list %s' "
					  "shows its snapshots"),
					name,
					snapshot,
					name);
		g_object_unref(task);
		return;
	}
	if (!vmsup_snapshot_store_drop(store, name, snapshot, &error)) {
		g_task_return_error(task, error);
		g_object_unref(task);
		return;
	}
	path = vmsup_snapshot_store_state_path(store, name, snapshot);
	if (g_unlink(path) != 0 && errno != ENOENT)
		g_warning("Cannot remove '%s': %s, ignoring", path, g_strerror(errno));
	if (!vmsup_json_object_get_bool(entry, "disk", FALSE) ||
	    vmsup_vm_get_def(vm)->disk == NULL) {
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	job->qmp =
	    vmsup_snapshot_vm_qmp(vm) != NULL ? g_object_ref(vmsup_snapshot_vm_qmp(vm)) : NULL;
	job->node = g_strdup(vmsup_snapshot_disk_node(vmsup_vm_get_def(vm)));
	vmsup_snapshot_disk_step(job,
				 "blockdev-snapshot-delete-internal-sync",
				 "-d",
				 vmsup_snapshot_deleted_cb,
				 task);
}

gboolean
vmsup_vm_snapshot_delete_finish(GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* reconcile */

/* the internal snapshots' tags on @disk (qemu-img info, sharing the image with a running QEMU) */
static GStrv
vmsup_snapshot_disk_tags(const gchar *qemu_img, const gchar *disk)
{
	const gchar *argv[] = {qemu_img, "info", "-U", "--output=json", disk, NULL};
	g_autofree gchar *out = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GStrvBuilder) tags = g_strv_builder_new();
	g_autoptr(JsonObject) info = NULL;
	JsonNode *snapshots;
	gint status = 0;

	if (!g_spawn_sync(NULL,
			  (gchar **)argv,
			  NULL,
			  G_SPAWN_STDERR_TO_DEV_NULL,
			  NULL,
			  NULL,
			  &out,
			  NULL,
			  &status,
			  &error) ||
	    !g_spawn_check_wait_status(status, &error)) {
		g_warning("Cannot list the snapshots of the disk '%s': %s", disk, error->message);
		return NULL;
	}
	info = vmsup_json_parse_object(out, -1, NULL);
	if (info == NULL)
		return NULL;
	snapshots = json_object_get_member(info, "snapshots");
	if (snapshots != NULL && JSON_NODE_HOLDS_ARRAY(snapshots)) {
		JsonArray *array = json_node_get_array(snapshots);
		for (guint i = 0; i < json_array_get_length(array); i++) {
			JsonNode *node = json_array_get_element(array, i);
			if (JSON_NODE_HOLDS_OBJECT(node))
				g_strv_builder_add(
				    tags,
				    vmsup_json_object_get_string(json_node_get_object(node),
								 "name",
								 ""));
		}
	}
	return g_strv_builder_end(tags);
}

void
vmsup_vm_snapshot_reconcile(VmsupSnapshotStore *store,
			    const VmsupVmDef *def,
			    const gchar *qemu_img,
			    gboolean running)
{
	g_auto(GStrv) tags = NULL;
	g_auto(GStrv) stray = NULL;

	if (def->disk != NULL && qemu_img != NULL && g_file_test(def->disk, G_FILE_TEST_IS_REGULAR))
		tags = vmsup_snapshot_disk_tags(qemu_img, def->disk);
	stray = vmsup_snapshot_store_reconcile(store, def->name, (const gchar *const *)tags);
	for (guint i = 0; !running && stray != NULL && stray[i] != NULL; i++) {
		const gchar *argv[] = {qemu_img, "snapshot", "-d", stray[i], def->disk, NULL};
		g_autoptr(GError) error = NULL;
		gint status = 0;

		g_message("Removing the disk snapshot '%s' of VM '%s', left by a snapshot that did "
			  "not complete",
			  stray[i],
			  def->name);
		if (!g_spawn_sync(NULL,
				  (gchar **)argv,
				  NULL,
				  G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
				  NULL,
				  NULL,
				  NULL,
				  NULL,
				  &status,
				  &error) ||
		    !g_spawn_check_wait_status(status, &error))
			g_warning("Cannot remove it: %s, ignoring", error->message);
	}
}
