/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A copy of a VM's disk for its clone: qemu-img convert into a staging file
 * next to the target, its progress read from qemu-img's own meter, renamed
 * into place only once complete.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "vmsup-disk-chain.h"
#include "vmsup-disk-copy.h"
#include "vmsup-disk.h"
#include "vmsup-error.h"

/* what is kept of qemu-img's messages for an error */
#define VMSUP_DISK_COPY_MAX_MESSAGE 4096

typedef struct {
	GSubprocess *subprocess; /* owned */
	GInputStream *output;    /* unowned: the subprocess's */
	gchar *source;           /* owned */
	gchar *path;             /* owned */
	gchar *tmp_path;         /* owned */
	GString *message;        /* owned: what qemu-img said besides progress */
	GString *line;           /* owned: the line being read */
	VmsupDiskCopyProgressFunc progress;
	gpointer progress_data;
	GError *error; /* owned: why qemu-img was killed */
} VmsupDiskCopy;

static void
vmsup_disk_copy_free(VmsupDiskCopy *data)
{
	g_clear_object(&data->subprocess);
	g_free(data->source);
	g_free(data->path);
	g_free(data->tmp_path);
	g_string_free(data->message, TRUE);
	g_string_free(data->line, TRUE);
	g_clear_error(&data->error);
	g_free(data);
}

gchar *
vmsup_disk_copy_tmp_path(const gchar *path)
{
	return g_strconcat(path, VMSUP_DISK_COPY_TMP_SUFFIX, NULL);
}

static void
vmsup_disk_copy_return_failed(GTask *task, const gchar *why)
{
	VmsupDiskCopy *data = g_task_get_task_data(task);

	g_unlink(data->tmp_path);
	g_task_return_new_error(task,
				VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("Cannot copy disk '%s' to '%s': %s; check the free space in "
				  "the state directory"),
				data->source,
				data->path,
				why);
}

static void
vmsup_disk_copy_killed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupDiskCopy *data = g_task_get_task_data(task);

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	if (g_error_matches(data->error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_unlink(data->tmp_path);
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_CANCELLED,
					_("Copying disk '%s' was cancelled"),
					data->source);
		return;
	}
	vmsup_disk_copy_return_failed(task, data->error->message);
}

static void
vmsup_disk_copy_waited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupDiskCopy *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	if (!g_subprocess_wait_finish(G_SUBPROCESS(source), res, &error)) {
		vmsup_disk_copy_return_failed(task, error->message);
		return;
	}
	if (!g_subprocess_get_if_exited(data->subprocess) ||
	    g_subprocess_get_exit_status(data->subprocess) != 0) {
		g_strstrip(data->message->str);
		vmsup_disk_copy_return_failed(task,
					      data->message->str[0] != '\0' ? data->message->str
									    : "qemu-img failed");
		return;
	}
	/* complete now, and only now under its name */
	if (g_rename(data->tmp_path, data->path) != 0) {
		vmsup_disk_copy_return_failed(task, g_strerror(errno));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/* "    (12.50/100%)" is qemu-img's meter; anything else is a message */
static void
vmsup_disk_copy_take_line(VmsupDiskCopy *data)
{
	const gchar *text = data->line->str;
	gchar *end = NULL;
	gdouble percent;

	while (*text == ' ')
		text++;
	if (text[0] == '(') {
		percent = g_ascii_strtod(text + 1, &end);
		if (end != text + 1 && g_str_has_prefix(end, "/100%)")) {
			if (data->progress != NULL)
				data->progress(CLAMP(percent / 100., 0., 1.), data->progress_data);
			g_string_truncate(data->line, 0);
			return;
		}
	}
	if (data->message->len + data->line->len < VMSUP_DISK_COPY_MAX_MESSAGE) {
		g_string_append(data->message, data->line->str);
		g_string_append_c(data->message, '\n');
	}
	g_string_truncate(data->line, 0);
}

static void
vmsup_disk_copy_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupDiskCopy *data = g_task_get_task_data(task);
	g_autoptr(GBytes) bytes = NULL;
	GCancellable *cancellable;
	const gchar *chunk;
	gsize len;

	bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &data->error);
	if (bytes == NULL) {
		/* cancelled (or the pipe broke): qemu-img may still write, stop it first */
		g_subprocess_force_exit(data->subprocess);
		g_subprocess_wait_async(data->subprocess,
					NULL,
					vmsup_disk_copy_killed_cb,
					g_steal_pointer(&task));
		return;
	}
	chunk = g_bytes_get_data(bytes, &len);
	if (len == 0) {
		if (data->line->len > 0)
			vmsup_disk_copy_take_line(data);
		g_subprocess_wait_async(data->subprocess,
					NULL,
					vmsup_disk_copy_waited_cb,
					g_steal_pointer(&task));
		return;
	}
	for (gsize i = 0; i < len; i++) {
		if (chunk[i] == '\r' || chunk[i] == '\n')
			vmsup_disk_copy_take_line(data);
		else if (data->line->len < VMSUP_DISK_COPY_MAX_MESSAGE)
			g_string_append_c(data->line, chunk[i]);
	}
	/* read before the task is stolen: the order of arguments' evaluation is the compiler's */
	cancellable = g_task_get_cancellable(task);
	g_input_stream_read_bytes_async(data->output,
					4096,
					G_PRIORITY_DEFAULT,
					cancellable,
					vmsup_disk_copy_read_cb,
					g_steal_pointer(&task));
}

static void
vmsup_disk_copy_child_setup(gpointer user_data)
{
	/* a daemon killed mid-copy takes qemu-img along: its staging file is removed at load */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != GPOINTER_TO_INT(user_data))
		_exit(127);
}

/* the format of @backing, read from its header */
static const gchar *
vmsup_disk_copy_backing_format(const gchar *backing, GError **error)
{
	const gchar *format;
	gint fd = g_open(backing, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);

	format = fd >= 0 ? vmsup_disk_chain_probe_format(fd) : NULL;
	if (format == NULL) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot read image '%s': %s"),
			    backing,
			    g_strerror(saved_errno));
	}
	if (fd >= 0)
		close(fd);
	return format;
}

void
vmsup_disk_copy_async(const gchar *qemu_img,
		      const gchar *source,
		      const gchar *path,
		      const gchar *backing,
		      VmsupDiskCopyProgressFunc progress,
		      gpointer progress_data,
		      GCancellable *cancellable,
		      GAsyncReadyCallback callback,
		      gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	VmsupDiskCopy *data;

	g_return_if_fail(qemu_img != NULL);
	g_return_if_fail(source != NULL);
	g_return_if_fail(path != NULL);

	task = g_task_new(NULL, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_disk_copy_async);
	g_task_set_check_cancellable(task, FALSE);
	data = g_new0(VmsupDiskCopy, 1);
	data->source = g_strdup(source);
	data->path = g_strdup(path);
	data->tmp_path = vmsup_disk_copy_tmp_path(path);
	data->message = g_string_new(NULL);
	data->line = g_string_new(NULL);
	data->progress = progress;
	data->progress_data = progress_data;
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_disk_copy_free);

	if (!vmsup_disk_check_absent(path, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	/* a staging file is never anyone's disk: one a killed daemon left goes */
	g_unlink(data->tmp_path);

	g_ptr_array_add(argv, g_strdup(qemu_img));
	g_ptr_array_add(argv, g_strdup("convert"));
	g_ptr_array_add(argv, g_strdup("-p"));
	g_ptr_array_add(argv, g_strdup("-O"));
	g_ptr_array_add(argv, g_strdup("qcow2"));
	if (backing != NULL) {
		const gchar *format = vmsup_disk_copy_backing_format(backing, &error);
		if (format == NULL) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
		/* a new overlay on the same read-only base: only what the source wrote is copied */
		g_ptr_array_add(argv, g_strdup("-B"));
		g_ptr_array_add(argv, g_strdup(backing));
		g_ptr_array_add(argv, g_strdup("-F"));
		g_ptr_array_add(argv, g_strdup(format));
	}
	g_ptr_array_add(argv, g_strdup("--"));
	g_ptr_array_add(argv, g_strdup(source));
	g_ptr_array_add(argv, g_strdup(data->tmp_path));
	g_ptr_array_add(argv, NULL);

	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
					     G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_subprocess_launcher_set_child_setup(launcher,
					      vmsup_disk_copy_child_setup,
					      GINT_TO_POINTER(getpid()),
					      NULL);
	data->subprocess =
	    g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	if (data->subprocess == NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("Cannot run qemu-img: %s"),
					error->message);
		return;
	}
	data->output = g_subprocess_get_stdout_pipe(data->subprocess);
	g_input_stream_read_bytes_async(data->output,
					4096,
					G_PRIORITY_DEFAULT,
					cancellable,
					vmsup_disk_copy_read_cb,
					g_steal_pointer(&task));
}

gboolean
vmsup_disk_copy_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}
