"""The DNS wire codec against hand-made messages."""

from __future__ import annotations

import struct

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network import dnswire


def test_query_roundtrip_and_answer() -> None:
    raw = dnswire.build_query("Web.Example", dnswire.TYPE_A, qid=7)
    q = dnswire.parse_query(raw)
    assert (q.id, q.name, q.qtype, q.qclass) == (7, "web.example", 1, 1)
    resp = dnswire.build_response(q, ["10.0.0.2", "10.0.0.3", "fd00::1"])
    hdr = struct.unpack("!HHHHHH", resp[:12])
    assert hdr[0] == 7 and hdr[1] & 0x8000 and hdr[1] & 0x0100  # response, RD copied
    assert hdr[2:4] == (1, 2)  # the AAAA address is not an answer to an A query
    a = dnswire.parse_answer(resp)
    assert (a.id, a.rcode, a.addresses) == (7, 0, ["10.0.0.2", "10.0.0.3"])
    six = dnswire.parse_answer(dnswire.build_response(
        dnswire.parse_query(dnswire.build_query("x", dnswire.TYPE_AAAA)), ["10.0.0.2", "fd00::1"]))
    assert six.addresses == ["fd00::1"]
    nx = dnswire.parse_answer(dnswire.build_response(q, [], dnswire.RCODE_NXDOMAIN))
    assert (nx.rcode, nx.addresses) == (3, [])


def test_query_with_edns_additional_record() -> None:
    raw = bytearray(dnswire.build_query("a.b"))
    raw[11] = 1  # ARCOUNT=1
    raw += b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
    assert dnswire.parse_query(bytes(raw)).name == "a.b"


@pytest.mark.parametrize("raw", [
    b"\x00\x01",
    struct.pack("!HHHHHH", 1, 0x8000, 1, 0, 0, 0) + b"\0\0\1\0\1",  # a response
    struct.pack("!HHHHHH", 1, 0, 0, 0, 0, 0),  # no question
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x05ab",  # label past the end
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1",  # compression in question
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\0\0",  # no type/class
])
def test_malformed(raw: bytes) -> None:
    with pytest.raises(InvalidArgument):
        dnswire.parse_query(raw)
    err = dnswire.error_response(raw, dnswire.RCODE_FORMERR)
    assert err is not None and err[3] & 0xF == 1


def test_ptr() -> None:
    assert dnswire.ptr_address("4.3.2.10.in-addr.arpa") == "10.2.3.4"
    assert dnswire.ptr_address("x.3.2.10.in-addr.arpa") is None
    assert dnswire.ptr_address("example.org") is None
    q = dnswire.parse_query(dnswire.build_query("4.3.2.10.in-addr.arpa", dnswire.TYPE_PTR))
    a = dnswire.parse_answer(dnswire.build_ptr_response(q, "web.app"))
    assert (a.rcode, a.names, a.addresses) == (0, ["web.app"], [])
