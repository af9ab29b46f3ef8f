/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdio.h>

G_BEGIN_DECLS

/*
 * Progress of a long operation: a bar redrawn in place on a terminal, plain
 * lines (one per stage) anywhere else, so logs stay readable.
 */
typedef struct _VmsupCliProgress VmsupCliProgress;

VmsupCliProgress *
vmsup_cli_progress_new(FILE *out, gboolean interactive);
/* @stage as the daemon names it ("preflight", ...), @fraction 0..1; NULL @self: no output */
void
vmsup_cli_progress_update(VmsupCliProgress *self, const gchar *stage, gdouble fraction);
/* ends the bar's line; @message (nullable) goes on a line of its own */
void
vmsup_cli_progress_finish(VmsupCliProgress *self, const gchar *message);
void
vmsup_cli_progress_free(VmsupCliProgress *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupCliProgress, vmsup_cli_progress_free)

/*
 * Whether a bar redrawn in place suits @fd: a terminal that understands the
 * escape that clears a line ($TERM set, and not "dumb").
 */
gboolean
vmsup_cli_progress_can_draw(gint fd);

/* "[#######.............]  35%" with @width characters between the brackets */
gchar *
vmsup_cli_progress_render_bar(gdouble fraction, guint width);

/* a stage name of the daemon in words of the user's language */
const gchar *
vmsup_cli_progress_describe_stage(const gchar *stage);

G_END_DECLS
