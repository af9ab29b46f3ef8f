/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define VMSUP_TYPE_RECORD_STORE (vmsup_record_store_get_type())
G_DECLARE_FINAL_TYPE(VmsupRecordStore, vmsup_record_store, VMSUP, RECORD_STORE, GObject)

/*
 * A directory of small JSON records, one <name>.json each. @what names a
 * file in logs ("Definition file"), @kind names what a record belongs to
 * for name checks ("VM", see vmsup_name_validate()), @max_size caps a file.
 */
VmsupRecordStore *
vmsup_record_store_new(const gchar *dir, const gchar *what, const gchar *kind, guint max_size);

const gchar *
vmsup_record_store_get_dir(VmsupRecordStore *self);
gchar *
vmsup_record_store_get_path(VmsupRecordStore *self, const gchar *name);

/*
 * Every readable record: name (owned) -> JsonObject (owned). A file that
 * cannot be read or parsed is set aside and left out; fails only when the
 * directory itself cannot be read. A missing directory holds no records.
 */
GHashTable *
vmsup_record_store_load_all(VmsupRecordStore *self, GError **error);

/*
 * For a record the caller rejects: moved to <name>.json.corrupt-<time>
 * with a warning giving @reason, never deleted.
 */
void
vmsup_record_store_set_aside(VmsupRecordStore *self, const gchar *name, const gchar *reason);

/* atomic and durable (fsync'd) replace of the record's file */
gboolean
vmsup_record_store_save(VmsupRecordStore *self,
			const gchar *name,
			JsonObject *record,
			GError **error);
/* the same in a worker thread; @record is serialized before this returns */
void
vmsup_record_store_save_async(VmsupRecordStore *self,
			      const gchar *name,
			      JsonObject *record,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
gboolean
vmsup_record_store_save_finish(VmsupRecordStore *self, GAsyncResult *res, GError **error);

/* a missing file is not an error */
gboolean
vmsup_record_store_remove(VmsupRecordStore *self, const gchar *name, GError **error);

G_END_DECLS
