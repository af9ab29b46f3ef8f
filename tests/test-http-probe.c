/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pieces of StatsService that need no VM: the web probe against real
 * libsoup servers and raw listeners on loopback, the parser of the guest's
 * /proc/net/tcp{,6}, and the /proc sampler of the QEMU process.
 */

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <time.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-guest-ports.h"
#include "vmsup-http-probe.h"
#include "vmsup-test-util.h"

/* generous: a sanitizer build with slow unwinding takes seconds for the first TLS setup */
#define PROBE_TIMEOUT_MS 10000
/* what a probe waits for an answer that never comes */
#define PROBE_SHORT_TIMEOUT_MS 2000
/* "ended at its timeout, not later", allowing for a slow sanitizer build on a busy machine */
#define PROBE_SLACK_MS 5000

/* --- the web probe ------------------------------------------------------ */

static void
server_hello_cb(SoupServer *server,
		SoupServerMessage *msg,
		const char *path,
		GHashTable *query,
		gpointer user_data)
{
	guint status = GPOINTER_TO_UINT(user_data);
	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_STATIC, "hello\n", 6);
}

static guint16
server_port(SoupServer *server)
{
	GSList *uris = soup_server_get_uris(server);
	guint16 port;
	g_assert_nonnull(uris);
	port = (guint16)g_uri_get_port(uris->data);
	g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
	return port;
}

static SoupServer *
start_soup_server(GTlsCertificate *certificate, guint status)
{
	g_autoptr(GError) error = NULL;
	SoupServer *server = soup_server_new("tls-certificate", certificate, NULL);
	SoupServerListenOptions options = SOUP_SERVER_LISTEN_IPV4_ONLY;

	if (certificate != NULL)
		options |= SOUP_SERVER_LISTEN_HTTPS;
	soup_server_add_handler(server, NULL, server_hello_cb, GUINT_TO_POINTER(status), NULL);
	g_assert_true(soup_server_listen_local(server, 0, options, &error));
	g_assert_no_error(error);
	return server;
}

static VmsupHttpProbeResult *
probe(guint16 port, guint timeout_ms, GCancellable *cancellable, GError **error)
{
	GAsyncResult *slot = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	vmsup_http_probe_async("127.0.0.1",
			       port,
			       timeout_ms,
			       cancellable,
			       vmsup_test_store_result_cb,
			       &slot);
	res = vmsup_test_wait_result(&slot, timeout_ms / 1000 + 5);
	return vmsup_http_probe_finish(res, error);
}

static void
assert_not_web(VmsupHttpProbeResult *result)
{
	g_assert_nonnull(result);
	g_assert_false(result->web);
	g_assert_null(result->scheme);
	g_assert_cmpuint(result->status, ==, 0);
	g_assert_null(result->url);
	g_assert_nonnull(result->detail);
}

static void
test_probe_http(void)
{
	g_autoptr(SoupServer) server = start_soup_server(NULL, SOUP_STATUS_OK);
	guint16 port = server_port(server);
	g_autofree gchar *url = g_strdup_printf("http://127.0.0.1:%u/", port);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupHttpProbeResult) result = probe(port, PROBE_TIMEOUT_MS, NULL, &error);

	g_assert_no_error(error);
	g_assert_true(result->web);
	g_assert_cmpstr(result->scheme, ==, "http");
	g_assert_cmpuint(result->status, ==, 200);
	g_assert_cmpstr(result->url, ==, url);
	g_assert_null(result->detail);
}

/* an error status is still a web server; the TLS attempt, left hanging, gets a grace */
static void
test_probe_http_error_status(void)
{
	g_autoptr(SoupServer) server = start_soup_server(NULL, SOUP_STATUS_BAD_REQUEST);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupHttpProbeResult) result = NULL;
	gint64 start = g_get_monotonic_time();

	result = probe(server_port(server), 3 * PROBE_TIMEOUT_MS, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(result->web);
	g_assert_cmpstr(result->scheme, ==, "http");
	g_assert_cmpuint(result->status, ==, 400);
	/* decided by the grace, long before the timeout */
	g_assert_cmpint(g_get_monotonic_time() - start, <, PROBE_TIMEOUT_MS * 1000);
}

/* a self-signed certificate made now, so nothing in the tree expires */
static GTlsCertificate *
make_self_signed_certificate(void)
{
	g_autofree gchar *dir = vmsup_test_make_tmpdir();
	g_autofree gchar *cert = g_build_filename(dir, "cert.pem", NULL);
	g_autofree gchar *key = g_build_filename(dir, "key.pem", NULL);
	const gchar *argv[] = {"openssl",
			       "req",
			       "-x509",
			       "-newkey",
			       "rsa:2048",
			       "-nodes",
			       "-keyout",
			       key,
			       "-out",
			       cert,
			       "-days",
			       "2",
			       "-subj",
			       "/CN=vmsup-test",
			       NULL};
	g_autoptr(GError) error = NULL;
	GTlsCertificate *certificate;

	vmsup_test_run_tool(argv);
	certificate = g_tls_certificate_new_from_files(cert, key, &error);
	g_assert_no_error(error);
	vmsup_test_rm_rf(dir);
	return certificate;
}

static void
test_probe_https(void)
{
	g_autoptr(GTlsCertificate) certificate = make_self_signed_certificate();
	g_autoptr(SoupServer) server = start_soup_server(certificate, SOUP_STATUS_OK);
	guint16 port = server_port(server);
	g_autofree gchar *url = g_strdup_printf("https://127.0.0.1:%u/", port);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupHttpProbeResult) result = NULL;

	g_assert_true(g_tls_backend_supports_tls(g_tls_backend_get_default()));
	result = probe(port, PROBE_TIMEOUT_MS, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(result->web);
	g_assert_cmpstr(result->scheme, ==, "https");
	g_assert_cmpuint(result->status, ==, 200);
	g_assert_cmpstr(result->url, ==, url);
}

/* raw TCP listeners: each accepted connection gets @greeting (NULL: silence) */
typedef struct {
	GSocketService *service;
	GPtrArray *connections; /* kept open until the test ends */
	const gchar *greeting;
	gsize greeting_len;
	gboolean close_after;
	guint accepted;
} RawListener;

static gboolean
raw_incoming_cb(GSocketService *service,
		GSocketConnection *connection,
		GObject *source_object,
		gpointer user_data)
{
	RawListener *raw = user_data;
	GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(connection));

	raw->accepted++;
	if (raw->greeting != NULL)
		g_output_stream_write_all(out, raw->greeting, raw->greeting_len, NULL, NULL, NULL);
	if (raw->close_after)
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
	else
		g_ptr_array_add(raw->connections, g_object_ref(connection));
	return TRUE;
}

static guint16
raw_listener_start(RawListener *raw, const gchar *greeting, gsize len, gboolean close_after)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;

	raw->service = g_socket_service_new();
	raw->connections = g_ptr_array_new_with_free_func(g_object_unref);
	raw->greeting = greeting;
	raw->greeting_len = len;
	raw->close_after = close_after;
	g_assert_true(g_socket_listener_add_address(G_SOCKET_LISTENER(raw->service),
						    address,
						    G_SOCKET_TYPE_STREAM,
						    G_SOCKET_PROTOCOL_TCP,
						    NULL,
						    &bound,
						    &error));
	g_assert_no_error(error);
	g_signal_connect(raw->service, "incoming", G_CALLBACK(raw_incoming_cb), raw);
	g_socket_service_start(raw->service);
	return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

static void
raw_listener_stop(RawListener *raw)
{
	g_socket_service_stop(raw->service);
	g_socket_listener_close(G_SOCKET_LISTENER(raw->service));
	g_clear_object(&raw->service);
	g_clear_pointer(&raw->connections, g_ptr_array_unref);
}

/* a listener with a banner that is not HTTP (sshd's) */
static void
test_probe_banner(void)
{
	static const gchar banner[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
	RawListener raw = {0};
	guint16 port = raw_listener_start(&raw, banner, sizeof(banner) - 1, FALSE);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupHttpProbeResult) result = NULL;
	gint64 start = g_get_monotonic_time();

	result = probe(port, PROBE_SHORT_TIMEOUT_MS, NULL, &error);
	g_assert_no_error(error);
	assert_not_web(result);
	/* the HTTP attempt waits for more header lines; the timeout bounds it */
	g_assert_cmpint(g_get_monotonic_time() - start,
			<,
			(PROBE_SHORT_TIMEOUT_MS + PROBE_SLACK_MS) * 1000);
	g_assert_cmpuint(raw.accepted, >=, 2);
	raw_listener_stop(&raw);
}

/* a server that answers everything, a ClientHello too, with a plain 400 (busybox httpd) */
static void
test_probe_plain_rejects_tls(void)
{
	static const gchar answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
				      "Connection: close\r\n\r\n";
	RawListener raw = {0};
	guint16 port = raw_listener_start(&raw, answer, sizeof(answer) - 1, TRUE);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupHttpProbeResult) result = probe(port, PROBE_TIMEOUT_MS, NULL, &error);

	g_assert_no_error(error);
	g_assert_true(result->web);
	g_assert_cmpstr(result->scheme, ==, "http");
	g_assert_cmpuint(result->status, ==, 400);
	raw_listener_stop(&raw);
}

/* binary garbage, then the connection closes */
static void
test_probe_garbage(void)
{
	static const gchar garbage[] = "\x00\x17\xfe\xff garbage \x01\x02\x03\n\n\r\n";
	RawListener raw = {0};
	guint16 port = raw_listener_start(&raw, garbage, sizeof(garbage) - 1, TRUE);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupHttpProbeResult) result = probe(port, PROBE_TIMEOUT_MS, NULL, &error);

	g_assert_no_error(error);
	assert_not_web(result);
	g_assert_cmpuint(raw.accepted, >=, 2);
	raw_listener_stop(&raw);
}

/* accepts and never says a word: the probe ends at its timeout, not later */
static void
test_probe_silent(void)
{
	RawListener raw = {0};
	guint16 port = raw_listener_start(&raw, NULL, 0, FALSE);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupHttpProbeResult) result = NULL;
	gint64 start = g_get_monotonic_time();
	gint64 elapsed_ms;

	result = probe(port, 500, NULL, &error);
	elapsed_ms = (g_get_monotonic_time() - start) / 1000;
	g_assert_no_error(error);
	assert_not_web(result);
	g_assert_cmpint(elapsed_ms, >=, 450);
	g_assert_cmpint(elapsed_ms, <, 500 + PROBE_SLACK_MS);
	g_assert_cmpuint(raw.accepted, >=, 1);
	raw_listener_stop(&raw);
}

static guint16
closed_port(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	guint16 port;

	g_assert_no_error(error);
	g_assert_true(g_socket_bind(socket, address, FALSE, &error));
	g_assert_no_error(error);
	bound = g_socket_get_local_address(socket, &error);
	g_assert_no_error(error);
	port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	/* bound but never listening: connections are refused */
	return port;
}

static void
test_probe_closed(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupHttpProbeResult) result =
	    probe(closed_port(), PROBE_TIMEOUT_MS, NULL, &error);

	g_assert_no_error(error);
	assert_not_web(result);
	g_assert_cmpstr(result->detail, ==, "connection refused");
}

static gboolean
cancel_cb(gpointer user_data)
{
	g_cancellable_cancel(user_data);
	return G_SOURCE_REMOVE;
}

static void
test_probe_cancel(void)
{
	RawListener raw = {0};
	guint16 port = raw_listener_start(&raw, NULL, 0, FALSE);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupHttpProbeResult) result = NULL;
	gint64 start = g_get_monotonic_time();

	g_timeout_add(100, cancel_cb, cancellable);
	result = probe(port, 10000, cancellable, &error);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_null(result);
	g_assert_cmpint(g_get_monotonic_time() - start, <, PROBE_SLACK_MS * 1000);
	vmsup_test_drain_main_context();
	raw_listener_stop(&raw);
}

/* --- the guest's listening ports ------------------------------------------ */

/* captured from a Linux 6.x host with listeners on 127.0.0.1:18080, ::1:18080,
 * 0.0.0.0:18081 (with a connection), 0.0.0.0:2024 and [::]:17777 */
static const gchar captured_tcp[] =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode                                                     \n"
    "   0: 0100007F:46A0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "17250 1 00000000eb300013 100 0 0 10 0                     \n"
    "   1: 00000000:46A1 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 "
    "17251 2 0000000080db701b 100 0 0 10 0                     \n"
    "   2: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "1520 1 00000000fb45a841 100 0 0 10 0                      \n"
    "   3: 0100007F:AADC 0100007F:46A1 01 00000000:00000000 00:00000000 00000000     0        0 "
    "17252 2 00000000bf7fb6d9 20 0 0 10 -1                     \n"
    "   4: 0100007F:D2AC 0100007F:4571 06 00000000:00000000 03:00001650 00000000     0        0 "
    "0 3 00000000f7e917fa                                      \n"
    "   6: 0100007F:46A1 0100007F:AADC 01 00000000:00000000 00:00000000 00000000     0        0 "
    "0 1 0000000068de09d9 20 0 0 10 -1                         \n";

static const gchar captured_tcp6[] =
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000001000000:46A0 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 17249 1 00000000b33447bf 100 0 0 10 "
    "0\n"
    "   1: 00000000000000000000000000000000:4571 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 17235 1 000000002b753063 100 0 0 10 "
    "0\n";

/* captured from the bundled guest (Linux 6.1, busybox) with httpd on [::]:80, "nc -ll -p
 * 7777" and a second httpd on 127.0.0.1:8080 */
static const gchar guest_tcp[] =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode                                                     \n"
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "10110 1 (____ptrval____) 100 0 0 10 0                     \n";

static const gchar guest_tcp6[] =
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 10094 1 (____ptrval____) 100 0 0 10 "
    "0\n"
    "   1: 00000000000000000000000000000000:1E61 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 10113 1 (____ptrval____) 100 0 0 10 "
    "0\n";

static const VmsupGuestListener *
find_port(GPtrArray *listeners, guint16 port)
{
	for (guint i = 0; i < listeners->len; i++) {
		const VmsupGuestListener *l = g_ptr_array_index(listeners, i);
		if (l->port == port)
			return l;
	}
	return NULL;
}

/* the listener on @port; a missing one fails the test */
static const VmsupGuestListener *
expect_port(GPtrArray *listeners, guint16 port)
{
	static const VmsupGuestListener missing = {.address = (gchar *)"(missing)"};
	const VmsupGuestListener *l = find_port(listeners, port);
	if (l == NULL) {
		g_test_fail_printf("no listener on port %u", port);
		return &missing;
	}
	return l;
}

static void
test_ports_parse_tcp(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) listeners = vmsup_guest_ports_parse(captured_tcp, FALSE, &error);
	const VmsupGuestListener *l;

	g_assert_no_error(error);
	/* established and time-wait rows are not listeners */
	g_assert_cmpuint(listeners->len, ==, 3);
	l = expect_port(listeners, 18080);
	g_assert_cmpstr(l->address, ==, "127.0.0.1");
	g_assert_true(l->loopback);
	g_assert_false(l->reachable);
	g_assert_false(l->wildcard);
	l = expect_port(listeners, 18081);
	g_assert_cmpstr(l->address, ==, "0.0.0.0");
	g_assert_true(l->wildcard);
	g_assert_true(l->reachable);
	g_assert_false(l->ipv6);
	g_assert_nonnull(find_port(listeners, 2024));
	g_assert_null(find_port(listeners, 0xAADC));
}

static void
test_ports_parse_tcp6(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) listeners = vmsup_guest_ports_parse(captured_tcp6, TRUE, &error);
	const VmsupGuestListener *l;

	g_assert_no_error(error);
	g_assert_cmpuint(listeners->len, ==, 2);
	l = expect_port(listeners, 18080);
	g_assert_cmpstr(l->address, ==, "::1");
	g_assert_true(l->ipv6);
	g_assert_true(l->loopback);
	g_assert_false(l->reachable);
	l = expect_port(listeners, 17777);
	g_assert_cmpstr(l->address, ==, "::");
	g_assert_true(l->wildcard);
	/* [::] takes IPv4 too: a forward reaches it */
	g_assert_true(l->reachable);
}

static void
test_ports_merge(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ports =
	    vmsup_guest_ports_parse_all(captured_tcp, captured_tcp6, &error);
	const guint16 expected[] = {2024, 17777, 18080, 18081};
	const VmsupGuestListener *l;

	g_assert_no_error(error);
	g_assert_cmpuint(ports->len, ==, G_N_ELEMENTS(expected));
	for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
		l = g_ptr_array_index(ports, i);
		g_assert_cmpuint(l->port, ==, expected[i]);
	}
	/* twins 127.0.0.1 and ::1: one entry, the IPv4 one */
	l = expect_port(ports, 18080);
	g_assert_cmpstr(l->address, ==, "127.0.0.1");
	g_assert_false(l->ipv6);
	g_assert_cmpstr(expect_port(ports, 17777)->address, ==, "::");
}

/* the bundled guest: busybox binds [::], so its listeners show up in tcp6 only */
static void
test_ports_bundled_guest(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ports = vmsup_guest_ports_parse_all(guest_tcp, guest_tcp6, &error);
	const VmsupGuestListener *l;

	g_assert_no_error(error);
	g_assert_cmpuint(ports->len, ==, 3);
	l = g_ptr_array_index(ports, 0);
	g_assert_cmpuint(l->port, ==, 80);
	g_assert_cmpstr(l->address, ==, "::");
	g_assert_true(l->ipv6);
	g_assert_true(l->reachable);
	l = g_ptr_array_index(ports, 1);
	g_assert_cmpuint(l->port, ==, 7777);
	g_assert_true(l->reachable);
	l = g_ptr_array_index(ports, 2);
	g_assert_cmpuint(l->port, ==, 8080);
	g_assert_cmpstr(l->address, ==, "127.0.0.1");
	g_assert_true(l->loopback);
	g_assert_false(l->reachable);
}

/* the shapes a guest shows: httpd on [::] only, a dual bind, a v4-mapped bind */
static void
test_ports_twins(void)
{
	const gchar *tcp = "  sl  local_address rem_address   st\n"
			   "   0: 00000000:0050 00000000:0000 0A 00000000:00000000\n"
			   "   1: 0F02000A:0016 00000000:0000 0A 00000000:00000000\n";
	const gchar *tcp6 =
	    "  sl  local_address                         remote_address                        st\n"
	    "   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A\n"
	    "   1: 0000000000000000FFFF00000F02000A:1F90 00000000000000000000000000000000:0000 0A\n"
	    "   2: 000080FE00000000FF005450563412FE:0035 00000000000000000000000000000000:0000 0A\n"
	    "   3: 000080FE00000000FF005450563412FE:0036 00000000000000000000000000000000:0000 "
	    "01\n";
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ports = vmsup_guest_ports_parse_all(tcp, tcp6, &error);
	const VmsupGuestListener *l;

	g_assert_no_error(error);
	g_assert_cmpuint(ports->len, ==, 4);
	l = expect_port(ports, 80);
	g_assert_cmpstr(l->address, ==, "0.0.0.0");
	g_assert_false(l->ipv6);
	l = expect_port(ports, 22);
	g_assert_cmpstr(l->address, ==, "10.0.2.15");
	g_assert_true(l->reachable);
	g_assert_false(l->wildcard);
	l = expect_port(ports, 8080);
	g_assert_cmpstr(l->address, ==, "10.0.2.15");
	g_assert_true(l->reachable);
	/* a specific IPv6 address is out of a forward's reach */
	l = expect_port(ports, 53);
	g_assert_cmpstr(l->address, ==, "fe80::5054:ff:fe12:3456");
	g_assert_false(l->reachable);
	g_assert_null(find_port(ports, 54));
}

static void
test_ports_hostile(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) none = NULL;
	g_autoptr(GPtrArray) bad = NULL;
	const gchar *junk = "  sl  local_address rem_address   st\n"
			    "   0: 00000000:0050\n"
			    "   1: 0000000:0050 00000000:0000 0A\n"
			    "   2: 0000000G:0050 00000000:0000 0A\n"
			    "   3: 00000000:0000 00000000:0000 0A\n"
			    "   4: 00000000:10050 00000000:0000 0A\n"
			    "   5: 00000000:0050 00000000:0000 0AX\n"
			    "garbage\n\n\n";

	none = vmsup_guest_ports_parse(junk, FALSE, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(none->len, ==, 0);

	bad = vmsup_guest_ports_parse("cat: /proc/net/tcp: No such file", FALSE, &error);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INTERNAL);
	g_assert_null(bad);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

	g_test_add_func("/vmsup/http-probe/http", test_probe_http);
	g_test_add_func("/vmsup/http-probe/http-error-status", test_probe_http_error_status);
	g_test_add_func("/vmsup/http-probe/plain-rejects-tls", test_probe_plain_rejects_tls);
	g_test_add_func("/vmsup/http-probe/https-self-signed", test_probe_https);
	g_test_add_func("/vmsup/http-probe/not-web/banner", test_probe_banner);
	g_test_add_func("/vmsup/http-probe/not-web/garbage", test_probe_garbage);
	g_test_add_func("/vmsup/http-probe/not-web/silent", test_probe_silent);
	g_test_add_func("/vmsup/http-probe/not-web/closed", test_probe_closed);
	g_test_add_func("/vmsup/http-probe/cancel", test_probe_cancel);
	g_test_add_func("/vmsup/guest-ports/parse-tcp", test_ports_parse_tcp);
	g_test_add_func("/vmsup/guest-ports/parse-tcp6", test_ports_parse_tcp6);
	g_test_add_func("/vmsup/guest-ports/merge", test_ports_merge);
	g_test_add_func("/vmsup/guest-ports/bundled-guest", test_ports_bundled_guest);
	g_test_add_func("/vmsup/guest-ports/twins", test_ports_twins);
	g_test_add_func("/vmsup/guest-ports/hostile", test_ports_hostile);
	return g_test_run();
}
