/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A hostile guest agent. The input after its first byte is the agent's
 * side, one reply line per request the client sends (the token @ID@ is the
 * id of the client's latest guest-sync-delimited, so the handshake can
 * succeed); when the lines run out the agent hangs up. The first byte picks
 * what the client asks: a plain command, a guest-exec with its status polls
 * (output decoded from base64), a guest file read in chunks whose text is
 * then parsed as /proc/net/tcp, or (no agent at all) the rest parsed as
 * /proc/net/tcp and tcp6 directly. Every request must end, exactly once,
 * with a result or an error, within the bound the client was given.
 */

#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmsup-guest-ports.h"
#include "vmsup-json.h"
#include "vmsup-qga-client.h"

/* what one request may cost: exec polls at 50 then 100 ms, so this allows a few */
#define FUZZ_TIMEOUT_MS 200

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
	gint fd;
	gchar **replies; /* owned */
	guint next;
	GString *request; /* owned: what the client sent, up to the next newline */
	gint64 sync_id;
	gboolean hung_up;
	guint n_done;
} Agent;

static void
agent_hang_up(Agent *agent)
{
	if (agent->hung_up)
		return;
	agent->hung_up = TRUE;
	shutdown(agent->fd, SHUT_RDWR);
}

static void
agent_answer(Agent *agent, const gchar *request)
{
	g_autoptr(GString) reply = NULL;
	const gchar *json = request;

	/* the sync request starts with a 0xFF the client sends to reset the agent's parser */
	while (*json == '\xff')
		json++;
	if (strstr(json, "guest-sync-delimited") != NULL) {
		g_autoptr(JsonNode) node = vmsup_json_parse(json, -1, NULL);
		if (node != NULL && JSON_NODE_HOLDS_OBJECT(node)) {
			JsonObject *args =
			    json_object_get_object_member(json_node_get_object(node), "arguments");
			if (args != NULL)
				agent->sync_id = vmsup_json_object_get_int(args, "id", 0);
		}
	}
	if (agent->replies[agent->next] == NULL) {
		agent_hang_up(agent);
		return;
	}
	reply = g_string_new(agent->replies[agent->next++]);
	{
		g_autofree gchar *id = g_strdup_printf("%" G_GINT64_FORMAT, agent->sync_id);
		g_string_replace(reply, "@ID@", id, 0);
	}
	g_string_append_c(reply, '\n');
	/* a socketpair buffer holds far more than one fuzz input */
	if (write(agent->fd, reply->str, reply->len) != (gssize)reply->len)
		agent_hang_up(agent);
}

static gboolean
agent_readable_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	Agent *agent = user_data;
	gchar buf[4096];
	gssize n = read(fd, buf, sizeof(buf));
	gchar *nl;

	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return G_SOURCE_CONTINUE;
		agent_hang_up(agent);
		return G_SOURCE_REMOVE;
	}
	g_string_append_len(agent->request, buf, n);
	while (!agent->hung_up && (nl = memchr(agent->request->str, '\n', agent->request->len))) {
		g_autofree gchar *line = g_strndup(agent->request->str, nl - agent->request->str);
		g_string_erase(agent->request, 0, nl - agent->request->str + 1);
		agent_answer(agent, line);
	}
	return agent->hung_up ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static void
execute_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Agent *agent = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret =
	    vmsup_qga_client_execute_finish(VMSUP_QGA_CLIENT(source), res, &error);

	g_assert_true((ret == NULL) != (error == NULL));
	agent->n_done++;
}

static void
exec_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Agent *agent = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) result =
	    vmsup_qga_client_exec_finish(VMSUP_QGA_CLIENT(source), res, &error);

	g_assert_true((result == NULL) != (error == NULL));
	if (result != NULL) {
		/* what reaches a JSON-RPC or D-Bus answer: valid UTF-8 text */
		const gchar *out = vmsup_json_object_get_string(result, "stdout", NULL);
		const gchar *err = vmsup_json_object_get_string(result, "stderr", NULL);
		g_assert_true(json_object_has_member(result, "exit_code"));
		g_assert_true(out == NULL || g_utf8_validate(out, -1, NULL));
		g_assert_true(err == NULL || g_utf8_validate(err, -1, NULL));
	}
	agent->n_done++;
}

static void
parse_ports(const gchar *tcp, const gchar *tcp6)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ports = vmsup_guest_ports_parse_all(tcp, tcp6, &error);

	g_assert_true((ports == NULL) != (error == NULL));
	for (guint i = 0; ports != NULL && i < ports->len; i++) {
		VmsupGuestListener *listener = g_ptr_array_index(ports, i);
		g_assert_nonnull(listener->address);
		/* merged: one per port, sorted */
		if (i > 0)
			g_assert_cmpuint(
			    ((VmsupGuestListener *)g_ptr_array_index(ports, i - 1))->port,
			    <,
			    listener->port);
	}
}

static void
read_file_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Agent *agent = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes =
	    vmsup_qga_client_read_file_finish(VMSUP_QGA_CLIENT(source), res, &error);

	g_assert_true((bytes == NULL) != (error == NULL));
	if (bytes != NULL) {
		gsize size = 0;
		const gchar *text = g_bytes_get_data(bytes, &size);
		g_autofree gchar *copy = g_strndup(text != NULL ? text : "", size);
		parse_ports(copy, NULL);
	}
	agent->n_done++;
}

static gboolean
fuzz_timeout_cb(gpointer user_data)
{
	g_error("a request to the agent did not end within its bound");
	return G_SOURCE_REMOVE;
}

static void
trap_to_abort(int signum)
{
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const gchar *const argv[] = {"/bin/cat", "/proc/net/tcp", NULL};
	static gboolean initialised;
	g_autofree gchar *text = NULL;
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GSocketConnection) connection = NULL;
	g_autoptr(VmsupQgaClient) client = NULL;
	g_autoptr(GError) error = NULL;
	Agent agent = {0};
	gint fds[2];
	guint watch;
	guint guard;

	if (size == 0)
		return 0;
	if (!initialised) {
		/* a fatal GLib message traps: turn it into the abort libFuzzer reports with its
		 * input */
		signal(SIGTRAP, trap_to_abort);
		g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialised = TRUE;
	}
	text = g_strndup((const gchar *)data + 1, size - 1);
	if (data[0] % 4 == 3) {
		/* the first NUL-free half as tcp, the rest as tcp6 */
		gsize half = strlen(text) / 2;
		g_autofree gchar *tcp = g_strndup(text, half);
		parse_ports(tcp, text + half);
		return 0;
	}

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
	g_assert_true(g_unix_set_fd_nonblocking(fds[1], TRUE, NULL));
	socket = g_socket_new_from_fd(fds[0], &error);
	g_assert_no_error(error);
	connection = g_socket_connection_factory_create_connection(socket);
	client = vmsup_qga_client_new_for_stream("fuzz", G_IO_STREAM(connection));

	agent.fd = fds[1];
	agent.replies = g_strsplit(text, "\n", 64);
	agent.request = g_string_new(NULL);
	watch = g_unix_fd_add(fds[1], G_IO_IN | G_IO_HUP | G_IO_ERR, agent_readable_cb, &agent);
	/* the client's own bounds end every request well before this */
	guard = g_timeout_add_seconds(30, fuzz_timeout_cb, NULL);

	switch (data[0] % 4) {
	case 0:
		vmsup_qga_client_execute_async(client,
					       "guest-ping",
					       NULL,
					       FUZZ_TIMEOUT_MS,
					       NULL,
					       execute_done_cb,
					       &agent);
		break;
	case 1:
		vmsup_qga_client_exec_async(client,
					    argv,
					    (data[0] & 4) ? "input" : NULL,
					    FUZZ_TIMEOUT_MS,
					    NULL,
					    exec_done_cb,
					    &agent);
		break;
	default:
		vmsup_qga_client_read_file_async(client,
						 "/proc/net/tcp",
						 FUZZ_TIMEOUT_MS,
						 NULL,
						 read_file_done_cb,
						 &agent);
		break;
	}
	while (agent.n_done == 0)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(agent.n_done, ==, 1);

	vmsup_qga_client_close(client);
	g_clear_object(&client);
	g_clear_object(&connection);
	if (!agent.hung_up)
		g_source_remove(watch);
	g_source_remove(guard);
	close(fds[1]);
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_cmpuint(agent.n_done, ==, 1);
	g_strfreev(agent.replies);
	g_string_free(agent.request, TRUE);
	return 0;
}
