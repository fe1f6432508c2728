from __future__ import annotations

import asyncio

import pytest

from dockyard.api import streams
from dockyard.errors import InvalidArgument
from dockyard.shim import protocol


def test_parse_detach_keys() -> None:
    assert streams.parse_detach_keys(None) == b"\x10\x11"
    assert streams.parse_detach_keys("ctrl-a,x") == b"\x01x"
    assert streams.parse_detach_keys("") == b""
    with pytest.raises(InvalidArgument):
        streams.parse_detach_keys("ctrl-1,nope")


class FakeClient:
    def __init__(self, chunks: list[bytes | None]) -> None:
        self.chunks = chunks

    async def read(self) -> bytes | None:
        return self.chunks.pop(0)


class FakeWriter:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: bytes) -> None:
        self.data += b

    async def drain(self) -> None:
        return None


def frames(w: FakeWriter) -> list[tuple[int, bytes]]:
    return protocol.parse_frames(bytearray(w.data))


def test_stdin_forwarding_eof_and_detach() -> None:
    w = FakeWriter()
    asyncio.run(streams._stdin(FakeClient([b"ab\x10c", b"d", None]), w, b"\x10\x11"))  # type: ignore[arg-type]
    assert frames(w) == [(0, b"ab\x10c"), (0, b"d"), (protocol.STDIN_EOF, b"")]
    w = FakeWriter()
    with pytest.raises(streams.Detached):
        asyncio.run(streams._stdin(FakeClient([b"xy\x10", b"\x11rest"]), w, b"\x10\x11"))  # type: ignore[arg-type]
    assert frames(w) == [(0, b"xy")]  # no EOF frame: the container keeps its stdin
