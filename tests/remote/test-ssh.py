#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""vmsup --connect ssh://… through a real sshd on loopback.

    test-ssh.py --vmsupd PATH --vmsup PATH

A private vmsupd (session mode, its own socket) and a private sshd
(tests/remote/vmsup_sshd.py: its own host key, config and authorized key;
the session's PATH starts with the built vmsup, so the remote `vmsup
bridge` is this build's). The client side is the built vmsup with a plain
`ssh` in PATH reading the test's ssh_config and known_hosts.

Through ssh: list, create (the bundled guest, with progress), an events
stream that sees the start, start, list, a remote error with its exit code
and --json, stop, delete, each checked against the daemon's own socket too,
and no ssh left behind. Then the failures, each naming its side: wrong URIs
(usage errors naming the part), a port nothing listens on, a host key
known_hosts does not pin, no vmsup on the remote, the remote daemon down
(a socket nobody listens on, then the daemon stopped), and sshd's session killed under a waiting `vmsup events` (exit 10, no
hang). Waits scale with VMSUP_TEST_TIMEOUT_MULTIPLIER.
"""

import argparse
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import vmsup_sshd  # noqa: E402
from vmsup_testlib import (EXIT_FAILED_PRECONDITION, EXIT_NO_DAEMON, EXIT_NOT_FOUND,  # noqa: E402
                           EXIT_OK, EXIT_USAGE, MULTIPLIER, Failure, check)

# one vmsup call over ssh: a login (about 1 s on a busy 2-core machine) and the call
CALL_TIMEOUT_S = 60 * MULTIPLIER
EVENT_TIMEOUT_S = 60 * MULTIPLIER


def step(text):
    print("# %s %s" % (time.strftime("%H:%M:%S"), text), flush=True)


class Env:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.socket = os.path.join(work, "vmsupd.sock")
        self.run_dir = os.path.join(work, "run")
        self.state = os.path.join(work, "state")
        self.base_env = dict(os.environ, LC_ALL="C", LANGUAGE="")
        self.base_env.pop("VMSUP_SOCKET", None)
        self.base_env.pop("VMSUP_CONNECT", None)
        self.daemon = None
        self.sshd = None

    def start_daemon(self):
        os.makedirs(self.run_dir, mode=0o700)
        config = os.path.join(self.work, "vmsupd.conf")
        with open(config, "w") as f:
            f.write("[vmsupd]\nAccel=tcg\n")
        self.daemon_log = open(os.path.join(self.work, "vmsupd.log"), "w")
        self.daemon = subprocess.Popen(
            [self.args.vmsupd, "--session", "--no-dbus", "--state-dir", self.state,
             "--runtime-dir", self.run_dir, "--socket", self.socket, "--config", config],
            stdin=subprocess.DEVNULL, stdout=self.daemon_log, stderr=subprocess.STDOUT,
            env=self.base_env)
        deadline = time.monotonic() + 30 * MULTIPLIER
        while not os.path.exists(self.socket):
            check(self.daemon.poll() is None, "vmsupd exited at start")
            check(time.monotonic() < deadline, "vmsupd made no socket")
            time.sleep(0.05)

    def uri(self, port=None, socket=None, host="127.0.0.1", user="root"):
        return "ssh://%s@%s:%d?socket=%s" % (user, host, port or self.sshd.port,
                                             socket or self.socket)

    def client_env(self, extra=None):
        env = self.sshd.client_env(self.base_env)
        env.update(extra or {})
        return env

    def vmsup(self, *argv, env=None, timeout=CALL_TIMEOUT_S):
        """vmsup here, as a user runs it: a plain ssh in PATH, no VMSUP_SOCKET."""
        return subprocess.run([self.args.vmsup] + list(argv), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=self.client_env(env), timeout=timeout)

    def remote(self, *argv, timeout=CALL_TIMEOUT_S):
        return self.vmsup("--connect", self.uri(), *argv, timeout=timeout)

    def local(self, *argv):
        """The same daemon through its socket, to check what the remote calls did."""
        env = dict(self.base_env, VMSUP_SOCKET=self.socket)
        return subprocess.run([self.args.vmsup] + list(argv), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, timeout=CALL_TIMEOUT_S)

    def qemu_pids(self):
        return [pid for pid, argv in vmsup_sshd.processes()
                if argv and b"qemu-system" in argv[0] and self.work.encode() in b" ".join(argv)]

    def stop(self):
        for pid in self.qemu_pids():
            os.kill(pid, signal.SIGKILL)
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(30 * MULTIPLIER)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()


def expect(proc, code, words, what, stream="stderr"):
    text = getattr(proc, stream)
    check(proc.returncode == code, "%s: exit %d, not %d\nstdout: %s\nstderr: %s"
          % (what, proc.returncode, code, proc.stdout, proc.stderr))
    for w in words:
        check(w in text, "%s: %r not in its %s: %s" % (what, w, stream, text))


def ssh_processes(port):
    """ssh clients of this test's sshd still running (by the port on their command line)."""
    return [pid for pid, argv in vmsup_sshd.processes()
            if argv and os.path.basename(argv[0]) == b"ssh" and str(port).encode() in argv]


class Lines:
    """A child's stdout read by a thread, so that waits on it have a deadline."""

    def __init__(self, proc):
        self.queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            self.queue.put(line)
        self.queue.put(None)

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            check(left > 0, "timed out waiting for %s" % what)
            try:
                line = self.queue.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            check(line is not None, "the stream ended before %s" % what)
            event = json.loads(line)
            if predicate(event):
                return event


def vm_event(name, state=None):
    def predicate(event):
        params = event.get("params") or {}
        if event.get("method") != "event.vm-changed" or params.get("name") != name:
            return False
        return state is None or (params.get("vm") or {}).get("state") == state
    return predicate


def the_remote_verbs(env):
    step("list, --json list, VMSUP_CONNECT, the option winning")
    proc = env.remote("list")
    expect(proc, EXIT_OK, ["NAME", "STATE"], "list", "stdout")
    proc = env.vmsup("--json", "list", env={"VMSUP_CONNECT": env.uri()})
    expect(proc, EXIT_OK, [], "VMSUP_CONNECT list")
    check(json.loads(proc.stdout) == {"vms": []}, "--json list: %r" % proc.stdout)
    proc = env.vmsup("--connect", env.uri(), "list", env={"VMSUP_CONNECT": "http://nowhere"})
    expect(proc, EXIT_OK, ["NAME"], "--connect over a bad VMSUP_CONNECT", "stdout")

    step("create through ssh, with its progress")
    proc = env.remote("create", "r1", "--memory", "128")
    expect(proc, EXIT_OK, ["VM 'r1' created"], "create", "stdout")
    check("saving the definition" in proc.stderr, "create: no progress: %r" % proc.stderr)
    proc = env.local("--json", "get", "r1")
    check(proc.returncode == 0 and json.loads(proc.stdout)["name"] == "r1",
          "the daemon has no r1: %s" % proc.stderr)

    step("events through ssh: live first, then the start")
    events = subprocess.Popen([env.args.vmsup, "--connect", env.uri(), "--json", "events"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env.client_env())
    try:
        lines = Lines(events)
        # a change made through the local socket until the stream shows one: then it is live
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        cpus = 1
        while True:
            check(time.monotonic() < deadline, "no event came through ssh")
            if events.poll() is not None:
                raise Failure("vmsup events exited: %s" % events.stderr.read())
            cpus = 3 - cpus
            check(env.local("set", "r1", "--cpus", str(cpus)).returncode == 0, "set --cpus")
            try:
                lines.wait_for(vm_event("r1"), 2 * MULTIPLIER, "an r1 event")
                break
            except Failure:
                continue
        proc = env.remote("start", "r1")
        expect(proc, EXIT_OK, ["VM 'r1' started"], "start", "stdout")
        lines.wait_for(vm_event("r1", "running"), EVENT_TIMEOUT_S, "r1 running in events")

        step("list, a remote error with its exit code, --json")
        proc = env.remote("list")
        expect(proc, EXIT_OK, ["r1", "running"], "list with r1", "stdout")
        proc = env.remote("get", "nosuch")
        expect(proc, EXIT_NOT_FOUND, ["vmsupd: VM 'nosuch' does not exist"], "get nosuch")
        proc = env.remote("--json", "get", "nosuch")
        check(proc.returncode == EXIT_NOT_FOUND and
              json.loads(proc.stdout)["data"]["kind"] == "not-found",
              "--json get nosuch: %d %r" % (proc.returncode, proc.stdout))

        step("shell: the remote host's vmsup logs in, its answer and exit code come back")
        proc = env.remote("shell", "nosuch", "--", "true")
        expect(proc, EXIT_NOT_FOUND, ["VM 'nosuch' does not exist"], "shell nosuch")
        # the bundled guest runs an SSH server: a command's exit status comes back through both hops
        budget = int(120 * MULTIPLIER)
        proc = env.remote("shell", "--timeout", str(budget), "r1", "--", "sh", "-c",
                          "echo in-guest; exit 3", timeout=budget + 60)
        check(proc.returncode == 3 and proc.stdout == "in-guest\n",
              "shell r1 -- sh -c 'exit 3': %d %r %s" % (proc.returncode, proc.stdout, proc.stderr))
        proc = env.remote("create", "r2")
        expect(proc, EXIT_OK, ["VM 'r2' created"], "create r2", "stdout")
        proc = env.remote("shell", "--timeout", "0", "r2", "--", "true")
        expect(proc, EXIT_FAILED_PRECONDITION, ["VM 'r2' is defined, not running"],
               "shell r2 (not running)")
        proc = env.remote("delete", "r2")
        expect(proc, EXIT_OK, ["VM 'r2' deleted"], "delete r2", "stdout")

        step("sshd's sessions killed under a waiting 'vmsup events'")
        check(events.poll() is None, "vmsup events ended early")
        killed = env.sshd.kill_sessions()
        check(killed, "no sshd session to kill")
        try:
            events.wait(timeout=30 * MULTIPLIER)
        except subprocess.TimeoutExpired:
            raise Failure("vmsup events hangs after sshd's session was killed")
        err = events.stderr.read()
        check(events.returncode == EXIT_NO_DAEMON,
              "vmsup events exited %d, not 10: %s" % (events.returncode, err))
        for w in ["cannot reach vmsupd on root@127.0.0.1:%d" % env.sshd.port,
                  "ssh could not connect, log in, or keep the connection",
                  "closed"]:
            check(w in err, "vmsup events: %r not in %s" % (w, err))
    finally:
        if events.poll() is None:
            events.kill()
        events.wait()
        events.stdout.close()
        events.stderr.close()

    step("stop and delete through ssh")
    proc = env.remote("stop", "--force", "r1")
    expect(proc, EXIT_OK, ["VM 'r1' stopped"], "stop", "stdout")
    proc = env.remote("delete", "r1")
    expect(proc, EXIT_OK, ["VM 'r1' deleted"], "delete", "stdout")
    proc = env.local("--json", "list")
    check(json.loads(proc.stdout) == {"vms": []}, "r1 is left: %r" % proc.stdout)
    check(not env.qemu_pids(), "a QEMU is left: %r" % env.qemu_pids())
    check(not ssh_processes(env.sshd.port), "ssh clients are left: %r"
          % ssh_processes(env.sshd.port))


def the_wrong_uris(env):
    step("wrong URIs: usage errors naming the part")
    for uri, words in [
            ("http://127.0.0.1/", ["the scheme 'http'", "ssh://[USER@]HOST"]),
            ("ssh://", ["the host of 'ssh://' is empty"]),
            ("ssh://127.0.0.1:99999", ["the port of"]),
            ("ssh://127.0.0.1:0", ["the port of"]),
            ("ssh://127.0.0.1?sock=/x", ["the query key 'sock' is unknown"]),
            ("ssh://127.0.0.1?socket=relative", ["socket='relative' is not an absolute"]),
            ("ssh://127.0.0.1/system", ["the path '/system'"]),
            ("ssh://root:secret@127.0.0.1", ["password"])]:
        proc = env.vmsup("--connect", uri, "list")
        expect(proc, EXIT_USAGE, ["--connect: "] + words, "--connect %s" % uri)
    proc = env.vmsup("list", env={"VMSUP_CONNECT": "ssh://127.0.0.1:x"})
    expect(proc, EXIT_USAGE, ["VMSUP_CONNECT: ", "the port of"], "VMSUP_CONNECT with a bad port")
    proc = env.vmsup("--connect", env.uri(), "--socket", env.socket, "list")
    expect(proc, EXIT_USAGE, ["?socket=PATH"], "--connect with --socket")


def the_failing_sides(env):
    step("a port nothing listens on: ssh's side")
    port = vmsup_sshd.free_tcp_port()
    proc = env.vmsup("--connect", "ssh://root@127.0.0.1:%d" % port, "list")
    expect(proc, EXIT_NO_DAEMON, ["cannot reach vmsupd on root@127.0.0.1:%d" % port,
                                  "ssh could not connect", "ssh -p %d -l root 127.0.0.1" % port,
                                  "Connection refused"], "a closed port")

    step("a host key known_hosts does not pin: ssh refuses it")
    proc = env.vmsup("--connect", env.uri(host=vmsup_sshd.UNPINNED_HOST), "list")
    expect(proc, EXIT_NO_DAEMON, ["ssh could not connect", "Host key verification failed"],
           "an unpinned host key")

    step("no vmsup on the remote")
    proc = env.vmsup("--connect", env.uri(port=env.sshd.bare_port), "list")
    expect(proc, EXIT_NO_DAEMON, ["no vmsup command there", "exited with 127",
                                  "vmsup: command not found"], "no vmsup there")

    step("the remote daemon down")
    down = os.path.join(env.work, "nobody-listens.sock")
    proc = env.vmsup("--connect", env.uri(socket=down), "list")
    expect(proc, EXIT_NO_DAEMON, ["cannot reach vmsupd on root@127.0.0.1:%d" % env.sshd.port,
                                  "vmsupd does not answer there", "start it on that host",
                                  "cannot connect to vmsupd at %s" % down],
           "the remote daemon down")

    step("the remote daemon stopped: the bridge says so, the client exits 10")
    env.daemon.terminate()
    env.daemon.wait(30 * MULTIPLIER)
    proc = env.remote("list")
    expect(proc, EXIT_NO_DAEMON, ["cannot reach vmsupd on root@127.0.0.1:%d" % env.sshd.port,
                                  "vmsupd does not answer there",
                                  "cannot connect to vmsupd at %s" % env.socket],
           "the remote daemon stopped")
    check(not ssh_processes(env.sshd.port), "ssh clients are left: %r"
          % ssh_processes(env.sshd.port))


def main():
    # meson's timeout is a SIGTERM: the cleanup below still runs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: terminated"))
    parser = argparse.ArgumentParser()
    parser.add_argument("--vmsupd", required=True)
    parser.add_argument("--vmsup", required=True)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="vmsup-ssh-")
    env = Env(args, work)
    ok = False
    try:
        env.start_daemon()
        env.sshd = vmsup_sshd.Sshd(work, [os.path.dirname(os.path.abspath(args.vmsup))],
                                   timeout=30 * MULTIPLIER)
        with env.sshd:
            the_wrong_uris(env)
            the_remote_verbs(env)
            the_failing_sides(env)
        ok = True
    except Failure as exc:
        print("FAIL: %s" % exc, flush=True)
    finally:
        env.stop()
        if not ok:
            for name in ("vmsupd.log", "ssh/sshd.log"):
                try:
                    with open(os.path.join(work, name)) as f:
                        print("--- %s\n%s" % (name, f.read()[-4000:]))
                except OSError:
                    pass
        shutil.rmtree(work, ignore_errors=True)
    print("PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
