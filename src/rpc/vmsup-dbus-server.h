/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-dbus-generated.h"
#include "vmsup-dbus-variant.h"
#include "vmsup-dbus-vm-objects.h"
#include "vmsup-rpc-table.h"

G_BEGIN_DECLS

#define VMSUP_DBUS_BUS_NAME "io.github.vmsup.Supervisor1"

#define VMSUP_TYPE_DBUS_SERVER (vmsup_dbus_server_get_type())
G_DECLARE_FINAL_TYPE(VmsupDbusServer, vmsup_dbus_server, VMSUP, DBUS_SERVER, GObject)

/*
 * The D-Bus transport of the dispatch table. @ctx is borrowed and must
 * outlive the server; its mode ("system" or else session) picks the
 * authorization. @vm_service (nullable) feeds the signals and the per-VM
 * objects.
 */
VmsupDbusServer *
vmsup_dbus_server_new(const VmsupRpcContext *ctx, VmsupVmService *vm_service);

/*
 * Owns VMSUP_DBUS_BUS_NAME on @bus_type and exports there. When the bus cannot
 * be reached or the name is taken this logs a warning and the daemon carries
 * on: the socket still serves.
 */
void
vmsup_dbus_server_own_name(VmsupDbusServer *self, GBusType bus_type);

/* exports the supervisor object and the per-VM objects on @connection (tests) */
gboolean
vmsup_dbus_server_export(VmsupDbusServer *self, GDBusConnection *connection, GError **error);

/* the VM objects, for tests */
VmsupDbusVmObjects *
vmsup_dbus_server_get_vm_objects(VmsupDbusServer *self);

/* "handle-get-operation" for "GetOperation": the generated skeleton's signal */
gchar *
vmsup_dbus_server_handle_signal_name(const gchar *dbus_name);

G_END_DECLS
