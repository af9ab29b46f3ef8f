/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VmsupVm on its own, with a real QEMU that boots a disk halting the CPU:
 * the states a run goes through (start, pause, resume, stop, crash), a
 * start that fails going back to where it came from, the outcome kept in
 * the store, and adoption of a QEMU left running.
 */

#include "config.h"

#include <signal.h>
#include <string.h>

#include "vmsup-disk.h"
#include "vmsup-json.h"
#include "vmsup-qemu-process.h"
#include "vmsup-test-util.h"
#include "vmsup-vm.h"

#define TEST_TIMEOUT_S 60

typedef struct {
	gchar *tmp;
	gchar *state_dir;
	gchar *vm_dir;
	gchar *image;
	gchar *disk;
	VmsupVmStore *store;
	VmsupVmAccel *accel;
	VmsupCgroup *cgroup;
	GArray *states; /* of VmsupVmState: each one "changed" found, repeats left out */
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer user_data)
{
	/* cli; hlt; jmp back to the hlt, as a boot sector */
	static const guint8 halt[] = {0xfa, 0xf4, 0xeb, 0xfd};
	g_autofree guint8 *disk = g_malloc0(1024 * 1024);
	g_autofree gchar *instance = g_strdup_printf("t%d", (gint)getpid());
	g_autofree gchar *qemu = vmsup_test_require_qemu();
	g_autofree gchar *qemu_img = NULL;

	f->tmp = vmsup_test_make_tmpdir();
	f->state_dir = g_build_filename(f->tmp, "state", NULL);
	f->vm_dir = g_build_filename(f->tmp, "run", NULL);
	f->image = g_build_filename(f->tmp, "boot.img", NULL);
	f->disk = g_build_filename(f->tmp, "disk.qcow2", NULL);
	memcpy(disk, halt, sizeof(halt));
	disk[510] = 0x55;
	disk[511] = 0xaa;
	g_assert_true(g_file_set_contents(f->image, (const gchar *)disk, 1024 * 1024, NULL));
	qemu_img = vmsup_disk_find_qemu_img(qemu, NULL);
	g_assert_nonnull(qemu_img);
	{
		const gchar *argv[] = {qemu_img,
				       "create",
				       "-q",
				       "-f",
				       "qcow2",
				       "-F",
				       "raw",
				       "-b",
				       f->image,
				       f->disk,
				       NULL};
		vmsup_test_run_tool(argv);
	}
	f->store = vmsup_vm_store_new(f->state_dir);
	f->accel = vmsup_vm_accel_new(VMSUP_ACCEL_TCG, NULL, NULL);
	f->cgroup = vmsup_cgroup_new(instance);
	f->states = g_array_new(FALSE, FALSE, sizeof(VmsupVmState));
}

static void
fixture_teardown(Fixture *f, gconstpointer user_data)
{
	g_clear_object(&f->store);
	g_clear_object(&f->accel);
	g_clear_object(&f->cgroup);
	g_array_unref(f->states);
	vmsup_test_rm_rf(f->tmp);
	g_free(f->tmp);
	g_free(f->state_dir);
	g_free(f->vm_dir);
	g_free(f->image);
	g_free(f->disk);
}

static void
test_changed_cb(VmsupVm *vm, gpointer user_data)
{
	Fixture *f = user_data;
	VmsupVmState state = vmsup_vm_get_state(vm);

	if (f->states->len == 0 ||
	    g_array_index(f->states, VmsupVmState, f->states->len - 1) != state)
		g_array_append_val(f->states, state);
}

static VmsupVm *
test_new_vm(Fixture *f, const gchar *qemu_binary)
{
	/* the stored form of a VM made from an image */
	g_autofree gchar *json = g_strdup_printf(
	    "{\"name\": \"sm\", \"memory_mib\": 64, \"image\": \"%s\", \"disk\": \"%s\"}",
	    f->image,
	    f->disk);
	g_autoptr(JsonObject) obj = vmsup_json_parse_object(json, -1, NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupVmCgroup) cgroup = vmsup_vm_cgroup_new(f->cgroup, "sm", NULL);
	VmsupVmDef *def = vmsup_vm_def_new_from_json(obj, &error);
	VmsupVm *vm;

	g_assert_no_error(error);
	vm = vmsup_vm_new(def, f->vm_dir, qemu_binary, f->store, f->accel, cgroup, NULL);
	g_signal_connect(vm, "changed", G_CALLBACK(test_changed_cb), f);
	return vm;
}

static gboolean
test_start(VmsupVm *vm, GError **error)
{
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;
	gboolean ok;

	vmsup_vm_start_async(vm, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	ok = vmsup_vm_start_finish(vm, res, error);
	if (!ok)
		g_test_message("start: %s", (*error)->message);
	return ok;
}

static void
test_stop(VmsupVm *vm, gboolean force)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	vmsup_vm_stop_async(vm, force, 5000, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_vm_stop_finish(vm, res, &error));
	g_assert_no_error(error);
}

static void
test_qmp(VmsupVm *vm, const gchar *command)
{
	VmsupQmpClient *qmp = vmsup_qemu_process_get_qmp(vmsup_vm_get_handles(vm)->process);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonNode) reply = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	vmsup_qmp_client_execute_async(qmp, command, NULL, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	reply = vmsup_qmp_client_execute_finish(qmp, res, &error);
	g_assert_no_error(error);
}

typedef struct {
	VmsupVm *vm;
	VmsupVmState state;
} StateWait;

static gboolean
test_state_is(gpointer data)
{
	StateWait *wait = data;
	return vmsup_vm_get_state(wait->vm) == wait->state;
}

static void
test_wait_state(VmsupVm *vm, VmsupVmState state)
{
	StateWait wait = {vm, state};
	vmsup_test_wait_until(test_state_is, &wait, TEST_TIMEOUT_S);
}

static void
test_assert_states(Fixture *f, const VmsupVmState *expected, guint n)
{
	g_autoptr(GString) seen = g_string_new(NULL);

	for (guint i = 0; i < f->states->len; i++)
		g_string_append_printf(
		    seen,
		    " %s",
		    vmsup_vm_state_to_string(g_array_index(f->states, VmsupVmState, i)));
	g_test_message("states:%s", seen->str);
	g_assert_cmpuint(f->states->len, ==, n);
	for (guint i = 0; i < n; i++)
		g_assert_cmpstr(vmsup_vm_state_to_string(g_array_index(f->states, VmsupVmState, i)),
				==,
				vmsup_vm_state_to_string(expected[i]));
	g_array_set_size(f->states, 0);
}

static const gchar *
test_member(JsonObject *obj, const gchar *member)
{
	return json_object_has_member(obj, member) ? json_object_get_string_member(obj, member)
						   : NULL;
}

/* one run and the next: every state a VM passes through, in order */
static void
test_lifecycle(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *qemu = vmsup_test_require_qemu();
	g_autoptr(VmsupVm) vm = test_new_vm(f, qemu);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj = NULL;
	g_autoptr(GHashTable) outcomes = NULL;
	VmsupVmOutcome *outcome;
	GPid pid;
	static const VmsupVmState first_run[] = {
	    VMSUP_VM_STATE_STARTING,
	    VMSUP_VM_STATE_RUNNING,
	    VMSUP_VM_STATE_PAUSED,
	    VMSUP_VM_STATE_RUNNING,
	    VMSUP_VM_STATE_STOPPING,
	    VMSUP_VM_STATE_STOPPED,
	};
	static const VmsupVmState second_run[] = {
	    VMSUP_VM_STATE_STARTING,
	    VMSUP_VM_STATE_RUNNING,
	    VMSUP_VM_STATE_CRASHED,
	};

	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_DEFINED);
	g_assert_false(vmsup_vm_has_process(vm));
	obj = vmsup_vm_describe(vm, NULL, TRUE);
	g_assert_cmpstr(test_member(obj, "state"), ==, "defined");
	g_assert_cmpstr(test_member(obj, "name"), ==, "sm");
	g_clear_pointer(&obj, json_object_unref);

	g_assert_true(test_start(vm, &error));
	g_assert_no_error(error);
	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_RUNNING);
	g_assert_true(vmsup_vm_is_alive(vm));
	g_assert_nonnull(vmsup_vm_get_handles(vm));
	/* paused by QMP (QEMU's STOP event), then resumed by a start */
	test_qmp(vm, "stop");
	test_wait_state(vm, VMSUP_VM_STATE_PAUSED);
	g_assert_true(test_start(vm, &error));
	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_RUNNING);
	test_stop(vm, FALSE);
	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_STOPPED);
	g_assert_false(vmsup_vm_has_process(vm));
	test_assert_states(f, first_run, G_N_ELEMENTS(first_run));
	obj = vmsup_vm_describe(vm, NULL, FALSE);
	g_assert_nonnull(strstr(test_member(obj, "exit_reason"), "stopped on request"));
	g_assert_false(json_object_has_member(obj, "name"));
	g_clear_pointer(&obj, json_object_unref);
	/* kept for the next daemon */
	outcomes = vmsup_vm_store_load_outcomes(f->store, &error);
	g_assert_no_error(error);
	outcome = g_hash_table_lookup(outcomes, "sm");
	g_assert_nonnull(outcome);
	g_assert_false(outcome->crashed);
	g_clear_pointer(&outcomes, g_hash_table_unref);

	/* a QEMU killed from outside crashed the VM */
	g_assert_true(test_start(vm, &error));
	pid = vmsup_qemu_process_get_pid(vmsup_vm_get_handles(vm)->process);
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
	test_wait_state(vm, VMSUP_VM_STATE_CRASHED);
	test_assert_states(f, second_run, G_N_ELEMENTS(second_run));
	/* the outcome is saved before a stop returns, and nothing runs */
	test_stop(vm, TRUE);
	outcomes = vmsup_vm_store_load_outcomes(f->store, &error);
	outcome = g_hash_table_lookup(outcomes, "sm");
	g_assert_nonnull(outcome);
	g_assert_true(outcome->crashed);
	g_assert_false(g_file_test(f->vm_dir, G_FILE_TEST_EXISTS));
}

/* a start that fails leaves the VM as it was, saying why */
static void
test_start_fails(Fixture *f, gconstpointer user_data)
{
	/* an executable that is no QEMU: spawned, and gone at once */
	g_autoptr(VmsupVm) vm = test_new_vm(f, "/bin/false");
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj = NULL;
	static const VmsupVmState states[] = {
	    VMSUP_VM_STATE_STARTING,
	    VMSUP_VM_STATE_DEFINED,
	};

	g_assert_false(test_start(vm, &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "Cannot start VM 'sm'"));
	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_DEFINED);
	g_assert_false(vmsup_vm_has_process(vm));
	test_assert_states(f, states, G_N_ELEMENTS(states));
	obj = vmsup_vm_describe(vm, NULL, TRUE);
	g_assert_cmpstr(test_member(obj, "last_error"), ==, error->message);
	g_assert_false(g_file_test(f->vm_dir, G_FILE_TEST_EXISTS));
}

/* a QEMU left running by one VmsupVm is adopted by the next, and stopped by it */
static void
test_adopt(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *qemu = vmsup_test_require_qemu();
	g_autoptr(VmsupVm) first = test_new_vm(f, qemu);
	g_autoptr(VmsupVm) second = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	GPid pid;
	static const VmsupVmState states[] = {
	    VMSUP_VM_STATE_RUNNING,
	    VMSUP_VM_STATE_STOPPING,
	    VMSUP_VM_STATE_STOPPED,
	};

	g_assert_true(test_start(first, &error));
	g_assert_no_error(error);
	pid = vmsup_qemu_process_get_pid(vmsup_vm_get_handles(first)->process);
	vmsup_vm_release_process(first);
	g_assert_false(vmsup_vm_has_process(first));
	g_array_set_size(f->states, 0);

	second = test_new_vm(f, qemu);
	vmsup_vm_adopt_async(second, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	vmsup_vm_adopt_finish(second, res);
	g_assert_cmpint(vmsup_vm_get_state(second), ==, VMSUP_VM_STATE_RUNNING);
	g_assert_cmpint(vmsup_qemu_process_get_pid(vmsup_vm_get_handles(second)->process), ==, pid);
	test_stop(second, FALSE);
	test_assert_states(f, states, G_N_ELEMENTS(states));
	g_assert_true(vmsup_test_pid_is_gone(GINT_TO_POINTER(pid)));
}

/* a graceful stop of @vm with a timeout that a test never reaches */
#define TEST_LONG_STOP_MS (3600 * 1000)

static gboolean
test_outcome_agent_seen(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) outcomes = vmsup_vm_store_load_outcomes(f->store, &error);
	VmsupVmOutcome *outcome;

	g_assert_no_error(error);
	outcome = g_hash_table_lookup(outcomes, "sm");
	g_assert_nonnull(outcome);
	return outcome->agent_seen;
}

/*
 * A guest known to run an agent (an earlier run's outcome says so) whose
 * agent has not started in this run is still booting: a graceful stop
 * does not wait for a power-off that cannot come, QEMU quits at once. The
 * knowledge is kept in the next outcome.
 */
static void
test_stop_during_boot(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *qemu = vmsup_test_require_qemu();
	g_autoptr(VmsupVm) vm = test_new_vm(f, qemu);
	g_autoptr(VmsupVmOutcome) earlier = vmsup_vm_outcome_new(FALSE, "stopped on request", 0);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj = NULL;
	GAsyncResult *slot = NULL;

	earlier->agent_seen = TRUE;
	vmsup_vm_apply_outcome(vm, earlier);
	g_assert_true(test_start(vm, &error));
	g_assert_no_error(error);
	vmsup_vm_stop_async(vm, FALSE, TEST_LONG_STOP_MS, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_vm_stop_finish(vm, res, &error));
	g_assert_no_error(error);
	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_STOPPED);
	obj = vmsup_vm_describe(vm, NULL, TRUE);
	g_assert_true(g_str_has_prefix(test_member(obj, "exit_reason"), "stopped on request"));
	g_assert_true(test_outcome_agent_seen(f));
}

/*
 * A guest never seen to run an agent may be one without any: a graceful
 * stop keeps waiting for it to power off, until the timeout or a forced
 * stop, and nothing claims an agent for it afterwards.
 */
static void
test_stop_waits_for_guest(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *qemu = vmsup_test_require_qemu();
	g_autoptr(VmsupVm) vm = test_new_vm(f, qemu);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GMainLoop) pause = g_main_loop_new(NULL, FALSE);
	GAsyncResult *slot = NULL;

	g_assert_true(test_start(vm, &error));
	g_assert_no_error(error);
	vmsup_vm_stop_async(vm, FALSE, TEST_LONG_STOP_MS, NULL, vmsup_test_store_result_cb, &slot);
	/* the halted guest cannot power off: a second later the stop still waits for it */
	g_timeout_add_once(1000, (GSourceOnceFunc)g_main_loop_quit, pause);
	g_main_loop_run(pause);
	g_assert_null(slot);
	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_STOPPING);
	test_stop(vm, TRUE);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_vm_stop_finish(vm, res, &error));
	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_STOPPED);
	g_assert_false(test_outcome_agent_seen(f));
}

static gboolean
test_set_paused(VmsupVm *vm, gboolean pause, GError **error)
{
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;

	vmsup_vm_set_paused_async(vm, pause, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	return vmsup_vm_set_paused_finish(vm, res, error);
}

/* what QEMU itself says of its vCPUs: query-status's "status" */
static gchar *
test_qemu_status(VmsupVm *vm)
{
	VmsupQmpClient *qmp = vmsup_qemu_process_get_qmp(vmsup_vm_get_handles(vm)->process);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonNode) reply = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	vmsup_qmp_client_execute_async(qmp,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	reply = vmsup_qmp_client_execute_finish(qmp, res, &error);
	g_assert_no_error(error);
	return g_strdup(vmsup_json_object_get_string(json_node_get_object(reply), "status", NULL));
}

/*
 * Pause and resume reach QEMU's vCPUs and the VM's state; asking for what
 * is so already changes nothing; a paused guest cannot power off, so a
 * graceful stop does not wait for it; a VM that does not run is refused.
 */
static void
test_pause_resume(Fixture *f, gconstpointer user_data)
{
	g_autofree gchar *qemu = vmsup_test_require_qemu();
	g_autoptr(VmsupVm) vm = test_new_vm(f, qemu);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *status = NULL;
	GAsyncResult *slot = NULL;

	g_assert_true(test_start(vm, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < 2; i++) {
		g_assert_true(test_set_paused(vm, TRUE, &error));
		g_assert_no_error(error);
		g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_PAUSED);
		g_clear_pointer(&status, g_free);
		status = test_qemu_status(vm);
		g_assert_cmpstr(status, ==, "paused");
	}
	g_assert_true(test_set_paused(vm, FALSE, &error));
	g_assert_no_error(error);
	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_RUNNING);
	g_clear_pointer(&status, g_free);
	status = test_qemu_status(vm);
	g_assert_cmpstr(status, ==, "running");

	g_assert_true(test_set_paused(vm, TRUE, &error));
	vmsup_vm_stop_async(vm, FALSE, TEST_LONG_STOP_MS, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_vm_stop_finish(vm, res, &error));
	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_STOPPED);

	for (guint i = 0; i < 2; i++) {
		g_assert_false(test_set_paused(vm, i == 0, &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
		g_assert_nonnull(strstr(error->message, "vmsup start sm"));
		g_clear_error(&error);
	}
	g_assert_cmpint(vmsup_vm_get_state(vm), ==, VMSUP_VM_STATE_STOPPED);
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)
	ADD("/vmsup/vm/lifecycle", test_lifecycle);
	ADD("/vmsup/vm/start-fails", test_start_fails);
	ADD("/vmsup/vm/adopt", test_adopt);
	ADD("/vmsup/vm/stop-during-boot", test_stop_during_boot);
	ADD("/vmsup/vm/stop-waits-for-guest", test_stop_waits_for_guest);
	ADD("/vmsup/vm/pause-resume", test_pause_resume);
	return g_test_run();
}
