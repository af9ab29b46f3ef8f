/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* the distributions image.build makes, NULL-terminated */
const gchar *const *
vmsup_image_build_distros(void);

/*
 * Whether @distro is one of those and each of @packages (nullable) a
 * Debian package name (Debian Policy 5.6.1, no version or architecture):
 * INVALID_ARGUMENT naming the first that is not.
 */
gboolean
vmsup_image_build_check(const gchar *distro, const gchar *const *packages, GError **error);

/* the builder's stage (install, unpack, rootfs, esp, disk, convert) and the fraction done, 0..1 */
typedef void (*VmsupImageBuildProgressFunc)(const gchar *stage,
					    gdouble fraction,
					    gpointer user_data);

/*
 * Runs the builder (vmsup_paths_image_builder()) in a process group of its
 * own to write the qcow2 @output, with its temporary files (TMPDIR too)
 * under @work_dir, which must exist; the caller removes it. @progress (may
 * be NULL) is called in the caller's context, never after @callback.
 * A cancel sends the group SIGTERM, so that each tool cleans up after
 * itself, and SIGKILL if it is still there after a grace period; the task
 * completes only once the builder has exited. A package the archive lacks
 * is INVALID_ARGUMENT naming it, a tool the builder lacks
 * FAILED_PRECONDITION, a cancel VMSUP_ERROR_CANCELLED.
 */
void
vmsup_image_build_run_async(const gchar *work_dir,
			    const gchar *output,
			    const gchar *distro,
			    const gchar *const *packages,
			    VmsupImageBuildProgressFunc progress,
			    gpointer progress_data,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data);
gboolean
vmsup_image_build_run_finish(GAsyncResult *res, GError **error);

/*
 * rm -rf of a build's work directory that stays on its filesystem: what a
 * killed tool left mounted there is not descended into, and stays (logged).
 * Blocking: run it in a thread.
 */
void
vmsup_image_build_remove_work(const gchar *path);

G_END_DECLS
