/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* what a viewer may leave unread before it is cut off, beyond its socket's own buffer */
#define VMSUP_VM_CONSOLE_VIEWER_MAX (256 * 1024)
/* the latest output a new viewer is shown first */
#define VMSUP_VM_CONSOLE_HISTORY (16 * 1024)
/* viewers of one VM at a time */
#define VMSUP_VM_CONSOLE_MAX_VIEWERS 16

#define VMSUP_TYPE_VM_CONSOLE (vmsup_vm_console_get_type())
G_DECLARE_FINAL_TYPE(VmsupVmConsole, vmsup_vm_console, VMSUP, VM_CONSOLE, GObject)

/*
 * The serial console of one run of a VM: the daemon's connection to the
 * socket QEMU serves (@socket_path), made while at least one viewer is
 * attached, and the viewers, each one end of a socketpair. What the guest
 * prints goes to every viewer; what a viewer sends goes to the guest. QEMU
 * writes the console log itself, viewers or not. A viewer that leaves more
 * than VMSUP_VM_CONSOLE_VIEWER_MAX unread is disconnected (it sees the end
 * of its stream), so neither the guest nor the other viewers ever wait for it.
 */
VmsupVmConsole *
vmsup_vm_console_new(const gchar *vm_name, const gchar *socket_path, const gchar *log_path);

/*
 * a new viewer: the caller's end of its socketpair (close-on-exec), or -1
 * with an error (BUSY past VMSUP_VM_CONSOLE_MAX_VIEWERS). With @history it
 * first reads the latest output, up to VMSUP_VM_CONSOLE_HISTORY from the
 * start of a line (the tail of @log_path when nobody was attached).
 */
gint
vmsup_vm_console_open_viewer(VmsupVmConsole *self, gboolean history, GError **error);

guint
vmsup_vm_console_get_n_viewers(VmsupVmConsole *self);

/* ends the guest connection and every viewer; the run is over */
void
vmsup_vm_console_close(VmsupVmConsole *self);

G_END_DECLS
