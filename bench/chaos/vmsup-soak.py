#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Soak for vmsupd: N VMs cycling start/stop with the stats poller at 1 s for a
given time, vmsupd's RSS, CPU and open descriptors sampled every minute and
their growth per hour printed. See bench/README.md (Soak).

    python3 bench/chaos/vmsup-soak.py --build-dir _build [--vms 20] [--minutes 60]

Exit status: 0 when it ran (growth is reported, not judged), 1 when vmsupd
died or an operation failed, 77 when a prerequisite is missing.
"""

import argparse
import importlib.util
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
_spec = importlib.util.spec_from_file_location(
    "vmsup_chaos", os.path.join(os.path.dirname(os.path.abspath(__file__)), "vmsup-chaos.py"))
chaos_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chaos_mod)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def sample(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    rss = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"t": time.monotonic(), "cpu_s": ticks / CLK_TCK, "rss_kib": rss, "fds": fds}


def slope_per_hour(samples, key):
    """Least-squares growth of @key per hour over the samples."""
    n = len(samples)
    if n < 2:
        return 0.0
    xs = [s["t"] for s in samples]
    ys = [s[key] for s in samples]
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 3600


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", required=True)
    p.add_argument("--vms", type=int, default=20)
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--sample-s", type=float, default=60, help="seconds between samples")
    p.add_argument("--cycle-s", type=float, default=0.5,
                   help="seconds between two start/stop toggles (round robin over the VMs)")
    a = p.parse_args(argv)
    args = chaos_mod.parse_args(["--build-dir", a.build_dir, "--vms", str(a.vms), "--guests",
                                 "0", "--workspaces", "0", "--ops", "0", "--kills", "0"])
    c = chaos_mod.Chaos(args)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    chaos_mod.become_subreaper()
    try:
        c.check_prerequisites()
    except chaos_mod.Prerequisite as e:
        print(f"vmsup-soak: {e}", file=sys.stderr)
        return 77
    rc = 0
    samples = []
    toggles = failures = 0
    try:
        c.setup()
        with open(c.conf, "w") as f:
            f.write("[vmsupd]\nAutoStopStaleAfter=0\nStatsPollInterval=1\nAccel=tcg\n")
        c.start_daemon()
        c.wait_daemon()
        c.populate()
        conn = chaos_mod.RpcConn(c.socket_path, 120)
        names = sorted(c.vms)
        for n in names:
            r = conn.call("vm.start", {"name": n})
            if not r.ok:
                raise chaos_mod.HarnessError(f"vm.start {n}: {r}")
        running = set(names)
        t0 = time.monotonic()
        end = t0 + a.minutes * 60
        next_sample = t0
        i = 0
        print(f"{'min':>5} {'rss MiB':>8} {'cpu s':>8} {'fds':>5} {'toggles':>8}", flush=True)
        while True:
            t = time.monotonic()
            if t >= next_sample:
                if c.daemon.poll() is not None:
                    raise chaos_mod.HarnessError(f"vmsupd died: {c.daemon.returncode}\n"
                                                 f"{c.log_tail()}")
                s = sample(c.daemon.pid)
                samples.append(s)
                print(f"{(t - t0) / 60:5.1f} {s['rss_kib'] / 1024:8.2f} {s['cpu_s']:8.2f} "
                      f"{s['fds']:5d} {toggles:8d}", flush=True)
                next_sample += a.sample_s
                if t >= end:
                    break
            n = names[i % len(names)]
            i += 1
            if n in running:
                r = conn.call("vm.stop", {"name": n, "force": True})
                running.discard(n)
            else:
                r = conn.call("vm.start", {"name": n})
                running.add(n)
            toggles += 1
            if not r.ok:
                failures += 1
                print(f"operation failed on {n}: {r}", flush=True)
            c.reap()
            time.sleep(max(0.0, min(a.cycle_s, next_sample - time.monotonic())))
        conn.close()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        rc = 130
    except (chaos_mod.HarnessError, OSError) as e:
        print(f"vmsup-soak: {e}", file=sys.stderr)
        rc = 1
    finally:
        c.cleanup()
    if len(samples) >= 2:
        first, last = samples[0], samples[-1]
        hours = (last["t"] - first["t"]) / 3600
        cpu_pct = (last["cpu_s"] - first["cpu_s"]) / (last["t"] - first["t"]) * 100
        print()
        print(f"{a.vms} VMs, {toggles} start/stop toggles ({failures} failed) over "
              f"{hours * 60:.1f} min, StatsPollInterval=1")
        print(f"RSS  {first['rss_kib'] / 1024:.2f} -> {last['rss_kib'] / 1024:.2f} MiB, "
              f"growth {slope_per_hour(samples, 'rss_kib') / 1024:+.2f} MiB/h (least squares)")
        print(f"CPU  {cpu_pct:.2f} % of a core on average, CPU time per minute "
              f"{(last['cpu_s'] - first['cpu_s']) / max(hours * 60, 1e-9):.2f} s")
        rates = [dict(t=b["t"], pct=(b["cpu_s"] - a_["cpu_s"]) / (b["t"] - a_["t"]) * 100)
                 for a_, b in zip(samples, samples[1:])]
        print(f"     CPU % per interval: growth {slope_per_hour(rates, 'pct'):+.2f} "
              f"points/h (least squares)")
        print(f"fds  {first['fds']} -> {last['fds']}, growth "
              f"{slope_per_hour(samples, 'fds'):+.1f} /h")
    if failures and rc == 0:
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
