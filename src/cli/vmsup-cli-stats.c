/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup stats, health, ping and ports: what a running VM is doing */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-cli.h"
#include "vmsup-json.h"

gint
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

gint
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

gint
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

gint
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
