"""The lean tar reader of chroot_extract: formats real layers use (GNU, PAX, base-256), the
splice path for big files, and hostile or broken input refused with the member named."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from dockyard.diff import chroot_extract as ce
from dockyard.diff.apply import apply_layer
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.root


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in members:
            if data is not None:
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _ti(name: str, kind: bytes = tarfile.REGTYPE, **kw: object) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def _apply(raw: bytes, target: Path, mode: str = "overlay") -> int:
    target.mkdir(exist_ok=True)
    return apply_layer(io.BytesIO(raw), target, mode).content_size


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_in_every_format(tmp_path: Path, fmt: int) -> None:
    deep = "/".join(["d" * 50] * 2) + "/" + "f" * 90  # > 100 chars: L record, PAX path or prefix
    link = "l" * 150 if fmt != tarfile.USTAR_FORMAT else "short"
    raw = _tar([(_ti(deep, mode=0o640, uid=7, gid=8, mtime=1_000_000), b"deep"),
                (_ti("sym", tarfile.SYMTYPE, linkname=link), None)], fmt)
    size = _apply(raw, tmp_path / "t")
    p = tmp_path / "t" / deep
    assert p.read_bytes() == b"deep"
    st = p.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == (0o640, 7, 8, 1_000_000)
    assert os.readlink(tmp_path / "t/sym") == link
    assert size == 4 + len(link)


def test_big_numbers_base256_and_pax(tmp_path: Path) -> None:
    """uid/gid beyond the octal field: GNU writes base-256, PAX writes a record."""
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        raw = _tar([(_ti("f", uid=3_000_000_000, gid=2_500_000_000), b"x")], fmt)
        t = tmp_path / str(fmt)
        _apply(raw, t)
        st = (t / "f").stat()
        assert (st.st_uid, st.st_gid) == (3_000_000_000, 2_500_000_000)


def test_big_file_is_spliced_whole_and_every_kind_is_made(tmp_path: Path) -> None:
    big = os.urandom(3 << 20) + b"tail"  # not a multiple of 512: padding after a splice
    fifo = _ti("p", tarfile.FIFOTYPE, mode=0o644)
    blk = _ti("dev/sda", tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0)
    raw = _tar([
        (_ti("big", mode=0o4755), big),
        (_ti("hard", tarfile.LNKTYPE, linkname="big", mode=0o4755), None),  # attrs go to the inode
        (fifo, None), (blk, None),
        (_ti("old-dir/", tarfile.AREGTYPE, mode=0o711), b""),  # a V7 directory: trailing slash
        (_ti("after", mode=0o644), b"after"),
    ])
    t = tmp_path / "t"
    assert _apply(raw, t) == len(big) + 5  # a hard link counts once
    assert hashlib.sha256((t / "big").read_bytes()).digest() == hashlib.sha256(big).digest()
    assert stat.S_IMODE((t / "big").stat().st_mode) == 0o4755  # set-id kept (chmod after chown)
    assert (t / "hard").stat().st_ino == (t / "big").stat().st_ino
    assert stat.S_ISFIFO((t / "p").lstat().st_mode)
    st = (t / "dev/sda").lstat()
    assert stat.S_ISBLK(st.st_mode) and os.major(st.st_rdev) == 8
    assert (t / "old-dir").is_dir() and stat.S_IMODE((t / "old-dir").stat().st_mode) == 0o711
    assert (t / "after").read_bytes() == b"after"


def test_directory_mtimes_survive_their_children(tmp_path: Path) -> None:
    raw = _tar([(_ti("d", tarfile.DIRTYPE, mode=0o755, mtime=12345), None), (_ti("d/f", mtime=99), b"1")])
    _apply(raw, tmp_path / "t")
    assert int((tmp_path / "t/d").stat().st_mtime) == 12345


def test_pax_xattrs_are_binary_safe_and_global_headers_ignored(tmp_path: Path) -> None:
    f = _ti("f")
    f.pax_headers = {"SCHILY.xattr.user.bin": "\udcff\x01z", "comment": "hi"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"path": "global-would-rename-everything"}) as tf:
        f.size = 1
        tf.addfile(f, io.BytesIO(b"1"))
    _apply(buf.getvalue(), tmp_path / "t")
    assert os.getxattr(tmp_path / "t/f", "user.bin") == b"\xff\x01z"
    assert os.listdir(tmp_path / "t") == ["f"]


def test_empty_layer_of_zero_blocks_is_accepted(tmp_path: Path) -> None:
    """docker's well-known empty layer is 1024 zero bytes."""
    assert _apply(b"\0" * 1024, tmp_path / "t") == 0
    assert os.listdir(tmp_path / "t") == []


def test_hard_link_to_a_symlink_links_the_symlink(tmp_path: Path) -> None:
    raw = _tar([(_ti("s", tarfile.SYMTYPE, linkname="/nowhere"), None),
                (_ti("h", tarfile.LNKTYPE, linkname="s"), None)])
    _apply(raw, tmp_path / "t")
    assert os.readlink(tmp_path / "t/h") == "/nowhere"


def _broken(kind: str) -> bytes:
    good = _tar([(_ti("a"), b"a" * 700), (_ti("big"), os.urandom(200_000))])
    if kind == "bad-checksum":
        return good[:148] + b"0000000\0" + good[156:]
    if kind == "garbage-second-header":
        return good[:1536] + b"\x01" * 512 + good[2048:]
    if kind == "truncated-big-file":
        return good[:1536 + 512 + 100_000]
    if kind == "truncated-small-file":
        return good[:512 + 300]
    if kind == "truncated-header":
        return good[:1536 + 200]
    if kind == "pax-then-eof":
        return _tar([(_ti("x" * 200), b"1")])[:1024]  # the PAX record, then nothing
    if kind == "bad-size-field":
        hdr = bytearray(good[:512])
        hdr[124:136] = b"zzzzzzzzzzz\0"
        hdr[148:156] = b" " * 8
        hdr[148:156] = b"%06o\0 " % sum(hdr)
        return bytes(hdr) + good[512:]
    if kind == "huge-pax-header":
        hdr = tarfile.TarInfo("././@PaxHeader")
        hdr.type, hdr.size = tarfile.XHDTYPE, 1 << 40  # nothing follows: refused before reading
        return hdr.tobuf(tarfile.GNU_FORMAT)  # base-256 size
    if kind == "unknown-type":
        return _tar([(_ti("m", b"Z"), b"")])
    if kind == "gnu-sparse":
        return _tar([(_ti("s", tarfile.GNUTYPE_SPARSE), b"")], tarfile.GNU_FORMAT)
    if kind == "hard-link-missing-target":
        return _tar([(_ti("h", tarfile.LNKTYPE, linkname="nope"), None)])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "bad-checksum", "garbage-second-header", "truncated-big-file", "truncated-small-file",
    "truncated-header", "pax-then-eof", "bad-size-field", "huge-pax-header", "unknown-type", "gnu-sparse",
    "hard-link-missing-target",
])
def test_broken_layers_are_refused(tmp_path: Path, kind: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        _apply(_broken(kind), tmp_path / "t")
    assert str(e.value)  # one line naming what went wrong


def test_member_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="'big'"):
        _apply(_broken("truncated-big-file"), tmp_path / "t")
    with pytest.raises(InvalidArgument, match="too large"):
        _apply(_broken("huge-pax-header"), tmp_path / "u")


def test_reader_without_splice_from_a_regular_file(tmp_path: Path) -> None:
    """stdin not a pipe (splice refused): the read/write fallback gives the same tree."""
    big = os.urandom(1 << 20)
    src = tmp_path / "l.tar"
    src.write_bytes(_tar([(_ti("d", tarfile.DIRTYPE, mode=0o755), None), (_ti("d/big"), big)]))
    t = tmp_path / "t"
    t.mkdir()
    with open(src, "rb") as f:
        cp = subprocess.run([sys.executable, "-I", "-S", ce.__file__, str(t), "overlay"], stdin=f,
                            capture_output=True, check=False)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == str(len(big)).encode()
    assert (t / "d/big").read_bytes() == big
