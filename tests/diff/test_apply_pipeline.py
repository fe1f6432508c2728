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
