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
import datetime
import glob
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

import chaos_dbus_wire

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
                "vm.pause": "Pause", "vm.resume": "Resume",
                "workspace.create": "CreateWorkspace", "workspace.open": "OpenWorkspace",
                "workspace.delete": "DeleteWorkspace",
                "snapshot.create": "CreateSnapshot", "snapshot.list": "ListSnapshots",
                "snapshot.restore": "RestoreSnapshot", "snapshot.delete": "DeleteSnapshot",
                "image.import": "ImportImage", "image.list": "ListImages",
                "image.delete": "DeleteImage"}
# D-Bus methods that take only the options, no VM name first
DBUS_NO_NAME = ("workspace.", "image.")
# the names snapshots and stored images are drawn from: few, so that they meet
SNAPSHOT_NAMES = ("s0", "s1")
IMAGE_NAMES = ("i0", "i1")
SNAPSHOT_TAG_PREFIX = "vmsup-"

# what the bus answers while vmsupd is dead or restarting
DBUS_TRANSPORT_ERRORS = ("NoReply", "ServiceUnknown", "NameHasNoOwner", "Disconnected",
                         "Timeout", "TimedOut")


# def_end(): the answer says nothing of whether the VM exists
KEEP = object()


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
        self.fds = []  # descriptors that came with the bytes read (vm.console's)

    def close(self):
        self.drop_fds()
        try:
            self.sock.close()
        except OSError:
            pass

    def drop_fds(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []

    def recv(self):
        data, anc, _flags, _addr = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(16 * 4))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(payload) // 4
                self.fds.extend(int.from_bytes(payload[i * 4:i * 4 + 4], sys.byteorder,
                                               signed=True) for i in range(n))
        return data

    def send(self, method, params):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return self.next_id

    def receive(self, req_id):
        while True:
            while b"\n" not in self.buf:
                chunk = self.recv()
                if not chunk:
                    raise ConnectionError("vmsupd closed the connection")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            answer = json.loads(line)
            if answer.get("id") is None and "method" in answer:
                if getattr(self, "notifications", None) is not None:
                    self.notifications.append(answer)
                continue  # a notification
            if answer.get("id") != req_id:
                raise ProtocolViolation(f"answer for id {answer.get('id')} while waiting "
                                        f"for {req_id}: {line[:200]!r}")
            return answer

    def call(self, method, params=None, notifications=None):
        """@notifications: a list that gets the notifications read before the answer."""
        self.notifications = notifications
        try:
            answer = self.receive(self.send(method, params or {}))
        except (OSError, ConnectionError) as e:
            return CallResult(transport=True, kind="transport", message=str(e))
        finally:
            self.notifications = None
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


# what vm.set changes, and the values it draws; a field is one line here
SET_FIELDS = {
    "memory_mib": lambda rng: rng.choice([GUEST_MIB, 160, 192]),
    "cpus": lambda rng: rng.choice([1, 2]),
    "auto_stop": lambda rng: rng.random() < 0.5,
    "cmdline": lambda rng: rng.choice(["console=ttyS0 quiet", "console=ttyS0"]),
    # vm.set {disk_gib} (not on main yet): "disk_gib": lambda rng: rng.choice([1, 2]),
}
EXEC_ARGVS = (["echo", "chaos"], ["cat", "/proc/uptime"], ["sh", "-c", "exit 3"],
              # the kernel log onto the serial console: a viewer that does not read fills up
              ["sh", "-c", "dmesg > /dev/console"])


def plan_set(rng, step):
    step["field"] = rng.choice(list(SET_FIELDS))
    step["params"] = SET_FIELDS[step["field"]](rng)


def plan_create(rng, step):
    step["wait"] = rng.random() < 0.5
    step["start"] = rng.random() < 0.4
    step["from_image"] = rng.choice(IMAGE_NAMES) if rng.random() < 0.3 else None


def plan_cancel_create(rng, step):
    step["cancel_after"] = rng.uniform(0.0, 0.3)


def plan_exec(rng, step):
    step["argv"] = rng.choice(EXEC_ARGVS)


def plan_pause(rng, step):
    step["start_first"] = rng.random() < 0.6


def plan_snapshot(rng, step):
    step["snapshot"] = rng.choice(SNAPSHOT_NAMES)
    step["memory"] = rng.random() < 0.6
    step["wait"] = rng.random() < 0.7


def plan_console(rng, step):
    step["history"] = rng.random() < 0.5


def plan_image_import(rng, step):
    step["wait"] = rng.random() < 0.6


def plan_events(rng, step):
    step["since"] = rng.choice(["1m", "10m", "2h"])


class Op:
    """One kind of operation: its weight, which name it gets, what the seed draws for it.

    target: vm (any VM), halt (a halting VM four times in five), halt-only, guest (a VM
    that boots the guest), vm-pair (a VM and another of its kind, step["vm2"]), ws (a
    workspace), image (a stored image's name), none. The handler is Chaos.op_<kind>, or
    @call: a Call for a verb that needs no more than its answer.
    """

    def __init__(self, kind, weight, target, plan=None, call=None):
        self.kind = kind
        self.weight = weight
        self.target = target
        self.plan = plan
        self.call = call


class Call:
    """A verb whose answer is all there is to check: @params(step) gives its parameters;
    with @defines (a step key), the VM of that name exists once it answers ok."""

    def __init__(self, method, params, defines=None):
        self.method = method
        self.params = params
        self.defines = defines


def vm_only(step):
    return {"name": step["vm"]}


# The weights keep the bounded run (meson test chaos) near its old length: the verbs that
# boot the guest are rarer than the ones that answer at once.
OPS = [
    Op("create", 7, "vm", plan_create),
    Op("start", 11, "vm"),
    Op("stop", 7, "halt"),
    Op("force-stop", 6, "halt"),
    Op("delete", 4, "halt"),
    Op("set", 6, "vm", plan_set),
    Op("exec", 4, "guest", plan_exec),
    Op("get", 3, "vm", call=Call("vm.get", vm_only)),
    Op("cancel-create", 3, "vm", plan_cancel_create),
    Op("ws-create", 2, "ws"),
    Op("ws-open", 2, "ws"),
    Op("ws-delete", 2, "ws"),
    Op("pause", 4, "halt", plan_pause),
    Op("resume", 3, "halt", call=Call("vm.resume", vm_only)),
    Op("snap-create", 4, "halt-only", plan_snapshot),
    Op("snap-list", 1, "vm", call=Call("snapshot.list", vm_only)),
    Op("snap-restore", 2, "halt-only", plan_snapshot),
    Op("snap-delete", 2, "halt-only", plan_snapshot),
    Op("start-snapshot", 2, "halt-only", plan_snapshot),
    Op("console", 2, "vm", plan_console),
    Op("console-stall", 1, "guest", plan_console),
    Op("img-import", 2, "image", plan_image_import),
    Op("img-list", 1, "none", call=Call("image.list", lambda step: {})),
    Op("img-delete", 2, "image", call=Call("image.delete", lambda step: {"name": step["image"]})),
    Op("events", 2, "none", plan_events),
    # Verbs on their way (another branch, not on main yet) are two lines each: a row here
    # and, for D-Bus, its twin in DBUS_METHODS ("vm.clone": "Clone"):
    #   Op("clone", 3, "vm-pair", call=Call("vm.clone", lambda step: {
    #       "name": step["vm"], "new": step["vm2"]}, defines="vm2")),
    # and vm.set {disk_gib} is its line in SET_FIELDS.
]
OPS_BY_KIND = {op.kind: op for op in OPS}
FAULT_KINDS = ("qemu-kill", "qemu-freeze", "state-full", "disconnect")


def pick_target(rng, op, step, guest_vms, halt_vms, workspaces):
    if op.target == "guest":
        step["vm"] = rng.choice(guest_vms)
    elif op.target == "halt-only":
        step["vm"] = rng.choice(halt_vms)
    elif op.target == "halt" and rng.random() < 0.8:
        step["vm"] = rng.choice(halt_vms)  # let the guests boot, now and then
    elif op.target == "ws":
        step["ws"] = rng.choice(workspaces)
    elif op.target == "image":
        step["image"] = rng.choice(IMAGE_NAMES)
    elif op.target == "vm-pair":
        kind = rng.choice([guest_vms, halt_vms])
        step["vm"], step["vm2"] = rng.sample(kind, 2)
    elif op.target != "none":
        step["vm"] = rng.choice(guest_vms + halt_vms)


def make_schedule(seed, ops, kills, n_clients, guest_vms, halt_vms, workspaces, faults_on):
    """The whole run as a list of steps; the same seed gives the same list."""
    rng = random.Random(seed)
    kinds = [op.kind for op in OPS]
    weights = [op.weight for op in OPS]
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
        op = OPS_BY_KIND[rng.choices(kinds, weights)[0]]
        step = {"type": "op", "kind": op.kind, "client": rng.randrange(n_clients),
                "delay": rng.uniform(0.0, 0.15)}
        pick_target(rng, op, step, guest_vms, halt_vms, workspaces)
        if op.plan is not None:
            op.plan(rng, step)
        if faults_on and rng.random() < 0.05:
            step["disconnect"] = rng.uniform(0.0, 0.2)
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
        self.console_bytes = 0
        self.stalled = []  # (vm, fd) of viewers that never read, closed at the next check
        self.stalled_total = 0
        self.fill_windows = []  # (start, end) wall-clock times the state directory was full
        self.fill_started = {}
        self.kill_times = []  # wall-clock times of the kills of vmsupd
        self.run_started = time.time()
        self.sample = 0  # which VM the next check restores a snapshot of
        self.paused_seen = 0
        self.snapshots_seen = 0
        self.replayed_max = 0
        self.journal_holes = 0
        self.info_rtt_max = 0.0

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
        if not (os.path.exists(os.path.join(guest, "initramfs.cpio.lz4")) and
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
        # sti; hlt; jmp $-1: the BIOS timer wakes the vCPU 18 times a second, so that a
        # running VM is told from a paused one by its vCPU thread alone
        sector[0:4] = bytes([0xFB, 0xF4, 0xEB, 0xFD])
        sector[510:512] = b"\x55\xaa"
        with open(self.halt_image, "wb") as f:
            f.write(sector)
        # the same machine as a qcow2, for image.import
        self.halt_qcow2 = os.path.join(self.tmp, "halt.qcow2")
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", self.halt_image,
                        self.halt_qcow2], check=True, capture_output=True)
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
        self.kill_times.append(time.time())

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
        """@defined: True/False when the answer says so, None when it cannot be known,
        KEEP when it did not change it."""
        with self.lock:
            vm = self.vms.get(name)
            if vm is None:
                return
            vm.inflight -= 1
            if vm.taint != token:
                vm.defined = None  # another create/delete overlapped: order unknown
            elif defined is KEEP:
                pass
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
        lead = [] if method.startswith(DBUS_NO_NAME) else [p.pop("name")]
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
            # a stored image by its name (not-found unless an import made it), or the file
            p["image"] = (step or {}).get("from_image") or self.halt_image
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
        op = OPS_BY_KIND[step["kind"]]
        if op.call is not None:
            self.op_call(client, conn_box, step, op.call)
        else:
            getattr(self, "op_" + op.kind.replace("-", "_"))(client, conn_box, step)

    def op_call(self, client, conn_box, step, call):
        """A verb whose answer is all there is to it (Call)."""
        name = step.get(call.defines) if call.defines else None
        token = self.def_begin(name) if name else None
        defined = KEEP
        try:
            r = self.do_call(client, conn_box, call.method, call.params(step),
                             step.get("disconnect"))
            self.record(step["kind"], r)
            if r.ok or r.kind == "already-exists":
                defined = True
            elif r.transport:
                defined = None
        finally:
            if name:
                self.def_end(name, token, defined)

    def op_create(self, client, conn_box, step):
        name = step["vm"]
        p = self.create_params(name, step)
        p["wait"] = step["wait"]
        p["start"] = step["start"]
        gen = self.generation
        token = self.def_begin(name)
        defined = None
        try:
            r = self.do_call(client, conn_box, "vm.create", p, step.get("disconnect"))
            self.record("create", r)
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

    def op_cancel_create(self, client, conn_box, step):
        name = step["vm"]
        p = self.create_params(name, step)
        p.update({"wait": False, "start": True})
        gen = self.generation
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
                c = self.rpc_call(conn_box, "op.cancel", {"id": op_id}, step.get("disconnect"))
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

    def op_delete(self, client, conn_box, step):
        name = step["vm"]
        token = self.def_begin(name)
        defined = None
        try:
            r = self.do_call(client, conn_box, "vm.delete", {"name": name, "force": True},
                             step.get("disconnect"))
            self.record("delete", r)
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

    def op_start(self, client, conn_box, step):
        self.record("start", self.do_call(client, conn_box, "vm.start", {"name": step["vm"]},
                                          step.get("disconnect")))

    def op_stop(self, client, conn_box, step):
        self.record("stop", self.do_call(client, conn_box, "vm.stop",
                                         {"name": step["vm"], "timeout_s": 5},
                                         step.get("disconnect")))

    def op_force_stop(self, client, conn_box, step):
        self.record("force-stop", self.do_call(client, conn_box, "vm.stop",
                                               {"name": step["vm"], "force": True},
                                               step.get("disconnect")))

    def op_set(self, client, conn_box, step):
        p = {"name": step["vm"], step["field"]: step["params"]}
        self.record("set", self.do_call(client, conn_box, "vm.set", p, step.get("disconnect")))

    def op_exec(self, client, conn_box, step):
        # the guest must run to answer: start it (a no-op when it runs), then exec
        self.do_call(client, conn_box, "vm.start", {"name": step["vm"]})
        r = self.do_call(client, conn_box, "vm.exec",
                         {"name": step["vm"], "argv": step["argv"], "timeout_s": 30},
                         step.get("disconnect"))
        self.record("exec", r)
        if r.ok and isinstance(r.result, dict):
            res = r.result
            want = 3 if step["argv"] == ["sh", "-c", "exit 3"] else 0
            if res.get("exit_code") != want or (
                    step["argv"][0] == "echo" and res.get("stdout") != "chaos\n"):
                self.violation(f"vm.exec {step['argv']} in {step['vm']}: {res}")

    def op_ws_create(self, client, conn_box, step):
        ws = step["ws"]
        self.record("ws-create", self.do_call(client, conn_box, "workspace.create",
                                              {"name": ws,
                                               "path": os.path.join(self.share_root, ws),
                                               "memory_mib": GUEST_MIB},
                                              step.get("disconnect")))

    def op_ws_open(self, client, conn_box, step):
        self.record("ws-open", self.do_call(client, conn_box, "workspace.open",
                                            {"name": step["ws"]}, step.get("disconnect")))

    def op_ws_delete(self, client, conn_box, step):
        self.record("ws-delete", self.do_call(client, conn_box, "workspace.delete",
                                              {"name": step["ws"], "force": True},
                                              step.get("disconnect")))

    # -- the second wave's verbs --------------------------------------------------

    def op_pause(self, client, conn_box, step):
        if step["start_first"]:
            self.do_call(client, conn_box, "vm.start", {"name": step["vm"]})
        self.record("pause", self.do_call(client, conn_box, "vm.pause", {"name": step["vm"]},
                                          step.get("disconnect")))

    def wait_answer_op(self, kind, conn_box, client, r, gen):
        """An answer without wait: its operation followed to its end."""
        op_id = self.op_id_of(client, r)
        final = self.wait_op(conn_box, op_id, gen) if op_id else None
        if final is not None:
            self.ops[kind + "-op"][final.get("state")] += 1

    def op_snap_create(self, client, conn_box, step):
        gen = self.generation
        r = self.do_call(client, conn_box, "snapshot.create",
                         {"name": step["vm"], "snapshot": step["snapshot"],
                          "memory": step["memory"], "wait": step["wait"]},
                         step.get("disconnect"))
        self.record("snap-create", r)
        if r.ok and not step["wait"]:
            self.wait_answer_op("snap-create", conn_box, client, r, gen)

    def op_snap_restore(self, client, conn_box, step):
        self.record("snap-restore", self.do_call(client, conn_box, "snapshot.restore",
                                                 {"name": step["vm"],
                                                  "snapshot": step["snapshot"], "wait": True},
                                                 step.get("disconnect")))

    def op_snap_delete(self, client, conn_box, step):
        self.record("snap-delete", self.do_call(client, conn_box, "snapshot.delete",
                                                {"name": step["vm"],
                                                 "snapshot": step["snapshot"]},
                                                step.get("disconnect")))

    def op_start_snapshot(self, client, conn_box, step):
        # a warm start is of a stopped VM
        self.do_call(client, conn_box, "vm.stop", {"name": step["vm"], "force": True})
        self.record("start-snapshot", self.do_call(client, conn_box, "vm.start",
                                                   {"name": step["vm"],
                                                    "snapshot": step["snapshot"]},
                                                   step.get("disconnect")))

    def open_console(self, client, conn_box, name, history):
        """vm.console on the client's door: (CallResult, fd or None); the fd is ours."""
        if client["door"] == "dbus":
            try:
                ok, value = chaos_dbus_wire.call_fd_method(
                    self.dbus_address, self.t(60), BUS_PATH, BUS_NAME, "OpenConsole",
                    BUS_NAME, name, {"history": history})
            except (OSError, chaos_dbus_wire.WireError) as e:
                return CallResult(transport=True, kind="transport", message=str(e)), None
            if ok:
                return CallResult(ok=True, result={"fd": 0}), value
            err, message = value
            m = re.match(r"io\.github\.vmsup\.Error\.(\w+)$", err)
            if m:
                return CallResult(kind=dbus_error_kind(m.group(1)), message=message), None
            m = re.match(r"org\.freedesktop\.DBus\.Error\.(\w+)$", err)
            if m is None or m.group(1) not in DBUS_TRANSPORT_ERRORS:
                self.violation(f"D-Bus OpenConsole: an error that is neither vmsupd's nor "
                               f"the bus's for a lost peer: {err}: {message}")
            return CallResult(transport=True, kind="transport", message=f"{err}: {message}"), \
                None
        r = self.rpc_call(conn_box, "vm.console", {"name": name, "history": history})
        conn = conn_box[0]
        fds = conn.fds if conn is not None else []
        if conn is not None:
            conn.fds = []
        fd = None
        if r.ok:
            index = r.result.get("fd") if isinstance(r.result, dict) else None
            if index is None or not 0 <= index < len(fds):
                self.violation(f"vm.console {name} answered {r.result} with {len(fds)} "
                               f"descriptors")
            else:
                fd = fds.pop(index)
        for other in fds:
            os.close(other)
        return r, fd

    def check_console_fd(self, name, fd):
        try:
            st = os.fstat(fd)
        except OSError as e:
            self.violation(f"vm.console {name}: the descriptor cannot be stat'ed: {e}")
            return False
        if (st.st_mode & 0o170000) != 0o140000:
            self.violation(f"vm.console {name}: the descriptor is not a socket "
                           f"(mode {st.st_mode:o})")
            return False
        return True

    def op_console(self, client, conn_box, step):
        """Attach, read what comes within a moment, detach."""
        r, fd = self.open_console(client, conn_box, step["vm"], step["history"])
        self.record("console", r)
        if fd is None:
            return
        try:
            if self.check_console_fd(step["vm"], fd):
                s = socket.socket(fileno=os.dup(fd))
                s.settimeout(0.3)
                got = 0
                try:
                    while got < 65536:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += len(chunk)
                except (socket.timeout, OSError):
                    pass
                finally:
                    s.close()
                with self.lock:
                    self.console_bytes += got
        finally:
            os.close(fd)

    def op_console_stall(self, client, conn_box, step):
        """A viewer that never reads: held open until the next check."""
        r, fd = self.open_console(client, conn_box, step["vm"], step["history"])
        self.record("console-stall", r)
        if fd is not None:
            if self.check_console_fd(step["vm"], fd):
                with self.lock:
                    self.stalled.append((step["vm"], fd))
                    self.stalled_total += 1
            else:
                os.close(fd)

    def op_img_import(self, client, conn_box, step):
        gen = self.generation
        r = self.do_call(client, conn_box, "image.import",
                         {"path": self.halt_qcow2, "name": step["image"],
                          "wait": step["wait"]}, step.get("disconnect"))
        self.record("img-import", r)
        if r.ok and not step["wait"]:
            self.wait_answer_op("img-import", conn_box, client, r, gen)

    def op_events(self, client, conn_box, step):
        """events.subscribe {since} (the socket's alone: D-Bus has signals): the replay
        in order, without a duplicate."""
        try:
            conn = RpcConn(self.socket_path, self.t(60))
        except OSError as e:
            self.record("events", CallResult(transport=True, kind="unavailable",
                                             message=str(e)))
            return
        try:
            notes = []
            r = conn.call("events.subscribe", {"since": step["since"], "follow": False},
                          notes)
            self.record("events", r)
            if r.ok:
                self.check_replay(f"events.subscribe {{since: {step['since']}}}", notes,
                                  r.result, None)
        finally:
            conn.close()

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
            started = time.time()
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
                self.fill_started[path] = started
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
            started = self.fill_started.pop(path, None)
            if started is not None:
                self.fill_windows.append((started, time.time()))

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
        self.check_viewers(label, "before the checks", close=False)
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

        # 5. the second wave: run states, snapshots, images, the journal, the viewers
        self.check_run_states(label, listed)
        entries = self.check_snapshots(conn, label, listed)
        self.check_images(conn, label, listed)
        self.check_journal(conn, label)
        self.sample_restore(conn, label, listed, entries)
        self.check_viewers(label, "after the checks")

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
        snapshot_records = set()
        journal_lines = 0
        for rel, path in sorted(files.items()):
            d, base = os.path.split(rel)
            if d in ("vms", "last-run", "workspaces", "snapshots", "images") and \
                    base.endswith(".json"):
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
                elif d == "snapshots":
                    snapshot_records.add(base[:-5])
            elif d == "disks" and base.endswith(".qcow2"):
                pass
            elif d.startswith("snapshots" + os.sep) and d.count(os.sep) == 1 and \
                    base.endswith(".state"):
                pass  # a saved state: check_snapshots() holds it against its entry
            elif d == "images" and base.endswith((".qcow2", ".raw")) and \
                    not base.startswith("."):
                pass  # a stored image: check_images() holds it against its record
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
        snapshot_dirs = set()
        snapshots = os.path.join(self.state_dir, "snapshots")
        if os.path.isdir(snapshots):
            snapshot_dirs = {n for n in os.listdir(snapshots)
                             if os.path.isdir(os.path.join(snapshots, n))}
        for name in sorted((snapshot_records | snapshot_dirs) - set(listed)):
            self.violation(f"{label}: the snapshots of VM {name} are left behind: no VM "
                           f"{name} is defined")
        if defs != set(listed):
            self.violation(f"{label}: definitions on disk {sorted(defs - set(listed))} not "
                           f"listed, listed {sorted(set(listed) - defs)} without a file")
        for name in workspaces:
            if f"workspaces/{name}.json" not in files:
                self.violation(f"{label}: workspace {name} listed without a record")
        self.checks["state-dir"] += 1

    # -- invariants of the second wave's verbs ----------------------------------------

    @staticmethod
    def vcpu_wakes(pid):
        """How often the vCPU threads of QEMU @pid were switched to (they are named
        "CPU n/TCG" with debug-threads=on), or None once it is gone."""
        total = 0
        found = False
        for task in glob.glob(f"/proc/{pid}/task/*"):
            try:
                with open(os.path.join(task, "comm")) as f:
                    if not f.read().startswith("CPU "):
                        continue
                with open(os.path.join(task, "status")) as f:
                    for line in f:
                        if "ctxt_switches:" in line:
                            total += int(line.split()[1])
                found = True
            except (OSError, ValueError, IndexError):
                continue
        return total if found else None

    def sample_wakes(self, pids, seconds):
        before = {n: self.vcpu_wakes(p) for n, p in pids.items()}
        time.sleep(seconds)
        after = {n: self.vcpu_wakes(p) for n, p in pids.items()}
        return {n: after[n] - before[n] for n in pids
                if before[n] is not None and after[n] is not None}

    def check_run_states(self, label, listed):
        """paused exactly when QEMU's vCPUs stand still. The harness cannot ask QMP (vmsupd
        holds the one monitor); a running vCPU wakes for the guest's timer (the BIOS's 18 Hz
        in a halting VM, the kernel's in the guest), a stopped one not at all."""
        pids = {n: v["pid"] for n, v in listed.items()
                if v.get("state") in LIVE and v.get("pid") and pid_alive(v["pid"])}
        if not pids:
            return
        wakes = self.sample_wakes(pids, self.t(0.8))
        still = [n for n, w in wakes.items() if listed[n]["state"] == "running" and w == 0]
        if still:
            # a loaded machine may not have run a thread for a moment: look longer
            wakes.update(self.sample_wakes({n: pids[n] for n in still}, self.t(3)))
        for name, w in sorted(wakes.items()):
            state = listed[name]["state"]
            if state == "running" and w == 0:
                self.violation(f"{label}: VM {name} is listed running, but the vCPUs of its "
                               f"QEMU {pids[name]} did not run for {self.t(3):.0f} s: "
                               f"QEMU is paused")
            elif state == "paused" and w > 1:
                self.violation(f"{label}: VM {name} is listed paused, but the vCPUs of its "
                               f"QEMU {pids[name]} ran ({w} wakes in {self.t(0.8):.1f} s)")
        with self.lock:
            self.paused_seen += sum(1 for n in wakes if listed[n]["state"] == "paused")
        self.checks["run-state"] += 1

    def disk_tags(self, disk):
        out = subprocess.run(["qemu-img", "info", "-U", "--output=json", disk],
                             capture_output=True, text=True)
        if out.returncode != 0:
            return None
        try:
            return {s.get("name") for s in json.loads(out.stdout).get("snapshots", [])}
        except ValueError:
            return None

    def check_snapshots(self, conn, label, listed):
        """Every listed snapshot complete, nothing of another left: {vm: entries}."""
        found = {}
        for name, v in sorted(listed.items()):
            r = conn.call("snapshot.list", {"name": name})
            if not r.ok:
                self.violation(f"{label}: snapshot.list {name}: {r}")
                continue
            entries = r.result.get("snapshots", [])
            found[name] = entries
            names = [e.get("name") for e in entries]
            if len(set(names)) != len(names):
                self.violation(f"{label}: VM {name} lists a snapshot twice: {names}")
            vm_dir = os.path.join(self.state_dir, "snapshots", name)
            files = set(os.listdir(vm_dir)) if os.path.isdir(vm_dir) else set()
            want = set()
            for e in entries:
                if not e.get("memory"):
                    continue
                base = f"{e.get('name')}.state"
                want.add(base)
                path = os.path.join(vm_dir, base)
                size = os.path.getsize(path) if os.path.exists(path) else None
                if size != e.get("size"):
                    self.violation(f"{label}: snapshot {e.get('name')} of VM {name} is listed "
                                   f"but its saved state is {size} bytes, not "
                                   f"{e.get('size')}: half-written")
            for base in sorted(files - want):
                self.violation(f"{label}: snapshots/{name}/{base} is no listed snapshot's "
                               f"({os.path.getsize(os.path.join(vm_dir, base))} bytes)")
            disk_entries = [e for e in entries if e.get("disk")]
            if disk_entries:
                tags = self.disk_tags(v.get("disk") or "") if v.get("disk") else None
                if tags is None:
                    self.violation(f"{label}: VM {name} lists disk snapshots, but its disk "
                                   f"{v.get('disk')} cannot be read")
                    continue
                for e in disk_entries:
                    if SNAPSHOT_TAG_PREFIX + e.get("name", "") not in tags:
                        self.violation(f"{label}: snapshot {e.get('name')} of VM {name} is "
                                       f"listed but its disk has no tag for it: {sorted(tags)}")
                stray = {t for t in tags if t.startswith(SNAPSHOT_TAG_PREFIX)} - \
                    {SNAPSHOT_TAG_PREFIX + n for n in names}
                if stray:
                    # removed at the next daemon start when a delete cannot at once
                    self.notes.append(f"{label}: VM {name}'s disk has tags of no listed "
                                      f"snapshot: {sorted(stray)}")
            with self.lock:
                self.snapshots_seen += len(entries)
        self.checks["snapshots"] += 1
        return found

    def sample_restore(self, conn, label, listed, entries):
        """One listed snapshot a check is used: restored, or started from."""
        cands = sorted((n, e) for n, es in entries.items() for e in es
                       if self.vms.get(n) is not None and self.vms[n].kind == "halt")
        if not cands:
            return
        name, entry = cands[self.sample % len(cands)]
        self.sample += 1
        snap = entry["name"]
        live = listed[name].get("state") in LIVE
        if entry.get("memory") and not live:
            how, r = "vm.start", conn.call("vm.start", {"name": name, "snapshot": snap})
        else:
            if live and not entry.get("memory"):
                conn.call("vm.stop", {"name": name, "force": True})
            how, r = "snapshot.restore", conn.call("snapshot.restore",
                                                   {"name": name, "snapshot": snap,
                                                    "wait": True})
        if r.ok:
            g = conn.call("vm.get", {"name": name})
            want_live = bool(entry.get("memory"))
            if not g.ok or (g.result.get("state") in LIVE) != want_live:
                self.violation(f"{label}: {how} {name} {snap} answered ok, then vm.get: {g}")
            self.checks["snapshot-used"] += 1
        elif r.kind == "failed-precondition" and "taken with another" in (r.message or ""):
            self.checks["snapshot-refused-changed"] += 1  # a vm.set since: refused, rightly
        else:
            self.violation(f"{label}: {how} {name} from its listed snapshot {snap} "
                           f"({entry}): {r}")

    def check_images(self, conn, label, listed):
        """The store lists exactly its complete files; an image in use is not deleted."""
        r = conn.call("image.list")
        if not r.ok:
            self.violation(f"{label}: image.list: {r}")
            return
        images = {i["name"]: i for i in r.result.get("images", [])}
        d = os.path.join(self.state_dir, "images")
        files = set(os.listdir(d)) if os.path.isdir(d) else set()
        records = {f[:-5] for f in files if f.endswith(".json")}
        disks = {f.rsplit(".", 1)[0] for f in files if f.endswith((".qcow2", ".raw"))
                 and not f.startswith(".")}
        if set(images) != records & disks:
            self.violation(f"{label}: image.list {sorted(images)}, but the store holds "
                           f"{sorted(records & disks)}")
        for name in sorted(records ^ disks):
            self.violation(f"{label}: images/ has the record or the file of {name} alone: "
                           f"{sorted(f for f in files if f.startswith(name + '.'))}")
        for f in sorted(files):
            if f.startswith(".") and ".import-" in f:
                self.violation(f"{label}: images/{f} is left by an import "
                               f"({os.path.getsize(os.path.join(d, f))} bytes)")
        for name, img in sorted(images.items()):
            users = {n for n, v in listed.items() if v.get("image") == img.get("path")}
            said = set(img.get("used_by") or [])
            if said != users:
                self.violation(f"{label}: image {name} says it is used by {sorted(said)}, "
                               f"the VMs over it are {sorted(users)}")
            if users:
                g = conn.call("image.delete", {"name": name})
                if g.ok or g.kind != "failed-precondition":
                    self.violation(f"{label}: image.delete {name}, in use by "
                                   f"{sorted(users)}: {g}")
                self.checks["image-in-use-kept"] += 1
        self.checks["images"] += 1

    @staticmethod
    def parse_time(text):
        for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
            try:
                return datetime.datetime.strptime(text, fmt).replace(
                    tzinfo=datetime.timezone.utc).timestamp()
            except (ValueError, TypeError):
                pass
        return None

    def journal_seqs(self, since):
        """The sequence numbers of the journal's whole entries stamped at or after @since."""
        seqs = []
        for base in ("events.jsonl.1", "events.jsonl"):
            try:
                with open(os.path.join(self.state_dir, base), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for line in data.split(b"\n")[:-1]:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                t = self.parse_time(entry.get("time")) if isinstance(entry, dict) else None
                if t is not None and t >= since and isinstance(entry.get("params"), dict):
                    seqs.append(entry.get("seq"))
        return seqs

    def check_replay(self, label, notes, result, since):
        """A replay in order, no number twice, holes only where the state directory was
        full (the entry could not be written) or, one each, where vmsupd was killed; with
        @since (wall clock) it is also exactly what the journal's files hold."""
        got = [(n.get("params", {}).get("seq"), n.get("params", {}).get("time"))
               for n in notes]
        if len(got) != result.get("replayed"):
            self.violation(f"{label}: {len(got)} events replayed, the answer says "
                           f"{result.get('replayed')}")
        top = result.get("seq") or 0
        unexplained = 0
        holes = 0
        with self.lock:
            windows = list(self.fill_windows) + [(t, float("inf"))
                                                  for t in self.fill_started.values()]
        for (s1, t1), (s2, t2) in zip(got, got[1:]):
            if not isinstance(s1, int) or not isinstance(s2, int) or s2 <= s1:
                self.violation(f"{label}: the replay goes from seq {s1} to {s2}: a duplicate "
                               f"or out of order")
                continue
            if s2 == s1 + 1:
                continue
            holes += 1
            a, b = self.parse_time(t1) or 0, self.parse_time(t2) or float("inf")
            if not any(w0 <= b + 1 and w1 >= a - 1 for w0, w1 in windows):
                unexplained += s2 - s1 - 1
        if got and isinstance(got[-1][0], int) and got[-1][0] > top:
            self.violation(f"{label}: replayed seq {got[-1][0]} above the answer's {top}")
        if unexplained > self.kills:
            self.violation(f"{label}: the replay misses {unexplained} sequence numbers "
                           f"outside the times the state directory was full, after "
                           f"{self.kills} kills")
        if since is not None:
            on_disk = self.journal_seqs(since)
            if sorted(on_disk) != [s for s, _ in got]:
                missing = sorted(set(on_disk) - {s for s, _ in got})
                extra = sorted({s for s, _ in got} - set(on_disk))
                self.violation(f"{label}: the replay is not the journal: {len(got)} events, "
                               f"{len(on_disk)} on disk; missing {missing[:10]}, not on disk "
                               f"{extra[:10]}")
        with self.lock:
            self.replayed_max = max(self.replayed_max, len(got))
            self.journal_holes += holes
        self.checks["journal-replay"] += 1

    def check_journal(self, conn, label):
        since = self.run_started - 5
        stamp = datetime.datetime.fromtimestamp(since, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        notes = []
        r = conn.call("events.subscribe", {"since": stamp, "follow": False}, notes)
        if not r.ok:
            self.violation(f"{label}: events.subscribe {{since: {stamp}}}: {r}")
            return
        # the stamp has whole seconds: what the daemon read from is what the files hold
        self.check_replay(f"{label}: events.subscribe {{since: {stamp}}}", notes, r.result,
                          int(since))

    def check_viewers(self, label, when, close=True):
        """vmsupd answers at once with viewers attached that never read."""
        with self.lock:
            viewers = list(self.stalled)
        t0 = now()
        try:
            conn = RpcConn(self.socket_path, self.t(30))
            try:
                r = conn.call("daemon.info")
            finally:
                conn.close()
        except OSError as e:
            r = CallResult(transport=True, kind="transport", message=str(e))
        took = now() - t0
        with self.lock:
            self.info_rtt_max = max(self.info_rtt_max, took)
        if not r.ok or took > self.t(5):
            self.violation(f"{label}: {when}, with {len(viewers)} console viewers that never "
                           f"read, daemon.info took {took:.1f} s: {r}")
        if close:
            with self.lock:
                self.stalled = []
            for _vm, fd in viewers:
                os.close(fd)
            self.checks["viewers"] += 1

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
            # its snapshots go with it
            s = conn.call("snapshot.list", {"name": name})
            left = [p for p in (os.path.join(self.state_dir, "snapshots", name + ".json"),
                                os.path.join(self.state_dir, "snapshots", name))
                    if os.path.exists(p)]
            if s.kind != "not-found" or left:
                self.violation(f"{label}: VM {name} deleted, then snapshot.list: {s}; "
                               f"left: {left}")
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
            self.spot_recreate(conn, listed, halts)
        finally:
            conn.close()

    def spot_recreate(self, conn, listed, halts):
        """A VM with snapshots deleted and made again under its name: it has none."""
        label = f"after kill {self.kills}"
        for i in range(len(halts)):
            name = halts[(self.kills + i) % len(halts)]
            r = conn.call("snapshot.list", {"name": name})
            if r.ok and r.result.get("snapshots"):
                break
        else:
            return
        self.check_control(conn, name, listed[name], label, delete=True)
        with self.lock:
            self.vms[name].defined = False
        r = conn.call("vm.create", dict(self.create_params(name, None), wait=True))
        if not r.ok:
            self.violation(f"{label}: vm.create {name} again after its delete: {r}")
            return
        with self.lock:
            self.vms[name].defined = True
        s = conn.call("snapshot.list", {"name": name})
        if not s.ok or s.result.get("snapshots"):
            self.violation(f"{label}: VM {name} made again after its delete lists the old "
                           f"snapshots: {s}")
        self.checks["snapshots-gone-with-vm"] += 1

    def final_control(self):
        conn = RpcConn(self.socket_path, self.t(120))
        try:
            for ws in self.workspaces:
                conn.call("workspace.delete", {"name": ws, "force": True})
            listed = self.list_all(conn)
            for name in sorted(listed):
                self.check_control(conn, name, listed[name], "at the end", delete=True)
            # no VM is over a stored image now: each goes
            images = conn.call("image.list")
            for img in images.result.get("images", []) if images.ok else []:
                r = conn.call("image.delete", {"name": img["name"]})
                if not r.ok:
                    self.violation(f"at the end: image.delete {img['name']}, used by no VM: "
                                   f"{r}")
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
        print(f"seen at the checks: {self.paused_seen} paused VMs, {self.snapshots_seen} "
              f"snapshots, replays of up to {self.replayed_max} events ({self.journal_holes} "
              f"holes); console: {self.console_bytes} bytes read, {self.stalled_total} "
              f"viewers that never read; daemon.info at most {self.info_rtt_max:.2f} s")
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
