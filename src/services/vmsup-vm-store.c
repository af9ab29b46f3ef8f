/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Persistence of VM definitions: one JSON file per VM, replaced atomically
 * and durably, so a daemon killed at any point leaves either the old or the
 * new definition, never half a file.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-name.h"
#include "vmsup-vm-store.h"

/* a definition is a few hundred bytes; anything this big is not one */
#define VMSUP_VM_STORE_MAX_FILE_SIZE (1024 * 1024)

struct _VmsupVmStore {
	GObject parent_instance;
	gchar *state_dir; /* owned */
	gchar *dir;       /* owned: <state_dir>/vms */
};

G_DEFINE_FINAL_TYPE(VmsupVmStore, vmsup_vm_store, G_TYPE_OBJECT)

enum { PROP_0, PROP_STATE_DIR, N_PROPS };
static GParamSpec *props[N_PROPS];

typedef struct {
	gchar *name;
	gchar *path;
	gchar *contents;
} VmsupVmStoreWrite;

static void
vmsup_vm_store_write_free(VmsupVmStoreWrite *write)
{
	g_free(write->name);
	g_free(write->path);
	g_free(write->contents);
	g_free(write);
}

static gchar *
vmsup_vm_store_serialize(const VmsupVmDef *def)
{
	g_autoptr(JsonObject) obj = vmsup_vm_def_to_json(def);
	g_autofree gchar *json = NULL;
	json_object_set_int_member(obj, "version", 1);
	json = vmsup_json_object_to_string(obj, TRUE);
	return g_strconcat(json, "\n", NULL);
}

static gboolean
vmsup_vm_store_write(const gchar *dir, VmsupVmStoreWrite *write, GError **error)
{
	g_autoptr(GError) error_local = NULL;

	if (g_mkdir_with_parents(dir, 0700) != 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot create the state directory '%s': %s; check --state-dir and "
			      "its permissions"),
			    dir,
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
			    _("Cannot save the definition of VM '%s': %s; check free space and "
			      "permissions of the state directory"),
			    write->name,
			    error_local->message);
		return FALSE;
	}
	return TRUE;
}

static VmsupVmStoreWrite *
vmsup_vm_store_write_new(VmsupVmStore *self, const VmsupVmDef *def)
{
	VmsupVmStoreWrite *write = g_new0(VmsupVmStoreWrite, 1);
	write->name = g_strdup(def->name);
	write->path = vmsup_vm_store_get_path(self, def->name);
	write->contents = vmsup_vm_store_serialize(def);
	return write;
}

const gchar *
vmsup_vm_store_get_dir(VmsupVmStore *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);
	return self->dir;
}

gchar *
vmsup_vm_store_get_path(VmsupVmStore *self, const gchar *name)
{
	g_autofree gchar *basename = g_strconcat(name, ".json", NULL);
	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);
	return g_build_filename(self->dir, basename, NULL);
}

gboolean
vmsup_vm_store_save(VmsupVmStore *self, const VmsupVmDef *def, GError **error)
{
	VmsupVmStoreWrite *write;
	gboolean ret;

	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), FALSE);
	g_return_val_if_fail(def != NULL, FALSE);

	write = vmsup_vm_store_write_new(self, def);
	ret = vmsup_vm_store_write(self->dir, write, error);
	vmsup_vm_store_write_free(write);
	return ret;
}

static void
vmsup_vm_store_save_thread(GTask *task,
			   gpointer source_object,
			   gpointer task_data,
			   GCancellable *cancellable)
{
	VmsupVmStore *self = VMSUP_VM_STORE(source_object);
	VmsupVmStoreWrite *write = task_data;
	GError *error = NULL;

	/* once the write has begun it completes: cancelling only helps before */
	if (g_cancellable_is_cancelled(cancellable)) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_CANCELLED,
					_("Saving the definition of VM '%s' was cancelled"),
					write->name);
		return;
	}
	if (!vmsup_vm_store_write(self->dir, write, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_store_save_async(VmsupVmStore *self,
			  const VmsupVmDef *def,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(VMSUP_IS_VM_STORE(self));
	g_return_if_fail(def != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_store_save_async);
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_task_data(task,
			     vmsup_vm_store_write_new(self, def),
			     (GDestroyNotify)vmsup_vm_store_write_free);
	g_task_run_in_thread(task, vmsup_vm_store_save_thread);
}

gboolean
vmsup_vm_store_save_finish(VmsupVmStore *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

gboolean
vmsup_vm_store_remove(VmsupVmStore *self, const gchar *name, GError **error)
{
	g_autofree gchar *path = NULL;

	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), FALSE);

	path = vmsup_vm_store_get_path(self, name);
	if (g_unlink(path) != 0 && errno != ENOENT) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot remove the definition file '%s': %s"),
			    path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	return TRUE;
}

static void
vmsup_vm_store_set_aside(const gchar *path, const gchar *reason)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree gchar *stamp = g_date_time_format(now, "%Y%m%dT%H%M%SZ");
	g_autofree gchar *target = g_strdup_printf("%s.corrupt-%s", path, stamp);

	for (guint i = 1; g_file_test(target, G_FILE_TEST_EXISTS); i++) {
		g_free(target);
		target = g_strdup_printf("%s.corrupt-%s.%u", path, stamp, i);
	}
	if (g_rename(path, target) != 0) {
		g_warning("Definition file '%s' is unreadable (%s) and cannot be moved aside: %s, "
			  "ignoring",
			  path,
			  reason,
			  g_strerror(errno));
		return;
	}
	g_warning("Definition file '%s' is unreadable (%s); moved aside to '%s', ignoring",
		  path,
		  reason,
		  target);
}

static VmsupVmDef *
vmsup_vm_store_load_file(const gchar *path, const gchar *name, GError **error)
{
	g_autofree gchar *contents = NULL;
	g_autoptr(JsonObject) obj = NULL;
	g_autoptr(VmsupVmDef) def = NULL;
	GStatBuf st;
	gsize length = 0;

	if (g_stat(path, &st) != 0) {
		g_set_error(error,
			    G_FILE_ERROR,
			    g_file_error_from_errno(errno),
			    "%s",
			    g_strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a regular file");
		return NULL;
	}
	if (st.st_size > VMSUP_VM_STORE_MAX_FILE_SIZE) {
		g_set_error(error,
			    G_FILE_ERROR,
			    G_FILE_ERROR_INVAL,
			    "%" G_GINT64_FORMAT " bytes is too big for a definition",
			    (gint64)st.st_size);
		return NULL;
	}
	if (!g_file_get_contents(path, &contents, &length, error))
		return NULL;
	obj = vmsup_json_parse_object(contents, (gssize)length, error);
	if (obj == NULL)
		return NULL;
	def = vmsup_vm_def_new_from_json(obj, error);
	if (def == NULL)
		return NULL;
	if (g_strcmp0(def->name, name) != 0) {
		g_set_error(error,
			    G_FILE_ERROR,
			    G_FILE_ERROR_INVAL,
			    "it defines VM '%s', not '%s'",
			    def->name,
			    name);
		return NULL;
	}
	return g_steal_pointer(&def);
}

static gint
vmsup_vm_store_compare_defs(gconstpointer a, gconstpointer b)
{
	const VmsupVmDef *def_a = *(const VmsupVmDef *const *)a;
	const VmsupVmDef *def_b = *(const VmsupVmDef *const *)b;
	return g_strcmp0(def_a->name, def_b->name);
}

GPtrArray *
vmsup_vm_store_load_all(VmsupVmStore *self, GError **error)
{
	g_autoptr(GPtrArray) defs =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_vm_def_free);
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GError) error_local = NULL;
	const gchar *basename;

	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);

	if (!g_file_test(self->dir, G_FILE_TEST_EXISTS))
		return g_steal_pointer(&defs);
	dir = g_dir_open(self->dir, 0, &error_local);
	if (dir == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot read the VM definitions in '%s': %s"),
			    self->dir,
			    error_local->message);
		return NULL;
	}
	while ((basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = NULL;
		g_autofree gchar *name = NULL;
		g_autoptr(GError) error_file = NULL;
		VmsupVmDef *def;

		/* temporary files of an interrupted write and set-aside files end differently */
		if (!g_str_has_suffix(basename, ".json"))
			continue;
		path = g_build_filename(self->dir, basename, NULL);
		name = g_strndup(basename, strlen(basename) - strlen(".json"));
		if (!vmsup_name_validate(name, "VM", &error_file)) {
			vmsup_vm_store_set_aside(path, error_file->message);
			continue;
		}
		def = vmsup_vm_store_load_file(path, name, &error_file);
		if (def == NULL) {
			vmsup_vm_store_set_aside(path, error_file->message);
			continue;
		}
		g_ptr_array_add(defs, def);
	}
	g_ptr_array_sort(defs, vmsup_vm_store_compare_defs);
	return g_steal_pointer(&defs);
}

static void
vmsup_vm_store_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	VmsupVmStore *self = VMSUP_VM_STORE(object);
	switch (prop_id) {
	case PROP_STATE_DIR:
		g_value_set_string(value, self->state_dir);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_vm_store_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
	VmsupVmStore *self = VMSUP_VM_STORE(object);
	switch (prop_id) {
	case PROP_STATE_DIR:
		self->state_dir = g_value_dup_string(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_vm_store_constructed(GObject *object)
{
	VmsupVmStore *self = VMSUP_VM_STORE(object);
	G_OBJECT_CLASS(vmsup_vm_store_parent_class)->constructed(object);
	self->dir = g_build_filename(self->state_dir, "vms", NULL);
}

static void
vmsup_vm_store_finalize(GObject *object)
{
	VmsupVmStore *self = VMSUP_VM_STORE(object);
	g_free(self->state_dir);
	g_free(self->dir);
	G_OBJECT_CLASS(vmsup_vm_store_parent_class)->finalize(object);
}

static void
vmsup_vm_store_class_init(VmsupVmStoreClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->get_property = vmsup_vm_store_get_property;
	object_class->set_property = vmsup_vm_store_set_property;
	object_class->constructed = vmsup_vm_store_constructed;
	object_class->finalize = vmsup_vm_store_finalize;

	props[PROP_STATE_DIR] = g_param_spec_string("state-dir",
						    NULL,
						    NULL,
						    NULL,
						    G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
							G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
vmsup_vm_store_init(VmsupVmStore *self)
{
}

VmsupVmStore *
vmsup_vm_store_new(const gchar *state_dir)
{
	g_return_val_if_fail(state_dir != NULL, NULL);
	return g_object_new(VMSUP_TYPE_VM_STORE, "state-dir", state_dir, NULL);
}
