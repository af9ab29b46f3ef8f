/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Persistence of VM definitions: one record per VM in a record store, so a
 * daemon killed at any point leaves either the old or the new definition.
 * What makes a stored definition valid is checked here and in the def.
 */

#include "config.h"

#include "vmsup-record-store.h"
#include "vmsup-vm-store.h"

/* a definition is a few hundred bytes; anything this big is not one */
#define VMSUP_VM_STORE_MAX_FILE_SIZE (1024 * 1024)

struct _VmsupVmStore {
	GObject parent_instance;
	gchar *state_dir;          /* owned */
	VmsupRecordStore *records; /* owned: <state_dir>/vms */
};

G_DEFINE_FINAL_TYPE(VmsupVmStore, vmsup_vm_store, G_TYPE_OBJECT)

enum { PROP_0, PROP_STATE_DIR, N_PROPS };
static GParamSpec *props[N_PROPS];

static JsonObject *
vmsup_vm_store_serialize(const VmsupVmDef *def)
{
	JsonObject *obj = vmsup_vm_def_to_json(def);
	json_object_set_int_member(obj, "version", 1);
	return obj;
}

const gchar *
vmsup_vm_store_get_dir(VmsupVmStore *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);
	return vmsup_record_store_get_dir(self->records);
}

gchar *
vmsup_vm_store_get_path(VmsupVmStore *self, const gchar *name)
{
	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);
	return vmsup_record_store_get_path(self->records, name);
}

gboolean
vmsup_vm_store_save(VmsupVmStore *self, const VmsupVmDef *def, GError **error)
{
	g_autoptr(JsonObject) obj = NULL;

	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), FALSE);
	g_return_val_if_fail(def != NULL, FALSE);

	obj = vmsup_vm_store_serialize(def);
	return vmsup_record_store_save(self->records, def->name, obj, error);
}

static void
vmsup_vm_store_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;

	if (!vmsup_record_store_save_finish(VMSUP_RECORD_STORE(source), res, &error)) {
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
	g_autoptr(JsonObject) obj = NULL;

	g_return_if_fail(VMSUP_IS_VM_STORE(self));
	g_return_if_fail(def != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_store_save_async);
	g_task_set_check_cancellable(task, FALSE);
	obj = vmsup_vm_store_serialize(def);
	vmsup_record_store_save_async(self->records,
				      def->name,
				      obj,
				      cancellable,
				      vmsup_vm_store_saved_cb,
				      g_steal_pointer(&task));
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
	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), FALSE);
	return vmsup_record_store_remove(self->records, name, error);
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
	g_autoptr(GHashTable) records = NULL;
	GHashTableIter iter;
	gpointer name;
	gpointer obj;

	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);

	records = vmsup_record_store_load_all(self->records, error);
	if (records == NULL)
		return NULL;
	g_hash_table_iter_init(&iter, records);
	while (g_hash_table_iter_next(&iter, &name, &obj)) {
		g_autoptr(GError) error_def = NULL;
		g_autoptr(VmsupVmDef) def = vmsup_vm_def_new_from_json(obj, &error_def);

		if (def != NULL && g_strcmp0(def->name, name) != 0) {
			g_set_error(&error_def,
				    G_FILE_ERROR,
				    G_FILE_ERROR_INVAL,
				    "it defines VM '%s', not '%s'",
				    def->name,
				    (const gchar *)name);
			g_clear_pointer(&def, vmsup_vm_def_free);
		}
		if (def == NULL) {
			vmsup_record_store_set_aside(self->records, name, error_def->message);
			continue;
		}
		g_ptr_array_add(defs, g_steal_pointer(&def));
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
	g_autofree gchar *dir = NULL;

	G_OBJECT_CLASS(vmsup_vm_store_parent_class)->constructed(object);
	dir = g_build_filename(self->state_dir, "vms", NULL);
	self->records =
	    vmsup_record_store_new(dir, "Definition file", "VM", VMSUP_VM_STORE_MAX_FILE_SIZE);
}

static void
vmsup_vm_store_finalize(GObject *object)
{
	VmsupVmStore *self = VMSUP_VM_STORE(object);
	g_free(self->state_dir);
	g_clear_object(&self->records);
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
