"""``ImageService.commit(consume=True)``: a build step's upper directory becomes the layer."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockyard.diff import compute
from dockyard.errors import NotFound
from dockyard.images.service import ImageService

pytestmark = pytest.mark.root


def _import(svc: ImageService, tar: Path) -> str:
    with open(tar, "rb") as f:
        return svc.import_tarball(f, repo_tag="busybox")


def _step(svc: ImageService, iid: str, key: str, mnt: Path, script: str) -> None:
    svc.prepare_rootfs(iid, key)
    svc.mount_rootfs(key, mnt)
    try:
        subprocess.run(["chroot", str(mnt), "/bin/sh", "-c", script], check=True)
    finally:
        svc.unmount_rootfs(mnt)


def test_consumed_snapshot_becomes_the_layer_without_a_copy(
    overlay_svc: ImageService, busybox_tar: Path, tmp_path: Path
) -> None:
    svc = overlay_svc
    iid = _import(svc, busybox_tar)
    mnt = tmp_path / "m"
    mnt.mkdir()
    _step(svc, iid, "build-1", mnt, "echo hi > /tmp/x; rm /etc/group; mkdir -p /new/d; ln -s x /tmp/l")
    upper = svc.snapshots.writable_dir("build-1")
    ino = os.lstat(upper / "tmp" / "x").st_ino
    nid = svc.commit("build-1", parent_image_id=iid, created_by="RUN x", consume=True)
    img = svc.get(nid)
    top = img.layer_blobs[-1]
    # the snapshot is the layer now: same directory, same inodes, parent = the image's layer
    assert not svc.snapshots.exists("build-1") and svc.snapshots.exists("build-1-init")
    info = svc.snapshots.info(img.layers[-1])
    assert info.parent == svc.get(iid).layers[-1]
    assert svc.snapshots.writable_dir(img.layers[-1]) == upper
    assert os.lstat(upper / "tmp" / "x").st_ino == ino
    # the blob is the uncompressed tar of exactly those changes; its digest is the DiffID
    data = svc.content.read(top.digest)
    assert "sha256:" + hashlib.sha256(data).hexdigest() == top.digest == top.diff_id == img.diff_ids[-1]
    assert top.unpacked_size == len("hi\n") + len("x")
    names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
    assert {"tmp/x", "tmp/l", "etc/.wh.group", "new", "new/d"} <= set(names)
    assert ".dockerenv" not in names and "etc/hostname" not in names  # init layer stays out
    svc.remove_rootfs("build-1")  # only the init layer is left to remove
    assert not svc.snapshots.exists("build-1-init")
    with pytest.raises(NotFound):
        svc.remove_rootfs("build-1")
    # a container of the new image sees the changes
    svc.prepare_rootfs(nid, "c")
    svc.mount_rootfs("c", mnt)
    try:
        assert (mnt / "tmp/x").read_text() == "hi\n" and not (mnt / "etc/group").exists()
        assert (mnt / "new/d").is_dir() and os.readlink(mnt / "tmp/l") == "x"
    finally:
        svc.unmount_rootfs(mnt)
    svc.remove_rootfs("c")
    # saved and loaded into another store (naive: extracted from the blob), it is the same image
    buf = io.BytesIO()
    svc.save([nid], buf)
    other = ImageService(tmp_path / "other", snapshotter="naive")
    try:
        buf.seek(0)
        other.load(buf)
        assert other.get(nid).diff_ids == img.diff_ids
        fs = other.snapshots.writable_dir(other.get(nid).layers[-1])
        assert (fs / "tmp/x").read_text() == "hi\n" and not (fs / "etc/group").exists()
    finally:
        other.close()


def test_same_layer_twice_and_a_failed_commit_leave_nothing_extra(
    overlay_svc: ImageService, busybox_tar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = overlay_svc
    iid = _import(svc, busybox_tar)
    mnt = tmp_path / "m"
    mnt.mkdir()
    # a failure while the blob is written: the step's snapshot is untouched, no blob, no layer
    _step(svc, iid, "build-f", mnt, "echo a > /a; touch -d @1700000000 /a /")
    blobs = set(svc.content.walk())
    snaps = {i.key for i in svc.snapshots.list()}

    def broken(*a: object, **k: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(compute, "write_tar", broken)
    with pytest.raises(OSError, match="disk full"):
        svc.commit("build-f", parent_image_id=iid, consume=True)
    monkeypatch.undo()
    assert set(svc.content.walk()) == blobs and {i.key for i in svc.snapshots.list()} == snaps
    assert list((svc.content.root / "ingest").iterdir()) == []
    first = svc.commit("build-f", parent_image_id=iid, consume=True)  # a retry works
    svc.remove_rootfs("build-f")
    # the same change again: the layer exists, the second snapshot is left to its owner
    _step(svc, iid, "build-g", mnt, "echo a > /a; touch -d @1700000000 /a /")
    second = svc.commit("build-g", parent_image_id=iid, consume=True)
    assert svc.get(second).layers == svc.get(first).layers
    assert svc.snapshots.exists("build-g")
    svc.remove_rootfs("build-g")
    keys = {i.key for i in svc.snapshots.list()}
    assert keys == set(svc.get(first).layers)


def test_naive_store_commits_by_extraction(tmp_path: Path, busybox_tar: Path) -> None:
    svc = ImageService(tmp_path / "st", snapshotter="naive")
    try:
        iid = _import(svc, busybox_tar)
        svc.prepare_rootfs(iid, "build-n")
        (svc.snapshots.writable_dir("build-n") / "n").write_text("n")
        nid = svc.commit("build-n", parent_image_id=iid, consume=True)
        assert svc.snapshots.exists("build-n")  # not consumed: the layer is a copy
        fs = svc.snapshots.writable_dir(svc.get(nid).layers[-1])
        assert (fs / "n").read_text() == "n"
        svc.remove_rootfs("build-n")
    finally:
        svc.close()


def test_crash_after_the_layer_before_the_image_is_collected_on_start(
    tmp_path: Path, busybox_tar: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = ImageService(tmp_path / "st", snapshotter="overlay")
    mnt = tmp_path / "m"
    mnt.mkdir()
    try:
        iid = _import(svc, busybox_tar)
        before_blobs = set(svc.content.walk())
        _step(svc, iid, "build-c", mnt, "echo c > /c")

        def crash(*a: object, **k: object) -> str:
            raise KeyboardInterrupt  # the daemon dies between the layer and the image record

        monkeypatch.setattr(svc, "_register", crash)
        with pytest.raises(KeyboardInterrupt):
            svc.commit("build-c", parent_image_id=iid, consume=True)
        assert not svc.snapshots.exists("build-c")  # it became a (still unreferenced) layer
        assert [i.id for i in svc.list()] == [iid]
    finally:
        svc.close()
    svc = ImageService(tmp_path / "st", snapshotter="overlay")
    try:
        # gc at start removed the unreferenced layer and the step's init layer below it
        assert {i.key for i in svc.snapshots.list()} == set(svc.get(iid).layers)
        assert set(svc.content.walk()) == before_blobs
        assert [i.id for i in svc.list()] == [iid]
    finally:
        svc.close()
