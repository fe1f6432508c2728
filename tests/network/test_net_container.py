"""The engine's one-call network step: setup and teardown of a container's networking."""

from __future__ import annotations

import subprocess
import sys

import pytest
from nethelpers import ECHO_SERVER, tcp_ask

from dockyard.errors import Conflict
from dockyard.network import container
from dockyard.network.manager import NetworkSpec
from dockyard.network.portspec import parse_port_spec

pytestmark = pytest.mark.root
HOST_RESOLV = "nameserver 10.255.255.53\nsearch corp.example\n"


def test_setup_run_teardown(manager, tmp_path):  # type: ignore[no-untyped-def]
    manager.ensure_predefined()
    manager.create_network(NetworkSpec(name="app", subnet="10.213.90.0/24"))
    spec = container.ContainerNetworkSpec(
        container_id="c" * 64, name="web", hostname="cccccccccccc",
        networks=(container.NetworkRequest("app", aliases=("www",)), container.NetworkRequest("default")),
        ports=tuple(parse_port_spec("127.0.0.1::80")), extra_hosts=("db:10.0.0.5",), dns=("192.0.2.53",))
    ns = str(tmp_path / "ns")
    cn = container.setup(manager, spec, ns, HOST_RESOLV)
    server = None
    try:
        assert [e.ifname for e in cn.endpoints] == ["eth0", "eth1"]
        assert cn.endpoints[0].ip == "10.213.90.2" and cn.endpoints[1].ip == "10.213.0.2"
        assert "10.213.90.2\tcccccccccccc" in cn.hosts and "10.0.0.5\tdb" in cn.hosts
        assert cn.embedded_dns and "nameserver 127.0.0.11" in cn.resolv_conf
        assert cn.dns_upstreams == (("192.0.2.53", 53),)
        assert cn.hostname == "cccccccccccc\n"
        assert manager.resolve("c" * 64, "www") == ["10.213.90.2"]
        # the container's process joins the prepared namespace by path
        server = subprocess.Popen(["nsenter", f"--net={ns}", sys.executable, "-c", ECHO_SERVER,
                                   "tcp", "80", "web"], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        assert tcp_ask("127.0.0.1", cn.ports[0].host_port).startswith("web ")
    finally:
        if server is not None:
            server.kill()
            server.wait()
        container.teardown(manager, "c" * 64, ns)
    assert manager.endpoints_of("c" * 64) == [] and manager.ports_of("c" * 64) == []
    assert ns not in open("/proc/self/mountinfo").read()
    container.teardown(manager, "c" * 64, ns)  # idempotent


def test_default_bridge_gets_the_embedded_dns(manager, tmp_path):  # type: ignore[no-untyped-def]
    """Unlike docker: names resolve on the default bridge too; the host's resolvers become
    the embedded server's upstreams, not the container's nameservers."""
    manager.ensure_predefined()
    spec = container.ContainerNetworkSpec("d" * 64, "plain", "dddddddddddd",
                                          (container.NetworkRequest("default"),))
    other = container.ContainerNetworkSpec("e" * 64, "other", "eeeeeeeeeeee",
                                           (container.NetworkRequest("bridge"),))
    cn = container.setup(manager, spec, str(tmp_path / "ns"), HOST_RESOLV)
    cn2 = container.setup(manager, other, str(tmp_path / "ns2"), HOST_RESOLV)
    try:
        assert cn.embedded_dns
        assert "nameserver 127.0.0.11" in cn.resolv_conf and "nameserver 10.255.255.53" not in cn.resolv_conf
        assert manager.resolve("d" * 64, "other") == [cn2.endpoints[0].ip]
        assert manager.resolve("d" * 64, "other.bridge") == [cn2.endpoints[0].ip]
        assert manager.reverse("d" * 64, cn2.endpoints[0].ip) == "other.bridge"
    finally:
        container.teardown(manager, "e" * 64, cn2.netns_path)
        container.teardown(manager, "d" * 64, cn.netns_path)


def test_failed_setup_leaves_nothing(manager, tmp_path):  # type: ignore[no-untyped-def]
    a = manager.create_network(NetworkSpec(name="a", subnet="10.213.91.0/24"))
    manager.create_network(NetworkSpec(name="b", subnet="10.213.92.0/24"))
    blocker = tmp_path / "blocker"
    first = container.setup(manager, container.ContainerNetworkSpec(
        "x" * 64, "x", "x", (container.NetworkRequest("b", ip="10.213.92.7"),)), str(blocker), "")
    ns = str(tmp_path / "ns")
    with pytest.raises(Conflict, match="Address already in use"):
        container.setup(manager, container.ContainerNetworkSpec(
            "y" * 64, "y", "y", (container.NetworkRequest("a"), container.NetworkRequest("b", ip="10.213.92.7"))),
            ns, "")
    assert manager.endpoints_of("y" * 64) == []
    assert ns not in open("/proc/self/mountinfo").read()
    assert not (tmp_path / "ns").exists()
    assert manager.get(a.id).pool.allocated == frozenset()  # the address on "a" was given back
    container.teardown(manager, "x" * 64, first.netns_path)


def test_busybox_reaches_a_neighbour_by_name(manager, tmp_path):  # type: ignore[no-untyped-def]
    """The acceptance scenario's core: `nc srv 80` from a busybox on the same user network."""
    from test_net_dns import LoopThread

    from dockyard.network import dns

    manager.create_network(NetworkSpec(name="acc", subnet="10.213.93.0/24"))
    srv_ns, cli_ns = str(tmp_path / "srv"), str(tmp_path / "cli")
    container.setup(manager, container.ContainerNetworkSpec(
        "s" * 64, "srv", "s", (container.NetworkRequest("acc"),)), srv_ns, HOST_RESOLV)
    cli = container.setup(manager, container.ContainerNetworkSpec(
        "c" * 64, "cli", "c", (container.NetworkRequest("acc"),)), cli_ns, HOST_RESOLV)
    (tmp_path / "resolv.conf").write_text(cli.resolv_conf)
    (tmp_path / "hosts").write_text(cli.hosts)
    lt = LoopThread()
    server = dns.DnsServer(manager.resolve, [])
    srv = subprocess.Popen(["nsenter", f"--net={srv_ns}", "busybox", "sh", "-c",
                            "echo dockyard-hello | busybox nc -l -p 80"])
    try:
        udp, tcp = dns.open_sockets(cli_ns)
        lt.call(server.add("c" * 64, udp, tcp))
        out = ""
        for _ in range(50):  # until the server listens
            r = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 f"mount --bind {tmp_path}/resolv.conf /etc/resolv.conf && "
                 f"mount --bind {tmp_path}/hosts /etc/hosts && "
                 f"nsenter --net={cli_ns} busybox nc -w 3 srv 80 </dev/null"],
                capture_output=True, text=True, timeout=20)
            out = r.stdout + r.stderr
            if "dockyard-hello" in out:
                break
        assert "dockyard-hello" in out, out
    finally:
        srv.kill()
        srv.wait()
        lt.call(server.close())
        lt.stop()
        container.teardown(manager, "s" * 64, srv_ns)
        container.teardown(manager, "c" * 64, cli_ns)
