/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One VM's sampler: a refresh reads /proc at once and, of QMP, asks only
 * for the block counters every time, the rest once per process and again
 * after an event that changes it; the guest agent is asked for the network
 * counters only when QMP says it can answer. vm.stats, the poller and the
 * sweep share the refresh in flight.
 */

#include "config.h"

#include <string.h>
#include <unistd.h>

#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-proc-stat.h"
#include "vmsup-stats-errors.h"
#include "vmsup-stats-json.h"
#include "vmsup-stats-qmp.h"
#include "vmsup-stats-sampler.h"

/* a closed agent port of a QEMU that sends no VSERPORT_CHANGE (started without the port id) */
#define VMSUP_STATS_PORT_RECHECK_MS 30000

/* the guest agent's port as QMP reports it (query-chardev, VSERPORT_CHANGE) */
typedef enum {
	VMSUP_STATS_SAMPLER_PORT_UNKNOWN,
	VMSUP_STATS_SAMPLER_PORT_CLOSED,
	VMSUP_STATS_SAMPLER_PORT_OPEN,
} VmsupStatsSamplerPort;

struct _VmsupStatsSampler {
	GObject parent_instance;
	gchar *name;
	gboolean tracked;   /* told by the wiring: the VM exists */
	gboolean auto_stop; /* the sweep may stop it */
	GPid pid;           /* the QEMU last seen; another pid is a (re)start */
	gint64 last_active_mono;
	gint64 last_active_real;
	gchar *last_active_text; /* ISO 8601 of @last_active_real, made when first asked */
	gchar *active_reason;
	gboolean refreshing;
	GPtrArray *waiters;            /* of GTask waiting for the refresh in flight */
	VmsupProcWatch *proc;          /* owned: the /proc files of @pid, nullable */
	gboolean vcpus_asked;          /* query-cpus-fast sent for @pid */
	VmsupProcSample last_sample;   /* base of the next CPU window; pid 0: none */
	VmsupProcSample activity_base; /* base of the activity window; pid 0: none */
	gint64 net_bytes;              /* rx + tx of the guest at the last sample, -1 unknown */
	/*
	 * What QMP said of @pid, kept up to date by its events, so a sample
	 * asks only for what changes without one (block and network counters)
	 */
	VmsupQmpClient *qmp; /* owned: whose "event" signal @event_id is */
	gulong event_id;
	gchar *run_status;   /* query-status, NULL: ask (again) */
	gint64 memory_bytes; /* query-memory-size-summary, -1: ask (again) */
	VmsupStatsSamplerPort agent_port;
	gint64 agent_port_asked; /* monotonic time of the last query-chardev */
	JsonObject *cache;       /* owned: the last vm.stats result */
	gint64 cache_mono;
	gdouble agent_rtt_s; /* the last guest agent call of a refresh, -1: none */
};

G_DEFINE_FINAL_TYPE(VmsupStatsSampler, vmsup_stats_sampler, G_TYPE_OBJECT)

enum { SIGNAL_SAMPLED, N_SIGNALS };
static guint signals[N_SIGNALS] = {0};

/* one sample of one VM */
typedef struct {
	VmsupStatsSampler *sampler; /* owned */
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
	gint64 agent_asked; /* monotonic */
} VmsupStatsRefresh;

static void
vmsup_stats_refresh_free(VmsupStatsRefresh *refresh)
{
	g_object_unref(refresh->sampler);
	vmsup_vm_handles_unref(refresh->handles);
	g_clear_object(&refresh->cancellable);
	g_free(refresh);
}

/* --- what QMP said of the process, kept by its events --------------------- */

/* stops listening to the VM's QMP; what its events kept up to date is void */
static void
vmsup_stats_sampler_unfollow_qmp(VmsupStatsSampler *self)
{
	if (self->qmp != NULL) {
		g_signal_handler_disconnect(self->qmp, self->event_id);
		self->event_id = 0;
		g_clear_object(&self->qmp);
	}
	g_clear_pointer(&self->run_status, g_free);
	self->memory_bytes = -1;
	self->agent_port = VMSUP_STATS_SAMPLER_PORT_UNKNOWN;
}

/* forgets what was learnt of the QEMU process the VM ran as */
static void
vmsup_stats_sampler_forget_process(VmsupStatsSampler *self)
{
	vmsup_stats_sampler_unfollow_qmp(self);
	g_clear_pointer(&self->proc, vmsup_proc_watch_free);
	self->vcpus_asked = FALSE;
	memset(&self->last_sample, 0, sizeof(self->last_sample));
	memset(&self->activity_base, 0, sizeof(self->activity_base));
	self->agent_port_asked = 0;
	g_clear_pointer(&self->cache, json_object_unref);
	self->net_bytes = -1;
	self->agent_rtt_s = -1;
}

static void
vmsup_stats_sampler_qmp_event_cb(VmsupQmpClient *qmp,
				 const gchar *name,
				 JsonObject *data,
				 gint64 timestamp_us,
				 gpointer user_data)
{
	VmsupStatsSampler *self = user_data;

	if (g_str_equal(name, "VSERPORT_CHANGE")) {
		if (data != NULL && g_strcmp0(vmsup_json_object_get_string(data, "id", NULL),
					      VMSUP_QEMU_QGA_PORT) == 0)
			self->agent_port = vmsup_json_object_get_bool(data, "open", FALSE)
					       ? VMSUP_STATS_SAMPLER_PORT_OPEN
					       : VMSUP_STATS_SAMPLER_PORT_CLOSED;
	} else if (g_str_equal(name, "DEVICE_ADDED") || g_str_equal(name, "DEVICE_DELETED")) {
		self->memory_bytes = -1;
	} else if (g_str_equal(name, "STOP") || g_str_equal(name, "RESUME") ||
		   g_str_equal(name, "SHUTDOWN") || g_str_equal(name, "RESET") ||
		   g_str_equal(name, "SUSPEND") || g_str_equal(name, "WAKEUP") ||
		   g_str_equal(name, "GUEST_PANICKED")) {
		/* the run state changed: the next sample asks for it */
		g_clear_pointer(&self->run_status, g_free);
	}
}

/* listens to @qmp from now on; anything learnt from another connection is void */
static void
vmsup_stats_sampler_follow_qmp(VmsupStatsSampler *self, VmsupQmpClient *qmp)
{
	if (self->qmp == qmp)
		return;
	vmsup_stats_sampler_unfollow_qmp(self);
	if (qmp == NULL)
		return;
	self->qmp = g_object_ref(qmp);
	self->event_id =
	    g_signal_connect(qmp, "event", G_CALLBACK(vmsup_stats_sampler_qmp_event_cb), self);
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
	return refresh->sampler->pid == vmsup_qemu_process_get_pid(refresh->handles->process);
}

static JsonObject *
vmsup_stats_refresh_build(VmsupStatsRefresh *refresh)
{
	VmsupStatsSampler *self = refresh->sampler;
	JsonObject *obj = json_object_new();
	g_autofree gchar *sampled_at = vmsup_stats_json_format_time(g_get_real_time());
	const gchar *state = vmsup_stats_map_run_state(self->run_status);
	gboolean sampled = refresh->sample.pid != 0;

	if (state != NULL)
		json_object_set_string_member(obj, "state", state);
	else
		json_object_set_null_member(obj, "state");
	vmsup_stats_json_set_double_or_null(obj, "cpu_percent", refresh->cpu_percent);
	vmsup_stats_json_set_int_or_null(obj,
					 "rss_bytes",
					 sampled ? (gint64)refresh->sample.rss_bytes : -1);
	vmsup_stats_json_set_int_or_null(
	    obj,
	    "memory_mib",
	    self->memory_bytes >= 0 ? self->memory_bytes / (1024 * 1024) : -1);
	vmsup_stats_json_set_int_or_null(obj, "block_read_bytes", refresh->block_read);
	vmsup_stats_json_set_int_or_null(obj, "block_write_bytes", refresh->block_write);
	vmsup_stats_json_set_int_or_null(obj, "net_rx_bytes", refresh->net_rx);
	vmsup_stats_json_set_int_or_null(obj, "net_tx_bytes", refresh->net_tx);
	vmsup_stats_json_set_double_or_null(obj,
					    "uptime_s",
					    sampled ? refresh->sample.uptime_s : -1);
	json_object_set_string_member(obj, "sampled_at", sampled_at);
	return obj;
}

/* guest CPU and network since the last activity window: is anybody using the VM? */
static void
vmsup_stats_refresh_note_guest_activity(VmsupStatsRefresh *refresh)
{
	VmsupStatsSampler *self = refresh->sampler;
	const VmsupProcSample *sample = &refresh->sample;

	if (sample->pid != 0) {
		if (self->activity_base.pid != sample->pid) {
			self->activity_base = *sample;
		} else if (sample->sampled_at - self->activity_base.sampled_at >=
			   VMSUP_STATS_ACTIVITY_WINDOW_MS * 1000) {
			gdouble vcpu =
			    vmsup_proc_sample_cpu_percent(&self->activity_base, sample, TRUE);
			if (vcpu >= VMSUP_STATS_ACTIVE_CPU_PERCENT)
				vmsup_stats_sampler_mark_active(self, "guest-cpu");
			self->activity_base = *sample;
		}
	}
	if (refresh->net_rx >= 0 && refresh->net_tx >= 0) {
		gint64 bytes = refresh->net_rx + refresh->net_tx;
		if (self->net_bytes >= 0 && bytes - self->net_bytes >= VMSUP_STATS_ACTIVE_NET_BYTES)
			vmsup_stats_sampler_mark_active(self, "network");
		/* counters restart with the guest: take the new base either way */
		self->net_bytes = bytes;
	}
}

static void
vmsup_stats_refresh_complete(VmsupStatsRefresh *refresh)
{
	VmsupStatsSampler *self = refresh->sampler;
	g_autoptr(GPtrArray) waiters = g_steal_pointer(&self->waiters);
	g_autoptr(JsonObject) result = NULL;
	gboolean alive = vmsup_stats_qmp_process_alive(refresh->handles);

	self->waiters = g_ptr_array_new_with_free_func(g_object_unref);
	self->refreshing = FALSE;

	if (alive && vmsup_stats_refresh_current(refresh)) {
		result = vmsup_stats_refresh_build(refresh);
		vmsup_stats_refresh_note_guest_activity(refresh);
		if (refresh->sample.pid != 0)
			self->last_sample = refresh->sample;
		g_clear_pointer(&self->cache, json_object_unref);
		self->cache = json_object_ref(result);
		self->cache_mono = g_get_monotonic_time();
		g_debug("VM '%s' sampled in %" G_GINT64_FORMAT " us",
			self->name,
			g_get_monotonic_time() - refresh->started);
	}

	/* whoever follows the VM knows before the waiters answer */
	if (result != NULL)
		g_signal_emit(self, signals[SIGNAL_SAMPLED], 0, result);

	for (guint i = 0; i < waiters->len; i++) {
		GTask *task = g_ptr_array_index(waiters, i);
		if (result == NULL)
			g_task_return_error(task, vmsup_stats_error_not_running(self->name));
		else
			g_task_return_pointer(task,
					      vmsup_stats_json_copy_flat(result),
					      (GDestroyNotify)json_object_unref);
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
	VmsupStatsSampler *self = refresh->sampler;
	g_autoptr(GError) error = NULL;

	if (self->proc == NULL || vmsup_proc_watch_get_pid(self->proc) != pid) {
		g_clear_pointer(&self->proc, vmsup_proc_watch_free);
		self->proc = vmsup_proc_watch_new(NULL, pid, &error);
	}
	if (self->proc == NULL || !vmsup_proc_watch_sample(self->proc, &refresh->sample, &error)) {
		g_debug("VM '%s': no /proc sample: %s", self->name, error->message);
		memset(&refresh->sample, 0, sizeof(refresh->sample));
		return;
	}
	refresh->cpu_percent =
	    vmsup_proc_sample_cpu_percent(self->last_sample.pid == pid ? &self->last_sample : NULL,
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
	VmsupStatsSampler *self = refresh->sampler;

	if (refresh->agent_gate == 0 || --refresh->agent_gate > 0)
		return;
	if (self->agent_port == VMSUP_STATS_SAMPLER_PORT_CLOSED ||
	    (self->run_status != NULL && g_strcmp0(self->run_status, "running") != 0)) {
		g_debug("VM '%s': guest agent not asked (%s)",
			self->name,
			self->agent_port == VMSUP_STATS_SAMPLER_PORT_CLOSED ? "agent port closed"
									    : self->run_status);
		vmsup_stats_refresh_unref_pending(refresh);
		return;
	}
	/* the gate's pending reference passes to the agent call */
	refresh->agent_asked = g_get_monotonic_time();
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
			refresh->sampler->agent_port =
			    vmsup_json_object_get_bool(chardev, "frontend-open", FALSE)
				? VMSUP_STATS_SAMPLER_PORT_OPEN
				: VMSUP_STATS_SAMPLER_PORT_CLOSED;
			break;
		}
	} else if (error != NULL) {
		g_debug("VM '%s': query-chardev: %s", refresh->sampler->name, error->message);
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

	if (node != NULL && JSON_NODE_HOLDS_OBJECT(node) && vmsup_stats_refresh_current(refresh)) {
		const gchar *status =
		    vmsup_json_object_get_string(json_node_get_object(node), "status", NULL);
		g_free(refresh->sampler->run_status);
		refresh->sampler->run_status = g_strdup(status);
	} else if (error != NULL) {
		g_debug("VM '%s': query-status: %s", refresh->sampler->name, error->message);
	}
	vmsup_stats_refresh_agent_gate(refresh);
	vmsup_stats_refresh_unref_pending(refresh);
}

static void
vmsup_stats_refresh_memory_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsRefresh *refresh = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_qmp_execute_finish(res, &error);

	if (node != NULL && JSON_NODE_HOLDS_OBJECT(node) && vmsup_stats_refresh_current(refresh)) {
		JsonObject *obj = json_node_get_object(node);
		gint64 base = vmsup_json_object_get_int(obj, "base-memory", -1);
		gint64 plugged = vmsup_json_object_get_int(obj, "plugged-memory", 0);
		if (base >= 0)
			refresh->sampler->memory_bytes = base + MAX(plugged, 0);
	} else if (error != NULL) {
		g_debug("VM '%s': query-memory-size-summary: %s",
			refresh->sampler->name,
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
		g_debug("VM '%s': query-blockstats: %s", refresh->sampler->name, error->message);
	}
	vmsup_stats_refresh_unref_pending(refresh);
}

static void
vmsup_stats_refresh_cpus_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsRefresh *refresh = user_data;
	VmsupStatsSampler *self = refresh->sampler;
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
		/* kept for the next samples of the same process */
		if (tids->len > 0 && self->proc != NULL &&
		    vmsup_proc_watch_get_pid(self->proc) == self->pid &&
		    vmsup_stats_refresh_current(refresh))
			vmsup_proc_watch_set_vcpu_tids(self->proc, tids);
	} else if (error != NULL) {
		g_debug("VM '%s': query-cpus-fast: %s", self->name, error->message);
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
		if (vmsup_stats_refresh_current(refresh))
			refresh->sampler->agent_rtt_s =
			    (gdouble)(g_get_monotonic_time() - refresh->agent_asked) /
			    G_USEC_PER_SEC;
	} else if (error != NULL) {
		g_debug("VM '%s': guest-network-get-interfaces: %s",
			refresh->sampler->name,
			error->message);
		/* the guest may have closed the port: ask QMP again next time */
		if (vmsup_stats_refresh_current(refresh))
			refresh->sampler->agent_port = VMSUP_STATS_SAMPLER_PORT_UNKNOWN;
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
	vmsup_stats_qmp_execute_async(refresh->handles,
				      command,
				      NULL,
				      refresh->cancellable,
				      callback,
				      refresh);
}

void
vmsup_stats_sampler_refresh_async(VmsupStatsSampler *self,
				  VmsupVmHandles *handles,
				  GCancellable *cancellable,
				  GAsyncReadyCallback callback,
				  gpointer user_data)
{
	VmsupStatsRefresh *refresh;
	GPid pid;
	gint64 now = g_get_monotonic_time();

	g_return_if_fail(VMSUP_IS_STATS_SAMPLER(self));
	g_return_if_fail(handles != NULL);

	{
		GTask *waiter = g_task_new(self, NULL, callback, user_data);
		g_task_set_source_tag(waiter, vmsup_stats_sampler_refresh_async);
		g_ptr_array_add(self->waiters, waiter);
	}
	if (self->refreshing)
		return;
	self->refreshing = TRUE;

	pid = vmsup_qemu_process_get_pid(handles->process);
	refresh = g_new0(VmsupStatsRefresh, 1);
	refresh->sampler = g_object_ref(self);
	refresh->handles = vmsup_vm_handles_ref(handles);
	refresh->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
	refresh->started = now;
	refresh->cpu_percent = -1;
	refresh->block_read = -1;
	refresh->block_write = -1;
	refresh->net_rx = -1;
	refresh->net_tx = -1;
	/* one for this function, so nothing completes before everything started */
	refresh->pending = 1;

	vmsup_stats_sampler_follow_qmp(self, vmsup_qemu_process_get_qmp(handles->process));
	vmsup_stats_refresh_read_proc(refresh, pid);

	if (self->proc != NULL && !vmsup_proc_watch_has_vcpu_tids(self->proc) &&
	    !self->vcpus_asked) {
		self->vcpus_asked = TRUE;
		vmsup_stats_refresh_ask_qmp(refresh,
					    "query-cpus-fast",
					    FALSE,
					    vmsup_stats_refresh_cpus_cb);
	}
	if (handles->qga != NULL) {
		/* held by the gate until the agent is asked or skipped */
		refresh->pending++;
		refresh->agent_gate = 1;
		if (self->agent_port == VMSUP_STATS_SAMPLER_PORT_UNKNOWN ||
		    (self->agent_port == VMSUP_STATS_SAMPLER_PORT_CLOSED &&
		     now - self->agent_port_asked >= VMSUP_STATS_PORT_RECHECK_MS * 1000)) {
			self->agent_port_asked = now;
			vmsup_stats_refresh_ask_qmp(refresh,
						    "query-chardev",
						    TRUE,
						    vmsup_stats_refresh_chardev_cb);
		}
	}
	if (self->run_status == NULL)
		vmsup_stats_refresh_ask_qmp(refresh,
					    "query-status",
					    handles->qga != NULL,
					    vmsup_stats_refresh_status_cb);
	if (self->memory_bytes < 0)
		vmsup_stats_refresh_ask_qmp(refresh,
					    "query-memory-size-summary",
					    FALSE,
					    vmsup_stats_refresh_memory_cb);
	vmsup_stats_refresh_ask_qmp(refresh,
				    "query-blockstats",
				    FALSE,
				    vmsup_stats_refresh_block_cb);
	if (handles->qga != NULL)
		vmsup_stats_refresh_agent_gate(refresh);
	vmsup_stats_refresh_unref_pending(refresh);
}

JsonObject *
vmsup_stats_sampler_refresh_finish(VmsupStatsSampler *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* --- what the service asks of one VM ------------------------------------------ */

const gchar *
vmsup_stats_sampler_get_name(VmsupStatsSampler *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), NULL);
	return self->name;
}

gboolean
vmsup_stats_sampler_get_tracked(VmsupStatsSampler *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), FALSE);
	return self->tracked;
}

void
vmsup_stats_sampler_set_tracked(VmsupStatsSampler *self, gboolean tracked, gboolean auto_stop)
{
	g_return_if_fail(VMSUP_IS_STATS_SAMPLER(self));
	self->tracked = tracked;
	self->auto_stop = auto_stop;
}

gboolean
vmsup_stats_sampler_get_auto_stop(VmsupStatsSampler *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), FALSE);
	return self->auto_stop;
}

GPid
vmsup_stats_sampler_get_pid(VmsupStatsSampler *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), 0);
	return self->pid;
}

gboolean
vmsup_stats_sampler_see_pid(VmsupStatsSampler *self, GPid pid)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), FALSE);

	if (self->pid == pid)
		return FALSE;
	if (pid > 0)
		vmsup_log_vm(G_LOG_LEVEL_DEBUG,
			     self->name,
			     "VM '%s' runs as pid %d",
			     self->name,
			     pid);
	self->pid = pid;
	vmsup_stats_sampler_forget_process(self);
	if (pid > 0)
		vmsup_stats_sampler_mark_active(self, "started");
	return TRUE;
}

void
vmsup_stats_sampler_mark_active(VmsupStatsSampler *self, const gchar *reason)
{
	g_return_if_fail(VMSUP_IS_STATS_SAMPLER(self));
	g_return_if_fail(reason != NULL);

	self->last_active_mono = g_get_monotonic_time();
	self->last_active_real = g_get_real_time();
	g_clear_pointer(&self->last_active_text, g_free);
	if (g_strcmp0(self->active_reason, reason) != 0) {
		g_free(self->active_reason);
		self->active_reason = g_strdup(reason);
	}
}

gint64
vmsup_stats_sampler_get_idle_ms(VmsupStatsSampler *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), 0);
	return (g_get_monotonic_time() - self->last_active_mono) / 1000;
}

const gchar *
vmsup_stats_sampler_get_active_reason(VmsupStatsSampler *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), NULL);
	return self->active_reason;
}

const gchar *
vmsup_stats_sampler_get_last_active(VmsupStatsSampler *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), NULL);

	/* vm.list asks for every VM on each call; the time changes far less often */
	if (self->last_active_text == NULL)
		self->last_active_text = vmsup_stats_json_format_time(self->last_active_real);
	return self->last_active_text;
}

JsonObject *
vmsup_stats_sampler_get_cached(VmsupStatsSampler *self, gint64 *out_age_us)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), NULL);

	if (out_age_us != NULL)
		*out_age_us = self->cache != NULL ? g_get_monotonic_time() - self->cache_mono : 0;
	return self->cache;
}

gdouble
vmsup_stats_sampler_get_cpu_seconds(VmsupStatsSampler *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), -1);
	if (self->last_sample.pid == 0)
		return -1;
	return (gdouble)self->last_sample.ticks / (gdouble)sysconf(_SC_CLK_TCK);
}

gdouble
vmsup_stats_sampler_get_agent_rtt(VmsupStatsSampler *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), -1);
	return self->agent_rtt_s;
}

gboolean
vmsup_stats_sampler_is_refreshing(VmsupStatsSampler *self)
{
	g_return_val_if_fail(VMSUP_IS_STATS_SAMPLER(self), FALSE);
	return self->refreshing;
}

/* --- GObject ------------------------------------------------------------------- */

static void
vmsup_stats_sampler_finalize(GObject *object)
{
	VmsupStatsSampler *self = VMSUP_STATS_SAMPLER(object);

	vmsup_stats_sampler_forget_process(self);
	g_ptr_array_unref(self->waiters);
	g_free(self->active_reason);
	g_free(self->last_active_text);
	g_free(self->name);
	G_OBJECT_CLASS(vmsup_stats_sampler_parent_class)->finalize(object);
}

static void
vmsup_stats_sampler_class_init(VmsupStatsSamplerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->finalize = vmsup_stats_sampler_finalize;

	signals[SIGNAL_SAMPLED] = g_signal_new("sampled",
					       G_TYPE_FROM_CLASS(klass),
					       G_SIGNAL_RUN_LAST,
					       0,
					       NULL,
					       NULL,
					       NULL,
					       G_TYPE_NONE,
					       1,
					       JSON_TYPE_OBJECT);
}

static void
vmsup_stats_sampler_init(VmsupStatsSampler *self)
{
	self->auto_stop = TRUE;
	self->net_bytes = -1;
	self->memory_bytes = -1;
	self->agent_rtt_s = -1;
	self->last_active_mono = g_get_monotonic_time();
	self->last_active_real = g_get_real_time();
	self->active_reason = g_strdup("defined");
	self->waiters = g_ptr_array_new_with_free_func(g_object_unref);
}

VmsupStatsSampler *
vmsup_stats_sampler_new(const gchar *name)
{
	VmsupStatsSampler *self;

	g_return_val_if_fail(name != NULL, NULL);

	self = g_object_new(VMSUP_TYPE_STATS_SAMPLER, NULL);
	self->name = g_strdup(name);
	return self;
}
