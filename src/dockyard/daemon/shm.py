"""The host-side /dev/shm of an ``--ipc shareable`` container, which ``--ipc container:<it>``
joiners bind-mount too (dockerd's ``ShmPath``), so POSIX shared memory is shared with the
IPC namespace's SysV objects.

Layout::

    <data-root>/containers/<id>/mounts/shm     tmpfs (mode 1777, size --shm-size), mounted at
                                               start, unmounted when the container stops
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from dockyard.linux import syscalls as sc


def path_of(container_dir: Path) -> Path:
    return container_dir / "mounts" / "shm"


def mount(container_dir: Path, size: int) -> Path:
    """Mount the container's shareable /dev/shm (idempotent: an existing mount is kept)."""
    target = path_of(container_dir)
    target.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(target):
        sc.mount("shm", str(target), "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                 f"mode=1777,size={size}")
    return target


def unmount(container_dir: Path) -> None:
    """Undo :func:`mount` (idempotent). Lazy: joiners' bind mounts keep their view."""
    target = path_of(container_dir)
    while os.path.ismount(target):
        try:
            sc.umount2(str(target), sc.MNT_DETACH)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):
                break
            raise
    with contextlib.suppress(OSError):
        target.rmdir()
