/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* the file in the state directory, and the one it was before its last rotation */
#define VMSUP_EVENT_JOURNAL_FILE "events.jsonl"
#define VMSUP_EVENT_JOURNAL_PREVIOUS_FILE "events.jsonl.1"
#define VMSUP_EVENT_JOURNAL_DEFAULT_MAX_BYTES (1024 * 1024)

/* an entry's owner when nobody's in particular is known: only who sees all reads it */
#define VMSUP_EVENT_JOURNAL_NO_OWNER (-1)

#define VMSUP_TYPE_EVENT_JOURNAL (vmsup_event_journal_get_type())
G_DECLARE_FINAL_TYPE(VmsupEventJournal, vmsup_event_journal, VMSUP, EVENT_JOURNAL, GObject)

/*
 * What vmsupd told its subscribers, kept in @dir as one JSON object a
 * line: {seq, time, method, owner, params}. Appended with O_APPEND, one
 * write() per entry; when an entry would take the file past @max_bytes it
 * becomes VMSUP_EVENT_JOURNAL_PREVIOUS_FILE (the older one goes) and a new
 * file starts, so at most twice @max_bytes are kept. The sequence goes on
 * from the last entry found at open. A file that cannot be opened only
 * costs the journal (a warning); events still go out.
 */
VmsupEventJournal *
vmsup_event_journal_new(const gchar *dir, gsize max_bytes);

/*
 * Appends one entry stamped @time_us (g_get_real_time()) and returns its
 * sequence number, counted even when the write fails. @owner is the uid
 * of the VM's owner or VMSUP_EVENT_JOURNAL_NO_OWNER.
 */
guint64
vmsup_event_journal_append(VmsupEventJournal *self,
			   gint64 time_us,
			   const gchar *method,
			   JsonObject *params,
			   gint64 owner);

/* the sequence number of the last entry appended (or found at open); 0: none yet */
guint64
vmsup_event_journal_get_last_seq(VmsupEventJournal *self);

/* where the journal's files are */
const gchar *
vmsup_event_journal_get_dir(VmsupEventJournal *self);

/*
 * The entries (JsonObject, oldest first) of @dir's files stamped at or
 * after @since_us with a sequence number above @after_seq. A line that
 * does not parse as an entry (the torn end of a file after a crash) is
 * skipped.
 */
GPtrArray *
vmsup_event_journal_read(const gchar *dir, gint64 since_us, guint64 after_seq);

/* an entry's members */
guint64
vmsup_event_journal_entry_get_seq(JsonObject *entry);
gint64
vmsup_event_journal_entry_get_owner(JsonObject *entry);

/* @time_us as the entries write it: ISO 8601 in UTC, to the microsecond */
gchar *
vmsup_event_journal_format_time(gint64 time_us);

G_END_DECLS
