/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The typed wrappers of the closures between the image store and
 * VMService: neither holds the other, the daemon wires them.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "vmsup-error.h"
#include "vmsup-image-hooks.h"
#include "vmsup-vm-hooks.h"

GStrv
vmsup_image_hooks_users(GClosure *closure, const gchar *path)
{
	GValue ret = G_VALUE_INIT;
	GValue arg = G_VALUE_INIT;
	GStrv users;

	if (!vmsup_vm_hooks_closure_usable(closure))
		return g_new0(gchar *, 1);
	g_value_init(&ret, G_TYPE_STRV);
	g_value_init(&arg, G_TYPE_STRING);
	g_value_set_string(&arg, path);
	g_closure_invoke(closure, &ret, 1, &arg, NULL);
	users = g_value_dup_boxed(&ret);
	g_value_unset(&arg);
	g_value_unset(&ret);
	return users != NULL ? users : g_new0(gchar *, 1);
}

gchar *
vmsup_image_hooks_lookup(GClosure *closure, const gchar *name, GError **error)
{
	GValue ret = G_VALUE_INIT;
	GValue args[2] = {G_VALUE_INIT, G_VALUE_INIT};
	GError *error_local = NULL;
	gchar *path;

	if (!vmsup_vm_hooks_closure_usable(closure)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("'%s' is not a path and this daemon has no image store; pass the "
			      "image as an absolute path"),
			    name);
		return NULL;
	}
	g_value_init(&ret, G_TYPE_STRING);
	g_value_init(&args[0], G_TYPE_STRING);
	g_value_set_string(&args[0], name);
	g_value_init(&args[1], G_TYPE_POINTER);
	g_value_set_pointer(&args[1], &error_local);
	g_closure_invoke(closure, &ret, G_N_ELEMENTS(args), args, NULL);
	path = g_value_dup_string(&ret);
	g_value_unset(&args[0]);
	g_value_unset(&args[1]);
	g_value_unset(&ret);
	if (path == NULL) {
		if (error_local == NULL)
			g_set_error(&error_local,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INTERNAL,
				    _("The image store did not answer for '%s'"),
				    name);
		g_propagate_error(error, error_local);
		return NULL;
	}
	g_clear_error(&error_local);
	return path;
}

gboolean
vmsup_image_hooks_is_store_name(const gchar *image)
{
	return image != NULL && strchr(image, '/') == NULL;
}
