/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one place that decides who may act on, see and be told of what. It
 * holds no service: owners reach it through the lookups it was built with.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-disk-chain.h"
#include "vmsup-error.h"
#include "vmsup-owner-open.h"
#include "vmsup-paths.h"
#include "vmsup-policy.h"
#include "vmsup-run-as.h"

struct _VmsupPolicy {
	GObject parent_instance;
	VmsupPolicyOwners owners; /* user_data owned when user_data_free is set */
};

G_DEFINE_FINAL_TYPE(VmsupPolicy, vmsup_policy, G_TYPE_OBJECT)

struct _VmsupPolicySubscription {
	VmsupPolicy *policy; /* owned */
	VmsupCaller caller;
	GHashTable *seen_vms; /* owned, for a restricted caller: the VMs it was told of */
};

typedef enum {
	VMSUP_POLICY_OWNED_VM,
	VMSUP_POLICY_OWNED_WORKSPACE,
	VMSUP_POLICY_OWNED_OPERATION,
} VmsupPolicyOwned;

static void
vmsup_policy_set_not_yours(GError **error,
			   VmsupPolicyOwned what,
			   const gchar *name,
			   guint32 owner,
			   guint32 uid)
{
	switch (what) {
	case VMSUP_POLICY_OWNED_VM:
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    /* TRANSLATORS: VM 'web1' belongs to uid 1000, not to you (uid 1001); ... */
		    _("VM '%s' belongs to uid %u, not to you (uid %u); only its owner and "
		      "root may use it: ask one of them, or use a VM of your own"),
		    name,
		    (guint)owner,
		    (guint)uid);
		return;
	case VMSUP_POLICY_OWNED_WORKSPACE:
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Workspace '%s' belongs to uid %u, not to you (uid %u); only its "
			      "owner and root may use it: ask one of them, or use a workspace of "
			      "your own"),
			    name,
			    (guint)owner,
			    (guint)uid);
		return;
	case VMSUP_POLICY_OWNED_OPERATION:
	default:
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Operation %s belongs to uid %u, not to you (uid %u); only its owner "
			      "and root may follow or cancel it"),
			    name,
			    (guint)owner,
			    (guint)uid);
		return;
	}
}

/* who owns VM @name, workspace @name or operation @id; FALSE: nothing of that is known */
static gboolean
vmsup_policy_owner_of(VmsupPolicy *self,
		      VmsupPolicyOwned what,
		      const gchar *name,
		      gint64 id,
		      guint32 *out_uid)
{
	switch (what) {
	case VMSUP_POLICY_OWNED_VM:
		return self->owners.vm_owner != NULL && name != NULL &&
		       self->owners.vm_owner(name, out_uid, self->owners.user_data);
	case VMSUP_POLICY_OWNED_WORKSPACE:
		return self->owners.workspace_owner != NULL && name != NULL &&
		       self->owners.workspace_owner(name, out_uid, self->owners.user_data);
	case VMSUP_POLICY_OWNED_OPERATION:
		return self->owners.operation_owner != NULL &&
		       self->owners.operation_owner(id, out_uid, self->owners.user_data);
	default:
		return FALSE;
	}
}

/* acting: refused only when someone else is known to own it */
static gboolean
vmsup_policy_check(VmsupPolicy *self,
		   const VmsupCaller *caller,
		   VmsupPolicyOwned what,
		   const gchar *name,
		   gint64 id,
		   GError **error)
{
	g_autofree gchar *shown = NULL;
	guint32 owner = 0;

	g_return_val_if_fail(VMSUP_IS_POLICY(self), FALSE);
	g_return_val_if_fail(caller != NULL, FALSE);

	if (!caller->restricted || !vmsup_policy_owner_of(self, what, name, id, &owner) ||
	    owner == caller->uid)
		return TRUE;
	if (what == VMSUP_POLICY_OWNED_OPERATION)
		name = shown = g_strdup_printf("%" G_GINT64_FORMAT, id);
	vmsup_policy_set_not_yours(error, what, name, owner, caller->uid);
	return FALSE;
}

/* seeing: only what it is known to own, unless it sees everything */
static gboolean
vmsup_policy_may_see(VmsupPolicy *self,
		     const VmsupCaller *caller,
		     VmsupPolicyOwned what,
		     const gchar *name,
		     gint64 id)
{
	guint32 owner = 0;

	if (vmsup_policy_sees_all(self, caller))
		return TRUE;
	return vmsup_policy_owner_of(self, what, name, id, &owner) && owner == caller->uid;
}

gboolean
vmsup_policy_check_vm_owner(const VmsupCaller *caller,
			    const gchar *name,
			    guint32 owner_uid,
			    GError **error)
{
	g_return_val_if_fail(caller != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	if (!caller->restricted || owner_uid == caller->uid)
		return TRUE;
	vmsup_policy_set_not_yours(error, VMSUP_POLICY_OWNED_VM, name, owner_uid, caller->uid);
	return FALSE;
}

gboolean
vmsup_policy_check_vm(VmsupPolicy *self,
		      const VmsupCaller *caller,
		      const gchar *name,
		      GError **error)
{
	return vmsup_policy_check(self, caller, VMSUP_POLICY_OWNED_VM, name, 0, error);
}

gboolean
vmsup_policy_check_workspace(VmsupPolicy *self,
			     const VmsupCaller *caller,
			     const gchar *name,
			     GError **error)
{
	return vmsup_policy_check(self, caller, VMSUP_POLICY_OWNED_WORKSPACE, name, 0, error);
}

gboolean
vmsup_policy_check_operation(VmsupPolicy *self,
			     const VmsupCaller *caller,
			     gint64 id,
			     GError **error)
{
	return vmsup_policy_check(self, caller, VMSUP_POLICY_OWNED_OPERATION, NULL, id, error);
}

gboolean
vmsup_policy_sees_all(VmsupPolicy *self, const VmsupCaller *caller)
{
	g_return_val_if_fail(VMSUP_IS_POLICY(self), FALSE);
	g_return_val_if_fail(caller != NULL, FALSE);
	return !caller->restricted;
}

gboolean
vmsup_policy_may_see_vm(VmsupPolicy *self, const VmsupCaller *caller, const gchar *name)
{
	return vmsup_policy_may_see(self, caller, VMSUP_POLICY_OWNED_VM, name, 0);
}

gboolean
vmsup_policy_may_see_workspace(VmsupPolicy *self, const VmsupCaller *caller, const gchar *name)
{
	return vmsup_policy_may_see(self, caller, VMSUP_POLICY_OWNED_WORKSPACE, name, 0);
}

gboolean
vmsup_policy_may_see_operation(VmsupPolicy *self, const VmsupCaller *caller, gint64 id)
{
	return vmsup_policy_may_see(self, caller, VMSUP_POLICY_OWNED_OPERATION, NULL, id);
}

/* events */

VmsupPolicySubscription *
vmsup_policy_subscribe(VmsupPolicy *self, const VmsupCaller *caller)
{
	VmsupPolicySubscription *sub;

	g_return_val_if_fail(VMSUP_IS_POLICY(self), NULL);
	g_return_val_if_fail(caller != NULL, NULL);

	sub = g_new0(VmsupPolicySubscription, 1);
	sub->policy = g_object_ref(self);
	sub->caller = *caller;
	if (vmsup_policy_sees_all(self, caller))
		return sub;
	/* those of now, and new ones as they are told of */
	sub->seen_vms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (self->owners.vm_names != NULL) {
		g_auto(GStrv) names = self->owners.vm_names(self->owners.user_data);
		for (guint i = 0; names != NULL && names[i] != NULL; i++) {
			if (vmsup_policy_may_see_vm(self, caller, names[i]))
				g_hash_table_add(sub->seen_vms, g_strdup(names[i]));
		}
	}
	return sub;
}

gboolean
vmsup_policy_subscription_admits(VmsupPolicySubscription *sub,
				 VmsupPolicyEvent event,
				 const gchar *vm_name,
				 gint64 operation_id)
{
	g_return_val_if_fail(sub != NULL, FALSE);

	if (sub->seen_vms == NULL)
		return TRUE;
	switch (event) {
	case VMSUP_POLICY_EVENT_VM_CHANGED:
		if (vm_name == NULL || !vmsup_policy_may_see_vm(sub->policy, &sub->caller, vm_name))
			return FALSE;
		g_hash_table_add(sub->seen_vms, g_strdup(vm_name));
		return TRUE;
	case VMSUP_POLICY_EVENT_VM_REMOVED:
		return vm_name != NULL && g_hash_table_remove(sub->seen_vms, vm_name);
	case VMSUP_POLICY_EVENT_OPERATION_CHANGED:
		return vmsup_policy_may_see_operation(sub->policy, &sub->caller, operation_id);
	default:
		return FALSE;
	}
}

void
vmsup_policy_subscription_free(VmsupPolicySubscription *sub)
{
	if (sub == NULL)
		return;
	g_clear_pointer(&sub->seen_vms, g_hash_table_unref);
	g_object_unref(sub->policy);
	g_free(sub);
}

/* host files and shares */

/* where the descriptor @fd leads, from /proc/self/fd: what was opened, not what a name says now */
static gchar *
vmsup_policy_fd_path(gint fd)
{
	g_autofree gchar *link = g_strdup_printf("/proc/self/fd/%d", fd);
	return g_file_read_link(link, NULL);
}

gint
vmsup_policy_open_share(const VmsupCaller *owner, const gchar *path, GError **error)
{
	guint32 uid = owner->uid;
	g_autoptr(VmsupRunAs) as = vmsup_run_as_for_owner(uid);
	g_autofree gchar *shown = NULL;
	g_autofree gchar *canonical = NULL;
	g_autofree gchar *real = NULL;
	struct stat st;
	gint fd;

	g_return_val_if_fail(owner != NULL, -1);
	g_return_val_if_fail(path != NULL, -1);

	shown = g_strescape(path, NULL);
	canonical = g_canonicalize_filename(path, "/");
	/* opened as the owner: the kernel says whether the owner may, and QEMU gets this one */
	fd = vmsup_run_as_open(as, canonical, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
	if (fd < 0) {
		gint saved_errno = errno;
		gboolean refused =
		    (saved_errno == EACCES || saved_errno == EPERM) && owner->restricted;
		/* refused on the way: say why as the rules for restricted callers do */
		real = refused ? realpath(canonical, NULL) : NULL;
		if (real != NULL && g_strcmp0(real, canonical) != 0) {
			g_autofree gchar *shown_real = g_strescape(real, NULL);
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("'%s' leads to '%s' through a symbolic link; share the "
				      "directory itself, and only one you own"),
				    shown,
				    shown_real);
		} else if (refused && stat(canonical, &st) == 0 && S_ISDIR(st.st_mode) &&
			   st.st_uid != uid) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("'%s' belongs to uid %u, not to you (uid %u); share a "
				      "directory you own"),
				    shown,
				    (guint)st.st_uid,
				    (guint)uid);
		} else if (saved_errno == ENOTDIR) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("'%s' is not a directory; share a directory you own"),
				    shown);
		} else {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("Cannot tell who owns '%s': %s; share an existing directory "
				      "you own"),
				    shown,
				    g_strerror(saved_errno));
		}
		return -1;
	}
	/* checked on what was opened, so no later swap of a name changes the answer */
	real = vmsup_policy_fd_path(fd);
	if ((owner->restricted || geteuid() == 0) &&
	    (real == NULL || g_strcmp0(real, canonical) != 0)) {
		g_autofree gchar *shown_real = g_strescape(real != NULL ? real : "?", NULL);
		close(fd);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("'%s' leads to '%s' through a symbolic link; share the directory "
			      "itself, and only one you own"),
			    shown,
			    shown_real);
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("'%s' is not a directory; share a directory you own"),
			    shown);
		return -1;
	}
	if (owner->restricted && st.st_uid != uid) {
		close(fd);
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    /* TRANSLATORS: '/home/ann/src' belongs to uid 1000, not to you (uid 1001) */
		    _("'%s' belongs to uid %u, not to you (uid %u); share a directory you own"),
		    shown,
		    (guint)st.st_uid,
		    (guint)uid);
		return -1;
	}
	return fd;
}

gboolean
vmsup_policy_check_share(const VmsupCaller *caller, const gchar *path, GError **error)
{
	gint fd;

	g_return_val_if_fail(caller != NULL, FALSE);
	g_return_val_if_fail(path != NULL, FALSE);

	if (!caller->restricted && geteuid() != 0)
		return TRUE;
	fd = vmsup_policy_open_share(caller, path, error);
	if (fd < 0)
		return FALSE;
	close(fd);
	return TRUE;
}

static gboolean
vmsup_policy_check_file_reader(const VmsupCaller *caller,
			       const gchar *field,
			       const gchar *path,
			       GError **error)
{
	gint fd;

	if (!caller->restricted)
		return TRUE;
	fd = vmsup_owner_open_file(field, path, caller->uid, error);
	if (fd < 0)
		return FALSE;
	close(fd);
	return TRUE;
}

/* the image and every backing file it names, each opened as the caller: a refusal names the file */
static gboolean
vmsup_policy_check_image_chain(const VmsupCaller *caller, const gchar *path, GError **error)
{
	g_autoptr(VmsupRunAs) as = vmsup_run_as_for_owner(caller->uid);
	g_autoptr(GPtrArray) chain = NULL;
	gint fd = vmsup_owner_open_file("image", path, caller->uid, error);

	if (fd < 0)
		return FALSE;
	chain = vmsup_disk_chain_open(path, fd, as, caller->uid, error);
	return chain != NULL;
}

gboolean
vmsup_policy_check_host_files(const VmsupCaller *caller,
			      const gchar *kernel,
			      const gchar *initrd,
			      const gchar *image,
			      const gchar *share_dir,
			      GError **error)
{
	static const gchar *const fields[] = {"kernel", "initrd", "image"};
	const gchar *const paths[] = {kernel, initrd, image};

	g_return_val_if_fail(caller != NULL, FALSE);

	/* the daemon's own requests name the files it chose itself */
	if (caller->daemon)
		return TRUE;
	for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
		/* the bundled guest's files are the daemon's, whoever names them */
		if (paths[i] == NULL || vmsup_paths_is_guest_file(paths[i]))
			continue;
		if (!vmsup_policy_check_file_reader(caller, fields[i], paths[i], error))
			return FALSE;
	}
	/* the files an image names are read for the caller too, not only the image */
	if (image != NULL && caller->restricted &&
	    !vmsup_policy_check_image_chain(caller, image, error))
		return FALSE;
	if (share_dir != NULL && !vmsup_policy_check_share(caller, share_dir, error))
		return FALSE;
	return TRUE;
}

gint
vmsup_policy_open_host_file(const VmsupCaller *caller,
			    const gchar *field,
			    const gchar *path,
			    GError **error)
{
	g_return_val_if_fail(caller != NULL, -1);
	g_return_val_if_fail(path != NULL, -1);

	if (!g_path_is_absolute(path)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' must be an absolute path, got '%s'"),
			    field,
			    path);
		return -1;
	}
	/* the caller's own uid: vmsupd's when vmsupd asks, then nobody else's rights are lent */
	return vmsup_owner_open_file(field, path, caller->uid, error);
}

gboolean
vmsup_policy_check_image_removal(const VmsupCaller *caller, const gchar *name, GError **error)
{
	g_return_val_if_fail(caller != NULL, FALSE);

	if (!caller->restricted)
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Image '%s' is in the host's image store, from which only root and "
		      "vmsupd's own user may delete; ask one of them"),
		    name);
	return FALSE;
}

gboolean
vmsup_policy_check_image_build(const VmsupCaller *caller, const gchar *name, GError **error)
{
	g_return_val_if_fail(caller != NULL, FALSE);

	if (!caller->restricted)
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Image '%s' would go into the host's image store, into which only root and "
		      "vmsupd's own user may build; ask one of them, or build it with your own "
		      "session vmsupd"),
		    name);
	return FALSE;
}

/* GObject */

static void
vmsup_policy_finalize(GObject *object)
{
	VmsupPolicy *self = VMSUP_POLICY(object);

	if (self->owners.user_data_free != NULL)
		self->owners.user_data_free(self->owners.user_data);
	G_OBJECT_CLASS(vmsup_policy_parent_class)->finalize(object);
}

static void
vmsup_policy_class_init(VmsupPolicyClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = vmsup_policy_finalize;
}

static void
vmsup_policy_init(VmsupPolicy *self)
{
}

VmsupPolicy *
vmsup_policy_new(const VmsupPolicyOwners *owners)
{
	VmsupPolicy *self = g_object_new(VMSUP_TYPE_POLICY, NULL);

	if (owners != NULL)
		self->owners = *owners;
	return self;
}
