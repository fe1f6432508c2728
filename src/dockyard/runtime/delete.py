"""``delete``: remove a container's resources (cgroup, state directory) and run poststop hooks.

A ``stopped`` or ``created`` container is deleted directly (the created init is killed, as
runc does). A ``running`` or ``paused`` one needs ``force``: every process in its cgroup is
SIGKILLed (a frozen cgroup is thawed so the kill lands) and waited for. Errors:
``NotFound("container does not exist")``, ``Conflict("cannot delete container <id> that is
not stopped: running")``.
"""

from __future__ import annotations

import os

from dockyard.errors import Conflict
from dockyard.runtime import state
from dockyard.runtime.reap import kill_and_reap


def delete(root: str, cid: str, force: bool = False) -> None:
    rec = state.load(root, cid)
    st = state.status(root, rec)
    if st in ("running", "paused") and not force:
        raise Conflict(f"cannot delete container {cid} that is not stopped: {st}")
    cg = None
    if rec.get("cgroup"):
        from dockyard.linux import cgroups

        cg = cgroups.Cgroup.from_dict(rec["cgroup"])
    if st != "stopped" and st != "creating":
        if cg is not None:
            from dockyard.linux import cgroups

            for p in cgroups.procs(cg):
                try:
                    os.kill(p, 9)
                except ProcessLookupError:
                    pass
            if st == "paused":
                cgroups.freeze(cg, False)
        kill_and_reap(rec["pid"])
    destroy(root, rec)


def destroy(root: str, rec: dict) -> None:
    """Remove a stopped container: kill stragglers left in its cgroup, rmdir the cgroup,
    remove the state directory, run the poststop hooks (failures only warn)."""
    if rec.get("cgroup"):
        from dockyard.linux import cgroups

        cg = cgroups.Cgroup.from_dict(rec["cgroup"])
        for p in cgroups.procs(cg):  # stragglers outside the pid namespace (joined by path)
            kill_and_reap(p)
        cgroups.destroy(cg)
    state.remove_dir(state.container_dir(root, rec["id"]))
    rec_hooks = rec.get("hooks") or {}
    if rec_hooks.get("poststop"):
        from dockyard.runtime import hooks

        hooks.run(rec_hooks["poststop"], state.public(root, rec, "stopped"), "poststop",
                  warn_only=True)
