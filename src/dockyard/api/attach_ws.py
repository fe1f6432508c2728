"""``GET /containers/{id}/attach/ws``: attach over a WebSocket (browsers, dashboards).

As dockerd's: the query takes ``logs``, ``stream``, ``stdin``, ``stdout``, ``stderr`` (all off
unless given) and ``detachKeys``; output is never multiplexed (a WebSocket has no stream ids),
each chunk of the container's stdout/stderr is one message, in binary frames from API 1.28 on
and text frames (the same bytes, unchecked) before, as dockerd keeps for old clients; each message the client sends (text or
binary) is written to the container's stdin. The session ends when the output ends (the
process exited), the client closes, or the client sends the detach keys.
"""

from __future__ import annotations

import contextlib
import logging

from aiohttp import WSMsgType, web

from dockyard.api import streams
from dockyard.api.common import api_version, qbool, services
from dockyard.daemon import logs
from dockyard.daemon.state import Status

log = logging.getLogger("dockyard.api")


class WebSocketStream:
    """The two calls :func:`streams.pump` makes on a client connection, over a WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, text: bool = False) -> None:
        self.ws = ws
        self.opcode = WSMsgType.TEXT if text else WSMsgType.BINARY

    async def read(self) -> bytes | None:
        while True:
            msg = await self.ws.receive()
            if msg.type is WSMsgType.BINARY:
                return bytes(msg.data)
            if msg.type is WSMsgType.TEXT:
                return str(msg.data).encode()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return None

    async def write(self, data: bytes) -> None:
        if not self.ws.closed:
            await self.ws.send_frame(data, self.opcode)


async def attach_ws(request: web.Request) -> web.StreamResponse:
    s = services(request)
    rec = s.containers.get(request.match_info["id"])
    keys = streams.parse_detach_keys(request.query.get("detachKeys"))
    want_stdin, want_out, want_err = (qbool(request, k) for k in ("stdin", "stdout", "stderr"))
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    client = WebSocketStream(ws, text=api_version(request) < (1, 28))
    # logs+stream on a running container: the monitor replays the log and subscribes in one
    # step (as the hijacked attach: reading the file first would lose lines written between)
    replay = (qbool(request, "logs") and qbool(request, "stream") and s.containers.monitor.version >= 3
              and rec.status in (Status.RUNNING, Status.PAUSED))
    try:
        if qbool(request, "logs") and not replay:
            want = {n for n, on in (("stdout", want_out), ("stderr", want_err)) if on}
            for e in logs.read_entries(s.containers.log_path(rec)):
                if e.stream in want:
                    await client.write(e.data)
        if qbool(request, "stream") and rec.status in (Status.RUNNING, Status.PAUSED, Status.CREATED):
            conn = await s.containers.attach_stream(rec.id, {
                "stdin": want_stdin and bool(rec.config.get("OpenStdin")),
                "stdout": want_out, "stderr": want_err, **({"logs": True} if replay else {})})
            if conn is not None:
                # tty=True: the monitor's frames are unwrapped to raw bytes whatever the container's tty
                await streams.pump(client, conn[0], conn[1], tty=True,  # type: ignore[arg-type]
                                   stdin=want_stdin, detach_keys=keys)
    except (ConnectionError, OSError) as e:
        log.debug("websocket attach to %s ended: %r", rec.id, e)
    finally:
        with contextlib.suppress(Exception):
            await ws.close()
    return ws
