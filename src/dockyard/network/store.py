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
from pathlib import Path
from typing import Any

from dockyard.atomicfile import write_atomic


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically and durably (``dockyard.atomicfile``).

    Durable (fdatasync'ed, about 0.5 ms here): a power loss wipes every bridge, veth and rule,
    which restore()/reconcile() rebuild from these records, but only if a record is not the
    empty file a rename committed before its data leaves (the network would be lost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode(), mode=0o600)


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
