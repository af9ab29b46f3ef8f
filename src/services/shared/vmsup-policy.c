/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one place that decides who may act on, see and be told of what. It
 * holds no service: owners reach it through the lookups it was built with.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-policy.h"

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
