"""A private dockyardd for integration tests: temp socket, data root and exec root.

``engine`` is module-scoped and parametrized over the OCI runtimes installed (ours, runc).
Teardown always runs: force-remove containers, stop the daemon, stop its monitor, unmount and
delete the temp tree, even if a test failed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_support import DOCKER, Engine, make_image_tar, runtimes, start_daemon, stop_engine


@pytest.fixture(scope="module", params=runtimes())
def engine(request: pytest.FixtureRequest, busybox_rootfs: Path) -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if DOCKER is None:
        pytest.skip("no docker CLI")
    root = Path(tempfile.mkdtemp(prefix="dyt-", dir="/tmp"))
    args = ["--default-runtime", request.param]
    eng = Engine(root, str(root / "d.sock"), start_daemon(root, str(root / "d.sock"), args), request.param, args)
    try:
        tar = make_image_tar(busybox_rootfs, root / "busybox.tar")
        out = eng.docker("import", str(tar), "busybox:latest")
        assert out.returncode == 0, out.stderr
        yield eng
    finally:
        stop_engine(eng)
