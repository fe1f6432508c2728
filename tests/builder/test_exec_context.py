"""Build context (tar index + spool, directory) and build cache logic: no root needed."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from dockyard.builder.cache import BuildCache, slot_of, step_key
from dockyard.builder.context import DirContext, TarContext
from dockyard.errors import InvalidArgument


def _tar(members: list[tuple[str, object]], fmt: int = tarfile.PAX_FORMAT, mtime: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.mtime = mtime
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif isinstance(data, str) and data.startswith("->"):
                ti.type, ti.linkname = tarfile.SYMTYPE, data[2:]
                tf.addfile(ti)
            elif isinstance(data, str) and data.startswith("=>"):
                ti.type, ti.linkname = tarfile.LNKTYPE, data[2:]
                tf.addfile(ti)
            else:
                assert isinstance(data, bytes)
                ti.size, ti.mode = len(data), 0o640
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _load(data: bytes, tmp_path: Path, dockerfile: str = "Dockerfile") -> TarContext:
    return TarContext.load(io.BytesIO(data), tmp_path, dockerfile)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_index_names_links_and_content(tmp_path: Path, fmt: int) -> None:
    long = "d/" + "x" * 90 + "/" + "y" * 60 + ".txt"
    ctx = _load(_tar([("d", None), (long, b"long"), ("a.txt", b"hello"), ("l", "->a.txt"),
                      ("h", "=>a.txt")], fmt), tmp_path)
    assert ctx.kind(long) == "file" and ctx.read_file(long) == b"long"
    assert ctx.kind("l") == "link" and ctx.resolve("l") == "a.txt"
    assert ctx.read_file("h") == b"hello" and ctx.mode("a.txt") == 0o640
    assert ctx.listdir("") == ["a.txt", "d", "h", "l"]
    root = ctx.host_root()
    assert (root / long).read_bytes() == b"long" and os.readlink(root / "l") == "a.txt"
    assert (root / "a.txt").stat().st_mode & 0o777 == 0o640
    ctx.close()


def test_tar_gzip_and_names_cannot_leave_the_root(tmp_path: Path) -> None:
    data = gzip.compress(_tar([("../../up.txt", b"u"), ("/abs/x", b"a")]))
    ctx = _load(data, tmp_path)
    assert ctx.kind("up.txt") == "file" and ctx.kind("abs/x") == "file"
    root = ctx.host_root()
    assert (root / "up.txt").read_bytes() == b"u"
    assert not (tmp_path.parent / "up.txt").exists()
    # an absolute symlink resolves inside the context, never to the host
    ctx2 = _load(_tar([("etc", "->/"), ("passwd", b"ctx")]), tmp_path)
    assert ctx2.resolve("etc/passwd") == "passwd"


def test_tar_refuses_writes_through_symlinks_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="parent is not a directory"):
        _load(_tar([("l", "->/tmp"), ("l/planted", b"x")]), tmp_path)
    with pytest.raises(InvalidArgument, match="hard link"):
        _load(_tar([("h", "=>/etc/passwd")]), tmp_path)
    bad = bytearray(_tar([("a", b"a")]))
    bad[0] ^= 0xFF  # header checksum no longer matches
    with pytest.raises(InvalidArgument, match="checksum"):
        _load(bytes(bad), tmp_path)


def test_dockerignore_and_digests(tmp_path: Path) -> None:
    members = [(".dockerignore", b"*.log\nDockerfile\n"), ("Dockerfile", b"FROM x"), ("a.log", b"l"),
               ("src", None), ("src/k.txt", b"k")]
    ctx = _load(_tar(members, mtime=1), tmp_path)
    assert ctx.excluded("a.log") and ctx.excluded("Dockerfile") and not ctx.excluded("src/k.txt")
    assert ctx.read_file("Dockerfile") == b"FROM x"  # still readable by the builder itself
    assert ctx.walk("") == ["", ".dockerignore", "src", "src/k.txt"]
    d1, entries = ctx.digest_of("src")
    # same content, other mtimes: same digest; other content: different
    d2, _ = _load(_tar(members, mtime=99), tmp_path).digest_of("src")
    changed = [m if m[0] != "src/k.txt" else ("src/k.txt", b"K") for m in members]
    d3, _ = _load(_tar(changed), tmp_path).digest_of("src")
    assert d1 == d2 != d3 and entries["src/k.txt"].startswith("f 640 ")
    assert ctx.glob("src/*.txt") == ["src/k.txt"] and ctx.glob("*.log") == []


def test_dir_context_matches_tar_context(tmp_path: Path) -> None:
    d = tmp_path / "ctx"
    (d / "src").mkdir(parents=True)
    (d / "src" / "k.txt").write_bytes(b"k")
    (d / "src" / "k.txt").chmod(0o640)
    (d / "src").chmod(0o755)
    dctx = DirContext(d)
    tctx = _load(_tar([("src", None), ("src/k.txt", b"k")]), tmp_path)
    assert dctx.digest_of("src")[0] == tctx.digest_of("src")[0]
    with pytest.raises(InvalidArgument):
        DirContext(tmp_path / "missing")


def test_cache_lookup_record_and_miss_reason(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "b")
    inputs = {"instruction": "COPY a /a", "file:a": "f 644 111"}
    key = step_key("sha256:p", inputs)
    assert cache.lookup(key, lambda i: True) is None
    cache.record(key, slot_of("sha256:p", "COPY"), inputs, "sha256:img")
    assert cache.lookup(key, lambda i: True) == "sha256:img"
    assert cache.lookup(key, lambda i: False) is None  # image gone: entry dropped
    assert cache.usage()[0] == 0
    cache.record(key, slot_of("sha256:p", "COPY"), inputs, "sha256:img")
    changed = dict(inputs, **{"file:a": "f 644 222"})
    assert step_key("sha256:p", changed) != key
    slot = slot_of("sha256:p", "COPY")
    assert cache.explain_miss(slot, changed) == "content of a changed"
    assert cache.explain_miss(slot, dict(inputs, **{"file:b": "f 644 1"})) == "b was added"
    assert cache.explain_miss(slot, dict(inputs, instruction="COPY b /b")) == "the instruction changed"
    assert cache.explain_miss(slot_of("sha256:other", "COPY"), inputs) is None
