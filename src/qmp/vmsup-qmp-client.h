/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-error.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_QMP_CLIENT (vmsup_qmp_client_get_type())
G_DECLARE_FINAL_TYPE(VmsupQmpClient, vmsup_qmp_client, VMSUP, QMP_CLIENT, GObject)

/*
 * Signals:
 *   "event" (detailed by event name, e.g. "event::SHUTDOWN"):
 *       void (VmsupQmpClient *self, const gchar *name, JsonObject *data (nullable),
 *             gint64 timestamp_us, gpointer user_data)
 *   "closed": void (VmsupQmpClient *self, const GError *error (nullable on clean close),
 *             gpointer user_data); emitted exactly once. The error is NULL after
 *             vmsup_qmp_client_close() or when QEMU hangs up after `quit`; else
 *             VMSUP_ERROR_CLOSED (end of stream, I/O error) or _PROTOCOL (garbage,
 *             an oversized line), and pending commands fail with it.
 * Limits: lines of 1 MiB, 64 commands in flight (VMSUP_ERROR_BUSY beyond).
 */

/* @label names the peer in error messages, usually the VM name */
VmsupQmpClient *
vmsup_qmp_client_new(const gchar *label);

/* per-command timeout (default 10 s), also bounding the handshake; 0 disables */
void
vmsup_qmp_client_set_timeout(VmsupQmpClient *self, guint timeout_ms);

/* connects to a listening QMP Unix socket, reads the greeting, negotiates capabilities */
void
vmsup_qmp_client_connect_async(VmsupQmpClient *self,
			       const gchar *socket_path,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
gboolean
vmsup_qmp_client_connect_finish(VmsupQmpClient *self, GAsyncResult *res, GError **error);

/* the same over an already connected stream (a socketpair in tests) */
void
vmsup_qmp_client_handshake_async(VmsupQmpClient *self,
				 GIOStream *stream,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data);
gboolean
vmsup_qmp_client_handshake_finish(VmsupQmpClient *self, GAsyncResult *res, GError **error);

/* @arguments is borrowed and may be NULL; the result is the "return" member (full) */
void
vmsup_qmp_client_execute_async(VmsupQmpClient *self,
			       const gchar *command,
			       JsonObject *arguments,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
/* the same, bounded by @timeout_ms (0: no bound) instead of the client's timeout */
void
vmsup_qmp_client_execute_with_timeout_async(VmsupQmpClient *self,
					    const gchar *command,
					    JsonObject *arguments,
					    guint timeout_ms,
					    GCancellable *cancellable,
					    GAsyncReadyCallback callback,
					    gpointer user_data);
/* for both; a timeout is VMSUP_ERROR_TIMEOUT */
JsonNode *
vmsup_qmp_client_execute_finish(VmsupQmpClient *self, GAsyncResult *res, GError **error);

gboolean
vmsup_qmp_client_is_ready(VmsupQmpClient *self);

/*
 * Hands QEMU a copy of @fd (SCM_RIGHTS) for the `getfd` that must come
 * next; only between commands (BUSY while one is still being written)
 */
gboolean
vmsup_qmp_client_send_fd(VmsupQmpClient *self, gint fd, GError **error);

/* the label given at construction, usually the VM name */
const gchar *
vmsup_qmp_client_get_label(VmsupQmpClient *self);

/* the greeting's "QMP" object ({version, capabilities}), or NULL before it arrived */
JsonObject *
vmsup_qmp_client_get_greeting(VmsupQmpClient *self);

/* closes the connection; pending commands fail with VMSUP_ERROR_CLOSED */
void
vmsup_qmp_client_close(VmsupQmpClient *self);

G_END_DECLS
