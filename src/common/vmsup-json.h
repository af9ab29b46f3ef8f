/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "vmsup-json-check.h"

G_BEGIN_DECLS

/*
 * Parses exactly one JSON value as vmsup_json_check_text() allows it, and
 * refuses its problems too: error in VMSUP_ERROR_INVALID_ARGUMENT.
 */
JsonNode *
vmsup_json_parse(const gchar *data, gssize length, GError **error);

/*
 * Like vmsup_json_parse(), but a value with problems is parsed and its
 * problems returned in @out_problems (of VmsupJsonProblem, NULL if none) for
 * the caller to answer; json-glib's reading of such values is not to be used.
 */
JsonNode *
vmsup_json_parse_checked(const gchar *data,
			 gssize length,
			 VmsupJsonCheckFlags flags,
			 GPtrArray **out_problems,
			 GError **error);

/* like vmsup_json_parse_object() with @flags; problems are errors */
JsonObject *
vmsup_json_parse_object_full(const gchar *data,
			     gssize length,
			     VmsupJsonCheckFlags flags,
			     GError **error);

/* "'params.name': it contains a NUL character (\u0000)"; NULL for no problems */
gchar *
vmsup_json_problems_to_string(GPtrArray *problems);

/* like vmsup_json_parse() but the value must be an object */
JsonObject *
vmsup_json_parse_object(const gchar *data, gssize length, GError **error);

/* compact one-line JSON (safe for line framing) unless @pretty */
gchar *
vmsup_json_to_string(JsonNode *node, gboolean pretty);

gchar *
vmsup_json_object_to_string(JsonObject *object, gboolean pretty);

JsonNode *
vmsup_json_node_new_object(JsonObject *object);

/* typed lookups that treat a missing member or JSON null as "absent" */
const gchar *
vmsup_json_object_get_string(JsonObject *object, const gchar *member, const gchar *fallback);
gint64
vmsup_json_object_get_int(JsonObject *object, const gchar *member, gint64 fallback);
gboolean
vmsup_json_object_get_bool(JsonObject *object, const gchar *member, gboolean fallback);
gdouble
vmsup_json_object_get_double(JsonObject *object, const gchar *member, gdouble fallback);
/* the strings of an array member (others skipped), NULL when it is absent or no array */
GStrv
vmsup_json_object_dup_strv(JsonObject *object, const gchar *member);

/*
 * An integer in [@min, @max], checked with the messages clients see
 * (VMSUP_ERROR_INVALID_ARGUMENT). @member names the value in them. For the
 * object form a missing member or JSON null gives @fallback, unchecked.
 */
gboolean
vmsup_json_node_get_int_in_range(JsonNode *node,
				 const gchar *member,
				 gint64 min,
				 gint64 max,
				 gint64 *out_value,
				 GError **error);
gboolean
vmsup_json_object_get_int_in_range(JsonObject *object,
				   const gchar *member,
				   gint64 min,
				   gint64 max,
				   gint64 fallback,
				   gint64 *out_value,
				   GError **error);

/*
 * A boolean, checked with the message clients see
 * (VMSUP_ERROR_INVALID_ARGUMENT); for the object form a missing member or
 * JSON null gives @fallback.
 */
gboolean
vmsup_json_node_get_checked_bool(JsonNode *node,
				 const gchar *member,
				 gboolean *out_value,
				 GError **error);
gboolean
vmsup_json_object_get_checked_bool(JsonObject *object,
				   const gchar *member,
				   gboolean fallback,
				   gboolean *out_value,
				   GError **error);

/* the JSON type name of a node as users read it: "string", "integer", "object", ... */
const gchar *
vmsup_json_node_type_name(JsonNode *node);

G_END_DECLS
