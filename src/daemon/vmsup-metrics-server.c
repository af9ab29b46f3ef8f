/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HTTP side of /metrics: a SoupServer on the daemon's main loop. It is
 * asynchronous, so a client that sends half a request holds only its own
 * connection, and that only until the idle timeout.
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>
#include <libsoup/soup.h>

#include "vmsup-error.h"
#include "vmsup-metrics-server.h"

struct _VmsupMetricsServer {
	GObject parent_instance;
	SoupServer *server;
	gboolean system_mode;
	VmsupMetricsCollectFunc collect;
	gpointer collect_data;
	GPtrArray *socket_paths; /* of gchar *: the Unix sockets made, removed when done */
};

G_DEFINE_FINAL_TYPE(VmsupMetricsServer, vmsup_metrics_server, G_TYPE_OBJECT)

static gboolean
vmsup_metrics_set_parse_error(const gchar *value, GError **error)
{
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("Invalid value '%s' for MetricsListen: expected ADDRESS:PORT with a numeric "
		      "address and a port from 1 to 65535 (such as 127.0.0.1:9477) or an absolute "
		      "Unix socket path"),
		    value);
	return FALSE;
}

GSocketAddress *
vmsup_metrics_listen_parse(const gchar *value, GError **error)
{
	const gchar *colon;
	g_autofree gchar *host = NULL;
	g_autoptr(GInetAddress) address = NULL;
	guint64 port = 0;

	g_return_val_if_fail(value != NULL, NULL);
	if (value[0] == '/') {
		if (strlen(value) >= 108 || strstr(value, "/../") != NULL) {
			vmsup_metrics_set_parse_error(value, error);
			return NULL;
		}
		return g_unix_socket_address_new(value);
	}
	colon = strrchr(value, ':');
	if (colon == NULL ||
	    !g_ascii_string_to_unsigned(colon + 1, 10, 1, G_MAXUINT16, &port, NULL)) {
		vmsup_metrics_set_parse_error(value, error);
		return NULL;
	}
	host = g_strndup(value, colon - value);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		gchar *inner = g_strndup(host + 1, strlen(host) - 2);
		g_free(host);
		host = inner;
		if (strchr(host, ':') == NULL) {
			vmsup_metrics_set_parse_error(value, error);
			return NULL;
		}
	} else if (strchr(host, ':') != NULL) {
		vmsup_metrics_set_parse_error(value, error);
		return NULL;
	}
	address = g_inet_address_new_from_string(host);
	if (address == NULL) {
		vmsup_metrics_set_parse_error(value, error);
		return NULL;
	}
	return g_inet_socket_address_new(address, (guint16)port);
}

static void
vmsup_metrics_server_handle(SoupServer *server,
			    SoupServerMessage *msg,
			    const char *path,
			    GHashTable *query,
			    gpointer user_data)
{
	VmsupMetricsServer *self = user_data;
	g_autoptr(GString) out = NULL;
	gboolean per_vm;
	gsize length;

	if (g_strcmp0(path, "/metrics") != 0) {
		soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, NULL);
		soup_server_message_set_response(msg,
						 "text/plain",
						 SOUP_MEMORY_STATIC,
						 "not found: try /metrics\n",
						 24);
		return;
	}
	if (soup_server_message_get_method(msg) != SOUP_METHOD_GET) {
		soup_message_headers_replace(soup_server_message_get_response_headers(msg),
					     "Allow",
					     "GET");
		soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
		return;
	}
	/* a Unix socket is made 0600: whoever reaches it is root (or, in a session, the user) */
	per_vm = !self->system_mode ||
		 G_IS_UNIX_SOCKET_ADDRESS(soup_server_message_get_local_address(msg));
	out = g_string_sized_new(8192);
	self->collect(out, per_vm, self->collect_data);
	length = out->len;
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg,
					 "text/plain; version=0.0.4; charset=utf-8",
					 SOUP_MEMORY_TAKE,
					 g_string_free(g_steal_pointer(&out), FALSE),
					 length);
}

/* a client that sends nothing, or half a request, is cut off after the idle timeout */
static void
vmsup_metrics_server_request_started_cb(SoupServer *server,
					SoupServerMessage *msg,
					gpointer user_data)
{
	GSocket *socket = soup_server_message_get_socket(msg);

	if (socket != NULL)
		g_socket_set_timeout(socket, VMSUP_METRICS_SERVER_IDLE_TIMEOUT_S);
}

/* a socket file left by a dead daemon is removed; a live listener or any other file is kept */
static gboolean
vmsup_metrics_server_claim_path(const gchar *path, GError **error)
{
	GStatBuf st;
	g_autoptr(GSocketClient) client = NULL;
	g_autoptr(GSocketAddress) address = NULL;
	g_autoptr(GSocketConnection) conn = NULL;

	if (g_lstat(path, &st) != 0)
		return TRUE;
	if (!S_ISSOCK(st.st_mode)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_ALREADY_EXISTS,
			    _("Cannot serve metrics on %s: a file that is not a socket is there; "
			      "remove it or choose another MetricsListen= path"),
			    path);
		return FALSE;
	}
	client = g_socket_client_new();
	address = g_unix_socket_address_new(path);
	conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(address), NULL, NULL);
	if (conn != NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_ALREADY_EXISTS,
			    _("Cannot serve metrics on %s: something already listens there; stop "
			      "it or choose another MetricsListen= path"),
			    path);
		return FALSE;
	}
	g_unlink(path);
	return TRUE;
}

static gboolean
vmsup_metrics_server_listen_unix(VmsupMetricsServer *self,
				 GSocketAddress *address,
				 const gchar *path,
				 GError **error)
{
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GError) error_local = NULL;

	if (!vmsup_metrics_server_claim_path(path, error))
		return FALSE;
	socket = g_socket_new(G_SOCKET_FAMILY_UNIX,
			      G_SOCKET_TYPE_STREAM,
			      G_SOCKET_PROTOCOL_DEFAULT,
			      &error_local);
	if (socket == NULL || !g_socket_bind(socket, address, FALSE, &error_local))
		goto fail;
	g_ptr_array_add(self->socket_paths, g_strdup(path));
	/* before listen(): nobody connects while the mode is still the umask's */
	if (g_chmod(path, 0600) != 0) {
		g_set_error(&error_local,
			    G_IO_ERROR,
			    g_io_error_from_errno(errno),
			    "chmod: %s",
			    g_strerror(errno));
		goto fail;
	}
	if (!g_socket_listen(socket, &error_local) ||
	    !soup_server_listen_socket(self->server, socket, 0, &error_local))
		goto fail;
	return TRUE;

fail:
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Cannot serve metrics on %s: %s; check MetricsListen= in vmsupd.conf"),
		    path,
		    error_local->message);
	return FALSE;
}

gboolean
vmsup_metrics_server_listen(VmsupMetricsServer *self, const gchar *value, GError **error)
{
	g_autoptr(GSocketAddress) address = NULL;
	g_autoptr(GError) error_local = NULL;

	g_return_val_if_fail(VMSUP_IS_METRICS_SERVER(self), FALSE);
	g_return_val_if_fail(value != NULL, FALSE);

	address = vmsup_metrics_listen_parse(value, error);
	if (address == NULL)
		return FALSE;
	if (G_IS_UNIX_SOCKET_ADDRESS(address))
		return vmsup_metrics_server_listen_unix(self, address, value, error);
	if (!soup_server_listen(self->server, address, 0, &error_local)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot serve metrics on %s: %s; choose another port in "
			      "MetricsListen= of vmsupd.conf"),
			    value,
			    error_local->message);
		return FALSE;
	}
	return TRUE;
}

static void
vmsup_metrics_server_dispose(GObject *object)
{
	VmsupMetricsServer *self = VMSUP_METRICS_SERVER(object);

	if (self->server != NULL)
		soup_server_disconnect(self->server);
	g_clear_object(&self->server);
	for (guint i = 0; i < self->socket_paths->len; i++)
		g_unlink(g_ptr_array_index(self->socket_paths, i));
	g_ptr_array_set_size(self->socket_paths, 0);
	G_OBJECT_CLASS(vmsup_metrics_server_parent_class)->dispose(object);
}

static void
vmsup_metrics_server_finalize(GObject *object)
{
	VmsupMetricsServer *self = VMSUP_METRICS_SERVER(object);

	g_ptr_array_unref(self->socket_paths);
	G_OBJECT_CLASS(vmsup_metrics_server_parent_class)->finalize(object);
}

static void
vmsup_metrics_server_class_init(VmsupMetricsServerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = vmsup_metrics_server_dispose;
	object_class->finalize = vmsup_metrics_server_finalize;
}

static void
vmsup_metrics_server_init(VmsupMetricsServer *self)
{
	self->socket_paths = g_ptr_array_new_with_free_func(g_free);
}

VmsupMetricsServer *
vmsup_metrics_server_new(gboolean system_mode, VmsupMetricsCollectFunc collect, gpointer user_data)
{
	VmsupMetricsServer *self;

	g_return_val_if_fail(collect != NULL, NULL);
	self = g_object_new(VMSUP_TYPE_METRICS_SERVER, NULL);
	self->system_mode = system_mode;
	self->collect = collect;
	self->collect_data = user_data;
	self->server = soup_server_new("server-header", "vmsupd ", NULL);
	soup_server_add_handler(self->server, NULL, vmsup_metrics_server_handle, self, NULL);
	g_signal_connect(self->server,
			 "request-started",
			 G_CALLBACK(vmsup_metrics_server_request_started_cb),
			 self);
	return self;
}
