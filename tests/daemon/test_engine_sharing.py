"""Unit tests of ``daemon.sharing`` (container:<x> modes) and of the namespaces it puts in the spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockyard import errors
from dockyard.daemon import oci_spec, sharing
from dockyard.daemon.record import ContainerRecord
from dockyard.daemon.state import Status


def rec(cid: str, name: str, status: Status = Status.RUNNING, pid: int = 42, **hc: Any) -> ContainerRecord:
    r = ContainerRecord(id=cid * 64, name=name, created="", image="busybox", image_id="x", config={},
                        host_config=dict(hc), path="sh", args=[], runtime="runc")
    r.state.status = status
    r.state.pid = pid if status in (Status.RUNNING, Status.PAUSED) else 0
    return r


def finder(*recs: ContainerRecord) -> Any:
    def find(ref: str) -> ContainerRecord | None:
        return next((r for r in recs if r.name == ref or r.id.startswith(ref)), None)
    return find


def test_conflicting_options_are_refused_in_moby_order() -> None:
    hc = {"NetworkMode": "container:web", "Dns": ["1.1.1.1"], "PortBindings": {"80/tcp": [{}]}}
    with pytest.raises(errors.InvalidArgument, match="^conflicting options: dns and the network mode$"):
        sharing.validate_create({}, dict(hc))
    with pytest.raises(errors.InvalidArgument, match="hostname and the network mode"):
        sharing.validate_create({"Hostname": "x"}, dict(hc))
    body = {"NetworkingConfig": {"EndpointsConfig": {"container:web": {"MacAddress": "02:42:ac:11:00:09"}}}}
    with pytest.raises(errors.InvalidArgument, match="mac-address and the network mode"):
        sharing.validate_create(body, {"NetworkMode": "container:web"})
    with pytest.raises(errors.InvalidArgument, match="invalid container format"):
        sharing.validate_create({}, {"NetworkMode": "container:"})
    with pytest.raises(errors.InvalidArgument, match="invalid IPC mode: bogus"):
        sharing.validate_create({}, {"IpcMode": "bogus"})
    ok = {"NetworkMode": "container:web"}
    sharing.validate_create({"Hostname": "", "ExposedPorts": {}}, ok)
    assert ok["IpcMode"] == "private"
    sharing.validate_create({"Hostname": "x", "ExposedPorts": {"80/tcp": {}}}, {"NetworkMode": "bridge"})


def test_donor_names_resolve_to_ids_and_must_run() -> None:
    web = rec("a", "web")
    hc = {"NetworkMode": "container:web", "PidMode": "container:nope"}
    sharing.resolve_donors(hc, finder(web))
    assert hc == {"NetworkMode": f"container:{web.id}", "PidMode": "container:nope"}
    joiner = rec("b", "side", Status.CREATED, NetworkMode=f"container:{web.id}")
    assert sharing.donor(joiner, "network", finder(web, joiner)) is web
    assert sharing.ns_path(web, "network") == "/proc/42/ns/net"
    web.state.status, web.state.pid = Status.EXITED, 0
    with pytest.raises(errors.Conflict, match="non running container: container web is exited"):
        sharing.donor(joiner, "network", finder(web, joiner))
    with pytest.raises(errors.Internal, match="No such container: ghost"):
        sharing.donor(rec("c", "x", NetworkMode="container:ghost"), "network", finder(web))
    with pytest.raises(errors.Internal, match="cannot join own network namespace"):
        sharing.donor(rec("b", "side", NetworkMode="container:side"), "network", finder(rec("b", "side")))


def test_joiners_follow_chains() -> None:
    a = rec("a", "aa")
    b = rec("b", "bb", NetworkMode=f"container:{a.id}")
    c = rec("c", "cc", NetworkMode="container:bb")
    stopped = rec("d", "dd", Status.EXITED, NetworkMode="container:aa")
    other = rec("e", "ee", NetworkMode="bridge")
    find = finder(a, b, c, stopped, other)
    assert [j.name for j in sharing.joiners(a, [a, b, c, stopped, other], find)] == ["bb", "cc"]
    assert sharing.joiners(other, [a, b, c, other], find) == []
    cyc = rec("f", "ff", NetworkMode="container:gg")
    g = rec("g", "gg", NetworkMode="container:ff")
    assert sharing.network_root(cyc, finder(cyc, g)) in (cyc, g)  # ends, whatever the loop


def test_spec_joins_or_skips_namespaces(tmp_path: Path) -> None:
    inp = oci_spec.SpecInputs(cid="c" * 64, config={"Cmd": ["sh"]}, host_config={}, rootfs=tmp_path,
                              hostname_path=tmp_path / "h", hosts_path=tmp_path / "hs",
                              resolv_path=tmp_path / "r", cgroups_path="x", netns="/proc/7/ns/net",
                              join=(("ipc", "host"), ("pid", "/proc/7/ns/pid")))
    nss = oci_spec.build_spec(inp)["linux"]["namespaces"]
    assert {"type": "pid", "path": "/proc/7/ns/pid"} in nss
    assert {"type": "network", "path": "/proc/7/ns/net"} in nss
    assert not any(n["type"] == "ipc" for n in nss)
