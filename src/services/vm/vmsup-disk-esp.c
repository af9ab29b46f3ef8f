/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Finds an EFI system partition in a disk image, so a VM made from one
 * boots UEFI by default: the image's GPT, read here without QEMU.
 */

#include "config.h"

#include <string.h>
#include <unistd.h>

#include "vmsup-disk-esp.h"

#define VMSUP_DISK_ESP_SECTOR 512
/* the GPT header and its usual 128 entries of 128 bytes fit in the first 17 KiB */
#define VMSUP_DISK_ESP_READ (64 * 1024)
#define VMSUP_QCOW2_OFFSET_MASK G_GUINT64_CONSTANT(0x00fffffffffffe00)
#define VMSUP_QCOW2_COMPRESSED (G_GUINT64_CONSTANT(1) << 62)

/* C12A7328-F81F-11D2-BA4B-00A0C93EC93B as GPT stores it */
#define VMSUP_DISK_ESP_GUID "\x28\x73\x2a\xc1\x1f\xf8\xd2\x11\xba\x4b\x00\xa0\xc9\x3e\xc9\x3b"

static gboolean
vmsup_disk_esp_pread(gint fd, guint8 *buf, gsize len, guint64 offset)
{
	gsize done = 0;

	while (done < len) {
		gssize n = pread(fd, buf + done, len - done, (off_t)(offset + done));
		if (n <= 0)
			return FALSE;
		done += (gsize)n;
	}
	return TRUE;
}

static guint64
vmsup_disk_esp_be64(const guint8 *p)
{
	guint64 v = 0;
	for (guint i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static guint32
vmsup_disk_esp_be32(const guint8 *p)
{
	return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

static guint64
vmsup_disk_esp_le64(const guint8 *p)
{
	guint64 v = 0;
	for (guint i = 8; i > 0; i--)
		v = (v << 8) | p[i - 1];
	return v;
}

static guint32
vmsup_disk_esp_le32(const guint8 *p)
{
	return ((guint32)p[3] << 24) | ((guint32)p[2] << 16) | ((guint32)p[1] << 8) | p[0];
}

/* where guest byte 0 of a qcow2 lies in the file: its first cluster, or 0 when not plainly there */
static guint64
vmsup_disk_esp_qcow2_first_cluster(gint fd)
{
	guint8 header[104];
	guint8 entry[8];
	guint32 cluster_bits;
	guint64 l1_offset;
	guint64 l2_offset;
	guint64 cluster;

	if (!vmsup_disk_esp_pread(fd, header, sizeof(header), 0) ||
	    memcmp(header, "QFI\xfb", 4) != 0)
		return 0;
	/* version 3 may say it needs what is not read here (an external data file, zstd) */
	if (vmsup_disk_esp_be32(header + 4) >= 3 && vmsup_disk_esp_be64(header + 72) != 0)
		return 0;
	cluster_bits = vmsup_disk_esp_be32(header + 20);
	/* an encrypted image (method at 32) is not read */
	if (cluster_bits < 9 || cluster_bits > 21 || vmsup_disk_esp_be32(header + 32) != 0 ||
	    vmsup_disk_esp_be32(header + 36) == 0)
		return 0;
	l1_offset = vmsup_disk_esp_be64(header + 40);
	if (!vmsup_disk_esp_pread(fd, entry, sizeof(entry), l1_offset))
		return 0;
	l2_offset = vmsup_disk_esp_be64(entry) & VMSUP_QCOW2_OFFSET_MASK;
	if (l2_offset == 0 || !vmsup_disk_esp_pread(fd, entry, sizeof(entry), l2_offset))
		return 0;
	cluster = vmsup_disk_esp_be64(entry);
	if ((cluster & VMSUP_QCOW2_COMPRESSED) != 0)
		return 0;
	/* the first cluster is at least 512 bytes: the GPT header and the entries that fit */
	return cluster & VMSUP_QCOW2_OFFSET_MASK;
}

gboolean
vmsup_disk_esp_probe(gint fd)
{
	guint8 magic[4] = {0};
	g_autofree guint8 *buf = g_malloc0(VMSUP_DISK_ESP_READ);
	guint64 base = 0;
	guint64 entries_lba;
	guint32 n_entries;
	guint32 entry_size;
	gsize avail = VMSUP_DISK_ESP_READ;

	g_return_val_if_fail(fd >= 0, FALSE);
	if (!vmsup_disk_esp_pread(fd, magic, sizeof(magic), 0))
		return FALSE;
	if (memcmp(magic, "QFI\xfb", 4) == 0) {
		guint8 header[24];
		base = vmsup_disk_esp_qcow2_first_cluster(fd);
		if (base == 0 || !vmsup_disk_esp_pread(fd, header, sizeof(header), 0))
			return FALSE;
		avail = MIN(avail, (gsize)1 << vmsup_disk_esp_be32(header + 20));
	}
	if (!vmsup_disk_esp_pread(fd, buf, avail, base))
		return FALSE;
	if (memcmp(buf + VMSUP_DISK_ESP_SECTOR, "EFI PART", 8) != 0)
		return FALSE;
	entries_lba = vmsup_disk_esp_le64(buf + VMSUP_DISK_ESP_SECTOR + 72);
	n_entries = vmsup_disk_esp_le32(buf + VMSUP_DISK_ESP_SECTOR + 80);
	entry_size = vmsup_disk_esp_le32(buf + VMSUP_DISK_ESP_SECTOR + 84);
	if (entry_size < 128 || entries_lba < 2 || entries_lba > avail / VMSUP_DISK_ESP_SECTOR)
		return FALSE;
	for (guint32 i = 0; i < n_entries; i++) {
		guint64 at = entries_lba * VMSUP_DISK_ESP_SECTOR + (guint64)i * entry_size;
		if (at + 16 > avail)
			break;
		if (memcmp(buf + at, VMSUP_DISK_ESP_GUID, 16) == 0)
			return TRUE;
	}
	return FALSE;
}
