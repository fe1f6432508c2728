"""More differences from dockerd found by docker-py's own suite (scripts/dockerpy-suite.sh).

A real private dockyardd (the integration conftest's ``engine``) driven through the Docker SDK
for Python: a RUN step's stderr in the classic builder's red, the committed container's id in
image inspect before API 1.45, IPAM auxiliary addresses kept out of the pool, and legacy links
on a user-defined network answered by the embedded DNS for the linking container only.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from dockerpy_support import run as _run
from dockerpy_support import sdk_client

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.root, pytest.mark.parametrize("engine", ["dockyard-runtime"], indirect=True)]


@pytest.fixture
def client(engine: Any) -> Iterator[Any]:
    with sdk_client(engine, "1.41") as c:
        yield c


def test_build_run_stderr_is_red_and_apart_from_stdout(client: Any) -> None:
    dockerfile = b"FROM busybox\nRUN echo to-out; echo to-err >&2; echo out-again\n"
    lines = []
    for chunk in client.build(fileobj=io.BytesIO(dockerfile), decode=True, nocache=True, rm=True):
        assert "error" not in chunk, chunk
        if "aux" in chunk:
            client.images_made.append(chunk["aux"]["ID"])
        lines.append(chunk.get("stream"))
    # dockerd's classic builder: stderr as "\x1b[91m<text>\x1b[0m", stdout plain
    assert "\x1b[91mto-err\n\x1b[0m" in lines
    assert "to-out\n" in lines and "out-again\n" in lines
    assert not any(s and "to-out" in s and "\x1b" in s for s in lines)


def test_image_of_a_commit_names_its_container_before_1_45(client: Any, engine: Any) -> None:
    cid = _run(client, ["touch", "/made"])
    client.wait(cid)
    img = client.commit(cid)["Id"]
    client.images_made.append(img)
    assert client.inspect_image(img)["Container"] == cid
    # from 1.45 the field is gone, as with dockerd 25+
    new = docker.APIClient(base_url=engine.host, version="1.45", timeout=60)
    try:
        assert "Container" not in new.inspect_image(img)
    finally:
        new.close()
    # an imported or built image names none
    assert client.inspect_image("busybox")["Container"] == ""


def test_ipam_auxiliary_addresses_are_kept_and_reserved(client: Any) -> None:
    ipam = docker.types.IPAMConfig(driver="default", pool_configs=[docker.types.IPAMPool(
        subnet="10.219.0.0/29", gateway="10.219.0.1",
        aux_addresses={"a": "10.219.0.2", "b": "10.219.0.3"})])
    nid = client.create_network("dy-aux", ipam=ipam)["Id"]
    client.nets.append(nid)
    cfg = client.inspect_network(nid)["IPAM"]["Config"]
    assert cfg == [{"Subnet": "10.219.0.0/29", "Gateway": "10.219.0.1",
                    "AuxiliaryAddresses": {"a": "10.219.0.2", "b": "10.219.0.3"}}]
    cid = _run(client, ["sleep", "60"], host_config=client.create_host_config(network_mode="dy-aux"))
    ip = client.inspect_container(cid)["NetworkSettings"]["Networks"]["dy-aux"]["IPAddress"]
    assert ip == "10.219.0.4"
    # a static address on an auxiliary one is refused
    with pytest.raises(docker.errors.APIError) as e:
        c2 = client.create_container("busybox", ["true"], host_config=client.create_host_config(
            network_mode="dy-aux"), networking_config=client.create_networking_config(
            {"dy-aux": client.create_endpoint_config(ipv4_address="10.219.0.3")}))["Id"]
        client.made.append(c2)
        client.start(c2)
    assert "Address already in use" in e.value.explanation
    # outside the subnet: a 400 naming the address, and no network left behind
    bad = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet="10.219.1.0/29", aux_addresses={"x": "10.219.2.9"})])
    with pytest.raises(docker.errors.APIError) as e:
        client.create_network("dy-aux-bad", ipam=bad)
    assert e.value.response.status_code == 400
    assert "(x:10.219.2.9) must belong to the master pool" in e.value.explanation
    assert client.networks(names=["dy-aux-bad"]) == []


def _lookup(client: Any, cid: str, name: str) -> tuple[int, str]:
    ex = client.exec_create(cid, ["nslookup", name])
    out = client.exec_start(ex["Id"]).decode(errors="replace")
    return client.exec_inspect(ex["Id"])["ExitCode"], out


def test_links_on_a_user_network_are_dns_aliases_of_the_linker_only(client: Any, engine: Any) -> None:
    nid = client.create_network("dy-links")["Id"]
    client.nets.append(nid)
    on_net = {"host_config": client.create_host_config(network_mode="dy-links")}
    # linked at create, to a container that does not exist yet (docker-py's test_create_with_links)
    linker = _run(client, ["sleep", "60"], networking_config=client.create_networking_config(
        {"dy-links": client.create_endpoint_config(links=[("dy-upstream", "bar")])}), **on_net)
    nets = client.inspect_container(linker)["NetworkSettings"]["Networks"]
    assert nets["dy-links"]["Links"] == ["dy-upstream:bar"]
    up = client.create_container("busybox", ["sleep", "60"], name="dy-upstream", **on_net)["Id"]
    client.made.append(up)
    client.start(up)
    up_ip = client.inspect_container(up)["NetworkSettings"]["Networks"]["dy-links"]["IPAddress"]
    code, out = _lookup(client, linker, "bar")
    assert code == 0 and up_ip in out, out
    # no link variables: on a user network links are names only
    ex = client.exec_create(linker, ["env"])
    assert "BAR_NAME" not in client.exec_start(ex["Id"]).decode()
    # another container on the network does not know the alias
    other = _run(client, ["sleep", "60"], **on_net)
    code, out = _lookup(client, other, "bar")
    assert code != 0, out
    # linked by network connect (docker-py's test_connect_with_links)
    late = client.create_container("busybox", ["sleep", "60"])["Id"]
    client.made.append(late)
    client.start(late)
    client.connect_container_to_network(late, nid, links=[("dy-upstream", "baz")])
    code, out = _lookup(client, late, "baz")
    assert code == 0 and up_ip in out, out
    # the docker CLI's --link with a user --network (it sends the endpoint's Links)
    r = engine.docker("run", "--rm", "--network", "dy-links", "--link", "dy-upstream:qux", "busybox",
                      "nslookup", "qux")
    assert r.returncode == 0 and up_ip in r.stdout.decode(), r.stdout + r.stderr
