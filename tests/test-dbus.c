/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The D-Bus transport. A private bus (GTestDBus) activates the built vmsupd
 * from tests/services, so activation is tested for real; every table entry
 * is called over D-Bus and over the JSON-RPC socket and must answer the
 * same; the per-VM objects follow their VMs; authorization is checked
 * against a fake polkit on the same bus.
 */

#include "config.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmsup-authorize.h"
#include "vmsup-dbus-server.h"
#include "vmsup-dbus-supervisor-skeleton.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-rpc-table.h"
#include "vmsup-test-util.h"

#define SUPERVISOR_IFACE "io.github.vmsup.Supervisor1"
#define VM_IFACE "io.github.vmsup.VM1"
#define TWIN_VM "twin"
#define TWIN_RUNNING_VM "twin-run"
/* a VM boots under TCG on this kind of machine: allow for it */
#define CALL_TIMEOUT_MS (180 * 1000)
#define WAIT_S 120

/* one bus and one activated daemon for the whole program: starting QEMUs is the costly part */
static struct {
	GTestDBus *bus;
	gchar *tmpdir;
	GDBusConnection *conn; /* the test's own connection to the bus */
	gboolean daemon_up;
	gint64 daemon_pid;
	gchar *socket_path;
	GSocketConnection *rpc; /* JSON-RPC to the same daemon */
	GDataInputStream *rpc_in;
	gint64 rpc_next_id;
	gboolean twin_ready;
	gint64 twin_op_id;
	gboolean twin_running_ready;
} global;

/* one answer of either transport: a result, or an error code and message */
typedef struct {
	JsonNode *result; /* owned, NULL on error */
	gint code;
	gchar *message;
} Answer;

static void
answer_clear(Answer *answer)
{
	g_clear_pointer(&answer->result, json_node_unref);
	g_clear_pointer(&answer->message, g_free);
	answer->code = 0;
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Answer, answer_clear)

static GVariant *
empty_vardict(void)
{
	return g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
}

static JsonObject *
parse_object(const gchar *json)
{
	g_autoptr(GError) error = NULL;
	JsonObject *object = vmsup_json_parse_object(json, -1, &error);
	g_assert_no_error(error);
	return object;
}

static gchar *
node_to_string(JsonNode *node)
{
	return vmsup_json_to_string(node, FALSE);
}

/* JSON-RPC */

static void
rpc_connect(void)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(global.socket_path);
	g_autoptr(GError) error = NULL;

	global.rpc = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(address), NULL, &error);
	g_assert_no_error(error);
	global.rpc_in =
	    g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(global.rpc)));
	g_data_input_stream_set_newline_type(global.rpc_in, G_DATA_STREAM_NEWLINE_TYPE_LF);
}

/* blocking is fine: the daemon is another process */
static void
rpc_call(const gchar *rpc_name, JsonObject *params, Answer *out)
{
	g_autoptr(JsonObject) request = json_object_new();
	g_autoptr(JsonNode) request_node = NULL;
	g_autofree gchar *line = NULL;
	g_autoptr(GError) error = NULL;
	gint64 id = ++global.rpc_next_id;
	GOutputStream *output = g_io_stream_get_output_stream(G_IO_STREAM(global.rpc));

	json_object_set_string_member(request, "jsonrpc", "2.0");
	json_object_set_int_member(request, "id", id);
	json_object_set_string_member(request, "method", rpc_name);
	json_object_set_object_member(request, "params", json_object_ref(params));
	request_node = vmsup_json_node_new_object(json_object_ref(request));
	line = vmsup_json_to_string(request_node, FALSE);
	g_assert_true(g_output_stream_write_all(output, line, strlen(line), NULL, NULL, &error));
	g_assert_true(g_output_stream_write_all(output, "\n", 1, NULL, NULL, &error));
	g_assert_no_error(error);

	for (;;) {
		g_autofree gchar *reply_line = NULL;
		g_autoptr(JsonObject) reply = NULL;
		JsonObject *rpc_error;

		reply_line = g_data_input_stream_read_line(global.rpc_in, NULL, NULL, &error);
		g_assert_no_error(error);
		g_assert_nonnull(reply_line);
		reply = parse_object(reply_line);
		/* anything without our id (a notification) is not the answer */
		if (vmsup_json_object_get_int(reply, "id", -1) != id)
			continue;
		if (json_object_has_member(reply, "error")) {
			rpc_error = json_object_get_object_member(reply, "error");
			out->code = vmsup_json_object_get_int(rpc_error, "code", 0);
			out->message =
			    g_strdup(vmsup_json_object_get_string(rpc_error, "message", ""));
		} else {
			out->result = json_node_copy(json_object_get_member(reply, "result"));
		}
		return;
	}
}

/* a JSON-RPC call that must succeed; returns its result object */
static JsonObject *
rpc_ok(const gchar *rpc_name, const gchar *params_json)
{
	g_autoptr(JsonObject) params = parse_object(params_json);
	g_auto(Answer) answer = {NULL};

	rpc_call(rpc_name, params, &answer);
	if (answer.result == NULL)
		g_error("%s %s failed: %s", rpc_name, params_json, answer.message);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(answer.result));
	return json_object_ref(json_node_get_object(answer.result));
}

/* D-Bus */

static GVariant *
dbus_call(const gchar *path,
	  const gchar *iface,
	  const gchar *method,
	  GVariant *args,
	  const gchar *reply_type,
	  GError **error)
{
	return g_dbus_connection_call_sync(global.conn,
					   VMSUP_DBUS_BUS_NAME,
					   path,
					   iface,
					   method,
					   args,
					   reply_type != NULL ? G_VARIANT_TYPE(reply_type) : NULL,
					   G_DBUS_CALL_FLAGS_NONE,
					   CALL_TIMEOUT_MS,
					   NULL,
					   error);
}

static void
answer_from_dbus(GVariant *reply, GError *error, Answer *out)
{
	if (reply == NULL) {
		g_dbus_error_strip_remote_error(error);
		/* our domain is registered, so the name maps back to our codes */
		out->code = error->domain == VMSUP_ERROR ? vmsup_error_get_code(error) : -1;
		out->message = g_strdup(error->message);
		return;
	}
	{
		g_autoptr(GVariant) child = g_variant_get_child_value(reply, 0);
		out->result = json_gvariant_serialize(child);
	}
}

/*
 * A method answering `h`: the descriptor must come in the message's fd list
 * and be a socket; the answer is {"fd": h}, as JSON-RPC gives it (whose
 * descriptor a client reading plain lines never sees)
 */
static void
dbus_call_fd(const gchar *path,
	     const gchar *iface,
	     const VmsupRpcMethod *method,
	     GVariant *args,
	     Answer *out)
{
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = json_object_new();
	struct stat st;
	gint32 handle = -1;
	gint fd;

	reply = g_dbus_connection_call_with_unix_fd_list_sync(global.conn,
							      VMSUP_DBUS_BUS_NAME,
							      path,
							      iface,
							      method->dbus_name,
							      args,
							      G_VARIANT_TYPE("(h)"),
							      G_DBUS_CALL_FLAGS_NONE,
							      CALL_TIMEOUT_MS,
							      NULL,
							      &fds,
							      NULL,
							      &error);
	if (reply == NULL) {
		answer_from_dbus(NULL, error, out);
		return;
	}
	g_variant_get(reply, "(h)", &handle);
	g_assert_nonnull(fds);
	g_assert_cmpint(g_unix_fd_list_get_length(fds), ==, 1);
	fd = g_unix_fd_list_get(fds, handle, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fstat(fd, &st), ==, 0);
	g_assert_true(S_ISSOCK(st.st_mode));
	close(fd);
	json_object_set_int_member(result, "fd", handle);
	out->result = vmsup_json_node_new_object(g_steal_pointer(&result));
}

/* the D-Bus twin of a JSON-RPC call, built by the contract's mapping rule */
static void
dbus_call_method(const VmsupRpcMethod *method, JsonObject *params, Answer *out)
{
	g_autoptr(JsonObject) options = json_object_new();
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	gboolean takes_name = (method->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME) != 0;
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;
	GVariant *args;

	json_object_iter_init(&iter, params);
	while (json_object_iter_next(&iter, &member, &node)) {
		if (takes_name && g_strcmp0(member, "name") == 0)
			continue;
		json_object_set_member(options, member, json_node_copy(node));
	}
	if (takes_name)
		args = g_variant_new("(s@a{sv})",
				     json_object_get_string_member(params, "name"),
				     vmsup_dbus_variant_from_json_object(options));
	else
		args = g_variant_new("(@a{sv})", vmsup_dbus_variant_from_json_object(options));
	if (method->flags & VMSUP_RPC_FLAG_RETURNS_FD) {
		dbus_call_fd(VMSUP_DBUS_SUPERVISOR_PATH, SUPERVISOR_IFACE, method, args, out);
		return;
	}
	reply = dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
			  SUPERVISOR_IFACE,
			  method->dbus_name,
			  args,
			  (method->flags & VMSUP_RPC_FLAG_RETURNS_LIST) ? "(aa{sv})" : "(a{sv})",
			  &error);
	answer_from_dbus(reply, error, out);
}

/* the daemon, activated by the first call */

static gint
pidfd_open_compat(pid_t pid)
{
	return (gint)syscall(SYS_pidfd_open, pid, 0);
}

static void
ensure_daemon(void)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) owner_pid = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(Answer) answer = {NULL};
	JsonObject *info;
	guint32 pid = 0;

	if (global.daemon_up)
		return;
	reply = dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
			  SUPERVISOR_IFACE,
			  "Info",
			  g_variant_new("(@a{sv})", empty_vardict()),
			  "(a{sv})",
			  &error);
	g_assert_no_error(error);
	answer_from_dbus(reply, NULL, &answer);
	info = json_node_get_object(answer.result);
	g_assert_cmpstr(vmsup_json_object_get_string(info, "mode", NULL), ==, "session");
	global.daemon_pid = vmsup_json_object_get_int(info, "pid", 0);
	g_assert_cmpint(global.daemon_pid, >, 0);
	g_assert_cmpint(global.daemon_pid, !=, getpid());
	global.socket_path = g_strdup(vmsup_json_object_get_string(info, "socket", NULL));
	g_assert_nonnull(global.socket_path);

	/* the name's owner is the process that answered: the bus activated the built vmsupd */
	owner_pid = g_dbus_connection_call_sync(global.conn,
						"org.freedesktop.DBus",
						"/org/freedesktop/DBus",
						"org.freedesktop.DBus",
						"GetConnectionUnixProcessID",
						g_variant_new("(s)", VMSUP_DBUS_BUS_NAME),
						G_VARIANT_TYPE("(u)"),
						G_DBUS_CALL_FLAGS_NONE,
						-1,
						NULL,
						&error);
	g_assert_no_error(error);
	g_variant_get(owner_pid, "(u)", &pid);
	g_assert_cmpint(pid, ==, global.daemon_pid);

	rpc_connect();
	global.daemon_up = TRUE;
}

/* the shared VM that read-only twins look at, defined and never started */
static void
ensure_twin_vm(void)
{
	g_autoptr(JsonObject) created = NULL;
	ensure_daemon();
	if (global.twin_ready)
		return;
	created =
	    rpc_ok("vm.create", "{\"name\": \"" TWIN_VM "\", \"memory_mib\": 128, \"wait\": true}");
	global.twin_op_id = vmsup_json_object_get_int(created, "operation", 0);
	g_assert_cmpint(global.twin_op_id, >, 0);
	global.twin_ready = TRUE;
}

/* the guest agent answers and the guest's web server (port 80) serves: answers stop changing */
static gboolean
running_twin_settled(gpointer user_data)
{
	g_autoptr(JsonObject) params = json_object_new();
	g_auto(Answer) answer = {NULL};
	JsonArray *ports;

	json_object_set_string_member(params, "name", TWIN_RUNNING_VM);
	rpc_call("vm.ping", params, &answer);
	if (answer.result == NULL)
		return FALSE;
	answer_clear(&answer);
	rpc_call("vm.ports", params, &answer);
	if (answer.result == NULL)
		return FALSE;
	ports = json_object_get_array_member(json_node_get_object(answer.result), "ports");
	for (guint i = 0; ports != NULL && i < json_array_get_length(ports); i++) {
		JsonObject *port = json_array_get_object_element(ports, i);
		if (vmsup_json_object_get_int(port, "guest_port", 0) == 80 &&
		    vmsup_json_object_get_bool(port, "web", FALSE))
			return TRUE;
	}
	return FALSE;
}

/* the shared running VM of the agent twins: booted once, settled */
static void
ensure_running_twin_vm(void)
{
	g_autoptr(JsonObject) created = NULL;

	ensure_daemon();
	if (global.twin_running_ready)
		return;
	created =
	    rpc_ok("vm.create",
		   "{\"name\": \"" TWIN_RUNNING_VM "\", \"memory_mib\": 128, \"forward\": [80], "
		   "\"start\": true, \"wait\": true}");
	vmsup_test_wait_until(running_twin_settled, NULL, WAIT_S);
	global.twin_running_ready = TRUE;
}

/* comparing answers */

/* members whose values differ between two calls on the same VM */
static const gchar *const volatile_members[] = {
    "uptime_s",
    "sampled_at",
    "cpu_percent",
    "rss_bytes",
    "rtt_ms",
    "agent_rtt_ms",
    "last_active",
    "idle_s",
    NULL,
};
/* ... and those that differ between two VMs set up the same way */
static const gchar *const identity_members[] = {
    "id",
    "pid",
    "created",
    "started",
    "started_at",
    /* two VMs stopped one after the other may be a second apart */
    "stopped_at",
    "host_port",
    "mac",
    "operation",
    NULL,
};

static gchar *
replace_all(const gchar *str, const gchar *const *names)
{
	g_autoptr(GString) result = g_string_new(str);

	for (guint i = 0; names != NULL && names[i] != NULL; i++)
		g_string_replace(result, names[i], "@NAME@", 0);
	return g_strdup(result->str);
}

/*
 * What both transports must agree on: nulls dropped (a{sv} has none),
 * numbers as doubles (D-Bus keeps int and double apart, JSON text may not),
 * the VM names of a pair replaced, masked members reduced to their presence,
 * object members sorted so that the text compares.
 */
static JsonNode *
normalize(JsonNode *node, const gchar *const *names, const gchar *const *masked)
{
	JsonNode *copy;

	switch (json_node_get_node_type(node)) {
	case JSON_NODE_OBJECT: {
		JsonObject *object = json_node_get_object(node);
		g_autoptr(JsonObject) normalized = json_object_new();
		g_autoptr(GList) members = json_object_get_members(object);

		members = g_list_sort(members, (GCompareFunc)g_strcmp0);
		for (GList *l = members; l != NULL; l = l->next) {
			const gchar *member = l->data;
			JsonNode *value = json_object_get_member(object, member);
			if (JSON_NODE_HOLDS_NULL(value))
				continue;
			if (g_strv_contains(masked, member)) {
				json_object_set_string_member(normalized, member, "@MASKED@");
				continue;
			}
			json_object_set_member(normalized, member, normalize(value, names, masked));
		}
		return vmsup_json_node_new_object(g_steal_pointer(&normalized));
	}
	case JSON_NODE_ARRAY: {
		JsonArray *array = json_node_get_array(node);
		g_autoptr(JsonArray) normalized = json_array_new();

		for (guint i = 0; i < json_array_get_length(array); i++) {
			JsonNode *element = json_array_get_element(array, i);
			if (JSON_NODE_HOLDS_NULL(element))
				continue;
			json_array_add_element(normalized, normalize(element, names, masked));
		}
		copy = json_node_new(JSON_NODE_ARRAY);
		json_node_take_array(copy, g_steal_pointer(&normalized));
		return copy;
	}
	case JSON_NODE_VALUE:
		copy = json_node_new(JSON_NODE_VALUE);
		if (json_node_get_value_type(node) == G_TYPE_STRING) {
			g_autofree gchar *str = replace_all(json_node_get_string(node), names);
			json_node_set_string(copy, str);
		} else if (json_node_get_value_type(node) == G_TYPE_INT64 ||
			   json_node_get_value_type(node) == G_TYPE_DOUBLE) {
			json_node_set_double(copy, json_node_get_double(node));
		} else {
			json_node_set_boolean(copy, json_node_get_boolean(node));
		}
		return copy;
	default:
		return json_node_new(JSON_NODE_NULL);
	}
}

static gchar *
normalized_text(JsonNode *node, const gchar *const *names, const gchar *const *masked)
{
	g_autoptr(JsonNode) normalized = normalize(node, names, masked);
	return node_to_string(normalized);
}

/* the members to mask: the volatile ones, the identity ones for a pair, and @extra ("a,b") */
static GStrv
masked_members(gboolean paired, const gchar *extra)
{
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();

	g_strv_builder_addv(builder, (const gchar **)volatile_members);
	if (paired)
		g_strv_builder_addv(builder, (const gchar **)identity_members);
	if (extra != NULL) {
		g_auto(GStrv) split = g_strsplit(extra, ",", -1);
		g_strv_builder_addv(builder, (const gchar **)split);
	}
	return g_strv_builder_end(builder);
}

static void
assert_same_answer(const VmsupRpcMethod *method,
		   const Answer *rpc,
		   const Answer *dbus,
		   const gchar *const *names,
		   const gchar *const *masked)
{
	g_autofree gchar *rpc_text = NULL;
	g_autofree gchar *dbus_text = NULL;
	JsonNode *rpc_result = rpc->result;

	if (rpc->result == NULL || dbus->result == NULL) {
		g_autofree gchar *rpc_message = NULL;
		g_autofree gchar *dbus_message = NULL;

		g_test_message("%s: JSON-RPC error %d '%s', D-Bus error %d '%s'",
			       method->rpc_name,
			       rpc->code,
			       rpc->message,
			       dbus->code,
			       dbus->message);
		g_assert_null(rpc->result);
		g_assert_null(dbus->result);
		g_assert_cmpint(dbus->code, ==, rpc->code);
		rpc_message = replace_all(rpc->message, names);
		dbus_message = replace_all(dbus->message, names);
		g_assert_cmpstr(dbus_message, ==, rpc_message);
		return;
	}
	/* a list answers aa{sv} on D-Bus: the list member of the JSON-RPC result */
	if (method->flags & VMSUP_RPC_FLAG_RETURNS_LIST) {
		g_assert_true(JSON_NODE_HOLDS_OBJECT(rpc->result));
		rpc_result =
		    json_object_get_member(json_node_get_object(rpc->result), method->list_member);
		g_assert_nonnull(rpc_result);
	}
	rpc_text = normalized_text(rpc_result, names, masked);
	dbus_text = normalized_text(dbus->result, names, masked);
	g_test_message("%s: %s", method->rpc_name, rpc_text);
	g_assert_cmpstr(dbus_text, ==, rpc_text);
}

/* /vmsup/rpc/table/mirrors-dbus */

static gboolean
args_signature_is(GDBusArgInfo **args, const gchar *const *expected)
{
	guint n = 0;

	for (; args != NULL && args[n] != NULL; n++) {
		if (expected[n] == NULL || g_strcmp0(args[n]->signature, expected[n]) != 0)
			return FALSE;
	}
	return expected[n] == NULL;
}

static void
test_table_mirrors_dbus(void)
{
	GDBusInterfaceInfo *info = vmsup_dbus_supervisor1_interface_info();
	GDBusInterfaceInfo *vm_info = vmsup_dbus_vm1_interface_info();
	const gchar *const in_vm[] = {"s", "a{sv}", NULL};
	const gchar *const in_plain[] = {"a{sv}", NULL};
	const gchar *const out_object[] = {"a{sv}", NULL};
	const gchar *const out_list[] = {"aa{sv}", NULL};
	const gchar *const out_fd[] = {"h", NULL};
	const gchar *const none[] = {NULL};
	gpointer supervisor_iface = g_type_default_interface_ref(VMSUP_DBUS_TYPE_SUPERVISOR1);
	gpointer vm_iface = g_type_default_interface_ref(VMSUP_DBUS_TYPE_VM1);
	g_autofree GParamSpec **pspecs = NULL;
	guint n_pspecs = 0;

	/* every table entry has its method, its mechanical signature and its handle-* signal */
	for (const VmsupRpcMethod *m = vmsup_rpc_table_get_methods(); m->rpc_name != NULL; m++) {
		GDBusMethodInfo *method = g_dbus_interface_info_lookup_method(info, m->dbus_name);
		g_autofree gchar *signal_name = vmsup_dbus_server_handle_signal_name(m->dbus_name);
		gboolean takes_vm = (m->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME) != 0;
		gboolean returns_list = (m->flags & VMSUP_RPC_FLAG_RETURNS_LIST) != 0;

		g_test_message("%s <-> %s", m->rpc_name, m->dbus_name);
		g_assert_nonnull(method);
		g_assert_true(args_signature_is(method->in_args, takes_vm ? in_vm : in_plain));
		g_assert_true(args_signature_is(method->out_args,
						(m->flags & VMSUP_RPC_FLAG_RETURNS_FD) ? out_fd
						: returns_list                         ? out_list
							       : out_object));
		if (takes_vm)
			g_assert_cmpstr(method->in_args[0]->name, ==, "name");
		if (returns_list) {
			g_assert_nonnull(m->list_member);
			g_assert_cmpstr(method->out_args[0]->name, ==, m->list_member);
		}
		g_assert_cmpuint(g_signal_lookup(signal_name, VMSUP_DBUS_TYPE_SUPERVISOR1), !=, 0);
	}
	/* every method has its entry */
	for (guint i = 0; info->methods[i] != NULL; i++)
		g_assert_nonnull(vmsup_rpc_table_lookup_dbus(info->methods[i]->name));

	/* every VM1 method is a VM method of the table, its options an a{sv} if any */
	for (guint i = 0; vm_info->methods[i] != NULL; i++) {
		GDBusMethodInfo *method = vm_info->methods[i];
		const VmsupRpcMethod *m = vmsup_rpc_table_lookup_dbus(method->name);
		g_autofree gchar *signal_name = vmsup_dbus_server_handle_signal_name(method->name);

		g_assert_nonnull(m);
		g_assert_true(m->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME);
		g_assert_false(m->flags & VMSUP_RPC_FLAG_RETURNS_LIST);
		g_assert_true(args_signature_is(method->in_args, in_plain) ||
			      args_signature_is(method->in_args, none));
		g_assert_true(args_signature_is(
		    method->out_args,
		    (m->flags & VMSUP_RPC_FLAG_RETURNS_FD) ? out_fd : out_object));
		g_assert_cmpuint(g_signal_lookup(signal_name, VMSUP_DBUS_TYPE_VM1), !=, 0);
	}
	/* every VM1 property is the GObject property whose name, in snake case, is a vm.get member
	 */
	pspecs = g_object_interface_list_properties(vm_iface, &n_pspecs);
	g_assert_cmpuint(n_pspecs, ==, g_strv_length((gchar **)vm_info->properties));
	g_type_default_interface_unref(vm_iface);
	g_type_default_interface_unref(supervisor_iface);
}

/* /vmsup/dbus/convert */

static void
test_convert(void)
{
	g_autoptr(JsonObject) object = parse_object(
	    "{\"s\": \"x\", \"i\": 3, \"d\": 0.5, \"b\": true, \"n\": null,"
	    " \"o\": {\"a\": 1, \"z\": null}, \"ao\": [{\"k\": \"v\"}, null, {}],"
	    " \"as\": [\"a\", \"b\"], \"ai\": [1, 2], \"ad\": [1, 2.5], \"ab\": [false],"
	    " \"mixed\": [1, \"a\", [2]], \"empty\": [], \"bad\": \"\\u00e9\"}");
	g_autoptr(GVariant) value = g_variant_ref_sink(vmsup_dbus_variant_from_json_object(object));
	g_autoptr(GVariantDict) dict = g_variant_dict_new(value);
	g_autoptr(GVariant) o = NULL;
	g_autoptr(GVariant) ao = NULL;

	g_assert_true(g_variant_is_of_type(value, G_VARIANT_TYPE_VARDICT));
	g_assert_false(g_variant_dict_contains(dict, "n"));
	g_assert_true(g_variant_dict_lookup(dict, "s", "&s", NULL));
	g_assert_true(g_variant_dict_lookup(dict, "i", "x", NULL));
	g_assert_true(g_variant_dict_lookup(dict, "d", "d", NULL));
	g_assert_true(g_variant_dict_lookup(dict, "b", "b", NULL));
	o = g_variant_dict_lookup_value(dict, "o", G_VARIANT_TYPE_VARDICT);
	g_assert_nonnull(o);
	g_assert_cmpuint(g_variant_n_children(o), ==, 1);
	ao = g_variant_dict_lookup_value(dict, "ao", G_VARIANT_TYPE("aa{sv}"));
	g_assert_nonnull(ao);
	g_assert_cmpuint(g_variant_n_children(ao), ==, 2);
	g_assert_true(g_variant_dict_contains(dict, "as"));
	g_assert_nonnull(g_variant_dict_lookup_value(dict, "as", G_VARIANT_TYPE("as")));
	g_assert_nonnull(g_variant_dict_lookup_value(dict, "ai", G_VARIANT_TYPE("ax")));
	g_assert_nonnull(g_variant_dict_lookup_value(dict, "ad", G_VARIANT_TYPE("ad")));
	g_assert_nonnull(g_variant_dict_lookup_value(dict, "ab", G_VARIANT_TYPE("ab")));
	g_assert_nonnull(g_variant_dict_lookup_value(dict, "mixed", G_VARIANT_TYPE("av")));
	g_assert_nonnull(g_variant_dict_lookup_value(dict, "empty", G_VARIANT_TYPE("av")));
	g_assert_true(g_variant_dict_lookup(dict, "bad", "&s", NULL));

	/* names escape into one object path element each */
	{
		g_autofree gchar *path = vmsup_dbus_vm_object_path("a.b_c-d");
		g_assert_cmpstr(path, ==, VMSUP_DBUS_VM_PATH_PREFIX "a_2eb_5fc_2dd");
		g_assert_true(g_variant_is_object_path(path));
	}
}

/*
 * /vmsup/dbus/convert-serialised: the serialised form against the same
 * conversion built from GVariant instances, byte for byte
 */

static GVariant *
reference_from_node(JsonNode *node);

static GVariant *
reference_from_object(JsonObject *object)
{
	GVariantBuilder builder;
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;

	g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
	json_object_iter_init_ordered(&iter, object);
	while (json_object_iter_next_ordered(&iter, &member, &node)) {
		GVariant *value = reference_from_node(node);
		if (value != NULL)
			g_variant_builder_add(&builder, "{sv}", member, value);
	}
	return g_variant_builder_end(&builder);
}

static const GVariantType *
reference_element_type(JsonArray *array)
{
	const GVariantType *type = NULL;

	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *element = json_array_get_element(array, i);
		const GVariantType *element_type;

		if (JSON_NODE_HOLDS_NULL(element))
			continue;
		if (JSON_NODE_HOLDS_OBJECT(element))
			element_type = G_VARIANT_TYPE_VARDICT;
		else if (!JSON_NODE_HOLDS_VALUE(element))
			return G_VARIANT_TYPE_VARIANT;
		else if (json_node_get_value_type(element) == G_TYPE_INT64)
			element_type = G_VARIANT_TYPE_INT64;
		else if (json_node_get_value_type(element) == G_TYPE_DOUBLE)
			element_type = G_VARIANT_TYPE_DOUBLE;
		else if (json_node_get_value_type(element) == G_TYPE_BOOLEAN)
			element_type = G_VARIANT_TYPE_BOOLEAN;
		else
			element_type = G_VARIANT_TYPE_STRING;
		if (type == NULL || g_variant_type_equal(type, element_type))
			type = element_type;
		else if ((g_variant_type_equal(type, G_VARIANT_TYPE_INT64) ||
			  g_variant_type_equal(type, G_VARIANT_TYPE_DOUBLE)) &&
			 (g_variant_type_equal(element_type, G_VARIANT_TYPE_INT64) ||
			  g_variant_type_equal(element_type, G_VARIANT_TYPE_DOUBLE)))
			type = G_VARIANT_TYPE_DOUBLE;
		else
			return G_VARIANT_TYPE_VARIANT;
	}
	return type != NULL ? type : G_VARIANT_TYPE_VARIANT;
}

static GVariant *
reference_from_node(JsonNode *node)
{
	const gchar *str;

	switch (json_node_get_node_type(node)) {
	case JSON_NODE_OBJECT:
		return reference_from_object(json_node_get_object(node));
	case JSON_NODE_ARRAY: {
		JsonArray *array = json_node_get_array(node);
		const GVariantType *element_type = reference_element_type(array);
		gboolean boxed = g_variant_type_equal(element_type, G_VARIANT_TYPE_VARIANT);
		gboolean as_double = g_variant_type_equal(element_type, G_VARIANT_TYPE_DOUBLE);
		g_autoptr(GVariantType) array_type = g_variant_type_new_array(element_type);
		GVariantBuilder builder;

		g_variant_builder_init(&builder, array_type);
		for (guint i = 0; i < json_array_get_length(array); i++) {
			JsonNode *element = json_array_get_element(array, i);
			GVariant *value;

			if (JSON_NODE_HOLDS_NULL(element))
				continue;
			value = as_double ? g_variant_new_double(json_node_get_double(element))
					  : reference_from_node(element);
			g_variant_builder_add_value(&builder,
						    boxed ? g_variant_new_variant(value) : value);
		}
		return g_variant_builder_end(&builder);
	}
	case JSON_NODE_VALUE:
		switch (json_node_get_value_type(node)) {
		case G_TYPE_INT64:
			return g_variant_new_int64(json_node_get_int(node));
		case G_TYPE_DOUBLE:
			return g_variant_new_double(json_node_get_double(node));
		case G_TYPE_BOOLEAN:
			return g_variant_new_boolean(json_node_get_boolean(node));
		default:
			str = json_node_get_string(node);
			if (g_utf8_validate(str, -1, NULL))
				return g_variant_new_string(str);
			return g_variant_new_take_string(g_utf8_make_valid(str, -1));
		}
	default:
		return NULL;
	}
}

static void
assert_same_variant(GVariant *got, GVariant *want)
{
	g_autoptr(GVariant) normal = g_variant_get_normal_form(want);

	g_assert_true(g_variant_is_normal_form(got));
	g_assert_cmpstr(g_variant_get_type_string(got), ==, g_variant_get_type_string(want));
	g_assert_true(g_variant_equal(got, want));
	g_assert_cmpmem(g_variant_get_data(got),
			g_variant_get_size(got),
			g_variant_get_data(normal),
			g_variant_get_size(normal));
}

static void
test_convert_serialised(void)
{
	g_autofree gchar *long_300 = g_strnfill(300, 'l');
	g_autofree gchar *long_70k = g_strnfill(70000, 'L');
	g_autoptr(GPtrArray) cases = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GString) many = g_string_new("{\"vms\": [");
	g_autoptr(JsonObject) invalid = json_object_new();

	g_ptr_array_add(cases, g_strdup("{}"));
	g_ptr_array_add(cases, g_strdup("{\"n\": null}"));
	g_ptr_array_add(cases, g_strdup("{\"s\": \"\", \"b\": false, \"i\": -1, \"d\": 1e300}"));
	g_ptr_array_add(
	    cases,
	    g_strdup("{\"o\": {\"a\": {\"b\": {\"c\": [1, [2, [3]], {\"d\": null}]}}}}"));
	g_ptr_array_add(
	    cases,
	    g_strdup("{\"ai\": [1, null, 2], \"ad\": [1, 2.5, null], \"ab\": [true],"
		     " \"as\": [\"x\", \"\", \"\\u00e9\"], \"ao\": [{}, {\"k\": 1}],"
		     " \"av\": [1, \"a\", true, null, [], {}], \"e\": [], \"nn\": [null]}"));
	g_ptr_array_add(cases, g_strdup("{\"nested\": [[], [[]], [1, 2], [\"a\"]]}"));
	g_ptr_array_add(cases, g_strdup_printf("{\"s\": \"%s\", \"t\": 1}", long_300));
	g_ptr_array_add(
	    cases,
	    g_strdup_printf("{\"s\": \"%s\", \"as\": [\"%s\", \"x\"], \"v\": [1, \"%s\"]}",
			    long_70k,
			    long_300,
			    long_70k));
	g_ptr_array_add(cases, g_strdup_printf("{\"%s\": 1}", long_300));
	for (guint i = 0; i < 60; i++)
		g_string_append_printf(many,
				       "%s{\"name\": \"vm%u\", \"cpus\": %u, \"auto_stop\": %s,"
				       " \"forwards\": [{\"guest_port\": 80, \"host_port\": %u}],"
				       " \"pending_restart\": [\"cpus\"], \"load\": %u.5}",
				       i > 0 ? ", " : "",
				       i,
				       i,
				       i % 2 ? "true" : "false",
				       40000 + i,
				       i);
	g_string_append(many, "]}");
	g_ptr_array_add(cases, g_strdup(many->str));

	for (guint i = 0; i < cases->len; i++) {
		g_autoptr(JsonObject) object = parse_object(g_ptr_array_index(cases, i));
		g_autoptr(GVariant) got =
		    g_variant_ref_sink(vmsup_dbus_variant_from_json_object(object));
		g_autoptr(GVariant) want = g_variant_ref_sink(reference_from_object(object));
		assert_same_variant(got, want);
	}

	/* a list: its objects, nothing else */
	{
		g_autoptr(JsonObject) object = parse_object(many->str);
		JsonArray *vms = json_object_get_array_member(object, "vms");
		g_autoptr(GVariant) got = NULL;
		g_autoptr(GVariant) want = NULL;
		GVariantBuilder builder;

		json_array_add_int_element(vms, 7);
		json_array_add_null_element(vms);
		got = g_variant_ref_sink(vmsup_dbus_variant_from_json_objects(vms));
		g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
		for (guint i = 0; i < json_array_get_length(vms); i++) {
			JsonNode *element = json_array_get_element(vms, i);
			if (JSON_NODE_HOLDS_OBJECT(element))
				g_variant_builder_add_value(
				    &builder,
				    reference_from_object(json_node_get_object(element)));
		}
		want = g_variant_ref_sink(g_variant_builder_end(&builder));
		assert_same_variant(got, want);
		g_assert_cmpuint(g_variant_n_children(got), ==, 60);
	}

	/* strings that are not UTF-8 are made valid, keys included */
	json_object_set_string_member(invalid, "bad\xff", "x\xfe\xfdy");
	{
		g_autoptr(GVariant) got =
		    g_variant_ref_sink(vmsup_dbus_variant_from_json_object(invalid));
		g_autoptr(GVariant) want = NULL;
		GVariantBuilder builder;

		g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&builder,
				      "{sv}",
				      "bad\xef\xbf\xbd",
				      g_variant_new_string("x\xef\xbf\xbd\xef\xbf\xbdy"));
		want = g_variant_ref_sink(g_variant_builder_end(&builder));
		assert_same_variant(got, want);
	}
}

/* /vmsup/dbus/authorize/... against a fake polkit on the test bus */

typedef struct {
	GDBusConnection *conn;
	guint registration_id;
	guint calls;
	gchar *subject;
	gchar *action;
} FakePolkit;

static void
fake_polkit_method_cb(GDBusConnection *connection,
		      const gchar *sender,
		      const gchar *object_path,
		      const gchar *interface_name,
		      const gchar *method_name,
		      GVariant *parameters,
		      GDBusMethodInvocation *invocation,
		      gpointer user_data)
{
	FakePolkit *fake = user_data;
	g_autoptr(GVariant) subject_details = NULL;
	const gchar *kind = NULL;
	const gchar *action = NULL;
	guint32 flags = 0;
	gboolean is_read;
	gboolean interactive;

	g_variant_get(parameters,
		      "((&s@a{sv})&s@a{ss}u&s)",
		      &kind,
		      &subject_details,
		      &action,
		      NULL,
		      &flags,
		      NULL);
	fake->calls++;
	g_assert_cmpstr(kind, ==, "system-bus-name");
	g_free(fake->subject);
	g_variant_lookup(subject_details, "name", "s", &fake->subject);
	g_free(fake->action);
	fake->action = g_strdup(action);
	/* read is allowed; manage needs the caller's password */
	is_read = g_strcmp0(action, VMSUP_AUTHORIZE_ACTION_READ) == 0;
	interactive = (flags & 1) != 0;
	g_dbus_method_invocation_return_value(
	    invocation,
	    g_variant_new("((bb@a{ss}))",
			  is_read || interactive,
			  !is_read && !interactive,
			  g_variant_new_array(G_VARIANT_TYPE("{ss}"), NULL, 0)));
}

static const gchar fake_polkit_xml[] =
    "<node><interface name='org.freedesktop.PolicyKit1.Authority'>"
    "<method name='CheckAuthorization'>"
    "<arg type='(sa{sv})' direction='in'/><arg type='s' direction='in'/>"
    "<arg type='a{ss}' direction='in'/><arg type='u' direction='in'/>"
    "<arg type='s' direction='in'/><arg type='(bba{ss})' direction='out'/>"
    "</method></interface></node>";

static void
fake_polkit_start(FakePolkit *fake)
{
	static const GDBusInterfaceVTable vtable = {fake_polkit_method_cb, NULL, NULL, {NULL}};
	g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(fake_polkit_xml, NULL);
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;

	fake->conn = g_dbus_connection_new_for_address_sync(
	    g_test_dbus_get_bus_address(global.bus),
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL,
	    NULL,
	    &error);
	g_assert_no_error(error);
	fake->registration_id =
	    g_dbus_connection_register_object(fake->conn,
					      "/org/freedesktop/PolicyKit1/Authority",
					      node->interfaces[0],
					      &vtable,
					      fake,
					      NULL,
					      &error);
	g_assert_no_error(error);
	reply = g_dbus_connection_call_sync(fake->conn,
					    "org.freedesktop.DBus",
					    "/org/freedesktop/DBus",
					    "org.freedesktop.DBus",
					    "RequestName",
					    g_variant_new("(su)", "org.freedesktop.PolicyKit1", 4u),
					    G_VARIANT_TYPE("(u)"),
					    G_DBUS_CALL_FLAGS_NONE,
					    -1,
					    NULL,
					    &error);
	g_assert_no_error(error);
}

static void
fake_polkit_stop(FakePolkit *fake)
{
	g_dbus_connection_unregister_object(fake->conn, fake->registration_id);
	g_dbus_connection_close_sync(fake->conn, NULL, NULL);
	g_clear_object(&fake->conn);
	g_clear_pointer(&fake->subject, g_free);
	g_clear_pointer(&fake->action, g_free);
}

typedef struct {
	VmsupAuthorize *authorize;
	guint32 uid;
	const VmsupRpcMethod *method;
	gboolean interactive;
	gboolean ok;
	GError *error;
	gboolean done;
} CheckData;

/* check_sync blocks: run it where GDBus runs it, off the thread serving the fake */
static gpointer
check_thread_func(gpointer user_data)
{
	CheckData *data = user_data;

	data->ok = vmsup_authorize_check_sync(data->authorize,
					      global.conn,
					      g_dbus_connection_get_unique_name(global.conn),
					      data->uid,
					      data->method,
					      data->interactive,
					      &data->error);
	g_atomic_int_set(&data->done, TRUE);
	return NULL;
}

static gboolean
check_done(gpointer user_data)
{
	CheckData *data = user_data;
	return g_atomic_int_get(&data->done);
}

static gboolean
run_check(VmsupAuthorize *authorize,
	  guint32 uid,
	  const gchar *rpc_name,
	  gboolean interactive,
	  GError **error)
{
	CheckData data = {authorize, uid, vmsup_rpc_table_lookup(rpc_name), interactive};
	g_autoptr(GThread) thread = g_thread_new("check", check_thread_func, &data);

	g_assert_nonnull(data.method);
	vmsup_test_wait_until(check_done, &data, 30);
	g_thread_join(g_steal_pointer(&thread));
	if (data.error != NULL)
		g_propagate_error(error, data.error);
	return data.ok;
}

static void
test_authorize_session(void)
{
	g_autoptr(VmsupAuthorize) authorize = vmsup_authorize_new(VMSUP_AUTHORIZE_MODE_SESSION);
	g_autoptr(GError) error = NULL;

	g_assert_true(run_check(authorize, geteuid(), "vm.delete", FALSE, &error));
	g_assert_no_error(error);
	g_assert_false(run_check(authorize, geteuid() + 1, "vm.get", FALSE, &error));
	g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
	/* the way out names a program by its path: vmsupd is not in PATH once installed */
	{
		const gchar *with = strstr(error->message, "start your own with '");
		g_autofree gchar *program = NULL;

		g_assert_nonnull(with);
		with += strlen("start your own with '");
		program = g_strndup(with, strcspn(with, " '"));
		g_assert_true(g_path_is_absolute(program));
		g_assert_true(g_file_test(program, G_FILE_TEST_IS_EXECUTABLE));
	}
}

static void
test_authorize_polkit(void)
{
	g_autoptr(VmsupAuthorize) authorize = vmsup_authorize_new(VMSUP_AUTHORIZE_MODE_SYSTEM);
	const gchar *me = g_dbus_connection_get_unique_name(global.conn);
	FakePolkit fake = {NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *remote = NULL;

	g_assert_cmpstr(vmsup_authorize_action_for(vmsup_rpc_table_lookup("vm.list")),
			==,
			VMSUP_AUTHORIZE_ACTION_READ);
	g_assert_cmpstr(vmsup_authorize_action_for(vmsup_rpc_table_lookup("vm.start")),
			==,
			VMSUP_AUTHORIZE_ACTION_MANAGE);

	fake_polkit_start(&fake);

	/* root needs no polkit */
	g_assert_true(run_check(authorize, 0, "vm.delete", FALSE, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(fake.calls, ==, 0);

	/* anyone else is polkit's call, about the caller's bus name */
	g_assert_true(run_check(authorize, 1000, "vm.get", FALSE, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(fake.calls, ==, 1);
	g_assert_cmpstr(fake.subject, ==, me);
	g_assert_cmpstr(fake.action, ==, VMSUP_AUTHORIZE_ACTION_READ);

	g_assert_false(run_check(authorize, 1000, "vm.delete", FALSE, &error));
	g_assert_cmpstr(fake.action, ==, VMSUP_AUTHORIZE_ACTION_MANAGE);
	g_assert_nonnull(error);
	remote = g_dbus_error_get_remote_error(error);
	g_assert_cmpstr(remote, ==, "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired");
	g_clear_error(&error);

	g_assert_true(run_check(authorize, 1000, "vm.delete", TRUE, &error));
	g_assert_no_error(error);

	/* no polkit: denied, saying why */
	fake_polkit_stop(&fake);
	g_assert_false(run_check(authorize, 1000, "vm.get", FALSE, &error));
	g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
	g_assert_nonnull(strstr(error->message, "polkit"));
}

/* /vmsup/dbus/in-process: the server exported here, without a VM service */

static GVariant *
async_call(GDBusConnection *conn,
	   const gchar *dest,
	   const gchar *path,
	   const gchar *iface,
	   const gchar *method,
	   GVariant *args,
	   GError **error)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	/* the server answers from this thread's main loop: no blocking call here */
	g_dbus_connection_call(conn,
			       dest,
			       path,
			       iface,
			       method,
			       args,
			       NULL,
			       G_DBUS_CALL_FLAGS_NONE,
			       10000,
			       NULL,
			       vmsup_test_store_result_cb,
			       &slot);
	res = vmsup_test_wait_result(&slot, 15);
	return g_dbus_connection_call_finish(conn, res, error);
}

typedef struct {
	guint added;
	guint removed;
	guint changed;
	gchar *last_state;
} ObjectEvents;

static void
object_events_cb(GDBusConnection *connection,
		 const gchar *sender,
		 const gchar *object_path,
		 const gchar *interface_name,
		 const gchar *signal_name,
		 GVariant *parameters,
		 gpointer user_data)
{
	ObjectEvents *events = user_data;

	if (g_strcmp0(signal_name, "InterfacesAdded") == 0) {
		events->added++;
	} else if (g_strcmp0(signal_name, "InterfacesRemoved") == 0) {
		events->removed++;
	} else if (g_strcmp0(signal_name, "PropertiesChanged") == 0) {
		g_autoptr(GVariant) changed = g_variant_get_child_value(parameters, 1);
		const gchar *state = NULL;
		events->changed++;
		if (g_variant_lookup(changed, "State", "&s", &state)) {
			g_free(events->last_state);
			events->last_state = g_strdup(state);
		}
	}
}

static gboolean
events_removed(gpointer user_data)
{
	return ((ObjectEvents *)user_data)->removed > 0;
}

static gboolean
events_added(gpointer user_data)
{
	return ((ObjectEvents *)user_data)->added > 0;
}

static gboolean
events_state_stopped(gpointer user_data)
{
	return g_strcmp0(((ObjectEvents *)user_data)->last_state, "stopped") == 0;
}

static void
test_in_process(void)
{
	g_autoptr(VmsupPolicy) policy = vmsup_policy_new(NULL);
	VmsupRpcContext ctx = {.policy = policy, .mode = "session"};
	g_autoptr(GDBusConnection) server_conn = NULL;
	g_autoptr(VmsupDbusServer) server = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) stats = NULL;
	VmsupDBusVM1 *vm1;
	g_autofree gchar *path = vmsup_dbus_vm_object_path("a.b_c-d");
	ObjectEvents events = {0};
	const gchar *dest;
	const gchar *state = NULL;
	guint32 pid = 1;
	guint subscription;

	server_conn = g_dbus_connection_new_for_address_sync(
	    g_test_dbus_get_bus_address(global.bus),
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL,
	    NULL,
	    &error);
	g_assert_no_error(error);
	dest = g_dbus_connection_get_unique_name(server_conn);
	server = vmsup_dbus_server_new(&ctx, NULL);
	g_assert_true(vmsup_dbus_server_export(server, server_conn, &error));
	g_assert_no_error(error);

	/* a method needing no service answers */
	reply = async_call(global.conn,
			   dest,
			   VMSUP_DBUS_SUPERVISOR_PATH,
			   SUPERVISOR_IFACE,
			   "Info",
			   g_variant_new("(@a{sv})", empty_vardict()),
			   &error);
	g_assert_no_error(error);
	result = g_variant_get_child_value(reply, 0);
	g_assert_true(g_variant_lookup(result, "mode", "&s", &state));
	g_assert_cmpstr(state, ==, "session");
	g_clear_pointer(&reply, g_variant_unref);

	/* validation happens in the table, for D-Bus as for JSON-RPC */
	reply = async_call(global.conn,
			   dest,
			   VMSUP_DBUS_SUPERVISOR_PATH,
			   SUPERVISOR_IFACE,
			   "Get",
			   g_variant_new("(s@a{sv})", "../x", empty_vardict()),
			   &error);
	g_assert_null(reply);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	{
		GVariantBuilder options;
		g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&options, "{sv}", "bogus", g_variant_new_int32(1));
		reply = async_call(global.conn,
				   dest,
				   VMSUP_DBUS_SUPERVISOR_PATH,
				   SUPERVISOR_IFACE,
				   "Get",
				   g_variant_new("(sa{sv})", "x", &options),
				   &error);
		g_assert_null(reply);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS);
		g_clear_error(&error);
	}
	/* no VM service in this context */
	reply = async_call(global.conn,
			   dest,
			   VMSUP_DBUS_SUPERVISOR_PATH,
			   SUPERVISOR_IFACE,
			   "List",
			   g_variant_new("(@a{sv})", empty_vardict()),
			   &error);
	g_assert_null(reply);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_clear_error(&error);

	/* VM objects: appear complete, follow changes, go away */
	subscription = g_dbus_connection_signal_subscribe(global.conn,
							  dest,
							  NULL,
							  NULL,
							  NULL,
							  NULL,
							  G_DBUS_SIGNAL_FLAGS_NONE,
							  object_events_cb,
							  &events,
							  NULL);
	vm = parse_object("{\"name\": \"a.b_c-d\", \"state\": \"running\", \"cpus\": 2,"
			  " \"memory_mib\": 256, \"pid\": 42, \"accel\": \"tcg\","
			  " \"auto_stop\": true, \"created\": \"2026-01-01T00:00:00Z\","
			  " \"cpu_quota_percent\": 150, \"memory_max_mib\": 320}");
	vmsup_dbus_vm_objects_update(vmsup_dbus_server_get_vm_objects(server), "a.b_c-d", vm);
	vmsup_test_wait_until(events_added, &events, 30);
	reply = async_call(global.conn,
			   dest,
			   path,
			   "org.freedesktop.DBus.Properties",
			   "GetAll",
			   g_variant_new("(s)", VM_IFACE),
			   &error);
	g_assert_no_error(error);
	g_clear_pointer(&result, g_variant_unref);
	result = g_variant_get_child_value(reply, 0);
	g_assert_true(g_variant_lookup(result, "State", "&s", &state));
	g_assert_cmpstr(state, ==, "running");
	g_assert_true(g_variant_lookup(result, "MemoryMiB", "u", &pid));
	g_assert_cmpuint(pid, ==, 256);
	g_assert_true(g_variant_lookup(result, "Pid", "u", &pid));
	g_assert_cmpuint(pid, ==, 42);
	g_assert_true(g_variant_lookup(result, "CpuQuotaPercent", "u", &pid));
	g_assert_cmpuint(pid, ==, 150);
	g_assert_true(g_variant_lookup(result, "MemoryMaxMiB", "u", &pid));
	g_assert_cmpuint(pid, ==, 320);
	g_clear_pointer(&reply, g_variant_unref);

	/* a sample sets the statistics; a vm.get of the running VM keeps them */
	stats = parse_object("{\"cpu_percent\": 12.5, \"rss_bytes\": 1048576, \"uptime_s\": 7.9,"
			     " \"state\": \"running\"}");
	vmsup_dbus_vm_objects_update_stats(vmsup_dbus_server_get_vm_objects(server),
					   "a.b_c-d",
					   stats);
	vmsup_dbus_vm_objects_update(vmsup_dbus_server_get_vm_objects(server), "a.b_c-d", vm);
	vm1 = vmsup_dbus_vm_objects_lookup(vmsup_dbus_server_get_vm_objects(server), "a.b_c-d");
	g_assert_cmpfloat(vmsup_dbus_vm1_get_cpu_percent(vm1), ==, 12.5);
	g_assert_cmpuint(vmsup_dbus_vm1_get_rss_bytes(vm1), ==, 1048576);
	g_assert_cmpuint(vmsup_dbus_vm1_get_uptime_seconds(vm1), ==, 7);
	/* unknown (null) is 0; a VM without an object is no error */
	json_object_set_null_member(stats, "rss_bytes");
	vmsup_dbus_vm_objects_update_stats(vmsup_dbus_server_get_vm_objects(server),
					   "a.b_c-d",
					   stats);
	g_assert_cmpuint(vmsup_dbus_vm1_get_rss_bytes(vm1), ==, 0);
	g_assert_cmpuint(vmsup_dbus_vm1_get_uptime_seconds(vm1), ==, 7);
	vmsup_dbus_vm_objects_update_stats(vmsup_dbus_server_get_vm_objects(server),
					   "nosuch",
					   stats);

	json_object_set_string_member(vm, "state", "stopped");
	json_object_remove_member(vm, "pid");
	/* a limit cleared is absent from vm.get, and 0 on the object */
	json_object_remove_member(vm, "cpu_quota_percent");
	vmsup_dbus_vm_objects_update(vmsup_dbus_server_get_vm_objects(server), "a.b_c-d", vm);
	vmsup_test_wait_until(events_state_stopped, &events, 30);
	g_assert_cmpuint(
	    vmsup_dbus_vm1_get_pid(
		vmsup_dbus_vm_objects_lookup(vmsup_dbus_server_get_vm_objects(server), "a.b_c-d")),
	    ==,
	    0);
	g_assert_cmpuint(
	    vmsup_dbus_vm1_get_cpu_quota_percent(
		vmsup_dbus_vm_objects_lookup(vmsup_dbus_server_get_vm_objects(server), "a.b_c-d")),
	    ==,
	    0);
	g_assert_cmpuint(
	    vmsup_dbus_vm1_get_memory_max_mib(
		vmsup_dbus_vm_objects_lookup(vmsup_dbus_server_get_vm_objects(server), "a.b_c-d")),
	    ==,
	    320);
	/* a VM that does not run has no statistics */
	g_assert_cmpfloat(vmsup_dbus_vm1_get_cpu_percent(vm1), ==, 0);
	g_assert_cmpuint(vmsup_dbus_vm1_get_uptime_seconds(vm1), ==, 0);

	/* the object's methods run the table with the VM's name bound */
	reply = async_call(global.conn, dest, path, VM_IFACE, "Get", NULL, &error);
	g_assert_null(reply);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_clear_error(&error);

	vmsup_dbus_vm_objects_remove(vmsup_dbus_server_get_vm_objects(server), "a.b_c-d");
	vmsup_test_wait_until(events_removed, &events, 30);
	g_dbus_connection_signal_unsubscribe(global.conn, subscription);
	g_free(events.last_state);

	/* disposing unexports */
	g_clear_object(&server);
	reply = async_call(global.conn,
			   dest,
			   VMSUP_DBUS_SUPERVISOR_PATH,
			   SUPERVISOR_IFACE,
			   "Info",
			   g_variant_new("(@a{sv})", empty_vardict()),
			   &error);
	g_assert_null(reply);
	g_assert_true(g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
		      g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT));
	g_dbus_connection_close_sync(server_conn, NULL, NULL);
}

/* /vmsup/dbus/activation and introspection of the real daemon */

static void
test_activation(void)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusNodeInfo) node = NULL;
	GDBusInterfaceInfo *live;
	GDBusInterfaceInfo *generated = vmsup_dbus_supervisor1_interface_info();
	const gchar *xml = NULL;

	ensure_daemon();

	/* what the daemon exports is what the XML says */
	reply = dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
			  "org.freedesktop.DBus.Introspectable",
			  "Introspect",
			  NULL,
			  "(s)",
			  &error);
	g_assert_no_error(error);
	g_variant_get(reply, "(&s)", &xml);
	node = g_dbus_node_info_new_for_xml(xml, &error);
	g_assert_no_error(error);
	live = g_dbus_node_info_lookup_interface(node, SUPERVISOR_IFACE);
	g_assert_nonnull(live);
	g_assert_nonnull(
	    g_dbus_node_info_lookup_interface(node, "org.freedesktop.DBus.ObjectManager"));
	for (guint i = 0; generated->methods[i] != NULL; i++) {
		GDBusMethodInfo *method =
		    g_dbus_interface_info_lookup_method(live, generated->methods[i]->name);
		g_assert_nonnull(method);
		for (guint j = 0; generated->methods[i]->in_args[j] != NULL; j++)
			g_assert_cmpstr(method->in_args[j]->signature,
					==,
					generated->methods[i]->in_args[j]->signature);
	}
	for (guint i = 0; generated->signals[i] != NULL; i++)
		g_assert_nonnull(
		    g_dbus_interface_info_lookup_signal(live, generated->signals[i]->name));
}

/* /vmsup/rpc/twin/<method> */

typedef enum {
	TWIN_SAME,   /* both transports ask about the same VM */
	TWIN_PAIRED, /* each changes its own VM, set up the same way */
} TwinKind;

typedef enum {
	NEEDS_NOTHING,
	NEEDS_DEFINED,   /* SAME: the twin VM; PAIRED: a new defined VM each */
	NEEDS_RUNNING,   /* PAIRED: a new running VM each */
	NEEDS_AGENT,     /* SAME: the running twin VM, its guest agent answering */
	NEEDS_WORKSPACE, /* PAIRED: a new workspace each */
} TwinNeeds;

typedef struct {
	const gchar *rpc_name;
	TwinKind kind;
	TwinNeeds needs;
	/* "@NAME@": the VM or workspace; "@OP@": the twin VM's create operation; "@DIR@": a
	 * directory for @NAME@ */
	const gchar *params;
	/* members of this answer that change by themselves, "a,b" */
	const gchar *masked;
} TwinCase;

/* a table entry without a case here fails its twin test */
static const TwinCase twin_cases[] = {
    {"vm.create",
     TWIN_PAIRED,
     NEEDS_NOTHING,
     "{\"name\": \"@NAME@\", \"cpus\": 2, \"memory_mib\": 128, \"forward\": [8080], "
     "\"wait\": true}",
     NULL},
    {"vm.start", TWIN_PAIRED, NEEDS_DEFINED, "{\"name\": \"@NAME@\"}", NULL},
    {"vm.stop", TWIN_PAIRED, NEEDS_RUNNING, "{\"name\": \"@NAME@\", \"force\": true}", NULL},
    {"vm.pause", TWIN_PAIRED, NEEDS_RUNNING, "{\"name\": \"@NAME@\"}", NULL},
    /* a running VM: resuming it is nothing to do, and both doors say so alike */
    {"vm.resume", TWIN_PAIRED, NEEDS_RUNNING, "{\"name\": \"@NAME@\"}", NULL},
    {"vm.delete", TWIN_PAIRED, NEEDS_DEFINED, "{\"name\": \"@NAME@\"}", NULL},
    {"vm.set",
     TWIN_PAIRED,
     NEEDS_DEFINED,
     "{\"name\": \"@NAME@\", \"cpus\": 2, \"auto_stop\": false}",
     NULL},
    /* each door clones its own stopped VM */
    {"vm.clone",
     TWIN_PAIRED,
     NEEDS_DEFINED,
     "{\"name\": \"@NAME@\", \"new_name\": \"@NAME@-c\", \"wait\": true}",
     NULL},
    {"vm.list", TWIN_SAME, NEEDS_DEFINED, "{}", NULL},
    {"vm.get", TWIN_SAME, NEEDS_DEFINED, "{\"name\": \"@NAME@\"}", NULL},
    {"vm.stats",
     TWIN_SAME,
     NEEDS_AGENT,
     "{\"name\": \"@NAME@\"}",
     "net_rx_bytes,net_tx_bytes,block_read_bytes,block_write_bytes"},
    /* its detail quotes the round trips */
    {"vm.health", TWIN_SAME, NEEDS_AGENT, "{\"name\": \"@NAME@\"}", "detail"},
    {"vm.ping", TWIN_SAME, NEEDS_AGENT, "{\"name\": \"@NAME@\"}", NULL},
    {"vm.ports", TWIN_SAME, NEEDS_AGENT, "{\"name\": \"@NAME@\"}", NULL},
    {"vm.exec",
     TWIN_SAME,
     NEEDS_AGENT,
     "{\"name\": \"@NAME@\", \"argv\": [\"/bin/echo\", \"twin\"], \"timeout_s\": 30}",
     NULL},
    {"op.get", TWIN_SAME, NEEDS_DEFINED, "{\"id\": @OP@}", NULL},
    {"op.list", TWIN_SAME, NEEDS_DEFINED, "{}", NULL},
    {"op.cancel", TWIN_SAME, NEEDS_DEFINED, "{\"id\": @OP@}", NULL},
    {"workspace.create",
     TWIN_PAIRED,
     NEEDS_NOTHING,
     "{\"name\": \"@NAME@\", \"path\": \"@DIR@\"}",
     NULL},
    {"workspace.list", TWIN_SAME, NEEDS_NOTHING, "{}", NULL},
    {"workspace.delete", TWIN_PAIRED, NEEDS_WORKSPACE, "{\"name\": \"@NAME@\"}", NULL},
    /* opening boots a VM per transport: the twin is the answer for an unknown workspace */
    {"workspace.open", TWIN_SAME, NEEDS_NOTHING, "{\"name\": \"tw-no-such-workspace\"}", NULL},
    {"image.list", TWIN_SAME, NEEDS_NOTHING, "{}", NULL},
    /* the refusals are the twins: what a real import does is the CLI test's */
    {"image.import", TWIN_SAME, NEEDS_NOTHING, "{\"path\": \"/\", \"name\": \"tw\"}", NULL},
    {"image.delete", TWIN_SAME, NEEDS_NOTHING, "{\"name\": \"tw-no-such-image\"}", NULL},
    {"daemon.info", TWIN_SAME, NEEDS_NOTHING, "{}", NULL},
    /* a VM without an image: both say so, as failed-precondition */
    {"vm.ssh_info", TWIN_SAME, NEEDS_DEFINED, "{\"name\": \"@NAME@\"}", NULL},
    /* a refusal: a real build is the image suite's */
    {"image.build",
     TWIN_SAME,
     NEEDS_NOTHING,
     "{\"name\": \"tw\", \"packages\": [\"Not A Package\"]}",
     NULL},
    /* a viewer each; the JSON-RPC client here reads plain lines, and sees {"fd": 0} alone */
    {"vm.console", TWIN_SAME, NEEDS_AGENT, "{\"name\": \"@NAME@\"}", NULL},
    /* a defined VM without a disk: nothing to snapshot, no snapshot to restore or delete */
    {"snapshot.create",
     TWIN_SAME,
     NEEDS_DEFINED,
     "{\"name\": \"@NAME@\", \"snapshot\": \"tw\"}",
     NULL},
    {"snapshot.list", TWIN_SAME, NEEDS_DEFINED, "{\"name\": \"@NAME@\"}", NULL},
    {"snapshot.restore",
     TWIN_SAME,
     NEEDS_DEFINED,
     "{\"name\": \"@NAME@\", \"snapshot\": \"tw\"}",
     NULL},
    {"snapshot.delete",
     TWIN_SAME,
     NEEDS_DEFINED,
     "{\"name\": \"@NAME@\", \"snapshot\": \"tw\"}",
     NULL},
};

/* more cases of one method: /vmsup/rpc/twin/<method>-<suffix> */
static const struct {
	const gchar *suffix;
	TwinCase twin;
} twin_more_cases[] = {
    /* fields arrive over D-Bus as `as` */
    {"fields",
     {"vm.list",
      TWIN_SAME,
      NEEDS_DEFINED,
      "{\"fields\": [\"name\", \"state\", \"cpus\", \"memory_mib\", \"accel\", \"pid\", "
      "\"idle_s\"]}",
      NULL}},
    {"fields-none", {"vm.list", TWIN_SAME, NEEDS_DEFINED, "{\"fields\": []}", NULL}},
    /* a VM that does not run has no console: both refuse it alike */
    {"stopped", {"vm.console", TWIN_SAME, NEEDS_DEFINED, "{\"name\": \"@NAME@\"}", NULL}},
    {"fields-unknown",
     {"vm.list", TWIN_SAME, NEEDS_DEFINED, "{\"fields\": [\"name\", \"nmae\"]}", NULL}},
};

static const TwinCase *
twin_case_lookup(const gchar *rpc_name)
{
	for (guint i = 0; i < G_N_ELEMENTS(twin_cases); i++) {
		if (g_strcmp0(twin_cases[i].rpc_name, rpc_name) == 0)
			return &twin_cases[i];
	}
	return NULL;
}

/* a host directory of its own for each workspace */
static gchar *
workspace_dir(const gchar *name)
{
	gchar *dir = g_build_filename(global.tmpdir, "workspaces", name, NULL);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	return dir;
}

static JsonObject *
twin_params(const TwinCase *twin, const gchar *name)
{
	g_autoptr(GString) json = g_string_new(twin->params);
	g_autofree gchar *op = g_strdup_printf("%" G_GINT64_FORMAT, global.twin_op_id);
	g_autofree gchar *dir = workspace_dir(name);

	g_string_replace(json, "@NAME@", name, 0);
	g_string_replace(json, "@OP@", op, 0);
	g_string_replace(json, "@DIR@", dir, 0);
	return parse_object(json->str);
}

static void
twin_prepare(const TwinCase *twin, const gchar *name)
{
	g_autofree gchar *json = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autofree gchar *dir = NULL;

	switch (twin->needs) {
	case NEEDS_DEFINED:
	case NEEDS_RUNNING:
		json = g_strdup_printf("{\"name\": \"%s\", \"memory_mib\": 128, \"wait\": true, "
				       "\"start\": %s}",
				       name,
				       twin->needs == NEEDS_RUNNING ? "true" : "false");
		result = rpc_ok("vm.create", json);
		break;
	case NEEDS_WORKSPACE:
		dir = workspace_dir(name);
		json = g_strdup_printf("{\"name\": \"%s\", \"path\": \"%s\"}", name, dir);
		result = rpc_ok("workspace.create", json);
		break;
	case NEEDS_NOTHING:
	default:
		break;
	}
}

static void
twin_cleanup(const TwinCase *twin, const gchar *name)
{
	g_autoptr(JsonObject) params = json_object_new();
	g_auto(Answer) answer = {NULL};

	json_object_set_string_member(params, "name", name);
	json_object_set_boolean_member(params, "force", TRUE);
	/* whatever the case left: a workspace, a VM, or nothing (an error is fine) */
	if (g_str_has_prefix(twin->rpc_name, "workspace."))
		rpc_call("workspace.delete", params, &answer);
	answer_clear(&answer);
	rpc_call("vm.delete", params, &answer);
}

static void
twin_run(const VmsupRpcMethod *method, const TwinCase *twin)
{
	g_auto(Answer) rpc = {NULL};
	g_auto(Answer) dbus = {NULL};
	g_auto(GStrv) masked = NULL;

	masked = masked_members(twin->kind == TWIN_PAIRED, twin->masked);
	ensure_twin_vm();
	if (twin->needs == NEEDS_AGENT)
		ensure_running_twin_vm();

	if (twin->kind == TWIN_SAME) {
		const gchar *const names[] = {NULL};
		g_autoptr(JsonObject) params =
		    twin_params(twin, twin->needs == NEEDS_AGENT ? TWIN_RUNNING_VM : TWIN_VM);

		rpc_call(method->rpc_name, params, &rpc);
		dbus_call_method(method, params, &dbus);
		assert_same_answer(method, &rpc, &dbus, names, (const gchar *const *)masked);
	} else {
		g_autofree gchar *base = g_strdelimit(g_strdup(method->rpc_name), ".", '-');
		g_autofree gchar *name_rpc = g_strdup_printf("tw-%s-j", base);
		g_autofree gchar *name_dbus = g_strdup_printf("tw-%s-d", base);
		const gchar *const names[] = {name_rpc, name_dbus, NULL};
		g_autoptr(JsonObject) params_rpc = twin_params(twin, name_rpc);
		g_autoptr(JsonObject) params_dbus = twin_params(twin, name_dbus);

		twin_prepare(twin, name_rpc);
		twin_prepare(twin, name_dbus);
		rpc_call(method->rpc_name, params_rpc, &rpc);
		dbus_call_method(method, params_dbus, &dbus);
		twin_cleanup(twin, name_rpc);
		twin_cleanup(twin, name_dbus);
		assert_same_answer(method, &rpc, &dbus, names, (const gchar *const *)masked);
	}
}

static void
test_twin(gconstpointer user_data)
{
	const VmsupRpcMethod *method = user_data;
	const TwinCase *twin = twin_case_lookup(method->rpc_name);

	if (twin == NULL) {
		g_test_fail_printf("%s has no twin case: add one to twin_cases in %s",
				   method->rpc_name,
				   __FILE__);
		return;
	}
	twin_run(method, twin);
}

static void
test_twin_more(gconstpointer user_data)
{
	const TwinCase *twin = user_data;
	twin_run(vmsup_rpc_table_lookup(twin->rpc_name), twin);
}

static void
test_twin_cases_known(void)
{
	/* a case for a method that left the table is dead weight */
	for (guint i = 0; i < G_N_ELEMENTS(twin_cases); i++)
		g_assert_nonnull(vmsup_rpc_table_lookup(twin_cases[i].rpc_name));
	for (guint i = 0; i < G_N_ELEMENTS(twin_more_cases); i++)
		g_assert_nonnull(vmsup_rpc_table_lookup(twin_more_cases[i].twin.rpc_name));
}

/* /vmsup/rpc/vm-list/fields */

/* activity moves with the clock: a member may come (idle_reason) or change between two calls */
static gboolean
member_is_activity(const gchar *member)
{
	for (const VmsupVmMember *m = vmsup_vm_service_get_members(); m->name != NULL; m++) {
		if (g_strcmp0(m->name, member) == 0)
			return m->source == VMSUP_VM_MEMBER_ACTIVITY;
	}
	return FALSE;
}

/* a copy of @vm without its activity, as text to compare */
static gchar *
vm_text_without_activity(JsonObject *vm)
{
	g_autoptr(JsonObject) copy = json_object_new();
	g_autoptr(GList) members = json_object_get_members(vm);

	for (GList *l = members; l != NULL; l = l->next) {
		if (!member_is_activity(l->data))
			json_object_set_member(copy,
					       l->data,
					       json_node_copy(json_object_get_member(vm, l->data)));
	}
	return vmsup_json_object_to_string(copy, FALSE);
}

/* @selected has the members of @whole named in @fields, no other, with the same values */
static void
assert_selected(JsonObject *whole, JsonObject *selected, const gchar *const *fields)
{
	g_autoptr(GList) members = json_object_get_members(selected);

	for (GList *l = members; l != NULL; l = l->next) {
		const gchar *member = l->data;
		if (!g_strv_contains(fields, member))
			g_error("'%s' was not asked for", member);
		if (member_is_activity(member))
			continue;
		g_assert_true(json_node_equal(json_object_get_member(selected, member),
					      json_object_get_member(whole, member)));
	}
	for (guint i = 0; fields[i] != NULL; i++) {
		gboolean in_whole = json_object_has_member(whole, fields[i]);
		gboolean in_selected = json_object_has_member(selected, fields[i]);

		if (!member_is_activity(fields[i]) && in_whole != in_selected)
			g_error("'%s' of VM '%s': %s in vm.get, %s in the selection",
				fields[i],
				json_object_get_string_member(whole, "name"),
				in_whole ? "present" : "absent",
				in_selected ? "present" : "absent");
	}
}

/* vm.list with @fields, each VM checked against @full_vms (vm.list without fields) */
static JsonObject *
list_selected(JsonArray *full_vms, const gchar *const *fields)
{
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonArray) array = json_array_new();
	g_auto(Answer) answer = {NULL};
	JsonArray *vms;

	for (guint i = 0; fields[i] != NULL; i++)
		json_array_add_string_element(array, fields[i]);
	json_object_set_array_member(params, "fields", g_steal_pointer(&array));
	rpc_call("vm.list", params, &answer);
	if (answer.result == NULL)
		g_error("vm.list with fields failed: %s", answer.message);
	vms = json_object_get_array_member(json_node_get_object(answer.result), "vms");
	g_assert_cmpuint(json_array_get_length(vms), ==, json_array_get_length(full_vms));
	for (guint i = 0; i < json_array_get_length(vms); i++)
		assert_selected(json_array_get_object_element(full_vms, i),
				json_array_get_object_element(vms, i),
				fields);
	return json_object_ref(json_node_get_object(answer.result));
}

/*
 * vm.list's fields against a daemon with VMs defined, running and stopped,
 * their activity merged in: without fields each VM is its vm.get result, and
 * every member those have is one fields can name; with fields, each VM has
 * just those of its members; bad fields are refused and change nothing.
 */
static void
test_list_fields(void)
{
	const gchar *const *members = vmsup_vm_service_get_member_names();
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(JsonObject) stopped = NULL;
	g_autoptr(JsonObject) full = NULL;
	g_autoptr(JsonObject) after = NULL;
	JsonArray *full_vms;
	JsonArray *after_vms;
	gboolean seen_pid = FALSE;
	gboolean seen_exit = FALSE;
	gboolean seen_activity = FALSE;
	const gchar *const bad[][2] = {
	    {"{\"fields\": \"name\"}", "'fields'"},
	    {"{\"fields\": [\"name\", 1]}", "'fields'"},
	    {"{\"fields\": [\"name\", \"nmae\"]}", "'nmae'"},
	};

	ensure_twin_vm();
	ensure_running_twin_vm();
	created = rpc_ok("vm.create",
			 "{\"name\": \"fields-stopped\", \"memory_mib\": 128, \"start\": true, "
			 "\"wait\": true}");
	stopped = rpc_ok("vm.stop", "{\"name\": \"fields-stopped\", \"force\": true}");

	full = rpc_ok("vm.list", "{}");
	full_vms = json_object_get_array_member(full, "vms");
	g_assert_cmpuint(json_array_get_length(full_vms), >=, 3);
	for (guint i = 0; i < json_array_get_length(full_vms); i++) {
		JsonObject *vm = json_array_get_object_element(full_vms, i);
		g_autofree gchar *params =
		    g_strdup_printf("{\"name\": \"%s\"}",
				    json_object_get_string_member(vm, "name"));
		g_autoptr(JsonObject) got = rpc_ok("vm.get", params);
		g_autoptr(GList) got_members = json_object_get_members(got);
		g_autofree gchar *listed_text = vm_text_without_activity(vm);
		g_autofree gchar *got_text = vm_text_without_activity(got);

		g_assert_cmpstr(listed_text, ==, got_text);
		for (GList *l = got_members; l != NULL; l = l->next) {
			if (!g_strv_contains(members, l->data))
				g_error(
				    "vm.get answers '%s', which vm.list's fields do not know: add "
				    "it to vmsup_vm_members in src/services/vmsup-vm-service.c",
				    (const gchar *)l->data);
			g_assert_true(json_object_has_member(vm, l->data));
		}
		seen_pid = seen_pid || json_object_has_member(got, "pid");
		seen_exit = seen_exit || json_object_has_member(got, "exit_status") ||
			    json_object_has_member(got, "exit_signal");
		seen_activity = seen_activity || json_object_has_member(got, "idle_s");
	}
	/* what the list is checked against had a running, a stopped VM and activity */
	g_assert_true(seen_pid);
	g_assert_true(seen_exit);
	g_assert_true(seen_activity);

	/* each member alone, the table of 'vmsup list', and activity without the name */
	for (guint m = 0; members[m] != NULL; m++) {
		const gchar *const fields[] = {members[m], NULL};
		g_autoptr(JsonObject) selected = list_selected(full_vms, fields);
	}
	{
		const gchar *const table[] =
		    {"name", "state", "cpus", "memory_mib", "accel", "pid", NULL};
		const gchar *const activity[] = {"state", "idle_s", "last_active", NULL};
		g_autoptr(JsonObject) selected = list_selected(full_vms, table);
		g_autoptr(JsonObject) selected_activity = list_selected(full_vms, activity);
		JsonArray *vms = json_object_get_array_member(selected_activity, "vms");

		for (guint i = 0; i < json_array_get_length(vms); i++) {
			JsonObject *vm = json_array_get_object_element(vms, i);
			g_assert_false(json_object_has_member(vm, "name"));
			if (json_object_has_member(json_array_get_object_element(full_vms, i),
						   "idle_s"))
				g_assert_true(json_object_has_member(vm, "idle_s"));
		}
	}

	/* refused with the offending value named; the VMs are as they were */
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(JsonObject) params = parse_object(bad[i][0]);
		g_auto(Answer) answer = {NULL};

		rpc_call("vm.list", params, &answer);
		g_assert_null(answer.result);
		g_assert_cmpint(answer.code, ==, VMSUP_ERROR_INVALID_PARAMS);
		if (strstr(answer.message, bad[i][1]) == NULL)
			g_error("%s not named in: %s", bad[i][1], answer.message);
	}
	after = rpc_ok("vm.list", "{}");
	after_vms = json_object_get_array_member(after, "vms");
	g_assert_cmpuint(json_array_get_length(after_vms), ==, json_array_get_length(full_vms));
	for (guint i = 0; i < json_array_get_length(full_vms); i++) {
		g_autofree gchar *before_text =
		    vm_text_without_activity(json_array_get_object_element(full_vms, i));
		g_autofree gchar *after_text =
		    vm_text_without_activity(json_array_get_object_element(after_vms, i));
		g_assert_cmpstr(after_text, ==, before_text);
	}

	g_clear_pointer(&stopped, json_object_unref);
	stopped = rpc_ok("vm.delete", "{\"name\": \"fields-stopped\", \"force\": true}");
}

/* /vmsup/dbus/objects */

static GVariant *
get_managed_objects(void)
{
	g_autoptr(GError) error = NULL;
	GVariant *reply = dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
				    "org.freedesktop.DBus.ObjectManager",
				    "GetManagedObjects",
				    NULL,
				    "(a{oa{sa{sv}}})",
				    &error);
	g_assert_no_error(error);
	return reply;
}

static void
test_managed_objects(void)
{
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) objects = NULL;
	JsonArray *vms;

	ensure_twin_vm();
	list = rpc_ok("vm.list", "{}");
	vms = json_object_get_array_member(list, "vms");
	reply = get_managed_objects();
	objects = g_variant_get_child_value(reply, 0);

	/* one object per VM, nothing else */
	g_assert_cmpuint(g_variant_n_children(objects), ==, json_array_get_length(vms));
	for (guint i = 0; i < json_array_get_length(vms); i++) {
		JsonObject *vm = json_array_get_object_element(vms, i);
		const gchar *name = json_object_get_string_member(vm, "name");
		g_autofree gchar *path = vmsup_dbus_vm_object_path(name);
		g_autoptr(GVariant) interfaces = g_variant_lookup_value(objects, path, NULL);
		g_autoptr(GVariant) properties = NULL;
		const gchar *prop_name = NULL;
		const gchar *prop_state = NULL;

		g_assert_nonnull(interfaces);
		properties = g_variant_lookup_value(interfaces, VM_IFACE, G_VARIANT_TYPE_VARDICT);
		g_assert_nonnull(properties);
		g_assert_true(g_variant_lookup(properties, "Name", "&s", &prop_name));
		g_assert_cmpstr(prop_name, ==, name);
		g_assert_true(g_variant_lookup(properties, "State", "&s", &prop_state));
		g_assert_cmpstr(prop_state, ==, json_object_get_string_member(vm, "state"));
	}
}

/* /vmsup/dbus/vm-object-methods: VM1's methods are the supervisor's for that VM */

static void
test_vm_object_methods(void)
{
	g_autofree gchar *path = vmsup_dbus_vm_object_path(TWIN_VM);
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(Answer) via_object = {NULL};
	g_auto(Answer) via_supervisor = {NULL};
	const gchar *const names[] = {NULL};
	g_auto(GStrv) masked = masked_members(FALSE, NULL);
	g_autoptr(JsonObject) params = NULL;
	const VmsupRpcMethod *get = vmsup_rpc_table_lookup("vm.get");
	const VmsupRpcMethod *stop = vmsup_rpc_table_lookup("vm.stop");
	const VmsupRpcMethod *console = vmsup_rpc_table_lookup("vm.console");
	g_autofree gchar *running_path = NULL;

	ensure_twin_vm();
	params = parse_object("{\"name\": \"" TWIN_VM "\"}");

	reply = dbus_call(path, VM_IFACE, "Get", NULL, "(a{sv})", &error);
	answer_from_dbus(reply, error, &via_object);
	dbus_call_method(get, params, &via_supervisor);
	assert_same_answer(get, &via_supervisor, &via_object, names, (const gchar *const *)masked);
	answer_clear(&via_object);
	answer_clear(&via_supervisor);
	g_clear_pointer(&reply, g_variant_unref);

	/* stopping a VM that never ran: the same answer either way */
	reply = dbus_call(path,
			  VM_IFACE,
			  "Stop",
			  g_variant_new("(@a{sv})", empty_vardict()),
			  "(a{sv})",
			  &error);
	answer_from_dbus(reply, error, &via_object);
	g_clear_error(&error);
	dbus_call_method(stop, params, &via_supervisor);
	assert_same_answer(stop, &via_supervisor, &via_object, names, (const gchar *const *)masked);
	answer_clear(&via_object);
	answer_clear(&via_supervisor);

	/* OpenConsole(a{sv}) -> h: refused alike for a VM that does not run ... */
	dbus_call_fd(path,
		     VM_IFACE,
		     console,
		     g_variant_new("(@a{sv})", empty_vardict()),
		     &via_object);
	dbus_call_method(console, params, &via_supervisor);
	g_assert_cmpint(via_object.code, ==, VMSUP_ERROR_FAILED_PRECONDITION);
	assert_same_answer(console,
			   &via_supervisor,
			   &via_object,
			   names,
			   (const gchar *const *)masked);
	answer_clear(&via_object);

	/* ... and a connected socket in the fd list for one that does */
	ensure_running_twin_vm();
	running_path = vmsup_dbus_vm_object_path(TWIN_RUNNING_VM);
	dbus_call_fd(running_path,
		     VM_IFACE,
		     console,
		     g_variant_new("(@a{sv})", empty_vardict()),
		     &via_object);
	g_assert_nonnull(via_object.result);
	g_assert_cmpint(json_object_get_int_member(json_node_get_object(via_object.result), "fd"),
			==,
			0);
}

/* /vmsup/dbus/errors */

static void
test_errors(void)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *remote = NULL;
	g_autofree gchar *path = vmsup_dbus_vm_object_path("nope");
	GVariantBuilder options;

	ensure_daemon();

	reply = dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
			  SUPERVISOR_IFACE,
			  "Get",
			  g_variant_new("(s@a{sv})", "nope", empty_vardict()),
			  "(a{sv})",
			  &error);
	g_assert_null(reply);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	remote = g_dbus_error_get_remote_error(error);
	g_assert_cmpstr(remote, ==, "io.github.vmsup.Error.NotFound");
	g_clear_error(&error);

	/* no object for a VM that does not exist */
	reply = dbus_call(path, VM_IFACE, "Get", NULL, "(a{sv})", &error);
	g_assert_null(reply);
	g_assert_true(error->domain == G_DBUS_ERROR);
	g_clear_error(&error);

	/* bad input is an error, and the daemon goes on */
	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&options, "{sv}", "cpus", g_variant_new_string("many"));
	reply = dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
			  SUPERVISOR_IFACE,
			  "Create",
			  g_variant_new("(sa{sv})", "bad-input", &options),
			  "(a{sv})",
			  &error);
	g_assert_null(reply);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS);
	g_clear_error(&error);
	reply = dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
			  SUPERVISOR_IFACE,
			  "Stop",
			  g_variant_new("(s@a{sv})", "../etc", empty_vardict()),
			  "(a{sv})",
			  &error);
	g_assert_null(reply);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	reply = dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
			  SUPERVISOR_IFACE,
			  "Info",
			  g_variant_new("(@a{sv})", empty_vardict()),
			  "(a{sv})",
			  &error);
	g_assert_no_error(error);
	g_assert_nonnull(reply);
}

/*
 * The caller's uid comes from the bus (the sender polkit was asked about):
 * an option posing as it, or as what VMService checks a share against, is
 * refused before any service sees it.
 */
static void
test_uid_not_an_option(void)
{
	const struct {
		const gchar *method;
		const gchar *vm; /* the leading `s`, or NULL */
		const gchar *member;
	} cases[] = {
	    {"CreateWorkspace", NULL, "caller_uid"},
	    {"CreateWorkspace", NULL, "uid"},
	    {"OpenWorkspace", NULL, "caller_uid"},
	    {"Create", "spoof", "share_uid"},
	    {"Create", "spoof", "share_dir"},
	    {"Set", "spoof", "share_uid"},
	    {"Create", "spoof", "caller_uid"},
	    {"Create", "spoof", "owner_uid"},
	    {"Set", "spoof", "caller_uid"},
	    {"Set", "spoof", "owner_uid"},
	};

	ensure_daemon();
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GVariant) reply = NULL;
		g_autoptr(GError) error = NULL;
		GVariantBuilder options;
		GVariant *args;

		g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
		if (cases[i].vm == NULL) {
			g_variant_builder_add(&options,
					      "{sv}",
					      "name",
					      g_variant_new_string("spoof"));
			if (g_str_equal(cases[i].method, "CreateWorkspace"))
				g_variant_builder_add(&options,
						      "{sv}",
						      "path",
						      g_variant_new_string("/tmp"));
		}
		g_variant_builder_add(&options,
				      "{sv}",
				      cases[i].member,
				      g_str_equal(cases[i].member, "share_dir")
					  ? g_variant_new_string("/root")
					  : g_variant_new_uint32(0));
		args = cases[i].vm != NULL ? g_variant_new("(sa{sv})", cases[i].vm, &options)
					   : g_variant_new("(a{sv})", &options);
		reply = dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
				  SUPERVISOR_IFACE,
				  cases[i].method,
				  args,
				  "(a{sv})",
				  &error);
		g_test_message("%s %s: %s", cases[i].method, cases[i].member, error->message);
		g_assert_null(reply);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS);
		g_assert_nonnull(strstr(error->message, cases[i].member));
	}
}

/* /vmsup/dbus/vm-object-follows-state */

typedef struct {
	gchar *path;
	gchar *name;
	gchar *state;         /* last State seen in PropertiesChanged */
	gchar *signal_state;  /* last state seen in VmChanged */
	gboolean removed;     /* VmRemoved seen */
	gboolean object_gone; /* InterfacesRemoved seen */
} StateWatch;

static void
state_watch_cb(GDBusConnection *connection,
	       const gchar *sender,
	       const gchar *object_path,
	       const gchar *interface_name,
	       const gchar *signal_name,
	       GVariant *parameters,
	       gpointer user_data)
{
	StateWatch *watch = user_data;

	if (g_strcmp0(signal_name, "PropertiesChanged") == 0 &&
	    g_strcmp0(object_path, watch->path) == 0) {
		g_autoptr(GVariant) changed = g_variant_get_child_value(parameters, 1);
		const gchar *state = NULL;
		if (g_variant_lookup(changed, "State", "&s", &state)) {
			g_free(watch->state);
			watch->state = g_strdup(state);
		}
	} else if (g_strcmp0(signal_name, "VmChanged") == 0) {
		const gchar *name = NULL;
		g_autoptr(GVariant) vm = NULL;
		const gchar *state = NULL;
		g_variant_get(parameters, "(&s@a{sv})", &name, &vm);
		if (g_strcmp0(name, watch->name) == 0 &&
		    g_variant_lookup(vm, "state", "&s", &state)) {
			g_free(watch->signal_state);
			watch->signal_state = g_strdup(state);
		}
	} else if (g_strcmp0(signal_name, "VmRemoved") == 0) {
		const gchar *name = NULL;
		g_variant_get(parameters, "(&s)", &name);
		if (g_strcmp0(name, watch->name) == 0)
			watch->removed = TRUE;
	} else if (g_strcmp0(signal_name, "InterfacesRemoved") == 0) {
		const gchar *path = NULL;
		g_variant_get(parameters, "(&o@as)", &path, NULL);
		if (g_strcmp0(path, watch->path) == 0)
			watch->object_gone = TRUE;
	}
}

static gboolean
watch_running(gpointer user_data)
{
	StateWatch *watch = user_data;
	return g_strcmp0(watch->state, "running") == 0 &&
	       g_strcmp0(watch->signal_state, "running") == 0;
}

static gboolean
watch_stopped(gpointer user_data)
{
	StateWatch *watch = user_data;
	return g_strcmp0(watch->state, "stopped") == 0;
}

static gboolean
watch_removed(gpointer user_data)
{
	StateWatch *watch = user_data;
	return watch->removed && watch->object_gone;
}

/* Properties.Get of @iface's @property on @path, which must succeed */
static GVariant *
get_property(const gchar *path, const gchar *iface, const gchar *property)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = dbus_call(path,
					      "org.freedesktop.DBus.Properties",
					      "Get",
					      g_variant_new("(ss)", iface, property),
					      "(v)",
					      &error);
	GVariant *value = NULL;

	g_assert_no_error(error);
	g_variant_get(reply, "(v)", &value);
	return value;
}

static GVariant *
get_vm_property(const gchar *path, const gchar *property)
{
	return get_property(path, VM_IFACE, property);
}

static void
test_vm_object_follows_state(void)
{
	StateWatch watch = {NULL};
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(JsonObject) started = NULL;
	g_autoptr(JsonObject) stopped = NULL;
	g_autoptr(JsonObject) deleted = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(GVariant) state = NULL;
	g_autoptr(GVariant) pid = NULL;
	g_autoptr(GVariant) memory = NULL;
	g_autoptr(GVariant) objects = NULL;
	g_autoptr(GVariant) objects_dict = NULL;
	guint subscription;

	ensure_daemon();
	watch.name = g_strdup("follow");
	watch.path = vmsup_dbus_vm_object_path(watch.name);
	subscription = g_dbus_connection_signal_subscribe(global.conn,
							  NULL,
							  NULL,
							  NULL,
							  NULL,
							  NULL,
							  G_DBUS_SIGNAL_FLAGS_NONE,
							  state_watch_cb,
							  &watch,
							  NULL);

	/* defined over JSON-RPC: the object is there, complete */
	created =
	    rpc_ok("vm.create",
		   "{\"name\": \"follow\", \"memory_mib\": 128, \"cpus\": 1, \"wait\": true}");
	memory = get_vm_property(watch.path, "MemoryMiB");
	g_assert_cmpuint(g_variant_get_uint32(memory), ==, 128);

	/* started over JSON-RPC: State on the object and VmChanged follow */
	started = rpc_ok("vm.start", "{\"name\": \"follow\"}");
	vmsup_test_wait_until(watch_running, &watch, WAIT_S);
	state = get_vm_property(watch.path, "State");
	g_assert_cmpstr(g_variant_get_string(state, NULL), ==, "running");
	vm = rpc_ok("vm.get", "{\"name\": \"follow\"}");
	pid = get_vm_property(watch.path, "Pid");
	g_assert_cmpint(g_variant_get_uint32(pid), ==, vmsup_json_object_get_int(vm, "pid", -1));
	g_assert_cmpuint(g_variant_get_uint32(pid), >, 0);

	stopped = rpc_ok("vm.stop", "{\"name\": \"follow\", \"force\": true}");
	vmsup_test_wait_until(watch_stopped, &watch, WAIT_S);

	/* deleted: VmRemoved, and the object goes */
	deleted = rpc_ok("vm.delete", "{\"name\": \"follow\"}");
	vmsup_test_wait_until(watch_removed, &watch, WAIT_S);
	objects = get_managed_objects();
	objects_dict = g_variant_get_child_value(objects, 0);
	g_assert_null(g_variant_lookup_value(objects_dict, watch.path, NULL));

	g_dbus_connection_signal_unsubscribe(global.conn, subscription);
	g_free(watch.name);
	g_free(watch.path);
	g_free(watch.state);
	g_free(watch.signal_state);
}

/* /vmsup/dbus/gdbus-tool: what desktop tooling runs */

static gchar *
run_gdbus(const gchar *const *args, gint *out_status, gchar **out_stderr)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	gchar *out = NULL;
	gint wait_status = 0;

	g_ptr_array_add(argv, (gpointer) "gdbus");
	g_ptr_array_add(argv, (gpointer) "call");
	g_ptr_array_add(argv, (gpointer) "--session");
	g_ptr_array_add(argv, (gpointer) "--dest");
	g_ptr_array_add(argv, (gpointer)VMSUP_DBUS_BUS_NAME);
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	g_assert_true(g_spawn_sync(NULL,
				   (gchar **)argv->pdata,
				   NULL,
				   G_SPAWN_SEARCH_PATH,
				   NULL,
				   NULL,
				   &out,
				   out_stderr,
				   &wait_status,
				   &error));
	g_assert_no_error(error);
	*out_status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
	return out;
}

static void
test_gdbus_tool(void)
{
	const gchar *get_twin[] = {"--object-path",
				   VMSUP_DBUS_SUPERVISOR_PATH,
				   "--method",
				   SUPERVISOR_IFACE ".Get",
				   TWIN_VM,
				   "{}",
				   NULL};
	const gchar *get_nope[] = {"--object-path",
				   VMSUP_DBUS_SUPERVISOR_PATH,
				   "--method",
				   SUPERVISOR_IFACE ".Get",
				   "nope",
				   "{}",
				   NULL};
	const gchar *create[] = {"--object-path",
				 VMSUP_DBUS_SUPERVISOR_PATH,
				 "--method",
				 SUPERVISOR_IFACE ".Create",
				 "tw-gdbus",
				 "{'memory_mib': <128>, 'cpus': <uint32 1>, 'wait': <true>}",
				 NULL};
	const gchar *state[] = {"--object-path",
				VMSUP_DBUS_VM_PATH_PREFIX "tw_2dgdbus",
				"--method",
				"org.freedesktop.DBus.Properties.Get",
				VM_IFACE,
				"State",
				NULL};
	const gchar *delete[] = {"--object-path",
				 VMSUP_DBUS_VM_PATH_PREFIX "tw_2dgdbus",
				 "--method",
				 VM_IFACE ".Delete",
				 "{'force': <true>}",
				 NULL};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	ensure_twin_vm();

	out = run_gdbus(get_twin, &status, &err);
	g_assert_cmpint(status, ==, 0);
	g_assert_nonnull(strstr(out, "'name': <'" TWIN_VM "'>"));
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);

	out = run_gdbus(get_nope, &status, &err);
	g_assert_cmpint(status, !=, 0);
	g_assert_nonnull(strstr(err, "io.github.vmsup.Error.NotFound"));
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);

	/* integers typed the way a person types them (int32, uint32) are integers */
	out = run_gdbus(create, &status, &err);
	g_test_message("%s%s", out, err);
	g_assert_cmpint(status, ==, 0);
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);

	out = run_gdbus(state, &status, &err);
	g_assert_cmpint(status, ==, 0);
	g_assert_true(strstr(out, "<'defined'>") != NULL || strstr(out, "<'stopped'>") != NULL);
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);

	out = run_gdbus(delete, &status, &err);
	g_test_message("%s%s", out, err);
	g_assert_cmpint(status, ==, 0);
}

/* /vmsup/dbus/supervisor/...: the supervisor's properties */

/* what the supervisor's PropertiesChanged said, and how often */
typedef struct {
	guint signals;
	gint64 vm_count;      /* last VmCount seen, -1 before */
	gint64 running_count; /* last RunningCount seen, -1 before */
} PropsWatch;

static void
props_watch_cb(GDBusConnection *connection,
	       const gchar *sender,
	       const gchar *object_path,
	       const gchar *interface_name,
	       const gchar *signal_name,
	       GVariant *parameters,
	       gpointer user_data)
{
	PropsWatch *watch = user_data;
	const gchar *iface = NULL;
	g_autoptr(GVariant) changed = NULL;
	guint32 value = 0;

	g_variant_get(parameters, "(&s@a{sv}as)", &iface, &changed, NULL);
	if (g_strcmp0(iface, SUPERVISOR_IFACE) != 0)
		return;
	watch->signals++;
	if (g_variant_lookup(changed, "VmCount", "u", &value))
		watch->vm_count = value;
	if (g_variant_lookup(changed, "RunningCount", "u", &value))
		watch->running_count = value;
}

static guint
props_watch_start(PropsWatch *watch)
{
	watch->signals = 0;
	watch->vm_count = -1;
	watch->running_count = -1;
	return g_dbus_connection_signal_subscribe(global.conn,
						  NULL,
						  "org.freedesktop.DBus.Properties",
						  "PropertiesChanged",
						  VMSUP_DBUS_SUPERVISOR_PATH,
						  NULL,
						  G_DBUS_SIGNAL_FLAGS_NONE,
						  props_watch_cb,
						  watch,
						  NULL);
}

typedef struct {
	PropsWatch *watch;
	gint64 vm_count;
	gint64 running_count; /* -1: any */
} PropsWant;

static gboolean
props_watch_has(gpointer user_data)
{
	PropsWant *want = user_data;
	return want->watch->vm_count == want->vm_count &&
	       (want->running_count < 0 || want->watch->running_count == want->running_count);
}

static GVariant *
get_supervisor_property(const gchar *property)
{
	return get_property(VMSUP_DBUS_SUPERVISOR_PATH, SUPERVISOR_IFACE, property);
}

static guint32
get_supervisor_count(const gchar *property)
{
	g_autoptr(GVariant) value = get_supervisor_property(property);
	return g_variant_get_uint32(value);
}

static void
test_supervisor_properties(void)
{
	GDBusInterfaceInfo *info = vmsup_dbus_supervisor1_interface_info();
	const gchar *const names[] = {"Version", "Accel", "AccelReason", "VmCount", "RunningCount"};
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) all = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(JsonObject) info_result = NULL;
	g_autofree gchar *printed = NULL;
	JsonArray *vms;
	guint running = 0;
	const gchar *s = NULL;
	guint32 u = 0;

	ensure_twin_vm();

	/* the XML has these five and no other */
	for (guint i = 0; i < G_N_ELEMENTS(names); i++)
		g_assert_nonnull(g_dbus_interface_info_lookup_property(info, names[i]));
	g_assert_nonnull(info->properties);
	g_assert_null(info->properties[G_N_ELEMENTS(names)]);

	reply = dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
			  "org.freedesktop.DBus.Properties",
			  "GetAll",
			  g_variant_new("(s)", SUPERVISOR_IFACE),
			  "(a{sv})",
			  &error);
	g_assert_no_error(error);
	all = g_variant_get_child_value(reply, 0);
	printed = g_variant_print(all, TRUE);
	g_test_message("GetAll: %s", printed);
	g_assert_cmpuint(g_variant_n_children(all), ==, G_N_ELEMENTS(names));

	/* what Info and List say, which the daemon's configuration decides */
	info_result = rpc_ok("daemon.info", "{}");
	g_assert_true(g_variant_lookup(all, "Version", "&s", &s));
	g_assert_cmpstr(s, ==, PACKAGE_VERSION);
	g_assert_cmpstr(s, ==, vmsup_json_object_get_string(info_result, "version", NULL));
	g_assert_true(g_variant_lookup(all, "Accel", "&s", &s));
	g_assert_cmpstr(s, ==, "tcg");
	g_assert_true(g_variant_lookup(all, "AccelReason", "&s", &s));
	g_assert_cmpstr(s, ==, "configured");
	g_assert_cmpstr(s, ==, vmsup_json_object_get_string(info_result, "accel_reason", NULL));
	list = rpc_ok("vm.list", "{}");
	vms = json_object_get_array_member(list, "vms");
	g_assert_cmpuint(json_array_get_length(vms), >=, 1);
	for (guint i = 0; i < json_array_get_length(vms); i++) {
		const gchar *state =
		    vmsup_json_object_get_string(json_array_get_object_element(vms, i),
						 "state",
						 NULL);
		if (g_strcmp0(state, "running") == 0 || g_strcmp0(state, "paused") == 0)
			running++;
	}
	g_assert_true(g_variant_lookup(all, "VmCount", "u", &u));
	g_assert_cmpuint(u, ==, json_array_get_length(vms));
	g_assert_true(g_variant_lookup(all, "RunningCount", "u", &u));
	g_assert_cmpuint(u, ==, running);

	/* Get gives each the same */
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(GVariant) one = get_supervisor_property(names[i]);
		g_autoptr(GVariant) from_all = g_variant_lookup_value(all, names[i], NULL);
		g_assert_true(g_variant_equal(one, from_all));
	}

	/* read-only */
	g_clear_pointer(&reply, g_variant_unref);
	reply =
	    dbus_call(VMSUP_DBUS_SUPERVISOR_PATH,
		      "org.freedesktop.DBus.Properties",
		      "Set",
		      g_variant_new("(ssv)", SUPERVISOR_IFACE, "VmCount", g_variant_new_uint32(7)),
		      NULL,
		      &error);
	g_assert_null(reply);
	g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS);
	g_assert_cmpuint(get_supervisor_count("VmCount"), ==, json_array_get_length(vms));
}

/* a VM named paused-* runs a QEMU with no guest: see the wrapper in global_setup() */
static void
test_supervisor_counts_follow(void)
{
	PropsWatch watch;
	PropsWant want = {&watch, 0, -1};
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(JsonObject) started = NULL;
	g_autoptr(JsonObject) stopped = NULL;
	g_autoptr(JsonObject) deleted = NULL;
	g_autoptr(JsonObject) vm = NULL;
	guint32 vms;
	guint32 running;
	guint subscription;

	ensure_daemon();
	subscription = props_watch_start(&watch);
	vms = get_supervisor_count("VmCount");
	running = get_supervisor_count("RunningCount");

	created = rpc_ok("vm.create",
			 "{\"name\": \"paused-props\", \"memory_mib\": 128, \"wait\": true}");
	want.vm_count = vms + 1;
	vmsup_test_wait_until(props_watch_has, &want, WAIT_S);
	g_assert_cmpuint(get_supervisor_count("VmCount"), ==, vms + 1);
	g_assert_cmpuint(get_supervisor_count("RunningCount"), ==, running);

	started = rpc_ok("vm.start", "{\"name\": \"paused-props\"}");
	vm = rpc_ok("vm.get", "{\"name\": \"paused-props\"}");
	g_assert_cmpint(vmsup_json_object_get_int(vm, "pid", 0), >, 0);
	want.running_count = running + 1;
	vmsup_test_wait_until(props_watch_has, &want, WAIT_S);
	g_assert_cmpuint(get_supervisor_count("RunningCount"), ==, running + 1);

	stopped = rpc_ok("vm.stop", "{\"name\": \"paused-props\", \"force\": true}");
	want.running_count = running;
	vmsup_test_wait_until(props_watch_has, &want, WAIT_S);
	g_assert_cmpuint(get_supervisor_count("RunningCount"), ==, running);
	g_assert_cmpuint(get_supervisor_count("VmCount"), ==, vms + 1);

	deleted = rpc_ok("vm.delete", "{\"name\": \"paused-props\"}");
	want.vm_count = vms;
	vmsup_test_wait_until(props_watch_has, &want, WAIT_S);
	g_assert_cmpuint(get_supervisor_count("VmCount"), ==, vms);
	g_dbus_connection_signal_unsubscribe(global.conn, subscription);
}

/* /vmsup/dbus/vm-object/live-stats: the statistics properties follow the samples */

/* what the VM object's PropertiesChanged said of its statistics */
typedef struct {
	const gchar *name;
	gchar *path;
	guint signals;   /* PropertiesChanged carrying a statistic */
	gint64 uptime;   /* last UptimeSeconds seen, -1 before */
	gint64 rss;      /* last RssBytes seen, -1 before */
	gdouble cpu;     /* last CpuPercent seen, -1 before */
	gint64 wanted;   /* stats_watch_uptime_above(): more than this */
	gboolean sample; /* ... asking for a sample while it waits */
} StatsWatch;

static void
stats_watch_cb(GDBusConnection *connection,
	       const gchar *sender,
	       const gchar *object_path,
	       const gchar *interface_name,
	       const gchar *signal_name,
	       GVariant *parameters,
	       gpointer user_data)
{
	StatsWatch *watch = user_data;
	const gchar *iface = NULL;
	g_autoptr(GVariant) changed = NULL;
	guint64 value = 0;
	gdouble cpu = 0;
	gboolean any = FALSE;

	if (g_strcmp0(object_path, watch->path) != 0)
		return;
	g_variant_get(parameters, "(&s@a{sv}as)", &iface, &changed, NULL);
	if (g_strcmp0(iface, VM_IFACE) != 0)
		return;
	if (g_variant_lookup(changed, "UptimeSeconds", "t", &value)) {
		watch->uptime = (gint64)value;
		any = TRUE;
	}
	if (g_variant_lookup(changed, "RssBytes", "t", &value)) {
		watch->rss = (gint64)value;
		any = TRUE;
	}
	if (g_variant_lookup(changed, "CpuPercent", "d", &cpu)) {
		watch->cpu = cpu;
		any = TRUE;
	}
	if (any)
		watch->signals++;
}

/* UptimeSeconds went past watch->wanted, the VM sampled (vm.stats) meanwhile if asked */
static gboolean
stats_watch_uptime_above(gpointer user_data)
{
	StatsWatch *watch = user_data;

	if (watch->sample) {
		g_autoptr(JsonObject) params = json_object_new();
		g_auto(Answer) answer = {NULL};
		json_object_set_string_member(params, "name", watch->name);
		/* answered from the cache for a second: a sample at most that often */
		rpc_call("vm.stats", params, &answer);
		g_assert_nonnull(answer.result);
	}
	return watch->uptime > watch->wanted;
}

/* CpuPercent of a QEMU without a guest may have been 0 all along: it need not change */
static gboolean
stats_watch_zeroed(gpointer user_data)
{
	StatsWatch *watch = user_data;
	return watch->uptime == 0 && watch->rss == 0;
}

static guint64
get_vm_uint64(const gchar *path, const gchar *property)
{
	g_autoptr(GVariant) value = get_vm_property(path, property);
	return g_variant_get_uint64(value);
}

static gdouble
get_vm_double(const gchar *path, const gchar *property)
{
	g_autoptr(GVariant) value = get_vm_property(path, property);
	return g_variant_get_double(value);
}

static void
test_vm_object_live_stats(void)
{
	StatsWatch watch = {.name = "paused-stats", .uptime = -1, .rss = -1, .cpu = -1};
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(JsonObject) started = NULL;
	g_autoptr(JsonObject) stats = NULL;
	g_autoptr(JsonObject) stopped = NULL;
	g_autoptr(JsonObject) deleted = NULL;
	guint signals;
	guint subscription;

	ensure_daemon();
	watch.path = vmsup_dbus_vm_object_path(watch.name);
	subscription = g_dbus_connection_signal_subscribe(global.conn,
							  NULL,
							  "org.freedesktop.DBus.Properties",
							  "PropertiesChanged",
							  watch.path,
							  NULL,
							  G_DBUS_SIGNAL_FLAGS_NONE,
							  stats_watch_cb,
							  &watch,
							  NULL);

	/* defined, not running: all 0 */
	created = rpc_ok("vm.create",
			 "{\"name\": \"paused-stats\", \"memory_mib\": 128, \"wait\": true}");
	g_assert_cmpuint(get_vm_uint64(watch.path, "UptimeSeconds"), ==, 0);
	g_assert_cmpuint(get_vm_uint64(watch.path, "RssBytes"), ==, 0);
	g_assert_cmpfloat(get_vm_double(watch.path, "CpuPercent"), ==, 0);

	/* running, and sampled (this daemon has no poller: each vm.stats samples) */
	started = rpc_ok("vm.start", "{\"name\": \"paused-stats\"}");
	watch.wanted = 0;
	watch.sample = TRUE;
	vmsup_test_wait_until(stats_watch_uptime_above, &watch, WAIT_S);
	g_assert_cmpint(watch.rss, >, 0);
	signals = watch.signals;

	/* the uptime grows from one sample to the next, each sample a signal */
	watch.wanted = watch.uptime;
	vmsup_test_wait_until(stats_watch_uptime_above, &watch, WAIT_S);
	g_assert_cmpuint(watch.signals, >, signals);

	/* what the object says is the last sample, as vm.stats gave it */
	stats = rpc_ok("vm.stats", "{\"name\": \"paused-stats\"}");
	g_assert_cmpuint(get_vm_uint64(watch.path, "RssBytes"),
			 ==,
			 (guint64)vmsup_json_object_get_int(stats, "rss_bytes", -1));
	g_assert_cmpuint(get_vm_uint64(watch.path, "UptimeSeconds"),
			 ==,
			 (guint64)vmsup_json_object_get_double(stats, "uptime_s", -1));
	g_assert_cmpfloat_with_epsilon(get_vm_double(watch.path, "CpuPercent"),
				       vmsup_json_object_get_double(stats, "cpu_percent", -1),
				       1e-9);

	/* reading the properties takes no sample */
	watch.sample = FALSE;
	g_assert_cmpuint(get_vm_uint64(watch.path, "UptimeSeconds"), ==, (guint64)watch.uptime);

	/* stopped: all 0 again, announced */
	stopped = rpc_ok("vm.stop", "{\"name\": \"paused-stats\", \"force\": true}");
	vmsup_test_wait_until(stats_watch_zeroed, &watch, WAIT_S);
	g_assert_cmpuint(get_vm_uint64(watch.path, "UptimeSeconds"), ==, 0);
	g_assert_cmpuint(get_vm_uint64(watch.path, "RssBytes"), ==, 0);
	g_assert_cmpfloat(get_vm_double(watch.path, "CpuPercent"), ==, 0);

	deleted = rpc_ok("vm.delete", "{\"name\": \"paused-stats\"}");
	g_dbus_connection_signal_unsubscribe(global.conn, subscription);
	g_free(watch.path);
}

/* JSON-RPC requests written at once, their answers read after: the daemon has them all together */
static void
rpc_pipeline(const gchar *rpc_name, GPtrArray *params_json)
{
	g_autoptr(GString) lines = g_string_new(NULL);
	g_autoptr(GError) error = NULL;
	GOutputStream *output = g_io_stream_get_output_stream(G_IO_STREAM(global.rpc));
	gint64 first = global.rpc_next_id + 1;
	guint answered = 0;

	for (guint i = 0; i < params_json->len; i++)
		g_string_append_printf(lines,
				       "{\"jsonrpc\": \"2.0\", \"id\": %" G_GINT64_FORMAT
				       ", \"method\": \"%s\", \"params\": %s}\n",
				       ++global.rpc_next_id,
				       rpc_name,
				       (const gchar *)g_ptr_array_index(params_json, i));
	g_assert_true(
	    g_output_stream_write_all(output, lines->str, lines->len, NULL, NULL, &error));
	g_assert_no_error(error);
	while (answered < params_json->len) {
		g_autofree gchar *line =
		    g_data_input_stream_read_line(global.rpc_in, NULL, NULL, &error);
		g_autoptr(JsonObject) reply = NULL;
		gint64 id;

		g_assert_no_error(error);
		g_assert_nonnull(line);
		reply = parse_object(line);
		id = vmsup_json_object_get_int(reply, "id", -1);
		if (id < first || id > global.rpc_next_id)
			continue;
		if (json_object_has_member(reply, "error"))
			g_error("%s failed: %s", rpc_name, line);
		answered++;
	}
}

#define BURST_N 20

/* fewer signals than changes, and at most one a window (the first may open one late) */
static void
assert_coalesced(guint signals, gint64 begin)
{
	gint64 elapsed_ms = (g_get_monotonic_time() - begin) / 1000;

	g_test_message("%u changes: %u PropertiesChanged in %" G_GINT64_FORMAT " ms",
		       BURST_N,
		       signals,
		       elapsed_ms);
	g_assert_cmpuint(signals, >=, 1);
	g_assert_cmpuint(signals, <, BURST_N);
	g_assert_cmpint(signals, <=, elapsed_ms / VMSUP_DBUS_SUPERVISOR_COALESCE_MS + 2);
}

static void
test_supervisor_burst(void)
{
	PropsWatch watch;
	PropsWant want = {&watch, 0, -1};
	g_autoptr(GPtrArray) creates = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) deletes = g_ptr_array_new_with_free_func(g_free);
	guint32 vms;
	guint subscription;
	gint64 begin;

	ensure_daemon();
	for (guint i = 0; i < BURST_N; i++) {
		/* direct kernel boot is only checked for being readable until a VM starts */
		g_ptr_array_add(
		    creates,
		    g_strdup_printf("{\"name\": \"burst%u\", \"kernel\": \"/etc/hostname\", "
				    "\"wait\": true}",
				    i));
		g_ptr_array_add(deletes, g_strdup_printf("{\"name\": \"burst%u\"}", i));
	}
	subscription = props_watch_start(&watch);
	vms = get_supervisor_count("VmCount");

	begin = g_get_monotonic_time();
	rpc_pipeline("vm.create", creates);
	want.vm_count = vms + BURST_N;
	vmsup_test_wait_until(props_watch_has, &want, WAIT_S);
	assert_coalesced(watch.signals, begin);

	watch.signals = 0;
	begin = g_get_monotonic_time();
	rpc_pipeline("vm.delete", deletes);
	want.vm_count = vms;
	vmsup_test_wait_until(props_watch_has, &want, WAIT_S);
	assert_coalesced(watch.signals, begin);
	g_dbus_connection_signal_unsubscribe(global.conn, subscription);
}

/* the program's bus and daemon */

/*
 * QEMU as it is, but a VM named paused-* gets no kernel and -S: a QEMU that
 * answers QMP and runs no guest (the firmware finds nothing to boot should
 * the daemon let the vCPU go), for tests that need a running VM and not
 * its guest. QEMU runs as vmsup-qemu for root's VMs: the script is public.
 */
static gchar *
write_qemu_wrapper(void)
{
	g_autofree gchar *qemu = g_find_program_in_path("qemu-system-x86_64");
	g_autofree gchar *bin = g_build_filename(global.tmpdir, "bin", NULL);
	g_autofree gchar *body = NULL;
	g_autoptr(GError) error = NULL;
	gchar *path = g_build_filename(bin, "qemu-system-x86_64", NULL);

	g_assert_nonnull(qemu);
	g_assert_null(strchr(qemu, '\''));
	body = g_strdup_printf("#!/bin/sh\n"
			       "case \"$*\" in *guest=paused-*) ;; *) exec '%s' \"$@\";; esac\n"
			       "skip=\n"
			       "for a do\n"
			       "\tshift\n"
			       "\t[ -n \"$skip\" ] && { skip=; continue; }\n"
			       "\tcase \"$a\" in -kernel|-initrd|-append) skip=1; continue;; esac\n"
			       "\tset -- \"$@\" \"$a\"\n"
			       "done\n"
			       "exec '%s' \"$@\" -S\n",
			       qemu,
			       qemu);
	g_assert_cmpint(g_chmod(global.tmpdir, 0755), ==, 0);
	g_assert_cmpint(g_mkdir_with_parents(bin, 0755), ==, 0);
	g_assert_true(g_file_set_contents(path, body, -1, &error));
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(path, 0755), ==, 0);
	return path;
}

static void
global_setup(void)
{
	g_autofree gchar *services = g_test_build_filename(G_TEST_BUILT, "services", NULL);
	g_autofree gchar *config_dir = NULL;
	g_autofree gchar *config = NULL;
	g_autofree gchar *config_text = NULL;
	g_autofree gchar *qemu = NULL;
	g_autoptr(GError) error = NULL;

	/*
	 * The activated daemon inherits the bus's environment, which is ours:
	 * point its XDG directories (state, runtime socket) into a private
	 * directory. GLib's isolated test dirs are not in the environment.
	 */
	global.tmpdir = vmsup_test_make_tmpdir();
	vmsup_test_setenv_user_dirs(global.tmpdir);
	g_unsetenv("VMSUP_SOCKET");
	/*
	 * TCG without a probe (the answers do not depend on the accelerator), and
	 * no background sampling between the two calls of a twin
	 */
	config_dir = g_build_filename(global.tmpdir, "config", "vmsup", NULL);
	g_assert_cmpint(g_mkdir_with_parents(config_dir, 0700), ==, 0);
	config = g_build_filename(config_dir, "vmsupd.conf", NULL);
	qemu = write_qemu_wrapper();
	config_text =
	    g_strdup_printf("[vmsupd]\nAccel=tcg\nStatsPollInterval=0\nQemuBinary=%s\n", qemu);
	g_assert_true(g_file_set_contents(config, config_text, -1, &error));
	g_assert_no_error(error);

	global.bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_add_service_dir(global.bus, services);
	g_test_dbus_up(global.bus);
	global.conn = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &error);
	g_assert_no_error(error);
}

/* FALSE when the daemon had to be killed */
static gboolean
global_teardown(void)
{
	gboolean clean = TRUE;
	gint pidfd = -1;

	if (global.daemon_up) {
		g_autoptr(JsonObject) list = rpc_ok("vm.list", "{}");
		JsonArray *vms = json_object_get_array_member(list, "vms");

		/* leave no QEMU behind */
		for (guint i = 0; i < json_array_get_length(vms); i++) {
			JsonObject *vm = json_array_get_object_element(vms, i);
			g_autoptr(JsonObject) params = json_object_new();
			g_auto(Answer) answer = {NULL};
			json_object_set_string_member(params,
						      "name",
						      json_object_get_string_member(vm, "name"));
			json_object_set_boolean_member(params, "force", TRUE);
			rpc_call("vm.delete", params, &answer);
		}
		g_clear_object(&global.rpc_in);
		g_clear_object(&global.rpc);
		pidfd = pidfd_open_compat((pid_t)global.daemon_pid);
	}
	g_clear_object(&global.conn);
	/* a session daemon ends with its bus */
	g_test_dbus_down(global.bus);
	g_clear_object(&global.bus);
	if (pidfd >= 0) {
		struct pollfd pfd = {pidfd, POLLIN, 0};
		if (poll(&pfd, 1, 60 * 1000) != 1) {
			g_printerr("# vmsupd (pid %" G_GINT64_FORMAT
				   ") did not exit with its bus\n",
				   global.daemon_pid);
			kill((pid_t)global.daemon_pid, SIGKILL);
			clean = FALSE;
		}
		close(pidfd);
	}
	vmsup_test_rm_rf(global.tmpdir);
	g_free(global.tmpdir);
	g_free(global.socket_path);
	return clean;
}

int
main(int argc, char **argv)
{
	gint status;

	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	/* map the D-Bus error names back to our domains on this side too */
	(void)vmsup_error_quark();

	g_test_add_func("/vmsup/rpc/table/mirrors-dbus", test_table_mirrors_dbus);
	g_test_add_func("/vmsup/rpc/twin/cases-known", test_twin_cases_known);
	g_test_add_func("/vmsup/dbus/convert", test_convert);
	g_test_add_func("/vmsup/dbus/convert-serialised", test_convert_serialised);
	g_test_add_func("/vmsup/dbus/authorize/session", test_authorize_session);
	g_test_add_func("/vmsup/dbus/authorize/polkit", test_authorize_polkit);
	g_test_add_func("/vmsup/dbus/in-process", test_in_process);
	g_test_add_func("/vmsup/dbus/activation", test_activation);
	g_test_add_func("/vmsup/dbus/errors", test_errors);
	g_test_add_func("/vmsup/dbus/uid-not-an-option", test_uid_not_an_option);
	g_test_add_func("/vmsup/dbus/objects", test_managed_objects);
	g_test_add_func("/vmsup/dbus/vm-object-methods", test_vm_object_methods);
	g_test_add_func("/vmsup/dbus/vm-object-follows-state", test_vm_object_follows_state);
	g_test_add_func("/vmsup/dbus/vm-object/live-stats", test_vm_object_live_stats);
	g_test_add_func("/vmsup/dbus/gdbus-tool", test_gdbus_tool);
	g_test_add_func("/vmsup/dbus/supervisor/properties", test_supervisor_properties);
	g_test_add_func("/vmsup/dbus/supervisor/counts-follow", test_supervisor_counts_follow);
	g_test_add_func("/vmsup/dbus/supervisor/burst", test_supervisor_burst);
	for (const VmsupRpcMethod *m = vmsup_rpc_table_get_methods(); m->rpc_name != NULL; m++) {
		g_autofree gchar *path = g_strdup_printf("/vmsup/rpc/twin/%s", m->rpc_name);
		g_test_add_data_func(path, m, test_twin);
	}
	for (guint i = 0; i < G_N_ELEMENTS(twin_more_cases); i++) {
		g_autofree gchar *path = g_strdup_printf("/vmsup/rpc/twin/%s-%s",
							 twin_more_cases[i].twin.rpc_name,
							 twin_more_cases[i].suffix);
		g_test_add_data_func(path, &twin_more_cases[i].twin, test_twin_more);
	}
	g_test_add_func("/vmsup/rpc/vm-list/fields", test_list_fields);

	global_setup();
	status = g_test_run();
	if (!global_teardown())
		status = 1;
	return status;
}
