#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`vmsup --connect ssh://localhost list` against `ssh localhost vmsup list`.

    python3 bench/vmsup-remote-bench.py --build-dir BUILD [--runs N]

One private vmsupd and one private sshd on 127.0.0.1 (the test's, from
tests/remote/vmsup_sshd.py: its own host key, a generated client key,
pinned known_hosts), then, interleaved in the same run with the same key
and ssh configuration, N times each:

  remote: vmsup --connect ssh://root@127.0.0.1:PORT?socket=S list
  raw:    ssh -p PORT root@127.0.0.1 vmsup --socket S list

Prints the median and p90 wall time of each and the ratio; the target is
remote <= 1.0 x raw + 5 ms (median). Figures only, never pass/fail.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "remote"))
import vmsup_sshd  # noqa: E402


def timed(argv, env):
    start = time.monotonic()
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, timeout=120)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (argv, proc.returncode, proc.stderr.decode()))
    return elapsed


def p90(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    build = os.path.abspath(args.build_dir)
    vmsup = os.path.join(build, "src", "cli", "vmsup")
    vmsupd = os.path.join(build, "src", "daemon", "vmsupd")
    work = tempfile.mkdtemp(prefix="vmsup-remote-bench-")
    sock = os.path.join(work, "vmsupd.sock")
    env = dict(os.environ, LC_ALL="C")
    env.pop("VMSUP_CONNECT", None)
    env.pop("VMSUP_SOCKET", None)
    os.makedirs(os.path.join(work, "run"), mode=0o700)
    daemon = subprocess.Popen(
        [vmsupd, "--session", "--no-dbus", "--state-dir", os.path.join(work, "state"),
         "--runtime-dir", os.path.join(work, "run"), "--socket", sock],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(sock):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("vmsupd did not start")
            time.sleep(0.05)
        with vmsup_sshd.Sshd(work, [os.path.dirname(vmsup)], timeout=60) as sshd:
            cenv = sshd.client_env(env)
            remote = [vmsup, "--connect",
                      "ssh://root@127.0.0.1:%d?socket=%s" % (sshd.port, sock), "list"]
            raw = ["ssh", "-p", str(sshd.port), "root@127.0.0.1", "vmsup", "--socket", sock,
                   "list"]
            # one of each first: keys and caches warm for both
            timed(remote, cenv)
            timed(raw, cenv)
            times = {"remote": [], "raw": []}
            for _ in range(args.runs):
                times["remote"].append(timed(remote, cenv))
                times["raw"].append(timed(raw, cenv))
    finally:
        daemon.terminate()
        daemon.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    for k in ("remote", "raw"):
        print("%-7s median %7.1f ms  p90 %7.1f ms  (%d runs)"
              % (k, med[k], p90(times[k]) * 1000, args.runs))
    print("ratio   %.3f x  (remote - raw: %+.1f ms; target <= 1.0 x + 5 ms: %s)"
          % (med["remote"] / med["raw"], med["remote"] - med["raw"],
             "met" if med["remote"] <= med["raw"] + 5 else "not met"))


if __name__ == "__main__":
    main()
