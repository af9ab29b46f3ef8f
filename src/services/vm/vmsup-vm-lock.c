/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The per-VM async FIFO lock: operations on one VM never interleave, while
 * operations on different VMs run concurrently, all on the main loop.
 */

#include "config.h"

#include <glib/gi18n.h>

#include "vmsup-error.h"
#include "vmsup-vm-lock.h"

typedef struct {
	GTask *task;            /* owned */
	GSource *cancel_source; /* owned, NULL without a cancellable */
	gchar *name;            /* owned */
} VmsupVmLockWaiter;

typedef struct {
	gboolean held;
	GQueue waiters; /* of owned VmsupVmLockWaiter */
} VmsupVmLockEntry;

struct _VmsupVmLock {
	GObject parent_instance;
	GHashTable *entries; /* owned: name -> VmsupVmLockEntry */
};

G_DEFINE_FINAL_TYPE(VmsupVmLock, vmsup_vm_lock, G_TYPE_OBJECT)

static void
vmsup_vm_lock_waiter_free(VmsupVmLockWaiter *waiter)
{
	if (waiter->cancel_source != NULL) {
		g_source_destroy(waiter->cancel_source);
		g_source_unref(waiter->cancel_source);
	}
	g_clear_object(&waiter->task);
	g_free(waiter->name);
	g_free(waiter);
}

static void
vmsup_vm_lock_entry_free(VmsupVmLockEntry *entry)
{
	g_queue_clear_full(&entry->waiters, (GDestroyNotify)vmsup_vm_lock_waiter_free);
	g_free(entry);
}

static void
vmsup_vm_lock_entry_maybe_remove(VmsupVmLock *self, const gchar *name, VmsupVmLockEntry *entry)
{
	if (!entry->held && g_queue_is_empty(&entry->waiters))
		g_hash_table_remove(self->entries, name);
}

static gboolean
vmsup_vm_lock_grant_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	g_task_return_boolean(task, TRUE);
	return G_SOURCE_REMOVE;
}

static gboolean
vmsup_vm_lock_waiter_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	VmsupVmLockWaiter *waiter = user_data;
	VmsupVmLock *self = VMSUP_VM_LOCK(g_task_get_source_object(waiter->task));
	VmsupVmLockEntry *entry = g_hash_table_lookup(self->entries, waiter->name);
	g_autoptr(GTask) task = g_steal_pointer(&waiter->task);
	g_autofree gchar *name = g_strdup(waiter->name);

	g_assert(entry != NULL);
	g_queue_remove(&entry->waiters, waiter);
	vmsup_vm_lock_waiter_free(waiter);
	vmsup_vm_lock_entry_maybe_remove(self, name, entry);
	g_task_return_new_error(task,
				G_IO_ERROR,
				G_IO_ERROR_CANCELLED,
				_("Waiting for VM '%s' was cancelled"),
				name);
	return G_SOURCE_REMOVE;
}

void
vmsup_vm_lock_lock_async(VmsupVmLock *self,
			 const gchar *name,
			 GCancellable *cancellable,
			 GAsyncReadyCallback callback,
			 gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	VmsupVmLockEntry *entry;
	VmsupVmLockWaiter *waiter;

	g_return_if_fail(VMSUP_IS_VM_LOCK(self));
	g_return_if_fail(name != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, vmsup_vm_lock_lock_async);
	/* a granted lock must reach its holder, or nobody would unlock it */
	g_task_set_check_cancellable(task, FALSE);

	entry = g_hash_table_lookup(self->entries, name);
	if (entry == NULL) {
		entry = g_new0(VmsupVmLockEntry, 1);
		g_queue_init(&entry->waiters);
		g_hash_table_insert(self->entries, g_strdup(name), entry);
	}
	if (!entry->held) {
		entry->held = TRUE;
		/* GTask completes in a later iteration: the task was created in this one */
		g_task_return_boolean(task, TRUE);
		return;
	}
	waiter = g_new0(VmsupVmLockWaiter, 1);
	waiter->task = g_steal_pointer(&task);
	waiter->name = g_strdup(name);
	if (cancellable != NULL) {
		waiter->cancel_source = g_cancellable_source_new(cancellable);
		g_source_set_callback(waiter->cancel_source,
				      G_SOURCE_FUNC(vmsup_vm_lock_waiter_cancelled_cb),
				      waiter,
				      NULL);
		g_source_attach(waiter->cancel_source, g_task_get_context(waiter->task));
	}
	g_queue_push_tail(&entry->waiters, waiter);
}

gboolean
vmsup_vm_lock_lock_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(G_IS_TASK(res), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

void
vmsup_vm_lock_unlock(VmsupVmLock *self, const gchar *name)
{
	VmsupVmLockEntry *entry;
	VmsupVmLockWaiter *waiter;
	g_autoptr(GSource) idle = NULL;

	g_return_if_fail(VMSUP_IS_VM_LOCK(self));
	g_return_if_fail(name != NULL);

	entry = g_hash_table_lookup(self->entries, name);
	g_return_if_fail(entry != NULL && entry->held);

	waiter = g_queue_pop_head(&entry->waiters);
	if (waiter == NULL) {
		entry->held = FALSE;
		vmsup_vm_lock_entry_maybe_remove(self, name, entry);
		return;
	}
	/* the lock passes straight to the waiter: nobody can slip in between */
	idle = g_idle_source_new();
	g_task_attach_source(waiter->task, idle, vmsup_vm_lock_grant_cb);
	vmsup_vm_lock_waiter_free(waiter);
}

gboolean
vmsup_vm_lock_is_locked(VmsupVmLock *self, const gchar *name)
{
	VmsupVmLockEntry *entry;
	g_return_val_if_fail(VMSUP_IS_VM_LOCK(self), FALSE);
	entry = g_hash_table_lookup(self->entries, name);
	return entry != NULL && entry->held;
}

guint
vmsup_vm_lock_get_n_waiters(VmsupVmLock *self, const gchar *name)
{
	VmsupVmLockEntry *entry;
	g_return_val_if_fail(VMSUP_IS_VM_LOCK(self), 0);
	entry = g_hash_table_lookup(self->entries, name);
	return entry != NULL ? g_queue_get_length(&entry->waiters) : 0;
}

static void
vmsup_vm_lock_finalize(GObject *object)
{
	VmsupVmLock *self = VMSUP_VM_LOCK(object);
	/* waiters hold a ref on us through their task: none can be left here */
	g_hash_table_unref(self->entries);
	G_OBJECT_CLASS(vmsup_vm_lock_parent_class)->finalize(object);
}

static void
vmsup_vm_lock_class_init(VmsupVmLockClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = vmsup_vm_lock_finalize;
}

static void
vmsup_vm_lock_init(VmsupVmLock *self)
{
	self->entries = g_hash_table_new_full(g_str_hash,
					      g_str_equal,
					      g_free,
					      (GDestroyNotify)vmsup_vm_lock_entry_free);
}

VmsupVmLock *
vmsup_vm_lock_new(void)
{
	return g_object_new(VMSUP_TYPE_VM_LOCK, NULL);
}
