/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Line-framed JSON over a GIOStream, shared by the QMP and guest-agent
 * clients: bounded line reads, ordered queued writes, the 0xFF resync.
 */

#include "config.h"

#include <string.h>

#include "vmsup-json-stream.h"
#include "vmsup-json.h"

#define VMSUP_JSON_STREAM_SENTINEL 0xFF

struct _VmsupJsonStream {
	GObject parent_instance;
	GIOStream *stream;    /* owned */
	GInputStream *input;  /* unowned: the stream's, pollable */
	GSource *read_source; /* owned: attached from start to close, unless paused */
	GByteArray *inbuf;    /* owned: bytes read and not delivered yet */
	gboolean reading;     /* in the read callback: a nested dispatch does nothing */
	gchar *label;         /* owned */
	gsize max_line;
	GCancellable *cancellable; /* owned */
	GQueue write_queue;        /* of GBytes, owned */
	GBytes *write_current;     /* owned, the write in flight */
	gboolean started;
	gboolean discarding;
	gboolean paused;
	gboolean closed;
};

G_DEFINE_FINAL_TYPE(VmsupJsonStream, vmsup_json_stream, G_TYPE_OBJECT)

enum { PROP_0, PROP_STREAM, PROP_LABEL, N_PROPS };
static GParamSpec *props[N_PROPS] = {NULL};

enum { SIGNAL_MESSAGE, SIGNAL_INVALID, SIGNAL_CLOSED, N_SIGNALS };
static guint signals[N_SIGNALS] = {0};

static void
vmsup_json_stream_shutdown(VmsupJsonStream *self)
{
	self->closed = TRUE;
	g_cancellable_cancel(self->cancellable);
	if (self->read_source != NULL) {
		g_source_destroy(self->read_source);
		g_clear_pointer(&self->read_source, g_source_unref);
	}
	g_queue_clear_full(&self->write_queue, (GDestroyNotify)g_bytes_unref);
	/* a substream with an operation still pending refuses to close: the socket closes anyway */
	if (self->stream != NULL)
		g_io_stream_close(self->stream, NULL, NULL);
}

static void
vmsup_json_stream_end(VmsupJsonStream *self, const GError *error)
{
	if (self->closed)
		return;
	if (error != NULL)
		g_debug("%s: connection closed: %s", self->label, error->message);
	else
		g_debug("%s: connection closed", self->label);
	vmsup_json_stream_shutdown(self);
	g_object_ref(self);
	g_signal_emit(self, signals[SIGNAL_CLOSED], 0, error);
	g_object_unref(self);
}

static void
vmsup_json_stream_end_with(VmsupJsonStream *self, gint code, const gchar *format, ...)
    G_GNUC_PRINTF(3, 4);

static void
vmsup_json_stream_end_with(VmsupJsonStream *self, gint code, const gchar *format, ...)
{
	g_autoptr(GError) error = NULL;
	va_list args;

	va_start(args, format);
	error = g_error_new_valist(VMSUP_ERROR, code, format, args);
	va_end(args);
	vmsup_json_stream_end(self, error);
}

static void
vmsup_json_stream_log_line(VmsupJsonStream *self,
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
vmsup_json_stream_is_blank(const gchar *line, gsize length)
{
	for (gsize i = 0; i < length; i++) {
		if (!g_ascii_isspace(line[i]))
			return FALSE;
	}
	return TRUE;
}

static void
vmsup_json_stream_handle_line(VmsupJsonStream *self, gchar *line, gsize length)
{
	g_autoptr(JsonObject) message = NULL;
	g_autoptr(GError) error_local = NULL;

	if (length > 0 && line[length - 1] == '\r')
		line[--length] = '\0';
	if (length > self->max_line) {
		vmsup_json_stream_end_with(self,
					   VMSUP_ERROR_PROTOCOL,
					   "message longer than %" G_GSIZE_FORMAT " bytes",
					   self->max_line);
		return;
	}
	if (vmsup_json_stream_is_blank(line, length))
		return;
	vmsup_json_stream_log_line(self, "<-", line, length);
	/* QEMU prints uint64 values beyond int64 (UINT64_MAX for "none"): refusing them would cut
	 * the monitor off; NULs in strings, hex and the like are refused, never cut short */
	message = vmsup_json_parse_object_full(line,
					       length,
					       VMSUP_JSON_CHECK_WIDE_INTEGERS,
					       &error_local);
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

/* delivers every complete line in the buffer */
static void
vmsup_json_stream_process_buffer(VmsupJsonStream *self)
{
	gsize consumed = 0;

	while (!self->closed && !self->paused && consumed < self->inbuf->len) {
		const guint8 *buf = self->inbuf->data + consumed;
		gsize avail = self->inbuf->len - consumed;
		const guint8 *end;
		g_autofree gchar *line = NULL;
		gsize length;

		if (self->discarding) {
			end = memchr(buf, VMSUP_JSON_STREAM_SENTINEL, avail);
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
			/* room for max_line, a '\r' and the '\n': more without one is too long */
			if (avail >= self->max_line + 2)
				vmsup_json_stream_end_with(self,
							   VMSUP_ERROR_PROTOCOL,
							   "message longer than %" G_GSIZE_FORMAT
							   " bytes",
							   self->max_line);
			break;
		}
		length = end - buf;
		line = g_malloc(length + 1);
		memcpy(line, buf, length);
		line[length] = '\0';
		consumed += length + 1;
		vmsup_json_stream_handle_line(self, line, length);
	}
	if (self->closed)
		g_byte_array_set_size(self->inbuf, 0);
	else if (consumed > 0)
		g_byte_array_remove_range(self->inbuf, 0, consumed);
}

static void
vmsup_json_stream_read_eof(VmsupJsonStream *self)
{
	if (!self->discarding &&
	    !vmsup_json_stream_is_blank((const gchar *)self->inbuf->data, self->inbuf->len)) {
		vmsup_json_stream_end_with(self,
					   VMSUP_ERROR_CLOSED,
					   "connection closed in the middle of a message");
		return;
	}
	vmsup_json_stream_end(self, NULL);
}

/* reads per dispatch at most; a peer that never pauses cannot hold the main loop */
#define VMSUP_JSON_STREAM_READS_PER_DISPATCH 4
#define VMSUP_JSON_STREAM_READ_CHUNK 16384

/*
 * The one read source stays attached while the stream is open: reading
 * costs no source set-up per message, and a dispatch reads what is there.
 */
static gboolean
vmsup_json_stream_readable_cb(GObject *pollable, gpointer user_data)
{
	VmsupJsonStream *self = user_data;
	g_autoptr(VmsupJsonStream) keep = NULL;

	if (self->reading || self->closed)
		return G_SOURCE_CONTINUE;
	keep = g_object_ref(self);
	self->reading = TRUE;
	for (guint i = 0;
	     i < VMSUP_JSON_STREAM_READS_PER_DISPATCH && !self->closed && !self->paused;
	     i++) {
		g_autoptr(GError) error = NULL;
		gsize old_len = self->inbuf->len;
		gssize n;

		g_byte_array_set_size(self->inbuf, old_len + VMSUP_JSON_STREAM_READ_CHUNK);
		n = g_pollable_input_stream_read_nonblocking(G_POLLABLE_INPUT_STREAM(self->input),
							     self->inbuf->data + old_len,
							     VMSUP_JSON_STREAM_READ_CHUNK,
							     NULL,
							     &error);
		g_byte_array_set_size(self->inbuf, old_len + MAX(n, 0));
		if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			break;
		if (n < 0) {
			vmsup_json_stream_end_with(self,
						   VMSUP_ERROR_CLOSED,
						   "read failed: %s",
						   error->message);
			break;
		}
		if (n == 0) {
			vmsup_json_stream_read_eof(self);
			break;
		}
		vmsup_json_stream_process_buffer(self);
	}
	self->reading = FALSE;
	return G_SOURCE_CONTINUE;
}

static void
vmsup_json_stream_write_next(VmsupJsonStream *self);

static void
vmsup_json_stream_write_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupJsonStream) self = user_data;
	g_autoptr(GError) error = NULL;

	g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error);
	g_clear_pointer(&self->write_current, g_bytes_unref);
	if (self->closed)
		return;
	if (error != NULL) {
		vmsup_json_stream_end_with(self,
					   VMSUP_ERROR_CLOSED,
					   "write failed: %s",
					   error->message);
		return;
	}
	vmsup_json_stream_write_next(self);
}

static void
vmsup_json_stream_write_next(VmsupJsonStream *self)
{
	gsize size = 0;
	gconstpointer data;

	if (self->write_current != NULL || self->closed)
		return;
	self->write_current = g_queue_pop_head(&self->write_queue);
	if (self->write_current == NULL)
		return;
	data = g_bytes_get_data(self->write_current, &size);
	g_output_stream_write_all_async(g_io_stream_get_output_stream(self->stream),
					data,
					size,
					G_PRIORITY_DEFAULT,
					self->cancellable,
					vmsup_json_stream_write_cb,
					g_object_ref(self));
}

static void
vmsup_json_stream_queue(VmsupJsonStream *self, GBytes *bytes)
{
	g_queue_push_tail(&self->write_queue, bytes);
	if (self->started)
		vmsup_json_stream_write_next(self);
}

void
vmsup_json_stream_set_max_line(VmsupJsonStream *self, gsize max_line)
{
	g_return_if_fail(VMSUP_IS_JSON_STREAM(self));
	g_return_if_fail(max_line > 0);
	self->max_line = max_line;
}

static void
vmsup_json_stream_attach_reader(VmsupJsonStream *self)
{
	self->read_source =
	    g_pollable_input_stream_create_source(G_POLLABLE_INPUT_STREAM(self->input), NULL);
	g_source_set_callback(self->read_source,
			      G_SOURCE_FUNC(vmsup_json_stream_readable_cb),
			      self,
			      NULL);
	/* else GLib takes the fd out of the poll set around each dispatch, waking itself twice */
	g_source_set_can_recurse(self->read_source, TRUE);
	g_source_attach(self->read_source, g_main_context_get_thread_default());
}

void
vmsup_json_stream_start(VmsupJsonStream *self)
{
	g_return_if_fail(VMSUP_IS_JSON_STREAM(self));
	g_return_if_fail(!self->started);

	self->started = TRUE;
	if (self->closed)
		return;
	if (!self->paused)
		vmsup_json_stream_attach_reader(self);
	vmsup_json_stream_write_next(self);
}

void
vmsup_json_stream_set_paused(VmsupJsonStream *self, gboolean paused)
{
	g_return_if_fail(VMSUP_IS_JSON_STREAM(self));

	if (self->paused == paused)
		return;
	self->paused = paused;
	if (!self->started || self->closed)
		return;
	if (paused) {
		g_source_destroy(self->read_source);
		g_clear_pointer(&self->read_source, g_source_unref);
		return;
	}
	vmsup_json_stream_attach_reader(self);
	/*
	 * lines read before the pause are delivered now, not when the peer sends
	 * more; from inside a delivery, the loop that made it goes on by itself
	 */
	if (!self->reading && self->inbuf->len > 0) {
		g_autoptr(VmsupJsonStream) keep = g_object_ref(self);
		self->reading = TRUE;
		vmsup_json_stream_process_buffer(self);
		self->reading = FALSE;
	}
}

gboolean
vmsup_json_stream_has_pending_input(VmsupJsonStream *self)
{
	g_return_val_if_fail(VMSUP_IS_JSON_STREAM(self), FALSE);

	if (self->closed)
		return FALSE;
	return self->inbuf->len > 0 ||
	       g_pollable_input_stream_is_readable(G_POLLABLE_INPUT_STREAM(self->input));
}

void
vmsup_json_stream_send(VmsupJsonStream *self, JsonObject *message)
{
	g_autofree gchar *text = NULL;
	gsize length;

	g_return_if_fail(VMSUP_IS_JSON_STREAM(self));
	g_return_if_fail(message != NULL);

	if (self->closed)
		return;
	text = vmsup_json_object_to_string(message, FALSE);
	vmsup_json_stream_log_line(self, "->", text, -1);
	length = strlen(text);
	text = g_realloc(text, length + 3);
	memcpy(text + length, "\r\n", 3);
	vmsup_json_stream_queue(self, g_bytes_new_take(g_steal_pointer(&text), length + 2));
}

void
vmsup_json_stream_send_raw(VmsupJsonStream *self, const void *data, gsize length)
{
	g_return_if_fail(VMSUP_IS_JSON_STREAM(self));
	g_return_if_fail(data != NULL || length == 0);

	if (self->closed || length == 0)
		return;
	vmsup_json_stream_queue(self, g_bytes_new(data, length));
}

void
vmsup_json_stream_discard_until_sentinel(VmsupJsonStream *self)
{
	g_return_if_fail(VMSUP_IS_JSON_STREAM(self));
	self->discarding = TRUE;
}

gboolean
vmsup_json_stream_is_closed(VmsupJsonStream *self)
{
	g_return_val_if_fail(VMSUP_IS_JSON_STREAM(self), TRUE);
	return self->closed;
}

void
vmsup_json_stream_close(VmsupJsonStream *self)
{
	g_return_if_fail(VMSUP_IS_JSON_STREAM(self));
	vmsup_json_stream_end(self, NULL);
}

static void
vmsup_json_stream_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	VmsupJsonStream *self = VMSUP_JSON_STREAM(object);
	switch (prop_id) {
	case PROP_STREAM:
		g_value_set_object(value, self->stream);
		break;
	case PROP_LABEL:
		g_value_set_string(value, self->label);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_json_stream_set_property(GObject *object,
			       guint prop_id,
			       const GValue *value,
			       GParamSpec *pspec)
{
	VmsupJsonStream *self = VMSUP_JSON_STREAM(object);
	switch (prop_id) {
	case PROP_STREAM:
		self->stream = g_value_dup_object(value);
		break;
	case PROP_LABEL:
		g_free(self->label);
		self->label = g_value_dup_string(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_json_stream_constructed(GObject *object)
{
	VmsupJsonStream *self = VMSUP_JSON_STREAM(object);

	G_OBJECT_CLASS(vmsup_json_stream_parent_class)->constructed(object);
	g_assert(self->stream != NULL);
	self->input = g_io_stream_get_input_stream(self->stream);
	/* sockets and memory streams are; a stream that is not cannot be read without a thread */
	g_assert(G_IS_POLLABLE_INPUT_STREAM(self->input) &&
		 g_pollable_input_stream_can_poll(G_POLLABLE_INPUT_STREAM(self->input)));
	self->inbuf = g_byte_array_new();
	if (self->label == NULL)
		self->label = g_strdup("peer");
}

static void
vmsup_json_stream_dispose(GObject *object)
{
	VmsupJsonStream *self = VMSUP_JSON_STREAM(object);

	/* only reached with nothing in flight; no signal from here */
	if (!self->closed)
		vmsup_json_stream_shutdown(self);
	self->input = NULL;
	g_clear_object(&self->stream);
	G_OBJECT_CLASS(vmsup_json_stream_parent_class)->dispose(object);
}

static void
vmsup_json_stream_finalize(GObject *object)
{
	VmsupJsonStream *self = VMSUP_JSON_STREAM(object);

	g_queue_clear_full(&self->write_queue, (GDestroyNotify)g_bytes_unref);
	g_clear_pointer(&self->write_current, g_bytes_unref);
	g_object_unref(self->cancellable);
	g_byte_array_unref(self->inbuf);
	g_free(self->label);
	G_OBJECT_CLASS(vmsup_json_stream_parent_class)->finalize(object);
}

static void
vmsup_json_stream_class_init(VmsupJsonStreamClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->get_property = vmsup_json_stream_get_property;
	object_class->set_property = vmsup_json_stream_set_property;
	object_class->constructed = vmsup_json_stream_constructed;
	object_class->dispose = vmsup_json_stream_dispose;
	object_class->finalize = vmsup_json_stream_finalize;

	props[PROP_STREAM] = g_param_spec_object("stream",
						 NULL,
						 NULL,
						 G_TYPE_IO_STREAM,
						 G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
						     G_PARAM_STATIC_STRINGS);
	props[PROP_LABEL] = g_param_spec_string("label",
						NULL,
						NULL,
						NULL,
						G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
						    G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);

	signals[SIGNAL_MESSAGE] = g_signal_new("message",
					       G_TYPE_FROM_CLASS(klass),
					       G_SIGNAL_RUN_LAST,
					       0,
					       NULL,
					       NULL,
					       NULL,
					       G_TYPE_NONE,
					       1,
					       JSON_TYPE_OBJECT | G_SIGNAL_TYPE_STATIC_SCOPE);
	signals[SIGNAL_INVALID] = g_signal_new("invalid",
					       G_TYPE_FROM_CLASS(klass),
					       G_SIGNAL_RUN_LAST,
					       0,
					       NULL,
					       NULL,
					       NULL,
					       G_TYPE_NONE,
					       1,
					       G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
	signals[SIGNAL_CLOSED] = g_signal_new("closed",
					      G_TYPE_FROM_CLASS(klass),
					      G_SIGNAL_RUN_LAST,
					      0,
					      NULL,
					      NULL,
					      NULL,
					      G_TYPE_NONE,
					      1,
					      G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
vmsup_json_stream_init(VmsupJsonStream *self)
{
	self->max_line = VMSUP_JSON_STREAM_MAX_LINE_DEFAULT;
	self->cancellable = g_cancellable_new();
	g_queue_init(&self->write_queue);
}

VmsupJsonStream *
vmsup_json_stream_new(GIOStream *stream, const gchar *label)
{
	g_return_val_if_fail(G_IS_IO_STREAM(stream), NULL);
	return g_object_new(VMSUP_TYPE_JSON_STREAM, "stream", stream, "label", label, NULL);
}
