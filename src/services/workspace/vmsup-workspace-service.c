/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * WorkspaceService: named host directories shared into a VM and opened on
 * demand. It reaches VMService only through its workspace hooks, and keeps
 * one small JSON record per workspace, replaced atomically and durably.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <stdlib.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-name.h"
#include "vmsup-policy.h"
#include "vmsup-record-store.h"
#include "vmsup-vm-def.h"
#include "vmsup-workspace-service.h"

#define VMSUP_WORKSPACE_VERSION 1
/* a record is a few hundred bytes; anything this big is not one */
#define VMSUP_WORKSPACE_MAX_FILE_SIZE (64 * 1024)
#define VMSUP_WORKSPACE_VM_PREFIX "ws-"
#define VMSUP_WORKSPACE_MOUNT "/workspace"
#define VMSUP_WORKSPACE_OPEN_TIMEOUT_S 60
#define VMSUP_WORKSPACE_AGENT_CALL_MS 10000

/*
 * Directories a workspace may not be, nor be inside: sharing them would let
 * a guest read or write the host's system. "/lib*" is matched by prefix.
 */
static const gchar *const vmsup_workspace_system_dirs[] = {"/bin",
							   "/boot",
							   "/dev",
							   "/etc",
							   "/proc",
							   "/root",
							   "/run",
							   "/sbin",
							   "/sys",
							   "/usr",
							   "/var",
							   NULL};

/* one workspace; all strings owned */
typedef struct {
	gchar *name;
	gchar *path; /* canonical (realpath) */
	gchar *vm;
	gboolean vm_owned; /* created for the workspace, deleted with it */
	guint cpus;        /* for an owned VM; 0: VMService's default */
	guint memory_mib;  /* likewise */
	gint64 created;    /* unix time, seconds */
	guint32 owner_uid; /* who created it; 0 (root) for records older than owners */
} VmsupWorkspace;

struct _VmsupWorkspaceService {
	GObject parent_instance;
	gchar *state_dir;          /* owned */
	VmsupRecordStore *records; /* owned: <state_dir>/workspaces */
	VmsupWorkspaceHooks hooks; /* owned refs on the closures */
	GHashTable *workspaces;    /* owned: name -> VmsupWorkspace (owned) */
	GHashTable *busy;          /* owned keys: name -> what is under way (static string) */
	GHashTable *creating;      /* owned keys: name -> VmsupWorkspace (unowned, in the op) */
	guint open_timeout_s;
	GCancellable *cancellable; /* owned */
};

G_DEFINE_FINAL_TYPE(VmsupWorkspaceService, vmsup_workspace_service, G_TYPE_OBJECT)

enum { PROP_0, PROP_STATE_DIR, PROP_HOOKS, N_PROPS };
static GParamSpec *props[N_PROPS];

enum { SIGNAL_ACTIVITY, N_SIGNALS };
static guint signals[N_SIGNALS];

/* records */

static void
vmsup_workspace_free(VmsupWorkspace *ws)
{
	if (ws == NULL)
		return;
	g_free(ws->name);
	g_free(ws->path);
	g_free(ws->vm);
	g_free(ws);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupWorkspace, vmsup_workspace_free)

static VmsupWorkspace *
vmsup_workspace_copy(const VmsupWorkspace *ws)
{
	VmsupWorkspace *copy = g_new0(VmsupWorkspace, 1);
	*copy = *ws;
	copy->name = g_strdup(ws->name);
	copy->path = g_strdup(ws->path);
	copy->vm = g_strdup(ws->vm);
	return copy;
}

static gchar *
vmsup_workspace_format_time(gint64 unix_seconds)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(unix_seconds);
	if (dt == NULL)
		return g_strdup("1970-01-01T00:00:00Z");
	return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

/* the stored form */
static JsonObject *
vmsup_workspace_to_record(const VmsupWorkspace *ws)
{
	JsonObject *obj = json_object_new();
	g_autofree gchar *created = vmsup_workspace_format_time(ws->created);

	json_object_set_int_member(obj, "version", VMSUP_WORKSPACE_VERSION);
	json_object_set_string_member(obj, "name", ws->name);
	json_object_set_string_member(obj, "path", ws->path);
	json_object_set_string_member(obj, "vm", ws->vm);
	json_object_set_boolean_member(obj, "vm_owned", ws->vm_owned);
	if (ws->cpus > 0)
		json_object_set_int_member(obj, "cpus", ws->cpus);
	if (ws->memory_mib > 0)
		json_object_set_int_member(obj, "memory_mib", ws->memory_mib);
	json_object_set_string_member(obj, "created", created);
	json_object_set_int_member(obj, "owner_uid", ws->owner_uid);
	return obj;
}

/* what clients see */
static JsonObject *
vmsup_workspace_to_result(const VmsupWorkspace *ws, const gchar *state)
{
	JsonObject *obj = json_object_new();
	g_autofree gchar *created = vmsup_workspace_format_time(ws->created);

	json_object_set_string_member(obj, "name", ws->name);
	json_object_set_string_member(obj, "path", ws->path);
	json_object_set_string_member(obj, "vm", ws->vm);
	json_object_set_boolean_member(obj, "vm_owned", ws->vm_owned);
	json_object_set_string_member(obj, "created", created);
	json_object_set_int_member(obj, "owner_uid", ws->owner_uid);
	json_object_set_string_member(obj, "state", state);
	return obj;
}

/* the plain-English reason (logs only) is returned in @error */
static VmsupWorkspace *
vmsup_workspace_from_record(JsonObject *obj, const gchar *name, GError **error)
{
	g_autoptr(VmsupWorkspace) ws = g_new0(VmsupWorkspace, 1);
	const gchar *created;
	JsonNode *node;

	if (vmsup_json_object_get_int(obj, "version", 0) != VMSUP_WORKSPACE_VERSION) {
		g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "unsupported version");
		return NULL;
	}
	ws->name = g_strdup(vmsup_json_object_get_string(obj, "name", NULL));
	if (g_strcmp0(ws->name, name) != 0) {
		g_set_error(error,
			    G_FILE_ERROR,
			    G_FILE_ERROR_INVAL,
			    "it describes workspace '%s', not '%s'",
			    ws->name != NULL ? ws->name : "(none)",
			    name);
		return NULL;
	}
	ws->path = g_strdup(vmsup_json_object_get_string(obj, "path", NULL));
	if (ws->path == NULL || !g_path_is_absolute(ws->path)) {
		g_set_error_literal(error,
				    G_FILE_ERROR,
				    G_FILE_ERROR_INVAL,
				    "no absolute \"path\"");
		return NULL;
	}
	ws->vm = g_strdup(vmsup_json_object_get_string(obj, "vm", NULL));
	if (!vmsup_name_validate(ws->vm, "VM", error))
		return NULL;
	node = json_object_get_member(obj, "vm_owned");
	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
		g_set_error_literal(error,
				    G_FILE_ERROR,
				    G_FILE_ERROR_INVAL,
				    "no boolean \"vm_owned\"");
		return NULL;
	}
	ws->vm_owned = json_node_get_boolean(node);
	ws->cpus = (guint)CLAMP(vmsup_json_object_get_int(obj, "cpus", 0), 0, G_MAXUINT16);
	ws->memory_mib =
	    (guint)CLAMP(vmsup_json_object_get_int(obj, "memory_mib", 0), 0, G_MAXINT32);
	/* older than owners: root's, so in system mode only root may use it */
	node = json_object_get_member(obj, "owner_uid");
	if (node != NULL) {
		gint64 owner_uid = 0;
		if (!vmsup_json_node_get_int_in_range(node,
						      "owner_uid",
						      0,
						      G_MAXUINT32,
						      &owner_uid,
						      error))
			return NULL;
		ws->owner_uid = (guint32)owner_uid;
	}
	created = vmsup_json_object_get_string(obj, "created", NULL);
	if (created != NULL) {
		g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(created, NULL);
		if (dt == NULL) {
			g_set_error(error,
				    G_FILE_ERROR,
				    G_FILE_ERROR_INVAL,
				    "\"created\" is not an ISO 8601 time: %s",
				    created);
			return NULL;
		}
		ws->created = g_date_time_to_unix(dt);
	}
	return g_steal_pointer(&ws);
}

/* the store: <state_dir>/workspaces/<name>.json */

static void
vmsup_workspace_service_save_async(VmsupWorkspaceService *self,
				   const VmsupWorkspace *ws,
				   GAsyncReadyCallback callback,
				   gpointer user_data)
{
	g_autoptr(JsonObject) obj = vmsup_workspace_to_record(ws);
	vmsup_record_store_save_async(self->records,
				      ws->name,
				      obj,
				      /* cancellable= */ NULL,
				      callback,
				      user_data);
}

static void
vmsup_workspace_service_load(VmsupWorkspaceService *self)
{
	g_autoptr(GHashTable) records = NULL;
	g_autoptr(GError) error = NULL;
	GHashTableIter iter;
	gpointer name;
	gpointer obj;

	records = vmsup_record_store_load_all(self->records, &error);
	if (records == NULL) {
		g_warning("%s, ignoring", error->message);
		return;
	}
	g_hash_table_iter_init(&iter, records);
	while (g_hash_table_iter_next(&iter, &name, &obj)) {
		g_autoptr(GError) error_record = NULL;
		VmsupWorkspace *ws = vmsup_workspace_from_record(obj, name, &error_record);

		if (ws == NULL) {
			vmsup_record_store_set_aside(self->records, name, error_record->message);
			continue;
		}
		g_hash_table_replace(self->workspaces, g_strdup(ws->name), ws);
	}
	g_debug("%u workspaces loaded from '%s'",
		g_hash_table_size(self->workspaces),
		vmsup_record_store_get_dir(self->records));
}

/* params */

/* an optional positive integer; 0 when absent (the VM's limits are VMService's to check) */
static gboolean
vmsup_workspace_get_uint_param(JsonObject *params,
			       const gchar *member,
			       guint *out_value,
			       GError **error)
{
	gint64 value = 0;

	if (!vmsup_json_object_get_int_in_range(params, member, 1, G_MAXINT32, 0, &value, error))
		return FALSE;
	*out_value = (guint)value;
	return TRUE;
}

static const gchar *
vmsup_workspace_get_string_param(JsonObject *params, const gchar *member, GError **error)
{
	JsonNode *node = json_object_get_member(params, member);
	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return NULL;
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' must be a string, got %s"),
			    member,
			    vmsup_json_node_type_name(node));
		return NULL;
	}
	return json_node_get_string(node);
}

static const gchar *
vmsup_workspace_get_name_param(JsonObject *params, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	const gchar *name = vmsup_workspace_get_string_param(params, "name", &error_local);

	if (error_local != NULL) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return NULL;
	}
	if (!vmsup_name_validate(name, "workspace", error))
		return NULL;
	return name;
}

/* TRUE when @path (canonical) is a system directory or inside one */
static gboolean
vmsup_workspace_path_is_system(const gchar *path, const gchar **out_dir)
{
	g_autofree gchar *top = NULL;
	const gchar *slash;

	if (g_strcmp0(path, "/") == 0) {
		*out_dir = "/";
		return TRUE;
	}
	for (guint i = 0; vmsup_workspace_system_dirs[i] != NULL; i++) {
		const gchar *dir = vmsup_workspace_system_dirs[i];
		gsize len = strlen(dir);
		if (strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/')) {
			*out_dir = dir;
			return TRUE;
		}
	}
	/* /lib, /lib32, /lib64, /libx32, /libexec, ... */
	if (g_str_has_prefix(path, "/lib")) {
		slash = strchr(path + 1, '/');
		top = slash != NULL ? g_strndup(path, slash - path) : g_strdup(path);
		*out_dir = g_intern_string(top);
		return TRUE;
	}
	return FALSE;
}

/*
 * The directory a workspace shares: absolute, existing, a directory, not a
 * system directory, in canonical form (symlinks resolved, so a link cannot
 * smuggle /etc in).
 */
static gchar *
vmsup_workspace_resolve_path(const gchar *path, GError **error)
{
	g_autofree gchar *shown = NULL;
	g_autofree gchar *real = NULL;
	const gchar *system_dir = NULL;
	GStatBuf st;

	if (path == NULL || path[0] == '\0') {
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("'path' is required: the host directory to share"));
		return NULL;
	}
	shown = g_strescape(path, NULL);
	if (!g_path_is_absolute(path)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'path' must be an absolute path, got '%s'; the daemon does not know "
			      "the client's working directory"),
			    shown);
		return NULL;
	}
	real = realpath(path, NULL);
	if (real == NULL) {
		gint saved_errno = errno;
		if (saved_errno == ENOENT) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_NOT_FOUND,
				    _("Directory '%s' does not exist; create it first"),
				    shown);
		} else {
			g_set_error(
			    error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Cannot resolve '%s': %s; check that the daemon can reach it"),
			    shown,
			    g_strerror(saved_errno));
		}
		return NULL;
	}
	if (g_stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' is not a directory; a workspace shares a whole directory"),
			    shown);
		return NULL;
	}
	if (vmsup_workspace_path_is_system(real, &system_dir)) {
		g_autofree gchar *shown_real = g_strescape(real, NULL);
		if (g_strcmp0(real, system_dir) == 0) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("'%s' is a system directory and cannot be shared; choose a "
				      "project directory, e.g. under /home, /srv or /tmp"),
				    shown_real);
		} else {
			g_set_error(
			    error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' is inside the system directory '%s' and cannot be shared; "
			      "choose a project directory, e.g. under /home, /srv or /tmp"),
			    shown_real,
			    system_dir);
		}
		return NULL;
	}
	return g_steal_pointer(&real);
}

/* operations: one at a time per workspace */

static VmsupWorkspace *
vmsup_workspace_service_lookup(VmsupWorkspaceService *self, const gchar *name, GError **error)
{
	VmsupWorkspace *ws = g_hash_table_lookup(self->workspaces, name);
	if (ws == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    _("Workspace '%s' does not exist; 'vmsup workspace list' shows the "
			      "workspaces"),
			    name);
		return NULL;
	}
	return ws;
}

gboolean
vmsup_workspace_service_get_owner(VmsupWorkspaceService *self, const gchar *name, guint32 *out_uid)
{
	VmsupWorkspace *ws;

	g_return_val_if_fail(VMSUP_IS_WORKSPACE_SERVICE(self), FALSE);
	g_return_val_if_fail(out_uid != NULL, FALSE);

	if (name == NULL)
		return FALSE;
	ws = g_hash_table_lookup(self->workspaces, name);
	if (ws == NULL)
		ws = g_hash_table_lookup(self->creating, name);
	if (ws == NULL)
		return FALSE;
	*out_uid = ws->owner_uid;
	return TRUE;
}

static gboolean
vmsup_workspace_service_claim(VmsupWorkspaceService *self,
			      const gchar *name,
			      const gchar *what,
			      GError **error)
{
	const gchar *under_way = g_hash_table_lookup(self->busy, name);
	if (under_way != NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    /* TRANSLATORS: the second %s is "created", "opened" or "deleted" */
			    _("Workspace '%s' is being %s; wait for that to finish and try again"),
			    name,
			    _(under_way));
		return FALSE;
	}
	g_hash_table_insert(self->busy, g_strdup(name), (gpointer)what);
	return TRUE;
}

/* the workspace (existing or being created) that @vm serves, or NULL */
static const gchar *
vmsup_workspace_service_find_vm_user(VmsupWorkspaceService *self, const gchar *vm)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->workspaces);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmsupWorkspace *ws = value;
		if (g_strcmp0(ws->vm, vm) == 0)
			return ws->name;
	}
	g_hash_table_iter_init(&iter, self->creating);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmsupWorkspace *ws = value;
		if (g_strcmp0(ws->vm, vm) == 0)
			return ws->name;
	}
	return NULL;
}

/* per-call state of create, open and delete */
typedef struct {
	VmsupWorkspaceService *self; /* owned */
	gchar *name;                 /* owned: the busy claim, released before returning */
	VmsupWorkspace *ws;          /* owned copy */
	gboolean claimed;
	gboolean saved;          /* create: the record is on disk */
	gboolean force;          /* delete */
	gboolean running;        /* the VM has a QEMU */
	gint64 started;          /* open: monotonic time of the request */
	VmsupVmHandles *handles; /* open: owned */
	guint32 caller_uid;      /* create, open: for whom the directory is shared */
	VmsupCaller vm_caller;   /* for whom VMService acts: the daemon, or the owner sharing */
} VmsupWorkspaceOp;

static void
vmsup_workspace_op_release(VmsupWorkspaceOp *op)
{
	if (!op->claimed)
		return;
	op->claimed = FALSE;
	g_hash_table_remove(op->self->busy, op->name);
	g_hash_table_remove(op->self->creating, op->name);
}

static void
vmsup_workspace_op_free(VmsupWorkspaceOp *op)
{
	vmsup_workspace_op_release(op);
	g_clear_object(&op->self);
	g_free(op->name);
	vmsup_workspace_free(op->ws);
	g_clear_pointer(&op->handles, vmsup_vm_handles_unref);
	g_free(op);
}

static VmsupWorkspaceOp *
vmsup_workspace_op_new(VmsupWorkspaceService *self, const gchar *name, guint32 caller_uid)
{
	VmsupWorkspaceOp *op = g_new0(VmsupWorkspaceOp, 1);
	op->self = g_object_ref(self);
	op->name = g_strdup(name);
	op->claimed = TRUE;
	op->caller_uid = caller_uid;
	op->vm_caller = *vmsup_caller_daemon();
	return op;
}

/* the claim is released before anyone learns the outcome: a follow-up call is never busy */
static void
vmsup_workspace_op_return(GTask *task /* owned */, JsonObject *result /* owned */)
{
	vmsup_workspace_op_release(g_task_get_task_data(task));
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
	g_object_unref(task);
}

static void
vmsup_workspace_op_return_error(GTask *task /* owned */, GError *error /* owned */)
{
	vmsup_workspace_op_release(g_task_get_task_data(task));
	vmsup_error_convert(&error);
	g_task_return_error(task, error);
	g_object_unref(task);
}

static GCancellable *
vmsup_workspace_op_cancellable(GTask *task)
{
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	GCancellable *cancellable = g_task_get_cancellable(task);
	return cancellable != NULL ? cancellable : op->self->cancellable;
}

static void
vmsup_workspace_op_vm_call(GTask *task,
			   const gchar *verb,
			   JsonObject *params /* owned */,
			   GAsyncReadyCallback callback)
{
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	vmsup_workspace_hooks_vm_call(&op->self->hooks,
				      verb,
				      &op->vm_caller,
				      params,
				      vmsup_workspace_op_cancellable(task),
				      callback,
				      task);
	json_object_unref(params);
}

static JsonObject *
vmsup_workspace_vm_params(const gchar *vm)
{
	JsonObject *params = json_object_new();
	json_object_set_string_member(params, "name", vm);
	return params;
}

/* states of vm.get in which a QEMU exists */
static gboolean
vmsup_workspace_vm_state_is_running(const gchar *state)
{
	return g_strcmp0(state, "running") == 0 || g_strcmp0(state, "starting") == 0 ||
	       g_strcmp0(state, "paused") == 0 || g_strcmp0(state, "stopping") == 0;
}

/*
 * share_dir for VMService, for the workspace's owner: VMService checks it
 * (and the VM's files) for that uid, too, and a VM it creates is the
 * owner's, whoever opened the workspace
 */
static void
vmsup_workspace_op_add_share(VmsupWorkspaceOp *op, JsonObject *params, const gchar *share_dir)
{
	/* internal: the RPC schemas of vm.create and vm.set accept neither from clients */
	json_object_set_string_member(params, "share_dir", share_dir);
	op->vm_caller = vmsup_caller_for_uid(op->ws->owner_uid);
}

/*
 * A workspace shares its directory only with a VM of its owner (or, for a
 * workspace of root or the daemon's user, of one of those): whoever owns
 * the VM can run commands in it, and so read and write the directory.
 * NULL when @vm (a vm.get result) may have it.
 */
static GError *
vmsup_workspace_op_check_vm_owner(VmsupWorkspaceOp *op, JsonObject *vm)
{
	guint32 ws_owner = op->ws->owner_uid;
	gint64 vm_owner = vmsup_json_object_get_int(vm, "owner_uid", 0);

	if (vm_owner == ws_owner || (!vmsup_vm_def_uid_is_restricted((guint32)vm_owner) &&
				     !vmsup_vm_def_uid_is_restricted(ws_owner)))
		return NULL;
	return g_error_new(
	    VMSUP_ERROR,
	    VMSUP_ERROR_FAILED_PRECONDITION,
	    /* TRANSLATORS: VM 'ws-a' belongs to uid 1001, but workspace 'a' to uid 1000 */
	    _("VM '%s' belongs to uid %u, but workspace '%s' to uid %u: a workspace "
	      "shares its directory only with a VM of its owner; use a VM of the "
	      "workspace's owner, or delete the workspace and create it again"),
	    op->ws->vm,
	    (guint)vm_owner,
	    op->name,
	    (guint)ws_owner);
}

/* asks VMService for the workspace's own VM, with the directory shared */
static void
vmsup_workspace_op_create_vm(GTask *task, GAsyncReadyCallback callback)
{
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	JsonObject *params = vmsup_workspace_vm_params(op->ws->vm);

	vmsup_workspace_op_add_share(op, params, op->ws->path);
	if (op->ws->cpus > 0)
		json_object_set_int_member(params, "cpus", op->ws->cpus);
	if (op->ws->memory_mib > 0)
		json_object_set_int_member(params, "memory_mib", op->ws->memory_mib);
	json_object_set_boolean_member(params, "wait", TRUE);
	vmsup_workspace_op_vm_call(task, "create", params, callback);
}

static void
vmsup_workspace_op_set_share(GTask *task, const gchar *share_dir, GAsyncReadyCallback callback)
{
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	JsonObject *params = vmsup_workspace_vm_params(op->ws->vm);

	if (share_dir != NULL)
		vmsup_workspace_op_add_share(op, params, share_dir);
	else
		json_object_set_null_member(params, "share_dir");
	vmsup_workspace_op_vm_call(task, "set", params, callback);
}

/* workspace.create */

static void
vmsup_workspace_create_rollback(GTask *task /* owned */, GError *error /* owned */)
{
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(GError) error_remove = NULL;

	if (op->saved && !vmsup_record_store_remove(op->self->records, op->name, &error_remove))
		g_warning("%s, ignoring", error_remove->message);
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     op->ws->vm,
		     "Creating workspace '%s' did not complete: %s",
		     op->name,
		     error->message);
	vmsup_workspace_op_return_error(task, error);
}

static void
vmsup_workspace_create_done(GTask *task /* owned */)
{
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	VmsupWorkspaceService *self = op->self;

	g_hash_table_replace(self->workspaces, g_strdup(op->name), vmsup_workspace_copy(op->ws));
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     op->ws->vm,
		     "Workspace '%s' created: '%s' in VM '%s'%s",
		     op->name,
		     op->ws->path,
		     op->ws->vm,
		     op->ws->vm_owned ? " (created for it)" : "");
	vmsup_workspace_op_return(task, vmsup_workspace_to_result(op->ws, "closed"));
}

static void
vmsup_workspace_create_vm_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(JsonObject) result = NULL;
	GError *error = NULL;

	result = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (result == NULL) {
		if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_ALREADY_EXISTS)) {
			g_clear_error(&error);
			error =
			    g_error_new(VMSUP_ERROR,
					VMSUP_ERROR_ALREADY_EXISTS,
					_("VM '%s' already exists; pass it as 'vm' to use it for "
					  "workspace '%s', or delete it first"),
					op->ws->vm,
					op->name);
		}
		vmsup_workspace_create_rollback(task, error);
		return;
	}
	vmsup_workspace_create_done(task);
}

static void
vmsup_workspace_create_share_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	g_autoptr(JsonObject) result = NULL;
	GError *error = NULL;

	result = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (result == NULL) {
		vmsup_workspace_create_rollback(task, error);
		return;
	}
	vmsup_workspace_create_done(task);
}

static void
vmsup_workspace_create_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	GError *error = NULL;

	/* the record comes first: a daemon killed now leaves a workspace whose VM open re-creates
	 */
	op->saved = TRUE;
	if (!vmsup_record_store_save_finish(VMSUP_RECORD_STORE(source), res, &error)) {
		vmsup_workspace_create_rollback(task, error);
		return;
	}
	if (op->ws->vm_owned) {
		vmsup_workspace_op_create_vm(task, vmsup_workspace_create_vm_cb);
		return;
	}
	vmsup_workspace_op_set_share(task, op->ws->path, vmsup_workspace_create_share_cb);
}

static void
vmsup_workspace_create_save(GTask *task)
{
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	vmsup_workspace_service_save_async(op->self, op->ws, vmsup_workspace_create_saved_cb, task);
}

/* a VM named by the client: it exists, is stopped, and shares nothing else */
static void
vmsup_workspace_create_got_vm_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(JsonObject) vm = NULL;
	GError *error = NULL;
	const gchar *state;
	const gchar *share_dir;

	vm = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (vm == NULL) {
		if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND)) {
			g_clear_error(&error);
			error =
			    g_error_new(VMSUP_ERROR,
					VMSUP_ERROR_NOT_FOUND,
					_("VM '%s' does not exist; create it first, or leave out "
					  "'vm' to have one created for the workspace"),
					op->ws->vm);
		}
		vmsup_workspace_op_return_error(task, error);
		return;
	}
	error = vmsup_workspace_op_check_vm_owner(op, vm);
	if (error != NULL) {
		vmsup_workspace_op_return_error(task, error);
		return;
	}
	state = vmsup_json_object_get_string(vm, "state", NULL);
	if (vmsup_workspace_vm_state_is_running(state)) {
		vmsup_workspace_op_return_error(
		    task,
		    g_error_new(
			VMSUP_ERROR,
			VMSUP_ERROR_FAILED_PRECONDITION,
			_("VM '%s' is %s; stop it first ('vmsup stop %s') so that it starts "
			  "again with the directory of workspace '%s' shared"),
			op->ws->vm,
			state,
			op->ws->vm,
			op->name));
		return;
	}
	share_dir = vmsup_json_object_get_string(vm, "share_dir", NULL);
	if (share_dir != NULL && g_strcmp0(share_dir, op->ws->path) != 0) {
		vmsup_workspace_op_return_error(
		    task,
		    g_error_new(
			VMSUP_ERROR,
			VMSUP_ERROR_FAILED_PRECONDITION,
			_("VM '%s' already shares '%s'; choose another VM, or leave out 'vm' "
			  "to have one created for the workspace"),
			op->ws->vm,
			share_dir));
		return;
	}
	vmsup_workspace_create_save(task);
}

void
vmsup_workspace_service_create_async(VmsupWorkspaceService *self,
				     const VmsupCaller *caller,
				     JsonObject *params,
				     GCancellable *cancellable,
				     GAsyncReadyCallback callback,
				     gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupWorkspace) ws = g_new0(VmsupWorkspace, 1);
	g_autofree gchar *vm_name = NULL;
	VmsupWorkspaceOp *op;
	const gchar *name;
	const gchar *path;
	const gchar *vm = NULL;
	const gchar *user;

	g_return_if_fail(VMSUP_IS_WORKSPACE_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_workspace_service_create_async);
	/* a create that reached VMService completes (or rolls back), even for a client that left */
	g_task_set_check_cancellable(task, FALSE);

	/* every check before anything is touched, the name first */
	name = vmsup_workspace_get_name_param(params, &error);
	if (name == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (g_hash_table_contains(self->workspaces, name)) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_ALREADY_EXISTS,
					_("Workspace '%s' already exists; choose another name or "
					  "delete it first"),
					name);
		return;
	}
	path = vmsup_workspace_get_string_param(params, "path", &error);
	if (error == NULL)
		ws->path = vmsup_workspace_resolve_path(path, &error);
	if (error == NULL)
		vmsup_policy_check_share(caller, ws->path, &error);
	if (error == NULL)
		vm = vmsup_workspace_get_string_param(params, "vm", &error);
	if (error == NULL)
		vmsup_workspace_get_uint_param(params, "cpus", &ws->cpus, &error);
	if (error == NULL)
		vmsup_workspace_get_uint_param(params, "memory_mib", &ws->memory_mib, &error);
	if (error != NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (vm != NULL) {
		if (!vmsup_name_validate(vm, "VM", &error)) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
		if (ws->cpus > 0 || ws->memory_mib > 0) {
			g_task_return_new_error(
			    task,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'cpus' and 'memory_mib' are for a VM created for "
			      "the workspace; change VM '%s' with 'vmsup set' "
			      "instead"),
			    vm);
			return;
		}
		ws->vm = g_strdup(vm);
	} else {
		vm_name = g_strconcat(VMSUP_WORKSPACE_VM_PREFIX, name, NULL);
		if (!vmsup_name_validate(vm_name, "VM", NULL)) {
			g_task_return_new_error(
			    task,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Workspace name '%s' is too long for the VM '%s%s' "
			      "created for it; use at most %u characters, or pass "
			      "'vm'"),
			    name,
			    VMSUP_WORKSPACE_VM_PREFIX,
			    name,
			    (guint)(VMSUP_NAME_MAX_LENGTH - strlen(VMSUP_WORKSPACE_VM_PREFIX)));
			return;
		}
		ws->vm = g_steal_pointer(&vm_name);
		ws->vm_owned = TRUE;
	}
	user = vmsup_workspace_service_find_vm_user(self, ws->vm);
	if (user != NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_ALREADY_EXISTS,
					_("VM '%s' already serves workspace '%s'; a VM shares one "
					  "directory, choose another VM"),
					ws->vm,
					user);
		return;
	}
	if (!vmsup_workspace_service_claim(self, name, N_("created"), &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	ws->name = g_strdup(name);
	ws->created = g_get_real_time() / G_USEC_PER_SEC;
	ws->owner_uid = caller->uid;

	op = vmsup_workspace_op_new(self, name, caller->uid);
	op->ws = g_steal_pointer(&ws);
	g_hash_table_insert(self->creating, g_strdup(name), op->ws);
	g_task_set_task_data(task, op, (GDestroyNotify)vmsup_workspace_op_free);
	if (op->ws->vm_owned) {
		vmsup_workspace_create_save(g_steal_pointer(&task));
		return;
	}
	vmsup_workspace_op_vm_call(g_steal_pointer(&task),
				   "get",
				   vmsup_workspace_vm_params(op->ws->vm),
				   vmsup_workspace_create_got_vm_cb);
}

JsonObject *
vmsup_workspace_service_create_finish(VmsupWorkspaceService *self,
				      GAsyncResult *res,
				      GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* workspace.open */

static void
vmsup_workspace_open_mounts_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *mounts = NULL;
	g_auto(GStrv) lines = NULL;
	gboolean mounted = FALSE;
	JsonObject *result;
	gint64 ready_ms;

	bytes = vmsup_qga_client_read_file_finish(VMSUP_QGA_CLIENT(source), res, &error);
	if (bytes == NULL) {
		vmsup_workspace_op_return_error(
		    task,
		    g_error_new(VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("The guest agent of VM '%s' cannot tell whether %s is mounted: "
				  "%s; check the guest, or stop VM '%s' and open the workspace "
				  "again"),
				op->ws->vm,
				VMSUP_WORKSPACE_MOUNT,
				error->message,
				op->ws->vm));
		return;
	}
	mounts = g_strndup(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
	lines = g_strsplit(mounts, "\n", -1);
	/* "<source> <mountpoint> <type> ..." */
	for (guint i = 0; lines[i] != NULL && !mounted; i++) {
		g_auto(GStrv) fields = g_strsplit(lines[i], " ", 4);
		if (g_strv_length(fields) >= 3 &&
		    g_strcmp0(fields[1], VMSUP_WORKSPACE_MOUNT) == 0 &&
		    g_strcmp0(fields[2], "9p") == 0)
			mounted = TRUE;
	}
	if (!mounted) {
		vmsup_workspace_op_return_error(
		    task,
		    g_error_new(VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("The guest of VM '%s' answers but has not mounted the share at "
				  "%s; mount it in the guest ('mount -t 9p -o "
				  "trans=virtio,version=9p2000.L workspace %s') or use the bundled "
				  "guest"),
				op->ws->vm,
				VMSUP_WORKSPACE_MOUNT,
				VMSUP_WORKSPACE_MOUNT));
		return;
	}
	ready_ms = (g_get_monotonic_time() - op->started) / 1000;
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     op->ws->vm,
		     "Workspace '%s' open in VM '%s' (ready after %" G_GINT64_FORMAT " ms)",
		     op->name,
		     op->ws->vm,
		     ready_ms);
	g_signal_emit(op->self, signals[SIGNAL_ACTIVITY], 0, op->ws->vm, "workspace.open");
	result = vmsup_workspace_to_result(op->ws, "open");
	json_object_set_string_member(result, "mount", VMSUP_WORKSPACE_MOUNT);
	json_object_set_string_member(result, "vm_state", "running");
	json_object_set_int_member(result, "ready_ms", ready_ms);
	vmsup_workspace_op_return(task, result);
}

static void
vmsup_workspace_open_agent_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	if (!vmsup_qga_client_connect_finish(VMSUP_QGA_CLIENT(source), res, &error)) {
		if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT)) {
			vmsup_workspace_op_return_error(
			    task,
			    g_error_new(VMSUP_ERROR,
					VMSUP_ERROR_TIMEOUT,
					_("The guest agent of VM '%s' did not answer within %u s; "
					  "see '%s/console.log', then stop VM '%s' and open "
					  "workspace '%s' again"),
					op->ws->vm,
					op->self->open_timeout_s,
					op->handles->runtime_dir,
					op->ws->vm,
					op->name));
			return;
		}
		vmsup_workspace_op_return_error(
		    task,
		    g_error_new(
			VMSUP_ERROR,
			VMSUP_ERROR_FAILED_PRECONDITION,
			_("Cannot reach the guest agent of VM '%s': %s; check 'vmsup health "
			  "%s'"),
			op->ws->vm,
			error->message,
			op->ws->vm));
		return;
	}
	vmsup_qga_client_read_file_async(op->handles->qga,
					 "/proc/mounts",
					 VMSUP_WORKSPACE_AGENT_CALL_MS,
					 vmsup_workspace_op_cancellable(task),
					 vmsup_workspace_open_mounts_cb,
					 task);
}

static void
vmsup_workspace_open_started_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(JsonObject) vm = NULL;
	GError *error = NULL;

	vm = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (vm == NULL) {
		g_prefix_error(&error, _("Opening workspace '%s': "), op->name);
		vmsup_workspace_op_return_error(task, error);
		return;
	}
	op->handles = vmsup_workspace_hooks_vm_handles(&op->self->hooks, op->ws->vm);
	if (op->handles == NULL || op->handles->qga == NULL) {
		vmsup_workspace_op_return_error(
		    task,
		    g_error_new(VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				op->handles == NULL
				    ? _("VM '%s' stopped while workspace '%s' was being opened; "
					"see 'vmsup get %s' and open it again")
				    : _("VM '%s' has no guest agent channel, so workspace '%s' "
					"cannot be opened; see 'vmsup get %s'"),
				op->ws->vm,
				op->name,
				op->ws->vm));
		return;
	}
	vmsup_qga_client_connect_async(op->handles->qga,
				       op->self->open_timeout_s * 1000,
				       vmsup_workspace_op_cancellable(task),
				       vmsup_workspace_open_agent_cb,
				       task);
}

static void
vmsup_workspace_open_start(GTask *task)
{
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	vmsup_workspace_op_vm_call(task,
				   "start",
				   vmsup_workspace_vm_params(op->ws->vm),
				   vmsup_workspace_open_started_cb);
}

static void
vmsup_workspace_open_prepared_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	g_autoptr(JsonObject) result = NULL;
	GError *error = NULL;

	result = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (result == NULL) {
		vmsup_workspace_op_return_error(task, error);
		return;
	}
	vmsup_workspace_open_start(task);
}

static void
vmsup_workspace_open_got_vm_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(JsonObject) vm = NULL;
	GError *error = NULL;
	const gchar *share_dir;

	vm = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (vm == NULL) {
		if (!g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND)) {
			vmsup_workspace_op_return_error(task, error);
			return;
		}
		g_clear_error(&error);
		/* a VM of our own that went missing (or was never made: a daemon killed mid-create)
		 */
		if (op->ws->vm_owned) {
			vmsup_log_vm(G_LOG_LEVEL_INFO,
				     op->ws->vm,
				     "VM '%s' of workspace '%s' is missing; creating it again",
				     op->ws->vm,
				     op->name);
			vmsup_workspace_op_create_vm(task, vmsup_workspace_open_prepared_cb);
			return;
		}
		vmsup_workspace_op_return_error(
		    task,
		    g_error_new(
			VMSUP_ERROR,
			VMSUP_ERROR_FAILED_PRECONDITION,
			_("VM '%s' of workspace '%s' no longer exists; delete the workspace "
			  "and create it again with another VM"),
			op->ws->vm,
			op->name));
		return;
	}
	/* a VM of the same name, made by someone else since ours was deleted */
	error = vmsup_workspace_op_check_vm_owner(op, vm);
	if (error != NULL) {
		vmsup_workspace_op_return_error(task, error);
		return;
	}
	share_dir = vmsup_json_object_get_string(vm, "share_dir", NULL);
	if (g_strcmp0(share_dir, op->ws->path) == 0) {
		vmsup_workspace_open_start(task);
		return;
	}
	if (vmsup_workspace_vm_state_is_running(vmsup_json_object_get_string(vm, "state", NULL))) {
		vmsup_workspace_op_return_error(
		    task,
		    g_error_new(VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("VM '%s' runs without the directory of workspace '%s' shared; "
				  "stop it ('vmsup stop %s') and open the workspace again"),
				op->ws->vm,
				op->name,
				op->ws->vm));
		return;
	}
	vmsup_workspace_op_set_share(task, op->ws->path, vmsup_workspace_open_prepared_cb);
}

void
vmsup_workspace_service_open_async(VmsupWorkspaceService *self,
				   const VmsupCaller *caller,
				   JsonObject *params,
				   GCancellable *cancellable,
				   GAsyncReadyCallback callback,
				   gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GError) error = NULL;
	VmsupWorkspaceOp *op;
	VmsupWorkspace *ws;
	const gchar *name;

	g_return_if_fail(VMSUP_IS_WORKSPACE_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_workspace_service_open_async);
	name = vmsup_workspace_get_name_param(params, &error);
	ws = name != NULL ? vmsup_workspace_service_lookup(self, name, &error) : NULL;
	if (ws == NULL || !vmsup_workspace_service_claim(self, name, N_("opened"), &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	op = vmsup_workspace_op_new(self, name, caller->uid);
	op->ws = vmsup_workspace_copy(ws);
	op->started = g_get_monotonic_time();
	g_task_set_task_data(task, op, (GDestroyNotify)vmsup_workspace_op_free);
	if (!g_file_test(ws->path, G_FILE_TEST_IS_DIR)) {
		vmsup_workspace_op_return_error(
		    g_steal_pointer(&task),
		    g_error_new(VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("The directory '%s' of workspace '%s' is gone; restore it, or "
				  "delete the workspace"),
				ws->path,
				name));
		return;
	}
	/* again at every open: whoever opens it shares the directory, and it may have changed */
	if (!vmsup_policy_check_share(caller, ws->path, &error)) {
		g_prefix_error(&error, _("Cannot open workspace '%s': "), name);
		vmsup_workspace_op_return_error(g_steal_pointer(&task), g_steal_pointer(&error));
		return;
	}
	vmsup_workspace_op_vm_call(g_steal_pointer(&task),
				   "get",
				   vmsup_workspace_vm_params(op->ws->vm),
				   vmsup_workspace_open_got_vm_cb);
}

JsonObject *
vmsup_workspace_service_open_finish(VmsupWorkspaceService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* workspace.delete: the VM it created goes, the user's directory is never touched */

static void
vmsup_workspace_delete_finish_record(GTask *task /* owned */, gboolean vm_deleted)
{
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	GError *error = NULL;
	JsonObject *result;

	if (!vmsup_record_store_remove(op->self->records, op->name, &error)) {
		vmsup_workspace_op_return_error(task, error);
		return;
	}
	g_hash_table_remove(op->self->workspaces, op->name);
	vmsup_log_vm(G_LOG_LEVEL_MESSAGE,
		     op->ws->vm,
		     "Workspace '%s' deleted%s; '%s' left as it is",
		     op->name,
		     vm_deleted ? " with its VM" : "",
		     op->ws->path);
	result = json_object_new();
	json_object_set_string_member(result, "name", op->name);
	json_object_set_string_member(result, "path", op->ws->path);
	json_object_set_string_member(result, "vm", op->ws->vm);
	json_object_set_boolean_member(result, "vm_deleted", vm_deleted);
	vmsup_workspace_op_return(task, result);
}

static void
vmsup_workspace_delete_vm_deleted_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(JsonObject) result = NULL;
	GError *error = NULL;

	result = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (result == NULL && !g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND)) {
		g_prefix_error(&error, _("Deleting workspace '%s': "), op->name);
		vmsup_workspace_op_return_error(task, error);
		return;
	}
	g_clear_error(&error);
	vmsup_workspace_delete_finish_record(task, TRUE);
}

static void
vmsup_workspace_delete_vm(GTask *task)
{
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	JsonObject *params = vmsup_workspace_vm_params(op->ws->vm);

	/* the VM was stopped first (gracefully); force only covers a start racing us */
	json_object_set_boolean_member(params, "force", op->force);
	vmsup_workspace_op_vm_call(task, "delete", params, vmsup_workspace_delete_vm_deleted_cb);
}

static void
vmsup_workspace_delete_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(JsonObject) result = NULL;
	GError *error = NULL;

	result = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (result == NULL) {
		g_prefix_error(&error, _("Deleting workspace '%s': "), op->name);
		vmsup_workspace_op_return_error(task, error);
		return;
	}
	vmsup_workspace_delete_vm(task);
}

static void
vmsup_workspace_delete_unshared_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(JsonObject) result = NULL;
	GError *error = NULL;

	result = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (result == NULL && !g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND)) {
		g_prefix_error(&error, _("Deleting workspace '%s': "), op->name);
		vmsup_workspace_op_return_error(task, error);
		return;
	}
	g_clear_error(&error);
	vmsup_workspace_delete_finish_record(task, FALSE);
}

static void
vmsup_workspace_delete_got_vm_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupWorkspaceOp *op = g_task_get_task_data(task);
	g_autoptr(JsonObject) vm = NULL;
	GError *error = NULL;
	const gchar *state;

	vm = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (vm == NULL) {
		if (!g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND)) {
			vmsup_workspace_op_return_error(task, error);
			return;
		}
		g_clear_error(&error);
		vmsup_workspace_delete_finish_record(task, FALSE);
		return;
	}
	/* someone else's VM under the name: not the workspace's to stop, unshare or delete */
	error = vmsup_workspace_op_check_vm_owner(op, vm);
	if (error != NULL) {
		g_clear_error(&error);
		vmsup_workspace_delete_finish_record(task, FALSE);
		return;
	}
	state = vmsup_json_object_get_string(vm, "state", NULL);
	op->running = vmsup_workspace_vm_state_is_running(state);
	if (op->running && !op->force) {
		vmsup_workspace_op_return_error(
		    task,
		    g_error_new(
			VMSUP_ERROR,
			VMSUP_ERROR_FAILED_PRECONDITION,
			_("Workspace '%s' is open (VM '%s' is %s); stop the VM first ('vmsup "
			  "stop %s'), or delete the workspace with force"),
			op->name,
			op->ws->vm,
			state,
			op->ws->vm));
		return;
	}
	if (!op->ws->vm_owned) {
		/* the user's VM stays (running, if it is); it starts next time without the share */
		if (g_strcmp0(vmsup_json_object_get_string(vm, "share_dir", NULL), op->ws->path) !=
		    0) {
			vmsup_workspace_delete_finish_record(task, FALSE);
			return;
		}
		vmsup_workspace_op_set_share(task, NULL, vmsup_workspace_delete_unshared_cb);
		return;
	}
	if (op->running) {
		vmsup_workspace_op_vm_call(task,
					   "stop",
					   vmsup_workspace_vm_params(op->ws->vm),
					   vmsup_workspace_delete_stopped_cb);
		return;
	}
	vmsup_workspace_delete_vm(task);
}

void
vmsup_workspace_service_delete_async(VmsupWorkspaceService *self,
				     const VmsupCaller *caller,
				     JsonObject *params,
				     GCancellable *cancellable,
				     GAsyncReadyCallback callback,
				     gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GError) error = NULL;
	VmsupWorkspaceOp *op;
	VmsupWorkspace *ws;
	const gchar *name;
	gboolean force = FALSE;

	g_return_if_fail(VMSUP_IS_WORKSPACE_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_workspace_service_delete_async);
	/* once the VM is being stopped or deleted, the delete completes */
	g_task_set_check_cancellable(task, FALSE);
	name = vmsup_workspace_get_name_param(params, &error);
	ws = name != NULL ? vmsup_workspace_service_lookup(self, name, &error) : NULL;
	if (ws == NULL ||
	    !vmsup_json_object_get_checked_bool(params, "force", FALSE, &force, &error) ||
	    !vmsup_workspace_service_claim(self, name, N_("deleted"), &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	/* delete only ever takes a share away: no caller to share for */
	op = vmsup_workspace_op_new(self, name, /* caller_uid= */ G_MAXUINT32);
	op->ws = vmsup_workspace_copy(ws);
	op->force = force;
	g_task_set_task_data(task, op, (GDestroyNotify)vmsup_workspace_op_free);
	vmsup_workspace_op_vm_call(g_steal_pointer(&task),
				   "get",
				   vmsup_workspace_vm_params(op->ws->vm),
				   vmsup_workspace_delete_got_vm_cb);
}

JsonObject *
vmsup_workspace_service_delete_finish(VmsupWorkspaceService *self,
				      GAsyncResult *res,
				      GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* workspace.list: every workspace with the state of its VM, asked concurrently */

typedef struct {
	GPtrArray *entries; /* owned, of JsonObject (owned), sorted by name */
	guint pending;
} VmsupWorkspaceList;

typedef struct {
	GTask *task;       /* owned */
	JsonObject *entry; /* unowned: in the list's entries */
} VmsupWorkspaceListItem;

static void
vmsup_workspace_list_free(VmsupWorkspaceList *list)
{
	g_ptr_array_unref(list->entries);
	g_free(list);
}

static void
vmsup_workspace_list_item_done(GTask *task /* owned */)
{
	VmsupWorkspaceList *list = g_task_get_task_data(task);
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonArray) array = NULL;

	if (--list->pending > 0) {
		g_object_unref(task);
		return;
	}
	result = json_object_new();
	array = json_array_new();
	for (guint i = 0; i < list->entries->len; i++)
		json_array_add_object_element(array,
					      json_object_ref(g_ptr_array_index(list->entries, i)));
	json_object_set_array_member(result, "workspaces", g_steal_pointer(&array));
	g_task_return_pointer(task, g_steal_pointer(&result), (GDestroyNotify)json_object_unref);
	g_object_unref(task);
}

static void
vmsup_workspace_list_got_vm_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupWorkspaceListItem *item = user_data;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *vm_state = "unknown";

	vm = vmsup_workspace_hooks_vm_call_finish(res, &error);
	if (vm != NULL)
		vm_state = vmsup_json_object_get_string(vm, "state", "unknown");
	else if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND))
		vm_state = "missing";
	else if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_BUSY))
		vm_state = "busy";
	json_object_set_string_member(item->entry, "vm_state", vm_state);
	json_object_set_string_member(item->entry,
				      "state",
				      vmsup_workspace_vm_state_is_running(vm_state) ? "open"
										    : "closed");
	vmsup_workspace_list_item_done(item->task);
	g_free(item);
}

static gint
vmsup_workspace_compare_names(gconstpointer a, gconstpointer b)
{
	const VmsupWorkspace *ws_a = *(const VmsupWorkspace *const *)a;
	const VmsupWorkspace *ws_b = *(const VmsupWorkspace *const *)b;
	return g_strcmp0(ws_a->name, ws_b->name);
}

void
vmsup_workspace_service_list_async(VmsupWorkspaceService *self,
				   const VmsupCaller *caller,
				   JsonObject *params,
				   GCancellable *cancellable,
				   GAsyncReadyCallback callback,
				   gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GPtrArray) workspaces = NULL;
	VmsupWorkspaceList *list;
	GHashTableIter iter;
	gpointer value;

	g_return_if_fail(VMSUP_IS_WORKSPACE_SERVICE(self));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_workspace_service_list_async);
	workspaces = g_ptr_array_new();
	g_hash_table_iter_init(&iter, self->workspaces);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(workspaces, value);
	g_ptr_array_sort(workspaces, vmsup_workspace_compare_names);

	list = g_new0(VmsupWorkspaceList, 1);
	list->entries = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	/* one for this function, so the answer waits until every query is sent */
	list->pending = 1;
	g_task_set_task_data(task, list, (GDestroyNotify)vmsup_workspace_list_free);
	for (guint i = 0; i < workspaces->len; i++) {
		VmsupWorkspace *ws = g_ptr_array_index(workspaces, i);
		VmsupWorkspaceListItem *item = g_new0(VmsupWorkspaceListItem, 1);
		JsonObject *params_vm = vmsup_workspace_vm_params(ws->vm);

		item->entry = vmsup_workspace_to_result(ws, "closed");
		item->task = g_object_ref(task);
		g_ptr_array_add(list->entries, item->entry);
		list->pending++;
		vmsup_workspace_hooks_vm_call(&self->hooks,
					      "get",
					      vmsup_caller_daemon(),
					      params_vm,
					      cancellable != NULL ? cancellable : self->cancellable,
					      vmsup_workspace_list_got_vm_cb,
					      item);
		json_object_unref(params_vm);
	}
	vmsup_workspace_list_item_done(g_steal_pointer(&task));
}

JsonObject *
vmsup_workspace_service_list_finish(VmsupWorkspaceService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

/* accessors */

const VmsupWorkspaceHooks *
vmsup_workspace_service_get_hooks(VmsupWorkspaceService *self)
{
	g_return_val_if_fail(VMSUP_IS_WORKSPACE_SERVICE(self), NULL);
	return &self->hooks;
}

void
vmsup_workspace_service_set_open_timeout(VmsupWorkspaceService *self, guint seconds)
{
	g_return_if_fail(VMSUP_IS_WORKSPACE_SERVICE(self));
	g_return_if_fail(seconds > 0);
	self->open_timeout_s = seconds;
}

/* GObject */

static void
vmsup_workspace_service_get_property(GObject *object,
				     guint prop_id,
				     GValue *value,
				     GParamSpec *pspec)
{
	VmsupWorkspaceService *self = VMSUP_WORKSPACE_SERVICE(object);
	switch (prop_id) {
	case PROP_STATE_DIR:
		g_value_set_string(value, self->state_dir);
		break;
	case PROP_HOOKS:
		g_value_set_pointer(value, &self->hooks);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_workspace_service_set_property(GObject *object,
				     guint prop_id,
				     const GValue *value,
				     GParamSpec *pspec)
{
	VmsupWorkspaceService *self = VMSUP_WORKSPACE_SERVICE(object);
	const VmsupWorkspaceHooks *hooks;

	switch (prop_id) {
	case PROP_STATE_DIR:
		self->state_dir = g_value_dup_string(value);
		break;
	case PROP_HOOKS:
		hooks = g_value_get_pointer(value);
		if (hooks != NULL)
			vmsup_workspace_hooks_copy(&self->hooks, hooks);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_workspace_service_constructed(GObject *object)
{
	VmsupWorkspaceService *self = VMSUP_WORKSPACE_SERVICE(object);
	g_autofree gchar *dir = NULL;

	G_OBJECT_CLASS(vmsup_workspace_service_parent_class)->constructed(object);
	dir = g_build_filename(self->state_dir, "workspaces", NULL);
	self->records = vmsup_record_store_new(dir,
					       "Workspace record",
					       "workspace",
					       VMSUP_WORKSPACE_MAX_FILE_SIZE);
	vmsup_workspace_service_load(self);
}

static void
vmsup_workspace_service_dispose(GObject *object)
{
	VmsupWorkspaceService *self = VMSUP_WORKSPACE_SERVICE(object);
	g_cancellable_cancel(self->cancellable);
	G_OBJECT_CLASS(vmsup_workspace_service_parent_class)->dispose(object);
}

static void
vmsup_workspace_service_finalize(GObject *object)
{
	VmsupWorkspaceService *self = VMSUP_WORKSPACE_SERVICE(object);

	vmsup_workspace_hooks_clear(&self->hooks);
	g_hash_table_unref(self->workspaces);
	g_hash_table_unref(self->busy);
	g_hash_table_unref(self->creating);
	g_clear_object(&self->cancellable);
	g_free(self->state_dir);
	g_clear_object(&self->records);
	G_OBJECT_CLASS(vmsup_workspace_service_parent_class)->finalize(object);
}

static void
vmsup_workspace_service_class_init(VmsupWorkspaceServiceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->get_property = vmsup_workspace_service_get_property;
	object_class->set_property = vmsup_workspace_service_set_property;
	object_class->constructed = vmsup_workspace_service_constructed;
	object_class->dispose = vmsup_workspace_service_dispose;
	object_class->finalize = vmsup_workspace_service_finalize;

	props[PROP_STATE_DIR] = g_param_spec_string("state-dir",
						    NULL,
						    NULL,
						    NULL,
						    G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
							G_PARAM_STATIC_STRINGS);
	/* a VmsupWorkspaceHooks *, copied (closures referenced) at construction */
	props[PROP_HOOKS] = g_param_spec_pointer("hooks",
						 NULL,
						 NULL,
						 G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
						     G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);

	signals[SIGNAL_ACTIVITY] = g_signal_new("activity",
						G_TYPE_FROM_CLASS(klass),
						G_SIGNAL_RUN_LAST,
						0,
						NULL,
						NULL,
						NULL,
						G_TYPE_NONE,
						2,
						G_TYPE_STRING,
						G_TYPE_STRING);
}

static void
vmsup_workspace_service_init(VmsupWorkspaceService *self)
{
	self->workspaces = g_hash_table_new_full(g_str_hash,
						 g_str_equal,
						 g_free,
						 (GDestroyNotify)vmsup_workspace_free);
	self->busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->creating = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->open_timeout_s = VMSUP_WORKSPACE_OPEN_TIMEOUT_S;
	self->cancellable = g_cancellable_new();
}

VmsupWorkspaceService *
vmsup_workspace_service_new(const gchar *state_dir, const VmsupWorkspaceHooks *hooks)
{
	g_return_val_if_fail(state_dir != NULL, NULL);
	g_return_val_if_fail(hooks != NULL, NULL);
	return g_object_new(VMSUP_TYPE_WORKSPACE_SERVICE,
			    "state-dir",
			    state_dir,
			    "hooks",
			    hooks,
			    NULL);
}
