"""What the test_compose* modules share: a private dockyardd with busybox imported, and
docker-compose (Debian's 1.29) run against it.

A module uses it as ``from compose_support import compose_engine, ...``: the fixture is
module-scoped (one daemon per test module). Its teardown removes whatever containers, networks
and volumes a failed test left, then stops the daemon and its monitor and removes its roots.

busybox:latest's rootfs carries ``/var/www/index.html`` = ``compose-ok`` (for httpd tests).
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import DOCKER, Engine, make_image_tar, prune_and_stop, start_daemon

COMPOSE = shutil.which("docker-compose")


@pytest.fixture(scope="module")
def compose_engine(busybox_rootfs: Path) -> Iterator[Any]:
    if DOCKER is None or COMPOSE is None:
        pytest.skip("needs the docker CLI and docker-compose")
    root = Path(tempfile.mkdtemp(prefix="dyc-", dir="/tmp"))
    # an instance name of our own: the bridge, veth and nft names are this daemon's only
    args = ["--default-runtime", "dockyard-runtime", "--network-instance", "c" + secrets.token_hex(1)]
    try:
        eng = Engine(root, str(root / "d.sock"), start_daemon(root, str(root / "d.sock"), args), "dockyard-runtime", args)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        www = root / "rootfs"
        shutil.copytree(busybox_rootfs, www, symlinks=True)
        (www / "var" / "www" / "index.html").write_text("compose-ok\n")
        out = eng.docker("import", str(make_image_tar(www, root / "busybox.tar")), "busybox:latest")
        assert out.returncode == 0, out.stderr
        shutil.rmtree(www)
        yield eng
    finally:
        prune_and_stop(eng)


def compose(eng: Any, project: Path, *args: str, name: str = "dyc", timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``docker-compose -p <name> -f <project>/docker-compose.yml <args>`` in ``project``."""
    assert COMPOSE is not None
    return subprocess.run([COMPOSE, "-p", name, "-f", str(project / "docker-compose.yml"), *args],
                          env=eng.env(), capture_output=True, text=True, timeout=timeout, cwd=project,
                          input=input)


def make_project(eng: Any, name: str, compose_file: str) -> Path:
    project = eng.root / name
    project.mkdir()
    (project / "docker-compose.yml").write_text(compose_file)
    return project


def inspect(eng: Any, *what: str) -> Any:
    out = eng.docker("inspect", *what)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    return data[0] if len(what) == 1 else data


def assert_project_gone(eng: Any, name: str = "dyc") -> None:
    """No container, network or volume of compose project ``name`` is left."""
    label = f"label=com.docker.compose.project={name}"
    assert eng.docker("ps", "-aq", "--filter", label).stdout.strip() == b""
    assert eng.docker("network", "ls", "-q", "--filter", label).stdout.strip() == b""
    assert eng.docker("volume", "ls", "-q", "--filter", label).stdout.strip() == b""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


def nft_ruleset(table: str) -> str:
    return subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True).stdout


def wait_for(fn: Callable[[], bool], what: str, tries: int = 100) -> None:
    for _ in range(tries):
        if fn():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
