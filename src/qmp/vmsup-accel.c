/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Is KVM usable? /dev/kvm can open and still be unable to run a vCPU, so the
 * probe starts a paused `-accel kvm -cpu host` QEMU and asks it one QMP
 * command; anything else means TCG, with the reason.
 */

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "vmsup-accel.h"
#include "vmsup-qemu-process.h"

#define VMSUP_ACCEL_PROBE_TIMEOUT_S 5

typedef struct {
	VmsupQemuProcess *process;        /* owned */
	gchar *runtime_dir;               /* owned: a temp dir, removed at the end */
	GCancellable *cancellable;        /* owned: the caller's cancel and our timeout */
	GCancellable *caller_cancellable; /* owned */
	gulong caller_handler;
	guint timeout_source;
	gboolean timed_out;
	VmsupAccel accel;
	gchar *reason; /* owned */
} VmsupAccelProbe;

static void
vmsup_accel_probe_free(VmsupAccelProbe *probe)
{
	g_clear_handle_id(&probe->timeout_source, g_source_remove);
	if (probe->caller_cancellable != NULL)
		g_cancellable_disconnect(probe->caller_cancellable, probe->caller_handler);
	g_clear_object(&probe->caller_cancellable);
	g_clear_object(&probe->process);
	g_clear_object(&probe->cancellable);
	g_free(probe->runtime_dir);
	g_free(probe->reason);
	g_free(probe);
}

const gchar *
vmsup_accel_to_string(VmsupAccel accel)
{
	switch (accel) {
	case VMSUP_ACCEL_KVM:
		return "kvm";
	case VMSUP_ACCEL_TCG:
		return "tcg";
	case VMSUP_ACCEL_AUTO:
	default:
		return "auto";
	}
}

gboolean
vmsup_accel_from_string(const gchar *str, VmsupAccel *out_accel)
{
	VmsupAccel accel;

	if (g_strcmp0(str, "auto") == 0)
		accel = VMSUP_ACCEL_AUTO;
	else if (g_strcmp0(str, "kvm") == 0)
		accel = VMSUP_ACCEL_KVM;
	else if (g_strcmp0(str, "tcg") == 0)
		accel = VMSUP_ACCEL_TCG;
	else
		return FALSE;
	if (out_accel != NULL)
		*out_accel = accel;
	return TRUE;
}

static void
vmsup_accel_remove_dir(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		if (g_unlink(child) != 0)
			g_debug("cannot remove '%s': %s", child, g_strerror(errno));
	}
	if (g_rmdir(path) != 0)
		g_debug("cannot remove '%s': %s", path, g_strerror(errno));
}

/* QEMU's first line on stderr is the one that names the failure */
static gchar *
vmsup_accel_first_log_line(const gchar *runtime_dir)
{
	g_autofree gchar *path = g_build_filename(runtime_dir, VMSUP_QEMU_STDERR_LOG, NULL);
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

static void
vmsup_accel_probe_return(GTask *task /* owned */)
{
	g_autoptr(GTask) owned = task;
	VmsupAccelProbe *probe = g_task_get_task_data(owned);

	vmsup_accel_remove_dir(probe->runtime_dir);
	g_task_return_boolean(owned, TRUE);
}

static void
vmsup_accel_probe_stop_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;

	if (!vmsup_qemu_process_stop_finish(VMSUP_QEMU_PROCESS(source), res, &error))
		g_debug("accel probe: stopping QEMU: %s", error->message);
	vmsup_accel_probe_return(user_data);
}

/* the probe QEMU is never left behind: stop it, then answer */
static void
vmsup_accel_probe_done(GTask *task /* owned */, VmsupAccel accel, gchar *reason /* owned */)
{
	VmsupAccelProbe *probe = g_task_get_task_data(task);

	probe->accel = accel;
	probe->reason = reason;
	g_clear_handle_id(&probe->timeout_source, g_source_remove);
	if (probe->process != NULL && vmsup_qemu_process_is_running(probe->process)) {
		vmsup_qemu_process_stop_async(probe->process,
					      /* force= */ TRUE,
					      0,
					      NULL,
					      vmsup_accel_probe_stop_cb,
					      task);
		return;
	}
	vmsup_accel_probe_return(task);
}

static gchar *
vmsup_accel_probe_failure(VmsupAccelProbe *probe, const GError *error)
{
	gint wait_status = vmsup_qemu_process_get_wait_status(probe->process);
	g_autofree gchar *first_line = NULL;
	g_autofree gchar *status = NULL;

	if (probe->timed_out) {
		return g_strdup_printf("KVM probe failed: QEMU did not answer QMP within %d s; "
				       "using TCG",
				       VMSUP_ACCEL_PROBE_TIMEOUT_S);
	}
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return g_strdup("KVM probe cancelled; using TCG");
	if (wait_status < 0)
		return g_strdup_printf("KVM probe failed: %s; using TCG", error->message);
	status = vmsup_qemu_describe_wait_status(wait_status);
	first_line = vmsup_accel_first_log_line(probe->runtime_dir);
	if (first_line == NULL)
		return g_strdup_printf("KVM probe failed: QEMU %s; using TCG", status);
	return g_strdup_printf("KVM probe failed: QEMU %s: %s; using TCG", status, first_line);
}

static void
vmsup_accel_probe_query_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupAccelProbe *probe = g_task_get_task_data(task);
	g_autoptr(JsonNode) result = NULL;
	g_autoptr(GError) error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result == NULL) {
		vmsup_accel_probe_done(
		    task, VMSUP_ACCEL_TCG, vmsup_accel_probe_failure(probe, error));
		return;
	}
	vmsup_accel_probe_done(
	    task, VMSUP_ACCEL_KVM, g_strdup("KVM usable: a paused -cpu host vCPU answered QMP"));
}

static void
vmsup_accel_probe_spawn_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupAccelProbe *probe = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	if (!vmsup_qemu_process_spawn_finish(VMSUP_QEMU_PROCESS(source), res, &error)) {
		vmsup_accel_probe_done(
		    task, VMSUP_ACCEL_TCG, vmsup_accel_probe_failure(probe, error));
		return;
	}
	vmsup_qmp_client_execute_async(vmsup_qemu_process_get_qmp(probe->process),
				       "query-status",
				       NULL,
				       probe->cancellable,
				       vmsup_accel_probe_query_cb,
				       task);
}

static gboolean
vmsup_accel_probe_timeout_cb(gpointer user_data)
{
	VmsupAccelProbe *probe = user_data;

	probe->timeout_source = 0;
	probe->timed_out = TRUE;
	g_cancellable_cancel(probe->cancellable);
	return G_SOURCE_REMOVE;
}

static void
vmsup_accel_probe_caller_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	g_cancellable_cancel(G_CANCELLABLE(user_data));
}

void
vmsup_accel_probe_async(const gchar *qemu_binary,
			GCancellable *cancellable,
			GAsyncReadyCallback callback,
			gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(VmsupQemuConfig) config = vmsup_qemu_config_new("accel-probe");
	g_autoptr(GError) error = NULL;
	VmsupAccelProbe *probe = g_new0(VmsupAccelProbe, 1);

	g_task_set_source_tag(task, vmsup_accel_probe_async);
	/* the answer is always KVM or TCG, cancelled or not */
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_task_data(task, probe, (GDestroyNotify)vmsup_accel_probe_free);
	probe->accel = VMSUP_ACCEL_TCG;
	probe->cancellable = g_cancellable_new();

	probe->runtime_dir = g_dir_make_tmp("vmsup-accel-XXXXXX", &error);
	if (probe->runtime_dir == NULL) {
		probe->reason = g_strdup_printf("KVM probe failed: %s; using TCG", error->message);
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (cancellable != NULL) {
		probe->caller_cancellable = g_object_ref(cancellable);
		probe->caller_handler =
		    g_cancellable_connect(cancellable,
					  G_CALLBACK(vmsup_accel_probe_caller_cancelled_cb),
					  g_object_ref(probe->cancellable),
					  g_object_unref);
	}
	probe->timeout_source =
	    g_timeout_add_seconds(VMSUP_ACCEL_PROBE_TIMEOUT_S, vmsup_accel_probe_timeout_cb, probe);

	/* exactly what a KVM guest runs with, paused, nothing else attached */
	config->qemu_binary = g_strdup(qemu_binary);
	config->accel = VMSUP_ACCEL_KVM;
	config->memory_mib = 128;
	config->paused = TRUE;
	config->network = FALSE;
	config->agent = FALSE;
	probe->process = vmsup_qemu_process_new("accel-probe", probe->runtime_dir);
	vmsup_qemu_process_spawn_async(probe->process,
				       config,
				       probe->cancellable,
				       vmsup_accel_probe_spawn_cb,
				       g_steal_pointer(&task));
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
