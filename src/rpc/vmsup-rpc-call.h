/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gunixfdlist.h>
#include <glib-object.h>
#include <json-glib/json-glib.h>

#include "vmsup-caller.h"
#include "vmsup-metrics.h"

G_BEGIN_DECLS

typedef struct _VmsupRpcMethod VmsupRpcMethod;
typedef struct _VmsupRpcCall VmsupRpcCall;

/*
 * How a transport receives the answer: exactly one of @result (full) and
 * @error (already in VMSUP_ERROR, or a JSON-RPC protocol code for
 * -32602 faults found by validation) is set.
 */
typedef void (*VmsupRpcReplyFunc)(VmsupRpcCall *call,
				  JsonNode *result,
				  const GError *error,
				  gpointer user_data);

/* runs just before a successful answer is delivered (not on errors) */
typedef void (*VmsupRpcSuccessFunc)(VmsupRpcCall *call, gpointer user_data);

/*
 * How events.subscribe and events.unsubscribe reach the connection a call
 * came on: only a transport that can deliver events sets one.
 */
typedef void (*VmsupRpcSubscribeFunc)(VmsupRpcCall *call, gboolean subscribe, gpointer user_data);

/* how a handler sends a notification ahead of its answer, on the call's own connection */
typedef void (*VmsupRpcNotifyFunc)(VmsupRpcCall *call,
				   const gchar *method,
				   JsonObject *params,
				   gpointer user_data);

/* one request on its way through the table; refcounted; handlers see only this */
VmsupRpcCall *
vmsup_rpc_call_new(const VmsupRpcMethod *method,
		   JsonObject *params,
		   const VmsupCaller *caller,
		   VmsupRpcReplyFunc reply,
		   gpointer reply_data,
		   GDestroyNotify reply_data_free);
VmsupRpcCall *
vmsup_rpc_call_ref(VmsupRpcCall *call);
void
vmsup_rpc_call_unref(VmsupRpcCall *call);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupRpcCall, vmsup_rpc_call_unref)

const VmsupRpcMethod *
vmsup_rpc_call_get_method(VmsupRpcCall *call);
/* never NULL: an absent params is an empty object */
JsonObject *
vmsup_rpc_call_get_params(VmsupRpcCall *call);
/* who asks, as the transport found it */
const VmsupCaller *
vmsup_rpc_call_get_caller(VmsupRpcCall *call);

/* which transport made it, for the metrics: a static string ("jsonrpc", "dbus") */
void
vmsup_rpc_call_set_door(VmsupRpcCall *call, const gchar *door);
/* where its answer is counted (by method, door and outcome) and timed; NULL: nowhere */
void
vmsup_rpc_call_set_metrics(VmsupRpcCall *call, VmsupMetrics *metrics);

/* @user_data is unowned: the transport keeps it alive for as long as the call */
void
vmsup_rpc_call_set_subscriber(VmsupRpcCall *call, VmsupRpcSubscribeFunc func, gpointer user_data);
/* FALSE when the call came on a transport without events */
gboolean
vmsup_rpc_call_subscribe(VmsupRpcCall *call, gboolean subscribe);

/* @user_data is unowned, as the subscriber's */
void
vmsup_rpc_call_set_notifier(VmsupRpcCall *call, VmsupRpcNotifyFunc func, gpointer user_data);
/* FALSE when the call came on a transport without notifications; @params is borrowed */
gboolean
vmsup_rpc_call_can_notify(VmsupRpcCall *call);
gboolean
vmsup_rpc_call_notify(VmsupRpcCall *call, const gchar *method, JsonObject *params);

/* answer exactly once; @result is taken (full) */
void
vmsup_rpc_call_return(VmsupRpcCall *call, JsonNode *result);
void
vmsup_rpc_call_return_object(VmsupRpcCall *call, JsonObject *result);
/*
 * answers @result with a descriptor: @fd (taken) goes into the call's
 * descriptor list and @result gets "fd", its index there, which is the
 * index among the descriptors sent with the answer (JSON-RPC: SCM_RIGHTS
 * on the reply's line; D-Bus: the message's Unix fd list, as `h`)
 */
void
vmsup_rpc_call_return_with_fd(VmsupRpcCall *call, JsonObject *result, gint fd);
/* the descriptors of the answer, NULL for none; borrowed, valid in the reply function */
GUnixFDList *
vmsup_rpc_call_get_fd_list(VmsupRpcCall *call);
/* the error goes out with its wire code: vmsup_error_convert() */
void
vmsup_rpc_call_return_error(VmsupRpcCall *call, const GError *error);
gboolean
vmsup_rpc_call_has_returned(VmsupRpcCall *call);
/* at most one per call; @data is freed with the call */
void
vmsup_rpc_call_set_on_success(VmsupRpcCall *call,
			      VmsupRpcSuccessFunc func,
			      gpointer data,
			      GDestroyNotify data_free);

G_END_DECLS
