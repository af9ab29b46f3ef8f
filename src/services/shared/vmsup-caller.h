/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Who asks: made once by the transport that knows (SO_PEERCRED on the
 * socket, the D-Bus sender's credentials) or by the daemon for itself,
 * and handed beside the parameters to whatever acts on the request. A
 * plain value: copy it, never free it.
 */
typedef struct {
	guint32 uid;
	/* the owner rule binds it: neither root nor the daemon's own user */
	gboolean restricted;
	/* vmsupd itself (an autostart, a test), acting for no client: no host file is checked */
	gboolean daemon;
} VmsupCaller;

/* the caller of @uid, with the owner rule decided for it */
VmsupCaller
vmsup_caller_for_uid(guint32 uid);

/* the daemon itself (an autostart, a workspace's own VM): never bound by the owner rule */
const VmsupCaller *
vmsup_caller_daemon(void);

/* whether the rules for clients bind @uid: uid != 0 and not the daemon's own user */
gboolean
vmsup_caller_uid_is_restricted(guint32 uid);

G_END_DECLS
