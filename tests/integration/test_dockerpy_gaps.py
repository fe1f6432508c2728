"""Differences from dockerd that docker-py's own integration suite found (scripts/dockerpy-suite.sh).

Each test drives a real private dockyardd (the integration conftest's ``engine``, our runtime
only) through the Docker SDK for Python, the way docker-py's suite does, and checks what dockerd
answers: a non-swarm node's 503s, a kill that returns once the container is stopped, an exec's
terminal decided at create time (not by the start's Tty), ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dockerpy_support import run as _run
from dockerpy_support import sdk_client

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.root, pytest.mark.parametrize("engine", ["dockyard-runtime"], indirect=True)]


@pytest.fixture
def client(engine: Any) -> Iterator[Any]:
    with sdk_client(engine, "auto") as c:
        yield c


def test_swarm_routes_answer_as_a_node_outside_a_swarm(client: Any) -> None:
    # docker-py's leave_swarm(force=True) takes dockerd's 503 as "nothing to leave" (was 404: raised)
    assert client.leave_swarm(force=True) is True
    with pytest.raises(docker.errors.APIError) as e:
        client.leave_swarm()
    assert e.value.response.status_code == 503
    assert "not part of a swarm" in e.value.explanation
    for call in (client.inspect_swarm, client.services, client.nodes, client.tasks, client.secrets,
                 client.configs):
        with pytest.raises(docker.errors.APIError) as e:
            call()
        assert e.value.response.status_code == 503, call
        assert "not a swarm manager" in e.value.explanation
    with pytest.raises(docker.errors.APIError) as e:
        client.init_swarm(advertise_addr="127.0.0.1")
    assert e.value.response.status_code == 501


def test_kill_returns_once_the_container_is_stopped(client: Any) -> None:
    cid = _run(client, ["sleep", "9999"])
    client.kill(cid)
    state = client.inspect_container(cid)["State"]
    assert state["Running"] is False and state["Status"] == "exited"
    assert state["ExitCode"] == 137
    client.remove_container(cid)  # no force needed: it is stopped
    client.made.remove(cid)
    # another signal does not wait: the container goes on running
    cid = _run(client, ["sleep", "9999"])
    client.kill(cid, signal="SIGWINCH")
    assert client.inspect_container(cid)["State"]["Running"] is True


def test_exec_terminal_is_decided_at_create(client: Any) -> None:
    cid = _run(client, "cat", stdin_open=True)
    cmd = ["sh", "-c", "echo hello out; echo hello err >&2"]
    # created with a tty, started without: the process has a terminal (CRLF, stderr merged into
    # it) and the stream is multiplexed, as with dockerd
    eid = client.exec_create(cid, cmd, tty=True)["Id"]
    assert client.exec_start(eid, demux=True) == (b"hello out\r\nhello err\r\n", None)
    # created without: no terminal, even if the start says Tty
    eid = client.exec_create(cid, cmd)["Id"]
    out = client.exec_start(eid, tty=True)
    assert b"\r" not in out and sorted(out.splitlines()) == [b"hello err", b"hello out"]


def test_bare_env_name_is_kept_in_config_and_unset_in_the_process(client: Any) -> None:
    cid = _run(client, ["env"], environment={"Foo": None, "Other": "one", "Blank": ""})
    env = client.inspect_container(cid)["Config"]["Env"]
    assert "Foo" in env and "Other=one" in env and "Blank=" in env
    assert client.wait(cid)["StatusCode"] == 0
    lines = client.logs(cid).decode().splitlines()
    assert "Other=one" in lines and "Blank=" in lines
    assert not any(x == "Foo" or x.startswith("Foo=") for x in lines)


def _tar(name: str, data: bytes) -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _untar(stream: Any, name: str) -> bytes:
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


def test_archive_sees_volumes_of_stopped_and_running_containers(client: Any, engine: Any) -> None:
    # stopped: its snapshot has no /vol1 content; the anonymous volume has
    cid = _run(client, ["sh", "-c", "echo -n written > /vol1/data.txt"], volumes=["/vol1"])
    assert client.wait(cid)["StatusCode"] == 0
    strm, stat = client.get_archive(cid, "/vol1/data.txt")
    assert stat["name"] == "data.txt" and stat["size"] == 7
    assert _untar(strm, "data.txt") == b"written"
    assert client.put_archive(cid, "/vol1", _tar("put.txt", b"abc"))
    # running: the volume is in the container's mount namespace only
    run = _run(client, ["sleep", "60"], volumes=["/vol2"])
    assert client.put_archive(run, "/vol2", _tar("new.txt", b"xyz"))
    out = client.exec_start(client.exec_create(run, ["cat", "/vol2/new.txt"]))
    assert out == b"xyz"
    assert client.get_archive(run, "/vol2/new.txt")[1]["size"] == 3
    # what was put into the stopped container's volume is what it sees when it runs again
    vol = client.inspect_container(cid)["Mounts"][0]["Source"]
    assert open(f"{vol}/put.txt", "rb").read() == b"abc"
    # nothing stays mounted
    with open("/proc/mounts") as f:
        assert not any("/cp-" in line for line in f)


def test_unknown_log_driver_is_refused_at_create(client: Any) -> None:
    before = len(client.containers(all=True))
    with pytest.raises(docker.errors.APIError) as e:
        client.create_container("busybox", "true", host_config=client.create_host_config(
            log_config=docker.types.LogConfig(type="asdf", config={})))
    assert e.value.response.status_code == 400
    assert "logger: no log driver named 'asdf' is registered" in e.value.explanation
    assert len(client.containers(all=True)) == before  # nothing left behind
    cid = client.create_container("busybox", "true", host_config=client.create_host_config(
        log_config=docker.types.LogConfig(type="none", config={})))["Id"]
    client.made.append(cid)
    assert client.inspect_container(cid)["HostConfig"]["LogConfig"]["Type"] == "none"


def test_remove_legacy_link(client: Any) -> None:
    one = _run(client, "cat", stdin_open=True)
    one_name = client.inspect_container(one)["Name"][1:]
    two = _run(client, "cat", stdin_open=True, host_config=client.create_host_config(links={one_name: "mylink"}))
    two_name = client.inspect_container(two)["Name"][1:]
    assert client.inspect_container(two)["HostConfig"]["Links"]
    client.remove_container(f"{two_name}/mylink", link=True)
    assert not client.inspect_container(two)["HostConfig"]["Links"]
    assert client.inspect_container(two)["State"]["Running"] is True  # the link went, not the container
    with pytest.raises(docker.errors.NotFound):
        client.remove_container(f"{two_name}/mylink", link=True)
    with pytest.raises(docker.errors.NotFound):  # without link=1 it names a container
        client.remove_container(f"{two_name}/other")


def test_image_config_has_onbuild_before_api_1_50(engine: Any) -> None:
    old = docker.APIClient(base_url=engine.host, version="1.41")
    new = docker.APIClient(base_url=engine.host, version="1.50")
    try:
        cfg = old.inspect_image("busybox")["Config"]
        assert "OnBuild" in cfg and not cfg["OnBuild"]
        assert "OnBuild" not in new.inspect_image("busybox")["Config"]  # omitempty from 1.50
    finally:
        old.close()
        new.close()


def test_exec_detach_keys_from_docker_py_config(client: Any) -> None:
    cid = _run(client, "cat", stdin_open=True)
    client._general_configs["detachKeys"] = "ctrl-p"  # docker-py sends it as "detachKeys"
    eid = client.exec_create(cid, "cat", stdin=True, tty=True, stdout=True)["Id"]
    assert client.exec_inspect(eid)["DetachKeys"] == "ctrl-p"
    sock = client.exec_start(eid, tty=True, socket=True)
    raw = sock._sock
    try:
        raw.settimeout(20)
        raw.sendall(b"\x10")  # ctrl-p: the daemon ends the stream
        data = b""
        while chunk := raw.recv(4096):
            data += chunk
        assert b"\x10" not in data
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        pytest.fail("the detach keys did not end the stream")
    finally:
        sock.close()
    assert client.exec_inspect(eid)["Running"] is True  # detached from, not stopped


def test_exec_that_cannot_start_exits_126(client: Any) -> None:
    cid = _run(client, ["sleep", "60"])
    for cmd in (["docker", "ps"], ["/etc/passwd"]):  # not found; not executable
        eid = client.exec_create(cid, cmd)["Id"]
        client.exec_start(eid)
        assert client.exec_inspect(eid)["ExitCode"] == 126, cmd


def test_legacy_links_give_env_and_hosts_on_the_default_bridge(client: Any) -> None:
    target = _run(client, "cat", stdin_open=True, environment={"FOO": "1"}, ports=[5432])
    tname = client.inspect_container(target)["Name"][1:]
    ip = client.inspect_container(target)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    web = _run(client, ["sh", "-c", "env; cat /etc/hosts"],
               host_config=client.create_host_config(links={tname: "my-db"}, network_mode="bridge"))
    assert client.wait(web)["StatusCode"] == 0
    wname = client.inspect_container(web)["Name"][1:]
    out = client.logs(web).decode().splitlines()
    assert f"MY_DB_NAME=/{wname}/my-db" in out and "MY_DB_ENV_FOO=1" in out
    assert f"MY_DB_PORT=tcp://{ip}:5432" in out and f"MY_DB_PORT_5432_TCP_ADDR={ip}" in out
    assert not any(x.startswith("MY_DB_ENV_PATH=") for x in out)
    assert f"{ip}\tmy-db {target[:12]} {tname}" in out
    # a link to a stopped container refuses the start, as dockerd does
    client.stop(target, timeout=0)
    with pytest.raises(docker.errors.APIError) as e:
        client.start(web)
    assert e.value.response.status_code == 409 and "Cannot link to a non running container" in e.value.explanation
    assert client.inspect_container(web)["State"]["Running"] is False


def test_failed_load_is_reported_in_the_stream(client: Any, engine: Any) -> None:
    sdk = docker.DockerClient(base_url=engine.host, version="auto")
    try:
        with pytest.raises(docker.errors.ImageLoadError):
            sdk.images.load(b"abc")
    finally:
        sdk.close()
    res = engine.docker("load", input=b"abc")  # the docker CLI prints it and fails
    assert res.returncode == 1 and b"invalid archive" in res.stderr, res


def test_endpoint_links_and_driver_opts_are_shown_back(client: Any) -> None:
    cid = client.create_container("busybox", "true", host_config=client.create_host_config(network_mode="bridge"),
                                  networking_config=client.create_networking_config({
                                      "bridge": client.create_endpoint_config(
                                          driver_opt={"com.docker-py.setting": "on"}, links=[("up", "bar")])}))["Id"]
    client.made.append(cid)
    ep = client.inspect_container(cid)["NetworkSettings"]["Networks"]["bridge"]
    assert ep["DriverOpts"] == {"com.docker-py.setting": "on"} and ep["Links"] == ["up:bar"]


@pytest.mark.parametrize("verb", ["ADD", "COPY"])
def test_dockerignore_exception_inside_an_excluded_directory(client: Any, tmp_path: Any, verb: str) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\n{verb} . /test\n")
    (tmp_path / ".dockerignore").write_text("ignored\nDockerfile\n.dockerignore\n!ignored/subdir/keep\n")
    (tmp_path / "ignored" / "subdir").mkdir(parents=True)
    for f in ("top", "ignored/subdir/keep", "ignored/subdir/drop", "ignored/drop2"):
        (tmp_path / f).write_text("x")
    tag = f"dockerpy-ignore-{verb.lower()}"
    for chunk in client.build(path=str(tmp_path), tag=tag, decode=True, nocache=True):
        assert "error" not in chunk, chunk
    cid = client.create_container(tag, ["find", "/test", "-type", "f"])["Id"]
    client.made.append(cid)
    client.start(cid)
    assert client.wait(cid)["StatusCode"] == 0
    assert sorted(client.logs(cid).decode().split()) == ["/test/ignored/subdir/keep", "/test/top"]
    client.remove_container(cid)
    client.made.remove(cid)
    client.remove_image(tag)


def test_cache_from_images_that_do_not_exist_use_no_cache(client: Any) -> None:
    import io
    script = b"FROM busybox\nENV FOO=bar\nRUN touch baz\n"

    def cached(**kw: Any) -> int:
        out = client.build(fileobj=io.BytesIO(script), decode=True, **kw)
        return sum("Using cache" in c.get("stream", "") for c in out)

    cached(tag="dockerpy-cache1")
    try:
        assert cached(cache_from=["dockerpy-cache1"]) == 2
        assert cached(cache_from=["dockerpy-nosuchtag"]) == 0
        assert cached() == 2
    finally:
        client.remove_image("dockerpy-cache1")
