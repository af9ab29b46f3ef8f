/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The --connect URI, checked part by part so that a mistake is named: the
 * scheme, the user, the host, the port, the path, the query and its keys.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-remote-uri.h"

#define VMSUP_REMOTE_URI_FORM "ssh://[USER@]HOST[:PORT][?socket=PATH]"

static gboolean
vmsup_remote_uri_fail(GError **error, const gchar *what)
{
	/* TRANSLATORS: the first %s says what is wrong, the second is the form of the URI */
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("%s; write it as %s"),
		    what,
		    VMSUP_REMOTE_URI_FORM);
	return FALSE;
}

/* GUri's own complaint, said as the part it is about */
static void
vmsup_remote_uri_fail_parse(GError **error, const gchar *text, const GError *uri_error)
{
	g_autofree gchar *what = NULL;

	switch (uri_error->code) {
	case G_URI_ERROR_BAD_SCHEME:
		what = g_strdup_printf(_("the scheme of '%s' is not valid"), text);
		break;
	case G_URI_ERROR_BAD_USER:
	case G_URI_ERROR_BAD_PASSWORD:
	case G_URI_ERROR_BAD_AUTH_PARAMS:
		what = g_strdup_printf(_("the user of '%s' is not valid"), text);
		break;
	case G_URI_ERROR_BAD_HOST:
		what = g_strdup_printf(_("the host of '%s' is not valid"), text);
		break;
	case G_URI_ERROR_BAD_PORT:
		what = g_strdup_printf(_("the port of '%s' is not a number from 1 to 65535"), text);
		break;
	case G_URI_ERROR_BAD_PATH:
		what = g_strdup_printf(_("the path of '%s' is not valid"), text);
		break;
	case G_URI_ERROR_BAD_QUERY:
		what = g_strdup_printf(_("the query of '%s' is not valid"), text);
		break;
	case G_URI_ERROR_BAD_FRAGMENT:
		what = g_strdup_printf(_("the fragment of '%s' is not valid"), text);
		break;
	default:
		what = g_strdup_printf(_("'%s' is not a URI (%s)"), text, uri_error->message);
		break;
	}
	vmsup_remote_uri_fail(error, what);
}

static gboolean
vmsup_remote_uri_take_query(VmsupRemoteUri *self, const gchar *query, GError **error)
{
	g_autoptr(GHashTable) params = NULL;
	g_autoptr(GError) params_error = NULL;
	GHashTableIter iter;
	gpointer key;
	gpointer value;

	if (query == NULL)
		return TRUE;
	params = g_uri_parse_params(query, -1, "&", G_URI_PARAMS_NONE, &params_error);
	if (params == NULL) {
		g_autofree gchar *what = g_strdup_printf(_("the query '%s' is not valid (%s)"),
							 query,
							 params_error->message);
		return vmsup_remote_uri_fail(error, what);
	}
	g_hash_table_iter_init(&iter, params);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		if (g_strcmp0(key, "socket") != 0) {
			g_autofree gchar *what = g_strdup_printf(
			    _("the query key '%s' is unknown (the only one is 'socket')"),
			    (const gchar *)key);
			return vmsup_remote_uri_fail(error, what);
		}
		if (!g_path_is_absolute(value)) {
			g_autofree gchar *what = g_strdup_printf(
			    _("socket='%s' is not an absolute path on the remote host"),
			    (const gchar *)value);
			return vmsup_remote_uri_fail(error, what);
		}
		self->socket = g_strdup(value);
	}
	return TRUE;
}

VmsupRemoteUri *
vmsup_remote_uri_parse(const gchar *text, GError **error)
{
	g_autoptr(VmsupRemoteUri) self = g_new0(VmsupRemoteUri, 1);
	g_autoptr(GError) uri_error = NULL;
	g_autoptr(GUri) uri = NULL;
	const gchar *host;
	const gchar *path;

	g_return_val_if_fail(text != NULL, NULL);

	uri =
	    g_uri_parse(text,
			G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED_QUERY | G_URI_FLAGS_NON_DNS,
			&uri_error);
	if (uri == NULL) {
		vmsup_remote_uri_fail_parse(error, text, uri_error);
		return NULL;
	}
	if (g_strcmp0(g_uri_get_scheme(uri), "ssh") != 0) {
		g_autofree gchar *what = g_strdup_printf(_("the scheme '%s' of '%s' is not ssh"),
							 g_uri_get_scheme(uri),
							 text);
		vmsup_remote_uri_fail(error, what);
		return NULL;
	}
	if (g_uri_get_password(uri) != NULL) {
		vmsup_remote_uri_fail(error,
				      _("the URI holds a password; ssh asks for it, or better uses "
					"a key"));
		return NULL;
	}
	if (g_uri_get_user(uri) != NULL && g_uri_get_user(uri)[0] == '\0') {
		g_autofree gchar *what = g_strdup_printf(_("the user of '%s' is empty"), text);
		vmsup_remote_uri_fail(error, what);
		return NULL;
	}
	host = g_uri_get_host(uri);
	if (host == NULL || host[0] == '\0') {
		g_autofree gchar *what = g_strdup_printf(_("the host of '%s' is empty"), text);
		vmsup_remote_uri_fail(error, what);
		return NULL;
	}
	/* ssh would read it as an option */
	if (host[0] == '-') {
		g_autofree gchar *what =
		    g_strdup_printf(_("the host '%s' is not a host name"), host);
		vmsup_remote_uri_fail(error, what);
		return NULL;
	}
	if (g_uri_get_port(uri) == 0) {
		g_autofree gchar *what =
		    g_strdup_printf(_("the port of '%s' is not a number from 1 to 65535"), text);
		vmsup_remote_uri_fail(error, what);
		return NULL;
	}
	path = g_uri_get_path(uri);
	if (path[0] != '\0' && g_strcmp0(path, "/") != 0) {
		g_autofree gchar *what =
		    g_strdup_printf(_("the path '%s' means nothing here (a socket is given as "
				      "?socket=PATH)"),
				    path);
		vmsup_remote_uri_fail(error, what);
		return NULL;
	}
	if (g_uri_get_fragment(uri) != NULL) {
		g_autofree gchar *what = g_strdup_printf(_("the fragment '#%s' means nothing here"),
							 g_uri_get_fragment(uri));
		vmsup_remote_uri_fail(error, what);
		return NULL;
	}
	if (!vmsup_remote_uri_take_query(self, g_uri_get_query(uri), error))
		return NULL;
	self->user = g_strdup(g_uri_get_user(uri));
	self->host = g_strdup(host);
	self->port = g_uri_get_port(uri);
	return g_steal_pointer(&self);
}

void
vmsup_remote_uri_free(VmsupRemoteUri *uri)
{
	if (uri == NULL)
		return;
	g_free(uri->user);
	g_free(uri->host);
	g_free(uri->socket);
	g_free(uri);
}
