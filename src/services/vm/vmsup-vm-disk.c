/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vm.set's disk_gib: a VM's disk grown, with qemu-img resize while QEMU is
 * not running, with QMP block_resize (the guest sees it at once) while it is.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "vmsup-disk-chain.h"
#include "vmsup-disk.h"
#include "vmsup-error.h"
#include "vmsup-qmp-client.h"
#include "vmsup-vm-disk.h"

#define VMSUP_VM_DISK_GIB ((guint64)1024 * 1024 * 1024)
/* the top node of the VM's disk in QEMU's block graph (vmsup-qemu-process.c) */
#define VMSUP_VM_DISK_NODE "vmsup-disk0"

gboolean
vmsup_vm_disk_get_size(const gchar *disk, guint64 *out_bytes, GError **error)
{
	g_auto(VmsupQcow2Header) header = {0};
	gboolean ok;
	gint fd = g_open(disk, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);

	if (fd < 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot read disk '%s': %s; check the state directory"),
			    disk,
			    g_strerror(saved_errno));
		return FALSE;
	}
	ok = vmsup_qcow2_header_read(fd, disk, &header, error);
	close(fd);
	if (ok)
		*out_bytes = header.size;
	return ok;
}

static void
vmsup_vm_disk_resized_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	g_autoptr(JsonNode) reply = NULL;
	GError *error = NULL;

	reply = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (reply == NULL) {
		g_prefix_error(&error, _("Cannot grow the disk of the running VM: "));
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_disk_qemu_img_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GSubprocess *subprocess = G_SUBPROCESS(source);
	g_autofree gchar *stderr_buf = NULL;
	GError *error = NULL;

	if (!g_subprocess_communicate_utf8_finish(subprocess, res, NULL, &stderr_buf, &error)) {
		g_task_return_error(task, error);
		return;
	}
	if (!g_subprocess_get_if_exited(subprocess) ||
	    g_subprocess_get_exit_status(subprocess) != 0) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("Cannot grow disk '%s': %s"),
					(const gchar *)g_task_get_task_data(task),
					stderr_buf != NULL ? g_strstrip(stderr_buf)
							   : "qemu-img failed");
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/* FALSE and the error when @vm's disk cannot become @disk_gib; @out_bytes its size now */
static gboolean
vmsup_vm_disk_check(VmsupVm *vm, guint disk_gib, guint64 *out_bytes, GError **error)
{
	const VmsupVmDef *def = vmsup_vm_get_def(vm);

	if (def->disk == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("VM '%s' has no disk to grow; a VM gets one when created with "
			      "--disk-gib or --image"),
			    def->name);
		return FALSE;
	}
	if (!vmsup_vm_disk_get_size(def->disk, out_bytes, error))
		return FALSE;
	if ((guint64)disk_gib * VMSUP_VM_DISK_GIB < *out_bytes) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Disks only grow; the disk of VM '%s' is %.1f GiB: ask for more, "
			      "or leave 'disk_gib' out"),
			    def->name,
			    (gdouble)*out_bytes / VMSUP_VM_DISK_GIB);
		return FALSE;
	}
	if (vmsup_vm_has_process(vm) && !vmsup_vm_is_alive(vm)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("VM '%s' is %s; grow its disk once it runs or has stopped"),
			    def->name,
			    vmsup_vm_state_to_string(vmsup_vm_get_state(vm)));
		return FALSE;
	}
	return TRUE;
}

void
vmsup_vm_disk_grow_async(VmsupVm *vm,
			 guint disk_gib,
			 const gchar *qemu_binary,
			 GCancellable *cancellable,
			 GAsyncReadyCallback callback,
			 gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(vm, cancellable, callback, user_data);
	const VmsupVmDef *def = vmsup_vm_get_def(vm);
	g_autoptr(GSubprocess) subprocess = NULL;
	g_autofree gchar *size = NULL;
	g_autofree gchar *qemu_img = NULL;
	GError *error = NULL;
	guint64 bytes = 0;

	g_task_set_source_tag(task, vmsup_vm_disk_grow_async);
	if (!vmsup_vm_disk_check(vm, disk_gib, &bytes, &error)) {
		g_task_return_error(task, error);
		return;
	}
	if ((guint64)disk_gib * VMSUP_VM_DISK_GIB == bytes) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (vmsup_vm_is_alive(vm)) {
		VmsupVmHandles *handles = vmsup_vm_get_handles(vm);
		VmsupQmpClient *qmp =
		    handles != NULL ? vmsup_qemu_process_get_qmp(handles->process) : NULL;
		g_autoptr(JsonObject) args = json_object_new();

		if (qmp == NULL) {
			g_task_return_new_error(task,
						VMSUP_ERROR,
						VMSUP_ERROR_FAILED_PRECONDITION,
						_("VM '%s' runs, but its QMP connection is lost; "
						  "stop it and set 'disk_gib' again"),
						def->name);
			return;
		}
		json_object_set_string_member(args, "node-name", VMSUP_VM_DISK_NODE);
		json_object_set_int_member(args, "size", (gint64)disk_gib * VMSUP_VM_DISK_GIB);
		vmsup_qmp_client_execute_async(qmp,
					       "block_resize",
					       args,
					       cancellable,
					       vmsup_vm_disk_resized_cb,
					       g_steal_pointer(&task));
		return;
	}
	qemu_img = vmsup_disk_find_qemu_img(qemu_binary, &error);
	if (qemu_img == NULL) {
		g_task_return_error(task, error);
		return;
	}
	size = g_strdup_printf("%uG", disk_gib);
	subprocess =
	    g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
			     &error,
			     qemu_img,
			     "resize",
			     "-q",
			     "-f",
			     "qcow2",
			     "--",
			     def->disk,
			     size,
			     NULL);
	if (subprocess == NULL) {
		g_prefix_error(&error, _("Cannot run qemu-img: "));
		g_task_return_error(task, error);
		return;
	}
	g_task_set_task_data(task, g_strdup(def->disk), g_free);
	g_subprocess_communicate_utf8_async(subprocess,
					    NULL,
					    cancellable,
					    vmsup_vm_disk_qemu_img_cb,
					    g_steal_pointer(&task));
}

gboolean
vmsup_vm_disk_grow_finish(VmsupVm *vm, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, vm), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}
