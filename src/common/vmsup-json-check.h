/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define VMSUP_JSON_MAX_DEPTH 64
/* problems listed for one text; more are not worth a reader's time */
#define VMSUP_JSON_MAX_PROBLEMS 16

typedef enum {
	VMSUP_JSON_CHECK_NONE = 0,
	/* integers past 64 bits are no problem (QEMU prints uint64 values such as UINT64_MAX) */
	VMSUP_JSON_CHECK_WIDE_INTEGERS = 1 << 0,
} VmsupJsonCheckFlags;

/* a value that is JSON but that vmsupd cannot take as it was sent */
typedef struct {
	gint element;   /* the element of a top-level array holding it, -1 without one */
	gchar *path;    /* from that element (or the top): "params.name", "id", "" */
	gchar *message; /* what is wrong with it, translated */
} VmsupJsonProblem;

void
vmsup_json_problem_free(VmsupJsonProblem *problem);

/*
 * Checks that @data is exactly one JSON value (RFC 8259, nested at most
 * VMSUP_JSON_MAX_DEPTH deep, whitespace around it); else fails in
 * VMSUP_ERROR_INVALID_ARGUMENT saying where and why. Values JSON allows
 * but C would mangle (strings with \u0000, non-finite numbers, integers
 * beyond 64 bits) do not fail it: they go to @out_problems (of
 * VmsupJsonProblem, nullable), for the caller to refuse in its own terms.
 */
gboolean
vmsup_json_check_text(const gchar *data,
		      gsize length,
		      VmsupJsonCheckFlags flags,
		      GPtrArray **out_problems,
		      GError **error);

G_END_DECLS
