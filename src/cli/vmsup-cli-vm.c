/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup list, get, start, stop, pause, resume, delete and set */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli-output.h"
#include "vmsup-cli.h"
#include "vmsup-json.h"

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

gint
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

gint
vmsup_cli_get(VmsupCli *cli, gint argc, gchar **argv)
{
	return vmsup_cli_show_object_verb(cli,
					  argc,
					  argv,
					  N_("Show one VM"),
					  "vm.get",
					  vmsup_cli_vm_fields);
}

/*
 * A verb that takes only the VM's name and answers with the VM (pause,
 * resume): TRUE once it did, with the name it was given
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

gint
vmsup_cli_start(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autofree gchar *opt_snapshot = NULL;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	const GOptionEntry entries[] = {
	    {"snapshot",
	     0,
	     0,
	     G_OPTION_ARG_STRING,
	     &opt_snapshot,
	     N_("Start from this memory snapshot instead of booting"),
	     N_("SNAPSHOT")},
	    {NULL},
	};

	params = vmsup_cli_parse_name(cli,
				      &argc,
				      &argv,
				      _("the VM name"),
				      N_("Start a VM"),
				      entries,
				      &rc);
	if (params == NULL)
		return rc;
	if (opt_snapshot != NULL)
		json_object_set_string_member(params, "snapshot", opt_snapshot);
	if (!vmsup_cli_call_for_people(cli, "vm.start", params, &result, &rc))
		return rc;
	if (opt_snapshot != NULL)
		vmsup_cli_confirm(cli,
				  _("VM '%s' started from snapshot '%s'\n"),
				  argv[1],
				  opt_snapshot);
	else
		vmsup_cli_confirm(cli, _("VM '%s' started\n"), argv[1]);
	return rc;
}

gint
vmsup_cli_pause(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	const gchar *name = NULL;

	if (vmsup_cli_vm_verb(cli, argc, argv, "vm.pause", N_("Pause a running VM"), &name, &rc))
		vmsup_cli_confirm(cli, _("VM '%s' paused\n"), name);
	return rc;
}

gint
vmsup_cli_resume(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	const gchar *name = NULL;

	if (vmsup_cli_vm_verb(cli, argc, argv, "vm.resume", N_("Resume a paused VM"), &name, &rc))
		vmsup_cli_confirm(cli, _("VM '%s' resumed\n"), name);
	return rc;
}

gint
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

gint
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

void
vmsup_cli_set_limits(JsonObject *params, gint cpu_quota, gint memory_max)
{
	if (cpu_quota != VMSUP_CLI_NO_LIMIT)
		json_object_set_int_member(params, "cpu_quota_percent", cpu_quota);
	if (memory_max != VMSUP_CLI_NO_LIMIT)
		json_object_set_int_member(params, "memory_max_mib", memory_max);
}

gint
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
	gint opt_disk_gib = -1;
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
	    {"disk-gib",
	     0,
	     0,
	     G_OPTION_ARG_INT,
	     &opt_disk_gib,
	     N_("Grow the VM's disk to GIB GiB, live when it runs (disks only grow)"),
	     N_("GIB")},
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
	vmsup_cli_set_int(params, "disk_gib", opt_disk_gib);
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
