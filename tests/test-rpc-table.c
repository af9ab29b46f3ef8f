/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "vmsup-daemon.h"
#include "vmsup-dbus-variant.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-rpc-call.h"
#include "vmsup-rpc-table.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-service-workspace-hooks.h"
#include "vmsup-vm-store.h"

/* DESIGN.md's contract: wire names that outside tests use */
static const struct {
	const gchar *rpc_name;
	const gchar *dbus_name;
} contract[] = {
    {"vm.create", "Create"},
    {"vm.start", "Start"},
    {"vm.stop", "Stop"},
    {"vm.pause", "Pause"},
    {"vm.resume", "Resume"},
    {"vm.delete", "Delete"},
    {"vm.set", "Set"},
    {"vm.clone", "Clone"},
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
    {"image.import", "ImportImage"},
    {"image.list", "ListImages"},
    {"image.delete", "DeleteImage"},
    {"daemon.info", "Info"},
    /* cloud-init and vmsup shell */
    {"vm.ssh_info", "GetSshInfo"},
    {"image.build", "BuildImage"},
    /* descriptors by SCM_RIGHTS / D-Bus `h` */
    {"vm.console", "OpenConsole"},
    /* snapshots */
    {"snapshot.create", "CreateSnapshot"},
    {"snapshot.list", "ListSnapshots"},
    {"snapshot.restore", "RestoreSnapshot"},
    {"snapshot.delete", "DeleteSnapshot"},
};

/* its policy, which knows of no owner, is made in main() */
static VmsupRpcContext stub_ctx = {
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

	VmsupCaller caller = vmsup_caller_for_uid(1000);

	g_assert_nonnull(m);
	call = vmsup_rpc_call_new(m, params, &caller, reply_cb, reply, NULL);
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
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS);
	if (strstr(error->message, field) == NULL)
		g_error("'%s' not named in: %s", field, error->message);
	/* and through dispatch: the handler never runs (it would say failed-precondition) */
	dispatch(method, params_json, &reply);
	g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS);
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
	/* the events methods are table entries too, without a D-Bus twin */
	for (guint i = 0; i < 2; i++) {
		const gchar *name = i == 0 ? "events.subscribe" : "events.unsubscribe";
		const VmsupRpcMethod *m = vmsup_rpc_table_lookup(name);
		g_assert_nonnull(m);
		g_assert_cmpstr(m->rpc_name, ==, name);
		g_assert_null(m->dbus_name);
		g_assert_nonnull(m->func);
		g_assert_nonnull(m->params);
	}
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
		    (m->flags & (VMSUP_RPC_FLAG_TAKES_VM_NAME | VMSUP_RPC_FLAG_TAKES_NAME |
				 VMSUP_RPC_FLAG_TAKES_IMAGE_NAME)) != 0;

		g_test_message("%s", m->rpc_name);
		g_assert_true((name != NULL && name->required) == takes_name);
		/* a name the schema itself refuses when hostile */
		if (name != NULL)
			g_assert_cmpint(name->type,
					==,
					(m->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME)
					    ? VMSUP_RPC_TYPE_VM_NAME
					: g_str_has_prefix(m->rpc_name, "image.")
					    ? VMSUP_RPC_TYPE_IMAGE_NAME
					    : VMSUP_RPC_TYPE_WORKSPACE_NAME);
		g_assert_true((id != NULL && id->required) ==
			      ((m->flags & VMSUP_RPC_FLAG_TAKES_ID) != 0));
		if (id != NULL)
			g_assert_cmpint(id->type, ==, VMSUP_RPC_TYPE_INT);
		g_assert_true((m->list_member != NULL) ==
			      ((m->flags & VMSUP_RPC_FLAG_RETURNS_LIST) != 0));
		if (g_str_has_prefix(m->rpc_name, "vm.") && g_strcmp0(m->rpc_name, "vm.list") != 0)
			g_assert_true(m->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME);
		if (g_str_has_prefix(m->rpc_name, "image.") &&
		    g_strcmp0(m->rpc_name, "image.list") != 0 &&
		    g_strcmp0(m->rpc_name, "image.import") != 0)
			g_assert_true(m->flags & VMSUP_RPC_FLAG_TAKES_IMAGE_NAME);
		if (g_str_has_prefix(m->rpc_name, "workspace.") &&
		    g_strcmp0(m->rpc_name, "workspace.list") != 0)
			g_assert_true(m->flags & VMSUP_RPC_FLAG_TAKES_NAME);
	}
	g_assert_true(vmsup_rpc_table_lookup("vm.get")->flags & VMSUP_RPC_FLAG_READ_ONLY);
	g_assert_false(vmsup_rpc_table_lookup("vm.stop")->flags & VMSUP_RPC_FLAG_READ_ONLY);
	g_assert_false(vmsup_rpc_table_lookup("vm.exec")->flags & VMSUP_RPC_FLAG_READ_ONLY);
	g_assert_true(vmsup_rpc_table_lookup("vm.console")->flags & VMSUP_RPC_FLAG_RETURNS_FD);
	g_assert_false(vmsup_rpc_table_lookup("vm.console")->flags & VMSUP_RPC_FLAG_READ_ONLY);
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
	assert_invalid_params("vm.list", "{\"fields\": \"name\"}", "'fields'");
	assert_invalid_params("vm.list", "{\"fields\": {\"name\": true}}", "'fields'");
	assert_invalid_params("vm.list", "{\"fields\": [\"name\", 3]}", "'fields'");
	assert_invalid_params("vm.list", "{\"fields\": [[\"name\"]]}", "'fields'");
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
	/* vm.ssh_info names a VM, whose owner rule the table applies */
	g_assert_true(vmsup_rpc_table_lookup("vm.ssh_info")->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME);
	assert_invalid_params("vm.ssh_info", "{}", "'name'");
	assert_invalid_params("vm.ssh_info", "{\"name\": \"a\", \"port\": 22}", "'port'");
	/* snapshot names follow the VM name rules */
	assert_invalid_params("snapshot.create", "{\"name\": \"a\"}", "'snapshot'");
	assert_invalid_argument("snapshot.create",
				"{\"name\": \"a\", \"snapshot\": \"Bad/Name\"}",
				"snapshot name");
	assert_invalid_argument("snapshot.restore",
				"{\"name\": \"a\", \"snapshot\": \"-x\"}",
				"snapshot name");
	assert_invalid_params("vm.start", "{\"name\": \"a\", \"snapshot\": 1}", "'snapshot'");
	assert_invalid_params("vm.create", "{\"name\": \"a\", \"ssh_keys\": \"k\"}", "'ssh_keys'");
	assert_invalid_params("vm.create", "{\"name\": \"a\", \"user_data\": 3}", "'user_data'");
	assert_invalid_params("vm.get", "{\"name\": null}", "'name'");
	assert_invalid_params("vm.exec", "{\"name\": \"a\"}", "'argv'");
	assert_invalid_params("op.cancel", "{}", "'id'");
	assert_invalid_params("workspace.create", "{\"name\": \"w\"}", "'path'");
	/* vm.list's fields are members of a vm.get result; the answer says which there are */
	assert_invalid_params("vm.list", "{\"fields\": [\"name\", \"nmae\"]}", "'nmae'");
	assert_invalid_params("vm.list", "{\"fields\": [\"name\", \"nmae\"]}", "memory_mib");
	assert_invalid_params("vm.list", "{\"fields\": [\"\"]}", "''");
	assert_invalid_params("vm.list", "{\"fields\": [\"Name\"]}", "'Name'");
	assert_invalid_params("vm.list", "{\"fields\": [\"vms\"]}", "'vms'");
}

/* hostile names end in the table, with the messages the services gave before */
static void
test_schema_names(void)
{
	g_autofree gchar *long_name = g_strnfill(4096, 'a');
	g_autofree gchar *long_json = g_strdup_printf("{\"name\": \"%s\"}", long_name);

	assert_invalid_argument("vm.create", "{\"name\": \"../x\"}", "../x");
	assert_invalid_argument("vm.create", "{\"name\": \"a,b\"}", "a,b");
	assert_invalid_argument("vm.start", "{\"name\": \"../keep\"}", "../keep");
	assert_invalid_argument("vm.get", "{\"name\": \"a/b\"}", "a/b");
	assert_invalid_argument("vm.create", long_json, "4096 characters");
	assert_invalid_argument("workspace.create",
				"{\"name\": \"w\", \"path\": \"/srv\", \"vm\": \"../x\"}",
				"../x");
	assert_invalid_params("vm.create", "{\"name\": 5}", "'name'");
	assert_invalid_params("vm.create", "{}", "'name'");
	assert_invalid_params("vm.start", "{\"name\": [\"keep\"]}", "'name'");
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
	assert_valid("vm.list", "{\"fields\": null}");
	assert_valid("vm.list", "{\"fields\": []}");
	assert_valid("vm.list", "{\"fields\": [\"name\", \"pid\", \"idle_s\", \"name\"]}");
	assert_valid("op.get", "{\"id\": 9007199254740993}");
	assert_valid("workspace.create", "{\"name\": \"w\", \"path\": \"/srv\", \"vm\": \"dev\"}");
}

/* the members vm.list's fields take: each once, and every one a name a client can send */
static void
test_vm_members(void)
{
	const VmsupVmMember *members = vmsup_vm_service_get_members();
	const gchar *const *names = vmsup_vm_service_get_member_names();
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	guint n = 0;
	guint n_source[3] = {0};

	for (; members[n].name != NULL; n++) {
		g_assert_true(g_hash_table_add(seen, (gpointer)members[n].name));
		g_assert_cmpstr(names[n], ==, members[n].name);
		g_assert_true(g_regex_match_simple("^[a-z][a-z_]*$", members[n].name, 0, 0));
		g_assert_cmpuint(members[n].source, <, G_N_ELEMENTS(n_source));
		n_source[members[n].source]++;
	}
	g_assert_null(names[n]);
	/* the contract's own: DESIGN.md's vm.get */
	for (guint i = 0; i < 8; i++) {
		const gchar *const contract_members[] =
		    {"name", "state", "cpus", "memory_mib", "pid", "accel", "auto_stop", "created"};
		g_assert_true(g_hash_table_contains(seen, contract_members[i]));
	}
	g_assert_cmpuint(n_source[VMSUP_VM_MEMBER_DEFINITION], >, 0);
	g_assert_cmpuint(n_source[VMSUP_VM_MEMBER_RUNTIME], >, 0);
	g_assert_cmpuint(n_source[VMSUP_VM_MEMBER_ACTIVITY], >, 0);
}

/*
 * The members the code that builds a vm.get result writes, read from its
 * source: members only some VMs have at some times (exit_signal after a
 * crash, idle_reason after a while) are never missing from the list, and no
 * name in it is left over from a member that is gone.
 */
static void
test_vm_members_in_source(void)
{
	/* a builder is the functions that together write one source's members */
	static const gchar *const definition_functions[] = {"vmsup_vm_def_to_json", NULL};
	static const gchar *const runtime_functions[] = {"vmsup_vm_describe",
							 "vmsup_vm_describe_run",
							 "vmsup_vm_describe_forwards",
							 "vmsup_vm_describe_end",
							 NULL};
	static const gchar *const activity_functions[] = {"vmsup_stats_service_describe_activity",
							  NULL};
	const struct {
		const gchar *file;
		const gchar *const *functions;
		VmsupVmMemberSource source;
	} builders[] = {
	    {"src/services/shared/vmsup-vm-def.c",
	     definition_functions,
	     VMSUP_VM_MEMBER_DEFINITION},
	    {"src/services/vm/vmsup-vm.c", runtime_functions, VMSUP_VM_MEMBER_RUNTIME},
	    {"src/services/stats/vmsup-stats-service.c",
	     activity_functions,
	     VMSUP_VM_MEMBER_ACTIVITY},
	};
	g_autoptr(GRegex) setter =
	    g_regex_new("json_object_set_[a-z]+_member\\(\\s*obj,\\s*\"([a-z_]+)\"", 0, 0, NULL);
	g_autofree gchar *root = g_test_build_filename(G_TEST_DIST, "..", NULL);

	for (guint b = 0; b < G_N_ELEMENTS(builders); b++) {
		g_autofree gchar *path = g_build_filename(root, builders[b].file, NULL);
		g_autofree gchar *contents = NULL;
		g_autoptr(GMatchInfo) match = NULL;
		g_autoptr(GHashTable) written =
		    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		g_autoptr(GString) body = g_string_new(NULL);

		g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
		for (guint f = 0; builders[b].functions[f] != NULL; f++) {
			g_autofree gchar *head = g_strdup_printf("\n%s(", builders[b].functions[f]);
			const gchar *start = strstr(contents, head);
			const gchar *end;

			if (start == NULL)
				g_error("%s is not in %s: update this test",
					builders[b].functions[f],
					path);
			end = strstr(start, "\n}\n");
			g_assert_nonnull(end);
			g_string_append_len(body, start, end - start);
		}
		g_regex_match(setter, body->str, 0, &match);
		while (g_match_info_matches(match)) {
			gchar *member = g_match_info_fetch(match, 1);
			const VmsupVmMember *m = vmsup_vm_service_get_members();

			while (m->name != NULL && g_strcmp0(m->name, member) != 0)
				m++;
			if (m->name == NULL || m->source != builders[b].source)
				g_error("%s writes '%s', which vm.list's member list (%s) lacks "
					"or has from elsewhere",
					builders[b].functions[0],
					member,
					"vmsup_vm_members in src/services/vm/vmsup-vm-service.c");
			g_hash_table_add(written, member);
			g_match_info_next(match, NULL);
		}
		/* the other way round: nothing listed that the builder does not write */
		for (const VmsupVmMember *m = vmsup_vm_service_get_members(); m->name != NULL;
		     m++) {
			if (m->source == builders[b].source &&
			    !g_hash_table_contains(written, m->name))
				g_error("'%s' is listed but %s does not write it",
					m->name,
					builders[b].functions[0]);
		}
	}
}

/* the D-Bus reference of List() names every member its fields take */
static void
test_vm_members_documented(void)
{
	g_autofree gchar *path = g_test_build_filename(G_TEST_DIST,
						       "..",
						       "data",
						       "io.github.vmsup.Supervisor1.xml",
						       NULL);
	g_autofree gchar *contents = NULL;
	g_autofree gchar *doc = NULL;
	const gchar *start;
	const gchar *end;

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	start = strstr(contents, "        List:\n");
	g_assert_nonnull(start);
	end = strstr(start, "<method name=\"List\">");
	g_assert_nonnull(end);
	doc = g_strndup(start, end - start);
	for (const VmsupVmMember *m = vmsup_vm_service_get_members(); m->name != NULL; m++) {
		g_autofree gchar *quoted = g_strdup_printf("``%s``", m->name);
		if (strstr(doc, quoted) == NULL)
			g_error("List() in %s does not name the member %s", path, quoted);
	}
}

static void
test_dispatch_without_services(void)
{
	const gchar *cases[][2] = {
	    {"vm.get", "{\"name\": \"a\"}"},
	    {"vm.list", "{}"},
	    {"vm.list", "{\"fields\": [\"name\"]}"},
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
	VmsupCaller root = vmsup_caller_for_uid(0);
	g_autoptr(VmsupRpcCall) call = vmsup_rpc_call_new(vmsup_rpc_table_lookup("vm.get"),
							  NULL,
							  &root,
							  reply_cb,
							  &reply,
							  NULL);
	g_autoptr(GError) io = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "gone");

	/* absent params read as an empty object */
	g_assert_cmpuint(json_object_get_size(vmsup_rpc_call_get_params(call)), ==, 0);
	g_assert_cmpuint(vmsup_rpc_call_get_caller(call)->uid, ==, 0);
	g_assert_false(vmsup_rpc_call_get_caller(call)->restricted);
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
						vmsup_caller_daemon(),
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
								  vmsup_caller_daemon(),
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
	    g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS, "x");
	g_autoptr(GError) busy = g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_BUSY, "x");
	g_autoptr(GError) foreign = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_FAILED, "x");
	g_autofree gchar *dbus_name = NULL;

	g_assert_cmpint(vmsup_error_get_code(params), ==, -32602);
	g_assert_cmpstr(vmsup_error_get_kind(params), ==, "invalid-params");
	g_assert_cmpint(vmsup_error_get_code(busy), ==, 4);
	g_assert_cmpstr(vmsup_error_get_kind(busy), ==, "busy");
	g_assert_cmpint(vmsup_error_get_code(foreign), ==, 8);
	g_assert_cmpstr(vmsup_error_get_kind(foreign), ==, "internal");
	g_assert_cmpstr(vmsup_error_to_kind(-32700), ==, "parse-error");
	g_assert_cmpstr(vmsup_error_to_kind(-32600), ==, "invalid-request");
	g_assert_cmpstr(vmsup_error_to_kind(-32601), ==, "method-not-found");
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

	call = vmsup_rpc_call_new(m, params, vmsup_caller_daemon(), reply_cb, &ok, NULL);
	vmsup_rpc_call_set_on_success(call, count_success_cb, &n_success, NULL);
	vmsup_rpc_call_return_object(call, json_object_new());
	vmsup_rpc_call_unref(call);
	g_assert_cmpuint(n_success, ==, 1);
	g_assert_cmpuint(ok.n_replies, ==, 1);

	call = vmsup_rpc_call_new(m, params, vmsup_caller_daemon(), reply_cb, &failed, NULL);
	vmsup_rpc_call_set_on_success(call, count_success_cb, &n_success, NULL);
	vmsup_rpc_call_return_error(call, error);
	vmsup_rpc_call_unref(call);
	g_assert_cmpuint(n_success, ==, 1);
	g_assert_cmpuint(failed.n_replies, ==, 1);
	g_assert_error(failed.error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	reply_clear(&ok);
	reply_clear(&failed);
}

/* --- the owner rule at the dispatch layer ----------------------------------- */

#define OWNER_A 1000
#define OWNER_B 1001

static void
owner_save_def(VmsupVmStore *store, const gchar *name, guint32 owner)
{
	g_autoptr(VmsupVmDef) def = vmsup_vm_def_new(name);
	g_autoptr(GError) error = NULL;

	def->kernel = g_strdup("/nonexistent/kernel");
	def->owner_uid = owner;
	g_assert_true(vmsup_vm_store_save(store, def, &error));
	g_assert_no_error(error);
}

/* dispatches as @uid and waits for the one answer */
static void
owner_dispatch(const VmsupRpcContext *ctx,
	       const gchar *method,
	       const gchar *params_json,
	       guint32 uid,
	       Reply *reply)
{
	const VmsupRpcMethod *m = vmsup_rpc_table_lookup(method);
	g_autoptr(JsonObject) params = parse_params(params_json);
	g_autoptr(VmsupRpcCall) call = NULL;

	VmsupCaller caller = vmsup_caller_for_uid(uid);

	g_assert_nonnull(m);
	reply_clear(reply);
	call = vmsup_rpc_call_new(m, params, &caller, reply_cb, reply, NULL);
	vmsup_rpc_table_dispatch(ctx, call);
	while (reply->n_replies == 0)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(reply->n_replies, ==, 1);
}

static void
owner_assert_refused(const VmsupRpcContext *ctx,
		     const gchar *method,
		     const gchar *params_json,
		     guint32 uid,
		     const gchar *message)
{
	Reply reply = {0};

	owner_dispatch(ctx, method, params_json, uid, &reply);
	g_test_message("%s %s as %u: %s",
		       method,
		       params_json,
		       uid,
		       reply.error != NULL ? reply.error->message : "accepted");
	g_assert_null(reply.result);
	g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_cmpstr(reply.error->message, ==, message);
	reply_clear(&reply);
}

/* the names in a list answer, in order */
static gchar *
owner_list_names(const VmsupRpcContext *ctx, const gchar *method, const gchar *member, guint32 uid)
{
	Reply reply = {0};
	g_autoptr(GString) names = g_string_new(NULL);
	JsonArray *array;

	owner_dispatch(ctx, method, "{}", uid, &reply);
	g_assert_no_error(reply.error);
	array = json_object_get_array_member(json_node_get_object(reply.result), member);
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonObject *entry = json_array_get_object_element(array, i);
		g_string_append_printf(names,
				       "%s%s",
				       i > 0 ? " " : "",
				       json_object_get_string_member(entry, "name"));
	}
	reply_clear(&reply);
	return g_string_free(g_steal_pointer(&names), FALSE);
}

/*
 * A caller other than root and the daemon's own user uses only its own VMs
 * and workspaces, and lists only those; root uses all; a definition without
 * an owner is root's. Checked once, in dispatch, for every method whose
 * flags say it names one.
 */
static void
test_dispatch_owner(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *state = g_build_filename(dir, "state", NULL);
	g_autofree gchar *run = g_build_filename(dir, "run", NULL);
	g_autofree gchar *ws_dir = g_build_filename(state, "workspaces", NULL);
	g_autofree gchar *ws_record = g_build_filename(ws_dir, "wa.json", NULL);
	g_autofree gchar *legacy = NULL;
	g_autofree gchar *def_a = NULL;
	g_autofree gchar *names = NULL;
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupVmService) vm_service = NULL;
	g_autoptr(VmsupWorkspaceService) ws = NULL;
	g_autoptr(VmsupPolicy) policy = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	VmsupRpcContext ctx = stub_ctx;
	Reply reply = {0};
	const gchar *const a_refused_to_b =
	    "VM 'a' belongs to uid 1000, not to you (uid 1001); only its owner and root may use "
	    "it: ask one of them, or use a VM of your own";
	const gchar *const acting[] = {"vm.get",
				       "vm.start",
				       "vm.stop",
				       "vm.delete",
				       "vm.stats",
				       "vm.health",
				       "vm.ping",
				       "vm.ports"};

	/* the daemon runs as root here: uids 1000 and 1001 are bound by the rule */
	g_assert_true(vmsup_vm_def_uid_is_restricted(OWNER_A));
	g_assert_false(vmsup_vm_def_uid_is_restricted(0));
	g_assert_false(vmsup_vm_def_uid_is_restricted(geteuid()));
	owner_save_def(store, "a", OWNER_A);
	owner_save_def(store, "b", OWNER_B);
	/* a definition written before owners: root's */
	legacy = g_build_filename(vmsup_vm_store_get_dir(store), "old.json", NULL);
	g_assert_true(g_file_set_contents(legacy,
					  "{\"name\": \"old\", \"kernel\": \"/nonexistent/k\"}",
					  -1,
					  NULL));
	g_assert_cmpint(g_mkdir_with_parents(ws_dir, 0700), ==, 0);
	g_assert_true(
	    g_file_set_contents(ws_record,
				"{\"version\": 1, \"name\": \"wa\", \"path\": \"/srv/wa\", "
				"\"vm\": \"a\", \"vm_owned\": false, \"owner_uid\": 1000}",
				-1,
				NULL));
	def_a = vmsup_vm_store_get_path(store, "a");

	vm_service = vmsup_vm_service_new(state, run, "/nonexistent/qemu", VMSUP_ACCEL_TCG);
	vmsup_vm_service_load_async(vm_service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 10);
	g_assert_true(vmsup_vm_service_load_finish(vm_service, res, &error));
	g_assert_no_error(error);
	ws = vmsup_workspace_service_new(state, vmsup_vm_service_get_workspace_hooks(vm_service));
	policy = vmsup_daemon_policy_new(vm_service, ws);
	ctx.mode = "system";
	ctx.policy = policy;
	ctx.vm_service = vm_service;
	ctx.workspace_service = ws;

	/* someone else's VM: refused before any handler, whatever the method */
	for (guint i = 0; i < G_N_ELEMENTS(acting); i++)
		owner_assert_refused(&ctx, acting[i], "{\"name\": \"a\"}", OWNER_B, a_refused_to_b);
	owner_assert_refused(&ctx,
			     "vm.set",
			     "{\"name\": \"a\", \"cpus\": 2}",
			     OWNER_B,
			     a_refused_to_b);
	owner_assert_refused(&ctx,
			     "vm.exec",
			     "{\"name\": \"a\", \"argv\": [\"cat\", \"/workspace/x\"]}",
			     OWNER_B,
			     a_refused_to_b);
	owner_assert_refused(&ctx,
			     "vm.get",
			     "{\"name\": \"old\"}",
			     OWNER_A,
			     "VM 'old' belongs to uid 0, not to you (uid 1000); only its owner and "
			     "root may use it: ask one of them, or use a VM of your own");
	owner_assert_refused(&ctx,
			     "workspace.delete",
			     "{\"name\": \"wa\"}",
			     OWNER_B,
			     "Workspace 'wa' belongs to uid 1000, not to you (uid 1001); only its "
			     "owner and root may use it: ask one of them, or use a workspace of "
			     "your own");
	owner_assert_refused(&ctx,
			     "workspace.open",
			     "{\"name\": \"wa\"}",
			     OWNER_B,
			     "Workspace 'wa' belongs to uid 1000, not to you (uid 1001); only its "
			     "owner and root may use it: ask one of them, or use a workspace of "
			     "your own");
	/* nothing changed */
	g_assert_true(g_file_test(def_a, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(ws_record, G_FILE_TEST_EXISTS));

	/* the owner and root pass the rule (and meet the verb's own answer) */
	owner_dispatch(&ctx, "vm.get", "{\"name\": \"a\"}", OWNER_A, &reply);
	g_assert_no_error(reply.error);
	g_assert_cmpint(json_object_get_int_member(json_node_get_object(reply.result), "owner_uid"),
			==,
			OWNER_A);
	owner_dispatch(&ctx, "vm.get", "{\"name\": \"a\"}", 0, &reply);
	g_assert_no_error(reply.error);
	owner_dispatch(&ctx, "vm.get", "{\"name\": \"old\"}", 0, &reply);
	g_assert_no_error(reply.error);
	g_assert_cmpint(json_object_get_int_member(json_node_get_object(reply.result), "owner_uid"),
			==,
			0);
	/* what does not exist is the verb's to say */
	owner_dispatch(&ctx, "vm.get", "{\"name\": \"nope\"}", OWNER_B, &reply);
	g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	/* creating is not acting on anything: the name is simply taken */
	owner_dispatch(&ctx, "vm.create", "{\"name\": \"a\", \"kernel\": \"/k\"}", OWNER_B, &reply);
	g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_ALREADY_EXISTS);
	reply_clear(&reply);

	/* lists: each sees its own, root sees all */
	names = owner_list_names(&ctx, "vm.list", "vms", OWNER_A);
	g_assert_cmpstr(names, ==, "a");
	g_clear_pointer(&names, g_free);
	names = owner_list_names(&ctx, "vm.list", "vms", OWNER_B);
	g_assert_cmpstr(names, ==, "b");
	g_clear_pointer(&names, g_free);
	names = owner_list_names(&ctx, "vm.list", "vms", 0);
	g_assert_cmpstr(names, ==, "a b old");
	g_clear_pointer(&names, g_free);
	names = owner_list_names(&ctx, "workspace.list", "workspaces", OWNER_B);
	g_assert_cmpstr(names, ==, "");
	g_clear_pointer(&names, g_free);
	names = owner_list_names(&ctx, "workspace.list", "workspaces", OWNER_A);
	g_assert_cmpstr(names, ==, "wa");
	g_clear_pointer(&names, g_free);
	/* with fields that leave out the name, the filter still applies and the name stays out */
	owner_dispatch(&ctx, "vm.list", "{\"fields\": [\"cpus\"]}", OWNER_B, &reply);
	g_assert_no_error(reply.error);
	{
		JsonArray *vms =
		    json_object_get_array_member(json_node_get_object(reply.result), "vms");
		g_assert_cmpuint(json_array_get_length(vms), ==, 1);
		g_assert_false(
		    json_object_has_member(json_array_get_object_element(vms, 0), "name"));
	}
	reply_clear(&reply);
	/* an operation of nobody known (none exists): the verb answers not-found */
	owner_dispatch(&ctx, "op.get", "{\"id\": 1}", OWNER_B, &reply);
	g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	reply_clear(&reply);

	g_clear_object(&policy);
	g_clear_object(&ws);
	g_clear_object(&vm_service);
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(dir);
}

/* --- the policy on its own --------------------------------------------------- */

/* owners as a test knows them: "name" -> uid for VMs and workspaces, id -> uid for operations */
typedef struct {
	GHashTable *vms;
	GHashTable *workspaces;
	GHashTable *operations;
} TestOwners;

static gboolean
test_owners_lookup(GHashTable *table, gconstpointer key, guint32 *out_uid)
{
	gpointer value = NULL;

	if (!g_hash_table_lookup_extended(table, key, NULL, &value))
		return FALSE;
	*out_uid = GPOINTER_TO_UINT(value);
	return TRUE;
}

static gboolean
test_vm_owner(const gchar *name, guint32 *out_uid, gpointer user_data)
{
	return test_owners_lookup(((TestOwners *)user_data)->vms, name, out_uid);
}

static gboolean
test_workspace_owner(const gchar *name, guint32 *out_uid, gpointer user_data)
{
	return test_owners_lookup(((TestOwners *)user_data)->workspaces, name, out_uid);
}

static gboolean
test_operation_owner(gint64 id, guint32 *out_uid, gpointer user_data)
{
	return test_owners_lookup(((TestOwners *)user_data)->operations,
				  GINT_TO_POINTER((gint)id),
				  out_uid);
}

static GStrv
test_vm_names(gpointer user_data)
{
	g_autoptr(GStrvBuilder) names = g_strv_builder_new();
	GHashTableIter iter;
	gpointer name;

	g_hash_table_iter_init(&iter, ((TestOwners *)user_data)->vms);
	while (g_hash_table_iter_next(&iter, &name, NULL))
		g_strv_builder_add(names, name);
	return g_strv_builder_end(names);
}

/* the decisions themselves: acting, seeing and hearing, for a bound caller and a free one */
/* an import's source is opened as its caller; stored images are deleted and built by the
 * host's users */
static void
test_policy_image_files(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *secret = g_build_filename(dir, "secret.img", NULL);
	VmsupCaller nobody = vmsup_caller_for_uid(65534);
	VmsupCaller root = vmsup_caller_for_uid(0);
	g_autoptr(GError) error = NULL;
	gint fd;

	g_assert_true(g_file_set_contents(secret, "root's", -1, NULL));
	g_assert_cmpint(g_chmod(secret, 0600), ==, 0);
	fd = vmsup_policy_open_host_file(&nobody, "path", secret, &error);
	g_assert_cmpint(fd, ==, -1);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "uid 65534"));
	g_clear_error(&error);
	fd = vmsup_policy_open_host_file(&root, "path", secret, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	close(fd);
	fd = vmsup_policy_open_host_file(vmsup_caller_daemon(), "path", "secret.img", &error);
	g_assert_cmpint(fd, ==, -1);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	g_assert_false(vmsup_policy_check_image_removal(&nobody, "base", &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_clear_error(&error);
	g_assert_true(vmsup_policy_check_image_removal(&root, "base", &error));
	g_assert_true(vmsup_policy_check_image_removal(vmsup_caller_daemon(), "base", &error));
	g_assert_no_error(error);
	/* a build runs as vmsupd's user into everyone's store: the same users may */
	g_assert_false(vmsup_policy_check_image_build(&nobody, "base", &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "session vmsupd"));
	g_clear_error(&error);
	g_assert_true(vmsup_policy_check_image_build(&root, "base", &error));
	g_assert_true(vmsup_policy_check_image_build(vmsup_caller_daemon(), "base", &error));
	g_assert_no_error(error);
	vmsup_test_rm_rf(dir);
}

static void
test_policy_decisions(void)
{
	TestOwners data = {
	    .vms = g_hash_table_new(g_str_hash, g_str_equal),
	    .workspaces = g_hash_table_new(g_str_hash, g_str_equal),
	    .operations = g_hash_table_new(NULL, NULL),
	};
	VmsupPolicyOwners owners = {
	    .vm_owner = test_vm_owner,
	    .operation_owner = test_operation_owner,
	    .vm_names = test_vm_names,
	    .workspace_owner = test_workspace_owner,
	    .user_data = &data,
	};
	g_autoptr(VmsupPolicy) policy = NULL;
	g_autoptr(VmsupPolicy) empty = vmsup_policy_new(NULL);
	g_autoptr(VmsupPolicySubscription) sub_a = NULL;
	g_autoptr(VmsupPolicySubscription) sub_root = NULL;
	g_autoptr(GError) error = NULL;
	VmsupCaller a = vmsup_caller_for_uid(OWNER_A);
	VmsupCaller b = vmsup_caller_for_uid(OWNER_B);
	VmsupCaller root = vmsup_caller_for_uid(0);

	g_hash_table_insert(data.vms, "va", GUINT_TO_POINTER(OWNER_A));
	g_hash_table_insert(data.vms, "vb", GUINT_TO_POINTER(OWNER_B));
	g_hash_table_insert(data.workspaces, "wa", GUINT_TO_POINTER(OWNER_A));
	g_hash_table_insert(data.operations, GINT_TO_POINTER(7), GUINT_TO_POINTER(OWNER_A));
	policy = vmsup_policy_new(&owners);

	/* who the rule binds: here the daemon runs as root */
	g_assert_true(a.restricted);
	g_assert_false(root.restricted);
	g_assert_false(vmsup_caller_daemon()->restricted);
	g_assert_cmpuint(vmsup_caller_daemon()->uid, ==, geteuid());

	/* acting */
	g_assert_true(vmsup_policy_check_vm(policy, &a, "va", &error));
	g_assert_no_error(error);
	g_assert_false(vmsup_policy_check_vm(policy, &b, "va", &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_cmpstr(error->message,
			==,
			"VM 'va' belongs to uid 1000, not to you (uid 1001); only its owner and "
			"root may use it: ask one of them, or use a VM of your own");
	g_clear_error(&error);
	g_assert_true(vmsup_policy_check_vm(policy, &root, "va", NULL));
	/* what does not exist is the service's to report */
	g_assert_true(vmsup_policy_check_vm(policy, &b, "nope", NULL));
	g_assert_false(vmsup_policy_check_workspace(policy, &b, "wa", &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "Workspace 'wa' belongs to uid 1000"));
	g_clear_error(&error);
	g_assert_false(vmsup_policy_check_operation(policy, &b, 7, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "Operation 7 belongs to uid 1000"));
	g_clear_error(&error);
	g_assert_true(vmsup_policy_check_operation(policy, &a, 7, NULL));
	g_assert_false(vmsup_policy_check_vm_owner(&b, "x", OWNER_A, NULL));
	g_assert_true(vmsup_policy_check_vm_owner(&root, "x", OWNER_A, NULL));
	/* with nothing known, nothing is refused and nothing is shown to a bound caller */
	g_assert_true(vmsup_policy_check_vm(empty, &b, "va", NULL));
	g_assert_false(vmsup_policy_may_see_vm(empty, &b, "va"));

	/* seeing */
	g_assert_true(vmsup_policy_may_see_vm(policy, &a, "va"));
	g_assert_false(vmsup_policy_may_see_vm(policy, &a, "vb"));
	g_assert_false(vmsup_policy_may_see_vm(policy, &a, "nope"));
	g_assert_true(vmsup_policy_may_see_vm(policy, &root, "vb"));
	g_assert_true(vmsup_policy_may_see_workspace(policy, &a, "wa"));
	g_assert_false(vmsup_policy_may_see_workspace(policy, &b, "wa"));
	g_assert_true(vmsup_policy_may_see_operation(policy, &a, 7));
	g_assert_false(vmsup_policy_may_see_operation(policy, &b, 7));

	/* hearing: its own VMs, the removal only of one it was told of */
	sub_a = vmsup_policy_subscribe(policy, &a);
	sub_root = vmsup_policy_subscribe(policy, &root);
	g_assert_false(
	    vmsup_policy_subscription_admits(sub_a, VMSUP_POLICY_EVENT_VM_CHANGED, "vb", 0));
	g_assert_false(
	    vmsup_policy_subscription_admits(sub_a, VMSUP_POLICY_EVENT_VM_REMOVED, "vb", 0));
	g_assert_true(
	    vmsup_policy_subscription_admits(sub_root, VMSUP_POLICY_EVENT_VM_REMOVED, "vb", 0));
	/* known when it subscribed */
	g_assert_true(
	    vmsup_policy_subscription_admits(sub_a, VMSUP_POLICY_EVENT_VM_REMOVED, "va", 0));
	/* told of again once it exists anew, then its removal */
	g_assert_true(
	    vmsup_policy_subscription_admits(sub_a, VMSUP_POLICY_EVENT_VM_CHANGED, "va", 0));
	g_hash_table_remove(data.vms, "va");
	g_assert_true(
	    vmsup_policy_subscription_admits(sub_a, VMSUP_POLICY_EVENT_VM_REMOVED, "va", 0));
	g_assert_false(
	    vmsup_policy_subscription_admits(sub_a, VMSUP_POLICY_EVENT_VM_REMOVED, "va", 0));
	g_assert_true(
	    vmsup_policy_subscription_admits(sub_a, VMSUP_POLICY_EVENT_OPERATION_CHANGED, NULL, 7));
	g_assert_false(
	    vmsup_policy_subscription_admits(sub_a, VMSUP_POLICY_EVENT_OPERATION_CHANGED, NULL, 8));

	g_clear_pointer(&sub_a, vmsup_policy_subscription_free);
	g_clear_pointer(&sub_root, vmsup_policy_subscription_free);
	g_clear_object(&policy);
	g_hash_table_unref(data.vms);
	g_hash_table_unref(data.workspaces);
	g_hash_table_unref(data.operations);
}

static void
subscribe_cb(VmsupRpcCall *call, gboolean subscribe, gpointer user_data)
{
	gint *state = user_data;
	*state = subscribe ? 1 : 0;
}

/* events.subscribe goes through the table to the transport's hook; without one it is refused */
static void
test_dispatch_events(void)
{
	const VmsupRpcMethod *m = vmsup_rpc_table_lookup("events.subscribe");
	VmsupCaller caller = vmsup_caller_for_uid(OWNER_A);
	g_autoptr(VmsupRpcCall) call = NULL;
	g_autoptr(JsonObject) bad_since =
	    vmsup_json_parse_object("{\"since\": \"yesterday\"}", -1, NULL);
	JsonArray *events;
	Reply reply = {0};
	gint state = -1;

	/* a transport that sends no events (D-Bus) */
	dispatch("events.subscribe", "{}", &reply);
	g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	reply_clear(&reply);
	/* the schema is the table's: events.unsubscribe takes no parameter */
	assert_invalid_params("events.unsubscribe", "{\"x\": 1}", "x");
	assert_invalid_params("events.subscribe", "{\"follow\": \"yes\"}", "follow");
	/* a since that is no time is refused before anything is subscribed */
	call = vmsup_rpc_call_new(m, bad_since, &caller, reply_cb, &reply, NULL);
	vmsup_rpc_call_set_subscriber(call, subscribe_cb, &state);
	vmsup_rpc_table_dispatch(&stub_ctx, call);
	g_assert_error(reply.error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(reply.error->message, "yesterday"));
	g_assert_cmpint(state, ==, -1);
	reply_clear(&reply);
	g_clear_pointer(&call, vmsup_rpc_call_unref);

	call = vmsup_rpc_call_new(m, NULL, &caller, reply_cb, &reply, NULL);
	vmsup_rpc_call_set_subscriber(call, subscribe_cb, &state);
	vmsup_rpc_table_dispatch(&stub_ctx, call);
	g_assert_cmpint(state, ==, 1);
	g_assert_no_error(reply.error);
	events = json_object_get_array_member(json_node_get_object(reply.result), "events");
	g_assert_cmpuint(json_array_get_length(events), ==, 3);
	g_assert_cmpstr(json_array_get_string_element(events, 0), ==, "event.vm-changed");
	g_assert_cmpstr(json_array_get_string_element(events, 1), ==, "event.vm-removed");
	g_assert_cmpstr(json_array_get_string_element(events, 2), ==, "event.operation-changed");
	reply_clear(&reply);
	g_clear_pointer(&call, vmsup_rpc_call_unref);

	call = vmsup_rpc_call_new(vmsup_rpc_table_lookup("events.unsubscribe"),
				  NULL,
				  &caller,
				  reply_cb,
				  &reply,
				  NULL);
	vmsup_rpc_call_set_subscriber(call, subscribe_cb, &state);
	vmsup_rpc_table_dispatch(&stub_ctx, call);
	g_assert_cmpint(state, ==, 0);
	g_assert_no_error(reply.error);
	events = json_object_get_array_member(json_node_get_object(reply.result), "events");
	g_assert_cmpuint(json_array_get_length(events), ==, 0);
	reply_clear(&reply);
}

/* D-Bus carries what JSON text cannot: infinite doubles, uint64 past int64; each is refused */
static void
test_dbus_params_strict(void)
{
	GVariant *bad[] = {
	    g_variant_new_double(INFINITY),
	    g_variant_new_double(NAN),
	    g_variant_new_uint64(G_MAXUINT64),
	    g_variant_new_parsed("[<%t>]", (guint64)G_MAXINT64 + 1),
	};
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GVariantBuilder) options = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
		g_autoptr(GVariant) args = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) params = NULL;

		g_variant_builder_add(options, "{sv}", "memory_mib", bad[i]);
		args = g_variant_ref_sink(g_variant_new("(sa{sv})", "web", options));
		params = vmsup_dbus_params_from_variant(args, NULL, &error);
		g_assert_null(params);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS);
		g_assert_nonnull(strstr(error->message, "'memory_mib'"));
	}
	/* what fits passes */
	{
		g_autoptr(GVariant) args = g_variant_ref_sink(g_variant_new_parsed(
		    "('web', {'memory_mib': <uint64 9223372036854775807>, 'x': <1.5>})"));
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) params = vmsup_dbus_params_from_variant(args, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpint(vmsup_json_object_get_int(params, "memory_mib", 0), ==, G_MAXINT64);
	}
}

int
main(int argc, char **argv)
{
	gint ret;

	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	stub_ctx.policy = vmsup_policy_new(NULL);
	g_test_add_func("/vmsup/rpc/table/contract", test_contract);
	g_test_add_func("/vmsup/rpc/table/unique", test_unique);
	g_test_add_func("/vmsup/rpc/table/flags", test_flags);
	g_test_add_func("/vmsup/rpc/table/schema/wrong-types", test_schema_wrong_types);
	g_test_add_func("/vmsup/rpc/table/schema/unknown-and-missing",
			test_schema_unknown_and_missing);
	g_test_add_func("/vmsup/rpc/table/schema/values", test_schema_values);
	g_test_add_func("/vmsup/rpc/table/schema/names", test_schema_names);
	g_test_add_func("/vmsup/rpc/table/schema/accepts", test_schema_accepts);
	g_test_add_func("/vmsup/rpc/vm-members/list", test_vm_members);
	g_test_add_func("/vmsup/rpc/vm-members/in-source", test_vm_members_in_source);
	g_test_add_func("/vmsup/rpc/vm-members/documented", test_vm_members_documented);
	g_test_add_func("/vmsup/rpc/table/dispatch/no-services", test_dispatch_without_services);
	g_test_add_func("/vmsup/rpc/table/dispatch/argument-checks", test_dispatch_argument_checks);
	g_test_add_func("/vmsup/rpc/table/daemon-info", test_daemon_info);
	g_test_add_func("/vmsup/rpc/call/converts-errors", test_call_converts_errors);
	g_test_add_func("/vmsup/rpc/call/lifecycle", test_call_lifecycle);
	g_test_add_func("/vmsup/rpc/call/answer-twice", test_call_answer_twice);
	g_test_add_func("/vmsup/rpc/call/on-success", test_call_on_success);
	g_test_add_func("/vmsup/rpc/error/kinds", test_error_kinds);
	g_test_add_func("/vmsup/rpc/table/dispatch/owner", test_dispatch_owner);
	g_test_add_func("/vmsup/rpc/table/dispatch/events", test_dispatch_events);
	g_test_add_func("/vmsup/rpc/policy/decisions", test_policy_decisions);
	g_test_add_func("/vmsup/rpc/policy/image-files", test_policy_image_files);
	g_test_add_func("/vmsup/rpc/dbus/params-strict", test_dbus_params_strict);
	ret = g_test_run();
	g_clear_object(&stub_ctx.policy);
	return ret;
}
