/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One QEMU process: its argv, its spawn in a session of its own with the QMP
 * listening socket handed over by fd (as libvirt does), its exit (child watch,
 * or a pidfd for a process adopted from an earlier daemon) and the stop chain
 * system_powerdown -> quit -> SIGKILL.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "vmsup-error.h"
#include "vmsup-name.h"
#include "vmsup-qemu-process.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* the fd number QEMU finds its QMP listening socket on; the others follow it */
#define VMSUP_QEMU_QMP_FD 3
/* the argument that names a runtime dir in QEMU's cmdline, for adoption */
#define VMSUP_QEMU_MARKER_ID "vmsup-runtime-dir"
/* QMP answers in tens of ms; this only bounds a QEMU that hangs during init */
#define VMSUP_QEMU_READY_TIMEOUT_MS 30000
/* after `quit` (or SIGTERM) QEMU gets this long before SIGKILL */
#define VMSUP_QEMU_QUIT_GRACE_MS 2000
/* when QMP fails during spawn QEMU is usually exiting: let it report why */
#define VMSUP_QEMU_EXIT_GRACE_MS 1000
/* lines of qemu.log quoted in a spawn error */
#define VMSUP_QEMU_LOG_TAIL_LINES 5
#define VMSUP_QEMU_LOG_TAIL_BYTES 4096

typedef enum {
	VMSUP_QEMU_STOP_NONE,
	VMSUP_QEMU_STOP_POWERDOWN,
	VMSUP_QEMU_STOP_QUIT,
	VMSUP_QEMU_STOP_KILL,
} VmsupQemuStopStage;

struct _VmsupQemuProcess {
	GObject parent_instance;
	gchar *name;               /* owned */
	gchar *runtime_dir;        /* owned, absolute */
	GCancellable *cancellable; /* owned, cancelled in dispose */
	GSubprocess *subprocess;   /* owned; spawned processes only */
	GPid pid;
	gint pidfd; /* owned; adopted processes only, else -1 */
	guint pidfd_source;
	VmsupQmpClient *qmp; /* owned */
	GArray *forwards;    /* owned, of VmsupQemuForward */
	gint64 started_at;
	gint wait_status;
	gboolean running;
	gboolean killed; /* we sent SIGKILL */

	/* a spawn or adopt under way */
	GTask *start_task;               /* owned */
	GCancellable *start_cancellable; /* owned */
	GSource *start_cancel_source;    /* owned */
	guint start_timeout_source;
	guint start_grace_source;
	GError *start_error; /* owned: why the start is being aborted */

	GPtrArray *stop_tasks; /* owned GTasks, completed when the process is gone */
	VmsupQemuStopStage stop_stage;
	guint stop_source;
};

G_DEFINE_FINAL_TYPE(VmsupQemuProcess, vmsup_qemu_process, G_TYPE_OBJECT)

enum { PROP_0, PROP_NAME, PROP_RUNTIME_DIR, N_PROPS };
static GParamSpec *props[N_PROPS] = {NULL};

enum { SIGNAL_EXITED, N_SIGNALS };
static guint signals[N_SIGNALS] = {0};

/* config and argv */

VmsupQemuConfig *
vmsup_qemu_config_new(const gchar *name)
{
	VmsupQemuConfig *config = g_new0(VmsupQemuConfig, 1);
	config->name = g_strdup(name);
	config->accel = VMSUP_ACCEL_TCG;
	config->cpus = 1;
	config->memory_mib = 256;
	config->network = TRUE;
	config->agent = TRUE;
	config->kernel_fd = -1;
	config->initrd_fd = -1;
	config->share_fd = -1;
	config->firmware_code_fd = -1;
	config->firmware_vars_fd = -1;
	config->seed_fd = -1;
	return config;
}

VmsupQemuDiskNode *
vmsup_qemu_disk_node_new(gint fd, const gchar *format, const gchar *path)
{
	VmsupQemuDiskNode *node = g_new0(VmsupQemuDiskNode, 1);
	node->fd = fd;
	node->format = g_strdup(format);
	node->path = g_strdup(path);
	return node;
}

void
vmsup_qemu_disk_node_free(VmsupQemuDiskNode *node)
{
	if (node == NULL)
		return;
	if (node->fd >= 0)
		close(node->fd);
	g_free(node->format);
	g_free(node->path);
	g_free(node);
}

static gint
vmsup_qemu_dup(gint fd)
{
	return fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
}

VmsupQemuConfig *
vmsup_qemu_config_copy(const VmsupQemuConfig *config)
{
	VmsupQemuConfig *copy;

	g_return_val_if_fail(config != NULL, NULL);

	copy = g_memdup2(config, sizeof(*config));
	copy->name = g_strdup(config->name);
	copy->qemu_binary = g_strdup(config->qemu_binary);
	copy->machine = g_strdup(config->machine);
	copy->kernel = g_strdup(config->kernel);
	copy->initrd = g_strdup(config->initrd);
	copy->cmdline = g_strdup(config->cmdline);
	copy->disk = g_strdup(config->disk);
	copy->share_dir = g_strdup(config->share_dir);
	copy->kernel_fd = vmsup_qemu_dup(config->kernel_fd);
	copy->initrd_fd = vmsup_qemu_dup(config->initrd_fd);
	copy->share_fd = vmsup_qemu_dup(config->share_fd);
	copy->firmware_code_fd = vmsup_qemu_dup(config->firmware_code_fd);
	copy->firmware_vars_fd = vmsup_qemu_dup(config->firmware_vars_fd);
	copy->seed_fd = vmsup_qemu_dup(config->seed_fd);
	copy->run_as = vmsup_run_as_copy(config->run_as);
	copy->disk_chain = NULL;
	if (config->disk_chain != NULL) {
		copy->disk_chain =
		    g_ptr_array_new_with_free_func((GDestroyNotify)vmsup_qemu_disk_node_free);
		for (guint i = 0; i < config->disk_chain->len; i++) {
			VmsupQemuDiskNode *node = g_ptr_array_index(config->disk_chain, i);
			g_ptr_array_add(copy->disk_chain,
					vmsup_qemu_disk_node_new(vmsup_qemu_dup(node->fd),
								 node->format,
								 node->path));
		}
	}
	copy->forwards = NULL;
	if (config->forwards != NULL) {
		copy->forwards = g_array_sized_new(FALSE,
						   FALSE,
						   sizeof(VmsupQemuForward),
						   config->forwards->len);
		g_array_append_vals(copy->forwards, config->forwards->data, config->forwards->len);
	}
	return copy;
}

void
vmsup_qemu_config_free(VmsupQemuConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->name);
	g_free(config->qemu_binary);
	g_free(config->machine);
	g_free(config->kernel);
	g_free(config->initrd);
	g_free(config->cmdline);
	g_free(config->disk);
	g_free(config->share_dir);
	g_clear_pointer(&config->forwards, g_array_unref);
	g_clear_pointer(&config->disk_chain, g_ptr_array_unref);
	g_clear_pointer(&config->run_as, vmsup_run_as_free);
	if (config->kernel_fd >= 0)
		close(config->kernel_fd);
	if (config->initrd_fd >= 0)
		close(config->initrd_fd);
	if (config->share_fd >= 0)
		close(config->share_fd);
	if (config->firmware_code_fd >= 0)
		close(config->firmware_code_fd);
	if (config->firmware_vars_fd >= 0)
		close(config->firmware_vars_fd);
	if (config->seed_fd >= 0)
		close(config->seed_fd);
	g_free(config);
}

void
vmsup_qemu_config_add_forward(VmsupQemuConfig *config, guint16 host_port, guint16 guest_port)
{
	VmsupQemuForward fwd = {.host_port = host_port, .guest_port = guest_port};

	g_return_if_fail(config != NULL);

	if (config->forwards == NULL)
		config->forwards = g_array_new(FALSE, FALSE, sizeof(VmsupQemuForward));
	g_array_append_val(config->forwards, fwd);
}

gchar *
vmsup_qemu_config_find_binary(const VmsupQemuConfig *config, GError **error)
{
	const gchar *wanted = config != NULL ? config->qemu_binary : NULL;
	g_autofree gchar *found = NULL;

	if (wanted == NULL || wanted[0] == '\0')
		wanted = g_getenv("VMSUP_QEMU");
	if (wanted == NULL || wanted[0] == '\0')
		wanted = "qemu-system-x86_64";

	if (strchr(wanted, '/') != NULL) {
		if (!g_file_test(wanted, G_FILE_TEST_IS_EXECUTABLE) ||
		    g_file_test(wanted, G_FILE_TEST_IS_DIR)) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    "QEMU binary '%s' is not an executable file; install "
				    "qemu-system-x86 or set VMSUP_QEMU",
				    wanted);
			return NULL;
		}
		return g_canonicalize_filename(wanted, NULL);
	}
	found = g_find_program_in_path(wanted);
	if (found == NULL) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    "QEMU binary '%s' not found in PATH; install qemu-system-x86 or set "
			    "VMSUP_QEMU",
			    wanted);
		return NULL;
	}
	return g_steal_pointer(&found);
}

/* a control character (a newline above all) could end or split an option */
static gboolean
vmsup_qemu_check_value(const gchar *what, const gchar *value, GError **error)
{
	if (value[0] == '\0') {
		g_set_error(error, VMSUP_ERROR, VMSUP_ERROR_INVALID_ARGUMENT, "%s is empty", what);
		return FALSE;
	}
	for (const gchar *p = value; *p != '\0'; p++) {
		if ((guchar)*p < 0x20 || *p == 0x7f) {
			g_autofree gchar *shown = g_strescape(value, NULL);
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    "%s '%s' contains a control character such as a newline; "
				    "QEMU cannot be given it",
				    what,
				    shown);
			return FALSE;
		}
	}
	return TRUE;
}

/* absolute, so a "proto:" prefix is never read as a block protocol */
static gchar *
vmsup_qemu_check_path(const gchar *what, const gchar *value, GError **error)
{
	if (!vmsup_qemu_check_value(what, value, error))
		return NULL;
	return g_canonicalize_filename(value, NULL);
}

/* QEMU splits option strings on ','; a literal comma is written ",," */
static gchar *
vmsup_qemu_escape(const gchar *value)
{
	GString *str = g_string_new(value);
	g_string_replace(str, ",", ",,", 0);
	return g_string_free(str, FALSE);
}

/*
 * The machine type sits in the implied first key of -M, where a '=' or ','
 * would add machine properties, so it is held to a plain identifier.
 */
static gboolean
vmsup_qemu_check_machine(const gchar *machine, GError **error)
{
	for (const gchar *p = machine; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.') {
			g_autofree gchar *shown = g_strescape(machine, NULL);
			g_set_error(
			    error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "invalid machine type '%s': use letters, digits, '.', '_' and '-'",
			    shown);
			return FALSE;
		}
	}
	if (machine[0] == '\0') {
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    "machine type is empty");
		return FALSE;
	}
	return TRUE;
}

static gboolean
vmsup_qemu_check_socket_dir(const gchar *runtime_dir, GError **error)
{
	struct sockaddr_un addr;
	/* the longest name of a socket in it */
	gsize len = strlen(runtime_dir) + 1 + strlen(VMSUP_QEMU_CONSOLE_SOCKET);

	G_STATIC_ASSERT(sizeof(VMSUP_QEMU_QMP_SOCKET) <= sizeof(VMSUP_QEMU_CONSOLE_SOCKET));
	if (len >= sizeof(addr.sun_path)) {
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    "runtime dir '%s' is too long for a Unix socket path (at most %" G_GSIZE_FORMAT
		    " bytes); choose a shorter --runtime-dir",
		    runtime_dir,
		    sizeof(addr.sun_path) - 2 - strlen(VMSUP_QEMU_CONSOLE_SOCKET));
		return FALSE;
	}
	return TRUE;
}

static void
vmsup_qemu_argv_add(GPtrArray *argv, const gchar *option, const gchar *value)
{
	g_ptr_array_add(argv, g_strdup(option));
	if (value != NULL)
		g_ptr_array_add(argv, g_strdup(value));
}

G_GNUC_PRINTF(3, 4)
static void
vmsup_qemu_argv_addf(GPtrArray *argv, const gchar *option, const gchar *format, ...)
{
	va_list args;

	va_start(args, format);
	g_ptr_array_add(argv, g_strdup(option));
	g_ptr_array_add(argv, g_strdup_vprintf(format, args));
	va_end(args);
}

/* the same device on a machine with PCI ("-pci") or on microvm's virtio-mmio ("-device") */
static gchar *
vmsup_qemu_virtio(const gchar *machine, const gchar *device)
{
	gboolean mmio = g_strcmp0(machine, "microvm") == 0;
	return g_strdup_printf("%s-%s", device, mmio ? "device" : "pci");
}

/*
 * The disk's chain as fdsets, bottom node first so each -blockdev names one
 * already defined; @first_fd is the number the top node's descriptor gets.
 */
static gboolean
vmsup_qemu_argv_add_chain(GPtrArray *argv,
			  GPtrArray *chain,
			  gboolean mmio,
			  gint first_fd,
			  GError **error)
{
	for (guint j = chain->len; j > 0; j--) {
		guint i = j - 1;
		VmsupQemuDiskNode *node = g_ptr_array_index(chain, i);
		gint fd = first_fd + (gint)i;
		const gchar *ro = i == 0 ? "off" : "on";
		gboolean qcow2 = g_strcmp0(node->format, "qcow2") == 0;
		g_autoptr(GString) format = NULL;

		if (!qcow2 && g_strcmp0(node->format, "raw") != 0) {
			g_set_error(
			    error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "disk node %u has the format '%s'; only qcow2 and raw are handed "
			    "to QEMU",
			    i,
			    node->format != NULL ? node->format : "");
			return FALSE;
		}
		if (!qcow2 && i + 1 < chain->len) {
			g_set_error(
			    error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "disk node %u is raw, which has no backing file, yet more follow",
			    i);
			return FALSE;
		}
		vmsup_qemu_argv_addf(argv, "-add-fd", "fd=%d,set=%d", fd, fd);
		vmsup_qemu_argv_addf(argv,
				     "-blockdev",
				     "driver=file,node-name=vmsup-file%u,filename=/dev/fdset/%d,"
				     "read-only=%s",
				     i,
				     fd,
				     ro);
		/* JSON: only it can say "no backing" (key=value reads null as a node name) */
		format = g_string_new(NULL);
		g_string_printf(format,
				"{\"driver\":\"%s\",\"node-name\":\"vmsup-disk%u\","
				"\"file\":\"vmsup-file%u\",\"read-only\":%s",
				node->format,
				i,
				i,
				i == 0 ? "false" : "true");
		/* never the name stored in the image: the next node, or none */
		if (qcow2 && i + 1 < chain->len)
			g_string_append_printf(format, ",\"backing\":\"vmsup-disk%u\"", i + 1);
		else if (qcow2)
			g_string_append(format, ",\"backing\":null");
		g_string_append_c(format, '}');
		vmsup_qemu_argv_add(argv, "-blockdev", format->str);
	}
	vmsup_qemu_argv_add(argv,
			    "-device",
			    mmio ? "virtio-blk-device,drive=vmsup-disk0"
				 : "virtio-blk-pci,drive=vmsup-disk0");
	return TRUE;
}

/* a raw block node @name over the fdset of descriptor @fd */
static void
vmsup_qemu_argv_add_raw_node(GPtrArray *argv, const gchar *name, gint fd, gboolean read_only)
{
	const gchar *ro = read_only ? "on" : "off";

	vmsup_qemu_argv_addf(argv, "-add-fd", "fd=%d,set=%d", fd, fd);
	vmsup_qemu_argv_addf(argv,
			     "-blockdev",
			     "driver=file,node-name=%s-file,filename=/dev/fdset/%d,read-only=%s",
			     name,
			     fd,
			     ro);
	vmsup_qemu_argv_addf(argv,
			     "-blockdev",
			     "driver=raw,node-name=%s,file=%s-file,read-only=%s",
			     name,
			     name,
			     ro);
}

/* one argv being built: what each part of it needs to know */
typedef struct {
	GPtrArray *argv; /* owned */
	const VmsupQemuConfig *config;
	const gchar *machine;
	gboolean mmio;  /* microvm: virtio-mmio devices, not PCI */
	gboolean by_fd; /* files and sockets are passed as descriptors */
	gint qmp_fd;    /* then QMP's, and the agent's and the console's after it */
	gint next_fd;   /* the next host file's descriptor, in the order of the parts */
	gchar *run;     /* owned: the runtime dir */
	gchar *run_esc; /* owned: the same, escaped for an option string */
} VmsupQemuArgv;

static void
vmsup_qemu_argv_clear(VmsupQemuArgv *b)
{
	g_clear_pointer(&b->argv, g_ptr_array_unref);
	g_clear_pointer(&b->run, g_free);
	g_clear_pointer(&b->run_esc, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmsupQemuArgv, vmsup_qemu_argv_clear)

/* what the caller must have decided before an argv can be built */
static gboolean
vmsup_qemu_argv_check_config(const VmsupQemuConfig *config, GError **error)
{
	if (config->accel != VMSUP_ACCEL_KVM && config->accel != VMSUP_ACCEL_TCG) {
		g_set_error_literal(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_INVALID_ARGUMENT,
		    "the accelerator must be resolved to kvm or tcg before QEMU starts");
		return FALSE;
	}
	if (config->cpus == 0 || config->cpus > 255) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INVALID_ARGUMENT,
			    "cpus must be between 1 and 255, not %u",
			    config->cpus);
		return FALSE;
	}
	if (config->memory_mib == 0) {
		g_set_error_literal(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_INVALID_ARGUMENT,
				    "memory_mib must be at least 1");
		return FALSE;
	}
	return TRUE;
}

/* the machine itself: name, model, accelerator, size, and nothing QEMU adds on its own */
static void
vmsup_qemu_argv_add_machine(VmsupQemuArgv *b)
{
	const VmsupQemuConfig *config = b->config;

	vmsup_qemu_argv_addf(b->argv, "-name", "guest=%s,debug-threads=on", config->name);
	vmsup_qemu_argv_add(b->argv, "-M", b->machine);
	if (config->accel == VMSUP_ACCEL_KVM) {
		vmsup_qemu_argv_add(b->argv, "-accel", "kvm");
		vmsup_qemu_argv_add(b->argv, "-cpu", "host");
	} else {
		vmsup_qemu_argv_add(b->argv, "-accel", "tcg");
	}
	vmsup_qemu_argv_addf(b->argv, "-smp", "%u", config->cpus);
	vmsup_qemu_argv_addf(b->argv, "-m", "%uM", config->memory_mib);
	vmsup_qemu_argv_add(b->argv, "-nodefaults", NULL);
	vmsup_qemu_argv_add(b->argv, "-no-user-config", NULL);
	vmsup_qemu_argv_add(b->argv, "-display", "none");
	vmsup_qemu_argv_add(b->argv, "-no-reboot", NULL);
	vmsup_qemu_argv_add(b->argv, "-sandbox", VMSUP_QEMU_SANDBOX);
}

/*
 * How vmsupd finds and talks to it: the adoption marker, the console, QMP.
 * The serial port is a socket QEMU serves, so the guest runs on while no
 * daemon is connected; QEMU itself writes everything the guest prints to the
 * console log, connected or not.
 */
static void
vmsup_qemu_argv_add_control(VmsupQemuArgv *b)
{
	if (b->by_fd) {
		/* the daemon writes the pidfile; this names the runtime dir for adoption */
		vmsup_qemu_argv_addf(b->argv,
				     "-object",
				     "secret,id=" VMSUP_QEMU_MARKER_ID ",data=%s",
				     b->run_esc);
		vmsup_qemu_argv_addf(b->argv,
				     "-add-fd",
				     "fd=%d,set=%d",
				     b->qmp_fd + 2,
				     b->qmp_fd + 2);
		vmsup_qemu_argv_addf(b->argv,
				     "-chardev",
				     "socket,id=" VMSUP_QEMU_SERIAL_CHARDEV
				     ",fd=%d,server=on,wait=off,logfile=/dev/fdset/%d",
				     b->qmp_fd + 3,
				     b->qmp_fd + 2);
	} else {
		/* -pidfile takes the path verbatim: adoption matches this argument exactly */
		g_ptr_array_add(b->argv, g_strdup("-pidfile"));
		g_ptr_array_add(b->argv, g_build_filename(b->run, VMSUP_QEMU_PIDFILE, NULL));
		vmsup_qemu_argv_addf(b->argv,
				     "-chardev",
				     "socket,id=" VMSUP_QEMU_SERIAL_CHARDEV
				     ",path=%s/" VMSUP_QEMU_CONSOLE_SOCKET
				     ",server=on,wait=off,logfile=%s/" VMSUP_QEMU_CONSOLE_LOG,
				     b->run_esc,
				     b->run_esc);
	}
	vmsup_qemu_argv_add(b->argv, "-serial", "chardev:" VMSUP_QEMU_SERIAL_CHARDEV);
	if (b->by_fd)
		vmsup_qemu_argv_addf(b->argv,
				     "-chardev",
				     "socket,id=qmp0,fd=%d,server=on,wait=off",
				     b->qmp_fd);
	else
		vmsup_qemu_argv_addf(b->argv,
				     "-chardev",
				     "socket,id=qmp0,path=%s/" VMSUP_QEMU_QMP_SOCKET
				     ",server=on,wait=off",
				     b->run_esc);
	vmsup_qemu_argv_add(b->argv, "-mon", "chardev=qmp0,mode=control");
}

/* -kernel, -initrd and -append, taken verbatim, not as option strings */
static gboolean
vmsup_qemu_argv_add_boot(VmsupQemuArgv *b, GError **error)
{
	const VmsupQemuConfig *config = b->config;

	if (b->by_fd && config->kernel_fd >= 0) {
		vmsup_qemu_argv_addf(b->argv, "-kernel", "/proc/self/fd/%d", b->next_fd++);
	} else if (config->kernel != NULL) {
		g_autofree gchar *kernel = vmsup_qemu_check_path("kernel", config->kernel, error);
		if (kernel == NULL)
			return FALSE;
		vmsup_qemu_argv_add(b->argv, "-kernel", kernel);
	}
	if (b->by_fd && config->initrd_fd >= 0) {
		vmsup_qemu_argv_addf(b->argv, "-initrd", "/proc/self/fd/%d", b->next_fd++);
	} else if (config->initrd != NULL) {
		g_autofree gchar *initrd = vmsup_qemu_check_path("initrd", config->initrd, error);
		if (initrd == NULL)
			return FALSE;
		vmsup_qemu_argv_add(b->argv, "-initrd", initrd);
	}
	if (config->cmdline != NULL) {
		if (!vmsup_qemu_check_value("kernel command line", config->cmdline, error))
			return FALSE;
		vmsup_qemu_argv_add(b->argv, "-append", config->cmdline);
	}
	return TRUE;
}

/* the VM's disk: its whole chain by descriptor, or by name without descriptors */
static gboolean
vmsup_qemu_argv_add_disk(VmsupQemuArgv *b, GError **error)
{
	const VmsupQemuConfig *config = b->config;
	g_autofree gchar *disk = NULL;
	g_autofree gchar *disk_esc = NULL;

	if (b->by_fd && config->disk_chain != NULL && config->disk_chain->len > 0) {
		if (!vmsup_qemu_argv_add_chain(b->argv,
					       config->disk_chain,
					       b->mmio,
					       b->next_fd,
					       error))
			return FALSE;
		b->next_fd += (gint)config->disk_chain->len;
		return TRUE;
	}
	if (config->disk == NULL)
		return TRUE;
	disk = vmsup_qemu_check_path("disk image", config->disk, error);
	if (disk == NULL)
		return FALSE;
	disk_esc = vmsup_qemu_escape(disk);
	if (b->mmio) {
		vmsup_qemu_argv_addf(b->argv,
				     "-drive",
				     "if=none,id=disk0,file=%s,format=qcow2",
				     disk_esc);
		vmsup_qemu_argv_add(b->argv, "-device", "virtio-blk-device,drive=disk0");
	} else {
		vmsup_qemu_argv_addf(b->argv, "-drive", "if=virtio,file=%s,format=qcow2", disk_esc);
	}
	return TRUE;
}

/* the guest agent's channel, on a socket QEMU serves */
static void
vmsup_qemu_argv_add_agent(VmsupQemuArgv *b)
{
	g_autofree gchar *serial = vmsup_qemu_virtio(b->machine, "virtio-serial");

	if (b->by_fd) {
		vmsup_qemu_argv_addf(b->argv,
				     "-chardev",
				     "socket,id=" VMSUP_QEMU_QGA_CHARDEV
				     ",fd=%d,server=on,wait=off",
				     b->qmp_fd + 1);
	} else {
		vmsup_qemu_argv_addf(b->argv,
				     "-chardev",
				     "socket,id=" VMSUP_QEMU_QGA_CHARDEV
				     ",path=%s/" VMSUP_QEMU_QGA_SOCKET ",server=on,wait=off",
				     b->run_esc);
	}
	vmsup_qemu_argv_add(b->argv, "-device", serial);
	vmsup_qemu_argv_add(b->argv,
			    "-device",
			    "virtserialport,chardev=" VMSUP_QEMU_QGA_CHARDEV
			    ",id=" VMSUP_QEMU_QGA_PORT ",name=org.qemu.guest_agent.0");
}

/* user-mode networking, with the forwards on the host's loopback */
static gboolean
vmsup_qemu_argv_add_network(VmsupQemuArgv *b, GError **error)
{
	const VmsupQemuConfig *config = b->config;
	g_autoptr(GString) netdev = g_string_new("user,id=n0");

	for (guint i = 0; config->forwards != NULL && i < config->forwards->len; i++) {
		VmsupQemuForward *fwd = &g_array_index(config->forwards, VmsupQemuForward, i);
		if (fwd->guest_port == 0) {
			g_set_error_literal(error,
					    VMSUP_ERROR,
					    VMSUP_ERROR_INVALID_ARGUMENT,
					    "a forwarded guest port must not be 0");
			return FALSE;
		}
		g_string_append_printf(netdev,
				       ",hostfwd=tcp:127.0.0.1:%u-:%u",
				       fwd->host_port,
				       fwd->guest_port);
	}
	vmsup_qemu_argv_add(b->argv, "-netdev", netdev->str);
	if (b->mmio)
		vmsup_qemu_argv_add(b->argv, "-device", "virtio-net-device,netdev=n0");
	else
		vmsup_qemu_argv_add(b->argv, "-device", "virtio-net-pci,netdev=n0,romfile=");
	return TRUE;
}

/* the 9p share, mounted as "workspace" in the guest */
static gboolean
vmsup_qemu_argv_add_share(VmsupQemuArgv *b, GError **error)
{
	const VmsupQemuConfig *config = b->config;
	g_autofree gchar *share = NULL;
	g_autofree gchar *share_esc = NULL;
	g_autofree gchar *p9 = vmsup_qemu_virtio(b->machine, "virtio-9p");

	if (b->by_fd && config->share_fd >= 0)
		share = g_strdup_printf("/proc/self/fd/%d", b->next_fd++);
	else
		share = vmsup_qemu_check_path("shared dir", config->share_dir, error);
	if (share == NULL)
		return FALSE;
	share_esc = vmsup_qemu_escape(share);
	vmsup_qemu_argv_addf(b->argv,
			     "-fsdev",
			     "local,id=fs0,path=%s,security_model=" VMSUP_QEMU_9P_SECURITY_MODEL,
			     share_esc);
	vmsup_qemu_argv_addf(b->argv, "-device", "%s,fsdev=fs0,mount_tag=workspace", p9);
	return TRUE;
}

/* UEFI's code and variables as pflash, and the cloud-init seed, all by descriptor */
static void
vmsup_qemu_argv_add_firmware_and_seed(VmsupQemuArgv *b)
{
	const VmsupQemuConfig *config = b->config;

	if (config->firmware_code_fd >= 0 && config->firmware_vars_fd >= 0) {
		vmsup_qemu_argv_add_raw_node(b->argv, "vmsup-fw-code", b->next_fd++, TRUE);
		vmsup_qemu_argv_add_raw_node(b->argv, "vmsup-fw-vars", b->next_fd++, FALSE);
		vmsup_qemu_argv_add(b->argv,
				    "-machine",
				    "pflash0=vmsup-fw-code,pflash1=vmsup-fw-vars");
	}
	if (config->seed_fd >= 0) {
		g_autofree gchar *blk = vmsup_qemu_virtio(b->machine, "virtio-blk");
		vmsup_qemu_argv_add_raw_node(b->argv, "vmsup-seed", b->next_fd++, TRUE);
		vmsup_qemu_argv_addf(b->argv, "-device", "%s,drive=vmsup-seed", blk);
	}
}

gchar **
vmsup_qemu_config_build_argv(const VmsupQemuConfig *config,
			     const gchar *runtime_dir,
			     gint qmp_fd,
			     GError **error)
{
	g_auto(VmsupQemuArgv) b = {0};
	g_autofree gchar *binary = NULL;
	g_autofree gchar *balloon = NULL;

	g_return_val_if_fail(config != NULL, NULL);
	g_return_val_if_fail(runtime_dir != NULL, NULL);

	/* the RPC table refused invalid names; one here is a programming error */
	g_return_val_if_fail(vmsup_name_validate(config->name, "VM", NULL), NULL);
	b.config = config;
	b.machine = config->machine != NULL ? config->machine : "q35";
	if (!vmsup_qemu_check_machine(b.machine, error) ||
	    !vmsup_qemu_argv_check_config(config, error))
		return NULL;
	b.mmio = g_strcmp0(b.machine, "microvm") == 0;
	b.by_fd = qmp_fd >= 0;
	b.qmp_fd = qmp_fd;
	b.next_fd = qmp_fd + 4;
	binary = vmsup_qemu_config_find_binary(config, error);
	if (binary == NULL)
		return NULL;
	b.run = vmsup_qemu_check_path("runtime dir", runtime_dir, error);
	if (b.run == NULL || !vmsup_qemu_check_socket_dir(b.run, error))
		return NULL;
	b.run_esc = vmsup_qemu_escape(b.run);

	b.argv = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(b.argv, g_steal_pointer(&binary));
	vmsup_qemu_argv_add_machine(&b);
	vmsup_qemu_argv_add_control(&b);
	/* the host files' descriptors follow in this order: boot, disk, share, firmware, seed */
	if (!vmsup_qemu_argv_add_boot(&b, error) || !vmsup_qemu_argv_add_disk(&b, error))
		return NULL;
	if (config->agent)
		vmsup_qemu_argv_add_agent(&b);
	if (config->network && !vmsup_qemu_argv_add_network(&b, error))
		return NULL;
	if (((b.by_fd && config->share_fd >= 0) || config->share_dir != NULL) &&
	    !vmsup_qemu_argv_add_share(&b, error))
		return NULL;
	if (b.by_fd)
		vmsup_qemu_argv_add_firmware_and_seed(&b);
	balloon = vmsup_qemu_virtio(b.machine, "virtio-balloon");
	vmsup_qemu_argv_add(b.argv, "-device", balloon);
	if (config->paused)
		vmsup_qemu_argv_add(b.argv, "-S", NULL);

	g_ptr_array_add(b.argv, NULL);
	return (gchar **)g_ptr_array_free(g_steal_pointer(&b.argv), FALSE);
}

gchar *
vmsup_qemu_describe_wait_status(gint wait_status)
{
	if (wait_status < 0)
		return g_strdup("exited");
	if (WIFEXITED(wait_status))
		return g_strdup_printf("exited with status %d", WEXITSTATUS(wait_status));
	if (WIFSIGNALED(wait_status)) {
		gint sig = WTERMSIG(wait_status);
		return g_strdup_printf("was killed by signal %d (%s)", sig, g_strsignal(sig));
	}
	return g_strdup_printf("ended with wait status 0x%x", (guint)wait_status);
}

/* helpers for /proc and files */

static gboolean
vmsup_qemu_pick_free_port(guint16 *out_port, GError **error)
{
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;

	socket = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, error);
	if (socket == NULL)
		return FALSE;
	if (!g_socket_bind(socket, any, FALSE, error))
		return FALSE;
	bound = g_socket_get_local_address(socket, error);
	if (bound == NULL)
		return FALSE;
	*out_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	return TRUE;
}

static gboolean
vmsup_qemu_resolve_forwards(VmsupQemuConfig *config, GError **error)
{
	for (guint i = 0; config->forwards != NULL && i < config->forwards->len; i++) {
		VmsupQemuForward *fwd = &g_array_index(config->forwards, VmsupQemuForward, i);
		if (fwd->host_port != 0)
			continue;
		if (!vmsup_qemu_pick_free_port(&fwd->host_port, error)) {
			g_prefix_error(error, "cannot pick a free host port: ");
			return FALSE;
		}
	}
	return TRUE;
}

/* the argv of a live process, from /proc/<pid>/cmdline */
static gchar **
vmsup_qemu_read_cmdline(GPid pid, GError **error)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/cmdline", pid);
	g_autofree gchar *contents = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	gsize len = 0;

	if (!g_file_get_contents(path, &contents, &len, error))
		return NULL;
	for (gsize i = 0; i < len; i += strlen(contents + i) + 1)
		g_ptr_array_add(argv, g_strdup(contents + i));
	g_ptr_array_add(argv, NULL);
	return (gchar **)g_ptr_array_free(g_steal_pointer(&argv), FALSE);
}

static gboolean
vmsup_qemu_argv_has_pair(gchar **argv, const gchar *option, const gchar *value)
{
	for (guint i = 0; argv[i] != NULL && argv[i + 1] != NULL; i++) {
		if (g_strcmp0(argv[i], option) == 0 && g_strcmp0(argv[i + 1], value) == 0)
			return TRUE;
	}
	return FALSE;
}

static GArray *
vmsup_qemu_forwards_from_argv(gchar **argv)
{
	GArray *forwards = g_array_new(FALSE, FALSE, sizeof(VmsupQemuForward));

	for (guint i = 0; argv[i] != NULL && argv[i + 1] != NULL; i++) {
		g_auto(GStrv) parts = NULL;
		if (g_strcmp0(argv[i], "-netdev") != 0 || !g_str_has_prefix(argv[i + 1], "user,"))
			continue;
		parts = g_strsplit(argv[i + 1], ",", -1);
		for (guint j = 0; parts[j] != NULL; j++) {
			guint host = 0;
			guint guest = 0;
			if (sscanf(parts[j], "hostfwd=tcp:127.0.0.1:%u-:%u", &host, &guest) == 2 &&
			    host <= G_MAXUINT16 && guest <= G_MAXUINT16) {
				VmsupQemuForward fwd = {.host_port = host, .guest_port = guest};
				g_array_append_val(forwards, fwd);
			}
		}
	}
	return forwards;
}

/* /proc/<pid>/stat field 22 is the start time in clock ticks since boot */
static gint64
vmsup_qemu_read_started_at(GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/stat", pid);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) fields = NULL;
	const gchar *after_comm;
	struct timespec now_boot;
	guint64 ticks;
	gint64 started_boot_us;
	gint64 now_boot_us;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return g_get_monotonic_time();
	/* comm may hold spaces and parentheses: fields restart after the last ')' */
	after_comm = strrchr(contents, ')');
	if (after_comm == NULL || after_comm[1] == '\0')
		return g_get_monotonic_time();
	fields = g_strsplit(after_comm + 2, " ", -1);
	if (g_strv_length(fields) < 20)
		return g_get_monotonic_time();
	ticks = g_ascii_strtoull(fields[22 - 3], NULL, 10);
	if (clock_gettime(CLOCK_BOOTTIME, &now_boot) != 0)
		return g_get_monotonic_time();
	started_boot_us = (gint64)(ticks * G_USEC_PER_SEC / (guint64)sysconf(_SC_CLK_TCK));
	now_boot_us = (gint64)now_boot.tv_sec * G_USEC_PER_SEC + now_boot.tv_nsec / 1000;
	return g_get_monotonic_time() - (now_boot_us - started_boot_us);
}

/* the -object argument that names @runtime_dir, as build_argv writes it */
static gchar *
vmsup_qemu_marker(const gchar *runtime_dir)
{
	g_autofree gchar *run = g_canonicalize_filename(runtime_dir, NULL);
	g_autofree gchar *run_esc = vmsup_qemu_escape(run);
	return g_strdup_printf("secret,id=" VMSUP_QEMU_MARKER_ID ",data=%s", run_esc);
}

/* the last lines QEMU wrote to qemu.log, joined for an error message */
static gchar *
vmsup_qemu_process_read_log_tail(VmsupQemuProcess *self)
{
	g_autofree gchar *path = g_build_filename(self->runtime_dir, VMSUP_QEMU_STDERR_LOG, NULL);
	g_autofree gchar *buf = g_malloc0(VMSUP_QEMU_LOG_TAIL_BYTES + 1);
	g_autoptr(GPtrArray) lines = g_ptr_array_new();
	g_auto(GStrv) split = NULL;
	gssize len;
	off_t size;
	gint fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return g_strdup("");
	size = lseek(fd, 0, SEEK_END);
	if (size > VMSUP_QEMU_LOG_TAIL_BYTES)
		lseek(fd, size - VMSUP_QEMU_LOG_TAIL_BYTES, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	len = read(fd, buf, VMSUP_QEMU_LOG_TAIL_BYTES);
	close(fd);
	if (len <= 0)
		return g_strdup("");
	buf[len] = '\0';
	split = g_strsplit(buf, "\n", -1);
	for (guint i = 0; split[i] != NULL; i++) {
		g_strstrip(split[i]);
		if (split[i][0] != '\0')
			g_ptr_array_add(lines, split[i]);
	}
	while (lines->len > VMSUP_QEMU_LOG_TAIL_LINES)
		g_ptr_array_remove_index(lines, 0);
	g_ptr_array_add(lines, NULL);
	return g_strjoinv("; ", (gchar **)lines->pdata);
}

/*
 * A pidfd for the QEMU our pidfile names, checked to be ours through
 * /proc/<pid>/cmdline (the marker naming our runtime dir, or -pidfile <our
 * pidfile> from a QEMU that wrote its own), so a recycled pid is never
 * taken for it. -1 with @error (NOT_FOUND when nothing runs).
 */
static gint
vmsup_qemu_process_open_recorded(VmsupQemuProcess *self,
				 GPid *out_pid,
				 gchar ***out_argv,
				 GError **error)
{
	g_autofree gchar *pidfile = g_build_filename(self->runtime_dir, VMSUP_QEMU_PIDFILE, NULL);
	g_autofree gchar *marker = vmsup_qemu_marker(self->runtime_dir);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) argv = NULL;
	g_autoptr(GError) error_local = NULL;
	struct pollfd pfd = {.events = POLLIN};
	gint64 pid = 0;
	gint pidfd;

	if (!g_file_get_contents(pidfile, &contents, NULL, &error_local)) {
		if (g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_NOT_FOUND,
				    "QEMU for '%s' is not running: no pidfile '%s'",
				    self->name,
				    pidfile);
		} else {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    "cannot read pidfile of '%s': %s",
				    self->name,
				    error_local->message);
		}
		return -1;
	}
	if (!g_ascii_string_to_signed(g_strstrip(contents), 10, 1, G_MAXINT, &pid, NULL)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    "stale pidfile '%s' of '%s': it holds no pid",
			    pidfile,
			    self->name);
		return -1;
	}
	pidfd = (gint)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pidfd < 0) {
		gint saved = errno;
		if (saved == ESRCH) {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_NOT_FOUND,
				    "QEMU for '%s' is gone: pid %d in pidfile '%s' is stale",
				    self->name,
				    (gint)pid,
				    pidfile);
		} else {
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    "cannot watch pid %d of '%s': pidfd_open: %s",
				    (gint)pid,
				    self->name,
				    g_strerror(saved));
		}
		return -1;
	}
	argv = vmsup_qemu_read_cmdline((GPid)pid, NULL);
	if (argv == NULL || (!vmsup_qemu_argv_has_pair(argv, "-pidfile", pidfile) &&
			     !vmsup_qemu_argv_has_pair(argv, "-object", marker))) {
		close(pidfd);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    "stale pidfile '%s': pid %d is not the QEMU of '%s'",
			    pidfile,
			    (gint)pid,
			    self->name);
		return -1;
	}
	/* a pidfd still unreadable now names the process whose cmdline we just read */
	pfd.fd = pidfd;
	if (poll(&pfd, 1, 0) != 0) {
		close(pidfd);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_NOT_FOUND,
			    "QEMU for '%s' (pid %d) has just exited",
			    self->name,
			    (gint)pid);
		return -1;
	}
	*out_pid = (GPid)pid;
	if (out_argv != NULL)
		*out_argv = g_steal_pointer(&argv);
	return pidfd;
}

static gboolean
vmsup_qemu_process_prepare_runtime_dir(VmsupQemuProcess *self, GError **error)
{
	const gchar *stale[] = {VMSUP_QEMU_QMP_SOCKET, VMSUP_QEMU_QGA_SOCKET, VMSUP_QEMU_PIDFILE};
	g_autoptr(GError) error_local = NULL;
	GPid pid = 0;
	gint pidfd;

	if (g_mkdir_with_parents(self->runtime_dir, 0700) != 0 ||
	    g_chmod(self->runtime_dir, 0700)) {
		gint saved = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    "cannot create runtime dir '%s': %s",
			    self->runtime_dir,
			    g_strerror(saved));
		return FALSE;
	}
	/* never pull the sockets from under a QEMU that is still running */
	pidfd = vmsup_qemu_process_open_recorded(self, &pid, NULL, &error_local);
	if (pidfd >= 0) {
		close(pidfd);
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    "QEMU for '%s' is still running (pid %d); adopt or stop it first",
			    self->name,
			    pid);
		return FALSE;
	}
	for (guint i = 0; i < G_N_ELEMENTS(stale); i++) {
		g_autofree gchar *path = g_build_filename(self->runtime_dir, stale[i], NULL);
		if (g_unlink(path) != 0 && errno != ENOENT) {
			gint saved = errno;
			g_set_error(error,
				    VMSUP_ERROR,
				    VMSUP_ERROR_FAILED_PRECONDITION,
				    "cannot remove stale '%s': %s",
				    path,
				    g_strerror(saved));
			return FALSE;
		}
	}
	return TRUE;
}

static GSocket *
vmsup_qemu_listen(const gchar *path, GError **error)
{
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GSocketAddress) address = NULL;

	socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, error);
	if (socket == NULL)
		return NULL;
	address = g_unix_socket_address_new(path);
	if (!g_socket_bind(socket, address, FALSE, error) || !g_socket_listen(socket, error)) {
		g_prefix_error(error, "cannot listen on '%s': ", path);
		return NULL;
	}
	return g_steal_pointer(&socket);
}

static GSocket *
vmsup_qemu_listen_in(const gchar *dir, const gchar *name, GError **error)
{
	g_autofree gchar *path = g_build_filename(dir, name, NULL);
	return vmsup_qemu_listen(path, error);
}

static void
vmsup_qemu_child_setup(gpointer user_data)
{
	const VmsupRunAs *run_as = user_data;
	sigset_t none;

	/* a session of its own: a terminal's ^C or the daemon's death never reaches QEMU */
	setsid();
	/* a blocked or ignored signal would survive exec and deafen QEMU to stop requests */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	/* stderr is qemu.log by now, so a failure shows in the spawn error */
	if (!vmsup_run_as_drop_in_child(run_as))
		_exit(126);
}

/* a descriptor above every number handed to QEMU, so the launcher never has to shuffle */
static gint
vmsup_qemu_dup_above(gint fd, gint above, GError **error)
{
	gint copy = fcntl(fd, F_DUPFD_CLOEXEC, above + 1);
	if (copy < 0) {
		gint saved = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INTERNAL,
			    "cannot duplicate a descriptor for QEMU: %s",
			    g_strerror(saved));
	}
	return copy;
}

/* the config's files, numbered from @first on in the order build_argv gives out */
static gboolean
vmsup_qemu_launcher_take_files(GSubprocessLauncher *launcher,
			       const VmsupQemuConfig *config,
			       gint first,
			       GError **error)
{
	g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(gint));
	gint top;

	if (config->kernel_fd >= 0)
		g_array_append_val(fds, config->kernel_fd);
	if (config->initrd_fd >= 0)
		g_array_append_val(fds, config->initrd_fd);
	for (guint i = 0; config->disk_chain != NULL && i < config->disk_chain->len; i++) {
		VmsupQemuDiskNode *node = g_ptr_array_index(config->disk_chain, i);
		g_array_append_val(fds, node->fd);
	}
	if (config->share_fd >= 0)
		g_array_append_val(fds, config->share_fd);
	if (config->firmware_code_fd >= 0 && config->firmware_vars_fd >= 0) {
		g_array_append_val(fds, config->firmware_code_fd);
		g_array_append_val(fds, config->firmware_vars_fd);
	}
	if (config->seed_fd >= 0)
		g_array_append_val(fds, config->seed_fd);
	top = first + (gint)fds->len;
	for (guint i = 0; i < fds->len; i++) {
		gint copy = vmsup_qemu_dup_above(g_array_index(fds, gint, i), top, error);
		if (copy < 0)
			return FALSE;
		g_subprocess_launcher_take_fd(launcher, copy, first + (gint)i);
	}
	return TRUE;
}

static gboolean
vmsup_qemu_process_write_pidfile(VmsupQemuProcess *self, GError **error)
{
	g_autofree gchar *path = g_build_filename(self->runtime_dir, VMSUP_QEMU_PIDFILE, NULL);
	g_autofree gchar *contents = g_strdup_printf("%d\n", (gint)self->pid);

	if (!g_file_set_contents_full(path,
				      contents,
				      -1,
				      G_FILE_SET_CONTENTS_CONSISTENT,
				      0600,
				      error)) {
		g_prefix_error(error, "cannot write the pidfile of '%s': ", self->name);
		return FALSE;
	}
	return TRUE;
}

/* exit, signals, stop */

static void
vmsup_qemu_process_signal(VmsupQemuProcess *self, gint signum)
{
	if (!self->running)
		return;
	if (signum == SIGKILL)
		self->killed = TRUE;
	if (self->subprocess != NULL) {
		g_subprocess_send_signal(self->subprocess, signum);
		return;
	}
	/* adopted: the pidfd, unlike the pid, cannot name a recycled process */
	if (self->pidfd >= 0 && syscall(SYS_pidfd_send_signal, self->pidfd, signum, NULL, 0) != 0)
		g_debug("cannot signal QEMU of '%s': %s", self->name, g_strerror(errno));
}

static void
vmsup_qemu_process_clear_start(VmsupQemuProcess *self)
{
	g_clear_handle_id(&self->start_timeout_source, g_source_remove);
	g_clear_handle_id(&self->start_grace_source, g_source_remove);
	if (self->start_cancel_source != NULL) {
		g_source_destroy(self->start_cancel_source);
		g_clear_pointer(&self->start_cancel_source, g_source_unref);
	}
	g_clear_object(&self->start_cancellable);
	g_clear_error(&self->start_error);
}

static GError *
vmsup_qemu_process_start_exit_error(VmsupQemuProcess *self, gint wait_status)
{
	g_autofree gchar *tail = vmsup_qemu_process_read_log_tail(self);
	g_autofree gchar *status = vmsup_qemu_describe_wait_status(wait_status);
	const gchar *sep = tail[0] != '\0' ? ": " : "";

	if (self->start_error != NULL &&
	    g_error_matches(self->start_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return g_error_copy(self->start_error);
	if (self->start_error != NULL && self->killed) {
		return g_error_new(self->start_error->domain,
				   self->start_error->code,
				   "%s%s%s",
				   self->start_error->message,
				   sep,
				   tail);
	}
	if (self->subprocess == NULL) {
		return g_error_new(VMSUP_ERROR,
				   VMSUP_ERROR_NOT_FOUND,
				   "QEMU for '%s' exited while it was being adopted",
				   self->name);
	}
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   "QEMU for '%s' %s before QMP was ready%s%s",
			   self->name,
			   status,
			   sep,
			   tail);
}

/* QEMU no longer writes it, so no longer removes it: the pidfile is the daemon's */
static void
vmsup_qemu_process_remove_pidfile(VmsupQemuProcess *self)
{
	g_autofree gchar *path = g_build_filename(self->runtime_dir, VMSUP_QEMU_PIDFILE, NULL);
	g_autofree gchar *contents = NULL;
	gint64 pid = 0;

	if (self->pid > 0 && g_file_get_contents(path, &contents, NULL, NULL) &&
	    g_ascii_string_to_signed(g_strstrip(contents), 10, 1, G_MAXINT, &pid, NULL) &&
	    pid == self->pid)
		g_unlink(path);
}

static void
vmsup_qemu_process_exited(VmsupQemuProcess *self, gint wait_status)
{
	g_autoptr(VmsupQemuProcess) keep = NULL;
	g_autoptr(GTask) start_task = NULL;
	g_autoptr(GPtrArray) stop_tasks = NULL;
	g_autoptr(GError) start_error = NULL;

	if (!self->running)
		return;
	keep = g_object_ref(self);
	self->running = FALSE;
	self->wait_status = wait_status;
	self->stop_stage = VMSUP_QEMU_STOP_NONE;
	g_clear_handle_id(&self->pidfd_source, g_source_remove);
	g_clear_handle_id(&self->stop_source, g_source_remove);
	if (self->pidfd >= 0) {
		close(self->pidfd);
		self->pidfd = -1;
	}
	if (self->qmp != NULL)
		vmsup_qmp_client_close(self->qmp);
	vmsup_qemu_process_remove_pidfile(self);

	start_task = g_steal_pointer(&self->start_task);
	if (start_task != NULL) {
		if (self->start_cancellable != NULL)
			g_cancellable_cancel(self->start_cancellable);
		start_error = vmsup_qemu_process_start_exit_error(self, wait_status);
		vmsup_qemu_process_clear_start(self);
		g_clear_object(&self->qmp);
	}
	stop_tasks = g_steal_pointer(&self->stop_tasks);
	self->stop_tasks = g_ptr_array_new_with_free_func(g_object_unref);

	g_signal_emit(self, signals[SIGNAL_EXITED], 0, wait_status);
	if (start_task != NULL)
		g_task_return_error(start_task, g_steal_pointer(&start_error));
	for (guint i = 0; i < stop_tasks->len; i++)
		g_task_return_boolean(g_ptr_array_index(stop_tasks, i), TRUE);
}

static void
vmsup_qemu_process_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GWeakRef *weak = user_data;
	g_autoptr(VmsupQemuProcess) self = g_weak_ref_get(weak);
	g_autoptr(GError) error = NULL;
	gboolean ok = g_subprocess_wait_finish(G_SUBPROCESS(source), res, &error);

	g_weak_ref_clear(weak);
	g_free(weak);
	if (!ok || self == NULL || self->subprocess != G_SUBPROCESS(source))
		return;
	vmsup_qemu_process_exited(self, g_subprocess_get_status(G_SUBPROCESS(source)));
}

static gboolean
vmsup_qemu_process_pidfd_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	VmsupQemuProcess *self = user_data;
	self->pidfd_source = 0;
	vmsup_qemu_process_exited(self, -1);
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_qemu_process_stop_kill_cb(gpointer user_data)
{
	VmsupQemuProcess *self = user_data;
	self->stop_source = 0;
	self->stop_stage = VMSUP_QEMU_STOP_KILL;
	g_debug("QEMU for '%s' did not quit; killing it", self->name);
	vmsup_qemu_process_signal(self, SIGKILL);
	return G_SOURCE_REMOVE;
}

static void
vmsup_qemu_process_quit_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupQemuProcess) self = user_data;
	g_autoptr(JsonNode) result = NULL;
	g_autoptr(GError) error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result != NULL || self->stop_stage != VMSUP_QEMU_STOP_QUIT)
		return;
	g_debug("quit for '%s' failed: %s; sending SIGTERM", self->name, error->message);
	vmsup_qemu_process_signal(self, SIGTERM);
}

static void
vmsup_qemu_process_stop_quit(VmsupQemuProcess *self)
{
	self->stop_stage = VMSUP_QEMU_STOP_QUIT;
	if (self->qmp != NULL && vmsup_qmp_client_is_ready(self->qmp)) {
		vmsup_qmp_client_execute_async(self->qmp,
					       "quit",
					       NULL,
					       NULL,
					       vmsup_qemu_process_quit_cb,
					       g_object_ref(self));
	} else {
		/* QEMU treats SIGTERM like quit */
		vmsup_qemu_process_signal(self, SIGTERM);
	}
	self->stop_source =
	    g_timeout_add(VMSUP_QEMU_QUIT_GRACE_MS, vmsup_qemu_process_stop_kill_cb, self);
}

static gboolean
vmsup_qemu_process_stop_quit_cb(gpointer user_data)
{
	VmsupQemuProcess *self = user_data;
	self->stop_source = 0;
	g_debug("guest of '%s' did not power off in time; sending quit", self->name);
	vmsup_qemu_process_stop_quit(self);
	return G_SOURCE_REMOVE;
}

static void
vmsup_qemu_process_powerdown_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupQemuProcess) self = user_data;
	g_autoptr(JsonNode) result = NULL;
	g_autoptr(GError) error = NULL;

	result = vmsup_qmp_client_execute_finish(VMSUP_QMP_CLIENT(source), res, &error);
	if (result != NULL || self->stop_stage != VMSUP_QEMU_STOP_POWERDOWN)
		return;
	g_debug("system_powerdown for '%s' failed: %s", self->name, error->message);
	g_clear_handle_id(&self->stop_source, g_source_remove);
	vmsup_qemu_process_stop_quit(self);
}

/* spawn and adopt */

static gboolean
vmsup_qemu_process_start_grace_cb(gpointer user_data)
{
	VmsupQemuProcess *self = user_data;
	self->start_grace_source = 0;
	vmsup_qemu_process_signal(self, SIGKILL);
	return G_SOURCE_REMOVE;
}

/*
 * Takes @error. A spawned QEMU is killed (after a grace period when it is
 * probably exiting on its own) and the start fails once it is reaped, so a
 * failed spawn never leaves a process. An adopted one is left running and
 * still watched.
 */
static void
vmsup_qemu_process_start_failed(VmsupQemuProcess *self, GError *error, gboolean grace)
{
	g_autoptr(GTask) task = NULL;

	if (self->start_error == NULL)
		self->start_error = error;
	else
		g_error_free(error);
	g_clear_handle_id(&self->start_timeout_source, g_source_remove);
	if (self->start_cancellable != NULL)
		g_cancellable_cancel(self->start_cancellable);

	if (self->subprocess != NULL) {
		if (grace && !self->killed) {
			if (self->start_grace_source == 0) {
				self->start_grace_source =
				    g_timeout_add(VMSUP_QEMU_EXIT_GRACE_MS,
						  vmsup_qemu_process_start_grace_cb,
						  self);
			}
			return;
		}
		g_clear_handle_id(&self->start_grace_source, g_source_remove);
		vmsup_qemu_process_signal(self, SIGKILL);
		return;
	}

	task = g_steal_pointer(&self->start_task);
	error = g_steal_pointer(&self->start_error);
	vmsup_qemu_process_clear_start(self);
	if (self->qmp != NULL)
		vmsup_qmp_client_close(self->qmp);
	g_clear_object(&self->qmp);
	g_task_return_error(task, error);
}

static gboolean
vmsup_qemu_process_start_timeout_cb(gpointer user_data)
{
	VmsupQemuProcess *self = user_data;

	self->start_timeout_source = 0;
	vmsup_qemu_process_start_failed(
	    self,
	    g_error_new(VMSUP_ERROR,
			VMSUP_ERROR_TIMEOUT,
			"QEMU for '%s' did not answer on QMP within %d s",
			self->name,
			VMSUP_QEMU_READY_TIMEOUT_MS / 1000),
	    FALSE);
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_qemu_process_start_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	VmsupQemuProcess *self = user_data;

	g_clear_pointer(&self->start_cancel_source, g_source_unref);
	vmsup_qemu_process_start_failed(
	    self,
	    g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled"),
	    FALSE);
	return G_SOURCE_REMOVE;
}

static void
vmsup_qemu_process_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupQemuProcess *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GTask) done = NULL;

	if (!vmsup_qmp_client_connect_finish(VMSUP_QMP_CLIENT(source), res, &error)) {
		if (self->start_task != task || self->start_error != NULL)
			return;
		g_prefix_error(&error, "cannot connect QMP of '%s': ", self->name);
		vmsup_qemu_process_start_failed(self, g_steal_pointer(&error), TRUE);
		return;
	}
	if (self->start_task != task || self->start_error != NULL)
		return;
	done = g_steal_pointer(&self->start_task);
	vmsup_qemu_process_clear_start(self);
	g_task_return_boolean(done, TRUE);
}

/* the common tail of spawn and adopt: connect QMP, bounded and cancellable */
static void
vmsup_qemu_process_start_qmp(VmsupQemuProcess *self, GTask *task /* owned */)
{
	GCancellable *cancellable = g_task_get_cancellable(task);
	g_autofree gchar *qmp_path =
	    g_build_filename(self->runtime_dir, VMSUP_QEMU_QMP_SOCKET, NULL);

	self->start_task = g_object_ref(task);
	self->start_cancellable = g_cancellable_new();
	self->start_timeout_source =
	    g_timeout_add(VMSUP_QEMU_READY_TIMEOUT_MS, vmsup_qemu_process_start_timeout_cb, self);
	if (cancellable != NULL) {
		self->start_cancel_source = g_cancellable_source_new(cancellable);
		g_source_set_callback(self->start_cancel_source,
				      G_SOURCE_FUNC(vmsup_qemu_process_start_cancelled_cb),
				      self,
				      NULL);
		g_source_attach(self->start_cancel_source, g_main_context_get_thread_default());
	}
	g_clear_object(&self->qmp);
	self->qmp = vmsup_qmp_client_new(self->name);
	vmsup_qmp_client_connect_async(self->qmp,
				       qmp_path,
				       self->start_cancellable,
				       vmsup_qemu_process_connect_cb,
				       task);
}

void
vmsup_qemu_process_spawn_async(VmsupQemuProcess *self,
			       const VmsupQemuConfig *config,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupQemuConfig) resolved = NULL;
	g_autoptr(GSocket) listener = NULL;
	g_autoptr(GSocket) qga_listener = NULL;
	g_autoptr(GSocket) console_listener = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;
	g_autofree gchar *qmp_path = NULL;
	g_autofree gchar *log_path = NULL;
	g_autofree gchar *console_path = NULL;
	const gchar *identifier;
	GWeakRef *weak;
	gint listen_fd;
	gint log_fd;
	gint console_fd;
	gint top;

	g_return_if_fail(VMSUP_IS_QEMU_PROCESS(self));
	g_return_if_fail(config != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qemu_process_spawn_async);
	if (self->running || self->start_task != NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_BUSY,
					"QEMU for '%s' is already running (pid %d)",
					self->name,
					self->pid);
		return;
	}

	resolved = vmsup_qemu_config_copy(config);
	if (!vmsup_qemu_resolve_forwards(resolved, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	argv = vmsup_qemu_config_build_argv(resolved, self->runtime_dir, VMSUP_QEMU_QMP_FD, &error);
	if (argv == NULL || !vmsup_qemu_process_prepare_runtime_dir(self, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}

	qmp_path = g_build_filename(self->runtime_dir, VMSUP_QEMU_QMP_SOCKET, NULL);
	listener = vmsup_qemu_listen(qmp_path, &error);
	if (listener == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	console_listener =
	    vmsup_qemu_listen_in(self->runtime_dir, VMSUP_QEMU_CONSOLE_SOCKET, &error);
	if (console_listener == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (resolved->agent) {
		g_autofree gchar *qga_path =
		    g_build_filename(self->runtime_dir, VMSUP_QEMU_QGA_SOCKET, NULL);
		qga_listener = vmsup_qemu_listen(qga_path, &error);
		if (qga_listener == NULL) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
	}
	log_path = g_build_filename(self->runtime_dir, VMSUP_QEMU_STDERR_LOG, NULL);
	console_path = g_build_filename(self->runtime_dir, VMSUP_QEMU_CONSOLE_LOG, NULL);
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
	console_fd = open(console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
	if (log_fd < 0 || console_fd < 0) {
		gint saved = errno;
		if (log_fd >= 0)
			close(log_fd);
		if (console_fd >= 0)
			close(console_fd);
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_FAILED_PRECONDITION,
					"cannot create '%s': %s",
					log_fd < 0 ? log_path : console_path,
					g_strerror(saved));
		return;
	}

	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
	g_subprocess_launcher_take_stdout_fd(launcher, fcntl(log_fd, F_DUPFD_CLOEXEC, 0));
	g_subprocess_launcher_take_stderr_fd(launcher, log_fd);
	/* every source above the target numbers, so the launcher never has to shuffle them */
	top = VMSUP_QEMU_QMP_FD + 4 + 64;
	listen_fd = vmsup_qemu_dup_above(g_socket_get_fd(listener), top, &error);
	if (listen_fd >= 0)
		g_subprocess_launcher_take_fd(launcher, listen_fd, VMSUP_QEMU_QMP_FD);
	if (listen_fd >= 0 && qga_listener != NULL) {
		gint qga_fd = vmsup_qemu_dup_above(g_socket_get_fd(qga_listener), top, &error);
		if (qga_fd >= 0)
			g_subprocess_launcher_take_fd(launcher, qga_fd, VMSUP_QEMU_QMP_FD + 1);
		else
			listen_fd = -1;
	}
	if (listen_fd >= 0) {
		gint copy = vmsup_qemu_dup_above(console_fd, top, &error);
		if (copy >= 0)
			g_subprocess_launcher_take_fd(launcher, copy, VMSUP_QEMU_QMP_FD + 2);
		else
			listen_fd = -1;
	}
	close(console_fd);
	if (listen_fd >= 0) {
		gint copy = vmsup_qemu_dup_above(g_socket_get_fd(console_listener), top, &error);
		if (copy >= 0)
			g_subprocess_launcher_take_fd(launcher, copy, VMSUP_QEMU_QMP_FD + 3);
		else
			listen_fd = -1;
	}
	if (listen_fd < 0 ||
	    !vmsup_qemu_launcher_take_files(launcher, resolved, VMSUP_QEMU_QMP_FD + 4, &error)) {
		g_subprocess_launcher_close(launcher);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_subprocess_launcher_set_child_setup(launcher,
					      vmsup_qemu_child_setup,
					      vmsup_run_as_copy(resolved->run_as),
					      (GDestroyNotify)vmsup_run_as_free);
	g_clear_object(&self->subprocess);
	self->subprocess =
	    g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv, &error);
	/* only QEMU may hold the listening sockets, so its death resets our connections */
	g_subprocess_launcher_close(launcher);
	g_socket_close(listener, NULL);
	if (qga_listener != NULL)
		g_socket_close(qga_listener, NULL);
	g_socket_close(console_listener, NULL);
	if (self->subprocess == NULL) {
		g_prefix_error(&error, "cannot start QEMU for '%s': ", self->name);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}

	/* no identifier: the process is already gone, and the wait below reports it */
	identifier = g_subprocess_get_identifier(self->subprocess);
	self->pid = identifier != NULL ? (GPid)g_ascii_strtoll(identifier, NULL, 10) : 0;
	self->running = TRUE;
	self->killed = FALSE;
	self->wait_status = -1;
	self->started_at = g_get_monotonic_time();
	if (self->pid > 0 && !vmsup_qemu_process_write_pidfile(self, &error))
		g_warning("%s", error->message);
	g_clear_pointer(&self->forwards, g_array_unref);
	self->forwards = resolved->forwards != NULL
			     ? g_array_ref(resolved->forwards)
			     : g_array_new(FALSE, FALSE, sizeof(VmsupQemuForward));

	weak = g_new0(GWeakRef, 1);
	g_weak_ref_init(weak, self);
	g_subprocess_wait_async(self->subprocess,
				self->cancellable,
				vmsup_qemu_process_wait_cb,
				weak);

	vmsup_qemu_process_start_qmp(self, g_steal_pointer(&task));
}

gboolean
vmsup_qemu_process_spawn_finish(VmsupQemuProcess *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

void
vmsup_qemu_process_adopt_async(VmsupQemuProcess *self,
			       GCancellable *cancellable,
			       GAsyncReadyCallback callback,
			       gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;
	GPid pid = 0;
	gint pidfd;

	g_return_if_fail(VMSUP_IS_QEMU_PROCESS(self));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qemu_process_adopt_async);
	if (self->running || self->start_task != NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_BUSY,
					"QEMU for '%s' is already running (pid %d)",
					self->name,
					self->pid);
		return;
	}
	pidfd = vmsup_qemu_process_open_recorded(self, &pid, &argv, &error);
	if (pidfd < 0) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}

	g_clear_object(&self->subprocess);
	self->pid = pid;
	self->pidfd = pidfd;
	self->running = TRUE;
	self->killed = FALSE;
	self->wait_status = -1;
	self->started_at = vmsup_qemu_read_started_at(pid);
	g_clear_pointer(&self->forwards, g_array_unref);
	self->forwards = vmsup_qemu_forwards_from_argv(argv);
	self->pidfd_source = g_unix_fd_add(pidfd, G_IO_IN, vmsup_qemu_process_pidfd_cb, self);

	vmsup_qemu_process_start_qmp(self, g_steal_pointer(&task));
}

gboolean
vmsup_qemu_process_adopt_finish(VmsupQemuProcess *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
vmsup_qemu_process_reconnected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	VmsupQemuProcess *self = g_task_get_source_object(task);
	VmsupQmpClient *qmp = VMSUP_QMP_CLIENT(source);
	GError *error = NULL;

	if (!vmsup_qmp_client_connect_finish(qmp, res, &error)) {
		vmsup_qmp_client_close(qmp);
		g_task_return_error(task, error);
		return;
	}
	if (!self->running || self->start_task != NULL) {
		vmsup_qmp_client_close(qmp);
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_BUSY,
					"QEMU for '%s' is not running any more",
					self->name);
		return;
	}
	if (self->qmp != NULL)
		vmsup_qmp_client_close(self->qmp);
	g_set_object(&self->qmp, qmp);
	g_task_return_boolean(task, TRUE);
}

void
vmsup_qemu_process_reconnect_qmp_async(VmsupQemuProcess *self,
				       GCancellable *cancellable,
				       GAsyncReadyCallback callback,
				       gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupQmpClient) qmp = NULL;
	g_autofree gchar *qmp_path = NULL;

	g_return_if_fail(VMSUP_IS_QEMU_PROCESS(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qemu_process_reconnect_qmp_async);
	if (!self->running || self->start_task != NULL) {
		g_task_return_new_error(task,
					VMSUP_ERROR,
					VMSUP_ERROR_BUSY,
					"QEMU for '%s' is not running, or still starting",
					self->name);
		return;
	}
	qmp_path = g_build_filename(self->runtime_dir, VMSUP_QEMU_QMP_SOCKET, NULL);
	qmp = vmsup_qmp_client_new(self->name);
	vmsup_qmp_client_connect_async(qmp,
				       qmp_path,
				       cancellable,
				       vmsup_qemu_process_reconnected_cb,
				       g_steal_pointer(&task));
}

gboolean
vmsup_qemu_process_reconnect_qmp_finish(VmsupQemuProcess *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

void
vmsup_qemu_process_stop_async(VmsupQemuProcess *self,
			      gboolean force,
			      guint timeout_ms,
			      GCancellable *cancellable,
			      GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(VMSUP_IS_QEMU_PROCESS(self));

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_qemu_process_stop_async);
	if (!self->running) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	g_ptr_array_add(self->stop_tasks, g_steal_pointer(&task));
	if (force) {
		g_clear_handle_id(&self->stop_source, g_source_remove);
		self->stop_stage = VMSUP_QEMU_STOP_KILL;
		vmsup_qemu_process_signal(self, SIGKILL);
		return;
	}
	/* a stop under way already: join it */
	if (self->stop_stage != VMSUP_QEMU_STOP_NONE)
		return;
	if (timeout_ms == 0 || self->qmp == NULL || !vmsup_qmp_client_is_ready(self->qmp)) {
		vmsup_qemu_process_stop_quit(self);
		return;
	}
	self->stop_stage = VMSUP_QEMU_STOP_POWERDOWN;
	vmsup_qmp_client_execute_async(self->qmp,
				       "system_powerdown",
				       NULL,
				       NULL,
				       vmsup_qemu_process_powerdown_cb,
				       g_object_ref(self));
	self->stop_source = g_timeout_add(timeout_ms, vmsup_qemu_process_stop_quit_cb, self);
}

gboolean
vmsup_qemu_process_stop_finish(VmsupQemuProcess *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

void
vmsup_qemu_process_kill(VmsupQemuProcess *self)
{
	g_return_if_fail(VMSUP_IS_QEMU_PROCESS(self));
	vmsup_qemu_process_signal(self, SIGKILL);
}

GPid
vmsup_qemu_process_get_pid(VmsupQemuProcess *self)
{
	g_return_val_if_fail(VMSUP_IS_QEMU_PROCESS(self), 0);
	return self->pid;
}

gboolean
vmsup_qemu_process_is_running(VmsupQemuProcess *self)
{
	g_return_val_if_fail(VMSUP_IS_QEMU_PROCESS(self), FALSE);
	return self->running;
}

VmsupQmpClient *
vmsup_qemu_process_get_qmp(VmsupQemuProcess *self)
{
	g_return_val_if_fail(VMSUP_IS_QEMU_PROCESS(self), NULL);
	if (self->start_task != NULL)
		return NULL;
	return self->qmp;
}

const gchar *
vmsup_qemu_process_get_runtime_dir(VmsupQemuProcess *self)
{
	g_return_val_if_fail(VMSUP_IS_QEMU_PROCESS(self), NULL);
	return self->runtime_dir;
}

gint64
vmsup_qemu_process_get_started_at(VmsupQemuProcess *self)
{
	g_return_val_if_fail(VMSUP_IS_QEMU_PROCESS(self), 0);
	return self->started_at;
}

gint
vmsup_qemu_process_get_wait_status(VmsupQemuProcess *self)
{
	g_return_val_if_fail(VMSUP_IS_QEMU_PROCESS(self), -1);
	return self->running ? -1 : self->wait_status;
}

GArray *
vmsup_qemu_process_get_forwards(VmsupQemuProcess *self)
{
	g_return_val_if_fail(VMSUP_IS_QEMU_PROCESS(self), NULL);
	return self->forwards;
}

static void
vmsup_qemu_process_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	VmsupQemuProcess *self = VMSUP_QEMU_PROCESS(object);

	switch (prop_id) {
	case PROP_NAME:
		g_value_set_string(value, self->name);
		break;
	case PROP_RUNTIME_DIR:
		g_value_set_string(value, self->runtime_dir);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_qemu_process_set_property(GObject *object,
				guint prop_id,
				const GValue *value,
				GParamSpec *pspec)
{
	VmsupQemuProcess *self = VMSUP_QEMU_PROCESS(object);

	switch (prop_id) {
	case PROP_NAME:
		g_free(self->name);
		self->name = g_value_dup_string(value);
		break;
	case PROP_RUNTIME_DIR:
		/* absolute: adoption compares it with QEMU's own argv */
		g_free(self->runtime_dir);
		self->runtime_dir = g_value_get_string(value) != NULL
					? g_canonicalize_filename(g_value_get_string(value), NULL)
					: NULL;
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
vmsup_qemu_process_dispose(GObject *object)
{
	VmsupQemuProcess *self = VMSUP_QEMU_PROCESS(object);

	/* QEMU itself keeps running: see the header */
	g_cancellable_cancel(self->cancellable);
	g_clear_handle_id(&self->pidfd_source, g_source_remove);
	g_clear_handle_id(&self->stop_source, g_source_remove);
	vmsup_qemu_process_clear_start(self);
	if (self->qmp != NULL)
		vmsup_qmp_client_close(self->qmp);
	g_clear_object(&self->qmp);
	g_clear_object(&self->subprocess);

	G_OBJECT_CLASS(vmsup_qemu_process_parent_class)->dispose(object);
}

static void
vmsup_qemu_process_finalize(GObject *object)
{
	VmsupQemuProcess *self = VMSUP_QEMU_PROCESS(object);

	if (self->pidfd >= 0)
		close(self->pidfd);
	g_clear_pointer(&self->forwards, g_array_unref);
	g_clear_pointer(&self->stop_tasks, g_ptr_array_unref);
	g_clear_object(&self->start_task);
	g_clear_object(&self->cancellable);
	g_free(self->name);
	g_free(self->runtime_dir);

	G_OBJECT_CLASS(vmsup_qemu_process_parent_class)->finalize(object);
}

static void
vmsup_qemu_process_class_init(VmsupQemuProcessClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->get_property = vmsup_qemu_process_get_property;
	object_class->set_property = vmsup_qemu_process_set_property;
	object_class->dispose = vmsup_qemu_process_dispose;
	object_class->finalize = vmsup_qemu_process_finalize;

	props[PROP_NAME] = g_param_spec_string("name",
					       NULL,
					       NULL,
					       NULL,
					       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
						   G_PARAM_STATIC_STRINGS);
	props[PROP_RUNTIME_DIR] = g_param_spec_string("runtime-dir",
						      NULL,
						      NULL,
						      NULL,
						      G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
							  G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);

	signals[SIGNAL_EXITED] = g_signal_new("exited",
					      G_TYPE_FROM_CLASS(klass),
					      G_SIGNAL_RUN_LAST,
					      0,
					      NULL,
					      NULL,
					      g_cclosure_marshal_VOID__INT,
					      G_TYPE_NONE,
					      1,
					      G_TYPE_INT);
}

static void
vmsup_qemu_process_init(VmsupQemuProcess *self)
{
	self->cancellable = g_cancellable_new();
	self->pidfd = -1;
	self->wait_status = -1;
	self->stop_tasks = g_ptr_array_new_with_free_func(g_object_unref);
}

VmsupQemuProcess *
vmsup_qemu_process_new(const gchar *name, const gchar *runtime_dir)
{
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(runtime_dir != NULL, NULL);
	return g_object_new(VMSUP_TYPE_QEMU_PROCESS,
			    "name",
			    name,
			    "runtime-dir",
			    runtime_dir,
			    NULL);
}
