/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmsup-rpc-latency: the round trip of one JSON-RPC method over one Unix
 * socket connection, measured request by request (write the line, read the
 * answer line), printed as one JSON object with percentiles in microseconds.
 * Deliberately free of JSON libraries and main loops, so that what it
 * measures is the daemon, not the client.
 */

#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	gint fd;
	gchar buf[256 * 1024];
	gsize len; /* bytes in buf */
} Conn;

static gint64
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (gint64)ts.tv_sec * G_GINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

static gboolean
conn_open(Conn *conn, const gchar *path, GError **error)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(addr.sun_path)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "socket path too long");
		return FALSE;
	}
	strcpy(addr.sun_path, path);
	conn->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (conn->fd < 0 || connect(conn->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		g_set_error(error,
			    G_IO_ERROR,
			    g_io_error_from_errno(errno),
			    "cannot connect to %s: %s",
			    path,
			    g_strerror(errno));
		return FALSE;
	}
	conn->len = 0;
	return TRUE;
}

static gboolean
conn_write_all(Conn *conn, const gchar *data, gsize len, GError **error)
{
	while (len > 0) {
		gssize n = write(conn->fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			g_set_error(error,
				    G_IO_ERROR,
				    G_IO_ERROR_FAILED,
				    "write: %s",
				    g_strerror(errno));
			return FALSE;
		}
		data += n;
		len -= (gsize)n;
	}
	return TRUE;
}

/* reads one answer line into @out (NUL-terminated, without the newline) */
static gboolean
conn_read_line(Conn *conn, GString *out, GError **error)
{
	for (;;) {
		gchar *nl = memchr(conn->buf, '\n', conn->len);
		gssize n;

		if (nl != NULL) {
			gsize line = (gsize)(nl - conn->buf);
			g_string_truncate(out, 0);
			g_string_append_len(out, conn->buf, (gssize)line);
			memmove(conn->buf, nl + 1, conn->len - line - 1);
			conn->len -= line + 1;
			return TRUE;
		}
		if (conn->len == sizeof(conn->buf)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "answer line too long");
			return FALSE;
		}
		n = read(conn->fd, conn->buf + conn->len, sizeof(conn->buf) - conn->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			g_set_error(error,
				    G_IO_ERROR,
				    G_IO_ERROR_CONNECTION_CLOSED,
				    "the daemon closed the connection");
			return FALSE;
		}
		conn->len += (gsize)n;
	}
}

/* the top-level "id" of an answer line; -1 when there is none */
static gint64
answer_id(const gchar *line)
{
	const gchar *p = strstr(line, "\"id\"");
	if (p == NULL)
		return -1;
	p += 4;
	while (*p == ' ' || *p == ':')
		p++;
	return g_ascii_strtoll(p, NULL, 10);
}

static gint
cmp_int64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a;
	gint64 y = *(const gint64 *)b;
	return (x > y) - (x < y);
}

/* nearest-rank percentile of sorted samples */
static gdouble
percentile_us(GArray *sorted, gdouble p)
{
	guint rank = (guint)(p / 100.0 * sorted->len + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > sorted->len)
		rank = sorted->len;
	return g_array_index(sorted, gint64, rank - 1) / 1000.0;
}

int
main(int argc, char **argv)
{
	g_autofree gchar *opt_socket = NULL;
	g_autofree gchar *opt_method = NULL;
	g_autofree gchar *opt_params = NULL;
	gint opt_count = 2000;
	gint opt_warmup = 100;
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) samples = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_autoptr(GString) request = g_string_new(NULL);
	g_autoptr(GString) answer = g_string_new(NULL);
	gdouble sum_us = 0;
	static Conn conn_storage;
	Conn *conn = &conn_storage;
	const GOptionEntry entries[] = {
	    {"socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_socket, "vmsupd's socket", "PATH"},
	    {"method", 0, 0, G_OPTION_ARG_STRING, &opt_method, "Method (default vm.get)", "NAME"},
	    {"params", 0, 0, G_OPTION_ARG_STRING, &opt_params, "Params as a JSON object", "JSON"},
	    {"count", 'n', 0, G_OPTION_ARG_INT, &opt_count, "Measured round trips", "N"},
	    {"warmup", 0, 0, G_OPTION_ARG_INT, &opt_warmup, "Unmeasured round trips first", "N"},
	    {NULL},
	};

	context = g_option_context_new(NULL);
	g_option_context_set_summary(context,
				     "Measures JSON-RPC round trips to vmsupd on one connection.");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		g_printerr("vmsup-rpc-latency: %s\n", error->message);
		return 2;
	}
	if (opt_socket == NULL || opt_count < 1 || opt_warmup < 0) {
		g_printerr("vmsup-rpc-latency: --socket is required, --count must be positive\n");
		return 2;
	}
	if (!conn_open(conn, opt_socket, &error)) {
		g_printerr("vmsup-rpc-latency: %s\n", error->message);
		return 1;
	}

	for (gint i = 0; i < opt_warmup + opt_count; i++) {
		gint64 t0, t1;
		g_string_printf(request,
				"{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\",\"params\":%s}\n",
				i + 1,
				opt_method != NULL ? opt_method : "vm.get",
				opt_params != NULL ? opt_params : "{}");
		t0 = now_ns();
		if (!conn_write_all(conn, request->str, request->len, &error) ||
		    !conn_read_line(conn, answer, &error)) {
			g_printerr("vmsup-rpc-latency: %s\n", error->message);
			return 1;
		}
		t1 = now_ns();
		/* a wrong id or an error answer is a failed run */
		if (answer_id(answer->str) != i + 1 || strstr(answer->str, "\"result\"") == NULL) {
			g_printerr("vmsup-rpc-latency: unexpected answer: %.300s\n", answer->str);
			return 1;
		}
		if (i >= opt_warmup) {
			gint64 dt = t1 - t0;
			g_array_append_val(samples, dt);
			sum_us += dt / 1000.0;
		}
	}
	close(conn->fd);

	g_array_sort(samples, cmp_int64);
	g_print("{\"count\": %u, \"min_us\": %.1f, \"p50_us\": %.1f, \"p90_us\": %.1f, "
		"\"p99_us\": %.1f, \"max_us\": %.1f, \"mean_us\": %.1f}\n",
		samples->len,
		g_array_index(samples, gint64, 0) / 1000.0,
		percentile_us(samples, 50),
		percentile_us(samples, 90),
		percentile_us(samples, 99),
		g_array_index(samples, gint64, samples->len - 1) / 1000.0,
		sum_us / samples->len);
	return 0;
}
