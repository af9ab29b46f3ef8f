/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The errors the stats verbs answer with, in VMSUP_ERROR, saying what to do next. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* a deadline passed, whoever's: ours, QMP's or GIO's */
gboolean
vmsup_stats_error_is_timeout(const GError *error);

/* an agent failure as users should read it */
GError *
vmsup_stats_error_agent(const gchar *name, const GError *error);

GError *
vmsup_stats_error_not_running(const gchar *name);

GError *
vmsup_stats_error_no_agent(const gchar *name);

G_END_DECLS
