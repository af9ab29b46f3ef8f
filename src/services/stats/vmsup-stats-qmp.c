/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <glib/gi18n.h>
#include <signal.h>

#include "vmsup-error.h"
#include "vmsup-stats-qmp.h"

gboolean
vmsup_stats_qmp_process_alive(VmsupVmHandles *handles)
{
	GPid pid = vmsup_qemu_process_get_pid(handles->process);
	return pid > 0 && vmsup_qemu_process_is_running(handles->process) && kill(pid, 0) == 0;
}

void
vmsup_stats_qmp_execute_async(VmsupVmHandles *handles,
			      const gchar *command,
			      JsonObject *arguments,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	VmsupQmpClient *qmp = vmsup_qemu_process_get_qmp(handles->process);

	if (qmp == NULL || !vmsup_qmp_client_is_ready(qmp)) {
		g_task_report_new_error(NULL,
					callback,
					user_data,
					vmsup_stats_qmp_execute_async,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("QMP of VM '%s' is not connected"),
					handles->name);
		return;
	}
	vmsup_qmp_client_execute_with_timeout_async(qmp,
						    command,
						    arguments,
						    VMSUP_STATS_QMP_TIMEOUT_MS,
						    cancellable,
						    callback,
						    user_data);
}

JsonNode *
vmsup_stats_qmp_execute_finish(GAsyncResult *res, GError **error)
{
	VmsupQmpClient *qmp = g_task_get_source_object(G_TASK(res));
	g_autoptr(GError) local = NULL;
	JsonNode *node;

	if (qmp == NULL) /* reported before anything was sent */
		return g_task_propagate_pointer(G_TASK(res), error);
	node = vmsup_qmp_client_execute_finish(qmp, res, &local);
	if (node != NULL)
		return node;
	if (g_error_matches(local, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_TIMEOUT,
			    /* TRANSLATORS: a VM name, then an error message */
			    _("QEMU of VM '%s' is not answering: %s"),
			    vmsup_qmp_client_get_label(qmp),
			    local->message);
		return NULL;
	}
	g_propagate_error(error, g_steal_pointer(&local));
	return NULL;
}
