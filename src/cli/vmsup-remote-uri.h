/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* where `vmsup --connect ssh://[USER@]HOST[:PORT][?socket=PATH]` goes */
typedef struct {
	gchar *user;   /* owned; NULL: ssh's own choice (its config, else the local user) */
	gchar *host;   /* owned */
	gint port;     /* -1: ssh's own choice */
	gchar *socket; /* owned; NULL: the remote vmsup's default */
} VmsupRemoteUri;

/*
 * Parses @text; on failure VMSUP_ERROR_INVALID_ARGUMENT with a message
 * naming the part that is wrong and how the URI is written
 */
VmsupRemoteUri *
vmsup_remote_uri_parse(const gchar *text, GError **error);

void
vmsup_remote_uri_free(VmsupRemoteUri *uri);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupRemoteUri, vmsup_remote_uri_free)

G_END_DECLS
