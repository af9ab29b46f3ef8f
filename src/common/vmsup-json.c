/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one JSON helper: parsing and printing for every wire of vmsup
 * (QMP, guest agent, JSON-RPC, state files).
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-json.h"

JsonNode *
vmsup_json_parse_checked(const gchar *data,
			 gssize length,
			 VmsupJsonCheckFlags flags,
			 GPtrArray **out_problems,
			 GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(GError) error_local = NULL;
	g_autoptr(GPtrArray) problems = NULL;
	JsonNode *root;

	if (length < 0)
		length = strlen(data);
	/* json-glib recurses without a bound and reads more than JSON: the text is checked first */
	if (!vmsup_json_check_text(data, length, flags, &problems, &error_local)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "invalid JSON %s",
			    error_local->message);
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
	if (out_problems != NULL)
		*out_problems = problems->len > 0 ? g_steal_pointer(&problems) : NULL;
	return json_node_ref(root);
}

static JsonNode *
vmsup_json_parse_full(const gchar *data, gssize length, VmsupJsonCheckFlags flags, GError **error)
{
	g_autoptr(GPtrArray) problems = NULL;
	g_autoptr(JsonNode) node = vmsup_json_parse_checked(data, length, flags, &problems, error);
	g_autofree gchar *text = NULL;

	if (node == NULL)
		return NULL;
	text = vmsup_json_problems_to_string(problems);
	if (text != NULL) {
		g_set_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT, "%s", text);
		return NULL;
	}
	return g_steal_pointer(&node);
}

JsonNode *
vmsup_json_parse(const gchar *data, gssize length, GError **error)
{
	return vmsup_json_parse_full(data, length, VMSUP_JSON_CHECK_NONE, error);
}

JsonObject *
vmsup_json_parse_object_full(const gchar *data,
			     gssize length,
			     VmsupJsonCheckFlags flags,
			     GError **error)
{
	g_autoptr(JsonNode) node = vmsup_json_parse_full(data, length, flags, error);
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

JsonObject *
vmsup_json_parse_object(const gchar *data, gssize length, GError **error)
{
	return vmsup_json_parse_object_full(data, length, VMSUP_JSON_CHECK_NONE, error);
}

gchar *
vmsup_json_problems_to_string(GPtrArray *problems)
{
	VmsupJsonProblem *first;

	if (problems == NULL || problems->len == 0)
		return NULL;
	first = g_ptr_array_index(problems, 0);
	if (first->element >= 0)
		return g_strdup_printf("'[%d]%s%s': %s",
				       first->element,
				       first->path[0] != '\0' ? "." : "",
				       first->path,
				       first->message);
	if (first->path[0] == '\0')
		return g_strdup(first->message);
	return g_strdup_printf("'%s': %s", first->path, first->message);
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

GStrv
vmsup_json_object_dup_strv(JsonObject *object, const gchar *member)
{
	JsonNode *node = vmsup_json_object_get_present(object, member);
	g_autoptr(GStrvBuilder) builder = NULL;
	JsonArray *array;

	if (node == NULL || !JSON_NODE_HOLDS_ARRAY(node))
		return NULL;
	builder = g_strv_builder_new();
	array = json_node_get_array(node);
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *element = json_array_get_element(array, i);
		if (JSON_NODE_HOLDS_VALUE(element) &&
		    json_node_get_value_type(element) == G_TYPE_STRING)
			g_strv_builder_add(builder, json_node_get_string(element));
	}
	return g_strv_builder_end(builder);
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

gboolean
vmsup_json_node_get_checked_bool(JsonNode *node,
				 const gchar *member,
				 gboolean *out_value,
				 GError **error)
{
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' must be true or false, got %s"),
			    member,
			    vmsup_json_node_type_name(node));
		return FALSE;
	}
	*out_value = json_node_get_boolean(node);
	return TRUE;
}

gboolean
vmsup_json_object_get_checked_bool(JsonObject *object,
				   const gchar *member,
				   gboolean fallback,
				   gboolean *out_value,
				   GError **error)
{
	JsonNode *node = vmsup_json_object_get_present(object, member);
	if (node == NULL) {
		*out_value = fallback;
		return TRUE;
	}
	return vmsup_json_node_get_checked_bool(node, member, out_value, error);
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
