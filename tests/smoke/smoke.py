#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
End-to-end smoke scenarios for vmsup: the installed vmsupd and vmsup, real
QEMU (TCG) and the bundled guest, driven through the CLI, raw JSON-RPC and
D-Bus (the gdbus binary on a private bus).

    smoke.py install [SCENARIO...]   install the build into the private DESTDIR
                                     (and check that meson registers exactly
                                     the scenarios defined here)
    smoke.py list                    print the scenario names
    smoke.py run SCENARIO            run one scenario (a scenario may be
                                     called "list" or "install" too)

Each scenario has its own temporary state and runtime directories and its
own daemon, and in a finally block kills every process it caused: the
daemons it started, the QEMU processes found through vm.get pids, the
runtime directories' qemu.pid files and the temporary directory's path in
their command lines, and any private dbus-daemon. Nothing else is touched.

Environment (set by tests/smoke/meson.build): SMOKE_ROOT (the DESTDIR),
SMOKE_PREFIX, SMOKE_BINDIR, SMOKE_LIBEXECDIR, SMOKE_DATADIR, SMOKE_BUILD_ROOT,
SMOKE_MESON. Optional: SMOKE_BOOT_TIMEOUT (seconds, default 90),
SMOKE_LONG_SECONDS (workspace-long duration, default 120), SMOKE_KEEP=1
(keep the temporary directory of a failed scenario).
"""

import base64
import errno
import fcntl
import glob
import json
import os
import pty
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

# the suite's one timeout factor (see tests/vmsup-test-util.h) scales the default
TIMEOUT_MULTIPLIER = int(os.environ.get("VMSUP_TEST_TIMEOUT_MULTIPLIER", "1"))
BOOT_TIMEOUT = float(os.environ.get("SMOKE_BOOT_TIMEOUT", str(90 * TIMEOUT_MULTIPLIER)))
LONG_SECONDS = float(os.environ.get("SMOKE_LONG_SECONDS", "120"))
GUEST_MIB = 128
BUS_NAME = "io.github.vmsup.Supervisor1"
BUS_PATH = "/io/github/vmsup/Supervisor1"
BUS_IFACE = "io.github.vmsup.Supervisor1"

# vmsup(1) exit codes
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_ALREADY_EXISTS = 4
EXIT_INVALID_ARGUMENT = 5
EXIT_FAILED_PRECONDITION = 7
EXIT_NO_DAEMON = 10
EXIT_DOWN = 11

# DESIGN.md error codes
ERR_NOT_FOUND = 1
ERR_ALREADY_EXISTS = 2
ERR_INVALID_ARGUMENT = 3
ERR_FAILED_PRECONDITION = 5
ERR_CANCELLED = 6

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "-CRITICAL **", "-ERROR **")


class SmokeFailure(AssertionError):
    pass


# what vm.get says that changes with time alone: idle seconds, and past 10 s why idle, when stopped
IDLE_CLOCK = ("idle_s", "idle_reason", "auto_stop_in_s")


def check(cond, message):
    if not cond:
        raise SmokeFailure(message)


def step(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def wait_for(what, predicate, timeout, interval=0.2):
    """Polls predicate() until it returns something true; returns that.

    RpcError and OSError count as "not yet"; a SmokeFailure ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_exc = None
        except (RpcError, OSError) as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc})" if last_exc else ""
            raise SmokeFailure(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(interval)


# --- processes ---------------------------------------------------------------


def pid_alive(pid):
    """True while @pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2:][:1]
    return state not in (b"Z", b"X")


def proc_read(pid, what):
    try:
        with open(f"/proc/{pid}/{what}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def proc_cmdline(pid):
    return [a.decode(errors="replace") for a in proc_read(pid, "cmdline").split(b"\0") if a]


def qemu_holds_file(pid, cmdline, option, path):
    """QEMU is handed files as /proc/self/fd/N: its option names such a descriptor of @path."""
    if option not in cmdline[:-1]:
        return False
    value = cmdline[cmdline.index(option) + 1]
    if not value.startswith("/proc/self/fd/"):
        return False
    held = os.stat(f"/proc/{pid}/fd/{value[len('/proc/self/fd/'):]}")
    want = os.stat(path)
    return (held.st_dev, held.st_ino) == (want.st_dev, want.st_ino)


def proc_rss_kib(pid):
    for line in proc_read(pid, "status").decode(errors="replace").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def proc_fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def wait_pid_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# --- the installed layout ------------------------------------------------------


class Layout:
    def __init__(self):
        env = os.environ
        missing = [k for k in ("SMOKE_ROOT", "SMOKE_PREFIX", "SMOKE_BINDIR", "SMOKE_LIBEXECDIR",
                               "SMOKE_DATADIR", "SMOKE_LIBDIR", "SMOKE_BUILD_ROOT")
                   if not env.get(k)]
        check(not missing, f"run through 'meson test' (missing {', '.join(missing)})")
        self.root = env["SMOKE_ROOT"]
        self.build_root = env["SMOKE_BUILD_ROOT"]
        self.meson = env.get("SMOKE_MESON") or shutil.which("meson") or "meson"
        prefix = env["SMOKE_PREFIX"]
        self.configured_bindir = os.path.join(prefix, env["SMOKE_BINDIR"])
        self.configured_libexecdir = os.path.join(prefix, env["SMOKE_LIBEXECDIR"])
        self.configured_datadir = os.path.join(prefix, env["SMOKE_DATADIR"])
        self.configured_libdir = os.path.join(prefix, env["SMOKE_LIBDIR"])
        self.bindir = self.rooted(self.configured_bindir)
        self.libexecdir = self.rooted(self.configured_libexecdir)
        self.datadir = self.rooted(self.configured_datadir)
        self.vmsupd = os.path.join(self.libexecdir, "vmsupd")
        self.vmsup = os.path.join(self.bindir, "vmsup")
        # the bundled guest is a kernel for this architecture: under lib, not share
        self.pkglibdir = os.path.join(self.rooted(self.configured_libdir), "vmsup")
        self.guest_dir = os.path.join(self.pkglibdir, "guest")
        self.bus_service = os.path.join(self.datadir, "dbus-1", "services",
                                        BUS_NAME + ".service")
        self.stamp = os.path.join(self.root, ".smoke-installed")

    def rooted(self, path):
        return os.path.join(self.root, os.path.relpath(os.path.abspath(path), "/"))

    def built_artifacts(self):
        """What the install copies that changes with the build."""
        out = {}
        for rel in ("src/daemon/vmsupd", "src/cli/vmsup", "data/guest/initramfs.cpio.lz4",
                    "data/guest/vmlinux", "data/guest/vmlinuz",
                    "data/" + BUS_NAME + ".service"):
            path = os.path.join(self.build_root, rel)
            try:
                out[rel] = os.stat(path).st_mtime_ns
            except OSError:
                out[rel] = None
        return out

    def install(self):
        step(f"installing the build into {self.root}")
        if os.path.isdir(self.root):
            shutil.rmtree(self.root)
        proc = subprocess.run([self.meson, "install", "-C", self.build_root, "--destdir",
                               self.root, "--no-rebuild", "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check(proc.returncode == 0, f"meson install failed ({proc.returncode}):\n{proc.stdout}")
        with open(self.stamp, "w") as f:
            json.dump(self.built_artifacts(), f)

    def ensure_installed(self, force=False):
        """Installs when forced, or when the DESTDIR is missing or older than the build."""
        os.makedirs(os.path.dirname(self.root) or ".", exist_ok=True)
        with open(self.root + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with open(self.stamp) as f:
                    current = json.load(f) == self.built_artifacts()
            except (OSError, ValueError):
                current = False
            if force or not current:
                self.install()
        self.verify()

    def verify(self):
        for path in (self.vmsupd, self.vmsup):
            check(os.access(path, os.X_OK), f"not installed: {path}")
        check(os.path.isfile(os.path.join(self.guest_dir, "initramfs.cpio.lz4")),
              f"the bundled guest is not installed in {self.guest_dir} (is -Dguest disabled?)")
        check(os.path.isfile(os.path.join(self.guest_dir, "vmlinux")) or
              os.path.isfile(os.path.join(self.guest_dir, "vmlinuz")),
              f"no guest kernel installed in {self.guest_dir}")
        check(os.path.isfile(self.bus_service), f"no D-Bus service file at {self.bus_service}")
        check(shutil.which("qemu-system-x86_64") is not None or os.environ.get("VMSUP_QEMU"),
              "qemu-system-x86_64 is not installed")


# --- JSON-RPC ---------------------------------------------------------------


class RpcError(Exception):
    def __init__(self, error):
        self.error = error
        self.code = error.get("code")
        self.message = error.get("message", "")
        self.kind = (error.get("data") or {}).get("kind")
        super().__init__(f"{self.code} {self.kind}: {self.message}")


class Rpc:
    """A raw newline-delimited JSON-RPC 2.0 connection to vmsupd."""

    def __init__(self, path, timeout=120):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.timeout = timeout
        self.buf = b""
        self.next_id = 1
        self.notifications = []

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self, timeout=None):
        """One line without its newline; None at EOF; socket.timeout on timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no line in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def read_message(self, timeout=None):
        line = self.read_line(timeout)
        check(line is not None, "vmsupd closed the connection")
        try:
            msg = json.loads(line)
        except ValueError:
            raise SmokeFailure(f"vmsupd sent a line that is not JSON: {line[:200]!r}")
        check(isinstance(msg, dict) and msg.get("jsonrpc") == "2.0",
              f"not a JSON-RPC 2.0 message: {line[:200]!r}")
        return msg

    def request(self, method, params=None, timeout=None):
        """The whole response object of a call (result or error)."""
        rid = self.next_id
        self.next_id += 1
        req = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            req["params"] = params
        self.send_raw(json.dumps(req).encode() + b"\n")
        while True:
            msg = self.read_message(timeout)
            if "id" not in msg:
                self.notifications.append(msg)
                continue
            check(msg["id"] == rid, f"answer to id {msg['id']} while waiting for {rid}")
            return msg

    def call(self, method, params=None, timeout=None):
        msg = self.request(method, params, timeout)
        if "error" in msg:
            raise RpcError(msg["error"])
        check("result" in msg, f"{method}: neither result nor error: {msg}")
        return msg["result"]

    def next_notification(self, timeout):
        if self.notifications:
            return self.notifications.pop(0)
        msg = self.read_message(timeout)
        check("id" not in msg, f"unexpected answer while waiting for an event: {msg}")
        return msg


# --- GVariant text (gdbus call output) -------------------------------------------


class GVariantText:
    """Parses the text form that gdbus prints into Python values."""

    NUMBER_TYPES = ("byte", "int16", "uint16", "int32", "uint32", "int64", "uint64",
                    "handle", "double")

    def __init__(self, text):
        self.s = text
        self.i = 0

    @classmethod
    def parse(cls, text):
        p = cls(text.strip())
        value = p.value()
        p.ws()
        if p.i != len(p.s):
            raise ValueError(f"trailing text at {p.i}: {p.s[p.i:p.i + 40]!r}")
        return value

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t\r\n":
            self.i += 1

    def peek(self):
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, c):
        if self.peek() != c:
            raise ValueError(f"expected {c!r} at {self.i}: {self.s[self.i:self.i + 40]!r}")
        self.i += 1

    def value(self):
        c = self.peek()
        if c == "(":
            self.i += 1
            items = []
            while self.peek() != ")":
                items.append(self.value())
                if self.peek() == ",":
                    self.i += 1
            self.i += 1
            return tuple(items)
        if c == "[":
            self.i += 1
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.i += 1
            self.i += 1
            return items
        if c == "{":
            self.i += 1
            out = {}
            while self.peek() != "}":
                key = self.value()
                if self.peek() in (":", ","):
                    self.i += 1
                out[key] = self.value()
                if self.peek() == ",":
                    self.i += 1
            self.i += 1
            return out
        if c == "<":
            self.i += 1
            v = self.value()
            self.expect(">")
            return v
        if c in "'\"":
            return self.string()
        if c == "@":
            # a type annotation: @a{sv} {}, @mv nothing
            while self.i < len(self.s) and self.s[self.i] not in " \t":
                self.i += 1
            return self.value()
        if c == "b" and self.s[self.i + 1:self.i + 2] in ("'", '"'):
            self.i += 1
            return self.string().encode()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.s, self.i)
        if m and m.group(0) not in ("inf", "nan"):
            word = m.group(0)
            self.i = m.end()
            if word == "true":
                return True
            if word == "false":
                return False
            if word == "nothing":
                return None
            if word == "just":
                return self.value()
            if word in ("objectpath", "signature"):
                self.ws()
                return self.string()
            if word in self.NUMBER_TYPES:
                return self.number(word == "double")
            raise ValueError(f"unknown word {word!r}")
        return self.number(False)

    def number(self, is_double):
        self.ws()
        m = re.compile(r"[-+]?(0x[0-9a-fA-F]+|inf|nan|[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?)").match(
            self.s, self.i)
        if not m:
            raise ValueError(f"expected a number at {self.i}: {self.s[self.i:self.i + 40]!r}")
        text = m.group(0)
        self.i = m.end()
        if "0x" in text:
            return int(text, 16)
        if is_double or any(ch in text for ch in ".eEin"):
            return float(text)
        return int(text)

    def string(self):
        quote = self.s[self.i]
        self.i += 1
        out = []
        escapes = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f",
                   "v": "\v", "\\": "\\", "'": "'", '"': '"'}
        while True:
            c = self.s[self.i]
            self.i += 1
            if c == quote:
                return "".join(out)
            if c != "\\":
                out.append(c)
                continue
            e = self.s[self.i]
            self.i += 1
            if e == "u":
                out.append(chr(int(self.s[self.i:self.i + 4], 16)))
                self.i += 4
            elif e == "U":
                out.append(chr(int(self.s[self.i:self.i + 8], 16)))
                self.i += 8
            else:
                out.append(escapes.get(e, e))


def gvariant_dict_arg(params):
    """A Python dict as the a{sv} text gdbus call accepts."""
    def lit(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return f"int64 {v}"
        if isinstance(v, float):
            return f"double {v!r}"
        if isinstance(v, str):
            return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
        if isinstance(v, list):
            if not v:
                return "@as []"
            return "[" + ", ".join(lit(x) for x in v) + "]"
        raise ValueError(f"cannot pass {v!r} to gdbus")
    return "{" + ", ".join(f"'{k}': <{lit(v)}>" for k, v in params.items()) + "}"


# --- one scenario's world -----------------------------------------------------


class Daemon:
    def __init__(self, ctx, proc, socket_path, log_path, label):
        self.ctx = ctx
        self.proc = proc
        self.pid = proc.pid if proc is not None else None
        self.socket = socket_path
        self.log = log_path
        self.label = label

    def alive(self):
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)


class Ctx:
    def __init__(self, name, layout):
        self.name = name
        self.layout = layout
        base = tempfile.gettempdir()
        if len(base) > 40:  # unix socket paths are short: keep ours well below 108
            base = "/tmp"
        self.tmp = tempfile.mkdtemp(prefix=f"vsmoke-{name[:10]}-", dir=base)
        self.daemons = []
        self.qemu_pids = set()
        self.other_pids = []   # (pid, marker that must be in its cmdline/environ)
        self.rpcs = []
        self.bus_pid = None
        self.bus_proc = None
        self.bus_log = None
        self.bus_address = None
        self.failed = False
        self.n_daemons = 0
        self.env = self.base_env()

    # environment and directories

    def base_env(self):
        env = dict(os.environ)
        for k in ("VMSUP_SOCKET", "DBUS_SESSION_BUS_ADDRESS", "DBUS_STARTER_ADDRESS",
                  "DBUS_STARTER_BUS_TYPE", "LANGUAGE", "G_MESSAGES_DEBUG"):
            env.pop(k, None)
        env["LC_ALL"] = "C.UTF-8"
        # the installed prefix is not the configured one: point at the installed data
        env["VMSUP_DATA_DIR"] = self.layout.pkglibdir
        env["XDG_RUNTIME_DIR"] = self.path("xdg-runtime")
        env["XDG_STATE_HOME"] = self.path("xdg-state")
        env["XDG_CONFIG_HOME"] = self.path("xdg-config")
        env["XDG_DATA_HOME"] = self.path("xdg-data")
        env["XDG_CACHE_HOME"] = self.path("xdg-cache")
        env["HOME"] = self.path("home")
        for d in ("xdg-runtime", "xdg-state", "xdg-config", "xdg-data", "xdg-cache", "home"):
            os.makedirs(self.path(d), mode=0o700, exist_ok=True)
        return env

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write_config(self, filename, keys):
        lines = ["[vmsupd]"] + [f"{k}={v}" for k, v in keys.items()]
        path = self.path(filename)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    # the daemon

    def start_daemon(self, config=None, dbus=False, state="state", runtime="run",
                     sock="vmsupd.sock", label=None, env_extra=None, nofile_soft=None):
        self.n_daemons += 1
        label = label or f"vmsupd-{self.n_daemons}"
        keys = {"Accel": "tcg"}
        keys.update(config or {})
        keys = {k: v for k, v in keys.items() if v is not None}
        conf = self.write_config(f"{label}.conf", keys)
        socket_path = self.path(sock)
        log_path = self.path(f"{label}.log")
        argv = [self.layout.vmsupd, "--session", "--state-dir", self.path(state),
                "--runtime-dir", self.path(runtime), "--socket", socket_path,
                "--config", conf]
        env = dict(self.env)
        env.update(env_extra or {})
        if dbus:
            check(self.bus_address is not None, "start the private bus first")
            env["DBUS_SESSION_BUS_ADDRESS"] = self.bus_address
        else:
            argv.append("--no-dbus")
        step(f"starting {label}: {' '.join(argv[1:])}")
        log = open(log_path, "ab")
        def lower_nofile():
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile_soft, hard), hard))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=self.tmp,
                                preexec_fn=lower_nofile if nofile_soft else None)
        log.close()
        daemon = Daemon(self, proc, socket_path, log_path, label)
        self.daemons.append(daemon)
        self.wait_daemon_ready(daemon)
        return daemon

    def wait_daemon_ready(self, daemon, timeout=60):
        def ready():
            check(daemon.alive(), f"{daemon.label} exited early:\n{self.tail(daemon.log)}")
            r = Rpc(daemon.socket, timeout=10)
            try:
                info = r.call("daemon.info")
            finally:
                r.close()
            return info
        info = wait_for(f"{daemon.label} to answer on {daemon.socket}", ready, timeout)
        if daemon.pid is not None:
            check(info.get("pid") == daemon.pid,
                  f"daemon.info pid {info.get('pid')} is not the daemon we started "
                  f"({daemon.pid})")
        return info

    def rpc(self, daemon=None, timeout=120):
        daemon = daemon or self.daemons[-1]
        r = Rpc(daemon.socket, timeout=timeout)
        self.rpcs.append(r)
        return r

    def call(self, method, params=None, daemon=None, timeout=120):
        r = Rpc((daemon or self.daemons[-1]).socket, timeout=timeout)
        try:
            return r.call(method, params)
        finally:
            r.close()

    # the CLI

    def cli(self, *args, rc=EXIT_OK, daemon=None, input=None, timeout=180, socket_path=None,
            env=None):
        """Runs the installed vmsup; checks its exit code unless rc is None."""
        argv = [self.layout.vmsup]
        if socket_path is None and daemon is not False and self.daemons:
            socket_path = (daemon or self.daemons[-1]).socket
        if socket_path:
            argv += ["--socket", socket_path]
        argv += list(args)
        proc = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env or self.env, timeout=timeout, text=True, cwd=self.tmp)
        shown = " ".join(args)
        for marker in SANITIZER_MARKERS:
            check(marker not in proc.stderr,
                  f"'vmsup {shown}' reported {marker!r}:\n{proc.stderr}")
        if rc is not None:
            check(proc.returncode == rc,
                  f"'vmsup {shown[:300]}' exited {proc.returncode}, expected {rc}\n"
                  f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}")
        return proc

    def cli_json(self, *args, **kw):
        proc = self.cli("--json", *args, **kw)
        try:
            return json.loads(proc.stdout)
        except ValueError:
            raise SmokeFailure(f"'vmsup --json {' '.join(args)}' printed no JSON: "
                               f"{proc.stdout[:500]!r}")

    # VMs

    def note_vm(self, vm):
        if isinstance(vm, dict) and isinstance(vm.get("pid"), int) and vm["pid"] > 0:
            self.qemu_pids.add(vm["pid"])
        return vm

    def get_vm(self, name, daemon=None):
        return self.note_vm(self.call("vm.get", {"name": name}, daemon=daemon))

    def create_vm(self, name, start=True, extra=(), daemon=None):
        args = ["create", name, "--memory", str(GUEST_MIB)] + list(extra)
        if start:
            args.append("--start")
        proc = self.cli(*args, daemon=daemon)
        vm = self.get_vm(name, daemon=daemon)
        if start:
            check(vm["state"] == "running", f"VM {name} is {vm['state']} after create --start")
            check(pid_alive(vm["pid"]), f"VM {name}: QEMU pid {vm['pid']} is not alive")
        return vm, proc

    def wait_state(self, name, states, timeout=60, daemon=None):
        states = (states,) if isinstance(states, str) else tuple(states)

        def is_state():
            vm = self.get_vm(name, daemon=daemon)
            return vm if vm["state"] in states else None
        return wait_for(f"VM {name} to be {'/'.join(states)}", is_state, timeout)

    def wait_agent(self, name, daemon=None, timeout=None):
        """Waits until the guest agent answers (the guest has booted)."""
        t0 = time.monotonic()
        vm = self.get_vm(name, daemon=daemon)
        check(vm["state"] == "running", f"VM {name} is {vm['state']}, not running")
        r = self.rpc(daemon)

        def ping():
            try:
                return r.call("vm.ping", {"name": name}, timeout=30)
            except RpcError as e:
                check(e.code not in (ERR_NOT_FOUND, ERR_FAILED_PRECONDITION) or
                      pid_alive(vm["pid"]), f"VM {name} died while booting: {e}")
                raise
        result = wait_for(f"the guest agent of {name}", ping, timeout or BOOT_TIMEOUT,
                          interval=0.5)
        step(f"guest agent of {name} answered after {time.monotonic() - t0:.1f} s")
        return result

    def runtime_pidfiles(self):
        return glob.glob(os.path.join(self.tmp, "**", "qemu.pid"), recursive=True)

    # D-Bus

    def start_bus(self, service_dirs):
        conf = self.path("bus.conf")
        listen_dir = self.path("bus")
        os.makedirs(listen_dir, exist_ok=True)
        dirs = "\n".join(f"  <servicedir>{d}</servicedir>" for d in service_dirs)
        with open(conf, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={listen_dir}</listen>
{dirs}
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
        # in the foreground, so that what activated services print lands in its log
        self.bus_log = self.path("bus.log")
        with open(self.bus_log, "wb") as log:
            proc = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork",
                                     "--print-address=1", "--print-pid=1"],
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=self.env)
        self.bus_proc = proc
        self.bus_pid = proc.pid

        def address():
            check(proc.poll() is None, f"dbus-daemon exited:\n{self.tail(self.bus_log)}")
            with open(self.bus_log) as f:
                lines = f.read().splitlines()
            return lines[0] if len(lines) >= 2 and lines[1].strip() == str(proc.pid) else None
        self.bus_address = wait_for("the private bus", address, 30, interval=0.05)
        step(f"private bus {self.bus_address} (pid {self.bus_pid})")
        return self.bus_address

    def gdbus(self, *args, rc=0, timeout=120):
        env = dict(self.env)
        env["DBUS_SESSION_BUS_ADDRESS"] = self.bus_address
        proc = subprocess.run(["gdbus"] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
        if rc is not None:
            check(proc.returncode == rc,
                  f"gdbus {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def dbus_call(self, method, *args, path=BUS_PATH, iface=BUS_IFACE, dest=BUS_NAME):
        """Calls a method; returns the tuple of out args as Python values."""
        proc = self.gdbus("call", "--session", "--dest", dest, "--object-path", path,
                          "--method", f"{iface}.{method}", *args)
        return GVariantText.parse(proc.stdout)

    def dbus_error(self, method, *args, path=BUS_PATH, iface=BUS_IFACE):
        proc = self.gdbus("call", "--session", "--dest", BUS_NAME, "--object-path", path,
                          "--method", f"{iface}.{method}", *args, rc=None)
        check(proc.returncode != 0, f"{method} {args} succeeded: {proc.stdout}")
        m = re.search(r"GDBus\.Error:([A-Za-z0-9_.]+):", proc.stderr)
        check(m is not None, f"{method}: no D-Bus error name in {proc.stderr!r}")
        return m.group(1), proc.stderr

    # logs and cleanup

    @staticmethod
    def tail(path, n=40):
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return f"({path} unreadable)"

    def daemon_log_problems(self):
        problems = []
        for d in self.daemons:
            try:
                with open(d.log, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            for marker in SANITIZER_MARKERS:
                if marker in text:
                    problems.append(f"{d.label} log has {marker!r}:\n{self.tail(d.log, 60)}")
                    break
        return problems

    def our_qemu_pids(self):
        """Every QEMU this scenario caused, by every means we know of."""
        pids = set(self.qemu_pids)
        for pidfile in self.runtime_pidfiles():
            try:
                with open(pidfile) as f:
                    pids.add(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            argv = proc_cmdline(entry)
            if (any(self.tmp in a for a in argv) and
                    any(os.path.basename(a).startswith("qemu-") for a in argv[:2])):
                pids.add(int(entry))
        return pids

    def is_ours(self, pid):
        """Only processes whose command line or environment names our directory."""
        marker = self.tmp.encode()
        return marker in proc_read(pid, "cmdline") or marker in proc_read(pid, "environ")

    def kill_pid(self, pid, what):
        if not pid_alive(pid) or not self.is_ours(pid):
            return
        step(f"cleanup: killing {what} {pid}")
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        wait_pid_gone(pid, 10)

    def cleanup(self):
        for r in self.rpcs:
            r.close()
        # daemons first, so none reacts to its VMs going away
        for d in self.daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.proc.send_signal(signal.SIGTERM)
                try:
                    d.proc.wait(10)
                except subprocess.TimeoutExpired:
                    d.proc.kill()
                    d.proc.wait(10)
            elif d.proc is None and d.pid:
                if pid_alive(d.pid) and self.is_ours(d.pid):
                    os.kill(d.pid, signal.SIGTERM)
                    if not wait_pid_gone(d.pid, 10):
                        self.kill_pid(d.pid, "vmsupd")
        for pid in sorted(self.our_qemu_pids()):
            self.kill_pid(pid, "QEMU")
        for pid, what in self.other_pids:
            self.kill_pid(pid, what)
        if self.bus_proc is not None and self.bus_proc.poll() is None:
            step(f"cleanup: stopping the private bus {self.bus_pid}")
            self.bus_proc.terminate()
            try:
                self.bus_proc.wait(5)
            except subprocess.TimeoutExpired:
                self.bus_proc.kill()
                self.bus_proc.wait(5)
        left = [p for p in self.our_qemu_pids() if pid_alive(p)]
        if left:
            print(f"cleanup: processes still alive: {left}", flush=True)
            self.failed = True

    def dump_diagnostics(self):
        for d in self.daemons:
            print(f"----- {d.label} log (tail) -----\n{self.tail(d.log, 80)}", flush=True)
        for path in glob.glob(os.path.join(self.tmp, "**", "*.log"), recursive=True):
            if any(path == d.log for d in self.daemons):
                continue
            print(f"----- {path} (tail) -----\n{self.tail(path, 20)}", flush=True)


# --- scenarios ------------------------------------------------------------------

SCENARIOS = {}


def scenario(name):
    def register(fn):
        SCENARIOS[name] = fn
        return fn
    return register


def run_with_pty(argv, env, timeout, cwd):
    """Runs argv with stdout and stderr on a pseudo-terminal; returns (rc, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, env=env, cwd=cwd)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            check(left > 0, f"{argv} did not finish in {timeout} s")
            ready, _, _ = select.select([master], [], [], min(left, 1.0))
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(errors="replace")


@scenario("create")
def sc_create(ctx):
    """create: the bundled guest, waited for, with progress output."""
    ctx.start_daemon()
    step("vmsup create on a terminal draws a progress bar")
    rc, out = run_with_pty([ctx.layout.vmsup, "--socket", ctx.daemons[-1].socket, "create",
                            "bar", "--memory", str(GUEST_MIB)], {**ctx.env, "TERM": "xterm"},
                           120, ctx.tmp)
    check(rc == EXIT_OK, f"create on a tty exited {rc}: {out!r}")
    check(re.search(r"\[#+\.*\]\s+100%", out), f"no finished progress bar in {out!r}")
    check("bar" in out and "created" in out, f"no confirmation in {out!r}")
    vm = ctx.get_vm("bar")
    check(vm["state"] in ("defined", "stopped"), f"'bar' is {vm['state']}, not defined")

    step("vmsup create --start through a pipe: one line per stage on stderr, the outcome on stdout")
    vm, proc = ctx.create_vm("web")
    stages = re.findall(r"^(.*) \((\d+)%\)$", proc.stderr, re.M)
    check(len(stages) >= 2, f"expected progress lines, got {proc.stderr!r}")
    check(not re.search(r"\(\d+%\)", proc.stdout), f"progress on stdout: {proc.stdout!r}")
    percents = [int(p) for _, p in stages]
    check(percents == sorted(percents), f"progress went backwards: {percents}")
    check(stages[-1][0] != stages[0][0], f"only one stage shown: {stages}")
    check("web" in proc.stdout.splitlines()[-1] and "started" in proc.stdout.splitlines()[-1],
          f"last line does not confirm the start: {proc.stdout!r}")

    step("the VM runs the installed bundled guest")
    check(vm["kernel"].startswith(ctx.layout.guest_dir + os.sep),
          f"kernel {vm['kernel']} is not the installed guest's ({ctx.layout.guest_dir})")
    check(vm["initrd"] == os.path.join(ctx.layout.guest_dir, "initramfs.cpio.lz4"),
          f"initrd {vm['initrd']}")
    cmdline = proc_cmdline(vm["pid"])
    check(cmdline and "qemu-system" in os.path.basename(cmdline[0]),
          f"pid {vm['pid']} is not QEMU: {cmdline}")
    check(qemu_holds_file(vm["pid"], cmdline, "-kernel", vm["kernel"])
          and qemu_holds_file(vm["pid"], cmdline, "-initrd", vm["initrd"]),
          f"QEMU was not given the guest: {cmdline}")
    check(f"{GUEST_MIB}M" in " ".join(cmdline), f"QEMU memory is not {GUEST_MIB}M: {cmdline}")
    ctx.wait_agent("web")
    info = ctx.cli("exec", "web", "--", "cat", "/etc/os-release").stdout
    check("NAME=" in info, f"unexpected os-release: {info!r}")

    step("the operations are done")
    ops = ctx.call("op.list")["operations"]
    check({op["vm"] for op in ops if op["kind"] == "create"} >= {"bar", "web"},
          f"create operations missing: {ops}")
    check(all(op["state"] == "done" and op["progress"] == 1.0 for op in ops),
          f"not all operations done: {ops}")

    step("creating an existing name fails and changes nothing")
    ctx.cli("create", "web", rc=EXIT_ALREADY_EXISTS)
    again = ctx.get_vm("web")
    check(again["pid"] == vm["pid"] and again["state"] == "running",
          f"'web' changed by a refused create: {again}")


@scenario("start")
def sc_start(ctx):
    """start: a defined VM boots; start is idempotent; unknown VM is not-found."""
    ctx.start_daemon()
    vm, _ = ctx.create_vm("s1", start=False)
    check(vm["state"] == "defined", f"fresh VM is {vm['state']}")
    check("pid" not in vm or not vm["pid"], f"defined VM has a pid: {vm}")
    check(not ctx.runtime_pidfiles(), "a runtime directory exists before start")

    out = ctx.cli("start", "s1").stdout
    check("s1" in out, f"start printed {out!r}")
    vm = ctx.get_vm("s1")
    check(vm["state"] == "running" and pid_alive(vm["pid"]), f"after start: {vm}")
    check(vm.get("accel") == "tcg", f"accel {vm.get('accel')}, configured tcg")
    check(os.path.isfile(os.path.join(vm["runtime_dir"], "qemu.pid")),
          f"no qemu.pid in {vm.get('runtime_dir')}")
    with open(os.path.join(vm["runtime_dir"], "qemu.pid")) as f:
        check(int(f.read().strip()) == vm["pid"], "qemu.pid is not vm.get's pid")

    step("starting a running VM again changes nothing")
    p = ctx.cli("start", "s1", rc=None)
    check(p.returncode in (EXIT_OK, EXIT_FAILED_PRECONDITION),
          f"start of a running VM: exit {p.returncode} {p.stderr!r}")
    again = ctx.get_vm("s1")
    check(again["pid"] == vm["pid"] and again["state"] == "running",
          f"second start changed the VM: {again}")
    ctx.wait_agent("s1")
    check(ctx.get_vm("s1")["pid"] == vm["pid"], "the pid changed while booting")

    step("starting an unknown VM")
    p = ctx.cli("start", "nosuchvm", rc=EXIT_NOT_FOUND)
    check("nosuchvm" in p.stderr, f"the error does not name the VM: {p.stderr!r}")


def kill_and_restart_daemon(ctx, label, config=None):
    """kill -9 the current daemon and start another on the same state and runtime dirs."""
    old = ctx.daemons[-1]
    step(f"kill -9 vmsupd {old.pid}")
    os.kill(old.pid, signal.SIGKILL)
    old.proc.wait(10)
    return ctx.start_daemon(config=config, label=label)


def check_same_outcome(before, after, what):
    """A restarted daemon reports the end of the last run as the one before it did."""
    for key in ("state", "exit_reason", "exit_status", "exit_signal"):
        check(before.get(key) == after.get(key),
              f"{what}: {key} was {before.get(key)!r}, after the restart {after.get(key)!r}")
    check(not after.get("pid"), f"{what}: a pid after the restart: {after}")


@scenario("stop")
def sc_stop(ctx):
    """stop: the guest powers off on ACPI, QEMU exits 0, the runtime is cleaned."""
    ctx.start_daemon()
    vm, _ = ctx.create_vm("st")
    ctx.wait_agent("st")
    console = open(os.path.join(vm["runtime_dir"], "console.log"), "rb")
    console.read()
    t0 = time.monotonic()
    out = ctx.cli("stop", "st", "--timeout", "60").stdout
    took = time.monotonic() - t0
    tail = console.read().decode(errors="replace")
    console.close()
    check("st" in out, f"stop printed {out!r}")
    step(f"stop took {took:.2f} s; console after the request: {tail.strip()!r}")
    check("Power down" in tail,
          f"the guest did not power off by itself (no 'Power down' on its console): {tail!r}")
    check(took < 30, f"a graceful stop took {took:.1f} s")
    check(wait_pid_gone(vm["pid"], 10), f"QEMU {vm['pid']} still runs after stop")
    after = ctx.get_vm("st")
    check(after["state"] == "stopped", f"state after stop: {after['state']}")
    check(after.get("exit_status") == 0, f"QEMU exit status {after.get('exit_status')}")
    check("exit_signal" not in after, f"QEMU was killed: {after}")
    check(not after.get("pid"), f"a stopped VM has a pid: {after}")
    check(not os.path.exists(vm["runtime_dir"]), f"{vm['runtime_dir']} is left behind")
    check(os.path.isfile(ctx.path("state", "vms", "st.json")), "the definition is gone")
    check(after.get("exit_reason", "").startswith("stopped on request; QEMU exited"),
          f"exit_reason of a user's stop: {after.get('exit_reason')!r}")

    step("a restarted daemon still knows how the VM ended")
    kill_and_restart_daemon(ctx, "vmsupd-again")
    check_same_outcome(after, ctx.get_vm("st"), "st")

    step("stopping a stopped VM is harmless; unknown VM is not-found")
    ctx.cli("stop", "st")
    check(ctx.get_vm("st")["state"] == "stopped", "state changed")
    ctx.cli("stop", "nosuchvm", rc=EXIT_NOT_FOUND)


@scenario("delete")
def sc_delete(ctx):
    """delete: refuses a running VM without force; with force disk and definition go."""
    ctx.start_daemon()
    vm, _ = ctx.create_vm("dl", extra=["--disk-gib", "1"])
    disk = vm.get("disk")
    check(disk and os.path.isfile(disk), f"no disk file for a VM with --disk-gib: {vm}")
    definition = ctx.path("state", "vms", "dl.json")
    check(os.path.isfile(definition), f"no definition at {definition}")
    keep, _ = ctx.create_vm("keep", start=False)

    step("delete without --force refuses a running VM")
    p = ctx.cli("delete", "dl", rc=EXIT_FAILED_PRECONDITION)
    check("force" in p.stderr, f"the refusal does not mention --force: {p.stderr!r}")
    still = ctx.get_vm("dl")
    check(still["state"] == "running" and still["pid"] == vm["pid"] and pid_alive(vm["pid"]),
          f"a refused delete touched the VM: {still}")

    step("delete --force")
    ctx.cli("delete", "--force", "dl")
    check(wait_pid_gone(vm["pid"], 15), f"QEMU {vm['pid']} survived delete --force")
    p = ctx.cli("get", "dl", rc=EXIT_NOT_FOUND)
    check("dl" in p.stderr, f"{p.stderr!r}")
    check(not os.path.exists(definition), f"{definition} is left behind")
    check(not os.path.exists(disk), f"{disk} is left behind")
    check(not os.path.exists(vm["runtime_dir"]), f"{vm['runtime_dir']} is left behind")
    names = [v["name"] for v in ctx.call("vm.list")["vms"]]
    check(names == ["keep"], f"vm.list after delete: {names}")

    step("a defined VM deletes without force; deleting twice is not-found")
    ctx.cli("delete", "keep")
    check(not os.path.exists(ctx.path("state", "vms", "keep.json")), "keep.json left behind")
    ctx.cli("delete", "keep", rc=EXIT_NOT_FOUND)
    check(ctx.call("vm.list")["vms"] == [], "VMs left after deleting all")


@scenario("set")
def sc_set(ctx):
    """set: live fields apply at once, the others at the next start, and the answer says so."""
    ctx.start_daemon()
    vm, _ = ctx.create_vm("cfg")
    pid = vm["pid"]
    check(vm["cpus"] == 1 and vm["auto_stop"] is True, f"defaults: {vm}")

    step("cpus and memory cannot change live")
    out = ctx.cli("set", "cfg", "--cpus", "2", "--memory", "160").stdout
    check(re.search(r"next start.*cpus.*memory_mib|next start.*memory_mib.*cpus", out),
          f"set does not say what waits for the next start: {out!r}")
    res = ctx.cli_json("set", "cfg", "--no-auto-stop")
    check("auto_stop" not in res.get("pending_restart", []),
          f"auto_stop should apply live: {res}")
    check(sorted(res.get("pending_restart", [])) == ["cpus", "memory_mib"],
          f"pending_restart: {res.get('pending_restart')}")
    now = ctx.get_vm("cfg")
    check(now["cpus"] == 2 and now["memory_mib"] == 160 and now["auto_stop"] is False,
          f"vm.get does not show the new settings: {now}")
    check(sorted(now.get("pending_restart", [])) == ["cpus", "memory_mib"],
          f"vm.get pending_restart: {now.get('pending_restart')}")
    check(now["pid"] == pid and pid_alive(pid), "set restarted the VM")
    cmd = " ".join(proc_cmdline(pid))
    check(f"-m {GUEST_MIB}M" in cmd and "-smp 1" in cmd, f"the running QEMU changed: {cmd}")

    step("invalid values are refused and change nothing")
    ctx.cli("set", "cfg", "--memory", "1", rc=EXIT_INVALID_ARGUMENT)
    ctx.cli("set", "cfg", "--cpus", "100000", rc=EXIT_INVALID_ARGUMENT)
    ctx.cli("set", "cfg", rc=EXIT_USAGE)
    ctx.cli("set", "nosuchvm", "--cpus", "2", rc=EXIT_NOT_FOUND)
    same = ctx.get_vm("cfg")
    check(same["cpus"] == 2 and same["memory_mib"] == 160, f"a refused set changed: {same}")

    step("the next start applies them")
    ctx.cli("stop", "cfg", "--force")
    ctx.cli("start", "cfg")
    vm2 = ctx.get_vm("cfg")
    check(vm2["pid"] != pid, "start reused the old pid")
    check(not vm2.get("pending_restart"), f"still pending after restart: {vm2}")
    cmd = " ".join(proc_cmdline(vm2["pid"]))
    check("-m 160M" in cmd and "-smp 2" in cmd, f"new settings not in QEMU's command: {cmd}")
    check(ctx.get_vm("cfg")["auto_stop"] is False, "auto_stop lost")

    step("a set on a stopped VM has nothing pending")
    ctx.cli("stop", "cfg", "--force")
    res = ctx.cli_json("set", "cfg", "--memory", str(GUEST_MIB))
    check(not res.get("pending_restart"), f"pending on a stopped VM: {res}")


@scenario("list")
def sc_list(ctx):
    """list: the human table and --json agree with reality."""
    ctx.start_daemon()
    out = ctx.cli("list").stdout
    check(out.split() == ["NAME", "STATE", "CPUS", "MEMORY", "ACCEL", "PID"] or out.strip() == "",
          f"empty list: {out!r}")
    check(ctx.cli_json("list") == {"vms": []}, "JSON list of no VMs")
    ctx.create_vm("alpha", start=False)
    ctx.create_vm("beta", start=False, extra=["--cpus", "2"])
    run, _ = ctx.create_vm("gamma")

    step("the human table")
    lines = ctx.cli("list").stdout.splitlines()
    check(lines and lines[0].split() == ["NAME", "STATE", "CPUS", "MEMORY", "ACCEL", "PID"],
          f"table header: {lines[:1]}")
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    check(sorted(rows) == ["alpha", "beta", "gamma"], f"table rows: {lines}")
    check(rows["gamma"][1] == "running" and rows["gamma"][-1] == str(run["pid"]),
          f"gamma row: {rows['gamma']}")
    check(rows["alpha"][1] == "defined" and rows["beta"][2] == "2", f"rows: {rows}")
    check(f"{GUEST_MIB} MiB" in lines[1] + lines[2] + lines[3], f"no memory column: {lines}")

    step("--json")
    data = ctx.cli_json("list")
    vms = {v["name"]: v for v in data["vms"]}
    check(sorted(vms) == ["alpha", "beta", "gamma"], f"JSON names: {sorted(vms)}")
    check(vms["gamma"]["pid"] == run["pid"] and vms["gamma"]["state"] == "running", f"{vms}")
    check(vms["beta"]["cpus"] == 2 and vms["alpha"]["memory_mib"] == GUEST_MIB, f"{vms}")
    for name, v in vms.items():
        single = without(ctx.get_vm(name), *IDLE_CLOCK)
        listed = without(v, *IDLE_CLOCK)
        check(single == listed, f"vm.list and vm.get differ for {name}:\n{listed}\n{single}")
    names = ctx.cli("list", "--names").stdout.split()
    check(sorted(names) == ["alpha", "beta", "gamma"], f"--names: {names}")

    step("vm.list with fields: only those members, and only where the VM has them")
    picked = {v["name"]: v for v in ctx.call("vm.list", {"fields": ["name", "pid", "cpus"]})["vms"]}
    check(picked == {name: {k: v[k] for k in ("name", "pid", "cpus") if k in v}
                     for name, v in vms.items()}, f"fields: {picked}")
    try:
        ctx.call("vm.list", {"fields": ["name", "nmae"]})
        check(False, "vm.list took an unknown field")
    except RpcError as e:
        check(e.code == -32602 and "'nmae'" in e.message, f"unknown field: {e}")


@scenario("get")
def sc_get(ctx):
    """get: the contract's fields, defined and running, human and JSON; Accel=auto."""
    ctx.start_daemon(config={"Accel": None})  # auto: the daemon probes and says why
    info = ctx.call("daemon.info")
    check(info.get("accel") in ("kvm", "tcg"), f"daemon.info accel: {info}")
    check(info.get("accel_reason"), f"daemon.info gives no reason for the accelerator: {info}")
    ctx.create_vm("g1", start=False)
    g = ctx.cli_json("get", "g1")
    for key, typ in (("name", str), ("state", str), ("cpus", int), ("memory_mib", int),
                     ("accel", str), ("auto_stop", bool), ("created", str)):
        check(isinstance(g.get(key), typ), f"vm.get {key}={g.get(key)!r} is not {typ.__name__}")
    check(g["name"] == "g1" and g["state"] == "defined" and g["cpus"] == 1, f"{g}")
    check(g["memory_mib"] == GUEST_MIB and g["auto_stop"] is True, f"{g}")
    check(g["accel"] in ("kvm", "tcg"), f"accel {g['accel']}")
    check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", g["created"]), f"created {g['created']}")
    check(not g.get("pid"), f"a defined VM has a pid: {g}")

    ctx.cli("start", "g1")
    g = ctx.note_vm(ctx.cli_json("get", "g1"))
    check(g["state"] in ("starting", "running"), f"state after start: {g['state']}")
    check(isinstance(g.get("pid"), int) and pid_alive(g["pid"]), f"running VM pid: {g}")
    check(g["accel"] == info["accel"], f"VM accel {g['accel']} vs daemon {info['accel']}")
    human = ctx.cli("get", "g1").stdout
    fields = dict(re.findall(r"^([^:\n]+):\s+(.*?)\s*$", human, re.M))
    for key in ("Name", "State", "CPUs", "Memory", "Accelerator", "Process", "Stop when idle",
                "Created"):
        check(key in fields, f"human get lacks {key}: {human!r}")
    check(fields["Process"] == str(g["pid"]) and fields["Name"] == "g1", f"{fields}")
    check(fields["Memory"] == f"{GUEST_MIB} MiB", f"{fields}")
    ctx.cli("get", "nosuchvm", rc=EXIT_NOT_FOUND)
    ctx.cli("get", rc=EXIT_USAGE)


@scenario("stats")
def sc_stats(ctx):
    """stats: sane numbers for a running guest, null where unknown."""
    ctx.start_daemon(config={"StatsPollInterval": 1})
    vm, _ = ctx.create_vm("sv")
    ctx.wait_agent("sv")
    keys = ("state", "cpu_percent", "rss_bytes", "memory_mib", "block_read_bytes",
            "block_write_bytes", "net_rx_bytes", "net_tx_bytes", "uptime_s", "sampled_at")
    s1 = ctx.cli_json("stats", "sv")
    step(f"stats: {s1}")
    for k in keys:
        check(k in s1, f"vm.stats lacks {k}: {s1}")
    check(s1["state"] == "running", f"{s1}")
    check(isinstance(s1["rss_bytes"], int) and s1["rss_bytes"] > 16 * 2**20, f"rss {s1}")
    real_rss = proc_rss_kib(vm["pid"]) * 1024
    check(0.5 * real_rss < s1["rss_bytes"] < 2 * real_rss,
          f"rss_bytes {s1['rss_bytes']} far from QEMU's VmRSS {real_rss}")
    check(s1["memory_mib"] == GUEST_MIB, f"memory_mib {s1['memory_mib']}")
    check(isinstance(s1["uptime_s"], (int, float)) and s1["uptime_s"] > 0, f"uptime {s1}")
    check(isinstance(s1["cpu_percent"], (int, float)) and 0 <= s1["cpu_percent"] <= 200,
          f"cpu_percent {s1['cpu_percent']}")
    # a VM without a disk has no block device: its block I/O is unknown, so null
    for k in ("block_read_bytes", "block_write_bytes"):
        check(s1[k] is None, f"{k}={s1[k]!r} for a VM without a disk; expected null")
    for k in ("net_rx_bytes", "net_tx_bytes"):
        check(s1[k] is None or (isinstance(s1[k], int) and s1[k] >= 0), f"{k}={s1[k]!r}")
    check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", s1["sampled_at"]), f"sampled_at {s1}")

    step("stats move forward")
    s2 = wait_for("uptime to advance", lambda: (lambda s: s if s["uptime_s"] > s1["uptime_s"]
                                                else None)(ctx.call("vm.stats", {"name": "sv"})),
                  20, interval=0.5)
    check(s2["sampled_at"] >= s1["sampled_at"], f"sampled_at went back: {s1} {s2}")
    human = ctx.cli("stats", "sv").stdout
    check(re.search(r"^Memory in use:\s+[\d.]+\s[KMG]iB", human, re.M), f"human rss: {human!r}")
    check(re.search(r"^CPU:\s+[\d.]+ %", human, re.M), f"human cpu: {human!r}")

    step("a VM with a disk reports block I/O")
    ctx.create_vm("disk", start=True, extra=["--disk-gib", "1"])
    ctx.wait_agent("disk")
    time.sleep(1.1)  # past the stats cache
    sd = ctx.call("vm.stats", {"name": "disk"})
    check(isinstance(sd["block_read_bytes"], int) and sd["block_read_bytes"] >= 0,
          f"block_read_bytes of a VM with a disk: {sd}")
    step("the guest reads 1 MiB of its disk: the next sample counts it")
    r = ctx.cli_json("exec", "disk", "--", "dd", "if=/dev/vda", "of=/dev/null", "bs=64k",
                     "count=16", "skip=64")
    check(r["exit_code"] == 0, f"dd in the guest: {r}")
    time.sleep(1.1)
    after = ctx.call("vm.stats", {"name": "disk"})
    check(after["block_read_bytes"] >= sd["block_read_bytes"] + 1024 * 1024,
          f"block_read_bytes {sd['block_read_bytes']} -> {after['block_read_bytes']}")
    ctx.cli("stop", "--force", "disk")

    step("stats of a stopped VM and an unknown one")
    ctx.cli("stop", "--force", "sv")
    p = ctx.cli("--json", "stats", "sv", rc=None)
    if p.returncode == EXIT_OK:
        s3 = json.loads(p.stdout)
        check(s3["state"] in ("stopped", "defined"), f"stats of a stopped VM: {s3}")
        check(s3["rss_bytes"] in (None, 0) and s3["cpu_percent"] in (None, 0),
              f"a stopped VM uses resources? {s3}")
    else:
        check(p.returncode == EXIT_FAILED_PRECONDITION, f"stats of a stopped VM: {p.returncode}")
    ctx.cli("stats", "nosuchvm", rc=EXIT_NOT_FOUND)


@scenario("health")
def sc_health(ctx):
    """health: degraded while booting, ok with every tier once the agent answers, down after."""
    ctx.start_daemon()
    vm, _ = ctx.create_vm("hv")
    seen = []

    def healthy():
        h = ctx.call("vm.health", {"name": "hv"})
        seen.append(h["status"])
        if h["status"] != "ok":
            check(h["status"] == "degraded" and h["process"] is True,
                  f"a booting VM should be degraded with a live process: {h}")
            return None
        return h
    h = wait_for("health ok", healthy, BOOT_TIMEOUT, interval=0.5)
    step(f"health went through {sorted(set(seen))}: {h}")
    check(h["process"] is True and h["qmp"] is True and h["agent"] is True, f"tiers: {h}")
    check(isinstance(h.get("agent_rtt_ms"), (int, float)) and h["agent_rtt_ms"] > 0, f"{h}")
    check(str(vm["pid"]) in h.get("detail", ""), f"detail does not name the process: {h}")
    human = ctx.cli("health", "hv").stdout
    check(re.search(r"^Status:\s+ok$", human, re.M), f"human health: {human!r}")
    for tier in ("QEMU process", "QEMU monitor", "Guest agent"):
        check(re.search(rf"^{tier}:\s+\S+", human, re.M), f"human health lacks {tier}")

    step("health of a stopped VM is down")
    ctx.cli("stop", "--force", "hv")
    h = ctx.cli_json("health", "hv", rc=EXIT_DOWN)
    check(h["status"] == "down" and h["process"] is False and h["agent"] is False, f"{h}")
    human = ctx.cli("health", "hv", rc=EXIT_DOWN).stdout
    check(re.search(r"^Status:\s+down$", human, re.M), f"human health when down: {human!r}")
    ctx.cli("health", "nosuchvm", rc=EXIT_NOT_FOUND)


@scenario("ping")
def sc_ping(ctx):
    """ping: the guest agent's round trip time."""
    ctx.start_daemon()
    ctx.create_vm("pv")
    ctx.wait_agent("pv")
    p = ctx.cli_json("ping", "pv")
    check(isinstance(p.get("rtt_ms"), (int, float)) and 0 < p["rtt_ms"] < 5000, f"ping: {p}")
    out = ctx.cli("ping", "pv").stdout
    check(re.search(r"pv.*\d+(\.\d+)? ms", out), f"human ping: {out!r}")
    rtts = [ctx.call("vm.ping", {"name": "pv"})["rtt_ms"] for _ in range(5)]
    check(all(0 < r < 5000 for r in rtts), f"rtts {rtts}")
    ctx.cli("stop", "--force", "pv")
    p = ctx.cli("ping", "pv", rc=EXIT_FAILED_PRECONDITION)
    check("pv" in p.stderr, f"{p.stderr!r}")
    ctx.cli("ping", "nosuchvm", rc=EXIT_NOT_FOUND)


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read().decode(errors="replace")


@scenario("ports")
def sc_ports(ctx):
    """ports: the guest's web server is found, forwarded and fetched from the host."""
    ctx.start_daemon()
    ctx.create_vm("pt")
    ctx.wait_agent("pt")

    def web_port():
        for p in ctx.call("vm.ports", {"name": "pt"})["ports"]:
            if p["guest_port"] == 80 and p.get("web"):
                return p
        return None
    p80 = wait_for("port 80 to be seen as a web listener", web_port, 60, interval=1)
    step(f"port 80: {p80}")
    listed = ctx.cli_json("ports", "pt")["ports"]
    check(p80 in listed, f"vmsup --json ports does not list {p80}: {listed}")
    check(p80["proto"] == "tcp" and p80["scheme"] == "http", f"{p80}")
    check(p80["host_address"] in ("127.0.0.1", "::1", "localhost") and p80["host_port"] > 0,
          f"{p80}")
    check(p80["url"] == f"http://{p80['host_address']}:{p80['host_port']}/", f"url {p80['url']}")
    status, body = http_get(p80["url"])
    check(status == 200 and "vmsup guest" in body, f"GET {p80['url']}: {status} {body[:200]!r}")

    step("a listener started in the guest shows up")
    ctx.cli("exec", "pt", "--", "httpd", "-p", "8081", "-h", "/www")

    def second():
        for p in ctx.call("vm.ports", {"name": "pt"})["ports"]:
            if p["guest_port"] == 8081 and p.get("url"):
                return p
        return None
    p81 = wait_for("port 8081", second, 60, interval=1)
    check(p81["host_port"] != p80["host_port"], f"two guest ports share a host port: {p81}")
    status, body = http_get(p81["url"])
    check(status == 200 and "vmsup guest" in body, f"GET {p81['url']}: {status}")
    listed = ctx.call("vm.ports", {"name": "pt"})["ports"]
    keys = [(p["guest_port"], p["proto"]) for p in listed]
    check(len(keys) == len(set(keys)), f"duplicate ports (IPv4/IPv6 not merged?): "
          f"{listed}")
    human = ctx.cli("ports", "pt").stdout
    check(p80["url"] in human and "8081" in human, f"human ports: {human!r}")
    ctx.cli("ports", "nosuchvm", rc=EXIT_NOT_FOUND)


@scenario("exec")
def sc_exec(ctx):
    """exec: exit code, stdout, stderr and stdin through the guest agent."""
    ctx.start_daemon()
    ctx.create_vm("ex")
    ctx.wait_agent("ex")
    r = ctx.cli_json("exec", "ex", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    check(r == {"exit_code": 3, "stdout": "out\n", "stderr": "err\n"}, f"exec --json: {r}")
    p = ctx.cli("exec", "ex", "--", "sh", "-c", "echo out; echo err >&2; exit 3", rc=3)
    check(p.stdout == "out\n" and p.stderr == "err\n", f"{p.stdout!r} {p.stderr!r}")
    p = ctx.cli("exec", "-i", "ex", "--", "tr", "a-z", "A-Z", input="hello guest\n")
    check(p.stdout == "HELLO GUEST\n", f"stdin: {p.stdout!r}")
    p = ctx.cli("exec", "ex", "--", "sh", "-c", 'printf "%s|" "$@"', "sh", "a b", "",
                "x'y", "ünï")
    check(p.stdout == "a b||x'y|ünï|", f"argv not kept: {p.stdout!r}")
    big = ctx.call("vm.exec", {"name": "ex", "argv": ["sh", "-c", "cat"],
                               "stdin": "line\n" * 4000})
    check(big["exit_code"] == 0 and big["stdout"] == "line\n" * 4000, "20 KB through stdin")
    r = ctx.call("vm.exec", {"name": "ex", "argv": ["id", "-u"]})
    check(r["stdout"].strip() == "0", f"{r}")

    step("failures")
    p = ctx.cli("exec", "ex", "--", "/nonexistent", rc=EXIT_FAILED_PRECONDITION)
    check("nonexistent" in p.stderr, f"{p.stderr!r}")
    t0 = time.monotonic()
    p = ctx.cli("exec", "--timeout", "2", "ex", "--", "sleep", "30", rc=None)
    check(p.returncode == 9, f"a command past its timeout: exit {p.returncode} {p.stderr!r}")
    check(time.monotonic() - t0 < 20, "the timeout was not applied")
    ctx.cli("exec", "ex", rc=EXIT_USAGE)
    ctx.cli("exec", "nosuchvm", "--", "true", rc=EXIT_NOT_FOUND)
    r = ctx.call("vm.exec", {"name": "ex", "argv": ["true"]})
    check(r["exit_code"] == 0, f"exec after failures: {r}")


@scenario("ops-cancel")
def sc_ops_cancel(ctx):
    """operations: create --no-wait, ops list/get, cancel -> cancelled, nothing left."""
    # a QEMU that waits at a gate keeps the create in its start stage until we let it go
    real = os.environ.get("VMSUP_QEMU") or shutil.which("qemu-system-x86_64")
    # QEMU runs as the VM's owner or vmsup-qemu, never root: the wrapper must be its to run
    gate_dir = ctx.path("gate")
    os.mkdir(gate_dir)
    os.chmod(gate_dir, 0o1777)
    os.chmod(ctx.tmp, 0o711)
    gate = os.path.join(gate_dir, "gate-open")
    gate_pids = os.path.join(gate_dir, "gate-pids")
    wrapper = os.path.join(gate_dir, "qemu-gate")
    with open(wrapper, "w") as f:
        f.write(f"""#!/bin/sh
for a; do [ "$a" = --version ] && exec '{real}' "$@"; done
echo $$ >'{gate_pids}'
while [ ! -e '{gate}' ]; do sleep 0.05; done
exec '{real}' "$@"
""")
    os.chmod(wrapper, 0o755)
    ctx.start_daemon(config={"QemuBinary": wrapper})

    step("create --no-wait answers at once with an operation")
    quick = ctx.cli_json("create", "--no-wait", "quick", "--memory", str(GUEST_MIB))
    check(isinstance(quick.get("operation"), int) and quick.get("vm") == "quick", f"{quick}")
    wait_for("the quick create", lambda: ctx.call("op.get", {"id": quick["operation"]})["state"]
             == "done", 30)
    res = ctx.cli_json("create", "--no-wait", "--start", "slow", "--memory", str(GUEST_MIB))
    op_id = res["operation"]
    check(op_id != quick["operation"], "operation ids repeat")

    def in_start():
        op = ctx.call("op.get", {"id": op_id})
        return op if op["stage"] == "start" else None
    op = wait_for("the create to reach its start stage", in_start, 30)
    check(op["state"] == "running" and 0 < op["progress"] < 1, f"op.get: {op}")
    check(op["kind"] == "create" and op["vm"] == "slow", f"{op}")

    step("ops list and ops get")
    table = ctx.cli("ops", "list").stdout
    check(re.search(rf"^{op_id}\s+create\s+slow\s+running\s+start\s+\d+%", table, re.M),
          f"ops list: {table!r}")
    listed = {o["id"]: o for o in ctx.cli_json("ops", "list")["operations"]}
    check(listed.get(op_id, {}).get("state") == "running" and
          listed.get(quick["operation"], {}).get("state") == "done", f"{listed}")
    got = ctx.cli_json("ops", "get", str(op_id))
    check(got["id"] == op_id and got["state"] == "running", f"ops get: {got}")
    human = ctx.cli("ops", "get", str(op_id)).stdout
    check(re.search(r"^State:\s+running", human, re.M), f"{human!r}")

    step("cancel")

    def gated_pid():
        with open(gate_pids) as f:
            return int(f.read().strip())
    waiting_pid = wait_for("QEMU to wait at the gate", gated_pid, 30)
    ctx.qemu_pids.add(waiting_pid)
    answer = {}
    canceller = threading.Thread(target=lambda: answer.update(
        proc=ctx.cli("--json", "ops", "cancel", str(op_id), rc=None)))
    canceller.start()

    def ended():
        o = ctx.call("op.get", {"id": op_id})
        return o if o["state"] != "running" else None
    try:
        done = wait_for("the cancelled operation to end", ended, 10)
    except SmokeFailure:
        # the daemon may let a QEMU start in flight finish first; the cancel must still win
        step("the operation waits for its QEMU: opening the gate")
        open(gate, "w").close()
        done = wait_for("the cancelled operation to end", ended, 60)
    canceller.join(120)
    check(not canceller.is_alive(), "vmsup ops cancel did not return")
    p = answer["proc"]
    check(p.returncode == EXIT_OK, f"ops cancel: exit {p.returncode} {p.stderr!r}")
    check(json.loads(p.stdout).get("state") == "cancelled", f"ops cancel answered {p.stdout!r}")
    check(done["state"] == "cancelled", f"after cancel: {done}")
    check(done.get("error"), f"a cancelled operation says nothing: {done}")
    check(ctx.cli_json("ops", "get", str(op_id))["state"] == "cancelled", "ops get")
    ctx.cli("ops", "cancel", str(op_id), rc=EXIT_FAILED_PRECONDITION)

    step("nothing is left")
    ctx.cli("get", "slow", rc=EXIT_NOT_FOUND)
    check(not os.path.exists(ctx.path("state", "vms", "slow.json")), "definition left")
    check(not os.path.exists(ctx.path("run", "vms", "slow")), "runtime dir left")
    check(wait_pid_gone(waiting_pid, 15), f"the cancelled VM's process {waiting_pid} runs")
    check(not [p for p in ctx.our_qemu_pids() if pid_alive(p)], "QEMU left after cancel")
    check([v["name"] for v in ctx.call("vm.list")["vms"]] == ["quick"], "vm.list after cancel")

    step("unknown operations")
    ctx.cli("ops", "get", "99999", rc=EXIT_NOT_FOUND)
    ctx.cli("ops", "cancel", "99999", rc=EXIT_NOT_FOUND)
    ctx.cli("ops", "get", "abc", rc=EXIT_USAGE)


@scenario("events")
def sc_events(ctx):
    """events: a subscribed connection and 'vmsup events' see every state change."""
    ctx.start_daemon()
    sub = ctx.rpc()
    answer = sub.call("events.subscribe")
    check("event.vm-changed" in json.dumps(answer), f"events.subscribe: {answer}")
    ctx.call("vm.create", {"name": "probe", "memory_mib": GUEST_MIB, "wait": True})
    cli_log = open(ctx.path("events-cli.out"), "w")
    cli = subprocess.Popen([ctx.layout.vmsup, "--socket", ctx.daemons[-1].socket, "--json",
                            "events"], stdout=cli_log, stderr=subprocess.STDOUT, env=ctx.env)
    ctx.other_pids.append((cli.pid, "vmsup events"))
    try:
        # changes to a probe VM until the CLI prints one: then it is surely subscribed
        cpus = [1]

        def cli_listening():
            check(cli.poll() is None, f"vmsup events exited {cli.returncode}")
            cpus[0] = 3 - cpus[0]
            ctx.call("vm.set", {"name": "probe", "cpus": cpus[0]})
            with open(ctx.path("events-cli.out")) as f:
                return '"probe"' in f.read()
        wait_for("vmsup events to print an event", cli_listening, 20, interval=0.3)
        ctx.cli("create", "ev", "--memory", str(GUEST_MIB))
        ctx.cli("start", "ev")
        ctx.note_vm(ctx.get_vm("ev"))
        ctx.cli("stop", "--force", "ev")
        ctx.cli("delete", "ev")

        got = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ev = sub.next_notification(deadline - time.monotonic())
            got.append(ev)
            if ev["method"] == "event.vm-removed":
                break
        summary = [(e["method"], e["params"].get("state") or
                    (e["params"].get("vm") or {}).get("state")) for e in got]
        step(f"events: {summary}")
        ops = [e for e in got if e["method"] == "event.operation-changed" and
               e["params"]["vm"] == "ev"]
        check(ops and ops[-1]["params"]["state"] == "done" and ops[-1]["params"]["vm"] == "ev",
              f"operation events: {ops}")
        states = [e["params"]["vm"]["state"] for e in got if e["method"] == "event.vm-changed"
                  and e["params"]["name"] == "ev"]
        check("defined" in states and "running" in states and "stopped" in states,
              f"vm-changed states: {states}")
        check(states.index("defined") < states.index("running") < states.index("stopped"),
              f"out of order: {states}")
        check(got[-1]["method"] == "event.vm-removed" and got[-1]["params"]["name"] == "ev",
              f"no vm-removed: {summary}")
        running = [e for e in got if e["method"] == "event.vm-changed" and
                   e["params"]["name"] == "ev" and e["params"]["vm"]["state"] == "running"]
        check(isinstance(running[0]["params"]["vm"].get("pid"), int), "running without a pid")

        step("unsubscribed connections get no events")
        quiet = ctx.rpc()
        quiet.call("vm.list")
        ctx.cli("create", "ev2", "--memory", str(GUEST_MIB))
        try:
            ev = quiet.next_notification(1.0)
            raise SmokeFailure(f"an unsubscribed connection got {ev}")
        except socket.timeout:
            pass

        def cli_saw():
            with open(ctx.path("events-cli.out")) as f:
                # whole lines only: the CLI may be in the middle of one
                lines = [json.loads(x) for x in f.read().splitlines(keepends=True)
                         if x.startswith("{") and x.endswith("\n")]
            names = [(e["method"], e["params"].get("name") or e["params"].get("vm"))
                     for e in lines]
            return (("event.vm-removed", "ev") in names and
                    ("event.vm-changed", "ev2") in names) and lines
        lines = wait_for("vmsup events to print the same", cli_saw, 15)
        cli_states = [e["params"]["vm"]["state"] for e in lines
                      if e["method"] == "event.vm-changed" and e["params"]["name"] == "ev"]
        check(cli_states == states, f"vmsup events saw {cli_states}, the socket {states}")
        check(cli.poll() is None, "vmsup events exited")
    finally:
        cli.terminate()
        cli.wait(10)
        cli_log.close()


def bus_service_dir(ctx):
    """The installed session service file, its Exec pointed into the DESTDIR."""
    svc_dir = ctx.path("dbus-services")
    os.makedirs(svc_dir, exist_ok=True)
    with open(ctx.layout.bus_service) as f:
        text = f.read()
    configured = os.path.join(ctx.layout.configured_libexecdir, "vmsupd")
    check(f"Exec={configured}" in text, f"the service file does not run {configured}: {text}")
    with open(os.path.join(svc_dir, os.path.basename(ctx.layout.bus_service)), "w") as f:
        f.write(text.replace(f"Exec={configured}", f"Exec={ctx.layout.vmsupd}"))
    return svc_dir


@scenario("dbus-activation")
def sc_dbus_activation(ctx):
    """D-Bus activation: the first gdbus call starts vmsupd from the service directory."""
    os.makedirs(ctx.path("xdg-config", "vmsup"), exist_ok=True)
    ctx.write_config(os.path.join("xdg-config", "vmsup", "vmsupd.conf"), {"Accel": "tcg"})
    ctx.start_bus([bus_service_dir(ctx)])
    session_socket = ctx.path("xdg-runtime", "vmsup", "vmsupd.sock")
    check(not os.path.exists(session_socket), "a daemon runs before activation")
    names = ctx.dbus_call("ListNames", path="/org/freedesktop/DBus",
                          iface="org.freedesktop.DBus", dest="org.freedesktop.DBus")[0]
    check(BUS_NAME not in names, f"{BUS_NAME} owned before activation")
    activatable = ctx.dbus_call("ListActivatableNames", path="/org/freedesktop/DBus",
                                iface="org.freedesktop.DBus", dest="org.freedesktop.DBus")[0]
    check(BUS_NAME in activatable, f"{BUS_NAME} is not activatable: {activatable}")

    step("the first call activates the daemon")
    info = ctx.dbus_call("Info", "{}")[0]
    pid = info["pid"]
    daemon = Daemon(ctx, None, session_socket, ctx.bus_log, "activated vmsupd (bus log)")
    daemon.pid = pid
    ctx.daemons.append(daemon)
    owner = ctx.dbus_call("GetConnectionUnixProcessID", BUS_NAME, path="/org/freedesktop/DBus",
                          iface="org.freedesktop.DBus", dest="org.freedesktop.DBus")[0]
    check(owner == pid, f"the bus name is owned by {owner}, Info says {pid}")
    cmd = proc_cmdline(pid)
    check(cmd[:1] == [ctx.layout.vmsupd], f"the activated process is {cmd}, not the installed "
          f"{ctx.layout.vmsupd}")
    check("--session" in cmd, f"{cmd}")
    check(info["mode"] == "session" and info["socket"] == session_socket, f"Info: {info}")

    step("the activated daemon serves its default session socket too")
    out = ctx.cli("list", socket_path=False, daemon=False).stdout
    check(out.split()[:2] == ["NAME", "STATE"], f"vmsup list (default socket): {out!r}")
    created = ctx.dbus_call("Create", "dbusvm", gvariant_dict_arg(
        {"memory_mib": GUEST_MIB, "wait": True}))[0]
    check(created.get("vm") == "dbusvm" and isinstance(created.get("operation"), int),
          f"Create: {created}")
    g = ctx.cli_json("get", "dbusvm", socket_path=session_socket)
    check(g["state"] == "defined" and g["memory_mib"] == GUEST_MIB, f"{g}")
    check(os.path.isfile(ctx.path("xdg-state", "vmsup", "vms", "dbusvm.json")),
          "the session state directory holds no definition")
    objs = ctx.dbus_call("GetManagedObjects", iface="org.freedesktop.DBus.ObjectManager")[0]
    vmobj = objs.get(BUS_PATH + "/vm/dbusvm", {}).get("io.github.vmsup.VM1")
    check(vmobj and vmobj["Name"] == "dbusvm" and vmobj["State"] == "defined",
          f"per-VM object: {objs}")
    name, _ = ctx.dbus_error("Get", "nosuchvm", "{}")
    check(name == "io.github.vmsup.Error.NotFound", f"error name {name}")
    check(ctx.dbus_call("Info", "{}")[0]["pid"] == pid, "a second daemon was activated")
    ctx.dbus_call("Delete", "dbusvm", "{}")
    check(ctx.cli_json("list", socket_path=session_socket)["vms"] == [], "Delete over D-Bus")


def without(d, *keys):
    return {k: v for k, v in d.items() if k not in keys}


@scenario("dbus-twins")
def sc_dbus_twins(ctx):
    """D-Bus and JSON-RPC twins give the same answers."""
    ctx.start_bus([])
    ctx.start_daemon(dbus=True)
    wait_for("the daemon's bus name", lambda: BUS_NAME in ctx.dbus_call(
        "ListNames", path="/org/freedesktop/DBus", iface="org.freedesktop.DBus",
        dest="org.freedesktop.DBus")[0], 30)
    ctx.create_vm("tw1", start=False, extra=["--cpus", "2"])
    ctx.create_vm("tw2")
    os.makedirs(ctx.path("wsdir"))
    ctx.cli("workspace", "create", "tws", "--path", ctx.path("wsdir"))
    volatile = IDLE_CLOCK + ("uptime_s",)

    def same(what, a, b):
        if isinstance(a, dict):
            a, b = without(a, *volatile), without(b, *volatile)
        check(a == b, f"{what} differs:\n JSON-RPC: {a}\n D-Bus:    {b}")

    rpc_list = ctx.call("vm.list")["vms"]
    bus_list = ctx.dbus_call("List", "{}")[0]
    names = sorted(v["name"] for v in rpc_list)
    check(names == sorted(v["name"] for v in bus_list) and {"tw1", "tw2"} <= set(names),
          f"List: {rpc_list} vs {bus_list}")
    for a, b in zip(sorted(rpc_list, key=lambda v: v["name"]),
                    sorted(bus_list, key=lambda v: v["name"])):
        same(f"List[{a['name']}]", a, b)
    for name in ("tw1", "tw2"):
        same(f"Get {name}", ctx.call("vm.get", {"name": name}),
             ctx.dbus_call("Get", name, "{}")[0])
    same("Info", ctx.call("daemon.info"), ctx.dbus_call("Info", "{}")[0])
    rpc_ops = ctx.call("op.list")["operations"]
    check(rpc_ops, "no operations to compare")
    same("ListOperations", rpc_ops, ctx.dbus_call("ListOperations", "{}")[0])
    op_id = rpc_ops[0]["id"]
    same("GetOperation", ctx.call("op.get", {"id": op_id}),
         ctx.dbus_call("GetOperation", gvariant_dict_arg({"id": op_id}))[0])
    same("ListWorkspaces", ctx.call("workspace.list")["workspaces"],
         ctx.dbus_call("ListWorkspaces", "{}")[0])

    step("errors are twins too")
    for method, rpc_name, args, params, err in (
            ("Get", "vm.get", ("nosuchvm", "{}"), {"name": "nosuchvm"}, "NotFound"),
            ("Get", "vm.get", ("../x", "{}"), {"name": "../x"}, "InvalidArgument"),
            ("Delete", "vm.delete", ("tw2", "{}"), {"name": "tw2"}, "FailedPrecondition")):
        name, text = ctx.dbus_error(method, *args)
        check(name == f"io.github.vmsup.Error.{err}", f"{method} {args}: {name}")
        try:
            ctx.call(rpc_name, params)
            raise SmokeFailure(f"{rpc_name} {params} succeeded")
        except RpcError as e:
            kind = re.sub(r"(?<!^)(?=[A-Z])", "-", err).lower()
            check(e.kind == kind, f"{rpc_name} {params}: kind {e.kind}, D-Bus {name}")
            check(e.message in text, f"messages differ: {e.message!r} vs {text!r}")

    step("the per-VM object mirrors vm.get")
    g = ctx.call("vm.get", {"name": "tw2"})
    props = ctx.dbus_call("GetAll", "io.github.vmsup.VM1", path=BUS_PATH + "/vm/tw2",
                          iface="org.freedesktop.DBus.Properties")[0]
    check(props["Name"] == "tw2" and props["State"] == g["state"] and
          props["Pid"] == g["pid"] and props["Cpus"] == g["cpus"] and
          props["MemoryMiB"] == g["memory_mib"] and props["Accel"] == g["accel"] and
          props["AutoStop"] == g["auto_stop"] and props["Created"] == g["created"],
          f"VM1 properties {props} vs vm.get {g}")
    ctx.dbus_call("Stop", "tw2", gvariant_dict_arg({"force": True}))
    check(ctx.call("vm.get", {"name": "tw2"})["state"] == "stopped", "Stop over D-Bus")
    state = ctx.dbus_call("Get", "io.github.vmsup.VM1", "State", path=BUS_PATH + "/vm/tw2",
                          iface="org.freedesktop.DBus.Properties")[0]
    check(state == "stopped", f"VM1 State after stop: {state}")


@scenario("daemon-readopt")
def sc_daemon_readopt(ctx):
    """daemon kill -9: the next daemon re-adopts the running QEMU and controls it."""
    d1 = ctx.start_daemon(config={"StatsPollInterval": 1})
    vm, _ = ctx.create_vm("ad")
    ctx.wait_agent("ad")
    ctx.create_vm("idle", start=False)
    step(f"kill -9 vmsupd {d1.pid}")
    os.kill(d1.pid, signal.SIGKILL)
    d1.proc.wait(10)
    check(pid_alive(vm["pid"]), "QEMU died with the daemon")
    p = ctx.cli("list", rc=EXIT_NO_DAEMON)
    check("vmsupd" in p.stderr, f"{p.stderr!r}")

    d2 = ctx.start_daemon(config={"StatsPollInterval": 1}, label="vmsupd-again",
                          nofile_soft=256)
    step("each VM holds a few descriptors: vmsupd raised its open-file limit")
    limits = [line for line in proc_read(d2.pid, "limits").decode().splitlines()
              if line.startswith("Max open files")]
    check(limits and limits[0].split()[3] == limits[0].split()[4],
          f"soft open-file limit not raised to the hard one: {limits}")
    again = ctx.get_vm("ad")
    check(again["state"] == "running" and again["pid"] == vm["pid"],
          f"not re-adopted: {again} (was pid {vm['pid']})")
    check(ctx.get_vm("idle")["state"] in ("defined", "stopped"), "the idle VM was lost")
    check(sorted(v["name"] for v in ctx.call("vm.list")["vms"]) == ["ad", "idle"],
          "a VM was lost")
    p = ctx.cli_json("ping", "ad")
    check(p["rtt_ms"] > 0, f"ping after re-adoption: {p}")
    h = ctx.cli_json("health", "ad")
    check(h["status"] == "ok" and h["qmp"] is True, f"health after re-adoption: {h}")
    r = ctx.cli_json("exec", "ad", "--", "cat", "/proc/uptime")
    check(r["exit_code"] == 0, f"exec after re-adoption: {r}")
    s = ctx.cli_json("stats", "ad")
    check(s["rss_bytes"] > 0 and s["uptime_s"] > 0, f"stats after re-adoption: {s}")

    step("the adopted VM still stops gracefully")
    ctx.cli("stop", "ad", "--timeout", "60")
    check(wait_pid_gone(vm["pid"], 15), "the adopted QEMU did not exit")
    after = ctx.get_vm("ad")
    check(after["state"] == "stopped", f"after stop: {after}")
    check(not os.path.exists(vm["runtime_dir"]), "runtime dir left after stopping")
    ctx.cli("start", "ad")
    check(ctx.get_vm("ad")["state"] == "running", "restart after re-adoption")
    check(d2.alive(), "the second daemon died")

    step("a corrupt last-run record costs the outcome, never the definition")
    ctx.cli("stop", "ad", "--force")
    stopped = ctx.get_vm("ad")
    check(stopped["state"] == "stopped" and
          stopped.get("exit_reason", "").startswith("stopped on request"), f"{stopped}")
    record = ctx.path("state", "last-run", "ad.json")
    check(os.path.isfile(record), "no last-run record after a stop")
    with open(ctx.path("state", "vms", "ad.json"), "rb") as f:
        definition = f.read()
    with open(record, "w") as f:
        f.write('{"name": "ad", "state": ')
    d3 = kill_and_restart_daemon(ctx, "vmsupd-third")
    ad = ctx.get_vm("ad")
    check(ad["state"] == "defined" and "exit_reason" not in ad,
          f"a VM with a corrupt record: {ad}")
    check(ad["memory_mib"] == vm["memory_mib"] and ad["created"] == vm["created"],
          f"the definition changed: {ad}")
    with open(ctx.path("state", "vms", "ad.json"), "rb") as f:
        check(f.read() == definition, "the definition file changed")
    check(glob.glob(ctx.path("state", "last-run", "ad.json.corrupt-*")),
          "the corrupt record was not moved aside")
    check("moved aside" in open(d3.log).read(), "no warning about the corrupt record")
    check(sorted(v["name"] for v in ctx.call("vm.list")["vms"]) == ["ad", "idle"],
          "a VM was lost")
    ctx.cli("start", "ad")
    check(ctx.get_vm("ad")["state"] == "running", "start after a corrupt record")


@scenario("qemu-crash")
def sc_qemu_crash(ctx):
    """QEMU kill -9: crashed, runtime cleaned, still defined, restart works."""
    ctx.start_daemon()
    vm, _ = ctx.create_vm("cr")
    ctx.wait_agent("cr")
    sub = ctx.rpc()
    sub.call("events.subscribe")
    step(f"kill -9 QEMU {vm['pid']}")
    os.kill(vm["pid"], signal.SIGKILL)
    crashed = ctx.wait_state("cr", "crashed", 30)
    check(crashed.get("exit_signal") == signal.SIGKILL, f"{crashed}")
    check(not crashed.get("pid"), f"a crashed VM has a pid: {crashed}")
    check(crashed.get("exit_reason"), f"no exit_reason: {crashed}")
    wait_for("the runtime directory to go", lambda: not os.path.exists(vm["runtime_dir"]), 10)
    check(os.path.isfile(ctx.path("state", "vms", "cr.json")), "definition lost")
    check([v["name"] for v in ctx.call("vm.list")["vms"]] == ["cr"], "not listed")
    states = []
    deadline = time.monotonic() + 10
    while "crashed" not in states and time.monotonic() < deadline:
        ev = sub.next_notification(deadline - time.monotonic())
        if ev["method"] == "event.vm-changed":
            states.append(ev["params"]["vm"]["state"])
    check("crashed" in states, f"no crashed event: {states}")
    h = ctx.cli_json("health", "cr", rc=EXIT_DOWN)
    check(h["status"] == "down", f"health of a crashed VM: {h}")

    step("a restarted daemon still reports the crash")
    crashed = ctx.get_vm("cr")
    kill_and_restart_daemon(ctx, "vmsupd-again")
    again = ctx.get_vm("cr")
    check(again["state"] == "crashed" and again.get("exit_signal") == signal.SIGKILL,
          f"after the restart: {again}")
    check_same_outcome(crashed, again, "cr")

    step("restart")
    ctx.cli("start", "cr")
    vm2 = ctx.get_vm("cr")
    check(vm2["state"] == "running" and vm2["pid"] != vm["pid"], f"{vm2}")
    check("exit_signal" not in vm2, f"a running VM reports an old exit: {vm2}")
    ctx.wait_agent("cr")
    ctx.cli("stop", "cr")
    check(ctx.get_vm("cr")["state"] == "stopped", "stop after restart")


@scenario("stale-auto-stop")
def sc_stale_auto_stop(ctx):
    """stale auto-stop: an idle VM is stopped, an auto_stop=false VM is left running."""
    after = 5
    config = {"AutoStopStaleAfter": after, "StatsPollInterval": 1}
    policy = re.compile(r"^stopped by the auto-stop policy after (\d+) s without activity; "
                        r"QEMU (exited|was killed)")
    ctx.start_daemon(config=config)
    sub = ctx.rpc()
    sub.call("events.subscribe")
    idle, _ = ctx.create_vm("idle")
    keep, _ = ctx.create_vm("keep", extra=["--no-auto-stop"])
    check(ctx.get_vm("keep")["auto_stop"] is False, "--no-auto-stop not kept")
    t0 = time.monotonic()
    stopped = ctx.wait_state("idle", ("stopped",), BOOT_TIMEOUT + 60)
    step(f"idle VM stopped after {time.monotonic() - t0:.1f} s: {stopped.get('exit_reason')}")
    check(wait_pid_gone(idle["pid"], 10), "the stopped VM's QEMU still runs")
    wait_for("the runtime dir to go after the auto-stop",
             lambda: not os.path.exists(idle["runtime_dir"]), 10)
    m = policy.match(stopped.get("exit_reason", ""))
    check(m and int(m.group(1)) >= after,
          f"the exit_reason does not name the auto-stop policy: {stopped.get('exit_reason')!r}")
    log = open(ctx.daemons[-1].log).read()
    check(re.search(r"Stopping VM 'idle' by the auto-stop policy: idle for \d+ s", log),
          "the daemon did not log why it stopped the VM")
    check(f"VM 'idle' stopped ({stopped['exit_reason']})" in log,
          "the daemon's log of the stop does not name the policy")

    step("the vm-changed event says the same")
    seen = []
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        ev = sub.next_notification(deadline - time.monotonic())
        vm = ev["params"].get("vm") or {}
        if (ev["method"] == "event.vm-changed" and ev["params"].get("name") == "idle" and
                vm.get("state") == "stopped"):
            seen.append(vm)
    check(seen and seen[0].get("exit_reason") == stopped["exit_reason"],
          f"the stopped event's exit_reason: {seen[0].get('exit_reason') if seen else None!r}")

    def idle_long_enough():
        k = ctx.get_vm("keep")
        check(k["state"] == "running" and k["pid"] == keep["pid"],
              f"the auto_stop=false VM was touched: {k}")
        return k.get("idle_s", 0) >= after + 2
    wait_for("the opted-out VM to be idle past the limit", idle_long_enough, 60, interval=0.5)
    check("Stopping VM 'keep'" not in open(ctx.daemons[-1].log).read(), "keep was stopped")
    ctx.wait_agent("keep")

    step("turning auto-stop back on lets the sweep stop it too")
    ctx.cli("set", "keep", "--auto-stop")
    kept = ctx.wait_state("keep", ("stopped",), 60)
    check(policy.match(kept.get("exit_reason", "")),
          f"the exit_reason does not name the auto-stop policy: {kept.get('exit_reason')!r}")
    wait_for("the runtime dir to go", lambda: not os.path.exists(keep["runtime_dir"]), 10)

    step("a restarted daemon still says why both stopped")
    kill_and_restart_daemon(ctx, "vmsupd-again", config=config)
    check_same_outcome(stopped, ctx.get_vm("idle"), "idle")
    check_same_outcome(kept, ctx.get_vm("keep"), "keep")


def workspace_open(ctx, name, host_dir):
    ws = ctx.cli_json("workspace", "create", name, "--path", host_dir, "--memory",
                      str(GUEST_MIB))
    check(ws["name"] == name and ws["path"] == host_dir, f"workspace create: {ws}")
    listed = ctx.cli_json("workspace", "list")["workspaces"]
    check([w["name"] for w in listed] == [name], f"workspace list: {listed}")
    opened = ctx.cli_json("workspace", "open", name, timeout=BOOT_TIMEOUT + 60)
    step(f"workspace open: {opened}")
    check(opened["state"] == "open" and opened.get("mount") == "/workspace", f"{opened}")
    vm = ctx.get_vm(opened["vm"])
    check(vm["state"] == "running", f"workspace VM: {vm}")
    ctx.wait_agent(vm["name"])
    return opened, vm


@scenario("workspace")
def sc_workspace(ctx):
    """workspace: host files read in the guest, guest files appear on the host, delete keeps the dir."""
    ctx.start_daemon()
    host = ctx.path("project")
    os.makedirs(host)
    with open(os.path.join(host, "hello.txt"), "w") as f:
        f.write("hello from the host\n")
    ws, vm = workspace_open(ctx, "proj", host)
    r = ctx.cli_json("exec", vm["name"], "--", "cat", "/workspace/hello.txt")
    check(r["exit_code"] == 0 and r["stdout"] == "hello from the host\n", f"guest read: {r}")
    ctx.cli("exec", vm["name"], "--", "sh", "-c",
            "mkdir -p /workspace/sub && echo written by the guest > /workspace/sub/out.txt")
    out = os.path.join(host, "sub", "out.txt")
    check(os.path.isfile(out), f"{out} did not appear on the host")
    with open(out) as f:
        check(f.read() == "written by the guest\n", "guest file content")
    with open(os.path.join(host, "later.txt"), "w") as f:
        f.write("written later\n")
    r = ctx.cli_json("exec", vm["name"], "--", "cat", "/workspace/later.txt")
    check(r["stdout"] == "written later\n", f"a file written after open: {r}")

    step("delete")
    ctx.cli("workspace", "create", "proj", "--path", host, rc=EXIT_ALREADY_EXISTS)
    ctx.cli("workspace", "delete", "proj", rc=EXIT_FAILED_PRECONDITION)
    ctx.cli("workspace", "delete", "--force", "proj")
    check(ctx.cli_json("workspace", "list")["workspaces"] == [], "workspace still listed")
    check(sorted(os.listdir(host)) == ["hello.txt", "later.txt", "sub"],
          f"the host directory changed: {os.listdir(host)}")
    check(open(out).read() == "written by the guest\n", "guest file lost")
    if ws.get("vm_owned"):
        check(wait_pid_gone(vm["pid"], 30), "the workspace VM still runs")
        ctx.cli("get", vm["name"], rc=EXIT_NOT_FOUND)
    ctx.cli("workspace", "open", "proj", rc=EXIT_NOT_FOUND)
    p = ctx.cli("workspace", "create", "bad", "--path", ctx.path("missing"), rc=None)
    check(p.returncode in (EXIT_INVALID_ARGUMENT, EXIT_FAILED_PRECONDITION, EXIT_NOT_FOUND),
          f"a workspace on a missing directory: exit {p.returncode} {p.stderr!r}")


@scenario("workspace-long")
def sc_workspace_long(ctx):
    """a long-running workspace under the 1 s poller: health ok, RSS bounded, exec works."""
    # under AddressSanitizer freed memory sits in a quarantine that would look like
    # growth: keep it small here (LeakSanitizer still checks at exit)
    asan = ":".join(x for x in (os.environ.get("ASAN_OPTIONS", ""),
                                "quarantine_size_mb=1", "thread_local_quarantine_size_kb=16") if x)
    d = ctx.start_daemon(config={"StatsPollInterval": 1}, env_extra={"ASAN_OPTIONS": asan})
    host = ctx.path("long")
    os.makedirs(host)
    ws, vm = workspace_open(ctx, "long", host)
    name = vm["name"]
    # let start-up allocations settle before the baseline
    for _ in range(3):
        ctx.call("vm.stats", {"name": name})
        ctx.call("vm.health", {"name": name})
    time.sleep(3)
    rss0, fds0 = proc_rss_kib(d.pid), proc_fd_count(d.pid)
    step(f"baseline: vmsupd RSS {rss0} KiB, {fds0} fds; running {LONG_SECONDS:.0f} s")
    t0 = time.monotonic()
    samples = []
    last_uptime = 0
    n = 0
    while time.monotonic() - t0 < LONG_SECONDS:
        n += 1
        h = ctx.call("vm.health", {"name": name})
        check(h["status"] == "ok", f"health at {time.monotonic() - t0:.0f} s: {h}")
        s = ctx.call("vm.stats", {"name": name})
        check(s["state"] == "running" and s["uptime_s"] >= last_uptime, f"stats: {s}")
        last_uptime = s["uptime_s"]
        if n % 6 == 0:
            stamp = f"tick {n}"
            with open(os.path.join(host, "tick.txt"), "w") as f:
                f.write(stamp)
            r = ctx.call("vm.exec", {"name": name, "argv": ["cat", "/workspace/tick.txt"]})
            check(r["stdout"] == stamp, f"workspace read at {n}: {r}")
        samples.append((time.monotonic() - t0, proc_rss_kib(d.pid), proc_fd_count(d.pid)))
        time.sleep(5)
    rss1, fds1 = proc_rss_kib(d.pid), proc_fd_count(d.pid)
    step(f"after {LONG_SECONDS:.0f} s: vmsupd RSS {rss1} KiB, {fds1} fds; "
         f"samples {[(round(t), r, f) for t, r, f in samples]}")
    check(d.alive(), "vmsupd died")
    check(rss1 <= rss0 + 3 * 1024,
          f"vmsupd RSS grew from {rss0} to {rss1} KiB in {LONG_SECONDS:.0f} s")
    check(fds1 <= fds0 + 4, f"vmsupd fds grew from {fds0} to {fds1}")
    r = ctx.cli_json("exec", name, "--", "sh", "-c", "echo done > /workspace/end.txt; "
                     "cat /proc/uptime")
    check(r["exit_code"] == 0, f"exec at the end: {r}")
    check(open(os.path.join(host, "end.txt")).read() == "done\n", "end.txt")
    check(ctx.get_vm(name)["pid"] == vm["pid"], "the workspace VM was restarted")
    h = ctx.cli_json("health", name)
    check(h["status"] == "ok", f"final health: {h}")


@scenario("bad-input")
def sc_bad_input(ctx):
    """exit codes and hostile input: refused cleanly, nothing touched, daemon fine."""
    d = ctx.start_daemon()
    keep, _ = ctx.create_vm("keep", start=False)

    def files():
        """Every file of the scenario but the logs: a name that escaped shows up here."""
        return sorted(os.path.relpath(os.path.join(d, f), ctx.tmp)
                      for d, _, fs in os.walk(ctx.tmp) for f in fs if not f.endswith(".log"))
    files_before = files()
    hostile = ["../x", "a,b", "a" * 4096, "", "a/b", "x=y", "UPPER", ".hidden", "a b",
               "a\nb", "ünï", "..", "keep/../keep"]
    for name in hostile:
        for verb in (["create", "--no-wait"], ["get"], ["start"], ["delete"], ["stop"],
                     ["set", "--cpus", "2"]):
            p = ctx.cli(*(verb + [name]), rc=None)
            check(p.returncode in (EXIT_INVALID_ARGUMENT, EXIT_USAGE),
                  f"vmsup {' '.join(verb)} {name[:40]!r}: exit {p.returncode} "
                  f"{p.stderr[-300:]!r}")
        r = ctx.rpc()
        try:
            r.call("vm.create", {"name": name})
            raise SmokeFailure(f"vm.create accepted {name[:40]!r}")
        except RpcError as e:
            check(e.code in (ERR_INVALID_ARGUMENT, -32602), f"vm.create {name[:40]!r}: {e}")
        r.close()
    check(ctx.cli("create", "--no-wait", "-x", rc=None).returncode == EXIT_USAGE, "-x")

    step("exit codes")
    ctx.cli("get", "nosuchvm", rc=EXIT_NOT_FOUND)
    ctx.cli("delete", "nosuchvm", rc=EXIT_NOT_FOUND)
    ctx.cli("create", "keep", rc=EXIT_ALREADY_EXISTS)
    ctx.cli("create", "mem", "--memory", "1", rc=EXIT_INVALID_ARGUMENT)
    ctx.cli("create", "cpu", "--cpus", "0", rc=EXIT_INVALID_ARGUMENT)
    p = ctx.cli("create", "kern", "--kernel", ctx.path("no-such-kernel"), rc=None)
    check(p.returncode in (EXIT_INVALID_ARGUMENT, EXIT_FAILED_PRECONDITION, EXIT_NOT_FOUND),
          f"a missing kernel: exit {p.returncode} {p.stderr!r}")
    ctx.cli("create", "fwd", "--forward", "70000", rc=EXIT_USAGE)
    ctx.cli("nosuchverb", rc=EXIT_USAGE)
    ctx.cli(rc=EXIT_USAGE)
    ctx.cli("--version", daemon=False)
    ctx.cli("list", socket_path=ctx.path("no-such.sock"), rc=EXIT_NO_DAEMON)
    ctx.cli("ops", "get", "0", rc=EXIT_USAGE)
    ctx.cli("ops", "get", "-1", rc=EXIT_USAGE)

    step("nothing was touched and the daemon is fine")
    check(d.alive(), "vmsupd died")
    check(files() == files_before, f"files changed:\n{files_before}\n{files()}")
    # the activity bookkeeping of the stale sweep notes refused requests, and time passes
    activity = ("last_active", "active_reason") + IDLE_CLOCK
    now = ctx.get_vm("keep")
    check(without(now, *activity) == without(keep, *activity),
          f"'keep' changed:\n{keep}\n{now}")
    check([v["name"] for v in ctx.call("vm.list")["vms"]] == ["keep"], "vm.list changed")
    ctx.cli("start", "keep")
    check(ctx.get_vm("keep")["state"] == "running", "keep does not start after all that")


@scenario("protocol-faults")
def sc_protocol_faults(ctx):
    """JSON-RPC protocol faults on a raw socket: answered, the daemon survives."""
    d = ctx.start_daemon()
    ctx.create_vm("keep", start=False)
    r = ctx.rpc()

    def raw(line, code, rid=None):
        r.send_raw(line + b"\n")
        msg = r.read_message(30)
        check("error" in msg, f"{line[:80]!r} was answered without an error: {msg}")
        codes = code if isinstance(code, tuple) else (code,)
        check(msg["error"]["code"] in codes,
              f"{line[:80]!r}: code {msg['error']['code']}, expected {code}: {msg}")
        check(msg.get("id") == rid, f"{line[:80]!r}: id {msg.get('id')!r}, expected {rid!r}")
        check(msg["error"].get("message"), f"no message: {msg}")
        return msg

    raw(b"{not json", -32700)
    raw(b"\xff\xfe\xfd", -32700)
    raw(b'{"jsonrpc":"2.0","id":1,"method":"vm.get","params":{"name":"keep"}', -32700)
    raw(b"42", -32600)
    raw(b'"vm.list"', -32600)
    raw(b"[]", -32600)
    raw(b'{"id":2,"method":"vm.list"}', -32600, 2)
    raw(b'{"jsonrpc":"1.0","id":3,"method":"vm.list"}', -32600, 3)
    raw(b'{"jsonrpc":"2.0","id":4,"method":7}', -32600, 4)
    raw(b'{"jsonrpc":"2.0","id":5,"method":"no.such.method"}', -32601, 5)
    raw(b'{"jsonrpc":"2.0","id":6,"method":"vm.get","params":{"name":5}}', -32602, 6)
    raw(b'{"jsonrpc":"2.0","id":7,"method":"vm.get","params":[1,2]}', -32602, 7)
    raw(b'{"jsonrpc":"2.0","id":8,"method":"vm.get","params":"keep"}', (-32600, -32602), 8)
    raw(b'{"jsonrpc":"2.0","id":9,"method":"vm.create","params":{"name":"zz","cpus":"many"}}',
        -32602, 9)
    raw(b'{"jsonrpc":"2.0","id":10,"method":"vm.get","params":{}}', -32602, 10)
    raw(b'{"jsonrpc":"2.0","id":11,"method":"vm.get","params":{"name":"keep","bogus":1}}',
        -32602, 11)
    raw(b'{"jsonrpc":"2.0","id":"s","method":"vm.get","params":{"name":"nosuch"}}', ERR_NOT_FOUND,
        "s")
    raw(b'{"jsonrpc":"2.0","id":12,"method":"vm.exec","params":{"name":"keep","argv":"ls"}}',
        -32602, 12)
    raw(b'{"jsonrpc":"2.0","id":13,"method":"vm.stop","params":{"name":"keep","timeout_s":-5}}',
        ERR_INVALID_ARGUMENT, 13)
    raw(b'{"jsonrpc":"2.0","id":14,"method":"op.get","params":{"id":"x"}}', -32602, 14)
    raw(b'{"jsonrpc":"2.0","id":15,"method":"vm.create","params":{"name":"zz","memory_mib":1e300}}',
        -32602, 15)
    # a notification (no id) is not answered; the next request is
    r.send_raw(b'{"jsonrpc":"2.0","method":"vm.list"}\n')
    res = r.request("vm.get", {"name": "keep"})
    check(res.get("result", {}).get("name") == "keep", f"after a notification: {res}")
    # two requests in one write, answered in order or at least both
    r.send_raw(b'{"jsonrpc":"2.0","id":101,"method":"vm.list"}\n'
               b'{"jsonrpc":"2.0","id":102,"method":"daemon.info"}\n')
    ids = {r.read_message(30)["id"], r.read_message(30)["id"]}
    check(ids == {101, 102}, f"pipelined answers: {ids}")

    step("an oversized line and abrupt disconnects")
    big = Rpc(d.socket, timeout=30)
    try:
        big.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"vm.get","params":{"name":"' +
                     b"a" * (8 * 2**20))
        line = big.read_line(30)
        if line is not None:
            msg = json.loads(line)
            check("error" in msg, f"an 8 MiB line was answered with {str(msg)[:200]}")
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    finally:
        big.close()
    for payload in (b'{"jsonrpc":"2.0","id":1,"meth', b'{"jsonrpc":"2.0","id":1,'
                    b'"method":"vm.exec","params":{"name":"keep","argv":["true"]}}\n', b""):
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.socket)
        s.sendall(payload)
        s.close()
    many = [Rpc(d.socket, timeout=30) for _ in range(20)]
    for c in many:
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"vm.list"}\n')
    for c in many:
        check(c.read_message(30)["id"] == 1, "one of 20 connections got no answer")
        c.close()

    step("the daemon survives and is unchanged")
    check(d.alive(), "vmsupd died")
    fresh = Rpc(d.socket, timeout=30)
    info = fresh.call("daemon.info")
    fresh.close()
    check(info["pid"] == d.pid, f"{info}")
    check([v["name"] for v in ctx.call("vm.list")["vms"]] == ["keep"], "VMs changed")
    check(r.call("vm.get", {"name": "keep"})["state"] == "defined", "the old connection died")
    check(ctx.cli("list").returncode == 0, "CLI after the faults")


# --- main -------------------------------------------------------------------------------


def run_scenario(name):
    layout = Layout()
    layout.ensure_installed()
    ctx = Ctx(name, layout)
    fn = SCENARIOS[name]
    step(f"scenario {name}: {fn.__doc__.strip().splitlines()[0]}")
    step(f"temporary directory {ctx.tmp}")
    ok = False
    t0 = time.monotonic()
    try:
        fn(ctx)
        problems = ctx.daemon_log_problems()
        check(not problems, "\n".join(problems))
        ok = True
    except BaseException:
        traceback.print_exc()
        ctx.dump_diagnostics()
    finally:
        try:
            ctx.cleanup()
        except BaseException:
            traceback.print_exc()
            ok = False
        if ok and not ctx.failed:
            problems = ctx.daemon_log_problems()  # what shutting down printed
            if problems:
                print("\n".join(problems), flush=True)
                ok = False
        if ok or not os.environ.get("SMOKE_KEEP"):
            shutil.rmtree(ctx.tmp, ignore_errors=True)
        else:
            print(f"kept {ctx.tmp}", flush=True)
    step(f"scenario {name}: {'PASS' if ok and not ctx.failed else 'FAIL'} "
         f"in {time.monotonic() - t0:.1f} s")
    return 0 if ok and not ctx.failed else 1


def main(argv):
    def terminated(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, terminated)
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "list":
        print("\n".join(SCENARIOS))
        return 0
    if argv[1] == "install":
        registered = argv[2:]
        if registered and sorted(registered) != sorted(SCENARIOS):
            print(f"meson registers {sorted(registered)}\nbut smoke.py defines "
                  f"{sorted(SCENARIOS)}", file=sys.stderr)
            return 1
        layout = Layout()
        layout.ensure_installed(force=True)
        step(f"installed: {layout.vmsupd}, {layout.vmsup}, {layout.guest_dir}")
        return 0
    if argv[1] != "run" or len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[2] not in SCENARIOS:
        print(f"unknown scenario {argv[2]!r}; 'smoke.py list' names them", file=sys.stderr)
        return 2
    return run_scenario(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
