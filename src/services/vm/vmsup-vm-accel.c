/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VmsupVmAccel: the accelerator VMs get, configured or probed once, with
 * the starts and creates that wait for it.
 */

#include "config.h"

#include "vmsup-accel-probe.h"
#include "vmsup-qemu-process.h"
#include "vmsup-vm-accel.h"

struct _VmsupVmAccel {
	GObject parent_instance;
	VmsupAccel configured;
	gchar *qemu_binary;        /* owned, NULL: $VMSUP_QEMU or PATH */
	GCancellable *cancellable; /* owned, nullable */
	VmsupAccel accel;
	gchar *reason; /* owned */
	gboolean known;
	gboolean probing;
	GPtrArray *waiters; /* owned, of GTask */
};

G_DEFINE_FINAL_TYPE(VmsupVmAccel, vmsup_vm_accel, G_TYPE_OBJECT)

enum { SIGNAL_DECIDED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
vmsup_vm_accel_decide(VmsupVmAccel *self, VmsupAccel accel, const gchar *reason)
{
	g_autoptr(GPtrArray) waiters = g_steal_pointer(&self->waiters);

	self->accel = accel;
	g_free(self->reason);
	self->reason = g_strdup(reason);
	self->known = TRUE;
	self->probing = FALSE;
	self->waiters = g_ptr_array_new_with_free_func(g_object_unref);
	g_message("VMs run with %s: %s", vmsup_accel_to_string(accel), reason);
	g_signal_emit(self, signals[SIGNAL_DECIDED], 0);
	for (guint i = 0; i < waiters->len; i++)
		g_task_return_boolean(g_ptr_array_index(waiters, i), TRUE);
}

static void
vmsup_vm_accel_probe_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmsupVmAccel) self = user_data;
	g_autofree gchar *reason = NULL;
	VmsupAccel accel = vmsup_accel_probe_finish(res, &reason);

	vmsup_vm_accel_decide(self, accel, reason != NULL ? reason : "probed");
}

void
vmsup_vm_accel_ensure_async(VmsupVmAccel *self,
			    GCancellable *cancellable,
			    GAsyncReadyCallback callback,
			    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(VmsupQemuConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *binary = NULL;

	g_return_if_fail(VMSUP_IS_VM_ACCEL(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_accel_ensure_async);
	if (self->known) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	g_ptr_array_add(self->waiters, g_steal_pointer(&task));
	if (self->configured != VMSUP_ACCEL_AUTO) {
		vmsup_vm_accel_decide(self, self->configured, "configured");
		return;
	}
	if (self->probing)
		return;
	self->probing = TRUE;
	config = vmsup_qemu_config_new("probe");
	config->qemu_binary = g_strdup(self->qemu_binary);
	binary = vmsup_qemu_config_find_binary(config, &error);
	if (binary == NULL) {
		g_autofree gchar *reason = g_strdup_printf("cannot probe KVM: %s", error->message);
		vmsup_vm_accel_decide(self, VMSUP_ACCEL_TCG, reason);
		return;
	}
	vmsup_accel_probe_async(binary,
				self->cancellable,
				vmsup_vm_accel_probe_cb,
				g_object_ref(self));
}

gboolean
vmsup_vm_accel_ensure_finish(VmsupVmAccel *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

gboolean
vmsup_vm_accel_is_known(VmsupVmAccel *self)
{
	g_return_val_if_fail(VMSUP_IS_VM_ACCEL(self), FALSE);
	return self->known;
}

VmsupAccel
vmsup_vm_accel_get(VmsupVmAccel *self, const gchar **out_reason)
{
	g_return_val_if_fail(VMSUP_IS_VM_ACCEL(self), VMSUP_ACCEL_TCG);
	if (out_reason != NULL)
		*out_reason = self->known ? self->reason : "not decided yet";
	return self->known ? self->accel : self->configured;
}

static void
vmsup_vm_accel_finalize(GObject *object)
{
	VmsupVmAccel *self = VMSUP_VM_ACCEL(object);

	g_ptr_array_unref(self->waiters);
	g_clear_object(&self->cancellable);
	g_free(self->qemu_binary);
	g_free(self->reason);
	G_OBJECT_CLASS(vmsup_vm_accel_parent_class)->finalize(object);
}

static void
vmsup_vm_accel_class_init(VmsupVmAccelClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->finalize = vmsup_vm_accel_finalize;
	signals[SIGNAL_DECIDED] = g_signal_new("decided",
					       G_TYPE_FROM_CLASS(klass),
					       G_SIGNAL_RUN_LAST,
					       0,
					       NULL,
					       NULL,
					       NULL,
					       G_TYPE_NONE,
					       0);
}

static void
vmsup_vm_accel_init(VmsupVmAccel *self)
{
	self->waiters = g_ptr_array_new_with_free_func(g_object_unref);
}

VmsupVmAccel *
vmsup_vm_accel_new(VmsupAccel configured, const gchar *qemu_binary, GCancellable *cancellable)
{
	VmsupVmAccel *self = g_object_new(VMSUP_TYPE_VM_ACCEL, NULL);

	self->configured = configured;
	self->qemu_binary = g_strdup(qemu_binary);
	self->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
	return self;
}
