"""The volume routes through build_app on a temp unix socket: raw HTTP and the real docker CLI.

The services object carries only what the routes use (a real VolumeService under tmp_path,
an event recorder, no containers). ``in_use`` is a dict the test fills to play containers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from apphelpers import json_caller, serve_engine_app
from dockyard.volumes.service import VolumeService

DOCKER = shutil.which("docker")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[SimpleNamespace]:
    users: dict[str, list[str]] = {}
    vols = VolumeService(tmp_path / "data" / "volumes", in_use=lambda n: users.get(n, []))
    emitted: list[tuple[Any, ...]] = []
    services = SimpleNamespace(volumes=vols, events=SimpleNamespace(emit=lambda *a: emitted.append(a)),
                               containers=SimpleNamespace(containers={}), images=None, cfg=None,
                               daemon_id="test")
    sock = str(tmp_path / "engine.sock")
    with serve_engine_app(services, sock):
        yield SimpleNamespace(sock=sock, vols=vols, users=users, emitted=emitted, call=json_caller(sock),
                              root=tmp_path)


def test_volume_routes_shapes_and_errors(engine: SimpleNamespace) -> None:
    call: Callable[..., tuple[int, Any]] = engine.call
    st, v = call("POST", "/v1.50/volumes/create", {"Name": "data", "Labels": {"team": "a"}, "DriverOpts": {}})
    assert st == 201
    assert v["Name"] == "data" and v["Driver"] == "local" and v["Scope"] == "local"
    assert v["Mountpoint"] == str(engine.root / "data" / "volumes" / "data" / "_data")
    assert v["Labels"] == {"team": "a"} and v["CreatedAt"].endswith("Z")
    assert os.path.isdir(v["Mountpoint"])
    # create is idempotent: same volume, no second event
    assert call("POST", "/volumes/create", {"Name": "data"})[1]["CreatedAt"] == v["CreatedAt"]
    assert [e[:3] for e in engine.emitted] == [("volume", "create", "data")]
    st, anon = call("POST", "/volumes/create", {})
    assert st == 201 and len(anon["Name"]) == 64 and anon["Labels"] == {"com.docker.volume.anonymous": ""}

    st, lst = call("GET", "/volumes")
    assert st == 200 and lst["Warnings"] == [] and {x["Name"] for x in lst["Volumes"]} == {"data", anon["Name"]}
    flt = json.dumps({"label": ["team=a"]})
    assert [x["Name"] for x in call("GET", f"/volumes?filters={flt}")[1]["Volumes"]] == ["data"]
    # "t" is not a hex digit: the anonymous volume's random name can never match
    flt = json.dumps({"name": ["^dat"]})
    assert [x["Name"] for x in call("GET", f"/volumes?filters={flt}")[1]["Volumes"]] == ["data"]
    assert call("GET", "/volumes?filters=" + json.dumps({"bogus": ["1"]})) == (400, {"message": "invalid filter 'bogus'"})

    assert call("GET", "/volumes/nope") == (404, {"message": "get nope: no such volume"})
    assert call("DELETE", "/volumes/nope") == (404, {"message": "get nope: no such volume"})
    assert call("DELETE", "/volumes/nope?force=1")[0] == 204
    st, err = call("POST", "/volumes/create", {"Name": "a/b"})
    assert st == 400 and "includes invalid characters for a local volume name" in err["message"]
    st, err = call("POST", "/volumes/create", {"Name": "x1", "DriverOpts": {"bogus": "1"}})
    assert (st, err["message"]) == (400, 'create x1: invalid option: "bogus"')
    assert not (engine.root / "data" / "volumes" / "x1").exists()
    st, err = call("POST", "/volumes/create", {"Name": "x2", "Driver": "nfsplugin"})
    assert st == 404 and "plugin" in err["message"]

    # in use: docker's 409 text, with the ids; dangling follows the users
    engine.users["data"] = ["c1", "c2"]
    assert call("DELETE", "/volumes/data") == (409, {"message": "remove data: volume is in use - [c1, c2]"})
    dangling = json.dumps({"dangling": ["true"]})
    assert [x["Name"] for x in call("GET", f"/volumes?filters={dangling}")[1]["Volumes"]] == [anon["Name"]]
    engine.users.clear()

    # prune: anonymous only by default, all=true for named ones
    Path(anon["Mountpoint"], "f").write_bytes(b"x" * 100)
    st, rep = call("POST", "/volumes/prune")
    assert st == 200 and rep == {"VolumesDeleted": [anon["Name"]], "SpaceReclaimed": 100}
    st, rep = call("POST", "/volumes/prune?filters=" + json.dumps({"all": ["true"]}))
    assert rep["VolumesDeleted"] == ["data"]
    assert call("GET", "/volumes")[1]["Volumes"] == []
    assert os.listdir(engine.root / "data" / "volumes") == []
    assert ("volume", "prune", "", {"reclaimed": "100"}) in engine.emitted


def test_records_survive_a_restart(tmp_path: Path) -> None:
    a = VolumeService(tmp_path / "v")
    a.create("keep", labels={"k": "v"})
    b = VolumeService(tmp_path / "v")
    assert b.get("keep") == a.get("keep")


def _docker(sock: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "DOCKER_HOST": f"unix://{sock}", "HOME": str(home),
           "DOCKER_CONFIG": str(home / ".docker")}
    return subprocess.run([DOCKER or "docker", *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")
def test_docker_cli_volume_commands(engine: SimpleNamespace) -> None:
    home = engine.root
    d = lambda *a: _docker(engine.sock, home, *a)  # noqa: E731
    r = d("volume", "create", "--label", "app=web", "webdata")
    assert r.returncode == 0 and r.stdout.strip() == "webdata", r.stderr
    r = d("volume", "create", "--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
          "--opt", "o=size=1m", "scratch")
    assert r.returncode == 0, r.stderr
    r = d("volume", "ls", "--format", "{{.Driver}} {{.Name}}")
    assert r.returncode == 0 and r.stdout.split("\n")[:2] == ["local scratch", "local webdata"], r.stdout
    r = d("volume", "ls", "-q", "--filter", "label=app=web")
    assert r.stdout.split() == ["webdata"]
    r = d("volume", "inspect", "webdata")
    info = json.loads(r.stdout)[0]
    assert info["Labels"] == {"app": "web"} and info["Mountpoint"].endswith("/webdata/_data")
    r = d("volume", "inspect", "-f", "{{.Options.type}} {{.Options.o}}", "scratch")
    assert r.stdout.strip() == "tmpfs size=1m"
    r = d("volume", "inspect", "ghost")
    assert r.returncode == 1 and "get ghost: no such volume" in r.stderr
    r = d("volume", "create", "-o", "o=bind", "bad")
    assert r.returncode == 1 and 'missing required option' in r.stderr
    engine.users["webdata"] = ["abc123"]
    r = d("volume", "rm", "webdata")
    assert r.returncode == 1 and "remove webdata: volume is in use - [abc123]" in r.stderr
    engine.users.clear()
    r = d("volume", "rm", "webdata")
    assert r.returncode == 0 and r.stdout.strip() == "webdata"
    engine.vols.create("")  # an anonymous one for prune
    r = d("volume", "prune", "-f")
    assert r.returncode == 0 and "Total reclaimed space" in r.stdout
    r = d("volume", "prune", "-af")
    assert r.returncode == 0, r.stderr  # scratch has options: dockerd's prune leaves it
    assert d("volume", "ls", "-q").stdout.split() == ["scratch"]
    assert d("volume", "rm", "scratch").returncode == 0
    assert d("volume", "ls", "-q").stdout.split() == []


def test_wire_helpers(tmp_path: Path) -> None:
    from dockyard.api.volumes import df_volumes, mount_points
    from dockyard.volumes import spec

    vols = VolumeService(tmp_path / "v", in_use=lambda n: ["c1"] if n == "data" else [])
    plans = vols.prepare(spec.plan_mounts({"Binds": ["data:/d:ro", "/tmp:/t:rshared"],
                                           "Mounts": [{"Type": "tmpfs", "Target": "/m"}], "Tmpfs": {"/run": ""}}), "c1")
    Path(vols.get("data").mountpoint, "f").write_bytes(b"12345")
    assert mount_points(plans, vols) == [
        {"Type": "volume", "Name": "data", "Source": vols.get("data").mountpoint, "Destination": "/d",
         "Driver": "local", "Mode": "ro", "RW": False, "Propagation": ""},
        {"Type": "bind", "Source": "/tmp", "Destination": "/t", "Mode": "rshared", "RW": True, "Propagation": "rshared"},
        {"Type": "tmpfs", "Source": "", "Destination": "/m", "Mode": "", "RW": True, "Propagation": ""},
    ]
    df = df_volumes(vols)
    assert [(d["Name"], d["UsageData"]) for d in df] == [("data", {"Size": 5, "RefCount": 1})]


def test_docker_sdk_volumes(engine: SimpleNamespace) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{engine.sock}", version="1.50")
    try:
        v = client.volumes.create("sdkvol", labels={"x": "1"})
        assert v.name == "sdkvol" and v.attrs["Labels"] == {"x": "1"}
        assert [x.name for x in client.volumes.list(filters={"label": "x=1"})] == ["sdkvol"]
        assert client.volumes.get("sdkvol").attrs["Mountpoint"].endswith("/sdkvol/_data")
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get("nope")
        engine.users["sdkvol"] = ["c1"]
        with pytest.raises(docker.errors.APIError) as e:
            client.volumes.get("sdkvol").remove()
        assert e.value.status_code == 409
        engine.users.clear()
        client.volumes.get("sdkvol").remove()
        assert client.volumes.list() == []
        client.volumes.create()
        assert len(client.volumes.prune()["VolumesDeleted"]) == 1
    finally:
        client.close()


def test_mount_events() -> None:
    from dockyard.api.volumes import mount_events
    from dockyard.volumes.model import MountPlan

    plans = [MountPlan("volume", "/d", "data", True, driver="local"), MountPlan("bind", "/b", "/tmp"),
             MountPlan("tmpfs", "/t")]
    assert mount_events(plans, "c1", "mount") == [
        ("data", {"driver": "local", "container": "c1", "destination": "/d", "read/write": "false",
                  "propagation": ""})]
    assert mount_events(plans, "c1", "unmount") == [("data", {"driver": "local", "container": "c1"})]
