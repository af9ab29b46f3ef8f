/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <gio/gio.h>
#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-qmp-client.h"
#include "vmsup-stats-errors.h"

gboolean
vmsup_stats_error_is_timeout(const GError *error)
{
	return g_error_matches(error, VMSUP_ERROR, VMSUP_ERROR_TIMEOUT) ||
	       g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

GError *
vmsup_stats_error_agent(const gchar *name, const GError *error)
{
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return g_error_new_literal(VMSUP_ERROR, VMSUP_ERROR_CANCELLED, error->message);
	if (vmsup_stats_error_is_timeout(error))
		return g_error_new(
		    VMSUP_ERROR,
		    VMSUP_ERROR_TIMEOUT,
		    /* TRANSLATORS: %s is a VM name, then an error message */
		    _("The guest agent of VM '%s' did not answer (%s); the guest may "
		      "still be booting or qemu-ga is not running in it: check with "
		      "'vmsup health %s'"),
		    name,
		    error->message,
		    name);
	if (vmsup_error_is_wire(error))
		return g_error_copy(error);
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   _("The guest agent of VM '%s' failed: %s; check with 'vmsup health %s'"),
			   name,
			   error->message,
			   name);
}

GError *
vmsup_stats_error_not_running(const gchar *name)
{
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   /* TRANSLATORS: both %s are the VM name */
			   _("VM '%s' is not running; start it with 'vmsup start %s'"),
			   name,
			   name);
}

GError *
vmsup_stats_error_no_agent(const gchar *name)
{
	return g_error_new(VMSUP_ERROR,
			   VMSUP_ERROR_FAILED_PRECONDITION,
			   _("VM '%s' has no guest agent channel; recreate it with the bundled "
			     "guest or a guest running qemu-ga"),
			   name);
}
