/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a VM's NoCloud seed says (meta-data, user-data), the checks of what
 * a caller adds to it, and the reading of the host keys cloud-init prints
 * on the console.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "vmsup-cloud-init.h"
#include "vmsup-error.h"

#define VMSUP_CLOUD_INIT_BEGIN_KEYS "-----BEGIN SSH HOST KEY KEYS-----"
#define VMSUP_CLOUD_INIT_END_KEYS "-----END SSH HOST KEY KEYS-----"

static const gchar *const vmsup_cloud_init_key_types[] = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    NULL,
};

static void
vmsup_cloud_init_set_key_error(const gchar *what, const gchar *why, GError **error)
{
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    /* TRANSLATORS: The SSH key 'id.txt' is not an OpenSSH public key (no key
		       type): ... */
		    _("The SSH key %s is not an OpenSSH public key (%s): give the .pub file, "
		      "one line like 'ssh-ed25519 AAAA… comment'"),
		    what,
		    why);
}

static gboolean
vmsup_cloud_init_is_base64(const gchar *text)
{
	gsize len = strlen(text);

	if (len == 0 || len % 4 != 0)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		gchar c = text[i];
		if (!g_ascii_isalnum(c) && c != '+' && c != '/' && !(c == '=' && i + 2 >= len))
			return FALSE;
	}
	return TRUE;
}

gboolean
vmsup_cloud_init_check_ssh_key(const gchar *what, const gchar *line, GError **error)
{
	g_autofree gchar *copy = NULL;
	g_auto(GStrv) fields = NULL;
	g_autofree guchar *blob = NULL;
	gsize blob_len = 0;
	gsize type_len;
	guint32 name_len;

	g_return_val_if_fail(line != NULL, FALSE);
	if (strlen(line) > VMSUP_CLOUD_INIT_MAX_SSH_KEY) {
		vmsup_cloud_init_set_key_error(what, _("it is too long"), error);
		return FALSE;
	}
	if (!g_utf8_validate(line, -1, NULL)) {
		vmsup_cloud_init_set_key_error(what, _("it is not text"), error);
		return FALSE;
	}
	copy = g_strstrip(g_strdup(line));
	for (const gchar *p = copy; *p != '\0'; p++) {
		if (((guchar)*p < 0x20 && *p != ' ' && *p != '\t') || *p == 0x7f) {
			vmsup_cloud_init_set_key_error(
			    what,
			    _("it is more than one line, or holds control characters"),
			    error);
			return FALSE;
		}
	}
	fields = g_strsplit_set(copy, " \t", 3);
	if (fields[0] == NULL || !g_strv_contains(vmsup_cloud_init_key_types, fields[0])) {
		vmsup_cloud_init_set_key_error(what, _("it does not start with a key type"), error);
		return FALSE;
	}
	if (fields[1] == NULL || !vmsup_cloud_init_is_base64(fields[1])) {
		vmsup_cloud_init_set_key_error(what, _("no base64 key follows its type"), error);
		return FALSE;
	}
	blob = g_base64_decode(fields[1], &blob_len);
	type_len = strlen(fields[0]);
	/* the blob starts with its own type, as a length-prefixed string */
	if (blob_len < 4 + type_len) {
		vmsup_cloud_init_set_key_error(what, _("its key is cut short"), error);
		return FALSE;
	}
	name_len = ((guint32)blob[0] << 24) | ((guint32)blob[1] << 16) | ((guint32)blob[2] << 8) |
		   (guint32)blob[3];
	if (name_len != type_len || memcmp(blob + 4, fields[0], type_len) != 0) {
		vmsup_cloud_init_set_key_error(what,
					       _("its key is not of the type it names"),
					       error);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmsup_cloud_init_check_user_data(const gchar *text, GError **error)
{
	const gchar *first_end;
	g_autofree gchar *first = NULL;

	g_return_val_if_fail(text != NULL, FALSE);
	if (strlen(text) > VMSUP_CLOUD_INIT_MAX_USER_DATA) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("The user-data is larger than %u KiB; make it smaller"),
			    (guint)(VMSUP_CLOUD_INIT_MAX_USER_DATA / 1024));
		return FALSE;
	}
	if (!g_utf8_validate(text, -1, NULL)) {
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("The user-data is not UTF-8 text; give a cloud-config file"));
		return FALSE;
	}
	first_end = strchr(text, '\n');
	first = first_end != NULL ? g_strndup(text, first_end - text) : g_strdup(text);
	if (g_strcmp0(g_strchomp(first), "#cloud-config") != 0) {
		g_set_error_literal(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("The user-data is not cloud-config: its first line must be "
		      "'#cloud-config' (scripts, includes and MIME parts are not taken)"));
		return FALSE;
	}
	for (const gchar *p = text; *p != '\0'; p++) {
		gboolean line_start = p == text || p[-1] == '\n';
		if (*p == '\t' && line_start) {
			g_set_error_literal(error,
					    VMSUP_ERROR,
					    VMSUP_ERROR_INVALID_ARGUMENT,
					    _("The user-data indents a line with a tab, which "
					      "YAML refuses; indent with spaces"));
			return FALSE;
		}
		if (((guchar)*p < 0x20 && *p != '\n' && *p != '\r' && *p != '\t') || *p == 0x7f) {
			g_set_error_literal(error,
					    VMSUP_ERROR,
					    VMSUP_ERROR_INVALID_ARGUMENT,
					    _("The user-data holds control characters; give a "
					      "cloud-config text file"));
			return FALSE;
		}
	}
	return TRUE;
}

gchar *
vmsup_cloud_init_meta_data(const gchar *name, gint64 created)
{
	return g_strdup_printf("instance-id: vmsup-%s-%" G_GINT64_FORMAT "\n"
			       "local-hostname: %s\n",
			       name,
			       created,
			       name);
}

/* a YAML double-quoted scalar; the checked keys hold no control characters */
static void
vmsup_cloud_init_append_quoted(GString *out, const gchar *text)
{
	g_string_append_c(out, '"');
	for (const gchar *p = text; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *p);
	}
	g_string_append_c(out, '"');
}

gchar *
vmsup_cloud_init_user_data(const gchar *const *keys, const gchar *user_data)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_autofree gchar *boundary = NULL;

	/* a boundary the caller's text does not hold */
	do {
		g_free(boundary);
		boundary = g_strdup_printf("==vmsup-%08x%08x==", g_random_int(), g_random_int());
	} while (user_data != NULL && strstr(user_data, boundary) != NULL);

	g_string_append_printf(out,
			       "Content-Type: multipart/mixed; boundary=\"%s\"\n"
			       "MIME-Version: 1.0\n\n",
			       boundary);
	g_string_append_printf(out,
			       "--%s\n"
			       "Content-Type: text/cloud-config; charset=\"utf-8\"\n"
			       "MIME-Version: 1.0\n"
			       "Content-Disposition: attachment; filename=\"vmsup.cfg\"\n\n",
			       boundary);
	g_string_append(out,
			"#cloud-config\n"
			"users:\n"
			"  - name: " VMSUP_CLOUD_INIT_USER "\n"
			"    sudo: ALL=(ALL) NOPASSWD:ALL\n"
			"    shell: /bin/bash\n"
			"    lock_passwd: true\n"
			"    ssh_authorized_keys:\n");
	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		g_autofree gchar *key = g_strstrip(g_strdup(keys[i]));
		g_string_append(out, "      - ");
		vmsup_cloud_init_append_quoted(out, key);
		g_string_append_c(out, '\n');
	}
	if (user_data != NULL) {
		g_string_append_printf(
		    out,
		    "--%s\n"
		    "Content-Type: text/cloud-config; charset=\"utf-8\"\n"
		    "MIME-Version: 1.0\n"
		    "Content-Disposition: attachment; filename=\"user-data.cfg\"\n"
		    "Merge-Type: list(append)+dict(recurse_array)+str()\n\n",
		    boundary);
		g_string_append(out, user_data);
		if (!g_str_has_suffix(user_data, "\n"))
			g_string_append_c(out, '\n');
	}
	g_string_append_printf(out, "--%s--\n", boundary);
	return g_string_free(g_steal_pointer(&out), FALSE);
}

GStrv
vmsup_cloud_init_parse_host_keys(const gchar *console, gsize length)
{
	g_autofree gchar *text = NULL;
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	g_auto(GStrv) lines = NULL;
	g_autofree gchar *block = NULL;
	const gchar *begin;
	const gchar *end;
	guint count = 0;

	g_return_val_if_fail(console != NULL, NULL);
	/* the console is the guest's: NUL bytes end nothing here */
	text = g_strndup(console, length);
	for (gsize i = 0; i < length; i++)
		if (text[i] == '\0')
			text[i] = ' ';
	begin = strstr(text, VMSUP_CLOUD_INIT_BEGIN_KEYS);
	if (begin == NULL)
		return NULL;
	end = strstr(begin, VMSUP_CLOUD_INIT_END_KEYS);
	if (end == NULL)
		return NULL;
	begin += strlen(VMSUP_CLOUD_INIT_BEGIN_KEYS);
	block = g_strndup(begin, end - begin);
	lines = g_strsplit_set(block, "\r\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) fields = g_strsplit_set(g_strstrip(lines[i]), " \t", 3);
		g_autofree gchar *key = NULL;
		if (fields[0] == NULL || fields[1] == NULL)
			continue;
		key = g_strdup_printf("%s %s", fields[0], fields[1]);
		if (!vmsup_cloud_init_check_ssh_key("", key, NULL))
			continue;
		g_strv_builder_add(builder, key);
		count++;
	}
	if (count == 0)
		return NULL;
	return g_strv_builder_end(builder);
}
