#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""vmsup shell against the Debian image or the bundled guest, through a real vmsupd.

    test-shell.py --vmsupd PATH --vmsup PATH --image FILE.qcow2
    test-shell.py --vmsupd PATH --vmsup PATH --bundled

First the bad input that needs no boot (a --ssh-key that is not a public key,
user-data that is not cloud-config, vm.ssh_info of a VM without an image and
of a stopped one): each a clear error, nothing created. Then one VM from the
image with a second key and user-data, started, and through `vmsup shell`:
cloud-init finished, the hostname is the VM's name, a command's exit status
comes back, the user-data ran, the second key logs in, the pinned host key is
the guest's and a wrong one is refused; delete leaves nothing. This covers
what data/images/check-image.py checks of the boot, SSH and cloud-init (not
its guest-agent calls), with vmsupd instead of plain QEMU.

With --bundled, the bundled guest instead (root over its dropbear): a command
and its exit status, the pinned host key is the one the guest made at this
boot and a wrong one is refused, a restart makes a new host key that is
pinned again (the old pin does not lock the user out), and a VM that boots a
kernel of its own has no SSH and says to use exec.

Waits scale with VMSUP_TEST_TIMEOUT_MULTIPLIER. Prints the time from vm.start
to SSH answering.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from vmsup_testlib import (EXIT_FAILED_PRECONDITION, EXIT_INVALID_ARGUMENT,  # noqa: E402
                           EXIT_NOT_FOUND, MULTIPLIER, Failure, SessionEnv, check)

# a first boot under TCG on 2 busy cores: 70-140 s to SSH
BOOT_BUDGET_S = int(300 * MULTIPLIER)


class Env(SessionEnv):
    def qemu_pids(self):
        """Every QEMU of this test: it names the work directory on its command line."""
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = open("/proc/%s/cmdline" % pid, "rb").read().decode(errors="replace")
            except OSError:
                continue
            if "qemu-system" in cmdline and self.work in cmdline:
                pids.append(int(pid))
        return pids

    def stop(self):
        for pid in self.qemu_pids():
            os.kill(pid, signal.SIGKILL)
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()


def expect_fail(proc, code, words, what):
    check(proc.returncode == code,
          "%s: exit %d, not %d; stderr: %s" % (what, proc.returncode, code, proc.stderr))
    for w in words:
        check(w in proc.stderr, "%s: %r not in the message: %s" % (what, w, proc.stderr))


def nothing_left(env, name):
    check(env.vmsup("get", name).returncode == EXIT_NOT_FOUND, "VM %s exists" % name)
    for path in [os.path.join(env.state, "disks", name + ".qcow2"),
                 os.path.join(env.state, "guests", name),
                 os.path.join(env.state, "vms", name + ".json")]:
        check(not os.path.exists(path), "%s was left" % path)


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    return open(path + ".pub").read().strip()


def bad_input(env):
    image = env.args.image
    text = os.path.join(env.work, "not-a-key.txt")
    with open(text, "w") as f:
        f.write("hello, I am not a key\n")
    expect_fail(env.vmsup("create", "bad-key", "--image", image, "--ssh-key", text),
                EXIT_INVALID_ARGUMENT, ["not an OpenSSH public key", ".pub"], "--ssh-key text")
    nothing_left(env, "bad-key")
    private = os.path.join(env.work, "private")
    keygen(private)
    expect_fail(env.vmsup("create", "bad-key", "--image", image, "--ssh-key", private),
                EXIT_INVALID_ARGUMENT, ["not an OpenSSH public key"], "--ssh-key private key")
    nothing_left(env, "bad-key")
    script = os.path.join(env.work, "user-data.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    expect_fail(env.vmsup("create", "bad-ud", "--image", image, "--user-data", script),
                EXIT_INVALID_ARGUMENT, ["not cloud-config", "#cloud-config"], "--user-data script")
    nothing_left(env, "bad-ud")
    tabs = os.path.join(env.work, "user-data-tabs")
    with open(tabs, "w") as f:
        f.write("#cloud-config\nruncmd:\n\t- true\n")
    expect_fail(env.vmsup("create", "bad-ud", "--image", image, "--user-data", tabs),
                EXIT_INVALID_ARGUMENT, ["tab"], "--user-data with tabs")
    nothing_left(env, "bad-ud")
    expect_fail(env.vmsup("create", "bad-fw", "--image", image, "--firmware", "coreboot"),
                EXIT_INVALID_ARGUMENT, ["'bios' or 'uefi'"], "--firmware coreboot")
    nothing_left(env, "bad-fw")
    no_ssh_server(env)


def no_ssh_server(env):
    """A VM with a kernel of its own has no SSH server vmsupd set up; a stopped one is not running."""
    guest = json.loads(env.vmsup("--json", "create", "plain").stdout)
    check(guest.get("name") == "plain" or "vm" in guest, "create plain: %r" % guest)
    expect_fail(env.vmsup("--json", "shell", "plain"), EXIT_FAILED_PRECONDITION,
                ["not running", "vmsup start"], "ssh_info of the stopped bundled guest")
    vm = json.loads(env.vmsup("--json", "get", "plain").stdout)
    kernel = os.path.join(env.work, "own-kernel")
    shutil.copyfile(vm["kernel"], kernel)
    proc = env.vmsup("create", "own", "--kernel", kernel, "--initrd", vm["initrd"])
    check(proc.returncode == 0, "create own: %s" % proc.stderr)
    expect_fail(env.vmsup("--json", "shell", "own"), EXIT_FAILED_PRECONDITION,
                ["neither an image nor the bundled guest", "vmsup exec"],
                "ssh_info of a VM with its own kernel")
    for name in ("plain", "own"):
        check(env.vmsup("delete", name).returncode == 0, "delete %s" % name)


def ssh_argv(info, identity, known_hosts):
    return ["ssh", "-T", "-p", str(info["port"]), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            "-o", "GlobalKnownHostsFile=/dev/null", "-i", identity,
            "-o", "UserKnownHostsFile=" + known_hosts, "%s@127.0.0.1" % info["user"]]


def bundled(env):
    no_ssh_server(env)
    name = "tiny"
    proc = env.vmsup("create", name, "--start")
    check(proc.returncode == 0, "create --start: %s" % proc.stderr)
    started = time.monotonic()
    proc = env.vmsup("shell", "--timeout", str(BOOT_BUDGET_S), name, "--", "hostname",
                     timeout=BOOT_BUDGET_S + 60)
    check(proc.returncode == 0 and proc.stdout.strip() == "vmsup-guest",
          "shell hostname: %d %r %s" % (proc.returncode, proc.stdout, proc.stderr))
    ssh_s = time.monotonic() - started
    proc = env.vmsup("shell", name, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    check(proc.returncode == 3 and proc.stdout == "out\n" and "err" in proc.stderr,
          "exit status and streams: %d %r %r" % (proc.returncode, proc.stdout, proc.stderr))

    info = json.loads(env.vmsup("--json", "shell", name).stdout)
    check(info["ready"] is True and info["user"] == "root", "ssh_info: %r" % info)
    known = open(info["known_hosts_file"]).read()
    guest_key = env.vmsup("shell", name, "--", "dropbearkey", "-y", "-f", "/etc/dropbear/host_key")
    key = [line for line in guest_key.stdout.splitlines() if line.startswith("ssh-")]
    check(len(key) == 1 and " ".join(key[0].split()[:2]) in known,
          "known_hosts %r lacks the guest's key %r" % (known, guest_key.stdout))
    other = os.path.join(env.work, "other")
    wrong = os.path.join(env.work, "known_hosts.wrong")
    with open(wrong, "w") as f:
        f.write("[127.0.0.1]:%d %s\n" % (info["port"], " ".join(keygen(other).split()[:2])))
    proc = subprocess.run(ssh_argv(info, info["identity_file"], wrong) + ["true"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    check(proc.returncode == 255 and "verification failed" in proc.stderr,
          "a wrong pinned key was not refused: %d %s" % (proc.returncode, proc.stderr))
    proc = subprocess.run(ssh_argv(info, other, info["known_hosts_file"]) + ["true"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    check(proc.returncode == 255, "a key vmsupd did not hand over logged in: %s" % proc.stderr)

    # a new boot, a new host key, pinned again
    check(env.vmsup("stop", name).returncode == 0, "stop")
    check(env.vmsup("start", name).returncode == 0, "start again")
    proc = env.vmsup("shell", "--timeout", str(BOOT_BUDGET_S), name, "--", "true",
                     timeout=BOOT_BUDGET_S + 60)
    check(proc.returncode == 0, "shell after a restart: %d %s" % (proc.returncode, proc.stderr))
    info = json.loads(env.vmsup("--json", "shell", name).stdout)
    again = open(info["known_hosts_file"]).read()
    check(again.split()[1:] != known.split()[1:], "the host key did not change at the new boot")

    proc = env.vmsup("delete", name, "--force")
    check(proc.returncode == 0, "delete: %s" % proc.stderr)
    nothing_left(env, name)
    check(not env.qemu_pids(), "a QEMU outlived delete: %s" % env.qemu_pids())
    print("vm.start -> SSH answers (vmsup shell VM -- hostname): %.2f s" % ssh_s)


def boot(env):
    name = "dev"
    extra = os.path.join(env.work, "extra")
    keygen(extra)
    user_data = os.path.join(env.work, "user-data")
    with open(user_data, "w") as f:
        f.write("#cloud-config\nwrite_files:\n  - path: /var/tmp/from-user-data\n"
                "    content: \"made by user-data\\n\"\n")
    proc = env.vmsup("create", name, "--image", env.args.image, "--cpus", "2", "--memory",
                     "1024", "--ssh-key", extra + ".pub", "--user-data", user_data)
    check(proc.returncode == 0, "create: %s" % proc.stderr)
    vm = json.loads(env.vmsup("--json", "get", name).stdout)
    check(vm.get("firmware") == "uefi", "firmware is %r, not uefi" % vm.get("firmware"))
    expect_fail(env.vmsup("--json", "shell", name), EXIT_FAILED_PRECONDITION,
                ["not running", "vmsup start"], "ssh_info of a stopped VM")

    started = time.monotonic()
    proc = env.vmsup("start", name)
    check(proc.returncode == 0, "start: %s" % proc.stderr)
    proc = env.vmsup("shell", "--timeout", str(BOOT_BUDGET_S), name, "--", "true",
                     timeout=BOOT_BUDGET_S + 60)
    check(proc.returncode == 0, "shell true: %d %s" % (proc.returncode, proc.stderr))
    ssh_s = time.monotonic() - started
    check("waiting for VM" in proc.stderr, "no progress on stderr: %r" % proc.stderr)

    proc = env.vmsup("shell", name, "--", "cloud-init", "status", "--wait")
    check(proc.returncode == 0 and "status: done" in proc.stdout,
          "cloud-init status: %d %s %s" % (proc.returncode, proc.stdout, proc.stderr))
    done_s = time.monotonic() - started
    proc = env.vmsup("shell", name, "--", "hostname")
    check(proc.stdout.strip() == name, "hostname is %r" % proc.stdout)
    proc = env.vmsup("shell", name, "--", "sh", "-c", "exit 3")
    check(proc.returncode == 3, "sh -c 'exit 3' gave %d: %s" % (proc.returncode, proc.stderr))
    proc = env.vmsup("shell", name, "--", "cat", "/var/tmp/from-user-data")
    check(proc.stdout == "made by user-data\n", "user-data: %r %s" % (proc.stdout, proc.stderr))
    proc = env.vmsup("shell", name, "--", "sudo", "-n", "id", "-u")
    check(proc.stdout.strip() == "0", "passwordless sudo: %r %s" % (proc.stdout, proc.stderr))

    info = json.loads(env.vmsup("--json", "shell", name).stdout)
    check(info["ready"] is True and info["user"] == "vmsup" and info["host"] == "127.0.0.1",
          "ssh_info: %r" % info)
    check(os.stat(info["identity_file"]).st_mode & 0o077 == 0, "the private key is not 0600")
    known = open(info["known_hosts_file"]).read()
    guest_key = env.vmsup("shell", name, "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
    check(guest_key.returncode == 0, "host key: %s" % guest_key.stderr)
    check(" ".join(guest_key.stdout.split()[:2]) in known,
          "known_hosts lacks the guest's key: %r" % known)
    check(known.startswith("[127.0.0.1]:%d " % info["port"]), "known_hosts: %r" % known)

    ssh = ["ssh", "-T", "-p", str(info["port"]), "-o", "BatchMode=yes",
           "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
           "-o", "GlobalKnownHostsFile=/dev/null"]
    proc = subprocess.run(ssh + ["-i", extra, "-o", "UserKnownHostsFile=" + info["known_hosts_file"],
                                 "vmsup@127.0.0.1", "echo", "extra"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    check(proc.stdout.strip() == "extra", "--ssh-key did not log in: %s" % proc.stderr)
    other = os.path.join(env.work, "other")
    wrong = os.path.join(env.work, "known_hosts.wrong")
    with open(wrong, "w") as f:
        f.write("[127.0.0.1]:%d %s\n" % (info["port"], " ".join(keygen(other).split()[:2])))
    proc = subprocess.run(ssh + ["-i", info["identity_file"], "-o", "UserKnownHostsFile=" + wrong,
                                 "vmsup@127.0.0.1", "true"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    check(proc.returncode == 255 and "verification failed" in proc.stderr,
          "a wrong pinned key was not refused: %d %s" % (proc.returncode, proc.stderr))

    proc = env.vmsup("delete", name, "--force")
    check(proc.returncode == 0, "delete: %s" % proc.stderr)
    nothing_left(env, name)
    check(not env.qemu_pids(), "a QEMU outlived delete: %s" % env.qemu_pids())
    print("vm.start -> SSH answers (vmsup shell VM -- true): %.1f s" % ssh_s)
    print("vm.start -> cloud-init done:                     %.1f s" % done_s)


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--vmsupd", required=True)
    p.add_argument("--vmsup", required=True)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--image")
    what.add_argument("--bundled", action="store_true")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="vmsup-test-shell-")
    env = Env(args, work)
    ok = False
    try:
        env.start_daemon()
        if args.bundled:
            bundled(env)
        else:
            bad_input(env)
            boot(env)
        ok = True
    except Failure as e:
        print("test-shell: FAILED: %s" % e, file=sys.stderr)
        log = os.path.join(work, "vmsupd.log")
        print(open(log).read()[-4000:], file=sys.stderr)
        for root, _, files in os.walk(env.run_dir):
            if "console.log" in files:
                print(open(os.path.join(root, "console.log"), errors="replace").read()[-3000:],
                      file=sys.stderr)
    finally:
        env.stop()
        if ok or not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if ok:
        print("test-shell: passed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
