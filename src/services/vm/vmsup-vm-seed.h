/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-vm-def.h"

G_BEGIN_DECLS

/* the files of a VM made from an image, in its guest directory */
#define VMSUP_VM_SEED_IMAGE "seed.img"
#define VMSUP_VM_SEED_VARS "OVMF_VARS.fd"
#define VMSUP_VM_SEED_HOST_KEYS "host-keys"
#define VMSUP_VM_SEED_KNOWN_HOSTS "known_hosts"
/* the owner's key pair, in <state dir>/ssh/<uid>/ */
#define VMSUP_VM_SEED_KEY_NAME "id_ed25519"
#define VMSUP_VM_SEED_SSH_PORT 22

/* OVMF from Debian's ovmf package; $VMSUP_OVMF_CODE and $VMSUP_OVMF_VARS override */
const gchar *
vmsup_vm_seed_ovmf_code(void);
const gchar *
vmsup_vm_seed_ovmf_vars(void);

/* <state_dir>/guests/<name>: the seed, the variable store, the pinned host keys */
gchar *
vmsup_vm_seed_guest_dir(const gchar *state_dir, const gchar *name);
/* <state_dir>/ssh/<uid>/id_ed25519 */
gchar *
vmsup_vm_seed_identity_file(const gchar *state_dir, guint32 uid);

/*
 * Everything a start of @def (with an image) needs in @guest_dir: the
 * owner's key pair (made with ssh-keygen at first use, the files the
 * owner's, the private one 0600), the NoCloud seed (a FAT volume labelled
 * CIDATA made with mkfs.vfat and mcopy; made once, so instance-id and keys
 * stay as they were) and, for UEFI, the copy of OVMF's variable store.
 * FAILED_PRECONDITION naming the tool or file and what to do.
 */
gboolean
vmsup_vm_seed_prepare(const gchar *state_dir,
		      const gchar *guest_dir,
		      const VmsupVmDef *def,
		      GError **error);

/*
 * For the bundled guest, which has no seed: the owner's key pair made if
 * needed, the host keys pinned at the last boot dropped (the guest makes new
 * ones at every boot and prints them on its console, as cloud-init does), and
 * the kernel argument that hands the guest the owner's public key
 * ("vmsup.ssh_key=TYPE:BASE64"; a public key, so the command line may show it).
 */
gchar *
vmsup_vm_seed_prepare_bundled(const gchar *state_dir,
			      const gchar *guest_dir,
			      const VmsupVmDef *def,
			      GError **error);

/*
 * vm.ssh_info's answer for a VM whose QEMU runs with guest port 22 at
 * @port: the host keys pinned in @guest_dir (at their first sight in
 * @console_log, cloud-init's block; never replaced after), known_hosts
 * written for @port, ready once there are keys.
 */
JsonObject *
vmsup_vm_seed_ssh_info(const gchar *state_dir,
		       const gchar *guest_dir,
		       const gchar *console_log,
		       const VmsupVmDef *def,
		       guint16 port,
		       GError **error);

G_END_DECLS
