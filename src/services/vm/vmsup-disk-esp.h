/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Whether the disk image on @fd (qcow2 by its magic, else raw) has a GPT with
 * an EFI system partition, read from its first 64 KiB: the GPT header at
 * LBA 1 and its partition entries (512-byte sectors). A qcow2 is read
 * through its first cluster only, uncompressed and allocated in the image
 * itself; anything else (unreadable, compressed, in a backing file) says
 * FALSE, which boots BIOS as before.
 */
gboolean
vmsup_disk_esp_probe(gint fd);

G_END_DECLS
