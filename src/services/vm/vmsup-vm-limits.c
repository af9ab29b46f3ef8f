/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The caps on VMs (MaxVMs) and on the share of one owner (MaxVMsPerUser,
 * MaxMemoryMiBPerUser), with the messages that name them.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <inttypes.h>

#include "vmsup-error.h"
#include "vmsup-vm-limits.h"

gboolean
vmsup_vm_limits_check_count(const VmsupVmLimits *limits,
			    const gchar *name,
			    guint count,
			    GError **error)
{
	if (limits->max_vms == 0 || count < limits->max_vms)
		return TRUE;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    /* TRANSLATORS: MaxVMs is a key of vmsupd.conf, do not translate it */
		    _("Cannot create VM '%s': vmsupd allows at most %u VMs (MaxVMs in "
		      "vmsupd.conf) and %u are defined or being created; delete a VM you no "
		      "longer need ('vmsup delete NAME'), or raise MaxVMs and restart vmsupd"),
		    name,
		    limits->max_vms,
		    count);
	return FALSE;
}

gboolean
vmsup_vm_limits_check_owner(const VmsupVmLimits *limits,
			    const VmsupVmDef *def,
			    const VmsupVmDef *old_def,
			    guint vms,
			    guint64 memory_mib,
			    GError **error)
{
	guint32 owner = def->owner_uid;
	guint64 left;

	if (!vmsup_vm_def_uid_is_restricted(owner))
		return TRUE;
	if (old_def == NULL && limits->max_vms_per_user > 0 && vms >= limits->max_vms_per_user) {
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
		    limits->max_vms_per_user);
		return FALSE;
	}
	/* lowering memory is always allowed, even above a lowered limit */
	if (limits->max_memory_mib_per_user == 0 ||
	    (old_def != NULL && def->memory_mib <= old_def->memory_mib) ||
	    memory_mib + def->memory_mib <= limits->max_memory_mib_per_user)
		return TRUE;
	left = memory_mib < limits->max_memory_mib_per_user
		   ? limits->max_memory_mib_per_user - memory_mib
		   : 0;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    old_def == NULL
			/* TRANSLATORS: MaxMemoryMiBPerUser is a key of vmsupd.conf, do not
			   translate it */
			? _("Cannot create VM '%s' with %u MiB: uid %u has %" PRIu64
			    " MiB of guest memory in its VMs, and MaxMemoryMiBPerUser=%u in "
			    "vmsupd.conf leaves %" PRIu64 " MiB; give it less, shrink or "
			    "delete another VM, or ask the administrator to raise the limit")
			: _("Cannot give VM '%s' %u MiB: uid %u has %" PRIu64
			    " MiB of guest memory in its other VMs, and MaxMemoryMiBPerUser=%u in "
			    "vmsupd.conf leaves %" PRIu64 " MiB for this one; ask for "
			    "less, shrink or delete another VM, or ask the administrator to raise "
			    "the limit"),
		    def->name,
		    def->memory_mib,
		    owner,
		    memory_mib,
		    limits->max_memory_mib_per_user,
		    left);
	return FALSE;
}
