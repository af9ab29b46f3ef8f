/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-caller.h"
#include "vmsup-accel.h"
#include "vmsup-operation.h"
#include "vmsup-vm-hooks.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_VM_SERVICE (vmsup_vm_service_get_type())
G_DECLARE_FINAL_TYPE(VmsupVmService, vmsup_vm_service, VMSUP, VM_SERVICE, GObject)

/*
 * Lifecycle of VMs: the contract's vm.* verbs and op.* for create-operations.
 *
 * Every verb takes the request's params object (already type-checked by the
 * RPC table; borrowed) and completes with the result object of the contract
 * (DESIGN.md "Parameters and results"), or a VMSUP_ERROR.
 *
 * Signals:
 *   "vm-changed": void (self, const gchar *name, JsonObject *vm, gpointer) — a VM was
 *       defined or its state/fields changed; @vm is the vm.get result.
 *   "vm-removed": void (self, const gchar *name, gpointer)
 *   "operation-changed": void (self, JsonObject *op, gpointer) — op.get result, on
 *       every stage/progress/state change.
 *   "accel-decided": void (self, gpointer) — the accelerator is known (configured or
 *       probed); vmsup_vm_service_get_accel() gives it.
 */

typedef JsonObject *(*VmsupVmServiceFinishFunc)(VmsupVmService *self,
						GAsyncResult *res,
						GError **error);

/*
 * properties "state-dir", "runtime-dir", "qemu-binary" (NULL: PATH), "accel" (VmsupAccel),
 * "stop-timeout" (seconds stop_all_async() gives each guest to power off; default 30)
 */
VmsupVmService *
vmsup_vm_service_new(const gchar *state_dir,
		     const gchar *runtime_dir,
		     const gchar *qemu_binary,
		     VmsupAccel accel);

/* at daemon start: probes the accelerator, loads definitions, re-adopts running QEMUs */
void
vmsup_vm_service_load_async(VmsupVmService *self,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data);
gboolean
vmsup_vm_service_load_finish(VmsupVmService *self, GAsyncResult *res, GError **error);

/* the accelerator VMs get, and why ("KVM usable" / "KVM probe failed: ...; using TCG") */
VmsupAccel
vmsup_vm_service_get_accel(VmsupVmService *self, const gchar **out_reason);

/* the hooks for sibling services; owned by @self, copy with vmsup_vm_hooks_copy() */
const VmsupVmHooks *
vmsup_vm_service_get_hooks(VmsupVmService *self);

/*
 * The image store's lookup closure (see vmsup-image-hooks.h), ref'd and
 * sunk; NULL unsets it. vm.create's "image" without a '/' is a stored
 * image's name, resolved through it to the image's file.
 */
void
vmsup_vm_service_set_image_lookup(VmsupVmService *self, GClosure *lookup);

/*
 * The most VMs that may be defined at once, those being created included
 * (MaxVMs in vmsupd.conf); 0, the default of a new service, means no limit.
 * Only vm.create is refused beyond it: VMs already defined, however many,
 * stay and load.
 */
void
vmsup_vm_service_set_max_vms(VmsupVmService *self, guint max_vms);
guint
vmsup_vm_service_get_max_vms(VmsupVmService *self);
/*
 * The share of one owner other than root and the daemon's own uid
 * (MaxVMsPerUser and MaxMemoryMiBPerUser in vmsupd.conf): VMs defined or
 * being created, and the sum of their memory_mib; 0 means no limit, the
 * default of a new service. vm.create and a vm.set raising memory_mib are
 * refused beyond them; nothing already defined is touched.
 */
void
vmsup_vm_service_set_owner_limits(VmsupVmService *self, guint max_vms, guint max_memory_mib);
/* VMs defined plus those whose create has not ended yet */
guint
vmsup_vm_service_count_vms(VmsupVmService *self);

void
vmsup_vm_service_create_async(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
JsonObject *
vmsup_vm_service_create_finish(VmsupVmService *self, GAsyncResult *res, GError **error);
void
vmsup_vm_service_start_async(VmsupVmService *self,
			     const VmsupCaller *caller,
			     JsonObject *params,
			     GCancellable *cancellable,
			     GAsyncReadyCallback callback,
			     gpointer user_data);
JsonObject *
vmsup_vm_service_start_finish(VmsupVmService *self, GAsyncResult *res, GError **error);
void
vmsup_vm_service_stop_async(VmsupVmService *self,
			    const VmsupCaller *caller,
			    JsonObject *params,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data);
JsonObject *
vmsup_vm_service_stop_finish(VmsupVmService *self, GAsyncResult *res, GError **error);
void
vmsup_vm_service_pause_async(VmsupVmService *self,
			     const VmsupCaller *caller,
			     JsonObject *params,
			     GCancellable *cancellable,
			     GAsyncReadyCallback callback,
			     gpointer user_data);
JsonObject *
vmsup_vm_service_pause_finish(VmsupVmService *self, GAsyncResult *res, GError **error);
void
vmsup_vm_service_resume_async(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
JsonObject *
vmsup_vm_service_resume_finish(VmsupVmService *self, GAsyncResult *res, GError **error);
void
vmsup_vm_service_delete_async(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
JsonObject *
vmsup_vm_service_delete_finish(VmsupVmService *self, GAsyncResult *res, GError **error);
void
vmsup_vm_service_set_async(VmsupVmService *self,
			   const VmsupCaller *caller,
			   JsonObject *params,
			   GCancellable *cancellable,
			   GAsyncReadyCallback callback,
			   gpointer user_data);
JsonObject *
vmsup_vm_service_set_finish(VmsupVmService *self, GAsyncResult *res, GError **error);
void
vmsup_vm_service_op_get_async(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
JsonObject *
vmsup_vm_service_op_get_finish(VmsupVmService *self, GAsyncResult *res, GError **error);
void
vmsup_vm_service_op_list_async(VmsupVmService *self,
			       const VmsupCaller *caller,
			       JsonObject *params,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
JsonObject *
vmsup_vm_service_op_list_finish(VmsupVmService *self, GAsyncResult *res, GError **error);
void
vmsup_vm_service_op_cancel_async(VmsupVmService *self,
				 const VmsupCaller *caller,
				 JsonObject *params,
				 GCancellable *cancellable,
				 GAsyncReadyCallback callback,
				 gpointer user_data);
JsonObject *
vmsup_vm_service_op_cancel_finish(VmsupVmService *self, GAsyncResult *res, GError **error);

/* where a member of a vm.get result comes from */
typedef enum {
	VMSUP_VM_MEMBER_DEFINITION, /* the VM's saved definition */
	VMSUP_VM_MEMBER_RUNTIME,    /* what VMService knows of the VM now */
	VMSUP_VM_MEMBER_ACTIVITY,   /* merged in by the RPC table from the stats service */
} VmsupVmMemberSource;

typedef struct {
	const gchar *name;
	VmsupVmMemberSource source;
} VmsupVmMember;

/*
 * Every member a vm.get result can have, in the order a result has them,
 * terminated by {NULL}; the names vm.list's "fields" takes. A VM has only
 * some at a time (no "pid" unless QEMU runs).
 */
const VmsupVmMember *
vmsup_vm_service_get_members(void);
/* the names of vmsup_vm_service_get_members(), NULL-terminated */
const gchar *const *
vmsup_vm_service_get_member_names(void);

/*
 * vm.list and vm.get: read from what VMService holds, never waiting for a
 * lock or QEMU, so they answer at once (full result or NULL with @error).
 * vm.list takes "fields", an array of member names (see
 * vmsup_vm_service_get_members(), checked by the RPC table): each VM then
 * has only those of its members, and what is not asked for is not built.
 * Without it (or null) each VM is the whole vm.get result.
 */
JsonObject *
vmsup_vm_service_list(VmsupVmService *self, JsonObject *params, GError **error);
JsonObject *
vmsup_vm_service_get(VmsupVmService *self, JsonObject *params, GError **error);
/*
 * vm.ssh_info {name}: how to reach the SSH server of a running VM made from
 * an image (vmsup_vm_get_ssh_info()); answers at once, like vm.get. The RPC
 * table applied the owner rule; @caller is who asks.
 */
JsonObject *
vmsup_vm_service_ssh_info(VmsupVmService *self,
			  const VmsupCaller *caller,
			  JsonObject *params,
			  GError **error);

/*
 * vm.console {name, history?}: a new viewer of the running VM's serial
 * console (first shown the latest output unless history is false), the
 * caller's end of a socket (vmsup_vm_open_console()), or -1 with an error;
 * answers at once. The RPC table applied the owner rule.
 */
gint
vmsup_vm_service_open_console(VmsupVmService *self,
			      const VmsupCaller *caller,
			      JsonObject *params,
			      GError **error);

/*
 * daemon.info's "cgroup": {mode: v2|v1|systemd|none, limits_available,
 * detail} (where VM cgroups go, or why there are none)
 */
JsonObject *
vmsup_vm_service_get_cgroup_info(VmsupVmService *self);

/* synchronous read for in-process callers (D-Bus object properties, stats): vm.get result or NULL
 */
JsonObject *
vmsup_vm_service_lookup(VmsupVmService *self, const gchar *name);
/*
 * How many VMs are defined, and how many of them have a QEMU that runs or
 * is paused; only those of @owner_uid, unless it is VMSUP_VM_SERVICE_ANY_OWNER
 */
#define VMSUP_VM_SERVICE_ANY_OWNER ((gint64)-1)
void
vmsup_vm_service_count(VmsupVmService *self,
		       gint64 owner_uid,
		       guint *out_defined,
		       guint *out_running);
/* names of all defined VMs, sorted */
GStrv
vmsup_vm_service_list_names(VmsupVmService *self);

/* what /metrics shows of a VM's definition and run; a plain value */
typedef struct {
	gchar *name;
	guint32 owner_uid;
	const gchar *state;      /* static: vmsup_vm_state_to_string() */
	guint memory_mib;        /* the definition's guest memory */
	gdouble boot_to_agent_s; /* vmsup_vm_get_boot_to_agent() */
} VmsupVmSummary;

/* every defined VM, sorted by name, without a copy of any definition: of VmsupVmSummary */
GArray *
vmsup_vm_service_summarize(VmsupVmService *self);

/*
 * Who owns VM @name (the owner_uid of its definition), also while its
 * create runs; FALSE when there is no such VM. For the RPC table, which
 * lets a caller bound by vmsup_vm_def_uid_is_restricted() act only on its
 * own VMs.
 */
gboolean
vmsup_vm_service_get_owner(VmsupVmService *self, const gchar *name, guint32 *out_uid);
/*
 * An operation of another service (an image import, @kind "image.import")
 * in the one registry op.get, op.list and op.cancel read: its "vm" member
 * is @subject, what it acts on (the image's name), and it belongs to
 * @owner_uid. The caller drives it (set_stage, finish) and runs its work
 * under its cancellable; the registry keeps it (the pointer is unowned).
 */
VmsupOperation *
vmsup_vm_service_add_operation(VmsupVmService *self,
			       const gchar *kind,
			       const gchar *subject,
			       guint32 owner_uid);
/* who owns operation @id: whoever owns the VM it creates; FALSE when there is no such operation */
gboolean
vmsup_vm_service_get_op_owner(VmsupVmService *self, gint64 id, guint32 *out_uid);

/* stops every running VM (daemon shutdown when configured to) */
void
vmsup_vm_service_stop_all_async(VmsupVmService *self,
				GCancellable *cancellable,
				GAsyncReadyCallback callback,
				gpointer user_data);
gboolean
vmsup_vm_service_stop_all_finish(VmsupVmService *self, GAsyncResult *res, GError **error);

G_END_DECLS
