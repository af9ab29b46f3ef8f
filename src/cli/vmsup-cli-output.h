/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Text for people on stdout, exactly as g_print() writes it: converted to the
 * locale's charset and flushed, so streamed lines show at once.
 */
void
vmsup_cli_print_text(const gchar *text);
void
vmsup_cli_print(const gchar *format, ...) G_GNUC_PRINTF(1, 2);

G_END_DECLS
