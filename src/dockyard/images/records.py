"""Image records and references in SQLite (``<root>/metadata.db``).

Tables::

    images(id PK, manifest_digest, parent, added, layers JSON)
    refs(ref PK, image_id -> images.id, kind 'tag'|'digest')
        ref is the full normalised reference: docker.io/library/busybox:latest,
        docker.io/library/busybox@sha256:<manifest hex>

An image and its references are written in one transaction, after every blob it names is in
the content store and every layer is unpacked: an image is either fully visible or absent.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import NotFound
from dockyard.images.model import Layer
from dockyard.metadata.db import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    parent TEXT NOT NULL DEFAULT '',
    added REAL NOT NULL,
    layers TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refs (
    ref TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id),
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refs_image ON refs(image_id);
CREATE INDEX IF NOT EXISTS images_parent ON images(parent);
"""


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    manifest_digest: str
    parent: str
    added: float
    layers: tuple[Layer, ...]


class Records:
    def __init__(self, path: Path) -> None:
        self.db = Database(path, _SCHEMA)

    @staticmethod
    def _rec(row: tuple) -> Record:
        return Record(row[0], row[1], row[2], row[3], tuple(Layer.from_record(x) for x in json.loads(row[4])))

    def get(self, image_id: str) -> Record:
        rows = self.db.query(
            "SELECT id, manifest_digest, parent, added, layers FROM images WHERE id=?", (image_id,)
        )
        if not rows:
            raise NotFound(f"No such image: {image_id}")
        return self._rec(rows[0])

    def find(self, image_id: str) -> Record | None:
        try:
            return self.get(image_id)
        except NotFound:
            return None

    def all(self) -> list[Record]:
        rows = self.db.query("SELECT id, manifest_digest, parent, added, layers FROM images")
        return [self._rec(r) for r in rows]

    def ids_with_prefix(self, hex_prefix: str) -> list[str]:
        # GLOB, not LIKE: the prefix is validated hex, and GLOB is case-sensitive and uses the index.
        return [r[0] for r in self.db.query("SELECT id FROM images WHERE id GLOB ?", (f"sha256:{hex_prefix}*",))]

    def children(self, image_id: str) -> list[str]:
        return [r[0] for r in self.db.query("SELECT id FROM images WHERE parent=?", (image_id,))]

    def insert(self, db: sqlite3.Connection, rec: Record) -> None:
        db.execute(
            "INSERT OR IGNORE INTO images(id, manifest_digest, parent, added, layers) VALUES (?,?,?,?,?)",
            (rec.id, rec.manifest_digest, rec.parent, rec.added or time.time(),
             json.dumps([x.to_record() for x in rec.layers])),
        )

    def delete(self, db: sqlite3.Connection, image_id: str) -> None:
        db.execute("DELETE FROM refs WHERE image_id=?", (image_id,))
        db.execute("DELETE FROM images WHERE id=?", (image_id,))

    # references

    def lookup_ref(self, ref: str) -> str | None:
        rows = self.db.query("SELECT image_id FROM refs WHERE ref=?", (ref,))
        return rows[0][0] if rows else None

    def refs_of(self, image_id: str) -> list[tuple[str, str]]:
        """(ref, kind) pairs of an image, sorted."""
        return sorted(
            (r[0], r[1]) for r in self.db.query("SELECT ref, kind FROM refs WHERE image_id=?", (image_id,))
        )

    def all_refs(self) -> list[tuple[str, str, str]]:
        return [(r[0], r[1], r[2]) for r in self.db.query("SELECT ref, image_id, kind FROM refs")]

    def set_ref(self, db: sqlite3.Connection, ref: str, image_id: str, kind: str) -> None:
        db.execute(
            "INSERT INTO refs(ref, image_id, kind) VALUES (?,?,?) "
            "ON CONFLICT(ref) DO UPDATE SET image_id=excluded.image_id, kind=excluded.kind",
            (ref, image_id, kind),
        )

    def delete_ref(self, db: sqlite3.Connection, ref: str) -> None:
        db.execute("DELETE FROM refs WHERE ref=?", (ref,))

    def close(self) -> None:
        self.db.close()
