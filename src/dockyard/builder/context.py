"""The build context: a directory the executor reads COPY/ADD sources from, hashed by content.

Two ways in:

* ``extract_context(stream, dest)``: the tar the client sent (``POST /build`` body, possibly
  gzip'd) is unpacked into ``dest`` (a fresh temp dir) *without* trusting it: names are cleaned
  so ``../x`` and ``/x`` land under ``dest``; an entry whose parent is a symlink is refused (a
  tar cannot plant ``a -> /etc`` and then write ``a/passwd``); hard links must name a regular
  file already extracted; devices and fifos are skipped; files are opened ``O_NOFOLLOW``.
  Every regular file is hashed while it is written, so a build hashes its context exactly once.
* ``BuildContext.from_dir(path)``: an existing directory (the executor's direct API); files are
  hashed lazily, once per build.

``.dockerignore`` is applied by the context (``excluded(rel)``), with the Dockerfile and
.dockerignore dropped when the patterns exclude them (moby's removeDockerfile).

``digest_of(host_path)`` summarises a COPY source for the build cache: names, types, mode bits,
link targets and file CONTENT (sha256), never mtimes or owners (COPY resets owners), plus the
per-file digests so a cache miss can say which file changed.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from dockyard.builder.dockerignore import PatternMatcher, find_ignore_file, read_patterns
from dockyard.errors import InvalidArgument

_BUF = 1 << 20


def _clean(name: str) -> str:
    """A tar member name as a relative path that cannot leave the root ("" for the root)."""
    return posixpath.normpath("/" + name).lstrip("/")


def _hash_file(path: str) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        while True:
            chunk = os.read(fd, _BUF)
            if not chunk:
                break
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


def _check_parents(root: str, rel: str) -> None:
    """Create missing parents of ``rel`` as real directories; refuse symlinked parents."""
    parts = rel.split("/")[:-1]
    cur = root
    for p in parts:
        cur = cur + "/" + p
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"build context: {rel}: a parent is not a directory (symlink?)")


def _remove_existing(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(path)
    else:
        os.unlink(path)


def extract_context(stream: BinaryIO, dest: Path) -> dict[str, str]:
    """Unpack a context tar into ``dest``; returns ``{relative path: sha256}`` of its files."""
    root = str(dest)
    hashes: dict[str, str] = {}
    try:
        tf = tarfile.open(fileobj=stream, mode="r|*")  # noqa: SIM115 - closed below
    except tarfile.TarError as e:
        raise InvalidArgument(f"the build context is not a tar archive: {e}") from None
    with tf:
        try:
            for m in tf:
                rel = _clean(m.name)
                if rel == "":
                    continue
                path = root + "/" + rel
                _check_parents(root, rel)
                if m.isdir():
                    try:
                        st = os.lstat(path)
                        if not stat.S_ISDIR(st.st_mode):
                            os.unlink(path)
                            os.mkdir(path, 0o755)
                    except FileNotFoundError:
                        os.mkdir(path, 0o755)
                    os.chmod(path, m.mode & 0o7777)
                elif m.isreg():
                    _remove_existing(path)
                    src = tf.extractfile(m)
                    h = hashlib.sha256()
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                    try:
                        while src is not None:
                            chunk = src.read(_BUF)
                            if not chunk:
                                break
                            h.update(chunk)
                            os.write(fd, chunk)
                        os.fchmod(fd, m.mode & 0o7777)
                    finally:
                        os.close(fd)
                    os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
                    hashes[rel] = h.hexdigest()
                elif m.issym():
                    _remove_existing(path)
                    os.symlink(m.linkname, path)
                elif m.islnk():
                    target = _clean(m.linkname)
                    tpath = root + "/" + target
                    try:
                        tst = os.lstat(tpath)
                    except FileNotFoundError:
                        raise InvalidArgument(f"build context: hard link {rel} -> {m.linkname}: no such file") from None
                    if not stat.S_ISREG(tst.st_mode) or target not in hashes:
                        raise InvalidArgument(f"build context: hard link {rel} must point to a regular file")
                    _remove_existing(path)
                    os.link(tpath, path, follow_symlinks=False)
                    hashes[rel] = hashes[target]
                # devices, fifos: never part of a build context
        except tarfile.TarError as e:
            raise InvalidArgument(f"the build context is not a valid tar archive: {e}") from None
    return hashes


@dataclass
class BuildContext:
    """A context directory plus what .dockerignore excludes and the content hashes known so far."""

    root: Path
    patterns: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)
    dockerfile: str = "Dockerfile"

    def __post_init__(self) -> None:
        self.matcher = PatternMatcher(self.patterns)
        self._removed = set()
        for name in (".dockerignore", self.dockerfile):
            if self.patterns and self.matcher.matches(name):
                self._removed.add(name)

    @classmethod
    def from_dir(cls, path: Path, dockerfile: str = "Dockerfile", hashes: dict[str, str] | None = None) -> BuildContext:
        path = Path(path)
        if not path.is_dir():
            raise InvalidArgument(f"unable to prepare context: path {str(path)!r} not found")
        ignore = find_ignore_file(path, dockerfile if not os.path.isabs(dockerfile) else "Dockerfile")
        patterns = read_patterns(ignore.read_text(encoding="utf-8", errors="replace")) if ignore else []
        return cls(root=path, patterns=patterns, hashes=dict(hashes or {}), dockerfile=dockerfile)

    def excluded(self, rel: str) -> bool:
        if rel in ("", "."):
            return False
        if rel in self._removed:
            return True
        return bool(self.patterns) and self.matcher.matches(rel)

    def file_hash(self, rel: str) -> str:
        h = self.hashes.get(rel)
        if h is None:
            h = _hash_file(str(self.root / rel))
            self.hashes[rel] = h
        return h

    def digest_of(self, host_path: Path) -> tuple[str, dict[str, str]]:
        """(digest, {rel: entry digest}) of a source file or directory tree in the context."""
        entries: dict[str, str] = {}
        root = str(self.root)

        def entry(p: str, st: os.stat_result) -> str:
            rel = os.path.relpath(p, root)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                return f"f {mode:o} {self.file_hash(rel)}"
            if stat.S_ISLNK(st.st_mode):
                return f"l {os.readlink(p)}"
            if stat.S_ISDIR(st.st_mode):
                return f"d {mode:o}"
            return "o"

        def walk(p: str) -> None:
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if self.excluded(rel):
                return
            entries[rel] = entry(p, st)
            if stat.S_ISDIR(st.st_mode):
                for name in sorted(os.listdir(p)):
                    walk(p + "/" + name)

        walk(str(host_path))
        h = hashlib.sha256()
        base = os.path.relpath(host_path, root)
        for rel in sorted(entries):
            h.update(f"{os.path.relpath(rel, base)}\0{entries[rel]}\n".encode())
        return "sha256:" + h.hexdigest(), entries
