"""Mount descriptions (like containerd's ``mount.Mount``) and mounting a list of them.

A snapshotter returns ``list[Mount]``; the caller mounts them on a target with
:func:`mount_all` and later undoes it with :func:`unmount_all`. Overlay option strings are
limited to one page by the kernel: with many layers :func:`mount_all` rewrites the lowerdirs
relative to their common parent and runs ``mount(8)`` from there (a fresh process, so the
daemon's own working directory, which is process-wide, never changes).
"""

from __future__ import annotations

import os
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import InvalidArgument, Unavailable
from dockyard.snapshots import _mount

_PAGE = resource.getpagesize()


@dataclass(frozen=True, slots=True)
class Mount:
    type: str  # "overlay" or "bind"
    source: str
    options: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"Type": self.type, "Source": self.source, "Options": list(self.options)}


def _overlay_data(options: tuple[str, ...]) -> str:
    return ",".join(o for o in options if o not in ("ro", "rw"))


def _mount_one(m: Mount, target: Path) -> None:
    if m.type == "bind":
        flags = _mount.MS_BIND | (_mount.MS_REC if "rbind" in m.options else 0)
        _mount.mount(m.source, target, None, flags)
        if "ro" in m.options:
            # A bind mount ignores MS_RDONLY on creation: remount it read-only.
            _mount.mount("none", target, None, flags | _mount.MS_RDONLY | _mount.MS_REMOUNT)
        return
    if m.type != "overlay":
        raise InvalidArgument(f"unsupported mount type {m.type!r}")
    flags = _mount.MS_RDONLY if "ro" in m.options else 0
    data = _overlay_data(m.options)
    if len(data) < _PAGE - 1:
        _mount.mount(m.source, target, "overlay", flags, data)
        return
    # Too long for one page: make every directory relative to their common parent and mount
    # from there, as containerd and docker do for images with many layers.
    dirs: list[str] = []
    for o in m.options:
        k, _, v = o.partition("=")
        if k in ("lowerdir", "upperdir", "workdir"):
            dirs.extend(v.split(":"))
    base = os.path.commonpath(dirs)
    rel: list[str] = []
    for o in m.options:
        k, _, v = o.partition("=")
        if k in ("lowerdir", "upperdir", "workdir"):
            rel.append(k + "=" + ":".join(os.path.relpath(d, base) for d in v.split(":")))
        elif o not in ("ro", "rw"):
            rel.append(o)
    data = ",".join(rel)
    if len(data) >= _PAGE - 1:
        raise Unavailable(f"overlay options too long ({len(data)} bytes) even with relative paths")
    args = ["mount", "-t", "overlay", "-o", data + (",ro" if flags else ""), m.source, str(target)]
    r = subprocess.run(args, cwd=base, capture_output=True, text=True)
    if r.returncode != 0:
        raise Unavailable(f"mount overlay on {target} failed: {r.stderr.strip()}")


def mount_all(mounts: list[Mount], target: Path) -> None:
    """Mount each description on ``target`` in order; undo what was done on failure."""
    done = 0
    try:
        for m in mounts:
            _mount_one(m, target)
            done += 1
    except BaseException:
        for _ in range(done):
            _mount.umount(target, _mount.MNT_DETACH)
        raise


def unmount_all(target: Path) -> None:
    """Unmount everything stacked on ``target`` (no error when nothing is mounted)."""
    while _mount.is_mountpoint(target):
        _mount.umount(target, _mount.MNT_DETACH)
