/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VmsupVmCreate: the stages of one vm.create (QEMU, accelerator, disk,
 * definition, first start) run as an operation, and their rollback.
 */

#include "config.h"

#include <glib/gi18n.h>

#include <sys/stat.h>

#include "vmsup-disk.h"
#include "vmsup-error.h"
#include "vmsup-log.h"
#include "vmsup-preflight.h"
#include "vmsup-vm-clone.h"
#include "vmsup-vm-create.h"
#include "vmsup-vm-files.h"
#include "vmsup-vm-seed.h"

/* room wanted for an overlay that does not say how big it may grow */
#define VMSUP_VM_CREATE_MIN_FREE_BYTES (64 * 1024 * 1024)

struct _VmsupVmCreate {
	GObject parent_instance;
	VmsupOperation *op;  /* owned */
	VmsupVmDef *def;     /* owned */
	VmsupVm *vm;         /* owned, once defined */
	gchar *qemu_binary;  /* owned */
	gchar *qemu_img;     /* owned, NULL without a disk */
	gchar *state_dir;    /* owned */
	VmsupVmLock *lock;   /* owned */
	VmsupVmStore *store; /* owned */
	VmsupVmAccel *accel; /* owned */
	VmsupVm *source;     /* owned: the VM a clone copies, or NULL */
	VmsupVmCreateHooks hooks;
	GObject *user_data; /* owned */
	gboolean start;
	gboolean locked;
	gboolean source_locked;
	gboolean disk_created;
	gboolean saving; /* a definition file may exist */
	GError *error;   /* owned: the failure being rolled back */
};

G_DEFINE_FINAL_TYPE(VmsupVmCreate, vmsup_vm_create, G_TYPE_OBJECT)

static GCancellable *
vmsup_vm_create_cancellable(VmsupVmCreate *self)
{
	return vmsup_operation_get_cancellable(self->op);
}

/* drops the ref run() took */
static void
vmsup_vm_create_end(VmsupVmCreate *self)
{
	const gchar *name = self->def->name;

	/* name and lock are free before anyone learns the outcome */
	self->hooks.ended(self, self->user_data);
	if (self->locked) {
		self->locked = FALSE;
		vmsup_vm_lock_unlock(self->lock, name);
	}
	if (self->source_locked) {
		self->source_locked = FALSE;
		vmsup_vm_lock_unlock(self->lock, vmsup_vm_get_name(self->source));
	}
	if (self->error == NULL) {
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' %s (operation %" G_GINT64_FORMAT ")",
			     name,
			     self->source != NULL ? "cloned" : "created",
			     vmsup_operation_get_id(self->op));
	} else {
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "%s VM '%s' did not complete: %s",
			     self->source != NULL ? "Cloning" : "Creating",
			     name,
			     self->error->message);
	}
	vmsup_operation_finish(self->op, self->error);
	g_object_unref(self);
}

static void
vmsup_vm_create_rollback_finish(VmsupVmCreate *self)
{
	g_autoptr(GError) error = NULL;

	if (self->vm != NULL) {
		if (!self->hooks.undefine(self->vm, &error, self->user_data))
			g_warning("%s, ignoring", error->message);
	} else if (self->saving && !vmsup_vm_store_remove(self->store, self->def->name, &error)) {
		g_warning("%s, ignoring", error->message);
	}
	g_clear_error(&error);
	if (self->disk_created && !vmsup_disk_remove(self->def->disk, &error))
		g_warning("%s, ignoring", error->message);
	/* a clone's guest files, made with its disk (once defined, undefine took them) */
	if (self->disk_created && self->vm == NULL && self->source != NULL &&
	    self->def->image != NULL) {
		g_autofree gchar *guest_dir =
		    vmsup_vm_seed_guest_dir(self->state_dir, self->def->name);
		if (g_file_test(guest_dir, G_FILE_TEST_IS_DIR))
			vmsup_vm_files_remove_tree(guest_dir);
	}
	vmsup_vm_create_end(self);
}

static void
vmsup_vm_create_rollback_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	vmsup_vm_stop_finish(VMSUP_VM(source), res, NULL);
	vmsup_vm_create_rollback_finish(user_data);
}

/* ends the operation; on @error (owned) undoes everything it did first */
static void
vmsup_vm_create_done(VmsupVmCreate *self, GError *error)
{
	/* a cancel accepted while the operation ran always wins, even over a late success */
	if (error == NULL &&
	    !g_cancellable_set_error_if_cancelled(vmsup_vm_create_cancellable(self), &error)) {
		vmsup_vm_create_end(self);
		return;
	}
	vmsup_error_convert(&error);
	if (g_cancellable_is_cancelled(vmsup_vm_create_cancellable(self)) &&
	    error->code != VMSUP_ERROR_CANCELLED) {
		g_debug("create of '%s' failed after cancel: %s", self->def->name, error->message);
		g_clear_error(&error);
		error = g_error_new(VMSUP_ERROR,
				    VMSUP_ERROR_CANCELLED,
				    self->source != NULL ? _("Cloning VM '%s' was cancelled")
							 : _("Creating VM '%s' was cancelled"),
				    self->def->name);
	}
	self->error = error;
	if (self->vm != NULL && vmsup_vm_has_process(self->vm)) {
		vmsup_vm_stop_async(self->vm,
				    TRUE,
				    0,
				    NULL,
				    vmsup_vm_create_rollback_stopped_cb,
				    self);
		return;
	}
	vmsup_vm_create_rollback_finish(self);
}

static gboolean
vmsup_vm_create_check_cancelled(VmsupVmCreate *self)
{
	GError *error = NULL;

	if (!g_cancellable_set_error_if_cancelled(vmsup_vm_create_cancellable(self), &error))
		return FALSE;
	vmsup_vm_create_done(self, error);
	return TRUE;
}

static void
vmsup_vm_create_started_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *self = user_data;
	GError *error = NULL;

	if (!vmsup_vm_start_finish(VMSUP_VM(source), res, &error)) {
		vmsup_vm_create_done(self, error);
		return;
	}
	vmsup_vm_create_done(self, NULL);
}

static void
vmsup_vm_create_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *self = user_data;
	GError *error = NULL;

	if (!vmsup_vm_store_save_finish(VMSUP_VM_STORE(source), res, &error)) {
		vmsup_vm_create_done(self, error);
		return;
	}
	if (vmsup_vm_create_check_cancelled(self))
		return;
	self->vm = g_object_ref(self->hooks.define(vmsup_vm_def_copy(self->def), self->user_data));
	vmsup_log_vm(G_LOG_LEVEL_INFO, self->def->name, "VM '%s' defined", self->def->name);
	if (!self->start) {
		vmsup_vm_create_done(self, NULL);
		return;
	}
	vmsup_operation_set_stage(self->op, "start", 0.75);
	vmsup_vm_start_async(self->vm,
			     vmsup_vm_create_cancellable(self),
			     vmsup_vm_create_started_cb,
			     self);
}

static void
vmsup_vm_create_define(VmsupVmCreate *self)
{
	if (vmsup_vm_create_check_cancelled(self))
		return;
	vmsup_operation_set_stage(self->op, "define", 0.6);
	self->saving = TRUE;
	vmsup_vm_store_save_async(self->store,
				  self->def,
				  vmsup_vm_create_cancellable(self),
				  vmsup_vm_create_saved_cb,
				  self);
}

static void
vmsup_vm_create_disk_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *self = user_data;
	GError *error = NULL;

	if (!vmsup_disk_create_finish(res, &error)) {
		vmsup_vm_create_done(self, error);
		return;
	}
	self->disk_created = TRUE;
	vmsup_vm_create_define(self);
}

static void
vmsup_vm_create_cloned_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *self = user_data;
	GError *error = NULL;
	gboolean ok = vmsup_vm_clone_files_finish(res, &error);

	/* a copy that failed left nothing; one that succeeded is ours to undo */
	if (!ok) {
		vmsup_vm_create_done(self, error);
		return;
	}
	self->disk_created = TRUE;
	vmsup_vm_create_define(self);
}

/* room for a copy of the source's disk: what its file holds now */
static guint64
vmsup_vm_create_clone_need(VmsupVmCreate *self)
{
	struct stat st;

	if (stat(vmsup_vm_get_def(self->source)->disk, &st) != 0)
		return VMSUP_VM_CREATE_MIN_FREE_BYTES;
	return (guint64)st.st_blocks * 512 + VMSUP_VM_CREATE_MIN_FREE_BYTES;
}

static void
vmsup_vm_create_accel_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *self = user_data;
	VmsupVmDef *def = self->def;
	GError *error = NULL;
	guint64 need;

	if (!vmsup_vm_accel_ensure_finish(VMSUP_VM_ACCEL(source), res, &error)) {
		vmsup_vm_create_done(self, error);
		return;
	}
	if (vmsup_vm_create_check_cancelled(self))
		return;
	if (def->disk == NULL) {
		vmsup_vm_create_define(self);
		return;
	}
	if (self->source != NULL) {
		if (!vmsup_preflight_check_free_space(self->state_dir,
						      vmsup_vm_create_clone_need(self),
						      &error)) {
			vmsup_vm_create_done(self, error);
			return;
		}
		vmsup_vm_clone_files_async(self->qemu_img,
					   vmsup_vm_get_def(self->source),
					   def,
					   self->state_dir,
					   self->op,
					   vmsup_vm_create_cancellable(self),
					   vmsup_vm_create_cloned_cb,
					   self);
		return;
	}
	need = def->disk_gib > 0 ? (guint64)def->disk_gib * 1024 * 1024 * 1024
				 : VMSUP_VM_CREATE_MIN_FREE_BYTES;
	if (!vmsup_preflight_check_free_space(self->state_dir, need, &error)) {
		vmsup_vm_create_done(self, error);
		return;
	}
	vmsup_operation_set_stage(self->op, "provision", 0.25);
	vmsup_disk_create_async(self->qemu_img,
				def->disk,
				def->image,
				def->disk_gib,
				vmsup_vm_create_cancellable(self),
				vmsup_vm_create_disk_cb,
				self);
}

static void
vmsup_vm_create_qemu_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *self = user_data;
	g_autofree gchar *version = NULL;
	GError *error = NULL;

	if (!vmsup_preflight_check_qemu_finish(res, &version, &error)) {
		vmsup_vm_create_done(self, error);
		return;
	}
	g_debug("QEMU %s at '%s'", version, self->qemu_binary);
	vmsup_operation_set_stage(self->op, "preflight", 0.1);
	vmsup_vm_accel_ensure_async(self->accel,
				    vmsup_vm_create_cancellable(self),
				    vmsup_vm_create_accel_cb,
				    self);
}

static void
vmsup_vm_create_preflight(VmsupVmCreate *self)
{
	vmsup_preflight_check_qemu_async(self->qemu_binary,
					 vmsup_vm_create_cancellable(self),
					 vmsup_vm_create_qemu_cb,
					 self);
}

/* a clone's source stays as it is (stopped) until the clone ends */
static void
vmsup_vm_create_source_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *self = user_data;
	GError *error = NULL;

	if (!vmsup_vm_lock_lock_finish(res, &error)) {
		vmsup_vm_create_done(self, error);
		return;
	}
	self->source_locked = TRUE;
	if (vmsup_vm_create_check_cancelled(self))
		return;
	if (!vmsup_vm_clone_check_source(self->source, &error)) {
		vmsup_vm_create_done(self, error);
		return;
	}
	vmsup_vm_create_preflight(self);
}

static void
vmsup_vm_create_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *self = user_data;
	GError *error = NULL;

	if (!vmsup_vm_lock_lock_finish(res, &error)) {
		vmsup_vm_create_done(self, error);
		return;
	}
	self->locked = TRUE;
	if (vmsup_vm_create_check_cancelled(self))
		return;
	if (self->source != NULL) {
		vmsup_vm_lock_lock_async(self->lock,
					 vmsup_vm_get_name(self->source),
					 vmsup_vm_create_cancellable(self),
					 vmsup_vm_create_source_locked_cb,
					 self);
		return;
	}
	vmsup_vm_create_preflight(self);
}

void
vmsup_vm_create_run(VmsupVmCreate *self)
{
	g_return_if_fail(VMSUP_IS_VM_CREATE(self));
	vmsup_operation_set_stage(self->op, "preflight", 0.);
	vmsup_vm_lock_lock_async(self->lock,
				 self->def->name,
				 vmsup_vm_create_cancellable(self),
				 vmsup_vm_create_locked_cb,
				 g_object_ref(self));
}

void
vmsup_vm_create_set_source(VmsupVmCreate *self, VmsupVm *source)
{
	g_return_if_fail(VMSUP_IS_VM_CREATE(self));
	g_return_if_fail(VMSUP_IS_VM(source));
	g_set_object(&self->source, source);
}

VmsupOperation *
vmsup_vm_create_get_operation(VmsupVmCreate *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_CREATE(self), NULL);
	return self->op;
}

const VmsupVmDef *
vmsup_vm_create_get_def(VmsupVmCreate *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_CREATE(self), NULL);
	return self->def;
}

static void
vmsup_vm_create_finalize(GObject *object)
{
	VmsupVmCreate *self = VMSUP_VM_CREATE(object);

	g_clear_object(&self->op);
	g_clear_pointer(&self->def, vmsup_vm_def_free);
	g_clear_object(&self->vm);
	g_clear_object(&self->lock);
	g_clear_object(&self->store);
	g_clear_object(&self->accel);
	g_clear_object(&self->source);
	g_clear_object(&self->user_data);
	g_free(self->qemu_binary);
	g_free(self->qemu_img);
	g_free(self->state_dir);
	g_clear_error(&self->error);
	G_OBJECT_CLASS(vmsup_vm_create_parent_class)->finalize(object);
}

static void
vmsup_vm_create_class_init(VmsupVmCreateClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = vmsup_vm_create_finalize;
}

static void
vmsup_vm_create_init(VmsupVmCreate *self)
{
}

VmsupVmCreate *
vmsup_vm_create_new(VmsupOperation *op,
		    VmsupVmDef *def,
		    const gchar *qemu_binary,
		    const gchar *qemu_img,
		    const gchar *state_dir,
		    gboolean start,
		    VmsupVmLock *lock,
		    VmsupVmStore *store,
		    VmsupVmAccel *accel,
		    const VmsupVmCreateHooks *hooks,
		    gpointer user_data)
{
	VmsupVmCreate *self = g_object_new(VMSUP_TYPE_VM_CREATE, NULL);

	self->op = g_object_ref(op);
	self->def = def;
	self->qemu_binary = g_strdup(qemu_binary);
	self->qemu_img = g_strdup(qemu_img);
	self->state_dir = g_strdup(state_dir);
	self->start = start;
	self->lock = g_object_ref(lock);
	self->store = g_object_ref(store);
	self->accel = g_object_ref(accel);
	self->hooks = *hooks;
	self->user_data = g_object_ref(user_data);
	return self;
}
