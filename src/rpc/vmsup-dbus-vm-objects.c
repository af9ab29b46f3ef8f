/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One io.github.vmsup.VM1 object per VM, and the ObjectManager over them.
 * The properties are filled from the vm.get result by name (the property
 * "memory-mib" mirrors the member "memory_mib"), so adding a property to the
 * XML needs no code here.
 *
 * The statistics properties (CpuPercent, RssBytes, UptimeSeconds) are not
 * in vm.get: each sample of the VM sets them (vmsup_dbus_vm_objects_update_stats()),
 * and a VM that does not run shows them as 0. The skeleton sends what
 * changed, and only that, in one PropertiesChanged.
 *
 * The ObjectManager is our own interface skeleton rather than
 * GDBusObjectManagerServer, whose GetManagedObjects answers every caller
 * alike: here it passes "g-authorize-method" like every other call and
 * lists for a caller bound by the owner rule only its own VMs.
 */

#include "config.h"

#include <unistd.h>

#include "vmsup-dbus-vm-objects.h"
#include "vmsup-dbus-vm-skeleton.h"
#include "vmsup-json.h"

#define VMSUP_DBUS_OBJECT_MANAGER_IFACE "org.freedesktop.DBus.ObjectManager"

static const gchar vmsup_dbus_object_manager_xml[] =
    "<node><interface name='" VMSUP_DBUS_OBJECT_MANAGER_IFACE "'>"
    "<method name='GetManagedObjects'>"
    "<arg type='a{oa{sa{sv}}}' name='object_paths_interfaces_and_properties' direction='out'/>"
    "</method>"
    "<signal name='InterfacesAdded'>"
    "<arg type='o' name='object_path'/><arg type='a{sa{sv}}' name='interfaces_and_properties'/>"
    "</signal>"
    "<signal name='InterfacesRemoved'>"
    "<arg type='o' name='object_path'/><arg type='as' name='interfaces'/>"
    "</signal>"
    "</interface></node>";

struct _VmsupDbusVmObjects {
	GDBusInterfaceSkeleton parent_instance;
	GHashTable *objects;         /* owned: name (owned) -> VmsupDbusVmSkeleton (owned) */
	GDBusConnection *connection; /* owned; set while exported */
	VmsupDbusVmBindFunc bind;
	gpointer bind_data; /* unowned */
};

G_DEFINE_FINAL_TYPE(VmsupDbusVmObjects, vmsup_dbus_vm_objects, G_TYPE_DBUS_INTERFACE_SKELETON)

/* the properties a sample sets, and the vm.stats members they mirror */
static const struct {
	const gchar *property;
	const gchar *member;
} vmsup_dbus_vm_live_stats[] = {
    {"cpu-percent", "cpu_percent"},
    {"rss-bytes", "rss_bytes"},
    {"uptime-seconds", "uptime_s"},
};

static const gchar *
vmsup_dbus_vm_objects_stats_member(const gchar *property)
{
	for (gsize i = 0; i < G_N_ELEMENTS(vmsup_dbus_vm_live_stats); i++) {
		if (g_str_equal(vmsup_dbus_vm_live_stats[i].property, property))
			return vmsup_dbus_vm_live_stats[i].member;
	}
	return NULL;
}

gchar *
vmsup_dbus_vm_object_path(const gchar *name)
{
	g_autofree gchar *escaped = NULL;

	g_return_val_if_fail(name != NULL, NULL);

	escaped = g_dbus_escape_object_path(name);
	return g_strconcat(VMSUP_DBUS_VM_PATH_PREFIX, escaped, NULL);
}

/* sets @pspec on @vm1 from @member of @obj; absent or null is the default */
static void
vmsup_dbus_vm_objects_set_property(VmsupDBusVM1 *vm1,
				   GParamSpec *pspec,
				   JsonObject *obj,
				   const gchar *member)
{
	g_auto(GValue) value = G_VALUE_INIT;
	g_auto(GValue) json_value = G_VALUE_INIT;
	JsonNode *node = obj != NULL ? json_object_get_member(obj, member) : NULL;

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

	/* the statistics of a QEMU that is gone are void; a running one keeps its last sample */
	gboolean runs = vmsup_json_object_get_int(vm, "pid", 0) > 0;

	g_object_freeze_notify(G_OBJECT(vm1));
	for (guint i = 0; i < n_pspecs; i++) {
		g_autofree gchar *member = NULL;

		if (vmsup_dbus_vm_objects_stats_member(pspecs[i]->name) != NULL) {
			if (!runs)
				vmsup_dbus_vm_objects_set_property(vm1, pspecs[i], NULL, NULL);
			continue;
		}
		member = g_strdelimit(g_strdup(pspecs[i]->name), "-", '_');
		vmsup_dbus_vm_objects_set_property(vm1, pspecs[i], vm, member);
	}
	g_object_thaw_notify(G_OBJECT(vm1));
	g_type_default_interface_unref(iface);
}

void
vmsup_dbus_vm_objects_update_stats(VmsupDbusVmObjects *self, const gchar *name, JsonObject *stats)
{
	VmsupDBusVM1 *vm1;

	g_return_if_fail(VMSUP_IS_DBUS_VM_OBJECTS(self));
	g_return_if_fail(name != NULL);
	g_return_if_fail(stats != NULL);

	vm1 = g_hash_table_lookup(self->objects, name);
	if (vm1 == NULL)
		return;
	g_object_freeze_notify(G_OBJECT(vm1));
	for (gsize i = 0; i < G_N_ELEMENTS(vmsup_dbus_vm_live_stats); i++) {
		GParamSpec *pspec =
		    g_object_class_find_property(G_OBJECT_GET_CLASS(vm1),
						 vmsup_dbus_vm_live_stats[i].property);
		vmsup_dbus_vm_objects_set_property(vm1,
						   pspec,
						   stats,
						   vmsup_dbus_vm_live_stats[i].member);
	}
	g_object_thaw_notify(G_OBJECT(vm1));
}

VmsupDBusVM1 *
vmsup_dbus_vm_objects_lookup(VmsupDbusVmObjects *self, const gchar *name)
{
	g_return_val_if_fail(VMSUP_IS_DBUS_VM_OBJECTS(self), NULL);

	return g_hash_table_lookup(self->objects, name);
}

static guint32
vmsup_dbus_vm_objects_owner_of(JsonObject *vm)
{
	JsonNode *node = json_object_get_member(vm, "owner_uid");

	/* definitions that predate owners are the daemon's */
	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_INT64)
		return (guint32)geteuid();
	return (guint32)json_node_get_int(node);
}

static void
vmsup_dbus_vm_objects_emit(VmsupDbusVmObjects *self, const gchar *signal_name, GVariant *args)
{
	g_autoptr(GError) error = NULL;

	g_variant_ref_sink(args);
	if (self->connection != NULL &&
	    !g_dbus_connection_emit_signal(self->connection,
					   /* destination_bus_name= */ NULL,
					   VMSUP_DBUS_SUPERVISOR_PATH,
					   VMSUP_DBUS_OBJECT_MANAGER_IFACE,
					   signal_name,
					   args,
					   &error))
		g_debug("Cannot emit %s: %s", signal_name, error->message);
	g_variant_unref(args);
}

/* { "io.github.vmsup.VM1": {properties} } */
static GVariant *
vmsup_dbus_vm_objects_interfaces_of(VmsupDbusVmSkeleton *vm)
{
	GDBusInterfaceSkeleton *skeleton = G_DBUS_INTERFACE_SKELETON(vm);
	GVariantBuilder builder;

	g_variant_builder_init(&builder, G_VARIANT_TYPE("a{sa{sv}}"));
	g_variant_builder_add(&builder,
			      "{s@a{sv}}",
			      g_dbus_interface_skeleton_get_info(skeleton)->name,
			      g_dbus_interface_skeleton_get_properties(skeleton));
	return g_variant_builder_end(&builder);
}

static void
vmsup_dbus_vm_objects_export_vm(VmsupDbusVmObjects *self,
				const gchar *name,
				VmsupDbusVmSkeleton *vm)
{
	g_autofree gchar *path = vmsup_dbus_vm_object_path(name);
	g_autoptr(GError) error = NULL;

	if (self->connection == NULL)
		return;
	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(vm),
					      self->connection,
					      path,
					      &error)) {
		g_warning("Cannot export the D-Bus object of VM '%s': %s", name, error->message);
		return;
	}
	vmsup_dbus_vm_objects_emit(
	    self,
	    "InterfacesAdded",
	    g_variant_new("(o@a{sa{sv}})", path, vmsup_dbus_vm_objects_interfaces_of(vm)));
}

static void
vmsup_dbus_vm_objects_unexport_vm(VmsupDbusVmObjects *self, VmsupDbusVmSkeleton *vm)
{
	GDBusInterfaceSkeleton *skeleton = G_DBUS_INTERFACE_SKELETON(vm);
	const gchar *iface = g_dbus_interface_skeleton_get_info(skeleton)->name;
	g_autofree gchar *path = g_strdup(g_dbus_interface_skeleton_get_object_path(skeleton));

	if (path == NULL)
		return;
	g_dbus_interface_skeleton_unexport(skeleton);
	vmsup_dbus_vm_objects_emit(
	    self,
	    "InterfacesRemoved",
	    g_variant_new("(o^as)", path, (const gchar *const[]){iface, NULL}));
}

void
vmsup_dbus_vm_objects_update(VmsupDbusVmObjects *self, const gchar *name, JsonObject *vm)
{
	VmsupDbusVmSkeleton *object;

	g_return_if_fail(VMSUP_IS_DBUS_VM_OBJECTS(self));
	g_return_if_fail(name != NULL);
	g_return_if_fail(vm != NULL);

	object = g_hash_table_lookup(self->objects, name);
	if (object != NULL) {
		vmsup_dbus_vm_skeleton_set_owner(object, vmsup_dbus_vm_objects_owner_of(vm));
		vmsup_dbus_vm_objects_fill(VMSUP_DBUS_VM1(object), vm);
		return;
	}

	/* filled before export: a new object appears complete, without a PropertiesChanged */
	object = vmsup_dbus_vm_skeleton_new(name, vmsup_dbus_vm_objects_owner_of(vm));
	vmsup_dbus_vm_objects_fill(VMSUP_DBUS_VM1(object), vm);
	if (self->bind != NULL)
		self->bind(VMSUP_DBUS_VM1(object), name, self->bind_data);
	g_hash_table_insert(self->objects, g_strdup(name), object);
	vmsup_dbus_vm_objects_export_vm(self, name, object);
}

void
vmsup_dbus_vm_objects_remove(VmsupDbusVmObjects *self, const gchar *name)
{
	VmsupDbusVmSkeleton *object;

	g_return_if_fail(VMSUP_IS_DBUS_VM_OBJECTS(self));
	g_return_if_fail(name != NULL);

	object = g_hash_table_lookup(self->objects, name);
	if (object == NULL)
		return;
	vmsup_dbus_vm_objects_unexport_vm(self, object);
	g_hash_table_remove(self->objects, name);
}

gboolean
vmsup_dbus_vm_objects_export(VmsupDbusVmObjects *self, GDBusConnection *connection, GError **error)
{
	GHashTableIter iter;
	gpointer name;
	gpointer object;

	g_return_val_if_fail(VMSUP_IS_DBUS_VM_OBJECTS(self), FALSE);
	g_return_val_if_fail(G_IS_DBUS_CONNECTION(connection), FALSE);
	g_return_val_if_fail(self->connection == NULL, FALSE);

	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(self),
					      connection,
					      VMSUP_DBUS_SUPERVISOR_PATH,
					      error))
		return FALSE;
	self->connection = g_object_ref(connection);
	g_hash_table_iter_init(&iter, self->objects);
	while (g_hash_table_iter_next(&iter, &name, &object))
		vmsup_dbus_vm_objects_export_vm(self, name, object);
	return TRUE;
}

void
vmsup_dbus_vm_objects_unexport(VmsupDbusVmObjects *self)
{
	GHashTableIter iter;
	gpointer object;

	g_return_if_fail(VMSUP_IS_DBUS_VM_OBJECTS(self));

	if (self->connection == NULL)
		return;
	/* silently: a client sees the whole service go, not each object */
	g_hash_table_iter_init(&iter, self->objects);
	while (g_hash_table_iter_next(&iter, NULL, &object))
		g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(object));
	g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(self));
	g_clear_object(&self->connection);
}

/* the ObjectManager interface */

static void
vmsup_dbus_vm_objects_get_managed_objects(VmsupDbusVmObjects *self,
					  GDBusMethodInvocation *invocation)
{
	GVariantBuilder builder;
	GHashTableIter iter;
	gpointer name;
	gpointer object;

	g_variant_builder_init(&builder, G_VARIANT_TYPE("a{oa{sa{sv}}}"));
	g_hash_table_iter_init(&iter, self->objects);
	while (g_hash_table_iter_next(&iter, &name, &object)) {
		VmsupDbusVmSkeleton *vm = object;
		g_autofree gchar *path = vmsup_dbus_vm_object_path(name);
		if (!vmsup_dbus_vm_visible_to(invocation,
					      name,
					      vmsup_dbus_vm_skeleton_get_owner(vm),
					      NULL))
			continue;
		g_variant_builder_add(&builder,
				      "{o@a{sa{sv}}}",
				      path,
				      vmsup_dbus_vm_objects_interfaces_of(vm));
	}
	g_dbus_method_invocation_return_value(invocation,
					      g_variant_new("(a{oa{sa{sv}}})", &builder));
}

static void
vmsup_dbus_vm_objects_method_call(GDBusConnection *connection,
				  const gchar *sender,
				  const gchar *object_path,
				  const gchar *interface_name,
				  const gchar *method_name,
				  GVariant *parameters,
				  GDBusMethodInvocation *invocation,
				  gpointer user_data)
{
	VmsupDbusVmObjects *self = VMSUP_DBUS_VM_OBJECTS(user_data);

	if (g_strcmp0(method_name, "GetManagedObjects") == 0) {
		vmsup_dbus_vm_objects_get_managed_objects(self, invocation);
		return;
	}
	g_dbus_method_invocation_return_error(invocation,
					      G_DBUS_ERROR,
					      G_DBUS_ERROR_UNKNOWN_METHOD,
					      "No method %s.%s",
					      interface_name,
					      method_name);
}

static GDBusInterfaceInfo *
vmsup_dbus_vm_objects_get_info(GDBusInterfaceSkeleton *skeleton)
{
	static gsize parsed;
	static GDBusNodeInfo *node; /* kept for the process's life */

	if (g_once_init_enter(&parsed)) {
		node = g_dbus_node_info_new_for_xml(vmsup_dbus_object_manager_xml, NULL);
		g_once_init_leave(&parsed, 1);
	}
	return node->interfaces[0];
}

static GDBusInterfaceVTable *
vmsup_dbus_vm_objects_get_vtable(GDBusInterfaceSkeleton *skeleton)
{
	static GDBusInterfaceVTable vtable = {
	    .method_call = vmsup_dbus_vm_objects_method_call,
	};
	return &vtable;
}

static GVariant *
vmsup_dbus_vm_objects_get_properties(GDBusInterfaceSkeleton *skeleton)
{
	return g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
}

static void
vmsup_dbus_vm_objects_flush(GDBusInterfaceSkeleton *skeleton)
{
}

static void
vmsup_dbus_vm_objects_dispose(GObject *object)
{
	VmsupDbusVmObjects *self = VMSUP_DBUS_VM_OBJECTS(object);

	vmsup_dbus_vm_objects_unexport(self);
	g_hash_table_remove_all(self->objects);
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
	GDBusInterfaceSkeletonClass *skeleton_class = G_DBUS_INTERFACE_SKELETON_CLASS(klass);

	object_class->dispose = vmsup_dbus_vm_objects_dispose;
	object_class->finalize = vmsup_dbus_vm_objects_finalize;
	skeleton_class->get_info = vmsup_dbus_vm_objects_get_info;
	skeleton_class->get_vtable = vmsup_dbus_vm_objects_get_vtable;
	skeleton_class->get_properties = vmsup_dbus_vm_objects_get_properties;
	skeleton_class->flush = vmsup_dbus_vm_objects_flush;
}

static void
vmsup_dbus_vm_objects_init(VmsupDbusVmObjects *self)
{
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
