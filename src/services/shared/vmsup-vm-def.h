/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "vmsup-caller.h"

G_BEGIN_DECLS

/* limits on what one request may ask for */
#define VMSUP_VM_DEF_MAX_CPUS 64
#define VMSUP_VM_DEF_MIN_MEMORY_MIB 16
#define VMSUP_VM_DEF_MAX_MEMORY_MIB (1024 * 1024)
#define VMSUP_VM_DEF_MAX_DISK_GIB 16384
#define VMSUP_VM_DEF_MAX_FORWARDS 32
#define VMSUP_VM_DEF_MAX_STRING 4096
/* cgroup limits: a CPU quota in percent of one CPU, a memory cap for the whole QEMU */
#define VMSUP_VM_DEF_MAX_CPU_QUOTA_PERCENT (100 * VMSUP_VM_DEF_MAX_CPUS)
#define VMSUP_VM_DEF_MAX_MEMORY_MAX_MIB (2 * VMSUP_VM_DEF_MAX_MEMORY_MIB)
/* the least a memory cap leaves QEMU besides the guest's memory */
#define VMSUP_VM_DEF_QEMU_OVERHEAD_MIB 64

#define VMSUP_VM_DEF_DEFAULT_CPUS 1
#define VMSUP_VM_DEF_DEFAULT_MEMORY_MIB 256
/*
 * The bundled guest's kernel command line. cryptomgr.notests skips the
 * self-tests of the kernel's crypto algorithms, which run the same tested
 * code again on every boot: half a second of a three-second boot under TCG.
 */
#define VMSUP_VM_DEF_BUNDLED_CMDLINE "console=ttyS0 quiet panic=-1 cryptomgr.notests"

/* what vm.create defines and vm.set changes; all strings owned */
typedef struct {
	gchar *name;
	guint cpus;
	guint memory_mib;
	gchar *kernel;   /* absolute path or NULL */
	gchar *initrd;   /* absolute path or NULL */
	gchar *cmdline;  /* NULL: none */
	gchar *image;    /* base image the disk overlays, or NULL */
	gchar *disk;     /* the VM's own qcow2, or NULL when it has none */
	guint disk_gib;  /* 0: the size of @image */
	GArray *forward; /* of guint16 guest ports; NULL when none */
	/* host dir shared with 9p tag "workspace", or NULL; internal: set by workspaces only */
	gchar *share_dir;
	gboolean auto_stop;
	gboolean autostart;
	guint cpu_quota_percent; /* of one CPU (150: one and a half); 0: no quota */
	guint memory_max_mib;    /* cap on QEMU's memory, guest's included; 0: none */
	gint64 created;          /* unix time, seconds */
	/*
	 * who created the VM: the caller's uid, the daemon's own for a
	 * definition made without a caller, and 0 (root) for a definition
	 * stored before the field existed
	 */
	guint32 owner_uid;
	/* VMs with an image: "uefi" or "bios" (NULL: bios, a definition older than the field) */
	gchar *firmware;
	GStrv ssh_keys;   /* public key lines authorized in the guest besides the owner's; NULL */
	gchar *user_data; /* the caller's #cloud-config, or NULL */
} VmsupVmDef;

VmsupVmDef *
vmsup_vm_def_new(const gchar *name);
VmsupVmDef *
vmsup_vm_def_copy(const VmsupVmDef *def);
void
vmsup_vm_def_free(VmsupVmDef *def);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupVmDef, vmsup_vm_def_free)

/*
 * From vm.create params: type and range checks of every member; members in
 * @ignore (e.g. "start", "wait") are skipped, any other unknown member is an
 * error. The name is not checked here: callers validate it first. @caller
 * (nullable: nobody asks, nothing is checked and the daemon's own user owns
 * it) becomes the owner, and the files are checked for it with
 * vmsup_vm_def_check_caller().
 */
VmsupVmDef *
vmsup_vm_def_new_from_params(JsonObject *params,
			     const gchar *const *ignore,
			     const VmsupCaller *caller,
			     GError **error);

/* the settable fields of vm.set */
extern const gchar *const vmsup_vm_def_settable_fields[];
/* fields that only take effect when QEMU starts again */
gboolean
vmsup_vm_def_field_needs_restart(const gchar *field);
/* compares one of the settable fields */
gboolean
vmsup_vm_def_field_equal(const VmsupVmDef *a, const VmsupVmDef *b, const gchar *field);
/* the fields of @def that differ from @running and only take effect at the next start */
GStrv
vmsup_vm_def_pending_restart(const VmsupVmDef *def, const VmsupVmDef *running);

/*
 * Applies vm.set @fields (all members other than @ignore) to @def: all or
 * nothing. The VM as it would be is checked for @caller (nullable: nothing
 * is checked), its old files too. @out_changed: the names of the fields
 * whose value changed.
 */
gboolean
vmsup_vm_def_apply(VmsupVmDef *def,
		   JsonObject *fields,
		   const gchar *const *ignore,
		   const VmsupCaller *caller,
		   GStrv *out_changed,
		   GError **error);

/* the stored form (also the definition part of vm.get) */
JsonObject *
vmsup_vm_def_to_json(const VmsupVmDef *def);
/* from the stored form; every value validated as for vm.create */
VmsupVmDef *
vmsup_vm_def_new_from_json(JsonObject *object, GError **error);

/* cross-field checks (initrd needs a kernel, ...) */
gboolean
vmsup_vm_def_validate(const VmsupVmDef *def, GError **error);

/*
 * Host files a VM reads and host directories it shares are the policy's
 * to allow (vmsup-policy.h); they are opened as the VM's owner
 * (vmsup-owner-open.h) and QEMU is given the descriptor.
 */

/*
 * Whether the rules for clients bind @uid: it is neither root nor the
 * daemon's own user. Such a caller shares only what it owns, names only
 * files it could read, and acts only on its own VMs and workspaces.
 */
gboolean
vmsup_vm_def_uid_is_restricted(guint32 uid);

/*
 * Everything @def has QEMU read or share on @uid's behalf, as
 * vmsup_policy_check_host_files() decides. VMService checks at create and
 * set for the caller and at every start for the VM's owner_uid.
 */
/* whether @def boots the bundled guest (its kernel and initramfs, no image) */
gboolean
vmsup_vm_def_is_bundled_guest(const VmsupVmDef *def);

gboolean
vmsup_vm_def_check_caller(const VmsupVmDef *def, guint32 uid, GError **error);

/* ISO 8601 UTC, e.g. "2026-11-26T10:00:00Z" */
gchar *
vmsup_vm_def_format_time(gint64 unix_seconds);

G_END_DECLS
