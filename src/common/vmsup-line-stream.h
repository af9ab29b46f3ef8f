/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <json-glib/json-glib.h>

#include "vmsup-error.h"
#include "vmsup-json-check.h"

G_BEGIN_DECLS

#define VMSUP_LINE_STREAM_MAX_LINE_DEFAULT (1024 * 1024)

typedef enum {
	VMSUP_LINE_STREAM_NONE = 0,
	/* lines out end in "\r\n"; a '\r' before a '\n' in is not part of the line (QMP, agent) */
	VMSUP_LINE_STREAM_CRLF = 1 << 0,
	/* lines are handed over as they are ("line"), for an owner that parses them itself */
	VMSUP_LINE_STREAM_RAW = 1 << 1,
	/*
	 * the end of the input does not close the stream: a last line without its
	 * newline still counts, "input-ended" says reading is over, and the owner
	 * closes once it answered (a server)
	 */
	VMSUP_LINE_STREAM_HALF_CLOSE = 1 << 2,
	/* descriptors sent with the input (SCM_RIGHTS) are kept: vmsup_line_stream_steal_fds() */
	VMSUP_LINE_STREAM_RECEIVE_FDS = 1 << 3,
} VmsupLineStreamFlags;

#define VMSUP_TYPE_LINE_STREAM (vmsup_line_stream_get_type())
G_DECLARE_FINAL_TYPE(VmsupLineStream, vmsup_line_stream, VMSUP, LINE_STREAM, GObject)

/*
 * Newline-framed JSON over a GIOStream, the one framer of QMP, the guest
 * agent, the JSON-RPC server and the CLI: bounded line reads, writes that go
 * out at once and in order, back-pressure, the agent's 0xFF resync.
 * Signals:
 *   "message": void (VmsupLineStream *self, JsonObject *message, gpointer user_data)
 *   "invalid": void (VmsupLineStream *self, const GError *error, gpointer user_data);
 *       a line that is not a JSON object (VMSUP_ERROR_PROTOCOL); reading goes on
 *   "line": void (VmsupLineStream *self, GBytes *line, gpointer user_data);
 *       with VMSUP_LINE_STREAM_RAW instead of the two above: a line that is not blank,
 *       its newline cut off, NUL-terminated past its size, valid until the handler returns
 *   "input-ended": void (VmsupLineStream *self, const GError *error, gpointer user_data);
 *       with VMSUP_LINE_STREAM_HALF_CLOSE: nothing more is read, error NULL at the end
 *       of the input, VMSUP_ERROR_PROTOCOL on a line longer than the limit
 *   "closed": void (VmsupLineStream *self, const GError *error, gpointer user_data);
 *       emitted exactly once: error NULL on end of stream or a close,
 *       VMSUP_ERROR_CLOSED on an I/O error or a message cut short,
 *       VMSUP_ERROR_PROTOCOL on a line longer than the limit,
 *       VMSUP_ERROR_BUSY when the peer leaves more than the write limit unread.
 * Lines are delivered one at a time; a handler may pause the stream, and the
 * next line waits. What is sent while lines are delivered goes out together
 * when the delivery ends. While an operation is in flight the stream keeps
 * itself alive; an owner drops it with vmsup_line_stream_close() and then its
 * reference.
 */

/* @label names the peer in debug logs */
VmsupLineStream *
vmsup_line_stream_new(GIOStream *stream, const gchar *label, VmsupLineStreamFlags flags);

/* longest accepted line in bytes, the newline (and its '\r') excluded; set before start */
void
vmsup_line_stream_set_max_line(VmsupLineStream *self, gsize max_line);

/* how lines are parsed into "message": VMSUP_JSON_CHECK_NONE unless set */
void
vmsup_line_stream_set_json_flags(VmsupLineStream *self, VmsupJsonCheckFlags json_flags);

/*
 * Back-pressure: while more than @high_water bytes wait to be sent nothing is
 * read; past @max_queue the peer is cut off ("closed" with VMSUP_ERROR_BUSY).
 * Without a call, neither applies.
 */
void
vmsup_line_stream_set_write_limits(VmsupLineStream *self, gsize high_water, gsize max_queue);

/* starts reading; connect the signals first */
void
vmsup_line_stream_start(VmsupLineStream *self);

/* reads and delivers what the peer already sent, now rather than from the main loop */
void
vmsup_line_stream_read_now(VmsupLineStream *self);

/* queues @message as one line; writes go out in order; no-op once closed */
void
vmsup_line_stream_send(VmsupLineStream *self, JsonObject *message);

/* likewise for any JSON value (a batch's array) */
void
vmsup_line_stream_send_node(VmsupLineStream *self, JsonNode *node);

/*
 * likewise, with @fds (SCM_RIGHTS) on the line's first byte; only on a
 * GSocketConnection of a Unix socket (the stream fails otherwise)
 */
void
vmsup_line_stream_send_node_with_fds(VmsupLineStream *self, JsonNode *node, GUnixFDList *fds);

/*
 * the descriptors received so far (with VMSUP_LINE_STREAM_RECEIVE_FDS), in
 * the order they came, and none are kept after; full, never NULL
 */
GUnixFDList *
vmsup_line_stream_steal_fds(VmsupLineStream *self);

/* @node as a line for streams of @flags: one encoding sent to many (vmsup_line_stream_send_line) */
GBytes *
vmsup_line_stream_encode(JsonNode *node, VmsupLineStreamFlags flags);

void
vmsup_line_stream_send_line(VmsupLineStream *self, GBytes *line);

/* queues bytes as they are (the guest agent's 0xFF sentinel, test garbage) */
void
vmsup_line_stream_send_raw(VmsupLineStream *self, const void *data, gsize length);

/* bytes queued and not yet taken by the peer */
gsize
vmsup_line_stream_get_queued(VmsupLineStream *self);

/*
 * Throws away input up to and including the next 0xFF byte, then goes back to
 * lines (guest-sync-delimited). Takes effect for input not yet delivered, also
 * when called from a "message" handler.
 */
void
vmsup_line_stream_discard_until_sentinel(VmsupLineStream *self);

gboolean
vmsup_line_stream_is_closed(VmsupLineStream *self);

/* whether the stream ended because the peer ended its side (not on an error of ours or its) */
gboolean
vmsup_line_stream_got_eof(VmsupLineStream *self);

/*
 * A paused stream reads nothing: what the peer sends waits in the socket
 * (and, once that is full, in the peer). Lines already read wait too, and
 * are delivered when it resumes.
 */
void
vmsup_line_stream_set_paused(VmsupLineStream *self, gboolean paused);

/* something was sent that has not been delivered yet (read or still in the socket) */
gboolean
vmsup_line_stream_has_pending_input(VmsupLineStream *self);

/* closes the underlying stream; "closed" is emitted with a NULL error unless it was already */
void
vmsup_line_stream_close(VmsupLineStream *self);

/* reads nothing more, and closes once what is queued went out */
void
vmsup_line_stream_close_after_flush(VmsupLineStream *self);

G_END_DECLS
