/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VmsupStatsService, the timers: the poller that keeps every running VM's
 * sample fresh, and the sweep that stops VMs idle for too long.
 */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include "vmsup-log.h"
#include "vmsup-stats-service-private.h"

/* a stale VM gets this long to power off before QEMU is told to quit */
#define VMSUP_STATS_STOP_TIMEOUT_MS 10000

/* --- the stale sweep ---------------------------------------------------------- */

typedef struct {
	VmsupStatsService *self; /* owned */
	VmsupStatsVm *vm;        /* owned */
	gboolean locked;
} VmsupStatsStop;

static void
vmsup_stats_stop_free(VmsupStatsStop *stop)
{
	if (stop->locked)
		vmsup_vm_hooks_unlock_vm(&stop->self->hooks, stop->vm->name);
	stop->vm->stopping = FALSE;
	vmsup_stats_service_vm_unref(stop->vm);
	g_object_unref(stop->self);
	g_free(stop);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupStatsStop, vmsup_stats_stop_free)

static gboolean
vmsup_stats_vm_is_stale(VmsupStatsService *self, VmsupStatsVm *vm)
{
	return self->auto_stop_after_s > 0 && vm->tracked && vm->auto_stop &&
	       vmsup_stats_service_vm_idle_ms(vm) >= (gint64)self->auto_stop_after_s * 1000;
}

static void
vmsup_stats_stop_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupStatsStop) stop = user_data;
	g_autoptr(GError) error = NULL;

	if (!vmsup_qemu_process_stop_finish(VMSUP_QEMU_PROCESS(source), res, &error)) {
		/* the service is going away */
		if (g_cancellable_is_cancelled(stop->self->cancellable))
			return;
		vmsup_log_vm(G_LOG_LEVEL_WARNING,
			     stop->vm->name,
			     "Stopping stale VM '%s' failed: %s, ignoring",
			     stop->vm->name,
			     error->message);
		return;
	}
	vmsup_stats_service_see_pid(stop->self, stop->vm, 0);
	vmsup_vm_hooks_cleanup_runtime(&stop->self->hooks, stop->vm->name);
	/* the stop_free unlocks */
}

static void
vmsup_stats_stop_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupStatsStop) stop = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	VmsupStatsService *self = stop->self;
	VmsupStatsVm *vm = stop->vm;
	VmsupQemuProcess *process;
	g_autofree gchar *reason = NULL;
	gint64 idle_s;

	if (!vmsup_vm_hooks_lock_vm_finish(res, &error)) {
		if (g_cancellable_is_cancelled(self->cancellable))
			return;
		vmsup_log_vm(G_LOG_LEVEL_WARNING,
			     vm->name,
			     "Cannot lock stale VM '%s' to stop it: %s, ignoring",
			     vm->name,
			     error->message);
		return;
	}
	stop->locked = TRUE;
	/* things may have changed while we waited for the lock */
	if (vmsup_vm_hooks_vm_alive(&self->hooks, vm->name))
		handles = vmsup_vm_hooks_vm_handles(&self->hooks, vm->name);
	if (handles == NULL || !vmsup_stats_service_process_alive(handles))
		return;
	if (vmsup_qemu_process_get_pid(handles->process) != vm->pid ||
	    !vmsup_stats_vm_is_stale(self, vm))
		return;

	idle_s = vmsup_stats_service_vm_idle_ms(vm) / 1000;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     vm->name,
		     "Stopping VM '%s' by the auto-stop policy: idle for %" G_GINT64_FORMAT
		     " s (AutoStopStaleAfter=%u, last activity: %s)",
		     vm->name,
		     idle_s,
		     self->auto_stop_after_s,
		     vm->active_reason);
	/* what the VM's exit_reason says, instead of the guest's own power-off */
	reason = g_strdup_printf("stopped by the auto-stop policy after %" G_GINT64_FORMAT
				 " s without activity",
				 idle_s);
	vmsup_vm_hooks_note_stop(&self->hooks, vm->name, reason);
	process = handles->process;
	vmsup_qemu_process_stop_async(process,
				      /* force= */ FALSE,
				      VMSUP_STATS_STOP_TIMEOUT_MS,
				      self->cancellable,
				      vmsup_stats_stop_done_cb,
				      g_steal_pointer(&stop));
}

/* lock -> note_stop -> graceful stop -> cleanup_runtime -> unlock; re-checked under the lock */
void
vmsup_stats_service_begin_stop(VmsupStatsService *self, VmsupStatsVm *vm)
{
	VmsupStatsStop *stop;

	if (vm->stopping || !vmsup_stats_vm_is_stale(self, vm))
		return;
	vm->stopping = TRUE;
	stop = g_new0(VmsupStatsStop, 1);
	stop->self = g_object_ref(self);
	stop->vm = vmsup_stats_service_vm_ref(vm);
	vmsup_vm_hooks_lock_vm(&self->hooks,
			       vm->name,
			       self->cancellable,
			       vmsup_stats_stop_locked_cb,
			       stop);
}

/* every VM entry, referenced: a timer's walk survives entries going away */
static GPtrArray *
vmsup_stats_service_list_vms(VmsupStatsService *self)
{
	GPtrArray *vms =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_stats_service_vm_unref);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(vms, vmsup_stats_service_vm_ref(value));
	return vms;
}

/* the handles of @vm while its QEMU runs, noting the pid it runs as (0: stopped) */
static VmsupVmHandles *
vmsup_stats_service_running_handles(VmsupStatsService *self, VmsupStatsVm *vm)
{
	g_autoptr(VmsupVmHandles) handles = NULL;

	if (vmsup_vm_hooks_vm_alive(&self->hooks, vm->name))
		handles = vmsup_vm_hooks_vm_handles(&self->hooks, vm->name);
	if (handles == NULL || !vmsup_stats_service_process_alive(handles)) {
		vmsup_stats_service_see_pid(self, vm, 0);
		return NULL;
	}
	vmsup_stats_service_see_pid(self, vm, vmsup_qemu_process_get_pid(handles->process));
	return g_steal_pointer(&handles);
}

static gboolean
vmsup_stats_service_sweep_cb(gpointer user_data)
{
	VmsupStatsService *self = user_data;
	g_autoptr(GPtrArray) vms = vmsup_stats_service_list_vms(self);

	for (guint i = 0; i < vms->len; i++) {
		VmsupStatsVm *vm = g_ptr_array_index(vms, i);
		g_autoptr(VmsupVmHandles) handles = NULL;

		if (!vm->tracked || !vm->auto_stop || vm->stopping)
			continue;
		handles = vmsup_stats_service_running_handles(self, vm);
		if (handles == NULL || !vmsup_stats_vm_is_stale(self, vm))
			continue;
		/* one last look at the guest before deciding */
		vm->sweep_pending = TRUE;
		vmsup_stats_service_refresh(self, vm, handles, NULL);
	}
	return G_SOURCE_CONTINUE;
}

/* --- the poller ---------------------------------------------------------------- */

static gboolean
vmsup_stats_service_poll_cb(gpointer user_data)
{
	VmsupStatsService *self = user_data;
	g_autoptr(GPtrArray) vms = vmsup_stats_service_list_vms(self);

	for (guint i = 0; i < vms->len; i++) {
		VmsupStatsVm *vm = g_ptr_array_index(vms, i);
		g_autoptr(VmsupVmHandles) handles = NULL;

		if (vm->refreshing || vm->stopping)
			continue;
		handles = vmsup_stats_service_running_handles(self, vm);
		if (handles != NULL)
			vmsup_stats_service_refresh(self, vm, handles, NULL);
	}
	return G_SOURCE_CONTINUE;
}

void
vmsup_stats_service_restart_timers(VmsupStatsService *self)
{
	g_clear_handle_id(&self->poll_id, g_source_remove);
	g_clear_handle_id(&self->sweep_id, g_source_remove);
	if (self->poll_interval_s > 0)
		self->poll_id =
		    g_timeout_add_seconds(self->poll_interval_s, vmsup_stats_service_poll_cb, self);
	if (self->auto_stop_after_s > 0) {
		/* often enough that a stale VM stops within a third of the limit of its due time */
		guint period = CLAMP(self->auto_stop_after_s / 3, 1, 30);
		self->sweep_id = g_timeout_add_seconds(period, vmsup_stats_service_sweep_cb, self);
	}
}
