/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * What the image store and VMService ask of each other, as closures the
 * daemon hands across (built with g_cclosure_new_object() and the generic
 * marshaller, adapters taking their arguments first and the object last):
 *
 *   image users (VMService's): (const gchar *path) -> GStrv (full), the VMs,
 *       defined or being created, whose disk goes over the image file @path;
 *   image lookup (the store's): (const gchar *name, GError **error) ->
 *       gchar * (full), the file of the stored image @name.
 *
 * An invalidated closure (its object gone) reads as "no users" and as "no
 * image store".
 */
GStrv
vmsup_image_hooks_users(GClosure *closure, const gchar *path);
gchar *
vmsup_image_hooks_lookup(GClosure *closure, const gchar *name, GError **error);

/* an image value naming a stored image rather than a file: no '/' in it */
gboolean
vmsup_image_hooks_is_store_name(const gchar *image);

G_END_DECLS
