/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One cgroup per VM's QEMU, with CPU and memory accounting and limits:
 * where vmsupd's own cgroups are, a VM's cgroup made, filled, limited, read
 * and removed. Under cgroup v2 or v1 vmsupd writes the files itself, below
 * its own cgroup; under systemd without delegation it asks systemd for a
 * transient scope per VM instead, as libvirt does for its machines.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "vmsup-cgroup.h"
#include "vmsup-error.h"

/* the scheduler period the quota is a share of: the kernel's default, 100 ms */
#define VMSUP_CGROUP_PERIOD_US 100000
#define VMSUP_CGROUP_VM_PREFIX "vm-"
#define VMSUP_CGROUP_LEAF "vmsupd"

struct _VmsupCgroup {
	GObject parent_instance;
	VmsupCgroupMode mode;
	gchar *instance;  /* owned: this vmsupd's part of its VM cgroups' names */
	gchar *reason;    /* owned */
	gchar *mountinfo; /* owned: systemd mode finds a scope's directories with it */
	/* where VM cgroups go: one directory under v2, one per controller under v1 */
	gchar *unified;       /* owned */
	gchar *cpu;           /* owned */
	gchar *cpuacct;       /* owned, NULL when not mounted apart from cpu or not at all */
	gchar *memory;        /* owned */
	GDBusConnection *bus; /* owned, systemd mode only */
};

G_DEFINE_FINAL_TYPE(VmsupCgroup, vmsup_cgroup, G_TYPE_OBJECT)

const gchar *
vmsup_cgroup_mode_to_string(VmsupCgroupMode mode)
{
	switch (mode) {
	case VMSUP_CGROUP_MODE_V2:
		return "v2";
	case VMSUP_CGROUP_MODE_V1:
		return "v1";
	case VMSUP_CGROUP_MODE_SYSTEMD:
		return "systemd";
	case VMSUP_CGROUP_MODE_NONE:
	default:
		return "none";
	}
}

/* parsing */

void
vmsup_cgroup_paths_free(VmsupCgroupPaths *paths)
{
	if (paths == NULL)
		return;
	g_free(paths->unified);
	g_free(paths->cpu);
	g_free(paths->cpuacct);
	g_free(paths->memory);
	g_free(paths);
}

typedef struct {
	gchar *root;  /* the hierarchy's path mounted */
	gchar *point; /* where */
} VmsupCgroupMount;

static void
vmsup_cgroup_mount_clear(VmsupCgroupMount *mount)
{
	g_clear_pointer(&mount->root, g_free);
	g_clear_pointer(&mount->point, g_free);
}

/* the controllers a v1 hierarchy holds, and the cgroup2 hierarchy as ""  */
static const gchar *const vmsup_cgroup_controllers[] = {"", "cpu", "cpuacct", "memory"};

/* the directory of cgroup @path of a hierarchy mounted as @mount, or NULL when outside it */
static gchar *
vmsup_cgroup_mount_dir(const VmsupCgroupMount *mount, const gchar *path)
{
	gsize root_len;

	if (mount->point == NULL || path == NULL || path[0] != '/')
		return NULL;
	root_len = g_strcmp0(mount->root, "/") == 0 ? 0 : strlen(mount->root);
	if (strncmp(path, mount->root, root_len) != 0 ||
	    (path[root_len] != '\0' && path[root_len] != '/'))
		return NULL;
	path += root_len;
	while (path[0] == '/')
		path++;
	return path[0] != '\0' ? g_build_filename(mount->point, path, NULL)
			       : g_strdup(mount->point);
}

VmsupCgroupPaths *
vmsup_cgroup_paths_parse(const gchar *proc_cgroup, const gchar *mountinfo)
{
	VmsupCgroupMount mounts[G_N_ELEMENTS(vmsup_cgroup_controllers)] = {{NULL, NULL}};
	const gchar *paths[G_N_ELEMENTS(vmsup_cgroup_controllers)] = {NULL};
	g_auto(GStrv) mount_lines = g_strsplit(mountinfo != NULL ? mountinfo : "", "\n", -1);
	g_auto(GStrv) cgroup_lines = g_strsplit(proc_cgroup != NULL ? proc_cgroup : "", "\n", -1);
	VmsupCgroupPaths *result = g_new0(VmsupCgroupPaths, 1);
	gchar **dirs[] = {&result->unified, &result->cpu, &result->cpuacct, &result->memory};

	/* "36 25 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory" */
	for (guint l = 0; mount_lines[l] != NULL; l++) {
		g_auto(GStrv) f = g_strsplit(mount_lines[l], " ", -1);
		guint n = g_strv_length(f);
		guint sep = 6;
		g_auto(GStrv) options = NULL;

		while (sep < n && g_strcmp0(f[sep], "-") != 0)
			sep++;
		if (n < 6 || sep + 3 >= n)
			continue;
		if (g_strcmp0(f[sep + 1], "cgroup2") == 0) {
			if (mounts[0].point == NULL) {
				mounts[0].root = g_strcompress(f[3]);
				mounts[0].point = g_strcompress(f[4]);
			}
			continue;
		}
		if (g_strcmp0(f[sep + 1], "cgroup") != 0)
			continue;
		options = g_strsplit(f[sep + 3], ",", -1);
		for (guint c = 1; c < G_N_ELEMENTS(vmsup_cgroup_controllers); c++) {
			if (mounts[c].point == NULL &&
			    g_strv_contains((const gchar *const *)options,
					    vmsup_cgroup_controllers[c])) {
				mounts[c].root = g_strcompress(f[3]);
				mounts[c].point = g_strcompress(f[4]);
			}
		}
	}

	/* "4:memory:/a/b", "2:cpu,cpuacct:/", "0::/system.slice/vmsupd.service" */
	for (guint l = 0; cgroup_lines[l] != NULL; l++) {
		gchar *line = cgroup_lines[l];
		gchar *first = strchr(line, ':');
		gchar *second = first != NULL ? strchr(first + 1, ':') : NULL;
		g_auto(GStrv) controllers = NULL;

		if (second == NULL)
			continue;
		*first = '\0';
		*second = '\0';
		if (g_strcmp0(line, "0") == 0 && first[1] == '\0') {
			paths[0] = second + 1;
			continue;
		}
		controllers = g_strsplit(first + 1, ",", -1);
		for (guint c = 1; c < G_N_ELEMENTS(vmsup_cgroup_controllers); c++) {
			if (g_strv_contains((const gchar *const *)controllers,
					    vmsup_cgroup_controllers[c]))
				paths[c] = second + 1;
		}
	}

	for (guint c = 0; c < G_N_ELEMENTS(vmsup_cgroup_controllers); c++) {
		*dirs[c] = vmsup_cgroup_mount_dir(&mounts[c], paths[c]);
		vmsup_cgroup_mount_clear(&mounts[c]);
	}
	return result;
}

/* files */

static gboolean
vmsup_cgroup_write(const gchar *dir, const gchar *file, const gchar *value, GError **error)
{
	g_autofree gchar *path = g_build_filename(dir, file, NULL);
	gint fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	gssize written;
	gint saved_errno;

	if (fd < 0) {
		saved_errno = errno;
		g_set_error(error,
			    G_IO_ERROR,
			    g_io_error_from_errno(saved_errno),
			    "cannot open '%s': %s",
			    path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	written = write(fd, value, strlen(value));
	saved_errno = errno;
	close(fd);
	if (written < 0) {
		g_set_error(error,
			    G_IO_ERROR,
			    g_io_error_from_errno(saved_errno),
			    "cannot write '%s' to '%s': %s",
			    value,
			    path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	return TRUE;
}

static gchar *
vmsup_cgroup_read(const gchar *dir, const gchar *file)
{
	g_autofree gchar *path = g_build_filename(dir, file, NULL);
	gchar *contents = NULL;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return NULL;
	return g_strstrip(contents);
}

static gint64
vmsup_cgroup_read_int(const gchar *dir, const gchar *file)
{
	g_autofree gchar *contents = vmsup_cgroup_read(dir, file);
	gint64 number;
	gchar *end = NULL;

	if (contents == NULL)
		return -1;
	number = g_ascii_strtoll(contents, &end, 10);
	if (end == contents || number < 0)
		return -1;
	return number;
}

/* whether the space-separated list in @dir/@file names both cpu and memory */
static gboolean
vmsup_cgroup_lists_cpu_memory(const gchar *dir, const gchar *file)
{
	g_autofree gchar *contents = vmsup_cgroup_read(dir, file);
	g_auto(GStrv) words = g_strsplit(contents != NULL ? contents : "", " ", -1);

	return g_strv_contains((const gchar *const *)words, "cpu") &&
	       g_strv_contains((const gchar *const *)words, "memory");
}

/* discovery */

static gboolean
vmsup_cgroup_systemd_booted(void)
{
	/* what sd_booted() checks */
	return g_file_test("/run/systemd/system", G_FILE_TEST_IS_DIR);
}

/* systemd marks what it delegates; with DelegateSubgroup=vmsupd, the unit's own cgroup */
static gboolean
vmsup_cgroup_is_delegated(const gchar *dir)
{
	const gchar *const names[] = {"trusted.delegate", "user.delegate"};
	g_autofree gchar *name = g_path_get_basename(dir);
	g_autofree gchar *parent = g_path_get_dirname(dir);
	const gchar *const dirs[] = {dir, g_strcmp0(name, VMSUP_CGROUP_LEAF) == 0 ? parent : NULL};

	for (guint d = 0; d < G_N_ELEMENTS(dirs) && dirs[d] != NULL; d++) {
		for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
			gchar value[8] = {0};
			gssize len = getxattr(dirs[d], names[i], value, sizeof(value) - 1);
			if (len > 0 && value[0] == '1')
				return TRUE;
		}
	}
	return FALSE;
}

/* whether the cgroup.procs of @dir lists any process but this one */
static gboolean
vmsup_cgroup_has_others(const gchar *dir)
{
	g_autofree gchar *procs = vmsup_cgroup_read(dir, "cgroup.procs");
	g_auto(GStrv) pids = g_strsplit(procs != NULL ? procs : "", "\n", -1);

	for (guint i = 0; pids[i] != NULL; i++) {
		if (pids[i][0] != '\0' && g_ascii_strtoll(pids[i], NULL, 10) != getpid())
			return TRUE;
	}
	return FALSE;
}

/*
 * cgroup v2: VM cgroups are siblings of the leaf vmsupd moves itself into,
 * as the "no internal processes" rule wants before cpu and memory can be
 * enabled for the children of vmsupd's cgroup
 */
static gboolean
vmsup_cgroup_prepare_v2(VmsupCgroup *self, const gchar *own, gboolean root, GError **error)
{
	g_autofree gchar *base = g_strdup(own);
	g_autofree gchar *leaf = NULL;
	g_autofree gchar *pid = g_strdup_printf("%d", (gint)getpid());
	g_autofree gchar *name = g_path_get_basename(own);

	/* moved there already, by an earlier run of this very process */
	if (g_strcmp0(name, VMSUP_CGROUP_LEAF) == 0) {
		g_free(base);
		base = g_path_get_dirname(own);
	}
	if (!vmsup_cgroup_lists_cpu_memory(base, "cgroup.controllers")) {
		g_set_error(error,
			    G_IO_ERROR,
			    G_IO_ERROR_NOT_SUPPORTED,
			    "the cgroup '%s' has no cpu and memory controllers to give",
			    base);
		return FALSE;
	}
	if (access(base, W_OK) != 0 || access(own, W_OK) != 0) {
		g_set_error(error,
			    G_IO_ERROR,
			    G_IO_ERROR_PERMISSION_DENIED,
			    "vmsupd may not write to its cgroup '%s'",
			    base);
		return FALSE;
	}
	if (!root && g_strcmp0(base, own) == 0) {
		if (vmsup_cgroup_has_others(own)) {
			g_set_error(error,
				    G_IO_ERROR,
				    G_IO_ERROR_BUSY,
				    "the cgroup '%s' holds other processes than vmsupd",
				    own);
			return FALSE;
		}
		leaf = g_build_filename(own, VMSUP_CGROUP_LEAF, NULL);
		if (g_mkdir(leaf, 0755) != 0 && errno != EEXIST) {
			gint saved_errno = errno;
			g_set_error(error,
				    G_IO_ERROR,
				    g_io_error_from_errno(saved_errno),
				    "cannot create '%s': %s",
				    leaf,
				    g_strerror(saved_errno));
			return FALSE;
		}
		if (!vmsup_cgroup_write(leaf, "cgroup.procs", pid, error))
			return FALSE;
	}
	if (!vmsup_cgroup_lists_cpu_memory(base, "cgroup.subtree_control") &&
	    !vmsup_cgroup_write(base, "cgroup.subtree_control", "+cpu +memory", error))
		return FALSE;
	self->unified = g_steal_pointer(&base);
	return TRUE;
}

static gboolean
vmsup_cgroup_prepare_v1(VmsupCgroup *self, const VmsupCgroupPaths *own, GError **error)
{
	const gchar *const dirs[] = {own->cpu, own->memory};
	const gchar *const names[] = {"cpu", "memory"};

	for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
		if (dirs[i] == NULL) {
			g_set_error(error,
				    G_IO_ERROR,
				    G_IO_ERROR_NOT_SUPPORTED,
				    "no cgroup v1 hierarchy has the %s controller",
				    names[i]);
			return FALSE;
		}
		if (access(dirs[i], W_OK) != 0) {
			gint saved_errno = errno;
			g_set_error(error,
				    G_IO_ERROR,
				    g_io_error_from_errno(saved_errno),
				    "vmsupd may not write to its cgroup '%s': %s",
				    dirs[i],
				    g_strerror(saved_errno));
			return FALSE;
		}
	}
	self->cpu = g_strdup(own->cpu);
	self->memory = g_strdup(own->memory);
	/* co-mounted with cpu, its directories are cpu's */
	if (own->cpuacct != NULL && g_strcmp0(own->cpuacct, own->cpu) != 0 &&
	    access(own->cpuacct, W_OK) == 0)
		self->cpuacct = g_strdup(own->cpuacct);
	return TRUE;
}

static void
vmsup_cgroup_discover(VmsupCgroup *self)
{
	g_autofree gchar *proc_cgroup = NULL;
	g_autoptr(VmsupCgroupPaths) own = NULL;
	g_autoptr(GError) error_v2 = NULL;
	g_autoptr(GError) error_v1 = NULL;
	g_autoptr(GError) error = NULL;
	gboolean systemd = vmsup_cgroup_systemd_booted();

	if (!g_file_get_contents("/proc/self/cgroup", &proc_cgroup, NULL, &error) ||
	    !g_file_get_contents("/proc/self/mountinfo", &self->mountinfo, NULL, &error)) {
		self->reason = g_strdup_printf("cannot read vmsupd's cgroups: %s", error->message);
		return;
	}
	own = vmsup_cgroup_paths_parse(proc_cgroup, self->mountinfo);

	if (own->unified == NULL) {
		error_v2 = g_error_new_literal(G_IO_ERROR,
					       G_IO_ERROR_NOT_FOUND,
					       "no cgroup2 hierarchy is mounted");
	} else if (systemd && !vmsup_cgroup_is_delegated(own->unified)) {
		error_v2 = g_error_new(G_IO_ERROR,
				       G_IO_ERROR_PERMISSION_DENIED,
				       "systemd did not delegate the cgroup '%s' to vmsupd",
				       own->unified);
	} else {
		g_autoptr(VmsupCgroupPaths) root =
		    vmsup_cgroup_paths_parse("0::/", self->mountinfo);
		if (vmsup_cgroup_prepare_v2(self,
					    own->unified,
					    g_strcmp0(root->unified, own->unified) == 0,
					    &error_v2)) {
			self->mode = VMSUP_CGROUP_MODE_V2;
			self->reason = g_strdup_printf("cgroup v2, below '%s'", self->unified);
			return;
		}
	}

	if (systemd) {
		/* systemd owns the tree; without delegation only it may make cgroups */
		if (geteuid() != 0) {
			self->reason =
			    g_strdup_printf("%s, and only root may ask systemd for a scope per VM",
					    error_v2->message);
			return;
		}
		self->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
		if (self->bus == NULL) {
			self->reason = g_strdup_printf("%s, and the system bus is unreachable: %s",
						       error_v2->message,
						       error->message);
			return;
		}
		self->mode = VMSUP_CGROUP_MODE_SYSTEMD;
		self->reason = g_strdup("a systemd scope per VM, in machine.slice");
		return;
	}

	if (vmsup_cgroup_prepare_v1(self, own, &error_v1)) {
		self->mode = VMSUP_CGROUP_MODE_V1;
		self->reason =
		    g_strdup_printf("cgroup v1, below '%s' and '%s'", self->cpu, self->memory);
		return;
	}
	self->reason =
	    g_strdup_printf("cgroup v2: %s; cgroup v1: %s", error_v2->message, error_v1->message);
}

VmsupCgroupMode
vmsup_cgroup_get_mode(VmsupCgroup *self)
{
	g_return_val_if_fail(VMSUP_IS_CGROUP(self), VMSUP_CGROUP_MODE_NONE);
	return self->mode;
}

const gchar *
vmsup_cgroup_get_reason(VmsupCgroup *self)
{
	g_return_val_if_fail(VMSUP_IS_CGROUP(self), NULL);
	return self->reason;
}

/* a VM's directories */

/* VM names ([a-z0-9][a-z0-9._-]*) are valid in unit and directory names as they are */
static gchar *
vmsup_cgroup_scope_name(VmsupCgroup *self, const gchar *name)
{
	return g_strdup_printf("vmsup-%s.%s.scope", name, self->instance);
}

/* the directories of the cgroups @pid is in (systemd mode) */
static VmsupCgroupPaths *
vmsup_cgroup_pid_paths(VmsupCgroup *self, GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/cgroup", (gint)pid);
	g_autofree gchar *contents = NULL;

	if (pid <= 0 || !g_file_get_contents(path, &contents, NULL, NULL))
		return NULL;
	return vmsup_cgroup_paths_parse(contents, self->mountinfo);
}

gchar *
vmsup_cgroup_get_vm_dir(VmsupCgroup *self, const gchar *name, GPid pid, const gchar *controller)
{
	g_autofree gchar *dir_name = NULL;
	const gchar *base = NULL;

	g_return_val_if_fail(VMSUP_IS_CGROUP(self), NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(controller != NULL, NULL);

	if (self->mode == VMSUP_CGROUP_MODE_SYSTEMD) {
		g_autoptr(VmsupCgroupPaths) paths = vmsup_cgroup_pid_paths(self, pid);
		g_autofree gchar *scope = vmsup_cgroup_scope_name(self, name);
		gchar *dir = NULL;
		if (paths == NULL)
			return NULL;
		if (paths->unified != NULL && g_str_has_suffix(paths->unified, scope))
			dir = g_strdup(paths->unified);
		else if (g_strcmp0(controller, "cpu") == 0)
			dir = g_strdup(paths->cpu);
		else if (g_strcmp0(controller, "cpuacct") == 0)
			dir = g_strdup(paths->cpuacct != NULL ? paths->cpuacct : paths->cpu);
		else if (g_strcmp0(controller, "memory") == 0)
			dir = g_strdup(paths->memory);
		if (dir != NULL && !g_str_has_suffix(dir, scope))
			g_clear_pointer(&dir, g_free);
		return dir;
	}
	if (self->mode == VMSUP_CGROUP_MODE_V2)
		base = self->unified;
	else if (self->mode == VMSUP_CGROUP_MODE_V1 && g_strcmp0(controller, "cpu") == 0)
		base = self->cpu;
	else if (self->mode == VMSUP_CGROUP_MODE_V1 && g_strcmp0(controller, "cpuacct") == 0)
		base = self->cpuacct != NULL ? self->cpuacct : self->cpu;
	else if (self->mode == VMSUP_CGROUP_MODE_V1 && g_strcmp0(controller, "memory") == 0)
		base = self->memory;
	if (base == NULL)
		return NULL;
	dir_name = g_strdup_printf(VMSUP_CGROUP_VM_PREFIX "%s.%s", name, self->instance);
	return g_build_filename(base, dir_name, NULL);
}

/* the distinct directories of VM @name's cgroups (files modes) */
static GPtrArray *
vmsup_cgroup_vm_dirs(VmsupCgroup *self, const gchar *name)
{
	GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);
	const gchar *const controllers[] = {"cpu", "cpuacct", "memory"};

	for (guint i = 0; i < G_N_ELEMENTS(controllers); i++) {
		gchar *dir = vmsup_cgroup_get_vm_dir(self, name, 0, controllers[i]);
		gboolean seen = FALSE;
		for (guint j = 0; dir != NULL && j < dirs->len; j++)
			seen = seen || g_strcmp0(g_ptr_array_index(dirs, j), dir) == 0;
		if (dir == NULL || seen)
			g_free(dir);
		else
			g_ptr_array_add(dirs, dir);
	}
	return dirs;
}

/* limits */

/* the memory charged to VM @name's cgroup in bytes, -1 when unknown */
static gint64
vmsup_cgroup_memory_usage(VmsupCgroup *self, const gchar *name, GPid pid)
{
	g_autofree gchar *cpu = vmsup_cgroup_get_vm_dir(self, name, pid, "cpu");
	g_autofree gchar *memory = vmsup_cgroup_get_vm_dir(self, name, pid, "memory");

	if (memory == NULL)
		return -1;
	/* one directory for both controllers: the unified hierarchy */
	return vmsup_cgroup_read_int(memory,
				     g_strcmp0(cpu, memory) == 0 ? "memory.current"
								 : "memory.usage_in_bytes");
}

/* a live cap below what QEMU holds would have the kernel reclaim, then kill it */
static gboolean
vmsup_cgroup_check_memory(VmsupCgroup *self,
			  const gchar *name,
			  GPid pid,
			  const VmsupCgroupLimits *limits,
			  GError **error)
{
	gint64 usage = vmsup_cgroup_memory_usage(self, name, pid);
	gint64 usage_mib = (usage + 1024 * 1024 - 1) / (1024 * 1024);

	if (limits->memory_max_mib == 0 || usage < 0 || usage_mib <= limits->memory_max_mib)
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("QEMU of VM '%s' uses %u MiB now: a cap of %u MiB would get it killed; "
		      "ask for at least %u MiB, or set the cap while the VM is stopped"),
		    name,
		    (guint)usage_mib,
		    limits->memory_max_mib,
		    (guint)usage_mib);
	return FALSE;
}

static gboolean
vmsup_cgroup_set_limits_files(VmsupCgroup *self,
			      const gchar *name,
			      const VmsupCgroupLimits *limits,
			      GError **error)
{
	g_autofree gchar *cpu = vmsup_cgroup_get_vm_dir(self, name, 0, "cpu");
	g_autofree gchar *memory = vmsup_cgroup_get_vm_dir(self, name, 0, "memory");
	g_autofree gchar *quota = NULL;
	g_autofree gchar *bytes = NULL;
	gboolean v2 = self->mode == VMSUP_CGROUP_MODE_V2;

	if (limits->cpu_quota_percent > 0)
		quota = g_strdup_printf("%" G_GUINT64_FORMAT,
					(guint64)limits->cpu_quota_percent *
					    VMSUP_CGROUP_PERIOD_US / 100);
	else
		quota = g_strdup(v2 ? "max" : "-1");
	if (limits->memory_max_mib > 0)
		bytes = g_strdup_printf("%" G_GUINT64_FORMAT,
					(guint64)limits->memory_max_mib * 1024 * 1024);
	else
		bytes = g_strdup(v2 ? "max" : "-1");

	if (v2) {
		g_autofree gchar *max =
		    g_strdup_printf("%s %u", quota, (guint)VMSUP_CGROUP_PERIOD_US);
		return vmsup_cgroup_write(cpu, "cpu.max", max, error) &&
		       vmsup_cgroup_write(memory, "memory.max", bytes, error);
	}
	return vmsup_cgroup_write(cpu,
				  "cpu.cfs_period_us",
				  G_STRINGIFY(VMSUP_CGROUP_PERIOD_US),
				  error) &&
	       vmsup_cgroup_write(cpu, "cpu.cfs_quota_us", quota, error) &&
	       vmsup_cgroup_write(memory, "memory.limit_in_bytes", bytes, error);
}

/* systemd: the scope's properties for @limits; "infinity" is G_MAXUINT64 */
static void
vmsup_cgroup_add_limit_properties(GVariantBuilder *props, const VmsupCgroupLimits *limits)
{
	guint64 quota = limits->cpu_quota_percent > 0
			    ? (guint64)limits->cpu_quota_percent * G_USEC_PER_SEC / 100
			    : G_MAXUINT64;
	guint64 memory = limits->memory_max_mib > 0 ? (guint64)limits->memory_max_mib * 1024 * 1024
						    : G_MAXUINT64;

	g_variant_builder_add(props, "(sv)", "CPUQuotaPerSecUSec", g_variant_new_uint64(quota));
	g_variant_builder_add(props, "(sv)", "MemoryMax", g_variant_new_uint64(memory));
}

static void
vmsup_cgroup_systemd_call_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	g_autoptr(GVariant) reply = NULL;
	GError *error = NULL;

	reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
	if (reply == NULL) {
		g_dbus_error_strip_remote_error(error);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
vmsup_cgroup_systemd_call(VmsupCgroup *self,
			  const gchar *method,
			  GVariant *params,
			  GTask *task /* owned */)
{
	g_dbus_connection_call(self->bus,
			       "org.freedesktop.systemd1",
			       "/org/freedesktop/systemd1",
			       "org.freedesktop.systemd1.Manager",
			       method,
			       params,
			       NULL,
			       G_DBUS_CALL_FLAGS_NONE,
			       -1,
			       g_task_get_cancellable(task),
			       vmsup_cgroup_systemd_call_cb,
			       task);
}

static void
vmsup_cgroup_systemd_set_limits(VmsupCgroup *self,
				const gchar *name,
				const VmsupCgroupLimits *limits,
				GTask *task /* owned */)
{
	g_autofree gchar *scope = vmsup_cgroup_scope_name(self, name);
	GVariantBuilder props;

	g_variant_builder_init(&props, G_VARIANT_TYPE("a(sv)"));
	vmsup_cgroup_add_limit_properties(&props, limits);
	vmsup_cgroup_systemd_call(self,
				  "SetUnitProperties",
				  g_variant_new("(sba(sv))", scope, TRUE, &props),
				  task);
}

/* a scope for @pid; the job runs at once, so its cgroup exists by the time QEMU resumes */
static void
vmsup_cgroup_systemd_add(VmsupCgroup *self,
			 const gchar *name,
			 GPid pid,
			 const VmsupCgroupLimits *limits,
			 GTask *task /* owned */)
{
	g_autofree gchar *scope = vmsup_cgroup_scope_name(self, name);
	g_autofree gchar *description = g_strdup_printf("vmsup VM %s", name);
	g_autofree gchar *dir = vmsup_cgroup_get_vm_dir(self, name, pid, "memory");
	GVariantBuilder props;
	guint32 pids[] = {(guint32)pid};

	/* adopted after a daemon restart: the scope is still there */
	if (dir != NULL) {
		vmsup_cgroup_systemd_set_limits(self, name, limits, task);
		return;
	}
	g_variant_builder_init(&props, G_VARIANT_TYPE("a(sv)"));
	g_variant_builder_add(&props, "(sv)", "Description", g_variant_new_string(description));
	g_variant_builder_add(&props, "(sv)", "Slice", g_variant_new_string("machine.slice"));
	g_variant_builder_add(
	    &props,
	    "(sv)",
	    "PIDs",
	    g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pids, 1, sizeof(guint32)));
	g_variant_builder_add(&props,
			      "(sv)",
			      "CollectMode",
			      g_variant_new_string("inactive-or-failed"));
	g_variant_builder_add(&props, "(sv)", "CPUAccounting", g_variant_new_boolean(TRUE));
	g_variant_builder_add(&props, "(sv)", "MemoryAccounting", g_variant_new_boolean(TRUE));
	vmsup_cgroup_add_limit_properties(&props, limits);
	vmsup_cgroup_systemd_call(self,
				  "StartTransientUnit",
				  g_variant_new("(ssa(sv)a(sa(sv)))", scope, "fail", &props, NULL),
				  task);
}

static gboolean
vmsup_cgroup_check_mode(VmsupCgroup *self, GTask *task)
{
	if (self->mode != VMSUP_CGROUP_MODE_NONE)
		return TRUE;
	g_task_return_new_error(task,
				VMSUP_ERROR,
				VMSUP_ERROR_FAILED_PRECONDITION,
				_("CPU and memory limits are unavailable: %s"),
				self->reason);
	return FALSE;
}

void
vmsup_cgroup_add_async(VmsupCgroup *self,
		       const gchar *name,
		       GPid pid,
		       const VmsupCgroupLimits *limits,
		       GCancellable *cancellable,
		       GAsyncReadyCallback callback,
		       gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GPtrArray) dirs = NULL;
	g_autofree gchar *pid_text = g_strdup_printf("%d", (gint)pid);
	GError *error = NULL;

	g_return_if_fail(VMSUP_IS_CGROUP(self));
	g_return_if_fail(name != NULL);
	g_return_if_fail(limits != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_cgroup_add_async);
	if (!vmsup_cgroup_check_mode(self, task))
		return;
	if (self->mode == VMSUP_CGROUP_MODE_SYSTEMD) {
		vmsup_cgroup_systemd_add(self, name, pid, limits, g_steal_pointer(&task));
		return;
	}
	dirs = vmsup_cgroup_vm_dirs(self, name);
	for (guint i = 0; i < dirs->len; i++) {
		const gchar *dir = g_ptr_array_index(dirs, i);
		if (g_mkdir(dir, 0755) != 0 && errno != EEXIST) {
			gint saved_errno = errno;
			g_task_return_new_error(task,
						G_IO_ERROR,
						g_io_error_from_errno(saved_errno),
						"cannot create '%s': %s",
						dir,
						g_strerror(saved_errno));
			return;
		}
		if (!vmsup_cgroup_write(dir, "cgroup.procs", pid_text, &error)) {
			g_task_return_error(task, error);
			return;
		}
	}
	if (!vmsup_cgroup_set_limits_files(self, name, limits, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

gboolean
vmsup_cgroup_add_finish(VmsupCgroup *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

void
vmsup_cgroup_set_limits_async(VmsupCgroup *self,
			      const gchar *name,
			      GPid pid,
			      const VmsupCgroupLimits *limits,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	GError *error = NULL;

	g_return_if_fail(VMSUP_IS_CGROUP(self));
	g_return_if_fail(name != NULL);
	g_return_if_fail(limits != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_cgroup_set_limits_async);
	if (!vmsup_cgroup_check_mode(self, task))
		return;
	if (!vmsup_cgroup_check_memory(self, name, pid, limits, &error)) {
		g_task_return_error(task, error);
		return;
	}
	if (self->mode == VMSUP_CGROUP_MODE_SYSTEMD) {
		vmsup_cgroup_systemd_set_limits(self, name, limits, g_steal_pointer(&task));
		return;
	}
	if (!vmsup_cgroup_set_limits_files(self, name, limits, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

gboolean
vmsup_cgroup_set_limits_finish(VmsupCgroup *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

gboolean
vmsup_cgroup_remove(VmsupCgroup *self, const gchar *name, GError **error)
{
	g_autoptr(GPtrArray) dirs = NULL;

	g_return_val_if_fail(VMSUP_IS_CGROUP(self), FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	if (self->mode == VMSUP_CGROUP_MODE_NONE || self->mode == VMSUP_CGROUP_MODE_SYSTEMD)
		return TRUE;
	dirs = vmsup_cgroup_vm_dirs(self, name);
	for (guint i = 0; i < dirs->len; i++) {
		const gchar *dir = g_ptr_array_index(dirs, i);
		if (rmdir(dir) != 0 && errno != ENOENT) {
			gint saved_errno = errno;
			g_set_error(error,
				    G_IO_ERROR,
				    g_io_error_from_errno(saved_errno),
				    "cannot remove the cgroup '%s': %s",
				    dir,
				    g_strerror(saved_errno));
			return FALSE;
		}
	}
	return TRUE;
}

static void
vmsup_cgroup_finalize(GObject *object)
{
	VmsupCgroup *self = VMSUP_CGROUP(object);

	g_free(self->instance);
	g_free(self->reason);
	g_free(self->mountinfo);
	g_free(self->unified);
	g_free(self->cpu);
	g_free(self->cpuacct);
	g_free(self->memory);
	g_clear_object(&self->bus);
	G_OBJECT_CLASS(vmsup_cgroup_parent_class)->finalize(object);
}

static void
vmsup_cgroup_class_init(VmsupCgroupClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = vmsup_cgroup_finalize;
}

static void
vmsup_cgroup_init(VmsupCgroup *self)
{
	self->mode = VMSUP_CGROUP_MODE_NONE;
}

VmsupCgroup *
vmsup_cgroup_new(const gchar *instance)
{
	VmsupCgroup *self = NULL;

	g_return_val_if_fail(instance != NULL && instance[0] != '\0', NULL);
	g_return_val_if_fail(strchr(instance, '/') == NULL, NULL);

	self = g_object_new(VMSUP_TYPE_CGROUP, NULL);
	self->instance = g_strdup(instance);
	vmsup_cgroup_discover(self);
	return self;
}
