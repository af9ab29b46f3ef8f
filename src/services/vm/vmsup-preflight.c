/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Checks made before a VM is provisioned, each failing with a message that
 * names the problem and what to do about it.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-preflight.h"

typedef struct {
	GSubprocess *subprocess; /* owned */
	gchar *binary;           /* owned */
} VmsupPreflightQemu;

static void
vmsup_preflight_qemu_free(VmsupPreflightQemu *data)
{
	g_clear_object(&data->subprocess);
	g_free(data->binary);
	g_free(data);
}

gboolean
vmsup_preflight_parse_qemu_version(const gchar *output,
				   guint *out_major,
				   guint *out_minor,
				   guint *out_micro)
{
	const gchar *p;
	guint major = 0;
	guint minor = 0;
	guint micro = 0;

	if (output == NULL)
		return FALSE;
	p = strstr(output, "version ");
	if (p == NULL)
		return FALSE;
	if (sscanf(p + strlen("version "), "%u.%u.%u", &major, &minor, &micro) < 2)
		return FALSE;
	if (out_major != NULL)
		*out_major = major;
	if (out_minor != NULL)
		*out_minor = minor;
	if (out_micro != NULL)
		*out_micro = micro;
	return TRUE;
}

static void
vmsup_preflight_qemu_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupPreflightQemu *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *stdout_buf = NULL;
	guint major = 0;
	guint minor = 0;
	guint micro = 0;

	if (!g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source),
						  res,
						  &stdout_buf,
						  NULL,
						  &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!g_subprocess_get_if_exited(data->subprocess) ||
	    g_subprocess_get_exit_status(data->subprocess) != 0 ||
	    !vmsup_preflight_parse_qemu_version(stdout_buf, &major, &minor, &micro)) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("'%s --version' did not report a QEMU version; check the "
					  "QEMU installation"),
					data->binary);
		return;
	}
	if (major < VMSUP_PREFLIGHT_MIN_QEMU_MAJOR) {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("QEMU %u.%u.%u at '%s' is too old; vmsup needs version %u "
		      "or newer"),
		    major,
		    minor,
		    micro,
		    data->binary,
		    (guint)VMSUP_PREFLIGHT_MIN_QEMU_MAJOR);
		return;
	}
	g_task_return_pointer(task, g_strdup_printf("%u.%u.%u", major, minor, micro), g_free);
}

void
vmsup_preflight_check_qemu_async(const gchar *qemu_binary,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GError) error = NULL;
	VmsupPreflightQemu *data;

	g_return_if_fail(qemu_binary != NULL);

	task = g_task_new(NULL, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_preflight_check_qemu_async);
	data = g_new0(VmsupPreflightQemu, 1);
	data->binary = g_strdup(qemu_binary);
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_preflight_qemu_free);

	data->subprocess =
	    g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
			     &error,
			     qemu_binary,
			     "--version",
			     NULL);
	if (data->subprocess == NULL) {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Cannot run QEMU '%s': %s; install qemu-system-x86 or fix "
		      "the QEMU binary setting"),
		    qemu_binary,
		    error->message);
		return;
	}
	g_subprocess_communicate_utf8_async(data->subprocess,
					    NULL,
					    cancellable,
					    vmsup_preflight_qemu_cb,
					    g_steal_pointer(&task));
}

gboolean
vmsup_preflight_check_qemu_finish(GAsyncResult *res, gchar **out_version, GError **error)
{
	g_autofree gchar *version = NULL;

	g_return_val_if_fail(g_task_is_valid(res, NULL), FALSE);
	version = g_task_propagate_pointer(G_TASK(res), error);
	if (version == NULL)
		return FALSE;
	if (out_version != NULL)
		*out_version = g_steal_pointer(&version);
	return TRUE;
}

static gboolean
vmsup_preflight_check_file(const gchar *field, const gchar *path, GError **error)
{
	GStatBuf st;

	if (path == NULL)
		return TRUE;
	if (g_stat(path, &st) != 0) {
		gint saved_errno = errno;
		/* TRANSLATORS: the first %s is a field name: kernel, initrd or image */
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("The %s '%s' cannot be used: %s; pass an existing file"),
			    field,
			    path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("The %s '%s' is not a regular file"),
			    field,
			    path);
		return FALSE;
	}
	if (g_access(path, R_OK) != 0) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("The %s '%s' is not readable by the daemon (uid %u); fix its "
			      "permissions"),
			    field,
			    path,
			    (guint)getuid());
		return FALSE;
	}
	return TRUE;
}

static gboolean
vmsup_preflight_check_dir(const gchar *field, const gchar *path, GError **error)
{
	if (path == NULL)
		return TRUE;
	if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("The %s '%s' is not a directory; pass an existing directory"),
			    field,
			    path);
		return FALSE;
	}
	if (g_access(path, R_OK | X_OK) != 0) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("The %s '%s' is not readable by the daemon (uid %u); fix its "
			      "permissions"),
			    field,
			    path,
			    (guint)getuid());
		return FALSE;
	}
	return TRUE;
}

gboolean
vmsup_preflight_check_files(const VmsupVmDef *def, GError **error)
{
	g_return_val_if_fail(def != NULL, FALSE);
	return vmsup_preflight_check_file("kernel", def->kernel, error) &&
	       vmsup_preflight_check_file("initrd", def->initrd, error) &&
	       vmsup_preflight_check_file("image", def->image, error) &&
	       vmsup_preflight_check_dir("shared directory", def->share_dir, error);
}

gboolean
vmsup_preflight_check_free_space(const gchar *dir, guint64 bytes, GError **error)
{
	g_autofree gchar *existing = g_strdup(dir);
	struct statvfs st;
	guint64 available;

	while (!g_file_test(existing, G_FILE_TEST_IS_DIR)) {
		gchar *parent = g_path_get_dirname(existing);
		if (g_strcmp0(parent, existing) == 0) {
			g_free(parent);
			break;
		}
		g_free(existing);
		existing = parent;
	}
	if (statvfs(existing, &st) != 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot check free space in '%s': %s"),
			    existing,
			    g_strerror(saved_errno));
		return FALSE;
	}
	available = (guint64)st.f_bavail * st.f_frsize;
	if (available < bytes) {
		g_autofree gchar *need = g_format_size(bytes);
		g_autofree gchar *have = g_format_size(available);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Not enough free space in '%s': the disk needs %s, %s are free; free "
			      "some space or ask for a smaller disk_gib"),
			    existing,
			    need,
			    have);
		return FALSE;
	}
	return TRUE;
}
