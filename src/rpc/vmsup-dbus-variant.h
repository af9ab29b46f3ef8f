/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

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

G_END_DECLS
