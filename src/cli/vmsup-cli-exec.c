/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmsup exec (a command through the guest agent) and vmsup shell (SSH) */

#include "config.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "vmsup-cli.h"
#include "vmsup-json.h"

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

gint
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
		g_ptr_array_add(args, g_strdup("--"));
		g_ptr_array_add(args, vmsup_ssh_quote_command((const gchar *const *)command));
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

gint
vmsup_cli_shell(VmsupCli *cli, gint argc, gchar **argv)
{
	gint rc = VMSUP_CLI_EXIT_OK;
	gint opt_timeout = 600;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) info = NULL;
	g_autoptr(VmsupRemoteUri) uri = NULL;
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
	if (!vmsup_cli_remote_uri(cli, &uri, &rc))
		return rc;
	if (uri != NULL)
		return vmsup_cli_remote_shell(cli, uri, opt_timeout, argv[1], argv + first);
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
		/* the bundled guest answers within seconds: poll often enough not to add one */
		g_usleep(G_USEC_PER_SEC / 5);
	}
	vmsup_cli_clear(cli);
	return vmsup_cli_exec_ssh(info, argv + first);
}
