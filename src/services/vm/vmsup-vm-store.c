/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Persistence of VM definitions and of how each VM's last run ended: one
 * record per VM in a record store each, so a daemon killed at any point
 * leaves either the old or the new record. What makes a stored record valid
 * is checked here (and, for definitions, in the def).
 */

#include "config.h"

#include <sys/wait.h>

#include "vmsup-json.h"
#include "vmsup-record-store.h"
#include "vmsup-vm-store.h"

/* a definition is a few hundred bytes; anything this big is not one */
#define VMSUP_VM_STORE_MAX_FILE_SIZE (1024 * 1024)
/* an outcome is a reason of a line or two (QEMU's last words at most) */
#define VMSUP_VM_STORE_MAX_OUTCOME_SIZE (64 * 1024)
#define VMSUP_VM_STORE_OUTCOME_VERSION 1

struct _VmsupVmStore {
	GObject parent_instance;
	gchar *state_dir;           /* owned */
	VmsupRecordStore *records;  /* owned: <state_dir>/vms */
	VmsupRecordStore *outcomes; /* owned: <state_dir>/last-run */
};

G_DEFINE_FINAL_TYPE(VmsupVmStore, vmsup_vm_store, G_TYPE_OBJECT)

enum { PROP_0, PROP_STATE_DIR, N_PROPS };
static GParamSpec *props[N_PROPS];

static JsonObject *
vmsup_vm_store_serialize(const VmsupVmDef *def)
{
	JsonObject *obj = vmsup_vm_def_to_json(def);
	json_object_set_int_member(obj, "version", 1);
	return obj;
}

const gchar *
vmsup_vm_store_get_dir(VmsupVmStore *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);
	return vmsup_record_store_get_dir(self->records);
}

gchar *
vmsup_vm_store_get_path(VmsupVmStore *self, const gchar *name)
{
	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);
	return vmsup_record_store_get_path(self->records, name);
}

gboolean
vmsup_vm_store_save(VmsupVmStore *self, const VmsupVmDef *def, GError **error)
{
	g_autoptr(JsonObject) obj = NULL;

	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), FALSE);
	g_return_val_if_fail(def != NULL, FALSE);

	obj = vmsup_vm_store_serialize(def);
	return vmsup_record_store_save(self->records, def->name, obj, error);
}

static void
vmsup_vm_store_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;

	if (!vmsup_record_store_save_finish(VMSUP_RECORD_STORE(source), res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/* saves @obj (owned) as @name in @records, completing a task of @self tagged @tag */
static void
vmsup_vm_store_save_record(VmsupVmStore *self,
			   VmsupRecordStore *records,
			   const gchar *name,
			   JsonObject *obj,
			   gpointer tag,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autoptr(JsonObject) owned = obj;

	g_task_set_source_tag(task, tag);
	g_task_set_check_cancellable(task, FALSE);
	vmsup_record_store_save_async(records,
				      name,
				      owned,
				      cancellable,
				      vmsup_vm_store_saved_cb,
				      g_steal_pointer(&task));
}

void
vmsup_vm_store_save_async(VmsupVmStore *self,
			  const VmsupVmDef *def,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_STORE(self));
	g_return_if_fail(def != NULL);

	vmsup_vm_store_save_record(self,
				   self->records,
				   def->name,
				   vmsup_vm_store_serialize(def),
				   vmsup_vm_store_save_async,
				   cancellable,
				   callback,
				   user_data);
}

gboolean
vmsup_vm_store_save_finish(VmsupVmStore *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

gboolean
vmsup_vm_store_remove(VmsupVmStore *self, const gchar *name, GError **error)
{
	g_autoptr(GError) error_outcome = NULL;

	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), FALSE);

	/* the definition first: without it the VM is gone, whatever is left */
	if (!vmsup_record_store_remove(self->records, name, error))
		return FALSE;
	/* a leftover is removed at the next start of the daemon */
	if (!vmsup_record_store_remove(self->outcomes, name, &error_outcome))
		g_warning("%s, ignoring", error_outcome->message);
	return TRUE;
}

/* outcomes of the last run */

VmsupVmOutcome *
vmsup_vm_outcome_new(gboolean crashed, const gchar *reason, gint wait_status)
{
	VmsupVmOutcome *outcome = g_new0(VmsupVmOutcome, 1);
	outcome->crashed = crashed;
	outcome->reason = g_strdup(reason);
	outcome->wait_status = wait_status;
	return outcome;
}

void
vmsup_vm_outcome_free(VmsupVmOutcome *outcome)
{
	if (outcome == NULL)
		return;
	g_free(outcome->reason);
	g_free(outcome);
}

/* the members vm.get shows for the same run, so the file reads like its answer */
static JsonObject *
vmsup_vm_store_serialize_outcome(const gchar *name, const VmsupVmOutcome *outcome)
{
	JsonObject *obj = json_object_new();
	gint status = outcome->wait_status;

	json_object_set_int_member(obj, "version", VMSUP_VM_STORE_OUTCOME_VERSION);
	json_object_set_string_member(obj, "name", name);
	json_object_set_string_member(obj, "state", outcome->crashed ? "crashed" : "stopped");
	if (outcome->reason != NULL)
		json_object_set_string_member(obj, "exit_reason", outcome->reason);
	if (status >= 0 && WIFEXITED(status))
		json_object_set_int_member(obj, "exit_status", WEXITSTATUS(status));
	else if (status >= 0 && WIFSIGNALED(status))
		json_object_set_int_member(obj, "exit_signal", WTERMSIG(status));
	if (outcome->stopped_at > 0) {
		g_autofree gchar *when = vmsup_vm_def_format_time(outcome->stopped_at);
		json_object_set_string_member(obj, "stopped_at", when);
	}
	if (outcome->pid > 0)
		json_object_set_int_member(obj, "pid", outcome->pid);
	if (outcome->agent_seen)
		json_object_set_boolean_member(obj, "agent_seen", TRUE);
	return obj;
}

/* a string member, NULL when absent; anything else present is an error */
static gboolean
vmsup_vm_store_get_string(JsonObject *obj,
			  const gchar *member,
			  const gchar **out_value,
			  GError **error)
{
	JsonNode *node = json_object_get_member(obj, member);

	*out_value = NULL;
	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return TRUE;
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
		g_set_error(error,
			    G_FILE_ERROR,
			    G_FILE_ERROR_INVAL,
			    "\"%s\" must be a string, got %s",
			    member,
			    vmsup_json_node_type_name(node));
		return FALSE;
	}
	*out_value = json_node_get_string(node);
	return TRUE;
}

/* the plain-English reason a record is rejected (logs only) is returned in @error */
static VmsupVmOutcome *
vmsup_vm_store_parse_outcome(const gchar *name, JsonObject *obj, GError **error)
{
	g_autoptr(VmsupVmOutcome) outcome = NULL;
	const gchar *record_name = NULL;
	const gchar *state = NULL;
	const gchar *reason = NULL;
	const gchar *stopped_at = NULL;
	gint64 version = 0;
	gint64 exit_status = -1;
	gint64 exit_signal = -1;
	gint64 pid = 0;
	gboolean agent_seen = FALSE;

	if (!vmsup_json_object_get_int_in_range(obj,
						"version",
						G_MININT64,
						G_MAXINT64,
						VMSUP_VM_STORE_OUTCOME_VERSION,
						&version,
						error) ||
	    !vmsup_vm_store_get_string(obj, "name", &record_name, error) ||
	    !vmsup_vm_store_get_string(obj, "state", &state, error) ||
	    !vmsup_vm_store_get_string(obj, "exit_reason", &reason, error) ||
	    !vmsup_vm_store_get_string(obj, "stopped_at", &stopped_at, error) ||
	    !vmsup_json_object_get_int_in_range(obj,
						"exit_status",
						0,
						255,
						-1,
						&exit_status,
						error) ||
	    !vmsup_json_object_get_int_in_range(obj,
						"exit_signal",
						1,
						127,
						-1,
						&exit_signal,
						error) ||
	    !vmsup_json_object_get_int_in_range(obj, "pid", 1, G_MAXINT32, 0, &pid, error) ||
	    !vmsup_json_object_get_checked_bool(obj, "agent_seen", FALSE, &agent_seen, error))
		return NULL;
	if (version != VMSUP_VM_STORE_OUTCOME_VERSION) {
		g_set_error(error,
			    G_FILE_ERROR,
			    G_FILE_ERROR_INVAL,
			    "unsupported version %" G_GINT64_FORMAT,
			    version);
		return NULL;
	}
	if (g_strcmp0(record_name, name) != 0) {
		g_set_error(error,
			    G_FILE_ERROR,
			    G_FILE_ERROR_INVAL,
			    "it describes VM '%s', not '%s'",
			    record_name != NULL ? record_name : "(none)",
			    name);
		return NULL;
	}
	if (g_strcmp0(state, "stopped") != 0 && g_strcmp0(state, "crashed") != 0) {
		g_set_error(error,
			    G_FILE_ERROR,
			    G_FILE_ERROR_INVAL,
			    "\"state\" must be \"stopped\" or \"crashed\", got %s%s%s",
			    state != NULL ? "\"" : "",
			    state != NULL ? state : "nothing",
			    state != NULL ? "\"" : "");
		return NULL;
	}
	if (exit_status >= 0 && exit_signal >= 0) {
		g_set_error_literal(error,
				    G_FILE_ERROR,
				    G_FILE_ERROR_INVAL,
				    "both \"exit_status\" and \"exit_signal\" are set");
		return NULL;
	}
	/* back to what waitpid() gave: the status in the second byte, the signal in the first */
	outcome = vmsup_vm_outcome_new(g_strcmp0(state, "crashed") == 0,
				       reason,
				       exit_status >= 0   ? (gint)exit_status << 8
				       : exit_signal >= 0 ? (gint)exit_signal
							  : -1);
	if (stopped_at != NULL) {
		g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(stopped_at, NULL);
		if (dt == NULL) {
			g_set_error(error,
				    G_FILE_ERROR,
				    G_FILE_ERROR_INVAL,
				    "\"stopped_at\" is not an ISO 8601 time: %s",
				    stopped_at);
			return NULL;
		}
		outcome->stopped_at = g_date_time_to_unix(dt);
	}
	outcome->pid = pid;
	outcome->agent_seen = agent_seen;
	return g_steal_pointer(&outcome);
}

gchar *
vmsup_vm_store_get_outcome_path(VmsupVmStore *self, const gchar *name)
{
	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);
	return vmsup_record_store_get_path(self->outcomes, name);
}

GHashTable *
vmsup_vm_store_load_outcomes(VmsupVmStore *self, GError **error)
{
	g_autoptr(GHashTable) outcomes =
	    g_hash_table_new_full(g_str_hash,
				  g_str_equal,
				  g_free,
				  (GDestroyNotify)vmsup_vm_outcome_free);
	g_autoptr(GHashTable) records = NULL;
	GHashTableIter iter;
	gpointer name;
	gpointer obj;

	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);

	records = vmsup_record_store_load_all(self->outcomes, error);
	if (records == NULL)
		return NULL;
	g_hash_table_iter_init(&iter, records);
	while (g_hash_table_iter_next(&iter, &name, &obj)) {
		g_autoptr(GError) error_parse = NULL;
		VmsupVmOutcome *outcome = vmsup_vm_store_parse_outcome(name, obj, &error_parse);

		if (outcome == NULL) {
			vmsup_record_store_set_aside(self->outcomes, name, error_parse->message);
			continue;
		}
		g_hash_table_replace(outcomes, g_strdup(name), outcome);
	}
	return g_steal_pointer(&outcomes);
}

gboolean
vmsup_vm_store_save_outcome(VmsupVmStore *self,
			    const gchar *name,
			    const VmsupVmOutcome *outcome,
			    GError **error)
{
	g_autoptr(JsonObject) obj = NULL;

	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), FALSE);
	g_return_val_if_fail(name != NULL, FALSE);
	g_return_val_if_fail(outcome != NULL, FALSE);

	obj = vmsup_vm_store_serialize_outcome(name, outcome);
	return vmsup_record_store_save(self->outcomes, name, obj, error);
}

void
vmsup_vm_store_save_outcome_async(VmsupVmStore *self,
				  const gchar *name,
				  const VmsupVmOutcome *outcome,
				  GCancellable *cancellable,
				  GAsyncReadyCallback callback,
				  gpointer user_data)
{
	g_return_if_fail(VMSUP_IS_VM_STORE(self));
	g_return_if_fail(name != NULL);
	g_return_if_fail(outcome != NULL);

	vmsup_vm_store_save_record(self,
				   self->outcomes,
				   name,
				   vmsup_vm_store_serialize_outcome(name, outcome),
				   vmsup_vm_store_save_outcome_async,
				   cancellable,
				   callback,
				   user_data);
}

/* the same task as vmsup_vm_store_save_async()'s */
gboolean
vmsup_vm_store_save_outcome_finish(VmsupVmStore *self, GAsyncResult *res, GError **error)
{
	return vmsup_vm_store_save_finish(self, res, error);
}

gboolean
vmsup_vm_store_remove_outcome(VmsupVmStore *self, const gchar *name, GError **error)
{
	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), FALSE);
	return vmsup_record_store_remove(self->outcomes, name, error);
}

static gint
vmsup_vm_store_compare_defs(gconstpointer a, gconstpointer b)
{
	const VmsupVmDef *def_a = *(const VmsupVmDef *const *)a;
	const VmsupVmDef *def_b = *(const VmsupVmDef *const *)b;
	return g_strcmp0(def_a->name, def_b->name);
}

GPtrArray *
vmsup_vm_store_load_all(VmsupVmStore *self, GError **error)
{
	g_autoptr(GPtrArray) defs =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_vm_def_free);
	g_autoptr(GHashTable) records = NULL;
	GHashTableIter iter;
	gpointer name;
	gpointer obj;

	g_return_val_if_fail(VMSUP_IS_VM_STORE(self), NULL);

	records = vmsup_record_store_load_all(self->records, error);
	if (records == NULL)
		return NULL;
	g_hash_table_iter_init(&iter, records);
	while (g_hash_table_iter_next(&iter, &name, &obj)) {
		g_autoptr(GError) error_def = NULL;
		g_autoptr(VmsupVmDef) def = vmsup_vm_def_new_from_json(obj, &error_def);

		if (def != NULL && g_strcmp0(def->name, name) != 0) {
			g_set_error(&error_def,
				    G_FILE_ERROR,
				    G_FILE_ERROR_INVAL,
				    "it defines VM '%s', not '%s'",
				    def->name,
				    (const gchar *)name);
			g_clear_pointer(&def, vmsup_vm_def_free);
		}
		if (def == NULL) {
			vmsup_record_store_set_aside(self->records, name, error_def->message);
			continue;
		}
		g_ptr_array_add(defs, g_steal_pointer(&def));
	}
	g_ptr_array_sort(defs, vmsup_vm_store_compare_defs);
	return g_steal_pointer(&defs);
}

static void
vmsup_vm_store_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	VmsupVmStore *self = VMSUP_VM_STORE(object);
	switch (prop_id) {
	case PROP_STATE_DIR:
		g_value_set_string(value, self->state_dir);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_vm_store_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
	VmsupVmStore *self = VMSUP_VM_STORE(object);
	switch (prop_id) {
	case PROP_STATE_DIR:
		self->state_dir = g_value_dup_string(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_vm_store_constructed(GObject *object)
{
	VmsupVmStore *self = VMSUP_VM_STORE(object);
	g_autofree gchar *dir = NULL;
	g_autofree gchar *outcome_dir = NULL;

	G_OBJECT_CLASS(vmsup_vm_store_parent_class)->constructed(object);
	dir = g_build_filename(self->state_dir, "vms", NULL);
	self->records =
	    vmsup_record_store_new(dir, "Definition file", "VM", VMSUP_VM_STORE_MAX_FILE_SIZE);
	/* a directory of its own: <name>.json there never reads as a definition */
	outcome_dir = g_build_filename(self->state_dir, "last-run", NULL);
	self->outcomes = vmsup_record_store_new(outcome_dir,
						"Last-run file",
						"VM",
						VMSUP_VM_STORE_MAX_OUTCOME_SIZE);
}

static void
vmsup_vm_store_finalize(GObject *object)
{
	VmsupVmStore *self = VMSUP_VM_STORE(object);
	g_free(self->state_dir);
	g_clear_object(&self->records);
	g_clear_object(&self->outcomes);
	G_OBJECT_CLASS(vmsup_vm_store_parent_class)->finalize(object);
}

static void
vmsup_vm_store_class_init(VmsupVmStoreClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->get_property = vmsup_vm_store_get_property;
	object_class->set_property = vmsup_vm_store_set_property;
	object_class->constructed = vmsup_vm_store_constructed;
	object_class->finalize = vmsup_vm_store_finalize;

	props[PROP_STATE_DIR] = g_param_spec_string("state-dir",
						    NULL,
						    NULL,
						    NULL,
						    G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
							G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
vmsup_vm_store_init(VmsupVmStore *self)
{
}

VmsupVmStore *
vmsup_vm_store_new(const gchar *state_dir)
{
	g_return_val_if_fail(state_dir != NULL, NULL);
	return g_object_new(VMSUP_TYPE_VM_STORE, "state-dir", state_dir, NULL);
}
