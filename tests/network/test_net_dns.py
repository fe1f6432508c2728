"""Embedded DNS for real: names resolved inside container namespaces, others forwarded."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from dockyard.network import dns, dnswire
from dockyard.network.manager import NetworkSpec

pytestmark = pytest.mark.root

ASK = """
import socket, struct, sys
name, qtype, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
q = struct.pack('!HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0)
q += b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\\0' + struct.pack('!HH', qtype, 1)
if proto == 'udp':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    s.sendto(q, ('127.0.0.11', 53)); r = s.recv(4096)
else:
    s = socket.create_connection(('127.0.0.11', 53), timeout=5)
    s.sendall(struct.pack('!H', len(q)) + q); n = struct.unpack('!H', s.recv(2))[0]; r = s.recv(n)
sys.stdout.write(r.hex())
"""


class LoopThread:
    """An asyncio loop on a thread (created inside the test namespace, so it inherits it)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class FakeUpstream:
    """A DNS server on 127.0.0.1 answering every A query with 192.0.2.99 (and counting)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = self.sock.getsockname()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if not data:  # close() wakes us with an empty datagram
                return
            q = dnswire.parse_query(data)
            self.seen.append(q.name)
            rcode = dnswire.RCODE_NXDOMAIN if q.name.startswith("nx.") else dnswire.RCODE_OK
            self.sock.sendto(dnswire.build_response(q, ["192.0.2.99"] if rcode == 0 else [], rcode), peer)

    def close(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"", self.addr)
        self.thread.join()
        self.sock.close()


@pytest.fixture
def loop_thread(netns_host: str) -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


@pytest.fixture
def upstream(netns_host: str) -> Iterator[FakeUpstream]:
    up = FakeUpstream()
    yield up
    up.close()


def ask(container, name: str, qtype: int = dnswire.TYPE_A, proto: str = "udp") -> dnswire.Answer:  # type: ignore[no-untyped-def]
    import sys

    out = container.run(sys.executable, "-c", ASK, name, str(qtype), proto).stdout
    return dnswire.parse_answer(bytes.fromhex(out))


def test_names_resolve_on_shared_network_and_forward(manager, new_container, loop_thread, upstream):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="d1", subnet="10.213.12.0/24"))
    other = manager.create_network(NetworkSpec(name="d2", subnet="10.213.13.0/24"))
    a, b, c = new_container(), new_container(), new_container()
    manager.connect(net.id, "a" * 64, a.netns, name="alpha")
    eb = manager.connect(net.id, "b" * 64, b.netns, name="beta", aliases=("db",))
    manager.connect(other.id, "c" * 64, c.netns, name="gamma")
    server = dns.DnsServer(manager.resolve, [upstream.addr], timeout=2, reverse=manager.reverse)
    try:
        for cid, cont in (("a" * 64, a), ("c" * 64, c)):
            udp, tcp = dns.open_sockets(cont.netns)
            loop_thread.call(server.add(cid, udp, tcp))
        got = ask(a, "beta")
        assert (got.id, got.rcode, got.addresses) == (0x4242, 0, [eb.ip])
        assert ask(a, "DB").addresses == [eb.ip]  # aliases, case-insensitive
        assert ask(a, "bbbbbbbbbbbb").addresses == [eb.ip]  # short id
        assert ask(a, "beta", proto="tcp").addresses == [eb.ip]
        assert ask(a, "beta.d1").addresses == [eb.ip]  # network-qualified
        rev = ".".join(reversed(eb.ip.split("."))) + ".in-addr.arpa"
        assert ask(a, rev, dnswire.TYPE_PTR).names == ["beta.d1"]
        aaaa = ask(a, "beta", dnswire.TYPE_AAAA)
        assert (aaaa.rcode, aaaa.addresses) == (0, [])  # known name, no IPv6: empty NOERROR
        assert upstream.seen == []
        # a name of another network is not visible: forwarded upstream instead
        assert ask(c, "beta").addresses == ["192.0.2.99"]
        assert ask(a, "example.org").addresses == ["192.0.2.99"]
        assert ask(a, "nx.example.org").rcode == dnswire.RCODE_NXDOMAIN
        assert upstream.seen == ["beta", "example.org", "nx.example.org"]
        # a container's own --dns servers replace the server-wide upstreams
        dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dead.bind(("127.0.0.1", 0))
        try:
            server.timeout = 0.3
            udp, tcp = dns.open_sockets(b.netns)
            loop_thread.call(server.add("b" * 64, udp, tcp, upstreams=[dead.getsockname()]))
            assert ask(b, "example.org").rcode == dnswire.RCODE_SERVFAIL
            assert ask(b, "alpha").addresses == [manager.endpoints_of("a" * 64)[0].ip]
        finally:
            dead.close()
    finally:
        loop_thread.call(server.close())
    # the sockets are gone with the server: nothing listens on 127.0.0.11 in the container
    assert "127.0.0.11" not in a.run("ss", "-lnu").stdout


def test_upstream_down_gives_servfail(manager, new_container, loop_thread):  # type: ignore[no-untyped-def]
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        server = dns.DnsServer(lambda key, name: None, [silent.getsockname()], timeout=0.3)
        c = new_container()
        udp, tcp = dns.open_sockets(c.netns)
        loop_thread.call(server.add("k", udp, tcp))
        try:
            # lo must be up for 127.0.0.11 to be local in a fresh namespace
            assert ask(c, "anything.test").rcode == dnswire.RCODE_SERVFAIL
        finally:
            loop_thread.call(server.close())
    finally:
        silent.close()
