"""Ending processes the runtime did not necessarily fork: kill, then wait through a pidfd
(works for any pid, child or not), and reap it if it happens to be ours."""

from __future__ import annotations

import os


def kill_and_reap(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is dead (zombie or gone), child or not."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return
    wait_exit(pid)


def wait_exit(pid: int, timeout_ms: int = 10000) -> None:
    try:
        pfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        import select

        p = select.poll()
        p.register(pfd, select.POLLIN)
        p.poll(timeout_ms)
    finally:
        os.close(pfd)
    try:  # reap it if it is ours (e.g. we are the subreaper)
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
