/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Asking a running VM with the stats' deadlines: a QEMU or a guest agent
 * that does not answer must not hold a stats request for the clients'
 * longer defaults.
 */
#pragma once

#include "vmsup-vm-hooks.h"

G_BEGIN_DECLS

/* a QMP command that takes longer than this counts as "QMP not answering" */
#define VMSUP_STATS_QMP_TIMEOUT_MS 2000
#define VMSUP_STATS_AGENT_TIMEOUT_MS 2000

/* the QEMU of @handles is there: started, not reaped, and the pid alive */
gboolean
vmsup_stats_qmp_process_alive(VmsupVmHandles *handles);

/*
 * vmsup_qmp_client_execute_async() on the QMP of @handles, bounded by
 * VMSUP_STATS_QMP_TIMEOUT_MS; QMP not connected is an error at once
 */
void
vmsup_stats_qmp_execute_async(VmsupVmHandles *handles,
			      const gchar *command,
			      JsonObject *arguments,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);

/* the answer; a timeout is VMSUP_ERROR_TIMEOUT naming the VM */
JsonNode *
vmsup_stats_qmp_execute_finish(GAsyncResult *res, GError **error);

G_END_DECLS
