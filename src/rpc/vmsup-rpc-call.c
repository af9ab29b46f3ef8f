/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One request on its way through the dispatch table. The transport that made
 * it receives the answer through its reply function, exactly once.
 */

#include "config.h"

#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-metrics.h"
#include "vmsup-rpc-call.h"
#include "vmsup-rpc-table.h"

struct _VmsupRpcCall {
	gint ref_count;
	const VmsupRpcMethod *method; /* unowned: the static table */
	JsonObject *params;           /* owned */
	VmsupCaller caller;
	VmsupRpcReplyFunc reply;
	gpointer reply_data;
	GDestroyNotify reply_data_free;
	VmsupRpcSuccessFunc on_success;
	gpointer on_success_data;
	GDestroyNotify on_success_data_free;
	VmsupRpcSubscribeFunc subscribe;
	gpointer subscribe_data; /* unowned */
	VmsupRpcNotifyFunc notify;
	gpointer notify_data; /* unowned */
	GUnixFDList *fds;     /* owned, nullable: what goes with the answer */
	gboolean returned;
	const gchar *door;     /* static: "jsonrpc", "dbus", ... */
	gint64 started;        /* monotonic */
	VmsupMetrics *metrics; /* owned, nullable */
};

VmsupRpcCall *
vmsup_rpc_call_new(const VmsupRpcMethod *method,
		   JsonObject *params,
		   const VmsupCaller *caller,
		   VmsupRpcReplyFunc reply,
		   gpointer reply_data,
		   GDestroyNotify reply_data_free)
{
	VmsupRpcCall *call;

	g_return_val_if_fail(method != NULL, NULL);
	g_return_val_if_fail(caller != NULL, NULL);
	g_return_val_if_fail(reply != NULL, NULL);

	call = g_new0(VmsupRpcCall, 1);
	call->ref_count = 1;
	call->method = method;
	call->params = params != NULL ? json_object_ref(params) : json_object_new();
	call->caller = *caller;
	call->reply = reply;
	call->reply_data = reply_data;
	call->reply_data_free = reply_data_free;
	call->door = "other";
	call->started = g_get_monotonic_time();
	return call;
}

VmsupRpcCall *
vmsup_rpc_call_ref(VmsupRpcCall *call)
{
	g_return_val_if_fail(call != NULL, NULL);
	g_atomic_int_inc(&call->ref_count);
	return call;
}

static void
vmsup_rpc_call_drop_reply_data(VmsupRpcCall *call)
{
	if (call->reply_data_free != NULL && call->reply_data != NULL)
		call->reply_data_free(call->reply_data);
	call->reply_data = NULL;
	call->reply_data_free = NULL;
}

void
vmsup_rpc_call_unref(VmsupRpcCall *call)
{
	g_return_if_fail(call != NULL);
	if (!g_atomic_int_dec_and_test(&call->ref_count))
		return;
	if (!call->returned)
		g_debug("%s: dropped without an answer", call->method->rpc_name);
	vmsup_rpc_call_drop_reply_data(call);
	if (call->on_success_data_free != NULL)
		call->on_success_data_free(call->on_success_data);
	json_object_unref(call->params);
	g_clear_object(&call->fds);
	g_clear_object(&call->metrics);
	g_free(call);
}

const VmsupRpcMethod *
vmsup_rpc_call_get_method(VmsupRpcCall *call)
{
	g_return_val_if_fail(call != NULL, NULL);
	return call->method;
}

JsonObject *
vmsup_rpc_call_get_params(VmsupRpcCall *call)
{
	g_return_val_if_fail(call != NULL, NULL);
	return call->params;
}

const VmsupCaller *
vmsup_rpc_call_get_caller(VmsupRpcCall *call)
{
	g_return_val_if_fail(call != NULL, NULL);
	return &call->caller;
}

void
vmsup_rpc_call_set_door(VmsupRpcCall *call, const gchar *door)
{
	g_return_if_fail(call != NULL);
	g_return_if_fail(door != NULL);
	call->door = door;
}

void
vmsup_rpc_call_set_metrics(VmsupRpcCall *call, VmsupMetrics *metrics)
{
	g_return_if_fail(call != NULL);
	g_set_object(&call->metrics, metrics);
}

/* every call is answered here exactly once, whichever door it came through */
static void
vmsup_rpc_call_count(VmsupRpcCall *call, const GError *error)
{
	const gchar *labels[] = {"method", call->method->rpc_name, "door", call->door, NULL};

	if (call->metrics == NULL)
		return;
	vmsup_metrics_counter_add(call->metrics,
				  "vmsup_rpc_requests_total",
				  "RPC requests answered, by method and door (jsonrpc, dbus).",
				  labels,
				  1);
	if (error != NULL)
		vmsup_metrics_counter_add(
		    call->metrics,
		    "vmsup_rpc_errors_total",
		    "RPC requests answered with an error, by method and door.",
		    labels,
		    1);
	vmsup_metrics_observe_seconds(
	    call->metrics,
	    "vmsup_rpc_request_duration_seconds",
	    "Time from a request's arrival to its answer, by method and door.",
	    labels,
	    (gdouble)(g_get_monotonic_time() - call->started) / G_USEC_PER_SEC);
}

void
vmsup_rpc_call_set_subscriber(VmsupRpcCall *call, VmsupRpcSubscribeFunc func, gpointer user_data)
{
	g_return_if_fail(call != NULL);
	call->subscribe = func;
	call->subscribe_data = user_data;
}

gboolean
vmsup_rpc_call_subscribe(VmsupRpcCall *call, gboolean subscribe)
{
	g_return_val_if_fail(call != NULL, FALSE);
	if (call->subscribe == NULL)
		return FALSE;
	call->subscribe(call, subscribe, call->subscribe_data);
	return TRUE;
}

void
vmsup_rpc_call_set_notifier(VmsupRpcCall *call, VmsupRpcNotifyFunc func, gpointer user_data)
{
	g_return_if_fail(call != NULL);
	call->notify = func;
	call->notify_data = user_data;
}

gboolean
vmsup_rpc_call_can_notify(VmsupRpcCall *call)
{
	g_return_val_if_fail(call != NULL, FALSE);
	return call->notify != NULL;
}

gboolean
vmsup_rpc_call_notify(VmsupRpcCall *call, const gchar *method, JsonObject *params)
{
	g_return_val_if_fail(call != NULL, FALSE);
	g_return_val_if_fail(method != NULL && params != NULL, FALSE);
	if (call->notify == NULL)
		return FALSE;
	call->notify(call, method, params, call->notify_data);
	return TRUE;
}

void
vmsup_rpc_call_set_on_success(VmsupRpcCall *call,
			      VmsupRpcSuccessFunc func,
			      gpointer data,
			      GDestroyNotify data_free)
{
	g_return_if_fail(call != NULL);
	g_return_if_fail(call->on_success == NULL);
	call->on_success = func;
	call->on_success_data = data;
	call->on_success_data_free = data_free;
}

gboolean
vmsup_rpc_call_has_returned(VmsupRpcCall *call)
{
	g_return_val_if_fail(call != NULL, FALSE);
	return call->returned;
}

static void
vmsup_rpc_call_deliver(VmsupRpcCall *call, JsonNode *result, const GError *error)
{
	/* the reply may drop the transport's last ref on us */
	g_autoptr(VmsupRpcCall) keep = vmsup_rpc_call_ref(call);

	call->returned = TRUE;
	vmsup_rpc_call_count(call, error);
	if (error == NULL && call->on_success != NULL)
		call->on_success(call, call->on_success_data);
	call->reply(call, result, error, call->reply_data);
	vmsup_rpc_call_drop_reply_data(call);
}

void
vmsup_rpc_call_return(VmsupRpcCall *call, JsonNode *result)
{
	g_return_if_fail(call != NULL);
	g_return_if_fail(result != NULL);
	if (call->returned) {
		g_critical("%s answered twice", call->method->rpc_name);
		json_node_unref(result);
		return;
	}
	vmsup_rpc_call_deliver(call, result, NULL);
}

void
vmsup_rpc_call_return_object(VmsupRpcCall *call, JsonObject *result)
{
	JsonNode *node;

	g_return_if_fail(call != NULL);
	g_return_if_fail(result != NULL);
	node = vmsup_json_node_new_object(result);
	json_object_unref(result);
	vmsup_rpc_call_return(call, node);
}

void
vmsup_rpc_call_return_with_fd(VmsupRpcCall *call, JsonObject *result, gint fd)
{
	g_autoptr(GError) error = NULL;
	gint index;

	g_return_if_fail(call != NULL);
	g_return_if_fail(result != NULL);
	g_return_if_fail(fd >= 0);
	if (call->fds == NULL)
		call->fds = g_unix_fd_list_new();
	index = g_unix_fd_list_append(call->fds, fd, &error);
	close(fd);
	if (index < 0) {
		json_object_unref(result);
		g_prefix_error(&error, "cannot pass a descriptor: ");
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	json_object_set_int_member(result, "fd", index);
	vmsup_rpc_call_return_object(call, result);
}

GUnixFDList *
vmsup_rpc_call_get_fd_list(VmsupRpcCall *call)
{
	g_return_val_if_fail(call != NULL, NULL);
	return call->fds;
}

void
vmsup_rpc_call_return_error(VmsupRpcCall *call, const GError *error)
{
	g_autoptr(GError) converted = NULL;

	g_return_if_fail(call != NULL);
	g_return_if_fail(error != NULL);
	if (call->returned) {
		g_critical("%s answered twice", call->method->rpc_name);
		return;
	}
	converted = g_error_copy(error);
	vmsup_error_convert(&converted);
	vmsup_rpc_call_deliver(call, NULL, converted);
}
