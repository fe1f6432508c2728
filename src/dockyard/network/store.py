"""Atomic JSON state files for the network package.

Every record is one small JSON file, written to a temp file in the same folder and moved over
the old one with ``os.replace`` so that a crash leaves either the old or the new content, never
a torn file. Layout under the state dir the engine hands to :class:`NetworkManager`::

    <state_dir>/
    ├── networks/<network-id>.json     network config + IPAM pool + endpoints on it
    └── ports/<container-id>.json      published ports of one container
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (temp file + rename).

    No fsync: it cost ~2 ms per container start, and what it guards against (power loss)
    also wipes every bridge, veth and rule, which restore()/reconcile() rebuild from the
    records anyway; a killed daemon cannot tear a file written this way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def list_json(folder: Path) -> list[Path]:
    """The ``*.json`` records of a folder (temp files, which start with a dot, are skipped)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
