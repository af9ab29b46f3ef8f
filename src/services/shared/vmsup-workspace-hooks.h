/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-caller.h"
#include "vmsup-vm-hooks.h"

G_BEGIN_DECLS

/*
 * What WorkspaceService may ask of VMService, nothing more. Built by VMService
 * (vmsup_vm_service_get_workspace_hooks()) with g_cclosure_new_object() and the
 * generic marshaller, like VmsupVmHooks: once VMService is gone the closures
 * are invalid and the wrappers below answer "unavailable" instead of calling
 * into freed memory.
 */
typedef struct {
	/*
	 * (const gchar *verb, const VmsupCaller *caller, JsonObject *params, GCancellable *,
	 * GAsyncReadyCallback, gpointer): one of VMService's verbs "create", "start",
	 * "stop", "delete", "set", "get", with the same caller, params and result
	 * objects; finished by
	 * vmsup_workspace_hooks_vm_call_finish()
	 */
	GClosure *vm_call;
	/* (const gchar *name) -> VmsupVmHandles * (full, NULL if not running) */
	GClosure *vm_handles;
} VmsupWorkspaceHooks;

/* takes a ref (and sinks) each closure of @src into @dst */
void
vmsup_workspace_hooks_copy(VmsupWorkspaceHooks *dst, const VmsupWorkspaceHooks *src);
void
vmsup_workspace_hooks_clear(VmsupWorkspaceHooks *hooks);
gboolean
vmsup_workspace_hooks_is_complete(const VmsupWorkspaceHooks *hooks);

/* @caller and @params borrowed; the callback gets a GAsyncResult without source object */
void
vmsup_workspace_hooks_vm_call(const VmsupWorkspaceHooks *hooks,
			      const gchar *verb,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
/* the verb's result object (full) or NULL with a VMSUP_ERROR */
JsonObject *
vmsup_workspace_hooks_vm_call_finish(GAsyncResult *res, GError **error);

VmsupVmHandles *
vmsup_workspace_hooks_vm_handles(const VmsupWorkspaceHooks *hooks, const gchar *name);

G_END_DECLS
