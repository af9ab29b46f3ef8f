/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The series of one scrape: the daemon's counters, the VMs by state, and,
 * where the listener allows, one series per VM and measure. Every value is
 * one the services hold already (the poller's last sample, the VM's state):
 * a scrape costs a walk over the VMs and no I/O.
 */

#include "config.h"

#include <pwd.h>

#include "vmsup-json.h"
#include "vmsup-metrics-collect.h"

void
vmsup_metrics_sources_clear(VmsupMetricsSources *sources)
{
	g_clear_pointer(&sources->owner_names, g_hash_table_unref);
}

/* the user name of @uid, or the number when it has none */
static const gchar *
vmsup_metrics_owner_name(VmsupMetricsSources *sources, guint32 uid)
{
	const gchar *name;
	struct passwd *pw;

	if (sources->owner_names == NULL)
		sources->owner_names = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	name = g_hash_table_lookup(sources->owner_names, GUINT_TO_POINTER(uid));
	if (name != NULL)
		return name;
	pw = getpwuid(uid);
	name = pw != NULL ? g_strdup(pw->pw_name) : g_strdup_printf("%u", uid);
	g_hash_table_insert(sources->owner_names, GUINT_TO_POINTER(uid), (gpointer)name);
	return name;
}

/* one VM's labels and what the stats service knows of it */
typedef struct {
	const VmsupVmSummary *summary;
	const gchar *owner;
	JsonObject *stats; /* owned: vmsup_stats_service_get_metrics() and the summary's */
} VmsupMetricsVm;

static void
vmsup_metrics_vm_clear(gpointer data)
{
	VmsupMetricsVm *vm = data;
	g_clear_pointer(&vm->stats, json_object_unref);
}

/* a per-VM family: its value is @member of the stats, absent when unknown */
typedef struct {
	const gchar *name;
	const gchar *type;
	const gchar *help;
	const gchar *member;
} VmsupMetricsVmFamily;

static const VmsupMetricsVmFamily vmsup_metrics_vm_families[] = {
    {"vmsup_vm_memory_bytes",
     "gauge",
     "Guest memory: what QEMU reports while it runs, the definition's otherwise.",
     "memory_bytes"},
    {"vmsup_vm_boot_to_agent_seconds",
     "gauge",
     "Seconds from the QEMU's start to the guest agent's port opening, in this run.",
     "boot_to_agent_s"},
    {"vmsup_vm_cpu_seconds_total",
     "counter",
     "CPU time the VM's QEMU process used (user and system), in seconds.",
     "cpu_s"},
    {"vmsup_vm_rss_bytes", "gauge", "Resident memory of the VM's QEMU process.", "rss_bytes"},
    {"vmsup_vm_block_read_bytes_total",
     "counter",
     "Bytes the guest read from its disks.",
     "block_read_bytes"},
    {"vmsup_vm_block_write_bytes_total",
     "counter",
     "Bytes the guest wrote to its disks.",
     "block_write_bytes"},
    {"vmsup_vm_network_receive_bytes_total",
     "counter",
     "Bytes the guest received, as its agent counts them (loopback excluded).",
     "net_rx_bytes"},
    {"vmsup_vm_network_transmit_bytes_total",
     "counter",
     "Bytes the guest sent, as its agent counts them (loopback excluded).",
     "net_tx_bytes"},
    {"vmsup_vm_uptime_seconds", "gauge", "Seconds since the VM's QEMU started.", "uptime_s"},
    {"vmsup_vm_agent_rtt_seconds",
     "gauge",
     "Seconds the guest agent took to answer the last sample.",
     "agent_rtt_s"},
    {"vmsup_vm_idle_seconds",
     "gauge",
     "Seconds since a client request or the guest itself last used the VM.",
     "idle_s"},
    {"vmsup_vm_auto_stop_in_seconds",
     "gauge",
     "Seconds until the stale-VM sweep may stop the VM (only where it may).",
     "auto_stop_in_s"},
};

static void
vmsup_metrics_write_vm_family(GString *out, GArray *vms, const VmsupMetricsVmFamily *family)
{
	vmsup_metrics_write_family(out, family->name, family->type, family->help);
	for (guint i = 0; i < vms->len; i++) {
		VmsupMetricsVm *vm = &g_array_index(vms, VmsupMetricsVm, i);
		const gchar *labels[] = {"vm", vm->summary->name, "owner", vm->owner, NULL};
		JsonNode *node;

		node = json_object_get_member(vm->stats, family->member);
		if (node == NULL || JSON_NODE_TYPE(node) != JSON_NODE_VALUE)
			continue;
		vmsup_metrics_write_sample(out, family->name, labels, json_node_get_double(node));
	}
}

static void
vmsup_metrics_write_vms(GString *out, VmsupMetricsSources *sources, GArray *summaries)
{
	g_autoptr(GArray) vms =
	    g_array_sized_new(FALSE, TRUE, sizeof(VmsupMetricsVm), summaries->len);

	g_array_set_clear_func(vms, vmsup_metrics_vm_clear);
	for (guint i = 0; i < summaries->len; i++) {
		const VmsupVmSummary *summary = &g_array_index(summaries, VmsupVmSummary, i);
		VmsupMetricsVm vm = {
		    .summary = summary,
		    .owner = vmsup_metrics_owner_name(sources, summary->owner_uid),
		};
		gint64 mib = 0;

		if (sources->stats_service != NULL)
			vm.stats =
			    vmsup_stats_service_get_metrics(sources->stats_service, summary->name);
		if (vm.stats == NULL)
			vm.stats = json_object_new();
		/* what QEMU reports while it runs, the definition's otherwise */
		mib = vmsup_json_object_get_int(vm.stats, "memory_mib", 0);
		json_object_set_int_member(vm.stats,
					   "memory_bytes",
					   (mib > 0 ? mib : summary->memory_mib) * 1024 * 1024);
		if (summary->boot_to_agent_s >= 0)
			json_object_set_double_member(vm.stats,
						      "boot_to_agent_s",
						      summary->boot_to_agent_s);
		g_array_append_val(vms, vm);
	}

	vmsup_metrics_write_family(out,
				   "vmsup_vm_state",
				   "gauge",
				   "1 for the state the VM is in (label state).");
	for (guint i = 0; i < vms->len; i++) {
		VmsupMetricsVm *vm = &g_array_index(vms, VmsupMetricsVm, i);
		const gchar *labels[] = {"vm",
					 vm->summary->name,
					 "owner",
					 vm->owner,
					 "state",
					 vm->summary->state,
					 NULL};
		vmsup_metrics_write_sample(out, "vmsup_vm_state", labels, 1);
	}
	for (guint f = 0; f < G_N_ELEMENTS(vmsup_metrics_vm_families); f++)
		vmsup_metrics_write_vm_family(out, vms, &vmsup_metrics_vm_families[f]);
}

/* daemon-wide: how many VMs are in each state, without their names */
static void
vmsup_metrics_write_vm_counts(GString *out, GArray *summaries)
{
	g_autoptr(GHashTable) counts = g_hash_table_new(g_str_hash, g_str_equal);
	g_autofree const gchar **states = NULL;
	guint n = 0;

	for (guint i = 0; i < summaries->len; i++) {
		const gchar *state = g_array_index(summaries, VmsupVmSummary, i).state;
		guint count = GPOINTER_TO_UINT(g_hash_table_lookup(counts, state));
		g_hash_table_insert(counts, (gpointer)state, GUINT_TO_POINTER(count + 1));
	}
	vmsup_metrics_write_family(out, "vmsup_vms", "gauge", "VMs defined, by state.");
	states = (const gchar **)g_hash_table_get_keys_as_array(counts, &n);
	for (guint i = 0; i < n; i++) {
		const gchar *labels[] = {"state", states[i], NULL};
		vmsup_metrics_write_sample(
		    out,
		    "vmsup_vms",
		    labels,
		    (gdouble)GPOINTER_TO_UINT(g_hash_table_lookup(counts, states[i])));
	}
}

void
vmsup_metrics_collect(GString *out, gboolean per_vm, gpointer user_data)
{
	VmsupMetricsSources *sources = user_data;
	g_autoptr(GArray) summaries = vmsup_vm_service_summarize(sources->vm_service);
	const gchar *jsonrpc_labels[] = {"door", "jsonrpc", NULL};

	vmsup_metrics_render(sources->metrics, out);
	vmsup_metrics_write_family(out,
				   "vmsup_rpc_clients_connected",
				   "gauge",
				   "Clients connected to the JSON-RPC socket.");
	vmsup_metrics_write_sample(out,
				   "vmsup_rpc_clients_connected",
				   jsonrpc_labels,
				   sources->jsonrpc != NULL
				       ? vmsup_jsonrpc_server_get_n_connections(sources->jsonrpc)
				       : 0);
	if (sources->stats_service != NULL &&
	    vmsup_stats_service_get_last_poll_duration(sources->stats_service) >= 0) {
		vmsup_metrics_write_family(
		    out,
		    "vmsup_stats_poll_duration_seconds",
		    "gauge",
		    "Seconds the last stats poll took to sample every running VM.");
		vmsup_metrics_write_sample(
		    out,
		    "vmsup_stats_poll_duration_seconds",
		    NULL,
		    vmsup_stats_service_get_last_poll_duration(sources->stats_service));
	}
	vmsup_metrics_write_family(out,
				   "vmsup_daemon_start_time_seconds",
				   "gauge",
				   "When vmsupd started, in seconds since the epoch.");
	vmsup_metrics_write_sample(out,
				   "vmsup_daemon_start_time_seconds",
				   NULL,
				   (gdouble)(sources->started_at / G_USEC_PER_SEC));
	vmsup_metrics_write_vm_counts(out, summaries);
	if (per_vm)
		vmsup_metrics_write_vms(out, sources, summaries);
}
