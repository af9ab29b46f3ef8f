/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-dbus-generated.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_DBUS_VM_SKELETON (vmsup_dbus_vm_skeleton_get_type())
G_DECLARE_FINAL_TYPE(VmsupDbusVmSkeleton,
		     vmsup_dbus_vm_skeleton,
		     VMSUP,
		     DBUS_VM_SKELETON,
		     VmsupDBusVM1Skeleton)

/* the VM1 interface of VM @name, owned by @owner_uid */
VmsupDbusVmSkeleton *
vmsup_dbus_vm_skeleton_new(const gchar *name, guint32 owner_uid);

guint32
vmsup_dbus_vm_skeleton_get_owner(VmsupDbusVmSkeleton *self);
void
vmsup_dbus_vm_skeleton_set_owner(VmsupDbusVmSkeleton *self, guint32 owner_uid);

/*
 * May the caller of @invocation (already let through by the authorize
 * handler, which recorded its uid) see VM @name owned by @owner_uid? A caller
 * bound by the owner rule sees only its own VMs; the error says whose it is.
 */
gboolean
vmsup_dbus_vm_visible_to(GDBusMethodInvocation *invocation,
			 const gchar *name,
			 guint32 owner_uid,
			 GError **error);

G_END_DECLS
