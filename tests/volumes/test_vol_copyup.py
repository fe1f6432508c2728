"""copy_up: the image's content at a mount point into an empty volume, safely."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dockyard.volumes.copyup import copy_up, resolve_in_root


def test_resolve_in_root_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real" / "dir").mkdir(parents=True)
    (root / "abs").symlink_to("/real")
    (root / "up").symlink_to("../../../../real")
    (root / "real" / "loop").symlink_to("loop")
    (root / "escape").symlink_to("/etc")
    assert resolve_in_root(root, "/abs/dir") == root / "real" / "dir"
    assert resolve_in_root(root, "/up/dir") == root / "real" / "dir"
    assert resolve_in_root(root, "/../../real/./dir/") == root / "real" / "dir"
    assert resolve_in_root(root, "/escape/passwd") == root / "etc" / "passwd"  # not the host's
    with pytest.raises(Exception, match="too many levels"):
        resolve_in_root(root, "/real/loop")


@pytest.mark.root
def test_copy_preserves_everything_and_follows_no_link(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    src = root / "srv" / "app"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("hello")
    os.chown(src / "file", 1234, 5678)
    os.chmod(src / "file", 0o4755)  # setuid survives (chmod after chown)
    os.chown(src / "sub", 42, 43)
    os.chmod(src / "sub", 0o2710)
    os.link(src / "file", src / "sub" / "hard")
    (src / "rel").symlink_to("file")
    (src / "out").symlink_to("/etc/shadow")  # must be copied as a link, never read through
    os.lchown(src / "out", 7, 8)
    os.mkfifo(src / "fifo", 0o640)
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.setxattr(src / "file", "user.note", b"kept")
    os.utime(src / "file", ns=(1_000_000_000, 2_000_000_000))
    os.chown(src, 99, 98)
    os.chmod(src, 0o750)
    vol = tmp_path / "vol"
    vol.mkdir()
    assert copy_up(vol, root, "/srv/app") is True
    st = os.stat(vol / "file")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4755)
    assert st.st_mtime_ns == 2_000_000_000 and (vol / "file").read_text() == "hello"
    assert os.getxattr(vol / "file", "user.note") == b"kept"
    sub = os.stat(vol / "sub")
    assert (sub.st_uid, sub.st_gid, stat.S_IMODE(sub.st_mode)) == (42, 43, 0o2710)
    assert os.stat(vol / "sub" / "hard").st_ino == st.st_ino
    assert os.readlink(vol / "rel") == "file" and os.readlink(vol / "out") == "/etc/shadow"
    assert os.lstat(vol / "out").st_uid == 7
    assert stat.S_ISFIFO(os.lstat(vol / "fifo").st_mode)
    assert os.lstat(vol / "null").st_rdev == os.makedev(1, 3)
    top = os.stat(vol)
    assert (top.st_uid, top.st_gid, stat.S_IMODE(top.st_mode)) == (99, 98, 0o750)
    # a second use finds the volume non-empty: nothing is copied over the volume's data
    (vol / "file").write_text("changed")
    assert copy_up(vol, root, "/srv/app") is False and (vol / "file").read_text() == "changed"


def test_nothing_to_copy(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "file").write_text("x")
    (root / "link").symlink_to("/etc/file")
    vol = tmp_path / "vol"
    vol.mkdir()
    assert copy_up(vol, root, "/missing") is False
    assert copy_up(vol, root, "/etc/file") is False  # not a directory
    assert copy_up(vol, root, "/link") is False
    assert os.listdir(vol) == []


def test_symlinked_mount_point_copies_from_inside_the_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "data").mkdir(parents=True)
    (root / "data" / "in-image").write_text("image")
    (root / "var").mkdir()
    (root / "var" / "data").symlink_to("/data")
    (tmp_path / "data").mkdir()  # the host's /data twin (tmp_path plays the host root) must not be read
    (tmp_path / "data" / "host-secret").write_text("host")
    vol = tmp_path / "vol"
    vol.mkdir()
    assert copy_up(vol, root, "/var/data")
    assert os.listdir(vol) == ["in-image"]
