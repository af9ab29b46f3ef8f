#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
System mode with the real polkit: a system-type dbus-daemon on a private
socket (Debian's system.conf policies, polkit's and vmsupd's bus policy),
Debian's polkitd on it with the built policy and a rules file installed for
the test's duration, and `vmsupd --system` on that bus. Callers of other
uids, forked and dropped with setgroups/setgid/setuid, go through both doors:
gdbus on the bus, a raw JSON-RPC client on the socket.

  root                 both doors, without polkit
  ALLOWED (uid 1)      a rule says YES; member of SocketGroup
  DENIED (uid 2)       a rule says NO
  NOBODY (uid 65534)   the policy's defaults (auth_admin, no agent)

Must run as root (CI does). Prints TAP; environment: VMSUPD, VMSUP_POLICY
(the built .policy), VMSUP_BUS_POLICY (data/io.github.vmsup.Supervisor1.conf).
"""

import grp
import json
import os
import pwd
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

BUS_NAME = "io.github.vmsup.Supervisor1"
BUS_PATH = "/io/github/vmsup/Supervisor1"
POLKIT_NAME = "org.freedesktop.PolicyKit1"
POLKITD = "/usr/lib/polkit-1/polkitd"
POLKIT_BUS_POLICY = "/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf"
ACTIONS_DIR = "/usr/share/polkit-1/actions"
RULES_DIR = "/etc/polkit-1/rules.d"
ACTIONS = {"io.github.vmsup.read": "Look at virtual machines",
           "io.github.vmsup.manage": "Manage virtual machines"}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

ALLOWED_UID, DENIED_UID, NOBODY_UID = 1, 2, 65534
SOCKET_GROUP = grp.getgrgid(1).gr_name  # uid 1's own group ('daemon' on Debian)
SOCKET_GID = 1
# a start takes well under a second; the bound only stops a hung test early
READY_S = 60 * int(os.environ.get("VMSUP_TEST_TIMEOUT_MULTIPLIER", "1"))
CALL_S = READY_S

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


def bail(text):
    note(text)
    print("Bail out! " + text.splitlines()[0])
    raise SystemExit(1)


def wait_for(what, predicate, timeout=READY_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    bail(f"{what} within {timeout} s")


class Creds:
    def __init__(self, uid, gid=None, groups=()):
        self.uid = uid
        self.gid = uid if gid is None else gid
        self.groups = list(groups)

    def __str__(self):
        groups = ",".join(str(g) for g in self.groups) or "none"
        return f"uid {self.uid} gid {self.gid} groups {groups}"


class System:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="vmsup-pk-")
        # polkitd (user polkitd) and the callers must reach the bus socket
        os.chmod(self.tmp, 0o755)
        self.procs = []
        self.installed = []
        self.bus_address = None
        self.vmsupd = None
        self.socket_path = os.path.join(self.tmp, "run", "vmsupd.sock")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DBUS_", "LANG", "LC_"))}
        self.env["LC_ALL"] = "C.UTF-8"

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def spawn(self, label, argv, env):
        log = open(self.path(f"{label}.log"), "wb")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=self.tmp)
        log.close()
        self.procs.append((label, proc))
        return proc

    def log(self, label):
        with open(self.path(f"{label}.log"), errors="replace") as f:
            return f.read()

    def install(self, path, text):
        with open(path, "x") as f:
            f.write(text)
        self.installed.append(path)
        os.chmod(path, 0o644)

    # the bus

    def start_bus(self):
        conf = self.path("system.conf")
        listen = self.path("system_bus_socket")
        with open(conf, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={listen}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <include>{POLKIT_BUS_POLICY}</include>
  <include>{os.environ["VMSUP_BUS_POLICY"]}</include>
</busconfig>
""")
        self.spawn("dbus-daemon", ["dbus-daemon", f"--config-file={conf}", "--nofork"],
                   self.env)
        wait_for("the private system bus", lambda: os.path.exists(listen))
        self.bus_address = f"unix:path={listen}"
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address

    def has_owner(self, name):
        proc = subprocess.run(["gdbus", "call", "--system", "--dest", "org.freedesktop.DBus",
                               "--object-path", "/org/freedesktop/DBus",
                               "--method", "org.freedesktop.DBus.NameHasOwner", name],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env=self.env, timeout=CALL_S)
        return proc.stdout.strip() == "(true,)"

    def wait_owner(self, name, label):
        def owned():
            proc = dict(self.procs)[label]
            if proc.poll() is not None:
                bail(f"{label} exited {proc.returncode}:\n{self.log(label)}")
            return self.has_owner(name)
        wait_for(f"{label} to own {name}", owned)

    # polkitd, with the project's actions and the test's rules

    @staticmethod
    def remove_stale():
        """What a run that was killed left behind (its pid is gone)."""
        for d, pattern in ((ACTIONS_DIR, r"io\.github\.vmsup-test-(\d+)\.policy"),
                           (RULES_DIR, r"10-vmsup-test-(\d+)\.rules")):
            for name in os.listdir(d):
                m = re.fullmatch(pattern, name)
                if m and not os.path.exists(f"/proc/{m.group(1)}"):
                    note(f"removing {name}, left by an earlier run")
                    os.unlink(os.path.join(d, name))

    def start_polkitd(self, policy_text):
        self.remove_stale()
        tag = f"vmsup-test-{os.getpid()}"
        self.install(os.path.join(ACTIONS_DIR, f"io.github.{tag}.policy"), policy_text)
        allowed = pwd.getpwuid(ALLOWED_UID).pw_name
        denied = pwd.getpwuid(DENIED_UID).pw_name
        self.install(os.path.join(RULES_DIR, f"10-{tag}.rules"), f"""\
// vmsup's system test: {allowed} may use vmsupd, {denied} may not
polkit.addRule(function(action, subject) {{
    if (action.id.indexOf("io.github.vmsup.") != 0)
        return polkit.Result.NOT_HANDLED;
    if (subject.user == "{allowed}")
        return polkit.Result.YES;
    if (subject.user == "{denied}")
        return polkit.Result.NO;
    return polkit.Result.NOT_HANDLED;
}});
""")
        # as root it becomes user polkitd by itself, like under D-Bus activation
        self.spawn("polkitd", [POLKITD], self.env)
        self.wait_owner(POLKIT_NAME, "polkitd")

    # vmsupd

    def start_vmsupd(self):
        conf = self.path("vmsupd.conf")
        with open(conf, "w") as f:
            f.write(f"[vmsupd]\nAccel=tcg\nSocketGroup={SOCKET_GROUP}\n")
        argv = [os.environ["VMSUPD"], "--system", "--state-dir", self.path("state"),
                "--runtime-dir", self.path("run"), "--socket", self.socket_path,
                "--config", conf]
        note("starting " + " ".join(argv))
        self.vmsupd = self.spawn("vmsupd", argv, self.env)
        self.wait_owner(BUS_NAME, "vmsupd")

    def stop(self):
        for label, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=READY_S)
                except subprocess.TimeoutExpired:
                    note(f"{label} ignored SIGTERM; killing it")
                    proc.kill()
                    proc.wait()

    def cleanup(self):
        self.stop()
        for path in self.installed:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        subprocess.run(["rm", "-rf", "--one-file-system", self.tmp])

    # the D-Bus door

    def gdbus(self, creds, *args, interactive=False):
        argv = ["gdbus", "call", "--system", "--dest", BUS_NAME, "--object-path", BUS_PATH]
        if interactive:
            argv.append("--interactive")
        argv += ["--method", *args]
        if creds is None:
            return subprocess.run(argv, capture_output=True, text=True, env=self.env,
                                  timeout=CALL_S)
        return subprocess.run(argv, capture_output=True, text=True, env=self.env,
                              timeout=CALL_S, user=creds.uid, group=creds.gid,
                              extra_groups=creds.groups)

    def dbus(self, creds, method, *args, interactive=False):
        return self.gdbus(creds, f"{BUS_NAME}.{method}", *args, interactive=interactive)

    # the socket door: a forked child, dropped to @creds, speaks JSON-RPC

    def rpc(self, creds, requests):
        """A list of answers (or {"connect": errno}), or {"broken": why}."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            out = {"broken": "no answer"}
            try:
                os.setgroups(creds.groups)
                os.setgid(creds.gid)
                os.setuid(creds.uid)
                out = rpc_child(self.socket_path, requests)
            except BaseException as e:
                out = {"broken": repr(e)}
            finally:
                os.write(w, json.dumps(out).encode())
                os._exit(0)
        os.close(w)
        data = b""
        deadline = time.monotonic() + CALL_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([r], [], [], 0.5)
            if ready:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        return json.loads(data) if data else {"broken": "the child said nothing"}


def rpc_child(path, requests):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(CALL_S)
    try:
        s.connect(path)
    except OSError as e:
        return {"connect": e.errno}
    reader = s.makefile("rb")
    answers = []
    for i, (method, params) in enumerate(requests, 1):
        line = json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        try:
            s.sendall(line.encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            reply = reader.readline()
        except ConnectionResetError:
            # the daemon closed with our next request unread: the stream has ended
            reply = b""
        if not reply:
            answers.append({"closed": True})
            break
        answers.append(json.loads(reply))
    # a refused client is answered once, then the stream ends
    if len(answers) == 1 and answers[0].get("error", {}).get("code") == 5:
        try:
            answers.append({"closed": reader.readline() == b""})
        except ConnectionResetError:
            answers.append({"closed": True})
    return answers


def dbus_error(proc):
    """(name, message) of a failed gdbus call, or (None, stderr)."""
    m = re.search(r"GDBus\.Error:([A-Za-z0-9_.]+): (.*)", proc.stderr, re.S)
    return (m.group(1), m.group(2).strip()) if m else (None, proc.stderr)


def explain(proc):
    return f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"


def check_policy_file(text):
    """The built policy carries both actions, each with a German description and message."""
    root = ET.fromstring(text)
    found = {}
    for action in root.iter("action"):
        de = {el.tag: el.text for el in action if el.get(XML_LANG) == "de"}
        en = {el.tag: el.text for el in action if el.get(XML_LANG) is None}
        found[action.get("id")] = (en, de)
    ok(set(found) == set(ACTIONS), "the built policy declares io.github.vmsup.read and .manage",
       f"actions: {sorted(found)}")
    for action_id, (en, de) in sorted(found.items()):
        ok(all(de.get(k) and de[k] != en.get(k) for k in ("description", "message")),
           f"the built policy translates {action_id} into German: {de.get('description')!r}",
           f"English {en}, German {de}")


def test_pkaction(sysm):
    env = dict(sysm.env)
    listing = subprocess.run(["pkaction"], capture_output=True, text=True, env=env,
                             timeout=CALL_S)
    ids = listing.stdout.split()
    ok(all(a in ids for a in ACTIONS), "pkaction lists io.github.vmsup.read and .manage",
       explain(listing))
    verbose = subprocess.run(["pkaction", "--action-id", "io.github.vmsup.manage", "--verbose"],
                             capture_output=True, text=True, env=env, timeout=CALL_S)
    note(verbose.stdout.strip())
    ok(verbose.returncode == 0 and
       re.search(r"description:\s+Manage virtual machines", verbose.stdout) is not None and
       re.search(r"implicit any:\s+auth_admin", verbose.stdout) is not None,
       "pkaction --action-id io.github.vmsup.manage --verbose describes it", explain(verbose))
    # pkaction asks in no language: ask polkitd for German the way a desktop's agent does
    proc = subprocess.run(["gdbus", "call", "--system", "--dest", POLKIT_NAME,
                           "--object-path", "/org/freedesktop/PolicyKit1/Authority",
                           "--method", "org.freedesktop.PolicyKit1.Authority.EnumerateActions",
                           "de_DE.UTF-8"],
                          capture_output=True, text=True, env=env, timeout=CALL_S)
    ok(proc.returncode == 0 and "'Virtuelle Maschinen verwalten'" in proc.stdout and
       "'Virtuelle Maschinen ansehen'" in proc.stdout,
       "polkitd describes both actions in German for a de_DE locale", explain(proc))


def test_dbus_door(sysm, allowed, denied, nobody, kernel):
    proc = sysm.dbus(None, "Info", "{}")
    ok(proc.returncode == 0 and "'pid'" in proc.stdout, "D-Bus: root gets Info (no polkit asked)",
       explain(proc))

    proc = sysm.dbus(allowed, "List", "{}")
    ok(proc.returncode == 0 and proc.stdout.startswith("(@aa{sv} [],)"),
       f"D-Bus: allowed {allowed} gets List (io.github.vmsup.read)", explain(proc))
    proc = sysm.dbus(allowed, "Create", "pk-owned",
                     f"{{'kernel': <'{kernel}'>, 'wait': <true>}}")
    ok(proc.returncode == 0 and "'vm': <'pk-owned'>" in proc.stdout,
       f"D-Bus: allowed {allowed} creates a VM (io.github.vmsup.manage)", explain(proc))
    proc = sysm.dbus(None, "Get", "pk-owned", "{}")
    ok(proc.returncode == 0 and f"'owner_uid': <int64 {allowed.uid}>" in proc.stdout,
       f"D-Bus: the VM belongs to uid {allowed.uid}", explain(proc))

    for creds, label in ((nobody, "nobody"), (denied, "refused")):
        proc = sysm.dbus(creds, "List", "{}")
        name, message = dbus_error(proc)
        note(f"{label} {creds}: List -> {name}: {message}")
    proc = sysm.dbus(denied, "Delete", "pk-owned", "{}")
    name, message = dbus_error(proc)
    note(f"D-Bus: refused {denied}: Delete -> {name}: {message}")
    ok(proc.returncode != 0 and name == "org.freedesktop.DBus.Error.AccessDenied" and
       message.startswith("Not authorized for io.github.vmsup.manage; ask an administrator"),
       f"D-Bus: refused {denied} (rule NO) gets AccessDenied for io.github.vmsup.manage",
       explain(proc))
    proc = sysm.dbus(denied, "List", "{}")
    name, message = dbus_error(proc)
    ok(name == "org.freedesktop.DBus.Error.AccessDenied" and
       message.startswith("Not authorized for io.github.vmsup.read"),
       f"D-Bus: refused {denied} gets AccessDenied for io.github.vmsup.read", explain(proc))

    # the defaults say auth_admin; with no agent polkit only ever asks for a challenge
    for interactive in (False, True):
        proc = sysm.dbus(nobody, "Delete", "pk-owned", "{}", interactive=interactive)
        name, message = dbus_error(proc)
        note(f"D-Bus: nobody {nobody}{' --interactive' if interactive else ''}: Delete -> "
             f"{name}: {message}")
        hint = ("no polkit authentication agent answered" if interactive
                else "call again allowing interactive authorization")
        ok(proc.returncode != 0 and
           name == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" and
           message.startswith("Authentication is required for io.github.vmsup.manage") and
           hint in message,
           f"D-Bus: nobody{' (interactive)' if interactive else ''} is refused "
           "io.github.vmsup.manage by the policy's defaults", explain(proc))
    proc = sysm.dbus(nobody, "List", "{}")
    ok(proc.returncode != 0 and
       "Authentication is required for io.github.vmsup.read" in proc.stderr,
       "D-Bus: nobody is refused io.github.vmsup.read by the policy's defaults", explain(proc))

    proc = sysm.dbus(None, "List", "{}")
    ok(proc.returncode == 0 and "'name': <'pk-owned'>" in proc.stdout,
       "D-Bus: the refused calls changed nothing: the VM is still there", explain(proc))


def rpc_ok(answers, n):
    return (isinstance(answers, list) and len(answers) >= n and
            all("result" in a or a.get("error", {}).get("code") == 1 for a in answers[:n]))


def rpc_refused(answers, uid):
    return (isinstance(answers, list) and len(answers) == 2 and
            answers[0].get("error", {}).get("code") == 5 and
            f"uid {uid} may not use this vmsupd" in answers[0]["error"].get("message", "") and
            answers[1].get("closed") is True)


def test_socket_door(sysm, allowed, denied, nobody):
    reads = [("daemon.info", {}), ("vm.list", {}), ("vm.get", {"name": "pk-owned"}),
             ("vm.delete", {"name": "pk-missing"})]
    answers = sysm.rpc(Creds(0), reads)
    ok(rpc_ok(answers, 4), "socket: root gets answers", answers)

    answers = sysm.rpc(allowed, reads)
    note(f"socket: allowed {allowed}: {json.dumps(answers)[:300]}")
    ok(rpc_ok(answers, 4) and answers[2]["result"]["owner_uid"] == allowed.uid and
       answers[3]["error"]["code"] == 1,
       f"socket: {allowed} (SocketGroup={SOCKET_GROUP}) gets answers, a change too "
       "(vm.delete of a missing VM: not-found)", answers)

    st = os.stat(sysm.socket_path)
    ok(st.st_mode & 0o777 == 0o660 and st.st_gid == SOCKET_GID,
       f"socket: mode 0660, group {SOCKET_GROUP}", f"mode {st.st_mode:o} gid {st.st_gid}")
    for creds, label in ((nobody, "nobody"), (denied, "refused")):
        answers = sysm.rpc(creds, reads)
        note(f"socket: {label} {creds}: {answers}")
        ok(answers == {"connect": 13}, f"socket: {label} {creds} cannot connect (EACCES)",
           answers)
    run_dir = os.path.dirname(sysm.socket_path)
    dir_mode = os.stat(run_dir).st_mode & 0o7777
    ok(dir_mode & 0o001 == 0 and dir_mode & 0o010,
       "socket: its directory lets the group through, not others", f"mode {dir_mode:o}")
    # should the modes be opened up, the peer check still refuses
    os.chmod(run_dir, dir_mode | 0o001)
    os.chmod(sysm.socket_path, 0o666)
    try:
        for creds, label in ((nobody, "nobody"), (denied, "refused")):
            answers = sysm.rpc(creds, reads)
            note(f"socket 0666: {label} {creds}: {json.dumps(answers)}")
            ok(rpc_refused(answers, creds.uid),
               f"socket: {label} {creds} on a 0666 socket is refused by the peer check "
               "(code 5), then closed", answers)
    finally:
        os.chmod(sysm.socket_path, 0o660)
        os.chmod(run_dir, dir_mode)


def test_doors_differ(sysm, allowed, nobody):
    """
    The socket trusts its group for every method and never asks polkit; the
    bus asks polkit per action. Where the two disagree:
    """
    member = Creds(nobody.uid, nobody.gid, [SOCKET_GID])
    answers = sysm.rpc(member, [("vm.list", {}), ("vm.delete", {"name": "pk-missing"})])
    proc = sysm.dbus(member, "Delete", "pk-missing", "{}")
    note(f"doors differ: {member}: socket {json.dumps(answers)}; D-Bus {dbus_error(proc)}")
    ok(rpc_ok(answers, 2) and answers[1]["error"]["code"] == 1 and proc.returncode != 0 and
       "Authentication is required for io.github.vmsup.manage" in proc.stderr,
       f"doors differ: {member} (in SocketGroup, polkit's defaults) may manage over the "
       "socket, not over D-Bus", f"{answers}\n{explain(proc)}")

    outsider = Creds(allowed.uid, nobody.gid, [])
    answers = sysm.rpc(outsider, [("vm.list", {})])
    proc = sysm.dbus(outsider, "List", "{}")
    note(f"doors differ: {outsider}: socket {answers}; D-Bus exit {proc.returncode}")
    ok(answers == {"connect": 13} and proc.returncode == 0,
       f"doors differ: {outsider} (polkit says YES, not in SocketGroup) may use D-Bus, not "
       "the socket", f"{answers}\n{explain(proc)}")


def test_host_files(sysm, allowed, kernel):
    """
    Through both doors, files the caller could not open itself are refused by
    name: a backing file of its image, a kernel. Nothing is defined.
    """
    img = os.path.dirname(kernel)
    secret = os.path.join(img, "root-only.raw")
    with open(secret, "wb") as f:
        f.write(b"\0" * 65536)
    os.chmod(secret, 0o600)
    evil = os.path.join(img, "evil.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", evil],
                   check=True)
    os.chown(evil, allowed.uid, allowed.uid)
    os.chmod(evil, 0o644)
    root_kernel = os.path.join(img, "root-kernel")
    with open(root_kernel, "wb") as f:
        f.write(b"\0" * 4096)
    os.chmod(root_kernel, 0o600)

    answers = sysm.rpc(allowed, [
        ("vm.create", {"name": "pk-evil", "kernel": kernel, "image": evil, "wait": True}),
        ("vm.create", {"name": "pk-rootk", "kernel": root_kernel, "wait": True})])
    note(f"host files, socket: {json.dumps(answers)}")
    ok(isinstance(answers, list) and len(answers) == 2 and
       all("error" in a for a in answers) and
       secret in answers[0]["error"]["message"] and "cannot read" in answers[0]["error"]["message"] and
       root_kernel in answers[1]["error"]["message"],
       f"socket: {allowed} is refused an image whose backing file it cannot read, and a "
       "root-only kernel, each naming the file", answers)

    proc = sysm.dbus(allowed, "Create", "pk-evil",
                     f"{{'kernel': <'{kernel}'>, 'image': <'{evil}'>, 'wait': <true>}}")
    name, message = dbus_error(proc)
    note(f"host files, D-Bus backing: {name}: {message}")
    ok(proc.returncode != 0 and secret in message and "cannot read" in message,
       f"D-Bus: {allowed} is refused the same image, naming the backing file", explain(proc))
    proc = sysm.dbus(allowed, "Create", "pk-rootk", f"{{'kernel': <'{root_kernel}'>, 'wait': <true>}}")
    name, message = dbus_error(proc)
    ok(proc.returncode != 0 and root_kernel in message,
       f"D-Bus: {allowed} is refused the root-only kernel, naming it", explain(proc))

    proc = sysm.dbus(None, "List", "{}")
    ok(proc.returncode == 0 and "pk-evil" not in proc.stdout and "pk-rootk" not in proc.stdout,
       "host files: the refused creates defined nothing", explain(proc))


def main():
    if os.geteuid() != 0:
        bail("this test runs as root: it installs polkit files and switches users")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    with open(os.environ["VMSUP_POLICY"]) as f:
        policy_text = f.read()
    allowed = Creds(ALLOWED_UID)
    denied = Creds(DENIED_UID)
    nobody = Creds(NOBODY_UID)

    sysm = System()
    try:
        check_policy_file(policy_text)
        sysm.start_bus()
        sysm.start_polkitd(policy_text)
        ok(True, f"polkitd owns {POLKIT_NAME} on the private system bus {sysm.bus_address}")
        note(sysm.log("polkitd").strip())
        sysm.start_vmsupd()
        ok(True, f"vmsupd --system owns {BUS_NAME}")
        # a kernel the VM's owner can read, in a directory it may enter
        kernel_dir = sysm.path("img")
        os.mkdir(kernel_dir, 0o755)
        kernel = os.path.join(kernel_dir, "kernel")
        with open(kernel, "wb") as f:
            f.write(b"\0" * 4096)
        os.chown(kernel, ALLOWED_UID, ALLOWED_UID)

        test_pkaction(sysm)
        test_dbus_door(sysm, allowed, denied, nobody, kernel)
        test_socket_door(sysm, allowed, denied, nobody)
        test_doors_differ(sysm, allowed, nobody)
        test_host_files(sysm, allowed, kernel)

        proc = sysm.dbus(allowed, "Delete", "pk-owned", "{}")
        ok(proc.returncode == 0 and "'deleted': <true>" in proc.stdout,
           f"D-Bus: allowed {allowed} deletes its VM", explain(proc))
        sysm.vmsupd.send_signal(signal.SIGTERM)
        rc = sysm.vmsupd.wait(timeout=READY_S)
        log = sysm.log("vmsupd")
        ok(rc == 0 and "ERROR" not in log and "CRITICAL" not in log,
           f"vmsupd exits 0 on SIGTERM, nothing critical in its log", f"exit {rc}\n{log}")
        note("vmsupd's log:\n" + log.strip())
    finally:
        sysm.cleanup()
    ok(not any(os.path.exists(p) for p in sysm.installed),
       "the test's policy and rules files are removed", sysm.installed)
    print(f"1..{n_tests}")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
