/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/*
 * A scripted QMP (or guest-agent) peer on one end of a socketpair, served by
 * the test's main loop. Each command the client sends must match the next
 * expectation in order (or a standing one from _expect_any); the reply echoes
 * the request's "id". Anything unexpected fails the test and is answered with
 * an error so the client does not hang. vmsup_mock_qmp_free() asserts every
 * expectation was consumed.
 */

typedef enum {
	VMSUP_MOCK_QMP_MODE_QMP, /* greets with data/qmp/greeting.json, answers qmp_capabilities */
	VMSUP_MOCK_QMP_MODE_AGENT, /* qemu-guest-agent: no greeting, 0xFF sentinel on sync */
	VMSUP_MOCK_QMP_MODE_RAW,   /* nothing automatic: the test scripts everything */
} VmsupMockQmpMode;

typedef struct _VmsupMockQmp VmsupMockQmp;

VmsupMockQmp *
vmsup_mock_qmp_new(VmsupMockQmpMode mode);

/* the client's end of the socketpair (borrowed) */
GIOStream *
vmsup_mock_qmp_get_stream(VmsupMockQmp *mock);

/* asserts that every expectation was consumed, then shuts the peer down */
void
vmsup_mock_qmp_free(VmsupMockQmp *mock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupMockQmp, vmsup_mock_qmp_free)

/* tests/data/qmp/@name.json as one compact line (captured from real QEMU) */
gchar *
vmsup_mock_qmp_load(const gchar *name);

/* answers @command with @reply_json, a whole message ({"return": ...} or {"error": ...}) */
void
vmsup_mock_qmp_expect(VmsupMockQmp *mock, const gchar *command, const gchar *reply_json);

/* answers @command with tests/data/qmp/@command.json */
void
vmsup_mock_qmp_expect_canned(VmsupMockQmp *mock, const gchar *command);

void
vmsup_mock_qmp_expect_error(VmsupMockQmp *mock,
			    const gchar *command,
			    const gchar *error_class,
			    const gchar *desc);

/* answers @command with these bytes as they are (garbage, a split line, ...) */
void
vmsup_mock_qmp_expect_raw(VmsupMockQmp *mock, const gchar *command, const gchar *raw);

/* a standing answer: @command may come any number of times; not checked at teardown */
void
vmsup_mock_qmp_expect_any(VmsupMockQmp *mock, const gchar *command, const gchar *reply_json);

/*
 * Agent mode: the next command is guest-sync-delimited, sent after a 0xFF
 * byte; the mock writes @prelude_raw (may be NULL), then 0xFF and
 * {"return": <the request's id>}.
 */
void
vmsup_mock_qmp_expect_sync(VmsupMockQmp *mock, const gchar *prelude_raw);
/* agent mode: a standing answer to every sync, wherever one comes */
void
vmsup_mock_qmp_expect_any_sync(VmsupMockQmp *mock);

/* takes @command and never answers it (see vmsup_mock_qmp_reply_held) */
void
vmsup_mock_qmp_hang(VmsupMockQmp *mock, const gchar *command);

/* answers @command with the first half of @reply_json, then closes the connection */
void
vmsup_mock_qmp_close_mid_reply(VmsupMockQmp *mock, const gchar *command, const gchar *reply_json);

/*
 * Answers the oldest held @command now, with its id echoed. @reply_json NULL:
 * the sync reply for guest-sync-delimited, {"return": {}} otherwise.
 */
void
vmsup_mock_qmp_reply_held(VmsupMockQmp *mock, const gchar *command, const gchar *reply_json);

/* sends an event now; @data_json may be NULL; returns its timestamp in µs */
gint64
vmsup_mock_qmp_emit_event(VmsupMockQmp *mock, const gchar *event, const gchar *data_json);

/* sends bytes now; @length -1: a NUL-terminated string */
void
vmsup_mock_qmp_send_raw(VmsupMockQmp *mock, const gchar *data, gssize length);

/* closes the connection once what is queued is written */
void
vmsup_mock_qmp_close(VmsupMockQmp *mock);

guint
vmsup_mock_qmp_get_n_received(VmsupMockQmp *mock);

/* the @index-th command received (borrowed) and whether a 0xFF byte preceded it */
JsonObject *
vmsup_mock_qmp_get_request(VmsupMockQmp *mock, guint index);
gboolean
vmsup_mock_qmp_get_request_had_sentinel(VmsupMockQmp *mock, guint index);

/* iterates the main loop until @n commands were received; fails the test after @timeout_s */
void
vmsup_mock_qmp_wait_received(VmsupMockQmp *mock, guint n, guint timeout_s);

/* iterates the main loop until the client closed its end; fails the test after @timeout_s */
void
vmsup_mock_qmp_wait_hangup(VmsupMockQmp *mock, guint timeout_s);

G_END_DECLS
