/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* values are the wire codes of the contract: the mapping is the identity */
typedef enum {
	VMSUP_ERROR_NOT_FOUND = 1,
	VMSUP_ERROR_ALREADY_EXISTS,
	VMSUP_ERROR_INVALID_ARGUMENT,
	VMSUP_ERROR_BUSY,
	VMSUP_ERROR_FAILED_PRECONDITION,
	VMSUP_ERROR_CANCELLED,
	VMSUP_ERROR_TIMEOUT,
	VMSUP_ERROR_INTERNAL,
	VMSUP_ERROR_LAST /*< skip >*/
} VmsupError;

#define VMSUP_ERROR (vmsup_error_quark())

/* errors of the QEMU-facing layer (QMP and guest agent); converted at the RPC boundary */
typedef enum {
	VMSUP_QMP_ERROR_COMMAND,   /* QEMU answered with an error object: "<class>: <desc>" */
	VMSUP_QMP_ERROR_CLOSED,    /* the connection ended; pending commands fail with this */
	VMSUP_QMP_ERROR_TIMEOUT,   /* no reply within the command's timeout */
	VMSUP_QMP_ERROR_PROTOCOL,  /* garbage, an oversized line, an unexpected message */
	VMSUP_QMP_ERROR_NOT_READY, /* a command before the handshake finished */
} VmsupQmpError;

#define VMSUP_QMP_ERROR (vmsup_qmp_error_quark())

GQuark
vmsup_qmp_error_quark(void);

GQuark
vmsup_error_quark(void);

/* "not-found", "already-exists", ...; "internal" for anything unknown */
const gchar *
vmsup_error_to_kind(gint code);

/* -1 when @kind is not one of ours */
gint
vmsup_error_from_kind(const gchar *kind);

/* converts a foreign error (GIO, JSON, QMP, ...) into VMSUP_ERROR in place */
void
vmsup_error_convert(GError **error);

G_END_DECLS
