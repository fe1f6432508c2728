"""``docker cp``: stat, read and write paths inside a container's root filesystem.

The rootfs is the running container's mount (``<exec-root>/bundles/<id>/rootfs``) or, for a
stopped container, a temporary mount of its snapshot. Paths resolve as if the rootfs were ``/``
(symlinks included, absolute ones too), so no path or link can reach the host. Writes extract in
a fresh process chrooted into the target directory (``dockyard.diff.chroot_extract``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat as statmod
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.errors import InvalidArgument, NotFound
from dockyard.linux import pathres

MAX_LINKS = 40


def resolve(root: Path, path: str, follow_last: bool = True) -> Path:
    """``path`` inside ``root`` with every symlink interpreted relative to ``root``."""
    if not path:
        raise InvalidArgument("path cannot be empty")
    return pathres.resolve(root, path, follow_final=follow_last, max_links=MAX_LINKS)


def stat_header(root: Path, path: str) -> str:
    """The ``X-Docker-Container-Path-Stat`` value: base64 JSON of the path's stat."""
    target = resolve(root, path, follow_last=False)
    try:
        st = target.lstat()
    except FileNotFoundError:
        raise NotFound(f"Could not find the file {path} in container") from None
    mode = statmod.S_IMODE(st.st_mode)
    # Go's os.FileMode bits, which the docker CLI decodes
    if statmod.S_ISDIR(st.st_mode):
        mode |= 1 << 31
    elif statmod.S_ISLNK(st.st_mode):
        mode |= 1 << 27
    link = ""
    if statmod.S_ISLNK(st.st_mode):
        link = os.readlink(target)
    info = {"name": os.path.basename(path.rstrip("/")) or "/", "size": st.st_size, "mode": mode,
            "mtime": _mtime(st.st_mtime), "linkTarget": link}
    return base64.b64encode(json.dumps(info).encode()).decode()


def _mtime(t: float) -> str:
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def write_tar(root: Path, path: str, out: BinaryIO) -> None:
    """A tar of ``path`` (named by its base name), symlinks inside stored as links."""
    target = resolve(root, path, follow_last=not path.endswith("/.") and path.endswith("/"))
    if not target.exists() and not target.is_symlink():
        raise NotFound(f"Could not find the file {path} in container")
    name = os.path.basename(path.rstrip("/").removesuffix("/.")) or "."
    with tarfile.open(fileobj=out, mode="w|") as tf:
        if path.endswith("/."):
            for child in sorted(os.listdir(target)):
                tf.add(target / child, arcname=child)
        else:
            tf.add(target, arcname=name)


def extract(root: Path, path: str, data: BinaryIO) -> None:
    """Unpack the tar ``data`` into directory ``path`` of the container (which must exist)."""
    target = resolve(root, path)
    if not target.is_dir():
        if not target.exists():
            raise NotFound(f"Could not find the file {path} in container")
        raise InvalidArgument(f"extraction point is not a directory: {path}")
    import dockyard.diff.chroot_extract as ce
    proc = subprocess.Popen([sys.executable, "-I", "-S", ce.__file__, str(target), "naive"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        while chunk := data.read(1 << 16):
            proc.stdin.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    if proc.wait() != 0:
        raise InvalidArgument(f"extracting the archive into {path} failed: {err}")


@contextlib.contextmanager
def mounted_rootfs(images: Any, bundles: Path, cid: str, running: bool, pid: int = 0,
                   binds: Sequence[tuple[str, str, bool]] = ()) -> Iterator[Path]:
    """The container's filesystem as ``docker cp`` sees it: the rootfs *with* its volumes and
    binds. A running container's is ``/proc/<pid>/root`` (its own mount namespace, where the
    volumes are; the bundle's rootfs in ours has none of them). A stopped container's is its
    snapshot mounted on a temp dir with each ``(source, destination, read_only)`` of ``binds``
    bind-mounted at its destination, as dockerd mounts a stopped container's volumes for
    archive requests; all unmounted and removed on exit."""
    if running:
        yield Path(f"/proc/{pid}/root") if pid > 0 else bundles / cid / "rootfs"
        return
    tmp = Path(tempfile.mkdtemp(prefix=f"cp-{cid[:12]}-", dir=bundles))
    try:
        images.mount_rootfs(cid, tmp)
        try:
            with contextlib.ExitStack() as undo:
                for source, dest, read_only in binds:
                    _bind(undo, tmp, source, dest, read_only)
                yield tmp
        finally:
            images.unmount_rootfs(tmp)
    finally:
        with contextlib.suppress(OSError):
            tmp.rmdir()


def _bind(undo: contextlib.ExitStack, root: Path, source: str, dest: str, read_only: bool) -> None:
    from dockyard.linux import syscalls as s
    if not source or not os.path.exists(source):
        return  # a volume that was never created, a bind source gone: nothing to show there
    target = resolve(root, dest)
    if not target.exists():  # the container ran with it, so its mount point normally exists
        if os.path.isdir(source):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
    s.mount(source, str(target), None, s.MS_BIND | s.MS_REC)
    undo.callback(s.umount2, str(target), s.MNT_DETACH)
    if read_only:
        s.mount(None, str(target), None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY)
