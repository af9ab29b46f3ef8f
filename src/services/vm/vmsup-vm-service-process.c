/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService, one run of a VM's QEMU: the accelerator probe, spawn, the
 * handles of the run, exit and cleanup, the runtime file, and start and stop
 * under the VM's lock.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-preflight.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-files.h"
#include "vmsup-vm-service-private.h"

/* what a running VM was started with, for adoption by a later daemon */
#define VMSUP_VM_SERVICE_RUNTIME_FILE "vmsup-runtime.json"

/* accelerator */

static void
vmsup_vm_service_accel_known(VmsupVmService *self, VmsupAccel accel, const gchar *reason)
{
	g_autoptr(GPtrArray) waiters = g_steal_pointer(&self->accel_waiters);

	self->accel = accel;
	g_free(self->accel_reason);
	self->accel_reason = g_strdup(reason);
	self->accel_known = TRUE;
	self->accel_probing = FALSE;
	self->accel_waiters = g_ptr_array_new_with_free_func(g_object_unref);
	g_message("VMs run with %s: %s", vmsup_accel_to_string(accel), reason);
	vmsup_vm_service_emit_accel_decided(self);
	for (guint i = 0; i < waiters->len; i++)
		g_task_return_boolean(g_ptr_array_index(waiters, i), TRUE);
}

static void
vmsup_vm_service_accel_probe_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupVmService) self = user_data;
	g_autofree gchar *reason = NULL;
	VmsupAccel accel = vmsup_accel_probe_finish(res, &reason);

	vmsup_vm_service_accel_known(self, accel, reason != NULL ? reason : "probed");
}

/* decides the accelerator once: configured, or probed when "auto" */
void
vmsup_vm_service_ensure_accel_async(VmsupVmService *self,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autoptr(VmsupQemuConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *binary = NULL;

	g_task_set_source_tag(task, vmsup_vm_service_ensure_accel_async);
	if (self->accel_known) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (self->accel_config != VMSUP_ACCEL_AUTO) {
		g_ptr_array_add(self->accel_waiters, g_steal_pointer(&task));
		vmsup_vm_service_accel_known(self, self->accel_config, "configured");
		return;
	}
	g_ptr_array_add(self->accel_waiters, g_steal_pointer(&task));
	if (self->accel_probing)
		return;
	self->accel_probing = TRUE;
	config = vmsup_qemu_config_new("probe");
	config->qemu_binary = g_strdup(self->qemu_binary);
	binary = vmsup_qemu_config_find_binary(config, &error);
	if (binary == NULL) {
		g_autofree gchar *reason = g_strdup_printf("cannot probe KVM: %s", error->message);
		vmsup_vm_service_accel_known(self, VMSUP_ACCEL_TCG, reason);
		return;
	}
	vmsup_accel_probe_async(binary,
				self->cancellable,
				vmsup_vm_service_accel_probe_cb,
				g_object_ref(self));
}

gboolean
vmsup_vm_service_ensure_accel_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* the runtime of one run: handles, exit, cleanup */

void
vmsup_vm_service_drop_runtime(VmsupVmService *self, VmsupVmRecord *rec, gboolean remove_dir)
{
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);

	if (rec->process != NULL)
		g_clear_signal_handler(&rec->exited_id, rec->process);
	g_clear_handle_id(&rec->qmp_retry_id, g_source_remove);
	rec->qmp_retry_s = 0;
	if (rec->qmp != NULL)
		g_clear_signal_handler(&rec->event_id, rec->qmp);
	g_clear_object(&rec->qmp);
	if (rec->handles != NULL && rec->handles->qga != NULL && remove_dir)
		vmsup_qga_client_close(rec->handles->qga);
	g_clear_pointer(&rec->handles, vmsup_vm_handles_unref);
	g_clear_object(&rec->process);
	g_clear_pointer(&rec->running_def, vmsup_vm_def_free);
	g_clear_pointer(&rec->shutdown_reason, g_free);
	g_clear_pointer(&rec->stop_reason, g_free);
	rec->starting = FALSE;
	rec->shutdown_seen = FALSE;
	if (remove_dir)
		vmsup_vm_service_remove_tree(dir);
}

static void
vmsup_vm_service_return_exit_waiters(VmsupVmRecord *rec)
{
	g_autoptr(GPtrArray) waiters = g_steal_pointer(&rec->exit_waiters);
	rec->exit_waiters = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; i < waiters->len; i++)
		g_task_return_boolean(g_ptr_array_index(waiters, i), TRUE);
}

/* the outcome of the last run */

void
vmsup_vm_service_apply_outcome(VmsupVmRecord *rec, const VmsupVmOutcome *outcome)
{
	rec->state = outcome->crashed ? VMSUP_VM_STATE_CRASHED : VMSUP_VM_STATE_STOPPED;
	g_free(rec->exit_reason);
	rec->exit_reason = g_strdup(outcome->reason);
	rec->exit_status = outcome->wait_status;
	rec->stopped_at = outcome->stopped_at * G_USEC_PER_SEC;
}

static void
vmsup_vm_service_outcome_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmRecord *rec = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	gboolean saved = vmsup_vm_store_save_outcome_finish(VMSUP_VM_STORE(source), res, &error);

	if (!saved)
		vmsup_log_vm(G_LOG_LEVEL_WARNING,
			     rec->def->name,
			     "How VM '%s' ended is not kept over a restart of vmsupd: %s; its "
			     "runtime directory stays, so that a restarted vmsupd knows it ran",
			     rec->def->name,
			     error->message);
	rec->saving_outcome = FALSE;
	/*
	 * Starts wait for this, so the directory is not yet a new run's. Unsaved,
	 * the directory is what tells the next daemon that a run ended unseen.
	 */
	if (rec->process == NULL && saved) {
		g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);
		vmsup_vm_service_remove_tree(dir);
	}
	vmsup_vm_service_return_exit_waiters(rec);
	g_task_return_boolean(task, TRUE);
}

/*
 * Saves how the run of QEMU @pid ended (state, exit_reason, exit_status of
 * @rec), then removes the runtime dir: a daemon killed in between finds the
 * pid file next to the outcome of that very pid. Starts, stops and deletes
 * wait until this is done (see vmsup_vm_service_wait_exit_async()).
 */
void
vmsup_vm_service_save_outcome_async(VmsupVmService *self,
				    VmsupVmRecord *rec,
				    gint64 pid,
				    GAsyncReadyCallback callback,
				    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	g_autoptr(VmsupVmOutcome) outcome =
	    vmsup_vm_outcome_new(rec->state == VMSUP_VM_STATE_CRASHED,
				 rec->exit_reason,
				 rec->exit_status);

	g_task_set_source_tag(task, vmsup_vm_service_save_outcome_async);
	g_task_set_task_data(task,
			     vmsup_vm_service_record_ref(rec),
			     (GDestroyNotify)vmsup_vm_service_record_unref);
	outcome->stopped_at = rec->stopped_at / G_USEC_PER_SEC;
	outcome->pid = pid;
	rec->saving_outcome = TRUE;
	vmsup_vm_store_save_outcome_async(self->store,
					  rec->def->name,
					  outcome,
					  NULL,
					  vmsup_vm_service_outcome_saved_cb,
					  g_steal_pointer(&task));
}

void
vmsup_vm_service_save_outcome_finish(VmsupVmService *self, GAsyncResult *res)
{
	g_return_if_fail(g_task_is_valid(res, self));
	g_task_propagate_boolean(G_TASK(res), NULL);
}

/* a sibling is about to stop the QEMU of @rec itself, for @reason */
void
vmsup_vm_service_note_stop(VmsupVmService *self, VmsupVmRecord *rec, const gchar *reason)
{
	if (rec->process == NULL || rec->starting || !vmsup_qemu_process_is_running(rec->process))
		return;
	g_free(rec->stop_reason);
	rec->stop_reason = g_strdup(reason != NULL ? reason : "stopped on request");
	vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_STOPPING);
}

/* QEMU of @rec is gone: stopped or crashed, runtime cleaned up exactly once */
void
vmsup_vm_service_handle_exit(VmsupVmService *self, VmsupVmRecord *rec, gint wait_status)
{
	g_autofree gchar *how = vmsup_qemu_describe_wait_status(wait_status);
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);
	g_autofree gchar *tail = NULL;
	const gchar *name = rec->def->name;
	gboolean clean;
	gint64 pid;

	if (rec->process == NULL)
		return;
	pid = vmsup_qemu_process_get_pid(rec->process);
	clean = rec->stop_reason != NULL ||
		(rec->shutdown_seen && g_strcmp0(rec->shutdown_reason, "guest-panic") != 0);
	rec->exit_status = wait_status;
	rec->stopped_at = g_get_real_time();
	g_free(rec->exit_reason);
	if (rec->stop_reason != NULL) {
		rec->exit_reason = g_strdup_printf("%s; QEMU %s", rec->stop_reason, how);
	} else if (clean) {
		rec->exit_reason = g_strdup_printf(
		    "shut down (%s); QEMU %s",
		    rec->shutdown_reason != NULL ? rec->shutdown_reason : "shutdown",
		    how);
	} else {
		tail = vmsup_vm_service_read_qemu_log_tail(dir);
		rec->exit_reason = tail != NULL ? g_strdup_printf("QEMU %s: %s", how, tail)
						: g_strdup_printf("QEMU %s", how);
	}
	/* the runtime dir itself goes once the outcome is saved */
	if (rec->handles != NULL && rec->handles->qga != NULL)
		vmsup_qga_client_close(rec->handles->qga);
	vmsup_vm_service_drop_runtime(self, rec, FALSE);
	vmsup_vm_service_cgroup_release(self, rec);
	rec->state = clean ? VMSUP_VM_STATE_STOPPED : VMSUP_VM_STATE_CRASHED;
	if (clean)
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' stopped (%s)",
			     name,
			     rec->exit_reason);
	else
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' crashed: %s",
			     name,
			     rec->exit_reason);
	vmsup_vm_service_emit_vm_changed(self, rec);
	vmsup_vm_service_save_outcome_async(self, rec, pid, NULL, NULL);
}

static void
vmsup_vm_service_exited_cb(VmsupQemuProcess *process, gint wait_status, gpointer user_data)
{
	VmsupVmRecord *rec = user_data;

	if (rec->process != process)
		return;
	rec->exit_status = wait_status;
	/* a spawn or adoption that fails cleans up in its own callback */
	if (rec->starting)
		return;
	vmsup_vm_service_handle_exit(rec->service, rec, wait_status);
}

static void
vmsup_vm_service_qmp_event_cb(VmsupQmpClient *qmp,
			      const gchar *event,
			      JsonObject *data,
			      gint64 timestamp_us,
			      gpointer user_data)
{
	VmsupVmRecord *rec = user_data;
	VmsupVmService *self = rec->service;

	if (g_strcmp0(event, "STOP") == 0) {
		if (rec->state == VMSUP_VM_STATE_RUNNING)
			vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_PAUSED);
	} else if (g_strcmp0(event, "RESUME") == 0) {
		if (rec->state == VMSUP_VM_STATE_PAUSED || rec->state == VMSUP_VM_STATE_STARTING)
			vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_RUNNING);
	} else if (g_strcmp0(event, "SHUTDOWN") == 0) {
		rec->shutdown_seen = TRUE;
		g_free(rec->shutdown_reason);
		rec->shutdown_reason =
		    g_strdup(vmsup_json_object_get_string(data, "reason", "shutdown"));
		g_debug("VM '%s': SHUTDOWN (%s, guest=%d)",
			rec->def->name,
			rec->shutdown_reason,
			vmsup_json_object_get_bool(data, "guest", FALSE));
		vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_STOPPING);
	} else {
		g_debug("VM '%s': QMP event %s", rec->def->name, event);
	}
}

void
vmsup_vm_service_watch_exit(VmsupVmRecord *rec)
{
	rec->exited_id = g_signal_connect_data(rec->process,
					       "exited",
					       G_CALLBACK(vmsup_vm_service_exited_cb),
					       vmsup_vm_service_record_ref(rec),
					       vmsup_vm_service_record_closure_notify,
					       0);
}

static void
vmsup_vm_service_write_runtime_file(VmsupVmService *self, VmsupVmRecord *rec)
{
	g_autoptr(JsonObject) obj = vmsup_vm_def_to_json(rec->running_def);
	g_autofree gchar *json = NULL;
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);
	g_autofree gchar *path = g_build_filename(dir, VMSUP_VM_SERVICE_RUNTIME_FILE, NULL);
	g_autoptr(GError) error = NULL;

	json_object_set_string_member(obj, "accel", vmsup_accel_to_string(rec->accel));
	json = vmsup_json_object_to_string(obj, FALSE);
	if (!g_file_set_contents_full(path, json, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error))
		g_warning("Cannot write '%s': %s, ignoring", path, error->message);
}

/* what an adopted QEMU was started with; the current definition when unknown */
void
vmsup_vm_service_read_runtime_file(VmsupVmService *self, VmsupVmRecord *rec)
{
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);
	g_autofree gchar *path = g_build_filename(dir, VMSUP_VM_SERVICE_RUNTIME_FILE, NULL);
	g_autofree gchar *contents = NULL;
	g_autoptr(JsonObject) obj = NULL;
	VmsupVmDef *def = NULL;
	VmsupAccel accel = self->accel_known ? self->accel : VMSUP_ACCEL_TCG;

	if (g_file_get_contents(path, &contents, NULL, NULL))
		obj = vmsup_json_parse_object(contents, -1, NULL);
	if (obj != NULL) {
		def = vmsup_vm_def_new_from_json(obj, NULL);
		vmsup_accel_from_string(vmsup_json_object_get_string(obj, "accel", ""), &accel);
	}
	rec->accel = accel == VMSUP_ACCEL_AUTO ? VMSUP_ACCEL_TCG : accel;
	g_clear_pointer(&rec->running_def, vmsup_vm_def_free);
	rec->running_def = def != NULL ? def : vmsup_vm_def_copy(rec->def);
}

/* a spawned or adopted QEMU is up: cache its handles, follow its events */
void
vmsup_vm_service_follow_qmp(VmsupVmService *self, VmsupVmRecord *rec)
{
	VmsupQmpClient *qmp = vmsup_qemu_process_get_qmp(rec->process);

	if (rec->qmp != NULL)
		g_clear_signal_handler(&rec->event_id, rec->qmp);
	g_clear_object(&rec->qmp);
	if (qmp == NULL || !vmsup_qmp_client_is_ready(qmp))
		return;
	rec->qmp = g_object_ref(qmp);
	rec->event_id = g_signal_connect_data(qmp,
					      "event",
					      G_CALLBACK(vmsup_vm_service_qmp_event_cb),
					      vmsup_vm_service_record_ref(rec),
					      vmsup_vm_service_record_closure_notify,
					      0);
}

void
vmsup_vm_service_setup_running(VmsupVmService *self, VmsupVmRecord *rec)
{
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);
	g_autofree gchar *qga_path = g_build_filename(dir, VMSUP_QEMU_QGA_SOCKET, NULL);
	GArray *forwards = vmsup_qemu_process_get_forwards(rec->process);
	VmsupVmHandles *handles;
	gint64 started_mono = vmsup_qemu_process_get_started_at(rec->process);
	g_autoptr(GError) error = NULL;

	vmsup_vm_service_follow_qmp(self, rec);
	handles = vmsup_vm_handles_new(rec->def->name, dir, rec->process);
	handles->qga = vmsup_qga_client_new(rec->def->name, qga_path);
	handles->accel = rec->accel;
	if (forwards != NULL && forwards->len > 0) {
		handles->forwards =
		    g_array_sized_new(FALSE, FALSE, sizeof(VmsupQemuForward), forwards->len);
		g_array_append_vals(handles->forwards, forwards->data, forwards->len);
	}
	g_clear_pointer(&rec->handles, vmsup_vm_handles_unref);
	rec->handles = handles;
	rec->started_at = g_get_real_time() - (g_get_monotonic_time() - started_mono);
	rec->exit_status = -1;
	rec->stopped_at = 0;
	g_clear_pointer(&rec->exit_reason, g_free);
	g_clear_pointer(&rec->last_error, g_free);
	/* a new run: how the last one ended no longer describes the VM */
	if (!vmsup_vm_store_remove_outcome(self->store, rec->def->name, &error))
		g_warning("%s, ignoring", error->message);
}

static void
vmsup_vm_service_wait_exit_async(VmsupVmService *self,
				 VmsupVmRecord *rec,
				 GAsyncReadyCallback callback,
				 gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_wait_exit_async);
	if (rec->process == NULL && !rec->saving_outcome) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	g_ptr_array_add(rec->exit_waiters, g_steal_pointer(&task));
}

/* start, with the VM's lock held */

typedef struct {
	VmsupVmRecord *rec; /* owned */
	VmsupVmState previous;
} VmsupVmStart;

static void
vmsup_vm_start_free(VmsupVmStart *data)
{
	g_clear_pointer(&data->rec, vmsup_vm_service_record_unref);
	g_free(data);
}

/* finishes both start_locked and stop_locked */
gboolean
vmsup_vm_service_locked_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
vmsup_vm_service_start_failed(VmsupVmService *self, GTask *task /* owned */, GError *error)
{
	VmsupVmStart *data = g_task_get_task_data(task);
	VmsupVmRecord *rec = data->rec;
	const gchar *name = rec->def->name;

	vmsup_error_convert(&error);
	if (error->code != VMSUP_ERROR_CANCELLED)
		g_prefix_error(&error, _("Cannot start VM '%s': "), name);
	vmsup_vm_service_drop_runtime(self, rec, TRUE);
	g_free(rec->last_error);
	rec->last_error = g_strdup(error->message);
	rec->state = data->previous;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE, name, "VM '%s' did not start: %s", name, error->message);
	vmsup_vm_service_emit_vm_changed(self, rec);
	g_task_return_error(task, error);
	g_object_unref(task);
}

static void
vmsup_vm_service_start_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmStart *data = g_task_get_task_data(task);
	VmsupVmRecord *rec = data->rec;
	g_autoptr(JsonNode) status = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *name = rec->def->name;
	const gchar *state = NULL;

	status = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (rec->process == NULL) {
		/* QEMU died while we asked */
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("VM '%s' exited right after it started: %s"),
					name,
					rec->exit_reason != NULL ? rec->exit_reason : "?");
		return;
	}
	if (status != NULL && JSON_NODE_HOLDS_OBJECT(status))
		state = vmsup_json_object_get_string(json_node_get_object(status), "status", NULL);
	if (status == NULL)
		g_debug("query-status of '%s' failed: %s", name, error->message);
	if (rec->state == VMSUP_VM_STATE_STARTING)
		rec->state = g_strcmp0(state, "paused") == 0 ? VMSUP_VM_STATE_PAUSED
							     : VMSUP_VM_STATE_RUNNING;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     name,
		     "VM '%s' started (%s, pid %d)",
		     name,
		     vmsup_accel_to_string(rec->accel),
		     (gint)vmsup_qemu_process_get_pid(rec->process));
	vmsup_vm_service_emit_vm_changed(self, rec);
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_service_start_placed_cb(GObject *source, GAsyncResult *res, gpointer user_data);

static void
vmsup_vm_service_start_spawned_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmStart *data = g_task_get_task_data(task);
	VmsupVmRecord *rec = data->rec;
	VmsupQemuProcess *process = VMSUP_QEMU_PROCESS(source);
	g_autoptr(GError) error = NULL;

	if (!vmsup_qemu_process_spawn_finish(process, res, &error)) {
		vmsup_vm_service_start_failed(self,
					      g_steal_pointer(&task),
					      g_steal_pointer(&error));
		return;
	}
	rec->starting = FALSE;
	if (!vmsup_qemu_process_is_running(process)) {
		g_autofree gchar *how = vmsup_qemu_describe_wait_status(rec->exit_status);
		vmsup_vm_service_start_failed(self,
					      g_steal_pointer(&task),
					      g_error_new(VMSUP_ERROR,
							  VMSUP_ERROR_FAILED_PRECONDITION,
							  "QEMU %s during start-up",
							  how));
		return;
	}
	vmsup_vm_service_setup_running(self, rec);
	vmsup_vm_service_write_runtime_file(self, rec);
	/* into its cgroup while still paused, then on */
	vmsup_vm_service_cgroup_place_async(self,
					    rec,
					    /* resume= */ vmsup_vm_service_cgroup_wanted(self),
					    vmsup_vm_service_start_placed_cb,
					    g_steal_pointer(&task));
}

static void
vmsup_vm_service_start_placed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = VMSUP_VM_SERVICE(source);
	VmsupVmStart *data = g_task_get_task_data(task);
	VmsupVmRecord *rec = data->rec;
	g_autoptr(GError) error = NULL;

	if (rec->process == NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("VM '%s' exited right after it started: %s"),
					rec->def->name,
					rec->exit_reason != NULL ? rec->exit_reason : "?");
		return;
	}
	if (!vmsup_vm_service_cgroup_place_finish(self, res, &error)) {
		vmsup_qemu_process_kill(rec->process);
		vmsup_vm_service_start_failed(self,
					      g_steal_pointer(&task),
					      g_steal_pointer(&error));
		return;
	}
	if (rec->qmp == NULL) {
		rec->state = VMSUP_VM_STATE_RUNNING;
		vmsup_vm_service_emit_vm_changed(self, rec);
		g_task_return_boolean(task, TRUE);
		return;
	}
	vmsup_qmp_client_execute_async(rec->qmp,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_vm_service_start_status_cb,
				       g_steal_pointer(&task));
}

static void
vmsup_vm_service_start_spawn(VmsupVmService *self, GTask *task /* owned */)
{
	VmsupVmStart *data = g_task_get_task_data(task);
	VmsupVmRecord *rec = data->rec;
	VmsupVmDef *def = rec->def;
	g_autoptr(VmsupQemuConfig) config = vmsup_qemu_config_new(def->name);
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, def->name);
	g_autofree gchar *binary = NULL;
	g_autoptr(GError) error = NULL;

	config->qemu_binary = g_strdup(self->qemu_binary);
	binary = vmsup_qemu_config_find_binary(config, &error);
	/*
	 * the files may have changed hands since create or set: QEMU reads them
	 * for the VM's owner, whoever asks for the start (autostart included)
	 */
	if (binary == NULL || !vmsup_vm_def_check_caller(def, def->owner_uid, &error) ||
	    !vmsup_preflight_check_files(def, &error)) {
		vmsup_vm_service_return_error(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	if (def->disk != NULL && !g_file_test(def->disk, G_FILE_TEST_IS_REGULAR)) {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("The disk '%s' of VM '%s' is missing; restore it, or delete "
		      "the VM and create it again"),
		    def->disk,
		    def->name);
		g_object_unref(task);
		return;
	}
	if (g_mkdir_with_parents(dir, 0700) != 0) {
		gint saved_errno = errno;
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("Cannot create the runtime directory '%s': %s; check "
					  "--runtime-dir and its permissions"),
					dir,
					g_strerror(saved_errno));
		g_object_unref(task);
		return;
	}

	/* opened now, as the owner, and handed over: QEMU opens no host file by name */
	if (!vmsup_vm_files_open(def, config, &error)) {
		vmsup_vm_service_return_error(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	config->accel = self->accel;
	config->cpus = def->cpus;
	config->memory_mib = def->memory_mib;
	config->kernel = g_strdup(def->kernel);
	config->initrd = g_strdup(def->initrd);
	config->cmdline = g_strdup(def->cmdline);
	config->disk = g_strdup(def->disk);
	config->share_dir = g_strdup(def->share_dir);
	for (guint i = 0; def->forward != NULL && i < def->forward->len; i++)
		vmsup_qemu_config_add_forward(config, 0, g_array_index(def->forward, guint16, i));
	/* a QEMU that gets a cgroup starts paused, resumed once it is in it */
	config->paused = vmsup_vm_service_cgroup_wanted(self);

	data->previous = rec->state;
	rec->process = vmsup_qemu_process_new(def->name, dir);
	rec->starting = TRUE;
	g_clear_pointer(&rec->stop_reason, g_free);
	rec->shutdown_seen = FALSE;
	rec->accel = self->accel;
	rec->running_def = vmsup_vm_def_copy(def);
	rec->exit_status = -1;
	vmsup_vm_service_watch_exit(rec);
	vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_STARTING);
	vmsup_qemu_process_spawn_async(rec->process,
				       config,
				       g_task_get_cancellable(task),
				       vmsup_vm_service_start_spawned_cb,
				       task);
}

static void
vmsup_vm_service_start_accel_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = VMSUP_VM_SERVICE(source);
	g_autoptr(GError) error = NULL;

	if (!vmsup_vm_service_ensure_accel_finish(self, res, &error) ||
	    g_cancellable_set_error_if_cancelled(g_task_get_cancellable(task), &error)) {
		vmsup_vm_service_return_error(task, g_steal_pointer(&error));
		return;
	}
	vmsup_vm_service_start_spawn(self, g_steal_pointer(&task));
}

static void
vmsup_vm_service_start_cont_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmStart *data = g_task_get_task_data(task);
	g_autoptr(JsonNode) result = NULL;
	g_autoptr(GError) error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		g_prefix_error(&error, _("Cannot resume VM '%s': "), data->rec->def->name);
		vmsup_vm_service_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (data->rec->state == VMSUP_VM_STATE_PAUSED)
		vmsup_vm_service_set_state(self, data->rec, VMSUP_VM_STATE_RUNNING);
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_service_start_relay_cb(GObject *source, GAsyncResult *res, gpointer user_data);

static void
vmsup_vm_service_start_after_exit_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = VMSUP_VM_SERVICE(source);
	VmsupVmStart *data = g_task_get_task_data(task);

	g_task_propagate_boolean(G_TASK(res), NULL);
	vmsup_vm_service_start_locked_async(self,
					    data->rec,
					    g_task_get_cancellable(task),
					    vmsup_vm_service_start_relay_cb,
					    g_steal_pointer(&task));
}

static void
vmsup_vm_service_start_relay_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;

	if (!vmsup_vm_service_locked_finish(VMSUP_VM_SERVICE(source), res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_service_start_locked_async(VmsupVmService *self,
				    VmsupVmRecord *rec,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	VmsupVmStart *data = g_new0(VmsupVmStart, 1);

	g_task_set_source_tag(task, vmsup_vm_service_start_locked_async);
	data->rec = vmsup_vm_service_record_ref(rec);
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_vm_start_free);

	if (rec->process != NULL) {
		/* the guest is shutting down on its own: start again once it is gone */
		if (rec->state == VMSUP_VM_STATE_STOPPING) {
			vmsup_vm_service_wait_exit_async(self,
							 rec,
							 vmsup_vm_service_start_after_exit_cb,
							 g_steal_pointer(&task));
			return;
		}
		if (rec->state == VMSUP_VM_STATE_PAUSED && rec->qmp != NULL) {
			vmsup_qmp_client_execute_async(rec->qmp,
						       "cont",
						       NULL,
						       cancellable,
						       vmsup_vm_service_start_cont_cb,
						       g_steal_pointer(&task));
			return;
		}
		g_task_return_boolean(task, TRUE);
		return;
	}
	/* the last run's outcome is still being saved: the new run must not race it */
	if (rec->saving_outcome) {
		vmsup_vm_service_wait_exit_async(self,
						 rec,
						 vmsup_vm_service_start_after_exit_cb,
						 g_steal_pointer(&task));
		return;
	}
	vmsup_vm_service_ensure_accel_async(self,
					    cancellable,
					    vmsup_vm_service_start_accel_cb,
					    g_steal_pointer(&task));
}

/* stop, with the VM's lock held */

static void
vmsup_vm_service_stop_process_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	if (!vmsup_qemu_process_stop_finish(VMSUP_QEMU_PROCESS(source), res, &error))
		g_debug("stopping QEMU failed: %s", error->message);
}

static void
vmsup_vm_service_stop_exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	g_task_propagate_boolean(G_TASK(res), NULL);
	g_task_return_boolean(task, TRUE);
}

/* completes once QEMU is gone and the runtime cleaned up */
void
vmsup_vm_service_stop_locked_async(VmsupVmService *self,
				   VmsupVmRecord *rec,
				   gboolean force,
				   guint timeout_ms,
				   GAsyncReadyCallback callback,
				   gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	const gchar *name = rec->def->name;

	g_task_set_source_tag(task, vmsup_vm_service_stop_locked_async);
	if (rec->process == NULL) {
		/* stopped already; an outcome still being saved is waited for */
		vmsup_vm_service_wait_exit_async(self,
						 rec,
						 vmsup_vm_service_stop_exited_cb,
						 g_steal_pointer(&task));
		return;
	}
	vmsup_log_vm(G_LOG_LEVEL_INFO, name, "stopping VM '%s'%s", name, force ? " (forced)" : "");
	/* a reason given before (vmsup_vm_service_note_stop()) stays */
	if (rec->stop_reason == NULL)
		rec->stop_reason = g_strdup("stopped on request");
	vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_STOPPING);
	vmsup_vm_service_wait_exit_async(self,
					 rec,
					 vmsup_vm_service_stop_exited_cb,
					 g_steal_pointer(&task));
	vmsup_qemu_process_stop_async(rec->process,
				      force,
				      timeout_ms,
				      NULL,
				      vmsup_vm_service_stop_process_cb,
				      NULL);
}
