/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The event journal: what happened while nobody listened. No fsync: a
 * write() that returned is the kernel's, so a killed or crashed vmsupd
 * loses nothing; only a crash of the host itself can lose the last few
 * entries, which costs a diagnostic record, never a VM. An fsync per event
 * would put a disk flush on every state change and progress step.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsup-event-journal.h"
#include "vmsup-json.h"

struct _VmsupEventJournal {
	GObject parent_instance;
	gchar *dir;
	gchar *path;
	gchar *previous_path;
	gsize max_bytes;
	gint fd; /* -1: not open, nothing is written */
	gsize size;
	guint64 last_seq;
};

G_DEFINE_FINAL_TYPE(VmsupEventJournal, vmsup_event_journal, G_TYPE_OBJECT)

/* fixed width, so that stamps compare as text: 2026-12-07T18:00:00.000000Z */
gchar *
vmsup_event_journal_format_time(gint64 time_us)
{
	g_autoptr(GDateTime) when =
	    time_us >= 0 ? g_date_time_new_from_unix_utc(time_us / G_USEC_PER_SEC) : NULL;
	g_autofree gchar *seconds = NULL;

	if (when == NULL)
		return g_strdup("1970-01-01T00:00:00.000000Z");
	seconds = g_date_time_format(when, "%Y-%m-%dT%H:%M:%S");
	return g_strdup_printf("%s.%06dZ", seconds, (gint)(time_us % G_USEC_PER_SEC));
}

#define VMSUP_EVENT_JOURNAL_STAMP_LENGTH (sizeof("1970-01-01T00:00:00.000000Z") - 1)

/* where a line as append() writes it has its stamp: {"seq":N,"time":"... */
static const gchar *
vmsup_event_journal_line_time(const gchar *line, gsize length)
{
	static const gchar key[] = "\"time\":\"";
	const gchar *found = g_strstr_len(line, MIN(length, 64), key);

	if (found == NULL ||
	    (gsize)(found - line) + strlen(key) + VMSUP_EVENT_JOURNAL_STAMP_LENGTH > length)
		return NULL;
	return found + strlen(key);
}

guint64
vmsup_event_journal_entry_get_seq(JsonObject *entry)
{
	gint64 seq = vmsup_json_object_get_int(entry, "seq", 0);
	return seq > 0 ? (guint64)seq : 0;
}

gint64
vmsup_event_journal_entry_get_owner(JsonObject *entry)
{
	return vmsup_json_object_get_int(entry, "owner", VMSUP_EVENT_JOURNAL_NO_OWNER);
}

/* an entry, or NULL for a line that is not one (torn, or not ours) */
static JsonObject *
vmsup_event_journal_parse_line(const gchar *line, gsize length)
{
	g_autoptr(JsonObject) entry = vmsup_json_parse_object(line, (gssize)length, NULL);
	JsonNode *params;

	if (entry == NULL || vmsup_event_journal_entry_get_seq(entry) == 0 ||
	    vmsup_json_object_get_string(entry, "method", NULL) == NULL)
		return NULL;
	params = json_object_get_member(entry, "params");
	if (params == NULL || !JSON_NODE_HOLDS_OBJECT(params))
		return NULL;
	return g_steal_pointer(&entry);
}

/*
 * The entries of one file stamped at or after @since (a stamp, compared as
 * text before anything is parsed); only lines ended by '\n' count, as the
 * last one may be torn.
 */
static void
vmsup_event_journal_read_file(const gchar *path,
			      const gchar *since,
			      guint64 after_seq,
			      GPtrArray *entries)
{
	g_autofree gchar *data = NULL;
	gsize length = 0;
	const gchar *line;
	const gchar *end;

	if (!g_file_get_contents(path, &data, &length, NULL))
		return;
	for (line = data; (end = memchr(line, '\n', length - (gsize)(line - data))) != NULL;
	     line = end + 1) {
		g_autoptr(JsonObject) entry = NULL;
		const gchar *stamp = vmsup_event_journal_line_time(line, (gsize)(end - line));

		if (stamp == NULL || strncmp(stamp, since, VMSUP_EVENT_JOURNAL_STAMP_LENGTH) < 0)
			continue;
		entry = vmsup_event_journal_parse_line(line, (gsize)(end - line));
		if (entry == NULL || vmsup_event_journal_entry_get_seq(entry) <= after_seq)
			continue;
		g_ptr_array_add(entries, g_steal_pointer(&entry));
	}
}

/* the number of the last whole entry of @path, read from its end; 0: none */
static guint64
vmsup_event_journal_file_last_seq(const gchar *path)
{
	g_autofree gchar *data = NULL;
	gsize length = 0;
	gsize end;

	if (!g_file_get_contents(path, &data, &length, NULL))
		return 0;
	/* past the last '\n' is a torn line, or nothing */
	for (end = length; end > 0 && data[end - 1] != '\n'; end--)
		;
	while (end > 0) {
		gsize start = end - 1;
		g_autoptr(JsonObject) entry = NULL;

		while (start > 0 && data[start - 1] != '\n')
			start--;
		entry = vmsup_event_journal_parse_line(data + start, end - 1 - start);
		if (entry != NULL)
			return vmsup_event_journal_entry_get_seq(entry);
		end = start;
	}
	return 0;
}

GPtrArray *
vmsup_event_journal_read(const gchar *dir, gint64 since_us, guint64 after_seq)
{
	g_autofree gchar *path = g_build_filename(dir, VMSUP_EVENT_JOURNAL_FILE, NULL);
	g_autofree gchar *previous = g_build_filename(dir, VMSUP_EVENT_JOURNAL_PREVIOUS_FILE, NULL);
	g_autofree gchar *since = vmsup_event_journal_format_time(MAX(since_us, 0));
	GPtrArray *entries = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);

	g_return_val_if_fail(dir != NULL, entries);
	vmsup_event_journal_read_file(previous, since, after_seq, entries);
	vmsup_event_journal_read_file(path, since, after_seq, entries);
	return entries;
}

static gboolean
vmsup_event_journal_open(VmsupEventJournal *self)
{
	struct stat st;
	gchar last = '\n';

	self->fd = g_open(self->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (self->fd < 0 || fstat(self->fd, &st) != 0) {
		g_warning("Cannot open the event journal %s: %s; events are not kept",
			  self->path,
			  g_strerror(errno));
		if (self->fd >= 0)
			close(self->fd);
		self->fd = -1;
		return FALSE;
	}
	self->size = (gsize)st.st_size;
	/* a line torn by a crash is ended, so the next entry starts a line of its own */
	if (self->size > 0) {
		gint rfd = g_open(self->path, O_RDONLY | O_CLOEXEC, 0);
		if (rfd >= 0) {
			if (pread(rfd, &last, 1, (off_t)self->size - 1) != 1)
				last = '\n';
			close(rfd);
		}
	}
	if (last != '\n' && write(self->fd, "\n", 1) == 1)
		self->size++;
	return TRUE;
}

static void
vmsup_event_journal_rotate(VmsupEventJournal *self)
{
	if (self->fd >= 0)
		close(self->fd);
	self->fd = -1;
	if (g_rename(self->path, self->previous_path) != 0)
		g_warning("Cannot rotate the event journal %s: %s; starting it anew",
			  self->path,
			  g_strerror(errno));
	/* should the rename have failed, the old file is truncated: the bound holds either way */
	(void)g_unlink(self->path);
	vmsup_event_journal_open(self);
}

guint64
vmsup_event_journal_append(VmsupEventJournal *self,
			   gint64 time_us,
			   const gchar *method,
			   JsonObject *params,
			   gint64 owner)
{
	g_autoptr(JsonObject) entry = json_object_new();
	g_autofree gchar *time = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *line = NULL;
	gsize length;
	gssize written;

	g_return_val_if_fail(VMSUP_IS_EVENT_JOURNAL(self), 0);
	g_return_val_if_fail(method != NULL, 0);
	g_return_val_if_fail(params != NULL, 0);

	self->last_seq++;
	time = vmsup_event_journal_format_time(time_us);
	json_object_set_int_member(entry, "seq", (gint64)self->last_seq);
	json_object_set_string_member(entry, "time", time);
	json_object_set_string_member(entry, "method", method);
	json_object_set_int_member(entry, "owner", owner);
	json_object_set_object_member(entry, "params", json_object_ref(params));
	text = vmsup_json_object_to_string(entry, FALSE);
	line = g_strconcat(text, "\n", NULL);
	length = strlen(line);

	if (self->fd >= 0 && self->size > 0 && self->size + length > self->max_bytes)
		vmsup_event_journal_rotate(self);
	if (self->fd < 0)
		return self->last_seq;
	written = write(self->fd, line, length);
	if (written < 0) {
		g_warning("Cannot write to the event journal %s: %s",
			  self->path,
			  g_strerror(errno));
		return self->last_seq;
	}
	self->size += (gsize)written;
	return self->last_seq;
}

const gchar *
vmsup_event_journal_get_dir(VmsupEventJournal *self)
{
	g_return_val_if_fail(VMSUP_IS_EVENT_JOURNAL(self), NULL);
	return self->dir;
}

guint64
vmsup_event_journal_get_last_seq(VmsupEventJournal *self)
{
	g_return_val_if_fail(VMSUP_IS_EVENT_JOURNAL(self), 0);
	return self->last_seq;
}

static void
vmsup_event_journal_finalize(GObject *object)
{
	VmsupEventJournal *self = VMSUP_EVENT_JOURNAL(object);

	if (self->fd >= 0)
		close(self->fd);
	g_free(self->dir);
	g_free(self->path);
	g_free(self->previous_path);
	G_OBJECT_CLASS(vmsup_event_journal_parent_class)->finalize(object);
}

static void
vmsup_event_journal_class_init(VmsupEventJournalClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = vmsup_event_journal_finalize;
}

static void
vmsup_event_journal_init(VmsupEventJournal *self)
{
	self->fd = -1;
}

VmsupEventJournal *
vmsup_event_journal_new(const gchar *dir, gsize max_bytes)
{
	VmsupEventJournal *self;

	g_return_val_if_fail(dir != NULL, NULL);

	self = g_object_new(VMSUP_TYPE_EVENT_JOURNAL, NULL);
	self->dir = g_strdup(dir);
	self->path = g_build_filename(dir, VMSUP_EVENT_JOURNAL_FILE, NULL);
	self->previous_path = g_build_filename(dir, VMSUP_EVENT_JOURNAL_PREVIOUS_FILE, NULL);
	self->max_bytes = max_bytes > 0 ? max_bytes : VMSUP_EVENT_JOURNAL_DEFAULT_MAX_BYTES;
	self->last_seq = vmsup_event_journal_file_last_seq(self->path);
	if (self->last_seq == 0)
		self->last_seq = vmsup_event_journal_file_last_seq(self->previous_path);
	vmsup_event_journal_open(self);
	return self;
}
