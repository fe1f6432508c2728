"""Content store batches: small blobs without an fsync each, one syncfs at the end."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dockyard.content import store as store_mod
from dockyard.content.store import ContentStore
from dockyard.errors import InvalidArgument


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    n = {"fsync": 0, "syncfs": 0}
    real_fsync, real_syncfs = os.fsync, store_mod._syncfs

    def fsync(fd: int) -> None:
        n["fsync"] += 1
        real_fsync(fd)

    def syncfs(p: Path) -> None:
        n["syncfs"] += 1
        real_syncfs(p)  # the real syscall: it must work on this filesystem

    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    monkeypatch.setattr(store_mod, "_syncfs", syncfs)
    return n


def test_batch_syncs_once(tmp_path: Path, counted: dict[str, int]) -> None:
    cs = ContentStore(tmp_path)
    blobs = [f"blob {i}".encode() for i in range(21)]
    with cs.batch() as b:
        digests = [b.put(x) for x in blobs]
        with b.writer() as w:
            w.write(b"streamed")
            digests.append(w.commit())
        assert counted == {"fsync": 0, "syncfs": 0}
    assert counted == {"fsync": 0, "syncfs": 1}
    assert digests == [_sha(x) for x in [*blobs, b"streamed"]]
    for d, x in zip(digests, [*blobs, b"streamed"], strict=True):
        assert cs.read(d) == x
    assert list((tmp_path / "ingest").iterdir()) == []


def test_outside_a_batch_each_blob_is_fsynced(tmp_path: Path, counted: dict[str, int]) -> None:
    cs = ContentStore(tmp_path)
    cs.put(b"a")
    cs.put(b"b")
    cs.put(b"a")  # present: not written again
    assert counted == {"fsync": 2, "syncfs": 0}


def test_empty_batch_does_not_sync_and_failed_batch_does_not_sync(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    cs = ContentStore(tmp_path)
    with cs.batch():
        pass
    with pytest.raises(InvalidArgument), cs.batch() as b:
        b.put(b"x")
        b.put(b"y", expected_digest=_sha(b"not y"))
    assert counted["syncfs"] == 0
    assert not cs.exists(_sha(b"y"))
    assert list((tmp_path / "ingest").iterdir()) == []


def test_batch_put_of_a_present_blob_still_syncs(tmp_path: Path, counted: dict[str, int]) -> None:
    # It may be another batch's blob that is not durable yet; the caller is about to record it.
    cs = ContentStore(tmp_path)
    cs.put(b"a")
    with cs.batch() as b:
        b.put(b"a")
    assert counted["syncfs"] == 1


def test_big_blob_writeback_is_started_early_and_fsynced_once(
    tmp_path: Path, counted: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    kicks: list[tuple[int, int]] = []
    real = store_mod._start_writeback

    def spy(fd: int, off: int, n: int) -> None:
        kicks.append((off, n))
        real(fd, off, n)  # the real syscall: it must not disturb the write

    monkeypatch.setattr(store_mod, "_start_writeback", spy)
    cs = ContentStore(tmp_path)
    chunk = os.urandom(1 << 20)
    h = hashlib.sha256()
    with cs.writer() as w:
        for _ in range(20):
            w.write(chunk)
            h.update(chunk)
        d = w.commit()
    assert d == "sha256:" + h.hexdigest()
    assert kicks == [(0, 8 << 20), (8 << 20, 8 << 20)]  # contiguous, each range once
    assert counted["fsync"] == 1
    assert cs.read(d) == chunk * 20
