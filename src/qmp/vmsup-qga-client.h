/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-error.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_QGA_CLIENT (vmsup_qga_client_get_type())
G_DECLARE_FINAL_TYPE(VmsupQgaClient, vmsup_qga_client, VMSUP, QGA_CLIENT, GObject)

/*
 * A client of qemu-guest-agent over the VM's virtio-serial chardev socket.
 * Connecting does the guest-sync-delimited handshake (0xFF sentinel, fresh
 * id), so a stale reply is never taken for a fresh one. After a timeout the
 * next command resynchronises first. A dead agent is an error, never a hang.
 */

VmsupQgaClient *
vmsup_qga_client_new(const gchar *label, const gchar *socket_path);

/* the same over an already connected stream (a socketpair in tests); used once, no reconnect */
VmsupQgaClient *
vmsup_qga_client_new_for_stream(const gchar *label, GIOStream *stream);

/* connects and synchronises, retrying the sync until @timeout_ms (agent still booting) */
void
vmsup_qga_client_connect_async(VmsupQgaClient *self,
			       guint timeout_ms,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
gboolean
vmsup_qga_client_connect_finish(VmsupQgaClient *self, GAsyncResult *res, GError **error);

/*
 * @arguments borrowed, may be NULL; the result is "return" (full); connects
 * first if needed. @timeout_ms 0 means 10 s here and below. Commands that
 * the agent never answers (guest-shutdown, guest-suspend-*) succeed with a
 * JSON null once sent.
 */
void
vmsup_qga_client_execute_async(VmsupQgaClient *self,
			       const gchar *command,
			       JsonObject *arguments,
			       guint timeout_ms,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
JsonNode *
vmsup_qga_client_execute_finish(VmsupQgaClient *self, GAsyncResult *res, GError **error);

/*
 * guest-exec + guest-exec-status polling; result object {exit_code, stdout,
 * stderr} (decoded; exit_code 128+N and "signal" when killed by signal N).
 * Not finished within @timeout_ms: VMSUP_ERROR_TIMEOUT.
 */
void
vmsup_qga_client_exec_async(VmsupQgaClient *self,
			    const gchar *const *argv,
			    const gchar *stdin_data,
			    guint timeout_ms,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data);
JsonObject *
vmsup_qga_client_exec_finish(VmsupQgaClient *self, GAsyncResult *res, GError **error);

/* reads a whole guest file through guest-file-open/read/close (loops until eof) */
void
vmsup_qga_client_read_file_async(VmsupQgaClient *self,
				 const gchar *path,
				 guint timeout_ms,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data);
GBytes *
vmsup_qga_client_read_file_finish(VmsupQgaClient *self, GAsyncResult *res, GError **error);

void
vmsup_qga_client_close(VmsupQgaClient *self);

G_END_DECLS
