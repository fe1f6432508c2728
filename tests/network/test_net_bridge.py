"""Bridge networks for real: two namespace "containers" on one bridge reach each other."""

from __future__ import annotations

import pytest
from nethelpers import start_echo

from dockyard.errors import Conflict, InvalidArgument
from dockyard.network.manager import NetworkSpec

pytestmark = pytest.mark.root
BB = "busybox"


def test_two_containers_ping_and_tcp(manager, new_container, servers):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="t1", subnet="10.213.7.0/24"))
    a, b = new_container(), new_container()
    ea = manager.connect(net.id, "a" * 64, a.netns, name="alpha")
    eb = manager.connect(net.id, "b" * 64, b.netns, name="beta")
    assert (ea.ip, eb.ip) == ("10.213.7.2", "10.213.7.3")
    assert ea.mac == "02:42:0a:d5:07:02"
    out = a.run("ip", "-o", "addr", "show", "eth0").stdout
    assert "10.213.7.2/24" in out
    assert "02:42:0a:d5:07:02" in a.run("ip", "link", "show", "eth0").stdout
    assert "default via 10.213.7.1 dev eth0" in a.run("ip", "route").stdout
    assert "UP" in a.run("ip", "link", "show", "lo").stdout
    a.run(BB, "ping", "-c", "1", "-W", "2", eb.ip)
    a.run(BB, "ping", "-c", "1", "-W", "2", "10.213.7.1")  # the gateway on the bridge
    servers.append(start_echo(b, 5000, "beta"))
    reply = a.python(f"import socket; s=socket.create_connection(('{eb.ip}', 5000), timeout=3); "
                     "s.sendall(b'hello'); print(s.recv(100).decode())")
    assert reply.strip() == f"beta {ea.ip} hello"  # no NAT between containers of one bridge
    manager.disconnect(net.id, "a" * 64)
    assert a.run("ip", "link", "show", "eth0", check=False).returncode != 0
    # the released address is handed out again
    ea2 = manager.connect(net.id, "c" * 64, a.netns, name="gamma")
    assert ea2.ip == "10.213.7.2"


def test_static_ip_mac_and_conflicts(manager, new_container):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="t2", subnet="10.213.8.0/24", ip_range="10.213.8.128/25"))
    a, b = new_container(), new_container()
    ea = manager.connect(net.id, "a" * 64, a.netns, ip="10.213.8.50", mac="02:00:00:00:00:aa")
    assert ea.ip == "10.213.8.50"
    assert "02:00:00:00:00:aa" in a.run("ip", "link", "show", "eth0").stdout
    with pytest.raises(Conflict, match="Address already in use"):
        manager.connect(net.id, "b" * 64, b.netns, ip="10.213.8.50")
    # the failed connect left no veth and no interface in b
    assert b.run("ip", "link", "show", "eth0", check=False).returncode != 0
    assert manager.connect(net.id, "b" * 64, b.netns).ip == "10.213.8.128"  # from --ip-range (its .128 too)
    with pytest.raises(InvalidArgument):
        manager.connect(net.id, "c" * 64, b.netns, ip="10.99.0.1")


def test_release_after_exit_leaves_veth_to_the_kernel(manager, new_container):  # type: ignore[no-untyped-def]
    import time

    from dockyard.network import bridge

    net = manager.create_network(NetworkSpec(name="t3", subnet="10.213.6.0/24"))
    c = new_container()
    ep = manager.connect(net.id, "c" * 64, c.netns, name="c")
    c.proc.kill()
    c.proc.wait()
    manager.release_container("c" * 64)
    assert manager.endpoints_of("c" * 64) == []
    for _ in range(400):  # the namespace's cleanup runs in a kernel worker
        if ep.host_ifname not in {n for n, _ in bridge.our_links(manager._ipr)}:
            break
        time.sleep(0.005)
    else:
        raise AssertionError(f"{ep.host_ifname} still exists")


def test_named_netns_connect_before_any_process(manager, tmp_path):  # type: ignore[no-untyped-def]
    """The engine's flow: a named namespace, connected, then joined by the container."""
    import subprocess
    import time

    from dockyard.network import bridge, netns

    path = str(tmp_path / "ns-c")
    netns.create_named(path)
    try:
        net = manager.create_network(NetworkSpec(name="t4", subnet="10.213.4.0/24"))
        ep = manager.connect(net.id, "c" * 64, path, name="c")
        out = subprocess.run(["nsenter", f"--net={path}", "busybox", "ping", "-c", "1", "-W", "2",
                              "10.213.4.1"], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "UP" in subprocess.run(["nsenter", f"--net={path}", "ip", "link", "show", "lo"],
                                      capture_output=True, text=True).stdout
    finally:
        netns.remove_named(path)
    assert path not in open("/proc/self/mountinfo").read()
    manager.release_container("c" * 64)  # namespace gone: the kernel removes the pair
    for _ in range(400):
        if ep.host_ifname not in {n for n, _ in bridge.our_links(manager._ipr)}:
            break
        time.sleep(0.005)
    else:
        raise AssertionError("veth of a removed named namespace is still there")
    with pytest.raises(FileExistsError):
        netns.create_named(str(tmp_path))  # an existing path is refused, nothing mounted
