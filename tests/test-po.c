/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Translations stay complete: po/POTFILES.in names exactly the sources that
 * mark strings and the polkit policies, and German covers every string of
 * the CLI and of the policies.
 */

#include "config.h"

#include <gio/gio.h>
#include <string.h>

static gchar *
source_root(void)
{
	return g_test_build_filename(G_TEST_DIST, "..", NULL);
}

static void
collect_marked_files(const gchar *root, const gchar *rel, GRegex *marker, GPtrArray *out)
{
	g_autofree gchar *path = g_build_filename(root, rel, NULL);
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child_rel = g_build_filename(rel, name, NULL);
		g_autofree gchar *child = g_build_filename(root, child_rel, NULL);
		g_autofree gchar *contents = NULL;

		if (g_file_test(child, G_FILE_TEST_IS_DIR)) {
			collect_marked_files(root, child_rel, marker, out);
			continue;
		}
		if (!g_str_has_suffix(name, ".c") && !g_str_has_suffix(name, ".h"))
			continue;
		g_assert_true(g_file_get_contents(child, &contents, NULL, NULL));
		if (g_regex_match(marker, contents, 0, NULL))
			g_ptr_array_add(out, g_steal_pointer(&child_rel));
	}
}

/* a policy's descriptions and messages are always translatable (polkit's ITS rules) */
static void
collect_policies(const gchar *root, GPtrArray *out)
{
	g_autofree gchar *path = g_build_filename(root, "data", NULL);
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		if (g_str_has_suffix(name, ".policy.in"))
			g_ptr_array_add(out, g_build_filename("data", name, NULL));
	}
}

static GPtrArray *
read_potfiles(const gchar *root)
{
	g_autofree gchar *path = g_build_filename(root, "po", "POTFILES.in", NULL);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_strstrip(lines[i]);
		if (lines[i][0] == '\0' || lines[i][0] == '#')
			continue;
		g_ptr_array_add(out, g_strdup(lines[i]));
	}
	return out;
}

static gboolean
contains(GPtrArray *array, const gchar *item)
{
	return g_ptr_array_find_with_equal_func(array, item, g_str_equal, NULL);
}

static void
test_potfiles(void)
{
	g_autofree gchar *root = source_root();
	g_autoptr(GRegex) marker =
	    g_regex_new("(?<![A-Za-z0-9_])(N_|C_|NC_|_)\\(\\s*\"", G_REGEX_OPTIMIZE, 0, NULL);
	g_autoptr(GPtrArray) marked = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) listed = read_potfiles(root);
	guint missing = 0, stale = 0;

	collect_marked_files(root, "src", marker, marked);
	g_assert_cmpuint(marked->len, >, 0);
	collect_policies(root, marked);
	g_assert_true(contains(marked, "data/io.github.vmsup.policy.in"));
	for (guint i = 0; i < marked->len; i++) {
		const gchar *file = g_ptr_array_index(marked, i);
		if (!contains(listed, file)) {
			g_test_message("marks strings but is not in po/POTFILES.in: %s", file);
			missing++;
		}
	}
	for (guint i = 0; i < listed->len; i++) {
		const gchar *file = g_ptr_array_index(listed, i);
		if (!contains(marked, file)) {
			g_test_message("in po/POTFILES.in but marks no strings (or is gone): %s",
				       file);
			stale++;
		}
	}
	g_assert_cmpuint(missing, ==, 0);
	g_assert_cmpuint(stale, ==, 0);
}

static void
test_linguas(void)
{
	g_autofree gchar *root = source_root();
	g_autofree gchar *linguas = g_build_filename(root, "po", "LINGUAS", NULL);
	g_autofree gchar *de = g_build_filename(root, "po", "de.po", NULL);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) langs = NULL;

	g_assert_true(g_file_get_contents(linguas, &contents, NULL, NULL));
	langs = g_strsplit_set(g_strstrip(contents), " \n", -1);
	g_assert_true(g_strv_contains((const gchar *const *)langs, "de"));
	g_assert_true(g_file_test(de, G_FILE_TEST_IS_REGULAR));
}

/* the value of a possibly multi-line "keyword "..." / "..."" entry, still escaped */
static void
append_po_string(GString *value, const gchar *line)
{
	const gchar *start = strchr(line, '"');
	const gchar *end = strrchr(line, '"');
	if (start != NULL && end > start)
		g_string_append_len(value, start + 1, end - start - 1);
}

typedef struct {
	GString *refs;
	GString *msgid;
	GString *msgstr;
	gboolean fuzzy;
} PoEntry;

static void
po_entry_check(PoEntry *e, guint *n_cli, guint *n_untranslated)
{
	if (e->msgid->len > 0 && (strstr(e->refs->str, "src/cli/") != NULL ||
				  strstr(e->refs->str, ".policy.in") != NULL)) {
		(*n_cli)++;
		if (e->msgstr->len == 0 || e->fuzzy) {
			g_test_message("CLI or polkit string without German: \"%s\"",
				       e->msgid->str);
			(*n_untranslated)++;
		}
	}
	g_string_truncate(e->refs, 0);
	g_string_truncate(e->msgid, 0);
	g_string_truncate(e->msgstr, 0);
	e->fuzzy = FALSE;
}

static void
test_german_covers_cli(void)
{
	g_autofree gchar *root = source_root();
	g_autofree gchar *path = g_build_filename(root, "po", "de.po", NULL);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;
	PoEntry e = {g_string_new(NULL), g_string_new(NULL), g_string_new(NULL), FALSE};
	GString *current = NULL;
	guint n_cli = 0, n_untranslated = 0;

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		const gchar *line = lines[i];
		if (line[0] == '\0') {
			po_entry_check(&e, &n_cli, &n_untranslated);
			current = NULL;
		} else if (g_str_has_prefix(line, "#:")) {
			g_string_append(e.refs, line);
		} else if (g_str_has_prefix(line, "#,")) {
			e.fuzzy = e.fuzzy || strstr(line, "fuzzy") != NULL;
		} else if (g_str_has_prefix(line, "msgid ")) {
			current = e.msgid;
			append_po_string(current, line);
		} else if (g_str_has_prefix(line, "msgstr ")) {
			current = e.msgstr;
			append_po_string(current, line);
		} else if (line[0] == '"' && current != NULL) {
			append_po_string(current, line);
		}
	}
	po_entry_check(&e, &n_cli, &n_untranslated);
	g_string_free(e.refs, TRUE);
	g_string_free(e.msgid, TRUE);
	g_string_free(e.msgstr, TRUE);
	g_test_message("%u CLI and polkit strings", n_cli);
	g_assert_cmpuint(n_cli, >, 100);
	g_assert_cmpuint(n_untranslated, ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmsup/po/potfiles", test_potfiles);
	g_test_add_func("/vmsup/po/linguas", test_linguas);
	g_test_add_func("/vmsup/po/german-covers-cli", test_german_covers_cli);
	return g_test_run();
}
