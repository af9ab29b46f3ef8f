/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What an import accepts, decided from the file's own bytes before the
 * store creates anything: a disk image, whole in itself.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-disk-chain.h"
#include "vmsup-error.h"
#include "vmsup-image-source.h"
#include "vmsup-name.h"

/* the boot signature of an MBR, and the GPT header in the sector after it */
#define VMSUP_IMAGE_MBR_SIGNATURE_OFFSET 510
#define VMSUP_IMAGE_GPT_OFFSET 512

gchar *
vmsup_image_source_default_name(const gchar *path)
{
	g_autofree gchar *basename = g_path_get_basename(path);
	gchar *dot = strrchr(basename, '.');
	GString *name = g_string_new(NULL);

	if (dot != NULL && dot != basename)
		*dot = '\0';
	for (const gchar *p = basename; *p != '\0' && name->len < VMSUP_NAME_MAX_LENGTH; p++) {
		gchar c = g_ascii_tolower(*p);
		if (g_ascii_isalnum(c))
			g_string_append_c(name, c);
		else if (name->len > 0 && (c == '.' || c == '_' || c == '-'))
			g_string_append_c(name, c);
		else if (name->len > 0 && name->str[name->len - 1] != '-')
			g_string_append_c(name, '-');
	}
	if (name->len == 0) {
		g_string_free(name, TRUE);
		return NULL;
	}
	return g_string_free(name, FALSE);
}

/* a raw image is taken only with a partition table: anything else is not a disk */
static gboolean
vmsup_image_source_has_partition_table(gint fd)
{
	guint8 sector[1024] = {0};
	gssize n = pread(fd, sector, sizeof(sector), 0);

	if (n < VMSUP_IMAGE_MBR_SIGNATURE_OFFSET + 2)
		return FALSE;
	if (n >= VMSUP_IMAGE_GPT_OFFSET + 8 &&
	    memcmp(sector + VMSUP_IMAGE_GPT_OFFSET, "EFI PART", 8) == 0)
		return TRUE;
	return sector[VMSUP_IMAGE_MBR_SIGNATURE_OFFSET] == 0x55 &&
	       sector[VMSUP_IMAGE_MBR_SIGNATURE_OFFSET + 1] == 0xaa;
}

static gboolean
vmsup_image_source_unreadable(const gchar *source, gint saved_errno, GError **error)
{
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("Cannot read '%s': %s; name a disk image file"),
		    source,
		    g_strerror(saved_errno));
	return FALSE;
}

gboolean
vmsup_image_source_check(gint fd, const gchar *path, VmsupImageSource *out, GError **error)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		return vmsup_image_source_unreadable(path, errno, error);
	}
	if (S_ISDIR(st.st_mode)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' is a directory, not a disk image; name the image file in it"),
			    path);
		return FALSE;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' is not a regular file (a device or a pipe?); name a disk image "
			      "file: qcow2, or raw with a partition table"),
			    path);
		return FALSE;
	}
	out->size = (guint64)st.st_size;
	out->format = vmsup_disk_chain_probe_format(fd);
	if (out->format == NULL) {
		return vmsup_image_source_unreadable(path, errno, error);
	}
	if (g_strcmp0(out->format, "qcow2") == 0) {
		g_auto(VmsupQcow2Header) header = {0};

		if (!vmsup_qcow2_header_read(fd, path, &header, error))
			return FALSE;
		if (header.backing != NULL) {
			g_set_error(
			    error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    /* TRANSLATORS: FLAT.qcow2 stands for a file name of the user's choice
			     */
			    _("The image '%s' goes over the backing file '%s', and the store keeps "
			      "only self-contained images; flatten it with 'qemu-img convert -O "
			      "qcow2 %s FLAT.qcow2' and import FLAT.qcow2"),
			    path,
			    header.backing,
			    path);
			return FALSE;
		}
		out->virtual_size = header.size;
		return TRUE;
	}
	if (!vmsup_image_source_has_partition_table(fd)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' is not a disk image: it is neither qcow2 nor a raw disk with "
			      "an MBR or GPT partition table; name a disk image, or convert one of "
			      "another format with 'qemu-img convert -O qcow2 %s IMAGE.qcow2'"),
			    path,
			    path);
		return FALSE;
	}
	out->virtual_size = out->size;
	return TRUE;
}
