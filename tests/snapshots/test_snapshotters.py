"""Snapshotters for real: overlay mounts (incl. more layers than fit in one page), naive copies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.errors import AlreadyExists, Conflict, NotFound
from dockyard.snapshots import _mount
from dockyard.snapshots.mount import mount_all, unmount_all
from dockyard.snapshots.naive import NaiveSnapshotter
from dockyard.snapshots.overlay import OverlaySnapshotter
from dockyard.snapshots.snapshotter import Snapshotter

pytestmark = pytest.mark.root


@pytest.fixture(params=["overlay", "naive"])
def sn(request: pytest.FixtureRequest, tmp_path: Path) -> Snapshotter:
    cls = OverlaySnapshotter if request.param == "overlay" else NaiveSnapshotter
    s = cls(tmp_path / "sn")
    yield s
    s.close()


def _mnt(tmp_path: Path) -> Path:
    m = tmp_path / "mnt"
    m.mkdir(exist_ok=True)
    return m


def test_lifecycle(sn: Snapshotter, tmp_path: Path) -> None:
    sn.prepare("l1")
    (sn.writable_dir("l1") / "base").write_text("b")
    sn.commit("chain1", "l1")
    with pytest.raises(NotFound):
        sn.info("l1")
    with pytest.raises(NotFound):
        sn.prepare("x", "missing")
    with pytest.raises(Conflict):
        sn.commit("chain2", "chain1")  # already committed
    with pytest.raises(AlreadyExists):
        sn.prepare("chain1")
    sn.prepare("c", "chain1")
    mnt = _mnt(tmp_path)
    mount_all(sn.mounts("c"), mnt)
    try:
        assert (mnt / "base").read_text() == "b"
        (mnt / "new").write_text("n")
        (mnt / "base").unlink()
    finally:
        unmount_all(mnt)
    assert not _mount.is_mountpoint(mnt)
    # the parent is untouched by the container's writes
    assert (sn.writable_dir("chain1") / "base").read_text() == "b"
    assert not (sn.writable_dir("chain1") / "new").exists()
    with pytest.raises(Conflict):
        sn.remove("chain1")
    sn.remove("c")
    sn.remove("chain1")
    assert sn.list() == []
    assert os.listdir(sn.root / "s") == []


def test_crash_leftovers_are_swept(tmp_path: Path) -> None:
    s = OverlaySnapshotter(tmp_path / "sn")
    s.prepare("a")
    s.close()
    (tmp_path / "sn" / "s" / "999" / "fs").mkdir(parents=True)  # a dir without a row
    s = OverlaySnapshotter(tmp_path / "sn")
    try:
        assert sorted(os.listdir(tmp_path / "sn" / "s")) == [str(s.info("a").id)]
    finally:
        s.close()


def test_overlay_with_more_layers_than_one_page_holds(tmp_path: Path) -> None:
    # Long paths: 130 layers * ~100 bytes of absolute lowerdir > 4096 bytes.
    root = tmp_path / ("x" * 60) / "sn"
    s = OverlaySnapshotter(root)
    try:
        parent = None
        for i in range(130):
            s.prepare(f"tmp{i}", parent)
            (s.writable_dir(f"tmp{i}") / f"f{i}").write_text(str(i))
            s.commit(f"layer{i}", f"tmp{i}")
            parent = f"layer{i}"
        mounts = s.prepare("ctr", parent)
        assert len(",".join(mounts[0].options)) > 4096
        mnt = _mnt(tmp_path)
        mount_all(mounts, mnt)
        try:
            assert (mnt / "f0").read_text() == "0" and (mnt / "f129").read_text() == "129"
        finally:
            unmount_all(mnt)
    finally:
        s.close()


def test_commit_onto_an_ancestor_keeps_the_directory(tmp_path: Path) -> None:
    sn = OverlaySnapshotter(tmp_path / "sn")
    try:
        sn.prepare("l1")
        sn.commit("base", "l1")
        sn.prepare("i", "base")
        sn.commit("init", "i")
        sn.prepare("step", "init")
        d = sn.writable_dir("step")
        (d / "new").write_text("n")
        with pytest.raises(Conflict):
            sn.commit_onto("layer", "step", "unrelated")  # not an ancestor
        assert sn.info("step").parent == "init"  # nothing changed on refusal
        sn.commit_onto("layer", "step", "base")
        info = sn.info("layer")
        assert info.parent == "base" and info.kind.value == "committed"
        assert sn.writable_dir("layer") == d and (d / "new").read_text() == "n"
        assert not sn.exists("step")
        sn.remove("init")  # no child any more
        with pytest.raises(AlreadyExists):
            sn.prepare("s2", "base")
            sn.commit_onto("layer", "s2", "base")
    finally:
        sn.close()


def test_naive_refuses_commit_onto(tmp_path: Path) -> None:
    sn = NaiveSnapshotter(tmp_path / "sn")
    try:
        sn.prepare("a")
        with pytest.raises(Conflict):
            sn.commit_onto("b", "a", None)
        assert sn.info("a").kind.value == "active"
    finally:
        sn.close()
