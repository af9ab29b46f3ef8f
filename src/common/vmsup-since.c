/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* "--since 10m" and since: "2026-12-07T18:00:00Z", read the same on both sides */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-since.h"

/* ten years back is as far as anything is kept */
#define VMSUP_SINCE_MAX_SECONDS ((gint64)10 * 366 * 24 * 3600)

static gboolean
vmsup_since_parse_span(const gchar *text, gint64 *out_seconds)
{
	gchar *end = NULL;
	guint64 value;
	gint64 unit = 1;

	if (!g_ascii_isdigit(text[0]))
		return FALSE;
	value = g_ascii_strtoull(text, &end, 10);
	if (g_strcmp0(end, "m") == 0)
		unit = 60;
	else if (g_strcmp0(end, "h") == 0)
		unit = 3600;
	else if (g_strcmp0(end, "d") == 0)
		unit = 24 * 3600;
	else if (*end != '\0' && g_strcmp0(end, "s") != 0)
		return FALSE;
	if (value > (guint64)(VMSUP_SINCE_MAX_SECONDS / unit))
		return FALSE;
	*out_seconds = (gint64)value * unit;
	return TRUE;
}

gboolean
vmsup_since_parse(const gchar *text, gint64 now_us, gint64 *out_us, GError **error)
{
	g_autoptr(GTimeZone) local = NULL;
	g_autoptr(GDateTime) when = NULL;
	gint64 seconds;

	g_return_val_if_fail(out_us != NULL, FALSE);

	if (text != NULL && vmsup_since_parse_span(text, &seconds)) {
		*out_us = now_us - seconds * G_USEC_PER_SEC;
		return TRUE;
	}
	if (text != NULL) {
		local = g_time_zone_new_local();
		when = g_date_time_new_from_iso8601(text, local);
	}
	if (when == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("\"%s\" is not a time: give a span back from now such as 30s, 10m, "
			      "2h or 1d, or an ISO 8601 time such as 2026-12-07T18:00:00Z"),
			    text != NULL ? text : "");
		return FALSE;
	}
	*out_us = g_date_time_to_unix(when) * G_USEC_PER_SEC + g_date_time_get_microsecond(when);
	return TRUE;
}
