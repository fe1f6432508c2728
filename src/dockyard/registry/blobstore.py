"""Content-addressed blobs shared by all repositories: ``blobs/<alg>/<hex>``.

Lifecycle: bytes arrive in an upload file (``uploads.py``) or in memory (manifests); ``commit_file``
/ ``put_bytes`` verify digest and size, sync the file and then ``os.replace`` it into place, so a
blob is either absent or complete, after a power loss too. Committing the same digest twice
(concurrent uploads) is harmless: both files hold the same bytes and the last rename wins. Only
``gc`` deletes blobs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import Digest
from dockyard.registry.errcodes import DigestInvalid, SizeInvalid
from dockyard.registry.fsutil import atomic_write
from dockyard.registry.layout import Layout


class BlobStore:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def path(self, d: Digest) -> Path:
        return self.layout.blob(d)

    def size(self, d: Digest) -> int | None:
        """Size of the blob, or None when it does not exist."""
        try:
            return os.stat(self.layout.blob(d)).st_size
        except FileNotFoundError:
            return None

    def read(self, d: Digest) -> bytes | None:
        try:
            return self.layout.blob(d).read_bytes()
        except FileNotFoundError:
            return None

    def put_bytes(self, data: bytes, d: Digest) -> None:
        """Store small content (a manifest) whose digest the caller already checked."""
        if self.size(d) == len(data):
            return
        atomic_write(self.layout.blob(d), data)

    def commit_file(self, src: Path, d: Digest, actual: Digest, expected_size: int | None,
                    actual_size: int) -> None:
        """Move the verified upload file ``src`` into place as blob ``d``.

        ``actual`` is the digest the caller computed over ``src``; a mismatch raises
        DigestInvalid and leaves the blob store untouched (the caller keeps or drops ``src``).
        """
        if actual != d:
            raise DigestInvalid(f"digest mismatch: content is {actual}, client said {d}",
                                detail={"expected": str(d), "actual": str(actual)})
        if expected_size is not None and expected_size != actual_size:
            raise SizeInvalid(f"size mismatch: got {actual_size} bytes, expected {expected_size}")
        dest = self.layout.blob(d)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # The data reaches the disk before the name does (Distribution syncs on commit too):
        # after a power loss a blob is absent or whole, never a valid name over lost pages.
        fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        os.replace(src, dest)

    def delete(self, d: Digest) -> bool:
        try:
            os.unlink(self.layout.blob(d))
            return True
        except FileNotFoundError:
            return False

    def all(self) -> Iterator[tuple[Digest, Path]]:
        """Every stored blob (temp files skipped)."""
        for alg_dir in sorted(self.layout.blobs.glob("*")):
            if alg_dir.name not in hashlib.algorithms_available:
                continue
            for f in alg_dir.iterdir():
                if f.name.startswith(".tmp-"):
                    continue
                try:
                    yield Digest.parse(f"{alg_dir.name}:{f.name}"), f
                except InvalidArgument:  # a stray file that is not a blob: leave it alone
                    continue


def hash_file(path: Path, algorithm: str) -> tuple[Digest, int]:
    h = hashlib.new(algorithm)
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return Digest(algorithm, h.hexdigest()), n
