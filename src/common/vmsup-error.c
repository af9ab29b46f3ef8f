/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one error domain of vmsup, registered with D-Bus so that the same
 * GError travels as io.github.vmsup.Error.* and as a JSON-RPC error object.
 */

#include "config.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-error.h"

static const GDBusErrorEntry vmsup_error_entries[] = {
    {VMSUP_ERROR_NOT_FOUND, "io.github.vmsup.Error.NotFound"},
    {VMSUP_ERROR_ALREADY_EXISTS, "io.github.vmsup.Error.AlreadyExists"},
    {VMSUP_ERROR_INVALID_ARGUMENT, "io.github.vmsup.Error.InvalidArgument"},
    {VMSUP_ERROR_BUSY, "io.github.vmsup.Error.Busy"},
    {VMSUP_ERROR_FAILED_PRECONDITION, "io.github.vmsup.Error.FailedPrecondition"},
    {VMSUP_ERROR_CANCELLED, "io.github.vmsup.Error.Cancelled"},
    {VMSUP_ERROR_TIMEOUT, "io.github.vmsup.Error.Timeout"},
    {VMSUP_ERROR_INTERNAL, "io.github.vmsup.Error.Internal"},
};

static const gchar *const vmsup_error_kinds[] = {
    [VMSUP_ERROR_NOT_FOUND] = "not-found",
    [VMSUP_ERROR_ALREADY_EXISTS] = "already-exists",
    [VMSUP_ERROR_INVALID_ARGUMENT] = "invalid-argument",
    [VMSUP_ERROR_BUSY] = "busy",
    [VMSUP_ERROR_FAILED_PRECONDITION] = "failed-precondition",
    [VMSUP_ERROR_CANCELLED] = "cancelled",
    [VMSUP_ERROR_TIMEOUT] = "timeout",
    [VMSUP_ERROR_INTERNAL] = "internal",
};

GQuark
vmsup_error_quark(void)
{
	static gsize quark = 0;
	g_dbus_error_register_error_domain("vmsup-error-quark",
					   &quark,
					   vmsup_error_entries,
					   G_N_ELEMENTS(vmsup_error_entries));
	return (GQuark)quark;
}

G_DEFINE_QUARK(vmsup-qmp-error-quark, vmsup_qmp_error)

const gchar *
vmsup_error_to_kind(gint code)
{
	if (code < VMSUP_ERROR_NOT_FOUND || code >= VMSUP_ERROR_LAST)
		return "internal";
	return vmsup_error_kinds[code];
}

gint
vmsup_error_from_kind(const gchar *kind)
{
	if (kind == NULL)
		return -1;
	for (gint i = VMSUP_ERROR_NOT_FOUND; i < VMSUP_ERROR_LAST; i++) {
		if (g_strcmp0(vmsup_error_kinds[i], kind) == 0)
			return i;
	}
	return -1;
}

static gint
vmsup_error_code_for_io(gint code)
{
	switch (code) {
	case G_IO_ERROR_NOT_FOUND:
		return VMSUP_ERROR_NOT_FOUND;
	case G_IO_ERROR_EXISTS:
		return VMSUP_ERROR_ALREADY_EXISTS;
	case G_IO_ERROR_INVALID_ARGUMENT:
	case G_IO_ERROR_INVALID_DATA:
	case G_IO_ERROR_INVALID_FILENAME:
	case G_IO_ERROR_FILENAME_TOO_LONG:
		return VMSUP_ERROR_INVALID_ARGUMENT;
	case G_IO_ERROR_BUSY:
	case G_IO_ERROR_PENDING:
		return VMSUP_ERROR_BUSY;
	case G_IO_ERROR_PERMISSION_DENIED:
	case G_IO_ERROR_NO_SPACE:
	case G_IO_ERROR_NOT_SUPPORTED:
	case G_IO_ERROR_CONNECTION_REFUSED:
	case G_IO_ERROR_CLOSED:
	case G_IO_ERROR_BROKEN_PIPE:
		return VMSUP_ERROR_FAILED_PRECONDITION;
	case G_IO_ERROR_CANCELLED:
		return VMSUP_ERROR_CANCELLED;
	case G_IO_ERROR_TIMED_OUT:
		return VMSUP_ERROR_TIMEOUT;
	default:
		return VMSUP_ERROR_INTERNAL;
	}
}

void
vmsup_error_convert(GError **error)
{
	GError *err;
	gint code = VMSUP_ERROR_INTERNAL;

	if (error == NULL || *error == NULL)
		return;
	err = *error;
	if (err->domain == VMSUP_ERROR)
		return;
	if (err->domain == G_IO_ERROR)
		code = vmsup_error_code_for_io(err->code);
	else if (err->domain == VMSUP_QMP_ERROR) {
		if (err->code == VMSUP_QMP_ERROR_TIMEOUT)
			code = VMSUP_ERROR_TIMEOUT;
		else if (err->code == VMSUP_QMP_ERROR_CLOSED ||
			 err->code == VMSUP_QMP_ERROR_NOT_READY)
			code = VMSUP_ERROR_FAILED_PRECONDITION;
	}
	else if (err->domain == G_FILE_ERROR) {
		if (err->code == G_FILE_ERROR_NOENT)
			code = VMSUP_ERROR_NOT_FOUND;
		else if (err->code == G_FILE_ERROR_EXIST)
			code = VMSUP_ERROR_ALREADY_EXISTS;
		else if (err->code == G_FILE_ERROR_ACCES || err->code == G_FILE_ERROR_NOSPC)
			code = VMSUP_ERROR_FAILED_PRECONDITION;
	} else if (err->domain == JSON_PARSER_ERROR) {
		code = VMSUP_ERROR_INVALID_ARGUMENT;
	} else if (err->domain == G_KEY_FILE_ERROR) {
		code = VMSUP_ERROR_INVALID_ARGUMENT;
	}
	err->domain = VMSUP_ERROR;
	err->code = code;
}
