/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-vm-def.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_SNAPSHOT_STORE (vmsup_snapshot_store_get_type())
G_DECLARE_FINAL_TYPE(VmsupSnapshotStore, vmsup_snapshot_store, VMSUP, SNAPSHOT_STORE, GObject)

/* the tag of a snapshot's internal qcow2 snapshot on the VM's disk */
#define VMSUP_SNAPSHOT_DISK_TAG_PREFIX "vmsup-"

/*
 * vmsup's record of every VM's snapshots: <state-dir>/snapshots/<vm>.json
 * ({snapshots: [entry...]}, written atomically like a definition), and the
 * saved machine states beside it in <state-dir>/snapshots/<vm>/<snap>.state.
 * The record is the commit point: a snapshot is listed once its entry is
 * saved, after everything it needs; deleted by dropping the entry first.
 *
 * An entry: {name, created (ISO 8601), created_unix, memory, disk, size
 * (bytes of the saved state), vm_state (running, paused or stopped),
 * requires: {cpus, memory_mib, firmware, image, disk, share}}.
 */
VmsupSnapshotStore *
vmsup_snapshot_store_new(const gchar *state_dir);

/* reads every record once, at daemon start */
gboolean
vmsup_snapshot_store_load(VmsupSnapshotStore *self, GError **error);

/* the entries of @vm, oldest first (full; empty when none) */
JsonArray *
vmsup_snapshot_store_list(VmsupSnapshotStore *self, const gchar *vm);
/* the entry, or NULL (full) */
JsonObject *
vmsup_snapshot_store_find(VmsupSnapshotStore *self, const gchar *vm, const gchar *snapshot);
/* adds or replaces @entry (borrowed); the record is saved before this returns */
gboolean
vmsup_snapshot_store_put(VmsupSnapshotStore *self,
			 const gchar *vm,
			 JsonObject *entry,
			 GError **error);
/* drops the entry (nothing when there is none); the record is saved before this returns */
gboolean
vmsup_snapshot_store_drop(VmsupSnapshotStore *self,
			  const gchar *vm,
			  const gchar *snapshot,
			  GError **error);
/* the VM is gone: its record and saved states go too */
void
vmsup_snapshot_store_remove_vm(VmsupSnapshotStore *self, const gchar *vm);

/* <state-dir>/snapshots/<vm>, made (0700) when @create */
gchar *
vmsup_snapshot_store_vm_dir(VmsupSnapshotStore *self,
			    const gchar *vm,
			    gboolean create,
			    GError **error);
/* <vm dir>/<snapshot>.state */
gchar *
vmsup_snapshot_store_state_path(VmsupSnapshotStore *self, const gchar *vm, const gchar *snapshot);

/* what a restore needs of the definition, recorded with the snapshot */
JsonObject *
vmsup_snapshot_requires_new(const VmsupVmDef *def, gboolean memory);
/* NULL when @def still has what @requires asks, else the first field that differs */
const gchar *
vmsup_snapshot_requires_mismatch(JsonObject *requires, const VmsupVmDef *def);

/*
 * After a crash, at daemon start, for a VM that is not running: entries
 * whose state file or disk snapshot is missing are dropped, states and
 * disk snapshots (tags VMSUP_SNAPSHOT_DISK_TAG_PREFIX*) that no entry
 * names are removed; with @disk_tags the tags found on the VM's disk
 * (NULL: not known, disk snapshots are not checked). Returns the names of
 * the stray tags to delete from the disk (full, may be empty).
 */
GStrv
vmsup_snapshot_store_reconcile(VmsupSnapshotStore *self,
			       const gchar *vm,
			       const gchar *const *disk_tags);

G_END_DECLS
