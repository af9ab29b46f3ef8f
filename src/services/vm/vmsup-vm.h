/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-vm-accel.h"
#include "vmsup-vm-cgroup.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-hooks.h"
#include "vmsup-vm-store.h"

G_BEGIN_DECLS

/*
 * What a VM is doing, as vm.get's "state" names it. A VM is defined until
 * its first start; starting covers spawn or adoption up to QEMU's first
 * answer; stopping, from a stop asked (or a guest shutdown seen) until QEMU
 * has exited; stopped and crashed say how the last run ended.
 */
typedef enum {
	VMSUP_VM_STATE_DEFINED,
	VMSUP_VM_STATE_STARTING,
	VMSUP_VM_STATE_RUNNING,
	VMSUP_VM_STATE_PAUSED,
	VMSUP_VM_STATE_STOPPING,
	VMSUP_VM_STATE_STOPPED,
	VMSUP_VM_STATE_CRASHED,
} VmsupVmState;

const gchar *
vmsup_vm_state_to_string(VmsupVmState state);

#define VMSUP_TYPE_VM (vmsup_vm_get_type())
G_DECLARE_FINAL_TYPE(VmsupVm, vmsup_vm, VMSUP, VM, GObject)

/*
 * One defined VM: its definition, its state, the QEMU of its current run
 * (with QMP and agent clients), the start and stop of that run, and how the
 * last one ended (kept in @store). Callers serialize starts, stops and
 * adoption (VMService's per-VM lock); nothing here waits for a lock.
 *
 * @runtime_dir is the VM's own (QEMU's sockets, pid file, log);
 * @qemu_binary NULL: $VMSUP_QEMU or PATH; @accel decides the accelerator,
 * @cgroup is the VM's cgroup, @cancellable (nullable) ends what runs in
 * the background (QMP retries) when the daemon goes.
 *
 * Signals:
 *   "changed": void (self, gpointer) — the state or anything vm.get shows changed.
 */
VmsupVm *
vmsup_vm_new(VmsupVmDef *def /* owned */,
	     const gchar *runtime_dir,
	     const gchar *qemu_binary,
	     VmsupVmStore *store,
	     VmsupVmAccel *accel,
	     VmsupVmCgroup *cgroup,
	     GCancellable *cancellable);

const gchar *
vmsup_vm_get_name(VmsupVm *self);
const VmsupVmDef *
vmsup_vm_get_def(VmsupVm *self);
/* the saved definition changed (vm.set): takes @def, emits "changed" */
void
vmsup_vm_set_def(VmsupVm *self, VmsupVmDef *def /* owned */);
VmsupVmState
vmsup_vm_get_state(VmsupVm *self);
/*
 * Seconds from this run's QEMU start to its guest agent opening the port,
 * -1 when not seen in this run (not yet, or a run adopted from an earlier daemon)
 */
gdouble
vmsup_vm_get_boot_to_agent(VmsupVm *self);
const gchar *
vmsup_vm_get_runtime_dir(VmsupVm *self);

/* whether a QEMU of this VM is known (running, starting, or exited and not yet cleaned up) */
gboolean
vmsup_vm_has_process(VmsupVm *self);
/* whether QEMU runs and is not being spawned or adopted */
gboolean
vmsup_vm_is_alive(VmsupVm *self);
/* the handles of the current run (unowned), NULL when none */
VmsupVmHandles *
vmsup_vm_get_handles(VmsupVm *self);

/*
 * The vm.get result, or with @fields (NULL: all) only those of its members;
 * without @with_definition, none of the definition's is built
 */
JsonObject *
vmsup_vm_describe(VmsupVm *self, const gchar *const *fields, gboolean with_definition);
/* the fields that take effect at the next start; empty when none or not running */
GStrv
vmsup_vm_get_pending_restart(VmsupVm *self);
/* whether QEMU runs with the limits of the definition (or runs not at all) */
gboolean
vmsup_vm_limits_kept(VmsupVm *self);

/*
 * Starts QEMU (spawned paused and resumed once in its cgroup), resumes a
 * paused one, or, when the guest is shutting down, starts again once it has.
 * A failure leaves the VM as it was, with "last_error" set.
 */
void
vmsup_vm_start_async(VmsupVm *self,
		     GCancellable *cancellable,
		     GAsyncReadyCallback callback,
		     gpointer user_data);
gboolean
vmsup_vm_start_finish(VmsupVm *self, GAsyncResult *res, GError **error);

/*
 * Stops QEMU (powers the guest off, quits after @timeout_ms, kills; at once
 * with @force); completes once QEMU is gone and its outcome saved. @reason
 * (NULL: "stopped on request") is kept unless one was noted before.
 */
void
vmsup_vm_stop_async(VmsupVm *self,
		    gboolean force,
		    guint timeout_ms,
		    const gchar *reason,
		    GAsyncReadyCallback callback,
		    gpointer user_data);
gboolean
vmsup_vm_stop_finish(VmsupVm *self, GAsyncResult *res, GError **error);

/*
 * Pauses the vCPUs of a running VM (QMP stop) or resumes a paused one
 * (cont); nothing to do when it is so already. FAILED_PRECONDITION for a VM
 * that does not run. The state also follows STOP and RESUME events of
 * whoever else pauses or resumes QEMU.
 */
void
vmsup_vm_set_paused_async(VmsupVm *self,
			  gboolean pause,
			  GAsyncReadyCallback callback,
			  gpointer user_data);
gboolean
vmsup_vm_set_paused_finish(VmsupVm *self, GAsyncResult *res, GError **error);

/* a sibling service is about to stop QEMU itself, for @reason */
void
vmsup_vm_note_stop(VmsupVm *self, const gchar *reason);
/* QEMU exited under a sibling's watch: clean up now (nothing while it runs) */
void
vmsup_vm_cleanup_exited(VmsupVm *self);

/*
 * At daemon start, for a VM whose runtime dir exists: adopts the QEMU an
 * earlier daemon left running (QMP tried again in the background when it
 * does not answer), or records how its run ended, from @outcome (the
 * stored one, nullable) when it is that run's. Completes once it is known.
 */
void
vmsup_vm_adopt_async(VmsupVm *self,
		     VmsupVmOutcome *outcome /* owned, nullable */,
		     GAsyncReadyCallback callback,
		     gpointer user_data);
void
vmsup_vm_adopt_finish(VmsupVm *self, GAsyncResult *res);

/* at daemon start, for a VM without a runtime dir: how its last run ended */
void
vmsup_vm_apply_outcome(VmsupVm *self, const VmsupVmOutcome *outcome);

/* removes a cgroup an earlier daemon left for this VM; only without a QEMU */
void
vmsup_vm_release_cgroup(VmsupVm *self);

/*
 * vm.set: the limits of @def onto the running QEMU at once (nothing when it
 * is stopped); FAILED_PRECONDITION when @def asks for limits that cannot be set
 */
void
vmsup_vm_apply_limits_async(VmsupVm *self,
			    const VmsupVmDef *def,
			    GAsyncReadyCallback callback,
			    gpointer user_data);
gboolean
vmsup_vm_apply_limits_finish(VmsupVm *self, GAsyncResult *res, GError **error);

/*
 * The daemon's state directory (NULL: none), where a VM made from an image
 * keeps its guest files (seed, variable store, pinned host keys) and its
 * owner's SSH key pair; set before the first start.
 */
void
vmsup_vm_set_state_dir(VmsupVm *self, const gchar *state_dir);
/* the directory of those guest files; NULL for a VM without an image */
gchar *
vmsup_vm_get_guest_dir(VmsupVm *self);
/*
 * vm.ssh_info: {host, port, user, identity_file, known_hosts_file, ready}
 * of a running VM made from an image; the guest's host keys are pinned
 * here once cloud-init has printed them. FAILED_PRECONDITION for a VM
 * without an image or not running, BUSY while it starts.
 */
JsonObject *
vmsup_vm_get_ssh_info(VmsupVm *self, GError **error);

/*
 * vm.console: a new viewer of the serial console of the running (or paused)
 * VM, the caller's end of a socket (vmsup_vm_console_open_viewer(), @history
 * as there); -1 with FAILED_PRECONDITION when the VM does not run.
 */
gint
vmsup_vm_open_console(VmsupVm *self, gboolean history, GError **error);

/* lets go of QEMU without stopping it, for the next daemon to adopt */
void
vmsup_vm_release_process(VmsupVm *self);

G_END_DECLS
