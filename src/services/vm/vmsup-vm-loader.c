/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VmsupVmLoader: the VMs of a registry at daemon start-up (definitions and
 * how each last run ended read from the store, QEMUs of an earlier daemon
 * adopted, autostart) and at shut-down (all stopped), each VM under its
 * lock.
 */

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "vmsup-disk-copy.h"
#include "vmsup-error.h"
#include "vmsup-log.h"
#include "vmsup-qemu-process.h"
#include "vmsup-vm-files.h"
#include "vmsup-vm-loader.h"

/*
 * How long the load waits for one adoption before it goes on without it: a
 * QEMU that answers QMP does so in milliseconds, a frozen one never, and the
 * socket must not wait for it.
 */
#define VMSUP_VM_LOADER_ADOPT_WAIT_MS 2000

struct _VmsupVmLoader {
	GObject parent_instance;
	VmsupVmStore *store;       /* owned */
	VmsupVmLock *lock;         /* owned */
	VmsupVmAccel *accel;       /* owned */
	gchar *state_dir;          /* owned */
	gchar *runtime_dir;        /* owned */
	GCancellable *cancellable; /* owned, nullable */
	VmsupVmLoaderHooks hooks;
	GObject *user_data; /* owned */
};

G_DEFINE_FINAL_TYPE(VmsupVmLoader, vmsup_vm_loader, G_TYPE_OBJECT)

static VmsupVm *
vmsup_vm_loader_lookup(VmsupVmLoader *self, const gchar *name)
{
	return self->hooks.lookup(name, self->user_data);
}

static GStrv
vmsup_vm_loader_list(VmsupVmLoader *self)
{
	return self->hooks.list(self->user_data);
}

static void
vmsup_vm_loader_return_error(GTask *task, GError *error /* owned */)
{
	vmsup_error_convert(&error);
	g_task_return_error(task, error);
}

/* load: definitions, re-adoption, autostart */

typedef struct {
	guint pending;
	gboolean autostarted;
	guint stop_timeout_s; /* stop_all: what each guest gets to power off */
} VmsupVmLoad;

static void
vmsup_vm_loader_load_step(GTask *task /* owned */);

static void
vmsup_vm_loader_load_one_done(GTask *task /* owned */)
{
	VmsupVmLoad *data = g_task_get_task_data(task);
	g_assert(data->pending > 0);
	if (--data->pending == 0)
		vmsup_vm_loader_load_step(task);
	else
		g_object_unref(task);
}

typedef struct {
	GTask *task;             /* owned: the load */
	VmsupVm *vm;             /* owned */
	VmsupVmOutcome *outcome; /* owned, may be NULL: the stored end of the last run */
	gboolean counted;        /* the load still waits for this one */
	guint wait_id;           /* the bound on that wait */
} VmsupVmLoadOne;

static void
vmsup_vm_load_one_free(VmsupVmLoadOne *one)
{
	g_clear_handle_id(&one->wait_id, g_source_remove);
	g_clear_object(&one->task);
	g_clear_object(&one->vm);
	g_clear_pointer(&one->outcome, vmsup_vm_outcome_free);
	g_free(one);
}

/* the load goes on; this VM's adoption, if still under way, finishes on its own */
static void
vmsup_vm_loader_load_one_release(VmsupVmLoadOne *one)
{
	g_clear_handle_id(&one->wait_id, g_source_remove);
	if (!one->counted)
		return;
	one->counted = FALSE;
	vmsup_vm_loader_load_one_done(g_object_ref(one->task));
}

static gboolean
vmsup_vm_loader_adopt_wait_cb(gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;

	one->wait_id = 0;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     vmsup_vm_get_name(one->vm),
		     "VM '%s' is slow to answer QMP; serving the other VMs meanwhile",
		     vmsup_vm_get_name(one->vm));
	vmsup_vm_loader_load_one_release(one);
	return G_SOURCE_REMOVE;
}

static void
vmsup_vm_loader_load_one_finish(VmsupVmLoadOne *one)
{
	VmsupVmLoader *self = g_task_get_source_object(one->task);

	vmsup_vm_lock_unlock(self->lock, vmsup_vm_get_name(one->vm));
	vmsup_vm_loader_load_one_release(one);
	vmsup_vm_load_one_free(one);
}

static void
vmsup_vm_loader_adopted_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	vmsup_vm_adopt_finish(VMSUP_VM(source), res);
	vmsup_vm_loader_load_one_finish(user_data);
}

static void
vmsup_vm_loader_adopt_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;

	vmsup_vm_lock_lock_finish(res, NULL);
	one->wait_id =
	    g_timeout_add(VMSUP_VM_LOADER_ADOPT_WAIT_MS, vmsup_vm_loader_adopt_wait_cb, one);
	vmsup_vm_adopt_async(one->vm,
			     g_steal_pointer(&one->outcome),
			     vmsup_vm_loader_adopted_cb,
			     one);
}

static void
vmsup_vm_loader_autostart_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	g_autoptr(GError) error = NULL;

	if (!vmsup_vm_start_finish(VMSUP_VM(source), res, &error))
		g_warning("Autostart of VM '%s' failed: %s, ignoring",
			  vmsup_vm_get_name(one->vm),
			  error->message);
	vmsup_vm_loader_load_one_finish(one);
}

static void
vmsup_vm_loader_autostart_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmLoader *self = g_task_get_source_object(one->task);

	vmsup_vm_lock_lock_finish(res, NULL);
	vmsup_vm_start_async(one->vm, self->cancellable, vmsup_vm_loader_autostart_cb, one);
}

/* one more VM handled by the load, under its lock */
static void
vmsup_vm_loader_load_queue(GTask *task,
			   VmsupVm *vm,
			   VmsupVmOutcome *outcome /* owned, nullable */,
			   GAsyncReadyCallback locked_cb)
{
	VmsupVmLoader *self = g_task_get_source_object(task);
	VmsupVmLoad *data = g_task_get_task_data(task);
	VmsupVmLoadOne *one = g_new0(VmsupVmLoadOne, 1);

	one->task = g_object_ref(task);
	one->vm = g_object_ref(vm);
	one->outcome = outcome;
	one->counted = TRUE;
	data->pending++;
	vmsup_vm_lock_lock_async(self->lock, vmsup_vm_get_name(vm), NULL, locked_cb, one);
}

static void
vmsup_vm_loader_load_step(GTask *task /* owned */)
{
	VmsupVmLoader *self = g_task_get_source_object(task);
	VmsupVmLoad *data = g_task_get_task_data(task);
	g_auto(GStrv) names = NULL;

	if (data->autostarted) {
		/* cgroups left by a daemon that died before its QEMU did */
		names = vmsup_vm_loader_list(self);
		for (guint i = 0; names[i] != NULL; i++)
			vmsup_vm_release_cgroup(vmsup_vm_loader_lookup(self, names[i]));
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	data->autostarted = TRUE;
	data->pending = 1;
	names = vmsup_vm_loader_list(self);
	for (guint i = 0; names[i] != NULL; i++) {
		VmsupVm *vm = vmsup_vm_loader_lookup(self, names[i]);
		if (vmsup_vm_get_def(vm)->autostart && !vmsup_vm_has_process(vm))
			vmsup_vm_loader_load_queue(task,
						   vm,
						   NULL,
						   vmsup_vm_loader_autostart_locked_cb);
	}
	vmsup_vm_loader_load_one_done(task);
}

/* runtime dirs and disks that belong to no definition */
static void
vmsup_vm_loader_load_check_orphans(VmsupVmLoader *self)
{
	g_autofree gchar *vms_dir = g_build_filename(self->runtime_dir, "vms", NULL);
	g_autofree gchar *disks_dir = g_build_filename(self->state_dir, "disks", NULL);
	g_autoptr(GDir) dir = g_dir_open(vms_dir, 0, NULL);
	const gchar *basename;

	while (dir != NULL && (basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(vms_dir, basename, NULL);
		g_autofree gchar *pidfile = g_build_filename(path, VMSUP_QEMU_PIDFILE, NULL);
		g_autofree gchar *pid = NULL;
		g_autofree gchar *proc = NULL;

		if (vmsup_vm_loader_lookup(self, basename) != NULL)
			continue;
		if (g_file_get_contents(pidfile, &pid, NULL, NULL)) {
			g_strstrip(pid);
			proc = g_strdup_printf("/proc/%s", pid);
		}
		if (proc != NULL && g_file_test(proc, G_FILE_TEST_EXISTS)) {
			g_warning("QEMU of '%s' (pid %s) may still run without a definition; "
				  "stop it with 'kill %s', ignoring",
				  basename,
				  pid,
				  pid);
			continue;
		}
		g_debug("removing stale runtime dir '%s'", path);
		vmsup_vm_files_remove_tree(path);
	}
	g_clear_pointer(&dir, g_dir_close);
	dir = g_dir_open(disks_dir, 0, NULL);
	while (dir != NULL && (basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *name = NULL;
		/* a clone's copy a killed daemon left unfinished: never anyone's disk */
		if (g_str_has_suffix(basename, ".qcow2" VMSUP_DISK_COPY_TMP_SUFFIX)) {
			g_autofree gchar *path = g_build_filename(disks_dir, basename, NULL);
			g_message("Removing '%s', the copy of an interrupted clone", path);
			g_unlink(path);
			continue;
		}
		if (!g_str_has_suffix(basename, ".qcow2"))
			continue;
		name = g_strndup(basename, strlen(basename) - strlen(".qcow2"));
		if (vmsup_vm_loader_lookup(self, name) == NULL)
			g_warning("Disk '%s/%s' belongs to no VM (an interrupted create?); "
				  "remove it or move it away, ignoring",
				  disks_dir,
				  basename);
	}
}

/*
 * How each VM's last run ended, as the daemon before saved it; a record
 * that belongs to no definition (a delete cut short) is removed. Never
 * fatal: a VM without its record reads "defined".
 */
static GHashTable *
vmsup_vm_loader_load_outcomes(VmsupVmLoader *self)
{
	g_autoptr(GHashTable) outcomes = NULL;
	g_autoptr(GError) error = NULL;
	GHashTableIter iter;
	gpointer name;

	outcomes = vmsup_vm_store_load_outcomes(self->store, &error);
	if (outcomes == NULL) {
		g_warning("%s; VMs that stopped before show as defined, ignoring", error->message);
		return g_hash_table_new_full(g_str_hash,
					     g_str_equal,
					     g_free,
					     (GDestroyNotify)vmsup_vm_outcome_free);
	}
	g_hash_table_iter_init(&iter, outcomes);
	while (g_hash_table_iter_next(&iter, &name, NULL)) {
		g_autoptr(GError) error_remove = NULL;
		if (vmsup_vm_loader_lookup(self, name) != NULL)
			continue;
		g_debug("removing the last-run record of '%s', which is not defined",
			(const gchar *)name);
		if (!vmsup_vm_store_remove_outcome(self->store, name, &error_remove))
			g_warning("%s, ignoring", error_remove->message);
		g_hash_table_iter_remove(&iter);
	}
	return g_steal_pointer(&outcomes);
}

static void
vmsup_vm_loader_load_accel_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmLoader *self = g_task_get_source_object(task);
	VmsupVmLoad *data = g_task_get_task_data(task);
	g_autoptr(GPtrArray) defs = NULL;
	g_autoptr(GHashTable) outcomes = NULL;
	GError *error = NULL;

	if (!vmsup_vm_accel_ensure_finish(VMSUP_VM_ACCEL(source), res, &error)) {
		vmsup_vm_loader_return_error(task, error);
		return;
	}
	defs = vmsup_vm_store_load_all(self->store, &error);
	if (defs == NULL) {
		vmsup_vm_loader_return_error(task, error);
		return;
	}
	while (defs->len > 0) {
		VmsupVmDef *def = g_ptr_array_steal_index(defs, 0);
		if (vmsup_vm_loader_lookup(self, def->name) != NULL) {
			vmsup_vm_def_free(def);
			continue;
		}
		self->hooks.add(def, self->user_data);
	}
	outcomes = vmsup_vm_loader_load_outcomes(self);
	vmsup_vm_loader_load_check_orphans(self);

	data->pending = 1;
	{
		g_auto(GStrv) names = vmsup_vm_loader_list(self);
		for (guint i = 0; names[i] != NULL; i++) {
			VmsupVm *vm = vmsup_vm_loader_lookup(self, names[i]);
			g_autoptr(VmsupVmOutcome) outcome = NULL;
			g_autofree gchar *outcome_key = NULL;
			if (vmsup_vm_has_process(vm))
				continue;
			g_hash_table_steal_extended(outcomes,
						    names[i],
						    (gpointer *)&outcome_key,
						    (gpointer *)&outcome);
			/* a run was under way: adopted, or found ended */
			if (g_file_test(vmsup_vm_get_runtime_dir(vm), G_FILE_TEST_IS_DIR)) {
				vmsup_vm_loader_load_queue(task,
							   vm,
							   g_steal_pointer(&outcome),
							   vmsup_vm_loader_adopt_locked_cb);
				continue;
			}
			if (outcome != NULL)
				vmsup_vm_apply_outcome(vm, outcome);
		}
	}
	{
		g_auto(GStrv) names = vmsup_vm_loader_list(self);
		g_message("%u VMs defined", g_strv_length(names));
	}
	vmsup_vm_loader_load_one_done(g_steal_pointer(&task));
}

void
vmsup_vm_loader_load_async(VmsupVmLoader *self,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(VMSUP_IS_VM_LOADER(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_loader_load_async);
	g_task_set_task_data(task, g_new0(VmsupVmLoad, 1), g_free);
	vmsup_vm_accel_ensure_async(self->accel,
				    cancellable,
				    vmsup_vm_loader_load_accel_cb,
				    g_steal_pointer(&task));
}

gboolean
vmsup_vm_loader_load_finish(VmsupVmLoader *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* stop_all */

static void
vmsup_vm_loader_stop_all_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	vmsup_vm_stop_finish(VMSUP_VM(source), res, NULL);
	vmsup_vm_loader_load_one_finish(one);
}

static void
vmsup_vm_loader_stop_all_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmLoad *data = g_task_get_task_data(one->task);

	vmsup_vm_lock_lock_finish(res, NULL);
	vmsup_vm_stop_async(one->vm,
			    FALSE,
			    data->stop_timeout_s * 1000,
			    "stopped as vmsupd shut down",
			    vmsup_vm_loader_stop_all_stopped_cb,
			    one);
}

void
vmsup_vm_loader_stop_all_async(VmsupVmLoader *self,
			       guint timeout_s,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_auto(GStrv) names = NULL;
	VmsupVmLoad *data;

	g_return_if_fail(VMSUP_IS_VM_LOADER(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_loader_stop_all_async);
	data = g_new0(VmsupVmLoad, 1);
	/* reuses the load's counting: there is nothing to autostart afterwards */
	data->autostarted = TRUE;
	data->pending = 1;
	data->stop_timeout_s = timeout_s;
	g_task_set_task_data(task, data, g_free);
	names = vmsup_vm_loader_list(self);
	for (guint i = 0; names[i] != NULL; i++) {
		VmsupVm *vm = vmsup_vm_loader_lookup(self, names[i]);
		if (vmsup_vm_has_process(vm))
			vmsup_vm_loader_load_queue(task,
						   vm,
						   NULL,
						   vmsup_vm_loader_stop_all_locked_cb);
	}
	vmsup_vm_loader_load_one_done(g_steal_pointer(&task));
}

gboolean
vmsup_vm_loader_stop_all_finish(VmsupVmLoader *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
vmsup_vm_loader_finalize(GObject *object)
{
	VmsupVmLoader *self = VMSUP_VM_LOADER(object);

	g_clear_object(&self->store);
	g_clear_object(&self->lock);
	g_clear_object(&self->accel);
	g_clear_object(&self->cancellable);
	g_clear_object(&self->user_data);
	g_free(self->state_dir);
	g_free(self->runtime_dir);
	G_OBJECT_CLASS(vmsup_vm_loader_parent_class)->finalize(object);
}

static void
vmsup_vm_loader_class_init(VmsupVmLoaderClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = vmsup_vm_loader_finalize;
}

static void
vmsup_vm_loader_init(VmsupVmLoader *self)
{
}

VmsupVmLoader *
vmsup_vm_loader_new(VmsupVmStore *store,
		    VmsupVmLock *lock,
		    VmsupVmAccel *accel,
		    const gchar *state_dir,
		    const gchar *runtime_dir,
		    GCancellable *cancellable,
		    const VmsupVmLoaderHooks *hooks,
		    gpointer user_data)
{
	VmsupVmLoader *self = g_object_new(VMSUP_TYPE_VM_LOADER, NULL);

	self->store = g_object_ref(store);
	self->lock = g_object_ref(lock);
	self->accel = g_object_ref(accel);
	self->state_dir = g_strdup(state_dir);
	self->runtime_dir = g_strdup(runtime_dir);
	self->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
	self->hooks = *hooks;
	self->user_data = g_object_ref(user_data);
	return self;
}
