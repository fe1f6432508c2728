"""The build context: the tree COPY/ADD read from, hashed by content, .dockerignore applied.

Two implementations of one interface (:class:`BuildContext`):

* :class:`TarContext` (``TarContext.load(stream, spool_dir)``): the tar the client sent
  (``POST /build``, plain or gzip) is read ONCE into an index plus one spool file holding every
  file's bytes, each file hashed on the way. Nothing is written per file: a fully cached
  build never touches the context on disk. The first step that needs real files calls
  ``host_root()``, which materialises the tree in a fresh directory. The tar is not trusted:
  names are cleaned (``../x`` and ``/x`` stay inside), an entry below a symlink is refused (a
  tar cannot plant ``a -> /etc`` and then write ``a/passwd``), hard links must name a regular
  file of the tar, devices and fifos are dropped; materialising only ever creates entries
  below directories it made itself, files ``O_EXCL|O_NOFOLLOW``.
* :class:`DirContext` (``DirContext(path)``): an existing directory, hashed lazily.

The interface works on clean relative paths (``""`` is the root): ``kind(rel)`` ("dir",
"file", "link", None), ``readlink``, ``listdir``, ``mode``, ``file_hash``, ``read_file``,
``excluded(rel)`` (.dockerignore; plus the Dockerfile and .dockerignore themselves when the
patterns exclude them, as moby's removeDockerfile), ``resolve(path)`` (symlinks followed
inside the context, see ``linux.pathres``), ``glob(pattern)``, ``digest_of(rel)`` and ``host_root()``.

``digest_of(rel)`` summarises a COPY source for the build cache: names, types, mode bits, link
targets and file CONTENT (sha256), never mtimes or owners (COPY resets owners); it also
returns the per-file digests so a cache miss can say which file changed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.builder.dockerignore import PatternMatcher, read_patterns
from dockyard.errors import InvalidArgument
from dockyard.linux.pathres import resolve_rel

_BUF = 1 << 20


def clean(name: str) -> str:
    """A path as a clean relative path that cannot leave the root ("" for the root)."""
    return posixpath.normpath("/" + name).lstrip("/")


class BuildContext:
    """Base: .dockerignore handling and the operations built on the primitives."""

    dockerfile: str = "Dockerfile"

    def _init_ignore(self, dockerfile: str) -> None:
        self.dockerfile = dockerfile
        text = None
        if not os.path.isabs(dockerfile):
            specific = clean(dockerfile + ".dockerignore")
            if self.kind(specific) == "file":
                text = self.read_file(specific)
        if text is None and self.kind(".dockerignore") == "file":
            text = self.read_file(".dockerignore")
        self.patterns = read_patterns(text.decode("utf-8", "replace")) if text is not None else []
        self.matcher = PatternMatcher(self.patterns)
        self._removed = {n for n in (".dockerignore", clean(dockerfile))
                         if self.patterns and self.matcher.matches(n)}

    # primitives ---------------------------------------------------------------------------
    def kind(self, rel: str) -> str | None:
        raise NotImplementedError

    def readlink(self, rel: str) -> str | None:
        raise NotImplementedError

    def listdir(self, rel: str) -> list[str]:
        raise NotImplementedError

    def mode(self, rel: str) -> int:
        raise NotImplementedError

    def file_hash(self, rel: str) -> str:
        raise NotImplementedError

    def read_file(self, rel: str) -> bytes:
        raise NotImplementedError

    def host_root(self) -> Path:
        raise NotImplementedError

    def mtime(self, rel: str) -> int:
        raise NotImplementedError

    def copy_to(self, rel: str, fd: int) -> None:
        """Write the content of the file ``rel`` to the open file ``fd``."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # derived ------------------------------------------------------------------------------
    def excluded(self, rel: str) -> bool:
        if rel in ("", "."):
            return False
        if rel in self._removed:
            return True
        return bool(self.patterns) and self.matcher.matches(rel)

    def entered_though_excluded(self, rel: str) -> bool:
        """An excluded directory that an exception pattern (``!dir/file``) may re-include
        something from: clients' tar walks (moby's TarWithOptions) still enter it."""
        return (rel not in self._removed and bool(self.patterns) and self.kind(rel) == "dir"
                and self.matcher.may_reinclude_under(rel))

    def resolve(self, path: str, *, follow_final: bool = True) -> str:
        return resolve_rel(path, self.readlink, follow_final=follow_final)

    def exists(self, rel: str) -> bool:
        return self.kind(rel) is not None and not self.excluded(rel)

    def walk(self, rel: str = "") -> list[str]:
        """``rel`` and everything below it that is not excluded, parents first, sorted."""
        out: list[str] = []

        def go(r: str) -> None:
            if self.excluded(r):
                # an excluded directory is still entered when an exception (``!dir/file``) may
                # re-include something in it, as the clients' tar walk does (moby's
                # TarWithOptions): the directory itself is not yielded, its kept children are
                if self.entered_though_excluded(r):
                    for name in self.listdir(r):
                        go(f"{r}/{name}")
                return
            out.append(r)
            if self.kind(r) == "dir":
                for name in self.listdir(r):
                    go(f"{r}/{name}" if r else name)

        go(rel)
        return out

    def glob(self, pattern: str) -> list[str]:
        """Entries matching a Go filepath.Match pattern, compared per path component."""
        parts = pattern.split("/")
        found: list[str] = []

        def go(r: str, depth: int) -> None:
            if depth == len(parts):
                found.append(r)
                return
            if (self.kind(r) if r else "dir") != "dir":
                return
            for name in self.listdir(r):
                child = f"{r}/{name}" if r else name
                if fnmatch.fnmatchcase(name, parts[depth]) and not self.excluded(child):
                    go(child, depth + 1)

        go("", 0)
        return sorted(found)

    def digest_of(self, rel: str) -> tuple[str, dict[str, str]]:
        entries: dict[str, str] = {}
        for r in self.walk(rel):
            k = self.kind(r)
            if k == "file":
                entries[r or "."] = f"f {self.mode(r):o} {self.file_hash(r)}"
            elif k == "link":
                entries[r or "."] = f"l {self.readlink(r)}"
            elif k == "dir":
                entries[r or "."] = f"d {self.mode(r):o}"
        h = hashlib.sha256()
        cut = len(rel) + 1 if rel else 0
        for r in sorted(entries):
            sub = (r[cut:] or ".") if r != rel else "."
            h.update(f"{sub}\0{entries[r]}\n".encode())
        return "sha256:" + h.hexdigest(), entries


class DirContext(BuildContext):
    """An existing directory used in place."""

    def __init__(self, path: Path, dockerfile: str = "Dockerfile") -> None:
        self.root = Path(path)
        if not self.root.is_dir():
            raise InvalidArgument(f"unable to prepare context: path {str(path)!r} not found")
        self._hashes: dict[str, str] = {}
        self._init_ignore(dockerfile)

    def _p(self, rel: str) -> str:
        return str(self.root) + ("/" + rel if rel else "")

    def _lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(self._p(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def kind(self, rel: str) -> str | None:
        st = self._lstat(rel)
        if st is None:
            return None
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        if stat.S_ISREG(st.st_mode):
            return "file"
        if stat.S_ISLNK(st.st_mode):
            return "link"
        return "other"

    def readlink(self, rel: str) -> str | None:
        return os.readlink(self._p(rel)) if self.kind(rel) == "link" else None

    def listdir(self, rel: str) -> list[str]:
        return sorted(os.listdir(self._p(rel)))

    def mode(self, rel: str) -> int:
        st = self._lstat(rel)
        return stat.S_IMODE(st.st_mode) if st else 0

    def file_hash(self, rel: str) -> str:
        h = self._hashes.get(rel)
        if h is None:
            hh = hashlib.sha256()
            fd = os.open(self._p(rel), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                while chunk := os.read(fd, _BUF):
                    hh.update(chunk)
            finally:
                os.close(fd)
            h = self._hashes[rel] = hh.hexdigest()
        return h

    def read_file(self, rel: str) -> bytes:
        fd = os.open(self._p(rel), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def host_root(self) -> Path:
        return self.root

    def mtime(self, rel: str) -> int:
        st = self._lstat(rel)
        return int(st.st_mtime) if st else 0

    def copy_to(self, rel: str, fd: int) -> None:
        src = os.open(self._p(rel), os.O_RDONLY | os.O_NOFOLLOW)
        try:
            _sendfile(fd, src, 0, os.fstat(src).st_size)
        finally:
            os.close(src)


@dataclass
class _Entry:
    kind: str  # dir | file | link
    mode: int
    mtime: int = 0
    offset: int = 0  # files: where the bytes are in the spool
    size: int = 0
    digest: str = ""
    link: str = ""


class _Reader:
    """Buffered exact reads over a stream whose read(n) may be slow per call (an HTTP body)."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.gz: zlib._Decompress | None = None
        head = self._raw(2)
        if head == b"\x1f\x8b":
            self.gz = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.buf += head if self.gz is None else self.gz.decompress(head)

    def _raw(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.src.read(n - len(out))
            if not chunk:
                break
            out += chunk
        return out

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.src.read(_BUF)
        if not chunk:
            self.eof = True
            if self.gz is not None:
                self.buf += self.gz.flush()
            return False
        self.buf += self.gz.decompress(chunk) if self.gz is not None else chunk
        return True

    def read(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n and self._fill():
            pass
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += len(out)
        if self.pos > _BUF:
            del self.buf[:self.pos]
            self.pos = 0
        return out


def _num(field: bytes) -> int:
    if field and field[0] & 0x80:  # base-256 (GNU) for big values
        n = int.from_bytes(field[1:], "big")
        return n
    text = field.split(b"\0", 1)[0].strip(b" \0")
    return int(text, 8) if text else 0


def _str(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        sp = data.find(b" ", pos)
        if sp < 0:
            break
        length = int(data[pos:sp])
        rec = data[sp + 1:pos + length - 1]
        k, _, v = rec.partition(b"=")
        out[k.decode()] = v.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarContext(BuildContext):
    """A context tar read into an index + spool; materialised on first need."""

    def __init__(self, entries: dict[str, _Entry], spool: BinaryIO, work: Path, dockerfile: str) -> None:
        self.entries = entries
        self.spool = spool
        self.work = work
        self._root: Path | None = None
        self._children: dict[str, list[str]] = {}
        for rel in entries:
            if rel:
                parent, _, name = rel.rpartition("/")
                self._children.setdefault(parent, []).append(name)
        for v in self._children.values():
            v.sort()
        self._init_ignore(dockerfile)

    @classmethod
    def load(cls, stream: BinaryIO, work: Path, dockerfile: str = "Dockerfile") -> TarContext:
        spool = tempfile.TemporaryFile(dir=work)  # noqa: SIM115 - owned by the context
        try:
            entries = _read_tar(_Reader(stream), spool)
        except BaseException:
            spool.close()
            raise
        return cls(entries, spool, work, dockerfile)

    def close(self) -> None:
        self.spool.close()

    def kind(self, rel: str) -> str | None:
        e = self.entries.get(rel)
        return e.kind if e else None

    def readlink(self, rel: str) -> str | None:
        e = self.entries.get(rel)
        return e.link if e is not None and e.kind == "link" else None

    def listdir(self, rel: str) -> list[str]:
        return self._children.get(rel, [])

    def mode(self, rel: str) -> int:
        e = self.entries.get(rel)
        return e.mode if e else 0

    def file_hash(self, rel: str) -> str:
        return self.entries[rel].digest

    def read_file(self, rel: str) -> bytes:
        e = self.entries[rel]
        return os.pread(self.spool.fileno(), e.size, e.offset)

    def mtime(self, rel: str) -> int:
        e = self.entries.get(rel)
        return e.mtime if e else 0

    def copy_to(self, rel: str, fd: int) -> None:
        e = self.entries[rel]
        _sendfile(fd, self.spool.fileno(), e.offset, e.size)

    def host_root(self) -> Path:
        if self._root is None:
            root = Path(tempfile.mkdtemp(prefix="context-", dir=self.work))
            self._materialise(root)
            self._root = root
        return self._root

    def _materialise(self, root: Path) -> None:
        base = str(root)
        sfd = self.spool.fileno()
        dirs: list[tuple[str, _Entry]] = []
        for rel in sorted(self.entries, key=lambda r: (r.count("/"), r)):
            if not rel:
                continue
            e = self.entries[rel]
            p = base + "/" + rel  # parents are directories made here (the index has no link parents)
            if e.kind == "dir":
                os.mkdir(p, 0o700)
                dirs.append((p, e))
            elif e.kind == "link":
                os.symlink(e.link, p)
            else:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    _sendfile(fd, sfd, e.offset, e.size)
                    os.fchmod(fd, e.mode)
                finally:
                    os.close(fd)
                os.utime(p, (e.mtime, e.mtime), follow_symlinks=False)
        for p, e in reversed(dirs):
            os.chmod(p, e.mode)
            os.utime(p, (e.mtime, e.mtime))


def _sendfile(out: int, src: int, offset: int, size: int) -> None:
    left = size
    while left > 0:
        n = os.sendfile(out, src, offset, min(left, 1 << 30))
        if n == 0:
            raise OSError(f"short read copying a context file ({left} bytes missing)")
        offset += n
        left -= n


def _read_tar(r: _Reader, spool: BinaryIO) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {"": _Entry("dir", 0o755)}
    offset = 0
    pending: dict[str, str] = {}
    globals_: dict[str, str] = {}
    while True:
        hdr = r.read(512)
        if len(hdr) < 512:
            if not hdr:
                break
            raise InvalidArgument("the build context is not a valid tar archive: truncated header")
        if hdr == b"\0" * 512:
            break
        if _num(hdr[148:156]) != sum(hdr) - sum(hdr[148:156]) + 256:
            raise InvalidArgument("the build context is not a valid tar archive: bad header checksum")
        typ = hdr[156:157]
        size = _num(hdr[124:136])
        name = _str(hdr[0:100])
        if hdr[257:262] == b"ustar" and hdr[345:500].strip(b"\0"):
            name = _str(hdr[345:500]) + "/" + name
        link = _str(hdr[157:257])
        info = dict(globals_)
        info.update(pending)
        if "size" in info and typ not in (b"x", b"g", b"L", b"K"):
            size = int(info["size"])
        pad = (-size) % 512
        if typ in (b"x", b"g", b"L", b"K"):
            data = r.read(size)
            r.read(pad)
            if len(data) < size:
                raise InvalidArgument("the build context is not a valid tar archive: truncated")
            if typ == b"x":
                pending.update(_pax(data))
            elif typ == b"g":
                globals_.update(_pax(data))
            elif typ == b"L":
                pending["path"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            else:
                pending["linkpath"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            continue
        pending = {}
        name = info.get("path", name)
        link = info.get("linkpath", link)
        rel = clean(name)
        mode = _num(hdr[100:108]) & 0o7777
        mtime = int(float(info.get("mtime", _num(hdr[136:148]))))
        if rel:
            _check_parents(entries, rel)
        if typ in (b"0", b"\0", b"7"):
            h = hashlib.sha256()
            left = size
            while left > 0:
                chunk = r.read(min(left, _BUF))
                if not chunk:
                    raise InvalidArgument(f"the build context is not a valid tar archive: {rel} is truncated")
                h.update(chunk)
                spool.write(chunk)
                left -= len(chunk)
            r.read(pad)
            if rel:
                _put(entries, rel, _Entry("file", mode, mtime, offset, size, h.hexdigest()))
            offset += size
            continue
        if size:
            r.read(size + pad)
        if not rel:
            continue
        if typ == b"5":
            old = entries.get(rel)
            if old is not None and old.kind == "dir":
                old.mode, old.mtime = mode, mtime
            else:
                _put(entries, rel, _Entry("dir", mode, mtime))
        elif typ == b"2":
            _put(entries, rel, _Entry("link", 0o777, mtime, link=link))
        elif typ == b"1":
            target = entries.get(clean(link))
            if target is None or target.kind != "file":
                raise InvalidArgument(f"build context: hard link {rel} must point to a regular file of the context")
            _put(entries, rel, _Entry("file", target.mode, target.mtime, target.offset, target.size, target.digest))
        # devices, fifos: never part of a build context
    spool.flush()
    return entries


def _check_parents(entries: dict[str, _Entry], rel: str) -> None:
    parts = rel.split("/")[:-1]
    cur = ""
    for p in parts:
        cur = f"{cur}/{p}" if cur else p
        e = entries.get(cur)
        if e is None:
            entries[cur] = _Entry("dir", 0o755)
        elif e.kind != "dir":
            raise InvalidArgument(f"build context: {rel}: a parent is not a directory (symlink?)")


def _put(entries: dict[str, _Entry], rel: str, e: _Entry) -> None:
    old = entries.get(rel)
    if old is not None and old.kind == "dir" and e.kind != "dir":
        prefix = rel + "/"
        for k in [k for k in entries if k.startswith(prefix)]:
            del entries[k]
    entries[rel] = e
