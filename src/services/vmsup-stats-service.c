/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a running VM is doing, without owning its lifecycle: stats, health,
 * ping, exec and listening ports through QMP and the guest agent, a poller
 * keeping a per-VM stats cache, and the sweep that stops stale VMs. All it
 * knows of VMService are the five hooks it was built with.
 */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include <glib/gi18n.h>
#include <signal.h>
#include <string.h>

#include "vmsup-error.h"
#include "vmsup-guest-ports.h"
#include "vmsup-http-probe.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-name.h"
#include "vmsup-proc-stat.h"
#include "vmsup-stats-service.h"

/* a QMP command that takes longer than this counts as "QMP not answering" */
#define VMSUP_STATS_QMP_TIMEOUT_MS 2000
#define VMSUP_STATS_AGENT_TIMEOUT_MS 2000
/* reading /proc/net/tcp{,6} in the guest: two files, a few agent round trips each */
#define VMSUP_STATS_AGENT_READ_TIMEOUT_MS 5000
/* the default; a TCG guest on a loaded host can take seconds to fork an answer */
#define VMSUP_STATS_PROBE_TIMEOUT_MS 5000
/* two samples this far apart when there is no previous one */
#define VMSUP_STATS_CPU_WINDOW_MS 200
/* vm.stats answers from the cache when it is younger than this */
#define VMSUP_STATS_CACHE_FRESH_MS 1000
/* guest activity: vCPU use above this over a window of at least ... */
#define VMSUP_STATS_ACTIVE_CPU_PERCENT 5.0
#define VMSUP_STATS_ACTIVITY_WINDOW_MS 1000
/*
 * ... or more guest network bytes than this between two samples: one HTTP
 * GET through a forward moves about 1.3 kB, an idle guest 0 (a few hundred
 * bytes of IPv6 neighbour discovery right after boot)
 */
#define VMSUP_STATS_ACTIVE_NET_BYTES 1024
/* a stale VM gets this long to power off before QEMU is told to quit */
#define VMSUP_STATS_STOP_TIMEOUT_MS 10000
/* a limit on what one guest can make us allocate on the host */
#define VMSUP_STATS_MAX_FORWARDS 32
#define VMSUP_STATS_FORWARD_TRIES 3
/* the guest agent's chardev QEMU is started with */
#define VMSUP_STATS_AGENT_CHARDEV_ID "qga0"
/* the user-mode netdev QEMU is started with */
#define VMSUP_STATS_NETDEV_ID "n0"

typedef struct {
	gchar *host_address;
	guint16 host_port;
	guint16 guest_port;
} VmsupStatsForward;

/* what the service knows of one VM; refcounted so in-flight work survives untrack */
typedef struct {
	gint ref_count;
	gchar *name;
	gboolean tracked;   /* told by track_vm(): the VM exists */
	gboolean auto_stop; /* the sweep may stop it */
	GPid pid;           /* the QEMU last seen; another pid is a (re)start */
	gint64 last_active_mono;
	gint64 last_active_real;
	gchar *active_reason;
	gboolean refreshing;
	gboolean sweep_pending; /* stop after the refresh in flight if still idle */
	gboolean stopping;
	GPtrArray *waiters;             /* of GTask waiting for the refresh in flight */
	VmsupProcSample *last_sample;   /* owned: base of the next CPU window */
	VmsupProcSample *activity_base; /* owned, no threads: base of the activity window */
	GArray *vcpu_tids;              /* of gint, from query-cpus-fast, nullable */
	gint64 net_bytes;               /* rx + tx of the guest at the last sample, -1 unknown */
	JsonObject *cache;              /* owned: the last vm.stats result */
	gint64 cache_mono;
} VmsupStatsVm;

struct _VmsupStatsService {
	GObject parent_instance;
	VmsupVmHooks hooks;         /* owned refs on the closures */
	GHashTable *vms;            /* name -> VmsupStatsVm (owned) */
	GHashTable *reserved_ports; /* host port -> VM name: forwards added by this service */
	guint poll_interval_s;
	guint auto_stop_after_s;
	guint probe_timeout_ms;
	guint poll_id;
	guint sweep_id;
	GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE(VmsupStatsService, vmsup_stats_service, G_TYPE_OBJECT)

enum { PROP_0, PROP_HOOKS, N_PROPS };
static GParamSpec *props[N_PROPS] = {NULL};

enum { SIGNAL_STATS_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS] = {0};

/* --- per-VM state -------------------------------------------------------- */

static VmsupStatsVm *
vmsup_stats_vm_new(const gchar *name)
{
	VmsupStatsVm *vm = g_new0(VmsupStatsVm, 1);
	vm->ref_count = 1;
	vm->name = g_strdup(name);
	vm->auto_stop = TRUE;
	vm->net_bytes = -1;
	vm->last_active_mono = g_get_monotonic_time();
	vm->last_active_real = g_get_real_time();
	vm->active_reason = g_strdup("defined");
	vm->waiters = g_ptr_array_new_with_free_func(g_object_unref);
	return vm;
}

static VmsupStatsVm *
vmsup_stats_vm_ref(VmsupStatsVm *vm)
{
	vm->ref_count++;
	return vm;
}

static void
vmsup_stats_vm_forget_samples(VmsupStatsVm *vm)
{
	g_clear_pointer(&vm->last_sample, vmsup_proc_sample_free);
	g_clear_pointer(&vm->activity_base, vmsup_proc_sample_free);
	g_clear_pointer(&vm->vcpu_tids, g_array_unref);
	g_clear_pointer(&vm->cache, json_object_unref);
	vm->net_bytes = -1;
}

static void
vmsup_stats_vm_unref(VmsupStatsVm *vm)
{
	if (--vm->ref_count > 0)
		return;
	vmsup_stats_vm_forget_samples(vm);
	g_ptr_array_unref(vm->waiters);
	g_free(vm->active_reason);
	g_free(vm->name);
	g_free(vm);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupStatsVm, vmsup_stats_vm_unref)

static void
vmsup_stats_vm_mark_active(VmsupStatsVm *vm, const gchar *reason)
{
	vm->last_active_mono = g_get_monotonic_time();
	vm->last_active_real = g_get_real_time();
	if (g_strcmp0(vm->active_reason, reason) != 0) {
		g_free(vm->active_reason);
		vm->active_reason = g_strdup(reason);
	}
}

static gint64
vmsup_stats_vm_idle_ms(VmsupStatsVm *vm)
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
	vmsup_stats_vm_forget_samples(vm);
	if (pid > 0)
		vmsup_stats_vm_mark_active(vm, "started");
}

/* --- small helpers -------------------------------------------------------- */

static gchar *
vmsup_stats_format_time(gint64 real_us)
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
static JsonObject *
vmsup_stats_copy_flat_object(JsonObject *src)
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

static void
vmsup_stats_set_int_or_null(JsonObject *obj, const gchar *member, gint64 value)
{
	if (value < 0)
		json_object_set_null_member(obj, member);
	else
		json_object_set_int_member(obj, member, value);
}

static void
vmsup_stats_set_double_or_null(JsonObject *obj, const gchar *member, gdouble value)
{
	if (value < 0)
		json_object_set_null_member(obj, member);
	else
		json_object_set_double_member(obj, member, vmsup_stats_round(value, 1));
}

static gboolean
vmsup_stats_error_is_timeout(const GError *error)
{
	return g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT) ||
	       g_error_matches(error, VMSUP_QMP_ERROR, VMSUP_QMP_ERROR_TIMEOUT) ||
	       g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

/* an agent failure as users should read it, in VMSUP_ERROR */
static GError *
vmsup_stats_agent_error(const gchar *name, const GError *error)
{
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_CANCELLED, error->message);
	if (vmsup_stats_error_is_timeout(error))
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
	if (error->domain == VMSUP_ERROR)
		return g_error_copy(error);
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   _("The guest agent of VM '%s' failed: %s; check with 'vmsup health %s'"),
			   name,
			   error->message,
			   name);
}

static GError *
vmsup_stats_not_running_error(const gchar *name)
{
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   /* TRANSLATORS: both %s are the VM name */
			   _("VM '%s' is not running; start it with 'vmsup start %s'"),
			   name,
			   name);
}

static GError *
vmsup_stats_no_agent_error(const gchar *name)
{
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   _("VM '%s' has no guest agent channel; recreate it with the bundled "
			     "guest or a guest running qemu-ga"),
			   name);
}

static gboolean
vmsup_stats_process_alive(VmsupVmHandles *handles)
{
	GPid pid = vmsup_qemu_process_get_pid(handles->process);
	return pid > 0 && vmsup_qemu_process_is_running(handles->process) && kill(pid, 0) == 0;
}

/* --- QMP with a deadline -------------------------------------------------- */

typedef struct {
	gchar *command;
	gchar *label;
	guint timeout_ms;
	gboolean expired;
	GCancellable *cancellable; /* owned: the call's own */
	GCancellable *parent;      /* owned, nullable */
	gulong parent_id;
	GSource *timer; /* owned */
} VmsupStatsQmpCall;

static void
vmsup_stats_qmp_call_free(VmsupStatsQmpCall *call)
{
	if (call->parent != NULL) {
		g_cancellable_disconnect(call->parent, call->parent_id);
		g_object_unref(call->parent);
	}
	if (call->timer != NULL) {
		g_source_destroy(call->timer);
		g_source_unref(call->timer);
	}
	g_clear_object(&call->cancellable);
	g_free(call->command);
	g_free(call->label);
	g_free(call);
}

static gboolean
vmsup_stats_qmp_timeout_cb(gpointer user_data)
{
	VmsupStatsQmpCall *call = user_data;
	call->expired = TRUE;
	g_clear_pointer(&call->timer, g_source_unref);
	g_cancellable_cancel(call->cancellable);
	return G_SOURCE_REMOVE;
}

static void
vmsup_stats_qmp_parent_cancelled_cb(GCancellable *parent, gpointer user_data)
{
	g_cancellable_cancel(G_CANCELLABLE(user_data));
}

static void
vmsup_stats_qmp_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsQmpCall *call = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	JsonNode *node = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);

	if (call->timer != NULL) {
		g_source_destroy(call->timer);
		g_clear_pointer(&call->timer, g_source_unref);
	}
	if (node == NULL && call->expired) {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_TIMEOUT,
		    /* TRANSLATORS: a QMP command name, a VM name, milliseconds */
		    _("QMP command '%s' of VM '%s' got no answer within %u ms"),
		    call->command,
		    call->label,
		    call->timeout_ms);
		return;
	}
	if (node == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_pointer(task, node, (GDestroyNotify)json_node_unref);
}

/* vmsup_qmp_client_execute_async() bounded by @timeout_ms, whatever the client's default */
static void
vmsup_stats_qmp_execute_async(VmsupVmHandles *handles,
			      const gchar *command,
			      JsonObject *arguments,
			      guint timeout_ms,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	VmsupQmpClient *qmp = vmsup_qemu_process_get_qmp(handles->process);
	VmsupStatsQmpCall *call;

	g_task_set_source_tag(task, vmsup_stats_qmp_execute_async);
	if (qmp == NULL || !vmsup_qmp_client_is_ready(qmp)) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("QMP of VM '%s' is not connected"),
					handles->name);
		return;
	}
	call = g_new0(VmsupStatsQmpCall, 1);
	g_task_set_task_data(task, call, (GDestroyNotify)vmsup_stats_qmp_call_free);
	call->command = g_strdup(command);
	call->label = g_strdup(handles->name);
	call->timeout_ms = timeout_ms;
	call->cancellable = g_cancellable_new();
	if (cancellable != NULL) {
		call->parent = g_object_ref(cancellable);
		call->parent_id =
		    g_cancellable_connect(cancellable,
					  G_CALLBACK(vmsup_stats_qmp_parent_cancelled_cb),
					  call->cancellable,
					  NULL);
	}
	call->timer = g_timeout_source_new(timeout_ms);
	g_source_set_callback(call->timer, vmsup_stats_qmp_timeout_cb, call, NULL);
	g_source_attach(call->timer, g_main_context_get_thread_default());
	vmsup_qmp_client_execute_async(qmp,
				       command,
				       arguments,
				       call->cancellable,
				       vmsup_stats_qmp_done_cb,
				       g_steal_pointer(&task));
}

static JsonNode *
vmsup_stats_qmp_execute_finish(GAsyncResult *res, GError **error)
{
	return g_task_propagate_pointer(G_TASK(res), error);
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
static void
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
	if (handles == NULL || !vmsup_stats_process_alive(handles)) {
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
			g_propagate_error(error, vmsup_stats_not_running_error(name));
			return FALSE;
		}
		*out_not_running = TRUE;
		*out_vm = vmsup_stats_vm_ref(vm);
		*out_handles = NULL;
		return TRUE;
	}

	/* a running VM the wiring has not told us about yet still gets an entry */
	vm = vmsup_stats_service_lookup_vm(self, name, TRUE);
	vmsup_stats_service_see_pid(self, vm, vmsup_qemu_process_get_pid(handles->process));
	if (out_not_running != NULL)
		*out_not_running = FALSE;
	*out_vm = vmsup_stats_vm_ref(vm);
	*out_handles = g_steal_pointer(&handles);
	return TRUE;
}

/*
 * vmsup_stats_service_resolve_vm() for the request @task: FALSE once the task
 * has returned the error. With @need_agent a running VM without a guest
 * agent is an error too.
 */
static gboolean
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
		g_task_return_error(task, vmsup_stats_no_agent_error(*out_name));
		return FALSE;
	}
	return TRUE;
}

/* --- refresh: one sample of one VM, shared by vm.stats, the poller and the sweep --- */

typedef struct {
	GWeakRef self;
	VmsupStatsVm *vm;
	VmsupVmHandles *handles;
	GCancellable *cancellable;
	guint pending;
	gint64 started;
	VmsupProcSample *sample; /* owned, NULL when /proc could not be read */
	gdouble cpu_percent;     /* -1 unknown */
	gchar *status;           /* QMP run state, NULL unknown */
	gint64 memory_bytes;
	gint64 block_read;
	gint64 block_write;
	gint64 net_rx;
	gint64 net_tx;
	/* query-status and query-chardev still to answer before the agent is asked */
	guint agent_gate;
	gboolean agent_port_closed; /* QEMU says no guest program has the agent port open */
} VmsupStatsRefresh;

static void
vmsup_stats_refresh_free(VmsupStatsRefresh *refresh)
{
	g_weak_ref_clear(&refresh->self);
	vmsup_stats_vm_unref(refresh->vm);
	vmsup_vm_handles_unref(refresh->handles);
	g_clear_object(&refresh->cancellable);
	vmsup_proc_sample_free(refresh->sample);
	g_free(refresh->status);
	g_free(refresh);
}

/* QMP run states onto the VM states of the contract */
static const gchar *
vmsup_stats_map_run_state(const gchar *status)
{
	if (status == NULL)
		return NULL;
	if (g_strcmp0(status, "running") == 0)
		return "running";
	if (g_strcmp0(status, "shutdown") == 0)
		return "stopping";
	if (g_strcmp0(status, "guest-panicked") == 0 || g_strcmp0(status, "internal-error") == 0)
		return "crashed";
	/* paused, prelaunch, suspended, io-error, debug, inmigrate, ... */
	return "paused";
}

static JsonObject *
vmsup_stats_refresh_build(VmsupStatsRefresh *refresh)
{
	JsonObject *obj = json_object_new();
	g_autofree gchar *sampled_at = vmsup_stats_format_time(g_get_real_time());
	const gchar *state = vmsup_stats_map_run_state(refresh->status);

	if (state != NULL)
		json_object_set_string_member(obj, "state", state);
	else
		json_object_set_null_member(obj, "state");
	vmsup_stats_set_double_or_null(obj, "cpu_percent", refresh->cpu_percent);
	vmsup_stats_set_int_or_null(obj,
				    "rss_bytes",
				    refresh->sample != NULL ? (gint64)refresh->sample->rss_bytes
							    : -1);
	vmsup_stats_set_int_or_null(
	    obj,
	    "memory_mib",
	    refresh->memory_bytes >= 0 ? refresh->memory_bytes / (1024 * 1024) : -1);
	vmsup_stats_set_int_or_null(obj, "block_read_bytes", refresh->block_read);
	vmsup_stats_set_int_or_null(obj, "block_write_bytes", refresh->block_write);
	vmsup_stats_set_int_or_null(obj, "net_rx_bytes", refresh->net_rx);
	vmsup_stats_set_int_or_null(obj, "net_tx_bytes", refresh->net_tx);
	vmsup_stats_set_double_or_null(obj,
				       "uptime_s",
				       refresh->sample != NULL ? refresh->sample->uptime_s : -1);
	json_object_set_string_member(obj, "sampled_at", sampled_at);
	return obj;
}

/* guest CPU and network since the last activity window: is anybody using the VM? */
static void
vmsup_stats_refresh_note_guest_activity(VmsupStatsRefresh *refresh)
{
	VmsupStatsVm *vm = refresh->vm;

	if (refresh->sample != NULL) {
		const VmsupProcSample *base = vm->activity_base;
		if (base == NULL || base->pid != refresh->sample->pid) {
			g_clear_pointer(&vm->activity_base, vmsup_proc_sample_free);
			vm->activity_base = g_new0(VmsupProcSample, 1);
			*vm->activity_base = *refresh->sample;
			vm->activity_base->threads = NULL;
		} else if (refresh->sample->sampled_at - base->sampled_at >=
			   VMSUP_STATS_ACTIVITY_WINDOW_MS * 1000) {
			gdouble vcpu = vmsup_proc_sample_cpu_percent(base, refresh->sample, TRUE);
			if (vcpu >= VMSUP_STATS_ACTIVE_CPU_PERCENT)
				vmsup_stats_vm_mark_active(vm, "guest-cpu");
			*vm->activity_base = *refresh->sample;
			vm->activity_base->threads = NULL;
		}
	}
	if (refresh->net_rx >= 0 && refresh->net_tx >= 0) {
		gint64 bytes = refresh->net_rx + refresh->net_tx;
		if (vm->net_bytes >= 0 && bytes - vm->net_bytes >= VMSUP_STATS_ACTIVE_NET_BYTES)
			vmsup_stats_vm_mark_active(vm, "network");
		/* counters restart with the guest: take the new base either way */
		vm->net_bytes = bytes;
	}
}

static void
vmsup_stats_service_begin_stop(VmsupStatsService *self, VmsupStatsVm *vm);

static void
vmsup_stats_refresh_complete(VmsupStatsRefresh *refresh)
{
	g_autoptr(VmsupStatsService) self = g_weak_ref_get(&refresh->self);
	VmsupStatsVm *vm = refresh->vm;
	g_autoptr(GPtrArray) waiters = g_steal_pointer(&vm->waiters);
	g_autoptr(JsonObject) result = NULL;
	gboolean alive = vmsup_stats_process_alive(refresh->handles);

	vm->waiters = g_ptr_array_new_with_free_func(g_object_unref);
	vm->refreshing = FALSE;

	if (alive && vm->pid == vmsup_qemu_process_get_pid(refresh->handles->process)) {
		result = vmsup_stats_refresh_build(refresh);
		vmsup_stats_refresh_note_guest_activity(refresh);
		if (refresh->sample != NULL) {
			g_clear_pointer(&vm->last_sample, vmsup_proc_sample_free);
			vm->last_sample = g_steal_pointer(&refresh->sample);
		}
		g_clear_pointer(&vm->cache, json_object_unref);
		vm->cache = json_object_ref(result);
		vm->cache_mono = g_get_monotonic_time();
		g_debug("VM '%s' sampled in %" G_GINT64_FORMAT " ms",
			vm->name,
			(g_get_monotonic_time() - refresh->started) / 1000);
	}

	for (guint i = 0; i < waiters->len; i++) {
		GTask *task = g_ptr_array_index(waiters, i);
		if (result == NULL)
			g_task_return_error(task, vmsup_stats_not_running_error(vm->name));
		else
			g_task_return_pointer(task,
					      vmsup_stats_copy_flat_object(result),
					      (GDestroyNotify)json_object_unref);
	}

	if (result != NULL && self != NULL)
		g_signal_emit(self, signals[SIGNAL_STATS_CHANGED], 0, vm->name, result);

	if (vm->sweep_pending) {
		vm->sweep_pending = FALSE;
		if (self != NULL && alive)
			vmsup_stats_service_begin_stop(self, vm);
	}
	vmsup_stats_refresh_free(refresh);
}

static void
vmsup_stats_refresh_unref_pending(VmsupStatsRefresh *refresh)
{
	if (--refresh->pending == 0)
		vmsup_stats_refresh_complete(refresh);
}

static void
vmsup_stats_refresh_sample_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsRefresh *refresh = user_data;
	g_autoptr(GError) error = NULL;
	gdouble cpu = -1;

	refresh->sample = vmsup_proc_sample_finish(res, &cpu, NULL, &error);
	if (refresh->sample == NULL)
		g_debug("VM '%s': no /proc sample: %s", refresh->vm->name, error->message);
	else
		refresh->cpu_percent = cpu;
	vmsup_stats_refresh_unref_pending(refresh);
}

static void
vmsup_stats_refresh_net_cb(GObject *source, GAsyncResult *res, gpointer user_data);

/*
 * Asks the agent for the network counters once QMP said it can answer: the
 * vCPUs run and a guest program has the agent port open. Anything else would
 * only wait for the agent's timeout, and the counters stay null. Unknown (a
 * QMP query failed) is asked, as before. Called by each of the two QMP
 * answers, whose callers still hold their own pending reference.
 */
static void
vmsup_stats_refresh_agent_gate(VmsupStatsRefresh *refresh)
{
	if (refresh->agent_gate == 0 || --refresh->agent_gate > 0)
		return;
	if (refresh->agent_port_closed ||
	    (refresh->status != NULL && g_strcmp0(refresh->status, "running") != 0)) {
		g_debug("VM '%s': guest agent not asked (%s)",
			refresh->vm->name,
			refresh->agent_port_closed ? "agent port closed" : refresh->status);
		vmsup_stats_refresh_unref_pending(refresh);
		return;
	}
	/* the gate's pending reference passes to the agent call */
	vmsup_qga_client_execute_async(refresh->handles->qga,
				       "guest-network-get-interfaces",
				       NULL,
				       VMSUP_STATS_AGENT_TIMEOUT_MS,
				       refresh->cancellable,
				       vmsup_stats_refresh_net_cb,
				       refresh);
}

static void
vmsup_stats_refresh_chardev_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsRefresh *refresh = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_qmp_execute_finish(res, &error);

	if (node != NULL && JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *chardevs = json_node_get_array(node);
		for (guint i = 0; i < json_array_get_length(chardevs); i++) {
			JsonNode *element = json_array_get_element(chardevs, i);
			JsonObject *chardev;
			if (!JSON_NODE_HOLDS_OBJECT(element))
				continue;
			chardev = json_node_get_object(element);
			if (g_strcmp0(vmsup_json_object_get_string(chardev, "label", NULL),
				      VMSUP_STATS_AGENT_CHARDEV_ID) != 0 ||
			    !json_object_has_member(chardev, "frontend-open"))
				continue;
			refresh->agent_port_closed =
			    !json_object_get_boolean_member(chardev, "frontend-open");
			break;
		}
	} else if (error != NULL) {
		g_debug("VM '%s': query-chardev: %s", refresh->vm->name, error->message);
	}
	vmsup_stats_refresh_agent_gate(refresh);
	vmsup_stats_refresh_unref_pending(refresh);
}

static void
vmsup_stats_refresh_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsRefresh *refresh = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_qmp_execute_finish(res, &error);

	if (node != NULL && JSON_NODE_HOLDS_OBJECT(node))
		refresh->status = g_strdup(
		    vmsup_json_object_get_string(json_node_get_object(node), "status", NULL));
	else if (error != NULL)
		g_debug("VM '%s': query-status: %s", refresh->vm->name, error->message);
	vmsup_stats_refresh_agent_gate(refresh);
	vmsup_stats_refresh_unref_pending(refresh);
}

static void
vmsup_stats_refresh_memory_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsRefresh *refresh = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_qmp_execute_finish(res, &error);

	if (node != NULL && JSON_NODE_HOLDS_OBJECT(node)) {
		JsonObject *obj = json_node_get_object(node);
		gint64 base = vmsup_json_object_get_int(obj, "base-memory", -1);
		gint64 plugged = vmsup_json_object_get_int(obj, "plugged-memory", 0);
		if (base >= 0)
			refresh->memory_bytes = base + MAX(plugged, 0);
	} else if (error != NULL) {
		g_debug("VM '%s': query-memory-size-summary: %s",
			refresh->vm->name,
			error->message);
	}
	vmsup_stats_refresh_unref_pending(refresh);
}

static void
vmsup_stats_refresh_block_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsRefresh *refresh = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_qmp_execute_finish(res, &error);

	/* no block device at all: unknown, not zero */
	if (node != NULL && JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *devices = json_node_get_array(node);
		for (guint i = 0; i < json_array_get_length(devices); i++) {
			JsonNode *element = json_array_get_element(devices, i);
			JsonObject *stats;
			if (!JSON_NODE_HOLDS_OBJECT(element))
				continue;
			stats =
			    json_object_get_object_member(json_node_get_object(element), "stats");
			if (stats == NULL)
				continue;
			refresh->block_read =
			    MAX(refresh->block_read, 0) +
			    MAX(vmsup_json_object_get_int(stats, "rd_bytes", 0), 0);
			refresh->block_write =
			    MAX(refresh->block_write, 0) +
			    MAX(vmsup_json_object_get_int(stats, "wr_bytes", 0), 0);
		}
	} else if (error != NULL) {
		g_debug("VM '%s': query-blockstats: %s", refresh->vm->name, error->message);
	}
	vmsup_stats_refresh_unref_pending(refresh);
}

static void
vmsup_stats_refresh_cpus_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsRefresh *refresh = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_qmp_execute_finish(res, &error);
	g_autoptr(GArray) tids = g_array_new(FALSE, FALSE, sizeof(gint));

	if (node != NULL && JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *cpus = json_node_get_array(node);
		for (guint i = 0; i < json_array_get_length(cpus); i++) {
			JsonNode *element = json_array_get_element(cpus, i);
			gint tid;
			if (!JSON_NODE_HOLDS_OBJECT(element))
				continue;
			tid = (gint)vmsup_json_object_get_int(json_node_get_object(element),
							      "thread-id",
							      -1);
			if (tid > 0)
				g_array_append_val(tids, tid);
		}
		/* kept for the next sample of the same process */
		if (tids->len > 0 &&
		    refresh->vm->pid == vmsup_qemu_process_get_pid(refresh->handles->process)) {
			g_clear_pointer(&refresh->vm->vcpu_tids, g_array_unref);
			refresh->vm->vcpu_tids = g_steal_pointer(&tids);
		}
	}
	vmsup_stats_refresh_unref_pending(refresh);
}

static void
vmsup_stats_refresh_net_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsRefresh *refresh = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node =
	    vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);

	if (node != NULL && JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *ifaces = json_node_get_array(node);
		gint64 rx = -1;
		gint64 tx = -1;
		for (guint i = 0; i < json_array_get_length(ifaces); i++) {
			JsonNode *element = json_array_get_element(ifaces, i);
			JsonObject *iface;
			JsonObject *stats;
			if (!JSON_NODE_HOLDS_OBJECT(element))
				continue;
			iface = json_node_get_object(element);
			/* loopback traffic never leaves the guest */
			if (g_strcmp0(vmsup_json_object_get_string(iface, "name", NULL), "lo") == 0)
				continue;
			if (!json_object_has_member(iface, "statistics"))
				continue;
			stats = json_object_get_object_member(iface, "statistics");
			if (stats == NULL)
				continue;
			rx = MAX(rx, 0) + MAX(vmsup_json_object_get_int(stats, "rx-bytes", 0), 0);
			tx = MAX(tx, 0) + MAX(vmsup_json_object_get_int(stats, "tx-bytes", 0), 0);
		}
		refresh->net_rx = rx;
		refresh->net_tx = tx;
	} else if (error != NULL) {
		g_debug("VM '%s': guest-network-get-interfaces: %s",
			refresh->vm->name,
			error->message);
	}
	vmsup_stats_refresh_unref_pending(refresh);
}

/*
 * Samples @vm now unless a refresh is in flight, in which case @waiter (if
 * any) joins it. Each VM refreshes on its own: a slow agent holds up no other.
 */
static void
vmsup_stats_service_refresh(VmsupStatsService *self,
			    VmsupStatsVm *vm,
			    VmsupVmHandles *handles,
			    GTask *waiter)
{
	VmsupStatsRefresh *refresh;
	GPid pid = vmsup_qemu_process_get_pid(handles->process);

	if (waiter != NULL)
		g_ptr_array_add(vm->waiters, g_object_ref(waiter));
	if (vm->refreshing)
		return;
	vm->refreshing = TRUE;

	refresh = g_new0(VmsupStatsRefresh, 1);
	g_weak_ref_init(&refresh->self, self);
	refresh->vm = vmsup_stats_vm_ref(vm);
	refresh->handles = vmsup_vm_handles_ref(handles);
	refresh->cancellable = g_object_ref(self->cancellable);
	refresh->started = g_get_monotonic_time();
	refresh->cpu_percent = -1;
	refresh->memory_bytes = -1;
	refresh->block_read = -1;
	refresh->block_write = -1;
	refresh->net_rx = -1;
	refresh->net_tx = -1;
	/* one for this function, so nothing completes before everything started */
	refresh->pending = 1;

	refresh->pending++;
	vmsup_proc_sample_async(pid,
				vm->vcpu_tids,
				vm->last_sample,
				VMSUP_STATS_CPU_WINDOW_MS,
				refresh->cancellable,
				vmsup_stats_refresh_sample_cb,
				refresh);
	if (vm->vcpu_tids == NULL) {
		refresh->pending++;
		vmsup_stats_qmp_execute_async(handles,
					      "query-cpus-fast",
					      NULL,
					      VMSUP_STATS_QMP_TIMEOUT_MS,
					      refresh->cancellable,
					      vmsup_stats_refresh_cpus_cb,
					      refresh);
	}
	if (handles->qga != NULL) {
		/* held by the gate until the agent is asked or skipped */
		refresh->pending++;
		refresh->agent_gate = 2;
		refresh->pending++;
		vmsup_stats_qmp_execute_async(handles,
					      "query-chardev",
					      NULL,
					      VMSUP_STATS_QMP_TIMEOUT_MS,
					      refresh->cancellable,
					      vmsup_stats_refresh_chardev_cb,
					      refresh);
	}
	refresh->pending++;
	vmsup_stats_qmp_execute_async(handles,
				      "query-status",
				      NULL,
				      VMSUP_STATS_QMP_TIMEOUT_MS,
				      refresh->cancellable,
				      vmsup_stats_refresh_status_cb,
				      refresh);
	refresh->pending++;
	vmsup_stats_qmp_execute_async(handles,
				      "query-memory-size-summary",
				      NULL,
				      VMSUP_STATS_QMP_TIMEOUT_MS,
				      refresh->cancellable,
				      vmsup_stats_refresh_memory_cb,
				      refresh);
	refresh->pending++;
	vmsup_stats_qmp_execute_async(handles,
				      "query-blockstats",
				      NULL,
				      VMSUP_STATS_QMP_TIMEOUT_MS,
				      refresh->cancellable,
				      vmsup_stats_refresh_block_cb,
				      refresh);
	vmsup_stats_refresh_unref_pending(refresh);
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
				      vmsup_stats_copy_flat_object(vm->cache),
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
	g_autoptr(JsonNode) node = vmsup_stats_qmp_execute_finish(res, &error);

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
	vmsup_stats_qmp_execute_async(handles,
				      "query-status",
				      NULL,
				      VMSUP_STATS_QMP_TIMEOUT_MS,
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
		g_task_return_error(task, vmsup_stats_agent_error(ping->name, error));
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
		g_task_return_error(task, vmsup_stats_agent_error(exec->name, error));
		return;
	}
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

void
vmsup_stats_service_exec_async(VmsupStatsService *self,
			       JsonObject *params,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupStatsVm) vm = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	const gchar *name = NULL;
	const gchar *stdin_data;
	JsonArray *array = NULL;
	VmsupStatsExec *exec;
	gint64 timeout_s;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_stats_service_exec_async);
	/* the agent is checked after the arguments, so that a bad request is named as such */
	if (!vmsup_stats_service_resolve(self, task, params, FALSE, &name, &vm, &handles, NULL))
		return;
	exec = g_new0(VmsupStatsExec, 1);
	exec->name = g_strdup(name);
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
	if (handles->qga == NULL) {
		g_task_return_error(task, vmsup_stats_no_agent_error(name));
		return;
	}
	vmsup_stats_vm_mark_active(vm, "vm.exec");
	vmsup_qga_client_exec_async(handles->qga,
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
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* --- vm.ports ---------------------------------------------------------------- */

typedef struct {
	VmsupGuestListener *listener; /* owned */
	gchar *host_address;          /* owned, NULL: no forward */
	guint16 host_port;
	VmsupHttpProbeResult *probe; /* owned, NULL: not probed */
} VmsupStatsPort;

typedef struct {
	gchar *name;
	VmsupVmHandles *handles;
	gchar *tcp;
	gchar *tcp6;
	GPtrArray *ports; /* of VmsupStatsPort */
	GArray *forwards; /* of VmsupStatsForward: what QEMU has now */
	guint next;       /* the port being forwarded */
	guint tries;
	guint16 trying_port; /* host port of the hostfwd_add in flight */
	guint pending;       /* probes in flight */
} VmsupStatsPorts;

static void
vmsup_stats_port_free(VmsupStatsPort *port)
{
	vmsup_guest_listener_free(port->listener);
	g_free(port->host_address);
	vmsup_http_probe_result_free(port->probe);
	g_free(port);
}

static void
vmsup_stats_forward_clear(VmsupStatsForward *forward)
{
	g_free(forward->host_address);
}

static void
vmsup_stats_ports_free(VmsupStatsPorts *data)
{
	g_free(data->name);
	g_clear_pointer(&data->handles, vmsup_vm_handles_unref);
	g_free(data->tcp);
	g_free(data->tcp6);
	g_clear_pointer(&data->ports, g_ptr_array_unref);
	g_clear_pointer(&data->forwards, g_array_unref);
	g_free(data);
}

/*
 * The forwards of HMP "info usernet":
 *   TCP[HOST_FORWARD]  13       127.0.0.1 18124       10.0.2.15  8080     0     0
 */
static GArray *
vmsup_stats_parse_usernet(const gchar *text)
{
	GArray *forwards = g_array_new(FALSE, TRUE, sizeof(VmsupStatsForward));
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	g_array_set_clear_func(forwards, (GDestroyNotify)vmsup_stats_forward_clear);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) words = NULL;
		g_autoptr(GPtrArray) fields = g_ptr_array_new();
		VmsupStatsForward forward = {0};
		guint64 host_port;
		guint64 guest_port;

		if (strstr(lines[i], "TCP[HOST_FORWARD]") == NULL)
			continue;
		words = g_strsplit_set(g_strstrip(lines[i]), " \t", -1);
		for (guint j = 0; words[j] != NULL; j++) {
			if (words[j][0] != '\0')
				g_ptr_array_add(fields, words[j]);
		}
		/* proto, fd, source address, port, dest address, port, ... */
		if (fields->len < 6)
			continue;
		if (!g_ascii_string_to_unsigned(g_ptr_array_index(fields, 3),
						10,
						1,
						G_MAXUINT16,
						&host_port,
						NULL) ||
		    !g_ascii_string_to_unsigned(g_ptr_array_index(fields, 5),
						10,
						1,
						G_MAXUINT16,
						&guest_port,
						NULL))
			continue;
		forward.host_address = g_strdup(g_ptr_array_index(fields, 2));
		forward.host_port = (guint16)host_port;
		forward.guest_port = (guint16)guest_port;
		g_array_append_val(forwards, forward);
	}
	return forwards;
}

static const VmsupStatsForward *
vmsup_stats_ports_find_forward(GArray *forwards, guint16 guest_port)
{
	for (guint i = 0; forwards != NULL && i < forwards->len; i++) {
		const VmsupStatsForward *f = &g_array_index(forwards, VmsupStatsForward, i);
		if (f->guest_port == guest_port)
			return f;
	}
	return NULL;
}

static void
vmsup_stats_ports_finish_result(GTask *task)
{
	VmsupStatsPorts *data = g_task_get_task_data(task);
	JsonObject *result = json_object_new();
	JsonArray *array = json_array_new();

	for (guint i = 0; i < data->ports->len; i++) {
		VmsupStatsPort *port = g_ptr_array_index(data->ports, i);
		JsonObject *obj = json_object_new();
		gboolean web = port->probe != NULL && port->probe->web;

		json_object_set_int_member(obj, "guest_port", port->listener->port);
		json_object_set_string_member(obj, "proto", "tcp");
		json_object_set_string_member(obj, "guest_address", port->listener->address);
		if (port->host_address != NULL) {
			json_object_set_string_member(obj, "host_address", port->host_address);
			json_object_set_int_member(obj, "host_port", port->host_port);
		} else {
			json_object_set_null_member(obj, "host_address");
			json_object_set_null_member(obj, "host_port");
		}
		json_object_set_boolean_member(obj, "web", web);
		if (web) {
			json_object_set_string_member(obj, "scheme", port->probe->scheme);
			json_object_set_string_member(obj, "url", port->probe->url);
		} else {
			json_object_set_null_member(obj, "scheme");
		}
		json_array_add_object_element(array, obj);
	}
	json_object_set_array_member(result, "ports", array);
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

typedef struct {
	GTask *task;          /* owned */
	VmsupStatsPort *port; /* unowned: lives in the task's data */
} VmsupStatsProbeCtx;

static void
vmsup_stats_ports_probe_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsProbeCtx *ctx = user_data;
	g_autoptr(GTask) task = ctx->task;
	VmsupStatsPorts *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	ctx->port->probe = vmsup_http_probe_finish(res, &error);
	if (ctx->port->probe == NULL)
		g_debug("VM '%s': probe of guest port %u: %s",
			data->name,
			ctx->port->listener->port,
			error->message);
	g_free(ctx);
	if (--data->pending == 0)
		vmsup_stats_ports_finish_result(task);
}

static void
vmsup_stats_ports_probe_all(GTask *task)
{
	VmsupStatsService *self = g_task_get_source_object(task);
	VmsupStatsPorts *data = g_task_get_task_data(task);

	/* one for this function */
	data->pending = 1;
	for (guint i = 0; i < data->ports->len; i++) {
		VmsupStatsPort *port = g_ptr_array_index(data->ports, i);
		VmsupStatsProbeCtx *ctx;
		const gchar *address = port->host_address;

		if (address == NULL)
			continue;
		/* a forward bound to every address is reached on loopback */
		if (g_strcmp0(address, "0.0.0.0") == 0 || address[0] == '\0' ||
		    g_strcmp0(address, "*") == 0)
			address = "127.0.0.1";
		ctx = g_new0(VmsupStatsProbeCtx, 1);
		ctx->task = g_object_ref(task);
		ctx->port = port;
		data->pending++;
		vmsup_http_probe_async(address,
				       port->host_port,
				       self->probe_timeout_ms,
				       g_task_get_cancellable(task),
				       vmsup_stats_ports_probe_done_cb,
				       ctx);
	}
	if (--data->pending == 0)
		vmsup_stats_ports_finish_result(task);
}

/* a host port nothing listens on now and that no forward of ours was given */
static guint16
vmsup_stats_service_pick_host_port(VmsupStatsService *self)
{
	for (guint attempt = 0; attempt < 16; attempt++) {
		g_autoptr(GSocket) socket = NULL;
		g_autoptr(GInetAddress) loopback = NULL;
		g_autoptr(GSocketAddress) address = NULL;
		g_autoptr(GSocketAddress) bound = NULL;
		guint16 port;

		socket = g_socket_new(G_SOCKET_FAMILY_IPV4,
				      G_SOCKET_TYPE_STREAM,
				      G_SOCKET_PROTOCOL_TCP,
				      NULL);
		if (socket == NULL)
			return 0;
		loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
		address = g_inet_socket_address_new(loopback, 0);
		if (!g_socket_bind(socket, address, FALSE, NULL))
			return 0;
		bound = g_socket_get_local_address(socket, NULL);
		if (bound == NULL)
			return 0;
		port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
		if (!g_hash_table_contains(self->reserved_ports, GUINT_TO_POINTER(port)))
			return port;
	}
	return 0;
}

static void
vmsup_stats_ports_forward_next(GTask *task_owned);

static void
vmsup_stats_ports_hostfwd_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsService *self = g_task_get_source_object(task);
	VmsupStatsPorts *data = g_task_get_task_data(task);
	VmsupStatsPort *port = g_ptr_array_index(data->ports, data->next);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_qmp_execute_finish(res, &error);
	const gchar *output = NULL;

	if (node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
	    json_node_get_value_type(node) == G_TYPE_STRING)
		output = json_node_get_string(node);
	/* HMP says nothing on success and prints the failure */
	if (node != NULL && output != NULL && output[0] == '\0') {
		VmsupStatsForward forward = {g_strdup("127.0.0.1"),
					     data->trying_port,
					     port->listener->port};
		vmsup_log_vm(G_LOG_LEVEL_INFO,
			     data->name,
			     "VM '%s': guest port %u forwarded from 127.0.0.1:%u",
			     data->name,
			     port->listener->port,
			     data->trying_port);
		port->host_address = g_strdup("127.0.0.1");
		port->host_port = data->trying_port;
		g_array_append_val(data->forwards, forward);
		data->next++;
		data->tries = 0;
		vmsup_stats_ports_forward_next(g_steal_pointer(&task));
		return;
	}
	g_hash_table_remove(self->reserved_ports, GUINT_TO_POINTER(data->trying_port));
	if (error != NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	{
		g_autofree gchar *why =
		    g_strchomp(g_strdup(error != NULL ? error->message : output));
		vmsup_log_vm(G_LOG_LEVEL_DEBUG,
			     data->name,
			     "VM '%s': hostfwd_add for guest port %u failed: %s",
			     data->name,
			     port->listener->port,
			     why != NULL ? why : "no answer");
	}
	/* another VM may have taken the port in between: try another, a few times */
	if (++data->tries >= VMSUP_STATS_FORWARD_TRIES) {
		vmsup_log_vm(G_LOG_LEVEL_WARNING,
			     data->name,
			     "VM '%s': cannot forward guest port %u, ignoring",
			     data->name,
			     port->listener->port);
		data->next++;
		data->tries = 0;
	}
	vmsup_stats_ports_forward_next(g_steal_pointer(&task));
}

/* forwards the listeners that have none, one after the other */
static void
vmsup_stats_ports_forward_next(GTask *task_owned)
{
	g_autoptr(GTask) task = task_owned;
	VmsupStatsService *self = g_task_get_source_object(task);
	VmsupStatsPorts *data = g_task_get_task_data(task);
	GCancellable *cancellable;
	g_autoptr(JsonObject) args = NULL;
	g_autofree gchar *command = NULL;

	for (; data->next < data->ports->len; data->next++) {
		VmsupStatsPort *port = g_ptr_array_index(data->ports, data->next);
		const VmsupStatsForward *forward =
		    vmsup_stats_ports_find_forward(data->forwards, port->listener->port);
		if (forward != NULL) {
			/* reuse what QEMU already has */
			port->host_address = g_strdup(forward->host_address);
			port->host_port = forward->host_port;
			continue;
		}
		if (!port->listener->reachable)
			continue;
		if (data->forwards->len >= VMSUP_STATS_MAX_FORWARDS) {
			vmsup_log_vm(G_LOG_LEVEL_WARNING,
				     data->name,
				     "VM '%s' has %u forwards already; not forwarding guest port "
				     "%u, ignoring",
				     data->name,
				     data->forwards->len,
				     port->listener->port);
			continue;
		}
		break;
	}
	if (data->next >= data->ports->len) {
		vmsup_stats_ports_probe_all(task);
		return;
	}

	data->trying_port = vmsup_stats_service_pick_host_port(self);
	if (data->trying_port == 0) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_INTERNAL,
					_("No free TCP port on 127.0.0.1 for a forward to VM '%s'"),
					data->name);
		return;
	}
	/* reserved until the VM stops, so two VMs never get the same port */
	g_hash_table_insert(self->reserved_ports,
			    GUINT_TO_POINTER(data->trying_port),
			    g_strdup(data->name));
	command = g_strdup_printf(
	    "hostfwd_add " VMSUP_STATS_NETDEV_ID " tcp:127.0.0.1:%u-:%u",
	    data->trying_port,
	    ((VmsupStatsPort *)g_ptr_array_index(data->ports, data->next))->listener->port);
	args = json_object_new();
	json_object_set_string_member(args, "command-line", command);
	/* not in the argument list: the steal may be evaluated first */
	cancellable = g_task_get_cancellable(task);
	vmsup_stats_qmp_execute_async(data->handles,
				      "human-monitor-command",
				      args,
				      VMSUP_STATS_QMP_TIMEOUT_MS,
				      cancellable,
				      vmsup_stats_ports_hostfwd_cb,
				      g_steal_pointer(&task));
}

static void
vmsup_stats_ports_usernet_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsPorts *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_qmp_execute_finish(res, &error);

	if (node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
	    json_node_get_value_type(node) == G_TYPE_STRING) {
		data->forwards = vmsup_stats_parse_usernet(json_node_get_string(node));
	} else {
		/* without HMP, the forwards QEMU was started with */
		GArray *started = data->handles->forwards;
		g_debug("VM '%s': info usernet: %s",
			data->name,
			error != NULL ? error->message : "not a string");
		data->forwards = g_array_new(FALSE, TRUE, sizeof(VmsupStatsForward));
		g_array_set_clear_func(data->forwards, (GDestroyNotify)vmsup_stats_forward_clear);
		for (guint i = 0; started != NULL && i < started->len; i++) {
			const VmsupQemuForward *f = &g_array_index(started, VmsupQemuForward, i);
			VmsupStatsForward forward = {g_strdup("127.0.0.1"),
						     f->host_port,
						     f->guest_port};
			g_array_append_val(data->forwards, forward);
		}
	}
	data->next = 0;
	vmsup_stats_ports_forward_next(g_steal_pointer(&task));
}

static void
vmsup_stats_ports_parse_and_forward(GTask *task)
{
	VmsupStatsPorts *data = g_task_get_task_data(task);
	g_autoptr(GPtrArray) listeners = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) args = NULL;

	if (data->tcp == NULL && data->tcp6 == NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("The guest agent of VM '%s' could not read /proc/net/tcp "
					  "nor /proc/net/tcp6; check with 'vmsup health %s'"),
					data->name,
					data->name);
		return;
	}
	listeners = vmsup_guest_ports_parse_all(data->tcp, data->tcp6, &error);
	if (listeners == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	data->ports = g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_stats_port_free);
	for (guint i = 0; i < listeners->len; i++) {
		VmsupStatsPort *port = g_new0(VmsupStatsPort, 1);
		port->listener = g_steal_pointer(&g_ptr_array_index(listeners, i));
		g_ptr_array_add(data->ports, port);
	}
	args = json_object_new();
	json_object_set_string_member(args, "command-line", "info usernet");
	vmsup_stats_qmp_execute_async(data->handles,
				      "human-monitor-command",
				      args,
				      VMSUP_STATS_QMP_TIMEOUT_MS,
				      g_task_get_cancellable(task),
				      vmsup_stats_ports_usernet_cb,
				      g_object_ref(task));
}

static gchar *
vmsup_stats_bytes_to_text(GBytes *bytes)
{
	gsize len = 0;
	const gchar *data = g_bytes_get_data(bytes, &len);
	return g_strndup(data != NULL ? data : "", len);
}

static void
vmsup_stats_ports_read_tcp6_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsPorts *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes =
	    vmsup_qga_client_read_file_finish(VMSUP_QGA_CLIENT(source), res, &error);

	if (bytes != NULL)
		data->tcp6 = vmsup_stats_bytes_to_text(bytes);
	else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
		 vmsup_stats_error_is_timeout(error)) {
		g_task_return_error(task, vmsup_stats_agent_error(data->name, error));
		return;
	} else {
		/* a guest without IPv6 has no tcp6 table */
		g_debug("VM '%s': /proc/net/tcp6: %s", data->name, error->message);
	}
	vmsup_stats_ports_parse_and_forward(task);
}

static void
vmsup_stats_ports_read_tcp_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsPorts *data = g_task_get_task_data(task);
	GCancellable *cancellable;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes =
	    vmsup_qga_client_read_file_finish(VMSUP_QGA_CLIENT(source), res, &error);

	if (bytes != NULL)
		data->tcp = vmsup_stats_bytes_to_text(bytes);
	else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
		 vmsup_stats_error_is_timeout(error)) {
		g_task_return_error(task, vmsup_stats_agent_error(data->name, error));
		return;
	} else {
		g_debug("VM '%s': /proc/net/tcp: %s", data->name, error->message);
	}
	cancellable = g_task_get_cancellable(task);
	vmsup_qga_client_read_file_async(data->handles->qga,
					 "/proc/net/tcp6",
					 VMSUP_STATS_AGENT_READ_TIMEOUT_MS,
					 cancellable,
					 vmsup_stats_ports_read_tcp6_cb,
					 g_steal_pointer(&task));
}

void
vmsup_stats_service_ports_async(VmsupStatsService *self,
				JsonObject *params,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupStatsVm) vm = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	VmsupStatsPorts *data;
	const gchar *name = NULL;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_stats_service_ports_async);
	if (!vmsup_stats_service_resolve(self, task, params, TRUE, &name, &vm, &handles, NULL))
		return;
	vmsup_stats_vm_mark_active(vm, "vm.ports");
	data = g_new0(VmsupStatsPorts, 1);
	data->name = g_strdup(name);
	data->handles = g_steal_pointer(&handles);
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_stats_ports_free);
	vmsup_qga_client_read_file_async(data->handles->qga,
					 "/proc/net/tcp",
					 VMSUP_STATS_AGENT_READ_TIMEOUT_MS,
					 cancellable,
					 vmsup_stats_ports_read_tcp_cb,
					 g_steal_pointer(&task));
}

JsonObject *
vmsup_stats_service_ports_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

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
	vmsup_stats_vm_unref(stop->vm);
	g_object_unref(stop->self);
	g_free(stop);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupStatsStop, vmsup_stats_stop_free)

static gboolean
vmsup_stats_vm_is_stale(VmsupStatsService *self, VmsupStatsVm *vm)
{
	return self->auto_stop_after_s > 0 && vm->tracked && vm->auto_stop &&
	       vmsup_stats_vm_idle_ms(vm) >= (gint64)self->auto_stop_after_s * 1000;
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
	if (handles == NULL || !vmsup_stats_process_alive(handles))
		return;
	if (vmsup_qemu_process_get_pid(handles->process) != vm->pid ||
	    !vmsup_stats_vm_is_stale(self, vm))
		return;

	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     vm->name,
		     "Stopping VM '%s': idle for %" G_GINT64_FORMAT
		     " s (AutoStopStaleAfter=%u, last activity: %s)",
		     vm->name,
		     vmsup_stats_vm_idle_ms(vm) / 1000,
		     self->auto_stop_after_s,
		     vm->active_reason);
	process = handles->process;
	vmsup_qemu_process_stop_async(process,
				      /* force= */ FALSE,
				      VMSUP_STATS_STOP_TIMEOUT_MS,
				      self->cancellable,
				      vmsup_stats_stop_done_cb,
				      g_steal_pointer(&stop));
}

/* lock -> graceful stop -> cleanup_runtime -> unlock; re-checked under the lock */
static void
vmsup_stats_service_begin_stop(VmsupStatsService *self, VmsupStatsVm *vm)
{
	VmsupStatsStop *stop;

	if (vm->stopping || !vmsup_stats_vm_is_stale(self, vm))
		return;
	vm->stopping = TRUE;
	stop = g_new0(VmsupStatsStop, 1);
	stop->self = g_object_ref(self);
	stop->vm = vmsup_stats_vm_ref(vm);
	vmsup_vm_hooks_lock_vm(&self->hooks,
			       vm->name,
			       self->cancellable,
			       vmsup_stats_stop_locked_cb,
			       stop);
}

static gboolean
vmsup_stats_service_sweep_cb(gpointer user_data)
{
	VmsupStatsService *self = user_data;
	g_autoptr(GPtrArray) vms =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_stats_vm_unref);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(vms, vmsup_stats_vm_ref(value));
	for (guint i = 0; i < vms->len; i++) {
		VmsupStatsVm *vm = g_ptr_array_index(vms, i);
		g_autoptr(VmsupVmHandles) handles = NULL;

		if (!vm->tracked || !vm->auto_stop || vm->stopping)
			continue;
		if (vmsup_vm_hooks_vm_alive(&self->hooks, vm->name))
			handles = vmsup_vm_hooks_vm_handles(&self->hooks, vm->name);
		if (handles == NULL || !vmsup_stats_process_alive(handles)) {
			vmsup_stats_service_see_pid(self, vm, 0);
			continue;
		}
		vmsup_stats_service_see_pid(self, vm, vmsup_qemu_process_get_pid(handles->process));
		if (!vmsup_stats_vm_is_stale(self, vm))
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
	g_autoptr(GPtrArray) vms =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_stats_vm_unref);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(vms, vmsup_stats_vm_ref(value));
	for (guint i = 0; i < vms->len; i++) {
		VmsupStatsVm *vm = g_ptr_array_index(vms, i);
		g_autoptr(VmsupVmHandles) handles = NULL;

		if (vm->refreshing || vm->stopping)
			continue;
		if (vmsup_vm_hooks_vm_alive(&self->hooks, vm->name))
			handles = vmsup_vm_hooks_vm_handles(&self->hooks, vm->name);
		if (handles == NULL || !vmsup_stats_process_alive(handles)) {
			vmsup_stats_service_see_pid(self, vm, 0);
			continue;
		}
		vmsup_stats_service_see_pid(self, vm, vmsup_qemu_process_get_pid(handles->process));
		vmsup_stats_service_refresh(self, vm, handles, NULL);
	}
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
	vmsup_stats_vm_mark_active(vm, reason != NULL ? reason : "request");
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
	return vmsup_stats_copy_flat_object(vm->cache);
}

JsonObject *
vmsup_stats_service_describe_activity(VmsupStatsService *self, const gchar *name)
{
	VmsupStatsVm *vm;
	JsonObject *obj;
	g_autofree gchar *last_active = NULL;
	gint64 idle_s;
	gint64 active_window_s;

	g_return_val_if_fail(VMSUP_IS_STATS_SERVICE(self), NULL);
	g_return_val_if_fail(name != NULL, NULL);

	vm = vmsup_stats_service_lookup_vm(self, name, FALSE);
	if (vm == NULL)
		return NULL;
	obj = json_object_new();
	idle_s = vmsup_stats_vm_idle_ms(vm) / 1000;
	last_active = vmsup_stats_format_time(vm->last_active_real);
	json_object_set_string_member(obj, "last_active", last_active);
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
					  (GDestroyNotify)vmsup_stats_vm_unref);
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
