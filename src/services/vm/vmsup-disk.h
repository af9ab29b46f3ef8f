/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* qemu-img next to @qemu_binary, else from PATH; NULL with FAILED_PRECONDITION */
gchar *
vmsup_disk_find_qemu_img(const gchar *qemu_binary, GError **error);

/* an image's format from its header: "qcow2", else "raw" */
const gchar *
vmsup_disk_probe_format(const gchar *path, GError **error);

/*
 * Creates the qcow2 @path: an overlay over @backing when given (@size_gib 0
 * keeps the backing size), else a blank disk of @size_gib. Never replaces an
 * existing file. On failure or cancellation qemu-img is killed and nothing
 * is left at @path.
 */
void
vmsup_disk_create_async(const gchar *qemu_img,
			const gchar *path,
			const gchar *backing,
			guint size_gib,
			GCancellable *cancellable,
			GAsyncReadyCallback callback,
			gpointer user_data);
gboolean
vmsup_disk_create_finish(GAsyncResult *res, GError **error);

/* FAILED_PRECONDITION when something is at @path, a disk an earlier VM left */
gboolean
vmsup_disk_check_absent(const gchar *path, GError **error);

/* a missing file is not an error */
gboolean
vmsup_disk_remove(const gchar *path, GError **error);

G_END_DECLS
