/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Is a TCP port a web server, and does it speak http or https? Decided by
 * real GET requests with libsoup, never by a bare connect().
 */

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "vmsup-stats"

#include "config.h"

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "vmsup-http-probe.h"

/*
 * after a plain HTTP error status, how long the TLS attempt may still take:
 * a TLS server finishes its handshake by then, a plain server that sits on
 * the ClientHello never does
 */
#define VMSUP_HTTP_PROBE_TLS_GRACE_MS 1000

typedef struct {
	gboolean done;
	guint status; /* 0: no HTTP answer */
	gchar *error; /* owned, why there was none */
} VmsupHttpAttempt;

typedef struct {
	gchar *host;
	guint16 port;
	guint timeout_ms;
	SoupSession *session;      /* owned */
	GCancellable *cancellable; /* owned: stops both attempts once decided */
	GCancellable *parent;      /* owned, nullable: the caller's */
	gulong parent_cancelled_id;
	GSource *timeout_source; /* owned */
	GSource *grace_source;   /* owned */
	VmsupHttpAttempt https;
	VmsupHttpAttempt http;
	gboolean returned;
	gint64 started; /* monotonic */
} VmsupHttpProbeData;

void
vmsup_http_probe_result_free(VmsupHttpProbeResult *result)
{
	if (result == NULL)
		return;
	g_free(result->url);
	g_free(result->detail);
	g_free(result);
}

static void
vmsup_http_probe_data_free(VmsupHttpProbeData *data)
{
	if (data->parent != NULL) {
		g_cancellable_disconnect(data->parent, data->parent_cancelled_id);
		g_object_unref(data->parent);
	}
	if (data->timeout_source != NULL) {
		g_source_destroy(data->timeout_source);
		g_source_unref(data->timeout_source);
	}
	if (data->grace_source != NULL) {
		g_source_destroy(data->grace_source);
		g_source_unref(data->grace_source);
	}
	if (data->session != NULL) {
		soup_session_abort(data->session);
		g_object_unref(data->session);
	}
	g_clear_object(&data->cancellable);
	g_free(data->https.error);
	g_free(data->http.error);
	g_free(data->host);
	g_free(data);
}

static gchar *
vmsup_http_probe_build_url(const gchar *scheme, const gchar *host, guint16 port)
{
	/* an IPv6 literal goes in brackets */
	if (strchr(host, ':') != NULL)
		return g_strdup_printf("%s://[%s]:%u/", scheme, host, port);
	return g_strdup_printf("%s://%s:%u/", scheme, host, port);
}

static void
vmsup_http_probe_return(GTask *task, const gchar *scheme, guint status, const gchar *detail)
{
	VmsupHttpProbeData *data = g_task_get_task_data(task);
	VmsupHttpProbeResult *result;

	if (data->returned)
		return;
	data->returned = TRUE;
	g_cancellable_cancel(data->cancellable);
	if (data->timeout_source != NULL) {
		g_source_destroy(data->timeout_source);
		g_clear_pointer(&data->timeout_source, g_source_unref);
	}
	if (data->grace_source != NULL) {
		g_source_destroy(data->grace_source);
		g_clear_pointer(&data->grace_source, g_source_unref);
	}
	if (g_task_return_error_if_cancelled(task))
		return;

	result = g_new0(VmsupHttpProbeResult, 1);
	if (scheme != NULL) {
		result->web = TRUE;
		result->scheme = scheme;
		result->status = status;
		result->url = vmsup_http_probe_build_url(scheme, data->host, data->port);
	} else {
		result->detail = g_strdup(detail);
	}
	g_debug("probe %s:%u after %" G_GINT64_FORMAT " ms: %s %u%s%s",
		data->host,
		data->port,
		(g_get_monotonic_time() - data->started) / 1000,
		scheme != NULL ? scheme : "not web",
		status,
		detail != NULL ? ": " : "",
		detail != NULL ? detail : "");
	g_task_return_pointer(task, result, (GDestroyNotify)vmsup_http_probe_result_free);
}

static gboolean
vmsup_http_probe_grace_cb(gpointer user_data);

/* decide as soon as the answers so far allow it */
static void
vmsup_http_probe_decide(GTask *task, gboolean timed_out)
{
	VmsupHttpProbeData *data = g_task_get_task_data(task);

	if (data->returned)
		return;
	if (data->https.done && data->https.status > 0) {
		vmsup_http_probe_return(task, "https", data->https.status, NULL);
		return;
	}
	/*
	 * a TLS server may answer plain HTTP with an error status (nginx: 400),
	 * so an error status waits a moment for the TLS attempt; a success does
	 * not (a plain HTTP server may sit on a ClientHello until its own timeout)
	 */
	if (data->http.done && data->http.status > 0 &&
	    (data->http.status < 400 || data->https.done || timed_out)) {
		vmsup_http_probe_return(task, "http", data->http.status, NULL);
		return;
	}
	if (data->http.done && data->http.status > 0 && data->grace_source == NULL) {
		data->grace_source = g_timeout_source_new(VMSUP_HTTP_PROBE_TLS_GRACE_MS);
		g_source_set_callback(data->grace_source, vmsup_http_probe_grace_cb, task, NULL);
		g_source_attach(data->grace_source, g_main_context_get_thread_default());
	}
	if (data->https.done && data->http.done) {
		vmsup_http_probe_return(task,
					NULL,
					0,
					data->http.error != NULL ? data->http.error
								 : data->https.error);
		return;
	}
	if (timed_out) {
		g_autofree gchar *detail =
		    g_strdup_printf("no HTTP answer within %u ms", data->timeout_ms);
		vmsup_http_probe_return(task, NULL, 0, detail);
	}
}

static gboolean
vmsup_http_probe_timeout_cb(gpointer user_data)
{
	GTask *task = user_data;
	VmsupHttpProbeData *data = g_task_get_task_data(task);

	g_clear_pointer(&data->timeout_source, g_source_unref);
	vmsup_http_probe_decide(task, TRUE);
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_http_probe_grace_cb(gpointer user_data)
{
	GTask *task = user_data;
	VmsupHttpProbeData *data = g_task_get_task_data(task);

	g_clear_pointer(&data->grace_source, g_source_unref);
	/* the TLS attempt had its chance: the plain answer stands */
	vmsup_http_probe_decide(task, TRUE);
	return G_SOURCE_REMOVE;
}

static gchar *
vmsup_http_probe_describe_error(const GError *error)
{
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
		return g_strdup("connection refused");
	if (error->domain == G_TLS_ERROR)
		return g_strdup_printf("no TLS: %s", error->message);
	return g_strdup(error->message);
}

static void
vmsup_http_probe_sent_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupHttpProbeData *data = g_task_get_task_data(task);
	SoupSession *session = SOUP_SESSION(source);
	SoupMessage *msg = soup_session_get_async_result_message(session, res);
	g_autoptr(GInputStream) stream = NULL;
	g_autoptr(GError) error = NULL;
	VmsupHttpAttempt *attempt;

	attempt = g_strcmp0(g_uri_get_scheme(soup_message_get_uri(msg)), "https") == 0
		      ? &data->https
		      : &data->http;
	stream = soup_session_send_finish(session, res, &error);
	attempt->done = TRUE;
	if (stream == NULL) {
		attempt->error = vmsup_http_probe_describe_error(error);
	} else {
		/* the status line is the proof; the body is not needed */
		attempt->status = soup_message_get_status(msg);
		if (attempt->status == 0)
			attempt->error = g_strdup("no HTTP status");
	}
	vmsup_http_probe_decide(task, FALSE);
}

static gboolean
vmsup_http_probe_accept_certificate_cb(SoupMessage *msg,
				       GTlsCertificate *certificate,
				       GTlsCertificateFlags errors,
				       gpointer user_data)
{
	/* a probe asks "does it speak TLS", not "is it trusted": self-signed is fine */
	return TRUE;
}

static void
vmsup_http_probe_send(GTask *task, const gchar *scheme)
{
	VmsupHttpProbeData *data = g_task_get_task_data(task);
	g_autofree gchar *url = vmsup_http_probe_build_url(scheme, data->host, data->port);
	g_autoptr(SoupMessage) msg = soup_message_new(SOUP_METHOD_GET, url);

	if (msg == NULL) {
		VmsupHttpAttempt *attempt =
		    g_strcmp0(scheme, "https") == 0 ? &data->https : &data->http;
		attempt->done = TRUE;
		attempt->error = g_strdup_printf("invalid address %s", url);
		return;
	}
	/* the first answer is what we judge, not where it redirects to */
	soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
	g_signal_connect(msg,
			 "accept-certificate",
			 G_CALLBACK(vmsup_http_probe_accept_certificate_cb),
			 NULL);
	soup_session_send_async(data->session,
				msg,
				G_PRIORITY_DEFAULT,
				data->cancellable,
				vmsup_http_probe_sent_cb,
				g_object_ref(task));
}

static void
vmsup_http_probe_parent_cancelled_cb(GCancellable *parent, gpointer user_data)
{
	GCancellable *own = user_data;
	g_cancellable_cancel(own);
}

void
vmsup_http_probe_async(const gchar *host,
		       guint16 port,
		       guint timeout_ms,
		       GCancellable *cancellable,
		       GAsyncReadyCallback callback,
		       gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	VmsupHttpProbeData *data = g_new0(VmsupHttpProbeData, 1);

	g_return_if_fail(host != NULL);

	g_task_set_source_tag(task, vmsup_http_probe_async);
	g_task_set_task_data(task, data, (GDestroyNotify)vmsup_http_probe_data_free);
	data->host = g_strdup(host);
	data->port = port;
	data->timeout_ms = timeout_ms;
	data->started = g_get_monotonic_time();
	data->cancellable = g_cancellable_new();
	/* the probe talks to one address directly: a proxy from the environment would lie */
	data->session = soup_session_new_with_options("max-conns-per-host", 4, NULL);
	soup_session_set_proxy_resolver(data->session, NULL);
	/* every certificate is accepted: loading the system's CA list would only cost time */
	soup_session_set_tls_database(data->session, NULL);
	soup_session_set_user_agent(data->session, "vmsup-probe/" PACKAGE_VERSION);
	if (cancellable != NULL) {
		data->parent = g_object_ref(cancellable);
		data->parent_cancelled_id =
		    g_cancellable_connect(cancellable,
					  G_CALLBACK(vmsup_http_probe_parent_cancelled_cb),
					  data->cancellable,
					  NULL);
	}

	data->timeout_source = g_timeout_source_new(timeout_ms);
	g_source_set_callback(data->timeout_source, vmsup_http_probe_timeout_cb, task, NULL);
	g_source_attach(data->timeout_source, g_main_context_get_thread_default());

	vmsup_http_probe_send(task, "https");
	vmsup_http_probe_send(task, "http");
	vmsup_http_probe_decide(task, FALSE);
}

VmsupHttpProbeResult *
vmsup_http_probe_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}
