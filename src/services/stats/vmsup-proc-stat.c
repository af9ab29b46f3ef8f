/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Host-side CPU time and memory of a QEMU process, from /proc: the whole
 * process, its vCPU threads and its resident set.
 */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-proc-stat.h"

/* fields of /proc/<pid>/stat counted from the one after "(comm)", i.e. field 3 is index 0 */
#define VMSUP_STAT_UTIME 11
#define VMSUP_STAT_STIME 12
#define VMSUP_STAT_STARTTIME 19

/* a stat line is about 300 bytes; comm is at most 64 */
#define VMSUP_PROC_LINE_MAX 1024

struct _VmsupProcWatch {
	GPid pid;
	gchar *task_dir; /* owned: <proc_root>/<pid>/task */
	gint stat_fd;
	gint statm_fd;
	GArray *vcpu_fds;     /* of gint, owned; NULL until the vCPU threads are named */
	gdouble started_at_s; /* monotonic seconds at which the process started; < 0 unknown */
};

/* sysconf() answers these from memory: no need to keep them */
static guint64
vmsup_proc_sysconf(gint name, guint64 fallback)
{
	glong value = sysconf(name);
	return value > 0 ? (guint64)value : fallback;
}

static gdouble
vmsup_proc_now_s(void)
{
	return (gdouble)g_get_monotonic_time() / G_USEC_PER_SEC;
}

/* the process is gone (ESRCH from an open file of a reaped process) or not */
static void
vmsup_proc_set_error(GError **error, gint saved_errno, const gchar *what)
{
	g_set_error(error,
		    VMSUP_ERROR,
		    saved_errno == ENOENT || saved_errno == ESRCH ? VMSUP_ERROR_NOT_FOUND
								  : VMSUP_ERROR_INTERNAL,
		    /* TRANSLATORS: %s is a file under /proc, then an error message */
		    _("Cannot read %s: %s"),
		    what,
		    g_strerror(saved_errno));
}

static gboolean
vmsup_proc_read_fd(gint fd, gchar *buf, gsize size, const gchar *what, GError **error)
{
	gssize n;

	do
		n = pread(fd, buf, size - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		vmsup_proc_set_error(error, errno, what);
		return FALSE;
	}
	buf[n] = '\0';
	return TRUE;
}

static gint
vmsup_proc_open(const gchar *path, GError **error)
{
	gint fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		vmsup_proc_set_error(error, errno, path);
	return fd;
}

static gboolean
vmsup_proc_read_path(const gchar *path, gchar *buf, gsize size)
{
	gint fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);
	gboolean ok;

	if (fd < 0)
		return FALSE;
	ok = vmsup_proc_read_fd(fd, buf, size, path, NULL);
	g_close(fd, NULL);
	return ok;
}

/* "1234 (CPU 0/TCG) S 1 ..." -> comm (not terminated) and the fields wanted */
static gboolean
vmsup_proc_parse_stat(const gchar *text,
		      const gchar **out_comm,
		      gsize *out_comm_len,
		      guint64 *out_ticks,
		      guint64 *out_starttime)
{
	const gchar *open = strchr(text, '(');
	const gchar *close = strrchr(text, ')');
	const gchar *p;
	guint64 values[VMSUP_STAT_STARTTIME + 1] = {0};

	if (open == NULL || close == NULL || close < open)
		return FALSE;
	p = close + 1;
	for (guint i = 0; i <= VMSUP_STAT_STARTTIME; i++) {
		const gchar *field;
		gchar *end = NULL;

		while (*p == ' ')
			p++;
		if (*p == '\0' || *p == '\n')
			return FALSE;
		field = p;
		while (*p != ' ' && *p != '\0' && *p != '\n')
			p++;
		if (i != VMSUP_STAT_UTIME && i != VMSUP_STAT_STIME && i != VMSUP_STAT_STARTTIME)
			continue;
		values[i] = g_ascii_strtoull(field, &end, 10);
		if (end != p)
			return FALSE;
	}
	if (out_comm != NULL) {
		*out_comm = open + 1;
		*out_comm_len = close - open - 1;
	}
	*out_ticks = values[VMSUP_STAT_UTIME] + values[VMSUP_STAT_STIME];
	if (out_starttime != NULL)
		*out_starttime = values[VMSUP_STAT_STARTTIME];
	return TRUE;
}

/* QEMU names vCPU threads "CPU <n>/<accel>" when debug-threads is on */
static gboolean
vmsup_proc_comm_is_vcpu(const gchar *comm, gsize len)
{
	gsize i = 4;

	if (len < 6 || memcmp(comm, "CPU ", 4) != 0 || !g_ascii_isdigit(comm[i]))
		return FALSE;
	while (i < len && g_ascii_isdigit(comm[i]))
		i++;
	return i < len && comm[i] == '/';
}

static gboolean
vmsup_proc_watch_read_stat(VmsupProcWatch *watch,
			   guint64 *out_ticks,
			   guint64 *out_starttime,
			   GError **error)
{
	gchar buf[VMSUP_PROC_LINE_MAX];

	if (!vmsup_proc_read_fd(watch->stat_fd, buf, sizeof(buf), "stat", error))
		return FALSE;
	if (!vmsup_proc_parse_stat(buf, NULL, NULL, out_ticks, out_starttime)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INTERNAL,
			    _("Cannot parse the stat file of process %d"),
			    (gint)watch->pid);
		return FALSE;
	}
	return TRUE;
}

VmsupProcWatch *
vmsup_proc_watch_new(const gchar *proc_root, GPid pid, GError **error)
{
	g_autoptr(VmsupProcWatch) watch = g_new0(VmsupProcWatch, 1);
	g_autofree gchar *pid_dir = NULL;
	g_autofree gchar *stat_path = NULL;
	g_autofree gchar *statm_path = NULL;
	g_autofree gchar *uptime_path = NULL;
	gchar buf[VMSUP_PROC_LINE_MAX];
	guint64 ticks;
	guint64 starttime;

	watch->stat_fd = -1;
	watch->statm_fd = -1;
	watch->started_at_s = -1;
	if (pid <= 0) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    _("No process to sample (pid %d)"),
			    (gint)pid);
		return NULL;
	}
	if (proc_root == NULL)
		proc_root = "/proc";
	watch->pid = pid;
	pid_dir = g_strdup_printf("%s/%d", proc_root, (gint)pid);
	watch->task_dir = g_build_filename(pid_dir, "task", NULL);
	stat_path = g_build_filename(pid_dir, "stat", NULL);
	statm_path = g_build_filename(pid_dir, "statm", NULL);

	watch->stat_fd = vmsup_proc_open(stat_path, error);
	if (watch->stat_fd < 0)
		return NULL;
	watch->statm_fd = vmsup_proc_open(statm_path, error);
	if (watch->statm_fd < 0)
		return NULL;
	if (!vmsup_proc_watch_read_stat(watch, &ticks, &starttime, error))
		return NULL;

	/* seconds since boot now, minus the start in ticks since boot, once */
	uptime_path = g_build_filename(proc_root, "uptime", NULL);
	if (vmsup_proc_read_path(uptime_path, buf, sizeof(buf))) {
		gdouble boot_uptime = g_ascii_strtod(buf, NULL);
		gdouble age = boot_uptime -
			      (gdouble)starttime / (gdouble)vmsup_proc_sysconf(_SC_CLK_TCK, 100);
		watch->started_at_s = vmsup_proc_now_s() - MAX(age, 0.0);
	}
	return g_steal_pointer(&watch);
}

static void
vmsup_proc_watch_close_vcpus(VmsupProcWatch *watch)
{
	if (watch->vcpu_fds == NULL)
		return;
	for (guint i = 0; i < watch->vcpu_fds->len; i++)
		g_close(g_array_index(watch->vcpu_fds, gint, i), NULL);
	g_clear_pointer(&watch->vcpu_fds, g_array_unref);
}

void
vmsup_proc_watch_free(VmsupProcWatch *watch)
{
	if (watch == NULL)
		return;
	if (watch->stat_fd >= 0)
		g_close(watch->stat_fd, NULL);
	if (watch->statm_fd >= 0)
		g_close(watch->statm_fd, NULL);
	vmsup_proc_watch_close_vcpus(watch);
	g_free(watch->task_dir);
	g_free(watch);
}

GPid
vmsup_proc_watch_get_pid(VmsupProcWatch *watch)
{
	return watch->pid;
}

void
vmsup_proc_watch_set_vcpu_tids(VmsupProcWatch *watch, GArray *vcpu_tids)
{
	vmsup_proc_watch_close_vcpus(watch);
	watch->vcpu_fds = g_array_new(FALSE, FALSE, sizeof(gint));
	for (guint i = 0; vcpu_tids != NULL && i < vcpu_tids->len; i++) {
		g_autofree gchar *path = g_strdup_printf("%s/%d/stat",
							 watch->task_dir,
							 g_array_index(vcpu_tids, gint, i));
		/* a thread that already ended has nothing more to count */
		gint fd = vmsup_proc_open(path, NULL);
		if (fd >= 0)
			g_array_append_val(watch->vcpu_fds, fd);
	}
}

gboolean
vmsup_proc_watch_has_vcpu_tids(VmsupProcWatch *watch)
{
	return watch->vcpu_fds != NULL;
}

/* without vCPU thread ids: every thread's stat, counted by QEMU's thread names */
static void
vmsup_proc_watch_count_named_vcpus(VmsupProcWatch *watch, VmsupProcSample *out)
{
	g_autoptr(GDir) dir = g_dir_open(watch->task_dir, 0, NULL);
	const gchar *entry;

	while (dir != NULL && (entry = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(watch->task_dir, entry, "stat", NULL);
		gchar buf[VMSUP_PROC_LINE_MAX];
		const gchar *comm;
		gsize comm_len;
		guint64 ticks;

		/* a thread may end between the listing and the read */
		if (!vmsup_proc_read_path(path, buf, sizeof(buf)) ||
		    !vmsup_proc_parse_stat(buf, &comm, &comm_len, &ticks, NULL))
			continue;
		if (vmsup_proc_comm_is_vcpu(comm, comm_len)) {
			out->vcpu_ticks += ticks;
			out->n_vcpus++;
		}
	}
}

gboolean
vmsup_proc_watch_sample(VmsupProcWatch *watch, VmsupProcSample *out, GError **error)
{
	gchar buf[VMSUP_PROC_LINE_MAX];
	gdouble now = vmsup_proc_now_s();

	memset(out, 0, sizeof(*out));
	out->pid = watch->pid;
	out->sampled_at = g_get_monotonic_time();
	if (!vmsup_proc_watch_read_stat(watch, &out->ticks, NULL, error))
		return FALSE;
	/* "size resident shared ..." in pages */
	if (!vmsup_proc_read_fd(watch->statm_fd, buf, sizeof(buf), "statm", error))
		return FALSE;
	{
		const gchar *resident = strchr(buf, ' ');
		out->rss_bytes = resident != NULL ? g_ascii_strtoull(resident + 1, NULL, 10) *
							vmsup_proc_sysconf(_SC_PAGESIZE, 4096)
						  : 0;
	}
	out->uptime_s = watch->started_at_s >= 0 ? MAX(0.0, now - watch->started_at_s) : -1;

	if (watch->vcpu_fds == NULL) {
		vmsup_proc_watch_count_named_vcpus(watch, out);
		return TRUE;
	}
	for (guint i = 0; i < watch->vcpu_fds->len; i++) {
		guint64 ticks;
		/* a vCPU thread that ended takes its ticks along */
		if (!vmsup_proc_read_fd(g_array_index(watch->vcpu_fds, gint, i),
					buf,
					sizeof(buf),
					"stat",
					NULL) ||
		    !vmsup_proc_parse_stat(buf, NULL, NULL, &ticks, NULL))
			continue;
		out->vcpu_ticks += ticks;
		out->n_vcpus++;
	}
	return TRUE;
}

gdouble
vmsup_proc_sample_cpu_percent(const VmsupProcSample *older,
			      const VmsupProcSample *newer,
			      gboolean vcpu_only)
{
	gboolean vcpus;
	gdouble seconds;
	guint64 before = 0;
	guint64 after;

	if (newer == NULL)
		return -1;
	vcpus = vcpu_only && newer->n_vcpus > 0 && (older == NULL || older->n_vcpus > 0);
	after = vcpus ? newer->vcpu_ticks : newer->ticks;
	if (older == NULL) {
		/* since the process started */
		seconds = newer->uptime_s;
	} else {
		if (older->pid != newer->pid || newer->sampled_at <= older->sampled_at)
			return -1;
		seconds = (gdouble)(newer->sampled_at - older->sampled_at) / G_USEC_PER_SEC;
		before = vcpus ? older->vcpu_ticks : older->ticks;
	}
	if (seconds <= 0)
		return -1;
	/* a vCPU thread that ended takes its ticks along */
	if (after < before)
		return 0;
	return (gdouble)(after - before) / (gdouble)vmsup_proc_sysconf(_SC_CLK_TCK, 100) / seconds *
	       100.0;
}
