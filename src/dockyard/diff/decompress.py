"""Streaming decompression with format detection (gzip, zstd, xz, bzip2, or none); gzip by ISA-L.

:func:`detect` looks at magic bytes; :class:`Decompressor` turns compressed chunks into plain
chunks and :meth:`Decompressor.finish` raises ``InvalidArgument`` when the stream ended early
(a truncated gzip is refused, not silently accepted).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from dockyard.errors import InvalidArgument

try:
    # ISA-L's inflate: ~1.5-2x zlib's here (gzip layers: pull, `docker save | gzip | docker load`,
    # import of a .tar.gz), same stream semantics (eof, unused_data). zlib when it is missing.
    from isal import isal_zlib as _gzip_zlib

    _GZIP_ERRORS: tuple[type[BaseException], ...] = (zlib.error, _gzip_zlib.error)
except ImportError:  # pragma: no cover - isal is a dependency; kept optional for other platforms
    _gzip_zlib = zlib  # type: ignore[assignment]
    _GZIP_ERRORS = (zlib.error,)

GZIP, ZSTD, XZ, BZIP2, NONE = "gzip", "zstd", "xz", "bzip2", "none"


def detect(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return ZSTD
    if head.startswith(b"\xfd7zXZ\x00"):
        return XZ
    if head.startswith(b"BZh"):
        return BZIP2
    return NONE


class Decompressor:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._obj = self._new()

    def _new(self) -> Any:
        if self.kind == GZIP:
            return _gzip_zlib.decompressobj(wbits=31)
        if self.kind == ZSTD:
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj()
        if self.kind == XZ:
            return lzma.LZMADecompressor()
        if self.kind == BZIP2:
            return bz2.BZ2Decompressor()
        return None

    def feed(self, data: bytes) -> bytes:
        if self._obj is None:
            return data
        out = []
        try:
            while data:
                out.append(self._obj.decompress(data))
                if self._obj.eof:
                    # Concatenated members (pigz, appended gzip streams) continue the same data.
                    data = self._obj.unused_data
                    if data.strip(b"\0"):
                        self._obj = self._new()
                    else:
                        data = b""
                else:
                    data = b""
        except (*_GZIP_ERRORS, lzma.LZMAError, OSError, EOFError) as e:
            raise InvalidArgument(f"corrupt {self.kind} stream: {e}") from None
        except Exception as e:  # zstandard.ZstdError
            if e.__class__.__name__ == "ZstdError":
                raise InvalidArgument(f"corrupt {self.kind} stream: {e}") from None
            raise
        return b"".join(out)

    def finish(self) -> bytes:
        if self._obj is None:
            return b""
        if not self._obj.eof:
            raise InvalidArgument(f"unexpected end of {self.kind} stream (truncated?)")
        return b""


def read_head(src: BinaryIO, n: int = 1 << 20) -> bytes:
    """Read up to ``n`` bytes, looping over short reads until at least 6 bytes or EOF."""
    buf = b""
    while len(buf) < 6:
        chunk = src.read(n)
        if not chunk:
            break
        buf += chunk
    return buf


def plain_chunks(src: BinaryIO, bufsize: int = 1 << 20) -> Iterator[bytes]:
    """Decompressed chunks of ``src`` (any supported format)."""
    head = read_head(src, bufsize)
    d = Decompressor(detect(head))
    chunk = head
    while chunk:
        out = d.feed(chunk)
        if out:
            yield out
        chunk = src.read(bufsize)
    d.finish()


class PlainReader:
    """A file-like ``read(n)`` over the decompressed bytes of ``src`` (any supported format).

    Raises InvalidArgument at the end if a compressed stream was truncated."""

    def __init__(self, src: BinaryIO, bufsize: int = 1 << 20) -> None:
        self._src, self._bufsize = src, bufsize
        head = read_head(src, bufsize)
        self.kind = detect(head)
        self._dec = Decompressor(self.kind)
        self._buf = bytearray(self._dec.feed(head)) if head else bytearray()
        self._eof = not head

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buf) < n):
            chunk = self._src.read(self._bufsize)
            if not chunk:
                self._eof = True
                self._dec.finish()
                break
            self._buf += self._dec.feed(chunk)
        if n < 0 or n >= len(self._buf):
            out = bytes(self._buf)
            self._buf.clear()
        else:
            out = bytes(self._buf[:n])
            del self._buf[:n]
        return out
