/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * the bundled guest's directory: $VMSUP_DATA_DIR/guest (a build tree), else
 * the installed one under the library directory (it is a kernel for this
 * architecture)
 */
gchar *
vmsup_paths_guest_dir(void);

/* the bundled guest's files, or NULL when they are not built/installed */
gchar *
vmsup_paths_guest_kernel(void);
gchar *
vmsup_paths_guest_initrd(void);
/* whether @path is the bundled guest's kernel or initramfs */
gboolean
vmsup_paths_is_guest_file(const gchar *path);

/*
 * the program image.build runs: $VMSUP_DATA_DIR/images/vmsup-build-image
 * when there is one (a build tree), else the installed one in libexecdir
 */
gchar *
vmsup_paths_image_builder(void);

/* defaults for --session / --system */
gchar *
vmsup_paths_state_dir(gboolean system);
gchar *
vmsup_paths_runtime_dir(gboolean system);

/* $VMSUP_SOCKET, else <runtime dir>/vmsupd.sock */
gchar *
vmsup_paths_socket(gboolean system);

G_END_DECLS
