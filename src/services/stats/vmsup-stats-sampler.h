/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What is known of one VM's running QEMU, and how it is sampled: the /proc
 * watch and the CPU windows, the guest's activity, what QMP events keep up
 * to date (run state, memory size, the agent port), and the last vm.stats
 * result. VmsupStatsService keeps one per VM; a sampler knows nothing of it.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-vm-hooks.h"

G_BEGIN_DECLS

/* guest activity: vCPU use above this over a window of at least ... */
#define VMSUP_STATS_ACTIVE_CPU_PERCENT 5.0
#define VMSUP_STATS_ACTIVITY_WINDOW_MS 1000
/*
 * ... or more guest network bytes than this between two samples: one HTTP
 * GET through a forward moves about 1.3 kB, an idle guest 0 (a few hundred
 * bytes of IPv6 neighbour discovery right after boot)
 */
#define VMSUP_STATS_ACTIVE_NET_BYTES 1024

#define VMSUP_TYPE_STATS_SAMPLER (vmsup_stats_sampler_get_type())
G_DECLARE_FINAL_TYPE(VmsupStatsSampler, vmsup_stats_sampler, VMSUP, STATS_SAMPLER, GObject)

/*
 * Signals:
 *   "sampled": void (self, JsonObject *stats, gpointer user_data): a refresh
 *       sampled the VM; @stats is the vm.stats result, borrowed.
 */

VmsupStatsSampler *
vmsup_stats_sampler_new(const gchar *name);

const gchar *
vmsup_stats_sampler_get_name(VmsupStatsSampler *self);

/* what the wiring said: the VM exists, and whether the sweep may stop it */
gboolean
vmsup_stats_sampler_get_tracked(VmsupStatsSampler *self);
void
vmsup_stats_sampler_set_tracked(VmsupStatsSampler *self, gboolean tracked, gboolean auto_stop);
gboolean
vmsup_stats_sampler_get_auto_stop(VmsupStatsSampler *self);

/* the QEMU last seen, 0: none */
GPid
vmsup_stats_sampler_get_pid(VmsupStatsSampler *self);
/*
 * The VM runs as @pid (0: it does not run). A pid not seen before is a
 * fresh start: what was learnt of the old one is void. TRUE when it changed.
 */
gboolean
vmsup_stats_sampler_see_pid(VmsupStatsSampler *self, GPid pid);

/* activity: a client request or the guest itself (@reason: "vm.exec", "guest-cpu", ...) */
void
vmsup_stats_sampler_mark_active(VmsupStatsSampler *self, const gchar *reason);
gint64
vmsup_stats_sampler_get_idle_ms(VmsupStatsSampler *self);
const gchar *
vmsup_stats_sampler_get_active_reason(VmsupStatsSampler *self);
/* ISO 8601 (UTC) of the last activity */
const gchar *
vmsup_stats_sampler_get_last_active(VmsupStatsSampler *self);

/* the last vm.stats result (borrowed) and its age, or NULL when none since the VM started */
JsonObject *
vmsup_stats_sampler_get_cached(VmsupStatsSampler *self, gint64 *out_age_us);

/* of the last sample: the QEMU process's CPU time (user + system), -1: none */
gdouble
vmsup_stats_sampler_get_cpu_seconds(VmsupStatsSampler *self);
/* seconds the guest agent took to answer the last refresh, -1: not asked since it started */
gdouble
vmsup_stats_sampler_get_agent_rtt(VmsupStatsSampler *self);
gboolean
vmsup_stats_sampler_is_refreshing(VmsupStatsSampler *self);

/*
 * Samples the VM now through @handles, or joins the refresh in flight. Each
 * VM refreshes on its own: a slow agent holds up no other. @cancellable
 * ends the QMP and agent calls. The result is a new vm.stats result; a VM
 * whose QEMU went away meanwhile is a "not running" error.
 */
void
vmsup_stats_sampler_refresh_async(VmsupStatsSampler *self,
				  VmsupVmHandles *handles,
				  GCancellable *cancellable,
				  GAsyncReadyCallback callback,
				  gpointer user_data);
JsonObject *
vmsup_stats_sampler_refresh_finish(VmsupStatsSampler *self, GAsyncResult *res, GError **error);

G_END_DECLS
