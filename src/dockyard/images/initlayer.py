"""The container "init" layer: mount points and files every container needs, kept out of its diff.

Docker puts a read-only layer between the image and each container's writable layer holding
empty placeholders for what the runtime mounts over (``/etc/hosts``, ``/etc/hostname``,
``/etc/resolv.conf``, ``/dev/console``, ``/proc``, ``/sys``, ``/dev/pts``, ``/dev/shm``) plus
``/.dockerenv`` and ``/etc/mtab -> /proc/mounts``. Because they live below the container's
layer, ``docker diff`` and ``docker commit`` don't see them. An entry is only created when the
image lacks it and every ancestor is a real directory in the image (a symlinked ``/etc`` is
left alone, never followed).

:func:`populate` works on directories only, no mount: ``upper`` is the new layer's directory
and ``lowers`` the image's layer directories, nearest first (overlay), or ``[]`` when
``upper`` is a complete copy (naive snapshotter). Every lookup ``lstat``-s one component at a
time, so no symlink in the image is ever followed on the host.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# (path, kind, symlink target); order matters: parents before children.
ENTRIES: tuple[tuple[str, str, str], ...] = (
    ("/dev", "dir", ""),
    ("/dev/pts", "dir", ""),
    ("/dev/shm", "dir", ""),
    ("/proc", "dir", ""),
    ("/sys", "dir", ""),
    ("/etc", "dir", ""),
    ("/.dockerenv", "file", ""),
    ("/etc/resolv.conf", "file", ""),
    ("/etc/hosts", "file", ""),
    ("/etc/hostname", "file", ""),
    ("/dev/console", "file", ""),
    ("/etc/mtab", "symlink", "/proc/mounts"),
)
_OPAQUE = ("trusted.overlay.opaque", "user.overlay.opaque")


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _layer_lstat(layer: Path, parts: list[str]) -> tuple[os.stat_result | None, bool]:
    """(lstat of the path in this one layer or None, whether lower layers are hidden for it)."""
    cur = str(layer)
    hidden = False
    for i, name in enumerate(parts):
        cur = f"{cur}/{name}"
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            return None, hidden
        if i == len(parts) - 1:
            return st, hidden
        if not stat.S_ISDIR(st.st_mode):
            return None, True  # a non-directory (or whiteout) here hides everything below it
        for x in _OPAQUE:
            try:
                if os.getxattr(cur, x, follow_symlinks=False) == b"y":
                    hidden = True
            except OSError:
                pass
    return None, hidden


def _union_lstat(layers: list[Path], parts: list[str]) -> os.stat_result | None:
    for layer in layers:
        st, hidden = _layer_lstat(layer, parts)
        if st is not None:
            return None if _is_whiteout(st) else st
        if hidden:
            return None
    return None


def populate(upper: Path, lowers: list[Path]) -> None:
    layers = [upper, *lowers]
    for path, kind, target in ENTRIES:
        parts = path.strip("/").split("/")
        ancestors_ok = True
        for i in range(1, len(parts)):
            st = _union_lstat(layers, parts[:i])
            if st is not None and not stat.S_ISDIR(st.st_mode):
                ancestors_ok = False
                break
        if not ancestors_ok or _union_lstat(layers, parts) is not None:
            continue
        cur = str(upper)
        for i in range(1, len(parts)):
            cur = f"{cur}/{parts[i - 1]}"
            if os.path.lexists(cur):
                continue  # a real directory: checked above, component by component
            os.mkdir(cur, 0o755)
            below = _union_lstat(lowers, parts[:i])
            if below is not None:
                # Same metadata as the image's directory, as an overlay copy-up would keep.
                os.chown(cur, below.st_uid, below.st_gid)
                os.chmod(cur, stat.S_IMODE(below.st_mode))
                os.utime(cur, ns=(below.st_atime_ns, below.st_mtime_ns))
        final = f"{cur}/{parts[-1]}"
        if kind == "dir":
            os.mkdir(final, 0o755)
        elif kind == "file":
            os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o755))
        else:
            os.symlink(target, final)
