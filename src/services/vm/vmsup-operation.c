/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One long-running operation as clients see it: stage, progress, outcome,
 * and the cancellable that op.cancel trips.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-operation.h"

struct _VmsupOperation {
	GObject parent_instance;
	gint64 id;
	gchar *kind;  /* owned */
	gchar *vm;    /* owned */
	gchar *stage; /* owned */
	gdouble progress;
	VmsupOperationState state;
	GError *error;             /* owned, NULL unless failed/cancelled */
	GCancellable *cancellable; /* owned */
	gint64 finished_at;
	GPtrArray *waiters; /* owned, of GTask */
};

G_DEFINE_FINAL_TYPE(VmsupOperation, vmsup_operation, G_TYPE_OBJECT)

enum { SIGNAL_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

const gchar *
vmsup_operation_state_to_string(VmsupOperationState state)
{
	switch (state) {
	case VMSUP_OPERATION_STATE_RUNNING:
		return "running";
	case VMSUP_OPERATION_STATE_DONE:
		return "done";
	case VMSUP_OPERATION_STATE_FAILED:
		return "failed";
	case VMSUP_OPERATION_STATE_CANCELLED:
		return "cancelled";
	default:
		return "unknown";
	}
}

gint64
vmsup_operation_get_id(VmsupOperation *self)
{
	g_return_val_if_fail(VMSUP_IS_OPERATION(self), 0);
	return self->id;
}

const gchar *
vmsup_operation_get_kind(VmsupOperation *self)
{
	g_return_val_if_fail(VMSUP_IS_OPERATION(self), NULL);
	return self->kind;
}

const gchar *
vmsup_operation_get_vm(VmsupOperation *self)
{
	g_return_val_if_fail(VMSUP_IS_OPERATION(self), NULL);
	return self->vm;
}

VmsupOperationState
vmsup_operation_get_state(VmsupOperation *self)
{
	g_return_val_if_fail(VMSUP_IS_OPERATION(self), VMSUP_OPERATION_STATE_FAILED);
	return self->state;
}

const gchar *
vmsup_operation_get_stage(VmsupOperation *self)
{
	g_return_val_if_fail(VMSUP_IS_OPERATION(self), NULL);
	return self->stage;
}

gdouble
vmsup_operation_get_progress(VmsupOperation *self)
{
	g_return_val_if_fail(VMSUP_IS_OPERATION(self), 0.);
	return self->progress;
}

const GError *
vmsup_operation_get_error(VmsupOperation *self)
{
	g_return_val_if_fail(VMSUP_IS_OPERATION(self), NULL);
	return self->error;
}

GCancellable *
vmsup_operation_get_cancellable(VmsupOperation *self)
{
	g_return_val_if_fail(VMSUP_IS_OPERATION(self), NULL);
	return self->cancellable;
}

gboolean
vmsup_operation_is_finished(VmsupOperation *self)
{
	g_return_val_if_fail(VMSUP_IS_OPERATION(self), TRUE);
	return self->state != VMSUP_OPERATION_STATE_RUNNING;
}

gint64
vmsup_operation_get_finished_at(VmsupOperation *self)
{
	g_return_val_if_fail(VMSUP_IS_OPERATION(self), 0);
	return self->finished_at;
}

void
vmsup_operation_set_stage(VmsupOperation *self, const gchar *stage, gdouble progress)
{
	g_return_if_fail(VMSUP_IS_OPERATION(self));
	g_return_if_fail(stage != NULL);

	if (vmsup_operation_is_finished(self))
		return;
	progress = CLAMP(progress, 0., 1.);
	if (g_strcmp0(self->stage, stage) == 0 && progress <= self->progress)
		return;
	g_free(self->stage);
	self->stage = g_strdup(stage);
	self->progress = MAX(self->progress, progress);
	g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
}

static gboolean
vmsup_operation_error_is_cancel(const GError *error)
{
	return g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_CANCELLED) ||
	       g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

void
vmsup_operation_finish(VmsupOperation *self, const GError *error)
{
	g_autoptr(GPtrArray) waiters = NULL;

	g_return_if_fail(VMSUP_IS_OPERATION(self));

	if (vmsup_operation_is_finished(self))
		return;
	if (error == NULL) {
		self->state = VMSUP_OPERATION_STATE_DONE;
		self->progress = 1.;
	} else if (vmsup_operation_error_is_cancel(error)) {
		self->state = VMSUP_OPERATION_STATE_CANCELLED;
		self->error = g_error_new(VMSUP_ERROR,
					  VMSUP_ERROR_CANCELLED,
					  _("Operation %lld was cancelled"),
					  (long long)self->id);
	} else {
		self->state = VMSUP_OPERATION_STATE_FAILED;
		self->error = g_error_copy(error);
		vmsup_error_convert(&self->error);
	}
	self->finished_at = g_get_monotonic_time();
	g_signal_emit(self, signals[SIGNAL_CHANGED], 0);

	waiters = g_steal_pointer(&self->waiters);
	self->waiters = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; i < waiters->len; i++)
		g_task_return_boolean(g_ptr_array_index(waiters, i), TRUE);
}

void
vmsup_operation_wait_async(VmsupOperation *self,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(VMSUP_IS_OPERATION(self));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_operation_wait_async);
	if (vmsup_operation_is_finished(self)) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	g_ptr_array_add(self->waiters, g_steal_pointer(&task));
}

gboolean
vmsup_operation_wait_finish(VmsupOperation *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

JsonObject *
vmsup_operation_to_json(VmsupOperation *self)
{
	g_autoptr(JsonObject) obj = json_object_new();

	g_return_val_if_fail(VMSUP_IS_OPERATION(self), NULL);

	json_object_set_int_member(obj, "id", self->id);
	json_object_set_string_member(obj, "kind", self->kind);
	json_object_set_string_member(obj, "vm", self->vm);
	json_object_set_string_member(obj, "state", vmsup_operation_state_to_string(self->state));
	json_object_set_string_member(obj, "stage", self->stage);
	json_object_set_double_member(obj, "progress", self->progress);
	if (self->error != NULL) {
		g_autoptr(JsonObject) err = json_object_new();
		json_object_set_int_member(err, "code", self->error->code);
		json_object_set_string_member(err, "kind", vmsup_error_to_kind(self->error->code));
		json_object_set_string_member(err, "message", self->error->message);
		json_object_set_object_member(obj, "error", g_steal_pointer(&err));
	}
	return g_steal_pointer(&obj);
}

static void
vmsup_operation_dispose(GObject *object)
{
	VmsupOperation *self = VMSUP_OPERATION(object);
	g_cancellable_cancel(self->cancellable);
	G_OBJECT_CLASS(vmsup_operation_parent_class)->dispose(object);
}

static void
vmsup_operation_finalize(GObject *object)
{
	VmsupOperation *self = VMSUP_OPERATION(object);
	g_free(self->kind);
	g_free(self->vm);
	g_free(self->stage);
	g_clear_error(&self->error);
	g_clear_object(&self->cancellable);
	g_ptr_array_unref(self->waiters);
	G_OBJECT_CLASS(vmsup_operation_parent_class)->finalize(object);
}

static void
vmsup_operation_class_init(VmsupOperationClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = vmsup_operation_dispose;
	object_class->finalize = vmsup_operation_finalize;

	signals[SIGNAL_CHANGED] = g_signal_new("changed",
					       G_TYPE_FROM_CLASS(klass),
					       G_SIGNAL_RUN_LAST,
					       0,
					       NULL,
					       NULL,
					       NULL,
					       G_TYPE_NONE,
					       0);
}

static void
vmsup_operation_init(VmsupOperation *self)
{
	self->cancellable = g_cancellable_new();
	self->waiters = g_ptr_array_new_with_free_func(g_object_unref);
	self->stage = g_strdup("queued");
}

VmsupOperation *
vmsup_operation_new(gint64 id, const gchar *kind, const gchar *vm)
{
	VmsupOperation *self = g_object_new(VMSUP_TYPE_OPERATION, NULL);
	self->id = id;
	self->kind = g_strdup(kind);
	self->vm = g_strdup(vm);
	return self;
}
