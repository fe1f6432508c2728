"""The network routes through build_app on a temp unix socket: raw HTTP and the real docker CLI.

Everything runs in a fresh network namespace that plays the host (the test's main thread moves
into it, and the server's threads are started from there), with a NetworkManager of its own
instance name; teardown purges it and checks that nothing of ours is left in that namespace.
A ``unshare --net sleep`` process plays a container for the endpoint cases.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from apphelpers import json_caller, serve_engine_app

DOCKER = shutil.which("docker")
pytestmark = pytest.mark.root


def _ours() -> list[str]:
    from dockyard.network import bridge, rules
    from dockyard.network.rtnl import Rtnl

    with Rtnl() as nl:
        return [name for name, _ in bridge.our_links(nl)] + rules.tables_present()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[SimpleNamespace]:
    from ipaddress import IPv4Network

    from dockyard.network import netns
    from dockyard.network.manager import ManagerConfig, NetworkManager

    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        netns.unshare_net()
        from pyroute2 import IPRoute

        with IPRoute() as ipr:  # lo up, as on a host (an empty route table reads as an empty file)
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        cfg = ManagerConfig(instance="va", default_pools=tuple(IPv4Network("10.214.0.0/16").subnets(new_prefix=24)))
        mgr = NetworkManager(tmp_path / "network", cfg)
        mgr.ensure_predefined()
        emitted: list[tuple[Any, ...]] = []
        services = SimpleNamespace(networks=mgr, events=SimpleNamespace(emit=lambda *a: emitted.append(a)),
                                   containers=SimpleNamespace(containers={}), images=None, cfg=None,
                                   daemon_id="test")
        sock = str(tmp_path / "engine.sock")

        def container() -> str:
            mine = os.stat("/proc/thread-self/ns/net").st_ino
            p = subprocess.Popen(["unshare", "--net", "sleep", "300"])
            procs.append(p)
            for _ in range(500):
                try:
                    if os.stat(f"/proc/{p.pid}/ns/net").st_ino != mine:
                        return f"/proc/{p.pid}/ns/net"
                except FileNotFoundError:
                    pass
                time.sleep(0.002)
            raise AssertionError("container namespace did not appear")

        try:
            with serve_engine_app(services, sock):  # stopped before the purge below
                yield SimpleNamespace(sock=sock, mgr=mgr, emitted=emitted, call=json_caller(sock),
                                      root=tmp_path, container=container)
        finally:
            try:
                mgr.purge()
            finally:
                mgr.close()
            for p in procs:
                p.kill()
                p.wait()
            left = _ours()
            for _ in range(400):  # veths of dead namespaces go away asynchronously
                if not left:
                    break
                time.sleep(0.005)
                left = _ours()
            assert left == [], f"left behind: {left}"
    finally:
        netns.setns(saved)
        os.close(saved)


def test_network_routes_shapes_and_errors(engine: SimpleNamespace) -> None:
    call = engine.call
    st, lst = call("GET", "/v1.50/networks")
    assert st == 200 and sorted(n["Name"] for n in lst) == ["bridge", "host", "none"]
    st, made = call("POST", "/networks/create", {
        "Name": "app", "Driver": "bridge", "Labels": {"tier": "web"}, "Options": {"com.docker.network.driver.mtu": "1400"},
        "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.214.77.0/24", "Gateway": "10.214.77.254",
                                                   "IPRange": "10.214.77.128/25"}]}, "Internal": True})
    assert st == 201 and len(made["Id"]) == 64 and made["Warning"] == ""
    assert ("network", "create", made["Id"], {"name": "app", "type": "bridge"}) in engine.emitted
    st, n = call("GET", f"/networks/{made['Id'][:12]}")
    assert st == 200 and n["Name"] == "app" and n["Id"] == made["Id"] and n["Driver"] == "bridge"
    assert n["IPAM"] == {"Driver": "default", "Options": None, "Config": [
        {"Subnet": "10.214.77.0/24", "Gateway": "10.214.77.254", "IPRange": "10.214.77.128/25"}]}
    assert n["Internal"] is True and n["Labels"] == {"tier": "web"} and n["Scope"] == "local"
    assert n["Options"] == {"com.docker.network.driver.mtu": "1400"} and n["Containers"] == {}

    assert call("POST", "/networks/create", {"Name": "app"}) == (409, {"message": "network with name app already exists"})
    st, err = call("POST", "/networks/create", {"Name": "clash", "IPAM": {"Config": [{"Subnet": "10.214.77.0/25"}]}})
    assert st == 409 and "overlaps" in err["message"]
    assert call("POST", "/networks/create", {"Name": ""})[0] == 400
    assert call("POST", "/networks/create", {"Name": "v6", "EnableIPv6": True})[0] == 501
    assert call("GET", "/networks/nope") == (404, {"message": "network nope not found"})
    assert call("DELETE", "/networks/bridge")[0] == 403
    assert call("GET", "/networks?filters=" + json.dumps({"bogus": ["x"]})) == (400, {"message": "invalid filter 'bogus'"})

    flt = json.dumps({"type": ["custom"]})
    assert [x["Name"] for x in call("GET", f"/networks?filters={flt}")[1]] == ["app"]
    flt = json.dumps({"label": ["tier=web"], "driver": ["bridge"]})
    assert [x["Name"] for x in call("GET", f"/networks?filters={flt}")[1]] == ["app"]
    flt = json.dumps({"name": ["^ho"]})
    assert [x["Name"] for x in call("GET", f"/networks?filters={flt}")[1]] == ["host"]

    # an endpoint: inspect shows it, rm is refused with dockerd's 403, dangling/prune skip it
    ep = engine.mgr.connect("app", "c" * 64, engine.container(), name="web")
    st, n = call("GET", "/networks/app")
    assert n["Containers"] == {"c" * 64: {"Name": "web", "EndpointID": ep.id, "MacAddress": ep.mac,
                                          "IPv4Address": f"{ep.ip}/24", "IPv6Address": ""}}
    st, lst = call("GET", "/networks")
    assert all(x["Containers"] == {} for x in lst)
    st, err = call("DELETE", "/networks/app")
    assert (st, err["message"]) == (403, f"error while removing network: network app id {made['Id']} has active endpoints")
    assert call("POST", "/networks/prune")[1] == {"NetworksDeleted": []}
    flt = json.dumps({"dangling": ["true"]})
    assert call("GET", f"/networks?filters={flt}")[1] == []
    st, err = call("POST", "/networks/app/connect", {"Container": "x"})
    assert st == 501
    engine.mgr.disconnect("app", "c" * 64)

    call("POST", "/networks/create", {"Name": "spare", "Labels": {"keep": "1"}})
    assert call("POST", "/networks/prune?filters=" + json.dumps({"label!": ["keep"]}))[1] == {"NetworksDeleted": ["app"]}
    assert call("DELETE", "/networks/spare")[0] == 204
    assert sorted(n["Name"] for n in call("GET", "/networks")[1]) == ["bridge", "host", "none"]


def _docker(sock: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "DOCKER_HOST": f"unix://{sock}", "HOME": str(home),
           "DOCKER_CONFIG": str(home / ".docker")}
    return subprocess.run([DOCKER or "docker", *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")
def test_docker_cli_network_commands(engine: SimpleNamespace) -> None:
    d = lambda *a: _docker(engine.sock, engine.root, *a)  # noqa: E731
    r = d("network", "create", "--subnet", "10.214.90.0/24", "--gateway", "10.214.90.1", "--label", "a=b", "accnet")
    assert r.returncode == 0 and len(r.stdout.strip()) == 64, r.stderr
    r = d("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
    assert sorted(r.stdout.split("\n")[:-1]) == ["accnet bridge local", "bridge bridge local",
                                                 "host host local", "none null local"], r.stdout + r.stderr
    r = d("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "accnet")
    assert r.stdout.strip() == "10.214.90.1", r.stderr
    r = d("network", "inspect", "accnet")
    info = json.loads(r.stdout)[0]
    assert info["Labels"] == {"a": "b"} and info["IPAM"]["Config"][0]["Subnet"] == "10.214.90.0/24"
    r = d("network", "create", "accnet")
    assert r.returncode == 1 and "network with name accnet already exists" in r.stderr
    r = d("network", "ls", "-q", "--filter", "label=a=b")
    assert len(r.stdout.split()) == 1
    r = d("network", "rm", "bridge")
    assert r.returncode == 1 and "pre-defined network and cannot be removed" in r.stderr
    r = d("network", "rm", "accnet")
    assert r.returncode == 0 and r.stdout.strip() == "accnet", r.stderr
    r = d("network", "inspect", "accnet")
    assert r.returncode == 1 and "network accnet not found" in r.stderr
    d("network", "create", "tmpnet")
    r = d("network", "prune", "-f")
    assert r.returncode == 0 and "tmpnet" in r.stdout, r.stdout + r.stderr
    assert sorted(d("network", "ls", "--format", "{{.Name}}").stdout.split()) == ["bridge", "host", "none"]


def test_docker_sdk_networks(engine: SimpleNamespace) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{engine.sock}", version="1.50")
    try:
        pool = docker.types.IPAMPool(subnet="10.214.60.0/24", gateway="10.214.60.1")
        n = client.networks.create("sdknet", driver="bridge", ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                                   labels={"k": "v"})
        assert n.name == "sdknet"
        got = client.networks.get(n.id)
        assert got.attrs["IPAM"]["Config"] == [{"Subnet": "10.214.60.0/24", "Gateway": "10.214.60.1"}]
        assert [x.name for x in client.networks.list(names=["sdknet"])] == ["sdknet"]
        with pytest.raises(docker.errors.APIError) as e:
            client.networks.create("sdknet")
        assert e.value.status_code == 409
        with pytest.raises(docker.errors.NotFound):
            client.networks.get("missing")
        got.remove()
        assert sorted(x.name for x in client.networks.list()) == ["bridge", "host", "none"]
    finally:
        client.close()


@pytest.mark.parametrize(("body", "status"), [
    ({"Name": "n1", "IPAM": {"Config": [{"Subnet": "not-a-subnet"}]}}, 400),
    ({"Name": "n1", "IPAM": {"Config": [{"Subnet": "10.214.5.0/24", "Gateway": "10.99.0.1"}]}}, 400),
    ({"Name": "n1", "IPAM": {"Config": [{"Subnet": "10.214.5.0/24", "IPRange": "10.215.0.0/25"}]}}, 400),
    ({"Name": "n1", "IPAM": {"Config": [{"Gateway": "10.214.5.1"}]}}, 400),
    ({"Name": "n1", "Options": {"com.docker.network.driver.mtu": "abc"}}, 400),
    ({"Name": "n1", "Labels": ["x"]}, 400),
    ({"Name": "a/b"}, 400),
    ({"Name": "n1", "Driver": "overlay"}, 404),
    ({"Name": "n1", "Driver": "host"}, 403),
    ({"Name": "n1", "IPAM": {"Driver": "other"}}, 501),
    ({"Name": "n1", "IPAM": {"Config": [{"Subnet": "10.214.5.0/24"}, {"Subnet": "10.214.6.0/24"}]}}, 501),
])
def test_bad_network_create_leaves_nothing(engine: SimpleNamespace, body: dict[str, Any], status: int) -> None:
    st, err = engine.call("POST", "/networks/create", body)
    assert st == status and err["message"], err
    assert sorted(n["Name"] for n in engine.call("GET", "/networks")[1]) == ["bridge", "host", "none"]
    assert [x for x in _ours() if x.startswith("dyva-") and x != "dyva-default"] == []
