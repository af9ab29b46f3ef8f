/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Socket activation without libsystemd: the protocol is three environment
 * variables and descriptors from 3 on (sd_listen_fds(3)).
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-listen-fds.h"

#define VMSUP_LISTEN_FDS_START 3

static gint
vmsup_listen_fds_sockopt(gint fd, gint option)
{
	gint value = -1;
	socklen_t len = sizeof(value);
	if (getsockopt(fd, SOL_SOCKET, option, &value, &len) != 0)
		return -1;
	return value;
}

static gboolean
vmsup_listen_fds_check(gint fd, GError **error)
{
	const gchar *what = NULL;

	if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
		what = g_strerror(errno);
	else if (vmsup_listen_fds_sockopt(fd, SO_DOMAIN) != AF_UNIX)
		what = _("it is not a Unix socket");
	else if (vmsup_listen_fds_sockopt(fd, SO_TYPE) != SOCK_STREAM)
		what = _("it is not a stream socket");
	else if (vmsup_listen_fds_sockopt(fd, SO_ACCEPTCONN) != 1)
		what = _("it is not listening");
	if (what == NULL)
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    /* TRANSLATORS: ListenStream= is a setting of vmsupd.socket, do not translate */
		    _("The socket passed by systemd (descriptor %d) cannot be used: %s; "
		      "vmsupd.socket needs ListenStream= with the path of a Unix socket"),
		    fd,
		    what);
	return FALSE;
}

gboolean
vmsup_listen_fds_take(gint *out_fd, GError **error)
{
	g_autofree gchar *pid_text = g_strdup(g_getenv("LISTEN_PID"));
	g_autofree gchar *fds_text = g_strdup(g_getenv("LISTEN_FDS"));
	guint64 pid = 0;
	guint64 n = 0;

	*out_fd = 0;
	g_unsetenv("LISTEN_PID");
	g_unsetenv("LISTEN_FDS");
	g_unsetenv("LISTEN_FDNAMES");
	/* meant for another process (an ancestor's variables leaked): not ours */
	if (pid_text == NULL || fds_text == NULL ||
	    !g_ascii_string_to_unsigned(pid_text, 10, 1, G_MAXINT, &pid, NULL) ||
	    (pid_t)pid != getpid())
		return TRUE;
	if (!g_ascii_string_to_unsigned(fds_text,
					10,
					0,
					G_MAXINT - VMSUP_LISTEN_FDS_START,
					&n,
					NULL)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Invalid LISTEN_FDS '%s' from systemd: not a number of descriptors"),
			    fds_text);
		return FALSE;
	}
	if (n == 0)
		return TRUE;
	if (n > 1) {
		/* not ours to use: do not let them leak into QEMU */
		for (guint64 i = 0; i < n; i++)
			fcntl(VMSUP_LISTEN_FDS_START + (gint)i, F_SETFD, FD_CLOEXEC);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("systemd passed %u sockets, vmsupd takes one; give vmsupd.socket a "
			      "single ListenStream="),
			    (guint)n);
		return FALSE;
	}
	if (!vmsup_listen_fds_check(VMSUP_LISTEN_FDS_START, error))
		return FALSE;
	*out_fd = VMSUP_LISTEN_FDS_START;
	return TRUE;
}
