#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Benchmarks vmsup against raw QEMU doing the same work, in the same run.

Starts its own vmsupd on a private state and runtime directory, measures
each piece of work through vmsup and through a baseline (raw QEMU started
with the very argv the daemon used, or libvirt where it is installed),
and prints median/min/max, the ratio to the baseline and the target.
Every QEMU it causes is killed by pid when it ends, also on failure.

    python3 bench/vmsup-bench.py --build-dir _build [--iterations N]
                                 [--json out.json] [--quick]

Exit status: 0 when every measurement produced numbers (targets missed or
not), 1 when a measurement failed, 77 when a prerequisite is missing.
See bench/README.md for what is measured and how.
"""

import argparse
import ctypes
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
EXIT_SKIP = 77

# the counts the targets are stated for
LEVELS_FULL = [1, 10, 50, 100]
LEVELS_QUICK = [1, 2]
LIST_LEVEL = 50
CPU_LEVEL = 100

DBUS_NAME = "io.github.vmsup.Supervisor1"
DBUS_PATH = "/io/github/vmsup/Supervisor1"


class BenchError(Exception):
    pass


class Prerequisite(Exception):
    """Something the machine lacks; the run is skipped, not failed."""


# ---------------------------------------------------------------------------
# small helpers


def now():
    return time.perf_counter()


def ms(seconds):
    return seconds * 1000.0


def summarize(samples):
    if not samples:
        return None
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def mem_available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def proc_status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def fd_flags(pid, fd):
    """The open flags of descriptor @fd of process @pid."""
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        return next(int(line.split()[1], 8) for line in f if line.startswith("flags:"))


def fd_named_in(argv, fd):
    """Whether QEMU's argv names descriptor @fd (as fd=N, /dev/fdset/N or /proc/self/fd/N)."""
    for a in argv:
        for form in (f"fd={fd}", f"/dev/fdset/{fd}", f"/proc/self/fd/{fd}"):
            at = a.find(form)
            if at >= 0 and not a[at + len(form):at + len(form) + 1].isdigit():
                return True
    return False


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return None


def proc_gone(pid):
    """True once @pid has exited; a zombie counts as gone, and is reaped if it is ours."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X")
    except OSError:
        return True


def wait_gone(pid, timeout):
    deadline = now() + timeout
    while not proc_gone(pid):
        if now() > deadline:
            return False
        time.sleep(0.002)
    return True


def become_subreaper():
    """QEMUs outlive a restarted vmsupd; as subreaper we, not init, inherit them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap_orphans(keep):
    """Reaps exited children that no Popen object owns (adopted QEMUs, forked helpers)."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in keep:
            return
        try:
            os.waitpid(info.si_pid, os.WNOHANG)
        except ChildProcessError:
            return


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vms(n):
    return f"{n} VM" if n == 1 else f"{n} VMs"


def floor_note(cpu, floor, daemon_ms):
    return (f"CPU time (user+sys) of the process: median {statistics.median(cpu):.1f} ms; "
            f"vmsupd CPU per call: {daemon_ms:.2f} ms; spawn+reap of /bin/true: median "
            f"{statistics.median(floor):.1f} ms")


def spawn_measure(argv, env=None):
    """Wall and CPU time (user+sys) of one whole process run, output discarded."""
    path = shutil.which(argv[0], path=(env or os.environ).get("PATH")) or argv[0]
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
    t0 = now()
    pid = os.posix_spawn(path, argv, env if env is not None else os.environ,
                         file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    t1 = now()
    if os.waitstatus_to_exitcode(status) != 0:
        raise BenchError(f"{' '.join(argv[:3])}... exited {os.waitstatus_to_exitcode(status)}")
    return t1 - t0, usage.ru_utime + usage.ru_stime


def spawn_wait(argv, env=None):
    """Wall time of one whole process run (spawn, run, reap), like hyperfine without a shell."""
    t0 = now()
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t1 = now()
    if p.returncode != 0:
        raise BenchError(f"{' '.join(argv[:3])}... exited {p.returncode}: "
                         f"{p.stderr.decode(errors='replace').strip()[:300]}")
    return t1 - t0, p.stdout


# ---------------------------------------------------------------------------
# JSON-RPC client


class RpcError(Exception):
    def __init__(self, method, error):
        self.code = error.get("code")
        self.kind = (error.get("data") or {}).get("kind")
        super().__init__(f"{method}: {error.get('message')} ({self.kind or self.code})")


class Rpc:
    """Newline-delimited JSON-RPC 2.0 over vmsupd's Unix socket."""

    def __init__(self, path, timeout=120.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 0
        self.answers = {}

    def close(self):
        self.sock.close()

    def send(self, method, params=None):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return self.next_id

    def _read_answer(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise BenchError("vmsupd closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        answer = json.loads(line)
        self.answers[answer.get("id")] = answer

    def wait(self, req_id, method="call"):
        while req_id not in self.answers:
            self._read_answer()
        answer = self.answers.pop(req_id)
        if "error" in answer:
            raise RpcError(method, answer["error"])
        return answer["result"]

    def call(self, method, params=None):
        return self.wait(self.send(method, params), method)

    def call_many(self, method, params_list, window=32):
        """Pipelined calls, at most @window in flight; results (or RpcError) in order."""
        ids, results, nxt = [], [None] * len(params_list), 0
        for i, params in enumerate(params_list):
            ids.append(self.send(method, params))
            while len(ids) - nxt >= window:
                results[nxt] = self._wait_safe(ids[nxt], method)
                nxt += 1
        while nxt < len(ids):
            results[nxt] = self._wait_safe(ids[nxt], method)
            nxt += 1
        return results

    def _wait_safe(self, req_id, method):
        try:
            return self.wait(req_id, method)
        except RpcError as e:
            return e


# ---------------------------------------------------------------------------
# QMP and guest agent, for the raw-QEMU baselines


class LineSocket:
    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError("QEMU closed the socket")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def close(self):
        self.sock.close()


def qmp_command(conn, command):
    conn.sock.sendall(json.dumps({"execute": command}).encode() + b"\r\n")
    while True:
        msg = json.loads(conn.readline())
        if "return" in msg:
            return msg["return"]
        if "error" in msg:
            raise BenchError(f"QMP {command}: {msg['error'].get('desc')}")
        # an event: keep reading


def qga_handshake_and_ping(path, timeout):
    """GUEST-NOTES.md §5: sync-delimited, resent each second, matched by id; then guest-ping."""
    conn = LineSocket(path, 1.0)
    deadline = now() + timeout
    sync_id = 1000
    try:
        synced = False
        while not synced:
            if now() > deadline:
                raise BenchError("the guest agent did not answer in time")
            sync_id += 1
            req = {"execute": "guest-sync-delimited", "arguments": {"id": sync_id}}
            conn.sock.sendall(b"\xff" + json.dumps(req).encode() + b"\n")
            sent_at = now()
            while now() - sent_at < 1.0 and not synced:
                try:
                    chunk = conn.sock.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    raise BenchError("QEMU closed the agent socket")
                conn.buf += chunk
                # everything up to the last sentinel is noise or a stale reply
                while b"\xff" in conn.buf:
                    conn.buf = conn.buf.split(b"\xff", 1)[1]
                    if b"\n" not in conn.buf:
                        break
                    line, rest = conn.buf.split(b"\n", 1)
                    try:
                        if json.loads(line).get("return") == sync_id:
                            synced = True
                            conn.buf = rest
                            break
                    except ValueError:
                        pass
        conn.sock.settimeout(max(1.0, deadline - now()))
        conn.sock.sendall(json.dumps({"execute": "guest-ping"}).encode() + b"\n")
        while True:
            line = conn.readline().strip(b"\xff")
            if not line:
                continue
            if "return" in json.loads(line):
                return
    finally:
        conn.close()


class RawQemu:
    """QEMU started by us with a vmsup-made argv, QMP listening on fd 3 as vmsupd does it."""

    QMP_FD = 3

    def __init__(self, argv, rundir):
        self.argv, self.fds = argv if isinstance(argv, tuple) else (argv, {})
        self.rundir = rundir
        self.proc = None
        self.qmp = None

    def open_fds(self):
        """The descriptors vmsupd would hand this QEMU, opened or made by us the same way."""
        opened = {}
        for fd, spec in self.fds.items():
            if spec[0] == "listen":
                try:
                    os.unlink(spec[1])
                except FileNotFoundError:
                    pass
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                listener.bind(spec[1])
                listener.listen(1)
                opened[fd] = listener.detach()
            else:
                opened[fd] = os.open(spec[1], spec[2] | os.O_CLOEXEC, 0o600)
        return opened

    def start(self, cont=True):
        os.makedirs(self.rundir, exist_ok=True)
        qmp_path = os.path.join(self.rundir, "qmp.sock")
        for name in ("qmp.sock", "qga.sock", "qemu.pid"):
            try:
                os.unlink(os.path.join(self.rundir, name))
            except FileNotFoundError:
                pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(qmp_path)
        listener.listen(1)
        opened = self.open_fds()
        opened[self.QMP_FD] = listener.fileno()
        log = open(os.path.join(self.rundir, "qemu.log"), "wb")

        def child_setup():
            os.setsid()
            # out of the way of every target first, then each into its place
            high = {fd: fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, 1000)
                    for fd, src in opened.items()}
            for fd, src in high.items():
                os.dup2(src, fd)

        # our own fds are all close-on-exec (PEP 446): only 0-2 and the planned fds pass
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, close_fds=False,
                                     preexec_fn=child_setup)
        listener.close()
        for fd, src in opened.items():
            if fd != self.QMP_FD:
                os.close(src)
        log.close()
        self.qmp = LineSocket(qmp_path, 30.0)
        greeting = json.loads(self.qmp.readline())
        if "QMP" not in greeting:
            raise BenchError(f"unexpected QMP greeting {greeting}")
        qmp_command(self.qmp, "qmp_capabilities")
        if cont:
            qmp_command(self.qmp, "cont")

    def ask_blockstats(self):
        self.qmp.sock.sendall(b'{"execute": "query-blockstats"}\r\n')

    def collect_blockstats(self):
        """The answer to ask_blockstats(), then the /proc files vmsupd reads per sample."""
        while True:
            msg = json.loads(self.qmp.readline())
            if "return" in msg:
                break
            if "error" in msg:
                raise BenchError(f"QMP query-blockstats: {msg['error'].get('desc')}")
        for name in ("stat", "statm"):
            with open(f"/proc/{self.proc.pid}/{name}") as f:
                f.read()

    def kill(self):
        """SIGKILL and reap; returns the seconds that took."""
        if self.proc is None:
            return 0.0
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        t0 = now()
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        t1 = now()
        self.proc = None
        return t1 - t0


# ---------------------------------------------------------------------------
# the daemon under test


class Daemon:
    def __init__(self, bench, config_text, dbus_address=None):
        self.bench = bench
        self.config_text = config_text
        self.dbus_address = dbus_address
        self.proc = None
        self.log_path = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self, poll=0.02):
        b = self.bench
        b.daemon_starts += 1
        conf = os.path.join(b.tmp, f"vmsupd-{b.daemon_starts}.conf")
        with open(conf, "w") as f:
            f.write(self.config_text)
        self.log_path = os.path.join(b.tmp, f"vmsupd-{b.daemon_starts}.log")
        env = dict(b.env)
        argv = [b.vmsupd, "--session", "--state-dir", b.state_dir, "--runtime-dir", b.run_dir,
                "--socket", b.socket_path, "--config", conf]
        if self.dbus_address is not None:
            env["DBUS_SESSION_BUS_ADDRESS"] = self.dbus_address
        else:
            argv.append("--no-dbus")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        b.popen_pids.add(self.proc.pid)
        deadline = now() + 30
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"vmsupd exited with {self.proc.returncode}\n{self.log_tail()}")
            try:
                rpc = Rpc(b.socket_path, timeout=10)
                try:
                    return rpc.call("daemon.info")
                finally:
                    rpc.close()
            except (OSError, BenchError):
                if now() > deadline:
                    raise BenchError(f"vmsupd did not answer within 30 s\n{self.log_tail()}")
                time.sleep(poll)

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"vmsupd died (status {self.proc.returncode})\n{self.log_tail()}")

    def stop(self):
        """SIGTERM: vmsupd leaves, its VMs keep running for the next start to adopt."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def rss_mib(self):
        kib = proc_status_kib(self.pid, "VmRSS")
        return kib / 1024.0 if kib is not None else None

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (OSError, TypeError):
            return ""


# ---------------------------------------------------------------------------
# results


class Results:
    def __init__(self, quick):
        self.quick = quick
        self.rows = []
        self.scaling = []
        self.details = {}
        self.notes = []
        self.failures = []

    def add(self, key, work, unit, samples, count=None, baseline=None, baseline_label=None,
            target=None, target_count=None, note=None):
        """@target: ("ratio", x) | ("plus", x) | ("max", x), in @unit."""
        samples = [s for s in samples if s is not None]
        row = {"key": key, "work": work, "unit": unit, "count": count,
               "samples": [round(s, 4) for s in samples], "stats": summarize(samples),
               "baseline_label": baseline_label,
               "baseline_samples": [round(s, 4) for s in baseline] if baseline else None,
               "baseline": summarize(baseline) if baseline else None,
               "target": target, "target_count": target_count, "note": note}
        row["ratio"] = None
        if row["stats"] and row["baseline"] and row["baseline"]["median"] > 0:
            row["ratio"] = row["stats"]["median"] / row["baseline"]["median"]
        row["verdict"] = self._verdict(row)
        self.rows.append(row)
        return row

    def fail(self, key, work, error):
        self.failures.append({"key": key, "work": work, "error": str(error)})
        self.rows.append({"key": key, "work": work, "unit": "", "count": None, "samples": [],
                          "stats": None, "baseline": None, "baseline_label": None,
                          "target": None, "ratio": None, "verdict": "ERROR",
                          "note": str(error).splitlines()[0][:200]})

    @staticmethod
    def _verdict(row):
        target, stats = row["target"], row["stats"]
        if target is None:
            return ""
        if stats is None:
            return "ERROR"
        if row["target_count"] is not None and row["count"] != row["target_count"]:
            return "n/a"
        kind, value = target
        median = stats["median"]
        if kind == "ratio":
            ok = row["ratio"] is not None and row["ratio"] <= value
        elif kind == "plus":
            ok = row["baseline"] is not None and median <= row["baseline"]["median"] + value
        elif kind == "below":
            ok = median < value
        else:
            ok = median <= value
        return "PASS" if ok else "MISS"


def fmt_num(value, unit):
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value:.2f}x"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_target(row):
    if row["target"] is None:
        return ""
    kind, value = row["target"]
    u = row["unit"]
    if kind == "ratio":
        text = f"<= {value:g}x raw"
    elif kind == "plus":
        text = f"<= raw + {value:g} {u}"
    elif kind == "below":
        text = f"< {value:g} {u}"
    else:
        text = f"<= {value:g} {u}"
    if row["target_count"] is not None:
        text += f" @{row['target_count']}"
    return text


def print_table(results, out=sys.stdout):
    header = ["work", "N", "unit", "median", "min", "max", "baseline", "ratio", "target",
              "verdict"]
    lines = []
    for r in results.rows:
        s, b = r["stats"] or {}, r["baseline"]
        if b is not None:
            base = f"{fmt_num(b['median'], r['unit'])} ({r['baseline_label']})"
        else:
            base = r["baseline_label"] or ""
        lines.append([r["work"], "" if r["count"] is None else str(r["count"]), r["unit"],
                      fmt_num(s.get("median"), r["unit"]), fmt_num(s.get("min"), r["unit"]),
                      fmt_num(s.get("max"), r["unit"]), base,
                      fmt_num(r["ratio"], "ratio") if r["ratio"] is not None else "",
                      fmt_target(r), r["verdict"]])
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip(), file=out)
    notes = [f"{r['work']}: {r['note']}" for r in results.rows if r.get("note")]
    for n in results.notes + notes:
        print(f"note: {n}", file=out)


# ---------------------------------------------------------------------------
# the benchmark


class Bench:
    PROBE = "bench-probe"
    GUEST = "bench-guest"

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.iterations = args.iterations if args.iterations else (1 if args.quick else 10)
        self.boot_iterations = args.boot_iterations or (1 if args.quick else 5)
        self.warmup = 0 if args.quick else 1
        self.levels = sorted(set(args.counts)) if args.counts else (
            LEVELS_QUICK if args.quick else LEVELS_FULL)
        self.cpu_window = args.cpu_window or (3.0 if args.quick else 20.0)
        self.spawn_runs = 3 if args.quick else 30
        self.rpc_count = 200 if args.quick else 5000

        build = os.path.abspath(args.build_dir)
        self.build = build
        self.vmsupd = os.path.join(build, "src", "daemon", "vmsupd")
        self.cli = os.path.join(build, "src", "cli", "vmsup")
        self.latency_client = os.path.join(build, "bench", "vmsup-rpc-latency")
        self.data_dir = os.path.join(build, "data")

        self.results = Results(self.quick)
        self.tmp = None
        self.daemon = None
        self.dbus_proc = None
        self.daemon_starts = 0
        self.popen_pids = set()
        self.raw = []          # RawQemu objects alive
        self.fillers = []      # names of filler VMs
        self.qemu_per_vm_mib = None

    # -- setup and teardown --------------------------------------------------

    def check_prerequisites(self):
        for path, what in ((self.vmsupd, "vmsupd"), (self.cli, "vmsup")):
            if not os.access(path, os.X_OK):
                raise Prerequisite(f"{what} is not built at {path}; run ninja -C {self.build}")
        self.qemu = shutil.which("qemu-system-x86_64")
        self.qemu_img = shutil.which("qemu-img")
        if self.qemu is None or shutil.which("qemu-img") is None:
            raise Prerequisite("qemu-system-x86_64 and qemu-img are needed")
        if not os.access(self.latency_client, os.X_OK):
            self.results.notes.append(
                "vmsup-rpc-latency is not built; the vm.get round trip is measured from Python")
            self.latency_client = None
        guest = os.path.join(self.data_dir, "guest")
        exists = lambda f: os.path.exists(os.path.join(guest, f))
        self.guest_built = exists("initramfs.cpio.gz") and (exists("vmlinux") or
                                                           exists("vmlinuz"))

    def setup(self):
        # short and comma-free: QEMU option strings and sun_path both care
        self.tmp = tempfile.mkdtemp(prefix="vmsup-bench-", dir="/tmp")
        self.state_dir = os.path.join(self.tmp, "state")
        self.run_dir = os.path.join(self.tmp, "run")
        self.raw_dir = os.path.join(self.tmp, "raw")
        self.socket_path = os.path.join(self.tmp, "vmsupd.sock")
        for d in (self.state_dir, self.run_dir, self.raw_dir):
            os.makedirs(d)
        xdg = os.path.join(self.tmp, "xdg")
        self.env = dict(os.environ)
        for var, sub in (("XDG_RUNTIME_DIR", "run"), ("XDG_CONFIG_HOME", "config"),
                         ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"),
                         ("XDG_CACHE_HOME", "cache")):
            self.env[var] = os.path.join(xdg, sub)
            os.makedirs(self.env[var], mode=0o700)
        self.env["VMSUP_DATA_DIR"] = self.data_dir
        self.env["VMSUP_SOCKET"] = self.socket_path
        self.env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        self.env.pop("G_MESSAGES_DEBUG", None)
        self.env["LC_ALL"] = "C"
        # a boot sector that halts: a "VM with an image" that costs no CPU once up
        self.halt_image = os.path.join(self.tmp, "halt.img")
        sector = bytearray(1024 * 1024)
        sector[0:4] = bytes([0xFA, 0xF4, 0xEB, 0xFD])  # cli; hlt; jmp $-1
        sector[510:512] = b"\x55\xaa"
        with open(self.halt_image, "wb") as f:
            f.write(sector)

    def config_text(self, poll_interval=None):
        lines = ["[vmsupd]", "AutoStopStaleAfter=0"]
        if poll_interval is not None:
            lines.append(f"StatsPollInterval={poll_interval}")
        return "\n".join(lines) + "\n"

    def our_qemu_pids(self):
        """Every live process whose command line names our temp dir (all QEMUs we caused)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            argv = proc_cmdline(int(entry))
            if argv and os.path.basename(argv[0]).startswith("qemu") and any(
                    self.tmp in a for a in argv):
                pids.append(int(entry))
        return pids

    def cleanup(self):
        for raw in self.raw:
            try:
                raw.kill()
            except Exception:
                pass
        self.raw = []
        if self.daemon is not None:
            # no graceful stop of 100 VMs: the daemon goes first, then each QEMU by pid
            try:
                if self.daemon.proc.poll() is None:
                    self.daemon.proc.kill()
                    self.daemon.proc.wait()
            except Exception:
                pass
        if self.tmp is not None:
            pids = self.our_qemu_pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for pid in pids:
                wait_gone(pid, 10)
        if self.dbus_proc is not None:
            self.dbus_proc.kill()
            self.dbus_proc.wait()
            self.dbus_proc = None
        reap_orphans(keep=set())
        if self.tmp is not None and not self.args.keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- daemon and VMs ------------------------------------------------------

    def start_daemon(self, poll_interval=None, dbus_address=None):
        self.daemon = Daemon(self, self.config_text(poll_interval), dbus_address)
        info = self.daemon.start()
        self.rpc = Rpc(self.socket_path)
        return info

    def restart_daemon(self, poll_interval=None, dbus_address=None):
        """Leaves the VMs running; the new daemon adopts them. Returns seconds to adoption."""
        self.rpc.close()
        self.daemon.stop()
        self.popen_pids.discard(self.daemon.pid)
        reap_orphans(keep=self.popen_pids)
        t0 = now()
        self.start_daemon(poll_interval, dbus_address)
        expected = len(self.fillers)
        deadline = now() + 120
        while True:
            listed = self.rpc.call("vm.list")["vms"]
            running = [v for v in listed if v.get("state") == "running"]
            if len(running) >= expected:
                return now() - t0
            if now() > deadline:
                raise BenchError(f"after a restart only {len(running)} of {expected} VMs "
                                 f"were re-adopted as running")
            time.sleep(0.05)

    def create_halt_vms(self, names):
        params = [{"name": n, "image": self.halt_image, "memory_mib": 64, "auto_stop": False,
                   "wait": True} for n in names]
        for name, res in zip(names, self.rpc.call_many("vm.create", params, window=8)):
            if isinstance(res, Exception):
                raise BenchError(f"creating VM '{name}' failed: {res}")

    def start_vms(self, names):
        for name, res in zip(names, self.rpc.call_many("vm.start", [{"name": n} for n in names],
                                                       window=4)):
            if isinstance(res, Exception):
                raise BenchError(f"starting VM '{name}' failed: {res}")

    def vm_state(self, name):
        return self.rpc.call("vm.get", {"name": name})

    def wait_running(self, name, timeout=60):
        deadline = now() + timeout
        while True:
            vm = self.vm_state(name)
            if vm.get("state") == "running":
                return vm
            if vm.get("state") in ("stopped", "crashed", "defined") or now() > deadline:
                raise BenchError(f"VM '{name}' is {vm.get('state')}, not running")
            time.sleep(0.001)

    def ensure_stopped(self, name):
        vm = self.vm_state(name)
        if vm.get("state") not in ("defined", "stopped", "crashed"):
            self.rpc.call("vm.stop", {"name": name, "force": True})

    def raw_argv(self, pid, vm_name, rawdir):
        """The daemon's argv for @vm_name, rewritten to private runtime paths and disk,
        with the descriptors vmsupd hands QEMU: (argv, {fd: what RawQemu opens there})."""
        argv = proc_cmdline(pid)
        if not argv:
            raise BenchError(f"cannot read the command line of QEMU pid {pid}")
        vm_run = os.path.join(self.run_dir, "vms", vm_name)
        hint = next((a for a in argv if a.endswith("/qemu.pid")), None)
        marker = next((a for a in argv if a.startswith("secret,id=vmsup-runtime-dir,data=")), None)
        if hint is not None:
            vm_run = os.path.dirname(hint)
        elif marker is not None:
            vm_run = marker.split("data=", 1)[1]
        os.makedirs(rawdir, exist_ok=True)
        out = []
        for a in argv:
            a = a.replace(vm_run, rawdir)
            # a -blockdev names its file node, not a path: those come as descriptors
            if not a.startswith("driver=") and \
                    (a.startswith("file=") or ",file=" in a or a.startswith("if=")):
                # the qcow2 overlay: a private copy, so both never share a locked image
                for part in a.split(","):
                    if part.startswith("file="):
                        disk = part[len("file="):]
                        copy = os.path.join(rawdir, os.path.basename(disk))
                        if not os.path.exists(copy):
                            shutil.copyfile(disk, copy)
                        a = a.replace(disk, copy)
            if "hostfwd=" in a:
                parts = []
                for part in a.split(","):
                    if part.startswith("hostfwd=tcp:127.0.0.1:"):
                        head, guest = part.rsplit("-", 1)
                        part = f"hostfwd=tcp:127.0.0.1:{free_tcp_port()}-{guest}"
                    parts.append(part)
                a = ",".join(parts)
            out.append(a)
        return out, self.raw_fds(pid, argv, vm_run, rawdir, vm_name)

    def raw_fds(self, pid, argv, vm_run, rawdir, vm_name):
        """What each descriptor QEMU inherited from vmsupd is, for a raw QEMU to get its
        own: the agent's listening socket, or a file opened as QEMU has it."""
        plan = {}
        for a in argv:
            if not a.startswith("socket,"):
                continue
            parts = dict(p.split("=", 1) for p in a.split(",")[1:] if "=" in p)
            if "fd" in parts and parts.get("id") == "qmp0" and int(parts["fd"]) != RawQemu.QMP_FD:
                raise BenchError(f"vmsupd hands QEMU its QMP socket as fd {parts['fd']}, "
                                 f"not {RawQemu.QMP_FD}")
            if "fd" in parts and parts.get("id") != "qmp0":
                # the agent's socket, and the serial console's: one path each
                path = "qga.sock" if parts.get("id") == "qga0" else parts["id"] + ".sock"
                plan[int(parts["fd"])] = ("listen", os.path.join(rawdir, path))
        # QEMU keeps -add-fd descriptors under numbers of its own: name them by their use
        disk = None
        for name in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{name}")
            if target.startswith("/") and not target.startswith(vm_run + "/") and \
                    os.path.isfile(target) and fd_flags(pid, int(name)) & os.O_ACCMODE:
                disk = target
        chain = []
        if disk is not None:
            info = subprocess.run([self.qemu_img, "info", "-U", "--backing-chain",
                                   "--output=json", disk], capture_output=True, text=True,
                                  check=True)
            chain = [node["filename"] for node in json.loads(info.stdout)]
            copy = os.path.join(rawdir, os.path.basename(disk))
            if not os.path.exists(copy):
                shutil.copyfile(disk, copy)
            chain[0] = copy
        fdsets = [int(a.split(",")[0][3:]) for a in argv if a.startswith("fd=") and ",set=" in a]
        for n in fdsets:
            use = next(a for a in argv if f"/dev/fdset/{n}," in a + ",")
            # the console log: a file chardev's path, or the serial socket's logfile
            if use.startswith("file,") or f"logfile=/dev/fdset/{n}" in use:
                plan[n] = ("open", os.path.join(rawdir, "console.log"),
                           os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                continue
            parts = dict(p.split("=", 1) for p in use.split(",") if "=" in p)
            mode = os.O_RDONLY if parts.get("read-only") == "on" else os.O_RDWR
            node = parts["node-name"]
            if node.startswith("vmsup-file"):
                plan[n] = ("open", chain[int(node[len("vmsup-file"):])], mode)
            else:
                plan[n] = ("open", self.guest_file(node, vm_name, rawdir), mode)
        # the rest stay where vmsupd put them
        for name in os.listdir(f"/proc/{pid}/fd"):
            fd = int(name)
            if fd < 3 or fd in plan or fd == RawQemu.QMP_FD or not fd_named_in(argv, fd):
                continue
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            flags = fd_flags(pid, fd)
            flags &= os.O_ACCMODE | os.O_APPEND | os.O_DIRECTORY | os.O_PATH | os.O_DIRECT
            plan[fd] = ("open", target, flags)
        return plan

    def guest_file(self, node, vm_name, rawdir):
        """The file behind a VM's firmware or cloud-init node: the same one, or a private
        copy of what QEMU writes (the UEFI variable store)."""
        guest_dir = os.path.join(self.state_dir, "guests", vm_name)
        if node == "vmsup-seed-file":
            return os.path.join(guest_dir, "seed.img")
        if node == "vmsup-fw-code-file":
            return os.environ.get("VMSUP_OVMF_CODE") or "/usr/share/OVMF/OVMF_CODE_4M.fd"
        if node == "vmsup-fw-vars-file":
            copy = os.path.join(rawdir, "OVMF_VARS.fd")
            if not os.path.exists(copy):
                shutil.copyfile(os.path.join(guest_dir, "OVMF_VARS.fd"), copy)
            return copy
        raise BenchError(f"vmsupd hands QEMU a block node the bench does not know: {node}")

    # -- measurements --------------------------------------------------------

    def measure_start_stop(self, level):
        """vm.start (request -> running) and vm.stop force (request -> reaped), vs raw."""
        name = self.PROBE
        self.ensure_stopped(name)
        rawdir = os.path.join(self.raw_dir, f"probe-{level}")
        vm_start, vm_stop, raw_start, raw_stop = [], [], [], []
        argv = None
        for i in range(self.warmup + self.iterations):
            order = ("vmsup", "raw") if i % 2 == 0 else ("raw", "vmsup")
            for who in order:
                if who == "vmsup":
                    t0 = now()
                    self.rpc.call("vm.start", {"name": name})
                    vm = self.wait_running(name)
                    t1 = now()
                    pid = vm.get("pid")
                    if not pid:
                        raise BenchError("vm.get gives no pid for a running VM")
                    if argv is None:
                        argv = self.raw_argv(pid, name, rawdir)
                    t2 = now()
                    self.rpc.call("vm.stop", {"name": name, "force": True})
                    if not wait_gone(pid, 10):
                        raise BenchError(f"QEMU pid {pid} still there after vm.stop force")
                    t3 = now()
                    if i >= self.warmup:
                        vm_start.append(ms(t1 - t0))
                        vm_stop.append(ms(t3 - t2))
                else:
                    if argv is None:
                        continue  # the first iteration learns the argv from vmsup
                    raw = RawQemu(argv, rawdir)
                    self.raw.append(raw)
                    t0 = now()
                    raw.start(cont=True)
                    t1 = now()
                    if self.qemu_per_vm_mib is None:
                        kib = proc_status_kib(raw.proc.pid, "VmRSS")
                        self.qemu_per_vm_mib = kib / 1024.0 if kib else None
                    dt_kill = raw.kill()
                    self.raw.remove(raw)
                    if i >= self.warmup:
                        raw_start.append(ms(t1 - t0))
                        raw_stop.append(ms(dt_kill))
        return vm_start, vm_stop, raw_start, raw_stop

    def raw_fleet(self, count):
        """@count raw QEMUs with the probe's argv (private paths and disks), running."""
        vm = self.vm_state(self.PROBE)
        pid = vm.get("pid")
        if not pid:
            raise BenchError("the probe VM has no pid")
        per_vm = (self.qemu_per_vm_mib or 80.0) * MIB * 1.5
        if count * per_vm + 2 * 1024 * MIB > mem_available_bytes():
            raise BenchError(f"no memory for {count} raw QEMUs next to the daemon's")
        fleet = []
        for i in range(count):
            rawdir = os.path.join(self.raw_dir, f"fleet-{i:03d}")
            raw = RawQemu(self.raw_argv(pid, self.PROBE, rawdir), rawdir)
            self.raw.append(raw)
            fleet.append(raw)
            raw.start(cont=True)
        return fleet

    def drop_fleet(self, fleet):
        for raw in fleet:
            raw.kill()
            self.raw.remove(raw)
            shutil.rmtree(raw.rundir, ignore_errors=True)

    def measure_stats_all(self, names, rounds):
        """vm.stats for every VM, pipelined on one connection: cold (cache expired) and
        warm; against as many raw QEMUs of the same shape, each asked query-blockstats
        (what a cold sample asks) at once, and their /proc files read: the physical limit."""
        cold, warm, raw = [], [], []
        fleet = self.raw_fleet(len(names))
        try:
            for _ in range(rounds):
                time.sleep(1.2)  # older than the daemon's 1 s stats cache
                for bucket in (cold, warm):
                    t0 = now()
                    res = self.rpc.call_many("vm.stats", [{"name": n} for n in names],
                                             window=64)
                    bucket.append(ms(now() - t0))
                    errors = [r for r in res if isinstance(r, Exception)]
                    if errors:
                        raise BenchError(f"{len(errors)} of {len(names)} vm.stats failed: "
                                         f"{errors[0]}")
                t0 = now()
                for q in fleet:
                    q.ask_blockstats()
                for q in fleet:
                    q.collect_blockstats()
                raw.append(ms(now() - t0))
        finally:
            self.drop_fleet(fleet)
            time.sleep(2.0)
        return cold, warm, raw

    def measure_rpc_latency(self, name):
        params = json.dumps({"name": name})
        ticks = proc_cpu_ticks(self.daemon.pid)
        lat = self._rpc_latency(params, name)
        lat["daemon_cpu_us_per_call"] = ((proc_cpu_ticks(self.daemon.pid) - ticks) / CLK_TCK
                                         * 1e6 / (lat["count"] + 100))
        return lat

    def _rpc_latency(self, params, name):
        if self.latency_client is not None:
            p = subprocess.run([self.latency_client, "--socket", self.socket_path,
                                "--method", "vm.get", "--params", params,
                                "--count", str(self.rpc_count)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
            if p.returncode != 0:
                raise BenchError(f"vmsup-rpc-latency: {p.stderr.decode().strip()}")
            return json.loads(p.stdout)
        samples = []
        for _ in range(100):
            self.rpc.call("vm.get", {"name": name})
        for _ in range(self.rpc_count):
            t0 = now()
            self.rpc.call("vm.get", {"name": name})
            samples.append((now() - t0) * 1e6)
        samples.sort()

        def percentile(p):  # nearest rank, as vmsup-rpc-latency computes it
            rank = max(1, min(len(samples), int(p / 100 * len(samples) + 0.999999)))
            return samples[rank - 1]
        return {"count": len(samples), "min_us": samples[0], "p50_us": percentile(50),
                "p99_us": percentile(99), "max_us": samples[-1]}

    def measure_whole_process(self, argv, env, expected, count=b"\n"):
        """Spawn-run-reap of @argv; /bin/true the same way is the floor of any process."""
        true = shutil.which("true") or "/bin/true"
        _, out = spawn_wait(argv, env)
        if out.count(count) < expected:
            raise BenchError(f"{os.path.basename(argv[0])} showed {out.count(count)} VMs, "
                             f"expected {expected}")
        for _ in range(2):
            spawn_measure(argv, env)
        samples, cpu, floor = [], [], []
        ticks = proc_cpu_ticks(self.daemon.pid)
        for i in range(self.spawn_runs):
            dt, dt_cpu = spawn_measure(argv, env)
            samples.append(ms(dt))
            cpu.append(ms(dt_cpu))
        daemon_ms = (proc_cpu_ticks(self.daemon.pid) - ticks) / CLK_TCK * 1000 / self.spawn_runs
        for i in range(self.spawn_runs):
            floor.append(ms(spawn_measure([true])[0]))
        return samples, cpu, floor, daemon_ms

    def wait_bus_name(self, argv, env):
        """Until @argv succeeds: the name may be taken a moment after the socket answers."""
        deadline = now() + 20
        while True:
            try:
                spawn_wait(argv, env)
                return
            except BenchError:
                if now() > deadline:
                    raise
                time.sleep(0.05)

    def start_private_bus(self):
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
        with open(os.path.join(self.tmp, "dbus-daemon.log"), "wb") as log:
            self.dbus_proc = subprocess.Popen(["dbus-daemon", "--config-file", conf, "--nofork",
                                               "--print-address"],
                                              stdout=subprocess.PIPE, stderr=log,
                                              stdin=subprocess.DEVNULL, start_new_session=True)
        self.popen_pids.add(self.dbus_proc.pid)
        address = self.dbus_proc.stdout.readline().decode().strip()
        if not address:
            raise BenchError("the private dbus-daemon did not start")
        return address

    def measure_cpu(self, window):
        pid = self.daemon.pid
        c0, t0 = proc_cpu_ticks(pid), now()
        time.sleep(window)
        c1, t1 = proc_cpu_ticks(pid), now()
        return (c1 - c0) / CLK_TCK / (t1 - t0) * 100.0

    def libvirt_present(self):
        if shutil.which("virsh") is None:
            return False
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/comm") as f:
                        if f.read().strip() in ("libvirtd", "virtqemud"):
                            self.libvirtd_pid = int(entry)
                            return True
                except OSError:
                    pass
        return False

    # -- phases --------------------------------------------------------------

    def phase_boot(self):
        """Bundled guest: vm.start -> vm.ping answers, vs raw QEMU + own QGA handshake."""
        R = self.results
        key, work = "boot-agent", "boot bundled guest -> agent answers"
        if not self.guest_built:
            R.add(key, work, "ms", [], baseline_label="skipped: bundled guest not built")
            R.failures.append({"key": key, "work": work, "error": "bundled guest not built",
                               "skip": True})
            return
        self.rpc.call("vm.create", {"name": self.GUEST, "auto_stop": False, "wait": True})
        rawdir = os.path.join(self.raw_dir, "guest")
        vm_boot, raw_boot, argv = [], [], None
        details = self.results.details.setdefault("boot", [])
        try:
            for i in range(self.warmup + self.boot_iterations):
                order = ("vmsup", "raw") if i % 2 == 0 else ("raw", "vmsup")
                for who in order:
                    if who == "raw" and argv is None:
                        continue
                    if who == "vmsup":
                        t0 = now()
                        self.rpc.call("vm.start", {"name": self.GUEST})
                        t_started = now()
                        pid = self.vm_state(self.GUEST).get("pid")
                        if argv is None:
                            argv = self.raw_argv(pid, self.GUEST, rawdir)
                        deadline = t0 + 90
                        errors = []
                        while True:
                            try:
                                ping = self.rpc.call("vm.ping", {"name": self.GUEST})
                                break
                            except RpcError as e:
                                errors.append(e.kind or str(e.code))
                                if now() > deadline:
                                    raise BenchError("the bundled guest's agent never answered "
                                                     f"vm.ping within 90 s: {e}")
                                time.sleep(0.005)
                        dt = now() - t0
                        self.rpc.call("vm.stop", {"name": self.GUEST, "force": True})
                        wait_gone(pid, 10)
                        if i >= self.warmup:
                            vm_boot.append(ms(dt))
                            details.append({"side": "vmsup", "total_ms": ms(dt),
                                            "start_answered_ms": ms(t_started - t0),
                                            "failed_pings": len(errors),
                                            "ping_errors": sorted(set(errors)),
                                            "last_ping_rtt_ms": ping.get("rtt_ms")})
                    else:
                        raw = RawQemu(argv, rawdir)
                        self.raw.append(raw)
                        t0 = now()
                        raw.start(cont="-S" in raw.argv)  # as vmsupd: paused only to place it first
                        t_qmp = now()
                        qga_handshake_and_ping(os.path.join(rawdir, "qga.sock"), 90)
                        dt = now() - t0
                        raw.kill()
                        self.raw.remove(raw)
                        if i >= self.warmup:
                            raw_boot.append(ms(dt))
                            details.append({"side": "raw", "total_ms": ms(dt),
                                            "qmp_ready_ms": ms(t_qmp - t0)})
        finally:
            self.ensure_stopped(self.GUEST)
            self.rpc.call("vm.delete", {"name": self.GUEST, "force": True})
        R.add(key, work, "ms", vm_boot, baseline=raw_boot,
              baseline_label="raw QEMU + QGA handshake", target=("ratio", 1.1))

    # -- the accelerator probe ------------------------------------------------

    # as in src/qmp/vmsup-accel*.h: the guest's exit status, the slack and the bound
    PROBE_EXIT_OK = (0x2A << 1) | 1
    PROBE_SLACK = 2
    PROBE_BOUND = 2.0

    def capture_probe_argvs(self):
        """Runs one daemon start through a recording QEMU wrapper: the probe's two argvs
        (the wrapper gets QEMU's arguments, argv[0] aside)."""
        rec = os.path.join(self.tmp, "probe-rec")
        os.makedirs(rec)
        wrapper = os.path.join(self.tmp, "qemu-rec")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    f"d=$(mktemp -d '{rec}/run.XXXXXX')\n"
                    "printf '%s\\0' \"$@\" > \"$d/argv\"\n"
                    "prev=\n"
                    "for a do [ \"$prev\" = -bios ] && cp \"$a\" \"$d/probe.bin\"; prev=$a; done\n"
                    f"exec '{self.qemu}' \"$@\"\n")
        os.chmod(wrapper, 0o755)
        daemon = Daemon(self, self.config_text() + f"QemuBinary={wrapper}\n")
        try:
            daemon.start()
        finally:
            daemon.stop()
        argvs = {}
        for run in sorted(os.listdir(rec)):
            d = os.path.join(rec, run)
            with open(os.path.join(d, "argv"), "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
            accel = argv[argv.index("-accel") + 1]
            bios = argv[argv.index("-bios") + 1]
            # the probe's temp dir, swapped for ours; QEMU itself instead of the wrapper
            probe_dir = os.path.dirname(bios)
            raw = os.path.join(self.raw_dir, "probe")
            os.makedirs(os.path.join(raw, accel), exist_ok=True)
            shutil.copy(os.path.join(d, "probe.bin"), os.path.join(raw, "probe.bin"))
            argvs[accel] = [self.qemu] + [a.replace(probe_dir, raw) for a in argv]
        if set(argvs) != {"kvm", "tcg"}:
            raise BenchError(f"the probe ran QEMU with {sorted(argvs)}, not kvm and tcg")
        return argvs

    def raw_probe(self, argvs):
        """The probe by hand: both QEMUs at once, the same rule. (seconds, verdict, times)"""
        for accel in argvs:
            d = os.path.join(self.raw_dir, "probe", accel)
            for f in os.listdir(d):
                os.unlink(os.path.join(d, f))
        t0 = now()
        procs = {a: subprocess.Popen(argvs[a], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for a in ("kvm", "tcg")}
        fds = {os.pidfd_open(p.pid): a for a, p in procs.items()}
        ended, verdict, deadline = {}, None, t0 + self.PROBE_BOUND
        try:
            while verdict is None:
                ready, _, _ = select.select(list(fds), [], [], max(0.0, deadline - now()))
                for fd in ready:
                    accel = fds.pop(fd)
                    os.close(fd)
                    ended[accel] = (procs[accel].wait(), now() - t0)
                if "kvm" in ended:
                    verdict = "kvm" if ended["kvm"][0] == self.PROBE_EXIT_OK else "tcg"
                elif now() >= deadline:
                    verdict = "tcg"
                elif ended.get("tcg", (None,))[0] == self.PROBE_EXIT_OK:
                    deadline = min(deadline, t0 + self.PROBE_SLACK * ended["tcg"][1])
        finally:
            for fd in fds:
                os.close(fd)
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                p.wait()
        return now() - t0, verdict, {a: ms(t) for a, (_, t) in ended.items()}

    def phase_accel(self):
        """vmsupd's start with Accel=auto against Accel=tcg; the probe by hand as baseline."""
        R = self.results
        argvs = self.capture_probe_argvs()
        probe, raw, starts, reasons, raw_runs = [], [], {"auto": [], "tcg": []}, [], []
        for i in range(self.warmup + self.iterations):
            took = {}
            for accel in ("auto", "tcg"):
                daemon = Daemon(self, self.config_text() + f"Accel={accel}\n")
                t0 = now()
                try:
                    info = daemon.start(poll=0.002)
                    took[accel] = now() - t0
                finally:
                    daemon.stop()
                if accel == "auto" and i >= self.warmup:
                    reasons.append(f"{info.get('accel')} ({info.get('accel_reason')})")
            seconds, verdict, times = self.raw_probe(argvs)
            if i < self.warmup:
                continue
            for accel in took:
                starts[accel].append(ms(took[accel]))
            probe.append(ms(took["auto"] - took["tcg"]))
            raw.append(ms(seconds))
            raw_runs.append(f"{verdict} (QEMU exits: " + ", ".join(
                f"{a} {t:.0f} ms" for a, t in sorted(times.items())) + ")")
        R.details["accel-probe"] = {"daemon_start_ms": starts, "reasons": reasons,
                                    "raw": raw_runs}
        R.add("accel-probe", "accel probe at vmsupd start (Accel=auto minus Accel=tcg)", "ms",
              probe, baseline=raw, baseline_label="raw QEMU, same probe by hand",
              target=("max", 500.0),
              note=f"vmsupd start median {statistics.median(starts['auto']):.0f} ms with "
                   f"Accel=auto, {statistics.median(starts['tcg']):.0f} ms with Accel=tcg; "
                   f"first run picked {reasons[0]}; by hand: {raw_runs[0]}")

    def attempt(self, key, work, fn):
        """Runs one measurement; a failure is recorded and the run goes on with a live daemon."""
        try:
            fn()
        except (BenchError, RpcError, OSError, ValueError) as e:
            self.results.fail(key, work, e)
            self.ensure_daemon()

    def ensure_daemon(self):
        if self.daemon.proc.poll() is None:
            return
        self.results.notes.append(f"vmsupd died and was restarted:\n{self.daemon.log_tail(5)}")
        self.start_daemon()

    def phase_level(self, level, dbus_level, cpu_level, libvirt):
        R = self.results
        at = vms(level)
        absent = None if libvirt else "libvirt: absent"
        scale = {"vms": level}
        self.results.scaling.append(scale)

        # populate: level - 1 halted fillers, plus the probe measured on
        want = level - 1
        if len(self.fillers) < want:
            self.check_memory(level)
            new = [f"bench-fill-{i:03d}" for i in range(len(self.fillers), want)]
            self.create_halt_vms(new)
            self.start_vms(new)
            self.fillers.extend(new)
        self.daemon.check_alive()
        names = self.fillers[:want] + [self.PROBE]

        def start_stop():
            vm_start, vm_stop, raw_start, raw_stop = self.measure_start_stop(level)
            R.add(f"start@{level}", f"vm.start -> running ({at})", "ms", vm_start, count=level,
                  baseline=raw_start, baseline_label="raw exec->QMP->cont",
                  target=("ratio", 1.15))
            R.add(f"stop@{level}", f"vm.stop force -> reaped ({at})", "ms", vm_stop,
                  count=level, baseline=raw_stop, baseline_label="raw SIGKILL->reaped",
                  target=("plus", 10.0))
            scale.update({"start_ms": summarize(vm_start), "raw_start_ms": summarize(raw_start),
                          "stop_ms": summarize(vm_stop), "raw_stop_ms": summarize(raw_stop)})
        self.attempt(f"start@{level}", f"vm.start/stop ({at})", start_stop)

        vm = self.vm_state(self.PROBE)
        if vm.get("state") != "running":
            self.rpc.call("vm.start", {"name": self.PROBE})
            self.wait_running(self.PROBE)

        def rpc_latency():
            lat = self.measure_rpc_latency(self.PROBE)
            R.add(f"rpc-p50@{level}", f"vm.get round trip p50 ({at})", "us", [lat["p50_us"]],
                  count=level, target=("max", 100.0),
                  note=f"{lat['count']} calls; vmsupd CPU per call "
                       f"{lat['daemon_cpu_us_per_call']:.0f} us")
            R.add(f"rpc-p99@{level}", f"vm.get round trip p99 ({at})", "us", [lat["p99_us"]],
                  count=level, target=("max", 1000.0))
            scale["rpc_us"] = lat
        self.attempt(f"rpc@{level}", f"vm.get round trip ({at})", rpc_latency)

        def cli_list():
            cli, cpu, floor, daemon_ms = self.measure_whole_process([self.cli, "list"],
                                                                    self.env, level)
            R.add(f"cli-list@{level}", f"`vmsup list`, whole process ({at})", "ms", cli,
                  count=level, baseline_label=absent, target=("max", 8.0),
                  target_count=LIST_LEVEL, note=floor_note(cpu, floor, daemon_ms))
            scale["cli_list_ms"] = summarize(cli)
            scale["cli_list_cpu_ms"] = summarize(cpu)
            scale["spawn_floor_ms"] = summarize(floor)
        if level in (1, dbus_level) or level == self.levels[-1]:
            self.attempt(f"cli-list@{level}", f"`vmsup list` ({at})", cli_list)

        rss = self.daemon.rss_mib()
        R.add(f"rss@{level}", f"vmsupd RSS with {at}", "MiB", [rss], count=level,
              baseline_label=absent, target=("max", 14.0), target_count=LIST_LEVEL)
        scale["daemon_rss_mib"] = rss
        qemu_rss = [proc_status_kib(self.vm_state(n).get("pid", 0), "VmRSS") for n in names[-3:]]
        scale["qemu_rss_mib_sample"] = [round(k / 1024.0, 1) for k in qemu_rss if k]

        if level == dbus_level:
            self.attempt(f"gdbus-list@{level}", f"gdbus List ({at})",
                         lambda: self.phase_dbus(level))

        # after the quick rows, since its raw QEMUs come and go and the host needs a moment
        # after them; before the CPU row, whose daemon polls every second (no cold cache)
        def stats():
            cold, warm, raw = self.measure_stats_all(names, 2 if self.quick else 5)
            # libvirt's domstats, when present, is its own row
            R.add(f"stats@{level}", f"vm.stats x{level}, cache cold", "ms", cold, count=level,
                  baseline=raw, baseline_label=f"{level} raw QEMUs asked at once",
                  target=("max", 25.0), target_count=LIST_LEVEL)
            R.add(f"stats-warm@{level}", f"vm.stats x{level}, cache warm", "ms", warm,
                  count=level)
            scale.update({"stats_cold_ms": summarize(cold), "stats_warm_ms": summarize(warm),
                          "raw_stats_ms": summarize(raw)})
        self.attempt(f"stats@{level}", f"vm.stats x{level}", stats)

        if level == cpu_level:
            self.attempt(f"cpu@{level}", f"vmsupd CPU ({at})", lambda: self.phase_cpu(level))

    def phase_dbus(self, level):
        """Restarts the daemon onto a private bus (VMs are adopted), times gdbus List, and back."""
        R = self.results
        address = self.start_private_bus()
        try:
            adopt = self.restart_daemon(dbus_address=address)
            R.add(f"adopt@{level}", f"vmsupd restart, re-adopt {vms(level)} running", "ms",
                  [ms(adopt)], count=level)
            env = dict(self.env, DBUS_SESSION_BUS_ADDRESS=address)
            self.wait_bus_name(["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
                                "--object-path", "/org/freedesktop/DBus", "--method",
                                "org.freedesktop.DBus.GetNameOwner", DBUS_NAME], env)
            rss_before = self.daemon.rss_mib()
            R.add(f"rss-dbus@{level}", f"vmsupd RSS on D-Bus with {vms(level)}", "MiB",
                  [rss_before], count=level)
            argv = ["gdbus", "call", "--session", "--dest", DBUS_NAME, "--object-path",
                    DBUS_PATH, "--method", f"{DBUS_NAME}.List", "{}"]
            samples, cpu, floor, daemon_ms = self.measure_whole_process(argv, env, level,
                                                                        count=b"'name'")
            # the floor of any gdbus call: the bus daemon's own GetId, on the same bus
            bus_id = ["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
                      "--object-path", "/org/freedesktop/DBus", "--method",
                      "org.freedesktop.DBus.GetId"]
            gdbus_floor = [ms(spawn_measure(bus_id, env)[0]) for _ in range(self.spawn_runs)]
            R.add(f"gdbus-list@{level}", f"`gdbus call ... List {{}}`, whole process "
                  f"({vms(level)})", "ms", samples, count=level, baseline=gdbus_floor,
                  baseline_label="gdbus call of the bus's GetId", target=("max", 5.0),
                  target_count=LIST_LEVEL, note=floor_note(cpu, floor, daemon_ms))
            calls = self.spawn_runs + 3
            growth = self.daemon.rss_mib() - rss_before
            R.add(f"rss-dbus-growth@{level}", f"vmsupd RSS growth per D-Bus List call "
                  f"({vms(level)})", "KiB", [growth * 1024 / calls], count=level,
                  note=f"{growth:.1f} MiB after {calls} calls")
        finally:
            if self.daemon.dbus_address is not None:
                self.restart_daemon()
            self.dbus_proc.terminate()
            self.dbus_proc.wait()
            self.dbus_proc = None

    def phase_cpu(self, level):
        R = self.results
        try:
            self.restart_daemon(poll_interval=1)
            time.sleep(3)  # let the poller reach its steady state
            cpu = self.measure_cpu(self.cpu_window)
            self.daemon.check_alive()
            R.add(f"cpu@{level}", f"vmsupd CPU, {vms(level)} polled every 1 s "
                  f"({self.cpu_window:g} s window)", "%", [cpu], count=level,
                  target=("below", 3.0), target_count=CPU_LEVEL)
        finally:
            if level != self.levels[-1]:
                self.restart_daemon()

    def check_memory(self, level):
        """Refuses counts that would leave less than 2 GiB free (estimate from one raw QEMU)."""
        per_vm = (self.qemu_per_vm_mib or 80.0) * MIB * 1.5
        need = (level - 1 - len(self.fillers)) * per_vm + 2 * 1024 * MIB
        avail = mem_available_bytes()
        if need > avail:
            raise BenchError(f"{level} VMs need about {need / MIB / 1024:.1f} GiB, only "
                             f"{avail / MIB / 1024:.1f} GiB available; use --counts")

    def run(self):
        R = self.results
        self.check_prerequisites()
        self.setup()
        libvirt = self.libvirt_present()
        R.notes.append("libvirt: " + ("present" if libvirt else "absent"))
        version = subprocess.run([self.qemu, "--version"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL).stdout.decode().splitlines()
        R.notes.append(f"qemu: {version[0] if version else 'unknown version'}")
        R.notes.append("load average at start: " +
                       " ".join(map("{:.2f}".format, os.getloadavg())))
        # first, while the state dir is empty and no VM runs
        try:
            self.phase_accel()
        except (BenchError, RpcError, OSError, ValueError) as e:
            R.fail("accel-probe", "accel probe at vmsupd start", e)
        info = self.start_daemon()
        R.notes.append(f"accelerator: {info.get('accel')} ({info.get('accel_reason', '')})")
        time.sleep(1.0)
        R.add("rss-idle", "vmsupd RSS idle, no VMs", "MiB", [self.daemon.rss_mib()], count=0,
              baseline_label="libvirt: absent" if not libvirt else None, target=("max", 8.0))

        self.attempt("boot-agent", "boot bundled guest -> agent answers", self.phase_boot)

        self.rpc.call("vm.create", {"name": self.PROBE, "image": self.halt_image,
                                    "memory_mib": 64, "auto_stop": False, "wait": True})
        dbus_level = max([l for l in self.levels if l <= LIST_LEVEL] or [self.levels[0]])
        cpu_level = self.levels[-1] if self.levels[-1] <= CPU_LEVEL else CPU_LEVEL
        for level in self.levels:
            self.phase_level(level, dbus_level, cpu_level, libvirt)
        if libvirt:
            self.phase_libvirt()

    def phase_libvirt(self):
        R = self.results
        try:
            samples = [ms(spawn_wait(["virsh", "list"])[0]) for _ in range(self.spawn_runs)]
            R.add("virsh-list", "`virsh list`, whole process (its own domains)", "ms", samples)
            samples = [ms(spawn_wait(["virsh", "domstats"])[0]) for _ in range(self.spawn_runs)]
            R.add("virsh-domstats", "`virsh domstats`, whole process (its own domains)", "ms",
                  samples)
            kib = proc_status_kib(self.libvirtd_pid, "VmRSS")
            R.add("libvirtd-rss", "libvirtd RSS (its own domains)", "MiB",
                  [kib / 1024.0] if kib else [])
        except BenchError as e:
            R.fail("libvirt", "libvirt baselines", e)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Benchmarks vmsup against raw QEMU.")
    p.add_argument("--build-dir", required=True, help="meson build directory")
    p.add_argument("--iterations", type=int, default=0,
                   help="runs per start/stop measurement (default 10, --quick 1)")
    p.add_argument("--boot-iterations", type=int, default=0,
                   help="bundled-guest boots per side (default 5, --quick 1)")
    p.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")],
                   help="VM counts to measure at (default 1,10,50,100; --quick 1,2)")
    p.add_argument("--cpu-window", type=float, default=0,
                   help="seconds of daemon CPU sampling (default 20, --quick 3)")
    p.add_argument("--json", metavar="FILE", help="write all results and samples as JSON")
    p.add_argument("--quick", action="store_true",
                   help="one iteration, tiny counts: checks the harness, not the targets")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir for inspection")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    become_subreaper()
    bench = Bench(args)
    status = 0
    started = time.time()
    # SIGTERM from meson's timeout or a user: unwind through the finally below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        bench.run()
    except Prerequisite as e:
        print(f"vmsup-bench: skipped: {e}", file=sys.stderr)
        return EXIT_SKIP
    except (BenchError, RpcError, OSError) as e:
        bench.results.failures.append({"key": "run", "work": "benchmark run", "error": str(e)})
        print(f"vmsup-bench: {e}", file=sys.stderr)
        if bench.daemon is not None:
            tail = bench.daemon.log_tail()
            if tail:
                print(f"vmsupd log tail:\n{tail}", file=sys.stderr)
        status = 1
    finally:
        bench.cleanup()

    R = bench.results
    R.notes.append("load average at end: " + " ".join(map("{:.2f}".format, os.getloadavg())))
    print()
    print(f"vmsup benchmark ({'quick' if args.quick else 'full'}; "
          f"{os.cpu_count()} CPUs; {time.time() - started:.0f} s)")
    print_table(R)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"quick": args.quick, "levels": bench.levels,
                       "iterations": bench.iterations, "boot_iterations": bench.boot_iterations,
                       "rows": R.rows, "scaling": R.scaling, "details": R.details,
                       "notes": R.notes,
                       "failures": R.failures}, f, indent=2)
    real_failures = [f for f in R.failures if not f.get("skip")]
    if real_failures:
        for f in real_failures:
            print(f"FAILED: {f['work']}: {f['error'].splitlines()[0]}", file=sys.stderr)
        return 1
    if status == 0 and any(f.get("skip") for f in R.failures):
        return EXIT_SKIP
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
