#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""/metrics of vmsupd: the time of a scrape at 1, 50 and 100 VMs, next to a
request the same server answers without collecting anything, and vm.get's
round trip while Prometheus-like scrapes come 100 times a second, next to
the same with no scrapes, rounds alternating. See bench/README.md (Metrics).

    python3 bench/vmsup-bench-metrics.py --build-dir _build [--counts 1,50,100]
                                         [--rate 100] [--json out.json] [--quick]

Exit status: 0 when every measurement produced numbers, 1 when one failed,
77 when a prerequisite is missing. Figures are reported, not judged.
"""

import argparse
import http.client
import importlib.util
import json
import multiprocessing
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
_spec = importlib.util.spec_from_file_location(
    "vmsup_bench", os.path.join(os.path.dirname(os.path.abspath(__file__)), "vmsup-bench.py"))
bench_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_mod)

BenchError = bench_mod.BenchError
now = bench_mod.now
ms = bench_mod.ms


def percentile(samples, p):
    """Nearest rank, as vmsup-rpc-latency computes it."""
    s = sorted(samples)
    rank = max(1, min(len(s), int(p / 100 * len(s) + 0.999999)))
    return s[rank - 1]


def http_get(conn, path):
    """(status, body) of one GET on a keep-alive connection."""
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read()


def scraper(port, rate, deadline, stop, results):
    """GET /metrics @rate times a second on one keep-alive connection, as Prometheus does;
    puts (answers, failures, seconds) on @results."""
    ok = failed = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t0 = time.monotonic()
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        pause = t0 + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        i += 1
        try:
            status, body = http_get(conn, "/metrics")
            if status == 200 and body.endswith(b"\n"):
                ok += 1
            else:
                failed += 1
        except OSError:
            failed += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    results.put((ok, failed, time.monotonic() - t0))


class MetricsBench(bench_mod.Bench):
    def __init__(self, args):
        super().__init__(bench_mod.parse_args(["--build-dir", args.build_dir] +
                                              (["--quick"] if args.quick else []) +
                                              (["--keep-tmp"] if args.keep_tmp else [])))
        self.levels = sorted(set(args.counts)) if args.counts else (
            [1, 2] if args.quick else [1, 50, 100])
        self.rate = args.rate
        self.scrapes = 20 if args.quick else 200
        self.rounds = 1 if args.quick else 3
        self.port = bench_mod.free_tcp_port()

    def config_text(self, poll_interval=None):
        return super().config_text(poll_interval) + f"MetricsListen=127.0.0.1:{self.port}\n"

    def wait_sampled(self, n_running):
        """Until a scrape has the CPU time of every running VM: the poller went round."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        deadline = now() + 120
        try:
            while True:
                _, body = http_get(conn, "/metrics")
                got = body.count(b"\nvmsup_vm_cpu_seconds_total{")
                if got >= n_running:
                    return
                if now() > deadline:
                    raise BenchError(f"after 120 s only {got} of {n_running} VMs were sampled")
                time.sleep(0.2)
        finally:
            conn.close()

    def measure_scrape(self, level):
        """GET /metrics and GET of a path the server answers 404, alternating on one
        connection: the same HTTP path with and without the collection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        scrape, floor = [], []
        body = b""
        try:
            for _ in range(10):
                http_get(conn, "/metrics")
                http_get(conn, "/none")
            for _ in range(self.scrapes):
                t0 = now()
                status, body = http_get(conn, "/metrics")
                scrape.append(ms(now() - t0))
                if status != 200:
                    raise BenchError(f"GET /metrics answered {status}")
                t0 = now()
                status, _ = http_get(conn, "/none")
                floor.append(ms(now() - t0))
                if status != 404:
                    raise BenchError(f"GET /none answered {status}")
        finally:
            conn.close()
        lines = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        R = self.results
        R.add(f"scrape@{level}", f"GET /metrics, {bench_mod.vms(level)} running", "ms", scrape,
              count=level, baseline=floor, baseline_label="404, same server",
              note=f"{len(body)} bytes, {lines} samples; p99 {percentile(scrape, 99):.2f} ms, "
                   f"404 p99 {percentile(floor, 99):.2f} ms")
        R.details[f"scrape@{level}"] = {"bytes": len(body), "samples": lines,
                                        "p99_ms": percentile(scrape, 99),
                                        "floor_p99_ms": percentile(floor, 99)}

    def measure_scraped_rpc(self, level):
        """vm.get round trips with no scrapes and with @rate scrapes a second, rounds
        alternating so that drift on a busy host hits both alike."""
        ctx = multiprocessing.get_context("fork")
        quiet, scraped, rates, cpu_quiet, cpu_scraped = [], [], [], [], []
        failed = 0
        for _ in range(self.rounds):
            ticks, t0 = bench_mod.proc_cpu_ticks(self.daemon.pid), now()
            quiet.append(self._rpc_latency(json.dumps({"name": self.PROBE}), self.PROBE))
            cpu_quiet.append(self.cpu_percent(ticks, t0))
            results, stop = ctx.Queue(), ctx.Event()
            proc = ctx.Process(target=scraper,
                               args=(self.port, self.rate, time.monotonic() + 600, stop,
                                     results))
            proc.start()
            try:
                time.sleep(0.5)  # under way before the calls are timed
                ticks, t0 = bench_mod.proc_cpu_ticks(self.daemon.pid), now()
                scraped.append(self._rpc_latency(json.dumps({"name": self.PROBE}), self.PROBE))
                cpu_scraped.append(self.cpu_percent(ticks, t0))
                stop.set()
                ok, bad, seconds = results.get(timeout=60)
            finally:
                stop.set()
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
            rates.append(ok / seconds)
            failed += bad
        if failed:
            raise BenchError(f"{failed} scrapes failed while vm.get was measured")
        R = self.results
        at = f"{bench_mod.vms(level)}, {self.rate:g} scrapes/s (got {min(rates):.0f}-" \
             f"{max(rates):.0f})"
        for p in ("p50", "p99"):
            R.add(f"rpc-scraped-{p}@{level}", f"vm.get {p} round trip, {at}", "us",
                  [r[f"{p}_us"] for r in scraped], count=level,
                  baseline=[r[f"{p}_us"] for r in quiet], baseline_label="not scraped")
        R.add(f"cpu-scraped@{level}", f"vmsupd CPU while vm.get runs, {at}", "%", cpu_scraped,
              count=level, baseline=cpu_quiet, baseline_label="not scraped")
        R.details[f"rpc-scraped@{level}"] = {"quiet": quiet, "scraped": scraped, "rates": rates}

    def cpu_percent(self, ticks, t0):
        used = (bench_mod.proc_cpu_ticks(self.daemon.pid) - ticks) / bench_mod.CLK_TCK
        return 100.0 * used / (now() - t0)

    def run(self):
        R = self.results
        self.check_prerequisites()
        if self.latency_client is None:
            raise bench_mod.Prerequisite("bench/vmsup-rpc-latency is not built")
        self.setup()
        R.notes.append("load average at start: " +
                       " ".join(map("{:.2f}".format, os.getloadavg())))
        # the default poller interval: what a scrape reads is what it left
        info = self.start_daemon()
        R.notes.append(f"accelerator: {info.get('accel')}")
        self.rpc.call("vm.create", {"name": self.PROBE, "image": self.halt_image,
                                    "memory_mib": 64, "auto_stop": False, "wait": True})
        self.start_vms([self.PROBE])
        self.wait_running(self.PROBE)
        for level in self.levels:
            self.check_memory(level)
            new = [f"bench-fill-{i}" for i in range(len(self.fillers) + 1, level)]
            if new:
                self.create_halt_vms(new)
                self.start_vms(new)
                for name in new:
                    self.wait_running(name)
                self.fillers += new
            self.wait_sampled(level)
            self.attempt(f"scrape@{level}", f"GET /metrics ({bench_mod.vms(level)})",
                         lambda: self.measure_scrape(level))
        top = self.levels[-1]
        self.attempt(f"rpc-scraped@{top}", f"vm.get while scraped ({bench_mod.vms(top)})",
                     lambda: self.measure_scraped_rpc(top))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", required=True, help="meson build directory")
    p.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")],
                   help="running VMs to scrape at (default 1,50,100; --quick 1,2); vm.get "
                        "under scrapes is measured at the largest")
    p.add_argument("--rate", type=float, default=100.0, help="scrapes a second (default 100)")
    p.add_argument("--json", metavar="FILE", help="write all results and samples as JSON")
    p.add_argument("--quick", action="store_true", help="tiny counts, one round")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir for inspection")
    args = p.parse_args(argv)
    bench_mod.become_subreaper()
    bench = MetricsBench(args)
    status = 0
    started = time.time()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        bench.run()
    except bench_mod.Prerequisite as e:
        print(f"vmsup-bench-metrics: skipped: {e}", file=sys.stderr)
        return bench_mod.EXIT_SKIP
    except (BenchError, bench_mod.RpcError, OSError) as e:
        bench.results.failures.append({"key": "run", "work": "benchmark run", "error": str(e)})
        print(f"vmsup-bench-metrics: {e}", file=sys.stderr)
        status = 1
    finally:
        bench.cleanup()
    R = bench.results
    R.notes.append("load average at end: " + " ".join(map("{:.2f}".format, os.getloadavg())))
    print()
    print(f"vmsup /metrics benchmark ({os.cpu_count()} CPUs; {time.time() - started:.0f} s)")
    bench_mod.print_table(R)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"levels": bench.levels, "rate": args.rate, "rows": R.rows,
                       "details": R.details, "notes": R.notes, "failures": R.failures}, f,
                      indent=2)
    if R.failures:
        for f in R.failures:
            print(f"FAILED: {f['work']}: {f['error'].splitlines()[0]}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
