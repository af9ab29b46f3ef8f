/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the parts of VmsupStatsService share: its instance struct, the
 * per-VM entry and the functions one part calls in another. Not installed,
 * not for users of the service.
 */
#pragma once

#include "vmsup-proc-stat.h"
#include "vmsup-stats-service.h"

G_BEGIN_DECLS

/* a QMP command that takes longer than this counts as "QMP not answering" */
#define VMSUP_STATS_QMP_TIMEOUT_MS 2000
#define VMSUP_STATS_AGENT_TIMEOUT_MS 2000
/* guest activity: vCPU use above this over a window of at least ... */
#define VMSUP_STATS_ACTIVE_CPU_PERCENT 5.0
#define VMSUP_STATS_ACTIVITY_WINDOW_MS 1000
/*
 * ... or more guest network bytes than this between two samples: one HTTP
 * GET through a forward moves about 1.3 kB, an idle guest 0 (a few hundred
 * bytes of IPv6 neighbour discovery right after boot)
 */
#define VMSUP_STATS_ACTIVE_NET_BYTES 1024

/* the guest agent's port as QMP reports it (query-chardev, VSERPORT_CHANGE) */
typedef enum {
	VMSUP_STATS_PORT_UNKNOWN,
	VMSUP_STATS_PORT_CLOSED,
	VMSUP_STATS_PORT_OPEN,
} VmsupStatsAgentPort;

/* what the service knows of one VM; refcounted so in-flight work survives untrack */
typedef struct {
	gint ref_count;
	gchar *name;
	gboolean tracked;   /* told by track_vm(): the VM exists */
	gboolean auto_stop; /* the sweep may stop it */
	GPid pid;           /* the QEMU last seen; another pid is a (re)start */
	gint64 last_active_mono;
	gint64 last_active_real;
	gchar *last_active_text; /* ISO 8601 of @last_active_real, made when first asked */
	gchar *active_reason;
	gboolean refreshing;
	gboolean sweep_pending; /* stop after the refresh in flight if still idle */
	gboolean stopping;
	GPtrArray *waiters;            /* of GTask waiting for the refresh in flight */
	VmsupProcWatch *proc;          /* owned: the /proc files of @pid, nullable */
	gboolean vcpus_asked;          /* query-cpus-fast sent for @pid */
	VmsupProcSample last_sample;   /* base of the next CPU window; pid 0: none */
	VmsupProcSample activity_base; /* base of the activity window; pid 0: none */
	gint64 net_bytes;              /* rx + tx of the guest at the last sample, -1 unknown */
	/*
	 * What QMP said of @pid, kept up to date by its events, so a sample
	 * asks only for what changes without one (block and network counters)
	 */
	VmsupQmpClient *qmp;     /* owned: whose "event" signal @event_id is */
	gulong event_id;
	gchar *run_status;       /* query-status, NULL: ask (again) */
	gint64 memory_bytes;     /* query-memory-size-summary, -1: ask (again) */
	VmsupStatsAgentPort agent_port;
	gint64 agent_port_asked; /* monotonic time of the last query-chardev */
	JsonObject *cache;       /* owned: the last vm.stats result */
	gint64 cache_mono;
} VmsupStatsVm;

struct _VmsupStatsService {
	GObject parent_instance;
	VmsupVmHooks hooks;         /* owned refs on the closures */
	GHashTable *vms;            /* name -> VmsupStatsVm (owned) */
	GHashTable *reserved_ports; /* host port -> VM name: forwards added by this service */
	guint poll_interval_s;
	guint auto_stop_after_s;
	guint probe_timeout_ms;
	guint poll_id;
	guint sweep_id;
	GCancellable *cancellable;
};

/* --- vmsup-stats-service.c: per-VM entries, helpers, QMP with a deadline, requests --- */

VmsupStatsVm *
vmsup_stats_service_vm_ref(VmsupStatsVm *vm);
void
vmsup_stats_service_vm_unref(VmsupStatsVm *vm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupStatsVm, vmsup_stats_service_vm_unref)
void
vmsup_stats_service_vm_mark_active(VmsupStatsVm *vm, const gchar *reason);
gint64
vmsup_stats_service_vm_idle_ms(VmsupStatsVm *vm);
gchar *
vmsup_stats_service_format_time(gint64 real_us);
JsonObject *
vmsup_stats_service_copy_flat_object(JsonObject *src);
void
vmsup_stats_service_set_int_or_null(JsonObject *obj, const gchar *member, gint64 value);
void
vmsup_stats_service_set_double_or_null(JsonObject *obj, const gchar *member, gdouble value);
gboolean
vmsup_stats_service_error_is_timeout(const GError *error);
GError *
vmsup_stats_service_agent_error(const gchar *name, const GError *error);
GError *
vmsup_stats_service_not_running_error(const gchar *name);
GError *
vmsup_stats_service_no_agent_error(const gchar *name);
gboolean
vmsup_stats_service_process_alive(VmsupVmHandles *handles);
void
vmsup_stats_service_qmp_execute_async(VmsupVmHandles *handles,
				      const gchar *command,
				      JsonObject *arguments,
				      GCancellable *cancellable,
				      GAsyncReadyCallback callback,
				      gpointer user_data);
JsonNode *
vmsup_stats_service_qmp_execute_finish(GAsyncResult *res, GError **error);
void
vmsup_stats_service_see_pid(VmsupStatsService *self, VmsupStatsVm *vm, GPid pid);
gboolean
vmsup_stats_service_resolve(VmsupStatsService *self,
			    GTask *task,
			    JsonObject *params,
			    gboolean need_agent,
			    const gchar **out_name,
			    VmsupStatsVm **out_vm,
			    VmsupVmHandles **out_handles,
			    gboolean *out_not_running);
void
vmsup_stats_service_emit_stats_changed(VmsupStatsService *self,
				       const gchar *name,
				       JsonObject *stats);

/* --- vmsup-stats-refresh.c: one sample of one VM --- */

/* forgets what was learnt of the QEMU process the VM ran as */
void
vmsup_stats_service_vm_forget_process(VmsupStatsVm *vm);

void
vmsup_stats_service_refresh(VmsupStatsService *self,
			    VmsupStatsVm *vm,
			    VmsupVmHandles *handles,
			    GTask *waiter);

/* --- vmsup-stats-sweep.c: the poller and the stale sweep --- */

void
vmsup_stats_service_begin_stop(VmsupStatsService *self, VmsupStatsVm *vm);
void
vmsup_stats_service_restart_timers(VmsupStatsService *self);

G_END_DECLS
