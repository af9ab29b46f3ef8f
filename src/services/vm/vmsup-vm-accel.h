/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-accel.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_VM_ACCEL (vmsup_vm_accel_get_type())
G_DECLARE_FINAL_TYPE(VmsupVmAccel, vmsup_vm_accel, VMSUP, VM_ACCEL, GObject)

/*
 * The accelerator every VM of a daemon runs with, decided once: @configured,
 * or probed with @qemu_binary (NULL: $VMSUP_QEMU or PATH) when it is "auto".
 * @cancellable (nullable) ends a probe under way.
 *
 * Signals:
 *   "decided": void (self, gpointer) — the accelerator is known.
 */
VmsupVmAccel *
vmsup_vm_accel_new(VmsupAccel configured, const gchar *qemu_binary, GCancellable *cancellable);

void
vmsup_vm_accel_ensure_async(VmsupVmAccel *self,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data);
gboolean
vmsup_vm_accel_ensure_finish(VmsupVmAccel *self, GAsyncResult *res, GError **error);

gboolean
vmsup_vm_accel_is_known(VmsupVmAccel *self);

/* the decided accelerator and why; the configured one ("not decided yet") before */
VmsupAccel
vmsup_vm_accel_get(VmsupVmAccel *self, const gchar **out_reason);

G_END_DECLS
