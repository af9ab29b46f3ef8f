/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The accelerator probe: the real QEMU on this host, and fake QEMU binaries
 * (scripts) that fail, abort, hang, or work, to drive each outcome.
 */

#include "config.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vmsup-accel.h"
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

/* a fake QEMU; it records its pid (kept across exec) in <tmpdir>/<name>.pid */
static gchar *
write_script(Fixture *fx, const gchar *name, const gchar *body)
{
	g_autofree gchar *path = g_build_filename(fx->tmpdir, name, NULL);
	g_autofree gchar *script =
	    g_strdup_printf("#!/bin/sh\necho $$ > '%s/%s.pid'\n%s\n", fx->tmpdir, name, body);
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, script, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(path, 0755), ==, 0);
	return g_steal_pointer(&path);
}

static GPid
script_pid(Fixture *fx, const gchar *name)
{
	g_autofree gchar *path = g_strdup_printf("%s/%s.pid", fx->tmpdir, name);
	g_autofree gchar *contents = NULL;

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	return (GPid)atoi(contents);
}

static gboolean
pid_is_gone(GPid pid)
{
	return kill(pid, 0) != 0 && errno == ESRCH;
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

static void
test_probe_real(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *reason = NULL;
	VmsupAccel accel = probe(fx->qemu, &reason);

	g_test_message("this host: the real probe picked %s", vmsup_accel_to_string(accel));
	g_assert_true(accel == VMSUP_ACCEL_KVM || accel == VMSUP_ACCEL_TCG);
	if (accel == VMSUP_ACCEL_TCG) {
		g_assert_true(g_str_has_prefix(reason, "KVM probe failed: QEMU "));
		g_assert_true(g_str_has_suffix(reason, "; using TCG"));
	}
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
	g_assert_true(pid_is_gone(script_pid(fx, "fail")));
}

static void
test_probe_abort(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *script =
	    write_script(fx,
			 "abort",
			 "echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2\n"
			 "echo 'kvm_buf_set_msrs: Assertion failed.' >&2\n"
			 "ulimit -c 0\nkill -ABRT $$");
	g_autofree gchar *reason = NULL;

	g_assert_cmpint(probe(script, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_nonnull(strstr(reason, "killed by signal 6"));
	g_assert_nonnull(strstr(reason, "failed to set MSR 0x10a to 0x69"));
	g_assert_null(strstr(reason, "Assertion"));
}

static void
test_probe_hang(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *script = write_script(fx, "hang", "exec sleep 600");
	g_autofree gchar *reason = NULL;

	/* never answers QMP: the probe gives up on its own and leaves no process */
	g_assert_cmpint(probe(script, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_nonnull(strstr(reason, "did not answer QMP within"));
	g_assert_true(pid_is_gone(script_pid(fx, "hang")));
}

static void
test_probe_cancel(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *script = write_script(fx, "slow", "exec sleep 600");
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autofree gchar *reason = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	vmsup_accel_probe_async(script, cancellable, vmsup_test_store_result_cb, &slot);
	g_cancellable_cancel(cancellable);
	res = vmsup_test_wait_result(&slot, TIMEOUT_S);
	g_assert_cmpint(vmsup_accel_probe_finish(res, &reason), ==, VMSUP_ACCEL_TCG);
	g_assert_cmpstr(reason, ==, "KVM probe cancelled; using TCG");
}

/*
 * A QEMU whose KVM "works": the real one with -accel kvm turned into tcg and
 * -cpu host dropped. The probe must pick KVM, having asked for it.
 */
static void
test_probe_kvm_works(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *args_path = g_build_filename(fx->tmpdir, "args", NULL);
	g_autofree gchar *body = NULL;
	g_autofree gchar *script = NULL;
	g_autofree gchar *reason = NULL;
	g_autofree gchar *args = NULL;

	g_assert_null(strchr(fx->qemu, '\''));
	body = g_strdup_printf("printf '%%s\\n' \"$@\" > '%s'\n"
			       "prev=\n"
			       "for a do\n"
			       "\tshift\n"
			       "\tif [ \"$a\" = -cpu ]; then prev=-cpu; continue; fi\n"
			       "\tif [ \"$prev\" = -cpu ]; then prev=; continue; fi\n"
			       "\tif [ \"$prev\" = -accel ] && [ \"$a\" = kvm ]; then a=tcg; fi\n"
			       "\tprev=$a\n"
			       "\tset -- \"$@\" \"$a\"\n"
			       "done\n"
			       "exec '%s' \"$@\"",
			       args_path,
			       fx->qemu);
	script = write_script(fx, "kvm-works", body);

	g_assert_cmpint(probe(script, &reason), ==, VMSUP_ACCEL_KVM);
	g_assert_true(g_str_has_prefix(reason, "KVM usable"));
	g_assert_true(pid_is_gone(script_pid(fx, "kvm-works")));

	/* what the probe asked QEMU for, one argument a line */
	g_assert_true(g_file_get_contents(args_path, &args, NULL, NULL));
	g_assert_nonnull(strstr(args, "\n-accel\nkvm\n"));
	g_assert_nonnull(strstr(args, "\n-cpu\nhost\n"));
	g_assert_nonnull(strstr(args, "\n-M\nq35\n"));
	g_assert_nonnull(strstr(args, "\n-S\n"));
	g_assert_nonnull(strstr(args, "\n-nodefaults\n"));
	g_assert_nonnull(strstr(args, "\n-no-user-config\n"));
	g_assert_nonnull(strstr(args, "\n-display\nnone\n"));
}

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	g_test_add_func("/vmsup/accel/strings", test_strings);
	ADD("/vmsup/accel/probe/real", test_probe_real);
	ADD("/vmsup/accel/probe/exit", test_probe_exit);
	ADD("/vmsup/accel/probe/abort", test_probe_abort);
	ADD("/vmsup/accel/probe/hang", test_probe_hang);
	ADD("/vmsup/accel/probe/cancel", test_probe_cancel);
	ADD("/vmsup/accel/probe/kvm-works", test_probe_kvm_works);
	return g_test_run();
}
