/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What WorkspaceService may ask of VMService, as closures: the typed wrappers
 * pack GValues for g_closure_invoke(), and an invalidated closure (VMService
 * gone) answers with an error instead of touching freed memory.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-workspace-hooks.h"

void
vmsup_workspace_hooks_copy(VmsupWorkspaceHooks *dst, const VmsupWorkspaceHooks *src)
{
	g_return_if_fail(dst != NULL);
	g_return_if_fail(src != NULL);

	vmsup_workspace_hooks_clear(dst);
	dst->vm_call = vmsup_vm_hooks_take_closure(src->vm_call);
	dst->vm_handles = vmsup_vm_hooks_take_closure(src->vm_handles);
}

void
vmsup_workspace_hooks_clear(VmsupWorkspaceHooks *hooks)
{
	g_return_if_fail(hooks != NULL);
	g_clear_pointer(&hooks->vm_call, g_closure_unref);
	g_clear_pointer(&hooks->vm_handles, g_closure_unref);
}

gboolean
vmsup_workspace_hooks_is_complete(const VmsupWorkspaceHooks *hooks)
{
	return hooks != NULL && hooks->vm_call != NULL && hooks->vm_handles != NULL;
}

void
vmsup_workspace_hooks_vm_call(const VmsupWorkspaceHooks *hooks,
			      const gchar *verb,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	GValue args[6] =
	    {G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT};

	g_return_if_fail(hooks != NULL);
	g_return_if_fail(verb != NULL);
	g_return_if_fail(caller != NULL);
	g_return_if_fail(params != NULL);

	/* nothing would ever call back through a dead closure: answer here */
	if (!vmsup_vm_hooks_closure_usable(hooks->vm_call)) {
		g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
		g_task_set_source_tag(task, vmsup_workspace_hooks_vm_call);
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("The VM service is shutting down; try again once vmsupd "
					  "is running"));
		return;
	}
	g_value_init(&args[0], G_TYPE_STRING);
	g_value_set_string(&args[0], verb);
	g_value_init(&args[1], G_TYPE_POINTER);
	g_value_set_pointer(&args[1], (gpointer)caller);
	g_value_init(&args[2], JSON_TYPE_OBJECT);
	g_value_set_boxed(&args[2], params);
	g_value_init(&args[3], G_TYPE_CANCELLABLE);
	g_value_set_object(&args[3], cancellable);
	g_value_init(&args[4], G_TYPE_POINTER);
	g_value_set_pointer(&args[4], callback);
	g_value_init(&args[5], G_TYPE_POINTER);
	g_value_set_pointer(&args[5], user_data);
	g_closure_invoke(hooks->vm_call, NULL, G_N_ELEMENTS(args), args, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(args); i++)
		g_value_unset(&args[i]);
}

JsonObject *
vmsup_workspace_hooks_vm_call_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(G_IS_TASK(res), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

VmsupVmHandles *
vmsup_workspace_hooks_vm_handles(const VmsupWorkspaceHooks *hooks, const gchar *name)
{
	g_return_val_if_fail(hooks != NULL, NULL);
	return vmsup_vm_hooks_invoke_vm_handles(hooks->vm_handles, name);
}
