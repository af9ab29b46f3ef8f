/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The moment "since @text" means, as g_get_real_time() microseconds: a
 * span back from @now_us ("30s", "10m", "2h", "1d", bare digits are
 * seconds) or an ISO 8601 time ("2026-12-07T18:00:00Z"; without a zone,
 * local time). Anything else is VMSUP_ERROR_INVALID_ARGUMENT saying which
 * forms are taken.
 */
gboolean
vmsup_since_parse(const gchar *text, gint64 now_us, gint64 *out_us, GError **error);

G_END_DECLS
