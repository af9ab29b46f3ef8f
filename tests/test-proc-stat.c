/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The /proc sampler: a fake /proc for the parsing, this process and a child for the real thing. */

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-proc-stat.h"
#include "vmsup-test-util.h"

/* rewrites @name in place, as the kernel's files change: an open file sees the new text */
static void
write_file(const gchar *dir, const gchar *name, const gchar *text)
{
	g_autofree gchar *path = g_build_filename(dir, name, NULL);
	g_autofree gchar *parent = g_path_get_dirname(path);
	gint fd;

	g_assert_cmpint(g_mkdir_with_parents(parent, 0700), ==, 0);
	fd = g_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(write(fd, text, strlen(text)), ==, (gssize)strlen(text));
	g_assert_true(g_close(fd, NULL));
}

static gchar *
fake_stat(gint pid, const gchar *comm, guint64 utime, guint64 stime, guint64 starttime)
{
	return g_strdup_printf("%d (%s) S 1 %d %d 0 -1 4194560 1000 0 0 0 %" G_GUINT64_FORMAT
			       " %" G_GUINT64_FORMAT " 0 0 20 0 4 0 %" G_GUINT64_FORMAT
			       " 300000000 60000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 "
			       "17 1 0 0 0 0 0\n",
			       pid,
			       comm,
			       pid,
			       pid,
			       utime,
			       stime,
			       starttime);
}

static void
test_proc_parse(void)
{
	g_autofree gchar *root = vmsup_test_make_tmpdir();
	guint64 hz = (guint64)sysconf(_SC_CLK_TCK);
	guint64 page = (guint64)sysconf(_SC_PAGESIZE);
	g_autofree gchar *stat = fake_stat(4242, "qemu (x) y", 500, 250, 10 * hz);
	g_autofree gchar *later = fake_stat(4242, "qemu (x) y", 900, 350, 10 * hz);
	g_autofree gchar *t0 = fake_stat(4242, "qemu (x) y", 100, 50, 10 * hz);
	g_autofree gchar *t1 = fake_stat(4243, "CPU 0/TCG", 300, 100, 10 * hz);
	g_autofree gchar *t2 = fake_stat(4244, "CPU 1/TCG", 40, 10, 10 * hz);
	g_autofree gchar *t3 = fake_stat(4245, "worker", 7, 3, 10 * hz);
	g_autoptr(GArray) tids = g_array_new(FALSE, FALSE, sizeof(gint));
	g_autoptr(VmsupProcWatch) watch = NULL;
	g_autoptr(VmsupProcWatch) gone = NULL;
	g_autoptr(VmsupProcWatch) broken = NULL;
	VmsupProcSample sample;
	g_autoptr(GError) error = NULL;
	gint tid;

	write_file(root, "uptime", "110.50 200.00\n");
	write_file(root, "4242/stat", stat);
	write_file(root, "4242/statm", "75000 309 120 600 0 5000 0\n");
	write_file(root, "4242/task/4242/stat", t0);
	write_file(root, "4242/task/4243/stat", t1);
	write_file(root, "4242/task/4244/stat", t2);
	write_file(root, "4242/task/4245/stat", t3);
	write_file(root, "4242/task/4246/stat", "4246 (half");
	write_file(root, "4241/statm", "1 1 1 1 0 1 0\n");

	watch = vmsup_proc_watch_new(root, 4242, &error);
	g_assert_no_error(error);
	g_assert_cmpint(vmsup_proc_watch_get_pid(watch), ==, 4242);
	g_assert_true(vmsup_proc_watch_sample(watch, &sample, &error));
	g_assert_no_error(error);
	g_assert_cmpint(sample.pid, ==, 4242);
	g_assert_cmpuint(sample.ticks, ==, 750);
	g_assert_cmpuint(sample.rss_bytes, ==, 309 * page);
	/* started 10 s after boot, 110.5 s since boot when the watch was made */
	g_assert_cmpfloat(sample.uptime_s, >=, 100.49);
	g_assert_cmpfloat(sample.uptime_s, <, 105.0);
	/* without tids, the threads QEMU names "CPU n/..."; the unreadable one is skipped */
	g_assert_false(vmsup_proc_watch_has_vcpu_tids(watch));
	g_assert_cmpuint(sample.n_vcpus, ==, 2);
	g_assert_cmpuint(sample.vcpu_ticks, ==, 450);

	/* the open files are read again: new counters show */
	write_file(root, "4242/stat", later);
	g_assert_true(vmsup_proc_watch_sample(watch, &sample, &error));
	g_assert_cmpuint(sample.ticks, ==, 1250);

	/* tids from QMP name the vCPUs whatever their names; one already gone is skipped */
	tid = 4245;
	g_array_append_val(tids, tid);
	tid = 4999;
	g_array_append_val(tids, tid);
	vmsup_proc_watch_set_vcpu_tids(watch, tids);
	g_assert_true(vmsup_proc_watch_has_vcpu_tids(watch));
	g_assert_true(vmsup_proc_watch_sample(watch, &sample, &error));
	g_assert_cmpuint(sample.n_vcpus, ==, 1);
	g_assert_cmpuint(sample.vcpu_ticks, ==, 10);

	/* no such process; a stat file that does not parse */
	gone = vmsup_proc_watch_new(root, 4240, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_assert_null(gone);
	g_clear_error(&error);
	write_file(root, "4241/stat", "4241 (truncated) S 1 2");
	broken = vmsup_proc_watch_new(root, 4241, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INTERNAL);
	g_assert_null(broken);
	g_clear_error(&error);
	g_assert_null(vmsup_proc_watch_new(root, 0, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	vmsup_test_rm_rf(root);
}

static void
test_proc_percent(void)
{
	guint64 hz = (guint64)sysconf(_SC_CLK_TCK);
	VmsupProcSample a = {.pid = 7,
			     .sampled_at = 1000000,
			     .ticks = 100,
			     .vcpu_ticks = 50,
			     .n_vcpus = 1,
			     .uptime_s = 4};
	VmsupProcSample b = {.pid = 7,
			     .sampled_at = 3000000,
			     .ticks = 100 + 3 * hz,
			     .vcpu_ticks = 50 + hz,
			     .n_vcpus = 1,
			     .uptime_s = 6};
	VmsupProcSample other = b;
	VmsupProcSample fresh = {.pid = 9, .ticks = 5, .uptime_s = 0};

	/* three seconds of CPU in two seconds: 150 % of one core */
	g_assert_cmpfloat_with_epsilon(vmsup_proc_sample_cpu_percent(&a, &b, FALSE), 150.0, 0.01);
	g_assert_cmpfloat_with_epsilon(vmsup_proc_sample_cpu_percent(&a, &b, TRUE), 50.0, 0.01);
	/* no older sample: since the start, 100 ticks + 3 s in 6 s */
	g_assert_cmpfloat_with_epsilon(vmsup_proc_sample_cpu_percent(NULL, &b, FALSE),
				       (100.0 / hz + 3.0) / 6.0 * 100.0,
				       0.01);
	g_assert_cmpfloat_with_epsilon(vmsup_proc_sample_cpu_percent(NULL, &b, TRUE),
				       (50.0 / hz + 1.0) / 6.0 * 100.0,
				       0.01);
	other.pid = 8;
	g_assert_cmpfloat(vmsup_proc_sample_cpu_percent(&a, &other, FALSE), <, 0);
	g_assert_cmpfloat(vmsup_proc_sample_cpu_percent(&b, &a, FALSE), <, 0);
	g_assert_cmpfloat(vmsup_proc_sample_cpu_percent(&a, NULL, FALSE), <, 0);
	g_assert_cmpfloat(vmsup_proc_sample_cpu_percent(NULL, &fresh, FALSE), <, 0);
}

static gpointer
spin_thread(gpointer user_data)
{
	gint *stop = user_data;
	volatile guint64 n = 0;
	while (!g_atomic_int_get(stop))
		n++;
	return NULL;
}

static gdouble
process_cpu_seconds(void)
{
	struct timespec ts;
	g_assert_cmpint(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts), ==, 0);
	return (gdouble)ts.tv_sec + (gdouble)ts.tv_nsec / 1e9;
}

/* this process, a thread spinning: the samples see what the kernel counted */
static void
test_proc_real_process(void)
{
	gint stop = 0;
	GThread *thread = g_thread_new("spin", spin_thread, &stop);
	g_autoptr(VmsupProcWatch) watch = NULL;
	VmsupProcSample first;
	VmsupProcSample second;
	g_autoptr(GError) error = NULL;
	gdouble cpu_before;
	gdouble cpu_after;
	gdouble expected;
	gdouble cpu;

	watch = vmsup_proc_watch_new(NULL, getpid(), &error);
	g_assert_no_error(error);
	cpu_before = process_cpu_seconds();
	g_assert_true(vmsup_proc_watch_sample(watch, &first, &error));
	g_usleep(400 * 1000);
	g_assert_true(vmsup_proc_watch_sample(watch, &second, &error));
	cpu_after = process_cpu_seconds();
	g_assert_no_error(error);
	expected = (cpu_after - cpu_before) /
		   ((gdouble)(second.sampled_at - first.sampled_at) / G_USEC_PER_SEC) * 100.0;
	cpu = vmsup_proc_sample_cpu_percent(&first, &second, FALSE);
	g_test_message("cpu_percent %.1f, the kernel's own count %.1f", cpu, expected);
	g_assert_cmpfloat(expected, >, 10.0);
	g_assert_cmpfloat(cpu, >, expected - 30.0);
	g_assert_cmpfloat(cpu, <, expected + 30.0);
	/* no vCPU threads here: the whole process counts */
	g_assert_cmpuint(second.n_vcpus, ==, 0);
	g_assert_cmpfloat_with_epsilon(vmsup_proc_sample_cpu_percent(&first, &second, TRUE),
				       cpu,
				       0.001);
	g_assert_cmpuint(second.rss_bytes, >, 0);
	g_assert_cmpfloat(second.uptime_s, >, 0.3);
	g_assert_cmpfloat(vmsup_proc_sample_cpu_percent(NULL, &second, FALSE), >, 0.0);
	g_atomic_int_set(&stop, 1);
	g_thread_join(thread);
}

/* the files stay the reaped child's: no sample, whoever gets the pid next */
static void
test_proc_reaped_child(void)
{
	const gchar *argv[] = {"sleep", "60", NULL};
	g_autoptr(VmsupProcWatch) watch = NULL;
	g_autoptr(GError) error = NULL;
	VmsupProcSample sample;
	GPid pid = 0;
	gint status = 0;

	g_assert_true(g_spawn_async(NULL,
				    (gchar **)argv,
				    NULL,
				    G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
				    NULL,
				    NULL,
				    &pid,
				    &error));
	g_assert_no_error(error);
	watch = vmsup_proc_watch_new(NULL, pid, &error);
	g_assert_no_error(error);
	g_assert_true(vmsup_proc_watch_sample(watch, &sample, &error));
	g_assert_cmpint(sample.pid, ==, pid);
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_false(vmsup_proc_watch_sample(watch, &sample, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

	g_test_add_func("/vmsup/proc-stat/parse", test_proc_parse);
	g_test_add_func("/vmsup/proc-stat/percent", test_proc_percent);
	g_test_add_func("/vmsup/proc-stat/real-process", test_proc_real_process);
	g_test_add_func("/vmsup/proc-stat/reaped-child", test_proc_reaped_child);
	return g_test_run();
}
