"""``kill``: send a signal to a container's init (or, with ``all_procs``, to every process).

Errors: ``NotFound("container does not exist")``, ``Conflict("container not running")`` when
it has stopped (a ``created`` container can be signalled, as with runc).
"""

from __future__ import annotations

import os

from dockyard.errors import Conflict
from dockyard.runtime import state


def kill(root: str, cid: str, sig: int = 15, all_procs: bool = False) -> None:
    rec = state.load(root, cid)
    st = state.status(root, rec)
    if st in ("stopped", "creating"):
        raise Conflict("container not running")
    if all_procs and rec.get("cgroup"):
        from dockyard.linux import cgroups

        for pid in cgroups.procs(cgroups.Cgroup.from_dict(rec["cgroup"])):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return
    try:
        os.kill(rec["pid"], sig)
    except ProcessLookupError:
        raise Conflict("container not running") from None
