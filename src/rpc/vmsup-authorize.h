/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-rpc-table.h"

G_BEGIN_DECLS

typedef enum {
	VMSUP_AUTHORIZE_MODE_SESSION, /* only the daemon's own user */
	VMSUP_AUTHORIZE_MODE_SYSTEM,  /* root, or whom polkit allows */
} VmsupAuthorizeMode;

#define VMSUP_AUTHORIZE_ACTION_READ "io.github.vmsup.read"
#define VMSUP_AUTHORIZE_ACTION_MANAGE "io.github.vmsup.manage"

#define VMSUP_TYPE_AUTHORIZE (vmsup_authorize_get_type())
G_DECLARE_FINAL_TYPE(VmsupAuthorize, vmsup_authorize, VMSUP, AUTHORIZE, GObject)

VmsupAuthorize *
vmsup_authorize_new(VmsupAuthorizeMode mode);

/*
 * Connects the one "g-authorize-method" handler to @skeleton. It runs in a
 * worker thread of GDBus (blocking calls are allowed there), finds the
 * caller's uid, decides, and records the uid on the invocation for
 * vmsup_authorize_get_caller_uid().
 */
void
vmsup_authorize_attach(VmsupAuthorize *self, GDBusInterfaceSkeleton *skeleton);

/* the uid the handler found for an invocation it let through; FALSE when there is none */
gboolean
vmsup_authorize_get_caller_uid(GDBusMethodInvocation *invocation, guint32 *out_uid);

/* the polkit action that guards @method */
const gchar *
vmsup_authorize_action_for(const VmsupRpcMethod *method);

/*
 * The decision itself, blocking: may @uid (the owner of @sender on
 * @connection) call @method? Polkit is asked over @connection in system mode.
 * Fails with G_DBUS_ERROR_ACCESS_DENIED.
 */
gboolean
vmsup_authorize_check_sync(VmsupAuthorize *self,
			   GDBusConnection *connection,
			   const gchar *sender,
			   guint32 uid,
			   const VmsupRpcMethod *method,
			   gboolean allow_interaction,
			   GError **error);

G_END_DECLS
