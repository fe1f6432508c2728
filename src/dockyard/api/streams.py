"""Copying between a hijacked client connection and a monitor stream.

Monitor -> client: multiplexed frames; forwarded as they are (no tty) or unwrapped to raw bytes
(tty). The final ``EXIT_STREAM`` frame carries the exit code and is not forwarded.
Client -> monitor: raw stdin; the client's half-close becomes a half-close to the monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

from dockyard.api.hijack import HijackedStream
from dockyard.shim import protocol


async def _stdin(client: HijackedStream, writer: asyncio.StreamWriter) -> None:
    while True:
        data = await client.read()
        if data is None:
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()
            return
        writer.write(data)
        await writer.drain()


async def pump(client: HijackedStream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               *, tty: bool, stdin: bool) -> int | None:
    """Copy until the monitor ends the stream; return the exit code if it was sent."""
    in_task = asyncio.ensure_future(_stdin(client, writer)) if stdin else None
    buf = bytearray()
    code: int | None = None
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            buf += chunk
            out = bytearray()
            for stream, payload in protocol.parse_frames(buf):
                if stream == protocol.EXIT_STREAM:
                    code = int(json.loads(payload).get("exit_code", 0))
                    continue
                out += payload if tty else protocol.frame(stream, payload)
            if out:
                await client.write(bytes(out))
    finally:
        if in_task is not None:
            in_task.cancel()
            with contextlib.suppress(BaseException):
                await in_task
        writer.close()
    return code


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
