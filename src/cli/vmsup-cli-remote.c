/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmsup over SSH, the verbs of it: `vmsup bridge` on the remote side, and
 * `vmsup shell` run by the remote host's vmsup. Reaching a daemon with
 * --connect is vmsup_cli_connect()'s, in vmsup-cli-common.c.
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
