"""Run a function inside another network namespace, on a one-shot thread.

``setns(CLONE_NEWNET)`` changes only the calling thread. We never switch a thread that does
other work: :func:`run_in_netns` starts a fresh thread, enters the target namespace, runs the
function and lets the thread end, so a failure to switch back cannot leak a namespace into the
daemon's other threads. Sockets keep the namespace they were created in, so a netlink or UDP
socket opened by the function stays usable from any thread afterwards. This is how we avoid
pyroute2's ``IPRoute(netns=...)``, which forks a child to open its socket (10-22 ms).

Python 3.11 has no ``os.setns``, hence the ctypes call (the ``linux/`` seam may take it over).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from dockyard.errors import Internal, NotFound

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]

T = TypeVar("T")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns({fd}, {nstype:#x}): {os.strerror(err)}")


def unshare_net() -> None:
    """Move the calling thread into a new network namespace."""
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")


def current_netns_path() -> str:
    """The calling thread's namespace (not the process leader's: see module docstring)."""
    return "/proc/thread-self/ns/net"


def netns_inode(path: str) -> int:
    return os.stat(path).st_ino


def run_in_netns(path: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` on a new thread that has entered the network namespace at ``path``.

    ``path`` is ``/proc/<pid>/ns/net`` or a bind-mounted namespace file. Exceptions from ``fn``
    are re-raised in the caller.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise NotFound(f"network namespace {path} does not exist") from e
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            setns(fd)
            result.append(fn())
        except BaseException as e:  # noqa: B036 - handed to the caller
            error.append(e)

    try:
        t = threading.Thread(target=body, name="dockyard-netns", daemon=True)
        t.start()
        t.join()
    finally:
        os.close(fd)
    if error:
        raise error[0]
    if not result:
        raise Internal("netns thread ended without a result")
    return result[0]
