/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * StatsService against real QEMU: the bundled guest under VMService (built
 * from VMService's hooks only, as the daemon wires it), and paused or
 * agent-less QEMUs behind hand-made hooks for the faults. At most two
 * guests run at once.
 */

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-qemu-process.h"
#include "vmsup-stats-sampler.h"
#include "vmsup-stats-service.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-service.h"

#define GUEST_MEMORY_MIB 192
/* boot plus agent under TCG, with room for a loaded machine */
#define GUEST_BOOT_TIMEOUT_S 90
#define CALL_TIMEOUT_S 30

/* --- never leave a QEMU behind, even when an assertion aborts ------------ */

static GPid registered_pids[8];

static void
abort_handler(int signum)
{
	for (guint i = 0; i < G_N_ELEMENTS(registered_pids); i++) {
		if (registered_pids[i] > 0)
			kill(registered_pids[i], SIGKILL);
	}
	signal(signum, SIG_DFL);
	raise(signum);
}

static void
register_pid(GPid pid)
{
	for (guint i = 0; i < G_N_ELEMENTS(registered_pids); i++) {
		if (registered_pids[i] == 0) {
			registered_pids[i] = pid;
			return;
		}
	}
	g_assert_not_reached();
}

static void
unregister_pid(GPid pid)
{
	for (guint i = 0; i < G_N_ELEMENTS(registered_pids); i++) {
		if (registered_pids[i] == pid)
			registered_pids[i] = 0;
	}
}

/* --- calling the services -------------------------------------------------- */

typedef void (*StatsAsyncFunc)(VmsupStatsService *self,
			       const VmsupCaller *caller,
			       JsonObject *params,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
typedef JsonObject *(*StatsFinishFunc)(VmsupStatsService *self, GAsyncResult *res, GError **error);
typedef void (*VmAsyncFunc)(VmsupVmService *self,
			    const VmsupCaller *caller,
			    JsonObject *params,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data);

static JsonObject *
call_stats(VmsupStatsService *stats,
	   StatsAsyncFunc async,
	   StatsFinishFunc finish,
	   JsonObject *params,
	   GError **error)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	async(stats, vmsup_caller_daemon(), params, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	return finish(stats, res, error);
}

#define STATS_CALL(stats, verb, params, error)                                                     \
	call_stats((stats),                                                                        \
		   vmsup_stats_service_##verb##_async,                                             \
		   vmsup_stats_service_##verb##_finish,                                            \
		   (params),                                                                       \
		   (error))

static JsonObject *
call_vm(VmsupVmService *svc,
	VmAsyncFunc async,
	VmsupVmServiceFinishFunc finish,
	JsonObject *params,
	guint timeout_s,
	GError **error)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	async(svc, vmsup_caller_daemon(), params, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, timeout_s);
	return finish(svc, res, error);
}

static JsonObject *
params_name(const gchar *name)
{
	JsonObject *params = json_object_new();
	json_object_set_string_member(params, "name", name);
	return params;
}

static JsonObject *
stats_of(VmsupStatsService *stats, const gchar *verb_name, const gchar *name)
{
	g_autoptr(JsonObject) params = params_name(name);
	g_autoptr(GError) error = NULL;
	JsonObject *result = NULL;

	if (g_strcmp0(verb_name, "stats") == 0)
		result = STATS_CALL(stats, stats, params, &error);
	else if (g_strcmp0(verb_name, "health") == 0)
		result = STATS_CALL(stats, health, params, &error);
	else if (g_strcmp0(verb_name, "ping") == 0)
		result = STATS_CALL(stats, ping, params, &error);
	else if (g_strcmp0(verb_name, "ports") == 0)
		result = STATS_CALL(stats, ports, params, &error);
	g_assert_no_error(error);
	g_assert_nonnull(result);
	return result;
}

static JsonObject *
exec_in(VmsupStatsService *stats, const gchar *name, const gchar *script, const gchar *stdin_data)
{
	g_autoptr(JsonObject) params = params_name(name);
	g_autoptr(JsonArray) argv = json_array_new();
	g_autoptr(GError) error = NULL;
	JsonObject *result;

	json_array_add_string_element(argv, "/bin/sh");
	json_array_add_string_element(argv, "-c");
	json_array_add_string_element(argv, script);
	json_object_set_array_member(params, "argv", g_steal_pointer(&argv));
	if (stdin_data != NULL)
		json_object_set_string_member(params, "stdin", stdin_data);
	result = STATS_CALL(stats, exec, params, &error);
	g_assert_no_error(error);
	g_assert_nonnull(result);
	return result;
}

/* --- the bundled guest under VMService ------------------------------------- */

typedef struct {
	gchar *tmpdir;
	VmsupVmService *vm_service;
	VmsupStatsService *stats;
	GPtrArray *names;    /* VMs to stop at teardown */
	GHashTable *changes; /* name -> number of "stats-changed" */
} GuestFixture;

static void
guest_vm_changed_cb(VmsupVmService *svc, const gchar *name, JsonObject *vm, GuestFixture *fx)
{
	/* what the daemon's wiring does */
	vmsup_stats_service_track_vm(
	    fx->stats,
	    name,
	    json_object_get_boolean_member_with_default(vm, "auto_stop", TRUE));
}

static void
guest_vm_removed_cb(VmsupVmService *svc, const gchar *name, GuestFixture *fx)
{
	vmsup_stats_service_untrack_vm(fx->stats, name);
}

static void
guest_stats_changed_cb(VmsupStatsService *stats,
		       const gchar *name,
		       JsonObject *result,
		       GuestFixture *fx)
{
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(fx->changes, name));
	g_assert_true(json_object_has_member(result, "rss_bytes"));
	g_hash_table_insert(fx->changes, g_strdup(name), GUINT_TO_POINTER(n + 1));
}

static void
guest_setup(GuestFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *state = NULL;
	g_autofree gchar *run = NULL;
	g_autofree gchar *qemu = vmsup_test_require_qemu();
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	fx->tmpdir = vmsup_test_make_tmpdir();
	state = g_build_filename(fx->tmpdir, "state", NULL);
	run = g_build_filename(fx->tmpdir, "run", NULL);
	fx->names = g_ptr_array_new_with_free_func(g_free);
	fx->changes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	/* this kind of machine cannot run a guest under KVM: no probe, TCG */
	fx->vm_service = vmsup_vm_service_new(state, run, qemu, VMSUP_ACCEL_TCG);
	/* only the hooks, as the daemon's wiring passes them */
	fx->stats = vmsup_stats_service_new(vmsup_vm_service_get_hooks(fx->vm_service));
	g_assert_true(vmsup_vm_hooks_is_complete(vmsup_stats_service_get_hooks(fx->stats)));
	g_signal_connect(fx->vm_service, "vm-changed", G_CALLBACK(guest_vm_changed_cb), fx);
	g_signal_connect(fx->vm_service, "vm-removed", G_CALLBACK(guest_vm_removed_cb), fx);
	g_signal_connect(fx->stats, "stats-changed", G_CALLBACK(guest_stats_changed_cb), fx);
	/*
	 * every probe answers here (httpd, or nc echoing garbage): a long
	 * timeout only lets a sanitizer build with slow unwinding finish its
	 * in-process HTTP and TLS work, which takes seconds there
	 */
	vmsup_stats_service_set_probe_timeout(fx->stats, 30000);

	vmsup_vm_service_load_async(fx->vm_service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 60);
	g_assert_true(vmsup_vm_service_load_finish(fx->vm_service, res, &error));
	g_assert_no_error(error);
}

static GPid
guest_pid(GuestFixture *fx, const gchar *name)
{
	g_autoptr(VmsupVmHandles) handles =
	    vmsup_vm_hooks_vm_handles(vmsup_vm_service_get_hooks(fx->vm_service), name);
	if (handles == NULL)
		return 0;
	return vmsup_qemu_process_get_pid(handles->process);
}

static gboolean
guest_is_alive(GuestFixture *fx, const gchar *name)
{
	return vmsup_vm_hooks_vm_alive(vmsup_vm_service_get_hooks(fx->vm_service), name);
}

typedef struct {
	GuestFixture *fx;
	const gchar *name;
	gboolean ok;
} AgentWait;

static void
guest_health_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AgentWait *wait = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) health =
	    vmsup_stats_service_health_finish(VMSUP_STATS_SERVICE(source), res, &error);
	g_assert_no_error(error);
	if (g_strcmp0(vmsup_json_object_get_string(health, "status", NULL), "ok") == 0) {
		wait->ok = TRUE;
		return;
	}
	/* the agent comes up last: ask again (each health is bounded by its timeouts) */
	{
		g_autoptr(JsonObject) params = params_name(wait->name);
		vmsup_stats_service_health_async(wait->fx->stats,
						 vmsup_caller_daemon(),
						 params,
						 NULL,
						 guest_health_cb,
						 wait);
	}
}

/* creates and starts the bundled guest and waits until its agent answers */
static void
guest_start(GuestFixture *fx, const gchar *name, JsonObject *extra)
{
	g_autoptr(JsonObject) params = params_name(name);
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonObject) health_params = params_name(name);
	g_autoptr(GError) error = NULL;
	AgentWait wait = {fx, name, FALSE};
	gint64 start = g_get_monotonic_time();

	json_object_set_int_member(params, "memory_mib", GUEST_MEMORY_MIB);
	json_object_set_boolean_member(params, "start", TRUE);
	json_object_set_boolean_member(params, "wait", TRUE);
	if (extra != NULL) {
		JsonObjectIter iter;
		const gchar *member;
		JsonNode *node;
		json_object_iter_init(&iter, extra);
		while (json_object_iter_next(&iter, &member, &node))
			json_object_set_member(params, member, json_node_copy(node));
	}
	result = call_vm(fx->vm_service,
			 vmsup_vm_service_create_async,
			 vmsup_vm_service_create_finish,
			 params,
			 GUEST_BOOT_TIMEOUT_S,
			 &error);
	g_assert_no_error(error);
	g_assert_nonnull(result);
	g_ptr_array_add(fx->names, g_strdup(name));
	g_assert_true(guest_is_alive(fx, name));
	register_pid(guest_pid(fx, name));

	vmsup_stats_service_health_async(fx->stats,
					 vmsup_caller_daemon(),
					 health_params,
					 NULL,
					 guest_health_cb,
					 &wait);
	vmsup_test_wait_flag(&wait.ok, GUEST_BOOT_TIMEOUT_S);
	g_test_message("VM '%s': start to agent answering: %.1f s",
		       name,
		       (gdouble)(g_get_monotonic_time() - start) / G_USEC_PER_SEC);
}

static void
guest_teardown(GuestFixture *fx, gconstpointer user_data)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) pids = g_array_new(FALSE, FALSE, sizeof(GPid));

	for (guint i = 0; i < fx->names->len; i++) {
		GPid pid = guest_pid(fx, g_ptr_array_index(fx->names, i));
		if (pid > 0)
			g_array_append_val(pids, pid);
	}
	vmsup_vm_service_stop_all_async(fx->vm_service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 60);
	g_assert_true(vmsup_vm_service_stop_all_finish(fx->vm_service, res, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < fx->names->len; i++)
		g_assert_false(guest_is_alive(fx, g_ptr_array_index(fx->names, i)));
	for (guint i = 0; i < pids->len; i++) {
		GPid pid = g_array_index(pids, GPid, i);
		/* reaped: the pid is gone */
		g_assert_cmpint(kill(pid, 0), !=, 0);
		unregister_pid(pid);
	}
	g_clear_object(&fx->stats);
	g_clear_object(&fx->vm_service);
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(fx->tmpdir);
	g_free(fx->tmpdir);
	g_ptr_array_unref(fx->names);
	g_hash_table_unref(fx->changes);
}

static gint64
get_int(JsonObject *obj, const gchar *member)
{
	JsonNode *node = json_object_get_member(obj, member);
	g_assert_nonnull(node);
	g_assert_true(JSON_NODE_HOLDS_VALUE(node));
	g_assert_true(json_node_get_value_type(node) == G_TYPE_INT64);
	return json_node_get_int(node);
}

static gdouble
get_number(JsonObject *obj, const gchar *member)
{
	JsonNode *node = json_object_get_member(obj, member);
	g_assert_nonnull(node);
	g_assert_true(JSON_NODE_HOLDS_VALUE(node));
	if (json_node_get_value_type(node) == G_TYPE_INT64)
		return (gdouble)json_node_get_int(node);
	g_assert_true(json_node_get_value_type(node) == G_TYPE_DOUBLE);
	return json_node_get_double(node);
}

static void
assert_null_member(JsonObject *obj, const gchar *member)
{
	g_assert_true(json_object_has_member(obj, member));
	g_assert_true(JSON_NODE_HOLDS_NULL(json_object_get_member(obj, member)));
}

typedef struct {
	VmsupStatsService *stats;
	const gchar *name;
	gdouble above; /* wait for cpu_percent above this, or below when negative */
	gdouble last;
} CpuWait;

static gboolean
cpu_reached(gpointer user_data)
{
	CpuWait *wait = user_data;
	g_autoptr(JsonObject) stats = stats_of(wait->stats, "stats", wait->name);
	wait->last = get_number(stats, "cpu_percent");
	return wait->above >= 0 ? wait->last > wait->above : wait->last < -wait->above;
}

typedef struct {
	VmsupStatsService *stats;
	const gchar *name;
	JsonObject *last; /* owned: the last pgrep's result */
} SleepersWait;

/* no process of the timed-out command is left in the guest */
static gboolean
sleepers_gone(gpointer user_data)
{
	SleepersWait *wait = user_data;

	g_clear_pointer(&wait->last, json_object_unref);
	wait->last = exec_in(wait->stats, wait->name, "ps | grep 'sleep 29[78]'", NULL);
	return get_int(wait->last, "exit_code") != 0;
}

/* health, ping, exec and stats of one guest; a busy loop raises cpu_percent */
static void
test_guest_basics(GuestFixture *fx, gconstpointer user_data)
{
	const gchar *name = "basics";
	g_autoptr(JsonObject) health = NULL;
	g_autoptr(JsonObject) ping = NULL;
	g_autoptr(JsonObject) out = NULL;
	g_autoptr(JsonObject) cat = NULL;
	g_autoptr(JsonObject) stats = NULL;
	g_autoptr(JsonObject) activity = NULL;
	g_autoptr(JsonObject) loop = NULL;
	g_autoptr(JsonObject) killed = NULL;
	g_autoptr(JsonObject) bad_params = params_name(name);
	g_autoptr(JsonArray) bad_argv = json_array_new();
	g_autoptr(JsonObject) bad = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *kill_cmd = NULL;
	g_autoptr(JsonObject) slow_params = params_name(name);
	g_autoptr(JsonArray) slow_argv = json_array_new();
	g_autoptr(JsonObject) slow = NULL;
	CpuWait busy = {fx->stats, name, 40.0, -1};
	CpuWait calm = {fx->stats, name, -20.0, -1};
	SleepersWait gone = {fx->stats, name, NULL};
	gint64 start;
	gint64 first_us;
	gint64 cached_us;

	guest_start(fx, name, NULL);

	health = stats_of(fx->stats, "health", name);
	g_assert_cmpstr(vmsup_json_object_get_string(health, "status", NULL), ==, "ok");
	g_assert_true(json_object_get_boolean_member(health, "process"));
	g_assert_true(json_object_get_boolean_member(health, "qmp"));
	g_assert_true(json_object_get_boolean_member(health, "agent"));
	g_assert_cmpfloat(get_number(health, "agent_rtt_ms"), >, 0);
	g_assert_cmpfloat(get_number(health, "agent_rtt_ms"), <, 2000);
	g_assert_nonnull(strstr(vmsup_json_object_get_string(health, "detail", ""), "alive"));

	ping = stats_of(fx->stats, "ping", name);
	g_assert_cmpfloat(get_number(ping, "rtt_ms"), >, 0);
	g_assert_cmpfloat(get_number(ping, "rtt_ms"), <, 2000);

	/* the first stats: no cache, no earlier sample; the second comes from the cache */
	start = g_get_monotonic_time();
	stats = stats_of(fx->stats, "stats", name);
	first_us = g_get_monotonic_time() - start;
	start = g_get_monotonic_time();
	{
		g_autoptr(JsonObject) cached = stats_of(fx->stats, "stats", name);
		cached_us = g_get_monotonic_time() - start;
		g_assert_cmpstr(vmsup_json_object_get_string(cached, "sampled_at", NULL),
				==,
				vmsup_json_object_get_string(stats, "sampled_at", NULL));
	}
	g_test_message("vm.stats: first %.1f ms, from the cache %.2f ms",
		       first_us / 1000.0,
		       cached_us / 1000.0);
	g_assert_cmpint(cached_us, <, 100 * 1000);
	{
		g_autoptr(JsonObject) cached =
		    vmsup_stats_service_get_cached_stats(fx->stats, name);
		g_assert_nonnull(cached);
		g_assert_cmpint(get_int(cached, "memory_mib"), ==, GUEST_MEMORY_MIB);
	}

	/* none of health, ping and stats counts as activity */
	activity = vmsup_stats_service_describe_activity(fx->stats, name);
	g_assert_nonnull(activity);
	g_assert_nonnull(vmsup_json_object_get_string(activity, "last_active", NULL));
	g_assert_cmpint(get_int(activity, "idle_s"), >=, 0);
	g_assert_cmpstr(vmsup_json_object_get_string(activity, "active_reason", ""),
			!=,
			"vm.health");
	g_assert_cmpstr(vmsup_json_object_get_string(activity, "active_reason", ""), !=, "vm.ping");
	g_assert_cmpstr(vmsup_json_object_get_string(activity, "active_reason", ""),
			!=,
			"vm.stats");

	/* stats: what is known is sane, what is not is null */
	g_assert_cmpstr(vmsup_json_object_get_string(stats, "state", NULL), ==, "running");
	g_assert_cmpint(get_int(stats, "rss_bytes"), >, 32 * 1024 * 1024);
	g_assert_cmpint(get_int(stats, "memory_mib"), ==, GUEST_MEMORY_MIB);
	g_assert_cmpfloat(get_number(stats, "uptime_s"), >, 0);
	g_assert_cmpfloat(get_number(stats, "cpu_percent"), >=, 0);
	/* the bundled guest has no disk */
	assert_null_member(stats, "block_read_bytes");
	assert_null_member(stats, "block_write_bytes");
	/* DHCP alone moved bytes over eth0 */
	g_assert_cmpint(get_int(stats, "net_rx_bytes"), >, 0);
	g_assert_cmpint(get_int(stats, "net_tx_bytes"), >, 0);
	g_assert_true(g_str_has_suffix(vmsup_json_object_get_string(stats, "sampled_at", ""), "Z"));

	/* exec: exit code, stdout, stderr, stdin; and it is activity */
	start = g_get_monotonic_time();
	out = exec_in(fx->stats, name, "echo out; echo err >&2; exit 3", NULL);
	g_assert_cmpint(get_int(out, "exit_code"), ==, 3);
	g_assert_cmpstr(vmsup_json_object_get_string(out, "stdout", NULL), ==, "out\n");
	g_assert_cmpstr(vmsup_json_object_get_string(out, "stderr", NULL), ==, "err\n");
	g_clear_pointer(&activity, json_object_unref);
	activity = vmsup_stats_service_describe_activity(fx->stats, name);
	g_assert_cmpstr(vmsup_json_object_get_string(activity, "active_reason", NULL),
			==,
			"vm.exec");
	/* marked when the exec began */
	g_assert_cmpint(get_int(activity, "idle_s"),
			<=,
			(g_get_monotonic_time() - start) / G_USEC_PER_SEC + 1);
	cat = exec_in(fx->stats, name, "tr a-z A-Z", "hello guest\n");
	g_assert_cmpint(get_int(cat, "exit_code"), ==, 0);
	g_assert_cmpstr(vmsup_json_object_get_string(cat, "stdout", NULL), ==, "HELLO GUEST\n");

	/* a program that does not exist is an error, not a hang */
	json_array_add_string_element(bad_argv, "/nonexistent/program");
	json_object_set_array_member(bad_params, "argv", g_steal_pointer(&bad_argv));
	bad = STATS_CALL(fx->stats, exec, bad_params, &error);
	if (bad != NULL)
		g_assert_cmpint(get_int(bad, "exit_code"), !=, 0);
	else
		g_assert_true(error->domain == VMSUP_ERROR);
	g_clear_error(&error);

	/* a busy loop in the guest, bounded by its own timeout, raises cpu_percent */
	loop = exec_in(fx->stats,
		       name,
		       "timeout 120 sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 & "
		       "echo $!",
		       NULL);
	g_assert_cmpint(get_int(loop, "exit_code"), ==, 0);
	vmsup_test_wait_until(cpu_reached, &busy, 30);
	g_test_message("busy guest: cpu_percent %.1f", busy.last);
	kill_cmd =
	    g_strdup_printf("kill %s",
			    g_strstrip((gchar *)vmsup_json_object_get_string(loop, "stdout", "")));
	killed = exec_in(fx->stats, name, kill_cmd, NULL);
	g_assert_cmpint(get_int(killed, "exit_code"), ==, 0);
	vmsup_test_wait_until(cpu_reached, &calm, 30);
	g_test_message("calm guest: cpu_percent %.1f", calm.last);

	/* a command that outlives its timeout is killed in the guest, with its children */
	json_array_add_string_element(slow_argv, "/bin/sh");
	json_array_add_string_element(slow_argv, "-c");
	json_array_add_string_element(slow_argv, "sleep 297 & exec sleep 298");
	json_object_set_array_member(slow_params, "argv", g_steal_pointer(&slow_argv));
	json_object_set_int_member(slow_params, "timeout_s", 1);
	slow = STATS_CALL(fx->stats, exec, slow_params, &error);
	g_assert_null(slow);
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "was killed"));
	g_clear_error(&error);
	vmsup_test_wait_until(sleepers_gone, &gone, 30);
	g_assert_cmpint(get_int(gone.last, "exit_code"), ==, 1);
	g_clear_pointer(&gone.last, json_object_unref);
}

/* --- ports ------------------------------------------------------------------ */

static JsonObject *
find_guest_port(JsonObject *ports, gint64 port)
{
	JsonArray *array = json_object_get_array_member(ports, "ports");
	g_assert_nonnull(array);
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonObject *obj = json_array_get_object_element(array, i);
		if (get_int(obj, "guest_port") == port)
			return obj;
	}
	return NULL;
}

static guint
http_get_status(const gchar *url, gsize *out_len)
{
	g_autoptr(SoupSession) session = soup_session_new();
	g_autoptr(SoupMessage) msg = soup_message_new("GET", url);
	g_autoptr(GBytes) body = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	soup_session_set_proxy_resolver(session, NULL);
	soup_session_send_and_read_async(session,
					 msg,
					 G_PRIORITY_DEFAULT,
					 NULL,
					 vmsup_test_store_result_cb,
					 &slot);
	res = vmsup_test_wait_result(&slot, 20);
	body = soup_session_send_and_read_finish(session, res, &error);
	g_assert_no_error(error);
	*out_len = g_bytes_get_size(body);
	return soup_message_get_status(msg);
}

static void
assert_web_port(JsonObject *port, guint16 *out_host_port)
{
	g_autofree gchar *expected_url = NULL;
	gsize len = 0;

	g_assert_nonnull(port);
	g_assert_cmpstr(vmsup_json_object_get_string(port, "proto", NULL), ==, "tcp");
	g_assert_cmpstr(vmsup_json_object_get_string(port, "host_address", NULL), ==, "127.0.0.1");
	*out_host_port = (guint16)get_int(port, "host_port");
	g_assert_cmpuint(*out_host_port, >, 0);
	g_assert_true(json_object_get_boolean_member(port, "web"));
	g_assert_cmpstr(vmsup_json_object_get_string(port, "scheme", NULL), ==, "http");
	expected_url = g_strdup_printf("http://127.0.0.1:%u/", *out_host_port);
	g_assert_cmpstr(vmsup_json_object_get_string(port, "url", NULL), ==, expected_url);
	/* the url answers from the host */
	g_assert_cmpuint(http_get_status(expected_url, &len), ==, 200);
	g_assert_cmpuint(len, >, 0);
}

/* httpd found and forwarded (reused or added), a non-HTTP listener is not web */
static void
test_guest_ports(GuestFixture *fx, gconstpointer user_data)
{
	g_autoptr(JsonObject) extra = json_object_new();
	g_autoptr(JsonArray) forward = json_array_new();
	g_autoptr(JsonObject) ports_a = NULL;
	g_autoptr(JsonObject) again = NULL;
	g_autoptr(JsonObject) ports_b = NULL;
	g_autoptr(JsonObject) nc = NULL;
	g_autoptr(JsonObject) activity = NULL;
	JsonObject *port;
	guint16 web_a = 0;
	guint16 web_b = 0;
	guint16 again_port = 0;
	gint64 nc_port;
	gint64 start;

	/* "a" is started with a forward to port 80, "b" gets one on demand */
	json_array_add_int_element(forward, 80);
	json_object_set_array_member(extra, "forward", g_steal_pointer(&forward));
	guest_start(fx, "ports-a", extra);
	guest_start(fx, "ports-b", NULL);

	/* a listener that does not speak HTTP, from busybox nc (echoes what it gets) */
	nc = exec_in(fx->stats,
		     "ports-a",
		     "nc -ll -p 7777 -e /bin/cat </dev/null >/dev/null 2>&1 & "
		     "i=0; while ! grep -q ':1E61 ' /proc/net/tcp6 /proc/net/tcp && [ $i -lt 50 ]; "
		     "do sleep 0.1; i=$((i+1)); done; echo $i",
		     NULL);
	g_assert_cmpint(get_int(nc, "exit_code"), ==, 0);

	start = g_get_monotonic_time();
	ports_a = stats_of(fx->stats, "ports", "ports-a");
	g_test_message("vm.ports (2 listeners, 1 forward added): %.0f ms",
		       (g_get_monotonic_time() - start) / 1000.0);
	activity = vmsup_stats_service_describe_activity(fx->stats, "ports-a");
	g_assert_cmpstr(vmsup_json_object_get_string(activity, "active_reason", NULL),
			==,
			"vm.ports");

	port = find_guest_port(ports_a, 80);
	assert_web_port(port, &web_a);
	port = find_guest_port(ports_a, 7777);
	g_assert_nonnull(port);
	g_assert_false(json_object_get_boolean_member(port, "web"));
	assert_null_member(port, "scheme");
	g_assert_false(json_object_has_member(port, "url"));
	nc_port = get_int(port, "host_port");
	g_assert_cmpint(nc_port, >, 0);
	g_assert_cmpint(nc_port, !=, web_a);
	/* busybox binds [::]: the IPv6 twin is the only row, reported once */
	g_assert_cmpstr(vmsup_json_object_get_string(port, "guest_address", NULL), ==, "::");

	/* asked again: the same forwards, none added */
	again = stats_of(fx->stats, "ports", "ports-a");
	assert_web_port(find_guest_port(again, 80), &again_port);
	g_assert_cmpuint(again_port, ==, web_a);
	g_assert_cmpint(get_int(find_guest_port(again, 7777), "host_port"), ==, nc_port);

	/* the other VM's forward never collides */
	ports_b = stats_of(fx->stats, "ports", "ports-b");
	assert_web_port(find_guest_port(ports_b, 80), &web_b);
	g_assert_cmpuint(web_b, !=, web_a);
	g_assert_cmpuint(web_b, !=, nc_port);
	g_assert_null(find_guest_port(ports_b, 7777));
}

/* --- the poller ----------------------------------------------------------- */

static gboolean
deadline_passed(gpointer user_data)
{
	return g_get_monotonic_time() >= *(gint64 *)user_data;
}

/* one VM whose agent never answers does not slow the poll of another */
static void
test_guest_poller(GuestFixture *fx, gconstpointer user_data)
{
	g_autoptr(JsonObject) extra = json_object_new();
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonObject) health = NULL;
	g_autoptr(JsonObject) cached = NULL;
	g_autoptr(GError) error = NULL;
	guint fast;
	guint slow;
	gint64 deadline;

	guest_start(fx, "fast", NULL);
	/* the bundled kernel with a PID 1 that only sleeps: no agent ever */
	params = params_name("slow");
	json_object_set_int_member(params, "memory_mib", GUEST_MEMORY_MIB);
	json_object_set_string_member(params,
				      "cmdline",
				      "console=ttyS0 quiet panic=-1 rdinit=/bin/sleep -- 100000");
	json_object_set_boolean_member(params, "start", TRUE);
	json_object_set_boolean_member(params, "wait", TRUE);
	result = call_vm(fx->vm_service,
			 vmsup_vm_service_create_async,
			 vmsup_vm_service_create_finish,
			 params,
			 GUEST_BOOT_TIMEOUT_S,
			 &error);
	g_assert_no_error(error);
	g_ptr_array_add(fx->names, g_strdup("slow"));
	register_pid(guest_pid(fx, "slow"));

	health = stats_of(fx->stats, "health", "slow");
	g_assert_cmpstr(vmsup_json_object_get_string(health, "status", NULL), ==, "degraded");
	g_assert_false(json_object_get_boolean_member(health, "agent"));
	g_assert_true(json_object_get_boolean_member(health, "qmp"));

	g_hash_table_remove_all(fx->changes);
	vmsup_stats_service_set_poll_interval(fx->stats, 1);
	deadline = g_get_monotonic_time() + 8 * G_USEC_PER_SEC;
	vmsup_test_wait_until(deadline_passed, &deadline, 20);
	vmsup_stats_service_set_poll_interval(fx->stats, 0);
	fast = GPOINTER_TO_UINT(g_hash_table_lookup(fx->changes, "fast"));
	slow = GPOINTER_TO_UINT(g_hash_table_lookup(fx->changes, "slow"));
	g_test_message("in 8 s at 1 s: fast VM sampled %u times, slow agent VM %u times",
		       fast,
		       slow);
	/*
	 * every tick for both: no guest program ever opened the slow one's agent
	 * port, so its refresh does not wait for the agent's timeout
	 */
	g_assert_cmpuint(fast, >=, 6);
	g_assert_cmpuint(slow, >=, 6);

	/* the slow VM's stats: the agent's part is unknown, the rest is there */
	cached = vmsup_stats_service_get_cached_stats(fx->stats, "slow");
	g_assert_nonnull(cached);
	assert_null_member(cached, "net_rx_bytes");
	assert_null_member(cached, "net_tx_bytes");
	g_assert_cmpint(get_int(cached, "rss_bytes"), >, 0);
	g_assert_cmpint(get_int(cached, "memory_mib"), ==, GUEST_MEMORY_MIB);

	/* its PID 1 ignores the power button: no need to wait for that */
	g_clear_pointer(&params, json_object_unref);
	g_clear_pointer(&result, json_object_unref);
	params = params_name("slow");
	json_object_set_boolean_member(params, "force", TRUE);
	result = call_vm(fx->vm_service,
			 vmsup_vm_service_stop_async,
			 vmsup_vm_service_stop_finish,
			 params,
			 30,
			 &error);
	g_assert_no_error(error);
	g_assert_false(guest_is_alive(fx, "slow"));
}

/* --- the stale sweep --------------------------------------------------------- */

typedef struct {
	GuestFixture *fx;
	const gchar *name;
	gint64 deadline;
} StopWait;

static gboolean
guest_stopped(gpointer user_data)
{
	StopWait *wait = user_data;
	return !guest_is_alive(wait->fx, wait->name);
}

static gboolean
deadline_or_stopped(gpointer user_data)
{
	StopWait *wait = user_data;
	return !guest_is_alive(wait->fx, wait->name) || g_get_monotonic_time() >= wait->deadline;
}

/* HTTP requests from the host through a forward, as a user of the guest's web page would */
typedef struct {
	SoupSession *session;
	gchar *url;
	guint sent;
	guint answered;
} TrafficLoad;

static void
traffic_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TrafficLoad *load = user_data;
	g_autoptr(GBytes) body = soup_session_send_and_read_finish(SOUP_SESSION(source), res, NULL);
	if (body != NULL)
		load->answered++;
}

static gboolean
traffic_tick_cb(gpointer user_data)
{
	TrafficLoad *load = user_data;
	g_autoptr(SoupMessage) msg = soup_message_new("GET", load->url);
	load->sent++;
	soup_session_send_and_read_async(load->session,
					 msg,
					 G_PRIORITY_DEFAULT,
					 NULL,
					 traffic_done_cb,
					 load);
	return G_SOURCE_CONTINUE;
}

static void
test_guest_stale(GuestFixture *fx, gconstpointer user_data)
{
	g_autoptr(JsonObject) keep_extra = json_object_new();
	g_autoptr(JsonObject) busy_extra = json_object_new();
	g_autoptr(JsonArray) forward = json_array_new();
	g_autoptr(JsonObject) loop = NULL;
	g_autoptr(JsonObject) killed = NULL;
	g_autoptr(JsonObject) activity = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	g_autofree gchar *kill_cmd = NULL;
	StopWait busy_wait = {fx, "busy", 0};
	TrafficLoad load = {NULL, NULL, 0, 0};
	guint traffic_id;
	gint64 stop_asked;

	json_object_set_boolean_member(keep_extra, "auto_stop", FALSE);
	guest_start(fx, "keep", keep_extra);
	json_array_add_int_element(forward, 80);
	json_object_set_array_member(busy_extra, "forward", g_steal_pointer(&forward));
	guest_start(fx, "busy", busy_extra);
	loop = exec_in(fx->stats,
		       "busy",
		       "timeout 120 sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 & "
		       "echo $!",
		       NULL);
	g_assert_cmpint(get_int(loop, "exit_code"), ==, 0);

	/* the sweep only looks at what the poller and the sweep itself sample */
	vmsup_stats_service_set_poll_interval(fx->stats, 1);
	vmsup_stats_service_set_auto_stop_after(fx->stats, 3);

	/* a busy VM is never stale: three times the limit and it still runs */
	busy_wait.deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	vmsup_test_wait_until(deadline_or_stopped, &busy_wait, 30);
	g_assert_true(guest_is_alive(fx, "busy"));
	g_assert_true(guest_is_alive(fx, "keep"));
	activity = vmsup_stats_service_describe_activity(fx->stats, "busy");
	g_assert_cmpstr(vmsup_json_object_get_string(activity, "active_reason", NULL),
			==,
			"guest-cpu");
	g_assert_cmpint(get_int(activity, "idle_s"), <, 3);

	/* the loop ends, but web traffic through the forward keeps the VM in use */
	handles = vmsup_vm_hooks_vm_handles(vmsup_vm_service_get_hooks(fx->vm_service), "busy");
	g_assert_nonnull(handles);
	g_assert_nonnull(handles->forwards);
	/* the web port it asked for, then the bundled guest's SSH server */
	g_assert_cmpuint(handles->forwards->len, ==, 2);
	g_assert_cmpuint(g_array_index(handles->forwards, VmsupQemuForward, 0).guest_port, ==, 80);
	g_assert_cmpuint(g_array_index(handles->forwards, VmsupQemuForward, 1).guest_port, ==, 22);
	load.url = g_strdup_printf("http://127.0.0.1:%u/",
				   g_array_index(handles->forwards, VmsupQemuForward, 0).host_port);
	load.session = soup_session_new();
	soup_session_set_proxy_resolver(load.session, NULL);
	kill_cmd =
	    g_strdup_printf("kill %s",
			    g_strstrip((gchar *)vmsup_json_object_get_string(loop, "stdout", "")));
	killed = exec_in(fx->stats, "busy", kill_cmd, NULL);
	g_assert_cmpint(get_int(killed, "exit_code"), ==, 0);
	traffic_id = g_timeout_add(1000, traffic_tick_cb, &load);
	busy_wait.deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	vmsup_test_wait_until(deadline_or_stopped, &busy_wait, 30);
	g_source_remove(traffic_id);
	g_assert_true(guest_is_alive(fx, "busy"));
	g_assert_cmpuint(load.answered, >=, 5);
	g_clear_pointer(&activity, json_object_unref);
	activity = vmsup_stats_service_describe_activity(fx->stats, "busy");
	g_assert_cmpstr(vmsup_json_object_get_string(activity, "active_reason", NULL),
			==,
			"network");
	g_assert_cmpint(get_int(activity, "idle_s"), <, 3);

	/* no more traffic: idle, and stopped within the limit plus a few sweeps */
	stop_asked = g_get_monotonic_time();
	vmsup_test_wait_until(guest_stopped, &busy_wait, 40);
	g_test_message("idle VM stopped %.1f s after its last activity",
		       (g_get_monotonic_time() - stop_asked) / (gdouble)G_USEC_PER_SEC);
	vm = vmsup_vm_service_lookup(fx->vm_service, "busy");
	g_assert_nonnull(vm);
	g_assert_cmpstr(vmsup_json_object_get_string(vm, "state", NULL), ==, "stopped");
	g_clear_pointer(&activity, json_object_unref);
	activity = vmsup_stats_service_describe_activity(fx->stats, "busy");
	g_assert_nonnull(activity);
	g_assert_cmpint(get_int(activity, "idle_s"), >=, 3);
	g_assert_false(json_object_has_member(activity, "auto_stop_in_s"));

	/* auto_stop=false: idle all along, never touched */
	g_assert_true(guest_is_alive(fx, "keep"));
	g_clear_pointer(&activity, json_object_unref);
	activity = vmsup_stats_service_describe_activity(fx->stats, "keep");
	g_assert_cmpint(get_int(activity, "idle_s"), >=, 3);
	g_assert_false(json_object_has_member(activity, "auto_stop_in_s"));
	vmsup_stats_service_set_auto_stop_after(fx->stats, 0);
	vmsup_stats_service_set_poll_interval(fx->stats, 0);
	vmsup_test_drain_main_context();
	g_object_unref(load.session);
	g_free(load.url);
}

/* --- faults, behind hand-made hooks ------------------------------------------ */

typedef struct {
	gchar *tmpdir;
	VmsupVmHooks hooks;
	GHashTable *vms; /* name -> VmsupVmHandles */
	VmsupStatsService *stats;
	GSocketService *garbage; /* a fake agent that answers garbage */
	GPtrArray *garbage_conns;
	guint locks;
	guint unlocks;
	GHashTable *stop_reasons; /* name -> the reason the last note_stop gave */
} FaultFixture;

static gboolean
fake_vm_alive_hook(const gchar *name, FaultFixture *fx)
{
	VmsupVmHandles *handles = g_hash_table_lookup(fx->vms, name);
	return handles != NULL && vmsup_qemu_process_is_running(handles->process);
}

static VmsupVmHandles *
fake_vm_handles_hook(const gchar *name, FaultFixture *fx)
{
	VmsupVmHandles *handles = g_hash_table_lookup(fx->vms, name);
	if (handles == NULL || !vmsup_qemu_process_is_running(handles->process))
		return NULL;
	return vmsup_vm_handles_ref(handles);
}

static void
fake_lock_vm_hook(const gchar *name,
		  GCancellable *cancellable,
		  GAsyncReadyCallback callback,
		  gpointer user_data,
		  FaultFixture *fx)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	fx->locks++;
	g_task_return_boolean(task, TRUE);
}

static void
fake_unlock_vm_hook(const gchar *name, FaultFixture *fx)
{
	fx->unlocks++;
}

static void
fake_cleanup_runtime_hook(const gchar *name, FaultFixture *fx)
{
}

static void
fake_note_stop_hook(const gchar *name, const gchar *reason, FaultFixture *fx)
{
	g_hash_table_insert(fx->stop_reasons, g_strdup(name), g_strdup(reason));
}

static GClosure *
fake_hook(GCallback callback, FaultFixture *fx)
{
	GClosure *closure = g_cclosure_new(callback, fx, NULL);
	g_closure_set_marshal(closure, g_cclosure_marshal_generic);
	g_closure_ref(closure);
	g_closure_sink(closure);
	return closure;
}

static void
fault_setup(FaultFixture *fx, gconstpointer user_data)
{
	fx->tmpdir = vmsup_test_make_tmpdir();
	fx->vms = g_hash_table_new_full(g_str_hash,
					g_str_equal,
					g_free,
					(GDestroyNotify)vmsup_vm_handles_unref);
	fx->hooks.vm_alive = fake_hook(G_CALLBACK(fake_vm_alive_hook), fx);
	fx->hooks.vm_handles = fake_hook(G_CALLBACK(fake_vm_handles_hook), fx);
	fx->hooks.lock_vm = fake_hook(G_CALLBACK(fake_lock_vm_hook), fx);
	fx->hooks.unlock_vm = fake_hook(G_CALLBACK(fake_unlock_vm_hook), fx);
	fx->hooks.cleanup_runtime = fake_hook(G_CALLBACK(fake_cleanup_runtime_hook), fx);
	fx->hooks.note_stop = fake_hook(G_CALLBACK(fake_note_stop_hook), fx);
	fx->stop_reasons = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	fx->stats = vmsup_stats_service_new(&fx->hooks);
	fx->garbage_conns = g_ptr_array_new_with_free_func(g_object_unref);
}

/* a paused QEMU without a guest: QMP answers, nothing runs inside */
static VmsupVmHandles *
fault_spawn_disk(FaultFixture *fx, const gchar *name, gboolean agent_channel, const gchar *disk)
{
	g_autofree gchar *dir = g_build_filename(fx->tmpdir, name, NULL);
	g_autofree gchar *qemu = vmsup_test_require_qemu();
	g_autoptr(VmsupQemuConfig) config = vmsup_qemu_config_new(name);
	g_autoptr(VmsupQemuProcess) process = vmsup_qemu_process_new(name, dir);
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	VmsupVmHandles *handles;

	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	config->qemu_binary = g_strdup(qemu);
	config->accel = VMSUP_ACCEL_TCG;
	config->memory_mib = 128;
	config->paused = TRUE;
	config->agent = agent_channel;
	config->disk = g_strdup(disk);
	vmsup_qemu_process_spawn_async(process, config, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 30);
	g_assert_true(vmsup_qemu_process_spawn_finish(process, res, &error));
	g_assert_no_error(error);
	register_pid(vmsup_qemu_process_get_pid(process));

	handles = vmsup_vm_handles_new(name, dir, process);
	if (agent_channel) {
		g_autofree gchar *qga = g_build_filename(dir, VMSUP_QEMU_QGA_SOCKET, NULL);
		handles->qga = vmsup_qga_client_new(name, qga);
	}
	g_hash_table_insert(fx->vms, g_strdup(name), handles);
	vmsup_stats_service_track_vm(fx->stats, name, FALSE);
	return handles;
}

static VmsupVmHandles *
fault_spawn(FaultFixture *fx, const gchar *name, gboolean agent_channel)
{
	return fault_spawn_disk(fx, name, agent_channel, NULL);
}

/* a qcow2 disk whose boot sector halts the vCPU: SeaBIOS reads it, then nothing runs */
static gchar *
halting_disk(FaultFixture *fx)
{
	g_autofree gchar *raw = g_build_filename(fx->tmpdir, "halt.img", NULL);
	gchar *qcow2 = g_build_filename(fx->tmpdir, "halt.qcow2", NULL);
	g_autofree gchar *sector = g_malloc0(512);
	g_autoptr(GError) error = NULL;
	const gchar *argv[] = {"qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2, NULL};

	memcpy(sector, "\xfa\xf4\xeb\xfd", 4); /* cli; hlt; jmp $-1 */
	sector[510] = 0x55;
	sector[511] = (gchar)0xaa;
	g_assert_true(g_file_set_contents(raw, sector, 512, &error));
	vmsup_test_run_tool(argv);
	return qcow2;
}

static gboolean
process_gone(gpointer user_data)
{
	return !vmsup_qemu_process_is_running(VMSUP_QEMU_PROCESS(user_data));
}

static void
fault_teardown(FaultFixture *fx, gconstpointer user_data)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, fx->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmsupVmHandles *handles = value;
		GPid pid = vmsup_qemu_process_get_pid(handles->process);
		if (vmsup_qemu_process_is_running(handles->process)) {
			vmsup_qemu_process_kill(handles->process);
			vmsup_test_wait_until(process_gone, handles->process, 20);
		}
		unregister_pid(pid);
	}
	g_clear_object(&fx->stats);
	if (fx->garbage != NULL) {
		g_socket_service_stop(fx->garbage);
		g_socket_listener_close(G_SOCKET_LISTENER(fx->garbage));
		g_clear_object(&fx->garbage);
	}
	g_ptr_array_unref(fx->garbage_conns);
	g_hash_table_unref(fx->vms);
	g_hash_table_unref(fx->stop_reasons);
	vmsup_vm_hooks_clear(&fx->hooks);
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(fx->tmpdir);
	g_free(fx->tmpdir);
}

static JsonObject *
timed_health(VmsupStatsService *stats, const gchar *name, gint64 *out_ms)
{
	gint64 start = g_get_monotonic_time();
	JsonObject *health = stats_of(stats, "health", name);
	*out_ms = (g_get_monotonic_time() - start) / 1000;
	return health;
}

/* the guest agent never answers (nothing runs in the paused VM) */
static void
test_fault_agent_silent(FaultFixture *fx, gconstpointer user_data)
{
	g_autoptr(JsonObject) health = NULL;
	g_autoptr(JsonObject) stats = NULL;
	g_autoptr(JsonObject) ping_params = params_name("silent");
	g_autoptr(JsonObject) ping = NULL;
	g_autoptr(JsonObject) exec_params = params_name("silent");
	g_autoptr(JsonArray) argv = json_array_new();
	g_autoptr(JsonObject) exec = NULL;
	g_autoptr(GError) error = NULL;
	gint64 ms;
	gint64 start;

	fault_spawn(fx, "silent", TRUE);
	health = timed_health(fx->stats, "silent", &ms);
	g_assert_cmpstr(vmsup_json_object_get_string(health, "status", NULL), ==, "degraded");
	g_assert_true(json_object_get_boolean_member(health, "process"));
	g_assert_true(json_object_get_boolean_member(health, "qmp"));
	g_assert_false(json_object_get_boolean_member(health, "agent"));
	g_assert_false(json_object_has_member(health, "agent_rtt_ms"));
	g_assert_nonnull(strstr(vmsup_json_object_get_string(health, "detail", ""), "agent"));
	/* bounded by the agent timeout, no hang */
	g_assert_cmpint(ms, <, 6000);

	start = g_get_monotonic_time();
	ping = STATS_CALL(fx->stats, ping, ping_params, &error);
	g_assert_null(ping);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT);
	g_assert_nonnull(strstr(error->message, "silent"));
	g_assert_cmpint(g_get_monotonic_time() - start, <, 6 * G_USEC_PER_SEC);
	g_clear_error(&error);

	json_array_add_string_element(argv, "/bin/true");
	json_object_set_array_member(exec_params, "argv", g_steal_pointer(&argv));
	json_object_set_int_member(exec_params, "timeout_s", 3);
	exec = STATS_CALL(fx->stats, exec, exec_params, &error);
	g_assert_null(exec);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT);
	g_clear_error(&error);

	/* stats: the paused VM is known to QMP and /proc, the agent's part is null */
	stats = stats_of(fx->stats, "stats", "silent");
	g_assert_cmpstr(vmsup_json_object_get_string(stats, "state", NULL), ==, "paused");
	g_assert_cmpint(get_int(stats, "rss_bytes"), >, 0);
	g_assert_cmpint(get_int(stats, "memory_mib"), ==, 128);
	g_assert_cmpfloat(get_number(stats, "cpu_percent"), <, 50);
	g_assert_cmpfloat(get_number(stats, "uptime_s"), >=, 0);
	assert_null_member(stats, "net_rx_bytes");
	assert_null_member(stats, "net_tx_bytes");
	assert_null_member(stats, "block_read_bytes");
	assert_null_member(stats, "block_write_bytes");
}

/* a VM without an agent channel at all */
static void
test_fault_agent_absent(FaultFixture *fx, gconstpointer user_data)
{
	g_autoptr(JsonObject) health = NULL;
	g_autoptr(JsonObject) params = params_name("no-agent");
	g_autoptr(JsonObject) ping = NULL;
	g_autoptr(JsonObject) ports = NULL;
	g_autoptr(GError) error = NULL;
	gint64 ms;

	fault_spawn(fx, "no-agent", FALSE);
	health = timed_health(fx->stats, "no-agent", &ms);
	g_assert_cmpstr(vmsup_json_object_get_string(health, "status", NULL), ==, "degraded");
	g_assert_true(json_object_get_boolean_member(health, "qmp"));
	g_assert_false(json_object_get_boolean_member(health, "agent"));
	g_assert_cmpint(ms, <, 2000);

	ping = STATS_CALL(fx->stats, ping, params, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_null(ping);
	g_clear_error(&error);
	ports = STATS_CALL(fx->stats, ports, params, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_null(ports);
}

/*
 * The agent channel exists but no guest program opened it (the guest is
 * paused before it ever ran): vm.stats does not wait for the agent's
 * timeout, and the counters only the agent knows stay null.
 */
static void
test_fault_agent_closed(FaultFixture *fx, gconstpointer user_data)
{
	g_autoptr(JsonObject) first = NULL;
	g_autoptr(JsonObject) params = params_name("closed");
	g_autoptr(GAsyncResult) res_a = NULL;
	g_autoptr(GAsyncResult) res_b = NULL;
	g_autoptr(JsonObject) refreshed = NULL;
	g_autoptr(JsonObject) cached = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot_a = NULL;
	GAsyncResult *slot_b = NULL;
	gint64 start;
	gint64 ms;
	gint64 deadline;

	fault_spawn(fx, "closed", TRUE);
	start = g_get_monotonic_time();
	first = stats_of(fx->stats, "stats", "closed");
	ms = (g_get_monotonic_time() - start) / 1000;
	g_test_message("vm.stats with the agent port closed: %" G_GINT64_FORMAT " ms", ms);
	/* the agent's timeout is 2 s; a /proc sample and QMP need far less */
	g_assert_cmpint(ms, <, 1500);
	g_assert_cmpstr(vmsup_json_object_get_string(first, "state", NULL), ==, "paused");
	g_assert_cmpint(get_int(first, "rss_bytes"), >, 0);
	g_assert_cmpint(get_int(first, "memory_mib"), ==, 128);
	assert_null_member(first, "net_rx_bytes");
	assert_null_member(first, "net_tx_bytes");

	/*
	 * A call landing while a refresh runs answers from a sample younger than
	 * the poll interval instead of waiting for that refresh. The poller is
	 * on, with an interval long enough never to tick during the test.
	 */
	vmsup_stats_service_set_poll_interval(fx->stats, 60);
	deadline = g_get_monotonic_time() + 1200 * 1000;
	vmsup_test_wait_until(deadline_passed, &deadline, 10);
	/* older than a second: this one refreshes ... */
	vmsup_stats_service_stats_async(fx->stats,
					vmsup_caller_daemon(),
					params,
					NULL,
					vmsup_test_store_result_cb,
					&slot_a);
	/* ... and this one, during that refresh, gets the cached sample */
	vmsup_stats_service_stats_async(fx->stats,
					vmsup_caller_daemon(),
					params,
					NULL,
					vmsup_test_store_result_cb,
					&slot_b);
	res_b = vmsup_test_wait_result(&slot_b, CALL_TIMEOUT_S);
	cached = vmsup_stats_service_stats_finish(fx->stats, res_b, &error);
	g_assert_no_error(error);
	/* the same sample as before, not the one the refresh in flight takes */
	g_assert_cmpfloat(get_number(cached, "uptime_s"), ==, get_number(first, "uptime_s"));
	res_a = vmsup_test_wait_result(&slot_a, CALL_TIMEOUT_S);
	refreshed = vmsup_stats_service_stats_finish(fx->stats, res_a, &error);
	g_assert_no_error(error);
	g_assert_cmpfloat(get_number(refreshed, "uptime_s"), >, get_number(first, "uptime_s"));
	vmsup_stats_service_set_poll_interval(fx->stats, 0);
}

static void
qmp_run(VmsupVmHandles *handles, const gchar *command)
{
	VmsupQmpClient *qmp = vmsup_qemu_process_get_qmp(handles->process);
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonNode) node = NULL;
	g_autoptr(GError) error = NULL;

	vmsup_qmp_client_execute_async(qmp, command, NULL, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	node = vmsup_qmp_client_execute_finish(qmp, res, &error);
	g_assert_no_error(error);
}

/* stats after the cache expired */
static JsonObject *
fresh_stats_of(VmsupStatsService *stats, const gchar *name)
{
	gint64 deadline = g_get_monotonic_time() + 1100 * 1000;
	vmsup_test_wait_until(deadline_passed, &deadline, 10);
	return stats_of(stats, "stats", name);
}

/*
 * The run state is asked once and then followed through QMP's events: a
 * `cont` or `stop` from anyone shows in the next sample.
 */
static void
test_fault_run_state_events(FaultFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *disk = halting_disk(fx);
	VmsupVmHandles *handles = fault_spawn_disk(fx, "events", TRUE, disk);
	g_autoptr(JsonObject) paused = NULL;
	g_autoptr(JsonObject) running = NULL;
	g_autoptr(JsonObject) halted = NULL;
	g_autoptr(JsonObject) stopped = NULL;

	paused = stats_of(fx->stats, "stats", "events");
	g_assert_cmpstr(vmsup_json_object_get_string(paused, "state", NULL), ==, "paused");
	g_assert_cmpint(get_int(paused, "memory_mib"), ==, 128);
	/* the disk is there: its counters are numbers */
	g_assert_cmpint(get_int(paused, "block_read_bytes"), >=, 0);
	qmp_run(handles, "cont");
	running = fresh_stats_of(fx->stats, "events");
	g_assert_cmpstr(vmsup_json_object_get_string(running, "state", NULL), ==, "running");
	/* asked once per process, still known */
	g_assert_cmpint(get_int(running, "memory_mib"), ==, 128);
	g_assert_cmpfloat(get_number(running, "uptime_s"), >, get_number(paused, "uptime_s"));
	/* the vCPU halts: the counts stand, whether asked again or not */
	halted = fresh_stats_of(fx->stats, "events");
	g_assert_cmpint(get_int(halted, "block_read_bytes"),
			==,
			get_int(running, "block_read_bytes"));
	qmp_run(handles, "stop");
	stopped = fresh_stats_of(fx->stats, "events");
	g_assert_cmpstr(vmsup_json_object_get_string(stopped, "state", NULL), ==, "paused");
}

/*
 * A QEMU that stops answering (SIGSTOP) costs a stats or health request the
 * stats bound (2 s), not the QMP client's default of 10 s, and says so.
 */
static void
test_fault_qemu_frozen(FaultFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *disk = halting_disk(fx);
	VmsupVmHandles *handles = fault_spawn_disk(fx, "frozen", FALSE, disk);
	GPid pid = vmsup_qemu_process_get_pid(handles->process);
	g_autoptr(JsonObject) health = NULL;
	g_autoptr(JsonObject) stats = NULL;
	g_autoptr(JsonObject) thawed = NULL;
	const gchar *detail;
	gint64 ms;
	gint64 start;

	g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
	vmsup_test_wait_until(vmsup_test_pid_is_stopped, GINT_TO_POINTER(pid), 10);

	health = timed_health(fx->stats, "frozen", &ms);
	g_assert_false(json_object_get_boolean_member(health, "qmp"));
	g_assert_cmpstr(vmsup_json_object_get_string(health, "status", NULL), !=, "ok");
	detail = vmsup_json_object_get_string(health, "detail", "");
	g_assert_nonnull(strstr(detail, "QEMU of VM 'frozen' is not answering"));
	g_assert_nonnull(strstr(detail, "2000 ms"));
	g_assert_cmpint(ms, >=, 1900);
	g_assert_cmpint(ms, <, 8000);

	/* the host-side figures still come; what only QMP knows is null */
	start = g_get_monotonic_time();
	stats = fresh_stats_of(fx->stats, "frozen");
	g_assert_cmpint(get_int(stats, "rss_bytes"), >, 0);
	g_assert_true(JSON_NODE_HOLDS_NULL(json_object_get_member(stats, "block_read_bytes")));
	g_assert_cmpint((g_get_monotonic_time() - start) / 1000, <, 8000);

	g_assert_cmpint(kill(pid, SIGCONT), ==, 0);
	thawed = fresh_stats_of(fx->stats, "frozen");
	g_assert_cmpint(get_int(thawed, "block_read_bytes"), >=, 0);
}

static void
garbage_read_cb(GObject *source, GAsyncResult *res, gpointer user_data);

static const gchar garbage[] =
    "\xff{\"return\": 987654321}\n"
    "garbage garbage\n"
    "\xff{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}\n"
    "\x01\x02\x03{{{{]]]\n"
    "{\"return\": [1, 2, 3]}\n";

static void
garbage_write(GIOStream *stream)
{
	GOutputStream *out = g_io_stream_get_output_stream(stream);
	g_output_stream_write_all(out, garbage, sizeof(garbage) - 1, NULL, NULL, NULL);
}

static void
garbage_read_next(GIOStream *stream)
{
	static gchar buf[4096];
	g_input_stream_read_async(g_io_stream_get_input_stream(stream),
				  buf,
				  sizeof(buf),
				  G_PRIORITY_DEFAULT,
				  NULL,
				  garbage_read_cb,
				  g_object_ref(stream));
}

/* whatever the client says, the answer is garbage */
static void
garbage_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GIOStream) stream = user_data;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, NULL);
	if (n <= 0)
		return;
	garbage_write(stream);
	garbage_read_next(stream);
}

static gboolean
garbage_incoming_cb(GSocketService *service,
		    GSocketConnection *connection,
		    GObject *source_object,
		    gpointer user_data)
{
	FaultFixture *fx = user_data;
	g_ptr_array_add(fx->garbage_conns, g_object_ref(connection));
	garbage_write(G_IO_STREAM(connection));
	garbage_read_next(G_IO_STREAM(connection));
	return TRUE;
}

/* the agent channel answers garbage: degraded, no hang, no crash */
static void
test_fault_agent_garbage(FaultFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *path = g_build_filename(fx->tmpdir, "garbage.sock", NULL);
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(path);
	g_autoptr(JsonObject) health = NULL;
	g_autoptr(JsonObject) again = NULL;
	g_autoptr(JsonObject) params = params_name("garbage");
	g_autoptr(JsonObject) ping = NULL;
	g_autoptr(GError) error = NULL;
	VmsupVmHandles *handles;
	gint64 ms;

	fx->garbage = g_socket_service_new();
	g_assert_true(g_socket_listener_add_address(G_SOCKET_LISTENER(fx->garbage),
						    address,
						    G_SOCKET_TYPE_STREAM,
						    G_SOCKET_PROTOCOL_DEFAULT,
						    NULL,
						    NULL,
						    &error));
	g_assert_no_error(error);
	g_signal_connect(fx->garbage, "incoming", G_CALLBACK(garbage_incoming_cb), fx);
	g_socket_service_start(fx->garbage);

	handles = fault_spawn(fx, "garbage", FALSE);
	handles->qga = vmsup_qga_client_new("garbage", path);

	health = timed_health(fx->stats, "garbage", &ms);
	g_assert_cmpstr(vmsup_json_object_get_string(health, "status", NULL), ==, "degraded");
	g_assert_true(json_object_get_boolean_member(health, "process"));
	g_assert_true(json_object_get_boolean_member(health, "qmp"));
	g_assert_false(json_object_get_boolean_member(health, "agent"));
	g_assert_cmpint(ms, <, 6000);
	g_assert_cmpuint(fx->garbage_conns->len, >=, 1);

	ping = STATS_CALL(fx->stats, ping, params, &error);
	g_assert_null(ping);
	g_assert_true(error->domain == VMSUP_ERROR);
	g_clear_error(&error);

	/* and again: the client resynchronises, still no hang */
	again = timed_health(fx->stats, "garbage", &ms);
	g_assert_cmpstr(vmsup_json_object_get_string(again, "status", NULL), ==, "degraded");
	g_assert_cmpint(ms, <, 6000);
}

/* the process died: down; the other verbs say how to start it */
static void
test_fault_down(FaultFixture *fx, gconstpointer user_data)
{
	VmsupVmHandles *handles = fault_spawn(fx, "dead", TRUE);
	g_autoptr(JsonObject) params = params_name("dead");
	g_autoptr(JsonObject) health = NULL;
	g_autoptr(JsonObject) stats = NULL;
	g_autoptr(JsonObject) unknown_params = params_name("never-defined");
	g_autoptr(JsonObject) bad_params = params_name("../etc");
	g_autoptr(JsonObject) none = NULL;
	g_autoptr(GError) error = NULL;

	vmsup_qemu_process_kill(handles->process);
	vmsup_test_wait_until(process_gone, handles->process, 20);

	health = stats_of(fx->stats, "health", "dead");
	g_assert_cmpstr(vmsup_json_object_get_string(health, "status", NULL), ==, "down");
	g_assert_false(json_object_get_boolean_member(health, "process"));
	g_assert_false(json_object_get_boolean_member(health, "qmp"));
	g_assert_false(json_object_get_boolean_member(health, "agent"));
	g_assert_nonnull(
	    strstr(vmsup_json_object_get_string(health, "detail", ""), "vmsup start dead"));

	stats = STATS_CALL(fx->stats, stats, params, &error);
	g_assert_null(stats);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "vmsup start dead"));
	g_clear_error(&error);

	none = STATS_CALL(fx->stats, ping, unknown_params, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_clear_error(&error);
	none = STATS_CALL(fx->stats, stats, bad_params, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	/* requests about VMs nobody knows leave nothing behind */
	vmsup_stats_service_note_activity(fx->stats, "never-defined", "vm.start");
	g_assert_null(vmsup_stats_service_describe_activity(fx->stats, "never-defined"));
}

/* --- one VM's sampler, on its own ------------------------------------------- */

static void
count_sampled_cb(VmsupStatsSampler *sampler, JsonObject *stats, guint *count)
{
	g_assert_nonnull(json_object_get_member(stats, "sampled_at"));
	(*count)++;
}

/*
 * A sampler needs no service: two refreshes asked at once are one sample,
 * which "sampled" announces; another pid voids what was learnt, and a QEMU
 * that went away is not running.
 */
static void
test_fault_sampler(FaultFixture *fx, gconstpointer user_data)
{
	VmsupVmHandles *handles = fault_spawn(fx, "sampled", FALSE);
	GPid pid = vmsup_qemu_process_get_pid(handles->process);
	g_autoptr(VmsupStatsSampler) sampler = vmsup_stats_sampler_new("sampled");
	GAsyncResult *first_slot = NULL;
	GAsyncResult *second_slot = NULL;
	g_autoptr(GAsyncResult) first_res = NULL;
	g_autoptr(GAsyncResult) second_res = NULL;
	g_autoptr(JsonObject) first = NULL;
	g_autoptr(JsonObject) second = NULL;
	GAsyncResult *third_slot = NULL;
	g_autoptr(GAsyncResult) third_res = NULL;
	g_autoptr(JsonObject) third = NULL;
	g_autoptr(JsonObject) gone = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *first_text = NULL;
	g_autofree gchar *second_text = NULL;
	guint sampled = 0;

	g_signal_connect(sampler, "sampled", G_CALLBACK(count_sampled_cb), &sampled);
	g_assert_cmpstr(vmsup_stats_sampler_get_name(sampler), ==, "sampled");
	g_assert_cmpstr(vmsup_stats_sampler_get_active_reason(sampler), ==, "defined");
	g_assert_null(vmsup_stats_sampler_get_cached(sampler, NULL));
	g_assert_true(vmsup_stats_sampler_see_pid(sampler, pid));
	g_assert_false(vmsup_stats_sampler_see_pid(sampler, pid));
	g_assert_cmpstr(vmsup_stats_sampler_get_active_reason(sampler), ==, "started");

	vmsup_stats_sampler_refresh_async(sampler,
					  handles,
					  NULL,
					  vmsup_test_store_result_cb,
					  &first_slot);
	g_assert_true(vmsup_stats_sampler_is_refreshing(sampler));
	vmsup_stats_sampler_refresh_async(sampler,
					  handles,
					  NULL,
					  vmsup_test_store_result_cb,
					  &second_slot);
	first_res = vmsup_test_wait_result(&first_slot, CALL_TIMEOUT_S);
	second_res = vmsup_test_wait_result(&second_slot, CALL_TIMEOUT_S);
	first = vmsup_stats_sampler_refresh_finish(sampler, first_res, &error);
	g_assert_no_error(error);
	second = vmsup_stats_sampler_refresh_finish(sampler, second_res, &error);
	g_assert_no_error(error);
	g_assert_false(vmsup_stats_sampler_is_refreshing(sampler));
	g_assert_cmpuint(sampled, ==, 1);
	first_text = vmsup_json_object_to_string(first, FALSE);
	second_text = vmsup_json_object_to_string(second, FALSE);
	g_assert_cmpstr(first_text, ==, second_text);
	g_assert_cmpstr(vmsup_json_object_get_string(first, "state", NULL), ==, "paused");
	g_assert_cmpint(get_int(first, "rss_bytes"), >, 0);
	g_assert_nonnull(vmsup_stats_sampler_get_cached(sampler, NULL));
	/* the next one is a sample of its own; QMP answers in order, so none was left behind */
	vmsup_stats_sampler_refresh_async(sampler,
					  handles,
					  NULL,
					  vmsup_test_store_result_cb,
					  &third_slot);
	third_res = vmsup_test_wait_result(&third_slot, CALL_TIMEOUT_S);
	third = vmsup_stats_sampler_refresh_finish(sampler, third_res, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(sampled, ==, 2);

	/* a restart (here: none) forgets the last sample */
	g_assert_true(vmsup_stats_sampler_see_pid(sampler, 0));
	g_assert_null(vmsup_stats_sampler_get_cached(sampler, NULL));

	vmsup_qemu_process_kill(handles->process);
	vmsup_test_wait_until(process_gone, handles->process, 20);
	vmsup_stats_sampler_refresh_async(sampler,
					  handles,
					  NULL,
					  vmsup_test_store_result_cb,
					  &first_slot);
	g_clear_object(&first_res);
	first_res = vmsup_test_wait_result(&first_slot, CALL_TIMEOUT_S);
	gone = vmsup_stats_sampler_refresh_finish(sampler, first_res, &error);
	g_assert_null(gone);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_cmpuint(sampled, ==, 2);
}

/* the sweep goes through the hooks: lock, stop, cleanup, unlock */
static void
test_fault_sweep_hooks(FaultFixture *fx, gconstpointer user_data)
{
	VmsupVmHandles *idle = fault_spawn(fx, "idle", FALSE);
	VmsupVmHandles *kept = fault_spawn(fx, "kept", FALSE);
	g_autoptr(JsonObject) activity = NULL;
	const gchar *reason;

	vmsup_stats_service_track_vm(fx->stats, "idle", TRUE);
	vmsup_stats_service_track_vm(fx->stats, "kept", FALSE);
	vmsup_stats_service_set_auto_stop_after(fx->stats, 2);
	/* a paused VM without an agent never answers powerdown: quit follows */
	vmsup_test_wait_until(process_gone, idle->process, 60);
	g_assert_true(vmsup_qemu_process_is_running(kept->process));
	g_assert_cmpuint(fx->locks, >=, 1);
	g_assert_cmpuint(fx->unlocks, ==, fx->locks);
	activity = vmsup_stats_service_describe_activity(fx->stats, "idle");
	g_assert_nonnull(activity);
	g_assert_cmpint(get_int(activity, "idle_s"), >=, 2);
	/* VMService hears why, before QEMU goes: its exit_reason names the policy */
	reason = g_hash_table_lookup(fx->stop_reasons, "idle");
	g_assert_nonnull(reason);
	g_assert_true(g_str_has_prefix(reason, "stopped by the auto-stop policy after "));
	g_assert_true(g_str_has_suffix(reason, " s without activity"));
	g_assert_false(g_hash_table_contains(fx->stop_reasons, "kept"));
	vmsup_stats_service_set_auto_stop_after(fx->stats, 0);
}

/* --- hooks only -------------------------------------------------------------- */

/* built from VMService's hooks alone; once VMService is gone, the hooks read "no VM" */
static void
test_hooks_only(void)
{
	g_autofree gchar *tmpdir = vmsup_test_make_tmpdir();
	g_autofree gchar *state = g_build_filename(tmpdir, "state", NULL);
	g_autofree gchar *run = g_build_filename(tmpdir, "run", NULL);
	VmsupVmService *vm_service = vmsup_vm_service_new(state, run, NULL, VMSUP_ACCEL_TCG);
	g_autoptr(VmsupStatsService) stats =
	    vmsup_stats_service_new(vmsup_vm_service_get_hooks(vm_service));
	g_autoptr(JsonObject) params = params_name("web1");
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(vmsup_vm_hooks_is_complete(vmsup_stats_service_get_hooks(stats)));
	result = STATS_CALL(stats, health, params, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(error->message, "vmsup list"));
	g_clear_error(&error);

	/* the service holds no pointer to VMService: it goes away on its own */
	g_object_add_weak_pointer(G_OBJECT(vm_service), (gpointer *)&vm_service);
	g_object_unref(vm_service);
	g_assert_null(vm_service);
	g_assert_false(vmsup_vm_hooks_vm_alive(vmsup_stats_service_get_hooks(stats), "web1"));
	vmsup_stats_service_track_vm(stats, "web1", TRUE);
	vmsup_stats_service_set_poll_interval(stats, 1);
	vmsup_stats_service_set_auto_stop_after(stats, 1);
	result = STATS_CALL(stats, stats, params, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "vmsup start web1"));
	vmsup_test_rm_rf(tmpdir);
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	signal(SIGABRT, abort_handler);
	signal(SIGTERM, abort_handler);
	signal(SIGSEGV, abort_handler);
	/* G_DEBUG=fatal-criticals */
	signal(SIGTRAP, abort_handler);
	signal(SIGBUS, abort_handler);

	g_test_add_func("/vmsup/stats/hooks-only", test_hooks_only);
	g_test_add("/vmsup/stats/faults/agent-silent",
		   FaultFixture,
		   NULL,
		   fault_setup,
		   test_fault_agent_silent,
		   fault_teardown);
	g_test_add("/vmsup/stats/faults/agent-absent",
		   FaultFixture,
		   NULL,
		   fault_setup,
		   test_fault_agent_absent,
		   fault_teardown);
	g_test_add("/vmsup/stats/faults/agent-closed",
		   FaultFixture,
		   NULL,
		   fault_setup,
		   test_fault_agent_closed,
		   fault_teardown);
	g_test_add("/vmsup/stats/faults/run-state-events",
		   FaultFixture,
		   NULL,
		   fault_setup,
		   test_fault_run_state_events,
		   fault_teardown);
	g_test_add("/vmsup/stats/faults/qemu-frozen",
		   FaultFixture,
		   NULL,
		   fault_setup,
		   test_fault_qemu_frozen,
		   fault_teardown);
	g_test_add("/vmsup/stats/faults/agent-garbage",
		   FaultFixture,
		   NULL,
		   fault_setup,
		   test_fault_agent_garbage,
		   fault_teardown);
	g_test_add("/vmsup/stats/faults/down",
		   FaultFixture,
		   NULL,
		   fault_setup,
		   test_fault_down,
		   fault_teardown);
	g_test_add("/vmsup/stats/faults/sampler",
		   FaultFixture,
		   NULL,
		   fault_setup,
		   test_fault_sampler,
		   fault_teardown);
	g_test_add("/vmsup/stats/faults/sweep-hooks",
		   FaultFixture,
		   NULL,
		   fault_setup,
		   test_fault_sweep_hooks,
		   fault_teardown);
	g_test_add("/vmsup/stats/guest/basics",
		   GuestFixture,
		   NULL,
		   guest_setup,
		   test_guest_basics,
		   guest_teardown);
	g_test_add("/vmsup/stats/guest/ports",
		   GuestFixture,
		   NULL,
		   guest_setup,
		   test_guest_ports,
		   guest_teardown);
	g_test_add("/vmsup/stats/guest/poller",
		   GuestFixture,
		   NULL,
		   guest_setup,
		   test_guest_poller,
		   guest_teardown);
	g_test_add("/vmsup/stats/guest/stale",
		   GuestFixture,
		   NULL,
		   guest_setup,
		   test_guest_stale,
		   guest_teardown);
	return g_test_run();
}
