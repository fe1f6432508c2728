"""``start``: release a ``created`` container's init past the exec.fifo barrier.

Contract: ``start(root, cid)`` returns once the init has been released (it then runs the
startContainer hooks and execs the user's program) and the poststart hooks have run. Errors
(runc's wording): ``NotFound("container does not exist")``; ``Conflict("cannot start an
already running container")``; ``Conflict("cannot start a container that has stopped")``.
"""

from __future__ import annotations

import os

from dockyard.errors import Conflict
from dockyard.runtime import state


def start(root: str, cid: str) -> None:
    rec = state.load(root, cid)
    st = state.status(root, rec)
    if st == "stopped":
        raise Conflict("cannot start a container that has stopped")
    if st != "created":
        raise Conflict("cannot start an already running container")
    fifo = f"{root}/{cid}/exec.fifo"
    # O_NONBLOCK: never hang on a fifo whose writer died; poll the fifo and the init's pidfd.
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Conflict("cannot start an already running container") from None
    won = False
    try:
        import select

        pfd = os.pidfd_open(rec["pid"])
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            p.register(pfd, select.POLLIN)
            while not won:
                ready = dict(p.poll(100))
                if fd in ready:
                    if not os.read(fd, 1):  # the init came and went: another start won
                        raise Conflict("cannot start an already running container")
                    won = True
                elif pfd in ready:
                    raise Conflict("cannot start a container that has stopped")
                elif not os.path.exists(fifo):  # another start consumed the barrier
                    raise Conflict("cannot start an already running container")
        finally:
            os.close(pfd)
    finally:
        os.close(fd)
        if won:
            os.unlink(fifo)
    rec_hooks = rec.get("hooks") or {}
    if rec_hooks.get("poststart"):
        from dockyard.runtime import hooks

        hooks.run(rec_hooks["poststart"], state.public(root, rec, "running"), "poststart",
                  warn_only=True)
