/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "vmsup-cli.h"

G_BEGIN_DECLS

gint
vmsup_cli_clone(VmsupCli *cli, gint argc, gchar **argv);

G_END_DECLS
