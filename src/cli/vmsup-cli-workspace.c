/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup workspace create|list|delete|open */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli.h"

static gint
vmsup_cli_workspace_create(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autofree gchar *opt_path = NULL;
	g_autofree gchar *opt_vm = NULL;
	gint opt_cpus = -1;
	gint opt_memory = -1;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	const GOptionEntry entries[] = {
	    {"path",
	     0,
	     0,
	     G_OPTION_ARG_FILENAME,
	     &opt_path,
	     N_("Host directory to share (default: the current directory)"),
	     N_("DIR")},
	    {"vm",
	     0,
	     0,
	     G_OPTION_ARG_STRING,
	     &opt_vm,
	     N_("VM that serves the workspace (created on demand)"),
	     N_("NAME")},
	    {"cpus", 0, 0, G_OPTION_ARG_INT, &opt_cpus, N_("Number of virtual CPUs"), N_("N")},
	    {"memory", 'm', 0, G_OPTION_ARG_INT, &opt_memory, N_("Guest memory in MiB"), N_("MIB")},
	    {NULL},
	};

	params = vmsup_cli_parse_name(cli,
				      &argc,
				      &argv,
				      _("the workspace name"),
				      N_("Create a workspace: a host directory shared into a VM at "
					 "/workspace"),
				      entries,
				      &rc);
	if (params == NULL)
		return rc;
	vmsup_cli_set_path(params, "path", opt_path != NULL ? opt_path : ".");
	if (opt_vm != NULL)
		json_object_set_string_member(params, "vm", opt_vm);
	vmsup_cli_set_int(params, "cpus", opt_cpus);
	vmsup_cli_set_int(params, "memory_mib", opt_memory);
	if (vmsup_cli_call_for_people(cli, "workspace.create", params, &result, &rc))
		vmsup_cli_confirm(cli, _("Workspace '%s' created\n"), argv[1]);
	return rc;
}

static gint
vmsup_cli_workspace_list(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(VmsupCliTable) table = NULL;
	g_autoptr(GPtrArray) list = NULL;
	static const VmsupCliColumn columns[] = {
	    {"name", N_("NAME")},
	    {"path", N_("PATH")},
	    {"vm", N_("VM")},
	    {"state", N_("STATE")},
	    {NULL, NULL},
	};

	cli->table_columns = columns;
	if (!vmsup_cli_parse(cli, &argc, &argv, NULL, N_("List workspaces"), NULL, 0, NULL, &rc))
		return rc;
	table = vmsup_cli_new_table(cli, columns, NULL, &rc);
	if (table == NULL || !vmsup_cli_call_for_people(cli, "workspace.list", NULL, &result, &rc))
		return rc;
	list = vmsup_cli_get_objects(result, "workspaces");
	for (guint i = 0; list != NULL && i < list->len; i++) {
		JsonObject *ws = g_ptr_array_index(list, i);
		const gchar *cells[4];

		cells[0] = vmsup_cli_get_str(ws, "name");
		cells[1] = vmsup_cli_get_str(ws, "path");
		cells[2] = vmsup_cli_get_str(ws, "vm");
		cells[3] = vmsup_cli_get_str(ws, "state");
		vmsup_cli_table_add_row(table, cells);
	}
	vmsup_cli_print_table(table);
	return rc;
}

static const VmsupCliField vmsup_cli_workspace_fields[] = {
    {"name", N_("Name"), VMSUP_CLI_VALUE_PLAIN},
    {"path", N_("Path"), VMSUP_CLI_VALUE_PLAIN},
    {"vm", N_("VM"), VMSUP_CLI_VALUE_PLAIN},
    {"state", N_("State"), VMSUP_CLI_VALUE_STATE},
    {"vm_state", N_("VM state"), VMSUP_CLI_VALUE_STATE},
    {"mount", N_("Mounted at"), VMSUP_CLI_VALUE_PLAIN},
    {"vm_owned", N_("VM made for it"), VMSUP_CLI_VALUE_PLAIN},
    {NULL, NULL, 0},
};

static gint
vmsup_cli_workspace_by_name(VmsupCli *cli, gint argc, gchar **argv, gboolean open)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gboolean opt_force = FALSE;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	const GOptionEntry delete_entries[] = {
	    {"force",
	     'f',
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_force,
	     N_("Delete the workspace even while its VM runs"),
	     NULL},
	    {NULL},
	};

	params = vmsup_cli_parse_name(
	    cli,
	    &argc,
	    &argv,
	    _("the workspace name"),
	    open ? N_("Open a workspace: its VM is created if needed and started")
		 : N_("Delete a workspace; the shared directory stays"),
	    open ? NULL : delete_entries,
	    &rc);
	if (params == NULL)
		return rc;
	if (opt_force)
		json_object_set_boolean_member(params, "force", TRUE);
	if (!vmsup_cli_call_for_people(cli,
				       open ? "workspace.open" : "workspace.delete",
				       params,
				       &result,
				       &rc))
		return rc;
	if (open)
		vmsup_cli_print_fields(result, vmsup_cli_workspace_fields);
	else
		vmsup_cli_confirm(cli, _("Workspace '%s' deleted\n"), argv[1]);
	return rc;
}

static gint
vmsup_cli_workspace_delete(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_workspace_by_name(cli, argc, argv, FALSE);
}

static gint
vmsup_cli_workspace_open(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_workspace_by_name(cli, argc, argv, TRUE);
}

static const VmsupCliVerb vmsup_cli_workspace_verbs[] = {
    {"create", N_("Create a workspace"), vmsup_cli_workspace_create},
    {"list", N_("List workspaces"), vmsup_cli_workspace_list},
    {"delete", N_("Delete a workspace"), vmsup_cli_workspace_delete},
    {"open", N_("Open a workspace, starting its VM"), vmsup_cli_workspace_open},
    {NULL, NULL, NULL},
};

gint
vmsup_cli_workspace(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_run_verb(cli, vmsup_cli_workspace_verbs, "workspace", argc - 1, argv + 1);
}
