/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The io.github.vmsup.VM1 interface of one VM, its properties read through
 * the same authorization as its methods. GDBus hands the Properties calls
 * of an interface whose vtable has no get_property to its method_call, and
 * a skeleton's method calls pass "g-authorize-method" first: so a Get or
 * GetAll is decided like any other call, and a caller bound by the owner
 * rule reads only the objects of its own VMs.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-authorize.h"
#include "vmsup-dbus-vm-skeleton.h"
#include "vmsup-rpc-table.h"
#include "vmsup-vm-def.h"

#define VMSUP_DBUS_PROPERTIES_IFACE "org.freedesktop.DBus.Properties"

struct _VmsupDbusVmSkeleton {
	VmsupDBusVM1Skeleton parent_instance;
	gchar *name; /* owned */
	guint32 owner_uid;
};

G_DEFINE_FINAL_TYPE(VmsupDbusVmSkeleton, vmsup_dbus_vm_skeleton, VMSUP_DBUS_TYPE_VM1_SKELETON)

gboolean
vmsup_dbus_vm_visible_to(GDBusMethodInvocation *invocation,
			 const gchar *name,
			 guint32 owner_uid,
			 GError **error)
{
	guint32 uid = 0;

	g_return_val_if_fail(G_IS_DBUS_METHOD_INVOCATION(invocation), FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	if (!vmsup_authorize_get_caller_uid(invocation, &uid)) {
		g_set_error_literal(error,
				    G_DBUS_ERROR,
				    G_DBUS_ERROR_ACCESS_DENIED,
				    _("The caller could not be identified"));
		return FALSE;
	}
	if (!vmsup_vm_def_uid_is_restricted(uid) || uid == owner_uid)
		return TRUE;
	vmsup_rpc_table_set_not_yours(error, VMSUP_RPC_OWNED_VM, name, owner_uid, uid);
	return FALSE;
}

static const GDBusInterfaceVTable *
vmsup_dbus_vm_skeleton_parent_vtable(GDBusInterfaceSkeleton *skeleton)
{
	return G_DBUS_INTERFACE_SKELETON_CLASS(vmsup_dbus_vm_skeleton_parent_class)
	    ->get_vtable(skeleton);
}

/* Properties.Get / GetAll / Set, once the caller was let through */
static void
vmsup_dbus_vm_skeleton_properties_call(VmsupDbusVmSkeleton *self,
				       GDBusConnection *connection,
				       const gchar *sender,
				       const gchar *object_path,
				       const gchar *method_name,
				       GVariant *parameters,
				       GDBusMethodInvocation *invocation)
{
	GDBusInterfaceSkeleton *skeleton = G_DBUS_INTERFACE_SKELETON(self);
	const gchar *own_iface = g_dbus_interface_skeleton_get_info(skeleton)->name;
	const gchar *iface = NULL;
	const gchar *property = NULL;
	g_autoptr(GError) error = NULL;

	if (!vmsup_dbus_vm_visible_to(invocation, self->name, self->owner_uid, &error)) {
		g_dbus_method_invocation_return_gerror(invocation, error);
		return;
	}
	if (g_str_equal(method_name, "Get") &&
	    g_variant_is_of_type(parameters, G_VARIANT_TYPE("(ss)"))) {
		GVariant *value;
		g_variant_get(parameters, "(&s&s)", &iface, &property);
		if (g_strcmp0(iface, own_iface) == 0) {
			value = vmsup_dbus_vm_skeleton_parent_vtable(skeleton)->get_property(
			    connection,
			    sender,
			    object_path,
			    iface,
			    property,
			    &error,
			    self);
			if (value == NULL) {
				g_dbus_method_invocation_return_gerror(invocation, error);
				return;
			}
			g_dbus_method_invocation_return_value(invocation,
							      g_variant_new("(v)", value));
			g_variant_unref(value);
			return;
		}
	} else if (g_str_equal(method_name, "GetAll") &&
		   g_variant_is_of_type(parameters, G_VARIANT_TYPE("(s)"))) {
		g_variant_get(parameters, "(&s)", &iface);
		if (g_strcmp0(iface, own_iface) == 0) {
			g_dbus_method_invocation_return_value(
			    invocation,
			    g_variant_new("(@a{sv})",
					  g_dbus_interface_skeleton_get_properties(skeleton)));
			return;
		}
	} else if (g_str_equal(method_name, "Set")) {
		g_dbus_method_invocation_return_error(
		    invocation,
		    G_DBUS_ERROR,
		    G_DBUS_ERROR_PROPERTY_READ_ONLY,
		    _("The properties of %s are read-only; change "
		      "the VM with the Set method"),
		    own_iface);
		return;
	} else {
		g_dbus_method_invocation_return_error(invocation,
						      G_DBUS_ERROR,
						      G_DBUS_ERROR_UNKNOWN_METHOD,
						      _("No method %s.%s with these arguments"),
						      VMSUP_DBUS_PROPERTIES_IFACE,
						      method_name);
		return;
	}
	g_dbus_method_invocation_return_error(invocation,
					      G_DBUS_ERROR,
					      G_DBUS_ERROR_INVALID_ARGS,
					      _("No such interface '%s' on %s"),
					      iface,
					      object_path);
}

static void
vmsup_dbus_vm_skeleton_method_call(GDBusConnection *connection,
				   const gchar *sender,
				   const gchar *object_path,
				   const gchar *interface_name,
				   const gchar *method_name,
				   GVariant *parameters,
				   GDBusMethodInvocation *invocation,
				   gpointer user_data)
{
	VmsupDbusVmSkeleton *self = VMSUP_DBUS_VM_SKELETON(user_data);

	if (g_strcmp0(interface_name, VMSUP_DBUS_PROPERTIES_IFACE) == 0) {
		vmsup_dbus_vm_skeleton_properties_call(self,
						       connection,
						       sender,
						       object_path,
						       method_name,
						       parameters,
						       invocation);
		return;
	}
	vmsup_dbus_vm_skeleton_parent_vtable(G_DBUS_INTERFACE_SKELETON(self))
	    ->method_call(connection,
			  sender,
			  object_path,
			  interface_name,
			  method_name,
			  parameters,
			  invocation,
			  user_data);
}

static GDBusInterfaceVTable *
vmsup_dbus_vm_skeleton_get_vtable(GDBusInterfaceSkeleton *skeleton)
{
	/* no get_property / set_property: GDBus routes Properties through method_call */
	static GDBusInterfaceVTable vtable = {
	    .method_call = vmsup_dbus_vm_skeleton_method_call,
	};
	return &vtable;
}

guint32
vmsup_dbus_vm_skeleton_get_owner(VmsupDbusVmSkeleton *self)
{
	g_return_val_if_fail(VMSUP_IS_DBUS_VM_SKELETON(self), 0);
	return self->owner_uid;
}

void
vmsup_dbus_vm_skeleton_set_owner(VmsupDbusVmSkeleton *self, guint32 owner_uid)
{
	g_return_if_fail(VMSUP_IS_DBUS_VM_SKELETON(self));
	self->owner_uid = owner_uid;
}

static void
vmsup_dbus_vm_skeleton_finalize(GObject *object)
{
	VmsupDbusVmSkeleton *self = VMSUP_DBUS_VM_SKELETON(object);

	g_free(self->name);
	G_OBJECT_CLASS(vmsup_dbus_vm_skeleton_parent_class)->finalize(object);
}

static void
vmsup_dbus_vm_skeleton_class_init(VmsupDbusVmSkeletonClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GDBusInterfaceSkeletonClass *skeleton_class = G_DBUS_INTERFACE_SKELETON_CLASS(klass);

	object_class->finalize = vmsup_dbus_vm_skeleton_finalize;
	skeleton_class->get_vtable = vmsup_dbus_vm_skeleton_get_vtable;
}

static void
vmsup_dbus_vm_skeleton_init(VmsupDbusVmSkeleton *self)
{
}

VmsupDbusVmSkeleton *
vmsup_dbus_vm_skeleton_new(const gchar *name, guint32 owner_uid)
{
	VmsupDbusVmSkeleton *self;

	g_return_val_if_fail(name != NULL, NULL);

	self = g_object_new(VMSUP_TYPE_DBUS_VM_SKELETON, NULL);
	self->name = g_strdup(name);
	self->owner_uid = owner_uid;
	return self;
}
