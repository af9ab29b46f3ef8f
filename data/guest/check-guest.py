#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Boot the bundled guest in plain QEMU and check what vmsup relies on.

Per run: the guest agent answers guest-ping, the web page answers HTTP 200
through a hostfwd port, guest-exec works and shows httpd listening on :80,
the 9p "workspace" share is mounted both ways, guest-get-osinfo reads our
os-release, and system_powerdown makes QEMU exit with status 0.

Prints TAP and exits non-zero when a check fails. Timings are seconds from
QEMU's exec. The guest files come from --data-dir, else $VMSUP_DATA_DIR/guest.
"""

import argparse
import base64
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


class CheckError(Exception):
    pass


class LineSocket:
    """A unix socket read in lines, with a deadline on every read."""

    def __init__(self, path, deadline, proc):
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if proc.poll() is not None:
                    raise CheckError(f"QEMU exited with status {proc.returncode}")
                if time.monotonic() > deadline:
                    raise CheckError(f"cannot connect to {path}")
                time.sleep(0.01)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def fill(self, until):
        """Read more bytes; False once until has passed without any."""
        left = until - time.monotonic()
        if left <= 0 or not select.select([self.sock], [], [], left)[0]:
            return False
        chunk = self.sock.recv(65536)
        if not chunk:
            raise CheckError("connection closed")
        self.buf += chunk
        return True

    def line(self, deadline):
        while b"\n" not in self.buf:
            if not self.fill(deadline):
                raise CheckError("timed out waiting for a reply")
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def close(self):
        self.sock.close()


class Qmp(LineSocket):
    def __init__(self, path, deadline, proc):
        super().__init__(path, deadline, proc)
        self.line(deadline)  # greeting
        self.execute("qmp_capabilities", deadline=deadline)

    def execute(self, cmd, deadline, **args):
        self.send(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
        while True:
            msg = json.loads(self.line(deadline))
            if "event" in msg:
                continue
            if "error" in msg:
                raise CheckError(f"QMP {cmd}: {msg['error'].get('desc')}")
            return msg["return"]


class Qga(LineSocket):
    def sync(self, deadline):
        """guest-sync-delimited until the reply to our latest id comes back.

        QEMU holds requests until the agent opens its port, so they queue up;
        a new id goes out only after a quiet second, and replies to older ids
        are skipped."""
        sync_id = int(time.time()) % 100000 * 1000
        while True:
            sync_id += 1
            req = {"execute": "guest-sync-delimited", "arguments": {"id": sync_id}}
            self.send(b"\xff" + json.dumps(req).encode() + b"\n")
            quiet_until = time.monotonic() + 1.0
            while True:
                # everything up to the agent's 0xff (a parse error for ours, stale lines) is noise
                if b"\xff" in self.buf:
                    self.buf = self.buf[self.buf.index(b"\xff") + 1 :]
                    while b"\n" not in self.buf:
                        if not self.fill(deadline):
                            raise CheckError("timed out in guest-sync-delimited")
                    line, self.buf = self.buf.split(b"\n", 1)
                    try:
                        if json.loads(line).get("return") == sync_id:
                            return
                    except ValueError:
                        pass
                    continue
                if time.monotonic() > deadline:
                    raise CheckError("guest agent did not answer")
                if self.fill(min(quiet_until, deadline)):
                    quiet_until = time.monotonic() + 1.0
                elif time.monotonic() >= quiet_until:
                    break

    def execute(self, cmd, deadline, **args):
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        self.send(json.dumps(req).encode() + b"\n")
        line = self.line(deadline)
        while line.startswith(b"\xff"):  # a late reply to an earlier sync
            line = self.line(deadline)
        msg = json.loads(line)
        if "error" in msg:
            raise CheckError(f"QGA {cmd}: {msg['error'].get('desc')}")
        return msg["return"]

    def exec(self, argv, deadline):
        pid = self.execute("guest-exec", deadline, path=argv[0], arg=argv[1:],
                           **{"capture-output": True})["pid"]
        while True:
            st = self.execute("guest-exec-status", deadline, pid=pid)
            if st.get("exited"):
                out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
                return st.get("exitcode"), out
            time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_path(p):
    # QEMU splits option values on ','; a literal comma is written ',,'
    return p.replace(",", ",,")


class Run:
    def __init__(self, args, kernel, initrd):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="vmsup-guest-check-")
        self.share = os.path.join(self.dir, "share")
        os.mkdir(self.share)
        self.port = free_port()
        self.console = os.path.join(self.dir, "console.log")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.qga_path = os.path.join(self.dir, "qga.sock")
        d = qemu_path
        self.argv = [
            args.qemu, "-M", "q35", "-accel", args.accel, "-m", "128M", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 quiet panic=-1 cryptomgr.notests", "-no-reboot",
            "-serial", f"file:{d(self.console)}",
            "-qmp", f"unix:{d(self.qmp_path)},server=on,wait=off",
            "-chardev", f"socket,id=qga0,path={d(self.qga_path)},server=on,wait=off",
            "-device", "virtio-serial-pci",
            "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:80",
            "-device", "virtio-net-pci,netdev=n0,romfile=",
            "-device", "virtio-balloon-pci",
            "-fsdev", f"local,id=fs0,path={d(self.share)},security_model=none",
            "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=workspace",
        ]
        self.proc = None
        self.times = {}

    def console_text(self):
        try:
            with open(self.console, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def http_get(self, deadline):
        # slirp accepts before the guest listens: only a real answer counts
        url = f"http://127.0.0.1:{self.port}/"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    return r.status, r.read().decode(errors="replace")
            except OSError:
                if time.monotonic() > deadline:
                    raise CheckError(f"no HTTP answer from {url}")
                time.sleep(0.1)

    def go(self, ok):
        """Run every check; ok(name, passed, detail) reports each."""
        t0 = time.monotonic()
        deadline = t0 + self.args.timeout
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        qmp = Qmp(self.qmp_path, deadline, self.proc)
        qga = Qga(self.qga_path, deadline, self.proc)
        qga.sync(deadline)
        qga.execute("guest-ping", deadline)
        self.times["ping"] = time.monotonic() - t0
        ok("guest-ping", True, f"after {self.times['ping']:.2f} s")

        status, body = self.http_get(deadline)
        self.times["http"] = time.monotonic() - t0
        ok("HTTP via hostfwd", status == 200 and "vmsup guest" in body,
           f"status {status} after {self.times['http']:.2f} s")

        rc, out = qga.exec(["/bin/cat", "/proc/net/tcp", "/proc/net/tcp6"], deadline)
        listening = any(ln.split()[1].endswith(":0050") and ln.split()[3] == "0A"
                        for ln in out.splitlines()[1:] if len(ln.split()) > 3)
        ok("guest-exec sees httpd on :80", rc == 0 and listening, f"exit {rc}")

        with open(os.path.join(self.share, "from-host"), "w") as f:
            f.write("hello guest\n")
        rc, out = qga.exec(["/bin/sh", "-c",
                            "cat /workspace/from-host && echo hello host >/workspace/from-guest"],
                           deadline)
        from_guest = os.path.join(self.share, "from-guest")
        back = open(from_guest).read() if os.path.exists(from_guest) else ""
        ok("9p workspace both ways", rc == 0 and out == "hello guest\n" and back == "hello host\n",
           f"exit {rc}")

        osinfo = qga.execute("guest-get-osinfo", deadline)
        ok("guest-get-osinfo", osinfo.get("id") == "vmsup-guest",
           f"{osinfo.get('pretty-name')}, kernel {osinfo.get('kernel-release')}")

        console = self.console_text()
        up = [ln.split(" at ", 1)[1] for ln in console.splitlines() if "services up at" in ln]
        ok("console ready line", "vmsup-guest: ready" in console,
           f"guest {up[0]}" if up else "")

        t1 = time.monotonic()
        qmp.execute("system_powerdown", deadline)
        try:
            rc = self.proc.wait(timeout=self.args.powerdown_timeout)
        except subprocess.TimeoutExpired:
            rc = None
        self.times["powerdown"] = time.monotonic() - t1
        ok("system_powerdown exits QEMU with 0", rc == 0,
           f"rc {rc} after {self.times['powerdown']:.2f} s")
        qga.close()
        qmp.close()

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", help="directory with vmlinux, vmlinuz and initramfs.cpio.lz4")
    ap.add_argument("--kernel", default="vmlinux", help="vmlinux (PVH, default) or vmlinuz")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60, help="seconds per boot")
    ap.add_argument("--powerdown-timeout", type=float, default=5)
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "qemu-system-x86_64")
    args = ap.parse_args()

    data_dir = args.data_dir
    if data_dir is None and os.environ.get("VMSUP_DATA_DIR"):
        data_dir = os.path.join(os.environ["VMSUP_DATA_DIR"], "guest")
    if data_dir is None:
        ap.error("give --data-dir or set VMSUP_DATA_DIR")
    kernel = os.path.join(data_dir, args.kernel)
    initrd = os.path.join(data_dir, "initramfs.cpio.lz4")
    for f in (kernel, initrd):
        if not os.path.exists(f):
            print(f"Bail out! {f} is missing: build the guest first")
            return 1
    if shutil.which(args.qemu) is None:
        print(f"Bail out! {args.qemu} not found")
        return 1

    checks = 7
    print(f"1..{checks * args.runs}")
    n = failed = 0
    pings = []
    for i in range(args.runs):
        run = Run(args, kernel, initrd)
        done = 0

        def ok(name, passed, detail):
            nonlocal n, failed, done
            n += 1
            done += 1
            failed += not passed
            print(f"{'ok' if passed else 'not ok'} {n} - run {i + 1}: {name}"
                  + (f" # {detail}" if detail else ""), flush=True)

        try:
            run.go(ok)
            pings.append(run.times["ping"])
        except (CheckError, OSError, ValueError, KeyError) as e:
            for _ in range(checks - done):
                ok("not reached", False, str(e))
            err = run.proc.stderr.read().decode(errors="replace") if run.proc and \
                run.proc.poll() is not None else ""
            for line in (run.console_text() + err).splitlines()[-20:]:
                print(f"# {line}")
        finally:
            run.cleanup()

    if pings:
        print(f"# boot -> first guest-ping ({args.kernel}, {args.accel}): median "
              f"{statistics.median(pings):.2f} s, min {min(pings):.2f}, max {max(pings):.2f}, "
              f"n={len(pings)}")
    print(f"# {n - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
