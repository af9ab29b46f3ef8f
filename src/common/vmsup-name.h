/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define VMSUP_NAME_MAX_LENGTH 63

/* VM and workspace names: [a-z0-9][a-z0-9._-]{0,62}; @what is "VM" or "workspace" */
gboolean
vmsup_name_validate(const gchar *name, const gchar *what, GError **error);

G_END_DECLS
