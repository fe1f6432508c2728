"""NetworkManager for real: networks' lifecycle, outbound NAT, --internal, FORWARD DROP,
restart and crash reconcile."""

from __future__ import annotations

import subprocess

import pytest
from nethelpers import Container, start_echo

from dockyard.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PermissionDenied
from dockyard.network import bridge, fwpolicy, rules
from dockyard.network.manager import NetworkManager, NetworkSpec
from dockyard.network.portspec import parse_port_spec

pytestmark = pytest.mark.root


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def connect_from(c: Container, ip: str, port: int) -> str:
    return c.python(
        f"import socket\ntry:\n s=socket.create_connection(('{ip}', {port}), timeout=1.5); s.sendall(b'x');"
        " print(s.recv(100).decode())\nexcept OSError as e: print('ERR', e)")


def test_network_lifecycle_and_errors(manager):  # type: ignore[no-untyped-def]
    manager.ensure_predefined()
    names = {n.name: n for n in manager.list_networks()}
    assert set(names) == {"bridge", "host", "none"}
    default = names["bridge"]
    assert default.bridge == "dockyard0" and str(default.pool.subnet) == "10.213.0.0/24"
    assert manager.host_gateway_ip() == "10.213.0.1"
    with pytest.raises(InvalidArgument, match="user defined networks only"):
        manager.connect("bridge", "c" * 64, "/proc/self/ns/net", ip="10.213.0.9")
    assert "10.213.0.1/24" in sh("ip", "-o", "addr", "show", "dockyard0")
    assert sh("cat", "/proc/sys/net/ipv4/conf/dockyard0/route_localnet").strip() == "1"
    with pytest.raises(PermissionDenied, match="pre-defined"):
        manager.remove_network("bridge")
    with pytest.raises(PermissionDenied):
        manager.create_network(NetworkSpec(name="h2", driver="host"))
    with pytest.raises(NotFound):
        manager.create_network(NetworkSpec(name="x", driver="overlay"))
    # an address on the host makes the next automatic subnet skip it
    sh("ip", "link", "add", "tdummy", "type", "bridge")
    sh("ip", "link", "set", "tdummy", "up")
    sh("ip", "addr", "add", "10.213.1.1/24", "dev", "tdummy")
    auto = manager.create_network(NetworkSpec(name="auto", labels={"k": "v"}))
    assert str(auto.pool.subnet) == "10.213.2.0/24" and auto.bridge == "dy-" + auto.id[:12]
    with pytest.raises(AlreadyExists, match="network with name auto already exists"):
        manager.create_network(NetworkSpec(name="auto"))
    with pytest.raises(Conflict, match="Pool overlaps with other one on this address space"):
        manager.create_network(NetworkSpec(name="ov", subnet="10.213.2.128/25"))
    with pytest.raises(InvalidArgument):
        manager.create_network(NetworkSpec(name="bad", subnet="10.213.50.0/24",
                                           options={"com.docker.network.bridge.enable_icc": "maybe"}))
    assert "ov" not in {n.name for n in manager.list_networks()}
    assert not [n for n, _ in bridge.our_links(manager._ipr) if n not in ("dockyard0", auto.bridge)]
    named = manager.create_network(NetworkSpec(
        name="named", subnet="10.213.60.0/24",
        options={"com.docker.network.bridge.name": "tbr-custom", "com.docker.network.driver.mtu": "1400"}))
    assert "mtu 1400" in sh("ip", "link", "show", "tbr-custom")
    assert manager.get(auto.id[:6]).name == "auto" and manager.get("named").id == named.id
    manager.remove_network("named")
    assert subprocess.run(["ip", "link", "show", "tbr-custom"], capture_output=True).returncode != 0
    with pytest.raises(NotFound):
        manager.get("named")
    # records survive a restart
    again = NetworkManager(manager.state_dir, manager.config)
    try:
        assert {n.name for n in again.list_networks()} == {"bridge", "host", "none", "auto"}
        assert again.get("auto") == manager.get("auto")
    finally:
        again.close()


def test_outbound_masquerade_internal_and_forward_drop(manager, new_container, outside, servers):  # type: ignore[no-untyped-def]
    servers.append(start_echo(outside, 7000, "outside"))
    # a co-resident dockerd's policy: FORWARD DROP (in the test namespace only)
    sh("iptables", "-w", "-P", "FORWARD", "DROP")
    try:
        pub = manager.create_network(NetworkSpec(name="pub", subnet="10.213.20.0/24"))
        internal = manager.create_network(NetworkSpec(name="int", subnet="10.213.21.0/24", internal=True))
        assert len(fwpolicy.our_rules()) == 4  # the jump + 2 for "pub" + 1 for "int"
        fwd = sh("iptables", "-w", "-S", "FORWARD").splitlines()
        assert fwd[:2] == ["-P FORWARD DROP", "-A FORWARD -m comment --comment dockyard -j DOCKYARD"]
        a, b = new_container(), new_container()
        manager.connect(pub.id, "a" * 64, a.netns, name="a")
        eb = manager.connect(internal.id, "b" * 64, b.netns, name="b")
        assert eb.gateway is None and "default" not in b.run("ip", "route").stdout
        # out through the host, masqueraded to the uplink address
        assert connect_from(a, "10.250.0.2", 7000).startswith("outside 10.250.0.1 x")
        # internal: even with a hand-made default route, the host does not forward it
        b.run("ip", "route", "add", "default", "via", "10.213.21.1")
        assert connect_from(b, "10.250.0.2", 7000).startswith("ERR")
        # a neighbour on the same bridge: with br_netfilter, bridged traffic meets FORWARD too
        a2 = new_container()
        ea2 = manager.connect(pub.id, "e" * 64, a2.netns, name="a2")
        servers.append(start_echo(a2, 7001, "a2"))
        assert connect_from(a, ea2.ip, 7001).startswith("a2 ")
        # without our FORWARD rules the DROP policy stops the public network
        fwpolicy.remove_bridge_rules(pub.bridge)
        assert connect_from(a, "10.250.0.2", 7000).startswith("ERR")
        with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as f:
            if f.read().strip() == "1":
                assert connect_from(a, ea2.ip, 7001).startswith("ERR")
        fwpolicy.ensure_bridge_rules(pub.bridge)
        assert connect_from(a, "10.250.0.2", 7000).startswith("outside ")
        assert connect_from(a, ea2.ip, 7001).startswith("a2 ")
        manager.release_container("e" * 64)
        manager.release_container("a" * 64)
        manager.release_container("b" * 64)
        manager.remove_network("pub")
        manager.remove_network("int")
        assert fwpolicy.our_rules() == [] and rules.tables_present() == []
    finally:
        sh("iptables", "-w", "-P", "FORWARD", "ACCEPT")


def test_reconcile_after_crash(manager, new_container, tmp_path):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="r", subnet="10.213.30.0/24"))
    live, dead = new_container(), new_container()
    el = manager.connect(net.id, "l" * 64, live.netns, name="live")
    ed = manager.connect(net.id, "d" * 64, dead.netns, name="dead")
    manager.publish("l" * 64, el, parse_port_spec("80"))
    manager.publish("d" * 64, ed, parse_port_spec("80"))
    # leftovers of ours that no record explains
    sh("ip", "link", "add", "dy-0123456789ab", "type", "bridge")
    sh("ip", "link", "add", "dyv0123456789a", "type", "veth", "peer", "name", "tpeer0")
    # "crash": the daemon dies (its sockets with it), the dead container's namespace goes away
    manager.close()
    dead.proc.kill()
    dead.proc.wait()
    mgr = NetworkManager(manager.state_dir, manager.config)
    try:
        assert mgr.restore() == []
        done = mgr.reconcile(["l" * 64])
        assert f"disconnected {'d' * 64} from r" in done and "deleted bridge dy-0123456789ab" in done
        assert "deleted veth dyv0123456789a" in done
        assert [o for o, _ in rules.port_rules()] == ["l" * 64]
        assert mgr.endpoints_of("d" * 64) == [] and mgr.ports_of("d" * 64) == []
        assert [e.ip for e in mgr.endpoints_of("l" * 64)] == [el.ip]
        assert {n for n, _ in bridge.our_links(mgr._ipr)} == {net.bridge, el.host_ifname}
        # the released address is free again
        assert mgr.connect(net.id, "n" * 64, new_container().netns, name="n").ip == ed.ip
        mgr.release_container("n" * 64)
        mgr.release_container("l" * 64)
        mgr.remove_network(net.id)
    finally:
        mgr.close()


def test_icc_false_isolates_containers_but_not_gateway(manager, new_container):  # type: ignore[no-untyped-def]
    # bridged traffic reaches the inet forward hook through br_netfilter (bridge-nf-call-iptables)
    with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as f:
        if f.read().strip() != "1":
            pytest.skip("br_netfilter with bridge-nf-call-iptables=1 is needed for enable_icc=false")
    net = manager.create_network(NetworkSpec(
        name="noicc", subnet="10.213.40.0/24", options={"com.docker.network.bridge.enable_icc": "false"}))
    a, b = new_container(), new_container()
    manager.connect(net.id, "a" * 64, a.netns, name="a")
    eb = manager.connect(net.id, "b" * 64, b.netns, name="b")
    assert a.run("busybox", "ping", "-c", "1", "-W", "1", eb.ip, check=False).returncode != 0
    a.run("busybox", "ping", "-c", "1", "-W", "2", "10.213.40.1")


def test_purge_removes_everything(manager, new_container):  # type: ignore[no-untyped-def]
    manager.ensure_predefined()
    net = manager.create_network(NetworkSpec(name="pg", subnet="10.213.95.0/24"))
    c = new_container()
    ep = manager.connect(net.id, "c" * 64, c.netns, name="c")
    manager.publish("c" * 64, ep, parse_port_spec("80"))
    manager.purge()
    assert manager.list_networks() == [] and manager.ports_of("c" * 64) == []
    assert list((manager.state_dir / "networks").glob("*.json")) == []
    assert bridge.our_links(manager._ipr) == [] and rules.tables_present() == []
    assert "eth0" not in c.run("ip", "-o", "link").stdout


def test_unreadable_record_is_quarantined(manager):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="q", subnet="10.213.96.0/24"))
    rec = manager.state_dir / "networks" / f"{net.id}.json"
    rec.write_text('{"id": "torn')
    again = NetworkManager(manager.state_dir, manager.config)
    try:
        assert again.list_networks() == []
        assert not rec.exists() and rec.with_name(rec.name + ".corrupt").exists()
        # the bridge nobody accounts for any more is reconciled away
        assert f"deleted bridge {net.bridge}" in again.reconcile([])
    finally:
        again.close()
