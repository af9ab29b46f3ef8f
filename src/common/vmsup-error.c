/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one error domain of vmsup, registered with D-Bus so that the same
 * GError travels as io.github.vmsup.Error.* and as a JSON-RPC error object.
 */

#include "config.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-error.h"
#include "vmsup-json.h"

static const GDBusErrorEntry vmsup_error_entries[] = {
    {VMSUP_ERROR_NOT_FOUND, "io.github.vmsup.Error.NotFound"},
    {VMSUP_ERROR_ALREADY_EXISTS, "io.github.vmsup.Error.AlreadyExists"},
    {VMSUP_ERROR_INVALID_ARGUMENT, "io.github.vmsup.Error.InvalidArgument"},
    {VMSUP_ERROR_BUSY, "io.github.vmsup.Error.Busy"},
    {VMSUP_ERROR_FAILED_PRECONDITION, "io.github.vmsup.Error.FailedPrecondition"},
    {VMSUP_ERROR_CANCELLED, "io.github.vmsup.Error.Cancelled"},
    {VMSUP_ERROR_TIMEOUT, "io.github.vmsup.Error.Timeout"},
    {VMSUP_ERROR_INTERNAL, "io.github.vmsup.Error.Internal"},
    {VMSUP_ERROR_PARSE, "io.github.vmsup.Error.ParseError"},
    {VMSUP_ERROR_INVALID_REQUEST, "io.github.vmsup.Error.InvalidRequest"},
    {VMSUP_ERROR_METHOD_NOT_FOUND, "io.github.vmsup.Error.MethodNotFound"},
    {VMSUP_ERROR_INVALID_PARAMS, "io.github.vmsup.Error.InvalidParams"},
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

const gchar *
vmsup_error_to_kind(gint code)
{
	switch (code) {
	case VMSUP_ERROR_PARSE:
		return "parse-error";
	case VMSUP_ERROR_INVALID_REQUEST:
		return "invalid-request";
	case VMSUP_ERROR_METHOD_NOT_FOUND:
		return "method-not-found";
	case VMSUP_ERROR_INVALID_PARAMS:
		return "invalid-params";
	case VMSUP_ERROR_CONNECT:
		return "connect";
	case VMSUP_ERROR_INTERRUPTED:
		return "cancelled";
	default:
		break;
	}
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

static gint
vmsup_error_code_for_own(gint code)
{
	switch (code) {
	case VMSUP_ERROR_PARSE:
	case VMSUP_ERROR_INVALID_REQUEST:
	case VMSUP_ERROR_METHOD_NOT_FOUND:
	case VMSUP_ERROR_INVALID_PARAMS:
		return code;
	case VMSUP_ERROR_CLOSED:
	case VMSUP_ERROR_NOT_READY:
		return VMSUP_ERROR_FAILED_PRECONDITION;
	case VMSUP_ERROR_INTERRUPTED:
		return VMSUP_ERROR_CANCELLED;
	default:
		if (code >= VMSUP_ERROR_NOT_FOUND && code < VMSUP_ERROR_LAST)
			return code;
		return VMSUP_ERROR_INTERNAL;
	}
}

gint
vmsup_error_get_code(const GError *error)
{
	if (error == NULL)
		return VMSUP_ERROR_INTERNAL;
	if (error->domain == VMSUP_ERROR)
		return vmsup_error_code_for_own(error->code);
	if (error->domain == G_IO_ERROR)
		return vmsup_error_code_for_io(error->code);
	if (error->domain == G_FILE_ERROR) {
		if (error->code == G_FILE_ERROR_NOENT)
			return VMSUP_ERROR_NOT_FOUND;
		if (error->code == G_FILE_ERROR_EXIST)
			return VMSUP_ERROR_ALREADY_EXISTS;
		if (error->code == G_FILE_ERROR_ACCES || error->code == G_FILE_ERROR_NOSPC)
			return VMSUP_ERROR_FAILED_PRECONDITION;
		return VMSUP_ERROR_INTERNAL;
	}
	if (error->domain == JSON_PARSER_ERROR || error->domain == G_KEY_FILE_ERROR)
		return VMSUP_ERROR_INVALID_ARGUMENT;
	return VMSUP_ERROR_INTERNAL;
}

const gchar *
vmsup_error_get_kind(const GError *error)
{
	return vmsup_error_to_kind(vmsup_error_get_code(error));
}

gboolean
vmsup_error_is_wire(const GError *error)
{
	return error != NULL && error->domain == VMSUP_ERROR &&
	       vmsup_error_code_for_own(error->code) == error->code;
}

GError *
vmsup_error_new_from_qemu(const gchar *command, JsonNode *error_member)
{
	JsonObject *error = error_member != NULL && JSON_NODE_HOLDS_OBJECT(error_member)
				? json_node_get_object(error_member)
				: NULL;

	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_COMMAND,
			   "%s: %s: %s",
			   command,
			   vmsup_json_object_get_string(error, "class", "GenericError"),
			   vmsup_json_object_get_string(error, "desc", "unknown error"));
}

void
vmsup_error_convert(GError **error)
{
	if (error == NULL || *error == NULL)
		return;
	(*error)->code = vmsup_error_get_code(*error);
	(*error)->domain = VMSUP_ERROR;
}
