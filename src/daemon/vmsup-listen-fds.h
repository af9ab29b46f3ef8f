/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The listening socket systemd passes a socket-activated vmsupd, taken with
 * sd_listen_fds(3) semantics: $LISTEN_PID must be this process, $LISTEN_FDS
 * counts descriptors from 3 on. TRUE with *@out_fd the socket (close-on-exec
 * from now on), or 0 when nothing was passed to this process. The variables
 * are unset either way, so children never see them.
 */
gboolean
vmsup_listen_fds_take(gint *out_fd, GError **error);

G_END_DECLS
