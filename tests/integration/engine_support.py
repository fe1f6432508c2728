"""The integration tests' private dockyardd, importable by name (``from engine_support import
...``): a ``conftest`` cannot be, since tests/ and tests/integration/ both have one.

``start_daemon(root, sock, args)`` starts it (tests/daemon_procs.py), ``Engine`` drives it with
the docker CLI, ``stop_engine`` stops it and deletes its tree (force-removing containers, its
monitor included), ``prune_and_stop`` first removes user networks and volumes too. The
``engine`` fixture (conftest.py) is built from these.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

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
        self.proc = start_daemon(self.root, self.sock, self.args)


def start_daemon(root: Path, sock: str, args: list[str]) -> subprocess.Popen[bytes]:
    assert sock == daemon_procs.sock_of(root)
    return daemon_procs.spawn(root, *args)


def stop_engine(engine: Engine) -> None:
    daemon_procs.stop(engine.root, engine.proc)


def make_image_tar(rootfs: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w") as tf:
        tf.add(rootfs, arcname=".")
    return dest


def prune_and_stop(engine: Engine) -> None:
    """``stop_engine`` after removing every container, user network and volume: user networks
    left by a failed test would keep the daemon from purging its bridges."""
    ids = engine.docker("ps", "-aq").stdout.decode().split()
    if ids:
        engine.docker("rm", "-f", *ids)
    engine.docker("network", "prune", "-f")
    engine.docker("volume", "prune", "-af")
    stop_engine(engine)
