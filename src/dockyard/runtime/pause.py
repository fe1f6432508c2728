"""``pause``/``resume``: freeze or thaw every process of a container through its cgroup.

Errors: ``NotFound``; ``Conflict("container not running")`` for pause unless running or
created; ``Conflict("container not paused")`` for resume unless paused.
"""

from __future__ import annotations

from dockyard.errors import Conflict, Unavailable
from dockyard.runtime import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.linux.cgroups import Cgroup


def _cgroup(rec: dict) -> Cgroup:
    from dockyard.linux import cgroups

    if not rec.get("cgroup"):
        raise Unavailable("the container has no cgroup to freeze")
    return cgroups.Cgroup.from_dict(rec["cgroup"])


def pause(root: str, cid: str) -> None:
    rec = state.load(root, cid)
    if state.status(root, rec) not in ("running", "created"):
        raise Conflict("container not running")
    from dockyard.linux import cgroups

    cgroups.freeze(_cgroup(rec), True)


def resume(root: str, cid: str) -> None:
    rec = state.load(root, cid)
    if state.status(root, rec) != "paused":
        raise Conflict("container not paused")
    from dockyard.linux import cgroups

    cgroups.freeze(_cgroup(rec), False)
