/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Counters and histograms kept between scrapes, and the text exposition
 * format they are written in. A series is found by its rendered label set,
 * so a counter costs one string and one hash lookup per update.
 */

#include "config.h"

#include <math.h>

#include "vmsup-metrics.h"

static const gdouble vmsup_metrics_buckets[] = {
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
};
#define VMSUP_METRICS_N_BUCKETS G_N_ELEMENTS(vmsup_metrics_buckets)

typedef enum {
	VMSUP_METRICS_COUNTER,
	VMSUP_METRICS_HISTOGRAM,
} VmsupMetricsKind;

typedef struct {
	gchar **labels; /* name, value pairs */
	gdouble value;  /* a counter's value; a histogram's sum */
	guint64 count;
	guint64 buckets[VMSUP_METRICS_N_BUCKETS];
} VmsupMetricsSeries;

typedef struct {
	VmsupMetricsKind kind;
	gchar *help;
	GHashTable *series; /* rendered labels -> VmsupMetricsSeries */
} VmsupMetricsFamily;

struct _VmsupMetrics {
	GObject parent_instance;
	GHashTable *families; /* name -> VmsupMetricsFamily */
	GString *scratch;
};

G_DEFINE_FINAL_TYPE(VmsupMetrics, vmsup_metrics, G_TYPE_OBJECT)

static void
vmsup_metrics_series_free(gpointer data)
{
	VmsupMetricsSeries *series = data;
	g_strfreev(series->labels);
	g_free(series);
}

static void
vmsup_metrics_family_free(gpointer data)
{
	VmsupMetricsFamily *family = data;
	g_free(family->help);
	g_hash_table_unref(family->series);
	g_free(family);
}

void
vmsup_metrics_write_labels(GString *out, const gchar *const *labels)
{
	if (labels == NULL || labels[0] == NULL)
		return;
	g_string_append_c(out, '{');
	for (guint i = 0; labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
		if (i > 0)
			g_string_append_c(out, ',');
		g_string_append(out, labels[i]);
		g_string_append(out, "=\"");
		for (const gchar *p = labels[i + 1]; *p != '\0'; p++) {
			if (*p == '\\')
				g_string_append(out, "\\\\");
			else if (*p == '"')
				g_string_append(out, "\\\"");
			else if (*p == '\n')
				g_string_append(out, "\\n");
			else
				g_string_append_c(out, *p);
		}
		g_string_append_c(out, '"');
	}
	g_string_append_c(out, '}');
}

/* the shortest of 15 or 17 digits that reads back as @value: 0.0005, not 0.00050000000000000001 */
static const gchar *
vmsup_metrics_format_double(gchar *buf, gsize size, gdouble value)
{
	g_ascii_formatd(buf, size, "%.15g", value);
	if (g_ascii_strtod(buf, NULL) != value)
		g_ascii_formatd(buf, size, "%.17g", value);
	return buf;
}

static void
vmsup_metrics_write_value(GString *out, gdouble value)
{
	gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

	if (isnan(value))
		g_string_append(out, "NaN");
	else if (isinf(value))
		g_string_append(out, value > 0 ? "+Inf" : "-Inf");
	else if (ABS(value) < 1e15 && value == (gdouble)(gint64)value)
		g_string_append_printf(out, "%" G_GINT64_FORMAT, (gint64)value);
	else
		g_string_append(out, vmsup_metrics_format_double(buf, sizeof(buf), value));
}

void
vmsup_metrics_write_family(GString *out, const gchar *family, const gchar *type, const gchar *help)
{
	g_string_append_printf(out, "# HELP %s ", family);
	/* HELP escapes only \ and newline */
	for (const gchar *p = help; *p != '\0'; p++) {
		if (*p == '\\')
			g_string_append(out, "\\\\");
		else if (*p == '\n')
			g_string_append(out, "\\n");
		else
			g_string_append_c(out, *p);
	}
	g_string_append_printf(out, "\n# TYPE %s %s\n", family, type);
}

void
vmsup_metrics_write_sample(GString *out,
			   const gchar *name,
			   const gchar *const *labels,
			   gdouble value)
{
	g_string_append(out, name);
	vmsup_metrics_write_labels(out, labels);
	g_string_append_c(out, ' ');
	vmsup_metrics_write_value(out, value);
	g_string_append_c(out, '\n');
}

static VmsupMetricsSeries *
vmsup_metrics_lookup(VmsupMetrics *self,
		     const gchar *name,
		     VmsupMetricsKind kind,
		     const gchar *help,
		     const gchar *const *labels)
{
	VmsupMetricsFamily *family = g_hash_table_lookup(self->families, name);
	VmsupMetricsSeries *series;

	if (family == NULL) {
		family = g_new0(VmsupMetricsFamily, 1);
		family->kind = kind;
		family->help = g_strdup(help);
		family->series = g_hash_table_new_full(g_str_hash,
						       g_str_equal,
						       g_free,
						       vmsup_metrics_series_free);
		g_hash_table_insert(self->families, g_strdup(name), family);
	}
	g_return_val_if_fail(family->kind == kind, NULL);

	g_string_truncate(self->scratch, 0);
	vmsup_metrics_write_labels(self->scratch, labels);
	series = g_hash_table_lookup(family->series, self->scratch->str);
	if (series == NULL) {
		series = g_new0(VmsupMetricsSeries, 1);
		series->labels = g_strdupv((gchar **)labels);
		g_hash_table_insert(family->series, g_strdup(self->scratch->str), series);
	}
	return series;
}

void
vmsup_metrics_counter_add(VmsupMetrics *self,
			  const gchar *family,
			  const gchar *help,
			  const gchar *const *labels,
			  gdouble amount)
{
	VmsupMetricsSeries *series;

	g_return_if_fail(VMSUP_IS_METRICS(self));
	series = vmsup_metrics_lookup(self, family, VMSUP_METRICS_COUNTER, help, labels);
	if (series != NULL)
		series->value += amount;
}

void
vmsup_metrics_observe_seconds(VmsupMetrics *self,
			      const gchar *family,
			      const gchar *help,
			      const gchar *const *labels,
			      gdouble seconds)
{
	VmsupMetricsSeries *series;

	g_return_if_fail(VMSUP_IS_METRICS(self));
	series = vmsup_metrics_lookup(self, family, VMSUP_METRICS_HISTOGRAM, help, labels);
	if (series == NULL)
		return;
	series->value += seconds;
	series->count++;
	for (guint i = 0; i < VMSUP_METRICS_N_BUCKETS; i++)
		if (seconds <= vmsup_metrics_buckets[i])
			series->buckets[i]++;
}

/* the labels of @series and le="@le" */
static void
vmsup_metrics_write_bucket(GString *out,
			   const gchar *name,
			   VmsupMetricsSeries *series,
			   const gchar *le,
			   guint64 count)
{
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	g_auto(GStrv) labels = NULL;

	g_strv_builder_addv(builder, (const gchar **)series->labels);
	g_strv_builder_add_many(builder, "le", le, NULL);
	labels = g_strv_builder_end(builder);
	vmsup_metrics_write_sample(out, name, (const gchar *const *)labels, (gdouble)count);
}

static void
vmsup_metrics_render_histogram(GString *out, const gchar *name, VmsupMetricsSeries *series)
{
	g_autofree gchar *bucket = g_strconcat(name, "_bucket", NULL);
	g_autofree gchar *sum = g_strconcat(name, "_sum", NULL);
	g_autofree gchar *count = g_strconcat(name, "_count", NULL);
	gchar le[G_ASCII_DTOSTR_BUF_SIZE];

	for (guint i = 0; i < VMSUP_METRICS_N_BUCKETS; i++)
		vmsup_metrics_write_bucket(
		    out,
		    bucket,
		    series,
		    vmsup_metrics_format_double(le, sizeof(le), vmsup_metrics_buckets[i]),
		    series->buckets[i]);
	vmsup_metrics_write_bucket(out, bucket, series, "+Inf", series->count);
	vmsup_metrics_write_sample(out, sum, (const gchar *const *)series->labels, series->value);
	vmsup_metrics_write_sample(out,
				   count,
				   (const gchar *const *)series->labels,
				   (gdouble)series->count);
}

static gint
vmsup_metrics_compare_str(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

/* the keys of @table, sorted: a scrape reads the same order each time */
static const gchar **
vmsup_metrics_sorted_keys(GHashTable *table, guint *out_n)
{
	const gchar **keys = (const gchar **)g_hash_table_get_keys_as_array(table, out_n);
	qsort(keys, *out_n, sizeof(gchar *), vmsup_metrics_compare_str);
	return keys;
}

void
vmsup_metrics_render(VmsupMetrics *self, GString *out)
{
	g_autofree const gchar **names = NULL;
	guint n_names = 0;

	g_return_if_fail(VMSUP_IS_METRICS(self));
	names = vmsup_metrics_sorted_keys(self->families, &n_names);
	for (guint i = 0; i < n_names; i++) {
		VmsupMetricsFamily *family = g_hash_table_lookup(self->families, names[i]);
		g_autofree const gchar **keys = NULL;
		guint n_keys = 0;

		vmsup_metrics_write_family(out,
					   names[i],
					   family->kind == VMSUP_METRICS_COUNTER ? "counter"
										 : "histogram",
					   family->help);
		keys = vmsup_metrics_sorted_keys(family->series, &n_keys);
		for (guint j = 0; j < n_keys; j++) {
			VmsupMetricsSeries *series = g_hash_table_lookup(family->series, keys[j]);
			if (family->kind == VMSUP_METRICS_COUNTER)
				vmsup_metrics_write_sample(out,
							   names[i],
							   (const gchar *const *)series->labels,
							   series->value);
			else
				vmsup_metrics_render_histogram(out, names[i], series);
		}
	}
}

static void
vmsup_metrics_finalize(GObject *object)
{
	VmsupMetrics *self = VMSUP_METRICS(object);

	g_hash_table_unref(self->families);
	g_string_free(self->scratch, TRUE);
	G_OBJECT_CLASS(vmsup_metrics_parent_class)->finalize(object);
}

static void
vmsup_metrics_class_init(VmsupMetricsClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = vmsup_metrics_finalize;
}

static void
vmsup_metrics_init(VmsupMetrics *self)
{
	self->families =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, vmsup_metrics_family_free);
	self->scratch = g_string_new(NULL);
}

VmsupMetrics *
vmsup_metrics_new(void)
{
	return g_object_new(VMSUP_TYPE_METRICS, NULL);
}
