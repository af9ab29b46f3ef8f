/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* called from the copying thread each time another percent is done */
typedef void (*VmsupImageCopyProgressFunc)(gdouble fraction, gpointer user_data);

/*
 * The first @size bytes of @in_fd (@source in messages) into @out_fd
 * (@tmp_path in messages), blocks of zeros left as holes, each byte read
 * fed to @checksum; the copy ends with its size set and synced. Blocking:
 * run it in a thread. CANCELLED when @cancellable fires between chunks.
 */
gboolean
vmsup_image_copy(gint in_fd,
		 const gchar *source,
		 guint64 size,
		 gint out_fd,
		 const gchar *tmp_path,
		 GChecksum *checksum,
		 VmsupImageCopyProgressFunc progress,
		 gpointer progress_data,
		 GCancellable *cancellable,
		 GError **error);

/* the import's own errors, for the steps around the copy */
gboolean
vmsup_image_copy_cancelled(GCancellable *cancellable, const gchar *source, GError **error);
gboolean
vmsup_image_copy_write_failed(const gchar *path, gint saved_errno, GError **error);

G_END_DECLS
