/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vmsup-vm-hooks.h"

G_BEGIN_DECLS

#define VMSUP_TYPE_WORKSPACE_SERVICE (vmsup_workspace_service_get_type())
G_DECLARE_FINAL_TYPE(VmsupWorkspaceService,
		     vmsup_workspace_service,
		     VMSUP,
		     WORKSPACE_SERVICE,
		     GObject)

#define VMSUP_WORKSPACE_SERVICE_DECLARE_VERB(verb)                                                 \
	void vmsup_workspace_service_##verb##_async(VmsupWorkspaceService *self,                   \
						    JsonObject *params,                            \
						    GCancellable *cancellable,                     \
						    GAsyncReadyCallback callback,                  \
						    gpointer user_data);                           \
	JsonObject *vmsup_workspace_service_##verb##_finish(VmsupWorkspaceService *self,           \
							    GAsyncResult *res,                     \
							    GError **error);

VMSUP_WORKSPACE_SERVICE_DECLARE_VERB(create)
VMSUP_WORKSPACE_SERVICE_DECLARE_VERB(list)
VMSUP_WORKSPACE_SERVICE_DECLARE_VERB(delete)
VMSUP_WORKSPACE_SERVICE_DECLARE_VERB(open)

G_END_DECLS
