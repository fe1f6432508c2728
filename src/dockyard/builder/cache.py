"""The build cache: (parent image, expanded step, content of its inputs) -> resulting image.

On disk (``root`` = ``<data-root>/builder``)::

    root/
      cache.db        SQLite (WAL): table steps
      mounts/<hex>/   RUN --mount=type=cache directories, by id (or target)

``steps``: ``key`` (sha256 of the step identity, see ``step_key``) -> ``image_id``, plus the
``slot`` (parent image + instruction keyword) and the ``inputs`` it was computed from (JSON:
``{"instruction": text, "file:<rel>": digest, "arg:<NAME>": digest...}``), so that a miss can
say what changed since the last build of the same step (``explain_miss``). Content, never
mtimes, goes into a key: touching a file keeps the cache. An entry whose image was deleted is
dropped on lookup. Shared by all builds of the daemon; thread safe (one connection per call).

``prune(images)`` forgets every entry, removes cache-mount dirs and the cached images nobody
tagged or built on, and returns (ids deleted, bytes reclaimed); ``usage()`` is for system df.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError


def step_key(parent: str, inputs: Mapping[str, str]) -> str:
    h = hashlib.sha256(parent.encode() + b"\0")
    for k in sorted(inputs):
        h.update(f"{k}\0{inputs[k]}\n".encode())
    return h.hexdigest()


def slot_of(parent: str, keyword: str) -> str:
    return hashlib.sha256(f"{parent}\0{keyword}".encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "mounts").mkdir(exist_ok=True)
        self.path = self.root / "cache.db"
        self._local = threading.local()
        db = self._db()
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS steps (key TEXT PRIMARY KEY, image_id TEXT NOT NULL,"
                   " slot TEXT NOT NULL, inputs TEXT NOT NULL, created REAL NOT NULL)")
        db.execute("CREATE INDEX IF NOT EXISTS steps_slot ON steps(slot, created)")
        db.commit()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def lookup(self, key: str, exists: Any) -> str | None:
        """The cached image id for ``key`` if ``exists(image_id)`` still holds."""
        row = self._db().execute("SELECT image_id FROM steps WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        if not exists(row[0]):
            db = self._db()
            db.execute("DELETE FROM steps WHERE key=?", (key,))
            db.commit()
            return None
        return str(row[0])

    def record(self, key: str, slot: str, inputs: Mapping[str, str], image_id: str) -> None:
        db = self._db()
        db.execute("INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?)",
                   (key, image_id, slot, json.dumps(dict(inputs), sort_keys=True), time.time()))
        db.commit()

    def explain_miss(self, slot: str, inputs: Mapping[str, str]) -> str | None:
        """What changed since the newest entry of ``slot``; None if there was none."""
        row = self._db().execute(
            "SELECT inputs FROM steps WHERE slot=? ORDER BY created DESC LIMIT 1", (slot,)).fetchone()
        if row is None:
            return None
        old: dict[str, str] = json.loads(row[0])
        if old.get("instruction") != inputs.get("instruction"):
            return "the instruction changed"
        for k in sorted(set(old) | set(inputs)):
            if old.get(k) == inputs.get(k):
                continue
            kind, _, name = k.partition(":")
            if kind == "file":
                if k not in old:
                    return f"{name} was added"
                if k not in inputs:
                    return f"{name} was removed"
                return f"content of {name} changed" if old[k].startswith("f ") and inputs[k].startswith("f ") \
                    else f"{name} changed"
            if kind == "arg":
                return f"build argument {name} changed"
            if kind == "env":
                return f"environment variable {name} changed"
            return f"{k} changed"
        return None

    def mount_dir(self, ident: str) -> Path:
        d = self.root / "mounts" / hashlib.sha256(ident.encode()).hexdigest()[:32]
        d.mkdir(parents=True, exist_ok=True)
        return d

    def usage(self) -> tuple[int, int]:
        """(entries, bytes in cache mounts)."""
        n = self._db().execute("SELECT COUNT(*) FROM steps").fetchone()[0]
        return int(n), _du(self.root / "mounts")

    def records(self) -> list[tuple[str, str, float]]:
        """(key, image id, created) of every entry, oldest first."""
        rows = self._db().execute("SELECT key, image_id, created FROM steps ORDER BY created")
        return [(str(k), str(i), float(c)) for k, i, c in rows]

    def image_ids(self) -> list[str]:
        return [r[0] for r in self._db().execute("SELECT DISTINCT image_id FROM steps")]

    def prune(self, images: Any) -> tuple[list[str], int]:
        ids = self.image_ids()
        db = self._db()
        db.execute("DELETE FROM steps")
        db.commit()
        reclaimed = _du(self.root / "mounts")
        for e in os.scandir(self.root / "mounts"):
            shutil.rmtree(e.path, ignore_errors=True)
        deleted: list[str] = []
        progress = True
        pending = set(ids)
        while progress:  # children first: an image with children is never removed
            progress = False
            for image_id in sorted(pending):
                try:
                    img = images.get(image_id)
                    if img.repo_tags or images.children(image_id):
                        continue
                    size = img.size
                    images.remove(image_id)
                except DockyardError:
                    pending.discard(image_id)
                    progress = True
                    break
                pending.discard(image_id)
                deleted.append(image_id)
                reclaimed += size
                progress = True
                break
        return deleted, reclaimed


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
