/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* the staging file of a copy to @path: never a VM's disk, removed when found at load */
#define VMSUP_DISK_COPY_TMP_SUFFIX ".part"
gchar *
vmsup_disk_copy_tmp_path(const gchar *path);

/* called on the main loop as qemu-img reports progress, @fraction 0..1 */
typedef void (*VmsupDiskCopyProgressFunc)(gdouble fraction, gpointer user_data);

/*
 * Copies the qcow2 @source to @path with qemu-img convert: a new overlay
 * over @backing (the read-only base @source overlays) when given, else a
 * self-contained qcow2. Written to @path + ".part" and renamed once
 * complete; never replaces an existing @path. On failure or cancellation
 * qemu-img is killed and nothing is left.
 */
void
vmsup_disk_copy_async(const gchar *qemu_img,
		      const gchar *source,
		      const gchar *path,
		      const gchar *backing,
		      VmsupDiskCopyProgressFunc progress,
		      gpointer progress_data,
		      GCancellable *cancellable,
		      GAsyncReadyCallback callback,
		      gpointer user_data);
gboolean
vmsup_disk_copy_finish(GAsyncResult *res, GError **error);

G_END_DECLS
