/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one JSON helper: parsing and printing for every wire of vmsup
 * (QMP, guest agent, JSON-RPC, state files).
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-json.h"

/*
 * json-glib parses recursively: a peer (a guest, a client) sending a few
 * hundred thousand '[' would overflow the stack, so nesting is bounded first.
 */
static gboolean
vmsup_json_depth_is_sane(const gchar *data, gsize length)
{
	guint depth = 0;
	gboolean in_string = FALSE;

	for (gsize i = 0; i < length; i++) {
		gchar c = data[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = FALSE;
			continue;
		}
		if (c == '"') {
			in_string = TRUE;
		} else if (c == '[' || c == '{') {
			if (++depth > VMSUP_JSON_MAX_DEPTH)
				return FALSE;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return TRUE;
}

JsonNode *
vmsup_json_parse(const gchar *data, gssize length, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(GError) error_local = NULL;
	JsonNode *root;

	if (length < 0)
		length = strlen(data);
	if (!vmsup_json_depth_is_sane(data, length)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "JSON nested deeper than %d levels",
			    VMSUP_JSON_MAX_DEPTH);
		return NULL;
	}
	if (!json_parser_load_from_data(parser, data, length, &error_local)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "invalid JSON: %s",
			    error_local->message);
		return NULL;
	}
	root = json_parser_get_root(parser);
	if (root == NULL) {
		g_set_error_literal(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT, "empty JSON");
		return NULL;
	}
	return json_node_ref(root);
}

JsonObject *
vmsup_json_parse_object(const gchar *data, gssize length, GError **error)
{
	g_autoptr(JsonNode) node = vmsup_json_parse(data, length, error);
	if (node == NULL)
		return NULL;
	if (!JSON_NODE_HOLDS_OBJECT(node)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "expected a JSON object, got %s",
			    vmsup_json_node_type_name(node));
		return NULL;
	}
	return json_object_ref(json_node_get_object(node));
}

gchar *
vmsup_json_to_string(JsonNode *node, gboolean pretty)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	json_generator_set_pretty(gen, pretty);
	json_generator_set_root(gen, node);
	return json_generator_to_data(gen, NULL);
}

gchar *
vmsup_json_object_to_string(JsonObject *object, gboolean pretty)
{
	g_autoptr(JsonNode) node = vmsup_json_node_new_object(object);
	return vmsup_json_to_string(node, pretty);
}

JsonNode *
vmsup_json_node_new_object(JsonObject *object)
{
	JsonNode *node = json_node_new(JSON_NODE_OBJECT);
	json_node_set_object(node, object);
	return node;
}

static JsonNode *
vmsup_json_object_get_present(JsonObject *object, const gchar *member)
{
	JsonNode *node;
	if (object == NULL)
		return NULL;
	node = json_object_get_member(object, member);
	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return NULL;
	return node;
}

const gchar *
vmsup_json_object_get_string(JsonObject *object, const gchar *member, const gchar *fallback)
{
	JsonNode *node = vmsup_json_object_get_present(object, member);
	if (node == NULL || json_node_get_value_type(node) != G_TYPE_STRING)
		return fallback;
	return json_node_get_string(node);
}

gint64
vmsup_json_object_get_int(JsonObject *object, const gchar *member, gint64 fallback)
{
	JsonNode *node = vmsup_json_object_get_present(object, member);
	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
		return fallback;
	if (json_node_get_value_type(node) == G_TYPE_INT64)
		return json_node_get_int(node);
	if (json_node_get_value_type(node) == G_TYPE_DOUBLE)
		return (gint64)json_node_get_double(node);
	return fallback;
}

gboolean
vmsup_json_object_get_bool(JsonObject *object, const gchar *member, gboolean fallback)
{
	JsonNode *node = vmsup_json_object_get_present(object, member);
	if (node == NULL || json_node_get_value_type(node) != G_TYPE_BOOLEAN)
		return fallback;
	return json_node_get_boolean(node);
}

gdouble
vmsup_json_object_get_double(JsonObject *object, const gchar *member, gdouble fallback)
{
	JsonNode *node = vmsup_json_object_get_present(object, member);
	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
		return fallback;
	if (json_node_get_value_type(node) == G_TYPE_DOUBLE)
		return json_node_get_double(node);
	if (json_node_get_value_type(node) == G_TYPE_INT64)
		return (gdouble)json_node_get_int(node);
	return fallback;
}

gboolean
vmsup_json_node_get_int_in_range(JsonNode *node,
				 const gchar *member,
				 gint64 min,
				 gint64 max,
				 gint64 *out_value,
				 GError **error)
{
	gint64 value;

	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' must be an integer, got %s"),
			    member,
			    vmsup_json_node_type_name(node));
		return FALSE;
	}
	value = json_node_get_int(node);
	if (value < min || value > max) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' must be between %lld and %lld, got %lld"),
			    member,
			    (long long)min,
			    (long long)max,
			    (long long)value);
		return FALSE;
	}
	*out_value = value;
	return TRUE;
}

gboolean
vmsup_json_object_get_int_in_range(JsonObject *object,
				   const gchar *member,
				   gint64 min,
				   gint64 max,
				   gint64 fallback,
				   gint64 *out_value,
				   GError **error)
{
	JsonNode *node = vmsup_json_object_get_present(object, member);
	if (node == NULL) {
		*out_value = fallback;
		return TRUE;
	}
	return vmsup_json_node_get_int_in_range(node, member, min, max, out_value, error);
}

const gchar *
vmsup_json_node_type_name(JsonNode *node)
{
	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return "null";
	if (JSON_NODE_HOLDS_OBJECT(node))
		return "object";
	if (JSON_NODE_HOLDS_ARRAY(node))
		return "array";
	switch (json_node_get_value_type(node)) {
	case G_TYPE_STRING:
		return "string";
	case G_TYPE_INT64:
		return "integer";
	case G_TYPE_DOUBLE:
		return "number";
	case G_TYPE_BOOLEAN:
		return "boolean";
	default:
		return "unknown";
	}
}
