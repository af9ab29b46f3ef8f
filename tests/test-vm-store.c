/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of VMService's building blocks that need no QEMU: definitions,
 * their store, operations and the per-VM lock.
 */

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-operation.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-lock.h"
#include "vmsup-vm-store.h"

/* warnings a test announces are swallowed and counted; any other stays fatal */
static const gchar *expected_warning;
static guint n_expected_warnings;

static GLogWriterOutput
test_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if ((level & G_LOG_LEVEL_WARNING) != 0 && expected_warning != NULL) {
		for (gsize i = 0; i < n_fields; i++) {
			if (g_strcmp0(fields[i].key, "MESSAGE") == 0 &&
			    strstr(fields[i].value, expected_warning) != NULL) {
				n_expected_warnings++;
				return G_LOG_WRITER_HANDLED;
			}
		}
	}
	return g_log_writer_default(level, fields, n_fields, user_data);
}

static gchar *
test_state_dir(void)
{
	return g_build_filename(g_get_user_state_dir(), "vmsup", NULL);
}

static VmsupVmDef *
test_def_full(const gchar *name)
{
	VmsupVmDef *def = vmsup_vm_def_new(name);
	guint16 ports[] = {8080, 22};

	def->cpus = 2;
	def->memory_mib = 512;
	def->kernel = g_strdup("/boot/vmlinuz");
	def->initrd = g_strdup("/boot/initrd.img");
	def->cmdline = g_strdup("console=ttyS0 quiet");
	def->image = g_strdup("/var/lib/base.qcow2");
	def->disk = g_strdup("/var/lib/vmsup/disks/x.qcow2");
	def->disk_gib = 4;
	def->forward = g_array_new(FALSE, FALSE, sizeof(guint16));
	g_array_append_vals(def->forward, ports, G_N_ELEMENTS(ports));
	def->auto_stop = FALSE;
	def->autostart = TRUE;
	def->created = 1790000000;
	return def;
}

static void
test_assert_defs_equal(const VmsupVmDef *a, const VmsupVmDef *b)
{
	g_assert_cmpstr(a->name, ==, b->name);
	g_assert_cmpuint(a->cpus, ==, b->cpus);
	g_assert_cmpuint(a->memory_mib, ==, b->memory_mib);
	g_assert_cmpstr(a->kernel, ==, b->kernel);
	g_assert_cmpstr(a->initrd, ==, b->initrd);
	g_assert_cmpstr(a->cmdline, ==, b->cmdline);
	g_assert_cmpstr(a->image, ==, b->image);
	g_assert_cmpstr(a->disk, ==, b->disk);
	g_assert_cmpuint(a->disk_gib, ==, b->disk_gib);
	g_assert_true(vmsup_vm_def_field_equal(a, b, "forward"));
	g_assert_cmpint(a->auto_stop, ==, b->auto_stop);
	g_assert_cmpint(a->autostart, ==, b->autostart);
	g_assert_cmpint(a->created, ==, b->created);
}

static void
test_store_round_trip(void)
{
	g_autofree gchar *state = test_state_dir();
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupVmDef) full = test_def_full("full");
	g_autoptr(VmsupVmDef) minimal = vmsup_vm_def_new("a-min");
	g_autoptr(GPtrArray) defs = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = vmsup_vm_store_get_path(store, "full");
	GStatBuf st;

	minimal->kernel = g_strdup("/k");
	g_assert_true(vmsup_vm_store_save(store, full, &error));
	g_assert_no_error(error);
	g_assert_true(vmsup_vm_store_save(store, minimal, &error));
	g_assert_no_error(error);

	/* private: definitions name the files a VM boots */
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);

	defs = vmsup_vm_store_load_all(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(defs->len, ==, 2);
	/* sorted by name */
	test_assert_defs_equal(g_ptr_array_index(defs, 0), minimal);
	test_assert_defs_equal(g_ptr_array_index(defs, 1), full);
	g_assert_null(((VmsupVmDef *)g_ptr_array_index(defs, 0))->forward);
}

static void
test_store_atomic(void)
{
	g_autofree gchar *state = test_state_dir();
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupVmDef) def = test_def_full("web1");
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) defs = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autofree gchar *path = vmsup_vm_store_get_path(store, "web1");
	g_autofree gchar *old_contents = NULL;
	g_autofree gchar *leftover = NULL;
	GAsyncResult *slot = NULL;
	gchar buf[8192];
	gssize n;
	gint fd;

	g_assert_true(vmsup_vm_store_save(store, def, &error));
	g_assert_no_error(error);
	g_assert_true(g_file_get_contents(path, &old_contents, NULL, NULL));

	/* a reader of the old file keeps a whole old file: the new one replaced it by rename */
	fd = g_open(path, O_RDONLY, 0);
	g_assert_cmpint(fd, >=, 0);
	def->cpus = 7;
	vmsup_vm_store_save_async(store, def, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 10);
	g_assert_true(vmsup_vm_store_save_finish(store, res, &error));
	g_assert_no_error(error);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	g_assert_cmpint(n, ==, (gssize)strlen(old_contents));
	buf[n] = '\0';
	g_assert_cmpstr(buf, ==, old_contents);

	/* the temporary file of a write cut short by a crash is ignored */
	leftover = g_strconcat(path, ".K3X9QZ", NULL);
	g_assert_true(g_file_set_contents(leftover, "{\"name\": \"web1\", \"cpu", -1, NULL));

	defs = vmsup_vm_store_load_all(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(defs->len, ==, 1);
	g_assert_cmpuint(((VmsupVmDef *)g_ptr_array_index(defs, 0))->cpus, ==, 7);
	g_assert_true(g_file_test(leftover, G_FILE_TEST_EXISTS));
}

static void
test_store_save_cancelled(void)
{
	g_autofree gchar *state = test_state_dir();
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupVmDef) def = test_def_full("c1");
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = vmsup_vm_store_get_path(store, "c1");
	GAsyncResult *slot = NULL;

	g_cancellable_cancel(cancellable);
	vmsup_vm_store_save_async(store, def, cancellable, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 10);
	g_assert_false(vmsup_vm_store_save_finish(store, res, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CANCELLED);
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

static guint
test_count_corrupt(const gchar *dir, const gchar *prefix, gchar **out_path)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;
	guint n = 0;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		if (g_str_has_prefix(name, prefix) && strstr(name, ".corrupt-") != NULL) {
			n++;
			if (out_path != NULL) {
				g_free(*out_path);
				*out_path = g_build_filename(dir, name, NULL);
			}
		}
	}
	return n;
}

static void
test_store_corrupt(void)
{
	g_autofree gchar *state = test_state_dir();
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupVmDef) good = test_def_full("good");
	g_autoptr(VmsupVmDef) other = test_def_full("other");
	g_autoptr(GPtrArray) defs = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *dir = vmsup_vm_store_get_dir(store);
	g_autofree gchar *garbage = g_build_filename(dir, "bad.json", NULL);
	g_autofree gchar *wrong_name = g_build_filename(dir, "mismatch.json", NULL);
	g_autofree gchar *bad_value = g_build_filename(dir, "badcpu.json", NULL);
	g_autofree gchar *bad_file_name = g_build_filename(dir, "Upper.json", NULL);
	g_autofree gchar *set_aside = NULL;
	g_autofree gchar *kept = NULL;
	const gchar *garbage_data = "{\"name\": \"bad\", \"cpus\": \x01\x02 not json";

	g_assert_true(vmsup_vm_store_save(store, good, &error));
	g_assert_no_error(error);
	g_assert_true(vmsup_vm_store_save(store, other, &error));
	g_assert_no_error(error);
	g_assert_true(g_file_set_contents(garbage, garbage_data, -1, NULL));
	g_assert_true(
	    g_file_set_contents(wrong_name, "{\"name\": \"good\", \"kernel\": \"/k\"}", -1, NULL));
	g_assert_true(g_file_set_contents(bad_value,
					  "{\"name\": \"badcpu\", \"cpus\": 0, \"kernel\": \"/k\"}",
					  -1,
					  NULL));
	g_assert_true(g_file_set_contents(bad_file_name,
					  "{\"name\": \"Upper\", \"kernel\": \"/k\"}",
					  -1,
					  NULL));

	expected_warning = "moved aside";
	n_expected_warnings = 0;
	defs = vmsup_vm_store_load_all(store, &error);
	expected_warning = NULL;
	g_assert_no_error(error);
	g_assert_cmpuint(n_expected_warnings, ==, 4);

	/* the others still load */
	g_assert_cmpuint(defs->len, ==, 2);
	g_assert_cmpstr(((VmsupVmDef *)g_ptr_array_index(defs, 0))->name, ==, "good");
	g_assert_cmpstr(((VmsupVmDef *)g_ptr_array_index(defs, 1))->name, ==, "other");

	/* set aside, never deleted, byte for byte */
	g_assert_false(g_file_test(garbage, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(test_count_corrupt(dir, "bad.json", &set_aside), ==, 1);
	g_assert_true(g_file_get_contents(set_aside, &kept, NULL, NULL));
	g_assert_cmpstr(kept, ==, garbage_data);
	g_assert_cmpuint(test_count_corrupt(dir, "mismatch.json", NULL), ==, 1);
	g_assert_cmpuint(test_count_corrupt(dir, "badcpu.json", NULL), ==, 1);
	g_assert_cmpuint(test_count_corrupt(dir, "Upper.json", NULL), ==, 1);

	/* a second load finds nothing more to set aside */
	g_clear_pointer(&defs, g_ptr_array_unref);
	defs = vmsup_vm_store_load_all(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(defs->len, ==, 2);
	g_assert_cmpuint(test_count_corrupt(dir, "bad.json", NULL), ==, 1);
}

static void
test_store_remove(void)
{
	g_autofree gchar *state = test_state_dir();
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupVmDef) def = test_def_full("gone");
	g_autoptr(GPtrArray) defs = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(vmsup_vm_store_save(store, def, &error));
	g_assert_true(vmsup_vm_store_remove(store, "gone", &error));
	g_assert_no_error(error);
	g_assert_true(vmsup_vm_store_remove(store, "gone", &error));
	g_assert_no_error(error);
	defs = vmsup_vm_store_load_all(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(defs->len, ==, 0);
}

static void
test_store_unwritable(void)
{
	g_autofree gchar *state = test_state_dir();
	g_autofree gchar *blocker = g_build_filename(state, "file", NULL);
	g_autofree gchar *below = g_build_filename(blocker, "state", NULL);
	g_autoptr(VmsupVmStore) store = NULL;
	g_autoptr(VmsupVmDef) def = test_def_full("x");
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(g_mkdir_with_parents(state, 0700), ==, 0);
	g_assert_true(g_file_set_contents(blocker, "", -1, NULL));
	store = vmsup_vm_store_new(below);
	g_assert_false(vmsup_vm_store_save(store, def, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "state directory"));
}

static JsonObject *
test_parse(const gchar *json)
{
	g_autoptr(GError) error = NULL;
	JsonObject *obj = vmsup_json_parse_object(json, -1, &error);
	g_assert_no_error(error);
	return obj;
}

/* last-run records */

static VmsupVmOutcome *
test_load_outcome(VmsupVmStore *store, const gchar *name)
{
	g_autoptr(GHashTable) outcomes = NULL;
	g_autoptr(GError) error = NULL;
	VmsupVmOutcome *outcome = NULL;
	g_autofree gchar *key = NULL;

	outcomes = vmsup_vm_store_load_outcomes(store, &error);
	g_assert_no_error(error);
	g_assert_nonnull(outcomes);
	g_hash_table_steal_extended(outcomes, name, (gpointer *)&key, (gpointer *)&outcome);
	return outcome;
}

static void
test_outcome_round_trip(void)
{
	g_autofree gchar *state = test_state_dir();
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupVmDef) def = test_def_full("web1");
	g_autoptr(VmsupVmOutcome) stopped =
	    vmsup_vm_outcome_new(FALSE, "stopped on request; QEMU exited with status 0", 0);
	/* killed by SIGKILL, as waitpid() reports it */
	g_autoptr(VmsupVmOutcome) crashed =
	    vmsup_vm_outcome_new(TRUE, "QEMU was killed by signal 9 (Killed)", 9);
	g_autoptr(VmsupVmOutcome) unknown =
	    vmsup_vm_outcome_new(FALSE, "QEMU exited while vmsupd was not running", -1);
	g_autoptr(VmsupVmOutcome) loaded = NULL;
	g_autoptr(GHashTable) all = NULL;
	g_autoptr(GPtrArray) defs = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) on_disk = NULL;
	g_autofree gchar *path = vmsup_vm_store_get_outcome_path(store, "web1");
	g_autofree gchar *contents = NULL;
	GAsyncResult *slot = NULL;
	GStatBuf st;

	stopped->stopped_at = 1790000100;
	stopped->pid = 4242;
	g_assert_true(vmsup_vm_store_save(store, def, &error));
	g_assert_no_error(error);
	g_assert_true(vmsup_vm_store_save_outcome(store, "web1", stopped, &error));
	g_assert_no_error(error);

	/* its own directory, private, and it reads like vm.get */
	g_assert_true(g_str_has_suffix(path, "/last-run/web1.json"));
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	on_disk = test_parse(contents);
	g_assert_cmpstr(vmsup_json_object_get_string(on_disk, "state", NULL), ==, "stopped");
	g_assert_cmpint(vmsup_json_object_get_int(on_disk, "exit_status", -1), ==, 0);
	g_assert_false(json_object_has_member(on_disk, "exit_signal"));
	g_assert_cmpstr(vmsup_json_object_get_string(on_disk, "stopped_at", NULL),
			==,
			"2026-09-21T14:15:00Z");

	loaded = test_load_outcome(store, "web1");
	g_assert_nonnull(loaded);
	g_assert_false(loaded->crashed);
	g_assert_cmpstr(loaded->reason, ==, stopped->reason);
	g_assert_cmpint(loaded->wait_status, ==, 0);
	g_assert_cmpint(loaded->stopped_at, ==, 1790000100);
	g_assert_cmpint(loaded->pid, ==, 4242);
	g_clear_pointer(&loaded, vmsup_vm_outcome_free);

	/* the definitions do not see it */
	defs = vmsup_vm_store_load_all(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(defs->len, ==, 1);
	test_assert_defs_equal(g_ptr_array_index(defs, 0), def);

	/* replaced, through the worker thread: a crash by signal */
	vmsup_vm_store_save_outcome_async(store,
					  "web1",
					  crashed,
					  NULL,
					  vmsup_test_store_result_cb,
					  &slot);
	res = vmsup_test_wait_result(&slot, 10);
	g_assert_true(vmsup_vm_store_save_outcome_finish(store, res, &error));
	g_assert_no_error(error);
	loaded = test_load_outcome(store, "web1");
	g_assert_nonnull(loaded);
	g_assert_true(loaded->crashed);
	g_assert_cmpstr(loaded->reason, ==, crashed->reason);
	g_assert_true(WIFSIGNALED(loaded->wait_status));
	g_assert_cmpint(WTERMSIG(loaded->wait_status), ==, 9);
	g_assert_cmpint(loaded->stopped_at, ==, 0);
	g_assert_cmpint(loaded->pid, ==, 0);
	g_clear_pointer(&loaded, vmsup_vm_outcome_free);

	/* an exit status that is not known stays unknown; one of 3 stays 3 */
	g_assert_true(vmsup_vm_store_save_outcome(store, "web1", unknown, &error));
	g_assert_no_error(error);
	loaded = test_load_outcome(store, "web1");
	g_assert_cmpint(loaded->wait_status, ==, -1);
	g_clear_pointer(&loaded, vmsup_vm_outcome_free);
	unknown->wait_status = 3 << 8;
	g_assert_true(vmsup_vm_store_save_outcome(store, "other", unknown, &error));
	g_assert_no_error(error);
	all = vmsup_vm_store_load_outcomes(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_hash_table_size(all), ==, 2);
	loaded = g_hash_table_lookup(all, "other");
	g_assert_true(WIFEXITED(loaded->wait_status));
	g_assert_cmpint(WEXITSTATUS(loaded->wait_status), ==, 3);
	loaded = NULL;
}

static void
test_outcome_corrupt(void)
{
	g_autofree gchar *state = test_state_dir();
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(GHashTable) outcomes = NULL;
	g_autoptr(GPtrArray) defs = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupVmOutcome) good = vmsup_vm_outcome_new(FALSE, "shut down", 0);
	g_autofree gchar *good_path = vmsup_vm_store_get_outcome_path(store, "good");
	g_autofree gchar *dir = g_path_get_dirname(good_path);
	g_autofree gchar *set_aside = NULL;
	g_autofree gchar *kept = NULL;
	const gchar *garbage = "{\"name\": \"v0\", \"state\": \x01 not json";
	/* each a VM with its definition, and a last-run record that is wrong in one way */
	const gchar *const bad[] = {
	    garbage,
	    "[1, 2]",
	    "{\"name\": \"other\", \"state\": \"stopped\"}",
	    "{\"name\": \"v3\", \"state\": \"running\"}",
	    "{\"name\": \"v4\"}",
	    "{\"name\": \"v5\", \"state\": \"crashed\", \"exit_status\": 1, \"exit_signal\": 9}",
	    "{\"name\": \"v6\", \"state\": \"stopped\", \"exit_status\": 300}",
	    "{\"name\": \"v7\", \"state\": \"stopped\", \"stopped_at\": \"yesterday\"}",
	    "{\"name\": \"v8\", \"state\": \"stopped\", \"version\": 2}",
	    "{\"name\": \"v9\", \"state\": \"stopped\", \"exit_reason\": 7}",
	};

	g_assert_true(vmsup_vm_store_save_outcome(store, "good", good, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree gchar *name = g_strdup_printf("v%u", i);
		g_autofree gchar *basename = g_strconcat(name, ".json", NULL);
		g_autofree gchar *path = g_build_filename(dir, basename, NULL);
		g_autoptr(VmsupVmDef) def = test_def_full(name);
		g_assert_true(vmsup_vm_store_save(store, def, &error));
		g_assert_no_error(error);
		g_assert_true(g_file_set_contents(path, bad[i], -1, NULL));
	}

	expected_warning = "moved aside";
	n_expected_warnings = 0;
	outcomes = vmsup_vm_store_load_outcomes(store, &error);
	expected_warning = NULL;
	g_assert_no_error(error);
	g_assert_cmpuint(n_expected_warnings, ==, G_N_ELEMENTS(bad));
	/* the good one still loads, no bad one does */
	g_assert_cmpuint(g_hash_table_size(outcomes), ==, 1);
	g_assert_true(g_hash_table_contains(outcomes, "good"));

	/* set aside byte for byte, never deleted */
	g_assert_cmpuint(test_count_corrupt(dir, "v0.json", &set_aside), ==, 1);
	g_assert_true(g_file_get_contents(set_aside, &kept, NULL, NULL));
	g_assert_cmpstr(kept, ==, garbage);
	for (guint i = 1; i < G_N_ELEMENTS(bad); i++) {
		g_autofree gchar *prefix = g_strdup_printf("v%u.json", i);
		g_assert_cmpuint(test_count_corrupt(dir, prefix, NULL), ==, 1);
	}

	/* a bad outcome costs the outcome, never the definition */
	defs = vmsup_vm_store_load_all(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(defs->len, ==, G_N_ELEMENTS(bad));
	for (guint i = 0; i < defs->len; i++) {
		g_autofree gchar *name = g_strdup_printf("v%u", i);
		g_autoptr(VmsupVmDef) def = test_def_full(name);
		test_assert_defs_equal(g_ptr_array_index(defs, i), def);
	}

	/* a second load finds nothing more to set aside */
	g_clear_pointer(&outcomes, g_hash_table_unref);
	outcomes = vmsup_vm_store_load_outcomes(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_hash_table_size(outcomes), ==, 1);
}

static void
test_outcome_remove(void)
{
	g_autofree gchar *state = test_state_dir();
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupVmDef) def = test_def_full("gone");
	g_autoptr(VmsupVmDef) kept = test_def_full("kept");
	g_autoptr(VmsupVmOutcome) outcome = vmsup_vm_outcome_new(TRUE, "QEMU exited", -1);
	g_autoptr(GHashTable) outcomes = NULL;
	g_autoptr(GPtrArray) defs = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *gone_path = vmsup_vm_store_get_outcome_path(store, "gone");
	g_autofree gchar *kept_path = vmsup_vm_store_get_outcome_path(store, "kept");

	g_assert_true(vmsup_vm_store_save(store, def, &error));
	g_assert_true(vmsup_vm_store_save(store, kept, &error));
	g_assert_true(vmsup_vm_store_save_outcome(store, "gone", outcome, &error));
	g_assert_true(vmsup_vm_store_save_outcome(store, "kept", outcome, &error));
	g_assert_no_error(error);
	g_assert_true(g_file_test(gone_path, G_FILE_TEST_IS_REGULAR));

	/* deleting a VM takes its last-run record along */
	g_assert_true(vmsup_vm_store_remove(store, "gone", &error));
	g_assert_no_error(error);
	g_assert_false(g_file_test(gone_path, G_FILE_TEST_EXISTS));
	outcomes = vmsup_vm_store_load_outcomes(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_hash_table_size(outcomes), ==, 1);
	g_assert_true(g_hash_table_contains(outcomes, "kept"));

	/* a new run drops only the record: the definition stays */
	g_assert_true(vmsup_vm_store_remove_outcome(store, "kept", &error));
	g_assert_no_error(error);
	g_assert_false(g_file_test(kept_path, G_FILE_TEST_EXISTS));
	g_assert_true(vmsup_vm_store_remove_outcome(store, "kept", &error));
	g_assert_no_error(error);
	defs = vmsup_vm_store_load_all(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(defs->len, ==, 1);
	test_assert_defs_equal(g_ptr_array_index(defs, 0), kept);
}

static void
test_def_params(void)
{
	static const gchar *const ignore[] = {"start", "wait", NULL};
	g_autoptr(JsonObject) params =
	    test_parse("{\"name\": \"web1\", \"cpus\": 2, \"memory_mib\": "
		       "128, \"kernel\": \"/k\", \"forward\": [80, 443], "
		       "\"autostart\": true, \"start\": true, \"wait\": "
		       "false, \"initrd\": null}");
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupVmDef) def =
	    vmsup_vm_def_new_from_params(params, ignore, /* caller= */ NULL, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(def->name, ==, "web1");
	g_assert_cmpuint(def->cpus, ==, 2);
	g_assert_cmpuint(def->memory_mib, ==, 128);
	g_assert_cmpstr(def->kernel, ==, "/k");
	g_assert_null(def->initrd);
	g_assert_cmpuint(def->forward->len, ==, 2);
	g_assert_cmpuint(g_array_index(def->forward, guint16, 1), ==, 443);
	g_assert_true(def->auto_stop);
	g_assert_true(def->autostart);
	g_assert_true(vmsup_vm_def_validate(def, &error));
}

/* share_dir is for in-process callers: accepted, stored, not advertised */
static void
test_def_share_dir(void)
{
	g_autoptr(JsonObject) params = test_parse("{\"name\": \"w\", \"kernel\": \"/k\", "
						  "\"share_dir\": \"/srv/ws\"}");
	g_autoptr(JsonObject) clear = test_parse("{\"share_dir\": null}");
	g_autoptr(JsonObject) bad = test_parse("{\"colour\": 1}");
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupVmDef) def =
	    vmsup_vm_def_new_from_params(params, NULL, /* caller= */ NULL, &error);
	g_autoptr(VmsupVmDef) running = NULL;
	g_autoptr(VmsupVmDef) back = NULL;
	g_autoptr(JsonObject) json = NULL;
	g_auto(GStrv) changed = NULL;
	g_auto(GStrv) pending = NULL;

	g_assert_no_error(error);
	g_assert_cmpstr(def->share_dir, ==, "/srv/ws");
	json = vmsup_vm_def_to_json(def);
	back = vmsup_vm_def_new_from_json(json, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(back->share_dir, ==, "/srv/ws");

	running = vmsup_vm_def_copy(def);
	g_assert_true(vmsup_vm_def_apply(def, clear, NULL, /* caller= */ NULL, &changed, &error));
	g_assert_no_error(error);
	g_assert_cmpstrv(changed, ((const gchar *const[]){"share_dir", NULL}));
	g_assert_null(def->share_dir);
	pending = vmsup_vm_def_pending_restart(def, running);
	g_assert_cmpstrv(pending, ((const gchar *const[]){"share_dir", NULL}));

	g_assert_false(vmsup_vm_def_apply(def, bad, NULL, /* caller= */ NULL, NULL, &error));
	g_assert_null(strstr(error->message, "share_dir"));
}

static void
test_def_params_bad(void)
{
	const struct {
		const gchar *json;
		const gchar *needle;
	} cases[] = {
	    {"{\"cpus\": 0}", "'cpus' must be between 1 and 64"},
	    {"{\"cpus\": 65}", "'cpus'"},
	    {"{\"cpus\": \"2\"}", "'cpus' must be an integer, got string"},
	    {"{\"cpus\": 1.5}", "got number"},
	    {"{\"memory_mib\": 1}", "'memory_mib'"},
	    {"{\"memory_mib\": 99999999999}", "'memory_mib'"},
	    {"{\"kernel\": \"relative/vmlinuz\"}", "absolute path"},
	    {"{\"kernel\": \"/a\\nb\"}", "control characters"},
	    {"{\"kernel\": 5}", "must be a string"},
	    {"{\"cmdline\": [\"x\"]}", "must be a string"},
	    {"{\"forward\": [80, 80]}", "twice"},
	    {"{\"forward\": [0]}", "'forward' must be between 1 and 65535"},
	    {"{\"forward\": [65536]}", "'forward'"},
	    {"{\"forward\": 80}", "array"},
	    {"{\"forward\": [\"80\"]}", "integer"},
	    {"{\"auto_stop\": 1}", "true or false"},
	    {"{\"disk_gib\": -1}", "'disk_gib'"},
	    {"{\"memory_mb\": 128}", "Unknown field 'memory_mb'"},
	};
	g_autofree gchar *long_cmdline = g_strnfill(VMSUP_VM_DEF_MAX_STRING + 1, 'x');
	g_autofree gchar *long_json = g_strdup_printf("{\"cmdline\": \"%s\"}", long_cmdline);
	g_autoptr(GString) many = g_string_new("{\"forward\": [");

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(JsonObject) params = test_parse(cases[i].json);
		g_autoptr(GError) error = NULL;
		g_autoptr(VmsupVmDef) def =
		    vmsup_vm_def_new_from_params(params, NULL, /* caller= */ NULL, &error);
		g_assert_null(def);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
		if (strstr(error->message, cases[i].needle) == NULL)
			g_error("%s: '%s' lacks '%s'",
				cases[i].json,
				error->message,
				cases[i].needle);
	}
	{
		g_autoptr(JsonObject) params = test_parse(long_json);
		g_autoptr(GError) error = NULL;
		g_assert_null(
		    vmsup_vm_def_new_from_params(params, NULL, /* caller= */ NULL, &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	}
	for (guint i = 0; i <= VMSUP_VM_DEF_MAX_FORWARDS; i++)
		g_string_append_printf(many, "%s%u", i > 0 ? "," : "", 1000 + i);
	g_string_append(many, "]}");
	{
		g_autoptr(JsonObject) params = test_parse(many->str);
		g_autoptr(GError) error = NULL;
		g_assert_null(
		    vmsup_vm_def_new_from_params(params, NULL, /* caller= */ NULL, &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, "at most"));
	}
}

static void
test_def_validate(void)
{
	g_autoptr(VmsupVmDef) def = vmsup_vm_def_new("v");
	g_autoptr(GError) error = NULL;

	g_assert_false(vmsup_vm_def_validate(def, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	def->initrd = g_strdup("/i");
	def->image = g_strdup("/img");
	g_assert_false(vmsup_vm_def_validate(def, &error));
	g_assert_nonnull(strstr(error->message, "'initrd' needs 'kernel'"));
	g_clear_error(&error);
	g_clear_pointer(&def->initrd, g_free);
	def->cmdline = g_strdup("quiet");
	g_assert_false(vmsup_vm_def_validate(def, &error));
	g_assert_nonnull(strstr(error->message, "'cmdline' needs 'kernel'"));
	g_clear_error(&error);
	g_clear_pointer(&def->cmdline, g_free);
	g_assert_true(vmsup_vm_def_validate(def, &error));
	g_assert_no_error(error);
}

static void
test_def_apply(void)
{
	g_autoptr(VmsupVmDef) def = test_def_full("s");
	g_autoptr(VmsupVmDef) before = vmsup_vm_def_copy(def);
	g_autoptr(JsonObject) good =
	    test_parse("{\"cpus\": 3, \"auto_stop\": true, \"memory_mib\": 512}");
	g_autoptr(JsonObject) half_bad = test_parse("{\"cpus\": 4, \"memory_mib\": 0}");
	g_autoptr(JsonObject) immutable = test_parse("{\"image\": \"/other\"}");
	g_autoptr(JsonObject) unknown = test_parse("{\"colour\": \"red\"}");
	g_autoptr(JsonObject) empty = test_parse("{\"name\": \"s\"}");
	static const gchar *const ignore[] = {"name", NULL};
	g_auto(GStrv) changed = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(vmsup_vm_def_apply(def, good, ignore, /* caller= */ NULL, &changed, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(def->cpus, ==, 3);
	g_assert_true(def->auto_stop);
	/* memory_mib was given but did not change */
	g_assert_cmpstrv(changed, ((const gchar *const[]){"cpus", "auto_stop", NULL}));
	g_assert_true(vmsup_vm_def_field_needs_restart("cpus"));
	g_assert_false(vmsup_vm_def_field_needs_restart("auto_stop"));

	/* all or nothing */
	vmsup_vm_def_free(before);
	before = vmsup_vm_def_copy(def);
	g_assert_false(vmsup_vm_def_apply(def, half_bad, ignore, /* caller= */ NULL, NULL, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	test_assert_defs_equal(def, before);

	g_assert_false(
	    vmsup_vm_def_apply(def, immutable, ignore, /* caller= */ NULL, NULL, &error));
	g_assert_nonnull(strstr(error->message, "cannot be changed"));
	g_clear_error(&error);
	g_assert_false(vmsup_vm_def_apply(def, unknown, ignore, /* caller= */ NULL, NULL, &error));
	g_assert_nonnull(strstr(error->message, "Unknown field 'colour'"));
	g_clear_error(&error);
	g_assert_false(vmsup_vm_def_apply(def, empty, ignore, /* caller= */ NULL, NULL, &error));
	g_assert_nonnull(strstr(error->message, "Nothing to change"));
	test_assert_defs_equal(def, before);
}

/* operations */

static void
test_op_changed_cb(VmsupOperation *op, gpointer user_data)
{
	guint *n = user_data;
	(*n)++;
}

static void
test_operation(void)
{
	g_autoptr(VmsupOperation) op = vmsup_operation_new(7, "create", "web1");
	g_autoptr(VmsupOperation) failed = vmsup_operation_new(8, "create", "web2");
	g_autoptr(VmsupOperation) cancelled = vmsup_operation_new(9, "create", "web3");
	g_autoptr(GError) error = g_error_new_literal(G_FILE_ERROR, G_FILE_ERROR_NOSPC, "full");
	g_autoptr(GError) cancel = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "c");
	g_autoptr(JsonObject) json = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;
	JsonObject *err;
	guint n_changed = 0;

	g_signal_connect(op, "changed", G_CALLBACK(test_op_changed_cb), &n_changed);
	vmsup_operation_set_stage(op, "preflight", 0.1);
	vmsup_operation_set_stage(op, "provision", 0.05);
	/* progress never goes back */
	g_assert_cmpfloat(vmsup_operation_get_progress(op), ==, 0.1);
	g_assert_cmpuint(n_changed, ==, 2);
	vmsup_operation_wait_async(op, NULL, vmsup_test_store_result_cb, &slot);
	vmsup_test_drain_main_context();
	g_assert_null(slot);
	vmsup_operation_finish(op, NULL);
	res = vmsup_test_wait_result(&slot, 5);
	g_assert_true(vmsup_operation_wait_finish(op, res, NULL));
	json = vmsup_operation_to_json(op);
	g_assert_cmpint(json_object_get_int_member(json, "id"), ==, 7);
	g_assert_cmpstr(json_object_get_string_member(json, "state"), ==, "done");
	g_assert_cmpfloat(json_object_get_double_member(json, "progress"), ==, 1.);
	g_assert_false(json_object_has_member(json, "error"));
	/* only the first finish counts */
	vmsup_operation_finish(op, error);
	g_assert_cmpint(vmsup_operation_get_state(op), ==, VMSUP_OPERATION_STATE_DONE);
	g_assert_cmpuint(n_changed, ==, 3);

	vmsup_operation_finish(failed, error);
	g_clear_pointer(&json, json_object_unref);
	json = vmsup_operation_to_json(failed);
	g_assert_cmpstr(json_object_get_string_member(json, "state"), ==, "failed");
	err = json_object_get_object_member(json, "error");
	g_assert_cmpint(json_object_get_int_member(err, "code"),
			==,
			VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_cmpstr(json_object_get_string_member(err, "kind"), ==, "failed-precondition");
	g_assert_cmpstr(json_object_get_string_member(err, "message"), ==, "full");

	vmsup_operation_finish(cancelled, cancel);
	g_assert_cmpint(vmsup_operation_get_state(cancelled), ==, VMSUP_OPERATION_STATE_CANCELLED);
	g_assert_error(vmsup_operation_get_error(cancelled), VMSUP_ERROR, VMSUP_ERROR_CANCELLED);
	g_assert_cmpint(vmsup_operation_get_finished_at(cancelled), >, 0);
}

/* the lock */

typedef struct {
	GPtrArray *order; /* of gchar*: who got the lock, in order */
	guint done;       /* users whose lock call completed */
} LockLog;

typedef struct {
	LockLog *log;
	VmsupVmLock *lock;
	gchar *name;
	gchar *who;
	gboolean hold; /* keep the lock until the test releases it */
	GError *error;
} LockUser;

static void
test_lock_user_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	LockUser *user = user_data;
	if (!vmsup_vm_lock_lock_finish(res, &user->error)) {
		user->log->done++;
		return;
	}
	g_ptr_array_add(user->log->order, g_strdup(user->who));
	/* a holder is alone on its name */
	g_assert_true(vmsup_vm_lock_is_locked(user->lock, user->name));
	if (!user->hold)
		vmsup_vm_lock_unlock(user->lock, user->name);
	user->log->done++;
}

static LockUser *
test_lock_user(LockLog *log, VmsupVmLock *lock, const gchar *name, const gchar *who)
{
	LockUser *user = g_new0(LockUser, 1);
	user->log = log;
	user->lock = lock;
	user->name = g_strdup(name);
	user->who = g_strdup(who);
	return user;
}

static void
test_lock_user_free(LockUser *user)
{
	g_clear_error(&user->error);
	g_free(user->name);
	g_free(user->who);
	g_free(user);
}

static gboolean
test_lock_n_done(LockLog *log, guint n)
{
	return log->done >= n;
}

static gboolean
test_lock_two_done(gpointer data)
{
	return test_lock_n_done(data, 2);
}

static gboolean
test_lock_three_done(gpointer data)
{
	return test_lock_n_done(data, 3);
}

static gboolean
test_lock_five_done(gpointer data)
{
	return test_lock_n_done(data, 5);
}

static void
test_lock_fifo(void)
{
	g_autoptr(VmsupVmLock) lock = vmsup_vm_lock_new();
	g_autoptr(GPtrArray) users =
	    g_ptr_array_new_with_free_func((GDestroyNotify)test_lock_user_free);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GPtrArray) order = g_ptr_array_new_with_free_func(g_free);
	LockLog log = {order, 0};
	LockUser *first;
	LockUser *quitter;
	LockUser *other;

	first = test_lock_user(&log, lock, "a", "a1");
	first->hold = TRUE;
	g_ptr_array_add(users, first);
	vmsup_vm_lock_lock_async(lock, "a", NULL, test_lock_user_cb, first);
	for (guint i = 2; i <= 4; i++) {
		g_autofree gchar *who = g_strdup_printf("a%u", i);
		LockUser *user = test_lock_user(&log, lock, "a", who);
		g_ptr_array_add(users, user);
		vmsup_vm_lock_lock_async(lock,
					 "a",
					 i == 3 ? cancellable : NULL,
					 test_lock_user_cb,
					 user);
	}
	quitter = g_ptr_array_index(users, 2);
	/* another VM is not held up by "a" */
	other = test_lock_user(&log, lock, "b", "b1");
	g_ptr_array_add(users, other);
	vmsup_vm_lock_lock_async(lock, "b", NULL, test_lock_user_cb, other);

	vmsup_test_wait_until(test_lock_two_done, &log, 5);
	g_assert_cmpuint(order->len, ==, 2);
	g_assert_cmpstr(g_ptr_array_index(order, 0), ==, "a1");
	g_assert_cmpstr(g_ptr_array_index(order, 1), ==, "b1");
	g_assert_true(vmsup_vm_lock_is_locked(lock, "a"));
	g_assert_false(vmsup_vm_lock_is_locked(lock, "b"));
	g_assert_cmpuint(vmsup_vm_lock_get_n_waiters(lock, "a"), ==, 3);

	/* a waiter that gives up leaves the queue, the holder keeps the lock */
	g_cancellable_cancel(cancellable);
	vmsup_test_wait_until(test_lock_three_done, &log, 5);
	g_assert_error(quitter->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_cmpuint(vmsup_vm_lock_get_n_waiters(lock, "a"), ==, 2);
	g_assert_true(vmsup_vm_lock_is_locked(lock, "a"));

	/* the grant comes in a later main-loop iteration, in FIFO order */
	vmsup_vm_lock_unlock(lock, "a");
	g_assert_cmpuint(order->len, ==, 2);
	g_assert_true(vmsup_vm_lock_is_locked(lock, "a"));
	vmsup_test_wait_until(test_lock_five_done, &log, 5);
	g_assert_cmpuint(order->len, ==, 4);
	g_assert_cmpstr(g_ptr_array_index(order, 2), ==, "a2");
	g_assert_cmpstr(g_ptr_array_index(order, 3), ==, "a4");
	g_assert_false(vmsup_vm_lock_is_locked(lock, "a"));
	g_assert_cmpuint(vmsup_vm_lock_get_n_waiters(lock, "a"), ==, 0);
}

/* the owner is stored with the definition; a definition from before owners is root's */
static void
test_store_owner(void)
{
	g_autofree gchar *state = test_state_dir();
	g_autoptr(VmsupVmStore) store = vmsup_vm_store_new(state);
	g_autoptr(VmsupVmDef) def = vmsup_vm_def_new("owned");
	g_autoptr(VmsupVmDef) fresh = vmsup_vm_def_new("fresh");
	g_autoptr(GPtrArray) defs = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *legacy =
	    g_build_filename(vmsup_vm_store_get_dir(store), "old.json", NULL);
	g_autofree gchar *bad = g_build_filename(vmsup_vm_store_get_dir(store), "bad.json", NULL);
	g_autoptr(JsonObject) json = NULL;
	g_autoptr(JsonObject) owner_param = test_parse("{\"name\": \"o\", \"kernel\": \"/k\", "
						       "\"owner_uid\": 5}");
	g_autoptr(VmsupVmDef) from_params = NULL;

	/* a new definition is the daemon's own user's until a caller is given */
	g_assert_cmpuint(fresh->owner_uid, ==, (guint32)geteuid());
	def->kernel = g_strdup("/k");
	def->owner_uid = 4242;
	json = vmsup_vm_def_to_json(def);
	g_assert_cmpint(json_object_get_int_member(json, "owner_uid"), ==, 4242);
	g_assert_true(vmsup_vm_store_save(store, def, &error));
	g_assert_no_error(error);
	g_assert_true(
	    g_file_set_contents(legacy, "{\"name\": \"old\", \"kernel\": \"/k\"}", -1, NULL));
	g_assert_true(
	    g_file_set_contents(bad,
				"{\"name\": \"bad\", \"kernel\": \"/k\", \"owner_uid\": -1}",
				-1,
				NULL));

	expected_warning = "moved aside";
	n_expected_warnings = 0;
	defs = vmsup_vm_store_load_all(store, &error);
	expected_warning = NULL;
	g_assert_no_error(error);
	/* the one with an owner that is no uid is set aside, not loaded as root's */
	g_assert_cmpuint(n_expected_warnings, ==, 1);
	g_assert_cmpuint(defs->len, ==, 2);
	g_assert_cmpstr(((VmsupVmDef *)g_ptr_array_index(defs, 0))->name, ==, "old");
	g_assert_cmpuint(((VmsupVmDef *)g_ptr_array_index(defs, 0))->owner_uid, ==, 0);
	g_assert_cmpstr(((VmsupVmDef *)g_ptr_array_index(defs, 1))->name, ==, "owned");
	g_assert_cmpuint(((VmsupVmDef *)g_ptr_array_index(defs, 1))->owner_uid, ==, 4242);

	/* clients cannot name an owner: only the caller's uid, given in-process, makes one */
	from_params = vmsup_vm_def_new_from_params(owner_param, NULL, /* caller= */ NULL, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	g_assert_null(from_params);
}

int
main(int argc, char **argv)
{
	g_log_set_writer_func(test_log_writer, NULL, NULL);
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	g_test_add_func("/vmsup/vm-store/round-trip", test_store_round_trip);
	g_test_add_func("/vmsup/vm-store/atomic", test_store_atomic);
	g_test_add_func("/vmsup/vm-store/save-cancelled", test_store_save_cancelled);
	g_test_add_func("/vmsup/vm-store/corrupt", test_store_corrupt);
	g_test_add_func("/vmsup/vm-store/remove", test_store_remove);
	g_test_add_func("/vmsup/vm-store/unwritable", test_store_unwritable);
	g_test_add_func("/vmsup/vm-store/outcome-round-trip", test_outcome_round_trip);
	g_test_add_func("/vmsup/vm-store/outcome-corrupt", test_outcome_corrupt);
	g_test_add_func("/vmsup/vm-store/outcome-remove", test_outcome_remove);
	g_test_add_func("/vmsup/vm-def/params", test_def_params);
	g_test_add_func("/vmsup/vm-def/params-bad", test_def_params_bad);
	g_test_add_func("/vmsup/vm-def/share-dir", test_def_share_dir);
	g_test_add_func("/vmsup/vm-def/validate", test_def_validate);
	g_test_add_func("/vmsup/vm-def/apply", test_def_apply);
	g_test_add_func("/vmsup/operation/lifecycle", test_operation);
	g_test_add_func("/vmsup/vm-lock/fifo", test_lock_fifo);
	g_test_add_func("/vmsup/vm-store/owner", test_store_owner);
	return g_test_run();
}
