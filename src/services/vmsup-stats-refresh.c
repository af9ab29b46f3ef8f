/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VmsupStatsService, the refresh: one sample of one VM (/proc, QMP, the
 * guest agent), shared by vm.stats, the poller and the sweep; it keeps the
 * per-VM cache and notes guest activity.
 */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include "vmsup-json.h"
#include "vmsup-stats-service-private.h"

/* two samples this far apart when there is no previous one */
#define VMSUP_STATS_CPU_WINDOW_MS 200
/* the guest agent's chardev QEMU is started with */
#define VMSUP_STATS_AGENT_CHARDEV_ID "qga0"

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
	vmsup_stats_service_vm_unref(refresh->vm);
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
	g_autofree gchar *sampled_at = vmsup_stats_service_format_time(g_get_real_time());
	const gchar *state = vmsup_stats_map_run_state(refresh->status);

	if (state != NULL)
		json_object_set_string_member(obj, "state", state);
	else
		json_object_set_null_member(obj, "state");
	vmsup_stats_service_set_double_or_null(obj, "cpu_percent", refresh->cpu_percent);
	vmsup_stats_service_set_int_or_null(
	    obj,
	    "rss_bytes",
	    refresh->sample != NULL ? (gint64)refresh->sample->rss_bytes : -1);
	vmsup_stats_service_set_int_or_null(
	    obj,
	    "memory_mib",
	    refresh->memory_bytes >= 0 ? refresh->memory_bytes / (1024 * 1024) : -1);
	vmsup_stats_service_set_int_or_null(obj, "block_read_bytes", refresh->block_read);
	vmsup_stats_service_set_int_or_null(obj, "block_write_bytes", refresh->block_write);
	vmsup_stats_service_set_int_or_null(obj, "net_rx_bytes", refresh->net_rx);
	vmsup_stats_service_set_int_or_null(obj, "net_tx_bytes", refresh->net_tx);
	vmsup_stats_service_set_double_or_null(obj,
					       "uptime_s",
					       refresh->sample != NULL ? refresh->sample->uptime_s
								       : -1);
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
				vmsup_stats_service_vm_mark_active(vm, "guest-cpu");
			*vm->activity_base = *refresh->sample;
			vm->activity_base->threads = NULL;
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
 * QMP query failed) is asked, as before. Called by each QMP answer it waits
 * for (query-status, and query-chardev until the port was seen open), whose
 * callers still hold their own pending reference.
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
	g_autoptr(JsonNode) node = vmsup_stats_service_qmp_execute_finish(res, &error);

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
			refresh->vm->agent_port_open = !refresh->agent_port_closed;
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
	g_autoptr(JsonNode) node = vmsup_stats_service_qmp_execute_finish(res, &error);

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
		/* the guest may have closed the port: ask QMP again next time */
		refresh->vm->agent_port_open = FALSE;
	}
	vmsup_stats_refresh_unref_pending(refresh);
}

/*
 * Samples @vm now unless a refresh is in flight, in which case @waiter (if
 * any) joins it. Each VM refreshes on its own: a slow agent holds up no other.
 */
void
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
	refresh->vm = vmsup_stats_service_vm_ref(vm);
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
		vmsup_stats_service_qmp_execute_async(handles,
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
		refresh->agent_gate = 1;
		/* once the port was seen open and the agent answers, the poller skips this query */
		if (!vm->agent_port_open) {
			refresh->agent_gate++;
			refresh->pending++;
			vmsup_stats_service_qmp_execute_async(handles,
							      "query-chardev",
							      NULL,
							      VMSUP_STATS_QMP_TIMEOUT_MS,
							      refresh->cancellable,
							      vmsup_stats_refresh_chardev_cb,
							      refresh);
		}
	}
	refresh->pending++;
	vmsup_stats_service_qmp_execute_async(handles,
					      "query-status",
					      NULL,
					      VMSUP_STATS_QMP_TIMEOUT_MS,
					      refresh->cancellable,
					      vmsup_stats_refresh_status_cb,
					      refresh);
	refresh->pending++;
	vmsup_stats_service_qmp_execute_async(handles,
					      "query-memory-size-summary",
					      NULL,
					      VMSUP_STATS_QMP_TIMEOUT_MS,
					      refresh->cancellable,
					      vmsup_stats_refresh_memory_cb,
					      refresh);
	refresh->pending++;
	vmsup_stats_service_qmp_execute_async(handles,
					      "query-blockstats",
					      NULL,
					      VMSUP_STATS_QMP_TIMEOUT_MS,
					      refresh->cancellable,
					      vmsup_stats_refresh_block_cb,
					      refresh);
	vmsup_stats_refresh_unref_pending(refresh);
}
