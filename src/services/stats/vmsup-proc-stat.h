/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* one reading of a process from /proc; a plain value */
typedef struct {
	GPid pid;
	gint64 sampled_at;  /* g_get_monotonic_time() */
	guint64 ticks;      /* utime + stime of the whole process (all threads) */
	guint64 vcpu_ticks; /* the same over the vCPU threads only */
	guint n_vcpus;      /* vCPU threads read (0: none recognised) */
	guint64 rss_bytes;  /* resident set */
	gdouble uptime_s;   /* seconds since the process started */
} VmsupProcSample;

/*
 * The /proc files of one process, opened once and read again for each
 * sample: a sample costs one read per file and no allocation, and a pid the
 * kernel gives to another process later is never read by mistake (the open
 * files go on naming the process they were opened for).
 */
typedef struct _VmsupProcWatch VmsupProcWatch;

/*
 * Opens /proc/@pid/stat and statm; @proc_root is "/proc" unless a test
 * points it elsewhere (NULL: "/proc"). A process that is gone is
 * VMSUP_ERROR_NOT_FOUND.
 */
VmsupProcWatch *
vmsup_proc_watch_new(const gchar *proc_root, GPid pid, GError **error);
void
vmsup_proc_watch_free(VmsupProcWatch *watch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupProcWatch, vmsup_proc_watch_free)

GPid
vmsup_proc_watch_get_pid(VmsupProcWatch *watch);

/*
 * Names the vCPU threads (QMP query-cpus-fast "thread-id"; @vcpu_tids of
 * gint) and opens their stat files. Until then every sample lists the
 * process's threads and counts those QEMU names "CPU <n>/<accel>", which it
 * does only with -name debug-threads=on.
 */
void
vmsup_proc_watch_set_vcpu_tids(VmsupProcWatch *watch, GArray *vcpu_tids);
gboolean
vmsup_proc_watch_has_vcpu_tids(VmsupProcWatch *watch);

/* reads the process now; a process that is gone is VMSUP_ERROR_NOT_FOUND */
gboolean
vmsup_proc_watch_sample(VmsupProcWatch *watch, VmsupProcSample *out, GError **error);

/*
 * CPU use between two samples of the same process, in percent of one core
 * (a process keeping two cores busy reads 200); with @older NULL, the
 * average since the process started. @vcpu_only counts only the vCPU
 * threads (the whole process when none were found). Returns -1 when the
 * samples cannot be compared (another pid, no time between).
 */
gdouble
vmsup_proc_sample_cpu_percent(const VmsupProcSample *older,
			      const VmsupProcSample *newer,
			      gboolean vcpu_only);

G_END_DECLS
