/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include "vmsup-stats-json.h"

gchar *
vmsup_stats_json_format_time(gint64 real_us)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(real_us / G_USEC_PER_SEC);
	if (dt == NULL)
		return NULL;
	return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

/* no libm needed */
gdouble
vmsup_stats_json_round(gdouble value, guint decimals)
{
	gdouble scale = 1;
	for (guint i = 0; i < decimals; i++)
		scale *= 10;
	return (gdouble)(gint64)(value * scale + 0.5) / scale;
}

JsonObject *
vmsup_stats_json_copy_flat(JsonObject *src)
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

void
vmsup_stats_json_set_int_or_null(JsonObject *obj, const gchar *member, gint64 value)
{
	if (value < 0)
		json_object_set_null_member(obj, member);
	else
		json_object_set_int_member(obj, member, value);
}

void
vmsup_stats_json_set_double_or_null(JsonObject *obj, const gchar *member, gdouble value)
{
	if (value < 0)
		json_object_set_null_member(obj, member);
	else
		json_object_set_double_member(obj, member, vmsup_stats_json_round(value, 1));
}
