/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Both ways through the D-Bus converters. The first byte picks the way:
 *
 * - even: the rest is JSON, as a service answers (with strings a guest or
 *   QEMU put there); it becomes a{sv} (or aa{sv} for an array) through the
 *   hand-written GVariant serialiser, which must produce data in normal
 *   form that reads back the same when GLib checks every offset, with one
 *   entry per non-null member.
 * - odd: the rest is the serialised arguments of a call to a method picked
 *   by the second byte, as a hostile D-Bus peer sends them; they become the
 *   table's params, are dispatched against a context without services, and
 *   the answer must be a well-formed reply or a set error.
 */

#include "config.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmsup-dbus-variant.h"
#include "vmsup-json.h"
#include "vmsup-rpc-call.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the serialiser's output, read back by GLib without trusting it */
static void
check_serialised(GVariant *value, const GVariantType *type)
{
	g_autoptr(GVariant) reread = NULL;

	g_assert_true(g_variant_is_of_type(value, type));
	reread = g_variant_new_from_data(type,
					 g_variant_get_data(value),
					 g_variant_get_size(value),
					 /* trusted= */ FALSE,
					 NULL,
					 NULL);
	g_assert_true(g_variant_is_normal_form(reread));
	g_assert_true(g_variant_equal(reread, value));
}

static guint
count_non_null(JsonObject *object)
{
	JsonObjectIter iter;
	JsonNode *node;
	guint n = 0;

	json_object_iter_init(&iter, object);
	while (json_object_iter_next(&iter, NULL, &node))
		if (!JSON_NODE_HOLDS_NULL(node))
			n++;
	return n;
}

static void
fuzz_json_to_variant(const gchar *text, gsize length)
{
	g_autoptr(JsonNode) root = vmsup_json_parse(text, length, NULL);
	g_autoptr(GVariant) value = NULL;

	if (root == NULL)
		return;
	if (JSON_NODE_HOLDS_OBJECT(root)) {
		JsonObject *object = json_node_get_object(root);
		value = g_variant_ref_sink(vmsup_dbus_variant_from_json_object(object));
		check_serialised(value, G_VARIANT_TYPE_VARDICT);
		/* duplicate members collapse in json-glib already: one entry each */
		g_assert_cmpuint(g_variant_n_children(value), ==, count_non_null(object));
	} else if (JSON_NODE_HOLDS_ARRAY(root)) {
		JsonArray *array = json_node_get_array(root);
		guint objects = 0;
		value = g_variant_ref_sink(vmsup_dbus_variant_from_json_objects(array));
		check_serialised(value, G_VARIANT_TYPE("aa{sv}"));
		for (guint i = 0; i < json_array_get_length(array); i++)
			if (JSON_NODE_HOLDS_OBJECT(json_array_get_element(array, i)))
				objects++;
		g_assert_cmpuint(g_variant_n_children(value), ==, objects);
	}
}

typedef struct {
	gboolean answered;
	const VmsupRpcMethod *method;
} Reply;

static void
reply_cb(VmsupRpcCall *call, JsonNode *result, const GError *error, gpointer user_data)
{
	Reply *reply = user_data;

	g_assert_false(reply->answered);
	reply->answered = TRUE;
	if (error != NULL)
		g_assert_nonnull(error->message);
	if (result != NULL) {
		GVariant *value = vmsup_dbus_variant_from_result(reply->method, result, NULL);
		if (value != NULL)
			g_variant_unref(g_variant_ref_sink(value));
		/* the reply function owns the result */
		json_node_unref(result);
	}
}

static void
fuzz_call(guint8 pick, const guint8 *data, gsize size)
{
	static VmsupRpcContext ctx = {.mode = "session", .socket_path = "/fuzz/vmsupd.sock"};
	const VmsupRpcMethod *methods = vmsup_rpc_table_get_methods();
	const VmsupRpcMethod *method;
	const GVariantType *type;
	g_autoptr(GVariant) args = NULL;
	g_autoptr(GVariant) normal = NULL;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmsupRpcCall) call = NULL;
	gpointer copy;
	guint n = 0;
	Reply reply = {0};

	while (methods[n].rpc_name != NULL)
		n++;
	method = &methods[pick % n];
	if (method->dbus_name == NULL)
		return;
	/* what GDBus would have checked against the introspection data */
	type = (method->flags & VMSUP_RPC_FLAG_TAKES_VM_NAME) ? G_VARIANT_TYPE("(sa{sv})")
							      : G_VARIANT_TYPE("(a{sv})");
	copy = g_memdup2(data, size);
	args = g_variant_ref_sink(g_variant_new_from_data(type, copy, size, FALSE, g_free, copy));
	normal = g_variant_get_normal_form(args);
	params = vmsup_dbus_params_from_variant(normal, NULL, &error);
	if (params == NULL) {
		g_assert_nonnull(error);
		return;
	}
	reply.method = method;
	if (ctx.policy == NULL)
		ctx.policy = vmsup_policy_new(NULL);
	call = vmsup_rpc_call_new(method, params, vmsup_caller_daemon(), reply_cb, &reply, NULL);
	vmsup_rpc_table_dispatch(&ctx, call);
	while (!reply.answered && g_main_context_iteration(NULL, FALSE))
		;
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_true(reply.answered);
}

static void
trap_to_abort(int signum)
{
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialised;

	if (!initialised) {
		/* a fatal GLib message traps: turn it into the abort libFuzzer reports with its
		 * input */
		signal(SIGTRAP, trap_to_abort);
		g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialised = TRUE;
	}
	if (size < 2)
		return 0;
	if ((data[0] & 1) == 0)
		fuzz_json_to_variant((const gchar *)data + 1, size - 1);
	else
		fuzz_call(data[1], data + 2, size - 2);
	return 0;
}
