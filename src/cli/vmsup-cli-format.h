/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* a table with aligned columns, sized by the display width of its cells */
typedef struct _VmsupCliTable VmsupCliTable;

VmsupCliTable *
vmsup_cli_table_new(const gchar *first_header, ...) G_GNUC_NULL_TERMINATED;
/* exactly one cell per header; NULL cells print as "-" */
void
vmsup_cli_table_add_row(VmsupCliTable *table, const gchar *const *cells);
guint
vmsup_cli_table_get_n_rows(VmsupCliTable *table);
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

/*
 * "label:  value" lines, one per member of @obj, labels aligned; members
 * named in @order (NULL-terminated, may be NULL) come first in that order,
 * then the rest sorted.
 */
gchar *
vmsup_cli_format_fields(JsonObject *obj, const gchar *const *order);

G_END_DECLS
