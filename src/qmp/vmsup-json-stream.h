/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-error.h"

G_BEGIN_DECLS

#define VMSUP_JSON_STREAM_MAX_LINE_DEFAULT (1024 * 1024)

#define VMSUP_TYPE_JSON_STREAM (vmsup_json_stream_get_type())
G_DECLARE_FINAL_TYPE(VmsupJsonStream, vmsup_json_stream, VMSUP, JSON_STREAM, GObject)

/*
 * One JSON object per line over a GIOStream, the framing of QMP and of the
 * guest agent. Signals:
 *   "message": void (VmsupJsonStream *self, JsonObject *message, gpointer user_data)
 *   "invalid": void (VmsupJsonStream *self, const GError *error, gpointer user_data);
 *       a line that is not a JSON object (VMSUP_ERROR_PROTOCOL); reading goes on
 *   "closed": void (VmsupJsonStream *self, const GError *error, gpointer user_data);
 *       emitted exactly once: error NULL on end of stream or vmsup_json_stream_close(),
 *       VMSUP_ERROR_CLOSED on an I/O error or a message cut short,
 *       VMSUP_ERROR_PROTOCOL on a line longer than the limit.
 * While an operation is in flight the stream keeps itself alive; an owner
 * drops it with vmsup_json_stream_close() and then its reference.
 */

/* @label names the peer in debug logs */
VmsupJsonStream *
vmsup_json_stream_new(GIOStream *stream, const gchar *label);

/* longest accepted line in bytes, the newline excluded; set before start */
void
vmsup_json_stream_set_max_line(VmsupJsonStream *self, gsize max_line);

/* starts reading; connect the signals first */
void
vmsup_json_stream_start(VmsupJsonStream *self);

/* queues @message as one line; writes go out in order; no-op once closed */
void
vmsup_json_stream_send(VmsupJsonStream *self, JsonObject *message);

/* queues bytes as they are (the guest agent's 0xFF sentinel, test garbage) */
void
vmsup_json_stream_send_raw(VmsupJsonStream *self, const void *data, gsize length);

/*
 * Throws away input up to and including the next 0xFF byte, then goes back to
 * lines (guest-sync-delimited). Takes effect for input not yet delivered, also
 * when called from a "message" handler.
 */
void
vmsup_json_stream_discard_until_sentinel(VmsupJsonStream *self);

gboolean
vmsup_json_stream_is_closed(VmsupJsonStream *self);

/*
 * A paused stream reads nothing: what the peer sends waits in the socket
 * (and, once that is full, in the peer). Lines already read wait too, and
 * are delivered when it resumes.
 */
void
vmsup_json_stream_set_paused(VmsupJsonStream *self, gboolean paused);

/* something was sent that has not been delivered yet (read or still in the socket) */
gboolean
vmsup_json_stream_has_pending_input(VmsupJsonStream *self);

/* closes the underlying stream; "closed" is emitted with a NULL error unless it was already */
void
vmsup_json_stream_close(VmsupJsonStream *self);

G_END_DECLS
