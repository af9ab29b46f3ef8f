/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* a connection that sends nothing for this long is closed */
#define VMSUP_METRICS_SERVER_IDLE_TIMEOUT_S 10

#define VMSUP_TYPE_METRICS_SERVER (vmsup_metrics_server_get_type())
G_DECLARE_FINAL_TYPE(VmsupMetricsServer, vmsup_metrics_server, VMSUP, METRICS_SERVER, GObject)

/*
 * What one scrape writes, in the text exposition format; @per_vm: whether
 * the listener it came on may show the series of each VM
 */
typedef void (*VmsupMetricsCollectFunc)(GString *out, gboolean per_vm, gpointer user_data);

/*
 * One MetricsListen= value: ADDRESS:PORT with a numeric IPv4 or [IPv6]
 * address (127.0.0.1:9477, [::1]:9477, 0.0.0.0:9477) or an absolute Unix
 * socket path. Anything else is VMSUP_ERROR_INVALID_ARGUMENT saying what is
 * expected.
 */
GSocketAddress *
vmsup_metrics_listen_parse(const gchar *value, GError **error);

/*
 * GET /metrics over HTTP/1.1, nothing else (404 for other paths, 405 for
 * other methods). In @system_mode only a Unix socket listener (made 0600,
 * so root's alone) gets the per-VM series: a TCP port carries no peer
 * credentials to decide on.
 */
VmsupMetricsServer *
vmsup_metrics_server_new(gboolean system_mode, VmsupMetricsCollectFunc collect, gpointer user_data);
/* starts serving on @value (see vmsup_metrics_listen_parse()) */
gboolean
vmsup_metrics_server_listen(VmsupMetricsServer *self, const gchar *value, GError **error);

G_END_DECLS
