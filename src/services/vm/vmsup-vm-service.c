/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService: the registry of defined VMs (name -> VmsupVm), the per-VM
 * lock every verb on a VM queues on, the vm.* and op.* verbs, the
 * create-operations (VmsupVmCreate), load and stop-all (VmsupVmLoader),
 * the limits, and the hooks for sibling services.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <unistd.h>

#include "vmsup-cgroup.h"
#include "vmsup-disk-esp.h"
#include "vmsup-disk.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-name.h"
#include "vmsup-image-hooks.h"
#include "vmsup-operation.h"
#include "vmsup-owner-open.h"
#include "vmsup-paths.h"
#include "vmsup-preflight.h"
#include "vmsup-qemu-process.h"
#include "vmsup-vm-accel.h"
#include "vmsup-vm-cgroup.h"
#include "vmsup-vm-create.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-files.h"
#include "vmsup-vm-limits.h"
#include "vmsup-vm-loader.h"
#include "vmsup-vm-lock.h"
#include "vmsup-vm-seed.h"
#include "vmsup-vm-service.h"
#include "vmsup-vm-store.h"
#include "vmsup-vm.h"

/* finished operations stay visible to op.get this long */
#define VMSUP_VM_SERVICE_OP_KEEP_US (10 * 60 * G_USEC_PER_SEC)
#define VMSUP_VM_SERVICE_STOP_TIMEOUT_S 30
#define VMSUP_VM_SERVICE_MAX_STOP_TIMEOUT_S 3600

struct _VmsupVmService {
	GObject parent_instance;
	gchar *state_dir;   /* owned */
	gchar *runtime_dir; /* owned */
	gchar *qemu_binary; /* owned, NULL: $VMSUP_QEMU or PATH */
	VmsupAccel accel_config;
	VmsupVmAccel *accel; /* owned: what every VM is handed */
	gboolean loaded;
	guint stop_timeout_s; /* what stop_all gives each guest to power off */
	VmsupVmStore *store;  /* owned */
	VmsupVmLock *lock;    /* owned */
	GHashTable *vms;      /* owned: name -> VmsupVm (ref) */
	GHashTable *ops;      /* owned: &id -> VmsupOperation (ref) */
	GHashTable *creating; /* owned: name -> VmsupVmCreate (ref) */
	/* owned keys: name -> memory_mib a vm.set holding the VM's lock is raising it to */
	GHashTable *memory_reserved;
	gint64 next_op_id;
	VmsupVmHooks hooks;        /* owned closures */
	GClosure *image_lookup;    /* owned, may be NULL: see vmsup-image-hooks.h */
	GCancellable *cancellable; /* owned */
	VmsupVmLimits limits;
	VmsupCgroup *cgroup; /* owned: found on first use, see vmsup_vm_service_get_cgroup() */
};

G_DEFINE_FINAL_TYPE(VmsupVmService, vmsup_vm_service, G_TYPE_OBJECT)

enum {
	PROP_0,
	PROP_STATE_DIR,
	PROP_RUNTIME_DIR,
	PROP_QEMU_BINARY,
	PROP_ACCEL,
	PROP_STOP_TIMEOUT,
	N_PROPS
};
static GParamSpec *props[N_PROPS];

enum {
	SIGNAL_VM_CHANGED,
	SIGNAL_VM_REMOVED,
	SIGNAL_OPERATION_CHANGED,
	SIGNAL_ACCEL_DECIDED,
	N_SIGNALS
};
static guint signals[N_SIGNALS];

/*
 * Every member a vm.get result can have, in the order it has them: the
 * definition's (vmsup_vm_def_to_json()), what vmsup_vm_service_describe()
 * adds, and the activity the RPC table merges in from the stats service
 * (vmsup_stats_service_describe_activity()). A member added to any of the
 * three belongs here too: vm.list's "fields" accepts only these, and
 * /vmsup/rpc/vm-members checks them against real answers.
 */
static const VmsupVmMember vmsup_vm_members[] = {
    {"name", VMSUP_VM_MEMBER_DEFINITION},
    {"cpus", VMSUP_VM_MEMBER_DEFINITION},
    {"memory_mib", VMSUP_VM_MEMBER_DEFINITION},
    {"kernel", VMSUP_VM_MEMBER_DEFINITION},
    {"initrd", VMSUP_VM_MEMBER_DEFINITION},
    {"cmdline", VMSUP_VM_MEMBER_DEFINITION},
    {"image", VMSUP_VM_MEMBER_DEFINITION},
    {"disk", VMSUP_VM_MEMBER_DEFINITION},
    {"disk_gib", VMSUP_VM_MEMBER_DEFINITION},
    {"share_dir", VMSUP_VM_MEMBER_DEFINITION},
    {"forward", VMSUP_VM_MEMBER_DEFINITION},
    {"auto_stop", VMSUP_VM_MEMBER_DEFINITION},
    {"autostart", VMSUP_VM_MEMBER_DEFINITION},
    {"cpu_quota_percent", VMSUP_VM_MEMBER_DEFINITION},
    {"memory_max_mib", VMSUP_VM_MEMBER_DEFINITION},
    {"firmware", VMSUP_VM_MEMBER_DEFINITION},
    {"ssh_keys", VMSUP_VM_MEMBER_DEFINITION},
    {"user_data", VMSUP_VM_MEMBER_DEFINITION},
    {"created", VMSUP_VM_MEMBER_DEFINITION},
    {"owner_uid", VMSUP_VM_MEMBER_DEFINITION},
    {"state", VMSUP_VM_MEMBER_RUNTIME},
    {"accel", VMSUP_VM_MEMBER_RUNTIME},
    {"pid", VMSUP_VM_MEMBER_RUNTIME},
    {"started_at", VMSUP_VM_MEMBER_RUNTIME},
    {"runtime_dir", VMSUP_VM_MEMBER_RUNTIME},
    {"forwards", VMSUP_VM_MEMBER_RUNTIME},
    {"pending_restart", VMSUP_VM_MEMBER_RUNTIME},
    {"exit_status", VMSUP_VM_MEMBER_RUNTIME},
    {"exit_signal", VMSUP_VM_MEMBER_RUNTIME},
    {"exit_reason", VMSUP_VM_MEMBER_RUNTIME},
    {"stopped_at", VMSUP_VM_MEMBER_RUNTIME},
    {"last_error", VMSUP_VM_MEMBER_RUNTIME},
    {"cgroup", VMSUP_VM_MEMBER_RUNTIME},
    {"last_active", VMSUP_VM_MEMBER_ACTIVITY},
    {"idle_s", VMSUP_VM_MEMBER_ACTIVITY},
    {"active_reason", VMSUP_VM_MEMBER_ACTIVITY},
    {"idle_reason", VMSUP_VM_MEMBER_ACTIVITY},
    {"auto_stop_in_s", VMSUP_VM_MEMBER_ACTIVITY},
    {NULL, 0},
};

const VmsupVmMember *
vmsup_vm_service_get_members(void)
{
	return vmsup_vm_members;
}

const gchar *const *
vmsup_vm_service_get_member_names(void)
{
	/* the terminator's slot stays NULL */
	static const gchar *names[G_N_ELEMENTS(vmsup_vm_members)];
	static gsize filled = 0;

	if (g_once_init_enter(&filled)) {
		for (guint i = 0; vmsup_vm_members[i].name != NULL; i++)
			names[i] = vmsup_vm_members[i].name;
		g_once_init_leave(&filled, 1);
	}
	return names;
}

static gboolean
vmsup_vm_service_wants_definition(const gchar *const *fields)
{
	if (fields == NULL)
		return TRUE;
	for (guint i = 0; vmsup_vm_members[i].name != NULL; i++) {
		if (vmsup_vm_members[i].source == VMSUP_VM_MEMBER_DEFINITION &&
		    g_strv_contains(fields, vmsup_vm_members[i].name))
			return TRUE;
	}
	return FALSE;
}

/* the vm.get result of @vm, or with @fields only those of its members */
static JsonObject *
vmsup_vm_service_describe(VmsupVm *vm, const gchar *const *fields)
{
	return vmsup_vm_describe(vm, fields, vmsup_vm_service_wants_definition(fields));
}

static void
vmsup_vm_service_emit_vm_changed(VmsupVmService *self, VmsupVm *vm)
{
	g_autoptr(JsonObject) obj = vmsup_vm_service_describe(vm, NULL);
	g_signal_emit(self, signals[SIGNAL_VM_CHANGED], 0, vmsup_vm_get_name(vm), obj);
}

static void
vmsup_vm_service_vm_changed_cb(VmsupVm *vm, gpointer user_data)
{
	vmsup_vm_service_emit_vm_changed(VMSUP_VM_SERVICE(user_data), vm);
}

static void
vmsup_vm_service_accel_decided_cb(VmsupVmAccel *accel, gpointer user_data)
{
	g_signal_emit(VMSUP_VM_SERVICE(user_data), signals[SIGNAL_ACCEL_DECIDED], 0);
}

/* vmsupd's cgroups, found (and readied) on first use: at load, or a first create before it */
static VmsupCgroup *
vmsup_vm_service_get_cgroup(VmsupVmService *self)
{
	if (self->cgroup == NULL) {
		/* the runtime dir is this daemon's, over restarts too (adoption relies on it) */
		g_autofree gchar *sum =
		    g_compute_checksum_for_string(G_CHECKSUM_SHA256, self->runtime_dir, -1);
		sum[8] = '\0';
		self->cgroup = vmsup_cgroup_new(sum);
		if (vmsup_cgroup_get_mode(self->cgroup) == VMSUP_CGROUP_MODE_NONE)
			g_message("CPU and memory limits of VMs are unavailable: %s",
				  vmsup_cgroup_get_reason(self->cgroup));
		else
			g_info("VM cgroups: %s", vmsup_cgroup_get_reason(self->cgroup));
	}
	return self->cgroup;
}

JsonObject *
vmsup_vm_service_get_cgroup_info(VmsupVmService *self)
{
	JsonObject *obj = json_object_new();

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), obj);
	vmsup_vm_cgroup_describe_mode(vmsup_vm_service_get_cgroup(self), obj);
	return obj;
}

/* the registry */

static gchar *
vmsup_vm_service_vm_runtime_dir(VmsupVmService *self, const gchar *name)
{
	return g_build_filename(self->runtime_dir, "vms", name, NULL);
}

/* a VmsupVm for @def, in the registry; returned unowned */
static VmsupVm *
vmsup_vm_service_add_vm(VmsupVmService *self, VmsupVmDef *def /* owned */)
{
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, def->name);
	g_autoptr(VmsupVmCgroup) cgroup =
	    vmsup_vm_cgroup_new(vmsup_vm_service_get_cgroup(self), def->name, self->cancellable);
	gchar *name = g_strdup(def->name);
	VmsupVm *vm = vmsup_vm_new(def,
				   dir,
				   self->qemu_binary,
				   self->store,
				   self->accel,
				   cgroup,
				   self->cancellable);

	vmsup_vm_set_state_dir(vm, self->state_dir);
	g_signal_connect_object(vm, "changed", G_CALLBACK(vmsup_vm_service_vm_changed_cb), self, 0);
	g_hash_table_insert(self->vms, name, vm);
	return vm;
}

/* params */

/*
 * The VM name of a request. The RPC table refused every invalid one (its
 * schema's name type), and in-process callers pass names they validated:
 * one that is not valid here is a programming error.
 */
static const gchar *
vmsup_vm_service_get_name_param(JsonObject *params, GError **error)
{
	const gchar *name = vmsup_json_object_get_string(params, "name", NULL);

	g_return_val_if_fail(vmsup_name_validate(name, "VM", NULL), NULL);
	return name;
}

static gboolean
vmsup_vm_service_check_not_creating(VmsupVmService *self, const gchar *name, GError **error)
{
	VmsupVmCreate *create = g_hash_table_lookup(self->creating, name);
	gint64 id;

	if (create == NULL)
		return TRUE;
	id = vmsup_operation_get_id(vmsup_vm_create_get_operation(create));
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_BUSY,
		    _("VM '%s' is busy with operation %lld; wait or run 'vmsup ops cancel %lld'"),
		    name,
		    (long long)id,
		    (long long)id);
	return FALSE;
}

static VmsupVm *
vmsup_vm_service_lookup_vm(VmsupVmService *self, const gchar *name, GError **error)
{
	VmsupVm *vm = g_hash_table_lookup(self->vms, name);
	if (vm == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    _("VM '%s' does not exist; 'vmsup list' shows the VMs"),
			    name);
		return NULL;
	}
	return vm;
}

static void
vmsup_vm_service_return_error(GTask *task, GError *error /* owned */)
{
	vmsup_error_convert(&error);
	g_task_return_error(task, error);
}

/* operations */

static void
vmsup_vm_service_prune_ops(VmsupVmService *self)
{
	GHashTableIter iter;
	gpointer value;
	gint64 now = g_get_monotonic_time();

	g_hash_table_iter_init(&iter, self->ops);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmsupOperation *op = value;
		if (vmsup_operation_is_finished(op) &&
		    now - vmsup_operation_get_finished_at(op) > VMSUP_VM_SERVICE_OP_KEEP_US)
			g_hash_table_iter_remove(&iter);
	}
}

static void
vmsup_vm_service_op_changed_cb(VmsupOperation *op, gpointer user_data)
{
	VmsupVmService *self = VMSUP_VM_SERVICE(user_data);
	g_autoptr(JsonObject) obj = vmsup_operation_to_json(op);
	g_signal_emit(self, signals[SIGNAL_OPERATION_CHANGED], 0, obj);
}

static VmsupOperation *
vmsup_vm_service_add_op(VmsupVmService *self, const gchar *kind, const gchar *vm)
{
	gint64 id = self->next_op_id++;
	VmsupOperation *op = vmsup_operation_new(id, kind, vm);
	gint64 *key = g_new(gint64, 1);

	*key = id;
	g_hash_table_insert(self->ops, key, op);
	g_signal_connect_object(op, "changed", G_CALLBACK(vmsup_vm_service_op_changed_cb), self, 0);
	return op;
}

static GQuark
vmsup_vm_service_op_owner_quark(void)
{
	return g_quark_from_static_string("vmsup-vm-service-op-owner");
}

/* the uid an operation acts for, kept with it until it is pruned */
static void
vmsup_vm_service_set_op_owner(VmsupOperation *op, guint32 uid)
{
	g_object_set_qdata_full(G_OBJECT(op),
				vmsup_vm_service_op_owner_quark(),
				g_memdup2(&uid, sizeof(uid)),
				g_free);
}

VmsupOperation *
vmsup_vm_service_add_operation(VmsupVmService *self,
			       const gchar *kind,
			       const gchar *subject,
			       guint32 owner_uid)
{
	VmsupOperation *op;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	g_return_val_if_fail(kind != NULL, NULL);
	g_return_val_if_fail(subject != NULL, NULL);

	vmsup_vm_service_prune_ops(self);
	op = vmsup_vm_service_add_op(self, kind, subject);
	vmsup_vm_service_set_op_owner(op, owner_uid);
	return op;
}

gboolean
vmsup_vm_service_get_owner(VmsupVmService *self, const gchar *name, guint32 *out_uid)
{
	VmsupVm *vm;
	VmsupVmCreate *create;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), FALSE);
	g_return_val_if_fail(out_uid != NULL, FALSE);

	if (name == NULL)
		return FALSE;
	vm = g_hash_table_lookup(self->vms, name);
	if (vm != NULL) {
		*out_uid = vmsup_vm_get_def(vm)->owner_uid;
		return TRUE;
	}
	/* not defined yet: its create's */
	create = g_hash_table_lookup(self->creating, name);
	if (create == NULL)
		return FALSE;
	*out_uid = vmsup_vm_create_get_def(create)->owner_uid;
	return TRUE;
}

gboolean
vmsup_vm_service_get_op_owner(VmsupVmService *self, gint64 id, guint32 *out_uid)
{
	VmsupOperation *op;
	const guint32 *owner;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), FALSE);
	g_return_val_if_fail(out_uid != NULL, FALSE);

	op = g_hash_table_lookup(self->ops, &id);
	if (op == NULL)
		return FALSE;
	owner = g_object_get_qdata(G_OBJECT(op), vmsup_vm_service_op_owner_quark());
	if (owner != NULL) {
		*out_uid = *owner;
		return TRUE;
	}
	return vmsup_vm_service_get_owner(self, vmsup_operation_get_vm(op), out_uid);
}

/* removes definition, disk and runtime dir; the VM leaves the registry */
static gboolean
vmsup_vm_service_undefine(VmsupVmService *self, VmsupVm *vm, GError **error)
{
	const VmsupVmDef *def = vmsup_vm_get_def(vm);
	g_autofree gchar *name = g_strdup(def->name);
	const gchar *dir = vmsup_vm_get_runtime_dir(vm);
	g_autofree gchar *guest_dir = vmsup_vm_get_guest_dir(vm);
	g_autoptr(GError) error_local = NULL;

	/* the definition first: a VM half-deleted by a crash must not come back */
	if (!vmsup_vm_store_remove(self->store, name, error))
		return FALSE;
	if (def->disk != NULL && !vmsup_disk_remove(def->disk, &error_local))
		g_warning("%s, ignoring", error_local->message);
	if (g_file_test(dir, G_FILE_TEST_IS_DIR))
		vmsup_vm_files_remove_tree(dir);
	if (guest_dir != NULL && g_file_test(guest_dir, G_FILE_TEST_IS_DIR))
		vmsup_vm_files_remove_tree(guest_dir);
	g_hash_table_remove(self->vms, name);
	g_signal_emit(self, signals[SIGNAL_VM_REMOVED], 0, name);
	return TRUE;
}

/* limits: MaxVMs, and the share of one owner */

void
vmsup_vm_service_set_max_vms(VmsupVmService *self, guint max_vms)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	self->limits.max_vms = max_vms;
}

guint
vmsup_vm_service_get_max_vms(VmsupVmService *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), 0);
	return self->limits.max_vms;
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

void
vmsup_vm_service_set_owner_limits(VmsupVmService *self, guint max_vms, guint max_memory_mib)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	self->limits.max_vms_per_user = max_vms;
	self->limits.max_memory_mib_per_user = max_memory_mib;
}

/*
 * What @def's owner holds but @def: VMs defined and being created, and
 * their memory, a raise a vm.set is making counted already. Creates and
 * sets in flight enter the tables before their check returns, on the one
 * main loop: two of them cannot both take the last share.
 */
static gboolean
vmsup_vm_service_check_owner_limits(VmsupVmService *self,
				    const VmsupVmDef *def,
				    const VmsupVmDef *old_def,
				    GError **error)
{
	GHashTableIter iter;
	gpointer key;
	gpointer value;
	guint vms = 0;
	guint64 memory_mib = 0;

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		const VmsupVmDef *other = vmsup_vm_get_def(value);
		guint reserved = GPOINTER_TO_UINT(g_hash_table_lookup(self->memory_reserved, key));

		if (other->owner_uid != def->owner_uid || g_strcmp0(key, def->name) == 0)
			continue;
		vms++;
		memory_mib += MAX(other->memory_mib, reserved);
	}
	g_hash_table_iter_init(&iter, self->creating);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		const VmsupVmDef *other = vmsup_vm_create_get_def(value);

		if (other->owner_uid != def->owner_uid || g_hash_table_contains(self->vms, key) ||
		    g_strcmp0(key, def->name) == 0)
			continue;
		vms++;
		memory_mib += other->memory_mib;
	}
	return vmsup_vm_limits_check_owner(&self->limits, def, old_def, vms, memory_mib, error);
}

/* verbs on one existing VM, run under its lock */

typedef struct _VmsupVmVerb VmsupVmVerb;
typedef void (*VmsupVmVerbFunc)(VmsupVmService *self, GTask *task /* owned */);

struct _VmsupVmVerb {
	VmsupVmService *self; /* owned */
	gchar *name;          /* owned */
	VmsupVm *vm;          /* owned */
	JsonObject *params;   /* owned */
	VmsupCaller caller;   /* who asked */
	gboolean locked;
	gboolean force;
	guint timeout_ms;
	VmsupVmDef *new_def; /* owned */
	GStrv changed;       /* owned */
	VmsupVmVerbFunc func;
};

static void
vmsup_vm_verb_unlock(VmsupVmVerb *verb)
{
	if (!verb->locked)
		return;
	verb->locked = FALSE;
	/* only the verb holding the lock can have reserved memory for its set */
	g_hash_table_remove(verb->self->memory_reserved, verb->name);
	vmsup_vm_lock_unlock(verb->self->lock, verb->name);
}

static void
vmsup_vm_verb_free(VmsupVmVerb *verb)
{
	vmsup_vm_verb_unlock(verb);
	g_clear_object(&verb->self);
	g_free(verb->name);
	g_clear_object(&verb->vm);
	g_clear_pointer(&verb->params, json_object_unref);
	g_clear_pointer(&verb->new_def, vmsup_vm_def_free);
	g_strfreev(verb->changed);
	g_free(verb);
}

/* the lock goes before the answer, so a follow-up request never waits on us */
static void
vmsup_vm_verb_return_object(GTask *task /* owned */, JsonObject *result /* owned */)
{
	vmsup_vm_verb_unlock(g_task_get_task_data(task));
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
	g_object_unref(task);
}

static void
vmsup_vm_verb_return_error(GTask *task /* owned */, GError *error /* owned */)
{
	vmsup_vm_verb_unlock(g_task_get_task_data(task));
	vmsup_vm_service_return_error(task, error);
	g_object_unref(task);
}

static void
vmsup_vm_verb_return_vm(GTask *task /* owned */)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);
	vmsup_vm_verb_return_object(task, vmsup_vm_service_describe(verb->vm, NULL));
}

static void
vmsup_vm_service_verb_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupVmVerb *verb = g_task_get_task_data(task);
	VmsupVmService *self = verb->self;
	GError *error = NULL;
	VmsupVm *vm;

	if (!vmsup_vm_lock_lock_finish(res, &error)) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	verb->locked = TRUE;
	/* the VM may have been deleted (or deleted and created again) while we waited */
	vm = vmsup_vm_service_lookup_vm(self, verb->name, &error);
	if (vm == NULL) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	g_set_object(&verb->vm, vm);
	verb->func(self, task);
}

/* checks the name (first, before anything is touched), then queues on the VM's lock */
static void
vmsup_vm_service_verb_begin(VmsupVmService *self,
			    const VmsupCaller *caller,
			    JsonObject *params,
			    gpointer source_tag,
			    VmsupVmVerbFunc func,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autoptr(GError) error = NULL;
	VmsupVmVerb *verb;
	VmsupVm *vm;
	const gchar *name;
	gboolean force = FALSE;
	gint64 timeout_s = VMSUP_VM_SERVICE_STOP_TIMEOUT_S;

	g_task_set_source_tag(task, source_tag);
	/* a request that reached the lock must complete, even for a client that left */
	g_task_set_check_cancellable(task, FALSE);
	name = vmsup_vm_service_get_name_param(params, &error);
	if (name == NULL || !vmsup_vm_service_check_not_creating(self, name, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	vm = vmsup_vm_service_lookup_vm(self, name, &error);
	if (vm == NULL ||
	    !vmsup_json_object_get_checked_bool(params, "force", FALSE, &force, &error) ||
	    !vmsup_json_object_get_int_in_range(params,
						"timeout_s",
						0,
						VMSUP_VM_SERVICE_MAX_STOP_TIMEOUT_S,
						VMSUP_VM_SERVICE_STOP_TIMEOUT_S,
						&timeout_s,
						&error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	verb = g_new0(VmsupVmVerb, 1);
	verb->self = g_object_ref(self);
	verb->name = g_strdup(name);
	verb->vm = g_object_ref(vm);
	verb->params = json_object_ref(params);
	verb->caller = *caller;
	verb->force = force;
	verb->timeout_ms = (guint)timeout_s * 1000;
	verb->func = func;
	g_task_set_task_data(task, verb, (GDestroyNotify)vmsup_vm_verb_free);
	vmsup_vm_lock_lock_async(self->lock,
				 name,
				 cancellable,
				 vmsup_vm_service_verb_locked_cb,
				 g_steal_pointer(&task));
}

static JsonObject *
vmsup_vm_service_verb_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* vm.start, vm.stop, vm.pause and vm.resume end by replying with the VM */
static void
vmsup_vm_service_verb_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	GError *error = NULL;
	gboolean done;

	if (g_async_result_is_tagged(res, vmsup_vm_start_async))
		done = vmsup_vm_start_finish(VMSUP_VM(source), res, &error);
	else if (g_async_result_is_tagged(res, vmsup_vm_set_paused_async))
		done = vmsup_vm_set_paused_finish(VMSUP_VM(source), res, &error);
	else
		done = vmsup_vm_stop_finish(VMSUP_VM(source), res, &error);

	if (!done) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	vmsup_vm_verb_return_vm(task);
}

/* vm.start */

static void
vmsup_vm_service_start_verb(VmsupVmService *self, GTask *task)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);
	/* the client's cancellable only counted while queued: a start begun completes */
	vmsup_vm_start_async(verb->vm, NULL, vmsup_vm_service_verb_done_cb, task);
}

void
vmsup_vm_service_start_async(VmsupVmService *self,
			     const VmsupCaller *caller,
			     JsonObject *params,
			     GCancellable *cancellable,
			     GAsyncReadyCallback callback,
			     gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	vmsup_vm_service_verb_begin(self,
				    caller,
				    params,
				    vmsup_vm_service_start_async,
				    vmsup_vm_service_start_verb,
				    cancellable,
				    callback,
				    user_data);
}

JsonObject *
vmsup_vm_service_start_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

/* vm.stop */

static void
vmsup_vm_service_stop_verb(VmsupVmService *self, GTask *task)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);
	vmsup_vm_stop_async(verb->vm,
			    verb->force,
			    verb->timeout_ms,
			    NULL,
			    vmsup_vm_service_verb_done_cb,
			    task);
}

void
vmsup_vm_service_stop_async(VmsupVmService *self,
			    const VmsupCaller *caller,
			    JsonObject *params,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	vmsup_vm_service_verb_begin(self,
				    caller,
				    params,
				    vmsup_vm_service_stop_async,
				    vmsup_vm_service_stop_verb,
				    cancellable,
				    callback,
				    user_data);
}

JsonObject *
vmsup_vm_service_stop_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

/* vm.pause and vm.resume */

static void
vmsup_vm_service_pause_verb(VmsupVmService *self, GTask *task)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);
	vmsup_vm_set_paused_async(verb->vm, TRUE, vmsup_vm_service_verb_done_cb, task);
}

static void
vmsup_vm_service_resume_verb(VmsupVmService *self, GTask *task)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);
	vmsup_vm_set_paused_async(verb->vm, FALSE, vmsup_vm_service_verb_done_cb, task);
}

void
vmsup_vm_service_pause_async(VmsupVmService *self,
			     const VmsupCaller *caller,
			     JsonObject *params,
			     GCancellable *cancellable,
			     GAsyncReadyCallback callback,
			     gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	vmsup_vm_service_verb_begin(self,
				    caller,
				    params,
				    vmsup_vm_service_pause_async,
				    vmsup_vm_service_pause_verb,
				    cancellable,
				    callback,
				    user_data);
}

JsonObject *
vmsup_vm_service_pause_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

void
vmsup_vm_service_resume_async(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	vmsup_vm_service_verb_begin(self,
				    caller,
				    params,
				    vmsup_vm_service_resume_async,
				    vmsup_vm_service_resume_verb,
				    cancellable,
				    callback,
				    user_data);
}

JsonObject *
vmsup_vm_service_resume_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

/* vm.delete */

static void
vmsup_vm_service_delete_stopped(VmsupVmService *self, GTask *task)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);
	g_autoptr(JsonObject) result = json_object_new();
	GError *error = NULL;

	if (!vmsup_vm_service_undefine(self, verb->vm, &error)) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE, verb->name, "VM '%s' deleted", verb->name);
	json_object_set_string_member(result, "name", verb->name);
	json_object_set_boolean_member(result, "deleted", TRUE);
	vmsup_vm_verb_return_object(task, g_steal_pointer(&result));
}

static void
vmsup_vm_service_delete_stop_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupVmVerb *verb = g_task_get_task_data(task);
	GError *error = NULL;

	if (!vmsup_vm_stop_finish(VMSUP_VM(source), res, &error)) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	vmsup_vm_service_delete_stopped(verb->self, task);
}

static void
vmsup_vm_service_delete_verb(VmsupVmService *self, GTask *task)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);

	if (vmsup_vm_has_process(verb->vm)) {
		if (!verb->force) {
			vmsup_vm_verb_return_error(
			    task,
			    g_error_new(VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("VM '%s' is %s; stop it first, or delete it with force "
					  "('vmsup delete --force %s')"),
					verb->name,
					vmsup_vm_state_to_string(vmsup_vm_get_state(verb->vm)),
					verb->name));
			return;
		}
	}
	/* stops QEMU, or waits for the outcome of its last run to be saved */
	vmsup_vm_stop_async(verb->vm, TRUE, 0, NULL, vmsup_vm_service_delete_stop_cb, task);
}

void
vmsup_vm_service_delete_async(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	vmsup_vm_service_verb_begin(self,
				    caller,
				    params,
				    vmsup_vm_service_delete_async,
				    vmsup_vm_service_delete_verb,
				    cancellable,
				    callback,
				    user_data);
}

JsonObject *
vmsup_vm_service_delete_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

/* vm.set */

static JsonArray *
vmsup_vm_service_pending_restart(VmsupVm *vm)
{
	g_auto(GStrv) fields = vmsup_vm_get_pending_restart(vm);
	JsonArray *pending = json_array_new();
	for (guint i = 0; fields[i] != NULL; i++)
		json_array_add_string_element(pending, fields[i]);
	return pending;
}

/* the changed fields in effect now: all but those waiting for a restart */
static JsonArray *
vmsup_vm_service_applied(VmsupVmVerb *verb)
{
	g_auto(GStrv) pending = vmsup_vm_get_pending_restart(verb->vm);
	JsonArray *applied = json_array_new();

	for (guint i = 0; verb->changed != NULL && verb->changed[i] != NULL; i++) {
		const gchar *field = verb->changed[i];
		if (g_strv_contains((const gchar *const *)pending, field))
			continue;
		if (vmsup_vm_cgroup_is_limit(field) && !vmsup_vm_limits_kept(verb->vm))
			continue;
		json_array_add_string_element(applied, field);
	}
	return applied;
}

static void
vmsup_vm_service_set_answer(VmsupVmService *self, GTask *task)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);
	g_autoptr(JsonObject) result = json_object_new();

	json_object_set_object_member(result, "vm", vmsup_vm_service_describe(verb->vm, NULL));
	json_object_set_array_member(result,
				     "pending_restart",
				     vmsup_vm_service_pending_restart(verb->vm));
	json_object_set_array_member(result, "applied", vmsup_vm_service_applied(verb));
	vmsup_vm_verb_return_object(task, g_steal_pointer(&result));
}

static void
vmsup_vm_service_set_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupVmVerb *verb = g_task_get_task_data(task);
	VmsupVmService *self = verb->self;
	GError *error = NULL;
	g_autofree gchar *fields = NULL;

	if (!vmsup_vm_store_save_finish(VMSUP_VM_STORE(source), res, &error)) {
		/* the limits changed live go back to the saved ones */
		vmsup_vm_apply_limits_async(verb->vm, vmsup_vm_get_def(verb->vm), NULL, NULL);
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	fields = g_strjoinv(", ", verb->changed);
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE, verb->name, "VM '%s' changed: %s", verb->name, fields);
	vmsup_vm_set_def(verb->vm, g_steal_pointer(&verb->new_def));
	vmsup_vm_service_set_answer(self, task);
}

/* the limits are in effect (or wait for the next start): now the definition */
static void
vmsup_vm_service_set_applied_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupVmVerb *verb = g_task_get_task_data(task);
	VmsupVmService *self = verb->self;
	GError *error = NULL;

	if (!vmsup_vm_apply_limits_finish(VMSUP_VM(source), res, &error)) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	vmsup_vm_store_save_async(self->store,
				  verb->new_def,
				  NULL,
				  vmsup_vm_service_set_saved_cb,
				  task);
}

static void
vmsup_vm_service_set_verb(VmsupVmService *self, GTask *task)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);
	static const gchar *const ignore_flat[] = {"name", NULL};
	static const gchar *const ignore_nested[] = {NULL};
	JsonObject *fields = verb->params;
	const gchar *const *ignore = ignore_flat;
	JsonNode *nested = json_object_get_member(verb->params, "fields");
	GError *error = NULL;

	/* {name, fields: {...}} and the flat {name, cpus, ...} of the D-Bus mapping */
	if (nested != NULL) {
		if (!JSON_NODE_HOLDS_OBJECT(nested) || json_object_get_size(verb->params) != 2) {
			vmsup_vm_verb_return_error(
			    task,
			    g_error_new(VMSUP_ERROR,
					VMSUP_ERROR_INVALID_ARGUMENT,
					_("'fields' must be an object and come alone with "
					  "'name', got %s"),
					vmsup_json_node_type_name(nested)));
			return;
		}
		fields = json_node_get_object(nested);
		ignore = ignore_nested;
	}
	verb->new_def = vmsup_vm_def_copy(vmsup_vm_get_def(verb->vm));
	if (!vmsup_vm_def_apply(verb->new_def,
				fields,
				ignore,
				&verb->caller,
				&verb->changed,
				&error)) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	if (verb->changed[0] == NULL) {
		vmsup_vm_service_set_answer(self, task);
		return;
	}
	if (!vmsup_vm_service_check_owner_limits(self,
						 verb->new_def,
						 vmsup_vm_get_def(verb->vm),
						 &error)) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	if (verb->new_def->memory_mib > vmsup_vm_get_def(verb->vm)->memory_mib)
		g_hash_table_insert(self->memory_reserved,
				    g_strdup(verb->name),
				    GUINT_TO_POINTER(verb->new_def->memory_mib));
	vmsup_vm_apply_limits_async(verb->vm, verb->new_def, vmsup_vm_service_set_applied_cb, task);
}

void
vmsup_vm_service_set_async(VmsupVmService *self,
			   const VmsupCaller *caller,
			   JsonObject *params,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	vmsup_vm_service_verb_begin(self,
				    caller,
				    params,
				    vmsup_vm_service_set_async,
				    vmsup_vm_service_set_verb,
				    cancellable,
				    callback,
				    user_data);
}

JsonObject *
vmsup_vm_service_set_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

/* vm.list, vm.get: answered from the cache, no lock */

static gint
vmsup_vm_service_compare_str_ptr(gconstpointer a, gconstpointer b, gpointer user_data)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

static gint
vmsup_vm_service_compare_vms(gconstpointer a, gconstpointer b, gpointer user_data)
{
	return g_strcmp0(vmsup_vm_get_name(*(VmsupVm *const *)a),
			 vmsup_vm_get_name(*(VmsupVm *const *)b));
}

GStrv
vmsup_vm_service_list_names(VmsupVmService *self)
{
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	g_autofree const gchar **names = NULL;
	guint n = 0;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	names = (const gchar **)g_hash_table_get_keys_as_array(self->vms, &n);
	g_qsort_with_data(names, n, sizeof(gchar *), vmsup_vm_service_compare_str_ptr, NULL);
	for (guint i = 0; i < n; i++)
		g_strv_builder_add(builder, names[i]);
	return g_strv_builder_end(builder);
}

void
vmsup_vm_service_count(VmsupVmService *self,
		       gint64 owner_uid,
		       guint *out_defined,
		       guint *out_running)
{
	GHashTableIter iter;
	gpointer value;
	guint defined = 0;
	guint running = 0;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmsupVm *vm = value;
		if (owner_uid != VMSUP_VM_SERVICE_ANY_OWNER &&
		    vmsup_vm_get_def(vm)->owner_uid != owner_uid)
			continue;
		defined++;
		if (vmsup_vm_get_state(vm) == VMSUP_VM_STATE_RUNNING ||
		    vmsup_vm_get_state(vm) == VMSUP_VM_STATE_PAUSED)
			running++;
	}
	if (out_defined != NULL)
		*out_defined = defined;
	if (out_running != NULL)
		*out_running = running;
}

static void
vmsup_vm_summary_clear(gpointer data)
{
	VmsupVmSummary *summary = data;
	g_free(summary->name);
}

GArray *
vmsup_vm_service_summarize(VmsupVmService *self)
{
	g_auto(GStrv) names = NULL;
	GArray *out;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	names = vmsup_vm_service_list_names(self);
	out = g_array_sized_new(FALSE, TRUE, sizeof(VmsupVmSummary), g_strv_length(names));
	g_array_set_clear_func(out, vmsup_vm_summary_clear);
	for (guint i = 0; names[i] != NULL; i++) {
		VmsupVm *vm = g_hash_table_lookup(self->vms, names[i]);
		const VmsupVmDef *def = vmsup_vm_get_def(vm);
		VmsupVmSummary summary = {
		    .name = g_strdup(names[i]),
		    .owner_uid = def->owner_uid,
		    .state = vmsup_vm_state_to_string(vmsup_vm_get_state(vm)),
		    .memory_mib = def->memory_mib,
		    .boot_to_agent_s = vmsup_vm_get_boot_to_agent(vm),
		};
		g_array_append_val(out, summary);
	}
	return out;
}

JsonObject *
vmsup_vm_service_lookup(VmsupVmService *self, const gchar *name)
{
	VmsupVm *vm;
	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	if (name == NULL)
		return NULL;
	vm = g_hash_table_lookup(self->vms, name);
	return vm != NULL ? vmsup_vm_service_describe(vm, NULL) : NULL;
}

/* vm.list's "fields" (strings borrowed from @params); NULL when absent or null */
static gboolean
vmsup_vm_service_get_fields_param(JsonObject *params, const gchar ***out_fields, GError **error)
{
	JsonNode *node = json_object_get_member(params, "fields");
	g_autofree const gchar **fields = NULL;
	JsonArray *array;
	guint n;

	*out_fields = NULL;
	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return TRUE;
	if (!JSON_NODE_HOLDS_ARRAY(node)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'fields' must be an array of member names, got %s"),
			    vmsup_json_node_type_name(node));
		return FALSE;
	}
	array = json_node_get_array(node);
	n = json_array_get_length(array);
	fields = g_new0(const gchar *, n + 1);
	for (guint i = 0; i < n; i++) {
		JsonNode *element = json_array_get_element(array, i);
		if (!JSON_NODE_HOLDS_VALUE(element) ||
		    json_node_get_value_type(element) != G_TYPE_STRING) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("'fields' must be an array of member names, got %s in it"),
				    vmsup_json_node_type_name(element));
			return FALSE;
		}
		fields[i] = json_node_get_string(element);
	}
	*out_fields = g_steal_pointer(&fields);
	return TRUE;
}

JsonObject *
vmsup_vm_service_list(VmsupVmService *self, JsonObject *params, GError **error)
{
	g_autoptr(JsonObject) result = json_object_new();
	g_autoptr(JsonArray) vms = NULL;
	g_autofree VmsupVm **vms_sorted = NULL;
	g_autofree const gchar **fields = NULL;
	guint n = 0;
	GHashTableIter iter;
	gpointer value;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	g_return_val_if_fail(params != NULL, NULL);

	if (!vmsup_vm_service_get_fields_param(params, &fields, error))
		return NULL;
	vms_sorted = g_new(VmsupVm *, g_hash_table_size(self->vms));
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		vms_sorted[n++] = value;
	g_qsort_with_data(vms_sorted, n, sizeof(VmsupVm *), vmsup_vm_service_compare_vms, NULL);
	vms = json_array_sized_new(n);
	for (guint i = 0; i < n; i++)
		json_array_add_object_element(vms,
					      vmsup_vm_service_describe(vms_sorted[i], fields));
	json_object_set_array_member(result, "vms", g_steal_pointer(&vms));
	return g_steal_pointer(&result);
}

/* the VM the params name, for a verb that answers at once; a VM being created is busy */
static VmsupVm *
vmsup_vm_service_find_defined(VmsupVmService *self, JsonObject *params, GError **error)
{
	const gchar *name = vmsup_vm_service_get_name_param(params, error);
	VmsupVm *vm;

	if (name == NULL)
		return NULL;
	vm = g_hash_table_lookup(self->vms, name);
	if (vm == NULL && vmsup_vm_service_check_not_creating(self, name, error))
		vm = vmsup_vm_service_lookup_vm(self, name, error);
	return vm;
}

JsonObject *
vmsup_vm_service_get(VmsupVmService *self, JsonObject *params, GError **error)
{
	VmsupVm *vm;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	g_return_val_if_fail(params != NULL, NULL);

	vm = vmsup_vm_service_find_defined(self, params, error);
	if (vm == NULL)
		return NULL;
	return vmsup_vm_service_describe(vm, NULL);
}

JsonObject *
vmsup_vm_service_ssh_info(VmsupVmService *self,
			  const VmsupCaller *caller,
			  JsonObject *params,
			  GError **error)
{
	VmsupVm *vm;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	g_return_val_if_fail(params != NULL, NULL);

	vm = vmsup_vm_service_find_defined(self, params, error);
	if (vm == NULL)
		return NULL;
	return vmsup_vm_get_ssh_info(vm, error);
}

gint
vmsup_vm_service_open_console(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GError **error)
{
	VmsupVm *vm;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), -1);
	g_return_val_if_fail(params != NULL, -1);

	vm = vmsup_vm_service_find_defined(self, params, error);
	if (vm == NULL)
		return -1;
	return vmsup_vm_open_console(vm,
				     vmsup_json_object_get_bool(params, "history", TRUE),
				     error);
}

/* an image with an EFI system partition boots UEFI unless the caller chose; any other BIOS */
static gboolean
vmsup_vm_service_resolve_firmware(VmsupVmDef *def, GError **error)
{
	gint fd;

	if (def->image == NULL || def->firmware != NULL)
		return TRUE;
	/* read as its owner, as QEMU will */
	fd = vmsup_owner_open_file("image", def->image, def->owner_uid, error);
	if (fd < 0)
		return FALSE;
	def->firmware = g_strdup(vmsup_disk_esp_probe(fd) ? "uefi" : "bios");
	close(fd);
	return TRUE;
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
		g_autofree gchar *dir = vmsup_paths_guest_dir();
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

/* vm.create: checks now, the rest as an operation (VmsupVmCreate) */

static VmsupVm *
vmsup_vm_service_create_define_hook(VmsupVmDef *def, gpointer user_data)
{
	VmsupVmService *self = VMSUP_VM_SERVICE(user_data);
	VmsupVm *vm = vmsup_vm_service_add_vm(self, def);

	vmsup_vm_service_emit_vm_changed(self, vm);
	return vm;
}

static gboolean
vmsup_vm_service_create_undefine_hook(VmsupVm *vm, GError **error, gpointer user_data)
{
	VmsupVmService *self = VMSUP_VM_SERVICE(user_data);

	/* a delete that came between took it already */
	if (g_hash_table_lookup(self->vms, vmsup_vm_get_name(vm)) != vm)
		return TRUE;
	return vmsup_vm_service_undefine(self, vm, error);
}

static void
vmsup_vm_service_create_ended_hook(VmsupVmCreate *create, gpointer user_data)
{
	VmsupVmService *self = VMSUP_VM_SERVICE(user_data);

	g_hash_table_remove(self->creating, vmsup_vm_create_get_def(create)->name);
}

static const VmsupVmCreateHooks vmsup_vm_service_create_hooks = {
    .define = vmsup_vm_service_create_define_hook,
    .undefine = vmsup_vm_service_create_undefine_hook,
    .ended = vmsup_vm_service_create_ended_hook,
};

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

/* a new VM @name may come: none by that name, and room under MaxVMs */
static gboolean
vmsup_vm_service_create_check_name(VmsupVmService *self, const gchar *name, GError **error)
{
	if (!vmsup_vm_service_check_not_creating(self, name, error))
		return FALSE;
	if (g_hash_table_contains(self->vms, name)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_ALREADY_EXISTS,
			    _("VM '%s' already exists; choose another name or delete it "
			      "first"),
			    name);
		return FALSE;
	}
	return vmsup_vm_limits_check_count(&self->limits,
					   name,
					   vmsup_vm_service_count_vms(self),
					   error);
}

/*
 * @params with an "image" that names a stored image (no '/') replaced by
 * that image's file, over which the VM gets its overlay as over any path
 */
static JsonObject *
vmsup_vm_service_resolve_image(VmsupVmService *self, JsonObject *params, GError **error)
{
	JsonNode *node = json_object_get_member(params, "image");
	const gchar *image;
	g_autofree gchar *path = NULL;
	JsonObject *resolved;
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *value;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return json_object_ref(params);
	image = json_node_get_string(node);
	if (!vmsup_image_hooks_is_store_name(image) || image[0] == '\0')
		return json_object_ref(params);
	path = vmsup_image_hooks_lookup(self->image_lookup, image, error);
	if (path == NULL)
		return NULL;
	resolved = json_object_new();
	json_object_iter_init(&iter, params);
	while (json_object_iter_next(&iter, &member, &value))
		json_object_set_member(resolved, member, json_node_copy(value));
	json_object_set_string_member(resolved, "image", path);
	return resolved;
}

/* the definition vm.create asks for, checked against the host and the limits */
static VmsupVmDef *
vmsup_vm_service_create_def(VmsupVmService *self,
			    const VmsupCaller *caller,
			    JsonObject *params,
			    GError **error)
{
	static const gchar *const ignore[] = {"start", "wait", NULL};
	g_autoptr(JsonObject) resolved = vmsup_vm_service_resolve_image(self, params, error);
	g_autoptr(VmsupVmDef) def = NULL;

	if (resolved == NULL)
		return NULL;
	def = vmsup_vm_def_new_from_params(resolved, ignore, caller, error);

	if (def == NULL || !vmsup_vm_service_resolve_guest(def, error) ||
	    !vmsup_vm_def_validate(def, error) ||
	    !vmsup_vm_cgroup_check_def(vmsup_vm_service_get_cgroup(self), def, error) ||
	    !vmsup_vm_service_check_owner_limits(self, def, NULL, error) ||
	    !vmsup_preflight_check_files(def, error) ||
	    !vmsup_vm_service_resolve_firmware(def, error))
		return NULL;
	return g_steal_pointer(&def);
}

/* a VM made from an image or with a disk size gets its disk: where, made with what */
static gboolean
vmsup_vm_service_create_disk(VmsupVmService *self,
			     VmsupVmDef *def,
			     const gchar *binary,
			     gchar **out_qemu_img,
			     GError **error)
{
	g_autofree gchar *basename = NULL;

	if (def->image == NULL && def->disk_gib == 0)
		return TRUE;
	*out_qemu_img = vmsup_disk_find_qemu_img(binary, error);
	if (*out_qemu_img == NULL)
		return FALSE;
	/* guest files an earlier VM of this name left (a delete cut short) are not this one's */
	if (def->image != NULL) {
		g_autofree gchar *guest_dir = vmsup_vm_seed_guest_dir(self->state_dir, def->name);
		if (g_file_test(guest_dir, G_FILE_TEST_IS_DIR))
			vmsup_vm_files_remove_tree(guest_dir);
	}
	basename = g_strconcat(def->name, ".qcow2", NULL);
	def->disk = g_build_filename(self->state_dir, "disks", basename, NULL);
	if (g_file_test(def->disk, G_FILE_TEST_EXISTS)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("A disk '%s' already exists, left by an earlier VM "
			      "named '%s'; move it away or remove it first"),
			    def->disk,
			    def->name);
		return FALSE;
	}
	return TRUE;
}

void
vmsup_vm_service_create_async(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	GError *error = NULL;
	g_autoptr(VmsupVmDef) def = NULL;
	g_autoptr(VmsupQemuConfig) config = NULL;
	g_autofree gchar *binary = NULL;
	g_autofree gchar *qemu_img = NULL;
	g_autoptr(VmsupVmCreate) create = NULL;
	VmsupOperation *op;
	const gchar *name;
	gboolean start = FALSE;
	gboolean wait = FALSE;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_create_async);

	/* nothing is touched before every check has passed, the name first */
	name = vmsup_vm_service_get_name_param(params, &error);
	if (name == NULL || !vmsup_vm_service_create_check_name(self, name, &error) ||
	    !vmsup_json_object_get_checked_bool(params, "start", FALSE, &start, &error) ||
	    !vmsup_json_object_get_checked_bool(params, "wait", FALSE, &wait, &error) ||
	    (def = vmsup_vm_service_create_def(self, caller, params, &error)) == NULL) {
		g_task_return_error(task, error);
		return;
	}
	/* resolved once for the create: preflight and qemu-img use what it finds */
	config = vmsup_qemu_config_new(name);
	config->qemu_binary = g_strdup(self->qemu_binary);
	binary = vmsup_qemu_config_find_binary(config, &error);
	if (binary == NULL || !vmsup_vm_service_create_disk(self, def, binary, &qemu_img, &error)) {
		vmsup_vm_service_return_error(task, error);
		return;
	}
	def->created = g_get_real_time() / G_USEC_PER_SEC;

	vmsup_vm_service_prune_ops(self);
	op = vmsup_vm_service_add_op(self, "create", name);
	vmsup_vm_service_set_op_owner(op, def->owner_uid);
	create = vmsup_vm_create_new(op,
				     g_steal_pointer(&def),
				     binary,
				     qemu_img,
				     self->state_dir,
				     start,
				     self->lock,
				     self->store,
				     self->accel,
				     &vmsup_vm_service_create_hooks,
				     self);
	g_hash_table_insert(self->creating, g_strdup(name), g_object_ref(create));
	vmsup_log_vm(G_LOG_LEVEL_INFO,
		     name,
		     "creating VM '%s' (operation %" G_GINT64_FORMAT ")",
		     name,
		     vmsup_operation_get_id(op));
	vmsup_vm_create_run(create);
	if (wait) {
		vmsup_operation_wait_async(op,
					   NULL,
					   vmsup_vm_service_create_waited_cb,
					   g_steal_pointer(&task));
	} else {
		g_autoptr(JsonObject) result = json_object_new();
		json_object_set_int_member(result, "operation", vmsup_operation_get_id(op));
		json_object_set_string_member(result, "vm", name);
		g_task_return_pointer(task,
				      g_steal_pointer(&result),
				      (GDestroyNotify)json_object_unref);
	}
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

/* load at start-up, stop at shut-down (VmsupVmLoader) */

static VmsupVm *
vmsup_vm_service_loader_add_hook(VmsupVmDef *def, gpointer user_data)
{
	return vmsup_vm_service_add_vm(VMSUP_VM_SERVICE(user_data), def);
}

static VmsupVm *
vmsup_vm_service_loader_lookup_hook(const gchar *name, gpointer user_data)
{
	return g_hash_table_lookup(VMSUP_VM_SERVICE(user_data)->vms, name);
}

static GStrv
vmsup_vm_service_loader_list_hook(gpointer user_data)
{
	return vmsup_vm_service_list_names(VMSUP_VM_SERVICE(user_data));
}

static const VmsupVmLoaderHooks vmsup_vm_service_loader_hooks = {
    .add = vmsup_vm_service_loader_add_hook,
    .lookup = vmsup_vm_service_loader_lookup_hook,
    .list = vmsup_vm_service_loader_list_hook,
};

static VmsupVmLoader *
vmsup_vm_service_new_loader(VmsupVmService *self)
{
	return vmsup_vm_loader_new(self->store,
				   self->lock,
				   self->accel,
				   self->state_dir,
				   self->runtime_dir,
				   self->cancellable,
				   &vmsup_vm_service_loader_hooks,
				   self);
}

static void
vmsup_vm_service_loaded_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;

	if (!vmsup_vm_loader_load_finish(VMSUP_VM_LOADER(source), res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_service_load_async(VmsupVmService *self,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupVmLoader) loader = NULL;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_load_async);
	if (self->loaded) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					"the VM service is loaded already");
		return;
	}
	self->loaded = TRUE;
	vmsup_vm_service_get_cgroup(self);
	loader = vmsup_vm_service_new_loader(self);
	vmsup_vm_loader_load_async(loader,
				   cancellable,
				   vmsup_vm_service_loaded_cb,
				   g_steal_pointer(&task));
}

gboolean
vmsup_vm_service_load_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
vmsup_vm_service_stopped_all_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;

	vmsup_vm_loader_stop_all_finish(VMSUP_VM_LOADER(source), res, NULL);
	g_task_return_boolean(task, TRUE);
}

void
vmsup_vm_service_stop_all_async(VmsupVmService *self,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupVmLoader) loader = NULL;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_stop_all_async);
	loader = vmsup_vm_service_new_loader(self);
	vmsup_vm_loader_stop_all_async(loader,
				       self->stop_timeout_s,
				       cancellable,
				       vmsup_vm_service_stopped_all_cb,
				       g_steal_pointer(&task));
}

gboolean
vmsup_vm_service_stop_all_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* hooks for sibling services: arguments first, the service last */

static gboolean
vmsup_vm_service_vm_alive_hook(const gchar *name, VmsupVmService *self)
{
	VmsupVm *vm = name != NULL ? g_hash_table_lookup(self->vms, name) : NULL;
	return vm != NULL && vmsup_vm_is_alive(vm);
}

static VmsupVmHandles *
vmsup_vm_service_vm_handles_hook(const gchar *name, VmsupVmService *self)
{
	VmsupVm *vm = name != NULL ? g_hash_table_lookup(self->vms, name) : NULL;
	VmsupVmHandles *handles = vm != NULL ? vmsup_vm_get_handles(vm) : NULL;

	return handles != NULL ? vmsup_vm_handles_ref(handles) : NULL;
}

static void
vmsup_vm_service_lock_vm_hook(const gchar *name,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data,
			      VmsupVmService *self)
{
	vmsup_vm_lock_lock_async(self->lock, name, cancellable, callback, user_data);
}

static void
vmsup_vm_service_unlock_vm_hook(const gchar *name, VmsupVmService *self)
{
	vmsup_vm_lock_unlock(self->lock, name);
}

static void
vmsup_vm_service_cleanup_runtime_hook(const gchar *name, VmsupVmService *self)
{
	VmsupVm *vm = name != NULL ? g_hash_table_lookup(self->vms, name) : NULL;

	if (vm != NULL)
		vmsup_vm_cleanup_exited(vm);
}

static void
vmsup_vm_service_note_stop_hook(const gchar *name, const gchar *reason, VmsupVmService *self)
{
	VmsupVm *vm = name != NULL ? g_hash_table_lookup(self->vms, name) : NULL;

	if (vm != NULL)
		vmsup_vm_note_stop(vm, reason);
}

static void
vmsup_vm_service_add_image_user(GPtrArray *users, const VmsupVmDef *def, const gchar *path)
{
	if (def->image == NULL || g_strcmp0(def->image, path) != 0)
		return;
	for (guint i = 0; i < users->len; i++)
		if (g_strcmp0(g_ptr_array_index(users, i), def->name) == 0)
			return;
	g_ptr_array_add(users, g_strdup(def->name));
}

/* the VMs over the image @path, those being created included, sorted */
static GStrv
vmsup_vm_service_image_users_hook(const gchar *path, VmsupVmService *self)
{
	g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->vms);
	while (path != NULL && g_hash_table_iter_next(&iter, NULL, &value))
		vmsup_vm_service_add_image_user(users, vmsup_vm_get_def(value), path);
	g_hash_table_iter_init(&iter, self->creating);
	while (path != NULL && g_hash_table_iter_next(&iter, NULL, &value))
		vmsup_vm_service_add_image_user(users, vmsup_vm_create_get_def(value), path);
	g_ptr_array_sort_with_data(users, vmsup_vm_service_compare_str_ptr, NULL);
	g_ptr_array_add(users, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&users), FALSE);
}

static GClosure *
vmsup_vm_service_new_hook(VmsupVmService *self, GCallback callback)
{
	GClosure *closure = g_cclosure_new_object(callback, G_OBJECT(self));
	g_closure_set_marshal(closure, g_cclosure_marshal_generic);
	g_closure_ref(closure);
	g_closure_sink(closure);
	return closure;
}

const VmsupVmHooks *
vmsup_vm_service_get_hooks(VmsupVmService *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	return &self->hooks;
}

void
vmsup_vm_service_set_image_lookup(VmsupVmService *self, GClosure *lookup)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));

	g_clear_pointer(&self->image_lookup, g_closure_unref);
	self->image_lookup = vmsup_vm_hooks_take_closure(lookup);
}

VmsupAccel
vmsup_vm_service_get_accel(VmsupVmService *self, const gchar **out_reason)
{
	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), VMSUP_ACCEL_TCG);
	return vmsup_vm_accel_get(self->accel, out_reason);
}

/* GObject */

static void
vmsup_vm_service_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	VmsupVmService *self = VMSUP_VM_SERVICE(object);
	switch (prop_id) {
	case PROP_STATE_DIR:
		g_value_set_string(value, self->state_dir);
		break;
	case PROP_RUNTIME_DIR:
		g_value_set_string(value, self->runtime_dir);
		break;
	case PROP_QEMU_BINARY:
		g_value_set_string(value, self->qemu_binary);
		break;
	case PROP_ACCEL:
		g_value_set_int(value, self->accel_config);
		break;
	case PROP_STOP_TIMEOUT:
		g_value_set_uint(value, self->stop_timeout_s);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_vm_service_set_property(GObject *object,
			      guint prop_id,
			      const GValue *value,
			      GParamSpec *pspec)
{
	VmsupVmService *self = VMSUP_VM_SERVICE(object);
	switch (prop_id) {
	case PROP_STATE_DIR:
		self->state_dir = g_value_dup_string(value);
		break;
	case PROP_RUNTIME_DIR:
		self->runtime_dir = g_value_dup_string(value);
		break;
	case PROP_QEMU_BINARY:
		self->qemu_binary = g_value_dup_string(value);
		break;
	case PROP_ACCEL:
		self->accel_config = g_value_get_int(value);
		break;
	case PROP_STOP_TIMEOUT:
		self->stop_timeout_s = g_value_get_uint(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_vm_service_constructed(GObject *object)
{
	VmsupVmService *self = VMSUP_VM_SERVICE(object);

	G_OBJECT_CLASS(vmsup_vm_service_parent_class)->constructed(object);
	if (self->state_dir == NULL)
		self->state_dir = vmsup_paths_state_dir(FALSE);
	if (self->runtime_dir == NULL)
		self->runtime_dir = vmsup_paths_runtime_dir(FALSE);
	self->store = vmsup_vm_store_new(self->state_dir);
	self->accel = vmsup_vm_accel_new(self->accel_config, self->qemu_binary, self->cancellable);
	g_signal_connect_object(self->accel,
				"decided",
				G_CALLBACK(vmsup_vm_service_accel_decided_cb),
				self,
				0);
	self->hooks.vm_alive =
	    vmsup_vm_service_new_hook(self, G_CALLBACK(vmsup_vm_service_vm_alive_hook));
	self->hooks.vm_handles =
	    vmsup_vm_service_new_hook(self, G_CALLBACK(vmsup_vm_service_vm_handles_hook));
	self->hooks.lock_vm =
	    vmsup_vm_service_new_hook(self, G_CALLBACK(vmsup_vm_service_lock_vm_hook));
	self->hooks.unlock_vm =
	    vmsup_vm_service_new_hook(self, G_CALLBACK(vmsup_vm_service_unlock_vm_hook));
	self->hooks.cleanup_runtime =
	    vmsup_vm_service_new_hook(self, G_CALLBACK(vmsup_vm_service_cleanup_runtime_hook));
	self->hooks.note_stop =
	    vmsup_vm_service_new_hook(self, G_CALLBACK(vmsup_vm_service_note_stop_hook));
	self->hooks.image_users =
	    vmsup_vm_service_new_hook(self, G_CALLBACK(vmsup_vm_service_image_users_hook));
}

static void
vmsup_vm_service_dispose(GObject *object)
{
	VmsupVmService *self = VMSUP_VM_SERVICE(object);
	GHashTableIter iter;
	gpointer value;

	g_cancellable_cancel(self->cancellable);
	/* running QEMUs are left running, to be adopted by the next daemon */
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		vmsup_vm_release_process(value);
	g_hash_table_remove_all(self->vms);
	g_hash_table_remove_all(self->creating);
	g_hash_table_remove_all(self->memory_reserved);
	g_hash_table_remove_all(self->ops);
	G_OBJECT_CLASS(vmsup_vm_service_parent_class)->dispose(object);
}

static void
vmsup_vm_service_finalize(GObject *object)
{
	VmsupVmService *self = VMSUP_VM_SERVICE(object);

	vmsup_vm_hooks_clear(&self->hooks);
	g_clear_pointer(&self->image_lookup, g_closure_unref);
	g_clear_object(&self->store);
	g_clear_object(&self->lock);
	g_clear_object(&self->cancellable);
	g_clear_object(&self->cgroup);
	g_clear_object(&self->accel);
	g_hash_table_unref(self->vms);
	g_hash_table_unref(self->ops);
	g_hash_table_unref(self->creating);
	g_hash_table_unref(self->memory_reserved);
	g_free(self->state_dir);
	g_free(self->runtime_dir);
	g_free(self->qemu_binary);
	G_OBJECT_CLASS(vmsup_vm_service_parent_class)->finalize(object);
}

static void
vmsup_vm_service_class_init(VmsupVmServiceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->get_property = vmsup_vm_service_get_property;
	object_class->set_property = vmsup_vm_service_set_property;
	object_class->constructed = vmsup_vm_service_constructed;
	object_class->dispose = vmsup_vm_service_dispose;
	object_class->finalize = vmsup_vm_service_finalize;

	props[PROP_STATE_DIR] = g_param_spec_string("state-dir",
						    NULL,
						    NULL,
						    NULL,
						    G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
							G_PARAM_STATIC_STRINGS);
	props[PROP_RUNTIME_DIR] = g_param_spec_string("runtime-dir",
						      NULL,
						      NULL,
						      NULL,
						      G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
							  G_PARAM_STATIC_STRINGS);
	props[PROP_QEMU_BINARY] = g_param_spec_string("qemu-binary",
						      NULL,
						      NULL,
						      NULL,
						      G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
							  G_PARAM_STATIC_STRINGS);
	/* a VmsupAccel */
	props[PROP_ACCEL] =
	    g_param_spec_int("accel",
			     NULL,
			     NULL,
			     VMSUP_ACCEL_AUTO,
			     VMSUP_ACCEL_TCG,
			     VMSUP_ACCEL_AUTO,
			     G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
	/* seconds stop_all gives each guest to power off before QEMU is told to quit */
	props[PROP_STOP_TIMEOUT] =
	    g_param_spec_uint("stop-timeout",
			      NULL,
			      NULL,
			      0,
			      VMSUP_VM_SERVICE_MAX_STOP_TIMEOUT_S,
			      VMSUP_VM_SERVICE_STOP_TIMEOUT_S,
			      G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);

	signals[SIGNAL_VM_CHANGED] = g_signal_new("vm-changed",
						  G_TYPE_FROM_CLASS(klass),
						  G_SIGNAL_RUN_LAST,
						  0,
						  NULL,
						  NULL,
						  NULL,
						  G_TYPE_NONE,
						  2,
						  G_TYPE_STRING,
						  JSON_TYPE_OBJECT);
	signals[SIGNAL_VM_REMOVED] = g_signal_new("vm-removed",
						  G_TYPE_FROM_CLASS(klass),
						  G_SIGNAL_RUN_LAST,
						  0,
						  NULL,
						  NULL,
						  NULL,
						  G_TYPE_NONE,
						  1,
						  G_TYPE_STRING);
	signals[SIGNAL_OPERATION_CHANGED] = g_signal_new("operation-changed",
							 G_TYPE_FROM_CLASS(klass),
							 G_SIGNAL_RUN_LAST,
							 0,
							 NULL,
							 NULL,
							 NULL,
							 G_TYPE_NONE,
							 1,
							 JSON_TYPE_OBJECT);
	signals[SIGNAL_ACCEL_DECIDED] = g_signal_new("accel-decided",
						     G_TYPE_FROM_CLASS(klass),
						     G_SIGNAL_RUN_LAST,
						     0,
						     NULL,
						     NULL,
						     NULL,
						     G_TYPE_NONE,
						     0);
}

static void
vmsup_vm_service_init(VmsupVmService *self)
{
	self->cancellable = g_cancellable_new();
	self->lock = vmsup_vm_lock_new();
	self->vms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
	self->ops = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_object_unref);
	self->creating = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
	self->memory_reserved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->next_op_id = 1;
}

VmsupVmService *
vmsup_vm_service_new(const gchar *state_dir,
		     const gchar *runtime_dir,
		     const gchar *qemu_binary,
		     VmsupAccel accel)
{
	return g_object_new(VMSUP_TYPE_VM_SERVICE,
			    "state-dir",
			    state_dir,
			    "runtime-dir",
			    runtime_dir,
			    "qemu-binary",
			    qemu_binary,
			    "accel",
			    (gint)accel,
			    NULL);
}
