/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "vmsup-image-store.h"
#include "vmsup-policy.h"
#include "vmsup-rpc-call.h"
#include "vmsup-stats-service.h"
#include "vmsup-vm-service.h"
#include "vmsup-workspace-service.h"

G_BEGIN_DECLS

/* the notifications a subscribed JSON-RPC connection receives */
#define VMSUP_RPC_EVENT_VM_CHANGED "event.vm-changed"
#define VMSUP_RPC_EVENT_VM_REMOVED "event.vm-removed"
#define VMSUP_RPC_EVENT_OPERATION_CHANGED "event.operation-changed"

/* what handlers resolve through; filled by the daemon's wiring, all unowned */
typedef struct _VmsupEventSource VmsupEventSource;

typedef struct {
	VmsupPolicy *policy;      /* every ownership and access decision; never NULL */
	VmsupEventSource *events; /* the one path of events; NULL: none are sent */
	VmsupVmService *vm_service;
	VmsupStatsService *stats_service;         /* NULL: stats verbs answer failed-precondition */
	VmsupWorkspaceService *workspace_service; /* NULL likewise */
	VmsupImageStore *image_store;             /* NULL likewise */
	const gchar *mode;                        /* "session" / "system" */
	const gchar *socket_path;
	gint64 started_at;     /* g_get_real_time() of daemon start */
	VmsupMetrics *metrics; /* where every answer is counted; NULL: nowhere */
} VmsupRpcContext;

/* what the D-Bus adapter and authorization need to know of a method */
typedef enum {
	VMSUP_RPC_FLAG_NONE = 0,
	VMSUP_RPC_FLAG_TAKES_VM_NAME = 1 << 0, /* "name", a VM name; the first `s` on D-Bus */
	VMSUP_RPC_FLAG_TAKES_NAME = 1 << 1,    /* "name" required, a workspace name */
	VMSUP_RPC_FLAG_TAKES_ID = 1 << 2,      /* "id" (an operation) required, inside a{sv} */
	VMSUP_RPC_FLAG_READ_ONLY = 1 << 3,     /* no state change: polkit's read action */
	VMSUP_RPC_FLAG_RETURNS_LIST = 1 << 4,  /* D-Bus answers aa{sv} of the named member */
	VMSUP_RPC_FLAG_CREATES = 1 << 5,       /* "name" is of something new: nobody owns it yet */
	VMSUP_RPC_FLAG_TAKES_IMAGE_NAME = 1 << 6, /* "name" required, a stored image's: no owner */
	/*
	 * answers with a descriptor (vmsup_rpc_call_return_with_fd()): D-Bus `h`,
	 * JSON-RPC {"fd": index} with the descriptor by SCM_RIGHTS on the line
	 */
	VMSUP_RPC_FLAG_RETURNS_FD = 1 << 7,
} VmsupRpcFlags;

typedef enum {
	VMSUP_RPC_TYPE_STRING,
	VMSUP_RPC_TYPE_VM_NAME,        /* a string vmsup_name_validate() takes as a VM name */
	VMSUP_RPC_TYPE_WORKSPACE_NAME, /* likewise, a workspace name */
	VMSUP_RPC_TYPE_IMAGE_NAME,     /* likewise, a stored image's name */
	VMSUP_RPC_TYPE_INT,
	VMSUP_RPC_TYPE_BOOL,
	VMSUP_RPC_TYPE_STRV,      /* array of strings */
	VMSUP_RPC_TYPE_INT_ARRAY, /* array of integers */
	VMSUP_RPC_TYPE_OBJECT,
} VmsupRpcType;

/* the values a STRING (or each string of a STRV) may take, NULL-terminated */
typedef const gchar *const *(*VmsupRpcChoicesFunc)(void);

typedef struct {
	const gchar *name;
	VmsupRpcType type;
	gboolean required;
	gint64 min; /* for ints, when min < max */
	gint64 max;
	VmsupRpcChoicesFunc choices; /* NULL: any string */
} VmsupRpcParam;

typedef void (*VmsupRpcFunc)(const VmsupRpcContext *ctx, VmsupRpcCall *call);

struct _VmsupRpcMethod {
	const gchar *rpc_name;  /* "vm.create" */
	const gchar *dbus_name; /* "Create" */
	VmsupRpcFlags flags;
	const gchar *list_member;    /* with RETURNS_LIST: "vms", "operations", ... */
	const VmsupRpcParam *params; /* terminated by {NULL} */
	VmsupRpcFunc func;
};

/*
 * The methods with a D-Bus twin, terminated by an entry with rpc_name NULL.
 * events.subscribe and events.unsubscribe are table entries too, found by
 * vmsup_rpc_table_lookup() and dispatched like the others, but have no
 * twin: D-Bus clients receive signals instead.
 */
const VmsupRpcMethod *
vmsup_rpc_table_get_methods(void);
const VmsupRpcMethod *
vmsup_rpc_table_lookup(const gchar *rpc_name);
const VmsupRpcMethod *
vmsup_rpc_table_lookup_dbus(const gchar *dbus_name);

/*
 * Checks @params against @method's schema: an unknown member, a wrong type, a
 * string not among the parameter's choices or a missing required one is
 * VMSUP_ERROR_INVALID_PARAMS naming the member (and the string); a value out of
 * range or an invalid VM or workspace name is VMSUP_ERROR_INVALID_ARGUMENT.
 * What passes is all a service is ever given.
 */
gboolean
vmsup_rpc_table_validate(const VmsupRpcMethod *method, JsonObject *params, GError **error);

/*
 * Whether the caller of @call may act on what it names, as ctx->policy
 * decides: FAILED_PRECONDITION naming the owner otherwise. Something that
 * does not exist is left to the handler to report.
 */
gboolean
vmsup_rpc_table_check_owner(const VmsupRpcContext *ctx, VmsupRpcCall *call, GError **error);

/*
 * Validates, checks the owner, then runs the handler; a refusal is returned
 * through the call. vm.list, op.list and workspace.list show a caller only
 * what the policy lets it see.
 */
void
vmsup_rpc_table_dispatch(const VmsupRpcContext *ctx, VmsupRpcCall *call);

G_END_DECLS
