/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Newline-framed JSON over a GIOStream, for every peer vmsup talks to:
 * bounded line reads, ordered writes that go out at once (a pollable source
 * waits only while the peer's socket is full), back-pressure both ways, the
 * guest agent's 0xFF resync.
 */

#include "config.h"

#include <errno.h>
#include <gio/gunixfdmessage.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string.h>

#include "vmsup-json.h"
#include "vmsup-line-stream.h"

#define VMSUP_LINE_STREAM_SENTINEL 0xFF
/* reads per dispatch at most; a peer that never pauses cannot hold the main loop */
#define VMSUP_LINE_STREAM_READS_PER_DISPATCH 4
#define VMSUP_LINE_STREAM_READ_CHUNK 16384
/* descriptors taken from one read */
#define VMSUP_LINE_STREAM_MAX_FDS 16
/* lines handed to one writev() */
#define VMSUP_LINE_STREAM_MAX_VECTORS 64

struct _VmsupLineStream {
	GObject parent_instance;
	GIOStream *stream;     /* owned */
	GInputStream *input;   /* unowned: the stream's, pollable */
	GOutputStream *output; /* unowned: the stream's, pollable */
	GSource *read_source;  /* owned: attached while reading is wanted */
	GSource *write_source; /* owned: attached while the peer's socket is full */
	GSource *fail_source;  /* owned: the end after a failed write, one iteration later */
	GByteArray *inbuf;     /* owned: bytes read and not delivered yet */
	gboolean reading;      /* delivering lines: a nested dispatch does nothing, writes wait */
	gchar *label;          /* owned */
	VmsupLineStreamFlags flags;
	VmsupJsonCheckFlags json_flags;
	gsize max_line;
	gsize high_water;
	gsize max_queue;
	GCancellable *cancellable; /* owned */
	GQueue write_queue;        /* of GBytes, owned */
	GQueue fd_queue;           /* of VmsupLineStreamFds, owned, in the order of their lines */
	GUnixFDList *fds_in;       /* owned: descriptors received, not yet taken */
	gsize write_offset;        /* into the queue's head */
	gsize queued;              /* unsent bytes in the queue */
	GError *write_error;       /* owned: the write that failed, until the end it causes */
	gboolean started;
	gboolean discarding;
	gboolean paused;
	gboolean eof;         /* the peer ended its side; what was read is still delivered */
	gboolean input_ended; /* nothing more is read or delivered */
	gboolean flushing;    /* closes once the queue is empty */
	gboolean got_eof;
	gboolean closed;
};

G_DEFINE_FINAL_TYPE(VmsupLineStream, vmsup_line_stream, G_TYPE_OBJECT)

/* descriptors that go out with the first byte of a queued line (SCM_RIGHTS) */
typedef struct {
	GBytes *line;     /* unowned: the queue's entry, known by its address */
	GUnixFDList *fds; /* owned */
} VmsupLineStreamFds;

static void
vmsup_line_stream_fds_free(gpointer data)
{
	VmsupLineStreamFds *entry = data;
	g_object_unref(entry->fds);
	g_free(entry);
}

enum { SIGNAL_MESSAGE, SIGNAL_INVALID, SIGNAL_LINE, SIGNAL_INPUT_ENDED, SIGNAL_CLOSED, N_SIGNALS };
static guint signals[N_SIGNALS] = {0};

static void
vmsup_line_stream_process_buffer(VmsupLineStream *self);
static void
vmsup_line_stream_flush(VmsupLineStream *self);

static void
vmsup_line_stream_clear_source(GSource **source)
{
	if (*source == NULL)
		return;
	g_source_destroy(*source);
	g_clear_pointer(source, g_source_unref);
}

static void
vmsup_line_stream_clear_queue(VmsupLineStream *self)
{
	g_queue_clear_full(&self->write_queue, (GDestroyNotify)g_bytes_unref);
	g_queue_clear_full(&self->fd_queue, vmsup_line_stream_fds_free);
	self->write_offset = 0;
	self->queued = 0;
}

static void
vmsup_line_stream_shutdown(VmsupLineStream *self)
{
	self->closed = TRUE;
	self->input_ended = TRUE;
	g_cancellable_cancel(self->cancellable);
	vmsup_line_stream_clear_source(&self->read_source);
	vmsup_line_stream_clear_source(&self->write_source);
	vmsup_line_stream_clear_source(&self->fail_source);
	vmsup_line_stream_clear_queue(self);
	g_byte_array_set_size(self->inbuf, 0);
	if (self->stream != NULL)
		g_io_stream_close(self->stream, NULL, NULL);
}

static void
vmsup_line_stream_end(VmsupLineStream *self, const GError *error)
{
	if (self->closed)
		return;
	if (error != NULL)
		g_debug("%s: connection closed: %s", self->label, error->message);
	else
		g_debug("%s: connection closed", self->label);
	vmsup_line_stream_shutdown(self);
	g_object_ref(self);
	g_signal_emit(self, signals[SIGNAL_CLOSED], 0, error);
	g_object_unref(self);
}

static void
vmsup_line_stream_end_with(VmsupLineStream *self, gint code, const gchar *format, ...)
    G_GNUC_PRINTF(3, 4);

static void
vmsup_line_stream_end_with(VmsupLineStream *self, gint code, const gchar *format, ...)
{
	g_autoptr(GError) error = NULL;
	va_list args;

	va_start(args, format);
	error = g_error_new_valist(VMSUP_ERROR, code, format, args);
	va_end(args);
	vmsup_line_stream_end(self, error);
}

/* reading is over for good: a half-closing owner is told and closes itself, others close now */
static void
vmsup_line_stream_end_input(VmsupLineStream *self, GError *error)
{
	g_autoptr(GError) owned = error;

	if (!(self->flags & VMSUP_LINE_STREAM_HALF_CLOSE)) {
		vmsup_line_stream_end(self, owned);
		return;
	}
	self->input_ended = TRUE;
	vmsup_line_stream_clear_source(&self->read_source);
	g_byte_array_set_size(self->inbuf, 0);
	g_signal_emit(self, signals[SIGNAL_INPUT_ENDED], 0, owned);
}

static void
vmsup_line_stream_too_long(VmsupLineStream *self)
{
	vmsup_line_stream_end_input(self,
				    g_error_new(VMSUP_ERROR,
						VMSUP_ERROR_PROTOCOL,
						"message longer than %" G_GSIZE_FORMAT " bytes",
						self->max_line));
}

static void
vmsup_line_stream_log_line(VmsupLineStream *self,
			   const gchar *direction,
			   const gchar *line,
			   gssize length)
{
	g_autofree gchar *valid = NULL;

	if (g_log_writer_default_would_drop(G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN))
		return;
	valid = g_utf8_make_valid(line, length);
	g_debug("%s %s %s", self->label, direction, valid);
}

static gboolean
vmsup_line_stream_is_blank(const gchar *line, gsize length)
{
	for (gsize i = 0; i < length; i++) {
		if (!g_ascii_isspace(line[i]))
			return FALSE;
	}
	return TRUE;
}

static void
vmsup_line_stream_handle_line(VmsupLineStream *self, gchar *line, gsize length)
{
	g_autoptr(JsonObject) message = NULL;
	g_autoptr(GError) error_local = NULL;

	if ((self->flags & VMSUP_LINE_STREAM_CRLF) && length > 0 && line[length - 1] == '\r')
		line[--length] = '\0';
	if (length > self->max_line) {
		vmsup_line_stream_too_long(self);
		return;
	}
	if (vmsup_line_stream_is_blank(line, length))
		return;
	vmsup_line_stream_log_line(self, "<-", line, length);
	if (self->flags & VMSUP_LINE_STREAM_RAW) {
		g_autoptr(GBytes) bytes = g_bytes_new_static(line, length);
		g_signal_emit(self, signals[SIGNAL_LINE], 0, bytes);
		return;
	}
	/* QEMU prints uint64 values beyond int64: QMP and the agent allow them (json_flags);
	 * NULs in strings, hex and the like are refused, never cut short */
	message = vmsup_json_parse_object_full(line, length, self->json_flags, &error_local);
	if (message == NULL) {
		g_autoptr(GError) error = g_error_new(VMSUP_ERROR,
						      VMSUP_ERROR_PROTOCOL,
						      "invalid message: %s",
						      error_local->message);
		g_signal_emit(self, signals[SIGNAL_INVALID], 0, error);
		return;
	}
	g_signal_emit(self, signals[SIGNAL_MESSAGE], 0, message);
}

static gboolean
vmsup_line_stream_can_deliver(VmsupLineStream *self)
{
	return !self->closed && !self->input_ended && !self->paused && !self->flushing &&
	       self->queued < self->high_water;
}

/* the input ended: what is left is a last line, or garbage */
static void
vmsup_line_stream_handle_eof(VmsupLineStream *self)
{
	const gchar *rest = (const gchar *)self->inbuf->data;
	gsize length = self->inbuf->len;

	self->got_eof = TRUE;
	if (self->discarding || vmsup_line_stream_is_blank(rest, length)) {
		g_byte_array_set_size(self->inbuf, 0);
	} else if (self->flags & VMSUP_LINE_STREAM_HALF_CLOSE) {
		g_autofree gchar *line = g_strndup(rest, length);
		g_byte_array_set_size(self->inbuf, 0);
		vmsup_line_stream_handle_line(self, line, length);
		if (self->input_ended || self->closed)
			return;
	} else {
		vmsup_line_stream_end_with(self,
					   VMSUP_ERROR_CLOSED,
					   "connection closed in the middle of a message");
		return;
	}
	vmsup_line_stream_end_input(self, NULL);
}

/* delivers every complete line in the buffer, then the end of the input if it came */
static void
vmsup_line_stream_process_buffer(VmsupLineStream *self)
{
	/* room for max_line, a '\r' if it is not part of the line, and the '\n' */
	gsize longest = self->max_line + ((self->flags & VMSUP_LINE_STREAM_CRLF) ? 2 : 1);
	gsize consumed = 0;

	while (vmsup_line_stream_can_deliver(self) && consumed < self->inbuf->len) {
		const guint8 *buf = self->inbuf->data + consumed;
		gsize avail = self->inbuf->len - consumed;
		const guint8 *end;
		g_autofree gchar *line = NULL;
		gsize length;

		if (self->discarding) {
			end = memchr(buf, VMSUP_LINE_STREAM_SENTINEL, avail);
			if (end == NULL) {
				consumed += avail;
				break;
			}
			consumed += end - buf + 1;
			self->discarding = FALSE;
			continue;
		}
		end = memchr(buf, '\n', avail);
		if (end == NULL) {
			if (avail >= longest)
				vmsup_line_stream_too_long(self);
			break;
		}
		length = end - buf;
		line = g_malloc(length + 1);
		memcpy(line, buf, length);
		line[length] = '\0';
		consumed += length + 1;
		vmsup_line_stream_handle_line(self, line, length);
	}
	if (self->closed || self->input_ended) {
		g_byte_array_set_size(self->inbuf, 0);
		return;
	}
	if (consumed > 0)
		g_byte_array_remove_range(self->inbuf, 0, consumed);
	/* after a failed write, the write's error is what ends the stream */
	if (self->eof && self->write_error == NULL && vmsup_line_stream_can_deliver(self) &&
	    memchr(self->inbuf->data, '\n', self->inbuf->len) == NULL)
		vmsup_line_stream_handle_eof(self);
}

/* delivers what waits in the buffer; writes made meanwhile go out together afterwards */
static void
vmsup_line_stream_deliver(VmsupLineStream *self)
{
	g_autoptr(VmsupLineStream) keep = NULL;

	if (self->reading)
		return;
	keep = g_object_ref(self);
	self->reading = TRUE;
	vmsup_line_stream_process_buffer(self);
	self->reading = FALSE;
	vmsup_line_stream_flush(self);
}

static gboolean
vmsup_line_stream_wants_input(VmsupLineStream *self)
{
	return self->started && !self->eof && vmsup_line_stream_can_deliver(self);
}

/* a read that keeps the descriptors sent with the bytes (SCM_RIGHTS) for the owner */
static gssize
vmsup_line_stream_recv_with_fds(VmsupLineStream *self, guint8 *buf, gsize size, GError **error)
{
	union {
		struct cmsghdr align;
		gchar buf[CMSG_SPACE(sizeof(gint) * VMSUP_LINE_STREAM_MAX_FDS)];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr msg = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = control.buf,
	    .msg_controllen = sizeof(control.buf),
	};
	GSocket *socket;
	gssize n;

	if (!G_IS_SOCKET_CONNECTION(self->stream)) {
		g_set_error_literal(error,
				    G_IO_ERROR,
				    G_IO_ERROR_NOT_SUPPORTED,
				    "descriptors cannot pass on this connection");
		return -1;
	}
	socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(self->stream));
	do
		n = recvmsg(g_socket_get_fd(socket), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		gint saved = errno;
		g_set_error_literal(error,
				    G_IO_ERROR,
				    g_io_error_from_errno(saved),
				    g_strerror(saved));
		return -1;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		gsize n_fds;
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n_fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(gint);
		for (gsize i = 0; i < n_fds; i++) {
			gint fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(gint), sizeof(gint));
			if (g_unix_fd_list_append(self->fds_in, fd, NULL) < 0)
				g_warning("%s: a received descriptor could not be kept",
					  self->label);
			close(fd);
		}
	}
	return n;
}

/*
 * Up to @max_reads reads, or (@drain) until the peer has nothing more now;
 * FALSE once nothing more can come (end of input, error)
 */
static gboolean
vmsup_line_stream_read_some(VmsupLineStream *self, guint max_reads, gboolean drain)
{
	for (guint i = 0; (drain || i < max_reads) && vmsup_line_stream_wants_input(self); i++) {
		g_autoptr(GError) error = NULL;
		gsize old_len = self->inbuf->len;
		gssize n;

		g_byte_array_set_size(self->inbuf, old_len + VMSUP_LINE_STREAM_READ_CHUNK);
		if (self->flags & VMSUP_LINE_STREAM_RECEIVE_FDS)
			n = vmsup_line_stream_recv_with_fds(self,
							    self->inbuf->data + old_len,
							    VMSUP_LINE_STREAM_READ_CHUNK,
							    &error);
		else
			n = g_pollable_input_stream_read_nonblocking(
			    G_POLLABLE_INPUT_STREAM(self->input),
			    self->inbuf->data + old_len,
			    VMSUP_LINE_STREAM_READ_CHUNK,
			    NULL,
			    &error);
		g_byte_array_set_size(self->inbuf, old_len + MAX(n, 0));
		if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			return TRUE;
		if (n < 0) {
			vmsup_line_stream_end_with(self, VMSUP_ERROR_CLOSED, "%s", error->message);
			return FALSE;
		}
		if (n == 0) {
			self->eof = TRUE;
			vmsup_line_stream_clear_source(&self->read_source);
		}
		vmsup_line_stream_process_buffer(self);
		if (self->eof)
			return FALSE;
		/* less than asked for: nothing more yet, and asking again costs an EAGAIN */
		if (!drain && (gsize)n < VMSUP_LINE_STREAM_READ_CHUNK)
			return TRUE;
	}
	return TRUE;
}

static void
vmsup_line_stream_update_reader(VmsupLineStream *self);

/*
 * The one read source stays attached while reading is wanted: reading costs
 * no source set-up per message, and a dispatch reads what is there.
 */
static void
vmsup_line_stream_on_readable(VmsupLineStream *self)
{
	g_autoptr(VmsupLineStream) keep = NULL;

	if (self->reading || self->closed)
		return;
	keep = g_object_ref(self);
	self->reading = TRUE;
	vmsup_line_stream_read_some(self, VMSUP_LINE_STREAM_READS_PER_DISPATCH, FALSE);
	self->reading = FALSE;
	vmsup_line_stream_flush(self);
	vmsup_line_stream_update_reader(self);
}

static void
vmsup_line_stream_on_writable(VmsupLineStream *self);

/* the source that fired says what to do: a socket's and a stream's differ only in arguments */
static gboolean
vmsup_line_stream_dispatch(VmsupLineStream *self)
{
	if (g_main_current_source() == self->read_source)
		vmsup_line_stream_on_readable(self);
	else
		vmsup_line_stream_on_writable(self);
	return G_SOURCE_CONTINUE;
}

static gboolean
vmsup_line_stream_socket_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
	return vmsup_line_stream_dispatch(user_data);
}

static gboolean
vmsup_line_stream_pollable_cb(GObject *pollable, gpointer user_data)
{
	return vmsup_line_stream_dispatch(user_data);
}

/*
 * A source for @condition, living no longer than the stream (it holds no
 * reference). On a socket, the socket's own: a stream's pollable source
 * wraps one like it in a second source, and every request would pay for
 * dispatching both.
 */
static GSource *
vmsup_line_stream_watch(VmsupLineStream *self, GIOCondition condition)
{
	GSource *source;

	if (G_IS_SOCKET_CONNECTION(self->stream)) {
		GSocket *socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(self->stream));
		source = g_socket_create_source(socket, condition, NULL);
		g_source_set_callback(source,
				      G_SOURCE_FUNC(vmsup_line_stream_socket_cb),
				      self,
				      NULL);
	} else {
		source = condition == G_IO_IN ? g_pollable_input_stream_create_source(
						    G_POLLABLE_INPUT_STREAM(self->input),
						    NULL)
					      : g_pollable_output_stream_create_source(
						    G_POLLABLE_OUTPUT_STREAM(self->output),
						    NULL);
		g_source_set_callback(source,
				      G_SOURCE_FUNC(vmsup_line_stream_pollable_cb),
				      self,
				      NULL);
	}
	/* else GLib takes the fd out of the poll set around each dispatch, waking itself twice */
	g_source_set_can_recurse(source, TRUE);
	g_source_attach(source, g_main_context_get_thread_default());
	return source;
}

static void
vmsup_line_stream_update_reader(VmsupLineStream *self)
{
	if (!vmsup_line_stream_wants_input(self)) {
		vmsup_line_stream_clear_source(&self->read_source);
		return;
	}
	if (self->read_source != NULL)
		return;
	self->read_source = vmsup_line_stream_watch(self, G_IO_IN);
}

/* writing */

static gboolean
vmsup_line_stream_fail_cb(gpointer user_data)
{
	VmsupLineStream *self = user_data;
	g_autoptr(VmsupLineStream) keep = NULL;
	g_autoptr(GError) error = g_steal_pointer(&self->write_error);

	keep = g_object_ref(self);
	g_clear_pointer(&self->fail_source, g_source_unref);
	vmsup_line_stream_end_with(self, VMSUP_ERROR_CLOSED, "%s", error->message);
	return G_SOURCE_REMOVE;
}

/*
 * A failed write ends the stream one dispatch later, after the read source
 * attached before it (same priority, earlier in the list) delivered what the
 * peer sent before: a peer that refused us and went is heard, not just a
 * broken pipe
 */
static void
vmsup_line_stream_write_failed(VmsupLineStream *self, GError *error)
{
	vmsup_line_stream_clear_queue(self);
	vmsup_line_stream_clear_source(&self->write_source);
	self->write_error = error;
	self->fail_source = g_idle_source_new();
	g_source_set_priority(self->fail_source, G_PRIORITY_DEFAULT);
	g_source_set_callback(self->fail_source, vmsup_line_stream_fail_cb, self, NULL);
	g_source_attach(self->fail_source, g_main_context_get_thread_default());
}

/* @sent bytes of the queue are out */
static void
vmsup_line_stream_consume(VmsupLineStream *self, gsize sent)
{
	self->queued -= sent;
	while (sent > 0) {
		GBytes *head = g_queue_peek_head(&self->write_queue);
		gsize left = g_bytes_get_size(head) - self->write_offset;
		if (sent < left) {
			self->write_offset += sent;
			return;
		}
		sent -= left;
		self->write_offset = 0;
		g_bytes_unref(g_queue_pop_head(&self->write_queue));
	}
}

static void
vmsup_line_stream_on_writable(VmsupLineStream *self)
{
	g_autoptr(VmsupLineStream) keep = NULL;
	gsize before = self->queued;

	keep = g_object_ref(self);
	vmsup_line_stream_flush(self);
	/* room in the queue lets reading resume */
	if (!self->closed && before >= self->high_water && self->queued < self->high_water) {
		vmsup_line_stream_deliver(self);
		vmsup_line_stream_update_reader(self);
	}
}

/*
 * Sends the head of the queue, a line with descriptors, by sendmsg() with
 * SCM_RIGHTS; FALSE when the socket is full (a source waits) or it failed.
 */
static gboolean
vmsup_line_stream_flush_fds(VmsupLineStream *self, VmsupLineStreamFds *fds)
{
	g_autoptr(GSocketControlMessage) message = g_unix_fd_message_new_with_fd_list(fds->fds);
	GOutputVector vector;
	GError *error = NULL;
	GSocket *socket;
	gsize sent = 0;
	GPollableReturn ret;

	vector.buffer = g_bytes_get_data(fds->line, &vector.size);
	if (!G_IS_SOCKET_CONNECTION(self->stream)) {
		vmsup_line_stream_write_failed(
		    self,
		    g_error_new_literal(VMSUP_ERROR,
					VMSUP_ERROR_CLOSED,
					"descriptors cannot pass on this connection"));
		return FALSE;
	}
	socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(self->stream));
	ret = g_socket_send_message_with_timeout(socket,
						 NULL,
						 &vector,
						 1,
						 &message,
						 1,
						 G_SOCKET_MSG_NONE,
						 0,
						 &sent,
						 self->cancellable,
						 &error);
	if (ret == G_POLLABLE_RETURN_FAILED) {
		vmsup_line_stream_write_failed(self, error);
		return FALSE;
	}
	if (ret == G_POLLABLE_RETURN_WOULD_BLOCK) {
		if (self->write_source == NULL)
			self->write_source = vmsup_line_stream_watch(self, G_IO_OUT);
		return FALSE;
	}
	/* the descriptors went with the first byte; the rest of the line is plain */
	vmsup_line_stream_fds_free(g_queue_pop_head(&self->fd_queue));
	vmsup_line_stream_consume(self, sent);
	return TRUE;
}

/* writes what the peer takes now; a source waits for room for the rest */
static void
vmsup_line_stream_flush(VmsupLineStream *self)
{
	if (!self->started || self->closed || self->write_error != NULL)
		return;
	while (!g_queue_is_empty(&self->write_queue)) {
		GOutputVector vectors[VMSUP_LINE_STREAM_MAX_VECTORS];
		guint n_vectors = 0;
		gsize offset = self->write_offset;
		gsize wanted = 0;
		gsize sent = 0;
		GError *error = NULL;
		GPollableReturn ret;

		VmsupLineStreamFds *fds = g_queue_peek_head(&self->fd_queue);

		if (fds != NULL && self->write_offset == 0 &&
		    fds->line == g_queue_peek_head(&self->write_queue)) {
			if (!vmsup_line_stream_flush_fds(self, fds))
				return;
			continue;
		}
		for (GList *l = self->write_queue.head;
		     l != NULL && n_vectors < G_N_ELEMENTS(vectors) &&
		     (n_vectors == 0 || fds == NULL || l->data != fds->line);
		     l = l->next) {
			gsize size = 0;
			const guint8 *data = g_bytes_get_data(l->data, &size);
			vectors[n_vectors].buffer = data + offset;
			vectors[n_vectors].size = size - offset;
			wanted += size - offset;
			offset = 0;
			n_vectors++;
		}
		ret = g_pollable_output_stream_writev_nonblocking(
		    G_POLLABLE_OUTPUT_STREAM(self->output),
		    vectors,
		    n_vectors,
		    &sent,
		    self->cancellable,
		    &error);
		if (ret == G_POLLABLE_RETURN_FAILED) {
			vmsup_line_stream_write_failed(self, error);
			return;
		}
		if (ret == G_POLLABLE_RETURN_OK)
			vmsup_line_stream_consume(self, sent);
		/* a short write means a full socket: wait for room instead of asking again */
		if (ret == G_POLLABLE_RETURN_WOULD_BLOCK || sent < wanted)
			break;
	}
	if (g_queue_is_empty(&self->write_queue)) {
		vmsup_line_stream_clear_source(&self->write_source);
		if (self->flushing)
			vmsup_line_stream_end(self, NULL);
		return;
	}
	if (self->write_source != NULL)
		return;
	self->write_source = vmsup_line_stream_watch(self, G_IO_OUT);
}

static void
vmsup_line_stream_queue(VmsupLineStream *self, GBytes *bytes)
{
	self->queued += g_bytes_get_size(bytes);
	g_queue_push_tail(&self->write_queue, bytes);
	if (self->queued > self->max_queue) {
		vmsup_line_stream_end_with(self,
					   VMSUP_ERROR_BUSY,
					   "the peer is not reading; %" G_GSIZE_FORMAT
					   " bytes unsent",
					   self->queued);
		return;
	}
	/* while lines are delivered, answers pile up and go out together; a burst past the
	 * high-water mark goes out before more are made */
	if (!self->reading || self->queued >= self->high_water)
		vmsup_line_stream_flush(self);
}

GBytes *
vmsup_line_stream_encode(JsonNode *node, VmsupLineStreamFlags flags)
{
	const gchar *end = (flags & VMSUP_LINE_STREAM_CRLF) ? "\r\n" : "\n";
	gsize end_len = strlen(end);
	g_autofree gchar *text = vmsup_json_to_string(node, FALSE);
	gsize length = strlen(text);

	text = g_realloc(text, length + end_len + 1);
	memcpy(text + length, end, end_len + 1);
	return g_bytes_new_take(g_steal_pointer(&text), length + end_len);
}

void
vmsup_line_stream_send_line(VmsupLineStream *self, GBytes *line)
{
	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	g_return_if_fail(line != NULL);

	if (self->closed || self->flushing || self->write_error != NULL)
		return;
	if (!g_log_writer_default_would_drop(G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN)) {
		gsize size = 0;
		const gchar *data = g_bytes_get_data(line, &size);
		vmsup_line_stream_log_line(self, "->", data, size > 0 ? size - 1 : 0);
	}
	vmsup_line_stream_queue(self, g_bytes_ref(line));
}

void
vmsup_line_stream_send_node(VmsupLineStream *self, JsonNode *node)
{
	g_autoptr(GBytes) line = NULL;

	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	g_return_if_fail(node != NULL);

	if (self->closed)
		return;
	line = vmsup_line_stream_encode(node, self->flags);
	vmsup_line_stream_send_line(self, line);
}

void
vmsup_line_stream_send_node_with_fds(VmsupLineStream *self, JsonNode *node, GUnixFDList *fds)
{
	VmsupLineStreamFds *entry;
	GBytes *line;

	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	g_return_if_fail(node != NULL);
	g_return_if_fail(G_IS_UNIX_FD_LIST(fds));

	if (self->closed || self->flushing || self->write_error != NULL)
		return;
	line = vmsup_line_stream_encode(node, self->flags);
	entry = g_new0(VmsupLineStreamFds, 1);
	entry->line = line;
	entry->fds = g_object_ref(fds);
	g_queue_push_tail(&self->fd_queue, entry);
	vmsup_line_stream_queue(self, line);
}

GUnixFDList *
vmsup_line_stream_steal_fds(VmsupLineStream *self)
{
	GUnixFDList *fds;

	g_return_val_if_fail(VMSUP_IS_LINE_STREAM(self), NULL);
	fds = g_steal_pointer(&self->fds_in);
	self->fds_in = g_unix_fd_list_new();
	return fds;
}

void
vmsup_line_stream_send(VmsupLineStream *self, JsonObject *message)
{
	g_autoptr(JsonNode) node = NULL;

	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	g_return_if_fail(message != NULL);

	node = vmsup_json_node_new_object(message);
	vmsup_line_stream_send_node(self, node);
}

void
vmsup_line_stream_send_raw(VmsupLineStream *self, const void *data, gsize length)
{
	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	g_return_if_fail(data != NULL || length == 0);

	if (self->closed || self->flushing || self->write_error != NULL || length == 0)
		return;
	vmsup_line_stream_queue(self, g_bytes_new(data, length));
}

gsize
vmsup_line_stream_get_queued(VmsupLineStream *self)
{
	g_return_val_if_fail(VMSUP_IS_LINE_STREAM(self), 0);
	return self->queued;
}

/* set-up and state */

void
vmsup_line_stream_set_max_line(VmsupLineStream *self, gsize max_line)
{
	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	g_return_if_fail(max_line > 0);
	self->max_line = max_line;
}

void
vmsup_line_stream_set_json_flags(VmsupLineStream *self, VmsupJsonCheckFlags json_flags)
{
	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	self->json_flags = json_flags;
}

void
vmsup_line_stream_set_write_limits(VmsupLineStream *self, gsize high_water, gsize max_queue)
{
	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	g_return_if_fail(high_water > 0 && high_water <= max_queue);
	self->high_water = high_water;
	self->max_queue = max_queue;
}

void
vmsup_line_stream_start(VmsupLineStream *self)
{
	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	g_return_if_fail(!self->started);

	self->started = TRUE;
	if (self->closed)
		return;
	vmsup_line_stream_update_reader(self);
	vmsup_line_stream_flush(self);
}

void
vmsup_line_stream_read_now(VmsupLineStream *self)
{
	g_autoptr(VmsupLineStream) keep = NULL;

	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	g_return_if_fail(self->started);

	if (self->reading || self->closed)
		return;
	keep = g_object_ref(self);
	self->reading = TRUE;
	vmsup_line_stream_read_some(self, 0, TRUE);
	self->reading = FALSE;
	vmsup_line_stream_flush(self);
	vmsup_line_stream_update_reader(self);
}

void
vmsup_line_stream_set_paused(VmsupLineStream *self, gboolean paused)
{
	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));

	if (self->paused == paused)
		return;
	self->paused = paused;
	if (!self->started || self->closed)
		return;
	/*
	 * lines read before the pause are delivered now, not when the peer sends
	 * more; from inside a delivery, the loop that made it goes on by itself
	 */
	if (!paused)
		vmsup_line_stream_deliver(self);
	vmsup_line_stream_update_reader(self);
}

gboolean
vmsup_line_stream_has_pending_input(VmsupLineStream *self)
{
	g_return_val_if_fail(VMSUP_IS_LINE_STREAM(self), FALSE);

	if (self->closed)
		return FALSE;
	return self->inbuf->len > 0 || (!self->eof && g_pollable_input_stream_is_readable(
							  G_POLLABLE_INPUT_STREAM(self->input)));
}

void
vmsup_line_stream_discard_until_sentinel(VmsupLineStream *self)
{
	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	self->discarding = TRUE;
}

gboolean
vmsup_line_stream_is_closed(VmsupLineStream *self)
{
	g_return_val_if_fail(VMSUP_IS_LINE_STREAM(self), TRUE);
	return self->closed;
}

gboolean
vmsup_line_stream_got_eof(VmsupLineStream *self)
{
	g_return_val_if_fail(VMSUP_IS_LINE_STREAM(self), FALSE);
	return self->got_eof;
}

void
vmsup_line_stream_close(VmsupLineStream *self)
{
	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));
	vmsup_line_stream_end(self, NULL);
}

void
vmsup_line_stream_close_after_flush(VmsupLineStream *self)
{
	g_return_if_fail(VMSUP_IS_LINE_STREAM(self));

	if (self->closed || self->flushing)
		return;
	self->flushing = TRUE;
	self->input_ended = TRUE;
	vmsup_line_stream_clear_source(&self->read_source);
	g_byte_array_set_size(self->inbuf, 0);
	if (g_queue_is_empty(&self->write_queue) || self->write_error != NULL) {
		if (self->write_error == NULL)
			vmsup_line_stream_end(self, NULL);
		return;
	}
	vmsup_line_stream_flush(self);
}

/* GObject */

static void
vmsup_line_stream_dispose(GObject *object)
{
	VmsupLineStream *self = VMSUP_LINE_STREAM(object);

	/* only reached with nothing in flight; no signal from here */
	if (!self->closed)
		vmsup_line_stream_shutdown(self);
	self->input = NULL;
	self->output = NULL;
	g_clear_object(&self->stream);
	G_OBJECT_CLASS(vmsup_line_stream_parent_class)->dispose(object);
}

static void
vmsup_line_stream_finalize(GObject *object)
{
	VmsupLineStream *self = VMSUP_LINE_STREAM(object);

	vmsup_line_stream_clear_queue(self);
	g_clear_error(&self->write_error);
	g_object_unref(self->cancellable);
	g_byte_array_unref(self->inbuf);
	g_clear_object(&self->fds_in);
	g_free(self->label);
	G_OBJECT_CLASS(vmsup_line_stream_parent_class)->finalize(object);
}

/* one boxed argument each, with its own marshaller: libffi's generic one costs every line */
static guint
vmsup_line_stream_new_signal(VmsupLineStreamClass *klass, const gchar *name, GType type)
{
	GType types[] = {type | G_SIGNAL_TYPE_STATIC_SCOPE};

	return g_signal_newv(name,
			     G_TYPE_FROM_CLASS(klass),
			     G_SIGNAL_RUN_LAST,
			     NULL,
			     NULL,
			     NULL,
			     g_cclosure_marshal_VOID__BOXED,
			     G_TYPE_NONE,
			     1,
			     types);
}

static void
vmsup_line_stream_class_init(VmsupLineStreamClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = vmsup_line_stream_dispose;
	object_class->finalize = vmsup_line_stream_finalize;

	signals[SIGNAL_MESSAGE] = vmsup_line_stream_new_signal(klass, "message", JSON_TYPE_OBJECT);
	signals[SIGNAL_INVALID] = vmsup_line_stream_new_signal(klass, "invalid", G_TYPE_ERROR);
	signals[SIGNAL_LINE] = vmsup_line_stream_new_signal(klass, "line", G_TYPE_BYTES);
	signals[SIGNAL_INPUT_ENDED] =
	    vmsup_line_stream_new_signal(klass, "input-ended", G_TYPE_ERROR);
	signals[SIGNAL_CLOSED] = vmsup_line_stream_new_signal(klass, "closed", G_TYPE_ERROR);
}

static void
vmsup_line_stream_init(VmsupLineStream *self)
{
	self->max_line = VMSUP_LINE_STREAM_MAX_LINE_DEFAULT;
	self->json_flags = VMSUP_JSON_CHECK_NONE;
	self->high_water = G_MAXSIZE;
	self->max_queue = G_MAXSIZE;
	self->cancellable = g_cancellable_new();
	self->inbuf = g_byte_array_new();
	g_queue_init(&self->write_queue);
	g_queue_init(&self->fd_queue);
	self->fds_in = g_unix_fd_list_new();
}

VmsupLineStream *
vmsup_line_stream_new(GIOStream *stream, const gchar *label, VmsupLineStreamFlags flags)
{
	VmsupLineStream *self;

	g_return_val_if_fail(G_IS_IO_STREAM(stream), NULL);

	self = g_object_new(VMSUP_TYPE_LINE_STREAM, NULL);
	self->stream = g_object_ref(stream);
	self->input = g_io_stream_get_input_stream(stream);
	self->output = g_io_stream_get_output_stream(stream);
	/* sockets and memory streams are; a stream that is not cannot be used without a thread */
	g_assert(G_IS_POLLABLE_INPUT_STREAM(self->input) &&
		 g_pollable_input_stream_can_poll(G_POLLABLE_INPUT_STREAM(self->input)));
	g_assert(G_IS_POLLABLE_OUTPUT_STREAM(self->output) &&
		 g_pollable_output_stream_can_poll(G_POLLABLE_OUTPUT_STREAM(self->output)));
	self->label = g_strdup(label != NULL ? label : "peer");
	self->flags = flags;
	return self;
}
