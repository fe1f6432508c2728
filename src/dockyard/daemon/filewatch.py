"""Wake an asyncio task when files in one directory change (inotify through ctypes).

``logs --follow`` reads a json-file log that the monitor appends to; instead of polling it,
the reader waits on a ``DirWatch`` of the log's directory, so a new line reaches the client
as soon as the monitor has written it, and an idle follower costs nothing.

Lifecycle::

    w = DirWatch(directory)      # inotify_init1 + add_watch; registered with the running loop
    w.changed.clear()            # clear BEFORE reading the file: a write after the read still wakes
    ...read...
    await w.wait(timeout)        # True if something changed, False on timeout
    w.close()                    # removes the reader and closes the fd (idempotent)

The directory (not the file) is watched so a rotation (rename + new file) also wakes the
reader. Events for other files in the directory are spurious wake-ups: harmless, the reader
just finds nothing new. Without inotify (``OSError`` at creation), callers fall back to a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


class DirWatch:
    def __init__(self, directory: str) -> None:
        lib = _lib()
        fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_init1: {os.strerror(e)}")
        if lib.inotify_add_watch(fd, os.fsencode(directory), MASK) < 0:
            e = ctypes.get_errno()
            os.close(fd)
            raise OSError(e, f"inotify_add_watch({directory!r}): {os.strerror(e)}")
        self.fd: int | None = fd
        self.changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._drain)

    def _drain(self) -> None:
        assert self.fd is not None
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 65536):
                pass
        self.changed.set()

    async def wait(self, timeout: float, also: asyncio.Event | None = None) -> bool:
        """Until a change (True), ``also`` is set (True) or ``timeout`` seconds pass (False)."""
        if self.changed.is_set() or (also is not None and also.is_set()):
            return True
        waiters = [asyncio.ensure_future(self.changed.wait())]
        if also is not None:
            waiters.append(asyncio.ensure_future(also.wait()))
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return bool(done)

    def close(self) -> None:
        if self.fd is None:
            return
        self._loop.remove_reader(self.fd)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> DirWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
