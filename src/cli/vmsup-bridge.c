/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A relay between standard input and output and vmsupd's socket, for ssh:
 * bytes as they are, both ways at once, neither side able to make the other
 * buffer more than a splice's chunk.
 */

#include "config.h"

#include "vmsup-bridge.h"

/* once the client ended its side, what vmsupd still owes it may take this long */
#define VMSUP_BRIDGE_DRAIN_TIMEOUT_S 30

typedef struct {
	GIOStream *daemon;
	gboolean up_done;   /* in -> vmsupd */
	gboolean down_done; /* vmsupd -> out */
	gboolean drain_timed_out;
} VmsupBridge;

static void
vmsup_bridge_up_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupBridge *bridge = user_data;
	g_autoptr(GError) error = NULL;
	GSocket *socket;

	if (g_output_stream_splice_finish(G_OUTPUT_STREAM(source), res, &error) < 0)
		g_debug("bridge: client to vmsupd: %s", error->message);
	bridge->up_done = TRUE;
	/* what was asked is still answered: vmsupd closes once it has */
	if (G_IS_SOCKET_CONNECTION(bridge->daemon)) {
		socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(bridge->daemon));
		g_socket_shutdown(socket, FALSE, TRUE, NULL);
	}
}

static void
vmsup_bridge_down_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmsupBridge *bridge = user_data;
	g_autoptr(GError) error = NULL;

	/* a client gone (EPIPE) ends the relay as vmsupd's end does */
	if (g_output_stream_splice_finish(G_OUTPUT_STREAM(source), res, &error) < 0)
		g_debug("bridge: vmsupd to client: %s", error->message);
	bridge->down_done = TRUE;
}

static gboolean
vmsup_bridge_drain_timeout_cb(gpointer user_data)
{
	VmsupBridge *bridge = user_data;
	bridge->drain_timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

void
vmsup_bridge_relay(GIOStream *daemon, GInputStream *in, GOutputStream *out)
{
	GMainContext *context = g_main_context_ref_thread_default();
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GSource) drain = NULL;
	VmsupBridge bridge = {.daemon = daemon};

	g_return_if_fail(G_IS_IO_STREAM(daemon));
	g_return_if_fail(G_IS_INPUT_STREAM(in));
	g_return_if_fail(G_IS_OUTPUT_STREAM(out));

	g_output_stream_splice_async(g_io_stream_get_output_stream(daemon),
				     in,
				     G_OUTPUT_STREAM_SPLICE_NONE,
				     G_PRIORITY_DEFAULT,
				     cancellable,
				     vmsup_bridge_up_cb,
				     &bridge);
	g_output_stream_splice_async(out,
				     g_io_stream_get_input_stream(daemon),
				     G_OUTPUT_STREAM_SPLICE_NONE,
				     G_PRIORITY_DEFAULT,
				     cancellable,
				     vmsup_bridge_down_cb,
				     &bridge);
	while (!bridge.down_done && !bridge.drain_timed_out) {
		if (bridge.up_done && drain == NULL) {
			drain = g_timeout_source_new_seconds(VMSUP_BRIDGE_DRAIN_TIMEOUT_S);
			g_source_set_callback(drain, vmsup_bridge_drain_timeout_cb, &bridge, NULL);
			g_source_attach(drain, context);
		}
		g_main_context_iteration(context, TRUE);
	}
	/* both callbacks use @bridge: they run before it goes */
	g_cancellable_cancel(cancellable);
	while (!bridge.up_done || !bridge.down_done)
		g_main_context_iteration(context, TRUE);
	if (drain != NULL)
		g_source_destroy(drain);
	g_io_stream_close(daemon, NULL, NULL);
	g_main_context_unref(context);
}
