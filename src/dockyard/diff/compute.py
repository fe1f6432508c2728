"""Compute a snapshot's changes and write them as a layer tar (docker diff / commit / export).

Two ways to know what changed, matching the two snapshotters:

* overlay: the upper directory *is* the change set. A char device 0/0 is a deletion (written
  as ``.wh.<name>``), a directory with ``trusted.overlay.opaque=y`` hides everything below it
  in the lower layers (written as the directory followed by ``.wh..wh..opq``).
* naive: compare the snapshot's full copy with its parent's (type, mode, owner, size, mtime,
  link target), as containerd's double walk does.

Both give a sorted list of :class:`Entry` (path, kind); :func:`write_tar` turns entries into a
PAX tar with ``tarwriter.TarWriter`` (xattrs kept, overlay's own xattrs dropped, hard links
preserved, mtimes in whole seconds, parents before children). Reading follows no symlinks (``lstat``, no dereference).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.diff.tarwriter import TarWriter

MODIFIED, ADDED, DELETED = 0, 1, 2
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


@dataclass(frozen=True, slots=True)
class Entry:
    path: str  # "/etc/passwd"
    kind: int  # MODIFIED, ADDED, DELETED
    opaque: bool = False  # overlay: the directory hides lower content


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    for x in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, x, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def _walk(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """(relative "/path", lstat) of everything under root, unordered."""
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root + rel) as it:
            for e in it:
                p = f"{rel}/{e.name}"
                st = e.stat(follow_symlinks=False)
                yield p, st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(p)


def _walk_sorted(root: str) -> list[tuple[str, os.stat_result]]:
    """Sorted by path components: parents before children, siblings by name."""
    out = list(_walk(root))
    out.sort(key=lambda e: e[0].split("/"))
    return out


def overlay_changes(upper: Path, lowers: list[Path]) -> list[Entry]:
    up = str(upper)
    lows = [str(lw) for lw in lowers]
    out: list[Entry] = []
    hidden: list[str] = []  # deleted directories: skip their content
    new_dirs: set[str] = set()  # directories no lower has: their content is new too
    for p, st in _walk_sorted(up):
        if any(p.startswith(h + "/") for h in hidden):
            continue
        if p[:p.rfind("/")] in new_dirs:
            in_lower = False  # (a COPY of a thousand files into a new directory: no lookups)
        else:
            in_lower = any(os.path.lexists(lw + p) for lw in lows)
        if not in_lower and stat.S_ISDIR(st.st_mode):
            new_dirs.add(p)
        if _is_whiteout(st):
            if in_lower:
                out.append(Entry(p, DELETED))
            hidden.append(p)
            continue
        opaque = stat.S_ISDIR(st.st_mode) and _is_opaque(up + p)
        out.append(Entry(p, MODIFIED if in_lower else ADDED, opaque))
    return out


def _differs(a: os.stat_result, b: os.stat_result, pa: str, pb: str) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return True
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return True
    if a.st_mtime_ns != b.st_mtime_ns:
        return True
    if stat.S_ISREG(a.st_mode) and a.st_size != b.st_size:
        return True
    if stat.S_ISLNK(a.st_mode) and os.readlink(pa) != os.readlink(pb):
        return True
    if (stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode)) and a.st_rdev != b.st_rdev:
        return True
    return False


def naive_changes(new: Path, old: Path | None) -> list[Entry]:
    nw, od = str(new), str(old) if old is not None else None
    out: list[Entry] = []
    for p, st in _walk_sorted(nw):
        if od is None:
            out.append(Entry(p, ADDED))
            continue
        try:
            ost = os.lstat(od + p)
        except FileNotFoundError:
            out.append(Entry(p, ADDED))
            continue
        if _differs(st, ost, nw + p, od + p):
            out.append(Entry(p, MODIFIED))
    if od is not None:
        gone: list[str] = []
        for p, _ in _walk_sorted(od):
            if any(p.startswith(g + "/") for g in gone):
                continue
            if not os.path.lexists(nw + p):
                out.append(Entry(p, DELETED))
                gone.append(p)
    out.sort(key=lambda e: e.path.split("/"))
    return out


def write_tar(out: BinaryIO, base: Path, entries: Iterable[Entry], *, include_parents: bool = False) -> int:
    """Write entries of ``base`` as a layer tar; DELETED entries become whiteouts.

    Returns the layer's content size as docker counts it (file sizes and symlink target
    lengths, hard links once)."""
    b = str(base)
    written: set[str] = set()
    size = 0
    tw = TarWriter(out)
    for e in entries:
        arc = e.path.lstrip("/")
        if include_parents:
            parts = arc.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in written and os.path.isdir(os.path.join(b, d)):
                    size += tw.add(os.path.join(b, d), d)
                    written.add(d)
        if e.kind == DELETED:
            parent, name = os.path.split(arc)
            tw.add_marker(os.path.join(parent, ".wh." + name))
            continue
        if arc in written:
            continue
        size += tw.add(b + e.path, arc)
        written.add(arc)
        if e.opaque:
            tw.add_marker(arc + "/.wh..wh..opq")
    tw.close()
    return size


def write_tree(out: BinaryIO, root: Path) -> None:
    """The whole tree under ``root`` as a tar (docker export)."""
    write_tar(out, root, (Entry(p, ADDED) for p, _ in _walk_sorted(str(root))))
