/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * The remote end of `vmsup --connect ssh://…`: relays @in to @daemon and
 * @daemon to @out, a bounded buffer each way, iterating the thread-default
 * main context. Ends when vmsupd closes or @out fails; when @in ends first,
 * vmsupd is told (a half close) and has a bounded time to answer what it
 * was asked.
 */
void
vmsup_bridge_relay(GIOStream *daemon, GInputStream *in, GOutputStream *out);

G_END_DECLS
