/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-health-check.h"
#include "vmsup-stats-errors.h"
#include "vmsup-stats-json.h"
#include "vmsup-stats-qmp.h"

typedef struct {
	gchar *name;
	guint pending;
	gboolean process;
	GPid pid;
	gboolean qmp;
	gchar *qmp_detail;
	gint64 qmp_started;
	gdouble qmp_rtt_ms;
	gboolean agent;
	gchar *agent_detail;
	gint64 agent_started;
	gdouble agent_rtt_ms;
} VmsupStatsHealth;

static void
vmsup_stats_health_free(VmsupStatsHealth *health)
{
	g_free(health->name);
	g_free(health->qmp_detail);
	g_free(health->agent_detail);
	g_free(health);
}

static void
vmsup_stats_health_complete(GTask *task)
{
	VmsupStatsHealth *health = g_task_get_task_data(task);
	JsonObject *result = json_object_new();
	g_autoptr(GString) detail = g_string_new(NULL);
	const gchar *status;

	if (!health->process)
		status = "down";
	else if (!health->qmp || !health->agent)
		status = "degraded";
	else
		status = "ok";
	json_object_set_string_member(result, "status", status);
	json_object_set_boolean_member(result, "process", health->process);
	json_object_set_boolean_member(result, "qmp", health->qmp);
	json_object_set_boolean_member(result, "agent", health->agent);
	if (health->agent)
		json_object_set_double_member(result,
					      "agent_rtt_ms",
					      vmsup_stats_json_round(health->agent_rtt_ms, 2));

	if (!health->process) {
		g_string_append_printf(detail,
				       _("VM '%s' is not running; start it with 'vmsup start %s'"),
				       health->name,
				       health->name);
	} else {
		g_string_append_printf(detail, _("process %d alive"), (gint)health->pid);
		g_string_append(detail, "; ");
		if (health->qmp)
			g_string_append_printf(detail,
					       _("QMP answered in %.1f ms"),
					       health->qmp_rtt_ms);
		else
			g_string_append_printf(detail, _("QMP failed: %s"), health->qmp_detail);
		g_string_append(detail, "; ");
		if (health->agent)
			g_string_append_printf(detail,
					       _("guest agent answered in %.1f ms"),
					       health->agent_rtt_ms);
		else
			g_string_append_printf(detail,
					       _("guest agent failed: %s"),
					       health->agent_detail);
	}
	json_object_set_string_member(result, "detail", detail->str);
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

static void
vmsup_stats_health_unref_pending(GTask *task)
{
	VmsupStatsHealth *health = g_task_get_task_data(task);
	if (--health->pending == 0)
		vmsup_stats_health_complete(task);
}

static void
vmsup_stats_health_qmp_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsHealth *health = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_qmp_execute_finish(res, &error);

	health->qmp_rtt_ms = (gdouble)(g_get_monotonic_time() - health->qmp_started) / 1000.0;
	if (node != NULL) {
		health->qmp = TRUE;
	} else {
		health->qmp_detail = g_strdup(error->message);
	}
	vmsup_stats_health_unref_pending(task);
}

static void
vmsup_stats_health_agent_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsHealth *health = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node =
	    vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);

	health->agent_rtt_ms = (gdouble)(g_get_monotonic_time() - health->agent_started) / 1000.0;
	if (node != NULL)
		health->agent = TRUE;
	else
		health->agent_detail = g_strdup(error->message);
	vmsup_stats_health_unref_pending(task);
}

void
vmsup_health_check_async(const gchar *name,
			 VmsupVmHandles *handles,
			 GCancellable *cancellable,
			 GAsyncReadyCallback callback,
			 gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	VmsupStatsHealth *health;

	g_return_if_fail(name != NULL);

	task = g_task_new(NULL, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_health_check_async);
	health = g_new0(VmsupStatsHealth, 1);
	health->name = g_strdup(name);
	g_task_set_task_data(task, health, (GDestroyNotify)vmsup_stats_health_free);
	/* one for this function */
	health->pending = 1;
	if (handles == NULL) {
		vmsup_stats_health_unref_pending(task);
		return;
	}

	health->process = TRUE;
	health->pid = vmsup_qemu_process_get_pid(handles->process);
	health->pending++;
	health->qmp_started = g_get_monotonic_time();
	vmsup_stats_qmp_execute_async(handles,
				      "query-status",
				      NULL,
				      cancellable,
				      vmsup_stats_health_qmp_cb,
				      g_object_ref(task));
	if (handles->qga != NULL) {
		health->pending++;
		health->agent_started = g_get_monotonic_time();
		vmsup_qga_client_execute_async(handles->qga,
					       "guest-ping",
					       NULL,
					       VMSUP_STATS_AGENT_TIMEOUT_MS,
					       cancellable,
					       vmsup_stats_health_agent_cb,
					       g_object_ref(task));
	} else {
		health->agent_detail = g_strdup(_("the VM has no guest agent channel"));
	}
	vmsup_stats_health_unref_pending(task);
}

JsonObject *
vmsup_health_check_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* --- vm.ping ---------------------------------------------------------------- */

typedef struct {
	gchar *name;
	gint64 started;
} VmsupStatsPing;

static void
vmsup_stats_ping_free(VmsupStatsPing *ping)
{
	g_free(ping->name);
	g_free(ping);
}

static void
vmsup_stats_ping_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsPing *ping = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node =
	    vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);
	gdouble rtt_ms = (gdouble)(g_get_monotonic_time() - ping->started) / 1000.0;
	JsonObject *result;

	if (node == NULL) {
		g_task_return_error(task, vmsup_stats_error_agent(ping->name, error));
		return;
	}
	result = json_object_new();
	json_object_set_double_member(result, "rtt_ms", vmsup_stats_json_round(rtt_ms, 2));
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

void
vmsup_health_check_ping_async(const gchar *name,
			      VmsupVmHandles *handles,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	VmsupStatsPing *ping;

	g_return_if_fail(name != NULL);
	g_return_if_fail(handles != NULL && handles->qga != NULL);

	task = g_task_new(NULL, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_health_check_ping_async);
	ping = g_new0(VmsupStatsPing, 1);
	ping->name = g_strdup(name);
	ping->started = g_get_monotonic_time();
	g_task_set_task_data(task, ping, (GDestroyNotify)vmsup_stats_ping_free);
	vmsup_qga_client_execute_async(handles->qga,
				       "guest-ping",
				       NULL,
				       VMSUP_STATS_AGENT_TIMEOUT_MS,
				       cancellable,
				       vmsup_stats_ping_cb,
				       g_steal_pointer(&task));
}

JsonObject *
vmsup_health_check_ping_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}
