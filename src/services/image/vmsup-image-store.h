/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define VMSUP_TYPE_IMAGE_STORE (vmsup_image_store_get_type())
G_DECLARE_FINAL_TYPE(VmsupImageStore, vmsup_image_store, VMSUP, IMAGE_STORE, GObject)

/*
 * Base images under <state dir>/images/: <name>.<format>, read-only, and
 * its record <name>.json:
 *   {name, format: qcow2|raw, virtual_size_bytes, disk_size_bytes, sha256,
 *    imported_at (ISO 8601 UTC), source}
 * list and get results add "path" (the image file) and "used_by" (VM names).
 *
 * A new store removes what an import cut short by the daemon's end left:
 * a temporary file, a record without its image.
 *
 * @image_users (may be NULL: nothing is in use) is VMService's closure
 * (const gchar *path) -> GStrv, see vmsup-image-hooks.h; it is ref'd and sunk.
 */
VmsupImageStore *
vmsup_image_store_new(const gchar *state_dir, GClosure *image_users);

const gchar *
vmsup_image_store_get_dir(VmsupImageStore *self);

/* fraction of the copy done, 0..1, in the main context import_async was called from */
typedef void (*VmsupImageStoreProgressFunc)(gdouble fraction, gpointer user_data);

/*
 * Imports the image open as @fd (taken; read-only is enough) from @path
 * (for messages and the record) under @name (NULL: @path's basename without
 * its extension, made a valid name). Everything is checked before anything
 * is created; the copy runs in a thread, sparse, hashing as it goes, under
 * a temporary name renamed into place last. A failure or a cancel leaves
 * nothing behind. @progress (may be NULL) is never called after @callback.
 * The result is the image's get result.
 */
void
vmsup_image_store_import_async(VmsupImageStore *self,
			       gint fd,
			       const gchar *path,
			       const gchar *name,
			       VmsupImageStoreProgressFunc progress,
			       gpointer progress_data,
			       GDestroyNotify progress_destroy,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
JsonObject *
vmsup_image_store_import_finish(VmsupImageStore *self, GAsyncResult *res, GError **error);
/*
 * The checks of an import alone, on @fd (borrowed): the name the image
 * would get, or NULL with the error the import would meet. Nothing is made.
 */
gchar *
vmsup_image_store_check_import(VmsupImageStore *self,
			       gint fd,
			       const gchar *path,
			       const gchar *name,
			       GError **error);

/* a build's stage and the fraction of the whole build done, 0..1 */
typedef void (*VmsupImageStoreStageFunc)(const gchar *stage, gdouble fraction, gpointer user_data);

/*
 * The checks of a build (image.build): @name free, @distro one the builder
 * makes, @packages (nullable) Debian package names. Nothing is made.
 */
gboolean
vmsup_image_store_check_build(VmsupImageStore *self,
			      const gchar *name,
			      const gchar *distro,
			      const gchar *const *packages,
			      GError **error);

/*
 * Builds an image with the builder (vmsup-image-build.h) in a work
 * directory .<name>.build-XXXXXX of the store, then imports it as @name
 * (the name is taken from the start). Stages: the builder's, then "import".
 * A failure or a cancel leaves nothing behind: the builder's processes
 * are gone and the work directory removed before @callback. The result is
 * the image's get result.
 */
void
vmsup_image_store_build_async(VmsupImageStore *self,
			      const gchar *name,
			      const gchar *distro,
			      const gchar *const *packages,
			      VmsupImageStoreStageFunc stage,
			      gpointer stage_data,
			      GDestroyNotify stage_destroy,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
JsonObject *
vmsup_image_store_build_finish(VmsupImageStore *self, GAsyncResult *res, GError **error);

/* {images: [get results]}, sorted by name */
JsonObject *
vmsup_image_store_list(VmsupImageStore *self, GError **error);
JsonObject *
vmsup_image_store_get(VmsupImageStore *self, const gchar *name, GError **error);
/* the image file of @name, or NULL with NOT_FOUND */
gchar *
vmsup_image_store_lookup(VmsupImageStore *self, const gchar *name, GError **error);
/* refused (FAILED_PRECONDITION) while a VM's disk goes over it */
gboolean
vmsup_image_store_delete(VmsupImageStore *self, const gchar *name, GError **error);

/* (const gchar *name, GError **error) -> gchar *: lookup, for VMService (full) */
GClosure *
vmsup_image_store_get_lookup_hook(VmsupImageStore *self);

G_END_DECLS
