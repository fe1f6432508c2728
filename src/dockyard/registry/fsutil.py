"""Small atomic file helpers: every piece of state is written to a temp file then os.replace'd."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None


def remove_tree_quiet(path: Path) -> None:
    """rm -rf that tolerates concurrent removal."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def prune_empty_parents(path: Path, stop: Path) -> None:
    """Remove empty directories from ``path`` upwards, never removing ``stop``."""
    cur = path
    while cur != stop and stop in cur.parents:
        try:
            cur.rmdir()
        except OSError:
            return
        cur = cur.parent
