/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup info: what vmsupd is and how it runs */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli.h"

gint
vmsup_cli_info(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) result = NULL;
	const VmsupCliField fields[] = {
	    {"version", N_("Version"), VMSUP_CLI_VALUE_PLAIN},
	    {"mode", N_("Mode"), VMSUP_CLI_VALUE_PLAIN},
	    {"socket", N_("Socket"), VMSUP_CLI_VALUE_PLAIN},
	    {"pid", N_("Process"), VMSUP_CLI_VALUE_PLAIN},
	    {"uid", N_("User"), VMSUP_CLI_VALUE_PLAIN},
	    {"started", N_("Started"), VMSUP_CLI_VALUE_PLAIN},
	    {"uptime_s", N_("Uptime"), VMSUP_CLI_VALUE_SECONDS},
	    {"accel", N_("Accelerator"), VMSUP_CLI_VALUE_PLAIN},
	    {"accel_reason", N_("Accelerator because"), VMSUP_CLI_VALUE_PLAIN},
	    {"cgroup", N_("Cgroup"), VMSUP_CLI_VALUE_CGROUP},
	    {"vm_service", N_("VM service"), VMSUP_CLI_VALUE_PLAIN},
	    {"stats_service", N_("Stats service"), VMSUP_CLI_VALUE_PLAIN},
	    {"workspace_service", N_("Workspace service"), VMSUP_CLI_VALUE_PLAIN},
	    {NULL, NULL, 0},
	};

	if (!vmsup_cli_parse(cli,
			     &argc,
			     &argv,
			     NULL,
			     N_("Show what vmsupd is and how it runs"),
			     NULL,
			     0,
			     NULL,
			     &rc) ||
	    !vmsup_cli_call_for_people(cli, "daemon.info", NULL, &result, &rc))
		return rc;
	json_object_remove_member(result, "methods");
	vmsup_cli_print_fields(result, fields);
	return rc;
}
