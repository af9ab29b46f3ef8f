/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService: the lifecycle of VMs. The GObject, the records of defined VMs,
 * the vm.* verbs on existing VMs (start, stop, delete, set, get, list) run
 * under each VM's lock, the signals, and the hooks for sibling services.
 * One run of QEMU lives in vmsup-vm-service-process.c, create-operations and
 * op.* in vmsup-vm-service-create.c, start-up and shut-down in
 * vmsup-vm-service-load.c.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <sys/wait.h>

#include "vmsup-disk.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-name.h"
#include "vmsup-operation.h"
#include "vmsup-paths.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-lock.h"
#include "vmsup-vm-service-private.h"
#include "vmsup-vm-service.h"
#include "vmsup-vm-store.h"

/* finished operations stay visible to op.get this long */
#define VMSUP_VM_SERVICE_OP_KEEP_US (10 * 60 * G_USEC_PER_SEC)
#define VMSUP_VM_SERVICE_STOP_TIMEOUT_S 30
#define VMSUP_VM_SERVICE_MAX_STOP_TIMEOUT_S 3600

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

/* records */

static const gchar *
vmsup_vm_state_to_string(VmsupVmState state)
{
	switch (state) {
	case VMSUP_VM_STATE_DEFINED:
		return "defined";
	case VMSUP_VM_STATE_STARTING:
		return "starting";
	case VMSUP_VM_STATE_RUNNING:
		return "running";
	case VMSUP_VM_STATE_PAUSED:
		return "paused";
	case VMSUP_VM_STATE_STOPPING:
		return "stopping";
	case VMSUP_VM_STATE_STOPPED:
		return "stopped";
	case VMSUP_VM_STATE_CRASHED:
		return "crashed";
	default:
		return "unknown";
	}
}

static void
vmsup_vm_record_clear(gpointer data)
{
	VmsupVmRecord *rec = data;
	/* handlers hold a ref, so nothing can still be connected here */
	g_assert(rec->exited_id == 0 && rec->event_id == 0);
	g_clear_object(&rec->process);
	g_clear_object(&rec->qmp);
	g_clear_pointer(&rec->handles, vmsup_vm_handles_unref);
	g_clear_pointer(&rec->def, vmsup_vm_def_free);
	g_clear_pointer(&rec->running_def, vmsup_vm_def_free);
	g_free(rec->shutdown_reason);
	g_free(rec->stop_reason);
	g_free(rec->exit_reason);
	g_free(rec->last_error);
	g_free(rec->cgroup_error);
	g_ptr_array_unref(rec->exit_waiters);
}

VmsupVmRecord *
vmsup_vm_service_record_ref(VmsupVmRecord *rec)
{
	return g_rc_box_acquire(rec);
}

void
vmsup_vm_service_record_unref(VmsupVmRecord *rec)
{
	g_rc_box_release_full(rec, vmsup_vm_record_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupVmRecord, vmsup_vm_service_record_unref)

void
vmsup_vm_service_record_closure_notify(gpointer data, GClosure *closure)
{
	vmsup_vm_service_record_unref(data);
}

VmsupVmRecord *
vmsup_vm_service_record_new(VmsupVmService *self, VmsupVmDef *def /* owned */)
{
	VmsupVmRecord *rec = g_rc_box_new0(VmsupVmRecord);
	rec->service = self;
	rec->def = def;
	rec->state = VMSUP_VM_STATE_DEFINED;
	rec->exit_status = -1;
	rec->exit_waiters = g_ptr_array_new_with_free_func(g_object_unref);
	return rec;
}

gchar *
vmsup_vm_service_vm_runtime_dir(VmsupVmService *self, const gchar *name)
{
	return g_build_filename(self->runtime_dir, "vms", name, NULL);
}

/* plain files and directories only; symlinks are removed, never followed */
void
vmsup_vm_service_remove_tree(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *basename;

	while (dir != NULL && (basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, basename, NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
			vmsup_vm_service_remove_tree(child);
		else if (g_unlink(child) != 0 && errno != ENOENT)
			g_debug("cannot remove '%s': %s", child, g_strerror(errno));
	}
	if (g_rmdir(path) != 0 && errno != ENOENT)
		g_warning("Cannot remove '%s': %s, ignoring", path, g_strerror(errno));
}

/* the last line QEMU wrote on stderr, to say why it died */
gchar *
vmsup_vm_service_read_qemu_log_tail(const gchar *runtime_dir)
{
	g_autofree gchar *path = g_build_filename(runtime_dir, VMSUP_QEMU_STDERR_LOG, NULL);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &contents, &len, NULL) || len == 0)
		return NULL;
	if (len > 4096)
		memmove(contents, contents + len - 4096, 4097);
	lines = g_strsplit(contents, "\n", -1);
	for (gint i = (gint)g_strv_length(lines) - 1; i >= 0; i--) {
		g_strstrip(lines[i]);
		if (lines[i][0] != '\0')
			return g_strdup(lines[i]);
	}
	return NULL;
}

static const gchar *
vmsup_vm_service_accel_name(VmsupVmService *self)
{
	if (self->accel_known)
		return vmsup_accel_to_string(self->accel);
	return vmsup_accel_to_string(self->accel_config);
}

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

/* whether @fields (NULL: every member) names @member */
static gboolean
vmsup_vm_service_wants(const gchar *const *fields, const gchar *member)
{
	return fields == NULL || g_strv_contains(fields, member);
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

/*
 * The vm.get result of @rec, or with @fields only those of its members.
 * What is built on its own (started_at, forwards, pending_restart, the
 * definition as a whole) is skipped when not asked for; the rest is built
 * and dropped again, which costs less than asking for each member.
 */
static JsonObject *
vmsup_vm_service_describe(VmsupVmService *self, VmsupVmRecord *rec, const gchar *const *fields)
{
	g_autoptr(JsonObject) obj = vmsup_vm_service_wants_definition(fields)
					? vmsup_vm_def_to_json(rec->def)
					: json_object_new();
	gboolean alive = rec->process != NULL && vmsup_qemu_process_is_running(rec->process);
	g_autoptr(GList) members = NULL;

	json_object_set_string_member(obj, "state", vmsup_vm_state_to_string(rec->state));
	json_object_set_string_member(obj,
				      "accel",
				      alive ? vmsup_accel_to_string(rec->accel)
					    : vmsup_vm_service_accel_name(self));
	if (alive) {
		json_object_set_int_member(obj, "pid", vmsup_qemu_process_get_pid(rec->process));
		if (vmsup_vm_service_wants(fields, "started_at")) {
			g_autofree gchar *started =
			    vmsup_vm_def_format_time(rec->started_at / G_USEC_PER_SEC);
			json_object_set_string_member(obj, "started_at", started);
		}
		json_object_set_string_member(obj,
					      "runtime_dir",
					      vmsup_qemu_process_get_runtime_dir(rec->process));
	}
	if (rec->handles != NULL && rec->handles->forwards != NULL &&
	    vmsup_vm_service_wants(fields, "forwards")) {
		g_autoptr(JsonArray) forwards = json_array_new();
		for (guint i = 0; i < rec->handles->forwards->len; i++) {
			VmsupQemuForward *fwd =
			    &g_array_index(rec->handles->forwards, VmsupQemuForward, i);
			g_autoptr(JsonObject) entry = json_object_new();
			json_object_set_int_member(entry, "guest_port", fwd->guest_port);
			json_object_set_string_member(entry, "host_address", "127.0.0.1");
			json_object_set_int_member(entry, "host_port", fwd->host_port);
			json_array_add_object_element(forwards, g_steal_pointer(&entry));
		}
		json_object_set_array_member(obj, "forwards", g_steal_pointer(&forwards));
	}
	if (rec->running_def != NULL && vmsup_vm_service_wants(fields, "pending_restart")) {
		g_auto(GStrv) pending_fields =
		    vmsup_vm_def_pending_restart(rec->def, rec->running_def);
		g_autoptr(JsonArray) pending = json_array_new();
		for (guint i = 0; pending_fields[i] != NULL; i++)
			json_array_add_string_element(pending, pending_fields[i]);
		if (json_array_get_length(pending) > 0)
			json_object_set_array_member(obj,
						     "pending_restart",
						     g_steal_pointer(&pending));
	}
	if (!alive && rec->exit_status >= 0) {
		if (WIFEXITED(rec->exit_status))
			json_object_set_int_member(obj,
						   "exit_status",
						   WEXITSTATUS(rec->exit_status));
		else if (WIFSIGNALED(rec->exit_status))
			json_object_set_int_member(obj, "exit_signal", WTERMSIG(rec->exit_status));
	}
	if (!alive && rec->exit_reason != NULL)
		json_object_set_string_member(obj, "exit_reason", rec->exit_reason);
	if (!alive && rec->stopped_at > 0 && vmsup_vm_service_wants(fields, "stopped_at")) {
		g_autofree gchar *stopped =
		    vmsup_vm_def_format_time(rec->stopped_at / G_USEC_PER_SEC);
		json_object_set_string_member(obj, "stopped_at", stopped);
	}
	if (rec->last_error != NULL)
		json_object_set_string_member(obj, "last_error", rec->last_error);
	if (vmsup_vm_service_wants(fields, "cgroup"))
		json_object_set_object_member(obj,
					      "cgroup",
					      vmsup_vm_service_cgroup_describe(self, rec));
	if (fields == NULL)
		return g_steal_pointer(&obj);

	/* in place: for a few members of many, cheaper than copying those into a new object */
	members = json_object_get_members(obj);
	for (GList *l = members; l != NULL; l = l->next) {
		if (!g_strv_contains(fields, l->data))
			json_object_remove_member(obj, l->data);
	}
	return g_steal_pointer(&obj);
}

static JsonObject *
vmsup_vm_service_record_to_json(VmsupVmService *self, VmsupVmRecord *rec)
{
	return vmsup_vm_service_describe(self, rec, NULL);
}

void
vmsup_vm_service_emit_vm_changed(VmsupVmService *self, VmsupVmRecord *rec)
{
	g_autoptr(JsonObject) obj = vmsup_vm_service_record_to_json(self, rec);
	g_signal_emit(self, signals[SIGNAL_VM_CHANGED], 0, rec->def->name, obj);
}

void
vmsup_vm_service_emit_accel_decided(VmsupVmService *self)
{
	g_signal_emit(self, signals[SIGNAL_ACCEL_DECIDED], 0);
}

void
vmsup_vm_service_set_state(VmsupVmService *self, VmsupVmRecord *rec, VmsupVmState state)
{
	if (rec->state == state)
		return;
	g_debug("VM '%s': %s -> %s",
		rec->def->name,
		vmsup_vm_state_to_string(rec->state),
		vmsup_vm_state_to_string(state));
	rec->state = state;
	vmsup_vm_service_emit_vm_changed(self, rec);
}

/* params */

gboolean
vmsup_vm_service_get_bool_param(JsonObject *params,
				const gchar *member,
				gboolean fallback,
				gboolean *out_value,
				GError **error)
{
	JsonNode *node = json_object_get_member(params, member);
	if (node == NULL || JSON_NODE_HOLDS_NULL(node)) {
		*out_value = fallback;
		return TRUE;
	}
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' must be true or false, got %s"),
			    member,
			    vmsup_json_node_type_name(node));
		return FALSE;
	}
	*out_value = json_node_get_boolean(node);
	return TRUE;
}

/*
 * The VM name of a request. The RPC table refused every invalid one (its
 * schema's name type), and in-process callers pass names they validated:
 * one that is not valid here is a programming error.
 */
const gchar *
vmsup_vm_service_get_name_param(JsonObject *params, GError **error)
{
	const gchar *name = vmsup_json_object_get_string(params, "name", NULL);

	g_return_val_if_fail(vmsup_name_validate(name, "VM", NULL), NULL);
	return name;
}

gboolean
vmsup_vm_service_check_not_creating(VmsupVmService *self, const gchar *name, GError **error)
{
	VmsupOperation *op = g_hash_table_lookup(self->creating, name);
	gint64 id;

	if (op == NULL)
		return TRUE;
	id = vmsup_operation_get_id(op);
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_BUSY,
		    _("VM '%s' is busy with operation %lld; wait or run 'vmsup ops cancel %lld'"),
		    name,
		    (long long)id,
		    (long long)id);
	return FALSE;
}

static VmsupVmRecord *
vmsup_vm_service_lookup_record(VmsupVmService *self, const gchar *name, GError **error)
{
	VmsupVmRecord *rec = g_hash_table_lookup(self->vms, name);
	if (rec == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    _("VM '%s' does not exist; 'vmsup list' shows the VMs"),
			    name);
		return NULL;
	}
	return rec;
}

void
vmsup_vm_service_return_error(GTask *task, GError *error /* owned */)
{
	vmsup_error_convert(&error);
	g_task_return_error(task, error);
}

/* operations */

void
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

VmsupOperation *
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

void
vmsup_vm_service_set_op_owner(VmsupOperation *op, guint32 uid)
{
	g_object_set_qdata_full(G_OBJECT(op),
				vmsup_vm_service_op_owner_quark(),
				g_memdup2(&uid, sizeof(uid)),
				g_free);
}

gboolean
vmsup_vm_service_get_owner(VmsupVmService *self, const gchar *name, guint32 *out_uid)
{
	VmsupVmRecord *rec;
	VmsupOperation *op;
	const guint32 *owner;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), FALSE);
	g_return_val_if_fail(out_uid != NULL, FALSE);

	if (name == NULL)
		return FALSE;
	rec = g_hash_table_lookup(self->vms, name);
	if (rec != NULL) {
		*out_uid = rec->def->owner_uid;
		return TRUE;
	}
	/* not defined yet: its create's */
	op = g_hash_table_lookup(self->creating, name);
	owner =
	    op != NULL ? g_object_get_qdata(G_OBJECT(op), vmsup_vm_service_op_owner_quark()) : NULL;
	if (owner == NULL)
		return FALSE;
	*out_uid = *owner;
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

/* removes definition, disk and runtime dir; the record leaves the table */
gboolean
vmsup_vm_service_undefine(VmsupVmService *self, VmsupVmRecord *rec, GError **error)
{
	g_autofree gchar *name = g_strdup(rec->def->name);
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, name);
	g_autoptr(GError) error_local = NULL;

	/* the definition first: a VM half-deleted by a crash must not come back */
	if (!vmsup_vm_store_remove(self->store, name, error))
		return FALSE;
	if (rec->def->disk != NULL && !vmsup_disk_remove(rec->def->disk, &error_local))
		g_warning("%s, ignoring", error_local->message);
	if (g_file_test(dir, G_FILE_TEST_IS_DIR))
		vmsup_vm_service_remove_tree(dir);
	g_hash_table_remove(self->vms, name);
	g_signal_emit(self, signals[SIGNAL_VM_REMOVED], 0, name);
	return TRUE;
}

/* verbs on one existing VM, run under its lock */

typedef struct _VmsupVmVerb VmsupVmVerb;
typedef void (*VmsupVmVerbFunc)(VmsupVmService *self, GTask *task /* owned */);

struct _VmsupVmVerb {
	VmsupVmService *self; /* owned */
	gchar *name;          /* owned */
	VmsupVmRecord *rec;   /* owned */
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
	verb->rec->memory_mib_reserved = 0;
	vmsup_vm_lock_unlock(verb->self->lock, verb->name);
}

static void
vmsup_vm_verb_free(VmsupVmVerb *verb)
{
	vmsup_vm_verb_unlock(verb);
	g_clear_object(&verb->self);
	g_free(verb->name);
	g_clear_pointer(&verb->rec, vmsup_vm_service_record_unref);
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
	vmsup_vm_verb_return_object(task, vmsup_vm_service_record_to_json(verb->self, verb->rec));
}

static void
vmsup_vm_service_verb_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupVmVerb *verb = g_task_get_task_data(task);
	VmsupVmService *self = verb->self;
	GError *error = NULL;
	VmsupVmRecord *rec;

	if (!vmsup_vm_lock_lock_finish(res, &error)) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	verb->locked = TRUE;
	/* the VM may have been deleted (or deleted and created again) while we waited */
	rec = vmsup_vm_service_lookup_record(self, verb->name, &error);
	if (rec == NULL) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	g_clear_pointer(&verb->rec, vmsup_vm_service_record_unref);
	verb->rec = vmsup_vm_service_record_ref(rec);
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
	VmsupVmRecord *rec;
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
	rec = vmsup_vm_service_lookup_record(self, name, &error);
	if (rec == NULL ||
	    !vmsup_vm_service_get_bool_param(params, "force", FALSE, &force, &error) ||
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
	verb->rec = vmsup_vm_service_record_ref(rec);
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

JsonObject *
vmsup_vm_service_verb_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* vm.start and vm.stop both end by replying with the VM */
static void
vmsup_vm_service_verb_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	GError *error = NULL;

	if (!vmsup_vm_service_locked_finish(VMSUP_VM_SERVICE(source), res, &error)) {
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
	vmsup_vm_service_start_locked_async(self,
					    verb->rec,
					    NULL,
					    vmsup_vm_service_verb_done_cb,
					    task);
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
	vmsup_vm_service_stop_locked_async(self,
					   verb->rec,
					   verb->force,
					   verb->timeout_ms,
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

/* vm.delete */

static void
vmsup_vm_service_delete_stopped(VmsupVmService *self, GTask *task)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);
	g_autoptr(JsonObject) result = json_object_new();
	GError *error = NULL;

	if (!vmsup_vm_service_undefine(self, verb->rec, &error)) {
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
	VmsupVmService *self = VMSUP_VM_SERVICE(source);
	GError *error = NULL;

	if (!vmsup_vm_service_locked_finish(self, res, &error)) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	vmsup_vm_service_delete_stopped(self, task);
}

static void
vmsup_vm_service_delete_verb(VmsupVmService *self, GTask *task)
{
	VmsupVmVerb *verb = g_task_get_task_data(task);

	if (verb->rec->process != NULL) {
		if (!verb->force) {
			vmsup_vm_verb_return_error(
			    task,
			    g_error_new(VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("VM '%s' is %s; stop it first, or delete it with force "
					  "('vmsup delete --force %s')"),
					verb->name,
					vmsup_vm_state_to_string(verb->rec->state),
					verb->name));
			return;
		}
	}
	/* stops QEMU, or waits for the outcome of its last run to be saved */
	vmsup_vm_service_stop_locked_async(self,
					   verb->rec,
					   TRUE,
					   0,
					   vmsup_vm_service_delete_stop_cb,
					   task);
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
vmsup_vm_service_pending_restart(VmsupVmRecord *rec)
{
	g_auto(GStrv) fields = vmsup_vm_def_pending_restart(rec->def, rec->running_def);
	JsonArray *pending = json_array_new();
	for (guint i = 0; fields[i] != NULL; i++)
		json_array_add_string_element(pending, fields[i]);
	return pending;
}

/* the changed fields in effect now: all but those waiting for a restart */
static JsonArray *
vmsup_vm_service_applied(VmsupVmVerb *verb)
{
	g_auto(GStrv) pending =
	    vmsup_vm_def_pending_restart(verb->rec->def, verb->rec->running_def);
	JsonArray *applied = json_array_new();

	for (guint i = 0; verb->changed != NULL && verb->changed[i] != NULL; i++) {
		const gchar *field = verb->changed[i];
		if (g_strv_contains((const gchar *const *)pending, field))
			continue;
		if (vmsup_vm_service_cgroup_is_limit(field) &&
		    !vmsup_vm_service_cgroup_limits_kept(verb->rec))
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

	json_object_set_object_member(result,
				      "vm",
				      vmsup_vm_service_record_to_json(self, verb->rec));
	json_object_set_array_member(result,
				     "pending_restart",
				     vmsup_vm_service_pending_restart(verb->rec));
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
		vmsup_vm_service_cgroup_apply_async(self, verb->rec, verb->rec->def, NULL, NULL);
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	vmsup_vm_def_free(verb->rec->def);
	verb->rec->def = g_steal_pointer(&verb->new_def);
	fields = g_strjoinv(", ", verb->changed);
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE, verb->name, "VM '%s' changed: %s", verb->name, fields);
	vmsup_vm_service_emit_vm_changed(self, verb->rec);
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

	if (!vmsup_vm_service_cgroup_apply_finish(self, res, &error)) {
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
	verb->new_def = vmsup_vm_def_copy(verb->rec->def);
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
	if (!vmsup_vm_service_check_owner_limits(self, verb->new_def, verb->rec->def, &error)) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	if (verb->new_def->memory_mib > verb->rec->def->memory_mib)
		verb->rec->memory_mib_reserved = verb->new_def->memory_mib;
	vmsup_vm_service_cgroup_apply_async(self,
					    verb->rec,
					    verb->new_def,
					    vmsup_vm_service_set_applied_cb,
					    task);
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
vmsup_vm_service_compare_records(gconstpointer a, gconstpointer b, gpointer user_data)
{
	const VmsupVmRecord *ra = *(const VmsupVmRecord *const *)a;
	const VmsupVmRecord *rb = *(const VmsupVmRecord *const *)b;
	return g_strcmp0(ra->def->name, rb->def->name);
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
		VmsupVmRecord *rec = value;
		if (owner_uid != VMSUP_VM_SERVICE_ANY_OWNER && rec->def->owner_uid != owner_uid)
			continue;
		defined++;
		if (rec->state == VMSUP_VM_STATE_RUNNING || rec->state == VMSUP_VM_STATE_PAUSED)
			running++;
	}
	if (out_defined != NULL)
		*out_defined = defined;
	if (out_running != NULL)
		*out_running = running;
}

JsonObject *
vmsup_vm_service_lookup(VmsupVmService *self, const gchar *name)
{
	VmsupVmRecord *rec;
	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	if (name == NULL)
		return NULL;
	rec = g_hash_table_lookup(self->vms, name);
	return rec != NULL ? vmsup_vm_service_record_to_json(self, rec) : NULL;
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
	g_autofree VmsupVmRecord **recs = NULL;
	g_autofree const gchar **fields = NULL;
	guint n = 0;
	GHashTableIter iter;
	gpointer value;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	g_return_val_if_fail(params != NULL, NULL);

	if (!vmsup_vm_service_get_fields_param(params, &fields, error))
		return NULL;
	recs = g_new(VmsupVmRecord *, g_hash_table_size(self->vms));
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		recs[n++] = value;
	g_qsort_with_data(recs, n, sizeof(VmsupVmRecord *), vmsup_vm_service_compare_records, NULL);
	vms = json_array_sized_new(n);
	for (guint i = 0; i < n; i++)
		json_array_add_object_element(vms,
					      vmsup_vm_service_describe(self, recs[i], fields));
	json_object_set_array_member(result, "vms", g_steal_pointer(&vms));
	return g_steal_pointer(&result);
}

JsonObject *
vmsup_vm_service_get(VmsupVmService *self, JsonObject *params, GError **error)
{
	VmsupVmRecord *rec;
	const gchar *name;

	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), NULL);
	g_return_val_if_fail(params != NULL, NULL);

	name = vmsup_vm_service_get_name_param(params, error);
	if (name == NULL)
		return NULL;
	rec = g_hash_table_lookup(self->vms, name);
	/* a VM being created is busy until it is defined */
	if (rec == NULL && vmsup_vm_service_check_not_creating(self, name, error))
		rec = vmsup_vm_service_lookup_record(self, name, error);
	if (rec == NULL)
		return NULL;
	return vmsup_vm_service_record_to_json(self, rec);
}

/* hooks for sibling services: arguments first, the service last */

static gboolean
vmsup_vm_service_vm_alive_hook(const gchar *name, VmsupVmService *self)
{
	VmsupVmRecord *rec = name != NULL ? g_hash_table_lookup(self->vms, name) : NULL;
	return rec != NULL && rec->process != NULL && !rec->starting &&
	       vmsup_qemu_process_is_running(rec->process);
}

static VmsupVmHandles *
vmsup_vm_service_vm_handles_hook(const gchar *name, VmsupVmService *self)
{
	VmsupVmRecord *rec = name != NULL ? g_hash_table_lookup(self->vms, name) : NULL;
	if (rec == NULL || rec->handles == NULL)
		return NULL;
	return vmsup_vm_handles_ref(rec->handles);
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
	VmsupVmRecord *rec = name != NULL ? g_hash_table_lookup(self->vms, name) : NULL;

	if (rec == NULL || rec->process == NULL || rec->starting)
		return;
	/* only a QEMU that is gone is cleaned up; a live one cleans up when it exits */
	if (vmsup_qemu_process_is_running(rec->process)) {
		g_debug("cleanup of '%s' asked while QEMU runs, ignoring", name);
		return;
	}
	vmsup_vm_service_handle_exit(self, rec, vmsup_qemu_process_get_wait_status(rec->process));
}

static void
vmsup_vm_service_note_stop_hook(const gchar *name, const gchar *reason, VmsupVmService *self)
{
	VmsupVmRecord *rec = name != NULL ? g_hash_table_lookup(self->vms, name) : NULL;

	if (rec != NULL)
		vmsup_vm_service_note_stop(self, rec, reason);
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

VmsupAccel
vmsup_vm_service_get_accel(VmsupVmService *self, const gchar **out_reason)
{
	g_return_val_if_fail(VMSUP_IS_VM_SERVICE(self), VMSUP_ACCEL_TCG);
	if (out_reason != NULL)
		*out_reason = self->accel_known ? self->accel_reason : "not decided yet";
	return self->accel_known ? self->accel : self->accel_config;
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
		vmsup_vm_service_drop_runtime(self, value, FALSE);
	g_hash_table_remove_all(self->vms);
	g_hash_table_remove_all(self->creating);
	g_hash_table_remove_all(self->creating_usage);
	g_hash_table_remove_all(self->ops);
	G_OBJECT_CLASS(vmsup_vm_service_parent_class)->dispose(object);
}

static void
vmsup_vm_service_finalize(GObject *object)
{
	VmsupVmService *self = VMSUP_VM_SERVICE(object);

	vmsup_vm_hooks_clear(&self->hooks);
	g_clear_object(&self->store);
	g_clear_object(&self->lock);
	g_clear_object(&self->cancellable);
	g_clear_object(&self->cgroup);
	g_hash_table_unref(self->vms);
	g_hash_table_unref(self->ops);
	g_hash_table_unref(self->creating);
	g_hash_table_unref(self->creating_usage);
	g_ptr_array_unref(self->accel_waiters);
	g_free(self->state_dir);
	g_free(self->runtime_dir);
	g_free(self->qemu_binary);
	g_free(self->accel_reason);
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
	self->vms = g_hash_table_new_full(g_str_hash,
					  g_str_equal,
					  g_free,
					  (GDestroyNotify)vmsup_vm_service_record_unref);
	self->ops = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_object_unref);
	self->creating = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->creating_usage = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	self->accel_waiters = g_ptr_array_new_with_free_func(g_object_unref);
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
