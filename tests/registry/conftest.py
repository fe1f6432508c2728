"""Fixtures for registry tests: a real ``dockyard registry serve`` subprocess on loopback.

``registry_factory(*flags)`` starts a server on 127.0.0.1 with an ephemeral port (the server
prints the bound address), waits for ``/v2/`` and returns a ``Reg`` handle. Every process
started is terminated by its PID at teardown; storage lives under pytest's tmp_path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from regtest_support import Reg


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []
    counter = [0]

    def start(*flags: str, root: Path | None = None) -> Reg:
        counter[0] += 1
        root = root or tmp_path / f"reg{counter[0]}"
        cmd = [sys.executable, "-m", "dockyard.registry", "serve", "--addr", "127.0.0.1:0",
               "--root", str(root), *flags]
        # stderr (the access log) goes to a file: an unread pipe would fill and stall the server.
        log = tmp_path / f"reg{counter[0]}.log"
        with open(log, "w") as err:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        procs.append(p)
        assert p.stdout is not None
        line = p.stdout.readline()
        if "listening on" not in line:
            p.wait(timeout=10)
            raise AssertionError(f"registry did not start: {line} {log.read_text()}")
        url = line.strip().rsplit(" ", 1)[1]
        return Reg(url, root, p.pid)

    yield start
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        if p.stdout is not None:
            p.stdout.close()


@pytest.fixture
def reg(registry_factory: Any) -> Reg:
    """A registry without authentication."""
    return registry_factory()
