"""The COPY file cache: one immutable inode per (content, attributes), linked into layers."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from dockyard.builder.linkcache import LinkCache


def _writer(data: bytes):  # type: ignore[no-untyped-def]
    def write(fd: int) -> None:
        os.write(fd, data)
    return write


def test_link_reuses_one_inode_per_content_and_attributes(tmp_path: Path) -> None:
    c = LinkCache(tmp_path / "files")
    d = tmp_path / "layer"
    d.mkdir()
    assert c.usable_for(d)
    used: set[str] = set()
    uid, gid = os.getuid(), os.getgid()
    assert c.link(str(d / "a"), "sha256:1", 0o640, uid, gid, 1_600_000_000, _writer(b"one"), used)
    st = os.lstat(d / "a")
    assert (d / "a").read_bytes() == b"one" and st.st_mode & 0o7777 == 0o640
    assert st.st_mtime == 1_600_000_000 and st.st_nlink == 2  # the cache's name and this one
    # the same file again in the same step: refused (two paths must not become one file)
    assert not c.link(str(d / "b"), "sha256:1", 0o640, uid, gid, 1_600_000_000, _writer(b"one"), used)
    # another step links the same inode without writing anything
    d2 = tmp_path / "layer2"
    d2.mkdir()
    never = _writer(b"WRONG")
    assert c.link(str(d2 / "a"), "sha256:1", 0o640, uid, gid, 1_600_000_000, never, set())
    assert os.lstat(d2 / "a").st_ino == st.st_ino and (d2 / "a").read_bytes() == b"one"
    # other attributes: another inode
    assert c.link(str(d2 / "x"), "sha256:1", 0o644, uid, gid, 1_600_000_000, _writer(b"one"), set())
    assert os.lstat(d2 / "x").st_ino != st.st_ino
    # an existing destination is never overwritten
    assert not c.link(str(d2 / "x"), "sha256:2", 0o644, uid, gid, 1, _writer(b"two"), set())


def test_prune_keeps_only_linked_files(tmp_path: Path) -> None:
    c = LinkCache(tmp_path / "files")
    d = tmp_path / "layer"
    d.mkdir()
    uid, gid = os.getuid(), os.getgid()
    c.link(str(d / "keep"), "sha256:k", 0o644, uid, gid, 1, _writer(b"k"), set())
    c.link(str(d / "gone"), "sha256:g", 0o644, uid, gid, 1, _writer(b"gg"), set())
    (tmp_path / "files" / "tmp-stray").write_text("x")
    os.unlink(d / "gone")  # the layer that used it was removed
    assert c.prune() == 2 + 1
    assert len(os.listdir(tmp_path / "files")) == 1 and (d / "keep").read_bytes() == b"k"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path):  # type: ignore[no-untyped-def]
    from builder_exec_fixtures import make_env

    yield from make_env(tmp_path_factory, busybox_rootfs)


@pytest.mark.root
def test_no_cache_rebuild_links_files_and_layers_stay_right(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from builder_exec_fixtures import no_leftovers

    c = tmp_path / "ctx"
    (c / "files").mkdir(parents=True)
    for i in range(20):
        (c / "files" / f"f{i}").write_text("same\n" if i < 2 else f"file {i}\n")
    df = "FROM busybox\nCOPY files/ /data/\nRUN echo more >> /data/f5\n"
    first = env.build(c, df, no_cache=True)
    second = env.build(c, df, no_cache=True)
    assert first and second, env.error
    img = env.images.get(second)
    if env.images.snapshots.apply_mode != "overlay":
        pytest.skip("the file cache is for overlay layers")
    copy_layer = env.images.snapshots.writable_dir(img.layers[-2])
    assert os.lstat(copy_layer / "data" / "f7").st_nlink >= 2  # linked from the cache
    # two files with the same content and attributes are two files in the layer
    assert os.lstat(copy_layer / "data" / "f0").st_ino != os.lstat(copy_layer / "data" / "f1").st_ino
    blob = env.images.content.read(img.layer_blobs[-2].digest)
    members = tarfile.open(fileobj=io.BytesIO(blob)).getmembers()
    assert not any(m.islnk() for m in members)
    # RUN's write went to its own layer: the cached file and the COPY layer are unchanged
    assert env.run(second, "cat", "/data/f5") == (0, "file 5\nmore\n")
    assert (copy_layer / "data" / "f5").read_text() == "file 5\n"
    assert env.run(second, "cat", "/data/f7") == (0, "file 7\n")
    no_leftovers(env)
