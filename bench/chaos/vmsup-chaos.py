#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Chaos harness for vmsupd: random operations from concurrent clients on both
doors (JSON-RPC socket and D-Bus), with vmsupd killed -9 and restarted, QEMUs
killed or frozen, clients hanging up mid-call and the state directory full for
a moment; after every restart and at the end it checks that no VM was lost and
no QEMU orphaned. See bench/README.md (Chaos).

    python3 bench/chaos/vmsup-chaos.py --build-dir _build [--ops N] [--seed S]

The seed fixes the sequence of operations and faults; timing still varies from
run to run, so a replay takes the same steps but not at the same instants.
Exit status: 0 no violation, 1 a violation (or the harness failed), 77 a
prerequisite is missing.
"""

import argparse
import collections
import ctypes
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

BUS_NAME = "io.github.vmsup.Supervisor1"
BUS_PATH = "/io/github/vmsup/Supervisor1"
WS_PREFIX_GUESS = "ws-"
GUEST_MIB = 128
HALT_MIB = 64
TRANSITIONAL = ("starting", "stopping")
LIVE = ("running", "paused")
# what vmsupd keeps of a VM made from an image, in <state>/guests/<name>/
GUEST_FILES = ("seed.img", "OVMF_VARS.fd", "host-keys", "known_hosts")
ERROR_KINDS = {1: "not-found", 2: "already-exists", 3: "invalid-argument", 4: "busy",
               5: "failed-precondition", 6: "cancelled", 7: "timeout", 8: "internal"}
DBUS_METHODS = {"vm.create": "Create", "vm.start": "Start", "vm.stop": "Stop",
                "vm.delete": "Delete", "vm.set": "Set", "vm.get": "Get", "vm.exec": "Exec",
                "workspace.create": "CreateWorkspace", "workspace.open": "OpenWorkspace",
                "workspace.delete": "DeleteWorkspace"}

# what the bus answers while vmsupd is dead or restarting
DBUS_TRANSPORT_ERRORS = ("NoReply", "ServiceUnknown", "NameHasNoOwner", "Disconnected",
                         "Timeout", "TimedOut")


class HarnessError(Exception):
    pass


class Prerequisite(Exception):
    pass


def now():
    return time.monotonic()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------
# /proc


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


def proc_environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def proc_stat(pid):
    """(state, ppid) of @pid, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def become_subreaper():
    """QEMUs outlive a killed vmsupd; as subreaper we, not init, inherit and reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def libc_mount(source, target, fstype, data):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), 0, data.encode()) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def libc_umount(target):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(target.encode(), 2) != 0:  # MNT_DETACH
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


# ---------------------------------------------------------------------------
# the two doors


class CallResult:
    """What one call gave: ok with a result, an error kind from vmsupd, or a transport fault."""

    def __init__(self, ok=False, result=None, kind=None, message=None, transport=False):
        self.ok = ok
        self.result = result
        self.kind = kind
        self.message = message
        self.transport = transport

    @property
    def outcome(self):
        if self.ok:
            return "ok"
        if self.transport:
            return self.kind or "transport"
        return self.kind or "error"

    def __repr__(self):
        if self.ok:
            return f"ok {json.dumps(self.result)[:200]}"
        return f"{self.outcome}: {self.message}"


class RpcConn:
    """Newline-delimited JSON-RPC 2.0 over the socket, one call at a time."""

    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, method, params):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return self.next_id

    def receive(self, req_id):
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("vmsupd closed the connection")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            answer = json.loads(line)
            if answer.get("id") is None and "method" in answer:
                continue  # a notification
            if answer.get("id") != req_id:
                raise ProtocolViolation(f"answer for id {answer.get('id')} while waiting "
                                        f"for {req_id}: {line[:200]!r}")
            return answer

    def call(self, method, params=None):
        try:
            answer = self.receive(self.send(method, params or {}))
        except (OSError, ConnectionError) as e:
            return CallResult(transport=True, kind="transport", message=str(e))
        if "error" in answer:
            err = answer["error"]
            kind = (err.get("data") or {}).get("kind") or ERROR_KINDS.get(err.get("code"),
                                                                          str(err.get("code")))
            return CallResult(kind=kind, message=err.get("message"))
        return CallResult(ok=True, result=answer.get("result"))


class ProtocolViolation(Exception):
    pass


def gvariant_literal(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"int64 {v}"
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(v, list):
        if not v:
            return "@as []"
        return "[" + ", ".join(gvariant_literal(x) for x in v) + "]"
    raise ValueError(f"cannot pass {v!r} to gdbus")


def gvariant_dict(params):
    if not params:
        return "@a{sv} {}"
    return "{" + ", ".join(f"'{k}': <{gvariant_literal(v)}>" for k, v in params.items()) + "}"


def dbus_error_kind(name):
    """io.github.vmsup.Error.AlreadyExists -> already-exists."""
    return re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()


# ---------------------------------------------------------------------------
# the schedule: everything the seed decides


OP_WEIGHTS = [
    ("create", 8), ("start", 14), ("stop", 9), ("force-stop", 7), ("delete", 5),
    ("set", 8), ("exec", 6), ("get", 4), ("cancel-create", 4),
    ("ws-create", 2), ("ws-open", 2), ("ws-delete", 2),
]
FAULT_KINDS = ("qemu-kill", "qemu-freeze", "state-full", "disconnect")


def make_schedule(seed, ops, kills, n_clients, guest_vms, halt_vms, workspaces, faults_on):
    """The whole run as a list of steps; the same seed gives the same list."""
    rng = random.Random(seed)
    kinds = [k for k, _ in OP_WEIGHTS]
    weights = [w for _, w in OP_WEIGHTS]
    kill_at = set(rng.sample(range(max(1, ops // (kills + 1) // 2), ops), kills)) if kills else set()
    steps = []
    for i in range(ops):
        if i in kill_at:
            steps.append({"type": "kill", "again": rng.random() < 0.3,
                          "again_after": rng.uniform(0.0, 0.4)})
        if faults_on and rng.random() < 0.07:
            kind = rng.choice([f for f in FAULT_KINDS if f != "disconnect"])
            steps.append({"type": "fault", "kind": kind, "pick": rng.random(),
                          "duration": rng.uniform(0.5, 2.0) if kind == "state-full"
                          else rng.uniform(1.0, 4.0)})
        kind = rng.choices(kinds, weights)[0]
        step = {"type": "op", "kind": kind, "client": rng.randrange(n_clients),
                "delay": rng.uniform(0.0, 0.15)}
        if kind == "exec":
            step["vm"] = rng.choice(guest_vms)
        elif kind in ("stop", "force-stop", "delete") and rng.random() < 0.8:
            step["vm"] = rng.choice(halt_vms)  # let the guests boot, now and then
        elif kind.startswith("ws-"):
            step["ws"] = rng.choice(workspaces)
        else:
            step["vm"] = rng.choice(guest_vms + halt_vms)
        if kind == "set":
            field = rng.choice(["memory_mib", "cpus", "auto_stop", "cmdline"])
            step["params"] = {
                "memory_mib": lambda: rng.choice([GUEST_MIB, 160, 192]),
                "cpus": lambda: rng.choice([1, 2]),
                "auto_stop": lambda: rng.random() < 0.5,
                "cmdline": lambda: rng.choice(["console=ttyS0 quiet", "console=ttyS0"]),
            }[field]()
            step["field"] = field
        if kind == "create":
            step["wait"] = rng.random() < 0.5
            step["start"] = rng.random() < 0.4
        if kind == "cancel-create":
            step["cancel_after"] = rng.uniform(0.0, 0.3)
        if kind == "exec":
            step["argv"] = rng.choice([["echo", "chaos"], ["cat", "/proc/uptime"],
                                       ["sh", "-c", "exit 3"]])
        if faults_on and rng.random() < 0.05:
            step["disconnect"] = rng.uniform(0.0, 0.2)
        step["index"] = len(steps)
        steps.append(step)
    for i, s in enumerate(steps):
        s["index"] = i
    return steps


# ---------------------------------------------------------------------------
# the harness


class VmModel:
    """What the harness knows of one VM name: defined True/False, or None (not known)."""

    def __init__(self, name, kind):
        self.name = name
        self.kind = kind  # guest | halt
        self.defined = False
        self.inflight = 0
        self.taint = 0


class Chaos:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
        build = os.path.abspath(args.build_dir)
        self.build = build
        self.vmsupd = os.path.join(build, "src", "daemon", "vmsupd")
        self.data_dir = os.path.join(build, "data")
        self.scale = args.timeout_scale
        self.lock = threading.RLock()
        self.vms = {}
        self.workspaces = [f"w{i}" for i in range(args.workspaces)]
        self.ops = collections.defaultdict(collections.Counter)
        self.faults = collections.Counter()
        self.checks = collections.Counter()
        self.violations = []
        self.notes = []
        self.kills = 0
        self.restarts = 0
        self.daemon = None
        self.daemon_log = None
        self.expect_exit = False
        self.dbus_proc = None
        self.tmp = None
        self.mounted = False
        self.frozen = {}
        self.fills = {}
        self.children = set()
        self.children_lock = threading.Lock()
        self.current_step = 0
        self.stop_flag = threading.Event()
        self.tls = threading.local()  # the step a client thread works on
        self.ops_in_flight = {}  # op id -> (vm, generation)
        self.generation = 0
        self.max_step_time = 0.0
        self.slowest = ""

    # -- set-up and tear-down -------------------------------------------------

    def t(self, seconds):
        return seconds * self.scale

    def check_prerequisites(self):
        if not os.access(self.vmsupd, os.X_OK):
            raise Prerequisite(f"vmsupd is not built at {self.vmsupd}; run ninja -C {self.build}")
        for tool in ("qemu-system-x86_64", "qemu-img", "dbus-daemon", "gdbus"):
            if shutil.which(tool) is None:
                raise Prerequisite(f"{tool} is needed")
        guest = os.path.join(self.data_dir, "guest")
        if not (os.path.exists(os.path.join(guest, "initramfs.cpio.gz")) and
                (os.path.exists(os.path.join(guest, "vmlinux")) or
                 os.path.exists(os.path.join(guest, "vmlinuz")))):
            raise Prerequisite(f"the bundled guest is not built in {guest}; configure with "
                               f"-Dguest=enabled")

    def setup(self):
        # short and comma-free: QEMU option strings and sun_path both care
        self.tmp = tempfile.mkdtemp(prefix="vmsup-chaos-", dir="/tmp")
        self.state_dir = os.path.join(self.tmp, "state")
        self.run_dir = os.path.join(self.tmp, "run")
        self.socket_path = os.path.join(self.tmp, "vmsupd.sock")
        self.share_root = os.path.join(self.tmp, "share")
        for d in (self.state_dir, self.run_dir, self.share_root):
            os.makedirs(d)
        for ws in self.workspaces:
            os.makedirs(os.path.join(self.share_root, ws))
        if os.geteuid() == 0:
            libc_mount("tmpfs", self.state_dir, "tmpfs", f"size={self.args.state_mib}m,mode=0700")
            self.mounted = True
        else:
            self.notes.append("not root: the state directory is not a tmpfs and the "
                              "state-full fault is off")
        self.env = dict(os.environ)
        for var, sub in (("XDG_RUNTIME_DIR", "xdg-run"), ("XDG_CONFIG_HOME", "config"),
                         ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "xdg-state"),
                         ("XDG_CACHE_HOME", "cache")):
            self.env[var] = os.path.join(self.tmp, sub)
            os.makedirs(self.env[var], mode=0o700)
        self.env["VMSUP_DATA_DIR"] = self.data_dir
        self.env["VMSUP_SOCKET"] = self.socket_path
        self.env.pop("G_MESSAGES_DEBUG", None)
        self.env["LC_ALL"] = "C"
        self.halt_image = os.path.join(self.tmp, "halt.img")
        sector = bytearray(1024 * 1024)
        sector[0:4] = bytes([0xFA, 0xF4, 0xEB, 0xFD])  # cli; hlt; jmp $-1
        sector[510:512] = b"\x55\xaa"
        with open(self.halt_image, "wb") as f:
            f.write(sector)
        self.conf = os.path.join(self.tmp, "vmsupd.conf")
        with open(self.conf, "w") as f:
            f.write(f"[vmsupd]\nAutoStopStaleAfter=0\nAccel={self.args.accel}\n")
        n = self.args.vms - len(self.workspaces)
        for i in range(n):
            name = f"c{i:02d}"
            self.vms[name] = VmModel(name, "guest" if i < self.args.guests else "halt")
        self.dbus_address = self.start_bus()
        self.env["DBUS_SESSION_BUS_ADDRESS"] = self.dbus_address

    def start_bus(self):
        conf = os.path.join(self.tmp, "bus.conf")
        busdir = os.path.join(self.tmp, "bus")
        os.makedirs(busdir)
        with open(conf, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={busdir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
        with open(os.path.join(self.tmp, "dbus-daemon.log"), "wb") as logf:
            self.dbus_proc = subprocess.Popen(["dbus-daemon", "--config-file", conf, "--nofork",
                                               "--print-address"], stdout=subprocess.PIPE,
                                              stderr=logf, stdin=subprocess.DEVNULL,
                                              start_new_session=True)
        address = self.dbus_proc.stdout.readline().decode().strip()
        if not address:
            raise HarnessError("the private dbus-daemon did not start")
        return address

    def cleanup(self):
        self.stop_flag.set()
        self.thaw_all()
        with self.children_lock:
            kids = list(self.children)
        for p in kids:
            try:
                p.kill()
            except OSError:
                pass
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        if self.tmp is not None:
            pids = self.our_qemus()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = now() + 20
            while any(pid_alive(p) for p in pids) and now() < deadline:
                self.reap()
                time.sleep(0.02)
            self.reap()
        if self.dbus_proc is not None:
            self.dbus_proc.kill()
            self.dbus_proc.wait()
        if self.mounted:
            try:
                libc_umount(self.state_dir)
            except OSError as e:
                log(f"cannot unmount {self.state_dir}: {e}")
        if self.tmp is not None and not self.args.keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- processes --------------------------------------------------------------

    def our_qemus(self):
        """{pid: argv} of every live QEMU whose command line names our directory."""
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            argv = proc_cmdline(entry)
            if not argv or not os.path.basename(argv[0]).startswith("qemu-system"):
                continue
            # the accelerator probe runs in a directory of its own: the environment
            # vmsupd passed on names ours
            if (any(self.tmp in a for a in argv) or self.tmp in proc_environ(entry)) and \
                    pid_alive(int(entry)):
                found[int(entry)] = argv
        return found

    def qemu_vm_name(self, argv):
        marker = os.path.join(self.run_dir, "vms") + "/"
        for a in argv:
            i = a.find(marker)
            if i >= 0:
                return a[i + len(marker):].split("/", 1)[0]
        return None

    def reap(self):
        """Reaps QEMUs that a killed vmsupd left to us and that exited since."""
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            st = proc_stat(entry)
            if st and st[0] == "Z" and st[1] == me:
                pid = int(entry)
                if self.daemon is not None and pid == self.daemon.pid:
                    continue
                with self.children_lock:
                    if any(p.pid == pid for p in self.children):
                        continue
                if self.dbus_proc is not None and pid == self.dbus_proc.pid:
                    continue
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def start_daemon(self):
        self.generation += 1
        self.daemon_log = os.path.join(self.tmp, f"vmsupd-{self.generation}.log")
        argv = [self.vmsupd, "--session", "--state-dir", self.state_dir, "--runtime-dir",
                self.run_dir, "--socket", self.socket_path, "--config", self.conf]
        with open(self.daemon_log, "wb") as logf:
            self.daemon = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                           stdout=logf, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        self.expect_exit = False

    def wait_daemon(self):
        deadline = now() + self.t(60)
        while True:
            if self.daemon.poll() is not None:
                raise HarnessError(f"vmsupd exited with {self.daemon.returncode} at start-up\n"
                                   f"{self.log_tail()}")
            try:
                conn = RpcConn(self.socket_path, self.t(10))
                try:
                    r = conn.call("daemon.info")
                    if r.ok:
                        return r.result
                finally:
                    conn.close()
            except OSError:
                pass
            if now() > deadline:
                raise HarnessError(f"vmsupd did not answer within {self.t(60):.0f} s\n"
                                   f"{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self, lines=20):
        try:
            with open(self.daemon_log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def kill_daemon(self):
        self.expect_exit = True
        try:
            self.daemon.send_signal(signal.SIGKILL)
        except OSError:
            pass
        self.daemon.wait()
        self.kills += 1

    def check_daemon_alive(self, where):
        if self.daemon.poll() is not None and not self.expect_exit:
            self.violation(f"vmsupd exited by itself with status {self.daemon.returncode} "
                           f"({where}); log:\n{self.log_tail()}")
            self.start_daemon()
            self.wait_daemon()
            self.restarts += 1

    # -- bookkeeping -------------------------------------------------------------

    def violation(self, what, step=None):
        if step is None:
            step = getattr(self.tls, "step", None)
        if step is None:
            step = self.current_step
        with self.lock:
            self.violations.append({"what": what, "seed": self.seed, "step": step})
        log(f"VIOLATION (seed {self.seed}, step {step}): {what}")

    def record(self, kind, result):
        with self.lock:
            self.ops[kind][result.outcome] += 1
            if self.args.verbose:
                log(f"step {getattr(self.tls, 'step', self.current_step)} {kind}: "
                    f"{result!r}"[:400])
            if not result.ok and result.kind == "internal":
                self.notes.append(f"internal error from {kind} at step "
                                  f"{getattr(self.tls, 'step', self.current_step)}: "
                                  f"{result.message}")

    def def_begin(self, name):
        with self.lock:
            vm = self.vms.get(name)
            if vm is None:
                return None
            vm.inflight += 1
            if vm.inflight > 1:
                vm.taint += 1
            return vm.taint

    def def_end(self, name, token, defined):
        """@defined: True/False when the answer says so, None when it cannot be known."""
        with self.lock:
            vm = self.vms.get(name)
            if vm is None:
                return
            vm.inflight -= 1
            if vm.taint != token:
                vm.defined = None  # another create/delete overlapped: order unknown
            elif defined is not None or vm.defined is not None:
                vm.defined = defined

    # -- client work ---------------------------------------------------------------

    def rpc_call(self, conn_box, method, params, disconnect=None):
        """One JSON-RPC call on the client's connection, reconnecting as needed."""
        if conn_box[0] is None:
            try:
                conn_box[0] = RpcConn(self.socket_path, self.t(180))
            except OSError as e:
                return CallResult(transport=True, kind="unavailable", message=str(e))
        conn = conn_box[0]
        if disconnect is not None:
            try:
                conn.send(method, params)
            except OSError as e:
                conn.close()
                conn_box[0] = None
                return CallResult(transport=True, kind="transport", message=str(e))
            time.sleep(disconnect)
            conn.close()
            conn_box[0] = None
            with self.lock:
                self.faults["disconnect"] += 1
            return CallResult(transport=True, kind="disconnected", message="we hung up")
        try:
            r = conn.call(method, params)
        except ProtocolViolation as e:
            self.violation(f"{method}: {e}")
            r = CallResult(transport=True, kind="transport", message=str(e))
        if r.transport:
            conn.close()
            conn_box[0] = None
        return r

    def dbus_call(self, method, params, disconnect=None):
        member = DBUS_METHODS[method]
        p = dict(params)
        # a method that takes a VM takes its name first; the workspace ones take only options
        lead = [] if method.startswith("workspace.") else [p.pop("name")]
        argv = ["gdbus", "call", "--session", "--dest", BUS_NAME, "--object-path", BUS_PATH,
                "--timeout", str(int(self.t(180))), "--method", f"{BUS_NAME}.{member}"
                ] + lead + [gvariant_dict(p)]
        try:
            proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            return CallResult(transport=True, kind="transport", message=str(e))
        with self.children_lock:
            self.children.add(proc)
        try:
            if disconnect is not None:
                try:
                    out, err = proc.communicate(timeout=disconnect)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
                    with self.lock:
                        self.faults["disconnect"] += 1
                    return CallResult(transport=True, kind="disconnected",
                                      message="gdbus killed mid-call")
                rc = proc.returncode
            else:
                out, err = proc.communicate(timeout=self.t(200))
                rc = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return CallResult(transport=True, kind="timeout", message="gdbus call hung")
        finally:
            with self.children_lock:
                self.children.discard(proc)
        out = out.decode(errors="replace")
        err = err.decode(errors="replace")
        if rc == 0:
            return CallResult(ok=True, result=out.strip())
        m = re.search(r"GDBus\.Error:io\.github\.vmsup\.Error\.(\w+)", err)
        if m:
            return CallResult(kind=dbus_error_kind(m.group(1)), message=err.strip())
        m = re.search(r"GDBus\.Error:org\.freedesktop\.DBus\.Error\.(\w+)", err)
        if m is None or m.group(1) not in DBUS_TRANSPORT_ERRORS:
            self.violation(f"D-Bus {member}: an error that is neither vmsupd's nor the "
                           f"bus's for a lost peer: {err.strip()[:300]}")
        return CallResult(transport=True, kind="transport", message=err.strip()[:300])

    def dbus_op_id(self, text):
        m = re.search(r"'operation': <(?:int64 )?(\d+)>", text or "")
        return int(m.group(1)) if m else None

    def do_call(self, client, conn_box, method, params, disconnect=None):
        if client["door"] == "dbus" and method in DBUS_METHODS:
            return self.dbus_call(method, params, disconnect)
        return self.rpc_call(conn_box, method, params, disconnect)

    def create_params(self, name, step):
        vm = self.vms[name]
        p = {"name": name, "auto_stop": False}
        if vm.kind == "guest":
            p["memory_mib"] = GUEST_MIB
        else:
            p["memory_mib"] = HALT_MIB
            p["image"] = self.halt_image
        return p

    def op_id_of(self, client, r):
        if not r.ok:
            return None
        if isinstance(r.result, dict):
            return r.result.get("operation")
        return self.dbus_op_id(r.result)

    def wait_op(self, conn_box, op_id, gen):
        """Polls op.get until the operation ends; its final state, or None if unknowable."""
        deadline = now() + self.t(180)
        while now() < deadline and not self.stop_flag.is_set():
            if self.generation != gen:
                return None  # the daemon was restarted: the id means nothing to the new one
            r = self.rpc_call(conn_box, "op.get", {"id": op_id})
            if r.transport:
                return None
            if not r.ok:
                if self.generation != gen:
                    return None
                self.violation(f"op.get {op_id} of a live daemon: {r}")
                return None
            state = r.result.get("state")
            if state != "running":
                if state in ("failed", "cancelled") and not r.result.get("error"):
                    self.violation(f"operation {op_id} ended {state} without a reason: "
                                   f"{r.result}")
                return r.result
            time.sleep(0.05)
        if not self.stop_flag.is_set():
            self.violation(f"operation {op_id} still running after {self.t(180):.0f} s")
        return None

    def run_op(self, client, conn_box, step):
        kind = step["kind"]
        disc = step.get("disconnect")
        gen = self.generation
        if kind == "create":
            name = step["vm"]
            p = self.create_params(name, step)
            p["wait"] = step["wait"]
            p["start"] = step["start"]
            token = self.def_begin(name)
            defined = None
            try:
                r = self.do_call(client, conn_box, "vm.create", p, disc)
                self.record(kind, r)
                if r.kind == "already-exists":
                    defined = True
                elif r.ok and step["wait"]:
                    defined = True
                elif r.ok:
                    op_id = self.op_id_of(client, r)
                    final = self.wait_op(conn_box, op_id, gen) if op_id else None
                    if final is not None:
                        defined = final.get("state") == "done"
                        self.ops["create-op"][final.get("state")] += 1
                elif not r.transport and r.kind not in ("busy",):
                    defined = None  # failed: leave it to the listing
            finally:
                self.def_end(name, token, defined)
        elif kind == "cancel-create":
            name = step["vm"]
            p = self.create_params(name, step)
            p.update({"wait": False, "start": True})
            token = self.def_begin(name)
            defined = None
            try:
                r = self.rpc_call(conn_box, "vm.create", p)
                self.record("cancel-create", r)
                if r.kind == "already-exists":
                    defined = True
                elif r.ok:
                    op_id = r.result.get("operation")
                    time.sleep(step["cancel_after"])
                    c = self.rpc_call(conn_box, "op.cancel", {"id": op_id}, disc)
                    self.record("op.cancel", c)
                    if c.ok and c.result.get("state") == "cancelled":
                        if not c.result.get("error"):
                            self.violation(f"op.cancel {op_id} answered cancelled without "
                                           f"a reason: {c.result}")
                        defined = False
                    elif not c.transport:
                        final = self.wait_op(conn_box, op_id, gen)
                        if final is not None:
                            defined = final.get("state") == "done"
                            self.ops["create-op"][final.get("state")] += 1
            finally:
                self.def_end(name, token, defined)
        elif kind == "delete":
            name = step["vm"]
            token = self.def_begin(name)
            defined = None
            try:
                r = self.do_call(client, conn_box, "vm.delete", {"name": name, "force": True},
                                 disc)
                self.record(kind, r)
                if r.ok or r.kind == "not-found":
                    defined = False
                    if r.kind == "not-found":
                        with self.lock:
                            vm = self.vms[name]
                            if vm.defined is True and vm.inflight == 1 and vm.taint == token:
                                self.violation(f"vm.delete {name}: not-found, but its create "
                                               f"had answered and nothing deleted it")
            finally:
                self.def_end(name, token, defined)
        elif kind == "start":
            self.record(kind, self.do_call(client, conn_box, "vm.start", {"name": step["vm"]},
                                           disc))
        elif kind == "stop":
            self.record(kind, self.do_call(client, conn_box, "vm.stop",
                                           {"name": step["vm"], "timeout_s": 5}, disc))
        elif kind == "force-stop":
            self.record(kind, self.do_call(client, conn_box, "vm.stop",
                                           {"name": step["vm"], "force": True}, disc))
        elif kind == "set":
            p = {"name": step["vm"], step["field"]: step["params"]}
            self.record(kind, self.do_call(client, conn_box, "vm.set", p, disc))
        elif kind == "get":
            self.record(kind, self.do_call(client, conn_box, "vm.get", {"name": step["vm"]},
                                           disc))
        elif kind == "exec":
            # the guest must run to answer: start it (a no-op when it runs), then exec
            self.do_call(client, conn_box, "vm.start", {"name": step["vm"]})
            r = self.do_call(client, conn_box, "vm.exec",
                             {"name": step["vm"], "argv": step["argv"], "timeout_s": 30}, disc)
            self.record(kind, r)
            if r.ok:
                res = r.result
                if isinstance(res, dict):
                    want = {"echo": 0, "cat": 0, "sh": 3}[step["argv"][0]]
                    if res.get("exit_code") != want or (
                            step["argv"][0] == "echo" and res.get("stdout") != "chaos\n"):
                        self.violation(f"vm.exec {step['argv']} in {step['vm']}: {res}")
        elif kind == "ws-create":
            ws = step["ws"]
            self.record(kind, self.do_call(client, conn_box, "workspace.create",
                                           {"name": ws, "path": os.path.join(self.share_root, ws),
                                            "memory_mib": GUEST_MIB}, disc))
        elif kind == "ws-open":
            self.record(kind, self.do_call(client, conn_box, "workspace.open",
                                           {"name": step["ws"]}, disc))
        elif kind == "ws-delete":
            self.record(kind, self.do_call(client, conn_box, "workspace.delete",
                                           {"name": step["ws"], "force": True}, disc))

    def client_loop(self, client):
        conn_box = [None]
        while True:
            step = client["queue"].get()
            if step is None:
                break
            t0 = now()
            self.tls.step = step["index"]
            try:
                self.run_op(client, conn_box, step)
            except Exception:
                self.violation(f"harness error in {step['kind']}: {traceback.format_exc()}",
                               step["index"])
            finally:
                with self.lock:
                    if now() - t0 > self.max_step_time:
                        self.max_step_time = now() - t0
                        self.slowest = f"{step['kind']} (step {step['index']})"
                client["queue"].task_done()
        if conn_box[0] is not None:
            conn_box[0].close()

    # -- faults --------------------------------------------------------------------

    def pick_qemu(self, pick):
        pids = sorted(p for p in self.our_qemus() if p not in self.frozen)
        return pids[int(pick * len(pids))] if pids else None

    def fault(self, step):
        kind = step["kind"]
        if kind == "qemu-kill":
            pid = self.pick_qemu(step["pick"])
            if pid is None:
                return
            os.kill(pid, signal.SIGKILL)
        elif kind == "qemu-freeze":
            pid = self.pick_qemu(step["pick"])
            if pid is None:
                return
            os.kill(pid, signal.SIGSTOP)
            timer = threading.Timer(step["duration"], self.thaw, (pid,))
            with self.lock:
                self.frozen[pid] = timer
            timer.start()
        elif kind == "state-full":
            if not self.mounted:
                return
            # a file of its own: an earlier fill may still be there, its timer pending
            path = os.path.join(self.state_dir, f"chaos-fill-{step['index']}")
            st = os.statvfs(self.state_dir)
            with open(path, "wb", buffering=0) as f:  # no flush at close to fail
                try:
                    os.posix_fallocate(f.fileno(), 0, st.f_bavail * st.f_frsize)
                except OSError:
                    pass
                # the last blocks, until ENOSPC
                try:
                    while True:
                        f.write(b"\0" * 65536)

                except OSError:
                    pass
            # freed from a timer: a kill of vmsupd may land while the directory is full
            timer = threading.Timer(step["duration"], self.unfill, (path,))
            with self.lock:
                self.fills[path] = timer
            timer.start()
        with self.lock:
            self.faults[kind] += 1

    def thaw(self, pid):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        with self.lock:
            self.frozen.pop(pid, None)

    def unfill(self, path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        with self.lock:
            self.fills.pop(path, None)

    def thaw_all(self):
        with self.lock:
            frozen = dict(self.frozen)
            fills = dict(self.fills)
        for pid, timer in frozen.items():
            timer.cancel()
            self.thaw(pid)
        for path, timer in fills.items():
            timer.cancel()
            self.unfill(path)

    # -- invariants ------------------------------------------------------------------

    def wait_quiet(self, clients):
        for c in clients:
            c["queue"].join()
        deadline = now() + self.t(30)
        while (self.frozen or self.fills) and now() < deadline:
            time.sleep(0.05)
        self.thaw_all()

    def list_all(self, conn):
        r = conn.call("vm.list")
        if not r.ok:
            raise HarnessError(f"vm.list failed: {r}")
        return {v["name"]: v for v in r.result["vms"]}

    def settle(self, conn, label):
        """vm.list once no VM is starting or stopping and no operation runs."""
        deadline = now() + self.t(90)
        while True:
            self.reap()
            listed = self.list_all(conn)
            ops = conn.call("op.list")
            running_ops = [o for o in ops.result["operations"] if o.get("state") == "running"] \
                if ops.ok else []
            moving = {n: v["state"] for n, v in listed.items() if v.get("state") in TRANSITIONAL}
            if not moving and not running_ops:
                return listed, ops.result["operations"] if ops.ok else []
            if now() > deadline:
                if moving:
                    self.violation(f"{label}: VMs stuck in a transitional state for "
                                   f"{self.t(90):.0f} s: {moving}")
                if running_ops:
                    self.violation(f"{label}: operations stuck in running: {running_ops}")
                return listed, ops.result["operations"] if ops.ok else []
            time.sleep(0.1)

    def check_invariants(self, label):
        self.check_daemon_alive(label)
        conn = RpcConn(self.socket_path, self.t(120))
        try:
            self._check(conn, label)
        finally:
            conn.close()

    def _check(self, conn, label):
        listed, ops = self.settle(conn, label)
        self.checks["settled"] += 1
        ws_r = conn.call("workspace.list")
        workspaces = {w["name"]: w for w in ws_r.result["workspaces"]} if ws_r.ok else {}
        if not ws_r.ok:
            self.violation(f"{label}: workspace.list failed: {ws_r}")

        # 1. what we believe is defined is listed, what we believe deleted is not
        with self.lock:
            for name, vm in self.vms.items():
                if vm.inflight:
                    continue
                if vm.defined is True and name not in listed:
                    self.violation(f"{label}: VM {name} was defined (its create answered) "
                                   f"and is no longer listed: lost")
                elif vm.defined is False and name in listed:
                    self.violation(f"{label}: VM {name} was deleted or never created, yet "
                                   f"it is listed: {listed[name].get('state')}")
                vm.defined = name in listed
            self.checks["defined-listed"] += 1
        for ws in workspaces.values():
            if ws.get("vm_owned") and ws.get("vm") not in listed:
                self.violation(f"{label}: workspace {ws['name']} lost its VM {ws.get('vm')}")
        known = set(self.vms)
        ws_vms = {w.get("vm") for w in workspaces.values()}
        for name in listed:
            if name not in known and name not in ws_vms:
                self.notes.append(f"{label} (step {self.current_step}): VM {name} is listed "
                                  f"but serves no workspace (left by an interrupted "
                                  f"workspace delete?)")
        self.checks["workspaces"] += 1

        # 2. each listed state agrees with the processes
        qemus = self.our_qemus()
        by_vm = collections.defaultdict(list)
        for pid, argv in qemus.items():
            by_vm[self.qemu_vm_name(argv)].append(pid)
        for vm_name, pids in by_vm.items():
            if vm_name is None:
                # not a VM's QEMU: an accelerator probe, fine only while its daemon runs it
                for pid in pids:
                    st = proc_stat(pid)
                    if st is None or st[1] != self.daemon.pid:
                        self.violation(f"{label}: orphaned QEMU {pid} of no VM (parent "
                                       f"{st[1] if st else '?'}, not the running vmsupd "
                                       f"{self.daemon.pid}): {' '.join(qemus[pid])[:300]}")
            elif vm_name not in listed:
                self.violation(f"{label}: orphaned QEMU {pids} (VM {vm_name}, not listed)")
            elif len(pids) > 1:
                self.violation(f"{label}: VM {vm_name} has {len(pids)} QEMUs: {pids}")
        for name, v in listed.items():
            state = v.get("state")
            pid = v.get("pid")
            mine = by_vm.get(name, [])
            if state in LIVE:
                if not pid or not pid_alive(pid):
                    self.violation(f"{label}: VM {name} is {state} with pid {pid}, "
                                   f"which is not alive")
                elif pid not in mine:
                    self.violation(f"{label}: VM {name} is {state} with pid {pid}, which "
                                   f"is not a QEMU of that VM ({proc_cmdline(pid)[:3]})")
            else:
                if pid and pid_alive(pid) and pid in mine:
                    self.violation(f"{label}: VM {name} is {state} but its QEMU {pid} runs")
                if mine:
                    self.violation(f"{label}: VM {name} is {state} but QEMU {mine} runs "
                                   f"for it")
        self.checks["processes"] += 1

        # 3. operations: none stuck
        for o in ops:
            if o.get("state") in ("failed", "cancelled") and not o.get("error"):
                self.violation(f"{label}: operation {o.get('id')} ended {o.get('state')} "
                               f"without a reason: {o}")
        self.checks["operations"] += 1

        # 4. the state directory
        self.check_state_dir(label, listed, workspaces)

    @staticmethod
    def journal_torn_lines(path):
        """The lines of an event journal file that are not a JSON object each."""
        torn = 0
        with open(path, "rb") as f:
            for line in f.read().split(b"\n"):
                try:
                    if line and not isinstance(json.loads(line), dict):
                        torn += 1
                except ValueError:
                    torn += 1
        return torn

    def check_state_dir(self, label, listed, workspaces):
        files = {}
        for root, dirs, names in os.walk(self.state_dir):
            for n in names:
                rel = os.path.relpath(os.path.join(root, n), self.state_dir)
                files[rel] = os.path.join(root, n)
        defs = set()
        guests = set()
        journal_lines = 0
        for rel, path in sorted(files.items()):
            d, base = os.path.split(rel)
            if d in ("vms", "last-run", "workspaces") and base.endswith(".json"):
                try:
                    with open(path) as f:
                        obj = json.load(f)
                    if not isinstance(obj, dict):
                        raise ValueError("not an object")
                except (OSError, ValueError) as e:
                    self.violation(f"{label}: {rel} does not parse: {e}")
                    continue
                if d == "vms":
                    defs.add(base[:-5])
                    if obj.get("name") not in (None, base[:-5]):
                        self.violation(f"{label}: {rel} names VM {obj.get('name')}")
            elif d == "disks" and base.endswith(".qcow2"):
                pass
            elif d.startswith("guests" + os.sep) and d.count(os.sep) == 1 and \
                    base in GUEST_FILES:
                # a VM from an image: its cloud-init seed, UEFI variables, pinned host keys
                guests.add(d.split(os.sep)[1])
            elif d.startswith("ssh" + os.sep) and d.count(os.sep) == 1 and \
                    base in ("id_ed25519", "id_ed25519.pub"):
                pass
            elif d == "" and base in ("events.jsonl", "events.jsonl.1"):
                journal_lines += self.journal_torn_lines(path)
            else:
                self.violation(f"{label}: unexpected file in the state directory: {rel} "
                               f"({os.path.getsize(path)} bytes)")
        # the event journal: a kill -9 tears at most the one line being written, which the
        # restarted daemon ends and readers skip
        if journal_lines > self.kills:
            self.violation(f"{label}: the event journal has {journal_lines} torn lines after "
                           f"{self.kills} kills")
        for name in sorted(guests - defs):
            self.violation(f"{label}: guests/{name} is left behind: no VM {name} is defined")
        if defs != set(listed):
            self.violation(f"{label}: definitions on disk {sorted(defs - set(listed))} not "
                           f"listed, listed {sorted(set(listed) - defs)} without a file")
        for name in workspaces:
            if f"workspaces/{name}.json" not in files:
                self.violation(f"{label}: workspace {name} listed without a record")
        self.checks["state-dir"] += 1

    def check_control(self, conn, name, vm, label, delete=False):
        """start, stop and delete answer and do what they say."""
        state = vm.get("state")
        if state in LIVE:
            r = conn.call("vm.stop", {"name": name, "force": True})
            if not r.ok:
                self.violation(f"{label}: vm.stop {name} (force) failed: {r}")
                return
        if self.vms.get(name) is not None and self.vms[name].kind == "halt":
            r = conn.call("vm.start", {"name": name})
            g = conn.call("vm.get", {"name": name})
            if not r.ok or not g.ok or g.result.get("state") != "running" or \
                    not pid_alive(g.result.get("pid") or 0):
                self.violation(f"{label}: vm.start {name}: {r}; then vm.get: {g}")
                return
            pid = g.result["pid"]
            r = conn.call("vm.stop", {"name": name, "force": True})
            deadline = now() + self.t(10)
            while pid_alive(pid) and now() < deadline:
                self.reap()
                time.sleep(0.02)
            g = conn.call("vm.get", {"name": name})
            if not r.ok or pid_alive(pid) or not g.ok or g.result.get("state") in LIVE:
                self.violation(f"{label}: vm.stop {name}: {r}; QEMU {pid} alive "
                               f"{pid_alive(pid)}; vm.get {g}")
                return
        if delete:
            r = conn.call("vm.delete", {"name": name, "force": True})
            g = conn.call("vm.get", {"name": name})
            if not r.ok or g.kind != "not-found" or \
                    os.path.exists(os.path.join(self.state_dir, "vms", name + ".json")):
                self.violation(f"{label}: vm.delete {name}: {r}; then vm.get: {g}")
                return
        self.checks["controllable"] += 1

    # -- the run ---------------------------------------------------------------------

    def restart(self, step):
        self.kill_daemon()
        self.start_daemon()
        if step.get("again"):
            time.sleep(step["again_after"])  # during re-adoption
            self.kill_daemon()
            self.start_daemon()
        self.wait_daemon()
        self.restarts += 1

    def run(self):
        args = self.args
        guest_vms = [n for n, v in self.vms.items() if v.kind == "guest"]
        halt_vms = [n for n, v in self.vms.items() if v.kind == "halt"]
        n_clients = args.rpc_clients + args.dbus_clients
        steps = make_schedule(self.seed, args.ops, args.kills, n_clients, guest_vms, halt_vms,
                              self.workspaces, not args.no_faults)
        log(f"seed {self.seed}: {args.ops} operations, {args.kills} kills of vmsupd, "
            f"{n_clients} clients ({args.rpc_clients} JSON-RPC, {args.dbus_clients} D-Bus), "
            f"{len(self.vms)} VMs + {len(self.workspaces)} workspace VMs "
            f"({len(guest_vms)} booting the guest)")
        log(f"replay: {self.replay_command()}")
        self.start_daemon()
        self.wait_daemon()
        self.populate()
        clients = []
        for i in range(n_clients):
            c = {"door": "rpc" if i < args.rpc_clients else "dbus", "queue": queue.Queue(1)}
            c["thread"] = threading.Thread(target=self.client_loop, args=(c,), daemon=True)
            c["thread"].start()
            clients.append(c)
        t0 = now()
        try:
            for step in steps:
                self.current_step = step["index"]
                self.check_daemon_alive(f"before step {step['index']}")
                if step["type"] == "op":
                    time.sleep(step["delay"])
                    clients[step["client"]]["queue"].put(step)
                elif step["type"] == "fault":
                    self.fault(step)
                elif step["type"] == "kill":
                    self.restart(step)
                    self.wait_quiet(clients)
                    self.check_invariants(f"after kill {self.kills}")
                    self.spot_control()
                if step["index"] % 100 == 0:
                    log(f"step {step['index']}/{len(steps)}: {self.kills} kills, "
                        f"{sum(self.faults.values())} faults, {len(self.violations)} violations")
            self.wait_quiet(clients)
        finally:
            for c in clients:
                c["queue"].put(None)
            for c in clients:
                c["thread"].join(self.t(300))
        self.current_step = len(steps)
        self.elapsed = now() - t0
        self.check_invariants("at the end")
        self.final_control()
        self.final_stop()

    def populate(self):
        """Every VM defined before the chaos starts, so that most operations find theirs."""
        conn = RpcConn(self.socket_path, self.t(120))
        try:
            for name in sorted(self.vms):
                r = conn.call("vm.create", dict(self.create_params(name, None), wait=True))
                if not r.ok:
                    raise HarnessError(f"creating VM {name} before the run failed: {r}")
                self.vms[name].defined = True
        finally:
            conn.close()

    def spot_control(self):
        """After a restart: one halt VM is started, stopped and still answers."""
        conn = RpcConn(self.socket_path, self.t(60))
        try:
            listed = self.list_all(conn)
            halts = sorted(n for n in listed if self.vms.get(n) and self.vms[n].kind == "halt")
            if halts:
                name = halts[self.kills % len(halts)]
                self.check_control(conn, name, listed[name], f"after kill {self.kills}")
        finally:
            conn.close()

    def final_control(self):
        conn = RpcConn(self.socket_path, self.t(120))
        try:
            for ws in self.workspaces:
                conn.call("workspace.delete", {"name": ws, "force": True})
            listed = self.list_all(conn)
            for name in sorted(listed):
                self.check_control(conn, name, listed[name], "at the end", delete=True)
            listed = self.list_all(conn)
            if listed:
                self.violation(f"at the end: VMs left after deleting every one: "
                               f"{sorted(listed)}")
            deadline = now() + self.t(20)
            while self.our_qemus() and now() < deadline:
                self.reap()
                time.sleep(0.05)
            left = self.our_qemus()
            if left:
                self.violation(f"at the end: QEMUs left after deleting every VM: "
                               f"{sorted(left)}")
        finally:
            conn.close()
        self.check_state_dir("at the end, all deleted", {}, {})

    def final_stop(self):
        """SIGTERM: the daemon must leave cleanly (sanitizer builds report here)."""
        self.expect_exit = True
        self.daemon.send_signal(signal.SIGTERM)
        try:
            rc = self.daemon.wait(self.t(30))
        except subprocess.TimeoutExpired:
            self.violation("vmsupd did not exit within 30 s of SIGTERM")
            return
        if rc != 0:
            self.violation(f"vmsupd exited with {rc} on SIGTERM; log:\n{self.log_tail(40)}")

    def replay_command(self):
        a = self.args
        return (f"python3 bench/chaos/vmsup-chaos.py --build-dir {a.build_dir} --seed {self.seed}"
                f" --ops {a.ops} --kills {a.kills} --vms {a.vms} --guests {a.guests}"
                f" --workspaces {a.workspaces} --rpc-clients {a.rpc_clients}"
                f" --dbus-clients {a.dbus_clients} --accel {a.accel}" +
                (" --no-faults" if a.no_faults else ""))

    def summary(self):
        print()
        print(f"seed {self.seed}   replay: {self.replay_command()}")
        print("(the same seed replays the same operations and faults in the same order; "
              "their timing varies)")
        print(f"elapsed {getattr(self, 'elapsed', 0):.0f} s, longest operation "
              f"{self.max_step_time:.1f} s: {self.slowest}")
        print()
        print(f"{'operation':<16} {'total':>6}  outcomes")
        total = 0
        for kind in sorted(self.ops):
            c = self.ops[kind]
            n = sum(c.values())
            if kind not in ("create-op", "op.cancel"):
                total += n
            print(f"{kind:<16} {n:>6}  " + ", ".join(f"{k} {v}" for k, v in c.most_common()))
        print(f"{'(all)':<16} {total:>6}")
        print()
        print(f"vmsupd killed -9: {self.kills} (restarts {self.restarts})")
        print("faults injected: " + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
                                     or "none"))
        print("invariant checks: " + ", ".join(f"{k} {v}" for k, v in sorted(self.checks.items())))
        for n in self.notes[:20]:
            print(f"note: {n}")
        print(f"violations: {len(self.violations)}")
        for v in self.violations:
            print(f"  seed {v['seed']} step {v['step']}: {v['what']}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", required=True)
    p.add_argument("--ops", type=int, default=1000)
    p.add_argument("--kills", type=int, default=None,
                   help="kills of vmsupd (default: one per 60 operations, at least 5)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--vms", type=int, default=20, help="VMs, workspace VMs included")
    p.add_argument("--guests", type=int, default=2,
                   help="VMs that boot the bundled guest (the rest halt at once)")
    p.add_argument("--workspaces", type=int, default=1)
    p.add_argument("--rpc-clients", type=int, default=3)
    p.add_argument("--dbus-clients", type=int, default=2)
    p.add_argument("--state-mib", type=int, default=96, help="size of the state tmpfs")
    p.add_argument("--accel", choices=("tcg", "auto", "kvm"), default="tcg",
                   help="Accel= of vmsupd.conf (auto probes KVM at every daemon start)")
    p.add_argument("--no-faults", action="store_true",
                   help="only kills of vmsupd, no other fault")
    p.add_argument("--timeout-scale", type=float,
                   default=float(os.environ.get("VMSUP_CHAOS_TIMEOUT_SCALE",
                                               os.environ.get("VMSUP_TEST_TIMEOUT_MULTIPLIER",
                                                              "1"))))
    p.add_argument("--keep-tmp", action="store_true")
    p.add_argument("--verbose", action="store_true", help="log every answer")
    args = p.parse_args(argv)
    if args.kills is None:
        args.kills = max(5, args.ops // 60)
    return args


def main(argv):
    args = parse_args(argv)
    chaos = Chaos(args)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    become_subreaper()
    try:
        chaos.check_prerequisites()
    except Prerequisite as e:
        print(f"vmsup-chaos: {e}", file=sys.stderr)
        return 77
    rc = 1
    try:
        chaos.setup()
        chaos.run()
        rc = 1 if chaos.violations else 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        rc = 130
    except (HarnessError, OSError) as e:
        traceback.print_exc()
        chaos.violation(f"the run stopped: {e}")
    finally:
        chaos.cleanup()
        chaos.summary()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
