"""The real docker CLI (and the Docker SDK) against a private dockyardd."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

Engine = Any  # the fixture's type lives in this folder's conftest.py

pytestmark = pytest.mark.root


def out(cp) -> str:  # noqa: ANN001
    return cp.stdout.decode()


def test_run_echo(engine: Engine) -> None:
    cp = engine.docker("run", "--rm", "busybox", "echo", "hello")
    assert cp.returncode == 0, cp.stderr
    assert out(cp) == "hello\n"


def test_exit_codes(engine: Engine) -> None:
    assert engine.docker("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    missing = engine.docker("run", "--rm", "busybox", "/no/such/cmd")
    assert missing.returncode == 127, missing.stderr
    assert b"no such file or directory" in missing.stderr
    not_exec = engine.docker("run", "--rm", "busybox", "/etc/passwd")
    assert not_exec.returncode == 126, not_exec.stderr
    assert engine.docker("run", "--rm", "nosuchimage:1").returncode == 125
    # with a tty the runtime has sent the pty before the exec fails: its error still reaches us
    tty_missing = engine.docker("run", "--rm", "-t", "busybox", "nosuchcmd")
    assert tty_missing.returncode == 127, tty_missing.stderr
    assert b"executable file not found" in tty_missing.stderr
    # --rm containers are gone, even the ones whose start failed
    assert out(engine.docker("ps", "-aq")).split() == []


def test_pid1_stdout_stderr_and_stdin(engine: Engine) -> None:
    assert out(engine.docker("run", "--rm", "busybox", "sh", "-c", "echo $$")) == "1\n"
    cp = engine.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (out(cp), cp.stderr.decode()) == ("out\n", "err\n")
    cp = engine.docker("run", "--rm", "-i", "busybox", "cat", input=b"piped\n" * 1000)
    assert out(cp) == "piped\n" * 1000


def test_detached_logs_exec_ps_stop_rm(engine: Engine) -> None:
    cp = engine.docker("run", "-d", "--name", "web", "busybox", "sh", "-c", "echo started; sleep 300")
    assert cp.returncode == 0, cp.stderr
    cid = out(cp).strip()
    for _ in range(50):
        if "started" in out(engine.docker("logs", "web")):
            break
        time.sleep(0.1)
    assert out(engine.docker("logs", "web")) == "started\n"
    assert out(engine.docker("exec", "web", "echo", "inside")) == "inside\n"
    assert engine.docker("exec", "web", "sh", "-c", "exit 5").returncode == 5
    assert "web" in out(engine.docker("ps", "--format", "{{.Names}}")).split()
    info = json.loads(out(engine.docker("inspect", "web")))[0]
    assert info["Id"] == cid and info["State"]["Running"] and info["State"]["Pid"] > 0
    rm = engine.docker("rm", "web")
    assert rm.returncode != 0 and b"container is running" in rm.stderr
    assert engine.docker("stop", "-t", "1", "web").returncode == 0
    info = json.loads(out(engine.docker("inspect", "web")))[0]
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 137
    assert engine.docker("rm", "web").returncode == 0
    cp = engine.docker("inspect", "--type", "container", "web")
    assert cp.returncode != 0 and b"No such container: web" in cp.stderr


def test_survives_daemon_kill9(engine: Engine) -> None:
    cp = engine.docker("run", "-d", "--name", "survivor", "busybox", "sh", "-c",
                       "trap 'exit 7' TERM; while true; do echo tick; sleep 0.2; done")
    assert cp.returncode == 0, cp.stderr
    short = engine.docker("run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 4")
    assert short.returncode == 0
    engine.kill9_and_restart()
    assert "survivor" in out(engine.docker("ps", "--format", "{{.Names}}")).split()
    assert out(engine.docker("exec", "survivor", "echo", "again")) == "again\n"
    n = out(engine.docker("logs", "survivor")).count("tick")
    time.sleep(0.5)
    assert out(engine.docker("logs", "survivor")).count("tick") > n  # logs still captured
    # "short" exited (or will) while the daemon was away or just back: its code is recorded
    assert out(engine.docker("wait", "short")).strip() == "4"
    assert engine.docker("stop", "-t", "5", "survivor").returncode == 0
    state = json.loads(out(engine.docker("inspect", "survivor")))[0]["State"]
    assert state["ExitCode"] == 7
    assert engine.docker("rm", "survivor", "short").returncode == 0


def test_tty_interactive(engine: Engine) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn("docker", ["run", "--rm", "-it", "busybox", "sh"], env=engine.env(), timeout=20)
    try:
        child.expect(r"# ")
        child.sendline("echo $((40+2)); tty")
        child.expect("42")
        child.expect("/dev/pts/0")
        child.sendline("exit 9")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 9


def test_docker_sdk(engine: Engine) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host)
    try:
        assert client.ping()
        assert client.containers.run("busybox", ["echo", "sdk"], remove=True) == b"sdk\n"
        with pytest.raises(docker.errors.NotFound):
            client.containers.get("nosuch")
        c = client.containers.run("busybox", ["sleep", "30"], detach=True, labels={"k": "v"})
        try:
            assert client.containers.list(filters={"label": "k=v"})[0].id == c.id
            assert client.containers.list(filters={"label": "k=other"}) == []
            code, output = c.exec_run(["sh", "-c", "echo x; exit 2"])
            assert (code, output) == (2, b"x\n")
        finally:
            c.remove(force=True)
        with pytest.raises(docker.errors.ContainerError) as ei:
            client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
        assert ei.value.exit_status == 3
    finally:
        client.close()


def test_api_errors_and_versions(engine: Engine) -> None:
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(engine.sock)

    c = Conn("d")
    c.request("GET", "/v1.51/version")
    r = c.getresponse()
    assert r.status == 400 and b"too new" in r.read()
    c.request("GET", "/v1.24/containers/nosuch/json")
    r = c.getresponse()
    assert r.status == 404
    assert json.loads(r.read()) == {"message": "No such container: nosuch"}
    assert r.getheader("Api-Version") == "1.50" and r.getheader("Ostype") == "linux"
    c.request("HEAD", "/_ping")
    r = c.getresponse()
    r.read()
    assert r.status == 200 and r.getheader("Server", "").startswith("Dockyard/")
    c.close()


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"Image": "busybox", "HostConfig": {"Memory": "abc"}}, 400, b"HostConfig.Memory"),
    ({"Image": "busybox", "Cmd": [1, 2]}, 400, b"Config.Cmd"),
    ({"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}, 400, b"restart policy"),
    # an unknown network fails the start, not the create: test_network_docker_cli.py
    ({"Image": "nosuchimage"}, 404, b"No such image: nosuchimage:latest"),
])
def test_bad_create_bodies_leave_nothing(engine: Engine, body: dict, status: int, text: bytes) -> None:
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(engine.sock)

    before = out(engine.docker("ps", "-aq"))
    c = Conn("d")
    c.request("POST", "/containers/create", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == status and text in r.read()
    c.close()
    assert out(engine.docker("ps", "-aq")) == before
