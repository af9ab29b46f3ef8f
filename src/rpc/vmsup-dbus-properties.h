/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define VMSUP_DBUS_PROPERTIES_IFACE "org.freedesktop.DBus.Properties"

/*
 * A caller's own value of @property, or NULL for the skeleton's: floating or
 * full, consumed. @caller_uid is the uid the authorize handler found.
 */
typedef GVariant *(*VmsupDbusPropertyFunc)(GDBusInterfaceSkeleton *skeleton,
					   const gchar *property,
					   guint32 caller_uid);

/*
 * Answers a Properties.Get, GetAll or Set of @skeleton's own interface from
 * its method_call, where GDBus hands the Properties calls of a vtable that
 * has no get_property, once "g-authorize-method" let the caller through.
 * The properties are read-only: a Set fails with @read_only_message.
 * @value_for (nullable) gives a caller its own values.
 */
void
vmsup_dbus_properties_answer(GDBusInterfaceSkeleton *skeleton,
			     GDBusMethodInvocation *invocation,
			     VmsupDbusPropertyFunc value_for,
			     const gchar *read_only_message);

/* answers the Properties calls of @skeleton (see vmsup_dbus_properties_answer()) */
typedef void (*VmsupDbusPropertiesCall)(GDBusInterfaceSkeleton *skeleton,
					GDBusMethodInvocation *invocation);

/*
 * The method_call of a skeleton subclass whose vtable has no get_property:
 * Properties calls go to @properties_call, the others to @parent_vtable's
 * method_call, as if it had been called.
 */
void
vmsup_dbus_properties_route(GDBusInterfaceSkeleton *skeleton,
			    const GDBusInterfaceVTable *parent_vtable,
			    GDBusMethodInvocation *invocation,
			    VmsupDbusPropertiesCall properties_call);

G_END_DECLS
