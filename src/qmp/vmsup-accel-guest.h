/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-accel.h"

G_BEGIN_DECLS

/*
 * The accelerator probe's guest: a flat 64 KiB firmware image (no disk, no
 * BIOS) that fills and sums 512 KiB of RAM, runs a counted loop, checks its
 * result and reports it twice: a byte on the debug console (0xe9), then the
 * same value to isa-debug-exit (0xf4), which ends QEMU with (value << 1) | 1.
 */

/* console bytes: written first, and last with the result */
#define VMSUP_ACCEL_GUEST_MARK_START 'S'
#define VMSUP_ACCEL_GUEST_MARK_OK '*'
#define VMSUP_ACCEL_GUEST_MARK_BAD '?'

/* QEMU's exit status when the guest ran to the end: checksum right, or wrong */
#define VMSUP_ACCEL_GUEST_EXIT_OK ((VMSUP_ACCEL_GUEST_MARK_OK << 1) | 1)
#define VMSUP_ACCEL_GUEST_EXIT_BAD ((VMSUP_ACCEL_GUEST_MARK_BAD << 1) | 1)

/* the image, generated here; QEMU maps it below 4 GiB and starts at its last 16 bytes */
GBytes *
vmsup_accel_guest_image(void);

/*
 * Writes the image to <@dir>/probe.bin and returns the argv of a QEMU that
 * runs it with @accel: the argv a VM gets (vmsup_qemu_config_build_argv(),
 * so -cpu host under KVM), runtime files under <@dir>/<accel>/, plus -bios,
 * the exit device and the debug console (<@dir>/<accel>/probe.out).
 */
gchar **
vmsup_accel_guest_build_argv(const gchar *qemu_binary,
			     VmsupAccel accel,
			     const gchar *dir,
			     GError **error);

/* <@dir>/<accel>: the runtime files (qemu.log, probe.out, ...) of the run with @accel */
gchar *
vmsup_accel_guest_run_dir(const gchar *dir, VmsupAccel accel);

/* what the guest wrote on its console, under @dir for @accel ("" when nothing) */
gchar *
vmsup_accel_guest_read_console(const gchar *dir, VmsupAccel accel);

G_END_DECLS
