/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef enum {
	VMSUP_OPERATION_STATE_RUNNING,
	VMSUP_OPERATION_STATE_DONE,
	VMSUP_OPERATION_STATE_FAILED,
	VMSUP_OPERATION_STATE_CANCELLED,
} VmsupOperationState;

const gchar *
vmsup_operation_state_to_string(VmsupOperationState state);

#define VMSUP_TYPE_OPERATION (vmsup_operation_get_type())
G_DECLARE_FINAL_TYPE(VmsupOperation, vmsup_operation, VMSUP, OPERATION, GObject)

/*
 * A long-running request (a create) that clients follow with op.get and
 * stop with op.cancel. Signal "changed": void (self, gpointer) on every
 * stage, progress or state change.
 */
VmsupOperation *
vmsup_operation_new(gint64 id, const gchar *kind, const gchar *vm);

gint64
vmsup_operation_get_id(VmsupOperation *self);
const gchar *
vmsup_operation_get_kind(VmsupOperation *self);
const gchar *
vmsup_operation_get_vm(VmsupOperation *self);
VmsupOperationState
vmsup_operation_get_state(VmsupOperation *self);
const gchar *
vmsup_operation_get_stage(VmsupOperation *self);
gdouble
vmsup_operation_get_progress(VmsupOperation *self);
/* NULL unless the operation failed or was cancelled */
const GError *
vmsup_operation_get_error(VmsupOperation *self);
/* cancelled by op.cancel; the work of the operation runs under it */
GCancellable *
vmsup_operation_get_cancellable(VmsupOperation *self);
gboolean
vmsup_operation_is_finished(VmsupOperation *self);
/* monotonic time the operation finished, 0 while running */
gint64
vmsup_operation_get_finished_at(VmsupOperation *self);

/* progress is clamped to 0..1 and never goes back */
void
vmsup_operation_set_stage(VmsupOperation *self, const gchar *stage, gdouble progress);

/*
 * Ends the operation: done when @error is NULL, cancelled when @error is a
 * cancellation (VMSUP_ERROR_CANCELLED or G_IO_ERROR_CANCELLED), failed
 * otherwise. Only the first call counts.
 */
void
vmsup_operation_finish(VmsupOperation *self, const GError *error);

/* completes once the operation has finished (at once if it has) */
void
vmsup_operation_wait_async(VmsupOperation *self,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data);
gboolean
vmsup_operation_wait_finish(VmsupOperation *self, GAsyncResult *res, GError **error);

/* the op.get result: {id, kind, vm, state, stage, progress, error?: {code, kind, message}} */
JsonObject *
vmsup_operation_to_json(VmsupOperation *self);

G_END_DECLS
