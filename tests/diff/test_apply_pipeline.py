"""apply_layer's pipeline: short pipe writes, the pipe-size fallback, the writeback thread."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from dockyard.diff import apply as apply_mod
from dockyard.diff.apply import apply_layer
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.root


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


FILES = {f"d/f{i}": os.urandom(70_000 + i * 1000) for i in range(8)}  # spliced and read/written


def _check(target: Path, data: bytes, applied: Any) -> None:
    assert applied.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    for name, content in FILES.items():
        assert (target / name).read_bytes() == content


def test_short_pipe_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write(2) on a pipe returns early when a signal reaches the thread (SIGCHLD, a profiler):
    the rest must follow, or the extractor sees a torn stream."""
    data = _layer(FILES)
    real_write = os.write
    short = []

    def write(fd: int, b: Any) -> int:
        n = real_write(fd, b[:4096])
        short.append(n < len(b))
        return n

    monkeypatch.setattr(os, "write", write)
    applied = apply_layer(io.BytesIO(data), tmp_path, "overlay")
    monkeypatch.undo()
    assert any(short)
    _check(tmp_path, data, applied)


def test_a_refused_big_pipe_falls_back_to_1_mib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real_popen = subprocess.Popen

    def popen(*a: Any, **kw: Any) -> Any:
        sizes.append(kw["pipesize"])
        if kw["pipesize"] > apply_mod._BUF:
            raise PermissionError(1, "Operation not permitted")  # fs.pipe-max-size, no CAP_SYS_RESOURCE
        return real_popen(*a, **kw)

    monkeypatch.setattr(subprocess, "Popen", popen)
    data = _layer(FILES)
    applied = apply_layer(io.BytesIO(data), tmp_path, "naive")
    assert sizes == [apply_mod._PIPE, apply_mod._BUF]
    _check(tmp_path, data, applied)


def test_writeback_runs_in_the_background_and_is_joined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = apply_mod._syncfs

    def syncfs(path: Path) -> None:
        calls.append(path)
        real(path)

    monkeypatch.setattr(apply_mod, "_FLUSH_EVERY", 100_000)
    monkeypatch.setattr(apply_mod, "_syncfs", syncfs)
    data = _layer(FILES)

    class Slow(io.BytesIO):  # small reads: many chances to start a writeback
        def read(self, n: int | None = -1) -> bytes:
            return super().read(min(n if n is not None and n >= 0 else 1 << 30, 64 << 10))

    applied = apply_layer(Slow(data), tmp_path, "overlay")
    assert calls and all(p == tmp_path for p in calls)
    assert not any(t.name == "layer-writeback" for t in threading.enumerate())
    _check(tmp_path, data, applied)


class _Blob:
    """A file sink like the content store's Writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open(path, "wb")  # noqa: SIM115 - closed by the test
        self.flushes = 0

    def write(self, data: bytes | memoryview) -> None:
        self.f.write(data)

    def flush(self) -> None:
        self.f.flush()
        self.flushes += 1


def _spawned(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    argvs: list[list[str]] = []
    real_popen = subprocess.Popen

    def popen(argv: list[str], *a: Any, **kw: Any) -> Any:
        argvs.append(list(argv))
        return real_popen(argv, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return argvs


def test_uncompressed_layer_with_a_blob_is_extracted_from_the_blob_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No pipe: the extractor follows the blob file as it grows (totals on a control pipe),
    reading nothing the writer has not announced; small reads mean many totals."""
    argvs = _spawned(monkeypatch)
    data = _layer(FILES)

    class Slow(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            return super().read(min(n if n is not None and n >= 0 else 1 << 30, 50_000))

        def readinto(self, b: Any) -> int:  # apply_layer fills one buffer where it can
            return super().readinto(memoryview(b)[:50_000])

    target = tmp_path / "t"
    target.mkdir()
    blob = _Blob(tmp_path / "blob")
    applied = apply_layer(Slow(data), target, "overlay", blob=blob)
    blob.f.close()
    assert "--follow" in argvs[0]
    assert blob.flushes > 5
    assert blob.path.read_bytes() == data
    assert applied.sink_digest == applied.diff_id and applied.sink_size == len(data)
    _check(target, data, applied)


def test_compressed_layer_with_a_blob_goes_through_the_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    argvs = _spawned(monkeypatch)
    data = _layer(FILES)
    gz = gzip.compress(data, compresslevel=1)
    target = tmp_path / "t"
    target.mkdir()
    blob = _Blob(tmp_path / "blob")
    applied = apply_layer(io.BytesIO(gz), target, "overlay", blob=blob)
    blob.f.close()
    assert "--follow" not in argvs[0]
    assert blob.path.read_bytes() == gz  # stored as it came
    assert applied.sink_digest == "sha256:" + hashlib.sha256(gz).hexdigest()
    _check(target, data, applied)


def test_a_follower_that_fails_early_leaves_the_blob_whole_and_no_process(tmp_path: Path) -> None:
    """Garbage at the start: the extractor exits at once; the writer keeps storing and
    hashing to the end (the digest covers the whole stream) and reports the extractor's error."""
    junk = b"\x01" * 512 + os.urandom(3 << 20)
    target = tmp_path / "t"
    target.mkdir()
    blob = _Blob(tmp_path / "blob")
    with pytest.raises(InvalidArgument, match="invalid layer tar"):
        apply_layer(io.BytesIO(junk), target, "overlay", blob=blob)
    blob.f.close()
    assert blob.path.read_bytes() == junk
    assert not [c for c in _children() if "chroot_extract" in c]


def _children() -> list[str]:
    out = []
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            if ppid == me:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    out.append(f.read().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return out


def test_a_truncated_layer_in_a_blob_is_refused(tmp_path: Path) -> None:
    data = _layer(FILES)
    target = tmp_path / "t"
    target.mkdir()
    blob = _Blob(tmp_path / "blob")
    with pytest.raises(InvalidArgument, match="unexpected end of data"):
        apply_layer(io.BytesIO(data[:200_000]), target, "overlay", blob=blob)
    blob.f.close()


@pytest.mark.parametrize("offset", [0, 4096])
def test_a_regular_file_is_read_by_the_extractor_only_from_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offset: int
) -> None:
    """A stored blob unpacked again: the extractor follows the same file (no pipe); a file
    handed over at another position is piped as before (the extractor reads from 0)."""
    argvs = _spawned(monkeypatch)
    data = _layer(FILES)
    path = tmp_path / "layer"
    path.write_bytes(b"\0" * offset + data)
    target = tmp_path / "t"
    target.mkdir()
    with open(path, "rb") as f:
        f.seek(offset)
        applied = apply_layer(f, target, "overlay")
    assert ("--follow" in argvs[0]) == (offset == 0)
    _check(target, data, applied)
