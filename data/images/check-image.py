#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Boots an image made by vmsup-build-image in plain QEMU and checks it.

    check-image.py --image FILE.qcow2 [--timeout-multiplier N] [--keep DIR]

UEFI (OVMF, a private copy of its variable store), the image behind a qcow2
overlay, a NoCloud seed (a FAT volume labelled CIDATA, made with mtools)
carrying a fresh SSH key and a hostname. Checks, each failing the run:

- the firmware boots the disk and the guest prints cloud-init's host keys
  on the serial console;
- SSH answers with the key, the host key pinned from that console output
  (StrictHostKeyChecking=yes: a key that differs refuses the connection);
- cloud-init finished without errors, the hostname is the seed's, the
  machine-id is the guest's own;
- the guest agent answers guest-ping and guest-get-host-name.

Prints how long each step took. Exit status: 0 passed, 1 failed, 77 a
prerequisite is missing.
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

EXIT_SKIP = 77
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
HOSTNAME = "vmsup-check"
# under TCG on 2 busy cores a first boot with cloud-init takes minutes
BOOT_BUDGET_S = 300


class CheckError(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, **kwargs):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kwargs)
    if proc.returncode != 0:
        raise CheckError("%s failed: %s" % (argv[0], proc.stderr.strip()))
    return proc.stdout


def make_seed(path, work, pubkey):
    meta = os.path.join(work, "meta-data")
    user = os.path.join(work, "user-data")
    with open(meta, "w") as f:
        f.write("instance-id: check-%d\nlocal-hostname: %s\n" % (os.getpid(), HOSTNAME))
    with open(user, "w") as f:
        f.write("#cloud-config\n")
        f.write("users:\n  - name: vmsup\n    sudo: ALL=(ALL) NOPASSWD:ALL\n"
                "    shell: /bin/bash\n    ssh_authorized_keys:\n      - %s\n" % pubkey)
    run(["mkfs.vfat", "-C", "-n", "CIDATA", path, "2048"])
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    run(["mcopy", "-i", path, meta, user, "::/"], env=env)


def console_host_keys(log):
    """The keys cloud-init's keys_to_console module printed, as known_hosts lines."""
    try:
        text = open(log, errors="replace").read()
    except FileNotFoundError:
        return None
    begin = text.find("-----BEGIN SSH HOST KEY KEYS-----")
    end = text.find("-----END SSH HOST KEY KEYS-----", begin)
    if begin < 0 or end < 0:
        return None
    keys = []
    for line in text[begin:end].splitlines()[1:]:
        fields = line.strip().split()
        if len(fields) >= 2 and fields[0].startswith(("ssh-", "ecdsa-")):
            keys.append(" ".join(fields[:2]))
    return keys or None


class Agent:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.sock.settimeout(5)
        self.buf = b""

    def call(self, command):
        self.sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise CheckError("the agent's socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        reply = json.loads(line.lstrip(b"\xff"))
        if "return" not in reply:
            raise CheckError("%s: %s" % (command, reply))
        return reply["return"]


def check(args, work):
    scale = args.timeout_multiplier
    key = os.path.join(work, "id_ed25519")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
    pubkey = open(key + ".pub").read().strip()
    seed = os.path.join(work, "seed.img")
    make_seed(seed, work, pubkey)
    overlay = os.path.join(work, "disk.qcow2")
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
         os.path.abspath(args.image), overlay])
    vars_copy = os.path.join(work, "OVMF_VARS.fd")
    shutil.copyfile(OVMF_VARS, vars_copy)
    console = os.path.join(work, "console.log")
    qga = os.path.join(work, "qga.sock")
    port = free_port()
    argv = ["qemu-system-x86_64", "-accel", args.accel, "-machine", "q35", "-m", "1024",
            "-smp", "2", "-nodefaults", "-display", "none",
            "-drive", "if=pflash,format=raw,readonly=on,file=" + OVMF_CODE,
            "-drive", "if=pflash,format=raw,file=" + vars_copy,
            "-drive", "if=virtio,format=qcow2,file=" + overlay,
            "-drive", "if=virtio,format=raw,readonly=on,file=" + seed,
            "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:%d-:22" % port,
            "-device", "virtio-net-pci,netdev=net0",
            "-chardev", "socket,id=qga,path=%s,server=on,wait=off" % qga,
            "-device", "virtio-serial-pci",
            "-device", "virtserialport,chardev=qga,name=org.qemu.guest_agent.0",
            "-chardev", "file,id=con,path=" + console, "-serial", "chardev:con"]
    started = time.monotonic()
    qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    figures = {}
    try:
        deadline = started + BOOT_BUDGET_S * scale
        keys = None
        while keys is None:
            if qemu.poll() is not None:
                raise CheckError("QEMU exited with %d" % qemu.returncode)
            if time.monotonic() > deadline:
                raise CheckError("no SSH host keys on the console after %d s; its end:\n%s"
                                 % (BOOT_BUDGET_S * scale,
                                    open(console, errors="replace").read()[-3000:]))
            time.sleep(1)
            keys = console_host_keys(console)
        figures["host keys on the console"] = time.monotonic() - started
        known = os.path.join(work, "known_hosts")
        with open(known, "w") as f:
            for k in keys:
                f.write("[127.0.0.1]:%d %s\n" % (port, k))
        ssh = ["ssh", "-q", "-i", key, "-p", str(port), "-o", "BatchMode=yes",
               "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + known,
               "-o", "ConnectTimeout=10", "vmsup@127.0.0.1"]
        while True:
            proc = subprocess.run(ssh + ["true"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
            if proc.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise CheckError("SSH did not answer: %s" % proc.stderr.strip())
            time.sleep(2)
        figures["SSH answers"] = time.monotonic() - started
        out = run(ssh + ["cloud-init status --wait >/dev/null; cloud-init status --format json; "
                         "hostname; cat /etc/machine-id"], stdin=subprocess.DEVNULL)
        figures["cloud-init finished"] = time.monotonic() - started
        status_text, hostname, machine_id = out.rsplit("\n", 3)[0:3]
        status = json.loads(status_text)
        if status.get("status") != "done" or status.get("errors"):
            raise CheckError("cloud-init did not finish cleanly: %s" % status_text)
        if hostname.strip() != HOSTNAME:
            raise CheckError("hostname is %r, not the seed's %r" % (hostname, HOSTNAME))
        if len(machine_id.strip()) != 32:
            raise CheckError("no machine-id of the guest's own: %r" % machine_id)
        # with a wrong pinned key the same connection is refused
        bad = os.path.join(work, "known_hosts.bad")
        other = os.path.join(work, "other")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other])
        with open(bad, "w") as f:
            f.write("[127.0.0.1]:%d %s\n" % (port, " ".join(open(other + ".pub").read().split()[:2])))
        refused = subprocess.run([a if a != "UserKnownHostsFile=" + known else
                                  "UserKnownHostsFile=" + bad for a in ssh] + ["true"],
                                 stdin=subprocess.DEVNULL, capture_output=True)
        if refused.returncode == 0:
            raise CheckError("SSH accepted a host key the guest does not have")
        agent = Agent(qga)
        agent.call("guest-ping")
        name = agent.call("guest-get-host-name")
        if name.get("host-name") != HOSTNAME:
            raise CheckError("the agent says the hostname is %r" % name)
        figures["agent answers"] = time.monotonic() - started
    finally:
        qemu.send_signal(signal.SIGKILL)
        qemu.wait()
    for what, seconds in figures.items():
        print("%-28s %6.1f s" % (what, seconds))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", required=True)
    p.add_argument("--accel", default="tcg")
    p.add_argument("--timeout-multiplier", type=float,
                   default=float(os.environ.get("VMSUP_TEST_TIMEOUT_MULTIPLIER", "1")))
    p.add_argument("--keep", default=None, help="work in this directory and keep it")
    args = p.parse_args(argv)
    for tool in ["qemu-system-x86_64", "qemu-img", "ssh", "ssh-keygen", "mkfs.vfat", "mcopy"]:
        if shutil.which(tool) is None:
            print("check-image: %s is missing" % tool, file=sys.stderr)
            return EXIT_SKIP
    for f in [OVMF_CODE, OVMF_VARS, args.image]:
        if not os.path.exists(f):
            print("check-image: %s is missing" % f, file=sys.stderr)
            return EXIT_SKIP
    try:
        if args.keep:
            os.makedirs(args.keep)
            check(args, args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="vmsup-check-image-") as work:
                check(args, work)
    except CheckError as e:
        print("check-image: FAILED: %s" % e, file=sys.stderr)
        return 1
    print("check-image: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
