/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService, create-operations: vm.create checks the request now and runs
 * the stages (image, accelerator, disk, definition, first start) as an
 * operation; op.get, op.list and op.cancel.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-disk.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-operation.h"
#include "vmsup-paths.h"
#include "vmsup-preflight.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-lock.h"
#include "vmsup-vm-service-private.h"
#include "vmsup-vm-store.h"

/* room wanted for an overlay that does not say how big it may grow */
#define VMSUP_VM_SERVICE_MIN_FREE_BYTES (64 * 1024 * 1024)

/* vm.create: checks now, the rest as an operation */

typedef struct {
	VmsupVmService *self; /* owned */
	VmsupOperation *op;   /* owned */
	VmsupVmDef *def;      /* owned */
	VmsupVmRecord *rec;   /* owned, once defined */
	gchar *name;          /* owned */
	gchar *qemu_binary;   /* owned */
	gchar *qemu_img;      /* owned, NULL without a disk */
	gboolean start;
	gboolean locked;
	gboolean disk_created;
	gboolean saving; /* a definition file may exist */
	GError *error;   /* owned: the failure being rolled back */
} VmsupVmCreate;

static void
vmsup_vm_create_free(VmsupVmCreate *data)
{
	g_clear_object(&data->self);
	g_clear_object(&data->op);
	g_clear_pointer(&data->def, vmsup_vm_def_free);
	g_clear_pointer(&data->rec, vmsup_vm_service_record_unref);
	g_free(data->name);
	g_free(data->qemu_binary);
	g_free(data->qemu_img);
	g_clear_error(&data->error);
	g_free(data);
}

static GCancellable *
vmsup_vm_create_cancellable(VmsupVmCreate *data)
{
	return vmsup_operation_get_cancellable(data->op);
}

static void
vmsup_vm_service_create_end(VmsupVmCreate *data)
{
	VmsupVmService *self = data->self;
	const gchar *name = data->name;

	/* name and lock are free before anyone learns the outcome */
	g_hash_table_remove(self->creating, name);
	g_hash_table_remove(self->creating_usage, name);
	if (data->locked) {
		data->locked = FALSE;
		vmsup_vm_lock_unlock(self->lock, name);
	}
	if (data->error == NULL) {
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' created (operation %" G_GINT64_FORMAT ")",
			     name,
			     vmsup_operation_get_id(data->op));
	} else {
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "Creating VM '%s' did not complete: %s",
			     name,
			     data->error->message);
	}
	vmsup_operation_finish(data->op, data->error);
	vmsup_vm_create_free(data);
}

static void
vmsup_vm_service_create_rollback_finish(VmsupVmCreate *data)
{
	VmsupVmService *self = data->self;
	g_autoptr(GError) error = NULL;

	if (data->rec != NULL && g_hash_table_lookup(self->vms, data->name) == data->rec) {
		if (!vmsup_vm_service_undefine(self, data->rec, &error))
			g_warning("%s, ignoring", error->message);
	} else if (data->saving && !vmsup_vm_store_remove(self->store, data->name, &error)) {
		g_warning("%s, ignoring", error->message);
	}
	g_clear_error(&error);
	if (data->disk_created && !vmsup_disk_remove(data->def->disk, &error))
		g_warning("%s, ignoring", error->message);
	vmsup_vm_service_create_end(data);
}

static void
vmsup_vm_service_create_rollback_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	vmsup_vm_service_locked_finish(VMSUP_VM_SERVICE(source), res, NULL);
	vmsup_vm_service_create_rollback_finish(user_data);
}

/* ends the operation; on @error (owned) undoes everything it did first */
static void
vmsup_vm_service_create_done(VmsupVmCreate *data, GError *error)
{
	/* a cancel accepted while the operation ran always wins, even over a late success */
	if (error == NULL &&
	    !g_cancellable_set_error_if_cancelled(vmsup_vm_create_cancellable(data), &error)) {
		vmsup_vm_service_create_end(data);
		return;
	}
	vmsup_error_convert(&error);
	if (g_cancellable_is_cancelled(vmsup_vm_create_cancellable(data)) &&
	    error->code != VMSUP_ERROR_CANCELLED) {
		g_debug("create of '%s' failed after cancel: %s", data->name, error->message);
		g_clear_error(&error);
		error = g_error_new(VMSUP_ERROR,
				    VMSUP_ERROR_CANCELLED,
				    _("Creating VM '%s' was cancelled"),
				    data->name);
	}
	data->error = error;
	if (data->rec != NULL && data->rec->process != NULL) {
		vmsup_vm_service_stop_locked_async(data->self,
						   data->rec,
						   TRUE,
						   0,
						   vmsup_vm_service_create_rollback_stopped_cb,
						   data);
		return;
	}
	vmsup_vm_service_create_rollback_finish(data);
}

static gboolean
vmsup_vm_service_create_check_cancelled(VmsupVmCreate *data)
{
	GError *error = NULL;
	if (!g_cancellable_set_error_if_cancelled(vmsup_vm_create_cancellable(data), &error))
		return FALSE;
	vmsup_vm_service_create_done(data, error);
	return TRUE;
}

static void
vmsup_vm_service_create_started_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *data = user_data;
	GError *error = NULL;

	if (!vmsup_vm_service_locked_finish(VMSUP_VM_SERVICE(source), res, &error)) {
		vmsup_vm_service_create_done(data, error);
		return;
	}
	vmsup_vm_service_create_done(data, NULL);
}

static void
vmsup_vm_service_create_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *data = user_data;
	VmsupVmService *self = data->self;
	GError *error = NULL;

	if (!vmsup_vm_store_save_finish(VMSUP_VM_STORE(source), res, &error)) {
		vmsup_vm_service_create_done(data, error);
		return;
	}
	if (vmsup_vm_service_create_check_cancelled(data))
		return;
	data->rec = vmsup_vm_service_record_new(self, vmsup_vm_def_copy(data->def));
	g_hash_table_insert(self->vms,
			    g_strdup(data->name),
			    vmsup_vm_service_record_ref(data->rec));
	vmsup_log_vm(G_LOG_LEVEL_INFO, data->name, "VM '%s' defined", data->name);
	vmsup_vm_service_emit_vm_changed(self, data->rec);
	if (!data->start) {
		vmsup_vm_service_create_done(data, NULL);
		return;
	}
	vmsup_operation_set_stage(data->op, "start", 0.75);
	vmsup_vm_service_start_locked_async(self,
					    data->rec,
					    vmsup_vm_create_cancellable(data),
					    vmsup_vm_service_create_started_cb,
					    data);
}

static void
vmsup_vm_service_create_define(VmsupVmCreate *data)
{
	if (vmsup_vm_service_create_check_cancelled(data))
		return;
	vmsup_operation_set_stage(data->op, "define", 0.6);
	data->saving = TRUE;
	vmsup_vm_store_save_async(data->self->store,
				  data->def,
				  vmsup_vm_create_cancellable(data),
				  vmsup_vm_service_create_saved_cb,
				  data);
}

static void
vmsup_vm_service_create_disk_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *data = user_data;
	GError *error = NULL;

	if (!vmsup_disk_create_finish(res, &error)) {
		vmsup_vm_service_create_done(data, error);
		return;
	}
	data->disk_created = TRUE;
	vmsup_vm_service_create_define(data);
}

static void
vmsup_vm_service_create_accel_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *data = user_data;
	VmsupVmDef *def = data->def;
	GError *error = NULL;
	guint64 need;

	if (!vmsup_vm_service_ensure_accel_finish(VMSUP_VM_SERVICE(source), res, &error)) {
		vmsup_vm_service_create_done(data, error);
		return;
	}
	if (vmsup_vm_service_create_check_cancelled(data))
		return;
	if (def->disk == NULL) {
		vmsup_vm_service_create_define(data);
		return;
	}
	need = def->disk_gib > 0 ? (guint64)def->disk_gib * 1024 * 1024 * 1024
				 : VMSUP_VM_SERVICE_MIN_FREE_BYTES;
	if (!vmsup_preflight_check_free_space(data->self->state_dir, need, &error)) {
		vmsup_vm_service_create_done(data, error);
		return;
	}
	vmsup_operation_set_stage(data->op, "provision", 0.25);
	vmsup_disk_create_async(data->qemu_img,
				def->disk,
				def->image,
				def->disk_gib,
				vmsup_vm_create_cancellable(data),
				vmsup_vm_service_create_disk_cb,
				data);
}

static void
vmsup_vm_service_create_qemu_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *data = user_data;
	g_autofree gchar *version = NULL;
	GError *error = NULL;

	if (!vmsup_preflight_check_qemu_finish(res, &version, &error)) {
		vmsup_vm_service_create_done(data, error);
		return;
	}
	g_debug("QEMU %s at '%s'", version, data->qemu_binary);
	vmsup_operation_set_stage(data->op, "preflight", 0.1);
	vmsup_vm_service_ensure_accel_async(data->self,
					    vmsup_vm_create_cancellable(data),
					    vmsup_vm_service_create_accel_cb,
					    data);
}

static void
vmsup_vm_service_create_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmCreate *data = user_data;
	GError *error = NULL;

	if (!vmsup_vm_lock_lock_finish(res, &error)) {
		vmsup_vm_service_create_done(data, error);
		return;
	}
	data->locked = TRUE;
	if (vmsup_vm_service_create_check_cancelled(data))
		return;
	vmsup_preflight_check_qemu_async(data->qemu_binary,
					 vmsup_vm_create_cancellable(data),
					 vmsup_vm_service_create_qemu_cb,
					 data);
}

/* fills in the bundled guest when neither kernel, initrd nor image is given */
static gboolean
vmsup_vm_service_resolve_guest(VmsupVmDef *def, GError **error)
{
	g_autofree gchar *kernel = NULL;
	g_autofree gchar *initrd = NULL;

	if (def->kernel != NULL || def->initrd != NULL || def->image != NULL)
		return TRUE;
	kernel = vmsup_paths_guest_kernel();
	initrd = vmsup_paths_guest_initrd();
	if (kernel == NULL || initrd == NULL) {
		g_autofree gchar *dir = g_build_filename(vmsup_paths_data_dir(), "guest", NULL);
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("No kernel or image given, and the bundled guest is not built (looked "
		      "in '%s'); build it with 'meson setup -Dguest=enabled' and 'meson "
		      "compile', or pass 'kernel' or 'image'"),
		    dir);
		return FALSE;
	}
	def->kernel = g_steal_pointer(&kernel);
	def->initrd = g_steal_pointer(&initrd);
	if (def->cmdline == NULL)
		def->cmdline = g_strdup(VMSUP_VM_DEF_BUNDLED_CMDLINE);
	return TRUE;
}

/* the cap on VMs (MaxVMs) */

void
vmsup_vm_service_set_max_vms(VmsupVmService *self, guint max_vms)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	self->max_vms = max_vms;
}

guint
vmsup_vm_service_get_max_vms(VmsupVmService *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), 0);
	return self->max_vms;
}

guint
vmsup_vm_service_count_vms(VmsupVmService *self)
{
	GHashTableIter iter;
	gpointer name;
	guint count;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), 0);
	count = g_hash_table_size(self->vms);
	/* a create is in both tables from its definition until it ends */
	g_hash_table_iter_init(&iter, self->creating);
	while (g_hash_table_iter_next(&iter, &name, NULL)) {
		if (!g_hash_table_contains(self->vms, name))
			count++;
	}
	return count;
}

/*
 * Creates in flight count: they enter self->creating before this returns,
 * on the one main loop, so two concurrent creates cannot both take the last
 * place.
 */
static gboolean
vmsup_vm_service_check_max_vms(VmsupVmService *self, const gchar *name, GError **error)
{
	guint count;

	if (self->max_vms == 0)
		return TRUE;
	count = vmsup_vm_service_count_vms(self);
	if (count < self->max_vms)
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    /* TRANSLATORS: MaxVMs is a key of vmsupd.conf, do not translate it */
		    _("Cannot create VM '%s': vmsupd allows at most %u VMs (MaxVMs in "
		      "vmsupd.conf) and %u are defined or being created; delete a VM you no "
		      "longer need ('vmsup delete NAME'), or raise MaxVMs and restart vmsupd"),
		    name,
		    self->max_vms,
		    count);
	return FALSE;
}

static void
vmsup_vm_service_create_waited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupOperation *op = VMSUP_OPERATION(source);
	g_autoptr(JsonObject) result = json_object_new();
	const GError *op_error = vmsup_operation_get_error(op);
	GError *error = NULL;

	if (!vmsup_operation_wait_finish(op, res, &error)) {
		vmsup_vm_service_return_error(task, error);
		return;
	}
	if (op_error != NULL) {
		g_task_return_error(task, g_error_copy(op_error));
		return;
	}
	json_object_set_int_member(result, "operation", vmsup_operation_get_id(op));
	json_object_set_string_member(result, "vm", vmsup_operation_get_vm(op));
	g_task_return_pointer(task, g_steal_pointer(&result), (GDestroyNotify)json_object_unref);
}

void
vmsup_vm_service_create_async(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	static const gchar *const ignore[] = {"start", "wait", NULL};
	g_autoptr(GTask) task = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupVmDef) def = NULL;
	g_autoptr(VmsupQemuConfig) config = NULL;
	g_autofree gchar *binary = NULL;
	g_autofree gchar *qemu_img = NULL;
	VmsupVmCreate *data;
	const gchar *name;
	gboolean start = FALSE;
	gboolean wait = FALSE;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_create_async);

	/* nothing is touched before every check has passed, the name first */
	name = vmsup_vm_service_get_name_param(params, &error);
	if (name == NULL || !vmsup_vm_service_check_not_creating(self, name, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (g_hash_table_contains(self->vms, name)) {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_ALREADY_EXISTS,
		    _("VM '%s' already exists; choose another name or delete it "
		      "first"),
		    name);
		return;
	}
	if (!vmsup_vm_service_check_max_vms(self, name, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!vmsup_vm_service_get_bool_param(params, "start", FALSE, &start, &error) ||
	    !vmsup_vm_service_get_bool_param(params, "wait", FALSE, &wait, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	def = vmsup_vm_def_new_from_params(params, ignore, caller, &error);
	if (def == NULL || !vmsup_vm_service_resolve_guest(def, &error) ||
	    !vmsup_vm_def_validate(def, &error) ||
	    !vmsup_vm_service_cgroup_check_def(self, def, &error) ||
	    !vmsup_vm_service_check_owner_limits(self, def, NULL, &error) ||
	    !vmsup_preflight_check_files(def, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	config = vmsup_qemu_config_new(name);
	config->qemu_binary = g_strdup(self->qemu_binary);
	binary = vmsup_qemu_config_find_binary(config, &error);
	if (binary == NULL) {
		vmsup_vm_service_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (def->image != NULL || def->disk_gib > 0) {
		g_autofree gchar *basename = g_strconcat(name, ".qcow2", NULL);
		qemu_img = vmsup_disk_find_qemu_img(binary, &error);
		if (qemu_img == NULL) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
		def->disk = g_build_filename(self->state_dir, "disks", basename, NULL);
		if (g_file_test(def->disk, G_FILE_TEST_EXISTS)) {
			g_task_return_new_error(
			    task,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("A disk '%s' already exists, left by an earlier VM "
			      "named '%s'; move it away or remove it first"),
			    def->disk,
			    name);
			return;
		}
	}
	def->created = g_get_real_time() / G_USEC_PER_SEC;

	vmsup_vm_service_prune_ops(self);
	data = g_new0(VmsupVmCreate, 1);
	data->self = g_object_ref(self);
	data->name = g_strdup(name);
	data->op = g_object_ref(vmsup_vm_service_add_op(self, "create", name));
	vmsup_vm_service_set_op_owner(data->op, def->owner_uid);
	data->def = g_steal_pointer(&def);
	data->qemu_binary = g_steal_pointer(&binary);
	data->qemu_img = g_steal_pointer(&qemu_img);
	data->start = start;
	g_hash_table_insert(self->creating, g_strdup(name), data->op);
	vmsup_vm_service_note_creating(self, name, data->def);
	vmsup_log_vm(G_LOG_LEVEL_INFO,
		     name,
		     "creating VM '%s' (operation %" G_GINT64_FORMAT ")",
		     name,
		     vmsup_operation_get_id(data->op));
	vmsup_operation_set_stage(data->op, "preflight", 0.);

	if (wait) {
		vmsup_operation_wait_async(data->op,
					   NULL,
					   vmsup_vm_service_create_waited_cb,
					   g_steal_pointer(&task));
	} else {
		g_autoptr(JsonObject) result = json_object_new();
		json_object_set_int_member(result, "operation", vmsup_operation_get_id(data->op));
		json_object_set_string_member(result, "vm", name);
		g_task_return_pointer(task,
				      g_steal_pointer(&result),
				      (GDestroyNotify)json_object_unref);
	}
	vmsup_vm_lock_lock_async(self->lock,
				 data->name,
				 vmsup_vm_create_cancellable(data),
				 vmsup_vm_service_create_locked_cb,
				 data);
}

JsonObject *
vmsup_vm_service_create_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

/* op.get, op.list, op.cancel */

static VmsupOperation *
vmsup_vm_service_find_op(VmsupVmService *self, JsonObject *params, GError **error)
{
	VmsupOperation *op;
	gint64 id = 0;

	if (!vmsup_json_object_get_int_in_range(params, "id", 1, G_MAXINT64, 0, &id, error))
		return NULL;
	if (id == 0) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' is required"),
			    "id");
		return NULL;
	}
	vmsup_vm_service_prune_ops(self);
	op = g_hash_table_lookup(self->ops, &id);
	if (op == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    _("Operation %lld does not exist (finished operations are kept for 10 "
			      "minutes); 'vmsup ops' lists them"),
			    (long long)id);
		return NULL;
	}
	return op;
}

void
vmsup_vm_service_op_get_async(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GError) error = NULL;
	VmsupOperation *op;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_op_get_async);
	op = vmsup_vm_service_find_op(self, params, &error);
	if (op == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_pointer(task, vmsup_operation_to_json(op), (GDestroyNotify)json_object_unref);
}

JsonObject *
vmsup_vm_service_op_get_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

static gint
vmsup_vm_service_compare_ops(gconstpointer a, gconstpointer b)
{
	gint64 id_a = vmsup_operation_get_id(*(VmsupOperation *const *)a);
	gint64 id_b = vmsup_operation_get_id(*(VmsupOperation *const *)b);
	return id_a < id_b ? -1 : id_a > id_b;
}

void
vmsup_vm_service_op_list_async(VmsupVmService *self,
			       const VmsupCaller *caller,
			       JsonObject *params,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GPtrArray) ops = NULL;
	g_autoptr(JsonArray) array = json_array_new();
	g_autoptr(JsonObject) result = json_object_new();
	GHashTableIter iter;
	gpointer value;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_op_list_async);
	vmsup_vm_service_prune_ops(self);
	ops = g_ptr_array_new();
	g_hash_table_iter_init(&iter, self->ops);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(ops, value);
	g_ptr_array_sort(ops, vmsup_vm_service_compare_ops);
	for (guint i = 0; i < ops->len; i++)
		json_array_add_object_element(array,
					      vmsup_operation_to_json(g_ptr_array_index(ops, i)));
	json_object_set_array_member(result, "operations", g_steal_pointer(&array));
	g_task_return_pointer(task, g_steal_pointer(&result), (GDestroyNotify)json_object_unref);
}

JsonObject *
vmsup_vm_service_op_list_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

static void
vmsup_vm_service_op_cancel_waited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupOperation *op = VMSUP_OPERATION(source);
	GError *error = NULL;

	if (!vmsup_operation_wait_finish(op, res, &error)) {
		vmsup_vm_service_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, vmsup_operation_to_json(op), (GDestroyNotify)json_object_unref);
}

void
vmsup_vm_service_op_cancel_async(VmsupVmService *self,
				 const VmsupCaller *caller,
				 JsonObject *params,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GError) error = NULL;
	VmsupOperation *op;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_op_cancel_async);
	op = vmsup_vm_service_find_op(self, params, &error);
	if (op == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (vmsup_operation_is_finished(op)) {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Operation %lld already finished (%s); nothing to cancel"),
		    (long long)vmsup_operation_get_id(op),
		    vmsup_operation_state_to_string(vmsup_operation_get_state(op)));
		return;
	}
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     vmsup_operation_get_vm(op),
		     "cancelling operation %" G_GINT64_FORMAT " (%s of VM '%s')",
		     vmsup_operation_get_id(op),
		     vmsup_operation_get_kind(op),
		     vmsup_operation_get_vm(op));
	g_cancellable_cancel(vmsup_operation_get_cancellable(op));
	/* answer once everything the operation did is undone */
	vmsup_operation_wait_async(op,
				   NULL,
				   vmsup_vm_service_op_cancel_waited_cb,
				   g_steal_pointer(&task));
}

JsonObject *
vmsup_vm_service_op_cancel_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}
