/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The io.github.vmsup.VM1 interface of one VM, its properties read through
 * the same authorization as its methods (vmsup-dbus-properties.c): a caller
 * bound by the owner rule reads only the objects of its own VMs.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-authorize.h"
#include "vmsup-dbus-properties.h"
#include "vmsup-dbus-vm-skeleton.h"
#include "vmsup-rpc-table.h"
#include "vmsup-vm-def.h"

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
	VmsupCaller caller;

	g_return_val_if_fail(G_IS_DBUS_METHOD_INVOCATION(invocation), FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	if (!vmsup_authorize_get_caller_uid(invocation, &uid)) {
		g_set_error_literal(error,
				    G_DBUS_ERROR,
				    G_DBUS_ERROR_ACCESS_DENIED,
				    _("The caller could not be identified"));
		return FALSE;
	}
	caller = vmsup_caller_for_uid(uid);
	return vmsup_policy_check_vm_owner(&caller, name, owner_uid, error);
}

/* Properties.Get / GetAll / Set, once the caller was let through: only of a VM it may see */
static void
vmsup_dbus_vm_skeleton_properties_call(GDBusInterfaceSkeleton *skeleton,
				       GDBusMethodInvocation *invocation)
{
	VmsupDbusVmSkeleton *self = VMSUP_DBUS_VM_SKELETON(skeleton);
	g_autofree gchar *read_only = NULL;
	g_autoptr(GError) error = NULL;

	if (!vmsup_dbus_vm_visible_to(invocation, self->name, self->owner_uid, &error)) {
		g_dbus_method_invocation_return_gerror(invocation, error);
		return;
	}
	read_only = g_strdup_printf(_("The properties of %s are read-only; change "
				      "the VM with the Set method"),
				    g_dbus_interface_skeleton_get_info(skeleton)->name);
	vmsup_dbus_properties_answer(skeleton, invocation, /* value_for= */ NULL, read_only);
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
	GDBusInterfaceSkeleton *skeleton = G_DBUS_INTERFACE_SKELETON(user_data);

	vmsup_dbus_properties_route(
	    skeleton,
	    G_DBUS_INTERFACE_SKELETON_CLASS(vmsup_dbus_vm_skeleton_parent_class)
		->get_vtable(skeleton),
	    invocation,
	    vmsup_dbus_vm_skeleton_properties_call);
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
