/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "vmsup-jsonrpc-server.h"
#include "vmsup-metrics.h"
#include "vmsup-stats-service.h"
#include "vmsup-vm-service.h"

G_BEGIN_DECLS

/*
 * What a scrape reads: the counters kept in @metrics, then what the
 * services already know (the VMs, the stats cache, the connections). Never
 * a QMP or agent call. All unowned: the daemon outlives it.
 */
typedef struct {
	VmsupMetrics *metrics;
	VmsupVmService *vm_service;
	VmsupStatsService *stats_service; /* nullable */
	VmsupJsonrpcServer *jsonrpc;      /* nullable */
	gint64 started_at;                /* g_get_real_time() of daemon start */
	/*< private >*/
	GHashTable *owner_names; /* uid -> user name, looked up once */
} VmsupMetricsSources;

void
vmsup_metrics_sources_clear(VmsupMetricsSources *sources);

/* a VmsupMetricsCollectFunc of @user_data, a VmsupMetricsSources */
void
vmsup_metrics_collect(GString *out, gboolean per_vm, gpointer user_data);

G_END_DECLS
