"""The snapshotter contract, shared by the overlay and the plain-copy implementations.

On disk (``root`` is e.g. ``<data-root>/snapshots/overlay``)::

    root/
      metadata.db          snapshots table (see storage.py)
      s/<id>/fs            the snapshot's own files: overlay upper dir, or a full copy (naive)
      s/<id>/work          overlay work dir (overlay only)

Lifecycle::

    prepare(key, parent) -> [Mount]   new active (writable) snapshot on top of a committed parent
    writable_dir(key)                 where to apply a layer / what ``docker diff`` reads
    mounts(key)                       mounts of an existing snapshot
    commit(name, key)                 active -> committed under ``name`` (immutable from now on)
    commit_onto(name, key, parent)    the same, re-parented onto an ancestor (overlay only: a
                                      build step's upper dir becomes the layer, no copy)
    remove(key)                       refused (Conflict) while it has children

``apply_mode`` says how a layer is applied into ``writable_dir``: ``"overlay"`` keeps
whiteouts as overlay whiteouts (char 0/0 devices, ``trusted.overlay.opaque``); ``"naive"``
performs the deletions (the directory is a full copy of the parent).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from dockyard.errors import Conflict, NotFound
from dockyard.snapshots.mount import Mount
from dockyard.snapshots.storage import Info, Kind, MetaStore


class Snapshotter:
    name = "base"
    apply_mode = "naive"
    # A snapshot's directory is a diff against its parent that stays valid on an ancestor.
    can_commit_onto = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "s").mkdir(parents=True, exist_ok=True)
        self.meta = MetaStore(self.root / "metadata.db")
        self._sweep()

    def _sweep(self) -> None:
        """Remove directories that have no row (a crash between mkdir and commit, or in remove)."""
        known = {str(i) for i in self.meta.ids()}
        for e in os.scandir(self.root / "s"):
            if e.name not in known:
                force_rmtree(Path(e.path))

    def _dir(self, sid: int) -> Path:
        return self.root / "s" / str(sid)

    def _make_dirs(self, d: Path, parent: Info | None) -> None:
        (d / "fs").mkdir(parents=True)
        (d / "fs").chmod(0o755)

    def prepare(self, key: str, parent: str | None = None) -> list[Mount]:
        with self.meta.tx() as db:
            sid = self.meta.insert(db, key, parent, Kind.ACTIVE)
            d = self._dir(sid)
            try:
                self._make_dirs(d, self.meta.find(parent) if parent else None)
            except BaseException:
                force_rmtree(d)
                raise
        return self.mounts(key)

    def info(self, key: str) -> Info:
        return self.meta.get(key)

    def exists(self, key: str) -> bool:
        return self.meta.find(key) is not None

    def writable_dir(self, key: str) -> Path:
        return self._dir(self.meta.get(key).id) / "fs"

    def fs_dir(self, key: str) -> Path:
        return self.writable_dir(key)

    def mounts(self, key: str) -> list[Mount]:
        raise NotImplementedError

    def commit(self, name: str, key: str) -> None:
        with self.meta.tx() as db:
            self.meta.commit(db, name, key)

    def commit_onto(self, name: str, key: str, parent: str | None) -> None:
        """Commit ``key`` as ``name`` on ``parent``, an ancestor of ``key`` (or None), dropping
        the snapshots in between from its chain: an image build commits a step's upper directory
        in place as the new layer, skipping the container's init layer below it.

        Only meaningful where a snapshot's directory holds its own changes (overlay): the
        caller vouches that nothing in the skipped snapshots belongs in the layer. The
        directory is not touched (no copy), and the switch is one SQLite transaction."""
        if not self.can_commit_onto:
            raise Conflict(f"the {self.name} snapshotter can't commit a snapshot onto another parent")
        with self.meta.tx() as db:
            self.meta.commit(db, name, key, reparent=True, parent=parent)

    def remove(self, key: str) -> None:
        with self.meta.tx() as db:
            sid = self.meta.delete(db, key)
        force_rmtree(self._dir(sid))

    def usage(self, key: str) -> int:
        """Bytes used by the snapshot's own directory (not its parents)."""
        try:
            return _du(self.writable_dir(key))
        except NotFound:
            return 0

    def list(self) -> list[Info]:
        return self.meta.all()

    def close(self) -> None:
        self.meta.close()


def _du(path: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512 if n in filenames else 0
    return total


def force_rmtree(path: Path) -> None:
    def onerror(func: Callable[[str], object], p: str, exc: object) -> None:
        # A read-only directory inside a layer (mode 0555) can't be emptied until made writable.
        try:
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
        except OSError:
            pass

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=onerror)
