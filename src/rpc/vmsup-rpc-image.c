/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The image.* handlers: the store's verbs, an import driven as an
 * operation of VMService's registry so that op.get and op.cancel serve it
 * as they serve a create.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-policy.h"
#include "vmsup-rpc-image.h"

static gboolean
vmsup_rpc_have_image_store(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	g_autoptr(GError) error = NULL;

	if (ctx->image_store != NULL && ctx->vm_service != NULL)
		return TRUE;
	error = g_error_new_literal(VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    _("The image store is not available in this vmsupd"));
	vmsup_rpc_call_return_error(call, error);
	return FALSE;
}

typedef struct {
	VmsupRpcCall *call; /* owned, NULL once answered */
	VmsupOperation *op; /* owned ref */
} VmsupRpcImport;

static void
vmsup_rpc_import_free(VmsupRpcImport *import)
{
	g_clear_pointer(&import->call, vmsup_rpc_call_unref);
	g_object_unref(import->op);
	g_free(import);
}

static JsonObject *
vmsup_rpc_import_result(VmsupOperation *op)
{
	JsonObject *result = json_object_new();

	json_object_set_int_member(result, "operation", vmsup_operation_get_id(op));
	json_object_set_string_member(result, "image", vmsup_operation_get_vm(op));
	return result;
}

static void
vmsup_rpc_import_progress_cb(gdouble fraction, gpointer user_data)
{
	vmsup_operation_set_stage(VMSUP_OPERATION(user_data), "copy", fraction);
}

/* an import's or a build's end: the operation ends, a waiting caller hears */
static void
vmsup_rpc_import_end(VmsupRpcImport *import, JsonObject *image, const GError *error)
{
	if (image != NULL)
		vmsup_operation_set_stage(import->op, "done", 1.0);
	else
		g_message("%s of image '%s' failed: %s",
			  vmsup_operation_get_kind(import->op),
			  vmsup_operation_get_vm(import->op),
			  error->message);
	vmsup_operation_finish(import->op, error);
	if (import->call != NULL) {
		if (error != NULL)
			vmsup_rpc_call_return_error(import->call, error);
		else
			vmsup_rpc_call_return_object(import->call,
						     vmsup_rpc_import_result(import->op));
	}
	vmsup_rpc_import_free(import);
}

static void
vmsup_rpc_import_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) image =
	    vmsup_image_store_import_finish(VMSUP_IMAGE_STORE(source), res, &error);

	vmsup_rpc_import_end(user_data, image, error);
}

/* a new operation of @kind for image @name, answered now unless the caller waits */
static VmsupRpcImport *
vmsup_rpc_import_start(const VmsupRpcContext *ctx,
		       VmsupRpcCall *call,
		       const gchar *kind,
		       const gchar *name,
		       const gchar *stage,
		       gboolean wait)
{
	const VmsupCaller *caller = vmsup_rpc_call_get_caller(call);
	VmsupRpcImport *import = g_new0(VmsupRpcImport, 1);

	import->op =
	    g_object_ref(vmsup_vm_service_add_operation(ctx->vm_service, kind, name, caller->uid));
	vmsup_operation_set_stage(import->op, stage, 0);
	if (wait)
		import->call = vmsup_rpc_call_ref(call);
	else
		vmsup_rpc_call_return_object(call, vmsup_rpc_import_result(import->op));
	return import;
}

void
vmsup_rpc_image_import(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	JsonObject *params = vmsup_rpc_call_get_params(call);
	const VmsupCaller *caller = vmsup_rpc_call_get_caller(call);
	const gchar *path = vmsup_json_object_get_string(params, "path", NULL);
	const gchar *name = vmsup_json_object_get_string(params, "name", NULL);
	gboolean wait = FALSE;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *checked = NULL;
	VmsupRpcImport *import;
	gint fd;

	if (!vmsup_rpc_have_image_store(ctx, call))
		return;
	if (!vmsup_json_object_get_checked_bool(params, "wait", FALSE, &wait, &error)) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	fd = vmsup_policy_open_host_file(caller, "path", path, &error);
	if (fd < 0) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	/* bad input is refused here, before there is an operation to follow */
	checked = vmsup_image_store_check_import(ctx->image_store, fd, path, name, &error);
	if (checked == NULL) {
		close(fd);
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	import = vmsup_rpc_import_start(ctx, call, "image.import", checked, "copy", wait);
	g_message("importing image '%s' from '%s' (operation %" G_GINT64_FORMAT ")",
		  checked,
		  path,
		  vmsup_operation_get_id(import->op));
	vmsup_image_store_import_async(ctx->image_store,
				       fd,
				       path,
				       checked,
				       vmsup_rpc_import_progress_cb,
				       g_object_ref(import->op),
				       g_object_unref,
				       vmsup_operation_get_cancellable(import->op),
				       vmsup_rpc_import_done_cb,
				       import);
}

static void
vmsup_rpc_build_stage_cb(const gchar *stage, gdouble fraction, gpointer user_data)
{
	vmsup_operation_set_stage(VMSUP_OPERATION(user_data), stage, fraction);
}

static void
vmsup_rpc_build_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) image =
	    vmsup_image_store_build_finish(VMSUP_IMAGE_STORE(source), res, &error);

	vmsup_rpc_import_end(user_data, image, error);
}

void
vmsup_rpc_image_build(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	JsonObject *params = vmsup_rpc_call_get_params(call);
	const VmsupCaller *caller = vmsup_rpc_call_get_caller(call);
	const gchar *name = vmsup_json_object_get_string(params, "name", NULL);
	const gchar *distro = vmsup_json_object_get_string(params, "distro", "debian-12");
	g_auto(GStrv) packages = vmsup_json_object_dup_strv(params, "packages");
	gboolean wait = FALSE;
	g_autoptr(GError) error = NULL;
	VmsupRpcImport *import;

	if (!vmsup_rpc_have_image_store(ctx, call))
		return;
	/* bad input is refused here, before there is an operation to follow */
	if (!vmsup_json_object_get_checked_bool(params, "wait", FALSE, &wait, &error) ||
	    !vmsup_policy_check_image_build(caller, name, &error) ||
	    !vmsup_image_store_check_build(ctx->image_store,
					   name,
					   distro,
					   (const gchar *const *)packages,
					   &error)) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	import = vmsup_rpc_import_start(ctx, call, "image.build", name, "install", wait);
	g_message("building image '%s' from %s (operation %" G_GINT64_FORMAT ")",
		  name,
		  distro,
		  vmsup_operation_get_id(import->op));
	vmsup_image_store_build_async(ctx->image_store,
				      name,
				      distro,
				      (const gchar *const *)packages,
				      vmsup_rpc_build_stage_cb,
				      g_object_ref(import->op),
				      g_object_unref,
				      vmsup_operation_get_cancellable(import->op),
				      vmsup_rpc_build_done_cb,
				      import);
}

void
vmsup_rpc_image_list(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	g_autoptr(GError) error = NULL;
	JsonObject *result;

	if (!vmsup_rpc_have_image_store(ctx, call))
		return;
	result = vmsup_image_store_list(ctx->image_store, &error);
	if (result == NULL) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	vmsup_rpc_call_return_object(call, result);
}

void
vmsup_rpc_image_delete(const VmsupRpcContext *ctx, VmsupRpcCall *call)
{
	const gchar *name =
	    vmsup_json_object_get_string(vmsup_rpc_call_get_params(call), "name", NULL);
	const VmsupCaller *caller = vmsup_rpc_call_get_caller(call);
	g_autoptr(GError) error = NULL;
	JsonObject *image;

	if (!vmsup_rpc_have_image_store(ctx, call))
		return;
	if (!vmsup_policy_check_image_removal(caller, name, &error)) {
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	image = vmsup_image_store_get(ctx->image_store, name, &error);
	if (image == NULL || !vmsup_image_store_delete(ctx->image_store, name, &error)) {
		g_clear_pointer(&image, json_object_unref);
		vmsup_rpc_call_return_error(call, error);
		return;
	}
	g_message("image '%s' deleted", name);
	vmsup_rpc_call_return_object(call, image);
}
