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
#include "vmsup-event-source.h"
#include "vmsup-image-build.h"
#include "vmsup-json.h"
#include "vmsup-name.h"
#include "vmsup-rpc-image.h"
#include "vmsup-rpc-table.h"
#include "vmsup-since.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-service-snapshot.h"

/* schemas */

#define P_REQ(n, t)                                                                                \
	{                                                                                          \
		(n), (t), TRUE, 0, 0, NULL                                                         \
	}
#define P_OPT(n, t)                                                                                \
	{                                                                                          \
		(n), (t), FALSE, 0, 0, NULL                                                        \
	}
#define P_RANGE(n, t, lo, hi)                                                                      \
	{                                                                                          \
		(n), (t), FALSE, (lo), (hi), NULL                                                  \
	}
#define P_CHOICES(n, t, choices)                                                                   \
	{                                                                                          \
		(n), (t), FALSE, 0, 0, (choices)                                                   \
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

/* since: "10m", "2h", an ISO 8601 time (vmsup_since_parse()); follow=true */
static const VmsupRpcParam params_events_subscribe[] = {
    P_OPT("since", VMSUP_RPC_TYPE_STRING),
    P_OPT("follow", VMSUP_RPC_TYPE_BOOL),
    P_END,
};

static const VmsupRpcParam params_vm_name[] = {P_REQ("name", VMSUP_RPC_TYPE_VM_NAME), P_END};

/* vm.start: booted, or from a memory snapshot */
static const VmsupRpcParam params_vm_start[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_OPT("snapshot", VMSUP_RPC_TYPE_SNAPSHOT_NAME),
    P_END,
};

static const VmsupRpcParam params_snapshot_create[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_REQ("snapshot", VMSUP_RPC_TYPE_SNAPSHOT_NAME),
    P_OPT("memory", VMSUP_RPC_TYPE_BOOL),
    P_OPT("wait", VMSUP_RPC_TYPE_BOOL),
    P_END,
};

static const VmsupRpcParam params_snapshot_restore[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_REQ("snapshot", VMSUP_RPC_TYPE_SNAPSHOT_NAME),
    P_OPT("wait", VMSUP_RPC_TYPE_BOOL),
    P_END,
};

static const VmsupRpcParam params_snapshot_name[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_REQ("snapshot", VMSUP_RPC_TYPE_SNAPSHOT_NAME),
    P_END,
};

static const VmsupRpcParam params_workspace_name[] = {
    P_REQ("name", VMSUP_RPC_TYPE_WORKSPACE_NAME),
    P_END,
};

static const VmsupRpcParam params_id[] = {
    {"id", VMSUP_RPC_TYPE_INT, TRUE, 1, G_MAXINT64, NULL},
    P_END,
};

/* "fields": the members of a vm.get result each VM is to have (all without it) */
static const VmsupRpcParam params_vm_list[] = {
    P_CHOICES("fields", VMSUP_RPC_TYPE_STRV, vmsup_vm_service_get_member_names),
    P_END,
};

static const VmsupRpcParam params_vm_create[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_RANGE("cpus", VMSUP_RPC_TYPE_INT, 1, VMSUP_RPC_MAX_CPUS),
    P_RANGE("memory_mib", VMSUP_RPC_TYPE_INT, VMSUP_RPC_MIN_MEMORY_MIB, VMSUP_RPC_MAX_MEMORY_MIB),
    P_OPT("kernel", VMSUP_RPC_TYPE_STRING),
    P_OPT("initrd", VMSUP_RPC_TYPE_STRING),
    P_OPT("cmdline", VMSUP_RPC_TYPE_STRING),
    P_OPT("image", VMSUP_RPC_TYPE_STRING),
    P_RANGE("disk_gib", VMSUP_RPC_TYPE_INT, 1, VMSUP_RPC_MAX_DISK_GIB),
    P_RANGE("forward", VMSUP_RPC_TYPE_INT_ARRAY, 1, 65535),
    P_OPT("auto_stop", VMSUP_RPC_TYPE_BOOL),
    P_OPT("autostart", VMSUP_RPC_TYPE_BOOL),
    P_RANGE("cpu_quota_percent", VMSUP_RPC_TYPE_INT, 0, VMSUP_RPC_MAX_CPU_QUOTA_PERCENT),
    P_RANGE("memory_max_mib", VMSUP_RPC_TYPE_INT, 0, VMSUP_RPC_MAX_MEMORY_MAX_MIB),
    /* a VM from an image: its firmware and what its cloud-init seed adds */
    P_OPT("firmware", VMSUP_RPC_TYPE_STRING),
    P_OPT("ssh_keys", VMSUP_RPC_TYPE_STRV),
    P_OPT("user_data", VMSUP_RPC_TYPE_STRING),
    P_OPT("start", VMSUP_RPC_TYPE_BOOL),
    P_OPT("wait", VMSUP_RPC_TYPE_BOOL),
    P_END,
};

static const VmsupRpcParam params_vm_stop[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_OPT("force", VMSUP_RPC_TYPE_BOOL),
    P_RANGE("timeout_s", VMSUP_RPC_TYPE_INT, 0, VMSUP_RPC_MAX_TIMEOUT_S),
    P_END,
};

static const VmsupRpcParam params_vm_console[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_OPT("history", VMSUP_RPC_TYPE_BOOL),
    P_END,
};

static const VmsupRpcParam params_vm_delete[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_OPT("force", VMSUP_RPC_TYPE_BOOL),
    P_END,
};

/* what can change after creation; kernel, initrd and image cannot */
static const VmsupRpcParam params_vm_set[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_RANGE("cpus", VMSUP_RPC_TYPE_INT, 1, VMSUP_RPC_MAX_CPUS),
    P_RANGE("memory_mib", VMSUP_RPC_TYPE_INT, VMSUP_RPC_MIN_MEMORY_MIB, VMSUP_RPC_MAX_MEMORY_MIB),
    P_OPT("cmdline", VMSUP_RPC_TYPE_STRING),
    P_RANGE("forward", VMSUP_RPC_TYPE_INT_ARRAY, 1, 65535),
    P_OPT("auto_stop", VMSUP_RPC_TYPE_BOOL),
    P_OPT("autostart", VMSUP_RPC_TYPE_BOOL),
    P_RANGE("cpu_quota_percent", VMSUP_RPC_TYPE_INT, 0, VMSUP_RPC_MAX_CPU_QUOTA_PERCENT),
    P_RANGE("memory_max_mib", VMSUP_RPC_TYPE_INT, 0, VMSUP_RPC_MAX_MEMORY_MAX_MIB),
    P_RANGE("disk_gib", VMSUP_RPC_TYPE_INT, 1, VMSUP_RPC_MAX_DISK_GIB),
    P_END,
};

static const VmsupRpcParam params_vm_clone[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_REQ("new_name", VMSUP_RPC_TYPE_VM_NAME),
    P_OPT("wait", VMSUP_RPC_TYPE_BOOL),
    P_END,
};

static const VmsupRpcParam params_vm_exec[] = {
    P_REQ("name", VMSUP_RPC_TYPE_VM_NAME),
    P_REQ("argv", VMSUP_RPC_TYPE_STRV),
    P_OPT("stdin", VMSUP_RPC_TYPE_STRING),
    P_RANGE("timeout_s", VMSUP_RPC_TYPE_INT, 1, VMSUP_RPC_MAX_TIMEOUT_S),
    P_END,
};

static const VmsupRpcParam params_workspace_create[] = {
    P_REQ("name", VMSUP_RPC_TYPE_WORKSPACE_NAME),
    P_REQ("path", VMSUP_RPC_TYPE_STRING),
    P_OPT("vm", VMSUP_RPC_TYPE_VM_NAME),
    P_RANGE("cpus", VMSUP_RPC_TYPE_INT, 1, VMSUP_RPC_MAX_CPUS),
    P_RANGE("memory_mib", VMSUP_RPC_TYPE_INT, VMSUP_RPC_MIN_MEMORY_MIB, VMSUP_RPC_MAX_MEMORY_MIB),
    P_END,
};

static const VmsupRpcParam params_workspace_delete[] = {
    P_REQ("name", VMSUP_RPC_TYPE_WORKSPACE_NAME),
    P_OPT("force", VMSUP_RPC_TYPE_BOOL),
    P_END,
};

static const VmsupRpcParam params_image_import[] = {
    P_REQ("path", VMSUP_RPC_TYPE_STRING),
    P_OPT("name", VMSUP_RPC_TYPE_IMAGE_NAME),
    P_OPT("wait", VMSUP_RPC_TYPE_BOOL),
    P_END,
};

static const VmsupRpcParam params_image_build[] = {
    P_REQ("name", VMSUP_RPC_TYPE_IMAGE_NAME),
    P_CHOICES("distro", VMSUP_RPC_TYPE_STRING, vmsup_image_build_distros),
    P_OPT("packages", VMSUP_RPC_TYPE_STRV),
    P_OPT("wait", VMSUP_RPC_TYPE_BOOL),
    P_END,
};

static const VmsupRpcParam params_image_name[] = {
    P_REQ("name", VMSUP_RPC_TYPE_IMAGE_NAME),
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

static gboolean
vmsup_rpc_have_vm_service(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (ctx->vm_service != NULL)
		return TRUE;
	vmsup_rpc_return_unavailable(call, _("The VM service is not available in this vmsupd"));
	return FALSE;
}

static gboolean
vmsup_rpc_have_stats_service(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (ctx->stats_service != NULL)
		return TRUE;
	vmsup_rpc_return_unavailable(
	    call,
	    _("Statistics and guest access are not available in this vmsupd"));
	return FALSE;
}

static gboolean
vmsup_rpc_have_workspace_service(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (ctx->workspace_service != NULL)
		return TRUE;
	vmsup_rpc_return_unavailable(call, _("Workspaces are not available in this vmsupd"));
	return FALSE;
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
 * The _finish of a service verb. Every verb's finish takes its service as
 * the first argument, a pointer like this GObject, so one callback serves
 * them all.
 */
typedef JsonObject *(*VmsupRpcFinishFunc)(GObject *source, GAsyncResult *res, GError **error);

/* whether @caller may see @entry of a list answer */
typedef gboolean (*VmsupRpcSeeFunc)(VmsupPolicy *policy,
				    const VmsupCaller *caller,
				    JsonObject *entry);

/* a verb on its way through a service: what its answer is finished and filtered with */
typedef struct {
	VmsupRpcCall *call; /* owned */
	VmsupRpcFinishFunc finish;
	VmsupPolicy *policy;     /* owned, with @may_see */
	const gchar *member;     /* the list member of the answer @may_see filters */
	VmsupRpcSeeFunc may_see; /* NULL: the answer goes out as the service gave it */
} VmsupRpcPending;

static void
vmsup_rpc_pending_free(VmsupRpcPending *pending)
{
	vmsup_rpc_call_unref(pending->call);
	g_clear_object(&pending->policy);
	g_free(pending);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupRpcPending, vmsup_rpc_pending_free)

static VmsupRpcPending *
vmsup_rpc_pending_new(VmsupRpcCall *call, gpointer finish)
{
	VmsupRpcPending *pending = g_new0(VmsupRpcPending, 1);
	pending->call = vmsup_rpc_call_ref(call);
	pending->finish = (VmsupRpcFinishFunc)finish;
	return pending;
}

/* a list verb: the answer keeps only the entries of @member the caller may see */
static VmsupRpcPending *
vmsup_rpc_pending_new_list(const VmsupRpcContext *ctx,
			   VmsupRpcCall *call,
			   gpointer finish,
			   const gchar *member,
			   VmsupRpcSeeFunc may_see)
{
	VmsupRpcPending *pending = vmsup_rpc_pending_new(call, finish);
	pending->policy = g_object_ref(ctx->policy);
	pending->member = member;
	pending->may_see = may_see;
	return pending;
}

static void
vmsup_rpc_keep_visible(JsonObject *result,
		       const gchar *member,
		       VmsupPolicy *policy,
		       const VmsupCaller *caller,
		       VmsupRpcSeeFunc may_see)
{
	JsonNode *list = json_object_get_member(result, member);
	JsonArray *array;

	if (vmsup_policy_sees_all(policy, caller) || list == NULL || !JSON_NODE_HOLDS_ARRAY(list))
		return;
	array = json_node_get_array(list);
	for (guint i = json_array_get_length(array); i-- > 0;) {
		JsonNode *node = json_array_get_element(array, i);
		if (!JSON_NODE_HOLDS_OBJECT(node) ||
		    !may_see(policy, caller, json_node_get_object(node)))
			json_array_remove_element(array, i);
	}
}

/* the one callback of every service verb: finish, filter a list, answer */
static void
vmsup_rpc_verb_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupRpcPending) pending = user_data;
	g_autoptr(GError) error = NULL;
	JsonObject *result = pending->finish(source, res, &error);

	if (result != NULL && pending->may_see != NULL)
		vmsup_rpc_keep_visible(result,
				       pending->member,
				       pending->policy,
				       vmsup_rpc_call_get_caller(pending->call),
				       pending->may_see);
	vmsup_rpc_return_result(pending->call, result, error);
}

static gboolean
vmsup_rpc_may_see_vm_entry(VmsupPolicy *policy, const VmsupCaller *caller, JsonObject *entry)
{
	return vmsup_policy_may_see_vm(policy,
				       caller,
				       vmsup_json_object_get_string(entry, "name", NULL));
}

static gboolean
vmsup_rpc_may_see_operation_entry(VmsupPolicy *policy, const VmsupCaller *caller, JsonObject *entry)
{
	return vmsup_policy_may_see_operation(policy,
					      caller,
					      vmsup_json_object_get_int(entry, "id", 0));
}

static gboolean
vmsup_rpc_may_see_workspace_entry(VmsupPolicy *policy, const VmsupCaller *caller, JsonObject *entry)
{
	return vmsup_policy_may_see_workspace(policy,
					      caller,
					      vmsup_json_object_get_string(entry, "name", NULL));
}

/* vm.create and vm.set act for the client as well: QEMU reads the files they name */
static void
vmsup_rpc_vm_create(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_create_async(ctx->vm_service,
				      vmsup_rpc_call_get_caller(call),
				      vmsup_rpc_call_get_params(call),
				      /* cancellable= */ NULL,
				      vmsup_rpc_verb_cb,
				      vmsup_rpc_pending_new(call, vmsup_vm_service_create_finish));
}

static void
vmsup_rpc_vm_start(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_start_async(ctx->vm_service,
				     vmsup_rpc_call_get_caller(call),
				     vmsup_rpc_call_get_params(call),
				     /* cancellable= */ NULL,
				     vmsup_rpc_verb_cb,
				     vmsup_rpc_pending_new(call, vmsup_vm_service_start_finish));
}

/* snapshot.*: create and restore are operations, list answers at once */
static void
vmsup_rpc_snapshot_verb(const VmsupRpcContext *ctx,
			VmsupRpcCall *call,
			void (*verb)(VmsupVmService *,
				     const VmsupCaller *,
				     JsonObject *,
				     GCancellable *,
				     GAsyncReadyCallback,
				     gpointer))
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	verb(ctx->vm_service,
	     vmsup_rpc_call_get_caller(call),
	     vmsup_rpc_call_get_params(call),
	     /* cancellable= */ NULL,
	     vmsup_rpc_verb_cb,
	     vmsup_rpc_pending_new(call, vmsup_vm_service_snapshot_finish));
}

static void
vmsup_rpc_snapshot_create(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	vmsup_rpc_snapshot_verb(ctx, call, vmsup_vm_service_snapshot_create_async);
}

static void
vmsup_rpc_snapshot_restore(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	vmsup_rpc_snapshot_verb(ctx, call, vmsup_vm_service_snapshot_restore_async);
}

static void
vmsup_rpc_snapshot_delete(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	vmsup_rpc_snapshot_verb(ctx, call, vmsup_vm_service_snapshot_delete_async);
}

static void
vmsup_rpc_snapshot_list(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	g_autoptr(GError) error = NULL;
	JsonObject *result;

	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	result = vmsup_vm_service_snapshot_list(ctx->vm_service,
						vmsup_rpc_call_get_params(call),
						&error);
	vmsup_rpc_return_result(call, result, error);
}

static void
vmsup_rpc_vm_pause(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_pause_async(ctx->vm_service,
				     vmsup_rpc_call_get_caller(call),
				     vmsup_rpc_call_get_params(call),
				     /* cancellable= */ NULL,
				     vmsup_rpc_verb_cb,
				     vmsup_rpc_pending_new(call, vmsup_vm_service_pause_finish));
}

static void
vmsup_rpc_vm_resume(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_resume_async(ctx->vm_service,
				      vmsup_rpc_call_get_caller(call),
				      vmsup_rpc_call_get_params(call),
				      /* cancellable= */ NULL,
				      vmsup_rpc_verb_cb,
				      vmsup_rpc_pending_new(call, vmsup_vm_service_resume_finish));
}

static void
vmsup_rpc_vm_stop(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_stop_async(ctx->vm_service,
				    vmsup_rpc_call_get_caller(call),
				    vmsup_rpc_call_get_params(call),
				    /* cancellable= */ NULL,
				    vmsup_rpc_verb_cb,
				    vmsup_rpc_pending_new(call, vmsup_vm_service_stop_finish));
}

static void
vmsup_rpc_vm_delete(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_delete_async(ctx->vm_service,
				      vmsup_rpc_call_get_caller(call),
				      vmsup_rpc_call_get_params(call),
				      /* cancellable= */ NULL,
				      vmsup_rpc_verb_cb,
				      vmsup_rpc_pending_new(call, vmsup_vm_service_delete_finish));
}

static void
vmsup_rpc_vm_set(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_set_async(ctx->vm_service,
				   vmsup_rpc_call_get_caller(call),
				   vmsup_rpc_call_get_params(call),
				   /* cancellable= */ NULL,
				   vmsup_rpc_verb_cb,
				   vmsup_rpc_pending_new(call, vmsup_vm_service_set_finish));
}

static void
vmsup_rpc_vm_clone(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_clone_async(ctx->vm_service,
				     vmsup_rpc_call_get_caller(call),
				     vmsup_rpc_call_get_params(call),
				     /* cancellable= */ NULL,
				     vmsup_rpc_verb_cb,
				     vmsup_rpc_pending_new(call, vmsup_vm_service_clone_finish));
}

static void
vmsup_rpc_op_get(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_op_get_async(ctx->vm_service,
				      vmsup_rpc_call_get_caller(call),
				      vmsup_rpc_call_get_params(call),
				      /* cancellable= */ NULL,
				      vmsup_rpc_verb_cb,
				      vmsup_rpc_pending_new(call, vmsup_vm_service_op_get_finish));
}

static void
vmsup_rpc_op_list(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_op_list_async(
	    ctx->vm_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new_list(ctx,
				       call,
				       vmsup_vm_service_op_list_finish,
				       "operations",
				       vmsup_rpc_may_see_operation_entry));
}

static void
vmsup_rpc_op_cancel(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	vmsup_vm_service_op_cancel_async(
	    ctx->vm_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new(call, vmsup_vm_service_op_cancel_finish));
}

static void
vmsup_rpc_vm_stats(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_stats_service(ctx, call))
		return;
	vmsup_stats_service_stats_async(
	    ctx->stats_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new(call, vmsup_stats_service_stats_finish));
}

static void
vmsup_rpc_vm_health(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_stats_service(ctx, call))
		return;
	vmsup_stats_service_health_async(
	    ctx->stats_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new(call, vmsup_stats_service_health_finish));
}

static void
vmsup_rpc_vm_ping(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_stats_service(ctx, call))
		return;
	vmsup_stats_service_ping_async(
	    ctx->stats_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new(call, vmsup_stats_service_ping_finish));
}

static void
vmsup_rpc_vm_ports(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_stats_service(ctx, call))
		return;
	vmsup_stats_service_ports_async(
	    ctx->stats_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new(call, vmsup_stats_service_ports_finish));
}

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
	if (!vmsup_rpc_have_stats_service(ctx, call))
		return;
	vmsup_stats_service_exec_async(
	    ctx->stats_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new(call, vmsup_stats_service_exec_finish));
}

/* workspace.create and workspace.open share a host directory on the client's behalf */
static void
vmsup_rpc_workspace_create(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_workspace_service(ctx, call))
		return;
	vmsup_workspace_service_create_async(
	    ctx->workspace_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new(call, vmsup_workspace_service_create_finish));
}

static void
vmsup_rpc_workspace_open(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_workspace_service(ctx, call))
		return;
	vmsup_workspace_service_open_async(
	    ctx->workspace_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new(call, vmsup_workspace_service_open_finish));
}

static void
vmsup_rpc_workspace_list(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_workspace_service(ctx, call))
		return;
	vmsup_workspace_service_list_async(
	    ctx->workspace_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new_list(ctx,
				       call,
				       vmsup_workspace_service_list_finish,
				       "workspaces",
				       vmsup_rpc_may_see_workspace_entry));
}

static void
vmsup_rpc_workspace_delete(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_have_workspace_service(ctx, call))
		return;
	vmsup_workspace_service_delete_async(
	    ctx->workspace_service,
	    vmsup_rpc_call_get_caller(call),
	    vmsup_rpc_call_get_params(call),
	    /* cancellable= */ NULL,
	    vmsup_rpc_verb_cb,
	    vmsup_rpc_pending_new(call, vmsup_workspace_service_delete_finish));
}

/* whether @caller may read a journal entry: whoever sees all, or the owner of its VM */
static gboolean
vmsup_rpc_may_read_entry(const VmsupRpcContext *ctx, const VmsupCaller *caller, JsonObject *entry)
{
	gint64 owner = vmsup_event_journal_entry_get_owner(entry);

	if (vmsup_policy_sees_all(ctx->policy, caller))
		return TRUE;
	return owner >= 0 && (guint32)owner == caller->uid;
}

/* the journal's entries since @since_us the caller may read, sent ahead of the answer */
static guint
vmsup_rpc_events_replay(const VmsupRpcContext *ctx, VmsupRpcCall *call, gint64 since_us)
{
	VmsupEventJournal *journal =
	    ctx->events != NULL ? vmsup_event_source_get_journal(ctx->events) : NULL;
	g_autoptr(GPtrArray) entries = NULL;
	guint sent = 0;

	if (journal == NULL)
		return 0;
	entries = vmsup_event_journal_read(vmsup_event_journal_get_dir(journal), since_us, 0);
	for (guint i = 0; i < entries->len; i++) {
		JsonObject *entry = g_ptr_array_index(entries, i);
		g_autoptr(JsonObject) params = NULL;

		if (!vmsup_rpc_may_read_entry(ctx, vmsup_rpc_call_get_caller(call), entry))
			continue;
		params = vmsup_event_source_stamp(json_object_get_object_member(entry, "params"),
						  vmsup_event_journal_entry_get_seq(entry),
						  vmsup_json_object_get_string(entry, "time", ""));
		if (vmsup_rpc_call_notify(call,
					  vmsup_json_object_get_string(entry, "method", ""),
					  params))
			sent++;
	}
	return sent;
}

static void
vmsup_rpc_events_result(const VmsupRpcContext *ctx,
			VmsupRpcCall *call,
			gboolean subscribed,
			guint replayed)
{
	g_autoptr(JsonObject) result = json_object_new();
	g_autoptr(JsonArray) events = json_array_new();

	if (subscribed) {
		json_array_add_string_element(events, VMSUP_RPC_EVENT_VM_CHANGED);
		json_array_add_string_element(events, VMSUP_RPC_EVENT_VM_REMOVED);
		json_array_add_string_element(events, VMSUP_RPC_EVENT_OPERATION_CHANGED);
	}
	json_object_set_array_member(result, "events", g_steal_pointer(&events));
	/* what was replayed is at or below it, what follows live above it */
	json_object_set_int_member(
	    result,
	    "seq",
	    ctx->events != NULL ? (gint64)vmsup_event_source_get_last_seq(ctx->events, NULL) : 0);
	json_object_set_int_member(result, "replayed", replayed);
	vmsup_rpc_call_return_object(call, g_steal_pointer(&result));
}

static void
vmsup_rpc_return_no_events(VmsupRpcCall *call)
{
	vmsup_rpc_return_unavailable(call,
				     _("Events are not sent on this connection; subscribe "
				       "on the JSON-RPC socket, or receive the D-Bus "
				       "signals"));
}

/*
 * events.subscribe: the connection itself keeps the subscription. Replay
 * and subscription happen in one go on the main loop, so no event falls
 * between the journal read and the first live one, and none is in both.
 */
static void
vmsup_rpc_events_subscribe(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	JsonObject *params = vmsup_rpc_call_get_params(call);
	const gchar *since = vmsup_json_object_get_string(params, "since", NULL);
	gboolean follow = vmsup_json_object_get_bool(params, "follow", TRUE);
	g_autoptr(GError) error = NULL;
	gint64 since_us = 0;
	guint replayed = 0;

	if (since != NULL && !vmsup_since_parse(since, g_get_real_time(), &since_us, &error)) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	if ((since != NULL && !vmsup_rpc_call_can_notify(call)) ||
	    (follow && !vmsup_rpc_call_subscribe(call, TRUE))) {
		vmsup_rpc_return_no_events(call);
		return;
	}
	if (since != NULL)
		replayed = vmsup_rpc_events_replay(ctx, call, since_us);
	vmsup_rpc_events_result(ctx, call, follow, replayed);
}

static void
vmsup_rpc_events_unsubscribe(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	if (!vmsup_rpc_call_subscribe(call, FALSE)) {
		vmsup_rpc_return_no_events(call);
		return;
	}
	vmsup_rpc_events_result(ctx, call, FALSE, 0);
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

	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	result = vmsup_vm_service_get(ctx->vm_service, vmsup_rpc_call_get_params(call), &error);
	if (result != NULL)
		vmsup_rpc_merge_activity(ctx->stats_service, result, /* fields= */ NULL);
	vmsup_rpc_return_result(call, result, error);
}

/* vm.ssh_info: how to reach the guest's SSH server; like vm.get it answers at once */
static void
vmsup_rpc_vm_ssh_info(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	g_autoptr(GError) error = NULL;
	JsonObject *result;

	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	result = vmsup_vm_service_ssh_info(ctx->vm_service,
					   vmsup_rpc_call_get_caller(call),
					   vmsup_rpc_call_get_params(call),
					   &error);
	vmsup_rpc_return_result(call, result, error);
}

/* vm.console: a viewer of the serial console, answered with its descriptor */
static void
vmsup_rpc_vm_console(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	g_autoptr(GError) error = NULL;
	JsonObject *result;
	gint fd;

	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
	fd = vmsup_vm_service_open_console(ctx->vm_service,
					   vmsup_rpc_call_get_caller(call),
					   vmsup_rpc_call_get_params(call),
					   &error);
	if (fd < 0) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	result = json_object_new();
	vmsup_rpc_call_return_with_fd(call, result, fd);
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
	const VmsupCaller *caller = vmsup_rpc_call_get_caller(call);
	gboolean restricted = !vmsup_policy_sees_all(ctx->policy, caller);
	gboolean drop_name;
	JsonObject *result;
	JsonArray *vms;

	if (!vmsup_rpc_have_vm_service(ctx, call))
		return;
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
		vmsup_rpc_keep_visible(result,
				       "vms",
				       ctx->policy,
				       caller,
				       vmsup_rpc_may_see_vm_entry);
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
#define F_IMG VMSUP_RPC_FLAG_TAKES_IMAGE_NAME
#define F_FD VMSUP_RPC_FLAG_RETURNS_FD

static const VmsupRpcMethod vmsup_rpc_methods[] = {
    {"vm.create", "Create", F_VM | F_NEW, NULL, params_vm_create, vmsup_rpc_vm_create},
    {"vm.start", "Start", F_VM, NULL, params_vm_start, vmsup_rpc_vm_start},
    {"vm.stop", "Stop", F_VM, NULL, params_vm_stop, vmsup_rpc_vm_stop},
    {"vm.pause", "Pause", F_VM, NULL, params_vm_name, vmsup_rpc_vm_pause},
    {"vm.resume", "Resume", F_VM, NULL, params_vm_name, vmsup_rpc_vm_resume},
    {"vm.delete", "Delete", F_VM, NULL, params_vm_delete, vmsup_rpc_vm_delete},
    {"vm.set", "Set", F_VM, NULL, params_vm_set, vmsup_rpc_vm_set},
    {"vm.clone", "Clone", F_VM, NULL, params_vm_clone, vmsup_rpc_vm_clone},
    {"vm.list", "List", F_RO | F_LIST, "vms", params_vm_list, vmsup_rpc_vm_list},
    {"vm.get", "Get", F_VM | F_RO, NULL, params_vm_name, vmsup_rpc_vm_get},
    {"vm.stats", "Stats", F_VM | F_RO, NULL, params_vm_name, vmsup_rpc_vm_stats},
    {"vm.health", "Health", F_VM | F_RO, NULL, params_vm_name, vmsup_rpc_vm_health},
    {"vm.ping", "Ping", F_VM | F_RO, NULL, params_vm_name, vmsup_rpc_vm_ping},
    {"vm.ports", "Ports", F_VM | F_RO, NULL, params_vm_name, vmsup_rpc_vm_ports},
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
    {"workspace.open",
     "OpenWorkspace",
     F_WS,
     NULL,
     params_workspace_name,
     vmsup_rpc_workspace_open},
    {"image.import", "ImportImage", 0, NULL, params_image_import, vmsup_rpc_image_import},
    {"image.list", "ListImages", F_RO | F_LIST, "images", params_none, vmsup_rpc_image_list},
    {"image.delete", "DeleteImage", F_IMG, NULL, params_image_name, vmsup_rpc_image_delete},
    {"daemon.info", "Info", F_RO, NULL, params_none, vmsup_rpc_daemon_info},
    /* cloud-init and vmsup shell */
    {"vm.ssh_info", "GetSshInfo", F_VM | F_RO, NULL, params_vm_name, vmsup_rpc_vm_ssh_info},
    {"image.build", "BuildImage", F_IMG, NULL, params_image_build, vmsup_rpc_image_build},
    /* descriptors: the console's and the display's */
    {"vm.console", "OpenConsole", F_VM | F_FD, NULL, params_vm_console, vmsup_rpc_vm_console},
    /* snapshots */
    {"snapshot.create",
     "CreateSnapshot",
     F_VM,
     NULL,
     params_snapshot_create,
     vmsup_rpc_snapshot_create},
    {"snapshot.list",
     "ListSnapshots",
     F_VM | F_RO | F_LIST,
     "snapshots",
     params_vm_name,
     vmsup_rpc_snapshot_list},
    {"snapshot.restore",
     "RestoreSnapshot",
     F_VM,
     NULL,
     params_snapshot_restore,
     vmsup_rpc_snapshot_restore},
    {"snapshot.delete",
     "DeleteSnapshot",
     F_VM,
     NULL,
     params_snapshot_name,
     vmsup_rpc_snapshot_delete},
    {NULL, NULL, 0, NULL, NULL, NULL},
};

/* served by the JSON-RPC socket alone: D-Bus sends signals instead, so they have no twin */
static const VmsupRpcMethod vmsup_rpc_event_methods[] = {
    {"events.subscribe", NULL, F_RO, NULL, params_events_subscribe, vmsup_rpc_events_subscribe},
    {"events.unsubscribe", NULL, F_RO, NULL, params_none, vmsup_rpc_events_unsubscribe},
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
	for (const VmsupRpcMethod *m = vmsup_rpc_event_methods; m->rpc_name != NULL; m++) {
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
	case VMSUP_RPC_TYPE_VM_NAME:
		return _("a VM name");
	case VMSUP_RPC_TYPE_WORKSPACE_NAME:
		return _("a workspace name");
	case VMSUP_RPC_TYPE_IMAGE_NAME:
		return _("an image name");
	case VMSUP_RPC_TYPE_SNAPSHOT_NAME:
		return _("a snapshot name");
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
	case VMSUP_RPC_TYPE_VM_NAME:
	case VMSUP_RPC_TYPE_WORKSPACE_NAME:
	case VMSUP_RPC_TYPE_IMAGE_NAME:
	case VMSUP_RPC_TYPE_SNAPSHOT_NAME:
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
	/* hostile names end here: services and QEMU are only ever given valid ones */
	if (param->type == VMSUP_RPC_TYPE_VM_NAME)
		return vmsup_name_validate(json_node_get_string(node), "VM", error);
	if (param->type == VMSUP_RPC_TYPE_WORKSPACE_NAME)
		return vmsup_name_validate(json_node_get_string(node), "workspace", error);
	if (param->type == VMSUP_RPC_TYPE_IMAGE_NAME)
		return vmsup_name_validate(json_node_get_string(node), "image", error);
	if (param->type == VMSUP_RPC_TYPE_SNAPSHOT_NAME)
		return vmsup_name_validate(json_node_get_string(node), "snapshot", error);
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
	return TRUE;
}

static void
vmsup_rpc_note_activity(VmsupRpcCall *call, gpointer user_data)
{
	VmsupStatsService *stats_service = VMSUP_STATS_SERVICE(user_data);
	const gchar *name =
	    vmsup_json_object_get_string(vmsup_rpc_call_get_params(call), "name", NULL);

	if (name != NULL)
		vmsup_stats_service_note_activity(stats_service,
						  name,
						  vmsup_rpc_call_get_method(call)->rpc_name);
}

gboolean
vmsup_rpc_table_check_owner(const VmsupRpcContext *ctx, VmsupRpcCall *call, GError **error)
{
	const VmsupRpcMethod *method;
	JsonObject *params;
	const VmsupCaller *caller;

	g_return_val_if_fail(ctx != NULL, FALSE);
	g_return_val_if_fail(VMSUP_IS_POLICY(ctx->policy), FALSE);
	g_return_val_if_fail(call != NULL, FALSE);

	method = vmsup_rpc_call_get_method(call);
	params = vmsup_rpc_call_get_params(call);
	caller = vmsup_rpc_call_get_caller(call);
	if (method->flags & VMSUP_RPC_FLAG_CREATES)
		return TRUE;
	if (method->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME)
		return vmsup_policy_check_vm(ctx->policy,
					     caller,
					     vmsup_json_object_get_string(params, "name", NULL),
					     error);
	if (method->flags & VMSUP_RPC_FLAG_TAKES_NAME)
		return vmsup_policy_check_workspace(
		    ctx->policy,
		    caller,
		    vmsup_json_object_get_string(params, "name", NULL),
		    error);
	if (method->flags & VMSUP_RPC_FLAG_TAKES_ID)
		return vmsup_policy_check_operation(ctx->policy,
						    caller,
						    vmsup_json_object_get_int(params, "id", 0),
						    error);
	return TRUE;
}

void
vmsup_rpc_table_dispatch(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	const VmsupRpcMethod *method;
	JsonObject *params;
	g_autoptr(GError) error = NULL;

	g_return_if_fail(ctx != NULL);
	g_return_if_fail(VMSUP_IS_POLICY(ctx->policy));
	g_return_if_fail(call != NULL);

	method = vmsup_rpc_call_get_method(call);
	params = vmsup_rpc_call_get_params(call);
	vmsup_rpc_call_set_metrics(call, ctx->metrics);
	if (!vmsup_rpc_table_validate(method, params, &error)) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	g_debug("%s from uid %u", method->rpc_name, vmsup_rpc_call_get_caller(call)->uid);
	if (!vmsup_rpc_table_check_owner(ctx, call, &error)) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	/* a request that changed a VM counts as activity for the stale-VM sweep; a refused one not
	 */
	if (ctx->stats_service != NULL && (method->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME) &&
	    !(method->flags & VMSUP_RPC_FLAG_READ_ONLY))
		vmsup_rpc_call_set_on_success(call,
					      vmsup_rpc_note_activity,
					      g_object_ref(ctx->stats_service),
					      g_object_unref);
	method->func(ctx, call);
}
