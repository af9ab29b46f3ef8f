/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup image import|list|delete; build is vmsup-cli-image-build.c */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli.h"
#include "vmsup-json.h"

/* the image as the store lists it, NULL when vmsupd does not list it (yet) */
static JsonObject *
vmsup_cli_image_lookup(VmsupCli *cli, const gchar *name)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) result = vmsup_cli_call(cli, "image.list", NULL, &rc);
	g_autoptr(GPtrArray) list = result != NULL ? vmsup_cli_get_objects(result, "images") : NULL;

	for (guint i = 0; list != NULL && i < list->len; i++) {
		JsonObject *image = g_ptr_array_index(list, i);
		if (g_strcmp0(vmsup_json_object_get_string(image, "name", NULL), name) == 0)
			return json_object_ref(image);
	}
	return NULL;
}

gint
vmsup_cli_image_finish(VmsupCli *cli,
		       const gchar *name,
		       JsonObject *op,
		       JsonObject *answer,
		       const gchar *done,
		       const gchar *cancelled)
{
	g_autoptr(JsonObject) image = NULL;

	/* --json prints the new image as image.list has it */
	if (cli->json && g_strcmp0(vmsup_json_object_get_string(op, "state", ""), "done") == 0)
		image = vmsup_cli_image_lookup(cli, name);
	return vmsup_cli_operation_outcome(cli,
					   op,
					   image != NULL ? image : answer,
					   done,
					   cancelled);
}

/* the import's end */
static gint
vmsup_cli_image_import_finish(VmsupCli *cli,
			      const gchar *name,
			      JsonObject *op,
			      JsonObject *answer,
			      gboolean unused)
{
	g_autofree gchar *done = g_strdup_printf(
	    _("Image '%s' imported; create a VM on it with 'vmsup create NAME --image %s'\n"),
	    name,
	    name);
	g_autofree gchar *cancelled =
	    g_strdup_printf(_("Importing image '%s' was cancelled; nothing was kept"), name);

	return vmsup_cli_image_finish(cli, name, op, answer, done, cancelled);
}

gint
vmsup_cli_image_run(VmsupCli *cli,
		    const gchar *method,
		    JsonObject *params,
		    const gchar *what,
		    VmsupCliOpFinishFunc finish)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonNode) subscribed = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *name;
	gint64 id;

	if (!vmsup_cli_connect(cli, &rc))
		return rc;
	/* as create: subscribe first, the CLI waits so that Ctrl-C can cancel */
	subscribed = vmsup_jsonrpc_client_call(cli->client, "events.subscribe", NULL, &error);
	if (subscribed == NULL)
		g_debug("events.subscribe: %s; polling instead", error->message);
	result = vmsup_cli_call(cli, method, params, &rc);
	if (result == NULL)
		return rc;
	id = vmsup_cli_operation_id(result);
	name = vmsup_json_object_get_string(result, "image", NULL);
	if (id <= 0 || name == NULL) {
		g_printerr(_("vmsup: vmsupd did not say which operation makes '%s'\n"), what);
		return VMSUP_CLI_EXIT_FAILURE;
	}
	return vmsup_cli_wait_operation(cli, name, result, id, finish, FALSE);
}

static gint
vmsup_cli_image_import(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autofree gchar *opt_name = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	const GOptionEntry entries[] = {
	    {"name",
	     0,
	     0,
	     G_OPTION_ARG_STRING,
	     &opt_name,
	     N_("Name in the store (default: the file's name without its extension)"),
	     N_("NAME")},
	    {NULL},
	};

	if (!vmsup_cli_parse(cli,
			     &argc,
			     &argv,
			     N_("PATH"),
			     N_("Copy a disk image (qcow2, or raw with a partition table) into the "
				"image store"),
			     entries,
			     1,
			     _("the image file"),
			     &rc))
		return rc;
	vmsup_cli_set_path(params, "path", argv[1]);
	if (opt_name != NULL)
		json_object_set_string_member(params, "name", opt_name);
	return vmsup_cli_image_run(cli,
				   "image.import",
				   params,
				   argv[1],
				   vmsup_cli_image_import_finish);
}

static gint
vmsup_cli_image_list(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(VmsupCliTable) table = NULL;
	g_autoptr(GPtrArray) list = NULL;
	static const VmsupCliColumn columns[] = {
	    {"name", N_("NAME")},
	    {"format", N_("FORMAT")},
	    {"size", N_("SIZE")},
	    {"disk", N_("ON DISK")},
	    {"imported", N_("IMPORTED")},
	    {"used-by", N_("USED BY")},
	    {NULL, NULL},
	};

	cli->table_columns = columns;
	if (!vmsup_cli_parse(cli, &argc, &argv, NULL, N_("List stored images"), NULL, 0, NULL, &rc))
		return rc;
	table = vmsup_cli_new_table(cli, columns, NULL, &rc);
	if (table == NULL || !vmsup_cli_call_for_people(cli, "image.list", NULL, &result, &rc))
		return rc;
	list = vmsup_cli_get_objects(result, "images");
	for (guint i = 0; list != NULL && i < list->len; i++) {
		JsonObject *image = g_ptr_array_index(list, i);
		g_autofree gchar *size = vmsup_cli_format_bytes(
		    vmsup_json_object_get_int(image, "virtual_size_bytes", 0));
		g_autofree gchar *disk =
		    vmsup_cli_format_bytes(vmsup_json_object_get_int(image, "disk_size_bytes", 0));
		g_autoptr(GPtrArray) users = g_ptr_array_new();
		g_autofree gchar *used_by = NULL;
		JsonNode *node = json_object_get_member(image, "used_by");
		const gchar *cells[6];

		for (guint j = 0; node != NULL && JSON_NODE_HOLDS_ARRAY(node) &&
				  j < json_array_get_length(json_node_get_array(node));
		     j++)
			g_ptr_array_add(
			    users,
			    (gpointer)json_array_get_string_element(json_node_get_array(node), j));
		g_ptr_array_add(users, NULL);
		used_by = g_strjoinv(",", (gchar **)users->pdata);
		cells[0] = vmsup_cli_get_str(image, "name");
		cells[1] = vmsup_cli_get_str(image, "format");
		cells[2] = size;
		cells[3] = disk;
		cells[4] = vmsup_cli_get_str(image, "imported_at");
		cells[5] = used_by[0] != '\0' ? used_by : "-";
		vmsup_cli_table_add_row(table, cells);
	}
	vmsup_cli_print_table(table);
	return rc;
}

static gint
vmsup_cli_image_delete(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;

	params = vmsup_cli_parse_name(cli,
				      &argc,
				      &argv,
				      _("the image name"),
				      N_("Delete a stored image no VM uses"),
				      NULL,
				      &rc);
	if (params == NULL)
		return rc;
	if (vmsup_cli_call_for_people(cli, "image.delete", params, &result, &rc))
		vmsup_cli_confirm(cli, _("Image '%s' deleted\n"), argv[1]);
	return rc;
}

static const VmsupCliVerb vmsup_cli_image_verbs[] = {
    {"import", N_("Copy a disk image into the store"), vmsup_cli_image_import},
    {"build", N_("Build a Debian image into the store"), vmsup_cli_image_build},
    {"list", N_("List stored images"), vmsup_cli_image_list},
    {"delete", N_("Delete a stored image"), vmsup_cli_image_delete},
    {NULL, NULL, NULL},
};

gint
vmsup_cli_image(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_run_verb(cli, vmsup_cli_image_verbs, "image", argc - 1, argv + 1);
}
