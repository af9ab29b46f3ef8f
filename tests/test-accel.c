/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The accelerator probe: its guest under the real QEMU, the probe on this
 * host, and stand-in QEMU binaries (scripts, most of them exec'ing the real
 * QEMU with a changed argv when asked for KVM) that fail, abort, hang, never
 * run the guest, run it slowly, or work, to drive each outcome.
 */

#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vmsup-accel-guest.h"
#include "vmsup-accel-probe.h"
#include "vmsup-test-util.h"

#define TIMEOUT_S 30

typedef struct {
	gchar *tmpdir; /* owned */
	gchar *qemu;   /* owned */
} Fixture;

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	fx->tmpdir = vmsup_test_make_tmpdir();
	fx->qemu = vmsup_test_require_qemu();
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	vmsup_test_drain_main_context();
	vmsup_test_rm_rf(fx->tmpdir);
	g_free(fx->qemu);
	g_free(fx->tmpdir);
}

/* a fake QEMU; each run appends its pid (kept across exec) to <tmpdir>/<name>.pids */
static gchar *
write_script(Fixture *fx, const gchar *name, const gchar *body)
{
	g_autofree gchar *path = g_build_filename(fx->tmpdir, name, NULL);
	g_autofree gchar *script =
	    g_strdup_printf("#!/bin/sh\necho $$ >> '%s/%s.pids'\n%s\n", fx->tmpdir, name, body);
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, script, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(path, 0755), ==, 0);
	return g_steal_pointer(&path);
}

static guint
script_count_runs(Fixture *fx, const gchar *name)
{
	g_autofree gchar *path = g_strdup_printf("%s/%s.pids", fx->tmpdir, name);
	g_autofree gchar *contents = NULL;
	guint n = 0;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return 0;
	for (const gchar *p = contents; *p != '\0'; p++)
		n += *p == '\n';
	return n;
}

typedef struct {
	Fixture *fx;
	const gchar *name;
} ScriptRuns;

static gboolean
script_both_ran(gpointer data)
{
	ScriptRuns *runs = data;
	return script_count_runs(runs->fx, runs->name) == 2;
}

/* every run of @name that started (KVM, and the TCG reference unless the answer came first) is gone
 */
static void
assert_script_runs_gone(Fixture *fx, const gchar *name)
{
	g_autofree gchar *path = g_strdup_printf("%s/%s.pids", fx->tmpdir, name);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) pids = NULL;

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	pids = g_strsplit(g_strstrip(contents), "\n", -1);
	g_assert_cmpuint(g_strv_length(pids), >=, 1);
	for (guint i = 0; pids[i] != NULL; i++) {
		GPid pid = (GPid)atoi(pids[i]);
		g_assert_cmpint(pid, >, 0);
		g_assert_true(kill(pid, 0) != 0 && errno == ESRCH);
	}
}

static VmsupAccel
probe(const gchar *binary, gchar **out_reason)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	VmsupAccel accel;

	vmsup_accel_probe_async(binary, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	accel = vmsup_accel_probe_finish(res, out_reason);
	g_assert_nonnull(*out_reason);
	g_test_message("probe of %s: %s (%s)", binary, vmsup_accel_to_string(accel), *out_reason);
	return accel;
}

static void
test_strings(void)
{
	VmsupAccel accel = VMSUP_ACCEL_TCG;
	const VmsupAccel all[] = {VMSUP_ACCEL_AUTO, VMSUP_ACCEL_KVM, VMSUP_ACCEL_TCG};

	for (guint i = 0; i < G_N_ELEMENTS(all); i++) {
		g_assert_true(vmsup_accel_from_string(vmsup_accel_to_string(all[i]), &accel));
		g_assert_cmpint(accel, ==, all[i]);
	}
	g_assert_cmpstr(vmsup_accel_to_string(VMSUP_ACCEL_KVM), ==, "kvm");
	g_assert_false(vmsup_accel_from_string("KVM", &accel));
	g_assert_false(vmsup_accel_from_string("", &accel));
	g_assert_false(vmsup_accel_from_string(NULL, &accel));
	g_assert_false(vmsup_accel_from_string("xen", NULL));
}

/* the image: 64 KiB, a near jump at the reset vector back to the code at offset 0 */
static void
test_guest_image(void)
{
	g_autoptr(GBytes) image = vmsup_accel_guest_image();
	gsize size = 0;
	const guint8 *data = g_bytes_get_data(image, &size);

	g_assert_cmpuint(size, ==, 64 * 1024);
	g_assert_cmpuint(data[size - 16], ==, 0xe9);
	g_assert_cmpuint((guint16)(data[size - 15] | data[size - 14] << 8) + (size - 13),
			 ==,
			 0x10000);
	g_assert_cmpuint(data[0], ==, 0xfa);
}

/* the probe's own argv under TCG: the guest runs to the end and reports through isa-debug-exit */
static void
test_guest_tcg(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv =
	    vmsup_accel_guest_build_argv(fx->qemu, VMSUP_ACCEL_TCG, fx->tmpdir, &error);
	g_autofree gchar *console = NULL;
	g_autofree gchar *err = NULL;
	gint wait_status = -1;

	g_assert_no_error(error);
	g_assert_nonnull(argv);
	g_assert_true(g_spawn_sync(NULL,
				   argv,
				   NULL,
				   G_SPAWN_DEFAULT,
				   NULL,
				   NULL,
				   NULL,
				   &err,
				   &wait_status,
				   &error));
	g_assert_no_error(error);
	g_test_message("QEMU: %s", err);
	g_assert_true(WIFEXITED(wait_status));
	g_assert_cmpint(WEXITSTATUS(wait_status), ==, VMSUP_ACCEL_GUEST_EXIT_OK);
	g_assert_cmpint(WEXITSTATUS(wait_status), ==, 85);
	console = vmsup_accel_guest_read_console(fx->tmpdir, VMSUP_ACCEL_TCG);
	g_assert_cmpstr(console, ==, "S*");
}

static void
test_probe_real(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *reason = NULL;
	VmsupAccel accel = probe(fx->qemu, &reason);

	g_test_message("this host: the real probe picked %s", vmsup_accel_to_string(accel));
	g_assert_true(accel == VMSUP_ACCEL_KVM || accel == VMSUP_ACCEL_TCG);
	if (accel == VMSUP_ACCEL_KVM)
		g_assert_true(g_str_has_prefix(reason, "KVM usable: "));
	else
		g_assert_true(g_str_has_suffix(reason, "; using TCG"));
	/* without /dev/kvm QEMU cannot even initialise KVM */
	if (!g_file_test("/dev/kvm", G_FILE_TEST_EXISTS)) {
		g_assert_cmpint(accel, ==, VMSUP_ACCEL_TCG);
		g_assert_nonnull(strstr(reason, "exited with status 1"));
		g_assert_nonnull(strstr(reason, "KVM"));
	}
}

static void
test_probe_exit(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *script =
	    write_script(fx, "fail", "echo '/dev/kvm: No such file or directory' >&2\nexit 1");
	g_autofree gchar *reason = NULL;

	g_assert_cmpint(probe(script, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_cmpstr(reason,
			==,
			"KVM probe failed: QEMU exited with status 1: /dev/kvm: No such file or "
			"directory; using TCG");
	assert_script_runs_gone(fx, "fail");
}

static void
test_probe_hang(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *script = write_script(fx, "hang", "exec sleep 600");
	g_autofree gchar *reason = NULL;
	gint64 start = g_get_monotonic_time();

	/* never runs anything: the bound ends the probe, and no process is left */
	g_assert_cmpint(probe(script, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_cmpint(g_get_monotonic_time() - start, >=, VMSUP_ACCEL_PROBE_BOUND_MS * 1000);
	g_assert_cmpstr(reason,
			==,
			"KVM probe failed: after 2000 ms under KVM the test guest had not started "
			"running (under TCG it did not report either); using TCG");
	g_assert_cmpuint(script_count_runs(fx, "hang"), ==, 2);
	assert_script_runs_gone(fx, "hang");
}

static void
test_probe_cancel(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *script = write_script(fx, "slow", "exec sleep 600");
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autofree gchar *reason = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	ScriptRuns runs = {fx, "slow"};

	vmsup_accel_probe_async(script, cancellable, vmsup_test_store_result_cb, &slot);
	vmsup_test_wait_until(script_both_ran, &runs, TIMEOUT_S);
	g_cancellable_cancel(cancellable);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	g_assert_cmpint(vmsup_accel_probe_finish(res, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_cmpstr(reason, ==, "KVM probe cancelled; using TCG");
	assert_script_runs_gone(fx, "slow");
}

/*
 * A stand-in QEMU: the real one, unchanged for the TCG reference; for the
 * KVM run it records the argv in <tmpdir>/args, turns -accel kvm into tcg
 * and -cpu host into max (KVM that "works"), drops a -device whose value
 * starts with @drop, and appends @extra.
 */
static gchar *
write_wrapper(Fixture *fx, const gchar *name, const gchar *drop, const gchar *extra)
{
	g_autofree gchar *body = NULL;

	g_assert_null(strchr(fx->qemu, '\''));
	body = g_strdup_printf("kvm=\n"
			       "prev=\n"
			       "for a do\n"
			       "\t[ \"$prev\" = -accel ] && [ \"$a\" = kvm ] && kvm=1\n"
			       "\tprev=$a\n"
			       "done\n"
			       "[ -n \"$kvm\" ] || exec '%s' \"$@\"\n"
			       "printf '%%s\\n' \"$@\" > '%s/args'\n"
			       "prev=\n"
			       "dev=\n"
			       "for a do\n"
			       "\tshift\n"
			       "\tif [ -n \"$dev\" ]; then\n"
			       "\t\tdev=\n"
			       "\t\tcase \"$a\" in '%s'*) prev=; continue;; esac\n"
			       "\t\tset -- \"$@\" -device\n"
			       "\telif [ \"$a\" = -device ]; then\n"
			       "\t\tdev=1\n"
			       "\t\tcontinue\n"
			       "\tfi\n"
			       "\t[ \"$prev\" = -accel ] && [ \"$a\" = kvm ] && a=tcg\n"
			       "\t[ \"$prev\" = -cpu ] && [ \"$a\" = host ] && a=max\n"
			       "\tprev=$a\n"
			       "\tset -- \"$@\" \"$a\"\n"
			       "done\n"
			       "exec '%s' \"$@\" %s",
			       fx->qemu,
			       fx->tmpdir,
			       drop != NULL ? drop : "no-such-device",
			       fx->qemu,
			       extra != NULL ? extra : "");
	return write_script(fx, name, body);
}

/* a KVM that runs the guest as fast as TCG does: the probe picks KVM, having asked for it */
static void
test_probe_kvm_works(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *args_path = g_build_filename(fx->tmpdir, "args", NULL);
	g_autofree gchar *script = write_wrapper(fx, "kvm-works", NULL, NULL);
	g_autofree gchar *reason = NULL;
	g_autofree gchar *args = NULL;

	g_assert_cmpint(probe(script, &reason), ==, VMSUP_ACCEL_KVM);
	g_assert_true(g_str_has_prefix(
	    reason,
	    "KVM usable: the test guest ran to the end under KVM with -cpu host in "));
	assert_script_runs_gone(fx, "kvm-works");

	/* what the probe asked QEMU for, one argument a line */
	g_assert_true(g_file_get_contents(args_path, &args, NULL, NULL));
	g_assert_nonnull(strstr(args, "\n-accel\nkvm\n"));
	g_assert_nonnull(strstr(args, "\n-cpu\nhost\n"));
	g_assert_nonnull(strstr(args, "\n-M\nq35\n"));
	g_assert_nonnull(strstr(args, "\n-bios\n"));
	g_assert_nonnull(strstr(args, "\n-device\nisa-debug-exit,iobase=0xf4,iosize=0x04\n"));
	g_assert_nonnull(strstr(args, "\n-nodefaults\n"));
	g_assert_nonnull(strstr(args, "\n-no-user-config\n"));
	g_assert_nonnull(strstr(args, "\n-display\nnone\n"));
	g_assert_null(strstr(args, "\n-S\n"));
}

/* QEMU starts and answers QMP, but the vCPU never runs: paused for good */
static void
test_probe_never_runs(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *script = write_wrapper(fx, "paused", NULL, "-S");
	g_autofree gchar *reason = NULL;

	g_assert_cmpint(probe(script, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_true(g_str_has_prefix(reason, "KVM probe failed: after "));
	g_assert_nonnull(
	    strstr(reason, " ms under KVM the test guest had not started running (TCG ran it in "));
	assert_script_runs_gone(fx, "paused");
}

/* the guest runs, but its report has nowhere to go */
static void
test_probe_no_report(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *script = write_wrapper(fx, "no-exit", "isa-debug-exit", NULL);
	g_autofree gchar *reason = NULL;

	g_assert_cmpint(probe(script, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_true(g_str_has_prefix(reason, "KVM probe failed: after "));
	g_assert_nonnull(strstr(reason,
				" ms under KVM the test guest had run to the end, but QEMU did not "
				"exit through isa-debug-exit (TCG ran it in "));
	assert_script_runs_gone(fx, "no-exit");
}

/* a "KVM" crawling at one instruction per microsecond of host time */
static void
test_probe_slow(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *script =
	    write_wrapper(fx, "slow-kvm", NULL, "-icount shift=10,align=on,sleep=on");
	g_autofree gchar *reason = NULL;

	g_assert_cmpint(probe(script, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_true(
	    g_str_has_prefix(reason,
			     "KVM slower than TCG: the test guest ran to the end under TCG in "));
	g_assert_nonnull(strstr(reason, ", under KVM it had not finished after "));
	assert_script_runs_gone(fx, "slow-kvm");
}

/* -cpu host aborting, as on hosts where KVM cannot set an MSR; TCG runs for real */
static void
test_probe_abort(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *body = g_strdup_printf(
	    "case \" $* \" in *' -accel kvm '*) ;; *) exec '%s' \"$@\";; esac\n"
	    "echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2\n"
	    "echo 'kvm_buf_set_msrs: Assertion failed.' >&2\n"
	    "ulimit -c 0\nkill -ABRT $$",
	    fx->qemu);
	g_autofree gchar *script = write_script(fx, "abort", body);
	g_autofree gchar *reason = NULL;

	g_assert_cmpint(probe(script, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_cmpstr(reason,
			==,
			"KVM probe failed: QEMU was killed by signal 6 (Aborted): "
			"qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69; using TCG");
	assert_script_runs_gone(fx, "abort");
}

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	g_test_add_func("/vmsup/accel/strings", test_strings);
	g_test_add_func("/vmsup/accel/guest/image", test_guest_image);
	ADD("/vmsup/accel/guest/tcg", test_guest_tcg);
	ADD("/vmsup/accel/probe/real", test_probe_real);
	ADD("/vmsup/accel/probe/exit", test_probe_exit);
	ADD("/vmsup/accel/probe/abort", test_probe_abort);
	ADD("/vmsup/accel/probe/hang", test_probe_hang);
	ADD("/vmsup/accel/probe/cancel", test_probe_cancel);
	ADD("/vmsup/accel/probe/kvm-works", test_probe_kvm_works);
	ADD("/vmsup/accel/probe/never-runs", test_probe_never_runs);
	ADD("/vmsup/accel/probe/no-report", test_probe_no_report);
	ADD("/vmsup/accel/probe/slow", test_probe_slow);
	return g_test_run();
}
