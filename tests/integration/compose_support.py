"""What the test_compose* modules share: a private dockyardd with busybox imported, and
docker-compose (Debian's 1.29) run against it.

A module uses it as ``from compose_support import compose_engine, ...``: the fixture is
module-scoped (one daemon per test module). Its teardown removes whatever containers, networks
and volumes a failed test left, then stops the daemon and its monitor and removes its roots.

busybox:latest's rootfs carries ``/var/www/index.html`` = ``compose-ok`` (for httpd tests).
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# the integration conftest's daemon helpers (not importable by module name: two conftests)
_spec = importlib.util.spec_from_file_location("dyc_integration_conftest", Path(__file__).with_name("conftest.py"))
assert _spec is not None and _spec.loader is not None
_ic = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(_ic)
DOCKER, Engine, _start, _teardown, make_image_tar = (_ic.DOCKER, _ic.Engine, _ic._start, _ic._teardown,
                                                     _ic.make_image_tar)

COMPOSE = shutil.which("docker-compose")


@pytest.fixture(scope="module")
def compose_engine(busybox_rootfs: Path) -> Iterator[Any]:
    if DOCKER is None or COMPOSE is None:
        pytest.skip("needs the docker CLI and docker-compose")
    root = Path(tempfile.mkdtemp(prefix="dyc-", dir="/tmp"))
    # an instance name of our own: the bridge, veth and nft names are this daemon's only
    args = ["--default-runtime", "dockyard-runtime", "--network-instance", "c" + secrets.token_hex(1)]
    try:
        eng = Engine(root, str(root / "d.sock"), _start(root, str(root / "d.sock"), args), "dockyard-runtime", args)
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
        # user networks left by a failed test would keep the daemon from purging its bridges
        ids = eng.docker("ps", "-aq").stdout.decode().split()
        if ids:
            eng.docker("rm", "-f", *ids)
        eng.docker("network", "prune", "-f")
        eng.docker("volume", "prune", "-af")
        _teardown(eng)


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
