/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The guest's listening TCP ports from the text of its /proc/net/tcp and
 * /proc/net/tcp6, read through the guest agent. Pure functions.
 */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <string.h>

#include "vmsup-error.h"
#include "vmsup-guest-ports.h"

#define VMSUP_TCP_STATE_LISTEN 0x0A

void
vmsup_guest_listener_free(VmsupGuestListener *listener)
{
	if (listener == NULL)
		return;
	g_free(listener->address);
	g_free(listener);
}

static VmsupGuestListener *
vmsup_guest_listener_copy(const VmsupGuestListener *src)
{
	VmsupGuestListener *dst = g_new0(VmsupGuestListener, 1);
	*dst = *src;
	dst->address = g_strdup(src->address);
	return dst;
}

static gboolean
vmsup_guest_ports_parse_hex32(const gchar *text, guint32 *out_value)
{
	guint32 value = 0;
	for (guint i = 0; i < 8; i++) {
		gint digit = g_ascii_xdigit_value(text[i]);
		if (digit < 0)
			return FALSE;
		value = (value << 4) | (guint32)digit;
	}
	*out_value = value;
	return TRUE;
}

/*
 * the kernel prints each 32-bit word of the address with %08X as the CPU
 * holds it; the guest is little-endian (x86), so the bytes of each word come
 * out reversed
 */
static gboolean
vmsup_guest_ports_decode_address(const gchar *hex, gsize len, guint8 *out_bytes)
{
	if (len != 8 && len != 32)
		return FALSE;
	for (gsize w = 0; w < len / 8; w++) {
		guint32 word;
		if (!vmsup_guest_ports_parse_hex32(hex + w * 8, &word))
			return FALSE;
		out_bytes[w * 4 + 0] = word & 0xff;
		out_bytes[w * 4 + 1] = (word >> 8) & 0xff;
		out_bytes[w * 4 + 2] = (word >> 16) & 0xff;
		out_bytes[w * 4 + 3] = (word >> 24) & 0xff;
	}
	return TRUE;
}

static gboolean
vmsup_guest_ports_is_v4_mapped(const guint8 *bytes)
{
	static const guint8 prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(bytes, prefix, sizeof(prefix)) == 0;
}

/* "  0: 0100007F:46A0 00000000:0000 0A ..." -> a listener, or NULL for other lines */
static VmsupGuestListener *
vmsup_guest_ports_parse_line(const gchar *line, gboolean ipv6)
{
	g_auto(GStrv) fields = NULL;
	g_autoptr(GPtrArray) words = g_ptr_array_new();
	g_autoptr(GInetAddress) address = NULL;
	const gchar *local;
	const gchar *colon;
	gchar *end = NULL;
	guint64 port;
	guint64 state;
	guint8 bytes[16] = {0};
	gsize addr_len = ipv6 ? 32 : 8;
	VmsupGuestListener *listener;

	fields = g_strsplit_set(line, " \t", -1);
	for (guint i = 0; fields[i] != NULL; i++) {
		if (fields[i][0] != '\0')
			g_ptr_array_add(words, fields[i]);
	}
	/* sl, local_address, rem_address, st at least */
	if (words->len < 4 || !g_str_has_suffix(g_ptr_array_index(words, 0), ":"))
		return NULL;

	state = g_ascii_strtoull(g_ptr_array_index(words, 3), &end, 16);
	if (end == NULL || *end != '\0' || state != VMSUP_TCP_STATE_LISTEN)
		return NULL;

	local = g_ptr_array_index(words, 1);
	colon = strchr(local, ':');
	if (colon == NULL || (gsize)(colon - local) != addr_len)
		return NULL;
	if (!vmsup_guest_ports_decode_address(local, addr_len, bytes))
		return NULL;
	if (strlen(colon + 1) != 4)
		return NULL;
	port = g_ascii_strtoull(colon + 1, &end, 16);
	if (end == NULL || *end != '\0' || port == 0 || port > G_MAXUINT16)
		return NULL;

	listener = g_new0(VmsupGuestListener, 1);
	listener->port = (guint16)port;
	listener->ipv6 = ipv6;
	if (ipv6 && vmsup_guest_ports_is_v4_mapped(bytes)) {
		/* an IPv4 address on an IPv6 socket: show it as IPv4 would */
		address = g_inet_address_new_from_bytes(bytes + 12, G_SOCKET_FAMILY_IPV4);
	} else {
		address = g_inet_address_new_from_bytes(bytes,
							ipv6 ? G_SOCKET_FAMILY_IPV6
							     : G_SOCKET_FAMILY_IPV4);
	}
	listener->address = g_inet_address_to_string(address);
	listener->wildcard = g_inet_address_get_is_any(address);
	listener->loopback = g_inet_address_get_is_loopback(address);
	/*
	 * forwards connect to the guest's IPv4 address: an IPv4 bind that is not
	 * loopback gets them, and so does [::] (dual stack is Linux's default);
	 * a specific IPv6 address does not
	 */
	if (listener->loopback)
		listener->reachable = FALSE;
	else if (g_inet_address_get_family(address) == G_SOCKET_FAMILY_IPV4)
		listener->reachable = TRUE;
	else
		listener->reachable = listener->wildcard;
	return listener;
}

GPtrArray *
vmsup_guest_ports_parse(const gchar *text, gboolean ipv6, GError **error)
{
	g_autoptr(GPtrArray) listeners = NULL;
	g_auto(GStrv) lines = NULL;
	gboolean header = FALSE;

	g_return_val_if_fail(text != NULL, NULL);

	listeners = g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_guest_listener_free);
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		VmsupGuestListener *listener;
		if (!header) {
			if (strstr(lines[i], "local_address") != NULL)
				header = TRUE;
			continue;
		}
		listener = vmsup_guest_ports_parse_line(lines[i], ipv6);
		if (listener != NULL)
			g_ptr_array_add(listeners, listener);
	}
	if (!header) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INTERNAL,
			    /* TRANSLATORS: %s is a file name inside the VM */
			    _("The guest's %s is not a TCP socket table"),
			    ipv6 ? "/proc/net/tcp6" : "/proc/net/tcp");
		return NULL;
	}
	return g_steal_pointer(&listeners);
}

/* higher is better: what a user reaching the port from the host cares about */
static gint
vmsup_guest_listener_rank(const VmsupGuestListener *listener)
{
	gint rank = 0;
	if (listener->reachable)
		rank += 4;
	if (listener->wildcard)
		rank += 2;
	if (!listener->ipv6)
		rank += 1;
	return rank;
}

static gint
vmsup_guest_listener_cmp(gconstpointer a, gconstpointer b)
{
	const VmsupGuestListener *la = *(const VmsupGuestListener *const *)a;
	const VmsupGuestListener *lb = *(const VmsupGuestListener *const *)b;
	if (la->port != lb->port)
		return la->port < lb->port ? -1 : 1;
	/* best first within a port */
	return vmsup_guest_listener_rank(lb) - vmsup_guest_listener_rank(la);
}

GPtrArray *
vmsup_guest_ports_merge(GPtrArray *listeners)
{
	g_autoptr(GPtrArray) sorted = g_ptr_array_new();
	GPtrArray *merged =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_guest_listener_free);

	g_return_val_if_fail(listeners != NULL, merged);

	for (guint i = 0; i < listeners->len; i++)
		g_ptr_array_add(sorted, g_ptr_array_index(listeners, i));
	g_ptr_array_sort(sorted, vmsup_guest_listener_cmp);
	for (guint i = 0; i < sorted->len; i++) {
		const VmsupGuestListener *listener = g_ptr_array_index(sorted, i);
		const VmsupGuestListener *last =
		    merged->len > 0 ? g_ptr_array_index(merged, merged->len - 1) : NULL;
		/* the first of each port is its best one */
		if (last != NULL && last->port == listener->port)
			continue;
		g_ptr_array_add(merged, vmsup_guest_listener_copy(listener));
	}
	return merged;
}

GPtrArray *
vmsup_guest_ports_parse_all(const gchar *tcp, const gchar *tcp6, GError **error)
{
	g_autoptr(GPtrArray) all =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_guest_listener_free);
	const gchar *texts[] = {tcp, tcp6};

	g_return_val_if_fail(tcp != NULL || tcp6 != NULL, NULL);

	for (guint t = 0; t < G_N_ELEMENTS(texts); t++) {
		g_autoptr(GPtrArray) part = NULL;
		if (texts[t] == NULL)
			continue;
		part = vmsup_guest_ports_parse(texts[t], t == 1, error);
		if (part == NULL)
			return NULL;
		g_ptr_array_extend_and_steal(all, g_steal_pointer(&part));
	}
	return vmsup_guest_ports_merge(all);
}
