/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host files of a VM's start, opened once and handed to QEMU by
 * descriptor, so no file is checked by one name and opened by another.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "vmsup-disk-chain.h"
#include "vmsup-error.h"
#include "vmsup-owner-open.h"
#include "vmsup-paths.h"
#include "vmsup-policy.h"
#include "vmsup-run-as.h"
#include "vmsup-share-access.h"
#include "vmsup-vm-files.h"
#include "vmsup-vm-seed.h"

typedef struct {
	gint kernel_fd;
	gint initrd_fd;
	gint share_fd;
	GPtrArray *chain;
	VmsupRunAs *qemu_as;
} VmsupVmFiles;

static void
vmsup_vm_files_clear(VmsupVmFiles *files)
{
	if (files->kernel_fd >= 0)
		close(files->kernel_fd);
	if (files->initrd_fd >= 0)
		close(files->initrd_fd);
	if (files->share_fd >= 0)
		close(files->share_fd);
	g_clear_pointer(&files->chain, g_ptr_array_unref);
	g_clear_pointer(&files->qemu_as, vmsup_run_as_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmsupVmFiles, vmsup_vm_files_clear)

static VmsupVmFilesOpenedHook vmsup_vm_files_opened_hook;
static gpointer vmsup_vm_files_opened_hook_data;

void
vmsup_vm_files_set_opened_hook(VmsupVmFilesOpenedHook hook, gpointer user_data)
{
	vmsup_vm_files_opened_hook = hook;
	vmsup_vm_files_opened_hook_data = user_data;
}

/*
 * QEMU 7.2 opens -kernel and -initrd by name: /proc/self/fd/N reopens the
 * very inode, but checked against QEMU's uid; so that uid is asked now
 */
static gboolean
vmsup_vm_files_qemu_can_reopen(const VmsupRunAs *qemu_as,
			       gint fd,
			       const gchar *field,
			       const gchar *path,
			       GError **error)
{
	g_autofree gchar *self_path = g_strdup_printf("/proc/self/fd/%d", fd);
	gint reopened;

	if (qemu_as == NULL)
		return TRUE;
	reopened = vmsup_run_as_open(qemu_as, self_path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (reopened >= 0) {
		close(reopened);
		return TRUE;
	}
	g_set_error(
	    error,
	    VMSUP_ERROR,
	    VMSUP_ERROR_FAILED_PRECONDITION,
	    /* TRANSLATORS: The kernel '/root/vmlinuz' cannot be read by the user
	       'vmsup-qemu', which runs QEMU for this VM: ... */
	    _("The %s '%s' cannot be read by the user '%s', which runs QEMU for this VM: "
	      "%s; QEMU reads it as that user: make it readable to others (chmod o+r), "
	      "or to the group '%s' (chgrp %s, chmod g+r), or name a copy that user may read"),
	    field,
	    path,
	    qemu_as->name,
	    g_strerror(errno),
	    qemu_as->name,
	    qemu_as->name);
	return FALSE;
}

static gint
vmsup_vm_files_open_boot(const VmsupVmDef *def,
			 const VmsupRunAs *qemu_as,
			 const gchar *field,
			 const gchar *path,
			 GError **error)
{
	/* the bundled guest's files are the daemon's, whoever the VM's owner */
	guint32 uid = vmsup_paths_is_guest_file(path) ? 0 : def->owner_uid;
	gint fd = vmsup_owner_open_file(field, path, uid, error);

	if (fd >= 0 && qemu_as != NULL && qemu_as->uid != uid &&
	    !vmsup_vm_files_qemu_can_reopen(qemu_as, fd, field, path, error)) {
		close(fd);
		return -1;
	}
	return fd;
}

static gint
vmsup_vm_files_open_share(const VmsupVmDef *def, const VmsupRunAs *qemu_as, GError **error)
{
	g_autofree gchar *shown = g_strescape(def->share_dir, NULL);
	VmsupCaller owner = vmsup_caller_for_uid(def->owner_uid);
	gint fd = vmsup_policy_open_share(&owner, def->share_dir, error);

	if (fd < 0)
		return -1;
	/* a VM of root's: its QEMU runs as the system user, which is let in by an ACL entry */
	if (qemu_as != NULL && qemu_as->uid != def->owner_uid &&
	    !vmsup_share_access_grant(fd, shown, qemu_as->uid, error)) {
		close(fd);
		return -1;
	}
	return fd;
}

static GPtrArray *
vmsup_vm_files_open_disk(const VmsupVmDef *def, GError **error)
{
	g_autoptr(VmsupRunAs) owner_as = vmsup_run_as_for_owner(def->owner_uid);
	gint fd;

	/* the VM's own disk is the daemon's: read-write, and never through a link */
	fd = open(def->disk, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot open the disk '%s' of VM '%s': %s; restore it, or delete the "
			      "VM and create it again"),
			    def->disk,
			    def->name,
			    g_strerror(saved_errno));
		return NULL;
	}
	/* and what it names, down the chain, for the owner */
	return vmsup_disk_chain_open(def->disk, fd, owner_as, def->owner_uid, error);
}

gboolean
vmsup_vm_files_open(const VmsupVmDef *def, VmsupQemuConfig *config, GError **error)
{
	g_auto(VmsupVmFiles) files = {.kernel_fd = -1, .initrd_fd = -1, .share_fd = -1};
	g_autoptr(GError) error_local = NULL;

	g_return_val_if_fail(def != NULL, FALSE);
	g_return_val_if_fail(config != NULL, FALSE);

	files.qemu_as = vmsup_run_as_for_qemu(def->owner_uid, &error_local);
	if (error_local != NULL) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	if (def->kernel != NULL) {
		files.kernel_fd =
		    vmsup_vm_files_open_boot(def, files.qemu_as, "kernel", def->kernel, error);
		if (files.kernel_fd < 0)
			return FALSE;
	}
	if (def->initrd != NULL) {
		files.initrd_fd =
		    vmsup_vm_files_open_boot(def, files.qemu_as, "initrd", def->initrd, error);
		if (files.initrd_fd < 0)
			return FALSE;
	}
	if (def->disk != NULL) {
		files.chain = vmsup_vm_files_open_disk(def, error);
		if (files.chain == NULL)
			return FALSE;
		/* the top node is the one QEMU writes */
		if (g_strcmp0(((VmsupQemuDiskNode *)g_ptr_array_index(files.chain, 0))->format,
			      "qcow2") != 0) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("The disk '%s' of VM '%s' is not a qcow2 image; delete the "
				      "VM and create it again"),
				    def->disk,
				    def->name);
			return FALSE;
		}
	}
	if (def->share_dir != NULL) {
		files.share_fd = vmsup_vm_files_open_share(def, files.qemu_as, error);
		if (files.share_fd < 0)
			return FALSE;
	}

	if (vmsup_vm_files_opened_hook != NULL)
		vmsup_vm_files_opened_hook(def, vmsup_vm_files_opened_hook_data);
	config->kernel_fd = files.kernel_fd;
	config->initrd_fd = files.initrd_fd;
	config->share_fd = files.share_fd;
	config->disk_chain = g_steal_pointer(&files.chain);
	config->run_as = g_steal_pointer(&files.qemu_as);
	files.kernel_fd = files.initrd_fd = files.share_fd = -1;
	return TRUE;
}

/* a file of the daemon's own for QEMU, never through a link */
static gint
vmsup_vm_files_open_own(const VmsupVmDef *def, const gchar *path, gint flags, GError **error)
{
	gint fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot open '%s' for VM '%s': %s; install the package 'ovmf' for "
			      "UEFI, or delete the VM and create it again"),
			    path,
			    def->name,
			    g_strerror(saved_errno));
	}
	return fd;
}

gboolean
vmsup_vm_files_open_guest(const VmsupVmDef *def,
			  const gchar *guest_dir,
			  VmsupQemuConfig *config,
			  GError **error)
{
	g_autofree gchar *seed = g_build_filename(guest_dir, VMSUP_VM_SEED_IMAGE, NULL);
	g_autofree gchar *vars = g_build_filename(guest_dir, VMSUP_VM_SEED_VARS, NULL);
	gint seed_fd;
	gint code_fd = -1;
	gint vars_fd = -1;

	g_return_val_if_fail(config->seed_fd < 0 && config->firmware_code_fd < 0, FALSE);
	seed_fd = vmsup_vm_files_open_own(def, seed, O_RDONLY, error);
	if (seed_fd < 0)
		return FALSE;
	if (g_strcmp0(def->firmware, "uefi") == 0) {
		code_fd = vmsup_vm_files_open_own(def, vmsup_vm_seed_ovmf_code(), O_RDONLY, error);
		if (code_fd >= 0)
			vars_fd = vmsup_vm_files_open_own(def, vars, O_RDWR, error);
		if (vars_fd < 0) {
			if (code_fd >= 0)
				close(code_fd);
			close(seed_fd);
			return FALSE;
		}
	}
	config->seed_fd = seed_fd;
	config->firmware_code_fd = code_fd;
	config->firmware_vars_fd = vars_fd;
	return TRUE;
}

void
vmsup_vm_files_remove_tree(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *basename;

	while (dir != NULL && (basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, basename, NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
			vmsup_vm_files_remove_tree(child);
		else if (g_unlink(child) != 0 && errno != ENOENT)
			g_debug("cannot remove '%s': %s", child, g_strerror(errno));
	}
	if (g_rmdir(path) != 0 && errno != ENOENT)
		g_warning("Cannot remove '%s': %s, ignoring", path, g_strerror(errno));
}
