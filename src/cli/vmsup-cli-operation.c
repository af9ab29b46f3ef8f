/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * waiting for a long operation of vmsupd, with its progress, and Ctrl-C
 * cancelling it.
 */

#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>

#include "vmsup-cli-output.h"
#include "vmsup-cli-progress.h"
#include "vmsup-cli.h"
#include "vmsup-json.h"

typedef struct {
	VmsupJsonrpcClient *client; /* unowned */
	guint n_interrupts;
} VmsupCliInterrupt;

static gboolean
vmsup_cli_sigint_cb(gpointer user_data)
{
	VmsupCliInterrupt *intr = user_data;
	intr->n_interrupts++;
	vmsup_jsonrpc_client_cancel(intr->client);
	return G_SOURCE_CONTINUE;
}

gint64
vmsup_cli_operation_id(JsonObject *result)
{
	JsonNode *node = json_object_get_member(result, "operation");
	if (node == NULL)
		return 0;
	if (JSON_NODE_HOLDS_OBJECT(node))
		return vmsup_json_object_get_int(json_node_get_object(node), "id", 0);
	if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_INT64)
		return json_node_get_int(node);
	return 0;
}

/* the error of a failed operation as a GError, whatever shape vmsupd gave it */
GError *
vmsup_cli_operation_error(JsonObject *op)
{
	JsonNode *node = json_object_get_member(op, "error");
	if (node != NULL && JSON_NODE_HOLDS_OBJECT(node)) {
		JsonObject *err = json_node_get_object(node);
		const gchar *message = vmsup_json_object_get_string(err, "message", "");
		const gchar *kind = vmsup_json_object_get_string(err, "kind", NULL);
		JsonNode *data = json_object_get_member(err, "data");
		gint code;
		if (kind == NULL && data != NULL && JSON_NODE_HOLDS_OBJECT(data))
			kind =
			    vmsup_json_object_get_string(json_node_get_object(data), "kind", NULL);
		code = vmsup_error_from_kind(kind);
		if (code < 0)
			code = (gint)vmsup_json_object_get_int(err, "code", VMSUP_ERROR_INTERNAL);
		if (code < VMSUP_ERROR_NOT_FOUND || code >= VMSUP_ERROR_LAST)
			code = VMSUP_ERROR_INTERNAL;
		return g_error_new_literal(VMSUP_ERROR, code, message);
	}
	return g_error_new_literal(
	    VMSUP_ERROR,
	    VMSUP_ERROR_INTERNAL,
	    vmsup_json_object_get_string(op, "error", _("the operation failed")));
}

gint
vmsup_cli_operation_outcome(VmsupCli *cli,
			    JsonObject *op,
			    JsonObject *answer,
			    const gchar *done,
			    const gchar *cancelled)
{
	const gchar *state = vmsup_json_object_get_string(op, "state", "");
	g_autoptr(GError) error = NULL;

	if (g_strcmp0(state, "done") == 0) {
		if (cli->json)
			vmsup_cli_print_json_object(answer);
		else
			vmsup_cli_confirm(cli, "%s", done);
		return VMSUP_CLI_EXIT_OK;
	}
	if (g_strcmp0(state, "cancelled") == 0)
		error = g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_CANCELLED, cancelled);
	else
		error = vmsup_cli_operation_error(op);
	return vmsup_cli_report_error(cli, error);
}

gint
vmsup_cli_wait_operation(VmsupCli *cli,
			 const gchar *name,
			 JsonObject *created,
			 gint64 id,
			 VmsupCliOpFinishFunc finish,
			 gboolean start)
{
	VmsupCliInterrupt intr = {cli->client, 0};
	/* on stderr, so that stdout is the outcome alone; -q and --json want none */
	g_autoptr(VmsupCliProgress) progress =
	    cli->json || cli->quiet
		? NULL
		: vmsup_cli_progress_new(stderr, vmsup_cli_progress_can_draw(STDERR_FILENO));
	g_autoptr(JsonObject) op = NULL;
	guint sigint_id = g_unix_signal_add(SIGINT, vmsup_cli_sigint_cb, &intr);
	gboolean cancel_sent = FALSE;
	gint rc = VMSUP_CLI_EXIT_OK;

	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) notification = NULL;
		g_autoptr(JsonObject) params = NULL;
		JsonNode *params_node;

		notification = vmsup_jsonrpc_client_next_notification(cli->client, 1000, &error);
		if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_INTERRUPTED)) {
			g_autoptr(JsonObject) cancel_params = json_object_new();
			g_autoptr(JsonObject) cancel_result = NULL;
			if (intr.n_interrupts > 1 || cancel_sent) {
				vmsup_cli_progress_finish(progress, NULL);
				g_printerr(_("vmsup: interrupted; operation %lld may still be "
					     "running\n"),
					   (long long)id);
				rc = VMSUP_CLI_EXIT_CANCELLED;
				break;
			}
			vmsup_cli_progress_finish(progress, NULL);
			g_printerr("vmsup: %s\n", _("Cancelling…"));
			json_object_set_int_member(cancel_params, "id", id);
			cancel_result = vmsup_cli_call(cli, "op.cancel", cancel_params, &rc);
			cancel_sent = TRUE;
			if (cancel_result == NULL)
				break;
			continue;
		}
		if (error != NULL) {
			vmsup_cli_progress_finish(progress, NULL);
			rc = vmsup_cli_report_error(cli, error);
			break;
		}
		if (notification != NULL) {
			params_node = json_object_get_member(notification, "params");
			if (g_strcmp0(vmsup_json_object_get_string(notification, "method", NULL),
				      "event.operation-changed") != 0 ||
			    params_node == NULL || !JSON_NODE_HOLDS_OBJECT(params_node) ||
			    vmsup_json_object_get_int(json_node_get_object(params_node), "id", 0) !=
				id)
				continue;
			params = json_object_ref(json_node_get_object(params_node));
		} else {
			g_autoptr(JsonObject) get_params = json_object_new();
			json_object_set_int_member(get_params, "id", id);
			params = vmsup_cli_call(cli, "op.get", get_params, &rc);
			if (params == NULL)
				break;
		}
		g_clear_pointer(&op, json_object_unref);
		op = g_steal_pointer(&params);
		vmsup_cli_progress_update(progress,
					  vmsup_json_object_get_string(op, "stage", NULL),
					  vmsup_json_object_get_double(op, "progress", 0));
		if (g_strcmp0(vmsup_json_object_get_string(op, "state", "running"), "running") !=
		    0) {
			vmsup_cli_progress_finish(progress, NULL);
			rc = finish(cli, name, op, created, start);
			break;
		}
	}
	g_source_remove(sigint_id);
	return rc;
}

gboolean
vmsup_cli_start_operation(VmsupCli *cli,
			  const gchar *method,
			  JsonObject *params,
			  gint64 *out_id,
			  gint *out_exit)
{
	g_autoptr(JsonObject) result = NULL;

	json_object_set_boolean_member(params, "wait", FALSE);
	if (!vmsup_cli_call_for_people(cli, method, params, &result, out_exit))
		return FALSE;
	*out_id = vmsup_cli_operation_id(result);
	/* the id is the result: -q prints it alone, for $(vmsup -q create --no-wait) */
	if (cli->quiet)
		vmsup_cli_print("%lld\n", (long long)*out_id);
	return TRUE;
}

gint
vmsup_cli_follow_operation(VmsupCli *cli,
			   const gchar *method,
			   JsonObject *params,
			   const gchar *name,
			   VmsupCliOpFinishFunc finish,
			   gboolean flag)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonNode) subscribed = NULL;
	g_autoptr(GError) error = NULL;
	gint64 id;

	if (!vmsup_cli_connect(cli, &rc))
		return rc;
	/* subscribe first so that no progress event can slip by; polling covers an old vmsupd */
	subscribed = vmsup_jsonrpc_client_call(cli->client, "events.subscribe", NULL, &error);
	if (subscribed == NULL)
		g_debug("events.subscribe: %s; polling instead", error->message);
	/* the CLI waits, not the daemon: so Ctrl-C can still name the operation to cancel */
	json_object_set_boolean_member(params, "wait", FALSE);
	result = vmsup_cli_call(cli, method, params, &rc);
	if (result == NULL)
		return rc;
	id = vmsup_cli_operation_id(result);
	if (id <= 0) {
		g_printerr(_("vmsup: vmsupd did not say which operation %s started\n"), method);
		return VMSUP_CLI_EXIT_FAILURE;
	}
	return vmsup_cli_wait_operation(cli, name, result, id, finish, flag);
}
