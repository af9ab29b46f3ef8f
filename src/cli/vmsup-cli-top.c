/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmsup top: every VM with its state, CPU, memory, network, disk and
 * uptime, redrawn in place from events and a periodic vm.stats. Rates are
 * the change of the counters between two samples, so the first frame (and
 * --once) has none.
 */

#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <termios.h>
#include <unistd.h>

#include "vmsup-cli-output.h"
#include "vmsup-cli-progress.h"
#include "vmsup-cli.h"
#include "vmsup-json.h"

#define VMSUP_CLI_TOP_MAX_INTERVAL_S 3600
/* events come in bursts (an operation's stages): one redraw for a burst */
#define VMSUP_CLI_TOP_EVENT_DELAY_MS 200

/* the counters whose change per second is a rate, as vm.stats names them */
static const gchar *const vmsup_cli_top_counters[] = {
    "net_rx_bytes",
    "net_tx_bytes",
    "block_read_bytes",
    "block_write_bytes",
};
#define VMSUP_CLI_TOP_N_COUNTERS G_N_ELEMENTS(vmsup_cli_top_counters)

typedef struct {
	gchar *name;
	gchar *state;
	gdouble cpu_percent; /* < 0: unknown, as every value below */
	gint64 rss_bytes;
	gint64 memory_mib;
	gint64 uptime_s;
	gint64 counters[VMSUP_CLI_TOP_N_COUNTERS];
	gdouble rates[VMSUP_CLI_TOP_N_COUNTERS]; /* bytes per second */
	gint64 sampled_us;                       /* monotonic time of the counters */
} VmsupCliTopRow;

typedef enum {
	VMSUP_CLI_TOP_SORT_NAME,
	VMSUP_CLI_TOP_SORT_STATE,
	VMSUP_CLI_TOP_SORT_CPU,
	VMSUP_CLI_TOP_SORT_MEM,
	VMSUP_CLI_TOP_SORT_NET,
	VMSUP_CLI_TOP_SORT_DISK,
	VMSUP_CLI_TOP_SORT_UPTIME,
	VMSUP_CLI_TOP_N_SORTS,
} VmsupCliTopSort;

/* --sort's words, and the key that sorts by each in the live view */
static const gchar *const vmsup_cli_top_sort_names[] = {
    "name",
    "state",
    "cpu",
    "mem",
    "net",
    "disk",
    "uptime",
};
static const gchar vmsup_cli_top_sort_keys[] = "nscmtdu";

typedef struct {
	VmsupCli *cli;
	VmsupCliTopSort sort;
	GHashTable *previous; /* name -> VmsupCliTopRow of the last frame */
	gboolean quit;
	gboolean refresh;
} VmsupCliTop;

static void
vmsup_cli_top_row_free(VmsupCliTopRow *row)
{
	g_free(row->name);
	g_free(row->state);
	g_free(row);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupCliTopRow, vmsup_cli_top_row_free)

static gboolean
vmsup_cli_top_parse_sort(const gchar *text, VmsupCliTopSort *out)
{
	for (guint i = 0; i < VMSUP_CLI_TOP_N_SORTS; i++) {
		if (g_strcmp0(text, vmsup_cli_top_sort_names[i]) == 0) {
			*out = (VmsupCliTopSort)i;
			return TRUE;
		}
	}
	return FALSE;
}

static gboolean
vmsup_cli_top_is_up(const gchar *state)
{
	return g_strcmp0(state, "running") == 0 || g_strcmp0(state, "paused") == 0 ||
	       g_strcmp0(state, "starting") == 0 || g_strcmp0(state, "stopping") == 0;
}

/* one VM of vm.list, with its vm.stats when it is up; rates against @previous */
static VmsupCliTopRow *
vmsup_cli_top_row_new(VmsupCliTop *top, JsonObject *vm)
{
	VmsupCliTopRow *row = g_new0(VmsupCliTopRow, 1);
	VmsupCliTopRow *before;
	g_autoptr(JsonObject) stats = NULL;

	row->name = g_strdup(vmsup_json_object_get_string(vm, "name", ""));
	row->state = g_strdup(vmsup_json_object_get_string(vm, "state", ""));
	row->memory_mib = vmsup_json_object_get_int(vm, "memory_mib", -1);
	row->cpu_percent = -1;
	row->rss_bytes = -1;
	row->uptime_s = -1;
	for (guint i = 0; i < VMSUP_CLI_TOP_N_COUNTERS; i++) {
		row->counters[i] = -1;
		row->rates[i] = -1;
	}
	if (vmsup_cli_top_is_up(row->state)) {
		g_autoptr(JsonObject) params = vmsup_cli_params_name(row->name);
		/* a VM that stopped in between simply has no figures this time */
		stats =
		    vmsup_jsonrpc_client_call_object(top->cli->client, "vm.stats", params, NULL);
	}
	if (stats == NULL)
		return row;
	row->sampled_us = g_get_monotonic_time();
	row->cpu_percent = vmsup_json_object_get_double(stats, "cpu_percent", -1);
	row->rss_bytes = vmsup_json_object_get_int(stats, "rss_bytes", -1);
	row->uptime_s = vmsup_json_object_get_int(stats, "uptime_s", -1);
	for (guint i = 0; i < VMSUP_CLI_TOP_N_COUNTERS; i++)
		row->counters[i] = vmsup_json_object_get_int(stats, vmsup_cli_top_counters[i], -1);
	before = g_hash_table_lookup(top->previous, row->name);
	if (before == NULL || before->sampled_us == 0 || row->sampled_us <= before->sampled_us)
		return row;
	for (guint i = 0; i < VMSUP_CLI_TOP_N_COUNTERS; i++) {
		if (row->counters[i] >= before->counters[i] && before->counters[i] >= 0)
			row->rates[i] = (gdouble)(row->counters[i] - before->counters[i]) *
					G_USEC_PER_SEC /
					(gdouble)(row->sampled_us - before->sampled_us);
	}
	return row;
}

static gdouble
vmsup_cli_top_sum(gdouble a, gdouble b)
{
	return MAX(a, 0) + MAX(b, 0);
}

/* the sort value of @row: bigger first for figures */
static gdouble
vmsup_cli_top_key(VmsupCliTopSort sort, const VmsupCliTopRow *row)
{
	switch (sort) {
	case VMSUP_CLI_TOP_SORT_CPU:
		return row->cpu_percent;
	case VMSUP_CLI_TOP_SORT_MEM:
		return (gdouble)row->rss_bytes;
	case VMSUP_CLI_TOP_SORT_NET:
		return vmsup_cli_top_sum(row->rates[0], row->rates[1]);
	case VMSUP_CLI_TOP_SORT_DISK:
		return vmsup_cli_top_sum(row->rates[2], row->rates[3]);
	case VMSUP_CLI_TOP_SORT_UPTIME:
		return (gdouble)row->uptime_s;
	default:
		return 0;
	}
}

static gint
vmsup_cli_top_compare(gconstpointer a, gconstpointer b, gpointer user_data)
{
	const VmsupCliTopRow *x = *(const VmsupCliTopRow *const *)a;
	const VmsupCliTopRow *y = *(const VmsupCliTopRow *const *)b;
	VmsupCliTopSort sort = GPOINTER_TO_INT(user_data);
	gdouble kx = vmsup_cli_top_key(sort, x);
	gdouble ky = vmsup_cli_top_key(sort, y);
	gint by_state = g_strcmp0(x->state, y->state);

	if (sort == VMSUP_CLI_TOP_SORT_STATE && by_state != 0)
		return by_state;
	if (kx != ky)
		return kx > ky ? -1 : 1;
	return g_strcmp0(x->name, y->name);
}

/* every VM, sorted; NULL with @error when vmsupd could not be asked */
static GPtrArray *
vmsup_cli_top_sample(VmsupCliTop *top, GError **error)
{
	const gchar *const fields[] = {"name", "state", "memory_mib", NULL};
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonObject) list = NULL;
	g_autoptr(GPtrArray) vms = NULL;
	GPtrArray *rows;

	JsonArray *wanted = json_array_new();

	for (guint i = 0; fields[i] != NULL; i++)
		json_array_add_string_element(wanted, fields[i]);
	json_object_set_array_member(params, "fields", wanted);
	list = vmsup_jsonrpc_client_call_object(top->cli->client, "vm.list", params, error);
	if (list == NULL)
		return NULL;
	vms = vmsup_cli_get_objects(list, "vms");
	rows = g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_cli_top_row_free);
	for (guint i = 0; i < vms->len; i++)
		g_ptr_array_add(rows, vmsup_cli_top_row_new(top, g_ptr_array_index(vms, i)));
	g_ptr_array_sort_with_data(rows, vmsup_cli_top_compare, GINT_TO_POINTER(top->sort));
	/* this frame's counters are the next one's "before" */
	g_hash_table_remove_all(top->previous);
	for (guint i = 0; i < rows->len; i++) {
		VmsupCliTopRow *row = g_ptr_array_index(rows, i);
		VmsupCliTopRow *copy = g_memdup2(row, sizeof(*row));
		copy->name = g_strdup(row->name);
		copy->state = g_strdup(row->state);
		g_hash_table_insert(top->previous, copy->name, copy);
	}
	return rows;
}

/* "1.5 MB/s", "-" when unknown */
static gchar *
vmsup_cli_top_format_rate(gdouble rate)
{
	g_autofree gchar *bytes = NULL;

	if (rate < 0)
		return g_strdup("-");
	bytes = vmsup_cli_format_bytes((gint64)(rate + 0.5));
	/* TRANSLATORS: a rate, "1.5 MB" per second */
	return g_strdup_printf(_("%s/s"), bytes);
}

static gchar *
vmsup_cli_top_render_table(GPtrArray *rows)
{
	g_autoptr(VmsupCliTable) table = vmsup_cli_table_new(_("NAME"),
							     _("STATE"),
							     _("CPU"),
							     _("RSS"),
							     _("MEMORY"),
							     _("NET RX"),
							     _("NET TX"),
							     _("DISK READ"),
							     _("DISK WRITE"),
							     _("UPTIME"),
							     NULL);

	for (guint i = 0; i < rows->len; i++) {
		VmsupCliTopRow *row = g_ptr_array_index(rows, i);
		g_autofree gchar *cpu =
		    row->cpu_percent < 0 ? NULL : g_strdup_printf("%.1f%%", row->cpu_percent);
		g_autofree gchar *rss =
		    row->rss_bytes < 0 ? NULL : vmsup_cli_format_bytes(row->rss_bytes);
		g_autofree gchar *memory =
		    row->memory_mib < 0
			? NULL
			: g_strdup_printf(_("%" G_GINT64_FORMAT " MiB"), row->memory_mib);
		g_autofree gchar *rx = vmsup_cli_top_format_rate(row->rates[0]);
		g_autofree gchar *tx = vmsup_cli_top_format_rate(row->rates[1]);
		g_autofree gchar *rd = vmsup_cli_top_format_rate(row->rates[2]);
		g_autofree gchar *wr = vmsup_cli_top_format_rate(row->rates[3]);
		g_autofree gchar *uptime =
		    row->uptime_s < 0 ? NULL : vmsup_cli_format_duration(row->uptime_s);
		const gchar *cells[] = {row->name,
					vmsup_cli_format_state(row->state),
					cpu,
					rss,
					memory,
					rx,
					tx,
					rd,
					wr,
					uptime};
		vmsup_cli_table_add_row(table, cells);
	}
	return vmsup_cli_table_to_string(table);
}

static JsonNode *
vmsup_cli_top_number(gdouble value, gboolean integral)
{
	JsonNode *node = json_node_new(JSON_NODE_VALUE);

	if (value < 0)
		json_node_init_null(node);
	else if (integral)
		json_node_set_int(node, (gint64)value);
	else
		json_node_set_double(node, value);
	return node;
}

/* --json: the rows as data, rates in bytes per second (null when unknown) */
static void
vmsup_cli_top_print_json(GPtrArray *rows)
{
	g_autoptr(JsonObject) frame = json_object_new();
	JsonArray *vms = json_array_new();

	for (guint i = 0; i < rows->len; i++) {
		VmsupCliTopRow *row = g_ptr_array_index(rows, i);
		JsonObject *vm = json_object_new();
		json_object_set_string_member(vm, "name", row->name);
		json_object_set_string_member(vm, "state", row->state);
		json_object_set_member(vm,
				       "cpu_percent",
				       vmsup_cli_top_number(row->cpu_percent, FALSE));
		json_object_set_member(vm, "rss_bytes", vmsup_cli_top_number(row->rss_bytes, TRUE));
		json_object_set_member(vm,
				       "memory_mib",
				       vmsup_cli_top_number(row->memory_mib, TRUE));
		json_object_set_member(vm, "uptime_s", vmsup_cli_top_number(row->uptime_s, TRUE));
		for (guint c = 0; c < VMSUP_CLI_TOP_N_COUNTERS; c++) {
			g_autofree gchar *rate = g_strdup_printf(
			    "%.*s_per_s",
			    (gint)(strlen(vmsup_cli_top_counters[c]) - strlen("_bytes")),
			    vmsup_cli_top_counters[c]);
			json_object_set_member(vm,
					       vmsup_cli_top_counters[c],
					       vmsup_cli_top_number(row->counters[c], TRUE));
			json_object_set_member(vm,
					       rate,
					       vmsup_cli_top_number(row->rates[c], FALSE));
		}
		json_array_add_object_element(vms, vm);
	}
	json_object_set_array_member(frame, "vms", vms);
	{
		g_autofree gchar *text = vmsup_json_object_to_string(frame, FALSE);
		vmsup_cli_print("%s\n", text);
	}
}

static gchar *
vmsup_cli_top_title(VmsupCliTop *top, GPtrArray *rows)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autofree gchar *time = g_date_time_format(now, "%H:%M:%S");
	guint up = 0;

	for (guint i = 0; i < rows->len; i++)
		up += vmsup_cli_top_is_up(((VmsupCliTopRow *)g_ptr_array_index(rows, i))->state);
	/* TRANSLATORS: the first line of vmsup top; the sort key is one of --sort's words */
	return g_strdup_printf(_("vmsup top  %s  %u VMs, %u up  sorted by %s  "
				 "(sort: n s c m t d u, q quits)"),
			       time,
			       rows->len,
			       up,
			       vmsup_cli_top_sort_names[top->sort]);
}

/* over what is on screen: home, each line then clear to its end, then clear below */
static void
vmsup_cli_top_draw(VmsupCliTop *top, GPtrArray *rows)
{
	g_autofree gchar *title = vmsup_cli_top_title(top, rows);
	g_autofree gchar *table = vmsup_cli_top_render_table(rows);
	g_auto(GStrv) lines = g_strsplit(table, "\n", -1);
	g_autoptr(GString) screen = g_string_new("\033[H");

	g_string_append_printf(screen, "%s\033[K\n\033[K\n", title);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (lines[i][0] == '\0' && lines[i + 1] == NULL)
			break;
		g_string_append_printf(screen, "%s\033[K\n", lines[i]);
	}
	g_string_append(screen, "\033[J");
	vmsup_cli_print_text(screen->str);
}

static gboolean
vmsup_cli_top_quit_cb(gpointer user_data)
{
	VmsupCliTop *top = user_data;

	top->quit = TRUE;
	vmsup_jsonrpc_client_cancel(top->cli->client);
	return G_SOURCE_CONTINUE;
}

/* a key: q quits, one of vmsup_cli_top_sort_keys sorts */
static gboolean
vmsup_cli_top_key_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	VmsupCliTop *top = user_data;
	gchar key = 0;

	if (read(fd, &key, 1) != 1 || key == 'q' || key == 'Q') {
		top->quit = TRUE;
	} else {
		for (guint i = 0; i < VMSUP_CLI_TOP_N_SORTS; i++) {
			if (g_ascii_tolower(key) == vmsup_cli_top_sort_keys[i] &&
			    top->sort != (VmsupCliTopSort)i) {
				top->sort = (VmsupCliTopSort)i;
				top->refresh = TRUE;
			}
		}
	}
	if (top->quit || top->refresh)
		vmsup_jsonrpc_client_cancel(top->cli->client);
	return G_SOURCE_CONTINUE;
}

/* until q, Ctrl-C or SIGTERM: a frame each interval, and soon after events */
static gint
vmsup_cli_top_live(VmsupCliTop *top, gint interval_s)
{
	struct termios saved;
	gboolean raw = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	guint sigint_id = g_unix_signal_add(SIGINT, vmsup_cli_top_quit_cb, top);
	guint sigterm_id = g_unix_signal_add(SIGTERM, vmsup_cli_top_quit_cb, top);
	guint key_id = 0;
	g_autoptr(JsonObject) subscribed = NULL;
	g_autoptr(GError) failure = NULL;
	gint64 next = 0;

	if (raw) {
		struct termios keys = saved;
		keys.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		keys.c_cc[VMIN] = 1;
		keys.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &keys);
		key_id = g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP, vmsup_cli_top_key_cb, top);
	}
	/* the alternate screen, cursor hidden: the user's scrollback stays as it was */
	vmsup_cli_print_text("\033[?1049h\033[?25l");
	/* without events a frame each interval is still right, only later */
	subscribed =
	    vmsup_jsonrpc_client_call_object(top->cli->client, "events.subscribe", NULL, NULL);
	while (!top->quit && failure == NULL) {
		g_autoptr(JsonObject) event = NULL;
		gint64 now = g_get_monotonic_time();

		if (top->refresh || now >= next) {
			g_autoptr(GPtrArray) rows = vmsup_cli_top_sample(top, &failure);
			if (rows == NULL)
				break;
			vmsup_cli_top_draw(top, rows);
			top->refresh = FALSE;
			next = g_get_monotonic_time() + (gint64)interval_s * G_USEC_PER_SEC;
			continue;
		}
		event = vmsup_jsonrpc_client_next_notification(top->cli->client,
							       (gint)((next - now) / 1000) + 1,
							       &failure);
		/* a burst of events is one frame, a little later */
		if (event != NULL)
			next = MIN(next, now + VMSUP_CLI_TOP_EVENT_DELAY_MS * 1000);
		/* a wait given up for a key or a signal is no failure; a lost daemon is */
		if (failure != NULL && (top->quit || top->refresh))
			g_clear_error(&failure);
	}
	vmsup_cli_print_text("\033[?25h\033[?1049l");
	if (raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		g_source_remove(key_id);
	}
	g_source_remove(sigint_id);
	g_source_remove(sigterm_id);
	/* on the user's own screen again, where the message stays */
	if (failure != NULL)
		return vmsup_cli_report_error(top->cli, failure);
	return VMSUP_CLI_EXIT_OK;
}

gint
vmsup_cli_top(VmsupCli *cli, gint argc, gchar **argv)
{
	g_autofree gchar *sort = NULL;
	gint interval_s = 2;
	gboolean once = FALSE;
	gint rc = VMSUP_CLI_EXIT_OK;
	VmsupCliTop top = {cli, VMSUP_CLI_TOP_SORT_NAME, NULL, FALSE, FALSE};
	const GOptionEntry entries[] = {
	    {"sort",
	     0,
	     0,
	     G_OPTION_ARG_STRING,
	     &sort,
	     N_("Sort by name, state, cpu, mem, net, disk or uptime (default: name)"),
	     N_("KEY")},
	    {"interval",
	     0,
	     0,
	     G_OPTION_ARG_INT,
	     &interval_s,
	     N_("Seconds between refreshes (default: 2)"),
	     N_("SECONDS")},
	    {"once", 0, 0, G_OPTION_ARG_NONE, &once, N_("Print one frame and exit"), NULL},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;

	if (!vmsup_cli_parse(cli,
			     &argc,
			     &argv,
			     NULL,
			     N_("Show every VM's state, CPU, memory, network, disk and uptime, "
				"refreshed"),
			     entries,
			     0,
			     NULL,
			     &rc))
		return rc;
	if (sort != NULL && !vmsup_cli_top_parse_sort(sort, &top.sort)) {
		g_autofree gchar *message = g_strdup_printf(
		    _("Cannot sort by '%s': use name, state, cpu, mem, net, disk or uptime"),
		    sort);
		return vmsup_cli_usage_error(cli, message);
	}
	if (interval_s < 1 || interval_s > VMSUP_CLI_TOP_MAX_INTERVAL_S) {
		g_autofree gchar *message =
		    g_strdup_printf(_("--interval takes 1 to %d seconds, not %d"),
				    VMSUP_CLI_TOP_MAX_INTERVAL_S,
				    interval_s);
		return vmsup_cli_usage_error(cli, message);
	}
	if (!vmsup_cli_connect(cli, &rc))
		return rc;
	top.previous = g_hash_table_new_full(g_str_hash,
					     g_str_equal,
					     NULL,
					     (GDestroyNotify)vmsup_cli_top_row_free);
	/* scripts, pipes and dumb terminals get one plain frame */
	if (!once && !cli->json && vmsup_cli_progress_can_draw(STDOUT_FILENO)) {
		rc = vmsup_cli_top_live(&top, interval_s);
		g_hash_table_unref(top.previous);
		return rc;
	}
	rows = vmsup_cli_top_sample(&top, &error);
	g_hash_table_unref(top.previous);
	if (rows == NULL)
		return vmsup_cli_report_error(cli, error);
	if (cli->json) {
		vmsup_cli_top_print_json(rows);
	} else {
		g_autofree gchar *table = vmsup_cli_top_render_table(rows);
		vmsup_cli_print_text(table);
	}
	return rc;
}
