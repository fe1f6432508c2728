"""mount(2)/umount2(2) as the snapshotters use them.

The syscalls themselves are linux/syscalls.py's (the one seam to the kernel); this adapter
turns their ``OSError`` into the project's ``Unavailable`` (the message still names the
syscall and its arguments) and adds :func:`is_mountpoint`. Both calls are safe from a threaded
process (no fork).
"""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.errors import Unavailable
from dockyard.linux import syscalls

MS_RDONLY = syscalls.MS_RDONLY
MS_REMOUNT = syscalls.MS_REMOUNT
MS_BIND = syscalls.MS_BIND
MS_REC = syscalls.MS_REC
MNT_DETACH = syscalls.MNT_DETACH


def mount(source: str, target: str | Path, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    try:
        syscalls.mount(source, os.fspath(target), fstype, flags, data)
    except OSError as e:
        raise Unavailable(str(e.strerror)) from None


def umount(target: str | Path, flags: int = 0) -> None:
    try:
        syscalls.umount2(os.fspath(target), flags)
    except OSError as e:
        raise Unavailable(str(e.strerror)) from None


def is_mountpoint(path: str | Path) -> bool:
    """Is ``path`` (resolved) a mount point in this mount namespace?"""
    p = os.path.realpath(path)
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            # Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
            mp = line.split()[4].decode("unicode_escape").encode("latin-1").decode()
            if mp == p:
                return True
    return False
