/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One named-user entry in a directory's POSIX ACL, written as the kernel's
 * xattr form (linux/posix_acl_xattr.h) so no library is needed for it.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "vmsup-error.h"
#include "vmsup-share-access.h"

#define VMSUP_ACL_XATTR "system.posix_acl_access"
#define VMSUP_ACL_VERSION 2
#define VMSUP_ACL_USER_OBJ 0x01
#define VMSUP_ACL_USER 0x02
#define VMSUP_ACL_GROUP_OBJ 0x04
#define VMSUP_ACL_MASK 0x10
#define VMSUP_ACL_OTHER 0x20
#define VMSUP_ACL_UNDEFINED_ID G_MAXUINT32
#define VMSUP_ACL_MAX_ENTRIES 1024

typedef struct {
	guint16 tag;
	guint16 perm;
	guint32 id;
} VmsupAclEntry;

static gint
vmsup_acl_entry_compare(gconstpointer a, gconstpointer b)
{
	const VmsupAclEntry *x = a;
	const VmsupAclEntry *y = b;

	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

static void
vmsup_acl_add(GArray *entries, guint16 tag, guint16 perm, guint32 id)
{
	VmsupAclEntry entry = {.tag = tag, .perm = perm, .id = id};
	g_array_append_val(entries, entry);
}

gboolean
vmsup_share_access_grant(gint dir_fd, const gchar *shown, uid_t uid, GError **error)
{
	g_autoptr(GArray) entries = g_array_new(FALSE, FALSE, sizeof(VmsupAclEntry));
	g_autofree guint8 *buf = g_malloc(4 + 8 * VMSUP_ACL_MAX_ENTRIES);
	gboolean have_user = FALSE;
	gboolean have_mask = FALSE;
	struct stat st;
	gssize len;
	gsize out;

	if (fstat(dir_fd, &st) != 0)
		goto failed;
	len = fgetxattr(dir_fd, VMSUP_ACL_XATTR, buf, 4 + 8 * VMSUP_ACL_MAX_ENTRIES);
	if (len < 0 && errno != ENODATA)
		goto failed;
	if (len >= 4) {
		guint32 version;
		memcpy(&version, buf, 4);
		if (GUINT32_FROM_LE(version) != VMSUP_ACL_VERSION) {
			errno = EINVAL;
			goto failed;
		}
		for (gssize off = 4; off + 8 <= len; off += 8) {
			guint16 tag, perm;
			guint32 id;
			memcpy(&tag, buf + off, 2);
			memcpy(&perm, buf + off + 2, 2);
			memcpy(&id, buf + off + 4, 4);
			vmsup_acl_add(entries,
				      GUINT16_FROM_LE(tag),
				      GUINT16_FROM_LE(perm),
				      GUINT32_FROM_LE(id));
		}
	} else {
		vmsup_acl_add(entries,
			      VMSUP_ACL_USER_OBJ,
			      (st.st_mode >> 6) & 7,
			      VMSUP_ACL_UNDEFINED_ID);
		vmsup_acl_add(entries,
			      VMSUP_ACL_GROUP_OBJ,
			      (st.st_mode >> 3) & 7,
			      VMSUP_ACL_UNDEFINED_ID);
		vmsup_acl_add(entries, VMSUP_ACL_OTHER, st.st_mode & 7, VMSUP_ACL_UNDEFINED_ID);
	}
	for (guint i = 0; i < entries->len; i++) {
		VmsupAclEntry *e = &g_array_index(entries, VmsupAclEntry, i);
		if (e->tag == VMSUP_ACL_USER && e->id == (guint32)uid) {
			have_user = TRUE;
			e->perm = 7;
		} else if (e->tag == VMSUP_ACL_MASK) {
			have_mask = TRUE;
			e->perm |= 7;
		}
	}
	if (!have_user)
		vmsup_acl_add(entries, VMSUP_ACL_USER, 7, (guint32)uid);
	if (!have_mask)
		vmsup_acl_add(entries, VMSUP_ACL_MASK, 7, VMSUP_ACL_UNDEFINED_ID);
	if (entries->len > VMSUP_ACL_MAX_ENTRIES) {
		errno = E2BIG;
		goto failed;
	}
	g_array_sort(entries, vmsup_acl_entry_compare);
	{
		guint32 version = GUINT32_TO_LE(VMSUP_ACL_VERSION);
		memcpy(buf, &version, 4);
	}
	out = 4;
	for (guint i = 0; i < entries->len; i++) {
		VmsupAclEntry *e = &g_array_index(entries, VmsupAclEntry, i);
		guint16 tag = GUINT16_TO_LE(e->tag);
		guint16 perm = GUINT16_TO_LE(e->perm);
		guint32 id = GUINT32_TO_LE(e->id);
		memcpy(buf + out, &tag, 2);
		memcpy(buf + out + 2, &perm, 2);
		memcpy(buf + out + 4, &id, 4);
		out += 8;
	}
	if (fsetxattr(dir_fd, VMSUP_ACL_XATTR, buf, out, 0) != 0)
		goto failed;
	return TRUE;

failed : {
	gint saved_errno = errno;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Cannot let uid %u, which runs the QEMU of root's VMs, into the shared "
		      "directory '%s': %s; share a directory on a file system with POSIX "
		      "ACLs, or make it writable to that user"),
		    (guint)uid,
		    shown,
		    g_strerror(saved_errno));
	return FALSE;
}
}
