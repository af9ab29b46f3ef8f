/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * image.build's process: data/images/vmsup-build-image run with
 * --progress json, its stage lines turned into progress, its process group
 * stopped on a cancel, its exit turned into an error that says what to fix.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-image-build.h"
#include "vmsup-json.h"
#include "vmsup-paths.h"

/* how long the tools have to clean up after SIGTERM (mmdebstrap unmounts) */
#define VMSUP_IMAGE_BUILD_GRACE_S 60
#define VMSUP_IMAGE_BUILD_MAX_PACKAGES 256
#define VMSUP_IMAGE_BUILD_MAX_PACKAGE_NAME 128
#define VMSUP_IMAGE_BUILD_LOG_TAIL 1500
/* the builder's own exit statuses */
#define VMSUP_IMAGE_BUILD_EXIT_USAGE 2
#define VMSUP_IMAGE_BUILD_EXIT_MISSING_TOOL 77

static const gchar *const vmsup_image_build_distro_names[] = {"debian-12", NULL};

const gchar *const *
vmsup_image_build_distros(void)
{
	return vmsup_image_build_distro_names;
}

static gboolean
vmsup_image_build_package_name_ok(const gchar *name)
{
	gsize length = strlen(name);

	if (length < 2 || length > VMSUP_IMAGE_BUILD_MAX_PACKAGE_NAME)
		return FALSE;
	if (!g_ascii_islower(name[0]) && !g_ascii_isdigit(name[0]))
		return FALSE;
	for (const gchar *c = name; *c != '\0'; c++) {
		if (!g_ascii_islower(*c) && !g_ascii_isdigit(*c) && strchr("+-.", *c) == NULL)
			return FALSE;
	}
	return TRUE;
}

gboolean
vmsup_image_build_check(const gchar *distro, const gchar *const *packages, GError **error)
{
	if (distro == NULL || !g_strv_contains(vmsup_image_build_distro_names, distro)) {
		g_autofree gchar *valid =
		    g_strjoinv(", ", (gchar **)vmsup_image_build_distro_names);
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    /* TRANSLATORS: vmsup cannot build 'fedora' images; it builds: debian-12 */
		    _("vmsup cannot build '%s' images; it builds: %s"),
		    distro != NULL ? distro : "",
		    valid);
		return FALSE;
	}
	if (packages != NULL &&
	    g_strv_length((gchar **)packages) > VMSUP_IMAGE_BUILD_MAX_PACKAGES) {
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("An image takes at most %d extra packages; install the rest in the VM"),
		    VMSUP_IMAGE_BUILD_MAX_PACKAGES);
		return FALSE;
	}
	for (guint i = 0; packages != NULL && packages[i] != NULL; i++) {
		g_autofree gchar *shown = NULL;

		if (vmsup_image_build_package_name_ok(packages[i]))
			continue;
		shown = g_strescape(packages[i], NULL);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' is not a Debian package name: those are lower-case letters, "
			      "digits, '+', '-' and '.', at least two, with no version; fix the "
			      "name"),
			    shown);
		return FALSE;
	}
	return TRUE;
}

/* one run of the builder */

typedef struct {
	GSubprocess *subprocess;    /* owned */
	GDataInputStream *lines;    /* owned: its stdout */
	GCancellable *cancellable;  /* owned ref, may be NULL */
	GCancellable *read_stopper; /* owned: ends the reading once the builder is gone */
	gulong cancel_id;
	GSource *kill_source; /* owned, NULL until a cancel */
	gchar *log_path;      /* owned: its stderr */
	gchar *output;        /* owned */
	gchar *distro;        /* owned */
	GStrv unknown;        /* owned: the packages it said the archive lacks */
	pid_t pgid;
	gboolean exited;
	gboolean read_done;
	VmsupImageBuildProgressFunc progress;
	gpointer progress_data;
} VmsupImageBuildRun;

static void
vmsup_image_build_run_free(VmsupImageBuildRun *run)
{
	if (run->kill_source != NULL) {
		g_source_destroy(run->kill_source);
		g_source_unref(run->kill_source);
	}
	g_clear_object(&run->subprocess);
	g_clear_object(&run->lines);
	g_clear_object(&run->cancellable);
	g_clear_object(&run->read_stopper);
	g_free(run->log_path);
	g_free(run->output);
	g_free(run->distro);
	g_strfreev(run->unknown);
	g_free(run);
}

static gboolean
vmsup_image_build_kill_cb(gpointer user_data)
{
	VmsupImageBuildRun *run = user_data;

	g_message("the image builder (process group %d) did not stop on SIGTERM; killing it",
		  (gint)run->pgid);
	kill(-run->pgid, SIGKILL);
	return G_SOURCE_REMOVE;
}

/* in the cancelling thread: the group hears at once, the timer runs in the task's context */
static void
vmsup_image_build_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	GTask *task = user_data;
	VmsupImageBuildRun *run = g_task_get_task_data(task);

	if (run->pgid <= 0 || run->kill_source != NULL)
		return;
	kill(-run->pgid, SIGTERM);
	run->kill_source = g_timeout_source_new_seconds(VMSUP_IMAGE_BUILD_GRACE_S);
	g_source_set_callback(run->kill_source, vmsup_image_build_kill_cb, run, NULL);
	g_source_attach(run->kill_source, g_task_get_context(task));
}

/* the last lines of what the builder said on stderr */
static gchar *
vmsup_image_build_log_tail(VmsupImageBuildRun *run)
{
	g_autofree gchar *contents = NULL;
	gsize length = 0;
	const gchar *start;

	if (!g_file_get_contents(run->log_path, &contents, &length, NULL) || length == 0)
		return g_strdup(_("it said nothing"));
	g_strstrip(contents);
	length = strlen(contents);
	start = length > VMSUP_IMAGE_BUILD_LOG_TAIL ? contents + length - VMSUP_IMAGE_BUILD_LOG_TAIL
						    : contents;
	return g_utf8_make_valid(start, -1);
}

static GError *
vmsup_image_build_exit_error(VmsupImageBuildRun *run)
{
	g_autofree gchar *tail = NULL;
	gint status;

	if (g_cancellable_is_cancelled(run->cancellable))
		return g_error_new_literal(VMSUP_ERROR,
					   VMSUP_ERROR_CANCELLED,
					   _("The image build was cancelled; nothing was kept"));
	if (run->unknown != NULL && run->unknown[0] != NULL) {
		g_autofree gchar *list = g_strjoinv("', '", run->unknown);
		return g_error_new(VMSUP_ERROR,
				   VMSUP_ERROR_INVALID_ARGUMENT,
				   /* TRANSLATORS: debian-12 has no package 'foo'; ... */
				   _("%s has no package '%s'; check the name (apt-cache search "
				     "finds packages), or leave it out"),
				   run->distro,
				   list);
	}
	tail = vmsup_image_build_log_tail(run);
	status = g_subprocess_get_if_exited(run->subprocess)
		     ? g_subprocess_get_exit_status(run->subprocess)
		     : -1;
	if (status == VMSUP_IMAGE_BUILD_EXIT_MISSING_TOOL)
		return g_error_new(VMSUP_ERROR,
				   VMSUP_ERROR_FAILED_PRECONDITION,
				   _("The image builder lacks a tool: %s"),
				   tail);
	if (status == VMSUP_IMAGE_BUILD_EXIT_USAGE)
		return g_error_new(VMSUP_ERROR,
				   VMSUP_ERROR_INVALID_ARGUMENT,
				   _("The image builder refused its arguments: %s"),
				   tail);
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   _("Building the image failed: %s; check that Debian's archive can be "
			     "reached and the state directory has room, then build again"),
			   tail);
}

/* both the exit and the end of its output: then the task answers */
static void
vmsup_image_build_maybe_done(GTask *task)
{
	VmsupImageBuildRun *run = g_task_get_task_data(task);

	if (!run->exited || !run->read_done)
		return;
	g_cancellable_disconnect(run->cancellable, run->cancel_id);
	run->cancel_id = 0;
	if (g_subprocess_get_successful(run->subprocess) &&
	    g_file_test(run->output, G_FILE_TEST_IS_REGULAR) &&
	    !g_cancellable_is_cancelled(run->cancellable))
		g_task_return_boolean(task, TRUE);
	else
		g_task_return_error(task, vmsup_image_build_exit_error(run));
	g_object_unref(task);
}

static void
vmsup_image_build_line(VmsupImageBuildRun *run, const gchar *line)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *object;
	JsonArray *packages;
	gint64 done, total;
	const gchar *stage;

	if (!json_parser_load_from_data(parser, line, -1, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
		g_debug("image builder: %s", line);
		return;
	}
	object = json_node_get_object(json_parser_get_root(parser));
	packages = json_object_has_member(object, "packages")
		       ? json_object_get_array_member(object, "packages")
		       : NULL;
	if (packages != NULL) {
		g_autoptr(GStrvBuilder) unknown = g_strv_builder_new();
		for (guint i = 0; i < json_array_get_length(packages); i++) {
			JsonNode *node = json_array_get_element(packages, i);
			if (JSON_NODE_HOLDS_VALUE(node) &&
			    json_node_get_value_type(node) == G_TYPE_STRING)
				g_strv_builder_add(unknown, json_node_get_string(node));
		}
		g_strfreev(run->unknown);
		run->unknown = g_strv_builder_end(unknown);
		return;
	}
	stage = vmsup_json_object_get_string(object, "stage", NULL);
	done = vmsup_json_object_get_int(object, "done", 0);
	total = vmsup_json_object_get_int(object, "total", 0);
	if (stage == NULL || total <= 0)
		return;
	g_message("image builder: %s", vmsup_json_object_get_string(object, "step", stage));
	if (run->progress != NULL)
		run->progress(stage, (gdouble)done / (gdouble)total, run->progress_data);
}

static void
vmsup_image_build_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupImageBuildRun *run = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *line =
	    g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source),
						      res,
						      NULL,
						      &error);

	if (line == NULL) {
		if (error != NULL && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_debug("image builder: reading its output: %s", error->message);
		run->read_done = TRUE;
		vmsup_image_build_maybe_done(task);
		return;
	}
	vmsup_image_build_line(run, line);
	g_data_input_stream_read_line_async(run->lines,
					    G_PRIORITY_DEFAULT,
					    run->read_stopper,
					    vmsup_image_build_read_cb,
					    task);
}

static void
vmsup_image_build_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupImageBuildRun *run = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	if (!g_subprocess_wait_finish(G_SUBPROCESS(source), res, &error))
		g_debug("image builder: waiting: %s", error->message);
	/* what the builder left running in its group goes with it */
	kill(-run->pgid, SIGKILL);
	run->exited = TRUE;
	/* a straggler may hold its stdout: what the builder wrote is read by now or lost */
	if (!run->read_done)
		g_cancellable_cancel(run->read_stopper);
	vmsup_image_build_maybe_done(task);
}

static void
vmsup_image_build_child_setup(gpointer user_data)
{
	/* its own group, so that a cancel reaches mmdebstrap, apt and dpkg too */
	setpgid(0, 0);
}

static GSubprocess *
vmsup_image_build_spawn(const gchar *work_dir,
			const gchar *output,
			const gchar *distro,
			const gchar *const *packages,
			const gchar *log_path,
			GError **error)
{
	g_autofree gchar *builder = vmsup_paths_image_builder();
	g_autofree gchar *package_list =
	    packages != NULL ? g_strjoinv(",", (gchar **)packages) : g_strdup("");
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	g_autoptr(GError) error_local = NULL;
	GSubprocess *subprocess;

	if (!g_file_test(builder, G_FILE_TEST_IS_EXECUTABLE)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("The image builder '%s' is not installed; reinstall vmsup"),
			    builder);
		return NULL;
	}
	g_subprocess_launcher_setenv(launcher, "TMPDIR", work_dir, TRUE);
	g_subprocess_launcher_setenv(launcher, "LC_ALL", "C.UTF-8", TRUE);
	g_subprocess_launcher_set_cwd(launcher, work_dir);
	g_subprocess_launcher_set_stderr_file_path(launcher, log_path);
	g_subprocess_launcher_set_child_setup(launcher, vmsup_image_build_child_setup, NULL, NULL);
	subprocess = g_subprocess_launcher_spawn(launcher,
						 &error_local,
						 builder,
						 "--output",
						 output,
						 "--distro",
						 distro,
						 "--packages",
						 package_list,
						 "--progress",
						 "json",
						 NULL);
	if (subprocess == NULL)
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot run the image builder '%s': %s; reinstall vmsup"),
			    builder,
			    error_local->message);
	return subprocess;
}

void
vmsup_image_build_run_async(const gchar *work_dir,
			    const gchar *output,
			    const gchar *distro,
			    const gchar *const *packages,
			    VmsupImageBuildProgressFunc progress,
			    gpointer progress_data,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	GTask *task = g_task_new(NULL, cancellable, callback, user_data);
	VmsupImageBuildRun *run = g_new0(VmsupImageBuildRun, 1);
	GError *error = NULL;

	g_return_if_fail(work_dir != NULL && output != NULL);

	g_task_set_source_tag(task, vmsup_image_build_run_async);
	/* a cancel answers once the builder has gone, not before */
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_task_data(task, run, (GDestroyNotify)vmsup_image_build_run_free);
	run->log_path = g_build_filename(work_dir, "builder.log", NULL);
	run->output = g_strdup(output);
	run->distro = g_strdup(distro);
	run->progress = progress;
	run->progress_data = progress_data;
	run->read_stopper = g_cancellable_new();
	run->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
	run->subprocess =
	    vmsup_image_build_spawn(work_dir, output, distro, packages, run->log_path, &error);
	if (run->subprocess == NULL) {
		g_task_return_error(task, error);
		g_object_unref(task);
		return;
	}
	run->pgid = (pid_t)g_ascii_strtoll(g_subprocess_get_identifier(run->subprocess), NULL, 10);
	run->lines = g_data_input_stream_new(g_subprocess_get_stdout_pipe(run->subprocess));
	g_data_input_stream_read_line_async(run->lines,
					    G_PRIORITY_DEFAULT,
					    run->read_stopper,
					    vmsup_image_build_read_cb,
					    task);
	g_subprocess_wait_async(run->subprocess, NULL, vmsup_image_build_wait_cb, task);
	if (cancellable != NULL)
		run->cancel_id = g_cancellable_connect(cancellable,
						       G_CALLBACK(vmsup_image_build_cancelled_cb),
						       task,
						       NULL);
}

gboolean
vmsup_image_build_run_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
vmsup_image_build_remove_below(const gchar *path, dev_t dev)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *basename;

	/* the packages make some directories read-only (/proc, /sys of the tree) */
	if (dir == NULL && g_chmod(path, 0700) == 0)
		dir = g_dir_open(path, 0, NULL);
	else if (dir != NULL)
		g_chmod(path, 0700);
	while (dir != NULL && (basename = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, basename, NULL);
		struct stat st;

		if (g_lstat(child, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				g_warning("Not removing '%s': a filesystem is still mounted there",
					  child);
				continue;
			}
			vmsup_image_build_remove_below(child, dev);
		} else if (g_unlink(child) != 0 && errno != ENOENT) {
			g_debug("cannot remove '%s': %s", child, g_strerror(errno));
		}
	}
	if (g_rmdir(path) != 0 && errno != ENOENT)
		g_debug("cannot remove '%s': %s", path, g_strerror(errno));
}

void
vmsup_image_build_remove_work(const gchar *path)
{
	struct stat st;

	if (g_lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return;
	vmsup_image_build_remove_below(path, st.st_dev);
	if (g_file_test(path, G_FILE_TEST_EXISTS))
		g_warning("Cannot remove all of '%s', left by an image build; remove it by hand",
			  path);
}
