/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VmsupVm: one defined VM. Its state machine, the QEMU of its current run
 * (spawned or adopted from an earlier daemon) with QMP and agent clients,
 * the start and stop chains, exit and cleanup, and how the last run ended.
 */

#include "config.h"

#include <unistd.h>

#include <errno.h>
#include <glib/gi18n.h>
#include <sys/wait.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-preflight.h"
#include "vmsup-qemu-process.h"
#include "vmsup-vm-console.h"
#include "vmsup-vm-files.h"
#include "vmsup-vm-seed.h"
#include "vmsup-vm.h"

/* what a running VM was started with, for adoption by a later daemon */
#define VMSUP_VM_RUNTIME_FILE "vmsup-runtime.json"
/* retries of QMP for a QEMU adopted without it: from 1 s, doubling, to this */
#define VMSUP_VM_QMP_RETRY_MAX_S 30

struct _VmsupVm {
	GObject parent_instance;
	VmsupVmDef *def;           /* owned */
	gchar *runtime_dir;        /* owned */
	gchar *qemu_binary;        /* owned, NULL: $VMSUP_QEMU or PATH */
	gchar *state_dir;          /* owned: the daemon's; NULL: no guest files (no seed) */
	VmsupVmStore *store;       /* owned */
	VmsupVmAccel *accel;       /* owned */
	VmsupVmCgroup *cgroup;     /* owned */
	GCancellable *cancellable; /* owned, nullable */
	VmsupVmState state;

	/* the QEMU of the current run, NULL when there is none */
	VmsupQemuProcess *process; /* owned */
	VmsupQmpClient *qmp;       /* owned */
	VmsupVmHandles *handles;   /* owned */
	VmsupVmConsole *console;   /* owned: the serial console's viewers */
	gulong exited_id;
	gulong event_id;
	guint qmp_retry_id; /* QMP did not answer at adoption: the next try */
	guint qmp_retry_s;  /* the pause before it, doubled each time */
	gboolean starting;  /* spawn or adoption under way: its callback cleans up */
	gchar *stop_reason; /* owned: a stop was asked ("stopped on request"), the exit is clean */
	gboolean shutdown_seen;
	gchar *shutdown_reason;  /* owned */
	VmsupVmDef *running_def; /* owned: the definition QEMU runs with */
	VmsupAccel run_accel;    /* the accelerator QEMU runs with */
	gint64 started_at;       /* real time, us */
	/*
	 * The guest runs an agent (it opened the agent's channel in some run),
	 * and whether it did in this one: until then it is still booting, and
	 * cannot act on the power button either
	 */
	gboolean agent_seen;
	gboolean agent_up;
	gdouble boot_to_agent_s; /* this run: from the QEMU's start to the agent's port, -1 */

	/* the last run, also kept in the store's last-run record (VmsupVmOutcome) */
	gint exit_status;
	gchar *exit_reason; /* owned */
	gint64 stopped_at;  /* real time, us; 0: unknown */
	gchar *last_error;  /* owned */
	/* the outcome is being saved: the runtime dir goes, and waiters return, once it is */
	gboolean saving_outcome;
	GPtrArray *exit_waiters; /* owned, of GTask: returned once QEMU exited and was cleaned up */
	gint incoming_fd;        /* owned: the saved state the next start loads, -1: none */
};

G_DEFINE_FINAL_TYPE(VmsupVm, vmsup_vm, G_TYPE_OBJECT)

enum { SIGNAL_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* the state machine */

const gchar *
vmsup_vm_state_to_string(VmsupVmState state)
{
	switch (state) {
	case VMSUP_VM_STATE_DEFINED:
		return "defined";
	case VMSUP_VM_STATE_STARTING:
		return "starting";
	case VMSUP_VM_STATE_RUNNING:
		return "running";
	case VMSUP_VM_STATE_PAUSED:
		return "paused";
	case VMSUP_VM_STATE_STOPPING:
		return "stopping";
	case VMSUP_VM_STATE_STOPPED:
		return "stopped";
	case VMSUP_VM_STATE_CRASHED:
		return "crashed";
	default:
		return "unknown";
	}
}

#define VMSUP_VM_STATE_BIT(state) (1u << (state))
#define VMSUP_VM_STATES_ENDED                                                                      \
	(VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_STOPPED) | VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_CRASHED))

/*
 * Every change of state a VM may make, by the state it leaves. A start
 * that fails goes back to where it came from; an exit ends any run, one
 * still starting included; a stored outcome is read at load, from defined.
 */
static const guint vmsup_vm_transitions[] = {
    [VMSUP_VM_STATE_DEFINED] = VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_STARTING) | VMSUP_VM_STATES_ENDED,
    [VMSUP_VM_STATE_STARTING] = VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_DEFINED) |
				VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_RUNNING) |
				VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_PAUSED) |
				VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_STOPPING) | VMSUP_VM_STATES_ENDED,
    [VMSUP_VM_STATE_RUNNING] = VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_PAUSED) |
			       VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_STOPPING) | VMSUP_VM_STATES_ENDED,
    [VMSUP_VM_STATE_PAUSED] = VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_RUNNING) |
			      VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_STOPPING) | VMSUP_VM_STATES_ENDED,
    [VMSUP_VM_STATE_STOPPING] = VMSUP_VM_STATES_ENDED,
    [VMSUP_VM_STATE_STOPPED] = VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_STARTING) | VMSUP_VM_STATES_ENDED,
    [VMSUP_VM_STATE_CRASHED] = VMSUP_VM_STATE_BIT(VMSUP_VM_STATE_STARTING) | VMSUP_VM_STATES_ENDED,
};

static void
vmsup_vm_emit_changed(VmsupVm *self)
{
	g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
}

/* the one place the state changes; with @notify, "changed" when it did */
static void
vmsup_vm_set_state(VmsupVm *self, VmsupVmState state, gboolean notify)
{
	if (self->state == state)
		return;
	if ((vmsup_vm_transitions[self->state] & VMSUP_VM_STATE_BIT(state)) == 0)
		g_warning("VM '%s' changes from %s to %s, which it never should",
			  self->def->name,
			  vmsup_vm_state_to_string(self->state),
			  vmsup_vm_state_to_string(state));
	g_debug("VM '%s': %s -> %s",
		self->def->name,
		vmsup_vm_state_to_string(self->state),
		vmsup_vm_state_to_string(state));
	self->state = state;
	if (notify)
		vmsup_vm_emit_changed(self);
}

/*
 * What QEMU's query-status answer says the VM is: running only while its
 * vCPUs run. Not only "paused" stops them: a QEMU adopted in "prelaunch"
 * (vmsupd went before its start sent "cont") or "postmigrate" (a memory
 * snapshot saved while vmsupd was away) waits too, and resumes like one.
 */
static VmsupVmState
vmsup_vm_state_of_status(JsonNode *status)
{
	JsonObject *object;

	if (status == NULL || !JSON_NODE_HOLDS_OBJECT(status))
		return VMSUP_VM_STATE_RUNNING;
	object = json_node_get_object(status);
	if (json_object_has_member(object, "running"))
		return vmsup_json_object_get_bool(object, "running", TRUE) ? VMSUP_VM_STATE_RUNNING
									   : VMSUP_VM_STATE_PAUSED;
	return g_strcmp0(vmsup_json_object_get_string(object, "status", NULL), "paused") == 0
		   ? VMSUP_VM_STATE_PAUSED
		   : VMSUP_VM_STATE_RUNNING;
}

static void
vmsup_vm_return_error(GTask *task, GError *error /* owned */)
{
	vmsup_error_convert(&error);
	g_task_return_error(task, error);
}

static void
vmsup_vm_closure_notify(gpointer data, GClosure *closure)
{
	g_object_unref(data);
}

/* the runtime of one run: handles, exit, cleanup */

static void
vmsup_vm_drop_runtime(VmsupVm *self, gboolean remove_dir)
{
	if (self->process != NULL)
		g_clear_signal_handler(&self->exited_id, self->process);
	g_clear_handle_id(&self->qmp_retry_id, g_source_remove);
	self->qmp_retry_s = 0;
	if (self->qmp != NULL)
		g_clear_signal_handler(&self->event_id, self->qmp);
	g_clear_object(&self->qmp);
	if (self->handles != NULL && self->handles->qga != NULL && remove_dir)
		vmsup_qga_client_close(self->handles->qga);
	g_clear_pointer(&self->handles, vmsup_vm_handles_unref);
	if (self->console != NULL)
		vmsup_vm_console_close(self->console);
	g_clear_object(&self->console);
	g_clear_object(&self->process);
	g_clear_pointer(&self->running_def, vmsup_vm_def_free);
	g_clear_pointer(&self->shutdown_reason, g_free);
	g_clear_pointer(&self->stop_reason, g_free);
	self->starting = FALSE;
	self->shutdown_seen = FALSE;
	if (remove_dir)
		vmsup_vm_files_remove_tree(self->runtime_dir);
}

static void
vmsup_vm_return_exit_waiters(VmsupVm *self)
{
	g_autoptr(GPtrArray) waiters = g_steal_pointer(&self->exit_waiters);

	self->exit_waiters = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; i < waiters->len; i++)
		g_task_return_boolean(g_ptr_array_index(waiters, i), TRUE);
}

/* completes once QEMU is gone and the outcome of its run saved */
static void
vmsup_vm_wait_exit_async(VmsupVm *self, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);

	g_task_set_source_tag(task, vmsup_vm_wait_exit_async);
	if (self->process == NULL && !self->saving_outcome) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	g_ptr_array_add(self->exit_waiters, g_steal_pointer(&task));
}

/* the last line QEMU wrote on stderr, to say why it died */
static gchar *
vmsup_vm_read_qemu_log_tail(VmsupVm *self)
{
	g_autofree gchar *path = g_build_filename(self->runtime_dir, VMSUP_QEMU_STDERR_LOG, NULL);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &contents, &len, NULL) || len == 0)
		return NULL;
	if (len > 4096)
		memmove(contents, contents + len - 4096, 4097);
	lines = g_strsplit(contents, "\n", -1);
	for (gint i = (gint)g_strv_length(lines) - 1; i >= 0; i--) {
		g_strstrip(lines[i]);
		if (lines[i][0] != '\0')
			return g_strdup(lines[i]);
	}
	return NULL;
}

/* the outcome of the last run */

void
vmsup_vm_apply_outcome(VmsupVm *self, const VmsupVmOutcome *outcome)
{
	g_return_if_fail(VMSUP_IS_VM(self));
	vmsup_vm_set_state(self,
			   outcome->crashed ? VMSUP_VM_STATE_CRASHED : VMSUP_VM_STATE_STOPPED,
			   FALSE);
	g_free(self->exit_reason);
	self->exit_reason = g_strdup(outcome->reason);
	self->exit_status = outcome->wait_status;
	self->stopped_at = outcome->stopped_at * G_USEC_PER_SEC;
	self->agent_seen = self->agent_seen || outcome->agent_seen;
}

static void
vmsup_vm_outcome_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;
	gboolean saved = vmsup_vm_store_save_outcome_finish(VMSUP_VM_STORE(source), res, &error);

	if (!saved)
		vmsup_log_vm(G_LOG_LEVEL_WARNING,
			     self->def->name,
			     "How VM '%s' ended is not kept over a restart of vmsupd: %s; its "
			     "runtime directory stays, so that a restarted vmsupd knows it ran",
			     self->def->name,
			     error->message);
	self->saving_outcome = FALSE;
	/*
	 * Starts wait for this, so the directory is not yet a new run's. Unsaved,
	 * the directory is what tells the next daemon that a run ended unseen.
	 */
	if (self->process == NULL && saved)
		vmsup_vm_files_remove_tree(self->runtime_dir);
	vmsup_vm_return_exit_waiters(self);
	g_task_return_boolean(task, TRUE);
}

/*
 * Saves how the run of QEMU @pid ended (state, exit_reason, exit_status),
 * then removes the runtime dir: a daemon killed in between finds the pid
 * file next to the outcome of that very pid. Starts, stops and deletes wait
 * until this is done (vmsup_vm_wait_exit_async()).
 */
static void
vmsup_vm_save_outcome_async(VmsupVm *self,
			    gint64 pid,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	g_autoptr(VmsupVmOutcome) outcome =
	    vmsup_vm_outcome_new(self->state == VMSUP_VM_STATE_CRASHED,
				 self->exit_reason,
				 self->exit_status);

	g_task_set_source_tag(task, vmsup_vm_save_outcome_async);
	outcome->stopped_at = self->stopped_at / G_USEC_PER_SEC;
	outcome->pid = pid;
	outcome->agent_seen = self->agent_seen;
	self->saving_outcome = TRUE;
	vmsup_vm_store_save_outcome_async(self->store,
					  self->def->name,
					  outcome,
					  NULL,
					  vmsup_vm_outcome_saved_cb,
					  g_steal_pointer(&task));
}

void
vmsup_vm_note_stop(VmsupVm *self, const gchar *reason)
{
	g_return_if_fail(VMSUP_IS_VM(self));
	if (self->process == NULL || self->starting ||
	    !vmsup_qemu_process_is_running(self->process))
		return;
	g_free(self->stop_reason);
	self->stop_reason = g_strdup(reason != NULL ? reason : "stopped on request");
	vmsup_vm_set_state(self, VMSUP_VM_STATE_STOPPING, TRUE);
}

/* QEMU is gone: stopped or crashed, runtime cleaned up exactly once */
static void
vmsup_vm_handle_exit(VmsupVm *self, gint wait_status)
{
	g_autofree gchar *how = vmsup_qemu_describe_wait_status(wait_status);
	g_autofree gchar *tail = NULL;
	const gchar *name = self->def->name;
	gboolean clean;
	gint64 pid;

	if (self->process == NULL)
		return;
	pid = vmsup_qemu_process_get_pid(self->process);
	clean = self->stop_reason != NULL ||
		(self->shutdown_seen && g_strcmp0(self->shutdown_reason, "guest-panic") != 0);
	self->exit_status = wait_status;
	self->stopped_at = g_get_real_time();
	g_free(self->exit_reason);
	if (self->stop_reason != NULL) {
		self->exit_reason = g_strdup_printf("%s; QEMU %s", self->stop_reason, how);
	} else if (clean) {
		self->exit_reason = g_strdup_printf(
		    "shut down (%s); QEMU %s",
		    self->shutdown_reason != NULL ? self->shutdown_reason : "shutdown",
		    how);
	} else {
		tail = vmsup_vm_read_qemu_log_tail(self);
		self->exit_reason = tail != NULL ? g_strdup_printf("QEMU %s: %s", how, tail)
						 : g_strdup_printf("QEMU %s", how);
	}
	/* the runtime dir itself goes once the outcome is saved */
	if (self->handles != NULL && self->handles->qga != NULL)
		vmsup_qga_client_close(self->handles->qga);
	vmsup_vm_drop_runtime(self, FALSE);
	vmsup_vm_cgroup_release(self->cgroup);
	vmsup_vm_set_state(self, clean ? VMSUP_VM_STATE_STOPPED : VMSUP_VM_STATE_CRASHED, FALSE);
	if (clean)
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' stopped (%s)",
			     name,
			     self->exit_reason);
	else
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' crashed: %s",
			     name,
			     self->exit_reason);
	vmsup_vm_emit_changed(self);
	vmsup_vm_save_outcome_async(self, pid, NULL, NULL);
}

void
vmsup_vm_cleanup_exited(VmsupVm *self)
{
	g_return_if_fail(VMSUP_IS_VM(self));
	if (self->process == NULL || self->starting)
		return;
	/* only a QEMU that is gone is cleaned up; a live one cleans up when it exits */
	if (vmsup_qemu_process_is_running(self->process)) {
		g_debug("cleanup of '%s' asked while QEMU runs, ignoring", self->def->name);
		return;
	}
	vmsup_vm_handle_exit(self, vmsup_qemu_process_get_wait_status(self->process));
}

static void
vmsup_vm_exited_cb(VmsupQemuProcess *process, gint wait_status, gpointer user_data)
{
	VmsupVm *self = user_data;

	if (self->process != process)
		return;
	self->exit_status = wait_status;
	/* a spawn or adoption that fails cleans up in its own callback */
	if (self->starting)
		return;
	vmsup_vm_handle_exit(self, wait_status);
}

static void
vmsup_vm_qmp_event_cb(VmsupQmpClient *qmp,
		      const gchar *event,
		      JsonObject *data,
		      gint64 timestamp_us,
		      gpointer user_data)
{
	VmsupVm *self = user_data;

	if (g_strcmp0(event, "STOP") == 0) {
		if (self->state == VMSUP_VM_STATE_RUNNING)
			vmsup_vm_set_state(self, VMSUP_VM_STATE_PAUSED, TRUE);
	} else if (g_strcmp0(event, "RESUME") == 0) {
		if (self->state == VMSUP_VM_STATE_PAUSED || self->state == VMSUP_VM_STATE_STARTING)
			vmsup_vm_set_state(self, VMSUP_VM_STATE_RUNNING, TRUE);
	} else if (g_strcmp0(event, "SHUTDOWN") == 0) {
		self->shutdown_seen = TRUE;
		g_free(self->shutdown_reason);
		self->shutdown_reason =
		    g_strdup(vmsup_json_object_get_string(data, "reason", "shutdown"));
		g_debug("VM '%s': SHUTDOWN (%s, guest=%d)",
			self->def->name,
			self->shutdown_reason,
			vmsup_json_object_get_bool(data, "guest", FALSE));
		vmsup_vm_set_state(self, VMSUP_VM_STATE_STOPPING, TRUE);
	} else if (g_strcmp0(event, "VSERPORT_CHANGE") == 0 &&
		   g_strcmp0(vmsup_json_object_get_string(data, "id", NULL), VMSUP_QEMU_QGA_PORT) ==
		       0) {
		if (vmsup_json_object_get_bool(data, "open", FALSE)) {
			if (self->boot_to_agent_s < 0 && !self->agent_up && self->process != NULL)
				self->boot_to_agent_s =
				    (gdouble)(g_get_monotonic_time() -
					      vmsup_qemu_process_get_started_at(self->process)) /
				    G_USEC_PER_SEC;
			self->agent_seen = self->agent_up = TRUE;
		}
	} else {
		g_debug("VM '%s': QMP event %s", self->def->name, event);
	}
}

static void
vmsup_vm_watch_exit(VmsupVm *self)
{
	self->exited_id = g_signal_connect_data(self->process,
						"exited",
						G_CALLBACK(vmsup_vm_exited_cb),
						g_object_ref(self),
						vmsup_vm_closure_notify,
						0);
}

static void
vmsup_vm_write_runtime_file(VmsupVm *self)
{
	g_autoptr(JsonObject) obj = vmsup_vm_def_to_json(self->running_def);
	g_autofree gchar *json = NULL;
	g_autofree gchar *path = g_build_filename(self->runtime_dir, VMSUP_VM_RUNTIME_FILE, NULL);
	g_autoptr(GError) error = NULL;

	json_object_set_string_member(obj, "accel", vmsup_accel_to_string(self->run_accel));
	json = vmsup_json_object_to_string(obj, FALSE);
	if (!g_file_set_contents_full(path, json, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error))
		g_warning("Cannot write '%s': %s, ignoring", path, error->message);
}

/* what an adopted QEMU was started with; the current definition when unknown */
static void
vmsup_vm_read_runtime_file(VmsupVm *self)
{
	g_autofree gchar *path = g_build_filename(self->runtime_dir, VMSUP_VM_RUNTIME_FILE, NULL);
	g_autofree gchar *contents = NULL;
	g_autoptr(JsonObject) obj = NULL;
	VmsupVmDef *def = NULL;
	VmsupAccel accel = vmsup_vm_accel_is_known(self->accel)
			       ? vmsup_vm_accel_get(self->accel, NULL)
			       : VMSUP_ACCEL_TCG;

	if (g_file_get_contents(path, &contents, NULL, NULL))
		obj = vmsup_json_parse_object(contents, -1, NULL);
	if (obj != NULL) {
		def = vmsup_vm_def_new_from_json(obj, NULL);
		vmsup_accel_from_string(vmsup_json_object_get_string(obj, "accel", ""), &accel);
	}
	self->run_accel = accel == VMSUP_ACCEL_AUTO ? VMSUP_ACCEL_TCG : accel;
	g_clear_pointer(&self->running_def, vmsup_vm_def_free);
	self->running_def = def != NULL ? def : vmsup_vm_def_copy(self->def);
}

/* the QMP client of the QEMU, when it is connected, is the VM's: its events followed */
static void
vmsup_vm_follow_qmp(VmsupVm *self)
{
	VmsupQmpClient *qmp = vmsup_qemu_process_get_qmp(self->process);

	if (self->qmp != NULL)
		g_clear_signal_handler(&self->event_id, self->qmp);
	g_clear_object(&self->qmp);
	if (qmp == NULL || !vmsup_qmp_client_is_ready(qmp))
		return;
	self->qmp = g_object_ref(qmp);
	self->event_id = g_signal_connect_data(qmp,
					       "event",
					       G_CALLBACK(vmsup_vm_qmp_event_cb),
					       g_object_ref(self),
					       vmsup_vm_closure_notify,
					       0);
}

/* a spawned or adopted QEMU is up: cache its handles, follow its events */
static void
vmsup_vm_setup_running(VmsupVm *self)
{
	g_autofree gchar *qga_path =
	    g_build_filename(self->runtime_dir, VMSUP_QEMU_QGA_SOCKET, NULL);
	g_autofree gchar *console_path =
	    g_build_filename(self->runtime_dir, VMSUP_QEMU_CONSOLE_SOCKET, NULL);
	g_autofree gchar *console_log =
	    g_build_filename(self->runtime_dir, VMSUP_QEMU_CONSOLE_LOG, NULL);
	GArray *forwards = vmsup_qemu_process_get_forwards(self->process);
	VmsupVmHandles *handles;
	gint64 started_mono = vmsup_qemu_process_get_started_at(self->process);
	g_autoptr(GError) error = NULL;

	vmsup_vm_follow_qmp(self);
	handles = vmsup_vm_handles_new(self->def->name, self->runtime_dir, self->process);
	handles->qga = vmsup_qga_client_new(self->def->name, qga_path);
	handles->accel = self->run_accel;
	if (forwards != NULL && forwards->len > 0) {
		handles->forwards =
		    g_array_sized_new(FALSE, FALSE, sizeof(VmsupQemuForward), forwards->len);
		g_array_append_vals(handles->forwards, forwards->data, forwards->len);
	}
	g_clear_pointer(&self->handles, vmsup_vm_handles_unref);
	self->handles = handles;
	if (self->console != NULL)
		vmsup_vm_console_close(self->console);
	g_clear_object(&self->console);
	self->console = vmsup_vm_console_new(self->def->name, console_path, console_log);
	self->started_at = g_get_real_time() - (g_get_monotonic_time() - started_mono);
	self->boot_to_agent_s = -1;
	self->exit_status = -1;
	self->stopped_at = 0;
	g_clear_pointer(&self->exit_reason, g_free);
	g_clear_pointer(&self->last_error, g_free);
	/* a new run: how the last one ended no longer describes the VM */
	if (!vmsup_vm_store_remove_outcome(self->store, self->def->name, &error))
		g_warning("%s, ignoring", error->message);
}

/* QEMU of this run, placed into the VM's cgroup with the limits it runs with */

static void
vmsup_vm_placed(VmsupVm *self, gboolean placed)
{
	/* limits change live, so the definition's are what QEMU runs with, adopted or not */
	if (placed && self->running_def != NULL) {
		self->running_def->cpu_quota_percent = self->def->cpu_quota_percent;
		self->running_def->memory_max_mib = self->def->memory_max_mib;
	}
}

static void
vmsup_vm_adopt_placed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupVm) self = user_data;

	vmsup_vm_placed(self, vmsup_vm_cgroup_place_finish(VMSUP_VM_CGROUP(source), res));
}

/* start */

typedef struct {
	VmsupVmState previous;
} VmsupVmStart;

static void
vmsup_vm_start_failed(GTask *task /* owned */, GError *error)
{
	VmsupVm *self = g_task_get_source_object(task);
	VmsupVmStart *data = g_task_get_task_data(task);
	const gchar *name = self->def->name;

	vmsup_error_convert(&error);
	if (error->code != VMSUP_ERROR_CANCELLED)
		g_prefix_error(&error, _("Cannot start VM '%s': "), name);
	vmsup_vm_drop_runtime(self, TRUE);
	g_free(self->last_error);
	self->last_error = g_strdup(error->message);
	vmsup_vm_set_state(self, data->previous, FALSE);
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE, name, "VM '%s' did not start: %s", name, error->message);
	vmsup_vm_emit_changed(self);
	g_task_return_error(task, error);
	g_object_unref(task);
}

/* QEMU died while a start asked it something */
static gboolean
vmsup_vm_start_check_gone(GTask *task)
{
	VmsupVm *self = g_task_get_source_object(task);

	if (self->process != NULL)
		return FALSE;
	g_task_return_new_error(task,
				VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("VM '%s' exited right after it started: %s"),
				self->def->name,
				self->exit_reason != NULL ? self->exit_reason : "?");
	return TRUE;
}

static void
vmsup_vm_start_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = g_task_get_source_object(task);
	g_autoptr(JsonNode) status = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *name = self->def->name;

	status = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (vmsup_vm_start_check_gone(task))
		return;
	if (status == NULL)
		g_debug("query-status of '%s' failed: %s", name, error->message);
	if (self->state == VMSUP_VM_STATE_STARTING)
		vmsup_vm_set_state(self, vmsup_vm_state_of_status(status), FALSE);
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     name,
		     "VM '%s' started (%s, pid %d)",
		     name,
		     vmsup_accel_to_string(self->run_accel),
		     (gint)vmsup_qemu_process_get_pid(self->process));
	vmsup_vm_emit_changed(self);
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_start_resumed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = g_task_get_source_object(task);
	g_autoptr(JsonNode) result = NULL;
	GError *error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (vmsup_vm_start_check_gone(task))
		return;
	if (result == NULL) {
		vmsup_qemu_process_kill(self->process);
		vmsup_vm_start_failed(g_steal_pointer(&task), error);
		return;
	}
	vmsup_qmp_client_execute_async(self->qmp,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_vm_start_status_cb,
				       g_steal_pointer(&task));
}

/* in its cgroup while still paused (-S), then on */
static void
vmsup_vm_start_placed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = g_task_get_source_object(task);

	vmsup_vm_placed(self, vmsup_vm_cgroup_place_finish(VMSUP_VM_CGROUP(source), res));
	if (vmsup_vm_start_check_gone(task))
		return;
	if (self->qmp == NULL) {
		vmsup_vm_set_state(self, VMSUP_VM_STATE_RUNNING, FALSE);
		vmsup_vm_emit_changed(self);
		g_task_return_boolean(task, TRUE);
		return;
	}
	vmsup_qmp_client_execute_async(
	    self->qmp,
	    vmsup_vm_cgroup_wanted(self->cgroup) ? "cont" : "query-status",
	    NULL,
	    NULL,
	    vmsup_vm_cgroup_wanted(self->cgroup) ? vmsup_vm_start_resumed_cb
						 : vmsup_vm_start_status_cb,
	    g_steal_pointer(&task));
}

static void
vmsup_vm_start_spawned_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = g_task_get_source_object(task);
	VmsupQemuProcess *process = VMSUP_QEMU_PROCESS(source);
	g_autoptr(GError) error = NULL;

	if (!vmsup_qemu_process_spawn_finish(process, res, &error)) {
		vmsup_vm_start_failed(g_steal_pointer(&task), g_steal_pointer(&error));
		return;
	}
	self->starting = FALSE;
	if (!vmsup_qemu_process_is_running(process)) {
		g_autofree gchar *how = vmsup_qemu_describe_wait_status(self->exit_status);
		vmsup_vm_start_failed(g_steal_pointer(&task),
				      g_error_new(VMSUP_ERROR,
						  VMSUP_ERROR_FAILED_PRECONDITION,
						  "QEMU %s during start-up",
						  how));
		return;
	}
	vmsup_vm_setup_running(self);
	vmsup_vm_write_runtime_file(self);
	vmsup_vm_cgroup_place_async(self->cgroup,
				    vmsup_qemu_process_get_pid(process),
				    self->def,
				    vmsup_vm_start_placed_cb,
				    g_steal_pointer(&task));
}

/* the host port forwarded to the guest's SSH port in @forwards (or the guest port), 0: none */
static guint16
vmsup_vm_ssh_port(GArray *forwards)
{
	for (guint i = 0; forwards != NULL && i < forwards->len; i++) {
		VmsupQemuForward *fwd = &g_array_index(forwards, VmsupQemuForward, i);
		if (fwd->guest_port == VMSUP_VM_SEED_SSH_PORT)
			return fwd->host_port != 0 ? fwd->host_port : fwd->guest_port;
	}
	return 0;
}

/* the QEMU of @def, its files opened now, or NULL with the error a start returns */
static VmsupQemuConfig *
vmsup_vm_start_config(VmsupVm *self, GError **error)
{
	VmsupVmDef *def = self->def;
	g_autoptr(VmsupQemuConfig) config = vmsup_qemu_config_new(def->name);
	g_autofree gchar *ssh_key_arg = NULL;
	gchar *binary;

	config->qemu_binary = g_strdup(self->qemu_binary);
	/* resolved once, here: QEMU is spawned with what was found */
	binary = vmsup_qemu_config_find_binary(config, error);
	if (binary == NULL)
		return NULL;
	g_free(config->qemu_binary);
	config->qemu_binary = binary;
	/*
	 * the files may have changed hands since create or set: QEMU reads them
	 * for the VM's owner, whoever asks for the start (autostart included)
	 */
	if (!vmsup_vm_def_check_caller(def, def->owner_uid, error) ||
	    !vmsup_preflight_check_files(def, error))
		return NULL;
	if (def->disk != NULL && !g_file_test(def->disk, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("The disk '%s' of VM '%s' is missing; restore it, or delete "
			      "the VM and create it again"),
			    def->disk,
			    def->name);
		return NULL;
	}
	if (g_mkdir_with_parents(self->runtime_dir, 0700) != 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot create the runtime directory '%s': %s; check "
			      "--runtime-dir and its permissions"),
			    self->runtime_dir,
			    g_strerror(saved_errno));
		return NULL;
	}
	/* a VM from an image gets its seed (and firmware) made first, then opened */
	if (def->image != NULL && self->state_dir != NULL) {
		g_autofree gchar *guest_dir = vmsup_vm_seed_guest_dir(self->state_dir, def->name);
		if (!vmsup_vm_seed_prepare(self->state_dir, guest_dir, def, error) ||
		    !vmsup_vm_files_open_guest(def, guest_dir, config, error))
			return NULL;
	} else if (vmsup_vm_def_is_bundled_guest(def) && self->state_dir != NULL) {
		g_autofree gchar *guest_dir = vmsup_vm_seed_guest_dir(self->state_dir, def->name);
		g_autoptr(GError) ssh_error = NULL;
		/* its SSH server is a convenience: the VM starts without it */
		ssh_key_arg =
		    vmsup_vm_seed_prepare_bundled(self->state_dir, guest_dir, def, &ssh_error);
		if (ssh_key_arg == NULL)
			g_warning("VM '%s' starts without SSH: %s", def->name, ssh_error->message);
	}
	/* opened now, as the owner, and handed over: QEMU opens no host file by name */
	if (!vmsup_vm_files_open(def, config, error))
		return NULL;
	config->accel = vmsup_vm_accel_get(self->accel, NULL);
	config->cpus = def->cpus;
	config->memory_mib = def->memory_mib;
	config->kernel = g_strdup(def->kernel);
	config->initrd = g_strdup(def->initrd);
	/* first: what follows a "--" on the command line is handed to init as arguments */
	config->cmdline = ssh_key_arg == NULL    ? g_strdup(def->cmdline)
			  : def->cmdline == NULL ? g_strdup(ssh_key_arg)
						 : g_strjoin(" ", ssh_key_arg, def->cmdline, NULL);
	config->disk = g_strdup(def->disk);
	config->share_dir = g_strdup(def->share_dir);
	config->mac = g_strdup(def->mac);
	for (guint i = 0; def->forward != NULL && i < def->forward->len; i++)
		vmsup_qemu_config_add_forward(config, 0, g_array_index(def->forward, guint16, i));
	/* its SSH server, for vm.ssh_info and vmsup shell */
	if ((config->seed_fd >= 0 || ssh_key_arg != NULL) &&
	    vmsup_vm_ssh_port(config->forwards) == 0)
		vmsup_qemu_config_add_forward(config, 0, VMSUP_VM_SEED_SSH_PORT);
	/* a QEMU that gets a cgroup starts paused, resumed once it is in it */
	config->paused = vmsup_vm_cgroup_wanted(self->cgroup);
	config->incoming_fd = self->incoming_fd;
	self->incoming_fd = -1;
	return g_steal_pointer(&config);
}

static void
vmsup_vm_start_spawn(GTask *task /* owned */)
{
	VmsupVm *self = g_task_get_source_object(task);
	VmsupVmStart *data = g_task_get_task_data(task);
	g_autoptr(VmsupQemuConfig) config = NULL;
	GError *error = NULL;

	config = vmsup_vm_start_config(self, &error);
	if (config == NULL) {
		vmsup_vm_return_error(task, error);
		g_object_unref(task);
		return;
	}
	data->previous = self->state;
	self->process = vmsup_qemu_process_new(self->def->name, self->runtime_dir);
	self->starting = TRUE;
	g_clear_pointer(&self->stop_reason, g_free);
	self->shutdown_seen = FALSE;
	self->agent_up = FALSE;
	self->run_accel = config->accel;
	self->running_def = vmsup_vm_def_copy(self->def);
	self->exit_status = -1;
	vmsup_vm_watch_exit(self);
	vmsup_vm_set_state(self, VMSUP_VM_STATE_STARTING, TRUE);
	vmsup_qemu_process_spawn_async(self->process,
				       config,
				       g_task_get_cancellable(task),
				       vmsup_vm_start_spawned_cb,
				       task);
}

static void
vmsup_vm_start_accel_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	g_autoptr(GError) error = NULL;

	if (!vmsup_vm_accel_ensure_finish(VMSUP_VM_ACCEL(source), res, &error) ||
	    g_cancellable_set_error_if_cancelled(g_task_get_cancellable(task), &error)) {
		vmsup_vm_return_error(task, g_steal_pointer(&error));
		return;
	}
	vmsup_vm_start_spawn(g_steal_pointer(&task));
}

static void
vmsup_vm_start_cont_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = g_task_get_source_object(task);
	g_autoptr(JsonNode) result = NULL;
	g_autoptr(GError) error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		g_prefix_error(&error, _("Cannot resume VM '%s': "), self->def->name);
		vmsup_vm_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (self->state == VMSUP_VM_STATE_PAUSED)
		vmsup_vm_set_state(self, VMSUP_VM_STATE_RUNNING, TRUE);
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_start_relay_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;

	if (!vmsup_vm_start_finish(VMSUP_VM(source), res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_start_after_exit_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = VMSUP_VM(source);
	/* read before the task is handed on: arguments have no order of evaluation */
	GCancellable *cancellable = g_task_get_cancellable(task);

	g_task_propagate_boolean(G_TASK(res), NULL);
	vmsup_vm_start_async(self, cancellable, vmsup_vm_start_relay_cb, g_steal_pointer(&task));
}

void
vmsup_vm_start_async(VmsupVm *self,
		     GCancellable *cancellable,
		     GAsyncReadyCallback callback,
		     gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(VMSUP_IS_VM(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_start_async);
	g_task_set_task_data(task, g_new0(VmsupVmStart, 1), g_free);

	if (self->process != NULL) {
		/* the guest is shutting down on its own: start again once it is gone */
		if (self->state == VMSUP_VM_STATE_STOPPING) {
			vmsup_vm_wait_exit_async(self,
						 vmsup_vm_start_after_exit_cb,
						 g_steal_pointer(&task));
			return;
		}
		if (self->state == VMSUP_VM_STATE_PAUSED && self->qmp != NULL) {
			vmsup_qmp_client_execute_async(self->qmp,
						       "cont",
						       NULL,
						       cancellable,
						       vmsup_vm_start_cont_cb,
						       g_steal_pointer(&task));
			return;
		}
		g_task_return_boolean(task, TRUE);
		return;
	}
	/* the last run's outcome is still being saved: the new run must not race it */
	if (self->saving_outcome) {
		vmsup_vm_wait_exit_async(self,
					 vmsup_vm_start_after_exit_cb,
					 g_steal_pointer(&task));
		return;
	}
	vmsup_vm_accel_ensure_async(self->accel,
				    cancellable,
				    vmsup_vm_start_accel_cb,
				    g_steal_pointer(&task));
}

gboolean
vmsup_vm_start_finish(VmsupVm *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* stop */

static void
vmsup_vm_stop_process_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;

	if (!vmsup_qemu_process_stop_finish(VMSUP_QEMU_PROCESS(source), res, &error))
		g_debug("stopping QEMU failed: %s", error->message);
}

static void
vmsup_vm_stop_exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;

	g_task_propagate_boolean(G_TASK(res), NULL);
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_stop_async(VmsupVm *self,
		    gboolean force,
		    guint timeout_ms,
		    const gchar *reason,
		    GAsyncReadyCallback callback,
		    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	const gchar *name;

	g_return_if_fail(VMSUP_IS_VM(self));
	task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_stop_async);
	name = self->def->name;
	if (self->process == NULL) {
		/* stopped already; an outcome still being saved is waited for */
		vmsup_vm_wait_exit_async(self, vmsup_vm_stop_exited_cb, g_steal_pointer(&task));
		return;
	}
	vmsup_log_vm(G_LOG_LEVEL_INFO, name, "stopping VM '%s'%s", name, force ? " (forced)" : "");
	/* a reason noted before (vmsup_vm_note_stop()) stays */
	if (self->stop_reason == NULL)
		self->stop_reason = g_strdup(reason != NULL ? reason : "stopped on request");
	/*
	 * A guest known to run an agent that has not started it yet is still
	 * booting: nothing in it would act on the power button, so waiting for
	 * it would only take the whole timeout. QEMU is told to quit at once.
	 */
	if (!force && timeout_ms > 0 && self->state == VMSUP_VM_STATE_PAUSED) {
		vmsup_log_vm(G_LOG_LEVEL_INFO,
			     name,
			     "VM '%s' is paused and cannot power off: quitting QEMU",
			     name);
		timeout_ms = 0;
	} else if (!force && timeout_ms > 0 && self->agent_seen && !self->agent_up) {
		vmsup_log_vm(G_LOG_LEVEL_INFO,
			     name,
			     "VM '%s' is still booting (its guest agent has not started): "
			     "quitting QEMU instead of waiting for the guest to power off",
			     name);
		timeout_ms = 0;
	}
	vmsup_vm_set_state(self, VMSUP_VM_STATE_STOPPING, TRUE);
	vmsup_vm_wait_exit_async(self, vmsup_vm_stop_exited_cb, g_steal_pointer(&task));
	vmsup_qemu_process_stop_async(self->process,
				      force,
				      timeout_ms,
				      NULL,
				      vmsup_vm_stop_process_cb,
				      NULL);
}

gboolean
vmsup_vm_stop_finish(VmsupVm *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* pause and resume */

static void
vmsup_vm_pause_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = g_task_get_source_object(task);
	gboolean pause = GPOINTER_TO_INT(g_task_get_task_data(task));
	g_autoptr(JsonNode) result = NULL;
	g_autoptr(GError) error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		g_prefix_error(&error,
			       pause ? _("Cannot pause VM '%s': ") : _("Cannot resume VM '%s': "),
			       self->def->name);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	/* the STOP or RESUME event may come after the answer: the reply shows the new state */
	if (pause && self->state == VMSUP_VM_STATE_RUNNING)
		vmsup_vm_set_state(self, VMSUP_VM_STATE_PAUSED, TRUE);
	else if (!pause && self->state == VMSUP_VM_STATE_PAUSED)
		vmsup_vm_set_state(self, VMSUP_VM_STATE_RUNNING, TRUE);
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_set_paused_async(VmsupVm *self,
			  gboolean pause,
			  GAsyncReadyCallback callback,
			  gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	const gchar *name;
	VmsupVmState wanted = pause ? VMSUP_VM_STATE_PAUSED : VMSUP_VM_STATE_RUNNING;

	g_return_if_fail(VMSUP_IS_VM(self));
	task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_set_paused_async);
	g_task_set_task_data(task, GINT_TO_POINTER(pause), NULL);
	name = self->def->name;
	if (self->state == wanted) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	if ((self->state != VMSUP_VM_STATE_RUNNING && self->state != VMSUP_VM_STATE_PAUSED) ||
	    self->qmp == NULL) {
		/* TRANSLATORS: the first %s is the VM's name, the second its state ("stopped") */
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					pause
					    ? _("VM '%s' is %s, not running: only a running VM can "
						"be paused; start it with 'vmsup start %s'")
					    : _("VM '%s' is %s, not paused: only a paused VM can "
						"be resumed; start it with 'vmsup start %s'"),
					name,
					vmsup_vm_state_to_string(self->state),
					name);
		return;
	}
	vmsup_log_vm(G_LOG_LEVEL_INFO, name, "%s VM '%s'", pause ? "pausing" : "resuming", name);
	vmsup_qmp_client_execute_async(self->qmp,
				       pause ? "stop" : "cont",
				       NULL,
				       NULL,
				       vmsup_vm_pause_done_cb,
				       g_steal_pointer(&task));
}

gboolean
vmsup_vm_set_paused_finish(VmsupVm *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* adoption of a QEMU an earlier daemon left */

typedef struct {
	VmsupVmOutcome *outcome; /* owned, may be NULL: the stored end of the last run */
	gint64 recorded_pid;     /* of the runtime dir's pid file; 0: none */
} VmsupVmAdopt;

static void
vmsup_vm_adopt_free(VmsupVmAdopt *adopt)
{
	g_clear_pointer(&adopt->outcome, vmsup_vm_outcome_free);
	g_free(adopt);
}

static void
vmsup_vm_adopt_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;

	g_task_propagate_boolean(G_TASK(res), NULL);
	g_task_return_boolean(task, TRUE);
}

/*
 * The runtime dir names no live QEMU: how its run ended, as far as is
 * known. QEMU removes its pid file when it exits by itself, so a saved
 * outcome next to no pid file is the last run's; next to a pid file, it
 * must be of that pid.
 */
static void
vmsup_vm_adopt_dead(GTask *task /* owned */)
{
	VmsupVm *self = g_task_get_source_object(task);
	VmsupVmAdopt *adopt = g_task_get_task_data(task);

	/* the daemon before saved how this very run ended, and died before cleaning up */
	if (adopt->outcome != NULL &&
	    (adopt->recorded_pid == 0 || adopt->outcome->pid == adopt->recorded_pid)) {
		vmsup_vm_drop_runtime(self, TRUE);
		vmsup_vm_apply_outcome(self, adopt->outcome);
		vmsup_vm_emit_changed(self);
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	/*
	 * It ended while no daemon watched: not our child, so how is unknown.
	 * Nobody asked for it through vmsupd, so it counts as a crash: the
	 * state that tells the user to look (a guest that powered itself off
	 * meanwhile shows the same).
	 */
	vmsup_vm_drop_runtime(self, FALSE);
	vmsup_vm_set_state(self, VMSUP_VM_STATE_CRASHED, FALSE);
	g_free(self->exit_reason);
	self->exit_reason = g_strdup(VMSUP_VM_UNWATCHED_END);
	self->exit_status = -1;
	self->stopped_at = 0;
	vmsup_vm_emit_changed(self);
	vmsup_vm_save_outcome_async(self, adopt->recorded_pid, vmsup_vm_adopt_saved_cb, task);
}

static void
vmsup_vm_schedule_qmp_retry(VmsupVm *self);

static void
vmsup_vm_qmp_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupVm) self = user_data;
	g_autoptr(JsonNode) status =
	    vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, NULL);

	/* a stop asked meanwhile stays under way */
	if (self->qmp == VMSUP_QMP_CLIENT(source) && status != NULL &&
	    JSON_NODE_HOLDS_OBJECT(status) &&
	    (self->state == VMSUP_VM_STATE_RUNNING || self->state == VMSUP_VM_STATE_PAUSED))
		vmsup_vm_set_state(self, vmsup_vm_state_of_status(status), TRUE);
}

static void
vmsup_vm_qmp_reconnected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupVm) self = user_data;
	g_autoptr(GError) error = NULL;
	gboolean ok =
	    vmsup_qemu_process_reconnect_qmp_finish(VMSUP_QEMU_PROCESS(source), res, &error);

	/* the run it was for is over, or the daemon is going */
	if (self->process != VMSUP_QEMU_PROCESS(source) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	if (!ok) {
		g_debug("QMP of VM '%s' still does not answer: %s",
			self->def->name,
			error->message);
		vmsup_vm_schedule_qmp_retry(self);
		return;
	}
	vmsup_vm_follow_qmp(self);
	g_clear_pointer(&self->last_error, g_free);
	self->qmp_retry_s = 0;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     self->def->name,
		     "VM '%s' answers QMP again",
		     self->def->name);
	vmsup_vm_emit_changed(self);
	vmsup_qmp_client_execute_async(self->qmp,
				       "query-status",
				       NULL,
				       self->cancellable,
				       vmsup_vm_qmp_status_cb,
				       g_object_ref(self));
}

static gboolean
vmsup_vm_qmp_retry_cb(gpointer user_data)
{
	VmsupVm *self = user_data;

	self->qmp_retry_id = 0;
	vmsup_qemu_process_reconnect_qmp_async(self->process,
					       self->cancellable,
					       vmsup_vm_qmp_reconnected_cb,
					       g_object_ref(self));
	return G_SOURCE_REMOVE;
}

static void
vmsup_vm_schedule_qmp_retry(VmsupVm *self)
{
	if (self->process == NULL || self->qmp_retry_id != 0)
		return;
	self->qmp_retry_s = CLAMP(self->qmp_retry_s * 2, 1, VMSUP_VM_QMP_RETRY_MAX_S);
	self->qmp_retry_id = g_timeout_add_seconds_full(G_PRIORITY_DEFAULT,
							self->qmp_retry_s,
							vmsup_vm_qmp_retry_cb,
							g_object_ref(self),
							g_object_unref);
}

static void
vmsup_vm_adopt_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = g_task_get_source_object(task);
	g_autoptr(JsonNode) status = NULL;

	status = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, NULL);
	if (self->process != NULL && self->state == VMSUP_VM_STATE_STARTING) {
		vmsup_vm_set_state(self, vmsup_vm_state_of_status(status), FALSE);
		vmsup_vm_emit_changed(self);
	}
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_adopted_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = g_task_get_source_object(task);
	VmsupQemuProcess *process = VMSUP_QEMU_PROCESS(source);
	g_autoptr(GError) error = NULL;
	const gchar *name = self->def->name;
	gboolean ok = vmsup_qemu_process_adopt_finish(process, res, &error);

	self->starting = FALSE;
	if (!vmsup_qemu_process_is_running(process)) {
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' is not running any more (%s)",
			     name,
			     error != NULL ? error->message : "exited");
		vmsup_vm_adopt_dead(g_steal_pointer(&task));
		return;
	}
	vmsup_vm_read_runtime_file(self);
	/* whether its guest finished booting was seen by the daemon before: assume it did */
	self->agent_up = TRUE;
	vmsup_vm_setup_running(self);
	/* its cgroup, found again by the VM's name (or made, for a QEMU from before cgroups) */
	vmsup_vm_cgroup_place_async(self->cgroup,
				    vmsup_qemu_process_get_pid(process),
				    self->def,
				    vmsup_vm_adopt_placed_cb,
				    g_object_ref(self));
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     name,
		     "VM '%s' re-adopted (pid %d)",
		     name,
		     (gint)vmsup_qemu_process_get_pid(process));
	if (!ok || self->qmp == NULL) {
		/* still watched: stop and kill reach it; QMP is tried again until it answers */
		g_free(self->last_error);
		self->last_error = g_strdup_printf("QMP is unreachable: %s",
						   error != NULL ? error->message : "not ready");
		g_warning("VM '%s' runs but its %s; trying again", name, self->last_error);
		vmsup_vm_set_state(self, VMSUP_VM_STATE_RUNNING, FALSE);
		vmsup_vm_emit_changed(self);
		vmsup_vm_schedule_qmp_retry(self);
		g_task_return_boolean(task, TRUE);
		return;
	}
	vmsup_qmp_client_execute_async(self->qmp,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_vm_adopt_status_cb,
				       g_steal_pointer(&task));
}

/* the pid a runtime dir's pid file names; 0 when there is none */
static gint64
vmsup_vm_read_pidfile(VmsupVm *self)
{
	g_autofree gchar *path = g_build_filename(self->runtime_dir, VMSUP_QEMU_PIDFILE, NULL);
	g_autofree gchar *contents = NULL;
	guint64 pid = 0;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return 0;
	g_strstrip(contents);
	if (!g_ascii_string_to_unsigned(contents, 10, 1, G_MAXINT32, &pid, NULL))
		return 0;
	return (gint64)pid;
}

void
vmsup_vm_adopt_async(VmsupVm *self,
		     VmsupVmOutcome *outcome,
		     GAsyncReadyCallback callback,
		     gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	VmsupVmAdopt *adopt;

	g_return_if_fail(VMSUP_IS_VM(self));
	adopt = g_new0(VmsupVmAdopt, 1);
	adopt->outcome = outcome;
	task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_adopt_async);
	g_task_set_task_data(task, adopt, (GDestroyNotify)vmsup_vm_adopt_free);
	adopt->recorded_pid = vmsup_vm_read_pidfile(self);
	if (adopt->recorded_pid == 0) {
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     self->def->name,
			     "VM '%s' is not running any more (no pid file)",
			     self->def->name);
		vmsup_vm_adopt_dead(g_steal_pointer(&task));
		return;
	}
	self->process = vmsup_qemu_process_new(self->def->name, self->runtime_dir);
	self->starting = TRUE;
	vmsup_vm_set_state(self, VMSUP_VM_STATE_STARTING, FALSE);
	vmsup_vm_watch_exit(self);
	vmsup_qemu_process_adopt_async(self->process,
				       self->cancellable,
				       vmsup_vm_adopted_cb,
				       g_steal_pointer(&task));
}

void
vmsup_vm_adopt_finish(VmsupVm *self, GAsyncResult *res)
{
	g_return_if_fail(g_task_is_valid(res, self));
	g_task_propagate_boolean(G_TASK(res), NULL);
}

void
vmsup_vm_release_cgroup(VmsupVm *self)
{
	g_return_if_fail(VMSUP_IS_VM(self));
	if (self->process == NULL)
		vmsup_vm_cgroup_release(self->cgroup);
}

/* vm.set of a running VM */

static void
vmsup_vm_limits_applied_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVm *self = g_task_get_source_object(task);
	const VmsupVmDef *def = g_task_get_task_data(task);
	GError *error = NULL;

	if (!vmsup_vm_cgroup_apply_finish(VMSUP_VM_CGROUP(source), res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	if (self->running_def != NULL) {
		self->running_def->cpu_quota_percent = def->cpu_quota_percent;
		self->running_def->memory_max_mib = def->memory_max_mib;
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_apply_limits_async(VmsupVm *self,
			    const VmsupVmDef *def,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	GError *error = NULL;

	g_return_if_fail(VMSUP_IS_VM(self));
	task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_apply_limits_async);
	g_task_set_task_data(task, vmsup_vm_def_copy(def), (GDestroyNotify)vmsup_vm_def_free);
	/* limits kept as they are stay allowed, so other fields can change */
	if ((def->cpu_quota_percent != self->def->cpu_quota_percent ||
	     def->memory_max_mib != self->def->memory_max_mib) &&
	    !vmsup_vm_cgroup_check_limits(self->cgroup, def, &error)) {
		g_task_return_error(task, error);
		return;
	}
	/* not running, or running without its cgroup: the limits apply at the next start */
	if (self->process == NULL || !vmsup_qemu_process_is_running(self->process) ||
	    !vmsup_vm_cgroup_is_placed(self->cgroup) ||
	    (self->running_def != NULL &&
	     self->running_def->cpu_quota_percent == def->cpu_quota_percent &&
	     self->running_def->memory_max_mib == def->memory_max_mib)) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	vmsup_vm_cgroup_apply_async(self->cgroup,
				    vmsup_qemu_process_get_pid(self->process),
				    def,
				    vmsup_vm_limits_applied_cb,
				    g_steal_pointer(&task));
}

gboolean
vmsup_vm_apply_limits_finish(VmsupVm *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

gboolean
vmsup_vm_limits_kept(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), TRUE);
	/* a stopped VM gets them at its next start, which is all a change asks of it */
	if (self->process == NULL || !vmsup_qemu_process_is_running(self->process))
		return TRUE;
	return vmsup_vm_cgroup_is_placed(self->cgroup);
}

/* what vm.get shows */

const gchar *
vmsup_vm_get_name(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), NULL);
	return self->def->name;
}

const VmsupVmDef *
vmsup_vm_get_def(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), NULL);
	return self->def;
}

void
vmsup_vm_set_def(VmsupVm *self, VmsupVmDef *def)
{
	g_return_if_fail(VMSUP_IS_VM(self));
	g_return_if_fail(g_strcmp0(def->name, self->def->name) == 0);
	vmsup_vm_def_free(self->def);
	self->def = def;
	vmsup_vm_emit_changed(self);
}

VmsupVmState
vmsup_vm_get_state(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), VMSUP_VM_STATE_DEFINED);
	return self->state;
}

gdouble
vmsup_vm_get_boot_to_agent(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), -1);
	return self->boot_to_agent_s;
}

const gchar *
vmsup_vm_get_runtime_dir(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), NULL);
	return self->runtime_dir;
}

gboolean
vmsup_vm_has_process(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), FALSE);
	return self->process != NULL;
}

gboolean
vmsup_vm_is_alive(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), FALSE);
	return self->process != NULL && !self->starting &&
	       vmsup_qemu_process_is_running(self->process);
}

VmsupVmHandles *
vmsup_vm_get_handles(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), NULL);
	return self->handles;
}

GStrv
vmsup_vm_get_pending_restart(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), NULL);
	return vmsup_vm_def_pending_restart(self->def, self->running_def);
}

/* whether @fields (NULL: every member) names @member */
static gboolean
vmsup_vm_wants(const gchar *const *fields, const gchar *member)
{
	return fields == NULL || g_strv_contains(fields, member);
}

static void
vmsup_vm_describe_run(VmsupVm *self, JsonObject *obj, const gchar *const *fields)
{
	json_object_set_int_member(obj, "pid", vmsup_qemu_process_get_pid(self->process));
	if (vmsup_vm_wants(fields, "started_at")) {
		g_autofree gchar *started =
		    vmsup_vm_def_format_time(self->started_at / G_USEC_PER_SEC);
		json_object_set_string_member(obj, "started_at", started);
	}
	json_object_set_string_member(obj,
				      "runtime_dir",
				      vmsup_qemu_process_get_runtime_dir(self->process));
}

static void
vmsup_vm_describe_forwards(VmsupVm *self, JsonObject *obj)
{
	g_autoptr(JsonArray) forwards = json_array_new();

	for (guint i = 0; i < self->handles->forwards->len; i++) {
		VmsupQemuForward *fwd =
		    &g_array_index(self->handles->forwards, VmsupQemuForward, i);
		g_autoptr(JsonObject) entry = json_object_new();

		json_object_set_int_member(entry, "guest_port", fwd->guest_port);
		json_object_set_string_member(entry, "host_address", "127.0.0.1");
		json_object_set_int_member(entry, "host_port", fwd->host_port);
		json_array_add_object_element(forwards, g_steal_pointer(&entry));
	}
	json_object_set_array_member(obj, "forwards", g_steal_pointer(&forwards));
}

static void
vmsup_vm_describe_end(VmsupVm *self, JsonObject *obj, const gchar *const *fields)
{
	if (self->exit_status >= 0) {
		if (WIFEXITED(self->exit_status))
			json_object_set_int_member(obj,
						   "exit_status",
						   WEXITSTATUS(self->exit_status));
		else if (WIFSIGNALED(self->exit_status))
			json_object_set_int_member(obj, "exit_signal", WTERMSIG(self->exit_status));
	}
	if (self->exit_reason != NULL)
		json_object_set_string_member(obj, "exit_reason", self->exit_reason);
	if (self->stopped_at > 0 && vmsup_vm_wants(fields, "stopped_at")) {
		g_autofree gchar *stopped =
		    vmsup_vm_def_format_time(self->stopped_at / G_USEC_PER_SEC);
		json_object_set_string_member(obj, "stopped_at", stopped);
	}
}

/*
 * What is built on its own (started_at, forwards, pending_restart, the
 * definition as a whole) is skipped when not asked for; the rest is built
 * and dropped again, which costs less than asking for each member.
 */
JsonObject *
vmsup_vm_describe(VmsupVm *self, const gchar *const *fields, gboolean with_definition)
{
	g_autoptr(JsonObject) obj = NULL;
	gboolean alive;
	g_autoptr(GList) members = NULL;

	g_return_val_if_fail(VMSUP_IS_VM(self), NULL);
	obj = with_definition ? vmsup_vm_def_to_json(self->def) : json_object_new();
	alive = self->process != NULL && vmsup_qemu_process_is_running(self->process);
	json_object_set_string_member(obj, "state", vmsup_vm_state_to_string(self->state));
	json_object_set_string_member(
	    obj,
	    "accel",
	    vmsup_accel_to_string(alive ? self->run_accel : vmsup_vm_accel_get(self->accel, NULL)));
	if (alive)
		vmsup_vm_describe_run(self, obj, fields);
	if (self->handles != NULL && self->handles->forwards != NULL &&
	    vmsup_vm_wants(fields, "forwards"))
		vmsup_vm_describe_forwards(self, obj);
	if (self->running_def != NULL && vmsup_vm_wants(fields, "pending_restart")) {
		g_auto(GStrv) pending_fields = vmsup_vm_get_pending_restart(self);
		g_autoptr(JsonArray) pending = json_array_new();

		for (guint i = 0; pending_fields[i] != NULL; i++)
			json_array_add_string_element(pending, pending_fields[i]);
		if (json_array_get_length(pending) > 0)
			json_object_set_array_member(obj,
						     "pending_restart",
						     g_steal_pointer(&pending));
	}
	if (!alive)
		vmsup_vm_describe_end(self, obj, fields);
	if (self->last_error != NULL)
		json_object_set_string_member(obj, "last_error", self->last_error);
	if (vmsup_vm_wants(fields, "cgroup"))
		json_object_set_object_member(
		    obj,
		    "cgroup",
		    vmsup_vm_cgroup_describe(self->cgroup,
					     alive ? vmsup_qemu_process_get_pid(self->process) : 0,
					     self->def));
	if (fields == NULL)
		return g_steal_pointer(&obj);

	/* in place: for a few members of many, cheaper than copying those into a new object */
	members = json_object_get_members(obj);
	for (GList *l = members; l != NULL; l = l->next) {
		if (!g_strv_contains(fields, l->data))
			json_object_remove_member(obj, l->data);
	}
	return g_steal_pointer(&obj);
}

/* cloud-init and SSH */

void
vmsup_vm_set_state_dir(VmsupVm *self, const gchar *state_dir)
{
	g_return_if_fail(VMSUP_IS_VM(self));
	g_free(self->state_dir);
	self->state_dir = g_strdup(state_dir);
}

gchar *
vmsup_vm_get_guest_dir(VmsupVm *self)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), NULL);
	if (self->state_dir == NULL ||
	    (self->def->image == NULL && !vmsup_vm_def_is_bundled_guest(self->def)))
		return NULL;
	return vmsup_vm_seed_guest_dir(self->state_dir, self->def->name);
}

gint
vmsup_vm_open_console(VmsupVm *self, gboolean history, GError **error)
{
	g_return_val_if_fail(VMSUP_IS_VM(self), -1);
	if (self->state == VMSUP_VM_STATE_STARTING || self->starting) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    _("VM '%s' is starting; ask again in a moment"),
			    self->def->name);
		return -1;
	}
	if ((self->state != VMSUP_VM_STATE_RUNNING && self->state != VMSUP_VM_STATE_PAUSED) ||
	    self->console == NULL || !vmsup_vm_is_alive(self)) {
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("VM '%s' is %s, not running, so it has no live console; start it with "
		      "'vmsup start %s' (its last console log is kept in its runtime directory "
		      "until then)"),
		    self->def->name,
		    vmsup_vm_state_to_string(self->state),
		    self->def->name);
		return -1;
	}
	return vmsup_vm_console_open_viewer(self->console, history, error);
}

JsonObject *
vmsup_vm_get_ssh_info(VmsupVm *self, GError **error)
{
	g_autofree gchar *guest_dir = NULL;
	g_autofree gchar *console = NULL;
	guint16 port;

	g_return_val_if_fail(VMSUP_IS_VM(self), NULL);
	guest_dir = vmsup_vm_get_guest_dir(self);
	if (guest_dir == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("VM '%s' boots neither an image nor the bundled guest, so it has no "
			      "SSH server set up by vmsupd; run commands in it with 'vmsup exec "
			      "%s -- …'"),
			    self->def->name,
			    self->def->name);
		return NULL;
	}
	if (self->state == VMSUP_VM_STATE_STARTING || self->starting) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    _("VM '%s' is starting; ask again in a moment"),
			    self->def->name);
		return NULL;
	}
	port = self->handles != NULL && vmsup_vm_is_alive(self)
		   ? vmsup_vm_ssh_port(self->handles->forwards)
		   : 0;
	if (self->state != VMSUP_VM_STATE_RUNNING || port == 0) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("VM '%s' is %s, not running; start it with 'vmsup start %s'"),
			    self->def->name,
			    vmsup_vm_state_to_string(self->state),
			    self->def->name);
		return NULL;
	}
	console = g_build_filename(self->runtime_dir, VMSUP_QEMU_CONSOLE_LOG, NULL);
	return vmsup_vm_seed_ssh_info(self->state_dir, guest_dir, console, self->def, port, error);
}

/* GObject */

void
vmsup_vm_set_incoming(VmsupVm *self, gint fd)
{
	g_return_if_fail(VMSUP_IS_VM(self));
	if (self->incoming_fd >= 0)
		close(self->incoming_fd);
	self->incoming_fd = fd;
}

void
vmsup_vm_release_process(VmsupVm *self)
{
	g_return_if_fail(VMSUP_IS_VM(self));
	vmsup_vm_drop_runtime(self, FALSE);
}

static void
vmsup_vm_finalize(GObject *object)
{
	VmsupVm *self = VMSUP_VM(object);

	/* handlers hold a ref, so nothing can still be connected here */
	g_assert(self->exited_id == 0 && self->event_id == 0);
	g_clear_object(&self->process);
	g_clear_object(&self->qmp);
	g_clear_pointer(&self->handles, vmsup_vm_handles_unref);
	g_clear_object(&self->console);
	g_clear_pointer(&self->def, vmsup_vm_def_free);
	g_clear_pointer(&self->running_def, vmsup_vm_def_free);
	g_clear_object(&self->store);
	g_clear_object(&self->accel);
	g_clear_object(&self->cgroup);
	g_clear_object(&self->cancellable);
	g_free(self->runtime_dir);
	g_free(self->qemu_binary);
	g_free(self->state_dir);
	g_free(self->shutdown_reason);
	g_free(self->stop_reason);
	g_free(self->exit_reason);
	g_free(self->last_error);
	g_ptr_array_unref(self->exit_waiters);
	if (self->incoming_fd >= 0)
		close(self->incoming_fd);
	G_OBJECT_CLASS(vmsup_vm_parent_class)->finalize(object);
}

static void
vmsup_vm_class_init(VmsupVmClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->finalize = vmsup_vm_finalize;
	signals[SIGNAL_CHANGED] = g_signal_new("changed",
					       G_TYPE_FROM_CLASS(klass),
					       G_SIGNAL_RUN_LAST,
					       0,
					       NULL,
					       NULL,
					       NULL,
					       G_TYPE_NONE,
					       0);
}

static void
vmsup_vm_init(VmsupVm *self)
{
	self->state = VMSUP_VM_STATE_DEFINED;
	self->exit_status = -1;
	self->boot_to_agent_s = -1;
	self->incoming_fd = -1;
	self->exit_waiters = g_ptr_array_new_with_free_func(g_object_unref);
}

VmsupVm *
vmsup_vm_new(VmsupVmDef *def,
	     const gchar *runtime_dir,
	     const gchar *qemu_binary,
	     VmsupVmStore *store,
	     VmsupVmAccel *accel,
	     VmsupVmCgroup *cgroup,
	     GCancellable *cancellable)
{
	VmsupVm *self = g_object_new(VMSUP_TYPE_VM, NULL);

	self->def = def;
	self->runtime_dir = g_strdup(runtime_dir);
	self->qemu_binary = g_strdup(qemu_binary);
	self->store = g_object_ref(store);
	self->accel = g_object_ref(accel);
	self->cgroup = g_object_ref(cgroup);
	self->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
	return self;
}
