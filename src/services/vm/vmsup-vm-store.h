/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-vm-def.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_VM_STORE (vmsup_vm_store_get_type())
G_DECLARE_FINAL_TYPE(VmsupVmStore, vmsup_vm_store, VMSUP, VM_STORE, GObject)

/* one JSON file per VM: <state-dir>/vms/<name>.json */
VmsupVmStore *
vmsup_vm_store_new(const gchar *state_dir);

const gchar *
vmsup_vm_store_get_dir(VmsupVmStore *self);
gchar *
vmsup_vm_store_get_path(VmsupVmStore *self, const gchar *name);

/*
 * Every readable definition, sorted by name (of VmsupVmDef). A file that
 * does not parse is moved aside to <name>.json.corrupt-<time> with a
 * warning, never deleted; the others still load. Fails only when the
 * directory itself cannot be read.
 */
GPtrArray *
vmsup_vm_store_load_all(VmsupVmStore *self, GError **error);

/* atomic and durable (fsync'd) replace of the VM's file */
gboolean
vmsup_vm_store_save(VmsupVmStore *self, const VmsupVmDef *def, GError **error);
/* the same in a worker thread; @def is serialized before this returns */
void
vmsup_vm_store_save_async(VmsupVmStore *self,
			  const VmsupVmDef *def,
			  GCancellable *cancellable,
			  GAsyncReadyCallback callback,
			  gpointer user_data);
gboolean
vmsup_vm_store_save_finish(VmsupVmStore *self, GAsyncResult *res, GError **error);

/* the definition, then the VM's last-run record; a missing file is not an error */
gboolean
vmsup_vm_store_remove(VmsupVmStore *self, const gchar *name, GError **error);

/*
 * How a VM's last run ended, kept next to its definition so that a
 * restarted daemon reports what the one before it saw:
 * <state-dir>/last-run/<name>.json, written when QEMU is gone and removed
 * when the next run begins. Never part of the definition: a bad record
 * costs the outcome, never the VM.
 */
typedef struct {
	gboolean crashed;  /* else stopped */
	gchar *reason;     /* owned: the exit_reason */
	gint wait_status;  /* as waitpid() reports it; -1: unknown */
	gint64 stopped_at; /* unix time, seconds; 0: unknown */
	gint64 pid;        /* the QEMU whose end this is; 0: unknown */
	/* the guest runs an agent: it opened its channel in this run or an earlier one */
	gboolean agent_seen;
} VmsupVmOutcome;

/* the reason of a run that ended while no vmsupd watched it (it counts as crashed) */
#define VMSUP_VM_UNWATCHED_END "QEMU ended while vmsupd was not running; how is not known"

VmsupVmOutcome *
vmsup_vm_outcome_new(gboolean crashed, const gchar *reason, gint wait_status);
void
vmsup_vm_outcome_free(VmsupVmOutcome *outcome);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupVmOutcome, vmsup_vm_outcome_free)

/*
 * Every readable last-run record: name (owned) -> VmsupVmOutcome (owned),
 * whether or not a definition goes with it. A record that does not parse is
 * moved aside like a bad definition, with a warning, and left out.
 */
GHashTable *
vmsup_vm_store_load_outcomes(VmsupVmStore *self, GError **error);

/* atomic and durable, through the same writer as the definitions */
gboolean
vmsup_vm_store_save_outcome(VmsupVmStore *self,
			    const gchar *name,
			    const VmsupVmOutcome *outcome,
			    GError **error);
/* the same in a worker thread; @outcome is serialized before this returns */
void
vmsup_vm_store_save_outcome_async(VmsupVmStore *self,
				  const gchar *name,
				  const VmsupVmOutcome *outcome,
				  GCancellable *cancellable,
				  GAsyncReadyCallback callback,
				  gpointer user_data);
gboolean
vmsup_vm_store_save_outcome_finish(VmsupVmStore *self, GAsyncResult *res, GError **error);

/* a missing file is not an error */
gboolean
vmsup_vm_store_remove_outcome(VmsupVmStore *self, const gchar *name, GError **error);
gchar *
vmsup_vm_store_get_outcome_path(VmsupVmStore *self, const gchar *name);

G_END_DECLS
