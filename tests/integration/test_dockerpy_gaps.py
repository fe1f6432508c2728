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

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.root, pytest.mark.parametrize("engine", ["dockyard-runtime"], indirect=True)]


@pytest.fixture
def client(engine: Any) -> Iterator[Any]:
    c = docker.APIClient(base_url=engine.host, version="auto", timeout=60)
    made: list[str] = []
    c.made = made  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        for cid in made:
            try:
                c.remove_container(cid, force=True, v=True)
            except docker.errors.APIError:
                pass
        c.close()


def _run(client: Any, cmd: list[str] | str, **kw: Any) -> str:
    cid: str = client.create_container("busybox", cmd, **kw)["Id"]
    client.made.append(cid)
    client.start(cid)
    return cid


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
