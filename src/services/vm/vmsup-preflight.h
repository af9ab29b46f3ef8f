/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-vm-def.h"

G_BEGIN_DECLS

#define VMSUP_PREFLIGHT_MIN_QEMU_MAJOR 7

/* "QEMU emulator version 7.2.22 (Debian ...)" -> 7, 2, 22 */
gboolean
vmsup_preflight_parse_qemu_version(const gchar *output,
				   guint *out_major,
				   guint *out_minor,
				   guint *out_micro);

/* runs `@qemu_binary --version`; fails unless it runs and is at least version 7 */
void
vmsup_preflight_check_qemu_async(const gchar *qemu_binary,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data);
/* @out_version: "7.2.22" */
gboolean
vmsup_preflight_check_qemu_finish(GAsyncResult *res, gchar **out_version, GError **error);

/* kernel, initrd, image (files) and share_dir (a directory) are readable; INVALID_ARGUMENT */
gboolean
vmsup_preflight_check_files(const VmsupVmDef *def, GError **error);

/* at least @bytes free on the file system of @dir, or of its nearest existing parent */
gboolean
vmsup_preflight_check_free_space(const gchar *dir, guint64 bytes, GError **error);

G_END_DECLS
