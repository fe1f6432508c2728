"""The daemon's embedded database: one SQLite file per store, WAL, ``synchronous=FULL``.

It survived repeated SIGKILLs where naive JSON rewrites got corrupted. ``FULL`` makes each
commit durable (the WAL is fdatasync'ed), as bbolt's commits are for containerd's metadata:
with ``NORMAL`` (about 0.03 ms per update here) a power loss could roll back the last commits
while the records that name them (written with ``dockyard.atomicfile``, fdatasync'ed) survive. Each store opens its own :class:`Database`; a connection is
shared by threads behind one lock and :meth:`Database.tx` gives an IMMEDIATE transaction, so a
multi-row change (an image and its tags) is all-or-nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Database:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(schema)
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

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self.lock:
            self._db.close()
