/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Acting as another user: the identity a VM's files are opened as and its
 * QEMU runs as, the privilege drop in a forked child, and opening a file as
 * that user with the descriptor sent back over a socket (libvirt's
 * virFileOpenAs), so that whether a user may open a file is the kernel's
 * decision and nobody else's.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-run-as.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* the highest capability number any kernel may know */
#define VMSUP_RUN_AS_LAST_CAP 63

static VmsupRunAs *
vmsup_run_as_from_passwd(const struct passwd *pw)
{
	VmsupRunAs *as = g_new0(VmsupRunAs, 1);
	gint n = 16;

	as->uid = pw->pw_uid;
	as->gid = pw->pw_gid;
	as->name = g_strdup(pw->pw_name);
	as->groups = g_new(gid_t, n);
	if (getgrouplist(pw->pw_name, pw->pw_gid, as->groups, &n) < 0) {
		as->groups = g_renew(gid_t, as->groups, n);
		if (getgrouplist(pw->pw_name, pw->pw_gid, as->groups, &n) < 0)
			n = 0;
	}
	as->n_groups = n;
	return as;
}

VmsupRunAs *
vmsup_run_as_new_for_uid(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);
	VmsupRunAs *as;

	if (pw != NULL)
		return vmsup_run_as_from_passwd(pw);
	as = g_new0(VmsupRunAs, 1);
	as->uid = uid;
	as->gid = (gid_t)uid;
	as->name = g_strdup_printf("%u", (guint)uid);
	return as;
}

VmsupRunAs *
vmsup_run_as_new_for_user(const gchar *name, GError **error)
{
	struct passwd *pw = getpwnam(name);

	if (pw == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    "there is no user '%s'",
			    name);
		return NULL;
	}
	return vmsup_run_as_from_passwd(pw);
}

VmsupRunAs *
vmsup_run_as_copy(const VmsupRunAs *as)
{
	VmsupRunAs *copy;

	if (as == NULL)
		return NULL;
	copy = g_memdup2(as, sizeof(*as));
	copy->groups = g_memdup2(as->groups, sizeof(gid_t) * (gsize)as->n_groups);
	copy->name = g_strdup(as->name);
	return copy;
}

void
vmsup_run_as_free(VmsupRunAs *as)
{
	if (as == NULL)
		return;
	g_free(as->groups);
	g_free(as->name);
	g_free(as);
}

VmsupRunAs *
vmsup_run_as_for_owner(guint32 owner_uid)
{
	if (geteuid() != 0 || owner_uid == 0)
		return NULL;
	return vmsup_run_as_new_for_uid((uid_t)owner_uid);
}

VmsupRunAs *
vmsup_run_as_for_qemu(guint32 owner_uid, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	VmsupRunAs *as;

	if (geteuid() != 0)
		return NULL;
	if (owner_uid != 0)
		return vmsup_run_as_new_for_uid((uid_t)owner_uid);
	as = vmsup_run_as_new_for_user(VMSUP_QEMU_USER, &error_local);
	if (as == NULL || as->uid == 0) {
		vmsup_run_as_free(as);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("The system user '%s', which runs the QEMU of root's VMs, is "
			      "missing (or is root); create it with 'systemd-sysusers' (vmsupd "
			      "installs a sysusers.d file for it) or with 'useradd --system "
			      "--no-create-home --shell /usr/sbin/nologin %s'"),
			    VMSUP_QEMU_USER,
			    VMSUP_QEMU_USER);
		return NULL;
	}
	return as;
}

/* a message to fd 2 without stdio, which is not async-signal-safe */
static void
vmsup_run_as_child_fail(const gchar *what)
{
	static const gchar prefix[] = "vmsupd: cannot drop privileges: ";
	gint saved = errno;
	const gchar *why = strerror(saved);
	G_GNUC_UNUSED gssize n;

	n = write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
	n = write(STDERR_FILENO, what, strlen(what));
	n = write(STDERR_FILENO, ": ", 2);
	n = write(STDERR_FILENO, why, strlen(why));
	n = write(STDERR_FILENO, "\n", 1);
	errno = saved;
}

gboolean
vmsup_run_as_drop_in_child(const VmsupRunAs *as)
{
	/* nothing exec'd from here on gains privileges, setuid binaries included */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		vmsup_run_as_child_fail("PR_SET_NO_NEW_PRIVS");
		return FALSE;
	}
	if (as == NULL)
		return TRUE;
	/* while still root: no capability can come back, whatever runs later */
	if (geteuid() == 0) {
		for (gint cap = 0; cap <= VMSUP_RUN_AS_LAST_CAP; cap++) {
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
				vmsup_run_as_child_fail("PR_CAPBSET_DROP");
				return FALSE;
			}
		}
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	/* raw system calls: a forked child has one thread, and glibc's wrappers take locks */
	if (syscall(SYS_setgroups, (gsize)as->n_groups, as->groups) != 0) {
		vmsup_run_as_child_fail("setgroups");
		return FALSE;
	}
	if (syscall(SYS_setresgid, as->gid, as->gid, as->gid) != 0) {
		vmsup_run_as_child_fail("setresgid");
		return FALSE;
	}
	/* from root to another uid the kernel clears every capability set but the bounding one */
	if (syscall(SYS_setresuid, as->uid, as->uid, as->uid) != 0) {
		vmsup_run_as_child_fail("setresuid");
		return FALSE;
	}
	return TRUE;
}

static gboolean
vmsup_run_as_send(gint sock, gint fd, gint err)
{
	union {
		struct cmsghdr hdr;
		gchar buf[CMSG_SPACE(sizeof(gint))];
	} control;
	struct iovec iov = {.iov_base = &err, .iov_len = sizeof(err)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	memset(&control, 0, sizeof(control));
	if (fd >= 0) {
		struct cmsghdr *cmsg;
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(gint));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(gint));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (gssize)sizeof(err);
}

static gint
vmsup_run_as_receive(gint sock)
{
	union {
		struct cmsghdr hdr;
		gchar buf[CMSG_SPACE(sizeof(gint))];
	} control;
	gint err = EIO;
	struct iovec iov = {.iov_base = &err, .iov_len = sizeof(err)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cmsg;
	gssize n;
	gint fd = -1;

	memset(&control, 0, sizeof(control));
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n != (gssize)sizeof(err)) {
		errno = EIO;
		return -1;
	}
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
		    cmsg->cmsg_len == CMSG_LEN(sizeof(gint)))
			memcpy(&fd, CMSG_DATA(cmsg), sizeof(gint));
	}
	if (err != 0) {
		if (fd >= 0)
			close(fd);
		errno = err;
		return -1;
	}
	if (fd < 0)
		errno = EIO;
	return fd;
}

gint
vmsup_run_as_open(const VmsupRunAs *as, const gchar *path, gint flags)
{
	gint socks[2];
	gint status = 0;
	gint saved;
	gint fd;
	pid_t pid;

	g_return_val_if_fail(path != NULL, -1);

	flags |= O_CLOEXEC;
	if (as == NULL || (as->uid == geteuid() && geteuid() != 0)) {
		do
			fd = open(path, flags);
		while (fd < 0 && errno == EINTR);
		return fd;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, socks) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		saved = errno;
		close(socks[0]);
		close(socks[1]);
		errno = saved;
		return -1;
	}
	if (pid == 0) {
		gint err = 0;
		close(socks[0]);
		/* no message on fd 2: the caller turns errno into one */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    syscall(SYS_setgroups, (gsize)as->n_groups, as->groups) != 0 ||
		    syscall(SYS_setresgid, as->gid, as->gid, as->gid) != 0 ||
		    syscall(SYS_setresuid, as->uid, as->uid, as->uid) != 0) {
			vmsup_run_as_send(socks[1], -1, errno != 0 ? errno : EPERM);
			_exit(1);
		}
		do
			fd = open(path, flags);
		while (fd < 0 && errno == EINTR);
		if (fd < 0)
			err = errno;
		_exit(vmsup_run_as_send(socks[1], fd, err) ? 0 : 1);
	}
	close(socks[1]);
	fd = vmsup_run_as_receive(socks[0]);
	saved = errno;
	close(socks[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	errno = saved;
	return fd;
}
