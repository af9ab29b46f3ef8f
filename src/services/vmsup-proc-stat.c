/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Host-side CPU time and memory of a QEMU process, from /proc: the whole
 * process, each of its threads (the vCPUs among them) and its resident set.
 */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gi18n.h>
#include <string.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-proc-stat.h"

/* fields of /proc/<pid>/stat counted from the one after "(comm)", i.e. field 3 is index 0 */
#define VMSUP_STAT_UTIME 11
#define VMSUP_STAT_STIME 12
#define VMSUP_STAT_STARTTIME 19

static void
vmsup_proc_thread_clear(VmsupProcThread *thread)
{
	g_free(thread->comm);
}

void
vmsup_proc_sample_free(VmsupProcSample *sample)
{
	if (sample == NULL)
		return;
	if (sample->threads != NULL)
		g_array_unref(sample->threads);
	g_free(sample);
}

static guint64
vmsup_proc_clock_ticks(void)
{
	static guint64 hz = 0;
	if (hz == 0) {
		glong value = sysconf(_SC_CLK_TCK);
		hz = value > 0 ? (guint64)value : 100;
	}
	return hz;
}

static gboolean
vmsup_proc_read_text(const gchar *path, gchar **out_text, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	if (!g_file_get_contents(path, out_text, NULL, &error_local)) {
		/* the process is gone */
		gint code = g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
				? VMSUP_ERROR_NOT_FOUND
				: VMSUP_ERROR_INTERNAL;
		g_set_error(error,
			    VMSUP_ERROR,
			    code,
			    /* TRANSLATORS: %s is a file under /proc, then an error message */
			    _("Cannot read %s: %s"),
			    path,
			    error_local->message);
		return FALSE;
	}
	return TRUE;
}

/* "1234 (CPU 0/TCG) S 1 ..." -> comm and the fields after it */
static gboolean
vmsup_proc_parse_stat(const gchar *text,
		      gchar **out_comm,
		      guint64 *out_ticks,
		      guint64 *out_starttime)
{
	const gchar *open = strchr(text, '(');
	const gchar *close = strrchr(text, ')');
	g_autofree gchar *rest = NULL;
	g_auto(GStrv) fields = NULL;
	guint64 values[VMSUP_STAT_STARTTIME + 1] = {0};

	if (open == NULL || close == NULL || close < open)
		return FALSE;
	rest = g_strstrip(g_strdup(close + 1));
	fields = g_strsplit(rest, " ", -1);
	if (g_strv_length(fields) <= VMSUP_STAT_STARTTIME)
		return FALSE;
	for (guint i = 1; i <= VMSUP_STAT_STARTTIME; i++) {
		gchar *end = NULL;
		if (i != VMSUP_STAT_UTIME && i != VMSUP_STAT_STIME && i != VMSUP_STAT_STARTTIME)
			continue;
		values[i] = g_ascii_strtoull(fields[i], &end, 10);
		if (end == fields[i] || *end != '\0')
			return FALSE;
	}
	if (out_comm != NULL)
		*out_comm = g_strndup(open + 1, close - open - 1);
	*out_ticks = values[VMSUP_STAT_UTIME] + values[VMSUP_STAT_STIME];
	if (out_starttime != NULL)
		*out_starttime = values[VMSUP_STAT_STARTTIME];
	return TRUE;
}

/* QEMU names vCPU threads "CPU <n>/<accel>" when debug-threads is on */
static gboolean
vmsup_proc_comm_is_vcpu(const gchar *comm)
{
	const gchar *p;
	if (!g_str_has_prefix(comm, "CPU "))
		return FALSE;
	p = comm + 4;
	if (!g_ascii_isdigit(*p))
		return FALSE;
	while (g_ascii_isdigit(*p))
		p++;
	return *p == '/';
}

static gboolean
vmsup_proc_tid_listed(GArray *vcpu_tids, gint tid)
{
	if (vcpu_tids == NULL)
		return FALSE;
	for (guint i = 0; i < vcpu_tids->len; i++) {
		if (g_array_index(vcpu_tids, gint, i) == tid)
			return TRUE;
	}
	return FALSE;
}

static guint64
vmsup_proc_parse_rss(const gchar *status)
{
	g_auto(GStrv) lines = g_strsplit(status, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		guint64 kib;
		if (!g_str_has_prefix(lines[i], "VmRSS:"))
			continue;
		kib = g_ascii_strtoull(lines[i] + strlen("VmRSS:"), NULL, 10);
		return kib * 1024;
	}
	/* kernel threads and zombies have no VmRSS */
	return 0;
}

static gdouble
vmsup_proc_parse_uptime(const gchar *proc_root)
{
	g_autofree gchar *path = g_build_filename(proc_root, "uptime", NULL);
	g_autofree gchar *text = NULL;
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return -1;
	return g_ascii_strtod(text, NULL);
}

VmsupProcSample *
vmsup_proc_sample_read(const gchar *proc_root, GPid pid, GArray *vcpu_tids, GError **error)
{
	g_autoptr(VmsupProcSample) sample = g_new0(VmsupProcSample, 1);
	g_autofree gchar *pid_str = g_strdup_printf("%d", (gint)pid);
	g_autofree gchar *stat_path = NULL;
	g_autofree gchar *status_path = NULL;
	g_autofree gchar *task_path = NULL;
	g_autofree gchar *stat_text = NULL;
	g_autofree gchar *status_text = NULL;
	g_autoptr(GDir) dir = NULL;
	guint64 starttime = 0;
	gdouble boot_uptime;
	const gchar *entry;

	if (proc_root == NULL)
		proc_root = "/proc";
	if (pid <= 0) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    _("No process to sample (pid %d)"),
			    (gint)pid);
		return NULL;
	}

	sample->pid = pid;
	sample->sampled_at = g_get_monotonic_time();
	sample->threads = g_array_new(FALSE, TRUE, sizeof(VmsupProcThread));
	g_array_set_clear_func(sample->threads, (GDestroyNotify)vmsup_proc_thread_clear);

	stat_path = g_build_filename(proc_root, pid_str, "stat", NULL);
	if (!vmsup_proc_read_text(stat_path, &stat_text, error))
		return NULL;
	if (!vmsup_proc_parse_stat(stat_text, NULL, &sample->ticks, &starttime)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INTERNAL,
			    _("Cannot parse %s"),
			    stat_path);
		return NULL;
	}
	boot_uptime = vmsup_proc_parse_uptime(proc_root);
	if (boot_uptime >= 0)
		sample->uptime_s =
		    MAX(0.0, boot_uptime - (gdouble)starttime / (gdouble)vmsup_proc_clock_ticks());
	else
		sample->uptime_s = -1;

	status_path = g_build_filename(proc_root, pid_str, "status", NULL);
	if (!vmsup_proc_read_text(status_path, &status_text, error))
		return NULL;
	sample->rss_bytes = vmsup_proc_parse_rss(status_text);

	task_path = g_build_filename(proc_root, pid_str, "task", NULL);
	dir = g_dir_open(task_path, 0, NULL);
	while (dir != NULL && (entry = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(task_path, entry, "stat", NULL);
		g_autofree gchar *text = NULL;
		VmsupProcThread thread = {0};
		gchar *end = NULL;

		thread.tid = (gint)g_ascii_strtoll(entry, &end, 10);
		if (end == entry || *end != '\0')
			continue;
		/* a thread may end between the listing and the read */
		if (!g_file_get_contents(path, &text, NULL, NULL))
			continue;
		if (!vmsup_proc_parse_stat(text, &thread.comm, &thread.ticks, NULL))
			continue;
		thread.is_vcpu = vmsup_proc_tid_listed(vcpu_tids, thread.tid) ||
				 vmsup_proc_comm_is_vcpu(thread.comm);
		if (thread.is_vcpu) {
			sample->vcpu_ticks += thread.ticks;
			sample->n_vcpus++;
		}
		g_array_append_val(sample->threads, thread);
	}
	return g_steal_pointer(&sample);
}

gdouble
vmsup_proc_sample_cpu_percent(const VmsupProcSample *older,
			      const VmsupProcSample *newer,
			      gboolean vcpu_only)
{
	gdouble seconds;
	guint64 before;
	guint64 after;

	if (older == NULL || newer == NULL || older->pid != newer->pid)
		return -1;
	if (newer->sampled_at <= older->sampled_at)
		return -1;
	seconds = (gdouble)(newer->sampled_at - older->sampled_at) / G_USEC_PER_SEC;
	if (vcpu_only && older->n_vcpus > 0 && newer->n_vcpus > 0) {
		before = older->vcpu_ticks;
		after = newer->vcpu_ticks;
	} else {
		before = older->ticks;
		after = newer->ticks;
	}
	/* a vCPU thread that ended takes its ticks along */
	if (after < before)
		return 0;
	return (gdouble)(after - before) / (gdouble)vmsup_proc_clock_ticks() / seconds * 100.0;
}

typedef struct {
	GPid pid;
	GArray *vcpu_tids;       /* nullable */
	VmsupProcSample *first;  /* owned: the first of the two reads */
	GSource *timeout_source; /* owned */
	gulong cancelled_id;
	GCancellable *cancellable; /* owned, nullable */
} VmsupProcSampleData;

typedef struct {
	VmsupProcSample *sample;
	gdouble cpu_percent;
	gdouble vcpu_percent;
} VmsupProcSampleResult;

static void
vmsup_proc_sample_data_free(VmsupProcSampleData *data)
{
	if (data->timeout_source != NULL) {
		g_source_destroy(data->timeout_source);
		g_source_unref(data->timeout_source);
	}
	if (data->cancellable != NULL) {
		g_cancellable_disconnect(data->cancellable, data->cancelled_id);
		g_object_unref(data->cancellable);
	}
	if (data->vcpu_tids != NULL)
		g_array_unref(data->vcpu_tids);
	vmsup_proc_sample_free(data->first);
	g_free(data);
}

static void
vmsup_proc_sample_result_free(VmsupProcSampleResult *result)
{
	vmsup_proc_sample_free(result->sample);
	g_free(result);
}

static void
vmsup_proc_sample_complete(GTask *task, VmsupProcSample *sample, const VmsupProcSample *older)
{
	VmsupProcSampleResult *result = g_new0(VmsupProcSampleResult, 1);
	result->cpu_percent = vmsup_proc_sample_cpu_percent(older, sample, FALSE);
	result->vcpu_percent = vmsup_proc_sample_cpu_percent(older, sample, TRUE);
	result->sample = sample;
	g_task_return_pointer(task, result, (GDestroyNotify)vmsup_proc_sample_result_free);
}

static gboolean
vmsup_proc_sample_timeout_cb(gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupProcSampleData *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	VmsupProcSample *sample;

	g_clear_pointer(&data->timeout_source, g_source_unref);
	if (g_task_return_error_if_cancelled(task))
		return G_SOURCE_REMOVE;
	sample = vmsup_proc_sample_read(NULL, data->pid, data->vcpu_tids, &error);
	if (sample == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return G_SOURCE_REMOVE;
	}
	vmsup_proc_sample_complete(task, sample, data->first);
	return G_SOURCE_REMOVE;
}

static void
vmsup_proc_sample_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	GTask *task = user_data;
	VmsupProcSampleData *data = g_task_get_task_data(task);

	/* the timeout source holds the task's ref: dispatch it now to finish */
	if (data->timeout_source != NULL)
		g_source_set_ready_time(data->timeout_source, 0);
}

void
vmsup_proc_sample_async(GPid pid,
			GArray *vcpu_tids,
			const VmsupProcSample *previous,
			guint window_ms,
			GCancellable *cancellable,
			GAsyncReadyCallback callback,
			gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(GError) error = NULL;
	VmsupProcSampleData *data = g_new0(VmsupProcSampleData, 1);
	gint64 now = g_get_monotonic_time();

	g_task_set_source_tag(task, vmsup_proc_sample_async);
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_proc_sample_data_free);
	data->pid = pid;
	if (vcpu_tids != NULL)
		data->vcpu_tids = g_array_ref(vcpu_tids);

	if (previous != NULL && previous->pid == pid &&
	    now - previous->sampled_at >= VMSUP_PROC_SAMPLE_MIN_WINDOW_MS * 1000) {
		VmsupProcSample *sample = vmsup_proc_sample_read(NULL, pid, vcpu_tids, &error);
		if (sample == NULL) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
		vmsup_proc_sample_complete(task, sample, previous);
		return;
	}

	data->first = vmsup_proc_sample_read(NULL, pid, vcpu_tids, &error);
	if (data->first == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	data->timeout_source =
	    g_timeout_source_new(MAX(window_ms, VMSUP_PROC_SAMPLE_MIN_WINDOW_MS));
	g_source_set_callback(data->timeout_source,
			      vmsup_proc_sample_timeout_cb,
			      g_object_ref(task),
			      NULL);
	g_source_attach(data->timeout_source, g_main_context_get_thread_default());
	if (cancellable != NULL) {
		data->cancellable = g_object_ref(cancellable);
		data->cancelled_id =
		    g_cancellable_connect(cancellable,
					  G_CALLBACK(vmsup_proc_sample_cancelled_cb),
					  task,
					  NULL);
	}
}

VmsupProcSample *
vmsup_proc_sample_finish(GAsyncResult *res,
			 gdouble *out_cpu_percent,
			 gdouble *out_vcpu_percent,
			 GError **error)
{
	VmsupProcSampleResult *result;
	VmsupProcSample *sample;

	g_return_val_if_fail(g_task_is_valid(res, NULL), NULL);
	result = g_task_propagate_pointer(G_TASK(res), error);
	if (result == NULL)
		return NULL;
	if (out_cpu_percent != NULL)
		*out_cpu_percent = result->cpu_percent;
	if (out_vcpu_percent != NULL)
		*out_vcpu_percent = result->vcpu_percent;
	sample = g_steal_pointer(&result->sample);
	vmsup_proc_sample_result_free(result);
	return sample;
}
