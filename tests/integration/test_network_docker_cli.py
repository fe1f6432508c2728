"""Networking as the real docker CLI meets it: default-bridge DNS, connect/disconnect of
stopped and running containers, `docker port`, -P, the 0.0.0.0 warning, network events,
`docker stats` NET I/O, and that removal leaves no veth, bridge or nft rule behind.

One private dockyardd for the module, with a network instance name of its own so the links
and nft tables checked here are this daemon's only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import DOCKER, Engine, make_image_tar, prune_and_stop, start_daemon, stop_engine

from dockyard.network.naming import Naming

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def net_engine(busybox_rootfs: Path) -> Iterator[Engine]:
    if DOCKER is None:
        pytest.skip("needs the docker CLI")
    root = Path(tempfile.mkdtemp(prefix="dyn-", dir="/tmp"))
    args = ["--default-runtime", "dockyard-runtime", "--network-instance", "n" + secrets.token_hex(1)]
    eng = Engine(root, str(root / "d.sock"), start_daemon(root, str(root / "d.sock"), args), "dockyard-runtime", args)
    try:
        out = eng.docker("import", str(make_image_tar(busybox_rootfs, root / "busybox.tar")), "busybox:latest")
        assert out.returncode == 0, out.stderr
        yield eng
    finally:
        prune_and_stop(eng)


def _instance(eng: Engine) -> str:
    return eng.args[eng.args.index("--network-instance") + 1]


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


def _veths(eng: Engine) -> set[str]:
    return {n for n in _links() if n.startswith(f"dy{_instance(eng)}v")}


def _ok(p: subprocess.CompletedProcess[bytes]) -> str:
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gone(eng: Engine, *names: str) -> None:
    eng.docker("rm", "-f", *names)
    for _ in range(100):  # the kernel deletes a dead namespace's veths asynchronously
        if not _veths(eng):
            return
        time.sleep(0.05)
    raise AssertionError(f"veths left: {_veths(eng)}")


def _ip(eng: Engine, name: str, net: str) -> str:
    return _ok(eng.docker("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}", name)).strip()


def test_names_resolve_on_the_default_bridge(net_engine: Engine) -> None:
    eng = net_engine
    try:
        _ok(eng.docker("run", "-d", "--name", "dbsrv", "busybox", "sleep", "600"))
        ip = _ip(eng, "dbsrv", "bridge")
        # docker still fills the deprecated top-level fields for the default bridge
        assert _ok(eng.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "dbsrv")).strip() == ip
        out = _ok(eng.docker("run", "--rm", "busybox", "sh", "-c", "cat /etc/resolv.conf; nslookup dbsrv"))
        assert "nameserver 127.0.0.11" in out and f"Address: {ip}" in out, out
    finally:
        _gone(eng, "dbsrv")


def test_default_bridge_container_joining_a_user_network_resolves_there(net_engine: Engine) -> None:
    eng = net_engine
    try:
        _ok(eng.docker("network", "create", "joinnet"))
        _ok(eng.docker("run", "-d", "--name", "onuser", "--network", "joinnet", "--network-alias", "svc",
                       "busybox", "sleep", "600"))
        _ok(eng.docker("run", "-d", "--name", "onbridge", "busybox", "sleep", "600"))
        assert eng.docker("exec", "onbridge", "nslookup", "svc").returncode != 0
        _ok(eng.docker("network", "connect", "joinnet", "onbridge"))
        out = _ok(eng.docker("exec", "onbridge", "nslookup", "svc"))
        assert _ip(eng, "onuser", "joinnet") in out
        _ok(eng.docker("network", "disconnect", "joinnet", "onbridge"))
        assert eng.docker("exec", "onbridge", "nslookup", "svc").returncode != 0
    finally:
        _gone(eng, "onuser", "onbridge")
        eng.docker("network", "rm", "joinnet")


def test_connect_and_disconnect_a_stopped_container(net_engine: Engine) -> None:
    eng = net_engine
    try:
        _ok(eng.docker("network", "create", "--subnet", "10.213.77.0/24", "stopnet"))
        _ok(eng.docker("create", "--name", "later", "busybox", "sleep", "600"))
        _ok(eng.docker("network", "connect", "--alias", "laterals", "--ip", "10.213.77.50", "stopnet", "later"))
        created = json.loads(_ok(eng.docker("inspect", "later")))[0]["NetworkSettings"]["Networks"]
        assert set(created) == {"bridge", "stopnet"}
        assert created["stopnet"]["Aliases"] == ["laterals"] and created["stopnet"]["IPAddress"] == ""
        listed = _ok(eng.docker("ps", "-a", "--filter", "network=stopnet", "--format", "{{.Names}}"))
        assert listed.split() == ["later"]
        # connecting twice is refused; nothing changes
        again = eng.docker("network", "connect", "stopnet", "later")
        assert again.returncode != 0 and b"already exists in network stopnet" in again.stderr
        _ok(eng.docker("start", "later"))
        assert _ip(eng, "later", "stopnet") == "10.213.77.50"
        out = _ok(eng.docker("run", "--rm", "--network", "stopnet", "busybox", "nslookup", "laterals"))
        assert "10.213.77.50" in out
        assert "eth1" in _ok(eng.docker("exec", "later", "ip", "-o", "addr"))
        _ok(eng.docker("stop", "-t", "0", "later"))
        _ok(eng.docker("network", "disconnect", "bridge", "later"))
        _ok(eng.docker("start", "later"))
        nets = json.loads(_ok(eng.docker("inspect", "later")))[0]["NetworkSettings"]["Networks"]
        assert set(nets) == {"stopnet"}
        missing = eng.docker("network", "disconnect", "bridge", "later")
        assert missing.returncode != 0 and b"is not connected to network bridge" in missing.stderr
    finally:
        _gone(eng, "later")
        eng.docker("network", "rm", "stopnet")


def test_port_ranges_publish_all_and_the_wide_bind_warning(net_engine: Engine) -> None:
    eng = net_engine
    p1, p2 = _free_port(), _free_port()
    try:
        run = eng.docker("run", "-d", "--name", "ports", "-p", f"{p1}:80", "-p", f"127.0.0.1:{p2}:81/udp",
                         "-P", "--expose", "90", "busybox", "httpd", "-f", "-p", "80")
        _ok(run)
        assert b"WARNING" in run.stderr and f"{p1}->80/tcp".encode() in run.stderr
        assert b"firewall" in run.stderr and str(p2).encode() not in run.stderr
        lines = _ok(eng.docker("port", "ports")).splitlines()
        assert f"80/tcp -> 0.0.0.0:{p1}" in lines and f"81/udp -> 127.0.0.1:{p2}" in lines
        assert any(re.fullmatch(r"90/tcp -> 0\.0\.0\.0:\d+", ln) for ln in lines), lines
        assert _ok(eng.docker("port", "ports", "81/udp")).strip() == f"127.0.0.1:{p2}"
        # a published port is reachable on 127.0.0.1, and the host port is held
        with socket.create_connection(("127.0.0.1", p1), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert c.recv(64).startswith(b"HTTP/1.")
        with socket.socket() as s, pytest.raises(OSError):
            s.bind(("0.0.0.0", p1))
        # from another container, through the host side (its gateway) and the published port
        other = _ok(eng.docker("run", "--rm", "busybox", "sh", "-c",
                               f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 "
                               f"$(ip route | awk '/default/{{print $3}}') {p1} | head -1"))
        assert other.startswith("HTTP/1."), other
        taken = eng.docker("run", "-d", "--name", "ports2", "-p", f"{p1}:80", "busybox", "true")
        assert taken.returncode == 125
        assert f"Bind for 0.0.0.0:{p1} failed: port is already allocated".encode() in taken.stderr
        # the failed start left no namespace, endpoint or veth behind (only the running one's)
        failed_id = _ok(eng.docker("inspect", "-f", "{{.Id}}", "ports2")).strip()
        time.sleep(0.2)  # teardown of a failed start runs in the background
        assert failed_id not in open("/proc/self/mountinfo").read()
        assert _ok(eng.docker("inspect", "-f", "{{json .NetworkSettings.Networks.bridge.IPAddress}}",
                              "ports2")).strip() == '""'
        assert len(_veths(eng)) == 1
        local = eng.docker("run", "-d", "--name", "ports3", "-p", "127.0.0.1::80", "busybox", "true")
        assert b"WARNING" not in local.stderr
    finally:
        _gone(eng, "ports", "ports2", "ports3")
    with socket.socket() as s:  # released with its container
        s.bind(("0.0.0.0", p1))


def test_network_events_and_stats_network_io(net_engine: Engine) -> None:
    eng = net_engine
    since = str(int(time.time()) - 1)
    try:
        _ok(eng.docker("network", "create", "evnet"))
        _ok(eng.docker("run", "-d", "--name", "evsrv", "--network", "evnet", "busybox", "httpd", "-f", "-p", "80"))
        _ok(eng.docker("run", "--rm", "--network", "evnet", "busybox", "sh", "-c",
                       "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 evsrv 80 >/dev/null; true"))
        stats = json.loads(_ok(eng.docker("stats", "--no-stream", "--format", "{{json .}}", "evsrv")))
        rx, _, tx = stats["NetIO"].partition(" / ")
        assert rx not in ("0B", "") and tx not in ("0B", ""), stats
        eng.docker("rm", "-f", "evsrv")
        _ok(eng.docker("network", "rm", "evnet"))
        until = str(int(time.time()) + 1)
        out = _ok(eng.docker("events", "--since", since, "--until", until, "--filter", "type=network",
                             "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}}"))
        actions = [a for a in out.splitlines() if " evnet " in a]  # earlier tests' within the second
        assert actions[0] == "create evnet bridge" and actions[-1] == "destroy evnet bridge", actions
        assert actions.count("connect evnet bridge") == 2 and actions.count("disconnect evnet bridge") == 2
    finally:
        _gone(eng, "evsrv")
        eng.docker("network", "rm", "evnet")


def test_network_rm_removes_its_bridge_and_rules(net_engine: Engine) -> None:
    eng = net_engine
    nid = _ok(eng.docker("network", "create", "--subnet", "10.213.78.0/24", "--label", "k=v", "rmnet")).strip()
    try:
        bridge = Naming(_instance(eng)).bridge_for(nid)
        assert bridge in _links()
        table = f"dockyard_{_instance(eng)}"
        rules = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True).stdout
        assert "10.213.78.0/24" in rules
        overlap = eng.docker("network", "create", "--subnet", "10.213.78.128/25", "rmnet2")
        assert overlap.returncode != 0 and b"Pool overlaps with other one on this address space" in overlap.stderr
        assert b"rmnet2" not in _ok(eng.docker("network", "ls")).encode()
        _ok(eng.docker("network", "rm", "rmnet"))
        assert bridge not in _links()
        rules = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True).stdout
        assert "10.213.78.0/24" not in rules
    finally:
        eng.docker("network", "rm", "rmnet", "rmnet2")


def test_docker_sdk_networks_ports_connect_and_stats(net_engine: Engine) -> None:
    docker_sdk = pytest.importorskip("docker")
    c = docker_sdk.DockerClient(base_url=net_engine.host)
    made: list = []
    net = None
    try:
        ipam = docker_sdk.types.IPAMConfig(pool_configs=[docker_sdk.types.IPAMPool(
            subnet="10.213.79.0/24", gateway="10.213.79.1", iprange="10.213.79.128/25")])
        net = c.networks.create("sdknet", driver="bridge", ipam=ipam, labels={"x": "y"})
        assert net.attrs["IPAM"]["Config"] == [{"Subnet": "10.213.79.0/24", "Gateway": "10.213.79.1",
                                                "IPRange": "10.213.79.128/25"}]
        srv = c.containers.run("busybox", "httpd -f -p 80", detach=True, name="sdksrv", network="sdknet",
                               ports={"80/tcp": ("127.0.0.1", None)})
        made.append(srv)
        srv.reload()
        assert srv.ports["80/tcp"][0]["HostIp"] == "127.0.0.1" and int(srv.ports["80/tcp"][0]["HostPort"]) > 0
        assert srv.attrs["NetworkSettings"]["Networks"]["sdknet"]["IPAddress"].startswith("10.213.79.1")
        cr = c.containers.create("busybox", "sleep 100", name="sdkcr")
        made.append(cr)
        net.connect(cr, aliases=["cra"], ipv4_address="10.213.79.20")
        cr.start()
        cr.reload()
        assert set(cr.attrs["NetworkSettings"]["Networks"]) == {"bridge", "sdknet"}
        assert cr.attrs["NetworkSettings"]["Networks"]["sdknet"]["IPAddress"] == "10.213.79.20"
        net.reload()
        assert sorted(x.name for x in net.containers) == ["sdkcr", "sdksrv"]
        out = c.containers.run("busybox", ["sh", "-c", "nslookup cra; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "
                                           "nc -w 2 sdksrv 80 | head -1"], network="sdknet", remove=True)
        assert b"10.213.79.20" in out and b"HTTP/1." in out, out
        stats = srv.stats(stream=False)
        assert stats["networks"]["eth0"]["rx_bytes"] > 0 and stats["networks"]["eth0"]["tx_packets"] > 0
        net.disconnect(cr)
        cr.reload()
        assert set(cr.attrs["NetworkSettings"]["Networks"]) == {"bridge"}
    finally:
        for x in made:
            x.remove(force=True)
        if net is not None:
            net.remove()
        c.close()
    assert b"sdknet" not in _ok(net_engine.docker("network", "ls")).encode()
    _gone(net_engine)


def test_daemon_crash_then_container_death_is_reconciled(net_engine: Engine) -> None:
    """kill -9 of the daemon, then the container dies while no daemon runs: the restarted
    daemon frees its port, veth, nft rule and address; the network and a restart still work."""
    eng = net_engine
    port = _free_port()
    table = f"dockyard_{_instance(eng)}"
    try:
        _ok(eng.docker("network", "create", "--subnet", "10.213.80.0/24", "crashnet"))
        _ok(eng.docker("run", "-d", "--name", "crashed", "--network", "crashnet", "-p", f"127.0.0.1:{port}:80",
                       "busybox", "httpd", "-f", "-p", "80"))
        _ok(eng.docker("run", "-d", "--name", "survivor", "--network", "crashnet", "busybox", "sleep", "600"))
        pid = int(_ok(eng.docker("inspect", "-f", "{{.State.Pid}}", "crashed")).strip())
        assert len(_veths(eng)) == 2
        eng.proc.kill()
        eng.proc.wait()
        os.kill(pid, signal.SIGKILL)  # the container's init, started by this test's daemon
        eng.proc = start_daemon(eng.root, eng.sock, eng.args)
        for _ in range(100):
            if "exited" in _ok(eng.docker("inspect", "-f", "{{.State.Status}}", "crashed")):
                break
            time.sleep(0.05)
        for _ in range(100):
            if len(_veths(eng)) == 1:
                break
            time.sleep(0.05)
        assert len(_veths(eng)) == 1
        # the survivor's embedded DNS was reopened by the new daemon
        assert b"10.213.80." in eng.docker("exec", "survivor", "nslookup", "survivor").stdout
        rules = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True).stdout
        assert str(port) not in rules
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        net = json.loads(_ok(eng.docker("network", "inspect", "crashnet")))[0]
        assert [c["Name"] for c in net["Containers"].values()] == ["survivor"]
        assert net["IPAM"]["Config"][0]["Subnet"] == "10.213.80.0/24"
        _ok(eng.docker("start", "crashed"))
        assert _ip(eng, "crashed", "crashnet").startswith("10.213.80.")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert c.recv(16).startswith(b"HTTP/1.")
    finally:
        _gone(eng, "crashed", "survivor")
        eng.docker("network", "rm", "crashnet")


def test_daemon_ip_option_makes_loopback_the_default_bind(busybox_rootfs: Path) -> None:
    """dockyardd --ip 127.0.0.1: ``-p 80`` binds loopback, without the 0.0.0.0 warning;
    --default-network-opt reaches new networks' options."""
    if DOCKER is None:
        pytest.skip("needs the docker CLI")
    root = Path(tempfile.mkdtemp(prefix="dyi-", dir="/tmp"))
    args = ["--default-runtime", "dockyard-runtime", "--network-instance", "i" + secrets.token_hex(1),
            "--ip", "127.0.0.1", "--default-network-opt", "bridge=com.docker.network.driver.mtu=1400"]
    eng = Engine(root, str(root / "d.sock"), start_daemon(root, str(root / "d.sock"), args), "dockyard-runtime", args)
    try:
        _ok(eng.docker("import", str(make_image_tar(busybox_rootfs, root / "busybox.tar")), "busybox:latest"))
        run = eng.docker("run", "-d", "--name", "lo", "-p", "80", "busybox", "httpd", "-f", "-p", "80")
        _ok(run)
        assert b"WARNING" not in run.stderr
        assert re.fullmatch(r"127\.0\.0\.1:\d+", _ok(eng.docker("port", "lo", "80")).strip())
        _ok(eng.docker("network", "create", "optdefault"))
        opts = json.loads(_ok(eng.docker("network", "inspect", "-f", "{{json .Options}}", "optdefault")))
        assert opts["com.docker.network.driver.mtu"] == "1400"
    finally:
        eng.docker("rm", "-f", "lo")
        eng.docker("network", "rm", "optdefault")
        stop_engine(eng)


def test_unknown_network_fails_the_start_with_dockers_message(net_engine: Engine) -> None:
    """As dockerd 28: create succeeds (a 404 there would make the CLI try to pull), the start
    fails with "failed to set up container networking: network X not found"."""
    eng = net_engine
    try:
        run = eng.docker("run", "--name", "nonet", "--network", "nosuchnet", "busybox", "true")
        assert run.returncode == 125
        assert b"failed to set up container networking: network nosuchnet not found" in run.stderr
        assert b"Unable to find image" not in run.stderr
        assert _ok(eng.docker("inspect", "-f", "{{.State.Status}}", "nonet")).strip() == "created"
        # the network appears later: the same container starts on it
        _ok(eng.docker("network", "create", "nosuchnet"))
        _ok(eng.docker("start", "nonet"))
        conn = eng.docker("network", "connect", "nosuchnet2", "nonet")
        assert conn.returncode != 0 and b"network nosuchnet2 not found" in conn.stderr
    finally:
        _gone(eng, "nonet")
        eng.docker("network", "rm", "nosuchnet")


def test_volumes_from_image_volume_in_use_and_rm_v(net_engine: Engine, tmp_path: Path) -> None:
    """VOLUME in an image: an anonymous volume seeded from the image, shared by
    --volumes-from, refused by ``volume rm`` while used (409), listed by ``ps --filter
    volume=`` and ``system df``, removed by ``rm -v``."""
    eng = net_engine
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN mkdir /data && echo seed > /data/s\nVOLUME /data\n")
    _ok(eng.docker("build", "-q", "-t", "withvol", str(tmp_path)))
    try:
        _ok(eng.docker("run", "-d", "--name", "vsrc", "withvol", "sleep", "600"))
        mounts = json.loads(_ok(eng.docker("inspect", "-f", "{{json .Mounts}}", "vsrc")))
        assert len(mounts) == 1 and mounts[0]["Type"] == "volume" and mounts[0]["Destination"] == "/data"
        anon = mounts[0]["Name"]
        assert _ok(eng.docker("run", "--rm", "--volumes-from", "vsrc", "busybox", "cat", "/data/s")) == "seed\n"
        busy = eng.docker("volume", "rm", anon)
        assert busy.returncode != 0 and b"volume is in use" in busy.stderr
        assert _ok(eng.docker("ps", "--filter", f"volume={anon}", "--format", "{{.Names}}")).split() == ["vsrc"]
        assert _ok(eng.docker("ps", "--filter", "volume=/data", "--format", "{{.Names}}")).split() == ["vsrc"]
        assert _ok(eng.docker("ps", "--filter", "name=vsrc", "--format", "{{.LocalVolumes}}")).strip() == "1"
        df = _ok(eng.docker("system", "df", "-v", "--format", "{{json .}}"))
        assert anon in df
        _ok(eng.docker("rm", "-f", "-v", "vsrc"))
        assert anon not in _ok(eng.docker("volume", "ls", "-q"))
    finally:
        eng.docker("rm", "-f", "-v", "vsrc")
        eng.docker("rmi", "withvol")
