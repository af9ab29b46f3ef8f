/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

#include "vmsup-error.h"

G_BEGIN_DECLS

/*
 * Failures of the client side are VMSUP_ERROR_CONNECT, _CLOSED, _PROTOCOL
 * and _INTERRUPTED; an error object from vmsupd arrives as VMSUP_ERROR with
 * its wire code (vmsup_error_is_wire()), a parse error as
 * VMSUP_ERROR_INVALID_REQUEST.
 */

#define VMSUP_TYPE_JSONRPC_CLIENT (vmsup_jsonrpc_client_get_type())
G_DECLARE_FINAL_TYPE(VmsupJsonrpcClient, vmsup_jsonrpc_client, VMSUP, JSONRPC_CLIENT, GObject)

/*
 * A blocking client for command-line use. While it waits it iterates the
 * thread-default main context, so sources there (a SIGINT handler) keep
 * running.
 */
VmsupJsonrpcClient *
vmsup_jsonrpc_client_new(void);

gboolean
vmsup_jsonrpc_client_connect(VmsupJsonrpcClient *self, const gchar *socket_path, GError **error);

/*
 * Like _connect(), for the session daemon's own socket: when nobody listens
 * there (ENOENT, ECONNREFUSED) and the session has a bus, asks the bus to
 * start io.github.vmsup.Supervisor1 (D-Bus activation), waits for it, and
 * connects again.
 */
gboolean
vmsup_jsonrpc_client_connect_activating(VmsupJsonrpcClient *self,
					const gchar *socket_path,
					GError **error);

/*
 * The connected socket as _connect() (@activate FALSE) or
 * _connect_activating() (TRUE) finds it, for a relay (vmsup bridge)
 */
GIOStream *
vmsup_jsonrpc_client_dial(const gchar *socket_path, gboolean activate, GError **error);

/* talks over @stream (a reference is taken), a connection made elsewhere (ssh) */
void
vmsup_jsonrpc_client_connect_stream(VmsupJsonrpcClient *self, GIOStream *stream);

/*
 * The command that starts vmsupd here, for messages: the socket unit via
 * systemctl where systemd runs and the unit is installed, else the vmsupd
 * binary (installed in libexec, or found in PATH) with --system or --session
 */
gchar *
vmsup_jsonrpc_client_start_command(gboolean system);

/*
 * One request and its answer; @params is borrowed and may be NULL. The
 * result comes back (full); notifications arriving meanwhile are kept for
 * vmsup_jsonrpc_client_next_notification().
 */
JsonNode *
vmsup_jsonrpc_client_call(VmsupJsonrpcClient *self,
			  const gchar *method,
			  JsonObject *params,
			  GError **error);

/*
 * like _call_object() for a method answering with a descriptor ({"fd":
 * index} and the descriptor by SCM_RIGHTS): the descriptor (close-on-exec,
 * the caller's), or -1 with an error; @out_result: the answer, or NULL
 */
gint
vmsup_jsonrpc_client_call_fd(VmsupJsonrpcClient *self,
			     const gchar *method,
			     JsonObject *params,
			     JsonObject **out_result,
			     GError **error);

/* like _call() for methods answering an object */
JsonObject *
vmsup_jsonrpc_client_call_object(VmsupJsonrpcClient *self,
				 const gchar *method,
				 JsonObject *params,
				 GError **error);

/*
 * The next notification ({method, params}), waiting up to @timeout_ms (-1:
 * without limit). NULL without an error when the time is up.
 */
JsonObject *
vmsup_jsonrpc_client_next_notification(VmsupJsonrpcClient *self, gint timeout_ms, GError **error);

/*
 * Whether vmsupd answered an error about the connection itself (a limit, a
 * permission, an idle timeout) rather than about a request
 */
gboolean
vmsup_jsonrpc_client_was_refused(VmsupJsonrpcClient *self);

/*
 * Makes the wait of vmsup_jsonrpc_client_next_notification() in progress, or
 * else the next one, fail with VMSUP_ERROR_INTERRUPTED; calls
 * are never interrupted. Meant for a source dispatched during the wait.
 */
void
vmsup_jsonrpc_client_cancel(VmsupJsonrpcClient *self);

G_END_DECLS
