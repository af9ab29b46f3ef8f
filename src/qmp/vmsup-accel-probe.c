/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Is KVM usable? /dev/kvm can open, and QEMU start and answer QMP, while the
 * vCPU never runs guest code or runs it slower than TCG would. So the probe
 * runs a small guest under KVM with the CPU model VMs get and, side by side,
 * under TCG as the reference, and trusts only what the guest reports back.
 */

#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vmsup-accel-guest.h"
#include "vmsup-accel-probe.h"
#include "vmsup-qemu-process.h"

typedef struct _VmsupAccelProbe VmsupAccelProbe;

/* one QEMU running the probe guest */
typedef struct {
	VmsupAccelProbe *probe; /* unowned */
	VmsupAccel accel;
	GSubprocess *subprocess; /* owned */
	gboolean running;
	gint wait_status;  /* -1 until reaped */
	gint64 elapsed_ms; /* from the probe's start to the exit */
} VmsupAccelRun;

struct _VmsupAccelProbe {
	GTask *task; /* owned until returned: the probe is its task data */
	VmsupAccelRun kvm;
	VmsupAccelRun tcg;
	gchar *dir; /* owned: a temp dir, removed at the end */
	gint64 started_at;
	GSource *cancel_source; /* owned */
	guint bound_source;
	guint deadline_source;
	gboolean decided;
	VmsupAccel accel;
	gchar *reason; /* owned */
};

static void
vmsup_accel_probe_free(VmsupAccelProbe *probe)
{
	g_clear_handle_id(&probe->bound_source, g_source_remove);
	g_clear_handle_id(&probe->deadline_source, g_source_remove);
	if (probe->cancel_source != NULL)
		g_source_destroy(probe->cancel_source);
	g_clear_pointer(&probe->cancel_source, g_source_unref);
	g_clear_object(&probe->kvm.subprocess);
	g_clear_object(&probe->tcg.subprocess);
	g_free(probe->dir);
	g_free(probe->reason);
	g_free(probe);
}

/* removes the probe's dir: probe.bin and one level of run dirs */
static void
vmsup_accel_remove_dir(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(child, G_FILE_TEST_IS_SYMLINK)) {
			vmsup_accel_remove_dir(child);
			continue;
		}
		if (g_unlink(child) != 0)
			g_debug("cannot remove '%s': %s", child, g_strerror(errno));
	}
	if (g_rmdir(path) != 0)
		g_debug("cannot remove '%s': %s", path, g_strerror(errno));
}

/* QEMU's first line on stderr is the one that names the failure */
static gchar *
vmsup_accel_first_log_line(VmsupAccelRun *run)
{
	g_autofree gchar *run_dir = vmsup_accel_guest_run_dir(run->probe->dir, run->accel);
	g_autofree gchar *path = g_build_filename(run_dir, VMSUP_QEMU_STDERR_LOG, NULL);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return NULL;
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_strstrip(lines[i]);
		if (lines[i][0] != '\0')
			return g_strdup(lines[i]);
	}
	return NULL;
}

static gint64
vmsup_accel_probe_elapsed_ms(VmsupAccelProbe *probe)
{
	return (g_get_monotonic_time() - probe->started_at) / 1000;
}

static gboolean
vmsup_accel_run_succeeded(VmsupAccelRun *run)
{
	return !run->running && run->wait_status >= 0 && WIFEXITED(run->wait_status) &&
	       WEXITSTATUS(run->wait_status) == VMSUP_ACCEL_GUEST_EXIT_OK;
}

typedef enum {
	VMSUP_ACCEL_PROGRESS_NONE,
	VMSUP_ACCEL_PROGRESS_STARTED,
	VMSUP_ACCEL_PROGRESS_DONE,
	VMSUP_ACCEL_PROGRESS_WRONG,
} VmsupAccelProgress;

/* how far a guest that has not reported got, from what it wrote on its console */
static VmsupAccelProgress
vmsup_accel_run_progress(VmsupAccelRun *run)
{
	g_autofree gchar *console = vmsup_accel_guest_read_console(run->probe->dir, run->accel);

	if (strchr(console, VMSUP_ACCEL_GUEST_MARK_BAD) != NULL)
		return VMSUP_ACCEL_PROGRESS_WRONG;
	if (strchr(console, VMSUP_ACCEL_GUEST_MARK_OK) != NULL)
		return VMSUP_ACCEL_PROGRESS_DONE;
	if (strchr(console, VMSUP_ACCEL_GUEST_MARK_START) != NULL)
		return VMSUP_ACCEL_PROGRESS_STARTED;
	return VMSUP_ACCEL_PROGRESS_NONE;
}

static const gchar *
vmsup_accel_progress_to_string(VmsupAccelProgress progress)
{
	switch (progress) {
	case VMSUP_ACCEL_PROGRESS_WRONG:
		return "had run to the end with a wrong result";
	case VMSUP_ACCEL_PROGRESS_DONE:
		return "had run to the end, but QEMU did not exit through isa-debug-exit";
	case VMSUP_ACCEL_PROGRESS_STARTED:
		return "had started but not finished";
	case VMSUP_ACCEL_PROGRESS_NONE:
	default:
		return "had not started running";
	}
}

static void
vmsup_accel_probe_maybe_return(VmsupAccelProbe *probe)
{
	g_autoptr(GTask) task = NULL;

	if (!probe->decided || probe->kvm.running || probe->tcg.running || probe->task == NULL)
		return;
	task = g_steal_pointer(&probe->task);
	vmsup_accel_remove_dir(probe->dir);
	g_task_return_boolean(task, TRUE);
}

/* the answer is known: end whatever still runs, answer once both are reaped */
static void
vmsup_accel_probe_decide(VmsupAccelProbe *probe, VmsupAccel accel, gchar *reason /* owned */)
{
	VmsupAccelRun *runs[] = {&probe->kvm, &probe->tcg};

	if (probe->decided) {
		g_free(reason);
		return;
	}
	g_debug("accel probe: %s after %" G_GINT64_FORMAT " ms: %s",
		vmsup_accel_to_string(accel),
		vmsup_accel_probe_elapsed_ms(probe),
		reason);
	probe->decided = TRUE;
	probe->accel = accel;
	probe->reason = reason;
	g_clear_handle_id(&probe->bound_source, g_source_remove);
	g_clear_handle_id(&probe->deadline_source, g_source_remove);
	if (probe->cancel_source != NULL)
		g_source_destroy(probe->cancel_source);
	g_clear_pointer(&probe->cancel_source, g_source_unref);
	for (guint i = 0; i < G_N_ELEMENTS(runs); i++) {
		if (runs[i]->running)
			g_subprocess_force_exit(runs[i]->subprocess);
	}
	vmsup_accel_probe_maybe_return(probe);
}

static gchar *
vmsup_accel_probe_usable_reason(VmsupAccelProbe *probe)
{
	g_autofree gchar *tcg = NULL;

	if (vmsup_accel_run_succeeded(&probe->tcg))
		tcg = g_strdup_printf("%" G_GINT64_FORMAT " ms", probe->tcg.elapsed_ms);
	else if (probe->tcg.running)
		tcg = g_strdup("not done yet");
	else
		tcg = g_strdup("failed");
	return g_strdup_printf("KVM usable: the test guest ran to the end under KVM with -cpu "
			       "host in %" G_GINT64_FORMAT " ms (TCG: %s)",
			       probe->kvm.elapsed_ms,
			       tcg);
}

/* KVM's QEMU is gone without the right report */
static gchar *
vmsup_accel_probe_exit_reason(VmsupAccelProbe *probe)
{
	VmsupAccelRun *run = &probe->kvm;
	g_autofree gchar *status = vmsup_qemu_describe_wait_status(run->wait_status);
	g_autofree gchar *first_line = NULL;

	if (WIFEXITED(run->wait_status) &&
	    WEXITSTATUS(run->wait_status) == VMSUP_ACCEL_GUEST_EXIT_BAD) {
		return g_strdup("KVM probe failed: the test guest ran to the end under KVM with "
				"a wrong result; using TCG");
	}
	first_line = vmsup_accel_first_log_line(run);
	if (first_line != NULL)
		return g_strdup_printf("KVM probe failed: QEMU %s: %s; using TCG",
				       status,
				       first_line);
	return g_strdup_printf("KVM probe failed: QEMU %s before the test guest reported back "
			       "(it %s); using TCG",
			       status,
			       vmsup_accel_progress_to_string(vmsup_accel_run_progress(run)));
}

/* the TCG reference reported SLACK times as long ago as it took: KVM is too slow */
static gboolean
vmsup_accel_probe_deadline_cb(gpointer user_data)
{
	VmsupAccelProbe *probe = user_data;
	VmsupAccelProgress progress = vmsup_accel_run_progress(&probe->kvm);
	gint64 elapsed = vmsup_accel_probe_elapsed_ms(probe);

	probe->deadline_source = 0;
	if (progress == VMSUP_ACCEL_PROGRESS_STARTED) {
		vmsup_accel_probe_decide(
		    probe,
		    VMSUP_ACCEL_TCG,
		    g_strdup_printf("KVM slower than TCG: the test guest ran to the end under TCG "
				    "in %" G_GINT64_FORMAT " ms, under KVM it had not finished "
				    "after %" G_GINT64_FORMAT " ms; using TCG",
				    probe->tcg.elapsed_ms,
				    elapsed));
	} else {
		vmsup_accel_probe_decide(probe,
					 VMSUP_ACCEL_TCG,
					 g_strdup_printf("KVM probe failed: after %" G_GINT64_FORMAT
							 " ms under KVM the test guest %s "
							 "(TCG ran it in %" G_GINT64_FORMAT
							 " ms); using TCG",
							 elapsed,
							 vmsup_accel_progress_to_string(progress),
							 probe->tcg.elapsed_ms));
	}
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_accel_probe_bound_cb(gpointer user_data)
{
	VmsupAccelProbe *probe = user_data;

	probe->bound_source = 0;
	vmsup_accel_probe_decide(
	    probe,
	    VMSUP_ACCEL_TCG,
	    g_strdup_printf(
		"KVM probe failed: after %d ms under KVM the test guest %s%s; using TCG",
		VMSUP_ACCEL_PROBE_BOUND_MS,
		vmsup_accel_progress_to_string(vmsup_accel_run_progress(&probe->kvm)),
		vmsup_accel_run_succeeded(&probe->tcg) ? ""
						       : " (under TCG it did not report either)"));
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_accel_probe_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	VmsupAccelProbe *probe = user_data;

	vmsup_accel_probe_decide(probe,
				 VMSUP_ACCEL_TCG,
				 g_strdup("KVM probe cancelled; using TCG"));
	return G_SOURCE_REMOVE;
}

static void
vmsup_accel_run_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupAccelRun *run = user_data;
	VmsupAccelProbe *probe = run->probe;
	g_autoptr(GError) error = NULL;

	/* no cancellable: this only fails when the wait itself breaks */
	if (!g_subprocess_wait_finish(G_SUBPROCESS(source), res, &error))
		g_debug("accel probe: waiting for QEMU: %s", error->message);
	run->running = FALSE;
	run->wait_status = g_subprocess_get_status(G_SUBPROCESS(source));
	run->elapsed_ms = vmsup_accel_probe_elapsed_ms(probe);
	g_debug("accel probe: %s QEMU ended after %" G_GINT64_FORMAT " ms, wait status 0x%x",
		vmsup_accel_to_string(run->accel),
		run->elapsed_ms,
		(guint)run->wait_status);
	if (probe->decided) {
		vmsup_accel_probe_maybe_return(probe);
		return;
	}
	if (run == &probe->kvm) {
		if (vmsup_accel_run_succeeded(run))
			vmsup_accel_probe_decide(probe,
						 VMSUP_ACCEL_KVM,
						 vmsup_accel_probe_usable_reason(probe));
		else
			vmsup_accel_probe_decide(probe,
						 VMSUP_ACCEL_TCG,
						 vmsup_accel_probe_exit_reason(probe));
		return;
	}
	/* without a TCG time KVM has only the bound, which is armed already */
	if (vmsup_accel_run_succeeded(run)) {
		gint64 left =
		    VMSUP_ACCEL_PROBE_SLACK * run->elapsed_ms - vmsup_accel_probe_elapsed_ms(probe);
		probe->deadline_source =
		    g_timeout_add((guint)MAX(left, 0), vmsup_accel_probe_deadline_cb, probe);
	}
}

static void
vmsup_accel_probe_child_setup(gpointer user_data)
{
	pid_t parent = GPOINTER_TO_INT(user_data);
	sigset_t none;

	/* the probe QEMU never outlives the daemon, even one killed mid-probe */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static gboolean
vmsup_accel_run_spawn(VmsupAccelRun *run, const gchar *qemu_binary, GError **error)
{
	VmsupAccelProbe *probe = run->probe;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_auto(GStrv) argv = NULL;
	g_autofree gchar *run_dir = NULL;
	g_autofree gchar *log_path = NULL;

	argv = vmsup_accel_guest_build_argv(qemu_binary, run->accel, probe->dir, error);
	if (argv == NULL)
		return FALSE;
	run_dir = vmsup_accel_guest_run_dir(probe->dir, run->accel);
	log_path = g_build_filename(run_dir, VMSUP_QEMU_STDERR_LOG, NULL);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_subprocess_launcher_set_stderr_file_path(launcher, log_path);
	g_subprocess_launcher_set_child_setup(launcher,
					      vmsup_accel_probe_child_setup,
					      GINT_TO_POINTER(getpid()),
					      NULL);
	run->subprocess = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv, error);
	if (run->subprocess == NULL)
		return FALSE;
	run->running = TRUE;
	g_subprocess_wait_async(run->subprocess, NULL, vmsup_accel_run_wait_cb, run);
	return TRUE;
}

void
vmsup_accel_probe_async(const gchar *qemu_binary,
			GCancellable *cancellable,
			GAsyncReadyCallback callback,
			gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(GError) error = NULL;
	VmsupAccelProbe *probe = g_new0(VmsupAccelProbe, 1);

	g_task_set_source_tag(task, vmsup_accel_probe_async);
	/* the answer is always KVM or TCG, cancelled or not */
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_task_data(task, probe, (GDestroyNotify)vmsup_accel_probe_free);
	probe->accel = VMSUP_ACCEL_TCG;
	probe->kvm = (VmsupAccelRun){.probe = probe, .accel = VMSUP_ACCEL_KVM, .wait_status = -1};
	probe->tcg = (VmsupAccelRun){.probe = probe, .accel = VMSUP_ACCEL_TCG, .wait_status = -1};

	probe->dir = g_dir_make_tmp("vmsup-accel-XXXXXX", &error);
	if (probe->dir == NULL) {
		probe->decided = TRUE;
		probe->reason = g_strdup_printf("KVM probe failed: %s; using TCG", error->message);
		g_task_return_boolean(task, TRUE);
		return;
	}
	probe->task = g_object_ref(task);
	probe->started_at = g_get_monotonic_time();
	if (!vmsup_accel_run_spawn(&probe->kvm, qemu_binary, &error)) {
		vmsup_accel_probe_decide(
		    probe,
		    VMSUP_ACCEL_TCG,
		    g_strdup_printf("KVM probe failed: %s; using TCG", error->message));
		return;
	}
	/* without the reference KVM is held to the bound alone */
	if (!vmsup_accel_run_spawn(&probe->tcg, qemu_binary, &error))
		g_debug("accel probe: no TCG reference: %s", error->message);
	probe->bound_source =
	    g_timeout_add(VMSUP_ACCEL_PROBE_BOUND_MS, vmsup_accel_probe_bound_cb, probe);
	if (cancellable != NULL) {
		probe->cancel_source = g_cancellable_source_new(cancellable);
		g_source_set_callback(probe->cancel_source,
				      G_SOURCE_FUNC(vmsup_accel_probe_cancelled_cb),
				      probe,
				      NULL);
		g_source_attach(probe->cancel_source, g_main_context_get_thread_default());
	}
}

VmsupAccel
vmsup_accel_probe_finish(GAsyncResult *res, gchar **out_reason)
{
	VmsupAccelProbe *probe;

	g_return_val_if_fail(g_task_is_valid(res, NULL), VMSUP_ACCEL_TCG);

	probe = g_task_get_task_data(G_TASK(res));
	if (out_reason != NULL)
		*out_reason = g_strdup(probe->reason);
	return probe->accel;
}
