/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup events: the daemon's events as they happen */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli-output.h"
#include "vmsup-cli.h"
#include "vmsup-json.h"

gint
vmsup_cli_events(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) result = NULL;

	if (!vmsup_cli_parse(cli,
			     &argc,
			     &argv,
			     NULL,
			     N_("Print VM and operation events as they happen"),
			     NULL,
			     0,
			     NULL,
			     &rc))
		return rc;
	result = vmsup_cli_call(cli, "events.subscribe", NULL, &rc);
	if (result == NULL)
		return rc;
	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) event =
		    vmsup_jsonrpc_client_next_notification(cli->client, -1, &error);
		const gchar *method;
		JsonNode *params_node;
		JsonObject *params = NULL;
		g_autoptr(GDateTime) now = NULL;
		g_autofree gchar *time = NULL;
		g_autofree gchar *detail = NULL;

		if (event == NULL)
			return vmsup_cli_report_error(cli, error);
		if (cli->json) {
			g_autofree gchar *text = vmsup_json_object_to_string(event, FALSE);
			vmsup_cli_print("%s\n", text);
			continue;
		}
		method = vmsup_json_object_get_string(event, "method", "");
		params_node = json_object_get_member(event, "params");
		if (params_node != NULL && JSON_NODE_HOLDS_OBJECT(params_node))
			params = json_node_get_object(params_node);
		if (g_str_has_prefix(method, "event."))
			method += strlen("event.");
		if (g_strcmp0(method, "operation-changed") == 0) {
			detail = g_strdup_printf(
			    "%" G_GINT64_FORMAT " %s %s %s %d%%",
			    vmsup_json_object_get_int(params, "id", 0),
			    vmsup_json_object_get_string(params, "vm", "-"),
			    vmsup_json_object_get_string(params, "state", "-"),
			    vmsup_json_object_get_string(params, "stage", "-"),
			    (gint)(vmsup_json_object_get_double(params, "progress", 0) * 100 +
				   0.5));
		} else {
			JsonNode *vm_node =
			    params != NULL ? json_object_get_member(params, "vm") : NULL;
			const gchar *state = NULL;
			if (vm_node != NULL && JSON_NODE_HOLDS_OBJECT(vm_node))
				state = vmsup_json_object_get_string(json_node_get_object(vm_node),
								     "state",
								     NULL);
			detail = g_strdup_printf("%s%s%s",
						 vmsup_json_object_get_string(params, "name", "-"),
						 state != NULL ? " " : "",
						 state != NULL ? state : "");
		}
		now = g_date_time_new_now_local();
		time = g_date_time_format(now, "%H:%M:%S");
		vmsup_cli_print("%s  %-18s %s\n", time, method, detail);
	}
}
