/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup ops list|get|cancel */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli.h"
#include "vmsup-json.h"

static const VmsupCliColumn vmsup_cli_op_columns[] = {
    {"id", N_("ID")},
    {"kind", N_("KIND")},
    {"vm", N_("VM")},
    {"state", N_("STATE")},
    {"stage", N_("STAGE")},
    {"progress", N_("PROGRESS")},
    {NULL, NULL},
};

static void
vmsup_cli_print_ops(VmsupCliTable *table, GPtrArray *ops)
{
	for (guint i = 0; i < ops->len; i++) {
		JsonObject *op = g_ptr_array_index(ops, i);
		g_autofree gchar *id = vmsup_cli_member_text(op, "id");
		g_autofree gchar *percent = g_strdup_printf(
		    "%d%%",
		    (gint)(vmsup_json_object_get_double(op, "progress", 0) * 100 + 0.5));
		const gchar *cells[6];

		cells[0] = id;
		cells[1] = vmsup_cli_get_str(op, "kind");
		cells[2] = vmsup_cli_get_str(op, "vm");
		cells[3] = vmsup_cli_get_str(op, "state");
		cells[4] = vmsup_cli_get_str(op, "stage");
		cells[5] = percent;
		vmsup_cli_table_add_row(table, cells);
	}
	vmsup_cli_print_table(table);
}

static gint
vmsup_cli_ops_list(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(GPtrArray) ops = NULL;
	g_autoptr(VmsupCliTable) table = NULL;

	cli->table_columns = vmsup_cli_op_columns;
	if (!vmsup_cli_parse(cli, &argc, &argv, NULL, N_("List operations"), NULL, 0, NULL, &rc))
		return rc;
	table = vmsup_cli_new_table(cli, vmsup_cli_op_columns, NULL, &rc);
	if (table == NULL || !vmsup_cli_call_for_people(cli, "op.list", NULL, &result, &rc))
		return rc;
	ops = vmsup_cli_get_objects(result, "operations");
	if (ops != NULL)
		vmsup_cli_print_ops(table, ops);
	return rc;
}

static gint
vmsup_cli_ops_by_id(VmsupCli *cli, gint argc, gchar **argv, gboolean cancel)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gint64 id = 0;
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonObject) result = NULL;
	const VmsupCliField fields[] = {
	    {"id", N_("Operation"), VMSUP_CLI_VALUE_PLAIN},
	    {"kind", N_("Kind"), VMSUP_CLI_VALUE_PLAIN},
	    {"vm", N_("VM"), VMSUP_CLI_VALUE_PLAIN},
	    {"state", N_("State"), VMSUP_CLI_VALUE_STATE},
	    {"stage", N_("Stage"), VMSUP_CLI_VALUE_PLAIN},
	    {"progress", N_("Progress"), VMSUP_CLI_VALUE_FRACTION},
	    {"error", N_("Error"), VMSUP_CLI_VALUE_PLAIN},
	    {NULL, NULL, 0},
	};

	if (!vmsup_cli_parse(cli,
			     &argc,
			     &argv,
			     N_("ID"),
			     cancel ? N_("Cancel an operation") : N_("Show an operation"),
			     NULL,
			     1,
			     _("the operation id"),
			     &rc) ||
	    !vmsup_cli_parse_id(cli, argv[1], &id, &rc))
		return rc;
	json_object_set_int_member(params, "id", id);
	if (!vmsup_cli_call_for_people(cli, cancel ? "op.cancel" : "op.get", params, &result, &rc))
		return rc;
	if (cancel)
		vmsup_cli_confirm(cli, _("Operation %lld is being cancelled\n"), (long long)id);
	else
		vmsup_cli_print_fields(result, fields);
	return rc;
}

static gint
vmsup_cli_ops_get(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_ops_by_id(cli, argc, argv, FALSE);
}

static gint
vmsup_cli_ops_cancel(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_ops_by_id(cli, argc, argv, TRUE);
}

static const VmsupCliVerb vmsup_cli_ops_verbs[] = {
    {"list", N_("List operations"), vmsup_cli_ops_list},
    {"get", N_("Show an operation"), vmsup_cli_ops_get},
    {"cancel", N_("Cancel an operation"), vmsup_cli_ops_cancel},
    {NULL, NULL, NULL},
};

gint
vmsup_cli_ops(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_run_verb(cli, vmsup_cli_ops_verbs, "ops", argc - 1, argv + 1);
}
