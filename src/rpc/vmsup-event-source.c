/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where events leave: VMService's signals turned, once, into the events
 * both transports send, so that D-Bus signals and JSON-RPC notifications
 * can never tell different stories.
 */

#include "config.h"

#include "vmsup-event-source.h"
#include "vmsup-rpc-table.h"

struct _VmsupEventSource {
	GObject parent_instance;
	VmsupVmService *vm_service; /* owned, nullable */
	gulong vm_changed_id;
	gulong vm_removed_id;
	gulong operation_changed_id;
};

G_DEFINE_FINAL_TYPE(VmsupEventSource, vmsup_event_source, G_TYPE_OBJECT)

enum { SIGNAL_EVENT, N_SIGNALS };
static guint signals[N_SIGNALS];

const gchar *
vmsup_event_source_method_name(VmsupPolicyEvent event)
{
	switch (event) {
	case VMSUP_POLICY_EVENT_VM_CHANGED:
		return VMSUP_RPC_EVENT_VM_CHANGED;
	case VMSUP_POLICY_EVENT_VM_REMOVED:
		return VMSUP_RPC_EVENT_VM_REMOVED;
	case VMSUP_POLICY_EVENT_OPERATION_CHANGED:
		return VMSUP_RPC_EVENT_OPERATION_CHANGED;
	default:
		g_return_val_if_reached(NULL);
	}
}

void
vmsup_event_source_emit(VmsupEventSource *self, VmsupPolicyEvent event, JsonObject *params)
{
	g_return_if_fail(VMSUP_IS_EVENT_SOURCE(self));
	g_return_if_fail(params != NULL);

	g_signal_emit(self,
		      signals[SIGNAL_EVENT],
		      0,
		      (guint)event,
		      vmsup_event_source_method_name(event),
		      params);
}

static void
vmsup_event_source_vm_changed_cb(VmsupVmService *vm_service,
				 const gchar *name,
				 JsonObject *vm,
				 VmsupEventSource *self)
{
	g_autoptr(JsonObject) params = json_object_new();

	json_object_set_string_member(params, "name", name);
	json_object_set_object_member(params, "vm", json_object_ref(vm));
	vmsup_event_source_emit(self, VMSUP_POLICY_EVENT_VM_CHANGED, params);
}

static void
vmsup_event_source_vm_removed_cb(VmsupVmService *vm_service,
				 const gchar *name,
				 VmsupEventSource *self)
{
	g_autoptr(JsonObject) params = json_object_new();

	json_object_set_string_member(params, "name", name);
	vmsup_event_source_emit(self, VMSUP_POLICY_EVENT_VM_REMOVED, params);
}

static void
vmsup_event_source_operation_changed_cb(VmsupVmService *vm_service,
					JsonObject *op,
					VmsupEventSource *self)
{
	vmsup_event_source_emit(self, VMSUP_POLICY_EVENT_OPERATION_CHANGED, op);
}

static void
vmsup_event_source_dispose(GObject *object)
{
	VmsupEventSource *self = VMSUP_EVENT_SOURCE(object);

	if (self->vm_service != NULL) {
		g_clear_signal_handler(&self->vm_changed_id, self->vm_service);
		g_clear_signal_handler(&self->vm_removed_id, self->vm_service);
		g_clear_signal_handler(&self->operation_changed_id, self->vm_service);
	}
	g_clear_object(&self->vm_service);
	G_OBJECT_CLASS(vmsup_event_source_parent_class)->dispose(object);
}

static void
vmsup_event_source_class_init(VmsupEventSourceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = vmsup_event_source_dispose;

	signals[SIGNAL_EVENT] = g_signal_new("event",
					     G_TYPE_FROM_CLASS(klass),
					     G_SIGNAL_RUN_LAST,
					     0,
					     NULL,
					     NULL,
					     NULL,
					     G_TYPE_NONE,
					     3,
					     G_TYPE_UINT,
					     G_TYPE_STRING,
					     JSON_TYPE_OBJECT);
}

static void
vmsup_event_source_init(VmsupEventSource *self)
{
}

VmsupEventSource *
vmsup_event_source_new(VmsupVmService *vm_service)
{
	VmsupEventSource *self = g_object_new(VMSUP_TYPE_EVENT_SOURCE, NULL);

	if (vm_service == NULL)
		return self;
	self->vm_service = g_object_ref(vm_service);
	self->vm_changed_id = g_signal_connect(vm_service,
					       "vm-changed",
					       G_CALLBACK(vmsup_event_source_vm_changed_cb),
					       self);
	self->vm_removed_id = g_signal_connect(vm_service,
					       "vm-removed",
					       G_CALLBACK(vmsup_event_source_vm_removed_cb),
					       self);
	self->operation_changed_id =
	    g_signal_connect(vm_service,
			     "operation-changed",
			     G_CALLBACK(vmsup_event_source_operation_changed_cb),
			     self);
	return self;
}
