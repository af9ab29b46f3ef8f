/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An import's copy: sparse, hashed as it reads, cancellable between
 * chunks. Blocking I/O, for the store's worker thread.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-image-copy.h"

#define VMSUP_IMAGE_COPY_CHUNK (1024 * 1024)
/* what is left a hole when it reads as zeros: a file system block */
#define VMSUP_IMAGE_COPY_BLOCK 4096

static gboolean
vmsup_image_copy_is_zero(const guint8 *buf, gsize len)
{
	return len == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0);
}

gboolean
vmsup_image_copy_cancelled(GCancellable *cancellable, const gchar *source, GError **error)
{
	if (!g_cancellable_is_cancelled(cancellable))
		return FALSE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_CANCELLED,
		    _("The import of '%s' was cancelled; nothing was added to the store"),
		    source);
	return TRUE;
}

gboolean
vmsup_image_copy_write_failed(const gchar *path, gint saved_errno, GError **error)
{
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Cannot write the image '%s': %s; check free space and permissions of the "
		      "state directory"),
		    path,
		    g_strerror(saved_errno));
	return FALSE;
}

static gboolean
vmsup_image_copy_pwrite_all(gint fd, const guint8 *buf, gsize len, guint64 offset)
{
	gsize done = 0;

	while (done < len) {
		gssize w = pwrite(fd, buf + done, len - done, (off_t)(offset + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return FALSE;
		done += (gsize)w;
	}
	return TRUE;
}

/* the runs of @buf that are not zero, block by block: zeros stay holes */
static gboolean
vmsup_image_copy_write_data(gint fd,
			    const guint8 *buf,
			    gsize len,
			    guint64 offset,
			    const gchar *tmp_path,
			    GError **error)
{
	gsize start = 0;

	while (start < len) {
		gsize end;

		while (start < len &&
		       vmsup_image_copy_is_zero(buf + start,
						MIN((gsize)VMSUP_IMAGE_COPY_BLOCK, len - start)))
			start += VMSUP_IMAGE_COPY_BLOCK;
		if (start >= len)
			break;
		end = start;
		while (end < len &&
		       !vmsup_image_copy_is_zero(buf + end,
						 MIN((gsize)VMSUP_IMAGE_COPY_BLOCK, len - end)))
			end += VMSUP_IMAGE_COPY_BLOCK;
		end = MIN(end, len);
		if (!vmsup_image_copy_pwrite_all(fd, buf + start, end - start, offset + start))
			return vmsup_image_copy_write_failed(tmp_path, errno, error);
		start = end;
	}
	return TRUE;
}

gboolean
vmsup_image_copy(gint in_fd,
		 const gchar *source,
		 guint64 size,
		 gint out_fd,
		 const gchar *tmp_path,
		 GChecksum *checksum,
		 VmsupImageCopyProgressFunc progress,
		 gpointer progress_data,
		 GCancellable *cancellable,
		 GError **error)
{
	g_autofree guint8 *buf = g_malloc(VMSUP_IMAGE_COPY_CHUNK);
	guint64 offset = 0;
	guint last_percent = 0;

	while (offset < size) {
		gsize want = (gsize)MIN((guint64)VMSUP_IMAGE_COPY_CHUNK, size - offset);
		gssize n;
		guint percent;

		if (vmsup_image_copy_cancelled(cancellable, source, error))
			return FALSE;
		n = pread(in_fd, buf, want, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			gint saved_errno = n < 0 ? errno : 0;
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("Cannot read '%s' at byte %" PRIu64
				      ": %s; was it changed during the import? Try again"),
				    source,
				    offset,
				    n < 0 ? g_strerror(saved_errno) : _("it ended early"));
			return FALSE;
		}
		g_checksum_update(checksum, buf, n);
		if (!vmsup_image_copy_write_data(out_fd, buf, (gsize)n, offset, tmp_path, error))
			return FALSE;
		offset += (guint64)n;
		percent = (guint)(offset * 100 / size);
		if (percent > last_percent) {
			last_percent = percent;
			if (progress != NULL)
				progress((gdouble)offset / size, progress_data);
		}
	}
	/* the zeros at the end were skipped: the size makes them a hole */
	if (ftruncate(out_fd, (off_t)size) != 0 || fsync(out_fd) != 0)
		return vmsup_image_copy_write_failed(tmp_path, errno, error);
	return TRUE;
}
