"""ImageService.sweep_rootfs: a daemon killed between a container's snapshot and its record
(create) or between removing the snapshot and the record (rm) leaves snapshots to sweep."""

from __future__ import annotations

from pathlib import Path

from dockyard.images.service import ImageService


def test_sweep_removes_container_snapshots_without_a_container(svc: ImageService, busybox_tar: Path) -> None:
    with open(busybox_tar, "rb") as f:
        iid = svc.import_tarball(f, repo_tag="busybox:latest")
    keep, orphan = "a" * 64, "b" * 64
    svc.prepare_rootfs(iid, keep)
    svc.prepare_rootfs(iid, orphan)
    svc.prepare_rootfs(iid, "build-x")  # not a container's: the builder sweeps those
    gone = svc.sweep_rootfs({keep})
    assert set(gone) == {orphan, f"{orphan}-init"}
    assert not svc.snapshots.exists(orphan) and not svc.snapshots.exists(f"{orphan}-init")
    assert svc.snapshots.exists(keep) and svc.snapshots.exists(f"{keep}-init")
    assert svc.snapshots.exists("build-x")
    # an init layer whose container snapshot is already gone (rm killed half-way) goes too
    svc.snapshots.remove(keep)
    assert svc.sweep_rootfs(set()) == [f"{keep}-init"]
    assert not svc.snapshots.exists(f"{keep}-init")
    svc.remove_rootfs("build-x")
