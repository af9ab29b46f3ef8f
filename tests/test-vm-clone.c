/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vm.clone and vm.set's disk_gib against real QEMU and qemu-img: a clone of
 * the bundled guest boots with its own MAC and its own disk, a live growth is
 * seen by the guest, and what is refused, cancelled or cut short leaves
 * nothing behind.
 */

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "vmsup-disk-copy.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-qemu-process.h"
#include "vmsup-qmp-client.h"
#include "vmsup-stats-service.h"
#include "vmsup-test-util.h"
#include "vmsup-vm-seed.h"
#include "vmsup-vm-service.h"

#define GUEST_MEMORY_MIB 192
#define GUEST_BOOT_TIMEOUT_S 90
#define CALL_TIMEOUT_S 60
#define GIB ((guint64)1024 * 1024 * 1024)

typedef struct {
	gchar *tmpdir;
	gchar *state_dir;
	gchar *run_dir;
	gchar *qemu;
	VmsupVmService *vm_service;
	VmsupStatsService *stats;
} Fixture;

typedef void (*VmAsyncFunc)(VmsupVmService *self,
			    const VmsupCaller *caller,
			    JsonObject *params,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data);

static JsonObject *
call_vm(Fixture *fx,
	VmAsyncFunc async,
	VmsupVmServiceFinishFunc finish,
	const gchar *json,
	GError **error)
{
	g_autoptr(JsonObject) params = vmsup_json_parse_object(json, -1, NULL);
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	g_assert_nonnull(params);
	async(fx->vm_service,
	      vmsup_caller_daemon(),
	      params,
	      NULL,
	      vmsup_test_store_result_cb,
	      &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	return finish(fx->vm_service, res, error);
}

#define VM_OK(fx, verb, json)                                                                      \
	({                                                                                         \
		g_autoptr(GError) _error = NULL;                                                   \
		JsonObject *_result = call_vm((fx),                                                \
					      vmsup_vm_service_##verb##_async,                     \
					      vmsup_vm_service_##verb##_finish,                    \
					      (json),                                              \
					      &_error);                                            \
		g_assert_no_error(_error);                                                         \
		g_assert_nonnull(_result);                                                         \
		_result;                                                                           \
	})

/* the error's message; asserts its code */
static gchar *
vm_error(Fixture *fx,
	 VmAsyncFunc async,
	 VmsupVmServiceFinishFunc finish,
	 gint code,
	 const gchar *json)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = call_vm(fx, async, finish, json, &error);

	g_assert_null(result);
	g_assert_error(error, VMSUP_ERROR, code);
	g_test_message("%s", error->message);
	return g_strdup(error->message);
}

#define VM_ERR(fx, verb, code, json)                                                               \
	vm_error((fx),                                                                             \
		 vmsup_vm_service_##verb##_async,                                                  \
		 vmsup_vm_service_##verb##_finish,                                                 \
		 (code),                                                                           \
		 (json))

static JsonObject *
vm_get(Fixture *fx, const gchar *name)
{
	g_autofree gchar *json = g_strdup_printf("{\"name\": \"%s\"}", name);
	g_autoptr(JsonObject) params = vmsup_json_parse_object(json, -1, NULL);
	g_autoptr(GError) error = NULL;
	JsonObject *vm = vmsup_vm_service_get(fx->vm_service, params, &error);

	g_assert_no_error(error);
	return vm;
}

static gchar *
disk_path(Fixture *fx, const gchar *name)
{
	g_autofree gchar *basename = g_strconcat(name, ".qcow2", NULL);
	return g_build_filename(fx->state_dir, "disks", basename, NULL);
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

/*
 * The state directory's files (a disk by its size, the rest by their
 * contents) and the VMs, as text: "nothing changed" compares two.
 */
static gchar *
snapshot(Fixture *fx)
{
	const gchar *dirs[] = {"disks", "vms", "guests"};
	g_autoptr(GString) out = g_string_new(NULL);
	g_auto(GStrv) names = vmsup_vm_service_list_names(fx->vm_service);

	for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
		g_autofree gchar *path = g_build_filename(fx->state_dir, dirs[i], NULL);
		g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
		g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(g_free);
		const gchar *entry;

		while (dir != NULL && (entry = g_dir_read_name(dir)) != NULL)
			g_ptr_array_add(entries, g_strdup(entry));
		g_ptr_array_sort(entries, compare_names);
		g_string_append_printf(out, "%s:\n", dirs[i]);
		for (guint j = 0; j < entries->len; j++) {
			const gchar *base = g_ptr_array_index(entries, j);
			g_autofree gchar *file = g_build_filename(path, base, NULL);
			g_autofree gchar *contents = NULL;
			gsize length = 0;
			GStatBuf st;

			g_assert_cmpint(g_stat(file, &st), ==, 0);
			if (i > 0 && S_ISREG(st.st_mode) &&
			    g_file_get_contents(file, &contents, &length, NULL)) {
				g_autofree gchar *sum =
				    g_compute_checksum_for_data(G_CHECKSUM_SHA256,
								(const guchar *)contents,
								length);
				g_string_append_printf(out, " %s %s\n", base, sum);
			} else {
				g_string_append_printf(out,
						       " %s %" G_GUINT64_FORMAT "\n",
						       base,
						       (guint64)st.st_size);
			}
		}
	}
	for (guint i = 0; names[i] != NULL; i++)
		g_string_append_printf(out, "vm %s\n", names[i]);
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* qemu-img's word on the disk's virtual size */
static guint64
qemu_img_size(const gchar *path)
{
	const gchar *argv[] = {"qemu-img", "info", "-U", "--output=json", path, NULL};
	g_autofree gchar *out = vmsup_test_run_tool_output(argv);
	g_autoptr(JsonObject) info = vmsup_json_parse_object(out, -1, NULL);

	g_assert_nonnull(info);
	return (guint64)vmsup_json_object_get_int(info, "virtual-size", 0);
}

static JsonObject *
member_object(JsonObject *object, const gchar *member)
{
	JsonNode *node = object != NULL ? json_object_get_member(object, member) : NULL;
	return node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

/* QEMU's word (query-block) on the running VM's disk, node vmsup-disk0 */
static guint64
qemu_block_size(Fixture *fx, const gchar *name)
{
	g_autoptr(VmsupVmHandles) handles =
	    vmsup_vm_hooks_vm_handles(vmsup_vm_service_get_hooks(fx->vm_service), name);
	VmsupQmpClient *qmp = NULL;
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonNode) reply = NULL;
	g_autoptr(GError) error = NULL;
	JsonArray *blocks;

	g_assert_nonnull(handles);
	qmp = vmsup_qemu_process_get_qmp(handles->process);
	g_assert_nonnull(qmp);
	vmsup_qmp_client_execute_async(qmp,
				       "query-block",
				       NULL,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	reply = vmsup_qmp_client_execute_finish(qmp, res, &error);
	g_assert_no_error(error);
	g_assert_true(JSON_NODE_HOLDS_ARRAY(reply));
	blocks = json_node_get_array(reply);
	for (guint i = 0; i < json_array_get_length(blocks); i++) {
		JsonObject *block = json_array_get_object_element(blocks, i);
		JsonObject *inserted = member_object(block, "inserted");
		JsonObject *image = member_object(inserted, "image");

		if (image != NULL &&
		    g_strcmp0(vmsup_json_object_get_string(inserted, "node-name", NULL),
			      "vmsup-disk0") == 0)
			return (guint64)vmsup_json_object_get_int(image, "virtual-size", 0);
	}
	g_assert_not_reached();
}

static gchar *
qemu_img_backing(const gchar *path)
{
	const gchar *argv[] = {"qemu-img", "info", "-U", "--output=json", path, NULL};
	g_autofree gchar *out = vmsup_test_run_tool_output(argv);
	g_autoptr(JsonObject) info = vmsup_json_parse_object(out, -1, NULL);

	g_assert_nonnull(info);
	return g_strdup(vmsup_json_object_get_string(info, "backing-filename", NULL));
}

static void
load_service(Fixture *fx)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	/* this kind of machine cannot run a guest under KVM: no probe, TCG */
	fx->vm_service =
	    vmsup_vm_service_new(fx->state_dir, fx->run_dir, fx->qemu, VMSUP_ACCEL_TCG);
	fx->stats = vmsup_stats_service_new(vmsup_vm_service_get_hooks(fx->vm_service));
	vmsup_vm_service_load_async(fx->vm_service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 60);
	g_assert_true(vmsup_vm_service_load_finish(fx->vm_service, res, &error));
	g_assert_no_error(error);
}

static void
unload_service(Fixture *fx)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	vmsup_vm_service_stop_all_async(fx->vm_service, NULL, vmsup_test_store_result_cb, &slot);
	res = vmsup_test_wait_result(&slot, 60);
	g_assert_true(vmsup_vm_service_stop_all_finish(fx->vm_service, res, &error));
	g_clear_object(&fx->stats);
	g_clear_object(&fx->vm_service);
	vmsup_test_drain_main_context();
}

static void
setup(Fixture *fx, gconstpointer user_data)
{
	fx->qemu = vmsup_test_require_qemu();
	fx->tmpdir = vmsup_test_make_tmpdir();
	fx->state_dir = g_build_filename(fx->tmpdir, "state", NULL);
	fx->run_dir = g_build_filename(fx->tmpdir, "run", NULL);
	load_service(fx);
}

static void
teardown(Fixture *fx, gconstpointer user_data)
{
	unload_service(fx);
	vmsup_test_rm_rf(fx->tmpdir);
	g_free(fx->tmpdir);
	g_free(fx->state_dir);
	g_free(fx->run_dir);
	g_free(fx->qemu);
}

/* --- the guest: exec through the agent --------------------------------------- */

static gchar *
exec_out(Fixture *fx, const gchar *name, const gchar *script)
{
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonArray) argv = json_array_new();
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result = NULL;

	json_object_set_string_member(params, "name", name);
	json_array_add_string_element(argv, "/bin/sh");
	json_array_add_string_element(argv, "-c");
	json_array_add_string_element(argv, script);
	json_object_set_array_member(params, "argv", g_steal_pointer(&argv));
	vmsup_stats_service_exec_async(fx->stats,
				       vmsup_caller_daemon(),
				       params,
				       NULL,
				       vmsup_test_store_result_cb,
				       &slot);
	res = vmsup_test_wait_result(&slot, CALL_TIMEOUT_S);
	result = vmsup_stats_service_exec_finish(fx->stats, res, &error);
	g_assert_no_error(error);
	g_assert_cmpint(vmsup_json_object_get_int(result, "exit_code", -1), ==, 0);
	return g_strstrip(g_strdup(vmsup_json_object_get_string(result, "stdout", "")));
}

typedef struct {
	Fixture *fx;
	const gchar *name;
	gboolean ok;
} AgentWait;

static void
health_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AgentWait *wait = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) health =
	    vmsup_stats_service_health_finish(VMSUP_STATS_SERVICE(source), res, &error);
	g_autoptr(JsonObject) params = json_object_new();

	g_assert_no_error(error);
	if (g_strcmp0(vmsup_json_object_get_string(health, "status", NULL), "ok") == 0) {
		wait->ok = TRUE;
		return;
	}
	json_object_set_string_member(params, "name", wait->name);
	vmsup_stats_service_health_async(wait->fx->stats,
					 vmsup_caller_daemon(),
					 params,
					 NULL,
					 health_cb,
					 wait);
}

static void
start_and_wait_agent(Fixture *fx, const gchar *name)
{
	g_autofree gchar *json = g_strdup_printf("{\"name\": \"%s\"}", name);
	g_autoptr(JsonObject) started = VM_OK(fx, start, json);
	g_autoptr(JsonObject) params = json_object_new();
	AgentWait wait = {fx, name, FALSE};

	json_object_set_string_member(params, "name", name);
	vmsup_stats_service_health_async(fx->stats,
					 vmsup_caller_daemon(),
					 params,
					 NULL,
					 health_cb,
					 &wait);
	vmsup_test_wait_flag(&wait.ok, GUEST_BOOT_TIMEOUT_S);
}

static void
stop(Fixture *fx, const gchar *name)
{
	g_autofree gchar *json = g_strdup_printf("{\"name\": \"%s\"}", name);
	g_autoptr(JsonObject) stopped = VM_OK(fx, stop, json);
}

/* a clone of the stopped bundled guest boots with its own MAC, disk and data */
static void
test_clone_guest(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *src_disk = disk_path(fx, "src");
	g_autofree gchar *cln_disk = disk_path(fx, "cln");
	g_autofree gchar *src_mac = NULL;
	g_autofree gchar *cln_mac = NULL;
	g_autofree gchar *marker = NULL;
	g_autofree gchar *sectors = NULL;
	g_autofree gchar *msg = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(JsonObject) grown = NULL;
	g_autoptr(JsonObject) grown_cold = NULL;
	g_autoptr(JsonObject) cloned = NULL;
	g_autoptr(JsonObject) src = NULL;
	g_autoptr(JsonObject) cln = NULL;

	created =
	    VM_OK(fx,
		  create,
		  "{\"name\": \"src\", \"disk_gib\": 1, \"memory_mib\": 192, \"wait\": true}");
	start_and_wait_agent(fx, "src");
	src_mac = exec_out(fx, "src", "cat /sys/class/net/eth0/address");
	src = vm_get(fx, "src");
	g_assert_cmpstr(src_mac, ==, vmsup_json_object_get_string(src, "mac", NULL));

	/* a running source is refused, and nothing of the clone is made */
	before = snapshot(fx);
	msg = VM_ERR(fx,
		     clone,
		     VMSUP_ERROR_FAILED_PRECONDITION,
		     "{\"name\": \"src\", \"new_name\": \"cln\", \"wait\": true}");
	g_assert_nonnull(strstr(msg, "stop it first"));
	g_assert_nonnull(strstr(msg, "vmsup stop src"));
	after = snapshot(fx);
	g_assert_cmpstr(before, ==, after);

	/* grown live: the guest sees 2 GiB in 512-byte sectors */
	sectors = exec_out(fx, "src", "cat /sys/block/vda/size");
	g_assert_cmpstr(sectors, ==, "2097152");
	g_clear_pointer(&sectors, g_free);
	g_assert_cmpuint(qemu_block_size(fx, "src"), ==, 1 * GIB);
	grown = VM_OK(fx, set, "{\"name\": \"src\", \"disk_gib\": 2}");
	g_assert_cmpuint(qemu_block_size(fx, "src"), ==, 2 * GIB);
	sectors = exec_out(fx, "src", "cat /sys/block/vda/size");
	g_assert_cmpstr(sectors, ==, "4194304");
	g_assert_cmpuint(qemu_img_size(src_disk), ==, 2 * GIB);

	/* smaller, while it runs: refused, and neither QEMU nor the definition moves */
	g_clear_pointer(&msg, g_free);
	g_clear_pointer(&before, g_free);
	g_clear_pointer(&after, g_free);
	before = snapshot(fx);
	msg = VM_ERR(fx, set, VMSUP_ERROR_INVALID_ARGUMENT, "{\"name\": \"src\", \"disk_gib\": 1}");
	g_assert_nonnull(strstr(msg, "Disks only grow"));
	g_assert_cmpuint(qemu_block_size(fx, "src"), ==, 2 * GIB);
	after = snapshot(fx);
	g_assert_cmpstr(before, ==, after);

	/* data on the source's disk, which the clone must carry */
	g_free(exec_out(fx, "src", "echo vmsup-clone-marker > /dev/vda && sync"));
	stop(fx, "src");

	cloned = VM_OK(fx, clone, "{\"name\": \"src\", \"new_name\": \"cln\", \"wait\": true}");
	g_assert_cmpstr(vmsup_json_object_get_string(cloned, "vm", NULL), ==, "cln");
	cln = vm_get(fx, "cln");
	g_assert_cmpstr(vmsup_json_object_get_string(cln, "disk", NULL), ==, cln_disk);
	g_assert_true(g_file_test(cln_disk, G_FILE_TEST_IS_REGULAR));
	g_assert_cmpstr(vmsup_json_object_get_string(cln, "mac", NULL),
			!=,
			vmsup_json_object_get_string(src, "mac", NULL));
	g_assert_cmpint(vmsup_json_object_get_int(cln, "disk_gib", 0), ==, 2);
	g_assert_cmpuint(qemu_img_size(cln_disk), ==, 2 * GIB);

	/* grown cold before its first start: QEMU and the guest see 3 GiB */
	grown_cold = VM_OK(fx, set, "{\"name\": \"cln\", \"disk_gib\": 3}");
	g_assert_cmpuint(qemu_img_size(cln_disk), ==, 3 * GIB);
	g_assert_cmpuint(qemu_img_size(src_disk), ==, 2 * GIB);
	start_and_wait_agent(fx, "cln");
	g_assert_cmpuint(qemu_block_size(fx, "cln"), ==, 3 * GIB);
	g_clear_pointer(&sectors, g_free);
	sectors = exec_out(fx, "cln", "cat /sys/block/vda/size");
	g_assert_cmpstr(sectors, ==, "6291456");
	cln_mac = exec_out(fx, "cln", "cat /sys/class/net/eth0/address");
	g_assert_cmpstr(cln_mac, ==, vmsup_json_object_get_string(cln, "mac", NULL));
	g_assert_cmpstr(cln_mac, !=, src_mac);
	marker = exec_out(fx, "cln", "head -c 18 /dev/vda");
	g_assert_cmpstr(marker, ==, "vmsup-clone-marker");
	/* its own disk: what the clone writes, the source never sees */
	g_free(exec_out(fx, "cln", "echo overwritten-by-clone > /dev/vda && sync"));
	stop(fx, "cln");
	{
		g_autofree gchar *contents = NULL;
		gsize length = 0;
		const gchar *argv[] = {"qemu-img",
				       "dd",
				       "-f",
				       "qcow2",
				       "-O",
				       "raw",
				       "bs=512",
				       "count=1",
				       NULL,
				       NULL,
				       NULL};
		g_autofree gchar *in = g_strconcat("if=", src_disk, NULL);
		g_autofree gchar *out_path = g_build_filename(fx->tmpdir, "head.raw", NULL);
		g_autofree gchar *out = g_strconcat("of=", out_path, NULL);

		argv[8] = in;
		argv[9] = out;
		vmsup_test_run_tool(argv);
		g_assert_true(g_file_get_contents(out_path, &contents, &length, NULL));
		g_assert_true(g_str_has_prefix(contents, "vmsup-clone-marker"));
	}
}

/* refused clones: nothing made, nothing changed */
static void
test_clone_refused(Fixture *fx, gconstpointer user_data)
{
	const gchar *bad[] = {"../x", "X", "-x", "a/b", "", "a,b"};
	g_autoptr(JsonObject) a = NULL;
	g_autoptr(JsonObject) b = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *msg = NULL;

	a = VM_OK(fx, create, "{\"name\": \"a\", \"disk_gib\": 1, \"wait\": true}");
	b = VM_OK(fx, create, "{\"name\": \"b\", \"wait\": true}");
	before = snapshot(fx);
	msg = VM_ERR(fx,
		     clone,
		     VMSUP_ERROR_ALREADY_EXISTS,
		     "{\"name\": \"a\", \"new_name\": \"b\", \"wait\": true}");
	g_assert_nonnull(strstr(msg, "'b' already exists"));
	g_clear_pointer(&msg, g_free);
	msg = VM_ERR(fx,
		     clone,
		     VMSUP_ERROR_NOT_FOUND,
		     "{\"name\": \"nope\", \"new_name\": \"c\", \"wait\": true}");
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree gchar *json =
		    g_strdup_printf("{\"name\": \"a\", \"new_name\": \"%s\", \"wait\": true}",
				    bad[i]);
		g_free(VM_ERR(fx, clone, VMSUP_ERROR_INVALID_ARGUMENT, json));
	}
	after = snapshot(fx);
	g_assert_cmpstr(before, ==, after);
}

/* the instance-id in the NoCloud seed a start made in @name's guest directory */
static gchar *
seed_instance_id(Fixture *fx, const gchar *name)
{
	g_autofree gchar *dir = vmsup_vm_seed_guest_dir(fx->state_dir, name);
	g_autofree gchar *seed = g_build_filename(dir, VMSUP_VM_SEED_IMAGE, NULL);
	g_autofree gchar *contents = NULL;
	gsize length = 0;
	const gchar *line;
	const gchar *eol;

	g_assert_true(g_file_get_contents(seed, &contents, &length, NULL));
	line = memmem(contents, length, "instance-id: ", strlen("instance-id: "));
	g_assert_nonnull(line);
	eol = memchr(line, '\n', length - (gsize)(line - contents));
	g_assert_nonnull(eol);
	return g_strndup(line, (gsize)(eol - line));
}

/*
 * A clone of a VM made from an image: a new overlay on the same base, the
 * source's variable store, and at its first start a seed of its own with a
 * new instance-id (the blank image boots nothing; QEMU and the seed are
 * what count).
 */
static void
test_clone_image(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *base = g_build_filename(fx->tmpdir, "base.qcow2", NULL);
	const gchar *mk[] = {"qemu-img", "create", "-q", "-f", "qcow2", base, "64M", NULL};
	g_autofree gchar *json = NULL;
	g_autofree gchar *src_dir = vmsup_vm_seed_guest_dir(fx->state_dir, "img");
	g_autofree gchar *cln_dir = vmsup_vm_seed_guest_dir(fx->state_dir, "img2");
	g_autofree gchar *vars = g_build_filename(src_dir, VMSUP_VM_SEED_VARS, NULL);
	g_autofree gchar *cln_vars = g_build_filename(cln_dir, VMSUP_VM_SEED_VARS, NULL);
	g_autofree gchar *cln_seed = g_build_filename(cln_dir, VMSUP_VM_SEED_IMAGE, NULL);
	g_autofree gchar *cln_disk = disk_path(fx, "img2");
	g_autofree gchar *backing = NULL;
	g_autofree gchar *src_vars = NULL;
	g_autofree gchar *copied = NULL;
	g_autofree gchar *id_src = NULL;
	g_autofree gchar *id_src_again = NULL;
	g_autofree gchar *id_cln = NULL;
	g_autofree gchar *expected = NULL;
	gsize src_len = 0;
	gsize cln_len = 0;
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(JsonObject) started = NULL;
	g_autoptr(JsonObject) cloned = NULL;
	g_autoptr(JsonObject) src = NULL;
	g_autoptr(JsonObject) cln = NULL;
	g_autoptr(GDateTime) t_cln = NULL;

	vmsup_test_run_tool(mk);
	json = g_strdup_printf("{\"name\": \"img\", \"image\": \"%s\", \"firmware\": \"uefi\", "
			       "\"memory_mib\": 64, \"wait\": true}",
			       base);
	created = VM_OK(fx, create, json);
	started = VM_OK(fx, start, "{\"name\": \"img\"}");
	id_src = seed_instance_id(fx, "img");
	g_assert_true(g_str_has_prefix(id_src, "instance-id: vmsup-img-"));
	stop(fx, "img");
	g_assert_true(g_file_get_contents(vars, &src_vars, &src_len, NULL));

	cloned = VM_OK(fx, clone, "{\"name\": \"img\", \"new_name\": \"img2\", \"wait\": true}");
	backing = qemu_img_backing(cln_disk);
	g_assert_cmpstr(backing, ==, base);
	g_assert_true(g_file_get_contents(cln_vars, &copied, &cln_len, NULL));
	g_assert_cmpmem(copied, cln_len, src_vars, src_len);
	/* the source's seed is not taken along */
	g_assert_false(g_file_test(cln_seed, G_FILE_TEST_EXISTS));
	src = vm_get(fx, "img");
	cln = vm_get(fx, "img2");
	g_assert_cmpstr(vmsup_json_object_get_string(cln, "image", NULL), ==, base);
	g_assert_cmpstr(vmsup_json_object_get_string(cln, "firmware", NULL), ==, "uefi");
	g_assert_cmpstr(vmsup_json_object_get_string(cln, "mac", NULL),
			!=,
			vmsup_json_object_get_string(src, "mac", NULL));

	/* its first start makes a seed with another instance-id; the source's stays */
	g_clear_pointer(&started, json_object_unref);
	started = VM_OK(fx, start, "{\"name\": \"img2\"}");
	g_assert_cmpuint(qemu_block_size(fx, "img2"), ==, 64 * 1024 * 1024);
	id_cln = seed_instance_id(fx, "img2");
	t_cln =
	    g_date_time_new_from_iso8601(vmsup_json_object_get_string(cln, "created", ""), NULL);
	g_assert_nonnull(t_cln);
	expected = g_strdup_printf("instance-id: vmsup-img2-%" G_GINT64_FORMAT,
				   g_date_time_to_unix(t_cln));
	g_assert_cmpstr(id_cln, ==, expected);
	g_assert_cmpstr(id_cln, !=, id_src);
	id_src_again = seed_instance_id(fx, "img");
	g_assert_cmpstr(id_src_again, ==, id_src);
	stop(fx, "img2");
}

static void
cancel_on_copy_cb(VmsupVmService *svc, JsonObject *op, gpointer user_data)
{
	gint64 *cancelled = user_data;
	g_autoptr(JsonObject) params = NULL;

	if (*cancelled != 0 ||
	    g_strcmp0(vmsup_json_object_get_string(op, "stage", ""), "copy") != 0)
		return;
	*cancelled = vmsup_json_object_get_int(op, "id", 0);
	params = json_object_new();
	json_object_set_int_member(params, "id", *cancelled);
	vmsup_vm_service_op_cancel_async(svc, vmsup_caller_daemon(), params, NULL, NULL, NULL);
}

/* cancelled in its copy: nothing of the clone is left */
static void
test_clone_cancel(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *a_disk = disk_path(fx, "a");
	g_autofree gchar *io = g_strdup_printf("write -P 0xab 0 200M");
	const gchar *fill[] = {"qemu-io", "-f", "qcow2", "-c", io, a_disk, NULL};
	g_autoptr(JsonObject) a = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *msg = NULL;
	gint64 cancelled = 0;
	gulong id;

	a = VM_OK(fx, create, "{\"name\": \"a\", \"disk_gib\": 1, \"wait\": true}");
	vmsup_test_run_tool(fill);
	before = snapshot(fx);
	id = g_signal_connect(fx->vm_service,
			      "operation-changed",
			      G_CALLBACK(cancel_on_copy_cb),
			      &cancelled);
	msg = VM_ERR(fx,
		     clone,
		     VMSUP_ERROR_CANCELLED,
		     "{\"name\": \"a\", \"new_name\": \"c\", \"wait\": true}");
	g_signal_handler_disconnect(fx->vm_service, id);
	g_assert_cmpint(cancelled, >, 0);
	/* the waiting caller hears the operation's end, as for a create */
	{
		g_autofree gchar *words =
		    g_strdup_printf("Operation %" G_GINT64_FORMAT " was cancelled", cancelled);
		g_assert_nonnull(strstr(msg, words));
	}
	vmsup_test_drain_main_context();
	after = snapshot(fx);
	g_assert_cmpstr(before, ==, after);
}

/* a daemon killed mid-copy leaves a staging file: the next load removes it, and no VM comes */
static void
test_clone_interrupted(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *disk = disk_path(fx, "half");
	g_autofree gchar *part = vmsup_disk_copy_tmp_path(disk);
	g_autofree gchar *dir = g_path_get_dirname(part);
	g_autoptr(JsonObject) again = NULL;

	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	g_assert_true(g_file_set_contents(part, "half a copy", -1, NULL));
	unload_service(fx);
	load_service(fx);
	g_assert_false(g_file_test(part, G_FILE_TEST_EXISTS));
	g_assert_null(vmsup_vm_service_lookup(fx->vm_service, "half"));
	/* and the name is free for a clone again */
	again = VM_OK(fx, create, "{\"name\": \"a\", \"disk_gib\": 1, \"wait\": true}");
	g_clear_pointer(&again, json_object_unref);
	again = VM_OK(fx, clone, "{\"name\": \"a\", \"new_name\": \"half\", \"wait\": true}");
	g_assert_true(g_file_test(disk, G_FILE_TEST_IS_REGULAR));
	g_assert_false(g_file_test(part, G_FILE_TEST_EXISTS));
}

/* grown while stopped; a smaller size, and a VM without a disk, are refused and change nothing */
static void
test_disk_grow(Fixture *fx, gconstpointer user_data)
{
	g_autofree gchar *disk = disk_path(fx, "g");
	g_autoptr(JsonObject) created = NULL;
	g_autoptr(JsonObject) bare = NULL;
	g_autoptr(JsonObject) set = NULL;
	g_autoptr(JsonObject) vm = NULL;
	g_autofree gchar *msg = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;

	created = VM_OK(fx, create, "{\"name\": \"g\", \"disk_gib\": 1, \"wait\": true}");
	set = VM_OK(fx, set, "{\"name\": \"g\", \"disk_gib\": 3}");
	g_assert_cmpuint(qemu_img_size(disk), ==, 3 * GIB);
	vm = vm_get(fx, "g");
	g_assert_cmpint(vmsup_json_object_get_int(vm, "disk_gib", 0), ==, 3);

	before = snapshot(fx);
	msg = VM_ERR(fx, set, VMSUP_ERROR_INVALID_ARGUMENT, "{\"name\": \"g\", \"disk_gib\": 2}");
	g_assert_nonnull(strstr(msg, "Disks only grow"));
	g_assert_nonnull(strstr(msg, "is 3.0 GiB"));
	g_assert_cmpuint(qemu_img_size(disk), ==, 3 * GIB);
	g_clear_pointer(&vm, json_object_unref);
	vm = vm_get(fx, "g");
	g_assert_cmpint(vmsup_json_object_get_int(vm, "disk_gib", 0), ==, 3);
	/* with another field: all or nothing */
	g_clear_pointer(&msg, g_free);
	msg = VM_ERR(fx,
		     set,
		     VMSUP_ERROR_INVALID_ARGUMENT,
		     "{\"name\": \"g\", \"disk_gib\": 1, \"cpus\": 2}");
	g_clear_pointer(&vm, json_object_unref);
	vm = vm_get(fx, "g");
	g_assert_cmpint(vmsup_json_object_get_int(vm, "cpus", 0), ==, 1);

	bare = VM_OK(fx, create, "{\"name\": \"bare\", \"wait\": true}");
	g_clear_pointer(&before, g_free);
	before = snapshot(fx);
	g_clear_pointer(&msg, g_free);
	msg = VM_ERR(fx,
		     set,
		     VMSUP_ERROR_FAILED_PRECONDITION,
		     "{\"name\": \"bare\", \"disk_gib\": 2}");
	g_assert_nonnull(strstr(msg, "has no disk"));
	after = snapshot(fx);
	g_assert_cmpstr(before, ==, after);
	g_clear_pointer(&vm, json_object_unref);
	vm = vm_get(fx, "bare");
	g_assert_false(json_object_has_member(vm, "disk_gib"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	g_test_add("/vmsup/clone/guest", Fixture, NULL, setup, test_clone_guest, teardown);
	g_test_add("/vmsup/clone/refused", Fixture, NULL, setup, test_clone_refused, teardown);
	g_test_add("/vmsup/clone/image", Fixture, NULL, setup, test_clone_image, teardown);
	g_test_add("/vmsup/clone/cancel", Fixture, NULL, setup, test_clone_cancel, teardown);
	g_test_add("/vmsup/clone/interrupted",
		   Fixture,
		   NULL,
		   setup,
		   test_clone_interrupted,
		   teardown);
	g_test_add("/vmsup/disk/grow", Fixture, NULL, setup, test_disk_grow, teardown);
	return g_test_run();
}
