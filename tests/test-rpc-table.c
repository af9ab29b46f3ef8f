/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-rpc-call.h"
#include "vmsup-rpc-table.h"

/* DESIGN.md's contract: wire names that outside tests use */
static const struct {
	const gchar *rpc_name;
	const gchar *dbus_name;
} contract[] = {
    {"vm.create", "Create"},
    {"vm.start", "Start"},
    {"vm.stop", "Stop"},
    {"vm.delete", "Delete"},
    {"vm.set", "Set"},
    {"vm.list", "List"},
    {"vm.get", "Get"},
    {"vm.stats", "Stats"},
    {"vm.health", "Health"},
    {"vm.ping", "Ping"},
    {"vm.ports", "Ports"},
    {"vm.exec", "Exec"},
    {"op.get", "GetOperation"},
    {"op.list", "ListOperations"},
    {"op.cancel", "CancelOperation"},
    {"workspace.create", "CreateWorkspace"},
    {"workspace.list", "ListWorkspaces"},
    {"workspace.delete", "DeleteWorkspace"},
    {"workspace.open", "OpenWorkspace"},
    {"daemon.info", "Info"},
};

static const VmsupRpcContext stub_ctx = {
    .vm_service = NULL,
    .stats_service = NULL,
    .workspace_service = NULL,
    .mode = "session",
    .socket_path = "/nonexistent/vmsupd.sock",
    .started_at = 1,
};

/* what a transport sees of one call */
typedef struct {
	guint n_replies;
	JsonNode *result;
	GError *error;
} Reply;

static void
reply_clear(Reply *reply)
{
	g_clear_pointer(&reply->result, json_node_unref);
	g_clear_error(&reply->error);
	reply->n_replies = 0;
}

static void
reply_cb(VmsupRpcCall *call, JsonNode *result, const GError *error, gpointer user_data)
{
	Reply *reply = user_data;
	reply->n_replies++;
	if (result != NULL)
		reply->result = result;
	if (error != NULL)
		reply->error = g_error_copy(error);
}

static JsonObject *
parse_params(const gchar *json)
{
	g_autoptr(GError) error = NULL;
	JsonObject *obj = vmsup_json_parse_object(json, -1, &error);
	g_assert_no_error(error);
	return obj;
}

/* dispatches synchronously-answering calls (the stub context has no services) */
static void
dispatch(const gchar *method, const gchar *params_json, Reply *reply)
{
	const VmsupRpcMethod *m = vmsup_rpc_table_lookup(method);
	g_autoptr(JsonObject) params = parse_params(params_json);
	g_autoptr(VmsupRpcCall) call = NULL;

	g_assert_nonnull(m);
	call = vmsup_rpc_call_new(m, params, 1000, reply_cb, reply, NULL);
	vmsup_rpc_table_dispatch(&stub_ctx, call);
	g_assert_true(vmsup_rpc_call_has_returned(call));
	g_assert_cmpuint(reply->n_replies, ==, 1);
}

static void
assert_invalid_params(const gchar *method, const gchar *params_json, const gchar *field)
{
	const VmsupRpcMethod *m = vmsup_rpc_table_lookup(method);
	g_autoptr(JsonObject) params = parse_params(params_json);
	g_autoptr(GError) error = NULL;
	Reply reply = {0};

	g_assert_false(vmsup_rpc_table_validate(m, params, &error));
	g_assert_error(error, VMSUP_RPC_ERROR, VMSUP_RPC_INVALID_PARAMS);
	if (strstr(error->message, field) == NULL)
		g_error("'%s' not named in: %s", field, error->message);
	/* and through dispatch: the handler never runs (it would say failed-precondition) */
	dispatch(method, params_json, &reply);
	g_assert_error(reply.error, VMSUP_RPC_ERROR, VMSUP_RPC_INVALID_PARAMS);
	reply_clear(&reply);
}

static void
assert_invalid_argument(const gchar *method, const gchar *params_json, const gchar *needle)
{
	const VmsupRpcMethod *m = vmsup_rpc_table_lookup(method);
	g_autoptr(JsonObject) params = parse_params(params_json);
	g_autoptr(GError) error = NULL;

	g_assert_false(vmsup_rpc_table_validate(m, params, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	if (strstr(error->message, needle) == NULL)
		g_error("'%s' not named in: %s", needle, error->message);
}

static void
assert_valid(const gchar *method, const gchar *params_json)
{
	const VmsupRpcMethod *m = vmsup_rpc_table_lookup(method);
	g_autoptr(JsonObject) params = parse_params(params_json);
	g_autoptr(GError) error = NULL;

	g_assert_true(vmsup_rpc_table_validate(m, params, &error));
	g_assert_no_error(error);
}

static void
test_contract(void)
{
	guint n = 0;

	for (guint i = 0; i < G_N_ELEMENTS(contract); i++) {
		const VmsupRpcMethod *m = vmsup_rpc_table_lookup(contract[i].rpc_name);
		g_assert_nonnull(m);
		g_assert_cmpstr(m->dbus_name, ==, contract[i].dbus_name);
		g_assert_true(vmsup_rpc_table_lookup_dbus(contract[i].dbus_name) == m);
		g_assert_nonnull(m->func);
		g_assert_nonnull(m->params);
	}
	for (const VmsupRpcMethod *m = vmsup_rpc_table_get_methods(); m->rpc_name != NULL; m++)
		n++;
	/* nothing outside the contract sneaks into the table */
	g_assert_cmpuint(n, ==, G_N_ELEMENTS(contract));
	g_assert_null(vmsup_rpc_table_lookup("vm.nope"));
	g_assert_null(vmsup_rpc_table_lookup("events.subscribe"));
	g_assert_null(vmsup_rpc_table_lookup(NULL));
	g_assert_null(vmsup_rpc_table_lookup_dbus("Nope"));
}

static void
test_unique(void)
{
	g_autoptr(GHashTable) rpc = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GHashTable) dbus = g_hash_table_new(g_str_hash, g_str_equal);

	for (const VmsupRpcMethod *m = vmsup_rpc_table_get_methods(); m->rpc_name != NULL; m++) {
		g_assert_true(g_hash_table_add(rpc, (gpointer)m->rpc_name));
		g_assert_true(g_hash_table_add(dbus, (gpointer)m->dbus_name));
	}
}

static const VmsupRpcParam *
find_param(const VmsupRpcMethod *m, const gchar *name)
{
	for (const VmsupRpcParam *p = m->params; p->name != NULL; p++) {
		if (g_strcmp0(p->name, name) == 0)
			return p;
	}
	return NULL;
}

/* the flags the D-Bus adapter relies on agree with the schemas */
static void
test_flags(void)
{
	for (const VmsupRpcMethod *m = vmsup_rpc_table_get_methods(); m->rpc_name != NULL; m++) {
		const VmsupRpcParam *name = find_param(m, "name");
		const VmsupRpcParam *id = find_param(m, "id");
		gboolean takes_name =
		    (m->flags & (VMSUP_RPC_FLAG_TAKES_VM_NAME | VMSUP_RPC_FLAG_TAKES_NAME)) != 0;

		g_test_message("%s", m->rpc_name);
		g_assert_true((name != NULL && name->required) == takes_name);
		if (name != NULL)
			g_assert_cmpint(name->type, ==, VMSUP_RPC_TYPE_STRING);
		g_assert_true((id != NULL && id->required) ==
			      ((m->flags & VMSUP_RPC_FLAG_TAKES_ID) != 0));
		if (id != NULL)
			g_assert_cmpint(id->type, ==, VMSUP_RPC_TYPE_INT);
		g_assert_true((m->list_member != NULL) ==
			      ((m->flags & VMSUP_RPC_FLAG_RETURNS_LIST) != 0));
		if (g_str_has_prefix(m->rpc_name, "vm.") && g_strcmp0(m->rpc_name, "vm.list") != 0)
			g_assert_true(m->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME);
		if (g_str_has_prefix(m->rpc_name, "workspace.") &&
		    g_strcmp0(m->rpc_name, "workspace.list") != 0)
			g_assert_true(m->flags & VMSUP_RPC_FLAG_TAKES_NAME);
	}
	g_assert_true(vmsup_rpc_table_lookup("vm.get")->flags & VMSUP_RPC_FLAG_READ_ONLY);
	g_assert_false(vmsup_rpc_table_lookup("vm.stop")->flags & VMSUP_RPC_FLAG_READ_ONLY);
	g_assert_false(vmsup_rpc_table_lookup("vm.exec")->flags & VMSUP_RPC_FLAG_READ_ONLY);
	g_assert_cmpstr(vmsup_rpc_table_lookup("vm.list")->list_member, ==, "vms");
	g_assert_cmpstr(vmsup_rpc_table_lookup("op.list")->list_member, ==, "operations");
	g_assert_cmpstr(vmsup_rpc_table_lookup("workspace.list")->list_member, ==, "workspaces");
}

static void
test_schema_wrong_types(void)
{
	assert_invalid_params("vm.get", "{\"name\": 5}", "'name'");
	assert_invalid_params("vm.create", "{\"name\": \"a\", \"cpus\": \"two\"}", "'cpus'");
	assert_invalid_params("vm.create", "{\"name\": \"a\", \"cpus\": 1.5}", "'cpus'");
	assert_invalid_params("vm.create", "{\"name\": \"a\", \"start\": \"yes\"}", "'start'");
	assert_invalid_params("vm.create", "{\"name\": \"a\", \"forward\": 80}", "'forward'");
	assert_invalid_params("vm.create", "{\"name\": \"a\", \"forward\": [\"80\"]}", "'forward'");
	assert_invalid_params("vm.exec", "{\"name\": \"a\", \"argv\": \"ls -l\"}", "'argv'");
	assert_invalid_params("vm.exec", "{\"name\": \"a\", \"argv\": [\"ls\", 1]}", "'argv'");
	assert_invalid_params("vm.stop", "{\"name\": \"a\", \"force\": 1}", "'force'");
	assert_invalid_params("op.get", "{\"id\": \"7\"}", "'id'");
	assert_invalid_params("vm.get", "{\"name\": [\"a\"]}", "'name'");
	assert_invalid_params("vm.get", "{\"name\": {\"a\": 1}}", "'name'");
}

static void
test_schema_unknown_and_missing(void)
{
	assert_invalid_params("vm.get", "{\"name\": \"a\", \"nmae\": \"b\"}", "'nmae'");
	assert_invalid_params("vm.list", "{\"all\": true}", "'all'");
	/* what only creation decides cannot be set later */
	assert_invalid_params("vm.set", "{\"name\": \"a\", \"kernel\": \"/k\"}", "'kernel'");
	assert_invalid_params("daemon.info", "{\"x\": null}", "'x'");
	assert_invalid_params("vm.get", "{}", "'name'");
	assert_invalid_params("vm.get", "{\"name\": null}", "'name'");
	assert_invalid_params("vm.exec", "{\"name\": \"a\"}", "'argv'");
	assert_invalid_params("op.cancel", "{}", "'id'");
	assert_invalid_params("workspace.create", "{\"name\": \"w\"}", "'path'");
}

static void
test_schema_values(void)
{
	assert_invalid_argument("vm.get", "{\"name\": \"../etc\"}", "../etc");
	assert_invalid_argument("vm.get", "{\"name\": \"\"}", "VM");
	assert_invalid_argument("vm.start", "{\"name\": \"UPPER\"}", "UPPER");
	assert_invalid_argument("workspace.open", "{\"name\": \"a b\"}", "workspace");
	assert_invalid_argument("vm.create", "{\"name\": \"a\", \"cpus\": 0}", "'cpus'");
	assert_invalid_argument("vm.create",
				"{\"name\": \"a\", \"memory_mib\": -1}",
				"'memory_mib'");
	assert_invalid_argument("vm.create",
				"{\"name\": \"a\", \"forward\": [80, 70000]}",
				"70000");
	assert_invalid_argument("op.get", "{\"id\": 0}", "'id'");
	assert_invalid_argument("vm.stop",
				"{\"name\": \"a\", \"timeout_s\": 999999}",
				"'timeout_s'");
}

static void
test_schema_accepts(void)
{
	assert_valid("vm.create",
		     "{\"name\": \"web1\", \"cpus\": 2, \"memory_mib\": 512, \"kernel\": \"/k\", "
		     "\"initrd\": \"/i\", \"cmdline\": \"console=ttyS0\", \"image\": null, "
		     "\"disk_gib\": 4, \"forward\": [80, 443], \"auto_stop\": false, "
		     "\"autostart\": true, \"start\": true, \"wait\": false}");
	assert_valid("vm.create", "{\"name\": \"a\"}");
	assert_valid("vm.set", "{\"name\": \"a\", \"cpus\": 4, \"auto_stop\": true}");
	assert_valid("vm.stop", "{\"name\": \"a\", \"force\": true, \"timeout_s\": 0}");
	assert_valid("vm.exec", "{\"name\": \"a\", \"argv\": [\"ls\", \"-l\"], \"stdin\": \"x\"}");
	assert_valid("vm.exec", "{\"name\": \"a\", \"argv\": []}");
	assert_valid("vm.list", "{}");
	assert_valid("op.get", "{\"id\": 9007199254740993}");
	assert_valid("workspace.create", "{\"name\": \"w\", \"path\": \"/srv\", \"vm\": \"dev\"}");
}

static void
test_dispatch_without_services(void)
{
	const gchar *cases[][2] = {
	    {"vm.get", "{\"name\": \"a\"}"},
	    {"vm.list", "{}"},
	    {"vm.create", "{\"name\": \"a\"}"},
	    {"op.list", "{}"},
	    {"vm.stats", "{\"name\": \"a\"}"},
	    {"vm.exec", "{\"name\": \"a\", \"argv\": [\"true\"]}"},
	    {"workspace.list", "{}"},
	    {"workspace.create", "{\"name\": \"w\", \"path\": \"/srv\"}"},
	};
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		Reply reply = {0};
		dispatch(cases[i][0], cases[i][1], &reply);
		g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
		g_assert_nonnull(strstr(reply.error->message, "not available"));
		reply_clear(&reply);
	}
}

static void
test_dispatch_argument_checks(void)
{
	Reply reply = {0};

	/* an empty argv and a bad VM name of a workspace are refused before any service */
	dispatch("vm.exec", "{\"name\": \"a\", \"argv\": []}", &reply);
	g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(reply.error->message, "argv"));
	reply_clear(&reply);
	dispatch("workspace.create",
		 "{\"name\": \"w\", \"path\": \"/srv\", \"vm\": \"B/AD\"}",
		 &reply);
	g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	reply_clear(&reply);
}

static void
test_daemon_info(void)
{
	Reply reply = {0};
	JsonObject *info;
	JsonArray *methods;

	dispatch("daemon.info", "{}", &reply);
	g_assert_no_error(reply.error);
	g_assert_nonnull(reply.result);
	info = json_node_get_object(reply.result);
	g_assert_cmpstr(vmsup_json_object_get_string(info, "version", NULL), ==, PACKAGE_VERSION);
	g_assert_cmpstr(vmsup_json_object_get_string(info, "mode", NULL), ==, "session");
	g_assert_cmpstr(vmsup_json_object_get_string(info, "socket", NULL),
			==,
			"/nonexistent/vmsupd.sock");
	g_assert_cmpint(vmsup_json_object_get_int(info, "pid", 0), ==, getpid());
	g_assert_false(vmsup_json_object_get_bool(info, "vm_service", TRUE));
	methods = json_object_get_array_member(info, "methods");
	g_assert_cmpuint(json_array_get_length(methods), ==, G_N_ELEMENTS(contract));
	reply_clear(&reply);
}

static void
test_call_converts_errors(void)
{
	Reply reply = {0};
	g_autoptr(VmsupRpcCall) call =
	    vmsup_rpc_call_new(vmsup_rpc_table_lookup("vm.get"), NULL, 0, reply_cb, &reply, NULL);
	g_autoptr(GError) io = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "gone");

	/* absent params read as an empty object */
	g_assert_cmpuint(json_object_get_size(vmsup_rpc_call_get_params(call)), ==, 0);
	g_assert_cmpuint(vmsup_rpc_call_get_uid(call), ==, 0);
	g_assert_false(vmsup_rpc_call_has_returned(call));
	vmsup_rpc_call_return_error(call, io);
	g_assert_true(vmsup_rpc_call_has_returned(call));
	g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_assert_cmpstr(reply.error->message, ==, "gone");
	/* the caller's error is left as it was */
	g_assert_error(io, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	reply_clear(&reply);
}

static void
set_flag(gpointer data)
{
	*(gboolean *)data = TRUE;
}

static void
flag_reply_cb(VmsupRpcCall *call, JsonNode *result, const GError *error, gpointer user_data)
{
	g_assert_nonnull(result);
	g_assert_null(error);
	g_assert_false(*(gboolean *)user_data);
	json_node_unref(result);
}

static void
test_call_lifecycle(void)
{
	gboolean freed = FALSE;
	VmsupRpcCall *call = vmsup_rpc_call_new(vmsup_rpc_table_lookup("daemon.info"),
						NULL,
						0,
						flag_reply_cb,
						&freed,
						set_flag);
	vmsup_rpc_call_ref(call);
	vmsup_rpc_call_return_object(call, json_object_new());
	g_assert_true(freed);
	vmsup_rpc_call_unref(call);
	vmsup_rpc_call_unref(call);
}

static void
test_call_answer_twice(void)
{
	if (g_test_subprocess()) {
		Reply reply = {0};
		g_autoptr(VmsupRpcCall) call = vmsup_rpc_call_new(vmsup_rpc_table_lookup("vm.get"),
								  NULL,
								  0,
								  reply_cb,
								  &reply,
								  NULL);
		vmsup_rpc_call_return_object(call, json_object_new());
		vmsup_rpc_call_return_object(call, json_object_new());
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_failed();
	g_test_trap_assert_stderr("*answered twice*");
}

static void
test_error_kinds(void)
{
	g_autoptr(GError) params =
	    g_error_new_literal(VMSUP_RPC_ERROR, VMSUP_RPC_INVALID_PARAMS, "x");
	g_autoptr(GError) busy = g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_BUSY, "x");
	g_autoptr(GError) foreign = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_FAILED, "x");
	g_autofree gchar *dbus_name = NULL;

	g_assert_cmpint(vmsup_rpc_error_get_code(params), ==, -32602);
	g_assert_cmpstr(vmsup_rpc_error_get_kind(params), ==, "invalid-params");
	g_assert_cmpint(vmsup_rpc_error_get_code(busy), ==, 4);
	g_assert_cmpstr(vmsup_rpc_error_get_kind(busy), ==, "busy");
	g_assert_cmpint(vmsup_rpc_error_get_code(foreign), ==, 8);
	g_assert_cmpstr(vmsup_rpc_error_get_kind(foreign), ==, "internal");
	g_assert_cmpstr(vmsup_rpc_error_to_kind(-32700), ==, "parse-error");
	g_assert_cmpstr(vmsup_rpc_error_to_kind(-32600), ==, "invalid-request");
	g_assert_cmpstr(vmsup_rpc_error_to_kind(-32601), ==, "method-not-found");
	dbus_name = g_dbus_error_encode_gerror(params);
	g_assert_cmpstr(dbus_name, ==, "io.github.vmsup.Error.InvalidParams");
}

static void
count_success_cb(VmsupRpcCall *call, gpointer user_data)
{
	guint *n = user_data;
	(*n)++;
}

/* activity for the stale sweep is recorded through this hook: only answers that succeeded count */
static void
test_call_on_success(void)
{
	const VmsupRpcMethod *m = vmsup_rpc_table_lookup("vm.start");
	g_autoptr(JsonObject) params = parse_params("{\"name\":\"web1\"}");
	g_autoptr(GError) error = g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND, "no");
	guint n_success = 0;
	Reply ok = {0};
	Reply failed = {0};
	VmsupRpcCall *call;

	call = vmsup_rpc_call_new(m, params, 0, reply_cb, &ok, NULL);
	vmsup_rpc_call_set_on_success(call, count_success_cb, &n_success, NULL);
	vmsup_rpc_call_return_object(call, json_object_new());
	vmsup_rpc_call_unref(call);
	g_assert_cmpuint(n_success, ==, 1);
	g_assert_cmpuint(ok.n_replies, ==, 1);

	call = vmsup_rpc_call_new(m, params, 0, reply_cb, &failed, NULL);
	vmsup_rpc_call_set_on_success(call, count_success_cb, &n_success, NULL);
	vmsup_rpc_call_return_error(call, error);
	vmsup_rpc_call_unref(call);
	g_assert_cmpuint(n_success, ==, 1);
	g_assert_cmpuint(failed.n_replies, ==, 1);
	g_assert_error(failed.error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	reply_clear(&ok);
	reply_clear(&failed);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	g_test_add_func("/vmsup/rpc/table/contract", test_contract);
	g_test_add_func("/vmsup/rpc/table/unique", test_unique);
	g_test_add_func("/vmsup/rpc/table/flags", test_flags);
	g_test_add_func("/vmsup/rpc/table/schema/wrong-types", test_schema_wrong_types);
	g_test_add_func("/vmsup/rpc/table/schema/unknown-and-missing",
			test_schema_unknown_and_missing);
	g_test_add_func("/vmsup/rpc/table/schema/values", test_schema_values);
	g_test_add_func("/vmsup/rpc/table/schema/accepts", test_schema_accepts);
	g_test_add_func("/vmsup/rpc/table/dispatch/no-services", test_dispatch_without_services);
	g_test_add_func("/vmsup/rpc/table/dispatch/argument-checks", test_dispatch_argument_checks);
	g_test_add_func("/vmsup/rpc/table/daemon-info", test_daemon_info);
	g_test_add_func("/vmsup/rpc/call/converts-errors", test_call_converts_errors);
	g_test_add_func("/vmsup/rpc/call/lifecycle", test_call_lifecycle);
	g_test_add_func("/vmsup/rpc/call/answer-twice", test_call_answer_twice);
	g_test_add_func("/vmsup/rpc/call/on-success", test_call_on_success);
	g_test_add_func("/vmsup/rpc/error/kinds", test_error_kinds);
	return g_test_run();
}
