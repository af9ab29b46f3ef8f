/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A test process that aborts leaves its QEMUs running: they are its
 * children, and a QEMU (by design) outlives whoever started it. The guard
 * forks before the test starts: the test runs in the child, the parent
 * becomes a subreaper that every orphan of the test falls to, and when the
 * test ends, however it ends, the parent kills what is left of its
 * descendants by pid, then exits as the test did.
 */

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmsup-test-util.h"

static volatile pid_t vmsup_test_guarded = -1;

static void
vmsup_test_guard_forward(int sig)
{
	if (vmsup_test_guarded > 0)
		kill(vmsup_test_guarded, sig);
}

/* the direct children of this process: the test's orphans once it is gone */
static void
vmsup_test_guard_kill_children(void)
{
	DIR *proc = opendir("/proc");
	struct dirent *entry;

	if (proc == NULL)
		return;
	while ((entry = readdir(proc)) != NULL) {
		char path[64], buf[512];
		FILE *f;
		char *close_paren;
		int ppid = 0;
		long pid = strtol(entry->d_name, NULL, 10);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(buf, sizeof buf, f) != NULL &&
		    (close_paren = strrchr(buf, ')')) != NULL &&
		    sscanf(close_paren + 1, " %*c %d", &ppid) == 1 && ppid == getpid()) {
			kill((pid_t)pid, SIGKILL);
		}
		fclose(f);
	}
	closedir(proc);
}

void
vmsup_test_guard_children(void)
{
	struct sigaction forward = {.sa_handler = vmsup_test_guard_forward};
	int status = 0;
	pid_t pid;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return; /* no guard then, the test runs as before */
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		prctl(PR_SET_CHILD_SUBREAPER, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		return;
	}
	vmsup_test_guarded = pid;
	sigaction(SIGTERM, &forward, NULL);
	sigaction(SIGINT, &forward, NULL);
	sigaction(SIGHUP, &forward, NULL);

	/* reap whatever falls to us until the test itself ends */
	for (;;) {
		pid_t done = waitpid(-1, &status, 0);
		if (done == pid)
			break;
		if (done < 0 && errno != EINTR)
			break;
	}
	/* a killed child may leave orphans of its own, which then fall to us too */
	for (;;) {
		pid_t reaped;

		vmsup_test_guard_kill_children();
		while ((reaped = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (reaped < 0 && errno == ECHILD)
			break;
		g_usleep(10 * 1000);
	}
	if (WIFSIGNALED(status)) {
		signal(WTERMSIG(status), SIG_DFL);
		raise(WTERMSIG(status));
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}
