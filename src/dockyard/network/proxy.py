"""Userland proxy: forwards a published host port to the container from the daemon's loop.

The fallback for when kernel NAT is off (``ManagerConfig(port_nat=False)``: no nftables, or a
host where the daemon must not touch NAT). It serves the very socket that reserves the host
port (:mod:`dockyard.network.portmap`), so there is no window where the port is free:

- TCP: the reserved socket starts listening; each accepted connection gets its own
  connection to ``container_ip:port`` and bytes are copied both ways, half-closes included;
- UDP: each client address gets its own socket towards the container, so replies find their
  way back; a flow idle for ``udp_idle`` seconds is closed.

The container sees the connection coming from the bridge's gateway address, not the client's
(a proxy's well-known cost; with NAT the client address is kept). Lifecycle:
``proxy = UserlandProxy()``; ``await proxy.serve(key, [(sock, published_port), ...])`` with
sockets from ``NetworkManager.proxy_sockets(cid)``; ``await proxy.stop(key)``; ``await
proxy.close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterable

from dockyard.network.portmap import PublishedPort


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        if w.can_write_eof():
            w.write_eof()
    except (ConnectionError, OSError):
        w.close()


class _UdpFlow(asyncio.DatagramProtocol):
    """The container-side socket of one UDP client."""

    def __init__(self, front: _UdpFront, client: tuple[str, int]) -> None:
        self.front, self.client = front, client
        self.transport: asyncio.DatagramTransport | None = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.front.transport is not None:
            self.front.transport.sendto(data, self.client)
        self.touch()

    def touch(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(self.front.idle, self.close)

    def close(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        if self.transport is not None:
            self.transport.close()
        self.front.flows.pop(self.client, None)


class _UdpFront(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int], idle: float) -> None:
        self.target, self.idle = target, idle
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple[str, int], _UdpFlow] = {}
        self.pending: dict[tuple[str, int], list[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        flow = self.flows.get(addr)
        if flow is not None and flow.transport is not None:
            flow.transport.sendto(data)
            flow.touch()
            return
        if addr in self.pending:  # the flow's socket is being opened
            self.pending[addr].append(data)
            return
        self.pending[addr] = [data]
        asyncio.get_running_loop().create_task(self._open(addr))

    async def _open(self, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        flow = _UdpFlow(self, addr)
        try:
            await loop.create_datagram_endpoint(lambda: flow, remote_addr=self.target)
        except OSError:
            self.pending.pop(addr, None)
            return
        self.flows[addr] = flow
        for data in self.pending.pop(addr, []):
            assert flow.transport is not None
            flow.transport.sendto(data)
        flow.touch()

    def close(self) -> None:
        for flow in list(self.flows.values()):
            flow.close()
        if self.transport is not None:
            self.transport.close()


class UserlandProxy:
    def __init__(self, udp_idle: float = 30.0) -> None:
        self.udp_idle = udp_idle
        self._servers: dict[str, list[asyncio.AbstractServer | _UdpFront]] = {}
        self._conns: set[asyncio.Task[None]] = set()

    async def serve(self, key: str, socks: Iterable[tuple[socket.socket, PublishedPort]]) -> None:
        """Serve the sockets (ownership passes to the proxy: stop() closes them)."""
        loop = asyncio.get_running_loop()
        items = self._servers.setdefault(key, [])
        for sock, port in socks:
            target = (port.container_ip, port.container_port)
            sock.setblocking(False)
            if port.proto == "udp":
                front = _UdpFront(target, self.udp_idle)
                await loop.create_datagram_endpoint(lambda f=front: f, sock=sock)
                items.append(front)
            else:
                sock.listen(128)
                items.append(await asyncio.start_server(
                    lambda r, w, t=target: self._tcp(r, w, t), sock=sock))

    async def _tcp(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, target: tuple[str, int]) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)  # type: ignore[arg-type]
        try:
            try:
                ur, uw = await asyncio.open_connection(*target)
            except OSError:
                return
            try:
                await asyncio.gather(_pipe(r, uw), _pipe(ur, w))
            finally:
                uw.close()
        finally:
            w.close()
            self._conns.discard(task)  # type: ignore[arg-type]

    async def stop(self, key: str) -> None:
        for item in self._servers.pop(key, []):
            item.close()
            if isinstance(item, asyncio.AbstractServer):
                with contextlib.suppress(Exception):
                    await item.wait_closed()

    async def close(self) -> None:
        for key in list(self._servers):
            await self.stop(key)
        for t in list(self._conns):
            t.cancel()
