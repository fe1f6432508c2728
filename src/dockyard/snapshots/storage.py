"""Snapshot metadata shared by the snapshotters: an SQLite table of snapshots.

Each snapshot has a user-visible ``key`` (a ChainID for committed image layers, a container
id for a container's writable layer), a small integer ``id`` that names its directory
(short ids keep overlay option strings short), a ``parent`` key and a ``kind``:

    active ──commit(name)──▶ committed        (active: writable; committed: immutable, may
       │                         │             have children; removing one with children
       └──────remove─────────────┘             is refused)

Directories are created after the row is inserted but before the transaction commits, and
removed after the row is deleted; the owner sweeps directories that have no row on open, so a
crash never leaves a row without a directory.
"""

from __future__ import annotations

import enum
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import AlreadyExists, Conflict, NotFound


class Kind(enum.Enum):
    ACTIVE = "active"
    COMMITTED = "committed"


@dataclass(frozen=True, slots=True)
class Info:
    key: str
    id: int
    parent: str | None
    kind: Kind
    created: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    parent TEXT,
    kind TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
"""


class MetaStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is durable before a container record naming the snapshot is (its
        # fdatasync'ed write, dockyard.atomicfile); NORMAL could lose the row to a power loss
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.lock = threading.RLock()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @staticmethod
    def _info(row: tuple) -> Info:
        return Info(row[1], row[0], row[2], Kind(row[3]), row[4])

    def get(self, key: str) -> Info:
        with self.lock:
            row = self._db.execute(
                "SELECT id, key, parent, kind, created FROM snapshots WHERE key=?", (key,)
            ).fetchone()
        if row is None:
            raise NotFound(f"snapshot {key} does not exist")
        return self._info(row)

    def find(self, key: str) -> Info | None:
        try:
            return self.get(key)
        except NotFound:
            return None

    def all(self) -> list[Info]:
        with self.lock:
            rows = self._db.execute("SELECT id, key, parent, kind, created FROM snapshots").fetchall()
        return [self._info(r) for r in rows]

    def ids(self) -> set[int]:
        return {i.id for i in self.all()}

    def chain(self, key: str) -> list[Info]:
        """The snapshot and its ancestors, nearest first."""
        out = [self.get(key)]
        while out[-1].parent is not None:
            out.append(self.get(out[-1].parent))
        return out

    def insert(self, db: sqlite3.Connection, key: str, parent: str | None, kind: Kind) -> int:
        if parent is not None:
            p = db.execute("SELECT kind FROM snapshots WHERE key=?", (parent,)).fetchone()
            if p is None:
                raise NotFound(f"parent snapshot {parent} does not exist")
            if p[0] != Kind.COMMITTED.value:
                raise Conflict(f"parent snapshot {parent} is not committed")
        try:
            cur = db.execute(
                "INSERT INTO snapshots(key, parent, kind, created) VALUES (?,?,?,?)",
                (key, parent, kind.value, time.time()),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"snapshot {key} already exists") from None
        return int(cur.lastrowid or 0)

    def commit(self, db: sqlite3.Connection, name: str, key: str, *, reparent: bool = False,
               parent: str | None = None) -> None:
        """Active ``key`` -> committed ``name``; with ``reparent`` its parent becomes ``parent``
        (which must be one of its ancestors, or None; see Snapshotter.commit_onto)."""
        row = db.execute("SELECT kind, parent FROM snapshots WHERE key=?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"snapshot {key} does not exist")
        if row[0] != Kind.ACTIVE.value:
            raise Conflict(f"snapshot {key} is not active")
        if db.execute("SELECT 1 FROM snapshots WHERE key=?", (name,)).fetchone():
            raise AlreadyExists(f"snapshot {name} already exists")
        new_parent = row[1]
        if reparent:
            cur = row[1]
            while cur != parent:
                if cur is None:
                    raise Conflict(f"snapshot {parent} is not an ancestor of {key}")
                up = db.execute("SELECT parent FROM snapshots WHERE key=?", (cur,)).fetchone()
                cur = up[0] if up else None
            new_parent = parent
        db.execute(
            "UPDATE snapshots SET key=?, kind=?, parent=? WHERE key=?",
            (name, Kind.COMMITTED.value, new_parent, key),
        )

    def delete(self, db: sqlite3.Connection, key: str) -> int:
        row = db.execute("SELECT id FROM snapshots WHERE key=?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"snapshot {key} does not exist")
        if db.execute("SELECT 1 FROM snapshots WHERE parent=? LIMIT 1", (key,)).fetchone():
            raise Conflict(f"snapshot {key} has children")
        db.execute("DELETE FROM snapshots WHERE key=?", (key,))
        return int(row[0])

    def close(self) -> None:
        self._db.close()
