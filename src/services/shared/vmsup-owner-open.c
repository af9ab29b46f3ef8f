/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Opening a host file as a VM's owner: a child of the daemon drops to that
 * uid and hands back the descriptor, so the kernel alone decides; when it
 * refuses, the modes on the way say why.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-owner-open.h"
#include "vmsup-run-as.h"

static void
vmsup_owner_set_not_regular(const gchar *field, const gchar *shown, GError **error)
{
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("The %s '%s' is not a regular file; name a file you own or one "
		      "everybody may read"),
		    field,
		    shown);
}

/* every directory from / down to @path's parent must let @uid in */
static gboolean
vmsup_owner_check_dirs_enterable(const gchar *field,
				 const gchar *shown,
				 const gchar *path,
				 guint32 uid,
				 GError **error)
{
	g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
	gchar *dir = g_path_get_dirname(path);

	/* from the top down, so that the first one refused is the one named */
	while (TRUE) {
		gchar *parent = g_path_get_dirname(dir);
		g_ptr_array_insert(dirs, 0, dir);
		if (g_strcmp0(parent, dir) == 0) {
			g_free(parent);
			break;
		}
		dir = parent;
	}
	for (guint i = 0; i < dirs->len; i++) {
		const gchar *d = g_ptr_array_index(dirs, i);
		struct stat st;
		gboolean enterable;
		gint saved_errno = 0;

		if (stat(d, &st) != 0)
			saved_errno = errno;
		else if (!S_ISDIR(st.st_mode))
			saved_errno = ENOTDIR;
		if (saved_errno != 0) {
			g_set_error(
			    error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    /* TRANSLATORS: the first %s is a field: kernel, initrd or image */
			    _("Cannot use the %s '%s': %s; name an existing file you own or "
			      "one everybody may read"),
			    field,
			    shown,
			    g_strerror(saved_errno));
			return FALSE;
		}
		/* the owner's bits decide for the owner, the others' for everybody else */
		enterable =
		    st.st_uid == uid ? (st.st_mode & S_IXUSR) != 0 : (st.st_mode & S_IXOTH) != 0;
		if (!enterable) {
			g_autofree gchar *shown_dir = g_strescape(d, NULL);
			g_set_error(
			    error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    /* TRANSLATORS: the image '/srv/a.img' is out of your reach (uid
			       1001): the directory '/srv' belongs to uid 0 and lets only ... */
			    _("The %s '%s' is out of your reach (uid %u): the directory '%s' "
			      "belongs to uid %u and does not let others in; name a file you "
			      "own or one everybody may read"),
			    field,
			    shown,
			    (guint)uid,
			    shown_dir,
			    (guint)st.st_uid);
			return FALSE;
		}
	}
	return TRUE;
}

/*
 * Why @uid could not open @path, as far as modes tell: FALSE with a message
 * naming the directory or the file in the way, TRUE when modes show no
 * reason (an ACL, a security module or an unusual file decided).
 */
static gboolean
vmsup_owner_explain_file_reader(const gchar *field, const gchar *path, guint32 uid, GError **error)
{
	g_autofree gchar *shown = NULL;
	g_autofree gchar *canonical = NULL;
	g_autofree gchar *real = NULL;
	struct stat st;

	shown = g_strescape(path, NULL);
	canonical = g_canonicalize_filename(path, "/");
	/* the path as named first: nothing is told of what lies behind a closed directory */
	if (!vmsup_owner_check_dirs_enterable(field, shown, canonical, uid, error))
		return FALSE;
	real = realpath(canonical, NULL);
	if (real == NULL) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot use the %s '%s': %s; name an existing file you own or one "
			      "everybody may read"),
			    field,
			    shown,
			    g_strerror(saved_errno));
		return FALSE;
	}
	/* and where its links lead */
	if (g_strcmp0(real, canonical) != 0 &&
	    !vmsup_owner_check_dirs_enterable(field, shown, real, uid, error))
		return FALSE;
	if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
		vmsup_owner_set_not_regular(field, shown, error);
		return FALSE;
	}
	/* the owner may always make it readable; anybody may read what others may */
	if (st.st_uid == uid || (st.st_mode & S_IROTH) != 0)
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    /* TRANSLATORS: The kernel '/boot/x' belongs to uid 0, who does not let
		       others read it, and you are uid 1001; ... */
		    _("The %s '%s' belongs to uid %u, who does not let others read it, and you "
		      "are uid %u; vmsupd reads files only for those who could read them "
		      "themselves: name a file you own, or one everybody may read"),
		    field,
		    shown,
		    (guint)st.st_uid,
		    (guint)uid);
	return FALSE;
}

gint
vmsup_owner_open_file(const gchar *field, const gchar *path, guint32 uid, GError **error)
{
	g_autoptr(VmsupRunAs) as = vmsup_run_as_for_owner(uid);
	g_autofree gchar *canonical = NULL;
	struct stat st;
	gint fd;

	g_return_val_if_fail(field != NULL, -1);
	g_return_val_if_fail(path != NULL, -1);

	canonical = g_canonicalize_filename(path, "/");
	/* non-blocking: a FIFO named as a kernel must not hang the opener */
	fd = vmsup_run_as_open(as, canonical, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		gint saved_errno = errno;
		g_autofree gchar *shown = g_strescape(path, NULL);
		if (vmsup_owner_explain_file_reader(field, path, uid, error))
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    /* TRANSLATORS: The kernel '/boot/x' cannot be opened by uid
				       1001: Permission denied; ... */
				    _("The %s '%s' cannot be opened by uid %u: %s; vmsupd opens "
				      "files only for those who could open them themselves: name a "
				      "file you own, or one everybody may read"),
				    field,
				    shown,
				    (guint)uid,
				    g_strerror(saved_errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		g_autofree gchar *shown = g_strescape(path, NULL);
		close(fd);
		vmsup_owner_set_not_regular(field, shown, error);
		return -1;
	}
	return fd;
}
