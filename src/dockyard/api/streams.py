"""Copying between a hijacked client connection and a monitor stream.

Monitor -> client: multiplexed frames; forwarded as they are (no tty) or unwrapped to raw bytes
(tty). The final ``EXIT_STREAM`` frame carries the exit code and is not forwarded.
Client -> monitor: raw stdin, framed for the monitor; the client's half-close becomes a
``STDIN_EOF`` frame; the detach keys end the session without it (stdin stays open).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
from typing import Any

from dockyard.api.hijack import HijackedStream
from dockyard.errors import InvalidArgument
from dockyard.shim import protocol

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's ``detachKeys`` (``ctrl-p,ctrl-q``, ``a,ctrl-@``...) -> the byte sequence."""
    if spec is None:
        return DEFAULT_DETACH_KEYS
    if spec == "":
        return b""
    out = bytearray()
    for key in spec.split(","):
        key = key.strip()
        if len(key) == 1:
            out.append(ord(key))
        elif key.startswith("ctrl-") and len(key) == 6:
            c = key[5]
            code = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}.get(c)
            if code is None and "a" <= c.lower() <= "z":
                code = ord(c.lower()) - ord("a") + 1
            if code is None:
                raise InvalidArgument(f"Invalid escape keys ({spec}) provided")
            out.append(code)
        else:
            raise InvalidArgument(f"Invalid escape keys ({spec}) provided")
    return bytes(out)


class Detached(Exception):
    """The client typed the detach sequence: end the session, leave the process running."""


async def _stdin(client: HijackedStream, writer: asyncio.StreamWriter, detach: bytes) -> None:
    matched = 0
    while True:
        data = await client.read()
        if data is None:
            writer.write(protocol.frame(protocol.STDIN_EOF, b""))
            await writer.drain()
            return
        if detach:
            # Hold back a possible prefix of the sequence; forward it if it doesn't complete.
            out = bytearray()
            for b in data:
                if b == detach[matched]:
                    matched += 1
                    if matched == len(detach):
                        if out:
                            writer.write(protocol.frame(protocol.STDIN, bytes(out)))
                        raise Detached()
                    continue
                if matched:
                    out += detach[:matched]
                    matched = 0
                    if b == detach[0]:
                        matched = 1
                        continue
                out.append(b)
            data = bytes(out)
        if data:
            writer.write(protocol.frame(protocol.STDIN, data))
            await writer.drain()


async def pump(client: HijackedStream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               *, tty: bool, stdin: bool, detach_keys: bytes = b"") -> int | None:
    """Copy until the monitor ends the stream (or the client detaches); return the exit code
    if the monitor sent it."""
    in_task = asyncio.ensure_future(_stdin(client, writer, detach_keys)) if stdin else None
    out_task = asyncio.ensure_future(_output(client, reader, tty))
    try:
        waiting: set[asyncio.Future[Any]] = {out_task} | ({in_task} if in_task else set())
        while out_task in waiting:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if in_task in done and isinstance(in_task.exception(), Detached):
                return None
        return out_task.result()
    finally:
        for t in (in_task, out_task):
            if t is not None and not t.done():
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
        writer.close()


async def _output(client: HijackedStream, reader: asyncio.StreamReader, tty: bool) -> int | None:
    buf = bytearray()
    code: int | None = None
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return code
        buf += chunk
        out = bytearray()
        for stream, payload in protocol.parse_frames(buf):
            if stream == protocol.EXIT_STREAM:
                code = int(json.loads(payload).get("exit_code", 0))
                continue
            out += payload if tty else protocol.frame(stream, payload)
        if out:
            await client.write(bytes(out))


async def export_to(resp: Any, images: Any, key: str) -> None:
    """Stream ``images.export_rootfs(key, out)`` (blocking, in a thread) into an HTTP response."""
    await write_from_thread(resp, lambda out: images.export_rootfs(key, out))


class BodyReader:
    """A blocking file-like view of a request body, for image functions run in a thread."""

    def __init__(self, content: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.content = content
        self.loop = loop

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            coro = self.content.read()
        else:
            coro = self.content.readexactly_or_less(n) if hasattr(self.content, "readexactly_or_less") \
                else self._read_full(n)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _read_full(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = await self.content.read(n - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def readable(self) -> bool:
        return True


class PrefetchReader:
    """A blocking file-like view of a big request body (``docker load``) that reads ahead.

    :class:`BodyReader` asks the event loop for every read and waits for it: the socket is read
    only while the worker thread waits, and aiohttp buffers just 128 KiB. Here a task on the
    loop keeps reading the body into a queue of at most ``limit`` bytes while the worker
    thread consumes it, so receiving overlaps storing and unpacking. Lifecycle: ``async with
    PrefetchReader(request.content) as r: await run_in_thread(fn, r)``; leaving the block
    cancels the task, and a worker still reading then gets ``ConnectionResetError`` (it never
    waits forever). A body error (client gone) reaches the worker as the same exception."""

    def __init__(self, content: Any, limit: int = 16 << 20) -> None:
        self._content = content
        self._limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._eof = False
        self._error: BaseException | None = None
        self._cv = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._room = asyncio.Event()
        self._want = 0  # a read waiting for more than ``limit`` bytes raises the budget
        # What the waiting read needs buffered before it is woken: the body arrives in the
        # client's chunks (docker: 32 KiB), and a wake-up per chunk for a 1 MiB read cost the
        # two threads more CPU than the copy (futex and context switch on a busy 2-core host).
        self._need = 1 << 62  # no read waiting: nobody to wake
        self._read_nowait = getattr(content, "read_nowait", None)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PrefetchReader:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.ensure_future(self._pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task

    async def _pump(self) -> None:
        try:
            while True:
                if self._buffered >= max(self._limit, self._want):  # the worker lags: wait
                    self._room.clear()
                    if self._buffered >= max(self._limit, self._want):
                        await self._room.wait()
                    continue
                data = await self._content.readany()
                if data and self._read_nowait is not None:
                    # The rest of what the parser has buffered, in one piece: one pass of this
                    # loop (and at most one wake-up) per socket read, not per HTTP chunk. Queued
                    # as two pieces (``data + more`` would copy both once more).
                    more = self._read_nowait()
                    if more:
                        with self._cv:
                            self._chunks.append(data)
                            self._buffered += len(data)
                        data = more
                with self._cv:
                    if data:
                        self._chunks.append(data)
                        self._buffered += len(data)
                    else:
                        self._eof = True
                    if not data or self._buffered >= self._need:
                        self._need = 1 << 62  # woken once: a read still short says so again
                        self._cv.notify_all()
                if not data:
                    return
        except BaseException as e:
            with self._cv:
                self._error = e if isinstance(e, Exception) else ConnectionResetError("request ended")
                self._cv.notify_all()
            raise

    def _wait_for(self, n: int) -> None:
        """Until ``n`` bytes are buffered (all if ``n`` < 0), the end or an error (raised);
        called with ``_cv`` held."""
        while not self._eof and (n < 0 or self._buffered < n):
            if self._error is not None:
                raise self._error
            if (n < 0 or n > self._limit) and self._loop is not None:
                self._want = n if n >= 0 else 1 << 62
                self._loop.call_soon_threadsafe(self._room.set)
            # Woken when n bytes are in (capped by the budget, which the pump waits at), at
            # the end, or on an error.
            self._need = min(n, max(self._limit, self._want)) if n >= 0 else 1 << 62
            self._cv.wait()
        self._want = 0
        self._need = 1 << 62
        if not self._chunks and self._error is not None:
            raise self._error

    def _taken(self, before: int) -> None:
        """Wake the pump if this read made room below the budget (``_cv`` held)."""
        if before >= self._limit > self._buffered and self._loop is not None:
            self._loop.call_soon_threadsafe(self._room.set)

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left if ``n`` < 0); fewer only at the end."""
        with self._cv:
            self._wait_for(n)
            if not self._chunks:
                return b""
            before = self._buffered
            if n < 0 or n >= self._buffered:
                out = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
                self._chunks.clear()
            elif len(self._chunks[0]) == n:
                out = self._chunks.popleft()
            else:
                parts, need = [], n
                while need:
                    c = self._chunks.popleft()
                    if len(c) > need:
                        self._chunks.appendleft(c[need:])
                        c = c[:need]
                    parts.append(c)
                    need -= len(c)
                out = b"".join(parts)
            self._buffered -= len(out)
            self._taken(before)
            return out

    def readinto(self, b: bytearray | memoryview) -> int:
        """``read(len(b))`` into ``b``: the body's chunks are copied once, into the caller's
        (reused) buffer, not joined into a new bytes object per read (an allocation and its
        page faults per MiB: a tenth of the daemon's CPU in a ``docker load``)."""
        view = memoryview(b).cast("B")
        n = len(view)
        with self._cv:
            self._wait_for(n)
            before = self._buffered
            got = 0
            while got < n and self._chunks:
                c = self._chunks[0]
                k = min(len(c), n - got)
                view[got:got + k] = c if k == len(c) else memoryview(c)[:k]
                if k == len(c):
                    self._chunks.popleft()
                else:
                    self._chunks[0] = c[k:]
                got += k
            self._buffered -= got
            self._taken(before)
            return got

    def readable(self) -> bool:
        return True


async def write_from_thread(resp: Any, fn: Any) -> None:
    """Run blocking ``fn(out)`` in a thread; bytes it writes to ``out`` go to ``resp``.

    If the client goes away, the thread's next write raises BrokenPipeError (so it stops and
    the daemon can still shut down: a thread blocked on a full queue would hang it)."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)
    gone = threading.Event()

    class _Out:
        def write(self, data: bytes) -> int:
            if gone.is_set():
                raise BrokenPipeError("the client went away")
            asyncio.run_coroutine_threadsafe(q.put(bytes(data)), loop).result()
            return len(data)

        def flush(self) -> None:
            pass

    def work() -> None:
        try:
            fn(_Out())
        finally:
            asyncio.run_coroutine_threadsafe(q.put(None), loop).result()

    fut = loop.run_in_executor(None, work)
    try:
        while True:
            data = await q.get()
            if data is None:
                break
            await resp.write(data)
    except BaseException:
        gone.set()
        while not fut.done():  # unblock the producer until it notices
            try:
                q.get_nowait()
            except asyncio.QueueEmpty:
                await asyncio.sleep(0.01)
        with contextlib.suppress(BaseException):
            await fut
        raise
    await fut
