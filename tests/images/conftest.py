"""Fixtures for the image store tests: a fresh ImageService per test, a busybox rootfs tar."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.images.service import ImageService
from dockyard.snapshots import _mount


@pytest.fixture(scope="session")
def busybox_tar(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bbtar") / "busybox.tar"
    subprocess.run(["tar", "-C", str(busybox_rootfs), "-cf", str(out), "."], check=True)
    return out


def _unmount_under(path: Path) -> None:
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    for mp in sorted((m for m in mps if m.startswith(str(path))), reverse=True):
        _mount.umount(mp, _mount.MNT_DETACH)


@pytest.fixture(params=["overlay", "naive"])
def svc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageService]:
    s = ImageService(tmp_path / "store", snapshotter=request.param)
    try:
        yield s
    finally:
        _unmount_under(tmp_path)
        s.close()


@pytest.fixture
def overlay_svc(tmp_path: Path) -> Iterator[ImageService]:
    s = ImageService(tmp_path / "store", snapshotter="overlay")
    try:
        yield s
    finally:
        _unmount_under(tmp_path)
        s.close()
