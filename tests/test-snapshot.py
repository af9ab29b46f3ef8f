#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Snapshots against a real vmsupd, real QEMU and the bundled guest (TAP).

    test-snapshot.py --vmsupd PATH --vmsup PATH [--case NAME]

Each case starts its own vmsupd on a private state and runtime directory
(session mode, TCG, no D-Bus) and kills every QEMU it caused by pid:

  memory      a file written in the guest through exec, a snapshot with
              memory, the file changed, the snapshot restored: the first
              content is back with the guest running, its clock set; list
              shows the fields
  disk        a disk-only snapshot of a stopped VM: the disk written with
              qemu-io, the snapshot restored, the write gone
  refusals    bad, hostile and unknown names, a definition changed since
              the snapshot (refused, nothing changed), a busy VM, delete
  crash       vmsupd killed with SIGKILL while a create writes the memory:
              after a restart the snapshot is absent and nothing of it is
              left; one completed before is listed still
  full        the state directory a small tmpfs: the save fails, the VM
              runs on, no snapshot and no file are left
  warm        vm.start {snapshot} of a stopped VM: the agent answers with
              the content saved; vmsup snapshot create with progress and
              vmsup start --snapshot
  cli         vmsup snapshot create|list|restore|delete on a stopped VM:
              its lines, tables, --json, exit codes and refusals

Waits scale with VMSUP_TEST_TIMEOUT_MULTIPLIER.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

MULTIPLIER = float(os.environ.get("VMSUP_TEST_TIMEOUT_MULTIPLIER", "1"))
# the bundled guest's agent answers 3 s after a cold boot under TCG; 2 busy cores
BOOT_BUDGET_S = 60 * MULTIPLIER
CALL_BUDGET_S = 120 * MULTIPLIER
GUEST_MIB = 128

ERR_NOT_FOUND = 1
ERR_ALREADY_EXISTS = 2
ERR_INVALID_ARGUMENT = 3
ERR_BUSY = 4
ERR_FAILED_PRECONDITION = 5
ERR_INVALID_PARAMS = -32602

# vmsup(1)'s exit codes
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_ALREADY_EXISTS = 4
EXIT_INVALID_ARGUMENT = 5
EXIT_FAILED_PRECONDITION = 7

# names that must never reach a path, a qcow2 tag or a QMP argument
# (a NUL is refused as JSON-RPC's invalid params, before any name rule)
HOSTILE_NAMES = ["../up", "..", ".hidden", "a/b", "-rf", "a b", "a\nb", "Caps",
                 "x" * 300, "s\u00e9", "a;rm", "$(id)", "a'b", "vmsup-x,y"]


class Failure(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class RpcError(Exception):
    def __init__(self, error):
        super().__init__(error.get("message"))
        self.code = error.get("code")
        self.message = error.get("message", "")


class Rpc:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(CALL_BUDGET_S)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self.next_id = 0

    def close(self):
        self.file.close()
        self.sock.close()

    def call(self, method, params=None):
        self.next_id += 1
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method,
                   "params": params or {}}
        self.file.write((json.dumps(request) + "\n").encode())
        self.file.flush()
        while True:
            line = self.file.readline()
            check(line, f"vmsupd closed the connection during {method}")
            reply = json.loads(line)
            if reply.get("id") != self.next_id:
                continue
            if "error" in reply:
                raise RpcError(reply["error"])
            return reply["result"]

    def fails(self, method, params, code, needle=None):
        try:
            self.call(method, params)
        except RpcError as e:
            check(e.code == code, f"{method} {params}: code {e.code}, not {code}: {e.message}")
            if needle is not None:
                check(needle in e.message, f"{method}: {needle!r} not in {e.message!r}")
            return e.message
        raise Failure(f"{method} {params} did not fail")


class Daemon:
    def __init__(self, vmsupd, work, state=None):
        self.vmsupd = vmsupd
        self.work = work
        self.state = state or os.path.join(work, "state")
        self.runtime = os.path.join(work, "run")
        self.socket = os.path.join(work, "vmsupd.sock")
        self.proc = None
        self.qemu_pids = set()
        os.makedirs(self.state, exist_ok=True)
        with open(os.path.join(work, "vmsupd.conf"), "w") as f:
            f.write("[vmsupd]\nAccel=tcg\n")

    def start(self):
        log = open(os.path.join(self.work, "vmsupd.log"), "ab")
        argv = [self.vmsupd, "--session", "--no-dbus", "--state-dir", self.state,
                "--runtime-dir", self.runtime, "--socket", self.socket,
                "--config", os.path.join(self.work, "vmsupd.conf")]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30 * MULTIPLIER
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, "vmsupd exited at start:\n" + self.log_tail())
            try:
                r = Rpc(self.socket)
                r.call("daemon.info")
                return r
            except (OSError, RpcError):
                time.sleep(0.1)
        raise Failure("vmsupd did not answer")

    def log_tail(self):
        try:
            with open(os.path.join(self.work, "vmsupd.log"), errors="replace") as f:
                return "".join(f.readlines()[-30:])
        except OSError:
            return ""

    def cli(self, vmsup, *args):
        env = dict(os.environ, VMSUP_SOCKET=self.socket, LC_ALL="C.UTF-8", TERM="dumb")
        env.pop("LANGUAGE", None)
        return subprocess.run([vmsup, *args], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=CALL_BUDGET_S)

    def note_qemu(self, r, name):
        vm = r.call("vm.get", {"name": name})
        if "pid" in vm:
            self.qemu_pids.add(vm["pid"])
        return vm

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.qemu_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def exec_out(r, name, script, timeout_s=10):
    result = r.call("vm.exec", {"name": name, "argv": ["/bin/sh", "-c", script],
                                "timeout_s": int(timeout_s * MULTIPLIER)})
    check(result["exit_code"] == 0, f"{script!r} in the guest: {result}")
    return result["stdout"]


def boot(d, r, name, **extra):
    params = {"name": name, "memory_mib": GUEST_MIB, "wait": True}
    params.update(extra)
    r.call("vm.create", params)
    r.call("vm.start", {"name": name})
    d.note_qemu(r, name)
    wait_agent(r, name, BOOT_BUDGET_S)


def wait_agent(r, name, budget):
    deadline = time.monotonic() + budget
    while True:
        try:
            return exec_out(r, name, "true", timeout_s=5)
        except RpcError:
            check(time.monotonic() < deadline, f"the agent of {name} did not answer")
            time.sleep(0.2)


def state_files(d, name):
    path = os.path.join(d.state, "snapshots", name)
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def disk_tags(disk):
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", disk],
                         capture_output=True, text=True, check=True).stdout
    return [s["name"] for s in json.loads(out).get("snapshots", [])]


def snapshot_names(r, name):
    return [s["name"] for s in r.call("snapshot.list", {"name": name})["snapshots"]]


# the cases


def case_memory(d, r):
    boot(d, r, "mem", disk_gib=1)
    exec_out(r, "mem", "echo first > /root/f")
    made = r.call("snapshot.create", {"name": "mem", "snapshot": "s1", "memory": True,
                                      "wait": True})
    check(made["snapshot"] == "s1" and made["vm"] == "mem", f"create answered {made}")
    op = r.call("op.get", {"id": made["operation"]})
    check(op["kind"] == "snapshot.create" and op["state"] == "done", f"operation {op}")
    check(r.call("vm.get", {"name": "mem"})["state"] == "running", "the VM runs on")
    entries = r.call("snapshot.list", {"name": "mem"})["snapshots"]
    check(len(entries) == 1, f"one snapshot listed: {entries}")
    entry = entries[0]
    for member in ("name", "created", "created_unix", "memory", "disk", "size", "vm_state"):
        check(member in entry, f"snapshot.list has no {member}: {entry}")
    check(entry["memory"] is True and entry["disk"] is True, f"memory and disk: {entry}")
    check(entry["vm_state"] == "running", f"vm_state {entry['vm_state']}")
    check(entry["size"] > 1024 * 1024, f"the saved state is {entry['size']} bytes")
    check(abs(entry["created_unix"] - time.time()) < 60, f"created {entry['created_unix']}")
    check(state_files(d, "mem") == ["s1.state"], f"state files {state_files(d, 'mem')}")

    exec_out(r, "mem", "echo second > /root/f")
    check(exec_out(r, "mem", "cat /root/f") == "second\n", "the file changed")
    time.sleep(2)
    restored = r.call("snapshot.restore", {"name": "mem", "snapshot": "s1", "wait": True})
    check(restored["snapshot"] == "s1", f"restore answered {restored}")
    d.note_qemu(r, "mem")
    check(r.call("vm.get", {"name": "mem"})["state"] == "running", "restored VM runs")
    check(exec_out(r, "mem", "cat /root/f") == "first\n", "the first content is back")
    # the guest resumed with the clock of the save; the agent set it again
    guest_now = int(exec_out(r, "mem", "date +%s"))
    check(abs(guest_now - time.time()) < 2 * MULTIPLIER + 1,
          f"guest clock {guest_now}, host {time.time():.0f}")


def case_disk(d, r):
    r.call("vm.create", {"name": "dsk", "memory_mib": GUEST_MIB, "disk_gib": 1, "wait": True})
    disk = r.call("vm.get", {"name": "dsk"})["disk"]
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 64k", disk],
                   check=True, capture_output=True)
    made = r.call("snapshot.create", {"name": "dsk", "snapshot": "d1", "wait": True})
    check(made["snapshot"] == "d1", f"create answered {made}")
    entry = r.call("snapshot.list", {"name": "dsk"})["snapshots"][0]
    check(entry["memory"] is False and entry["disk"] is True, f"disk only: {entry}")
    check(entry["vm_state"] == "stopped", f"vm_state {entry['vm_state']}")
    check("vmsup-d1" in disk_tags(disk), f"tags {disk_tags(disk)}")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x22 0 64k", disk],
                   check=True, capture_output=True)
    r.call("snapshot.restore", {"name": "dsk", "snapshot": "d1", "wait": True})
    check(r.call("vm.get", {"name": "dsk"})["state"] == "defined", "the VM stays stopped")
    read = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "read -P 0x11 0 64k", disk],
                          capture_output=True, text=True)
    check(read.returncode == 0 and "Pattern verification failed" not in read.stdout,
          f"the disk is back to the snapshot: {read.stdout}")
    # a disk-only snapshot has no running state to start from
    r.fails("vm.start", {"name": "dsk", "snapshot": "d1"}, ERR_FAILED_PRECONDITION,
            "only the disk")


def case_refusals(d, r):
    boot(d, r, "ref")
    r.fails("snapshot.create", {"name": "ref", "snapshot": "Bad/Name"}, ERR_INVALID_ARGUMENT,
            "snapshot name")
    r.fails("snapshot.create", {"name": "ref", "snapshot": ""}, ERR_INVALID_ARGUMENT)
    for bad in HOSTILE_NAMES:
        for method in ("snapshot.create", "snapshot.restore", "snapshot.delete", "vm.start"):
            r.fails(method, {"name": "ref", "snapshot": bad}, ERR_INVALID_ARGUMENT)
    r.fails("snapshot.create", {"name": "ref", "snapshot": "a\x00b"}, ERR_INVALID_PARAMS, "NUL")
    check(snapshot_names(r, "ref") == [] and state_files(d, "ref") == [],
          f"hostile names left {state_files(d, 'ref')}")
    check(r.call("vm.get", {"name": "ref"})["state"] == "running", "the VM runs on")
    r.fails("snapshot.restore", {"name": "ref", "snapshot": "nope"}, ERR_NOT_FOUND, "nope")
    r.fails("snapshot.delete", {"name": "ref", "snapshot": "nope"}, ERR_NOT_FOUND, "nope")
    r.fails("snapshot.list", {"name": "no-such-vm"}, ERR_NOT_FOUND)
    # no disk: a disk-only snapshot would hold nothing
    r.fails("snapshot.create", {"name": "ref", "snapshot": "x", "memory": False},
            ERR_FAILED_PRECONDITION, "no disk")
    exec_out(r, "ref", "echo kept > /root/f")
    # busy: a second request while the first holds the VM
    first = r.call("snapshot.create", {"name": "ref", "snapshot": "r1"})
    r.fails("snapshot.create", {"name": "ref", "snapshot": "r2"}, ERR_BUSY, "busy")
    deadline = time.monotonic() + CALL_BUDGET_S
    while r.call("op.get", {"id": first["operation"]})["state"] == "running":
        check(time.monotonic() < deadline, "the create did not end")
        time.sleep(0.05)
    check(r.call("op.get", {"id": first["operation"]})["state"] == "done", "r1 done")
    r.fails("snapshot.create", {"name": "ref", "snapshot": "r1"}, ERR_ALREADY_EXISTS)
    # a definition changed since: refused, nothing changes
    r.call("vm.stop", {"name": "ref", "force": True})
    r.call("vm.set", {"name": "ref", "memory_mib": GUEST_MIB + 32})
    r.fails("snapshot.restore", {"name": "ref", "snapshot": "r1"}, ERR_FAILED_PRECONDITION,
            "memory_mib")
    r.fails("vm.start", {"name": "ref", "snapshot": "r1"}, ERR_FAILED_PRECONDITION,
            "memory_mib")
    check(r.call("vm.get", {"name": "ref"})["state"] == "stopped", "nothing started")
    check(snapshot_names(r, "ref") == ["r1"], "the snapshot stays")
    cpus = r.call("vm.get", {"name": "ref"})["cpus"]
    r.call("vm.set", {"name": "ref", "memory_mib": GUEST_MIB, "cpus": cpus + 1})
    r.fails("vm.start", {"name": "ref", "snapshot": "r1"}, ERR_FAILED_PRECONDITION, "cpus")
    check(r.call("vm.get", {"name": "ref"})["state"] == "stopped", "nothing started")
    r.call("vm.set", {"name": "ref", "cpus": cpus})
    deleted = r.call("snapshot.delete", {"name": "ref", "snapshot": "r1"})
    check(deleted == {"name": "ref", "snapshot": "r1", "deleted": True}, f"delete {deleted}")
    check(snapshot_names(r, "ref") == [], "deleted: not listed")
    check(state_files(d, "ref") == [], f"deleted: files {state_files(d, 'ref')}")


def case_crash(d, r):
    boot(d, r, "cr", disk_gib=1)
    exec_out(r, "cr", "echo one > /root/f")
    r.call("snapshot.create", {"name": "cr", "snapshot": "kept", "wait": True})
    qemu = d.note_qemu(r, "cr")["pid"]
    tmp = os.path.join(d.state, "snapshots", "cr", "cut.state.tmp")
    # QEMU held still the moment it writes the memory, vmsupd killed mid-create
    r.call("snapshot.create", {"name": "cr", "snapshot": "cut"})
    deadline = time.monotonic() + CALL_BUDGET_S
    while not os.path.exists(tmp):
        check(time.monotonic() < deadline, "the save did not begin")
        time.sleep(0.001)
    os.kill(qemu, signal.SIGSTOP)
    try:
        d.kill9()
    finally:
        os.kill(qemu, signal.SIGCONT)
    r.close()
    r = d.start()
    names = snapshot_names(r, "cr")
    check(names == ["kept"], f"after the crash: {names}")
    check(state_files(d, "cr") == ["kept.state"], f"files left: {state_files(d, 'cr')}")
    vm = d.note_qemu(r, "cr")
    check(vm.get("pid") == qemu, "the QEMU was adopted")
    # the guest was held for the save: resume it, and it is sane
    if vm["state"] == "paused":
        r.call("vm.resume", {"name": "cr"})
    check(exec_out(r, "cr", "cat /root/f") == "one\n", "the guest runs on")
    r.call("snapshot.create", {"name": "cr", "snapshot": "cut", "wait": True})
    check(snapshot_names(r, "cr") == ["kept", "cut"], "the name can be used again")
    r.close()


def case_full(d, r):
    boot(d, r, "full")
    before = state_files(d, "full")
    msg = r.fails("snapshot.create", {"name": "full", "snapshot": "big", "wait": True},
                  ERR_FAILED_PRECONDITION, "space")
    print(f"# full disk: {msg}")
    check(r.call("vm.get", {"name": "full"})["state"] == "running", "the VM runs on")
    check(exec_out(r, "full", "echo alive") == "alive\n", "the guest answers")
    check(snapshot_names(r, "full") == [], "no snapshot listed")
    check(state_files(d, "full") == before, f"files left: {state_files(d, 'full')}")


def case_warm(d, r, vmsup):
    boot(d, r, "warm", disk_gib=1)
    exec_out(r, "warm", "echo saved > /root/f")
    # the CLI waits with progress on stderr, one line per stage off a terminal
    made = d.cli(vmsup, "snapshot", "create", "warm", "ready")
    check(made.returncode == EXIT_OK, f"vmsup snapshot create: {made.returncode} {made.stderr}")
    check("Snapshot 'ready' of VM 'warm' created" in made.stdout, f"its line: {made.stdout!r}")
    check("saving memory (" in made.stderr, f"its progress: {made.stderr!r}")
    check(snapshot_names(r, "warm") == ["ready"], "listed")
    r.call("vm.stop", {"name": "warm", "force": True})
    check(r.call("vm.get", {"name": "warm"})["state"] == "stopped", "stopped")
    t0 = time.monotonic()
    vm = r.call("vm.start", {"name": "warm", "snapshot": "ready"})
    d.note_qemu(r, "warm")
    check(vm["state"] == "running", f"started from the snapshot: {vm['state']}")
    out = exec_out(r, "warm", "cat /root/f")
    took = time.monotonic() - t0
    check(out == "saved\n", f"the saved content: {out!r}")
    # a boot takes seconds; the restore only loads the memory
    check(took < 3 * MULTIPLIER, f"vm.start from the snapshot to the agent took {took:.2f} s")
    print(f"# warm start to agent: {took:.3f} s")
    r.fails("vm.start", {"name": "warm", "snapshot": "ready"}, ERR_FAILED_PRECONDITION,
            "running already")
    # the same through vmsup start --snapshot
    exec_out(r, "warm", "echo later > /root/f")
    r.call("vm.stop", {"name": "warm", "force": True})
    started = d.cli(vmsup, "start", "warm", "--snapshot", "ready")
    d.note_qemu(r, "warm")
    check(started.returncode == EXIT_OK, f"vmsup start --snapshot: {started.stderr}")
    check(started.stdout == "VM 'warm' started from snapshot 'ready'\n", started.stdout)
    check(exec_out(r, "warm", "cat /root/f") == "saved\n", "the saved content again")
    again = d.cli(vmsup, "start", "warm", "--snapshot", "ready")
    check(again.returncode == EXIT_FAILED_PRECONDITION and "snapshot restore" in again.stderr,
          f"a running VM: {again.returncode} {again.stderr}")
    # the VM's delete takes its snapshots along
    r.call("vm.delete", {"name": "warm", "force": True})
    check(not os.path.exists(os.path.join(d.state, "snapshots", "warm.json")), "record gone")
    check(not os.path.exists(os.path.join(d.state, "snapshots", "warm")), "states gone")


def case_workspace(d, r, vmsup):
    share = os.path.join(d.work, "share")
    os.makedirs(share, exist_ok=True)
    done = d.cli(vmsup, "--json", "workspace", "create", "ws", "--path", share, "--memory",
                 str(GUEST_MIB))
    check(done.returncode == EXIT_OK, f"workspace create: {done.stderr}")
    done = d.cli(vmsup, "--json", "workspace", "open", "ws")
    check(done.returncode == EXIT_OK, f"workspace open: {done.stderr}")
    vm = json.loads(done.stdout)["vm"]
    d.note_qemu(r, vm)
    wait_agent(r, vm, BOOT_BUDGET_S)
    # a mounted 9p share blocks saving the memory: refused before anything is made
    r.fails("snapshot.create", {"name": vm, "snapshot": "w1", "memory": True},
            ERR_FAILED_PRECONDITION, "disk-only")
    check(snapshot_names(r, vm) == [] and state_files(d, vm) == [],
          f"a refused snapshot left {state_files(d, vm)}")
    check(r.call("vm.get", {"name": vm})["state"] == "running", "the workspace VM runs on")


def case_cli(d, r, vmsup):
    r.call("vm.create", {"name": "c", "memory_mib": GUEST_MIB, "disk_gib": 1, "wait": True})
    disk = r.call("vm.get", {"name": "c"})["disk"]

    def run(expect, *args):
        done = d.cli(vmsup, *args)
        check(done.returncode == expect,
              f"vmsup {' '.join(args)}: exit {done.returncode}, not {expect}: {done.stderr}")
        return done

    out = run(EXIT_OK, "snapshot", "create", "c", "s1").stdout
    check(out == "Snapshot 's1' of VM 'c' created; go back to it with "
          "'vmsup snapshot restore c s1'\n", f"create: {out!r}")
    check("vmsup-s1" in disk_tags(disk), f"tags {disk_tags(disk)}")
    table = run(EXIT_OK, "snapshot", "list", "c").stdout.splitlines()
    check(table[0].split() == ["NAME", "CREATED", "MEMORY", "DISK", "SIZE", "VM", "STATE"],
          f"header {table[0]!r}")
    check(table[1].split()[0] == "s1" and table[1].split()[-4:] == ["no", "yes", "-",
                                                                     "stopped"],
          f"row {table[1]!r}")
    out = run(EXIT_OK, "snapshot", "list", "c", "-o", "name,memory", "--no-headers").stdout
    check(out.split() == ["s1", "no"], f"-o: {out!r}")
    listed = json.loads(run(EXIT_OK, "--json", "snapshot", "list", "c").stdout)
    check(listed == r.call("snapshot.list", {"name": "c"}), f"--json: {listed}")
    made = json.loads(run(EXIT_OK, "snapshot", "create", "c", "s2", "--json").stdout)
    check(made["snapshot"] == "s2" and made["vm"] == "c" and made["operation"] > 0,
          f"create --json: {made}")
    check(run(EXIT_OK, "snapshot", "create", "c", "s2b", "--disk-only", "-q").stdout == "",
          "-q prints nothing")

    # refusals: each says what to do, and leaves the snapshots as they were
    before = r.call("snapshot.list", {"name": "c"})
    run(EXIT_ALREADY_EXISTS, "snapshot", "create", "c", "s1")
    for bad in ("../up", "a/b", "Caps", "x" * 300):
        run(EXIT_INVALID_ARGUMENT, "snapshot", "create", "c", bad)
        run(EXIT_INVALID_ARGUMENT, "snapshot", "restore", "c", bad)
        run(EXIT_INVALID_ARGUMENT, "start", "c", "--snapshot", bad)
    run(EXIT_USAGE, "snapshot", "create", "c", "s3", "--memory", "--disk-only")
    err = run(EXIT_USAGE, "snapshot", "create", "c").stderr
    check("snapshot name" in err, f"a missing name: {err!r}")
    run(EXIT_USAGE, "snapshot", "frobnicate")
    run(EXIT_FAILED_PRECONDITION, "snapshot", "create", "c", "s3", "--memory")
    err = run(EXIT_FAILED_PRECONDITION, "start", "c", "--snapshot", "s1").stderr
    check("only the disk" in err, f"a disk-only warm start: {err!r}")
    run(EXIT_NOT_FOUND, "snapshot", "restore", "c", "nope")
    run(EXIT_NOT_FOUND, "snapshot", "list", "nope")
    check(r.call("snapshot.list", {"name": "c"}) == before, "the refusals changed nothing")
    check(r.call("vm.get", {"name": "c"})["state"] == "defined", "nothing started")

    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x33 0 64k", disk],
                   check=True, capture_output=True)
    out = run(EXIT_OK, "snapshot", "restore", "c", "s1").stdout
    check(out == "VM 'c' restored to snapshot 's1'\n", f"restore: {out!r}")
    read = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "read -P 0x33 0 64k", disk],
                          capture_output=True, text=True)
    check("Pattern verification failed" in read.stdout, "the write is gone")

    # --no-wait: the operation's id, which op.get follows to its end
    op_id = int(run(EXIT_OK, "-q", "snapshot", "create", "c", "s4", "--no-wait").stdout)
    deadline = time.monotonic() + CALL_BUDGET_S
    while r.call("op.get", {"id": op_id})["state"] == "running":
        check(time.monotonic() < deadline, "the create did not end")
        time.sleep(0.05)
    check(r.call("op.get", {"id": op_id})["kind"] == "snapshot.create", "its operation")

    out = run(EXIT_OK, "snapshot", "delete", "c", "s1").stdout
    check(out == "Snapshot 's1' of VM 'c' deleted\n", f"delete: {out!r}")
    run(EXIT_NOT_FOUND, "snapshot", "delete", "c", "s1")
    check(snapshot_names(r, "c") == ["s2", "s2b", "s4"], f"left {snapshot_names(r, 'c')}")
    check("vmsup-s1" not in disk_tags(disk), f"tags {disk_tags(disk)}")


CASES = [
    ("memory", case_memory, False),
    ("disk", case_disk, False),
    ("refusals", case_refusals, False),
    ("crash", case_crash, False),
    ("full", case_full, True),
    ("warm", case_warm, False),
    ("cli", case_cli, False),
    ("workspace", case_workspace, False),
]


def run_case(vmsupd, vmsup, name, func, tmpfs):
    work = tempfile.mkdtemp(prefix=f"vmsup-snap-{name}-")
    state = os.path.join(work, "state")
    mounted = False
    d = None
    try:
        if tmpfs:
            os.makedirs(state)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", state],
                           check=True)
            mounted = True
        d = Daemon(vmsupd, work, state)
        r = d.start()
        try:
            if func in (case_warm, case_cli, case_workspace):
                func(d, r, vmsup)
            else:
                func(d, r)
        finally:
            r.close()
    except Exception:
        if d is not None:
            sys.stderr.write(d.log_tail())
        raise
    finally:
        if d is not None:
            d.stop()
        if mounted:
            subprocess.run(["umount", state], check=False)
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vmsupd", required=True)
    parser.add_argument("--vmsup", required=True)
    parser.add_argument("--case", action="append")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.case or c[0] in args.case]
    print(f"1..{len(cases)}")
    failed = 0
    for i, (name, func, tmpfs) in enumerate(cases, 1):
        t0 = time.monotonic()
        try:
            run_case(args.vmsupd, args.vmsup, name, func, tmpfs)
            print(f"ok {i} - {name} ({time.monotonic() - t0:.1f} s)")
        except (Failure, RpcError, OSError, subprocess.CalledProcessError) as e:
            failed += 1
            print(f"not ok {i} - {name}: {e}")
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
