/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmsup over SSH: --connect and $VMSUP_CONNECT on this side, `vmsup bridge`
 * on the other, and the message that says which side failed.
 */

#include "config.h"

#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <unistd.h>

#include "vmsup-bridge.h"
#include "vmsup-cli.h"

/* the client reads the bridge's "cannot reach vmsupd" by its exit status */
G_STATIC_ASSERT(VMSUP_SSH_TRANSPORT_EXIT_NO_DAEMON == VMSUP_CLI_EXIT_NO_DAEMON);

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

gboolean
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

gint
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
vmsup_cli_remote_shell(VmsupCli *cli,
		       const VmsupRemoteUri *uri,
		       gint timeout,
		       const gchar *name,
		       gchar **command)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;

	/* the guest's port and key are on that host: its vmsup logs in from there */
	g_ptr_array_add(argv, g_strdup("vmsup"));
	if (cli->system)
		g_ptr_array_add(argv, g_strdup("--system"));
	if (uri->socket != NULL)
		g_ptr_array_add(argv, g_strconcat("--socket=", uri->socket, NULL));
	if (cli->quiet)
		g_ptr_array_add(argv, g_strdup("--quiet"));
	g_ptr_array_add(argv, g_strdup("shell"));
	g_ptr_array_add(argv, g_strdup_printf("--timeout=%d", timeout));
	g_ptr_array_add(argv, g_strdup(name));
	if (command != NULL && command[0] != NULL) {
		g_ptr_array_add(argv, g_strdup("--"));
		for (guint i = 0; command[i] != NULL; i++)
			g_ptr_array_add(argv, g_strdup(command[i]));
	}
	g_ptr_array_add(argv, NULL);
	vmsup_ssh_transport_exec(uri, (const gchar *const *)argv->pdata, &error);
	g_printerr("vmsup: %s\n", error->message);
	return VMSUP_CLI_EXIT_NO_DAEMON;
}

gint
vmsup_cli_bridge(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	g_autoptr(VmsupRemoteUri) uri = NULL;
	g_autoptr(GIOStream) daemon = NULL;
	g_autoptr(GInputStream) in = NULL;
	g_autoptr(GOutputStream) out = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = NULL;
	gboolean activate;

	if (!vmsup_cli_parse(cli,
			     &argc,
			     &argv,
			     NULL,
			     N_("Relay standard input and output to vmsupd's socket: what "
				"'vmsup --connect ssh://HOST' runs on HOST"),
			     NULL,
			     0,
			     NULL,
			     &rc))
		return rc;
	/* only the option: a VMSUP_CONNECT in the remote's environment is not for the bridge */
	if (cli->connect != NULL && cli->connect[0] != '\0')
		return vmsup_cli_usage_error(cli,
					     _("vmsup bridge talks to the vmsupd of its own host; "
					       "it takes no --connect"));
	path = vmsup_cli_local_socket(cli, &activate);
	daemon = vmsup_jsonrpc_client_dial(path, activate, &error);
	/* its status and message are what the client reports as "vmsupd does not answer there" */
	if (daemon == NULL)
		return vmsup_cli_report_error(cli, error);
	/* a client gone is EPIPE on standard output, and the relay ends */
	signal(SIGPIPE, SIG_IGN);
	in = g_unix_input_stream_new(STDIN_FILENO, FALSE);
	out = g_unix_output_stream_new(STDOUT_FILENO, FALSE);
	vmsup_bridge_relay(daemon, in, out);
	return VMSUP_CLI_EXIT_OK;
}
