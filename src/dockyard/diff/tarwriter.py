"""A small, fast PAX tar writer for layers: files read from the host, headers built directly.

``tarfile`` spends most of a layer's time per entry (a passwd lookup in ``gettarinfo``, a PAX
header for every float mtime, generic header code); a build step's commit writes thousands of
small entries, so this writer builds the 512-byte ustar headers itself. What it writes:

* one ustar header per entry (``magic "ustar\\0" version "00"``, empty uname/gname), directory
  names ending in ``/``; modification times truncated to whole seconds, as Docker's
  ``pkg/archive`` does, so most entries need no PAX record at all;
* a PAX extended header (``././@PaxHeader``, type ``x``) before an entry only when needed:
  a path or link target longer than 100 bytes or not ASCII, ids or sizes too big for octal
  fields, extended attributes (``SCHILY.xattr.<name>``; overlayfs's own ``trusted.overlay.*``
  / ``user.overlay.*`` are never written);
* regular files that share an inode (``st_nlink > 1``) once, later names as hard links
  (type ``1``) to the first; sockets are skipped (a tar can't hold them);
* the end: two zero blocks, padded to a 10 KiB record as ``tarfile`` does.

``TarWriter(out)``: ``add(full_path, arcname) -> content size`` (file size or symlink target
length, 0 otherwise, docker's layer SIZE), ``add_marker(arcname)`` (an empty regular file with
mtime 0: whiteouts), ``close()``. ``out`` only needs ``write``. Reading never follows a symlink.
"""

from __future__ import annotations

import os
import stat
from typing import Protocol

BLOCK = 512
RECORD = 20 * BLOCK
_BUF = 1 << 20
_SKIP_XATTRS = ("trusted.overlay.", "user.overlay.")
_TYPES = {
    stat.S_IFREG: b"0", stat.S_IFLNK: b"2", stat.S_IFCHR: b"3", stat.S_IFBLK: b"4",
    stat.S_IFDIR: b"5", stat.S_IFIFO: b"6",
}


class _Out(Protocol):
    def write(self, data: bytes, /) -> object: ...


def _octal(n: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, n)


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode() + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:  # the length counts its own digits
        n = len(str(n).encode()) + len(body)
    return str(n).encode() + body


def _header(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes,
            linkname: bytes = b"", devmajor: int = 0, devminor: int = 0) -> bytes:
    h = bytearray(BLOCK)
    h[0:len(name)] = name
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(uid, 8)
    h[116:124] = _octal(gid, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(mtime, 12)
    h[148:156] = b"        "
    h[156:157] = typeflag
    h[157:157 + len(linkname)] = linkname
    h[257:265] = b"ustar\x0000"
    h[329:337] = _octal(devmajor, 8)
    h[337:345] = _octal(devminor, 8)
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def _pad(n: int) -> bytes:
    return b"\0" * (-n % BLOCK)


class TarWriter:
    def __init__(self, out: _Out) -> None:
        self._out = out
        self._buf = bytearray()
        self._offset = 0
        self._inodes: dict[tuple[int, int], bytes] = {}

    def _write(self, data: bytes) -> None:
        self._buf += data
        self._offset += len(data)
        if len(self._buf) >= _BUF:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._out.write(bytes(self._buf))
            self._buf.clear()

    def _entry(self, arc: bytes, st_mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes,
               link: bytes = b"", rdev: int = 0, xattrs: list[tuple[str, bytes]] | None = None) -> None:
        pax: list[bytes] = []
        name, linkname = arc, link
        if len(arc) > 100 or not arc.isascii():
            pax.append(_pax_record("path", arc))
            name = arc[:100]
        if len(link) > 100 or not link.isascii():
            pax.append(_pax_record("linkpath", link))
            linkname = link[:100]
        if not 0 <= uid < 0o7777777:
            pax.append(_pax_record("uid", str(uid).encode()))
            uid = 0
        if not 0 <= gid < 0o7777777:
            pax.append(_pax_record("gid", str(gid).encode()))
            gid = 0
        if size >= 0o77777777777:
            pax.append(_pax_record("size", str(size).encode()))
        if not 0 <= mtime < 0o77777777777:
            pax.append(_pax_record("mtime", str(mtime).encode()))
            mtime = 0
        for k, v in xattrs or ():
            pax.append(_pax_record("SCHILY.xattr." + k, v))
        if pax:
            data = b"".join(pax)
            self._write(_header(b"././@PaxHeader", 0o644, 0, 0, len(data), 0, b"x"))
            self._write(data + _pad(len(data)))
        major, minor = (os.major(rdev), os.minor(rdev)) if rdev else (0, 0)
        self._write(_header(name, stat.S_IMODE(st_mode), uid, gid,
                            size if size < 0o77777777777 else 0, mtime, typeflag, linkname, major, minor))

    def add(self, full: str, arc: str) -> int:
        """Write ``full`` (lstat, never followed) as ``arc``; return its content size."""
        st = os.lstat(full)
        fmt = stat.S_IFMT(st.st_mode)
        typeflag = _TYPES.get(fmt)
        if typeflag is None:
            return 0  # a socket
        name = arc.encode("utf-8", "surrogateescape")
        if fmt == stat.S_IFDIR and not name.endswith(b"/"):
            name += b"/"
        xattrs = _xattrs(full)
        mtime = int(st.st_mtime)
        if fmt == stat.S_IFREG:
            if st.st_nlink > 1:
                first = self._inodes.setdefault((st.st_dev, st.st_ino), name)
                if first != name:
                    self._entry(name, st.st_mode, st.st_uid, st.st_gid, 0, mtime, b"1", first, xattrs=xattrs)
                    return 0
            self._entry(name, st.st_mode, st.st_uid, st.st_gid, st.st_size, mtime, b"0", xattrs=xattrs)
            self._copy(full, st.st_size)
            return st.st_size
        if fmt == stat.S_IFLNK:
            target = os.readlink(full.encode("utf-8", "surrogateescape"))
            self._entry(name, st.st_mode, st.st_uid, st.st_gid, 0, mtime, b"2", target, xattrs=xattrs)
            return len(target)
        rdev = st.st_rdev if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0
        self._entry(name, st.st_mode, st.st_uid, st.st_gid, 0, mtime, typeflag, rdev=rdev, xattrs=xattrs)
        return 0

    def _copy(self, full: str, size: int) -> None:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            left = size
            while left > 0:
                chunk = os.read(fd, min(left, _BUF))
                if not chunk:
                    raise OSError(f"{full}: file shrank while it was archived ({left} bytes missing)")
                self._write(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        self._write(_pad(size))

    def add_marker(self, arc: str) -> None:
        """An empty regular file, mode 0644, mtime 0 (``.wh.<name>``, ``.wh..wh..opq``)."""
        self._entry(arc.encode("utf-8", "surrogateescape"), 0o644, 0, 0, 0, 0, b"0")

    def close(self) -> None:
        self._write(b"\0" * (2 * BLOCK))
        self._write(b"\0" * (-self._offset % RECORD))
        self._flush()


def _xattrs(full: str) -> list[tuple[str, bytes]]:
    try:
        names = os.listxattr(full, follow_symlinks=False)
    except OSError:
        return []
    out = []
    for x in sorted(names):
        if x.startswith(_SKIP_XATTRS):
            continue
        try:
            out.append((x, os.getxattr(full, x, follow_symlinks=False)))
        except OSError:
            continue
    return out
