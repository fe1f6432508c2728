"""A host port that only TIME_WAIT entries hold can be published (as with dockerd), and the
reservation stays exclusive; a port someone listens on or holds still conflicts."""

from __future__ import annotations

import socket

import pytest

from dockyard.errors import Conflict
from dockyard.network.portmap import PortReserver
from dockyard.network.portspec import PortBinding


def _time_wait_port() -> int:
    """A loopback port left in TIME_WAIT by a server that closed its connection first."""
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = int(srv.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)) as c:
            conn, _ = srv.accept()
            conn.close()  # the server side closes first: its end goes to TIME_WAIT
            assert c.recv(1) == b""
    with socket.socket() as probe:
        with pytest.raises(OSError):
            probe.bind(("127.0.0.1", port))  # what a plain bind meets
    return port


def test_time_wait_alone_does_not_block_a_reservation() -> None:
    port = _time_wait_port()
    r = PortReserver(reuse_addr=False)
    res = r.reserve(PortBinding(80, "tcp", "127.0.0.1", port, port), "10.0.0.2")
    try:
        assert res.port.host_port == port
        # still exclusive: another program (even with SO_REUSEADDR) cannot take it now
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError):
                other.bind(("127.0.0.1", port))
        with pytest.raises(Conflict):
            PortReserver().reserve(PortBinding(80, "tcp", "127.0.0.1", port, port), "10.0.0.3")
    finally:
        res.release()


def test_a_listener_still_conflicts() -> None:
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = int(srv.getsockname()[1])
        with pytest.raises(Conflict, match=f"Bind for 127.0.0.1:{port} failed: port is already allocated"):
            PortReserver().reserve(PortBinding(80, "tcp", "127.0.0.1", port, port), "10.0.0.2")
