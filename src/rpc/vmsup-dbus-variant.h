/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "vmsup-rpc-table.h"

G_BEGIN_DECLS

/*
 * A JSON object as a{sv}: members that are null are left out, objects become
 * a{sv}, arrays of objects aa{sv}, of strings as, of integers ax, of numbers
 * ad, of booleans ab, anything else av. Strings are made valid UTF-8.
 * Returns a floating reference.
 */
GVariant *
vmsup_dbus_variant_from_json_object(JsonObject *object);

/* the objects of @array as aa{sv}, converted as above; other elements are left out */
GVariant *
vmsup_dbus_variant_from_json_objects(JsonArray *array);

/*
 * The arguments of a D-Bus call as the table's params: a leading `s` is
 * "name" (or @bound_name, the VM of a per-VM object), each a{sv}
 * contributes its members; "name" given twice is refused.
 */
JsonObject *
vmsup_dbus_params_from_variant(GVariant *parameters, const gchar *bound_name, GError **error);

/* @method's answer (borrowed) as its D-Bus reply: (a{sv}), or (aa{sv}) for a list */
GVariant *
vmsup_dbus_variant_from_result(const VmsupRpcMethod *method, JsonNode *result, GError **error);

G_END_DECLS
