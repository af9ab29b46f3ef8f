/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the verbs of vmsup share: the CLI's state, exit codes, option parsing,
 * calling vmsupd, printing, and waiting for operations.
 */

#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "vmsup-cli-format.h"
#include "vmsup-jsonrpc-client.h"
#include "vmsup-remote-uri.h"
#include "vmsup-ssh-transport.h"

G_BEGIN_DECLS

/* documented in vmsup(1); scripts rely on them */
typedef enum {
	VMSUP_CLI_EXIT_OK = 0,
	VMSUP_CLI_EXIT_FAILURE = 1,
	VMSUP_CLI_EXIT_USAGE = 2,
	VMSUP_CLI_EXIT_NOT_FOUND = 3,
	VMSUP_CLI_EXIT_ALREADY_EXISTS = 4,
	VMSUP_CLI_EXIT_INVALID_ARGUMENT = 5,
	VMSUP_CLI_EXIT_BUSY = 6,
	VMSUP_CLI_EXIT_FAILED_PRECONDITION = 7,
	VMSUP_CLI_EXIT_CANCELLED = 8,
	VMSUP_CLI_EXIT_TIMEOUT = 9,
	VMSUP_CLI_EXIT_NO_DAEMON = 10,
	VMSUP_CLI_EXIT_DOWN = 11, /* vmsup health: the VM is down */
} VmsupCliExit;

typedef struct {
	/* global options, also accepted after the verb */
	gchar *socket_path;
	gchar *connect; /* --connect: NULL unless given, "" for this host */
	gboolean system;
	gboolean json;
	gboolean quiet;
	/* table options, for the verbs that set their columns before parsing */
	const VmsupCliColumn *table_columns;
	gchar *output; /* -o: the columns, comma-separated */
	gboolean no_headers;
	const gchar *verb; /* "create", "ops list", ... for messages */
	VmsupJsonrpcClient *client;
	VmsupSshTransport *transport; /* with --connect, once connected */
} VmsupCli;

typedef gint (*VmsupCliVerbFunc)(VmsupCli *cli, gint argc, gchar **argv);

typedef struct {
	const gchar *name;
	const gchar *summary; /* N_() */
	VmsupCliVerbFunc func;
} VmsupCliVerb;

/* what a waited operation's end prints: @answer is the request's, @op the final op.get */
typedef gint (*VmsupCliOpFinishFunc)(VmsupCli *cli,
				     const gchar *name,
				     JsonObject *op,
				     JsonObject *answer,
				     gboolean flag);

/* a limit as given, unchecked: 0 clears it, and the daemon refuses what it cannot take */
#define VMSUP_CLI_NO_LIMIT G_MININT

/* vmsup-cli-common.c */
void
vmsup_cli_clear(VmsupCli *cli);

gint
vmsup_cli_report_error(VmsupCli *cli, const GError *error);

gint
vmsup_cli_usage_error(VmsupCli *cli, const gchar *message);

JsonObject *
vmsup_cli_params_name(const gchar *name);

void
vmsup_cli_add_global_options(VmsupCli *cli, GOptionContext *context);

gboolean
vmsup_cli_parse(VmsupCli *cli,
		gint *argc,
		gchar ***argv,
		const gchar *parameter_string,
		const gchar *summary,
		const GOptionEntry *entries,
		gint n_args,
		const gchar *what,
		gint *out_exit);

JsonObject *
vmsup_cli_parse_name(VmsupCli *cli,
		     gint *argc,
		     gchar ***argv,
		     const gchar *what,
		     const gchar *summary,
		     const GOptionEntry *entries,
		     gint *out_exit);

/*
 * Where --connect (else $VMSUP_CONNECT) points: TRUE with *@out_uri NULL
 * for this host; FALSE after a usage error
 */
gboolean
vmsup_cli_remote_uri(VmsupCli *cli, VmsupRemoteUri **out_uri, gint *out_exit);

gboolean
vmsup_cli_connect(VmsupCli *cli, gint *out_exit);

/* the local socket, resolved into cli->socket_path; *@out_activate: D-Bus may start vmsupd */
gchar *
vmsup_cli_local_socket(VmsupCli *cli, gboolean *out_activate);

void
vmsup_cli_print_json_object(JsonObject *obj);

JsonObject *
vmsup_cli_call(VmsupCli *cli, const gchar *method, JsonObject *params, gint *out_exit);

gboolean
vmsup_cli_call_for_people(VmsupCli *cli,
			  const gchar *method,
			  JsonObject *params,
			  JsonObject **out_result,
			  gint *out_exit);

void
vmsup_cli_print_fields(JsonObject *obj, const VmsupCliField *fields);

VmsupCliTable *
vmsup_cli_new_table(VmsupCli *cli,
		    const VmsupCliColumn *columns,
		    const gchar *default_spec,
		    gint *out_exit);

void G_GNUC_PRINTF(2, 3) vmsup_cli_confirm(VmsupCli *cli, const gchar *format, ...);

void
vmsup_cli_print_table(VmsupCliTable *table);

GPtrArray *
vmsup_cli_get_objects(JsonObject *obj, const gchar *member);

gboolean
vmsup_cli_parse_id(VmsupCli *cli, const gchar *text, gint64 *out_id, gint *out_exit);

void
vmsup_cli_set_int(JsonObject *params, const gchar *member, gint value);

gboolean
vmsup_cli_set_ports(VmsupCli *cli, JsonObject *params, gchar **specs, gint *out_exit);

void
vmsup_cli_set_path(JsonObject *params, const gchar *member, const gchar *path);

const gchar *
vmsup_cli_get_str(JsonObject *obj, const gchar *member);

gchar *
vmsup_cli_member_text(JsonObject *obj, const gchar *member);

gchar *
vmsup_cli_read_text_file(VmsupCli *cli, const gchar *path, gsize max, gint *out_exit);

/* vmsup-cli-operation.c */
gint64
vmsup_cli_operation_id(JsonObject *result);

GError *
vmsup_cli_operation_error(JsonObject *op);

/*
 * An operation's end as a finish function tells it: done, --json prints
 * @answer and people read @done; cancelled, the error @cancelled; failed,
 * the operation's error.
 */
gint
vmsup_cli_operation_outcome(VmsupCli *cli,
			    JsonObject *op,
			    JsonObject *answer,
			    const gchar *done,
			    const gchar *cancelled);

/*
 * Waits for operation @id, drawing its progress from events (or, should
 * vmsupd not send them, from polling op.get). The first Ctrl-C asks vmsupd
 * to cancel, a second one leaves at once.
 */
gint
vmsup_cli_wait_operation(VmsupCli *cli,
			 const gchar *name,
			 JsonObject *created,
			 gint64 id,
			 VmsupCliOpFinishFunc finish,
			 gboolean start);

/*
 * @method without waiting: the id of the operation it started in
 * @out_id (printed alone for -q); FALSE, with *@out_exit, when the call
 * failed.
 */
gboolean
vmsup_cli_start_operation(VmsupCli *cli,
			  const gchar *method,
			  JsonObject *params,
			  gint64 *out_id,
			  gint *out_exit);

/*
 * @method, whose answer names an operation, followed to its end as
 * vmsup_cli_wait_operation() does, @finish given @name and @flag.
 */
gint
vmsup_cli_follow_operation(VmsupCli *cli,
			   const gchar *method,
			   JsonObject *params,
			   const gchar *name,
			   VmsupCliOpFinishFunc finish,
			   gboolean flag);

/* vmsup-cli-vm.c */
gint
vmsup_cli_list(VmsupCli *cli, gint argc, gchar **argv);

gint
vmsup_cli_get(VmsupCli *cli, gint argc, gchar **argv);

gint
vmsup_cli_start(VmsupCli *cli, gint argc, gchar **argv);

gint
vmsup_cli_pause(VmsupCli *cli, gint argc, gchar **argv);

gint
vmsup_cli_resume(VmsupCli *cli, gint argc, gchar **argv);

gint
vmsup_cli_stop(VmsupCli *cli, gint argc, gchar **argv);

gint
vmsup_cli_delete(VmsupCli *cli, gint argc, gchar **argv);

void
vmsup_cli_set_limits(JsonObject *params, gint cpu_quota, gint memory_max);

gint
vmsup_cli_set(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-stats.c */
gint
vmsup_cli_health(VmsupCli *cli, gint argc, gchar **argv);

gint
vmsup_cli_stats(VmsupCli *cli, gint argc, gchar **argv);

gint
vmsup_cli_ping(VmsupCli *cli, gint argc, gchar **argv);

gint
vmsup_cli_ports(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-create.c */
gint
vmsup_cli_create(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-exec.c */
gint
vmsup_cli_exec(VmsupCli *cli, gint argc, gchar **argv);

gint
vmsup_cli_shell(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-console.c */
gint
vmsup_cli_console(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-ops.c */
gint
vmsup_cli_ops(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-workspace.c */
gint
vmsup_cli_workspace(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-image.c */
gint
vmsup_cli_image(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-snapshot.c */
gint
vmsup_cli_snapshot(VmsupCli *cli, gint argc, gchar **argv);

/*
 * the end of an operation making image @name: --json prints the image as
 * image.list has it, people read @done; a cancel says @cancelled
 */
gint
vmsup_cli_image_finish(VmsupCli *cli,
		       const gchar *name,
		       JsonObject *op,
		       JsonObject *answer,
		       const gchar *done,
		       const gchar *cancelled);

/* calls @method, an operation making an image (@what in messages), and follows it as create */
gint
vmsup_cli_image_run(VmsupCli *cli,
		    const gchar *method,
		    JsonObject *params,
		    const gchar *what,
		    VmsupCliOpFinishFunc finish);

/* vmsup-cli-image-build.c */
gint
vmsup_cli_image_build(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-info.c */
gint
vmsup_cli_info(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-events.c */
gint
vmsup_cli_events(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-top.c */
gint
vmsup_cli_top(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli-remote.c */

/*
 * vmsup shell NAME [-- COMMAND…] run by the vmsup of @uri's host, through
 * ssh in place of this process; returns only when ssh could not be run
 */
gint
vmsup_cli_remote_shell(VmsupCli *cli,
		       const VmsupRemoteUri *uri,
		       gint timeout,
		       const gchar *name,
		       gchar **command);

gint
vmsup_cli_bridge(VmsupCli *cli, gint argc, gchar **argv);

/* vmsup-cli.c */
gint
vmsup_cli_run_verb(VmsupCli *cli,
		   const VmsupCliVerb *verbs,
		   const gchar *group,
		   gint argc,
		   gchar **argv);

G_END_DECLS
