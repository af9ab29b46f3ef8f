/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * WorkspaceService built from VMService's workspace hooks only, as the
 * daemon wires it: path checks, the create/list/delete round trip with its
 * records reloaded, the user's directory left alone, and one workspace
 * opened for real in the bundled guest (TCG) with a file crossing the share
 * both ways. At most one guest runs at a time.
 */

#include "config.h"

#include <gio/gio.h>
#include <pwd.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmsup-daemon-config.h"
#include "vmsup-daemon.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-rpc-table.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-service-workspace-hooks.h"
#include "vmsup-vm-service.h"
#include "vmsup-workspace-service.h"

/* boot plus agent under TCG, with room for a loaded machine */
#define GUEST_OPEN_TIMEOUT_S 90
#define CALL_TIMEOUT_S 60
#define HOST_FILE_CONTENTS "hello from the host\n"

/* --- never leave a QEMU behind, even when an assertion aborts ------------ */

static GPid guest_pid_registered;

static void
abort_handler(int signum)
{
	if (guest_pid_registered > 0)
		kill(guest_pid_registered, SIGKILL);
	signal(signum, SIG_DFL);
	raise(signum);
}

/*
 * --- expected warnings ------------------------------------------------------
 * g_test_expect_message() does not see structured logging, so a writer
 * swallows the one warning a test expects and counts it.
 */

static const gchar *expected_warning; /* a g_pattern_match_simple() pattern */
static guint expected_warning_seen;

static GLogWriterOutput
test_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if (expected_warning != NULL && (level & G_LOG_LEVEL_WARNING) != 0) {
		for (gsize i = 0; i < n_fields; i++) {
			if (g_strcmp0(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0 &&
			    g_pattern_match_simple(expected_warning, fields[i].value)) {
				expected_warning_seen++;
				return G_LOG_WRITER_HANDLED;
			}
		}
	}
	return g_log_writer_default(level, fields, n_fields, user_data);
}

/* --- calling the services -------------------------------------------------- */

/* whom the workspace verbs act for, as the RPC layer passes it: the daemon's own user by default */
static guint32 caller_uid;

typedef void (*WsAsyncFunc)(VmsupWorkspaceService *self,
			    const VmsupCaller *caller,
			    JsonObject *params,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data);
typedef JsonObject *(*WsFinishFunc)(VmsupWorkspaceService *self, GAsyncResult *res, GError **error);

static JsonObject *
call_ws(VmsupWorkspaceService *ws,
	WsAsyncFunc async,
	WsFinishFunc finish,
	JsonObject *params,
	guint timeout_s,
	GError **error)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	VmsupCaller caller = vmsup_caller_for_uid(caller_uid);
	async(ws, &caller, params, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, timeout_s);
	return finish(ws, res, error);
}

#define ws_create_async vmsup_workspace_service_create_async
#define ws_open_async vmsup_workspace_service_open_async
#define ws_list_async vmsup_workspace_service_list_async
#define ws_delete_async vmsup_workspace_service_delete_async

#define WS_CALL(ws, verb, params, timeout_s, error)                                                \
	call_ws((ws),                                                                              \
		ws_##verb##_async,                                                                 \
		vmsup_workspace_service_##verb##_finish,                                           \
		(params),                                                                          \
		(timeout_s),                                                                       \
		(error))

static JsonObject *
params_name(const gchar *name)
{
	JsonObject *params = json_object_new();
	json_object_set_string_member(params, "name", name);
	return params;
}

static JsonObject *
params_create(const gchar *name, const gchar *path)
{
	JsonObject *params = params_name(name);
	if (path != NULL)
		json_object_set_string_member(params, "path", path);
	return params;
}

static JsonObject *
ws_list(VmsupWorkspaceService *ws)
{
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(GError) error = NULL;
	JsonObject *result = WS_CALL(ws, list, params, CALL_TIMEOUT_S, &error);
	g_assert_no_error(error);
	g_assert_nonnull(result);
	return result;
}

static guint
ws_count(VmsupWorkspaceService *ws)
{
	g_autoptr(JsonObject) result = ws_list(ws);
	return json_array_get_length(json_object_get_array_member(result, "workspaces"));
}

static JsonObject *
ws_list_entry(VmsupWorkspaceService *ws, const gchar *name)
{
	g_autoptr(JsonObject) result = ws_list(ws);
	JsonArray *array = json_object_get_array_member(result, "workspaces");
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonObject *entry = json_array_get_object_element(array, i);
		if (g_strcmp0(json_object_get_string_member(entry, "name"), name) == 0)
			return json_object_ref(entry);
	}
	return NULL;
}

static gchar *
read_file(const gchar *path)
{
	g_autoptr(GError) error = NULL;
	gchar *contents = NULL;
	g_assert_true(g_file_get_contents(path, &contents, NULL, &error));
	g_assert_no_error(error);
	return contents;
}

static void
write_file(const gchar *path, const gchar *contents)
{
	g_autoptr(GError) error = NULL;
	g_assert_true(g_file_set_contents(path, contents, -1, &error));
	g_assert_no_error(error);
}

/* --- the fixture: VMService and a WorkspaceService built from its hooks ---- */

typedef struct {
	gchar *tmpdir;
	gchar *state;
	gchar *project; /* a user directory with a file in it */
	VmsupVmService *vm_service;
	VmsupWorkspaceService *ws;
	GPtrArray *activity; /* of gchar *: VM names of "activity" */
} Fixture;

static void
activity_cb(VmsupWorkspaceService *ws, const gchar *vm, const gchar *reason, Fixture *fx)
{
	g_assert_cmpstr(reason, ==, "workspace.open");
	g_ptr_array_add(fx->activity, g_strdup(vm));
}

static VmsupWorkspaceService *
fixture_new_ws(Fixture *fx)
{
	const VmsupWorkspaceHooks *hooks = vmsup_vm_service_get_workspace_hooks(fx->vm_service);
	VmsupWorkspaceService *ws = vmsup_workspace_service_new(fx->state, hooks);
	g_assert_true(vmsup_workspace_hooks_is_complete(vmsup_workspace_service_get_hooks(ws)));
	return ws;
}

static void
setup(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *run = NULL;
	g_autofree gchar *qemu = vmsup_test_require_qemu();
	g_autofree gchar *file = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	fx->tmpdir = vmsup_test_make_tmpdir();
	fx->state = g_build_filename(fx->tmpdir, "state", NULL);
	run = g_build_filename(fx->tmpdir, "run", NULL);
	fx->project = g_build_filename(fx->tmpdir, "project", NULL);
	g_assert_cmpint(g_mkdir(fx->project, 0700), ==, 0);
	file = g_build_filename(fx->project, "hello.txt", NULL);
	write_file(file, HOST_FILE_CONTENTS);
	fx->activity = g_ptr_array_new_with_free_func(g_free);

	/* this kind of machine cannot run a guest under KVM: no probe, TCG */
	fx->vm_service = vmsup_vm_service_new(fx->state, run, qemu, VMSUP_ACCEL_TCG);
	vmsup_vm_service_load_async(fx->vm_service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	g_assert_true(vmsup_vm_service_load_finish(fx->vm_service, res, &error));
	g_assert_no_error(error);

	fx->ws = fixture_new_ws(fx);
	g_signal_connect(fx->ws, "activity", G_CALLBACK(activity_cb), fx);
	caller_uid = geteuid();
}

static void
teardown(Fixture *fx, gconstpointer user_data)
{
	g_clear_object(&fx->ws);
	g_clear_object(&fx->vm_service);
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(fx->tmpdir);
	g_free(fx->tmpdir);
	g_free(fx->state);
	g_free(fx->project);
	g_ptr_array_unref(fx->activity);
}

static gboolean
vm_exists(Fixture *fx, const gchar *name)
{
	g_autoptr(JsonObject) vm = vmsup_vm_service_lookup(fx->vm_service, name);
	return vm != NULL;
}

static gchar *
record_path(Fixture *fx, const gchar *name)
{
	g_autofree gchar *basename = g_strconcat(name, ".json", NULL);
	return g_build_filename(fx->state, "workspaces", basename, NULL);
}

/* --- path checks ------------------------------------------------------------ */

static void
test_path_refused(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *missing = g_build_filename(fx->tmpdir, "missing", NULL);
	g_autofree gchar *file = g_build_filename(fx->project, "hello.txt", NULL);
	g_autofree gchar *link_etc = g_build_filename(fx->tmpdir, "link-etc", NULL);
	g_autofree gchar *link_root = g_build_filename(fx->tmpdir, "link-root", NULL);
	g_autofree gchar *record = record_path(fx, "proj");
	/* more ".." than the temp dir is deep: they stop at "/" */
	g_autofree gchar *dotdot =
	    g_strconcat(fx->project, "/../../../../../../../../../../../../../../../../etc", NULL);
	const struct {
		const gchar *path;
		gint code;
		const gchar *says; /* part of the message */
	} cases[] = {
	    {"project", VMSUP_ERROR_INVALID_ARGUMENT, "absolute"},
	    {"./project", VMSUP_ERROR_INVALID_ARGUMENT, "absolute"},
	    {"", VMSUP_ERROR_INVALID_ARGUMENT, "'path'"},
	    {missing, VMSUP_ERROR_NOT_FOUND, "does not exist"},
	    {"/", VMSUP_ERROR_INVALID_ARGUMENT, "system directory"},
	    {"/etc", VMSUP_ERROR_INVALID_ARGUMENT, "system directory"},
	    {"/etc/", VMSUP_ERROR_INVALID_ARGUMENT, "system directory"},
	    {"/usr/share", VMSUP_ERROR_INVALID_ARGUMENT, "inside the system directory '/usr'"},
	    {"/proc/self", VMSUP_ERROR_INVALID_ARGUMENT, "inside the system directory '/proc'"},
	    {"/lib", VMSUP_ERROR_INVALID_ARGUMENT, "system directory"},
	    {"/var", VMSUP_ERROR_INVALID_ARGUMENT, "system directory"},
	    {dotdot, VMSUP_ERROR_INVALID_ARGUMENT, "system directory"},
	    {file, VMSUP_ERROR_INVALID_ARGUMENT, "not a directory"},
	    {link_etc, VMSUP_ERROR_INVALID_ARGUMENT, "'/etc' is a system directory"},
	    {link_root, VMSUP_ERROR_INVALID_ARGUMENT, "'/' is a system directory"},
	};

	g_assert_cmpint(symlink("/etc", link_etc), ==, 0);
	g_assert_cmpint(symlink("/", link_root), ==, 0);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(JsonObject) params = params_create("proj", cases[i].path);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);

		g_test_message("path '%s': %s", cases[i].path, error ? error->message : "accepted");
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, cases[i].code);
		g_assert_nonnull(strstr(error->message, cases[i].says));
	}
	/* a path that is not a string, and none at all */
	{
		g_autoptr(JsonObject) params = params_name("proj");
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result = NULL;

		json_object_set_int_member(params, "path", 7);
		result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	}
	{
		g_autoptr(JsonObject) params = params_name("proj");
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	}
	/* nothing was left behind by the refusals */
	g_assert_cmpuint(ws_count(fx->ws), ==, 0);
	g_assert_false(vm_exists(fx, "ws-proj"));
	g_assert_false(g_file_test(record, G_FILE_TEST_EXISTS));
}

static void
test_bad_params(Fixture *fx, gconstpointer user_data)
{
	/* 61 characters: "ws-" makes it too long for a VM name */
	g_autofree gchar *long_name = g_strnfill(61, 'a');
	const struct {
		const gchar *name;
		const gchar *vm;
		gint64 cpus;
		gint code;
	} cases[] = {
	    {"Bad Name", NULL, 0, VMSUP_ERROR_INVALID_ARGUMENT},
	    {long_name, NULL, 0, VMSUP_ERROR_INVALID_ARGUMENT},
	    {"proj", "Bad VM", 0, VMSUP_ERROR_INVALID_ARGUMENT},
	    {"proj", "nope", 0, VMSUP_ERROR_NOT_FOUND},
	    {"proj", "nope", 2, VMSUP_ERROR_INVALID_ARGUMENT},
	    {"proj", NULL, -1, VMSUP_ERROR_INVALID_ARGUMENT},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(JsonObject) params = params_create(cases[i].name, fx->project);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result = NULL;

		if (cases[i].vm != NULL)
			json_object_set_string_member(params, "vm", cases[i].vm);
		if (cases[i].cpus != 0)
			json_object_set_int_member(params, "cpus", cases[i].cpus);
		result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_test_message("case %u: %s", i, error ? error->message : "accepted");
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, cases[i].code);
	}
	/* verbs on a workspace that does not exist */
	{
		g_autoptr(JsonObject) params = params_name("ghost");
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, open, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	}
	{
		g_autoptr(JsonObject) params = params_name("ghost");
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, delete, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	}
	g_assert_cmpuint(ws_count(fx->ws), ==, 0);
	g_assert_false(vm_exists(fx, "ws-proj"));
}

/* --- create / list / delete, records reloaded ------------------------------ */

static void
test_round_trip(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *link = g_build_filename(fx->tmpdir, "link-project", NULL);
	g_autofree gchar *real = realpath(fx->project, NULL);
	g_autofree gchar *record = record_path(fx, "proj");
	g_autofree gchar *corrupt = record_path(fx, "broken");
	g_autofree gchar *hello = g_build_filename(fx->project, "hello.txt", NULL);
	g_autofree gchar *contents = NULL;
	g_autoptr(VmsupWorkspaceService) reloaded = NULL;
	g_autoptr(VmsupWorkspaceService) reloaded_again = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) entry = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GDir) dir = NULL;
	g_autofree gchar *records = g_build_filename(fx->state, "workspaces", NULL);
	const gchar *basename;
	gboolean set_aside = FALSE;

	/* created through a symlink: the record holds the canonical path */
	g_assert_cmpint(symlink(fx->project, link), ==, 0);
	{
		g_autoptr(JsonObject) params = params_create("proj", link);
		json_object_set_int_member(params, "memory_mib", 160);
		result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
	}
	g_assert_no_error(error);
	g_assert_nonnull(result);
	g_assert_cmpstr(json_object_get_string_member(result, "name"), ==, "proj");
	g_assert_cmpstr(json_object_get_string_member(result, "path"), ==, real);
	g_assert_cmpstr(json_object_get_string_member(result, "vm"), ==, "ws-proj");
	g_assert_true(json_object_get_boolean_member(result, "vm_owned"));
	g_assert_cmpstr(json_object_get_string_member(result, "state"), ==, "closed");
	g_assert_nonnull(json_object_get_string_member(result, "created"));
	g_clear_pointer(&result, json_object_unref);

	/* the VM made for it shares the directory and got the memory asked for */
	vm = vmsup_vm_service_lookup(fx->vm_service, "ws-proj");
	g_assert_nonnull(vm);
	g_assert_cmpstr(vmsup_json_object_get_string(vm, "share_dir", NULL), ==, real);
	g_assert_cmpint(vmsup_json_object_get_int(vm, "memory_mib", 0), ==, 160);
	g_assert_cmpstr(vmsup_json_object_get_string(vm, "state", NULL), ==, "defined");
	g_assert_true(g_file_test(record, G_FILE_TEST_IS_REGULAR));

	entry = ws_list_entry(fx->ws, "proj");
	g_assert_nonnull(entry);
	g_assert_cmpstr(json_object_get_string_member(entry, "path"), ==, real);
	g_assert_cmpstr(json_object_get_string_member(entry, "state"), ==, "closed");
	g_assert_cmpstr(json_object_get_string_member(entry, "vm_state"), ==, "defined");
	g_clear_pointer(&entry, json_object_unref);

	/* the name is taken, and so is its VM */
	{
		g_autoptr(JsonObject) params = params_create("proj", fx->project);
		result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_ALREADY_EXISTS);
		g_clear_error(&error);
	}
	{
		g_autoptr(JsonObject) params = params_create("other", fx->project);
		json_object_set_string_member(params, "vm", "ws-proj");
		result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_ALREADY_EXISTS);
		g_assert_nonnull(strstr(error->message, "'proj'"));
		g_clear_error(&error);
	}

	/* a new service on the same state dir finds it; a corrupt record is set aside */
	write_file(corrupt, "{\"version\": 1, \"name\": \"broken\"");
	expected_warning = "*broken.json*moved aside*";
	expected_warning_seen = 0;
	reloaded = fixture_new_ws(fx);
	expected_warning = NULL;
	g_assert_cmpuint(expected_warning_seen, ==, 1);
	g_assert_cmpuint(ws_count(reloaded), ==, 1);
	entry = ws_list_entry(reloaded, "proj");
	g_assert_nonnull(entry);
	g_assert_cmpstr(json_object_get_string_member(entry, "path"), ==, real);
	g_assert_cmpstr(json_object_get_string_member(entry, "vm"), ==, "ws-proj");
	g_assert_true(json_object_get_boolean_member(entry, "vm_owned"));
	g_clear_pointer(&entry, json_object_unref);
	g_assert_false(g_file_test(corrupt, G_FILE_TEST_EXISTS));
	dir = g_dir_open(records, 0, NULL);
	g_assert_nonnull(dir);
	while ((basename = g_dir_read_name(dir)) != NULL) {
		if (g_str_has_prefix(basename, "broken.json.corrupt-"))
			set_aside = TRUE;
	}
	g_assert_true(set_aside);

	/* deleting removes the VM it made and the record, never the directory */
	{
		g_autoptr(JsonObject) params = params_name("proj");
		result = WS_CALL(reloaded, delete, params, CALL_TIMEOUT_S, &error);
	}
	g_assert_no_error(error);
	g_assert_nonnull(result);
	g_assert_true(json_object_get_boolean_member(result, "vm_deleted"));
	g_assert_cmpstr(json_object_get_string_member(result, "path"), ==, real);
	g_clear_pointer(&result, json_object_unref);
	g_assert_false(vm_exists(fx, "ws-proj"));
	g_assert_false(g_file_test(record, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(ws_count(reloaded), ==, 0);
	g_assert_true(g_file_test(fx->project, G_FILE_TEST_IS_DIR));
	contents = read_file(hello);
	g_assert_cmpstr(contents, ==, HOST_FILE_CONTENTS);

	reloaded_again = fixture_new_ws(fx);
	g_assert_cmpuint(ws_count(reloaded_again), ==, 0);
}

/* a VM the user made serves the workspace; it stays when the workspace goes */
static void
test_user_vm(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *real = realpath(fx->project, NULL);
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	{
		g_autoptr(JsonObject) params = params_name("dev1");
		json_object_set_boolean_member(params, "wait", TRUE);
		vmsup_vm_service_create_async(fx->vm_service,
					      vmsup_caller_daemon(),
					      params,
					      NULL,
					      vmsup_test_store_result_cb,
					      &slot);
		res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
		result = vmsup_vm_service_create_finish(fx->vm_service, res, &error);
		g_assert_no_error(error);
		g_assert_nonnull(result);
		g_clear_pointer(&result, json_object_unref);
	}
	{
		g_autoptr(JsonObject) params = params_create("w2", fx->project);
		json_object_set_string_member(params, "vm", "dev1");
		result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
	}
	g_assert_no_error(error);
	g_assert_cmpstr(json_object_get_string_member(result, "vm"), ==, "dev1");
	g_assert_false(json_object_get_boolean_member(result, "vm_owned"));
	g_clear_pointer(&result, json_object_unref);
	vm = vmsup_vm_service_lookup(fx->vm_service, "dev1");
	g_assert_cmpstr(vmsup_json_object_get_string(vm, "share_dir", NULL), ==, real);
	g_clear_pointer(&vm, json_object_unref);

	{
		g_autoptr(JsonObject) params = params_name("w2");
		result = WS_CALL(fx->ws, delete, params, CALL_TIMEOUT_S, &error);
	}
	g_assert_no_error(error);
	g_assert_false(json_object_get_boolean_member(result, "vm_deleted"));
	vm = vmsup_vm_service_lookup(fx->vm_service, "dev1");
	g_assert_nonnull(vm);
	g_assert_null(vmsup_json_object_get_string(vm, "share_dir", NULL));
	g_assert_cmpuint(ws_count(fx->ws), ==, 0);
	g_assert_true(g_file_test(fx->project, G_FILE_TEST_IS_DIR));
}

/* --- the hooks ------------------------------------------------------------- */

static void
test_hooks_outlive_vm_service(void)
{
	g_autofree gchar *tmpdir = vmsup_test_make_tmpdir();
	g_autofree gchar *state = g_build_filename(tmpdir, "state", NULL);
	g_autofree gchar *run = g_build_filename(tmpdir, "run", NULL);
	VmsupVmService *vm_service = vmsup_vm_service_new(state, run, NULL, VMSUP_ACCEL_TCG);
	VmsupWorkspaceHooks hooks = {NULL};
	g_autoptr(JsonObject) params = params_name("web1");
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonObject) result = NULL;

	vmsup_workspace_hooks_copy(&hooks, vmsup_vm_service_get_workspace_hooks(vm_service));
	g_assert_true(vmsup_workspace_hooks_is_complete(&hooks));
	/* asked twice, the same hooks */
	g_assert_true(vmsup_vm_service_get_workspace_hooks(vm_service)->vm_call == hooks.vm_call);

	/* only the lifecycle verbs are reachable */
	vmsup_workspace_hooks_vm_call(&hooks,
				      "op_cancel",
				      vmsup_caller_daemon(),
				      params,
				      NULL,
				      vmsup_test_store_result_cb,
				      &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	result = vmsup_workspace_hooks_vm_call_finish(res, &error);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INTERNAL);
	g_clear_error(&error);
	g_clear_object(&res);

	/* a verb goes through */
	vmsup_workspace_hooks_vm_call(&hooks,
				      "get",
				      vmsup_caller_daemon(),
				      params,
				      NULL,
				      vmsup_test_store_result_cb,
				      &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	result = vmsup_workspace_hooks_vm_call_finish(res, &error);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_clear_object(&res);
	g_assert_null(vmsup_workspace_hooks_vm_handles(&hooks, "web1"));

	/* VMService gone: the hooks answer, they do not crash */
	g_object_unref(vm_service);
	vmsup_workspace_hooks_vm_call(&hooks,
				      "get",
				      vmsup_caller_daemon(),
				      params,
				      NULL,
				      vmsup_test_store_result_cb,
				      &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	result = vmsup_workspace_hooks_vm_call_finish(res, &error);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_null(vmsup_workspace_hooks_vm_handles(&hooks, "web1"));
	vmsup_workspace_hooks_clear(&hooks);
	vmsup_test_rm_rf(tmpdir);
}

/* share_dir is VMService's internal parameter: no client may pass it */
static void
test_share_dir_internal(void)
{
	const gchar *const methods[] = {"vm.create", "vm.set", "workspace.create"};

	for (guint i = 0; i < G_N_ELEMENTS(methods); i++) {
		const VmsupRpcMethod *method = vmsup_rpc_table_lookup(methods[i]);
		g_autoptr(JsonObject) params = params_create("web1", "/tmp");
		g_autoptr(GError) error = NULL;

		g_assert_nonnull(method);
		/* the method takes these params without the internal one */
		if (g_strcmp0(methods[i], "workspace.create") != 0)
			json_object_remove_member(params, "path");
		g_assert_true(vmsup_rpc_table_validate(method, params, &error));
		g_assert_no_error(error);
		json_object_set_string_member(params, "share_dir", "/tmp");
		g_assert_false(vmsup_rpc_table_validate(method, params, &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS);
		g_assert_nonnull(strstr(error->message, "share_dir"));
	}
}

/* the daemon builds the service from hooks and relays its activity to stats */
static void
test_wiring(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *state = g_build_filename(dir, "state", NULL);
	g_autofree gchar *runtime = g_build_filename(dir, "run", NULL);
	VmsupDaemonOptions options = {
	    .state_dir = state,
	    .runtime_dir = runtime,
	    .use_dbus = FALSE,
	};
	g_autoptr(VmsupDaemon) daemon = vmsup_daemon_new(&options, vmsup_daemon_config_new());
	g_autoptr(JsonObject) activity = NULL;
	VmsupWorkspaceService *ws;
	VmsupStatsService *stats;

	vmsup_daemon_wire_services(daemon);
	ws = vmsup_daemon_get_workspace_service(daemon);
	g_assert_nonnull(ws);
	g_assert_true(vmsup_workspace_hooks_is_complete(vmsup_workspace_service_get_hooks(ws)));
	stats = vmsup_daemon_get_stats_service(daemon);
	g_assert_nonnull(stats);

	vmsup_stats_service_track_vm(stats, "ws-x", TRUE);
	g_signal_emit_by_name(ws, "activity", "ws-x", "workspace.open");
	activity = vmsup_stats_service_describe_activity(stats, "ws-x");
	g_assert_nonnull(activity);
	g_assert_cmpstr(vmsup_json_object_get_string(activity, "active_reason", NULL),
			==,
			"workspace.open");
	g_clear_object(&daemon);
	vmsup_test_rm_rf(dir);
}

/* --- system mode: a caller other than root shares only its own directories - */

/* a uid other than root and the daemon's (root: chown needs it) */
#define NOBODY 65534

static gchar *
make_dir_owned_by(Fixture *fx, const gchar *name, uid_t uid)
{
	gchar *path = g_build_filename(fx->tmpdir, name, NULL);
	/* the directory is opened as its owner, who must reach it */
	g_assert_cmpint(chmod(fx->tmpdir, 0711), ==, 0);
	g_assert_cmpint(g_mkdir(path, 0700), ==, 0);
	g_assert_cmpint(chown(path, uid, (gid_t)-1), ==, 0);
	return path;
}

static void
create_user_vm(Fixture *fx, const gchar *name)
{
	g_autoptr(JsonObject) params = params_name(name);
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	json_object_set_boolean_member(params, "wait", TRUE);
	vmsup_vm_service_create_async(fx->vm_service,
				      vmsup_caller_daemon(),
				      params,
				      NULL,
				      vmsup_test_store_result_cb,
				      &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	result = vmsup_vm_service_create_finish(fx->vm_service, res, &error);
	g_assert_no_error(error);
	g_assert_nonnull(result);
}

/* a VM as the RPC table creates it for a client of uid @uid: owned by that uid */
static void
create_user_vm_for(Fixture *fx, const gchar *name, guint32 uid)
{
	VmsupCaller caller = vmsup_caller_for_uid(uid);
	g_autoptr(JsonObject) params = params_name(name);
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	json_object_set_boolean_member(params, "wait", TRUE);
	vmsup_vm_service_create_async(fx->vm_service,
				      &caller,
				      params,
				      NULL,
				      vmsup_test_store_result_cb,
				      &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	result = vmsup_vm_service_create_finish(fx->vm_service, res, &error);
	g_assert_no_error(error);
	g_assert_nonnull(result);
}

static gchar *
vm_share_dir(Fixture *fx, const gchar *name)
{
	g_autoptr(JsonObject) vm = vmsup_vm_service_lookup(fx->vm_service, name);
	g_assert_nonnull(vm);
	return g_strdup(vmsup_json_object_get_string(vm, "share_dir", NULL));
}

static gchar *
vm_state(Fixture *fx, const gchar *name)
{
	g_autoptr(JsonObject) vm = vmsup_vm_service_lookup(fx->vm_service, name);
	g_assert_nonnull(vm);
	return g_strdup(vmsup_json_object_get_string(vm, "state", NULL));
}

/* create as a non-root caller: another's directory is refused, however it is named */
static void
test_owner_create(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *mine = NULL;
	g_autofree gchar *theirs = NULL;
	g_autofree gchar *link_theirs = g_build_filename(fx->tmpdir, "link-theirs", NULL);
	g_autofree gchar *link_mine = g_build_filename(fx->tmpdir, "link-mine", NULL);
	g_autofree gchar *theirs_real = NULL;
	g_autofree gchar *mine_real = NULL;
	g_autofree gchar *belongs = NULL;
	g_autofree gchar *share = NULL;
	const struct {
		const gchar *path;
		const gchar *vm;
		gboolean spoof;
	} refused[] = {
	    {NULL, NULL, FALSE},   /* theirs */
	    {"link", NULL, FALSE}, /* a link the caller owns, to theirs */
	    {NULL, "dev1", FALSE}, /* for a VM that exists */
	    {NULL, NULL, TRUE},    /* a uid in the params changes nothing */
	    {"link", "dev1", TRUE},
	};

	/* the directories need owners: root may chown */
	g_assert_cmpint(geteuid(), ==, 0);
	mine = make_dir_owned_by(fx, "mine", NOBODY);
	theirs = make_dir_owned_by(fx, "theirs", 0);
	mine_real = realpath(mine, NULL);
	theirs_real = realpath(theirs, NULL);
	g_assert_cmpint(symlink(theirs, link_theirs), ==, 0);
	g_assert_cmpint(lchown(link_theirs, NOBODY, (gid_t)-1), ==, 0);
	g_assert_cmpint(symlink(mine, link_mine), ==, 0);
	/* the caller's own VM: a workspace shares only with a VM of its owner */
	create_user_vm_for(fx, "dev1", NOBODY);
	belongs = g_strdup_printf("'%s' belongs to uid 0, not to you (uid %u); share a directory "
				  "you own",
				  theirs_real,
				  NOBODY);

	caller_uid = NOBODY;
	for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
		g_autoptr(JsonObject) params =
		    params_create("proj", refused[i].path != NULL ? link_theirs : theirs);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result = NULL;

		if (refused[i].vm != NULL)
			json_object_set_string_member(params, "vm", refused[i].vm);
		/* the RPC layer refuses these; the service never reads a uid from params */
		if (refused[i].spoof) {
			json_object_set_int_member(params, "caller_uid", 0);
			json_object_set_int_member(params, "uid", 0);
			json_object_set_int_member(params, "share_uid", NOBODY);
		}
		result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_test_message("case %u: %s", i, error ? error->message : "accepted");
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
		g_assert_cmpstr(error->message, ==, belongs);
	}
	/* nothing was made, nothing changed */
	g_assert_cmpuint(ws_count(fx->ws), ==, 0);
	g_assert_false(vm_exists(fx, "ws-proj"));
	{
		g_autofree gchar *record = record_path(fx, "proj");
		g_assert_false(g_file_test(record, G_FILE_TEST_EXISTS));
	}
	share = vm_share_dir(fx, "dev1");
	g_assert_null(share);

	/* the caller's own directory, also through a link: shared, and VMService agrees */
	{
		g_autoptr(JsonObject) params = params_create("mine", mine);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(json_object_get_string_member(result, "path"), ==, mine_real);
	}
	share = vm_share_dir(fx, "ws-mine");
	g_assert_cmpstr(share, ==, mine_real);
	g_clear_pointer(&share, g_free);
	{
		g_autoptr(JsonObject) params = params_create("via-link", link_mine);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result = NULL;

		json_object_set_string_member(params, "vm", "dev1");
		result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(json_object_get_string_member(result, "path"), ==, mine_real);
	}
	share = vm_share_dir(fx, "dev1");
	g_assert_cmpstr(share, ==, mine_real);
	g_clear_pointer(&share, g_free);

	/* root shares what it likes */
	caller_uid = 0;
	{
		g_autoptr(JsonObject) params = params_create("root", theirs);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_no_error(error);
		g_assert_nonnull(result);
	}
	share = vm_share_dir(fx, "ws-root");
	g_assert_cmpstr(share, ==, theirs_real);
	g_assert_cmpuint(ws_count(fx->ws), ==, 3);
}

/* open shares the directory again, for whoever opens it: checked every time */
static void
test_owner_open(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *mine = NULL;
	g_autofree gchar *theirs = NULL;
	g_autofree gchar *mine_real = NULL;
	g_autofree gchar *moved = g_build_filename(fx->tmpdir, "mine-moved", NULL);
	g_autofree gchar *state = NULL;
	g_autofree gchar *share = NULL;

	g_assert_cmpint(geteuid(), ==, 0);
	mine = make_dir_owned_by(fx, "mine", NOBODY);
	theirs = make_dir_owned_by(fx, "theirs", 0);
	mine_real = realpath(mine, NULL);

	caller_uid = 0;
	{
		g_autoptr(JsonObject) params = params_create("root", theirs);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_no_error(error);
	}
	caller_uid = NOBODY;
	{
		g_autoptr(JsonObject) params = params_create("mine", mine);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_no_error(error);
	}

	/* root's workspace, opened by another user: refused before its VM is touched */
	{
		g_autoptr(JsonObject) params = params_name("root");
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, open, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
		g_assert_nonnull(strstr(error->message, "Cannot open workspace 'root': "));
		g_assert_nonnull(
		    strstr(error->message, "belongs to uid 0, not to you (uid 65534)"));
	}
	state = vm_state(fx, "ws-root");
	g_assert_cmpstr(state, ==, "defined");
	g_clear_pointer(&state, g_free);

	/* the caller's own, opened by a third user */
	caller_uid = NOBODY - 1;
	{
		g_autoptr(JsonObject) params = params_name("mine");
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, open, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
		g_assert_nonnull(
		    strstr(error->message, "belongs to uid 65534, not to you (uid 65533)"));
	}

	/* the directory swapped for a link to another's since it was created */
	caller_uid = NOBODY;
	g_assert_cmpint(g_rename(mine, moved), ==, 0);
	g_assert_cmpint(symlink(theirs, mine), ==, 0);
	{
		g_autoptr(JsonObject) params = params_name("mine");
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, open, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
		g_assert_nonnull(strstr(error->message, "through a symbolic link"));
	}
	state = vm_state(fx, "ws-mine");
	g_assert_cmpstr(state, ==, "defined");
	share = vm_share_dir(fx, "ws-mine");
	g_assert_cmpstr(share, ==, mine_real);
	/* refusals left the workspaces as they were, and free to be used */
	g_assert_cmpuint(ws_count(fx->ws), ==, 2);
}

/* no member of params can pose as the caller's uid, nor set what VMService checks against */
static void
test_uid_not_a_param(void)
{
	const gchar *const methods[] = {"vm.create",
					"vm.set",
					"workspace.create",
					"workspace.open"};
	const gchar *const members[] = {"caller_uid", "uid", "share_uid", "share_dir", "owner_uid"};

	for (guint i = 0; i < G_N_ELEMENTS(methods); i++) {
		const VmsupRpcMethod *method = vmsup_rpc_table_lookup(methods[i]);
		g_assert_nonnull(method);
		for (guint j = 0; j < G_N_ELEMENTS(members); j++) {
			g_autoptr(JsonObject) params = params_name("web1");
			g_autoptr(GError) error = NULL;

			if (g_strcmp0(methods[i], "workspace.create") == 0)
				json_object_set_string_member(params, "path", "/tmp");
			g_assert_true(vmsup_rpc_table_validate(method, params, &error));
			g_assert_no_error(error);
			json_object_set_int_member(params, members[j], 0);
			g_assert_false(vmsup_rpc_table_validate(method, params, &error));
			g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS);
			g_assert_nonnull(strstr(error->message, members[j]));
		}
	}
}

/* MaxVMs: a workspace whose VM would pass the cap is not created at all */
static void
test_max_vms(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *record = record_path(fx, "proj");
	g_autoptr(JsonObject) params = params_create("proj", fx->project);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = NULL;

	vmsup_vm_service_set_max_vms(fx->vm_service, 1);
	create_user_vm(fx, "dev1");
	result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "MaxVMs"));
	g_assert_cmpuint(ws_count(fx->ws), ==, 0);
	g_assert_false(g_file_test(record, G_FILE_TEST_EXISTS));
	g_assert_false(vm_exists(fx, "ws-proj"));
	g_assert_cmpuint(vmsup_vm_service_count_vms(fx->vm_service), ==, 1);
}

/* --- the bundled guest: open, a file each way, delete ---------------------- */

static void
agent_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GBytes **out = user_data;
	g_autoptr(GError) error = NULL;
	*out = vmsup_qga_client_read_file_finish(VMSUP_QGA_CLIENT(source), res, &error);
	g_assert_no_error(error);
	g_assert_nonnull(*out);
}

static void
agent_exec_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	JsonObject **out = user_data;
	g_autoptr(GError) error = NULL;
	*out = vmsup_qga_client_exec_finish(VMSUP_QGA_CLIENT(source), res, &error);
	g_assert_no_error(error);
	g_assert_nonnull(*out);
}

static gboolean
bytes_ready(gpointer data)
{
	return *(GBytes **)data != NULL;
}

static gboolean
object_ready(gpointer data)
{
	return *(JsonObject **)data != NULL;
}

static void
test_guest(Fixture *fx, gconstpointer user_data)
{
	static const gchar *const write_argv[] = {
	    "/bin/sh",
	    "-c",
	    "echo from the guest >/workspace/guest.txt && sync",
	    NULL,
	};
	/* and the guest sees what it asked for: the xattrs keep the guest's owner and mode */
	static const gchar *const setuid_argv[] = {
	    "/bin/sh",
	    "-c",
	    "cp /bin/busybox /workspace/suid && chown 0:0 /workspace/suid && "
	    "chmod 4755 /workspace/suid && [ -u /workspace/suid ] && "
	    "mknod /workspace/node b 8 0 && [ -b /workspace/node ] && sync",
	    NULL,
	};
	g_autofree gchar *hello = g_build_filename(fx->project, "hello.txt", NULL);
	g_autofree gchar *from_guest = g_build_filename(fx->project, "guest.txt", NULL);
	g_autofree gchar *contents = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonObject) entry = NULL;
	g_autoptr(JsonObject) exec = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	GPid pid;
	gint64 t0;

	vmsup_workspace_service_set_open_timeout(fx->ws, GUEST_OPEN_TIMEOUT_S);
	{
		g_autoptr(JsonObject) params = params_create("e2e", fx->project);
		json_object_set_int_member(params, "memory_mib", 192);
		result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
	}
	g_assert_no_error(error);
	g_clear_pointer(&result, json_object_unref);

	/* open: the VM starts with the share and the agent answers */
	t0 = g_get_monotonic_time();
	{
		g_autoptr(JsonObject) params = params_name("e2e");
		result = WS_CALL(fx->ws, open, params, GUEST_OPEN_TIMEOUT_S + 30, &error);
	}
	g_assert_no_error(error);
	g_assert_nonnull(result);
	g_test_message("open -> agent ready: %" G_GINT64_FORMAT " ms (service: %" G_GINT64_FORMAT
		       " ms)",
		       (g_get_monotonic_time() - t0) / 1000,
		       json_object_get_int_member(result, "ready_ms"));
	handles = vmsup_vm_hooks_vm_handles(vmsup_vm_service_get_hooks(fx->vm_service), "ws-e2e");
	g_assert_nonnull(handles);
	pid = vmsup_qemu_process_get_pid(handles->process);
	guest_pid_registered = pid;
	g_assert_cmpstr(json_object_get_string_member(result, "state"), ==, "open");
	g_assert_cmpstr(json_object_get_string_member(result, "mount"), ==, "/workspace");
	g_assert_cmpstr(json_object_get_string_member(result, "vm"), ==, "ws-e2e");
	g_assert_cmpint(json_object_get_int_member(result, "ready_ms"), >, 0);
	g_clear_pointer(&result, json_object_unref);
	g_assert_cmpuint(fx->activity->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(fx->activity, 0), ==, "ws-e2e");

	/* the host's file, read in the guest */
	vmsup_qga_client_read_file_async(handles->qga,
					 "/workspace/hello.txt",
					 10000,
					 NULL,
					 agent_read_cb,
					 &bytes);
	vmsup_test_wait_until(bytes_ready, &bytes, CALL_TIMEOUT_S);
	g_assert_cmpmem(g_bytes_get_data(bytes, NULL),
			g_bytes_get_size(bytes),
			HOST_FILE_CONTENTS,
			strlen(HOST_FILE_CONTENTS));

	/* a file written by the guest, seen on the host */
	vmsup_qga_client_exec_async(handles->qga,
				    write_argv,
				    NULL,
				    30000,
				    NULL,
				    agent_exec_cb,
				    &exec);
	vmsup_test_wait_until(object_ready, &exec, CALL_TIMEOUT_S);
	g_assert_cmpint(json_object_get_int_member(exec, "exit_code"), ==, 0);
	contents = read_file(from_guest);
	g_assert_cmpstr(contents, ==, "from the guest\n");
	g_clear_pointer(&contents, g_free);
	g_clear_pointer(&exec, json_object_unref);

	/* the guest's root makes a setuid-root file and a device node: on the host, neither */
	vmsup_qga_client_exec_async(handles->qga,
				    setuid_argv,
				    NULL,
				    30000,
				    NULL,
				    agent_exec_cb,
				    &exec);
	vmsup_test_wait_until(object_ready, &exec, CALL_TIMEOUT_S);
	g_assert_cmpint(json_object_get_int_member(exec, "exit_code"), ==, 0);
	{
		g_autofree gchar *suid = g_build_filename(fx->project, "suid", NULL);
		g_autofree gchar *node = g_build_filename(fx->project, "node", NULL);
		struct passwd *qemu_user = getpwnam("vmsup-qemu");
		struct stat st;

		g_assert_nonnull(qemu_user);
		g_assert_cmpint(lstat(suid, &st), ==, 0);
		g_test_message("host: suid is uid %u mode %o", st.st_uid, st.st_mode);
		g_assert_true(S_ISREG(st.st_mode));
		g_assert_cmpint(st.st_mode & (S_ISUID | S_ISGID), ==, 0);
		g_assert_cmpint(st.st_uid, ==, qemu_user->pw_uid);
		g_assert_cmpint(lstat(node, &st), ==, 0);
		g_test_message("host: node is uid %u mode %o", st.st_uid, st.st_mode);
		g_assert_true(S_ISREG(st.st_mode));
		g_assert_cmpint(st.st_uid, ==, qemu_user->pw_uid);
	}

	/* open twice: the running VM is reused */
	{
		g_autoptr(JsonObject) params = params_name("e2e");
		result = WS_CALL(fx->ws, open, params, GUEST_OPEN_TIMEOUT_S, &error);
	}
	g_assert_no_error(error);
	g_clear_pointer(&result, json_object_unref);
	g_clear_pointer(&handles, vmsup_vm_handles_unref);
	handles = vmsup_vm_hooks_vm_handles(vmsup_vm_service_get_hooks(fx->vm_service), "ws-e2e");
	g_assert_nonnull(handles);
	g_assert_cmpint(vmsup_qemu_process_get_pid(handles->process), ==, pid);
	g_assert_cmpuint(fx->activity->len, ==, 2);

	entry = ws_list_entry(fx->ws, "e2e");
	g_assert_cmpstr(json_object_get_string_member(entry, "state"), ==, "open");
	g_assert_cmpstr(json_object_get_string_member(entry, "vm_state"), ==, "running");

	/* open: delete asks for force and touches nothing */
	{
		g_autoptr(JsonObject) params = params_name("e2e");
		result = WS_CALL(fx->ws, delete, params, CALL_TIMEOUT_S, &error);
	}
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "force"));
	g_clear_error(&error);
	g_assert_true(vmsup_qemu_process_is_running(handles->process));
	g_assert_cmpuint(ws_count(fx->ws), ==, 1);

	/* with force: the VM is stopped and deleted, the directory stays as it is */
	{
		g_autoptr(JsonObject) params = params_name("e2e");
		json_object_set_boolean_member(params, "force", TRUE);
		result = WS_CALL(fx->ws, delete, params, CALL_TIMEOUT_S, &error);
	}
	g_assert_no_error(error);
	g_assert_true(json_object_get_boolean_member(result, "vm_deleted"));
	g_assert_false(vmsup_qemu_process_is_running(handles->process));
	guest_pid_registered = 0;
	g_assert_false(vm_exists(fx, "ws-e2e"));
	g_assert_cmpuint(ws_count(fx->ws), ==, 0);
	contents = read_file(hello);
	g_assert_cmpstr(contents, ==, HOST_FILE_CONTENTS);
	g_clear_pointer(&contents, g_free);
	contents = read_file(from_guest);
	g_assert_cmpstr(contents, ==, "from the guest\n");
}

/* a workspace belongs to its creator, and shares only with a VM of the same owner */
static void
test_owner_vm_of_another(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *mine = NULL;
	g_autofree gchar *mine_real = NULL;
	g_autofree gchar *record = record_path(fx, "p");
	g_autofree gchar *legacy = record_path(fx, "old");
	g_autofree gchar *legacy_json = NULL;
	g_autofree gchar *share = NULL;
	g_autofree gchar *state = NULL;
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(VmsupWorkspaceService) reloaded = NULL;
	JsonArray *workspaces;
	guint32 owner = G_MAXUINT32;

	g_assert_cmpint(geteuid(), ==, 0);
	mine = make_dir_owned_by(fx, "mine", NOBODY);
	mine_real = realpath(mine, NULL);
	create_user_vm(fx, "dev0"); /* the daemon's own: root's here */
	caller_uid = NOBODY;

	/* root's VM for nobody's workspace: refused, nothing made or shared */
	{
		g_autoptr(JsonObject) params = params_create("p", mine);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result = NULL;

		json_object_set_string_member(params, "vm", "dev0");
		result = WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
		g_assert_cmpstr(
		    error->message,
		    ==,
		    "VM 'dev0' belongs to uid 0, but workspace 'p' to uid 65534: a "
		    "workspace shares its directory only with a VM of its owner; use a "
		    "VM of the workspace's owner, or delete the workspace and create it "
		    "again");
	}
	g_assert_false(g_file_test(record, G_FILE_TEST_EXISTS));
	g_assert_false(vmsup_workspace_service_get_owner(fx->ws, "p", &owner));
	share = vm_share_dir(fx, "dev0");
	g_assert_null(share);

	/* its own: the workspace and the VM made for it are nobody's */
	{
		g_autoptr(JsonObject) params = params_create("p", mine);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, create, params, CALL_TIMEOUT_S, &error);
		g_assert_no_error(error);
		g_assert_cmpint(json_object_get_int_member(result, "owner_uid"), ==, NOBODY);
	}
	g_assert_true(vmsup_workspace_service_get_owner(fx->ws, "p", &owner));
	g_assert_cmpuint(owner, ==, NOBODY);
	vm = vmsup_vm_service_lookup(fx->vm_service, "ws-p");
	g_assert_nonnull(vm);
	g_assert_cmpint(json_object_get_int_member(vm, "owner_uid"), ==, NOBODY);
	g_clear_pointer(&vm, json_object_unref);
	list = ws_list(fx->ws);
	workspaces = json_object_get_array_member(list, "workspaces");
	g_assert_cmpint(
	    json_object_get_int_member(json_array_get_object_element(workspaces, 0), "owner_uid"),
	    ==,
	    NOBODY);

	/* its VM deleted and made again by someone else: open refuses to share with it */
	{
		g_autoptr(JsonObject) params = params_name("ws-p");
		g_autoptr(GAsyncResult) res = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result = NULL;
		GAsyncResult *slot = NULL;

		vmsup_vm_service_delete_async(fx->vm_service,
					      vmsup_caller_daemon(),
					      params,
					      NULL,
					      vmsup_test_store_result_cb,
					      &slot);
		res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
		result = vmsup_vm_service_delete_finish(fx->vm_service, res, &error);
		g_assert_no_error(error);
	}
	create_user_vm(fx, "ws-p");
	{
		g_autoptr(JsonObject) params = params_name("p");
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, open, params, CALL_TIMEOUT_S, &error);
		g_assert_null(result);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
		g_assert_nonnull(strstr(error->message,
					"VM 'ws-p' belongs to uid 0, but "
					"workspace 'p' to uid 65534"));
	}
	share = vm_share_dir(fx, "ws-p");
	g_assert_null(share);
	state = vm_state(fx, "ws-p");
	g_assert_cmpstr(state, ==, "defined");
	/* deleting the workspace leaves that VM alone */
	{
		g_autoptr(JsonObject) params = params_name("p");
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    WS_CALL(fx->ws, delete, params, CALL_TIMEOUT_S, &error);
		g_assert_no_error(error);
	}
	g_assert_false(g_file_test(record, G_FILE_TEST_EXISTS));
	g_assert_true(vm_exists(fx, "ws-p"));

	/* a record from before owners is root's */
	legacy_json = g_strdup_printf("{\"version\": 1, \"name\": \"old\", \"path\": \"%s\", "
				      "\"vm\": \"ws-old\", \"vm_owned\": true, "
				      "\"created\": \"2026-01-01T00:00:00Z\"}",
				      mine_real);
	g_assert_true(g_file_set_contents(legacy, legacy_json, -1, NULL));
	reloaded = fixture_new_ws(fx);
	owner = G_MAXUINT32;
	g_assert_true(vmsup_workspace_service_get_owner(reloaded, "old", &owner));
	g_assert_cmpuint(owner, ==, 0);
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	signal(SIGABRT, abort_handler);
	signal(SIGSEGV, abort_handler);
	g_log_set_writer_func(test_log_writer, NULL, NULL);
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

	g_test_add("/vmsup/workspace/path/refused",
		   Fixture,
		   NULL,
		   setup,
		   test_path_refused,
		   teardown);
	g_test_add("/vmsup/workspace/params/refused",
		   Fixture,
		   NULL,
		   setup,
		   test_bad_params,
		   teardown);
	g_test_add("/vmsup/workspace/round-trip", Fixture, NULL, setup, test_round_trip, teardown);
	g_test_add("/vmsup/workspace/user-vm", Fixture, NULL, setup, test_user_vm, teardown);
	g_test_add_func("/vmsup/workspace/hooks/outlive-vm-service", test_hooks_outlive_vm_service);
	g_test_add_func("/vmsup/workspace/wiring", test_wiring);
	g_test_add_func("/vmsup/workspace/share-dir-internal", test_share_dir_internal);
	g_test_add_func("/vmsup/workspace/owner/uid-not-a-param", test_uid_not_a_param);
	g_test_add("/vmsup/workspace/owner/create",
		   Fixture,
		   NULL,
		   setup,
		   test_owner_create,
		   teardown);
	g_test_add("/vmsup/workspace/owner/open", Fixture, NULL, setup, test_owner_open, teardown);
	g_test_add("/vmsup/workspace/max-vms", Fixture, NULL, setup, test_max_vms, teardown);
	g_test_add("/vmsup/workspace/guest/open-share-delete",
		   Fixture,
		   NULL,
		   setup,
		   test_guest,
		   teardown);
	g_test_add("/vmsup/workspace/owner/vm-of-another",
		   Fixture,
		   NULL,
		   setup,
		   test_owner_vm_of_another,
		   teardown);
	return g_test_run();
}
