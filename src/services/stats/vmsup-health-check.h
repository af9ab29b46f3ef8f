/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Does a VM answer? Its process, QMP and the guest agent, each timed. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-vm-hooks.h"

G_BEGIN_DECLS

/*
 * The vm.health result of VM @name: {status ("ok", "degraded", "down"),
 * process, qmp, agent, agent_rtt_ms, detail}. @handles NULL: not running.
 */
void
vmsup_health_check_async(const gchar *name,
			 VmsupVmHandles *handles,
			 GCancellable *cancellable,
			 GAsyncReadyCallback callback,
			 gpointer user_data);
JsonObject *
vmsup_health_check_finish(GAsyncResult *res, GError **error);

/* the vm.ping result of VM @name, whose @handles have an agent: {rtt_ms} */
void
vmsup_health_check_ping_async(const gchar *name,
			      VmsupVmHandles *handles,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
JsonObject *
vmsup_health_check_ping_finish(GAsyncResult *res, GError **error);

G_END_DECLS
