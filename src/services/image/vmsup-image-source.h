/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* what an import takes: a regular file holding a self-contained disk image */
typedef struct {
	const gchar *format;  /* "qcow2" or "raw" (static) */
	guint64 size;         /* bytes of the file */
	guint64 virtual_size; /* bytes the guest sees */
} VmsupImageSource;

/*
 * Checks the file open as @fd (@path in messages): a regular file, qcow2
 * (without a backing file, encryption or an external data file) or raw
 * with an MBR or GPT partition table. INVALID_ARGUMENT or
 * FAILED_PRECONDITION naming what to fix otherwise.
 */
gboolean
vmsup_image_source_check(gint fd, const gchar *path, VmsupImageSource *out, GError **error);

/* @path's basename without its extension, made a valid name; NULL if nothing is left */
gchar *
vmsup_image_source_default_name(const gchar *path);

G_END_DECLS
