"""TarWriter: what it writes is read back by tarfile and GNU tar exactly as meant."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockyard.diff.tarwriter import RECORD, TarWriter


def _write(base: Path, names: list[str]) -> bytes:
    buf = io.BytesIO()
    tw = TarWriter(buf)
    for n in names:
        tw.add(str(base / n), n)
    tw.close()
    return buf.getvalue()


def test_entries_round_trip_through_tarfile(tmp_path: Path) -> None:
    base = tmp_path / "b"
    base.mkdir()
    (base / "d").mkdir(mode=0o750)
    (base / "d" / "f").write_bytes(b"x" * 1000)
    os.chmod(base / "d" / "f", 0o4755)
    os.utime(base / "d" / "f", ns=(0, 1_700_000_000_900_000_000))
    os.symlink("../d/f", base / "d" / "ln")
    long = "l" * 150
    (base / long).write_text("long")
    os.symlink("t" * 180, base / "longlink")
    (base / "ünï").write_text("u")
    os.mkfifo(base / "fifo")
    data = _write(base, ["d", "d/f", "d/ln", long, "longlink", "ünï", "fifo"])
    assert len(data) % RECORD == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        ms = {m.name: m for m in tf}
        assert ms["d"].isdir() and ms["d"].mode == 0o750
        f = ms["d/f"]
        assert f.isreg() and f.size == 1000 and f.mode == 0o4755 and f.mtime == 1_700_000_000
        assert tf.extractfile(f).read() == b"x" * 1000  # type: ignore[union-attr]
        assert ms["d/ln"].issym() and ms["d/ln"].linkname == "../d/f"
        assert tf.extractfile(ms[long]).read() == b"long"  # type: ignore[union-attr]
        assert ms["longlink"].linkname == "t" * 180
        assert tf.extractfile(ms["ünï"]).read() == b"u"  # type: ignore[union-attr]
        assert ms["fifo"].isfifo()
        assert all(m.uname == "" and m.gname == "" for m in ms.values())
        # no PAX record where none is needed (whole-second mtimes, short ASCII names)
        assert ms["d/f"].pax_headers == {}


def test_hard_links_xattrs_ids_and_markers(tmp_path: Path) -> None:
    base = tmp_path / "b"
    base.mkdir()
    (base / "a").write_text("same")
    os.link(base / "a", base / "b")
    os.setxattr(base / "a", "user.k", b"\xff\x00v")
    try:
        os.setxattr(base / "a", "trusted.overlay.origin", b"x")
    except OSError:
        pass  # not root: the overlay xattr isn't there to be skipped anyway
    if os.geteuid() == 0:
        os.chown(base / "b", 3_000_000, 5)
    buf = io.BytesIO()
    tw = TarWriter(buf)
    assert tw.add(str(base / "a"), "a") == 4
    assert tw.add(str(base / "b"), "b") == 0  # hard links count once
    tw.add_marker("dir/.wh.gone")
    tw.close()
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        ms = {m.name: m for m in tf}
    assert ms["b"].islnk() and ms["b"].linkname == "a"
    assert ms["a"].pax_headers.get("SCHILY.xattr.user.k").encode("utf-8", "surrogateescape") == b"\xff\x00v"
    assert not any("overlay" in k for k in ms["a"].pax_headers)
    if os.geteuid() == 0:
        assert ms["a"].uid == 3_000_000  # too big for the octal field: a PAX record
    wh = ms["dir/.wh.gone"]
    assert wh.isreg() and wh.size == 0 and wh.mtime == 0 and wh.mode == 0o644


def test_gnu_tar_reads_it(tmp_path: Path) -> None:
    if subprocess.run(["tar", "--version"], capture_output=True).returncode != 0:
        pytest.skip("no tar program")
    base = tmp_path / "b"
    (base / "x" / ("deep" * 40)).mkdir(parents=True)
    (base / "x" / ("deep" * 40) / "f").write_text("deep")
    names = ["x", "x/" + "deep" * 40, "x/" + "deep" * 40 + "/f"]
    (tmp_path / "l.tar").write_bytes(_write(base, names))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-C", str(out), "-xf", str(tmp_path / "l.tar")], check=True)
    assert (out / "x" / ("deep" * 40) / "f").read_text() == "deep"


def test_a_file_that_shrinks_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("abc")
    tw = TarWriter(io.BytesIO())
    st = os.lstat(tmp_path / "f")
    with pytest.raises(OSError, match="shrank"):
        tw._copy(str(tmp_path / "f"), st.st_size + 10)
