"""Host port reservation on loopback (binding only, no traffic)."""

from __future__ import annotations

import socket

import pytest

from dockyard.errors import Conflict
from dockyard.network.portmap import PortReserver
from dockyard.network.portspec import PortBinding


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("reuse", [False, True])
def test_own_reservations_conflict(reuse: bool) -> None:
    r = PortReserver(reuse_addr=reuse)
    p = free_port()
    a = r.reserve(PortBinding(80, "tcp", "127.0.0.1", p, p), "10.0.0.2")
    try:
        with pytest.raises(Conflict, match=f"Bind for 0.0.0.0:{p} failed: port is already allocated"):
            r.reserve(PortBinding(80, "tcp", "", p, p), "10.0.0.3")
        with pytest.raises(Conflict, match=f"Bind for 127.0.0.1:{p} failed"):
            r.reserve(PortBinding(80, "tcp", "127.0.0.1", p, p), "10.0.0.3")
        u = r.reserve(PortBinding(53, "udp", "127.0.0.1", p, p), "10.0.0.3")  # other protocol
        u.release()
        # a host range skips the taken port
        b = r.reserve(PortBinding(80, "tcp", "127.0.0.1", p, p + 1), "10.0.0.3")
        assert b.port.host_port == p + 1
        b.release()
    finally:
        a.release()
    again = r.reserve(PortBinding(80, "tcp", "", p, p), "10.0.0.3")
    again.release()
    with pytest.raises(Conflict):
        _foreign(r, p)


def _foreign(r: PortReserver, p: int) -> None:
    """A port held by another program (listening) is refused too."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", p))
        other.listen(1)
        r.reserve(PortBinding(80, "tcp", "", p, p), "10.0.0.3")


def test_random_port_and_rebind() -> None:
    r = PortReserver()
    a = r.reserve(PortBinding(80, "tcp", "127.0.0.1"), "10.0.0.2")
    assert a.port.host_port > 0 and a.port.host_ip == "127.0.0.1"
    with pytest.raises(Conflict):
        r.rebind(a.port)
    a.release()
    b = r.rebind(a.port)
    assert b.port == a.port
    b.release()
