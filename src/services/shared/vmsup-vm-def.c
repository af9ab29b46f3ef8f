/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A VM's definition: what vm.create asked for. Parsed from requests and from
 * the stored JSON with the same checks, so a stored file that would not pass
 * as a request is treated as corrupt.
 */

#include "config.h"

#include <glib/gi18n.h>
#include <unistd.h>

#include "vmsup-cloud-init.h"
#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-paths.h"
#include "vmsup-policy.h"
#include "vmsup-vm-def.h"

#define VMSUP_VM_DEF_VERSION 1

const gchar *const vmsup_vm_def_settable_fields[] = {"cpus",
						     "memory_mib",
						     "cmdline",
						     "auto_stop",
						     "autostart",
						     "forward",
						     "cpu_quota_percent",
						     "memory_max_mib",
						     NULL};

static const gchar *const vmsup_vm_def_restart_fields[] = {"cpus",
							   "memory_mib",
							   "cmdline",
							   "forward",
							   NULL};

/* fields vm.create takes besides the name */
static const gchar *const vmsup_vm_def_create_fields[] = {"cpus",
							  "memory_mib",
							  "kernel",
							  "initrd",
							  "cmdline",
							  "image",
							  "disk_gib",
							  "forward",
							  "auto_stop",
							  "autostart",
							  "cpu_quota_percent",
							  "memory_max_mib",
							  "firmware",
							  "ssh_keys",
							  "user_data",
							  NULL};

/*
 * Fields only in-process callers set (WorkspaceService, through VMService's
 * verbs): accepted by create and set, stored, but absent from the RPC
 * schemas and from the field lists shown to clients.
 */
static const gchar *const vmsup_vm_def_internal_fields[] = {"share_dir", NULL};

VmsupVmDef *
vmsup_vm_def_new(const gchar *name)
{
	VmsupVmDef *def = g_new0(VmsupVmDef, 1);
	def->name = g_strdup(name);
	def->cpus = VMSUP_VM_DEF_DEFAULT_CPUS;
	def->memory_mib = VMSUP_VM_DEF_DEFAULT_MEMORY_MIB;
	def->auto_stop = TRUE;
	def->created = g_get_real_time() / G_USEC_PER_SEC;
	def->owner_uid = (guint32)geteuid();
	return def;
}

VmsupVmDef *
vmsup_vm_def_copy(const VmsupVmDef *def)
{
	VmsupVmDef *copy = g_new0(VmsupVmDef, 1);
	*copy = *def;
	copy->name = g_strdup(def->name);
	copy->kernel = g_strdup(def->kernel);
	copy->initrd = g_strdup(def->initrd);
	copy->cmdline = g_strdup(def->cmdline);
	copy->image = g_strdup(def->image);
	copy->disk = g_strdup(def->disk);
	copy->share_dir = g_strdup(def->share_dir);
	copy->firmware = g_strdup(def->firmware);
	copy->ssh_keys = g_strdupv(def->ssh_keys);
	copy->user_data = g_strdup(def->user_data);
	if (def->forward != NULL) {
		copy->forward = g_array_sized_new(FALSE, FALSE, sizeof(guint16), def->forward->len);
		g_array_append_vals(copy->forward, def->forward->data, def->forward->len);
	}
	return copy;
}

void
vmsup_vm_def_free(VmsupVmDef *def)
{
	if (def == NULL)
		return;
	g_free(def->name);
	g_free(def->kernel);
	g_free(def->initrd);
	g_free(def->cmdline);
	g_free(def->image);
	g_free(def->disk);
	g_free(def->share_dir);
	g_free(def->firmware);
	g_strfreev(def->ssh_keys);
	g_free(def->user_data);
	if (def->forward != NULL)
		g_array_unref(def->forward);
	g_free(def);
}

gchar *
vmsup_vm_def_format_time(gint64 unix_seconds)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(unix_seconds);
	if (dt == NULL)
		return g_strdup("1970-01-01T00:00:00Z");
	return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

static gboolean
vmsup_vm_def_parse_uint(const gchar *member,
			JsonNode *node,
			guint min,
			guint max,
			guint *out_value,
			GError **error)
{
	gint64 value;

	if (!vmsup_json_node_get_int_in_range(node, member, min, max, &value, error))
		return FALSE;
	*out_value = (guint)value;
	return TRUE;
}

static gboolean
vmsup_vm_def_parse_string(const gchar *member,
			  JsonNode *node,
			  gboolean is_path,
			  gchar **out_value,
			  GError **error)
{
	const gchar *value;

	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' must be a string, got %s"),
			    member,
			    vmsup_json_node_type_name(node));
		return FALSE;
	}
	value = json_node_get_string(node);
	if (strlen(value) > VMSUP_VM_DEF_MAX_STRING) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' is longer than %u characters"),
			    member,
			    (guint)VMSUP_VM_DEF_MAX_STRING);
		return FALSE;
	}
	for (const gchar *p = value; *p != '\0'; p++) {
		if ((guchar)*p < 0x20 || *p == 0x7f) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("'%s' must not contain control characters"),
				    member);
			return FALSE;
		}
	}
	if (is_path && !g_path_is_absolute(value)) {
		g_autofree gchar *shown = g_strescape(value, NULL);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' must be an absolute path, got '%s'"),
			    member,
			    shown);
		return FALSE;
	}
	g_free(*out_value);
	*out_value = value[0] != '\0' ? g_strdup(value) : NULL;
	return TRUE;
}

static gboolean
vmsup_vm_def_parse_forward(JsonNode *node, GArray **out_forward, GError **error)
{
	g_autoptr(GArray) ports = NULL;
	JsonArray *array;

	if (!JSON_NODE_HOLDS_ARRAY(node)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'forward' must be an array of guest ports, got %s"),
			    vmsup_json_node_type_name(node));
		return FALSE;
	}
	array = json_node_get_array(node);
	if (json_array_get_length(array) > VMSUP_VM_DEF_MAX_FORWARDS) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'forward' lists %u ports; at most %u are allowed"),
			    json_array_get_length(array),
			    (guint)VMSUP_VM_DEF_MAX_FORWARDS);
		return FALSE;
	}
	ports = g_array_new(FALSE, FALSE, sizeof(guint16));
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *element = json_array_get_element(array, i);
		guint port = 0;
		guint16 port16;
		if (!vmsup_vm_def_parse_uint("forward", element, 1, G_MAXUINT16, &port, error))
			return FALSE;
		for (guint j = 0; j < ports->len; j++) {
			if (g_array_index(ports, guint16, j) == port) {
				g_set_error(error,
					    VMSUP_ERROR,
					    VMSUP_ERROR_INVALID_ARGUMENT,
					    _("'forward' lists port %u twice"),
					    port);
				return FALSE;
			}
		}
		port16 = (guint16)port;
		g_array_append_val(ports, port16);
	}
	if (out_forward != NULL) {
		g_clear_pointer(out_forward, g_array_unref);
		if (ports->len > 0)
			*out_forward = g_steal_pointer(&ports);
	}
	return TRUE;
}

static gboolean
vmsup_vm_def_parse_firmware(JsonNode *node, gchar **out_value, GError **error)
{
	g_autofree gchar *value = NULL;

	if (!vmsup_vm_def_parse_string("firmware", node, FALSE, &value, error))
		return FALSE;
	if (g_strcmp0(value, "bios") != 0 && g_strcmp0(value, "uefi") != 0) {
		g_autofree gchar *shown = g_strescape(value != NULL ? value : "", NULL);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'firmware' must be 'bios' or 'uefi', not '%s'"),
			    shown);
		return FALSE;
	}
	g_free(*out_value);
	*out_value = g_steal_pointer(&value);
	return TRUE;
}

static gboolean
vmsup_vm_def_parse_ssh_keys(JsonNode *node, GStrv *out_keys, GError **error)
{
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	JsonArray *array;

	if (!JSON_NODE_HOLDS_ARRAY(node)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'ssh_keys' must be an array of public key lines, got %s"),
			    vmsup_json_node_type_name(node));
		return FALSE;
	}
	array = json_node_get_array(node);
	if (json_array_get_length(array) > VMSUP_CLOUD_INIT_MAX_SSH_KEYS) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'ssh_keys' lists %u keys; at most %u are allowed"),
			    json_array_get_length(array),
			    (guint)VMSUP_CLOUD_INIT_MAX_SSH_KEYS);
		return FALSE;
	}
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *element = json_array_get_element(array, i);
		g_autofree gchar *what = g_strdup_printf(_("number %u of 'ssh_keys'"), i + 1);
		if (!JSON_NODE_HOLDS_VALUE(element) ||
		    json_node_get_value_type(element) != G_TYPE_STRING) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("'ssh_keys' must be an array of public key lines, got %s "
				      "in it"),
				    vmsup_json_node_type_name(element));
			return FALSE;
		}
		if (!vmsup_cloud_init_check_ssh_key(what, json_node_get_string(element), error))
			return FALSE;
		g_strv_builder_add(builder, json_node_get_string(element));
	}
	g_strfreev(*out_keys);
	*out_keys = json_array_get_length(array) > 0 ? g_strv_builder_end(builder) : NULL;
	return TRUE;
}

static gboolean
vmsup_vm_def_parse_user_data(JsonNode *node, gchar **out_value, GError **error)
{
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'%s' must be a string, got %s"),
			    "user_data",
			    vmsup_json_node_type_name(node));
		return FALSE;
	}
	if (!vmsup_cloud_init_check_user_data(json_node_get_string(node), error))
		return FALSE;
	g_free(*out_value);
	*out_value = g_strdup(json_node_get_string(node));
	return TRUE;
}

static void
vmsup_vm_def_reset_member(VmsupVmDef *def, const gchar *member)
{
	if (g_strcmp0(member, "cpus") == 0)
		def->cpus = VMSUP_VM_DEF_DEFAULT_CPUS;
	else if (g_strcmp0(member, "memory_mib") == 0)
		def->memory_mib = VMSUP_VM_DEF_DEFAULT_MEMORY_MIB;
	else if (g_strcmp0(member, "kernel") == 0)
		g_clear_pointer(&def->kernel, g_free);
	else if (g_strcmp0(member, "initrd") == 0)
		g_clear_pointer(&def->initrd, g_free);
	else if (g_strcmp0(member, "cmdline") == 0)
		g_clear_pointer(&def->cmdline, g_free);
	else if (g_strcmp0(member, "image") == 0)
		g_clear_pointer(&def->image, g_free);
	else if (g_strcmp0(member, "disk") == 0)
		g_clear_pointer(&def->disk, g_free);
	else if (g_strcmp0(member, "share_dir") == 0)
		g_clear_pointer(&def->share_dir, g_free);
	else if (g_strcmp0(member, "disk_gib") == 0)
		def->disk_gib = 0;
	else if (g_strcmp0(member, "forward") == 0)
		g_clear_pointer(&def->forward, g_array_unref);
	else if (g_strcmp0(member, "auto_stop") == 0)
		def->auto_stop = TRUE;
	else if (g_strcmp0(member, "autostart") == 0)
		def->autostart = FALSE;
	else if (g_strcmp0(member, "cpu_quota_percent") == 0)
		def->cpu_quota_percent = 0;
	else if (g_strcmp0(member, "memory_max_mib") == 0)
		def->memory_max_mib = 0;
	else if (g_strcmp0(member, "firmware") == 0)
		g_clear_pointer(&def->firmware, g_free);
	else if (g_strcmp0(member, "ssh_keys") == 0)
		g_clear_pointer(&def->ssh_keys, g_strfreev);
	else if (g_strcmp0(member, "user_data") == 0)
		g_clear_pointer(&def->user_data, g_free);
}

/* one known member; FALSE without @error when @member is not a definition field */
static gboolean
vmsup_vm_def_set_member(VmsupVmDef *def, const gchar *member, JsonNode *node, GError **error)
{
	/* JSON null resets a field to its default */
	if (JSON_NODE_HOLDS_NULL(node)) {
		vmsup_vm_def_reset_member(def, member);
		return TRUE;
	}
	if (g_strcmp0(member, "cpus") == 0)
		return vmsup_vm_def_parse_uint(member,
					       node,
					       1,
					       VMSUP_VM_DEF_MAX_CPUS,
					       &def->cpus,
					       error);
	if (g_strcmp0(member, "memory_mib") == 0)
		return vmsup_vm_def_parse_uint(member,
					       node,
					       VMSUP_VM_DEF_MIN_MEMORY_MIB,
					       VMSUP_VM_DEF_MAX_MEMORY_MIB,
					       &def->memory_mib,
					       error);
	/* 0 clears a limit, as null does */
	if (g_strcmp0(member, "cpu_quota_percent") == 0)
		return vmsup_vm_def_parse_uint(member,
					       node,
					       0,
					       VMSUP_VM_DEF_MAX_CPU_QUOTA_PERCENT,
					       &def->cpu_quota_percent,
					       error);
	if (g_strcmp0(member, "memory_max_mib") == 0)
		return vmsup_vm_def_parse_uint(member,
					       node,
					       0,
					       VMSUP_VM_DEF_MAX_MEMORY_MAX_MIB,
					       &def->memory_max_mib,
					       error);
	if (g_strcmp0(member, "disk_gib") == 0)
		return vmsup_vm_def_parse_uint(member,
					       node,
					       0,
					       VMSUP_VM_DEF_MAX_DISK_GIB,
					       &def->disk_gib,
					       error);
	if (g_strcmp0(member, "kernel") == 0)
		return vmsup_vm_def_parse_string(member, node, TRUE, &def->kernel, error);
	if (g_strcmp0(member, "initrd") == 0)
		return vmsup_vm_def_parse_string(member, node, TRUE, &def->initrd, error);
	if (g_strcmp0(member, "image") == 0)
		return vmsup_vm_def_parse_string(member, node, TRUE, &def->image, error);
	if (g_strcmp0(member, "disk") == 0)
		return vmsup_vm_def_parse_string(member, node, TRUE, &def->disk, error);
	if (g_strcmp0(member, "share_dir") == 0)
		return vmsup_vm_def_parse_string(member, node, TRUE, &def->share_dir, error);
	if (g_strcmp0(member, "cmdline") == 0)
		return vmsup_vm_def_parse_string(member, node, FALSE, &def->cmdline, error);
	if (g_strcmp0(member, "forward") == 0)
		return vmsup_vm_def_parse_forward(node, &def->forward, error);
	if (g_strcmp0(member, "auto_stop") == 0)
		return vmsup_json_node_get_checked_bool(node, member, &def->auto_stop, error);
	if (g_strcmp0(member, "autostart") == 0)
		return vmsup_json_node_get_checked_bool(node, member, &def->autostart, error);
	if (g_strcmp0(member, "firmware") == 0)
		return vmsup_vm_def_parse_firmware(node, &def->firmware, error);
	if (g_strcmp0(member, "ssh_keys") == 0)
		return vmsup_vm_def_parse_ssh_keys(node, &def->ssh_keys, error);
	if (g_strcmp0(member, "user_data") == 0)
		return vmsup_vm_def_parse_user_data(node, &def->user_data, error);
	g_assert_not_reached();
}

static void
vmsup_vm_def_set_unknown_error(const gchar *member, const gchar *const *known, GError **error)
{
	g_autofree gchar *shown = g_strescape(member, NULL);
	g_autofree gchar *list = g_strjoinv(", ", (gchar **)known);
	g_set_error(error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("Unknown field '%s'; known fields: %s"),
		    shown,
		    list);
}

gboolean
vmsup_vm_def_uid_is_restricted(guint32 uid)
{
	return vmsup_caller_uid_is_restricted(uid);
}

/* the files of @def, checked by the policy for @caller */
static gboolean
vmsup_vm_def_check_files_for(const VmsupVmDef *def, const VmsupCaller *caller, GError **error)
{
	return vmsup_policy_check_host_files(caller,
					     def->kernel,
					     def->initrd,
					     def->image,
					     def->share_dir,
					     error);
}

gboolean
vmsup_vm_def_is_bundled_guest(const VmsupVmDef *def)
{
	return def->image == NULL && vmsup_paths_is_guest_file(def->kernel) &&
	       vmsup_paths_is_guest_file(def->initrd);
}

gboolean
vmsup_vm_def_check_caller(const VmsupVmDef *def, guint32 uid, GError **error)
{
	VmsupCaller caller = vmsup_caller_for_uid(uid);

	g_return_val_if_fail(def != NULL, FALSE);
	return vmsup_vm_def_check_files_for(def, &caller, error);
}

VmsupVmDef *
vmsup_vm_def_new_from_params(JsonObject *params,
			     const gchar *const *ignore,
			     const VmsupCaller *caller,
			     GError **error)
{
	g_autoptr(VmsupVmDef) def = NULL;
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;

	def = vmsup_vm_def_new(vmsup_json_object_get_string(params, "name", NULL));
	json_object_iter_init(&iter, params);
	while (json_object_iter_next(&iter, &member, &node)) {
		if (g_strcmp0(member, "name") == 0)
			continue;
		if (ignore != NULL && g_strv_contains(ignore, member))
			continue;
		if (!g_strv_contains(vmsup_vm_def_create_fields, member) &&
		    !g_strv_contains(vmsup_vm_def_internal_fields, member)) {
			vmsup_vm_def_set_unknown_error(member, vmsup_vm_def_create_fields, error);
			return NULL;
		}
		if (!vmsup_vm_def_set_member(def, member, node, error))
			return NULL;
	}
	if (caller != NULL) {
		def->owner_uid = caller->uid;
		if (!vmsup_vm_def_check_files_for(def, caller, error))
			return NULL;
	}
	return g_steal_pointer(&def);
}

gboolean
vmsup_vm_def_field_needs_restart(const gchar *field)
{
	return g_strv_contains(vmsup_vm_def_restart_fields, field) ||
	       g_strv_contains(vmsup_vm_def_internal_fields, field);
}

static gboolean
vmsup_vm_def_forward_equal(GArray *a, GArray *b)
{
	guint len_a = a != NULL ? a->len : 0;
	guint len_b = b != NULL ? b->len : 0;
	if (len_a != len_b)
		return FALSE;
	return len_a == 0 || memcmp(a->data, b->data, len_a * sizeof(guint16)) == 0;
}

gboolean
vmsup_vm_def_field_equal(const VmsupVmDef *a, const VmsupVmDef *b, const gchar *field)
{
	if (g_strcmp0(field, "cpus") == 0)
		return a->cpus == b->cpus;
	if (g_strcmp0(field, "memory_mib") == 0)
		return a->memory_mib == b->memory_mib;
	if (g_strcmp0(field, "cmdline") == 0)
		return g_strcmp0(a->cmdline, b->cmdline) == 0;
	if (g_strcmp0(field, "auto_stop") == 0)
		return a->auto_stop == b->auto_stop;
	if (g_strcmp0(field, "autostart") == 0)
		return a->autostart == b->autostart;
	if (g_strcmp0(field, "forward") == 0)
		return vmsup_vm_def_forward_equal(a->forward, b->forward);
	if (g_strcmp0(field, "share_dir") == 0)
		return g_strcmp0(a->share_dir, b->share_dir) == 0;
	if (g_strcmp0(field, "cpu_quota_percent") == 0)
		return a->cpu_quota_percent == b->cpu_quota_percent;
	if (g_strcmp0(field, "memory_max_mib") == 0)
		return a->memory_max_mib == b->memory_max_mib;
	g_return_val_if_reached(FALSE);
}

GStrv
vmsup_vm_def_pending_restart(const VmsupVmDef *def, const VmsupVmDef *running)
{
	g_autoptr(GStrvBuilder) pending = g_strv_builder_new();
	const gchar *const *lists[] = {vmsup_vm_def_settable_fields, vmsup_vm_def_internal_fields};

	for (guint l = 0; running != NULL && l < G_N_ELEMENTS(lists); l++) {
		for (guint i = 0; lists[l][i] != NULL; i++) {
			const gchar *field = lists[l][i];
			if (vmsup_vm_def_field_needs_restart(field) &&
			    !vmsup_vm_def_field_equal(def, running, field))
				g_strv_builder_add(pending, field);
		}
	}
	return g_strv_builder_end(pending);
}

gboolean
vmsup_vm_def_apply(VmsupVmDef *def,
		   JsonObject *fields,
		   const gchar *const *ignore,
		   const VmsupCaller *caller,
		   GStrv *out_changed,
		   GError **error)
{
	g_autoptr(VmsupVmDef) copy = vmsup_vm_def_copy(def);
	g_autoptr(GStrvBuilder) changed = g_strv_builder_new();
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;
	guint n_fields = 0;

	json_object_iter_init(&iter, fields);
	while (json_object_iter_next(&iter, &member, &node)) {
		if (ignore != NULL && g_strv_contains(ignore, member))
			continue;
		if (g_strv_contains(vmsup_vm_def_create_fields, member) &&
		    !g_strv_contains(vmsup_vm_def_settable_fields, member)) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("'%s' cannot be changed after creation; create a new VM "
				      "instead"),
				    member);
			return FALSE;
		}
		if (!g_strv_contains(vmsup_vm_def_settable_fields, member) &&
		    !g_strv_contains(vmsup_vm_def_internal_fields, member)) {
			vmsup_vm_def_set_unknown_error(member, vmsup_vm_def_settable_fields, error);
			return FALSE;
		}
		if (!vmsup_vm_def_set_member(copy, member, node, error))
			return FALSE;
		n_fields++;
	}
	if (n_fields == 0) {
		g_autofree gchar *list = g_strjoinv(", ", (gchar **)vmsup_vm_def_settable_fields);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Nothing to change; settable fields: %s"),
			    list);
		return FALSE;
	}
	if (!vmsup_vm_def_validate(copy, error))
		return FALSE;
	/* the VM as it would be, its old files too: the caller must be able to read them all */
	if (caller != NULL && !vmsup_vm_def_check_files_for(copy, caller, error))
		return FALSE;

	for (guint i = 0; vmsup_vm_def_settable_fields[i] != NULL; i++) {
		const gchar *field = vmsup_vm_def_settable_fields[i];
		if (!vmsup_vm_def_field_equal(def, copy, field))
			g_strv_builder_add(changed, field);
	}
	for (guint i = 0; vmsup_vm_def_internal_fields[i] != NULL; i++) {
		const gchar *field = vmsup_vm_def_internal_fields[i];
		if (!vmsup_vm_def_field_equal(def, copy, field))
			g_strv_builder_add(changed, field);
	}
	/* swap contents so @def keeps its address */
	{
		VmsupVmDef tmp = *def;
		*def = *copy;
		*copy = tmp;
	}
	if (out_changed != NULL)
		*out_changed = g_strv_builder_end(changed);
	return TRUE;
}

gboolean
vmsup_vm_def_validate(const VmsupVmDef *def, GError **error)
{
	if (def->initrd != NULL && def->kernel == NULL) {
		g_set_error_literal(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("'initrd' needs 'kernel'; pass both, or neither for the bundled "
		      "guest"));
		return FALSE;
	}
	if (def->cmdline != NULL && def->kernel == NULL) {
		g_set_error_literal(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    _("'cmdline' needs 'kernel': a VM booting from 'image' uses the "
		      "image's own boot loader"));
		return FALSE;
	}
	if (def->kernel == NULL && def->image == NULL) {
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("Nothing to boot: pass 'kernel' or 'image'"));
		return FALSE;
	}
	if (def->image == NULL &&
	    (def->firmware != NULL || def->ssh_keys != NULL || def->user_data != NULL)) {
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    _("'firmware', 'ssh_keys' and 'user_data' are for VMs booting "
				      "from 'image'; pass 'image' too, or leave them out"));
		return FALSE;
	}
	/* the cap is on the whole QEMU: the guest's memory, and QEMU's own on top */
	if (def->memory_max_mib > 0 &&
	    def->memory_max_mib < def->memory_mib + VMSUP_VM_DEF_QEMU_OVERHEAD_MIB) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("'memory_max_mib' (%u) caps all of QEMU, which needs the guest's "
			      "%u MiB and at least %u MiB of its own: ask for at least %u MiB, "
			      "or lower 'memory_mib'"),
			    def->memory_max_mib,
			    def->memory_mib,
			    (guint)VMSUP_VM_DEF_QEMU_OVERHEAD_MIB,
			    def->memory_mib + VMSUP_VM_DEF_QEMU_OVERHEAD_MIB);
		return FALSE;
	}
	return TRUE;
}

JsonObject *
vmsup_vm_def_to_json(const VmsupVmDef *def)
{
	g_autoptr(JsonObject) obj = json_object_new();
	g_autofree gchar *created = vmsup_vm_def_format_time(def->created);

	json_object_set_string_member(obj, "name", def->name);
	json_object_set_int_member(obj, "cpus", def->cpus);
	json_object_set_int_member(obj, "memory_mib", def->memory_mib);
	if (def->kernel != NULL)
		json_object_set_string_member(obj, "kernel", def->kernel);
	if (def->initrd != NULL)
		json_object_set_string_member(obj, "initrd", def->initrd);
	if (def->cmdline != NULL)
		json_object_set_string_member(obj, "cmdline", def->cmdline);
	if (def->image != NULL)
		json_object_set_string_member(obj, "image", def->image);
	if (def->disk != NULL)
		json_object_set_string_member(obj, "disk", def->disk);
	if (def->disk_gib > 0)
		json_object_set_int_member(obj, "disk_gib", def->disk_gib);
	if (def->share_dir != NULL)
		json_object_set_string_member(obj, "share_dir", def->share_dir);
	if (def->forward != NULL) {
		g_autoptr(JsonArray) ports = json_array_new();
		for (guint i = 0; i < def->forward->len; i++)
			json_array_add_int_element(ports, g_array_index(def->forward, guint16, i));
		json_object_set_array_member(obj, "forward", g_steal_pointer(&ports));
	}
	json_object_set_boolean_member(obj, "auto_stop", def->auto_stop);
	json_object_set_boolean_member(obj, "autostart", def->autostart);
	if (def->cpu_quota_percent > 0)
		json_object_set_int_member(obj, "cpu_quota_percent", def->cpu_quota_percent);
	if (def->memory_max_mib > 0)
		json_object_set_int_member(obj, "memory_max_mib", def->memory_max_mib);
	if (def->firmware != NULL)
		json_object_set_string_member(obj, "firmware", def->firmware);
	if (def->ssh_keys != NULL) {
		g_autoptr(JsonArray) keys = json_array_new();
		for (guint i = 0; def->ssh_keys[i] != NULL; i++)
			json_array_add_string_element(keys, def->ssh_keys[i]);
		json_object_set_array_member(obj, "ssh_keys", g_steal_pointer(&keys));
	}
	if (def->user_data != NULL)
		json_object_set_string_member(obj, "user_data", def->user_data);
	json_object_set_string_member(obj, "created", created);
	json_object_set_int_member(obj, "owner_uid", def->owner_uid);
	return g_steal_pointer(&obj);
}

VmsupVmDef *
vmsup_vm_def_new_from_json(JsonObject *object, GError **error)
{
	g_autoptr(VmsupVmDef) def = NULL;
	const gchar *name = vmsup_json_object_get_string(object, "name", NULL);
	const gchar *created = vmsup_json_object_get_string(object, "created", NULL);
	gint64 version = vmsup_json_object_get_int(object, "version", VMSUP_VM_DEF_VERSION);
	JsonNode *owner = json_object_get_member(object, "owner_uid");
	gint64 owner_uid = 0;
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *node;

	if (name == NULL) {
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    "no \"name\" member");
		return NULL;
	}
	if (version != VMSUP_VM_DEF_VERSION) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "unsupported version %" G_GINT64_FORMAT,
			    version);
		return NULL;
	}
	def = vmsup_vm_def_new(name);
	/* a definition older than owners is root's: in system mode only root may act on it */
	if (owner != NULL && !vmsup_json_node_get_int_in_range(owner,
							       "owner_uid",
							       0,
							       G_MAXUINT32,
							       &owner_uid,
							       error))
		return NULL;
	def->owner_uid = (guint32)owner_uid;
	json_object_iter_init(&iter, object);
	while (json_object_iter_next(&iter, &member, &node)) {
		/* members of newer versions are ignored, not fatal */
		if (!g_strv_contains(vmsup_vm_def_create_fields, member) &&
		    !g_strv_contains(vmsup_vm_def_internal_fields, member) &&
		    g_strcmp0(member, "disk") != 0)
			continue;
		if (!vmsup_vm_def_set_member(def, member, node, error))
			return NULL;
	}
	if (created != NULL) {
		g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(created, NULL);
		if (dt == NULL) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    "\"created\" is not an ISO 8601 time: %s",
				    created);
			return NULL;
		}
		def->created = g_date_time_to_unix(dt);
	}
	if (!vmsup_vm_def_validate(def, error))
		return NULL;
	return g_steal_pointer(&def);
}
