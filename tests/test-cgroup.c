/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VM cgroups: where a process's cgroups are, from synthetic /proc/PID/cgroup
 * and mountinfo text of both layouts; and, with real QEMU under TCG (a boot
 * sector that halts), a VM's QEMU in its cgroup, its limits in the
 * controller files, set live and cleared, the cgroup gone after the stop,
 * kept over a daemon restart, and limits refused where vmsupd has no
 * cgroup of its own.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "vmsup-cgroup.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-service.h"

#define TEST_TIMEOUT_S 60
#define NOBODY 65534

/* paths */

/* this kind of machine: cgroup v1 per controller, a controller-less cgroup2 beside them */
static const gchar hybrid_cgroup[] = "9:name=systemd:/\n"
				     "8:pids:/\n"
				     "4:memory:/jobs/a1b2c3\n"
				     "2:cpuacct:/\n"
				     "1:cpu:/\n"
				     "0::/\n";
static const gchar hybrid_mountinfo[] =
    "23 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void
test_paths_hybrid(void)
{
	g_autoptr(VmsupCgroupPaths) paths =
	    vmsup_cgroup_paths_parse(hybrid_cgroup, hybrid_mountinfo);

	g_assert_cmpstr(paths->unified, ==, "/sys/fs/cgroup/unified");
	g_assert_cmpstr(paths->cpu, ==, "/sys/fs/cgroup/cpu");
	g_assert_cmpstr(paths->cpuacct, ==, "/sys/fs/cgroup/cpuacct");
	g_assert_cmpstr(paths->memory, ==, "/sys/fs/cgroup/memory/jobs/a1b2c3");
}

/* Debian 12 with systemd: one unified hierarchy, the service's own cgroup */
static void
test_paths_v2(void)
{
	const gchar cgroup[] = "0::/system.slice/vmsupd.service\n";
	const gchar mountinfo[] =
	    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n"
	    "26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 "
	    "cgroup2 rw,nsdelegate,memory_recursiveprot\n";
	g_autoptr(VmsupCgroupPaths) paths = vmsup_cgroup_paths_parse(cgroup, mountinfo);

	g_assert_cmpstr(paths->unified, ==, "/sys/fs/cgroup/system.slice/vmsupd.service");
	g_assert_null(paths->cpu);
	g_assert_null(paths->cpuacct);
	g_assert_null(paths->memory);
}

/* cpu and cpuacct in one hierarchy, a container's mounts of part of a hierarchy, escapes */
static void
test_paths_odd(void)
{
	const gchar cgroup[] = "5:memory:/docker/abc/inner\n"
			       "3:cpu,cpuacct:/user.slice\n"
			       "2:blkio:/elsewhere\n"
			       "0::/outside\n";
	const gchar mountinfo[] =
	    "40 31 0:40 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
	    "41 31 0:41 /docker/abc /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n"
	    "42 31 0:42 /docker/abc /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
	    "43 31 0:43 / /sys/fs/cgroup/blkio rw shared:5 master:1 - cgroup cgroup rw,blkio\n"
	    "garbage\n"
	    "44 31 0:44 / /x rw - cgroup\n";
	g_autoptr(VmsupCgroupPaths) paths = vmsup_cgroup_paths_parse(cgroup, mountinfo);
	g_autoptr(VmsupCgroupPaths) none = vmsup_cgroup_paths_parse("", "");

	g_assert_cmpstr(paths->cpu, ==, "/sys/fs/cgroup/cpu,cpuacct/user.slice");
	g_assert_cmpstr(paths->cpuacct, ==, "/sys/fs/cgroup/cpu,cpuacct/user.slice");
	g_assert_cmpstr(paths->memory, ==, "/sys/fs/cgroup/mem ory/inner");
	/* the process's cgroup lies outside what is mounted: no directory for it */
	g_assert_null(paths->unified);
	g_assert_null(none->unified);
	g_assert_null(none->cpu);
	g_assert_null(none->memory);
}

/* a VM under real QEMU */

typedef struct {
	gchar *tmp;
	gchar *state_dir;
	gchar *runtime_dir;
	gchar *image;
	gchar *name;
	gchar *pidfile;
	gchar *cgfile; /* the VM cgroups seen, for the guardian */
	gint guard_fd; /* write end of the guardian's stdin */
	VmsupVmService *service;
} Fixture;

/*
 * A shell that waits for this process to end (EOF on its stdin), then kills
 * the QEMUs listed in the pid file and removes the cgroups listed, once
 * their QEMU is reaped: an aborted test leaves nothing behind.
 */
static void
fixture_start_guardian(Fixture *f)
{
	const gchar *script = "cat >/dev/null; for p in $(cat \"$0\" 2>/dev/null); do "
			      "grep -q \"$1\" /proc/$p/cmdline 2>/dev/null && kill -9 $p; done; "
			      "for i in 1 2 3 4 5 6 7 8 9 10; do left=0; "
			      "for d in $(cat \"$2\" 2>/dev/null); do "
			      "[ -d \"$d\" ] && ! rmdir \"$d\" 2>/dev/null && left=1; done; "
			      "[ $left = 0 ] && break; sleep 0.5; done; "
			      "rm -rf \"$1\"";
	const gchar *argv[] = {"/bin/sh", "-c", script, f->pidfile, f->tmp, f->cgfile, NULL};
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

static void
fixture_note(const gchar *file, const gchar *line)
{
	FILE *fp = fopen(file, "a");

	g_assert_nonnull(fp);
	fprintf(fp, "%s\n", line);
	fclose(fp);
}

static VmsupCgroupPaths *
test_pid_paths(GPid pid);

/* whether @dir is a cgroup of this test's VM: vm-NAME.INSTANCE */
static gboolean
test_is_vm_dir(Fixture *f, const gchar *dir)
{
	g_autofree gchar *base = dir != NULL ? g_path_get_basename(dir) : NULL;
	g_autofree gchar *prefix = g_strconcat("vm-", f->name, ".", NULL);

	return base != NULL && g_str_has_prefix(base, prefix) && strlen(base) > strlen(prefix);
}

/* @pid and the cgroups it is in that are its VM's, for the guardian */
static void
fixture_note_pid(Fixture *f, GPid pid)
{
	g_autofree gchar *line = g_strdup_printf("%d", (gint)pid);
	g_autoptr(VmsupCgroupPaths) paths = test_pid_paths(pid);
	const gchar *const dirs[] = {paths->unified, paths->cpu, paths->cpuacct, paths->memory};

	fixture_note(f->pidfile, line);
	for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
		if (test_is_vm_dir(f, dirs[i]))
			fixture_note(f->cgfile, dirs[i]);
	}
}

static VmsupVmService *
fixture_new_service(Fixture *f)
{
	VmsupVmService *service =
	    vmsup_vm_service_new(f->state_dir, f->runtime_dir, NULL, VMSUP_ACCEL_TCG);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;

	vmsup_vm_service_load_async(service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_vm_service_load_finish(service, res, &error));
	g_assert_no_error(error);
	return service;
}

static void
fixture_setup(Fixture *f, gconstpointer user_data)
{
	/* cli; hlt; jmp back to the hlt */
	static const guint8 halt[] = {0xfa, 0xf4, 0xeb, 0xfd};
	g_autofree guint8 *disk = g_malloc0(1024 * 1024);
	g_autofree gchar *qemu = vmsup_test_require_qemu();

	f->tmp = vmsup_test_make_tmpdir();
	f->state_dir = g_build_filename(f->tmp, "state", NULL);
	f->runtime_dir = g_build_filename(f->tmp, "run", NULL);
	f->image = g_build_filename(f->tmp, "boot.img", NULL);
	f->pidfile = g_build_filename(f->tmp, "pids", NULL);
	f->cgfile = g_build_filename(f->tmp, "cgroups", NULL);
	/* other tests' daemons may share this machine's cgroups: a name of our own */
	f->name = g_strdup_printf("cg%d", (gint)getpid());
	memcpy(disk, halt, sizeof(halt));
	disk[510] = 0x55;
	disk[511] = 0xaa;
	g_assert_true(g_file_set_contents(f->image, (const gchar *)disk, 1024 * 1024, NULL));
	fixture_start_guardian(f);
}

static void
fixture_teardown(Fixture *f, gconstpointer user_data)
{
	g_clear_object(&f->service);
	/* every QEMU a test starts, it stops: nothing left for the guardian */
	g_assert_true(g_file_set_contents(f->pidfile, "", 0, NULL));
	g_assert_true(g_file_set_contents(f->cgfile, "", 0, NULL));
	close(f->guard_fd);
	vmsup_test_rm_rf(f->tmp);
	g_free(f->tmp);
	g_free(f->state_dir);
	g_free(f->runtime_dir);
	g_free(f->image);
	g_free(f->name);
	g_free(f->pidfile);
	g_free(f->cgfile);
}

typedef void (*VerbAsync)(VmsupVmService *self,
			  const VmsupCaller *caller,
			  JsonObject *params,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data);

G_GNUC_PRINTF(5, 6)
static JsonObject *
test_call(VmsupVmService *service,
	  VerbAsync async,
	  VmsupVmServiceFinishFunc finish,
	  GError **error,
	  const gchar *format,
	  ...)
{
	g_autofree gchar *json = NULL;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;
	va_list args;

	va_start(args, format);
	json = g_strdup_vprintf(format, args);
	va_end(args);
	params = vmsup_json_parse_object(json, -1, NULL);
	g_assert_nonnull(params);
	async(service, vmsup_caller_daemon(), params, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	return finish(service, res, error);
}

#define CALL_OK(f, verb, error, ...)                                                               \
	test_call((f)->service,                                                                    \
		  vmsup_vm_service_##verb##_async,                                                 \
		  vmsup_vm_service_##verb##_finish,                                                \
		  (error),                                                                         \
		  __VA_ARGS__)

static JsonObject *
test_get(Fixture *f)
{
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(GError) error = NULL;
	JsonObject *vm;

	json_object_set_string_member(params, "name", f->name);
	vm = vmsup_vm_service_get(f->service, params, &error);
	g_assert_no_error(error);
	g_assert_nonnull(vm);
	return vm;
}

static void
test_ok(JsonObject *result, const GError *error)
{
	g_assert_no_error(error);
	g_assert_nonnull(result);
	json_object_unref(result);
}

/* the directories of the cgroups the kernel says @pid is in */
static VmsupCgroupPaths *
test_pid_paths(GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/cgroup", (gint)pid);
	g_autofree gchar *cgroup = NULL;
	g_autofree gchar *mountinfo = NULL;

	g_assert_true(g_file_get_contents(path, &cgroup, NULL, NULL));
	g_assert_true(g_file_get_contents("/proc/self/mountinfo", &mountinfo, NULL, NULL));
	return vmsup_cgroup_paths_parse(cgroup, mountinfo);
}

static gchar *
test_read(const gchar *dir, const gchar *file)
{
	g_autofree gchar *path = g_build_filename(dir, file, NULL);
	gchar *contents = NULL;

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	return g_strstrip(contents);
}

/* where the VM's QEMU is, per controller; a v2 machine has one directory for all */
typedef struct {
	gchar *cpu;
	gchar *memory;
	gboolean v2;
} TestDirs;

static void
test_dirs_clear(TestDirs *dirs)
{
	g_clear_pointer(&dirs->cpu, g_free);
	g_clear_pointer(&dirs->memory, g_free);
}

static void
test_find_dirs(Fixture *f, GPid pid, TestDirs *out)
{
	g_autoptr(VmsupCgroupPaths) paths = test_pid_paths(pid);
	g_autofree gchar *procs = NULL;
	g_autofree gchar *text = g_strdup_printf("%d", (gint)pid);
	g_auto(GStrv) pids = NULL;

	out->v2 = paths->memory == NULL;
	out->cpu = g_strdup(out->v2 ? paths->unified : paths->cpu);
	out->memory = g_strdup(out->v2 ? paths->unified : paths->memory);
	g_assert_nonnull(out->cpu);
	g_assert_nonnull(out->memory);
	/* the kernel's word: QEMU is in cgroups of the VM's name, in each controller */
	g_assert_true(test_is_vm_dir(f, out->cpu));
	g_assert_true(test_is_vm_dir(f, out->memory));
	if (!out->v2) {
		g_assert_nonnull(paths->cpuacct);
		g_assert_true(test_is_vm_dir(f, paths->cpuacct));
	}
	procs = test_read(out->memory, "cgroup.procs");
	pids = g_strsplit(procs, "\n", -1);
	g_assert_true(g_strv_contains((const gchar *const *)pids, text));
}

/* the limits as the controller files have them: 0 for none */
static void
test_assert_limits(const TestDirs *dirs, guint cpu_quota_percent, guint memory_max_mib)
{
	g_autofree gchar *quota = test_read(dirs->cpu, dirs->v2 ? "cpu.max" : "cpu.cfs_quota_us");
	g_autofree gchar *memory =
	    test_read(dirs->memory, dirs->v2 ? "memory.max" : "memory.limit_in_bytes");
	g_autofree gchar *want_quota = NULL;

	if (cpu_quota_percent == 0)
		want_quota = g_strdup(dirs->v2 ? "max 100000" : "-1");
	else
		want_quota =
		    g_strdup_printf(dirs->v2 ? "%u 100000" : "%u", cpu_quota_percent * 1000);
	g_assert_cmpstr(quota, ==, want_quota);
	if (memory_max_mib > 0) {
		g_assert_cmpuint(g_ascii_strtoull(memory, NULL, 10),
				 ==,
				 (guint64)memory_max_mib * 1024 * 1024);
	} else if (dirs->v2) {
		g_assert_cmpstr(memory, ==, "max");
	} else {
		/* v1 reads "unlimited" back as its page counter's largest value */
		g_assert_cmpuint(g_ascii_strtoull(memory, NULL, 10),
				 >=,
				 G_GUINT64_CONSTANT(1) << 62);
	}
}

static void
test_assert_gone(const TestDirs *dirs)
{
	g_assert_false(g_file_test(dirs->cpu, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(dirs->memory, G_FILE_TEST_EXISTS));
}

/* what QEMU itself says: "running" once resumed, "prelaunch" while held at -S */
static gchar *
test_qemu_status(Fixture *f)
{
	g_autoptr(VmsupVmHandles) handles =
	    vmsup_vm_hooks_vm_handles(vmsup_vm_service_get_hooks(f->service), f->name);
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonNode) status = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	VmsupQmpClient *qmp;

	g_assert_nonnull(handles);
	qmp = vmsup_qemu_process_get_qmp(handles->process);
	g_assert_nonnull(qmp);
	vmsup_qmp_client_execute_async(qmp,
				       "query-status",
				       NULL,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	status = vmsup_qmp_client_execute_finish(qmp, res, &error);
	g_assert_no_error(error);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(status));
	return g_strdup(json_object_get_string_member(json_node_get_object(status), "status"));
}

static GPid
test_start(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autofree gchar *status = NULL;
	JsonObject *cgroup;

	test_ok(CALL_OK(f, start, &error, "{\"name\": \"%s\"}", f->name), error);
	vm = test_get(f);
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "running");
	fixture_note_pid(f, (GPid)json_object_get_int_member(vm, "pid"));
	/* spawned paused for the move into its cgroup, and resumed after it */
	status = test_qemu_status(f);
	g_assert_cmpstr(status, ==, "running");
	cgroup = json_object_get_object_member(vm, "cgroup");
	g_assert_true(json_object_get_boolean_member(cgroup, "limits_available"));
	g_assert_false(json_object_has_member(cgroup, "error"));
	g_assert_true(test_is_vm_dir(f, json_object_get_string_member(cgroup, "path")));
	return (GPid)json_object_get_int_member(vm, "pid");
}

static void
test_stop(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	test_ok(CALL_OK(f, stop, &error, "{\"name\": \"%s\", \"force\": true}", f->name), error);
}

/* vm.set that must fail with @code and leave the limits as they were */
static void
test_set_refused(Fixture *f, const TestDirs *dirs, gint code, const gchar *fields)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) before = test_get(f);
	g_autoptr(JsonObject) after = NULL;
	JsonObject *result = CALL_OK(f, set, &error, "{\"name\": \"%s\", %s}", f->name, fields);

	g_test_message("refused: %s: %s", fields, error != NULL ? error->message : "(accepted)");
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, code);
	after = test_get(f);
	g_assert_cmpint(vmsup_json_object_get_int(after, "cpu_quota_percent", 0),
			==,
			vmsup_json_object_get_int(before, "cpu_quota_percent", 0));
	g_assert_cmpint(vmsup_json_object_get_int(after, "memory_max_mib", 0),
			==,
			vmsup_json_object_get_int(before, "memory_max_mib", 0));
	g_assert_cmpint(vmsup_json_object_get_int(after, "memory_mib", 0),
			==,
			vmsup_json_object_get_int(before, "memory_mib", 0));
	test_assert_limits(dirs,
			   vmsup_json_object_get_int(before, "cpu_quota_percent", 0),
			   vmsup_json_object_get_int(before, "memory_max_mib", 0));
}

static gboolean
test_array_has(JsonObject *obj, const gchar *member, const gchar *value)
{
	JsonArray *array = json_object_get_array_member(obj, member);

	for (guint i = 0; array != NULL && i < json_array_get_length(array); i++) {
		if (g_strcmp0(json_array_get_string_element(array, i), value) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
test_vm_limits(Fixture *f, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) set = NULL;
	TestDirs dirs = {NULL};
	GPid pid;

	f->service = fixture_new_service(f);
	test_ok(CALL_OK(f,
			create,
			&error,
			"{\"name\": \"%s\", \"image\": \"%s\", \"memory_mib\": 128, "
			"\"cpu_quota_percent\": 50, \"memory_max_mib\": 300, \"wait\": true}",
			f->name,
			f->image),
		error);
	pid = test_start(f);
	test_find_dirs(f, pid, &dirs);
	test_assert_limits(&dirs, 50, 300);

	/* live: the answer says they are in effect, and the files agree */
	set = CALL_OK(f,
		      set,
		      &error,
		      "{\"name\": \"%s\", \"cpu_quota_percent\": 150, \"memory_max_mib\": null}",
		      f->name);
	g_assert_no_error(error);
	g_assert_true(test_array_has(set, "applied", "cpu_quota_percent"));
	g_assert_true(test_array_has(set, "applied", "memory_max_mib"));
	g_assert_false(test_array_has(set, "pending_restart", "cpu_quota_percent"));
	test_assert_limits(&dirs, 150, 0);
	g_clear_pointer(&set, json_object_unref);
	test_ok(CALL_OK(f,
			set,
			&error,
			"{\"name\": \"%s\", \"cpu_quota_percent\": 0, \"memory_max_mib\": 256}",
			f->name),
		error);
	test_assert_limits(&dirs, 0, 256);

	/* refusals change nothing */
	test_set_refused(f, &dirs, VMSUP_ERROR_INVALID_ARGUMENT, "\"cpu_quota_percent\": -1");
	test_set_refused(f, &dirs, VMSUP_ERROR_INVALID_ARGUMENT, "\"cpu_quota_percent\": 6401");
	test_set_refused(f, &dirs, VMSUP_ERROR_INVALID_ARGUMENT, "\"cpu_quota_percent\": \"50\"");
	test_set_refused(f, &dirs, VMSUP_ERROR_INVALID_ARGUMENT, "\"memory_max_mib\": true");
	test_set_refused(f, &dirs, VMSUP_ERROR_INVALID_ARGUMENT, "\"memory_max_mib\": -300");
	/* below the guest's memory, and below it plus QEMU's own */
	test_set_refused(f, &dirs, VMSUP_ERROR_INVALID_ARGUMENT, "\"memory_max_mib\": 100");
	test_set_refused(f, &dirs, VMSUP_ERROR_INVALID_ARGUMENT, "\"memory_max_mib\": 191");
	/* the guest grown past the cap */
	test_set_refused(f, &dirs, VMSUP_ERROR_INVALID_ARGUMENT, "\"memory_mib\": 512");
	/* all or nothing: a good quota with a bad cap */
	test_set_refused(f,
			 &dirs,
			 VMSUP_ERROR_INVALID_ARGUMENT,
			 "\"cpu_quota_percent\": 20, \"memory_max_mib\": 10");

	/* a daemon restart: the adopted QEMU keeps its cgroup and limits, still settable */
	g_clear_object(&f->service);
	f->service = fixture_new_service(f);
	{
		TestDirs again = {NULL};
		g_autoptr(JsonObject) vm = test_get(f);
		g_assert_cmpint(json_object_get_int_member(vm, "pid"), ==, pid);
		test_find_dirs(f, pid, &again);
		g_assert_cmpstr(again.cpu, ==, dirs.cpu);
		g_assert_cmpstr(again.memory, ==, dirs.memory);
		test_dirs_clear(&again);
	}
	test_assert_limits(&dirs, 0, 256);
	test_ok(CALL_OK(f, set, &error, "{\"name\": \"%s\", \"cpu_quota_percent\": 75}", f->name),
		error);
	test_assert_limits(&dirs, 75, 256);

	/* gone once QEMU is */
	test_stop(f);
	test_assert_gone(&dirs);

	/* set while stopped: stored, and applied at the next start */
	test_ok(CALL_OK(f,
			set,
			&error,
			"{\"name\": \"%s\", \"cpu_quota_percent\": 30, \"memory_max_mib\": 400}",
			f->name),
		error);
	pid = test_start(f);
	test_dirs_clear(&dirs);
	test_find_dirs(f, pid, &dirs);
	test_assert_limits(&dirs, 30, 400);
	test_stop(f);
	test_assert_gone(&dirs);

	/* a leftover of a daemon that died with no QEMU in it goes at the next load */
	g_assert_cmpint(g_mkdir(dirs.cpu, 0755), ==, 0);
	if (!dirs.v2)
		g_assert_cmpint(g_mkdir(dirs.memory, 0755), ==, 0);
	g_clear_object(&f->service);
	f->service = fixture_new_service(f);
	test_assert_gone(&dirs);

	test_ok(CALL_OK(f, delete, &error, "{\"name\": \"%s\"}", f->name), error);
	test_dirs_clear(&dirs);
}

/*
 * Where vmsupd may write no cgroup (an ordinary user's daemon here): VMs
 * start all the same, the reason is told, and limits are refused
 */
static void
test_unavailable_child(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupCgroup) cgroup = NULL;
	g_autoptr(JsonObject) info = NULL;
	g_autoptr(JsonObject) vm = NULL;
	JsonObject *result;
	const gchar *detail;

	/* nobody's QEMU needs to reach the image and write its runtime dir */
	g_assert_cmpint(chown(f->tmp, NOBODY, NOBODY), ==, 0);
	g_assert_cmpint(chown(f->image, NOBODY, NOBODY), ==, 0);
	g_assert_cmpint(setgroups(0, NULL), ==, 0);
	g_assert_cmpint(setgid(NOBODY), ==, 0);
	g_assert_cmpint(setuid(NOBODY), ==, 0);

	cgroup = vmsup_cgroup_new("test");
	g_assert_cmpint(vmsup_cgroup_get_mode(cgroup), ==, VMSUP_CGROUP_MODE_NONE);
	g_test_message("%s", vmsup_cgroup_get_reason(cgroup));
	g_assert_nonnull(strstr(vmsup_cgroup_get_reason(cgroup), "may not write"));

	f->service = fixture_new_service(f);
	info = vmsup_vm_service_get_cgroup_info(f->service);
	g_assert_cmpstr(json_object_get_string_member(info, "mode"), ==, "none");
	g_assert_false(json_object_get_boolean_member(info, "limits_available"));
	detail = json_object_get_string_member(info, "detail");
	g_assert_nonnull(strstr(detail, "may not write"));

	result = CALL_OK(f,
			 create,
			 &error,
			 "{\"name\": \"%s\", \"image\": \"%s\", \"cpu_quota_percent\": 50, "
			 "\"wait\": true}",
			 f->name,
			 f->image);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "unavailable"));
	g_clear_error(&error);
	g_assert_null(vmsup_vm_service_lookup(f->service, f->name));

	test_ok(
	    CALL_OK(f,
		    create,
		    &error,
		    "{\"name\": \"%s\", \"image\": \"%s\", \"memory_mib\": 128, \"start\": true, "
		    "\"wait\": true}",
		    f->name,
		    f->image),
	    error);
	vm = test_get(f);
	g_assert_cmpstr(json_object_get_string_member(vm, "state"), ==, "running");
	fixture_note_pid(f, (GPid)json_object_get_int_member(vm, "pid"));
	g_assert_false(json_object_get_boolean_member(json_object_get_object_member(vm, "cgroup"),
						      "limits_available"));
	result = CALL_OK(f, set, &error, "{\"name\": \"%s\", \"memory_max_mib\": 300}", f->name);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_clear_error(&error);
	/* clearing what is not set, with another field, still works */
	test_ok(CALL_OK(f,
			set,
			&error,
			"{\"name\": \"%s\", \"memory_max_mib\": null, \"auto_stop\": false}",
			f->name),
		error);
	test_stop(f);

	/* a definition with limits from a host that had cgroups: it starts, and says they are off
	 */
	{
		g_autofree gchar *basename = g_strconcat(f->name, ".json", NULL);
		g_autofree gchar *path = g_build_filename(f->state_dir, "vms", basename, NULL);
		g_autofree gchar *contents = NULL;
		g_autofree gchar *changed = NULL;
		g_autoptr(JsonObject) def = NULL;

		g_clear_object(&f->service);
		g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
		def = vmsup_json_parse_object(contents, -1, NULL);
		g_assert_nonnull(def);
		json_object_set_int_member(def, "cpu_quota_percent", 50);
		changed = vmsup_json_object_to_string(def, FALSE);
		g_assert_true(g_file_set_contents(path, changed, -1, NULL));
	}
	f->service = fixture_new_service(f);
	test_ok(CALL_OK(f, start, &error, "{\"name\": \"%s\"}", f->name), error);
	g_clear_pointer(&vm, json_object_unref);
	vm = test_get(f);
	fixture_note_pid(f, (GPid)json_object_get_int_member(vm, "pid"));
	g_assert_cmpint(json_object_get_int_member(vm, "cpu_quota_percent"), ==, 50);
	g_assert_nonnull(strstr(
	    vmsup_json_object_get_string(json_object_get_object_member(vm, "cgroup"), "error", ""),
	    "not applied"));
	/* other fields still change; the limit stays as it is until cleared */
	test_ok(CALL_OK(f, set, &error, "{\"name\": \"%s\", \"auto_stop\": true}", f->name), error);
	test_ok(CALL_OK(f, set, &error, "{\"name\": \"%s\", \"cpu_quota_percent\": 0}", f->name),
		error);
	test_stop(f);
}

static void
test_unavailable(Fixture *f, gconstpointer user_data)
{
	if (g_test_subprocess()) {
		test_unavailable_child(f);
		return;
	}
	/* the child becomes nobody, which only root can do */
	g_assert_cmpint(geteuid(), ==, 0);
	g_test_trap_subprocess(NULL, TEST_TIMEOUT_S * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

	g_test_add_func("/vmsup/cgroup/paths/hybrid", test_paths_hybrid);
	g_test_add_func("/vmsup/cgroup/paths/v2", test_paths_v2);
	g_test_add_func("/vmsup/cgroup/paths/odd", test_paths_odd);
	g_test_add("/vmsup/cgroup/vm-limits",
		   Fixture,
		   NULL,
		   fixture_setup,
		   test_vm_limits,
		   fixture_teardown);
	g_test_add("/vmsup/cgroup/unavailable",
		   Fixture,
		   NULL,
		   fixture_setup,
		   test_unavailable,
		   fixture_teardown);
	return g_test_run();
}
