"""Serve the Engine API app (``api.app.build_app``) over a temp unix socket, from a thread.

For route tests that need no daemon: the caller builds a small services object with what its
routes use, and drives the socket with the real docker CLI or with ``json_caller``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from aiohttp import web


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


@contextmanager
def serve_engine_app(services: Any, sock: str) -> Iterator[asyncio.AbstractEventLoop]:
    """The app listening on ``sock`` until the block ends; yields the server's event loop."""
    from dockyard.api.app import build_app

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(build_app(services), access_log=None)
        await runner.setup()
        await web.UnixSite(runner, sock).start()
        holder["runner"] = runner
        ready.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()
        loop.run_until_complete(holder["runner"].cleanup())
        loop.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert ready.wait(30)
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(30)


def json_caller(sock: str) -> Callable[..., tuple[int, Any]]:
    """``call(method, path, body=None) -> (status, decoded JSON body or None)``."""
    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        c = UnixHTTPConnection(sock)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, quote(path, safe="/?=&"), body=data, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw.strip() else None)
        finally:
            c.close()
    return call
