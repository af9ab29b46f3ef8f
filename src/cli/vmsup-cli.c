/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmsup: the command-line client of vmsupd. One verb per contract method,
 * human tables by default, --json for the method's result as it came, exit
 * codes from the error kind (see vmsup(1)).
 */

#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-cli-format.h"
#include "vmsup-cli-output.h"
#include "vmsup-cli-progress.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-jsonrpc-client.h"
#include "vmsup-paths.h"

/* documented in vmsup(1); scripts rely on them */
typedef enum {
	VMSUP_CLI_EXIT_OK = 0,
	VMSUP_CLI_EXIT_FAILURE = 1,
	VMSUP_CLI_EXIT_USAGE = 2,
	VMSUP_CLI_EXIT_NOT_FOUND = 3,
	VMSUP_CLI_EXIT_ALREADY_EXISTS = 4,
	VMSUP_CLI_EXIT_INVALID_ARGUMENT = 5,
	VMSUP_CLI_EXIT_BUSY = 6,
	VMSUP_CLI_EXIT_FAILED_PRECONDITION = 7,
	VMSUP_CLI_EXIT_CANCELLED = 8,
	VMSUP_CLI_EXIT_TIMEOUT = 9,
	VMSUP_CLI_EXIT_NO_DAEMON = 10,
	VMSUP_CLI_EXIT_DOWN = 11, /* vmsup health: the VM is down */
} VmsupCliExit;

typedef struct {
	/* global options, also accepted after the verb */
	gchar *socket_path;
	gboolean system;
	gboolean json;
	gboolean quiet;
	/* table options, for the verbs that set their columns before parsing */
	const VmsupCliColumn *table_columns;
	gchar *output; /* -o: the columns, comma-separated */
	gboolean no_headers;
	const gchar *verb; /* "create", "ops list", ... for messages */
	VmsupJsonrpcClient *client;
} VmsupCli;

typedef gint (*VmsupCliVerbFunc)(VmsupCli *cli, gint argc, gchar **argv);

typedef struct {
	const gchar *name;
	const gchar *summary; /* N_() */
	VmsupCliVerbFunc func;
} VmsupCliVerb;

static void
vmsup_cli_clear(VmsupCli *cli)
{
	g_clear_pointer(&cli->socket_path, g_free);
	g_clear_pointer(&cli->output, g_free);
	g_clear_object(&cli->client);
}

/* errors */

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

static gint
vmsup_cli_report_error(VmsupCli *cli, const GError *error)
{
	const gchar *kind =
	    error->domain == VMSUP_ERROR ? vmsup_error_to_kind(error->code) : "internal";
	g_autofree gchar *hint = NULL;
	gboolean remote = vmsup_error_is_wire(error);

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

static gint
vmsup_cli_usage_error(VmsupCli *cli, const gchar *message)
{
	g_printerr("vmsup: %s\n", message);
	g_printerr(_("Run 'vmsup %s --help' to see how it is used.\n"), cli->verb);
	return VMSUP_CLI_EXIT_USAGE;
}

/* option parsing */

static JsonObject *
vmsup_cli_params_name(const gchar *name)
{
	JsonObject *params = json_object_new();
	json_object_set_string_member(params, "name", name);
	return params;
}

static void
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
static gboolean
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
static JsonObject *
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

/* talking to vmsupd */

static gboolean
vmsup_cli_connect(VmsupCli *cli, gint *out_exit)
{
	g_autofree gchar *path = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *env = g_getenv("VMSUP_SOCKET");
	/* D-Bus may start the session daemon, unless a socket was named */
	gboolean activate =
	    !cli->system && cli->socket_path == NULL && (env == NULL || *env == '\0');
	gboolean ok;

	if (cli->socket_path == NULL)
		cli->socket_path = vmsup_paths_socket(cli->system);
	path = g_strdup(cli->socket_path);
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

static void
vmsup_cli_print_json_object(JsonObject *obj)
{
	g_autoptr(JsonNode) node = vmsup_json_node_new_object(obj);
	vmsup_cli_print_json(node);
}

/* connects when needed, calls, reports a failure; NULL then with *out_exit set */
static JsonObject *
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
static gboolean
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

static void
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
static VmsupCliTable *
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
static void G_GNUC_PRINTF(2, 3) vmsup_cli_confirm(VmsupCli *cli, const gchar *format, ...)
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

static void
vmsup_cli_print_table(VmsupCliTable *table)
{
	g_autofree gchar *text = vmsup_cli_table_to_string(table);
	vmsup_cli_print_text(text);
}

/* the objects (unowned) in the array @member of @obj; NULL when there is no such array */
static GPtrArray *
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

static gboolean
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
static void
vmsup_cli_set_int(JsonObject *params, const gchar *member, gint value)
{
	if (value >= 0)
		json_object_set_int_member(params, member, value);
}

/* --forward as "forward": "80,443" and repeated --forward both work */
static gboolean
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
static void
vmsup_cli_set_path(JsonObject *params, const gchar *member, const gchar *path)
{
	g_autofree gchar *abs = NULL;
	if (path == NULL)
		return;
	abs = g_canonicalize_filename(path, NULL);
	json_object_set_string_member(params, member, abs);
}

static const gchar *
vmsup_cli_get_str(JsonObject *obj, const gchar *member)
{
	return vmsup_json_object_get_string(obj, member, NULL);
}

static gchar *
vmsup_cli_member_text(JsonObject *obj, const gchar *member)
{
	return vmsup_cli_format_value(json_object_get_member(obj, member));
}

/* vm verbs */

/*
 * The columns of 'vmsup list' and the member each shows: all that 'vmsup
 * list' asks vmsupd for. Cells keep vmsupd's words (states too), so that
 * -o ... --no-headers reads the same in every language.
 */
static const VmsupCliColumn vmsup_cli_vm_columns[] = {
    {"name", N_("NAME")},
    {"state", N_("STATE")},
    {"cpus", N_("CPUS")},
    {"memory", N_("MEMORY")},
    {"accel", N_("ACCEL")},
    {"pid", N_("PID")},
    {"autostart", N_("AUTOSTART")},
    {"auto-stop", N_("AUTO-STOP")},
    {"created", N_("CREATED")},
    {NULL, NULL},
};
static const gchar *const vmsup_cli_vm_column_members[] =
    {"name", "state", "cpus", "memory_mib", "accel", "pid", "autostart", "auto_stop", "created"};
#define VMSUP_CLI_VM_DEFAULT_COLUMNS "name,state,cpus,memory,accel,pid"

static void
vmsup_cli_print_vm_table(VmsupCliTable *table, GPtrArray *vms)
{
	for (guint i = 0; i < vms->len; i++) {
		JsonObject *vm = g_ptr_array_index(vms, i);
		g_autofree gchar *cpus = vmsup_cli_member_text(vm, "cpus");
		g_autofree gchar *memory = NULL;
		g_autofree gchar *pid = NULL;
		g_autofree gchar *autostart = NULL;
		g_autofree gchar *auto_stop = NULL;
		const gchar *cells[G_N_ELEMENTS(vmsup_cli_vm_column_members)];

		if (json_object_has_member(vm, "memory_mib"))
			memory = g_strdup_printf(
			    _("%lld MiB"),
			    (long long)vmsup_json_object_get_int(vm, "memory_mib", 0));
		if (vmsup_json_object_get_int(vm, "pid", 0) > 0)
			pid = vmsup_cli_member_text(vm, "pid");
		if (json_object_has_member(vm, "autostart"))
			autostart = vmsup_cli_member_text(vm, "autostart");
		if (json_object_has_member(vm, "auto_stop"))
			auto_stop = vmsup_cli_member_text(vm, "auto_stop");
		cells[0] = vmsup_cli_get_str(vm, "name");
		cells[1] = vmsup_cli_get_str(vm, "state");
		cells[2] = cpus;
		cells[3] = memory;
		cells[4] = vmsup_cli_get_str(vm, "accel");
		cells[5] = pid;
		cells[6] = autostart;
		cells[7] = auto_stop;
		cells[8] = vmsup_cli_get_str(vm, "created");
		vmsup_cli_table_add_row(table, cells);
	}
	vmsup_cli_print_table(table);
}

/*
 * vm.list with only @fields in each VM: with many VMs, building, sending and
 * parsing the members nobody shows is most of the work. A vmsupd older than
 * "fields" refuses it as an invalid parameter; then it is asked for all.
 */
static JsonObject *
vmsup_cli_list_vms(VmsupCli *cli, const gchar *const *fields, gint *out_exit)
{
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonArray) members = json_array_new();
	g_autoptr(GError) error = NULL;
	JsonObject *result;

	for (guint i = 0; fields[i] != NULL; i++)
		json_array_add_string_element(members, fields[i]);
	json_object_set_array_member(params, "fields", g_steal_pointer(&members));
	if (cli->client == NULL && !vmsup_cli_connect(cli, out_exit))
		return NULL;
	result = vmsup_jsonrpc_client_call_object(cli->client, "vm.list", params, &error);
	if (result != NULL) {
		*out_exit = VMSUP_CLI_EXIT_OK;
		return result;
	}
	if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS)) {
		g_debug("vmsupd refused vm.list's fields (%s); asking for whole VMs",
			error->message);
		return vmsup_cli_call(cli, "vm.list", NULL, out_exit);
	}
	*out_exit = vmsup_cli_report_error(cli, error);
	return NULL;
}

static gint
vmsup_cli_list(VmsupCli *cli, gint argc, gchar **argv)
{
	static const gchar *const name_only[] = {"name", NULL};
	gboolean opt_names = FALSE;
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(GPtrArray) vms = NULL;
	g_autoptr(GString) names = NULL;
	g_autoptr(VmsupCliTable) table = NULL;
	g_autoptr(GPtrArray) fields = g_ptr_array_new();
	const GOptionEntry entries[] = {
	    {"names",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_names,
	     N_("Print only the names, one per line"),
	     NULL},
	    {NULL},
	};

	cli->table_columns = vmsup_cli_vm_columns;
	if (!vmsup_cli_parse(cli, &argc, &argv, NULL, N_("List the VMs"), entries, 0, NULL, &rc))
		return rc;
	if (!opt_names) {
		table = vmsup_cli_new_table(cli,
					    vmsup_cli_vm_columns,
					    VMSUP_CLI_VM_DEFAULT_COLUMNS,
					    &rc);
		if (table == NULL)
			return rc;
	}
	/* --json prints whole VMs, as scripts have always seen them */
	if (cli->json) {
		vmsup_cli_call_for_people(cli, "vm.list", NULL, &result, &rc);
		return rc;
	}
	for (guint i = 0; table != NULL && i < vmsup_cli_table_get_n_columns(table); i++) {
		const gchar *member =
		    vmsup_cli_vm_column_members[vmsup_cli_table_get_source(table, i)];
		if (!g_ptr_array_find_with_equal_func(fields, member, g_str_equal, NULL))
			g_ptr_array_add(fields, (gpointer)member);
	}
	g_ptr_array_add(fields, NULL);
	result = vmsup_cli_list_vms(cli,
				    opt_names ? name_only : (const gchar *const *)fields->pdata,
				    &rc);
	if (result == NULL)
		return rc;
	vms = vmsup_cli_get_objects(result, "vms");
	if (vms == NULL)
		return rc;
	if (!opt_names) {
		vmsup_cli_print_vm_table(table, vms);
		return rc;
	}
	names = g_string_new(NULL);
	for (guint i = 0; i < vms->len; i++) {
		const gchar *name = vmsup_cli_get_str(g_ptr_array_index(vms, i), "name");
		if (name != NULL)
			g_string_append_printf(names, "%s\n", name);
	}
	vmsup_cli_print_text(names->str);
	return rc;
}

static gint
vmsup_cli_show_object_verb(VmsupCli *cli,
			   gint argc,
			   gchar **argv,
			   const gchar *summary,
			   const gchar *method,
			   const VmsupCliField *fields)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;

	params = vmsup_cli_parse_name(cli, &argc, &argv, _("the VM name"), summary, NULL, &rc);
	if (params == NULL || !vmsup_cli_call_for_people(cli, method, params, &result, &rc))
		return rc;
	vmsup_cli_print_fields(result, fields);
	return rc;
}

/* the members of vm.get, labelled as 'vmsup get' shows them */
static const VmsupCliField vmsup_cli_vm_fields[] = {
    {"name", N_("Name"), VMSUP_CLI_VALUE_PLAIN},
    {"state", N_("State"), VMSUP_CLI_VALUE_STATE},
    {"cpus", N_("CPUs"), VMSUP_CLI_VALUE_PLAIN},
    {"memory_mib", N_("Memory"), VMSUP_CLI_VALUE_MIB},
    {"accel", N_("Accelerator"), VMSUP_CLI_VALUE_PLAIN},
    {"pid", N_("Process"), VMSUP_CLI_VALUE_PLAIN},
    {"auto_stop", N_("Stop when idle"), VMSUP_CLI_VALUE_PLAIN},
    {"autostart", N_("Start with vmsupd"), VMSUP_CLI_VALUE_PLAIN},
    {"cpu_quota_percent", N_("CPU quota"), VMSUP_CLI_VALUE_PERCENT},
    {"memory_max_mib", N_("Memory cap"), VMSUP_CLI_VALUE_MIB},
    {"created", N_("Created"), VMSUP_CLI_VALUE_PLAIN},
    {"started_at", N_("Started"), VMSUP_CLI_VALUE_PLAIN},
    {"stopped_at", N_("Stopped"), VMSUP_CLI_VALUE_PLAIN},
    {"exit_reason", N_("Exit reason"), VMSUP_CLI_VALUE_PLAIN},
    {"exit_status", N_("Exit status"), VMSUP_CLI_VALUE_PLAIN},
    {"exit_signal", N_("Exit signal"), VMSUP_CLI_VALUE_PLAIN},
    {"last_error", N_("Last error"), VMSUP_CLI_VALUE_PLAIN},
    {"kernel", N_("Kernel"), VMSUP_CLI_VALUE_PLAIN},
    {"initrd", N_("Initial ramdisk"), VMSUP_CLI_VALUE_PLAIN},
    {"cmdline", N_("Kernel command line"), VMSUP_CLI_VALUE_PLAIN},
    {"image", N_("Image"), VMSUP_CLI_VALUE_PLAIN},
    {"disk", N_("Disk"), VMSUP_CLI_VALUE_PLAIN},
    {"disk_gib", N_("Disk size"), VMSUP_CLI_VALUE_GIB},
    {"forward", N_("Forwarded ports"), VMSUP_CLI_VALUE_PLAIN},
    {"forwards", N_("Forwarded ports"), VMSUP_CLI_VALUE_PLAIN},
    {"share_dir", N_("Shared directory"), VMSUP_CLI_VALUE_PLAIN},
    {"owner_uid", N_("Owner"), VMSUP_CLI_VALUE_PLAIN},
    {"idle_s", N_("Idle for"), VMSUP_CLI_VALUE_SECONDS},
    {"idle_reason", N_("Idle because"), VMSUP_CLI_VALUE_PLAIN},
    {"active_reason", N_("Active because"), VMSUP_CLI_VALUE_PLAIN},
    {"last_active", N_("Last active"), VMSUP_CLI_VALUE_PLAIN},
    {"auto_stop_in_s", N_("Stops when idle in"), VMSUP_CLI_VALUE_SECONDS},
    {"ready_ms", N_("Ready after"), VMSUP_CLI_VALUE_MS},
    {"cgroup", N_("Cgroup"), VMSUP_CLI_VALUE_CGROUP},
    {"limits_available", N_("Limits available"), VMSUP_CLI_VALUE_PLAIN},
    {NULL, NULL, 0},
};

static gint
vmsup_cli_get(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_show_object_verb(cli,
					  argc,
					  argv,
					  N_("Show one VM"),
					  "vm.get",
					  vmsup_cli_vm_fields);
}

static gint
vmsup_cli_health(VmsupCli *cli, gint argc, gchar **argv)
{
	const VmsupCliField fields[] = {
	    {"status", N_("Status"), VMSUP_CLI_VALUE_STATE},
	    {"process", N_("QEMU process"), VMSUP_CLI_VALUE_PLAIN},
	    {"qmp", N_("QEMU monitor"), VMSUP_CLI_VALUE_PLAIN},
	    {"agent", N_("Guest agent"), VMSUP_CLI_VALUE_PLAIN},
	    {"agent_rtt_ms", N_("Agent round trip"), VMSUP_CLI_VALUE_MS},
	    {"detail", N_("Detail"), VMSUP_CLI_VALUE_PLAIN},
	    {NULL, NULL, 0},
	};
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;

	params = vmsup_cli_parse_name(
	    cli,
	    &argc,
	    &argv,
	    _("the VM name"),
	    N_("Check that a VM's process, QEMU monitor and guest agent answer"),
	    NULL,
	    &rc);
	if (params == NULL)
		return rc;
	result = vmsup_cli_call(cli, "vm.health", params, &rc);
	if (result == NULL)
		return rc;
	if (cli->json)
		vmsup_cli_print_json_object(result);
	else
		vmsup_cli_print_fields(result, fields);
	/* scripts ask `vmsup health` whether the VM is up */
	if (g_strcmp0(vmsup_json_object_get_string(result, "status", NULL), "down") == 0)
		return VMSUP_CLI_EXIT_DOWN;
	return rc;
}

static gint
vmsup_cli_stats(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	const VmsupCliField fields[] = {
	    {"state", N_("State"), VMSUP_CLI_VALUE_STATE},
	    {"cpu_percent", N_("CPU"), VMSUP_CLI_VALUE_PERCENT},
	    {"rss_bytes", N_("Memory in use"), VMSUP_CLI_VALUE_BYTES},
	    {"memory_mib", N_("Memory"), VMSUP_CLI_VALUE_MIB},
	    {"block_read_bytes", N_("Disk read"), VMSUP_CLI_VALUE_BYTES},
	    {"block_write_bytes", N_("Disk written"), VMSUP_CLI_VALUE_BYTES},
	    {"net_rx_bytes", N_("Network received"), VMSUP_CLI_VALUE_BYTES},
	    {"net_tx_bytes", N_("Network sent"), VMSUP_CLI_VALUE_BYTES},
	    {"uptime_s", N_("Uptime"), VMSUP_CLI_VALUE_SECONDS},
	    {"sampled_at", N_("Sampled at"), VMSUP_CLI_VALUE_PLAIN},
	    {NULL, NULL, 0},
	};

	params = vmsup_cli_parse_name(cli,
				      &argc,
				      &argv,
				      _("the VM name"),
				      N_("Show what a VM is using: CPU, memory, disk and network"),
				      NULL,
				      &rc);
	if (params == NULL || !vmsup_cli_call_for_people(cli, "vm.stats", params, &result, &rc))
		return rc;
	vmsup_cli_print_fields(result, fields);
	return rc;
}

static gint
vmsup_cli_ping(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;

	params = vmsup_cli_parse_name(cli,
				      &argc,
				      &argv,
				      _("the VM name"),
				      N_("Ping a VM's guest agent"),
				      NULL,
				      &rc);
	if (params == NULL || !vmsup_cli_call_for_people(cli, "vm.ping", params, &result, &rc))
		return rc;
	vmsup_cli_confirm(cli,
			  _("The guest agent of VM '%s' answered in %.1f ms\n"),
			  argv[1],
			  vmsup_json_object_get_double(result, "rtt_ms", 0));
	return rc;
}

static gint
vmsup_cli_ports(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(VmsupCliTable) table = NULL;
	g_autoptr(GPtrArray) ports = NULL;
	static const VmsupCliColumn columns[] = {
	    {"guest-port", N_("GUEST PORT")},
	    {"proto", N_("PROTO")},
	    {"guest-address", N_("GUEST ADDRESS")},
	    {"host", N_("HOST")},
	    {"web", N_("WEB")},
	    {"url", N_("URL")},
	    {NULL, NULL},
	};

	cli->table_columns = columns;
	params = vmsup_cli_parse_name(
	    cli,
	    &argc,
	    &argv,
	    _("the VM name"),
	    N_("List the TCP ports a VM listens on and how the host reaches them"),
	    NULL,
	    &rc);
	if (params == NULL)
		return rc;
	table = vmsup_cli_new_table(cli, columns, NULL, &rc);
	if (table == NULL || !vmsup_cli_call_for_people(cli, "vm.ports", params, &result, &rc))
		return rc;
	ports = vmsup_cli_get_objects(result, "ports");
	for (guint i = 0; ports != NULL && i < ports->len; i++) {
		JsonObject *port = g_ptr_array_index(ports, i);
		g_autofree gchar *guest_port = vmsup_cli_member_text(port, "guest_port");
		g_autofree gchar *host = NULL;
		g_autofree gchar *web = NULL;
		const gchar *cells[6];

		if (vmsup_json_object_get_int(port, "host_port", 0) > 0)
			host = g_strdup_printf(
			    "%s:%" G_GINT64_FORMAT,
			    vmsup_json_object_get_string(port, "host_address", "127.0.0.1"),
			    vmsup_json_object_get_int(port, "host_port", 0));
		if (vmsup_json_object_get_bool(port, "web", FALSE))
			web = g_strdup(vmsup_json_object_get_string(port, "scheme", _("yes")));
		else
			web = g_strdup(_("no"));
		cells[0] = guest_port;
		cells[1] = vmsup_cli_get_str(port, "proto");
		cells[2] = vmsup_cli_get_str(port, "guest_address");
		cells[3] = host;
		cells[4] = web;
		cells[5] = vmsup_cli_get_str(port, "url");
		vmsup_cli_table_add_row(table, cells);
	}
	vmsup_cli_print_table(table);
	return rc;
}

/*
 * A verb that takes only the VM's name and answers with the VM (start,
 * pause, resume): TRUE once it did, with the name it was given
 */
static gboolean
vmsup_cli_vm_verb(VmsupCli *cli,
		  gint argc,
		  gchar **argv,
		  const gchar *method,
		  const gchar *summary,
		  const gchar **out_name,
		  gint *rc)
{
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;

	params = vmsup_cli_parse_name(cli, &argc, &argv, _("the VM name"), summary, NULL, rc);
	if (params == NULL || !vmsup_cli_call_for_people(cli, method, params, &result, rc))
		return FALSE;
	*out_name = argv[1];
	return TRUE;
}

static gint
vmsup_cli_start(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	const gchar *name = NULL;

	if (vmsup_cli_vm_verb(cli, argc, argv, "vm.start", N_("Start a VM"), &name, &rc))
		vmsup_cli_confirm(cli, _("VM '%s' started\n"), name);
	return rc;
}

static gint
vmsup_cli_pause(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	const gchar *name = NULL;

	if (vmsup_cli_vm_verb(cli, argc, argv, "vm.pause", N_("Pause a running VM"), &name, &rc))
		vmsup_cli_confirm(cli, _("VM '%s' paused\n"), name);
	return rc;
}

static gint
vmsup_cli_resume(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	const gchar *name = NULL;

	if (vmsup_cli_vm_verb(cli, argc, argv, "vm.resume", N_("Resume a paused VM"), &name, &rc))
		vmsup_cli_confirm(cli, _("VM '%s' resumed\n"), name);
	return rc;
}

static gint
vmsup_cli_stop(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gboolean opt_force = FALSE;
	gint opt_timeout = -1;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	const GOptionEntry entries[] = {
	    {"force",
	     'f',
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_force,
	     N_("Kill QEMU instead of asking the guest to power off"),
	     NULL},
	    {"timeout",
	     't',
	     0,
	     G_OPTION_ARG_INT,
	     &opt_timeout,
	     N_("Seconds the guest gets to power off before QEMU is stopped (default 30)"),
	     N_("SECONDS")},
	    {NULL},
	};

	params = vmsup_cli_parse_name(cli,
				      &argc,
				      &argv,
				      _("the VM name"),
				      N_("Stop a VM"),
				      entries,
				      &rc);
	if (params == NULL)
		return rc;
	if (opt_force)
		json_object_set_boolean_member(params, "force", TRUE);
	vmsup_cli_set_int(params, "timeout_s", opt_timeout);
	if (vmsup_cli_call_for_people(cli, "vm.stop", params, &result, &rc))
		vmsup_cli_confirm(cli, _("VM '%s' stopped\n"), argv[1]);
	return rc;
}

static gint
vmsup_cli_delete(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gboolean opt_force = FALSE;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	const GOptionEntry entries[] = {
	    {"force",
	     'f',
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_force,
	     N_("Delete the VM even while it runs (it is stopped first)"),
	     NULL},
	    {NULL},
	};

	params = vmsup_cli_parse_name(cli,
				      &argc,
				      &argv,
				      _("the VM name"),
				      N_("Delete a VM and its disk"),
				      entries,
				      &rc);
	if (params == NULL)
		return rc;
	if (opt_force)
		json_object_set_boolean_member(params, "force", TRUE);
	if (vmsup_cli_call_for_people(cli, "vm.delete", params, &result, &rc))
		vmsup_cli_confirm(cli, _("VM '%s' deleted\n"), argv[1]);
	return rc;
}

/* a limit as given, unchecked: 0 clears it, and the daemon refuses what it cannot take */
#define VMSUP_CLI_NO_LIMIT G_MININT

static void
vmsup_cli_set_limits(JsonObject *params, gint cpu_quota, gint memory_max)
{
	if (cpu_quota != VMSUP_CLI_NO_LIMIT)
		json_object_set_int_member(params, "cpu_quota_percent", cpu_quota);
	if (memory_max != VMSUP_CLI_NO_LIMIT)
		json_object_set_int_member(params, "memory_max_mib", memory_max);
}

static gint
vmsup_cli_set(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gint opt_cpus = -1;
	gint opt_memory = -1;
	g_autofree gchar *opt_cmdline = NULL;
	g_auto(GStrv) opt_forward = NULL;
	gboolean opt_auto_stop = FALSE;
	gboolean opt_no_auto_stop = FALSE;
	gboolean opt_autostart = FALSE;
	gboolean opt_no_autostart = FALSE;
	gint opt_cpu_quota = VMSUP_CLI_NO_LIMIT;
	gint opt_memory_max = VMSUP_CLI_NO_LIMIT;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	JsonNode *pending;
	JsonNode *applied;
	const GOptionEntry entries[] = {
	    {"cpus", 0, 0, G_OPTION_ARG_INT, &opt_cpus, N_("Number of virtual CPUs"), N_("N")},
	    {"memory", 'm', 0, G_OPTION_ARG_INT, &opt_memory, N_("Guest memory in MiB"), N_("MIB")},
	    {"cmdline",
	     0,
	     0,
	     G_OPTION_ARG_STRING,
	     &opt_cmdline,
	     N_("Kernel command line"),
	     N_("TEXT")},
	    {"forward",
	     'p',
	     0,
	     G_OPTION_ARG_STRING_ARRAY,
	     &opt_forward,
	     N_("Guest TCP ports to forward from the host (repeat or separate with commas)"),
	     N_("PORT")},
	    {"auto-stop",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_auto_stop,
	     N_("Let vmsupd stop the VM when it has been idle for long"),
	     NULL},
	    {"no-auto-stop",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_no_auto_stop,
	     N_("Never stop the VM for being idle"),
	     NULL},
	    {"autostart",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_autostart,
	     N_("Start the VM when vmsupd starts"),
	     NULL},
	    {"no-autostart",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_no_autostart,
	     N_("Do not start the VM when vmsupd starts"),
	     NULL},
	    {"cpu-quota",
	     0,
	     0,
	     G_OPTION_ARG_INT,
	     &opt_cpu_quota,
	     N_("CPU time QEMU may use, in percent of one host CPU (150: one and a half; 0: "
		"no quota)"),
	     N_("PERCENT")},
	    {"memory-max",
	     0,
	     0,
	     G_OPTION_ARG_INT,
	     &opt_memory_max,
	     N_("Cap on all of QEMU's memory in MiB, at least the guest's + 64 (0: none)"),
	     N_("MIB")},
	    {NULL},
	};

	params =
	    vmsup_cli_parse_name(cli,
				 &argc,
				 &argv,
				 _("the VM name"),
				 N_("Change a VM's settings; what cannot change live applies at "
				    "its next start"),
				 entries,
				 &rc);
	if (params == NULL)
		return rc;
	if ((opt_auto_stop && opt_no_auto_stop) || (opt_autostart && opt_no_autostart))
		return vmsup_cli_usage_error(cli,
					     _("An option and its --no- form exclude each other"));
	vmsup_cli_set_int(params, "cpus", opt_cpus);
	vmsup_cli_set_int(params, "memory_mib", opt_memory);
	if (opt_cmdline != NULL)
		json_object_set_string_member(params, "cmdline", opt_cmdline);
	if (!vmsup_cli_set_ports(cli, params, opt_forward, &rc))
		return rc;
	if (opt_auto_stop || opt_no_auto_stop)
		json_object_set_boolean_member(params, "auto_stop", opt_auto_stop);
	if (opt_autostart || opt_no_autostart)
		json_object_set_boolean_member(params, "autostart", opt_autostart);
	vmsup_cli_set_limits(params, opt_cpu_quota, opt_memory_max);
	if (json_object_get_size(params) == 1)
		return vmsup_cli_usage_error(cli, _("Nothing to change: give at least one option"));
	if (!vmsup_cli_call_for_people(cli, "vm.set", params, &result, &rc))
		return rc;
	vmsup_cli_confirm(cli, _("VM '%s' updated\n"), argv[1]);
	pending = json_object_get_member(result, "pending_restart");
	if (pending != NULL && JSON_NODE_HOLDS_ARRAY(pending) &&
	    json_array_get_length(json_node_get_array(pending)) > 0) {
		g_autofree gchar *fields = vmsup_cli_format_value(pending);
		vmsup_cli_confirm(cli, _("These take effect at the next start: %s\n"), fields);
	}
	applied = json_object_get_member(result, "applied");
	if (applied != NULL && JSON_NODE_HOLDS_ARRAY(applied) &&
	    json_array_get_length(json_node_get_array(applied)) > 0) {
		g_autofree gchar *fields = vmsup_cli_format_value(applied);
		vmsup_cli_confirm(cli, _("In effect now: %s\n"), fields);
	}
	return rc;
}

/* create */

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

static gint64
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
static GError *
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

/* @created: vm.create's answer, what --json prints once the operation is done */
static gint
vmsup_cli_create_finish(VmsupCli *cli,
			const gchar *name,
			JsonObject *op,
			JsonObject *created,
			gboolean start)
{
	const gchar *state = vmsup_json_object_get_string(op, "state", "");
	g_autoptr(GError) error = NULL;

	if (g_strcmp0(state, "done") == 0) {
		if (cli->json)
			vmsup_cli_print_json_object(created);
		else if (start)
			vmsup_cli_confirm(cli, _("VM '%s' created and started\n"), name);
		else
			vmsup_cli_confirm(cli,
					  _("VM '%s' created; start it with 'vmsup start %s'\n"),
					  name,
					  name);
		return VMSUP_CLI_EXIT_OK;
	}
	if (g_strcmp0(state, "cancelled") == 0)
		error = g_error_new(VMSUP_ERROR,
				    VMSUP_ERROR_CANCELLED,
				    _("Creating VM '%s' was cancelled"),
				    name);
	else
		error = vmsup_cli_operation_error(op);
	return vmsup_cli_report_error(cli, error);
}

/*
 * Waits for operation @id, drawing its progress from events (or, should
 * vmsupd not send them, from polling op.get). The first Ctrl-C asks vmsupd
 * to cancel, a second one leaves at once.
 */
/* what a waited operation's end prints: @answer is the request's, @op the final op.get */
typedef gint (*VmsupCliOpFinishFunc)(VmsupCli *cli,
				     const gchar *name,
				     JsonObject *op,
				     JsonObject *answer,
				     gboolean flag);

static gint
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

/* a file the CLI reads for vmsupd: UTF-8 text of at most @max bytes, or NULL with a usage error */
static gchar *
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

/* --firmware, --ssh-key FILE… and --user-data FILE as vm.create's members; vmsupd checks them */
static gboolean
vmsup_cli_set_cloud_init(VmsupCli *cli,
			 JsonObject *params,
			 const gchar *firmware,
			 gchar **ssh_keys,
			 const gchar *user_data,
			 gint *out_exit)
{
	if (firmware != NULL)
		json_object_set_string_member(params, "firmware", firmware);
	if (ssh_keys != NULL) {
		g_autoptr(JsonArray) keys = json_array_new();
		for (guint i = 0; ssh_keys[i] != NULL; i++) {
			g_autofree gchar *key =
			    vmsup_cli_read_text_file(cli, ssh_keys[i], 16 * 1024, out_exit);
			if (key == NULL)
				return FALSE;
			json_array_add_string_element(keys, g_strstrip(key));
		}
		json_object_set_array_member(params, "ssh_keys", g_steal_pointer(&keys));
	}
	if (user_data != NULL) {
		g_autofree gchar *text =
		    vmsup_cli_read_text_file(cli, user_data, 64 * 1024, out_exit);
		if (text == NULL)
			return FALSE;
		json_object_set_string_member(params, "user_data", text);
	}
	return TRUE;
}

static gint
vmsup_cli_create(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gint opt_cpus = -1;
	gint opt_memory = -1;
	gint opt_disk = -1;
	g_autofree gchar *opt_kernel = NULL;
	g_autofree gchar *opt_initrd = NULL;
	g_autofree gchar *opt_cmdline = NULL;
	g_autofree gchar *opt_image = NULL;
	g_auto(GStrv) opt_forward = NULL;
	gboolean opt_no_auto_stop = FALSE;
	gboolean opt_autostart = FALSE;
	gboolean opt_start = FALSE;
	gboolean opt_no_wait = FALSE;
	gint opt_cpu_quota = VMSUP_CLI_NO_LIMIT;
	gint opt_memory_max = VMSUP_CLI_NO_LIMIT;
	g_autofree gchar *opt_firmware = NULL;
	g_auto(GStrv) opt_ssh_keys = NULL;
	g_autofree gchar *opt_user_data = NULL;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) subscribed = NULL;
	gint64 id;
	const GOptionEntry entries[] = {
	    {"cpus",
	     0,
	     0,
	     G_OPTION_ARG_INT,
	     &opt_cpus,
	     N_("Number of virtual CPUs (default 1)"),
	     N_("N")},
	    {"memory",
	     'm',
	     0,
	     G_OPTION_ARG_INT,
	     &opt_memory,
	     N_("Guest memory in MiB (default 256)"),
	     N_("MIB")},
	    {"kernel",
	     0,
	     0,
	     G_OPTION_ARG_FILENAME,
	     &opt_kernel,
	     N_("Kernel to boot instead of the bundled guest's"),
	     N_("FILE")},
	    {"initrd", 0, 0, G_OPTION_ARG_FILENAME, &opt_initrd, N_("Initial ramdisk"), N_("FILE")},
	    {"cmdline",
	     0,
	     0,
	     G_OPTION_ARG_STRING,
	     &opt_cmdline,
	     N_("Kernel command line"),
	     N_("TEXT")},
	    {"image",
	     0,
	     0,
	     G_OPTION_ARG_FILENAME,
	     &opt_image,
	     N_("Disk image to boot, a file or a stored image's name; the VM writes to an "
		"overlay, never to it"),
	     N_("FILE")},
	    {"disk-gib",
	     0,
	     0,
	     G_OPTION_ARG_INT,
	     &opt_disk,
	     N_("Size of the VM's disk in GiB"),
	     N_("GIB")},
	    {"forward",
	     'p',
	     0,
	     G_OPTION_ARG_STRING_ARRAY,
	     &opt_forward,
	     N_("Guest TCP ports to forward from the host (repeat or separate with commas)"),
	     N_("PORT")},
	    {"no-auto-stop",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_no_auto_stop,
	     N_("Never stop the VM for being idle"),
	     NULL},
	    {"autostart",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_autostart,
	     N_("Start the VM whenever vmsupd starts"),
	     NULL},
	    {"cpu-quota",
	     0,
	     0,
	     G_OPTION_ARG_INT,
	     &opt_cpu_quota,
	     N_("CPU time QEMU may use, in percent of one host CPU (150: one and a half; 0: "
		"no quota)"),
	     N_("PERCENT")},
	    {"memory-max",
	     0,
	     0,
	     G_OPTION_ARG_INT,
	     &opt_memory_max,
	     N_("Cap on all of QEMU's memory in MiB, at least the guest's + 64 (0: none)"),
	     N_("MIB")},
	    /* a VM from an image: firmware and cloud-init */
	    {"firmware",
	     0,
	     0,
	     G_OPTION_ARG_STRING,
	     &opt_firmware,
	     N_("Firmware of a VM made from an image: bios or uefi (default: uefi when the image "
		"has an EFI system partition)"),
	     N_("bios|uefi")},
	    {"ssh-key",
	     0,
	     0,
	     G_OPTION_ARG_FILENAME_ARRAY,
	     &opt_ssh_keys,
	     N_("OpenSSH public key file to authorize in the guest as well (repeatable)"),
	     N_("FILE")},
	    {"user-data",
	     0,
	     0,
	     G_OPTION_ARG_FILENAME,
	     &opt_user_data,
	     N_("cloud-config file for the guest's cloud-init (first line #cloud-config)"),
	     N_("FILE")},
	    {"start",
	     's',
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_start,
	     N_("Start the VM once it is created"),
	     NULL},
	    {"no-wait",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_no_wait,
	     N_("Return at once with the operation id instead of waiting"),
	     NULL},
	    {NULL},
	};

	params = vmsup_cli_parse_name(cli,
				      &argc,
				      &argv,
				      _("the VM name"),
				      N_("Create a VM; without --kernel and --image it runs the "
					 "bundled guest"),
				      entries,
				      &rc);
	if (params == NULL)
		return rc;
	vmsup_cli_set_int(params, "cpus", opt_cpus);
	vmsup_cli_set_int(params, "memory_mib", opt_memory);
	vmsup_cli_set_int(params, "disk_gib", opt_disk);
	vmsup_cli_set_path(params, "kernel", opt_kernel);
	vmsup_cli_set_path(params, "initrd", opt_initrd);
	/* a name without '/' is a stored image's ('vmsup image list'), a path anything else */
	if (opt_image != NULL && strchr(opt_image, '/') == NULL)
		json_object_set_string_member(params, "image", opt_image);
	else
		vmsup_cli_set_path(params, "image", opt_image);
	if (opt_cmdline != NULL)
		json_object_set_string_member(params, "cmdline", opt_cmdline);
	if (!vmsup_cli_set_ports(cli, params, opt_forward, &rc))
		return rc;
	if (opt_no_auto_stop)
		json_object_set_boolean_member(params, "auto_stop", FALSE);
	if (opt_autostart)
		json_object_set_boolean_member(params, "autostart", TRUE);
	vmsup_cli_set_limits(params, opt_cpu_quota, opt_memory_max);
	if (!vmsup_cli_set_cloud_init(cli, params, opt_firmware, opt_ssh_keys, opt_user_data, &rc))
		return rc;
	if (opt_start)
		json_object_set_boolean_member(params, "start", TRUE);

	if (opt_no_wait) {
		json_object_set_boolean_member(params, "wait", FALSE);
		if (!vmsup_cli_call_for_people(cli, "vm.create", params, &result, &rc))
			return rc;
		id = vmsup_cli_operation_id(result);
		/* the id is the result: -q prints it alone, for $(vmsup -q create --no-wait) */
		if (cli->quiet) {
			vmsup_cli_print("%lld\n", (long long)id);
			return rc;
		}
		vmsup_cli_print(
		    _("Creating VM '%s' as operation %lld; follow it with 'vmsup ops get "
		      "%lld'\n"),
		    argv[1],
		    (long long)id,
		    (long long)id);
		return rc;
	}

	if (!vmsup_cli_connect(cli, &rc))
		return rc;
	/* subscribe first so that no progress event can slip by; polling covers an old vmsupd */
	subscribed = vmsup_jsonrpc_client_call(cli->client, "events.subscribe", NULL, &error);
	if (subscribed == NULL)
		g_debug("events.subscribe: %s; polling instead", error->message);
	/* the CLI waits, not the daemon: so Ctrl-C can still name the operation to cancel */
	json_object_set_boolean_member(params, "wait", FALSE);
	result = vmsup_cli_call(cli, "vm.create", params, &rc);
	if (result == NULL)
		return rc;
	id = vmsup_cli_operation_id(result);
	if (id <= 0) {
		g_printerr(_("vmsup: vmsupd did not say which operation creates VM '%s'\n"),
			   argv[1]);
		return VMSUP_CLI_EXIT_FAILURE;
	}
	return vmsup_cli_wait_operation(cli,
					argv[1],
					result,
					id,
					vmsup_cli_create_finish,
					opt_start);
}

/* exec */

/* all of stdin, NUL-terminated; FALSE with @out_error (GLib's words) when reading fails */
static gboolean
vmsup_cli_read_stdin(GByteArray **out_data, gchar **out_error)
{
	g_autoptr(GByteArray) data = g_byte_array_new();
	guint8 buf[16 * 1024];

	for (;;) {
		gssize n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			gint errsv = errno;
			*out_error = g_strdup_printf(
			    g_dgettext("glib20", "Error reading from file descriptor: %s"),
			    g_strerror(errsv));
			return FALSE;
		}
		if (n == 0)
			break;
		g_byte_array_append(data, buf, n);
	}
	g_byte_array_append(data, (const guint8 *)"", 1);
	*out_data = g_steal_pointer(&data);
	return TRUE;
}

static gint
vmsup_cli_exec(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gint opt_timeout = -1;
	gboolean opt_stdin = FALSE;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonArray) args = json_array_new();
	const gchar *out;
	const gchar *err;
	gint64 exit_code;
	gint first = 2;
	const GOptionEntry entries[] = {
	    {"timeout",
	     't',
	     0,
	     G_OPTION_ARG_INT,
	     &opt_timeout,
	     N_("Seconds the command may run (default 30)"),
	     N_("SECONDS")},
	    {"stdin",
	     'i',
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_stdin,
	     N_("Pass this program's standard input to the command"),
	     NULL},
	    {NULL},
	};

	if (!vmsup_cli_parse(cli,
			     &argc,
			     &argv,
			     N_("NAME [--] COMMAND [ARGUMENT…]"),
			     N_("Run a command in a VM through its guest agent; vmsup exits with "
				"the command's exit status"),
			     entries,
			     -1,
			     NULL,
			     &rc))
		return rc;
	if (argc > 2 && g_strcmp0(argv[2], "--") == 0)
		first = 3;
	if (argc < 2 || argc <= first)
		return vmsup_cli_usage_error(cli, _("Missing the VM name and the command to run"));
	params = vmsup_cli_params_name(argv[1]);
	for (gint i = first; i < argc; i++)
		json_array_add_string_element(args, argv[i]);
	json_object_set_array_member(params, "argv", g_steal_pointer(&args));
	vmsup_cli_set_int(params, "timeout_s", opt_timeout);
	if (opt_stdin) {
		g_autoptr(GByteArray) data = NULL;
		g_autofree gchar *read_error = NULL;
		if (!vmsup_cli_read_stdin(&data, &read_error))
			return vmsup_cli_usage_error(cli, read_error);
		/* like any C string, the command's input ends at a NUL byte */
		if (!g_utf8_validate((const gchar *)data->data, -1, NULL))
			return vmsup_cli_usage_error(cli, _("Standard input is not UTF-8 text"));
		json_object_set_string_member(params, "stdin", (const gchar *)data->data);
	}
	if (!vmsup_cli_call_for_people(cli, "vm.exec", params, &result, &rc))
		return rc;
	out = vmsup_json_object_get_string(result, "stdout", "");
	err = vmsup_json_object_get_string(result, "stderr", "");
	fputs(out, stdout);
	fflush(stdout);
	fputs(err, stderr);
	exit_code = vmsup_json_object_get_int(result, "exit_code", 0);
	return (gint)CLAMP(exit_code, 0, 255);
}

/* vmsup shell */

/* whether the guest's SSH server answers on @port: it sends its banner first */
static gboolean
vmsup_cli_ssh_answers(guint16 port)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketConnection) conn = NULL;
	gchar banner[4] = {0};
	gsize got = 0;

	g_socket_client_set_timeout(client, 5);
	conn = g_socket_client_connect_to_host(client, "127.0.0.1", port, NULL, NULL);
	if (conn == NULL)
		return FALSE;
	/* user-mode networking accepts at once, and closes when nothing listens in the guest */
	if (!g_input_stream_read_all(g_io_stream_get_input_stream(G_IO_STREAM(conn)),
				     banner,
				     sizeof(banner),
				     &got,
				     NULL,
				     NULL))
		return FALSE;
	return got == sizeof(banner) && memcmp(banner, "SSH-", 4) == 0;
}

/* execs ssh with what vm.ssh_info said; returns only when it could not */
static gint
vmsup_cli_exec_ssh(JsonObject *info, gchar **command)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
	const gchar *user = vmsup_json_object_get_string(info, "user", "vmsup");
	const gchar *host = vmsup_json_object_get_string(info, "host", "127.0.0.1");
	gint saved_errno;

	g_ptr_array_add(args, g_strdup("ssh"));
	g_ptr_array_add(args, g_strdup(isatty(STDIN_FILENO) ? "-t" : "-T"));
	g_ptr_array_add(args, g_strdup("-i"));
	g_ptr_array_add(args, g_strdup(vmsup_json_object_get_string(info, "identity_file", "")));
	g_ptr_array_add(args, g_strdup("-o"));
	g_ptr_array_add(args,
			g_strconcat("UserKnownHostsFile=",
				    vmsup_json_object_get_string(info, "known_hosts_file", ""),
				    NULL));
	g_ptr_array_add(args, g_strdup("-o"));
	g_ptr_array_add(args, g_strdup("StrictHostKeyChecking=yes"));
	g_ptr_array_add(args, g_strdup("-o"));
	g_ptr_array_add(args, g_strdup("GlobalKnownHostsFile=/dev/null"));
	g_ptr_array_add(args, g_strdup("-o"));
	g_ptr_array_add(args, g_strdup("IdentitiesOnly=yes"));
	g_ptr_array_add(args, g_strdup("-o"));
	g_ptr_array_add(args, g_strdup("BatchMode=yes"));
	g_ptr_array_add(args, g_strdup("-p"));
	g_ptr_array_add(
	    args,
	    g_strdup_printf("%" G_GINT64_FORMAT, vmsup_json_object_get_int(info, "port", 22)));
	g_ptr_array_add(args, g_strdup_printf("%s@%s", user, host));
	/* the guest's shell reads the command: each argument quoted, so it arrives as given */
	if (command != NULL && command[0] != NULL) {
		g_autoptr(GString) line = g_string_new(NULL);
		g_ptr_array_add(args, g_strdup("--"));
		for (guint i = 0; command[i] != NULL; i++) {
			g_autofree gchar *quoted = g_shell_quote(command[i]);
			if (i > 0)
				g_string_append_c(line, ' ');
			g_string_append(line, quoted);
		}
		g_ptr_array_add(args, g_string_free(g_steal_pointer(&line), FALSE));
	}
	g_ptr_array_add(args, NULL);
	fflush(stdout);
	fflush(stderr);
	execvp("ssh", (gchar **)args->pdata);
	saved_errno = errno;
	g_printerr(_("vmsup: cannot run ssh: %s; install OpenSSH's client (openssh-client)\n"),
		   g_strerror(saved_errno));
	return VMSUP_CLI_EXIT_FAILURE;
}

static gint
vmsup_cli_shell(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gint opt_timeout = 600;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) info = NULL;
	gint64 started = g_get_monotonic_time();
	gint64 deadline;
	gint64 next_note = 0;
	gint first = 2;
	const GOptionEntry entries[] = {
	    {"timeout",
	     't',
	     0,
	     G_OPTION_ARG_INT,
	     &opt_timeout,
	     N_("Seconds to wait for the guest's SSH server (default 600)"),
	     N_("SECONDS")},
	    {NULL},
	};

	if (!vmsup_cli_parse(cli,
			     &argc,
			     &argv,
			     N_("NAME [-- COMMAND [ARGUMENT…]]"),
			     N_("Log in to a VM made from an image over SSH, or run a command "
				"there; vmsup exits with the command's exit status"),
			     entries,
			     -1,
			     NULL,
			     &rc))
		return rc;
	if (argc < 2 || g_strcmp0(argv[1], "--") == 0)
		return vmsup_cli_usage_error(cli, _("Missing the VM name"));
	if (argc > 2 && g_strcmp0(argv[2], "--") == 0)
		first = 3;
	if (opt_timeout < 0)
		return vmsup_cli_usage_error(cli, _("--timeout must not be negative"));
	params = vmsup_cli_params_name(argv[1]);
	if (cli->json) {
		info = vmsup_cli_call(cli, "vm.ssh_info", params, &rc);
		if (info != NULL)
			vmsup_cli_print_json_object(info);
		return rc;
	}
	deadline = started + (gint64)opt_timeout * G_USEC_PER_SEC;
	for (;;) {
		g_autoptr(GError) error = NULL;
		gint64 now;
		if (cli->client == NULL && !vmsup_cli_connect(cli, &rc))
			return rc;
		g_clear_pointer(&info, json_object_unref);
		info = vmsup_jsonrpc_client_call_object(cli->client, "vm.ssh_info", params, &error);
		/* a VM being created or started is waited for; anything else is the answer */
		if (info == NULL && !g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_BUSY))
			return vmsup_cli_report_error(cli, error);
		if (info != NULL && vmsup_json_object_get_bool(info, "ready", FALSE) &&
		    vmsup_cli_ssh_answers((guint16)vmsup_json_object_get_int(info, "port", 0)))
			break;
		now = g_get_monotonic_time();
		if (now >= deadline) {
			g_printerr(_("vmsup: VM '%s' did not answer over SSH within %d s; 'vmsup "
				     "get %s' shows its state, and its console log is in its "
				     "runtime directory\n"),
				   argv[1],
				   opt_timeout,
				   argv[1]);
			return VMSUP_CLI_EXIT_TIMEOUT;
		}
		if (!cli->quiet && now >= next_note) {
			g_printerr(_("vmsup: waiting for VM '%s' to answer over SSH (%d s so far; "
				     "a first boot runs cloud-init)…\n"),
				   argv[1],
				   (gint)((now - started) / G_USEC_PER_SEC));
			next_note = now + 10 * G_USEC_PER_SEC;
		}
		g_usleep(G_USEC_PER_SEC);
	}
	vmsup_cli_clear(cli);
	return vmsup_cli_exec_ssh(info, argv + first);
}

/* operations */

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

/* workspaces */

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

/* images */

/* the import's end: --json prints the stored image, people a line */
static gint
vmsup_cli_image_import_finish(VmsupCli *cli,
			      const gchar *name,
			      JsonObject *op,
			      JsonObject *answer,
			      gboolean unused)
{
	const gchar *state = vmsup_json_object_get_string(op, "state", "");
	g_autoptr(GError) error = NULL;

	if (g_strcmp0(state, "done") == 0) {
		if (cli->json)
			vmsup_cli_print_json_object(answer);
		else
			vmsup_cli_confirm(cli,
					  _("Image '%s' imported; create a VM on it with 'vmsup "
					    "create NAME --image %s'\n"),
					  name,
					  name);
		return VMSUP_CLI_EXIT_OK;
	}
	if (g_strcmp0(state, "cancelled") == 0)
		error = g_error_new(VMSUP_ERROR,
				    VMSUP_ERROR_CANCELLED,
				    _("Importing image '%s' was cancelled; nothing was kept"),
				    name);
	else
		error = vmsup_cli_operation_error(op);
	return vmsup_cli_report_error(cli, error);
}

static gint
vmsup_cli_image_import(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autofree gchar *opt_name = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonNode) subscribed = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *name;
	gint64 id;
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
	if (!vmsup_cli_connect(cli, &rc))
		return rc;
	/* as create: subscribe first, the CLI waits so that Ctrl-C can cancel */
	subscribed = vmsup_jsonrpc_client_call(cli->client, "events.subscribe", NULL, &error);
	if (subscribed == NULL)
		g_debug("events.subscribe: %s; polling instead", error->message);
	result = vmsup_cli_call(cli, "image.import", params, &rc);
	if (result == NULL)
		return rc;
	id = vmsup_cli_operation_id(result);
	name = vmsup_json_object_get_string(result, "image", NULL);
	if (id <= 0 || name == NULL) {
		g_printerr(_("vmsup: vmsupd did not say which operation imports '%s'\n"), argv[1]);
		return VMSUP_CLI_EXIT_FAILURE;
	}
	return vmsup_cli_wait_operation(cli,
					name,
					result,
					id,
					vmsup_cli_image_import_finish,
					FALSE);
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

/* daemon */

static gint
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

static gint
vmsup_cli_events(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(JsonObject) result = NULL;

	if (!vmsup_cli_parse(cli,
			     &argc,
			     &argv,
			     NULL,
			     N_("Print VM and operation events as they happen"),
			     NULL,
			     0,
			     NULL,
			     &rc))
		return rc;
	result = vmsup_cli_call(cli, "events.subscribe", NULL, &rc);
	if (result == NULL)
		return rc;
	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) event =
		    vmsup_jsonrpc_client_next_notification(cli->client, -1, &error);
		const gchar *method;
		JsonNode *params_node;
		JsonObject *params = NULL;
		g_autoptr(GDateTime) now = NULL;
		g_autofree gchar *time = NULL;
		g_autofree gchar *detail = NULL;

		if (event == NULL)
			return vmsup_cli_report_error(cli, error);
		if (cli->json) {
			g_autofree gchar *text = vmsup_json_object_to_string(event, FALSE);
			vmsup_cli_print("%s\n", text);
			continue;
		}
		method = vmsup_json_object_get_string(event, "method", "");
		params_node = json_object_get_member(event, "params");
		if (params_node != NULL && JSON_NODE_HOLDS_OBJECT(params_node))
			params = json_node_get_object(params_node);
		if (g_str_has_prefix(method, "event."))
			method += strlen("event.");
		if (g_strcmp0(method, "operation-changed") == 0) {
			detail = g_strdup_printf(
			    "%" G_GINT64_FORMAT " %s %s %s %d%%",
			    vmsup_json_object_get_int(params, "id", 0),
			    vmsup_json_object_get_string(params, "vm", "-"),
			    vmsup_json_object_get_string(params, "state", "-"),
			    vmsup_json_object_get_string(params, "stage", "-"),
			    (gint)(vmsup_json_object_get_double(params, "progress", 0) * 100 +
				   0.5));
		} else {
			JsonNode *vm_node =
			    params != NULL ? json_object_get_member(params, "vm") : NULL;
			const gchar *state = NULL;
			if (vm_node != NULL && JSON_NODE_HOLDS_OBJECT(vm_node))
				state = vmsup_json_object_get_string(json_node_get_object(vm_node),
								     "state",
								     NULL);
			detail = g_strdup_printf("%s%s%s",
						 vmsup_json_object_get_string(params, "name", "-"),
						 state != NULL ? " " : "",
						 state != NULL ? state : "");
		}
		now = g_date_time_new_now_local();
		time = g_date_time_format(now, "%H:%M:%S");
		vmsup_cli_print("%s  %-18s %s\n", time, method, detail);
	}
}

/* verb tables */

static gint
vmsup_cli_run_verb(VmsupCli *cli,
		   const VmsupCliVerb *verbs,
		   const gchar *group,
		   gint argc,
		   gchar **argv);

static const VmsupCliVerb vmsup_cli_ops_verbs[] = {
    {"list", N_("List operations"), vmsup_cli_ops_list},
    {"get", N_("Show an operation"), vmsup_cli_ops_get},
    {"cancel", N_("Cancel an operation"), vmsup_cli_ops_cancel},
    {NULL, NULL, NULL},
};

static const VmsupCliVerb vmsup_cli_workspace_verbs[] = {
    {"create", N_("Create a workspace"), vmsup_cli_workspace_create},
    {"list", N_("List workspaces"), vmsup_cli_workspace_list},
    {"delete", N_("Delete a workspace"), vmsup_cli_workspace_delete},
    {"open", N_("Open a workspace, starting its VM"), vmsup_cli_workspace_open},
    {NULL, NULL, NULL},
};

static gint
vmsup_cli_ops(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_run_verb(cli, vmsup_cli_ops_verbs, "ops", argc - 1, argv + 1);
}

static const VmsupCliVerb vmsup_cli_image_verbs[] = {
    {"import", N_("Copy a disk image into the store"), vmsup_cli_image_import},
    {"list", N_("List stored images"), vmsup_cli_image_list},
    {"delete", N_("Delete a stored image"), vmsup_cli_image_delete},
    {NULL, NULL, NULL},
};

static gint
vmsup_cli_image(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_run_verb(cli, vmsup_cli_image_verbs, "image", argc - 1, argv + 1);
}

static gint
vmsup_cli_workspace(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_run_verb(cli, vmsup_cli_workspace_verbs, "workspace", argc - 1, argv + 1);
}

static const VmsupCliVerb vmsup_cli_verbs[] = {
    {"create", N_("Create a VM, showing progress until it is ready"), vmsup_cli_create},
    {"start", N_("Start a VM"), vmsup_cli_start},
    {"stop", N_("Stop a VM"), vmsup_cli_stop},
    {"pause", N_("Pause a running VM"), vmsup_cli_pause},
    {"resume", N_("Resume a paused VM"), vmsup_cli_resume},
    {"delete", N_("Delete a VM and its disk"), vmsup_cli_delete},
    {"set", N_("Change a VM's settings"), vmsup_cli_set},
    {"list", N_("List the VMs"), vmsup_cli_list},
    {"get", N_("Show one VM"), vmsup_cli_get},
    {"stats", N_("Show a VM's CPU, memory, disk and network use"), vmsup_cli_stats},
    {"health", N_("Check a VM's process, monitor and guest agent"), vmsup_cli_health},
    {"ping", N_("Ping a VM's guest agent"), vmsup_cli_ping},
    {"ports", N_("List a VM's listening ports and their host addresses"), vmsup_cli_ports},
    {"exec", N_("Run a command in a VM"), vmsup_cli_exec},
    {"shell", N_("Log in to a VM over SSH, or run a command there"), vmsup_cli_shell},
    {"ops", N_("List, show or cancel operations (list|get|cancel)"), vmsup_cli_ops},
    {"workspace", N_("Manage workspaces (create|list|delete|open)"), vmsup_cli_workspace},
    {"image", N_("Manage stored images (import|list|delete)"), vmsup_cli_image},
    {"info", N_("Show what vmsupd is and how it runs"), vmsup_cli_info},
    {"events", N_("Print events as they happen"), vmsup_cli_events},
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

static gint
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
