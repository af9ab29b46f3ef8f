/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The composition root: creates the services, wires them together through
 * hooks (never sibling pointers) and puts the two transports of the one
 * dispatch table in front of them.
 */

#include "config.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmsup-daemon.h"
#include "vmsup-error.h"
#include "vmsup-event-source.h"
#include "vmsup-json.h"
#include "vmsup-jsonrpc-server.h"
#include "vmsup-metrics-collect.h"
#include "vmsup-metrics-server.h"
#include "vmsup-paths.h"
#include "vmsup-rpc-table.h"
#include "vmsup-vm-service-workspace-hooks.h"
#include "vmsup-dbus-server.h"

struct _VmsupDaemon {
	GObject parent_instance;
	VmsupDaemonOptions options; /* strings owned */
	VmsupDaemonConfig *config;  /* owned */
	VmsupRpcContext ctx;        /* services unowned: the fields below own them */
	VmsupVmService *vm_service;
	VmsupStatsService *stats_service;
	VmsupWorkspaceService *workspace_service;
	VmsupImageStore *image_store;
	VmsupPolicy *policy;
	VmsupEventSource *events;
	VmsupEventJournal *journal;
	VmsupJsonrpcServer *jsonrpc;
	VmsupDbusServer *dbus;
	VmsupMetrics *metrics;
	VmsupMetricsSources metrics_sources; /* of the fields above, unowned */
	VmsupMetricsServer *metrics_server;  /* NULL: no MetricsListen= */
	GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE(VmsupDaemon, vmsup_daemon, G_TYPE_OBJECT)

/* the services' side of the policy: owners found through these, never held by the policy */
typedef struct {
	VmsupVmService *vm_service;               /* owned, nullable */
	VmsupWorkspaceService *workspace_service; /* owned, nullable */
} VmsupDaemonOwners;

static void
vmsup_daemon_owners_free(gpointer data)
{
	VmsupDaemonOwners *owners = data;

	g_clear_object(&owners->vm_service);
	g_clear_object(&owners->workspace_service);
	g_free(owners);
}

static gboolean
vmsup_daemon_vm_owner(const gchar *name, guint32 *out_uid, gpointer user_data)
{
	VmsupDaemonOwners *owners = user_data;
	return owners->vm_service != NULL &&
	       vmsup_vm_service_get_owner(owners->vm_service, name, out_uid);
}

static gboolean
vmsup_daemon_operation_owner(gint64 id, guint32 *out_uid, gpointer user_data)
{
	VmsupDaemonOwners *owners = user_data;
	return owners->vm_service != NULL &&
	       vmsup_vm_service_get_op_owner(owners->vm_service, id, out_uid);
}

static GStrv
vmsup_daemon_vm_names(gpointer user_data)
{
	VmsupDaemonOwners *owners = user_data;
	if (owners->vm_service == NULL)
		return NULL;
	return vmsup_vm_service_list_names(owners->vm_service);
}

static gboolean
vmsup_daemon_workspace_owner(const gchar *name, guint32 *out_uid, gpointer user_data)
{
	VmsupDaemonOwners *owners = user_data;
	return owners->workspace_service != NULL &&
	       vmsup_workspace_service_get_owner(owners->workspace_service, name, out_uid);
}

VmsupPolicy *
vmsup_daemon_policy_new(VmsupVmService *vm_service, VmsupWorkspaceService *workspace_service)
{
	VmsupDaemonOwners *data = g_new0(VmsupDaemonOwners, 1);
	VmsupPolicyOwners owners = {
	    .vm_owner = vmsup_daemon_vm_owner,
	    .operation_owner = vmsup_daemon_operation_owner,
	    .vm_names = vmsup_daemon_vm_names,
	    .workspace_owner = vmsup_daemon_workspace_owner,
	    .user_data = data,
	    .user_data_free = vmsup_daemon_owners_free,
	};

	if (vm_service != NULL)
		data->vm_service = g_object_ref(vm_service);
	if (workspace_service != NULL)
		data->workspace_service = g_object_ref(workspace_service);
	return vmsup_policy_new(&owners);
}

/* what a VM's change means for the stats service; the transports hear of it from the events */
static void
vmsup_daemon_vm_changed_cb(VmsupVmService *vm_service,
			   const gchar *name,
			   JsonObject *vm,
			   VmsupDaemon *self)
{
	if (self->stats_service != NULL)
		vmsup_stats_service_track_vm(
		    self->stats_service,
		    name,
		    json_object_get_boolean_member_with_default(vm, "auto_stop", TRUE));
}

static void
vmsup_daemon_vm_removed_cb(VmsupVmService *vm_service, const gchar *name, VmsupDaemon *self)
{
	if (self->stats_service != NULL)
		vmsup_stats_service_untrack_vm(self->stats_service, name);
}

/* each sample of a running VM sets the statistics properties of its D-Bus object */
static void
vmsup_daemon_stats_changed_cb(VmsupStatsService *stats_service,
			      const gchar *name,
			      JsonObject *stats,
			      VmsupDaemon *self)
{
	if (self->dbus != NULL)
		vmsup_dbus_vm_objects_update_stats(vmsup_dbus_server_get_vm_objects(self->dbus),
						   name,
						   stats);
}

/* an operation that ended counts once, by kind and outcome (done, failed, cancelled) */
static void
vmsup_daemon_operation_changed_cb(VmsupVmService *vm_service, JsonObject *op, VmsupDaemon *self)
{
	const gchar *state = vmsup_json_object_get_string(op, "state", NULL);
	const gchar *labels[] = {"kind",
				 vmsup_json_object_get_string(op, "kind", "unknown"),
				 "outcome",
				 state,
				 NULL};

	if (g_strcmp0(state, "running") == 0 || state == NULL)
		return;
	vmsup_metrics_counter_add(
	    self->metrics,
	    "vmsup_operations_total",
	    "Operations that ended, by kind and outcome (done, failed, cancelled).",
	    labels,
	    1);
}

void
vmsup_daemon_wire_services(VmsupDaemon *self)
{
	const VmsupVmHooks *hooks;

	g_return_if_fail(VMSUP_IS_DAEMON(self));
	if (self->vm_service != NULL)
		return;

	self->vm_service = vmsup_vm_service_new(self->options.state_dir,
						self->options.runtime_dir,
						self->config->qemu_binary,
						self->config->accel);
	vmsup_vm_service_set_max_vms(self->vm_service, self->config->max_vms);
	vmsup_vm_service_set_owner_limits(self->vm_service,
					  self->config->max_vms_per_user,
					  self->config->max_memory_mib_per_user);
	hooks = vmsup_vm_service_get_hooks(self->vm_service);

	self->stats_service = vmsup_stats_service_new(hooks);
	vmsup_stats_service_set_poll_interval(self->stats_service,
					      self->config->stats_poll_interval);
	vmsup_stats_service_set_auto_stop_after(self->stats_service,
						self->config->auto_stop_stale_after);
	self->workspace_service =
	    vmsup_workspace_service_new(self->options.state_dir,
					vmsup_vm_service_get_workspace_hooks(self->vm_service));
	/* opening a workspace is activity; "activity" has note_activity's arguments */
	g_signal_connect_object(self->workspace_service,
				"activity",
				G_CALLBACK(vmsup_stats_service_note_activity),
				self->stats_service,
				G_CONNECT_SWAPPED);

	/* the store and VMService ask each other through a closure each, never a pointer */
	self->image_store = vmsup_image_store_new(self->options.state_dir, hooks->image_users);
	vmsup_vm_service_set_image_lookup(self->vm_service,
					  vmsup_image_store_get_lookup_hook(self->image_store));

	g_signal_connect_object(self->vm_service,
				"vm-changed",
				G_CALLBACK(vmsup_daemon_vm_changed_cb),
				self,
				0);
	g_signal_connect_object(self->vm_service,
				"vm-removed",
				G_CALLBACK(vmsup_daemon_vm_removed_cb),
				self,
				0);
	g_signal_connect_object(self->vm_service,
				"operation-changed",
				G_CALLBACK(vmsup_daemon_operation_changed_cb),
				self,
				0);
	/* after the stats service's handlers: a VM is tracked before anyone hears of it */
	self->events = vmsup_event_source_new(self->vm_service);
	self->policy = vmsup_daemon_policy_new(self->vm_service, self->workspace_service);

	self->ctx.policy = self->policy;
	self->ctx.events = self->events;
	self->ctx.vm_service = self->vm_service;
	self->ctx.stats_service = self->stats_service;
	self->ctx.workspace_service = self->workspace_service;
	self->ctx.image_store = self->image_store;
	self->ctx.mode = self->options.system_mode ? "system" : "session";
	self->ctx.socket_path = self->options.socket_path;
	self->ctx.started_at = g_get_real_time();
	self->ctx.metrics = self->metrics;
}

/* a socket file left by a dead daemon is removed; a live daemon on it is an error */
static gboolean
vmsup_daemon_claim_socket_path(VmsupDaemon *self, GError **error)
{
	const gchar *path = self->options.socket_path;
	g_autoptr(GSocketClient) client = NULL;
	g_autoptr(GSocketAddress) address = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	g_autofree gchar *dir = g_path_get_dirname(path);

	if (g_mkdir_with_parents(dir, 0700) != 0) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot create the socket directory %s: %s"),
			    dir,
			    g_strerror(errno));
		return FALSE;
	}
	if (!g_file_test(path, G_FILE_TEST_EXISTS))
		return TRUE;
	client = g_socket_client_new();
	address = g_unix_socket_address_new(path);
	conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(address), NULL, NULL);
	if (conn != NULL) {
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_ALREADY_EXISTS,
		    _("Another vmsupd is already serving %s; stop it first or use --socket"),
		    path);
		return FALSE;
	}
	if (g_unlink(path) != 0 && errno != ENOENT) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("Cannot remove the stale socket %s: %s"),
			    path,
			    g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

static gboolean
vmsup_daemon_resolve_socket_group(VmsupDaemon *self, gint64 *out_gid, GError **error)
{
	struct group *gr;

	*out_gid = -1;
	if (!self->options.system_mode || self->config->socket_group == NULL)
		return TRUE;
	gr = getgrnam(self->config->socket_group);
	if (gr == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    _("Invalid value '%s' for SocketGroup: no such group"),
			    self->config->socket_group);
		return FALSE;
	}
	*out_gid = gr->gr_gid;
	return TRUE;
}

/* the path a listening Unix socket is bound to; NULL for an unnamed or abstract one */
static gchar *
vmsup_daemon_socket_fd_path(gint fd)
{
	struct sockaddr_un addr = {0};
	socklen_t len = sizeof(addr);

	if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0 || addr.sun_family != AF_UNIX ||
	    len <= offsetof(struct sockaddr_un, sun_path) || addr.sun_path[0] == '\0')
		return NULL;
	return g_strndup(addr.sun_path, len - offsetof(struct sockaddr_un, sun_path));
}

/* systemd made the socket file: say so when its group is not the one SocketGroup= names */
static void
vmsup_daemon_check_adopted_socket(VmsupDaemon *self, gint64 gid)
{
	GStatBuf st;

	if (gid < 0 || g_stat(self->options.socket_path, &st) != 0)
		return;
	if (st.st_gid != (gid_t)gid || (st.st_mode & 0060) != 0060)
		g_warning("SocketGroup=%s, but the socket systemd passed (%s) is group %u mode "
			  "%04o, so that group cannot reach it; set SocketGroup=%s and "
			  "SocketMode=0660 in vmsupd.socket (systemctl edit vmsupd.socket)",
			  self->config->socket_group,
			  self->options.socket_path,
			  (guint)st.st_gid,
			  (guint)(st.st_mode & 07777),
			  self->config->socket_group);
}

static gboolean
vmsup_daemon_listen(VmsupDaemon *self, GError **error)
{
	gint64 gid = -1;

	if (!vmsup_daemon_resolve_socket_group(self, &gid, error))
		return FALSE;
	self->jsonrpc = vmsup_jsonrpc_server_new(&self->ctx);
	vmsup_jsonrpc_server_set_limits(self->jsonrpc,
					self->config->max_connections_per_user,
					self->config->idle_timeout_sec);
	if (self->options.listen_fd > 0) {
		gint fd = self->options.listen_fd;

		/* systemd owns the file: it is neither claimed, nor chmod'ed, nor removed */
		self->options.listen_fd = 0;
		if (!vmsup_jsonrpc_server_adopt(self->jsonrpc,
						fd,
						self->options.system_mode,
						gid,
						error))
			return FALSE;
		vmsup_daemon_check_adopted_socket(self, gid);
		g_info("serving the socket systemd passed, %s", self->options.socket_path);
	} else {
		if (!vmsup_daemon_claim_socket_path(self, error))
			return FALSE;
		if (!vmsup_jsonrpc_server_listen(self->jsonrpc,
						 self->options.socket_path,
						 self->options.system_mode,
						 gid,
						 error))
			return FALSE;
		g_info("listening on %s", self->options.socket_path);
	}

	if (self->options.use_dbus) {
		self->dbus = vmsup_dbus_server_new(&self->ctx, self->vm_service);
		if (self->stats_service != NULL)
			g_signal_connect_object(self->stats_service,
						"stats-changed",
						G_CALLBACK(vmsup_daemon_stats_changed_cb),
						self,
						0);
		vmsup_dbus_server_own_name(self->dbus,
					   self->options.system_mode ? G_BUS_TYPE_SYSTEM
								     : G_BUS_TYPE_SESSION);
	}
	return TRUE;
}

/* MetricsListen=: each value was checked when the file was read */
static gboolean
vmsup_daemon_serve_metrics(VmsupDaemon *self, GError **error)
{
	GStrv listen = self->config->metrics_listen;

	if (listen == NULL || g_strv_length(listen) == 0)
		return TRUE;
	self->metrics_sources.metrics = self->metrics;
	self->metrics_sources.vm_service = self->vm_service;
	self->metrics_sources.stats_service = self->stats_service;
	self->metrics_sources.jsonrpc = self->jsonrpc;
	self->metrics_sources.started_at = self->ctx.started_at;
	self->metrics_server = vmsup_metrics_server_new(self->options.system_mode,
							vmsup_metrics_collect,
							&self->metrics_sources);
	for (guint i = 0; listen[i] != NULL; i++) {
		if (*listen[i] == '\0')
			continue;
		if (!vmsup_metrics_server_listen(self->metrics_server, listen[i], error))
			return FALSE;
		g_info("serving metrics on %s", listen[i]);
	}
	return TRUE;
}

static void
vmsup_daemon_load_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	VmsupDaemon *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;
	const gchar *reason = NULL;
	VmsupAccel accel;
	guint n_vms;

	if (!vmsup_vm_service_load_finish(VMSUP_VM_SERVICE(source), res, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	vmsup_event_source_note_owners(self->events);
	accel = vmsup_vm_service_get_accel(self->vm_service, &reason);
	g_message("accelerator: %s (%s)", vmsup_accel_to_string(accel), reason ? reason : "");
	/* a lowered cap never costs a definition: it only refuses new VMs */
	n_vms = vmsup_vm_service_count_vms(self->vm_service);
	if (self->config->max_vms > 0 && n_vms > self->config->max_vms)
		g_warning("%u VMs are defined, more than MaxVMs=%u allows: all are kept, but "
			  "vm.create is refused until fewer than %u are left",
			  n_vms,
			  self->config->max_vms,
			  self->config->max_vms);
	if (!vmsup_daemon_listen(self, &error) || !vmsup_daemon_serve_metrics(self, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

void
vmsup_daemon_start_async(VmsupDaemon *self,
			 GCancellable *cancellable,
			 GAsyncReadyCallback callback,
			 gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autoptr(GError) error = NULL;

	g_task_set_source_tag(task, vmsup_daemon_start_async);
	if (g_mkdir_with_parents(self->options.state_dir, 0700) != 0) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("Cannot create the state directory %s: %s"),
					self->options.state_dir,
					g_strerror(errno));
		return;
	}
	if (g_mkdir_with_parents(self->options.runtime_dir, 0700) != 0) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					_("Cannot create the runtime directory %s: %s"),
					self->options.runtime_dir,
					g_strerror(errno));
		return;
	}
	vmsup_daemon_wire_services(self);
	/* in the state directory made above, before loading: re-adoption's events are kept */
	if (self->journal == NULL) {
		self->journal = vmsup_event_journal_new(self->options.state_dir,
							VMSUP_EVENT_JOURNAL_DEFAULT_MAX_BYTES);
		vmsup_event_source_set_journal(self->events, self->journal);
	}
	vmsup_vm_service_load_async(self->vm_service,
				    cancellable,
				    vmsup_daemon_load_cb,
				    g_steal_pointer(&task));
}

gboolean
vmsup_daemon_start_finish(VmsupDaemon *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
vmsup_daemon_stop_all_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;
	if (!vmsup_vm_service_stop_all_finish(VMSUP_VM_SERVICE(source), res, &error))
		g_warning("stopping VMs on exit: %s, ignoring", error->message);
	g_task_return_boolean(task, TRUE);
}

void
vmsup_daemon_shutdown_async(VmsupDaemon *self,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);

	g_task_set_source_tag(task, vmsup_daemon_shutdown_async);
	/* stop accepting requests first: nothing new may start while we leave */
	g_clear_object(&self->metrics_server);
	g_clear_object(&self->jsonrpc);
	g_clear_object(&self->dbus);
	if (self->vm_service != NULL && self->config->stop_vms_on_exit) {
		vmsup_vm_service_stop_all_async(self->vm_service,
						cancellable,
						vmsup_daemon_stop_all_cb,
						g_steal_pointer(&task));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

gboolean
vmsup_daemon_shutdown_finish(VmsupDaemon *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

VmsupVmService *
vmsup_daemon_get_vm_service(VmsupDaemon *self)
{
	g_return_val_if_fail(VMSUP_IS_DAEMON(self), NULL);
	return self->vm_service;
}

VmsupStatsService *
vmsup_daemon_get_stats_service(VmsupDaemon *self)
{
	g_return_val_if_fail(VMSUP_IS_DAEMON(self), NULL);
	return self->stats_service;
}

VmsupWorkspaceService *
vmsup_daemon_get_workspace_service(VmsupDaemon *self)
{
	g_return_val_if_fail(VMSUP_IS_DAEMON(self), NULL);
	return self->workspace_service;
}

const gchar *
vmsup_daemon_get_socket_path(VmsupDaemon *self)
{
	g_return_val_if_fail(VMSUP_IS_DAEMON(self), NULL);
	return self->options.socket_path;
}

static void
vmsup_daemon_dispose(GObject *object)
{
	VmsupDaemon *self = VMSUP_DAEMON(object);

	g_cancellable_cancel(self->cancellable);
	g_clear_object(&self->metrics_server);
	vmsup_metrics_sources_clear(&self->metrics_sources);
	g_clear_object(&self->jsonrpc);
	g_clear_object(&self->dbus);
	g_clear_object(&self->events);
	g_clear_object(&self->journal);
	g_clear_object(&self->policy);
	g_clear_object(&self->workspace_service);
	g_clear_object(&self->image_store);
	g_clear_object(&self->stats_service);
	g_clear_object(&self->vm_service);
	G_OBJECT_CLASS(vmsup_daemon_parent_class)->dispose(object);
}

static void
vmsup_daemon_finalize(GObject *object)
{
	VmsupDaemon *self = VMSUP_DAEMON(object);

	g_free(self->options.state_dir);
	g_free(self->options.runtime_dir);
	g_free(self->options.socket_path);
	if (self->options.listen_fd > 0)
		close(self->options.listen_fd);
	vmsup_daemon_config_free(self->config);
	g_clear_object(&self->metrics);
	g_clear_object(&self->cancellable);
	G_OBJECT_CLASS(vmsup_daemon_parent_class)->finalize(object);
}

static void
vmsup_daemon_class_init(VmsupDaemonClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = vmsup_daemon_dispose;
	object_class->finalize = vmsup_daemon_finalize;
}

static void
vmsup_daemon_init(VmsupDaemon *self)
{
	self->cancellable = g_cancellable_new();
	self->metrics = vmsup_metrics_new();
}

VmsupDaemon *
vmsup_daemon_new(const VmsupDaemonOptions *options, VmsupDaemonConfig *config)
{
	VmsupDaemon *self = g_object_new(VMSUP_TYPE_DAEMON, NULL);
	g_autofree gchar *runtime_base = NULL;

	self->options.system_mode = options->system_mode;
	self->options.use_dbus = options->use_dbus;
	self->options.state_dir = options->state_dir != NULL
				      ? g_strdup(options->state_dir)
				      : vmsup_paths_state_dir(options->system_mode);
	self->options.runtime_dir = options->runtime_dir != NULL
					? g_strdup(options->runtime_dir)
					: vmsup_paths_runtime_dir(options->system_mode);
	self->options.socket_path = options->socket_path != NULL
					? g_strdup(options->socket_path)
					: vmsup_paths_socket(options->system_mode);
	self->options.listen_fd = options->listen_fd;
	if (options->listen_fd > 0) {
		/* clients and daemon.info are told where the socket really is */
		g_autofree gchar *path = vmsup_daemon_socket_fd_path(options->listen_fd);
		if (path != NULL && g_strcmp0(path, self->options.socket_path) != 0) {
			g_message("serving the socket systemd passed, %s, instead of %s",
				  path,
				  self->options.socket_path);
			g_free(self->options.socket_path);
			self->options.socket_path = g_steal_pointer(&path);
		}
	}
	self->config = config;
	return self;
}
