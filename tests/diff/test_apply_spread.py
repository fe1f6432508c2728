"""apply_layer marks the target a top of a directory hierarchy for ext4 (``chattr +T``), so the
layer's top directories are spread over block groups instead of piling into the store's one
(where, on a filesystem without a journal, every creation scans past the recently deleted
inodes). Placement only: on a filesystem that refuses the flag the layer applies the same."""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from dockyard.diff import apply as apply_mod
from dockyard.diff.apply import apply_layer

pytestmark = pytest.mark.root


def _flags(path: Path) -> int | None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, apply_mod._FS_IOC_GETFLAGS, buf)
        return int.from_bytes(buf[:4], sys.byteorder)
    except OSError:
        return None
    finally:
        os.close(fd)


def _layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("usr", "usr/bin", "etc"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        for name in ("usr/bin/a", "etc/b", "c"):
            ti = tarfile.TarInfo(name)
            ti.size = 5
            tf.addfile(ti, io.BytesIO(b"hello"))
    return out.getvalue()


def test_the_target_gets_the_topdir_flag_and_its_subdirectories_do_not(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    before = _flags(target)
    if before is None:
        pytest.skip("the filesystem under tmp_path has no inode flags")
    apply_layer(io.BytesIO(_layer()), target, "overlay")
    after = _flags(target)
    assert after is not None and after & apply_mod._FS_TOPDIR_FL
    assert after & ~apply_mod._FS_TOPDIR_FL == before & ~apply_mod._FS_TOPDIR_FL  # others kept
    sub = _flags(target / "usr")
    assert sub is not None and not sub & apply_mod._FS_TOPDIR_FL  # not inherited
    assert (target / "usr/bin/a").read_bytes() == b"hello"


def test_a_filesystem_without_inode_flags_applies_the_layer_all_the_same(tmp_path: Path) -> None:
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt)], check=True)
    try:
        applied = apply_layer(io.BytesIO(_layer()), mnt, "overlay")
        assert (mnt / "etc/b").read_bytes() == b"hello" and (mnt / "c").exists()
        assert applied.content_size == 15
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
