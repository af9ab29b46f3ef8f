/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-qemu-process.h"
#include "vmsup-qga-client.h"

G_BEGIN_DECLS

/* what a sibling service may hold of one running VM; refcounted, immutable */
typedef struct {
	gchar *name;
	gchar *runtime_dir;
	VmsupQemuProcess *process; /* owned ref */
	VmsupQgaClient *qga;       /* owned ref, NULL when the VM has no agent channel */
	VmsupAccel accel;
	GArray *forwards; /* of VmsupQemuForward as started (host ports resolved), may be NULL */
	/*< private >*/
	gint ref_count;
} VmsupVmHandles;

#define VMSUP_TYPE_VM_HANDLES (vmsup_vm_handles_get_type())
GType
vmsup_vm_handles_get_type(void);
VmsupVmHandles *
vmsup_vm_handles_new(const gchar *name, const gchar *runtime_dir, VmsupQemuProcess *process);
VmsupVmHandles *
vmsup_vm_handles_ref(VmsupVmHandles *handles);
void
vmsup_vm_handles_unref(VmsupVmHandles *handles);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupVmHandles, vmsup_vm_handles_unref)

/*
 * What other services may ask of VMService, nothing more. Each closure is
 * built by VMService with g_cclosure_new_object() (so it goes invalid when
 * VMService is finalized) and the generic marshaller; adapters take their
 * arguments first and the service last.
 */
typedef struct {
	GClosure *vm_alive; /* (const gchar *name) -> gboolean */
	GClosure
	    *vm_handles;   /* (const gchar *name) -> VmsupVmHandles * (full, NULL if not running) */
	GClosure *lock_vm; /* (const gchar *name, GCancellable *, GAsyncReadyCallback, gpointer) */
	GClosure *unlock_vm;       /* (const gchar *name) */
	GClosure *cleanup_runtime; /* (const gchar *name): the VM stopped; drop its handles */
	GClosure *note_stop;       /* (const gchar *name, const gchar *reason): see below */
	GClosure *image_users;     /* (const gchar *path) -> GStrv: see vmsup-image-hooks.h */
} VmsupVmHooks;

/* takes a ref (and sinks) each closure of @src into @dst */
void
vmsup_vm_hooks_copy(VmsupVmHooks *dst, const VmsupVmHooks *src);
void
vmsup_vm_hooks_clear(VmsupVmHooks *hooks);
gboolean
vmsup_vm_hooks_is_complete(const VmsupVmHooks *hooks);

/* closure plumbing shared with other hook structs built on VMService */
GClosure *
vmsup_vm_hooks_take_closure(GClosure *closure);
gboolean
vmsup_vm_hooks_closure_usable(GClosure *closure);
/* invokes a vm_handles closure: (name) -> VmsupVmHandles * (full), NULL if invalid */
VmsupVmHandles *
vmsup_vm_hooks_invoke_vm_handles(GClosure *closure, const gchar *name);

/* typed wrappers: an invalidated closure reads as "not alive" / NULL / no-op */
gboolean
vmsup_vm_hooks_vm_alive(const VmsupVmHooks *hooks, const gchar *name);
VmsupVmHandles *
vmsup_vm_hooks_vm_handles(const VmsupVmHooks *hooks, const gchar *name);
void
vmsup_vm_hooks_lock_vm(const VmsupVmHooks *hooks,
		       const gchar *name,
		       GCancellable *cancellable,
		       GAsyncReadyCallback callback,
		       gpointer user_data);
/* the lock's result is a GTask returning boolean; use this to finish it */
gboolean
vmsup_vm_hooks_lock_vm_finish(GAsyncResult *res, GError **error);
void
vmsup_vm_hooks_unlock_vm(const VmsupVmHooks *hooks, const gchar *name);
void
vmsup_vm_hooks_cleanup_runtime(const VmsupVmHooks *hooks, const gchar *name);
/*
 * Before a sibling stops a running VM's QEMU itself (holding its lock):
 * the coming exit is a clean stop, and @reason ("stopped by ...") is what
 * the VM's exit_reason says about it. Nothing when the VM is not running.
 */
void
vmsup_vm_hooks_note_stop(const VmsupVmHooks *hooks, const gchar *name, const gchar *reason);

G_END_DECLS
