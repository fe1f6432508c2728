"""A private dockyardd for integration tests: temp socket, data root and exec root.

``engine`` is module-scoped and parametrized over the OCI runtimes installed (ours, runc).
Teardown always runs: force-remove containers, stop the daemon, stop its monitor, unmount and
delete the temp tree, even if a test failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import daemon_procs

VENV_BIN = Path(sys.executable).parent
DOCKER = shutil.which("docker")


def runtimes() -> list[str]:
    out = []
    if (VENV_BIN / "dockyard-runtime").exists():
        out.append("dockyard-runtime")
    if shutil.which("runc"):
        out.append("runc")
    return out


@dataclass
class Engine:
    root: Path
    sock: str
    proc: subprocess.Popen[bytes]
    runtime: str
    args: list[str]

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        assert DOCKER is not None
        return subprocess.run([DOCKER, *args], env=self.env(), input=input, capture_output=True,
                              timeout=timeout)

    def monitor_request(self, msg: dict) -> dict:
        return daemon_procs.monitor_request(self.root, msg)

    def kill9_and_restart(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc = _start(self.root, self.sock, self.args)


def _start(root: Path, sock: str, args: list[str]) -> subprocess.Popen[bytes]:
    assert sock == daemon_procs.sock_of(root)
    return daemon_procs.spawn(root, *args)


def _teardown(engine: Engine) -> None:
    daemon_procs.stop(engine.root, engine.proc)


def make_image_tar(rootfs: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w") as tf:
        tf.add(rootfs, arcname=".")
    return dest


@pytest.fixture(scope="module", params=runtimes())
def engine(request: pytest.FixtureRequest, busybox_rootfs: Path) -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if DOCKER is None:
        pytest.skip("no docker CLI")
    root = Path(tempfile.mkdtemp(prefix="dyt-", dir="/tmp"))
    args = ["--default-runtime", request.param]
    eng = Engine(root, str(root / "d.sock"), _start(root, str(root / "d.sock"), args), request.param, args)
    try:
        tar = make_image_tar(busybox_rootfs, root / "busybox.tar")
        out = eng.docker("import", str(tar), "busybox:latest")
        assert out.returncode == 0, out.stderr
        yield eng
    finally:
        _teardown(eng)
