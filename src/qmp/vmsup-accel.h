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

G_END_DECLS
