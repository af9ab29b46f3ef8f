/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService's side of the workspace hooks: vm_call dispatches a verb name to
 * the public _async/_finish pair (or the synchronous function of a verb that
 * answers at once), so WorkspaceService needs no VMService pointer and this
 * file needs none of VMService's internals.
 */

#include "config.h"

#include "vmsup-error.h"
#include "vmsup-vm-service-workspace-hooks.h"

typedef void (*VmsupVmServiceAsyncFunc)(VmsupVmService *self,
					const VmsupCaller *caller,
					JsonObject *params,
					GCancellable *cancellable,
					GAsyncReadyCallback callback,
					gpointer user_data);

typedef JsonObject *(*VmsupVmServiceSyncFunc)(VmsupVmService *self,
					      JsonObject *params,
					      GError **error);

/* either async and finish, or sync */
typedef struct {
	const gchar *verb;
	VmsupVmServiceAsyncFunc async;
	VmsupVmServiceFinishFunc finish;
	VmsupVmServiceSyncFunc sync;
} VmsupVmServiceVerb;

/* what a workspace needs of a VM's lifecycle; list and op.* are not reachable */
static const VmsupVmServiceVerb vmsup_vm_service_workspace_verbs[] = {
    {"create", vmsup_vm_service_create_async, vmsup_vm_service_create_finish, NULL},
    {"start", vmsup_vm_service_start_async, vmsup_vm_service_start_finish, NULL},
    {"stop", vmsup_vm_service_stop_async, vmsup_vm_service_stop_finish, NULL},
    {"delete", vmsup_vm_service_delete_async, vmsup_vm_service_delete_finish, NULL},
    {"set", vmsup_vm_service_set_async, vmsup_vm_service_set_finish, NULL},
    {"get", NULL, NULL, vmsup_vm_service_get},
};

static const VmsupVmServiceVerb *
vmsup_vm_service_workspace_find_verb(const gchar *verb)
{
	for (guint i = 0; i < G_N_ELEMENTS(vmsup_vm_service_workspace_verbs); i++) {
		if (g_strcmp0(vmsup_vm_service_workspace_verbs[i].verb, verb) == 0)
			return &vmsup_vm_service_workspace_verbs[i];
	}
	return NULL;
}

static void
vmsup_vm_service_vm_call_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	const VmsupVmServiceVerb *entry = g_task_get_task_data(task);
	GError *error = NULL;
	JsonObject *result = entry->finish(VMSUP_VM_SERVICE(source), res, &error);

	if (result == NULL) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

/* the vm_call hook: arguments first, the service last */
static void
vmsup_vm_service_vm_call_hook(const gchar *verb,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data,
			      VmsupVmService *self)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	const VmsupVmServiceVerb *entry = vmsup_vm_service_workspace_find_verb(verb);
	GError *error = NULL;
	JsonObject *result;

	g_task_set_source_tag(task, vmsup_vm_service_vm_call_hook);
	/* the verb finishes what it started, even for a caller that gave up */
	g_task_set_check_cancellable(task, FALSE);
	if (entry == NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_INTERNAL,
					"VM verb '%s' is not available to workspaces",
					verb);
		return;
	}
	if (entry->sync != NULL) {
		result = entry->sync(self, params, &error);
		if (result == NULL) {
			g_task_return_error(task, error);
			return;
		}
		g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
		return;
	}
	g_task_set_task_data(task, (gpointer)entry, NULL);
	entry->async(self,
		     caller,
		     params,
		     cancellable,
		     vmsup_vm_service_vm_call_cb,
		     g_steal_pointer(&task));
}

static void
vmsup_vm_service_workspace_hooks_free(gpointer data)
{
	VmsupWorkspaceHooks *hooks = data;
	vmsup_workspace_hooks_clear(hooks);
	g_free(hooks);
}

const VmsupWorkspaceHooks *
vmsup_vm_service_get_workspace_hooks(VmsupVmService *self)
{
	static GQuark quark = 0;
	VmsupWorkspaceHooks *hooks;
	GClosure *closure;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);

	if (quark == 0)
		quark = g_quark_from_static_string("vmsup-workspace-hooks");
	hooks = g_object_get_qdata(G_OBJECT(self), quark);
	if (hooks != NULL)
		return hooks;

	hooks = g_new0(VmsupWorkspaceHooks, 1);
	closure = g_cclosure_new_object(G_CALLBACK(vmsup_vm_service_vm_call_hook), G_OBJECT(self));
	g_closure_set_marshal(closure, g_cclosure_marshal_generic);
	hooks->vm_call = g_closure_ref(closure);
	g_closure_sink(closure);
	/* the same closure StatsService gets: one handle cache, one way to read it */
	hooks->vm_handles = g_closure_ref(vmsup_vm_service_get_hooks(self)->vm_handles);
	/* lives as long as @self; the closures go invalid when @self is finalized */
	g_object_set_qdata_full(G_OBJECT(self),
				quark,
				hooks,
				vmsup_vm_service_workspace_hooks_free);
	return hooks;
}
