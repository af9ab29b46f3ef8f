/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
	VMSUP_ACCEL_AUTO,
	VMSUP_ACCEL_KVM,
	VMSUP_ACCEL_TCG,
} VmsupAccel;

const gchar *
vmsup_accel_to_string(VmsupAccel accel);

/* "auto", "kvm", "tcg"; FALSE on anything else */
gboolean
vmsup_accel_from_string(const gchar *str, VmsupAccel *out_accel);

/*
 * Is KVM able to run a vCPU here? Starts `@qemu_binary -accel kvm -cpu host
 * -S` paused and asks it one QMP command (see the guest notes: /dev/kvm can
 * open yet be unusable). Never fails: the result is KVM or TCG, with a
 * human reason ("KVM usable" / "KVM probe failed: ... ; using TCG").
 */
void
vmsup_accel_probe_async(const gchar *qemu_binary,
			GCancellable *cancellable,
			GAsyncReadyCallback callback,
			gpointer user_data);
VmsupAccel
vmsup_accel_probe_finish(GAsyncResult *res, gchar **out_reason);

G_END_DECLS
