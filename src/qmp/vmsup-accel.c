/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The accelerators a VM can run with, by the names QEMU and the configuration use. */

#include "config.h"

#include "vmsup-accel.h"

const gchar *
vmsup_accel_to_string(VmsupAccel accel)
{
	switch (accel) {
	case VMSUP_ACCEL_KVM:
		return "kvm";
	case VMSUP_ACCEL_TCG:
		return "tcg";
	case VMSUP_ACCEL_AUTO:
	default:
		return "auto";
	}
}

gboolean
vmsup_accel_from_string(const gchar *str, VmsupAccel *out_accel)
{
	VmsupAccel accel;

	if (g_strcmp0(str, "auto") == 0)
		accel = VMSUP_ACCEL_AUTO;
	else if (g_strcmp0(str, "kvm") == 0)
		accel = VMSUP_ACCEL_KVM;
	else if (g_strcmp0(str, "tcg") == 0)
		accel = VMSUP_ACCEL_TCG;
	else
		return FALSE;
	if (out_accel != NULL)
		*out_accel = accel;
	return TRUE;
}
