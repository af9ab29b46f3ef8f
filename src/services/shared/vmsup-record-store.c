/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A directory of small JSON records, one file per name, replaced atomically
 * and durably, so a daemon killed at any point leaves either the old or the
 * new record, never half a file. What a record means is the caller's.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-name.h"
#include "vmsup-record-store.h"

struct _VmsupRecordStore {
	GObject parent_instance;
	gchar *dir;  /* owned */
	gchar *what; /* owned: "Definition file", for logs */
	gchar *kind; /* owned: "VM", for name checks */
	guint max_size;
};

G_DEFINE_FINAL_TYPE(VmsupRecordStore, vmsup_record_store, G_TYPE_OBJECT)

enum { PROP_0, PROP_DIR, PROP_WHAT, PROP_KIND, PROP_MAX_SIZE, N_PROPS };
static GParamSpec *props[N_PROPS];

typedef struct {
	gchar *path;
	gchar *contents;
} VmsupRecordWrite;

static void
vmsup_record_write_free(VmsupRecordWrite *write)
{
	g_free(write->path);
	g_free(write->contents);
	g_free(write);
}

static VmsupRecordWrite *
vmsup_record_write_new(VmsupRecordStore *self, const gchar *name, JsonObject *record)
{
	VmsupRecordWrite *write = g_new0(VmsupRecordWrite, 1);
	g_autofree gchar *json = vmsup_json_object_to_string(record, TRUE);
	write->path = vmsup_record_store_get_path(self, name);
	write->contents = g_strconcat(json, "\n", NULL);
	return write;
}

static gboolean
vmsup_record_store_write(VmsupRecordStore *self, VmsupRecordWrite *write, GError **error)
{
	g_autoptr(GError) error_local = NULL;

	if (g_mkdir_with_parents(self->dir, 0700) != 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot create the state directory '%s': %s; check --state-dir and "
			      "its permissions"),
			    self->dir,
			    g_strerror(saved_errno));
		return FALSE;
	}
	if (!g_file_set_contents_full(write->path,
				      write->contents,
				      -1,
				      G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
				      0600,
				      &error_local)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot save '%s': %s; check free space and permissions of the state "
			      "directory"),
			    write->path,
			    error_local->message);
		return FALSE;
	}
	return TRUE;
}

const gchar *
vmsup_record_store_get_dir(VmsupRecordStore *self)
{
	g_return_val_if_fail(VMSUP_IS_RECORD_STORE(self), NULL);
	return self->dir;
}

gchar *
vmsup_record_store_get_path(VmsupRecordStore *self, const gchar *name)
{
	g_autofree gchar *basename = g_strconcat(name, ".json", NULL);
	g_return_val_if_fail(VMSUP_IS_RECORD_STORE(self), NULL);
	return g_build_filename(self->dir, basename, NULL);
}

gboolean
vmsup_record_store_save(VmsupRecordStore *self,
			const gchar *name,
			JsonObject *record,
			GError **error)
{
	VmsupRecordWrite *write;
	gboolean ret;

	g_return_val_if_fail(VMSUP_IS_RECORD_STORE(self), FALSE);
	g_return_val_if_fail(record != NULL, FALSE);

	write = vmsup_record_write_new(self, name, record);
	ret = vmsup_record_store_write(self, write, error);
	vmsup_record_write_free(write);
	return ret;
}

static void
vmsup_record_store_save_thread(GTask *task,
			       gpointer source_object,
			       gpointer task_data,
			       GCancellable *cancellable)
{
	VmsupRecordStore *self = VMSUP_RECORD_STORE(source_object);
	VmsupRecordWrite *write = task_data;
	GError *error = NULL;

	/* once the write has begun it completes: cancelling only helps before */
	if (g_cancellable_is_cancelled(cancellable)) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_CANCELLED,
					_("Saving '%s' was cancelled"),
					write->path);
		return;
	}
	if (!vmsup_record_store_write(self, write, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_record_store_save_async(VmsupRecordStore *self,
			      const gchar *name,
			      JsonObject *record,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(VMSUP_IS_RECORD_STORE(self));
	g_return_if_fail(record != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_record_store_save_async);
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_task_data(task,
			     vmsup_record_write_new(self, name, record),
			     (GDestroyNotify)vmsup_record_write_free);
	g_task_run_in_thread(task, vmsup_record_store_save_thread);
}

gboolean
vmsup_record_store_save_finish(VmsupRecordStore *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

gboolean
vmsup_record_store_remove(VmsupRecordStore *self, const gchar *name, GError **error)
{
	g_autofree gchar *path = NULL;

	g_return_val_if_fail(VMSUP_IS_RECORD_STORE(self), FALSE);

	path = vmsup_record_store_get_path(self, name);
	if (g_unlink(path) != 0 && errno != ENOENT) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot remove '%s': %s; check the permissions of the state "
			      "directory"),
			    path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	return TRUE;
}

static void
vmsup_record_store_set_aside_path(VmsupRecordStore *self, const gchar *path, const gchar *reason)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree gchar *stamp = g_date_time_format(now, "%Y%m%dT%H%M%SZ");
	g_autofree gchar *target = g_strdup_printf("%s.corrupt-%s", path, stamp);

	for (guint i = 1; g_file_test(target, G_FILE_TEST_EXISTS); i++) {
		g_free(target);
		target = g_strdup_printf("%s.corrupt-%s.%u", path, stamp, i);
	}
	if (g_rename(path, target) != 0) {
		g_warning("%s '%s' is unreadable (%s) and cannot be moved aside: %s, ignoring",
			  self->what,
			  path,
			  reason,
			  g_strerror(errno));
		return;
	}
	g_warning("%s '%s' is unreadable (%s); moved aside to '%s', ignoring",
		  self->what,
		  path,
		  reason,
		  target);
}

void
vmsup_record_store_set_aside(VmsupRecordStore *self, const gchar *name, const gchar *reason)
{
	g_autofree gchar *path = NULL;

	g_return_if_fail(VMSUP_IS_RECORD_STORE(self));

	path = vmsup_record_store_get_path(self, name);
	vmsup_record_store_set_aside_path(self, path, reason);
}

/* the plain-English reason (logs only) is returned in @error */
static JsonObject *
vmsup_record_store_load_file(VmsupRecordStore *self, const gchar *path, GError **error)
{
	g_autofree gchar *contents = NULL;
	GStatBuf st;
	gsize length = 0;

	if (g_stat(path, &st) != 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    G_FILE_ERROR,
			    g_file_error_from_errno(saved_errno),
			    "%s",
			    g_strerror(saved_errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a regular file");
		return NULL;
	}
	if (st.st_size > (goffset)self->max_size) {
		g_set_error(error,
			    G_FILE_ERROR,
			    G_FILE_ERROR_INVAL,
			    "%lld bytes is too big for a record (at most %u)",
			    (long long)st.st_size,
			    self->max_size);
		return NULL;
	}
	if (!g_file_get_contents(path, &contents, &length, error))
		return NULL;
	return vmsup_json_parse_object(contents, (gssize)length, error);
}

GHashTable *
vmsup_record_store_load_all(VmsupRecordStore *self, GError **error)
{
	g_autoptr(GHashTable) records = g_hash_table_new_full(g_str_hash,
							      g_str_equal,
							      g_free,
							      (GDestroyNotify)json_object_unref);
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GError) error_local = NULL;
	const gchar *basename;

	g_return_val_if_fail(VMSUP_IS_RECORD_STORE(self), NULL);

	if (!g_file_test(self->dir, G_FILE_TEST_EXISTS))
		return g_steal_pointer(&records);
	dir = g_dir_open(self->dir, 0, &error_local);
	if (dir == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot read the directory '%s': %s; check the permissions of the "
			      "state directory"),
			    self->dir,
			    error_local->message);
		return NULL;
	}
	while ((basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = NULL;
		g_autofree gchar *name = NULL;
		g_autoptr(GError) error_file = NULL;
		JsonObject *record;

		/* temporary files of an interrupted write and set-aside files end differently */
		if (!g_str_has_suffix(basename, ".json"))
			continue;
		path = g_build_filename(self->dir, basename, NULL);
		name = g_strndup(basename, strlen(basename) - strlen(".json"));
		if (!vmsup_name_validate(name, self->kind, &error_file)) {
			vmsup_record_store_set_aside_path(self, path, error_file->message);
			continue;
		}
		record = vmsup_record_store_load_file(self, path, &error_file);
		if (record == NULL) {
			vmsup_record_store_set_aside_path(self, path, error_file->message);
			continue;
		}
		g_hash_table_replace(records, g_steal_pointer(&name), record);
	}
	return g_steal_pointer(&records);
}

static void
vmsup_record_store_set_property(GObject *object,
				guint prop_id,
				const GValue *value,
				GParamSpec *pspec)
{
	VmsupRecordStore *self = VMSUP_RECORD_STORE(object);
	switch (prop_id) {
	case PROP_DIR:
		self->dir = g_value_dup_string(value);
		break;
	case PROP_WHAT:
		self->what = g_value_dup_string(value);
		break;
	case PROP_KIND:
		self->kind = g_value_dup_string(value);
		break;
	case PROP_MAX_SIZE:
		self->max_size = g_value_get_uint(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_record_store_finalize(GObject *object)
{
	VmsupRecordStore *self = VMSUP_RECORD_STORE(object);
	g_free(self->dir);
	g_free(self->what);
	g_free(self->kind);
	G_OBJECT_CLASS(vmsup_record_store_parent_class)->finalize(object);
}

static void
vmsup_record_store_class_init(VmsupRecordStoreClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GParamFlags flags = G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

	object_class->set_property = vmsup_record_store_set_property;
	object_class->finalize = vmsup_record_store_finalize;

	props[PROP_DIR] = g_param_spec_string("dir", NULL, NULL, NULL, flags);
	props[PROP_WHAT] = g_param_spec_string("what", NULL, NULL, NULL, flags);
	props[PROP_KIND] = g_param_spec_string("kind", NULL, NULL, NULL, flags);
	props[PROP_MAX_SIZE] = g_param_spec_uint("max-size", NULL, NULL, 0, G_MAXUINT, 0, flags);
	g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
vmsup_record_store_init(VmsupRecordStore *self)
{
}

VmsupRecordStore *
vmsup_record_store_new(const gchar *dir, const gchar *what, const gchar *kind, guint max_size)
{
	g_return_val_if_fail(dir != NULL, NULL);
	g_return_val_if_fail(what != NULL, NULL);
	g_return_val_if_fail(kind != NULL, NULL);
	return g_object_new(VMSUP_TYPE_RECORD_STORE,
			    "dir",
			    dir,
			    "what",
			    what,
			    "kind",
			    kind,
			    "max-size",
			    max_size,
			    NULL);
}
