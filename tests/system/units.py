#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The confinement of the built systemd units, checked offline (no systemd
needs to run): `systemd-analyze security --offline=true` rates the system
unit at 4.0 or better and `systemd-analyze verify` finds nothing wrong with
either unit; the settings QEMU depends on stay as they must; and a QEMU
like the ones vmsupd starts (TCG, user-mode network with a host forward,
a 9p share, QMP and agent sockets, its own -sandbox), traced with strace,
makes no system call the unit's filter would refuse.

The socket units (vmsupd.socket, system and user) are verified together
with their services, and checked for the path, mode and group vmsupd(8)
documents.

Prints TAP; environment: VMSUPD, VMSUP_SYSTEM_UNIT, VMSUP_USER_UNIT (built),
VMSUP_SYSTEM_SOCKET, VMSUP_USER_SOCKET (sources).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

THRESHOLD = 4.0
USER_THRESHOLD = 7.0
# how long the traced QEMU runs its firmware: enough to start every device
QEMU_RUN_S = 4

n_tests = 0
n_failed = 0


def ok(cond, what, detail=None):
    global n_tests, n_failed
    n_tests += 1
    print(f"{'ok' if cond else 'not ok'} {n_tests} {what}")
    if not cond:
        n_failed += 1
        for line in str(detail or "").splitlines():
            print(f"# {line}")
    return cond


def note(text):
    for line in text.splitlines():
        print(f"# {line}")


def run(argv, env=None, timeout=120):
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)


def explain(proc):
    return f"{' '.join(proc.args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def parse_unit(path):
    """[Service] settings: key -> list of values, in order."""
    return parse_section(path, "Service")


def runnable_copy(unit, tmp, vmsupd, socket=None):
    """The unit with ExecStart pointing at the built vmsupd (the configured one is not installed),
    and its socket unit next to it, under the names they are installed as."""
    with open(unit) as f:
        text = f.read()
    text, n = re.subn(r"^(ExecStart=)\S*/vmsupd\b", lambda m: m.group(1) + vmsupd, text,
                      flags=re.M)
    os.makedirs(tmp, exist_ok=True)
    path = os.path.join(tmp, "vmsupd.service")
    with open(path, "w") as f:
        f.write(text)
    if socket is not None:
        shutil.copy(socket, os.path.join(tmp, "vmsupd.socket"))
    return path, n


def parse_section(path, wanted):
    """[wanted] settings: key -> list of values, in order."""
    settings = {}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
            elif section == wanted and "=" in line:
                key, value = line.split("=", 1)
                settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def check_sockets(tmp, env):
    """The socket units: verified together with their services, the paths, modes and group
    vmsupd(8) gives, and services that name them yet start without them."""
    kinds = (("system", os.environ["VMSUP_SYSTEM_UNIT"], os.environ["VMSUP_SYSTEM_SOCKET"],
              False),
             ("user", os.environ["VMSUP_USER_UNIT"], os.environ["VMSUP_USER_SOCKET"], True))
    for kind, unit, socket, user in kinds:
        path, n = runnable_copy(unit, os.path.join(tmp, "sock-" + kind), os.environ["VMSUPD"],
                                socket)
        argv = ["systemd-analyze", "verify", "--man=no"] + (["--user"] if user else [])
        # run where the units are, so that each finds the other
        proc = subprocess.run(argv + ["vmsupd.socket", "vmsupd.service"], capture_output=True,
                              text=True, env=env, timeout=120, cwd=os.path.dirname(path))
        ok(n == 1 and proc.returncode == 0 and proc.stdout == "" and proc.stderr == "",
           f"{kind} socket unit and its service: systemd-analyze verify says nothing",
           explain(proc))
        sock = parse_section(socket, "Socket")
        service_unit = parse_section(unit, "Unit")
        service = parse_section(unit, "Service")
        ok(service.get("Sockets") == ["vmsupd.socket"] and
           "vmsupd.socket" in " ".join(service_unit.get("Wants", [])).split() and
           "vmsupd.socket" in " ".join(service_unit.get("After", [])).split() and
           "vmsupd.socket" not in " ".join(service_unit.get("Requires", [])).split(),
           f"{kind} service: Sockets=, Wants= and After= the socket, not Requires= "
           "(it starts without it)", (service_unit, service))
        if user:
            ok(sock.get("ListenStream") == ["%t/vmsup/vmsupd.sock"] and
               sock.get("SocketMode") == ["0600"],
               "user socket: $XDG_RUNTIME_DIR/vmsup/vmsupd.sock, mode 0600", sock)
        else:
            sysusers = os.path.join(os.path.dirname(socket), "sysusers.d", "vmsup.conf")
            groups = set(re.findall(r"^g\s+(\S+)", open(sysusers).read(), flags=re.M))
            ok(sock.get("ListenStream") == ["/run/vmsup/vmsupd.sock"] and
               sock.get("SocketMode") == ["0660"] and
               sock.get("SocketGroup", [None])[-1] in groups,
               "system socket: /run/vmsup/vmsupd.sock, mode 0660, a group sysusers.d makes",
               (sock, groups))


def exposure(unit, user, env):
    argv = ["systemd-analyze", "security", "--offline=true"]
    if user:
        argv.append("--user")
    proc = run(argv + [unit], env=env)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    return (float(m.group(1)) if m else None), proc


def check_units(tmp, env):
    system_unit = os.environ["VMSUP_SYSTEM_UNIT"]
    user_unit = os.environ["VMSUP_USER_UNIT"]

    score, proc = exposure(system_unit, False, env)
    note(f"systemd-analyze security --offline=true {system_unit}: {score}")
    ok(score is not None and score <= THRESHOLD and proc.stderr == "",
       f"system unit: exposure {score} <= {THRESHOLD}", explain(proc))
    for line in proc.stdout.splitlines():
        if line.startswith("✗"):
            note(re.sub(r"\s{2,}", "  ", line))
    proc = run(["systemd-analyze", "security", "--offline=true",
                f"--threshold={int(THRESHOLD * 10)}", system_unit], env=env)
    ok(proc.returncode == 0, f"system unit: systemd-analyze security --threshold="
       f"{int(THRESHOLD * 10)} passes", explain(proc))

    score, proc = exposure(user_unit, True, env)
    note(f"systemd-analyze security --offline=true --user {user_unit}: {score}")
    ok(score is not None and score <= USER_THRESHOLD and proc.stderr == "",
       f"user unit: exposure {score} <= {USER_THRESHOLD}", explain(proc))

    for unit, user in ((system_unit, False), (user_unit, True)):
        path, n = runnable_copy(unit, tmp, os.environ["VMSUPD"])
        argv = ["systemd-analyze", "verify", "--man=no"] + (["--user"] if user else []) + [path]
        proc = run(argv, env=env)
        ok(n == 1 and proc.returncode == 0 and proc.stdout == "" and proc.stderr == "",
           f"{'user' if user else 'system'} unit: systemd-analyze verify says nothing",
           explain(proc))

    s = parse_unit(system_unit)
    last = {k: v[-1] for k, v in s.items()}
    ok(last.get("MemoryDenyWriteExecute", "no") == "no",
       "system unit: MemoryDenyWriteExecute stays off (TCG writes the code it runs)", last)
    ok(last.get("DevicePolicy") == "closed" and "/dev/kvm rw" in s.get("DeviceAllow", []),
       "system unit: devices closed but /dev/kvm", s.get("DeviceAllow"))
    families = set(" ".join(s.get("RestrictAddressFamilies", [])).split())
    ok({"AF_UNIX", "AF_INET", "AF_INET6"} <= families and
       last.get("PrivateNetwork", "no") == "no",
       "system unit: Unix and IP sockets on the host's network (QMP, user-mode network)",
       families)
    caps = set(" ".join(s.get("CapabilityBoundingSet", [])).split())
    ok(caps == {"CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_FOWNER", "CAP_KILL",
                "CAP_DAC_READ_SEARCH"},
       "system unit: capabilities to drop to a VM's uid, hand it its files, signal its QEMU",
       caps)
    ok(last.get("KillMode") == "process" and last.get("RuntimeDirectoryPreserve") == "yes" and
       last.get("Delegate") == "yes",
       "system unit: QEMUs outlive the daemon, in cgroups below it", last)
    ok(last.get("ProtectControlGroups", "no") == "no" and
       last.get("ProtectProc", "default") == "default" and
       last.get("ProcSubset", "all") == "all",
       "system unit: the delegated cgroups are writable and other uids' QEMUs visible", last)
    return s


def expand(group, cache={}):
    """The system calls of a filter entry (a name or a @group, nested groups expanded)."""
    if not group.startswith("@"):
        return {group}
    if group not in cache:
        proc = run(["systemd-analyze", "syscall-filter", group])
        names = set()
        for line in proc.stdout.splitlines()[1:]:
            m = re.match(r"^\s+(@?[a-z0-9_-]+)\s*$", line)
            if m:
                names |= expand(m.group(1))
        cache[group] = names
    return cache[group]


def unit_filter(settings):
    allowed = set()
    for value in settings.get("SystemCallFilter", []):
        deny = value.startswith("~")
        names = set()
        for entry in value.lstrip("~").split():
            names |= expand(entry)
        if deny:
            allowed -= names
        else:
            allowed |= names
    return allowed


def check_qemu_syscalls(tmp, settings):
    allowed = unit_filter(settings)
    ok("seccomp" in allowed and "setresuid" in allowed and "ioctl" in allowed,
       f"system unit: its filter ({len(allowed)} calls) has seccomp, @setuid and ioctl",
       sorted(allowed))
    share = os.path.join(tmp, "share")
    os.mkdir(share)
    trace = os.path.join(tmp, "qemu.trace")
    qemu = shutil.which(os.environ.get("VMSUP_QEMU", "qemu-system-x86_64"))
    argv = ["strace", "-f", "-qq", "-o", trace, qemu,
            "-accel", "tcg", "-machine", "q35", "-m", "128", "-nodefaults", "-nographic",
            "-pidfile", os.path.join(tmp, "qemu.pid"),
            "-chardev", f"file,id=ser0,path={tmp}/console.log", "-serial", "chardev:ser0",
            "-chardev", f"socket,id=qmp0,path={tmp}/qmp.sock,server=on,wait=off",
            "-mon", "chardev=qmp0,mode=control",
            "-chardev", f"socket,id=qga0,path={tmp}/qga.sock,server=on,wait=off",
            "-device", "virtio-serial",
            "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:0-:22",
            "-device", "virtio-net-pci,netdev=net0",
            "-fsdev", f"local,id=fs0,path={share},security_model=none",
            "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=workspace",
            "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]
    log_path = os.path.join(tmp, "qemu.log")
    with open(log_path, "wb") as log:
        # a session of its own: the signal must reach QEMU, not only strace
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.wait(timeout=QEMU_RUN_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with open(log_path, errors="replace") as f:
        out = f.read()
    used = set()
    with open(trace) as f:
        for line in f:
            m = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]", line)
            if m:
                used.add(m.group(1))
    note(f"QEMU made {len(used)} distinct system calls: {' '.join(sorted(used))}")
    refused = used - allowed
    ok(len(used) > 30 and "seccomp" in used and not refused,
       "QEMU (TCG, user net, 9p, QMP, agent, -sandbox on) makes no call the unit refuses",
       f"refused: {sorted(refused)}\nQEMU said: {out}")


def main():
    tmp = tempfile.mkdtemp(prefix="vmsup-units-")
    env = dict(os.environ)
    # a user manager's analysis wants a runtime directory
    env["XDG_RUNTIME_DIR"] = os.path.join(tmp, "xdg")
    os.mkdir(env["XDG_RUNTIME_DIR"], 0o700)
    try:
        settings = check_units(tmp, env)
        check_sockets(tmp, env)
        check_qemu_syscalls(tmp, settings)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{n_tests}")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
