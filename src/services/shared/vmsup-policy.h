/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-caller.h"

G_BEGIN_DECLS

/* who owns the thing named; FALSE: nothing of that name (or id) is known */
typedef gboolean (*VmsupPolicyNameOwnerFunc)(const gchar *name,
					     guint32 *out_uid,
					     gpointer user_data);
typedef gboolean (*VmsupPolicyIdOwnerFunc)(gint64 id, guint32 *out_uid, gpointer user_data);
/* every VM defined now (full) */
typedef GStrv (*VmsupPolicyNamesFunc)(gpointer user_data);

/*
 * How the policy learns owners without holding a service: lookups the
 * composition root builds over its services. A NULL lookup: nothing of
 * that kind is known (the service does not run).
 */
typedef struct {
	VmsupPolicyNameOwnerFunc vm_owner;
	VmsupPolicyIdOwnerFunc operation_owner; /* the owner of the operation's VM */
	VmsupPolicyNamesFunc vm_names;
	VmsupPolicyNameOwnerFunc workspace_owner;
	gpointer user_data;
	GDestroyNotify user_data_free; /* called once, when the policy is finalized */
} VmsupPolicyOwners;

/* the events a subscriber may be told of */
typedef enum {
	VMSUP_POLICY_EVENT_VM_CHANGED,
	VMSUP_POLICY_EVENT_VM_REMOVED,
	VMSUP_POLICY_EVENT_OPERATION_CHANGED,
} VmsupPolicyEvent;

#define VMSUP_TYPE_POLICY (vmsup_policy_get_type())
G_DECLARE_FINAL_TYPE(VmsupPolicy, vmsup_policy, VMSUP, POLICY, GObject)

/*
 * Every ownership and access decision of vmsupd. A caller the owner rule
 * binds (VmsupCaller.restricted: neither root nor the daemon's own user)
 * acts on and sees only its own VMs, operations and workspaces, is told
 * only of their events, names only host files it could read itself and
 * shares only directories it owns; everyone else is bound by nothing here.
 * @owners (nullable: nothing is known) is copied.
 */
VmsupPolicy *
vmsup_policy_new(const VmsupPolicyOwners *owners);

/*
 * May @caller act on VM @name (workspace @name, operation @id)? FALSE with
 * FAILED_PRECONDITION naming the owner when it belongs to someone else;
 * TRUE for what does not exist, which the service then reports.
 */
gboolean
vmsup_policy_check_vm(VmsupPolicy *self,
		      const VmsupCaller *caller,
		      const gchar *name,
		      GError **error);
gboolean
vmsup_policy_check_workspace(VmsupPolicy *self,
			     const VmsupCaller *caller,
			     const gchar *name,
			     GError **error);
gboolean
vmsup_policy_check_operation(VmsupPolicy *self,
			     const VmsupCaller *caller,
			     gint64 id,
			     GError **error);

/*
 * The rule itself, for whoever already holds the VM's owner (a D-Bus VM
 * object): what vmsup_policy_check_vm() decides once the owner is known.
 */
gboolean
vmsup_policy_check_vm_owner(const VmsupCaller *caller,
			    const gchar *name,
			    guint32 owner_uid,
			    GError **error);

/* whether @caller sees everything (lists, counts, events) unfiltered */
gboolean
vmsup_policy_sees_all(VmsupPolicy *self, const VmsupCaller *caller);

/* whether an entry of a list is shown to @caller: its own, or anything when it sees all */
gboolean
vmsup_policy_may_see_vm(VmsupPolicy *self, const VmsupCaller *caller, const gchar *name);
gboolean
vmsup_policy_may_see_workspace(VmsupPolicy *self, const VmsupCaller *caller, const gchar *name);
gboolean
vmsup_policy_may_see_operation(VmsupPolicy *self, const VmsupCaller *caller, gint64 id);

/*
 * Which events one subscriber is told of: everything, or for a caller the
 * owner rule binds the changes of its own VMs (those of the time it
 * subscribed and the ones it is told of later), the removal of a VM it was
 * told of, and its own operations. Keeps a ref on the policy.
 */
typedef struct _VmsupPolicySubscription VmsupPolicySubscription;

VmsupPolicySubscription *
vmsup_policy_subscribe(VmsupPolicy *self, const VmsupCaller *caller);
/* @vm_name for the VM events, @operation_id for operation-changed */
gboolean
vmsup_policy_subscription_admits(VmsupPolicySubscription *sub,
				 VmsupPolicyEvent event,
				 const gchar *vm_name,
				 gint64 operation_id);
void
vmsup_policy_subscription_free(VmsupPolicySubscription *sub);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupPolicySubscription, vmsup_policy_subscription_free)

/*
 * Host files and shares. The daemon lends its rights to nobody: what a VM
 * reads is opened as its owner, so the kernel decides whether the owner
 * may, and a caller the owner rule binds may besides share only a
 * directory it owns.
 *
 * Whether @caller may have QEMU read @kernel, @initrd and @image (each
 * nullable) and share @share_dir: for a bound caller each file is opened
 * as it and must be a regular file, and the image's backing files too; the
 * bundled guest's own files (chosen by the daemon) are excepted, and
 * nothing is checked for the daemon itself (VmsupCaller.daemon). The share
 * as vmsup_policy_check_share(). FAILED_PRECONDITION with a message saying
 * what is in the way and what to do.
 */
gboolean
vmsup_policy_check_host_files(const VmsupCaller *caller,
			      const gchar *kernel,
			      const gchar *initrd,
			      const gchar *image,
			      const gchar *share_dir,
			      GError **error);

/*
 * Whether @caller may share @path: a bound caller needs a directory it
 * owns; and for it, or whenever the daemon runs as root, @path must
 * resolve to itself (no symbolic link on the way: pass the canonical path)
 * and be a directory the caller can open. TRUE at once otherwise.
 */
gboolean
vmsup_policy_check_share(const VmsupCaller *caller, const gchar *path, GError **error);

/*
 * A host file vmsupd reads for @caller itself (the source of an image
 * import): @path (absolute, else INVALID_ARGUMENT naming @field) opened as
 * the caller, so the kernel decides, and checked to be a regular file, as
 * a VM's files are opened for its owner. Its descriptor, or -1.
 */
gint
vmsup_policy_open_host_file(const VmsupCaller *caller,
			    const gchar *field,
			    const gchar *path,
			    GError **error);

/*
 * Whether @caller may delete the stored image @name: images carry no
 * owner, so only callers the owner rule does not bind may.
 */
gboolean
vmsup_policy_check_image_removal(const VmsupCaller *caller, const gchar *name, GError **error);

/*
 * Whether @caller may build an image into the store (image.build): the
 * builder runs as vmsupd's user, from Debian's archive, into a store that
 * is everyone's, so only callers the owner rule does not bind may.
 */
gboolean
vmsup_policy_check_image_build(const VmsupCaller *caller, const gchar *name, GError **error);

/* the same checks on the directory opened as @owner (the VM's): its descriptor, or -1 */
gint
vmsup_policy_open_share(const VmsupCaller *owner, const gchar *path, GError **error);

G_END_DECLS
