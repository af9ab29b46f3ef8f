/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Human output of the CLI: aligned tables and labelled fields. Widths are
 * measured in terminal columns, so translated headers line up too.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <stdarg.h>
#include <string.h>

#include "vmsup-cli-format.h"
#include "vmsup-json.h"

struct _VmsupCliTable {
	guint n_columns;
	GStringChunk *text;   /* owned: the text of every cell */
	GPtrArray *cells;     /* of gchar*, unowned (in text): the headers, then row by row */
	gsize *column_widths; /* owned: n_columns, the widest cell of each */
};

static void
vmsup_cli_table_add_cell(VmsupCliTable *table, guint column, const gchar *text)
{
	/* "-" stands for a missing value and needs no copy */
	const gchar *cell = text != NULL ? g_string_chunk_insert(table->text, text) : "-";
	table->column_widths[column] =
	    MAX(table->column_widths[column], vmsup_cli_text_width(cell));
	g_ptr_array_add(table->cells, (gpointer)cell);
}

VmsupCliTable *
vmsup_cli_table_new(const gchar *first_header, ...)
{
	VmsupCliTable *table = g_new0(VmsupCliTable, 1);
	va_list args;

	va_start(args, first_header);
	for (const gchar *h = first_header; h != NULL; h = va_arg(args, const gchar *))
		table->n_columns++;
	va_end(args);
	table->text = g_string_chunk_new(4096);
	table->cells = g_ptr_array_sized_new(table->n_columns * 16);
	table->column_widths = g_new0(gsize, MAX(table->n_columns, 1));
	va_start(args, first_header);
	for (const gchar *h = first_header; h != NULL; h = va_arg(args, const gchar *))
		vmsup_cli_table_add_cell(table, table->cells->len, h);
	va_end(args);
	return table;
}

void
vmsup_cli_table_add_row(VmsupCliTable *table, const gchar *const *cells)
{
	for (guint i = 0; i < table->n_columns; i++)
		vmsup_cli_table_add_cell(table, i, cells[i]);
}

guint
vmsup_cli_table_get_n_rows(VmsupCliTable *table)
{
	return table->n_columns > 0 ? table->cells->len / table->n_columns - 1 : 0;
}

gsize
vmsup_cli_text_width(const gchar *text)
{
	gsize width = 0;
	const gchar *p;

	if (text == NULL)
		return 0;
	/* the common case: ASCII, one column per byte */
	for (p = text; *p != '\0' && (guchar)*p < 0x80; p++)
		;
	if (*p == '\0')
		return p - text;
	if (!g_utf8_validate(text, -1, NULL))
		return strlen(text);
	for (p = text; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (g_unichar_iszerowidth(c))
			continue;
		width += g_unichar_iswide(c) ? 2 : 1;
	}
	return width;
}

static void
vmsup_cli_append_padded(GString *out, const gchar *text, gsize width)
{
	gsize used = vmsup_cli_text_width(text);
	g_string_append(out, text);
	for (gsize i = used; i < width; i++)
		g_string_append_c(out, ' ');
}

gchar *
vmsup_cli_table_to_string(VmsupCliTable *table)
{
	guint n = table->n_columns;
	gsize line = 1;
	GString *out;

	for (guint i = 0; i < n; i++)
		line += table->column_widths[i] + 2;
	out = g_string_sized_new(line * (table->cells->len / MAX(n, 1)) + 1);
	for (guint c = 0; c < table->cells->len; c++) {
		const gchar *cell = g_ptr_array_index(table->cells, c);
		guint column = c % n;
		if (column + 1 < n) {
			vmsup_cli_append_padded(out, cell, table->column_widths[column]);
			g_string_append(out, "  ");
		} else {
			g_string_append(out, cell);
			g_string_append_c(out, '\n');
		}
	}
	return g_string_free(out, FALSE);
}

void
vmsup_cli_table_free(VmsupCliTable *table)
{
	if (table == NULL)
		return;
	g_string_chunk_free(table->text);
	g_ptr_array_unref(table->cells);
	g_free(table->column_widths);
	g_free(table);
}

gchar *
vmsup_cli_format_value(JsonNode *node)
{
	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return g_strdup("-");
	if (JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *array = json_node_get_array(node);
		GString *out = g_string_new(NULL);
		for (guint i = 0; i < json_array_get_length(array); i++) {
			g_autofree gchar *item =
			    vmsup_cli_format_value(json_array_get_element(array, i));
			if (i > 0)
				g_string_append(out, ", ");
			g_string_append(out, item);
		}
		if (out->len == 0)
			g_string_append(out, "-");
		return g_string_free(out, FALSE);
	}
	if (JSON_NODE_HOLDS_OBJECT(node))
		return vmsup_json_to_string(node, FALSE);
	switch (json_node_get_value_type(node)) {
	case G_TYPE_STRING:
		return g_strdup(json_node_get_string(node));
	case G_TYPE_BOOLEAN:
		return g_strdup(json_node_get_boolean(node) ? _("yes") : _("no"));
	case G_TYPE_INT64:
		return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(node));
	case G_TYPE_DOUBLE:
		return g_strdup_printf("%.2f", json_node_get_double(node));
	default:
		return vmsup_json_to_string(node, FALSE);
	}
}

gchar *
vmsup_cli_format_bytes(gint64 bytes)
{
	if (bytes < 0)
		return g_strdup("-");
	return g_format_size_full((guint64)bytes, G_FORMAT_SIZE_IEC_UNITS);
}

gchar *
vmsup_cli_format_duration(gint64 seconds)
{
	gint64 d, h, m, s;

	if (seconds < 0)
		return g_strdup("-");
	d = seconds / 86400;
	h = (seconds % 86400) / 3600;
	m = (seconds % 3600) / 60;
	s = seconds % 60;
	if (d > 0)
		return g_strdup_printf("%" G_GINT64_FORMAT "d %" G_GINT64_FORMAT
				       "h %" G_GINT64_FORMAT "m",
				       d,
				       h,
				       m);
	if (h > 0)
		return g_strdup_printf("%" G_GINT64_FORMAT "h %" G_GINT64_FORMAT "m", h, m);
	if (m > 0)
		return g_strdup_printf("%" G_GINT64_FORMAT "m %" G_GINT64_FORMAT "s", m, s);
	return g_strdup_printf("%" G_GINT64_FORMAT "s", s);
}

gchar *
vmsup_cli_format_fields(JsonObject *obj, const gchar *const *order)
{
	g_autoptr(GPtrArray) keys = g_ptr_array_new();
	g_autoptr(GList) members = json_object_get_members(obj);
	GString *out = g_string_new(NULL);
	gsize width = 0;

	for (guint i = 0; order != NULL && order[i] != NULL; i++) {
		if (json_object_has_member(obj, order[i]))
			g_ptr_array_add(keys, (gpointer)order[i]);
	}
	members = g_list_sort(members, (GCompareFunc)g_strcmp0);
	for (GList *l = members; l != NULL; l = l->next) {
		if (order == NULL || !g_strv_contains(order, l->data))
			g_ptr_array_add(keys, l->data);
	}
	for (guint i = 0; i < keys->len; i++)
		width = MAX(width, vmsup_cli_text_width(g_ptr_array_index(keys, i)) + 1);
	for (guint i = 0; i < keys->len; i++) {
		const gchar *key = g_ptr_array_index(keys, i);
		g_autofree gchar *label = g_strconcat(key, ":", NULL);
		g_autofree gchar *value = vmsup_cli_format_value(json_object_get_member(obj, key));
		vmsup_cli_append_padded(out, label, width + 1);
		g_string_append(out, value);
		g_string_append_c(out, '\n');
	}
	return g_string_free(out, FALSE);
}
