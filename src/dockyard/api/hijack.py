"""Taking over an HTTP connection for attach and exec start (Docker's "hijack").

The client sends ``Connection: Upgrade`` / ``Upgrade: tcp``; we answer ``101 UPGRADED`` and the
socket becomes a raw duplex stream: client -> daemon is stdin (a half-close is stdin EOF),
daemon -> client is output (raw for a tty, else multiplexed frames) until the process exits.

aiohttp's own protocol closes the transport on a half-close, so we swap the transport's protocol
for :class:`HijackedStream` (which keeps the write side open). Bytes the client sent right after
the request sit in aiohttp's private ``RequestHandler._message_tail``: we take them over (pinned:
aiohttp 3.14). The handler then returns :data:`HIJACKED`, a response that writes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


class HijackedStream(asyncio.Protocol):
    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.lost = False
        self._paused = False
        self._drain: asyncio.Future[None] | None = None
        self._head_read = False

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        self.inbox.put_nowait(data)

    def eof_received(self) -> bool:
        self.inbox.put_nowait(None)
        return True  # keep our write side open: output continues until the process exits

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.inbox.put_nowait(None)
        self._wake()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def _wake(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # API
    async def read(self) -> bytes | None:
        """Next stdin chunk, or None at EOF (half-close or disconnect)."""
        return await self.inbox.get()

    async def write(self, data: bytes) -> None:
        if not self._head_read:
            # the first output must not arrive together with the 101 head (see head_consumed)
            self._head_read = True
            await head_consumed(self)
        if self.lost or self.transport.is_closing():
            raise ConnectionResetError("the client went away")
        self.transport.write(data)
        if self._paused:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain
            if self.lost:
                raise ConnectionResetError("the client went away")

    def close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


class _Hijacked(web.StreamResponse):
    """What a hijacking handler returns: the 101 and the stream were already written."""

    async def prepare(self, request: web.BaseRequest) -> Any:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def wants_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "tcp" and \
        "upgrade" in request.headers.get("Connection", "").lower()


def hijack(request: web.Request, content_type: str, extra_headers: dict[str, str]) -> HijackedStream:
    """Answer 101 (or 200 if the client did not ask to upgrade) and take over the connection."""
    transport = request.transport
    proto = request.protocol
    if transport is None:
        raise ConnectionResetError("the client went away")
    tail = getattr(proto, "_message_tail", b"")
    if tail:
        proto._message_tail = b""  # type: ignore[attr-defined]
    if wants_upgrade(request):
        head = ["HTTP/1.1 101 UPGRADED", f"Content-Type: {content_type}", "Connection: Upgrade",
                "Upgrade: tcp"]
    else:  # old clients: a 200 whose body is the stream, then the connection closes
        head = ["HTTP/1.1 200 OK", f"Content-Type: {content_type}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in extra_headers.items()]
    stream = HijackedStream(transport)  # type: ignore[arg-type]
    transport.set_protocol(stream)
    transport.write(("\r\n".join(head) + "\r\n\r\n").encode())
    if tail:
        stream.data_received(tail)
    proto.close()  # aiohttp closes the transport once the handler returns: we are done by then
    if hasattr(transport, "resume_reading"):
        transport.resume_reading()
    return stream


async def head_consumed(stream: HijackedStream, limit: float = 5.0) -> None:
    """Wait (briefly) until the client has read the 101 head off the socket.

    Clients that parse the head through a buffer and then take the raw socket (docker-py's
    exec_run and attach) lose output that arrived together with the head; dockerd starts the
    process after the hijack, late enough in practice. We start it in a few ms and replay logs
    at once, so the stream's first write checks the socket's unread byte count (SIOCOUTQ).
    The limit is generous: a Python client on a loaded host can take far more than 100 ms to
    read its head (compose's ``exec -T`` lost its output that way), and waiting only delays the
    first output of a client that never reads, it loses nothing."""
    import fcntl
    import struct
    import termios
    sock = stream.transport.get_extra_info("socket")
    if sock is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        try:
            unread = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return
        if unread == 0:
            return
        await asyncio.sleep(0.001)


def done() -> web.StreamResponse:
    return _Hijacked()
