/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * @path (the @field "kernel", "initrd" or "image" in messages) opened as
 * @uid (root: as the daemon), with the groups its passwd and group entries
 * give, and checked to be a regular file: its descriptor, or -1 with
 * FAILED_PRECONDITION. When the kernel refuses, the message names what is
 * in the way as far as modes tell (a directory that does not let @uid in,
 * a file others may not read) and what to do.
 */
gint
vmsup_owner_open_file(const gchar *field, const gchar *path, guint32 uid, GError **error);

G_END_DECLS
