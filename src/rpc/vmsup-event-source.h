/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "vmsup-event-journal.h"
#include "vmsup-policy.h"
#include "vmsup-vm-service.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_EVENT_SOURCE (vmsup_event_source_get_type())
G_DECLARE_FINAL_TYPE(VmsupEventSource, vmsup_event_source, VMSUP, EVENT_SOURCE, GObject)

/*
 * The one path every event leaves vmsupd by. It listens to the services
 * once and emits "event" (VmsupPolicyEvent event, const gchar *method,
 * JsonObject *params) for each, in the JSON-RPC form: method is
 * "event.vm-changed" with {name, vm}, "event.vm-removed" with {name} or
 * "event.operation-changed" with the operation. Each transport connects
 * to it and hands an event on to whom the policy lets hear it.
 * @vm_service (nullable: no events) is kept until dispose.
 */
VmsupEventSource *
vmsup_event_source_new(VmsupVmService *vm_service);

/* "event.vm-changed" for VMSUP_POLICY_EVENT_VM_CHANGED, ... */
const gchar *
vmsup_event_source_method_name(VmsupPolicyEvent event);

/* sends @params (borrowed) out as @event: what the services' signals end in */
void
vmsup_event_source_emit(VmsupEventSource *self, VmsupPolicyEvent event, JsonObject *params);

/*
 * Each event is numbered (seq, going up by one from the journal's last)
 * and appended to @journal (nullable: none is kept) before it is emitted.
 */
void
vmsup_event_source_set_journal(VmsupEventSource *self, VmsupEventJournal *journal);
VmsupEventJournal *
vmsup_event_source_get_journal(VmsupEventSource *self);

/* learns the owners of the VMs defined now, so their removal is journaled as theirs */
void
vmsup_event_source_note_owners(VmsupEventSource *self);

/*
 * The number and time (g_get_real_time()) of the last event emitted: while
 * "event" runs, those of that event.
 */
guint64
vmsup_event_source_get_last_seq(VmsupEventSource *self, gint64 *out_time_us);

/*
 * @params (borrowed) as a subscriber receives them, live or replayed: a
 * copy with "seq" and "time" (ISO 8601, UTC) added.
 */
JsonObject *
vmsup_event_source_stamp(JsonObject *params, guint64 seq, const gchar *time);

G_END_DECLS
