/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

/*
 * Lets @uid read, write and enter the directory @dir_fd (@shown names it in
 * messages) through an entry in its POSIX access ACL, the other entries
 * kept: how a QEMU running as the system user reaches the share of a VM of
 * root's. Only the directory itself: what lies below keeps its own modes.
 */
gboolean
vmsup_share_access_grant(gint dir_fd, const gchar *shown, uid_t uid, GError **error);

G_END_DECLS
