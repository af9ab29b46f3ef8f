/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <gio/gio.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-name.h"

static void
test_name_valid(void)
{
	const gchar *good[] = {"a", "web1", "a.b_c-d", "0vm", NULL};
	for (guint i = 0; good[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;
		g_assert_true(vmsup_name_validate(good[i], "VM", &error));
		g_assert_no_error(error);
	}
}

static void
test_name_hostile(void)
{
	g_autofree gchar *long_name = g_strnfill(4096, 'a');
	g_autofree gchar *max_plus_one = g_strnfill(VMSUP_NAME_MAX_LENGTH + 1, 'a');
	g_autofree gchar *max = g_strnfill(VMSUP_NAME_MAX_LENGTH, 'a');
	const gchar *bad[] = {"",
			      "../x",
			      "a,b",
			      "A",
			      "-a",
			      ".a",
			      "a b",
			      "a/b",
			      "a=b",
			      "é",
			      "a\n",
			      long_name,
			      max_plus_one,
			      NULL};
	for (guint i = 0; bad[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;
		g_assert_false(vmsup_name_validate(bad[i], "VM", &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	}
	g_assert_false(vmsup_name_validate(NULL, "VM", NULL));
	g_assert_true(vmsup_name_validate(max, "VM", NULL));
}

static void
test_error_kinds(void)
{
	for (gint code = VMSUP_ERROR_NOT_FOUND; code < VMSUP_ERROR_LAST; code++) {
		const gchar *kind = vmsup_error_to_kind(code);
		g_assert_cmpint(vmsup_error_from_kind(kind), ==, code);
	}
	g_assert_cmpstr(vmsup_error_to_kind(999), ==, "internal");
	g_assert_cmpint(vmsup_error_from_kind("nope"), ==, -1);
	g_assert_cmpstr(vmsup_error_to_kind(VMSUP_ERROR_PARSE), ==, "parse-error");
	g_assert_cmpstr(vmsup_error_to_kind(VMSUP_ERROR_INVALID_PARAMS), ==, "invalid-params");
	g_assert_cmpstr(vmsup_error_to_kind(VMSUP_ERROR_CONNECT), ==, "connect");
	g_assert_cmpstr(vmsup_error_to_kind(VMSUP_ERROR_INTERRUPTED), ==, "cancelled");
	g_assert_cmpstr(vmsup_error_to_kind(VMSUP_ERROR_CLOSED), ==, "internal");
	/* the protocol's codes are not request failures a kind could name */
	g_assert_cmpint(vmsup_error_from_kind("invalid-params"), ==, -1);
}

static void
test_error_dbus_names(void)
{
	g_autoptr(GError) error = g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND, "x");
	g_autofree gchar *name = g_dbus_error_encode_gerror(error);
	g_assert_cmpstr(name, ==, "io.github.vmsup.Error.NotFound");
}

static void
test_error_convert(void)
{
	g_autoptr(GError) io = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "slow");
	g_autoptr(GError) qmp = g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_CLOSED, "gone");
	g_autoptr(GError) file = g_error_new_literal(G_FILE_ERROR, G_FILE_ERROR_NOENT, "missing");
	vmsup_error_convert(&io);
	vmsup_error_convert(&qmp);
	vmsup_error_convert(&file);
	g_assert_error(io, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT);
	g_assert_error(qmp, VMSUP_ERROR, VMSUP_ERROR_FAILED_PRECONDITION);
	g_assert_error(file, VMSUP_ERROR, VMSUP_ERROR_NOT_FOUND);
	g_assert_cmpstr(io->message, ==, "slow");
}

static void
test_error_wire_codes(void)
{
	g_autoptr(GError) command = g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_COMMAND, "x");
	g_autoptr(GError) params =
	    g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS, "x");
	g_autoptr(GError) busy = g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_BUSY, "x");
	g_autoptr(GError) foreign =
	    g_error_new_literal(G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "x");

	g_assert_cmpint(vmsup_error_get_code(command), ==, VMSUP_ERROR_INTERNAL);
	g_assert_cmpint(vmsup_error_get_code(params), ==, -32602);
	g_assert_cmpint(vmsup_error_get_code(busy), ==, 4);
	g_assert_cmpint(vmsup_error_get_code(foreign), ==, VMSUP_ERROR_INVALID_ARGUMENT);
	g_assert_cmpint(vmsup_error_get_code(NULL), ==, VMSUP_ERROR_INTERNAL);
	g_assert_cmpstr(vmsup_error_get_kind(command), ==, "internal");
	g_assert_false(vmsup_error_is_wire(command));
	g_assert_true(vmsup_error_is_wire(params));
	g_assert_true(vmsup_error_is_wire(busy));
	g_assert_false(vmsup_error_is_wire(foreign));
	/* a wire code goes through a conversion unchanged */
	vmsup_error_convert(&params);
	g_assert_error(params, VMSUP_ERROR, VMSUP_ERROR_INVALID_PARAMS);
	vmsup_error_convert(&command);
	g_assert_error(command, VMSUP_ERROR, VMSUP_ERROR_INTERNAL);
	g_assert_cmpstr(command->message, ==, "x");
}

static void
test_error_from_qemu(void)
{
	g_autoptr(JsonNode) object =
	    vmsup_json_parse("{\"class\":\"DeviceNotFound\",\"desc\":\"no such disk\"}", -1, NULL);
	g_autoptr(JsonNode) number = vmsup_json_parse("7", -1, NULL);
	g_autoptr(GError) error = vmsup_error_new_from_qemu("query-block", object);
	g_autoptr(GError) garbage = vmsup_error_new_from_qemu("guest-ping", number);

	/* QEMU's own words, kept */
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_COMMAND);
	g_assert_cmpstr(error->message, ==, "query-block: DeviceNotFound: no such disk");
	/* an error member that is not an object is still an error, never a crash */
	g_assert_error(garbage, VMSUP_ERROR, VMSUP_ERROR_COMMAND);
	g_assert_cmpstr(garbage->message, ==, "guest-ping: GenericError: unknown error");
}

static void
test_json_parse(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) obj =
	    vmsup_json_parse_object("{\"a\":1,\"b\":\"x\",\"c\":null}", -1, &error);
	g_autoptr(JsonObject) arr = NULL;
	g_autofree gchar *out = NULL;

	g_assert_no_error(error);
	g_assert_cmpint(vmsup_json_object_get_int(obj, "a", 0), ==, 1);
	g_assert_cmpstr(vmsup_json_object_get_string(obj, "b", NULL), ==, "x");
	g_assert_cmpstr(vmsup_json_object_get_string(obj, "c", "dflt"), ==, "dflt");
	g_assert_cmpstr(vmsup_json_object_get_string(obj, "a", "dflt"), ==, "dflt");
	out = vmsup_json_object_to_string(obj, FALSE);
	g_assert_null(strchr(out, '\n'));

	arr = vmsup_json_parse_object("[1]", -1, &error);
	g_assert_null(arr);
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_null(vmsup_json_parse("{\"a\":", -1, &error));
	g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
}

/* what json-glib's scanner would take or mangle, and what strict JSON still allows */
static void
test_json_strict(void)
{
	const gchar *const refused[] = {
	    "{\"a\":0x10}",
	    "{\"a\":010}",
	    "{\"a\":0b1}",
	    "{\"a\":-0x10}",
	    "{\"a\":00}",
	    "{\"a\":.5}",
	    "{\"a\":1.}",
	    "{\"a\":1.5.3}",
	    "{\"a\":1e}",
	    "{\"a\":+5}",
	    "{'a':1}",
	    "{\"a\":1}/*c*/",
	    "{\"a\":1} 5",
	    "{\"a\":1} {\"b\":2}",
	    "[1] [2]",
	    "{\"a\":\"\\x41\"}",
	    "{\"a\":\"\\'\"}",
	    "{\"a\":\"\t\"}",
	    "{\"a\":\"\\ud800\"}",
	    "{\"a\":\"\\udc00\"}",
	    "{\"a\":\"\\u12\"}",
	    "{\"a\":NaN}",
	    "{\"a\":truex}",
	    "[1,]",
	    "{\"a\":1,}",
	    "",
	    "  ",
	    "{\"a\"}",
	};
	const gchar *const accepted[] = {
	    "{\"a\":-0}",
	    "{\"a\":0e5}",
	    "{\"a\":1E+2}",
	    "{\"a\":1e-400}",
	    "{\"a\":0.5}",
	    " [true,false,null] \r\n",
	    "\"\\ud83d\\ude00\\n\\/\"",
	    "{\"a\":-9223372036854775808,\"b\":9223372036854775807}",
	};
	for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) problems = NULL;
		g_test_message("refused: %s", refused[i]);
		g_assert_false(vmsup_json_check_text(refused[i],
						     strlen(refused[i]),
						     VMSUP_JSON_CHECK_NONE,
						     &problems,
						     &error));
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, "at byte "));
		g_assert_null(problems);
	}
	for (guint i = 0; i < G_N_ELEMENTS(accepted); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) node = NULL;
		g_test_message("accepted: %s", accepted[i]);
		node = vmsup_json_parse(accepted[i], -1, &error);
		g_assert_no_error(error);
		g_assert_nonnull(node);
	}
}

/* JSON that C would mangle: listed with where it is, refused by vmsup_json_parse() */
static void
test_json_problems(void)
{
	const struct {
		const gchar *text;
		gint element;
		const gchar *path;
		const gchar *message;
	} cases[] = {
	    {"{\"a\":[1,{\"b\":\"x\\u0000y\"}]}", -1, "a[1].b", "NUL"},
	    {"{\"id\":1e400}", -1, "id", "1e400"},
	    {"{\"id\":123456789012345678901234567890}", -1, "id", "64 bits"},
	    {"{\"a\":9223372036854775808}", -1, "a", "64 bits"},
	    {"{\"a\":-9223372036854775809}", -1, "a", "64 bits"},
	    {"[{\"ok\":1},{\"p\":{\"n\":\"\\u0000\"}}]", 1, "p.n", "NUL"},
	    {"{\"k\\u0000\":1}", -1, "k\\u0000", "member name"},
	    {"\"\\u0000\"", -1, "", "NUL"},
	};
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) problems = NULL;
		g_autoptr(JsonNode) node = NULL;
		VmsupJsonProblem *problem;

		g_test_message("problem: %s", cases[i].text);
		node = vmsup_json_parse_checked(cases[i].text,
						-1,
						VMSUP_JSON_CHECK_NONE,
						&problems,
						&error);
		g_assert_no_error(error);
		g_assert_nonnull(problems);
		g_assert_cmpuint(problems->len, ==, 1);
		problem = g_ptr_array_index(problems, 0);
		g_assert_cmpint(problem->element, ==, cases[i].element);
		g_assert_cmpstr(problem->path, ==, cases[i].path);
		g_assert_nonnull(strstr(problem->message, cases[i].message));
		g_clear_pointer(&node, json_node_unref);
		node = vmsup_json_parse(cases[i].text, -1, &error);
		g_assert_null(node);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, cases[i].message));
	}
	/* QEMU's uint64 values pass where the caller says so */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonObject) obj =
		    vmsup_json_parse_object_full("{\"limit\":18446744073709551615}",
						 -1,
						 VMSUP_JSON_CHECK_WIDE_INTEGERS,
						 &error);
		g_assert_no_error(error);
		g_assert_nonnull(obj);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
	g_test_add_func("/vmsup/common/name/valid", test_name_valid);
	g_test_add_func("/vmsup/common/name/hostile", test_name_hostile);
	g_test_add_func("/vmsup/common/error/kinds", test_error_kinds);
	g_test_add_func("/vmsup/common/error/dbus-names", test_error_dbus_names);
	g_test_add_func("/vmsup/common/error/convert", test_error_convert);
	g_test_add_func("/vmsup/common/error/wire-codes", test_error_wire_codes);
	g_test_add_func("/vmsup/common/error/from-qemu", test_error_from_qemu);
	g_test_add_func("/vmsup/common/json/parse", test_json_parse);
	g_test_add_func("/vmsup/common/json/strict", test_json_strict);
	g_test_add_func("/vmsup/common/json/problems", test_json_problems);
	return g_test_run();
}
