"""mount(2)/umount2(2) for the snapshotters, via ctypes (Python has no binding).

Private to snapshots/: the linux/ package had no mount wrapper when this was written; move to
linux/mount.py's when it exists. Errors name the syscall and its arguments. Both calls are
safe from a threaded process (no fork).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

from dockyard.errors import Unavailable

MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(source: str, target: str | Path, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    rc = _libc.mount(
        source.encode(), os.fsencode(target), fstype.encode() if fstype else None, flags,
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise Unavailable(
            f"mount({source!r}, {str(target)!r}, {fstype!r}, {flags:#x}, {data!r}): {os.strerror(err)}"
        )


def umount(target: str | Path, flags: int = 0) -> None:
    rc = _libc.umount2(os.fsencode(target), flags)
    if rc != 0:
        err = ctypes.get_errno()
        raise Unavailable(f"umount2({str(target)!r}, {flags:#x}): {os.strerror(err)}")


def is_mountpoint(path: str | Path) -> bool:
    p = os.fsdecode(os.path.realpath(path))
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == p:
                return True
    return False
