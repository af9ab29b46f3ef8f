/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "vmsup-vm-service.h"
#include "vmsup-workspace-hooks.h"

G_BEGIN_DECLS

/*
 * The hooks for WorkspaceService; owned by @self (built on first use), copy
 * with vmsup_workspace_hooks_copy(). vm_call reaches only the public verbs.
 */
const VmsupWorkspaceHooks *
vmsup_vm_service_get_workspace_hooks(VmsupVmService *self);

G_END_DECLS
