/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How the stats results are written: flat JSON objects, null for what is unknown. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* ISO 8601 in UTC, second precision */
gchar *
vmsup_stats_json_format_time(gint64 real_us);

/* @value >= 0 rounded to @decimals places */
gdouble
vmsup_stats_json_round(gdouble value, guint decimals);

/* our results are flat: copying each member node is a deep copy */
JsonObject *
vmsup_stats_json_copy_flat(JsonObject *src);

/* @value, or null when it is negative (unknown) */
void
vmsup_stats_json_set_int_or_null(JsonObject *obj, const gchar *member, gint64 value);
/* @value rounded to one decimal, or null when it is negative (unknown) */
void
vmsup_stats_json_set_double_or_null(JsonObject *obj, const gchar *member, gdouble value);

G_END_DECLS
