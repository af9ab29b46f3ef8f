/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/*
 * The one error domain of vmsup. The codes of the contract are the wire
 * codes (the mapping is the identity, on JSON-RPC and as D-Bus names); the
 * codes from VMSUP_ERROR_CONNECT on never leave the process as they are:
 * vmsup_error_get_code() gives the wire code they go out with.
 */
typedef enum {
	/* the contract's, for failures of a request */
	VMSUP_ERROR_NOT_FOUND = 1,
	VMSUP_ERROR_ALREADY_EXISTS,
	VMSUP_ERROR_INVALID_ARGUMENT,
	VMSUP_ERROR_BUSY,
	VMSUP_ERROR_FAILED_PRECONDITION,
	VMSUP_ERROR_CANCELLED,
	VMSUP_ERROR_TIMEOUT,
	VMSUP_ERROR_INTERNAL,
	/* the end of the codes 1..8 */
	VMSUP_ERROR_LAST, /*< skip >*/
	/* JSON-RPC 2.0's own, for faults of the protocol: found by the transports and the table */
	VMSUP_ERROR_PARSE = -32700,
	VMSUP_ERROR_INVALID_REQUEST = -32600,
	VMSUP_ERROR_METHOD_NOT_FOUND = -32601,
	VMSUP_ERROR_INVALID_PARAMS = -32602,
	/* of this side of a connection (QMP, the guest agent, vmsupd's socket), never sent */
	VMSUP_ERROR_CONNECT = 100, /* nobody listens on the socket */
	VMSUP_ERROR_CLOSED,        /* the connection ended; what is pending fails with this */
	VMSUP_ERROR_PROTOCOL,      /* garbage, an oversized line, an unexpected message */
	VMSUP_ERROR_COMMAND,       /* QEMU or the agent answered with an error: "<class>: <desc>" */
	VMSUP_ERROR_NOT_READY,     /* a QMP command before the handshake finished */
	VMSUP_ERROR_INTERRUPTED,   /* a wait given up here (vmsup_jsonrpc_client_cancel()) */
} VmsupError;

#define VMSUP_ERROR (vmsup_error_quark())

GQuark
vmsup_error_quark(void);

/*
 * The name of @code: "not-found", ..., "parse-error", "invalid-request",
 * "method-not-found", "invalid-params"; "connect" and "cancelled" for the
 * codes of the same meaning on this side; "internal" for anything else
 */
const gchar *
vmsup_error_to_kind(gint code);

/* a code of the contract (1..8) named @kind; -1 when @kind is not one of them */
gint
vmsup_error_from_kind(const gchar *kind);

/*
 * The code @error goes out with on either wire, the one conversion of
 * vmsup: VMSUP_ERROR's wire codes as they are, the others and foreign
 * domains (GIO, GFile, json-glib, GKeyFile) mapped to 1..8
 */
gint
vmsup_error_get_code(const GError *error);

/* the kind of vmsup_error_get_code(), error.data.kind on the wire */
const gchar *
vmsup_error_get_kind(const GError *error);

/* whether @error is VMSUP_ERROR with a code that can come from a peer (a wire code) */
gboolean
vmsup_error_is_wire(const GError *error);

/* makes @error VMSUP_ERROR with vmsup_error_get_code(), in place; the message stays */
void
vmsup_error_convert(GError **error);

/*
 * The error member of a QMP or guest-agent reply to @command as
 * VMSUP_ERROR_COMMAND, "<command>: <class>: <desc>" in QEMU's own words;
 * @error_member need not be an object
 */
GError *
vmsup_error_new_from_qemu(const gchar *command, JsonNode *error_member);

G_END_DECLS
