"""A small rtnetlink client: the few link and address operations the bridge driver needs.

Why not pyroute2: it costs the daemon 10+ MB of resident memory for good (160 modules) and
forks to open a socket in another namespace; we need nine message shapes. Everything here is
one ``NETLINK_ROUTE`` socket and ``struct``: a request is built by an ``encode_*`` function
(pure, unit-tested byte for byte), sent with ``NLM_F_ACK`` (or as a dump), and the kernel's
answer is parsed; an error answer becomes ``OSError(errno, kernel's message)``, so callers
test ``e.errno`` (ENODEV, EEXIST, EADDRNOTAVAIL) and never the text.

Lifecycle: ``Rtnl()`` opens the socket in the *calling thread's* network namespace (a netlink
socket keeps the namespace it was created in, whichever thread uses it later); ``close()``
(or ``with``). One lock serialises requests, so threads may share an instance.

Message layout (all host byte order, every part 4-byte aligned)::

    nlmsghdr  len:u32 type:u16 flags:u16 seq:u32 pid:u32
    ifinfomsg family:u8 pad:u8 type:u16 index:i32 flags:u32 change:u32   (RTM_*LINK)
    ifaddrmsg family:u8 prefixlen:u8 flags:u8 scope:u8 index:u32         (RTM_*ADDR)
    rtattr    len:u16 type:u16 payload (nested attributes are rtattrs in the payload)
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200  # in an error answer: extended-ack attributes follow
NLM_F_CAPPED = 0x100  # in an error answer: the echoed request was cut to its header
NLMSGERR_ATTR_MSG = 1

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_PROTINFO = 12
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFLA_BR_FORWARD_DELAY = 1
IFLA_BRPORT_MODE = 4  # hairpin
IFA_ADDRESS = 1
IFA_LOCAL = 2
NLA_F_NESTED = 0x8000
IFF_UP = 0x1

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")
_ERRNO = struct.Struct("=i")


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 bytes (the length field excludes the padding)."""
    n = _RTATTR.size + len(payload)
    return _RTATTR.pack(n, kind) + payload + b"\0" * (_align(n) - n)


def attr_str(kind: int, s: str) -> bytes:
    return attr(kind, s.encode() + b"\0")


def attr_u32(kind: int, v: int) -> bytes:
    return attr(kind, struct.pack("=I", v))


def nested(kind: int, *attrs: bytes, flag: int = 0) -> bytes:
    return attr(kind | flag, b"".join(attrs))


def parse_attrs(data: bytes | memoryview) -> dict[int, bytes]:
    """rtattrs of one level -> {type: payload} (the NLA_F_* flag bits cleared; last one wins)."""
    out: dict[int, bytes] = {}
    off = 0
    while off + _RTATTR.size <= len(data):
        n, kind = _RTATTR.unpack_from(data, off)
        if n < _RTATTR.size or off + n > len(data):
            break
        out[kind & 0x3FFF] = bytes(data[off + _RTATTR.size:off + n])
        off += _align(n)
    return out


def _cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode(errors="replace")


def message(kind: int, flags: int, body: bytes, seq: int = 0) -> bytes:
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0) + body


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0, family: int = socket.AF_UNSPEC) -> bytes:
    return _IFINFOMSG.pack(family, 0, index, flags, change)


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"invalid MAC address {mac!r}")
    return bytes(int(p, 16) for p in parts)


# -- requests (pure) ---------------------------------------------------------------------------

def encode_get_link(name: str) -> tuple[int, int, bytes]:
    return RTM_GETLINK, 0, ifinfomsg() + attr_str(IFLA_IFNAME, name)


def encode_new_bridge(name: str, mtu: int, forward_delay: int = 0) -> tuple[int, int, bytes]:
    return RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg() + attr_str(IFLA_IFNAME, name) + (
        attr_u32(IFLA_MTU, mtu)
        + nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge"),
                 nested(IFLA_INFO_DATA, attr_u32(IFLA_BR_FORWARD_DELAY, forward_delay))))


def encode_new_veth(name: str, master: int, mtu: int, peer_name: str, peer_mac: str,
                    peer_netns_fd: int) -> tuple[int, int, bytes]:
    """A veth pair, its host end up and enslaved to ``master``, its peer created directly in
    the namespace of ``peer_netns_fd`` with its final name and MAC (no rename or move later)."""
    peer = (ifinfomsg() + attr_str(IFLA_IFNAME, peer_name) + attr(IFLA_ADDRESS, mac_bytes(peer_mac))
            + attr_u32(IFLA_MTU, mtu) + attr_u32(IFLA_NET_NS_FD, peer_netns_fd))
    body = (ifinfomsg(flags=IFF_UP, change=IFF_UP) + attr_str(IFLA_IFNAME, name)
            + attr_u32(IFLA_MTU, mtu) + attr_u32(IFLA_MASTER, master)
            + nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "veth"),
                     nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer))))
    return RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body


def encode_set_up(index: int) -> tuple[int, int, bytes]:
    return RTM_NEWLINK, 0, ifinfomsg(index, IFF_UP, IFF_UP)


def encode_hairpin(index: int, on: bool = True) -> tuple[int, int, bytes]:
    # br_setlink reads IFLA_PROTINFO as bridge-port attributes only when it is flagged nested
    # (an un-nested one is the old RSTP "port state" byte)
    return RTM_SETLINK, 0, ifinfomsg(index, family=socket.AF_BRIDGE) + nested(
        IFLA_PROTINFO, attr(IFLA_BRPORT_MODE, bytes([1 if on else 0])), flag=NLA_F_NESTED)


def encode_del_link(index: int) -> tuple[int, int, bytes]:
    return RTM_DELLINK, 0, ifinfomsg(index)


def encode_addr(kind: int, index: int, address: str, prefixlen: int) -> tuple[int, int, bytes]:
    """RTM_NEWADDR / RTM_DELADDR of an IPv4 address (IFA_LOCAL is the one the kernel requires;
    ``ip addr`` sends IFA_ADDRESS alike for a point-to-multipoint link)."""
    packed = socket.inet_pton(socket.AF_INET, address)
    flags = NLM_F_CREATE | NLM_F_EXCL if kind == RTM_NEWADDR else 0
    return kind, flags, (_IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, 0, index)
                         + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed))


# -- answers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str  # IFLA_INFO_KIND: "bridge", "veth", ... ("" for a plain device such as lo)
    master: int  # index of the bridge it is a port of, 0 if none
    up: bool


def parse_link(body: bytes | memoryview) -> Link:
    _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(body)
    a = parse_attrs(body[_IFINFOMSG.size:])
    info = parse_attrs(a.get(IFLA_LINKINFO, b""))
    master = struct.unpack("=I", a[IFLA_MASTER])[0] if IFLA_MASTER in a else 0
    return Link(index, _cstr(a.get(IFLA_IFNAME, b"")), _cstr(info.get(IFLA_INFO_KIND, b"")), master,
                bool(flags & IFF_UP))


def parse_addr(body: bytes | memoryview) -> tuple[int, str, int] | None:
    """(index, address, prefixlen) of an IPv4 RTM_NEWADDR; None for other families."""
    family, prefixlen, _flags, _scope, index = _IFADDRMSG.unpack_from(body)
    if family != socket.AF_INET:
        return None
    a = parse_attrs(body[_IFADDRMSG.size:])
    raw = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
    return (index, socket.inet_ntop(socket.AF_INET, raw), prefixlen) if raw else None


def parse_error(body: bytes | memoryview, flags: int) -> OSError | None:
    """An NLMSG_ERROR body -> None for an ack (error 0), else OSError with the kernel's
    extended-ack message when it sent one."""
    (err,) = _ERRNO.unpack_from(body)
    if err == 0:
        return None
    code = -err
    text = os.strerror(code)
    if flags & NLM_F_ACK_TLVS:
        # the echoed request: its header only when capped, else all of it
        echoed = _NLMSGHDR.size if flags & NLM_F_CAPPED else _NLMSGHDR.unpack_from(body, 4)[0]
        msg = parse_attrs(body[4 + _align(echoed):]).get(NLMSGERR_ATTR_MSG)
        if msg:
            text = f"{text}: {_cstr(msg)}"
    return OSError(code, text)


def split_messages(buf: bytes | memoryview) -> Iterator[tuple[int, int, int, memoryview]]:
    """(type, flags, seq, body) of each netlink message in one datagram."""
    view = memoryview(buf)
    off = 0
    while off + _NLMSGHDR.size <= len(view):
        n, kind, flags, seq, _pid = _NLMSGHDR.unpack_from(view, off)
        if n < _NLMSGHDR.size or off + n > len(view):
            raise OSError(errno.EPROTO, f"truncated netlink message ({n} bytes at {off})")
        yield kind, flags, seq, view[off + _NLMSGHDR.size:off + n]
        off += _align(n)


class Rtnl:
    """A NETLINK_ROUTE socket in the namespace of the thread that opened it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            self._sock.bind((0, 0))
            try:  # the kernel's reason with an error ("Unknown device type", ...); 4.12+
                self._sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            except OSError:
                pass
        except BaseException:
            self._sock.close()
            raise
        self._lock = threading.Lock()
        self._seq = 0
        self._buf = bytearray(1 << 16)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, memoryview]]:
        """Send one request and collect its answer: [(type, body)] of the data messages (a dump's
        entries, or a GET's one answer); raises OSError when the kernel answers with an error."""
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            seq = self._seq
            dump = flags & NLM_F_DUMP == NLM_F_DUMP
            self._sock.send(message(kind, flags | (0 if dump else NLM_F_ACK), body, seq))
            out: list[tuple[int, memoryview]] = []
            while True:
                n = self._sock.recv_into(self._buf, 0, socket.MSG_TRUNC)
                if n > len(self._buf):  # one datagram bigger than the buffer: grow, ask again
                    raise OSError(errno.EMSGSIZE, f"netlink answer of {n} bytes did not fit")
                data = bytes(self._buf[:n])
                for mkind, mflags, mseq, mbody in split_messages(data):
                    if mseq != seq:
                        continue  # a late answer to an earlier, abandoned request
                    if mkind == NLMSG_ERROR:
                        err = parse_error(mbody, mflags)
                        if err is not None:
                            raise err
                        return out
                    if mkind == NLMSG_DONE:
                        return out
                    out.append((mkind, mbody))
                # more to come: a dump's next datagram (until NLMSG_DONE), or a GET's ack

    def _do(self, req: tuple[int, int, bytes]) -> list[tuple[int, memoryview]]:
        return self.request(*req)

    # -- links ---------------------------------------------------------------------------------

    def link(self, name: str) -> Link | None:
        """The link called ``name``, or None."""
        try:
            got = self._do(encode_get_link(name))
        except OSError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
        return parse_link(got[0][1]) if got else None

    def links(self) -> list[Link]:
        return [parse_link(b) for k, b in self.request(RTM_GETLINK, NLM_F_DUMP, ifinfomsg())
                if k == RTM_NEWLINK]

    def add_bridge(self, name: str, mtu: int = 1500, forward_delay: int = 0) -> None:
        self._do(encode_new_bridge(name, mtu, forward_delay))

    def add_veth(self, name: str, master: int, mtu: int, peer_name: str, peer_mac: str,
                 peer_netns_fd: int) -> None:
        self._do(encode_new_veth(name, master, mtu, peer_name, peer_mac, peer_netns_fd))

    def set_up(self, index: int) -> None:
        self._do(encode_set_up(index))

    def set_hairpin(self, index: int, on: bool = True) -> None:
        self._do(encode_hairpin(index, on))

    def delete_link(self, index: int) -> None:
        self._do(encode_del_link(index))

    # -- addresses -----------------------------------------------------------------------------

    def addresses(self, index: int) -> list[tuple[str, int]]:
        """IPv4 (address, prefixlen) pairs of a link."""
        out = []
        for k, b in self.request(RTM_GETADDR, NLM_F_DUMP, _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)):
            got = parse_addr(b) if k == RTM_NEWADDR else None
            if got is not None and got[0] == index:
                out.append((got[1], got[2]))
        return out

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        self._do(encode_addr(RTM_NEWADDR, index, address, prefixlen))

    def delete_address(self, index: int, address: str, prefixlen: int) -> None:
        self._do(encode_addr(RTM_DELADDR, index, address, prefixlen))
