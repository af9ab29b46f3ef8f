#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Build vmsup's default guest from Debian packages on this machine.

Outputs, in --outdir:
  vmlinuz            Debian's kernel (bzImage) as shipped
  vmlinux            the same kernel decompressed: QEMU boots it through its
                     PVH entry point, which skips the in-guest decompressor
                     and halves boot time under TCG
  initramfs.cpio.gz  busybox, qemu-ga, dropbear (the SSH server vmsup shell
                     reaches) and their libraries, the virtio modules, and
                     the files in rootfs/ (with /init)
  built-using.txt    the Debian source packages these came from, with their
                     versions, as a package's Built-Using field names them

The kernel is the newest installed Debian kernel (/boot/vmlinuz-<ver> with
/lib/modules/<ver>/modules.dep). Without one, linux-image-amd64's kernel is
fetched once with 'apt-get download' into --outdir/cache and unpacked there:
installing a kernel package in a container drags in initramfs-tools, udev
and their hooks, none of which the guest needs. '--kernel-deb FILE' takes
the kernel from that package instead and reaches no network (offline
package builds).

'--check' only reports whether a build can work (for meson's 'guest' option).
"""

import argparse
import glob
import gzip
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOTFS_DIR = os.path.join(HERE, "rootfs")
MODULES_LIST = os.path.join(HERE, "modules.txt")
KERNEL_META = "linux-image-amd64"

# tools may live in sbin, which is not on a normal user's PATH
TOOL_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
)


class BuildError(Exception):
    pass


def log(msg):
    print(f"build-guest: {msg}", flush=True)


def which(name):
    return shutil.which(name, path=TOOL_PATH)


def need_tool(name, package):
    path = which(name)
    if path is None:
        raise BuildError(f"'{name}' not found; install the Debian package '{package}'")
    return path


def run(argv, **kwargs):
    try:
        return subprocess.run(argv, check=True, **kwargs)
    except subprocess.CalledProcessError as e:
        err = e.stderr.decode(errors="replace").strip() if isinstance(e.stderr, bytes) else ""
        raise BuildError(f"'{' '.join(argv)}' failed (exit {e.returncode}) {err}") from None


def version_key(ver):
    # "6.1.0-56-amd64" > "6.1.0-9-amd64": compare digit runs as numbers
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", ver)]


# ---------------------------------------------------------------- modules


def read_module_list():
    with open(MODULES_LIST) as f:
        names = [ln.split("#", 1)[0].strip() for ln in f]
    return [n for n in names if n]


def norm(name):
    # module names treat '-' and '_' alike (virtio-rng.ko is "virtio_rng")
    return name.replace("-", "_")


def mod_name(path):
    return norm(os.path.basename(path).split(".ko", 1)[0])


class ModuleTree:
    """modules.dep and modules.builtin of one kernel version."""

    def __init__(self, moddir):
        self.moddir = moddir
        self.deps = {}  # name -> (relpath, [dep relpaths])
        with open(os.path.join(moddir, "modules.dep")) as f:
            for line in f:
                if ":" not in line:
                    continue
                path, deps = line.split(":", 1)
                self.deps[mod_name(path)] = (path.strip(), deps.split())
        self.builtin = set()
        builtin = os.path.join(moddir, "modules.builtin")
        if os.path.exists(builtin):
            with open(builtin) as f:
                self.builtin = {mod_name(ln.strip()) for ln in f if ln.strip()}

    def load_order(self, wanted):
        """Relative paths of wanted modules and their dependencies, dependencies first."""
        order, seen = [], set()

        def visit(name, chain):
            if name in seen:
                return
            if name not in self.deps:
                if name in self.builtin:
                    seen.add(name)
                    return
                raise BuildError(
                    f"kernel module '{name}' is neither a module nor built in"
                    f" ({self.moddir}); needed by {' <- '.join(chain) or 'modules.txt'}"
                )
            path, deps = self.deps[name]
            # modules.dep lists indirect deps too, nearest last; the recursion orders them
            for dep in reversed(deps):
                visit(mod_name(dep), chain + [name])
            seen.add(name)
            order.append(path)

        for name in wanted:
            visit(norm(name), [])
        return order

    def has_files(self, paths):
        return all(os.path.exists(os.path.join(self.moddir, p)) for p in paths)


# ----------------------------------------------------------------- kernel


class Kernel:
    def __init__(self, version, vmlinuz, moddir, origin):
        self.version = version
        self.vmlinuz = vmlinuz
        self.moddir = moddir
        self.origin = origin
        self.tree = ModuleTree(moddir)


def installed_kernels(root="/"):
    """Debian kernels under root, newest first, that carry a usable modules.dep."""
    found = []
    for vmlinuz in glob.glob(os.path.join(root, "boot", "vmlinuz-*")):
        ver = os.path.basename(vmlinuz)[len("vmlinuz-") :]
        moddir = os.path.join(root, "lib", "modules", ver)
        if os.access(vmlinuz, os.R_OK) and os.path.exists(os.path.join(moddir, "modules.dep")):
            found.append(Kernel(ver, vmlinuz, moddir, "installed"))
    return sorted(found, key=lambda k: version_key(k.version), reverse=True)


def pick_installed_kernel(wanted):
    for k in installed_kernels():
        try:
            order = k.tree.load_order(wanted)
        except BuildError as e:
            log(f"skipping installed kernel {k.version}: {e}")
            continue
        if k.tree.has_files(order):
            return k
    return None


def cached_kernels(cache):
    found = []
    for d in glob.glob(os.path.join(cache, "linux-*")):
        if not os.path.isdir(d):
            continue
        ver = os.path.basename(d)[len("linux-") :]
        moddir = os.path.join(d, "lib", "modules", ver)
        vmlinuz = os.path.join(d, "boot", f"vmlinuz-{ver}")
        if os.path.exists(vmlinuz) and os.path.exists(os.path.join(moddir, "modules.dep")):
            found.append(Kernel(ver, vmlinuz, moddir, "downloaded"))
    return sorted(found, key=lambda k: version_key(k.version), reverse=True)


def apt_kernel_package():
    """The image package linux-image-amd64 points at, e.g. linux-image-6.1.0-56-amd64."""
    apt_cache = which("apt-cache")
    if apt_cache is None:
        raise BuildError("no installed Debian kernel and no apt-cache to fetch one")
    res = subprocess.run(
        [apt_cache, "show", "--no-all-versions", KERNEL_META], capture_output=True, text=True
    )
    m = re.search(r"^Depends:.*?\b(linux-image-[0-9][^\s,(]*)", res.stdout, re.M)
    if res.returncode != 0 or not m:
        raise BuildError(
            f"no installed Debian kernel, and apt does not know '{KERNEL_META}'"
            " (run 'apt-get update' or install it)"
        )
    return m.group(1)


def fetch_kernel(cache, wanted):
    """Download and unpack the kernel package into the cache, keeping only what the guest uses."""
    pkg = apt_kernel_package()
    os.makedirs(cache, exist_ok=True)
    debs = glob.glob(os.path.join(cache, f"{pkg}_*.deb"))
    if not debs:
        log(f"fetching {pkg} with apt-get download (once per build directory)")
        argv = [need_tool("apt-get", "apt"), "download", "-q", pkg]
        if os.geteuid() == 0:
            # apt drops to user _apt, which cannot write into a build directory
            argv[1:1] = ["-o", "APT::Sandbox::User=root"]
        run(argv, cwd=cache, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        debs = glob.glob(os.path.join(cache, f"{pkg}_*.deb"))
        if not debs:
            raise BuildError(f"apt-get download {pkg} produced no .deb in {cache}")
    return unpack_kernel_deb(debs[0], cache, wanted, "downloaded")


def deb_field(deb, field):
    res = subprocess.run([need_tool("dpkg-deb", "dpkg"), "-f", deb, field],
                         capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else ""


def unpack_kernel_deb(deb, cache, wanted, origin):
    """The kernel of a linux-image .deb, unpacked into the cache with the modules the guest uses."""
    pkg = deb_field(deb, "Package")
    if not pkg.startswith("linux-image-") or pkg == KERNEL_META:
        raise BuildError(f"{deb} is not a Debian kernel image package (linux-image-<version>)")
    ver = pkg[len("linux-image-") :]
    os.makedirs(cache, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="unpack-", dir=cache)
    try:
        log(f"unpacking {os.path.basename(deb)}")
        run([need_tool("dpkg-deb", "dpkg"), "-x", deb, tmp], stderr=subprocess.PIPE)
        # modules.dep is made at install time, not shipped in the package
        run([need_tool("depmod", "kmod"), "-b", tmp, ver], stderr=subprocess.PIPE)
        full = ModuleTree(os.path.join(tmp, "lib", "modules", ver))
        order = full.load_order(wanted)

        # keep the kernel, the module index and the modules in use: a few MB, not 400
        dest = os.path.join(cache, f"linux-{ver}")
        shutil.rmtree(dest, ignore_errors=True)
        keep = [f"boot/vmlinuz-{ver}"]
        keep += [f"lib/modules/{ver}/{n}" for n in ("modules.dep", "modules.builtin")]
        keep += [f"lib/modules/{ver}/{p}" for p in order]
        staging = dest + ".new"
        shutil.rmtree(staging, ignore_errors=True)
        for rel in keep:
            src = os.path.join(tmp, rel)
            if os.path.exists(src):
                os.makedirs(os.path.dirname(os.path.join(staging, rel)), exist_ok=True)
                shutil.copy2(src, os.path.join(staging, rel))
        source = deb_field(deb, "Source") or pkg
        with open(os.path.join(staging, "source"), "w") as f:
            f.write(f"{source.split()[0]} (= {deb_field(deb, 'Version')})\n")
        os.rename(staging, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    moddir = os.path.join(dest, "lib", "modules", ver)
    return Kernel(ver, os.path.join(dest, "boot", f"vmlinuz-{ver}"), moddir, origin)


def installed_source(path):
    """'source (= version)' of the installed Debian package that owns @path, or None."""
    # with merged /usr a package lists /bin/x while the file is reached as /usr/bin/x
    real = os.path.realpath(path)
    names = [path, real] + ([real[len("/usr"):]] if real.startswith("/usr/") else [])
    for name in names:
        res = subprocess.run(["dpkg-query", "-S", name], capture_output=True, text=True)
        if res.returncode == 0:
            break
    else:
        return None
    pkg = res.stdout.split(":")[0].strip()
    res = subprocess.run(["dpkg-query", "-W", "-f", "${source:Package} (= ${source:Version})", pkg],
                         capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def built_using(kernel, busybox, qemu_ga, dropbear):
    if kernel.origin == "installed":
        kernel_source = installed_source(kernel.vmlinuz)
    else:
        path = os.path.join(os.path.dirname(os.path.dirname(kernel.vmlinuz)), "source")
        kernel_source = open(path).read().strip() if os.path.exists(path) else None
    found = [kernel_source, installed_source(busybox), installed_source(qemu_ga),
             installed_source(dropbear[0])]
    return [s for s in found if s]


def find_kernel(cache, wanted):
    """An installed kernel, else an earlier download, that has every module wanted; or None."""
    k = pick_installed_kernel(wanted)
    if k is not None:
        return k
    for k in cached_kernels(cache):
        try:
            if k.tree.has_files(k.tree.load_order(wanted)):
                return k
        except BuildError:
            pass
    return None


# --------------------------------------------------------------- vmlinux

# compressed payloads a bzImage may carry, by magic
PAYLOAD_MAGIC = [
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x1f\x8b\x08", "gzip"),
]


def has_pvh_note(elf):
    """True when the ELF has a Xen note XEN_ELFNOTE_PHYS32_ENTRY (18), which QEMU boots as PVH."""
    # the note sits in a PT_NOTE segment; a byte search for its header is enough here
    needle = (4).to_bytes(4, "little") + (4).to_bytes(4, "little") + (18).to_bytes(4, "little")
    needle8 = (4).to_bytes(4, "little") + (8).to_bytes(4, "little") + (18).to_bytes(4, "little")
    return (needle + b"Xen\x00") in elf or (needle8 + b"Xen\x00") in elf


def extract_vmlinux(vmlinuz, dest):
    with open(vmlinuz, "rb") as f:
        data = f.read()
    for magic, kind in PAYLOAD_MAGIC:
        off = data.find(magic)
        while off >= 0:
            try:
                if kind == "xz":
                    elf = lzma.LZMADecompressor().decompress(data[off:])
                elif kind == "gzip":
                    elf = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[off:])
                else:
                    zstd = need_tool("zstd", "zstd")
                    elf = subprocess.run(
                        [zstd, "-dcq"], input=data[off:], capture_output=True
                    ).stdout
            except (lzma.LZMAError, zlib.error):
                elf = b""
            # the magic may occur by chance before the real payload: keep looking
            if elf.startswith(b"\x7fELF"):
                if not has_pvh_note(elf):
                    raise BuildError(f"{vmlinuz}: decompressed kernel has no PVH entry point")
                write_atomic(dest, elf)
                return
            off = data.find(magic, off + 1)
    raise BuildError(f"{vmlinuz}: no xz, zstd or gzip payload holding an ELF kernel found")


# ------------------------------------------------------------- initramfs


def write_atomic(dest, data):
    tmp = dest + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


def shared_libs(binary):
    """Files the dynamic loader maps for binary, per ldd; empty for a static binary."""
    res = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if res.returncode != 0:
        if "not a dynamic executable" in res.stdout + res.stderr:
            return []
        raise BuildError(f"ldd {binary} failed: {res.stderr.strip()}")
    libs = []
    for line in res.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            path = line.split("=>", 1)[1].split("(", 1)[0].strip()
            if path == "not found":
                raise BuildError(f"{binary}: library {line.split()[0]} not found")
        else:
            path = line.split("(", 1)[0].strip()  # the loader, or linux-vdso (no path)
        if path.startswith("/"):
            libs.append(path)
    return libs


def copy_into(root, src, dest=None, mode=None):
    """Copy src's content (following symlinks) to the same path, or dest, inside root."""
    target = os.path.join(root, (dest or src).lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(src, target)
    os.chmod(target, mode if mode is not None else (os.stat(src).st_mode & 0o777))
    return target


def stage_rootfs(root, busybox, qemu_ga, dropbear, kernel, order, deps):
    for d in ("proc", "sys", "dev", "run", "tmp", "root", "mnt", "workspace", "var"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.symlink("../run", os.path.join(root, "var", "run"))

    # our own files; a script (#!) is made executable whatever the checkout did to its mode
    for dirpath, dirnames, filenames in os.walk(ROOTFS_DIR):
        dirnames.sort()
        deps.append(dirpath)  # a new file changes the directory's mtime: rebuild
        for name in sorted(filenames):
            src = os.path.join(dirpath, name)
            with open(src, "rb") as f:
                script = f.read(2) == b"#!"
            dest = os.path.relpath(src, ROOTFS_DIR)
            copy_into(root, src, dest, 0o755 if script else 0o644)
            deps.append(src)

    # busybox and a symlink per applet, where busybox itself would put it
    copy_into(root, busybox, "/bin/busybox", 0o755)
    deps.append(busybox)
    applets = subprocess.run(
        [busybox, "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if "/" not in applet:  # "linuxrc": not wanted, /init is ours
            continue
        link = os.path.join(root, applet)
        if os.path.lexists(link):
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.relpath(os.path.join(root, "bin", "busybox"), os.path.dirname(link)), link)

    # the guest agent, the SSH server and its key tool, and the exact libraries
    # this host's loader resolves for them
    binaries = [(qemu_ga, "/usr/sbin/qemu-ga"), (dropbear[0], "/usr/sbin/dropbear"),
                (dropbear[1], "/usr/bin/dropbearkey")]
    libs = shared_libs(busybox)
    for src, dest in binaries:
        copy_into(root, src, dest, 0o755)
        deps.append(src)
        libs += shared_libs(src)
    for lib in libs:
        if not os.path.exists(os.path.join(root, lib.lstrip("/"))):
            copy_into(root, lib, mode=0o755)
            deps.append(os.path.realpath(lib))

    # modules, and the order /init loads them in
    modroot = f"/lib/modules/{kernel.version}"
    for rel in order:
        src = os.path.join(kernel.moddir, rel)
        copy_into(root, src, f"{modroot}/{rel}", 0o644)
        deps.append(src)
    with open(os.path.join(root, "lib", "modules", "load-order"), "w") as f:
        f.writelines(f"{modroot}/{rel}\n" for rel in order)
    deps.append(os.path.join(kernel.moddir, "modules.dep"))


def pack_initramfs(busybox, root, dest, level):
    """Pack root as a newc cpio, owned by root, gzip-compressed."""
    names = ["."]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + sorted(filenames):
            names.append(os.path.normpath(os.path.join(rel, name)))
    # dirnames include symlinks to dirs; os.walk does not descend into them, so no duplicates
    cpio = subprocess.Popen(
        [busybox, "cpio", "-o", "-H", "newc", "-R", "0:0"],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    # feed the names from a thread so a full stdout pipe cannot block us
    feeder = threading.Thread(
        target=lambda: (cpio.stdin.write("\n".join(names).encode() + b"\n"), cpio.stdin.close())
    )
    feeder.start()
    tmp = dest + ".tmp"
    with open(tmp, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0
    ) as gz:
        shutil.copyfileobj(cpio.stdout, gz, 1 << 20)
    feeder.join()
    if cpio.wait() != 0:
        raise BuildError("busybox cpio failed")
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


# ------------------------------------------------------------------ main


def find_inputs():
    busybox = need_tool("busybox", "busybox-static")
    qemu_ga = need_tool("qemu-ga", "qemu-guest-agent")
    dropbear = (need_tool("dropbear", "dropbear-bin"), need_tool("dropbearkey", "dropbear-bin"))
    need_tool("ldd", "libc-bin")
    return busybox, qemu_ga, dropbear, read_module_list()


def write_depfile(path, target, deps):
    def esc(p):
        return p.replace("\\", "\\\\").replace(" ", "\\ ").replace("#", "\\#").replace("$", "$$")

    uniq = sorted(set(deps))
    with open(path, "w") as f:
        f.write(f"{esc(target)}: \\\n")
        f.write(" \\\n".join(f"  {esc(d)}" for d in uniq) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--depfile", help="write a make-style depfile for ninja")
    ap.add_argument("--target", help="output named in the depfile")
    ap.add_argument("--check", action="store_true", help="only report whether a build can work")
    ap.add_argument("--gzip-level", type=int, default=6)
    ap.add_argument("--kernel-deb", help="the linux-image .deb to take the kernel from")
    args = ap.parse_args()

    outdir = os.path.abspath(args.outdir)
    cache = os.path.join(outdir, "cache")
    try:
        busybox, qemu_ga, dropbear, wanted = find_inputs()
        if args.kernel_deb:
            if not os.path.isfile(args.kernel_deb):
                raise BuildError(f"--kernel-deb {args.kernel_deb}: no such file")
            kernel = None if args.check else unpack_kernel_deb(os.path.abspath(args.kernel_deb),
                                                               cache, wanted, "given")
            if args.check:
                print(f"kernel from {deb_field(args.kernel_deb, 'Package') or args.kernel_deb}")
                return 0
        else:
            kernel = find_kernel(cache, wanted)
        if args.check:
            if kernel is not None:
                print(f"kernel {kernel.version} ({kernel.origin})")
            else:
                print(f"kernel {apt_kernel_package()} (fetched at build time with apt-get download)")
            return 0

        os.makedirs(outdir, exist_ok=True)
        if kernel is None:
            kernel = fetch_kernel(cache, wanted)
        order = kernel.tree.load_order(wanted)
        log(f"kernel {kernel.version} ({kernel.origin}), {len(order)} modules")

        # the decompression runs beside the initramfs packing (lzma drops the GIL)
        errors = []

        def vmlinux_job():
            try:
                extract_vmlinux(kernel.vmlinuz, os.path.join(outdir, "vmlinux"))
            except BuildError as e:
                errors.append(e)

        job = threading.Thread(target=vmlinux_job)
        job.start()

        shutil.copyfile(kernel.vmlinuz, os.path.join(outdir, "vmlinuz.tmp"))
        os.chmod(os.path.join(outdir, "vmlinuz.tmp"), 0o644)
        os.replace(os.path.join(outdir, "vmlinuz.tmp"), os.path.join(outdir, "vmlinuz"))

        deps = [kernel.vmlinuz, MODULES_LIST, os.path.abspath(__file__)]
        if args.kernel_deb:
            deps.append(os.path.abspath(args.kernel_deb))
        if kernel.origin == "installed":
            # a kernel installed or removed later changes these directories: rebuild
            deps += [os.path.dirname(kernel.vmlinuz), os.path.dirname(kernel.moddir)]
        root = os.path.join(outdir, "initramfs-root")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        stage_rootfs(root, busybox, qemu_ga, dropbear, kernel, order, deps)
        pack_initramfs(busybox, root, os.path.join(outdir, "initramfs.cpio.gz"), args.gzip_level)
        shutil.rmtree(root, ignore_errors=True)

        with open(os.path.join(outdir, "built-using.txt"), "w") as f:
            f.write(", ".join(built_using(kernel, busybox, qemu_ga, dropbear)) + "\n")

        job.join()
        if errors:
            raise errors[0]
        if args.depfile:
            write_depfile(args.depfile, args.target or os.path.join(outdir, "vmlinux"), deps)
        size = os.path.getsize(os.path.join(outdir, "initramfs.cpio.gz"))
        log(f"initramfs.cpio.gz {size / 1e6:.1f} MB, vmlinux, vmlinuz in {outdir}")
        return 0
    except BuildError as e:
        print(f"build-guest: {e}", file=sys.stderr if not args.check else sys.stdout)
        return 1


if __name__ == "__main__":
    sys.exit(main())
