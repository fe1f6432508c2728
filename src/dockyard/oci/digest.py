"""Content digests (``algorithm:hex``) as the OCI image spec defines them.

Pure data, no I/O beyond hashing streams handed in. sha256 and sha512 are supported.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.errors import InvalidArgument

_HEX_LEN = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, s: str) -> Digest:
        """Parse ``sha256:<64 hex>``; raise InvalidArgument naming the bad value."""
        m = _DIGEST_RE.match(s)
        if not m:
            raise InvalidArgument(f"invalid digest {s!r}")
        alg, hx = m.group(1), m.group(2)
        if alg not in _HEX_LEN:
            raise InvalidArgument(f"unsupported digest algorithm {alg!r}")
        if len(hx) != _HEX_LEN[alg] or not re.fullmatch(r"[0-9a-f]+", hx):
            raise InvalidArgument(f"invalid {alg} digest {s!r}")
        return cls(alg, hx)

    @classmethod
    def of_bytes(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    @classmethod
    def of_stream(cls, f: BinaryIO, algorithm: str = "sha256", bufsize: int = 1 << 20) -> Digest:
        h = hashlib.new(algorithm)
        while chunk := f.read(bufsize):
            h.update(chunk)
        return cls(algorithm, h.hexdigest())

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    @property
    def short(self) -> str:
        """The 12-hex-character id docker prints."""
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"
