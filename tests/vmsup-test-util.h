/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * Iterates the default main context until @cond returns TRUE; fails the
 * test (at the caller's line) when that takes longer than @timeout_s.
 */
#define vmsup_test_wait_until(cond, data, timeout_s)                                               \
	vmsup_test_wait_until_impl((cond), (data), (timeout_s), __FILE__, __LINE__, G_STRFUNC)

/* the same for a gboolean that a callback sets */
#define vmsup_test_wait_flag(flag, timeout_s)                                                      \
	vmsup_test_wait_until_impl(vmsup_test_flag_is_set,                                         \
				   (gpointer)(flag),                                               \
				   (timeout_s),                                                    \
				   __FILE__,                                                       \
				   __LINE__,                                                       \
				   G_STRFUNC)

/*
 * Waiting for an _async call:
 *
 *   GAsyncResult *slot = NULL;
 *   foo_async(..., vmsup_test_store_result_cb, &slot);
 *   g_autoptr(GAsyncResult) res = vmsup_test_wait_result(&slot, 5);
 *   foo_finish(..., res, &error);
 */
#define vmsup_test_wait_result(slot, timeout_s)                                                    \
	vmsup_test_wait_result_impl((slot), (timeout_s), __FILE__, __LINE__, G_STRFUNC)

/*
 * The one factor every wait of the tests is multiplied by:
 * $VMSUP_TEST_TIMEOUT_MULTIPLIER, which the test command sets to match
 * meson test's --timeout-multiplier (1 when unset). Waits are written for
 * an idle machine without sanitizers and must fit their test's meson
 * timeout with room; the factor scales both together.
 */
guint
vmsup_test_timeout_multiplier(void);

void
vmsup_test_wait_until_impl(gboolean (*cond)(gpointer data),
			   gpointer data,
			   guint timeout_s,
			   const gchar *file,
			   gint line,
			   const gchar *func);

gboolean
vmsup_test_flag_is_set(gpointer flag);

/* a condition for vmsup_test_wait_until(): the process GINT_TO_POINTER(pid) is stopped (T) */
gboolean
vmsup_test_pid_is_stopped(gpointer pid);

/* a condition for vmsup_test_wait_until(): the process GINT_TO_POINTER(pid) has ended */
gboolean
vmsup_test_pid_is_gone(gpointer pid);

/* a GAsyncReadyCallback storing a reference to @res in *(GAsyncResult **)@user_data */
void
vmsup_test_store_result_cb(GObject *source, GAsyncResult *res, gpointer user_data);

/* waits until *@slot is set, then returns it (full) and clears the slot */
GAsyncResult *
vmsup_test_wait_result_impl(GAsyncResult **slot,
			    guint timeout_s,
			    const gchar *file,
			    gint line,
			    const gchar *func);

/*
 * A GSpawnChildSetupFunc: the child is killed when the test dies, so a
 * test that aborts half-way leaves no daemon or QEMU behind.
 */
void
vmsup_test_child_dies_with_parent(gpointer unused);

/* first thing in main(): the test's QEMUs and daemons are killed when it ends, even by abort */
void
vmsup_test_guard_children(void);

/* whether @name has an owner on @conn's bus now (FALSE too when the bus does not answer) */
gboolean
vmsup_test_bus_name_has_owner(GDBusConnection *conn, const gchar *name);

/* dispatches whatever is ready now (completions of cancelled operations) without blocking */
void
vmsup_test_drain_main_context(void);

/*
 * The QEMU binary: $VMSUP_QEMU or qemu-system-x86_64 from PATH. A missing
 * QEMU fails the test: tests never skip, the test command installs it.
 */
gchar *
vmsup_test_require_qemu(void);

/* a new private directory under the temp dir (short: Unix socket paths fit) */
gchar *
vmsup_test_make_tmpdir(void);

/* removes @path and everything below it; symlinks are not followed */
void
vmsup_test_rm_rf(const gchar *path);

/* runs @argv (searched in PATH, stdout discarded); a failure fails the test, showing stderr */
void
vmsup_test_run_tool(const gchar *const *argv);
/* the same, giving its standard output */
gchar *
vmsup_test_run_tool_output(const gchar *const *argv);

/* @first, ... (NULL-terminated) below the build directory ($VMSUP_BUILDDIR) */
gchar *
vmsup_test_build_path(const gchar *first, ...) G_GNUC_NULL_TERMINATED;

/*
 * Points $HOME and the XDG directories of the environment (as opposed to
 * GLib's isolated test dirs, which children do not see) below @root, made
 * 0700: processes started from the test, vmsupd activated by a test bus
 * among them, inherit them.
 */
void
vmsup_test_setenv_user_dirs(const gchar *root);

/* what a client of uid 65534 (nobody) met on a JSON-RPC socket, asking daemon.info */
typedef enum {
	VMSUP_TEST_PROBE_REFUSED = 0,    /* an error line about permissions, then end of stream */
	VMSUP_TEST_PROBE_NO_ACCESS = 10, /* connect() itself was refused by the file mode */
	VMSUP_TEST_PROBE_ANSWERED = 20,  /* the server talked to it */
	VMSUP_TEST_PROBE_BROKEN = 30,
} VmsupTestProbe;

/* forks a child that becomes nobody and connects to @socket_path; run as root */
VmsupTestProbe
vmsup_test_probe_as_nobody(const gchar *socket_path, guint timeout_s);

G_END_DECLS
