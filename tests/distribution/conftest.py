"""Fixtures for registry-client tests: a real registry process, an image store, busybox.

``registry(*flags)`` starts ``python -m dockyard.registry serve`` on 127.0.0.1 with an
ephemeral port and returns its ``host:port``; every process is terminated by PID at teardown.
``store_factory(name)`` opens an ImageService under tmp_path (overlay snapshots); all mounts
under tmp_path are detached at teardown. ``busybox_image(store)`` imports the session's
busybox rootfs as ``busybox:latest`` and returns the image id.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import registry_procs
from dockyard.images.service import ImageService
from dockyard.snapshots import _mount


@pytest.fixture(scope="session")
def busybox_tgz(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist-bbtar") / "busybox.tar.gz"
    subprocess.run(["tar", "-C", str(busybox_rootfs), "-czf", str(out), "."], check=True)
    return out


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Callable[..., str]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*flags: str) -> str:
        n = len(procs) + 1
        p, line = registry_procs.spawn(tmp_path / f"reg{n}", tmp_path / f"reg{n}.log", *flags)
        procs.append(p)
        return line.rsplit("/", 1)[1]

    yield start
    registry_procs.stop(procs)


def _unmount_under(path: Path) -> None:
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    for mp in sorted((m for m in mps if m.startswith(str(path))), reverse=True):
        _mount.umount(mp, _mount.MNT_DETACH)


@pytest.fixture
def store_factory(tmp_path: Path) -> Iterator[Callable[[str], ImageService]]:
    opened: list[ImageService] = []

    def make(name: str) -> ImageService:
        s = ImageService(tmp_path / name, snapshotter="overlay")
        opened.append(s)
        return s

    try:
        yield make
    finally:
        _unmount_under(tmp_path)
        for s in opened:
            s.close()


@pytest.fixture
def busybox_image(busybox_tgz: Path) -> Callable[[ImageService], str]:
    def imp(store: ImageService, tag: str = "busybox:latest") -> str:
        with open(busybox_tgz, "rb") as f:
            return store.import_tarball(f, repo_tag=tag)

    return imp
