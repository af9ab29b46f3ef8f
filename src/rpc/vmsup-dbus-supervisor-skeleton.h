/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-dbus-generated.h"
#include "vmsup-policy.h"
#include "vmsup-vm-service.h"

G_BEGIN_DECLS

/* at most one PropertiesChanged of the supervisor in this time */
#define VMSUP_DBUS_SUPERVISOR_COALESCE_MS 200

#define VMSUP_TYPE_DBUS_SUPERVISOR_SKELETON (vmsup_dbus_supervisor_skeleton_get_type())
G_DECLARE_FINAL_TYPE(VmsupDbusSupervisorSkeleton,
		     vmsup_dbus_supervisor_skeleton,
		     VMSUP,
		     DBUS_SUPERVISOR_SKELETON,
		     VmsupDBusSupervisor1Skeleton)

/*
 * The io.github.vmsup.Supervisor1 interface, its properties from
 * @vm_service (nullable), the counts a caller reads as @policy lets it see.
 */
VmsupDbusSupervisorSkeleton *
vmsup_dbus_supervisor_skeleton_new(VmsupVmService *vm_service, VmsupPolicy *policy);

/*
 * Something the properties show may have changed: they are read again
 * within VMSUP_DBUS_SUPERVISOR_COALESCE_MS, and one PropertiesChanged
 * carries whatever changed meanwhile.
 */
void
vmsup_dbus_supervisor_skeleton_queue_refresh(VmsupDbusSupervisorSkeleton *self);

G_END_DECLS
