/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where events leave: VMService's signals turned, once, into the events
 * both transports send, so that D-Bus signals and JSON-RPC notifications
 * can never tell different stories.
 */

#include "config.h"

#include "vmsup-event-source.h"
#include "vmsup-json.h"
#include "vmsup-rpc-table.h"
#include "vmsup-stats-json.h"

struct _VmsupEventSource {
	GObject parent_instance;
	VmsupVmService *vm_service; /* owned, nullable */
	VmsupEventJournal *journal; /* owned, nullable: nothing is kept */
	/* name -> owner uid + 1 of each VM heard of: a removal's owner, once the VM is gone */
	GHashTable *owners;
	guint64 last_seq;
	gint64 last_time_us;
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

/* whose the event is, for reading the journal back: the VM's owner */
static gint64
vmsup_event_source_owner_of(VmsupEventSource *self, VmsupPolicyEvent event, JsonObject *params)
{
	const gchar *name = vmsup_json_object_get_string(params, "name", NULL);
	gpointer value = NULL;
	guint32 uid;

	switch (event) {
	case VMSUP_POLICY_EVENT_VM_CHANGED: {
		JsonNode *vm = json_object_get_member(params, "vm");
		gint64 owner = vm != NULL && JSON_NODE_HOLDS_OBJECT(vm)
				   ? vmsup_json_object_get_int(json_node_get_object(vm),
							       "owner_uid",
							       VMSUP_EVENT_JOURNAL_NO_OWNER)
				   : VMSUP_EVENT_JOURNAL_NO_OWNER;
		if (name != NULL && owner >= 0)
			g_hash_table_insert(self->owners,
					    g_strdup(name),
					    GSIZE_TO_POINTER((gsize)owner + 1));
		return owner;
	}
	case VMSUP_POLICY_EVENT_VM_REMOVED:
		if (name == NULL || !g_hash_table_lookup_extended(self->owners, name, NULL, &value))
			return VMSUP_EVENT_JOURNAL_NO_OWNER;
		g_hash_table_remove(self->owners, name);
		return (gint64)GPOINTER_TO_SIZE(value) - 1;
	case VMSUP_POLICY_EVENT_OPERATION_CHANGED:
		if (self->vm_service != NULL &&
		    vmsup_vm_service_get_op_owner(self->vm_service,
						  vmsup_json_object_get_int(params, "id", 0),
						  &uid))
			return uid;
		return VMSUP_EVENT_JOURNAL_NO_OWNER;
	default:
		return VMSUP_EVENT_JOURNAL_NO_OWNER;
	}
}

void
vmsup_event_source_emit(VmsupEventSource *self, VmsupPolicyEvent event, JsonObject *params)
{
	const gchar *method;
	gint64 owner;

	g_return_if_fail(VMSUP_IS_EVENT_SOURCE(self));
	g_return_if_fail(params != NULL);

	method = vmsup_event_source_method_name(event);
	owner = vmsup_event_source_owner_of(self, event, params);
	self->last_time_us = g_get_real_time();
	/* kept before anyone hears of it: a replay taken later always holds it */
	if (self->journal != NULL)
		self->last_seq = vmsup_event_journal_append(self->journal,
							    self->last_time_us,
							    method,
							    params,
							    owner);
	else
		self->last_seq++;
	g_signal_emit(self, signals[SIGNAL_EVENT], 0, (guint)event, method, params);
}

void
vmsup_event_source_set_journal(VmsupEventSource *self, VmsupEventJournal *journal)
{
	g_return_if_fail(VMSUP_IS_EVENT_SOURCE(self));
	g_set_object(&self->journal, journal);
	if (journal != NULL)
		self->last_seq = MAX(self->last_seq, vmsup_event_journal_get_last_seq(journal));
}

VmsupEventJournal *
vmsup_event_source_get_journal(VmsupEventSource *self)
{
	g_return_val_if_fail(VMSUP_IS_EVENT_SOURCE(self), NULL);
	return self->journal;
}

void
vmsup_event_source_note_owners(VmsupEventSource *self)
{
	g_auto(GStrv) names = NULL;
	guint32 uid;

	g_return_if_fail(VMSUP_IS_EVENT_SOURCE(self));
	if (self->vm_service == NULL)
		return;
	names = vmsup_vm_service_list_names(self->vm_service);
	for (guint i = 0; names != NULL && names[i] != NULL; i++) {
		if (vmsup_vm_service_get_owner(self->vm_service, names[i], &uid))
			g_hash_table_insert(self->owners,
					    g_strdup(names[i]),
					    GSIZE_TO_POINTER((gsize)uid + 1));
	}
}

guint64
vmsup_event_source_get_last_seq(VmsupEventSource *self, gint64 *out_time_us)
{
	g_return_val_if_fail(VMSUP_IS_EVENT_SOURCE(self), 0);
	if (out_time_us != NULL)
		*out_time_us = self->last_time_us;
	return self->last_seq;
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

JsonObject *
vmsup_event_source_stamp(JsonObject *params, guint64 seq, const gchar *time)
{
	JsonObject *stamped;

	g_return_val_if_fail(params != NULL, json_object_new());
	stamped = vmsup_stats_json_copy_flat(params);
	json_object_set_int_member(stamped, "seq", (gint64)seq);
	json_object_set_string_member(stamped, "time", time != NULL ? time : "");
	return stamped;
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
	g_clear_object(&self->journal);
	G_OBJECT_CLASS(vmsup_event_source_parent_class)->dispose(object);
}

static void
vmsup_event_source_finalize(GObject *object)
{
	VmsupEventSource *self = VMSUP_EVENT_SOURCE(object);

	g_hash_table_unref(self->owners);
	G_OBJECT_CLASS(vmsup_event_source_parent_class)->finalize(object);
}

static void
vmsup_event_source_class_init(VmsupEventSourceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = vmsup_event_source_dispose;
	object_class->finalize = vmsup_event_source_finalize;

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
	self->owners = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
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
