/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService's snapshot.* verbs and vm.start {snapshot}: checked at once,
 * then run under the VM's lock (a VM busy with another verb says so
 * instead of waiting), create and restore as operations.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-name.h"
#include "vmsup-vm-service-private.h"
#include "vmsup-vm-service-snapshot.h"
#include "vmsup-vm-snapshot.h"

typedef struct {
	VmsupVmService *self; /* owned */
	VmsupVm *vm;          /* owned */
	gchar *name;          /* owned */
	gchar *snapshot;      /* owned */
	gchar *qemu_img;      /* owned, may be NULL for a VM without a disk */
	gboolean memory;
	JsonObject *entry;  /* owned: restore */
	VmsupOperation *op; /* owned, nullable */
	gboolean locked;
} VmsupSnapshotVerb;

static void
vmsup_snapshot_verb_free(VmsupSnapshotVerb *verb)
{
	if (verb->locked)
		vmsup_vm_lock_unlock(vmsup_vm_service_get_lock(verb->self), verb->name);
	g_clear_object(&verb->self);
	g_clear_object(&verb->vm);
	g_free(verb->name);
	g_free(verb->snapshot);
	g_free(verb->qemu_img);
	g_clear_pointer(&verb->entry, json_object_unref);
	g_clear_object(&verb->op);
	g_free(verb);
}

static void
vmsup_snapshot_verb_unlock(VmsupSnapshotVerb *verb)
{
	if (!verb->locked)
		return;
	verb->locked = FALSE;
	vmsup_vm_lock_unlock(vmsup_vm_service_get_lock(verb->self), verb->name);
}

/* the VM and snapshot names of @params, the VM found and not busy */
static VmsupSnapshotVerb *
vmsup_snapshot_verb_new(VmsupVmService *self, JsonObject *params, GError **error)
{
	const gchar *name = vmsup_json_object_get_string(params, "name", NULL);
	const gchar *snapshot = vmsup_json_object_get_string(params, "snapshot", NULL);
	VmsupSnapshotVerb *verb;
	VmsupVm *vm;

	/* the RPC table refused invalid names; in-process callers pass valid ones */
	g_return_val_if_fail(vmsup_name_validate(name, "VM", NULL), NULL);
	if (json_object_has_member(params, "snapshot") &&
	    !vmsup_name_validate(snapshot, "snapshot", error))
		return NULL;
	vm = vmsup_vm_service_find_vm(self, name, error);
	if (vm == NULL)
		return NULL;
	if (vmsup_vm_lock_is_locked(vmsup_vm_service_get_lock(self), name)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    _("VM '%s' is busy with another request; try again once it is done "
			      "('vmsup ops' lists operations)"),
			    name);
		return NULL;
	}
	verb = g_new0(VmsupSnapshotVerb, 1);
	verb->self = g_object_ref(self);
	verb->vm = g_object_ref(vm);
	verb->name = g_strdup(name);
	verb->snapshot = g_strdup(snapshot);
	return verb;
}

static gboolean
vmsup_snapshot_verb_find_qemu_img(VmsupSnapshotVerb *verb, GError **error)
{
	if (vmsup_vm_get_def(verb->vm)->disk == NULL)
		return TRUE;
	verb->qemu_img = vmsup_vm_service_find_qemu_img(verb->self, error);
	return verb->qemu_img != NULL;
}

/* the lock is held: the VM may have been deleted (or made again) while it came */
static gboolean
vmsup_snapshot_verb_locked(VmsupSnapshotVerb *verb, GAsyncResult *res, GError **error)
{
	if (!vmsup_vm_lock_lock_finish(res, error))
		return FALSE;
	verb->locked = TRUE;
	if (vmsup_vm_service_find_vm(verb->self, verb->name, NULL) != verb->vm) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    _("VM '%s' was deleted while the request waited"),
			    verb->name);
		return FALSE;
	}
	return TRUE;
}

/* the answer of create and restore: the operation, or with wait its end */

static JsonObject *
vmsup_snapshot_op_result(VmsupOperation *op, const gchar *snapshot)
{
	JsonObject *result = json_object_new();

	json_object_set_int_member(result, "operation", vmsup_operation_get_id(op));
	json_object_set_string_member(result, "vm", vmsup_operation_get_vm(op));
	json_object_set_string_member(result, "snapshot", snapshot);
	return result;
}

static void
vmsup_snapshot_waited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupOperation *op = VMSUP_OPERATION(source);
	const GError *op_error = vmsup_operation_get_error(op);
	GError *error = NULL;

	if (!vmsup_operation_wait_finish(op, res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	if (op_error != NULL) {
		g_task_return_error(task, g_error_copy(op_error));
		return;
	}
	g_task_return_pointer(task,
			      vmsup_snapshot_op_result(op, g_task_get_task_data(task)),
			      (GDestroyNotify)json_object_unref);
}

static void
vmsup_snapshot_answer(GTask *task /* owned */, JsonObject *params, VmsupSnapshotVerb *verb)
{
	gboolean wait = vmsup_json_object_get_bool(params, "wait", FALSE);

	if (wait) {
		g_task_set_task_data(task, g_strdup(verb->snapshot), g_free);
		vmsup_operation_wait_async(verb->op, NULL, vmsup_snapshot_waited_cb, task);
		return;
	}
	g_task_return_pointer(task,
			      vmsup_snapshot_op_result(verb->op, verb->snapshot),
			      (GDestroyNotify)json_object_unref);
	g_object_unref(task);
}

/* the operation, queued on the VM's lock (free: nobody else holds it), and the answer */
static void
vmsup_snapshot_verb_run(VmsupSnapshotVerb *verb /* owned */,
			const gchar *kind,
			GAsyncReadyCallback locked_cb,
			GTask *task /* owned */,
			JsonObject *params)
{
	verb->op = g_object_ref(vmsup_vm_service_new_vm_operation(verb->self, kind, verb->vm));
	vmsup_vm_lock_lock_async(vmsup_vm_service_get_lock(verb->self),
				 verb->name,
				 NULL,
				 locked_cb,
				 verb);
	vmsup_snapshot_answer(task, params, verb);
}

static void
vmsup_snapshot_op_end(VmsupSnapshotVerb *verb /* owned */, GError *error /* owned, nullable */)
{
	g_autoptr(VmsupOperation) op = g_steal_pointer(&verb->op);

	/* the lock goes before the operation ends, so a follow-up request never waits on us */
	vmsup_snapshot_verb_unlock(verb);
	vmsup_snapshot_verb_free(verb);
	vmsup_operation_finish(op, error);
	g_clear_error(&error);
}

/* snapshot.create */

static void
vmsup_snapshot_created_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupSnapshotVerb *verb = user_data;
	g_autoptr(JsonObject) entry = NULL;
	GError *error = NULL;

	entry = vmsup_vm_snapshot_create_finish(res, &error);
	vmsup_snapshot_op_end(verb, error);
}

static void
vmsup_snapshot_create_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupSnapshotVerb *verb = user_data;
	GError *error = NULL;

	/* the VM may have changed while the lock was on its way */
	if (!vmsup_snapshot_verb_locked(verb, res, &error) ||
	    !vmsup_vm_snapshot_check_create(verb->vm, verb->memory, &error) ||
	    g_cancellable_set_error_if_cancelled(vmsup_operation_get_cancellable(verb->op),
						 &error)) {
		vmsup_snapshot_op_end(verb, error);
		return;
	}
	vmsup_vm_snapshot_create_async(verb->vm,
				       vmsup_vm_service_get_snapshots(verb->self),
				       verb->qemu_img,
				       verb->snapshot,
				       verb->memory,
				       verb->op,
				       vmsup_snapshot_created_cb,
				       verb);
}

void
vmsup_vm_service_snapshot_create_async(VmsupVmService *self,
				       const VmsupCaller *caller,
				       JsonObject *params,
				       GCancellable *cancellable,
				       GAsyncReadyCallback callback,
				       gpointer user_data)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);
	GError *error = NULL;
	VmsupSnapshotVerb *verb;
	g_autoptr(JsonObject) existing = NULL;
	VmsupVmState state;

	g_task_set_source_tag(task, vmsup_vm_service_snapshot_create_async);
	verb = vmsup_snapshot_verb_new(self, params, &error);
	if (verb == NULL) {
		g_task_return_error(task, error);
		g_object_unref(task);
		return;
	}
	/* memory by default when there is some: a running VM's whole state */
	state = vmsup_vm_get_state(verb->vm);
	verb->memory = vmsup_json_object_get_bool(params,
						  "memory",
						  state == VMSUP_VM_STATE_RUNNING ||
						      state == VMSUP_VM_STATE_PAUSED);
	existing = vmsup_snapshot_store_find(vmsup_vm_service_get_snapshots(self),
					     verb->name,
					     verb->snapshot);
	if (existing != NULL) {
		error = g_error_new(VMSUP_ERROR,
				    VMSUP_ERROR_ALREADY_EXISTS,
				    _("VM '%s' has a snapshot '%s' already; choose another name or "
				      "delete it first"),
				    verb->name,
				    verb->snapshot);
	}
	if (error != NULL || !vmsup_vm_snapshot_check_create(verb->vm, verb->memory, &error) ||
	    !vmsup_snapshot_verb_find_qemu_img(verb, &error)) {
		vmsup_snapshot_verb_free(verb);
		g_task_return_error(task, error);
		g_object_unref(task);
		return;
	}
	vmsup_snapshot_verb_run(verb,
				"snapshot.create",
				vmsup_snapshot_create_locked_cb,
				task,
				params);
}

/* snapshot.restore */

static void
vmsup_snapshot_restored_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupSnapshotVerb *verb = user_data;
	GError *error = NULL;

	vmsup_vm_snapshot_restore_finish(res, &error);
	vmsup_snapshot_op_end(verb, error);
}

static void
vmsup_snapshot_restore_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupSnapshotVerb *verb = user_data;
	g_autoptr(JsonObject) entry = NULL;
	GError *error = NULL;

	if (!vmsup_snapshot_verb_locked(verb, res, &error) ||
	    (entry = vmsup_vm_snapshot_check_restore(verb->vm,
						     vmsup_vm_service_get_snapshots(verb->self),
						     verb->snapshot,
						     &error)) == NULL ||
	    g_cancellable_set_error_if_cancelled(vmsup_operation_get_cancellable(verb->op),
						 &error)) {
		vmsup_snapshot_op_end(verb, error);
		return;
	}
	vmsup_vm_snapshot_restore_async(verb->vm,
					vmsup_vm_service_get_snapshots(verb->self),
					verb->qemu_img,
					entry,
					verb->op,
					vmsup_snapshot_restored_cb,
					verb);
}

void
vmsup_vm_service_snapshot_restore_async(VmsupVmService *self,
					const VmsupCaller *caller,
					JsonObject *params,
					GCancellable *cancellable,
					GAsyncReadyCallback callback,
					gpointer user_data)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);
	GError *error = NULL;
	VmsupSnapshotVerb *verb;

	g_task_set_source_tag(task, vmsup_vm_service_snapshot_restore_async);
	verb = vmsup_snapshot_verb_new(self, params, &error);
	if (verb != NULL) {
		/* refused before anything changes */
		verb->entry = vmsup_vm_snapshot_check_restore(verb->vm,
							      vmsup_vm_service_get_snapshots(self),
							      verb->snapshot,
							      &error);
		if (verb->entry == NULL || !vmsup_snapshot_verb_find_qemu_img(verb, &error))
			g_clear_pointer(&verb, vmsup_snapshot_verb_free);
	}
	if (verb == NULL) {
		g_task_return_error(task, error);
		g_object_unref(task);
		return;
	}
	vmsup_snapshot_verb_run(verb,
				"snapshot.restore",
				vmsup_snapshot_restore_locked_cb,
				task,
				params);
}

/* snapshot.delete */

static void
vmsup_snapshot_deleted_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupSnapshotVerb *verb = g_task_get_task_data(task);
	g_autoptr(JsonObject) result = json_object_new();
	GError *error = NULL;

	vmsup_snapshot_verb_unlock(verb);
	if (!vmsup_vm_snapshot_delete_finish(res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	json_object_set_string_member(result, "name", verb->name);
	json_object_set_string_member(result, "snapshot", verb->snapshot);
	json_object_set_boolean_member(result, "deleted", TRUE);
	g_task_return_pointer(task, g_steal_pointer(&result), (GDestroyNotify)json_object_unref);
}

static void
vmsup_snapshot_delete_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupSnapshotVerb *verb = g_task_get_task_data(task);
	GError *error = NULL;

	if (!vmsup_snapshot_verb_locked(verb, res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	vmsup_vm_snapshot_delete_async(verb->vm,
				       vmsup_vm_service_get_snapshots(verb->self),
				       verb->qemu_img,
				       verb->snapshot,
				       vmsup_snapshot_deleted_cb,
				       g_steal_pointer(&task));
}

void
vmsup_vm_service_snapshot_delete_async(VmsupVmService *self,
				       const VmsupCaller *caller,
				       JsonObject *params,
				       GCancellable *cancellable,
				       GAsyncReadyCallback callback,
				       gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	GError *error = NULL;
	VmsupSnapshotVerb *verb;

	g_task_set_source_tag(task, vmsup_vm_service_snapshot_delete_async);
	verb = vmsup_snapshot_verb_new(self, params, &error);
	if (verb != NULL && !vmsup_snapshot_verb_find_qemu_img(verb, &error))
		g_clear_pointer(&verb, vmsup_snapshot_verb_free);
	if (verb == NULL) {
		g_task_return_error(task, error);
		return;
	}
	g_task_set_task_data(task, verb, (GDestroyNotify)vmsup_snapshot_verb_free);
	vmsup_vm_lock_lock_async(vmsup_vm_service_get_lock(self),
				 verb->name,
				 NULL,
				 vmsup_snapshot_delete_locked_cb,
				 g_steal_pointer(&task));
}

/* snapshot.list */

JsonObject *
vmsup_vm_service_snapshot_list(VmsupVmService *self, JsonObject *params, GError **error)
{
	const gchar *name = vmsup_json_object_get_string(params, "name", NULL);
	JsonObject *result;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	if (vmsup_vm_service_find_vm(self, name, error) == NULL)
		return NULL;
	result = json_object_new();
	json_object_set_array_member(
	    result,
	    "snapshots",
	    vmsup_snapshot_store_list(vmsup_vm_service_get_snapshots(self), name));
	return result;
}

JsonObject *
vmsup_vm_service_snapshot_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* vm.start {snapshot} */

static void
vmsup_snapshot_start_restored_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;

	if (!vmsup_vm_snapshot_restore_finish(res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_service_start_snapshot_async(VmsupVmService *self,
				      VmsupVm *vm,
				      const gchar *snapshot,
				      GAsyncReadyCallback callback,
				      gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	const gchar *name = vmsup_vm_get_name(vm);
	g_autoptr(JsonObject) entry = NULL;
	g_autofree gchar *qemu_img = NULL;
	GError *error = NULL;

	if (!vmsup_name_validate(snapshot, "snapshot", &error)) {
		g_task_return_error(task, error);
		return;
	}
	if (vmsup_vm_has_process(vm)) {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("VM '%s' is %s already; restore the snapshot into it with "
		      "'vmsup snapshot restore %s %s'"),
		    name,
		    vmsup_vm_state_to_string(vmsup_vm_get_state(vm)),
		    name,
		    snapshot);
		return;
	}
	entry = vmsup_vm_snapshot_check_restore(vm,
						vmsup_vm_service_get_snapshots(self),
						snapshot,
						&error);
	if (entry != NULL && !vmsup_json_object_get_bool(entry, "memory", FALSE)) {
		error =
		    g_error_new(VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("Snapshot '%s' holds only the disk, so there is no running "
				  "state to start from; restore it with 'vmsup snapshot restore "
				  "%s %s', then start the VM"),
				snapshot,
				name,
				snapshot);
	}
	if (error == NULL && vmsup_vm_get_def(vm)->disk != NULL)
		qemu_img = vmsup_vm_service_find_qemu_img(self, &error);
	if (error != NULL) {
		g_task_return_error(task, error);
		return;
	}
	vmsup_vm_snapshot_restore_async(vm,
					vmsup_vm_service_get_snapshots(self),
					qemu_img,
					entry,
					NULL,
					vmsup_snapshot_start_restored_cb,
					g_steal_pointer(&task));
}

gboolean
vmsup_vm_service_start_snapshot_finish(GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}
