/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* one listening TCP socket of the guest, as /proc/net/tcp{,6} shows it */
typedef struct {
	guint16 port;
	gchar *address;     /* owned: "0.0.0.0", "::", "127.0.0.1", "10.0.2.15", ... */
	gboolean ipv6;      /* found in /proc/net/tcp6 */
	gboolean wildcard;  /* bound to 0.0.0.0 or :: */
	gboolean loopback;  /* bound to 127.0.0.0/8, ::1 or ::ffff:127.x */
	gboolean reachable; /* a user-mode forward (to the guest's IPv4 address) can reach it */
} VmsupGuestListener;

void
vmsup_guest_listener_free(VmsupGuestListener *listener);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupGuestListener, vmsup_guest_listener_free)

/*
 * Parses the text of /proc/net/tcp (@ipv6 FALSE) or /proc/net/tcp6 (@ipv6
 * TRUE) and returns the sockets in state LISTEN (0A) as VmsupGuestListener.
 * Addresses are decoded as the kernel of a little-endian guest prints them.
 * Malformed lines are skipped; text that is not such a table at all (no
 * header line) is an error in VMSUP_ERROR_INTERNAL.
 */
GPtrArray *
vmsup_guest_ports_parse(const gchar *text, gboolean ipv6, GError **error);

/*
 * One listener per port, sorted by port: IPv4/IPv6 twins of the same port
 * and repeated binds are merged. The one kept is the most reachable:
 * reachable over unreachable, a wildcard bind over a specific address, IPv4
 * over IPv6 for equals (user-mode forwards reach the guest over IPv4).
 * @listeners (of VmsupGuestListener) is borrowed; the result holds copies.
 */
GPtrArray *
vmsup_guest_ports_merge(GPtrArray *listeners);

/* parse both tables and merge; either text may be NULL (not readable) but not both */
GPtrArray *
vmsup_guest_ports_parse_all(const gchar *tcp, const gchar *tcp6, GError **error);

G_END_DECLS
