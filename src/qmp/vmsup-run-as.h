/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* the system user that runs the QEMU of VMs owned by root or by the daemon's own uid */
#define VMSUP_QEMU_USER "vmsup-qemu"

/*
 * An identity to act as: a uid, its primary gid and its supplementary
 * groups, as a login of that user would have them. A NULL VmsupRunAs
 * means "as the daemon itself" everywhere.
 */
typedef struct {
	uid_t uid;
	gid_t gid;
	gint n_groups;
	gid_t *groups; /* owned */
	gchar *name;   /* owned: the user name, or the uid in digits */
} VmsupRunAs;

/* @uid as its passwd entry has it (a uid without one: gid = uid, no groups) */
VmsupRunAs *
vmsup_run_as_new_for_uid(uid_t uid);
/* the user @name, or NULL with NOT_FOUND */
VmsupRunAs *
vmsup_run_as_new_for_user(const gchar *name, GError **error);
VmsupRunAs *
vmsup_run_as_copy(const VmsupRunAs *as);
void
vmsup_run_as_free(VmsupRunAs *as);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupRunAs, vmsup_run_as_free)

/*
 * Who opens a VM's files for it: the owner, unless the daemon does not run
 * as root (it can only be itself) or the owner is root or the daemon (who
 * may open anything anyway). NULL: the daemon itself.
 */
VmsupRunAs *
vmsup_run_as_for_owner(guint32 owner_uid);

/*
 * Who a VM's QEMU runs as: never root. In system mode the owner, or
 * VMSUP_QEMU_USER for VMs of root or of the daemon's uid (NOT_FOUND when
 * that user is missing); NULL in session mode, where QEMU runs as the
 * daemon's user, who is not root.
 */
VmsupRunAs *
vmsup_run_as_for_qemu(guint32 owner_uid, GError **error);

/*
 * In a forked child before exec, async-signal-safe: no new privileges,
 * the capability bounding set emptied (when root), then the groups, gid and
 * uid of @as (NULL: only the first). On failure writes why to fd 2 and
 * returns FALSE; the child must then _exit.
 */
gboolean
vmsup_run_as_drop_in_child(const VmsupRunAs *as);

/*
 * Opens @path with @flags (O_CLOEXEC is added) as @as would: a child drops
 * to @as, opens, and hands the descriptor back over a socket, so the kernel
 * alone decides. NULL @as opens directly. -1 with errno set (never EINTR).
 */
gint
vmsup_run_as_open(const VmsupRunAs *as, const gchar *path, gint flags);

G_END_DECLS
