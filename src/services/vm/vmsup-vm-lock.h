/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define VMSUP_TYPE_VM_LOCK (vmsup_vm_lock_get_type())
G_DECLARE_FINAL_TYPE(VmsupVmLock, vmsup_vm_lock, VMSUP, VM_LOCK, GObject)

/*
 * Per-VM serialization on the main loop: one holder per name, waiters
 * granted in FIFO order, different names independent. A waiter whose
 * cancellable fires leaves the queue with G_IO_ERROR_CANCELLED; a grant
 * always completes in a later main-loop iteration than the unlock.
 */
VmsupVmLock *
vmsup_vm_lock_new(void);

void
vmsup_vm_lock_lock_async(VmsupVmLock *self,
			 const gchar *name,
			 GCancellable *cancellable,
			 GAsyncReadyCallback callback,
			 gpointer user_data);
/* the result is a GTask returning a boolean: finishing needs no lock object */
gboolean
vmsup_vm_lock_lock_finish(GAsyncResult *res, GError **error);

/* hands the lock to the next waiter, if any */
void
vmsup_vm_lock_unlock(VmsupVmLock *self, const gchar *name);

gboolean
vmsup_vm_lock_is_locked(VmsupVmLock *self, const gchar *name);
/* waiters queued behind the holder */
guint
vmsup_vm_lock_get_n_waiters(VmsupVmLock *self, const gchar *name);

G_END_DECLS
