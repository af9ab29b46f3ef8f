/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmsup: the command-line client of vmsupd. One verb per contract method,
 * human tables by default, --json for the method's result as it came, exit
 * codes from the error kind (see vmsup(1)).
 */

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "vmsup-cli-clone.h"
#include "vmsup-cli-output.h"
#include "vmsup-cli.h"

static const VmsupCliVerb vmsup_cli_verbs[] = {
    {"create", N_("Create a VM, showing progress until it is ready"), vmsup_cli_create},
    {"start", N_("Start a VM"), vmsup_cli_start},
    {"stop", N_("Stop a VM"), vmsup_cli_stop},
    {"pause", N_("Pause a running VM"), vmsup_cli_pause},
    {"resume", N_("Resume a paused VM"), vmsup_cli_resume},
    {"delete", N_("Delete a VM and its disk"), vmsup_cli_delete},
    {"set", N_("Change a VM's settings"), vmsup_cli_set},
    {"clone", N_("Make a new VM from a stopped one"), vmsup_cli_clone},
    {"list", N_("List the VMs"), vmsup_cli_list},
    {"get", N_("Show one VM"), vmsup_cli_get},
    {"stats", N_("Show a VM's CPU, memory, disk and network use"), vmsup_cli_stats},
    {"health", N_("Check a VM's process, monitor and guest agent"), vmsup_cli_health},
    {"ping", N_("Ping a VM's guest agent"), vmsup_cli_ping},
    {"ports", N_("List a VM's listening ports and their host addresses"), vmsup_cli_ports},
    {"exec", N_("Run a command in a VM"), vmsup_cli_exec},
    {"shell", N_("Log in to a VM over SSH, or run a command there"), vmsup_cli_shell},
    {"console", N_("Attach to the serial console of a running VM"), vmsup_cli_console},
    {"ops", N_("List, show or cancel operations (list|get|cancel)"), vmsup_cli_ops},
    {"workspace", N_("Manage workspaces (create|list|delete|open)"), vmsup_cli_workspace},
    {"image", N_("Manage stored images (import|build|list|delete)"), vmsup_cli_image},
    {"snapshot",
     N_("Save and restore a VM's state (create|list|restore|delete)"),
     vmsup_cli_snapshot},
    {"info", N_("Show what vmsupd is and how it runs"), vmsup_cli_info},
    {"events", N_("Print events as they happen, or since a time"), vmsup_cli_events},
    {"top", N_("Show every VM's use of CPU, memory, network and disk, live"), vmsup_cli_top},
    {"bridge", N_("Relay to vmsupd for 'vmsup --connect' (ssh runs it)"), vmsup_cli_bridge},
    /* run_verb() itself answers "help" */
    {"help", N_("Show how a command is used (help COMMAND)"), NULL},
    {NULL, NULL, NULL},
};

static gchar *
vmsup_cli_describe_verbs(const VmsupCliVerb *verbs)
{
	GString *out = g_string_new(_("Commands:"));
	gsize width = 0;

	g_string_append_c(out, '\n');
	for (const VmsupCliVerb *v = verbs; v->name != NULL; v++)
		width = MAX(width, strlen(v->name));
	for (const VmsupCliVerb *v = verbs; v->name != NULL; v++)
		g_string_append_printf(out, "  %-*s  %s\n", (gint)width, v->name, _(v->summary));
	return g_string_free(out, FALSE);
}

gint
vmsup_cli_run_verb(VmsupCli *cli,
		   const VmsupCliVerb *verbs,
		   const gchar *group,
		   gint argc,
		   gchar **argv)
{
	g_autofree gchar *verb_name = NULL;

	if (argc < 1 || g_strcmp0(argv[0], "--help") == 0 || g_strcmp0(argv[0], "-h") == 0 ||
	    (g_strcmp0(argv[0], "help") == 0 && argc == 1)) {
		g_autofree gchar *text = vmsup_cli_describe_verbs(verbs);
		if (argc < 1) {
			g_printerr("%s", text);
			return VMSUP_CLI_EXIT_USAGE;
		}
		vmsup_cli_print_text(text);
		return VMSUP_CLI_EXIT_OK;
	}
	/* "help VERB [SUB]" is "VERB [SUB] --help" */
	if (g_strcmp0(argv[0], "help") == 0) {
		g_autoptr(GPtrArray) args = g_ptr_array_new();
		for (gint i = 1; i < argc; i++)
			g_ptr_array_add(args, argv[i]);
		g_ptr_array_add(args, (gpointer) "--help");
		g_ptr_array_add(args, NULL);
		return vmsup_cli_run_verb(cli, verbs, group, args->len - 1, (gchar **)args->pdata);
	}
	for (const VmsupCliVerb *v = verbs; v->name != NULL; v++) {
		if (v->func == NULL || g_strcmp0(v->name, argv[0]) != 0)
			continue;
		verb_name =
		    group != NULL ? g_strdup_printf("%s %s", group, v->name) : g_strdup(v->name);
		cli->verb = verb_name;
		/* GOption names the program in --help: "vmsup ops list" */
		{
			g_autofree gchar *prgname = g_strdup_printf("vmsup %s", verb_name);
			g_set_prgname(prgname);
		}
		return v->func(cli, argc, argv);
	}
	{
		g_autofree gchar *text = vmsup_cli_describe_verbs(verbs);
		g_printerr(_("vmsup: unknown command '%s'\n"), argv[0]);
		g_printerr("%s", text);
	}
	return VMSUP_CLI_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	VmsupCli cli = {0};
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *description = NULL;
	gboolean opt_version = FALSE;
	const gchar *localedir = g_getenv("VMSUP_LOCALEDIR");
	gint rc;
	const GOptionEntry entries[] = {
	    {"version", 0, 0, G_OPTION_ARG_NONE, &opt_version, N_("Show the version"), NULL},
	    {NULL},
	};

	setlocale(LC_ALL, "");
	/* VMSUP_LOCALEDIR lets an uninstalled build find its own translations */
	bindtextdomain(GETTEXT_PACKAGE,
		       localedir != NULL && localedir[0] != '\0' ? localedir : LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
	textdomain(GETTEXT_PACKAGE);
	g_set_prgname("vmsup");

	context = g_option_context_new(N_("COMMAND [ARGUMENT…]"));
	g_option_context_set_translation_domain(context, GETTEXT_PACKAGE);
	g_option_context_set_summary(context,
				     _("Control the virtual machines of vmsupd.\n"
				       "'vmsup COMMAND --help' explains each command."));
	description = vmsup_cli_describe_verbs(vmsup_cli_verbs);
	g_option_context_set_description(context, description);
	vmsup_cli_add_global_options(&cli, context);
	g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
	/* options before the command are global; the command parses the rest */
	g_option_context_set_strict_posix(context, TRUE);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		cli.verb = "";
		g_printerr("vmsup: %s\n", error->message);
		g_printerr(_("Run 'vmsup --help' to see the commands.\n"));
		vmsup_cli_clear(&cli);
		return VMSUP_CLI_EXIT_USAGE;
	}
	if (opt_version) {
		vmsup_cli_print("vmsup %s\n", PACKAGE_VERSION);
		vmsup_cli_clear(&cli);
		return VMSUP_CLI_EXIT_OK;
	}
	if (argc < 2) {
		g_autofree gchar *help = g_option_context_get_help(context, TRUE, NULL);
		g_printerr("%s", help);
		vmsup_cli_clear(&cli);
		return VMSUP_CLI_EXIT_USAGE;
	}
	rc = vmsup_cli_run_verb(&cli, vmsup_cli_verbs, NULL, argc - 1, argv + 1);
	vmsup_cli_clear(&cli);
	return rc;
}
