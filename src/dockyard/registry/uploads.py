"""Blob upload sessions: POST starts one, PATCH appends in order, PUT ?digest= commits.

Lifecycle of ``_uploads/<uuid>/``::

    start() ──> data (empty), startedat ──append()*──> data grows ──finish(digest)──> verified,
                                                                  os.replace(data -> blobs/..),
                                                                  session dir removed
                                         cancel() / digest mismatch ──> session dir removed

The running hash is kept in memory next to the offset so that finishing a 200 MB upload does not
re-read it; after a restart (no in-memory state) ``finish`` re-hashes the file. A failed append
(client gone mid-chunk) truncates ``data`` back to where the chunk began and restores the hash,
so the session stays resumable. One asyncio lock per session serialises PATCH/PUT on it.
A crash at any point leaves nothing visible: only ``finish`` creates the blob, by rename.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
import uuid as uuidlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from dockyard.oci.digest import Digest
from dockyard.registry.blobstore import BlobStore, hash_file
from dockyard.registry.errcodes import BlobUploadInvalid, BlobUploadUnknown, RangeInvalid
from dockyard.registry.fsutil import atomic_write, remove_tree_quiet
from dockyard.registry.layout import Layout

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_RANGE_RE = re.compile(r"^(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?$")
SUPPORTED_ALGORITHMS = ("sha256", "sha512")


@dataclass(frozen=True)
class UploadStatus:
    name: str
    uuid: str
    size: int  # bytes received so far


@dataclass
class _Live:
    hasher: hashlib._Hash
    size: int
    lock: asyncio.Lock


def parse_content_range(value: str) -> tuple[int, int]:
    """``start-end`` (inclusive) from a Content-Range header; RangeInvalid when malformed."""
    m = _RANGE_RE.match(value.strip())
    if not m:
        raise RangeInvalid(f"invalid Content-Range {value!r}")
    start, end = int(m.group(1)), int(m.group(2))
    if end < start:
        raise RangeInvalid(f"invalid Content-Range {value!r}: end before start")
    return start, end


class Uploads:
    def __init__(self, layout: Layout, blobs: BlobStore) -> None:
        self.layout = layout
        self.blobs = blobs
        self._live: dict[str, _Live] = {}

    def _dir(self, name: str, uuid: str) -> Path:
        if not _UUID_RE.match(uuid):
            raise BlobUploadUnknown(f"unknown upload {uuid!r}")
        d = self.layout.upload(name, uuid)
        if not (d / "data").exists():
            raise BlobUploadUnknown(f"upload {uuid} unknown in repository {name}")
        return d

    def start(self, name: str, algorithm: str = "sha256") -> UploadStatus:
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise BlobUploadInvalid(f"unsupported digest-algorithm {algorithm!r}")
        uuid = str(uuidlib.uuid4())
        d = self.layout.upload(name, uuid)
        d.mkdir(parents=True)
        atomic_write(d / "startedat", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode())
        (d / "data").touch()
        self._live[uuid] = _Live(hashlib.new(algorithm), 0, asyncio.Lock())
        return UploadStatus(name, uuid, 0)

    def _live_for(self, name: str, uuid: str) -> _Live:
        d = self._dir(name, uuid)
        live = self._live.get(uuid)
        if live is None:
            # The server restarted since the session began: rebuild the hash from the file.
            h, n = hashlib.sha256(), 0
            with open(d / "data", "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                    n += len(chunk)
            live = self._live[uuid] = _Live(h, n, asyncio.Lock())
        return live

    def status(self, name: str, uuid: str) -> UploadStatus:
        self._dir(name, uuid)
        size = os.stat(self.layout.upload(name, uuid) / "data").st_size
        return UploadStatus(name, uuid, size)

    async def append(self, name: str, uuid: str, chunks: AsyncIterator[bytes],
                     content_range: str | None, content_length: int | None) -> UploadStatus:
        live = self._live_for(name, uuid)
        async with live.lock:
            await self._append_locked(name, uuid, live, chunks, content_range, content_length)
            return UploadStatus(name, uuid, live.size)

    async def _append_locked(self, name: str, uuid: str, live: _Live,
                             chunks: AsyncIterator[bytes], content_range: str | None,
                             content_length: int | None) -> int:
        expected: int | None = content_length
        if content_range is not None:
            start, end = parse_content_range(content_range)
            if start != live.size:
                raise RangeInvalid(
                    f"chunk starts at {start}, upload is at {live.size}",
                    detail={"range": live.size})
            expected = end - start + 1
            if content_length is not None and content_length != expected:
                raise RangeInvalid(
                    f"Content-Length {content_length} does not match Content-Range {content_range}")
        path = self.layout.upload(name, uuid) / "data"
        before_size, before_hash = live.size, live.hasher.copy()
        written = 0
        try:
            with open(path, "r+b") as f:
                f.seek(live.size)
                async for chunk in chunks:
                    f.write(chunk)
                    live.hasher.update(chunk)
                    written += len(chunk)
            if expected is not None and written != expected:
                raise BlobUploadInvalid(f"received {written} bytes, expected {expected}")
        except BaseException:
            # Undo the partial chunk so the session stays consistent and resumable.
            os.truncate(path, before_size)
            live.size, live.hasher = before_size, before_hash
            raise
        live.size += written
        return written

    async def finish(self, name: str, uuid: str, digest: Digest, chunks: AsyncIterator[bytes],
                     content_range: str | None, content_length: int | None) -> int:
        """Append the optional last chunk, verify, commit the blob; return its size.

        On a digest or size mismatch the session is removed (nothing left behind) and the
        error propagates.
        """
        live = self._live_for(name, uuid)
        async with live.lock:
            # Content-Length absent means a chunked body: maybe data, so read it.
            if content_range is not None or content_length != 0:
                await self._append_locked(name, uuid, live, chunks, content_range, content_length)
            d = self.layout.upload(name, uuid)
            if live.hasher.name == digest.algorithm:
                actual = Digest(digest.algorithm, live.hasher.hexdigest())
                size = live.size
            else:
                actual, size = hash_file(d / "data", digest.algorithm)
            try:
                self.blobs.commit_file(d / "data", digest, actual, None, size)
            finally:
                self._forget(name, uuid)
            return size

    def cancel(self, name: str, uuid: str) -> None:
        self._dir(name, uuid)
        self._forget(name, uuid)

    def discard(self, name: str, uuid: str) -> None:
        """Drop a session whether or not it still exists (cleanup after a failure)."""
        self._forget(name, uuid)

    def _forget(self, name: str, uuid: str) -> None:
        self._live.pop(uuid, None)
        remove_tree_quiet(self.layout.upload(name, uuid))
