/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who is asking: a uid and whether the owner rule binds it, decided in one
 * place so that every transport and the daemon itself agree.
 */

#include "config.h"

#include <unistd.h>

#include "vmsup-caller.h"

gboolean
vmsup_caller_uid_is_restricted(guint32 uid)
{
	return uid != 0 && uid != (guint32)geteuid();
}

VmsupCaller
vmsup_caller_for_uid(guint32 uid)
{
	VmsupCaller caller = {.uid = uid, .restricted = vmsup_caller_uid_is_restricted(uid)};
	return caller;
}

const VmsupCaller *
vmsup_caller_daemon(void)
{
	static VmsupCaller caller;
	static gsize once = 0;

	if (g_once_init_enter(&once)) {
		caller = vmsup_caller_for_uid((guint32)geteuid());
		caller.daemon = TRUE;
		g_once_init_leave(&once, 1);
	}
	return &caller;
}
