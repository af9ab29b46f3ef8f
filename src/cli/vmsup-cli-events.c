/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup events: the daemon's events as they happen, and those of its journal since a time */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli-output.h"
#include "vmsup-cli.h"
#include "vmsup-json.h"
#include "vmsup-since.h"

/* when the event happened, as vmsupd stamped it; a day other than today shows its date */
static gchar *
vmsup_cli_events_format_time(JsonObject *params)
{
	const gchar *stamp = vmsup_json_object_get_string(params, "time", NULL);
	g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
	g_autoptr(GDateTime) when = stamp != NULL ? g_date_time_new_from_iso8601(stamp, utc) : NULL;
	g_autoptr(GDateTime) local = NULL;
	g_autoptr(GDateTime) now = g_date_time_new_now_local();

	local = when != NULL ? g_date_time_to_local(when) : g_date_time_ref(now);
	if (g_date_time_get_year(local) == g_date_time_get_year(now) &&
	    g_date_time_get_day_of_year(local) == g_date_time_get_day_of_year(now))
		return g_date_time_format(local, "%H:%M:%S");
	return g_date_time_format(local, "%Y-%m-%d %H:%M:%S");
}

static void
vmsup_cli_events_print(VmsupCli *cli, JsonObject *event)
{
	const gchar *method;
	JsonNode *params_node;
	JsonObject *params = NULL;
	g_autofree gchar *time = NULL;
	g_autofree gchar *detail = NULL;

	if (cli->json) {
		g_autofree gchar *text = vmsup_json_object_to_string(event, FALSE);
		vmsup_cli_print("%s\n", text);
		return;
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
		    (gint)(vmsup_json_object_get_double(params, "progress", 0) * 100 + 0.5));
	} else {
		JsonNode *vm_node = params != NULL ? json_object_get_member(params, "vm") : NULL;
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
	time = vmsup_cli_events_format_time(params);
	vmsup_cli_print("%s  %-18s %s\n", time, method, detail);
}

/* the event's number; 0 for one without (a vmsupd older than the journal) */
static gint64
vmsup_cli_events_seq(JsonObject *event)
{
	JsonNode *params = json_object_get_member(event, "params");

	if (params == NULL || !JSON_NODE_HOLDS_OBJECT(params))
		return 0;
	return vmsup_json_object_get_int(json_node_get_object(params), "seq", 0);
}

gint
vmsup_cli_events(VmsupCli *cli, gint argc, gchar **argv)
{
	g_autofree gchar *since = NULL;
	gboolean follow = FALSE;
	const GOptionEntry entries[] = {
	    {"since",
	     0,
	     0,
	     G_OPTION_ARG_STRING,
	     &since,
	     N_("Print the kept events since a time (30s, 10m, 2h, 1d or an ISO 8601 time) "
		"and exit"),
	     N_("TIME")},
	    {"follow",
	     'f',
	     0,
	     G_OPTION_ARG_NONE,
	     &follow,
	     N_("With --since, go on printing events as they happen"),
	     NULL},
	    G_OPTION_ENTRY_NULL,
	};
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonObject) result = NULL;
	gint64 last_seq = 0;

	if (!vmsup_cli_parse(cli,
			     &argc,
			     &argv,
			     NULL,
			     N_("Print VM and operation events as they happen, or those kept since "
				"a time"),
			     entries,
			     0,
			     NULL,
			     &rc))
		return rc;
	if (since != NULL) {
		g_autoptr(GError) error = NULL;
		gint64 at = 0;
		if (!vmsup_since_parse(since, g_get_real_time(), &at, &error))
			return vmsup_cli_usage_error(cli, error->message);
		json_object_set_string_member(params, "since", since);
	}
	/* without --since there is nothing to replay: only live events, as ever */
	if (since == NULL)
		follow = TRUE;
	else
		json_object_set_boolean_member(params, "follow", follow);
	result = vmsup_cli_call(cli, "events.subscribe", since != NULL ? params : NULL, &rc);
	if (result == NULL)
		return rc;
	/* the replay came ahead of the answer; what follows it live is numbered above */
	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) event =
		    vmsup_jsonrpc_client_next_notification(cli->client, follow ? -1 : 0, &error);
		gint64 seq;

		if (event == NULL && !follow)
			return rc;
		if (event == NULL)
			return vmsup_cli_report_error(cli, error);
		seq = vmsup_cli_events_seq(event);
		if (seq != 0 && seq <= last_seq)
			continue;
		last_seq = MAX(last_seq, seq);
		vmsup_cli_events_print(cli, event);
	}
}
