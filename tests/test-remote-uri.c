/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The --connect URI: what it takes apart, and each wrong part named. */

#include "config.h"

#include <glib.h>
#include <string.h>

#include "vmsup-error.h"
#include "vmsup-remote-uri.h"

#define FORM "write it as ssh://[USER@]HOST[:PORT][?socket=PATH]"

typedef struct {
	const gchar *text;
	const gchar *user;
	const gchar *host;
	gint port;
	const gchar *socket;
} GoodUri;

static void
test_remote_uri_good(void)
{
	const GoodUri good[] = {
	    {"ssh://host", NULL, "host", -1, NULL},
	    {"ssh://host/", NULL, "host", -1, NULL},
	    {"SSH://host", NULL, "host", -1, NULL},
	    {"ssh://alice@host.example:2222", "alice", "host.example", 2222, NULL},
	    {"ssh://127.0.0.1:1", NULL, "127.0.0.1", 1, NULL},
	    {"ssh://[::1]:65535", NULL, "::1", 65535, NULL},
	    {"ssh://root@h?socket=/run/vmsup/vmsupd.sock",
	     "root",
	     "h",
	     -1,
	     "/run/vmsup/vmsupd.sock"},
	    /* the query's escapes are undone: the path is the remote file's name */
	    {"ssh://h?socket=/tmp/a%20b%26c.sock", NULL, "h", -1, "/tmp/a b&c.sock"},
	    {"ssh://h/?socket=/s", NULL, "h", -1, "/s"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(VmsupRemoteUri) uri = vmsup_remote_uri_parse(good[i].text, &error);

		g_test_message("%s", good[i].text);
		g_assert_no_error(error);
		g_assert_nonnull(uri);
		g_assert_cmpstr(uri->user, ==, good[i].user);
		g_assert_cmpstr(uri->host, ==, good[i].host);
		g_assert_cmpint(uri->port, ==, good[i].port);
		g_assert_cmpstr(uri->socket, ==, good[i].socket);
	}
}

typedef struct {
	const gchar *text;
	const gchar *names; /* the part of the message that names what is wrong */
} BadUri;

static void
test_remote_uri_bad(void)
{
	const BadUri bad[] = {
	    {"http://host", "the scheme 'http' of 'http://host' is not ssh"},
	    {"ssh:host", "the host of 'ssh:host' is empty"},
	    {"host", "'host' is not a URI"},
	    {"", "'' is not a URI"},
	    {"ssh://", "the host of 'ssh://' is empty"},
	    {"ssh://alice@", "the host of 'ssh://alice@' is empty"},
	    {"ssh://@host", "the user of 'ssh://@host' is empty"},
	    {"ssh://alice:secret@host", "the URI holds a password"},
	    /* ssh would take it as an option */
	    {"ssh://-oProxyCommand=x", "the host '-oProxyCommand=x' is not a host name"},
	    {"ssh://host:0", "the port of 'ssh://host:0' is not a number from 1 to 65535"},
	    {"ssh://host:65536", "the port of 'ssh://host:65536' is not a number from 1 to 65535"},
	    {"ssh://host:ssh", "the port of 'ssh://host:ssh' is not a number from 1 to 65535"},
	    {"ssh://host/system", "the path '/system' means nothing here"},
	    {"ssh://host#x", "the fragment '#x' means nothing here"},
	    {"ssh://host?sock=/x", "the query key 'sock' is unknown (the only one is 'socket')"},
	    {"ssh://host?socket=/x&user=y", "the query key 'user' is unknown"},
	    {"ssh://host?socket=run/x.sock",
	     "socket='run/x.sock' is not an absolute path on the remote host"},
	    {"ssh://host?socket=", "socket='' is not an absolute path"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(VmsupRemoteUri) uri = vmsup_remote_uri_parse(bad[i].text, &error);

		g_test_message("'%s': %s", bad[i].text, error != NULL ? error->message : "(none)");
		g_assert_null(uri);
		g_assert_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, bad[i].names));
		/* and how it is written */
		g_assert_true(g_str_has_suffix(error->message, FORM));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmsup/remote-uri/good", test_remote_uri_good);
	g_test_add_func("/vmsup/remote-uri/bad", test_remote_uri_bad);
	return g_test_run();
}
