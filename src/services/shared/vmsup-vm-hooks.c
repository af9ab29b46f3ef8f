/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What sibling services may ask of VMService, as closures: the typed
 * wrappers pack GValues for g_closure_invoke(), and an invalidated closure
 * (VMService gone) reads as "not alive" instead of touching freed memory.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-vm-hooks.h"

G_DEFINE_BOXED_TYPE(VmsupVmHandles, vmsup_vm_handles, vmsup_vm_handles_ref, vmsup_vm_handles_unref)

VmsupVmHandles *
vmsup_vm_handles_new(const gchar *name, const gchar *runtime_dir, VmsupQemuProcess *process)
{
	VmsupVmHandles *handles;

	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(runtime_dir != NULL, NULL);
	g_return_val_if_fail(VMSUP_IS_QEMU_PROCESS(process), NULL);

	handles = g_new0(VmsupVmHandles, 1);
	handles->name = g_strdup(name);
	handles->runtime_dir = g_strdup(runtime_dir);
	handles->process = g_object_ref(process);
	handles->accel = VMSUP_ACCEL_TCG;
	handles->ref_count = 1;
	return handles;
}

VmsupVmHandles *
vmsup_vm_handles_ref(VmsupVmHandles *handles)
{
	g_return_val_if_fail(handles != NULL, NULL);
	g_return_val_if_fail(handles->ref_count > 0, NULL);
	g_atomic_int_inc(&handles->ref_count);
	return handles;
}

void
vmsup_vm_handles_unref(VmsupVmHandles *handles)
{
	g_return_if_fail(handles != NULL);
	g_return_if_fail(handles->ref_count > 0);
	if (!g_atomic_int_dec_and_test(&handles->ref_count))
		return;
	g_free(handles->name);
	g_free(handles->runtime_dir);
	g_clear_object(&handles->process);
	g_clear_object(&handles->qga);
	g_clear_pointer(&handles->forwards, g_array_unref);
	g_free(handles);
}

GClosure *
vmsup_vm_hooks_take_closure(GClosure *closure)
{
	if (closure == NULL)
		return NULL;
	g_closure_ref(closure);
	g_closure_sink(closure);
	return closure;
}

void
vmsup_vm_hooks_copy(VmsupVmHooks *dst, const VmsupVmHooks *src)
{
	g_return_if_fail(dst != NULL);
	g_return_if_fail(src != NULL);

	vmsup_vm_hooks_clear(dst);
	dst->vm_alive = vmsup_vm_hooks_take_closure(src->vm_alive);
	dst->vm_handles = vmsup_vm_hooks_take_closure(src->vm_handles);
	dst->lock_vm = vmsup_vm_hooks_take_closure(src->lock_vm);
	dst->unlock_vm = vmsup_vm_hooks_take_closure(src->unlock_vm);
	dst->cleanup_runtime = vmsup_vm_hooks_take_closure(src->cleanup_runtime);
	dst->note_stop = vmsup_vm_hooks_take_closure(src->note_stop);
	dst->image_users = vmsup_vm_hooks_take_closure(src->image_users);
}

void
vmsup_vm_hooks_clear(VmsupVmHooks *hooks)
{
	g_return_if_fail(hooks != NULL);
	g_clear_pointer(&hooks->vm_alive, g_closure_unref);
	g_clear_pointer(&hooks->vm_handles, g_closure_unref);
	g_clear_pointer(&hooks->lock_vm, g_closure_unref);
	g_clear_pointer(&hooks->unlock_vm, g_closure_unref);
	g_clear_pointer(&hooks->cleanup_runtime, g_closure_unref);
	g_clear_pointer(&hooks->note_stop, g_closure_unref);
	g_clear_pointer(&hooks->image_users, g_closure_unref);
}

gboolean
vmsup_vm_hooks_is_complete(const VmsupVmHooks *hooks)
{
	return hooks != NULL && hooks->vm_alive != NULL && hooks->vm_handles != NULL &&
	       hooks->lock_vm != NULL && hooks->unlock_vm != NULL &&
	       hooks->cleanup_runtime != NULL && hooks->note_stop != NULL &&
	       hooks->image_users != NULL;
}

gboolean
vmsup_vm_hooks_closure_usable(GClosure *closure)
{
	return closure != NULL && !closure->is_invalid;
}

/* invokes @closure with (name); @ret may be NULL */
static void
vmsup_vm_hooks_invoke_name(GClosure *closure, GValue *ret, const gchar *name)
{
	GValue arg = G_VALUE_INIT;
	g_value_init(&arg, G_TYPE_STRING);
	g_value_set_string(&arg, name);
	g_closure_invoke(closure, ret, 1, &arg, NULL);
	g_value_unset(&arg);
}

gboolean
vmsup_vm_hooks_vm_alive(const VmsupVmHooks *hooks, const gchar *name)
{
	GValue ret = G_VALUE_INIT;
	gboolean alive;

	g_return_val_if_fail(hooks != NULL, FALSE);
	if (!vmsup_vm_hooks_closure_usable(hooks->vm_alive))
		return FALSE;
	g_value_init(&ret, G_TYPE_BOOLEAN);
	vmsup_vm_hooks_invoke_name(hooks->vm_alive, &ret, name);
	alive = g_value_get_boolean(&ret);
	g_value_unset(&ret);
	return alive;
}

VmsupVmHandles *
vmsup_vm_hooks_invoke_vm_handles(GClosure *closure, const gchar *name)
{
	GValue ret = G_VALUE_INIT;
	VmsupVmHandles *handles;

	if (!vmsup_vm_hooks_closure_usable(closure))
		return NULL;
	g_value_init(&ret, VMSUP_TYPE_VM_HANDLES);
	vmsup_vm_hooks_invoke_name(closure, &ret, name);
	handles = g_value_dup_boxed(&ret);
	g_value_unset(&ret);
	return handles;
}

VmsupVmHandles *
vmsup_vm_hooks_vm_handles(const VmsupVmHooks *hooks, const gchar *name)
{
	g_return_val_if_fail(hooks != NULL, NULL);
	return vmsup_vm_hooks_invoke_vm_handles(hooks->vm_handles, name);
}

void
vmsup_vm_hooks_lock_vm(const VmsupVmHooks *hooks,
		       const gchar *name,
		       GCancellable *cancellable,
		       GAsyncReadyCallback callback,
		       gpointer user_data)
{
	GValue args[4] = {G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT};

	g_return_if_fail(hooks != NULL);

	/* nothing would ever call back through a dead closure: answer here */
	if (!vmsup_vm_hooks_closure_usable(hooks->lock_vm)) {
		g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
		g_task_set_source_tag(task, vmsup_vm_hooks_lock_vm);
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("The VM service is shutting down; VM '%s' cannot be "
					  "locked"),
					name);
		return;
	}
	g_value_init(&args[0], G_TYPE_STRING);
	g_value_set_string(&args[0], name);
	g_value_init(&args[1], G_TYPE_CANCELLABLE);
	g_value_set_object(&args[1], cancellable);
	g_value_init(&args[2], G_TYPE_POINTER);
	g_value_set_pointer(&args[2], callback);
	g_value_init(&args[3], G_TYPE_POINTER);
	g_value_set_pointer(&args[3], user_data);
	g_closure_invoke(hooks->lock_vm, NULL, G_N_ELEMENTS(args), args, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(args); i++)
		g_value_unset(&args[i]);
}

gboolean
vmsup_vm_hooks_lock_vm_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(G_IS_TASK(res), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

void
vmsup_vm_hooks_unlock_vm(const VmsupVmHooks *hooks, const gchar *name)
{
	g_return_if_fail(hooks != NULL);
	if (!vmsup_vm_hooks_closure_usable(hooks->unlock_vm))
		return;
	vmsup_vm_hooks_invoke_name(hooks->unlock_vm, NULL, name);
}

void
vmsup_vm_hooks_cleanup_runtime(const VmsupVmHooks *hooks, const gchar *name)
{
	g_return_if_fail(hooks != NULL);
	if (!vmsup_vm_hooks_closure_usable(hooks->cleanup_runtime))
		return;
	vmsup_vm_hooks_invoke_name(hooks->cleanup_runtime, NULL, name);
}

void
vmsup_vm_hooks_note_stop(const VmsupVmHooks *hooks, const gchar *name, const gchar *reason)
{
	GValue args[2] = {G_VALUE_INIT, G_VALUE_INIT};

	g_return_if_fail(hooks != NULL);
	if (!vmsup_vm_hooks_closure_usable(hooks->note_stop))
		return;
	g_value_init(&args[0], G_TYPE_STRING);
	g_value_set_string(&args[0], name);
	g_value_init(&args[1], G_TYPE_STRING);
	g_value_set_string(&args[1], reason);
	g_closure_invoke(hooks->note_stop, NULL, G_N_ELEMENTS(args), args, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(args); i++)
		g_value_unset(&args[i]);
}
