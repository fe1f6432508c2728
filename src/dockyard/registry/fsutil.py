"""Small atomic file helpers: every piece of state is written to a temp file then os.replace'd."""

from __future__ import annotations

from pathlib import Path

from dockyard.atomicfile import write_atomic


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, synced
    before the rename (as Distribution's filesystem driver syncs every file it commits), so a
    power loss cannot leave an empty tag link or manifest behind a rename that survived."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


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
