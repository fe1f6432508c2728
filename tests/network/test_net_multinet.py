"""A container on two networks; name resolution through a generated resolv.conf end to end."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from nethelpers import Container, start_echo
from test_net_dns import LoopThread

from dockyard.errors import Conflict
from dockyard.network import dns, etcfiles
from dockyard.network.manager import NetworkSpec

pytestmark = pytest.mark.root


def test_second_network_keeps_first_default_route(manager, new_container):  # type: ignore[no-untyped-def]
    n1 = manager.create_network(NetworkSpec(name="m1", subnet="10.213.50.0/24"))
    n2 = manager.create_network(NetworkSpec(name="m2", subnet="10.213.51.0/24"))
    c = new_container()
    e1 = manager.connect(n1.id, "c" * 64, c.netns, name="c")
    e2 = manager.connect(n2.id, "c" * 64, c.netns, name="c")
    assert (e1.ifname, e2.ifname) == ("eth0", "eth1")
    routes = c.run("ip", "-4", "route").stdout
    assert [ln.strip() for ln in routes.splitlines() if ln.startswith("default")] == [
        "default via 10.213.50.1 dev eth0"]
    assert "10.213.51.0/24 dev eth1" in routes
    manager.disconnect(n1.id, "c" * 64)
    assert "eth0" not in c.run("ip", "-o", "link").stdout
    assert "eth1" in c.run("ip", "-o", "link").stdout
    # a third network takes the free eth0 name again
    n3 = manager.create_network(NetworkSpec(name="m3", subnet="10.213.53.0/24"))
    assert manager.connect(n3.id, "c" * 64, c.netns, name="c").ifname == "eth0"
    assert "10.213.53.2/24" in c.run("ip", "-o", "addr", "show", "eth0").stdout


def test_existing_foreign_bridge_is_kept(manager):  # type: ignore[no-untyped-def]
    subprocess.run(["ip", "link", "add", "tforeign", "type", "bridge"], check=True)
    net = manager.create_network(NetworkSpec(
        name="f", subnet="10.213.54.0/24", options={"com.docker.network.bridge.name": "tforeign"}))
    assert not net.bridge_created
    assert "10.213.54.1/24" in subprocess.run(["ip", "-o", "addr", "show", "tforeign"],
                                              capture_output=True, text=True).stdout
    manager.remove_network(net.id)
    out = subprocess.run(["ip", "-o", "addr", "show", "tforeign"], capture_output=True, text=True)
    assert out.returncode == 0 and "10.213.54.1" not in out.stdout


def test_resolve_by_name_through_generated_resolv_conf(manager, new_container, containers, servers, tmp_path):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="app", subnet="10.213.52.0/24"))
    srv = new_container()
    esrv = manager.connect(net.id, "s" * 64, srv.netns, name="srv", aliases=("api",))
    servers.append(start_echo(srv, 80, "srv"))
    # the client gets its own mount namespace with generated /etc files bind-mounted, as the
    # runtime would do in its rootfs
    rc = etcfiles.resolv_conf("nameserver 127.0.0.1\n", embedded_dns=True)
    (tmp_path / "resolv.conf").write_text(rc.text)
    (tmp_path / "hosts").write_text(etcfiles.hosts_file("client", ["10.213.52.99"]))
    proc = subprocess.Popen([
        "unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
        f"mount --bind {tmp_path}/resolv.conf /etc/resolv.conf && "
        f"mount --bind {tmp_path}/hosts /etc/hosts && exec sleep 300"])
    client = Container(proc)
    containers.append(client)
    for _ in range(500):
        r = subprocess.run(["nsenter", f"--mount=/proc/{proc.pid}/ns/mnt", "cat", "/etc/resolv.conf"],
                           capture_output=True, text=True)
        if "127.0.0.11" in r.stdout:
            break
        time.sleep(0.005)
    manager.connect(net.id, "c" * 64, client.netns, name="client")
    lt = LoopThread()
    server = dns.DnsServer(manager.resolve, [])
    try:
        udp, tcp = dns.open_sockets(client.netns)
        lt.call(server.add("c" * 64, udp, tcp))
        out = subprocess.run(
            ["nsenter", f"--net={client.netns}", f"--mount=/proc/{proc.pid}/ns/mnt", sys.executable, "-c",
             "import socket\n"
             "print(socket.gethostbyname('api'))\n"
             "s = socket.create_connection(('srv', 80), timeout=3); s.sendall(b'by-name')\n"
             "print(s.recv(100).decode())\n"
             "print(socket.gethostbyname('client'))\n"],
            capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[0] == esrv.ip
        assert out.stdout.splitlines()[1].startswith("srv ") and "by-name" in out.stdout
        assert out.stdout.splitlines()[2] == "10.213.52.99"  # from the generated /etc/hosts
        # busybox's resolver (what images use) gets the same answer
        bb = subprocess.run(["nsenter", f"--net={client.netns}", "busybox", "nslookup", "srv", "127.0.0.11"],
                            capture_output=True, text=True, timeout=10)
        assert esrv.ip in bb.stdout, bb.stdout + bb.stderr
    finally:
        lt.call(server.close())
        lt.stop()


def test_bridge_name_of_a_non_bridge_is_refused(manager):  # type: ignore[no-untyped-def]
    subprocess.run(["ip", "link", "add", "tveth0", "type", "veth", "peer", "name", "tveth1"], check=True)
    with pytest.raises(Conflict, match="not a bridge"):
        manager.create_network(NetworkSpec(name="nb", subnet="10.213.55.0/24",
                                           options={"com.docker.network.bridge.name": "tveth0"}))
    assert "10.213.55.1" not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert manager.list_networks() == []
