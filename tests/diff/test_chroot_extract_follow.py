"""chroot_extract's FileSource: reads of a blob file that grows, bounded by the totals the
writer sends on a control pipe (8-byte little-endian, possibly split across reads)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from dockyard.diff import chroot_extract as ce


def _source(tmp_path: Path, data: bytes) -> tuple[ce.FileSource, int, int]:
    p = tmp_path / "blob"
    p.write_bytes(data)
    fd = os.open(p, os.O_RDONLY)
    r, w = os.pipe()
    return ce.FileSource(fd, r), w, fd


def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def test_reads_wait_for_totals_even_when_they_arrive_in_pieces(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes, all in the file from the start
    src, w, fd = _source(tmp_path, data)

    def writer() -> None:
        # 1000, split inside the message; then 10240 and EOF.
        msg = (1000).to_bytes(8, "little") + (10240).to_bytes(8, "little")
        for part in (msg[:3], msg[3:11], msg[11:]):
            os.write(w, part)
            time.sleep(0.01)  # ordering only: the reader sees partial messages
        os.close(w)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert src.read_exact(600, "a") == data[:600]
        assert src.read_header() == data[600:1112]
        src.skip(128, "b")
        out = tmp_path / "out"
        with open(out, "wb") as f:
            src.copy_to(f.fileno(), 9000, "c")
        assert out.read_bytes() == data[1240:10240]
        assert src.read_header() == b""  # the final total reached: a clean EOF
        src.drain()
    finally:
        t.join()
        _close(fd, src._ctl)


def test_nothing_past_the_final_total_is_read(tmp_path: Path) -> None:
    """The file holds more than the writer announced (a later chunk not yet flushed, say):
    those bytes do not exist for the reader, so a member reaching into them is truncated."""
    src, w, fd = _source(tmp_path, b"x" * 4096)
    os.write(w, (1000).to_bytes(8, "little"))
    os.close(w)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        with pytest.raises(ce.BadTar, match="unexpected end of data in m"):
            src.read_exact(1001, "m")
        with pytest.raises(ce.BadTar, match="unexpected end of data in h"):
            src.copy_to(null, 1001, "h")
    finally:
        _close(fd, src._ctl, null)


def test_a_partial_header_at_the_end_is_truncated_not_eof(tmp_path: Path) -> None:
    src, w, fd = _source(tmp_path, b"\1" * 700)
    os.write(w, (700).to_bytes(8, "little"))
    os.close(w)
    try:
        assert len(src.read_header()) == 512
        with pytest.raises(ce.BadTar, match="truncated header"):
            src.read_header()
    finally:
        _close(fd, src._ctl)


def test_copy_falls_back_to_read_write_when_copy_file_range_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 << 20)
    src, w, fd = _source(tmp_path, data)
    os.write(w, len(data).to_bytes(8, "little"))
    os.close(w)

    def refuse(*a: object, **kw: object) -> int:
        raise OSError(18, "Invalid cross-device link")  # EXDEV

    monkeypatch.setattr(os, "copy_file_range", refuse)
    out = tmp_path / "out"
    try:
        with open(out, "wb") as f:
            src.copy_to(f.fileno(), len(data), "big")
        assert out.read_bytes() == data
    finally:
        _close(fd, src._ctl)
