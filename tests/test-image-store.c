/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The image store on real images made by qemu-img: what an import records,
 * what it refuses (and that a refusal or a cancel leaves nothing), and the
 * store's part in vm.create and in what may be deleted.
 */

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-caller.h"
#include "vmsup-error.h"
#include "vmsup-image-hooks.h"
#include "vmsup-image-store.h"
#include "vmsup-json.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-service.h"

#define TEST_TIMEOUT_S 60

typedef struct {
	gchar *tmp;       /* owned */
	gchar *state_dir; /* owned */
	gchar *src_dir;   /* owned */
	VmsupImageStore *store;
	GPtrArray *progress; /* of gdouble *, what the progress callback saw */
	gboolean cancel_on_progress;
	GCancellable *cancellable;
	gboolean saw_partial; /* a temporary file was there when progress came */
	GError *busy_error;   /* what a second import of the same name met meanwhile */
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	f->tmp = vmsup_test_make_tmpdir();
	f->state_dir = g_build_filename(f->tmp, "state", NULL);
	f->src_dir = g_build_filename(f->tmp, "src", NULL);
	g_assert_cmpint(g_mkdir_with_parents(f->src_dir, 0700), ==, 0);
	f->store = vmsup_image_store_new(f->state_dir, NULL);
	f->progress = g_ptr_array_new_with_free_func(g_free);
	f->cancellable = g_cancellable_new();
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_clear_object(&f->store);
	g_clear_object(&f->cancellable);
	g_clear_error(&f->busy_error);
	g_ptr_array_unref(f->progress);
	vmsup_test_rm_rf(f->tmp);
	g_free(f->tmp);
	g_free(f->state_dir);
	g_free(f->src_dir);
}

static gchar *
test_sha256sum(const gchar *path)
{
	const gchar *argv[] = {"sha256sum", path, NULL};
	g_autofree gchar *out = vmsup_test_run_tool_output(argv);

	g_assert_cmpuint(strlen(out), >, 64);
	return g_strndup(out, 64);
}

static gint64
test_qemu_img_virtual_size(const gchar *path)
{
	const gchar *argv[] = {"qemu-img", "info", "--output=json", "-U", path, NULL};
	g_autofree gchar *out = vmsup_test_run_tool_output(argv);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) info = vmsup_json_parse_object(out, -1, &error);

	g_assert_no_error(error);
	return json_object_get_int_member(info, "virtual-size");
}

static void
test_write_at(const gchar *path, goffset offset, const gchar *data, gsize len)
{
	gint fd = open(path, O_WRONLY | O_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pwrite(fd, data, len, offset), ==, (gssize)len);
	close(fd);
}

/* a sparse raw disk of @size_mib with an MBR boot signature and some data */
static gchar *
test_make_raw(Fixture *f, const gchar *basename, guint size_mib)
{
	g_autofree gchar *size = g_strdup_printf("%uM", size_mib);
	gchar *path = g_build_filename(f->src_dir, basename, NULL);
	const gchar *argv[] = {"qemu-img", "create", "-q", "-f", "raw", path, size, NULL};

	vmsup_test_run_tool(argv);
	test_write_at(path, 510, "\x55\xaa", 2);
	test_write_at(path, 1024 * 1024, "vmsup image store", 17);
	return path;
}

static gchar *
test_make_qcow2(Fixture *f, const gchar *basename)
{
	g_autofree gchar *raw = test_make_raw(f, "for-qcow2.raw", 32);
	gchar *path = g_build_filename(f->src_dir, basename, NULL);
	const gchar *argv[] =
	    {"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, path, NULL};

	vmsup_test_run_tool(argv);
	return path;
}

static gint
test_compare_names(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

/* every name in the images directory, hidden ones included, sorted, joined */
static gchar *
test_list_dir(Fixture *f)
{
	g_autoptr(GDir) dir = g_dir_open(vmsup_image_store_get_dir(f->store), 0, NULL);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, test_compare_names);
	g_ptr_array_add(names, NULL);
	return g_strjoinv(" ", (gchar **)names->pdata);
}

static void
test_progress_cb(gdouble fraction, gpointer user_data)
{
	Fixture *f = user_data;
	gdouble *copy = g_new(gdouble, 1);

	*copy = fraction;
	g_ptr_array_add(f->progress, copy);
	if (f->cancel_on_progress && f->progress->len == 1) {
		g_autofree gchar *listing = test_list_dir(f);
		f->saw_partial = strstr(listing, ".import-") != NULL;
		g_cancellable_cancel(f->cancellable);
	}
}

/* imports @path (opened here, read-only) and waits: the result, or NULL with @error */
static JsonObject *
test_import(Fixture *f, const gchar *path, const gchar *name, GError **error)
{
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;
	gint fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	g_assert_cmpint(fd, >=, 0);
	vmsup_image_store_import_async(f->store,
				       fd,
				       path,
				       name,
				       test_progress_cb,
				       f,
				       NULL,
				       f->cancellable,
				       vmsup_test_store_result_cb,
				       &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	return vmsup_image_store_import_finish(f->store, res, error);
}

static JsonObject *
test_import_ok(Fixture *f, const gchar *path, const gchar *name)
{
	g_autoptr(GError) error = NULL;
	JsonObject *image = test_import(f, path, name, &error);

	g_assert_no_error(error);
	g_assert_nonnull(image);
	return image;
}

static void
test_assert_record(JsonObject *image, const gchar *source, const gchar *format)
{
	const gchar *path = json_object_get_string_member(image, "path");
	g_autofree gchar *sha_source = test_sha256sum(source);
	g_autofree gchar *sha_stored = test_sha256sum(path);
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autoptr(GDateTime) imported = NULL;
	GStatBuf st;

	g_assert_cmpstr(json_object_get_string_member(image, "format"), ==, format);
	g_assert_cmpstr(json_object_get_string_member(image, "source"), ==, source);
	g_assert_cmpstr(json_object_get_string_member(image, "sha256"), ==, sha_source);
	g_assert_cmpstr(sha_stored, ==, sha_source);
	g_assert_cmpint(json_object_get_int_member(image, "virtual_size_bytes"),
			==,
			test_qemu_img_virtual_size(source));
	g_assert_cmpint(json_object_get_int_member(image, "virtual_size_bytes"),
			==,
			test_qemu_img_virtual_size(path));
	g_assert_cmpint(json_object_get_array_member(image, "used_by") != NULL, ==, TRUE);
	g_assert_cmpuint(json_array_get_length(json_object_get_array_member(image, "used_by")),
			 ==,
			 0);
	imported =
	    g_date_time_new_from_iso8601(json_object_get_string_member(image, "imported_at"), NULL);
	g_assert_nonnull(imported);
	g_assert_true(g_str_has_suffix(json_object_get_string_member(image, "imported_at"), "Z"));
	g_assert_cmpint(ABS(g_date_time_difference(now, imported)), <, 120 * G_USEC_PER_SEC);
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0444);
	g_assert_cmpint(json_object_get_int_member(image, "disk_size_bytes"),
			==,
			st.st_blocks * 512);
	g_assert_cmpint(json_object_get_int_member(image, "disk_size_bytes"), >, 0);
}

static void
test_import_raw(Fixture *f, gconstpointer data)
{
	g_autofree gchar *raw = test_make_raw(f, "My Disk.raw", 64);
	g_autoptr(JsonObject) image = test_import_ok(f, raw, NULL);
	g_autofree gchar *expected = g_build_filename(f->state_dir, "images", "my-disk.raw", NULL);
	g_autofree gchar *listing = NULL;

	/* the name comes from the file's, made valid */
	g_assert_cmpstr(json_object_get_string_member(image, "name"), ==, "my-disk");
	g_assert_cmpstr(json_object_get_string_member(image, "path"), ==, expected);
	test_assert_record(image, raw, "raw");
	/* sparse: 64 MiB with two small pieces of data take a few blocks */
	g_assert_cmpint(json_object_get_int_member(image, "disk_size_bytes"), <=, 64 * 1024);
	listing = test_list_dir(f);
	g_assert_cmpstr(listing, ==, "my-disk.json my-disk.raw");
	/* progress went up to the end, never back */
	g_assert_cmpuint(f->progress->len, >, 0);
	for (guint i = 1; i < f->progress->len; i++)
		g_assert_cmpfloat(*(gdouble *)g_ptr_array_index(f->progress, i),
				  >=,
				  *(gdouble *)g_ptr_array_index(f->progress, i - 1));
	g_assert_cmpfloat(*(gdouble *)g_ptr_array_index(f->progress, f->progress->len - 1),
			  ==,
			  1.0);
}

static void
test_import_qcow2(Fixture *f, gconstpointer data)
{
	g_autofree gchar *qcow2 = test_make_qcow2(f, "base.qcow2");
	g_autoptr(JsonObject) image = test_import_ok(f, qcow2, "base");
	g_autofree gchar *listing = NULL;
	g_autofree gchar *looked_up = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_cmpstr(json_object_get_string_member(image, "name"), ==, "base");
	test_assert_record(image, qcow2, "qcow2");
	listing = test_list_dir(f);
	g_assert_cmpstr(listing, ==, "base.json base.qcow2");
	looked_up = vmsup_image_store_lookup(f->store, "base", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(looked_up, ==, json_object_get_string_member(image, "path"));
}

static void
test_list_get_delete(Fixture *f, gconstpointer data)
{
	g_autofree gchar *raw = test_make_raw(f, "b.img", 8);
	g_autofree gchar *qcow2 = test_make_qcow2(f, "a.qcow2");
	g_autoptr(JsonObject) a = test_import_ok(f, qcow2, "zeta");
	g_autoptr(JsonObject) b = test_import_ok(f, raw, "alpha");
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(JsonObject) got = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *listing = NULL;
	JsonArray *images;

	list = vmsup_image_store_list(f->store, &error);
	g_assert_no_error(error);
	images = json_object_get_array_member(list, "images");
	g_assert_cmpuint(json_array_get_length(images), ==, 2);
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(images, 0), "name"),
	    ==,
	    "alpha");
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(images, 1), "sha256"),
	    ==,
	    json_object_get_string_member(a, "sha256"));

	got = vmsup_image_store_get(f->store, "alpha", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(json_object_get_string_member(got, "sha256"),
			==,
			json_object_get_string_member(b, "sha256"));
	g_clear_pointer(&got, json_object_unref);
	got = vmsup_image_store_get(f->store, "nosuch", &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(error->message, "'vmsup image list'"));
	g_clear_error(&error);

	g_assert_true(vmsup_image_store_delete(f->store, "zeta", &error));
	g_assert_no_error(error);
	listing = test_list_dir(f);
	g_assert_cmpstr(listing, ==, "alpha.json alpha.raw");
	g_assert_false(vmsup_image_store_delete(f->store, "zeta", &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_clear_pointer(&list, json_object_unref);
	list = vmsup_image_store_list(f->store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(json_array_get_length(json_object_get_array_member(list, "images")),
			 ==,
			 1);
	/* the name is free again */
	g_clear_pointer(&a, json_object_unref);
	a = test_import_ok(f, qcow2, "zeta");
}

/* @path refused with @code and a message holding @needle; the images dir unchanged */
static void
test_assert_refused(Fixture *f,
		    const gchar *path,
		    const gchar *name,
		    gint code,
		    const gchar *needle)
{
	g_autofree gchar *before = test_list_dir(f);
	g_autofree gchar *after = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) image = test_import(f, path, name, &error);

	g_assert_null(image);
	g_assert_error(error, VMSUP_ERROR, code);
	if (strstr(error->message, needle) == NULL)
		g_error("'%s' refused as '%s', without '%s'", path, error->message, needle);
	after = test_list_dir(f);
	g_assert_cmpstr(after, ==, before);
}

static void
test_bad_input(Fixture *f, gconstpointer data)
{
	g_autofree gchar *good = test_make_raw(f, "good.raw", 8);
	g_autofree gchar *text = g_build_filename(f->src_dir, "notes.txt", NULL);
	g_autofree gchar *base = test_make_qcow2(f, "base.qcow2");
	g_autofree gchar *over = g_build_filename(f->src_dir, "over.qcow2", NULL);
	g_autofree gchar *enc = g_build_filename(f->src_dir, "enc.qcow2", NULL);
	g_autofree gchar *ext = g_build_filename(f->src_dir, "ext.qcow2", NULL);
	g_autofree gchar *ext_data = g_build_filename(f->src_dir, "ext.data", NULL);
	g_autofree gchar *dots = test_make_raw(f, "...raw", 8);
	g_autofree gchar *flatten = NULL;
	g_autoptr(JsonObject) first = NULL;
	const gchar *over_argv[] =
	    {"qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", over, NULL};
	const gchar *enc_argv[] = {"qemu-img",
				   "create",
				   "-q",
				   "--object",
				   "secret,id=s0,data=secret",
				   "-f",
				   "qcow2",
				   "-o",
				   "encrypt.format=luks,encrypt.key-secret=s0",
				   enc,
				   "16M",
				   NULL};
	g_autofree gchar *data_opt = g_strdup_printf("data_file=%s", ext_data);
	const gchar *ext_argv[] =
	    {"qemu-img", "create", "-q", "-f", "qcow2", "-o", data_opt, ext, "16M", NULL};

	vmsup_test_run_tool(over_argv);
	vmsup_test_run_tool(enc_argv);
	vmsup_test_run_tool(ext_argv);
	g_assert_true(g_file_set_contents(text, "just some notes\nnot a disk\n", -1, NULL));
	/* something in the store, so that "unchanged" means more than "still empty" */
	first = test_import_ok(f, good, "good");

	test_assert_refused(f, f->src_dir, NULL, VMSUP_ERROR_INVALID_ARGUMENT, "is a directory");
	test_assert_refused(f,
			    "/dev/zero",
			    NULL,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "not a regular file");
	test_assert_refused(f, text, NULL, VMSUP_ERROR_INVALID_ARGUMENT, "MBR or GPT");
	flatten = g_strdup_printf("'qemu-img convert -O qcow2 %s FLAT.qcow2'", over);
	test_assert_refused(f, over, NULL, VMSUP_ERROR_FAILED_PRECONDITION, flatten);
	test_assert_refused(f, over, NULL, VMSUP_ERROR_FAILED_PRECONDITION, base);
	test_assert_refused(f, enc, NULL, VMSUP_ERROR_FAILED_PRECONDITION, "it is encrypted");
	test_assert_refused(f,
			    ext,
			    NULL,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    "external file; make a plain, self-contained copy");
	test_assert_refused(f,
			    good,
			    "Bad Name",
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "Invalid image name");
	test_assert_refused(f, good, "../x", VMSUP_ERROR_INVALID_ARGUMENT, "Invalid image name");
	test_assert_refused(f, good, "good", VMSUP_ERROR_ALREADY_EXISTS, "vmsup image delete good");
	/* the same name from the file's: taken too */
	test_assert_refused(f, good, NULL, VMSUP_ERROR_ALREADY_EXISTS, "already in the store");
	test_assert_refused(f, dots, NULL, VMSUP_ERROR_INVALID_ARGUMENT, "pass a name");
}

static void
test_busy_result_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Fixture *f = user_data;
	g_autoptr(JsonObject) image =
	    vmsup_image_store_import_finish(VMSUP_IMAGE_STORE(source), res, &f->busy_error);

	g_assert_null(image);
}

static void
test_cancel(Fixture *f, gconstpointer data)
{
	g_autofree gchar *big = test_make_raw(f, "big.raw", 1024);
	g_autofree gchar *small = test_make_raw(f, "small.raw", 4);
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) image = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;
	gint fd;

	g_assert_cmpint(g_mkdir_with_parents(vmsup_image_store_get_dir(f->store), 0700), ==, 0);
	before = test_list_dir(f);
	f->cancel_on_progress = TRUE;
	fd = open(big, O_RDONLY | O_CLOEXEC);
	vmsup_image_store_import_async(f->store,
				       fd,
				       big,
				       "big",
				       test_progress_cb,
				       f,
				       NULL,
				       f->cancellable,
				       vmsup_test_store_result_cb,
				       &slot);
	/* while it runs, the name is taken */
	fd = open(small, O_RDONLY | O_CLOEXEC);
	vmsup_image_store_import_async(f->store,
				       fd,
				       small,
				       "big",
				       NULL,
				       NULL,
				       NULL,
				       NULL,
				       test_busy_result_cb,
				       f);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	image = vmsup_image_store_import_finish(f->store, res, &error);
	g_assert_null(image);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_CANCELLED);
	g_assert_error(f->busy_error, VMSUP_ERROR, VMSUP_ERROR_BUSY);
	/* it was cancelled in the middle: a partial file was there, and is gone */
	g_assert_true(f->saw_partial);
	g_assert_cmpuint(f->progress->len, >=, 1);
	g_assert_cmpfloat(*(gdouble *)g_ptr_array_index(f->progress, f->progress->len - 1), <, 0.5);
	after = test_list_dir(f);
	g_assert_cmpstr(after, ==, before);

	/* and the name is free again */
	f->cancel_on_progress = FALSE;
	g_clear_object(&f->cancellable);
	f->cancellable = g_cancellable_new();
	g_clear_pointer(&image, json_object_unref);
	image = test_import_ok(f, small, "big");
	g_assert_cmpstr(json_object_get_string_member(image, "name"), ==, "big");
}

/* what a daemon killed mid-import leaves is gone when the next store starts */
static void
test_sweep(Fixture *f, gconstpointer data)
{
	g_autofree gchar *raw = test_make_raw(f, "kept.raw", 4);
	g_autoptr(JsonObject) kept = test_import_ok(f, raw, "kept");
	const gchar *dir = vmsup_image_store_get_dir(f->store);
	g_autofree gchar *partial = g_build_filename(dir, ".cut.import-AB12CD", NULL);
	g_autofree gchar *orphan = g_build_filename(dir, "cut.json", NULL);
	g_autofree gchar *listing = NULL;
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_set_contents(partial, "half an image", -1, NULL));
	g_assert_true(
	    g_file_set_contents(orphan, "{\"name\": \"cut\", \"format\": \"raw\"}", -1, NULL));
	g_clear_object(&f->store);
	f->store = vmsup_image_store_new(f->state_dir, NULL);
	listing = test_list_dir(f);
	g_assert_cmpstr(listing, ==, "kept.json kept.raw");
	list = vmsup_image_store_list(f->store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(json_array_get_length(json_object_get_array_member(list, "images")),
			 ==,
			 1);
}

/* --- with VMService: vm.create {image: NAME}, and no delete while in use --- */

static JsonObject *
test_vm_call(VmsupVmService *service,
	     void (*async)(VmsupVmService *,
			   const VmsupCaller *,
			   JsonObject *,
			   GCancellable *,
			   GAsyncReadyCallback,
			   gpointer),
	     VmsupVmServiceFinishFunc finish,
	     const gchar *json,
	     GError **error)
{
	g_autoptr(JsonObject) params = vmsup_json_parse_object(json, -1, NULL);
	g_autoptr(GAsyncResult) res = NULL;
	GAsyncResult *slot = NULL;

	g_assert_nonnull(params);
	async(service, vmsup_caller_daemon(), params, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	return finish(service, res, error);
}

static void
test_in_use(Fixture *f, gconstpointer data)
{
	g_autofree gchar *runtime_dir = g_build_filename(f->tmp, "run", NULL);
	g_autofree gchar *qcow2 = test_make_qcow2(f, "base.qcow2");
	g_autoptr(VmsupVmService) service =
	    vmsup_vm_service_new(f->state_dir, runtime_dir, NULL, VMSUP_ACCEL_TCG);
	g_autoptr(JsonObject) image = NULL;
	g_autoptr(JsonObject) result = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autoptr(JsonObject) got = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *listing = NULL;
	g_autofree gchar *backing = NULL;
	GAsyncResult *slot = NULL;
	JsonArray *used_by;

	/* wired as the daemon wires them: a closure each way, no pointer */
	g_clear_object(&f->store);
	f->store =
	    vmsup_image_store_new(f->state_dir, vmsup_vm_service_get_hooks(service)->image_users);
	vmsup_vm_service_set_image_lookup(service, vmsup_image_store_get_lookup_hook(f->store));
	vmsup_vm_service_load_async(service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, TEST_TIMEOUT_S);
	g_assert_true(vmsup_vm_service_load_finish(service, res, &error));
	g_assert_no_error(error);
	image = test_import_ok(f, qcow2, "base");

	/* a name not in the store: refused, no VM */
	result = test_vm_call(service,
			      vmsup_vm_service_create_async,
			      vmsup_vm_service_create_finish,
			      "{\"name\": \"u0\", \"image\": \"nosuch\", \"wait\": true}",
			      &error);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(error->message, "'nosuch'"));
	g_clear_error(&error);
	g_assert_null(vmsup_vm_service_lookup(service, "u0"));

	result = test_vm_call(service,
			      vmsup_vm_service_create_async,
			      vmsup_vm_service_create_finish,
			      "{\"name\": \"u1\", \"image\": \"base\", \"memory_mib\": 64, "
			      "\"wait\": true}",
			      &error);
	g_assert_no_error(error);
	g_assert_nonnull(result);
	vm = vmsup_vm_service_lookup(service, "u1");
	g_assert_nonnull(vm);
	g_assert_cmpstr(json_object_get_string_member(vm, "image"),
			==,
			json_object_get_string_member(image, "path"));
	/* the VM has its own overlay over the stored file */
	{
		g_autofree gchar *disk = g_build_filename(f->state_dir, "disks", "u1.qcow2", NULL);
		const gchar *argv[] = {"qemu-img", "info", "--output=json", "-U", disk, NULL};
		g_autofree gchar *out = vmsup_test_run_tool_output(argv);
		g_autoptr(JsonObject) info = vmsup_json_parse_object(out, -1, NULL);
		g_assert_nonnull(info);
		backing = g_strdup(json_object_get_string_member(info, "backing-filename"));
	}
	g_assert_cmpstr(backing, ==, json_object_get_string_member(image, "path"));

	got = vmsup_image_store_get(f->store, "base", &error);
	g_assert_no_error(error);
	used_by = json_object_get_array_member(got, "used_by");
	g_assert_cmpuint(json_array_get_length(used_by), ==, 1);
	g_assert_cmpstr(json_array_get_string_element(used_by, 0), ==, "u1");

	listing = test_list_dir(f);
	g_assert_false(vmsup_image_store_delete(f->store, "base", &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "'u1'"));
	g_clear_error(&error);
	{
		g_autofree gchar *after = test_list_dir(f);
		g_assert_cmpstr(after, ==, listing);
	}

	g_clear_pointer(&result, json_object_unref);
	result = test_vm_call(service,
			      vmsup_vm_service_delete_async,
			      vmsup_vm_service_delete_finish,
			      "{\"name\": \"u1\"}",
			      &error);
	g_assert_no_error(error);
	g_assert_true(vmsup_image_store_delete(f->store, "base", &error));
	g_assert_no_error(error);

	/* the store gone, a name is refused as such */
	g_clear_object(&f->store);
	g_clear_pointer(&result, json_object_unref);
	result = test_vm_call(service,
			      vmsup_vm_service_create_async,
			      vmsup_vm_service_create_finish,
			      "{\"name\": \"u2\", \"image\": \"base\", \"wait\": true}",
			      &error);
	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_nonnull(strstr(error->message, "no image store"));
}

int
main(int argc, char **argv)
{
	vmsup_test_guard_children();
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)
	ADD("/vmsup/image-store/import-raw", test_import_raw);
	ADD("/vmsup/image-store/import-qcow2", test_import_qcow2);
	ADD("/vmsup/image-store/list-get-delete", test_list_get_delete);
	ADD("/vmsup/image-store/bad-input", test_bad_input);
	ADD("/vmsup/image-store/cancel", test_cancel);
	ADD("/vmsup/image-store/sweep", test_sweep);
	ADD("/vmsup/image-store/in-use", test_in_use);
#undef ADD
	return g_test_run();
}
