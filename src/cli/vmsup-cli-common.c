/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * the verbs' shared helpers: errors and exit codes, option parsing, reaching
 * vmsupd (on its socket here, or over SSH with --connect) and calling it,
 * printing results.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "vmsup-cli-output.h"
#include "vmsup-cli.h"
#include "vmsup-json.h"
#include "vmsup-paths.h"

void
vmsup_cli_clear(VmsupCli *cli)
{
	g_clear_pointer(&cli->socket_path, g_free);
	g_clear_pointer(&cli->connect, g_free);
	g_clear_pointer(&cli->output, g_free);
	g_clear_object(&cli->client);
	/* after the client: ssh ends once its input did */
	g_clear_object(&cli->transport);
}

static gint
vmsup_cli_exit_code_for_error(const GError *error)
{
	if (error->domain != VMSUP_ERROR)
		return VMSUP_CLI_EXIT_FAILURE;
	switch (error->code) {
	case VMSUP_ERROR_NOT_FOUND:
		return VMSUP_CLI_EXIT_NOT_FOUND;
	case VMSUP_ERROR_ALREADY_EXISTS:
		return VMSUP_CLI_EXIT_ALREADY_EXISTS;
	case VMSUP_ERROR_INVALID_ARGUMENT:
	case VMSUP_ERROR_INVALID_PARAMS:
		return VMSUP_CLI_EXIT_INVALID_ARGUMENT;
	case VMSUP_ERROR_BUSY:
		return VMSUP_CLI_EXIT_BUSY;
	case VMSUP_ERROR_FAILED_PRECONDITION:
		return VMSUP_CLI_EXIT_FAILED_PRECONDITION;
	case VMSUP_ERROR_CANCELLED:
	case VMSUP_ERROR_INTERRUPTED:
		return VMSUP_CLI_EXIT_CANCELLED;
	case VMSUP_ERROR_TIMEOUT:
		return VMSUP_CLI_EXIT_TIMEOUT;
	case VMSUP_ERROR_CONNECT:
		return VMSUP_CLI_EXIT_NO_DAEMON;
	default:
		return VMSUP_CLI_EXIT_FAILURE;
	}
}

static gchar *
vmsup_cli_hint_for_kind(const VmsupCli *cli, const gchar *kind)
{
	if (g_strcmp0(kind, "not-found") == 0)
		return g_strdup(_("It does not exist: 'vmsup list' shows the VMs, 'vmsup ops list' "
				  "the operations."));
	if (g_strcmp0(kind, "already-exists") == 0)
		return g_strdup(_("That name is taken: choose another one, or delete the existing "
				  "one first."));
	if (g_strcmp0(kind, "invalid-argument") == 0 || g_strcmp0(kind, "invalid-params") == 0)
		return g_strdup_printf(_("An argument was refused: see 'vmsup %s --help'."),
				       cli->verb);
	if (g_strcmp0(kind, "busy") == 0)
		return g_strdup(_("Something else is in progress: wait for it ('vmsup ops list') "
				  "and try again."));
	if (g_strcmp0(kind, "failed-precondition") == 0)
		/* a VM's state, a limit, a file or a share refused: only vmsupd's own words say
		 * which */
		return g_strdup(_("vmsupd refused this as things stand: its message below says why "
				  "and what to do."));
	if (g_strcmp0(kind, "cancelled") == 0)
		return g_strdup(_("The operation was cancelled."));
	if (g_strcmp0(kind, "timeout") == 0)
		return g_strdup(_("No answer in time: the VM may still be booting; try again or "
				  "allow more time with --timeout."));
	if (g_strcmp0(kind, "method-not-found") == 0)
		return g_strdup(_("vmsupd does not know this request: is it older than vmsup? "
				  "Restart it after an upgrade."));
	if (g_strcmp0(kind, "invalid-request") == 0)
		return g_strdup(_("vmsup and vmsupd do not understand each other: are they the "
				  "same version?"));
	return g_strdup(_("vmsupd failed unexpectedly: its log has the details."));
}

gboolean
vmsup_cli_remote_uri(VmsupCli *cli, VmsupRemoteUri **out_uri, gint *out_exit)
{
	const gchar *text = cli->connect != NULL ? cli->connect : g_getenv("VMSUP_CONNECT");
	const gchar *source = cli->connect != NULL ? "--connect" : "VMSUP_CONNECT";
	g_autoptr(GError) error = NULL;

	*out_uri = NULL;
	if (text == NULL || text[0] == '\0')
		return TRUE;
	*out_uri = vmsup_remote_uri_parse(text, &error);
	if (*out_uri == NULL) {
		/* TRANSLATORS: the first %s is --connect or VMSUP_CONNECT, the second what is wrong
		 */
		g_autofree gchar *msg = g_strdup_printf(_("%s: %s"), source, error->message);
		*out_exit = vmsup_cli_usage_error(cli, msg);
		return FALSE;
	}
	if (cli->socket_path != NULL) {
		g_clear_pointer(out_uri, vmsup_remote_uri_free);
		*out_exit = vmsup_cli_usage_error(
		    cli,
		    _("--socket names a socket on this host; with --connect, give the remote "
		      "one as ssh://HOST?socket=PATH"));
		return FALSE;
	}
	return TRUE;
}

/* ssh to @uri's host as cli->transport, and the client over it */
static gboolean
vmsup_cli_connect_remote(VmsupCli *cli, const VmsupRemoteUri *uri, gint *out_exit)
{
	g_autoptr(GError) error = NULL;

	cli->transport = vmsup_ssh_transport_new(uri, cli->system, &error);
	if (cli->transport == NULL) {
		g_printerr("vmsup: %s\n", error->message);
		*out_exit = VMSUP_CLI_EXIT_NO_DAEMON;
		return FALSE;
	}
	cli->client = vmsup_jsonrpc_client_new();
	vmsup_jsonrpc_client_connect_stream(cli->client,
					    vmsup_ssh_transport_get_stream(cli->transport));
	return TRUE;
}

/* the end of cli->transport: which side failed and what it said; the exit code */
static gint
vmsup_cli_report_remote_error(VmsupCli *cli)
{
	g_autoptr(GError) why = vmsup_ssh_transport_explain(cli->transport);
	g_auto(GStrv) lines = vmsup_ssh_transport_get_stderr_lines(cli->transport);

	/* TRANSLATORS: the first %s is [USER@]HOST[:PORT], the second which side failed */
	g_printerr(_("vmsup: cannot reach vmsupd on %s: %s\n"),
		   vmsup_ssh_transport_get_remote(cli->transport),
		   why->message);
	for (guint i = 0; lines != NULL && lines[i] != NULL; i++)
		g_printerr("  %s\n", lines[i]);
	return VMSUP_CLI_EXIT_NO_DAEMON;
}

gint
vmsup_cli_report_error(VmsupCli *cli, const GError *error)
{
	const gchar *kind =
	    error->domain == VMSUP_ERROR ? vmsup_error_to_kind(error->code) : "internal";
	g_autofree gchar *hint = NULL;
	gboolean remote = vmsup_error_is_wire(error);

	if (cli->transport != NULL && (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_CONNECT) ||
				       g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED)))
		return vmsup_cli_report_remote_error(cli);
	if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_CONNECT)) {
		g_autofree gchar *path = cli->socket_path != NULL ? g_strdup(cli->socket_path)
								  : vmsup_paths_socket(cli->system);
		g_autofree gchar *command = vmsup_jsonrpc_client_start_command(cli->system);
		/* TRANSLATORS: the second %s is the command that starts vmsupd */
		g_printerr(_("vmsup: cannot connect to vmsupd at %s: is it running? start it "
			     "with '%s'\n"),
			   path,
			   command);
		g_printerr("vmsup: %s\n", error->message);
		return VMSUP_CLI_EXIT_NO_DAEMON;
	}
	if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_CLOSED) ||
	    g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL))
		hint =
		    g_strdup(_("The connection to vmsupd broke: check that it is still running."));
	else if (cli->client != NULL && vmsup_jsonrpc_client_was_refused(cli->client))
		hint = g_strdup(
		    _("vmsupd refused this connection: do what its message says, then try again."));
	else
		hint = vmsup_cli_hint_for_kind(cli, kind);
	if (cli->json && remote) {
		g_autoptr(JsonObject) obj = json_object_new();
		g_autoptr(JsonObject) data = json_object_new();
		g_autofree gchar *text = NULL;
		json_object_set_string_member(data, "kind", kind);
		json_object_set_int_member(obj, "code", vmsup_error_get_code(error));
		json_object_set_string_member(obj, "message", error->message);
		json_object_set_object_member(obj, "data", g_steal_pointer(&data));
		text = vmsup_json_object_to_string(obj, FALSE);
		vmsup_cli_print("%s\n", text);
	}
	g_printerr("vmsup: %s\n", hint);
	g_printerr("%s: %s\n", remote ? "vmsupd" : "vmsup", error->message);
	return vmsup_cli_exit_code_for_error(error);
}

gint
vmsup_cli_usage_error(VmsupCli *cli, const gchar *message)
{
	g_printerr("vmsup: %s\n", message);
	g_printerr(_("Run 'vmsup %s --help' to see how it is used.\n"), cli->verb);
	return VMSUP_CLI_EXIT_USAGE;
}

JsonObject *
vmsup_cli_params_name(const gchar *name)
{
	JsonObject *params = json_object_new();
	json_object_set_string_member(params, "name", name);
	return params;
}

void
vmsup_cli_add_global_options(VmsupCli *cli, GOptionContext *context)
{
	/* the context keeps a copy of the entries */
	const GOptionEntry entries[] = {
	    {"socket",
	     0,
	     0,
	     G_OPTION_ARG_FILENAME,
	     &cli->socket_path,
	     N_("Talk to the vmsupd listening on this socket"),
	     N_("PATH")},
	    {"system",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &cli->system,
	     N_("Talk to the system-wide vmsupd"),
	     NULL},
	    {"connect",
	     0,
	     0,
	     G_OPTION_ARG_STRING,
	     &cli->connect,
	     N_("Talk to the vmsupd of another host over SSH (ssh://[USER@]HOST[:PORT]); also "
		"$VMSUP_CONNECT"),
	     N_("URI")},
	    {"json",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &cli->json,
	     N_("Print the result as JSON, exactly as vmsupd answered"),
	     NULL},
	    {"quiet",
	     'q',
	     0,
	     G_OPTION_ARG_NONE,
	     &cli->quiet,
	     N_("Print no progress and no confirmations, only results and errors"),
	     NULL},
	    {NULL},
	};

	g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
}

static void
vmsup_cli_add_table_options(VmsupCli *cli, GOptionContext *context)
{
	const GOptionEntry entries[] = {
	    {"output",
	     'o',
	     0,
	     G_OPTION_ARG_STRING,
	     &cli->output,
	     N_("Show these columns, in this order (comma-separated; see vmsup(1))"),
	     N_("COLUMNS")},
	    {"no-headers",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &cli->no_headers,
	     N_("Leave out the line of column headers"),
	     NULL},
	    {NULL},
	};

	g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
}

/*
 * Parses a verb's options and checks that @n_args positional arguments
 * (@what) are left, argv[0] being the verb. With @n_args < 0 the verb checks
 * its arguments itself, and options end at the first one so that they can
 * carry options of their own.
 */
gboolean
vmsup_cli_parse(VmsupCli *cli,
		gint *argc,
		gchar ***argv,
		const gchar *parameter_string,
		const gchar *summary,
		const GOptionEntry *entries,
		gint n_args,
		const gchar *what,
		gint *out_exit)
{
	g_autoptr(GOptionContext) context = g_option_context_new(parameter_string);
	g_autoptr(GError) error = NULL;

	g_option_context_set_translation_domain(context, GETTEXT_PACKAGE);
	g_option_context_set_summary(context, _(summary));
	g_option_context_set_strict_posix(context, n_args < 0);
	if (entries != NULL)
		g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
	if (cli->table_columns != NULL) {
		g_autofree gchar *valid = vmsup_cli_columns_describe(cli->table_columns);
		g_autofree gchar *description =
		    g_strdup_printf(_("Columns for --output: %s"), valid);
		vmsup_cli_add_table_options(cli, context);
		g_option_context_set_description(context, description);
	}
	vmsup_cli_add_global_options(cli, context);
	if (!g_option_context_parse(context, argc, argv, &error)) {
		*out_exit = vmsup_cli_usage_error(cli, error->message);
		return FALSE;
	}
	if (n_args < 0 || *argc - 1 == n_args)
		return TRUE;
	if (*argc - 1 < n_args) {
		g_autofree gchar *msg = g_strdup_printf(_("Missing %s"), what);
		*out_exit = vmsup_cli_usage_error(cli, msg);
	} else {
		*out_exit = vmsup_cli_usage_error(cli, _("Too many arguments"));
	}
	return FALSE;
}

/* vmsup_cli_parse() for a verb taking one NAME: the params {"name": NAME}, or NULL */
JsonObject *
vmsup_cli_parse_name(VmsupCli *cli,
		     gint *argc,
		     gchar ***argv,
		     const gchar *what,
		     const gchar *summary,
		     const GOptionEntry *entries,
		     gint *out_exit)
{
	if (!vmsup_cli_parse(cli, argc, argv, N_("NAME"), summary, entries, 1, what, out_exit))
		return NULL;
	return vmsup_cli_params_name((*argv)[1]);
}

gchar *
vmsup_cli_local_socket(VmsupCli *cli, gboolean *out_activate)
{
	const gchar *env = g_getenv("VMSUP_SOCKET");

	/* D-Bus may start the session daemon, unless a socket was named */
	*out_activate = !cli->system && cli->socket_path == NULL && (env == NULL || *env == '\0');
	if (cli->socket_path == NULL)
		cli->socket_path = vmsup_paths_socket(cli->system);
	return g_strdup(cli->socket_path);
}

gboolean
vmsup_cli_connect(VmsupCli *cli, gint *out_exit)
{
	g_autoptr(VmsupRemoteUri) uri = NULL;
	g_autofree gchar *path = NULL;
	g_autoptr(GError) error = NULL;
	gboolean activate;
	gboolean ok;

	if (!vmsup_cli_remote_uri(cli, &uri, out_exit))
		return FALSE;
	if (uri != NULL)
		return vmsup_cli_connect_remote(cli, uri, out_exit);
	path = vmsup_cli_local_socket(cli, &activate);
	cli->client = vmsup_jsonrpc_client_new();
	ok = activate ? vmsup_jsonrpc_client_connect_activating(cli->client, path, &error)
		      : vmsup_jsonrpc_client_connect(cli->client, path, &error);
	if (!ok) {
		*out_exit = vmsup_cli_report_error(cli, error);
		return FALSE;
	}
	return TRUE;
}

static void
vmsup_cli_print_json(JsonNode *node)
{
	g_autofree gchar *text = vmsup_json_to_string(node, isatty(STDOUT_FILENO));
	vmsup_cli_print("%s\n", text);
}

void
vmsup_cli_print_json_object(JsonObject *obj)
{
	g_autoptr(JsonNode) node = vmsup_json_node_new_object(obj);
	vmsup_cli_print_json(node);
}

/* connects when needed, calls, reports a failure; NULL then with *out_exit set */
JsonObject *
vmsup_cli_call(VmsupCli *cli, const gchar *method, JsonObject *params, gint *out_exit)
{
	g_autoptr(GError) error = NULL;
	JsonObject *result;

	if (cli->client == NULL && !vmsup_cli_connect(cli, out_exit))
		return NULL;
	result = vmsup_jsonrpc_client_call_object(cli->client, method, params, &error);
	if (result == NULL) {
		*out_exit = vmsup_cli_report_error(cli, error);
		return NULL;
	}
	*out_exit = VMSUP_CLI_EXIT_OK;
	return result;
}

/*
 * Calls @method and, for --json, prints its result; TRUE with @out_result
 * when the verb still has to show the result to people.
 */
gboolean
vmsup_cli_call_for_people(VmsupCli *cli,
			  const gchar *method,
			  JsonObject *params,
			  JsonObject **out_result,
			  gint *out_exit)
{
	g_autoptr(JsonObject) result = vmsup_cli_call(cli, method, params, out_exit);

	if (result == NULL)
		return FALSE;
	if (cli->json) {
		vmsup_cli_print_json_object(result);
		return FALSE;
	}
	*out_result = g_steal_pointer(&result);
	return TRUE;
}

void
vmsup_cli_print_fields(JsonObject *obj, const VmsupCliField *fields)
{
	g_autofree gchar *text = vmsup_cli_format_fields(obj, fields);
	vmsup_cli_print_text(text);
}

/*
 * The table of a table verb: the columns -o names, else @default_spec;
 * NULL with a usage error for a column there is not. Made before vmsupd is
 * asked, so that a typo costs no request.
 */
VmsupCliTable *
vmsup_cli_new_table(VmsupCli *cli,
		    const VmsupCliColumn *columns,
		    const gchar *default_spec,
		    gint *out_exit)
{
	g_autoptr(GError) error = NULL;
	VmsupCliTable *table =
	    vmsup_cli_table_new_columns(columns,
					cli->output != NULL ? cli->output : default_spec,
					&error);

	if (table == NULL) {
		*out_exit = vmsup_cli_usage_error(cli, error->message);
		return NULL;
	}
	vmsup_cli_table_set_headers(table, !cli->no_headers);
	return table;
}

/* a one-line confirmation on stdout, which -q leaves out */
void G_GNUC_PRINTF(2, 3) vmsup_cli_confirm(VmsupCli *cli, const gchar *format, ...)
{
	g_autofree gchar *text = NULL;
	va_list args;

	if (cli->quiet)
		return;
	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	vmsup_cli_print_text(text);
}

void
vmsup_cli_print_table(VmsupCliTable *table)
{
	g_autofree gchar *text = vmsup_cli_table_to_string(table);
	vmsup_cli_print_text(text);
}

/* the objects (unowned) in the array @member of @obj; NULL when there is no such array */
GPtrArray *
vmsup_cli_get_objects(JsonObject *obj, const gchar *member)
{
	JsonNode *node = json_object_get_member(obj, member);
	JsonArray *array;
	GPtrArray *objects;

	if (node == NULL || !JSON_NODE_HOLDS_ARRAY(node))
		return NULL;
	array = json_node_get_array(node);
	objects = g_ptr_array_new();
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *element = json_array_get_element(array, i);
		if (JSON_NODE_HOLDS_OBJECT(element))
			g_ptr_array_add(objects, json_node_get_object(element));
	}
	return objects;
}

gboolean
vmsup_cli_parse_id(VmsupCli *cli, const gchar *text, gint64 *out_id, gint *out_exit)
{
	guint64 value = 0;
	g_autoptr(GError) error = NULL;

	if (!g_ascii_string_to_unsigned(text, 10, 1, G_MAXINT64, &value, &error)) {
		g_autofree gchar *msg =
		    g_strdup_printf(_("Invalid operation id '%s': expected a positive number"),
				    text);
		*out_exit = vmsup_cli_usage_error(cli, msg);
		return FALSE;
	}
	*out_id = (gint64)value;
	return TRUE;
}

/* numeric options stay at -1 unless given, and are sent only then */
void
vmsup_cli_set_int(JsonObject *params, const gchar *member, gint value)
{
	if (value >= 0)
		json_object_set_int_member(params, member, value);
}

/* --forward as "forward": "80,443" and repeated --forward both work */
gboolean
vmsup_cli_set_ports(VmsupCli *cli, JsonObject *params, gchar **specs, gint *out_exit)
{
	g_autoptr(JsonArray) ports = json_array_new();

	if (specs == NULL)
		return TRUE;

	for (guint i = 0; specs != NULL && specs[i] != NULL; i++) {
		g_auto(GStrv) parts = g_strsplit(specs[i], ",", -1);
		for (guint j = 0; parts[j] != NULL; j++) {
			guint64 port = 0;
			g_autofree gchar *trimmed = g_strstrip(g_strdup(parts[j]));
			if (!g_ascii_string_to_unsigned(trimmed, 10, 1, 65535, &port, NULL)) {
				g_autofree gchar *msg = g_strdup_printf(
				    _("Invalid port '%s': expected a number from 1 to 65535"),
				    trimmed);
				*out_exit = vmsup_cli_usage_error(cli, msg);
				return FALSE;
			}
			json_array_add_int_element(ports, (gint64)port);
		}
	}
	json_object_set_array_member(params, "forward", g_steal_pointer(&ports));
	return TRUE;
}

/* the daemon's working directory is not ours: paths travel absolute */
void
vmsup_cli_set_path(JsonObject *params, const gchar *member, const gchar *path)
{
	g_autofree gchar *abs = NULL;
	if (path == NULL)
		return;
	abs = g_canonicalize_filename(path, NULL);
	json_object_set_string_member(params, member, abs);
}

const gchar *
vmsup_cli_get_str(JsonObject *obj, const gchar *member)
{
	return vmsup_json_object_get_string(obj, member, NULL);
}

gchar *
vmsup_cli_member_text(JsonObject *obj, const gchar *member)
{
	return vmsup_cli_format_value(json_object_get_member(obj, member));
}

/* a file the CLI reads for vmsupd: UTF-8 text of at most @max bytes, or NULL with a usage error */
gchar *
vmsup_cli_read_text_file(VmsupCli *cli, const gchar *path, gsize max, gint *out_exit)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *contents = NULL;
	g_autofree gchar *msg = NULL;
	gsize length = 0;
	GStatBuf st;

	if (g_stat(path, &st) == 0 && S_ISREG(st.st_mode) && (gsize)st.st_size > max) {
		msg = g_strdup_printf(_("'%s' is larger than %u KiB; give a smaller file"),
				      path,
				      (guint)(max / 1024));
	} else if (!g_file_get_contents(path, &contents, &length, &error)) {
		msg = g_strdup_printf(_("Cannot read '%s': %s"), path, error->message);
	} else if (length > max) {
		msg = g_strdup_printf(_("'%s' is larger than %u KiB; give a smaller file"),
				      path,
				      (guint)(max / 1024));
	} else if (memchr(contents, '\0', length) != NULL ||
		   !g_utf8_validate(contents, (gssize)length, NULL)) {
		msg = g_strdup_printf(_("'%s' is not a text file"), path);
	}
	if (msg != NULL) {
		*out_exit = vmsup_cli_usage_error(cli, msg);
		return NULL;
	}
	return g_steal_pointer(&contents);
}
