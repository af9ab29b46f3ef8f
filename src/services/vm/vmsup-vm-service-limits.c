/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService: the share of one owner (MaxVMsPerUser, MaxMemoryMiBPerUser).
 * Root and the daemon's own uid are exempt, as from the owner rule: they
 * administer the daemon, and MaxVMs still caps everyone.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "vmsup-error.h"
#include "vmsup-vm-service-private.h"

typedef struct {
	guint32 owner;
	guint memory_mib;
} VmsupVmCreateUsage;

void
vmsup_vm_service_set_owner_limits(VmsupVmService *self, guint max_vms, guint max_memory_mib)
{
	g_return_if_fail(VMSUP_IS_VM_SERVICE(self));
	self->max_vms_per_user = max_vms;
	self->max_memory_mib_per_user = max_memory_mib;
}

void
vmsup_vm_service_note_creating(VmsupVmService *self, const gchar *name, const VmsupVmDef *def)
{
	VmsupVmCreateUsage *usage = g_new0(VmsupVmCreateUsage, 1);
	usage->owner = def->owner_uid;
	usage->memory_mib = def->memory_mib;
	g_hash_table_insert(self->creating_usage, g_strdup(name), usage);
}

/*
 * What @owner holds: VMs defined and being created, and their memory, a
 * raise a vm.set is making counted already; the VM @skip is left out
 */
static void
vmsup_vm_service_owner_usage(VmsupVmService *self,
			     guint32 owner,
			     const gchar *skip,
			     guint *out_vms,
			     guint64 *out_memory_mib)
{
	GHashTableIter iter;
	gpointer key;
	gpointer value;

	*out_vms = 0;
	*out_memory_mib = 0;
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		VmsupVmRecord *rec = value;
		if (rec->def->owner_uid != owner || g_strcmp0(key, skip) == 0)
			continue;
		(*out_vms)++;
		*out_memory_mib += MAX(rec->def->memory_mib, rec->memory_mib_reserved);
	}
	g_hash_table_iter_init(&iter, self->creating_usage);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		VmsupVmCreateUsage *usage = value;
		if (usage->owner != owner || g_hash_table_contains(self->vms, key) ||
		    g_strcmp0(key, skip) == 0)
			continue;
		(*out_vms)++;
		*out_memory_mib += usage->memory_mib;
	}
}

/*
 * Creates and sets in flight count, entering the tables before this returns
 * on the one main loop: two of them cannot both take the last share.
 */
gboolean
vmsup_vm_service_check_owner_limits(VmsupVmService *self,
				    const VmsupVmDef *def,
				    const VmsupVmDef *old_def,
				    GError **error)
{
	guint32 owner = def->owner_uid;
	guint vms = 0;
	guint64 memory_mib = 0;
	guint64 left;

	if (!vmsup_vm_def_uid_is_restricted(owner))
		return TRUE;
	vmsup_vm_service_owner_usage(self, owner, def->name, &vms, &memory_mib);
	if (old_def == NULL && self->max_vms_per_user > 0 && vms >= self->max_vms_per_user) {
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    /* TRANSLATORS: MaxVMsPerUser is a key of vmsupd.conf, do not translate */
		    _("Cannot create VM '%s': uid %u already has %u VMs "
		      "(MaxVMsPerUser=%u in vmsupd.conf); delete one you no longer need "
		      "('vmsup delete NAME'), or ask the administrator to raise the limit"),
		    def->name,
		    owner,
		    vms,
		    self->max_vms_per_user);
		return FALSE;
	}
	/* lowering memory is always allowed, even above a lowered limit */
	if (self->max_memory_mib_per_user == 0 ||
	    (old_def != NULL && def->memory_mib <= old_def->memory_mib) ||
	    memory_mib + def->memory_mib <= self->max_memory_mib_per_user)
		return TRUE;
	left = memory_mib < self->max_memory_mib_per_user
		   ? self->max_memory_mib_per_user - memory_mib
		   : 0;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    old_def == NULL
			/* TRANSLATORS: MaxMemoryMiBPerUser is a key of vmsupd.conf, do not
			   translate it */
			? _("Cannot create VM '%s' with %u MiB: uid %u has %" G_GUINT64_FORMAT
			    " MiB of guest memory in its VMs, and MaxMemoryMiBPerUser=%u in "
			    "vmsupd.conf leaves %" G_GUINT64_FORMAT " MiB; give it less, shrink or "
			    "delete another VM, or ask the administrator to raise the limit")
			: _("Cannot give VM '%s' %u MiB: uid %u has %" G_GUINT64_FORMAT
			    " MiB of guest memory in its other VMs, and MaxMemoryMiBPerUser=%u in "
			    "vmsupd.conf leaves %" G_GUINT64_FORMAT " MiB for this one; ask for "
			    "less, shrink or delete another VM, or ask the administrator to raise "
			    "the limit"),
		    def->name,
		    def->memory_mib,
		    owner,
		    memory_mib,
		    self->max_memory_mib_per_user,
		    left);
	return FALSE;
}
