/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * image.build in the store: the builder writes into a work directory of
 * the store, its result is imported like any image, and the work directory
 * goes whatever happened. The name is taken for the whole build, so that
 * no import or other build can take it meanwhile.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "vmsup-error.h"
#include "vmsup-image-build.h"
#include "vmsup-image-copy.h"
#include "vmsup-image-store-private.h"
#include "vmsup-image-store.h"

/* of the whole build: the builder's stages, then the copy into the store */
#define VMSUP_IMAGE_BUILD_SHARE 0.9

typedef struct {
	VmsupImageStore *self; /* owned ref */
	gchar *name;           /* owned */
	gchar *distro;         /* owned */
	GStrv packages;        /* owned */
	gchar *work_dir;       /* owned, NULL until made */
	gchar *output;         /* owned */
	gboolean reserved;     /* the name is taken by this build */
	JsonObject *result;    /* owned, once imported */
	GError *error;         /* owned: why it failed */
	VmsupImageStoreStageFunc stage;
	gpointer stage_data;
	GDestroyNotify stage_destroy;
} VmsupImageStoreBuild;

static void
vmsup_image_store_build_free(VmsupImageStoreBuild *build)
{
	if (build->reserved)
		vmsup_image_store_release(build->self, build->name);
	if (build->stage_destroy != NULL)
		build->stage_destroy(build->stage_data);
	g_clear_pointer(&build->result, json_object_unref);
	g_clear_error(&build->error);
	g_object_unref(build->self);
	g_free(build->name);
	g_free(build->distro);
	g_strfreev(build->packages);
	g_free(build->work_dir);
	g_free(build->output);
	g_free(build);
}

gboolean
vmsup_image_store_check_build(VmsupImageStore *self,
			      const gchar *name,
			      const gchar *distro,
			      const gchar *const *packages,
			      GError **error)
{
	g_return_val_if_fail(VMSUP_IS_IMAGE_STORE(self), FALSE);

	return vmsup_image_store_check_name(self, name, error) &&
	       vmsup_image_build_check(distro, packages, error);
}

static void
vmsup_image_store_build_report(GTask *task, const gchar *stage, gdouble fraction)
{
	VmsupImageStoreBuild *build = g_task_get_task_data(task);

	if (build->stage != NULL && !g_task_get_completed(task))
		build->stage(stage, fraction, build->stage_data);
}

static void
vmsup_image_store_build_removed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupImageStoreBuild *build = g_task_get_task_data(task);

	if (build->result != NULL)
		g_task_return_pointer(task,
				      g_steal_pointer(&build->result),
				      (GDestroyNotify)json_object_unref);
	else
		g_task_return_error(task, g_steal_pointer(&build->error));
}

static void
vmsup_image_store_build_remove_thread(GTask *task,
				      gpointer source_object,
				      gpointer task_data,
				      GCancellable *cancellable)
{
	vmsup_image_build_remove_work(task_data);
	g_task_return_boolean(task, TRUE);
}

/* the end, either way: the work directory goes (in a thread: it may be a whole tree), then the
 * caller hears */
static void
vmsup_image_store_build_end(GTask *task)
{
	VmsupImageStoreBuild *build = g_task_get_task_data(task);
	g_autoptr(GTask) remove = NULL;

	if (build->work_dir == NULL) {
		vmsup_image_store_build_removed_cb(NULL, NULL, task);
		return;
	}
	remove = g_task_new(NULL, NULL, vmsup_image_store_build_removed_cb, task);
	g_task_set_source_tag(remove, vmsup_image_store_build_remove_thread);
	g_task_set_task_data(remove, g_strdup(build->work_dir), g_free);
	g_task_run_in_thread(remove, vmsup_image_store_build_remove_thread);
}

static void
vmsup_image_store_build_imported_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupImageStoreBuild *build = g_task_get_task_data(task);

	build->result = vmsup_image_store_import_finish(build->self, res, &build->error);
	vmsup_image_store_build_end(task);
}

static void
vmsup_image_store_build_copy_progress_cb(gdouble fraction, gpointer user_data)
{
	vmsup_image_store_build_report(user_data,
				       "import",
				       VMSUP_IMAGE_BUILD_SHARE +
					   (1 - VMSUP_IMAGE_BUILD_SHARE) * fraction);
}

static void
vmsup_image_store_build_progress_cb(const gchar *stage, gdouble fraction, gpointer user_data)
{
	vmsup_image_store_build_report(user_data, stage, VMSUP_IMAGE_BUILD_SHARE * fraction);
}

static gchar *
vmsup_image_store_build_source(VmsupImageStoreBuild *build)
{
	g_autofree gchar *packages = g_strjoinv(",", build->packages);

	return g_strdup_printf("vmsup-build-image --distro %s%s%s",
			       build->distro,
			       packages[0] != '\0' ? " --packages " : "",
			       packages);
}

static void
vmsup_image_store_build_built_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	VmsupImageStoreBuild *build = g_task_get_task_data(task);
	g_autofree gchar *label = NULL;
	gint fd;

	if (!vmsup_image_build_run_finish(res, &build->error)) {
		vmsup_image_store_build_end(task);
		return;
	}
	fd = g_open(build->output, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		vmsup_image_copy_write_failed(build->output, errno, &build->error);
		vmsup_image_store_build_end(task);
		return;
	}
	/* the import takes the name itself, in this same turn of the main loop */
	vmsup_image_store_release(build->self, build->name);
	build->reserved = FALSE;
	label = vmsup_image_store_build_source(build);
	vmsup_image_store_build_report(task, "import", VMSUP_IMAGE_BUILD_SHARE);
	vmsup_image_store_import_from_async(build->self,
					    fd,
					    build->output,
					    label,
					    build->name,
					    vmsup_image_store_build_copy_progress_cb,
					    task,
					    NULL,
					    g_task_get_cancellable(task),
					    vmsup_image_store_build_imported_cb,
					    task);
}

static gboolean
vmsup_image_store_build_make_work(VmsupImageStoreBuild *build, GError **error)
{
	const gchar *dir = vmsup_image_store_get_dir(build->self);
	g_autofree gchar *template = g_strdup_printf("%s/.%s.build-XXXXXX", dir, build->name);
	gint saved_errno;

	if (g_mkdir_with_parents(dir, 0700) == 0 && g_mkdtemp_full(template, 0700) != NULL) {
		build->work_dir = g_steal_pointer(&template);
		build->output = g_build_filename(build->work_dir, "image.qcow2", NULL);
		return TRUE;
	}
	saved_errno = errno;
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Cannot make a work directory in '%s': %s; check --state-dir and its "
		      "permissions"),
		    dir,
		    g_strerror(saved_errno));
	return FALSE;
}

void
vmsup_image_store_build_async(VmsupImageStore *self,
			      const gchar *name,
			      const gchar *distro,
			      const gchar *const *packages,
			      VmsupImageStoreStageFunc stage,
			      gpointer stage_data,
			      GDestroyNotify stage_destroy,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	GTask *task;
	VmsupImageStoreBuild *build;
	GError *error = NULL;

	g_return_if_fail(VMSUP_IS_IMAGE_STORE(self));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_image_store_build_async);
	/* a cancel answers once everything the build made is gone */
	g_task_set_check_cancellable(task, FALSE);
	build = g_new0(VmsupImageStoreBuild, 1);
	build->self = g_object_ref(self);
	build->name = g_strdup(name);
	build->distro = g_strdup(distro);
	build->packages = g_strdupv((gchar **)packages);
	if (build->packages == NULL)
		build->packages = g_new0(gchar *, 1);
	build->stage = stage;
	build->stage_data = stage_data;
	build->stage_destroy = stage_destroy;
	g_task_set_task_data(task, build, (GDestroyNotify)vmsup_image_store_build_free);

	if (!vmsup_image_store_check_build(self, name, distro, packages, &error) ||
	    !vmsup_image_store_build_make_work(build, &error)) {
		g_task_return_error(task, error);
		g_object_unref(task);
		return;
	}
	vmsup_image_store_reserve(self, name);
	build->reserved = TRUE;
	vmsup_image_store_build_report(task, "install", 0);
	vmsup_image_build_run_async(build->work_dir,
				    build->output,
				    build->distro,
				    (const gchar *const *)build->packages,
				    vmsup_image_store_build_progress_cb,
				    task,
				    cancellable,
				    vmsup_image_store_build_built_cb,
				    task);
}

JsonObject *
vmsup_image_store_build_finish(VmsupImageStore *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}
