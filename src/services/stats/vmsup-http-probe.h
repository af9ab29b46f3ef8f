/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* what a TCP port turned out to be */
typedef struct {
	gboolean web;        /* it answered an HTTP(S) GET with a status line */
	const gchar *scheme; /* static: "http", "https", or NULL when not web */
	guint status;        /* the HTTP status of the answer, 0 when not web */
	gchar *url;          /* owned: "http://127.0.0.1:8080/", NULL when not web */
	gchar *detail;       /* owned: why it is not web ("connection refused", ...), or NULL */
} VmsupHttpProbeResult;

void
vmsup_http_probe_result_free(VmsupHttpProbeResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupHttpProbeResult, vmsup_http_probe_result_free)

/*
 * Decides whether @host:@port is a web server by real requests: an HTTPS
 * GET (any certificate accepted, self-signed included) and a plain HTTP GET,
 * in parallel, each bounded by @timeout_ms. HTTPS wins when both answer (a
 * TLS server may answer plain HTTP with a 400): after a plain error status
 * the TLS attempt gets one more second. Accepting a connection is not
 * enough: a forward accepts before anything listens behind it, and a
 * listener that does not speak HTTP is not web. Never fails except when
 * @cancellable is cancelled.
 */
void
vmsup_http_probe_async(const gchar *host,
		       guint16 port,
		       guint timeout_ms,
		       GCancellable *cancellable,
		       GAsyncReadyCallback callback,
		       gpointer user_data);
VmsupHttpProbeResult *
vmsup_http_probe_finish(GAsyncResult *res, GError **error);

G_END_DECLS
