/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService against real QEMU under TCG. The guest is a boot sector that
 * halts with interrupts off: QEMU really runs, stays idle, and ignores ACPI
 * power-off, so a stop goes through the whole powerdown -> quit chain. A
 * second one powers itself off, as a guest-initiated shutdown.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <signal.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "vmsup-cloud-init.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-service.h"
#include "vmsup-vm-store.h"
#include "vmsup-vm-files.h"
#include "vmsup-vm-seed.h"
#include "vmsup-paths.h"

#define TEST_TIMEOUT_S 60

typedef struct {
	gchar *tmp;
	gchar *state_dir;
	gchar *runtime_dir;
	gchar *image;     /* a guest that halts */
	gchar *off_image; /* a guest that powers itself off after 1-2 s */
	gchar *pidfile;
	gint guard_fd; /* write end of the guardian's stdin */
	VmsupVmService *service;
	GArray *pids;       /* of GPid: every QEMU seen */
	GHashTable *states; /* name -> GString "defined,starting,..." */
	GPtrArray *removed; /* names from vm-removed */
	GHashTable *stages; /* op id -> GString of stages seen */
	guint max_alive;    /* most QEMUs of this test seen alive at a state change */
	guint accels;       /* accel-decided signals */

	/* cancel a create when it reaches this stage or VM state */
	const gchar *cancel_stage;
	const gchar *cancel_state;
	gint64 cancel_id;
	GAsyncResult *cancel_res;
} Fixture;

/* warnings a test announces are swallowed and counted; any other stays fatal */
static const gchar *expected_warning;
static guint n_expected_warnings;

static GLogWriterOutput
test_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if ((level & G_LOG_LEVEL_WARNING) != 0 && expected_warning != NULL) {
		for (gsize i = 0; i < n_fields; i++) {
			if (g_strcmp0(fields[i].key, "MESSAGE") == 0 &&
			    strstr(fields[i].value, expected_warning) != NULL) {
				n_expected_warnings++;
				return G_LOG_WRITER_HANDLED;
			}
		}
	}
	return g_log_writer_default(level, fields, n_fields, user_data);
}

static gboolean
test_warned(gpointer unused)
{
	return n_expected_warnings > 0;
}

/* processes */

static gboolean
test_pid_alive(GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/stat", pid);
	g_autofree gchar *contents = NULL;
	const gchar *end;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return FALSE;
	end = strrchr(contents, ')');
	/* a zombie is dead, only not reaped yet */
	return end != NULL && end[1] == ' ' && end[2] != 'Z';
}

/* live QEMUs whose command line names @needle (ours name their runtime dir) */
static GArray *
test_find_processes(const gchar *needle)
{
	GArray *pids = g_array_new(FALSE, FALSE, sizeof(GPid));
	g_autoptr(GDir) dir = g_dir_open("/proc", 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = NULL;
		g_autofree gchar *cmdline = NULL;
		gsize len = 0;
		GPid pid;

		if (!g_ascii_isdigit(name[0]))
			continue;
		pid = (GPid)g_ascii_strtoll(name, NULL, 10);
		if (pid == getpid())
			continue;
		path = g_strdup_printf("/proc/%s/cmdline", name);
		if (!g_file_get_contents(path, &cmdline, &len, NULL) || len == 0)
			continue;
		for (gsize i = 0; i + 1 < len; i++) {
			if (cmdline[i] == '\0')
				cmdline[i] = ' ';
		}
		if (strstr(cmdline, needle) != NULL && strstr(cmdline, "qemu-system") != NULL &&
		    test_pid_alive(pid))
			g_array_append_val(pids, pid);
	}
	return pids;
}

static guint
test_count_qemus(Fixture *f)
{
	g_autoptr(GArray) pids = test_find_processes(f->tmp);
	return pids->len;
}

static void
fixture_note_pid(Fixture *f, GPid pid)
{
	FILE *fp;

	for (guint i = 0; i < f->pids->len; i++) {
		if (g_array_index(f->pids, GPid, i) == pid)
			return;
	}
	g_array_append_val(f->pids, pid);
	/* the guardian reads this if the test dies halfway */
	fp = fopen(f->pidfile, "a");
	g_assert_nonnull(fp);
	fprintf(fp, "%d\n", pid);
	fclose(fp);
}

/*
 * A shell that waits for this process to end (EOF on its stdin), then kills
 * the QEMUs still listed and removes the test's directory: an aborted test
 * leaves nothing behind.
 */
static void
fixture_start_guardian(Fixture *f)
{
	const gchar *script = "cat >/dev/null; for p in $(cat \"$0\" 2>/dev/null); do "
			      "grep -q \"$1\" /proc/$p/cmdline 2>/dev/null && kill -9 $p; done; "
			      "rm -rf \"$1\"";
	const gchar *argv[] = {"/bin/sh", "-c", script, f->pidfile, f->tmp, NULL};
	g_autoptr(GError) error = NULL;

	g_spawn_async_with_pipes(NULL,
				 (gchar **)argv,
				 NULL,
				 G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
				 NULL,
				 NULL,
				 NULL,
				 &f->guard_fd,
				 NULL,
				 NULL,
				 &error);
	g_assert_no_error(error);
	/* a QEMU inheriting the pipe would keep the guardian waiting on itself */
	g_assert_cmpint(fcntl(f->guard_fd, F_SETFD, FD_CLOEXEC), ==, 0);
}

/* the service */

static void
test_vm_changed_cb(VmsupVmService *service, const gchar *name, JsonObject *vm, gpointer user_data)
{
	Fixture *f = user_data;
	GString *states = g_hash_table_lookup(f->states, name);
	const gchar *state = json_object_get_string_member(vm, "state");
	g_autofree gchar *last = NULL;
	guint alive;

	g_assert_cmpstr(json_object_get_string_member(vm, "name"), ==, name);
	if (states == NULL) {
		states = g_string_new(NULL);
		g_hash_table_insert(f->states, g_strdup(name), states);
	}
	if (states->len > 0) {
		const gchar *comma = strrchr(states->str, ',');
		last = g_strdup(comma != NULL ? comma + 1 : states->str);
	}
	if (g_strcmp0(last, state) != 0)
		g_string_append_printf(states, "%s%s", states->len > 0 ? "," : "", state);
	if (json_object_has_member(vm, "pid"))
		fixture_note_pid(f, (GPid)json_object_get_int_member(vm, "pid"));
	alive = test_count_qemus(f);
	f->max_alive = MAX(f->max_alive, alive);

	if (f->cancel_state != NULL && f->cancel_id > 0 && f->cancel_res == NULL &&
	    g_strcmp0(state, f->cancel_state) == 0) {
		g_autoptr(JsonObject) params = json_object_new();
		json_object_set_int_member(params, "id", f->cancel_id);
		f->cancel_state = NULL;
		vmsup_vm_service_op_cancel_async(service,
						 vmsup_caller_daemon(),
						 params,
						 NULL,
						 vmsup_test_store_result_cb,
						 &f->cancel_res);
	}
}

static void
test_vm_removed_cb(VmsupVmService *service, const gchar *name, gpointer user_data)
{
	Fixture *f = user_data;
	g_ptr_array_add(f->removed, g_strdup(name));
}

static void
test_accel_decided_cb(VmsupVmService *service, gpointer user_data)
{
	Fixture *f = user_data;
	f->accels++;
}

static void
test_op_changed_cb(VmsupVmService *service, JsonObject *op, gpointer user_data)
{
	Fixture *f = user_data;
	gint64 id = json_object_get_int_member(op, "id");
	const gchar *stage = json_object_get_string_member(op, "stage");
	GString *stages = g_hash_table_lookup(f->stages, &id);
	gdouble progress = json_object_get_double_member(op, "progress");

	g_assert_cmpfloat(progress, >=, 0.);
	g_assert_cmpfloat(progress, <=, 1.);
	if (stages == NULL) {
		gint64 *key = g_new(gint64, 1);
		*key = id;
		stages = g_string_new(NULL);
		g_hash_table_insert(f->stages, key, stages);
	}
	if (!g_str_has_suffix(stages->str, stage))
		g_string_append_printf(stages, "%s%s", stages->len > 0 ? "," : "", stage);

	if (f->cancel_stage != NULL && f->cancel_res == NULL && id == f->cancel_id &&
	    g_strcmp0(stage, f->cancel_stage) == 0) {
		g_autoptr(JsonObject) params = json_object_new();
		json_object_set_int_member(params, "id", id);
		f->cancel_stage = NULL;
		vmsup_vm_service_op_cancel_async(service,
						 vmsup_caller_daemon(),
						 params,
						 NULL,
						 vmsup_test_store_result_cb,
						 &f->cancel_res);
	}
}

static VmsupVmService *
fixture_new_service(Fixture *f,
		    const gchar *qemu_binary,
		    const gchar *runtime_dir,
		    VmsupAccel accel)
{
	VmsupVmService *service =
	    vmsup_vm_service_new(f->state_dir, runtime_dir, qemu_binary, accel);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	g_signal_connect(service, "vm-changed", G_CALLBACK(test_vm_changed_cb), f);
	g_signal_connect(service, "vm-removed", G_CALLBACK(test_vm_removed_cb), f);
	g_signal_connect(service, "operation-changed", G_CALLBACK(test_op_changed_cb), f);
	g_signal_connect(service, "accel-decided", G_CALLBACK(test_accel_decided_cb), f);
	vmsup_vm_service_load_async(service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_vm_service_load_finish(service, res, &error));
	g_assert_no_error(error);
	return service;
}

/* like a daemon killed with -9: the service goes, its QEMUs stay */
static void
fixture_replace_service(Fixture *f)
{
	g_clear_object(&f->service);
	f->service = fixture_new_service(f, NULL, f->runtime_dir, VMSUP_ACCEL_TCG);
}

static void
test_string_free(gpointer data)
{
	g_string_free(data, TRUE);
}

/* a 1 MiB raw disk (SeaBIOS does not boot from smaller ones) starting with @code */
static void
test_write_boot_image(const gchar *path, const guint8 *code, gsize len)
{
	g_autofree guint8 *disk = g_malloc0(1024 * 1024);

	g_assert_cmpuint(len, <=, 510);
	memcpy(disk, code, len);
	disk[510] = 0x55;
	disk[511] = 0xaa;
	g_assert_true(g_file_set_contents(path, (const gchar *)disk, 1024 * 1024, NULL));
}

static void
fixture_setup(Fixture *f, gconstpointer user_data)
{
	/* cli; hlt; jmp back to the hlt */
	static const guint8 halt[] = {0xfa, 0xf4, 0xeb, 0xfd};
	/*
	 * cli; wait for the RTC seconds to change twice (1-2 s), then ACPI soft-off
	 * (SLP_EN, type 0, to PM1a_CNT at 0x604 where SeaBIOS puts it on q35)
	 */
	static const guint8 power_off[] = {
	    0xfa,                                                       /* cli */
	    0xb0, 0x00, 0xe6, 0x70, 0xe4, 0x71, 0x88, 0xc3,             /* bl = seconds */
	    0xb0, 0x00, 0xe6, 0x70, 0xe4, 0x71, 0x38, 0xd8, 0x74, 0xf6, /* until al != bl */
	    0x88, 0xc3,                                                 /* bl = al */
	    0xb0, 0x00, 0xe6, 0x70, 0xe4, 0x71, 0x38, 0xd8, 0x74, 0xf6, /* until al != bl */
	    0xba, 0x04, 0x06, 0xb8, 0x00, 0x20, 0xef,                   /* outw 0x2000, 0x604 */
	    0xf4, 0xeb, 0xfd,                                           /* hlt forever */
	};
	g_autofree gchar *qemu = vmsup_test_require_qemu();

	/* short: Unix socket paths of the runtime dir must fit */
	f->tmp = vmsup_test_make_tmpdir();
	f->state_dir = g_build_filename(f->tmp, "state", NULL);
	f->runtime_dir = g_build_filename(f->tmp, "run", NULL);
	f->image = g_build_filename(f->tmp, "boot.img", NULL);
	f->off_image = g_build_filename(f->tmp, "off.img", NULL);
	f->pidfile = g_build_filename(f->tmp, "pids", NULL);
	test_write_boot_image(f->image, halt, sizeof(halt));
	test_write_boot_image(f->off_image, power_off, sizeof(power_off));
	f->pids = g_array_new(FALSE, FALSE, sizeof(GPid));
	f->states = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, test_string_free);
	f->removed = g_ptr_array_new_with_free_func(g_free);
	f->stages = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, test_string_free);
	fixture_start_guardian(f);
	f->service = fixture_new_service(f, NULL, f->runtime_dir, VMSUP_ACCEL_TCG);
}

static void
fixture_teardown(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GArray) left = NULL;

	g_clear_object(&f->service);
	/* every QEMU a test starts, it stops */
	left = test_find_processes(f->tmp);
	for (guint i = 0; i < left->len; i++)
		kill(g_array_index(left, GPid, i), SIGKILL);
	g_assert_cmpuint(left->len, ==, 0);
	for (guint i = 0; i < f->pids->len; i++)
		g_assert_false(test_pid_alive(g_array_index(f->pids, GPid, i)));
	if (f->pids->len > 0)
		g_test_message("QEMUs seen: %u, at most %u at once", f->pids->len, f->max_alive);

	g_assert_true(g_file_set_contents(f->pidfile, "", 0, NULL));
	close(f->guard_fd);
	vmsup_test_rm_rf(f->tmp);
	g_hash_table_unref(f->states);
	g_hash_table_unref(f->stages);
	g_ptr_array_unref(f->removed);
	g_array_unref(f->pids);
	g_free(f->tmp);
	g_free(f->state_dir);
	g_free(f->runtime_dir);
	g_free(f->image);
	g_free(f->off_image);
	g_free(f->pidfile);
}

/* calls */

typedef void (*VerbAsync)(VmsupVmService *self,
			  const VmsupCaller *caller,
			  JsonObject *params,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data);

/*
 * Whom a test call acts for: a "caller_uid" member of the test's params
 * (taken out) names the client as a transport would find it; without one
 * the daemon itself asks. One that is no uid stays in, for the service to
 * refuse as the unknown member it is.
 */
static const VmsupCaller *
test_take_caller(JsonObject *params, VmsupCaller *out_caller)
{
	JsonNode *node = json_object_get_member(params, "caller_uid");
	gint64 uid;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_INT64)
		return vmsup_caller_daemon();
	uid = json_node_get_int(node);
	if (uid < 0 || uid > G_MAXUINT32)
		return vmsup_caller_daemon();
	json_object_remove_member(params, "caller_uid");
	*out_caller = vmsup_caller_for_uid((guint32)uid);
	return out_caller;
}

G_GNUC_PRINTF(5, 0)
static JsonObject *
test_call_v(VmsupVmService *service,
	    VerbAsync async,
	    VmsupVmServiceFinishFunc finish,
	    GError **error,
	    const gchar *format,
	    va_list args)
{
	g_autofree gchar *json = g_strdup_vprintf(format, args);
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error_parse = NULL;
	GAsyncResult *slot = NULL;
	VmsupCaller caller;

	params = vmsup_json_parse_object(json, -1, &error_parse);
	g_assert_no_error(error_parse);
	async(service,
	      test_take_caller(params, &caller),
	      params,
	      NULL,
	      vmsup_test_store_result_cb,
	      &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	return finish(service, res, error);
}

G_GNUC_PRINTF(4, 5)
static JsonObject *
test_call_ok(VmsupVmService *service,
	     VerbAsync async,
	     VmsupVmServiceFinishFunc finish,
	     const gchar *format,
	     ...)
{
	g_autoptr(GError) error = NULL;
	JsonObject *result;
	va_list args;

	va_start(args, format);
	result = test_call_v(service, async, finish, &error, format, args);
	va_end(args);
	g_assert_no_error(error);
	g_assert_nonnull(result);
	return result;
}

/* the error message (for checks on its wording) */
G_GNUC_PRINTF(5, 6)
static gchar *
test_call_err(VmsupVmService *service,
	      VerbAsync async,
	      VmsupVmServiceFinishFunc finish,
	      gint code,
	      const gchar *format,
	      ...)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = NULL;
	va_list args;

	va_start(args, format);
	result = test_call_v(service, async, finish, &error, format, args);
	va_end(args);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, code);
	g_assert_nonnull(error->message);
	return g_strdup(error->message);
}

typedef JsonObject *(*VerbSync)(VmsupVmService *self, JsonObject *params, GError **error);

/* a verb that answers at once: no main loop runs */
static JsonObject *
test_call_sync(Fixture *f, VerbSync sync, const gchar *json, GError **error)
{
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(GError) error_parse = NULL;

	params = vmsup_json_parse_object(json, -1, &error_parse);
	g_assert_no_error(error_parse);
	return sync(f->service, params, error);
}

static JsonObject *
test_sync_ok(Fixture *f, VerbSync sync, const gchar *json)
{
	g_autoptr(GError) error = NULL;
	JsonObject *result = test_call_sync(f, sync, json, &error);

	g_assert_no_error(error);
	g_assert_nonnull(result);
	return result;
}

static gchar *
test_sync_err(Fixture *f, VerbSync sync, gint code, const gchar *json)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = test_call_sync(f, sync, json, &error);

	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, code);
	g_assert_nonnull(error->message);
	return g_strdup(error->message);
}

#define CALL_OK(f, verb, ...)                                                                      \
	test_call_ok((f)->service,                                                                 \
		     vmsup_vm_service_##verb##_async,                                              \
		     vmsup_vm_service_##verb##_finish,                                             \
		     __VA_ARGS__)
#define CALL_ERR(f, verb, code, ...)                                                               \
	test_call_err((f)->service,                                                                \
		      vmsup_vm_service_##verb##_async,                                             \
		      vmsup_vm_service_##verb##_finish,                                            \
		      (code),                                                                      \
		      __VA_ARGS__)

/* a defined VM booting the test image, optionally started */
static void
test_create(Fixture *f, const gchar *name, gboolean start)
{
	g_autoptr(JsonObject) res =
	    CALL_OK(f,
		    create,
		    "{\"name\": \"%s\", \"image\": \"%s\", \"memory_mib\": 64, "
		    "\"start\": %s, \"wait\": true}",
		    name,
		    f->image,
		    start ? "true" : "false");
	g_assert_cmpstr(json_object_get_string_member(res, "vm"), ==, name);
}

static JsonObject *
test_get(Fixture *f, const gchar *name)
{
	JsonObject *vm = vmsup_vm_service_lookup(f->service, name);
	g_assert_nonnull(vm);
	return vm;
}

static GPid
test_get_pid(Fixture *f, const gchar *name)
{
	g_autoptr(JsonObject) vm = test_get(f, name);
	g_assert_true(json_object_has_member(vm, "pid"));
	return (GPid)json_object_get_int_member(vm, "pid");
}

typedef struct {
	Fixture *f;
	const gchar *name;
	const gchar *state;
} StateWait;

static gboolean
test_state_is(gpointer data)
{
	StateWait *w = data;
	g_autoptr(JsonObject) vm = vmsup_vm_service_lookup(w->f->service, w->name);
	return vm != NULL && g_strcmp0(json_object_get_string_member(vm, "state"), w->state) == 0;
}

static void
test_wait_state(Fixture *f, const gchar *name, const gchar *state)
{
	StateWait w = {f, name, state};
	vmsup_test_wait_until(test_state_is, &w, TEST_TIMEOUT_S);
}

static gboolean
test_path_gone(gpointer data)
{
	return !g_file_test(data, G_FILE_TEST_EXISTS);
}

/* the runtime dir goes once the outcome of the run is saved, right after the state changes */
static void
test_wait_gone(const gchar *path)
{
	vmsup_test_wait_until(test_path_gone, (gpointer)path, TEST_TIMEOUT_S);
}

static const gchar *
test_states(Fixture *f, const gchar *name)
{
	GString *states = g_hash_table_lookup(f->states, name);
	return states != NULL ? states->str : "";
}

static gchar *
test_vm_runtime_dir(Fixture *f, const gchar *name)
{
	return g_build_filename(f->runtime_dir, "vms", name, NULL);
}

static gchar *
test_def_path(Fixture *f, const gchar *name)
{
	g_autofree gchar *basename = g_strconcat(name, ".json", NULL);
	return g_build_filename(f->state_dir, "vms", basename, NULL);
}

static gchar *
test_disk_path(Fixture *f, const gchar *name)
{
	g_autofree gchar *basename = g_strconcat(name, ".qcow2", NULL);
	return g_build_filename(f->state_dir, "disks", basename, NULL);
}

static gint
test_compare_names(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

/* every file below @path with its contents, to prove a failed request changed nothing */
static void
test_snapshot_dir(GString *out, const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, test_compare_names);
	for (guint i = 0; i < names->len; i++) {
		g_autofree gchar *child = g_build_filename(path, g_ptr_array_index(names, i), NULL);
		g_autofree gchar *contents = NULL;
		gsize len = 0;
		if (g_file_test(child, G_FILE_TEST_IS_DIR)) {
			g_string_append_printf(out, "%s/\n", child);
			test_snapshot_dir(out, child);
			continue;
		}
		if (g_file_get_contents(child, &contents, &len, NULL)) {
			g_autofree gchar *sum =
			    g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)contents, len);
			g_string_append_printf(out, "%s %s\n", child, sum);
		} else {
			g_string_append_printf(out, "%s ?\n", child);
		}
	}
}

static gchar *
test_snapshot(Fixture *f)
{
	GString *out = g_string_new(NULL);
	test_snapshot_dir(out, f->state_dir);
	test_snapshot_dir(out, f->runtime_dir);
	return g_string_free(out, FALSE);
}

/* tests */

typedef struct {
	VmsupVmService *service;
	gint64 id;
	gboolean in_flight;
	guint n_polls;
	JsonObject *last;
} OpPoll;

static void
test_op_poll_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	OpPoll *poll = user_data;
	g_autoptr(GError) error = NULL;
	JsonObject *op = vmsup_vm_service_op_get_finish(VMSUP_VM_SERVICE(source), res, &error);

	g_assert_no_error(error);
	g_clear_pointer(&poll->last, json_object_unref);
	poll->last = op;
	poll->in_flight = FALSE;
	poll->n_polls++;
}

static gboolean
test_op_poll_finished(gpointer data)
{
	OpPoll *poll = data;
	g_autoptr(JsonObject) params = NULL;

	if (poll->last != NULL &&
	    g_strcmp0(json_object_get_string_member(poll->last, "state"), "running") != 0)
		return TRUE;
	if (poll->in_flight)
		return FALSE;
	params = json_object_new();
	json_object_set_int_member(params, "id", poll->id);
	poll->in_flight = TRUE;
	vmsup_vm_service_op_get_async(poll->service,
				      vmsup_caller_daemon(),
				      params,
				      NULL,
				      test_op_poll_cb,
				      poll);
	return FALSE;
}

static void
test_lifecycle(Fixture *f, gconstpointer user_data)
{
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) started = NULL;
	g_autoptr(JsonObject) again = NULL;
	g_autoptr(JsonObject) stopped = NULL;
	g_autoptr(JsonObject) deleted = NULL;
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(JsonObject) ops = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	g_autofree gchar *rt = test_vm_runtime_dir(f, "life");
	g_autofree gchar *qmp = g_build_filename(rt, "qmp.sock", NULL);
	g_autofree gchar *def_path = test_def_path(f, "life");
	g_autofree gchar *disk = test_disk_path(f, "life");
	g_autofree gchar *msg = NULL;
	g_autofree gchar *cmdline_path = NULL;
	g_autofree gchar *cmdline = NULL;
	const VmsupVmHooks *hooks = vmsup_vm_service_get_hooks(f->service);
	OpPoll poll = {f->service, 0, FALSE, 0, NULL};
	JsonArray *vms;
	GString *stages;
	gsize len = 0;
	GPid pid;

	created =
	    CALL_OK(f,
		    create,
		    "{\"name\": \"life\", \"image\": \"%s\", \"cpus\": 1, \"memory_mib\": 64}",
		    f->image);
	poll.id = json_object_get_int_member(created, "operation");
	g_assert_cmpint(poll.id, >, 0);
	g_assert_cmpstr(json_object_get_string_member(created, "vm"), ==, "life");

	vmsup_test_wait_until(test_op_poll_finished, &poll, TEST_TIMEOUT_S);
	g_assert_cmpstr(json_object_get_string_member(poll.last, "state"), ==, "done");
	g_assert_cmpstr(json_object_get_string_member(poll.last, "kind"), ==, "create");
	g_assert_cmpstr(json_object_get_string_member(poll.last, "vm"), ==, "life");
	g_assert_cmpfloat(json_object_get_double_member(poll.last, "progress"), ==, 1.);
	g_assert_false(json_object_has_member(poll.last, "error"));
	g_clear_pointer(&poll.last, json_object_unref);
	stages = g_hash_table_lookup(f->stages, &poll.id);
	g_assert_nonnull(stages);
	g_assert_cmpstr(stages->str, ==, "preflight,provision,define");

	vm = test_get(f, "life");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "defined");
	g_assert_cmpstr(json_object_get_string_member(vm, "accel"), ==, "tcg");
	g_assert_cmpint(json_object_get_int_member(vm, "cpus"), ==, 1);
	g_assert_cmpint(json_object_get_int_member(vm, "memory_mib"), ==, 64);
	g_assert_cmpstr(json_object_get_string_member(vm, "image"), ==, f->image);
	g_assert_cmpstr(json_object_get_string_member(vm, "disk"), ==, disk);
	g_assert_true(json_object_get_boolean_member(vm, "auto_stop"));
	g_assert_false(json_object_get_boolean_member(vm, "autostart"));
	g_assert_true(g_str_has_suffix(json_object_get_string_member(vm, "created"), "Z"));
	g_assert_false(json_object_has_member(vm, "pid"));
	g_assert_true(g_file_test(def_path, G_FILE_TEST_IS_REGULAR));
	g_assert_true(g_file_test(disk, G_FILE_TEST_IS_REGULAR));

	started = CALL_OK(f, start, "{\"name\": \"life\"}");
	g_assert_cmpstr(json_object_get_string_member(started, "state"), ==, "running");
	pid = (GPid)json_object_get_int_member(started, "pid");
	g_assert_cmpint(pid, >, 0);
	g_assert_true(test_pid_alive(pid));
	cmdline_path = g_strdup_printf("/proc/%d/cmdline", pid);
	g_assert_true(g_file_get_contents(cmdline_path, &cmdline, &len, NULL));
	g_assert_nonnull(strstr(cmdline, "qemu-system"));
	g_assert_true(g_file_test(qmp, G_FILE_TEST_EXISTS));
	g_assert_cmpint(test_get_pid(f, "life"), ==, pid);

	g_assert_true(vmsup_vm_hooks_vm_alive(hooks, "life"));
	g_assert_false(vmsup_vm_hooks_vm_alive(hooks, "nope"));
	handles = vmsup_vm_hooks_vm_handles(hooks, "life");
	g_assert_nonnull(handles);
	g_assert_cmpint(vmsup_qemu_process_get_pid(handles->process), ==, pid);
	g_assert_nonnull(handles->qga);
	g_assert_cmpint(handles->accel, ==, VMSUP_ACCEL_TCG);
	g_assert_cmpstr(handles->runtime_dir, ==, rt);
	g_clear_pointer(&handles, vmsup_vm_handles_unref);
	/* a live VM is not cleaned up under its feet */
	vmsup_vm_hooks_cleanup_runtime(hooks, "life");
	g_assert_true(g_file_test(qmp, G_FILE_TEST_EXISTS));

	/* starting a running VM changes nothing */
	again = CALL_OK(f, start, "{\"name\": \"life\"}");
	g_assert_cmpint(json_object_get_int_member(again, "pid"), ==, pid);

	/* vm.get answers what the in-process lookup does */
	{
		g_autoptr(JsonObject) got =
		    test_sync_ok(f, vmsup_vm_service_get, "{\"name\": \"life\"}");
		g_autoptr(JsonObject) looked_up = test_get(f, "life");
		g_autofree gchar *got_text = vmsup_json_object_to_string(got, FALSE);
		g_autofree gchar *looked_up_text = vmsup_json_object_to_string(looked_up, FALSE);
		g_autofree gchar *missing = test_sync_err(f,
							  vmsup_vm_service_get,
							  VMSUP_ERROR_NOT_FOUND,
							  "{\"name\": \"nope\"}");
		g_assert_cmpstr(got_text, ==, looked_up_text);
		g_assert_nonnull(strstr(missing, "'nope' does not exist"));
	}

	list = test_sync_ok(f, vmsup_vm_service_list, "{}");
	vms = json_object_get_array_member(list, "vms");
	g_assert_cmpuint(json_array_get_length(vms), ==, 1);
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(vms, 0), "state"),
	    ==,
	    "running");

	/* the guest ignores the power button: powerdown, 1 s, then quit */
	stopped = CALL_OK(f, stop, "{\"name\": \"life\", \"timeout_s\": 1}");
	g_assert_cmpstr(json_object_get_string_member(stopped, "state"), ==, "stopped");
	g_assert_nonnull(
	    strstr(json_object_get_string_member(stopped, "exit_reason"), "stopped on request"));
	g_assert_false(json_object_has_member(stopped, "pid"));
	g_assert_false(test_pid_alive(pid));
	g_assert_false(g_file_test(rt, G_FILE_TEST_EXISTS));
	g_assert_false(vmsup_vm_hooks_vm_alive(hooks, "life"));
	g_assert_null(vmsup_vm_hooks_vm_handles(hooks, "life"));
	g_assert_cmpstr(test_states(f, "life"), ==, "defined,starting,running,stopping,stopped");

	ops = CALL_OK(f, op_list, "{}");
	g_assert_cmpuint(json_array_get_length(json_object_get_array_member(ops, "operations")),
			 ==,
			 1);
	msg = CALL_ERR(f,
		       op_cancel,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"id\": %" G_GINT64_FORMAT "}",
		       poll.id);
	g_assert_nonnull(strstr(msg, "already finished"));

	deleted = CALL_OK(f, delete, "{\"name\": \"life\"}");
	g_assert_true(json_object_get_boolean_member(deleted, "deleted"));
	g_assert_cmpuint(f->removed->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(f->removed, 0), ==, "life");
	g_assert_false(g_file_test(def_path, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(disk, G_FILE_TEST_EXISTS));
	g_clear_pointer(&msg, g_free);
	msg = test_sync_err(f, vmsup_vm_service_get, VMSUP_ERROR_NOT_FOUND, "{\"name\": \"life\"}");
	g_assert_nonnull(strstr(msg, "'life'"));
}

static void
test_create_start_wait(Fixture *f, gconstpointer user_data)
{
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) stopped = NULL;
	g_autoptr(JsonObject) deleted = NULL;
	gint64 id = 1;
	GString *stages;
	GPid pid;

	test_create(f, "w1", TRUE);
	/* wait=true answered when the operation ended: the VM runs already */
	vm = test_get(f, "w1");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "running");
	pid = test_get_pid(f, "w1");
	stages = g_hash_table_lookup(f->stages, &id);
	g_assert_cmpstr(stages->str, ==, "preflight,provision,define,start");
	g_assert_cmpstr(test_states(f, "w1"), ==, "defined,starting,running");

	stopped = CALL_OK(f, stop, "{\"name\": \"w1\", \"force\": true}");
	g_assert_cmpstr(json_object_get_string_member(stopped, "state"), ==, "stopped");
	g_assert_false(test_pid_alive(pid));
	deleted = CALL_OK(f, delete, "{\"name\": \"w1\"}");
}

/* a create cancelled at each of its steps leaves nothing: no file, no disk, no process */
static void
test_cancel_create(Fixture *f, gconstpointer user_data)
{
	const struct {
		const gchar *stage;
		const gchar *state;
	} points[] = {
	    {NULL, NULL}, /* at once */
	    {"provision", NULL},
	    {"define", NULL},
	    {NULL, "defined"},
	    {NULL, "starting"},
	    {NULL, "running"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(points); i++) {
		g_autofree gchar *name = g_strdup_printf("cancel%u", i);
		g_autofree gchar *rt = test_vm_runtime_dir(f, name);
		g_autofree gchar *def_path = test_def_path(f, name);
		g_autofree gchar *disk = test_disk_path(f, name);
		g_autoptr(JsonObject) created = NULL;
		g_autoptr(JsonObject) op = NULL;
		g_autoptr(JsonObject) got = NULL;
		g_autoptr(GAsyncResult) res = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree gchar *msg = NULL;
		JsonObject *op_error;

		f->cancel_stage = points[i].stage;
		f->cancel_state = points[i].state;
		/* the next operation id: ids count from 1 */
		f->cancel_id = i + 1;
		created = CALL_OK(f,
				  create,
				  "{\"name\": \"%s\", \"image\": \"%s\", \"memory_mib\": 64, "
				  "\"disk_gib\": 1, \"start\": true}",
				  name,
				  f->image);
		g_assert_cmpint(json_object_get_int_member(created, "operation"), ==, f->cancel_id);
		if (points[i].stage == NULL && points[i].state == NULL) {
			op = CALL_OK(f, op_cancel, "{\"id\": %" G_GINT64_FORMAT "}", f->cancel_id);
		} else {
			res = vmsup_test_wait_result(&f->cancel_res, TEST_TIMEOUT_S);
			op = vmsup_vm_service_op_cancel_finish(f->service, res, &error);
			g_assert_no_error(error);
		}
		g_assert_null(f->cancel_stage);
		g_assert_null(f->cancel_state);
		g_assert_cmpstr(json_object_get_string_member(op, "state"), ==, "cancelled");
		op_error = json_object_get_object_member(op, "error");
		g_assert_cmpstr(json_object_get_string_member(op_error, "kind"), ==, "cancelled");
		g_assert_cmpint(json_object_get_int_member(op_error, "code"),
				==,
				VMSUP_ERROR_CANCELLED);

		{
			g_autofree gchar *json = g_strdup_printf("{\"name\": \"%s\"}", name);
			msg = test_sync_err(f, vmsup_vm_service_get, VMSUP_ERROR_NOT_FOUND, json);
		}
		g_assert_false(g_file_test(def_path, G_FILE_TEST_EXISTS));
		g_assert_false(g_file_test(disk, G_FILE_TEST_EXISTS));
		g_assert_false(g_file_test(rt, G_FILE_TEST_EXISTS));
		g_assert_cmpuint(test_count_qemus(f), ==, 0);
		f->cancel_id = 0;
	}
	/* the last two got as far as QEMU */
	g_assert_cmpuint(f->pids->len, >=, 1);
	g_assert_cmpuint(f->removed->len, ==, 3);
}

static void
test_delete_running(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *msg = NULL;
	g_autofree gchar *def_path = test_def_path(f, "busy1");
	g_autofree gchar *rt = test_vm_runtime_dir(f, "busy1");
	g_autoptr(JsonObject) deleted = NULL;
	GPid pid;

	test_create(f, "busy1", TRUE);
	pid = test_get_pid(f, "busy1");
	msg = CALL_ERR(f, delete, VMSUP_ERROR_FAILED_PRECONDITION, "{\"name\": \"busy1\"}");
	g_assert_nonnull(strstr(msg, "force"));
	g_assert_cmpint(test_get_pid(f, "busy1"), ==, pid);
	g_assert_true(test_pid_alive(pid));
	g_assert_true(g_file_test(def_path, G_FILE_TEST_EXISTS));

	deleted = CALL_OK(f, delete, "{\"name\": \"busy1\", \"force\": true}");
	g_assert_false(test_pid_alive(pid));
	g_assert_false(g_file_test(def_path, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(rt, G_FILE_TEST_EXISTS));
	g_clear_pointer(&msg, g_free);
	msg =
	    test_sync_err(f, vmsup_vm_service_get, VMSUP_ERROR_NOT_FOUND, "{\"name\": \"busy1\"}");
}

typedef struct {
	Fixture *f;
	gchar *vm;
	gchar *verb;
	guint seq;            /* issue order on its VM */
	gint code;            /* expected: 0 success, else the error code */
	guint done;           /* completion order on its VM, from 1 */
	GHashTable *counters; /* vm -> completions so far (unowned) */
} Burst;

static void
test_burst_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Burst *b = user_data;
	VmsupVmService *service = VMSUP_VM_SERVICE(source);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = NULL;
	guint n;

	if (g_strcmp0(b->verb, "start") == 0)
		result = vmsup_vm_service_start_finish(service, res, &error);
	else if (g_strcmp0(b->verb, "delete") == 0)
		result = vmsup_vm_service_delete_finish(service, res, &error);
	else
		result = vmsup_vm_service_stop_finish(service, res, &error);
	if (b->code == 0) {
		g_assert_no_error(error);
		if (g_strcmp0(b->verb, "start") == 0)
			g_assert_cmpstr(json_object_get_string_member(result, "state"),
					==,
					"running");
		else if (g_strcmp0(b->verb, "stop") == 0)
			g_assert_cmpstr(json_object_get_string_member(result, "state"),
					==,
					"stopped");
	} else {
		g_assert_error(error, VMSUP_ERROR, b->code);
	}
	n = GPOINTER_TO_UINT(g_hash_table_lookup(b->counters, b->vm)) + 1;
	g_hash_table_insert(b->counters, b->vm, GUINT_TO_POINTER(n));
	b->done = n;
}

static gboolean
test_bursts_done(gpointer data)
{
	GPtrArray *bursts = data;
	for (guint i = 0; i < bursts->len; i++) {
		Burst *b = g_ptr_array_index(bursts, i);
		if (b->done == 0)
			return FALSE;
	}
	return TRUE;
}

static void
test_burst_free(Burst *b)
{
	g_free(b->vm);
	g_free(b->verb);
	g_free(b);
}

static guint
test_rss_kib(GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/status", pid);
	g_autofree gchar *contents = NULL;
	const gchar *line;

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	line = strstr(contents, "VmRSS:");
	g_assert_nonnull(line);
	return (guint)g_ascii_strtoull(line + strlen("VmRSS:"), NULL, 10);
}

static void
test_concurrency(Fixture *f, gconstpointer user_data)
{
	/* one script per VM, all of them fired at once */
	const gchar *script[] =
	    {"start", "stop!", "start", "start", "stop0", "start", "stop!", NULL};
	const gchar *script_a[] = {"start", "stop0", "start", "delete!", "start", "stop!", NULL};
	const gchar *names[] = {"ca", "cb", "cc"};
	g_autoptr(GPtrArray) bursts =
	    g_ptr_array_new_with_free_func((GDestroyNotify)test_burst_free);
	g_autoptr(GHashTable) counters = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(JsonObject) creating = NULL;
	g_autofree gchar *msg = NULL;
	GAsyncResult *slots[3] = {NULL, NULL, NULL};
	guint rss_kib[3] = {0, 0, 0};
	gint64 busy_op;
	JsonArray *vms;

	/* three creates at once, on three VMs */
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autofree gchar *json = g_strdup_printf("{\"name\": \"%s\", \"image\": \"%s\", "
							 "\"memory_mib\": 64, \"wait\": true}",
							 names[i],
							 f->image);
		g_autoptr(JsonObject) params = vmsup_json_parse_object(json, -1, NULL);
		vmsup_vm_service_create_async(f->service,
					      vmsup_caller_daemon(),
					      params,
					      NULL,
					      vmsup_test_store_result_cb,
					      &slots[i]);
	}
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(GAsyncResult) res = vmsup_test_wait_result(&slots[i], TEST_TIMEOUT_S);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) created =
		    vmsup_vm_service_create_finish(f->service, res, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(json_object_get_string_member(created, "vm"), ==, names[i]);
	}

	/* all three run at once; stop_all stops them together */
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autofree gchar *json = g_strdup_printf("{\"name\": \"%s\"}", names[i]);
		g_autoptr(JsonObject) params = vmsup_json_parse_object(json, -1, NULL);
		vmsup_vm_service_start_async(f->service,
					     vmsup_caller_daemon(),
					     params,
					     NULL,
					     vmsup_test_store_result_cb,
					     &slots[i]);
	}
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(GAsyncResult) res = vmsup_test_wait_result(&slots[i], TEST_TIMEOUT_S);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) started =
		    vmsup_vm_service_start_finish(f->service, res, &error);
		g_assert_no_error(error);
		rss_kib[i] = test_rss_kib((GPid)json_object_get_int_member(started, "pid"));
	}
	g_assert_cmpuint(test_count_qemus(f), ==, 3);
	g_test_message("3 VMs running at once; QEMU RSS %u, %u, %u KiB (TCG, 64 MiB guests)",
		       rss_kib[0],
		       rss_kib[1],
		       rss_kib[2]);
	{
		g_autoptr(GAsyncResult) res = NULL;
		g_autoptr(GError) error = NULL;
		/* this guest ignores the power button: 1 s each, in parallel, then quit */
		g_object_set(f->service, "stop-timeout", 1, NULL);
		vmsup_vm_service_stop_all_async(f->service,
						NULL,
						vmsup_test_store_result_cb,
						&slots[0]);
		res = vmsup_test_wait_result(&slots[0], TEST_TIMEOUT_S);
		g_assert_true(vmsup_vm_service_stop_all_finish(f->service, res, &error));
		g_assert_no_error(error);
	}
	g_assert_cmpuint(test_count_qemus(f), ==, 0);
	for (guint i = 0; i < G_N_ELEMENTS(names); i++)
		g_hash_table_remove(f->states, names[i]);

	/* a VM under creation is busy, and says with what */
	creating = CALL_OK(f, create, "{\"name\": \"cd\", \"image\": \"%s\"}", f->image);
	busy_op = json_object_get_int_member(creating, "operation");
	msg = CALL_ERR(f, start, VMSUP_ERROR_BUSY, "{\"name\": \"cd\"}");
	{
		g_autofree gchar *needle =
		    g_strdup_printf("operation %" G_GINT64_FORMAT
				    "; wait or run 'vmsup ops cancel %" G_GINT64_FORMAT "'",
				    busy_op,
				    busy_op);
		g_assert_nonnull(strstr(msg, needle));
	}
	g_clear_pointer(&msg, g_free);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_BUSY,
		       "{\"name\": \"cd\", \"image\": \"%s\"}",
		       f->image);
	g_clear_pointer(&msg, g_free);
	msg = test_sync_err(f, vmsup_vm_service_get, VMSUP_ERROR_BUSY, "{\"name\": \"cd\"}");
	g_clear_pointer(&msg, g_free);
	msg = CALL_ERR(f, delete, VMSUP_ERROR_BUSY, "{\"name\": \"cd\"}");

	for (guint v = 0; v < G_N_ELEMENTS(names); v++) {
		const gchar *const *steps = v == 0 ? script_a : script;
		gboolean deleted = FALSE;
		for (guint s = 0; steps[s] != NULL; s++) {
			Burst *b = g_new0(Burst, 1);
			g_autoptr(JsonObject) params = json_object_new();
			const gchar *step = steps[s];

			b->f = f;
			b->vm = g_strdup(names[v]);
			b->seq = s + 1;
			b->counters = counters;
			json_object_set_string_member(params, "name", names[v]);
			if (g_str_has_prefix(step, "stop")) {
				b->verb = g_strdup("stop");
				if (step[4] == '!')
					json_object_set_boolean_member(params, "force", TRUE);
				else
					json_object_set_int_member(params, "timeout_s", 0);
			} else if (g_str_has_prefix(step, "delete")) {
				b->verb = g_strdup("delete");
				json_object_set_boolean_member(params, "force", TRUE);
			} else {
				b->verb = g_strdup(step);
			}
			/* after the delete, requests queued behind it find no VM */
			b->code = deleted ? VMSUP_ERROR_NOT_FOUND : 0;
			if (g_strcmp0(b->verb, "delete") == 0)
				deleted = TRUE;
			g_ptr_array_add(bursts, b);
			if (g_strcmp0(b->verb, "start") == 0)
				vmsup_vm_service_start_async(f->service,
							     vmsup_caller_daemon(),
							     params,
							     NULL,
							     test_burst_cb,
							     b);
			else if (g_strcmp0(b->verb, "delete") == 0)
				vmsup_vm_service_delete_async(f->service,
							      vmsup_caller_daemon(),
							      params,
							      NULL,
							      test_burst_cb,
							      b);
			else
				vmsup_vm_service_stop_async(f->service,
							    vmsup_caller_daemon(),
							    params,
							    NULL,
							    test_burst_cb,
							    b);
		}
	}
	vmsup_test_wait_until(test_bursts_done, bursts, TEST_TIMEOUT_S * 2);

	/* per VM, requests completed in the order they were made */
	for (guint i = 0; i < bursts->len; i++) {
		Burst *b = g_ptr_array_index(bursts, i);
		g_assert_cmpuint(b->done, ==, b->seq);
	}
	/* never interleaved: each start ran to "running" before the next stop began */
	g_assert_cmpstr(test_states(f, "cb"),
			==,
			"starting,running,stopping,stopped,starting,running,stopping,stopped,"
			"starting,running,stopping,stopped");
	g_assert_cmpstr(test_states(f, "cc"), ==, test_states(f, "cb"));
	g_assert_cmpstr(test_states(f, "ca"),
			==,
			"starting,running,stopping,stopped,starting,running,stopping,stopped");
	/* sampled at every state change: never more QEMUs than VMs */
	g_assert_cmpuint(f->max_alive, <=, 3);
	g_assert_cmpuint(f->pids->len, ==, 11);

	/* the creation went on meanwhile; then it is an ordinary VM */
	{
		OpPoll poll = {f->service, busy_op, FALSE, 0, NULL};
		vmsup_test_wait_until(test_op_poll_finished, &poll, TEST_TIMEOUT_S);
		g_assert_cmpstr(json_object_get_string_member(poll.last, "state"), ==, "done");
		g_clear_pointer(&poll.last, json_object_unref);
	}
	list = test_sync_ok(f, vmsup_vm_service_list, "{}");
	vms = json_object_get_array_member(list, "vms");
	g_assert_cmpuint(json_array_get_length(vms), ==, 3);
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(vms, 0), "name"),
	    ==,
	    "cb");
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(vms, 0), "state"),
	    ==,
	    "stopped");
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(vms, 1), "name"),
	    ==,
	    "cc");
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(vms, 1), "state"),
	    ==,
	    "stopped");
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(vms, 2), "name"),
	    ==,
	    "cd");
	g_assert_cmpuint(test_count_qemus(f), ==, 0);
	for (guint i = 0; i < G_N_ELEMENTS(names) + 1; i++) {
		const gchar *name = i < G_N_ELEMENTS(names) ? names[i] : "cd";
		g_autofree gchar *rt = test_vm_runtime_dir(f, name);
		g_assert_false(g_file_test(rt, G_FILE_TEST_EXISTS));
		if (i > 0) {
			g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"%s\"}", name);
		}
	}
}

static void
test_crash(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *rt = test_vm_runtime_dir(f, "crash1");
	g_autofree gchar *def_path = test_def_path(f, "crash1");
	g_autofree gchar *disk = test_disk_path(f, "crash1");
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) restarted = NULL;
	g_autoptr(JsonObject) stopped = NULL;
	g_autoptr(JsonObject) deleted = NULL;
	const VmsupVmHooks *hooks = vmsup_vm_service_get_hooks(f->service);
	GPid pid;

	test_create(f, "crash1", TRUE);
	pid = test_get_pid(f, "crash1");
	g_assert_true(g_file_test(rt, G_FILE_TEST_IS_DIR));
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
	test_wait_state(f, "crash1", "crashed");

	vm = test_get(f, "crash1");
	g_assert_cmpint(json_object_get_int_member(vm, "exit_signal"), ==, SIGKILL);
	g_assert_nonnull(strstr(json_object_get_string_member(vm, "exit_reason"), "signal 9"));
	g_assert_false(json_object_has_member(vm, "pid"));
	test_wait_gone(rt);
	g_assert_true(g_file_test(def_path, G_FILE_TEST_IS_REGULAR));
	g_assert_true(g_file_test(disk, G_FILE_TEST_IS_REGULAR));
	g_assert_false(vmsup_vm_hooks_vm_alive(hooks, "crash1"));
	g_assert_null(vmsup_vm_hooks_vm_handles(hooks, "crash1"));
	g_assert_cmpstr(test_states(f, "crash1"), ==, "defined,starting,running,crashed");

	/* a crashed VM starts again */
	restarted = CALL_OK(f, start, "{\"name\": \"crash1\"}");
	g_assert_cmpstr(json_object_get_string_member(restarted, "state"), ==, "running");
	g_assert_cmpint(json_object_get_int_member(restarted, "pid"), !=, pid);
	g_assert_false(json_object_has_member(restarted, "exit_reason"));
	stopped = CALL_OK(f, stop, "{\"name\": \"crash1\", \"force\": true}");
	g_assert_cmpstr(json_object_get_string_member(stopped, "state"), ==, "stopped");
	deleted = CALL_OK(f, delete, "{\"name\": \"crash1\"}");
}

static void
test_guest_shutdown(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *rt = test_vm_runtime_dir(f, "off1");
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) deleted = NULL;
	GPid pid;

	created =
	    CALL_OK(f,
		    create,
		    "{\"name\": \"off1\", \"image\": \"%s\", \"memory_mib\": 64, \"start\": true, "
		    "\"wait\": true}",
		    f->off_image);
	pid = test_get_pid(f, "off1");
	test_wait_state(f, "off1", "stopped");
	vm = test_get(f, "off1");
	g_assert_nonnull(
	    strstr(json_object_get_string_member(vm, "exit_reason"), "guest-shutdown"));
	g_assert_cmpint(json_object_get_int_member(vm, "exit_status"), ==, 0);
	g_assert_cmpstr(test_states(f, "off1"), ==, "defined,starting,running,stopping,stopped");
	g_assert_false(test_pid_alive(pid));
	test_wait_gone(rt);
	deleted = CALL_OK(f, delete, "{\"name\": \"off1\"}");
}

static void
test_query_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GAsyncResult **slot = user_data;
	*slot = g_object_ref(res);
}

static gboolean
test_pid_dead(gpointer data)
{
	return !test_pid_alive(GPOINTER_TO_INT(data));
}

static void
test_restart(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *rt2 = test_vm_runtime_dir(f, "r2");
	g_autoptr(JsonObject) r3 = NULL;
	g_autoptr(JsonObject) r4 = NULL;
	g_autoptr(JsonObject) stopped = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(VmsupVmHandles) handles = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonNode) status = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	GPid p1;
	GPid p2;
	GPid p3;

	test_create(f, "r1", TRUE);
	test_create(f, "r2", TRUE);
	r3 = CALL_OK(f,
		     create,
		     "{\"name\": \"r3\", \"image\": \"%s\", \"memory_mib\": 64, \"autostart\": "
		     "true, \"wait\": true}",
		     f->image);
	test_create(f, "r4", FALSE);
	p1 = test_get_pid(f, "r1");
	p2 = test_get_pid(f, "r2");

	/* the daemon goes away as if killed: its VMs keep running */
	g_clear_object(&f->service);
	g_assert_true(test_pid_alive(p1));
	g_assert_true(test_pid_alive(p2));
	/* and one of them dies while nobody watches */
	g_assert_cmpint(kill(p2, SIGKILL), ==, 0);
	vmsup_test_wait_until(test_pid_dead, GINT_TO_POINTER(p2), TEST_TIMEOUT_S);

	f->service = fixture_new_service(f, NULL, f->runtime_dir, VMSUP_ACCEL_TCG);
	vm = test_get(f, "r1");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "running");
	g_assert_cmpint(json_object_get_int_member(vm, "pid"), ==, p1);
	g_assert_cmpstr(json_object_get_string_member(vm, "accel"), ==, "tcg");
	g_clear_pointer(&vm, json_object_unref);
	/* killed, and nobody asked for it: crashed, not stopped */
	vm = test_get(f, "r2");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "crashed");
	g_assert_cmpstr(json_object_get_string_member(vm, "exit_reason"),
			==,
			VMSUP_VM_UNWATCHED_END);
	g_assert_false(g_file_test(rt2, G_FILE_TEST_EXISTS));
	g_clear_pointer(&vm, json_object_unref);
	/* autostart */
	vm = test_get(f, "r3");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "running");
	p3 = test_get_pid(f, "r3");
	g_clear_pointer(&vm, json_object_unref);
	vm = test_get(f, "r4");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "defined");

	/* QMP of the adopted QEMU answers */
	handles = vmsup_vm_hooks_vm_handles(vmsup_vm_service_get_hooks(f->service), "r1");
	g_assert_nonnull(handles);
	g_assert_cmpint(vmsup_qemu_process_get_pid(handles->process), ==, p1);
	vmsup_qmp_client_execute_async(vmsup_qemu_process_get_qmp(handles->process),
				       "query-status",
				       NULL,
				       NULL,
				       test_query_status_cb,
				       &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	status = vmsup_qmp_client_execute_finish(vmsup_qemu_process_get_qmp(handles->process),
						 res,
						 &error);
	g_assert_no_error(error);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(status), "status"),
			==,
			"running");
	g_clear_pointer(&handles, vmsup_vm_handles_unref);

	stopped = CALL_OK(f, stop, "{\"name\": \"r1\", \"timeout_s\": 0}");
	g_assert_cmpstr(json_object_get_string_member(stopped, "state"), ==, "stopped");
	g_assert_false(test_pid_alive(p1));
	g_clear_pointer(&stopped, json_object_unref);
	stopped = CALL_OK(f, stop, "{\"name\": \"r3\", \"force\": true}");
	g_assert_false(test_pid_alive(p3));
	for (guint i = 1; i <= 4; i++) {
		g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"r%u\"}", i);
	}
	(void)r4;
}

/* a bad VM name never reaches the service: the RPC table refuses it (test-rpc-table) */
static void
test_bad_input(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *missing = g_build_filename(f->tmp, "missing.img", NULL);
	g_autofree gchar *empty_data = g_build_filename(f->tmp, "empty-data", NULL);
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *keep_before = NULL;
	g_autofree gchar *keep_after = NULL;
	g_autofree gchar *saved_data_dir = g_strdup(g_getenv("VMSUP_DATA_DIR"));
	g_autoptr(JsonObject) keep = NULL;
	const struct {
		VerbAsync async;
		VmsupVmServiceFinishFunc finish;
		gint code;
		const gchar *json;
	} cases[] = {
	    {vmsup_vm_service_create_async,
	     vmsup_vm_service_create_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"nok\", \"kernel\": \"/nonexistent/vmlinuz\"}"},
	    {vmsup_vm_service_create_async,
	     vmsup_vm_service_create_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"k2\", \"kernel\": \"relative\"}"},
	    {vmsup_vm_service_create_async,
	     vmsup_vm_service_create_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"x\", \"image\": \"/nonexistent.img\", \"cpus\": 2}"},
	    {vmsup_vm_service_create_async,
	     vmsup_vm_service_create_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"x\", \"image\": \"/\"}"},
	    {vmsup_vm_service_create_async,
	     vmsup_vm_service_create_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"x\", \"kernel\": \"/k\", \"cpus\": 0}"},
	    {vmsup_vm_service_create_async,
	     vmsup_vm_service_create_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"x\", \"kernel\": \"/k\", \"bogus\": 1}"},
	    {vmsup_vm_service_create_async,
	     vmsup_vm_service_create_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"x\", \"kernel\": \"/k\", \"start\": \"yes\"}"},
	    {vmsup_vm_service_create_async,
	     vmsup_vm_service_create_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"x\", \"initrd\": \"/i\"}"},
	    {vmsup_vm_service_start_async,
	     vmsup_vm_service_start_finish,
	     VMSUP_ERROR_NOT_FOUND,
	     "{\"name\": \"nope\"}"},
	    {vmsup_vm_service_stop_async,
	     vmsup_vm_service_stop_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"keep\", \"timeout_s\": -1}"},
	    {vmsup_vm_service_stop_async,
	     vmsup_vm_service_stop_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"keep\", \"force\": \"yes\"}"},
	    {vmsup_vm_service_delete_async,
	     vmsup_vm_service_delete_finish,
	     VMSUP_ERROR_NOT_FOUND,
	     "{\"name\": \"nope\"}"},
	    {vmsup_vm_service_set_async,
	     vmsup_vm_service_set_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"keep\", \"cpus\": 0}"},
	    {vmsup_vm_service_set_async,
	     vmsup_vm_service_set_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"keep\", \"cpus\": 2, \"memory_mib\": \"lots\"}"},
	    {vmsup_vm_service_set_async,
	     vmsup_vm_service_set_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"keep\", \"image\": \"/x\"}"},
	    {vmsup_vm_service_set_async,
	     vmsup_vm_service_set_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"keep\"}"},
	    {vmsup_vm_service_set_async,
	     vmsup_vm_service_set_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"name\": \"keep\", \"fields\": 3}"},
	    {vmsup_vm_service_set_async,
	     vmsup_vm_service_set_finish,
	     VMSUP_ERROR_NOT_FOUND,
	     "{\"name\": \"nope\", \"cpus\": 2}"},
	    {vmsup_vm_service_op_get_async,
	     vmsup_vm_service_op_get_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{\"id\": \"1\"}"},
	    {vmsup_vm_service_op_get_async,
	     vmsup_vm_service_op_get_finish,
	     VMSUP_ERROR_NOT_FOUND,
	     "{\"id\": 12345}"},
	    {vmsup_vm_service_op_cancel_async,
	     vmsup_vm_service_op_cancel_finish,
	     VMSUP_ERROR_INVALID_ARGUMENT,
	     "{}"},
	};

	test_create(f, "keep", FALSE);
	keep = test_get(f, "keep");
	keep_before = vmsup_json_object_to_string(keep, FALSE);
	before = test_snapshot(f);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *msg = test_call_err(f->service,
						      cases[i].async,
						      cases[i].finish,
						      cases[i].code,
						      "%s",
						      cases[i].json);
		g_test_message("%s -> %s", cases[i].json, msg);
	}
	{
		g_autofree gchar *msg = CALL_ERR(f,
						 create,
						 VMSUP_ERROR_INVALID_ARGUMENT,
						 "{\"name\": \"noimg\", \"image\": \"%s\"}",
						 missing);
		g_assert_nonnull(strstr(msg, missing));
	}
	{
		g_autofree gchar *msg = CALL_ERR(f,
						 create,
						 VMSUP_ERROR_ALREADY_EXISTS,
						 "{\"name\": \"keep\", \"image\": \"%s\"}",
						 f->image);
		g_assert_nonnull(strstr(msg, "'keep' already exists"));
	}
	/* no kernel, no image, and no bundled guest: say how to build it */
	g_assert_cmpint(g_mkdir_with_parents(empty_data, 0700), ==, 0);
	g_setenv("VMSUP_DATA_DIR", empty_data, TRUE);
	{
		g_autofree gchar *msg =
		    CALL_ERR(f, create, VMSUP_ERROR_FAILED_PRECONDITION, "{\"name\": \"bundled\"}");
		g_assert_nonnull(strstr(msg, "-Dguest=enabled"));
	}
	if (saved_data_dir != NULL)
		g_setenv("VMSUP_DATA_DIR", saved_data_dir, TRUE);
	else
		g_unsetenv("VMSUP_DATA_DIR");
	g_rmdir(empty_data);

	after = test_snapshot(f);
	g_assert_cmpstr(after, ==, before);
	g_clear_pointer(&keep, json_object_unref);
	keep = test_get(f, "keep");
	keep_after = vmsup_json_object_to_string(keep, FALSE);
	g_assert_cmpstr(keep_after, ==, keep_before);
	g_assert_cmpuint(f->removed->len, ==, 0);
	{
		g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"keep\"}");
	}
}

/* runs @argv (from PATH) to a zero exit */
static void
test_run_ok(const gchar *const *argv)
{
	g_autoptr(GError) error = NULL;
	gint status = -1;

	g_spawn_sync(NULL,
		     (gchar **)argv,
		     NULL,
		     G_SPAWN_SEARCH_PATH,
		     NULL,
		     NULL,
		     NULL,
		     NULL,
		     &status,
		     &error);
	g_assert_no_error(error);
	g_assert_true(g_spawn_check_wait_status(status, NULL));
}

/* cloud-init: the checks of what a caller adds, the seed, the firmware, vm.ssh_info */

#define TEST_KEY_BLOB                                                                              \
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDJIfVR/aqMRZzqGKOoMhVNZyENNPKd+fUdHaokJzF2f"
#define TEST_KEY TEST_KEY_BLOB " a@b"
#define TEST_OTHER_KEY                                                                             \
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHw2mu4RbBSgVAbm1YXAoXHxZzdtaOrqx1m/E8rEcnbm"

static void
test_cloud_init_checks(void)
{
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) keys = NULL;
	g_autofree gchar *user_data = NULL;
	const gchar *bad_keys[] = {
	    "",
	    "hello, I am not a key",
	    "ssh-ed25519",
	    "ssh-ed25519 not-base64!",
	    /* the blob says ssh-ed25519, the line ssh-rsa */
	    "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDJIfVR/aqMRZzqGKOoMhVNZyENNPKd+fUdHaokJzF2f",
	    TEST_KEY "\nssh-ed25519 AAAA",
	    "-----BEGIN OPENSSH PRIVATE KEY-----",
	};
	const gchar *bad_user_data[] = {
	    "#!/bin/sh\necho hi\n",
	    "#include http://example.com/x\n",
	    "users: []\n",
	    "#cloud-config\nruncmd:\n\t- true\n",
	    "#cloud-config\nbad: \x01\n",
	};
	/* the console as cloud-init writes it, with CRs and other lines around */
	const gchar console[] = "boot\r\n-----BEGIN SSH HOST KEY KEYS-----\r\n" TEST_KEY
				"\r\nnot a key at all\r\n-----END SSH HOST KEY KEYS-----\r\nlogin:";

	g_assert_true(vmsup_cloud_init_check_ssh_key("k", TEST_KEY, &error));
	g_assert_no_error(error);
	g_assert_true(vmsup_cloud_init_check_ssh_key("k", "  " TEST_OTHER_KEY "\n", &error));
	for (guint i = 0; i < G_N_ELEMENTS(bad_keys); i++) {
		g_assert_false(vmsup_cloud_init_check_ssh_key("k", bad_keys[i], &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, "not an OpenSSH public key"));
		g_clear_error(&error);
	}
	g_assert_true(vmsup_cloud_init_check_user_data("#cloud-config\nruncmd:\n  - true\n", NULL));
	for (guint i = 0; i < G_N_ELEMENTS(bad_user_data); i++) {
		g_assert_false(vmsup_cloud_init_check_user_data(bad_user_data[i], &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
	}

	keys = vmsup_cloud_init_parse_host_keys(console, sizeof(console) - 1);
	g_assert_nonnull(keys);
	g_assert_cmpuint(g_strv_length(keys), ==, 1);
	g_assert_true(g_str_has_prefix(TEST_KEY, keys[0]));
	g_assert_null(vmsup_cloud_init_parse_host_keys(console, 60));
	g_assert_null(vmsup_cloud_init_parse_host_keys("nothing", 7));

	{
		const gchar *list[] = {TEST_KEY, "ssh-ed25519 AAAA \"quoted\\\"", NULL};
		user_data = vmsup_cloud_init_user_data(list, "#cloud-config\nruncmd: [true]\n");
	}
	g_assert_true(g_str_has_prefix(user_data, "Content-Type: multipart/mixed"));
	g_assert_nonnull(strstr(user_data, "  - name: vmsup\n"));
	g_assert_nonnull(strstr(user_data, "      - \"" TEST_KEY "\"\n"));
	g_assert_nonnull(strstr(user_data, "\\\"quoted\\\\\\\"\""));
	g_assert_nonnull(strstr(user_data, "Merge-Type: list(append)"));
	g_assert_nonnull(strstr(user_data, "\n#cloud-config\nruncmd: [true]\n"));
}

/* a disk image of 1 MiB whose GPT has an EFI system partition */
static void
test_write_esp_image(const gchar *path)
{
	static const guint8 esp[16] = {0x28,
				       0x73,
				       0x2a,
				       0xc1,
				       0x1f,
				       0xf8,
				       0xd2,
				       0x11,
				       0xba,
				       0x4b,
				       0x00,
				       0xa0,
				       0xc9,
				       0x3e,
				       0xc9,
				       0x3b};
	g_autofree guint8 *disk = g_malloc0(1024 * 1024);

	memcpy(disk + 512, "EFI PART", 8);
	disk[512 + 72] = 2;   /* entries at LBA 2 */
	disk[512 + 80] = 128; /* 128 of them */
	disk[512 + 84] = 128; /* of 128 bytes */
	memcpy(disk + 1024 + 128, esp, sizeof(esp));
	g_assert_true(g_file_set_contents(path, (const gchar *)disk, 1024 * 1024, NULL));
}

static JsonObject *
test_params_name(const gchar *name)
{
	JsonObject *params = json_object_new();
	json_object_set_string_member(params, "name", name);
	return params;
}

static gchar *
test_ssh_info_err(Fixture *f, gint code, const gchar *name)
{
	g_autoptr(JsonObject) params = test_params_name(name);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) info = vmsup_vm_service_ssh_info(f->service, NULL, params, &error);

	g_assert_null(info);
	g_assert_error(error, VMSUP_ERROR, code);
	return g_strdup(error->message);
}

static void
test_cloud_init(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *esp_raw = g_build_filename(f->tmp, "esp.img", NULL);
	g_autofree gchar *esp_qcow2 = g_build_filename(f->tmp, "esp.qcow2", NULL);
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *guest_dir = vmsup_vm_seed_guest_dir(f->state_dir, "ci");
	g_autofree gchar *seed = g_build_filename(guest_dir, VMSUP_VM_SEED_IMAGE, NULL);
	g_autofree gchar *identity = vmsup_vm_seed_identity_file(f->state_dir, geteuid());
	g_autofree gchar *console = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) vm = NULL;
	const struct {
		const gchar *json;
		const gchar *words;
	} bad[] = {
	    {"\"ssh_keys\": [\"hello\"]", "not an OpenSSH public key"},
	    {"\"ssh_keys\": [\"" TEST_KEY "\", \"ssh-rsa AAAA\"]", "number 2 of 'ssh_keys'"},
	    {"\"ssh_keys\": \"" TEST_KEY "\"", "must be an array"},
	    {"\"user_data\": \"#!/bin/sh\\necho hi\\n\"", "not cloud-config"},
	    {"\"user_data\": 3", "must be a string"},
	    {"\"firmware\": \"coreboot\"", "'bios' or 'uefi'"},
	};

	test_write_esp_image(esp_raw);
	{
		const gchar *argv[] =
		    {"qemu-img", "convert", "-O", "qcow2", esp_raw, esp_qcow2, NULL};
		test_run_ok(argv);
	}
	test_create(f, "keep", FALSE);
	before = test_snapshot(f);
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree gchar *msg = CALL_ERR(f,
						 create,
						 VMSUP_ERROR_INVALID_ARGUMENT,
						 "{\"name\": \"bad\", \"image\": \"%s\", %s}",
						 f->image,
						 bad[i].json);
		g_test_message("%s -> %s", bad[i].json, msg);
		g_assert_nonnull(strstr(msg, bad[i].words));
	}
	{
		/* a VM without an image has no seed to put them in */
		g_autofree gchar *msg =
		    CALL_ERR(f,
			     create,
			     VMSUP_ERROR_INVALID_ARGUMENT,
			     "{\"name\": \"bad\", \"kernel\": \"%s\", \"ssh_keys\": [\"%s\"]}",
			     f->image,
			     TEST_KEY);
		g_assert_nonnull(strstr(msg, "'image'"));
	}
	{
		g_autofree gchar *msg =
		    test_ssh_info_err(f, VMSUP_ERROR_FAILED_PRECONDITION, "keep");
		g_assert_nonnull(strstr(msg, "not running"));
		g_clear_pointer(&msg, g_free);
		msg = test_ssh_info_err(f, VMSUP_ERROR_NOT_FOUND, "nope");
	}
	after = test_snapshot(f);
	g_assert_cmpstr(after, ==, before);

	/* the firmware follows the image: an EFI system partition, raw or qcow2, boots UEFI */
	{
		g_autoptr(JsonObject) a =
		    CALL_OK(f,
			    create,
			    "{\"name\": \"esp1\", \"image\": \"%s\", \"wait\": true}",
			    esp_raw);
		g_autoptr(JsonObject) b =
		    CALL_OK(f,
			    create,
			    "{\"name\": \"esp2\", \"image\": \"%s\", \"wait\": true}",
			    esp_qcow2);
		g_autoptr(JsonObject) c =
		    CALL_OK(f,
			    create,
			    "{\"name\": \"esp3\", \"image\": \"%s\", \"firmware\": "
			    "\"bios\", \"wait\": true}",
			    esp_qcow2);
		g_autoptr(JsonObject) v1 = test_get(f, "esp1");
		g_autoptr(JsonObject) v2 = test_get(f, "esp2");
		g_autoptr(JsonObject) v3 = test_get(f, "esp3");
		g_autoptr(JsonObject) v4 = test_get(f, "keep");
		g_assert_cmpstr(json_object_get_string_member(v1, "firmware"), ==, "uefi");
		g_assert_cmpstr(json_object_get_string_member(v2, "firmware"), ==, "uefi");
		g_assert_cmpstr(json_object_get_string_member(v3, "firmware"), ==, "bios");
		g_assert_cmpstr(json_object_get_string_member(v4, "firmware"), ==, "bios");
		for (guint i = 1; i <= 3; i++) {
			g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"esp%u\"}", i);
		}
	}

	/* a started VM gets its seed, its owner's key pair, and SSH forwarded */
	{
		g_autoptr(JsonObject) res = CALL_OK(
		    f,
		    create,
		    "{\"name\": \"ci\", \"image\": \"%s\", \"memory_mib\": 64, \"ssh_keys\": "
		    "[\"%s\"], \"user_data\": \"#cloud-config\\nruncmd: [true]\\n\", \"start\": "
		    "true, \"wait\": true}",
		    f->image,
		    TEST_OTHER_KEY);
	}
	vm = test_get(f, "ci");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "running");
	g_assert_true(g_file_test(seed, G_FILE_TEST_IS_REGULAR));
	{
		g_autofree gchar *contents = NULL;
		gsize length = 0;
		GStatBuf st;
		g_assert_true(g_file_get_contents(seed, &contents, &length, NULL));
		/* FAT12's volume label */
		g_assert_cmpmem(contents + 43, 11, "CIDATA     ", 11);
		g_assert_nonnull(memmem(contents, length, TEST_OTHER_KEY, strlen(TEST_OTHER_KEY)));
		g_assert_nonnull(
		    memmem(contents, length, "local-hostname: ci", strlen("local-hostname: ci")));
		g_assert_cmpint(g_stat(identity, &st), ==, 0);
		g_assert_cmpint(st.st_mode & 0777, ==, 0600);
		g_assert_cmpint(st.st_uid, ==, geteuid());
		/* the owner's ssh reaches its key and the VM's known_hosts, whatever the umask */
		{
			g_autofree gchar *dir = g_path_get_dirname(identity);
			g_autofree gchar *parent = g_path_get_dirname(dir);
			g_assert_cmpint(g_stat(dir, &st), ==, 0);
			g_assert_cmpint(st.st_mode & 0777, ==, 0700);
			g_assert_cmpint(g_stat(parent, &st), ==, 0);
			g_assert_cmpint(st.st_mode & 0777, ==, 0711);
			g_assert_cmpint(g_stat(guest_dir, &st), ==, 0);
			g_assert_cmpint(st.st_mode & 0777, ==, 0755);
		}
	}
	{
		g_autoptr(JsonObject) params = test_params_name("ci");
		g_autoptr(JsonObject) info =
		    vmsup_vm_service_ssh_info(f->service, NULL, params, &error);
		g_autoptr(JsonObject) info2 = NULL;
		g_autoptr(JsonObject) info3 = NULL;
		g_autofree gchar *known = NULL;
		g_autofree gchar *block = NULL;
		g_autofree gchar *rt = test_vm_runtime_dir(f, "ci");
		gint64 port;
		g_assert_no_error(error);
		port = json_object_get_int_member(info, "port");
		g_assert_cmpint(port, >, 0);
		g_assert_false(json_object_get_boolean_member(info, "ready"));
		g_assert_cmpstr(json_object_get_string_member(info, "user"), ==, "vmsup");
		g_assert_cmpstr(json_object_get_string_member(info, "identity_file"), ==, identity);
		/* what cloud-init prints on the console pins the keys */
		console = g_build_filename(rt, VMSUP_QEMU_CONSOLE_LOG, NULL);
		block = g_strdup("-----BEGIN SSH HOST KEY KEYS-----\r\n" TEST_KEY
				 "\r\n-----END SSH HOST KEY KEYS-----\r\n");
		g_assert_true(g_file_set_contents(console, block, -1, NULL));
		info2 = vmsup_vm_service_ssh_info(f->service, NULL, params, &error);
		g_assert_no_error(error);
		g_assert_true(json_object_get_boolean_member(info2, "ready"));
		g_assert_true(
		    g_file_get_contents(json_object_get_string_member(info2, "known_hosts_file"),
					&known,
					NULL,
					NULL));
		{
			/* the comment is not kept */
			g_autofree gchar *want =
			    g_strdup_printf("[127.0.0.1]:%" G_GINT64_FORMAT " %s\n",
					    port,
					    TEST_KEY_BLOB);
			g_assert_cmpstr(known, ==, want);
		}
		/* and keys printed later do not replace them */
		g_clear_pointer(&block, g_free);
		block = g_strdup("-----BEGIN SSH HOST KEY KEYS-----\n" TEST_OTHER_KEY
				 "\n-----END SSH HOST KEY KEYS-----\n");
		g_assert_true(g_file_set_contents(console, block, -1, NULL));
		info3 = vmsup_vm_service_ssh_info(f->service, NULL, params, &error);
		g_assert_no_error(error);
		g_clear_pointer(&known, g_free);
		g_assert_true(
		    g_file_get_contents(json_object_get_string_member(info3, "known_hosts_file"),
					&known,
					NULL,
					NULL));
		g_assert_null(strstr(known, strchr(TEST_OTHER_KEY, ' ') + 1));
		g_assert_nonnull(strstr(known, TEST_KEY_BLOB));
	}
	{
		g_autoptr(JsonObject) gone =
		    CALL_OK(f, delete, "{\"name\": \"ci\", \"force\": true}");
		g_autoptr(JsonObject) gone2 = CALL_OK(f, delete, "{\"name\": \"keep\"}");
	}
	g_assert_false(g_file_test(guest_dir, G_FILE_TEST_EXISTS));
}

static void
test_qemu_missing(Fixture *f, gconstpointer user_data)
{
	g_autoptr(VmsupVmService) broken = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *msg = NULL;
	g_autofree gchar *rt = test_vm_runtime_dir(f, "keep");
	g_autoptr(JsonObject) vm = NULL;
	VmsupVmService *good;

	test_create(f, "keep", FALSE);
	before = test_snapshot(f);
	broken = fixture_new_service(f,
				     "/nonexistent/qemu-system-x86_64",
				     f->runtime_dir,
				     VMSUP_ACCEL_TCG);
	good = g_steal_pointer(&f->service);
	f->service = broken;

	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"new1\", \"image\": \"%s\", \"start\": true}",
		       f->image);
	g_assert_nonnull(strstr(msg, "/nonexistent/qemu-system-x86_64"));
	g_clear_pointer(&msg, g_free);
	msg = CALL_ERR(f, start, VMSUP_ERROR_FAILED_PRECONDITION, "{\"name\": \"keep\"}");
	g_assert_nonnull(strstr(msg, "/nonexistent/qemu-system-x86_64"));
	g_assert_false(g_file_test(rt, G_FILE_TEST_EXISTS));
	vm = test_get(f, "keep");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "defined");

	f->service = good;
	after = test_snapshot(f);
	g_assert_cmpstr(after, ==, before);
	g_assert_cmpuint(f->pids->len, ==, 0);
	{
		g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"keep\"}");
	}
}

static void
test_runtime_dir_blocked(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *blocker = g_build_filename(f->tmp, "blocker", NULL);
	g_autofree gchar *below = g_build_filename(blocker, "run", NULL);
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *msg = NULL;
	g_autoptr(JsonObject) vm = NULL;

	g_assert_true(g_file_set_contents(blocker, "", 0, NULL));
	g_clear_object(&f->service);
	f->service = fixture_new_service(f, NULL, below, VMSUP_ACCEL_TCG);
	test_create(f, "keep", FALSE);
	before = test_snapshot(f);

	msg = CALL_ERR(f, start, VMSUP_ERROR_FAILED_PRECONDITION, "{\"name\": \"keep\"}");
	g_assert_nonnull(strstr(msg, "runtime directory"));
	vm = test_get(f, "keep");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "defined");
	g_clear_pointer(&msg, g_free);

	/* a create that cannot start is undone as a whole */
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"k3\", \"image\": \"%s\", \"start\": true, \"wait\": true}",
		       f->image);
	g_assert_nonnull(strstr(msg, "runtime directory"));
	after = test_snapshot(f);
	g_assert_cmpstr(after, ==, before);
	g_assert_cmpuint(f->pids->len, ==, 0);
	{
		g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"keep\"}");
	}
}

static void
test_corrupt_definition(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *bad = test_def_path(f, "bad");
	g_autofree gchar *vms_dir = g_build_filename(f->state_dir, "vms", NULL);
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(GDir) dir = NULL;
	const gchar *name;
	guint n_aside = 0;

	test_create(f, "good", FALSE);
	g_assert_true(g_file_set_contents(bad, "{\"name\": \"bad\", \"cpus\": ", -1, NULL));

	expected_warning = "moved aside";
	n_expected_warnings = 0;
	fixture_replace_service(f);
	expected_warning = NULL;
	g_assert_cmpuint(n_expected_warnings, ==, 1);

	list = test_sync_ok(f, vmsup_vm_service_list, "{}");
	g_assert_cmpuint(json_array_get_length(json_object_get_array_member(list, "vms")), ==, 1);
	g_assert_false(g_file_test(bad, G_FILE_TEST_EXISTS));
	dir = g_dir_open(vms_dir, 0, NULL);
	while ((name = g_dir_read_name(dir)) != NULL)
		n_aside += g_str_has_prefix(name, "bad.json.corrupt-") ? 1 : 0;
	g_assert_cmpuint(n_aside, ==, 1);
	{
		g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"good\"}");
	}
}

static void
test_set(Fixture *f, gconstpointer user_data)
{
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(f->state_dir);
	g_autoptr(JsonObject) res = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(GPtrArray) defs = NULL;
	g_autofree gchar *def_path = test_def_path(f, "s1");
	g_autofree gchar *file_before = NULL;
	g_autofree gchar *file_after = NULL;
	g_autofree gchar *msg = NULL;
	JsonArray *pending;

	test_create(f, "s1", FALSE);
	res = CALL_OK(f, set, "{\"name\": \"s1\", \"cpus\": 2}");
	g_assert_cmpuint(
	    json_array_get_length(json_object_get_array_member(res, "pending_restart")),
	    ==,
	    0);
	g_assert_cmpint(
	    json_object_get_int_member(json_object_get_object_member(res, "vm"), "cpus"),
	    ==,
	    2);
	defs = vmsup_vm_store_load_all(store, NULL);
	g_assert_cmpuint(((VmsupVmDef *)g_ptr_array_index(defs, 0))->cpus, ==, 2);

	{
		g_autoptr(JsonObject) started = CALL_OK(f, start, "{\"name\": \"s1\"}");
	}
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, set, "{\"name\": \"s1\", \"memory_mib\": 96, \"autostart\": true}");
	pending = json_object_get_array_member(res, "pending_restart");
	g_assert_cmpuint(json_array_get_length(pending), ==, 1);
	g_assert_cmpstr(json_array_get_string_element(pending, 0), ==, "memory_mib");
	vm = test_get(f, "s1");
	g_assert_true(json_object_get_boolean_member(vm, "autostart"));
	g_assert_cmpint(json_object_get_int_member(vm, "memory_mib"), ==, 96);
	g_assert_cmpstr(
	    json_array_get_string_element(json_object_get_array_member(vm, "pending_restart"), 0),
	    ==,
	    "memory_mib");

	/* back to what QEMU runs with: nothing pending */
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, set, "{\"name\": \"s1\", \"fields\": {\"memory_mib\": 64}}");
	g_assert_cmpuint(
	    json_array_get_length(json_object_get_array_member(res, "pending_restart")),
	    ==,
	    0);

	/* a bad field changes nothing */
	g_assert_true(g_file_get_contents(def_path, &file_before, NULL, NULL));
	msg = CALL_ERR(f,
		       set,
		       VMSUP_ERROR_INVALID_ARGUMENT,
		       "{\"name\": \"s1\", \"cpus\": 4, \"forward\": [1, 1]}");
	g_assert_true(g_file_get_contents(def_path, &file_after, NULL, NULL));
	g_assert_cmpstr(file_after, ==, file_before);

	{
		g_autoptr(JsonObject) stopped =
		    CALL_OK(f, stop, "{\"name\": \"s1\", \"force\": true}");
		g_assert_false(json_object_has_member(stopped, "pending_restart"));
		g_assert_cmpint(json_object_get_int_member(stopped, "cpus"), ==, 2);
	}
	{
		g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"s1\"}");
	}
}

/* @selected holds exactly the members of @whole named in @fields, with the same values */
static void
test_assert_selection(JsonObject *whole, JsonObject *selected, const gchar *const *fields)
{
	g_autoptr(GList) members = json_object_get_members(selected);

	for (GList *l = members; l != NULL; l = l->next) {
		const gchar *member = l->data;
		g_assert_true(g_strv_contains(fields, member));
		g_assert_true(json_object_has_member(whole, member));
		g_assert_true(json_node_equal(json_object_get_member(selected, member),
					      json_object_get_member(whole, member)));
	}
	for (guint i = 0; fields[i] != NULL; i++)
		g_assert_true(json_object_has_member(selected, fields[i]) ==
			      json_object_has_member(whole, fields[i]));
}

/* vm.list's fields: each VM with just the members asked for that it has; none asked, all */
static void
test_list_select(Fixture *f, gconstpointer user_data)
{
	const gchar *const names[] = {"lf-def", "lf-run"};
	const gchar *const *members = vmsup_vm_service_get_member_names();
	g_autoptr(JsonObject) whole_def = NULL;
	g_autoptr(JsonObject) whole_run = NULL;
	JsonObject *whole[G_N_ELEMENTS(names)];
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(JsonObject) res = NULL;
	g_autofree gchar *msg = NULL;
	JsonArray *vms;

	test_create(f, "lf-def", FALSE);
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"lf-run\", \"image\": \"%s\", \"memory_mib\": 64, "
		      "\"forward\": [8080], \"start\": true, \"wait\": true}",
		      f->image);
	g_clear_pointer(&res, json_object_unref);
	/* a change waiting for the next start: pending_restart */
	res = CALL_OK(f, set, "{\"name\": \"lf-run\", \"cpus\": 2}");
	whole_def = test_sync_ok(f, vmsup_vm_service_get, "{\"name\": \"lf-def\"}");
	whole_run = test_sync_ok(f, vmsup_vm_service_get, "{\"name\": \"lf-run\"}");
	whole[0] = whole_def;
	whole[1] = whole_run;
	/* what the selection is tested on is there */
	g_assert_true(json_object_has_member(whole[1], "pid"));
	g_assert_true(json_object_has_member(whole[1], "forwards"));
	g_assert_true(json_object_has_member(whole[1], "pending_restart"));
	g_assert_false(json_object_has_member(whole[0], "pid"));

	/* without fields (or with null) each VM is its vm.get result */
	for (guint k = 0; k < 2; k++) {
		list = test_sync_ok(f, vmsup_vm_service_list, k == 0 ? "{}" : "{\"fields\": null}");
		vms = json_object_get_array_member(list, "vms");
		g_assert_cmpuint(json_array_get_length(vms), ==, G_N_ELEMENTS(names));
		for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
			g_autoptr(JsonNode) want = vmsup_json_node_new_object(whole[i]);
			g_assert_true(json_node_equal(json_array_get_element(vms, i), want));
		}
		g_clear_pointer(&list, json_object_unref);
	}

	/* each member alone, then a mix, in any order: the result keeps vm.get's order */
	for (guint m = 0; members[m] != NULL; m++) {
		const gchar *const fields[] = {members[m], NULL};
		g_autofree gchar *json = g_strdup_printf("{\"fields\": [\"%s\"]}", members[m]);
		list = test_sync_ok(f, vmsup_vm_service_list, json);
		vms = json_object_get_array_member(list, "vms");
		g_assert_cmpuint(json_array_get_length(vms), ==, G_N_ELEMENTS(names));
		for (guint i = 0; i < G_N_ELEMENTS(names); i++)
			test_assert_selection(whole[i],
					      json_array_get_object_element(vms, i),
					      fields);
		g_clear_pointer(&list, json_object_unref);
	}
	{
		const gchar *const fields[] =
		    {"pid", "forwards", "name", "pending_restart", "idle_s", "state", NULL};
		g_autoptr(GList) order = NULL;

		list = test_sync_ok(f,
				    vmsup_vm_service_list,
				    "{\"fields\": [\"pid\", \"forwards\", \"name\", "
				    "\"pending_restart\", \"idle_s\", \"state\", \"pid\"]}");
		vms = json_object_get_array_member(list, "vms");
		for (guint i = 0; i < G_N_ELEMENTS(names); i++)
			test_assert_selection(whole[i],
					      json_array_get_object_element(vms, i),
					      fields);
		/* the activity comes from the stats service, merged in by the RPC table */
		g_assert_false(
		    json_object_has_member(json_array_get_object_element(vms, 1), "idle_s"));
		order = json_object_get_members(json_array_get_object_element(vms, 1));
		g_assert_cmpuint(g_list_length(order), ==, 5);
		g_assert_cmpstr(g_list_nth_data(order, 0), ==, "name");
		g_assert_cmpstr(g_list_nth_data(order, 1), ==, "state");
		g_assert_cmpstr(g_list_nth_data(order, 2), ==, "pid");
		g_assert_cmpstr(g_list_nth_data(order, 3), ==, "forwards");
		g_assert_cmpstr(g_list_nth_data(order, 4), ==, "pending_restart");
		g_clear_pointer(&list, json_object_unref);
	}

	/* no member asked for: one empty object per VM */
	list = test_sync_ok(f, vmsup_vm_service_list, "{\"fields\": []}");
	vms = json_object_get_array_member(list, "vms");
	g_assert_cmpuint(json_array_get_length(vms), ==, G_N_ELEMENTS(names));
	for (guint i = 0; i < G_N_ELEMENTS(names); i++)
		g_assert_cmpuint(json_object_get_size(json_array_get_object_element(vms, i)),
				 ==,
				 0);

	/* the service itself refuses what is not a list of names */
	msg = test_sync_err(f,
			    vmsup_vm_service_list,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "{\"fields\": \"name\"}");
	g_assert_nonnull(strstr(msg, "'fields'"));
	g_clear_pointer(&msg, g_free);
	msg = test_sync_err(f,
			    vmsup_vm_service_list,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "{\"fields\": [\"name\", 7]}");
	g_assert_nonnull(strstr(msg, "integer"));

	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, delete, "{\"name\": \"lf-run\", \"force\": true}");
}

static gboolean
test_cmdline_has(GPid pid, const gchar *needle)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/cmdline", pid);
	g_autofree gchar *contents = NULL;
	gsize len = 0;

	g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
	for (gsize i = 0; i + 1 < len; i++) {
		if (contents[i] == '\0')
			contents[i] = ' ';
	}
	return strstr(contents, needle) != NULL;
}

/* what WorkspaceService asks for: a host directory shared over 9p */
static void
test_share_dir(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *share = g_build_filename(f->tmp, "share", NULL);
	g_autofree gchar *msg = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) res = NULL;
	g_autoptr(JsonObject) stopped = NULL;
	g_autoptr(JsonObject) deleted = NULL;
	JsonArray *pending;
	GPid pid;

	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_INVALID_ARGUMENT,
		       "{\"name\": \"ws1\", \"image\": \"%s\", \"share_dir\": \"%s\"}",
		       f->image,
		       share);
	g_assert_nonnull(strstr(msg, "not a directory"));
	g_assert_cmpint(g_mkdir(share, 0700), ==, 0);
	{
		g_autoptr(JsonObject) created =
		    CALL_OK(f,
			    create,
			    "{\"name\": \"ws1\", \"image\": \"%s\", "
			    "\"memory_mib\": 64, \"share_dir\": \"%s\", "
			    "\"start\": true, \"wait\": true}",
			    f->image,
			    share);
	}
	vm = test_get(f, "ws1");
	g_assert_cmpstr(json_object_get_string_member(vm, "share_dir"), ==, share);
	pid = test_get_pid(f, "ws1");
	g_assert_true(test_cmdline_has(pid, "mount_tag=workspace"));

	res = CALL_OK(f, set, "{\"name\": \"ws1\", \"share_dir\": null}");
	pending = json_object_get_array_member(res, "pending_restart");
	g_assert_cmpuint(json_array_get_length(pending), ==, 1);
	g_assert_cmpstr(json_array_get_string_element(pending, 0), ==, "share_dir");
	g_assert_false(
	    json_object_has_member(json_object_get_object_member(res, "vm"), "share_dir"));

	stopped = CALL_OK(f, stop, "{\"name\": \"ws1\", \"force\": true}");
	g_assert_false(json_object_has_member(stopped, "pending_restart"));
	deleted = CALL_OK(f, delete, "{\"name\": \"ws1\"}");
}

typedef struct {
	gboolean done;
	gboolean locked;
	GError *error;
} HookLock;

static void
test_hooks_lock_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	HookLock *lock = user_data;
	lock->locked = vmsup_vm_hooks_lock_vm_finish(res, &lock->error);
	lock->done = TRUE;
}

static void
test_hooks(Fixture *f, gconstpointer user_data)
{
	VmsupVmHooks copy = {NULL};
	HookLock lock = {FALSE, FALSE, NULL};
	VmsupVmService *gone_service = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonObject) stopped = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(vmsup_vm_hooks_is_complete(vmsup_vm_service_get_hooks(f->service)));
	vmsup_vm_hooks_copy(&copy, vmsup_vm_service_get_hooks(f->service));
	g_assert_true(vmsup_vm_hooks_is_complete(&copy));

	test_create(f, "h1", TRUE);
	g_assert_true(vmsup_vm_hooks_vm_alive(&copy, "h1"));

	/* a sibling holding the VM's lock holds back the verbs on it */
	vmsup_vm_hooks_lock_vm(&copy, "h1", NULL, test_hooks_lock_cb, &lock);
	vmsup_test_wait_flag(&lock.done, TEST_TIMEOUT_S);
	g_assert_no_error(lock.error);
	g_assert_true(lock.locked);
	json_object_set_string_member(params, "name", "h1");
	json_object_set_boolean_member(params, "force", TRUE);
	vmsup_vm_service_stop_async(f->service,
				    vmsup_caller_daemon(),
				    params,
				    NULL,
				    vmsup_test_store_result_cb,
				    &slot);
	vmsup_test_drain_main_context();
	g_assert_null(slot);
	g_assert_true(vmsup_vm_hooks_vm_alive(&copy, "h1"));
	vmsup_vm_hooks_unlock_vm(&copy, "h1");
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	stopped = vmsup_vm_service_stop_finish(f->service, res, &error);
	g_assert_no_error(error);
	g_assert_false(vmsup_vm_hooks_vm_alive(&copy, "h1"));
	{
		g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"h1\"}");
	}

	/* the service gone, the hooks read "not alive" and fail cleanly */
	g_clear_object(&res);
	g_object_add_weak_pointer(G_OBJECT(f->service), (gpointer *)&gone_service);
	gone_service = f->service;
	g_clear_object(&f->service);
	g_assert_null(gone_service);
	g_assert_false(vmsup_vm_hooks_vm_alive(&copy, "h1"));
	g_assert_null(vmsup_vm_hooks_vm_handles(&copy, "h1"));
	vmsup_vm_hooks_unlock_vm(&copy, "h1");
	vmsup_vm_hooks_cleanup_runtime(&copy, "h1");
	lock.done = FALSE;
	lock.locked = FALSE;
	vmsup_vm_hooks_lock_vm(&copy, "h1", NULL, test_hooks_lock_cb, &lock);
	vmsup_test_wait_flag(&lock.done, TEST_TIMEOUT_S);
	g_assert_false(lock.locked);
	g_assert_error(lock.error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_clear_error(&lock.error);
	vmsup_vm_hooks_clear(&copy);
	g_assert_false(vmsup_vm_hooks_is_complete(&copy));
}

static void
test_accel_auto(Fixture *f, gconstpointer user_data)
{
	g_autoptr(VmsupVmService) service = NULL;
	const gchar *reason = NULL;
	VmsupAccel accel;

	service = vmsup_vm_service_new(f->state_dir, f->runtime_dir, NULL, VMSUP_ACCEL_AUTO);
	accel = vmsup_vm_service_get_accel(service, &reason);
	g_assert_cmpint(accel, ==, VMSUP_ACCEL_AUTO);
	g_clear_object(&service);
	service = fixture_new_service(f, NULL, f->runtime_dir, VMSUP_ACCEL_AUTO);
	accel = vmsup_vm_service_get_accel(service, &reason);
	g_assert_true(accel == VMSUP_ACCEL_KVM || accel == VMSUP_ACCEL_TCG);
	g_assert_nonnull(reason);
	g_assert_cmpstr(reason, !=, "not decided yet");
	g_test_message("accelerator: %s (%s)", vmsup_accel_to_string(accel), reason);
}

/* Accel=kvm and Accel=tcg are used as configured: no probe, so none can veto a forced KVM */
static void
test_accel_configured(Fixture *f, gconstpointer user_data)
{
	const VmsupAccel configured[] = {VMSUP_ACCEL_KVM, VMSUP_ACCEL_TCG};
	g_autoptr(VmsupVmService) probed = NULL;
	const gchar *reason = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(configured); i++) {
		g_autoptr(VmsupVmService) service = NULL;
		f->accels = 0;
		service = fixture_new_service(f, "/bin/false", f->runtime_dir, configured[i]);
		g_assert_cmpint(vmsup_vm_service_get_accel(service, &reason), ==, configured[i]);
		g_assert_cmpstr(reason, ==, "configured");
		/* said once, by the time the load ends */
		g_assert_cmpuint(f->accels, ==, 1);
	}
	/* the same QEMU fails the probe when the choice is left to it */
	f->accels = 0;
	probed = fixture_new_service(f, "/bin/false", f->runtime_dir, VMSUP_ACCEL_AUTO);
	g_assert_cmpint(vmsup_vm_service_get_accel(probed, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_true(g_str_has_prefix(reason, "KVM probe failed: QEMU exited with status 1"));
	g_assert_cmpuint(f->accels, ==, 1);
}

/* how a run ended, kept over a restart of the daemon */

static gchar *
test_outcome_path(Fixture *f, const gchar *name)
{
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(f->state_dir);
	return vmsup_vm_store_get_outcome_path(store, name);
}

static void
test_save_outcome(Fixture *f, const gchar *name, const VmsupVmOutcome *outcome)
{
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(f->state_dir);
	g_autoptr(GError) error = NULL;
	g_assert_true(vmsup_vm_store_save_outcome(store, name, outcome, &error));
	g_assert_no_error(error);
}

static guint
test_count_prefixed(const gchar *dir_path, const gchar *prefix)
{
	g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
	const gchar *name;
	guint n = 0;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL)
		n += g_str_has_prefix(name, prefix) ? 1 : 0;
	return n;
}

/* stopped, crashed, never started, and one whose record went bad: the next daemon agrees */
static void
test_outcome_restart(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *os_record = test_outcome_path(f, "os");
	g_autofree gchar *ob_record = test_outcome_path(f, "ob");
	g_autofree gchar *record_dir = g_path_get_dirname(os_record);
	g_autofree gchar *ob_def = test_def_path(f, "ob");
	g_autofree gchar *ob_def_before = NULL;
	g_autofree gchar *ob_def_after = NULL;
	g_autofree gchar *os_reason = NULL;
	g_autofree gchar *oc_reason = NULL;
	g_autoptr(JsonObject) os = NULL;
	g_autoptr(JsonObject) oc = NULL;
	g_autoptr(JsonObject) ob = NULL;
	g_autoptr(JsonObject) od = NULL;
	g_autoptr(JsonObject) res = NULL;
	GPid pid;

	test_create(f, "os", TRUE);
	test_create(f, "oc", TRUE);
	test_create(f, "ob", TRUE);
	test_create(f, "od", FALSE);

	/* the halting guest ignores ACPI: timeout 0 quits QEMU, which exits 0 */
	res = CALL_OK(f, stop, "{\"name\": \"os\", \"timeout_s\": 0}");
	os_reason = g_strdup(json_object_get_string_member(res, "exit_reason"));
	g_assert_true(g_str_has_prefix(os_reason, "stopped on request; QEMU "));
	g_assert_cmpint(json_object_get_int_member(res, "exit_status"), ==, 0);
	/* the answer comes once the record is saved */
	g_assert_true(g_file_test(os_record, G_FILE_TEST_IS_REGULAR));
	g_clear_pointer(&res, json_object_unref);

	pid = test_get_pid(f, "oc");
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
	test_wait_state(f, "oc", "crashed");
	oc = test_get(f, "oc");
	oc_reason = g_strdup(json_object_get_string_member(oc, "exit_reason"));
	g_assert_nonnull(strstr(oc_reason, "signal 9"));
	g_clear_pointer(&oc, json_object_unref);
	/* saved once the runtime dir is gone */
	{
		g_autofree gchar *rt = test_vm_runtime_dir(f, "oc");
		test_wait_gone(rt);
	}

	res = CALL_OK(f, stop, "{\"name\": \"ob\", \"force\": true}");
	g_clear_pointer(&res, json_object_unref);
	g_assert_true(g_file_get_contents(ob_def, &ob_def_before, NULL, NULL));
	g_assert_true(g_file_set_contents(ob_record, "{\"name\": \"ob\", \"state\": ", -1, NULL));

	/* the daemon goes and comes back */
	expected_warning = "moved aside";
	n_expected_warnings = 0;
	fixture_replace_service(f);
	expected_warning = NULL;
	g_assert_cmpuint(n_expected_warnings, ==, 1);

	os = test_get(f, "os");
	g_assert_cmpstr(json_object_get_string_member(os, "state"), ==, "stopped");
	g_assert_cmpstr(json_object_get_string_member(os, "exit_reason"), ==, os_reason);
	g_assert_cmpint(json_object_get_int_member(os, "exit_status"), ==, 0);
	g_assert_false(json_object_has_member(os, "pid"));
	oc = test_get(f, "oc");
	g_assert_cmpstr(json_object_get_string_member(oc, "state"), ==, "crashed");
	g_assert_cmpstr(json_object_get_string_member(oc, "exit_reason"), ==, oc_reason);
	g_assert_cmpint(json_object_get_int_member(oc, "exit_signal"), ==, SIGKILL);
	g_assert_false(json_object_has_member(oc, "exit_status"));
	/* a bad record costs the outcome only */
	ob = test_get(f, "ob");
	g_assert_cmpstr(json_object_get_string_member(ob, "state"), ==, "defined");
	g_assert_false(json_object_has_member(ob, "exit_reason"));
	g_assert_cmpint(json_object_get_int_member(ob, "memory_mib"), ==, 64);
	g_assert_cmpstr(json_object_get_string_member(ob, "image"), ==, f->image);
	g_assert_true(g_file_get_contents(ob_def, &ob_def_after, NULL, NULL));
	g_assert_cmpstr(ob_def_after, ==, ob_def_before);
	g_assert_cmpuint(test_count_prefixed(record_dir, "ob.json.corrupt-"), ==, 1);
	od = test_get(f, "od");
	g_assert_cmpstr(json_object_get_string_member(od, "state"), ==, "defined");
	g_assert_false(json_object_has_member(od, "exit_reason"));

	/* a new run replaces the record; its own end writes a new one */
	res = CALL_OK(f, start, "{\"name\": \"os\"}");
	g_assert_cmpstr(json_object_get_string_member(res, "state"), ==, "running");
	g_assert_false(json_object_has_member(res, "exit_reason"));
	g_assert_false(g_file_test(os_record, G_FILE_TEST_EXISTS));
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, stop, "{\"name\": \"os\", \"force\": true}");
	g_assert_true(g_str_has_prefix(json_object_get_string_member(res, "exit_reason"),
				       "stopped on request; QEMU was killed by signal 9"));
	g_assert_true(g_file_test(os_record, G_FILE_TEST_IS_REGULAR));
	g_clear_pointer(&res, json_object_unref);

	/* deleting a VM takes the record along */
	res = CALL_OK(f, delete, "{\"name\": \"os\"}");
	g_assert_false(g_file_test(os_record, G_FILE_TEST_EXISTS));
	for (guint i = 0; i < 3; i++) {
		const gchar *names[] = {"oc", "ob", "od"};
		g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"%s\"}", names[i]);
	}
	g_assert_cmpuint(test_count_prefixed(record_dir, "o") -
			     test_count_prefixed(record_dir, "ob.json.corrupt-"),
			 ==,
			 0);
}

/* QEMU died while no daemon ran: what the next daemon reports, and keeps */
static void
test_outcome_dead_at_load(Fixture *f, gconstpointer user_data)
{
	g_autoptr(VmsupVmOutcome) saved = NULL;
	g_autoptr(VmsupVmOutcome) stale = NULL;
	g_autoptr(VmsupVmOutcome) shut = NULL;
	g_autoptr(JsonObject) vm = NULL;
	const gchar *unknown = VMSUP_VM_UNWATCHED_END;
	/* killed -9 or terminated: the daemon writes the pid file, so it stays either way */
	const gchar *names[] = {"dl", "dw", "dx", "dt", "dy"};
	const gint sigs[] = {SIGKILL, SIGKILL, SIGKILL, SIGTERM, SIGTERM};
	GPid pids[G_N_ELEMENTS(names)];

	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		test_create(f, names[i], TRUE);
		pids[i] = test_get_pid(f, names[i]);
	}
	/* as if killed -9: the QEMUs stay, then end unwatched */
	g_clear_object(&f->service);
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autofree gchar *rt = test_vm_runtime_dir(f, names[i]);
		g_autofree gchar *pidfile = g_build_filename(rt, "qemu.pid", NULL);
		g_assert_cmpint(kill(pids[i], sigs[i]), ==, 0);
		vmsup_test_wait_until(test_pid_dead, GINT_TO_POINTER(pids[i]), TEST_TIMEOUT_S);
		g_assert_true(g_file_test(rt, G_FILE_TEST_IS_DIR));
		g_assert_true(g_file_test(pidfile, G_FILE_TEST_EXISTS));
	}
	/*
	 * dw: the daemon saved how this very QEMU ended and was killed before it
	 * removed the runtime dir; dx: a record of some earlier run is left over;
	 * dy: QEMU ended by itself, the daemon saved that and was killed
	 */
	saved = vmsup_vm_outcome_new(TRUE, "QEMU was killed by signal 9 (Killed)", SIGKILL);
	saved->pid = pids[1];
	saved->stopped_at = 1790000000;
	test_save_outcome(f, "dw", saved);
	stale = vmsup_vm_outcome_new(FALSE, "stopped on request; QEMU exited with status 0", 0);
	stale->pid = pids[2] + 1;
	test_save_outcome(f, "dx", stale);
	shut =
	    vmsup_vm_outcome_new(FALSE, "shut down (guest-shutdown); QEMU exited with status 0", 0);
	shut->pid = pids[4];
	test_save_outcome(f, "dy", shut);

	f->service = fixture_new_service(f, NULL, f->runtime_dir, VMSUP_ACCEL_TCG);
	for (guint round = 0; round < 2; round++) {
		for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
			g_autofree gchar *rt = test_vm_runtime_dir(f, names[i]);
			test_wait_gone(rt);
		}
		for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
			vm = test_get(f, names[i]);
			g_assert_false(json_object_has_member(vm, "pid"));
			if (i == 1) {
				g_assert_cmpstr(json_object_get_string_member(vm, "state"),
						==,
						"crashed");
				g_assert_cmpstr(json_object_get_string_member(vm, "exit_reason"),
						==,
						saved->reason);
				g_assert_cmpint(json_object_get_int_member(vm, "exit_signal"),
						==,
						SIGKILL);
			} else if (i == 4) {
				g_assert_cmpstr(json_object_get_string_member(vm, "state"),
						==,
						"stopped");
				g_assert_cmpstr(json_object_get_string_member(vm, "exit_reason"),
						==,
						shut->reason);
				g_assert_cmpint(json_object_get_int_member(vm, "exit_status"),
						==,
						0);
			} else {
				/* not our child: how it ended is unknown, and nobody asked for it
				 */
				g_assert_cmpstr(json_object_get_string_member(vm, "state"),
						==,
						"crashed");
				g_assert_cmpstr(json_object_get_string_member(vm, "exit_reason"),
						==,
						unknown);
				g_assert_false(json_object_has_member(vm, "exit_status"));
				g_assert_false(json_object_has_member(vm, "exit_signal"));
			}
			g_clear_pointer(&vm, json_object_unref);
		}
		/* and once more: now from the records alone */
		if (round == 0)
			fixture_replace_service(f);
	}
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(JsonObject) gone = CALL_OK(f, delete, "{\"name\": \"%s\"}", names[i]);
	}
}

typedef struct {
	Fixture *f;
	const gchar *name;
	const gchar *state;       /* wanted, NULL: any */
	gboolean want_last_error; /* TRUE: a last_error, FALSE: none */
} VmWait;

static gboolean
test_vm_matches(gpointer user_data)
{
	VmWait *wait = user_data;
	g_autoptr(JsonObject) vm = vmsup_vm_service_lookup(wait->f->service, wait->name);

	return vm != NULL &&
	       (wait->state == NULL ||
		g_strcmp0(json_object_get_string_member(vm, "state"), wait->state) == 0) &&
	       json_object_has_member(vm, "last_error") == wait->want_last_error;
}

/*
 * A QEMU frozen while the daemon was away: the next daemon serves without
 * waiting for it, and once it thaws, its QMP is found again.
 */
static void
test_adopt_frozen(Fixture *f, gconstpointer user_data)
{
	VmWait unreachable = {f, "fz", "running", TRUE};
	VmWait answers = {f, "fz", "running", FALSE};
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) res = NULL;
	GPid pid;

	test_create(f, "fz", TRUE);
	pid = test_get_pid(f, "fz");
	g_clear_object(&f->service);
	g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
	vmsup_test_wait_until(vmsup_test_pid_is_stopped, GINT_TO_POINTER(pid), TEST_TIMEOUT_S);

	/* loaded while the QEMU is still frozen: its adoption goes on behind */
	f->service = fixture_new_service(f, NULL, f->runtime_dir, VMSUP_ACCEL_TCG);
	g_assert_true(vmsup_test_pid_is_stopped(GINT_TO_POINTER(pid)));
	vm = test_get(f, "fz");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "starting");
	g_clear_pointer(&vm, json_object_unref);

	/* QMP gave up, the VM is watched */
	expected_warning = "QMP is unreachable";
	n_expected_warnings = 0;
	vmsup_test_wait_until(test_vm_matches, &unreachable, TEST_TIMEOUT_S);
	expected_warning = NULL;
	g_assert_cmpuint(n_expected_warnings, ==, 1);
	vm = test_get(f, "fz");
	g_assert_nonnull(
	    strstr(json_object_get_string_member(vm, "last_error"), "QMP is unreachable"));
	g_clear_pointer(&vm, json_object_unref);

	/* thawed: QMP answers again, with no restart of anything */
	g_assert_cmpint(kill(pid, SIGCONT), ==, 0);
	vmsup_test_wait_until(test_vm_matches, &answers, TEST_TIMEOUT_S);
	g_assert_cmpint(test_get_pid(f, "fz"), ==, pid);
	res = CALL_OK(f, stop, "{\"name\": \"fz\", \"timeout_s\": 1}");
	test_wait_state(f, "fz", "stopped");
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, delete, "{\"name\": \"fz\"}");
}

static JsonNode *
test_qmp(VmsupVmHandles *handles, const gchar *command, JsonObject *args /* owned */)
{
	VmsupQmpClient *qmp = vmsup_qemu_process_get_qmp(handles->process);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	JsonNode *result;

	vmsup_qmp_client_execute_async(qmp, command, args, NULL, test_query_status_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	result = vmsup_qmp_client_execute_finish(qmp, res, &error);
	g_assert_no_error(error);
	return result;
}

typedef struct {
	VmsupVmHandles *handles;
	const gchar *status;
} QmpStatusWait;

static gboolean
test_migration_is(gpointer user_data)
{
	QmpStatusWait *w = user_data;
	g_autoptr(JsonNode) info = test_qmp(w->handles, "query-migrate", NULL);

	return g_strcmp0(json_object_get_string_member_with_default(json_node_get_object(info),
								    "status",
								    ""),
			 w->status) == 0;
}

/*
 * A QEMU whose vCPUs wait though its status is not "paused" (here
 * "postmigrate", as after a memory snapshot saved while the daemon was
 * away; "prelaunch" when the daemon went before a start's "cont") is
 * adopted paused, not running, and resumes.
 */
static void
test_adopt_not_running(Fixture *f, gconstpointer user_data)
{
	g_autoptr(VmsupVmHandles) handles = NULL;
	g_autoptr(JsonNode) status = NULL;
	g_autoptr(JsonObject) res = NULL;
	g_autoptr(GError) error = NULL;
	JsonObject *args;
	QmpStatusWait done;
	GPid pid;
	gint sink;

	test_create(f, "pm", TRUE);
	pid = test_get_pid(f, "pm");
	handles = vmsup_vm_hooks_vm_handles(vmsup_vm_service_get_hooks(f->service), "pm");
	g_assert_nonnull(handles);
	/* the machine's state migrated into nothing, by descriptor as a snapshot saves it */
	sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
	g_assert_cmpint(sink, >=, 0);
	g_assert_true(
	    vmsup_qmp_client_send_fd(vmsup_qemu_process_get_qmp(handles->process), sink, &error));
	g_assert_no_error(error);
	close(sink);
	args = json_object_new();
	json_object_set_string_member(args, "fdname", "sink");
	status = test_qmp(handles, "getfd", args);
	args = json_object_new();
	json_object_set_string_member(args, "uri", "fd:sink");
	g_clear_pointer(&status, json_node_unref);
	status = test_qmp(handles, "migrate", args);
	done = (QmpStatusWait){handles, "completed"};
	vmsup_test_wait_until(test_migration_is, &done, TEST_TIMEOUT_S);
	g_clear_pointer(&status, json_node_unref);
	status = test_qmp(handles, "query-status", NULL);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(status), "status"),
			==,
			"postmigrate");
	g_assert_false(json_object_get_boolean_member(json_node_get_object(status), "running"));
	g_clear_pointer(&handles, vmsup_vm_handles_unref);

	/* the daemon goes as if killed; the next one finds the QEMU waiting */
	fixture_replace_service(f);
	test_wait_state(f, "pm", "paused");
	g_assert_cmpint(test_get_pid(f, "pm"), ==, pid);
	res = CALL_OK(f, resume, "{\"name\": \"pm\"}");
	g_clear_pointer(&res, json_object_unref);
	test_wait_state(f, "pm", "running");
	res = CALL_OK(f, stop, "{\"name\": \"pm\", \"force\": true}");
	test_wait_state(f, "pm", "stopped");
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, delete, "{\"name\": \"pm\"}");
}

/* how a run ended could not be saved (a full disk): a restarted daemon still knows it ran */
static void
test_outcome_unsaved(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *rt = test_vm_runtime_dir(f, "un");
	g_autofree gchar *record = test_outcome_path(f, "un");
	g_autofree gchar *records = g_path_get_dirname(record);
	g_autofree gchar *aside = g_strconcat(records, ".aside", NULL);
	g_autoptr(JsonObject) res = NULL;
	g_autoptr(JsonObject) vm = NULL;

	test_create(f, "un", TRUE);
	/* the record's directory is a file now: no record can be written there */
	g_assert_cmpint(g_mkdir_with_parents(records, 0700), ==, 0);
	g_assert_cmpint(g_rename(records, aside), ==, 0);
	g_assert_true(g_file_set_contents(records, "", 0, NULL));
	expected_warning = "its runtime directory stays";
	n_expected_warnings = 0;
	res = CALL_OK(f, stop, "{\"name\": \"un\", \"force\": true}");
	test_wait_state(f, "un", "stopped");
	vmsup_test_wait_until(test_warned, NULL, TEST_TIMEOUT_S);
	expected_warning = NULL;
	g_assert_cmpuint(n_expected_warnings, ==, 1);
	g_assert_true(g_file_test(rt, G_FILE_TEST_IS_DIR));

	g_assert_cmpint(g_unlink(records), ==, 0);
	g_assert_cmpint(g_rename(aside, records), ==, 0);
	fixture_replace_service(f);
	test_wait_gone(rt);
	vm = test_get(f, "un");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "crashed");
	g_assert_cmpstr(json_object_get_string_member(vm, "exit_reason"),
			==,
			VMSUP_VM_UNWATCHED_END);
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, delete, "{\"name\": \"un\"}");
}

typedef struct {
	const gchar *name;
	gchar *exit_reason; /* of the last vm-changed of @name */
} ChangeCapture;

static void
test_capture_changed_cb(VmsupVmService *service,
			const gchar *name,
			JsonObject *vm,
			gpointer user_data)
{
	ChangeCapture *capture = user_data;
	if (g_strcmp0(name, capture->name) != 0)
		return;
	g_free(capture->exit_reason);
	capture->exit_reason = g_strdup(vmsup_json_object_get_string(vm, "exit_reason", NULL));
}

/* a sibling stopping a VM through the hooks, as the auto-stop sweep does, gives its reason */
static void
test_outcome_policy_stop(Fixture *f, gconstpointer user_data)
{
	const gchar *reason = "stopped by the auto-stop policy after 7 s without activity";
	VmsupVmHooks hooks = {NULL};
	HookLock lock = {FALSE, FALSE, NULL};
	ChangeCapture capture = {"ps", NULL};
	g_autoptr(VmsupVmHandles) handles = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) answer = NULL;
	g_autofree gchar *policy_reason = NULL;
	GAsyncResult *slot = NULL;
	gulong changed_id;

	vmsup_vm_hooks_copy(&hooks, vmsup_vm_service_get_hooks(f->service));
	g_assert_true(vmsup_vm_hooks_is_complete(&hooks));
	test_create(f, "ps", TRUE);
	changed_id = g_signal_connect(f->service,
				      "vm-changed",
				      G_CALLBACK(test_capture_changed_cb),
				      &capture);

	vmsup_vm_hooks_lock_vm(&hooks, "ps", NULL, test_hooks_lock_cb, &lock);
	vmsup_test_wait_flag(&lock.done, TEST_TIMEOUT_S);
	g_assert_true(lock.locked);
	vmsup_vm_hooks_note_stop(&hooks, "ps", reason);
	vm = test_get(f, "ps");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "stopping");
	g_clear_pointer(&vm, json_object_unref);
	/* the halting guest ignores ACPI: straight to quit */
	handles = vmsup_vm_hooks_vm_handles(&hooks, "ps");
	g_assert_nonnull(handles);
	vmsup_qemu_process_stop_async(handles->process,
				      FALSE,
				      0,
				      NULL,
				      vmsup_test_store_result_cb,
				      &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_qemu_process_stop_finish(handles->process, res, &error));
	g_assert_no_error(error);
	vmsup_vm_hooks_cleanup_runtime(&hooks, "ps");
	vmsup_vm_hooks_unlock_vm(&hooks, "ps");

	test_wait_state(f, "ps", "stopped");
	vm = test_get(f, "ps");
	policy_reason = g_strdup(json_object_get_string_member(vm, "exit_reason"));
	g_assert_cmpstr(policy_reason,
			==,
			"stopped by the auto-stop policy after 7 s without "
			"activity; QEMU exited with status 0");
	g_assert_cmpint(json_object_get_int_member(vm, "exit_status"), ==, 0);
	g_assert_cmpstr(test_states(f, "ps"), ==, "defined,starting,running,stopping,stopped");
	/* the event carries the same */
	g_assert_cmpstr(capture.exit_reason, ==, policy_reason);
	g_clear_pointer(&vm, json_object_unref);

	/* nothing to note on a VM that does not run */
	vmsup_vm_hooks_note_stop(&hooks, "ps", "stopped by something else");
	vmsup_vm_hooks_note_stop(&hooks, "nope", reason);
	vm = test_get(f, "ps");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "stopped");
	g_assert_cmpstr(json_object_get_string_member(vm, "exit_reason"), ==, policy_reason);
	g_clear_pointer(&vm, json_object_unref);

	/* kept over a restart, once saved (the runtime dir goes then) */
	g_signal_handler_disconnect(f->service, changed_id);
	test_wait_gone(handles->runtime_dir);
	fixture_replace_service(f);
	vm = test_get(f, "ps");
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "stopped");
	g_assert_cmpstr(json_object_get_string_member(vm, "exit_reason"), ==, policy_reason);
	g_clear_pointer(&vm, json_object_unref);

	/* the policy's reason does not stick: a user's stop is a user's */
	answer = CALL_OK(f, start, "{\"name\": \"ps\"}");
	g_clear_pointer(&answer, json_object_unref);
	answer = CALL_OK(f, stop, "{\"name\": \"ps\", \"timeout_s\": 0}");
	g_assert_cmpstr(json_object_get_string_member(answer, "exit_reason"),
			==,
			"stopped on request; QEMU exited with status 0");
	g_clear_pointer(&answer, json_object_unref);
	answer = CALL_OK(f, delete, "{\"name\": \"ps\"}");
	vmsup_vm_hooks_clear(&hooks);
	g_free(capture.exit_reason);
}

/* --- system mode: a caller other than root shares only its own directories - */

/* a uid other than root and the daemon's; the tests chown, so they run as root */
#define TEST_NOBODY 65534

static gchar *
test_make_dir_owned_by(Fixture *f, const gchar *name, uid_t uid)
{
	gchar *path = g_build_filename(f->tmp, name, NULL);
	g_assert_cmpint(g_mkdir(path, 0700), ==, 0);
	g_assert_cmpint(chown(path, uid, (gid_t)-1), ==, 0);
	return path;
}

/* share_dir with caller_uid, as WorkspaceService passes them for such a caller */
static void
test_share_owner(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *mine = NULL;
	g_autofree gchar *mine2 = NULL;
	g_autofree gchar *theirs = NULL;
	g_autofree gchar *link_theirs = g_build_filename(f->tmp, "link-theirs", NULL);
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *msg = NULL;
	g_autofree gchar *belongs = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) res = NULL;

	g_assert_cmpint(geteuid(), ==, 0);
	/* the caller must reach the test image, too: it names it */
	g_assert_cmpint(chmod(f->tmp, 0711), ==, 0);
	mine = test_make_dir_owned_by(f, "mine", TEST_NOBODY);
	mine2 = test_make_dir_owned_by(f, "mine2", TEST_NOBODY);
	theirs = test_make_dir_owned_by(f, "theirs", 0);
	g_assert_cmpint(symlink(theirs, link_theirs), ==, 0);
	belongs = g_strdup_printf("'%s' belongs to uid 0, not to you (uid %u); share a "
				  "directory you own",
				  theirs,
				  TEST_NOBODY);

	/* another's directory, directly or through a link: refused, nothing made */
	before = test_snapshot(f);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"s1\", \"image\": \"%s\", \"memory_mib\": 64, "
		       "\"share_dir\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		       f->image,
		       theirs,
		       TEST_NOBODY);
	g_assert_cmpstr(msg, ==, belongs);
	g_clear_pointer(&msg, g_free);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"s1\", \"image\": \"%s\", \"memory_mib\": 64, "
		       "\"share_dir\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		       f->image,
		       link_theirs,
		       TEST_NOBODY);
	g_assert_nonnull(strstr(msg, "through a symbolic link"));
	g_clear_pointer(&msg, g_free);
	/* a caller_uid that is no uid */
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_INVALID_ARGUMENT,
		       "{\"name\": \"s1\", \"image\": \"%s\", \"share_dir\": \"%s\", "
		       "\"caller_uid\": -1}",
		       f->image,
		       mine);
	g_clear_pointer(&msg, g_free);
	after = test_snapshot(f);
	g_assert_cmpstr(before, ==, after);
	g_clear_pointer(&before, g_free);
	g_clear_pointer(&after, g_free);
	g_assert_null(vmsup_vm_service_lookup(f->service, "s1"));

	/* the caller's own directory; root's request shares anything */
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"s1\", \"image\": \"%s\", \"memory_mib\": 64, "
		      "\"share_dir\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		      f->image,
		      mine,
		      TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"s2\", \"image\": \"%s\", \"memory_mib\": 64, "
		      "\"share_dir\": \"%s\", \"caller_uid\": 0, \"wait\": true}",
		      f->image,
		      theirs);
	g_clear_pointer(&res, json_object_unref);
	vm = test_get(f, "s1");
	g_assert_cmpstr(json_object_get_string_member(vm, "share_dir"), ==, mine);
	g_clear_pointer(&vm, json_object_unref);

	/* vm.set to another's directory: refused, the definition as it was */
	before = test_snapshot(f);
	msg = CALL_ERR(f,
		       set,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"s1\", \"share_dir\": \"%s\", \"caller_uid\": %u}",
		       theirs,
		       TEST_NOBODY);
	g_assert_cmpstr(msg, ==, belongs);
	g_clear_pointer(&msg, g_free);
	after = test_snapshot(f);
	g_assert_cmpstr(before, ==, after);
	vm = test_get(f, "s1");
	g_assert_cmpstr(json_object_get_string_member(vm, "share_dir"), ==, mine);
	g_clear_pointer(&vm, json_object_unref);

	/* to another of the caller's own: done */
	res = CALL_OK(f,
		      set,
		      "{\"name\": \"s1\", \"share_dir\": \"%s\", \"caller_uid\": %u}",
		      mine2,
		      TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);
	vm = test_get(f, "s1");
	g_assert_cmpstr(json_object_get_string_member(vm, "share_dir"), ==, mine2);
	/* caller_uid is checked and makes the owner, never stored nor shown itself */
	g_assert_false(json_object_has_member(vm, "caller_uid"));
	g_assert_cmpint(json_object_get_int_member(vm, "owner_uid"), ==, TEST_NOBODY);
}

/* a root QEMU opens the share by name at start: a link put in its place since is refused */
static void
test_share_swapped_at_start(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *share = g_build_filename(f->tmp, "share", NULL);
	g_autofree gchar *moved = g_build_filename(f->tmp, "share-moved", NULL);
	g_autofree gchar *other = g_build_filename(f->tmp, "other", NULL);
	g_autofree gchar *msg = NULL;
	g_autoptr(JsonObject) res = NULL;
	g_autoptr(JsonObject) vm = NULL;

	g_assert_cmpint(geteuid(), ==, 0);
	g_assert_cmpint(g_mkdir(share, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(other, 0700), ==, 0);
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"sw\", \"image\": \"%s\", \"memory_mib\": 64, "
		      "\"share_dir\": \"%s\", \"wait\": true}",
		      f->image,
		      share);
	g_clear_pointer(&res, json_object_unref);

	g_assert_cmpint(g_rename(share, moved), ==, 0);
	g_assert_cmpint(symlink(other, share), ==, 0);
	msg = CALL_ERR(f, start, VMSUP_ERROR_FAILED_PRECONDITION, "{\"name\": \"sw\"}");
	g_assert_nonnull(strstr(msg, "through a symbolic link"));
	g_assert_cmpuint(test_count_qemus(f), ==, 0);
	vm = test_get(f, "sw");
	g_assert_false(json_object_has_member(vm, "pid"));
	g_clear_pointer(&vm, json_object_unref);

	/* the directory itself back in place: it starts with the share */
	g_assert_cmpint(g_unlink(share), ==, 0);
	g_assert_cmpint(g_rename(moved, share), ==, 0);
	res = CALL_OK(f, start, "{\"name\": \"sw\"}");
	g_clear_pointer(&res, json_object_unref);
	g_assert_true(test_cmdline_has(test_get_pid(f, "sw"), "mount_tag=workspace"));
	res = CALL_OK(f, stop, "{\"name\": \"sw\", \"force\": true}");
}

/* --- MaxVMsPerUser, MaxMemoryMiBPerUser ---------------------------------------- */

#define TEST_NOBODY 65534

/* a VM of nobody's: a kernel anyone may read, so the host-file rule lets it through */
static gchar *
test_create_as_nobody(Fixture *f, const gchar *name, guint memory_mib, gint code)
{
#define TEST_NOBODY_CREATE                                                                         \
	"{\"name\": \"%s\", \"kernel\": \"/etc/hostname\", \"memory_mib\": %u, \"caller_uid\": "   \
	"%u, "                                                                                     \
	"\"wait\": true}"
	g_autoptr(JsonObject) res = NULL;

	if (code != 0)
		return CALL_ERR(f, create, code, TEST_NOBODY_CREATE, name, memory_mib, TEST_NOBODY);
	res = CALL_OK(f, create, TEST_NOBODY_CREATE, name, memory_mib, TEST_NOBODY);
	g_assert_cmpstr(json_object_get_string_member(res, "vm"), ==, name);
	return NULL;
}

static void
test_owner_limits(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *msg = NULL;
	g_autofree gchar *msg_vms = NULL;
	g_autofree gchar *msg_set = NULL;
	g_autoptr(JsonObject) res = NULL;
	g_autoptr(JsonObject) vm = NULL;

	vmsup_vm_service_set_owner_limits(f->service, 3, 600);
	test_create_as_nobody(f, "n1", 256, 0);
	test_create_as_nobody(f, "n2", 256, 0);

	/* 512 MiB in use: 256 more would pass 600; refused, and nothing of it anywhere */
	before = test_snapshot(f);
	msg = test_create_as_nobody(f, "n3", 256, VMSUP_ERROR_FAILED_PRECONDITION);
	g_test_message("%s", msg);
	g_assert_nonnull(strstr(msg, "Cannot create VM 'n3' with 256 MiB"));
	g_assert_nonnull(strstr(msg, "uid 65534 has 512 MiB"));
	g_assert_nonnull(strstr(msg, "MaxMemoryMiBPerUser=600"));
	g_assert_nonnull(strstr(msg, "leaves 88 MiB"));
	after = test_snapshot(f);
	g_assert_cmpstr(before, ==, after);
	test_create_as_nobody(f, "n3", 64, 0);

	/* the third VM was the last */
	msg_vms = test_create_as_nobody(f, "n4", 16, VMSUP_ERROR_FAILED_PRECONDITION);
	g_test_message("%s", msg_vms);
	g_assert_nonnull(strstr(msg_vms, "uid 65534 already has 3 VMs (MaxVMsPerUser=3"));
	g_assert_null(vmsup_vm_service_lookup(f->service, "n4"));

	/* a set raising memory past the share is refused and changes nothing; lowering is fine */
	msg_set = CALL_ERR(f,
			   set,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   "{\"name\": \"n1\", \"memory_mib\": 300, \"caller_uid\": %u}",
			   TEST_NOBODY);
	g_test_message("%s", msg_set);
	g_assert_nonnull(strstr(msg_set, "Cannot give VM 'n1' 300 MiB"));
	g_assert_nonnull(strstr(msg_set, "320 MiB of guest memory in its other VMs"));
	vm = vmsup_vm_service_lookup(f->service, "n1");
	g_assert_cmpint(json_object_get_int_member(vm, "memory_mib"), ==, 256);
	res = CALL_OK(f, set, "{\"name\": \"n1\", \"memory_mib\": 280}");
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, set, "{\"name\": \"n1\", \"memory_mib\": 128}");
	g_clear_pointer(&res, json_object_unref);

	/* root is exempt; 0 lifts a limit */
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"r1\", \"kernel\": \"/etc/hostname\", \"memory_mib\": 4096, "
		      "\"caller_uid\": 0, \"wait\": true}");
	g_clear_pointer(&res, json_object_unref);
	vmsup_vm_service_set_owner_limits(f->service, 0, 0);
	test_create_as_nobody(f, "n4", 4096, 0);
}

/*
 * Creates and sets in flight hold their share: asked together before the
 * main loop runs, as two clients' requests may be, only one of each pair fits
 */
static void
test_owner_limits_concurrent(Fixture *f, gconstpointer user_data)
{
	const gchar *creates[] = {"{\"name\": \"c1\", \"kernel\": \"/etc/hostname\", "
				  "\"memory_mib\": 256, \"caller_uid\": 65534, \"wait\": true}",
				  "{\"name\": \"c2\", \"kernel\": \"/etc/hostname\", "
				  "\"memory_mib\": 256, \"caller_uid\": 65534, \"wait\": true}"};
	const gchar *sets[] = {"{\"name\": \"c1\", \"memory_mib\": 400}",
			       "{\"name\": \"b\", \"memory_mib\": 300}"};

	vmsup_vm_service_set_owner_limits(f->service, 0, 600);
	test_create_as_nobody(f, "b", 128, 0);
	for (guint round = 0; round < 2; round++) {
		const gchar **requests = round == 0 ? creates : sets;
		GAsyncResult *slots[2] = {NULL};
		guint n_ok = 0;

		for (guint i = 0; i < 2; i++) {
			g_autoptr(JsonObject) params =
			    vmsup_json_parse_object(requests[i], -1, NULL);
			VmsupCaller caller;
			if (round == 0)
				vmsup_vm_service_create_async(f->service,
							      test_take_caller(params, &caller),
							      params,
							      NULL,
							      vmsup_test_store_result_cb,
							      &slots[i]);
			else
				vmsup_vm_service_set_async(f->service,
							   vmsup_caller_daemon(),
							   params,
							   NULL,
							   vmsup_test_store_result_cb,
							   &slots[i]);
		}
		for (guint i = 0; i < 2; i++) {
			g_autoptr(GAsyncResult) res =
			    vmsup_test_wait_result(&slots[i], TEST_TIMEOUT_S);
			g_autoptr(GError) error = NULL;
			g_autoptr(JsonObject) result =
			    round == 0 ? vmsup_vm_service_create_finish(f->service, res, &error)
				       : vmsup_vm_service_set_finish(f->service, res, &error);
			if (result != NULL) {
				n_ok++;
				continue;
			}
			g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
			g_assert_nonnull(strstr(error->message, "MaxMemoryMiBPerUser=600"));
		}
		g_assert_cmpuint(n_ok, ==, 1);
	}
}

/* --- MaxVMs ------------------------------------------------------------------ */

static guint
test_count_ops(Fixture *f)
{
	g_autoptr(JsonObject) ops = CALL_OK(f, op_list, "{}");
	return json_array_get_length(json_object_get_array_member(ops, "operations"));
}

static void
test_max_vms(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *msg = NULL;
	g_autofree gchar *def_path = test_def_path(f, "c3");
	g_autofree gchar *disk_path = test_disk_path(f, "c3");
	g_autoptr(JsonObject) res = NULL;
	guint n_ops;

	g_assert_cmpuint(vmsup_vm_service_get_max_vms(f->service), ==, 0);
	vmsup_vm_service_set_max_vms(f->service, 2);
	g_assert_cmpuint(vmsup_vm_service_get_max_vms(f->service), ==, 2);
	test_create(f, "c1", FALSE);
	test_create(f, "c2", FALSE);
	g_assert_cmpuint(vmsup_vm_service_count_vms(f->service), ==, 2);

	/* the third: refused, and nothing of it anywhere */
	before = test_snapshot(f);
	n_ops = test_count_ops(f);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"c3\", \"image\": \"%s\", \"memory_mib\": 64, "
		       "\"disk_gib\": 1, \"start\": true, \"wait\": true}",
		       f->image);
	g_test_message("%s", msg);
	g_assert_nonnull(strstr(msg, "VM 'c3'"));
	g_assert_nonnull(strstr(msg, "at most 2 VMs"));
	g_assert_nonnull(strstr(msg, "MaxVMs in vmsupd.conf"));
	g_assert_nonnull(strstr(msg, "2 are defined or being created"));
	g_assert_nonnull(strstr(msg, "vmsup delete"));
	after = test_snapshot(f);
	g_assert_cmpstr(before, ==, after);
	g_assert_false(g_file_test(def_path, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(disk_path, G_FILE_TEST_EXISTS));
	g_assert_null(vmsup_vm_service_lookup(f->service, "c3"));
	g_assert_cmpuint(test_count_ops(f), ==, n_ops);
	g_assert_cmpuint(test_count_qemus(f), ==, 0);

	/* the cap counts what is there now */
	res = CALL_OK(f, delete, "{\"name\": \"c2\"}");
	g_clear_pointer(&res, json_object_unref);
	test_create(f, "c3", FALSE);
	g_assert_cmpuint(vmsup_vm_service_count_vms(f->service), ==, 2);

	/* 0: no limit */
	vmsup_vm_service_set_max_vms(f->service, 0);
	test_create(f, "c4", FALSE);
	g_assert_cmpuint(vmsup_vm_service_count_vms(f->service), ==, 3);
}

/* creates in flight hold their place: two at once for the last one, one wins */
static void
test_max_vms_concurrent(Fixture *f, gconstpointer user_data)
{
	const gchar *names[] = {"r1", "r2"};
	GAsyncResult *slots[G_N_ELEMENTS(names)] = {NULL};
	guint n_ok = 0;
	guint n_refused = 0;

	vmsup_vm_service_set_max_vms(f->service, 2);
	test_create(f, "d1", FALSE);
	/* both are asked before the main loop runs again, as two clients' requests may be */
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autofree gchar *json =
		    g_strdup_printf("{\"name\": \"%s\", \"image\": \"%s\", \"memory_mib\": 64, "
				    "\"wait\": true}",
				    names[i],
				    f->image);
		g_autoptr(JsonObject) params = vmsup_json_parse_object(json, -1, NULL);
		g_assert_nonnull(params);
		vmsup_vm_service_create_async(f->service,
					      vmsup_caller_daemon(),
					      params,
					      NULL,
					      vmsup_test_store_result_cb,
					      &slots[i]);
	}
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(GAsyncResult) res = vmsup_test_wait_result(&slots[i], TEST_TIMEOUT_S);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) result =
		    vmsup_vm_service_create_finish(f->service, res, &error);
		if (result != NULL) {
			n_ok++;
			continue;
		}
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
		g_assert_nonnull(strstr(error->message, "MaxVMs"));
		n_refused++;
	}
	g_assert_cmpuint(n_ok, ==, 1);
	g_assert_cmpuint(n_refused, ==, 1);
	g_assert_cmpuint(vmsup_vm_service_count_vms(f->service), ==, 2);
	{
		g_auto(GStrv) defined = vmsup_vm_service_list_names(f->service);
		g_assert_cmpuint(g_strv_length(defined), ==, 2);
	}
}

/* a cap lowered below what is defined loses nothing: it only refuses new VMs */
static void
test_max_vms_lowered(Fixture *f, gconstpointer user_data)
{
	const gchar *const defined[] = {"x1", "x2", "x3", NULL};
	g_auto(GStrv) names = NULL;
	g_autofree gchar *msg = NULL;
	g_autoptr(JsonObject) res = NULL;
	g_autoptr(GAsyncResult) load_res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	for (guint i = 0; defined[i] != NULL; i++)
		test_create(f, defined[i], FALSE);

	/* a daemon restarted with MaxVMs=2: the cap is set before the definitions load */
	g_clear_object(&f->service);
	f->service = vmsup_vm_service_new(f->state_dir, f->runtime_dir, NULL, VMSUP_ACCEL_TCG);
	vmsup_vm_service_set_max_vms(f->service, 2);
	vmsup_vm_service_load_async(f->service, NULL, vmsup_test_store_result_cb, &slot);
	load_res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_vm_service_load_finish(f->service, load_res, &error));
	g_assert_no_error(error);

	names = vmsup_vm_service_list_names(f->service);
	g_assert_cmpstrv(names, defined);
	g_assert_cmpuint(vmsup_vm_service_count_vms(f->service), ==, 3);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"x4\", \"image\": \"%s\"}",
		       f->image);
	g_assert_nonnull(strstr(msg, "3 are defined"));
	g_clear_pointer(&msg, g_free);

	/* the VMs beyond it still work */
	res = CALL_OK(f, start, "{\"name\": \"x3\"}");
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, stop, "{\"name\": \"x3\", \"force\": true}");
	g_clear_pointer(&res, json_object_unref);

	/* back under the cap, and only then, creating works again */
	res = CALL_OK(f, delete, "{\"name\": \"x3\"}");
	g_clear_pointer(&res, json_object_unref);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"x4\", \"image\": \"%s\"}",
		       f->image);
	g_assert_nonnull(strstr(msg, "2 are defined"));
	res = CALL_OK(f, delete, "{\"name\": \"x2\"}");
	g_clear_pointer(&res, json_object_unref);
	test_create(f, "x4", FALSE);
}

/* --- system mode: a caller other than root names only files it could read --- */

/* a copy of the test image at @dir/@name, owned by @uid with @mode */
static gchar *
test_make_image(Fixture *f, const gchar *dir, const gchar *name, uid_t uid, guint mode)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;
	gchar *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_get_contents(f->image, &contents, &len, NULL));
	g_assert_true(g_file_set_contents(path, contents, len, NULL));
	g_assert_cmpint(chown(path, uid, (gid_t)-1), ==, 0);
	g_assert_cmpint(chmod(path, mode), ==, 0);
	return path;
}

/* kernel, initrd and image, with the caller_uid the RPC table passes for vm.create and vm.set */
static void
test_host_files_caller(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *closed = g_build_filename(f->tmp, "closed", NULL);
	g_autofree gchar *secret = NULL;
	g_autofree gchar *group_only = NULL;
	g_autofree gchar *mine = NULL;
	g_autofree gchar *pub = NULL;
	g_autofree gchar *behind = NULL;
	g_autofree gchar *link_secret = g_build_filename(f->tmp, "link-secret", NULL);
	g_autofree gchar *link_behind = g_build_filename(f->tmp, "link-behind", NULL);
	g_autofree gchar *not_yours = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *msg = NULL;
	g_autoptr(JsonObject) res = NULL;
	g_autoptr(JsonObject) vm = NULL;

	g_assert_cmpint(geteuid(), ==, 0);
	g_assert_cmpint(chmod(f->tmp, 0711), ==, 0);
	g_assert_cmpint(g_mkdir(closed, 0700), ==, 0);
	secret = test_make_image(f, f->tmp, "secret.img", 0, 0600);
	group_only = test_make_image(f, f->tmp, "group.img", 0, 0640);
	g_assert_cmpint(chown(group_only, 0, 0), ==, 0);
	mine = test_make_image(f, f->tmp, "mine.img", TEST_NOBODY, 0600);
	pub = test_make_image(f, f->tmp, "public.img", 0, 0644);
	behind = test_make_image(f, closed, "behind.img", 0, 0644);
	g_assert_cmpint(symlink(secret, link_secret), ==, 0);
	g_assert_cmpint(symlink(behind, link_behind), ==, 0);
	not_yours = g_strdup_printf("The image '%s' belongs to uid 0, who does not let others read "
				    "it, and you are uid %u; vmsupd reads files only for those who "
				    "could read them themselves: name a file you own, or one "
				    "everybody may read",
				    secret,
				    TEST_NOBODY);

	/* root's private file, directly or through a link; one behind a closed directory */
	before = test_snapshot(f);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"h1\", \"image\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		       secret,
		       TEST_NOBODY);
	g_assert_cmpstr(msg, ==, not_yours);
	g_clear_pointer(&msg, g_free);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"h1\", \"image\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		       link_secret,
		       TEST_NOBODY);
	g_assert_nonnull(strstr(msg, link_secret));
	g_assert_nonnull(strstr(msg, "belongs to uid 0, who does not let others read it"));
	g_clear_pointer(&msg, g_free);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"h1\", \"image\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		       behind,
		       TEST_NOBODY);
	g_assert_nonnull(strstr(msg, "is out of your reach (uid 65534): the directory"));
	g_assert_nonnull(strstr(msg, closed));
	g_clear_pointer(&msg, g_free);
	/* the link itself lies open; where it leads does not */
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"h1\", \"image\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		       link_behind,
		       TEST_NOBODY);
	g_assert_nonnull(strstr(msg, "is out of your reach"));
	g_assert_nonnull(strstr(msg, closed));
	g_clear_pointer(&msg, g_free);
	/* a group the caller is not in may read it: the kernel says no, as for the caller */
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"h1\", \"image\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		       group_only,
		       TEST_NOBODY);
	g_assert_nonnull(strstr(msg, "who does not let others read it"));
	g_clear_pointer(&msg, g_free);
	/* kernel and initrd likewise, each named */
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"h1\", \"kernel\": \"%s\", \"caller_uid\": %u}",
		       secret,
		       TEST_NOBODY);
	g_assert_true(g_str_has_prefix(msg, "The kernel '"));
	g_clear_pointer(&msg, g_free);
	msg = CALL_ERR(
	    f,
	    create,
	    VMSUP_ERROR_FAILED_PRECONDITION,
	    "{\"name\": \"h1\", \"kernel\": \"%s\", \"initrd\": \"%s\", \"caller_uid\": %u}",
	    pub,
	    secret,
	    TEST_NOBODY);
	g_assert_true(g_str_has_prefix(msg, "The initrd '"));
	g_clear_pointer(&msg, g_free);
	/* a missing file says so, and nothing of root's view */
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"h1\", \"image\": \"%s/nope.img\", \"caller_uid\": %u}",
		       closed,
		       TEST_NOBODY);
	g_assert_nonnull(strstr(msg, "is out of your reach"));
	g_clear_pointer(&msg, g_free);
	/* a caller_uid that is no uid */
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_INVALID_ARGUMENT,
		       "{\"name\": \"h1\", \"image\": \"%s\", \"caller_uid\": -1}",
		       pub);
	g_clear_pointer(&msg, g_free);
	/* nothing made: no disk, no definition, no operation */
	after = test_snapshot(f);
	g_assert_cmpstr(before, ==, after);
	g_clear_pointer(&before, g_free);
	g_clear_pointer(&after, g_free);
	g_assert_null(vmsup_vm_service_lookup(f->service, "h1"));
	g_assert_cmpuint(test_count_ops(f), ==, 0);

	/* the caller's own file, and one everybody may read: the caller owns the VM */
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"h1\", \"image\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		      mine,
		      TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"h2\", \"image\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		      pub,
		      TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);
	vm = test_get(f, "h1");
	g_assert_cmpint(json_object_get_int_member(vm, "owner_uid"), ==, TEST_NOBODY);
	g_clear_pointer(&vm, json_object_unref);
	/* root names anything; an in-process create without a caller is the daemon's */
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"h3\", \"image\": \"%s\", \"caller_uid\": 0, \"wait\": true}",
		      secret);
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, create, "{\"name\": \"h4\", \"image\": \"%s\", \"wait\": true}", secret);
	g_clear_pointer(&res, json_object_unref);
	vm = test_get(f, "h3");
	g_assert_cmpint(json_object_get_int_member(vm, "owner_uid"), ==, 0);
	g_clear_pointer(&vm, json_object_unref);
	vm = test_get(f, "h4");
	g_assert_cmpint(json_object_get_int_member(vm, "owner_uid"), ==, geteuid());
	g_clear_pointer(&vm, json_object_unref);

	/* vm.set: the VM's files as they are now; h2's image is no longer public */
	g_assert_cmpint(chmod(pub, 0600), ==, 0);
	before = test_snapshot(f);
	msg = CALL_ERR(f,
		       set,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"h2\", \"cpus\": 2, \"caller_uid\": %u}",
		       TEST_NOBODY);
	g_assert_nonnull(strstr(msg, pub));
	g_assert_nonnull(strstr(msg, "who does not let others read it"));
	g_clear_pointer(&msg, g_free);
	after = test_snapshot(f);
	g_assert_cmpstr(before, ==, after);
	vm = test_get(f, "h2");
	g_assert_cmpint(json_object_get_int_member(vm, "cpus"), ==, 1);
	g_clear_pointer(&vm, json_object_unref);
	/* root may; and the owner still may change its own VM */
	res = CALL_OK(f, set, "{\"name\": \"h2\", \"cpus\": 2, \"caller_uid\": 0}");
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, set, "{\"name\": \"h1\", \"cpus\": 2, \"caller_uid\": %u}", TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);
	vm = test_get(f, "h1");
	g_assert_cmpint(json_object_get_int_member(vm, "cpus"), ==, 2);
	/* set never changes the owner */
	g_assert_cmpint(json_object_get_int_member(vm, "owner_uid"), ==, TEST_NOBODY);
}

/* the files are checked again at every start, for the VM's owner */
static void
test_host_files_at_start(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *mine = NULL;
	g_autofree gchar *other = NULL;
	g_autofree gchar *link = g_build_filename(f->tmp, "current.img", NULL);
	g_autofree gchar *msg = NULL;
	g_autoptr(JsonObject) res = NULL;
	g_autoptr(JsonObject) vm = NULL;

	g_assert_cmpint(geteuid(), ==, 0);
	g_assert_cmpint(chmod(f->tmp, 0711), ==, 0);
	mine = test_make_image(f, f->tmp, "mine.img", TEST_NOBODY, 0600);
	other = test_make_image(f, f->tmp, "other.img", 0, 0600);
	g_assert_cmpint(symlink(mine, link), ==, 0);
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"hs\", \"image\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		      link,
		      TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);

	/* the link now leads to root's file: no QEMU, whoever asks (root here) */
	g_assert_cmpint(g_unlink(link), ==, 0);
	g_assert_cmpint(symlink(other, link), ==, 0);
	msg = CALL_ERR(f, start, VMSUP_ERROR_FAILED_PRECONDITION, "{\"name\": \"hs\"}");
	g_assert_nonnull(strstr(msg,
				"belongs to uid 0, who does not let others read it, and you "
				"are uid 65534"));
	g_clear_pointer(&msg, g_free);
	g_assert_cmpuint(test_count_qemus(f), ==, 0);
	vm = test_get(f, "hs");
	g_assert_false(json_object_has_member(vm, "pid"));
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "defined");
	g_clear_pointer(&vm, json_object_unref);

	/* the file itself changed hands: likewise */
	g_assert_cmpint(g_unlink(link), ==, 0);
	g_assert_cmpint(symlink(mine, link), ==, 0);
	g_assert_cmpint(chown(mine, 0, (gid_t)-1), ==, 0);
	msg = CALL_ERR(f, start, VMSUP_ERROR_FAILED_PRECONDITION, "{\"name\": \"hs\"}");
	g_clear_pointer(&msg, g_free);
	g_assert_cmpuint(test_count_qemus(f), ==, 0);

	/* the owner's again: it starts */
	g_assert_cmpint(chown(mine, TEST_NOBODY, (gid_t)-1), ==, 0);
	res = CALL_OK(f, start, "{\"name\": \"hs\"}");
	g_clear_pointer(&res, json_object_unref);
	g_assert_cmpint(test_get_pid(f, "hs"), >, 0);
	res = CALL_OK(f, stop, "{\"name\": \"hs\", \"force\": true}");
}

/* --- confinement: what QEMU opens, and as whom ------------------------------ */

/* a qcow2 over @backing (of @format) at @path, made as qemu-img -u makes it: no backing opened */
static void
test_make_overlay(const gchar *path, const gchar *backing, const gchar *format)
{
	const gchar *argv[] = {"qemu-img",
			       "create",
			       "-q",
			       "-f",
			       "qcow2",
			       "-u",
			       "-b",
			       backing,
			       "-F",
			       format,
			       path,
			       "1M",
			       NULL};
	test_run_ok(argv);
}

/* whether the process @pid holds a descriptor of the file @path is now (by inode) */
static gboolean
test_process_holds(GPid pid, const gchar *path)
{
	g_autofree gchar *dir = g_strdup_printf("/proc/%d/fd", pid);
	g_autoptr(GDir) fds = g_dir_open(dir, 0, NULL);
	const gchar *name;
	struct stat want;

	g_assert_cmpint(stat(path, &want), ==, 0);
	g_assert_nonnull(fds);
	while ((name = g_dir_read_name(fds)) != NULL) {
		g_autofree gchar *fd = g_build_filename(dir, name, NULL);
		struct stat st;
		if (stat(fd, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino)
			return TRUE;
	}
	return FALSE;
}

/* a "Key:\tvalue" line of /proc/@pid/status */
static gchar *
test_proc_status(GPid pid, const gchar *key)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/status", pid);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;
	g_autofree gchar *prefix = g_strdup_printf("%s:", key);

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], prefix))
			return g_strstrip(g_strdup(lines[i] + strlen(prefix)));
	}
	g_assert_not_reached();
}

/* QEMU as @uid, with no capability in any set, no new privileges and a seccomp filter */
static void
test_assert_confined(GPid pid, uid_t uid)
{
	g_autofree gchar *uids = test_proc_status(pid, "Uid");
	g_autofree gchar *want = g_strdup_printf("%u\t%u\t%u\t%u", uid, uid, uid, uid);
	const gchar *caps[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};

	g_test_message("QEMU %d: Uid %s", pid, uids);
	g_assert_cmpstr(uids, ==, want);
	for (guint i = 0; i < G_N_ELEMENTS(caps); i++) {
		g_autofree gchar *value = test_proc_status(pid, caps[i]);
		g_assert_cmpstr(value, ==, "0000000000000000");
	}
	{
		g_autofree gchar *nnp = test_proc_status(pid, "NoNewPrivs");
		g_autofree gchar *seccomp = test_proc_status(pid, "Seccomp");
		g_assert_cmpstr(nnp, ==, "1");
		g_assert_cmpstr(seccomp, ==, "2");
	}
}

static uid_t
test_qemu_user_uid(void)
{
	struct passwd *pw = getpwnam("vmsup-qemu");
	g_assert_nonnull(pw);
	g_assert_cmpint(pw->pw_uid, !=, 0);
	return pw->pw_uid;
}

/* a qcow2 the caller may read over a file it may not: the backing file is named, nothing made */
static void
test_confine_backing_chain(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *secret = NULL;
	g_autofree gchar *evil = g_build_filename(f->tmp, "evil.qcow2", NULL);
	g_autofree gchar *loop = g_build_filename(f->tmp, "loop.qcow2", NULL);
	g_autofree gchar *loop2 = g_build_filename(f->tmp, "loop2.qcow2", NULL);
	g_autofree gchar *vmdk = g_build_filename(f->tmp, "vmdk.qcow2", NULL);
	g_autofree gchar *want = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *msg = NULL;
	g_autofree gchar *disk = NULL;
	g_autoptr(JsonObject) res = NULL;
	g_autoptr(JsonObject) vm = NULL;
	GPid pid;

	g_assert_cmpint(geteuid(), ==, 0);
	g_assert_cmpint(chmod(f->tmp, 0711), ==, 0);
	secret = test_make_image(f, f->tmp, "secret.raw", 0, 0600);
	test_make_overlay(evil, secret, "raw");
	g_assert_cmpint(chown(evil, TEST_NOBODY, TEST_NOBODY), ==, 0);
	g_assert_cmpint(chmod(evil, 0644), ==, 0);
	test_make_overlay(loop, loop2, "qcow2");
	test_make_overlay(loop2, loop, "qcow2");
	g_assert_cmpint(chmod(loop, 0644), ==, 0);
	g_assert_cmpint(chmod(loop2, 0644), ==, 0);
	test_make_overlay(vmdk, secret, "vmdk");
	g_assert_cmpint(chmod(vmdk, 0644), ==, 0);
	want = g_strdup_printf("The image '%s' uses the backing file '%s', which uid %u cannot "
			       "read: Permission denied; ",
			       evil,
			       secret,
			       TEST_NOBODY);

	before = test_snapshot(f);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"bc\", \"image\": \"%s\", \"memory_mib\": 64, \"start\": true, "
		       "\"caller_uid\": %u, \"wait\": true}",
		       evil,
		       TEST_NOBODY);
	g_test_message("%s", msg);
	g_assert_true(g_str_has_prefix(msg, want));
	g_clear_pointer(&msg, g_free);
	/* a chain that comes back to itself, and a format the daemon does not follow */
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"bc\", \"image\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		       loop,
		       TEST_NOBODY);
	g_assert_nonnull(strstr(msg, "a loop"));
	g_clear_pointer(&msg, g_free);
	msg = CALL_ERR(f,
		       create,
		       VMSUP_ERROR_FAILED_PRECONDITION,
		       "{\"name\": \"bc\", \"image\": \"%s\", \"caller_uid\": %u, \"wait\": true}",
		       vmdk,
		       TEST_NOBODY);
	g_assert_nonnull(strstr(msg, "of format 'vmdk'"));
	g_clear_pointer(&msg, g_free);
	after = test_snapshot(f);
	g_assert_cmpstr(before, ==, after);
	g_assert_null(vmsup_vm_service_lookup(f->service, "bc"));
	g_assert_cmpuint(test_count_qemus(f), ==, 0);

	/* readable to the caller: it runs, holding the chain open, named nowhere in its argv */
	g_assert_cmpint(chmod(secret, 0644), ==, 0);
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"bc\", \"image\": \"%s\", \"memory_mib\": 64, \"start\": true, "
		      "\"caller_uid\": %u, \"wait\": true}",
		      evil,
		      TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);
	pid = test_get_pid(f, "bc");
	vm = test_get(f, "bc");
	disk = g_strdup(json_object_get_string_member(vm, "disk"));
	g_assert_true(test_process_holds(pid, secret));
	g_assert_true(test_process_holds(pid, evil));
	g_assert_true(test_process_holds(pid, disk));
	g_assert_false(test_cmdline_has(pid, secret));
	g_assert_false(test_cmdline_has(pid, evil));
	g_assert_false(test_cmdline_has(pid, disk));
	g_assert_true(test_cmdline_has(pid, "\"backing\":\"vmsup-disk1\""));
	res = CALL_OK(f, stop, "{\"name\": \"bc\", \"force\": true}");
	g_clear_pointer(&res, json_object_unref);

	/* and checked again at start: root's again, refused, naming it */
	g_assert_cmpint(chmod(secret, 0600), ==, 0);
	msg = CALL_ERR(f, start, VMSUP_ERROR_FAILED_PRECONDITION, "{\"name\": \"bc\"}");
	g_assert_nonnull(strstr(msg, secret));
	g_assert_nonnull(strstr(msg, "which uid 65534 cannot read"));
	g_assert_cmpuint(test_count_qemus(f), ==, 0);
}

/* a VM of root's: QEMU runs as vmsup-qemu, which must be able to read kernel and initrd */
static void
test_confine_boot_files(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *bundled = vmsup_paths_guest_kernel();
	g_autofree gchar *kernel = g_build_filename(f->tmp, "vmlinux", NULL);
	g_autofree gchar *contents = NULL;
	g_autofree gchar *msg = NULL;
	g_autoptr(JsonObject) res = NULL;
	gsize len = 0;
	GPid pid;

	g_assert_cmpint(geteuid(), ==, 0);
	g_assert_nonnull(bundled);
	g_assert_true(g_file_get_contents(bundled, &contents, &len, NULL));
	g_assert_true(g_file_set_contents(kernel, contents, (gssize)len, NULL));
	g_assert_cmpint(chmod(kernel, 0600), ==, 0);
	res =
	    CALL_OK(f,
		    create,
		    "{\"name\": \"bk\", \"kernel\": \"%s\", \"memory_mib\": 64, \"caller_uid\": 0, "
		    "\"wait\": true}",
		    kernel);
	g_clear_pointer(&res, json_object_unref);
	msg = CALL_ERR(f, start, VMSUP_ERROR_FAILED_PRECONDITION, "{\"name\": \"bk\"}");
	g_test_message("%s", msg);
	g_assert_nonnull(strstr(msg, "cannot be read by the user 'vmsup-qemu'"));
	g_assert_nonnull(strstr(msg, kernel));
	g_assert_cmpuint(test_count_qemus(f), ==, 0);

	/* others may read it: QEMU reads the inode opened for it, through /proc/self/fd */
	g_assert_cmpint(chmod(f->tmp, 0711), ==, 0);
	g_assert_cmpint(chmod(kernel, 0644), ==, 0);
	res = CALL_OK(f, start, "{\"name\": \"bk\"}");
	g_clear_pointer(&res, json_object_unref);
	pid = test_get_pid(f, "bk");
	g_assert_true(test_process_holds(pid, kernel));
	g_assert_false(test_cmdline_has(pid, kernel));
	g_assert_true(test_cmdline_has(pid, "-kernel /proc/self/fd/"));
	res = CALL_OK(f, stop, "{\"name\": \"bk\", \"force\": true}");
}

typedef struct {
	const gchar *paths[2]; /* swapped for links to @other once opened */
	const gchar *other;
	guint calls;
} SwapHook;

static void
test_swap_hook(const VmsupVmDef *def, gpointer user_data)
{
	SwapHook *swap = user_data;

	swap->calls++;
	for (guint i = 0; i < G_N_ELEMENTS(swap->paths); i++) {
		g_autofree gchar *moved = g_strconcat(swap->paths[i], ".orig", NULL);
		g_assert_cmpint(g_rename(swap->paths[i], moved), ==, 0);
		g_assert_cmpint(symlink(swap->other, swap->paths[i]), ==, 0);
	}
}

/* names swapped for links between the check and QEMU's start are never followed */
static void
test_confine_swapped_after_open(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *bundled = vmsup_paths_guest_kernel();
	g_autofree gchar *kernel = g_build_filename(f->tmp, "vmlinux", NULL);
	g_autofree gchar *image = test_make_image(f, f->tmp, "base.img", 0, 0644);
	g_autofree gchar *other = test_make_image(f, f->tmp, "other.img", 0, 0600);
	g_autofree gchar *kernel_orig = g_strconcat(kernel, ".orig", NULL);
	g_autofree gchar *image_orig = g_strconcat(image, ".orig", NULL);
	g_autofree gchar *contents = NULL;
	g_autoptr(JsonObject) res = NULL;
	SwapHook swap = {{kernel, image}, other, 0};
	gsize len = 0;
	GPid pid;

	g_assert_true(g_file_get_contents(bundled, &contents, &len, NULL));
	g_assert_true(g_file_set_contents(kernel, contents, (gssize)len, NULL));
	g_assert_cmpint(chmod(kernel, 0644), ==, 0);
	g_assert_cmpint(chmod(f->tmp, 0711), ==, 0);
	res =
	    CALL_OK(f,
		    create,
		    "{\"name\": \"sa\", \"kernel\": \"%s\", \"image\": \"%s\", \"memory_mib\": 64, "
		    "\"wait\": true}",
		    kernel,
		    image);
	g_clear_pointer(&res, json_object_unref);

	vmsup_vm_files_set_opened_hook(test_swap_hook, &swap);
	res = CALL_OK(f, start, "{\"name\": \"sa\"}");
	vmsup_vm_files_set_opened_hook(NULL, NULL);
	g_clear_pointer(&res, json_object_unref);
	g_assert_cmpuint(swap.calls, ==, 1);
	pid = test_get_pid(f, "sa");
	/* the inodes checked, not what the names lead to now */
	g_assert_true(test_process_holds(pid, kernel_orig));
	g_assert_true(test_process_holds(pid, image_orig));
	g_assert_false(test_process_holds(pid, other));
	g_assert_false(test_cmdline_has(pid, kernel));
	g_assert_false(test_cmdline_has(pid, image));
	res = CALL_OK(f, stop, "{\"name\": \"sa\", \"force\": true}");
}

/* QEMU's identity: the owner, or vmsup-qemu for root; confined; re-adopted after a restart */
static void
test_confine_identity(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *pub = NULL;
	g_autoptr(JsonObject) res = NULL;
	GPid mine;
	GPid roots;

	g_assert_cmpint(geteuid(), ==, 0);
	g_assert_cmpint(chmod(f->tmp, 0711), ==, 0);
	pub = test_make_image(f, f->tmp, "public.img", 0, 0644);
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"qn\", \"image\": \"%s\", \"memory_mib\": 64, \"start\": true, "
		      "\"caller_uid\": %u, \"wait\": true}",
		      pub,
		      TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"qr\", \"image\": \"%s\", \"memory_mib\": 64, \"start\": true, "
		      "\"caller_uid\": 0, \"wait\": true}",
		      pub);
	g_clear_pointer(&res, json_object_unref);
	/* a blank disk of its own: a chain of one node, with no backing at all */
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"qb\", \"disk_gib\": 1, \"memory_mib\": 64, \"start\": true, "
		      "\"caller_uid\": %u, \"wait\": true}",
		      TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);
	g_assert_true(test_cmdline_has(test_get_pid(f, "qb"), "\"backing\":null"));
	res = CALL_OK(f, stop, "{\"name\": \"qb\", \"force\": true}");
	g_clear_pointer(&res, json_object_unref);
	mine = test_get_pid(f, "qn");
	roots = test_get_pid(f, "qr");
	test_assert_confined(mine, TEST_NOBODY);
	test_assert_confined(roots, test_qemu_user_uid());

	/* a new daemon adopts both, whichever uid they run as, and stops them */
	fixture_replace_service(f);
	g_assert_cmpint(test_get_pid(f, "qn"), ==, mine);
	g_assert_cmpint(test_get_pid(f, "qr"), ==, roots);
	res = CALL_OK(f, stop, "{\"name\": \"qn\", \"force\": true}");
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, stop, "{\"name\": \"qr\", \"force\": true}");
	g_clear_pointer(&res, json_object_unref);
	g_assert_cmpuint(test_count_qemus(f), ==, 0);
}

/* VMService's owner lookups, which the RPC table's owner rule uses */
static void
test_owner_lookup(Fixture *f, gconstpointer user_data)
{
	g_autoptr(JsonObject) res = NULL;
	OpPoll poll = {f->service, 0, FALSE, 0, NULL};
	guint32 owner = G_MAXUINT32;
	gint64 id;

	g_assert_cmpint(chmod(f->tmp, 0711), ==, 0);
	g_assert_false(vmsup_vm_service_get_owner(f->service, "ow", &owner));
	g_assert_false(vmsup_vm_service_get_op_owner(f->service, 1, &owner));
	/* while the create runs, the VM (not yet defined) and its operation are the caller's */
	res = CALL_OK(f,
		      create,
		      "{\"name\": \"ow\", \"image\": \"%s\", \"caller_uid\": %u}",
		      f->image,
		      TEST_NOBODY);
	id = json_object_get_int_member(res, "operation");
	g_assert_null(vmsup_vm_service_lookup(f->service, "ow"));
	g_assert_true(vmsup_vm_service_get_owner(f->service, "ow", &owner));
	g_assert_cmpuint(owner, ==, TEST_NOBODY);
	owner = 0;
	g_assert_true(vmsup_vm_service_get_op_owner(f->service, id, &owner));
	g_assert_cmpuint(owner, ==, TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);
	poll.id = id;
	vmsup_test_wait_until(test_op_poll_finished, &poll, TEST_TIMEOUT_S);
	g_assert_cmpstr(json_object_get_string_member(poll.last, "state"), ==, "done");
	g_clear_pointer(&poll.last, json_object_unref);
	owner = 0;
	g_assert_true(vmsup_vm_service_get_owner(f->service, "ow", &owner));
	g_assert_cmpuint(owner, ==, TEST_NOBODY);
	g_clear_pointer(&res, json_object_unref);
	res = CALL_OK(f, delete, "{\"name\": \"ow\"}");
	g_assert_false(vmsup_vm_service_get_owner(f->service, "ow", &owner));
	/* a finished operation keeps its owner */
	owner = 0;
	g_assert_true(vmsup_vm_service_get_op_owner(f->service, id, &owner));
	g_assert_cmpuint(owner, ==, TEST_NOBODY);
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_log_set_writer_func(test_log_writer, NULL, NULL);
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)
	ADD("/vmsup/vm-service/lifecycle", test_lifecycle);
	ADD("/vmsup/vm-service/create-start-wait", test_create_start_wait);
	ADD("/vmsup/vm-service/cancel-create", test_cancel_create);
	ADD("/vmsup/vm-service/delete-running", test_delete_running);
	ADD("/vmsup/vm-service/concurrency", test_concurrency);
	ADD("/vmsup/vm-service/crash", test_crash);
	ADD("/vmsup/vm-service/guest-shutdown", test_guest_shutdown);
	ADD("/vmsup/vm-service/restart", test_restart);
	ADD("/vmsup/vm-service/bad-input", test_bad_input);
	ADD("/vmsup/vm-service/cloud-init", test_cloud_init);
	g_test_add_func("/vmsup/vm-service/cloud-init-checks", test_cloud_init_checks);
	ADD("/vmsup/vm-service/qemu-missing", test_qemu_missing);
	ADD("/vmsup/vm-service/runtime-dir-blocked", test_runtime_dir_blocked);
	ADD("/vmsup/vm-service/corrupt-definition", test_corrupt_definition);
	ADD("/vmsup/vm-service/set", test_set);
	ADD("/vmsup/vm-service/list-select", test_list_select);
	ADD("/vmsup/vm-service/share-dir", test_share_dir);
	ADD("/vmsup/vm-service/hooks", test_hooks);
	ADD("/vmsup/vm-service/accel-auto", test_accel_auto);
	ADD("/vmsup/vm-service/accel-configured", test_accel_configured);
	ADD("/vmsup/vm-service/outcome-restart", test_outcome_restart);
	ADD("/vmsup/vm-service/outcome-dead-at-load", test_outcome_dead_at_load);
	ADD("/vmsup/vm-service/outcome-unsaved", test_outcome_unsaved);
	ADD("/vmsup/vm-service/adopt-frozen", test_adopt_frozen);
	ADD("/vmsup/vm-service/adopt-not-running", test_adopt_not_running);
	ADD("/vmsup/vm-service/outcome-policy-stop", test_outcome_policy_stop);
	ADD("/vmsup/vm-service/share-owner", test_share_owner);
	ADD("/vmsup/vm-service/share-swapped-at-start", test_share_swapped_at_start);
	ADD("/vmsup/vm-service/max-vms", test_max_vms);
	ADD("/vmsup/vm-service/max-vms-concurrent", test_max_vms_concurrent);
	ADD("/vmsup/vm-service/max-vms-lowered", test_max_vms_lowered);
	ADD("/vmsup/vm-service/owner-limits", test_owner_limits);
	ADD("/vmsup/vm-service/owner-limits-concurrent", test_owner_limits_concurrent);
	ADD("/vmsup/vm-service/host-files-caller", test_host_files_caller);
	ADD("/vmsup/vm-service/host-files-at-start", test_host_files_at_start);
	ADD("/vmsup/vm-service/confine/backing-chain", test_confine_backing_chain);
	ADD("/vmsup/vm-service/confine/boot-files", test_confine_boot_files);
	ADD("/vmsup/vm-service/confine/swapped-after-open", test_confine_swapped_after_open);
	ADD("/vmsup/vm-service/confine/identity", test_confine_identity);
	ADD("/vmsup/vm-service/owner-lookup", test_owner_lookup);
#undef ADD
	return g_test_run();
}
