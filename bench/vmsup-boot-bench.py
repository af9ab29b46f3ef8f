#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Boot time of the bundled guest, exec -> agent answers, per QEMU argv variant.

Starts its own vmsupd (as vmsup-bench.py does), records the argv it gives
QEMU for the bundled guest, then boots raw QEMU with that argv and with
variants of it, alternating, and measures exec -> QGA guest-ping answered.
After each boot it asks the agent for /proc/uptime and dmesg to say where
the time went.

    python3 bench/vmsup-boot-bench.py --build-dir _build [--runs N]
        [--baseline FILE] [--variant 'NAME=SOURCE;OP;...'] [--initcall-debug]
        [--save-argv FILE] [--json out.json] [--quick]

See bench/README.md ("Boot of the bundled guest") for the variants and the
phases. Exit status: 0 when every boot of every variant answered, 1 when
one hung or failed, 77 when a prerequisite is missing.
"""

import argparse
import base64
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def load_bench_module():
    spec = importlib.util.spec_from_file_location("vmsup_bench",
                                                  os.path.join(HERE, "vmsup-bench.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


vb = load_bench_module()
BenchError, now, ms = vb.BenchError, vb.now, vb.ms

VM = "boot-bench"
RAWDIR_TOKEN = "@RAWDIR@"
TMP_TOKEN = "@TMP@"
INITCALL_RE = re.compile(r"initcall (\S+?)\+0x\S+ returned -?\d+ after (\d+) usecs")
DMESG_RE = re.compile(r"^\[\s*(\d+\.\d+)\] (.*)$")


# ---------------------------------------------------------------------------
# argv variants


def cmdline_index(argv):
    return argv.index("-append") + 1


def fd_of(argv, flag):
    """The descriptor number behind -kernel/-initrd /proc/self/fd/N, or None."""
    if flag not in argv:
        return None
    m = re.fullmatch(r"/proc/self/fd/(\d+)", argv[argv.index(flag) + 1])
    return int(m.group(1)) if m else None


def apply_op(argv, fds, op):
    """One variant operation (see --variant) applied to (argv, fds) in place."""
    if op.startswith(("+", "-")) and not op.startswith(("args+=", "args-=")):
        i = cmdline_index(argv)
        words = argv[i].split()
        word = op[1:]
        key = word.split("=", 1)[0]
        words = [w for w in words if w != word and w.split("=", 1)[0] != key]
        if op[0] == "+":
            words.append(word)
        argv[i] = " ".join(words)
    elif op.startswith(("kernel=", "initrd=")):
        flag, path = op.split("=", 1)
        fd = fd_of(argv, "-" + flag)
        if fd is None:
            argv[argv.index("-" + flag) + 1] = os.path.abspath(path)
        else:
            fds[fd] = ("open", os.path.abspath(path), os.O_RDONLY)
    elif op.startswith("args+="):
        argv.extend(op[len("args+="):].split(" ", 1))
    elif op.startswith("args-="):
        # "-device virtio-balloon" drops every -device whose value starts so
        flag, _, prefix = op[len("args-="):].partition(" ")
        out, skip = [], False
        for i, a in enumerate(argv):
            if skip:
                skip = False
                continue
            if a == flag and i + 1 < len(argv) and argv[i + 1].startswith(prefix) and prefix:
                skip = True
                continue
            if a == flag and not prefix:
                continue
            out.append(a)
        argv[:] = out
    else:
        raise BenchError(f"unknown variant operation '{op}'")


class Variant:
    def __init__(self, name, source, ops):
        self.name, self.source, self.ops = name, source, ops
        self.argv, self.fds = None, None
        self.boots = []  # dicts, see BootBench.boot()
        self.failures = []

    def resolve(self, current, rawdir, tmp):
        if self.source == "current":
            argv, fds = list(current[0]), dict(current[1])
        else:
            with open(self.source) as f:
                saved = json.load(f)
            base = os.path.dirname(os.path.abspath(self.source))
            def here(s):
                return s.replace(RAWDIR_TOKEN, rawdir).replace(TMP_TOKEN, tmp)
            argv = [here(a) for a in saved["argv"]]
            fds = {}
            for fd, spec in saved["fds"].items():
                spec = [here(s) if isinstance(s, str) else s for s in spec]
                if spec[0] == "open" and not os.path.isabs(spec[1]):
                    spec[1] = os.path.join(base, spec[1])
                fds[int(fd)] = tuple(spec)
        for op in self.ops:
            apply_op(argv, fds, op)
        self.argv, self.fds = argv, fds

    @property
    def cmdline(self):
        return self.argv[cmdline_index(self.argv)]


def parse_variant(spec):
    name, sep, rest = spec.partition("=")
    if not sep or not name:
        raise BenchError(f"--variant '{spec}': expected NAME=SOURCE[;OP...]")
    parts = rest.split(";")
    return Variant(name, parts[0] or "current", [p for p in parts[1:] if p])


def save_argv(path, current, rawdir, tmp):
    """The recorded argv with its kernel and initrd copied next to @path, for a later
    run's --baseline: today's boot, measured again beside tomorrow's."""
    argv, fds = current

    def portable(s):
        # the run's own directories (the share is in the temp dir) by name
        return s.replace(rawdir, RAWDIR_TOKEN).replace(tmp, TMP_TOKEN)

    base = os.path.dirname(os.path.abspath(path))
    os.makedirs(base, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    out_fds = {}
    for fd, spec in fds.items():
        spec = list(spec)
        if fd in (fd_of(argv, "-kernel"), fd_of(argv, "-initrd")):
            copy = f"{stem}-{os.path.basename(spec[1])}"
            shutil.copyfile(spec[1], os.path.join(base, copy))
            spec[1] = copy
        out_fds[fd] = [portable(s) if isinstance(s, str) else s for s in spec]
    with open(path, "w") as f:
        json.dump({"argv": [portable(a) for a in argv], "fds": out_fds}, f, indent=1)


# ---------------------------------------------------------------------------
# what the guest says about its boot


def guest_exec(conn, path, args=(), timeout=20):
    pid = vb.qga_command(conn, "guest-exec",
                         {"path": path, "arg": list(args), "capture-output": True})["pid"]
    deadline = now() + timeout
    while True:
        st = vb.qga_command(conn, "guest-exec-status", {"pid": pid})
        if st.get("exited"):
            return base64.b64decode(st.get("out-data", "")).decode(errors="replace")
        if now() > deadline:
            raise BenchError(f"guest-exec {path} did not finish")
        time.sleep(0.02)


def guest_report(qga_path, t0):
    """Where the boot's time went: exec -> kernel clock 0 (firmware, loading), -> /init,
    -> agent started; and dmesg for the initcalls."""
    conn = vb.LineSocket(qga_path, 5.0)
    try:
        vb.qga_sync(conn, now() + 10)
        t_ask = now()
        uptime = float(guest_exec(conn, "/bin/cat", ["/proc/uptime"]).split()[0])
        # the command ran somewhere between asking and the answer: take the middle
        kernel_zero = (t_ask + now()) / 2 - t0 - uptime
        dmesg = guest_exec(conn, "/bin/dmesg")
    finally:
        conn.close()
    out = {"kernel_start_ms": ms(kernel_zero), "dmesg": dmesg}
    for line in dmesg.splitlines():
        m = DMESG_RE.match(line)
        if not m:
            continue
        stamp, text = float(m.group(1)), m.group(2)
        if text.startswith("Run /init as init process"):
            out["init_ms"] = ms(kernel_zero + stamp)
        elif text.startswith("vmsup-guest: "):
            # /init's own steps, written to /dev/kmsg
            step = text[len("vmsup-guest: "):]
            out.setdefault("steps", {})[step] = ms(kernel_zero + stamp)
            if step == "agent starting":
                out["agent_start_ms"] = ms(kernel_zero + stamp)
    return out


def console_agent_start(console, kernel_start_ms):
    """The uptime /init printed when it started the agent, from the console log."""
    m = re.search(r"vmsup-guest: services up at ([\d.]+) s", console)
    return kernel_start_ms + float(m.group(1)) * 1000.0 if m else None


def slow_initcalls(dmesg, top):
    calls = [(int(m.group(2)), m.group(1)) for m in INITCALL_RE.finditer(dmesg)]
    return sorted(calls, reverse=True)[:top], sum(c[0] for c in calls)


# ---------------------------------------------------------------------------


class BootBench:
    def __init__(self, args):
        self.args = args
        ns = argparse.Namespace(build_dir=args.build_dir, quick=True, iterations=1,
                                boot_iterations=1, counts=[1], cpu_window=1,
                                keep_tmp=args.keep_tmp)
        self.bench = vb.Bench(ns)
        self.runs = args.runs if args.runs else (1 if args.quick else 10)
        variants = [parse_variant(v) for v in args.variant]
        if args.baseline:
            variants.insert(0, Variant("today", args.baseline, []))
            if not any(v.name == "new" for v in variants):
                variants.insert(1, Variant("new", "current", []))
        if not variants:
            variants = [Variant("current", "current", [])]
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise BenchError(f"variant names repeat: {' '.join(names)}")
        self.variants = variants
        self.notes = []
        self.initcalls = {}

    def record(self):
        """vmsupd's argv for the bundled guest with SSH, a share and its forwards."""
        b = self.bench
        share = os.path.join(b.tmp, "share")
        os.makedirs(share)
        with open(os.path.join(share, "hello.txt"), "w") as f:
            f.write("hello\n")
        # a workspace's VM: the bundled guest with the 9p share
        vm = b.rpc.call("workspace.create", {"name": VM, "path": share})["vm"]
        b.rpc.call("vm.set", {"name": vm, "forward": [80], "auto_stop": False})
        b.rpc.call("vm.start", {"name": vm})
        pid = b.vm_state(vm).get("pid")
        try:
            return b.raw_argv(pid, vm, self.rawdir)
        finally:
            b.rpc.call("vm.stop", {"name": vm, "force": True})
            vb.wait_gone(pid, 10)

    def boot(self, variant, extra_ops=()):
        argv, fds = list(variant.argv), dict(variant.fds)
        for op in extra_ops:
            apply_op(argv, fds, op)
        # free host ports at each boot: one left in TIME_WAIT would fail QEMU's start
        argv = [vb.fresh_forwards(a) for a in argv]
        raw = vb.RawQemu((argv, fds), self.rawdir)
        self.bench.raw.append(raw)
        console_path = os.path.join(self.rawdir, "console.log")
        rec = {}
        try:
            t0 = now()
            raw.start(cont="-S" in argv)
            rec["qmp_ms"] = ms(now() - t0)
            try:
                vb.qga_handshake_and_ping(os.path.join(self.rawdir, "qga.sock"),
                                          self.args.timeout)
            except BenchError as e:
                rec["hang"] = str(e)
                return rec
            rec["total_ms"] = ms(now() - t0)
            rec.update(guest_report(os.path.join(self.rawdir, "qga.sock"), t0))
            try:
                with open(console_path, errors="replace") as f:
                    console = f.read()
            except OSError:
                console = ""
            if "agent_start_ms" not in rec:
                start = console_agent_start(console, rec["kernel_start_ms"])
                if start is not None:
                    rec["agent_start_ms"] = start
            return rec
        finally:
            if "hang" in rec:
                try:
                    with open(console_path, errors="replace") as f:
                        rec["console_tail"] = f.read()[-2000:]
                except OSError:
                    pass
            raw.kill()
            self.bench.raw.remove(raw)

    def run(self):
        b = self.bench
        b.check_prerequisites()
        if not b.guest_built:
            raise vb.Prerequisite(f"the bundled guest is not built in {b.data_dir}/guest")
        b.setup()
        self.rawdir = os.path.join(b.raw_dir, "boot")
        os.makedirs(self.rawdir)
        b.start_daemon()
        current = self.record()
        if self.args.save_argv:
            save_argv(self.args.save_argv, current, self.rawdir, self.bench.tmp)
            self.notes.append(f"argv saved to {self.args.save_argv}")
        for v in self.variants:
            v.resolve(current, self.rawdir, self.bench.tmp)
        self.notes.append("load average at start: " +
                          " ".join(map("{:.2f}".format, os.getloadavg())))
        # one unmeasured boot each first: page cache, QEMU's own files
        for v in self.variants:
            self.boot(v)
        n = len(self.variants)
        for i in range(self.runs):
            for k in range(n):
                v = self.variants[(i + k) % n]
                rec = self.boot(v)
                v.boots.append(rec)
                if "hang" in rec:
                    print(f"vmsup-boot-bench: {v.name}: boot {len(v.boots)} hung: {rec['hang']}"
                          f"\n{rec.get('console_tail', '')[-600:]}", file=sys.stderr)
        if self.args.initcall_debug:
            for v in self.variants:
                rec = self.boot(v, ("+initcall_debug", "+log_buf_len=4M"))
                if "dmesg" in rec:
                    self.initcalls[v.name] = slow_initcalls(rec["dmesg"], self.args.top)
        self.notes.append("load average at end: " +
                          " ".join(map("{:.2f}".format, os.getloadavg())))

    # -- output ---------------------------------------------------------------

    def table(self, out=sys.stdout):
        base = None
        rows = []
        for v in self.variants:
            ok = [r["total_ms"] for r in v.boots if "total_ms" in r]
            hangs = sum(1 for r in v.boots if "hang" in r)
            med = statistics.median(ok) if ok else None
            if base is None:
                base = med
            ratio = f"{med / base:.2f}" if med and base else "-"
            phase = {}
            for key in ("qmp_ms", "kernel_start_ms", "init_ms", "agent_start_ms"):
                vals = [r[key] for r in v.boots if key in r and "total_ms" in r]
                phase[key] = statistics.median(vals) if vals else None
            rows.append((v, ok, hangs, med, ratio, phase))

        def f(x):
            return f"{x:.0f}" if x is not None else "-"

        print(f"{'variant':<14} {'boots':>5} {'hung':>4} {'median':>7} {'min':>6} {'max':>6}"
              f" {'ratio':>6}   {'qmp':>5} {'kernel':>6} {'/init':>6} {'agent':>6}  (ms from exec)",
              file=out)
        for v, ok, hangs, med, ratio, phase in rows:
            print(f"{v.name:<14} {len(ok):>5} {hangs:>4} {f(med):>7} "
                  f"{f(min(ok) if ok else None):>6} {f(max(ok) if ok else None):>6} {ratio:>6}   "
                  f"{f(phase['qmp_ms']):>5} {f(phase['kernel_start_ms']):>6} "
                  f"{f(phase['init_ms']):>6} {f(phase['agent_start_ms']):>6}", file=out)
        print(file=out)
        print("ratio: median / the first variant's median. Phases (medians): qmp = QMP greeting "
              "and cont answered; kernel = the guest's clock 0 (firmware and loading done); "
              "/init = 'Run /init'; agent = /init starts qemu-ga; the rest to 'median' is the "
              "agent's start and the handshake.", file=out)
        for v in self.variants:
            steps = {}
            for r in v.boots:
                for step, t in r.get("steps", {}).items():
                    steps.setdefault(step, []).append(t)
            if steps:
                print(f"  {v.name}, /init's steps (medians, ms from exec): " + ", ".join(
                    f"{k} {statistics.median(t):.0f}" for k, t in
                    sorted(steps.items(), key=lambda kv: statistics.median(kv[1]))), file=out)
        for v in self.variants:
            print(f"  {v.name}: {v.source}{''.join(';' + o for o in v.ops)}", file=out)
            print(f"    -append {v.cmdline}", file=out)
        for name, (calls, total) in self.initcalls.items():
            print(f"\nslowest initcalls, {name} (initcall_debug, one boot; all initcalls "
                  f"{total / 1000:.0f} ms):", file=out)
            for usecs, fn in calls:
                print(f"  {usecs / 1000:8.1f} ms  {fn}", file=out)
        for note in self.notes:
            print(f"note: {note}", file=out)

    def json(self, path):
        with open(path, "w") as f:
            json.dump({"runs": self.runs, "notes": self.notes,
                       "initcalls": self.initcalls,
                       "variants": [{"name": v.name, "source": v.source, "ops": v.ops,
                                     "argv": v.argv,
                                     "last_dmesg": next((r["dmesg"] for r in reversed(v.boots)
                                                         if "dmesg" in r), None),
                                     "boots": [{k: x for k, x in r.items() if k != "dmesg"}
                                               for r in v.boots]}
                                    for v in self.variants]}, f, indent=2)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Boot time of the bundled guest per argv variant.")
    p.add_argument("--build-dir", required=True, help="meson build directory")
    p.add_argument("--runs", type=int, default=0, help="boots per variant (default 10, --quick 1)")
    p.add_argument("--baseline", metavar="FILE",
                   help="an argv saved with --save-argv: variant 'today', measured first, "
                        "beside 'new' (this build's argv)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=SOURCE;OP;...",
                   help="SOURCE: 'current' (this build's argv) or a --save-argv file; OP: "
                        "+WORD / -WORD (kernel command line), kernel=PATH, initrd=PATH, "
                        "'args+=OPT VALUE', 'args-=OPT [VALUE-PREFIX]'")
    p.add_argument("--save-argv", metavar="FILE", help="save this build's argv (with copies of "
                   "its kernel and initrd) for a later --baseline")
    p.add_argument("--initcall-debug", action="store_true",
                   help="one more boot per variant with initcall_debug: the slowest initcalls")
    p.add_argument("--top", type=int, default=12, help="initcalls listed (default 12)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to the agent's answer before a boot counts as hung (30)")
    p.add_argument("--json", metavar="FILE", help="write every boot's figures as JSON")
    p.add_argument("--quick", action="store_true", help="one boot per variant")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir for inspection")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    vb.become_subreaper()
    started = time.time()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        bb = BootBench(args)
    except BenchError as e:
        print(f"vmsup-boot-bench: {e}", file=sys.stderr)
        return 2
    status = 0
    try:
        bb.run()
    except vb.Prerequisite as e:
        print(f"vmsup-boot-bench: skipped: {e}", file=sys.stderr)
        return vb.EXIT_SKIP
    except (BenchError, vb.RpcError, OSError) as e:
        print(f"vmsup-boot-bench: {e}", file=sys.stderr)
        status = 1
    finally:
        bb.bench.cleanup()
    print(f"\nbundled guest boot, exec -> agent answers ({bb.runs} boots per variant, "
          f"alternating; {os.cpu_count()} CPUs; {time.time() - started:.0f} s)")
    bb.table()
    if args.json:
        bb.json(args.json)
    if any("hang" in r for v in bb.variants for r in v.boots):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
