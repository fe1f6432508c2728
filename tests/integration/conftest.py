"""A private dockyardd for integration tests: temp socket, data root and exec root.

``engine`` is module-scoped and parametrized over the OCI runtimes installed (ours, runc).
Teardown always runs: force-remove containers, stop the daemon, stop its monitor, unmount and
delete the temp tree, even if a test failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(str(self.root / "exec" / "monitor.sock"))
            s.sendall(json.dumps(msg).encode() + b"\n")
            return json.loads(s.makefile("rb").readline())
        finally:
            s.close()

    def kill9_and_restart(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc = _start(self.root, self.sock, self.args)


def _ping(sock: str) -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(1)
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


def _start(root: Path, sock: str, args: list[str]) -> subprocess.Popen[bytes]:
    log = open(root / "daemon.log", "ab")  # noqa: SIM115 - the daemon holds it
    proc = subprocess.Popen([str(VENV_BIN / "dockyardd"), "--host", f"unix://{sock}", "--data-root",
                             str(root / "data"), "--exec-root", str(root / "exec"), *args],
                            stdout=log, stderr=log)
    log.close()
    for _ in range(300):
        if _ping(sock):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"dockyardd did not start: {(root / 'daemon.log').read_text()[-2000:]}")


def _teardown(engine: Engine) -> None:
    with contextlib.suppress(Exception):
        ids = engine.docker("ps", "-aq", timeout=20).stdout.decode().split()
        if ids:
            engine.docker("rm", "-f", *ids, timeout=60)
    if engine.proc.poll() is None:
        engine.proc.send_signal(signal.SIGTERM)
        try:
            engine.proc.wait(20)
        except subprocess.TimeoutExpired:
            engine.proc.kill()
            engine.proc.wait()
    # The monitor outlives daemons by design; this test's monitor must not outlive the test.
    with contextlib.suppress(Exception):
        engine.monitor_request({"op": "shutdown", "if_idle": False})
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if f" {engine.root}" in line]
    for m in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", m], check=False)
    shutil.rmtree(engine.root, ignore_errors=True)


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
