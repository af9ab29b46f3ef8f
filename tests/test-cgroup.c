/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VM cgroups: where a process's cgroups are, from synthetic /proc/PID/cgroup
 * and mountinfo text of both layouts.
 */

#include "config.h"

#include "vmsup-cgroup.h"

/* paths */

/* this kind of machine: cgroup v1 per controller, a controller-less cgroup2 beside them */
static const gchar hybrid_cgroup[] = "9:name=systemd:/\n"
				     "8:pids:/\n"
				     "4:memory:/jobs/a1b2c3\n"
				     "2:cpuacct:/\n"
				     "1:cpu:/\n"
				     "0::/\n";
static const gchar hybrid_mountinfo[] =
    "23 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void
test_paths_hybrid(void)
{
	g_autoptr(VmsupCgroupPaths) paths =
	    vmsup_cgroup_paths_parse(hybrid_cgroup, hybrid_mountinfo);

	g_assert_cmpstr(paths->unified, ==, "/sys/fs/cgroup/unified");
	g_assert_cmpstr(paths->cpu, ==, "/sys/fs/cgroup/cpu");
	g_assert_cmpstr(paths->cpuacct, ==, "/sys/fs/cgroup/cpuacct");
	g_assert_cmpstr(paths->memory, ==, "/sys/fs/cgroup/memory/jobs/a1b2c3");
}

/* Debian 12 with systemd: one unified hierarchy, the service's own cgroup */
static void
test_paths_v2(void)
{
	const gchar cgroup[] = "0::/system.slice/vmsupd.service\n";
	const gchar mountinfo[] =
	    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n"
	    "26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 "
	    "cgroup2 rw,nsdelegate,memory_recursiveprot\n";
	g_autoptr(VmsupCgroupPaths) paths = vmsup_cgroup_paths_parse(cgroup, mountinfo);

	g_assert_cmpstr(paths->unified, ==, "/sys/fs/cgroup/system.slice/vmsupd.service");
	g_assert_null(paths->cpu);
	g_assert_null(paths->cpuacct);
	g_assert_null(paths->memory);
}

/* cpu and cpuacct in one hierarchy, a container's mounts of part of a hierarchy, escapes */
static void
test_paths_odd(void)
{
	const gchar cgroup[] = "5:memory:/docker/abc/inner\n"
			       "3:cpu,cpuacct:/user.slice\n"
			       "2:blkio:/elsewhere\n"
			       "0::/outside\n";
	const gchar mountinfo[] =
	    "40 31 0:40 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
	    "41 31 0:41 /docker/abc /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n"
	    "42 31 0:42 /docker/abc /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
	    "43 31 0:43 / /sys/fs/cgroup/blkio rw shared:5 master:1 - cgroup cgroup rw,blkio\n"
	    "garbage\n"
	    "44 31 0:44 / /x rw - cgroup\n";
	g_autoptr(VmsupCgroupPaths) paths = vmsup_cgroup_paths_parse(cgroup, mountinfo);
	g_autoptr(VmsupCgroupPaths) none = vmsup_cgroup_paths_parse("", "");

	g_assert_cmpstr(paths->cpu, ==, "/sys/fs/cgroup/cpu,cpuacct/user.slice");
	g_assert_cmpstr(paths->cpuacct, ==, "/sys/fs/cgroup/cpu,cpuacct/user.slice");
	g_assert_cmpstr(paths->memory, ==, "/sys/fs/cgroup/mem ory/inner");
	/* the process's cgroup lies outside what is mounted: no directory for it */
	g_assert_null(paths->unified);
	g_assert_null(none->unified);
	g_assert_null(none->cpu);
	g_assert_null(none->memory);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/vmsup/cgroup/paths/hybrid", test_paths_hybrid);
	g_test_add_func("/vmsup/cgroup/paths/v2", test_paths_v2);
	g_test_add_func("/vmsup/cgroup/paths/odd", test_paths_odd);
	return g_test_run();
}
