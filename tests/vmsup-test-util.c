/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shared test helpers: waiting on the main loop for an event (never
 * sleeping), collecting async results, finding QEMU, private temp dirs.
 */

#include "config.h"

#include <glib/gstdio.h>

#include "vmsup-test-util.h"

/* conditions that depend on something outside the main loop are re-checked this often */
#define VMSUP_TEST_RECHECK_MS 50

guint
vmsup_test_timeout_multiplier(void)
{
	const gchar *env = g_getenv("VMSUP_TEST_TIMEOUT_MULTIPLIER");
	guint64 value = 1;

	if (env != NULL && !g_ascii_string_to_unsigned(env, 10, 1, 100, &value, NULL))
		g_error("VMSUP_TEST_TIMEOUT_MULTIPLIER='%s': expected a whole number from 1 to 100",
			env);
	return (guint)value;
}

static gboolean
vmsup_test_timed_out_cb(gpointer user_data)
{
	gboolean *timed_out = user_data;
	*timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_test_recheck_cb(gpointer user_data)
{
	return G_SOURCE_CONTINUE;
}

void
vmsup_test_wait_until_impl(gboolean (*cond)(gpointer data),
			   gpointer data,
			   guint timeout_s,
			   const gchar *file,
			   gint line,
			   const gchar *func)
{
	gboolean timed_out = FALSE;
	guint timeout_id;

	timeout_s *= vmsup_test_timeout_multiplier();
	timeout_id = g_timeout_add_seconds(timeout_s, vmsup_test_timed_out_cb, &timed_out);
	guint recheck_id = g_timeout_add(VMSUP_TEST_RECHECK_MS, vmsup_test_recheck_cb, NULL);

	while (!cond(data) && !timed_out)
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(recheck_id);
	if (!timed_out)
		g_source_remove(timeout_id);
	else if (!cond(data)) {
		g_autofree gchar *msg = g_strdup_printf("condition not met within %u s", timeout_s);
		g_assertion_message(G_LOG_DOMAIN, file, line, func, msg);
	}
}

gboolean
vmsup_test_flag_is_set(gpointer flag)
{
	return *(const gboolean *)flag;
}

gboolean
vmsup_test_pid_is_stopped(gpointer pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/stat", GPOINTER_TO_INT(pid));
	g_autofree gchar *stat = NULL;
	const gchar *end;

	if (!g_file_get_contents(path, &stat, NULL, NULL))
		return FALSE;
	end = strrchr(stat, ')');
	return end != NULL && end[1] == ' ' && end[2] == 'T';
}

void
vmsup_test_store_result_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GAsyncResult **slot = user_data;
	g_assert_null(*slot);
	*slot = g_object_ref(res);
}

static gboolean
vmsup_test_slot_is_set(gpointer slot)
{
	return *(GAsyncResult **)slot != NULL;
}

GAsyncResult *
vmsup_test_wait_result_impl(GAsyncResult **slot,
			    guint timeout_s,
			    const gchar *file,
			    gint line,
			    const gchar *func)
{
	vmsup_test_wait_until_impl(vmsup_test_slot_is_set, slot, timeout_s, file, line, func);
	return g_steal_pointer(slot);
}

void
vmsup_test_drain_main_context(void)
{
	while (g_main_context_iteration(NULL, FALSE))
		;
}

gchar *
vmsup_test_require_qemu(void)
{
	const gchar *env = g_getenv("VMSUP_QEMU");
	g_autofree gchar *path = NULL;

	if (env != NULL && env[0] != '\0')
		path = g_find_program_in_path(env);
	else
		path = g_find_program_in_path("qemu-system-x86_64");
	if (path == NULL)
		g_test_message("qemu-system-x86_64 not found (PATH or $VMSUP_QEMU); "
			       "install it (data/scripts/install-deps.sh) and run again");
	g_assert_nonnull(path);
	return g_steal_pointer(&path);
}

gchar *
vmsup_test_make_tmpdir(void)
{
	g_autoptr(GError) error = NULL;
	gchar *path = g_dir_make_tmp("vmsup-test-XXXXXX", &error);
	g_assert_no_error(error);
	return path;
}

void
vmsup_test_rm_rf(const gchar *path)
{
	g_autoptr(GDir) dir = NULL;
	const gchar *name;

	if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
		dir = g_dir_open(path, 0, NULL);
		while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
			g_autofree gchar *child = g_build_filename(path, name, NULL);
			vmsup_test_rm_rf(child);
		}
		g_rmdir(path);
		return;
	}
	g_unlink(path);
}

void
vmsup_test_run_tool(const gchar *const *argv)
{
	g_autofree gchar *err = NULL;
	g_autoptr(GError) error = NULL;
	gint status = -1;

	g_assert_true(g_spawn_sync(NULL,
				   (gchar **)argv,
				   NULL,
				   G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
				   NULL,
				   NULL,
				   NULL,
				   &err,
				   &status,
				   &error));
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("%s failed: %s", argv[0], err);
}

gchar *
vmsup_test_build_path(const gchar *first, ...)
{
	const gchar *root = g_getenv("VMSUP_BUILDDIR");
	g_autoptr(GPtrArray) parts = g_ptr_array_new();
	va_list args;

	g_assert_nonnull(root);
	g_ptr_array_add(parts, (gpointer)root);
	va_start(args, first);
	for (const gchar *p = first; p != NULL; p = va_arg(args, const gchar *))
		g_ptr_array_add(parts, (gpointer)p);
	va_end(args);
	g_ptr_array_add(parts, NULL);
	return g_build_filenamev((gchar **)parts->pdata);
}
