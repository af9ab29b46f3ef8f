/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMService's private state, shared by the files that make it up; not for
 * any other user.
 */
#pragma once

#include "vmsup-cgroup.h"
#include "vmsup-operation.h"
#include "vmsup-qemu-process.h"
#include "vmsup-vm-def.h"
#include "vmsup-vm-lock.h"
#include "vmsup-vm-service.h"
#include "vmsup-vm-store.h"

G_BEGIN_DECLS

typedef enum {
	VMSUP_VM_STATE_DEFINED,
	VMSUP_VM_STATE_STARTING,
	VMSUP_VM_STATE_RUNNING,
	VMSUP_VM_STATE_PAUSED,
	VMSUP_VM_STATE_STOPPING,
	VMSUP_VM_STATE_STOPPED,
	VMSUP_VM_STATE_CRASHED,
} VmsupVmState;

/* one defined VM; refcounted (g_rc_box) because callbacks outlive table entries */
typedef struct {
	VmsupVmService *service; /* unowned: records are dropped in the service's dispose */
	VmsupVmDef *def;         /* owned */
	VmsupVmState state;
	/* the QEMU of the current run, NULL when there is none */
	VmsupQemuProcess *process; /* owned */
	VmsupQmpClient *qmp;       /* owned */
	VmsupVmHandles *handles;   /* owned */
	gulong exited_id;
	gulong event_id;
	guint qmp_retry_id; /* QMP did not answer at adoption: the next try */
	guint qmp_retry_s;  /* the pause before it, doubled each time */
	gboolean starting;  /* spawn or adoption under way: its callback cleans up */
	gchar *stop_reason; /* owned: a stop was asked ("stopped on request"), the exit is clean */
	gboolean shutdown_seen;
	gchar *shutdown_reason;  /* owned */
	VmsupVmDef *running_def; /* owned: the definition QEMU runs with */
	VmsupAccel accel;
	gint64 started_at; /* real time, us */
	/* the last run, also kept in the store's last-run record (VmsupVmOutcome) */
	gint exit_status;
	gchar *exit_reason; /* owned */
	gint64 stopped_at;  /* real time, us; 0: unknown */
	gchar *last_error;  /* owned */
	/* the outcome is being saved: the runtime dir goes, and waiters return, once it is */
	gboolean saving_outcome;
	GPtrArray *exit_waiters; /* owned, of GTask: returned once QEMU exited and was cleaned up */
	/* this run's QEMU is in the VM's cgroup; else why not, when it should be */
	gboolean in_cgroup;
	gchar *cgroup_error; /* owned */
	/* a vm.set raising memory_mib to this is under way (it holds the VM's lock); 0: none */
	guint memory_mib_reserved;
} VmsupVmRecord;

struct _VmsupVmService {
	GObject parent_instance;
	gchar *state_dir;   /* owned */
	gchar *runtime_dir; /* owned */
	gchar *qemu_binary; /* owned, NULL: $VMSUP_QEMU or PATH */
	VmsupAccel accel_config;
	VmsupAccel accel;
	gchar *accel_reason; /* owned */
	gboolean accel_known;
	gboolean accel_probing;
	GPtrArray *accel_waiters; /* owned, of GTask */
	gboolean loaded;
	guint stop_timeout_s; /* what stop_all gives each guest to power off */
	VmsupVmStore *store;  /* owned */
	VmsupVmLock *lock;    /* owned */
	GHashTable *vms;      /* owned: name -> VmsupVmRecord (ref) */
	GHashTable *ops;      /* owned: &id -> VmsupOperation (ref) */
	GHashTable *creating; /* owned keys: name -> VmsupOperation (unowned, in ops) */
	gint64 next_op_id;
	VmsupVmHooks hooks;        /* owned closures */
	GCancellable *cancellable; /* owned */
	guint max_vms;             /* MaxVMs: most VMs defined or being created; 0: no limit */
	guint max_vms_per_user;    /* MaxVMsPerUser, for restricted owners; 0: no limit */
	guint max_memory_mib_per_user; /* MaxMemoryMiBPerUser, likewise */
	/* owned keys: name -> owner and memory of a create in flight (owned), as in creating */
	GHashTable *creating_usage;
	VmsupCgroup *cgroup; /* owned: found on first use, see vmsup_vm_service_get_cgroup() */
};

/* vmsup-vm-service.c */

VmsupVmRecord *
vmsup_vm_service_record_ref(VmsupVmRecord *rec);

void
vmsup_vm_service_record_unref(VmsupVmRecord *rec);

void
vmsup_vm_service_record_closure_notify(gpointer data, GClosure *closure);

VmsupVmRecord *
vmsup_vm_service_record_new(VmsupVmService *self, VmsupVmDef *def /* owned */);

gchar *
vmsup_vm_service_vm_runtime_dir(VmsupVmService *self, const gchar *name);

void
vmsup_vm_service_remove_tree(const gchar *path);

gchar *
vmsup_vm_service_read_qemu_log_tail(const gchar *runtime_dir);

void
vmsup_vm_service_emit_vm_changed(VmsupVmService *self, VmsupVmRecord *rec);
void
vmsup_vm_service_emit_accel_decided(VmsupVmService *self);

void
vmsup_vm_service_set_state(VmsupVmService *self, VmsupVmRecord *rec, VmsupVmState state);

gboolean
vmsup_vm_service_get_bool_param(JsonObject *params,
				const gchar *member,
				gboolean fallback,
				gboolean *out_value,
				GError **error);

const gchar *
vmsup_vm_service_get_name_param(JsonObject *params, GError **error);

gboolean
vmsup_vm_service_check_not_creating(VmsupVmService *self, const gchar *name, GError **error);

void
vmsup_vm_service_return_error(GTask *task, GError *error /* owned */);

void
vmsup_vm_service_prune_ops(VmsupVmService *self);

VmsupOperation *
vmsup_vm_service_add_op(VmsupVmService *self, const gchar *kind, const gchar *vm);
/* the uid an operation acts for, kept with it until it is pruned */
void
vmsup_vm_service_set_op_owner(VmsupOperation *op, guint32 uid);

gboolean
vmsup_vm_service_undefine(VmsupVmService *self, VmsupVmRecord *rec, GError **error);

/* vmsup-vm-service-limits.c */

/* what a create entering self->creating will hold, for the owner's share */
void
vmsup_vm_service_note_creating(VmsupVmService *self, const gchar *name, const VmsupVmDef *def);

/*
 * MaxVMsPerUser and MaxMemoryMiBPerUser for @def's owner, were @def added
 * (@old_def NULL) or put in place of @old_def; failed-precondition naming
 * the limit
 */
gboolean
vmsup_vm_service_check_owner_limits(VmsupVmService *self,
				    const VmsupVmDef *def,
				    const VmsupVmDef *old_def,
				    GError **error);

JsonObject *
vmsup_vm_service_verb_finish(VmsupVmService *self, GAsyncResult *res, GError **error);

/* vmsup-vm-service-process.c */

void
vmsup_vm_service_ensure_accel_async(VmsupVmService *self,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data);

gboolean
vmsup_vm_service_ensure_accel_finish(VmsupVmService *self, GAsyncResult *res, GError **error);

void
vmsup_vm_service_drop_runtime(VmsupVmService *self, VmsupVmRecord *rec, gboolean remove_dir);

void
vmsup_vm_service_handle_exit(VmsupVmService *self, VmsupVmRecord *rec, gint wait_status);

void
vmsup_vm_service_note_stop(VmsupVmService *self, VmsupVmRecord *rec, const gchar *reason);

void
vmsup_vm_service_apply_outcome(VmsupVmRecord *rec, const VmsupVmOutcome *outcome);

void
vmsup_vm_service_save_outcome_async(VmsupVmService *self,
				    VmsupVmRecord *rec,
				    gint64 pid,
				    GAsyncReadyCallback callback,
				    gpointer user_data);

void
vmsup_vm_service_save_outcome_finish(VmsupVmService *self, GAsyncResult *res);

void
vmsup_vm_service_watch_exit(VmsupVmRecord *rec);

void
vmsup_vm_service_read_runtime_file(VmsupVmService *self, VmsupVmRecord *rec);

void
vmsup_vm_service_setup_running(VmsupVmService *self, VmsupVmRecord *rec);
/* the QMP client of @rec's QEMU, when it is connected, is the record's: its events followed */
void
vmsup_vm_service_follow_qmp(VmsupVmService *self, VmsupVmRecord *rec);

gboolean
vmsup_vm_service_locked_finish(VmsupVmService *self, GAsyncResult *res, GError **error);

void
vmsup_vm_service_start_locked_async(VmsupVmService *self,
				    VmsupVmRecord *rec,
				    GCancellable *cancellable,
				    GAsyncReadyCallback callback,
				    gpointer user_data);

void
vmsup_vm_service_stop_locked_async(VmsupVmService *self,
				   VmsupVmRecord *rec,
				   gboolean force,
				   guint timeout_ms,
				   GAsyncReadyCallback callback,
				   gpointer user_data);

/* vmsup-vm-service-cgroup.c */

/* vmsupd's cgroups, found (and readied) on first use: at load, or a first start before it */
VmsupCgroup *
vmsup_vm_service_get_cgroup(VmsupVmService *self);

/* whether QEMUs get a cgroup: then they are spawned paused and resumed once placed */
gboolean
vmsup_vm_service_cgroup_wanted(VmsupVmService *self);

/* FAILED_PRECONDITION when @def asks for limits that this vmsupd cannot set */
gboolean
vmsup_vm_service_cgroup_check_def(VmsupVmService *self, const VmsupVmDef *def, GError **error);

/*
 * Puts the QEMU of @rec (just spawned or adopted) into its VM's cgroup with
 * the limits it runs with, then, when @resume, sends it `cont`. Failing to
 * place it is no error: the VM runs without limits and vm.get says why.
 * Fails only when `cont` does.
 */
void
vmsup_vm_service_cgroup_place_async(VmsupVmService *self,
				    VmsupVmRecord *rec,
				    gboolean resume,
				    GAsyncReadyCallback callback,
				    gpointer user_data);
gboolean
vmsup_vm_service_cgroup_place_finish(VmsupVmService *self, GAsyncResult *res, GError **error);

/* removes the VM's cgroup once its QEMU is gone (or a leftover of a crash); logs failures */
void
vmsup_vm_service_cgroup_release(VmsupVmService *self, VmsupVmRecord *rec);

/* vm.set: the limits of @def onto the running QEMU of @rec, at once; nothing when stopped */
void
vmsup_vm_service_cgroup_apply_async(VmsupVmService *self,
				    VmsupVmRecord *rec,
				    const VmsupVmDef *def,
				    GAsyncReadyCallback callback,
				    gpointer user_data);
gboolean
vmsup_vm_service_cgroup_apply_finish(VmsupVmService *self, GAsyncResult *res, GError **error);

/* whether @field is one of the limits a VM's cgroup keeps */
gboolean
vmsup_vm_service_cgroup_is_limit(const gchar *field);

/* whether @rec's QEMU runs with the limits of its definition: it runs in its cgroup */
gboolean
vmsup_vm_service_cgroup_limits_kept(VmsupVmRecord *rec);

/* vm.get's "cgroup" member */
JsonObject *
vmsup_vm_service_cgroup_describe(VmsupVmService *self, VmsupVmRecord *rec);

G_END_DECLS
