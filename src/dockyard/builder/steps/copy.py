"""COPY/ADD into a mounted rootfs: Docker's directory rules, no symlink escapes.

``copy_into(rootfs, sources, dest, owner=, chmod=, skip=)``:

* ``sources``: host paths already resolved inside their own root (build context or another
  stage's rootfs). A directory source copies its CONTENTS; a file copies itself.
* ``dest`` (absolute, as ``values.copy_dest`` made it): with a trailing ``/``, or several
  sources, or an existing directory, it is a directory (created 0755 as needed) and a file
  lands as ``dest/<basename>``; otherwise a single file source is written AS ``dest``.
* The destination is resolved inside ``rootfs`` with ``linux.pathres.resolve`` (an image's
  ``/bin -> usr/bin`` is followed, ``/etc -> /host/etc`` cannot leave the rootfs); entries are
  created below real directories only, files opened ``O_NOFOLLOW``, symlinks in the sources
  copied as symlinks (never followed).
* ``names`` (parallel to the sources) are the names files get in a destination directory:
  the source as written, before its symlinks were resolved (Docker's origPath).
* ``owner`` (uid, gid) applies to everything copied (Docker: 0:0 without ``--chown``);
  ``chmod`` an octal int or a symbolic string applied per entry; mtimes are kept.
* ``skip(host_path) -> bool`` leaves out .dockerignore'd entries of a context source.

``copy_from_context(ctx, rels, ...)`` does the same for sources named by their path in the
build context, reading a tar context's spool directly (nothing is materialised).

``resolve_owner(rootfs, "user:group")`` reads the image's /etc/passwd and /etc/group.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dockyard.builder.context import BuildContext
from dockyard.builder.linkcache import LinkCache
from dockyard.errors import InvalidArgument
from dockyard.linux.pathres import resolve


def _read_db(path: Path) -> list[list[str]]:
    try:
        return [ln.split(":") for ln in path.read_text(errors="replace").splitlines() if ln and not ln.startswith("#")]
    except OSError:
        return []


def resolve_owner(rootfs: Path, spec: str) -> tuple[int, int]:
    """``--chown=user[:group]`` -> (uid, gid); names from the rootfs; group defaults to the
    user's primary group (BuildKit), or to the uid for a numeric user without passwd entry."""
    user, _, group = spec.partition(":")
    passwd = _read_db(resolve(rootfs, "/etc/passwd"))
    groups = _read_db(resolve(rootfs, "/etc/group"))
    if user.isdigit():
        uid = int(user)
        entry = next((p for p in passwd if len(p) >= 4 and p[2] == user), None)
        gid = int(entry[3]) if entry else uid
    else:
        entry = next((p for p in passwd if len(p) >= 4 and p[0] == user), None)
        if entry is None:
            raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: "
                                  f"can't find uid for user {user}: no such user: {user}")
        uid, gid = int(entry[2]), int(entry[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((e for e in groups if len(e) >= 3 and e[0] == group), None)
            if g is None:
                raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: "
                                      f"can't find gid for group {group}: no such group: {group}")
            gid = int(g[2])
    return uid, gid


_CLAUSE = re.compile(r"([ugoa]*)([-+=])([rwxXst]*)")


def apply_symbolic(mode: int, spec: str, is_dir: bool) -> int:
    """chmod(1) symbolic modes (``u+x,go=rX``) applied to ``mode`` (permission bits)."""
    for clause in spec.split(","):
        m = re.match(r"^([ugoa]*)(.*)$", clause)
        who = m.group(1) if m else ""
        ops = m.group(2) if m else clause
        mask = 0
        for w in who or "a":
            mask |= {"u": 0o4700, "g": 0o2070, "o": 0o1007, "a": 0o7777}[w]
        for op, perms in re.findall(r"([-+=])([rwxXst]*)", ops):
            bits = 0
            for p in perms:
                if p == "r":
                    bits |= 0o444
                elif p == "w":
                    bits |= 0o222
                elif p == "x" or (p == "X" and (is_dir or mode & 0o111)):
                    bits |= 0o111
                elif p == "s":
                    bits |= 0o6000
                elif p == "t":
                    bits |= 0o1000
            bits &= mask
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                mode = (mode & ~mask) | bits
    return mode & 0o7777


@dataclass(frozen=True)
class Links:
    """Hard-link cached files (builder/linkcache.py) into ``upper``, the overlay upper dir of
    the snapshot mounted on ``rootfs``, instead of writing new ones (files in new dirs only)."""

    cache: LinkCache
    rootfs: str
    upper: str


class _Writer:
    def __init__(self, owner: tuple[int, int], chmod: int | str | None, skip: Callable[[str], bool] | None,
                 links: Links | None = None) -> None:
        self.uid, self.gid = owner
        self.chmod = chmod
        self.skip = skip or (lambda p: False)
        self.links = links
        self.used: set[str] = set()  # cached files linked by this step: each at most once

    def _mode(self, src_mode: int, is_dir: bool) -> int:
        if self.chmod is None:
            return stat.S_IMODE(src_mode)
        if isinstance(self.chmod, int):
            return self.chmod
        return apply_symbolic(stat.S_IMODE(src_mode), self.chmod, is_dir)

    def copy(self, src: str, dst: str) -> None:
        """Copy the entry ``src`` (not followed if a symlink) to ``dst``, whose parent is a real dir."""
        st = os.lstat(src)
        existing: os.stat_result | None
        try:
            existing = os.lstat(dst)
        except FileNotFoundError:
            existing = None
        if stat.S_ISDIR(st.st_mode):
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                os.unlink(dst)
                existing = None
            if existing is None:
                os.mkdir(dst, 0o755)
            self.copy_children(src, dst)
            os.lchown(dst, self.uid, self.gid)
            os.chmod(dst, self._mode(st.st_mode, True))
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            return
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                shutil.rmtree(dst)
            else:
                os.unlink(dst)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISREG(st.st_mode):
            fin = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    left = st.st_size
                    while left > 0:
                        n = os.sendfile(fout, fin, None, min(left, 1 << 30))
                        if n == 0:
                            break
                        left -= n
                    os.fchown(fout, self.uid, self.gid)  # before the mode: chown clears setuid
                    os.fchmod(fout, self._mode(st.st_mode, False))
                    os.utime(fout, ns=(st.st_atime_ns, st.st_mtime_ns))
                finally:
                    os.close(fout)
            finally:
                os.close(fin)
            return
        else:
            return  # devices/fifos/sockets are not copied
        os.lchown(dst, self.uid, self.gid)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

    def copy_children(self, src_dir: str, dst_dir: str) -> None:
        for name in sorted(os.listdir(src_dir)):
            s = src_dir + "/" + name
            if self.skip(s):
                continue
            self.copy(s, dst_dir + "/" + name)


    def ctx_copy(self, ctx: BuildContext, rel: str, dst: str, skip_rel: Callable[[str], bool],
                 fresh: bool = False) -> None:
        """Like :meth:`copy`, reading the entry ``rel`` of the build context (no host file).

        ``fresh``: ``dst``'s parent was just created by this copy, so nothing is there yet
        (saves a lookup per file, which through overlayfs is not free)."""
        kind = ctx.kind(rel)
        existing: os.stat_result | None = None
        if not fresh:
            try:
                existing = os.lstat(dst)
            except FileNotFoundError:
                pass
        mtime = ctx.mtime(rel)
        if kind == "dir":
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                os.unlink(dst)
                existing = None
            if existing is None:
                os.mkdir(dst, 0o755)
            self.ctx_children(ctx, rel, dst, skip_rel, fresh=existing is None)
            os.lchown(dst, self.uid, self.gid)
            os.chmod(dst, self._mode(ctx.mode(rel), True))
            os.utime(dst, (mtime, mtime), follow_symlinks=False)
            return
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                shutil.rmtree(dst)
            else:
                os.unlink(dst)
        if kind == "link":
            os.symlink(ctx.readlink(rel) or "", dst)
        elif kind == "file":
            lk = self.links
            if fresh and lk is not None and dst.startswith(lk.rootfs + "/") and lk.cache.link(
                lk.upper + dst[len(lk.rootfs):], ctx.file_hash(rel), self._mode(ctx.mode(rel), False),
                self.uid, self.gid, mtime, lambda fd: ctx.copy_to(rel, fd), self.used,
            ):
                return
            # Everything through the descriptor: one path lookup per file. Owner before mode:
            # chown clears set-user-ID/set-group-ID bits, even for root.
            fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                ctx.copy_to(rel, fout)
                os.fchown(fout, self.uid, self.gid)
                os.fchmod(fout, self._mode(ctx.mode(rel), False))
                os.utime(fout, (mtime, mtime))
            finally:
                os.close(fout)
            return
        else:
            return
        os.lchown(dst, self.uid, self.gid)
        os.utime(dst, (mtime, mtime), follow_symlinks=False)

    def ctx_children(self, ctx: BuildContext, rel: str, dst_dir: str, skip_rel: Callable[[str], bool],
                     fresh: bool = False) -> None:
        for name in ctx.listdir(rel):
            child = f"{rel}/{name}" if rel else name
            if skip_rel(child):
                continue
            self.ctx_copy(ctx, child, dst_dir + "/" + name, skip_rel, fresh)


def _makedirs(rootfs: Path, path: Path, owner: tuple[int, int]) -> bool:
    """Create ``path`` (already resolved inside ``rootfs``) and missing parents as directories;
    True if ``path`` itself was created (so it is empty)."""
    missing: list[Path] = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    if not os.path.isdir(p) or os.path.islink(p):
        raise InvalidArgument(f"cannot copy to {os.path.relpath(path, rootfs)}: a parent is not a directory")
    for d in reversed(missing):
        os.mkdir(d, 0o755)
        os.lchown(d, *owner)
    return bool(missing)


def _name(item: object, items: list, names: list[str] | None) -> str:
    """The name a file source gets inside a destination directory: as the Dockerfile wrote it
    (``COPY link /d/`` makes ``/d/link`` even when ``link`` resolved to another file)."""
    if names is not None:
        return names[items.index(item)]
    return os.path.basename(str(item))


def copy_from_context(
    ctx: BuildContext,
    rels: list[str],
    rootfs: Path,
    dest: str,
    *,
    owner: tuple[int, int] = (0, 0),
    chmod: int | str | None = None,
    skip_rel: Callable[[str], bool],
    force_dir: bool = False,
    names: list[str] | None = None,
    links: Links | None = None,
) -> None:
    """:func:`copy_into` for sources named by their path in the build context (``""`` = all),
    read straight from it (a tar context is never written out for this). ``links``: see
    :class:`Links` (only where ``rootfs`` is an overlay mount of that upper dir)."""
    writer = _Writer(owner, chmod, None, links)
    dest_is_dir = force_dir or dest.endswith("/") or len(rels) > 1
    target = resolve(rootfs, dest)
    if not dest_is_dir and os.path.isdir(target):
        dest_is_dir = True
    if len(rels) == 1 and ctx.kind(rels[0]) == "dir":
        created = _makedirs(rootfs, target, owner)
        writer.ctx_children(ctx, rels[0], str(target), skip_rel, fresh=created)
        return
    if dest_is_dir:
        _makedirs(rootfs, target, owner)
        for rel in rels:
            if ctx.kind(rel) == "dir":
                writer.ctx_children(ctx, rel, str(target), skip_rel)
            else:
                writer.ctx_copy(ctx, rel, str(target / _name(rel, rels, names)), skip_rel)
        return
    parent = resolve(rootfs, os.path.dirname(dest.rstrip("/")) or "/")
    _makedirs(rootfs, parent, owner)
    writer.ctx_copy(ctx, rels[0], str(parent / os.path.basename(dest.rstrip("/"))), skip_rel)


def copy_into(
    rootfs: Path,
    sources: list[Path],
    dest: str,
    *,
    owner: tuple[int, int] = (0, 0),
    chmod: int | str | None = None,
    skip: Callable[[str], bool] | None = None,
    force_dir: bool = False,
    names: list[str] | None = None,
) -> None:
    writer = _Writer(owner, chmod, skip)
    dest_is_dir = force_dir or dest.endswith("/") or len(sources) > 1
    target = resolve(rootfs, dest)
    if not dest_is_dir and os.path.isdir(target):
        dest_is_dir = True
    if len(sources) == 1 and os.path.isdir(sources[0]) and not os.path.islink(sources[0]):
        _makedirs(rootfs, target, owner)
        writer.copy_children(str(sources[0]), str(target))
        return
    if dest_is_dir:
        _makedirs(rootfs, target, owner)
        for src in sources:
            if os.path.isdir(src) and not os.path.islink(src):
                writer.copy_children(str(src), str(target))
            else:
                writer.copy(str(src), str(target / _name(src, sources, names)))
        return
    # one file, written as dest itself; its parent is resolved (symlinks followed in scope)
    parent = resolve(rootfs, os.path.dirname(dest.rstrip("/")) or "/")
    _makedirs(rootfs, parent, owner)
    writer.copy(str(sources[0]), str(parent / os.path.basename(dest.rstrip("/"))))
