# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the Python tests share: the suite's timeout multiplier, a failure
that names what did not hold, and vmsup's exit codes (src/cli/vmsup-cli.h)."""

import os
import subprocess
import time

MULTIPLIER = float(os.environ.get("VMSUP_TEST_TIMEOUT_MULTIPLIER", "1"))

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_ALREADY_EXISTS = 4
EXIT_INVALID_ARGUMENT = 5
EXIT_BUSY = 6
EXIT_FAILED_PRECONDITION = 7
EXIT_CANCELLED = 8
EXIT_NO_DAEMON = 10


class Failure(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class SessionEnv:
    """A session vmsupd of the build on private directories under @work, and
    vmsup run against it; @args has .vmsupd and .vmsup."""

    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.state = os.path.join(work, "state")
        self.run_dir = os.path.join(work, "run")
        self.socket = os.path.join(self.run_dir, "vmsupd.sock")
        self.env = dict(os.environ, VMSUP_SOCKET=self.socket, LC_ALL="C", LANGUAGE="")
        self.daemon = None

    def start_daemon(self):
        os.makedirs(self.run_dir, mode=0o700)
        log = open(os.path.join(self.work, "vmsupd.log"), "w")
        self.daemon = subprocess.Popen(
            [self.args.vmsupd, "--session", "--no-dbus", "--state-dir", self.state,
             "--runtime-dir", self.run_dir, "--socket", self.socket],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 30 * MULTIPLIER
        while not os.path.exists(self.socket):
            check(self.daemon.poll() is None, "vmsupd exited at start")
            check(time.monotonic() < deadline, "vmsupd made no socket")
            time.sleep(0.1)

    def vmsup(self, *argv, timeout=None):
        return subprocess.run([self.args.vmsup] + list(argv), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=self.env, timeout=timeout or 120 * MULTIPLIER)
