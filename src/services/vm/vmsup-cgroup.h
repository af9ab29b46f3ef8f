/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
	VMSUP_CGROUP_MODE_NONE, /* no cgroup vmsupd may write: VMs run without limits */
	VMSUP_CGROUP_MODE_V2,   /* vmsupd's own (delegated) unified-hierarchy cgroup */
	VMSUP_CGROUP_MODE_V1, /* vmsupd's own cgroups in the cpu, cpuacct and memory hierarchies */
	VMSUP_CGROUP_MODE_SYSTEMD, /* one transient scope per VM, asked of systemd (PID 1) */
} VmsupCgroupMode;

const gchar *
vmsup_cgroup_mode_to_string(VmsupCgroupMode mode);

/*
 * The directories of one process's cgroups, from the text of its
 * /proc/PID/cgroup and of /proc/self/mountinfo: each NULL when the hierarchy
 * is not mounted or the process's cgroup lies outside what is mounted.
 */
typedef struct {
	gchar *unified; /* cgroup2 */
	gchar *cpu;     /* v1 controllers, each in its own hierarchy or co-mounted */
	gchar *cpuacct;
	gchar *memory;
} VmsupCgroupPaths;

VmsupCgroupPaths *
vmsup_cgroup_paths_parse(const gchar *proc_cgroup, const gchar *mountinfo);
void
vmsup_cgroup_paths_free(VmsupCgroupPaths *paths);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupCgroupPaths, vmsup_cgroup_paths_free)

/* limits of one VM's QEMU; 0 is "none" */
typedef struct {
	guint cpu_quota_percent; /* of one CPU: 150 is one and a half */
	guint memory_max_mib;
} VmsupCgroupLimits;

#define VMSUP_TYPE_CGROUP (vmsup_cgroup_get_type())
G_DECLARE_FINAL_TYPE(VmsupCgroup, vmsup_cgroup, VMSUP, CGROUP, GObject)

/*
 * Finds vmsupd's cgroups and makes them ready for VM cgroups: under cgroup
 * v2, vmsupd moves itself into the leaf <own>/vmsupd and enables cpu and
 * memory for <own>'s children. When nothing is usable the mode is NONE and
 * vmsup_cgroup_get_reason() says why. Reads the process's real files.
 *
 * A VM's cgroup is <own>/vm-NAME.INSTANCE (the scope vmsup-NAME.INSTANCE.scope):
 * @instance, the same over restarts of one vmsupd and different for
 * another, keeps apart the VMs of daemons that share a cgroup (two session
 * daemons in the root of a v1 hierarchy) and lets a restarted one find its own.
 */
VmsupCgroup *
vmsup_cgroup_new(const gchar *instance);

VmsupCgroupMode
vmsup_cgroup_get_mode(VmsupCgroup *self);
/* why limits are unavailable (mode NONE), or where VM cgroups go */
const gchar *
vmsup_cgroup_get_reason(VmsupCgroup *self);

/*
 * Puts @pid into the cgroup of VM @name (created if missing, reused if it
 * exists, as after a daemon restart) and applies @limits. Under systemd a
 * scope is started, or reused when @pid is in it.
 */
void
vmsup_cgroup_add_async(VmsupCgroup *self,
		       const gchar *name,
		       GPid pid,
		       const VmsupCgroupLimits *limits,
		       GCancellable *cancellable,
		       GAsyncReadyCallback callback,
		       gpointer user_data);
gboolean
vmsup_cgroup_add_finish(VmsupCgroup *self, GAsyncResult *res, GError **error);

/* changes the limits of VM @name, whose QEMU @pid is in its cgroup already */
void
vmsup_cgroup_set_limits_async(VmsupCgroup *self,
			      const gchar *name,
			      GPid pid,
			      const VmsupCgroupLimits *limits,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
gboolean
vmsup_cgroup_set_limits_finish(VmsupCgroup *self, GAsyncResult *res, GError **error);

/*
 * Removes the cgroup of VM @name once no process is left in it; TRUE when
 * it is gone (or never was). A scope goes by itself when its processes end.
 */
gboolean
vmsup_cgroup_remove(VmsupCgroup *self, const gchar *name, GError **error);

/*
 * The directory of VM @name's cgroup of @controller ("cpu", "cpuacct" or
 * "memory"; all one under cgroup v2); under systemd, that of the scope @pid
 * is in. NULL when there is none.
 */
gchar *
vmsup_cgroup_get_vm_dir(VmsupCgroup *self, const gchar *name, GPid pid, const gchar *controller);

G_END_DECLS
