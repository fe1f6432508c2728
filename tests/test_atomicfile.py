"""dockyard.atomicfile: the old content or the new, fdatasync'ed before the rename when durable,
nothing left behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dockyard import atomicfile
from dockyard.atomicfile import write_atomic


def test_writes_and_replaces_leaving_no_temp_file(tmp_path: Path) -> None:
    p = tmp_path / "rec.json"
    write_atomic(p, b'{"a": 1}')
    assert p.read_bytes() == b'{"a": 1}'
    write_atomic(str(p), b'{"a": 2}', mode=0o600)
    assert p.read_bytes() == b'{"a": 2}'
    assert stat.S_IMODE(p.stat().st_mode) == 0o600 & ~_umask()
    assert os.listdir(tmp_path) == ["rec.json"]


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


@pytest.mark.parametrize("durable", [True, False])
def test_fdatasync_before_the_rename_only_when_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      durable: bool) -> None:
    calls: list[str] = []
    real_sync, real_replace = os.fdatasync, os.replace

    def sync(fd: int) -> None:
        calls.append("fdatasync")
        real_sync(fd)

    def replace(a: str, b: str) -> None:
        calls.append("replace")
        real_replace(a, b)

    monkeypatch.setattr(atomicfile.os, "fdatasync", sync)
    monkeypatch.setattr(atomicfile.os, "replace", replace)
    write_atomic(tmp_path / "r", b"x", durable=durable)
    assert calls == (["fdatasync", "replace"] if durable else ["replace"])


def test_a_failure_keeps_the_old_content_and_removes_the_temp_file(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "rec"
    p.write_bytes(b"old")

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomicfile.os, "fdatasync", broken)
    with pytest.raises(OSError, match="Input/output"):
        write_atomic(p, b"new")
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["rec"]


def test_short_writes_are_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(atomicfile.os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    write_atomic(tmp_path / "r", b"0123456789")
    assert (tmp_path / "r").read_bytes() == b"0123456789"
