/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A disk image's backing chain, read from the qcow2 headers of descriptors
 * the caller's own identity opened: every file QEMU will read is named here
 * and opened here, so QEMU is handed descriptors and never follows a name
 * stored in an image, and a file its owner could not open is refused.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-disk-chain.h"
#include "vmsup-error.h"

#define VMSUP_QCOW2_MAGIC 0x514649fbU
#define VMSUP_QCOW2_EXT_END 0x00000000U
#define VMSUP_QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define VMSUP_QCOW2_EXT_DATA_FILE 0x44415441U
/* incompatible feature bit 2: the guest data lives in an external file */
#define VMSUP_QCOW2_INCOMPAT_DATA_FILE (G_GUINT64_CONSTANT(1) << 2)
/* QEMU's limit on the stored backing name */
#define VMSUP_QCOW2_MAX_BACKING 1023
/* header extensions are read from the first cluster, capped at this */
#define VMSUP_QCOW2_MAX_HEADER (64 * 1024)

void
vmsup_qcow2_header_clear(VmsupQcow2Header *header)
{
	g_clear_pointer(&header->backing, g_free);
	g_clear_pointer(&header->backing_format, g_free);
	header->size = 0;
}

static guint32
vmsup_be32(const guint8 *p)
{
	return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

static guint64
vmsup_be64(const guint8 *p)
{
	return ((guint64)vmsup_be32(p) << 32) | vmsup_be32(p + 4);
}

const gchar *
vmsup_disk_chain_probe_format(gint fd)
{
	guint8 magic[4] = {0};
	gssize n = pread(fd, magic, sizeof(magic), 0);

	if (n < 0)
		return NULL;
	return n == (gssize)sizeof(magic) && vmsup_be32(magic) == VMSUP_QCOW2_MAGIC ? "qcow2"
										    : "raw";
}

static void
vmsup_qcow2_bad(const gchar *path, const gchar *why, GError **error)
{
	g_set_error(
	    error,
	    VMSUP_ERROR,
	    VMSUP_ERROR_FAILED_PRECONDITION,
	    /* TRANSLATORS: the image '/srv/a.qcow2' is not a qcow2 image vmsupd can use: ... */
	    _("The image '%s' is not a qcow2 image vmsupd can use: %s; check it with "
	      "'qemu-img check'"),
	    path,
	    why);
}

/* an image QEMU could run but not from its own file alone: a plain copy is the fix */
static void
vmsup_qcow2_not_self_contained(const gchar *path, const gchar *why, GError **error)
{
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    /* TRANSLATORS: the image '/srv/a.qcow2' cannot be used: it is encrypted; ... */
		    _("The image '%s' cannot be used: %s; make a plain, self-contained copy with "
		      "'qemu-img convert -O qcow2 %s COPY.qcow2' and use that"),
		    path,
		    why,
		    path);
}

gboolean
vmsup_qcow2_header_read(gint fd, const gchar *path, VmsupQcow2Header *out, GError **error)
{
	g_autofree guint8 *buf = g_malloc0(VMSUP_QCOW2_MAX_HEADER);
	gssize n = pread(fd, buf, VMSUP_QCOW2_MAX_HEADER, 0);
	guint32 version;
	guint32 cluster_bits;
	guint64 backing_offset;
	guint32 backing_size;
	guint64 incompat = 0;
	gsize ext;
	gsize end;

	memset(out, 0, sizeof(*out));
	if (n < 72 || vmsup_be32(buf) != VMSUP_QCOW2_MAGIC) {
		vmsup_qcow2_bad(path, _("its header is short or has no qcow2 magic"), error);
		return FALSE;
	}
	version = vmsup_be32(buf + 4);
	backing_offset = vmsup_be64(buf + 8);
	backing_size = vmsup_be32(buf + 16);
	cluster_bits = vmsup_be32(buf + 20);
	out->size = vmsup_be64(buf + 24);
	if ((version != 2 && version != 3) || cluster_bits < 9 || cluster_bits > 21) {
		vmsup_qcow2_bad(path, _("its version or cluster size is unknown"), error);
		return FALSE;
	}
	if (vmsup_be32(buf + 32) != 0) {
		vmsup_qcow2_not_self_contained(path, _("it is encrypted"), error);
		return FALSE;
	}
	ext = 72;
	if (version == 3) {
		if (n < 104) {
			vmsup_qcow2_bad(path, _("its header is short"), error);
			return FALSE;
		}
		incompat = vmsup_be64(buf + 72);
		ext = vmsup_be32(buf + 100);
	}
	if (incompat & VMSUP_QCOW2_INCOMPAT_DATA_FILE) {
		vmsup_qcow2_not_self_contained(path,
					       _("it keeps its data in an external file"),
					       error);
		return FALSE;
	}
	/* extensions end at the first cluster, or where the backing name starts */
	end = MIN((gsize)n, (gsize)1 << cluster_bits);
	if (backing_offset != 0 && backing_offset < end)
		end = (gsize)backing_offset;
	while (ext + 8 <= end) {
		guint32 type = vmsup_be32(buf + ext);
		guint32 len = vmsup_be32(buf + ext + 4);
		if (type == VMSUP_QCOW2_EXT_END)
			break;
		if (len > end - ext - 8) {
			vmsup_qcow2_bad(path, _("a header extension runs past the header"), error);
			return FALSE;
		}
		if (type == VMSUP_QCOW2_EXT_DATA_FILE) {
			vmsup_qcow2_not_self_contained(path,
						       _("it keeps its data in an external file"),
						       error);
			return FALSE;
		}
		if (type == VMSUP_QCOW2_EXT_BACKING_FORMAT && len > 0 && len < 64) {
			g_free(out->backing_format);
			out->backing_format = g_strndup((const gchar *)buf + ext + 8, len);
		}
		ext += 8 + (((gsize)len + 7) & ~(gsize)7);
	}
	if (backing_offset != 0 && backing_size > 0) {
		if (backing_size > VMSUP_QCOW2_MAX_BACKING ||
		    backing_offset + backing_size > (guint64)n) {
			vmsup_qcow2_header_clear(out);
			vmsup_qcow2_bad(path, _("its backing file name is out of bounds"), error);
			return FALSE;
		}
		out->backing = g_strndup((const gchar *)buf + backing_offset, backing_size);
		if (strlen(out->backing) != backing_size) {
			vmsup_qcow2_header_clear(out);
			vmsup_qcow2_bad(path, _("its backing file name holds a NUL byte"), error);
			return FALSE;
		}
	}
	return TRUE;
}

/* a plain file name, relative ones taken from the image's directory, as QEMU does */
static gchar *
vmsup_disk_chain_resolve(const gchar *image, const gchar *backing, GError **error)
{
	const gchar *colon = strchr(backing, ':');
	const gchar *slash = strchr(backing, '/');
	g_autofree gchar *dir = NULL;

	/* "json:{...}", "nbd:...", "file:..." are not files vmsupd opens for QEMU */
	if (backing[0] == '\0' || (colon != NULL && (slash == NULL || colon < slash))) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("The image '%s' uses the backing '%s', which is not a plain file "
			      "name; rebase it onto a file with 'qemu-img rebase'"),
			    image,
			    backing);
		return NULL;
	}
	if (g_path_is_absolute(backing))
		return g_canonicalize_filename(backing, NULL);
	dir = g_path_get_dirname(image);
	return g_canonicalize_filename(backing, dir);
}

static void
vmsup_disk_chain_refuse_open(const gchar *image,
			     const gchar *backing,
			     guint32 uid,
			     gint saved_errno,
			     GError **error)
{
	if (saved_errno == EACCES || saved_errno == EPERM) {
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    /* TRANSLATORS: The image 'a.qcow2' uses the backing file 'b.raw', which
		       uid 1001 cannot read: Permission denied; ... */
		    _("The image '%s' uses the backing file '%s', which uid %u cannot read: %s; "
		      "vmsupd opens an image's backing files only for those who could open "
		      "them themselves: make '%s' readable to uid %u, or name an image whose "
		      "backing files uid %u may read"),
		    image,
		    backing,
		    (guint)uid,
		    g_strerror(saved_errno),
		    backing,
		    (guint)uid,
		    (guint)uid);
		return;
	}
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("The image '%s' uses the backing file '%s', which cannot be opened: %s; "
		      "restore it, or rebase the image with 'qemu-img rebase'"),
		    image,
		    backing,
		    g_strerror(saved_errno));
}

GPtrArray *
vmsup_disk_chain_open(const gchar *path,
		      gint top_fd,
		      const VmsupRunAs *as,
		      guint32 uid,
		      GError **error)
{
	g_autoptr(GPtrArray) chain =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_qemu_disk_node_free);
	g_autoptr(GArray) seen = g_array_new(FALSE, FALSE, sizeof(struct stat));
	g_autofree gchar *current = g_strdup(path);
	const gchar *format = NULL;
	gint fd = top_fd;

	g_return_val_if_fail(path != NULL, NULL);
	g_return_val_if_fail(top_fd >= 0, NULL);

	while (TRUE) {
		g_auto(VmsupQcow2Header) header = {0};
		g_autofree gchar *next = NULL;
		struct stat st;
		VmsupQemuDiskNode *node;

		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("The image '%s' is not a regular file; name an image file"),
				    current);
			return NULL;
		}
		for (guint i = 0; i < seen->len; i++) {
			struct stat *other = &g_array_index(seen, struct stat, i);
			if (other->st_dev == st.st_dev && other->st_ino == st.st_ino) {
				close(fd);
				g_set_error(
				    error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("The backing chain of '%s' comes back to '%s': a loop; "
				      "rebase the image with 'qemu-img rebase'"),
				    path,
				    current);
				return NULL;
			}
		}
		g_array_append_val(seen, st);
		if (format == NULL)
			format = vmsup_disk_chain_probe_format(fd);
		if (format == NULL) {
			gint saved_errno = errno;
			close(fd);
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("Cannot read the image '%s': %s"),
				    current,
				    g_strerror(saved_errno));
			return NULL;
		}
		node = vmsup_qemu_disk_node_new(fd, format, current);
		g_ptr_array_add(chain, node);
		if (g_strcmp0(format, "raw") == 0)
			break;
		if (!vmsup_qcow2_header_read(node->fd, current, &header, error))
			return NULL;
		if (header.backing == NULL)
			break;
		if (chain->len >= VMSUP_DISK_CHAIN_MAX_DEPTH) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("The backing chain of '%s' is deeper than %u images; "
				      "flatten it with 'qemu-img convert'"),
				    path,
				    VMSUP_DISK_CHAIN_MAX_DEPTH);
			return NULL;
		}
		next = vmsup_disk_chain_resolve(current, header.backing, error);
		if (next == NULL)
			return NULL;
		format = NULL;
		if (header.backing_format != NULL) {
			if (g_strcmp0(header.backing_format, "qcow2") != 0 &&
			    g_strcmp0(header.backing_format, "raw") != 0) {
				g_set_error(error,
					    VMSUP_ERROR,
					    VMSUP_ERROR_FAILED_PRECONDITION,
					    _("The image '%s' uses the backing file '%s' of format "
					      "'%s'; vmsupd follows only qcow2 and raw: convert it "
					      "with 'qemu-img convert'"),
					    current,
					    next,
					    header.backing_format);
				return NULL;
			}
			format = header.backing_format[0] == 'q' ? "qcow2" : "raw";
		}
		fd = vmsup_run_as_open(as, next, O_RDONLY | O_NOCTTY | O_NONBLOCK);
		if (fd < 0) {
			vmsup_disk_chain_refuse_open(current, next, uid, errno, error);
			return NULL;
		}
		g_free(current);
		current = g_steal_pointer(&next);
	}
	return g_steal_pointer(&chain);
}
