"""Content-addressed blob store.

On disk::

    <root>/
      blobs/sha256/<hex>     committed blobs, read-only by convention, named by their digest
      ingest/<random>        partial writes (a Writer's temp file); removed on abort, swept on open

Lifecycle of a write: :meth:`ContentStore.writer` -> ``Writer.write(...)`` (hashes as it
goes) -> ``Writer.commit(expected_digest=None, expected_size=None)`` verifies digest and size
and ``os.replace``-s the temp file into ``blobs/``; on any failure (or ``abort()`` / leaving the
``with`` block by an exception) the temp file is removed. A crash leaves at most a stray
file under ``ingest/``, which the next :class:`ContentStore` sweeps. A committed blob is
therefore always complete; writing the same content twice is harmless.

Batches (small blobs: configs, manifests, tiny layers): ``with store.batch() as b:
b.put(data)`` / ``b.writer()`` rename each blob into place without its own fsync, and the
batch ends with ONE ``syncfs`` of the store's filesystem (file data, inodes and directory
entries of every blob in the batch; about a quarter of the cost of 21 fsyncs here). Crash
safety rests on the order the callers keep: the record that makes a blob reachable (the image
row's SQLite commit) is written only after the batch has ended, so a crash inside a batch can
leave only unreferenced blobs (maybe short ones), and the image service's start-up ``gc``
deletes every unreferenced blob. A batch left by an exception does not sync (its blobs are as
unreferenced as a crash leaves them). ``put``/``writer`` outside a batch fsync each blob;
a big one has its writeback started every 8 MiB (``sync_file_range``) so the disk writes
while the caller still works (extracting a layer) and the commit's fsync has little left.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci.digest import Digest


class Writer:
    """An open ingest. Use as a context manager; commit() inside the block."""

    def __init__(self, store: ContentStore, *, hashed: bool = True, sync: bool = True) -> None:
        self._store = store
        self._hashed = hashed
        self._sync = sync  # False in a Batch: the batch syncs the filesystem once at its end
        self.path = store.root / "ingest" / secrets.token_hex(8)
        self._f = open(self.path, "xb")  # noqa: SIM115 - closed by commit/abort
        self._h = hashlib.sha256()
        self.size = 0
        self._kicked = 0  # bytes handed to writeback so far (see write)
        self.digest: str | None = None

    def write(self, data: bytes | memoryview) -> None:
        self._f.write(data)
        if self._hashed:
            self._h.update(data)
        self.size += len(data)
        if self._sync and self.size - self._kicked >= _KICK:
            # Start writeback of what is written so far without waiting for it, so the disk
            # works while the caller extracts/hashes the rest, and commit's fsync finds little
            # left to do (a 200 MB layer's fsync otherwise waits for the whole file at the end).
            self._f.flush()
            _start_writeback(self._f.fileno(), self._kicked, self.size - self._kicked)
            self._kicked = self.size

    def flush(self) -> None:
        """Hand what is written so far to the kernel (another reader of ``path`` sees it)."""
        self._f.flush()

    def copy_from(self, src: BinaryIO, bufsize: int = 1 << 20) -> None:
        while chunk := src.read(bufsize):
            self.write(chunk)

    def current_digest(self) -> str:
        return "sha256:" + self._h.hexdigest()

    def commit(self, expected_digest: str | None = None, expected_size: int | None = None) -> str:
        """Verify and move into place; return the digest. Raises InvalidArgument on mismatch.

        An unhashed writer trusts ``expected_digest`` (its caller hashed the same bytes)."""
        if not self._hashed:
            if expected_digest is None:
                self.abort()
                raise InvalidArgument("an unhashed write needs the expected digest")
            dgst = expected_digest
        else:
            dgst = self.current_digest()
        try:
            if expected_size is not None and expected_size != self.size:
                raise InvalidArgument(
                    f"content size mismatch: expected {expected_size} bytes, got {self.size}"
                )
            if expected_digest is not None and expected_digest != dgst:
                raise InvalidArgument(
                    f"content digest mismatch: expected {expected_digest}, got {dgst}"
                )
            self._f.flush()
            if self._sync:
                os.fsync(self._f.fileno())
            self._f.close()
            os.chmod(self.path, 0o444)
            os.replace(self.path, self._store.path(dgst))
        except BaseException:
            self.abort()
            raise
        self.digest = dgst
        return dgst

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.digest is None:
            self.abort()


class Batch:
    """Blobs written without a sync each; see the module docstring. From ContentStore.batch()."""

    def __init__(self, store: ContentStore) -> None:
        self._store = store
        self.written = 0

    def writer(self, *, hashed: bool = True) -> Writer:
        self.written += 1
        return Writer(self._store, hashed=hashed, sync=False)

    def put(self, data: bytes, expected_digest: str | None = None) -> str:
        self.written += 1  # a blob found present may be another batch's, not synced yet
        return self._store._put(data, expected_digest, self)


_libc: ctypes.CDLL | None = None
_KICK = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """sync_file_range(SYNC_FILE_RANGE_WRITE): queue the range for writeback, return at once.

    Only a hint (it makes nothing durable: commit's fsync does); failures are ignored."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    try:
        fn = _libc.sync_file_range
    except AttributeError:
        return
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _syncfs(path: Path) -> None:
    """Flush the filesystem holding ``path`` (Linux syncfs(2); os.sync where it is missing)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs({path}): {os.strerror(err)}")
    except AttributeError:
        os.sync()
    finally:
        os.close(fd)


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        ingest = self.root / "ingest"
        # Partial writes of a previous process are garbage: nobody can resume them.
        shutil.rmtree(ingest, ignore_errors=True)
        ingest.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        d = Digest.parse(digest)
        if d.algorithm != "sha256":
            raise InvalidArgument(f"unsupported digest algorithm {d.algorithm!r}")
        return self.root / "blobs" / "sha256" / d.hex

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def writer(self, *, hashed: bool = True) -> Writer:
        """A new ingest. ``hashed=False``: the caller hashes and passes the digest to commit."""
        return Writer(self, hashed=hashed)

    def put(self, data: bytes, expected_digest: str | None = None) -> str:
        return self._put(data, expected_digest, None)

    def _put(self, data: bytes, expected_digest: str | None, batch: Batch | None) -> str:
        dgst = "sha256:" + hashlib.sha256(data).hexdigest()
        if expected_digest is not None and expected_digest != dgst:
            raise InvalidArgument(f"content digest mismatch: expected {expected_digest}, got {dgst}")
        if self.exists(dgst):
            # In a batch this may be another batch's blob, not synced yet: syncfs covers it too.
            return dgst
        with (batch.writer() if batch is not None else self.writer()) as w:
            w.write(data)
            return w.commit()

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """Write small blobs with one filesystem sync at the end (see the module docstring).

        The caller records (makes reachable) the blobs only after the ``with`` block."""
        b = Batch(self)
        yield b
        if b.written:
            self.sync()

    def sync(self) -> None:
        """Make every blob written so far durable (one syncfs of the store's filesystem)."""
        _syncfs(self.root / "blobs" / "sha256")

    def adopt(self, path: Path, digest: str) -> None:
        """Move a file that the caller has already hashed (same filesystem) into the store.

        The caller vouches for ``digest`` (it hashed the bytes while writing them)."""
        os.chmod(path, 0o444)
        os.replace(path, self.path(digest))

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def walk(self) -> Iterator[tuple[str, int]]:
        """Every committed blob as (digest, size)."""
        for e in os.scandir(self.root / "blobs" / "sha256"):
            yield "sha256:" + e.name, e.stat().st_size

    def scratch_dir(self) -> Path:
        """A private directory under ingest/ (same filesystem as blobs/) for the caller to remove."""
        p = self.root / "ingest" / ("d-" + secrets.token_hex(8))
        p.mkdir()
        return p
