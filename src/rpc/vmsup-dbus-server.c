/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The D-Bus transport of the dispatch table. The generated skeleton gives
 * one "handle-*" signal per method; every one of them is served by the same
 * generic closure carrying its table entry, which turns the arguments into
 * a JSON params object, dispatches, and turns the answer back into a{sv}.
 * There is no per-method D-Bus code.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-authorize.h"
#include "vmsup-dbus-server.h"
#include "vmsup-dbus-supervisor-skeleton.h"
#include "vmsup-error.h"
#include "vmsup-event-source.h"
#include "vmsup-json.h"

struct _VmsupDbusServer {
	GObject parent_instance;
	const VmsupRpcContext *ctx;            /* unowned: the daemon's, outlives us */
	VmsupVmService *vm_service;            /* owned, nullable */
	VmsupEventSource *events;              /* owned, nullable */
	VmsupAuthorize *authorize;             /* owned */
	VmsupDbusSupervisorSkeleton *skeleton; /* owned */
	VmsupDbusVmObjects *vm_objects;        /* owned */
	GDBusConnection *connection;           /* owned, while exported */
	guint owner_id;
	GBusType bus_type;
	gulong event_id;
	gulong accel_decided_id;
	gulong closed_id;
};

G_DEFINE_FINAL_TYPE(VmsupDbusServer, vmsup_dbus_server, G_TYPE_OBJECT)

enum { PROP_0, PROP_RPC_CONTEXT, PROP_VM_SERVICE, N_PROPS };
static GParamSpec *props[N_PROPS];

/* the generic method closure */

typedef struct {
	GClosure closure;
	GWeakRef server;              /* a late call after dispose finds no server */
	const VmsupRpcMethod *method; /* unowned: the static table */
	gchar *vm_name;               /* owned; bound on a VM1 object, NULL on the supervisor */
} VmsupDbusMethodClosure;

/* what a pending call needs to answer: never the server, which may be gone by then */
typedef struct {
	GDBusMethodInvocation *invocation; /* owned; its own ref is consumed by the answer */
	const VmsupRpcMethod *method;      /* unowned */
	gboolean answered;
} VmsupDbusReply;

static void
vmsup_dbus_return_error(GDBusMethodInvocation *invocation, const GError *error)
{
	g_autoptr(GError) error_copy = g_error_copy(error);

	/* VMSUP_ERROR's wire codes have D-Bus names; anything else is converted once */
	if (error_copy->domain != G_DBUS_ERROR)
		vmsup_error_convert(&error_copy);
	g_dbus_method_invocation_return_gerror(invocation, error_copy);
}

static void
vmsup_dbus_reply_free(gpointer data)
{
	VmsupDbusReply *reply = data;

	if (!reply->answered) {
		g_autoptr(GError) error = g_error_new(VMSUP_ERROR,
						      VMSUP_ERROR_INTERNAL,
						      "%s ended without an answer",
						      reply->method->rpc_name);
		g_critical("%s", error->message);
		vmsup_dbus_return_error(reply->invocation, error);
	}
	g_object_unref(reply->invocation);
	g_free(reply);
}

static void
vmsup_dbus_reply_cb(VmsupRpcCall *call, JsonNode *result, const GError *error, gpointer user_data)
{
	VmsupDbusReply *reply = user_data;
	g_autoptr(JsonNode) owned = result; /* the reply function owns the result */
	g_autoptr(GError) error_local = NULL;
	GVariant *value;

	if (reply->answered)
		return;
	reply->answered = TRUE;
	if (error != NULL) {
		vmsup_dbus_return_error(reply->invocation, error);
		return;
	}
	value = vmsup_dbus_variant_from_result(reply->method, result, &error_local);
	if (value == NULL) {
		g_critical("%s", error_local->message);
		vmsup_dbus_return_error(reply->invocation, error_local);
		return;
	}
	if (reply->method->flags & VMSUP_RPC_FLAG_RETURNS_FD)
		g_dbus_method_invocation_return_value_with_unix_fd_list(
		    reply->invocation,
		    value,
		    vmsup_rpc_call_get_fd_list(call));
	else
		g_dbus_method_invocation_return_value(reply->invocation, value);
}

static void
vmsup_dbus_server_dispatch(VmsupDbusServer *self,
			   const VmsupRpcMethod *method,
			   const gchar *bound_name,
			   GDBusMethodInvocation *invocation)
{
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(VmsupRpcCall) call = NULL;
	g_autoptr(GError) error = NULL;
	VmsupDbusReply *reply;
	VmsupCaller caller;
	guint32 uid = 0;

	/* the authorize handler identified the caller before letting the call through */
	if (!vmsup_authorize_get_caller_uid(invocation, &uid)) {
		g_dbus_method_invocation_return_error_literal(
		    invocation,
		    G_DBUS_ERROR,
		    G_DBUS_ERROR_ACCESS_DENIED,
		    _("The caller could not be identified"));
		return;
	}
	params = vmsup_dbus_params_from_variant(g_dbus_method_invocation_get_parameters(invocation),
						bound_name,
						&error);
	if (params == NULL) {
		vmsup_dbus_return_error(invocation, error);
		return;
	}
	reply = g_new0(VmsupDbusReply, 1);
	reply->invocation = g_object_ref(invocation);
	reply->method = method;
	caller = vmsup_caller_for_uid(uid);
	call = vmsup_rpc_call_new(method,
				  params,
				  &caller,
				  vmsup_dbus_reply_cb,
				  reply,
				  vmsup_dbus_reply_free);
	vmsup_rpc_call_set_door(call, "dbus");
	vmsup_rpc_table_dispatch(self->ctx, call);
}

static void
vmsup_dbus_method_closure_marshal(GClosure *closure,
				  GValue *return_value,
				  guint n_param_values,
				  const GValue *param_values,
				  gpointer invocation_hint,
				  gpointer marshal_data)
{
	VmsupDbusMethodClosure *self = (VmsupDbusMethodClosure *)closure;
	GDBusMethodInvocation *invocation;
	g_autoptr(VmsupDbusServer) server = NULL;

	/* handle-* signals: (skeleton, invocation, args...) -> gboolean handled */
	g_return_if_fail(n_param_values >= 2);
	invocation = g_value_get_object(&param_values[1]);
	server = g_weak_ref_get(&self->server);
	if (server == NULL) {
		g_dbus_method_invocation_return_error_literal(invocation,
							      VMSUP_ERROR,
							      VMSUP_ERROR_FAILED_PRECONDITION,
							      _("vmsupd is shutting down"));
	} else {
		vmsup_dbus_server_dispatch(server, self->method, self->vm_name, invocation);
	}
	if (return_value != NULL)
		g_value_set_boolean(return_value, TRUE);
}

static void
vmsup_dbus_method_closure_finalize(gpointer notify_data, GClosure *closure)
{
	VmsupDbusMethodClosure *self = (VmsupDbusMethodClosure *)closure;

	g_weak_ref_clear(&self->server);
	g_free(self->vm_name);
}

gchar *
vmsup_dbus_server_handle_signal_name(const gchar *dbus_name)
{
	GString *str = g_string_new("handle-");
	gboolean prev_was_lower = FALSE;

	g_return_val_if_fail(dbus_name != NULL, NULL);

	/* gdbus-codegen's rule: a hyphen where a capital follows a lower-case letter or digit */
	for (const gchar *p = dbus_name; *p != '\0'; p++) {
		if (g_ascii_isupper(*p)) {
			if (prev_was_lower)
				g_string_append_c(str, '-');
			prev_was_lower = FALSE;
		} else {
			prev_was_lower = TRUE;
		}
		g_string_append_c(str, g_ascii_tolower(*p));
	}
	return g_string_free(str, FALSE);
}

static void
vmsup_dbus_server_connect_method(VmsupDbusServer *self,
				 GDBusInterfaceSkeleton *skeleton,
				 const VmsupRpcMethod *method,
				 const gchar *vm_name)
{
	g_autofree gchar *signal_name = vmsup_dbus_server_handle_signal_name(method->dbus_name);
	GClosure *closure;
	VmsupDbusMethodClosure *method_closure;

	if (g_signal_lookup(signal_name, G_OBJECT_TYPE(skeleton)) == 0) {
		g_critical("%s has no signal %s for %s",
			   G_OBJECT_TYPE_NAME(skeleton),
			   signal_name,
			   method->rpc_name);
		return;
	}
	closure = g_closure_new_simple(sizeof(VmsupDbusMethodClosure), NULL);
	method_closure = (VmsupDbusMethodClosure *)closure;
	g_weak_ref_init(&method_closure->server, self);
	method_closure->method = method;
	method_closure->vm_name = g_strdup(vm_name);
	g_closure_add_finalize_notifier(closure, NULL, vmsup_dbus_method_closure_finalize);
	g_closure_set_marshal(closure, vmsup_dbus_method_closure_marshal);
	g_signal_connect_closure(skeleton, signal_name, closure, FALSE);
}

/* a new VM object: its methods are the table's, with the VM's name bound */
static void
vmsup_dbus_server_bind_vm(VmsupDBusVM1 *vm1, const gchar *name, gpointer user_data)
{
	VmsupDbusServer *self = VMSUP_DBUS_SERVER(user_data);
	GDBusInterfaceInfo *info = vmsup_dbus_vm1_interface_info();

	vmsup_authorize_attach(self->authorize, G_DBUS_INTERFACE_SKELETON(vm1));
	for (guint i = 0; info->methods != NULL && info->methods[i] != NULL; i++) {
		const VmsupRpcMethod *method = vmsup_rpc_table_lookup_dbus(info->methods[i]->name);
		if (method == NULL || !(method->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME)) {
			g_critical("VM1.%s has no VM method in the table", info->methods[i]->name);
			continue;
		}
		vmsup_dbus_server_connect_method(self,
						 G_DBUS_INTERFACE_SKELETON(vm1),
						 method,
						 name);
	}
}

/* the event source -> signals and objects */

static void
vmsup_dbus_server_vm_changed(VmsupDbusServer *self, const gchar *name, JsonObject *vm)
{
	/* the object first, so a client reacting to the signal reads fresh properties */
	vmsup_dbus_vm_objects_update(self->vm_objects, name, vm);
	vmsup_dbus_supervisor1_emit_vm_changed(VMSUP_DBUS_SUPERVISOR1(self->skeleton),
					       name,
					       vmsup_dbus_variant_from_json_object(vm));
	vmsup_dbus_supervisor_skeleton_queue_refresh(self->skeleton);
}

static void
vmsup_dbus_server_vm_removed(VmsupDbusServer *self, const gchar *name)
{
	vmsup_dbus_vm_objects_remove(self->vm_objects, name);
	vmsup_dbus_supervisor1_emit_vm_removed(VMSUP_DBUS_SUPERVISOR1(self->skeleton), name);
	vmsup_dbus_supervisor_skeleton_queue_refresh(self->skeleton);
}

/*
 * D-Bus signals are broadcast, not sent to a peer: what one may receive is
 * the bus policy's to say (on the system bus, root only); a peer bound by
 * the owner rule reads only its own VM objects through the policy.
 */
static void
vmsup_dbus_server_event_cb(VmsupEventSource *events,
			   guint event,
			   const gchar *method,
			   JsonObject *params,
			   VmsupDbusServer *self)
{
	const gchar *name = vmsup_json_object_get_string(params, "name", NULL);

	switch ((VmsupPolicyEvent)event) {
	case VMSUP_POLICY_EVENT_VM_CHANGED:
		if (name != NULL && json_object_has_member(params, "vm"))
			vmsup_dbus_server_vm_changed(self,
						     name,
						     json_object_get_object_member(params, "vm"));
		return;
	case VMSUP_POLICY_EVENT_VM_REMOVED:
		if (name != NULL)
			vmsup_dbus_server_vm_removed(self, name);
		return;
	case VMSUP_POLICY_EVENT_OPERATION_CHANGED:
		vmsup_dbus_supervisor1_emit_operation_changed(
		    VMSUP_DBUS_SUPERVISOR1(self->skeleton),
		    vmsup_dbus_variant_from_json_object(params));
		return;
	default:
		return;
	}
}

static void
vmsup_dbus_server_accel_decided_cb(VmsupVmService *vm_service, gpointer user_data)
{
	VmsupDbusServer *self = VMSUP_DBUS_SERVER(user_data);

	vmsup_dbus_supervisor_skeleton_queue_refresh(self->skeleton);
}

static void
vmsup_dbus_server_add_known_vms(VmsupDbusServer *self)
{
	g_auto(GStrv) names = NULL;

	if (self->vm_service == NULL)
		return;
	names = vmsup_vm_service_list_names(self->vm_service);
	for (guint i = 0; names != NULL && names[i] != NULL; i++) {
		g_autoptr(JsonObject) vm = vmsup_vm_service_lookup(self->vm_service, names[i]);
		if (vm != NULL)
			vmsup_dbus_vm_objects_update(self->vm_objects, names[i], vm);
	}
}

/* exporting */

static void
vmsup_dbus_server_closed_cb(GDBusConnection *connection,
			    gboolean remote_peer_vanished,
			    GError *error,
			    gpointer user_data)
{
	g_warning("D-Bus connection closed%s%s; the socket still serves",
		  error != NULL ? ": " : "",
		  error != NULL ? error->message : "");
}

static void
vmsup_dbus_server_unexport(VmsupDbusServer *self)
{
	if (self->connection == NULL)
		return;
	g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(self->skeleton));
	vmsup_dbus_vm_objects_unexport(self->vm_objects);
	g_clear_signal_handler(&self->closed_id, self->connection);
	g_clear_object(&self->connection);
}

gboolean
vmsup_dbus_server_export(VmsupDbusServer *self, GDBusConnection *connection, GError **error)
{
	g_return_val_if_fail(VMSUP_IS_DBUS_SERVER(self), FALSE);
	g_return_val_if_fail(G_IS_DBUS_CONNECTION(connection), FALSE);
	g_return_val_if_fail(self->connection == NULL, FALSE);

	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(self->skeleton),
					      connection,
					      VMSUP_DBUS_SUPERVISOR_PATH,
					      error))
		return FALSE;
	if (!vmsup_dbus_vm_objects_export(self->vm_objects, connection, error)) {
		g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(self->skeleton));
		return FALSE;
	}
	self->connection = g_object_ref(connection);
	return TRUE;
}

static const gchar *
vmsup_dbus_bus_type_to_string(GBusType bus_type)
{
	return bus_type == G_BUS_TYPE_SYSTEM ? "system" : "session";
}

static void
vmsup_dbus_server_bus_acquired_cb(GDBusConnection *connection,
				  const gchar *name,
				  gpointer user_data)
{
	VmsupDbusServer *self = VMSUP_DBUS_SERVER(user_data);
	g_autoptr(GError) error = NULL;

	if (!vmsup_dbus_server_export(self, connection, &error)) {
		g_warning("Cannot export the D-Bus interface: %s, ignoring", error->message);
		return;
	}
	/*
	 * a session daemon ends with its session's bus (GLib raises SIGTERM; the
	 * next daemon adopts the VMs); the system daemon goes on serving its socket
	 */
	if (self->bus_type != G_BUS_TYPE_SYSTEM)
		return;
	g_dbus_connection_set_exit_on_close(connection, FALSE);
	self->closed_id =
	    g_signal_connect(connection, "closed", G_CALLBACK(vmsup_dbus_server_closed_cb), self);
}

static void
vmsup_dbus_server_name_acquired_cb(GDBusConnection *connection,
				   const gchar *name,
				   gpointer user_data)
{
	VmsupDbusServer *self = VMSUP_DBUS_SERVER(user_data);

	g_message("Serving %s on the %s bus", name, vmsup_dbus_bus_type_to_string(self->bus_type));
}

static void
vmsup_dbus_server_name_lost_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	VmsupDbusServer *self = VMSUP_DBUS_SERVER(user_data);

	/* the bus went away after we had it: the "closed" handler or exit-on-close tells the rest
	 */
	if (self->connection != NULL && g_dbus_connection_is_closed(self->connection)) {
		g_info("%s is gone with the %s bus",
		       name,
		       vmsup_dbus_bus_type_to_string(self->bus_type));
		return;
	}
	if (connection == NULL) {
		g_warning("Cannot connect to the %s bus; D-Bus is unavailable, the socket still "
			  "serves",
			  vmsup_dbus_bus_type_to_string(self->bus_type));
		return;
	}
	g_warning("Cannot own %s on the %s bus (is another vmsupd running?); D-Bus is "
		  "unavailable, the socket still serves",
		  name,
		  vmsup_dbus_bus_type_to_string(self->bus_type));
}

void
vmsup_dbus_server_own_name(VmsupDbusServer *self, GBusType bus_type)
{
	g_return_if_fail(VMSUP_IS_DBUS_SERVER(self));
	g_return_if_fail(self->owner_id == 0);

	self->bus_type = bus_type;
	self->owner_id = g_bus_own_name(bus_type,
					VMSUP_DBUS_BUS_NAME,
					G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
					vmsup_dbus_server_bus_acquired_cb,
					vmsup_dbus_server_name_acquired_cb,
					vmsup_dbus_server_name_lost_cb,
					self,
					/* user_data_free_func= */ NULL);
}

VmsupDbusVmObjects *
vmsup_dbus_server_get_vm_objects(VmsupDbusServer *self)
{
	g_return_val_if_fail(VMSUP_IS_DBUS_SERVER(self), NULL);
	return self->vm_objects;
}

static void
vmsup_dbus_server_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	VmsupDbusServer *self = VMSUP_DBUS_SERVER(object);

	switch (prop_id) {
	case PROP_RPC_CONTEXT:
		g_value_set_pointer(value, (gpointer)self->ctx);
		break;
	case PROP_VM_SERVICE:
		g_value_set_object(value, self->vm_service);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
vmsup_dbus_server_set_property(GObject *object,
			       guint prop_id,
			       const GValue *value,
			       GParamSpec *pspec)
{
	VmsupDbusServer *self = VMSUP_DBUS_SERVER(object);

	switch (prop_id) {
	case PROP_RPC_CONTEXT:
		self->ctx = g_value_get_pointer(value);
		break;
	case PROP_VM_SERVICE:
		self->vm_service = g_value_dup_object(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
vmsup_dbus_server_constructed(GObject *object)
{
	VmsupDbusServer *self = VMSUP_DBUS_SERVER(object);
	gboolean system_mode = self->ctx != NULL && g_strcmp0(self->ctx->mode, "system") == 0;

	G_OBJECT_CLASS(vmsup_dbus_server_parent_class)->constructed(object);

	self->skeleton = vmsup_dbus_supervisor_skeleton_new(self->vm_service, self->ctx->policy);
	self->authorize = vmsup_authorize_new(system_mode ? VMSUP_AUTHORIZE_MODE_SYSTEM
							  : VMSUP_AUTHORIZE_MODE_SESSION);
	vmsup_authorize_attach(self->authorize, G_DBUS_INTERFACE_SKELETON(self->skeleton));
	for (const VmsupRpcMethod *m = vmsup_rpc_table_get_methods(); m->rpc_name != NULL; m++)
		vmsup_dbus_server_connect_method(self,
						 G_DBUS_INTERFACE_SKELETON(self->skeleton),
						 m,
						 /* vm_name= */ NULL);

	self->vm_objects = vmsup_dbus_vm_objects_new(vmsup_dbus_server_bind_vm, self);
	vmsup_authorize_attach(self->authorize, G_DBUS_INTERFACE_SKELETON(self->vm_objects));
	if (self->ctx != NULL && self->ctx->events != NULL) {
		self->events = g_object_ref(self->ctx->events);
		self->event_id = g_signal_connect(self->events,
						  "event",
						  G_CALLBACK(vmsup_dbus_server_event_cb),
						  self);
	}
	if (self->vm_service == NULL)
		return;
	self->accel_decided_id = g_signal_connect(self->vm_service,
						  "accel-decided",
						  G_CALLBACK(vmsup_dbus_server_accel_decided_cb),
						  self);
	vmsup_dbus_server_add_known_vms(self);
}

static void
vmsup_dbus_server_dispose(GObject *object)
{
	VmsupDbusServer *self = VMSUP_DBUS_SERVER(object);

	if (self->owner_id != 0) {
		g_bus_unown_name(self->owner_id);
		self->owner_id = 0;
	}
	vmsup_dbus_server_unexport(self);
	if (self->events != NULL)
		g_clear_signal_handler(&self->event_id, self->events);
	g_clear_object(&self->events);
	if (self->vm_service != NULL)
		g_clear_signal_handler(&self->accel_decided_id, self->vm_service);
	g_clear_object(&self->vm_objects);
	g_clear_object(&self->vm_service);
	g_clear_object(&self->authorize);
	G_OBJECT_CLASS(vmsup_dbus_server_parent_class)->dispose(object);
}

static void
vmsup_dbus_server_finalize(GObject *object)
{
	VmsupDbusServer *self = VMSUP_DBUS_SERVER(object);

	g_clear_object(&self->skeleton);
	G_OBJECT_CLASS(vmsup_dbus_server_parent_class)->finalize(object);
}

static void
vmsup_dbus_server_class_init(VmsupDbusServerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->get_property = vmsup_dbus_server_get_property;
	object_class->set_property = vmsup_dbus_server_set_property;
	object_class->constructed = vmsup_dbus_server_constructed;
	object_class->dispose = vmsup_dbus_server_dispose;
	object_class->finalize = vmsup_dbus_server_finalize;

	props[PROP_RPC_CONTEXT] = g_param_spec_pointer("rpc-context",
						       NULL,
						       NULL,
						       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
							   G_PARAM_STATIC_STRINGS);
	props[PROP_VM_SERVICE] = g_param_spec_object("vm-service",
						     NULL,
						     NULL,
						     VMSUP_TYPE_VM_SERVICE,
						     G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
							 G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
vmsup_dbus_server_init(VmsupDbusServer *self)
{
}

VmsupDbusServer *
vmsup_dbus_server_new(const VmsupRpcContext *ctx, VmsupVmService *vm_service)
{
	g_return_val_if_fail(ctx != NULL, NULL);
	g_return_val_if_fail(VMSUP_IS_POLICY(ctx->policy), NULL);

	return g_object_new(VMSUP_TYPE_DBUS_SERVER,
			    "rpc-context",
			    ctx,
			    "vm-service",
			    vm_service,
			    NULL);
}
