/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one dispatch table behind both transports: every contract method with
 * its D-Bus twin, its parameter schema (checked before any handler runs) and
 * a handler that forwards to a service.
 */

#include "config.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-name.h"
#include "vmsup-rpc-table.h"
#include "vmsup-vm-def.h"

/* schemas */

#define P_REQ(n, t)                                                                                \
	{                                                                                          \
		(n), VMSUP_RPC_TYPE_##t, TRUE, 0, 0, NULL                                          \
	}
#define P_OPT(n, t)                                                                                \
	{                                                                                          \
		(n), VMSUP_RPC_TYPE_##t, FALSE, 0, 0, NULL                                         \
	}
#define P_RANGE(n, t, lo, hi)                                                                      \
	{                                                                                          \
		(n), VMSUP_RPC_TYPE_##t, FALSE, (lo), (hi), NULL                                   \
	}
#define P_CHOICES(n, t, choices)                                                                   \
	{                                                                                          \
		(n), VMSUP_RPC_TYPE_##t, FALSE, 0, 0, (choices)                                    \
	}
#define P_END                                                                                      \
	{                                                                                          \
		NULL, 0, FALSE, 0, 0, NULL                                                         \
	}

/* the service's own limits, so a value the table lets through is one the service takes */
#define VMSUP_RPC_MAX_CPUS VMSUP_VM_DEF_MAX_CPUS
#define VMSUP_RPC_MIN_MEMORY_MIB VMSUP_VM_DEF_MIN_MEMORY_MIB
#define VMSUP_RPC_MAX_MEMORY_MIB VMSUP_VM_DEF_MAX_MEMORY_MIB
#define VMSUP_RPC_MAX_DISK_GIB VMSUP_VM_DEF_MAX_DISK_GIB
#define VMSUP_RPC_MAX_TIMEOUT_S 3600
#define VMSUP_RPC_MAX_CPU_QUOTA_PERCENT VMSUP_VM_DEF_MAX_CPU_QUOTA_PERCENT
#define VMSUP_RPC_MAX_MEMORY_MAX_MIB VMSUP_VM_DEF_MAX_MEMORY_MAX_MIB

static const VmsupRpcParam params_none[] = {P_END};

static const VmsupRpcParam params_name[] = {P_REQ("name", STRING), P_END};

static const VmsupRpcParam params_id[] = {
    {"id", VMSUP_RPC_TYPE_INT, TRUE, 1, G_MAXINT64, NULL},
    P_END,
};

/* "fields": the members of a vm.get result each VM is to have (all without it) */
static const VmsupRpcParam params_vm_list[] = {
    P_CHOICES("fields", STRV, vmsup_vm_service_get_member_names),
    P_END,
};

static const VmsupRpcParam params_vm_create[] = {
    P_REQ("name", STRING),
    P_RANGE("cpus", INT, 1, VMSUP_RPC_MAX_CPUS),
    P_RANGE("memory_mib", INT, VMSUP_RPC_MIN_MEMORY_MIB, VMSUP_RPC_MAX_MEMORY_MIB),
    P_OPT("kernel", STRING),
    P_OPT("initrd", STRING),
    P_OPT("cmdline", STRING),
    P_OPT("image", STRING),
    P_RANGE("disk_gib", INT, 1, VMSUP_RPC_MAX_DISK_GIB),
    P_RANGE("forward", INT_ARRAY, 1, 65535),
    P_OPT("auto_stop", BOOL),
    P_OPT("autostart", BOOL),
    P_RANGE("cpu_quota_percent", INT, 0, VMSUP_RPC_MAX_CPU_QUOTA_PERCENT),
    P_RANGE("memory_max_mib", INT, 0, VMSUP_RPC_MAX_MEMORY_MAX_MIB),
    P_OPT("start", BOOL),
    P_OPT("wait", BOOL),
    P_END,
};

static const VmsupRpcParam params_vm_stop[] = {
    P_REQ("name", STRING),
    P_OPT("force", BOOL),
    P_RANGE("timeout_s", INT, 0, VMSUP_RPC_MAX_TIMEOUT_S),
    P_END,
};

static const VmsupRpcParam params_vm_delete[] = {
    P_REQ("name", STRING),
    P_OPT("force", BOOL),
    P_END,
};

/* what can change after creation; kernel, initrd and image cannot */
static const VmsupRpcParam params_vm_set[] = {
    P_REQ("name", STRING),
    P_RANGE("cpus", INT, 1, VMSUP_RPC_MAX_CPUS),
    P_RANGE("memory_mib", INT, VMSUP_RPC_MIN_MEMORY_MIB, VMSUP_RPC_MAX_MEMORY_MIB),
    P_OPT("cmdline", STRING),
    P_RANGE("forward", INT_ARRAY, 1, 65535),
    P_OPT("auto_stop", BOOL),
    P_OPT("autostart", BOOL),
    P_RANGE("cpu_quota_percent", INT, 0, VMSUP_RPC_MAX_CPU_QUOTA_PERCENT),
    P_RANGE("memory_max_mib", INT, 0, VMSUP_RPC_MAX_MEMORY_MAX_MIB),
    P_END,
};

static const VmsupRpcParam params_vm_exec[] = {
    P_REQ("name", STRING),
    P_REQ("argv", STRV),
    P_OPT("stdin", STRING),
    P_RANGE("timeout_s", INT, 1, VMSUP_RPC_MAX_TIMEOUT_S),
    P_END,
};

static const VmsupRpcParam params_workspace_create[] = {
    P_REQ("name", STRING),
    P_REQ("path", STRING),
    P_OPT("vm", STRING),
    P_RANGE("cpus", INT, 1, VMSUP_RPC_MAX_CPUS),
    P_RANGE("memory_mib", INT, VMSUP_RPC_MIN_MEMORY_MIB, VMSUP_RPC_MAX_MEMORY_MIB),
    P_END,
};

static const VmsupRpcParam params_workspace_delete[] = {
    P_REQ("name", STRING),
    P_OPT("force", BOOL),
    P_END,
};

/* handlers */

static void
vmsup_rpc_return_unavailable(VmsupRpcCall *call, const gchar *message)
{
	g_autoptr(GError) error =
	    g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION, message);
	vmsup_rpc_call_return_error(call, error);
}

static const gchar *
vmsup_rpc_vm_service_unavailable(void)
{
	return _("The VM service is not available in this vmsupd");
}

static const gchar *
vmsup_rpc_stats_service_unavailable(void)
{
	return _("Statistics and guest access are not available in this vmsupd");
}

static const gchar *
vmsup_rpc_workspace_service_unavailable(void)
{
	return _("Workspaces are not available in this vmsupd");
}

static void
vmsup_rpc_return_result(VmsupRpcCall *call, JsonObject *result, GError *error)
{
	if (result == NULL) {
		if (error == NULL) {
			g_autoptr(GError) error_local =
			    g_error_new(VMSUP_ERROR,
					VMSUP_ERROR_INTERNAL,
					"%s finished without a result",
					vmsup_rpc_call_get_method(call)->rpc_name);
			vmsup_rpc_call_return_error(call, error_local);
			return;
		}
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	vmsup_rpc_call_return_object(call, result);
}

/*
 * Every service verb has the same shape, so one macro writes the handler and
 * its callback; the D-Bus and JSON-RPC transports both land here.
 */
#define VMSUP_RPC_DEFINE_VERB_CB(handler, TYPE_CAST, verb)                                         \
	static void handler##_cb(GObject *source, GAsyncResult *res, gpointer user_data)           \
	{                                                                                          \
		g_autoptr(VmsupRpcCall) call = user_data;                                          \
		g_autoptr(GError) error = NULL;                                                    \
		JsonObject *result = verb##_finish(TYPE_CAST(source), res, &error);                \
		vmsup_rpc_return_result(call, result, error);                                      \
	}
#define VMSUP_RPC_DEFINE_VERB_HANDLER(handler, field, verb, what)                                  \
	static void handler(const VmsupRpcContext *ctx, VmsupRpcCall *call)                        \
	{                                                                                          \
		if (ctx->field == NULL) {                                                          \
			vmsup_rpc_return_unavailable(call, what);                                  \
			return;                                                                    \
		}                                                                                  \
		verb##_async(ctx->field,                                                           \
			     vmsup_rpc_call_get_params(call),                                      \
			     /* cancellable= */ NULL,                                              \
			     handler##_cb,                                                         \
			     vmsup_rpc_call_ref(call));                                            \
	}
#define VMSUP_RPC_DEFINE_VERB(handler, TYPE_CAST, field, verb, what)                               \
	VMSUP_RPC_DEFINE_VERB_CB(handler, TYPE_CAST, verb)                                         \
	VMSUP_RPC_DEFINE_VERB_HANDLER(handler, field, verb, what)

/* who owns an entry of a list (a VM, an operation, a workspace); FALSE: nobody known */
typedef gboolean (*VmsupRpcOwnerFunc)(GObject *service, JsonObject *entry, guint32 *out_uid);

static gboolean
vmsup_rpc_vm_owner(GObject *service, JsonObject *entry, guint32 *out_uid)
{
	const gchar *name = vmsup_json_object_get_string(entry, "name", NULL);
	return vmsup_vm_service_get_owner(VMSUP_VM_SERVICE(service), name, out_uid);
}

static gboolean
vmsup_rpc_op_owner(GObject *service, JsonObject *entry, guint32 *out_uid)
{
	gint64 id = vmsup_json_object_get_int(entry, "id", 0);
	return vmsup_vm_service_get_op_owner(VMSUP_VM_SERVICE(service), id, out_uid);
}

static gboolean
vmsup_rpc_workspace_owner(GObject *service, JsonObject *entry, guint32 *out_uid)
{
	const gchar *name = vmsup_json_object_get_string(entry, "name", NULL);
	return vmsup_workspace_service_get_owner(VMSUP_WORKSPACE_SERVICE(service), name, out_uid);
}

/* a caller bound by the owner rule sees only its own entries of @result's list @member */
static void
vmsup_rpc_keep_own(JsonObject *result,
		   const gchar *member,
		   GObject *service,
		   VmsupRpcOwnerFunc owner_of,
		   guint32 uid)
{
	JsonNode *list = json_object_get_member(result, member);
	JsonArray *array;

	if (!vmsup_vm_def_uid_is_restricted(uid) || list == NULL || !JSON_NODE_HOLDS_ARRAY(list))
		return;
	array = json_node_get_array(list);
	for (guint i = json_array_get_length(array); i-- > 0;) {
		JsonNode *node = json_array_get_element(array, i);
		guint32 owner = 0;

		if (!JSON_NODE_HOLDS_OBJECT(node) ||
		    !owner_of(service, json_node_get_object(node), &owner) || owner != uid)
			json_array_remove_element(array, i);
	}
}

/* a list verb: the answer keeps only what the caller may see */
#define VMSUP_RPC_DEFINE_LIST_VERB(handler, TYPE_CAST, field, verb, what, member, owner_of)        \
	static void handler##_cb(GObject *source, GAsyncResult *res, gpointer user_data)           \
	{                                                                                          \
		g_autoptr(VmsupRpcCall) call = user_data;                                          \
		g_autoptr(GError) error = NULL;                                                    \
		JsonObject *result = verb##_finish(TYPE_CAST(source), res, &error);                \
		if (result != NULL)                                                                \
			vmsup_rpc_keep_own(result,                                                 \
					   member,                                                 \
					   source,                                                 \
					   owner_of,                                               \
					   vmsup_rpc_call_get_uid(call));                          \
		vmsup_rpc_return_result(call, result, error);                                      \
	}                                                                                          \
	VMSUP_RPC_DEFINE_VERB_HANDLER(handler, field, verb, what)

/*
 * A verb that acts for the client (it shares a host directory on its
 * behalf) also gets the caller's uid, which only the transport knows
 * (SO_PEERCRED, or the D-Bus sender polkit was asked about): it is a
 * parameter of its own, never a member of params, so no client can set it.
 */
#define VMSUP_RPC_DEFINE_CALLER_VERB(handler, TYPE_CAST, field, verb, what)                        \
	VMSUP_RPC_DEFINE_VERB_CB(handler, TYPE_CAST, verb)                                         \
	static void handler(const VmsupRpcContext *ctx, VmsupRpcCall *call)                        \
	{                                                                                          \
		if (ctx->field == NULL) {                                                          \
			vmsup_rpc_return_unavailable(call, what);                                  \
			return;                                                                    \
		}                                                                                  \
		verb##_async(ctx->field,                                                           \
			     vmsup_rpc_call_get_params(call),                                      \
			     vmsup_rpc_call_get_uid(call),                                         \
			     /* cancellable= */ NULL,                                              \
			     handler##_cb,                                                         \
			     vmsup_rpc_call_ref(call));                                            \
	}

#define VM_VERB(handler, verb)                                                                     \
	VMSUP_RPC_DEFINE_VERB(handler,                                                             \
			      VMSUP_VM_SERVICE,                                                    \
			      vm_service,                                                          \
			      vmsup_vm_service_##verb,                                             \
			      vmsup_rpc_vm_service_unavailable())
#define STATS_VERB(handler, verb)                                                                  \
	VMSUP_RPC_DEFINE_VERB(handler,                                                             \
			      VMSUP_STATS_SERVICE,                                                 \
			      stats_service,                                                       \
			      vmsup_stats_service_##verb,                                          \
			      vmsup_rpc_stats_service_unavailable())
#define WORKSPACE_VERB(handler, verb)                                                              \
	VMSUP_RPC_DEFINE_VERB(handler,                                                             \
			      VMSUP_WORKSPACE_SERVICE,                                             \
			      workspace_service,                                                   \
			      vmsup_workspace_service_##verb,                                      \
			      vmsup_rpc_workspace_service_unavailable())

/*
 * vm.create and vm.set act for the client as well: QEMU and qemu-img read
 * the files they name, as root in system mode. VMService's verbs share one
 * signature with the workspace hooks, so the caller's uid reaches them as
 * the internal request member VMSUP_VM_DEF_CALLER_UID, added here to a copy
 * of the validated params; the schemas accept no such member from clients.
 */
static JsonObject *
vmsup_rpc_params_with_caller(VmsupRpcCall *call)
{
	JsonObject *params = vmsup_rpc_call_get_params(call);
	g_autoptr(JsonObject) copy = json_object_new();
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;

	json_object_iter_init_ordered(&iter, params);
	while (json_object_iter_next_ordered(&iter, &member, &node))
		json_object_set_member(copy, member, json_node_copy(node));
	json_object_set_int_member(copy, VMSUP_VM_DEF_CALLER_UID, vmsup_rpc_call_get_uid(call));
	return g_steal_pointer(&copy);
}

#define VM_CALLER_VERB(handler, verb)                                                              \
	VMSUP_RPC_DEFINE_VERB_CB(handler, VMSUP_VM_SERVICE, vmsup_vm_service_##verb)               \
	static void handler(const VmsupRpcContext *ctx, VmsupRpcCall *call)                        \
	{                                                                                          \
		g_autoptr(JsonObject) params = NULL;                                               \
		if (ctx->vm_service == NULL) {                                                     \
			vmsup_rpc_return_unavailable(call, vmsup_rpc_vm_service_unavailable());    \
			return;                                                                    \
		}                                                                                  \
		params = vmsup_rpc_params_with_caller(call);                                       \
		vmsup_vm_service_##verb##_async(ctx->vm_service,                                   \
						params,                                            \
						/* cancellable= */ NULL,                           \
						handler##_cb,                                      \
						vmsup_rpc_call_ref(call));                         \
	}

VM_CALLER_VERB(vmsup_rpc_vm_create, create)
VM_VERB(vmsup_rpc_vm_start, start)
VM_VERB(vmsup_rpc_vm_stop, stop)
VM_VERB(vmsup_rpc_vm_delete, delete)
VM_CALLER_VERB(vmsup_rpc_vm_set, set)
VM_VERB(vmsup_rpc_op_get, op_get)
VMSUP_RPC_DEFINE_LIST_VERB(vmsup_rpc_op_list,
			   VMSUP_VM_SERVICE,
			   vm_service,
			   vmsup_vm_service_op_list,
			   vmsup_rpc_vm_service_unavailable(),
			   "operations",
			   vmsup_rpc_op_owner)
VM_VERB(vmsup_rpc_op_cancel, op_cancel)
STATS_VERB(vmsup_rpc_vm_stats, stats)
STATS_VERB(vmsup_rpc_vm_health, health)
STATS_VERB(vmsup_rpc_vm_ping, ping)
STATS_VERB(vmsup_rpc_vm_ports, ports)
#define WORKSPACE_CALLER_VERB(handler, verb)                                                       \
	VMSUP_RPC_DEFINE_CALLER_VERB(handler,                                                      \
				     VMSUP_WORKSPACE_SERVICE,                                      \
				     workspace_service,                                            \
				     vmsup_workspace_service_##verb,                               \
				     vmsup_rpc_workspace_service_unavailable())

VMSUP_RPC_DEFINE_LIST_VERB(vmsup_rpc_workspace_list,
			   VMSUP_WORKSPACE_SERVICE,
			   workspace_service,
			   vmsup_workspace_service_list,
			   vmsup_rpc_workspace_service_unavailable(),
			   "workspaces",
			   vmsup_rpc_workspace_owner)
WORKSPACE_VERB(vmsup_rpc_workspace_delete, delete)
WORKSPACE_CALLER_VERB(vmsup_rpc_workspace_open, open)
STATS_VERB(vmsup_rpc_vm_exec_forward, exec)
WORKSPACE_CALLER_VERB(vmsup_rpc_workspace_create_forward, create)

static void
vmsup_rpc_vm_exec(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	JsonArray *argv = json_object_get_array_member(vmsup_rpc_call_get_params(call), "argv");
	if (json_array_get_length(argv) == 0 || json_array_get_string_element(argv, 0)[0] == '\0') {
		g_autoptr(GError) error = g_error_new_literal(
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("Parameter 'argv' of vm.exec needs at least the program to run"));
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	vmsup_rpc_vm_exec_forward(ctx, call);
}

static void
vmsup_rpc_workspace_create(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	JsonObject *params = vmsup_rpc_call_get_params(call);
	const gchar *vm = vmsup_json_object_get_string(params, "vm", NULL);
	g_autoptr(GError) error = NULL;

	if (vm != NULL && !vmsup_name_validate(vm, "VM", &error)) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	vmsup_rpc_workspace_create_forward(ctx, call);
}

/* whether vm.list's @fields (NULL: every member) names @member */
static gboolean
vmsup_rpc_fields_contain(JsonArray *fields, const gchar *member)
{
	if (fields == NULL)
		return TRUE;
	for (guint i = 0; i < json_array_get_length(fields); i++) {
		if (g_strcmp0(json_array_get_string_element(fields, i), member) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean
vmsup_rpc_fields_want_activity(JsonArray *fields)
{
	for (const VmsupVmMember *m = vmsup_vm_service_get_members(); m->name != NULL; m++) {
		if (m->source == VMSUP_VM_MEMBER_ACTIVITY &&
		    vmsup_rpc_fields_contain(fields, m->name))
			return TRUE;
	}
	return FALSE;
}

/*
 * vm.get and vm.list answer what VMService knows plus, when the stats service
 * runs, each VM's activity (only the members in @fields, NULL: all); the
 * merge happens here because no service holds a sibling. Both answer at
 * once: nothing here waits for a lock or QEMU.
 */
static void
vmsup_rpc_merge_activity(VmsupStatsService *stats_service, JsonObject *vm, JsonArray *fields)
{
	const gchar *name = vmsup_json_object_get_string(vm, "name", NULL);
	g_autoptr(JsonObject) activity = NULL;
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;

	if (stats_service == NULL || name == NULL)
		return;
	activity = vmsup_stats_service_describe_activity(stats_service, name);
	if (activity == NULL)
		return;
	json_object_iter_init_ordered(&iter, activity);
	while (json_object_iter_next_ordered(&iter, &member, &node)) {
		if (json_object_has_member(vm, member) || !vmsup_rpc_fields_contain(fields, member))
			continue;
		json_object_set_member(vm, member, json_node_ref(node));
	}
}

static void
vmsup_rpc_vm_get(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	g_autoptr(GError) error = NULL;
	JsonObject *result;

	if (ctx->vm_service == NULL) {
		vmsup_rpc_return_unavailable(call, vmsup_rpc_vm_service_unavailable());
		return;
	}
	result = vmsup_vm_service_get(ctx->vm_service, vmsup_rpc_call_get_params(call), &error);
	if (result != NULL)
		vmsup_rpc_merge_activity(ctx->stats_service, result, /* fields= */ NULL);
	vmsup_rpc_return_result(call, result, error);
}

static void
vmsup_rpc_vm_list(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) params_with_name = NULL;
	JsonObject *params = vmsup_rpc_call_get_params(call);
	JsonNode *fields_node = json_object_get_member(params, "fields");
	JsonArray *fields = NULL;
	gboolean activity;
	gboolean restricted = vmsup_vm_def_uid_is_restricted(vmsup_rpc_call_get_uid(call));
	gboolean drop_name;
	JsonObject *result;
	JsonArray *vms;

	if (ctx->vm_service == NULL) {
		vmsup_rpc_return_unavailable(call, vmsup_rpc_vm_service_unavailable());
		return;
	}
	/* the schema let through an array of member names, or null */
	if (fields_node != NULL && JSON_NODE_HOLDS_ARRAY(fields_node))
		fields = json_node_get_array(fields_node);
	activity = ctx->stats_service != NULL && vmsup_rpc_fields_want_activity(fields);
	/* the activity and the owner are found by the name: ask for it too, and drop it again */
	drop_name = (activity || restricted) && !vmsup_rpc_fields_contain(fields, "name");
	if (drop_name) {
		g_autoptr(JsonArray) fields_with_name = json_array_new();
		for (guint i = 0; i < json_array_get_length(fields); i++)
			json_array_add_string_element(fields_with_name,
						      json_array_get_string_element(fields, i));
		json_array_add_string_element(fields_with_name, "name");
		params_with_name = json_object_new();
		json_object_set_array_member(params_with_name,
					     "fields",
					     g_steal_pointer(&fields_with_name));
		params = params_with_name;
	}
	result = vmsup_vm_service_list(ctx->vm_service, params, &error);
	if (result != NULL)
		vmsup_rpc_keep_own(result,
				   "vms",
				   G_OBJECT(ctx->vm_service),
				   vmsup_rpc_vm_owner,
				   vmsup_rpc_call_get_uid(call));
	if (result != NULL && (activity || drop_name) && json_object_has_member(result, "vms") &&
	    JSON_NODE_HOLDS_ARRAY(json_object_get_member(result, "vms"))) {
		vms = json_object_get_array_member(result, "vms");
		for (guint i = 0; i < json_array_get_length(vms); i++) {
			JsonNode *node = json_array_get_element(vms, i);
			if (!JSON_NODE_HOLDS_OBJECT(node))
				continue;
			if (activity)
				vmsup_rpc_merge_activity(ctx->stats_service,
							 json_node_get_object(node),
							 fields);
			if (drop_name)
				json_object_remove_member(json_node_get_object(node), "name");
		}
	}
	vmsup_rpc_return_result(call, result, error);
}

static void
vmsup_rpc_daemon_info(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	g_autoptr(JsonObject) result = json_object_new();
	g_autoptr(JsonArray) methods = json_array_new();
	g_autoptr(GDateTime) started = NULL;
	gint64 now = g_get_real_time();

	json_object_set_string_member(result, "version", PACKAGE_VERSION);
	json_object_set_string_member(result, "mode", ctx->mode != NULL ? ctx->mode : "session");
	if (ctx->socket_path != NULL)
		json_object_set_string_member(result, "socket", ctx->socket_path);
	json_object_set_int_member(result, "pid", getpid());
	json_object_set_int_member(result, "uid", getuid());
	if (ctx->started_at > 0) {
		started = g_date_time_new_from_unix_utc(ctx->started_at / G_USEC_PER_SEC);
		if (started != NULL) {
			g_autofree gchar *iso = g_date_time_format_iso8601(started);
			json_object_set_string_member(result, "started", iso);
		}
		json_object_set_int_member(result,
					   "uptime_s",
					   MAX(0, now - ctx->started_at) / G_USEC_PER_SEC);
	}
	if (ctx->vm_service != NULL) {
		const gchar *reason = NULL;
		VmsupAccel accel = vmsup_vm_service_get_accel(ctx->vm_service, &reason);
		json_object_set_string_member(result, "accel", vmsup_accel_to_string(accel));
		if (reason != NULL)
			json_object_set_string_member(result, "accel_reason", reason);
		json_object_set_object_member(result,
					      "cgroup",
					      vmsup_vm_service_get_cgroup_info(ctx->vm_service));
	}
	json_object_set_boolean_member(result, "vm_service", ctx->vm_service != NULL);
	json_object_set_boolean_member(result, "stats_service", ctx->stats_service != NULL);
	json_object_set_boolean_member(result, "workspace_service", ctx->workspace_service != NULL);
	for (const VmsupRpcMethod *m = vmsup_rpc_table_get_methods(); m->rpc_name != NULL; m++)
		json_array_add_string_element(methods, m->rpc_name);
	json_object_set_array_member(result, "methods", g_steal_pointer(&methods));
	vmsup_rpc_call_return_object(call, g_steal_pointer(&result));
}

/* the table */

#define F_VM VMSUP_RPC_FLAG_TAKES_VM_NAME
#define F_WS VMSUP_RPC_FLAG_TAKES_NAME
#define F_ID VMSUP_RPC_FLAG_TAKES_ID
#define F_RO VMSUP_RPC_FLAG_READ_ONLY
#define F_LIST VMSUP_RPC_FLAG_RETURNS_LIST
#define F_NEW VMSUP_RPC_FLAG_CREATES

static const VmsupRpcMethod vmsup_rpc_methods[] = {
    {"vm.create", "Create", F_VM | F_NEW, NULL, params_vm_create, vmsup_rpc_vm_create},
    {"vm.start", "Start", F_VM, NULL, params_name, vmsup_rpc_vm_start},
    {"vm.stop", "Stop", F_VM, NULL, params_vm_stop, vmsup_rpc_vm_stop},
    {"vm.delete", "Delete", F_VM, NULL, params_vm_delete, vmsup_rpc_vm_delete},
    {"vm.set", "Set", F_VM, NULL, params_vm_set, vmsup_rpc_vm_set},
    {"vm.list", "List", F_RO | F_LIST, "vms", params_vm_list, vmsup_rpc_vm_list},
    {"vm.get", "Get", F_VM | F_RO, NULL, params_name, vmsup_rpc_vm_get},
    {"vm.stats", "Stats", F_VM | F_RO, NULL, params_name, vmsup_rpc_vm_stats},
    {"vm.health", "Health", F_VM | F_RO, NULL, params_name, vmsup_rpc_vm_health},
    {"vm.ping", "Ping", F_VM | F_RO, NULL, params_name, vmsup_rpc_vm_ping},
    {"vm.ports", "Ports", F_VM | F_RO, NULL, params_name, vmsup_rpc_vm_ports},
    {"vm.exec", "Exec", F_VM, NULL, params_vm_exec, vmsup_rpc_vm_exec},
    {"op.get", "GetOperation", F_ID | F_RO, NULL, params_id, vmsup_rpc_op_get},
    {"op.list", "ListOperations", F_RO | F_LIST, "operations", params_none, vmsup_rpc_op_list},
    {"op.cancel", "CancelOperation", F_ID, NULL, params_id, vmsup_rpc_op_cancel},
    {"workspace.create",
     "CreateWorkspace",
     F_WS | F_NEW,
     NULL,
     params_workspace_create,
     vmsup_rpc_workspace_create},
    {"workspace.list",
     "ListWorkspaces",
     F_RO | F_LIST,
     "workspaces",
     params_none,
     vmsup_rpc_workspace_list},
    {"workspace.delete",
     "DeleteWorkspace",
     F_WS,
     NULL,
     params_workspace_delete,
     vmsup_rpc_workspace_delete},
    {"workspace.open", "OpenWorkspace", F_WS, NULL, params_name, vmsup_rpc_workspace_open},
    {"daemon.info", "Info", F_RO, NULL, params_none, vmsup_rpc_daemon_info},
    {NULL, NULL, 0, NULL, NULL, NULL},
};

const VmsupRpcMethod *
vmsup_rpc_table_get_methods(void)
{
	return vmsup_rpc_methods;
}

const VmsupRpcMethod *
vmsup_rpc_table_lookup(const gchar *rpc_name)
{
	if (rpc_name == NULL)
		return NULL;
	for (const VmsupRpcMethod *m = vmsup_rpc_methods; m->rpc_name != NULL; m++) {
		if (g_strcmp0(m->rpc_name, rpc_name) == 0)
			return m;
	}
	return NULL;
}

const VmsupRpcMethod *
vmsup_rpc_table_lookup_dbus(const gchar *dbus_name)
{
	if (dbus_name == NULL)
		return NULL;
	for (const VmsupRpcMethod *m = vmsup_rpc_methods; m->rpc_name != NULL; m++) {
		if (g_strcmp0(m->dbus_name, dbus_name) == 0)
			return m;
	}
	return NULL;
}

/* validation */

static const gchar *
vmsup_rpc_type_describe(VmsupRpcType type)
{
	switch (type) {
	case VMSUP_RPC_TYPE_STRING:
		return _("a string");
	case VMSUP_RPC_TYPE_INT:
		return _("an integer");
	case VMSUP_RPC_TYPE_BOOL:
		return _("a boolean");
	case VMSUP_RPC_TYPE_STRV:
		return _("an array of strings");
	case VMSUP_RPC_TYPE_INT_ARRAY:
		return _("an array of integers");
	case VMSUP_RPC_TYPE_OBJECT:
		return _("an object");
	default:
		return "?";
	}
}

static gboolean
vmsup_rpc_node_is_int(JsonNode *node)
{
	return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_INT64;
}

static gboolean
vmsup_rpc_node_has_type(JsonNode *node, VmsupRpcType type)
{
	JsonArray *array;

	switch (type) {
	case VMSUP_RPC_TYPE_STRING:
		return JSON_NODE_HOLDS_VALUE(node) &&
		       json_node_get_value_type(node) == G_TYPE_STRING;
	case VMSUP_RPC_TYPE_INT:
		return vmsup_rpc_node_is_int(node);
	case VMSUP_RPC_TYPE_BOOL:
		return JSON_NODE_HOLDS_VALUE(node) &&
		       json_node_get_value_type(node) == G_TYPE_BOOLEAN;
	case VMSUP_RPC_TYPE_OBJECT:
		return JSON_NODE_HOLDS_OBJECT(node);
	case VMSUP_RPC_TYPE_STRV:
	case VMSUP_RPC_TYPE_INT_ARRAY:
		if (!JSON_NODE_HOLDS_ARRAY(node))
			return FALSE;
		array = json_node_get_array(node);
		for (guint i = 0; i < json_array_get_length(array); i++) {
			JsonNode *element = json_array_get_element(array, i);
			if (type == VMSUP_RPC_TYPE_INT_ARRAY
				? !vmsup_rpc_node_is_int(element)
				: !vmsup_rpc_node_has_type(element, VMSUP_RPC_TYPE_STRING))
				return FALSE;
		}
		return TRUE;
	default:
		return FALSE;
	}
}

static const VmsupRpcParam *
vmsup_rpc_method_find_param(const VmsupRpcMethod *method, const gchar *name)
{
	for (const VmsupRpcParam *p = method->params; p != NULL && p->name != NULL; p++) {
		if (g_strcmp0(p->name, name) == 0)
			return p;
	}
	return NULL;
}

static gboolean
vmsup_rpc_check_range(const VmsupRpcMethod *method,
		      const VmsupRpcParam *param,
		      gint64 value,
		      GError **error)
{
	if (param->min >= param->max || (value >= param->min && value <= param->max))
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("Parameter '%s' of %s must be between %lld and %lld, not %lld"),
		    param->name,
		    method->rpc_name,
		    (long long)param->min,
		    (long long)param->max,
		    (long long)value);
	return FALSE;
}

static gboolean
vmsup_rpc_check_choice(const VmsupRpcMethod *method,
		       const VmsupRpcParam *param,
		       const gchar *value,
		       GError **error)
{
	const gchar *const *choices = param->choices();
	g_autofree gchar *shown = NULL;
	g_autofree gchar *valid = NULL;

	if (g_strv_contains(choices, value))
		return TRUE;
	shown = g_strescape(value, NULL);
	valid = g_strjoinv(", ", (gchar **)choices);
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_PARAMS,
		    /* TRANSLATORS: 'fields' of vm.list does not take 'x'; it takes: name, cpus */
		    _("Parameter '%s' of %s does not take '%s'; it takes: %s"),
		    param->name,
		    method->rpc_name,
		    shown,
		    valid);
	return FALSE;
}

static gboolean
vmsup_rpc_check_param(const VmsupRpcMethod *method,
		      const VmsupRpcParam *param,
		      JsonNode *node,
		      GError **error)
{
	if (!vmsup_rpc_node_has_type(node, param->type)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_PARAMS,
			    /* TRANSLATORS: 'cpus' of vm.create must be an integer, not string */
			    _("Parameter '%s' of %s must be %s, not %s"),
			    param->name,
			    method->rpc_name,
			    vmsup_rpc_type_describe(param->type),
			    vmsup_json_node_type_name(node));
		return FALSE;
	}
	if (param->type == VMSUP_RPC_TYPE_INT)
		return vmsup_rpc_check_range(method, param, json_node_get_int(node), error);
	if (param->type == VMSUP_RPC_TYPE_STRING && param->choices != NULL)
		return vmsup_rpc_check_choice(method, param, json_node_get_string(node), error);
	if (param->type == VMSUP_RPC_TYPE_STRV && param->choices != NULL) {
		JsonArray *array = json_node_get_array(node);
		for (guint i = 0; i < json_array_get_length(array); i++) {
			const gchar *value = json_array_get_string_element(array, i);
			if (!vmsup_rpc_check_choice(method, param, value, error))
				return FALSE;
		}
	}
	if (param->type == VMSUP_RPC_TYPE_INT_ARRAY) {
		JsonArray *array = json_node_get_array(node);
		for (guint i = 0; i < json_array_get_length(array); i++) {
			gint64 value = json_array_get_int_element(array, i);
			if (!vmsup_rpc_check_range(method, param, value, error))
				return FALSE;
		}
	}
	return TRUE;
}

gboolean
vmsup_rpc_table_validate(const VmsupRpcMethod *method, JsonObject *params, GError **error)
{
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;
	const gchar *name;

	g_return_val_if_fail(method != NULL, FALSE);
	g_return_val_if_fail(params != NULL, FALSE);

	json_object_iter_init(&iter, params);
	while (json_object_iter_next(&iter, &member, &node)) {
		const VmsupRpcParam *param = vmsup_rpc_method_find_param(method, member);
		if (param == NULL) {
			g_autofree gchar *shown = g_strescape(member, NULL);
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_PARAMS,
				    _("Unknown parameter '%s' for %s"),
				    shown,
				    method->rpc_name);
			return FALSE;
		}
		/* null stands for "not given" so that clients may spell out defaults */
		if (JSON_NODE_HOLDS_NULL(node))
			continue;
		if (!vmsup_rpc_check_param(method, param, node, error))
			return FALSE;
	}
	for (const VmsupRpcParam *p = method->params; p != NULL && p->name != NULL; p++) {
		if (!p->required)
			continue;
		node = json_object_get_member(params, p->name);
		if (node == NULL || JSON_NODE_HOLDS_NULL(node)) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_PARAMS,
				    _("Missing required parameter '%s' for %s"),
				    p->name,
				    method->rpc_name);
			return FALSE;
		}
	}

	name = vmsup_json_object_get_string(params, "name", NULL);
	if ((method->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME) &&
	    !vmsup_name_validate(name, "VM", error))
		return FALSE;
	if ((method->flags & VMSUP_RPC_FLAG_TAKES_NAME) &&
	    !vmsup_name_validate(name, "workspace", error))
		return FALSE;
	return TRUE;
}

static void
vmsup_rpc_note_activity(VmsupRpcCall *call, gpointer user_data)
{
	VmsupStatsService *stats_service = VMSUP_STATS_SERVICE(user_data);
	const gchar *name = vmsup_json_object_get_string(vmsup_rpc_call_get_params(call), "name", NULL);

	if (name != NULL)
		vmsup_stats_service_note_activity(stats_service,
						  name,
						  vmsup_rpc_call_get_method(call)->rpc_name);
}

void
vmsup_rpc_table_set_not_yours(GError **error,
			      VmsupRpcOwned what,
			      const gchar *name,
			      guint32 owner,
			      guint32 uid)
{
	switch (what) {
	case VMSUP_RPC_OWNED_VM:
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    /* TRANSLATORS: VM 'web1' belongs to uid 1000, not to you (uid 1001); ... */
		    _("VM '%s' belongs to uid %u, not to you (uid %u); only its owner and "
		      "root may use it: ask one of them, or use a VM of your own"),
		    name,
		    (guint)owner,
		    (guint)uid);
		return;
	case VMSUP_RPC_OWNED_WORKSPACE:
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Workspace '%s' belongs to uid %u, not to you (uid %u); only its "
			      "owner and root may use it: ask one of them, or use a workspace of "
			      "your own"),
			    name,
			    (guint)owner,
			    (guint)uid);
		return;
	case VMSUP_RPC_OWNED_OPERATION:
	default:
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Operation %s belongs to uid %u, not to you (uid %u); only its owner "
			      "and root may follow or cancel it"),
			    name,
			    (guint)owner,
			    (guint)uid);
		return;
	}
}

gboolean
vmsup_rpc_table_check_owner(const VmsupRpcContext *ctx, VmsupRpcCall *call, GError **error)
{
	const VmsupRpcMethod *method;
	JsonObject *params;
	const gchar *name;
	guint32 uid;
	guint32 owner = 0;

	g_return_val_if_fail(ctx != NULL, FALSE);
	g_return_val_if_fail(call != NULL, FALSE);

	method = vmsup_rpc_call_get_method(call);
	params = vmsup_rpc_call_get_params(call);
	uid = vmsup_rpc_call_get_uid(call);
	if (!vmsup_vm_def_uid_is_restricted(uid) || (method->flags & VMSUP_RPC_FLAG_CREATES))
		return TRUE;
	name = vmsup_json_object_get_string(params, "name", NULL);
	if ((method->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME) && ctx->vm_service != NULL &&
	    vmsup_vm_service_get_owner(ctx->vm_service, name, &owner) && owner != uid) {
		vmsup_rpc_table_set_not_yours(error, VMSUP_RPC_OWNED_VM, name, owner, uid);
		return FALSE;
	}
	if ((method->flags & VMSUP_RPC_FLAG_TAKES_NAME) && ctx->workspace_service != NULL &&
	    vmsup_workspace_service_get_owner(ctx->workspace_service, name, &owner) &&
	    owner != uid) {
		vmsup_rpc_table_set_not_yours(error, VMSUP_RPC_OWNED_WORKSPACE, name, owner, uid);
		return FALSE;
	}
	if ((method->flags & VMSUP_RPC_FLAG_TAKES_ID) && ctx->vm_service != NULL) {
		gint64 id = vmsup_json_object_get_int(params, "id", 0);
		if (vmsup_vm_service_get_op_owner(ctx->vm_service, id, &owner) && owner != uid) {
			g_autofree gchar *shown = g_strdup_printf("%" G_GINT64_FORMAT, id);
			vmsup_rpc_table_set_not_yours(error,
						      VMSUP_RPC_OWNED_OPERATION,
						      shown,
						      owner,
						      uid);
			return FALSE;
		}
	}
	return TRUE;
}

void
vmsup_rpc_table_dispatch(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	const VmsupRpcMethod *method;
	JsonObject *params;
	g_autoptr(GError) error = NULL;

	g_return_if_fail(ctx != NULL);
	g_return_if_fail(call != NULL);

	method = vmsup_rpc_call_get_method(call);
	params = vmsup_rpc_call_get_params(call);
	if (!vmsup_rpc_table_validate(method, params, &error)) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	g_debug("%s from uid %u", method->rpc_name, vmsup_rpc_call_get_uid(call));
	if (!vmsup_rpc_table_check_owner(ctx, call, &error)) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	/* a request that changed a VM counts as activity for the stale-VM sweep; a refused one not */
	if (ctx->stats_service != NULL && (method->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME) &&
	    !(method->flags & VMSUP_RPC_FLAG_READ_ONLY))
		vmsup_rpc_call_set_on_success(call,
					      vmsup_rpc_note_activity,
					      g_object_ref(ctx->stats_service),
					      g_object_unref);
	method->func(ctx, call);
}
