/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QEMU argv building, and supervision of real, paused (-S) TCG QEMUs:
 * spawn, QMP ready, stop chains, exit reporting, adoption.
 */

#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vmsup-error.h"
#include "vmsup-qemu-process.h"
#include "vmsup-test-util.h"

#define TIMEOUT_S 30

typedef struct {
	gchar *tmpdir;      /* owned */
	gchar *runtime_dir; /* owned */
	gchar *qemu;        /* owned */
	GArray *pids;       /* of GPid: every QEMU this test started */
} Fixture;

typedef struct {
	guint count;
	gint status;
} ExitRecord;

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	fx->tmpdir = vmsup_test_make_tmpdir();
	fx->runtime_dir = g_build_filename(fx->tmpdir, "run", NULL);
	fx->qemu = vmsup_test_require_qemu();
	fx->pids = g_array_new(FALSE, FALSE, sizeof(GPid));
}

/* the pid is only killed while its cmdline still names our temp dir */
static gboolean
pid_is_ours(Fixture *fx, GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/cmdline", pid);
	g_autofree gchar *contents = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &contents, &len, NULL))
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (contents[i] == '\0')
			contents[i] = ' ';
	}
	return strstr(contents, fx->tmpdir) != NULL;
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	for (guint i = 0; i < fx->pids->len; i++) {
		GPid pid = g_array_index(fx->pids, GPid, i);
		if (pid_is_ours(fx, pid))
			kill(pid, SIGKILL);
	}
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(fx->tmpdir);
	g_array_unref(fx->pids);
	g_free(fx->qemu);
	g_free(fx->runtime_dir);
	g_free(fx->tmpdir);
}

static void
on_exited(VmsupQemuProcess *process, gint status, gpointer user_data)
{
	ExitRecord *rec = user_data;
	rec->count++;
	rec->status = status;
}

static gboolean
exit_seen(gpointer user_data)
{
	return ((ExitRecord *)user_data)->count > 0;
}

/* gone, not just dead: a zombie still answers kill(pid, 0) */
static gboolean
pid_is_gone(gpointer user_data)
{
	GPid pid = GPOINTER_TO_INT(user_data);
	return kill(pid, 0) != 0 && errno == ESRCH;
}

static gboolean
pid_is_alive(GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/stat", pid);
	g_autofree gchar *contents = NULL;
	const gchar *state;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return FALSE;
	state = strrchr(contents, ')');
	return state != NULL && state[1] == ' ' && state[2] != 'Z' && state[2] != 'X';
}

static VmsupQemuConfig *
paused_config(Fixture *fx, const gchar *name)
{
	VmsupQemuConfig *config = vmsup_qemu_config_new(name);
	config->qemu_binary = g_strdup(fx->qemu);
	config->accel = VMSUP_ACCEL_TCG;
	config->memory_mib = 128;
	config->paused = TRUE;
	return config;
}

static gboolean
spawn_process(Fixture *fx, VmsupQemuProcess *process, VmsupQemuConfig *config, GError **error)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	gboolean ok;

	vmsup_qemu_process_spawn_async(process, config, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	ok = vmsup_qemu_process_spawn_finish(process, res, error);
	if (vmsup_qemu_process_get_pid(process) > 0) {
		GPid pid = vmsup_qemu_process_get_pid(process);
		g_array_append_val(fx->pids, pid);
	}
	return ok;
}

static VmsupQemuProcess *
spawn_ok(Fixture *fx, VmsupQemuConfig *config)
{
	g_autoptr(VmsupQemuProcess) process = vmsup_qemu_process_new(config->name, fx->runtime_dir);
	g_autoptr(GError) error = NULL;

	spawn_process(fx, process, config, &error);
	g_assert_no_error(error);
	g_assert_true(vmsup_qemu_process_is_running(process));
	g_assert_nonnull(vmsup_qemu_process_get_qmp(process));
	return g_steal_pointer(&process);
}

static JsonObject *
qmp_execute(VmsupQmpClient *qmp, const gchar *command, GError **error)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonNode) node = NULL;

	vmsup_qmp_client_execute_async(qmp, command, NULL, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	node = vmsup_qmp_client_execute_finish(qmp, res, error);
	if (node == NULL)
		return NULL;
	g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
	return json_object_ref(json_node_get_object(node));
}

static void
assert_query_status(VmsupQemuProcess *process, const gchar *expected)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) status = NULL;

	status = qmp_execute(vmsup_qemu_process_get_qmp(process), "query-status", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(json_object_get_string_member(status, "status"), ==, expected);
}

static void
stop_process(VmsupQemuProcess *process, gboolean force, guint timeout_ms)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	vmsup_qemu_process_stop_async(process,
				      force,
				      timeout_ms,
				      NULL,
				      vmsup_test_store_result_cb,
				      &slot);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	g_assert_true(vmsup_qemu_process_stop_finish(process, res, &error));
	g_assert_no_error(error);
	g_assert_false(vmsup_qemu_process_is_running(process));
}

static gboolean
argv_has_pair(gchar **argv, const gchar *option, const gchar *value)
{
	for (guint i = 0; argv[i] != NULL && argv[i + 1] != NULL; i++) {
		if (g_strcmp0(argv[i], option) == 0 && g_strcmp0(argv[i + 1], value) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
write_file(const gchar *path, gsize size)
{
	g_autofree gchar *zeros = g_malloc0(size);
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, zeros, (gssize)size, &error);
	g_assert_no_error(error);
}

/* argv */

static void
test_argv_full(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "web1");
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;
	g_auto(GStrv) by_path = NULL;
	g_autofree gchar *pidfile = g_build_filename(fx->runtime_dir, "qemu.pid", NULL);
	g_autofree gchar *marker =
	    g_strdup_printf("secret,id=vmsup-runtime-dir,data=%s", fx->runtime_dir);
	g_autofree gchar *console =
	    g_strdup_printf("socket,id=ser0,path=%s/console.sock,server=on,wait=off,logfile=%s/"
			    "console.log",
			    fx->runtime_dir,
			    fx->runtime_dir);
	g_autofree gchar *qga =
	    g_strdup_printf("socket,id=qga0,path=%s/qga.sock,server=on,wait=off", fx->runtime_dir);
	g_autofree gchar *qmp_path =
	    g_strdup_printf("socket,id=qmp0,path=%s/qmp.sock,server=on,wait=off", fx->runtime_dir);

	config->cpus = 2;
	config->kernel = g_strdup("/boot/vmlinuz");
	config->initrd = g_strdup("/boot/initrd.img");
	config->cmdline = g_strdup("console=ttyS0 quiet panic=-1");
	config->disk = g_strdup("/var/lib/vmsup/web1.qcow2");
	config->share_dir = g_strdup("/home/user/src");
	vmsup_qemu_config_add_forward(config, 8080, 80);
	vmsup_qemu_config_add_forward(config, 2222, 22);

	argv = vmsup_qemu_config_build_argv(config, fx->runtime_dir, 3, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(argv[0], ==, fx->qemu);
	g_assert_true(argv_has_pair(argv, "-name", "guest=web1,debug-threads=on"));
	g_assert_true(argv_has_pair(argv, "-M", "q35"));
	g_assert_true(argv_has_pair(argv, "-accel", "tcg"));
	g_assert_false(g_strv_contains((const gchar *const *)argv, "-cpu"));
	g_assert_true(argv_has_pair(argv, "-smp", "2"));
	g_assert_true(argv_has_pair(argv, "-m", "128M"));
	g_assert_true(argv_has_pair(argv, "-display", "none"));
	g_assert_true(g_strv_contains((const gchar *const *)argv, "-nodefaults"));
	g_assert_true(g_strv_contains((const gchar *const *)argv, "-no-user-config"));
	g_assert_true(g_strv_contains((const gchar *const *)argv, "-no-reboot"));
	g_assert_true(g_strv_contains((const gchar *const *)argv, "-S"));
	/*
	 * with the QMP fd, QEMU creates nothing by name: no pidfile, the serial
	 * port a socket it is given, logging to an fdset
	 */
	g_assert_false(g_strv_contains((const gchar *const *)argv, "-pidfile"));
	g_assert_true(argv_has_pair(argv, "-object", marker));
	g_assert_true(argv_has_pair(argv, "-add-fd", "fd=5,set=5"));
	g_assert_true(argv_has_pair(argv,
				    "-chardev",
				    "socket,id=ser0,fd=6,server=on,wait=off,logfile=/dev/fdset/5"));
	g_assert_true(argv_has_pair(argv, "-serial", "chardev:ser0"));
	g_assert_true(argv_has_pair(argv, "-sandbox", VMSUP_QEMU_SANDBOX));
	g_assert_true(argv_has_pair(argv, "-chardev", "socket,id=qmp0,fd=3,server=on,wait=off"));
	g_assert_true(argv_has_pair(argv, "-mon", "chardev=qmp0,mode=control"));
	g_assert_true(argv_has_pair(argv, "-kernel", "/boot/vmlinuz"));
	g_assert_true(argv_has_pair(argv, "-initrd", "/boot/initrd.img"));
	g_assert_true(argv_has_pair(argv, "-append", "console=ttyS0 quiet panic=-1"));
	g_assert_true(
	    argv_has_pair(argv, "-drive", "if=virtio,file=/var/lib/vmsup/web1.qcow2,format=qcow2"));
	g_assert_true(argv_has_pair(argv, "-chardev", "socket,id=qga0,fd=4,server=on,wait=off"));
	g_assert_true(argv_has_pair(argv, "-device", "virtio-serial-pci"));
	g_assert_true(
	    argv_has_pair(argv,
			  "-device",
			  "virtserialport,chardev=qga0,id=qga0port,name=org.qemu.guest_agent.0"));
	g_assert_true(argv_has_pair(
	    argv,
	    "-netdev",
	    "user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp:127.0.0.1:2222-:22"));
	g_assert_true(argv_has_pair(argv, "-device", "virtio-net-pci,netdev=n0,romfile="));
	g_assert_true(
	    argv_has_pair(argv,
			  "-fsdev",
			  "local,id=fs0,path=/home/user/src,security_model=mapped-xattr"));
	g_assert_true(
	    argv_has_pair(argv, "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=workspace"));
	g_assert_true(argv_has_pair(argv, "-device", "virtio-balloon-pci"));

	/* KVM comes with -cpu host; no fd: QEMU binds the socket itself */
	config->accel = VMSUP_ACCEL_KVM;
	config->paused = FALSE;
	config->network = FALSE;
	config->agent = FALSE;
	by_path = vmsup_qemu_config_build_argv(config, fx->runtime_dir, -1, &error);
	g_assert_no_error(error);
	g_assert_true(argv_has_pair(by_path, "-accel", "kvm"));
	g_assert_true(argv_has_pair(by_path, "-cpu", "host"));
	g_assert_true(argv_has_pair(by_path, "-chardev", qmp_path));
	g_assert_true(argv_has_pair(by_path, "-pidfile", pidfile));
	g_assert_true(argv_has_pair(by_path, "-chardev", console));
	g_assert_false(g_strv_contains((const gchar *const *)by_path, "-S"));
	g_assert_false(g_strv_contains((const gchar *const *)by_path, "-netdev"));
	g_assert_false(argv_has_pair(by_path, "-chardev", qga));
}

static void
test_argv_escape(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;

	config->kernel = g_strdup("/k,x=1/vmlinuz");
	config->cmdline = g_strdup("root=/dev/vda a,b");
	config->disk = g_strdup("/d,1=2/disk.qcow2");
	config->share_dir = g_strdup("/s,,t");
	argv = vmsup_qemu_config_build_argv(config, "/run/a,b", -1, &error);
	g_assert_no_error(error);
	g_assert_true(argv_has_pair(argv, "-pidfile", "/run/a,b/qemu.pid"));
	g_assert_true(argv_has_pair(argv,
				    "-chardev",
				    "socket,id=ser0,path=/run/a,,b/console.sock,server=on,wait=off,"
				    "logfile=/run/a,,b/console.log"));
	g_assert_true(argv_has_pair(argv,
				    "-chardev",
				    "socket,id=qga0,path=/run/a,,b/qga.sock,server=on,wait=off"));
	/* -kernel and -append are not option strings: verbatim */
	g_assert_true(argv_has_pair(argv, "-kernel", "/k,x=1/vmlinuz"));
	g_assert_true(argv_has_pair(argv, "-append", "root=/dev/vda a,b"));
	g_assert_true(
	    argv_has_pair(argv, "-drive", "if=virtio,file=/d,,1=2/disk.qcow2,format=qcow2"));
	g_assert_true(
	    argv_has_pair(argv, "-fsdev", "local,id=fs0,path=/s,,,,t,security_model=mapped-xattr"));
	g_clear_pointer(&argv, g_strfreev);
	/* the runtime dir named for adoption is escaped too */
	argv = vmsup_qemu_config_build_argv(config, "/run/a,b", 3, &error);
	g_assert_no_error(error);
	g_assert_true(argv_has_pair(argv, "-object", "secret,id=vmsup-runtime-dir,data=/run/a,,b"));
}

static void
test_argv_refuse(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *long_dir = g_strnfill(120, 'r');
	struct {
		const gchar *field;
		const gchar *value;
	} bad[] = {
	    {"kernel", "/boot/vmlinuz\n-monitor stdio"},
	    {"initrd", "/boot/initrd\r"},
	    {"cmdline", "quiet\nconsole=ttyS0"},
	    {"disk", "/d\t.qcow2"},
	    {"share", "/s\x7f"},
	    {"disk", ""},
	    {"machine", "q35,accel=kvm"},
	    {"machine", "q35=1"},
	    {"machine", ""},
	    {"runtime", "/run/x\ny"},
	};
	/* a name that could smuggle an option in: the RPC table refuses it, here it is a bug */
	const gchar *const bad_names[] = {"a,b", "web1,debug-threads=off"};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) argv = NULL;
		const gchar *runtime = fx->runtime_dir;

		if (g_str_equal(bad[i].field, "kernel"))
			config->kernel = g_strdup(bad[i].value);
		else if (g_str_equal(bad[i].field, "initrd"))
			config->initrd = g_strdup(bad[i].value);
		else if (g_str_equal(bad[i].field, "cmdline"))
			config->cmdline = g_strdup(bad[i].value);
		else if (g_str_equal(bad[i].field, "disk"))
			config->disk = g_strdup(bad[i].value);
		else if (g_str_equal(bad[i].field, "share"))
			config->share_dir = g_strdup(bad[i].value);
		else if (g_str_equal(bad[i].field, "machine"))
			config->machine = g_strdup(bad[i].value);
		else if (g_str_equal(bad[i].field, "name")) {
			g_free(config->name);
			config->name = g_strdup(bad[i].value);
		} else
			runtime = bad[i].value;
		argv = vmsup_qemu_config_build_argv(config, runtime, 3, &error);
		g_assert_null(argv);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad_names); i++) {
		g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) argv = NULL;

		g_free(config->name);
		config->name = g_strdup(bad_names[i]);
		g_test_expect_message("vmsup-qmp", G_LOG_LEVEL_CRITICAL, "*vmsup_name_validate*");
		argv = vmsup_qemu_config_build_argv(config, fx->runtime_dir, 3, &error);
		g_test_assert_expected_messages();
		g_assert_null(argv);
	}

	/* numbers out of range, an unresolved accelerator, a socket path too long */
	for (guint i = 0; i < 4; i++) {
		g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) argv = NULL;
		g_autofree gchar *runtime = g_strdup(fx->runtime_dir);

		if (i == 0)
			config->cpus = 0;
		else if (i == 1)
			config->memory_mib = 0;
		else if (i == 2)
			config->accel = VMSUP_ACCEL_AUTO;
		else {
			g_free(runtime);
			runtime = g_build_filename(fx->tmpdir, long_dir, NULL);
		}
		argv = vmsup_qemu_config_build_argv(config, runtime, 3, &error);
		g_assert_null(argv);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	}
}

static void
test_argv_find_binary(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = vmsup_qemu_config_new("vm1");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *saved = g_strdup(g_getenv("VMSUP_QEMU"));
	g_autofree gchar *found = NULL;
	g_autofree gchar *missing = NULL;
	g_autofree gchar *not_in_path = NULL;

	config->qemu_binary = g_strdup("/nonexistent/qemu-system-x86_64");
	missing = vmsup_qemu_config_find_binary(config, &error);
	g_assert_null(missing);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_clear_error(&error);

	g_clear_pointer(&config->qemu_binary, g_free);
	g_setenv("VMSUP_QEMU", "vmsup-no-such-qemu", TRUE);
	not_in_path = vmsup_qemu_config_find_binary(config, &error);
	g_assert_null(not_in_path);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "vmsup-no-such-qemu"));
	g_clear_error(&error);

	g_setenv("VMSUP_QEMU", fx->qemu, TRUE);
	found = vmsup_qemu_config_find_binary(config, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(found, ==, fx->qemu);

	if (saved != NULL)
		g_setenv("VMSUP_QEMU", saved, TRUE);
	else
		g_unsetenv("VMSUP_QEMU");
}

/* spawn */

static void
test_spawn_ready(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	g_autoptr(VmsupQemuProcess) process = NULL;
	g_autofree gchar *pidfile = g_build_filename(fx->runtime_dir, "qemu.pid", NULL);
	g_autofree gchar *pid_text = NULL;
	g_autofree gchar *task_dir = NULL;
	g_autoptr(GDir) tasks = NULL;
	const gchar *tid;
	gboolean vcpu_named = FALSE;
	GArray *forwards;
	struct stat st;
	GPid pid;

	vmsup_qemu_config_add_forward(config, 0, 8080);
	process = spawn_ok(fx, config);
	pid = vmsup_qemu_process_get_pid(process);
	assert_query_status(process, "prelaunch");

	g_assert_cmpint(g_stat(fx->runtime_dir, &st), ==, 0);
	g_assert_cmpuint(st.st_mode & 0777, ==, 0700);
	g_assert_true(g_file_get_contents(pidfile, &pid_text, NULL, NULL));
	g_assert_cmpint(atoi(pid_text), ==, pid);
	/* a session of its own: a terminal's ^C never reaches it */
	g_assert_cmpint(getsid(pid), ==, pid);
	g_assert_cmpint(vmsup_qemu_process_get_started_at(process), <=, g_get_monotonic_time());
	g_assert_cmpint(vmsup_qemu_process_get_wait_status(process), ==, -1);

	forwards = vmsup_qemu_process_get_forwards(process);
	g_assert_cmpuint(forwards->len, ==, 1);
	g_assert_cmpuint(g_array_index(forwards, VmsupQemuForward, 0).host_port, !=, 0);
	g_assert_cmpuint(g_array_index(forwards, VmsupQemuForward, 0).guest_port, ==, 8080);

	/* debug-threads=on names the vCPU threads */
	task_dir = g_strdup_printf("/proc/%d/task", pid);
	tasks = g_dir_open(task_dir, 0, NULL);
	g_assert_nonnull(tasks);
	while ((tid = g_dir_read_name(tasks)) != NULL) {
		g_autofree gchar *comm_path = g_build_filename(task_dir, tid, "comm", NULL);
		g_autofree gchar *comm = NULL;
		if (g_file_get_contents(comm_path, &comm, NULL, NULL) &&
		    g_str_has_prefix(comm, "CPU 0/TCG"))
			vcpu_named = TRUE;
	}
	g_assert_true(vcpu_named);

	stop_process(process, TRUE, 0);
}

static void
test_spawn_comma_paths(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	g_autoptr(VmsupQemuProcess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *runtime = g_build_filename(fx->tmpdir, "run,1=x", NULL);
	g_autofree gchar *kernel = g_build_filename(fx->tmpdir, "vmlinuz,a=b", NULL);
	g_autofree gchar *share = g_build_filename(fx->tmpdir, "share,x", NULL);
	g_autofree gchar *console = g_build_filename(runtime, "console.log", NULL);
	g_autofree gchar *qga = g_build_filename(runtime, "qga.sock", NULL);

	/* a zero-filled image is enough for a machine that never runs */
	write_file(kernel, 65536);
	g_assert_cmpint(g_mkdir(share, 0700), ==, 0);
	config->kernel = g_strdup(kernel);
	config->share_dir = g_strdup(share);

	process = vmsup_qemu_process_new("vm1", runtime);
	spawn_process(fx, process, config, &error);
	g_assert_no_error(error);
	assert_query_status(process, "prelaunch");
	g_assert_true(g_file_test(console, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(qga, G_FILE_TEST_EXISTS));
	stop_process(process, TRUE, 0);
}

static void
assert_spawn_fails(Fixture *fx, VmsupQemuConfig *config, const gchar *expected)
{
	g_autoptr(VmsupQemuProcess) process = vmsup_qemu_process_new(config->name, fx->runtime_dir);
	g_autoptr(GError) error = NULL;
	ExitRecord rec = {0};
	GPid pid;

	g_signal_connect(process, "exited", G_CALLBACK(on_exited), &rec);
	g_assert_false(spawn_process(fx, process, config, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_test_message("spawn error: %s", error->message);
	g_assert_nonnull(strstr(error->message, expected));
	g_assert_nonnull(strstr(error->message, "exited with status 1"));
	g_assert_false(vmsup_qemu_process_is_running(process));
	g_assert_null(vmsup_qemu_process_get_qmp(process));
	g_assert_cmpuint(rec.count, ==, 1);
	pid = vmsup_qemu_process_get_pid(process);
	if (pid > 0)
		g_assert_true(pid_is_gone(GINT_TO_POINTER(pid)));
}

static void
test_spawn_bad_option(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	config->machine = g_strdup("no-such-machine");
	assert_spawn_fails(fx, config, "unsupported machine type");
}

static void
test_spawn_missing_kernel(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	config->kernel = g_build_filename(fx->tmpdir, "no-such-vmlinuz", NULL);
	assert_spawn_fails(fx, config, "could not open kernel file");
}

static void
test_spawn_busy(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	g_autoptr(VmsupQemuProcess) first = spawn_ok(fx, config);
	g_autoptr(VmsupQemuProcess) second = vmsup_qemu_process_new("vm1", fx->runtime_dir);
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	/* another object on the same runtime dir must not pull the sockets away */
	g_assert_false(spawn_process(fx, second, config, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_BUSY);
	g_assert_cmpint(vmsup_qemu_process_get_pid(second), ==, 0);
	assert_query_status(first, "prelaunch");

	/* and the same object twice */
	g_clear_error(&error);
	vmsup_qemu_process_spawn_async(first, config, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	g_assert_false(vmsup_qemu_process_spawn_finish(first, res, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_BUSY);

	stop_process(first, TRUE, 0);
}

static void
test_spawn_cancel(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	g_autoptr(VmsupQemuProcess) process = vmsup_qemu_process_new("vm1", fx->runtime_dir);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GPid pid;

	vmsup_qemu_process_spawn_async(process,
				       config,
				       cancellable,
				       vmsup_test_store_result_cb,
				       &slot);
	pid = vmsup_qemu_process_get_pid(process);
	g_assert_cmpint(pid, >, 0);
	g_array_append_val(fx->pids, pid);
	g_cancellable_cancel(cancellable);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	g_assert_false(vmsup_qemu_process_spawn_finish(process, res, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_false(vmsup_qemu_process_is_running(process));
	g_assert_true(pid_is_gone(GINT_TO_POINTER(pid)));
}

/* stop and exit */

static void
test_stop_graceful(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	g_autoptr(VmsupQemuProcess) process = spawn_ok(fx, config);
	g_autofree gchar *log_path = g_build_filename(fx->runtime_dir, "qemu.log", NULL);
	g_autofree gchar *log = NULL;
	ExitRecord rec = {0};
	gint64 start;

	g_signal_connect(process, "exited", G_CALLBACK(on_exited), &rec);
	/* a paused machine with no guest ignores the power button: quit ends it */
	start = g_get_monotonic_time();
	stop_process(process, FALSE, 300);
	g_test_message("graceful stop of a guestless machine took %" G_GINT64_FORMAT " ms",
		       (g_get_monotonic_time() - start) / 1000);
	g_assert_cmpuint(rec.count, ==, 1);
	g_assert_true(WIFEXITED(rec.status));
	g_assert_cmpint(WEXITSTATUS(rec.status), ==, 0);
	g_assert_cmpint(vmsup_qemu_process_get_wait_status(process), ==, rec.status);
	g_assert_false(vmsup_qmp_client_is_ready(vmsup_qemu_process_get_qmp(process)));
	/* `quit`, not SIGTERM (which QEMU would log) */
	g_assert_true(g_file_get_contents(log_path, &log, NULL, NULL));
	g_assert_null(strstr(log, "signal"));

	/* stopping what is already gone succeeds, and nothing is emitted twice */
	stop_process(process, FALSE, 300);
	stop_process(process, TRUE, 0);
	vmsup_test_drain_main_context();
	g_assert_cmpuint(rec.count, ==, 1);
}

static void
test_stop_force(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	g_autoptr(VmsupQemuProcess) process = spawn_ok(fx, config);
	ExitRecord rec = {0};
	GPid pid = vmsup_qemu_process_get_pid(process);

	g_signal_connect(process, "exited", G_CALLBACK(on_exited), &rec);
	stop_process(process, TRUE, 0);
	g_assert_cmpuint(rec.count, ==, 1);
	g_assert_true(WIFSIGNALED(rec.status));
	g_assert_cmpint(WTERMSIG(rec.status), ==, SIGKILL);
	g_assert_true(pid_is_gone(GINT_TO_POINTER(pid)));
}

static void
test_exit_external_kill(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	g_autoptr(VmsupQemuProcess) process = spawn_ok(fx, config);
	ExitRecord rec = {0};
	GPid pid = vmsup_qemu_process_get_pid(process);

	g_signal_connect(process, "exited", G_CALLBACK(on_exited), &rec);
	g_assert_true(pid_is_ours(fx, pid));
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
	vmsup_test_wait_until(exit_seen, &rec, TIMEOUT_S);
	g_assert_cmpuint(rec.count, ==, 1);
	g_assert_true(WIFSIGNALED(rec.status));
	g_assert_cmpint(WTERMSIG(rec.status), ==, 9);
	g_assert_false(vmsup_qemu_process_is_running(process));
	g_assert_false(vmsup_qmp_client_is_ready(vmsup_qemu_process_get_qmp(process)));
}

/* adoption */

static VmsupQemuProcess *
adopt(Fixture *fx, const gchar *runtime_dir, GError **error)
{
	g_autoptr(VmsupQemuProcess) process = vmsup_qemu_process_new("vm1", runtime_dir);
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	vmsup_qemu_process_adopt_async(process, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	if (!vmsup_qemu_process_adopt_finish(process, res, error))
		return NULL;
	return g_steal_pointer(&process);
}

static void
test_adopt(Fixture *fx, gconstpointer data)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	g_autoptr(VmsupQemuProcess) first = NULL;
	g_autoptr(VmsupQemuProcess) second = NULL;
	g_autoptr(GError) error = NULL;
	ExitRecord rec = {0};
	gint64 started_at;
	GArray *forwards;
	guint16 host_port;
	GPid pid;

	vmsup_qemu_config_add_forward(config, 0, 8080);
	first = spawn_ok(fx, config);
	pid = vmsup_qemu_process_get_pid(first);
	started_at = vmsup_qemu_process_get_started_at(first);
	host_port =
	    g_array_index(vmsup_qemu_process_get_forwards(first), VmsupQemuForward, 0).host_port;

	/* the daemon goes away: QEMU stays */
	g_clear_object(&first);
	vmsup_test_drain_main_context();
	g_assert_true(pid_is_alive(pid));

	second = adopt(fx, fx->runtime_dir, &error);
	g_assert_no_error(error);
	g_signal_connect(second, "exited", G_CALLBACK(on_exited), &rec);
	g_assert_cmpint(vmsup_qemu_process_get_pid(second), ==, pid);
	g_assert_true(vmsup_qemu_process_is_running(second));
	assert_query_status(second, "prelaunch");
	/* /proc start time has clock-tick resolution */
	g_assert_cmpint(ABS(vmsup_qemu_process_get_started_at(second) - started_at),
			<,
			G_USEC_PER_SEC);
	forwards = vmsup_qemu_process_get_forwards(second);
	g_assert_cmpuint(forwards->len, ==, 1);
	g_assert_cmpuint(g_array_index(forwards, VmsupQemuForward, 0).host_port, ==, host_port);
	g_assert_cmpuint(g_array_index(forwards, VmsupQemuForward, 0).guest_port, ==, 8080);

	/* not our child: the exit comes through the pidfd, without a status */
	stop_process(second, FALSE, 200);
	g_assert_cmpuint(rec.count, ==, 1);
	g_assert_cmpint(rec.status, ==, -1);
	vmsup_test_wait_until(pid_is_gone, GINT_TO_POINTER(pid), TIMEOUT_S);
}

static void
test_adopt_refused(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *pidfile = g_build_filename(fx->runtime_dir, "qemu.pid", NULL);
	g_autofree gchar *own_pid = g_strdup_printf("%d\n", (gint)getpid());
	g_autofree gchar *gone_pid = NULL;
	g_autoptr(GSubprocess) gone = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupQemuProcess) process = NULL;

	g_assert_cmpint(g_mkdir_with_parents(fx->runtime_dir, 0700), ==, 0);

	/* nothing recorded */
	process = adopt(fx, fx->runtime_dir, &error);
	g_assert_null(process);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* a live pid that is not our QEMU: this test */
	g_assert_true(g_file_set_contents(pidfile, own_pid, -1, NULL));
	process = adopt(fx, fx->runtime_dir, &error);
	g_assert_null(process);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "stale pidfile"));
	g_assert_true(pid_is_alive(getpid()));
	g_clear_error(&error);

	/* a pid that is gone: a child already reaped */
	gone = g_subprocess_new(G_SUBPROCESS_FLAGS_NONE, &error, "true", NULL);
	g_assert_no_error(error);
	gone_pid = g_strdup_printf("%s\n", g_subprocess_get_identifier(gone));
	g_assert_true(g_subprocess_wait(gone, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(g_file_set_contents(pidfile, gone_pid, -1, NULL));
	process = adopt(fx, fx->runtime_dir, &error);
	g_assert_null(process);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* garbage */
	g_assert_true(g_file_set_contents(pidfile, "not a pid", -1, NULL));
	process = adopt(fx, fx->runtime_dir, &error);
	g_assert_null(process);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
}

/* timing, reported, never asserted */

static gboolean
raw_socket_created(gpointer user_data)
{
	return g_file_test((const gchar *)user_data, G_FILE_TEST_EXISTS);
}

/* nothing to do: the event only wakes the main loop, which re-checks the socket */
static void
on_dir_changed(GFileMonitor *monitor,
	       GFile *file,
	       GFile *other,
	       GFileMonitorEvent event,
	       gpointer user_data)
{
}

/* exec to QMP ready for QEMU binding its own socket, found without polling */
static gint64
time_raw_qemu(Fixture *fx, guint round)
{
	g_autofree gchar *dir = g_strdup_printf("%s/raw%u", fx->tmpdir, round);
	g_autofree gchar *sock = g_build_filename(dir, "qmp.sock", NULL);
	g_autofree gchar *qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", sock);
	g_autoptr(GFile) dir_file = g_file_new_for_path(dir);
	g_autoptr(GFileMonitor) monitor = NULL;
	g_autoptr(GSubprocess) raw = NULL;
	g_autoptr(VmsupQmpClient) qmp = vmsup_qmp_client_new("raw");
	g_autoptr(GError) error = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	gint64 start;
	gint64 elapsed;
	GPid pid;

	g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
	monitor = g_file_monitor_directory(dir_file, G_FILE_MONITOR_NONE, NULL, &error);
	g_assert_no_error(error);
	g_signal_connect(monitor, "changed", G_CALLBACK(on_dir_changed), NULL);

	start = g_get_monotonic_time();
	raw =
	    g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
			     &error,
			     fx->qemu,
			     "-M",
			     "q35",
			     "-accel",
			     "tcg",
			     "-nodefaults",
			     "-display",
			     "none",
			     "-S",
			     "-qmp",
			     qmp_arg,
			     NULL);
	g_assert_no_error(error);
	pid = (GPid)atoi(g_subprocess_get_identifier(raw));
	g_array_append_val(fx->pids, pid);
	/* woken by the directory monitor as the socket appears */
	vmsup_test_wait_until(raw_socket_created, sock, TIMEOUT_S);
	vmsup_qmp_client_connect_async(qmp, sock, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	g_assert_true(vmsup_qmp_client_connect_finish(qmp, res, &error));
	g_assert_no_error(error);
	elapsed = g_get_monotonic_time() - start;

	vmsup_qmp_client_close(qmp);
	g_subprocess_force_exit(raw);
	g_assert_true(g_subprocess_wait(raw, NULL, NULL));
	return elapsed;
}

static gint64
time_spawn(Fixture *fx, guint round)
{
	g_autoptr(VmsupQemuConfig) config = paused_config(fx, "vm1");
	g_autofree gchar *dir = g_strdup_printf("%s/ours%u", fx->tmpdir, round);
	g_autoptr(VmsupQemuProcess) process = vmsup_qemu_process_new("vm1", dir);
	g_autoptr(GError) error = NULL;
	gint64 start;
	gint64 elapsed;

	config->network = FALSE;
	config->agent = FALSE;
	start = g_get_monotonic_time();
	spawn_process(fx, process, config, &error);
	elapsed = g_get_monotonic_time() - start;
	g_assert_no_error(error);
	stop_process(process, TRUE, 0);
	return elapsed;
}

static gint
cmp_int64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a;
	gint64 y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

static void
test_timing(Fixture *fx, gconstpointer data)
{
	const guint rounds = 7;
	g_autoptr(GArray) ours = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_autoptr(GArray) raw = g_array_new(FALSE, FALSE, sizeof(gint64));

	for (guint i = 0; i < rounds; i++) {
		gint64 t = time_spawn(fx, i);
		g_array_append_val(ours, t);
		t = time_raw_qemu(fx, i);
		g_array_append_val(raw, t);
	}
	g_array_sort(ours, cmp_int64);
	g_array_sort(raw, cmp_int64);
	g_test_message("spawn -> QMP ready, median of %u: vmsup %.1f ms [%.1f-%.1f], "
		       "plain qemu -S -qmp unix:... %.1f ms [%.1f-%.1f]",
		       rounds,
		       g_array_index(ours, gint64, rounds / 2) / 1000.0,
		       g_array_index(ours, gint64, 0) / 1000.0,
		       g_array_index(ours, gint64, rounds - 1) / 1000.0,
		       g_array_index(raw, gint64, rounds / 2) / 1000.0,
		       g_array_index(raw, gint64, 0) / 1000.0,
		       g_array_index(raw, gint64, rounds - 1) / 1000.0);
}

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	ADD("/vmsup/qemu/argv/full", test_argv_full);
	ADD("/vmsup/qemu/argv/escape", test_argv_escape);
	ADD("/vmsup/qemu/argv/refuse", test_argv_refuse);
	ADD("/vmsup/qemu/argv/find-binary", test_argv_find_binary);
	ADD("/vmsup/qemu/spawn/ready", test_spawn_ready);
	ADD("/vmsup/qemu/spawn/comma-paths", test_spawn_comma_paths);
	ADD("/vmsup/qemu/spawn/bad-option", test_spawn_bad_option);
	ADD("/vmsup/qemu/spawn/missing-kernel", test_spawn_missing_kernel);
	ADD("/vmsup/qemu/spawn/busy", test_spawn_busy);
	ADD("/vmsup/qemu/spawn/cancel", test_spawn_cancel);
	ADD("/vmsup/qemu/stop/graceful", test_stop_graceful);
	ADD("/vmsup/qemu/stop/force", test_stop_force);
	ADD("/vmsup/qemu/exit/external-kill", test_exit_external_kill);
	ADD("/vmsup/qemu/adopt/reattach", test_adopt);
	ADD("/vmsup/qemu/adopt/refused", test_adopt_refused);
	ADD("/vmsup/qemu/timing", test_timing);
	return g_test_run();
}
