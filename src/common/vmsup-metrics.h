/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/*
 * The daemon's counters and histograms, and the writer of Prometheus' text
 * exposition format 0.0.4. Labels are given as a NULL-terminated list of
 * name, value pairs; a family is declared by its first use. Main loop only.
 */
#define VMSUP_TYPE_METRICS (vmsup_metrics_get_type())
G_DECLARE_FINAL_TYPE(VmsupMetrics, vmsup_metrics, VMSUP, METRICS, GObject)

VmsupMetrics *
vmsup_metrics_new(void);

void
vmsup_metrics_counter_add(VmsupMetrics *self,
			  const gchar *family,
			  const gchar *help,
			  const gchar *const *labels,
			  gdouble amount);
/* seconds, into the buckets of request latencies (0.5 ms to 10 s) */
void
vmsup_metrics_observe_seconds(VmsupMetrics *self,
			      const gchar *family,
			      const gchar *help,
			      const gchar *const *labels,
			      gdouble seconds);
/* every family kept, each whole, sorted by name */
void
vmsup_metrics_render(VmsupMetrics *self, GString *out);

/* --- the writer, for series made at scrape time ------------------------------------ */

/* @type: "counter", "gauge" or "histogram" */
void
vmsup_metrics_write_family(GString *out, const gchar *family, const gchar *type, const gchar *help);
/* one sample line; a NaN or negative @value of a gauge is written as it is */
void
vmsup_metrics_write_sample(GString *out,
			   const gchar *name,
			   const gchar *const *labels,
			   gdouble value);
/* {a="b",c="d"} with the value escaped (\\, \", \n), or nothing without labels */
void
vmsup_metrics_write_labels(GString *out, const gchar *const *labels);

G_END_DECLS
