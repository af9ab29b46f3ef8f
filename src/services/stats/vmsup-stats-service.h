/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-caller.h"
#include "vmsup-vm-hooks.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_STATS_SERVICE (vmsup_stats_service_get_type())
G_DECLARE_FINAL_TYPE(VmsupStatsService, vmsup_stats_service, VMSUP, STATS_SERVICE, GObject)

/*
 * Signals:
 *   "stats-changed": void (self, const gchar *name, JsonObject *stats, gpointer user_data):
 *       a refresh (the poller, the sweep or vm.stats) sampled @name; @stats is the
 *       vm.stats result, borrowed. For live D-Bus properties.
 */

/* takes refs on the hooks; never a pointer to VMService */
VmsupStatsService *
vmsup_stats_service_new(const VmsupVmHooks *hooks);

const VmsupVmHooks *
vmsup_stats_service_get_hooks(VmsupStatsService *self);

/* seconds; 0 disables the poller / the stale sweep */
void
vmsup_stats_service_set_poll_interval(VmsupStatsService *self, guint seconds);
void
vmsup_stats_service_set_auto_stop_after(VmsupStatsService *self, guint seconds);

/*
 * how long vm.ports waits for a listener to answer an HTTP(S) GET before it
 * reports it as not web (0: the default, 5000 ms)
 */
void
vmsup_stats_service_set_probe_timeout(VmsupStatsService *self, guint timeout_ms);

/* the wiring tells the service which VMs exist and their auto_stop flag */
void
vmsup_stats_service_track_vm(VmsupStatsService *self, const gchar *name, gboolean auto_stop);
void
vmsup_stats_service_untrack_vm(VmsupStatsService *self, const gchar *name);

/* a client request acted on @name: it is not idle */
void
vmsup_stats_service_note_activity(VmsupStatsService *self, const gchar *name, const gchar *reason);

/* the last vm.stats result of @name (a copy), or NULL when none since it started */
JsonObject *
vmsup_stats_service_get_cached_stats(VmsupStatsService *self, const gchar *name);

/*
 * What /metrics shows of @name, from what the last samples left (never a
 * new sample), or NULL when @name is unknown: the cached vm.stats members
 * (absent before a first sample), cpu_s (the QEMU process's CPU time),
 * agent_rtt_s (the agent's answer to the last sample; absent: not asked),
 * idle_s, and auto_stop_in_s when the sweep may stop it.
 */
JsonObject *
vmsup_stats_service_get_metrics(VmsupStatsService *self, const gchar *name);

/* seconds the last poll took from its start to the last VM's sample; -1 before one */
gdouble
vmsup_stats_service_get_last_poll_duration(VmsupStatsService *self);

/*
 * What vm.get merges in, or NULL when @name is unknown: {last_active (ISO
 * 8601, UTC), idle_s, active_reason (what marked it active last: "vm.exec",
 * "guest-cpu", "network", "started", ...), idle_reason (when idle for more
 * than a couple of polls), auto_stop_in_s (when the sweep may stop it)}
 */
JsonObject *
vmsup_stats_service_describe_activity(VmsupStatsService *self, const gchar *name);

void
vmsup_stats_service_stats_async(VmsupStatsService *self,
				const VmsupCaller *caller,
				JsonObject *params,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data);
JsonObject *
vmsup_stats_service_stats_finish(VmsupStatsService *self, GAsyncResult *res, GError **error);
void
vmsup_stats_service_health_async(VmsupStatsService *self,
				 const VmsupCaller *caller,
				 JsonObject *params,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data);
JsonObject *
vmsup_stats_service_health_finish(VmsupStatsService *self, GAsyncResult *res, GError **error);
void
vmsup_stats_service_ping_async(VmsupStatsService *self,
			       const VmsupCaller *caller,
			       JsonObject *params,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
JsonObject *
vmsup_stats_service_ping_finish(VmsupStatsService *self, GAsyncResult *res, GError **error);
void
vmsup_stats_service_ports_async(VmsupStatsService *self,
				const VmsupCaller *caller,
				JsonObject *params,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data);
JsonObject *
vmsup_stats_service_ports_finish(VmsupStatsService *self, GAsyncResult *res, GError **error);
void
vmsup_stats_service_exec_async(VmsupStatsService *self,
			       const VmsupCaller *caller,
			       JsonObject *params,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
JsonObject *
vmsup_stats_service_exec_finish(VmsupStatsService *self, GAsyncResult *res, GError **error);

G_END_DECLS
