/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a running VM is doing, without owning its lifecycle: stats, health,
 * ping, exec and listening ports through QMP and the guest agent, a poller
 * keeping a per-VM stats cache, and the sweep that stops stale VMs. All it
 * knows of VMService are the hooks it was built with.
 *
 * This file: the GObject, the per-VM entries and what feeds them (tracking,
 * activity), helpers shared by the parts, QMP with a deadline, and the
 * vm.stats, vm.health and vm.ping verbs. The sampling is in
 * vmsup-stats-refresh.c, vm.ports in vmsup-stats-ports.c, vm.exec in
 * vmsup-stats-exec.c, the poller and the stale sweep in vmsup-stats-sweep.c.
 */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include <glib/gi18n.h>
#include <signal.h>
#include <string.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-name.h"
#include "vmsup-stats-service-private.h"

/* the default; a TCG guest on a loaded host can take seconds to fork an answer */
#define VMSUP_STATS_PROBE_TIMEOUT_MS 5000
/* vm.stats answers from the cache when it is younger than this */
#define VMSUP_STATS_CACHE_FRESH_MS 1000

G_DEFINE_FINAL_TYPE(VmsupStatsService, vmsup_stats_service, G_TYPE_OBJECT)

enum { PROP_0, PROP_HOOKS, N_PROPS };
static GParamSpec *props[N_PROPS] = {NULL};

enum { SIGNAL_STATS_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS] = {0};

/* for the refresh, which lives in another file than the signal ids */
void
vmsup_stats_service_emit_stats_changed(VmsupStatsService *self,
				       const gchar *name,
				       JsonObject *stats)
{
	g_signal_emit(self, signals[SIGNAL_STATS_CHANGED], 0, name, stats);
}

/* --- per-VM state -------------------------------------------------------- */

static VmsupStatsVm *
vmsup_stats_vm_new(const gchar *name)
{
	VmsupStatsVm *vm = g_new0(VmsupStatsVm, 1);
	vm->ref_count = 1;
	vm->name = g_strdup(name);
	vm->auto_stop = TRUE;
	vm->net_bytes = -1;
	vm->memory_bytes = -1;
	vm->last_active_mono = g_get_monotonic_time();
	vm->last_active_real = g_get_real_time();
	vm->active_reason = g_strdup("defined");
	vm->waiters = g_ptr_array_new_with_free_func(g_object_unref);
	return vm;
}

VmsupStatsVm *
vmsup_stats_service_vm_ref(VmsupStatsVm *vm)
{
	vm->ref_count++;
	return vm;
}

void
vmsup_stats_service_vm_unref(VmsupStatsVm *vm)
{
	if (--vm->ref_count > 0)
		return;
	vmsup_stats_service_vm_forget_process(vm);
	g_ptr_array_unref(vm->waiters);
	g_free(vm->active_reason);
	g_free(vm->last_active_text);
	g_free(vm->name);
	g_free(vm);
}

void
vmsup_stats_service_vm_mark_active(VmsupStatsVm *vm, const gchar *reason)
{
	vm->last_active_mono = g_get_monotonic_time();
	vm->last_active_real = g_get_real_time();
	g_clear_pointer(&vm->last_active_text, g_free);
	if (g_strcmp0(vm->active_reason, reason) != 0) {
		g_free(vm->active_reason);
		vm->active_reason = g_strdup(reason);
	}
}

gint64
vmsup_stats_service_vm_idle_ms(VmsupStatsVm *vm)
{
	return (g_get_monotonic_time() - vm->last_active_mono) / 1000;
}

/* the VM runs as @pid: a pid not seen before is a fresh start, and old numbers are void */
static void
vmsup_stats_vm_see_pid(VmsupStatsVm *vm, GPid pid)
{
	if (vm->pid == pid)
		return;
	if (pid > 0)
		vmsup_log_vm(G_LOG_LEVEL_DEBUG, vm->name, "VM '%s' runs as pid %d", vm->name, pid);
	vm->pid = pid;
	vmsup_stats_service_vm_forget_process(vm);
	if (pid > 0)
		vmsup_stats_service_vm_mark_active(vm, "started");
}

/* --- small helpers -------------------------------------------------------- */

gchar *
vmsup_stats_service_format_time(gint64 real_us)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(real_us / G_USEC_PER_SEC);
	if (dt == NULL)
		return NULL;
	return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

/* @value >= 0 rounded to @decimals places; no libm needed */
static gdouble
vmsup_stats_round(gdouble value, guint decimals)
{
	gdouble scale = 1;
	for (guint i = 0; i < decimals; i++)
		scale *= 10;
	return (gdouble)(gint64)(value * scale + 0.5) / scale;
}

/* our results are flat: copying each member node is a deep copy */
JsonObject *
vmsup_stats_service_copy_flat_object(JsonObject *src)
{
	JsonObject *dst = json_object_new();
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;

	json_object_iter_init(&iter, src);
	while (json_object_iter_next(&iter, &member, &node))
		json_object_set_member(dst, member, json_node_copy(node));
	return dst;
}

void
vmsup_stats_service_set_int_or_null(JsonObject *obj, const gchar *member, gint64 value)
{
	if (value < 0)
		json_object_set_null_member(obj, member);
	else
		json_object_set_int_member(obj, member, value);
}

void
vmsup_stats_service_set_double_or_null(JsonObject *obj, const gchar *member, gdouble value)
{
	if (value < 0)
		json_object_set_null_member(obj, member);
	else
		json_object_set_double_member(obj, member, vmsup_stats_round(value, 1));
}

gboolean
vmsup_stats_service_error_is_timeout(const GError *error)
{
	return g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT) ||
	       g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

/* an agent failure as users should read it, in VMSUP_ERROR */
GError *
vmsup_stats_service_agent_error(const gchar *name, const GError *error)
{
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_CANCELLED, error->message);
	if (vmsup_stats_service_error_is_timeout(error))
		return g_error_new(
		    VMSUP_ERROR,
		    VMSUP_ERROR_TIMEOUT,
		    /* TRANSLATORS: %s is a VM name, then an error message */
		    _("The guest agent of VM '%s' did not answer (%s); the guest may "
		      "still be booting or qemu-ga is not running in it: check with "
		      "'vmsup health %s'"),
		    name,
		    error->message,
		    name);
	if (vmsup_error_is_wire(error))
		return g_error_copy(error);
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   _("The guest agent of VM '%s' failed: %s; check with 'vmsup health %s'"),
			   name,
			   error->message,
			   name);
}

GError *
vmsup_stats_service_not_running_error(const gchar *name)
{
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   /* TRANSLATORS: both %s are the VM name */
			   _("VM '%s' is not running; start it with 'vmsup start %s'"),
			   name,
			   name);
}

GError *
vmsup_stats_service_no_agent_error(const gchar *name)
{
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   _("VM '%s' has no guest agent channel; recreate it with the bundled "
			     "guest or a guest running qemu-ga"),
			   name);
}

gboolean
vmsup_stats_service_process_alive(VmsupVmHandles *handles)
{
	GPid pid = vmsup_qemu_process_get_pid(handles->process);
	return pid > 0 && vmsup_qemu_process_is_running(handles->process) && kill(pid, 0) == 0;
}

/* --- QMP with a deadline -------------------------------------------------- */

/* vmsup_qmp_client_execute_async() bounded by VMSUP_STATS_QMP_TIMEOUT_MS, not the
 * client's longer default: a QEMU that does not answer must not hold a stats request */
void
vmsup_stats_service_qmp_execute_async(VmsupVmHandles *handles,
				      const gchar *command,
				      JsonObject *arguments,
				      GCancellable *cancellable,
				      GAsyncReadyCallback callback,
				      gpointer user_data)
{
	VmsupQmpClient *qmp = vmsup_qemu_process_get_qmp(handles->process);

	if (qmp == NULL || !vmsup_qmp_client_is_ready(qmp)) {
		g_task_report_new_error(NULL,
					callback,
					user_data,
					vmsup_stats_service_qmp_execute_async,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("QMP of VM '%s' is not connected"),
					handles->name);
		return;
	}
	vmsup_qmp_client_execute_with_timeout_async(qmp,
						    command,
						    arguments,
						    VMSUP_STATS_QMP_TIMEOUT_MS,
						    cancellable,
						    callback,
						    user_data);
}

JsonNode *
vmsup_stats_service_qmp_execute_finish(GAsyncResult *res, GError **error)
{
	VmsupQmpClient *qmp = g_task_get_source_object(G_TASK(res));
	g_autoptr(GError) local = NULL;
	JsonNode *node;

	if (qmp == NULL) /* reported before anything was sent */
		return g_task_propagate_pointer(G_TASK(res), error);
	node = vmsup_qmp_client_execute_finish(qmp, res, &local);
	if (node != NULL)
		return node;
	if (g_error_matches(local, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_TIMEOUT,
			    /* TRANSLATORS: a VM name, then an error message */
			    _("QEMU of VM '%s' is not answering: %s"),
			    vmsup_qmp_client_get_label(qmp),
			    local->message);
		return NULL;
	}
	g_propagate_error(error, g_steal_pointer(&local));
	return NULL;
}

/* --- resolving a request to a VM ------------------------------------------ */

static VmsupStatsVm *
vmsup_stats_service_lookup_vm(VmsupStatsService *self, const gchar *name, gboolean create)
{
	VmsupStatsVm *vm = g_hash_table_lookup(self->vms, name);
	if (vm == NULL && create) {
		vm = vmsup_stats_vm_new(name);
		g_hash_table_insert(self->vms, vm->name, vm);
	}
	return vm;
}

static gboolean
vmsup_stats_reserved_port_is_of(gpointer key, gpointer value, gpointer user_data)
{
	return g_strcmp0(value, user_data) == 0;
}

/* a new pid (or none) also ends the forwards of the old QEMU: their ports are free again */
void
vmsup_stats_service_see_pid(VmsupStatsService *self, VmsupStatsVm *vm, GPid pid)
{
	if (vm->pid == pid)
		return;
	g_hash_table_foreach_remove(self->reserved_ports,
				    vmsup_stats_reserved_port_is_of,
				    vm->name);
	vmsup_stats_vm_see_pid(vm, pid);
}

/*
 * The running VM @params names, its entry and handles; a VM that is not
 * running is an error unless @out_not_running is given, which is then set.
 */
static gboolean
vmsup_stats_service_resolve_vm(VmsupStatsService *self,
			       JsonObject *params,
			       const gchar **out_name,
			       VmsupStatsVm **out_vm,
			       VmsupVmHandles **out_handles,
			       gboolean *out_not_running,
			       GError **error)
{
	const gchar *name = vmsup_json_object_get_string(params, "name", NULL);
	g_autoptr(VmsupVmHandles) handles = NULL;
	VmsupStatsVm *vm;

	if (name == NULL) {
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("Parameter 'name' is required: the name of a VM"));
		return FALSE;
	}
	if (!vmsup_name_validate(name, "VM", error))
		return FALSE;
	*out_name = name;

	if (vmsup_vm_hooks_vm_alive(&self->hooks, name))
		handles = vmsup_vm_hooks_vm_handles(&self->hooks, name);
	if (handles == NULL || !vmsup_stats_service_process_alive(handles)) {
		vm = vmsup_stats_service_lookup_vm(self, name, FALSE);
		if (vm == NULL || !vm->tracked) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_NOT_FOUND,
				    /* TRANSLATORS: %s is a VM name */
				    _("No running VM named '%s'; see 'vmsup list' for the VMs "
				      "and their states"),
				    name);
			return FALSE;
		}
		if (out_not_running == NULL) {
			g_propagate_error(error, vmsup_stats_service_not_running_error(name));
			return FALSE;
		}
		*out_not_running = TRUE;
		*out_vm = vmsup_stats_service_vm_ref(vm);
		*out_handles = NULL;
		return TRUE;
	}

	/* a running VM the wiring has not told us about yet still gets an entry */
	vm = vmsup_stats_service_lookup_vm(self, name, TRUE);
	vmsup_stats_service_see_pid(self, vm, vmsup_qemu_process_get_pid(handles->process));
	if (out_not_running != NULL)
		*out_not_running = FALSE;
	*out_vm = vmsup_stats_service_vm_ref(vm);
	*out_handles = g_steal_pointer(&handles);
	return TRUE;
}

/*
 * vmsup_stats_service_resolve_vm() for the request @task: FALSE once the task
 * has returned the error. With @need_agent a running VM without a guest
 * agent is an error too.
 */
gboolean
vmsup_stats_service_resolve(VmsupStatsService *self,
			    GTask *task,
			    JsonObject *params,
			    gboolean need_agent,
			    const gchar **out_name,
			    VmsupStatsVm **out_vm,
			    VmsupVmHandles **out_handles,
			    gboolean *out_not_running)
{
	GError *error = NULL;

	if (!vmsup_stats_service_resolve_vm(self,
					    params,
					    out_name,
					    out_vm,
					    out_handles,
					    out_not_running,
					    &error)) {
		g_task_return_error(task, error);
		return FALSE;
	}
	if (need_agent && *out_handles != NULL && (*out_handles)->qga == NULL) {
		g_task_return_error(task, vmsup_stats_service_no_agent_error(*out_name));
		return FALSE;
	}
	return TRUE;
}
/* --- vm.stats -------------------------------------------------------------- */

/*
 * How old a cached sample vm.stats may answer with: the usual second, or,
 * while a refresh is in flight (the poller's, mostly), up to one poll
 * interval, the age the poller keeps every sample under anyway.
 */
static gint64
vmsup_stats_service_cache_fresh_us(VmsupStatsService *self, gboolean refreshing)
{
	gint64 fresh_ms = VMSUP_STATS_CACHE_FRESH_MS;

	if (refreshing && self->poll_interval_s > 0)
		fresh_ms = MAX(fresh_ms, (gint64)self->poll_interval_s * 1000);
	return fresh_ms * 1000;
}

void
vmsup_stats_service_stats_async(VmsupStatsService *self,
				JsonObject *params,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupStatsVm) vm = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	const gchar *name = NULL;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_stats_service_stats_async);
	if (!vmsup_stats_service_resolve(self, task, params, FALSE, &name, &vm, &handles, NULL))
		return;
	if (vm->cache != NULL && g_get_monotonic_time() - vm->cache_mono <
				     vmsup_stats_service_cache_fresh_us(self, vm->refreshing)) {
		g_task_return_pointer(task,
				      vmsup_stats_service_copy_flat_object(vm->cache),
				      (GDestroyNotify)json_object_unref);
		return;
	}
	vmsup_stats_service_refresh(self, vm, handles, task);
}

JsonObject *
vmsup_stats_service_stats_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* --- vm.health ------------------------------------------------------------- */

typedef struct {
	gchar *name;
	guint pending;
	gboolean process;
	GPid pid;
	gboolean qmp;
	gchar *qmp_detail;
	gint64 qmp_started;
	gdouble qmp_rtt_ms;
	gboolean agent;
	gchar *agent_detail;
	gint64 agent_started;
	gdouble agent_rtt_ms;
} VmsupStatsHealth;

static void
vmsup_stats_health_free(VmsupStatsHealth *health)
{
	g_free(health->name);
	g_free(health->qmp_detail);
	g_free(health->agent_detail);
	g_free(health);
}

static void
vmsup_stats_health_complete(GTask *task)
{
	VmsupStatsHealth *health = g_task_get_task_data(task);
	JsonObject *result = json_object_new();
	g_autoptr(GString) detail = g_string_new(NULL);
	const gchar *status;

	if (!health->process)
		status = "down";
	else if (!health->qmp || !health->agent)
		status = "degraded";
	else
		status = "ok";
	json_object_set_string_member(result, "status", status);
	json_object_set_boolean_member(result, "process", health->process);
	json_object_set_boolean_member(result, "qmp", health->qmp);
	json_object_set_boolean_member(result, "agent", health->agent);
	if (health->agent)
		json_object_set_double_member(result,
					      "agent_rtt_ms",
					      vmsup_stats_round(health->agent_rtt_ms, 2));

	if (!health->process) {
		g_string_append_printf(detail,
				       _("VM '%s' is not running; start it with 'vmsup start %s'"),
				       health->name,
				       health->name);
	} else {
		g_string_append_printf(detail, _("process %d alive"), (gint)health->pid);
		g_string_append(detail, "; ");
		if (health->qmp)
			g_string_append_printf(detail,
					       _("QMP answered in %.1f ms"),
					       health->qmp_rtt_ms);
		else
			g_string_append_printf(detail, _("QMP failed: %s"), health->qmp_detail);
		g_string_append(detail, "; ");
		if (health->agent)
			g_string_append_printf(detail,
					       _("guest agent answered in %.1f ms"),
					       health->agent_rtt_ms);
		else
			g_string_append_printf(detail,
					       _("guest agent failed: %s"),
					       health->agent_detail);
	}
	json_object_set_string_member(result, "detail", detail->str);
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

static void
vmsup_stats_health_unref_pending(GTask *task)
{
	VmsupStatsHealth *health = g_task_get_task_data(task);
	if (--health->pending == 0)
		vmsup_stats_health_complete(task);
}

static void
vmsup_stats_health_qmp_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsHealth *health = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_service_qmp_execute_finish(res, &error);

	health->qmp_rtt_ms = (gdouble)(g_get_monotonic_time() - health->qmp_started) / 1000.0;
	if (node != NULL) {
		health->qmp = TRUE;
	} else {
		health->qmp_detail = g_strdup(error->message);
	}
	vmsup_stats_health_unref_pending(task);
}

static void
vmsup_stats_health_agent_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsHealth *health = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node =
	    vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);

	health->agent_rtt_ms = (gdouble)(g_get_monotonic_time() - health->agent_started) / 1000.0;
	if (node != NULL)
		health->agent = TRUE;
	else
		health->agent_detail = g_strdup(error->message);
	vmsup_stats_health_unref_pending(task);
}

void
vmsup_stats_service_health_async(VmsupStatsService *self,
				 JsonObject *params,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupStatsVm) vm = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	VmsupStatsHealth *health;
	const gchar *name = NULL;
	gboolean not_running = FALSE;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_stats_service_health_async);
	if (!vmsup_stats_service_resolve(self,
					 task,
					 params,
					 FALSE,
					 &name,
					 &vm,
					 &handles,
					 &not_running))
		return;
	health = g_new0(VmsupStatsHealth, 1);
	health->name = g_strdup(name);
	g_task_set_task_data(task, health, (GDestroyNotify)vmsup_stats_health_free);
	/* one for this function */
	health->pending = 1;
	if (not_running) {
		vmsup_stats_health_unref_pending(task);
		return;
	}

	health->process = TRUE;
	health->pid = vmsup_qemu_process_get_pid(handles->process);
	health->pending++;
	health->qmp_started = g_get_monotonic_time();
	vmsup_stats_service_qmp_execute_async(handles,
					      "query-status",
					      NULL,
					      cancellable,
					      vmsup_stats_health_qmp_cb,
					      g_object_ref(task));
	if (handles->qga != NULL) {
		health->pending++;
		health->agent_started = g_get_monotonic_time();
		vmsup_qga_client_execute_async(handles->qga,
					       "guest-ping",
					       NULL,
					       VMSUP_STATS_AGENT_TIMEOUT_MS,
					       cancellable,
					       vmsup_stats_health_agent_cb,
					       g_object_ref(task));
	} else {
		health->agent_detail = g_strdup(_("the VM has no guest agent channel"));
	}
	vmsup_stats_health_unref_pending(task);
}

JsonObject *
vmsup_stats_service_health_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* --- vm.ping ---------------------------------------------------------------- */

typedef struct {
	gchar *name;
	gint64 started;
} VmsupStatsPing;

static void
vmsup_stats_ping_free(VmsupStatsPing *ping)
{
	g_free(ping->name);
	g_free(ping);
}

static void
vmsup_stats_ping_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsPing *ping = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node =
	    vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);
	gdouble rtt_ms = (gdouble)(g_get_monotonic_time() - ping->started) / 1000.0;
	JsonObject *result;

	if (node == NULL) {
		g_task_return_error(task, vmsup_stats_service_agent_error(ping->name, error));
		return;
	}
	result = json_object_new();
	json_object_set_double_member(result, "rtt_ms", vmsup_stats_round(rtt_ms, 2));
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

void
vmsup_stats_service_ping_async(VmsupStatsService *self,
			       JsonObject *params,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupStatsVm) vm = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	VmsupStatsPing *ping;
	const gchar *name = NULL;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_stats_service_ping_async);
	if (!vmsup_stats_service_resolve(self, task, params, TRUE, &name, &vm, &handles, NULL))
		return;
	ping = g_new0(VmsupStatsPing, 1);
	ping->name = g_strdup(name);
	ping->started = g_get_monotonic_time();
	g_task_set_task_data(task, ping, (GDestroyNotify)vmsup_stats_ping_free);
	vmsup_qga_client_execute_async(handles->qga,
				       "guest-ping",
				       NULL,
				       VMSUP_STATS_AGENT_TIMEOUT_MS,
				       cancellable,
				       vmsup_stats_ping_cb,
				       g_steal_pointer(&task));
}

JsonObject *
vmsup_stats_service_ping_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}
/* --- public ---------------------------------------------------------------------- */

const VmsupVmHooks *
vmsup_stats_service_get_hooks(VmsupStatsService *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SERVICE(self), NULL);
	return &self->hooks;
}

void
vmsup_stats_service_set_poll_interval(VmsupStatsService *self, guint seconds)
{
	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	if (self->poll_interval_s == seconds)
		return;
	self->poll_interval_s = seconds;
	vmsup_stats_service_restart_timers(self);
}

void
vmsup_stats_service_set_auto_stop_after(VmsupStatsService *self, guint seconds)
{
	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	if (self->auto_stop_after_s == seconds)
		return;
	self->auto_stop_after_s = seconds;
	vmsup_stats_service_restart_timers(self);
}

void
vmsup_stats_service_set_probe_timeout(VmsupStatsService *self, guint timeout_ms)
{
	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	self->probe_timeout_ms = timeout_ms > 0 ? timeout_ms : VMSUP_STATS_PROBE_TIMEOUT_MS;
}

void
vmsup_stats_service_track_vm(VmsupStatsService *self, const gchar *name, gboolean auto_stop)
{
	VmsupStatsVm *vm;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(name != NULL);

	vm = vmsup_stats_service_lookup_vm(self, name, TRUE);
	vm->tracked = TRUE;
	vm->auto_stop = auto_stop;
}

void
vmsup_stats_service_untrack_vm(VmsupStatsService *self, const gchar *name)
{
	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(name != NULL);

	g_hash_table_foreach_remove(self->reserved_ports,
				    vmsup_stats_reserved_port_is_of,
				    (gpointer)name);
	g_hash_table_remove(self->vms, name);
}

void
vmsup_stats_service_note_activity(VmsupStatsService *self, const gchar *name, const gchar *reason)
{
	VmsupStatsVm *vm;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	if (name == NULL)
		return;
	/* requests naming no VM we know of leave nothing behind */
	vm = vmsup_stats_service_lookup_vm(self, name, FALSE);
	if (vm == NULL && vmsup_vm_hooks_vm_alive(&self->hooks, name))
		vm = vmsup_stats_service_lookup_vm(self, name, TRUE);
	if (vm == NULL)
		return;
	vmsup_stats_service_vm_mark_active(vm, reason != NULL ? reason : "request");
}

JsonObject *
vmsup_stats_service_get_cached_stats(VmsupStatsService *self, const gchar *name)
{
	VmsupStatsVm *vm;

	g_return_val_if_fail(VMSUP_IS_STATS_SERVICE(self), NULL);
	g_return_val_if_fail(name != NULL, NULL);

	vm = vmsup_stats_service_lookup_vm(self, name, FALSE);
	if (vm == NULL || vm->cache == NULL)
		return NULL;
	return vmsup_stats_service_copy_flat_object(vm->cache);
}

JsonObject *
vmsup_stats_service_describe_activity(VmsupStatsService *self, const gchar *name)
{
	VmsupStatsVm *vm;
	JsonObject *obj;
	gint64 idle_s;
	gint64 active_window_s;

	g_return_val_if_fail(VMSUP_IS_STATS_SERVICE(self), NULL);
	g_return_val_if_fail(name != NULL, NULL);

	vm = vmsup_stats_service_lookup_vm(self, name, FALSE);
	if (vm == NULL)
		return NULL;
	obj = json_object_new();
	idle_s = vmsup_stats_service_vm_idle_ms(vm) / 1000;
	/* vm.list asks for every VM on each call; the time changes far less often */
	if (vm->last_active_text == NULL)
		vm->last_active_text = vmsup_stats_service_format_time(vm->last_active_real);
	json_object_set_string_member(obj, "last_active", vm->last_active_text);
	json_object_set_int_member(obj, "idle_s", idle_s);
	/* what made it active last; beyond a couple of polls, also why it counts as idle */
	json_object_set_string_member(obj, "active_reason", vm->active_reason);
	active_window_s = MAX(10, 2 * (gint64)self->poll_interval_s);
	if (idle_s >= active_window_s) {
		g_autofree gchar *reason =
		    g_strdup_printf(_("no client request, guest CPU below %.0f %% and no guest "
				      "network traffic since the last '%s'"),
				    VMSUP_STATS_ACTIVE_CPU_PERCENT,
				    vm->active_reason);
		json_object_set_string_member(obj, "idle_reason", reason);
	}
	if (self->auto_stop_after_s > 0 && vm->auto_stop && vm->pid > 0)
		json_object_set_int_member(obj,
					   "auto_stop_in_s",
					   MAX(0, (gint64)self->auto_stop_after_s - idle_s));
	return obj;
}

/* --- GObject -------------------------------------------------------------------- */

static void
vmsup_stats_service_set_property(GObject *object,
				 guint prop_id,
				 const GValue *value,
				 GParamSpec *pspec)
{
	VmsupStatsService *self = VMSUP_STATS_SERVICE(object);
	const VmsupVmHooks *hooks;

	switch (prop_id) {
	case PROP_HOOKS:
		hooks = g_value_get_pointer(value);
		if (hooks != NULL)
			vmsup_vm_hooks_copy(&self->hooks, hooks);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_stats_service_dispose(GObject *object)
{
	VmsupStatsService *self = VMSUP_STATS_SERVICE(object);

	g_cancellable_cancel(self->cancellable);
	g_clear_handle_id(&self->poll_id, g_source_remove);
	g_clear_handle_id(&self->sweep_id, g_source_remove);
	G_OBJECT_CLASS(vmsup_stats_service_parent_class)->dispose(object);
}

static void
vmsup_stats_service_finalize(GObject *object)
{
	VmsupStatsService *self = VMSUP_STATS_SERVICE(object);

	vmsup_vm_hooks_clear(&self->hooks);
	g_hash_table_unref(self->vms);
	g_hash_table_unref(self->reserved_ports);
	g_object_unref(self->cancellable);
	G_OBJECT_CLASS(vmsup_stats_service_parent_class)->finalize(object);
}

static void
vmsup_stats_service_class_init(VmsupStatsServiceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->set_property = vmsup_stats_service_set_property;
	object_class->dispose = vmsup_stats_service_dispose;
	object_class->finalize = vmsup_stats_service_finalize;

	/* a VmsupVmHooks *: its closures are ref'd and sunk, the struct is not kept */
	props[PROP_HOOKS] = g_param_spec_pointer("hooks",
						 NULL,
						 NULL,
						 G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY |
						     G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);

	signals[SIGNAL_STATS_CHANGED] = g_signal_new("stats-changed",
						     G_TYPE_FROM_CLASS(klass),
						     G_SIGNAL_RUN_LAST,
						     0,
						     NULL,
						     NULL,
						     NULL,
						     G_TYPE_NONE,
						     2,
						     G_TYPE_STRING,
						     JSON_TYPE_OBJECT);
}

static void
vmsup_stats_service_init(VmsupStatsService *self)
{
	self->vms = g_hash_table_new_full(g_str_hash,
					  g_str_equal,
					  NULL,
					  (GDestroyNotify)vmsup_stats_service_vm_unref);
	self->reserved_ports = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	self->cancellable = g_cancellable_new();
	self->probe_timeout_ms = VMSUP_STATS_PROBE_TIMEOUT_MS;
}

VmsupStatsService *
vmsup_stats_service_new(const VmsupVmHooks *hooks)
{
	g_return_val_if_fail(hooks != NULL, NULL);
	return g_object_new(VMSUP_TYPE_STATS_SERVICE, "hooks", hooks, NULL);
}
