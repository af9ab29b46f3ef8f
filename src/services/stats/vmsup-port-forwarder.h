/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-vm-hooks.h"

G_BEGIN_DECLS

/*
 * What vm.ports does for a running VM with a guest agent: the guest's TCP
 * listeners, a host forward on 127.0.0.1 for each (through QMP, kept until
 * the VM's QEMU goes) and an HTTP(S) probe through it.
 */
#define VMSUP_TYPE_PORT_FORWARDER (vmsup_port_forwarder_get_type())
G_DECLARE_FINAL_TYPE(VmsupPortForwarder, vmsup_port_forwarder, VMSUP, PORT_FORWARDER, GObject)

VmsupPortForwarder *
vmsup_port_forwarder_new(void);

/* how long a listener gets to answer the probe before it counts as not web (0: 5000 ms) */
void
vmsup_port_forwarder_set_probe_timeout(VmsupPortForwarder *self, guint timeout_ms);

/* the host ports given to VM @name are free again: its QEMU is gone */
void
vmsup_port_forwarder_release(VmsupPortForwarder *self, const gchar *name);

/* the vm.ports result of VM @name, whose @handles have an agent */
void
vmsup_port_forwarder_list_async(VmsupPortForwarder *self,
				const gchar *name,
				VmsupVmHandles *handles,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data);
JsonObject *
vmsup_port_forwarder_list_finish(VmsupPortForwarder *self, GAsyncResult *res, GError **error);

G_END_DECLS
