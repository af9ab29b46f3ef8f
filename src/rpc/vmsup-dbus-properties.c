/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * org.freedesktop.DBus.Properties for our skeletons, answered after the
 * authorize handler: GDBus hands the Properties calls of an interface whose
 * vtable has no get_property to its method_call, and a skeleton's method
 * calls pass "g-authorize-method" first, so a Get or GetAll is decided like
 * any other call (and may answer each caller its own value).
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-authorize.h"
#include "vmsup-dbus-properties.h"

/* the skeleton's own value of @property, or the caller's where @value_for has one */
static GVariant *
vmsup_dbus_properties_value(GDBusInterfaceSkeleton *skeleton,
			    GVariant *all,
			    const gchar *property,
			    VmsupDbusPropertyFunc value_for,
			    guint32 uid)
{
	GVariant *value = value_for != NULL ? value_for(skeleton, property, uid) : NULL;

	if (value != NULL)
		return g_variant_ref_sink(value);
	return g_variant_lookup_value(all, property, NULL);
}

static GVariant *
vmsup_dbus_properties_all(GDBusInterfaceSkeleton *skeleton,
			  GVariant *all,
			  VmsupDbusPropertyFunc value_for,
			  guint32 uid)
{
	GVariantBuilder builder;
	GVariantIter iter;
	const gchar *property;

	g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
	g_variant_iter_init(&iter, all);
	while (g_variant_iter_next(&iter, "{&sv}", &property, NULL)) {
		g_autoptr(GVariant) value =
		    vmsup_dbus_properties_value(skeleton, all, property, value_for, uid);
		g_variant_builder_add(&builder, "{sv}", property, value);
	}
	return g_variant_builder_end(&builder);
}

void
vmsup_dbus_properties_answer(GDBusInterfaceSkeleton *skeleton,
			     GDBusMethodInvocation *invocation,
			     VmsupDbusPropertyFunc value_for,
			     const gchar *read_only_message)
{
	const gchar *own_iface = g_dbus_interface_skeleton_get_info(skeleton)->name;
	const gchar *method_name = g_dbus_method_invocation_get_method_name(invocation);
	GVariant *parameters = g_dbus_method_invocation_get_parameters(invocation);
	const gchar *object_path = g_dbus_method_invocation_get_object_path(invocation);
	g_autoptr(GVariant) all = NULL;
	const gchar *iface = NULL;
	const gchar *property = NULL;
	guint32 uid = 0;

	g_return_if_fail(G_IS_DBUS_INTERFACE_SKELETON(skeleton));
	g_return_if_fail(G_IS_DBUS_METHOD_INVOCATION(invocation));

	if (g_str_equal(method_name, "Set")) {
		g_dbus_method_invocation_return_error_literal(invocation,
							      G_DBUS_ERROR,
							      G_DBUS_ERROR_PROPERTY_READ_ONLY,
							      read_only_message);
		return;
	}
	if (g_str_equal(method_name, "Get") &&
	    g_variant_is_of_type(parameters, G_VARIANT_TYPE("(ss)"))) {
		g_variant_get(parameters, "(&s&s)", &iface, &property);
	} else if (g_str_equal(method_name, "GetAll") &&
		   g_variant_is_of_type(parameters, G_VARIANT_TYPE("(s)"))) {
		g_variant_get(parameters, "(&s)", &iface);
	} else {
		g_dbus_method_invocation_return_error(invocation,
						      G_DBUS_ERROR,
						      G_DBUS_ERROR_UNKNOWN_METHOD,
						      _("No method %s.%s with these arguments"),
						      VMSUP_DBUS_PROPERTIES_IFACE,
						      method_name);
		return;
	}
	if (g_strcmp0(iface, own_iface) != 0) {
		g_dbus_method_invocation_return_error(invocation,
						      G_DBUS_ERROR,
						      G_DBUS_ERROR_INVALID_ARGS,
						      _("No such interface '%s' on %s"),
						      iface,
						      object_path);
		return;
	}
	if (value_for != NULL && !vmsup_authorize_get_caller_uid(invocation, &uid)) {
		g_dbus_method_invocation_return_error_literal(
		    invocation,
		    G_DBUS_ERROR,
		    G_DBUS_ERROR_ACCESS_DENIED,
		    _("The caller could not be identified"));
		return;
	}

	all = g_variant_take_ref(g_dbus_interface_skeleton_get_properties(skeleton));
	if (property == NULL) {
		g_dbus_method_invocation_return_value(
		    invocation,
		    g_variant_new("(@a{sv})",
				  vmsup_dbus_properties_all(skeleton, all, value_for, uid)));
		return;
	}
	{
		g_autoptr(GVariant) value =
		    vmsup_dbus_properties_value(skeleton, all, property, value_for, uid);
		if (value == NULL) {
			g_dbus_method_invocation_return_error(
			    invocation,
			    G_DBUS_ERROR,
			    G_DBUS_ERROR_INVALID_ARGS,
			    /* TRANSLATORS: a D-Bus property, interface and object path */
			    _("No property %s on %s at %s; 'gdbus introspect' lists them"),
			    property,
			    iface,
			    object_path);
			return;
		}
		g_dbus_method_invocation_return_value(invocation, g_variant_new("(v)", value));
	}
}

void
vmsup_dbus_properties_route(GDBusInterfaceSkeleton *skeleton,
			    const GDBusInterfaceVTable *parent_vtable,
			    GDBusMethodInvocation *invocation,
			    VmsupDbusPropertiesCall properties_call)
{
	const gchar *interface_name = g_dbus_method_invocation_get_interface_name(invocation);

	if (g_strcmp0(interface_name, VMSUP_DBUS_PROPERTIES_IFACE) == 0) {
		properties_call(skeleton, invocation);
		return;
	}
	parent_vtable->method_call(g_dbus_method_invocation_get_connection(invocation),
				   g_dbus_method_invocation_get_sender(invocation),
				   g_dbus_method_invocation_get_object_path(invocation),
				   interface_name,
				   g_dbus_method_invocation_get_method_name(invocation),
				   g_dbus_method_invocation_get_parameters(invocation),
				   invocation,
				   skeleton);
}
