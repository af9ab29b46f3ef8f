/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* a table with aligned columns, sized by the display width of its cells */
typedef struct _VmsupCliTable VmsupCliTable;

/* a column a table view can show: @name for -o, @header translated (N_()) */
typedef struct {
	const gchar *name;
	const gchar *header;
} VmsupCliColumn;

VmsupCliTable *
vmsup_cli_table_new(const gchar *first_header, ...) G_GNUC_NULL_TERMINATED;
/*
 * A table of the @columns (NULL-name-terminated) named in @spec ("name,state",
 * in that order, repeats allowed), or all of them for a NULL @spec. Rows
 * still take one cell per entry of @columns; the table picks. NULL with
 * @error (G_OPTION_ERROR_BAD_VALUE) naming the valid columns for a bad @spec.
 */
VmsupCliTable *
vmsup_cli_table_new_columns(const VmsupCliColumn *columns, const gchar *spec, GError **error);
/* exactly one cell per header (per column, for vmsup_cli_table_new_columns()); NULL: "-" */
void
vmsup_cli_table_add_row(VmsupCliTable *table, const gchar *const *cells);
guint
vmsup_cli_table_get_n_rows(VmsupCliTable *table);
/* the names of @columns, joined by ", " */
gchar *
vmsup_cli_columns_describe(const VmsupCliColumn *columns);
/* which of the @columns it was made with column @i shows */
guint
vmsup_cli_table_get_n_columns(VmsupCliTable *table);
guint
vmsup_cli_table_get_source(VmsupCliTable *table, guint i);
/* the header line is left out with @headers FALSE */
void
vmsup_cli_table_set_headers(VmsupCliTable *table, gboolean headers);
gchar *
vmsup_cli_table_to_string(VmsupCliTable *table);
void
vmsup_cli_table_free(VmsupCliTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupCliTable, vmsup_cli_table_free)

/* terminal columns @text takes: wide characters count twice, combining marks not at all */
gsize
vmsup_cli_text_width(const gchar *text);

/* a JSON value as people read it: strings bare, booleans yes/no, arrays joined by ", " */
gchar *
vmsup_cli_format_value(JsonNode *node);

/* "1.5 GB"-style sizes and "2d 3h 4m"-style durations */
gchar *
vmsup_cli_format_bytes(gint64 bytes);
gchar *
vmsup_cli_format_duration(gint64 seconds);

/* a state or status of vmsupd ("running", "degraded", ...) in the user's language */
const gchar *
vmsup_cli_format_state(const gchar *state);

/* how a labelled view shows a member's value */
typedef enum {
	VMSUP_CLI_VALUE_PLAIN,    /* vmsup_cli_format_value() */
	VMSUP_CLI_VALUE_STATE,    /* vmsup_cli_format_state() */
	VMSUP_CLI_VALUE_MIB,      /* "256 MiB" */
	VMSUP_CLI_VALUE_BYTES,    /* vmsup_cli_format_bytes() */
	VMSUP_CLI_VALUE_PERCENT,  /* "12.5 %" */
	VMSUP_CLI_VALUE_SECONDS,  /* vmsup_cli_format_duration() */
	VMSUP_CLI_VALUE_MS,       /* "1.2 ms" */
	VMSUP_CLI_VALUE_GIB,      /* "4 GiB" */
	VMSUP_CLI_VALUE_FRACTION, /* 0..1 as "35%" */
	VMSUP_CLI_VALUE_CGROUP,   /* {"mode", "detail" or "path"} as "v2: /sys/fs/cgroup/..." */
} VmsupCliValueKind;

/* a member of a labelled view: its @label translated (N_()) */
typedef struct {
	const gchar *member;
	const gchar *label;
	VmsupCliValueKind kind;
} VmsupCliField;

/* the value of @node as @kind shows it; "-" for null */
gchar *
vmsup_cli_format_value_as(JsonNode *node, VmsupCliValueKind kind);

/*
 * "Label:  value" lines, labels aligned: first the members of @obj named in
 * @fields (NULL-member-terminated, may be NULL), in that order, with their
 * labels; then the rest sorted, labelled by their member names, so that a
 * member newer than this vmsup still shows.
 */
gchar *
vmsup_cli_format_fields(JsonObject *obj, const VmsupCliField *fields);

G_END_DECLS
