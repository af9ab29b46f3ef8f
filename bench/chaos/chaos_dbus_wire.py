# SPDX-License-Identifier: LGPL-2.1-or-later
"""Just enough of the D-Bus wire protocol to call a method that answers a
descriptor (OpenConsole -> h) and keep the descriptor: gdbus prints the
handle and drops the file, and the harness has no D-Bus binding to lean on.
One connection per call: authenticate (EXTERNAL, unix fds), Hello, the call,
its reply with the descriptors that came with it. Little-endian only.
"""

import os
import socket
import struct

# header field codes
F_PATH, F_INTERFACE, F_MEMBER, F_ERROR_NAME, F_REPLY_SERIAL, F_DESTINATION = 1, 2, 3, 4, 5, 6
F_SIGNATURE, F_UNIX_FDS = 8, 9
METHOD_CALL, METHOD_RETURN, ERROR = 1, 2, 3


class WireError(Exception):
    """The bus or the peer went away, or answered what this client does not read."""


def _pad(buf, n):
    buf.extend(b"\0" * (-len(buf) % n))


def _string(buf, s):
    _pad(buf, 4)
    b = s.encode()
    buf.extend(struct.pack("<I", len(b)) + b + b"\0")


def _signature(buf, s):
    b = s.encode()
    buf.extend(bytes([len(b)]) + b + b"\0")


def _field(buf, code, sig, value):
    _pad(buf, 8)
    buf.append(code)
    _signature(buf, sig)
    if sig in ("s", "o"):
        _string(buf, value)
    elif sig == "g":
        _signature(buf, value)
    elif sig == "u":
        _pad(buf, 4)
        buf.extend(struct.pack("<I", value))


def _options(buf, options):
    """a{sv} of booleans, the only options the harness passes."""
    _pad(buf, 4)
    at = len(buf)
    buf.extend(b"\0\0\0\0")
    _pad(buf, 8)
    start = len(buf)
    for key, value in options.items():
        _pad(buf, 8)
        _string(buf, key)
        _signature(buf, "b")
        _pad(buf, 4)
        buf.extend(struct.pack("<I", 1 if value else 0))
    struct.pack_into("<I", buf, at, len(buf) - start)


def _message(serial, path, interface, member, destination, signature, body):
    fields = bytearray()
    _field(fields, F_PATH, "o", path)
    if interface:
        _field(fields, F_INTERFACE, "s", interface)
    _field(fields, F_MEMBER, "s", member)
    _field(fields, F_DESTINATION, "s", destination)
    if signature:
        _field(fields, F_SIGNATURE, "g", signature)
    head = bytearray(b"l" + bytes([METHOD_CALL, 0, 1]) +
                     struct.pack("<III", len(body), serial, len(fields)))
    head.extend(fields)
    _pad(head, 8)
    return bytes(head) + bytes(body)


class _Reader:
    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def align(self, n):
        self.pos += -self.pos % n

    def u8(self):
        v = self.data[self.pos]
        self.pos += 1
        return v

    def u32(self):
        self.align(4)
        v = struct.unpack_from("<I", self.data, self.pos)[0]
        self.pos += 4
        return v

    def string(self):
        n = self.u32()
        v = self.data[self.pos:self.pos + n].decode(errors="replace")
        self.pos += n + 1
        return v

    def signature(self):
        n = self.u8()
        v = self.data[self.pos:self.pos + n].decode()
        self.pos += n + 1
        return v


class WireCall:
    """One method call on its own connection; the reply's descriptors are the caller's."""

    def __init__(self, address, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(self._path(address))
        self.buf = bytearray()
        self.fds = []
        self.serial = 0

    @staticmethod
    def _path(address):
        for part in address.split(";")[0].split(":", 1)[1].split(","):
            key, _, value = part.partition("=")
            if key == "path":
                return value
            if key == "abstract":
                return "\0" + value
        raise WireError(f"cannot connect to the bus address {address}")

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.sock.close()

    def _recv(self):
        data, anc, _flags, _addr = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(16 * 4))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(payload) // 4
                self.fds.extend(struct.unpack(f"<{n}i", payload[:n * 4]))
        if not data:
            raise WireError("the bus closed the connection")
        self.buf.extend(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            self._recv()
        line, _, rest = bytes(self.buf).partition(b"\r\n")
        self.buf = bytearray(rest)
        return line.decode(errors="replace")

    def authenticate(self):
        self.sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() +
                          b"\r\n")
        if not self._line().startswith("OK "):
            raise WireError("the bus refused EXTERNAL authentication")
        self.sock.sendall(b"NEGOTIATE_UNIX_FD\r\n")
        if not self._line().startswith("AGREE_UNIX_FD"):
            raise WireError("the bus does not pass descriptors")
        self.sock.sendall(b"BEGIN\r\n")
        self.call("/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello",
                  "org.freedesktop.DBus", "", b"")

    def _read_message(self):
        while len(self.buf) < 16:
            self._recv()
        if self.buf[0:1] != b"l":
            raise WireError("a big-endian message")
        body_len, _serial, fields_len = struct.unpack_from("<III", self.buf, 4)
        header_len = 16 + fields_len + (-(16 + fields_len) % 8)
        while len(self.buf) < header_len + body_len:
            self._recv()
        msg = bytes(self.buf[:header_len + body_len])
        del self.buf[:header_len + body_len]
        r = _Reader(msg, 16)
        fields = {}
        while r.pos < 16 + fields_len:
            r.align(8)
            code = r.u8()
            sig = r.signature()
            if sig in ("s", "o"):
                fields[code] = r.string()
            elif sig == "g":
                fields[code] = r.signature()
            elif sig == "u":
                fields[code] = r.u32()
            else:
                raise WireError(f"a header field of type {sig}")
        return msg[1], fields, msg[header_len:]

    def call(self, path, interface, member, destination, signature, body):
        """(ok, value, fds): the reply's first u32 or string, or the error's name."""
        self.serial += 1
        serial = self.serial
        self.sock.sendall(_message(serial, path, interface, member, destination, signature,
                                   body))
        while True:
            kind, fields, payload = self._read_message()
            if fields.get(F_REPLY_SERIAL) != serial or kind not in (METHOD_RETURN, ERROR):
                continue  # NameAcquired and the like
            sig = fields.get(F_SIGNATURE, "")
            r = _Reader(payload)
            if kind == ERROR:
                message = r.string() if sig.startswith("s") else ""
                return False, (fields.get(F_ERROR_NAME, ""), message), []
            n_fds = fields.get(F_UNIX_FDS, 0)
            value = None
            if sig.startswith("h") or sig.startswith("u"):
                value = r.u32()
            elif sig.startswith("s"):
                value = r.string()
            mine = self.fds[:n_fds]
            self.fds = self.fds[n_fds:]
            return True, value, mine


def call_fd_method(address, timeout, path, interface, member, destination, name, options):
    """member(s name, a{sv} options) -> h. (ok, fd or (error name, message)); the fd is the
    caller's to close."""
    wire = WireCall(address, timeout)
    try:
        wire.authenticate()
        body = bytearray()
        _string(body, name)
        _options(body, options)
        ok, value, fds = wire.call(path, interface, member, destination, "sa{sv}", body)
        if not ok:
            return False, value
        if value is None or value >= len(fds):
            for fd in fds:
                os.close(fd)
            raise WireError(f"{member} answered handle {value} with {len(fds)} descriptors")
        fd = fds.pop(value)
        for other in fds:
            os.close(other)
        return True, fd
    finally:
        wire.close()
