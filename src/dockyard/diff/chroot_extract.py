"""Extract one uncompressed layer tar from stdin into a directory, confined by chroot(2).

Run as a fresh process (``python -I <this file> TARGET MODE``), never imported by a threaded
daemon: it chroots into TARGET first, so every path and every symlink in the layer (absolute
ones included: ``/etc -> /host/etc``) resolves inside TARGET. That closes the classic layer
escapes: ``../`` names, a symlink planted by the layer and then written through, a hard link to
a host file. This is Docker's chrootarchive idea. stdlib only; all imports happen before the
chroot, since nothing of the host is reachable after it.

MODE ``overlay``: whiteouts become overlay whiteouts (``.wh.x`` -> char device 0/0 named ``x``;
``.wh..wh..opq`` -> xattr ``trusted.overlay.opaque=y`` on the directory). MODE ``naive``: the
target is a full copy of the parent layer and whiteouts delete (``.wh..wh..opq`` deletes the
directory's entries that this layer did not itself add).

Exit status 0 on success, printing the layer's content size (what docker shows as SIZE) on
stdout; 1 with one line on stderr (naming the member) on failure.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tarfile
from typing import BinaryIO

WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
# overlayfs private attributes must never come from a layer: a forged redirect or metacopy
# could make the kernel follow paths outside the layer.
_FORBIDDEN_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


def _clean(name: str) -> str:
    """A member name as an absolute path inside the chroot (``..`` cannot climb above /)."""
    return os.path.normpath("/" + name.lstrip("/"))


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _ensure_parent(path: str) -> None:
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        # A non-directory in the way (or a dangling symlink) is replaced, as docker does.
        if os.path.lexists(parent) and not os.path.isdir(parent):
            _remove(parent)
        os.makedirs(parent, mode=0o755, exist_ok=True)


class ForwardReader:
    """A pipe that tarfile's seekable mode accepts: tell() counts, seek() may only go forward.

    tarfile's stream mode ("r|") re-buffers by concatenating bytes and runs at a third of the
    speed; reading the pipe's buffer directly avoids that copy. tarfile only seeks forward
    while reading sequentially (a backwards seek, e.g. to re-read a hard link's target, is
    refused and reported as an error)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._pos = 0
        self.last_header = b""  # the last 512-byte read: tarfile reads headers this way

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._pos += len(data)
        if n == tarfile.BLOCKSIZE:
            self.last_header = data
        return data

    def check_end(self) -> None:
        """tarfile ends quietly on a truncated or garbage header after the first member. Like
        Go's archive/tar (what docker uses), accept only a zero block or a clean EOF there."""
        end = self.last_header
        if end and (len(end) != tarfile.BLOCKSIZE or end.count(0) != tarfile.BLOCKSIZE):
            raise tarfile.ReadError(
                "unexpected end of data (truncated header)" if len(end) != tarfile.BLOCKSIZE
                else "invalid tar header"
            )

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def seek(self, off: int, whence: int = 0) -> int:
        if whence == 1:
            off += self._pos
        elif whence != 0:
            raise OSError("seek from the end of a stream")
        if off < self._pos:
            raise OSError(f"seek backwards in a stream (to {off} from {self._pos})")
        while self._pos < off:
            if not self.read(min(off - self._pos, 1 << 20)):
                break
        return self._pos


def extract(stream: BinaryIO, mode: str) -> int:
    """Apply the layer; return its content size as docker counts it (file sizes, symlink
    target lengths, hard links once)."""
    added: set[str] = set()
    content_size = 0
    dirs: list[tarfile.TarInfo] = []
    filter_kw = {"filter": tarfile.fully_trusted_filter} if hasattr(tarfile, "fully_trusted_filter") else {}
    # Big copy buffers: the default 16 KiB costs a syscall per 16 KiB.
    fwd = ForwardReader(stream)
    with tarfile.open(fileobj=fwd, mode="r:", copybufsize=1 << 20) as tf:
        tf.errorlevel = 1
        for m in tf:
            path = _clean(m.name)
            if path == "/":
                continue
            base, parent = os.path.basename(path), os.path.dirname(path)
            if base == WH_OPAQUE:
                os.makedirs(parent, mode=0o755, exist_ok=True)
                if mode == "overlay":
                    os.setxattr(parent, "trusted.overlay.opaque", b"y")
                else:
                    for e in os.listdir(parent):
                        child = os.path.join(parent, e)
                        if child not in added:
                            _remove(child)
                continue
            if base.startswith(WH_PREFIX):
                victim = os.path.join(parent, base[len(WH_PREFIX):])
                _ensure_parent(victim)
                _remove(victim)
                if mode == "overlay":
                    os.mknod(victim, stat.S_IFCHR | 0o000, os.makedev(0, 0))
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                st = None
            if st is not None and not (stat.S_ISDIR(st.st_mode) and m.isdir()):
                _remove(path)
            _ensure_parent(path)
            m.name = path.lstrip("/")
            if m.islnk():
                m.linkname = _clean(m.linkname).lstrip("/")
            tf.extract(m, "/", set_attrs=True, numeric_owner=True, **filter_kw)
            added.add(path)
            if m.isreg():
                content_size += m.size
            elif m.issym():
                content_size += len(m.linkname.encode())
            for k, v in m.pax_headers.items():
                if not k.startswith("SCHILY.xattr."):
                    continue
                xname = k[len("SCHILY.xattr."):]
                if xname.startswith(_FORBIDDEN_XATTR_PREFIXES):
                    continue
                try:
                    os.setxattr(path, xname, v.encode("utf-8", "surrogateescape"), follow_symlinks=False)
                except OSError:
                    pass  # e.g. security.selinux on a host without SELinux: docker ignores too
            if m.isdir():
                dirs.append(m)
    fwd.check_end()
    # Children changed the directories' mtimes: restore them last, deepest first.
    for m in sorted(dirs, key=lambda t: t.name, reverse=True):
        try:
            os.utime("/" + m.name, (m.mtime, m.mtime), follow_symlinks=False)
        except OSError:
            pass
    # Drain the end-of-archive padding so the writer never sees a broken pipe.
    while stream.read(1 << 16):
        pass
    return content_size


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[2] not in ("overlay", "naive"):
        print("usage: chroot_extract.py TARGET overlay|naive", file=sys.stderr)
        return 2
    target, mode = sys.argv[1], sys.argv[2]
    stream = open(0, "rb", buffering=1 << 20, closefd=False)  # noqa: SIM115
    try:
        os.chroot(target)
        os.chdir("/")
        os.umask(0o022)
        size = extract(stream, mode)
    except tarfile.ReadError as e:
        print(f"invalid layer tar: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        print(f"extracting layer: {e.__class__.__name__}: {e}", file=sys.stderr)
        return 1
    print(size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
