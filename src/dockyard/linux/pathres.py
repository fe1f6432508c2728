"""Resolve paths inside a root the way a chroot would, without leaving it (runc's securejoin).

The one implementation of this walk: the runtime (mount destinations, devices), the builder
(COPY destinations, other stages, the build context's tar index), ``docker cp`` and volume
copy-up all call it. Cheap to import (the runtime does, on every container start).

``resolve(root, path)`` follows symlinks component by component *virtually*: an absolute
link target restarts at ``root``, ``..`` never climbs above it (moby's
``symlink.FollowSymlinkInScope``). The result is a host path under ``root``. Used for
destinations in a rootfs (an image may hold ``/bin -> usr/bin``; ``/etc -> /host/etc`` stays
inside) and for sources in another stage's rootfs; nothing runs in either while we resolve,
so the answer cannot change under us.

``resolve_rel(path, readlink)`` is the same walk over any tree: ``readlink(rel)`` returns the
target when ``rel`` is a symlink, else None (the build context's tar index uses it).
``follow_final=False`` leaves the last component as it is (a symlink there is the object).
Loops and chains longer than ``max_links`` (255 by default) raise InvalidArgument.
"""

from __future__ import annotations

import os
import stat

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: the runtime's start-up imports this module
    from collections.abc import Callable
    from pathlib import Path

_MAX_LINKS = 255


def resolve_rel(path: str, readlink: Callable[[str], str | None], *, follow_final: bool = True,
                max_links: int = _MAX_LINKS) -> str:
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
        if links > max_links:
            raise InvalidArgument(f"too many levels of symbolic links resolving {path}")
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p not in ("", ".")] + todo
    return "/".join(done)


def host_readlink(root: str | Path) -> Callable[[str], str | None]:
    base = str(root).rstrip("/")

    def readlink(rel: str) -> str | None:
        p = base + "/" + rel
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return os.readlink(p) if stat.S_ISLNK(st.st_mode) else None

    return readlink


def resolve(root: Path, path: str, *, follow_final: bool = True, max_links: int = _MAX_LINKS) -> Path:
    from pathlib import Path

    rel = resolve_rel(path, host_readlink(root), follow_final=follow_final, max_links=max_links)
    base = str(root).rstrip("/") or "/"
    return Path(base + "/" + rel) if rel else Path(base)
