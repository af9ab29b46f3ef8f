/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService at start-up and shut-down: loads the definitions and how each
 * VM's last run ended, re-adopts the VMs still running from an earlier
 * daemon, autostarts, and stops all.
 */

#include "config.h"

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-lock.h"
#include "vmsup-vm-service-private.h"
#include "vmsup-vm-store.h"

/* load: definitions, re-adoption, autostart */

typedef struct {
	guint pending;
	gboolean autostarted;
} VmsupVmLoad;

static void
vmsup_vm_service_load_step(GTask *task /* owned */);

static void
vmsup_vm_service_load_one_done(GTask *task /* owned */)
{
	VmsupVmLoad *data = g_task_get_task_data(task);
	g_assert(data->pending > 0);
	if (--data->pending == 0)
		vmsup_vm_service_load_step(task);
	else
		g_object_unref(task);
}

/*
 * How long the load waits for one adoption before it goes on without it: a
 * QEMU that answers QMP does so in milliseconds, a frozen one never, and the
 * socket must not wait for it.
 */
#define VMSUP_VM_ADOPT_WAIT_MS 2000
/* retries of QMP for a QEMU adopted without it: from 1 s, doubling, to this */
#define VMSUP_VM_QMP_RETRY_MAX_S 30

typedef struct {
	GTask *task;             /* owned: the load */
	VmsupVmRecord *rec;      /* owned */
	VmsupVmOutcome *outcome; /* owned, may be NULL: the stored end of the last run */
	gint64 recorded_pid;     /* of the runtime dir's pid file; 0: none */
	gboolean counted;        /* the load still waits for this one */
	guint wait_id;           /* the bound on that wait */
} VmsupVmLoadOne;

static void
vmsup_vm_load_one_free(VmsupVmLoadOne *one)
{
	g_clear_handle_id(&one->wait_id, g_source_remove);
	g_clear_object(&one->task);
	g_clear_pointer(&one->rec, vmsup_vm_service_record_unref);
	g_clear_pointer(&one->outcome, vmsup_vm_outcome_free);
	g_free(one);
}

/* the load goes on; this VM's adoption, if still under way, finishes on its own */
static void
vmsup_vm_service_load_one_release(VmsupVmLoadOne *one)
{
	g_clear_handle_id(&one->wait_id, g_source_remove);
	if (!one->counted)
		return;
	one->counted = FALSE;
	vmsup_vm_service_load_one_done(g_object_ref(one->task));
}

static gboolean
vmsup_vm_service_adopt_wait_cb(gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;

	one->wait_id = 0;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     one->rec->def->name,
		     "VM '%s' is slow to answer QMP; serving the other VMs meanwhile",
		     one->rec->def->name);
	vmsup_vm_service_load_one_release(one);
	return G_SOURCE_REMOVE;
}

static void
vmsup_vm_service_load_one_finish(VmsupVmLoadOne *one)
{
	VmsupVmService *self = g_task_get_source_object(one->task);

	vmsup_vm_lock_unlock(self->lock, one->rec->def->name);
	vmsup_vm_service_load_one_release(one);
	vmsup_vm_load_one_free(one);
}

/* what QEMU's query-status answer says the VM is: paused, or running */
static VmsupVmState
vmsup_vm_service_state_of_status(JsonNode *status)
{
	const gchar *state = NULL;

	if (status != NULL && JSON_NODE_HOLDS_OBJECT(status))
		state = vmsup_json_object_get_string(json_node_get_object(status), "status", NULL);
	return g_strcmp0(state, "paused") == 0 ? VMSUP_VM_STATE_PAUSED : VMSUP_VM_STATE_RUNNING;
}

static void
vmsup_vm_service_adopt_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmService *self = g_task_get_source_object(one->task);
	VmsupVmRecord *rec = one->rec;
	g_autoptr(JsonNode) status = NULL;
	g_autoptr(GError) error = NULL;

	status = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (rec->process != NULL && rec->state == VMSUP_VM_STATE_STARTING) {
		rec->state = vmsup_vm_service_state_of_status(status);
		vmsup_vm_service_emit_vm_changed(self, rec);
	}
	vmsup_vm_service_load_one_finish(one);
}

static void
vmsup_vm_service_adopt_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	vmsup_vm_service_save_outcome_finish(VMSUP_VM_SERVICE(source), res);
	vmsup_vm_service_load_one_finish(user_data);
}

/*
 * The runtime dir names no live QEMU: how its run ended, as far as is
 * known. QEMU removes its pid file when it exits by itself, so a saved
 * outcome next to no pid file is the last run's; next to a pid file, it
 * must be of that pid.
 */
static void
vmsup_vm_service_adopt_dead(VmsupVmLoadOne *one)
{
	VmsupVmService *self = g_task_get_source_object(one->task);
	VmsupVmRecord *rec = one->rec;

	/* the daemon before saved how this very run ended, and died before cleaning up */
	if (one->outcome != NULL &&
	    (one->recorded_pid == 0 || one->outcome->pid == one->recorded_pid)) {
		vmsup_vm_service_drop_runtime(self, rec, TRUE);
		vmsup_vm_service_apply_outcome(rec, one->outcome);
		vmsup_vm_service_emit_vm_changed(self, rec);
		vmsup_vm_service_load_one_finish(one);
		return;
	}
	/*
	 * It ended while no daemon watched: not our child, so how is unknown.
	 * Nobody asked for it through vmsupd, so it counts as a crash: the
	 * state that tells the user to look (a guest that powered itself off
	 * meanwhile shows the same).
	 */
	vmsup_vm_service_drop_runtime(self, rec, FALSE);
	rec->state = VMSUP_VM_STATE_CRASHED;
	g_free(rec->exit_reason);
	rec->exit_reason = g_strdup(VMSUP_VM_UNWATCHED_END);
	rec->exit_status = -1;
	rec->stopped_at = 0;
	vmsup_vm_service_emit_vm_changed(self, rec);
	vmsup_vm_service_save_outcome_async(self,
					    rec,
					    one->recorded_pid,
					    vmsup_vm_service_adopt_saved_cb,
					    one);
}

/* QMP of an adopted QEMU that did not answer then, tried again with growing pauses */

static void
vmsup_vm_service_schedule_qmp_retry(VmsupVmService *self, VmsupVmRecord *rec);

static void
vmsup_vm_service_qmp_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmRecord *rec = user_data;
	g_autoptr(JsonNode) status =
	    vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, NULL);

	if (rec->qmp == VMSUP_QMP_CLIENT(source) && status != NULL &&
	    JSON_NODE_HOLDS_OBJECT(status))
		vmsup_vm_service_set_state(rec->service,
					   rec,
					   vmsup_vm_service_state_of_status(status));
	vmsup_vm_service_record_unref(rec);
}

static void
vmsup_vm_service_qmp_reconnected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmRecord *rec = user_data;
	VmsupVmService *self = rec->service;
	g_autoptr(GError) error = NULL;
	gboolean ok =
	    vmsup_qemu_process_reconnect_qmp_finish(VMSUP_QEMU_PROCESS(source), res, &error);

	/* the run it was for is over, or the service is going */
	if (rec->process != VMSUP_QEMU_PROCESS(source) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		vmsup_vm_service_record_unref(rec);
		return;
	}
	if (!ok) {
		g_debug("QMP of VM '%s' still does not answer: %s", rec->def->name, error->message);
		vmsup_vm_service_schedule_qmp_retry(self, rec);
		vmsup_vm_service_record_unref(rec);
		return;
	}
	vmsup_vm_service_follow_qmp(self, rec);
	g_clear_pointer(&rec->last_error, g_free);
	rec->qmp_retry_s = 0;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     rec->def->name,
		     "VM '%s' answers QMP again",
		     rec->def->name);
	vmsup_vm_service_emit_vm_changed(self, rec);
	vmsup_qmp_client_execute_async(rec->qmp,
				       "query-status",
				       NULL,
				       self->cancellable,
				       vmsup_vm_service_qmp_status_cb,
				       rec);
}

static gboolean
vmsup_vm_service_qmp_retry_cb(gpointer user_data)
{
	VmsupVmRecord *rec = user_data;

	rec->qmp_retry_id = 0;
	vmsup_qemu_process_reconnect_qmp_async(rec->process,
					       rec->service->cancellable,
					       vmsup_vm_service_qmp_reconnected_cb,
					       vmsup_vm_service_record_ref(rec));
	return G_SOURCE_REMOVE;
}

static void
vmsup_vm_service_schedule_qmp_retry(VmsupVmService *self, VmsupVmRecord *rec)
{
	if (rec->process == NULL || rec->qmp_retry_id != 0)
		return;
	rec->qmp_retry_s = CLAMP(rec->qmp_retry_s * 2, 1, VMSUP_VM_QMP_RETRY_MAX_S);
	rec->qmp_retry_id =
	    g_timeout_add_seconds_full(G_PRIORITY_DEFAULT,
				       rec->qmp_retry_s,
				       vmsup_vm_service_qmp_retry_cb,
				       vmsup_vm_service_record_ref(rec),
				       (GDestroyNotify)vmsup_vm_service_record_unref);
}

static void
vmsup_vm_service_adopted_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmService *self = g_task_get_source_object(one->task);
	VmsupVmRecord *rec = one->rec;
	VmsupQemuProcess *process = VMSUP_QEMU_PROCESS(source);
	g_autoptr(GError) error = NULL;
	const gchar *name = rec->def->name;
	gboolean ok = vmsup_qemu_process_adopt_finish(process, res, &error);

	rec->starting = FALSE;
	if (!vmsup_qemu_process_is_running(process)) {
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' is not running any more (%s)",
			     name,
			     error != NULL ? error->message : "exited");
		vmsup_vm_service_adopt_dead(one);
		return;
	}
	vmsup_vm_service_read_runtime_file(self, rec);
	vmsup_vm_service_setup_running(self, rec);
	/* its cgroup, found again by the VM's name (or made, for a QEMU from before cgroups) */
	vmsup_vm_service_cgroup_place_async(self, rec, /* resume= */ FALSE, NULL, NULL);
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     name,
		     "VM '%s' re-adopted (pid %d)",
		     name,
		     (gint)vmsup_qemu_process_get_pid(process));
	if (!ok || rec->qmp == NULL) {
		/* still watched: stop and kill reach it; QMP is tried again until it answers */
		g_free(rec->last_error);
		rec->last_error = g_strdup_printf("QMP is unreachable: %s",
						  error != NULL ? error->message : "not ready");
		g_warning("VM '%s' runs but its %s; trying again", name, rec->last_error);
		rec->state = VMSUP_VM_STATE_RUNNING;
		vmsup_vm_service_emit_vm_changed(self, rec);
		vmsup_vm_service_schedule_qmp_retry(self, rec);
		vmsup_vm_service_load_one_finish(one);
		return;
	}
	vmsup_qmp_client_execute_async(rec->qmp,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_vm_service_adopt_status_cb,
				       one);
}

/* the pid a runtime dir's pid file names; 0 when there is none */
static gint64
vmsup_vm_service_read_pidfile(const gchar *dir)
{
	g_autofree gchar *path = g_build_filename(dir, VMSUP_QEMU_PIDFILE, NULL);
	g_autofree gchar *contents = NULL;
	guint64 pid = 0;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return 0;
	g_strstrip(contents);
	if (!g_ascii_string_to_unsigned(contents, 10, 1, G_MAXINT32, &pid, NULL))
		return 0;
	return (gint64)pid;
}

static void
vmsup_vm_service_adopt_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmService *self = g_task_get_source_object(one->task);
	VmsupVmRecord *rec = one->rec;
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);

	vmsup_vm_lock_lock_finish(res, NULL);
	one->recorded_pid = vmsup_vm_service_read_pidfile(dir);
	if (one->recorded_pid == 0) {
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     rec->def->name,
			     "VM '%s' is not running any more (no pid file)",
			     rec->def->name);
		vmsup_vm_service_adopt_dead(one);
		return;
	}
	rec->process = vmsup_qemu_process_new(rec->def->name, dir);
	rec->starting = TRUE;
	rec->state = VMSUP_VM_STATE_STARTING;
	vmsup_vm_service_watch_exit(rec);
	one->wait_id = g_timeout_add(VMSUP_VM_ADOPT_WAIT_MS, vmsup_vm_service_adopt_wait_cb, one);
	vmsup_qemu_process_adopt_async(rec->process,
				       self->cancellable,
				       vmsup_vm_service_adopted_cb,
				       one);
}

static void
vmsup_vm_service_autostart_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	g_autoptr(GError) error = NULL;

	if (!vmsup_vm_service_locked_finish(VMSUP_VM_SERVICE(source), res, &error))
		g_warning("Autostart of VM '%s' failed: %s, ignoring",
			  one->rec->def->name,
			  error->message);
	vmsup_vm_service_load_one_finish(one);
}

static void
vmsup_vm_service_autostart_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmService *self = g_task_get_source_object(one->task);

	vmsup_vm_lock_lock_finish(res, NULL);
	vmsup_vm_service_start_locked_async(self,
					    one->rec,
					    self->cancellable,
					    vmsup_vm_service_autostart_cb,
					    one);
}

/* one more VM handled by the load, under its lock */
static void
vmsup_vm_service_load_queue(GTask *task,
			    VmsupVmRecord *rec,
			    VmsupVmOutcome *outcome /* owned, nullable */,
			    GAsyncReadyCallback locked_cb)
{
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmLoad *data = g_task_get_task_data(task);
	VmsupVmLoadOne *one = g_new0(VmsupVmLoadOne, 1);

	one->task = g_object_ref(task);
	one->rec = vmsup_vm_service_record_ref(rec);
	one->outcome = outcome;
	one->counted = TRUE;
	data->pending++;
	vmsup_vm_lock_lock_async(self->lock, rec->def->name, NULL, locked_cb, one);
}

static void
vmsup_vm_service_load_step(GTask *task /* owned */)
{
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmLoad *data = g_task_get_task_data(task);
	g_auto(GStrv) names = NULL;
	GHashTableIter iter;
	gpointer value;

	if (data->autostarted) {
		/* cgroups left by a daemon that died before its QEMU did */
		g_hash_table_iter_init(&iter, self->vms);
		while (g_hash_table_iter_next(&iter, NULL, &value)) {
			if (((VmsupVmRecord *)value)->process == NULL)
				vmsup_vm_service_cgroup_release(self, value);
		}
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	data->autostarted = TRUE;
	data->pending = 1;
	names = vmsup_vm_service_list_names(self);
	for (guint i = 0; names[i] != NULL; i++) {
		VmsupVmRecord *rec = g_hash_table_lookup(self->vms, names[i]);
		if (rec->def->autostart && rec->process == NULL)
			vmsup_vm_service_load_queue(task,
						    rec,
						    NULL,
						    vmsup_vm_service_autostart_locked_cb);
	}
	vmsup_vm_service_load_one_done(task);
}

/* runtime dirs and disks that belong to no definition */
static void
vmsup_vm_service_load_check_orphans(VmsupVmService *self)
{
	g_autofree gchar *vms_dir = g_build_filename(self->runtime_dir, "vms", NULL);
	g_autofree gchar *disks_dir = g_build_filename(self->state_dir, "disks", NULL);
	g_autoptr(GDir) dir = g_dir_open(vms_dir, 0, NULL);
	const gchar *basename;

	while (dir != NULL && (basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(vms_dir, basename, NULL);
		g_autofree gchar *pidfile = g_build_filename(path, VMSUP_QEMU_PIDFILE, NULL);
		g_autofree gchar *pid = NULL;
		g_autofree gchar *proc = NULL;

		if (g_hash_table_contains(self->vms, basename))
			continue;
		if (g_file_get_contents(pidfile, &pid, NULL, NULL)) {
			g_strstrip(pid);
			proc = g_strdup_printf("/proc/%s", pid);
		}
		if (proc != NULL && g_file_test(proc, G_FILE_TEST_EXISTS)) {
			g_warning("QEMU of '%s' (pid %s) may still run without a definition; "
				  "stop it with 'kill %s', ignoring",
				  basename,
				  pid,
				  pid);
			continue;
		}
		g_debug("removing stale runtime dir '%s'", path);
		vmsup_vm_service_remove_tree(path);
	}
	g_clear_pointer(&dir, g_dir_close);
	dir = g_dir_open(disks_dir, 0, NULL);
	while (dir != NULL && (basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *name = NULL;
		if (!g_str_has_suffix(basename, ".qcow2"))
			continue;
		name = g_strndup(basename, strlen(basename) - strlen(".qcow2"));
		if (!g_hash_table_contains(self->vms, name))
			g_warning("Disk '%s/%s' belongs to no VM (an interrupted create?); "
				  "remove it or move it away, ignoring",
				  disks_dir,
				  basename);
	}
}

/*
 * How each VM's last run ended, as the daemon before saved it; a record
 * that belongs to no definition (a delete cut short) is removed. Never
 * fatal: a VM without its record reads "defined".
 */
static GHashTable *
vmsup_vm_service_load_outcomes(VmsupVmService *self)
{
	g_autoptr(GHashTable) outcomes = NULL;
	g_autoptr(GError) error = NULL;
	GHashTableIter iter;
	gpointer name;

	outcomes = vmsup_vm_store_load_outcomes(self->store, &error);
	if (outcomes == NULL) {
		g_warning("%s; VMs that stopped before show as defined, ignoring", error->message);
		return g_hash_table_new_full(g_str_hash,
					     g_str_equal,
					     g_free,
					     (GDestroyNotify)vmsup_vm_outcome_free);
	}
	g_hash_table_iter_init(&iter, outcomes);
	while (g_hash_table_iter_next(&iter, &name, NULL)) {
		g_autoptr(GError) error_remove = NULL;
		if (g_hash_table_contains(self->vms, name))
			continue;
		g_debug("removing the last-run record of '%s', which is not defined",
			(const gchar *)name);
		if (!vmsup_vm_store_remove_outcome(self->store, name, &error_remove))
			g_warning("%s, ignoring", error_remove->message);
		g_hash_table_iter_remove(&iter);
	}
	return g_steal_pointer(&outcomes);
}

static void
vmsup_vm_service_load_accel_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = VMSUP_VM_SERVICE(source);
	VmsupVmLoad *data = g_task_get_task_data(task);
	g_autoptr(GPtrArray) defs = NULL;
	g_autoptr(GHashTable) outcomes = NULL;
	GError *error = NULL;

	if (!vmsup_vm_service_ensure_accel_finish(self, res, &error)) {
		vmsup_vm_service_return_error(task, error);
		return;
	}
	defs = vmsup_vm_store_load_all(self->store, &error);
	if (defs == NULL) {
		vmsup_vm_service_return_error(task, error);
		return;
	}
	while (defs->len > 0) {
		VmsupVmDef *def = g_ptr_array_steal_index(defs, 0);
		VmsupVmRecord *rec;
		if (g_hash_table_contains(self->vms, def->name)) {
			vmsup_vm_def_free(def);
			continue;
		}
		rec = vmsup_vm_service_record_new(self, def);
		g_hash_table_insert(self->vms, g_strdup(def->name), rec);
	}
	outcomes = vmsup_vm_service_load_outcomes(self);
	vmsup_vm_service_load_check_orphans(self);

	data->pending = 1;
	{
		g_auto(GStrv) names = vmsup_vm_service_list_names(self);
		for (guint i = 0; names[i] != NULL; i++) {
			VmsupVmRecord *rec = g_hash_table_lookup(self->vms, names[i]);
			g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, names[i]);
			g_autoptr(VmsupVmOutcome) outcome = NULL;
			g_autofree gchar *outcome_key = NULL;
			if (rec->process != NULL)
				continue;
			g_hash_table_steal_extended(outcomes,
						    names[i],
						    (gpointer *)&outcome_key,
						    (gpointer *)&outcome);
			/* a run was under way: adopted, or found ended */
			if (g_file_test(dir, G_FILE_TEST_IS_DIR)) {
				vmsup_vm_service_load_queue(task,
							    rec,
							    g_steal_pointer(&outcome),
							    vmsup_vm_service_adopt_locked_cb);
				continue;
			}
			if (outcome != NULL)
				vmsup_vm_service_apply_outcome(rec, outcome);
		}
	}
	g_message("%u VMs defined", g_hash_table_size(self->vms));
	vmsup_vm_service_load_one_done(g_steal_pointer(&task));
}

void
vmsup_vm_service_load_async(VmsupVmService *self,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_load_async);
	g_task_set_task_data(task, g_new0(VmsupVmLoad, 1), g_free);
	if (self->loaded) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					"the VM service is loaded already");
		return;
	}
	self->loaded = TRUE;
	vmsup_vm_service_get_cgroup(self);
	vmsup_vm_service_ensure_accel_async(self,
					    cancellable,
					    vmsup_vm_service_load_accel_cb,
					    g_steal_pointer(&task));
}

gboolean
vmsup_vm_service_load_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* stop_all */

static void
vmsup_vm_service_stop_all_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	vmsup_vm_service_locked_finish(VMSUP_VM_SERVICE(source), res, NULL);
	vmsup_vm_service_load_one_finish(one);
}

static void
vmsup_vm_service_stop_all_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmService *self = g_task_get_source_object(one->task);

	vmsup_vm_lock_lock_finish(res, NULL);
	if (one->rec->process != NULL && one->rec->stop_reason == NULL)
		one->rec->stop_reason = g_strdup("stopped as vmsupd shut down");
	vmsup_vm_service_stop_locked_async(self,
					   one->rec,
					   FALSE,
					   self->stop_timeout_s * 1000,
					   vmsup_vm_service_stop_all_stopped_cb,
					   one);
}

void
vmsup_vm_service_stop_all_async(VmsupVmService *self,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_auto(GStrv) names = NULL;
	VmsupVmLoad *data;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_stop_all_async);
	data = g_new0(VmsupVmLoad, 1);
	/* reuses the load's counting: there is nothing to autostart afterwards */
	data->autostarted = TRUE;
	data->pending = 1;
	g_task_set_task_data(task, data, g_free);
	names = vmsup_vm_service_list_names(self);
	for (guint i = 0; names[i] != NULL; i++) {
		VmsupVmRecord *rec = g_hash_table_lookup(self->vms, names[i]);
		if (rec->process != NULL)
			vmsup_vm_service_load_queue(task,
						    rec,
						    NULL,
						    vmsup_vm_service_stop_all_locked_cb);
	}
	vmsup_vm_service_load_one_done(g_steal_pointer(&task));
}

gboolean
vmsup_vm_service_stop_all_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}
