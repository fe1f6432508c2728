"""The archive reader's readinto path (what apply_layer's reused buffer reads through):
_Prefixed (head, then the stream), _Member (at most the member's size; a short stream is an
error) and the readinto() helper over objects that only have read()."""

from __future__ import annotations

import io

import pytest

from dockyard.images.archive import ForwardReader, _Member, _Prefixed, readinto


class _ReadOnly:
    """A stream with read() only (like PlainReader over a compressed archive)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._f, self._step = io.BytesIO(data), step

    def read(self, n: int = -1) -> bytes:
        return self._f.read(min(n, self._step) if n >= 0 else self._step)


def _drain(src: object, size: int) -> bytes:
    out = bytearray()
    buf = bytearray(size)
    while k := readinto(src, buf):  # type: ignore[arg-type]
        out += buf[:k]
    return bytes(out)


@pytest.mark.parametrize("inner", ["bytesio", "readonly"])
@pytest.mark.parametrize("bufsize", [1, 100, 4096, 1 << 20])
def test_prefixed_readinto_gives_the_head_then_the_stream(inner: str, bufsize: int) -> None:
    head, rest = b"H" * 700, bytes(range(256)) * 40
    src = io.BytesIO(rest) if inner == "bytesio" else _ReadOnly(rest, 333)
    assert _drain(_Prefixed(head, src), bufsize) == head + rest  # type: ignore[arg-type]


def test_member_readinto_stops_at_its_size_and_counts_the_position() -> None:
    data = b"a" * 5000 + b"b" * 100
    fwd = ForwardReader(io.BytesIO(data))  # type: ignore[arg-type]
    m = _Member(fwd, "m", 5000)
    assert _drain(m, 1024) == b"a" * 5000
    assert fwd.tell() == 5000
    assert fwd.read(100) == b"b" * 100


def test_member_readinto_of_a_truncated_stream_is_an_error() -> None:
    fwd = ForwardReader(_ReadOnly(b"x" * 100, 64))  # type: ignore[arg-type]
    m = _Member(fwd, "blobs/sha256/abc", 1000)
    buf = bytearray(4096)
    assert readinto(m, buf) == 64
    assert readinto(m, buf) == 36
    with pytest.raises(EOFError, match="unexpected end of data in blobs/sha256/abc"):
        readinto(m, buf)
