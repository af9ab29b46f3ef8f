/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-remote-uri.h"

G_BEGIN_DECLS

/*
 * The exit status `vmsup bridge` ends with when vmsupd does not answer on
 * its host, the CLI's own "cannot reach vmsupd" (see vmsup(1)); its
 * message is on its standard error
 */
#define VMSUP_SSH_TRANSPORT_EXIT_NO_DAEMON 10

#define VMSUP_TYPE_SSH_TRANSPORT (vmsup_ssh_transport_get_type())
G_DECLARE_FINAL_TYPE(VmsupSshTransport, vmsup_ssh_transport, VMSUP, SSH_TRANSPORT, GObject)

/*
 * Runs the system's ssh to @uri's host with `vmsup bridge` there (with
 * --system when @system); its standard input and output are the stream.
 * ssh's configuration and known_hosts apply as they are; BatchMode only
 * when standard input is not a terminal. VMSUP_ERROR_CONNECT when ssh
 * cannot be run.
 */
VmsupSshTransport *
vmsup_ssh_transport_new(const VmsupRemoteUri *uri, gboolean system, GError **error);

/*
 * @argv as one line for the shell ssh runs commands with: each argument
 * quoted, so that it arrives as given
 */
gchar *
vmsup_ssh_quote_command(const gchar *const *argv);

/*
 * Runs @command on @uri's host through the system's ssh in place of this
 * process, on a terminal there when standard input is one here (for a
 * command that is interactive there: vmsup shell); returns -1 only when
 * ssh could not be run
 */
gint
vmsup_ssh_transport_exec(const VmsupRemoteUri *uri, const gchar *const *command, GError **error);

/* ssh's standard output and input (transfer none) */
GIOStream *
vmsup_ssh_transport_get_stream(VmsupSshTransport *self);

/* "[USER@]HOST[:PORT]", for messages */
const gchar *
vmsup_ssh_transport_get_remote(VmsupSshTransport *self);

/*
 * Once the stream ended: which side failed, as VMSUP_ERROR_CONNECT (ssh
 * could not connect or lost the connection, no vmsup on the remote, its
 * vmsupd not running, the connection ended), waiting a bounded time for
 * ssh to exit
 */
GError *
vmsup_ssh_transport_explain(VmsupSshTransport *self);

/* the last lines ssh and the remote side wrote on standard error (bounded), or NULL */
gchar **
vmsup_ssh_transport_get_stderr_lines(VmsupSshTransport *self);

/* the ssh command that logs in as the transport does, to try by hand: "ssh -p 2222 host" */
gchar *
vmsup_ssh_transport_describe_login(VmsupSshTransport *self);

G_END_DECLS
