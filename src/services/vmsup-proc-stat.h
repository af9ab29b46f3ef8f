/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* CPU time of one thread of the process */
typedef struct {
	gint tid;
	gchar *comm;      /* owned: "qemu-system-x86", "CPU 0/TCG", "CPU 1/KVM", ... */
	guint64 ticks;    /* utime + stime, in clock ticks */
	gboolean is_vcpu; /* listed in @vcpu_tids, or named "CPU n/ACCEL" by QEMU */
} VmsupProcThread;

/* one reading of a process from /proc; immutable once made */
typedef struct {
	GPid pid;
	gint64 sampled_at;  /* g_get_monotonic_time() */
	guint64 ticks;      /* utime + stime of the whole process (all threads) */
	guint64 vcpu_ticks; /* the same over the vCPU threads only */
	guint n_vcpus;      /* vCPU threads found (0: none recognised) */
	guint64 rss_bytes;  /* VmRSS */
	gdouble uptime_s;   /* seconds since the process started */
	GArray *threads;    /* of VmsupProcThread */
} VmsupProcSample;

void
vmsup_proc_sample_free(VmsupProcSample *sample);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupProcSample, vmsup_proc_sample_free)

/*
 * Reads /proc/@pid/stat, /proc/@pid/task/<tid>/stat and /proc/@pid/status.
 * @vcpu_tids (of gint, nullable) names the vCPU threads (QMP
 * query-cpus-fast "thread-id"); without it they are found by name, which
 * QEMU sets only with -name debug-threads=on. A process that is gone is
 * VMSUP_ERROR_NOT_FOUND. @proc_root is "/proc" unless a test points it
 * elsewhere (NULL: "/proc").
 */
VmsupProcSample *
vmsup_proc_sample_read(const gchar *proc_root, GPid pid, GArray *vcpu_tids, GError **error);

/*
 * CPU use between two samples of the same process, in percent of one core
 * (a process keeping two cores busy reads 200). @vcpu_only counts only the
 * vCPU threads (falls back to the whole process when none were found).
 * Returns -1 when the samples cannot be compared (other pid, no time between).
 */
gdouble
vmsup_proc_sample_cpu_percent(const VmsupProcSample *older,
			      const VmsupProcSample *newer,
			      gboolean vcpu_only);

/* the minimum distance between two samples for a meaningful percentage */
#define VMSUP_PROC_SAMPLE_MIN_WINDOW_MS 150

/*
 * Samples @pid and returns the sample with the CPU use since @previous (when
 * it is of the same pid and at least VMSUP_PROC_SAMPLE_MIN_WINDOW_MS old), or
 * else since a first sample taken @window_ms earlier by a timeout source; no
 * sleeping, no thread. @previous and @vcpu_tids are borrowed and may be NULL.
 */
void
vmsup_proc_sample_async(GPid pid,
			GArray *vcpu_tids,
			const VmsupProcSample *previous,
			guint window_ms,
			GCancellable *cancellable,
			GAsyncReadyCallback callback,
			gpointer user_data);
/* the new sample (full); @out_cpu_percent and @out_vcpu_percent may be NULL */
VmsupProcSample *
vmsup_proc_sample_finish(GAsyncResult *res,
			 gdouble *out_cpu_percent,
			 gdouble *out_vcpu_percent,
			 GError **error);

G_END_DECLS
