/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-rpc-table.h"

G_BEGIN_DECLS

/* limits of one connection; a client past them is answered with an error or dropped */
#define VMSUP_JSONRPC_MAX_LINE (1024 * 1024)      /* bytes of one request line */
#define VMSUP_JSONRPC_MAX_QUEUE (4 * 1024 * 1024) /* unsent bytes before a drop */
#define VMSUP_JSONRPC_HIGH_WATER (256 * 1024)     /* unsent bytes that pause reading */
#define VMSUP_JSONRPC_MAX_PENDING 64              /* calls in flight that pause reading */
#define VMSUP_JSONRPC_MAX_BATCH 256               /* requests in one batch */
#define VMSUP_JSONRPC_MAX_CONNECTIONS 256         /* of all users together */
#define VMSUP_JSONRPC_RESERVED_CONNECTIONS 16     /* beyond them, only for root and our uid */
#define VMSUP_JSONRPC_DEFAULT_MAX_PER_USER 32     /* MaxConnectionsPerUser */
#define VMSUP_JSONRPC_DEFAULT_IDLE_TIMEOUT_S 300  /* IdleTimeoutSec */

#define VMSUP_TYPE_JSONRPC_SERVER (vmsup_jsonrpc_server_get_type())
G_DECLARE_FINAL_TYPE(VmsupJsonrpcServer, vmsup_jsonrpc_server, VMSUP, JSONRPC_SERVER, GObject)

/*
 * JSON-RPC 2.0 over a Unix stream socket, one JSON value per line. @ctx is
 * borrowed and must outlive the server.
 *
 * A connection that called the table's `events.subscribe` receives the
 * events of ctx->events, each that ctx->policy lets it hear.
 */
VmsupJsonrpcServer *
vmsup_jsonrpc_server_new(const VmsupRpcContext *ctx);

/*
 * Binds @socket_path (which must not exist) and starts serving. Session mode:
 * mode 0600, only this process's uid and root may talk. System mode: root,
 * and members of @allowed_gid (-1: nobody else) with mode 0660 group
 * @allowed_gid.
 */
gboolean
vmsup_jsonrpc_server_listen(VmsupJsonrpcServer *self,
			    const gchar *socket_path,
			    gboolean system_mode,
			    gint64 allowed_gid,
			    GError **error);

/*
 * Serves @fd, a listening Unix stream socket made by someone else (systemd's
 * socket activation), with the peer checks of _listen(). The socket file is
 * left as it is: neither its mode nor its group is changed, and closing
 * the server does not remove it. @fd is the server's, also on failure.
 */
gboolean
vmsup_jsonrpc_server_adopt(VmsupJsonrpcServer *self,
			   gint fd,
			   gboolean system_mode,
			   gint64 allowed_gid,
			   GError **error);

/*
 * Per-owner limits (vmsupd.conf): a uid other than root and the daemon's own
 * may hold at most @max_per_user connections (0: only the overall cap); a
 * connection with nothing asked, nothing unanswered and no subscription is
 * closed after @idle_timeout_s seconds (0: never). Applies to connections
 * made afterwards.
 */
void
vmsup_jsonrpc_server_set_limits(VmsupJsonrpcServer *self, guint max_per_user, guint idle_timeout_s);

/*
 * A notification {"jsonrpc":"2.0","method":@method,"params":@params} to
 * every subscriber the policy lets hear it.
 */
void
vmsup_jsonrpc_server_emit_event(VmsupJsonrpcServer *self, const gchar *method, JsonObject *params);

/* stops listening, removes the socket file, drops every connection; also done by dispose */
void
vmsup_jsonrpc_server_close(VmsupJsonrpcServer *self);

guint
vmsup_jsonrpc_server_get_n_connections(VmsupJsonrpcServer *self);

/*
 * Feeds @data to a connection of its own, as if a client of @uid had sent it
 * and then closed its side; returns what the server wrote back before the
 * handlers that are still running answered. For fuzzing and tests.
 */
gchar *
vmsup_jsonrpc_server_process_data(VmsupJsonrpcServer *self,
				  const gchar *data,
				  gsize length,
				  guint32 uid);

G_END_DECLS
