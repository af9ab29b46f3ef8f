# SPDX-License-Identifier: LGPL-2.1-or-later
"""A private OpenSSH server on loopback, and a client set up to use it.

    with Sshd(work, remote_path=[dir_of_the_built_vmsup]) as sshd:
        env = sshd.client_env(os.environ)   # ssh here logs in there
        subprocess.run(["ssh", "127.0.0.1", "true"], env=env)

Everything lives below `work`: a host key and a client key made with
ssh-keygen, sshd_config (no PAM, the test's AuthorizedKeysFile, StrictModes
no, its PidFile; sshd runs with -D -e as a child of the caller), and for the
client a known_hosts pinning that host key and an ssh_config naming the key
and that known_hosts. OpenSSH reads ~/.ssh from the password database, not
from $HOME, so the client side is an `ssh` first in PATH that runs the
system's ssh with -F and that ssh_config: the programs under test spawn a
plain `ssh` and read plain ssh configuration, as they do for users.

The host UNPINNED_HOST is 127.0.0.1 under a host key alias that
known_hosts does not have. sshd listens on two ports: on `port` the session's PATH starts with
`remote_path` (SetEnv); on `bare_port` it does not, for "no vmsup there".
Only processes this module started are ever signalled: sshd by its pid and
the sessions below it by walking /proc from that pid.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

SSHD = "/usr/sbin/sshd"
# sshd insists on it (Debian makes it from its unit, which never runs here)
PRIVSEP_DIR = "/run/sshd"
HOST_KEY_ALIAS = "vmsup-test-sshd"
UNPINNED_HOST = "unpinned.invalid"


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmsup-test",
                    "-f", path], check=True, stdin=subprocess.DEVNULL)
    with open(path + ".pub") as f:
        return f.read().strip()


def _proc_read(name):
    """(pid, the bytes of /proc/PID/name) of every process still there to read."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/%s" % (entry, name), "rb") as f:
                yield int(entry), f.read()
        except OSError:
            continue


def processes():
    """(pid, argv as bytes) of every process."""
    for pid, cmdline in _proc_read("cmdline"):
        yield pid, cmdline.rstrip(b"\0").split(b"\0") if cmdline else []


def children_of(pid):
    """The pids whose parent is pid, from /proc."""
    found = []
    for child, stat in _proc_read("stat"):
        # the command name is in parentheses and may hold spaces
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(child)
    return found


def descendants_of(pid):
    out = []
    todo = [pid]
    while todo:
        for child in children_of(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


class Sshd:
    def __init__(self, work, remote_path, remote_env=None, timeout=30):
        self.dir = os.path.join(work, "ssh")
        self.remote_path = remote_path
        self.remote_env = remote_env or {}
        self.timeout = timeout
        self.proc = None
        self.port = None
        self.bare_port = None

    # -- setup ---------------------------------------------------------------

    def _write(self, name, text, mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def _sshd_config(self):
        path = ":".join(list(self.remote_path) + ["/usr/local/bin", "/usr/bin", "/bin"])
        env = " ".join("%s=%s" % kv for kv in sorted(self.remote_env.items()))
        return (
            "Port %d\nPort %d\nListenAddress 127.0.0.1\n"
            "HostKey %s\nPidFile %s\nAuthorizedKeysFile %s\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\nPrintMotd no\nLogLevel VERBOSE\n"
            "SetEnv PATH=%s LC_ALL=C %s\n"
            "Match LocalPort %d\n  SetEnv PATH=/usr/bin:/bin LC_ALL=C\n"
            % (self.port, self.bare_port, os.path.join(self.dir, "host_key"),
               os.path.join(self.dir, "sshd.pid"), os.path.join(self.dir, "authorized_keys"),
               path, env, self.bare_port))

    def _client_config(self):
        # an alias whose host key is pinned nowhere: ssh must refuse it
        return (
            "Host %s\n  HostName 127.0.0.1\n  HostKeyAlias %s-unpinned\n"
            "Host *\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n"
            "  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  HostKeyAlias %s\n"
            % (UNPINNED_HOST, HOST_KEY_ALIAS, os.path.join(self.dir, "id"),
               os.path.join(self.dir, "known_hosts"), HOST_KEY_ALIAS))

    def start(self):
        os.makedirs(self.dir, mode=0o700)
        if not os.path.isdir(PRIVSEP_DIR):
            os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)
        host_pub = keygen(os.path.join(self.dir, "host_key"))
        self._write("authorized_keys", keygen(os.path.join(self.dir, "id")) + "\n")
        self._write("known_hosts", "%s %s\n" % (HOST_KEY_ALIAS, " ".join(host_pub.split()[:2])))
        self.ssh_config = self._write("ssh_config", self._client_config())
        bin_dir = os.path.join(self.dir, "bin")
        os.mkdir(bin_dir)
        self.bin_dir = bin_dir
        self._write("bin/ssh", "#!/bin/sh\nexec %s -F %s \"$@\"\n"
                    % (shutil.which("ssh", path="/usr/bin:/bin"), self.ssh_config), 0o755)
        # a port taken meanwhile makes sshd exit at once: try again with others
        for _ in range(5):
            self.port, self.bare_port = free_tcp_port(), free_tcp_port()
            if self.port == self.bare_port:
                continue
            config = self._write("sshd_config", self._sshd_config())
            self.log = open(os.path.join(self.dir, "sshd.log"), "w")
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", config],
                                         stdin=subprocess.DEVNULL, stdout=self.log,
                                         stderr=subprocess.STDOUT)
            if self._wait_listening():
                return self
            self.stop()
        raise RuntimeError("sshd did not start: %s" % self.log_text())

    def _wait_listening(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4) == b"SSH-":
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "sshd.log")) as f:
                return f.read()
        except OSError:
            return ""

    # -- use -----------------------------------------------------------------

    def client_env(self, base):
        env = dict(base)
        env["PATH"] = self.bin_dir + ":" + base.get("PATH", "/usr/bin:/bin")
        return env

    def sessions(self):
        """The processes below sshd: one tree per connection."""
        return descendants_of(self.proc.pid) if self.proc else []

    def kill_sessions(self):
        """SIGKILL every connection's processes (sshd's children and below); sshd stays."""
        pids = self.sessions()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def stop(self):
        if self.proc is None:
            return
        pids = self.sessions()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None
        self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
