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
	guint *pick; /* owned: n_columns, the row cell each column shows */
	gboolean headers;
	GStringChunk *text; /* owned: the text of every cell */
	GPtrArray *cells;   /* of gchar*, unowned (in text): the headers, then row by row */
};

static void
vmsup_cli_table_add_cell(VmsupCliTable *table, const gchar *text)
{
	/* "-" stands for a missing value and needs no copy */
	const gchar *cell = text != NULL ? g_string_chunk_insert(table->text, text) : "-";
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
	table->pick = g_new0(guint, MAX(table->n_columns, 1));
	table->headers = TRUE;
	for (guint i = 0; i < table->n_columns; i++)
		table->pick[i] = i;
	va_start(args, first_header);
	for (const gchar *h = first_header; h != NULL; h = va_arg(args, const gchar *))
		vmsup_cli_table_add_cell(table, h);
	va_end(args);
	return table;
}

gchar *
vmsup_cli_columns_describe(const VmsupCliColumn *columns)
{
	GString *out = g_string_new(NULL);
	for (guint i = 0; columns[i].name != NULL; i++) {
		if (i > 0)
			g_string_append(out, ", ");
		g_string_append(out, columns[i].name);
	}
	return g_string_free(out, FALSE);
}

VmsupCliTable *
vmsup_cli_table_new_columns(const VmsupCliColumn *columns, const gchar *spec, GError **error)
{
	g_autoptr(GArray) picked = g_array_new(FALSE, FALSE, sizeof(guint));
	VmsupCliTable *table;
	guint n_all = 0;

	while (columns[n_all].name != NULL)
		n_all++;
	if (spec == NULL) {
		for (guint i = 0; i < n_all; i++)
			g_array_append_val(picked, i);
	} else {
		g_auto(GStrv) names = g_strsplit(spec, ",", -1);
		for (guint i = 0; names[i] != NULL; i++) {
			g_autofree gchar *name = g_strstrip(g_ascii_strdown(names[i], -1));
			guint c;
			for (c = 0; c < n_all && g_strcmp0(columns[c].name, name) != 0; c++)
				;
			if (c == n_all) {
				g_autofree gchar *valid = vmsup_cli_columns_describe(columns);
				g_set_error(
				    error,
				    G_OPTION_ERROR,
				    G_OPTION_ERROR_BAD_VALUE,
				    _("Unknown column '%s' for --output: the columns are %s"),
				    name,
				    valid);
				return NULL;
			}
			g_array_append_val(picked, c);
		}
	}
	if (picked->len == 0) {
		g_autofree gchar *valid = vmsup_cli_columns_describe(columns);
		g_set_error(error,
			    G_OPTION_ERROR,
			    G_OPTION_ERROR_BAD_VALUE,
			    _("No column given for --output: the columns are %s"),
			    valid);
		return NULL;
	}
	table = g_new0(VmsupCliTable, 1);
	table->n_columns = picked->len;
	table->text = g_string_chunk_new(4096);
	table->cells = g_ptr_array_sized_new(table->n_columns * 16);
	table->pick = (guint *)g_array_free(g_steal_pointer(&picked), FALSE);
	table->headers = TRUE;
	for (guint i = 0; i < table->n_columns; i++)
		vmsup_cli_table_add_cell(table, _(columns[table->pick[i]].header));
	return table;
}

guint
vmsup_cli_table_get_n_columns(VmsupCliTable *table)
{
	return table->n_columns;
}

guint
vmsup_cli_table_get_source(VmsupCliTable *table, guint i)
{
	g_return_val_if_fail(i < table->n_columns, 0);
	return table->pick[i];
}

void
vmsup_cli_table_set_headers(VmsupCliTable *table, gboolean headers)
{
	table->headers = headers;
}

void
vmsup_cli_table_add_row(VmsupCliTable *table, const gchar *const *cells)
{
	for (guint i = 0; i < table->n_columns; i++)
		vmsup_cli_table_add_cell(table, cells[table->pick[i]]);
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

	guint first = table->headers ? 0 : n;
	g_autofree gsize *widths = g_new0(gsize, MAX(n, 1));

	/* without the headers, columns are as wide as their values alone */
	for (guint c = first; c < table->cells->len; c++)
		widths[c % n] =
		    MAX(widths[c % n], vmsup_cli_text_width(g_ptr_array_index(table->cells, c)));
	for (guint i = 0; i < n; i++)
		line += widths[i] + 2;
	out = g_string_sized_new(line * (table->cells->len / MAX(n, 1)) + 1);
	for (guint c = first; c < table->cells->len; c++) {
		const gchar *cell = g_ptr_array_index(table->cells, c);
		guint column = c % n;
		if (column + 1 < n) {
			vmsup_cli_append_padded(out, cell, widths[column]);
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
	g_free(table->pick);
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

const gchar *
vmsup_cli_format_state(const gchar *state)
{
	/* the words of vmsupd's VM, operation and health states */
	static const struct {
		const gchar *state;
		const gchar *words;
	} states[] = {
	    /* TRANSLATORS: the state of a VM that has never run */
	    {"defined", NC_("state", "defined")},
	    {"starting", NC_("state", "starting")},
	    {"running", NC_("state", "running")},
	    {"paused", NC_("state", "paused")},
	    {"stopping", NC_("state", "stopping")},
	    {"stopped", NC_("state", "stopped")},
	    {"crashed", NC_("state", "crashed")},
	    /* TRANSLATORS: the state of an operation that has ended well */
	    {"done", NC_("state", "done")},
	    {"failed", NC_("state", "failed")},
	    {"cancelled", NC_("state", "cancelled")},
	    /* TRANSLATORS: a health status: everything answers */
	    {"ok", NC_("state", "ok")},
	    /* TRANSLATORS: a health status: QEMU runs, its guest agent does not answer */
	    {"degraded", NC_("state", "degraded")},
	    /* TRANSLATORS: a health status: QEMU or its monitor does not answer */
	    {"down", NC_("state", "down")},
	    {"unknown", NC_("state", "unknown")},
	};

	for (guint i = 0; state != NULL && i < G_N_ELEMENTS(states); i++) {
		if (strcmp(states[i].state, state) == 0)
			return g_dpgettext2(GETTEXT_PACKAGE, "state", states[i].words);
	}
	return state != NULL ? state : "-";
}

gchar *
vmsup_cli_format_value_as(JsonNode *node, VmsupCliValueKind kind)
{
	GType type;

	if (kind == VMSUP_CLI_VALUE_CGROUP && node != NULL && JSON_NODE_HOLDS_OBJECT(node)) {
		JsonObject *cgroup = json_node_get_object(node);
		const gchar *mode = vmsup_json_object_get_string(cgroup, "mode", "-");
		const gchar *detail = vmsup_json_object_get_string(cgroup, "detail", NULL);
		if (detail == NULL)
			detail = vmsup_json_object_get_string(cgroup, "path", NULL);
		return detail != NULL ? g_strdup_printf("%s: %s", mode, detail) : g_strdup(mode);
	}
	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
		return vmsup_cli_format_value(node);
	type = json_node_get_value_type(node);
	if (kind == VMSUP_CLI_VALUE_STATE && type == G_TYPE_STRING)
		return g_strdup(vmsup_cli_format_state(json_node_get_string(node)));
	if (type != G_TYPE_INT64 && type != G_TYPE_DOUBLE)
		return vmsup_cli_format_value(node);
	switch (kind) {
	case VMSUP_CLI_VALUE_MIB:
		/* TRANSLATORS: an amount of memory */
		return g_strdup_printf(_("%lld MiB"), (long long)json_node_get_int(node));
	case VMSUP_CLI_VALUE_GIB:
		/* TRANSLATORS: a size of a disk */
		return g_strdup_printf(_("%lld GiB"), (long long)json_node_get_int(node));
	case VMSUP_CLI_VALUE_BYTES:
		return vmsup_cli_format_bytes(json_node_get_int(node));
	case VMSUP_CLI_VALUE_PERCENT:
		return g_strdup_printf("%.1f %%", json_node_get_double(node));
	case VMSUP_CLI_VALUE_SECONDS:
		return vmsup_cli_format_duration((gint64)json_node_get_double(node));
	case VMSUP_CLI_VALUE_MS:
		/* TRANSLATORS: a time in milliseconds */
		return g_strdup_printf(_("%.1f ms"), json_node_get_double(node));
	case VMSUP_CLI_VALUE_FRACTION:
		return g_strdup_printf("%d%%", (gint)(json_node_get_double(node) * 100 + 0.5));
	case VMSUP_CLI_VALUE_PLAIN:
	case VMSUP_CLI_VALUE_STATE:
	case VMSUP_CLI_VALUE_CGROUP:
	default:
		return vmsup_cli_format_value(node);
	}
}

gchar *
vmsup_cli_format_fields(JsonObject *obj, const VmsupCliField *fields)
{
	g_autoptr(GPtrArray) labels = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GList) members = json_object_get_members(obj);
	GString *out = g_string_new(NULL);
	gsize width = 0;

	for (guint i = 0; fields != NULL && fields[i].member != NULL; i++) {
		JsonNode *node = json_object_get_member(obj, fields[i].member);
		if (node == NULL)
			continue;
		g_ptr_array_add(labels, g_strconcat(_(fields[i].label), ":", NULL));
		g_ptr_array_add(values, vmsup_cli_format_value_as(node, fields[i].kind));
	}
	members = g_list_sort(members, (GCompareFunc)g_strcmp0);
	for (GList *l = members; l != NULL; l = l->next) {
		gboolean labelled = FALSE;
		for (guint i = 0; fields != NULL && fields[i].member != NULL && !labelled; i++)
			labelled = g_strcmp0(fields[i].member, l->data) == 0;
		if (labelled)
			continue;
		g_ptr_array_add(labels, g_strconcat(l->data, ":", NULL));
		g_ptr_array_add(values,
				vmsup_cli_format_value(json_object_get_member(obj, l->data)));
	}
	for (guint i = 0; i < labels->len; i++)
		width = MAX(width, vmsup_cli_text_width(g_ptr_array_index(labels, i)));
	for (guint i = 0; i < labels->len; i++) {
		vmsup_cli_append_padded(out, g_ptr_array_index(labels, i), width + 1);
		g_string_append(out, g_ptr_array_index(values, i));
		g_string_append_c(out, '\n');
	}
	return g_string_free(out, FALSE);
}
