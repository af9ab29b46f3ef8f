/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "vmsup-image-store.h"

G_BEGIN_DECLS

/* what the store's build (vmsup-image-store-build.c) uses of the store itself */

/* @name is valid, not in the store and not being imported or built */
gboolean
vmsup_image_store_check_name(VmsupImageStore *self, const gchar *name, GError **error);

/* @name counts as being imported until released */
void
vmsup_image_store_reserve(VmsupImageStore *self, const gchar *name);
void
vmsup_image_store_release(VmsupImageStore *self, const gchar *name);

/* import_async, with @source (NULL: @path) what the record says the image came from */
void
vmsup_image_store_import_from_async(VmsupImageStore *self,
				    gint fd,
				    const gchar *path,
				    const gchar *source,
				    const gchar *name,
				    VmsupImageStoreProgressFunc progress,
				    gpointer progress_data,
				    GDestroyNotify progress_destroy,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data);

G_END_DECLS
