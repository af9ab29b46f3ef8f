/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmsup over SSH: the system's ssh with `vmsup bridge` on the remote host,
 * its standard input and output one end of a socket pair, so that the
 * JSON-RPC client above sees a connection like the local socket (and a
 * write to a dead peer is EPIPE, never SIGPIPE). What ssh and the remote
 * side say on standard error is kept, bounded, for the message that says
 * which side failed.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-ssh-transport.h"

/* ssh ends its own and the remote's failures with this status */
#define VMSUP_SSH_TRANSPORT_EXIT_SSH 255
/* the remote shell's "command not found" and "cannot execute" */
#define VMSUP_SSH_TRANSPORT_EXIT_NOT_FOUND 127
#define VMSUP_SSH_TRANSPORT_EXIT_NOT_EXECUTABLE 126
/* the remote vmsup's usage error: a vmsup without the bridge */
#define VMSUP_SSH_TRANSPORT_EXIT_USAGE 2
/* what is kept of standard error: its last lines */
#define VMSUP_SSH_TRANSPORT_MAX_STDERR 4096
#define VMSUP_SSH_TRANSPORT_MAX_STDERR_LINES 8
/*
 * once the stream ended ssh exits at once; past these it is killed: a
 * message, or the end of the command, never waits on a stuck ssh for long
 */
#define VMSUP_SSH_TRANSPORT_EXPLAIN_WAIT_MS 5000
#define VMSUP_SSH_TRANSPORT_CLOSE_WAIT_MS 2000

struct _VmsupSshTransport {
	GObject parent_instance;
	GSubprocess *ssh;          /* owned */
	GIOStream *stream;         /* owned: our end of ssh's stdin and stdout */
	GCancellable *cancellable; /* owned: the reads of ssh's stderr */
	GByteArray *stderr_text;   /* owned: its last bytes */
	gboolean stderr_ended;
	gboolean exited;
	gboolean waiting; /* a wait for ssh's exit was started */
	gchar *remote;    /* owned: [USER@]HOST[:PORT] */
	gchar *login;     /* owned: the ssh command line without the remote command */
};

G_DEFINE_FINAL_TYPE(VmsupSshTransport, vmsup_ssh_transport, G_TYPE_OBJECT)

static void
vmsup_ssh_transport_read_stderr(VmsupSshTransport *self);

static void
vmsup_ssh_transport_stderr_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes =
	    g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &error);
	VmsupSshTransport *self;

	/* cancelled only from dispose: @user_data may be gone */
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	self = user_data;
	if (bytes == NULL || g_bytes_get_size(bytes) == 0) {
		self->stderr_ended = TRUE;
		return;
	}
	g_byte_array_append(self->stderr_text,
			    g_bytes_get_data(bytes, NULL),
			    (guint)g_bytes_get_size(bytes));
	if (self->stderr_text->len > VMSUP_SSH_TRANSPORT_MAX_STDERR)
		g_byte_array_remove_range(self->stderr_text,
					  0,
					  self->stderr_text->len - VMSUP_SSH_TRANSPORT_MAX_STDERR);
	vmsup_ssh_transport_read_stderr(self);
}

static void
vmsup_ssh_transport_read_stderr(VmsupSshTransport *self)
{
	g_input_stream_read_bytes_async(g_subprocess_get_stderr_pipe(self->ssh),
					VMSUP_SSH_TRANSPORT_MAX_STDERR,
					G_PRIORITY_DEFAULT,
					self->cancellable,
					vmsup_ssh_transport_stderr_cb,
					self);
}

/*
 * In ssh: a Ctrl-C on the terminal is the CLI's to handle (it cancels a
 * wait, then tells vmsupd); ssh keeps a SIGINT it inherits ignored
 */
static void
vmsup_ssh_transport_child_setup(gpointer user_data)
{
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_DFL);
}

static gchar *
vmsup_ssh_transport_remote_command(const VmsupRemoteUri *uri, gboolean system)
{
	GString *command = g_string_new("vmsup bridge");

	if (system)
		g_string_append(command, " --system");
	if (uri->socket != NULL) {
		g_autofree gchar *quoted = g_shell_quote(uri->socket);
		g_string_append_printf(command, " --socket %s", quoted);
	}
	return g_string_free(command, FALSE);
}

/* ssh's arguments up to the destination: the same for the transport and for a hint */
static GPtrArray *
vmsup_ssh_transport_login_argv(const VmsupRemoteUri *uri, gboolean batch)
{
	GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);

	g_ptr_array_add(argv, g_strdup("ssh"));
	if (batch) {
		g_ptr_array_add(argv, g_strdup("-o"));
		g_ptr_array_add(argv, g_strdup("BatchMode=yes"));
	}
	if (uri->port > 0) {
		g_ptr_array_add(argv, g_strdup("-p"));
		g_ptr_array_add(argv, g_strdup_printf("%d", uri->port));
	}
	if (uri->user != NULL) {
		g_ptr_array_add(argv, g_strdup("-l"));
		g_ptr_array_add(argv, g_strdup(uri->user));
	}
	return argv;
}

static gchar *
vmsup_ssh_transport_format_remote(const VmsupRemoteUri *uri)
{
	GString *out = g_string_new(NULL);

	if (uri->user != NULL)
		g_string_append_printf(out, "%s@", uri->user);
	if (strchr(uri->host, ':') != NULL)
		g_string_append_printf(out, "[%s]", uri->host);
	else
		g_string_append(out, uri->host);
	if (uri->port > 0)
		g_string_append_printf(out, ":%d", uri->port);
	return g_string_free(out, FALSE);
}

gchar *
vmsup_ssh_quote_command(const gchar *const *argv)
{
	GString *line = g_string_new(NULL);

	for (guint i = 0; argv[i] != NULL; i++) {
		g_autofree gchar *quoted = g_shell_quote(argv[i]);
		if (i > 0)
			g_string_append_c(line, ' ');
		g_string_append(line, quoted);
	}
	return g_string_free(line, FALSE);
}

gint
vmsup_ssh_transport_exec(const VmsupRemoteUri *uri, const gchar *const *command, GError **error)
{
	g_autoptr(GPtrArray) argv = vmsup_ssh_transport_login_argv(uri, !isatty(STDIN_FILENO));
	gint errsv;

	g_return_val_if_fail(uri != NULL && uri->host != NULL, -1);
	g_return_val_if_fail(command != NULL && command[0] != NULL, -1);

	g_ptr_array_add(argv, g_strdup(isatty(STDIN_FILENO) ? "-t" : "-T"));
	g_ptr_array_add(argv, g_strdup("-x"));
	g_ptr_array_add(argv, g_strdup("-a"));
	g_ptr_array_add(argv, g_strdup("--"));
	g_ptr_array_add(argv, g_strdup(uri->host));
	g_ptr_array_add(argv, vmsup_ssh_quote_command(command));
	g_ptr_array_add(argv, NULL);
	fflush(stdout);
	fflush(stderr);
	execvp("ssh", (gchar **)argv->pdata);
	errsv = errno;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_CONNECT,
		    _("Cannot run ssh: %s; install OpenSSH's client (openssh-client)"),
		    g_strerror(errsv));
	return -1;
}

VmsupSshTransport *
vmsup_ssh_transport_new(const VmsupRemoteUri *uri, gboolean system, GError **error)
{
	g_autoptr(VmsupSshTransport) self = g_object_new(VMSUP_TYPE_SSH_TRANSPORT, NULL);
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GPtrArray) argv = vmsup_ssh_transport_login_argv(uri, !isatty(STDIN_FILENO));
	g_autoptr(GPtrArray) login = vmsup_ssh_transport_login_argv(uri, FALSE);
	g_autoptr(GError) local_error = NULL;
	g_autoptr(GSocket) socket = NULL;
	gint fds[2];

	g_return_val_if_fail(uri != NULL && uri->host != NULL, NULL);

	self->remote = vmsup_ssh_transport_format_remote(uri);
	g_ptr_array_add(login, g_strdup(uri->host));
	g_ptr_array_add(login, NULL);
	self->login = g_strjoinv(" ", (gchar **)login->pdata);

	/* no terminal (the stream is one), no forwardings: ssh is a pipe to the bridge */
	g_ptr_array_add(argv, g_strdup("-T"));
	g_ptr_array_add(argv, g_strdup("-x"));
	g_ptr_array_add(argv, g_strdup("-a"));
	g_ptr_array_add(argv, g_strdup("-o"));
	g_ptr_array_add(argv, g_strdup("ClearAllForwardings=yes"));
	g_ptr_array_add(argv, g_strdup("--"));
	g_ptr_array_add(argv, g_strdup(uri->host));
	g_ptr_array_add(argv, vmsup_ssh_transport_remote_command(uri, system));
	g_ptr_array_add(argv, NULL);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
		gint errsv = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_CONNECT,
			    _("Cannot make a socket pair for ssh: %s"),
			    g_strerror(errsv));
		return NULL;
	}
	socket = g_socket_new_from_fd(fds[0], &local_error);
	if (socket == NULL) {
		close(fds[0]);
		close(fds[1]);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_CONNECT,
			    _("Cannot make a socket pair for ssh: %s"),
			    local_error->message);
		return NULL;
	}
	self->stream = G_IO_STREAM(g_socket_connection_factory_create_connection(socket));
	/* the launcher takes both; ssh's stdin and stdout are the one socket */
	g_subprocess_launcher_take_stdout_fd(launcher, dup(fds[1]));
	g_subprocess_launcher_take_stdin_fd(launcher, fds[1]);
	g_subprocess_launcher_set_child_setup(launcher,
					      vmsup_ssh_transport_child_setup,
					      NULL,
					      NULL);
	g_debug("running %s", self->login);
	self->ssh =
	    g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &local_error);
	if (self->ssh == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_CONNECT,
			    _("Cannot run ssh: %s; install OpenSSH's client (openssh-client)"),
			    local_error->message);
		return NULL;
	}
	self->cancellable = g_cancellable_new();
	vmsup_ssh_transport_read_stderr(self);
	return g_steal_pointer(&self);
}

GIOStream *
vmsup_ssh_transport_get_stream(VmsupSshTransport *self)
{
	g_return_val_if_fail(VMSUP_IS_SSH_TRANSPORT(self), NULL);
	return self->stream;
}

const gchar *
vmsup_ssh_transport_get_remote(VmsupSshTransport *self)
{
	g_return_val_if_fail(VMSUP_IS_SSH_TRANSPORT(self), NULL);
	return self->remote;
}

gchar *
vmsup_ssh_transport_describe_login(VmsupSshTransport *self)
{
	g_return_val_if_fail(VMSUP_IS_SSH_TRANSPORT(self), NULL);
	return g_strdup(self->login);
}

static void
vmsup_ssh_transport_exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupSshTransport *self = user_data;

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	self->exited = TRUE;
}

static gboolean
vmsup_ssh_transport_timeout_cb(gpointer user_data)
{
	gboolean *timed_out = user_data;
	*timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

/* iterates the thread-default context until ssh exited and its stderr ended, killing it after @ms
 */
static void
vmsup_ssh_transport_wait_exit(VmsupSshTransport *self, guint ms)
{
	GMainContext *context = g_main_context_ref_thread_default();
	g_autoptr(GSource) timeout = g_timeout_source_new(ms);
	gboolean timed_out = FALSE;

	if (!self->waiting) {
		self->waiting = TRUE;
		/* no reference: the loop below always runs until the callback did */
		g_subprocess_wait_async(self->ssh, NULL, vmsup_ssh_transport_exited_cb, self);
	}
	g_source_set_callback(timeout, vmsup_ssh_transport_timeout_cb, &timed_out, NULL);
	g_source_attach(timeout, context);
	while (!(self->exited && self->stderr_ended)) {
		if (timed_out && !self->exited) {
			g_debug("ssh did not exit within %u ms, killing it", ms);
			g_subprocess_force_exit(self->ssh);
			timed_out = FALSE;
		} else if (timed_out) {
			/* something ssh started still holds its stderr */
			break;
		}
		g_main_context_iteration(context, TRUE);
	}
	g_source_destroy(timeout);
	g_main_context_unref(context);
}

gchar **
vmsup_ssh_transport_get_stderr_lines(VmsupSshTransport *self)
{
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func(g_free);
	guint n;
	guint first;

	g_return_val_if_fail(VMSUP_IS_SSH_TRANSPORT(self), NULL);

	text = g_utf8_make_valid((const gchar *)self->stderr_text->data, self->stderr_text->len);
	lines = g_strsplit_set(text, "\r\n", -1);
	n = g_strv_length(lines);
	for (guint i = 0; i < n; i++)
		g_strstrip(lines[i]);
	/* the last lines that say something */
	first = n;
	for (guint kept_n = 0; first > 0 && kept_n < VMSUP_SSH_TRANSPORT_MAX_STDERR_LINES;) {
		first--;
		if (lines[first][0] != '\0')
			kept_n++;
	}
	for (guint i = first; i < n; i++) {
		if (lines[i][0] != '\0')
			g_ptr_array_add(kept, g_strdup(lines[i]));
	}
	if (kept->len == 0)
		return NULL;
	g_ptr_array_add(kept, NULL);
	return (gchar **)g_ptr_array_free(g_steal_pointer(&kept), FALSE);
}

GError *
vmsup_ssh_transport_explain(VmsupSshTransport *self)
{
	gint status;

	g_return_val_if_fail(VMSUP_IS_SSH_TRANSPORT(self), NULL);

	vmsup_ssh_transport_wait_exit(self, VMSUP_SSH_TRANSPORT_EXPLAIN_WAIT_MS);
	if (!g_subprocess_get_if_exited(self->ssh))
		return g_error_new(VMSUP_ERROR,
				   VMSUP_ERROR_CONNECT,
				   _("the connection ended and ssh was killed by signal %d"),
				   g_subprocess_get_term_sig(self->ssh));
	status = g_subprocess_get_exit_status(self->ssh);
	switch (status) {
	case VMSUP_SSH_TRANSPORT_EXIT_SSH:
		/* TRANSLATORS: %s is an ssh command line to try */
		return g_error_new(VMSUP_ERROR,
				   VMSUP_ERROR_CONNECT,
				   _("ssh could not connect, log in, or keep the connection (its "
				     "message is below); '%s true' must work without a question"),
				   self->login);
	case VMSUP_SSH_TRANSPORT_EXIT_NOT_FOUND:
	case VMSUP_SSH_TRANSPORT_EXIT_NOT_EXECUTABLE:
		return g_error_new(VMSUP_ERROR,
				   VMSUP_ERROR_CONNECT,
				   _("no vmsup command there (the remote shell exited with %d); "
				     "install vmsup on that host, in the PATH of SSH commands"),
				   status);
	case VMSUP_SSH_TRANSPORT_EXIT_USAGE:
		return g_error_new_literal(
		    VMSUP_ERROR,
		    VMSUP_ERROR_CONNECT,
		    _("the vmsup there has no 'vmsup bridge' (its message is "
		      "below); install this version of vmsup on that host"));
	case VMSUP_SSH_TRANSPORT_EXIT_NO_DAEMON:
		return g_error_new_literal(
		    VMSUP_ERROR,
		    VMSUP_ERROR_CONNECT,
		    _("vmsupd does not answer there (the message from there is "
		      "below); start it on that host"));
	default:
		return g_error_new(VMSUP_ERROR,
				   VMSUP_ERROR_CONNECT,
				   _("the connection ended (ssh exited with %d)"),
				   status);
	}
}

static void
vmsup_ssh_transport_dispose(GObject *object)
{
	VmsupSshTransport *self = VMSUP_SSH_TRANSPORT(object);

	/* the end of ssh's input ends the bridge, which ends ssh */
	if (self->stream != NULL)
		g_io_stream_close(self->stream, NULL, NULL);
	if (self->ssh != NULL && !self->exited)
		vmsup_ssh_transport_wait_exit(self, VMSUP_SSH_TRANSPORT_CLOSE_WAIT_MS);
	if (self->cancellable != NULL)
		g_cancellable_cancel(self->cancellable);
	g_clear_object(&self->stream);
	G_OBJECT_CLASS(vmsup_ssh_transport_parent_class)->dispose(object);
}

static void
vmsup_ssh_transport_finalize(GObject *object)
{
	VmsupSshTransport *self = VMSUP_SSH_TRANSPORT(object);

	g_clear_object(&self->ssh);
	g_clear_object(&self->cancellable);
	g_byte_array_unref(self->stderr_text);
	g_free(self->remote);
	g_free(self->login);
	G_OBJECT_CLASS(vmsup_ssh_transport_parent_class)->finalize(object);
}

static void
vmsup_ssh_transport_class_init(VmsupSshTransportClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = vmsup_ssh_transport_dispose;
	object_class->finalize = vmsup_ssh_transport_finalize;
}

static void
vmsup_ssh_transport_init(VmsupSshTransport *self)
{
	self->stderr_text = g_byte_array_new();
}
