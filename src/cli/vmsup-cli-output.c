/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Writing to stdout: one write per call, and a charset conversion only for
 * text that needs one.
 */

#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmsup-cli-output.h"

static gboolean
vmsup_cli_output_is_ascii(const gchar *text)
{
	for (const guchar *p = (const guchar *)text; *p != '\0'; p++) {
		if (*p >= 0x80)
			return FALSE;
	}
	return TRUE;
}

/* straight to the fd: stdio would only add a buffer to set up and copy through */
static void
vmsup_cli_output_write(const gchar *text)
{
	gsize len = strlen(text);

	fflush(stdout);
	while (len > 0) {
		gssize n = write(STDOUT_FILENO, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		/* unreported, as g_print() leaves them */
		if (n < 0)
			return;
		text += n;
		len -= n;
	}
}

void
vmsup_cli_print_text(const gchar *text)
{
	const gchar *charset;

	/* ASCII reads the same in every locale charset: g_print() would convert it to itself */
	if (g_get_charset(&charset) || vmsup_cli_output_is_ascii(text)) {
		vmsup_cli_output_write(text);
		return;
	}
	g_print("%s", text);
}

void
vmsup_cli_print(const gchar *format, ...)
{
	g_autofree gchar *text = NULL;
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	vmsup_cli_print_text(text);
}
