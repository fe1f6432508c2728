"""Embedded DNS: answers container names on 127.0.0.11:53 inside each container's namespace.

Design (as docker's, minus its iptables redirect): for every container on a user network the
daemon opens a UDP and a TCP socket bound to 127.0.0.11:53 *inside the container's network
namespace* (:func:`open_sockets`, a one-shot setns'ed thread, ~1 ms) and serves them from its
own asyncio loop; the container's resolv.conf says ``nameserver 127.0.0.11``. The socket a
query arrives on tells which container asked, so names are scoped to that container's
networks, which is why there is one socket pair per container rather than one server on each
bridge: it also works on --internal networks and needs no address on the bridge. 127.0.0.11
is inside 127.0.0.0/8, which the kernel treats as local once lo is up, so no address is added.

Queries:

- A/AAAA for a name known to ``resolve(key, name)`` (the manager's endpoint table: container
  names, aliases, short ids on the asker's networks, also as ``name.network``) are answered
  from it; a known name queried for another type gets an empty NOERROR answer;
- PTR for an address that ``reverse(key, ip)`` knows gets ``container.network``;
- everything else is relayed as raw bytes over UDP to the upstream resolvers (the host's
  /etc/resolv.conf by default), from the daemon's namespace, so a host resolver on loopback
  works; SERVFAIL when no upstream answers within the timeout.

Lifecycle: ``server = DnsServer(mgr.resolve, upstreams, reverse=mgr.reverse)``; per container ``udp, tcp =
open_sockets(netns_path)`` (sync, any thread) then ``await server.add(key, udp, tcp)``; on
disconnect/stop ``await server.remove(key)``; ``await server.close()`` at shutdown. Sockets
hold a reference on the namespace, so remove() must be called for it to be freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import Callable, Iterable

from dockyard.errors import InvalidArgument
from dockyard.network import dnswire, ifioctl
from dockyard.network.netns import run_in_netns

DNS_ADDRESS = "127.0.0.11"
Resolve = Callable[[str, str], list[str] | None]  # (key, name) -> addresses, None if unknown
Reverse = Callable[[str, str], str | None]  # (key, ipv4) -> name, None if not ours


def open_sockets(netns_path: str, address: str = DNS_ADDRESS, port: int = 53) -> tuple[socket.socket, socket.socket]:
    """Bound UDP and listening TCP sockets at ``address:port`` inside the namespace."""

    def make() -> tuple[socket.socket, socket.socket]:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            ifioctl.set_up(udp, "lo")  # 127.0.0.11 is unreachable while lo is down
        except BaseException:
            udp.close()
            raise
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            for s in (udp, tcp):
                s.setblocking(False)
                s.bind((address, port))
            tcp.listen(64)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        return udp, tcp

    return run_in_netns(netns_path, make)


def upstreams_from_resolv_conf(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
                    out.append((parts[1], 53))
    except FileNotFoundError:
        pass
    return out


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer, key: str) -> None:
        self.server, self.key = server, key
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._spawn(self._answer(data, addr))

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.answer(self.key, data)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class _Forward(asyncio.DatagramProtocol):
    def __init__(self, fut: asyncio.Future[bytes], qid: bytes) -> None:
        self.fut, self.qid = fut, qid

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:2] == self.qid and not self.fut.done():
            self.fut.set_result(data)


class DnsServer:
    def __init__(self, resolve: Resolve, upstreams: Iterable[tuple[str, int]] | None = None,
                 timeout: float = 2.0, reverse: Reverse | None = None) -> None:
        self.resolve = resolve
        self.reverse = reverse
        self.upstreams = list(upstreams) if upstreams is not None else upstreams_from_resolv_conf()
        self.timeout = timeout
        self._eps: dict[str, tuple[asyncio.DatagramTransport, asyncio.AbstractServer]] = {}
        self._upstreams: dict[str, list[tuple[str, int]]] = {}  # per container (--dns)
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def add(self, key: str, udp: socket.socket, tcp: socket.socket,
                  upstreams: Iterable[tuple[str, int]] | None = None) -> None:
        """Serve a container's sockets (takes ownership: they are closed by remove/close).

        ``upstreams`` (the container's ``--dns`` servers) replace the server-wide ones for
        queries from this container."""
        loop = asyncio.get_running_loop()
        await self.remove(key)
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self, key), sock=udp)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        try:
            server = await asyncio.start_server(lambda r, w: self._tcp(key, r, w), sock=tcp)
        except BaseException:
            transport.close()
            tcp.close()
            raise
        self._eps[key] = (transport, server)
        if upstreams is not None:
            self._upstreams[key] = list(upstreams)

    async def remove(self, key: str) -> None:
        ep = self._eps.pop(key, None)
        self._upstreams.pop(key, None)
        if ep is not None:
            ep[0].close()
            ep[1].close()
            await ep[1].wait_closed()

    def keys(self) -> list[str]:
        return list(self._eps)

    async def close(self) -> None:
        for key in list(self._eps):
            await self.remove(key)
        for t in list(self._tasks):
            t.cancel()

    async def _tcp(self, key: str, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    (n,) = struct.unpack("!H", await r.readexactly(2))
                    data = await r.readexactly(n)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                reply = await self.answer(key, data)
                if reply is None:
                    return
                w.write(struct.pack("!H", len(reply)) + reply)
                await w.drain()
        finally:
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()

    async def answer(self, key: str, data: bytes) -> bytes | None:
        try:
            q = dnswire.parse_query(data)
        except InvalidArgument:
            return dnswire.error_response(data, dnswire.RCODE_FORMERR)
        if q.qtype == dnswire.TYPE_PTR and self.reverse is not None:
            ip = dnswire.ptr_address(q.name)
            target = self.reverse(key, ip) if ip else None
            if target is not None:
                return dnswire.build_ptr_response(q, target)
        addrs = self.resolve(key, q.name) if q.qclass == dnswire.CLASS_IN else None
        if addrs is not None:
            if len(addrs) > 1:  # round robin over a service's replicas, as dockerd's resolver shuffles
                addrs = random.sample(addrs, len(addrs))
            return dnswire.build_response(q, addrs)
        upstreams = self._upstreams.get(key, self.upstreams)
        return (await self.forward(data, upstreams)
                or dnswire.build_response(q, [], dnswire.RCODE_SERVFAIL))

    async def forward(self, data: bytes, upstreams: Iterable[tuple[str, int]]) -> bytes | None:
        loop = asyncio.get_running_loop()
        for host, port in upstreams:
            fut: asyncio.Future[bytes] = loop.create_future()
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda f=fut: _Forward(f, data[:2]), remote_addr=(host, port))
            except OSError:
                continue
            try:
                transport.sendto(data)
                return await asyncio.wait_for(fut, self.timeout)
            except (TimeoutError, OSError):
                continue
            finally:
                transport.close()
        return None
