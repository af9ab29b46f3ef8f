/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService: the lifecycle of VMs. The vm.* and op.* verbs, create
 * operations, per-VM serialization, the handle cache of running VMs, and
 * their re-adoption when the daemon starts again.
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
#include "vmsup-preflight.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-lock.h"
#include "vmsup-vm-service.h"
#include "vmsup-vm-store.h"

/* finished operations stay visible to op.get this long */
#define VMSUP_VM_SERVICE_OP_KEEP_US (10 * 60 * G_USEC_PER_SEC)
#define VMSUP_VM_SERVICE_STOP_TIMEOUT_S 30
#define VMSUP_VM_SERVICE_MAX_STOP_TIMEOUT_S 3600
/* room wanted for an overlay that does not say how big it may grow */
#define VMSUP_VM_SERVICE_MIN_FREE_BYTES (64 * 1024 * 1024)
/* what a running VM was started with, for adoption by a later daemon */
#define VMSUP_VM_SERVICE_RUNTIME_FILE "vmsup-runtime.json"

typedef enum {
	VMSUP_VM_STATE_DEFINED,
	VMSUP_VM_STATE_STARTING,
	VMSUP_VM_STATE_RUNNING,
	VMSUP_VM_STATE_PAUSED,
	VMSUP_VM_STATE_STOPPING,
	VMSUP_VM_STATE_STOPPED,
	VMSUP_VM_STATE_CRASHED,
} VmsupVmState;

/* one defined VM; refcounted (g_rc_box) because callbacks outlive table entries */
typedef struct {
	VmsupVmService *service; /* unowned: records are dropped in the service's dispose */
	VmsupVmDef *def;         /* owned */
	VmsupVmState state;
	/* the QEMU of the current run, NULL when there is none */
	VmsupQemuProcess *process; /* owned */
	VmsupQmpClient *qmp;       /* owned */
	VmsupVmHandles *handles;   /* owned */
	gulong exited_id;
	gulong event_id;
	gboolean starting; /* spawn or adoption under way: its callback cleans up */
	gboolean user_stop;
	gboolean shutdown_seen;
	gchar *shutdown_reason;  /* owned */
	VmsupVmDef *running_def; /* owned: the definition QEMU runs with */
	VmsupAccel accel;
	gint64 started_at; /* real time, us */
	/* the last run */
	gint exit_status;
	gchar *exit_reason;      /* owned */
	gchar *last_error;       /* owned */
	GPtrArray *exit_waiters; /* owned, of GTask: returned once QEMU exited and was cleaned up */
} VmsupVmRecord;

struct _VmsupVmService {
	GObject parent_instance;
	gchar *state_dir;   /* owned */
	gchar *runtime_dir; /* owned */
	gchar *qemu_binary; /* owned, NULL: $VMSUP_QEMU or PATH */
	VmsupAccel accel_config;
	VmsupAccel accel;
	gchar *accel_reason; /* owned */
	gboolean accel_known;
	gboolean accel_probing;
	GPtrArray *accel_waiters; /* owned, of GTask */
	gboolean loaded;
	guint stop_timeout_s; /* what stop_all gives each guest to power off */
	VmsupVmStore *store;  /* owned */
	VmsupVmLock *lock;    /* owned */
	GHashTable *vms;      /* owned: name -> VmsupVmRecord (ref) */
	GHashTable *ops;      /* owned: &id -> VmsupOperation (ref) */
	GHashTable *creating; /* owned keys: name -> VmsupOperation (unowned, in ops) */
	gint64 next_op_id;
	VmsupVmHooks hooks;        /* owned closures */
	GCancellable *cancellable; /* owned */
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

enum { SIGNAL_VM_CHANGED, SIGNAL_VM_REMOVED, SIGNAL_OPERATION_CHANGED, N_SIGNALS };
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
	g_free(rec->exit_reason);
	g_free(rec->last_error);
	g_ptr_array_unref(rec->exit_waiters);
}

static VmsupVmRecord *
vmsup_vm_record_ref(VmsupVmRecord *rec)
{
	return g_rc_box_acquire(rec);
}

static void
vmsup_vm_record_unref(VmsupVmRecord *rec)
{
	g_rc_box_release_full(rec, vmsup_vm_record_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupVmRecord, vmsup_vm_record_unref)

static void
vmsup_vm_record_closure_notify(gpointer data, GClosure *closure)
{
	vmsup_vm_record_unref(data);
}

static VmsupVmRecord *
vmsup_vm_record_new(VmsupVmService *self, VmsupVmDef *def /* owned */)
{
	VmsupVmRecord *rec = g_rc_box_new0(VmsupVmRecord);
	rec->service = self;
	rec->def = def;
	rec->state = VMSUP_VM_STATE_DEFINED;
	rec->exit_status = -1;
	rec->exit_waiters = g_ptr_array_new_with_free_func(g_object_unref);
	return rec;
}

static gchar *
vmsup_vm_service_vm_runtime_dir(VmsupVmService *self, const gchar *name)
{
	return g_build_filename(self->runtime_dir, "vms", name, NULL);
}

/* plain files and directories only; symlinks are removed, never followed */
static void
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
static gchar *
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

static JsonObject *
vmsup_vm_service_record_to_json(VmsupVmService *self, VmsupVmRecord *rec)
{
	JsonObject *obj = vmsup_vm_def_to_json(rec->def);
	gboolean alive = rec->process != NULL && vmsup_qemu_process_is_running(rec->process);

	json_object_set_string_member(obj, "state", vmsup_vm_state_to_string(rec->state));
	json_object_set_string_member(obj,
				      "accel",
				      alive ? vmsup_accel_to_string(rec->accel)
					    : vmsup_vm_service_accel_name(self));
	if (alive) {
		g_autofree gchar *started =
		    vmsup_vm_def_format_time(rec->started_at / G_USEC_PER_SEC);
		json_object_set_int_member(obj, "pid", vmsup_qemu_process_get_pid(rec->process));
		json_object_set_string_member(obj, "started_at", started);
		json_object_set_string_member(obj,
					      "runtime_dir",
					      vmsup_qemu_process_get_runtime_dir(rec->process));
	}
	if (rec->handles != NULL && rec->handles->forwards != NULL) {
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
	if (rec->running_def != NULL) {
		g_auto(GStrv) fields = vmsup_vm_def_pending_restart(rec->def, rec->running_def);
		g_autoptr(JsonArray) pending = json_array_new();
		for (guint i = 0; fields[i] != NULL; i++)
			json_array_add_string_element(pending, fields[i]);
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
	if (rec->last_error != NULL)
		json_object_set_string_member(obj, "last_error", rec->last_error);
	return obj;
}

static void
vmsup_vm_service_emit_vm_changed(VmsupVmService *self, VmsupVmRecord *rec)
{
	g_autoptr(JsonObject) obj = vmsup_vm_service_record_to_json(self, rec);
	g_signal_emit(self, signals[SIGNAL_VM_CHANGED], 0, rec->def->name, obj);
}

static void
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

static gboolean
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

/* the VM name of a request, checked before anything is looked up */
static const gchar *
vmsup_vm_service_get_name_param(JsonObject *params, GError **error)
{
	JsonNode *node = json_object_get_member(params, "name");
	const gchar *name;

	if (node != NULL && !JSON_NODE_HOLDS_NULL(node) &&
	    (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'name' must be a string, got %s"),
			    vmsup_json_node_type_name(node));
		return NULL;
	}
	name = vmsup_json_object_get_string(params, "name", NULL);
	if (!vmsup_name_validate(name, "VM", error))
		return NULL;
	return name;
}

static gboolean
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

/* accelerator */

static void
vmsup_vm_service_accel_known(VmsupVmService *self, VmsupAccel accel, const gchar *reason)
{
	g_autoptr(GPtrArray) waiters = g_steal_pointer(&self->accel_waiters);

	self->accel = accel;
	g_free(self->accel_reason);
	self->accel_reason = g_strdup(reason);
	self->accel_known = TRUE;
	self->accel_probing = FALSE;
	self->accel_waiters = g_ptr_array_new_with_free_func(g_object_unref);
	g_message("VMs run with %s: %s", vmsup_accel_to_string(accel), reason);
	for (guint i = 0; i < waiters->len; i++)
		g_task_return_boolean(g_ptr_array_index(waiters, i), TRUE);
}

static void
vmsup_vm_service_accel_probe_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupVmService) self = user_data;
	g_autofree gchar *reason = NULL;
	VmsupAccel accel = vmsup_accel_probe_finish(res, &reason);

	vmsup_vm_service_accel_known(self, accel, reason != NULL ? reason : "probed");
}

/* decides the accelerator once: configured, or probed when "auto" */
static void
vmsup_vm_service_ensure_accel_async(VmsupVmService *self,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autoptr(VmsupQemuConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *binary = NULL;

	g_task_set_source_tag(task, vmsup_vm_service_ensure_accel_async);
	if (self->accel_known) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (self->accel_config != VMSUP_ACCEL_AUTO) {
		g_ptr_array_add(self->accel_waiters, g_steal_pointer(&task));
		vmsup_vm_service_accel_known(self, self->accel_config, "configured");
		return;
	}
	g_ptr_array_add(self->accel_waiters, g_steal_pointer(&task));
	if (self->accel_probing)
		return;
	self->accel_probing = TRUE;
	config = vmsup_qemu_config_new("probe");
	config->qemu_binary = g_strdup(self->qemu_binary);
	binary = vmsup_qemu_config_find_binary(config, &error);
	if (binary == NULL) {
		g_autofree gchar *reason = g_strdup_printf("cannot probe KVM: %s", error->message);
		vmsup_vm_service_accel_known(self, VMSUP_ACCEL_TCG, reason);
		return;
	}
	vmsup_accel_probe_async(binary,
				self->cancellable,
				vmsup_vm_service_accel_probe_cb,
				g_object_ref(self));
}

static gboolean
vmsup_vm_service_ensure_accel_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* the runtime of one run: handles, exit, cleanup */

static void
vmsup_vm_service_drop_runtime(VmsupVmService *self, VmsupVmRecord *rec, gboolean remove_dir)
{
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);

	if (rec->process != NULL)
		g_clear_signal_handler(&rec->exited_id, rec->process);
	if (rec->qmp != NULL)
		g_clear_signal_handler(&rec->event_id, rec->qmp);
	g_clear_object(&rec->qmp);
	if (rec->handles != NULL && rec->handles->qga != NULL && remove_dir)
		vmsup_qga_client_close(rec->handles->qga);
	g_clear_pointer(&rec->handles, vmsup_vm_handles_unref);
	g_clear_object(&rec->process);
	g_clear_pointer(&rec->running_def, vmsup_vm_def_free);
	g_clear_pointer(&rec->shutdown_reason, g_free);
	rec->starting = FALSE;
	rec->user_stop = FALSE;
	rec->shutdown_seen = FALSE;
	if (remove_dir)
		vmsup_vm_service_remove_tree(dir);
}

static void
vmsup_vm_service_return_exit_waiters(VmsupVmRecord *rec)
{
	g_autoptr(GPtrArray) waiters = g_steal_pointer(&rec->exit_waiters);
	rec->exit_waiters = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; i < waiters->len; i++)
		g_task_return_boolean(g_ptr_array_index(waiters, i), TRUE);
}

/* QEMU of @rec is gone: stopped or crashed, runtime cleaned up exactly once */
static void
vmsup_vm_service_handle_exit(VmsupVmService *self, VmsupVmRecord *rec, gint wait_status)
{
	g_autofree gchar *how = vmsup_qemu_describe_wait_status(wait_status);
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);
	g_autofree gchar *tail = NULL;
	const gchar *name = rec->def->name;
	gboolean clean;

	if (rec->process == NULL)
		return;
	clean = rec->user_stop ||
		(rec->shutdown_seen && g_strcmp0(rec->shutdown_reason, "guest-panic") != 0);
	rec->exit_status = wait_status;
	g_free(rec->exit_reason);
	if (rec->user_stop) {
		rec->exit_reason = g_strdup_printf("stopped on request; QEMU %s", how);
	} else if (clean) {
		rec->exit_reason = g_strdup_printf(
		    "shut down (%s); QEMU %s",
		    rec->shutdown_reason != NULL ? rec->shutdown_reason : "shutdown",
		    how);
	} else {
		tail = vmsup_vm_service_read_qemu_log_tail(dir);
		rec->exit_reason = tail != NULL ? g_strdup_printf("QEMU %s: %s", how, tail)
						: g_strdup_printf("QEMU %s", how);
	}
	vmsup_vm_service_drop_runtime(self, rec, TRUE);
	rec->state = clean ? VMSUP_VM_STATE_STOPPED : VMSUP_VM_STATE_CRASHED;
	if (clean)
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' stopped (%s)",
			     name,
			     rec->exit_reason);
	else
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' crashed: %s",
			     name,
			     rec->exit_reason);
	vmsup_vm_service_emit_vm_changed(self, rec);
	vmsup_vm_service_return_exit_waiters(rec);
}

static void
vmsup_vm_service_exited_cb(VmsupQemuProcess *process, gint wait_status, gpointer user_data)
{
	VmsupVmRecord *rec = user_data;

	if (rec->process != process)
		return;
	rec->exit_status = wait_status;
	/* a spawn or adoption that fails cleans up in its own callback */
	if (rec->starting)
		return;
	vmsup_vm_service_handle_exit(rec->service, rec, wait_status);
}

static void
vmsup_vm_service_qmp_event_cb(VmsupQmpClient *qmp,
			      const gchar *event,
			      JsonObject *data,
			      gint64 timestamp_us,
			      gpointer user_data)
{
	VmsupVmRecord *rec = user_data;
	VmsupVmService *self = rec->service;

	if (g_strcmp0(event, "STOP") == 0) {
		if (rec->state == VMSUP_VM_STATE_RUNNING)
			vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_PAUSED);
	} else if (g_strcmp0(event, "RESUME") == 0) {
		if (rec->state == VMSUP_VM_STATE_PAUSED || rec->state == VMSUP_VM_STATE_STARTING)
			vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_RUNNING);
	} else if (g_strcmp0(event, "SHUTDOWN") == 0) {
		rec->shutdown_seen = TRUE;
		g_free(rec->shutdown_reason);
		rec->shutdown_reason =
		    g_strdup(vmsup_json_object_get_string(data, "reason", "shutdown"));
		g_debug("VM '%s': SHUTDOWN (%s, guest=%d)",
			rec->def->name,
			rec->shutdown_reason,
			vmsup_json_object_get_bool(data, "guest", FALSE));
		vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_STOPPING);
	} else {
		g_debug("VM '%s': QMP event %s", rec->def->name, event);
	}
}

static void
vmsup_vm_service_watch_exit(VmsupVmRecord *rec)
{
	rec->exited_id = g_signal_connect_data(rec->process,
					       "exited",
					       G_CALLBACK(vmsup_vm_service_exited_cb),
					       vmsup_vm_record_ref(rec),
					       vmsup_vm_record_closure_notify,
					       0);
}

static void
vmsup_vm_service_write_runtime_file(VmsupVmService *self, VmsupVmRecord *rec)
{
	g_autoptr(JsonObject) obj = vmsup_vm_def_to_json(rec->running_def);
	g_autofree gchar *json = NULL;
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);
	g_autofree gchar *path = g_build_filename(dir, VMSUP_VM_SERVICE_RUNTIME_FILE, NULL);
	g_autoptr(GError) error = NULL;

	json_object_set_string_member(obj, "accel", vmsup_accel_to_string(rec->accel));
	json = vmsup_json_object_to_string(obj, FALSE);
	if (!g_file_set_contents_full(path, json, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error))
		g_warning("Cannot write '%s': %s, ignoring", path, error->message);
}

/* what an adopted QEMU was started with; the current definition when unknown */
static void
vmsup_vm_service_read_runtime_file(VmsupVmService *self, VmsupVmRecord *rec)
{
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);
	g_autofree gchar *path = g_build_filename(dir, VMSUP_VM_SERVICE_RUNTIME_FILE, NULL);
	g_autofree gchar *contents = NULL;
	g_autoptr(JsonObject) obj = NULL;
	VmsupVmDef *def = NULL;
	VmsupAccel accel = self->accel_known ? self->accel : VMSUP_ACCEL_TCG;

	if (g_file_get_contents(path, &contents, NULL, NULL))
		obj = vmsup_json_parse_object(contents, -1, NULL);
	if (obj != NULL) {
		def = vmsup_vm_def_new_from_json(obj, NULL);
		vmsup_accel_from_string(vmsup_json_object_get_string(obj, "accel", ""), &accel);
	}
	rec->accel = accel == VMSUP_ACCEL_AUTO ? VMSUP_ACCEL_TCG : accel;
	g_clear_pointer(&rec->running_def, vmsup_vm_def_free);
	rec->running_def = def != NULL ? def : vmsup_vm_def_copy(rec->def);
}

/* a spawned or adopted QEMU is up: cache its handles, follow its events */
static void
vmsup_vm_service_setup_running(VmsupVmService *self, VmsupVmRecord *rec)
{
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);
	g_autofree gchar *qga_path = g_build_filename(dir, VMSUP_QEMU_QGA_SOCKET, NULL);
	VmsupQmpClient *qmp = vmsup_qemu_process_get_qmp(rec->process);
	GArray *forwards = vmsup_qemu_process_get_forwards(rec->process);
	VmsupVmHandles *handles;
	gint64 started_mono = vmsup_qemu_process_get_started_at(rec->process);

	if (qmp != NULL && vmsup_qmp_client_is_ready(qmp)) {
		rec->qmp = g_object_ref(qmp);
		rec->event_id = g_signal_connect_data(qmp,
						      "event",
						      G_CALLBACK(vmsup_vm_service_qmp_event_cb),
						      vmsup_vm_record_ref(rec),
						      vmsup_vm_record_closure_notify,
						      0);
	}
	handles = vmsup_vm_handles_new(rec->def->name, dir, rec->process);
	handles->qga = vmsup_qga_client_new(rec->def->name, qga_path);
	handles->accel = rec->accel;
	if (forwards != NULL && forwards->len > 0) {
		handles->forwards =
		    g_array_sized_new(FALSE, FALSE, sizeof(VmsupQemuForward), forwards->len);
		g_array_append_vals(handles->forwards, forwards->data, forwards->len);
	}
	g_clear_pointer(&rec->handles, vmsup_vm_handles_unref);
	rec->handles = handles;
	rec->started_at = g_get_real_time() - (g_get_monotonic_time() - started_mono);
	rec->exit_status = -1;
	g_clear_pointer(&rec->exit_reason, g_free);
	g_clear_pointer(&rec->last_error, g_free);
}

static void
vmsup_vm_service_wait_exit_async(VmsupVmService *self,
				 VmsupVmRecord *rec,
				 GAsyncReadyCallback callback,
				 gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_wait_exit_async);
	if (rec->process == NULL) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	g_ptr_array_add(rec->exit_waiters, g_steal_pointer(&task));
}

/* start, with the VM's lock held */

typedef struct {
	VmsupVmRecord *rec; /* owned */
	VmsupVmState previous;
} VmsupVmStart;

static void
vmsup_vm_start_free(VmsupVmStart *data)
{
	g_clear_pointer(&data->rec, vmsup_vm_record_unref);
	g_free(data);
}

static void
vmsup_vm_service_start_locked_async(VmsupVmService *self,
				    VmsupVmRecord *rec,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data);

/* finishes both start_locked and stop_locked */
static gboolean
vmsup_vm_service_locked_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
vmsup_vm_service_start_failed(VmsupVmService *self, GTask *task /* owned */, GError *error)
{
	VmsupVmStart *data = g_task_get_task_data(task);
	VmsupVmRecord *rec = data->rec;
	const gchar *name = rec->def->name;

	vmsup_error_convert(&error);
	if (error->code != VMSUP_ERROR_CANCELLED)
		g_prefix_error(&error, _("Cannot start VM '%s': "), name);
	vmsup_vm_service_drop_runtime(self, rec, TRUE);
	g_free(rec->last_error);
	rec->last_error = g_strdup(error->message);
	rec->state = data->previous;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE, name, "VM '%s' did not start: %s", name, error->message);
	vmsup_vm_service_emit_vm_changed(self, rec);
	g_task_return_error(task, error);
	g_object_unref(task);
}

static void
vmsup_vm_service_start_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmStart *data = g_task_get_task_data(task);
	VmsupVmRecord *rec = data->rec;
	g_autoptr(JsonNode) status = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *name = rec->def->name;
	const gchar *state = NULL;

	status = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (rec->process == NULL) {
		/* QEMU died while we asked */
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("VM '%s' exited right after it started: %s"),
					name,
					rec->exit_reason != NULL ? rec->exit_reason : "?");
		return;
	}
	if (status != NULL && JSON_NODE_HOLDS_OBJECT(status))
		state = vmsup_json_object_get_string(json_node_get_object(status), "status", NULL);
	if (status == NULL)
		g_debug("query-status of '%s' failed: %s", name, error->message);
	if (rec->state == VMSUP_VM_STATE_STARTING)
		rec->state = g_strcmp0(state, "paused") == 0 ? VMSUP_VM_STATE_PAUSED
							     : VMSUP_VM_STATE_RUNNING;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     name,
		     "VM '%s' started (%s, pid %d)",
		     name,
		     vmsup_accel_to_string(rec->accel),
		     (gint)vmsup_qemu_process_get_pid(rec->process));
	vmsup_vm_service_emit_vm_changed(self, rec);
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_service_start_spawned_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmStart *data = g_task_get_task_data(task);
	VmsupVmRecord *rec = data->rec;
	VmsupQemuProcess *process = VMSUP_QEMU_PROCESS(source);
	g_autoptr(GError) error = NULL;

	if (!vmsup_qemu_process_spawn_finish(process, res, &error)) {
		vmsup_vm_service_start_failed(self,
					      g_steal_pointer(&task),
					      g_steal_pointer(&error));
		return;
	}
	rec->starting = FALSE;
	if (!vmsup_qemu_process_is_running(process)) {
		g_autofree gchar *how = vmsup_qemu_describe_wait_status(rec->exit_status);
		vmsup_vm_service_start_failed(self,
					      g_steal_pointer(&task),
					      g_error_new(VMSUP_ERROR,
							  VMSUP_ERROR_FAILED_PRECONDITION,
							  "QEMU %s during start-up",
							  how));
		return;
	}
	vmsup_vm_service_setup_running(self, rec);
	vmsup_vm_service_write_runtime_file(self, rec);
	if (rec->qmp == NULL) {
		rec->state = VMSUP_VM_STATE_RUNNING;
		vmsup_vm_service_emit_vm_changed(self, rec);
		g_task_return_boolean(task, TRUE);
		return;
	}
	vmsup_qmp_client_execute_async(rec->qmp,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_vm_service_start_status_cb,
				       g_steal_pointer(&task));
}

static void
vmsup_vm_service_start_spawn(VmsupVmService *self, GTask *task /* owned */)
{
	VmsupVmStart *data = g_task_get_task_data(task);
	VmsupVmRecord *rec = data->rec;
	VmsupVmDef *def = rec->def;
	g_autoptr(VmsupQemuConfig) config = vmsup_qemu_config_new(def->name);
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, def->name);
	g_autofree gchar *binary = NULL;
	g_autoptr(GError) error = NULL;

	config->qemu_binary = g_strdup(self->qemu_binary);
	binary = vmsup_qemu_config_find_binary(config, &error);
	if (binary == NULL || !vmsup_preflight_check_files(def, &error)) {
		vmsup_vm_service_return_error(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	if (def->disk != NULL && !g_file_test(def->disk, G_FILE_TEST_IS_REGULAR)) {
		g_task_return_new_error(
		    task,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("The disk '%s' of VM '%s' is missing; restore it, or delete "
		      "the VM and create it again"),
		    def->disk,
		    def->name);
		g_object_unref(task);
		return;
	}
	if (g_mkdir_with_parents(dir, 0700) != 0) {
		gint saved_errno = errno;
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("Cannot create the runtime directory '%s': %s; check "
					  "--runtime-dir and its permissions"),
					dir,
					g_strerror(saved_errno));
		g_object_unref(task);
		return;
	}

	config->accel = self->accel;
	config->cpus = def->cpus;
	config->memory_mib = def->memory_mib;
	config->kernel = g_strdup(def->kernel);
	config->initrd = g_strdup(def->initrd);
	config->cmdline = g_strdup(def->cmdline);
	config->disk = g_strdup(def->disk);
	config->share_dir = g_strdup(def->share_dir);
	for (guint i = 0; def->forward != NULL && i < def->forward->len; i++)
		vmsup_qemu_config_add_forward(config, 0, g_array_index(def->forward, guint16, i));
	config->paused = FALSE;

	data->previous = rec->state;
	rec->process = vmsup_qemu_process_new(def->name, dir);
	rec->starting = TRUE;
	rec->user_stop = FALSE;
	rec->shutdown_seen = FALSE;
	rec->accel = self->accel;
	rec->running_def = vmsup_vm_def_copy(def);
	rec->exit_status = -1;
	vmsup_vm_service_watch_exit(rec);
	vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_STARTING);
	vmsup_qemu_process_spawn_async(rec->process,
				       config,
				       g_task_get_cancellable(task),
				       vmsup_vm_service_start_spawned_cb,
				       task);
}

static void
vmsup_vm_service_start_accel_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = VMSUP_VM_SERVICE(source);
	g_autoptr(GError) error = NULL;

	if (!vmsup_vm_service_ensure_accel_finish(self, res, &error) ||
	    g_cancellable_set_error_if_cancelled(g_task_get_cancellable(task), &error)) {
		vmsup_vm_service_return_error(task, g_steal_pointer(&error));
		return;
	}
	vmsup_vm_service_start_spawn(self, g_steal_pointer(&task));
}

static void
vmsup_vm_service_start_cont_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmStart *data = g_task_get_task_data(task);
	g_autoptr(JsonNode) result = NULL;
	g_autoptr(GError) error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		g_prefix_error(&error, _("Cannot resume VM '%s': "), data->rec->def->name);
		vmsup_vm_service_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (data->rec->state == VMSUP_VM_STATE_PAUSED)
		vmsup_vm_service_set_state(self, data->rec, VMSUP_VM_STATE_RUNNING);
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_service_start_relay_cb(GObject *source, GAsyncResult *res, gpointer user_data);

static void
vmsup_vm_service_start_after_exit_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = VMSUP_VM_SERVICE(source);
	VmsupVmStart *data = g_task_get_task_data(task);

	g_task_propagate_boolean(G_TASK(res), NULL);
	vmsup_vm_service_start_locked_async(self,
					    data->rec,
					    g_task_get_cancellable(task),
					    vmsup_vm_service_start_relay_cb,
					    g_steal_pointer(&task));
}

static void
vmsup_vm_service_start_relay_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;

	if (!vmsup_vm_service_locked_finish(VMSUP_VM_SERVICE(source), res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_vm_service_start_locked_async(VmsupVmService *self,
				    VmsupVmRecord *rec,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	VmsupVmStart *data = g_new0(VmsupVmStart, 1);

	g_task_set_source_tag(task, vmsup_vm_service_start_locked_async);
	data->rec = vmsup_vm_record_ref(rec);
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_vm_start_free);

	if (rec->process != NULL) {
		/* the guest is shutting down on its own: start again once it is gone */
		if (rec->state == VMSUP_VM_STATE_STOPPING) {
			vmsup_vm_service_wait_exit_async(self,
							 rec,
							 vmsup_vm_service_start_after_exit_cb,
							 g_steal_pointer(&task));
			return;
		}
		if (rec->state == VMSUP_VM_STATE_PAUSED && rec->qmp != NULL) {
			vmsup_qmp_client_execute_async(rec->qmp,
						       "cont",
						       NULL,
						       cancellable,
						       vmsup_vm_service_start_cont_cb,
						       g_steal_pointer(&task));
			return;
		}
		g_task_return_boolean(task, TRUE);
		return;
	}
	vmsup_vm_service_ensure_accel_async(self,
					    cancellable,
					    vmsup_vm_service_start_accel_cb,
					    g_steal_pointer(&task));
}

/* stop, with the VM's lock held */

static void
vmsup_vm_service_stop_process_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	if (!vmsup_qemu_process_stop_finish(VMSUP_QEMU_PROCESS(source), res, &error))
		g_debug("stopping QEMU failed: %s", error->message);
}

static void
vmsup_vm_service_stop_exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	g_task_propagate_boolean(G_TASK(res), NULL);
	g_task_return_boolean(task, TRUE);
}

/* completes once QEMU is gone and the runtime cleaned up */
static void
vmsup_vm_service_stop_locked_async(VmsupVmService *self,
				   VmsupVmRecord *rec,
				   gboolean force,
				   guint timeout_ms,
				   GAsyncReadyCallback callback,
				   gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	const gchar *name = rec->def->name;

	g_task_set_source_tag(task, vmsup_vm_service_stop_locked_async);
	if (rec->process == NULL) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	vmsup_log_vm(G_LOG_LEVEL_INFO, name, "stopping VM '%s'%s", name, force ? " (forced)" : "");
	rec->user_stop = TRUE;
	vmsup_vm_service_set_state(self, rec, VMSUP_VM_STATE_STOPPING);
	vmsup_vm_service_wait_exit_async(self,
					 rec,
					 vmsup_vm_service_stop_exited_cb,
					 g_steal_pointer(&task));
	vmsup_qemu_process_stop_async(rec->process,
				      force,
				      timeout_ms,
				      NULL,
				      vmsup_vm_service_stop_process_cb,
				      NULL);
}

/* removes definition, disk and runtime dir; the record leaves the table */
static gboolean
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
	vmsup_vm_lock_unlock(verb->self->lock, verb->name);
}

static void
vmsup_vm_verb_free(VmsupVmVerb *verb)
{
	vmsup_vm_verb_unlock(verb);
	g_clear_object(&verb->self);
	g_free(verb->name);
	g_clear_pointer(&verb->rec, vmsup_vm_record_unref);
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
	g_clear_pointer(&verb->rec, vmsup_vm_record_unref);
	verb->rec = vmsup_vm_record_ref(rec);
	verb->func(self, task);
}

/* checks the name (first, before anything is touched), then queues on the VM's lock */
static void
vmsup_vm_service_verb_begin(VmsupVmService *self,
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
	verb->rec = vmsup_vm_record_ref(rec);
	verb->params = json_object_ref(params);
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
			     JsonObject *params,
			     GCancellable *cancellable,
			     GAsyncReadyCallback callback,
			     gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	vmsup_vm_service_verb_begin(self,
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
			    JsonObject *params,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	vmsup_vm_service_verb_begin(self,
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
		vmsup_vm_service_stop_locked_async(self,
						   verb->rec,
						   TRUE,
						   0,
						   vmsup_vm_service_delete_stop_cb,
						   task);
		return;
	}
	vmsup_vm_service_delete_stopped(self, task);
}

void
vmsup_vm_service_delete_async(VmsupVmService *self,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	vmsup_vm_service_verb_begin(self,
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
	if (!vmsup_vm_def_apply(verb->new_def, fields, ignore, &verb->changed, &error)) {
		vmsup_vm_verb_return_error(task, error);
		return;
	}
	if (verb->changed[0] == NULL) {
		vmsup_vm_service_set_answer(self, task);
		return;
	}
	vmsup_vm_store_save_async(self->store,
				  verb->new_def,
				  NULL,
				  vmsup_vm_service_set_saved_cb,
				  task);
}

void
vmsup_vm_service_set_async(VmsupVmService *self,
			   JsonObject *params,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	vmsup_vm_service_verb_begin(self,
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

void
vmsup_vm_service_list_async(VmsupVmService *self,
			    JsonObject *params,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(JsonObject) result = json_object_new();
	g_autoptr(JsonArray) vms = json_array_new();
	g_auto(GStrv) names = NULL;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_list_async);
	names = vmsup_vm_service_list_names(self);
	for (guint i = 0; names[i] != NULL; i++)
		json_array_add_object_element(vms, vmsup_vm_service_lookup(self, names[i]));
	json_object_set_array_member(result, "vms", g_steal_pointer(&vms));
	g_task_return_pointer(task, g_steal_pointer(&result), (GDestroyNotify)json_object_unref);
}

JsonObject *
vmsup_vm_service_list_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

void
vmsup_vm_service_get_async(VmsupVmService *self,
			   JsonObject *params,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GError) error = NULL;
	VmsupVmRecord *rec = NULL;
	const gchar *name;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	g_return_if_fail(params != NULL);
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_get_async);
	name = vmsup_vm_service_get_name_param(params, &error);
	if (name != NULL) {
		rec = g_hash_table_lookup(self->vms, name);
		/* a VM being created is busy until it is defined */
		if (rec == NULL && vmsup_vm_service_check_not_creating(self, name, &error))
			rec = vmsup_vm_service_lookup_record(self, name, &error);
	}
	if (rec == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_pointer(task,
			      vmsup_vm_service_record_to_json(self, rec),
			      (GDestroyNotify)json_object_unref);
}

JsonObject *
vmsup_vm_service_get_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_service_verb_finish(self, res, error);
}

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
	g_clear_pointer(&data->rec, vmsup_vm_record_unref);
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
	data->rec = vmsup_vm_record_new(self, vmsup_vm_def_copy(data->def));
	g_hash_table_insert(self->vms, g_strdup(data->name), vmsup_vm_record_ref(data->rec));
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
	if (!vmsup_vm_service_get_bool_param(params, "start", FALSE, &start, &error) ||
	    !vmsup_vm_service_get_bool_param(params, "wait", FALSE, &wait, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	def = vmsup_vm_def_new_from_params(params, ignore, &error);
	if (def == NULL || !vmsup_vm_service_resolve_guest(def, &error) ||
	    !vmsup_vm_def_validate(def, &error) || !vmsup_preflight_check_files(def, &error)) {
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
	data->def = g_steal_pointer(&def);
	data->qemu_binary = g_steal_pointer(&binary);
	data->qemu_img = g_steal_pointer(&qemu_img);
	data->start = start;
	g_hash_table_insert(self->creating, g_strdup(name), data->op);
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

/* load: definitions, re-adoption, autostart */

typedef struct {
	guint pending;
	gboolean autostarted;
} VmsupVmLoad;

static void
vmsup_vm_service_load_step(GTask *task /* owned */);

static void
vmsup_vm_service_load_one_done(GTask *task /* owned */)
{
	VmsupVmLoad *data = g_task_get_task_data(task);
	g_assert(data->pending > 0);
	if (--data->pending == 0)
		vmsup_vm_service_load_step(task);
	else
		g_object_unref(task);
}

typedef struct {
	GTask *task;        /* owned: the load */
	VmsupVmRecord *rec; /* owned */
} VmsupVmLoadOne;

static void
vmsup_vm_load_one_free(VmsupVmLoadOne *one)
{
	g_clear_pointer(&one->rec, vmsup_vm_record_unref);
	g_free(one);
}

static void
vmsup_vm_service_load_one_finish(VmsupVmLoadOne *one)
{
	VmsupVmService *self = g_task_get_source_object(one->task);
	GTask *task = g_steal_pointer(&one->task);

	vmsup_vm_lock_unlock(self->lock, one->rec->def->name);
	vmsup_vm_load_one_free(one);
	vmsup_vm_service_load_one_done(task);
}

static void
vmsup_vm_service_adopt_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmService *self = g_task_get_source_object(one->task);
	VmsupVmRecord *rec = one->rec;
	g_autoptr(JsonNode) status = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *state = NULL;

	status = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (rec->process != NULL && rec->state == VMSUP_VM_STATE_STARTING) {
		if (status != NULL && JSON_NODE_HOLDS_OBJECT(status))
			state = vmsup_json_object_get_string(json_node_get_object(status),
							     "status",
							     NULL);
		rec->state = g_strcmp0(state, "paused") == 0 ? VMSUP_VM_STATE_PAUSED
							     : VMSUP_VM_STATE_RUNNING;
		vmsup_vm_service_emit_vm_changed(self, rec);
	}
	vmsup_vm_service_load_one_finish(one);
}

static void
vmsup_vm_service_adopted_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmService *self = g_task_get_source_object(one->task);
	VmsupVmRecord *rec = one->rec;
	VmsupQemuProcess *process = VMSUP_QEMU_PROCESS(source);
	g_autoptr(GError) error = NULL;
	const gchar *name = rec->def->name;
	gboolean ok = vmsup_qemu_process_adopt_finish(process, res, &error);

	rec->starting = FALSE;
	if (!vmsup_qemu_process_is_running(process)) {
		vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
			     name,
			     "VM '%s' is not running any more (%s)",
			     name,
			     error != NULL ? error->message : "exited");
		vmsup_vm_service_drop_runtime(self, rec, TRUE);
		rec->state = VMSUP_VM_STATE_STOPPED;
		vmsup_vm_service_emit_vm_changed(self, rec);
		vmsup_vm_service_load_one_finish(one);
		return;
	}
	vmsup_vm_service_read_runtime_file(self, rec);
	vmsup_vm_service_setup_running(self, rec);
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     name,
		     "VM '%s' re-adopted (pid %d)",
		     name,
		     (gint)vmsup_qemu_process_get_pid(process));
	if (!ok || rec->qmp == NULL) {
		/* still watched: stop and kill reach it, but it cannot be asked anything */
		g_free(rec->last_error);
		rec->last_error = g_strdup_printf("QMP is unreachable: %s",
						  error != NULL ? error->message : "not ready");
		g_warning("VM '%s' runs but its QMP is unreachable: %s, ignoring",
			  name,
			  rec->last_error);
		rec->state = VMSUP_VM_STATE_RUNNING;
		vmsup_vm_service_emit_vm_changed(self, rec);
		vmsup_vm_service_load_one_finish(one);
		return;
	}
	vmsup_qmp_client_execute_async(rec->qmp,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_vm_service_adopt_status_cb,
				       one);
}

static void
vmsup_vm_service_adopt_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmService *self = g_task_get_source_object(one->task);
	VmsupVmRecord *rec = one->rec;
	g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, rec->def->name);

	vmsup_vm_lock_lock_finish(res, NULL);
	rec->process = vmsup_qemu_process_new(rec->def->name, dir);
	rec->starting = TRUE;
	rec->state = VMSUP_VM_STATE_STARTING;
	vmsup_vm_service_watch_exit(rec);
	vmsup_qemu_process_adopt_async(rec->process,
				       self->cancellable,
				       vmsup_vm_service_adopted_cb,
				       one);
}

static void
vmsup_vm_service_autostart_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	g_autoptr(GError) error = NULL;

	if (!vmsup_vm_service_locked_finish(VMSUP_VM_SERVICE(source), res, &error))
		g_warning("Autostart of VM '%s' failed: %s, ignoring",
			  one->rec->def->name,
			  error->message);
	vmsup_vm_service_load_one_finish(one);
}

static void
vmsup_vm_service_autostart_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmService *self = g_task_get_source_object(one->task);

	vmsup_vm_lock_lock_finish(res, NULL);
	vmsup_vm_service_start_locked_async(self,
					    one->rec,
					    self->cancellable,
					    vmsup_vm_service_autostart_cb,
					    one);
}

/* one more VM handled by the load, under its lock */
static void
vmsup_vm_service_load_queue(GTask *task, VmsupVmRecord *rec, GAsyncReadyCallback locked_cb)
{
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmLoad *data = g_task_get_task_data(task);
	VmsupVmLoadOne *one = g_new0(VmsupVmLoadOne, 1);

	one->task = g_object_ref(task);
	one->rec = vmsup_vm_record_ref(rec);
	data->pending++;
	vmsup_vm_lock_lock_async(self->lock, rec->def->name, NULL, locked_cb, one);
}

static void
vmsup_vm_service_load_step(GTask *task /* owned */)
{
	VmsupVmService *self = g_task_get_source_object(task);
	VmsupVmLoad *data = g_task_get_task_data(task);
	g_auto(GStrv) names = NULL;

	if (data->autostarted) {
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	data->autostarted = TRUE;
	data->pending = 1;
	names = vmsup_vm_service_list_names(self);
	for (guint i = 0; names[i] != NULL; i++) {
		VmsupVmRecord *rec = g_hash_table_lookup(self->vms, names[i]);
		if (rec->def->autostart && rec->process == NULL)
			vmsup_vm_service_load_queue(task,
						    rec,
						    vmsup_vm_service_autostart_locked_cb);
	}
	vmsup_vm_service_load_one_done(task);
}

/* runtime dirs and disks that belong to no definition */
static void
vmsup_vm_service_load_check_orphans(VmsupVmService *self)
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

		if (g_hash_table_contains(self->vms, basename))
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
		vmsup_vm_service_remove_tree(path);
	}
	g_clear_pointer(&dir, g_dir_close);
	dir = g_dir_open(disks_dir, 0, NULL);
	while (dir != NULL && (basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *name = NULL;
		if (!g_str_has_suffix(basename, ".qcow2"))
			continue;
		name = g_strndup(basename, strlen(basename) - strlen(".qcow2"));
		if (!g_hash_table_contains(self->vms, name))
			g_warning("Disk '%s/%s' belongs to no VM (an interrupted create?); "
				  "remove it or move it away, ignoring",
				  disks_dir,
				  basename);
	}
}

static void
vmsup_vm_service_load_accel_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupVmService *self = VMSUP_VM_SERVICE(source);
	VmsupVmLoad *data = g_task_get_task_data(task);
	g_autoptr(GPtrArray) defs = NULL;
	GError *error = NULL;

	if (!vmsup_vm_service_ensure_accel_finish(self, res, &error)) {
		vmsup_vm_service_return_error(task, error);
		return;
	}
	defs = vmsup_vm_store_load_all(self->store, &error);
	if (defs == NULL) {
		vmsup_vm_service_return_error(task, error);
		return;
	}
	while (defs->len > 0) {
		VmsupVmDef *def = g_ptr_array_steal_index(defs, 0);
		VmsupVmRecord *rec;
		if (g_hash_table_contains(self->vms, def->name)) {
			vmsup_vm_def_free(def);
			continue;
		}
		rec = vmsup_vm_record_new(self, def);
		g_hash_table_insert(self->vms, g_strdup(def->name), rec);
	}
	vmsup_vm_service_load_check_orphans(self);

	data->pending = 1;
	{
		g_auto(GStrv) names = vmsup_vm_service_list_names(self);
		for (guint i = 0; names[i] != NULL; i++) {
			VmsupVmRecord *rec = g_hash_table_lookup(self->vms, names[i]);
			g_autofree gchar *dir = vmsup_vm_service_vm_runtime_dir(self, names[i]);
			g_autofree gchar *pidfile = g_build_filename(dir, VMSUP_QEMU_PIDFILE, NULL);
			if (rec->process != NULL)
				continue;
			if (g_file_test(pidfile, G_FILE_TEST_EXISTS)) {
				vmsup_vm_service_load_queue(task,
							    rec,
							    vmsup_vm_service_adopt_locked_cb);
			} else if (g_file_test(dir, G_FILE_TEST_IS_DIR)) {
				vmsup_vm_service_remove_tree(dir);
				rec->state = VMSUP_VM_STATE_STOPPED;
			}
		}
	}
	g_message("%u VMs defined", g_hash_table_size(self->vms));
	vmsup_vm_service_load_one_done(g_steal_pointer(&task));
}

void
vmsup_vm_service_load_async(VmsupVmService *self,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_load_async);
	g_task_set_task_data(task, g_new0(VmsupVmLoad, 1), g_free);
	if (self->loaded) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					"the VM service is loaded already");
		return;
	}
	self->loaded = TRUE;
	vmsup_vm_service_ensure_accel_async(self,
					    cancellable,
					    vmsup_vm_service_load_accel_cb,
					    g_steal_pointer(&task));
}

gboolean
vmsup_vm_service_load_finish(VmsupVmService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

/* stop_all */

static void
vmsup_vm_service_stop_all_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	vmsup_vm_service_locked_finish(VMSUP_VM_SERVICE(source), res, NULL);
	vmsup_vm_service_load_one_finish(one);
}

static void
vmsup_vm_service_stop_all_locked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupVmLoadOne *one = user_data;
	VmsupVmService *self = g_task_get_source_object(one->task);

	vmsup_vm_lock_lock_finish(res, NULL);
	vmsup_vm_service_stop_locked_async(self,
					   one->rec,
					   FALSE,
					   self->stop_timeout_s * 1000,
					   vmsup_vm_service_stop_all_stopped_cb,
					   one);
}

void
vmsup_vm_service_stop_all_async(VmsupVmService *self,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_auto(GStrv) names = NULL;
	VmsupVmLoad *data;

	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_service_stop_all_async);
	data = g_new0(VmsupVmLoad, 1);
	/* reuses the load's counting: there is nothing to autostart afterwards */
	data->autostarted = TRUE;
	data->pending = 1;
	g_task_set_task_data(task, data, g_free);
	names = vmsup_vm_service_list_names(self);
	for (guint i = 0; names[i] != NULL; i++) {
		VmsupVmRecord *rec = g_hash_table_lookup(self->vms, names[i]);
		if (rec->process != NULL)
			vmsup_vm_service_load_queue(task, rec, vmsup_vm_service_stop_all_locked_cb);
	}
	vmsup_vm_service_load_one_done(g_steal_pointer(&task));
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
	g_hash_table_unref(self->vms);
	g_hash_table_unref(self->ops);
	g_hash_table_unref(self->creating);
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
}

static void
vmsup_vm_service_init(VmsupVmService *self)
{
	self->cancellable = g_cancellable_new();
	self->lock = vmsup_vm_lock_new();
	self->vms = g_hash_table_new_full(g_str_hash,
					  g_str_equal,
					  g_free,
					  (GDestroyNotify)vmsup_vm_record_unref);
	self->ops = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_object_unref);
	self->creating = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
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
