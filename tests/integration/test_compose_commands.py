"""docker-compose 1.29's day-to-day verbs against dockyardd, each checked by what it did.

One daemon for the module (compose_support.compose_engine); each test brings up its own project
and takes it down with ``down -v --rmi local``, asserting nothing of the project is left.

- ``build`` (context, dockerfile, args, target, labels, extra_hosts) with ``image:`` naming the result;
  ``down --rmi local`` removing a built image without an ``image:`` name only;
- ``run --rm`` (exit code passthrough, ``-T`` with stdin, ``-e``, ``--entrypoint``), ``exec``
  with and without a tty, ``logs --tail`` / ``-f``, ``ps``, ``top``, ``port``, ``images``,
  ``config``, ``pause``/``unpause``, ``kill -s``, ``restart``, ``stop``/``start``, ``rm -f``;
- ``up --scale`` (``dyc_web_1..3``, the service name resolving to every replica);
- recreation (``--force-recreate`` and a changed config): compose reads the image's
  ``ContainerConfig`` (the legacy field dockerd 25+ dropped) and passes the old container's
  anonymous volume on by name: its data must survive;
- ``up --abort-on-container-exit --exit-code-from``.
"""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path
from typing import Any

import pytest
from compose_support import (
    COMPOSE,
    assert_project_gone,
    compose,
    compose_engine,
    free_port,
    inspect,
    make_project,
    wait_for,
)

pytestmark = pytest.mark.root
__all__ = ["compose_engine"]  # the fixture, imported for pytest


def _ok(cp: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert cp.returncode == 0, (cp.args, cp.stdout, cp.stderr)
    return cp


def _down(eng: Any, project: Path, name: str = "dyc") -> None:
    _ok(compose(eng, project, "down", "-v", "--rmi", "local", "-t", "1", name=name))
    assert_project_gone(eng, name)


def _on_a_terminal(eng: Any, argv: list[str]) -> tuple[int, bytes]:
    """Run ``argv`` with a pty as its stdin/stdout/stderr; its exit code and all it wrote."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=eng.env(),
                                start_new_session=True)
    finally:
        os.close(slave)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the pty's other side is gone
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    return proc.wait(60), out


BUILD_FILE = """\
version: "3.8"
services:
  app:
    build:
      context: ./ctx
      dockerfile: Dockerfile.custom
      args: {GREETING: hello-compose}
      target: dev
      labels: {built.by: compose}
    image: dyc-app:v1
    command: sh -c 'cat /greeting /stage'
  plain:
    build:
      context: ./plain
      extra_hosts: ["buildhost:10.7.7.7"]
    command: cat /built
"""

DOCKERFILE = """\
FROM busybox:latest AS base
ARG GREETING=default
RUN echo "$GREETING" > /greeting
FROM base AS final
RUN echo final > /stage
FROM base AS dev
RUN echo dev > /stage
"""


def test_build_tags_and_targets_and_down_rmi_local(compose_engine: Any) -> None:
    eng = compose_engine
    project = make_project(eng, "build", BUILD_FILE)
    (project / "ctx").mkdir()
    (project / "ctx" / "Dockerfile.custom").write_text(DOCKERFILE)
    (project / "plain").mkdir()
    (project / "plain" / "Dockerfile").write_text(
        "FROM busybox:latest\nRUN echo plain-built > /built && grep buildhost /etc/hosts >> /built\n")
    try:
        build = _ok(compose(eng, project, "build"))
        assert "Successfully tagged dyc-app:v1" in build.stdout, build.stdout
        img = inspect(eng, "dyc-app:v1")
        assert img["Config"]["Labels"]["built.by"] == "compose"
        assert "dyc_plain:latest" in inspect(eng, "dyc_plain")["RepoTags"]
        # the dev stage (target), with the build arg
        assert _ok(compose(eng, project, "run", "--rm", "app")).stdout.split() == ["hello-compose", "dev"]
        up = _ok(compose(eng, project, "up", "-d"))
        assert "dyc_plain_1" in up.stderr
        # build.extra_hosts: in the RUN step's /etc/hosts
        wait_for(lambda: eng.docker("logs", "dyc_plain_1").stdout == b"plain-built\n10.7.7.7\tbuildhost\n",
                 "plain's output")
        assert inspect(eng, "dyc_app_1")["Image"] == img["Id"]
        images = _ok(compose(eng, project, "images")).stdout
        assert "dyc-app" in images and "dyc_plain" in images
    finally:
        _down(eng, project)
    # --rmi local: the image compose named itself goes, the one the file names stays
    assert eng.docker("image", "inspect", "dyc_plain").returncode != 0
    assert eng.docker("image", "inspect", "dyc-app:v1").returncode == 0
    assert eng.docker("rmi", "dyc-app:v1").returncode == 0


VERBS_FILE = """\
version: "3.8"
services:
  web:
    image: busybox:latest
    command: sh -c 'echo web-start; i=0; while :; do i=$$((i+1)); echo line$$i; sleep 0.2; done'
    ports: ["127.0.0.1:{port}:80"]
  job:
    image: busybox:latest
    entrypoint: ["sh", "-c"]
    command: ["exit 3"]
"""


def _state(eng: Any, name: str) -> dict[str, Any]:
    return inspect(eng, name)["State"]


def test_run_exec_logs_and_lifecycle_verbs(compose_engine: Any) -> None:
    eng = compose_engine
    port = free_port()
    project = make_project(eng, "verbs", VERBS_FILE.format(port=port))
    try:
        _ok(compose(eng, project, "up", "-d", "web"))
        # run --rm: the exit code comes through; nothing of the one-off container is left
        assert compose(eng, project, "run", "--rm", "job").returncode == 3
        run = compose(eng, project, "run", "--rm", "-T", "-e", "FOO=bar", "job", "echo FOO=$FOO; cat; exit 5",
                      input="from-stdin\n")
        assert (run.returncode, run.stdout) == (5, "FOO=bar\nfrom-stdin\n"), run.stderr
        run = _ok(compose(eng, project, "run", "--rm", "-T", "--entrypoint", "echo", "job", "via-entrypoint"))
        assert run.stdout == "via-entrypoint\n"
        assert eng.docker("ps", "-aq", "--filter", "label=com.docker.compose.oneoff=True").stdout == b""

        # exec -T and exec with a tty (docker-compose wants a terminal for that: a pty of ours)
        ex = compose(eng, project, "exec", "-T", "web", "sh", "-c", "echo in-web; exit 4")
        assert (ex.returncode, ex.stdout) == (4, "in-web\n")
        code, seen = _on_a_terminal(eng, [COMPOSE or "", "-p", "dyc", "-f", str(project / "docker-compose.yml"),
                                          "exec", "web", "sh", "-c", "tty; exit 6"])
        assert code == 6 and b"/dev/pts/" in seen, seen

        # logs --tail and -f
        wait_for(lambda: b"line3" in eng.docker("logs", "dyc_web_1").stdout, "web's output")
        logs = _ok(compose(eng, project, "logs", "--no-color", "--tail", "2", "web")).stdout
        assert len([ln for ln in logs.splitlines() if "| line" in ln]) == 2, logs
        assert "web-start" not in logs
        with subprocess.Popen([COMPOSE or "", "-p", "dyc", "-f", str(project / "docker-compose.yml"), "logs",
                               "--no-color", "-f", "--tail", "1", "web"], env=eng.env(), stdout=subprocess.PIPE,
                              text=True) as follow:
            try:
                assert follow.stdout is not None
                seen = [follow.stdout.readline() for _ in range(4)]  # "Attaching to" + 3 lines
            finally:
                follow.terminate()
        numbers = [int(ln.split("line")[1]) for ln in seen if "| line" in ln]
        assert len(numbers) == 3 and numbers == sorted(numbers), seen  # new lines kept coming

        ps = _ok(compose(eng, project, "ps")).stdout
        assert "dyc_web_1" in ps and " Up " in ps and f"127.0.0.1:{port}->80/tcp" in ps
        assert _ok(compose(eng, project, "ps", "--services")).stdout.split() == ["web", "job"]
        assert _ok(compose(eng, project, "ps", "-q")).stdout.strip() == inspect(eng, "dyc_web_1")["Id"]
        top = _ok(compose(eng, project, "top")).stdout
        assert "dyc_web_1" in top and "echo web-start" in top
        assert _ok(compose(eng, project, "port", "web", "80")).stdout.strip() == f"127.0.0.1:{port}"
        assert "busybox" in _ok(compose(eng, project, "images")).stdout
        cfg = _ok(compose(eng, project, "config")).stdout
        assert "command:\n    - exit 3" in cfg and f"- 127.0.0.1:{port}:80/tcp" in cfg, cfg

        _ok(compose(eng, project, "pause", "web"))
        assert _state(eng, "dyc_web_1")["Status"] == "paused"
        assert "Paused" in _ok(compose(eng, project, "ps")).stdout
        _ok(compose(eng, project, "unpause", "web"))
        assert _state(eng, "dyc_web_1")["Status"] == "running"

        started = _state(eng, "dyc_web_1")["StartedAt"]
        _ok(compose(eng, project, "restart", "-t", "1", "web"))
        st = _state(eng, "dyc_web_1")
        assert st["Running"] and st["StartedAt"] != started

        _ok(compose(eng, project, "kill", "-s", "SIGKILL", "web"))
        wait_for(lambda: _state(eng, "dyc_web_1")["Status"] == "exited", "web to be killed")
        assert _state(eng, "dyc_web_1")["ExitCode"] == 137
        _ok(compose(eng, project, "start", "web"))
        assert _state(eng, "dyc_web_1")["Running"]
        _ok(compose(eng, project, "stop", "-t", "1"))
        assert _state(eng, "dyc_web_1")["Status"] == "exited"
        _ok(compose(eng, project, "rm", "-f"))
        assert eng.docker("inspect", "dyc_web_1").returncode != 0
    finally:
        _down(eng, project)


SCALE_FILE = """\
version: "3.8"
services:
  web:
    image: busybox:latest
    command: sleep 600
    stop_signal: SIGKILL
  store:
    image: busybox:latest
    command: sh -c 'test -f /anon/first || echo $$HOSTNAME > /anon/first; exec sleep 600'
    stop_signal: SIGKILL
    environment: {GEN: "1"}
    volumes: ["/anon", "named:/named"]
volumes:
  named: {}
"""


def test_scale_and_recreate_keep_volume_data(compose_engine: Any) -> None:
    eng = compose_engine
    project = make_project(eng, "scale", SCALE_FILE)
    try:
        _ok(compose(eng, project, "up", "-d", "--scale", "web=3"))
        webs = {f"dyc_web_{i}": inspect(eng, f"dyc_web_{i}") for i in (1, 2, 3)}
        ips = {c["NetworkSettings"]["Networks"]["dyc_default"]["IPAddress"] for c in webs.values()}
        assert len(ips) == 3
        look = eng.docker("exec", "dyc_store_1", "nslookup", "web")
        assert look.returncode == 0, look.stderr
        assert {ln.split()[-1] for ln in look.stdout.decode().splitlines()[2:] if ln.startswith("Address")} == ips
        # round robin, as dockerd's resolver: the order changes between answers (all 15 alike: p=3e-7)
        firsts = set()
        for _ in range(15):
            out = eng.docker("exec", "dyc_store_1", "nslookup", "web").stdout.decode().splitlines()[2:]
            firsts.add(next(ln.split()[-1] for ln in out if ln.startswith("Address")))
        assert len(firsts) > 1, firsts

        first = inspect(eng, "dyc_store_1")
        wait_for(lambda: eng.docker("exec", "dyc_store_1", "test", "-f", "/anon/first").returncode == 0,
                 "the store's first write")
        assert eng.docker("exec", "dyc_store_1", "sh", "-c", "echo kept > /named/x").returncode == 0
        host = first["Config"]["Hostname"]

        # --force-recreate: a new container; the anonymous volume's data comes along
        _ok(compose(eng, project, "up", "-d", "--force-recreate", "store"))
        second = inspect(eng, "dyc_store_1")
        assert second["Id"] != first["Id"]
        out = eng.docker("exec", "dyc_store_1", "cat", "/anon/first", "/named/x")
        assert out.stdout.decode().split() == [host, "kept"], out.stderr

        # a changed config recreates too (and scaling down removes the extra replicas)
        (project / "docker-compose.yml").write_text(SCALE_FILE.replace('GEN: "1"', 'GEN: "2"'))
        up = _ok(compose(eng, project, "up", "-d", "--scale", "web=1"))
        assert "Recreating dyc_store_1" in up.stderr, up.stderr
        assert inspect(eng, "dyc_web_1")["Id"] == webs["dyc_web_1"]["Id"]  # up to date: kept
        out = eng.docker("exec", "dyc_store_1", "sh", "-c", "cat /anon/first /named/x; echo $GEN")
        assert out.stdout.decode().split() == [host, "kept", "2"]
        names = eng.docker("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()
        assert sorted(names) == ["dyc_store_1", "dyc_web_1"]
    finally:
        _down(eng, project)


ABORT_FILE = """\
version: "3.8"
services:
  server:
    image: busybox:latest
    command: sleep 600
    stop_signal: SIGKILL
  tester:
    image: busybox:latest
    command: sh -c 'echo testing; sleep 1; exit 7'
"""


def test_up_abort_on_container_exit_passes_the_exit_code(compose_engine: Any) -> None:
    eng = compose_engine
    project = make_project(eng, "abort", ABORT_FILE)
    try:
        up = compose(eng, project, "up", "--no-color", "--abort-on-container-exit", "--exit-code-from", "tester")
        assert up.returncode == 7, (up.stdout, up.stderr)
        assert "testing" in up.stdout
        assert _state(eng, "dyc_server_1")["Status"] == "exited"
        assert _state(eng, "dyc_tester_1")["ExitCode"] == 7
    finally:
        _down(eng, project)

