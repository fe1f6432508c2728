"""Published ports for real: DNAT from 127.0.0.1 and the bridge address, conflicts, cleanup."""

from __future__ import annotations

import select
import socket

import pytest
from nethelpers import start_echo, tcp_ask

from dockyard.errors import Conflict, InvalidArgument
from dockyard.network import rules
from dockyard.network.manager import NetworkSpec
from dockyard.network.portspec import parse_port_spec

pytestmark = pytest.mark.root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_publish_reaches_container_from_localhost_and_bridge(manager, new_container, servers):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="p1", subnet="10.213.9.0/24"))
    web = new_container()
    ep = manager.connect(net.id, "w" * 64, web.netns, name="web")
    servers.append(start_echo(web, 80, "web"))
    hp = free_port()
    ports = manager.publish("w" * 64, ep, parse_port_spec(f"{hp}:80"))
    assert [(p.host_ip, p.host_port, p.container_ip, p.container_port) for p in ports] == [
        ("0.0.0.0", hp, ep.ip, 80)]
    # from the host itself via loopback: DNAT in OUTPUT, route_localnet, 127/8 masquerade
    assert tcp_ask("127.0.0.1", hp).startswith("web 10.213.9.1 hi")
    # via the bridge's own address
    assert tcp_ask("10.213.9.1", hp).startswith("web ")
    # the host port is held: nobody else may bind it
    with socket.socket() as s, pytest.raises(OSError):
        s.bind(("0.0.0.0", hp))
    # a second container asking for the same port is refused with docker's message
    other = new_container()
    ep2 = manager.connect(net.id, "x" * 64, other.netns, name="other")
    with pytest.raises(Conflict, match=rf"Bind for 0.0.0.0:{hp} failed: port is already allocated"):
        manager.publish("x" * 64, ep2, parse_port_spec(f"{hp}:80"))
    assert [o for o, _ in rules.port_rules()] == ["w" * 64]
    # hairpin: a neighbour on the same bridge reaches the published port through the host
    out = other.python(
        f"import socket; s=socket.create_connection(('10.213.9.1', {hp}), timeout=3); "
        "s.sendall(b'x'); print(s.recv(100).decode())")
    assert out.startswith("web ")
    # hairpin to itself: the port's own bridge port sends the packet back (hairpin mode)
    out = web.python(
        f"import socket; s=socket.create_connection(('10.213.9.1', {hp}), timeout=3); "
        "s.sendall(b'x'); print(s.recv(100).decode())")
    assert out.startswith("web 10.213.9.1 x")
    manager.unpublish("w" * 64)
    assert rules.port_rules() == []
    with socket.socket() as s:
        s.bind(("0.0.0.0", hp))  # released
    with pytest.raises(OSError):
        tcp_ask("127.0.0.1", hp, timeout=1)


def test_publish_on_loopback_ip_random_and_udp(manager, new_container, servers):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="p2", subnet="10.213.10.0/24"))
    c = new_container()
    ep = manager.connect(net.id, "c" * 64, c.netns, name="c")
    servers.append(start_echo(c, 80, "tcp80"))
    servers.append(start_echo(c, 53, "udp53", proto="udp"))
    hp = free_port()
    bindings = parse_port_spec(f"127.0.0.1:{hp}:80") + parse_port_spec("80") + parse_port_spec("127.0.0.1::53/udp")
    ports = manager.publish("c" * 64, ep, bindings)
    assert ports[0].host_port == hp and ports[0].host_ip == "127.0.0.1"
    rnd = ports[1].host_port
    assert 1024 < rnd and rnd != hp
    assert tcp_ask("127.0.0.1", hp).startswith("tcp80 ")
    assert tcp_ask("127.0.0.1", rnd).startswith("tcp80 ")
    # bound to 127.0.0.1 only: the bridge address does not lead to it
    with pytest.raises(OSError):
        tcp_ask("10.213.10.1", hp, timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(3)
        u.sendto(b"q", ("127.0.0.1", ports[2].host_port))
        assert u.recv(100).decode().startswith("udp53 ")
    # restart: a new manager on the same state takes the ports again
    manager.close()
    from dockyard.network.manager import NetworkManager

    again = NetworkManager(manager.state_dir, manager.config)
    try:
        assert again.ports_of("c" * 64) == ports
        assert again.restore() == []
        with socket.socket() as s, pytest.raises(OSError):
            s.bind(("127.0.0.1", hp))
        assert tcp_ask("127.0.0.1", hp).startswith("tcp80 ")
        again.release_container("c" * 64)
        again.remove_network(net.id)
    finally:
        again.close()


def test_failed_publish_leaves_nothing(manager, new_container):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="p3", subnet="10.213.11.0/24"))
    c = new_container()
    ep = manager.connect(net.id, "c" * 64, c.netns, name="c")
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", 0))
        taken = blocker.getsockname()[1]
        hp = free_port()
        with pytest.raises(Conflict):
            manager.publish("c" * 64, ep, parse_port_spec(f"{hp}:80") + parse_port_spec(f"{taken}:81"))
    assert rules.port_rules() == []
    assert manager.ports_of("c" * 64) == []
    with socket.socket() as s:
        s.bind(("0.0.0.0", hp))  # the first reservation was undone
    # a host range picks the first free port of the range
    ports = manager.publish("c" * 64, ep, parse_port_spec(f"{hp}-{hp + 2}:80"))
    assert hp <= ports[0].host_port <= hp + 2


def test_container_cannot_reach_host_localhost(manager, new_container):  # type: ignore[no-untyped-def]
    """route_localnet=1 on the bridge must not open the host's 127.0.0.1 to containers."""
    net = manager.create_network(NetworkSpec(name="p4", subnet="10.213.14.0/24"))
    c = new_container()
    manager.connect(net.id, "c" * 64, c.netns, name="c")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim:
        victim.bind(("127.0.0.1", 0))
        victim.settimeout(1)
        port = victim.getsockname()[1]
        # what a container able to shape its packets can do: route 127.0.0.1 via the gateway
        c.run("sysctl", "-q", "-w", "net.ipv4.conf.eth0.route_localnet=1")
        c.run("ip", "route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local")
        c.run("ip", "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
        c.run("ip", "route", "add", "127.0.0.1/32", "via", "10.213.14.1", "dev", "eth0")
        c.python("import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                 f"[s.sendto(b'evil', ('127.0.0.1', {port})) for _ in range(3)]")
        with pytest.raises(TimeoutError):
            victim.recvfrom(100)


def test_loopback_published_port_not_reachable_from_the_link(manager, new_container, outside, servers):  # type: ignore[no-untyped-def]
    """A neighbour on the host's link sending to 127.0.0.1:P must not get DNATed in."""
    net = manager.create_network(NetworkSpec(name="p5", subnet="10.213.15.0/24"))
    c = new_container()
    ep = manager.connect(net.id, "c" * 64, c.netns, name="c")
    servers.append(start_echo(c, 80, "secret"))
    udp = start_echo(c, 53, "secret", proto="udp")
    servers.append(udp)
    hp, hp2 = free_port(), free_port()
    manager.publish("c" * 64, ep, parse_port_spec(f"127.0.0.1:{hp}:53/udp") + parse_port_spec(f"{hp2}:80"))
    ask = ("import socket\ntry:\n s=socket.create_connection(('{ip}', {port}), timeout=1.5); s.sendall(b'x');"
           " print(s.recv(100).decode())\nexcept OSError as e: print('ERR', e)")
    # the port published on all addresses is reachable from the link (DNAT in prerouting)
    assert outside.python(ask.format(ip="10.250.0.1", port=hp2)).startswith("secret 10.250.0.2")
    # the loopback one works from the host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(3)
        u.sendto(b"legit", ("127.0.0.1", hp))
        assert u.recv(100).startswith(b"secret ")
    assert udp.stdout is not None and udp.stdout.readline().split()[2] == "legit"
    # the neighbour routes 127.0.0.1 to us (what a hostile host on the LAN can do)
    outside.run("sysctl", "-q", "-w", "net.ipv4.conf.eth0.route_localnet=1")
    outside.run("ip", "route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local")
    outside.run("ip", "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
    outside.run("ip", "route", "add", "127.0.0.1/32", "via", "10.250.0.1", "dev", "eth0")
    outside.python("import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                   f"[s.sendto(b'evil', ('127.0.0.1', {hp})) for _ in range(3)]")
    ready, _, _ = select.select([udp.stdout], [], [], 1.0)
    assert ready == [], f"the container received: {udp.stdout.readline()}"


def test_only_published_ports_reachable_from_outside_the_bridge(manager, new_container, outside, servers):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="p6", subnet="10.213.16.0/24"))
    other = manager.create_network(NetworkSpec(name="p7", subnet="10.213.17.0/24"))
    open_net = manager.create_network(NetworkSpec(
        name="p8", subnet="10.213.18.0/24",
        options={"com.docker.network.bridge.gateway_mode_ipv4": "nat-unprotected"}))
    c, d, e = new_container(), new_container(), new_container()
    ec = manager.connect(net.id, "c" * 64, c.netns, name="c")
    manager.connect(other.id, "d" * 64, d.netns, name="d")
    ee = manager.connect(open_net.id, "e" * 64, e.netns, name="e")
    servers.append(start_echo(c, 80, "c80"))
    servers.append(start_echo(c, 81, "c81"))
    servers.append(start_echo(e, 80, "e80"))
    hp = free_port()
    manager.publish("c" * 64, ec, parse_port_spec(f"{hp}:80"))
    ask = ("import socket\ntry:\n s=socket.create_connection(('{ip}', {port}), timeout=1.5); s.sendall(b'x');"
           " print(s.recv(100).decode())\nexcept OSError as e: print('ERR', e)")
    outside.run("ip", "route", "add", "10.213.16.0/22", "via", "10.250.0.1")
    assert outside.python(ask.format(ip="10.250.0.1", port=hp)).startswith("c80 ")  # published
    assert outside.python(ask.format(ip=ec.ip, port=81)).startswith("ERR")  # direct: refused
    assert d.python(ask.format(ip=ec.ip, port=81)).startswith("ERR")  # another network: isolated
    assert d.python(ask.format(ip="10.213.17.1", port=hp)).startswith("c80 ")  # published: fine
    assert tcp_ask(ec.ip, 81).startswith("c81 ")  # the host itself may connect directly
    assert outside.python(ask.format(ip=ee.ip, port=80)).startswith("e80 ")  # nat-unprotected
    with pytest.raises(InvalidArgument, match="gateway_mode_ipv4"):
        manager.create_network(NetworkSpec(name="bad", subnet="10.213.19.0/24",
                               options={"com.docker.network.bridge.gateway_mode_ipv4": "wide-open"}))
