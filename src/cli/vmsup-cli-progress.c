/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The progress display of long operations (vmsup create), on stderr so
 * that stdout keeps only the result.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <unistd.h>

#include "vmsup-cli-format.h"
#include "vmsup-cli-progress.h"

#define VMSUP_CLI_PROGRESS_BAR_WIDTH 30

struct _VmsupCliProgress {
	FILE *out; /* unowned */
	gboolean interactive;
	gchar *stage; /* owned: the last one shown */
	gint percent; /* the last one shown, -1 before the first */
	gboolean drawn;
};

VmsupCliProgress *
vmsup_cli_progress_new(FILE *out, gboolean interactive)
{
	VmsupCliProgress *self = g_new0(VmsupCliProgress, 1);
	self->out = out;
	self->interactive = interactive;
	self->percent = -1;
	return self;
}

gboolean
vmsup_cli_progress_can_draw(gint fd)
{
	const gchar *term = g_getenv("TERM");

	/* as systemd and others read it: no $TERM is no better than "dumb" */
	if (term == NULL || term[0] == '\0' || g_strcmp0(term, "dumb") == 0)
		return FALSE;
	return isatty(fd);
}

const gchar *
vmsup_cli_progress_describe_stage(const gchar *stage)
{
	if (g_strcmp0(stage, "preflight") == 0)
		/* TRANSLATORS: a stage of creating a VM */
		return _("checking the host");
	if (g_strcmp0(stage, "provision") == 0)
		/* TRANSLATORS: a stage of creating a VM */
		return _("preparing the disk");
	if (g_strcmp0(stage, "copy") == 0)
		/* TRANSLATORS: a stage of cloning a VM */
		return _("copying the disk");
	if (g_strcmp0(stage, "define") == 0)
		/* TRANSLATORS: a stage of creating a VM */
		return _("saving the definition");
	if (g_strcmp0(stage, "start") == 0)
		/* TRANSLATORS: a stage of creating a VM */
		return _("starting");
	if (g_strcmp0(stage, "done") == 0)
		/* TRANSLATORS: a stage of creating a VM */
		return _("done");
	if (g_strcmp0(stage, "install") == 0)
		/* TRANSLATORS: a stage of building an image */
		return _("installing packages from Debian's archive");
	if (g_strcmp0(stage, "unpack") == 0)
		/* TRANSLATORS: a stage of building an image */
		return _("unpacking the root filesystem");
	if (g_strcmp0(stage, "rootfs") == 0)
		/* TRANSLATORS: a stage of building an image */
		return _("writing the root filesystem");
	if (g_strcmp0(stage, "esp") == 0)
		/* TRANSLATORS: a stage of building an image */
		return _("writing the EFI system partition");
	if (g_strcmp0(stage, "disk") == 0)
		/* TRANSLATORS: a stage of building an image */
		return _("assembling the disk");
	if (g_strcmp0(stage, "convert") == 0)
		/* TRANSLATORS: a stage of building an image */
		return _("converting to qcow2");
	if (g_strcmp0(stage, "import") == 0 || g_strcmp0(stage, "copy") == 0)
		/* TRANSLATORS: a stage of importing or building an image */
		return _("copying into the image store");
	return stage != NULL ? stage : "";
}

gchar *
vmsup_cli_progress_render_bar(gdouble fraction, guint width)
{
	GString *out = g_string_new("[");
	guint filled;

	if (isnan(fraction) || fraction < 0)
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	filled = (guint)(fraction * width + 0.5);
	for (guint i = 0; i < width; i++)
		g_string_append_c(out, i < filled ? '#' : '.');
	g_string_append_printf(out, "] %3d%%", (gint)(fraction * 100 + 0.5));
	return g_string_free(out, FALSE);
}

void
vmsup_cli_progress_update(VmsupCliProgress *self, const gchar *stage, gdouble fraction)
{
	gint percent;
	const gchar *words = vmsup_cli_progress_describe_stage(stage);

	if (self == NULL)
		return;
	if (isnan(fraction) || fraction < 0)
		fraction = 0;
	percent = (gint)(MIN(fraction, 1.0) * 100 + 0.5);
	if (self->interactive) {
		g_autofree gchar *bar = NULL;
		if (percent == self->percent && g_strcmp0(stage, self->stage) == 0)
			return;
		bar = vmsup_cli_progress_render_bar(fraction, VMSUP_CLI_PROGRESS_BAR_WIDTH);
		/* back to column 0 and clear the line: the bar redraws in place */
		fprintf(self->out, "\r\033[K%s %s", bar, words);
		self->drawn = TRUE;
	} else {
		if (g_strcmp0(stage, self->stage) == 0)
			return;
		fprintf(self->out, "%s (%d%%)\n", words, percent);
	}
	fflush(self->out);
	g_free(self->stage);
	self->stage = g_strdup(stage);
	self->percent = percent;
}

void
vmsup_cli_progress_finish(VmsupCliProgress *self, const gchar *message)
{
	if (self == NULL)
		return;
	if (self->interactive && self->drawn)
		fputc('\n', self->out);
	self->drawn = FALSE;
	if (message != NULL)
		fprintf(self->out, "%s\n", message);
	fflush(self->out);
}

void
vmsup_cli_progress_free(VmsupCliProgress *self)
{
	if (self == NULL)
		return;
	g_free(self->stage);
	g_free(self);
}
