/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vm.clone's parts that are not vm.create's: the clone's definition (the
 * source's, with a fresh identity) and its files (a copy of the disk, the
 * variable store), made by VmsupVmCreate as its provisioning stage.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-disk-copy.h"
#include "vmsup-error.h"
#include "vmsup-vm-clone.h"
#include "vmsup-vm-files.h"
#include "vmsup-vm-seed.h"

/* where the copy of the disk stands in the operation's progress */
#define VMSUP_VM_CLONE_PROGRESS_FROM 0.25
#define VMSUP_VM_CLONE_PROGRESS_TO 0.6

gboolean
vmsup_vm_clone_check_source(VmsupVm *source, GError **error)
{
	const gchar *name = vmsup_vm_get_name(source);
	VmsupVmState state = vmsup_vm_get_state(source);

	if (!vmsup_vm_has_process(source) &&
	    (state == VMSUP_VM_STATE_DEFINED || state == VMSUP_VM_STATE_STOPPED ||
	     state == VMSUP_VM_STATE_CRASHED))
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("VM '%s' is %s; only a stopped VM can be cloned: stop it first with "
		      "'vmsup stop %s', then clone it"),
		    name,
		    vmsup_vm_state_to_string(state),
		    name);
	return FALSE;
}

VmsupVmDef *
vmsup_vm_clone_def(const VmsupVmDef *source, const gchar *new_name, guint32 owner_uid)
{
	VmsupVmDef *def = vmsup_vm_def_copy(source);

	g_free(def->name);
	def->name = g_strdup(new_name);
	/* a fresh identity: the NIC's address, and with "created" cloud-init's instance-id */
	g_free(def->mac);
	def->mac = vmsup_vm_def_new_mac();
	def->created = g_get_real_time() / G_USEC_PER_SEC;
	def->owner_uid = owner_uid;
	/* the share is a workspace's, and that workspace has its own VM */
	g_clear_pointer(&def->share_dir, g_free);
	/* the disk's place is the service's to give */
	g_clear_pointer(&def->disk, g_free);
	return def;
}

typedef struct {
	VmsupOperation *op; /* owned */
	gchar *source_dir;  /* owned, NULL when the source has no guest files */
	gchar *guest_dir;   /* owned, likewise */
} VmsupVmCloneFiles;

static void
vmsup_vm_clone_files_free(VmsupVmCloneFiles *data)
{
	g_clear_object(&data->op);
	g_free(data->source_dir);
	g_free(data->guest_dir);
	g_free(data);
}

static void
vmsup_vm_clone_progress(gdouble fraction, gpointer user_data)
{
	VmsupOperation *op = user_data;

	vmsup_operation_set_stage(
	    op,
	    "copy",
	    VMSUP_VM_CLONE_PROGRESS_FROM +
		fraction * (VMSUP_VM_CLONE_PROGRESS_TO - VMSUP_VM_CLONE_PROGRESS_FROM));
}

static void
vmsup_vm_clone_copied_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmCloneFiles *data = g_task_get_task_data(task);
	GError *error = NULL;

	if (!vmsup_disk_copy_finish(res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	if (data->guest_dir != NULL) {
		/* files an earlier VM of this name left (a delete cut short) are not this one's */
		if (g_file_test(data->guest_dir, G_FILE_TEST_IS_DIR))
			vmsup_vm_files_remove_tree(data->guest_dir);
		if (!vmsup_vm_seed_clone(data->source_dir, data->guest_dir, &error)) {
			vmsup_vm_files_remove_tree(data->guest_dir);
			g_task_return_error(task, error);
			return;
		}
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_clone_files_async(const gchar *qemu_img,
			   const VmsupVmDef *source,
			   const VmsupVmDef *def,
			   const gchar *state_dir,
			   VmsupOperation *op,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	VmsupVmCloneFiles *data = g_new0(VmsupVmCloneFiles, 1);

	g_task_set_source_tag(task, vmsup_vm_clone_files_async);
	data->op = g_object_ref(op);
	if (source->image != NULL) {
		data->source_dir = vmsup_vm_seed_guest_dir(state_dir, source->name);
		data->guest_dir = vmsup_vm_seed_guest_dir(state_dir, def->name);
	}
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_vm_clone_files_free);
	vmsup_operation_set_stage(op, "copy", VMSUP_VM_CLONE_PROGRESS_FROM);
	vmsup_disk_copy_async(qemu_img,
			      source->disk,
			      def->disk,
			      source->image,
			      vmsup_vm_clone_progress,
			      data->op,
			      cancellable,
			      vmsup_vm_clone_copied_cb,
			      g_steal_pointer(&task));
}

gboolean
vmsup_vm_clone_files_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}
