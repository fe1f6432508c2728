"""Resolve paths inside a root the way a chroot would, without leaving it.

``resolve(root, path)`` follows symlinks component by component *virtually*: an absolute
link target restarts at ``root``, ``..`` never climbs above it (moby's
``symlink.FollowSymlinkInScope``). The result is a host path under ``root``. Used for
destinations in a rootfs (an image may hold ``/bin -> usr/bin``; ``/etc -> /host/etc`` stays
inside) and for sources in another stage's rootfs; nothing runs in either while we resolve,
so the answer cannot change under us.

``resolve_rel(path, readlink)`` is the same walk over any tree: ``readlink(rel)`` returns the
target when ``rel`` is a symlink, else None (the build context's tar index uses it).
``follow_final=False`` leaves the last component as it is (a symlink there is the object).
Loops and over-long chains raise InvalidArgument.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from dockyard.errors import InvalidArgument

_MAX_LINKS = 255


def resolve_rel(path: str, readlink: Callable[[str], str | None], *, follow_final: bool = True) -> str:
    """The clean relative path ``path`` names inside the tree ("" for its root)."""
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        if not todo and not follow_final:
            done.append(part)
            break
        target = readlink("/".join(done + [part]))
        if target is None:
            done.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise InvalidArgument(f"too many levels of symbolic links resolving {path}")
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p not in ("", ".")] + todo
    return "/".join(done)


def host_readlink(root: Path) -> Callable[[str], str | None]:
    base = str(root).rstrip("/")

    def readlink(rel: str) -> str | None:
        p = base + "/" + rel
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return os.readlink(p) if stat.S_ISLNK(st.st_mode) else None

    return readlink


def resolve(root: Path, path: str, *, follow_final: bool = True) -> Path:
    rel = resolve_rel(path, host_readlink(root), follow_final=follow_final)
    base = str(root).rstrip("/") or "/"
    return Path(base + "/" + rel) if rel else Path(base)
