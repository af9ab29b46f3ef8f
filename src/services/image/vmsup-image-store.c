/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The image store: base images VMs are made from, each a read-only file
 * under <state dir>/images/ with a record of what it is. An import checks
 * everything first, then copies in a thread under a temporary name; the
 * rename into place is its last step, so the store never shows half an image.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-image-copy.h"
#include "vmsup-image-hooks.h"
#include "vmsup-image-source.h"
#include "vmsup-image-build.h"
#include "vmsup-image-store-private.h"
#include "vmsup-image-store.h"
#include "vmsup-name.h"
#include "vmsup-record-store.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-hooks.h"

#define VMSUP_IMAGE_STORE_RECORD_MAX_SIZE (64 * 1024)

struct _VmsupImageStore {
	GObject parent_instance;
	gchar *dir;                /* owned: <state dir>/images */
	VmsupRecordStore *records; /* owned */
	GClosure *image_users;     /* owned, may be NULL */
	GClosure *lookup_hook;     /* owned */
	GHashTable *importing;     /* owned: names of imports under way */
};

G_DEFINE_FINAL_TYPE(VmsupImageStore, vmsup_image_store, G_TYPE_OBJECT)

enum { PROP_0, PROP_STATE_DIR, PROP_IMAGE_USERS, N_PROPS };
static GParamSpec *props[N_PROPS];

/* one import: what the checks found, then what the copy made */
typedef struct {
	VmsupImageStore *self; /* owned ref */
	gint fd;
	gchar *source; /* owned */
	gchar *name;   /* owned */
	VmsupImageSource checked;
	gchar *final_path; /* owned */
	VmsupImageStoreProgressFunc progress;
	gpointer progress_data;
	GDestroyNotify progress_destroy;
	GMainContext *context; /* owned ref: where progress is reported */
} VmsupImageImport;

static void
vmsup_image_import_free(VmsupImageImport *import)
{
	if (import->fd >= 0)
		close(import->fd);
	if (import->progress_destroy != NULL)
		import->progress_destroy(import->progress_data);
	g_main_context_unref(import->context);
	g_object_unref(import->self);
	g_free(import->source);
	g_free(import->name);
	g_free(import->final_path);
	g_free(import);
}

static gchar *
vmsup_image_store_image_path(VmsupImageStore *self, const gchar *name, const gchar *format)
{
	g_autofree gchar *basename = g_strconcat(name, ".", format, NULL);
	return g_build_filename(self->dir, basename, NULL);
}

static void
vmsup_image_store_not_found(const gchar *name, GError **error)
{
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_NOT_FOUND,
		    _("Image '%s' is not in the store; 'vmsup image list' shows those that are"),
		    name);
}

/* the record of @name whose image file is in place; NULL with NOT_FOUND otherwise */
static JsonObject *
vmsup_image_store_load(VmsupImageStore *self, const gchar *name, gchar **out_path, GError **error)
{
	g_autoptr(GHashTable) all = NULL;
	g_autofree gchar *path = NULL;
	JsonObject *record;
	const gchar *format;

	if (!vmsup_name_validate(name, "image", error))
		return NULL;
	all = vmsup_record_store_load_all(self->records, error);
	if (all == NULL)
		return NULL;
	record = g_hash_table_lookup(all, name);
	format = record != NULL ? json_object_get_string_member_with_default(record, "format", NULL)
				: NULL;
	/* a record without its file is what an interrupted import leaves: not an image */
	if (g_strcmp0(format, "qcow2") == 0 || g_strcmp0(format, "raw") == 0)
		path = vmsup_image_store_image_path(self, name, format);
	if (path == NULL || !g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		vmsup_image_store_not_found(name, error);
		return NULL;
	}
	if (out_path != NULL)
		*out_path = g_steal_pointer(&path);
	return json_object_ref(record);
}

/* a record as list and get show it: with its file and the VMs over it */
static JsonObject *
vmsup_image_store_describe(VmsupImageStore *self, JsonObject *record, const gchar *path)
{
	g_auto(GStrv) users = vmsup_image_hooks_users(self->image_users, path);
	JsonObject *result = json_object_new();
	JsonArray *used_by = json_array_new();
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;

	json_object_iter_init(&iter, record);
	while (json_object_iter_next(&iter, &member, &node))
		json_object_set_member(result, member, json_node_copy(node));
	json_object_set_string_member(result, "path", path);
	for (guint i = 0; users[i] != NULL; i++)
		json_array_add_string_element(used_by, users[i]);
	json_object_set_array_member(result, "used_by", used_by);
	return result;
}

const gchar *
vmsup_image_store_get_dir(VmsupImageStore *self)
{
	g_return_val_if_fail(VMSUP_IS_IMAGE_STORE(self), NULL);
	return self->dir;
}

JsonObject *
vmsup_image_store_get(VmsupImageStore *self, const gchar *name, GError **error)
{
	g_autoptr(JsonObject) record = NULL;
	g_autofree gchar *path = NULL;

	g_return_val_if_fail(VMSUP_IS_IMAGE_STORE(self), NULL);

	record = vmsup_image_store_load(self, name, &path, error);
	if (record == NULL)
		return NULL;
	return vmsup_image_store_describe(self, record, path);
}

gchar *
vmsup_image_store_lookup(VmsupImageStore *self, const gchar *name, GError **error)
{
	g_autoptr(JsonObject) record = NULL;
	gchar *path = NULL;

	g_return_val_if_fail(VMSUP_IS_IMAGE_STORE(self), NULL);

	record = vmsup_image_store_load(self, name, &path, error);
	return record != NULL ? path : NULL;
}

static gint
vmsup_image_store_compare_names(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

JsonObject *
vmsup_image_store_list(VmsupImageStore *self, GError **error)
{
	g_autoptr(GHashTable) all = NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new();
	JsonObject *result;
	JsonArray *images;
	GHashTableIter iter;
	gpointer key;

	g_return_val_if_fail(VMSUP_IS_IMAGE_STORE(self), NULL);

	all = vmsup_record_store_load_all(self->records, error);
	if (all == NULL)
		return NULL;
	g_hash_table_iter_init(&iter, all);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		g_ptr_array_add(names, key);
	g_ptr_array_sort(names, vmsup_image_store_compare_names);
	images = json_array_new();
	for (guint i = 0; i < names->len; i++) {
		const gchar *name = g_ptr_array_index(names, i);
		JsonObject *record = g_hash_table_lookup(all, name);
		const gchar *format =
		    json_object_get_string_member_with_default(record, "format", "");
		g_autofree gchar *path = NULL;

		if (g_strcmp0(format, "qcow2") != 0 && g_strcmp0(format, "raw") != 0)
			continue;
		path = vmsup_image_store_image_path(self, name, format);
		if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
			continue;
		json_array_add_object_element(images,
					      vmsup_image_store_describe(self, record, path));
	}
	result = json_object_new();
	json_object_set_array_member(result, "images", images);
	return result;
}

gboolean
vmsup_image_store_delete(VmsupImageStore *self, const gchar *name, GError **error)
{
	g_autoptr(JsonObject) record = NULL;
	g_autofree gchar *path = NULL;
	g_auto(GStrv) users = NULL;

	g_return_val_if_fail(VMSUP_IS_IMAGE_STORE(self), FALSE);

	record = vmsup_image_store_load(self, name, &path, error);
	if (record == NULL)
		return FALSE;
	users = vmsup_image_hooks_users(self->image_users, path);
	if (users[0] != NULL) {
		g_autofree gchar *list = g_strjoinv("', '", users);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    /* TRANSLATORS: Image 'debian' is in use by the VMs 'a', 'b'; ... */
			    _("Image '%s' is in use by the VMs '%s'; delete them first"),
			    name,
			    list);
		return FALSE;
	}
	/* the file first: a record left alone reads as no image */
	if (g_unlink(path) != 0 && errno != ENOENT) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot remove the image file '%s': %s; check the permissions of the "
			      "state directory"),
			    path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	return vmsup_record_store_remove(self->records, name, error);
}

/* import: the checks, all before anything is created */

gboolean
vmsup_image_store_check_name(VmsupImageStore *self, const gchar *name, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autoptr(JsonObject) record = NULL;

	if (!vmsup_name_validate(name, "image", error))
		return FALSE;
	if (g_hash_table_contains(self->importing, name)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    _("Image '%s' is being imported or built right now; wait for that, or "
			      "choose another name"),
			    name);
		return FALSE;
	}
	record = vmsup_image_store_load(self, name, NULL, &error_local);
	if (record != NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_ALREADY_EXISTS,
			    _("Image '%s' is already in the store; choose another name, or delete "
			      "it first with 'vmsup image delete %s'"),
			    name,
			    name);
		return FALSE;
	}
	if (!g_error_matches(error_local, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND)) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	return TRUE;
}

/* import: the copy, in a thread */

typedef struct {
	GTask *task; /* owned ref */
	gdouble fraction;
} VmsupImageProgress;

static gboolean
vmsup_image_store_progress_cb(gpointer user_data)
{
	VmsupImageProgress *progress = user_data;
	VmsupImageImport *import = g_task_get_task_data(progress->task);

	if (!g_task_get_completed(progress->task))
		import->progress(progress->fraction, import->progress_data);
	return G_SOURCE_REMOVE;
}

static void
vmsup_image_progress_free(VmsupImageProgress *progress)
{
	g_object_unref(progress->task);
	g_free(progress);
}

/* in the copying thread: the caller hears in its own context */
static void
vmsup_image_store_copy_progress_cb(gdouble fraction, gpointer user_data)
{
	GTask *task = user_data;
	VmsupImageImport *import = g_task_get_task_data(task);
	VmsupImageProgress *progress;

	if (import->progress == NULL)
		return;
	progress = g_new0(VmsupImageProgress, 1);
	progress->task = g_object_ref(task);
	progress->fraction = fraction;
	g_main_context_invoke_full(import->context,
				   G_PRIORITY_DEFAULT,
				   vmsup_image_store_progress_cb,
				   progress,
				   (GDestroyNotify)vmsup_image_progress_free);
}

static JsonObject *
vmsup_image_store_new_record(VmsupImageImport *import, gint out_fd, GChecksum *checksum)
{
	JsonObject *record = json_object_new();
	g_autofree gchar *imported_at =
	    vmsup_vm_def_format_time(g_get_real_time() / G_USEC_PER_SEC);
	struct stat st = {0};

	if (fstat(out_fd, &st) != 0)
		st.st_blocks = 0;
	json_object_set_string_member(record, "name", import->name);
	json_object_set_string_member(record, "format", import->checked.format);
	json_object_set_int_member(record,
				   "virtual_size_bytes",
				   (gint64)import->checked.virtual_size);
	json_object_set_int_member(record, "disk_size_bytes", (gint64)st.st_blocks * 512);
	json_object_set_string_member(record, "sha256", g_checksum_get_string(checksum));
	json_object_set_string_member(record, "imported_at", imported_at);
	json_object_set_string_member(record, "source", import->source);
	return record;
}

static void
vmsup_image_store_sync_dir(const gchar *dir)
{
	gint fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fsync(fd) != 0)
		g_debug("cannot sync '%s': %s", dir, g_strerror(errno));
	close(fd);
}

static JsonObject *
vmsup_image_store_import_in_thread(GTask *task,
				   VmsupImageImport *import,
				   GCancellable *cancellable,
				   GError **error)
{
	VmsupImageStore *self = import->self;
	g_autoptr(GChecksum) checksum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree gchar *tmp_path = NULL;
	g_autoptr(JsonObject) record = NULL;
	gint out_fd;
	gboolean ok;

	if (g_mkdir_with_parents(self->dir, 0700) != 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot create the image directory '%s': %s; check --state-dir and "
			      "its permissions"),
			    self->dir,
			    g_strerror(saved_errno));
		return NULL;
	}
	/* a name that is no record's and no image's: ".<name>.import-XXXXXX" */
	tmp_path = g_strdup_printf("%s/.%s.import-XXXXXX", self->dir, import->name);
	out_fd = g_mkstemp_full(tmp_path, O_RDWR | O_CLOEXEC, 0600);
	if (out_fd < 0) {
		vmsup_image_copy_write_failed(tmp_path, errno, error);
		return NULL;
	}
	ok = vmsup_image_copy(import->fd,
			      import->source,
			      import->checked.size,
			      out_fd,
			      tmp_path,
			      checksum,
			      vmsup_image_store_copy_progress_cb,
			      task,
			      cancellable,
			      error);
	if (ok) {
		record = vmsup_image_store_new_record(import, out_fd, checksum);
		ok = fchmod(out_fd, 0444) == 0 ||
		     vmsup_image_copy_write_failed(tmp_path, errno, error);
	}
	close(out_fd);
	ok = ok && !vmsup_image_copy_cancelled(cancellable, import->source, error) &&
	     vmsup_record_store_save(self->records, import->name, record, error);
	if (ok && g_rename(tmp_path, import->final_path) != 0) {
		vmsup_image_copy_write_failed(import->final_path, errno, error);
		vmsup_record_store_remove(self->records, import->name, NULL);
		ok = FALSE;
	}
	if (!ok) {
		if (g_unlink(tmp_path) != 0)
			g_debug("cannot remove '%s': %s", tmp_path, g_strerror(errno));
		return NULL;
	}
	vmsup_image_store_sync_dir(self->dir);
	return g_steal_pointer(&record);
}

static void
vmsup_image_store_import_thread(GTask *task,
				gpointer source_object,
				gpointer task_data,
				GCancellable *cancellable)
{
	GTask *outer = task_data;
	VmsupImageImport *import = g_task_get_task_data(outer);
	GError *error = NULL;
	JsonObject *record = vmsup_image_store_import_in_thread(outer, import, cancellable, &error);

	if (record == NULL) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, record, (GDestroyNotify)json_object_unref);
}

/* back in the caller's context: the name is free again, then the caller hears */
static void
vmsup_image_store_import_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupImageStore *self = VMSUP_IMAGE_STORE(source);
	VmsupImageImport *import = g_task_get_task_data(task);
	GError *error = NULL;
	JsonObject *record = g_task_propagate_pointer(G_TASK(res), &error);

	g_hash_table_remove(self->importing, import->name);
	if (record == NULL) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, record, (GDestroyNotify)json_object_unref);
}

/* a new import of @fd, checked: NULL with @error when it cannot be done; @fd is taken either way */
static VmsupImageImport *
vmsup_image_store_prepare(VmsupImageStore *self,
			  gint fd,
			  const gchar *path,
			  const gchar *source,
			  const gchar *name,
			  GError **error)
{
	VmsupImageImport *import = g_new0(VmsupImageImport, 1);

	import->self = g_object_ref(self);
	import->fd = fd;
	import->source = g_strdup(source != NULL ? source : path);
	import->context = g_main_context_ref_thread_default();
	import->name = name != NULL ? g_strdup(name) : vmsup_image_source_default_name(path);
	if (import->name == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("No image name can be made from '%s'; pass a name"),
			    path);
		vmsup_image_import_free(import);
		return NULL;
	}
	if (!vmsup_image_store_check_name(self, import->name, error) ||
	    !vmsup_image_source_check(import->fd, path, &import->checked, error)) {
		vmsup_image_import_free(import);
		return NULL;
	}
	import->final_path =
	    vmsup_image_store_image_path(self, import->name, import->checked.format);
	return import;
}

gchar *
vmsup_image_store_check_import(VmsupImageStore *self,
			       gint fd,
			       const gchar *path,
			       const gchar *name,
			       GError **error)
{
	VmsupImageImport *import;
	gchar *checked;

	g_return_val_if_fail(VMSUP_IS_IMAGE_STORE(self), NULL);
	g_return_val_if_fail(fd >= 0, NULL);
	g_return_val_if_fail(path != NULL, NULL);

	/* the descriptor is borrowed here: a copy is checked */
	import =
	    vmsup_image_store_prepare(self, fcntl(fd, F_DUPFD_CLOEXEC, 0), path, NULL, name, error);
	if (import == NULL)
		return NULL;
	checked = g_strdup(import->name);
	vmsup_image_import_free(import);
	return checked;
}

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
			       gpointer user_data)
{
	vmsup_image_store_import_from_async(self,
					    fd,
					    path,
					    NULL,
					    name,
					    progress,
					    progress_data,
					    progress_destroy,
					    cancellable,
					    callback,
					    user_data);
}

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
				    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GTask) thread = NULL;
	VmsupImageImport *import;
	GError *error = NULL;

	g_return_if_fail(VMSUP_IS_IMAGE_STORE(self));
	g_return_if_fail(fd >= 0);
	g_return_if_fail(path != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_image_store_import_async);
	/* a cancel still removes what the copy made before the task answers */
	g_task_set_check_cancellable(task, FALSE);

	import = vmsup_image_store_prepare(self, fd, path, source, name, &error);
	if (import == NULL) {
		if (progress_destroy != NULL)
			progress_destroy(progress_data);
		g_task_return_error(task, error);
		return;
	}
	import->progress = progress;
	import->progress_data = progress_data;
	import->progress_destroy = progress_destroy;
	/* the name is taken until the copy has ended, one way or the other */
	g_hash_table_add(self->importing, g_strdup(import->name));
	g_task_set_task_data(task, import, (GDestroyNotify)vmsup_image_import_free);
	thread =
	    g_task_new(self, cancellable, vmsup_image_store_import_done_cb, g_object_ref(task));
	g_task_set_source_tag(thread, vmsup_image_store_import_thread);
	g_task_set_check_cancellable(thread, FALSE);
	g_task_set_task_data(thread, task, NULL);
	g_task_run_in_thread(thread, vmsup_image_store_import_thread);
}

JsonObject *
vmsup_image_store_import_finish(VmsupImageStore *self, GAsyncResult *res, GError **error)
{
	VmsupImageImport *import;
	g_autoptr(JsonObject) record = NULL;

	g_return_val_if_fail(g_task_is_valid(res, self), NULL);

	record = g_task_propagate_pointer(G_TASK(res), error);
	if (record == NULL)
		return NULL;
	import = g_task_get_task_data(G_TASK(res));
	return vmsup_image_store_describe(self, record, import->final_path);
}

void
vmsup_image_store_reserve(VmsupImageStore *self, const gchar *name)
{
	g_hash_table_add(self->importing, g_strdup(name));
}

void
vmsup_image_store_release(VmsupImageStore *self, const gchar *name)
{
	g_hash_table_remove(self->importing, name);
}

static gchar *
vmsup_image_store_lookup_hook(const gchar *name, GError **error, VmsupImageStore *self)
{
	return vmsup_image_store_lookup(self, name, error);
}

GClosure *
vmsup_image_store_get_lookup_hook(VmsupImageStore *self)
{
	g_return_val_if_fail(VMSUP_IS_IMAGE_STORE(self), NULL);
	return self->lookup_hook;
}

static void
vmsup_image_store_set_property(GObject *object,
			       guint prop_id,
			       const GValue *value,
			       GParamSpec *pspec)
{
	VmsupImageStore *self = VMSUP_IMAGE_STORE(object);
	switch (prop_id) {
	case PROP_STATE_DIR:
		self->dir = g_build_filename(g_value_get_string(value), "images", NULL);
		break;
	case PROP_IMAGE_USERS:
		self->image_users = vmsup_vm_hooks_take_closure(g_value_get_boxed(value));
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

/*
 * What an import or a build cut short by the daemon's end leaves: its
 * temporary file or work directory, or a record whose image was never
 * renamed into place. Removed at start,
 * when no import of this store can be running.
 */
static void
vmsup_image_store_sweep(VmsupImageStore *self)
{
	g_autoptr(GDir) dir = g_dir_open(self->dir, 0, NULL);
	const gchar *basename;

	while (dir != NULL && (basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(self->dir, basename, NULL);
		g_autofree gchar *name = NULL;
		g_autofree gchar *qcow2 = NULL;
		g_autofree gchar *raw = NULL;

		if (basename[0] == '.' && strstr(basename, ".build-") != NULL) {
			g_message("removing '%s', left by an image build that did not finish",
				  path);
			vmsup_image_build_remove_work(path);
			continue;
		}
		if (basename[0] == '.' && strstr(basename, ".import-") != NULL) {
			g_message("removing '%s', left by an import that did not finish", path);
			if (g_unlink(path) != 0)
				g_warning("cannot remove '%s': %s, ignoring",
					  path,
					  g_strerror(errno));
			continue;
		}
		if (!g_str_has_suffix(basename, ".json"))
			continue;
		name = g_strndup(basename, strlen(basename) - strlen(".json"));
		qcow2 = vmsup_image_store_image_path(self, name, "qcow2");
		raw = vmsup_image_store_image_path(self, name, "raw");
		if (g_file_test(qcow2, G_FILE_TEST_EXISTS) || g_file_test(raw, G_FILE_TEST_EXISTS))
			continue;
		g_message("removing '%s', the record of an import that did not finish", path);
		if (g_unlink(path) != 0)
			g_warning("cannot remove '%s': %s, ignoring", path, g_strerror(errno));
	}
}

static void
vmsup_image_store_constructed(GObject *object)
{
	VmsupImageStore *self = VMSUP_IMAGE_STORE(object);
	GClosure *closure;

	G_OBJECT_CLASS(vmsup_image_store_parent_class)->constructed(object);
	self->records = vmsup_record_store_new(self->dir,
					       "Image record",
					       "image",
					       VMSUP_IMAGE_STORE_RECORD_MAX_SIZE);
	closure = g_cclosure_new_object(G_CALLBACK(vmsup_image_store_lookup_hook), G_OBJECT(self));
	g_closure_set_marshal(closure, g_cclosure_marshal_generic);
	self->lookup_hook = vmsup_vm_hooks_take_closure(closure);
	vmsup_image_store_sweep(self);
}

static void
vmsup_image_store_finalize(GObject *object)
{
	VmsupImageStore *self = VMSUP_IMAGE_STORE(object);

	g_clear_pointer(&self->image_users, g_closure_unref);
	g_clear_pointer(&self->lookup_hook, g_closure_unref);
	g_clear_object(&self->records);
	g_hash_table_unref(self->importing);
	g_free(self->dir);
	G_OBJECT_CLASS(vmsup_image_store_parent_class)->finalize(object);
}

static void
vmsup_image_store_class_init(VmsupImageStoreClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GParamFlags flags = G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

	object_class->set_property = vmsup_image_store_set_property;
	object_class->constructed = vmsup_image_store_constructed;
	object_class->finalize = vmsup_image_store_finalize;

	props[PROP_STATE_DIR] = g_param_spec_string("state-dir", NULL, NULL, NULL, flags);
	props[PROP_IMAGE_USERS] =
	    g_param_spec_boxed("image-users", NULL, NULL, G_TYPE_CLOSURE, flags);
	g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
vmsup_image_store_init(VmsupImageStore *self)
{
	self->importing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

VmsupImageStore *
vmsup_image_store_new(const gchar *state_dir, GClosure *image_users)
{
	g_return_val_if_fail(state_dir != NULL, NULL);
	return g_object_new(VMSUP_TYPE_IMAGE_STORE,
			    "state-dir",
			    state_dir,
			    "image-users",
			    image_users,
			    NULL);
}
