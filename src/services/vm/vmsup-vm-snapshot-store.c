/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The snapshot records of VMs and the directory of their saved states;
 * the jobs that make and use them are in vmsup-vm-snapshot.c.
 */

#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "vmsup-error.h"
#include "vmsup-json.h"
#include "vmsup-name.h"
#include "vmsup-record-store.h"
#include "vmsup-vm-files.h"
#include "vmsup-vm-snapshot-store.h"

#define VMSUP_SNAPSHOT_RECORD_MAX_SIZE (1024 * 1024)
#define VMSUP_SNAPSHOT_STATE_SUFFIX ".state"

struct _VmsupSnapshotStore {
	GObject parent_instance;
	gchar *dir;                /* owned: <state-dir>/snapshots */
	VmsupRecordStore *records; /* owned */
	GHashTable *entries;       /* owned: vm name -> JsonArray of entries */
};

G_DEFINE_FINAL_TYPE(VmsupSnapshotStore, vmsup_snapshot_store, G_TYPE_OBJECT)

VmsupSnapshotStore *
vmsup_snapshot_store_new(const gchar *state_dir)
{
	VmsupSnapshotStore *self = g_object_new(VMSUP_TYPE_SNAPSHOT_STORE, NULL);

	g_return_val_if_fail(state_dir != NULL, self);
	self->dir = g_build_filename(state_dir, "snapshots", NULL);
	self->records = vmsup_record_store_new(self->dir,
					       "Snapshot record",
					       "VM",
					       VMSUP_SNAPSHOT_RECORD_MAX_SIZE);
	return self;
}

static JsonArray *
vmsup_snapshot_store_entries(VmsupSnapshotStore *self, const gchar *vm)
{
	JsonArray *entries = g_hash_table_lookup(self->entries, vm);

	if (entries == NULL) {
		entries = json_array_new();
		g_hash_table_insert(self->entries, g_strdup(vm), entries);
	}
	return entries;
}

gboolean
vmsup_snapshot_store_load(VmsupSnapshotStore *self, GError **error)
{
	g_autoptr(GHashTable) records = NULL;
	GHashTableIter iter;
	gpointer key;
	gpointer value;

	g_return_val_if_fail(VMSUP_IS_SNAPSHOT_STORE(self), FALSE);
	records = vmsup_record_store_load_all(self->records, error);
	if (records == NULL)
		return FALSE;
	g_hash_table_iter_init(&iter, records);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		JsonNode *node = json_object_get_member(value, "snapshots");
		JsonArray *kept = json_array_new();

		if (node != NULL && JSON_NODE_HOLDS_ARRAY(node)) {
			JsonArray *array = json_node_get_array(node);
			for (guint i = 0; i < json_array_get_length(array); i++) {
				JsonNode *element = json_array_get_element(array, i);
				const gchar *name;

				if (!JSON_NODE_HOLDS_OBJECT(element))
					continue;
				name = vmsup_json_object_get_string(json_node_get_object(element),
								    "name",
								    NULL);
				if (!vmsup_name_validate(name, "snapshot", NULL))
					continue;
				json_array_add_element(kept, json_node_copy(element));
			}
		}
		g_hash_table_replace(self->entries, g_strdup(key), kept);
	}
	return TRUE;
}

JsonArray *
vmsup_snapshot_store_list(VmsupSnapshotStore *self, const gchar *vm)
{
	JsonArray *entries;
	JsonArray *copy = json_array_new();

	g_return_val_if_fail(VMSUP_IS_SNAPSHOT_STORE(self), copy);
	entries = g_hash_table_lookup(self->entries, vm);
	for (guint i = 0; entries != NULL && i < json_array_get_length(entries); i++)
		json_array_add_element(copy, json_node_copy(json_array_get_element(entries, i)));
	return copy;
}

static gint
vmsup_snapshot_store_index(JsonArray *entries, const gchar *snapshot)
{
	for (guint i = 0; entries != NULL && i < json_array_get_length(entries); i++) {
		JsonObject *entry = json_array_get_object_element(entries, i);
		if (g_strcmp0(vmsup_json_object_get_string(entry, "name", NULL), snapshot) == 0)
			return (gint)i;
	}
	return -1;
}

JsonObject *
vmsup_snapshot_store_find(VmsupSnapshotStore *self, const gchar *vm, const gchar *snapshot)
{
	JsonArray *entries;
	gint index;
	g_autoptr(JsonNode) copy = NULL;

	g_return_val_if_fail(VMSUP_IS_SNAPSHOT_STORE(self), NULL);
	entries = g_hash_table_lookup(self->entries, vm);
	index = vmsup_snapshot_store_index(entries, snapshot);
	if (index < 0)
		return NULL;
	copy = json_node_copy(json_array_get_element(entries, (guint)index));
	return json_object_ref(json_node_get_object(copy));
}

/* @entries as the record of @vm: saved, or the file removed when it is empty */
static gboolean
vmsup_snapshot_store_save(VmsupSnapshotStore *self,
			  const gchar *vm,
			  JsonArray *entries,
			  GError **error)
{
	g_autoptr(JsonObject) record = json_object_new();

	if (json_array_get_length(entries) == 0)
		return vmsup_record_store_remove(self->records, vm, error);
	if (g_mkdir_with_parents(self->dir, 0700) != 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot create the snapshot directory '%s': %s; check the state "
			      "directory and its permissions"),
			    self->dir,
			    g_strerror(saved_errno));
		return FALSE;
	}
	json_object_set_array_member(record, "snapshots", json_array_ref(entries));
	return vmsup_record_store_save(self->records, vm, record, error);
}

/* a copy of @entries without the one named @snapshot (if any), then @entry (if any) */
static JsonArray *
vmsup_snapshot_store_replace(JsonArray *entries, const gchar *snapshot, JsonObject *entry)
{
	JsonArray *next = json_array_new();

	for (guint i = 0; entries != NULL && i < json_array_get_length(entries); i++) {
		JsonObject *other = json_array_get_object_element(entries, i);
		if (g_strcmp0(vmsup_json_object_get_string(other, "name", NULL), snapshot) != 0)
			json_array_add_element(next,
					       json_node_copy(json_array_get_element(entries, i)));
	}
	if (entry != NULL)
		json_array_add_object_element(next, json_object_ref(entry));
	return next;
}

gboolean
vmsup_snapshot_store_put(VmsupSnapshotStore *self,
			 const gchar *vm,
			 JsonObject *entry,
			 GError **error)
{
	const gchar *snapshot = vmsup_json_object_get_string(entry, "name", NULL);
	g_autoptr(JsonArray) next = NULL;

	g_return_val_if_fail(VMSUP_IS_SNAPSHOT_STORE(self), FALSE);
	g_return_val_if_fail(snapshot != NULL, FALSE);
	next =
	    vmsup_snapshot_store_replace(vmsup_snapshot_store_entries(self, vm), snapshot, entry);
	if (!vmsup_snapshot_store_save(self, vm, next, error))
		return FALSE;
	g_hash_table_replace(self->entries, g_strdup(vm), g_steal_pointer(&next));
	return TRUE;
}

gboolean
vmsup_snapshot_store_drop(VmsupSnapshotStore *self,
			  const gchar *vm,
			  const gchar *snapshot,
			  GError **error)
{
	JsonArray *entries;
	g_autoptr(JsonArray) next = NULL;

	g_return_val_if_fail(VMSUP_IS_SNAPSHOT_STORE(self), FALSE);
	entries = g_hash_table_lookup(self->entries, vm);
	if (vmsup_snapshot_store_index(entries, snapshot) < 0)
		return TRUE;
	next = vmsup_snapshot_store_replace(entries, snapshot, NULL);
	if (!vmsup_snapshot_store_save(self, vm, next, error))
		return FALSE;
	g_hash_table_replace(self->entries, g_strdup(vm), g_steal_pointer(&next));
	return TRUE;
}

void
vmsup_snapshot_store_remove_vm(VmsupSnapshotStore *self, const gchar *vm)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = NULL;

	g_return_if_fail(VMSUP_IS_SNAPSHOT_STORE(self));
	if (!vmsup_record_store_remove(self->records, vm, &error))
		g_warning("%s, ignoring", error->message);
	g_hash_table_remove(self->entries, vm);
	dir = g_build_filename(self->dir, vm, NULL);
	if (g_file_test(dir, G_FILE_TEST_IS_DIR))
		vmsup_vm_files_remove_tree(dir);
}

gchar *
vmsup_snapshot_store_vm_dir(VmsupSnapshotStore *self,
			    const gchar *vm,
			    gboolean create,
			    GError **error)
{
	g_autofree gchar *dir = NULL;

	g_return_val_if_fail(VMSUP_IS_SNAPSHOT_STORE(self), NULL);
	dir = g_build_filename(self->dir, vm, NULL);
	if (create && g_mkdir_with_parents(dir, 0700) != 0) {
		gint saved_errno = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot create the snapshot directory '%s': %s; check the state "
			      "directory and its permissions"),
			    dir,
			    g_strerror(saved_errno));
		return NULL;
	}
	return g_steal_pointer(&dir);
}

gchar *
vmsup_snapshot_store_state_path(VmsupSnapshotStore *self, const gchar *vm, const gchar *snapshot)
{
	g_autofree gchar *basename = g_strconcat(snapshot, VMSUP_SNAPSHOT_STATE_SUFFIX, NULL);

	g_return_val_if_fail(VMSUP_IS_SNAPSHOT_STORE(self), NULL);
	return g_build_filename(self->dir, vm, basename, NULL);
}

/* requires */

JsonObject *
vmsup_snapshot_requires_new(const VmsupVmDef *def, gboolean memory)
{
	JsonObject *requires = json_object_new();

	json_object_set_boolean_member(requires, "disk", def->disk != NULL);
	if (!memory)
	return requires;
	/* what shapes the machine a saved state is loaded into */
	json_object_set_int_member(requires, "cpus", def->cpus);
	json_object_set_int_member(requires, "memory_mib", def->memory_mib);
	json_object_set_string_member(requires, "firmware", def->firmware);
	json_object_set_string_member(requires, "image", def->image);
	json_object_set_boolean_member(requires, "share", def->share_dir != NULL);
	return requires;
}

const gchar *
vmsup_snapshot_requires_mismatch(JsonObject *requires, const VmsupVmDef *def)
{
	g_autoptr(JsonObject) now = NULL;
	JsonObjectIter iter;
	const gchar *member;
	JsonNode *value;

	if (requires == NULL)
		return NULL;
	now = vmsup_snapshot_requires_new(def, json_object_has_member(requires, "memory_mib"));
	json_object_iter_init(&iter, requires);
	while (json_object_iter_next(&iter, &member, &value)) {
		JsonNode *current = json_object_get_member(now, member);
		if (current == NULL || !json_node_equal(current, value))
			return member;
	}
	return NULL;
}

/* reconcile */

static gboolean
vmsup_snapshot_entry_complete(VmsupSnapshotStore *self,
			      const gchar *vm,
			      JsonObject *entry,
			      const gchar *const *disk_tags)
{
	const gchar *name = vmsup_json_object_get_string(entry, "name", NULL);

	if (vmsup_json_object_get_bool(entry, "memory", FALSE)) {
		g_autofree gchar *path = vmsup_snapshot_store_state_path(self, vm, name);
		GStatBuf st;
		if (g_stat(path, &st) != 0 ||
		    (gint64)st.st_size != vmsup_json_object_get_int(entry, "size", -1))
			return FALSE;
	}
	if (vmsup_json_object_get_bool(entry, "disk", FALSE) && disk_tags != NULL) {
		g_autofree gchar *tag = g_strconcat(VMSUP_SNAPSHOT_DISK_TAG_PREFIX, name, NULL);
		if (!g_strv_contains(disk_tags, tag))
			return FALSE;
	}
	return TRUE;
}

static gboolean
vmsup_snapshot_store_names(JsonArray *entries, const gchar *name)
{
	return vmsup_snapshot_store_index(entries, name) >= 0;
}

GStrv
vmsup_snapshot_store_reconcile(VmsupSnapshotStore *self,
			       const gchar *vm,
			       const gchar *const *disk_tags)
{
	g_autoptr(GStrvBuilder) stray = g_strv_builder_new();
	g_autofree gchar *dir = NULL;
	g_autoptr(GDir) listing = NULL;
	JsonArray *entries;
	const gchar *basename;

	g_return_val_if_fail(VMSUP_IS_SNAPSHOT_STORE(self), NULL);
	entries = g_hash_table_lookup(self->entries, vm);
	for (guint i = 0; entries != NULL && i < json_array_get_length(entries); i++) {
		JsonObject *entry = json_array_get_object_element(entries, i);
		const gchar *name = vmsup_json_object_get_string(entry, "name", NULL);
		g_autoptr(GError) error = NULL;

		if (vmsup_snapshot_entry_complete(self, vm, entry, disk_tags))
			continue;
		g_warning("Snapshot '%s' of VM '%s' is incomplete (its saved state or disk "
			  "snapshot is missing); dropping it",
			  name,
			  vm);
		if (!vmsup_snapshot_store_drop(self, vm, name, &error)) {
			g_warning("%s, ignoring", error->message);
			continue;
		}
		entries = g_hash_table_lookup(self->entries, vm);
		i = (guint)-1;
	}
	entries = g_hash_table_lookup(self->entries, vm);
	dir = g_build_filename(self->dir, vm, NULL);
	listing = g_dir_open(dir, 0, NULL);
	while (listing != NULL && (basename = g_dir_read_name(listing)) != NULL) {
		g_autofree gchar *name = NULL;
		g_autofree gchar *path = g_build_filename(dir, basename, NULL);

		if (g_str_has_suffix(basename, VMSUP_SNAPSHOT_STATE_SUFFIX))
			name = g_strndup(basename,
					 strlen(basename) - strlen(VMSUP_SNAPSHOT_STATE_SUFFIX));
		if (name != NULL && vmsup_snapshot_store_names(entries, name))
			continue;
		g_message("Removing '%s', left by a snapshot of VM '%s' that did not complete",
			  path,
			  vm);
		if (g_unlink(path) != 0)
			g_warning("Cannot remove '%s': %s, ignoring", path, g_strerror(errno));
	}
	for (guint i = 0; disk_tags != NULL && disk_tags[i] != NULL; i++) {
		const gchar *tag = disk_tags[i];
		if (!g_str_has_prefix(tag, VMSUP_SNAPSHOT_DISK_TAG_PREFIX) ||
		    vmsup_snapshot_store_names(entries,
					       tag + strlen(VMSUP_SNAPSHOT_DISK_TAG_PREFIX)))
			continue;
		g_strv_builder_add(stray, tag);
	}
	return g_strv_builder_end(stray);
}

static void
vmsup_snapshot_store_finalize(GObject *object)
{
	VmsupSnapshotStore *self = VMSUP_SNAPSHOT_STORE(object);

	g_free(self->dir);
	g_clear_object(&self->records);
	g_hash_table_unref(self->entries);
	G_OBJECT_CLASS(vmsup_snapshot_store_parent_class)->finalize(object);
}

static void
vmsup_snapshot_store_class_init(VmsupSnapshotStoreClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = vmsup_snapshot_store_finalize;
}

static void
vmsup_snapshot_store_init(VmsupSnapshotStore *self)
{
	self->entries = g_hash_table_new_full(g_str_hash,
					      g_str_equal,
					      g_free,
					      (GDestroyNotify)json_array_unref);
}
