/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmsup console: the VM's serial console on this terminal (raw mode,
 * Ctrl-] detaches, the terminal restored however vmsup ends), or, when
 * stdin is not a terminal, the input copied to the console and its output
 * printed until the console has been quiet for a moment after the input
 * ended. The latest output comes first, unless --no-history.
 */

#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "vmsup-cli.h"

/* Ctrl-] */
#define VMSUP_CLI_CONSOLE_ESCAPE 0x1d

static struct termios vmsup_cli_console_saved;
static volatile sig_atomic_t vmsup_cli_console_raw;

static void
vmsup_cli_console_restore(void)
{
	if (vmsup_cli_console_raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &vmsup_cli_console_saved);
		vmsup_cli_console_raw = 0;
	}
}

/* a signal that ends vmsup leaves the terminal as it found it */
static void
vmsup_cli_console_signal(gint signo)
{
	vmsup_cli_console_restore();
	signal(signo, SIG_DFL);
	raise(signo);
}

static gboolean
vmsup_cli_console_make_raw(void)
{
	struct termios raw;

	if (tcgetattr(STDIN_FILENO, &vmsup_cli_console_saved) < 0)
		return FALSE;
	raw = vmsup_cli_console_saved;
	cfmakeraw(&raw);
	signal(SIGTERM, vmsup_cli_console_signal);
	signal(SIGHUP, vmsup_cli_console_signal);
	signal(SIGINT, vmsup_cli_console_signal);
	signal(SIGQUIT, vmsup_cli_console_signal);
	atexit(vmsup_cli_console_restore);
	vmsup_cli_console_raw = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0) {
		vmsup_cli_console_raw = 0;
		return FALSE;
	}
	return TRUE;
}

static gboolean
vmsup_cli_console_write_all(gint fd, const guint8 *data, gsize length)
{
	while (length > 0) {
		gssize n = write(fd, data, length);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return FALSE;
		data += n;
		length -= (gsize)n;
	}
	return TRUE;
}

/* copies both ways until the console closes, the input ends (and @quiet_ms pass), or Ctrl-] */
static gboolean
vmsup_cli_console_run(gint console, gboolean terminal, gint quiet_ms)
{
	gboolean input_open = TRUE;

	for (;;) {
		struct pollfd fds[2] = {
		    {.fd = console, .events = POLLIN},
		    {.fd = input_open ? STDIN_FILENO : -1, .events = POLLIN},
		};
		guint8 buf[16 * 1024];
		gint ready = poll(fds, 2, input_open ? -1 : quiet_ms);
		gssize n;

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0)
			return FALSE;
		/* the input ended and the console said nothing for a while */
		if (ready == 0)
			return TRUE;
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(console, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return FALSE;
			if (!vmsup_cli_console_write_all(STDOUT_FILENO, buf, (gsize)n))
				return TRUE;
		}
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				input_open = FALSE;
				shutdown(console, SHUT_WR);
				continue;
			}
			if (terminal) {
				const guint8 *escape =
				    memchr(buf, VMSUP_CLI_CONSOLE_ESCAPE, (gsize)n);
				if (escape != NULL) {
					vmsup_cli_console_write_all(console,
								    buf,
								    (gsize)(escape - buf));
					return TRUE;
				}
			}
			if (!vmsup_cli_console_write_all(console, buf, (gsize)n))
				return FALSE;
		}
	}
}

gint
vmsup_cli_console(VmsupCli *cli, gint argc, gchar **argv)
{
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(GError) error = NULL;
	gint opt_quiet_s = 1;
	gboolean opt_no_history = FALSE;
	gboolean terminal;
	gboolean detached;
	gint console;
	gint rc = VMSUP_CLI_EXIT_OK;
	const GOptionEntry entries[] = {
	    {"wait",
	     'w',
	     0,
	     G_OPTION_ARG_INT,
	     &opt_quiet_s,
	     N_("Without a terminal: seconds the console may stay quiet after the input "
		"ended before vmsup exits (default 1)"),
	     N_("SECONDS")},
	    {"no-history",
	     0,
	     0,
	     G_OPTION_ARG_NONE,
	     &opt_no_history,
	     N_("Show only what the guest prints from now on, not its latest output"),
	     NULL},
	    {NULL},
	};

	params = vmsup_cli_parse_name(
	    cli,
	    &argc,
	    &argv,
	    _("the VM name"),
	    N_("Attach to the serial console of a running VM; Ctrl-] detaches"),
	    entries,
	    &rc);
	if (params == NULL)
		return rc;
	if (opt_quiet_s < 0)
		return vmsup_cli_usage_error(cli, _("--wait must not be negative"));
	if (opt_no_history)
		json_object_set_boolean_member(params, "history", FALSE);
	if (!vmsup_cli_connect(cli, &rc))
		return rc;
	console = vmsup_jsonrpc_client_call_fd(cli->client, "vm.console", params, NULL, &error);
	if (console < 0)
		return vmsup_cli_report_error(cli, error);

	terminal = isatty(STDIN_FILENO) && !cli->json;
	if (terminal) {
		if (!cli->quiet)
			g_printerr(_("Connected to the console of VM '%s'; press Ctrl-] to "
				     "detach. Press Enter for a prompt.\n"),
				   vmsup_cli_get_str(params, "name"));
		if (!vmsup_cli_console_make_raw())
			terminal = FALSE;
	}
	detached = vmsup_cli_console_run(console, terminal, opt_quiet_s * 1000);
	vmsup_cli_console_restore();
	close(console);
	if (terminal && !cli->quiet && detached)
		g_printerr(_("\r\nDetached from the console of VM '%s'.\n"),
			   vmsup_cli_get_str(params, "name"));
	else if (terminal && !cli->quiet)
		g_printerr(_("\r\nThe console of VM '%s' closed: the VM stopped, vmsupd went "
			     "away, or this terminal fell too far behind; 'vmsup get %s' shows "
			     "the VM's state.\n"),
			   vmsup_cli_get_str(params, "name"),
			   vmsup_cli_get_str(params, "name"));
	return VMSUP_CLI_EXIT_OK;
}
