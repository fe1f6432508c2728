"""Network namespaces from a threaded daemon: run code inside one, create and remove named ones.

``setns(CLONE_NEWNET)`` and ``unshare(CLONE_NEWNET)`` change only the calling thread. We never
switch a thread that does other work: every operation runs on a fresh one-shot thread that
ends afterwards, so a failure to switch back cannot leak a namespace into the daemon's other
threads, and nothing forks. Sockets keep the namespace they were created in, so a netlink or
UDP socket opened on such a thread stays usable from any thread afterwards. This is how we
avoid pyroute2's ``IPRoute(netns=...)``, which forks a child to open its socket (8-22 ms).

A *named* namespace is a new namespace kept alive by a bind mount of its nsfs file onto a
regular file (what ``ip netns add`` and dockerd do), so it exists before the container's
process does: the engine connects it to networks, writes /etc/hosts with the address, then
has the runtime join it by path. Layout (the engine chooses the folder)::

    <exec-root>/netns/<container-id>     bind mount of the namespace (create_named/remove_named)

The syscalls come from the ``linux/`` seam (:mod:`dockyard.linux.syscalls`).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from dockyard.errors import Internal, NotFound
from dockyard.linux import syscalls as sc

CLONE_NEWNET = sc.CLONE_NEWNET

T = TypeVar("T")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    sc.setns(fd, nstype)


def unshare_net() -> None:
    """Move the calling thread into a new network namespace."""
    sc.unshare(CLONE_NEWNET)


def current_netns_path() -> str:
    """The calling thread's namespace (not the process leader's: see module docstring)."""
    return "/proc/thread-self/ns/net"


def _on_thread(fn: Callable[[], T]) -> T:
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            result.append(fn())
        except BaseException as e:  # noqa: B036 - handed to the caller
            error.append(e)

    t = threading.Thread(target=body, name="dockyard-netns", daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    if not result:
        raise Internal("netns thread ended without a result")
    return result[0]


def run_in_netns(path: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` on a new thread that has entered the network namespace at ``path``.

    ``path`` is ``/proc/<pid>/ns/net`` or a bind-mounted namespace file. Exceptions from ``fn``
    are re-raised in the caller.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise NotFound(f"network namespace {path} does not exist") from e

    def inside() -> T:
        setns(fd)
        return fn()

    try:
        return _on_thread(inside)
    finally:
        os.close(fd)


def create_named(path: str) -> None:
    """Create a new network namespace (lo up) kept alive by a bind mount at ``path``."""
    from dockyard.network import ifioctl  # small; keeps this module's import light

    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDONLY | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def make() -> None:
        unshare_net()
        sc.mount("/proc/thread-self/ns/net", path, None, sc.MS_BIND)
        ifioctl.lo_up()

    try:
        _on_thread(make)
    except BaseException:
        remove_named(path)
        raise


def remove_named(path: str) -> None:
    """Unmount and delete a named namespace (the namespace itself dies with its last user)."""
    try:
        sc.umount2(path, sc.MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):  # not mounted / gone
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
