/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-qemu-process.h"
#include "vmsup-vm-def.h"

G_BEGIN_DECLS

/*
 * Everything @def has QEMU open, opened now for its start and put into
 * @config as descriptors, with the identity QEMU runs as (config->run_as):
 * kernel, initrd and image chain as the VM's owner (the bundled guest's
 * files as the daemon), the VM's own disk read-write by the daemon, the
 * share as the owner. A file QEMU's own uid could not reopen (kernel,
 * initrd, share of a VM of root's, run as VMSUP_QEMU_USER) is refused
 * unless it is the share, which that user is let into. FAILED_PRECONDITION
 * naming the file and what to do; @config is left as it was.
 */
gboolean
vmsup_vm_files_open(const VmsupVmDef *def, VmsupQemuConfig *config, GError **error);

/*
 * The guest files of a VM made from an image, from @guest_dir (made by
 * vmsup_vm_seed_prepare()): the seed read-only, and for UEFI the firmware
 * read-only and the VM's variable store read-write, into @config.
 */
gboolean
vmsup_vm_files_open_guest(const VmsupVmDef *def,
			  const gchar *guest_dir,
			  VmsupQemuConfig *config,
			  GError **error);

/* removes @path and all under it; plain files and directories only, symlinks removed, never
 * followed */
void
vmsup_vm_files_remove_tree(const gchar *path);

/* tests only: called once a start's files are all open, before QEMU is spawned */
typedef void (*VmsupVmFilesOpenedHook)(const VmsupVmDef *def, gpointer user_data);
void
vmsup_vm_files_set_opened_hook(VmsupVmFilesOpenedHook hook, gpointer user_data);

G_END_DECLS
