/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "vmsup-rpc-table.h"

G_BEGIN_DECLS

/*
 * image.import {path, name?, wait=false} -> {operation, image}: the file
 * opened as the caller, checked at once, then copied as an operation
 * ("image.import", its "vm" the image's name) that op.get follows and
 * op.cancel stops; with wait, the answer comes when it has ended.
 * image.build {name, distro="debian-12", packages?, wait=false} ->
 * {operation, image}: checked at once, then built and imported as an
 * operation ("image.build") whose stages are the builder's, then "import".
 * image.list {} -> {images: [...]}; image.delete {name} -> the image deleted.
 */
void
vmsup_rpc_image_import(const VmsupRpcContext *ctx, VmsupRpcCall *call);
void
vmsup_rpc_image_build(const VmsupRpcContext *ctx, VmsupRpcCall *call);
void
vmsup_rpc_image_list(const VmsupRpcContext *ctx, VmsupRpcCall *call);
void
vmsup_rpc_image_delete(const VmsupRpcContext *ctx, VmsupRpcCall *call);

G_END_DECLS
