/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Without libFuzzer: runs a harness over every file of the given corpus
 * directories, so seeds and past crashes stay regression tests.
 */

#include "config.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static guint
replay_dir(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const gchar *name;

	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
	for (guint i = 0; i < names->len; i++) {
		g_autofree gchar *file = g_build_filename(path, g_ptr_array_index(names, i), NULL);
		g_autofree gchar *contents = NULL;
		gsize length = 0;
		g_assert_true(g_file_get_contents(file, &contents, &length, NULL));
		printf("# %s\n", file);
		fflush(stdout);
		LLVMFuzzerTestOneInput((const uint8_t *)contents, length);
	}
	return names->len;
}

int
main(int argc, char **argv)
{
	guint n = 0;
	printf("1..1\n");
	for (gint i = 1; i < argc; i++)
		n += replay_dir(argv[i]);
	g_assert_cmpuint(n, >, 0);
	printf("ok 1 - %u inputs\n", n);
	return 0;
}
