/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "vmsup-accel.h"
#include "vmsup-qmp-client.h"
#include "vmsup-run-as.h"

G_BEGIN_DECLS

/* one forwarded port of user-mode networking */
typedef struct {
	guint16 host_port; /* 0: pick a free one at spawn */
	guint16 guest_port;
} VmsupQemuForward;

/*
 * One node of a disk's chain, opened by the daemon and handed to QEMU by
 * descriptor. @path names it in messages only: QEMU never sees it.
 */
typedef struct {
	gint fd;       /* owned; O_RDWR for the top node, O_RDONLY below it */
	gchar *format; /* "qcow2" or "raw" */
	gchar *path;
} VmsupQemuDiskNode;

VmsupQemuDiskNode *
vmsup_qemu_disk_node_new(gint fd /* taken */, const gchar *format, const gchar *path);
void
vmsup_qemu_disk_node_free(VmsupQemuDiskNode *node);

/* everything QEMU's argv is built from; strings and descriptors owned */
typedef struct {
	gchar *name;        /* VM name, for -name and messages */
	gchar *qemu_binary; /* NULL: $VMSUP_QEMU or qemu-system-x86_64 from PATH */
	gchar *machine;     /* NULL: q35 */
	VmsupAccel accel;   /* KVM (with -cpu host) or TCG; AUTO is not allowed here */
	guint cpus;
	guint memory_mib;
	gchar *kernel;    /* direct kernel boot, or NULL */
	gchar *initrd;    /* NULL */
	gchar *cmdline;   /* NULL */
	gchar *disk;      /* a qcow2 image attached as virtio-blk, or NULL */
	gchar *share_dir; /* host dir shared by virtio-9p with mount tag "workspace", or NULL */
	GArray *forwards; /* of VmsupQemuForward, may be NULL */
	gboolean paused;  /* -S: stay paused until `cont` */
	gboolean network; /* user-mode virtio-net (default TRUE) */
	gboolean agent;   /* virtio-serial guest-agent channel (default TRUE) */
	/*
	 * Files opened for QEMU, so it never opens a host path by name: -1 or
	 * NULL to use the path above instead. Each is passed as an inherited
	 * descriptor; kernel, initrd and share as /proc/self/fd/N (QEMU 7.2
	 * opens them by name only), the disk's chain as -add-fd fdsets under an
	 * explicit -blockdev graph (top node first, read-write; the rest
	 * read-only, backing set explicitly so no name stored in an image is
	 * ever followed).
	 */
	gint kernel_fd;
	gint initrd_fd;
	gint share_fd;
	GPtrArray *disk_chain; /* of VmsupQemuDiskNode */
	/*
	 * A VM made from an image: UEFI firmware as two pflash drives (the code
	 * O_RDONLY, the VM's own variable store O_RDWR) and the cloud-init seed
	 * (O_RDONLY) as a read-only virtio disk, each an -add-fd fdset after
	 * the share's descriptor; -1 for none. Only with a QMP descriptor.
	 */
	gint firmware_code_fd;
	gint firmware_vars_fd;
	gint seed_fd;
	/* who QEMU runs as (never root in system mode); NULL: the daemon's own user */
	VmsupRunAs *run_as;
} VmsupQemuConfig;

/* defaults: q35, TCG, 1 vCPU, 256 MiB, network and agent on, not paused */
VmsupQemuConfig *
vmsup_qemu_config_new(const gchar *name);
VmsupQemuConfig *
vmsup_qemu_config_copy(const VmsupQemuConfig *config);
void
vmsup_qemu_config_free(VmsupQemuConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmsupQemuConfig, vmsup_qemu_config_free)

/* appends to config->forwards (created when NULL); @host_port 0 picks a free port at spawn */
void
vmsup_qemu_config_add_forward(VmsupQemuConfig *config, guint16 host_port, guint16 guest_port);

/* the QEMU binary @config will run (resolved through PATH) or NULL with an error */
gchar *
vmsup_qemu_config_find_binary(const VmsupQemuConfig *config, GError **error);

/*
 * QEMU's argv for @config with runtime files under @runtime_dir; user values
 * inside option strings are escaped (',' doubled) or refused. @qmp_fd is the
 * listening QMP socket handed to QEMU (-1: QEMU binds <runtime_dir>/qmp.sock).
 * A forward with host_port 0 is passed as is (spawn resolves it first).
 * With @qmp_fd, every runtime file is a descriptor too: the guest agent's
 * listening socket @qmp_fd + 1, the console log @qmp_fd + 2 (an fdset), the
 * serial console's listening socket @qmp_fd + 3, the config's files from
 * @qmp_fd + 4 on; QEMU creates nothing by name.
 */
gchar **
vmsup_qemu_config_build_argv(const VmsupQemuConfig *config,
			     const gchar *runtime_dir,
			     gint qmp_fd,
			     GError **error);

/* QEMU's seccomp filter: no obsolete calls, no set*id, no fork/exec, no scheduling */
#define VMSUP_QEMU_SANDBOX "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
/* the 9p share's model: the guest's owners and modes in xattrs, plain files on the host */
#define VMSUP_QEMU_9P_SECURITY_MODEL "mapped-xattr"

/* runtime files, all under the runtime dir of a VM */
#define VMSUP_QEMU_QMP_SOCKET "qmp.sock"
#define VMSUP_QEMU_QGA_SOCKET "qga.sock"
/* the guest agent's chardev and its virtio-serial port (named in VSERPORT_CHANGE events) */
#define VMSUP_QEMU_QGA_CHARDEV "qga0"
#define VMSUP_QEMU_QGA_PORT "qga0port"
#define VMSUP_QEMU_PIDFILE "qemu.pid"
#define VMSUP_QEMU_CONSOLE_LOG "console.log"
/* the serial port's chardev, a socket QEMU serves (wait=off) and logs to console.log */
#define VMSUP_QEMU_CONSOLE_SOCKET "console.sock"
#define VMSUP_QEMU_SERIAL_CHARDEV "ser0"
#define VMSUP_QEMU_STDERR_LOG "qemu.log"

/* "exited with status 1", "was killed by signal 9 (Killed)", "exited" for -1 */
gchar *
vmsup_qemu_describe_wait_status(gint wait_status);

#define VMSUP_TYPE_QEMU_PROCESS (vmsup_qemu_process_get_type())
G_DECLARE_FINAL_TYPE(VmsupQemuProcess, vmsup_qemu_process, VMSUP, QEMU_PROCESS, GObject)

/*
 * One running QEMU. Signals:
 *   "exited": void (VmsupQemuProcess *self, gint wait_status, gpointer user_data);
 *       wait_status as waitpid() gives it, or -1 when unknown (an adopted process);
 *       emitted exactly once, after the process is reaped.
 *
 * Dropping the last reference closes QMP but leaves QEMU running: it lives in
 * its own session, so the daemon can exit (or be killed) and a later one
 * adopts it. Only stop_async() and kill() end the process.
 */

VmsupQemuProcess *
vmsup_qemu_process_new(const gchar *name, const gchar *runtime_dir);

/*
 * Spawns QEMU (own session, stdout and stderr to qemu.log, QMP socket bound
 * here and handed over as fd 3, every other runtime file by descriptor too,
 * as config->run_as with no new privileges and no capabilities, under
 * -sandbox) and completes when QMP is ready. The daemon writes the pidfile. On failure
 * no process is left; when QEMU exited the error quotes the end of qemu.log.
 * Cancelling kills the QEMU being started.
 */
void
vmsup_qemu_process_spawn_async(VmsupQemuProcess *self,
			       const VmsupQemuConfig *config,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
gboolean
vmsup_qemu_process_spawn_finish(VmsupQemuProcess *self, GAsyncResult *res, GError **error);

/*
 * Re-adopts a QEMU left by an earlier daemon: pidfile + /proc check that the
 * pid is still that QEMU (its cmdline names our runtime dir, whichever uid
 * it runs as), then reconnects
 * QMP. Exit is watched through a pidfd. When only the QMP reconnect fails the
 * process stays watched, so stop_async() and kill() still reach it.
 */
void
vmsup_qemu_process_adopt_async(VmsupQemuProcess *self,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data);
gboolean
vmsup_qemu_process_adopt_finish(VmsupQemuProcess *self, GAsyncResult *res, GError **error);

/*
 * A running QEMU whose QMP did not answer (frozen while it was adopted):
 * tries QMP once more; on success it is the process's QMP client from then
 * on. A failure changes nothing, the process least of all.
 */
void
vmsup_qemu_process_reconnect_qmp_async(VmsupQemuProcess *self,
				       GCancellable *cancellable,
				       GAsyncReadyCallback callback,
				       gpointer user_data);
gboolean
vmsup_qemu_process_reconnect_qmp_finish(VmsupQemuProcess *self, GAsyncResult *res, GError **error);

/*
 * Stops QEMU: unless @force, system_powerdown and up to @timeout_ms for the
 * guest; then `quit` (SIGTERM without QMP) and 2 s; then SIGKILL. Completes
 * once the process is reaped; a stop already under way is joined; stopping a
 * process that is gone succeeds at once.
 */
void
vmsup_qemu_process_stop_async(VmsupQemuProcess *self,
			      gboolean force,
			      guint timeout_ms,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data);
gboolean
vmsup_qemu_process_stop_finish(VmsupQemuProcess *self, GAsyncResult *res, GError **error);

/* SIGKILL now; "exited" follows */
void
vmsup_qemu_process_kill(VmsupQemuProcess *self);

GPid
vmsup_qemu_process_get_pid(VmsupQemuProcess *self);
gboolean
vmsup_qemu_process_is_running(VmsupQemuProcess *self);
/* borrowed; NULL before spawn/adopt completes */
VmsupQmpClient *
vmsup_qemu_process_get_qmp(VmsupQemuProcess *self);
const gchar *
vmsup_qemu_process_get_runtime_dir(VmsupQemuProcess *self);
/* monotonic time of spawn (or of adoption, from /proc start time) */
gint64
vmsup_qemu_process_get_started_at(VmsupQemuProcess *self);
/* the wait status once exited; -1 while running, before spawn, or when unknown (adopted) */
gint
vmsup_qemu_process_get_wait_status(VmsupQemuProcess *self);
/* borrowed array of VmsupQemuForward with the host ports in use (adopted: read from /proc) */
GArray *
vmsup_qemu_process_get_forwards(VmsupQemuProcess *self);

G_END_DECLS
