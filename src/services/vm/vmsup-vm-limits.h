/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "vmsup-vm-def.h"

G_BEGIN_DECLS

/*
 * The caps of vmsupd.conf on VMs; 0 is no limit. Owners other than root
 * and the daemon's own uid are bound by the per-user ones: they
 * administer the daemon, and MaxVMs still caps everyone.
 */
typedef struct {
	guint max_vms;                 /* MaxVMs: VMs defined or being created */
	guint max_vms_per_user;        /* MaxVMsPerUser */
	guint max_memory_mib_per_user; /* MaxMemoryMiBPerUser */
} VmsupVmLimits;

/* MaxVMs, for a create of @name while @count VMs are defined or being created */
gboolean
vmsup_vm_limits_check_count(const VmsupVmLimits *limits,
			    const gchar *name,
			    guint count,
			    GError **error);

/*
 * MaxVMsPerUser and MaxMemoryMiBPerUser for @def's owner, who holds @vms
 * other VMs with @memory_mib of memory, were @def added (@old_def NULL) or
 * put in place of @old_def; failed-precondition naming the limit
 */
gboolean
vmsup_vm_limits_check_owner(const VmsupVmLimits *limits,
			    const VmsupVmDef *def,
			    const VmsupVmDef *old_def,
			    guint vms,
			    guint64 memory_mib,
			    GError **error);

G_END_DECLS
