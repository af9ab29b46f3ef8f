/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host side of a VM made from an image: its NoCloud seed, the owner's
 * SSH key pair, its copy of OVMF's variable store and the host keys pinned
 * from its console. Each file is made once and small, with tools that
 * finish in milliseconds, so they run to completion here.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-cloud-init.h"
#include "vmsup-error.h"
#include "vmsup-vm-seed.h"

/* the seed's FAT volume, in KiB: room for the largest user-data and keys */
#define VMSUP_VM_SEED_SIZE_KIB 1024
/* the console is read up to this much, from its start: cloud-init prints the keys once */
#define VMSUP_VM_SEED_CONSOLE_MAX (8 * 1024 * 1024)

const gchar *
vmsup_vm_seed_ovmf_code(void)
{
	const gchar *env = g_getenv("VMSUP_OVMF_CODE");
	return env != NULL && env[0] != '\0' ? env : "/usr/share/OVMF/OVMF_CODE_4M.fd";
}

const gchar *
vmsup_vm_seed_ovmf_vars(void)
{
	const gchar *env = g_getenv("VMSUP_OVMF_VARS");
	return env != NULL && env[0] != '\0' ? env : "/usr/share/OVMF/OVMF_VARS_4M.fd";
}

gchar *
vmsup_vm_seed_guest_dir(const gchar *state_dir, const gchar *name)
{
	return g_build_filename(state_dir, "guests", name, NULL);
}

gchar *
vmsup_vm_seed_identity_file(const gchar *state_dir, guint32 uid)
{
	g_autofree gchar *uid_s = g_strdup_printf("%u", uid);
	return g_build_filename(state_dir, "ssh", uid_s, VMSUP_VM_SEED_KEY_NAME, NULL);
}

/* a tool of Debian's, in PATH or in the sbin directories a user's PATH lacks */
static gchar *
vmsup_vm_seed_find_tool(const gchar *tool, const gchar *package, GError **error)
{
	gchar *path = g_find_program_in_path(tool);
	const gchar *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", NULL};

	for (guint i = 0; path == NULL && dirs[i] != NULL; i++) {
		g_autofree gchar *candidate = g_build_filename(dirs[i], tool, NULL);
		if (g_file_test(candidate, G_FILE_TEST_IS_EXECUTABLE))
			path = g_steal_pointer(&candidate);
	}
	if (path == NULL)
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("'%s' is not installed, which VMs made from an image need; install "
			      "the package '%s'"),
			    tool,
			    package);
	return path;
}

static gboolean
vmsup_vm_seed_run(const gchar *const *argv, GError **error)
{
	g_autofree gchar *err = NULL;
	g_autoptr(GError) error_local = NULL;
	const gchar *const envp[] = {"MTOOLS_SKIP_CHECK=1", "LC_ALL=C", "PATH=/usr/bin:/bin", NULL};
	gint status = 0;

	if (!g_spawn_sync(NULL,
			  (gchar **)argv,
			  (gchar **)envp,
			  G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDIN_FROM_DEV_NULL,
			  NULL,
			  NULL,
			  NULL,
			  &err,
			  &status,
			  &error_local) ||
	    !g_spawn_check_wait_status(status, &error_local)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot make a file of the VM's guest: %s failed: %s %s"),
			    argv[0],
			    error_local->message,
			    err != NULL ? g_strstrip(err) : "");
		return FALSE;
	}
	return TRUE;
}

/* @dir with @mode whatever the umask: the owner's ssh must be let through to its files */
static gboolean
vmsup_vm_seed_mkdir(const gchar *dir, gint mode, GError **error)
{
	if (g_mkdir_with_parents(dir, mode) == 0 && g_chmod(dir, mode) == 0)
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Cannot create '%s': %s; check --state-dir and its permissions"),
		    dir,
		    g_strerror(errno));
	return FALSE;
}

static void
vmsup_vm_seed_chown(const gchar *path, guint32 uid)
{
	if (lchown(path, uid, (gid_t)-1) != 0)
		g_warning("Cannot give '%s' to uid %u: %s", path, uid, g_strerror(errno));
}

/* the owner's public key line, the pair made first when there is none */
static gchar *
vmsup_vm_seed_owner_key(const gchar *state_dir, guint32 uid, GError **error)
{
	g_autofree gchar *identity = vmsup_vm_seed_identity_file(state_dir, uid);
	g_autofree gchar *public = g_strconcat(identity, ".pub", NULL);
	g_autofree gchar *dir = g_path_get_dirname(identity);
	g_autofree gchar *contents = NULL;
	gsize length = 0;
	gint fd;

	if (!g_file_test(identity, G_FILE_TEST_EXISTS)) {
		g_autofree gchar *keygen =
		    vmsup_vm_seed_find_tool("ssh-keygen", "openssh-client", error);
		g_autofree gchar *comment = g_strdup_printf("vmsup uid %u", uid);
		g_autofree gchar *tmp = g_strconcat(identity, ".new", NULL);
		g_autofree gchar *tmp_pub = g_strconcat(tmp, ".pub", NULL);
		const gchar *argv[] =
		    {keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", tmp, NULL};

		g_autofree gchar *parent = g_path_get_dirname(dir);
		/* every owner passes through to their own directory, which only they may read */
		if (keygen == NULL || !vmsup_vm_seed_mkdir(parent, 0711, error) ||
		    !vmsup_vm_seed_mkdir(dir, 0700, error))
			return NULL;
		g_unlink(tmp);
		g_unlink(tmp_pub);
		if (!vmsup_vm_seed_run(argv, error))
			return NULL;
		/* the owner's to use with ssh; the directory last, once the files are in place */
		vmsup_vm_seed_chown(tmp, uid);
		vmsup_vm_seed_chown(tmp_pub, uid);
		if (g_rename(tmp_pub, public) != 0 || g_rename(tmp, identity) != 0) {
			g_set_error(
			    error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot keep the SSH key pair in '%s': %s; check --state-dir"),
			    dir,
			    g_strerror(errno));
			return NULL;
		}
		vmsup_vm_seed_chown(dir, uid);
	}
	/* the owner may have changed the file: never followed, and checked to be a key */
	fd = open(public, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd >= 0) {
		g_autoptr(GIOChannel) channel = g_io_channel_unix_new(fd);
		g_io_channel_set_close_on_unref(channel, TRUE);
		g_io_channel_set_encoding(channel, NULL, NULL);
		if (g_io_channel_read_to_end(channel, &contents, &length, NULL) !=
		    G_IO_STATUS_NORMAL)
			g_clear_pointer(&contents, g_free);
	}
	if (contents == NULL || length > VMSUP_CLOUD_INIT_MAX_SSH_KEY ||
	    !vmsup_cloud_init_check_ssh_key(public, g_strstrip(contents), NULL)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("The SSH key '%s' of vmsupd is missing or not a public key; remove "
			      "'%s' and its .pub file, and vmsupd makes a new pair"),
			    public,
			    identity);
		return NULL;
	}
	return g_steal_pointer(&contents);
}

static gboolean
vmsup_vm_seed_write(const gchar *path, const gchar *contents, gint mode, GError **error)
{
	g_autoptr(GError) error_local = NULL;

	if (g_file_set_contents_full(path,
				     contents,
				     -1,
				     G_FILE_SET_CONTENTS_CONSISTENT,
				     mode,
				     &error_local) &&
	    g_chmod(path, mode) == 0)
		return TRUE;
	if (error_local == NULL)
		g_set_error_literal(&error_local,
				    G_FILE_ERROR,
				    g_file_error_from_errno(errno),
				    g_strerror(errno));
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Cannot write '%s': %s; check --state-dir"),
		    path,
		    error_local->message);
	return FALSE;
}

static gboolean
vmsup_vm_seed_make_image(const gchar *guest_dir,
			 const VmsupVmDef *def,
			 const gchar *owner_key,
			 GError **error)
{
	g_autofree gchar *seed = g_build_filename(guest_dir, VMSUP_VM_SEED_IMAGE, NULL);
	g_autofree gchar *tmp = g_strconcat(seed, ".new", NULL);
	g_autofree gchar *meta_path = g_build_filename(guest_dir, "meta-data", NULL);
	g_autofree gchar *user_path = g_build_filename(guest_dir, "user-data", NULL);
	g_autofree gchar *meta = vmsup_cloud_init_meta_data(def->name, def->created);
	g_autoptr(GStrvBuilder) keys = g_strv_builder_new();
	g_auto(GStrv) key_list = NULL;
	g_autofree gchar *user = NULL;
	g_autofree gchar *mkfs = NULL;
	g_autofree gchar *mcopy = NULL;
	g_autofree gchar *size = g_strdup_printf("%u", (guint)VMSUP_VM_SEED_SIZE_KIB);
	gboolean ok;

	if (g_file_test(seed, G_FILE_TEST_IS_REGULAR))
		return TRUE;
	mkfs = vmsup_vm_seed_find_tool("mkfs.vfat", "dosfstools", error);
	if (mkfs == NULL)
		return FALSE;
	mcopy = vmsup_vm_seed_find_tool("mcopy", "mtools", error);
	if (mcopy == NULL)
		return FALSE;
	g_strv_builder_add(keys, owner_key);
	if (def->ssh_keys != NULL)
		g_strv_builder_addv(keys, (const gchar **)def->ssh_keys);
	key_list = g_strv_builder_end(keys);
	user = vmsup_cloud_init_user_data((const gchar *const *)key_list, def->user_data);
	if (!vmsup_vm_seed_write(meta_path, meta, 0600, error) ||
	    !vmsup_vm_seed_write(user_path, user, 0600, error))
		return FALSE;
	g_unlink(tmp);
	{
		const gchar *mkfs_argv[] = {mkfs, "-C", "-n", "CIDATA", tmp, size, NULL};
		const gchar *mcopy_argv[] = {mcopy, "-i", tmp, meta_path, user_path, "::/", NULL};
		ok = vmsup_vm_seed_run(mkfs_argv, error) && vmsup_vm_seed_run(mcopy_argv, error);
	}
	g_unlink(meta_path);
	g_unlink(user_path);
	if (ok && g_rename(tmp, seed) != 0) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot write '%s': %s; check --state-dir"),
			    seed,
			    g_strerror(errno));
		ok = FALSE;
	}
	if (!ok)
		g_unlink(tmp);
	return ok;
}

static gboolean
vmsup_vm_seed_copy_vars(const gchar *guest_dir, GError **error)
{
	g_autofree gchar *vars = g_build_filename(guest_dir, VMSUP_VM_SEED_VARS, NULL);
	g_autofree gchar *contents = NULL;
	g_autoptr(GError) error_local = NULL;
	gsize length = 0;

	if (g_file_test(vars, G_FILE_TEST_IS_REGULAR))
		return TRUE;
	if (!g_file_get_contents(vmsup_vm_seed_ovmf_vars(), &contents, &length, &error_local)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot read OVMF's variable store: %s; install the package "
			      "'ovmf', or create the VM with --firmware bios"),
			    error_local->message);
		return FALSE;
	}
	if (!g_file_set_contents_full(vars,
				      contents,
				      (gssize)length,
				      G_FILE_SET_CONTENTS_CONSISTENT,
				      0600,
				      &error_local)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot write '%s': %s; check --state-dir"),
			    vars,
			    error_local->message);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmsup_vm_seed_prepare(const gchar *state_dir,
		      const gchar *guest_dir,
		      const VmsupVmDef *def,
		      GError **error)
{
	g_autofree gchar *owner_key = NULL;

	g_return_val_if_fail(def != NULL && def->image != NULL, FALSE);
	/* known_hosts in it is read by the owner's ssh: the directory lets others through */
	if (!vmsup_vm_seed_mkdir(guest_dir, 0755, error))
		return FALSE;
	owner_key = vmsup_vm_seed_owner_key(state_dir, def->owner_uid, error);
	if (owner_key == NULL || !vmsup_vm_seed_make_image(guest_dir, def, owner_key, error))
		return FALSE;
	if (g_strcmp0(def->firmware, "uefi") == 0 && !vmsup_vm_seed_copy_vars(guest_dir, error))
		return FALSE;
	return TRUE;
}

gchar *
vmsup_vm_seed_prepare_bundled(const gchar *state_dir,
			      const gchar *guest_dir,
			      const VmsupVmDef *def,
			      GError **error)
{
	g_autofree gchar *owner_key = NULL;
	g_autofree gchar *pinned = g_build_filename(guest_dir, VMSUP_VM_SEED_HOST_KEYS, NULL);
	g_autofree gchar *known = g_build_filename(guest_dir, VMSUP_VM_SEED_KNOWN_HOSTS, NULL);
	g_auto(GStrv) fields = NULL;

	if (!vmsup_vm_seed_mkdir(guest_dir, 0755, error))
		return NULL;
	owner_key = vmsup_vm_seed_owner_key(state_dir, def->owner_uid, error);
	if (owner_key == NULL)
		return NULL;
	g_unlink(pinned);
	g_unlink(known);
	/* checked to be a key when read: "TYPE BASE64 [COMMENT]" */
	fields = g_strsplit_set(g_strstrip(owner_key), " \t", 3);
	return g_strdup_printf("vmsup.ssh_key=%s:%s", fields[0], fields[1]);
}

/* the host keys pinned for the guest, pinned now when cloud-init has printed them */
static GStrv
vmsup_vm_seed_host_keys(const gchar *guest_dir, const gchar *console_log)
{
	g_autofree gchar *pinned = g_build_filename(guest_dir, VMSUP_VM_SEED_HOST_KEYS, NULL);
	g_autofree gchar *contents = NULL;
	g_autofree gchar *joined = NULL;
	g_autoptr(GMappedFile) console = NULL;
	g_auto(GStrv) keys = NULL;

	if (g_file_get_contents(pinned, &contents, NULL, NULL)) {
		keys = vmsup_cloud_init_parse_host_keys(contents, strlen(contents));
		if (keys != NULL)
			return g_steal_pointer(&keys);
	}
	console = g_mapped_file_new(console_log, FALSE, NULL);
	/* an empty file maps to no contents at all */
	if (console == NULL || g_mapped_file_get_length(console) == 0)
		return NULL;
	keys = vmsup_cloud_init_parse_host_keys(
	    g_mapped_file_get_contents(console),
	    MIN(g_mapped_file_get_length(console), VMSUP_VM_SEED_CONSOLE_MAX));
	if (keys == NULL)
		return NULL;
	/* kept in the form it was read in, so reading it again takes the same path */
	joined = g_strjoinv("\n", keys);
	g_free(contents);
	contents = g_strdup_printf("-----BEGIN SSH HOST KEY KEYS-----\n%s\n"
				   "-----END SSH HOST KEY KEYS-----\n",
				   joined);
	if (!vmsup_vm_seed_write(pinned, contents, 0644, NULL))
		g_warning("Cannot pin the host keys of the guest in '%s'", pinned);
	return g_steal_pointer(&keys);
}

JsonObject *
vmsup_vm_seed_ssh_info(const gchar *state_dir,
		       const gchar *guest_dir,
		       const gchar *console_log,
		       const VmsupVmDef *def,
		       guint16 port,
		       GError **error)
{
	g_autoptr(JsonObject) result = json_object_new();
	g_autofree gchar *identity = vmsup_vm_seed_identity_file(state_dir, def->owner_uid);
	g_autofree gchar *known = g_build_filename(guest_dir, VMSUP_VM_SEED_KNOWN_HOSTS, NULL);
	g_auto(GStrv) keys = vmsup_vm_seed_host_keys(guest_dir, console_log);
	gboolean ready = FALSE;

	if (keys != NULL) {
		g_autoptr(GString) lines = g_string_new(NULL);
		g_autofree gchar *current = NULL;
		for (guint i = 0; keys[i] != NULL; i++)
			g_string_append_printf(lines, "[127.0.0.1]:%u %s\n", port, keys[i]);
		/* the port changes with every start: written again when it did */
		ready = g_file_get_contents(known, &current, NULL, NULL) &&
			g_strcmp0(current, lines->str) == 0;
		if (!ready)
			ready = vmsup_vm_seed_write(known, lines->str, 0644, error);
		if (!ready)
			return NULL;
	}
	json_object_set_string_member(result, "host", "127.0.0.1");
	json_object_set_int_member(result, "port", port);
	/* the bundled guest has no users but root */
	json_object_set_string_member(result,
				      "user",
				      vmsup_vm_def_is_bundled_guest(def) ? "root"
									 : VMSUP_CLOUD_INIT_USER);
	json_object_set_string_member(result, "identity_file", identity);
	json_object_set_string_member(result, "known_hosts_file", known);
	json_object_set_boolean_member(result, "ready", ready);
	return g_steal_pointer(&result);
}
