"""Host port reservation for published ports.

While a port is published we hold a socket bound to ``hostIP:hostPort`` (not listening), as
docker does, so no other program (nor a second container) can take it; the kernel is the judge
of conflicts, which also covers 0.0.0.0 vs 127.0.0.1 overlaps and ports held by other software.
Traffic never reaches these sockets: the DNAT rules in :mod:`dockyard.network.rules` rewrite it
first. Sockets are created in the calling thread's network namespace and are close-on-exec.

Lifecycle: :meth:`PortReserver.reserve` -> :class:`Reservation` (published port + socket);
``release()`` closes the socket. After a daemon restart :meth:`PortReserver.rebind` takes the
recorded ports again.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.errors import Conflict, InvalidArgument, NotImplementedYet
from dockyard.network.portspec import PortBinding

_SOCK_TYPES = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM, "sctp": socket.SOCK_STREAM}


@dataclass(frozen=True)
class PublishedPort:
    """A binding resolved to a concrete host port and a container address."""

    proto: str
    host_ip: str  # "0.0.0.0" for all addresses
    host_port: int
    container_ip: str
    container_port: int

    def to_json(self) -> dict[str, object]:
        return {
            "proto": self.proto, "host_ip": self.host_ip, "host_port": self.host_port,
            "container_ip": self.container_ip, "container_port": self.container_port,
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> PublishedPort:
        return cls(str(d["proto"]), str(d["host_ip"]), int(d["host_port"]),  # type: ignore[call-overload]
                   str(d["container_ip"]), int(d["container_port"]))  # type: ignore[call-overload]


class Reservation:
    def __init__(self, port: PublishedPort, sock: socket.socket | None,
                 on_release: Callable[[], None] | None = None) -> None:
        self.port = port
        self._sock = sock
        self._on_release = on_release

    @property
    def has_socket(self) -> bool:
        return self._sock is not None

    def dup(self) -> socket.socket:
        """A duplicate of the reserving socket (same bound port), e.g. for the userland proxy."""
        assert self._sock is not None
        return self._sock.dup()

    def release(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._on_release is not None:
            self._on_release()
            self._on_release = None


def _bind(proto: str, ip: str, port: int, reuse: bool) -> socket.socket:
    if proto == "sctp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    else:
        s = socket.socket(socket.AF_INET, _SOCK_TYPES[proto])
    try:
        if reuse and proto == "tcp":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
    except BaseException:
        s.close()
        raise
    return s


def _only_time_wait(port: int) -> bool:
    """Whether every TCP socket on local ``port`` in this thread's namespace is in TIME_WAIT
    (state 06): what a server that closed its connections first leaves behind for 60 s."""
    found = False
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/thread-self/net/{name}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                if fields[3] != "06":
                    return False
                found = True
    return found


def _in_use(ip: str, ports: str) -> Conflict:
    return Conflict(f"Bind for {ip}:{ports} failed: port is already allocated")


class PortReserver:
    """Binds host ports; also remembers what it holds, so that two of our own reservations
    conflict even when the kernel would let both bind (SO_REUSEADDR, see ``reuse_addr``).

    ``reuse_addr`` (for the userland proxy, whose closed connections leave TIME_WAIT entries
    on the host port that would block the next bind) sets SO_REUSEADDR on TCP sockets."""

    def __init__(self, reuse_addr: bool = False) -> None:
        self.reuse_addr = reuse_addr
        self._held: dict[tuple[str, int], list[str]] = {}  # (proto, port) -> host ips

    def _taken_by_us(self, proto: str, ip: str, port: int) -> bool:
        ips = self._held.get((proto, port), [])
        return bool(ips) and (ip in ips or ip == "0.0.0.0" or "0.0.0.0" in ips)

    def _track(self, sock: socket.socket, pp: PublishedPort) -> Reservation:
        key = (pp.proto, pp.host_port)
        self._held.setdefault(key, []).append(pp.host_ip)

        def forget() -> None:
            ips = self._held.get(key, [])
            if pp.host_ip in ips:
                ips.remove(pp.host_ip)
            if not ips:
                self._held.pop(key, None)

        return Reservation(pp, sock, forget)

    def _take(self, proto: str, ip: str, port: int) -> socket.socket:
        """Bind; a TCP port that only TIME_WAIT entries hold (a server on it closed connections
        first: ``compose down && up`` right after serving) is taken with SO_REUSEADDR, as
        dockerd's bindings and docker-proxy do, then the option is cleared so that the
        reservation stays exclusive for later binds."""
        try:
            return _bind(proto, ip, port, self.reuse_addr)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or self.reuse_addr or proto != "tcp" or not port \
                    or not _only_time_wait(port):
                raise
        s = _bind(proto, ip, port, True)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        return s

    def reserve(self, binding: PortBinding, container_ip: str) -> Reservation:
        """Bind the host port(s) asked for by ``binding``; raise Conflict if taken."""
        ip = binding.host_ip or "0.0.0.0"
        if ":" in ip:
            raise NotImplementedYet(f"publishing on IPv6 address {ip} is not supported yet")
        start, end = binding.host_port_start, binding.host_port_end
        if not start and not end:
            candidates: list[int] = [0]  # the kernel picks from ip_local_port_range
        else:
            candidates = list(range(max(start or 0, 1), (end or 0) + 1))
        for port in candidates:
            if port and self._taken_by_us(binding.proto, ip, port):
                continue
            try:
                s = self._take(binding.proto, ip, port)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    continue
                if e.errno == errno.EADDRNOTAVAIL:
                    raise InvalidArgument(
                        f"Error starting userland proxy: listen {binding.proto} {ip}:{port}: "
                        "bind: cannot assign requested address"
                    ) from None
                raise
            pp = PublishedPort(binding.proto, ip, s.getsockname()[1], container_ip,
                               binding.container_port)
            if port == 0 and self._taken_by_us(pp.proto, ip, pp.host_port):
                s.close()  # the kernel's pick collides with a reuse_addr socket of ours
                return self.reserve(binding, container_ip)
            return self._track(s, pp)
        raise _in_use(ip, binding.host_port_text() or "0")

    def rebind(self, port: PublishedPort) -> Reservation:
        """Take a recorded port again after a restart (Conflict if someone took it meanwhile)."""
        if self._taken_by_us(port.proto, port.host_ip, port.host_port):
            raise _in_use(port.host_ip, str(port.host_port))
        try:
            return self._track(self._take(port.proto, port.host_ip, port.host_port), port)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise _in_use(port.host_ip, str(port.host_port)) from None
            raise
