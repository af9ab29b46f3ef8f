/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bytes as QEMU's monitor or a (hostile) guest agent might send them, through
 * VmsupLineStream: line framing, the length limit, the 0xFF resync and
 * parsing. The stream must end exactly once and deliver only objects.
 */

#include "config.h"

#include <stdint.h>

#include "vmsup-line-stream.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
	guint n_messages;
	guint n_invalid;
	guint n_closed;
	gboolean resync_on_message;
} FuzzState;

static void
message_cb(VmsupLineStream *stream, JsonObject *message, gpointer user_data)
{
	FuzzState *state = user_data;
	g_assert_nonnull(message);
	state->n_messages++;
	if (state->resync_on_message && state->n_messages == 1)
		vmsup_line_stream_discard_until_sentinel(stream);
}

static void
invalid_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	FuzzState *state = user_data;
	g_assert_nonnull(error);
	state->n_invalid++;
}

static void
closed_cb(VmsupLineStream *stream, const GError *error, gpointer user_data)
{
	FuzzState *state = user_data;
	state->n_closed++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzState state = {0};
	g_autoptr(GInputStream) in = NULL;
	g_autoptr(GOutputStream) out = NULL;
	g_autoptr(GIOStream) io = NULL;
	g_autoptr(VmsupLineStream) stream = NULL;
	guint8 mode;

	if (size == 0)
		return 0;
	g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
	/* the first byte picks the framing options, the rest is the wire */
	mode = data[0];
	in = g_memory_input_stream_new_from_data(g_memdup2(data + 1, size - 1), size - 1, g_free);
	out = g_memory_output_stream_new_resizable();
	io = g_simple_io_stream_new(in, out);
	stream = vmsup_line_stream_new(io, "fuzz", VMSUP_LINE_STREAM_CRLF);
	vmsup_line_stream_set_json_flags(stream, VMSUP_JSON_CHECK_WIDE_INTEGERS);
	if (mode & 1)
		vmsup_line_stream_set_max_line(stream, 64);
	state.resync_on_message = (mode & 2) != 0;
	g_signal_connect(stream, "message", G_CALLBACK(message_cb), &state);
	g_signal_connect(stream, "invalid", G_CALLBACK(invalid_cb), &state);
	g_signal_connect(stream, "closed", G_CALLBACK(closed_cb), &state);
	vmsup_line_stream_start(stream);
	if (mode & 4)
		vmsup_line_stream_discard_until_sentinel(stream);
	while (state.n_closed == 0)
		g_main_context_iteration(NULL, TRUE);
	vmsup_line_stream_close(stream);
	g_assert_cmpuint(state.n_closed, ==, 1);
	while (g_main_context_iteration(NULL, FALSE))
		;
	return 0;
}
