"""A container's Docker-level status as an explicit state machine.

::

    created ──start──▶ running ──exit──▶ exited ──start──▶ running
       │                │  ▲                │
       │            pause│  │unpause         └──restart policy──▶ restarting ──▶ running
       │                ▼  │
       │               paused ──exit (killed)──▶ exited
       └──────────── rm ─────────▶ removing ──▶ (gone) / dead (removal failed)
"""

from __future__ import annotations

import enum

from dockyard.errors import Conflict


class Status(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


ALLOWED: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.RUNNING, Status.REMOVING, Status.EXITED}),
    Status.RUNNING: frozenset({Status.PAUSED, Status.EXITED, Status.RESTARTING, Status.REMOVING}),
    Status.PAUSED: frozenset({Status.RUNNING, Status.EXITED, Status.REMOVING}),
    Status.RESTARTING: frozenset({Status.RUNNING, Status.EXITED, Status.REMOVING}),
    Status.EXITED: frozenset({Status.RUNNING, Status.RESTARTING, Status.REMOVING}),
    Status.REMOVING: frozenset({Status.DEAD, Status.EXITED, Status.CREATED}),
    Status.DEAD: frozenset({Status.REMOVING}),
}


def check_transition(old: Status, new: Status) -> None:
    """Raise Conflict unless ``old -> new`` is a legal move (a no-op move is legal)."""
    if old is not new and new not in ALLOWED[old]:
        raise Conflict(f"cannot move a container from {old.value} to {new.value}")


# A file in the container's directory while ``docker commit`` holds it paused: a daemon killed
# in between left it paused by no one's wish, and the start-up reconciliation resumes it.
COMMIT_PAUSE_MARKER = "commit-paused"
