/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup snapshot create|list|restore|delete */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli-output.h"
#include "vmsup-cli.h"
#include "vmsup-json.h"

/* the end of a waited create or restore: --json prints the request's answer, people a line */
static gint
vmsup_cli_snapshot_finish(VmsupCli *cli,
			  const gchar *name,
			  JsonObject *op,
			  JsonObject *answer,
			  gboolean restore)
{
	const gchar *state = vmsup_json_object_get_string(op, "state", "");
	const gchar *snapshot = vmsup_json_object_get_string(answer, "snapshot", "");
	g_autoptr(GError) error = NULL;

	if (g_strcmp0(state, "done") == 0) {
		if (cli->json)
			vmsup_cli_print_json_object(answer);
		else if (restore)
			vmsup_cli_confirm(cli,
					  _("VM '%s' restored to snapshot '%s'\n"),
					  name,
					  snapshot);
		else
			vmsup_cli_confirm(cli,
					  _("Snapshot '%s' of VM '%s' created; go back to it with "
					    "'vmsup snapshot restore %s %s'\n"),
					  snapshot,
					  name,
					  name,
					  snapshot);
		return VMSUP_CLI_EXIT_OK;
	}
	if (g_strcmp0(state, "cancelled") == 0)
		error =
		    g_error_new(VMSUP_ERROR,
				VMSUP_ERROR_CANCELLED,
				restore ? _("Restoring snapshot '%s' of VM '%s' was cancelled")
					: _("Snapshot '%s' of VM '%s' was cancelled; nothing of it "
					    "was kept"),
				snapshot,
				name);
	else
		error = vmsup_cli_operation_error(op);
	return vmsup_cli_report_error(cli, error);
}

/* NAME SNAPSHOT as {"name", "snapshot"}, or NULL with the usage error */
static JsonObject *
vmsup_cli_snapshot_parse(VmsupCli *cli,
			 gint *argc,
			 gchar ***argv,
			 const gchar *summary,
			 const GOptionEntry *entries,
			 gint *out_exit)
{
	JsonObject *params;

	if (!vmsup_cli_parse(cli,
			     argc,
			     argv,
			     N_("NAME SNAPSHOT"),
			     summary,
			     entries,
			     2,
			     _("the snapshot name after the VM name"),
			     out_exit))
		return NULL;
	params = vmsup_cli_params_name((*argv)[1]);
	json_object_set_string_member(params, "snapshot", (*argv)[2]);
	return params;
}

/*
 * create and restore: an operation the CLI waits for with progress (Ctrl-C
 * cancels), or with --no-wait its id
 */
static gint
vmsup_cli_snapshot_operation(VmsupCli *cli,
			     const gchar *method,
			     JsonObject *params,
			     gboolean no_wait,
			     gboolean restore)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	const gchar *name = vmsup_json_object_get_string(params, "name", "");
	const gchar *snapshot = vmsup_json_object_get_string(params, "snapshot", "");
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonNode) subscribed = NULL;
	g_autoptr(GError) error = NULL;
	gint64 id;

	if (!vmsup_cli_connect(cli, &rc))
		return rc;
	/* subscribed first so that no progress event slips by; polling covers an old vmsupd */
	if (!no_wait) {
		subscribed =
		    vmsup_jsonrpc_client_call(cli->client, "events.subscribe", NULL, &error);
		if (subscribed == NULL)
			g_debug("events.subscribe: %s; polling instead", error->message);
	}
	/* the CLI waits, not the daemon: so Ctrl-C can still name the operation to cancel */
	json_object_set_boolean_member(params, "wait", FALSE);
	if (no_wait) {
		if (!vmsup_cli_call_for_people(cli, method, params, &result, &rc))
			return rc;
		id = vmsup_cli_operation_id(result);
		/* the id is the result: -q prints it alone, for $(vmsup -q snapshot create …) */
		if (cli->quiet)
			vmsup_cli_print("%lld\n", (long long)id);
		else
			vmsup_cli_print(_("Snapshot '%s' of VM '%s' is operation %lld; follow it "
					  "with 'vmsup ops get %lld'\n"),
					snapshot,
					name,
					(long long)id,
					(long long)id);
		return rc;
	}
	result = vmsup_cli_call(cli, method, params, &rc);
	if (result == NULL)
		return rc;
	id = vmsup_cli_operation_id(result);
	if (id <= 0) {
		g_printerr(_("vmsup: vmsupd did not say which operation handles snapshot '%s'\n"),
			   snapshot);
		return VMSUP_CLI_EXIT_FAILURE;
	}
	return vmsup_cli_wait_operation(cli, name, result, id, vmsup_cli_snapshot_finish, restore);
}

static gint
vmsup_cli_snapshot_create(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gboolean opt_memory = FALSE;
	gboolean opt_disk_only = FALSE;
	gboolean opt_no_wait = FALSE;
	g_autoptr(JsonObject) params = NULL;
	const GOptionEntry entries[] = {
	    {"memory",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_memory,
	     N_("Save the running state too (the default for a running VM)"),
	     NULL},
	    {"disk-only",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_disk_only,
	     N_("Save only the disk, even of a running VM"),
	     NULL},
	    {"no-wait",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_no_wait,
	     N_("Print the operation's id instead of waiting for it"),
	     NULL},
	    {NULL},
	};

	params = vmsup_cli_snapshot_parse(cli,
					  &argc,
					  &argv,
					  N_("Save a VM's disk, and the memory of a running one, "
					     "under a name"),
					  entries,
					  &rc);
	if (params == NULL)
		return rc;
	if (opt_memory && opt_disk_only)
		return vmsup_cli_usage_error(cli, _("--memory and --disk-only exclude each other"));
	if (opt_memory || opt_disk_only)
		json_object_set_boolean_member(params, "memory", opt_memory);
	return vmsup_cli_snapshot_operation(cli, "snapshot.create", params, opt_no_wait, FALSE);
}

static gint
vmsup_cli_snapshot_restore(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gboolean opt_no_wait = FALSE;
	g_autoptr(JsonObject) params = NULL;
	const GOptionEntry entries[] = {
	    {"no-wait",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_no_wait,
	     N_("Print the operation's id instead of waiting for it"),
	     NULL},
	    {NULL},
	};

	params =
	    vmsup_cli_snapshot_parse(cli,
				     &argc,
				     &argv,
				     N_("Put a VM back to a snapshot: its disk, and with memory "
					"its running state"),
				     entries,
				     &rc);
	if (params == NULL)
		return rc;
	return vmsup_cli_snapshot_operation(cli, "snapshot.restore", params, opt_no_wait, TRUE);
}

static gint
vmsup_cli_snapshot_delete(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;

	params =
	    vmsup_cli_snapshot_parse(cli, &argc, &argv, N_("Delete a snapshot of a VM"), NULL, &rc);
	if (params != NULL &&
	    vmsup_cli_call_for_people(cli, "snapshot.delete", params, &result, &rc))
		vmsup_cli_confirm(cli, _("Snapshot '%s' of VM '%s' deleted\n"), argv[2], argv[1]);
	return rc;
}

static const VmsupCliColumn vmsup_cli_snapshot_columns[] = {
    {"name", N_("NAME")},
    {"created", N_("CREATED")},
    {"memory", N_("MEMORY")},
    {"disk", N_("DISK")},
    {"size", N_("SIZE")},
    {"vm-state", N_("VM STATE")},
    {NULL, NULL},
};

static gint
vmsup_cli_snapshot_list(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(VmsupCliTable) table = NULL;
	g_autoptr(GPtrArray) list = NULL;

	cli->table_columns = vmsup_cli_snapshot_columns;
	params = vmsup_cli_parse_name(cli,
				      &argc,
				      &argv,
				      _("the VM name"),
				      N_("List a VM's snapshots"),
				      NULL,
				      &rc);
	if (params == NULL)
		return rc;
	table = vmsup_cli_new_table(cli, vmsup_cli_snapshot_columns, NULL, &rc);
	if (table == NULL || !vmsup_cli_call_for_people(cli, "snapshot.list", params, &result, &rc))
		return rc;
	list = vmsup_cli_get_objects(result, "snapshots");
	for (guint i = 0; list != NULL && i < list->len; i++) {
		JsonObject *entry = g_ptr_array_index(list, i);
		g_autofree gchar *memory = vmsup_cli_member_text(entry, "memory");
		g_autofree gchar *disk = vmsup_cli_member_text(entry, "disk");
		/* the saved memory's size: a disk-only snapshot shares its disk's blocks */
		g_autofree gchar *size =
		    vmsup_json_object_get_bool(entry, "memory", FALSE)
			? vmsup_cli_format_bytes(vmsup_json_object_get_int(entry, "size", 0))
			: g_strdup("-");
		const gchar *cells[6];

		cells[0] = vmsup_cli_get_str(entry, "name");
		cells[1] = vmsup_cli_get_str(entry, "created");
		cells[2] = memory;
		cells[3] = disk;
		cells[4] = size;
		cells[5] = vmsup_cli_get_str(entry, "vm_state");
		vmsup_cli_table_add_row(table, cells);
	}
	vmsup_cli_print_table(table);
	return rc;
}

static const VmsupCliVerb vmsup_cli_snapshot_verbs[] = {
    {"create", N_("Save a VM's disk, and its memory, under a name"), vmsup_cli_snapshot_create},
    {"list", N_("List a VM's snapshots"), vmsup_cli_snapshot_list},
    {"restore", N_("Put a VM back to a snapshot"), vmsup_cli_snapshot_restore},
    {"delete", N_("Delete a snapshot"), vmsup_cli_snapshot_delete},
    {NULL, NULL, NULL},
};

gint
vmsup_cli_snapshot(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_run_verb(cli, vmsup_cli_snapshot_verbs, "snapshot", argc - 1, argv + 1);
}
