/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One io.github.vmsup.VM1 object per VM under an ObjectManager. The
 * properties are filled from the vm.get result by name (the property
 * "memory-mib" mirrors the member "memory_mib"), so adding a property to the
 * XML needs no code here.
 */

#include "config.h"

#include "vmsup-dbus-vm-objects.h"

struct _VmsupDbusVmObjects {
	GObject parent_instance;
	GDBusObjectManagerServer *manager; /* owned */
	GHashTable *objects; /* owned: name (owned) -> VmsupDBusObjectSkeleton (owned) */
	VmsupDbusVmBindFunc bind;
	gpointer bind_data; /* unowned */
};

G_DEFINE_FINAL_TYPE(VmsupDbusVmObjects, vmsup_dbus_vm_objects, G_TYPE_OBJECT)

gchar *
vmsup_dbus_vm_object_path(const gchar *name)
{
	g_autofree gchar *escaped = NULL;

	g_return_val_if_fail(name != NULL, NULL);

	escaped = g_dbus_escape_object_path(name);
	return g_strconcat(VMSUP_DBUS_VM_PATH_PREFIX, escaped, NULL);
}

/* sets @pspec on @vm1 from the member of @vm it mirrors; absent or null is the default */
static void
vmsup_dbus_vm_objects_set_property(VmsupDBusVM1 *vm1, GParamSpec *pspec, JsonObject *vm)
{
	g_autofree gchar *member = g_strdup(pspec->name);
	g_auto(GValue) value = G_VALUE_INIT;
	g_auto(GValue) json_value = G_VALUE_INIT;
	JsonNode *node;

	g_strdelimit(member, "-", '_');
	node = json_object_get_member(vm, member);
	g_value_init(&value, pspec->value_type);
	if (node == NULL || JSON_NODE_HOLDS_NULL(node)) {
		g_param_value_set_default(pspec, &value);
	} else if (JSON_NODE_HOLDS_VALUE(node)) {
		json_node_get_value(node, &json_value);
		if (!g_value_type_transformable(G_VALUE_TYPE(&json_value), pspec->value_type) ||
		    !g_value_transform(&json_value, &value)) {
			g_debug("VM member '%s' (%s) does not fit property %s, ignoring",
				member,
				G_VALUE_TYPE_NAME(&json_value),
				pspec->name);
			return;
		}
	} else {
		g_debug("VM member '%s' is not a plain value, ignoring", member);
		return;
	}
	g_object_set_property(G_OBJECT(vm1), pspec->name, &value);
}

static void
vmsup_dbus_vm_objects_fill(VmsupDBusVM1 *vm1, JsonObject *vm)
{
	gpointer iface = g_type_default_interface_ref(VMSUP_DBUS_TYPE_VM1);
	guint n_pspecs = 0;
	g_autofree GParamSpec **pspecs = g_object_interface_list_properties(iface, &n_pspecs);

	g_object_freeze_notify(G_OBJECT(vm1));
	for (guint i = 0; i < n_pspecs; i++)
		vmsup_dbus_vm_objects_set_property(vm1, pspecs[i], vm);
	g_object_thaw_notify(G_OBJECT(vm1));
	g_type_default_interface_unref(iface);
}

VmsupDBusVM1 *
vmsup_dbus_vm_objects_lookup(VmsupDbusVmObjects *self, const gchar *name)
{
	VmsupDBusObjectSkeleton *object;

	g_return_val_if_fail(VMSUP_IS_DBUS_VM_OBJECTS(self), NULL);

	object = g_hash_table_lookup(self->objects, name);
	if (object == NULL)
		return NULL;
	return vmsup_dbus_object_peek_vm1(VMSUP_DBUS_OBJECT(object));
}

void
vmsup_dbus_vm_objects_update(VmsupDbusVmObjects *self, const gchar *name, JsonObject *vm)
{
	VmsupDBusObjectSkeleton *object;
	g_autoptr(VmsupDBusVM1) vm1 = NULL;
	g_autofree gchar *path = NULL;

	g_return_if_fail(VMSUP_IS_DBUS_VM_OBJECTS(self));
	g_return_if_fail(name != NULL);
	g_return_if_fail(vm != NULL);

	object = g_hash_table_lookup(self->objects, name);
	if (object != NULL) {
		vmsup_dbus_vm_objects_fill(vmsup_dbus_object_peek_vm1(VMSUP_DBUS_OBJECT(object)),
					   vm);
		return;
	}

	/* filled before export: a new object appears complete, without a PropertiesChanged */
	path = vmsup_dbus_vm_object_path(name);
	vm1 = vmsup_dbus_vm1_skeleton_new();
	vmsup_dbus_vm_objects_fill(vm1, vm);
	if (self->bind != NULL)
		self->bind(vm1, name, self->bind_data);
	object = vmsup_dbus_object_skeleton_new(path);
	vmsup_dbus_object_skeleton_set_vm1(object, vm1);
	g_dbus_object_manager_server_export(self->manager, G_DBUS_OBJECT_SKELETON(object));
	g_hash_table_insert(self->objects, g_strdup(name), object);
}

void
vmsup_dbus_vm_objects_remove(VmsupDbusVmObjects *self, const gchar *name)
{
	VmsupDBusObjectSkeleton *object;

	g_return_if_fail(VMSUP_IS_DBUS_VM_OBJECTS(self));
	g_return_if_fail(name != NULL);

	object = g_hash_table_lookup(self->objects, name);
	if (object == NULL)
		return;
	g_dbus_object_manager_server_unexport(self->manager,
					      g_dbus_object_get_object_path(G_DBUS_OBJECT(object)));
	g_hash_table_remove(self->objects, name);
}

GDBusObjectManagerServer *
vmsup_dbus_vm_objects_get_manager(VmsupDbusVmObjects *self)
{
	g_return_val_if_fail(VMSUP_IS_DBUS_VM_OBJECTS(self), NULL);
	return self->manager;
}

static void
vmsup_dbus_vm_objects_dispose(GObject *object)
{
	VmsupDbusVmObjects *self = VMSUP_DBUS_VM_OBJECTS(object);

	if (self->manager != NULL)
		g_dbus_object_manager_server_set_connection(self->manager, NULL);
	g_hash_table_remove_all(self->objects);
	g_clear_object(&self->manager);
	G_OBJECT_CLASS(vmsup_dbus_vm_objects_parent_class)->dispose(object);
}

static void
vmsup_dbus_vm_objects_finalize(GObject *object)
{
	VmsupDbusVmObjects *self = VMSUP_DBUS_VM_OBJECTS(object);

	g_hash_table_unref(self->objects);
	G_OBJECT_CLASS(vmsup_dbus_vm_objects_parent_class)->finalize(object);
}

static void
vmsup_dbus_vm_objects_class_init(VmsupDbusVmObjectsClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = vmsup_dbus_vm_objects_dispose;
	object_class->finalize = vmsup_dbus_vm_objects_finalize;
}

static void
vmsup_dbus_vm_objects_init(VmsupDbusVmObjects *self)
{
	self->manager = g_dbus_object_manager_server_new(VMSUP_DBUS_SUPERVISOR_PATH);
	self->objects = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
}

VmsupDbusVmObjects *
vmsup_dbus_vm_objects_new(VmsupDbusVmBindFunc bind, gpointer bind_data)
{
	VmsupDbusVmObjects *self = g_object_new(VMSUP_TYPE_DBUS_VM_OBJECTS, NULL);

	self->bind = bind;
	self->bind_data = bind_data;
	return self;
}
