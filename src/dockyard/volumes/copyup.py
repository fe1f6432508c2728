"""Copy an image's content at a mount point into an empty volume (docker's "copy-up").

``copy_up(volume_path, rootfs, destination)``: when ``volume_path`` is empty and
``destination`` (a path inside the container) exists as a directory in ``rootfs``, copy that
directory's tree into the volume, preserving file types, modes (setuid too), owners, times,
hard links, symlinks (as links, never followed), device nodes, fifos and extended attributes,
then give the volume's root the source directory's owner and mode. Returns True when it copied.

Safety: ``destination`` is resolved inside ``rootfs`` as the container would see it (symlinks
in the image, absolute or ``..``, cannot leave the rootfs: :func:`resolve_in_root`); the walk
then uses directory file descriptors and ``O_NOFOLLOW`` throughout, so a symlink in the tree is
copied as a link and never read through. The caller runs this before the container starts (no
process of the container can race it).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from dockyard.linux import pathres

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def resolve_in_root(root: str | os.PathLike[str], path: str) -> Path:
    """``path`` as seen from inside ``root`` (symlinks resolved relative to ``root``; ``..``
    stops at ``root``). The result may not exist. Like runc's securejoin."""
    return pathres.resolve(Path(root), path)


def _copy_xattrs(src_fd: int, dst_fd: int) -> None:
    try:
        names = os.listxattr(src_fd)
    except OSError:
        return
    for n in names:
        try:
            os.setxattr(dst_fd, n, os.getxattr(src_fd, n))
        except OSError:
            pass  # e.g. security.selinux where the volume's filesystem lacks it: best effort


def _set_meta_fd(fd: int, st: os.stat_result) -> None:
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears setuid bits
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_file(src_fd: int, dst_fd: int, size: int) -> None:
    left = size
    while left > 0:
        try:
            n = os.copy_file_range(src_fd, dst_fd, left)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            n = os.sendfile(dst_fd, src_fd, None, left)
        if n == 0:
            break
        left -= n


class _Copier:
    def __init__(self, dst_root_fd: int) -> None:
        self.dst_root = dst_root_fd
        self.inodes: dict[tuple[int, int], str] = {}  # (dev, ino) -> path relative to dst root

    def tree(self, src_dir: int, dst_dir: int, rel: str) -> None:
        with os.scandir(src_dir) as it:
            entries = list(it)
        for e in entries:
            st = e.stat(follow_symlinks=False)
            name = e.name
            relname = f"{rel}/{name}" if rel else name
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(name, 0o700, dir_fd=dst_dir)
                s = os.open(name, _DIR_FLAGS, dir_fd=src_dir)
                try:
                    d = os.open(name, _DIR_FLAGS, dir_fd=dst_dir)
                    try:
                        self.tree(s, d, relname)
                        _copy_xattrs(s, d)
                        _set_meta_fd(d, st)
                    finally:
                        os.close(d)
                finally:
                    os.close(s)
                continue
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.inodes:
                os.link(self.inodes[key], name, src_dir_fd=self.dst_root, dst_dir_fd=dst_dir,
                        follow_symlinks=False)
                continue
            if stat.S_ISREG(mode):
                s = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
                try:
                    d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                0o600, dir_fd=dst_dir)
                    try:
                        _copy_file(s, d, st.st_size)
                        _copy_xattrs(s, d)
                        _set_meta_fd(d, st)
                    finally:
                        os.close(d)
                finally:
                    os.close(s)
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
                os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                os.mknod(name, mode, st.st_rdev, dir_fd=dst_dir)
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
                os.chmod(name, stat.S_IMODE(mode), dir_fd=dst_dir)
                os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
            else:
                continue  # sockets: nothing to copy
            if st.st_nlink > 1:
                self.inodes[key] = relname


def copy_up(volume_path: str | os.PathLike[str], rootfs: str | os.PathLike[str], destination: str) -> bool:
    """Fill an empty volume with the image's content at ``destination``. See the module doc."""
    dst = os.open(volume_path, _DIR_FLAGS)
    try:
        with os.scandir(dst) as it:
            if any(True for _ in it):
                return False  # not empty: the volume's own data wins
        src_path = resolve_in_root(rootfs, destination)
        try:
            src = os.open(src_path, _DIR_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as e:
            if e.errno == errno.ELOOP:  # the last component is a link resolve_in_root left: none
                return False
            raise
        try:
            _Copier(dst).tree(src, dst, "")
            _set_meta_fd(dst, os.fstat(src))
        finally:
            os.close(src)
        return True
    finally:
        os.close(dst)
