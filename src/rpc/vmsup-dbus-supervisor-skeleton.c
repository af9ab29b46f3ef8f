/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The io.github.vmsup.Supervisor1 interface and its properties: the
 * version, the accelerator, and how many VMs are defined and running.
 * Changes are gathered for a moment and go out as one PropertiesChanged,
 * since the changes of a burst (a script creating VMs, a shutdown stopping
 * them) land in separate main loop iterations, where an idle alone would
 * send one signal each. Reading goes through the authorize handler
 * (vmsup-dbus-properties.c), and a caller the policy does not let see
 * everything counts only its own VMs, as List shows it only those. The signals carry
 * everyone's counts; the system bus policy lets only root receive them.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-dbus-properties.h"
#include "vmsup-dbus-supervisor-skeleton.h"

struct _VmsupDbusSupervisorSkeleton {
	VmsupDBusSupervisor1Skeleton parent_instance;
	VmsupVmService *vm_service; /* owned, nullable */
	VmsupPolicy *policy;        /* owned */
	guint refresh_id;
};

G_DEFINE_FINAL_TYPE(VmsupDbusSupervisorSkeleton,
		    vmsup_dbus_supervisor_skeleton,
		    VMSUP_DBUS_TYPE_SUPERVISOR1_SKELETON)

static void
vmsup_dbus_supervisor_skeleton_refresh(VmsupDbusSupervisorSkeleton *self)
{
	VmsupDBusSupervisor1 *iface = VMSUP_DBUS_SUPERVISOR1(self);
	const gchar *reason = "";
	const gchar *accel = "";
	guint defined = 0;
	guint running = 0;

	g_clear_handle_id(&self->refresh_id, g_source_remove);
	if (self->vm_service != NULL) {
		accel =
		    vmsup_accel_to_string(vmsup_vm_service_get_accel(self->vm_service, &reason));
		vmsup_vm_service_count(self->vm_service,
				       VMSUP_VM_SERVICE_ANY_OWNER,
				       &defined,
				       &running);
	}
	/* the skeleton sends what changed, in one signal, from an idle of its own */
	g_object_freeze_notify(G_OBJECT(self));
	vmsup_dbus_supervisor1_set_version(iface, PACKAGE_VERSION);
	vmsup_dbus_supervisor1_set_accel(iface, accel);
	vmsup_dbus_supervisor1_set_accel_reason(iface, reason);
	vmsup_dbus_supervisor1_set_vm_count(iface, defined);
	vmsup_dbus_supervisor1_set_running_count(iface, running);
	g_object_thaw_notify(G_OBJECT(self));
}

static gboolean
vmsup_dbus_supervisor_skeleton_refresh_cb(gpointer user_data)
{
	VmsupDbusSupervisorSkeleton *self = VMSUP_DBUS_SUPERVISOR_SKELETON(user_data);

	self->refresh_id = 0;
	vmsup_dbus_supervisor_skeleton_refresh(self);
	return G_SOURCE_REMOVE;
}

void
vmsup_dbus_supervisor_skeleton_queue_refresh(VmsupDbusSupervisorSkeleton *self)
{
	g_return_if_fail(VMSUP_IS_DBUS_SUPERVISOR_SKELETON(self));

	if (self->refresh_id != 0)
		return;
	self->refresh_id = g_timeout_add_full(G_PRIORITY_LOW,
					      VMSUP_DBUS_SUPERVISOR_COALESCE_MS,
					      vmsup_dbus_supervisor_skeleton_refresh_cb,
					      self,
					      /* notify= */ NULL);
}

/* a caller bound by the owner rule counts its own VMs; everyone else reads the skeleton's */
static GVariant *
vmsup_dbus_supervisor_skeleton_value_for(GDBusInterfaceSkeleton *skeleton,
					 const gchar *property,
					 guint32 caller_uid)
{
	VmsupDbusSupervisorSkeleton *self = VMSUP_DBUS_SUPERVISOR_SKELETON(skeleton);
	gboolean vm_count = g_str_equal(property, "VmCount");
	VmsupCaller caller = vmsup_caller_for_uid(caller_uid);
	guint defined = 0;
	guint running = 0;

	if (!vm_count && !g_str_equal(property, "RunningCount"))
		return NULL;
	if (vmsup_policy_sees_all(self->policy, &caller))
		return NULL;
	if (self->vm_service != NULL)
		vmsup_vm_service_count(self->vm_service, caller_uid, &defined, &running);
	return g_variant_new_uint32(vm_count ? defined : running);
}

static void
vmsup_dbus_supervisor_skeleton_properties_call(GDBusInterfaceSkeleton *skeleton,
					       GDBusMethodInvocation *invocation)
{
	VmsupDbusSupervisorSkeleton *self = VMSUP_DBUS_SUPERVISOR_SKELETON(skeleton);
	g_autofree gchar *read_only = NULL;

	/* a change still gathering is read now: an answer is never older than the last call */
	if (self->refresh_id != 0)
		vmsup_dbus_supervisor_skeleton_refresh(self);
	read_only = g_strdup_printf(_("The properties of %s are read-only"),
				    g_dbus_interface_skeleton_get_info(skeleton)->name);
	vmsup_dbus_properties_answer(skeleton,
				     invocation,
				     vmsup_dbus_supervisor_skeleton_value_for,
				     read_only);
}

static void
vmsup_dbus_supervisor_skeleton_method_call(GDBusConnection *connection,
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
	    G_DBUS_INTERFACE_SKELETON_CLASS(vmsup_dbus_supervisor_skeleton_parent_class)
		->get_vtable(skeleton),
	    invocation,
	    vmsup_dbus_supervisor_skeleton_properties_call);
}

static GDBusInterfaceVTable *
vmsup_dbus_supervisor_skeleton_get_vtable(GDBusInterfaceSkeleton *skeleton)
{
	/* no get_property / set_property: GDBus routes Properties through method_call */
	static GDBusInterfaceVTable vtable = {
	    .method_call = vmsup_dbus_supervisor_skeleton_method_call,
	};
	return &vtable;
}

static void
vmsup_dbus_supervisor_skeleton_dispose(GObject *object)
{
	VmsupDbusSupervisorSkeleton *self = VMSUP_DBUS_SUPERVISOR_SKELETON(object);

	g_clear_handle_id(&self->refresh_id, g_source_remove);
	g_clear_object(&self->vm_service);
	g_clear_object(&self->policy);
	G_OBJECT_CLASS(vmsup_dbus_supervisor_skeleton_parent_class)->dispose(object);
}

static void
vmsup_dbus_supervisor_skeleton_class_init(VmsupDbusSupervisorSkeletonClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GDBusInterfaceSkeletonClass *skeleton_class = G_DBUS_INTERFACE_SKELETON_CLASS(klass);

	object_class->dispose = vmsup_dbus_supervisor_skeleton_dispose;
	skeleton_class->get_vtable = vmsup_dbus_supervisor_skeleton_get_vtable;
}

static void
vmsup_dbus_supervisor_skeleton_init(VmsupDbusSupervisorSkeleton *self)
{
}

VmsupDbusSupervisorSkeleton *
vmsup_dbus_supervisor_skeleton_new(VmsupVmService *vm_service, VmsupPolicy *policy)
{
	VmsupDbusSupervisorSkeleton *self;

	g_return_val_if_fail(VMSUP_IS_POLICY(policy), NULL);

	self = g_object_new(VMSUP_TYPE_DBUS_SUPERVISOR_SKELETON, NULL);
	self->policy = g_object_ref(policy);
	if (vm_service != NULL)
		self->vm_service = g_object_ref(vm_service);
	vmsup_dbus_supervisor_skeleton_refresh(self);
	return self;
}
