#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""vmsup image build through a real vmsupd, from Debian's archive.

    test-build.py --vmsupd PATH --vmsup PATH

Bad input first (another distribution, a string that is not a package
name, an invalid name, a name in the store): each refused at once with its
exit status, nothing made. Then a build cancelled with Ctrl-C once
mmdebstrap has its chroot mounted: while it runs the name is busy; after,
no process, mount or work directory is left and the name is free. Then the
one real build, with its operation's events followed: the image is in
image.list with format, sizes, sha256 (that of the file) and date, and a
second build of the name is refused. Prints the build's wall time and the
image's size.

Waits scale with VMSUP_TEST_TIMEOUT_MULTIPLIER.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from vmsup_testlib import (EXIT_ALREADY_EXISTS, EXIT_BUSY, EXIT_CANCELLED,  # noqa: E402
                           EXIT_INVALID_ARGUMENT, MULTIPLIER, Failure, SessionEnv, check)

# a build under load on 2 cores: about 6 minutes
BUILD_BUDGET_S = int(900 * MULTIPLIER)
STAGES = ["install", "unpack", "rootfs", "esp", "disk", "convert", "import"]


class Env(SessionEnv):
    def __init__(self, args, work):
        super().__init__(args, work)
        self.images = os.path.join(self.state, "images")

    def spawn(self, *argv, stdout):
        return subprocess.Popen([self.args.vmsup] + list(argv), stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=subprocess.PIPE, text=True,
                                env=self.env)

    def image_names(self):
        proc = self.vmsup("--json", "image", "list")
        check(proc.returncode == 0, "image list: %s" % proc.stderr)
        return {i["name"]: i for i in json.loads(proc.stdout)["images"]}

    def leftovers(self):
        """Work directories, mounts and processes of a build in this test's state."""
        left = [n for n in os.listdir(self.images) if ".build-" in n] \
            if os.path.isdir(self.images) else []
        with open("/proc/self/mountinfo") as f:
            left += [line.split()[4] for line in f if self.state in line.split()[4]]
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == self.daemon.pid:
                continue
            try:
                cwd = os.readlink("/proc/%s/cwd" % pid)
            except OSError:
                continue
            if cwd.startswith(self.images):
                left.append("process %s in %s" % (pid, cwd))
        return left

    def stop(self):
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(90 * MULTIPLIER)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()


def expect_fail(proc, code, words, what):
    check(proc.returncode == code,
          "%s: exit %d, not %d; stderr: %s" % (what, proc.returncode, code, proc.stderr))
    for w in words:
        check(w in proc.stderr, "%s: %r not in the message: %s" % (what, w, proc.stderr))


def bad_input(env):
    tiny = os.path.join(env.work, "tiny.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", tiny, "16M"], check=True)
    check(env.vmsup("image", "import", tiny, "--name", "taken").returncode == 0, "import")
    before = env.image_names()
    cases = [
        (["x", "--distro", "fedora-40"], EXIT_INVALID_ARGUMENT, ["fedora-40", "debian-12"]),
        (["x", "--package", "Not A Package"], EXIT_INVALID_ARGUMENT,
         ["not a Debian package name"]),
        (["x", "--package", "hello=2.10-3"], EXIT_INVALID_ARGUMENT,
         ["not a Debian package name", "no version"]),
        (["Bad Name!"], EXIT_INVALID_ARGUMENT, ["Invalid image name"]),
        (["taken"], EXIT_ALREADY_EXISTS, ["already in the store", "vmsup image delete taken"]),
    ]
    for argv, code, words in cases:
        expect_fail(env.vmsup("image", "build", *argv), code, words, "build %r" % argv)
        check(env.image_names().keys() == before.keys(), "build %r changed the store" % argv)
        check(not env.leftovers(), "build %r left %s" % (argv, env.leftovers()))
    return tiny


def cancel(env, tiny):
    err = open(os.path.join(env.work, "cancel.err"), "w+")
    proc = subprocess.Popen([env.args.vmsup, "image", "build", "cx"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=err, text=True, env=env.env)
    deadline = time.monotonic() + BUILD_BUDGET_S
    # mid-build: mmdebstrap has mounted /proc and friends in its chroot under the store
    while not any("/" in x for x in env.leftovers()):
        check(proc.poll() is None, "the build ended before it could be cancelled")
        check(time.monotonic() < deadline, "no chroot mounted within %d s" % BUILD_BUDGET_S)
        time.sleep(1)
    expect_fail(env.vmsup("image", "build", "cx"), EXIT_BUSY, ["being imported or built"],
                "a second build of a name being built")
    expect_fail(env.vmsup("image", "import", tiny, "--name", "cx"), EXIT_BUSY,
                ["being imported or built"], "an import under a name being built")
    proc.send_signal(signal.SIGINT)
    proc.wait(120 * MULTIPLIER)
    err.seek(0)
    stderr = err.read()
    check(proc.returncode == EXIT_CANCELLED, "cancel: exit %d: %s" % (proc.returncode, stderr))
    for words in ["installing packages from Debian's archive", "Cancelling",
                  "Building image 'cx' was cancelled; nothing was kept"]:
        check(words in stderr, "cancel: %r not in %r" % (words, stderr))
    check(not env.leftovers(), "a cancelled build left %s" % env.leftovers())
    check("cx" not in env.image_names(), "a cancelled build is in the store")
    # the name is free again
    check(env.vmsup("image", "import", tiny, "--name", "cx").returncode == 0, "import cx")
    check(env.vmsup("image", "delete", "cx").returncode == 0, "delete cx")


def build(env):
    events_out = open(os.path.join(env.work, "events.json"), "w+")
    events = env.spawn("events", "--json", stdout=events_out)
    time.sleep(1)
    started = time.monotonic()
    proc = env.vmsup("--json", "image", "build", "deb", "--package", "hello",
                     timeout=BUILD_BUDGET_S)
    wall_s = time.monotonic() - started
    events.terminate()
    events.wait()
    check(proc.returncode == 0, "build: exit %d: %s" % (proc.returncode, proc.stderr))
    image = json.loads(proc.stdout)
    listed = env.image_names().get("deb")
    check(listed == image, "image list has %r, the build printed %r" % (listed, image))
    check(image["format"] == "qcow2", "format %r" % image["format"])
    check(image["virtual_size_bytes"] == 4 << 30, "virtual size %r" % image["virtual_size_bytes"])
    check(image["disk_size_bytes"] > 100 << 20, "on disk %r" % image["disk_size_bytes"])
    check(time.strptime(image["imported_at"], "%Y-%m-%dT%H:%M:%SZ"), "date")
    check("hello" in image["source"], "source %r" % image["source"])
    digest = hashlib.sha256()
    with open(image["path"], "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    check(image["sha256"] == digest.hexdigest(), "sha256 is not the file's")
    check(os.stat(image["path"]).st_mode & 0o222 == 0, "the stored image is writable")
    check(not env.leftovers(), "the build left %s" % env.leftovers())

    events_out.seek(0)
    seen = []
    for line in events_out:
        params = json.loads(line).get("params", {})
        if params.get("kind") == "image.build" and params.get("vm") == "deb":
            seen.append((params["stage"], params["progress"], params["state"]))
    stages = [s for s, _, _ in seen]
    order = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    check(order[:len(STAGES)] == STAGES, "stages seen: %r" % order)
    progress = [p for _, p, _ in seen]
    check(progress == sorted(progress), "progress went back: %r" % progress)
    check(seen[-1][2] == "done", "last event %r" % (seen[-1],))

    expect_fail(env.vmsup("image", "build", "deb"), EXIT_ALREADY_EXISTS,
                ["already in the store"], "a second build of deb")
    print("image.build wall time (vmsup image build deb --package hello): %.0f s" % wall_s)
    print("image: %.0f MiB on disk, %d GiB virtual"
          % (image["disk_size_bytes"] / (1 << 20), image["virtual_size_bytes"] >> 30))


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--vmsupd", required=True)
    p.add_argument("--vmsup", required=True)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="vmsup-test-build-", dir=os.environ.get("TMPDIR"))
    env = Env(args, work)
    ok = False
    try:
        env.start_daemon()
        tiny = bad_input(env)
        cancel(env, tiny)
        build(env)
        ok = True
    except Failure as e:
        print("test-build: FAILED: %s" % e, file=sys.stderr)
        print(open(os.path.join(work, "vmsupd.log")).read()[-4000:], file=sys.stderr)
    finally:
        env.stop()
        if ok or not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if ok:
        print("test-build: passed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
