"""Resolve paths inside a root directory the way a chroot would, without leaving it.

``resolve(root, path)`` follows symlinks component by component *virtually*: an absolute
link target restarts at ``root``, ``..`` never climbs above it (moby's
``symlink.FollowSymlinkInScope``). The result is a host path under ``root``. Used for COPY
sources in the build context (a context may hold ``link -> /etc``) and for destinations in a
rootfs (an image may hold ``/bin -> usr/bin``); nothing runs in either while we resolve, so the
answer cannot change under us.

``follow_final=False`` leaves the last component as it is (a symlink there is the object).
Loops and over-long chains raise InvalidArgument.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dockyard.errors import InvalidArgument

_MAX_LINKS = 255


def resolve(root: Path, path: str, *, follow_final: bool = True) -> Path:
    root_s = str(root).rstrip("/") or "/"
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        cand = root_s + "/" + "/".join(done + [part])
        if not todo and not follow_final:
            done.append(part)
            break
        try:
            st = os.lstat(cand)
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise InvalidArgument(f"too many levels of symbolic links resolving {path}")
            target = os.readlink(cand)
            rest = [p for p in target.split("/") if p not in ("", ".")]
            if target.startswith("/"):
                done = []
            todo = rest + todo
            continue
        done.append(part)
    return Path(root_s + ("/" + "/".join(done) if done else ""))


def relative(root: Path, host_path: Path) -> str:
    """The ``/``-separated path of ``host_path`` below ``root`` ("." for the root itself)."""
    rel = os.path.relpath(host_path, root)
    return "." if rel == "." else rel
