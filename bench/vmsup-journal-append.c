/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What keeping an event costs vmsupd: appends N vm-changed entries shaped
 * like a vm.get result to a journal in a fresh directory (rotating at the
 * daemon's 1 MiB) and prints the time per entry, mean and p99, and the
 * time to read the whole journal back (what a replay pays), to skip it all
 * (a --since later than every entry) and to reopen it (a daemon start).
 *   vmsup-journal-append [N]
 */

#include "config.h"

#include <stdlib.h>

#include "vmsup-event-journal.h"

static gint
compare_gint64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a;
	gint64 y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	guint n = argc > 1 ? (guint)g_ascii_strtoull(argv[1], NULL, 10) : 20000;
	g_autofree gchar *dir = g_dir_make_tmp("vmsup-journal-XXXXXX", NULL);
	g_autoptr(VmsupEventJournal) journal = NULL;
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(GPtrArray) entries = NULL;
	g_autofree gint64 *took = g_new(gint64, MAX(n, 1));
	g_autofree gchar *rm = NULL;
	JsonObject *vm = json_object_new();
	gint64 total = 0;
	gint64 start;

	json_object_set_string_member(params, "name", "web1");
	json_object_set_string_member(vm, "name", "web1");
	json_object_set_int_member(vm, "cpus", 2);
	json_object_set_int_member(vm, "memory_mib", 1024);
	json_object_set_string_member(vm, "kernel", "/usr/lib/vmsup/guest/vmlinux");
	json_object_set_string_member(vm, "cmdline", "console=ttyS0 quiet panic=-1");
	json_object_set_boolean_member(vm, "auto_stop", TRUE);
	json_object_set_boolean_member(vm, "autostart", FALSE);
	json_object_set_string_member(vm, "created", "2026-12-07T18:00:00Z");
	json_object_set_int_member(vm, "owner_uid", 1000);
	json_object_set_string_member(vm, "state", "running");
	json_object_set_string_member(vm, "accel", "tcg");
	json_object_set_int_member(vm, "pid", 12345);
	json_object_set_string_member(vm, "started_at", "2026-12-07T18:00:01Z");
	json_object_set_string_member(vm, "runtime_dir", "/run/vmsup/vms/web1");
	json_object_set_object_member(params, "vm", vm);

	journal = vmsup_event_journal_new(dir, VMSUP_EVENT_JOURNAL_DEFAULT_MAX_BYTES);
	for (guint i = 0; i < n; i++) {
		gint64 t0 = g_get_monotonic_time();
		vmsup_event_journal_append(journal,
					   g_get_real_time(),
					   "event.vm-changed",
					   params,
					   1000);
		took[i] = g_get_monotonic_time() - t0;
		total += took[i];
	}
	qsort(took, n, sizeof(gint64), compare_gint64);
	start = g_get_monotonic_time();
	entries = vmsup_event_journal_read(dir, G_MININT64, 0);
	g_print("appended %u entries: %.1f us mean, %" G_GINT64_FORMAT " us p50, %" G_GINT64_FORMAT
		" us p99\n",
		n,
		n > 0 ? (gdouble)total / n : 0.0,
		n > 0 ? took[n / 2] : 0,
		n > 0 ? took[n * 99 / 100] : 0);
	g_print("read back %u kept entries (both files) in %.1f ms\n",
		entries->len,
		(g_get_monotonic_time() - start) / 1000.0);
	{
		g_autoptr(GPtrArray) none = NULL;
		start = g_get_monotonic_time();
		none = vmsup_event_journal_read(dir, g_get_real_time(), 0);
		g_print("skipped all of them (since now) in %.1f ms\n",
			(g_get_monotonic_time() - start) / 1000.0);
	}
	start = g_get_monotonic_time();
	g_clear_object(&journal);
	journal = vmsup_event_journal_new(dir, VMSUP_EVENT_JOURNAL_DEFAULT_MAX_BYTES);
	g_print("reopened at seq %" G_GUINT64_FORMAT " in %.1f ms\n",
		vmsup_event_journal_get_last_seq(journal),
		(g_get_monotonic_time() - start) / 1000.0);
	rm = g_strdup_printf("rm -rf '%s'", dir);
	return system(rm) == 0 ? 0 : 1;
}
