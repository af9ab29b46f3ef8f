/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bytes as a client would send them on the JSON-RPC socket, through line
 * framing, parsing, request validation, the table's schema and dispatch,
 * against a context without services. Whatever comes back must be lines of
 * valid JSON-RPC.
 */

#include "config.h"

#include <stdint.h>
#include <string.h>

#include "vmsup-json.h"
#include "vmsup-jsonrpc-server.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_response(JsonNode *node)
{
	JsonObject *obj;

	if (JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *array = json_node_get_array(node);
		g_assert_cmpuint(json_array_get_length(array), >, 0);
		for (guint i = 0; i < json_array_get_length(array); i++)
			check_response(json_array_get_element(array, i));
		return;
	}
	g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
	obj = json_node_get_object(node);
	g_assert_cmpstr(vmsup_json_object_get_string(obj, "jsonrpc", NULL), ==, "2.0");
	g_assert_true(json_object_has_member(obj, "id"));
	g_assert_true(json_object_has_member(obj, "result") !=
		      json_object_has_member(obj, "error"));
	if (json_object_has_member(obj, "error")) {
		JsonObject *err = json_object_get_object_member(obj, "error");
		g_assert_nonnull(vmsup_json_object_get_string(err, "message", NULL));
		g_assert_nonnull(
		    vmsup_json_object_get_string(json_object_get_object_member(err, "data"),
						 "kind",
						 NULL));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static VmsupRpcContext ctx = {.mode = "session", .socket_path = "/fuzz/vmsupd.sock"};
	static VmsupJsonrpcServer *server = NULL;
	g_autofree gchar *out = NULL;
	g_auto(GStrv) lines = NULL;

	if (server == NULL) {
		g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		ctx.policy = vmsup_policy_new(NULL);
		server = vmsup_jsonrpc_server_new(&ctx);
	}
	out = vmsup_jsonrpc_server_process_data(server, (const gchar *)data, size, 1000);
	g_assert_nonnull(out);
	lines = g_strsplit(out, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) node = NULL;
		if (lines[i][0] == '\0')
			continue;
		node = vmsup_json_parse(lines[i], -1, &error);
		g_assert_no_error(error);
		check_response(node);
	}
	return 0;
}
