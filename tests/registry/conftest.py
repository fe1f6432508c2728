"""Fixtures for registry tests: a real ``dockyard registry serve`` subprocess on loopback.

``registry_factory(*flags)`` starts a server on 127.0.0.1 with an ephemeral port (the server
prints the bound address), waits for ``/v2/`` and returns a ``Reg`` handle. Every process
started is terminated by its PID at teardown; storage lives under pytest's tmp_path.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from regtest_support import Reg

import registry_procs


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []
    counter = [0]

    def start(*flags: str, root: Path | None = None) -> Reg:
        counter[0] += 1
        root = root or tmp_path / f"reg{counter[0]}"
        p, line = registry_procs.spawn(root, tmp_path / f"reg{counter[0]}.log", *flags)
        procs.append(p)
        url = line.rsplit(" ", 1)[1]
        return Reg(url, root, p.pid)

    yield start
    registry_procs.stop(procs)


@pytest.fixture
def reg(registry_factory: Any) -> Reg:
    """A registry without authentication."""
    return registry_factory()
