/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* where vmsup's data files (the bundled guest, ...) are: $VMSUP_DATA_DIR or the installed dir */
const gchar *
vmsup_paths_data_dir(void);

/* the bundled guest's files, or NULL when they are not built/installed */
gchar *
vmsup_paths_guest_kernel(void);
gchar *
vmsup_paths_guest_initrd(void);

/* defaults for --session / --system */
gchar *
vmsup_paths_state_dir(gboolean system);
gchar *
vmsup_paths_runtime_dir(gboolean system);

/* $VMSUP_SOCKET, else <runtime dir>/vmsupd.sock */
gchar *
vmsup_paths_socket(gboolean system);

G_END_DECLS
