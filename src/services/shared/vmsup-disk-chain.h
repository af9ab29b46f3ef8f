/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-qemu-process.h"
#include "vmsup-run-as.h"

G_BEGIN_DECLS

/* deeper chains are refused: QEMU's own limit is about as deep */
#define VMSUP_DISK_CHAIN_MAX_DEPTH 16

/*
 * What a qcow2 header says of an image: its virtual size, its backing file
 * as stored (NULL: none) and that file's format as stored (NULL: not
 * recorded). Refuses an external data file and encryption, which would
 * make QEMU open or need more than the chain.
 */
typedef struct {
	guint64 size;
	gchar *backing;        /* owned */
	gchar *backing_format; /* owned */
} VmsupQcow2Header;

void
vmsup_qcow2_header_clear(VmsupQcow2Header *header);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmsupQcow2Header, vmsup_qcow2_header_clear)

/* "qcow2" when @fd starts with the qcow2 magic, else "raw"; NULL with errno on a read error */
const gchar *
vmsup_disk_chain_probe_format(gint fd);

gboolean
vmsup_qcow2_header_read(gint fd, const gchar *path, VmsupQcow2Header *out, GError **error);

/*
 * The chain under the image @path, already open as @top_fd (taken): each
 * backing file opened as @as (the kernel decides, as uid @uid), its format
 * taken from the image above it (probed when not recorded: qcow2 or raw),
 * loops and formats other than qcow2 and raw refused. Top node first, all
 * read-only. Errors name the file and what to do (FAILED_PRECONDITION).
 */
GPtrArray *
vmsup_disk_chain_open(const gchar *path,
		      gint top_fd,
		      const VmsupRunAs *as,
		      guint32 uid,
		      GError **error);

G_END_DECLS
