/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What vmsupd keeps of its own life and shows of it: the event journal
 * (rotation, torn lines, --since), its replay by events.subscribe across a
 * kill -9 of vmsupd with real QEMU, replay then live without a gap, what a
 * second uid is shown, and the CLI on top of it (vmsup events, vmsup top).
 */

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <glib-unix.h>
#include <grp.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmsup-daemon.h"
#include "vmsup-error.h"
#include "vmsup-event-journal.h"
#include "vmsup-event-source.h"
#include "vmsup-json.h"
#include "vmsup-jsonrpc-client.h"
#include "vmsup-jsonrpc-server.h"
#include "vmsup-since.h"
#include "vmsup-test-util.h"

#define TIMEOUT_S 60
#define NOBODY 65534

static JsonObject *
params_new(const gchar *name)
{
	JsonObject *params = json_object_new();
	json_object_set_string_member(params, "name", name);
	return params;
}

static gchar *
read_text(const gchar *path)
{
	gchar *text = NULL;
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	return text;
}

static gsize
file_size(const gchar *path)
{
	GStatBuf st;
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	return (gsize)st.st_size;
}

/* the journal alone */

/* thousands of entries through a small bound: two files at most, each under it, none lost */
static void
test_rotation(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *path = g_build_filename(dir, VMSUP_EVENT_JOURNAL_FILE, NULL);
	g_autofree gchar *previous = g_build_filename(dir, VMSUP_EVENT_JOURNAL_PREVIOUS_FILE, NULL);
	g_autoptr(JsonObject) params = params_new("a");
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(VmsupEventJournal) reopened = NULL;
	const gsize bound = 4096;
	const guint n = 2000;

	{
		g_autoptr(VmsupEventJournal) journal = vmsup_event_journal_new(dir, bound);
		for (guint i = 1; i <= n; i++)
			g_assert_cmpuint(vmsup_event_journal_append(journal,
								    g_get_real_time(),
								    "event.vm-removed",
								    params,
								    0),
					 ==,
					 i);
	}
	g_assert_cmpuint(file_size(path), <=, bound);
	g_assert_cmpuint(file_size(previous), <=, bound);
	g_assert_cmpuint(file_size(previous), >, bound / 2);
	/* what is kept is the newest entries, in order, without a hole */
	entries = vmsup_event_journal_read(dir, G_MININT64, 0);
	g_assert_cmpuint(entries->len, >, 0);
	for (guint i = 0; i < entries->len; i++)
		g_assert_cmpuint(vmsup_event_journal_entry_get_seq(g_ptr_array_index(entries, i)),
				 ==,
				 n - entries->len + 1 + i);
	/* a reopened journal numbers on */
	reopened = vmsup_event_journal_new(dir, bound);
	g_assert_cmpuint(vmsup_event_journal_get_last_seq(reopened), ==, n);
	vmsup_test_rm_rf(dir);
}

/* a line cut short by a crash is skipped, and the next entry does not glue onto it */
static void
test_torn_line(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *path = g_build_filename(dir, VMSUP_EVENT_JOURNAL_FILE, NULL);
	g_autoptr(JsonObject) params = params_new("a");
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GPtrArray) after = NULL;
	g_autofree gchar *text = NULL;
	FILE *file;

	{
		g_autoptr(VmsupEventJournal) journal = vmsup_event_journal_new(dir, 0);
		for (guint i = 0; i < 3; i++)
			vmsup_event_journal_append(journal,
						   g_get_real_time(),
						   "event.vm-removed",
						   params,
						   0);
	}
	file = g_fopen(path, "a");
	g_assert_nonnull(file);
	fputs("{\"seq\":4,\"time\":\"2026-", file);
	fclose(file);
	entries = vmsup_event_journal_read(dir, G_MININT64, 0);
	g_assert_cmpuint(entries->len, ==, 3);
	{
		g_autoptr(VmsupEventJournal) journal = vmsup_event_journal_new(dir, 0);
		g_assert_cmpuint(vmsup_event_journal_get_last_seq(journal), ==, 3);
		g_assert_cmpuint(vmsup_event_journal_append(journal,
							    g_get_real_time(),
							    "event.vm-removed",
							    params,
							    0),
				 ==,
				 4);
	}
	after = vmsup_event_journal_read(dir, G_MININT64, 0);
	g_assert_cmpuint(after->len, ==, 4);
	g_assert_cmpuint(vmsup_event_journal_entry_get_seq(g_ptr_array_index(after, 3)), ==, 4);
	/* garbage of any kind is skipped too, never fatal */
	text = read_text(path);
	file = g_fopen(path, "a");
	fputs("not json\n{\"seq\":\"x\"}\n[1]\n\n", file);
	fclose(file);
	g_clear_pointer(&after, g_ptr_array_unref);
	after = vmsup_event_journal_read(dir, G_MININT64, 0);
	g_assert_cmpuint(after->len, ==, 4);
	vmsup_test_rm_rf(dir);
}

/* since: spans back from now and ISO times; entries older than it are left out */
static void
test_since(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autoptr(JsonObject) params = params_new("a");
	g_autoptr(GPtrArray) recent = NULL;
	g_autoptr(GPtrArray) after_seq = NULL;
	g_autoptr(GError) error = NULL;
	gint64 now = g_get_real_time();
	gint64 at = 0;
	const struct {
		const gchar *text;
		gint64 back_s;
	} spans[] = {{"30s", 30}, {"10m", 600}, {"2h", 7200}, {"1d", 86400}, {"45", 45}};

	for (guint i = 0; i < G_N_ELEMENTS(spans); i++) {
		g_assert_true(vmsup_since_parse(spans[i].text, now, &at, &error));
		g_assert_no_error(error);
		g_assert_cmpint(at, ==, now - spans[i].back_s * G_USEC_PER_SEC);
	}
	g_assert_true(vmsup_since_parse("2026-12-07T18:00:00Z", now, &at, &error));
	g_assert_cmpint(at, ==, (gint64)1796666400 * G_USEC_PER_SEC);
	g_assert_true(vmsup_since_parse("2026-12-07T19:00:00+01:00", now, &at, &error));
	g_assert_cmpint(at, ==, (gint64)1796666400 * G_USEC_PER_SEC);
	for (guint i = 0; i < 4; i++) {
		const gchar *bad[] = {"yesterday", "10x", "-5m", ""};
		g_assert_false(vmsup_since_parse(bad[i], now, &at, &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
	}

	{
		g_autoptr(VmsupEventJournal) journal = vmsup_event_journal_new(dir, 0);
		vmsup_event_journal_append(journal,
					   now - (gint64)3600 * G_USEC_PER_SEC,
					   "event.vm-removed",
					   params,
					   0);
		vmsup_event_journal_append(journal,
					   now - (gint64)60 * G_USEC_PER_SEC,
					   "event.vm-removed",
					   params,
					   0);
		vmsup_event_journal_append(journal, now, "event.vm-removed", params, 0);
	}
	g_assert_true(vmsup_since_parse("10m", now, &at, NULL));
	recent = vmsup_event_journal_read(dir, at, 0);
	g_assert_cmpuint(recent->len, ==, 2);
	g_assert_cmpuint(vmsup_event_journal_entry_get_seq(g_ptr_array_index(recent, 0)), ==, 2);
	after_seq = vmsup_event_journal_read(dir, G_MININT64, 2);
	g_assert_cmpuint(after_seq->len, ==, 1);
	vmsup_test_rm_rf(dir);
}

/* what uid 65534 is replayed: its own VM's events, never those of root's */

/* in the child: the replay up to the answer; exit 0 when it held "n" only */
static G_GNUC_NORETURN void
replay_as_nobody(const gchar *path)
{
	static const gchar request[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
				       "\"events.subscribe\",\"params\":{\"since\":\"1h\","
				       "\"follow\":false}}\n";
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	g_autoptr(GString) got = g_string_new(NULL);
	gchar buf[4096];
	gint fd;

	if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
		_exit(20);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    send(fd, request, strlen(request), MSG_NOSIGNAL) < 0)
		_exit(21);
	while (strstr(got->str, "\"result\"") == NULL) {
		gssize n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			_exit(22);
		g_string_append_len(got, buf, n);
	}
	if (strstr(got->str, "\"name\":\"r\"") != NULL)
		_exit(23);
	/* two changes of its own VM, then its removal, and the answer counts three */
	if (strstr(got->str, "\"replayed\":3") == NULL ||
	    strstr(got->str, "\"method\":\"event.vm-removed\",\"params\":{\"name\":\"n\"") == NULL)
		_exit(24);
	_exit(0);
}

typedef struct {
	gboolean done;
	gint status;
} Child;

static void
child_exited_cb(GPid pid, gint status, gpointer user_data)
{
	Child *child = user_data;
	child->status = status;
	child->done = TRUE;
	g_spawn_close_pid(pid);
}

static void
emit_vm_changed(VmsupEventSource *events, const gchar *name, guint32 owner)
{
	g_autoptr(JsonObject) params = params_new(name);
	g_autoptr(JsonObject) vm = json_object_new();

	json_object_set_string_member(vm, "name", name);
	json_object_set_int_member(vm, "owner_uid", owner);
	json_object_set_string_member(vm, "state", "stopped");
	json_object_set_object_member(params, "vm", g_steal_pointer(&vm));
	vmsup_event_source_emit(events, VMSUP_POLICY_EVENT_VM_CHANGED, params);
}

static void
test_policy_replay(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *socket_path = g_build_filename(dir, "s.sock", NULL);
	g_autoptr(VmsupPolicy) policy = vmsup_policy_new(NULL);
	g_autoptr(VmsupEventSource) events = vmsup_event_source_new(NULL);
	g_autoptr(VmsupEventJournal) journal = vmsup_event_journal_new(dir, 0);
	g_autoptr(VmsupJsonrpcServer) server = NULL;
	g_autoptr(JsonObject) removed_n = params_new("n");
	g_autoptr(JsonObject) removed_r = params_new("r");
	g_autoptr(GError) error = NULL;
	VmsupRpcContext ctx = {0};
	Child child = {FALSE, 0};
	pid_t pid;

	g_assert_cmpint(g_chmod(dir, 0755), ==, 0);
	vmsup_event_source_set_journal(events, journal);
	emit_vm_changed(events, "r", 0);
	emit_vm_changed(events, "n", NOBODY);
	emit_vm_changed(events, "n", NOBODY);
	emit_vm_changed(events, "r", 0);
	/* once removed, the owner is the journal's memory alone */
	vmsup_event_source_emit(events, VMSUP_POLICY_EVENT_VM_REMOVED, removed_r);
	vmsup_event_source_emit(events, VMSUP_POLICY_EVENT_VM_REMOVED, removed_n);
	g_assert_cmpuint(vmsup_event_source_get_last_seq(events, NULL), ==, 6);

	ctx.policy = policy;
	ctx.events = events;
	ctx.mode = "system";
	ctx.socket_path = socket_path;
	server = vmsup_jsonrpc_server_new(&ctx);
	g_assert_true(vmsup_jsonrpc_server_listen(server, socket_path, TRUE, NOBODY, &error));
	g_assert_no_error(error);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0)
		replay_as_nobody(socket_path);
	g_child_watch_add(pid, child_exited_cb, &child);
	vmsup_test_wait_flag(&child.done, TIMEOUT_S);
	g_assert_true(WIFEXITED(child.status));
	g_assert_cmpint(WEXITSTATUS(child.status), ==, 0);
	g_clear_object(&server);
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(dir);
}

/* against a real vmsupd, with real QEMU */

typedef struct {
	gchar *dir;
	gchar *state;
	gchar *socket_path;
	gchar *log_path;
	GSubprocess *daemon;
	VmsupJsonrpcClient *client;
} Fixture;

static gboolean
daemon_is_ready(gpointer data)
{
	Fixture *f = data;
	g_autofree gchar *log = NULL;

	if (g_subprocess_get_identifier(f->daemon) == NULL)
		return TRUE;
	if (!g_file_get_contents(f->log_path, &log, NULL, NULL))
		return FALSE;
	return strstr(log, " ready on ") != NULL;
}

static void
daemon_spawn(Fixture *f)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_autofree gchar *daemon = vmsup_test_build_path("src", "daemon", "vmsupd", NULL);
	g_autofree gchar *runtime = g_build_filename(f->dir, "run", NULL);
	g_autofree gchar *config = g_build_filename(f->dir, "vmsupd.conf", NULL);
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_set_contents(config, "[vmsupd]\nAccel=tcg\n", -1, NULL));
	(void)g_unlink(f->log_path);
	g_subprocess_launcher_set_stderr_file_path(launcher, f->log_path);
	g_subprocess_launcher_set_child_setup(launcher,
					      vmsup_test_child_dies_with_parent,
					      NULL,
					      NULL);
	f->daemon = g_subprocess_launcher_spawn(launcher,
						&error,
						daemon,
						"--no-dbus",
						"--session",
						"--state-dir",
						f->state,
						"--runtime-dir",
						runtime,
						"--socket",
						f->socket_path,
						"--config",
						config,
						NULL);
	g_assert_no_error(error);
	vmsup_test_wait_until(daemon_is_ready, f, TIMEOUT_S);
	if (g_subprocess_get_identifier(f->daemon) == NULL) {
		g_autofree gchar *log = read_text(f->log_path);
		g_error("vmsupd did not start:\n%s", log);
	}
	f->client = vmsup_jsonrpc_client_new();
	g_assert_true(vmsup_jsonrpc_client_connect(f->client, f->socket_path, &error));
	g_assert_no_error(error);
}

static void
daemon_kill(Fixture *f)
{
	g_clear_object(&f->client);
	g_subprocess_force_exit(f->daemon);
	g_assert_true(g_subprocess_wait(f->daemon, NULL, NULL));
	g_clear_object(&f->daemon);
}

static JsonObject *
call(Fixture *f, const gchar *method, const gchar *params_json)
{
	g_autoptr(JsonObject) params =
	    params_json != NULL ? vmsup_json_parse_object(params_json, -1, NULL) : NULL;
	g_autoptr(GError) error = NULL;
	JsonObject *result = vmsup_jsonrpc_client_call_object(f->client, method, params, &error);

	g_assert_no_error(error);
	g_assert_nonnull(result);
	return result;
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	f->dir = vmsup_test_make_tmpdir();
	f->state = g_build_filename(f->dir, "state", NULL);
	f->socket_path = g_build_filename(f->dir, "s.sock", NULL);
	f->log_path = g_build_filename(f->dir, "vmsupd.log", NULL);
	daemon_spawn(f);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_autoptr(JsonObject) list = call(f, "vm.list", "{\"fields\":[\"name\"]}");
	JsonArray *vms = json_object_get_array_member(list, "vms");

	/* VMs outlive vmsupd by design: take them down first */
	for (guint i = 0; i < json_array_get_length(vms); i++) {
		JsonObject *vm = json_array_get_object_element(vms, i);
		g_autofree gchar *params =
		    g_strdup_printf("{\"name\":\"%s\",\"force\":true}",
				    vmsup_json_object_get_string(vm, "name", ""));
		g_autoptr(JsonObject) deleted = call(f, "vm.delete", params);
		g_autoptr(JsonObject) get =
		    params_new(vmsup_json_object_get_string(vm, "name", ""));
		g_autoptr(GError) error = NULL;
		/* the delete is an operation: wait until the VM is gone */
		for (guint tries = 0; tries < 600 * vmsup_test_timeout_multiplier(); tries++) {
			g_autoptr(JsonObject) got =
			    vmsup_jsonrpc_client_call_object(f->client, "vm.get", get, &error);
			if (got == NULL)
				break;
			g_usleep(100 * 1000);
		}
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	}
	g_clear_object(&f->client);
	g_subprocess_send_signal(f->daemon, SIGTERM);
	g_assert_true(g_subprocess_wait(f->daemon, NULL, NULL));
	g_assert_true(g_subprocess_get_if_exited(f->daemon));
	g_assert_cmpint(g_subprocess_get_exit_status(f->daemon), ==, 0);
	g_clear_object(&f->daemon);
	vmsup_test_rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->state);
	g_free(f->socket_path);
	g_free(f->log_path);
}

typedef struct {
	Fixture *f;
	const gchar *name;
	const gchar *state;
} StateWait;

static gboolean
vm_is_in_state(gpointer data)
{
	StateWait *w = data;
	g_autofree gchar *params = g_strdup_printf("{\"name\":\"%s\"}", w->name);
	g_autoptr(JsonObject) vm = call(w->f, "vm.get", params);

	return g_strcmp0(vmsup_json_object_get_string(vm, "state", NULL), w->state) == 0;
}

static void
wait_state(Fixture *f, const gchar *name, const gchar *state)
{
	StateWait w = {f, name, state};
	vmsup_test_wait_until(vm_is_in_state, &w, TIMEOUT_S);
}

/* a VM of the bundled guest, started: real QEMU */
static gint64
start_vm(Fixture *f, const gchar *name)
{
	g_autofree gchar *create = g_strdup_printf("{\"name\":\"%s\",\"wait\":true}", name);
	g_autofree gchar *get = g_strdup_printf("{\"name\":\"%s\"}", name);
	g_autoptr(JsonObject) created = call(f, "vm.create", create);
	g_autoptr(JsonObject) vm = NULL;

	wait_state(f, name, "defined");
	g_clear_pointer(&created, json_object_unref);
	created = call(f, "vm.start", get);
	wait_state(f, name, "running");
	vm = call(f, "vm.get", get);
	return vmsup_json_object_get_int(vm, "pid", 0);
}

/* the notifications of a replay, up to its answer */
static GPtrArray *
subscribe_since(Fixture *f, const gchar *since, gboolean follow, JsonObject **out_result)
{
	g_autofree gchar *params =
	    g_strdup_printf("{\"since\":\"%s\",\"follow\":%s}", since, follow ? "true" : "false");
	GPtrArray *events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	JsonObject *event;

	*out_result = call(f, "events.subscribe", params);
	while ((event = vmsup_jsonrpc_client_next_notification(f->client, 0, NULL)) != NULL)
		g_ptr_array_add(events, event);
	return events;
}

static JsonObject *
event_params(JsonObject *event)
{
	return json_object_get_object_member(event, "params");
}

static const gchar *
event_vm_state(JsonObject *event)
{
	JsonObject *params = event_params(event);
	if (g_strcmp0(vmsup_json_object_get_string(event, "method", NULL), "event.vm-changed") != 0)
		return NULL;
	return vmsup_json_object_get_string(json_object_get_object_member(params, "vm"),
					    "state",
					    NULL);
}

/*
 * kill -9 of vmsupd while a VM runs, its QEMU killed while no vmsupd
 * watches, a torn line left behind: the restarted daemon's replay holds
 * everything from before, the crash found at re-adoption after it, with
 * no hole in the numbers, and the live events go on from the last one.
 */
static void
test_replay_across_restart(Fixture *f, gconstpointer data)
{
	g_autofree gchar *journal_path = g_build_filename(f->state, VMSUP_EVENT_JOURNAL_FILE, NULL);
	g_autoptr(GPtrArray) events = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonObject) live = NULL;
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(GError) error = NULL;
	gint64 pid = start_vm(f, "a");
	guint64 seq;
	gint running_at = -1;
	gint crashed_at = -1;
	FILE *file;

	g_assert_cmpint(pid, >, 0);
	daemon_kill(f);
	g_assert_cmpint(kill((pid_t)pid, SIGKILL), ==, 0);
	vmsup_test_wait_until(vmsup_test_pid_is_gone, GINT_TO_POINTER((gint)pid), TIMEOUT_S);
	file = g_fopen(journal_path, "a");
	g_assert_nonnull(file);
	fputs("{\"seq\":99999,\"method\":\"event.vm-chan", file);
	fclose(file);

	daemon_spawn(f);
	wait_state(f, "a", "crashed");
	events = subscribe_since(f, "1h", TRUE, &result);
	seq = (guint64)vmsup_json_object_get_int(result, "seq", 0);
	g_assert_cmpuint(events->len, ==, vmsup_json_object_get_int(result, "replayed", -1));
	g_assert_cmpuint(events->len, ==, seq);
	for (guint i = 0; i < events->len; i++) {
		JsonObject *event = g_ptr_array_index(events, i);
		g_assert_cmpint(vmsup_json_object_get_int(event_params(event), "seq", 0),
				==,
				i + 1);
		if (g_strcmp0(event_vm_state(event), "running") == 0 && running_at < 0)
			running_at = (gint)i;
		if (g_strcmp0(event_vm_state(event), "crashed") == 0)
			crashed_at = (gint)i;
	}
	g_assert_cmpint(running_at, >=, 0);
	g_assert_cmpint(crashed_at, >, running_at);

	/* live from here: the next number, once */
	created = call(f, "vm.create", "{\"name\":\"b\",\"wait\":true}");
	live = vmsup_jsonrpc_client_next_notification(f->client,
						      TIMEOUT_S * 1000 *
							  (gint)vmsup_test_timeout_multiplier(),
						      &error);
	g_assert_no_error(error);
	g_assert_cmpint(vmsup_json_object_get_int(event_params(live), "seq", 0), ==, seq + 1);
	g_assert_nonnull(vmsup_json_object_get_string(event_params(live), "time", NULL));
}

/* --since leaves out what came before it; follow=false subscribes to nothing */
static void
test_since_filter(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GPtrArray) none = NULL;
	g_autoptr(GPtrArray) later = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(GDateTime) now = NULL;
	g_autofree gchar *mark = NULL;

	created = call(f, "vm.create", "{\"name\":\"early\",\"wait\":true}");
	wait_state(f, "early", "defined");
	/* the journal stamps to the microsecond: a second's wait puts "mark" between */
	g_usleep(1100 * 1000);
	now = g_date_time_new_now_utc();
	mark = g_date_time_format_iso8601(now);
	g_usleep(100 * 1000);
	g_clear_pointer(&created, json_object_unref);
	created = call(f, "vm.create", "{\"name\":\"late\",\"wait\":true}");
	wait_state(f, "late", "defined");

	all = subscribe_since(f, "1h", FALSE, &result);
	g_assert_cmpuint(json_array_get_length(json_object_get_array_member(result, "events")),
			 ==,
			 0);
	g_clear_pointer(&result, json_object_unref);
	later = subscribe_since(f, mark, FALSE, &result);
	g_assert_cmpuint(later->len, >, 0);
	g_assert_cmpuint(later->len, <, all->len);
	for (guint i = 0; i < later->len; i++) {
		JsonObject *params = event_params(g_ptr_array_index(later, i));
		JsonNode *vm = json_object_get_member(params, "vm");
		/* an operation names its VM in "vm", a VM event in "name" */
		const gchar *name = vm != NULL && JSON_NODE_HOLDS_VALUE(vm)
					? json_node_get_string(vm)
					: vmsup_json_object_get_string(params, "name", NULL);
		g_assert_cmpstr(name, ==, "late");
	}
	g_clear_pointer(&result, json_object_unref);
	none = subscribe_since(f, "0s", FALSE, &result);
	g_assert_cmpuint(none->len, ==, 0);
}

/* the CLI on top: vmsup top --once, --json --once, vmsup events --since */

static gint
run_cli(Fixture *f, gchar **out, gchar **err, ...)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *arg;
	va_list args;

	g_subprocess_launcher_setenv(launcher, "VMSUP_SOCKET", f->socket_path, TRUE);
	g_subprocess_launcher_setenv(launcher, "LANGUAGE", "C", TRUE);
	g_subprocess_launcher_setenv(launcher, "LANG", "C.UTF-8", TRUE);
	g_subprocess_launcher_unsetenv(launcher, "LC_ALL");
	g_ptr_array_add(argv, vmsup_test_build_path("src", "cli", "vmsup", NULL));
	va_start(args, err);
	while ((arg = va_arg(args, const gchar *)) != NULL)
		g_ptr_array_add(argv, g_strdup(arg));
	va_end(args);
	g_ptr_array_add(argv, NULL);
	proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(proc, NULL, NULL, out, err, &error);
	g_assert_no_error(error);
	g_test_message("vmsup %s\n--- stdout\n%s--- stderr\n%s",
		       (const gchar *)argv->pdata[1],
		       *out,
		       *err);
	g_assert_true(g_subprocess_get_if_exited(proc));
	return g_subprocess_get_exit_status(proc);
}

/* the cells of the line of vmsup top's table that starts with @name */
static GStrv
top_row(const gchar *table, const gchar *name)
{
	g_auto(GStrv) lines = g_strsplit(table, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) cells = g_regex_split_simple("\\s{2,}", lines[i], 0, 0);
		if (g_strcmp0(cells[0], name) == 0)
			return g_steal_pointer(&cells);
	}
	return NULL;
}

static void
test_cli_top(Fixture *f, gconstpointer data)
{
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *by_state = NULL;
	g_autoptr(JsonObject) frame = NULL;
	g_autoptr(JsonObject) created = NULL;
	g_auto(GStrv) a = NULL;
	g_auto(GStrv) b = NULL;
	g_auto(GStrv) header = NULL;
	JsonArray *vms;

	g_assert_cmpint(start_vm(f, "a"), >, 0);
	created = call(f, "vm.create", "{\"name\":\"b\",\"memory_mib\":128,\"wait\":true}");
	wait_state(f, "b", "defined");

	/* a pipe is no terminal: one plain frame, without escapes, even without --once */
	g_assert_cmpint(run_cli(f, &out, &err, "top", NULL), ==, 0);
	g_assert_null(strchr(out, '\033'));
	header = g_regex_split_simple("\\s{2,}", out, 0, 0);
	g_assert_cmpstr(header[0], ==, "NAME");
	g_assert_cmpstr(header[1], ==, "STATE");
	a = top_row(out, "a");
	b = top_row(out, "b");
	g_assert_nonnull(a);
	g_assert_nonnull(b);
	g_assert_cmpstr(a[1], ==, "running");
	g_assert_true(g_str_has_suffix(a[2], "%"));
	g_assert_cmpstr(a[4], ==, "256 MiB");
	g_assert_cmpstr(b[1], ==, "defined");
	g_assert_cmpstr(b[2], ==, "-");
	g_assert_cmpstr(b[4], ==, "128 MiB");
	g_assert_true(strstr(out, "\na ") < strstr(out, "\nb "));
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);

	/* sorted by state: defined before running */
	g_assert_cmpint(run_cli(f, &by_state, &err, "top", "--once", "--sort", "state", NULL),
			==,
			0);
	g_assert_true(strstr(by_state, "\nb ") < strstr(by_state, "\na "));
	g_clear_pointer(&err, g_free);

	g_assert_cmpint(run_cli(f, &out, &err, "top", "--once", "--json", NULL), ==, 0);
	frame = vmsup_json_parse_object(out, -1, NULL);
	g_assert_nonnull(frame);
	vms = json_object_get_array_member(frame, "vms");
	g_assert_cmpuint(json_array_get_length(vms), ==, 2);
	for (guint i = 0; i < 2; i++) {
		JsonObject *vm = json_array_get_object_element(vms, i);
		const gchar *name = vmsup_json_object_get_string(vm, "name", "");
		gboolean up = g_strcmp0(name, "a") == 0;

		g_assert_cmpstr(vmsup_json_object_get_string(vm, "state", ""),
				==,
				up ? "running" : "defined");
		g_assert_cmpint(vmsup_json_object_get_int(vm, "memory_mib", 0), ==, up ? 256 : 128);
		g_assert_true(json_object_get_null_member(vm, "cpu_percent") == !up);
		if (up)
			g_assert_cmpint(vmsup_json_object_get_int(vm, "rss_bytes", 0), >, 0);
		/* one sample has no rates */
		g_assert_true(json_object_get_null_member(vm, "net_rx_per_s"));
	}
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);

	g_assert_cmpint(run_cli(f, &out, &err, "top", "--sort", "size", NULL), ==, 2);
	g_assert_nonnull(strstr(err, "Cannot sort by 'size'"));
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(run_cli(f, &out, &err, "top", "--interval", "0", NULL), ==, 2);
}

/* vmsup events --since prints what was kept and exits; a bad time is a usage error */
static void
test_cli_events_since(Fixture *f, gconstpointer data)
{
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *json = NULL;
	g_auto(GStrv) lines = NULL;
	gint64 last = 0;

	g_assert_cmpint(start_vm(f, "a"), >, 0);
	g_assert_cmpint(run_cli(f, &out, &err, "events", "--since", "10m", NULL), ==, 0);
	g_assert_true(g_regex_match_simple("vm-changed +a running", out, 0, 0));
	g_assert_true(g_regex_match_simple("operation-changed +1 a done", out, 0, 0));
	g_clear_pointer(&err, g_free);

	g_assert_cmpint(run_cli(f, &json, &err, "events", "--since", "1h", "--json", NULL), ==, 0);
	lines = g_strsplit(g_strstrip(json), "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), >, 3);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(JsonObject) event = vmsup_json_parse_object(lines[i], -1, NULL);
		JsonObject *params;
		g_assert_nonnull(event);
		params = json_object_get_object_member(event, "params");
		g_assert_cmpint(vmsup_json_object_get_int(params, "seq", 0), ==, last + 1);
		last = vmsup_json_object_get_int(params, "seq", 0);
	}
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);

	g_assert_cmpint(run_cli(f, &out, &err, "events", "--since", "soon", NULL), ==, 2);
	g_assert_nonnull(strstr(err, "\"soon\" is not a time"));
}

typedef struct {
	GDataInputStream *in;
	GPtrArray *lines;
	gboolean done;
	const gchar *want; /* a line holding this ends the wait */
} LineReader;

static void
line_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	LineReader *r = user_data;
	gchar *line =
	    g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source), res, NULL, NULL);
	if (line == NULL) {
		r->done = TRUE;
		return;
	}
	g_ptr_array_add(r->lines, line);
	g_data_input_stream_read_line_async(r->in, G_PRIORITY_DEFAULT, NULL, line_read_cb, r);
}

static gboolean
reader_has_wanted(gpointer data)
{
	LineReader *r = data;
	for (guint i = 0; i < r->lines->len; i++) {
		if (strstr(g_ptr_array_index(r->lines, i), r->want) != NULL)
			return TRUE;
	}
	return r->done;
}

/* --since with --follow: the kept events, then the live ones, numbered on without a hole */
static void
test_cli_events_follow(Fixture *f, gconstpointer data)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	g_autofree gchar *cli = vmsup_test_build_path("src", "cli", "vmsup", NULL);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(GError) error = NULL;
	LineReader r = {NULL, g_ptr_array_new_with_free_func(g_free), FALSE, NULL};

	created = call(f, "vm.create", "{\"name\":\"a\",\"wait\":true}");
	wait_state(f, "a", "defined");
	g_subprocess_launcher_setenv(launcher, "VMSUP_SOCKET", f->socket_path, TRUE);
	proc = g_subprocess_launcher_spawn(launcher,
					   &error,
					   cli,
					   "events",
					   "--since",
					   "1h",
					   "--follow",
					   "--json",
					   NULL);
	g_assert_no_error(error);
	r.in = g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc));
	g_data_input_stream_read_line_async(r.in, G_PRIORITY_DEFAULT, NULL, line_read_cb, &r);
	/* the replay holds the end of a's create */
	r.want = "\"state\":\"done\"";
	vmsup_test_wait_until(reader_has_wanted, &r, TIMEOUT_S);
	g_assert_false(r.done);
	g_clear_pointer(&created, json_object_unref);
	created = call(f, "vm.create", "{\"name\":\"b\",\"wait\":true}");
	r.want = "\"name\":\"b\"";
	vmsup_test_wait_until(reader_has_wanted, &r, TIMEOUT_S);
	g_assert_false(r.done);
	for (guint i = 0; i < r.lines->len; i++) {
		g_autoptr(JsonObject) event =
		    vmsup_json_parse_object(g_ptr_array_index(r.lines, i), -1, NULL);
		g_assert_nonnull(event);
		g_assert_cmpint(
		    vmsup_json_object_get_int(json_object_get_object_member(event, "params"),
					      "seq",
					      0),
		    ==,
		    i + 1);
	}
	g_subprocess_send_signal(proc, SIGTERM);
	g_assert_true(g_subprocess_wait(proc, NULL, NULL));
	vmsup_test_wait_until(vmsup_test_flag_is_set, &r.done, TIMEOUT_S);
	g_clear_object(&r.in);
	g_ptr_array_unref(r.lines);
}

/* what a terminal shows of vmsup top: read from its pty's master side */
typedef struct {
	GString *out;
	gboolean eof;
	const gchar *want;
	gsize from; /* where @want is looked for */
} PtyReader;

static gboolean
pty_read_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	PtyReader *r = user_data;
	gchar buf[4096];
	gssize n = read(fd, buf, sizeof(buf));

	if (n <= 0) {
		r->eof = TRUE;
		return G_SOURCE_REMOVE;
	}
	g_string_append_len(r->out, buf, n);
	return G_SOURCE_CONTINUE;
}

static gboolean
pty_has_wanted(gpointer data)
{
	PtyReader *r = data;
	return r->eof || strstr(r->out->str + r->from, r->want) != NULL;
}

static pid_t
spawn_top_on_pty(Fixture *f, const gchar *term, gint *out_master)
{
	g_autofree gchar *cli = vmsup_test_build_path("src", "cli", "vmsup", NULL);
	pid_t pid = forkpty(out_master, NULL, NULL, NULL);

	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		/* plain setenv(): g_setenv() warns in a forked test child */
		setenv("TERM", term, 1);
		setenv("VMSUP_SOCKET", f->socket_path, 1);
		setenv("LANGUAGE", "C", 1);
		/* only an event can bring a second frame within the test's time */
		execl(cli, cli, "top", "--interval", "3600", NULL);
		_exit(127);
	}
	return pid;
}

/*
 * On a terminal: the alternate screen, frames drawn over each other (home,
 * clear to end of line), a new frame soon after an event although the
 * interval is an hour, and the terminal given back on SIGTERM. TERM=dumb
 * gets one plain frame.
 */
static void
test_cli_top_terminal(Fixture *f, gconstpointer data)
{
	g_autoptr(JsonObject) created = NULL;
	PtyReader r = {g_string_new(NULL), FALSE, NULL, 0};
	Child child = {FALSE, 0};
	gint master = -1;
	pid_t pid;

	created = call(f, "vm.create", "{\"name\":\"a\",\"wait\":true}");
	wait_state(f, "a", "defined");
	pid = spawn_top_on_pty(f, "xterm", &master);
	g_child_watch_add(pid, child_exited_cb, &child);
	g_unix_fd_add(master, G_IO_IN | G_IO_HUP | G_IO_ERR, pty_read_cb, &r);
	r.want = "\r\na ";
	vmsup_test_wait_until(pty_has_wanted, &r, TIMEOUT_S);
	g_assert_false(r.eof);
	g_assert_true(g_str_has_prefix(r.out->str, "\033[?1049h\033[?25l\033[H"));
	g_assert_nonnull(strstr(r.out->str, "\033[K\r\n"));
	g_assert_nonnull(strstr(r.out->str, "\033[J"));
	g_assert_null(strstr(r.out->str, "\033[2J"));

	r.from = r.out->len;
	g_clear_pointer(&created, json_object_unref);
	created = call(f, "vm.create", "{\"name\":\"c\",\"wait\":true}");
	r.want = "\r\nc ";
	vmsup_test_wait_until(pty_has_wanted, &r, TIMEOUT_S);
	g_assert_false(r.eof);
	/* the new frame starts at home, over the old one */
	g_assert_nonnull(strstr(r.out->str + r.from, "\033[H"));

	g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
	vmsup_test_wait_flag(&child.done, TIMEOUT_S);
	g_assert_true(WIFEXITED(child.status));
	g_assert_cmpint(WEXITSTATUS(child.status), ==, 0);
	r.want = "\033[?1049l";
	vmsup_test_wait_until(pty_has_wanted, &r, TIMEOUT_S);
	g_assert_true(g_str_has_suffix(r.out->str, "\033[?25h\033[?1049l"));
	close(master);
	g_string_truncate(r.out, 0);
	r.eof = FALSE;
	r.from = 0;

	/* a dumb terminal: one plain frame, and vmsup top ends by itself */
	child.done = FALSE;
	pid = spawn_top_on_pty(f, "dumb", &master);
	g_child_watch_add(pid, child_exited_cb, &child);
	g_unix_fd_add(master, G_IO_IN | G_IO_HUP | G_IO_ERR, pty_read_cb, &r);
	vmsup_test_wait_flag(&child.done, TIMEOUT_S);
	r.want = "\r\nc ";
	vmsup_test_wait_until(pty_has_wanted, &r, TIMEOUT_S);
	g_assert_cmpint(WEXITSTATUS(child.status), ==, 0);
	g_assert_true(g_str_has_prefix(r.out->str, "NAME "));
	g_assert_null(strchr(r.out->str, '\033'));
	close(master);
	g_string_free(r.out, TRUE);
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/journal/rotation", test_rotation);
	g_test_add_func("/journal/torn-line", test_torn_line);
	g_test_add_func("/journal/since", test_since);
	g_test_add_func("/journal/policy-replay", test_policy_replay);
	g_test_add("/journal/replay-across-restart",
		   Fixture,
		   NULL,
		   fixture_setup,
		   test_replay_across_restart,
		   fixture_teardown);
	g_test_add("/journal/since-filter",
		   Fixture,
		   NULL,
		   fixture_setup,
		   test_since_filter,
		   fixture_teardown);
	g_test_add("/cli/top", Fixture, NULL, fixture_setup, test_cli_top, fixture_teardown);
	g_test_add("/cli/events-since",
		   Fixture,
		   NULL,
		   fixture_setup,
		   test_cli_events_since,
		   fixture_teardown);
	g_test_add("/cli/events-follow",
		   Fixture,
		   NULL,
		   fixture_setup,
		   test_cli_events_follow,
		   fixture_teardown);
	g_test_add("/cli/top-terminal",
		   Fixture,
		   NULL,
		   fixture_setup,
		   test_cli_top_terminal,
		   fixture_teardown);
	return g_test_run();
}
