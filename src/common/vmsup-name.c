/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Names become file names, D-Bus object path elements and QEMU option
 * values, so they are checked once, here, before anything is touched.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-name.h"

static gboolean
vmsup_name_char_is_valid(gchar c, gboolean first)
{
	if (g_ascii_islower(c) || g_ascii_isdigit(c))
		return TRUE;
	return !first && (c == '.' || c == '_' || c == '-');
}

gboolean
vmsup_name_validate(const gchar *name, const gchar *what, GError **error)
{
	gsize len;

	if (name == NULL || name[0] == '\0') {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    /* TRANSLATORS: %s is what is named: "VM", "workspace", "image" */
			    _("The %s name is missing; give one"),
			    what);
		return FALSE;
	}
	len = strlen(name);
	if (len > VMSUP_NAME_MAX_LENGTH) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("%s name is %lu characters long; at most %d are allowed"),
			    what,
			    (unsigned long)len,
			    VMSUP_NAME_MAX_LENGTH);
		return FALSE;
	}
	for (gsize i = 0; i < len; i++) {
		if (!vmsup_name_char_is_valid(name[i], i == 0)) {
			g_autofree gchar *shown = g_strescape(name, NULL);
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("Invalid %s name '%s': use lowercase letters, digits, '.', "
				      "'_' and '-', starting with a letter or digit"),
				    what,
				    shown);
			return FALSE;
		}
	}
	return TRUE;
}
