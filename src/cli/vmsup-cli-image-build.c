/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup image build NAME [--distro D] [--package P…] */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli.h"

static gint
vmsup_cli_image_build_finish(VmsupCli *cli,
			     const gchar *name,
			     JsonObject *op,
			     JsonObject *answer,
			     gboolean unused)
{
	g_autofree gchar *done = g_strdup_printf(
	    _("Image '%s' built; create a VM on it with 'vmsup create NAME --image %s --start'\n"),
	    name,
	    name);
	g_autofree gchar *cancelled =
	    g_strdup_printf(_("Building image '%s' was cancelled; nothing was kept"), name);

	return vmsup_cli_image_finish(cli, name, op, answer, done, cancelled);
}

gint
vmsup_cli_image_build(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autofree gchar *opt_distro = NULL;
	g_auto(GStrv) opt_packages = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	JsonArray *packages;
	const GOptionEntry entries[] = {
	    {"distro",
	     0,
	     0,
	     G_OPTION_ARG_STRING,
	     &opt_distro,
	     N_("What to build (default and only choice: debian-12)"),
	     N_("DISTRO")},
	    {"package",
	     0,
	     0,
	     G_OPTION_ARG_STRING_ARRAY,
	     &opt_packages,
	     N_("A Debian package to install besides the base set (repeat or separate with "
		"commas)"),
	     N_("PACKAGE")},
	    {NULL},
	};

	if (!vmsup_cli_parse(
		cli,
		&argc,
		&argv,
		N_("NAME"),
		N_("Build a bootable Debian image from Debian's packages into the image "
		   "store (a few minutes; Ctrl-C cancels)"),
		entries,
		1,
		_("the image name"),
		&rc))
		return rc;
	json_object_set_string_member(params, "name", argv[1]);
	if (opt_distro != NULL)
		json_object_set_string_member(params, "distro", opt_distro);
	packages = json_array_new();
	for (guint i = 0; opt_packages != NULL && opt_packages[i] != NULL; i++) {
		g_auto(GStrv) parts = g_strsplit(opt_packages[i], ",", -1);
		for (guint j = 0; parts[j] != NULL; j++) {
			if (*g_strstrip(parts[j]) != '\0')
				json_array_add_string_element(packages, parts[j]);
		}
	}
	json_object_set_array_member(params, "packages", packages);
	return vmsup_cli_image_run(cli,
				   "image.build",
				   params,
				   argv[1],
				   vmsup_cli_image_build_finish);
}
