"""Extract one uncompressed layer tar from stdin into a directory, confined by chroot(2).

Run as a fresh process (``python -I -S <this file> TARGET MODE``), never imported by a threaded
daemon: it chroots into TARGET first, so every path and every symlink in the layer (absolute
ones included: ``/etc -> /host/etc``) resolves inside TARGET. That closes the classic layer
escapes: ``../`` names, a symlink planted by the layer and then written through, a hard link to
a host file. This is Docker's chrootarchive idea. stdlib only; all imports happen before the
chroot, since nothing of the host is reachable after it.

The tar reader is a lean streaming one (not ``tarfile``, which ran at ~250 MB/s here and copied
every byte through Python): headers are read exactly, 512 bytes at a time, and a regular file's
data goes from the stdin pipe to the new file with splice(2), so the bytes never enter this
process. It reads what layers are made of, as Go's archive/tar (docker) does: ustar and GNU
headers (base-256 numbers, ``L``/``K`` long names), PAX ``x`` records (path, linkpath, size,
uid, gid, mtime, ``SCHILY.xattr.*``); a PAX global header (``g``) is ignored, as docker does.
Regular files (``0``, ``\\0``, ``7``), hard links, symlinks, directories, character and block
devices and FIFOs are created; any other member type (GNU sparse, multi-volume, unknown) is
refused, as docker refuses it. Every header's checksum is verified; a truncated member or
header, a bad checksum or garbage where a header belongs is an error. A clean EOF at a header
boundary ends the archive like a zero block does (Go's archive/tar accepts both).

MODE ``overlay``: whiteouts become overlay whiteouts (``.wh.x`` -> char device 0/0 named ``x``;
``.wh..wh..opq`` -> xattr ``trusted.overlay.opaque=y`` on the directory). MODE ``naive``: the
target is a full copy of the parent layer and whiteouts delete (``.wh..wh..opq`` deletes the
directory's entries that this layer did not itself add).

Input, one of two:

- ``TARGET MODE``: the layer tar on stdin, a pipe (:class:`Source`);
- ``TARGET MODE --follow CTL``: stdin is a regular FILE that the parent is still writing (the
  layer blob it stores in the content store) and fd ``CTL`` a pipe on which the parent sends
  how many bytes of it are written so far, as 8-byte little-endian totals, closing the pipe
  after the last (:class:`FileSource`). Member data then goes file to file in the kernel
  (copy_file_range(2)): no pipe between the two processes, whose page allocations and wake-ups
  cost as much CPU as the extraction itself here. Bytes past the last total are never read.

Exit status 0 on success, printing the layer's content size (what docker shows as SIZE) on
stdout; 1 with one line on stderr (naming the member) on failure.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys

BLOCK = 512
WH_PREFIX = b".wh."
WH_OPAQUE = b".wh..wh..opq"
# overlayfs private attributes must never come from a layer: a forged redirect or metacopy
# could make the kernel follow paths outside the layer.
_FORBIDDEN_XATTR_PREFIXES = (b"trusted.overlay.", b"user.overlay.")
_XATTR = b"SCHILY.xattr."
# Files up to this size are read with their padding in one read(2) and written; bigger ones
# are spliced (a splice costs more syscalls than it saves on a small file).
_SMALL = 1 << 16
_CHUNK = 1 << 20
_MAX_EXTENDED = 1 << 20
_REG = (b"0", b"\0", b"7")
_HEADER_ONLY = (b"1", b"2", b"3", b"4", b"5", b"6")  # no data follows, whatever size says
_POSIX_MAGIC = b"ustar\x0000"


class BadTar(Exception):
    """The input is not a well-formed tar (reported as ``invalid layer tar: ...``)."""


class Source:
    """Exact reads from a file descriptor, and copies of member data to another one.

    Never reads past what it was asked for, so splice(2) can take a member's data straight
    from the pipe. Falls back to read/write when splice is refused (stdin not a pipe, or a
    filesystem without splice support)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.splice = True
        self._buf = bytearray(_CHUNK)

    def read_exact(self, n: int, what: str) -> bytes:
        parts = []
        left = n
        while left:
            b = os.read(self.fd, min(left, _CHUNK))
            if not b:
                raise BadTar(f"unexpected end of data in {what}")
            parts.append(b)
            left -= len(b)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_header(self) -> bytes:
        """The next 512-byte block, or b"" on a clean EOF at the block boundary."""
        b = os.read(self.fd, BLOCK)
        if b and len(b) < BLOCK:
            b += self.read_exact(BLOCK - len(b), "header (truncated header)")
        return b

    def skip(self, n: int, what: str) -> None:
        while n:
            b = os.read(self.fd, min(n, _CHUNK))
            if not b:
                raise BadTar(f"unexpected end of data in {what}")
            n -= len(b)

    def copy_to(self, out: int, n: int, what: str) -> None:
        while n and self.splice:
            try:
                k = os.splice(self.fd, out, n)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                self.splice = False  # nothing was moved: carry on with read/write
                break
            if k == 0:
                raise BadTar(f"unexpected end of data in {what}")
            n -= k
        view = memoryview(self._buf)
        while n:
            k = os.readv(self.fd, [view[: min(n, _CHUNK)]])
            if k == 0:
                raise BadTar(f"unexpected end of data in {what}")
            _write_all(out, view[:k])
            n -= k


    def drain(self) -> None:
        """Read what follows the end-of-archive marker, so the writer never sees a broken pipe."""
        while os.read(self.fd, _CHUNK):
            pass


class FileSource:
    """The same reads as :class:`Source`, from a regular file ``fd`` that grows while we read.

    ``ctl`` carries the number of bytes written so far (8-byte little-endian totals, the last
    one wins); its EOF means the file is complete. A read beyond what is written waits for the
    next total; beyond the final one it is a truncated archive."""

    def __init__(self, fd: int, ctl: int) -> None:
        self.fd, self._ctl = fd, ctl
        self._pos = 0
        self._avail = 0
        self._done = False
        self._rest = b""
        self._cfr = True  # copy_file_range works between these two files (until refused)
        self._buf = bytearray(_CHUNK)

    def _wait(self, n: int) -> int:
        """Bytes available from the current position, waiting until there are ``n`` (or the
        writer is done)."""
        while self._avail - self._pos < n and not self._done:
            data = os.read(self._ctl, 1 << 16)
            if not data:
                self._done = True
                break
            data = self._rest + data
            whole = len(data) - len(data) % 8
            if whole:
                self._avail = max(self._avail, int.from_bytes(data[whole - 8 : whole], "little"))
            self._rest = data[whole:]
        return self._avail - self._pos

    def read_exact(self, n: int, what: str) -> bytes:
        if self._wait(n) < n:
            raise BadTar(f"unexpected end of data in {what}")
        parts = []
        left = n
        while left:
            b = os.pread(self.fd, min(left, _CHUNK), self._pos)
            if not b:  # the file is shorter than the writer said: treat as truncated
                raise BadTar(f"unexpected end of data in {what}")
            parts.append(b)
            self._pos += len(b)
            left -= len(b)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_header(self) -> bytes:
        """The next 512-byte block, or b"" on a clean EOF at the block boundary."""
        have = self._wait(BLOCK)
        if have == 0:
            return b""
        return self.read_exact(BLOCK, "header (truncated header)")

    def skip(self, n: int, what: str) -> None:
        if self._wait(n) < n:
            raise BadTar(f"unexpected end of data in {what}")
        self._pos += n

    def copy_to(self, out: int, n: int, what: str) -> None:
        while n:
            have = min(self._wait(1), n)
            if have <= 0:
                raise BadTar(f"unexpected end of data in {what}")
            k = 0
            if self._cfr:
                try:
                    k = os.copy_file_range(self.fd, out, have, self._pos)
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        raise
                    self._cfr = False  # nothing was copied: carry on with pread/write
            if not k:
                view = memoryview(self._buf)[: min(have, _CHUNK)]
                k = os.preadv(self.fd, [view], self._pos)
                if k == 0:
                    raise BadTar(f"unexpected end of data in {what}")
                _write_all(out, view[:k])
            self._pos += k
            n -= k

    def drain(self) -> None:
        """Wait for the writer's last total (it has nothing to read past the archive's end)."""
        while not self._done:
            self._wait(1 << 62)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _nts(b: bytes) -> bytes:
    """A NUL-terminated string field."""
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


def _num(field: bytes, what: str) -> int:
    """A numeric header field: octal text, or GNU base-256 (first byte 0x80 or 0xff)."""
    if field[:1] in (b"\x80", b"\xff"):
        n = int.from_bytes(field[1:], "big")
        return n - (1 << (8 * (len(field) - 1))) if field[0] == 0xFF else n
    s = _nts(field).strip(b" ")
    try:
        return int(s, 8) if s else 0
    except ValueError:
        raise BadTar(f"invalid tar header ({what} field {s[:20]!r})") from None


def _checksum_ok(blk: bytes) -> bool:
    want = _num(blk[148:156], "checksum")
    unsigned = sum(blk[:148]) + sum(blk[156:]) + 8 * 0x20
    if want == unsigned:
        return True
    # Some old tars summed signed chars.
    signed = unsigned - 256 * sum(1 for c in blk[:148] + blk[156:] if c > 127)
    return want == signed


def _pax(data: bytes, what: str) -> dict[bytes, bytes]:
    """PAX extended header records: ``"<len> <key>=<value>\\n"``."""
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding after the last record
            break
        sp = data.find(b" ", pos)
        try:
            length = int(data[pos:sp]) if sp > pos else 0
        except ValueError:
            length = 0
        rec = data[sp + 1 : pos + length]
        if length <= 0 or pos + length > len(data) or not rec.endswith(b"\n") or b"=" not in rec:
            raise BadTar(f"invalid PAX header in {what}")
        k, v = rec[:-1].split(b"=", 1)
        out[k] = v
        pos += length
    return out


class Member:
    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime", "linkname", "dev", "xattrs")

    def __init__(self) -> None:
        self.xattrs: list[tuple[bytes, bytes]] = []


def members(src: Source | FileSource):  # type: ignore[no-untyped-def]  # -> Iterator[Member]
    """Yield each member; its data (``size`` bytes, then padding) must be consumed with
    :func:`consume` before the next one is read."""
    long_name: bytes | None = None
    long_link: bytes | None = None
    pax: dict[bytes, bytes] = {}
    first = True
    while True:
        blk = src.read_header()
        if not blk:
            if first:
                raise BadTar("empty file")
            if long_name is not None or long_link is not None or pax:
                raise BadTar("unexpected end of data after an extended header")
            return
        if blk.count(0) == BLOCK:
            return  # end-of-archive marker (what follows is drained by the caller)
        if not _checksum_ok(blk):
            raise BadTar("invalid tar header (bad checksum)")
        first = False
        typ = blk[156:157]
        size = _num(blk[124:136], "size")
        if size < 0:
            raise BadTar("invalid tar header (negative size)")
        name = _nts(blk[0:100])
        if blk[257:265] == _POSIX_MAGIC:
            prefix = _nts(blk[345:500])
            if prefix:
                name = prefix + b"/" + name
        what = repr(name.decode(errors="replace"))
        if typ in (b"L", b"K", b"x", b"g"):
            if size > _MAX_EXTENDED:  # held in memory: bounded, as Go's archive/tar bounds it
                raise BadTar(f"extended header before {what} is too large ({size} bytes)")
            data = src.read_exact(size + (-size % BLOCK), f"extended header before {what}")[:size]
            if typ == b"L":
                long_name = _nts(data)
            elif typ == b"K":
                long_link = _nts(data)
            elif typ == b"x":
                pax.update(_pax(data, what))
            # "g": global PAX defaults; docker ignores them too.
            continue
        m = Member()
        m.type = typ
        m.name = pax.get(b"path", long_name if long_name is not None else name)
        m.linkname = pax.get(b"linkpath", long_link if long_link is not None else _nts(blk[157:257]))
        m.mode = _num(blk[100:108], "mode") & 0o7777
        m.uid = _num(blk[108:116], "uid")
        m.gid = _num(blk[116:124], "gid")
        m.mtime = _num(blk[136:148], "mtime")
        m.dev = (_num(blk[329:337], "devmajor"), _num(blk[337:345], "devminor")) if typ in (b"3", b"4") else (0, 0)
        try:
            if b"size" in pax:
                size = int(pax[b"size"])
            if b"uid" in pax:
                m.uid = int(pax[b"uid"])
            if b"gid" in pax:
                m.gid = int(pax[b"gid"])
            if b"mtime" in pax:
                m.mtime = float(pax[b"mtime"])  # type: ignore[assignment]
        except ValueError:
            raise BadTar(f"invalid PAX value in {what}") from None
        if size < 0:
            raise BadTar(f"invalid PAX size in {what}")
        if any(k.startswith(b"GNU.sparse.") for k in pax):
            raise BadTar(f"{what}: sparse files are not supported")
        m.xattrs = [(k[len(_XATTR):], v) for k, v in pax.items() if k.startswith(_XATTR)]
        m.size = 0 if typ in _HEADER_ONLY else size
        if typ == b"\0" and m.name.endswith(b"/"):
            m.type = b"5"  # old tars mark directories by a trailing slash only
        long_name = long_link = None
        pax = {}
        yield m


def consume(src: Source | FileSource, m: Member, out: int | None) -> None:
    """Read the member's data (into ``out`` if given) and its padding."""
    pad = -m.size % BLOCK
    what = repr(m.name.decode(errors="replace"))
    if out is None:
        src.skip(m.size + pad, what)
    elif m.size <= _SMALL:
        _write_all(out, src.read_exact(m.size + pad, what)[: m.size])
    else:
        src.copy_to(out, m.size, what)
        src.skip(pad, what)


def _climbs(rel: bytes) -> bool:
    """Does a relative path climb above where it starts (``../x``, ``a/../../x``)?"""
    norm = os.path.normpath(rel) if rel else b"."
    return norm == b".." or norm.startswith(b"../")


def _clean(name: bytes, what: str = "") -> bytes:
    """A member name as an absolute path inside the chroot. A name that climbs above the
    layer's root is refused, as moby refuses it ("is outside of"): the chroot would confine
    it anyway, but a layer that tries is hostile or broken, and docker would not take it."""
    rel = name.lstrip(b"/")
    if _climbs(rel):
        raise BadTar(f"{what}{name.decode(errors='replace')!r} is outside of the layer root")
    return os.path.normpath(b"/" + rel)


def _remove(path: bytes) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _ensure_parent(path: bytes) -> None:
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        # A non-directory in the way (or a dangling symlink) is replaced, as docker does.
        if os.path.lexists(parent) and not os.path.isdir(parent):
            _remove(parent)
        os.makedirs(parent, mode=0o755, exist_ok=True)


def _set_attrs(path: bytes, m: Member) -> None:
    os.chown(path, m.uid, m.gid, follow_symlinks=False)
    if m.type != b"2":  # a symlink's mode is not settable (and means nothing)
        os.chmod(path, m.mode)  # after chown, which clears set-id bits
    os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)


def _create(src: Source | FileSource, m: Member, path: bytes) -> int:
    """Create the member at ``path`` (nothing there); return what it adds to the content size."""
    t = m.type
    if t in _REG:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            consume(src, m, fd)
            os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode)
            os.utime(fd, (m.mtime, m.mtime))
        finally:
            os.close(fd)
        return m.size
    consume(src, m, None)
    if t == b"5":
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass  # an existing directory is kept and takes the member's attributes
        os.chown(path, m.uid, m.gid)
        os.chmod(path, m.mode)
        return 0
    if t == b"2":
        # a relative target that climbs above the root from where the link sits: moby's
        # breakout check (absolute targets resolve inside the container's root at run time)
        if not m.linkname.startswith(b"/") and _climbs(os.path.join(os.path.dirname(path).lstrip(b"/"), m.linkname)):
            raise BadTar(f"symlink {path.decode(errors='replace')!r} -> "
                         f"{m.linkname.decode(errors='replace')!r} is outside of the layer root")
        os.symlink(m.linkname, path)
        _set_attrs(path, m)
        return len(m.linkname)
    if t == b"1":
        target = _clean(m.linkname, "hard link target ")
        try:
            # No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink (as docker does).
            os.link(target, path, follow_symlinks=False)
        except FileNotFoundError:
            raise BadTar(f"hard link {path.decode(errors='replace')!r} -> "
                         f"{target.decode(errors='replace')!r}: target not found") from None
        if not stat.S_ISLNK(os.lstat(path).st_mode):
            _set_attrs(path, m)
        return 0
    if t in (b"3", b"4", b"6"):
        kind = {b"3": stat.S_IFCHR, b"4": stat.S_IFBLK, b"6": stat.S_IFIFO}[t]
        os.mknod(path, kind | 0o600, os.makedev(*m.dev))
        _set_attrs(path, m)
        return 0
    raise BadTar(f"unsupported member type {t!r} for {path.decode(errors='replace')!r}")


def extract(src: Source | FileSource, mode: str) -> int:
    """Apply the layer; return its content size as docker counts it (file sizes, symlink
    target lengths, hard links once)."""
    added: set[bytes] = set()
    content_size = 0
    dirs: list[tuple[bytes, float]] = []
    for m in members(src):
        path = _clean(m.name)
        if path == b"/":
            consume(src, m, None)
            continue
        base, parent = os.path.basename(path), os.path.dirname(path)
        if base == WH_OPAQUE:
            consume(src, m, None)
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
            consume(src, m, None)
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
        if st is not None and not (stat.S_ISDIR(st.st_mode) and m.type == b"5"):
            _remove(path)
        _ensure_parent(path)
        try:
            content_size += _create(src, m, path)
        except OSError as e:
            raise OSError(e.errno, f"{path.decode(errors='replace')}: {e.strerror}") from None
        added.add(path)
        for xname, v in m.xattrs:
            if xname.startswith(_FORBIDDEN_XATTR_PREFIXES):
                continue
            try:
                os.setxattr(path, xname, v, follow_symlinks=False)
            except OSError:
                pass  # e.g. security.selinux on a host without SELinux: docker ignores too
        if m.type == b"5":
            dirs.append((path, m.mtime))
    # Children changed the directories' mtimes: restore them last, deepest first.
    for path, mtime in sorted(dirs, reverse=True):
        try:
            os.utime(path, (mtime, mtime), follow_symlinks=False)
        except OSError:
            pass
    # Drain the end-of-archive padding so the writer never sees a broken pipe.
    src.drain()
    return content_size


def main() -> int:
    args = sys.argv[1:]
    follow = len(args) == 4 and args[2] == "--follow" and args[3].isdigit()
    if not (len(args) == 2 or follow) or args[1] not in ("overlay", "naive"):
        print("usage: chroot_extract.py TARGET overlay|naive [--follow CTLFD]", file=sys.stderr)
        return 2
    target, mode = args[0], args[1]
    try:
        os.chroot(target)
        os.chdir("/")
        os.umask(0o022)
        size = extract(FileSource(0, int(args[3])) if follow else Source(0), mode)
    except BadTar as e:
        print(f"invalid layer tar: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        print(f"extracting layer: {e.__class__.__name__}: {e}", file=sys.stderr)
        return 1
    print(size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
