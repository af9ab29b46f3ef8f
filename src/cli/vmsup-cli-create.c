/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup create: a VM from its options, with progress until it is ready */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli-output.h"
#include "vmsup-cli.h"
#include "vmsup-json.h"

/* @created: vm.create's answer, what --json prints once the operation is done */
static gint
vmsup_cli_create_finish(VmsupCli *cli,
			const gchar *name,
			JsonObject *op,
			JsonObject *created,
			gboolean start)
{
	g_autofree gchar *done =
	    start ? g_strdup_printf(_("VM '%s' created and started\n"), name)
		  : g_strdup_printf(_("VM '%s' created; start it with 'vmsup start %s'\n"),
				    name,
				    name);
	g_autofree gchar *cancelled = g_strdup_printf(_("Creating VM '%s' was cancelled"), name);

	return vmsup_cli_operation_outcome(cli, op, created, done, cancelled);
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

gint
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
	gint64 id = 0;
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

	if (!opt_no_wait)
		return vmsup_cli_follow_operation(cli,
						  "vm.create",
						  params,
						  argv[1],
						  vmsup_cli_create_finish,
						  opt_start);
	if (!vmsup_cli_start_operation(cli, "vm.create", params, &id, &rc) || cli->quiet)
		return rc;
	vmsup_cli_print(_("Creating VM '%s' as operation %lld; follow it with 'vmsup ops get "
			  "%lld'\n"),
			argv[1],
			(long long)id,
			(long long)id);
	return rc;
}
