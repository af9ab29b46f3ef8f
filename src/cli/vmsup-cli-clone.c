/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup clone: a new VM from a stopped one, its copy followed like a create */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli-clone.h"
#include "vmsup-cli-output.h"
#include "vmsup-error.h"
#include "vmsup-json.h"

/* @name: the new VM's; --json prints vm.clone's answer */
static gint
vmsup_cli_clone_finish(VmsupCli *cli,
		       const gchar *name,
		       JsonObject *op,
		       JsonObject *answer,
		       gboolean unused)
{
	g_autofree gchar *done =
	    g_strdup_printf(_("VM '%s' cloned; start it with 'vmsup start %s'\n"), name, name);
	g_autofree gchar *cancelled =
	    g_strdup_printf(_("Cloning into VM '%s' was cancelled; nothing of it is left"), name);

	return vmsup_cli_operation_outcome(cli, op, answer, done, cancelled);
}

gint
vmsup_cli_clone(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gboolean opt_no_wait = FALSE;
	g_autoptr(JsonObject) params = NULL;
	gint64 id = 0;
	const GOptionEntry entries[] = {
	    {"no-wait",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_no_wait,
	     N_("Return at once with the operation id instead of waiting"),
	     NULL},
	    {NULL},
	};

	if (!vmsup_cli_parse(
		cli,
		&argc,
		&argv,
		N_("NAME NEW_NAME"),
		N_("Make the VM NEW_NAME from the stopped VM NAME: a copy of its disk, "
		   "with a new MAC address and cloud-init instance-id"),
		entries,
		2,
		_("the VM to clone and the new VM's name"),
		&rc))
		return rc;
	params = vmsup_cli_params_name(argv[1]);
	json_object_set_string_member(params, "new_name", argv[2]);
	if (!opt_no_wait)
		return vmsup_cli_follow_operation(cli,
						  "vm.clone",
						  params,
						  argv[2],
						  vmsup_cli_clone_finish,
						  FALSE);
	if (!vmsup_cli_start_operation(cli, "vm.clone", params, &id, &rc) || cli->quiet)
		return rc;
	vmsup_cli_print(_("Cloning VM '%s' into '%s' as operation %lld; follow it with "
			  "'vmsup ops get %lld'\n"),
			argv[1],
			argv[2],
			(long long)id,
			(long long)id);
	return rc;
}
