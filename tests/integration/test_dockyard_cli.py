"""Our own `dockyard` CLI against a private dockyardd."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root
DOCKYARD = str(Path(sys.executable).parent / "dockyard")


def dy(engine: Any, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([DOCKYARD, "-H", engine.host, *args], input=input, capture_output=True, timeout=60)


def test_run_exit_codes_and_stdin(engine: Any) -> None:
    cp = dy(engine, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (cp.returncode, cp.stdout, cp.stderr) == (3, b"out\n", b"err\n")
    missing = dy(engine, "run", "--rm", "busybox", "/nope")
    assert missing.returncode == 127 and b"no such file" in missing.stderr
    assert dy(engine, "run", "--rm", "-i", "busybox", "cat", input=b"piped\n").stdout == b"piped\n"


def test_detached_lifecycle(engine: Any) -> None:
    cid = dy(engine, "run", "-d", "--name", "dycli", "busybox", "sh", "-c", "echo hi; sleep 100").stdout.strip()
    assert len(cid) == 64
    try:
        assert dy(engine, "exec", "dycli", "sh", "-c", "echo ex; exit 4").returncode == 4
        assert b"dycli" in dy(engine, "ps", "--format", "{{.Names}}").stdout
        for _ in range(50):
            if dy(engine, "logs", "dycli").stdout == b"hi\n":
                break
        assert dy(engine, "logs", "dycli").stdout == b"hi\n"
        assert dy(engine, "stop", "-t", "1", "dycli").returncode == 0
    finally:
        dy(engine, "rm", "-f", "dycli")
    gone = dy(engine, "inspect", "dycli")
    assert gone.returncode == 1 and b"No such object: dycli" in gone.stderr


def test_images_and_errors(engine: Any) -> None:
    assert b"busybox" in dy(engine, "images").stdout
    bad = subprocess.run([DOCKYARD, "-H", "unix:///nonexistent.sock", "ps"], capture_output=True, timeout=30)
    assert bad.returncode != 0 and b"Is dockyardd running?" in bad.stderr


def test_build_network_volume_verbs(engine: Any, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text('FROM busybox\nRUN echo built > /x\nCMD ["cat","/x"]\n')
    cp = dy(engine, "build", "-t", "clibuilt:1", str(tmp_path))
    assert cp.returncode == 0, cp.stderr
    assert dy(engine, "run", "--rm", "clibuilt:1").stdout == b"built\n"
    assert dy(engine, "rmi", "clibuilt:1").returncode == 0
    assert dy(engine, "network", "create", "clinet").returncode == 0
    assert b"clinet" in dy(engine, "network", "ls").stdout
    assert dy(engine, "network", "rm", "clinet").returncode == 0
    assert dy(engine, "volume", "create", "clivol").stdout == b"clivol\n"
    assert b"clivol" in dy(engine, "volume", "ls").stdout
    assert dy(engine, "volume", "rm", "clivol").returncode == 0
