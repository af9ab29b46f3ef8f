/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-operation.h"
#include "vmsup-vm-snapshot-store.h"
#include "vmsup-vm.h"

G_BEGIN_DECLS

/* what the snapshot steps of vmsup-vm-snapshot.c and -restore.c share */

/* the name QEMU gets the state file's descriptor under */
#define VMSUP_SNAPSHOT_FDNAME "vmsup-snapshot"
/* how often a save or load is asked how far it got */
#define VMSUP_SNAPSHOT_POLL_MS 20

/* one create, restore or delete of a snapshot; the task data of its GTask */
typedef struct {
	VmsupVm *vm;               /* owned */
	VmsupSnapshotStore *store; /* owned */
	VmsupOperation *op;        /* owned, nullable */
	gchar *qemu_img;           /* owned */
	gchar *snapshot;           /* owned */
	gchar *tag;                /* owned: the disk's internal snapshot */
	gchar *node;               /* owned: the disk's block node in QEMU, NULL: no disk */
	gboolean memory;
	gchar *vm_state;     /* owned: the VM's state when the snapshot was asked */
	gboolean stopped;    /* the vCPUs were stopped here: resumed at the end */
	gboolean disk_made;  /* the disk snapshot exists: removed on failure */
	gchar *tmp_path;     /* owned: the state being written */
	gchar *state_path;   /* owned */
	gint fd;             /* owned: the state file, -1 */
	JsonObject *entry;   /* owned: restore: the snapshot; create: the result */
	VmsupQmpClient *qmp; /* owned */
	GError *error;       /* owned: a create being undone */
	gulong cancel_id;
	gboolean cancel_sent;
} VmsupSnapshotJob;

VmsupSnapshotJob *
vmsup_snapshot_job_new(VmsupVm *vm,
		       VmsupSnapshotStore *store,
		       const gchar *qemu_img,
		       const gchar *snapshot,
		       VmsupOperation *op);
void
vmsup_snapshot_job_free(VmsupSnapshotJob *job);
/* the operation's stage and progress, when there is an operation */
void
vmsup_snapshot_job_stage(VmsupSnapshotJob *job, const gchar *stage, gdouble progress);
/* whether the operation was cancelled (then @error says so) */
gboolean
vmsup_snapshot_job_cancelled(VmsupSnapshotJob *job, GError **error);
/* the entry a create saves, @size bytes of saved state (full) */
JsonObject *
vmsup_snapshot_job_entry(VmsupSnapshotJob *job, gint64 size);

/* the QMP client of @vm's QEMU when it runs and answers, else NULL (unowned) */
VmsupQmpClient *
vmsup_snapshot_vm_qmp(VmsupVm *vm);
/* the disk's root node in QEMU: how vmsup attaches it (by descriptor, see vmsup-qemu-process.c) */
const gchar *
vmsup_snapshot_disk_node(const VmsupVmDef *def);

/* qemu-img snapshot @flag <tag> <disk>, run to its end */
void
vmsup_snapshot_img_async(VmsupSnapshotJob *job,
			 const gchar *flag,
			 GAsyncReadyCallback callback,
			 gpointer user_data);
gboolean
vmsup_snapshot_img_finish(GAsyncResult *res, GError **error);
/* QMP @command with @args (owned, nullable) on job->qmp */
void
vmsup_snapshot_qmp(VmsupSnapshotJob *job,
		   const gchar *command,
		   JsonObject *args,
		   GAsyncReadyCallback callback,
		   GTask *task /* owned */);
/* {device, name} of the disk's internal snapshot, for the blockdev-snapshot-* commands */
JsonObject *
vmsup_snapshot_disk_args(VmsupSnapshotJob *job);
/* a step on the disk's internal snapshot: QMP @command while QEMU runs, else qemu-img @flag */
void
vmsup_snapshot_disk_step(VmsupSnapshotJob *job,
			 const gchar *command,
			 const gchar *flag,
			 GAsyncReadyCallback callback,
			 GTask *task /* owned */);
/* the end of a vmsup_snapshot_disk_step() (@source: its callback's) */
gboolean
vmsup_snapshot_step_finish(GObject *source, GAsyncResult *res, GError **error);

G_END_DECLS
