/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The CLI's side of the JSON-RPC socket: one request at a time, answers
 * matched by id, notifications kept aside for whoever asks for them. A plain
 * Unix socket and GLib sources: a short-lived command pays for nothing else.
 */

#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gi18n.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-jsonrpc-client.h"
#include "vmsup-line-stream.h"

/* far above any answer vmsupd gives; a bound so a broken peer cannot eat memory */
#define VMSUP_JSONRPC_CLIENT_MAX_LINE (64 * 1024 * 1024)
/* the session bus's own activation timeout (25 s by default) usually ends the wait first */
#define VMSUP_JSONRPC_CLIENT_ACTIVATION_TIMEOUT_MS (120 * 1000)
#define VMSUP_JSONRPC_CLIENT_BUS_NAME "io.github.vmsup.Supervisor1"

struct _VmsupJsonrpcClient {
	GObject parent_instance;
	VmsupLineStream *stream; /* owned; NULL until connected */
	GQueue inbox;            /* of JsonObject, owned: received, not yet taken */
	GError *invalid;         /* owned: a line that was not JSON, received after the inbox */
	GError *lost;            /* owned: how the connection ended, once it did */
	gint64 next_id;
	gboolean cancelled;
	gboolean refused;     /* vmsupd answered with an error about the connection itself */
	GQueue notifications; /* of JsonObject, owned */
};

G_DEFINE_FINAL_TYPE(VmsupJsonrpcClient, vmsup_jsonrpc_client, G_TYPE_OBJECT)

/*
 * Socket failures read as they always did: in GLib's words, which GLib's own
 * catalog translates
 */
static void
vmsup_jsonrpc_client_set_connect_error(GError **error, gint errsv)
{
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_CONNECT,
		    "%s%s",
		    g_dgettext("glib20", "Could not connect: "),
		    g_strerror(errsv));
}

static void
vmsup_jsonrpc_client_message_cb(VmsupLineStream *stream, JsonObject *message, gpointer user_data)
{
	VmsupJsonrpcClient *self = user_data;
	g_queue_push_tail(&self->inbox, json_object_ref(message));
}

/* what follows waits until the caller heard of it */
static void
vmsup_jsonrpc_client_invalid_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	VmsupJsonrpcClient *self = user_data;

	g_clear_error(&self->invalid);
	self->invalid = g_error_new(VMSUP_ERROR,
				    VMSUP_ERROR_PROTOCOL,
				    _("vmsupd sent something that is not JSON-RPC: %s"),
				    error->message);
	vmsup_line_stream_set_paused(stream, TRUE);
}

static void
vmsup_jsonrpc_client_closed_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	VmsupJsonrpcClient *self = user_data;

	if (error == NULL || vmsup_line_stream_got_eof(stream))
		self->lost = g_error_new_literal(VMSUP_ERROR,
						 VMSUP_ERROR_CLOSED,
						 _("vmsupd closed the connection"));
	else if (g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_PROTOCOL))
		self->lost = g_error_new_literal(VMSUP_ERROR,
						 VMSUP_ERROR_PROTOCOL,
						 _("vmsupd sent an answer that is too long"));
	else
		self->lost = g_error_new(VMSUP_ERROR,
					 VMSUP_ERROR_CLOSED,
					 _("Lost the connection to vmsupd: %s"),
					 error->message);
}

/* takes @fd, a connected socket */
static GIOStream *
vmsup_jsonrpc_client_stream_from_fd(gint fd, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autoptr(GSocket) socket = g_socket_new_from_fd(fd, &error_local);

	if (socket == NULL) {
		close(fd);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_CONNECT,
			    "%s%s",
			    g_dgettext("glib20", "Could not connect: "),
			    error_local->message);
		return NULL;
	}
	return G_IO_STREAM(g_socket_connection_factory_create_connection(socket));
}

void
vmsup_jsonrpc_client_connect_stream(VmsupJsonrpcClient *self, GIOStream *stream)
{
	g_return_if_fail(VMSUP_IS_JSONRPC_CLIENT(self));
	g_return_if_fail(G_IS_IO_STREAM(stream));
	g_return_if_fail(self->stream == NULL);

	/* descriptors (vm.console) come only over the local socket */
	self->stream = vmsup_line_stream_new(
	    stream,
	    "vmsupd",
	    G_IS_SOCKET_CONNECTION(stream) ? VMSUP_LINE_STREAM_RECEIVE_FDS : 0);
	vmsup_line_stream_set_max_line(self->stream, VMSUP_JSONRPC_CLIENT_MAX_LINE);
	g_signal_connect(self->stream,
			 "message",
			 G_CALLBACK(vmsup_jsonrpc_client_message_cb),
			 self);
	g_signal_connect(self->stream,
			 "invalid",
			 G_CALLBACK(vmsup_jsonrpc_client_invalid_cb),
			 self);
	g_signal_connect(self->stream, "closed", G_CALLBACK(vmsup_jsonrpc_client_closed_cb), self);
	vmsup_line_stream_start(self->stream);
}

/* the connected socket, or -1 with *@out_errno */
static gint
vmsup_jsonrpc_client_open(const gchar *socket_path, gint *out_errno)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	gsize len = strlen(socket_path);
	gint fd;

	if (len >= sizeof(addr.sun_path)) {
		*out_errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(addr.sun_path, socket_path, len);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*out_errno = errno;
		return -1;
	}
	while (connect(fd, (struct sockaddr *)&addr, offsetof(struct sockaddr_un, sun_path) + len) <
	       0) {
		gint errsv = errno;
		if (errsv == EINTR)
			continue;
		close(fd);
		*out_errno = errsv;
		return -1;
	}
	return fd;
}

static GIOStream *
vmsup_jsonrpc_client_dial_plain(const gchar *socket_path, GError **error)
{
	gint errsv = 0;
	gint fd = vmsup_jsonrpc_client_open(socket_path, &errsv);

	if (fd < 0) {
		vmsup_jsonrpc_client_set_connect_error(error, errsv);
		return NULL;
	}
	return vmsup_jsonrpc_client_stream_from_fd(fd, error);
}

/*
 * The session bus, if the session has one: $DBUS_SESSION_BUS_ADDRESS or the
 * user bus in $XDG_RUNTIME_DIR. Never autolaunched: a bus made up for this
 * one call would start a vmsupd that nobody else can find.
 */
static GDBusConnection *
vmsup_jsonrpc_client_session_bus(GError **error)
{
	const gchar *env = g_getenv("DBUS_SESSION_BUS_ADDRESS");
	g_autofree gchar *user_bus = g_build_filename(g_get_user_runtime_dir(), "bus", NULL);
	g_autofree gchar *address = NULL;

	if (env != NULL && env[0] != '\0') {
		address = g_strdup(env);
	} else if (g_file_test(user_bus, G_FILE_TEST_EXISTS)) {
		g_autofree gchar *escaped = g_dbus_address_escape_value(user_bus);
		address = g_strconcat("unix:path=", escaped, NULL);
	} else {
		g_set_error_literal(error,
				    G_IO_ERROR,
				    G_IO_ERROR_NOT_FOUND,
				    _("there is no session bus"));
		return NULL;
	}
	return g_dbus_connection_new_for_address_sync(
	    address,
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    /* observer= */ NULL,
	    /* cancellable= */ NULL,
	    error);
}

/* D-Bus activation of the session vmsupd; TRUE once it runs */
static gboolean
vmsup_jsonrpc_client_activate(GError **error)
{
	g_autoptr(GDBusConnection) bus = vmsup_jsonrpc_client_session_bus(error);
	g_autoptr(GVariant) reply = NULL;
	guint32 started = 0;

	if (bus == NULL)
		return FALSE;
	reply = g_dbus_connection_call_sync(bus,
					    "org.freedesktop.DBus",
					    "/org/freedesktop/DBus",
					    "org.freedesktop.DBus",
					    "StartServiceByName",
					    g_variant_new("(su)", VMSUP_JSONRPC_CLIENT_BUS_NAME, 0),
					    G_VARIANT_TYPE("(u)"),
					    G_DBUS_CALL_FLAGS_NONE,
					    VMSUP_JSONRPC_CLIENT_ACTIVATION_TIMEOUT_MS,
					    /* cancellable= */ NULL,
					    error);
	if (reply == NULL) {
		g_dbus_error_strip_remote_error(*error);
		return FALSE;
	}
	g_variant_get(reply, "(u)", &started);
	g_debug("D-Bus activation of %s: %u (1: started, 2: was running)",
		VMSUP_JSONRPC_CLIENT_BUS_NAME,
		started);
	return TRUE;
}

/* the connect error, and why starting vmsupd did not help */
static void
vmsup_jsonrpc_client_set_activation_error(GError **error, gint errsv, const gchar *why)
{
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_CONNECT,
		    "%s%s; %s",
		    g_dgettext("glib20", "Could not connect: "),
		    g_strerror(errsv),
		    why);
}

/* the socket, starting the session vmsupd over D-Bus when nobody listens there */
static GIOStream *
vmsup_jsonrpc_client_dial_activating(const gchar *socket_path, GError **error)
{
	g_autoptr(GError) bus_error = NULL;
	gint errsv = 0;
	gint fd;

	fd = vmsup_jsonrpc_client_open(socket_path, &errsv);
	if (fd >= 0)
		return vmsup_jsonrpc_client_stream_from_fd(fd, error);
	if (errsv != ENOENT && errsv != ECONNREFUSED) {
		vmsup_jsonrpc_client_set_connect_error(error, errsv);
		return NULL;
	}
	/*
	 * vmsupd takes its bus name only once its socket listens, so the bus's
	 * answer is the wait for the socket: it comes when the socket is there
	 */
	if (!vmsup_jsonrpc_client_activate(&bus_error)) {
		vmsup_jsonrpc_client_set_activation_error(error, errsv, bus_error->message);
		return NULL;
	}
	fd = vmsup_jsonrpc_client_open(socket_path, &errsv);
	if (fd < 0) {
		vmsup_jsonrpc_client_set_activation_error(
		    error,
		    errsv,
		    _("the vmsupd the session bus runs does not listen there"));
		return NULL;
	}
	return vmsup_jsonrpc_client_stream_from_fd(fd, error);
}

GIOStream *
vmsup_jsonrpc_client_dial(const gchar *socket_path, gboolean activate, GError **error)
{
	g_return_val_if_fail(socket_path != NULL, NULL);

	return activate ? vmsup_jsonrpc_client_dial_activating(socket_path, error)
			: vmsup_jsonrpc_client_dial_plain(socket_path, error);
}

static gboolean
vmsup_jsonrpc_client_connect_dialing(VmsupJsonrpcClient *self,
				     const gchar *socket_path,
				     gboolean activate,
				     GError **error)
{
	g_autoptr(GIOStream) stream = NULL;

	g_return_val_if_fail(VMSUP_IS_JSONRPC_CLIENT(self), FALSE);
	g_return_val_if_fail(socket_path != NULL, FALSE);
	g_return_val_if_fail(self->stream == NULL, FALSE);

	stream = vmsup_jsonrpc_client_dial(socket_path, activate, error);
	if (stream == NULL)
		return FALSE;
	vmsup_jsonrpc_client_connect_stream(self, stream);
	return TRUE;
}

gboolean
vmsup_jsonrpc_client_connect(VmsupJsonrpcClient *self, const gchar *socket_path, GError **error)
{
	return vmsup_jsonrpc_client_connect_dialing(self, socket_path, FALSE, error);
}

gboolean
vmsup_jsonrpc_client_connect_activating(VmsupJsonrpcClient *self,
					const gchar *socket_path,
					GError **error)
{
	return vmsup_jsonrpc_client_connect_dialing(self, socket_path, TRUE, error);
}

/* whether systemd runs (system), or runs the user's session (not system) */
static gboolean
vmsup_jsonrpc_client_systemd_runs(gboolean system)
{
	g_autofree gchar *dir = system
				    ? g_strdup("/run/systemd/system")
				    : g_build_filename(g_get_user_runtime_dir(), "systemd", NULL);
	return g_file_test(dir, G_FILE_TEST_IS_DIR);
}

static gboolean
vmsup_jsonrpc_client_socket_unit_installed(gboolean system)
{
	g_autofree gchar *user_config =
	    g_build_filename(g_get_user_config_dir(), "systemd", "user", NULL);
	const gchar *system_dirs[] = {VMSUP_SYSTEMD_SYSTEM_UNIT_DIR,
				      "/etc/systemd/system",
				      "/usr/lib/systemd/system",
				      "/lib/systemd/system",
				      NULL};
	const gchar *user_dirs[] = {VMSUP_SYSTEMD_USER_UNIT_DIR,
				    user_config,
				    "/etc/systemd/user",
				    "/usr/lib/systemd/user",
				    NULL};

	for (const gchar *const *dir = system ? system_dirs : user_dirs; *dir != NULL; dir++) {
		g_autofree gchar *unit = g_build_filename(*dir, "vmsupd.socket", NULL);
		if (g_file_test(unit, G_FILE_TEST_EXISTS))
			return TRUE;
	}
	return FALSE;
}

gchar *
vmsup_jsonrpc_client_start_command(gboolean system)
{
	const gchar *mode = system ? "--system" : "--session";
	g_autofree gchar *systemctl = g_find_program_in_path("systemctl");
	g_autofree gchar *vmsupd = g_build_filename(VMSUP_LIBEXECDIR, "vmsupd", NULL);

	if (systemctl != NULL && vmsup_jsonrpc_client_systemd_runs(system) &&
	    vmsup_jsonrpc_client_socket_unit_installed(system))
		return g_strdup(system ? "systemctl start vmsupd.socket"
				       : "systemctl --user start vmsupd.socket");
	/* installed in libexec, off PATH; on PATH in a `meson devenv` shell */
	if (!g_file_test(vmsupd, G_FILE_TEST_IS_EXECUTABLE)) {
		g_autofree gchar *found = g_find_program_in_path("vmsupd");
		if (found != NULL) {
			g_free(vmsupd);
			vmsupd = g_steal_pointer(&found);
		}
	}
	return g_strdup_printf("%s %s", vmsupd, mode);
}

static gboolean
vmsup_jsonrpc_client_timeout_cb(gpointer user_data)
{
	gboolean *timed_out = user_data;
	*timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_jsonrpc_client_has_news(VmsupJsonrpcClient *self)
{
	return !g_queue_is_empty(&self->inbox) || self->invalid != NULL || self->lost != NULL;
}

/*
 * Iterates the thread-default context until something came: TRUE; FALSE
 * with @error: cancelled (only when @cancellable); FALSE without: the
 * deadline passed
 */
static gboolean
vmsup_jsonrpc_client_wait(VmsupJsonrpcClient *self,
			  gint64 deadline,
			  gboolean cancellable,
			  GError **error)
{
	GMainContext *context = g_main_context_ref_thread_default();
	g_autoptr(GSource) timeout = NULL;
	gboolean timed_out = FALSE;

	if (deadline >= 0) {
		gint64 left_ms = MAX(0, (deadline - g_get_monotonic_time() + 999) / 1000);
		timeout = g_timeout_source_new((guint)MIN(left_ms, G_MAXUINT));
		g_source_set_callback(timeout, vmsup_jsonrpc_client_timeout_cb, &timed_out, NULL);
		g_source_attach(timeout, context);
	}
	while (!vmsup_jsonrpc_client_has_news(self) && !timed_out &&
	       !(cancellable && self->cancelled))
		g_main_context_iteration(context, TRUE);
	if (timeout != NULL)
		g_source_destroy(timeout);
	g_main_context_unref(context);
	if (cancellable && self->cancelled) {
		self->cancelled = FALSE;
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INTERRUPTED,
				    g_dgettext("glib20", "Operation was cancelled"));
		return FALSE;
	}
	return !timed_out;
}

/* the next message in the order it came; NULL with no error when @deadline passed */
static JsonObject *
vmsup_jsonrpc_client_read_message(VmsupJsonrpcClient *self,
				  gint64 deadline,
				  gboolean cancellable,
				  GError **error)
{
	for (;;) {
		if (!g_queue_is_empty(&self->inbox))
			return g_queue_pop_head(&self->inbox);
		if (self->invalid != NULL) {
			g_propagate_error(error, g_steal_pointer(&self->invalid));
			vmsup_line_stream_set_paused(self->stream, FALSE);
			return NULL;
		}
		if (self->lost != NULL) {
			g_propagate_error(error, g_error_copy(self->lost));
			return NULL;
		}
		if (!vmsup_jsonrpc_client_wait(self, deadline, cancellable, error))
			return NULL;
	}
}

/* what an error.code from vmsupd stands for; to us a parse error is an invalid request */
static gint
vmsup_jsonrpc_client_code_from_wire(gint64 code)
{
	if ((code >= VMSUP_ERROR_NOT_FOUND && code < VMSUP_ERROR_LAST) ||
	    code == VMSUP_ERROR_INVALID_PARAMS || code == VMSUP_ERROR_METHOD_NOT_FOUND ||
	    code == VMSUP_ERROR_INVALID_REQUEST)
		return (gint)code;
	if (code == VMSUP_ERROR_PARSE)
		return VMSUP_ERROR_INVALID_REQUEST;
	return VMSUP_ERROR_INTERNAL;
}

/* the one conversion of an error object from vmsupd: its kind, else its code */
static void
vmsup_jsonrpc_client_set_remote_error(JsonObject *err, GError **error)
{
	gint64 code = vmsup_json_object_get_int(err, "code", VMSUP_ERROR_INTERNAL);
	const gchar *message = vmsup_json_object_get_string(err, "message", "");
	JsonNode *data = json_object_get_member(err, "data");
	const gchar *kind = NULL;
	gint vmsup_code;

	if (data != NULL && JSON_NODE_HOLDS_OBJECT(data))
		kind = vmsup_json_object_get_string(json_node_get_object(data), "kind", NULL);
	vmsup_code = vmsup_error_from_kind(kind);
	if (vmsup_code < 0)
		vmsup_code = vmsup_jsonrpc_client_code_from_wire(code);
	g_set_error_literal(error, VMSUP_ERROR, vmsup_code, message);
}

static gboolean
vmsup_jsonrpc_client_is_notification(JsonObject *msg)
{
	return !json_object_has_member(msg, "id") && json_object_has_member(msg, "method");
}

/* an error without an id concerns the connection itself: ours, as we ask one thing at a time */
static gboolean
vmsup_jsonrpc_client_take_refusal(VmsupJsonrpcClient *self, JsonObject *msg, GError **error)
{
	JsonNode *id_node = json_object_get_member(msg, "id");
	JsonNode *err = json_object_get_member(msg, "error");

	if (id_node == NULL || !JSON_NODE_HOLDS_NULL(id_node) || err == NULL ||
	    !JSON_NODE_HOLDS_OBJECT(err))
		return FALSE;
	self->refused = TRUE;
	vmsup_jsonrpc_client_set_remote_error(json_node_get_object(err), error);
	return TRUE;
}

JsonNode *
vmsup_jsonrpc_client_call(VmsupJsonrpcClient *self,
			  const gchar *method,
			  JsonObject *params,
			  GError **error)
{
	g_autoptr(JsonObject) request = json_object_new();
	gint64 id;

	g_return_val_if_fail(VMSUP_IS_JSONRPC_CLIENT(self), NULL);
	g_return_val_if_fail(method != NULL, NULL);
	g_return_val_if_fail(self->stream != NULL, NULL);

	id = ++self->next_id;
	json_object_set_string_member(request, "jsonrpc", "2.0");
	json_object_set_int_member(request, "id", id);
	json_object_set_string_member(request, "method", method);
	json_object_set_object_member(request,
				      "params",
				      params != NULL ? json_object_ref(params) : json_object_new());
	/*
	 * what cannot go out ends the connection, but only after what vmsupd
	 * sent before: a refusal, received before our request, says more than EPIPE
	 */
	vmsup_line_stream_send(self->stream, request);

	for (;;) {
		g_autoptr(JsonObject) msg =
		    vmsup_jsonrpc_client_read_message(self, -1, FALSE, error);
		JsonNode *id_node;
		JsonNode *err;
		JsonNode *result;

		if (msg == NULL)
			return NULL;
		if (vmsup_jsonrpc_client_is_notification(msg)) {
			g_queue_push_tail(&self->notifications, g_steal_pointer(&msg));
			continue;
		}
		if (vmsup_jsonrpc_client_take_refusal(self, msg, error))
			return NULL;
		id_node = json_object_get_member(msg, "id");
		err = json_object_get_member(msg, "error");
		if (id_node == NULL || !JSON_NODE_HOLDS_VALUE(id_node) ||
		    json_node_get_value_type(id_node) != G_TYPE_INT64 ||
		    json_node_get_int(id_node) != id)
			continue;
		if (err != NULL && JSON_NODE_HOLDS_OBJECT(err)) {
			vmsup_jsonrpc_client_set_remote_error(json_node_get_object(err), error);
			return NULL;
		}
		result = json_object_get_member(msg, "result");
		if (result == NULL) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_PROTOCOL,
				    _("vmsupd answered %s with neither a result nor an error"),
				    method);
			return NULL;
		}
		return json_node_copy(result);
	}
}

gint
vmsup_jsonrpc_client_call_fd(VmsupJsonrpcClient *self,
			     const gchar *method,
			     JsonObject *params,
			     JsonObject **out_result,
			     GError **error)
{
	g_autoptr(GUnixFDList) stale = NULL;
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(JsonObject) result = NULL;
	gint64 index;

	g_return_val_if_fail(VMSUP_IS_JSONRPC_CLIENT(self), -1);
	g_return_val_if_fail(self->stream != NULL, -1);

	/* only what comes with this answer counts */
	stale = vmsup_line_stream_steal_fds(self->stream);
	result = vmsup_jsonrpc_client_call_object(self, method, params, error);
	if (result == NULL)
		return -1;
	fds = vmsup_line_stream_steal_fds(self->stream);
	index = vmsup_json_object_get_int(result, "fd", -1);
	if (index < 0 || index >= g_unix_fd_list_get_length(fds)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_PROTOCOL,
			    _("vmsupd answered %s without passing a file descriptor; a connection "
			      "over SSH cannot carry one, so run this on the VM's host"),
			    method);
		return -1;
	}
	if (out_result != NULL)
		*out_result = g_steal_pointer(&result);
	return g_unix_fd_list_get(fds, (gint)index, error);
}

JsonObject *
vmsup_jsonrpc_client_call_object(VmsupJsonrpcClient *self,
				 const gchar *method,
				 JsonObject *params,
				 GError **error)
{
	g_autoptr(JsonNode) result = vmsup_jsonrpc_client_call(self, method, params, error);
	if (result == NULL)
		return NULL;
	if (!JSON_NODE_HOLDS_OBJECT(result)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_PROTOCOL,
			    _("vmsupd answered %s with %s instead of an object"),
			    method,
			    vmsup_json_node_type_name(result));
		return NULL;
	}
	return json_object_ref(json_node_get_object(result));
}

JsonObject *
vmsup_jsonrpc_client_next_notification(VmsupJsonrpcClient *self, gint timeout_ms, GError **error)
{
	gint64 deadline = timeout_ms < 0 ? -1 : g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	g_return_val_if_fail(VMSUP_IS_JSONRPC_CLIENT(self), NULL);
	g_return_val_if_fail(self->stream != NULL, NULL);

	if (!g_queue_is_empty(&self->notifications))
		return g_queue_pop_head(&self->notifications);
	for (;;) {
		g_autoptr(JsonObject) msg =
		    vmsup_jsonrpc_client_read_message(self, deadline, TRUE, error);
		if (msg == NULL)
			return NULL;
		if (vmsup_jsonrpc_client_is_notification(msg))
			return g_steal_pointer(&msg);
	}
}

gboolean
vmsup_jsonrpc_client_was_refused(VmsupJsonrpcClient *self)
{
	g_return_val_if_fail(VMSUP_IS_JSONRPC_CLIENT(self), FALSE);
	return self->refused;
}

void
vmsup_jsonrpc_client_cancel(VmsupJsonrpcClient *self)
{
	g_return_if_fail(VMSUP_IS_JSONRPC_CLIENT(self));
	self->cancelled = TRUE;
}

static void
vmsup_jsonrpc_client_finalize(GObject *object)
{
	VmsupJsonrpcClient *self = VMSUP_JSONRPC_CLIENT(object);

	if (self->stream != NULL) {
		g_signal_handlers_disconnect_by_data(self->stream, self);
		vmsup_line_stream_close(self->stream);
		g_object_unref(self->stream);
	}
	g_queue_clear_full(&self->inbox, (GDestroyNotify)json_object_unref);
	g_clear_error(&self->invalid);
	g_clear_error(&self->lost);
	g_queue_clear_full(&self->notifications, (GDestroyNotify)json_object_unref);
	G_OBJECT_CLASS(vmsup_jsonrpc_client_parent_class)->finalize(object);
}

static void
vmsup_jsonrpc_client_class_init(VmsupJsonrpcClientClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = vmsup_jsonrpc_client_finalize;
}

static void
vmsup_jsonrpc_client_init(VmsupJsonrpcClient *self)
{
	g_queue_init(&self->inbox);
	g_queue_init(&self->notifications);
}

VmsupJsonrpcClient *
vmsup_jsonrpc_client_new(void)
{
	return g_object_new(VMSUP_TYPE_JSONRPC_CLIENT, NULL);
}
