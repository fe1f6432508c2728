"""The userland proxy fallback (no kernel NAT): TCP and UDP through the reserving sockets."""

from __future__ import annotations

import dataclasses
import socket

import pytest
from nethelpers import start_echo, tcp_ask
from test_net_dns import LoopThread

from dockyard.errors import Conflict
from dockyard.network import rules
from dockyard.network.manager import NetworkManager, NetworkSpec
from dockyard.network.portspec import parse_port_spec
from dockyard.network.proxy import UserlandProxy

pytestmark = pytest.mark.root


def test_proxy_forwards_tcp_and_udp(manager, new_container, servers, tmp_path):  # type: ignore[no-untyped-def]
    mgr = NetworkManager(tmp_path / "proxied", dataclasses.replace(manager.config, port_nat=False))
    lt = LoopThread()
    proxy = UserlandProxy(udp_idle=5)
    net = mgr.create_network(NetworkSpec(name="px", subnet="10.213.80.0/24"))
    try:
        c = new_container()
        ep = mgr.connect(net.id, "c" * 64, c.netns, name="c")
        servers.append(start_echo(c, 80, "tcp80"))
        servers.append(start_echo(c, 53, "udp53", proto="udp"))
        ports = mgr.publish("c" * 64, ep, parse_port_spec("127.0.0.1::80") + parse_port_spec("127.0.0.1::53/udp"))
        assert rules.port_rules() == []  # no kernel NAT in this mode
        lt.call(proxy.serve("c" * 64, mgr.proxy_sockets("c" * 64)))
        for _ in range(3):  # several connections, each gets its own upstream connection
            assert tcp_ask("127.0.0.1", ports[0].host_port, b"hello") == "tcp80 10.213.80.1 hello"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(3)
            for i in range(2):
                u.sendto(f"q{i}".encode(), ("127.0.0.1", ports[1].host_port))
                assert u.recv(100).decode() == f"udp53 10.213.80.1 q{i}"
        lt.call(proxy.stop("c" * 64))
        mgr.unpublish("c" * 64)
        for p in ports:  # both ports are free again (TIME_WAIT of proxied connections aside)
            kind = socket.SOCK_DGRAM if p.proto == "udp" else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, kind) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p.host_port))
        # and our own next reservation of the same port works despite TIME_WAIT
        again = mgr.publish("c" * 64, ep, parse_port_spec(f"127.0.0.1:{ports[0].host_port}:80"))
        assert again[0].host_port == ports[0].host_port
        with pytest.raises(Conflict, match="port is already allocated"):
            mgr.publish("d" * 64, ep, parse_port_spec(f"{ports[0].host_port}:80"))
    finally:
        mgr.release_container("c" * 64)
        mgr.remove_network(net.id)
        lt.call(proxy.close())
        lt.stop()
        mgr.close()
