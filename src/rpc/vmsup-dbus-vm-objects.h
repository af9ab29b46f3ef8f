/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-dbus-generated.h"

G_BEGIN_DECLS

#define VMSUP_DBUS_SUPERVISOR_PATH "/io/github/vmsup/Supervisor1"
#define VMSUP_DBUS_VM_PATH_PREFIX VMSUP_DBUS_SUPERVISOR_PATH "/vm/"

/*
 * Called once for each new per-VM interface, before it is exported, so that
 * the owner connects its method handlers and its authorization.
 */
typedef void (*VmsupDbusVmBindFunc)(VmsupDBusVM1 *vm1, const gchar *name, gpointer user_data);

/*
 * The per-VM objects and the org.freedesktop.DBus.ObjectManager interface
 * over them at VMSUP_DBUS_SUPERVISOR_PATH. It is an interface skeleton, so
 * GetManagedObjects passes the same "g-authorize-method" as every other
 * call; a caller bound by the owner rule is shown only its own VMs.
 */
#define VMSUP_TYPE_DBUS_VM_OBJECTS (vmsup_dbus_vm_objects_get_type())
G_DECLARE_FINAL_TYPE(VmsupDbusVmObjects,
		     vmsup_dbus_vm_objects,
		     VMSUP,
		     DBUS_VM_OBJECTS,
		     GDBusInterfaceSkeleton)

/* @bind_data is unowned: the owner of the returned object must outlive it */
VmsupDbusVmObjects *
vmsup_dbus_vm_objects_new(VmsupDbusVmBindFunc bind, gpointer bind_data);

/* exports the ObjectManager and every VM object on @connection */
gboolean
vmsup_dbus_vm_objects_export(VmsupDbusVmObjects *self, GDBusConnection *connection, GError **error);
void
vmsup_dbus_vm_objects_unexport(VmsupDbusVmObjects *self);

/* creates or refreshes the object of VM @name from its vm.get result (borrowed) */
void
vmsup_dbus_vm_objects_update(VmsupDbusVmObjects *self, const gchar *name, JsonObject *vm);
/*
 * sets the statistics properties of VM @name's object from a vm.stats
 * result (borrowed): CpuPercent, RssBytes, UptimeSeconds; unknown is 0
 */
void
vmsup_dbus_vm_objects_update_stats(VmsupDbusVmObjects *self, const gchar *name, JsonObject *stats);
void
vmsup_dbus_vm_objects_remove(VmsupDbusVmObjects *self, const gchar *name);

/* the VM1 interface of @name's object, or NULL (transfer none) */
VmsupDBusVM1 *
vmsup_dbus_vm_objects_lookup(VmsupDbusVmObjects *self, const gchar *name);

/* "/io/github/vmsup/Supervisor1/vm/<name escaped with g_dbus_escape_object_path()>" */
gchar *
vmsup_dbus_vm_object_path(const gchar *name);

G_END_DECLS
