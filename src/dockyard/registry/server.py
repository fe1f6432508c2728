"""Run the registry until SIGINT/SIGTERM: bind, optional TLS, announce the address.

Prints one line ``dockyard registry listening on http(s)://HOST:PORT`` to stdout once the
socket is bound (port 0 picks a free one: tests read that line), then serves. Shutdown is
graceful (aiohttp's runner cleanup closes connections and the upstream session).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import sys

from aiohttp import web

from dockyard.registry.app import make_app
from dockyard.registry.config import RegistryConfig


def _ssl_context(cfg: RegistryConfig) -> ssl.SSLContext | None:
    if cfg.tls_cert is None or cfg.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
    return ctx


async def serve(cfg: RegistryConfig) -> None:
    app = make_app(cfg)
    # One access-log line per request on stderr ("dockyard registry serve 2>reg.log").
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # shutdown_timeout: aiohttp's default keeps idle keep-alive connections (e.g. a cache's
    # pooled connection) open for 60 s after SIGTERM; clients would hang that long.
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0,
                           access_log_format='%a "%r" %s %b %Tfs')
    await runner.setup()
    ctx = _ssl_context(cfg)
    site = web.TCPSite(runner, cfg.host, cfg.port, ssl_context=ctx, backlog=512)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    port = cfg.port
    server = site._server  # the bound asyncio server: learn the real port when 0 was asked
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    scheme = "https" if ctx else "http"
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    print(f"dockyard registry listening on {scheme}://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(cfg: RegistryConfig) -> None:
    try:
        asyncio.run(serve(cfg))
    except OSError as e:
        print(f"dockyard registry: cannot listen on {cfg.host}:{cfg.port}: {e.strerror}",
              file=sys.stderr)
        raise SystemExit(1) from None
