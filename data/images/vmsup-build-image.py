#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Builds a bootable Debian 12 disk image from Debian's packages.

    vmsup-build-image --output FILE.qcow2 [--distro debian-12]
                      [--packages a,b,...] [--size-gib N] [--mirror URL]
                      [--progress text|json] [--keep-work DIR]

The image is a GPT disk with an EFI system partition (systemd-boot, the
kernel and its initrd) and an ext4 root filesystem holding systemd,
cloud-init (NoCloud), qemu-guest-agent, openssh-server and Debian's kernel.
Nothing prebuilt is downloaded: mmdebstrap installs the packages from the
archive. No loop device, no mount and no root privileges are needed:
mmdebstrap picks its mode itself (root, unshare or fakechroot), the root
filesystem is written by mke2fs -d under fakeroot (which keeps the
owners the packages set), the ESP by mkfs.vfat and mtools, the partition
table by sgdisk, all on plain files.

Every VM gets its own identity at first boot: the image carries no SSH host
keys and an empty machine-id; cloud-init makes both from the VM's seed.

Progress goes to stdout, one line per step; with --progress json each line
is an object {"stage", "step", "done", "total"}: "stage" one of install,
unpack, rootfs, esp, disk, convert (what vmsupd reports as the stage of an
image.build), "step" the same for people. A package Debian does not have
ends the build with {"error": "unknown-package", "packages": [...]} on
stdout. Errors go to stderr. SIGTERM (sent to the whole process group)
stops the build: each tool cleans up after itself, then the work directory
and the partial output are removed. Exit status: 0 built, 1 failed,
2 usage, 77 a tool is missing, 143 stopped by SIGTERM.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid

EXIT_SKIP = 77
MIB = 1024 * 1024
ESP_MIB = 256
# the first partition starts here, as every partitioning tool aligns it
FIRST_LBA = 2048
SECTOR = 512

DISTROS = {
    "debian-12": {
        "suite": "bookworm",
        "mirrors": [
            "deb http://deb.debian.org/debian bookworm main",
            "deb http://deb.debian.org/debian bookworm-updates main",
            "deb http://deb.debian.org/debian-security bookworm-security main",
        ],
    },
}

# what every image has; --packages adds to it
BASE_PACKAGES = [
    "systemd-sysv", "udev", "kmod", "linux-image-amd64", "systemd-boot-efi",
    "cloud-init", "qemu-guest-agent", "openssh-server", "sudo",
    "ifupdown", "isc-dhcp-client", "netbase", "iproute2", "ca-certificates",
    # what cloud-init grows the root partition and filesystem with
    "e2fsprogs", "cloud-guest-utils",
]

# documentation and translations nobody reads in a VM: a third of the size
PATH_EXCLUDES = [
    "/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*",
    "/usr/share/locale/*", "/usr/share/lintian/*",
]
PATH_INCLUDES = ["/usr/share/doc/*/copyright"]

# timers that would wake up and download in a VM that is started to work
MASKED_UNITS = [
    "apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer",
    "e2scrub_all.timer", "fstrim.timer",
]

TOOLS = ["mmdebstrap", "fakeroot", "mke2fs", "mkfs.vfat", "mmd", "mcopy",
         "sgdisk", "qemu-img", "tar"]


# Debian Policy 5.6.1; a version or an architecture qualifier is not taken
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
# what apt says of a package the archive lacks
UNKNOWN_PACKAGE = [
    re.compile(r"Unable to locate package (\S+)"),
    re.compile(r"Package '([^']+)' has no installation candidate"),
]


class BuildError(Exception):
    def __init__(self, message, unknown_packages=()):
        super().__init__(message)
        self.unknown_packages = list(unknown_packages)


class Terminated(Exception):
    pass


def on_sigterm(_signum, _frame):
    raise Terminated()


class Progress:
    def __init__(self, mode, total):
        self.mode = mode
        self.total = total
        self.done = 0

    def step(self, stage, text):
        if self.mode == "json":
            print(json.dumps({"stage": stage, "step": text, "done": self.done,
                              "total": self.total}), flush=True)
        else:
            print("[%d/%d] %s" % (self.done + 1, self.total, text), flush=True)
        self.done += 1


def run(argv, **kwargs):
    """The tool's output goes to a file, not a pipe: on SIGTERM it is left to
    finish its own cleanup (mmdebstrap unmounts what it mounted) with nobody
    having to read it, and is waited for."""
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, text=True, **kwargs)
        try:
            proc.wait()
        except Terminated:
            proc.wait()
            raise
        log.seek(0)
        output = log.read()
    if proc.returncode != 0:
        unknown = [m.group(1) for r in UNKNOWN_PACKAGE for m in r.finditer(output)]
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise BuildError("%s failed (exit %d):\n%s" % (argv[0], proc.returncode, tail),
                         sorted(set(unknown)))
    return output


def customize_script(root_uuid, esp_uuid):
    """Runs inside mmdebstrap's customize hook; $1 is the new root."""
    fstab = ("UUID=%s / ext4 errors=remount-ro 0 1\n"
             "UUID=%s /boot/efi vfat umask=0077,nofail 0 2\n") % (root_uuid, esp_uuid)
    cloud = ("# written by vmsup: the seed comes as a NoCloud volume\n"
             "datasource_list: [NoCloud, None]\n"
             # built into glibc: no locales package needed
             "locale: C.UTF-8\n")
    lines = [
        "set -e",
        "printf '%%s' '%s' > \"$1/etc/fstab\"" % fstab,
        "mkdir -p \"$1/boot/efi\"",
        "printf '%%s' '%s' > \"$1/etc/cloud/cloud.cfg.d/90-vmsup.cfg\"" % cloud,
        "echo localhost > \"$1/etc/hostname\"",
        # each VM makes its own: cloud-init the host keys, systemd the machine-id
        "rm -f \"$1\"/etc/ssh/ssh_host_*",
        ": > \"$1/etc/machine-id\"",
        "rm -f \"$1/var/lib/dbus/machine-id\"",
    ]
    for unit in MASKED_UNITS:
        lines.append("ln -sf /dev/null \"$1/etc/systemd/system/%s\"" % unit)
    return "\n".join(lines)


def kernel_files(tree):
    boot = os.path.join(tree, "boot")
    names = sorted(os.listdir(boot))
    kernels = [n for n in names if n.startswith("vmlinuz-")]
    if not kernels:
        raise BuildError("the image has no kernel in /boot")
    version = kernels[-1][len("vmlinuz-"):]
    initrd = os.path.join(boot, "initrd.img-" + version)
    if not os.path.exists(initrd):
        raise BuildError("the image has no initrd for kernel %s" % version)
    return os.path.join(boot, kernels[-1]), initrd, version


def make_esp(path, tree, root_uuid, esp_serial):
    vmlinuz, initrd, version = kernel_files(tree)
    loader = os.path.join(tree, "usr/lib/systemd/boot/efi/systemd-bootx64.efi")
    if not os.path.exists(loader):
        raise BuildError("the image has no systemd-boot (systemd-boot-efi)")
    work = os.path.dirname(path)
    conf = os.path.join(work, "loader.conf")
    entry = os.path.join(work, "debian.conf")
    with open(conf, "w") as f:
        f.write("default debian.conf\ntimeout 0\n")
    with open(entry, "w") as f:
        f.write("title Debian GNU/Linux 12 (%s)\n" % version)
        f.write("linux /vmlinuz\ninitrd /initrd.img\n")
        # the serial console last: it is /dev/console, what vmsup logs and attaches to
        f.write("options root=UUID=%s ro console=tty0 console=ttyS0,115200\n" % root_uuid)
    if os.path.exists(path):
        os.unlink(path)
    run(["mkfs.vfat", "-C", "-F", "32", "-n", "ESP", "-i", esp_serial, path,
         str(ESP_MIB * 1024)])
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    run(["mmd", "-i", path, "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries"],
        env=env)
    for src, dst in [(loader, "::/EFI/BOOT/BOOTX64.EFI"), (conf, "::/loader/loader.conf"),
                     (entry, "::/loader/entries/debian.conf"), (vmlinuz, "::/vmlinuz"),
                     (initrd, "::/initrd.img")]:
        run(["mcopy", "-i", path, src, dst], env=env)


def make_disk(path, esp, root, size_bytes):
    esp_sectors = os.path.getsize(esp) // SECTOR
    root_sectors = os.path.getsize(root) // SECTOR
    # the backup GPT needs 33 sectors at the end
    total = FIRST_LBA + esp_sectors + root_sectors + 34
    with open(path, "wb") as f:
        f.truncate(max(total * SECTOR, size_bytes))
    esp_end = FIRST_LBA + esp_sectors - 1
    root_start = esp_end + 1
    run(["sgdisk", "--clear",
         "--new=1:%d:%d" % (FIRST_LBA, esp_end), "--typecode=1:ef00",
         "--change-name=1:EFI system partition",
         "--new=2:%d:%d" % (root_start, root_start + root_sectors - 1),
         "--typecode=2:8304", "--change-name=2:root", path])
    for part, start in [(esp, FIRST_LBA), (root, root_start)]:
        with open(part, "rb") as src, open(path, "r+b") as dst:
            dst.seek(start * SECTOR)
            while True:
                block = src.read(4 * MIB)
                if not block:
                    break
                # leave holes where the filesystem has none
                if block.count(0) == len(block):
                    dst.seek(len(block), os.SEEK_CUR)
                else:
                    dst.write(block)


def build(args, progress, work):
    distro = DISTROS[args.distro]
    packages = BASE_PACKAGES + [p for p in args.packages.split(",") if p]
    root_uuid = str(uuid.uuid4())
    esp_serial = uuid.uuid4().hex[:8].upper()
    esp_uuid = "%s-%s" % (esp_serial[:4], esp_serial[4:])
    tarball = os.path.join(work, "root.tar")
    tree = os.path.join(work, "root")
    faked = os.path.join(work, "fakeroot.state")
    esp = os.path.join(work, "esp.img")
    rootfs = os.path.join(work, "root.img")
    disk = os.path.join(work, "disk.raw")

    progress.step("install", "installing %d packages from Debian's archive" % len(packages))
    argv = ["mmdebstrap", "--variant=apt", "--include=" + ",".join(packages),
            "--customize-hook=" + customize_script(root_uuid, esp_uuid)]
    argv += ["--dpkgopt=path-exclude=" + p for p in PATH_EXCLUDES]
    argv += ["--dpkgopt=path-include=" + p for p in PATH_INCLUDES]
    argv += [distro["suite"], tarball]
    argv += [args.mirror] if args.mirror else distro["mirrors"]
    run(argv)

    progress.step("unpack", "unpacking the root filesystem")
    os.mkdir(tree)
    run(["fakeroot", "-s", faked, "tar", "-xpf", tarball, "-C", tree,
         "--numeric-owner"])
    os.unlink(tarball)

    progress.step("rootfs", "writing the root filesystem")
    with open(rootfs, "wb") as f:
        f.truncate(args.size_gib * 1024 * MIB - (FIRST_LBA + 34) * SECTOR - ESP_MIB * MIB)
    run(["fakeroot", "-i", faked, "mke2fs", "-q", "-F", "-t", "ext4", "-L", "root",
         "-U", root_uuid, "-d", tree, rootfs])

    progress.step("esp", "writing the EFI system partition")
    make_esp(esp, tree, root_uuid, esp_serial)

    progress.step("disk", "assembling the disk")
    make_disk(disk, esp, rootfs, args.size_gib * 1024 * MIB)

    progress.step("convert", "converting to qcow2")
    tmp = args.output + ".part"
    run(["qemu-img", "convert", "-O", "qcow2", disk, tmp])
    os.rename(tmp, args.output)


def mounts_under(path):
    prefix = os.path.realpath(path) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(prefix)]


def remove_tree(path):
    """rm -rf, also of directories the packages made read-only (/proc, /sys);
    never of a tree something is still mounted in (a tool that was killed)"""
    left = mounts_under(path)
    if left:
        print("vmsup-build-image: not removing %s: %s still mounted there"
              % (path, " ".join(left)), file=sys.stderr)
        return

    def make_writable(func, failed, _exc):
        os.chmod(os.path.dirname(failed), 0o755)
        func(failed)
    shutil.rmtree(path, onerror=make_writable)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", required=True)
    p.add_argument("--distro", default="debian-12", choices=sorted(DISTROS))
    p.add_argument("--packages", default="")
    p.add_argument("--size-gib", type=int, default=4)
    p.add_argument("--mirror", default=None,
                   help="one sources.list line, instead of deb.debian.org")
    p.add_argument("--progress", choices=["text", "json"], default="text")
    p.add_argument("--keep-work", default=None,
                   help="build in this directory and leave it behind")
    args = p.parse_args(argv)
    if not 2 <= args.size_gib <= 2048:
        p.error("--size-gib must be between 2 and 2048")
    for pkg in filter(None, args.packages.split(",")):
        if not PACKAGE_NAME.match(pkg):
            p.error("'%s' is not a Debian package name (lower-case letters, digits, "
                    "'+', '-' and '.', at least two)" % pkg)
    return args


def main(argv):
    args = parse_args(argv)
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        print("vmsup-build-image: missing tools: %s (install mmdebstrap, fakeroot, "
              "e2fsprogs, dosfstools, mtools, gdisk, qemu-utils)" % " ".join(missing),
              file=sys.stderr)
        return EXIT_SKIP
    progress = Progress(args.progress, 6)
    outdir = os.path.dirname(os.path.abspath(args.output))
    signal.signal(signal.SIGTERM, on_sigterm)
    status = 0
    try:
        if args.keep_work:
            os.makedirs(args.keep_work, exist_ok=False)
            build(args, progress, args.keep_work)
        else:
            work = tempfile.mkdtemp(prefix=".vmsup-image-", dir=outdir)
            try:
                build(args, progress, work)
            finally:
                # a second SIGTERM does not cut the cleanup short
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                remove_tree(work)
    except Terminated:
        print("vmsup-build-image: stopped", file=sys.stderr)
        status = 128 + signal.SIGTERM
    except (BuildError, OSError) as e:
        if getattr(e, "unknown_packages", None) and args.progress == "json":
            print(json.dumps({"error": "unknown-package", "packages": e.unknown_packages}),
                  flush=True)
        print("vmsup-build-image: %s" % e, file=sys.stderr)
        status = 1
    if status != 0:
        try:
            os.unlink(args.output + ".part")
        except FileNotFoundError:
            pass
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
