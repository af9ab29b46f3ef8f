/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VmsupStatsService, the refresh: one sample of one VM (/proc, QMP, the
 * guest agent), shared by vm.stats, the poller and the sweep; it keeps the
 * per-VM cache and notes guest activity.
 */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include <string.h>

#include "vmsup-json.h"
#include "vmsup-stats-service-private.h"

/* a closed agent port of a QEMU that sends no VSERPORT_CHANGE (started without the port id) */
#define VMSUP_STATS_PORT_RECHECK_MS 30000

/* --- refresh: one sample of one VM, shared by vm.stats, the poller and the sweep --- */

typedef struct {
	GWeakRef self;
	VmsupStatsVm *vm;
	VmsupVmHandles *handles;
	GCancellable *cancellable;
	guint pending;
	gint64 started;
	VmsupProcSample sample; /* pid 0 when /proc could not be read */
	gdouble cpu_percent;    /* -1 unknown */
	gint64 block_read;
	gint64 block_write;
	gint64 net_rx;
	gint64 net_tx;
	/* QMP answers still to come before the agent is asked */
	guint agent_gate;
} VmsupStatsRefresh;

static void
vmsup_stats_refresh_free(VmsupStatsRefresh *refresh)
{
	g_weak_ref_clear(&refresh->self);
	vmsup_stats_service_vm_unref(refresh->vm);
	vmsup_vm_handles_unref(refresh->handles);
	g_clear_object(&refresh->cancellable);
	g_free(refresh);
}

/* --- what QMP said of the process, kept by its events --------------------- */

/* stops listening to the VM's QMP; what its events kept up to date is void */
static void
vmsup_stats_vm_unfollow_qmp(VmsupStatsVm *vm)
{
	if (vm->qmp != NULL) {
		g_signal_handler_disconnect(vm->qmp, vm->event_id);
		vm->event_id = 0;
		g_clear_object(&vm->qmp);
	}
	g_clear_pointer(&vm->run_status, g_free);
	vm->memory_bytes = -1;
	vm->agent_port = VMSUP_STATS_PORT_UNKNOWN;
}

void
vmsup_stats_service_vm_forget_process(VmsupStatsVm *vm)
{
	vmsup_stats_vm_unfollow_qmp(vm);
	g_clear_pointer(&vm->proc, vmsup_proc_watch_free);
	vm->vcpus_asked = FALSE;
	memset(&vm->last_sample, 0, sizeof(vm->last_sample));
	memset(&vm->activity_base, 0, sizeof(vm->activity_base));
	vm->agent_port_asked = 0;
	g_clear_pointer(&vm->cache, json_object_unref);
	vm->net_bytes = -1;
}

static void
vmsup_stats_vm_qmp_event_cb(VmsupQmpClient *qmp,
			    const gchar *name,
			    JsonObject *data,
			    gint64 timestamp_us,
			    gpointer user_data)
{
	VmsupStatsVm *vm = user_data;

	if (g_str_equal(name, "VSERPORT_CHANGE")) {
		if (data != NULL && g_strcmp0(vmsup_json_object_get_string(data, "id", NULL),
					      VMSUP_QEMU_QGA_PORT) == 0)
			vm->agent_port = vmsup_json_object_get_bool(data, "open", FALSE)
					     ? VMSUP_STATS_PORT_OPEN
					     : VMSUP_STATS_PORT_CLOSED;
	} else if (g_str_equal(name, "DEVICE_ADDED") || g_str_equal(name, "DEVICE_DELETED")) {
		vm->memory_bytes = -1;
	} else if (g_str_equal(name, "STOP") || g_str_equal(name, "RESUME") ||
		   g_str_equal(name, "SHUTDOWN") || g_str_equal(name, "RESET") ||
		   g_str_equal(name, "SUSPEND") || g_str_equal(name, "WAKEUP") ||
		   g_str_equal(name, "GUEST_PANICKED")) {
		/* the run state changed: the next sample asks for it */
		g_clear_pointer(&vm->run_status, g_free);
	}
}

/* listens to @qmp from now on; anything learnt from another connection is void */
static void
vmsup_stats_vm_follow_qmp(VmsupStatsVm *vm, VmsupQmpClient *qmp)
{
	if (vm->qmp == qmp)
		return;
	vmsup_stats_vm_unfollow_qmp(vm);
	if (qmp == NULL)
		return;
	vm->qmp = g_object_ref(qmp);
	vm->event_id =
	    g_signal_connect(qmp, "event", G_CALLBACK(vmsup_stats_vm_qmp_event_cb), vm);
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

/* the answer still counts: the process sampled is the one the VM runs as */
static gboolean
vmsup_stats_refresh_current(VmsupStatsRefresh *refresh)
{
	return refresh->vm->pid == vmsup_qemu_process_get_pid(refresh->handles->process);
}

static JsonObject *
vmsup_stats_refresh_build(VmsupStatsRefresh *refresh)
{
	VmsupStatsVm *vm = refresh->vm;
	JsonObject *obj = json_object_new();
	g_autofree gchar *sampled_at = vmsup_stats_service_format_time(g_get_real_time());
	const gchar *state = vmsup_stats_map_run_state(vm->run_status);
	gboolean sampled = refresh->sample.pid != 0;

	if (state != NULL)
		json_object_set_string_member(obj, "state", state);
	else
		json_object_set_null_member(obj, "state");
	vmsup_stats_service_set_double_or_null(obj, "cpu_percent", refresh->cpu_percent);
	vmsup_stats_service_set_int_or_null(obj,
					    "rss_bytes",
					    sampled ? (gint64)refresh->sample.rss_bytes : -1);
	vmsup_stats_service_set_int_or_null(
	    obj,
	    "memory_mib",
	    vm->memory_bytes >= 0 ? vm->memory_bytes / (1024 * 1024) : -1);
	vmsup_stats_service_set_int_or_null(obj, "block_read_bytes", refresh->block_read);
	vmsup_stats_service_set_int_or_null(obj, "block_write_bytes", refresh->block_write);
	vmsup_stats_service_set_int_or_null(obj, "net_rx_bytes", refresh->net_rx);
	vmsup_stats_service_set_int_or_null(obj, "net_tx_bytes", refresh->net_tx);
	vmsup_stats_service_set_double_or_null(obj,
					       "uptime_s",
					       sampled ? refresh->sample.uptime_s : -1);
	json_object_set_string_member(obj, "sampled_at", sampled_at);
	return obj;
}

/* guest CPU and network since the last activity window: is anybody using the VM? */
static void
vmsup_stats_refresh_note_guest_activity(VmsupStatsRefresh *refresh)
{
	VmsupStatsVm *vm = refresh->vm;
	const VmsupProcSample *sample = &refresh->sample;

	if (sample->pid != 0) {
		if (vm->activity_base.pid != sample->pid) {
			vm->activity_base = *sample;
		} else if (sample->sampled_at - vm->activity_base.sampled_at >=
			   VMSUP_STATS_ACTIVITY_WINDOW_MS * 1000) {
			gdouble vcpu = vmsup_proc_sample_cpu_percent(&vm->activity_base, sample, TRUE);
			if (vcpu >= VMSUP_STATS_ACTIVE_CPU_PERCENT)
				vmsup_stats_service_vm_mark_active(vm, "guest-cpu");
			vm->activity_base = *sample;
		}
	}
	if (refresh->net_rx >= 0 && refresh->net_tx >= 0) {
		gint64 bytes = refresh->net_rx + refresh->net_tx;
		if (vm->net_bytes >= 0 && bytes - vm->net_bytes >= VMSUP_STATS_ACTIVE_NET_BYTES)
			vmsup_stats_service_vm_mark_active(vm, "network");
		/* counters restart with the guest: take the new base either way */
		vm->net_bytes = bytes;
	}
}

static void
vmsup_stats_refresh_complete(VmsupStatsRefresh *refresh)
{
	g_autoptr(VmsupStatsService) self = g_weak_ref_get(&refresh->self);
	VmsupStatsVm *vm = refresh->vm;
	g_autoptr(GPtrArray) waiters = g_steal_pointer(&vm->waiters);
	g_autoptr(JsonObject) result = NULL;
	gboolean alive = vmsup_stats_service_process_alive(refresh->handles);

	vm->waiters = g_ptr_array_new_with_free_func(g_object_unref);
	vm->refreshing = FALSE;

	if (alive && vmsup_stats_refresh_current(refresh)) {
		result = vmsup_stats_refresh_build(refresh);
		vmsup_stats_refresh_note_guest_activity(refresh);
		if (refresh->sample.pid != 0)
			vm->last_sample = refresh->sample;
		g_clear_pointer(&vm->cache, json_object_unref);
		vm->cache = json_object_ref(result);
		vm->cache_mono = g_get_monotonic_time();
		g_debug("VM '%s' sampled in %" G_GINT64_FORMAT " us",
			vm->name,
			g_get_monotonic_time() - refresh->started);
	}

	for (guint i = 0; i < waiters->len; i++) {
		GTask *task = g_ptr_array_index(waiters, i);
		if (result == NULL)
			g_task_return_error(task, vmsup_stats_service_not_running_error(vm->name));
		else
			g_task_return_pointer(task,
					      vmsup_stats_service_copy_flat_object(result),
					      (GDestroyNotify)json_object_unref);
	}

	if (result != NULL && self != NULL)
		vmsup_stats_service_emit_stats_changed(self, vm->name, result);

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

/* /proc now; the CPU use since the last sample, or since QEMU started */
static void
vmsup_stats_refresh_read_proc(VmsupStatsRefresh *refresh, GPid pid)
{
	VmsupStatsVm *vm = refresh->vm;
	g_autoptr(GError) error = NULL;

	if (vm->proc == NULL || vmsup_proc_watch_get_pid(vm->proc) != pid) {
		g_clear_pointer(&vm->proc, vmsup_proc_watch_free);
		vm->proc = vmsup_proc_watch_new(NULL, pid, &error);
	}
	if (vm->proc == NULL || !vmsup_proc_watch_sample(vm->proc, &refresh->sample, &error)) {
		g_debug("VM '%s': no /proc sample: %s", vm->name, error->message);
		memset(&refresh->sample, 0, sizeof(refresh->sample));
		return;
	}
	refresh->cpu_percent =
	    vmsup_proc_sample_cpu_percent(vm->last_sample.pid == pid ? &vm->last_sample : NULL,
					  &refresh->sample,
					  FALSE);
}

static void
vmsup_stats_refresh_net_cb(GObject *source, GAsyncResult *res, gpointer user_data);

/*
 * Asks the agent for the network counters once QMP said it can answer: the
 * vCPUs run and a guest program has the agent port open. Anything else would
 * only wait for the agent's timeout, and the counters stay null. Unknown (a
 * QMP query failed) is asked. Called by each QMP answer it waits for, whose
 * callers still hold their own pending reference.
 */
static void
vmsup_stats_refresh_agent_gate(VmsupStatsRefresh *refresh)
{
	VmsupStatsVm *vm = refresh->vm;

	if (refresh->agent_gate == 0 || --refresh->agent_gate > 0)
		return;
	if (vm->agent_port == VMSUP_STATS_PORT_CLOSED ||
	    (vm->run_status != NULL && g_strcmp0(vm->run_status, "running") != 0)) {
		g_debug("VM '%s': guest agent not asked (%s)",
			vm->name,
			vm->agent_port == VMSUP_STATS_PORT_CLOSED ? "agent port closed"
								  : vm->run_status);
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
	g_autoptr(JsonNode) node = vmsup_stats_service_qmp_execute_finish(res, &error);

	if (node != NULL && JSON_NODE_HOLDS_ARRAY(node) && vmsup_stats_refresh_current(refresh)) {
		JsonArray *chardevs = json_node_get_array(node);
		for (guint i = 0; i < json_array_get_length(chardevs); i++) {
			JsonNode *element = json_array_get_element(chardevs, i);
			JsonObject *chardev;
			if (!JSON_NODE_HOLDS_OBJECT(element))
				continue;
			chardev = json_node_get_object(element);
			if (g_strcmp0(vmsup_json_object_get_string(chardev, "label", NULL),
				      VMSUP_QEMU_QGA_CHARDEV) != 0 ||
			    !json_object_has_member(chardev, "frontend-open"))
				continue;
			refresh->vm->agent_port = vmsup_json_object_get_bool(chardev,
									     "frontend-open",
									     FALSE)
						      ? VMSUP_STATS_PORT_OPEN
						      : VMSUP_STATS_PORT_CLOSED;
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
	g_autoptr(JsonNode) node = vmsup_stats_service_qmp_execute_finish(res, &error);

	if (node != NULL && JSON_NODE_HOLDS_OBJECT(node) && vmsup_stats_refresh_current(refresh)) {
		const gchar *status =
		    vmsup_json_object_get_string(json_node_get_object(node), "status", NULL);
		g_free(refresh->vm->run_status);
		refresh->vm->run_status = g_strdup(status);
	} else if (error != NULL) {
		g_debug("VM '%s': query-status: %s", refresh->vm->name, error->message);
	}
	vmsup_stats_refresh_agent_gate(refresh);
	vmsup_stats_refresh_unref_pending(refresh);
}

static void
vmsup_stats_refresh_memory_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsRefresh *refresh = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_service_qmp_execute_finish(res, &error);

	if (node != NULL && JSON_NODE_HOLDS_OBJECT(node) && vmsup_stats_refresh_current(refresh)) {
		JsonObject *obj = json_node_get_object(node);
		gint64 base = vmsup_json_object_get_int(obj, "base-memory", -1);
		gint64 plugged = vmsup_json_object_get_int(obj, "plugged-memory", 0);
		if (base >= 0)
			refresh->vm->memory_bytes = base + MAX(plugged, 0);
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
	g_autoptr(JsonNode) node = vmsup_stats_service_qmp_execute_finish(res, &error);

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
	VmsupStatsVm *vm = refresh->vm;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_service_qmp_execute_finish(res, &error);
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
		/* kept for the next samples of the same process */
		if (tids->len > 0 && vm->proc != NULL &&
		    vmsup_proc_watch_get_pid(vm->proc) == vm->pid && vmsup_stats_refresh_current(refresh))
			vmsup_proc_watch_set_vcpu_tids(vm->proc, tids);
	} else if (error != NULL) {
		g_debug("VM '%s': query-cpus-fast: %s", vm->name, error->message);
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
		/* the guest may have closed the port: ask QMP again next time */
		if (vmsup_stats_refresh_current(refresh))
			refresh->vm->agent_port = VMSUP_STATS_PORT_UNKNOWN;
	}
	vmsup_stats_refresh_unref_pending(refresh);
}

static void
vmsup_stats_refresh_ask_qmp(VmsupStatsRefresh *refresh,
			    const gchar *command,
			    gboolean gates_agent,
			    GAsyncReadyCallback callback)
{
	refresh->pending++;
	if (gates_agent)
		refresh->agent_gate++;
	vmsup_stats_service_qmp_execute_async(refresh->handles,
					      command,
					      NULL,
					      refresh->cancellable,
					      callback,
					      refresh);
}

/*
 * Samples @vm now unless a refresh is in flight, in which case @waiter (if
 * any) joins it. Each VM refreshes on its own: a slow agent holds up no other.
 * /proc is read at once; of QMP, only the block counters are asked every
 * time, the rest once per process and again after an event that changes it.
 */
void
vmsup_stats_service_refresh(VmsupStatsService *self,
			    VmsupStatsVm *vm,
			    VmsupVmHandles *handles,
			    GTask *waiter)
{
	VmsupStatsRefresh *refresh;
	GPid pid = vmsup_qemu_process_get_pid(handles->process);
	gint64 now = g_get_monotonic_time();

	if (waiter != NULL)
		g_ptr_array_add(vm->waiters, g_object_ref(waiter));
	if (vm->refreshing)
		return;
	vm->refreshing = TRUE;

	refresh = g_new0(VmsupStatsRefresh, 1);
	g_weak_ref_init(&refresh->self, self);
	refresh->vm = vmsup_stats_service_vm_ref(vm);
	refresh->handles = vmsup_vm_handles_ref(handles);
	refresh->cancellable = g_object_ref(self->cancellable);
	refresh->started = now;
	refresh->cpu_percent = -1;
	refresh->block_read = -1;
	refresh->block_write = -1;
	refresh->net_rx = -1;
	refresh->net_tx = -1;
	/* one for this function, so nothing completes before everything started */
	refresh->pending = 1;

	vmsup_stats_vm_follow_qmp(vm, vmsup_qemu_process_get_qmp(handles->process));
	vmsup_stats_refresh_read_proc(refresh, pid);

	if (vm->proc != NULL && !vmsup_proc_watch_has_vcpu_tids(vm->proc) && !vm->vcpus_asked) {
		vm->vcpus_asked = TRUE;
		vmsup_stats_refresh_ask_qmp(refresh, "query-cpus-fast", FALSE, vmsup_stats_refresh_cpus_cb);
	}
	if (handles->qga != NULL) {
		/* held by the gate until the agent is asked or skipped */
		refresh->pending++;
		refresh->agent_gate = 1;
		if (vm->agent_port == VMSUP_STATS_PORT_UNKNOWN ||
		    (vm->agent_port == VMSUP_STATS_PORT_CLOSED &&
		     now - vm->agent_port_asked >= VMSUP_STATS_PORT_RECHECK_MS * 1000)) {
			vm->agent_port_asked = now;
			vmsup_stats_refresh_ask_qmp(refresh,
						    "query-chardev",
						    TRUE,
						    vmsup_stats_refresh_chardev_cb);
		}
	}
	if (vm->run_status == NULL)
		vmsup_stats_refresh_ask_qmp(refresh,
					    "query-status",
					    handles->qga != NULL,
					    vmsup_stats_refresh_status_cb);
	if (vm->memory_bytes < 0)
		vmsup_stats_refresh_ask_qmp(refresh,
					    "query-memory-size-summary",
					    FALSE,
					    vmsup_stats_refresh_memory_cb);
	vmsup_stats_refresh_ask_qmp(refresh, "query-blockstats", FALSE, vmsup_stats_refresh_block_cb);
	if (handles->qga != NULL)
		vmsup_stats_refresh_agent_gate(refresh);
	vmsup_stats_refresh_unref_pending(refresh);
}
