/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON as D-Bus a{sv}, written straight into GVariant's serialised form. A
 * VM list has thousands of members; as a tree of GVariants each member is
 * four instances and as many frees after sending, which cost a D-Bus reply
 * more than building the JSON did. Serialised, the whole reply is one
 * instance. The layout follows the GVariant specification: values aligned
 * to their type, variable-sized array elements and dict-entry keys framed by
 * little-endian offsets at the end of their container, sized to fit it.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "vmsup-dbus-variant.h"
#include "vmsup-error.h"

static const gchar *
vmsup_dbus_variant_array_type(JsonArray *array);

/* the D-Bus type a JSON value takes; NULL for what a{sv} leaves out (null) */
static const gchar *
vmsup_dbus_variant_value_type(JsonNode *node)
{
	switch (json_node_get_node_type(node)) {
	case JSON_NODE_OBJECT:
		return "a{sv}";
	case JSON_NODE_ARRAY:
		return vmsup_dbus_variant_array_type(json_node_get_array(node));
	case JSON_NODE_VALUE:
		switch (json_node_get_value_type(node)) {
		case G_TYPE_INT64:
			return "x";
		case G_TYPE_DOUBLE:
			return "d";
		case G_TYPE_BOOLEAN:
			return "b";
		case G_TYPE_STRING:
			return "s";
		default:
			return NULL;
		}
	case JSON_NODE_NULL:
	default:
		return NULL;
	}
}

static gboolean
vmsup_dbus_variant_is_number(const gchar *type)
{
	return type[0] == 'x' || type[0] == 'd';
}

/* the one element type all non-null elements share, or v */
static const gchar *
vmsup_dbus_variant_array_type(JsonArray *array)
{
	static const gchar *const array_types[][2] = {
	    {"a{sv}", "aa{sv}"},
	    {"x", "ax"},
	    {"d", "ad"},
	    {"b", "ab"},
	    {"s", "as"},
	};
	const gchar *element = NULL;

	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *node = json_array_get_element(array, i);
		const gchar *type;

		if (JSON_NODE_HOLDS_NULL(node))
			continue;
		type = JSON_NODE_HOLDS_ARRAY(node) ? NULL : vmsup_dbus_variant_value_type(node);
		if (type == NULL)
			return "av";
		if (element == NULL || strcmp(element, type) == 0) {
			element = type;
			continue;
		}
		/* integers among doubles are numbers */
		if (!vmsup_dbus_variant_is_number(element) || !vmsup_dbus_variant_is_number(type))
			return "av";
		element = "d";
	}
	for (guint i = 0; element != NULL && i < G_N_ELEMENTS(array_types); i++) {
		if (strcmp(array_types[i][0], element) == 0)
			return array_types[i][1];
	}
	return "av";
}

static gsize
vmsup_dbus_variant_alignment(const gchar *type)
{
	switch (type[0]) {
	case 'a':
		return vmsup_dbus_variant_alignment(type + 1);
	case 'x':
	case 'd':
	case 'v':
	case '{': /* {sv}: as its variant */
		return 8;
	default:
		return 1;
	}
}

static gboolean
vmsup_dbus_variant_is_fixed_size(const gchar *type)
{
	return type[0] == 'x' || type[0] == 'd' || type[0] == 'b';
}

/* whether an element of an array of @type is written, not left out */
static gboolean
vmsup_dbus_variant_fits(JsonNode *node, const gchar *type)
{
	switch (type[0]) {
	case 'v':
		return vmsup_dbus_variant_value_type(node) != NULL;
	case 'd':
		return JSON_NODE_HOLDS_VALUE(node) &&
		       (json_node_get_value_type(node) == G_TYPE_DOUBLE ||
			json_node_get_value_type(node) == G_TYPE_INT64);
	default:
		return g_strcmp0(vmsup_dbus_variant_value_type(node), type) == 0;
	}
}

static void
vmsup_dbus_variant_pad(GByteArray *buf, gsize alignment)
{
	static const guint8 zeros[8] = {0};
	gsize misalign = buf->len & (alignment - 1);

	if (misalign != 0)
		g_byte_array_append(buf, zeros, alignment - misalign);
}

static void
vmsup_dbus_variant_put_string(GByteArray *buf, const gchar *str)
{
	if (!g_utf8_validate(str, -1, NULL)) {
		g_autofree gchar *valid = g_utf8_make_valid(str, -1);
		g_byte_array_append(buf, (const guint8 *)valid, strlen(valid) + 1);
		return;
	}
	g_byte_array_append(buf, (const guint8 *)str, strlen(str) + 1);
}

/* the smallest offset size that can address a container of @body_size plus its offsets */
static gsize
vmsup_dbus_variant_offset_size(gsize body_size, gsize n_offsets)
{
	if (body_size + n_offsets <= G_MAXUINT8)
		return 1;
	if (body_size + 2 * n_offsets <= G_MAXUINT16)
		return 2;
	if (body_size + 4 * n_offsets <= G_MAXUINT32)
		return 4;
	return 8;
}

static void
vmsup_dbus_variant_put_offsets(GByteArray *buf, gsize start, const gsize *offsets, gsize n)
{
	gsize size = vmsup_dbus_variant_offset_size(buf->len - start, n);

	for (gsize i = 0; i < n; i++) {
		guint64 le = GUINT64_TO_LE((guint64)offsets[i]);
		g_byte_array_append(buf, (const guint8 *)&le, size);
	}
}

static void
vmsup_dbus_variant_write(GByteArray *buf, JsonNode *node, const gchar *type);

/* a variant holding @node as @inner: the value at the variant's start, a zero byte, the type */
static void
vmsup_dbus_variant_write_variant(GByteArray *buf, JsonNode *node, const gchar *inner)
{
	vmsup_dbus_variant_write(buf, node, inner);
	g_byte_array_append(buf, (const guint8 *)"", 1);
	g_byte_array_append(buf, (const guint8 *)inner, strlen(inner));
}

/* an a{sv}; @buf is aligned for it */
static void
vmsup_dbus_variant_write_object(GByteArray *buf, JsonObject *object)
{
	g_autoptr(GArray) ends = g_array_sized_new(FALSE, FALSE, sizeof(gsize), 32);
	gsize start = buf->len;
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;

	json_object_iter_init_ordered(&iter, object);
	while (json_object_iter_next_ordered(&iter, &member, &node)) {
		/* a{sv} cannot hold null: an absent member reads the same */
		const gchar *type = vmsup_dbus_variant_value_type(node);
		gsize entry;
		gsize key_end;
		gsize end;

		if (type == NULL)
			continue;
		/* {sv}: the key, the variant at 8, the key's end framed last */
		vmsup_dbus_variant_pad(buf, 8);
		entry = buf->len;
		vmsup_dbus_variant_put_string(buf, member);
		key_end = buf->len - entry;
		vmsup_dbus_variant_pad(buf, 8);
		vmsup_dbus_variant_write_variant(buf, node, type);
		vmsup_dbus_variant_put_offsets(buf, entry, &key_end, 1);
		end = buf->len - start;
		g_array_append_val(ends, end);
	}
	vmsup_dbus_variant_put_offsets(buf, start, (const gsize *)ends->data, ends->len);
}

/* an array of @element; @buf is aligned for it */
static void
vmsup_dbus_variant_write_array(GByteArray *buf, JsonArray *array, const gchar *element)
{
	gboolean fixed = vmsup_dbus_variant_is_fixed_size(element);
	gsize alignment = vmsup_dbus_variant_alignment(element);
	g_autoptr(GArray) ends = NULL;
	gsize start = buf->len;

	if (!fixed)
		ends = g_array_new(FALSE, FALSE, sizeof(gsize));
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *node = json_array_get_element(array, i);
		gsize end;

		if (!vmsup_dbus_variant_fits(node, element))
			continue;
		vmsup_dbus_variant_pad(buf, alignment);
		vmsup_dbus_variant_write(buf, node, element);
		if (fixed)
			continue;
		end = buf->len - start;
		g_array_append_val(ends, end);
	}
	if (!fixed)
		vmsup_dbus_variant_put_offsets(buf, start, (const gsize *)ends->data, ends->len);
}

/* @node as @type, which vmsup_dbus_variant_fits(); @buf is aligned for it */
static void
vmsup_dbus_variant_write(GByteArray *buf, JsonNode *node, const gchar *type)
{
	switch (type[0]) {
	case 'x': {
		gint64 value = json_node_get_int(node);
		g_byte_array_append(buf, (const guint8 *)&value, sizeof(value));
		break;
	}
	case 'd': {
		gdouble value = json_node_get_double(node);
		g_byte_array_append(buf, (const guint8 *)&value, sizeof(value));
		break;
	}
	case 'b': {
		guint8 value = json_node_get_boolean(node) ? 1 : 0;
		g_byte_array_append(buf, &value, 1);
		break;
	}
	case 's':
		vmsup_dbus_variant_put_string(buf, json_node_get_string(node));
		break;
	case 'v':
		vmsup_dbus_variant_write_variant(buf, node, vmsup_dbus_variant_value_type(node));
		break;
	case 'a':
		if (type[1] == '{')
			vmsup_dbus_variant_write_object(buf, json_node_get_object(node));
		else
			vmsup_dbus_variant_write_array(buf, json_node_get_array(node), type + 1);
		break;
	default:
		g_assert_not_reached();
	}
}

static GVariant *
vmsup_dbus_variant_new(const GVariantType *type, GByteArray *buf)
{
	g_autoptr(GBytes) bytes = g_byte_array_free_to_bytes(buf);
	return g_variant_new_from_bytes(type, bytes, /* trusted= */ FALSE);
}

GVariant *
vmsup_dbus_variant_from_json_object(JsonObject *object)
{
	GByteArray *buf;

	g_return_val_if_fail(object != NULL, NULL);

	buf = g_byte_array_sized_new(512);
	vmsup_dbus_variant_write_object(buf, object);
	return vmsup_dbus_variant_new(G_VARIANT_TYPE_VARDICT, buf);
}

GVariant *
vmsup_dbus_variant_from_json_objects(JsonArray *array)
{
	GByteArray *buf;

	g_return_val_if_fail(array != NULL, NULL);

	buf = g_byte_array_sized_new(512 * (json_array_get_length(array) + 1));
	vmsup_dbus_variant_write_array(buf, array, "a{sv}");
	return vmsup_dbus_variant_new(G_VARIANT_TYPE("aa{sv}"), buf);
}

/* the other way: D-Bus arguments as the table's params, and the table's answer as D-Bus */

/*
 * What JSON text cannot carry in, D-Bus can: a double that is infinite or
 * NaN, a uint64 past int64 (json-glib would wrap it). D-Bus strings hold no
 * NUL, so the values are what is left to check; @member names the option.
 */
static gboolean
vmsup_dbus_variant_check_value(GVariant *value, const gchar *member, GError **error)
{
	if (g_variant_is_of_type(value, G_VARIANT_TYPE_DOUBLE) &&
	    !isfinite(g_variant_get_double(value))) {
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_PARAMS,
		    _("Invalid params: '%s': the number %g is not finite; send a finite one"),
		    member,
		    g_variant_get_double(value));
		return FALSE;
	}
	if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT64) &&
	    g_variant_get_uint64(value) > G_MAXINT64) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_PARAMS,
			    _("Invalid params: '%s': the integer %" PRIu64
			      " does not fit in 64 bits (from %" PRId64 " to %" PRId64
			      "); send one in that range"),
			    member,
			    g_variant_get_uint64(value),
			    G_MININT64,
			    G_MAXINT64);
		return FALSE;
	}
	if (g_variant_is_container(value)) {
		GVariantIter iter;
		GVariant *child;
		g_variant_iter_init(&iter, value);
		while ((child = g_variant_iter_next_value(&iter)) != NULL) {
			g_autoptr(GVariant) owned = child;
			if (!vmsup_dbus_variant_check_value(owned, member, error))
				return FALSE;
		}
	}
	return TRUE;
}

static gboolean
vmsup_dbus_variant_check_options(GVariant *options, GError **error)
{
	GVariantIter iter;
	const gchar *member;
	GVariant *value;

	g_variant_iter_init(&iter, options);
	while (g_variant_iter_next(&iter, "{&sv}", &member, &value)) {
		g_autoptr(GVariant) owned = value;
		if (!vmsup_dbus_variant_check_value(owned, member, error))
			return FALSE;
	}
	return TRUE;
}

JsonObject *
vmsup_dbus_params_from_variant(GVariant *parameters, const gchar *bound_name, GError **error)
{
	g_autoptr(JsonObject) params = json_object_new();
	g_autofree gchar *name = g_strdup(bound_name);
	GVariantIter iter;
	GVariant *child;

	g_variant_iter_init(&iter, parameters);
	while ((child = g_variant_iter_next_value(&iter)) != NULL) {
		g_autoptr(GVariant) arg = child;
		if (g_variant_is_of_type(arg, G_VARIANT_TYPE_STRING)) {
			g_free(name);
			name = g_variant_dup_string(arg, NULL);
		} else if (g_variant_is_of_type(arg, G_VARIANT_TYPE_VARDICT)) {
			g_autoptr(JsonNode) node = NULL;
			JsonObjectIter members;
			const gchar *member;
			JsonNode *value;

			if (!vmsup_dbus_variant_check_options(arg, error))
				return NULL;
			node = json_gvariant_serialize(arg);
			json_object_iter_init(&members, json_node_get_object(node));
			while (json_object_iter_next(&members, &member, &value))
				json_object_set_member(params, member, json_node_copy(value));
		}
	}
	if (name != NULL) {
		if (json_object_has_member(params, "name")) {
			g_set_error_literal(error,
					    VMSUP_ERROR,
					    VMSUP_ERROR_INVALID_PARAMS,
					    _("The VM name is the first argument; do not repeat it "
					      "as 'name' in the options"));
			return NULL;
		}
		json_object_set_string_member(params, "name", name);
	}
	return g_steal_pointer(&params);
}

GVariant *
vmsup_dbus_variant_from_result(const VmsupRpcMethod *method, JsonNode *result, GError **error)
{
	JsonObject *object;
	JsonNode *list;

	if (result == NULL || !JSON_NODE_HOLDS_OBJECT(result)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INTERNAL,
			    "%s answered something other than an object",
			    method->rpc_name);
		return NULL;
	}
	object = json_node_get_object(result);
	if (method->flags & VMSUP_RPC_FLAG_RETURNS_FD) {
		if (!json_object_has_member(object, "fd")) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INTERNAL,
				    "%s answered without its descriptor",
				    method->rpc_name);
			return NULL;
		}
		return g_variant_new("(h)", (gint32)json_object_get_int_member(object, "fd"));
	}
	if (!(method->flags & VMSUP_RPC_FLAG_RETURNS_LIST))
		return g_variant_new("(@a{sv})", vmsup_dbus_variant_from_json_object(object));

	list = json_object_get_member(object, method->list_member);
	if (list == NULL || !JSON_NODE_HOLDS_ARRAY(list)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INTERNAL,
			    "%s answered without its list '%s'",
			    method->rpc_name,
			    method->list_member);
		return NULL;
	}
	return g_variant_new("(@aa{sv})",
			     vmsup_dbus_variant_from_json_objects(json_node_get_array(list)));
}
