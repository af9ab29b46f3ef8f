/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The text check run before json-glib sees a byte. json-glib's scanner is
 * GScanner, which reads far more than JSON (hex and octal numbers, comments,
 * single quotes, "\x" escapes) and turns what JSON allows but C cannot hold
 * into something else without a word: "\u0000" ends a C string early, 1e400
 * becomes infinity, an integer past 64 bits wraps, a second value on the
 * line is dropped. This walks the RFC 8259 grammar once, refuses what is not
 * JSON, and lists the values vmsupd could not take as sent, with where they are.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vmsup-error.h"
#include "vmsup-json-check.h"

typedef struct {
	const gchar *data;
	gsize length;
	gsize pos;
	VmsupJsonCheckFlags flags;
	GString *path;       /* of the value being read, relative to its element */
	gint element;        /* of a top-level array, -1 outside one */
	GPtrArray *problems; /* of VmsupJsonProblem */
	GError **error;
} VmsupJsonCheck;

void
vmsup_json_problem_free(VmsupJsonProblem *problem)
{
	g_free(problem->path);
	g_free(problem->message);
	g_free(problem);
}

static gboolean
vmsup_json_check_fail(VmsupJsonCheck *c, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

static gboolean
vmsup_json_check_fail(VmsupJsonCheck *c, const gchar *format, ...)
{
	g_autofree gchar *what = NULL;
	va_list args;

	va_start(args, format);
	what = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error(c->error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    /* TRANSLATORS: "at byte 12: a number must be decimal ..." */
		    _("at byte %zu: %s"),
		    c->pos + 1,
		    what);
	return FALSE;
}

static void
vmsup_json_check_problem(VmsupJsonCheck *c, const gchar *message)
{
	VmsupJsonProblem *problem;

	if (c->problems->len >= VMSUP_JSON_MAX_PROBLEMS)
		return;
	problem = g_new0(VmsupJsonProblem, 1);
	problem->element = c->element;
	problem->path = g_strdup(c->path->str);
	problem->message = g_strdup(message);
	g_ptr_array_add(c->problems, problem);
}

static void
vmsup_json_check_skip_ws(VmsupJsonCheck *c)
{
	while (c->pos < c->length) {
		gchar ch = c->data[c->pos];
		if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
			return;
		c->pos++;
	}
}

static gint
vmsup_json_check_peek(VmsupJsonCheck *c)
{
	return c->pos < c->length ? (guchar)c->data[c->pos] : -1;
}

static gboolean
vmsup_json_check_value(VmsupJsonCheck *c, guint depth);

/* four hex digits after "\u"; -1 if they are not there */
static gint
vmsup_json_check_hex4(VmsupJsonCheck *c)
{
	gint value = 0;

	if (c->length - c->pos < 4)
		return -1;
	for (guint i = 0; i < 4; i++) {
		gint digit = g_ascii_xdigit_value(c->data[c->pos + i]);
		if (digit < 0)
			return -1;
		value = value * 16 + digit;
	}
	c->pos += 4;
	return value;
}

static gboolean
vmsup_json_check_string(VmsupJsonCheck *c, gboolean *out_has_nul)
{
	gboolean has_nul = FALSE;

	c->pos++; /* the opening quote */
	for (;;) {
		gint ch = vmsup_json_check_peek(c);
		if (ch < 0)
			return vmsup_json_check_fail(c, _("a string is not closed"));
		if (ch == '"') {
			c->pos++;
			break;
		}
		if (ch < 0x20)
			return vmsup_json_check_fail(
			    c,
			    _("a control character (0x%02x) in a string must be written as an "
			      "escape such as \\n or \\u%04x"),
			    (guint)ch,
			    (guint)ch);
		if (ch != '\\') {
			c->pos++;
			continue;
		}
		c->pos++;
		ch = vmsup_json_check_peek(c);
		if (ch > 0 && strchr("\"\\/bfnrt", ch) != NULL) {
			c->pos++;
			continue;
		}
		if (ch == 'u') {
			gint unit;
			c->pos++;
			unit = vmsup_json_check_hex4(c);
			if (unit < 0)
				return vmsup_json_check_fail(
				    c,
				    _("\\u must be followed by four hex digits"));
			if (unit == 0)
				has_nul = TRUE;
			if (unit >= 0xdc00 && unit <= 0xdfff)
				return vmsup_json_check_fail(
				    c,
				    _("a lone low surrogate in \\u escapes"));
			if (unit >= 0xd800 && unit <= 0xdbff) {
				gint low = -1;
				if (c->length - c->pos >= 2 && c->data[c->pos] == '\\' &&
				    c->data[c->pos + 1] == 'u') {
					c->pos += 2;
					low = vmsup_json_check_hex4(c);
				}
				if (low < 0xdc00 || low > 0xdfff)
					return vmsup_json_check_fail(
					    c,
					    _("a high surrogate in \\u escapes without its low "
					      "half"));
			}
			continue;
		}
		return vmsup_json_check_fail(
		    c,
		    _("'\\%c' is not a JSON escape; JSON has \\\" \\\\ \\/ \\b \\f \\n \\r \\t and "
		      "\\uXXXX"),
		    ch > 0x20 && ch < 0x7f ? ch : '?');
	}
	*out_has_nul = has_nul;
	return TRUE;
}

#define VMSUP_JSON_CHECK_DECIMAL                                                                   \
	_("a number must be decimal digits without leading zeros (0x10, 010 and 0b1 are not "      \
	  "JSON)")

static gsize
vmsup_json_check_digits(VmsupJsonCheck *c)
{
	gsize start = c->pos;
	while (c->pos < c->length && g_ascii_isdigit(c->data[c->pos]))
		c->pos++;
	return c->pos - start;
}

static gboolean
vmsup_json_check_number(VmsupJsonCheck *c)
{
	gsize start = c->pos;
	gboolean integer = TRUE;
	g_autofree gchar *text = NULL;

	if (vmsup_json_check_peek(c) == '-')
		c->pos++;
	if (vmsup_json_check_peek(c) == '0') {
		c->pos++;
		if (c->pos < c->length && g_ascii_isdigit(c->data[c->pos]))
			return vmsup_json_check_fail(c, VMSUP_JSON_CHECK_DECIMAL);
	} else if (vmsup_json_check_digits(c) == 0) {
		return vmsup_json_check_fail(c, _("a number must start with a digit"));
	}
	if (vmsup_json_check_peek(c) == '.') {
		integer = FALSE;
		c->pos++;
		if (vmsup_json_check_digits(c) == 0)
			return vmsup_json_check_fail(c, _("a digit must follow the decimal point"));
	}
	if (vmsup_json_check_peek(c) == 'e' || vmsup_json_check_peek(c) == 'E') {
		integer = FALSE;
		c->pos++;
		if (vmsup_json_check_peek(c) == '+' || vmsup_json_check_peek(c) == '-')
			c->pos++;
		if (vmsup_json_check_digits(c) == 0)
			return vmsup_json_check_fail(c, _("a digit must follow the exponent"));
	}
	if (c->pos < c->length && (g_ascii_isalnum(c->data[c->pos]) || c->data[c->pos] == '_'))
		return vmsup_json_check_fail(c, VMSUP_JSON_CHECK_DECIMAL);
	if (c->pos < c->length && c->data[c->pos] == '.')
		return vmsup_json_check_fail(c, _("a number has a second '.'"));

	text = g_strndup(c->data + start, c->pos - start);
	if (integer) {
		gint64 value;
		if (c->flags & VMSUP_JSON_CHECK_WIDE_INTEGERS)
			return TRUE;
		if (!g_ascii_string_to_signed(text, 10, G_MININT64, G_MAXINT64, &value, NULL)) {
			g_autofree gchar *message = g_strdup_printf(
			    _("the integer %.40s does not fit in 64 bits (from %" PRId64
			      " to %" PRId64 "); send one in that range"),
			    text,
			    G_MININT64,
			    G_MAXINT64);
			vmsup_json_check_problem(c, message);
		}
	} else if (!isfinite(g_ascii_strtod(text, NULL))) {
		g_autofree gchar *message =
		    g_strdup_printf(_("the number %.40s is too large to hold; send a smaller one"),
				    text);
		vmsup_json_check_problem(c, message);
	}
	return TRUE;
}

static gboolean
vmsup_json_check_literal(VmsupJsonCheck *c)
{
	static const gchar *const literals[] = {"true", "false", "null"};

	for (guint i = 0; i < G_N_ELEMENTS(literals); i++) {
		gsize len = strlen(literals[i]);
		if (c->length - c->pos >= len && memcmp(c->data + c->pos, literals[i], len) == 0 &&
		    (c->pos + len == c->length || !g_ascii_isalnum(c->data[c->pos + len]))) {
			c->pos += len;
			return TRUE;
		}
	}
	return vmsup_json_check_fail(c,
				     _("expected a value: an object, an array, a string in double "
				       "quotes, a number, true, false or null"));
}

static gboolean
vmsup_json_check_container(VmsupJsonCheck *c, guint depth, gboolean object)
{
	gchar close = object ? '}' : ']';
	gsize path_len = c->path->len;
	guint index = 0;

	if (depth >= VMSUP_JSON_MAX_DEPTH)
		return vmsup_json_check_fail(c,
					     _("JSON nested deeper than %d levels"),
					     VMSUP_JSON_MAX_DEPTH);
	c->pos++;
	vmsup_json_check_skip_ws(c);
	if (vmsup_json_check_peek(c) == close) {
		c->pos++;
		return TRUE;
	}
	for (;; index++) {
		/* elements of the top-level array are numbered apart: a batch of requests */
		gboolean element = !object && depth == 0;

		if (element)
			c->element = index;
		if (object) {
			gboolean has_nul = FALSE;
			gsize key_start = c->pos + 1;
			if (vmsup_json_check_peek(c) != '"')
				return vmsup_json_check_fail(
				    c,
				    _("expected a member name in double quotes"));
			if (!vmsup_json_check_string(c, &has_nul))
				return FALSE;
			if (c->path->len > 0)
				g_string_append_c(c->path, '.');
			g_string_append_len(c->path, c->data + key_start, c->pos - 1 - key_start);
			if (has_nul)
				vmsup_json_check_problem(c,
							 _("a member name contains a NUL character "
							   "(\\u0000); remove it"));
			vmsup_json_check_skip_ws(c);
			if (vmsup_json_check_peek(c) != ':')
				return vmsup_json_check_fail(c,
							     _("expected ':' after a member name"));
			c->pos++;
		} else if (!element) {
			g_string_append_printf(c->path, "[%u]", index);
		}
		vmsup_json_check_skip_ws(c);
		if (!vmsup_json_check_value(c, depth + 1))
			return FALSE;
		g_string_truncate(c->path, path_len);
		vmsup_json_check_skip_ws(c);
		if (vmsup_json_check_peek(c) == close) {
			c->pos++;
			if (element)
				c->element = -1;
			return TRUE;
		}
		if (vmsup_json_check_peek(c) != ',')
			return vmsup_json_check_fail(c,
						     object ? _("expected ',' or '}' in an object")
							    : _("expected ',' or ']' in an array"));
		c->pos++;
		vmsup_json_check_skip_ws(c);
	}
}

static gboolean
vmsup_json_check_value(VmsupJsonCheck *c, guint depth)
{
	gint ch = vmsup_json_check_peek(c);

	if (ch == '{' || ch == '[')
		return vmsup_json_check_container(c, depth, ch == '{');
	if (ch == '"') {
		gboolean has_nul = FALSE;
		if (!vmsup_json_check_string(c, &has_nul))
			return FALSE;
		if (has_nul)
			vmsup_json_check_problem(c,
						 _("it contains a NUL character (\\u0000), "
						   "which no name, path or text may "
						   "hold; remove it"));
		return TRUE;
	}
	if (ch == '-' || (ch >= '0' && ch <= '9'))
		return vmsup_json_check_number(c);
	if (ch < 0)
		return vmsup_json_check_fail(c, _("the JSON text ends before its value does"));
	return vmsup_json_check_literal(c);
}

gboolean
vmsup_json_check_text(const gchar *data,
		      gsize length,
		      VmsupJsonCheckFlags flags,
		      GPtrArray **out_problems,
		      GError **error)
{
	g_autoptr(GString) path = g_string_new(NULL);
	g_autoptr(GPtrArray) problems =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_json_problem_free);
	VmsupJsonCheck c = {
	    .data = data,
	    .length = length,
	    .flags = flags,
	    .path = path,
	    .element = -1,
	    .problems = problems,
	    .error = error,
	};

	vmsup_json_check_skip_ws(&c);
	if (c.pos == c.length)
		return vmsup_json_check_fail(&c, _("no JSON value"));
	if (!vmsup_json_check_value(&c, 0))
		return FALSE;
	vmsup_json_check_skip_ws(&c);
	if (c.pos < c.length)
		return vmsup_json_check_fail(
		    &c,
		    _("more than one JSON value; send one per line (a batch "
		      "is one array)"));
	if (out_problems != NULL)
		*out_problems = g_steal_pointer(&problems);
	return TRUE;
}
