/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Disk provisioning: a VM's own qcow2, an overlay over a base image or a
 * blank disk, made by qemu-img without blocking the main loop.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-disk-chain.h"
#include "vmsup-disk.h"
#include "vmsup-error.h"

typedef struct {
	GSubprocess *subprocess; /* owned */
	gchar *path;             /* owned */
	GError *error;           /* owned: why qemu-img was killed */
} VmsupDiskCreate;

static void
vmsup_disk_create_free(VmsupDiskCreate *data)
{
	g_clear_object(&data->subprocess);
	g_clear_error(&data->error);
	g_free(data->path);
	g_free(data);
}

gchar *
vmsup_disk_find_qemu_img(const gchar *qemu_binary, GError **error)
{
	g_autofree gchar *found = NULL;

	if (qemu_binary != NULL && g_path_is_absolute(qemu_binary)) {
		g_autofree gchar *dir = g_path_get_dirname(qemu_binary);
		g_autofree gchar *sibling = g_build_filename(dir, "qemu-img", NULL);
		if (g_file_test(sibling, G_FILE_TEST_IS_EXECUTABLE))
			return g_steal_pointer(&sibling);
	}
	found = g_find_program_in_path("qemu-img");
	if (found == NULL) {
		g_set_error_literal(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("qemu-img was not found in PATH; install qemu-utils to give VMs "
		      "a disk"));
		return NULL;
	}
	return g_steal_pointer(&found);
}

const gchar *
vmsup_disk_probe_format(const gchar *path, GError **error)
{
	static const guint8 qcow2_magic[] = {'Q', 'F', 'I', 0xfb};
	guint8 header[sizeof(qcow2_magic)] = {0};
	gssize n;
	gint fd;

	fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Cannot read image '%s': %s"),
			    path,
			    g_strerror(saved_errno));
		return NULL;
	}
	n = read(fd, header, sizeof(header));
	close(fd);
	if (n == (gssize)sizeof(header) && memcmp(header, qcow2_magic, sizeof(header)) == 0)
		return "qcow2";
	return "raw";
}

/* the format and virtual size of the image an overlay goes over, from its header */
static gboolean
vmsup_disk_backing_info(const gchar *backing,
			const gchar **out_format,
			guint64 *out_size,
			GError **error)
{
	g_auto(VmsupQcow2Header) header = {0};
	struct stat st;
	gint fd;

	fd = g_open(backing, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		gint saved_errno = fd < 0 ? errno : EINVAL;
		if (fd >= 0)
			close(fd);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Cannot read image '%s': %s"),
			    backing,
			    g_strerror(saved_errno));
		return FALSE;
	}
	*out_format = vmsup_disk_chain_probe_format(fd);
	if (*out_format == NULL) {
		gint saved_errno = errno;
		close(fd);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Cannot read image '%s': %s"),
			    backing,
			    g_strerror(saved_errno));
		return FALSE;
	}
	if (g_strcmp0(*out_format, "qcow2") == 0) {
		gboolean ok = vmsup_qcow2_header_read(fd, backing, &header, error);
		close(fd);
		if (!ok)
			return FALSE;
		*out_size = header.size;
	} else {
		close(fd);
		*out_size = (guint64)st.st_size;
	}
	return TRUE;
}

static void
vmsup_disk_killed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupDiskCreate *data = g_task_get_task_data(task);

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	g_unlink(data->path);
	if (g_error_matches(data->error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_CANCELLED,
					_("Creating disk '%s' was cancelled"),
					data->path);
		return;
	}
	g_task_return_new_error(task,
				VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("Cannot create disk '%s': %s"),
				data->path,
				data->error->message);
}

static void
vmsup_disk_communicate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupDiskCreate *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *stderr_buf = NULL;

	if (!g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source),
						  res,
						  NULL,
						  &stderr_buf,
						  &error)) {
		/* qemu-img may still be writing: stop it before removing its output */
		data->error = g_steal_pointer(&error);
		g_subprocess_force_exit(data->subprocess);
		g_subprocess_wait_async(data->subprocess,
					NULL,
					vmsup_disk_killed_cb,
					g_steal_pointer(&task));
		return;
	}
	if (!g_subprocess_get_if_exited(data->subprocess) ||
	    g_subprocess_get_exit_status(data->subprocess) != 0) {
		g_unlink(data->path);
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("Cannot create disk '%s': %s"),
					data->path,
					stderr_buf != NULL ? g_strstrip(stderr_buf)
							   : "qemu-img failed");
		return;
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_disk_create_async(const gchar *qemu_img,
			const gchar *path,
			const gchar *backing,
			guint size_gib,
			GCancellable *cancellable,
			GAsyncReadyCallback callback,
			gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = NULL;
	guint64 backing_size = 0;
	VmsupDiskCreate *data;

	g_return_if_fail(qemu_img != NULL);
	g_return_if_fail(path != NULL);
	g_return_if_fail(backing != NULL || size_gib > 0);

	task = g_task_new(NULL, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_disk_create_async);
	g_task_set_check_cancellable(task, FALSE);

	if (!vmsup_disk_check_absent(path, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (g_cancellable_set_error_if_cancelled(cancellable, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	dir = g_path_get_dirname(path);
	if (g_mkdir_with_parents(dir, 0700) != 0) {
		gint saved_errno = errno;
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("Cannot create the disk directory '%s': %s"),
					dir,
					g_strerror(saved_errno));
		return;
	}

	g_ptr_array_add(argv, g_strdup(qemu_img));
	g_ptr_array_add(argv, g_strdup("create"));
	g_ptr_array_add(argv, g_strdup("-q"));
	g_ptr_array_add(argv, g_strdup("-f"));
	g_ptr_array_add(argv, g_strdup("qcow2"));
	if (backing != NULL) {
		const gchar *format = NULL;
		guint64 size = 0;
		if (!vmsup_disk_backing_info(backing, &format, &size, &error)) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
		/* -u: qemu-img never opens the backing chain itself; vmsupd opens it for QEMU */
		g_ptr_array_add(argv, g_strdup("-u"));
		g_ptr_array_add(argv, g_strdup("-b"));
		g_ptr_array_add(argv, g_strdup(backing));
		g_ptr_array_add(argv, g_strdup("-F"));
		g_ptr_array_add(argv, g_strdup(format));
		if (size_gib == 0)
			backing_size = (size + 511) & ~(guint64)511; /* qcow2 wants whole sectors */
	}
	/* "--": the path never reads as an option */
	g_ptr_array_add(argv, g_strdup("--"));
	g_ptr_array_add(argv, g_strdup(path));
	if (size_gib > 0)
		g_ptr_array_add(argv, g_strdup_printf("%uG", size_gib));
	else
		g_ptr_array_add(argv, g_strdup_printf("%" G_GUINT64_FORMAT, backing_size));
	g_ptr_array_add(argv, NULL);

	data = g_new0(VmsupDiskCreate, 1);
	data->path = g_strdup(path);
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_disk_create_free);
	data->subprocess =
	    g_subprocess_newv((const gchar *const *)argv->pdata,
			      G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
			      &error);
	if (data->subprocess == NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("Cannot run qemu-img: %s"),
					error->message);
		return;
	}
	g_subprocess_communicate_utf8_async(data->subprocess,
					    NULL,
					    cancellable,
					    vmsup_disk_communicate_cb,
					    g_steal_pointer(&task));
}

gboolean
vmsup_disk_create_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

gboolean
vmsup_disk_check_absent(const gchar *path, GError **error)
{
	if (!g_file_test(path, G_FILE_TEST_EXISTS))
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("A disk '%s' already exists, left by an earlier VM of that "
		      "name; move it away or remove it first"),
		    path);
	return FALSE;
}

gboolean
vmsup_disk_remove(const gchar *path, GError **error)
{
	if (g_unlink(path) != 0 && errno != ENOENT) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot remove disk '%s': %s"),
			    path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	return TRUE;
}
