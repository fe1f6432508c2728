from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.metadata.db import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);"


def test_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "m.db", SCHEMA)
    with db.tx() as c:
        c.execute("INSERT INTO kv VALUES ('a', '1')")
    with pytest.raises(RuntimeError):
        with db.tx() as c:
            c.execute("INSERT INTO kv VALUES ('b', '2')")
            raise RuntimeError("crash in the middle")
    assert db.query("SELECT k, v FROM kv") == [("a", "1")]
    assert db.query("PRAGMA journal_mode") == [("wal",)]
    db.close()
    again = Database(tmp_path / "m.db", SCHEMA)
    assert again.query("SELECT k FROM kv") == [("a",)]
    again.close()
