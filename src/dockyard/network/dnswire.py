"""The few pieces of the DNS wire format (RFC 1035) that the embedded DNS server needs.

We parse the header and the first question of a query, and build responses that repeat the
question and carry A/AAAA (or PTR) answers (name as a compression pointer to the question at offset
12). Everything else (EDNS OPT records, other sections) is ignored: a response without OPT is
valid for a client that sent one. Forwarded queries are relayed as raw bytes, never re-encoded.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from dockyard.errors import InvalidArgument

TYPE_A = 1
TYPE_PTR = 12
TYPE_AAAA = 28
CLASS_IN = 1
RCODE_OK = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
_HEADER = struct.Struct("!HHHHHH")


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    name: str  # lower case, no trailing dot
    qtype: int
    qclass: int
    question: bytes  # the raw question section (name + type + class), echoed in replies


def parse_query(data: bytes) -> Query:
    """Parse a query's header and first question; InvalidArgument if it is malformed."""
    if len(data) < _HEADER.size:
        raise InvalidArgument("DNS message shorter than its header")
    qid, flags, qdcount, _an, _ns, _ar = _HEADER.unpack_from(data)
    if flags & 0x8000:
        raise InvalidArgument("DNS message is a response, not a query")
    if qdcount < 1:
        raise InvalidArgument("DNS query without a question")
    labels: list[str] = []
    pos = _HEADER.size
    while True:
        if pos >= len(data):
            raise InvalidArgument("DNS question name runs past the message")
        n = data[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0:
            raise InvalidArgument("compressed name in a DNS question")
        if pos + n > len(data):
            raise InvalidArgument("DNS label runs past the message")
        labels.append(data[pos:pos + n].decode("ascii", "replace"))
        pos += n
    if pos + 4 > len(data):
        raise InvalidArgument("DNS question without type and class")
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    return Query(qid, flags, ".".join(labels).lower(), qtype, qclass, data[_HEADER.size:pos + 4])


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            raw = label.encode("idna") if not label.isascii() else label.encode()
            if len(raw) > 63:
                raise InvalidArgument(f"DNS label too long in {name!r}")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(name: str, qtype: int = TYPE_A, qid: int = 0x1234) -> bytes:
    """A recursive query (used by tests and health checks)."""
    return _HEADER.pack(qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)


def build_response(q: Query, addresses: list[str], rcode: int = RCODE_OK, ttl: int = 600) -> bytes:
    """An authoritative-looking answer: RA set, RD copied, the question echoed, A/AAAA records."""
    answers = b""
    count = 0
    for a in addresses:
        ip = ipaddress.ip_address(a)
        rtype = TYPE_A if ip.version == 4 else TYPE_AAAA
        if rtype != q.qtype:
            continue
        answers += struct.pack("!HHHIH", 0xC00C, rtype, CLASS_IN, ttl, len(ip.packed)) + ip.packed
        count += 1
    flags = 0x8000 | 0x0080 | (q.flags & 0x0100) | (q.flags & 0x7800) | (rcode & 0xF)
    return _HEADER.pack(q.id, flags, 1, count, 0, 0) + q.question + answers


def build_ptr_response(q: Query, target: str, ttl: int = 600) -> bytes:
    """An answer to a PTR query naming ``target``."""
    rdata = encode_name(target)
    answer = struct.pack("!HHHIH", 0xC00C, TYPE_PTR, CLASS_IN, ttl, len(rdata)) + rdata
    flags = 0x8000 | 0x0080 | (q.flags & 0x0100) | (q.flags & 0x7800)
    return _HEADER.pack(q.id, flags, 1, 1, 0, 0) + q.question + answer


def ptr_address(name: str) -> str | None:
    """``4.3.2.1.in-addr.arpa`` -> ``1.2.3.4`` (None for anything else)."""
    if not name.endswith(".in-addr.arpa"):
        return None
    parts = name[: -len(".in-addr.arpa")].split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return None
    return ".".join(reversed(parts))


def error_response(data: bytes, rcode: int) -> bytes | None:
    """A header-only reply with ``rcode`` to a message we could not parse (None if hopeless)."""
    if len(data) < 2:
        return None
    qid = struct.unpack_from("!H", data)[0]
    return _HEADER.pack(qid, 0x8000 | 0x0080 | rcode, 0, 0, 0, 0)


@dataclass(frozen=True)
class Answer:
    id: int
    rcode: int
    addresses: list[str]
    names: list[str] = field(default_factory=list)  # PTR targets


def parse_answer(data: bytes) -> Answer:
    """Read the A/AAAA answers of a response (for tests and the forwarder's logging)."""
    qid, flags, qd, an, _ns, _ar = _HEADER.unpack_from(data)
    pos = _HEADER.size
    for _ in range(qd):
        pos = _skip_name(data, pos) + 4
    addrs: list[str] = []
    names: list[str] = []
    for _ in range(an):
        pos = _skip_name(data, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", data, pos)
        pos += 10
        rdata = data[pos:pos + rdlen]
        if rtype in (TYPE_A, TYPE_AAAA):
            addrs.append(str(ipaddress.ip_address(rdata)))
        elif rtype == TYPE_PTR:
            names.append(_read_name(rdata))
        pos += rdlen
    return Answer(qid, flags & 0xF, addrs, names)


def _read_name(raw: bytes) -> str:
    """An uncompressed name (what we emit in PTR answers)."""
    labels, pos = [], 0
    while pos < len(raw) and raw[pos] and not raw[pos] & 0xC0:
        labels.append(raw[pos + 1:pos + 1 + raw[pos]].decode("ascii", "replace"))
        pos += 1 + raw[pos]
    return ".".join(labels)


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        n = data[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + n
