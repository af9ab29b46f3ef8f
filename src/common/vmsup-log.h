/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* a structured log line carrying VMSUP_VM=<name>, so `journalctl VMSUP_VM=web1` works */
#define vmsup_log_vm(level, vm, ...)                                                               \
	g_log_structured(G_LOG_DOMAIN,                                                             \
			 level,                                                                    \
			 "VMSUP_VM",                                                               \
			 (vm),                                                                     \
			 "CODE_FILE",                                                              \
			 __FILE__,                                                                 \
			 "CODE_LINE",                                                              \
			 G_STRINGIFY(__LINE__),                                                    \
			 "CODE_FUNC",                                                              \
			 G_STRFUNC,                                                                \
			 "MESSAGE",                                                                \
			 __VA_ARGS__)

G_END_DECLS
