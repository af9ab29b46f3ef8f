/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a running VM is doing, without owning its lifecycle: stats, health,
 * ping, exec and listening ports through QMP and the guest agent, a poller
 * keeping every running VM's sample fresh, and the sweep that stops stale
 * VMs. All it knows of VMService are the hooks it was built with.
 *
 * Each VM has a VmsupStatsSampler (vmsup-stats-sampler.c), which samples
 * it and notes its activity; vm.ports is a VmsupPortForwarder's
 * (vmsup-port-forwarder.c), vm.health and vm.ping are vmsup-health-check.c's.
 * This file holds the table of samplers, the verbs, the poller and the sweep.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-health-check.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-name.h"
#include "vmsup-port-forwarder.h"
#include "vmsup-stats-errors.h"
#include "vmsup-stats-json.h"
#include "vmsup-stats-qmp.h"
#include "vmsup-stats-sampler.h"
#include "vmsup-stats-service.h"

/* vm.stats answers from the cache when it is younger than this */
#define VMSUP_STATS_CACHE_FRESH_MS 1000
/* a stale VM gets this long to power off before QEMU is told to quit */
#define VMSUP_STATS_STOP_TIMEOUT_MS 10000

struct _VmsupStatsService {
	GObject parent_instance;
	VmsupVmHooks hooks;            /* owned refs on the closures */
	GHashTable *samplers;          /* name -> VmsupStatsSampler (owned) */
	GHashTable *stopping;          /* names of the VMs the sweep is stopping */
	VmsupPortForwarder *forwarder; /* owned */
	guint poll_interval_s;
	guint auto_stop_after_s;
	guint poll_id;
	gdouble last_poll_s; /* how long the last poll took to sample every VM, -1: none yet */
	guint sweep_id;
	GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE(VmsupStatsService, vmsup_stats_service, G_TYPE_OBJECT)

enum { PROP_0, PROP_HOOKS, N_PROPS };
static GParamSpec *props[N_PROPS] = {NULL};

enum { SIGNAL_STATS_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS] = {0};

/* --- the samplers ---------------------------------------------------------- */

static void
vmsup_stats_service_sampled_cb(VmsupStatsSampler *sampler, JsonObject *stats, gpointer user_data)
{
	VmsupStatsService *self = VMSUP_STATS_SERVICE(user_data);

	g_signal_emit(self,
		      signals[SIGNAL_STATS_CHANGED],
		      0,
		      vmsup_stats_sampler_get_name(sampler),
		      stats);
}

static VmsupStatsSampler *
vmsup_stats_service_lookup(VmsupStatsService *self, const gchar *name, gboolean create)
{
	VmsupStatsSampler *sampler = g_hash_table_lookup(self->samplers, name);

	if (sampler == NULL && create) {
		sampler = vmsup_stats_sampler_new(name);
		/* a refresh in flight may outlive both the table entry and the service */
		g_signal_connect_object(sampler,
					"sampled",
					G_CALLBACK(vmsup_stats_service_sampled_cb),
					self,
					0);
		g_hash_table_insert(self->samplers, g_strdup(name), sampler);
	}
	return sampler;
}

/* a new pid (or none) also ends the forwards of the old QEMU: their ports are free again */
static void
vmsup_stats_service_see_pid(VmsupStatsService *self, VmsupStatsSampler *sampler, GPid pid)
{
	if (vmsup_stats_sampler_see_pid(sampler, pid))
		vmsup_port_forwarder_release(self->forwarder,
					     vmsup_stats_sampler_get_name(sampler));
}

/* the handles of @sampler's VM while its QEMU runs, noting the pid it runs as (0: stopped) */
static VmsupVmHandles *
vmsup_stats_service_running_handles(VmsupStatsService *self, VmsupStatsSampler *sampler)
{
	const gchar *name = vmsup_stats_sampler_get_name(sampler);
	g_autoptr(VmsupVmHandles) handles = NULL;

	if (vmsup_vm_hooks_vm_alive(&self->hooks, name))
		handles = vmsup_vm_hooks_vm_handles(&self->hooks, name);
	if (handles == NULL || !vmsup_stats_qmp_process_alive(handles)) {
		vmsup_stats_service_see_pid(self, sampler, 0);
		return NULL;
	}
	vmsup_stats_service_see_pid(self, sampler, vmsup_qemu_process_get_pid(handles->process));
	return g_steal_pointer(&handles);
}

/* every sampler, referenced: a timer's walk survives entries going away */
static GPtrArray *
vmsup_stats_service_list_samplers(VmsupStatsService *self)
{
	GPtrArray *samplers = g_ptr_array_new_with_free_func(g_object_unref);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->samplers);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(samplers, g_object_ref(value));
	return samplers;
}

/* --- resolving a request to a VM ------------------------------------------ */

/* what a verb needs of the VM its request names */
typedef enum {
	VMSUP_STATS_NEED_RUNNING = 0,
	VMSUP_STATS_NEED_AGENT = 1 << 0,     /* a running VM without a guest agent is an error */
	VMSUP_STATS_MAY_BE_STOPPED = 1 << 1, /* a known VM that does not run is no error */
} VmsupStatsNeeds;

/* the VM of a request: @handles NULL when it does not run */
typedef struct {
	const gchar *name; /* borrowed from the request */
	VmsupStatsSampler *sampler;
	VmsupVmHandles *handles;
} VmsupStatsTarget;

static void
vmsup_stats_target_clear(VmsupStatsTarget *target)
{
	g_clear_object(&target->sampler);
	g_clear_pointer(&target->handles, vmsup_vm_handles_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmsupStatsTarget, vmsup_stats_target_clear)

/* the VM @params names, as @needs says it must be */
static gboolean
vmsup_stats_service_resolve(VmsupStatsService *self,
			    JsonObject *params,
			    VmsupStatsNeeds needs,
			    VmsupStatsTarget *target,
			    GError **error)
{
	const gchar *name = vmsup_json_object_get_string(params, "name", NULL);
	g_autoptr(VmsupVmHandles) handles = NULL;
	VmsupStatsSampler *sampler;

	if (name == NULL) {
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("Parameter 'name' is required: the name of a VM"));
		return FALSE;
	}
	if (!vmsup_name_validate(name, "VM", error))
		return FALSE;
	target->name = name;

	if (vmsup_vm_hooks_vm_alive(&self->hooks, name))
		handles = vmsup_vm_hooks_vm_handles(&self->hooks, name);
	if (handles == NULL || !vmsup_stats_qmp_process_alive(handles)) {
		sampler = vmsup_stats_service_lookup(self, name, FALSE);
		if (sampler == NULL || !vmsup_stats_sampler_get_tracked(sampler)) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_NOT_FOUND,
				    /* TRANSLATORS: %s is a VM name */
				    _("No running VM named '%s'; see 'vmsup list' for the VMs "
				      "and their states"),
				    name);
			return FALSE;
		}
		if (!(needs & VMSUP_STATS_MAY_BE_STOPPED)) {
			g_propagate_error(error, vmsup_stats_error_not_running(name));
			return FALSE;
		}
		target->sampler = g_object_ref(sampler);
		return TRUE;
	}

	/* a running VM the wiring has not told us about yet still gets a sampler */
	sampler = vmsup_stats_service_lookup(self, name, TRUE);
	vmsup_stats_service_see_pid(self, sampler, vmsup_qemu_process_get_pid(handles->process));
	if ((needs & VMSUP_STATS_NEED_AGENT) && handles->qga == NULL) {
		g_propagate_error(error, vmsup_stats_error_no_agent(name));
		return FALSE;
	}
	target->sampler = g_object_ref(sampler);
	target->handles = g_steal_pointer(&handles);
	return TRUE;
}

typedef JsonObject *(*VmsupStatsFinishFunc)(GAsyncResult *res, GError **error);

/*
 * A verb's task, its VM resolved into @target, or NULL once the error was
 * returned. A verb handing its work on passes the @finish of that work: the
 * task's data, for vmsup_stats_service_return_cb().
 */
static GTask *
vmsup_stats_service_begin(VmsupStatsService *self,
			  JsonObject *params,
			  VmsupStatsNeeds needs,
			  gpointer source_tag,
			  VmsupStatsFinishFunc finish,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data,
			  VmsupStatsTarget *target)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	GError *error = NULL;

	g_task_set_source_tag(task, source_tag);
	if (finish != NULL)
		g_task_set_task_data(task, (gpointer)finish, NULL);
	if (!vmsup_stats_service_resolve(self, params, needs, target, &error)) {
		g_task_return_error(task, error);
		return NULL;
	}
	return g_steal_pointer(&task);
}

/* the answer of the work a verb handed on, through the finish in the task's data */
static void
vmsup_stats_service_return_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsFinishFunc finish = (VmsupStatsFinishFunc)g_task_get_task_data(task);
	GError *error = NULL;
	JsonObject *result = finish(res, &error);

	if (result == NULL)
		g_task_return_error(task, error);
	else
		g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

/* every verb's finish */
static JsonObject *
vmsup_stats_service_propagate(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

static JsonObject *
vmsup_stats_service_finish_refresh(GAsyncResult *res, GError **error)
{
	GObject *sampler = g_task_get_source_object(G_TASK(res));
	return vmsup_stats_sampler_refresh_finish(VMSUP_STATS_SAMPLER(sampler), res, error);
}

static JsonObject *
vmsup_stats_service_finish_ports(GAsyncResult *res, GError **error)
{
	GObject *forwarder = g_task_get_source_object(G_TASK(res));
	return vmsup_port_forwarder_list_finish(VMSUP_PORT_FORWARDER(forwarder), res, error);
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
				const VmsupCaller *caller,
				JsonObject *params,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data)
{
	g_auto(VmsupStatsTarget) target = {NULL};
	g_autoptr(GTask) task = NULL;
	JsonObject *cached;
	gint64 age_us = 0;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = vmsup_stats_service_begin(self,
					 params,
					 VMSUP_STATS_NEED_RUNNING,
					 vmsup_stats_service_stats_async,
					 vmsup_stats_service_finish_refresh,
					 cancellable,
					 callback,
					 user_data,
					 &target);
	if (task == NULL)
		return;
	cached = vmsup_stats_sampler_get_cached(target.sampler, &age_us);
	if (cached != NULL && age_us < vmsup_stats_service_cache_fresh_us(
					   self,
					   vmsup_stats_sampler_is_refreshing(target.sampler))) {
		g_task_return_pointer(task,
				      vmsup_stats_json_copy_flat(cached),
				      (GDestroyNotify)json_object_unref);
		return;
	}
	vmsup_stats_sampler_refresh_async(target.sampler,
					  target.handles,
					  self->cancellable,
					  vmsup_stats_service_return_cb,
					  g_steal_pointer(&task));
}

JsonObject *
vmsup_stats_service_stats_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	return vmsup_stats_service_propagate(self, res, error);
}

/* --- vm.health, vm.ping, vm.ports ---------------------------------------------- */

/* vmsup-health-check.c's async functions */
typedef void (*VmsupStatsCheckFunc)(const gchar *name,
				    VmsupVmHandles *handles,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data);

/* a verb that is one health check of the VM @params names */
static void
vmsup_stats_service_check(VmsupStatsService *self,
			  JsonObject *params,
			  VmsupStatsNeeds needs,
			  gpointer source_tag,
			  VmsupStatsCheckFunc check,
			  VmsupStatsFinishFunc finish,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data)
{
	g_auto(VmsupStatsTarget) target = {NULL};
	GTask *task;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = vmsup_stats_service_begin(self,
					 params,
					 needs,
					 source_tag,
					 finish,
					 cancellable,
					 callback,
					 user_data,
					 &target);
	if (task != NULL)
		check(target.name,
		      target.handles,
		      cancellable,
		      vmsup_stats_service_return_cb,
		      task);
}

void
vmsup_stats_service_health_async(VmsupStatsService *self,
				 const VmsupCaller *caller,
				 JsonObject *params,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data)
{
	vmsup_stats_service_check(self,
				  params,
				  VMSUP_STATS_MAY_BE_STOPPED,
				  vmsup_stats_service_health_async,
				  vmsup_health_check_async,
				  vmsup_health_check_finish,
				  cancellable,
				  callback,
				  user_data);
}

JsonObject *
vmsup_stats_service_health_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	return vmsup_stats_service_propagate(self, res, error);
}

void
vmsup_stats_service_ping_async(VmsupStatsService *self,
			       const VmsupCaller *caller,
			       JsonObject *params,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	vmsup_stats_service_check(self,
				  params,
				  VMSUP_STATS_NEED_AGENT,
				  vmsup_stats_service_ping_async,
				  vmsup_health_check_ping_async,
				  vmsup_health_check_ping_finish,
				  cancellable,
				  callback,
				  user_data);
}

JsonObject *
vmsup_stats_service_ping_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	return vmsup_stats_service_propagate(self, res, error);
}

void
vmsup_stats_service_ports_async(VmsupStatsService *self,
				const VmsupCaller *caller,
				JsonObject *params,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data)
{
	g_auto(VmsupStatsTarget) target = {NULL};
	GTask *task;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = vmsup_stats_service_begin(self,
					 params,
					 VMSUP_STATS_NEED_AGENT,
					 vmsup_stats_service_ports_async,
					 vmsup_stats_service_finish_ports,
					 cancellable,
					 callback,
					 user_data,
					 &target);
	if (task == NULL)
		return;
	vmsup_stats_sampler_mark_active(target.sampler, "vm.ports");
	vmsup_port_forwarder_list_async(self->forwarder,
					target.name,
					target.handles,
					cancellable,
					vmsup_stats_service_return_cb,
					task);
}

JsonObject *
vmsup_stats_service_ports_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	return vmsup_stats_service_propagate(self, res, error);
}

/* --- vm.exec ---------------------------------------------------------------- */

typedef struct {
	gchar *name;
	gint64 timeout_s;
} VmsupStatsExec;

static void
vmsup_stats_exec_free(VmsupStatsExec *exec)
{
	g_free(exec->name);
	g_free(exec);
}

static void
vmsup_stats_exec_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsExec *exec = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	JsonObject *result = vmsup_qga_client_exec_finish(VMSUP_QGA_CLIENT(source), res, &error);

	if (result == NULL && vmsup_stats_error_is_timeout(error)) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_TIMEOUT,
					/* TRANSLATORS: seconds, a VM name, an error message */
					_("The command did not finish within %lld s in VM '%s' "
					  "(%s); raise timeout_s or run it in the background"),
					(long long)exec->timeout_s,
					exec->name,
					error->message);
		return;
	}
	if (result == NULL) {
		g_task_return_error(task, vmsup_stats_error_agent(exec->name, error));
		return;
	}
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

void
vmsup_stats_service_exec_async(VmsupStatsService *self,
			       const VmsupCaller *caller,
			       JsonObject *params,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_auto(VmsupStatsTarget) target = {NULL};
	g_autoptr(GTask) task = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	const gchar *stdin_data;
	JsonArray *array = NULL;
	VmsupStatsExec *exec;
	gint64 timeout_s;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	/* the agent is checked after the arguments, so that a bad request is named as such */
	task = vmsup_stats_service_begin(self,
					 params,
					 VMSUP_STATS_NEED_RUNNING,
					 vmsup_stats_service_exec_async,
					 /* finish= */ NULL,
					 cancellable,
					 callback,
					 user_data,
					 &target);
	if (task == NULL)
		return;
	exec = g_new0(VmsupStatsExec, 1);
	exec->name = g_strdup(target.name);
	g_task_set_task_data(task, exec, (GDestroyNotify)vmsup_stats_exec_free);

	if (json_object_has_member(params, "argv") &&
	    JSON_NODE_HOLDS_ARRAY(json_object_get_member(params, "argv")))
		array = json_object_get_array_member(params, "argv");
	for (guint i = 0; array != NULL && i < json_array_get_length(array); i++) {
		JsonNode *element = json_array_get_element(array, i);
		if (json_node_get_value_type(element) != G_TYPE_STRING) {
			array = NULL;
			break;
		}
		g_ptr_array_add(argv, (gpointer)json_node_get_string(element));
	}
	if (array == NULL || argv->len == 0 || ((const gchar *)argv->pdata[0])[0] == '\0') {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("Parameter 'argv' must be a list of strings starting with "
		      "the program to run, e.g. [\"/bin/uname\", \"-a\"]"));
		return;
	}
	g_ptr_array_add(argv, NULL);
	timeout_s = vmsup_json_object_get_int(params, "timeout_s", 30);
	if (timeout_s < 1 || timeout_s > 24 * 3600) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_INVALID_ARGUMENT,
					_("Parameter 'timeout_s' must be between 1 and 86400 "
					  "seconds"));
		return;
	}
	exec->timeout_s = timeout_s;
	stdin_data = vmsup_json_object_get_string(params, "stdin", NULL);
	if (target.handles->qga == NULL) {
		g_task_return_error(task, vmsup_stats_error_no_agent(target.name));
		return;
	}
	vmsup_stats_sampler_mark_active(target.sampler, "vm.exec");
	vmsup_qga_client_exec_async(target.handles->qga,
				    (const gchar *const *)argv->pdata,
				    stdin_data,
				    (guint)timeout_s * 1000,
				    cancellable,
				    vmsup_stats_exec_cb,
				    g_steal_pointer(&task));
}

JsonObject *
vmsup_stats_service_exec_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	return vmsup_stats_service_propagate(self, res, error);
}

/* --- the stale sweep ---------------------------------------------------------- */

typedef struct {
	VmsupStatsService *self;    /* owned */
	VmsupStatsSampler *sampler; /* owned */
	gboolean locked;
} VmsupStatsStop;

static void
vmsup_stats_stop_free(VmsupStatsStop *stop)
{
	const gchar *name = vmsup_stats_sampler_get_name(stop->sampler);

	if (stop->locked)
		vmsup_vm_hooks_unlock_vm(&stop->self->hooks, name);
	g_hash_table_remove(stop->self->stopping, name);
	g_object_unref(stop->sampler);
	g_object_unref(stop->self);
	g_free(stop);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupStatsStop, vmsup_stats_stop_free)

static gboolean
vmsup_stats_service_is_stale(VmsupStatsService *self, VmsupStatsSampler *sampler)
{
	return self->auto_stop_after_s > 0 && vmsup_stats_sampler_get_tracked(sampler) &&
	       vmsup_stats_sampler_get_auto_stop(sampler) &&
	       vmsup_stats_sampler_get_idle_ms(sampler) >= (gint64)self->auto_stop_after_s * 1000;
}

static void
vmsup_stats_stop_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupStatsStop) stop = user_data;
	const gchar *name = vmsup_stats_sampler_get_name(stop->sampler);
	g_autoptr(GError) error = NULL;

	if (!vmsup_qemu_process_stop_finish(VMSUP_QEMU_PROCESS(source), res, &error)) {
		/* the service is going away */
		if (g_cancellable_is_cancelled(stop->self->cancellable))
			return;
		vmsup_log_vm(G_LOG_LEVEL_WARNING,
			     name,
			     "Stopping stale VM '%s' failed: %s, ignoring",
			     name,
			     error->message);
		return;
	}
	vmsup_stats_service_see_pid(stop->self, stop->sampler, 0);
	vmsup_vm_hooks_cleanup_runtime(&stop->self->hooks, name);
	/* the stop_free unlocks */
}

static void
vmsup_stats_stop_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupStatsStop) stop = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	VmsupStatsService *self = stop->self;
	VmsupStatsSampler *sampler = stop->sampler;
	const gchar *name = vmsup_stats_sampler_get_name(sampler);
	VmsupQemuProcess *process;
	g_autofree gchar *reason = NULL;
	gint64 idle_s;

	if (!vmsup_vm_hooks_lock_vm_finish(res, &error)) {
		if (g_cancellable_is_cancelled(self->cancellable))
			return;
		vmsup_log_vm(G_LOG_LEVEL_WARNING,
			     name,
			     "Cannot lock stale VM '%s' to stop it: %s, ignoring",
			     name,
			     error->message);
		return;
	}
	stop->locked = TRUE;
	/* things may have changed while we waited for the lock */
	if (vmsup_vm_hooks_vm_alive(&self->hooks, name))
		handles = vmsup_vm_hooks_vm_handles(&self->hooks, name);
	if (handles == NULL || !vmsup_stats_qmp_process_alive(handles))
		return;
	if (vmsup_qemu_process_get_pid(handles->process) != vmsup_stats_sampler_get_pid(sampler) ||
	    !vmsup_stats_service_is_stale(self, sampler))
		return;

	idle_s = vmsup_stats_sampler_get_idle_ms(sampler) / 1000;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     name,
		     "Stopping VM '%s' by the auto-stop policy: idle for %" G_GINT64_FORMAT
		     " s (AutoStopStaleAfter=%u, last activity: %s)",
		     name,
		     idle_s,
		     self->auto_stop_after_s,
		     vmsup_stats_sampler_get_active_reason(sampler));
	/* what the VM's exit_reason says, instead of the guest's own power-off */
	reason = g_strdup_printf("stopped by the auto-stop policy after %" G_GINT64_FORMAT
				 " s without activity",
				 idle_s);
	vmsup_vm_hooks_note_stop(&self->hooks, name, reason);
	process = handles->process;
	vmsup_qemu_process_stop_async(process,
				      /* force= */ FALSE,
				      VMSUP_STATS_STOP_TIMEOUT_MS,
				      self->cancellable,
				      vmsup_stats_stop_done_cb,
				      g_steal_pointer(&stop));
}

/* lock -> note_stop -> graceful stop -> cleanup_runtime -> unlock; re-checked under the lock */
static void
vmsup_stats_service_begin_stop(VmsupStatsService *self, VmsupStatsSampler *sampler)
{
	const gchar *name = vmsup_stats_sampler_get_name(sampler);
	VmsupStatsStop *stop;

	if (g_hash_table_contains(self->stopping, name) ||
	    !vmsup_stats_service_is_stale(self, sampler))
		return;
	g_hash_table_add(self->stopping, g_strdup(name));
	stop = g_new0(VmsupStatsStop, 1);
	stop->self = g_object_ref(self);
	stop->sampler = g_object_ref(sampler);
	vmsup_vm_hooks_lock_vm(&self->hooks,
			       name,
			       self->cancellable,
			       vmsup_stats_stop_locked_cb,
			       stop);
}

/* the sweep's last look at the guest is in: still idle and running, it stops */
static void
vmsup_stats_service_sweep_sampled_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GWeakRef *weak = user_data;
	g_autoptr(VmsupStatsService) self = g_weak_ref_get(weak);
	g_autoptr(JsonObject) result = NULL;

	g_weak_ref_clear(weak);
	g_free(weak);
	result = vmsup_stats_sampler_refresh_finish(VMSUP_STATS_SAMPLER(source), res, NULL);
	if (self != NULL && result != NULL)
		vmsup_stats_service_begin_stop(self, VMSUP_STATS_SAMPLER(source));
}

static gboolean
vmsup_stats_service_sweep_cb(gpointer user_data)
{
	VmsupStatsService *self = user_data;
	g_autoptr(GPtrArray) samplers = vmsup_stats_service_list_samplers(self);

	for (guint i = 0; i < samplers->len; i++) {
		VmsupStatsSampler *sampler = g_ptr_array_index(samplers, i);
		g_autoptr(VmsupVmHandles) handles = NULL;
		GWeakRef *weak;

		if (!vmsup_stats_sampler_get_tracked(sampler) ||
		    !vmsup_stats_sampler_get_auto_stop(sampler) ||
		    g_hash_table_contains(self->stopping, vmsup_stats_sampler_get_name(sampler)))
			continue;
		handles = vmsup_stats_service_running_handles(self, sampler);
		if (handles == NULL || !vmsup_stats_service_is_stale(self, sampler))
			continue;
		/* one last look at the guest before deciding */
		weak = g_new0(GWeakRef, 1);
		g_weak_ref_init(weak, self);
		vmsup_stats_sampler_refresh_async(sampler,
						  handles,
						  self->cancellable,
						  vmsup_stats_service_sweep_sampled_cb,
						  weak);
	}
	return G_SOURCE_CONTINUE;
}

/* --- the poller ---------------------------------------------------------------- */

/* one pass of the poller, timed from its start to the last VM's sample */
typedef struct {
	GWeakRef service;
	gint64 started;
	guint pending; /* one for the pass itself while it starts refreshes */
} VmsupStatsPoll;

static void
vmsup_stats_poll_unref_pending(VmsupStatsPoll *poll)
{
	g_autoptr(VmsupStatsService) self = NULL;

	if (--poll->pending > 0)
		return;
	self = g_weak_ref_get(&poll->service);
	if (self != NULL)
		self->last_poll_s =
		    (gdouble)(g_get_monotonic_time() - poll->started) / G_USEC_PER_SEC;
	g_weak_ref_clear(&poll->service);
	g_free(poll);
}

static void
vmsup_stats_service_polled_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(JsonObject) result =
	    vmsup_stats_sampler_refresh_finish(VMSUP_STATS_SAMPLER(source), res, NULL);
	vmsup_stats_poll_unref_pending(user_data);
}

static gboolean
vmsup_stats_service_poll_cb(gpointer user_data)
{
	VmsupStatsService *self = user_data;
	g_autoptr(GPtrArray) samplers = vmsup_stats_service_list_samplers(self);
	VmsupStatsPoll *poll = g_new0(VmsupStatsPoll, 1);

	g_weak_ref_init(&poll->service, self);
	poll->started = g_get_monotonic_time();
	poll->pending = 1;

	for (guint i = 0; i < samplers->len; i++) {
		VmsupStatsSampler *sampler = g_ptr_array_index(samplers, i);
		g_autoptr(VmsupVmHandles) handles = NULL;

		if (vmsup_stats_sampler_is_refreshing(sampler) ||
		    g_hash_table_contains(self->stopping, vmsup_stats_sampler_get_name(sampler)))
			continue;
		handles = vmsup_stats_service_running_handles(self, sampler);
		if (handles == NULL)
			continue;
		poll->pending++;
		vmsup_stats_sampler_refresh_async(sampler,
						  handles,
						  self->cancellable,
						  vmsup_stats_service_polled_cb,
						  poll);
	}
	vmsup_stats_poll_unref_pending(poll);
	return G_SOURCE_CONTINUE;
}

static void
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
	vmsup_port_forwarder_set_probe_timeout(self->forwarder, timeout_ms);
}

void
vmsup_stats_service_track_vm(VmsupStatsService *self, const gchar *name, gboolean auto_stop)
{
	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(name != NULL);

	vmsup_stats_sampler_set_tracked(vmsup_stats_service_lookup(self, name, TRUE),
					TRUE,
					auto_stop);
}

void
vmsup_stats_service_untrack_vm(VmsupStatsService *self, const gchar *name)
{
	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(name != NULL);

	vmsup_port_forwarder_release(self->forwarder, name);
	g_hash_table_remove(self->samplers, name);
}

void
vmsup_stats_service_note_activity(VmsupStatsService *self, const gchar *name, const gchar *reason)
{
	VmsupStatsSampler *sampler;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	if (name == NULL)
		return;
	/* requests naming no VM we know of leave nothing behind */
	sampler = vmsup_stats_service_lookup(self, name, FALSE);
	if (sampler == NULL && vmsup_vm_hooks_vm_alive(&self->hooks, name))
		sampler = vmsup_stats_service_lookup(self, name, TRUE);
	if (sampler == NULL)
		return;
	vmsup_stats_sampler_mark_active(sampler, reason != NULL ? reason : "request");
}

JsonObject *
vmsup_stats_service_get_cached_stats(VmsupStatsService *self, const gchar *name)
{
	VmsupStatsSampler *sampler;
	JsonObject *cached;

	g_return_val_if_fail(VMSUP_IS_STATS_SERVICE(self), NULL);
	g_return_val_if_fail(name != NULL, NULL);

	sampler = vmsup_stats_service_lookup(self, name, FALSE);
	cached = sampler != NULL ? vmsup_stats_sampler_get_cached(sampler, NULL) : NULL;
	return cached != NULL ? vmsup_stats_json_copy_flat(cached) : NULL;
}

gdouble
vmsup_stats_service_get_last_poll_duration(VmsupStatsService *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SERVICE(self), -1);
	return self->last_poll_s;
}

JsonObject *
vmsup_stats_service_get_metrics(VmsupStatsService *self, const gchar *name)
{
	VmsupStatsSampler *sampler;
	JsonObject *cached;
	JsonObject *obj;
	g_autoptr(JsonObject) activity = NULL;
	gdouble cpu_s;
	gdouble agent_rtt_s;

	g_return_val_if_fail(VMSUP_IS_STATS_SERVICE(self), NULL);
	g_return_val_if_fail(name != NULL, NULL);

	sampler = vmsup_stats_service_lookup(self, name, FALSE);
	if (sampler == NULL)
		return NULL;
	cached = vmsup_stats_sampler_get_cached(sampler, NULL);
	obj = cached != NULL ? vmsup_stats_json_copy_flat(cached) : json_object_new();
	/* unrounded: a round trip is a few milliseconds */
	cpu_s = cached != NULL ? vmsup_stats_sampler_get_cpu_seconds(sampler) : -1;
	if (cpu_s >= 0)
		json_object_set_double_member(obj, "cpu_s", cpu_s);
	agent_rtt_s = vmsup_stats_sampler_get_agent_rtt(sampler);
	if (agent_rtt_s >= 0)
		json_object_set_double_member(obj, "agent_rtt_s", agent_rtt_s);
	/* idle_s and auto_stop_in_s as vm.get has them */
	activity = vmsup_stats_service_describe_activity(self, name);
	json_object_set_int_member(obj, "idle_s", vmsup_json_object_get_int(activity, "idle_s", 0));
	if (json_object_has_member(activity, "auto_stop_in_s"))
		json_object_set_int_member(
		    obj,
		    "auto_stop_in_s",
		    vmsup_json_object_get_int(activity, "auto_stop_in_s", 0));
	return obj;
}

JsonObject *
vmsup_stats_service_describe_activity(VmsupStatsService *self, const gchar *name)
{
	VmsupStatsSampler *sampler;
	JsonObject *obj;
	gint64 idle_s;
	gint64 active_window_s;
	const gchar *active_reason;

	g_return_val_if_fail(VMSUP_IS_STATS_SERVICE(self), NULL);
	g_return_val_if_fail(name != NULL, NULL);

	sampler = vmsup_stats_service_lookup(self, name, FALSE);
	if (sampler == NULL)
		return NULL;
	obj = json_object_new();
	idle_s = vmsup_stats_sampler_get_idle_ms(sampler) / 1000;
	active_reason = vmsup_stats_sampler_get_active_reason(sampler);
	json_object_set_string_member(obj,
				      "last_active",
				      vmsup_stats_sampler_get_last_active(sampler));
	json_object_set_int_member(obj, "idle_s", idle_s);
	/* what made it active last; beyond a couple of polls, also why it counts as idle */
	json_object_set_string_member(obj, "active_reason", active_reason);
	active_window_s = MAX(10, 2 * (gint64)self->poll_interval_s);
	if (idle_s >= active_window_s) {
		g_autofree gchar *reason =
		    g_strdup_printf(_("no client request, guest CPU below %.0f %% and no guest "
				      "network traffic since the last '%s'"),
				    VMSUP_STATS_ACTIVE_CPU_PERCENT,
				    active_reason);
		json_object_set_string_member(obj, "idle_reason", reason);
	}
	if (self->auto_stop_after_s > 0 && vmsup_stats_sampler_get_auto_stop(sampler) &&
	    vmsup_stats_sampler_get_pid(sampler) > 0)
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
	g_hash_table_unref(self->samplers);
	g_hash_table_unref(self->stopping);
	g_object_unref(self->forwarder);
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
	self->samplers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
	self->stopping = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->forwarder = vmsup_port_forwarder_new();
	self->cancellable = g_cancellable_new();
	self->last_poll_s = -1;
}

VmsupStatsService *
vmsup_stats_service_new(const VmsupVmHooks *hooks)
{
	g_return_val_if_fail(hooks != NULL, NULL);
	return g_object_new(VMSUP_TYPE_STATS_SERVICE, "hooks", hooks, NULL);
}
