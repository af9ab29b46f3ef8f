/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where things live, in session mode (XDG dirs) and system mode (FHS).
 */

#include "config.h"

#include <gio/gio.h>

#include "vmsup-paths.h"

gchar *
vmsup_paths_guest_dir(void)
{
	const gchar *env = g_getenv("VMSUP_DATA_DIR");
	if (env != NULL && env[0] != '\0')
		return g_build_filename(env, "guest", NULL);
	return g_build_filename(VMSUP_PKGLIBDIR, "guest", NULL);
}

static gchar *
vmsup_paths_guest_file(const gchar *basename)
{
	g_autofree gchar *dir = vmsup_paths_guest_dir();
	g_autofree gchar *path = g_build_filename(dir, basename, NULL);
	if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
		return NULL;
	return g_steal_pointer(&path);
}

gchar *
vmsup_paths_guest_kernel(void)
{
	gchar *path = vmsup_paths_guest_file("vmlinux");
	if (path != NULL)
		return path;
	return vmsup_paths_guest_file("vmlinuz");
}

gchar *
vmsup_paths_guest_initrd(void)
{
	return vmsup_paths_guest_file("initramfs.cpio.lz4");
}

gboolean
vmsup_paths_is_guest_file(const gchar *path)
{
	g_autofree gchar *kernel = vmsup_paths_guest_kernel();
	g_autofree gchar *initrd = vmsup_paths_guest_initrd();

	return path != NULL && ((kernel != NULL && g_strcmp0(path, kernel) == 0) ||
				(initrd != NULL && g_strcmp0(path, initrd) == 0));
}

gchar *
vmsup_paths_image_builder(void)
{
	const gchar *env = g_getenv("VMSUP_DATA_DIR");

	if (env != NULL && env[0] != '\0') {
		g_autofree gchar *path = g_build_filename(env, "images", "vmsup-build-image", NULL);
		if (g_file_test(path, G_FILE_TEST_IS_EXECUTABLE))
			return g_steal_pointer(&path);
	}
	return g_build_filename(VMSUP_LIBEXECDIR, "vmsup-build-image", NULL);
}

gchar *
vmsup_paths_state_dir(gboolean system)
{
	if (system)
		return g_strdup("/var/lib/vmsup");
	return g_build_filename(g_get_user_state_dir(), "vmsup", NULL);
}

gchar *
vmsup_paths_runtime_dir(gboolean system)
{
	if (system)
		return g_strdup("/run/vmsup");
	return g_build_filename(g_get_user_runtime_dir(), "vmsup", NULL);
}

gchar *
vmsup_paths_socket(gboolean system)
{
	g_autofree gchar *dir = NULL;
	const gchar *env = g_getenv("VMSUP_SOCKET");
	if (env != NULL && env[0] != '\0')
		return g_strdup(env);
	dir = vmsup_paths_runtime_dir(system);
	return g_build_filename(dir, "vmsupd.sock", NULL);
}
