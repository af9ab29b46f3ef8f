/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-accel.h"

G_BEGIN_DECLS

/*
 * Does KVM run guest code here, and fast enough? Runs the probe guest
 * (vmsup-accel-guest.h) under `-accel kvm -cpu host` and, at the same time,
 * under TCG as the reference. KVM counts only when its guest reports the
 * right result through isa-debug-exit within VMSUP_ACCEL_PROBE_SLACK times
 * the TCG run's time (when that succeeded) and within
 * VMSUP_ACCEL_PROBE_BOUND_MS in any case. Decides as soon as the answer is
 * known, and completes only once both QEMUs are reaped. Never fails: the
 * result is KVM or TCG, with a human reason ("KVM usable: ..." /
 * "KVM probe failed: ...; using TCG" / "KVM slower than TCG: ...; using TCG").
 */
#define VMSUP_ACCEL_PROBE_BOUND_MS 2000
#define VMSUP_ACCEL_PROBE_SLACK 2

void
vmsup_accel_probe_async(const gchar *qemu_binary,
			GCancellable *cancellable,
			GAsyncReadyCallback callback,
			gpointer user_data);
VmsupAccel
vmsup_accel_probe_finish(GAsyncResult *res, gchar **out_reason);

G_END_DECLS
