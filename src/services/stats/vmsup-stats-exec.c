/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VmsupStatsService, vm.exec: one command in the guest through the agent. */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-stats-service-private.h"

/* --- vm.exec ---------------------------------------------------------------- */

typedef struct {
	gchar *name;
	gint64 timeout_s;
} VmsupStatsExec;

static void
vmsup_stats_exec_free(VmsupStatsExec *exec)
{
	g_free(exec->name);
	g_free(exec);
}

static void
vmsup_stats_exec_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsExec *exec = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	JsonObject *result = vmsup_qga_client_exec_finish(VMSUP_QGA_CLIENT(source), res, &error);

	if (result == NULL && vmsup_stats_service_error_is_timeout(error)) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_TIMEOUT,
					/* TRANSLATORS: seconds, a VM name, an error message */
					_("The command did not finish within %lld s in VM '%s' "
					  "(%s); raise timeout_s or run it in the background"),
					(long long)exec->timeout_s,
					exec->name,
					error->message);
		return;
	}
	if (result == NULL) {
		g_task_return_error(task, vmsup_stats_service_agent_error(exec->name, error));
		return;
	}
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

void
vmsup_stats_service_exec_async(VmsupStatsService *self,
			       const VmsupCaller *caller,
			       JsonObject *params,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupStatsVm) vm = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	const gchar *name = NULL;
	const gchar *stdin_data;
	JsonArray *array = NULL;
	VmsupStatsExec *exec;
	gint64 timeout_s;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_stats_service_exec_async);
	/* the agent is checked after the arguments, so that a bad request is named as such */
	if (!vmsup_stats_service_resolve(self, task, params, FALSE, &name, &vm, &handles, NULL))
		return;
	exec = g_new0(VmsupStatsExec, 1);
	exec->name = g_strdup(name);
	g_task_set_task_data(task, exec, (GDestroyNotify)vmsup_stats_exec_free);

	if (json_object_has_member(params, "argv") &&
	    JSON_NODE_HOLDS_ARRAY(json_object_get_member(params, "argv")))
		array = json_object_get_array_member(params, "argv");
	for (guint i = 0; array != NULL && i < json_array_get_length(array); i++) {
		JsonNode *element = json_array_get_element(array, i);
		if (json_node_get_value_type(element) != G_TYPE_STRING) {
			array = NULL;
			break;
		}
		g_ptr_array_add(argv, (gpointer)json_node_get_string(element));
	}
	if (array == NULL || argv->len == 0 || ((const gchar *)argv->pdata[0])[0] == '\0') {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("Parameter 'argv' must be a list of strings starting with "
		      "the program to run, e.g. [\"/bin/uname\", \"-a\"]"));
		return;
	}
	g_ptr_array_add(argv, NULL);
	timeout_s = vmsup_json_object_get_int(params, "timeout_s", 30);
	if (timeout_s < 1 || timeout_s > 24 * 3600) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_INVALID_ARGUMENT,
					_("Parameter 'timeout_s' must be between 1 and 86400 "
					  "seconds"));
		return;
	}
	exec->timeout_s = timeout_s;
	stdin_data = vmsup_json_object_get_string(params, "stdin", NULL);
	if (handles->qga == NULL) {
		g_task_return_error(task, vmsup_stats_service_no_agent_error(name));
		return;
	}
	vmsup_stats_service_vm_mark_active(vm, "vm.exec");
	vmsup_qga_client_exec_async(handles->qga,
				    (const gchar *const *)argv->pdata,
				    stdin_data,
				    (guint)timeout_s * 1000,
				    cancellable,
				    vmsup_stats_exec_cb,
				    g_steal_pointer(&task));
}

JsonObject *
vmsup_stats_service_exec_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}
