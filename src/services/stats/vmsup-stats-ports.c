/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VmsupStatsService, vm.ports: the guest's TCP listeners, a host forward
 * for each (added through QMP, at most a few per VM) and an HTTP probe
 * through it.
 */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "vmsup-error.h"
#include "vmsup-guest-ports.h"
#include "vmsup-http-probe.h"
#include "vmsup-json.h"
#include "vmsup-log.h"
#include "vmsup-stats-service-private.h"

/* reading /proc/net/tcp{,6} in the guest: two files, a few agent round trips each */
#define VMSUP_STATS_AGENT_READ_TIMEOUT_MS 5000
/* a limit on what one guest can make us allocate on the host */
#define VMSUP_STATS_MAX_FORWARDS 32
#define VMSUP_STATS_FORWARD_TRIES 3
/* the user-mode netdev QEMU is started with */
#define VMSUP_STATS_NETDEV_ID "n0"

typedef struct {
	gchar *host_address;
	guint16 host_port;
	guint16 guest_port;
} VmsupStatsForward;

/* --- vm.ports ---------------------------------------------------------------- */

typedef struct {
	VmsupGuestListener *listener; /* owned */
	gchar *host_address;          /* owned, NULL: no forward */
	guint16 host_port;
	VmsupHttpProbeResult *probe; /* owned, NULL: not probed */
} VmsupStatsPort;

typedef struct {
	gchar *name;
	VmsupVmHandles *handles;
	gchar *tcp;
	gchar *tcp6;
	GPtrArray *ports; /* of VmsupStatsPort */
	GArray *forwards; /* of VmsupStatsForward: what QEMU has now */
	guint next;       /* the port being forwarded */
	guint tries;
	guint16 trying_port; /* host port of the hostfwd_add in flight */
	guint pending;       /* probes in flight */
} VmsupStatsPorts;

static void
vmsup_stats_port_free(VmsupStatsPort *port)
{
	vmsup_guest_listener_free(port->listener);
	g_free(port->host_address);
	vmsup_http_probe_result_free(port->probe);
	g_free(port);
}

static void
vmsup_stats_forward_clear(VmsupStatsForward *forward)
{
	g_free(forward->host_address);
}

static void
vmsup_stats_ports_free(VmsupStatsPorts *data)
{
	g_free(data->name);
	g_clear_pointer(&data->handles, vmsup_vm_handles_unref);
	g_free(data->tcp);
	g_free(data->tcp6);
	g_clear_pointer(&data->ports, g_ptr_array_unref);
	g_clear_pointer(&data->forwards, g_array_unref);
	g_free(data);
}

/*
 * The forwards of HMP "info usernet":
 *   TCP[HOST_FORWARD]  13       127.0.0.1 18124       10.0.2.15  8080     0     0
 */
static GArray *
vmsup_stats_parse_usernet(const gchar *text)
{
	GArray *forwards = g_array_new(FALSE, TRUE, sizeof(VmsupStatsForward));
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	g_array_set_clear_func(forwards, (GDestroyNotify)vmsup_stats_forward_clear);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) words = NULL;
		g_autoptr(GPtrArray) fields = g_ptr_array_new();
		VmsupStatsForward forward = {0};
		guint64 host_port;
		guint64 guest_port;

		if (strstr(lines[i], "TCP[HOST_FORWARD]") == NULL)
			continue;
		words = g_strsplit_set(g_strstrip(lines[i]), " \t", -1);
		for (guint j = 0; words[j] != NULL; j++) {
			if (words[j][0] != '\0')
				g_ptr_array_add(fields, words[j]);
		}
		/* proto, fd, source address, port, dest address, port, ... */
		if (fields->len < 6)
			continue;
		if (!g_ascii_string_to_unsigned(g_ptr_array_index(fields, 3),
						10,
						1,
						G_MAXUINT16,
						&host_port,
						NULL) ||
		    !g_ascii_string_to_unsigned(g_ptr_array_index(fields, 5),
						10,
						1,
						G_MAXUINT16,
						&guest_port,
						NULL))
			continue;
		forward.host_address = g_strdup(g_ptr_array_index(fields, 2));
		forward.host_port = (guint16)host_port;
		forward.guest_port = (guint16)guest_port;
		g_array_append_val(forwards, forward);
	}
	return forwards;
}

static const VmsupStatsForward *
vmsup_stats_ports_find_forward(GArray *forwards, guint16 guest_port)
{
	for (guint i = 0; forwards != NULL && i < forwards->len; i++) {
		const VmsupStatsForward *f = &g_array_index(forwards, VmsupStatsForward, i);
		if (f->guest_port == guest_port)
			return f;
	}
	return NULL;
}

static void
vmsup_stats_ports_finish_result(GTask *task)
{
	VmsupStatsPorts *data = g_task_get_task_data(task);
	JsonObject *result = json_object_new();
	JsonArray *array = json_array_new();

	for (guint i = 0; i < data->ports->len; i++) {
		VmsupStatsPort *port = g_ptr_array_index(data->ports, i);
		JsonObject *obj = json_object_new();
		gboolean web = port->probe != NULL && port->probe->web;

		json_object_set_int_member(obj, "guest_port", port->listener->port);
		json_object_set_string_member(obj, "proto", "tcp");
		json_object_set_string_member(obj, "guest_address", port->listener->address);
		if (port->host_address != NULL) {
			json_object_set_string_member(obj, "host_address", port->host_address);
			json_object_set_int_member(obj, "host_port", port->host_port);
		} else {
			json_object_set_null_member(obj, "host_address");
			json_object_set_null_member(obj, "host_port");
		}
		json_object_set_boolean_member(obj, "web", web);
		if (web) {
			json_object_set_string_member(obj, "scheme", port->probe->scheme);
			json_object_set_string_member(obj, "url", port->probe->url);
		} else {
			json_object_set_null_member(obj, "scheme");
		}
		json_array_add_object_element(array, obj);
	}
	json_object_set_array_member(result, "ports", array);
	g_task_return_pointer(task, result, (GDestroyNotify)json_object_unref);
}

typedef struct {
	GTask *task;          /* owned */
	VmsupStatsPort *port; /* unowned: lives in the task's data */
} VmsupStatsProbeCtx;

static void
vmsup_stats_ports_probe_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupStatsProbeCtx *ctx = user_data;
	g_autoptr(GTask) task = ctx->task;
	VmsupStatsPorts *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	ctx->port->probe = vmsup_http_probe_finish(res, &error);
	if (ctx->port->probe == NULL)
		g_debug("VM '%s': probe of guest port %u: %s",
			data->name,
			ctx->port->listener->port,
			error->message);
	g_free(ctx);
	if (--data->pending == 0)
		vmsup_stats_ports_finish_result(task);
}

static void
vmsup_stats_ports_probe_all(GTask *task)
{
	VmsupStatsService *self = g_task_get_source_object(task);
	VmsupStatsPorts *data = g_task_get_task_data(task);

	/* one for this function */
	data->pending = 1;
	for (guint i = 0; i < data->ports->len; i++) {
		VmsupStatsPort *port = g_ptr_array_index(data->ports, i);
		VmsupStatsProbeCtx *ctx;
		const gchar *address = port->host_address;

		if (address == NULL)
			continue;
		/* a forward bound to every address is reached on loopback */
		if (g_strcmp0(address, "0.0.0.0") == 0 || address[0] == '\0' ||
		    g_strcmp0(address, "*") == 0)
			address = "127.0.0.1";
		ctx = g_new0(VmsupStatsProbeCtx, 1);
		ctx->task = g_object_ref(task);
		ctx->port = port;
		data->pending++;
		vmsup_http_probe_async(address,
				       port->host_port,
				       self->probe_timeout_ms,
				       g_task_get_cancellable(task),
				       vmsup_stats_ports_probe_done_cb,
				       ctx);
	}
	if (--data->pending == 0)
		vmsup_stats_ports_finish_result(task);
}

/* a host port nothing listens on now and that no forward of ours was given */
static guint16
vmsup_stats_service_pick_host_port(VmsupStatsService *self)
{
	for (guint attempt = 0; attempt < 16; attempt++) {
		g_autoptr(GSocket) socket = NULL;
		g_autoptr(GInetAddress) loopback = NULL;
		g_autoptr(GSocketAddress) address = NULL;
		g_autoptr(GSocketAddress) bound = NULL;
		guint16 port;

		socket = g_socket_new(G_SOCKET_FAMILY_IPV4,
				      G_SOCKET_TYPE_STREAM,
				      G_SOCKET_PROTOCOL_TCP,
				      NULL);
		if (socket == NULL)
			return 0;
		loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
		address = g_inet_socket_address_new(loopback, 0);
		if (!g_socket_bind(socket, address, FALSE, NULL))
			return 0;
		bound = g_socket_get_local_address(socket, NULL);
		if (bound == NULL)
			return 0;
		port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
		if (!g_hash_table_contains(self->reserved_ports, GUINT_TO_POINTER(port)))
			return port;
	}
	return 0;
}

static void
vmsup_stats_ports_forward_next(GTask *task_owned);

static void
vmsup_stats_ports_hostfwd_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsService *self = g_task_get_source_object(task);
	VmsupStatsPorts *data = g_task_get_task_data(task);
	VmsupStatsPort *port = g_ptr_array_index(data->ports, data->next);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_service_qmp_execute_finish(res, &error);
	const gchar *output = NULL;

	if (node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
	    json_node_get_value_type(node) == G_TYPE_STRING)
		output = json_node_get_string(node);
	/* HMP says nothing on success and prints the failure */
	if (node != NULL && output != NULL && output[0] == '\0') {
		VmsupStatsForward forward = {g_strdup("127.0.0.1"),
					     data->trying_port,
					     port->listener->port};
		vmsup_log_vm(G_LOG_LEVEL_INFO,
			     data->name,
			     "VM '%s': guest port %u forwarded from 127.0.0.1:%u",
			     data->name,
			     port->listener->port,
			     data->trying_port);
		port->host_address = g_strdup("127.0.0.1");
		port->host_port = data->trying_port;
		g_array_append_val(data->forwards, forward);
		data->next++;
		data->tries = 0;
		vmsup_stats_ports_forward_next(g_steal_pointer(&task));
		return;
	}
	g_hash_table_remove(self->reserved_ports, GUINT_TO_POINTER(data->trying_port));
	if (error != NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	{
		g_autofree gchar *why =
		    g_strchomp(g_strdup(error != NULL ? error->message : output));
		vmsup_log_vm(G_LOG_LEVEL_DEBUG,
			     data->name,
			     "VM '%s': hostfwd_add for guest port %u failed: %s",
			     data->name,
			     port->listener->port,
			     why != NULL ? why : "no answer");
	}
	/* another VM may have taken the port in between: try another, a few times */
	if (++data->tries >= VMSUP_STATS_FORWARD_TRIES) {
		vmsup_log_vm(G_LOG_LEVEL_WARNING,
			     data->name,
			     "VM '%s': cannot forward guest port %u, ignoring",
			     data->name,
			     port->listener->port);
		data->next++;
		data->tries = 0;
	}
	vmsup_stats_ports_forward_next(g_steal_pointer(&task));
}

/* forwards the listeners that have none, one after the other */
static void
vmsup_stats_ports_forward_next(GTask *task_owned)
{
	g_autoptr(GTask) task = task_owned;
	VmsupStatsService *self = g_task_get_source_object(task);
	VmsupStatsPorts *data = g_task_get_task_data(task);
	GCancellable *cancellable;
	g_autoptr(JsonObject) args = NULL;
	g_autofree gchar *command = NULL;

	for (; data->next < data->ports->len; data->next++) {
		VmsupStatsPort *port = g_ptr_array_index(data->ports, data->next);
		const VmsupStatsForward *forward =
		    vmsup_stats_ports_find_forward(data->forwards, port->listener->port);
		if (forward != NULL) {
			/* reuse what QEMU already has */
			port->host_address = g_strdup(forward->host_address);
			port->host_port = forward->host_port;
			continue;
		}
		if (!port->listener->reachable)
			continue;
		if (data->forwards->len >= VMSUP_STATS_MAX_FORWARDS) {
			vmsup_log_vm(G_LOG_LEVEL_WARNING,
				     data->name,
				     "VM '%s' has %u forwards already; not forwarding guest port "
				     "%u, ignoring",
				     data->name,
				     data->forwards->len,
				     port->listener->port);
			continue;
		}
		break;
	}
	if (data->next >= data->ports->len) {
		vmsup_stats_ports_probe_all(task);
		return;
	}

	data->trying_port = vmsup_stats_service_pick_host_port(self);
	if (data->trying_port == 0) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_INTERNAL,
					_("No free TCP port on 127.0.0.1 for a forward to VM '%s'"),
					data->name);
		return;
	}
	/* reserved until the VM stops, so two VMs never get the same port */
	g_hash_table_insert(self->reserved_ports,
			    GUINT_TO_POINTER(data->trying_port),
			    g_strdup(data->name));
	command = g_strdup_printf(
	    "hostfwd_add " VMSUP_STATS_NETDEV_ID " tcp:127.0.0.1:%u-:%u",
	    data->trying_port,
	    ((VmsupStatsPort *)g_ptr_array_index(data->ports, data->next))->listener->port);
	args = json_object_new();
	json_object_set_string_member(args, "command-line", command);
	/* not in the argument list: the steal may be evaluated first */
	cancellable = g_task_get_cancellable(task);
	vmsup_stats_service_qmp_execute_async(data->handles,
					      "human-monitor-command",
					      args,
					      cancellable,
					      vmsup_stats_ports_hostfwd_cb,
					      g_steal_pointer(&task));
}

static void
vmsup_stats_ports_usernet_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsPorts *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = vmsup_stats_service_qmp_execute_finish(res, &error);

	if (node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
	    json_node_get_value_type(node) == G_TYPE_STRING) {
		data->forwards = vmsup_stats_parse_usernet(json_node_get_string(node));
	} else {
		/* without HMP, the forwards QEMU was started with */
		GArray *started = data->handles->forwards;
		g_debug("VM '%s': info usernet: %s",
			data->name,
			error != NULL ? error->message : "not a string");
		data->forwards = g_array_new(FALSE, TRUE, sizeof(VmsupStatsForward));
		g_array_set_clear_func(data->forwards, (GDestroyNotify)vmsup_stats_forward_clear);
		for (guint i = 0; started != NULL && i < started->len; i++) {
			const VmsupQemuForward *f = &g_array_index(started, VmsupQemuForward, i);
			VmsupStatsForward forward = {g_strdup("127.0.0.1"),
						     f->host_port,
						     f->guest_port};
			g_array_append_val(data->forwards, forward);
		}
	}
	data->next = 0;
	vmsup_stats_ports_forward_next(g_steal_pointer(&task));
}

static void
vmsup_stats_ports_parse_and_forward(GTask *task)
{
	VmsupStatsPorts *data = g_task_get_task_data(task);
	g_autoptr(GPtrArray) listeners = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) args = NULL;

	if (data->tcp == NULL && data->tcp6 == NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("The guest agent of VM '%s' could not read /proc/net/tcp "
					  "nor /proc/net/tcp6; check with 'vmsup health %s'"),
					data->name,
					data->name);
		return;
	}
	listeners = vmsup_guest_ports_parse_all(data->tcp, data->tcp6, &error);
	if (listeners == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	data->ports = g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_stats_port_free);
	for (guint i = 0; i < listeners->len; i++) {
		VmsupStatsPort *port = g_new0(VmsupStatsPort, 1);
		port->listener = g_steal_pointer(&g_ptr_array_index(listeners, i));
		g_ptr_array_add(data->ports, port);
	}
	args = json_object_new();
	json_object_set_string_member(args, "command-line", "info usernet");
	vmsup_stats_service_qmp_execute_async(data->handles,
					      "human-monitor-command",
					      args,
					      g_task_get_cancellable(task),
					      vmsup_stats_ports_usernet_cb,
					      g_object_ref(task));
}

static gchar *
vmsup_stats_bytes_to_text(GBytes *bytes)
{
	gsize len = 0;
	const gchar *data = g_bytes_get_data(bytes, &len);
	return g_strndup(data != NULL ? data : "", len);
}

static void
vmsup_stats_ports_read_tcp6_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsPorts *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes =
	    vmsup_qga_client_read_file_finish(VMSUP_QGA_CLIENT(source), res, &error);

	if (bytes != NULL)
		data->tcp6 = vmsup_stats_bytes_to_text(bytes);
	else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
		 vmsup_stats_service_error_is_timeout(error)) {
		g_task_return_error(task, vmsup_stats_service_agent_error(data->name, error));
		return;
	} else {
		/* a guest without IPv6 has no tcp6 table */
		g_debug("VM '%s': /proc/net/tcp6: %s", data->name, error->message);
	}
	vmsup_stats_ports_parse_and_forward(task);
}

static void
vmsup_stats_ports_read_tcp_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupStatsPorts *data = g_task_get_task_data(task);
	GCancellable *cancellable;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes =
	    vmsup_qga_client_read_file_finish(VMSUP_QGA_CLIENT(source), res, &error);

	if (bytes != NULL)
		data->tcp = vmsup_stats_bytes_to_text(bytes);
	else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
		 vmsup_stats_service_error_is_timeout(error)) {
		g_task_return_error(task, vmsup_stats_service_agent_error(data->name, error));
		return;
	} else {
		g_debug("VM '%s': /proc/net/tcp: %s", data->name, error->message);
	}
	cancellable = g_task_get_cancellable(task);
	vmsup_qga_client_read_file_async(data->handles->qga,
					 "/proc/net/tcp6",
					 VMSUP_STATS_AGENT_READ_TIMEOUT_MS,
					 cancellable,
					 vmsup_stats_ports_read_tcp6_cb,
					 g_steal_pointer(&task));
}

void
vmsup_stats_service_ports_async(VmsupStatsService *self,
				const VmsupCaller *caller,
				JsonObject *params,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupStatsVm) vm = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	VmsupStatsPorts *data;
	const gchar *name = NULL;

	g_return_if_fail(VMSUP_IS_STATS_SERVICE(self));
	g_return_if_fail(params != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_stats_service_ports_async);
	if (!vmsup_stats_service_resolve(self, task, params, TRUE, &name, &vm, &handles, NULL))
		return;
	vmsup_stats_service_vm_mark_active(vm, "vm.ports");
	data = g_new0(VmsupStatsPorts, 1);
	data->name = g_strdup(name);
	data->handles = g_steal_pointer(&handles);
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_stats_ports_free);
	vmsup_qga_client_read_file_async(data->handles->qga,
					 "/proc/net/tcp",
					 VMSUP_STATS_AGENT_READ_TIMEOUT_MS,
					 cancellable,
					 vmsup_stats_ports_read_tcp_cb,
					 g_steal_pointer(&task));
}

JsonObject *
vmsup_stats_service_ports_finish(VmsupStatsService *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}
