/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fan-out of a VM's serial console to its viewers. Everything is
 * non-blocking on the main loop: the guest's output is read as it comes and
 * written to each viewer at once, what a viewer does not take waits in its
 * own bounded buffer, and viewer input waits in one bounded buffer for the
 * guest (while that is full, no viewer is read). The last few KiB of output
 * are kept so that a viewer attaching late sees where the guest is (its
 * prompt, the last boot lines): seeded from the tail of the console log when
 * the daemon connects, then fed with what it reads.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmsup-error.h"
#include "vmsup-vm-console.h"

/* one read from the guest or a viewer */
#define VMSUP_VM_CONSOLE_CHUNK (16 * 1024)
/* viewer input not yet taken by the guest; past it, viewers are not read */
#define VMSUP_VM_CONSOLE_GUEST_MAX (64 * 1024)

typedef struct {
	VmsupVmConsole *console; /* unowned: it owns us */
	gint fd;                 /* owned: the daemon's end */
	guint source_id;
	GIOCondition watching;
	GByteArray *out; /* owned: guest output the viewer has not taken yet */
	gboolean input_ended;
} VmsupVmConsoleViewer;

struct _VmsupVmConsole {
	GObject parent_instance;
	gchar *vm_name;     /* owned */
	gchar *socket_path; /* owned */
	gchar *log_path;    /* owned */
	gint guest_fd;      /* owned; -1 while not connected */
	guint guest_source_id;
	GIOCondition guest_watching;
	GByteArray *to_guest; /* owned: viewer input not yet written */
	GPtrArray *viewers;   /* owned: of VmsupVmConsoleViewer */
	GByteArray *history;  /* owned: the latest output, at most VMSUP_VM_CONSOLE_HISTORY */
	gboolean history_cut; /* it no longer starts where the console log starts */
	gboolean closed;
};

G_DEFINE_FINAL_TYPE(VmsupVmConsole, vmsup_vm_console, G_TYPE_OBJECT)

static void
vmsup_vm_console_update(VmsupVmConsole *self);

/* a source on @fd for @cond, replaced only when the wanted condition changes */
static void
vmsup_vm_console_watch(guint *source_id,
		       GIOCondition *watching,
		       gint fd,
		       GIOCondition cond,
		       GUnixFDSourceFunc func,
		       gpointer data)
{
	if (*source_id != 0 && *watching == cond)
		return;
	g_clear_handle_id(source_id, g_source_remove);
	*watching = cond;
	if (fd >= 0)
		*source_id = g_unix_fd_add(fd, cond, func, data);
}

/* viewers */

static void
vmsup_vm_console_viewer_free(gpointer data)
{
	VmsupVmConsoleViewer *viewer = data;

	g_clear_handle_id(&viewer->source_id, g_source_remove);
	if (viewer->fd >= 0)
		close(viewer->fd);
	g_byte_array_unref(viewer->out);
	g_free(viewer);
}

static void
vmsup_vm_console_drop_viewer(VmsupVmConsole *self, VmsupVmConsoleViewer *viewer, const gchar *why)
{
	g_debug("console of '%s': viewer %d %s", self->vm_name, viewer->fd, why);
	g_ptr_array_remove_fast(self->viewers, viewer);
}

/* writes what it can of @data (after what already waits); FALSE: the viewer is gone */
static gboolean
vmsup_vm_console_viewer_send(VmsupVmConsoleViewer *viewer, const guint8 *data, gsize length)
{
	if (viewer->out->len == 0) {
		while (length > 0) {
			gssize n = send(viewer->fd, data, length, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n < 0)
				return FALSE;
			data += n;
			length -= (gsize)n;
		}
	}
	if (viewer->out->len + length > VMSUP_VM_CONSOLE_VIEWER_MAX)
		return FALSE;
	g_byte_array_append(viewer->out, data, (guint)length);
	return TRUE;
}

static gboolean
vmsup_vm_console_viewer_flush(VmsupVmConsoleViewer *viewer)
{
	while (viewer->out->len > 0) {
		gssize n = send(viewer->fd,
				viewer->out->data,
				viewer->out->len,
				MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return TRUE;
		if (n < 0)
			return FALSE;
		g_byte_array_remove_range(viewer->out, 0, (guint)n);
	}
	return TRUE;
}

static gboolean
vmsup_vm_console_viewer_cb(gint fd, GIOCondition cond, gpointer user_data)
{
	VmsupVmConsoleViewer *viewer = user_data;
	VmsupVmConsole *self = viewer->console;

	if ((cond & G_IO_OUT) && !vmsup_vm_console_viewer_flush(viewer)) {
		viewer->source_id = 0;
		vmsup_vm_console_drop_viewer(self, viewer, "went away");
		vmsup_vm_console_update(self);
		return G_SOURCE_REMOVE;
	}
	if ((cond & G_IO_IN) && self->to_guest->len < VMSUP_VM_CONSOLE_GUEST_MAX) {
		guint8 buf[VMSUP_VM_CONSOLE_CHUNK];
		gsize room = MIN(sizeof(buf), VMSUP_VM_CONSOLE_GUEST_MAX - self->to_guest->len);
		gssize n = recv(fd, buf, room, MSG_DONTWAIT);
		if (n > 0)
			g_byte_array_append(self->to_guest, buf, (guint)n);
		else if (n == 0)
			viewer->input_ended =
			    TRUE; /* it may still read: a pipe whose input ended */
		else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			cond |= G_IO_ERR;
	}
	if (cond & (G_IO_HUP | G_IO_ERR)) {
		viewer->source_id = 0;
		vmsup_vm_console_drop_viewer(self, viewer, "closed");
		vmsup_vm_console_update(self);
		return G_SOURCE_REMOVE;
	}
	vmsup_vm_console_update(self);
	return G_SOURCE_CONTINUE;
}

/* the guest connection */

static void
vmsup_vm_console_disconnect(VmsupVmConsole *self)
{
	g_clear_handle_id(&self->guest_source_id, g_source_remove);
	if (self->guest_fd >= 0)
		close(self->guest_fd);
	self->guest_fd = -1;
	g_byte_array_set_size(self->to_guest, 0);
}

static void
vmsup_vm_console_remember(VmsupVmConsole *self, const guint8 *data, gsize length)
{
	if (length >= VMSUP_VM_CONSOLE_HISTORY) {
		data += length - VMSUP_VM_CONSOLE_HISTORY;
		length = VMSUP_VM_CONSOLE_HISTORY;
		g_byte_array_set_size(self->history, 0);
		self->history_cut = TRUE;
	} else if (self->history->len + length > VMSUP_VM_CONSOLE_HISTORY) {
		g_byte_array_remove_range(
		    self->history,
		    0,
		    (guint)(self->history->len + length - VMSUP_VM_CONSOLE_HISTORY));
		self->history_cut = TRUE;
	}
	g_byte_array_append(self->history, data, (guint)length);
}

/* the history starts over from the log's tail: output before this connection went there only */
static void
vmsup_vm_console_load_history(VmsupVmConsole *self)
{
	gint fd = open(self->log_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	guint8 buf[VMSUP_VM_CONSOLE_HISTORY];
	off_t end;
	gssize n;

	g_byte_array_set_size(self->history, 0);
	self->history_cut = FALSE;
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	if (end > (off_t)sizeof(buf)) {
		lseek(fd, end - (off_t)sizeof(buf), SEEK_SET);
		self->history_cut = TRUE;
	} else {
		lseek(fd, 0, SEEK_SET);
	}
	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n > 0)
		g_byte_array_append(self->history, buf, (guint)n);
}

static void
vmsup_vm_console_broadcast(VmsupVmConsole *self, const guint8 *data, gsize length)
{
	vmsup_vm_console_remember(self, data, length);
	for (guint i = self->viewers->len; i > 0; i--) {
		VmsupVmConsoleViewer *viewer = g_ptr_array_index(self->viewers, i - 1);
		if (!vmsup_vm_console_viewer_send(viewer, data, length))
			vmsup_vm_console_drop_viewer(self, viewer, "fell behind or went away");
	}
}

static gboolean
vmsup_vm_console_guest_cb(gint fd, GIOCondition cond, gpointer user_data)
{
	VmsupVmConsole *self = user_data;
	gboolean lost = (cond & G_IO_ERR) != 0;

	if (cond & G_IO_IN) {
		guint8 buf[VMSUP_VM_CONSOLE_CHUNK];
		gssize n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			vmsup_vm_console_broadcast(self, buf, (gsize)n);
		else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			lost = TRUE;
	} else if (cond & G_IO_HUP) {
		lost = TRUE;
	}
	if (!lost && (cond & G_IO_OUT) && self->to_guest->len > 0) {
		gssize n = send(fd,
				self->to_guest->data,
				self->to_guest->len,
				MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			g_byte_array_remove_range(self->to_guest, 0, (guint)n);
		else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			lost = TRUE;
	}
	if (lost) {
		/* QEMU closed the serial port: its run is over, and so is every viewer's */
		g_debug("console of '%s': QEMU closed the serial port", self->vm_name);
		self->guest_source_id = 0;
		vmsup_vm_console_disconnect(self);
		g_ptr_array_set_size(self->viewers, 0);
		return G_SOURCE_REMOVE;
	}
	vmsup_vm_console_update(self);
	return G_SOURCE_CONTINUE;
}

static gboolean
vmsup_vm_console_connect(VmsupVmConsole *self, GError **error)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	gint fd;

	if (self->guest_fd >= 0)
		return TRUE;
	if (strlen(self->socket_path) >= sizeof(addr.sun_path)) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INTERNAL,
			    "the console socket path '%s' is too long",
			    self->socket_path);
		return FALSE;
	}
	strcpy(addr.sun_path, self->socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		gint saved = errno;
		if (fd >= 0)
			close(fd);
		g_set_error(
		    error,
		    VMSUP_ERROR,
		    VMSUP_ERROR_FAILED_PRECONDITION,
		    _("Cannot reach the serial console of VM '%s' (%s): %s; see 'vmsup get %s' "
		      "for its state"),
		    self->vm_name,
		    self->socket_path,
		    g_strerror(saved),
		    self->vm_name);
		return FALSE;
	}
	self->guest_fd = fd;
	vmsup_vm_console_load_history(self);
	return TRUE;
}

/* what each descriptor is watched for follows from what waits to be sent */
static void
vmsup_vm_console_update(VmsupVmConsole *self)
{
	gboolean guest_full = self->to_guest->len >= VMSUP_VM_CONSOLE_GUEST_MAX;

	/* no viewer: the daemon lets go of the port, and QEMU goes on logging alone */
	if (self->viewers->len == 0) {
		vmsup_vm_console_disconnect(self);
		return;
	}
	for (guint i = 0; i < self->viewers->len; i++) {
		VmsupVmConsoleViewer *viewer = g_ptr_array_index(self->viewers, i);
		GIOCondition cond = G_IO_HUP | G_IO_ERR;
		if (!viewer->input_ended && !guest_full)
			cond |= G_IO_IN;
		if (viewer->out->len > 0)
			cond |= G_IO_OUT;
		vmsup_vm_console_watch(&viewer->source_id,
				       &viewer->watching,
				       viewer->fd,
				       cond,
				       vmsup_vm_console_viewer_cb,
				       viewer);
	}
	if (self->guest_fd >= 0)
		vmsup_vm_console_watch(&self->guest_source_id,
				       &self->guest_watching,
				       self->guest_fd,
				       G_IO_IN | G_IO_HUP | G_IO_ERR |
					   (self->to_guest->len > 0 ? G_IO_OUT : 0),
				       vmsup_vm_console_guest_cb,
				       self);
}

/* what a late viewer is shown first: the history from its first full line on */
static void
vmsup_vm_console_replay(VmsupVmConsole *self, VmsupVmConsoleViewer *viewer)
{
	const guint8 *data = self->history->data;
	gsize length = self->history->len;

	if (self->history_cut) {
		const guint8 *nl = memchr(data, '\n', length);
		if (nl == NULL)
			return;
		length -= (gsize)(nl + 1 - data);
		data = nl + 1;
	}
	vmsup_vm_console_viewer_send(viewer, data, length);
}

gint
vmsup_vm_console_open_viewer(VmsupVmConsole *self, gboolean history, GError **error)
{
	VmsupVmConsoleViewer *viewer;
	gint pair[2];

	g_return_val_if_fail(VMSUP_IS_VM_CONSOLE(self), -1);

	if (self->closed) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    _("VM '%s' is stopping; its console is closed"),
			    self->vm_name);
		return -1;
	}
	if (self->viewers->len >= VMSUP_VM_CONSOLE_MAX_VIEWERS) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_BUSY,
			    _("VM '%s' has %u console viewers already, the most it takes; close "
			      "one of them and try again"),
			    self->vm_name,
			    (guint)VMSUP_VM_CONSOLE_MAX_VIEWERS);
		return -1;
	}
	if (!vmsup_vm_console_connect(self, error))
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_INTERNAL,
			    "cannot make a console socket pair: %s",
			    g_strerror(errno));
		vmsup_vm_console_update(self);
		return -1;
	}
	fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK);
	viewer = g_new0(VmsupVmConsoleViewer, 1);
	viewer->console = self;
	viewer->fd = pair[0];
	viewer->out = g_byte_array_new();
	g_ptr_array_add(self->viewers, viewer);
	if (history)
		vmsup_vm_console_replay(self, viewer);
	vmsup_vm_console_update(self);
	return pair[1];
}

guint
vmsup_vm_console_get_n_viewers(VmsupVmConsole *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_CONSOLE(self), 0);
	return self->viewers->len;
}

void
vmsup_vm_console_close(VmsupVmConsole *self)
{
	g_return_if_fail(VMSUP_IS_VM_CONSOLE(self));
	self->closed = TRUE;
	g_ptr_array_set_size(self->viewers, 0);
	vmsup_vm_console_disconnect(self);
}

VmsupVmConsole *
vmsup_vm_console_new(const gchar *vm_name, const gchar *socket_path, const gchar *log_path)
{
	VmsupVmConsole *self;

	g_return_val_if_fail(vm_name != NULL, NULL);
	g_return_val_if_fail(socket_path != NULL, NULL);
	g_return_val_if_fail(log_path != NULL, NULL);
	self = g_object_new(VMSUP_TYPE_VM_CONSOLE, NULL);
	self->vm_name = g_strdup(vm_name);
	self->socket_path = g_strdup(socket_path);
	self->log_path = g_strdup(log_path);
	return self;
}

static void
vmsup_vm_console_finalize(GObject *object)
{
	VmsupVmConsole *self = VMSUP_VM_CONSOLE(object);

	vmsup_vm_console_close(self);
	g_ptr_array_unref(self->viewers);
	g_byte_array_unref(self->to_guest);
	g_byte_array_unref(self->history);
	g_free(self->vm_name);
	g_free(self->socket_path);
	g_free(self->log_path);
	G_OBJECT_CLASS(vmsup_vm_console_parent_class)->finalize(object);
}

static void
vmsup_vm_console_class_init(VmsupVmConsoleClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = vmsup_vm_console_finalize;
}

static void
vmsup_vm_console_init(VmsupVmConsole *self)
{
	self->guest_fd = -1;
	self->to_guest = g_byte_array_new();
	self->history = g_byte_array_new();
	self->viewers = g_ptr_array_new_with_free_func(vmsup_vm_console_viewer_free);
}
