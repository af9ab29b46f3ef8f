/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the account the seed creates in the guest; vmsup shell logs in as it */
#define VMSUP_CLOUD_INIT_USER "vmsup"
#define VMSUP_CLOUD_INIT_MAX_SSH_KEY 16384
#define VMSUP_CLOUD_INIT_MAX_SSH_KEYS 32
#define VMSUP_CLOUD_INIT_MAX_USER_DATA (64 * 1024)

/*
 * Whether @line is one OpenSSH public key line, "TYPE BASE64 [COMMENT]":
 * a known key type whose base64 blob decodes and names that type. Leading
 * and trailing white space is allowed; anything else is INVALID_ARGUMENT
 * saying what the line should look like. @what names it in the message.
 */
gboolean
vmsup_cloud_init_check_ssh_key(const gchar *what, const gchar *line, GError **error);

/*
 * Whether @text is user-data vmsupd passes on: "#cloud-config" on its
 * first line, UTF-8 text without control characters (tabs in indentation
 * included: YAML refuses them), at most VMSUP_CLOUD_INIT_MAX_USER_DATA bytes.
 */
gboolean
vmsup_cloud_init_check_user_data(const gchar *text, GError **error);

/* NoCloud meta-data: an instance-id for the VM's life (name and creation time), its hostname */
gchar *
vmsup_cloud_init_meta_data(const gchar *name, gint64 created);

/*
 * NoCloud user-data: a MIME multipart whose first part creates
 * VMSUP_CLOUD_INIT_USER (passwordless sudo, @keys authorized) and whose
 * second, when @user_data is not NULL, is the caller's cloud-config merged
 * over it with lists appended.
 */
gchar *
vmsup_cloud_init_user_data(const gchar *const *keys, const gchar *user_data);

/*
 * The host keys cloud-init printed on the console between its "BEGIN SSH
 * HOST KEY KEYS" and "END" lines, each "TYPE BASE64", checked as public
 * keys; NULL until both lines are there and at least one key is valid.
 */
GStrv
vmsup_cloud_init_parse_host_keys(const gchar *console, gsize length);

G_END_DECLS
