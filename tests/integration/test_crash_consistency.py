"""Issue 3: a daemon killed at any point restarts with a consistent store.

A bounded run of scripts/crashcheck.py (real dockyardd, real docker CLI, SIGKILL of the daemon
and sometimes of its monitor, part-way through import/load/build/commit too), plus crash states
forged on disk where a random kill rarely lands (a killed ``docker rm``, create, volume create).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dockyard.images.service import ImageService
from dockyard.metadata.check import check

pytestmark = pytest.mark.root

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "crashcheck.py"


def _crashcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crashcheck", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["crashcheck"] = mod
    spec.loader.exec_module(mod)
    return mod


def _needs() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if shutil.which("docker") is None or shutil.which("busybox") is None:
        pytest.skip("needs the docker CLI and busybox")


def test_random_kill_points_leave_a_consistent_store() -> None:
    _needs()
    cc = _crashcheck()
    rep = cc.run(12, seed=20261128, big_mb=6, run_sample=1)
    assert rep.kill_points == 12
    assert rep.problems == [], "\n".join(rep.problems + rep.log)


@pytest.fixture
def daemon() -> Iterator[Any]:
    _needs()
    cc = _crashcheck()
    root = Path(tempfile.mkdtemp(prefix="dycrash-", dir="/tmp"))
    (root / "files").mkdir()
    rootfs = cc.make_rootfs(root / "files" / "rootfs")
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(root / "files" / "bb.tar"), "."], check=True)
    d = cc.Daemon(root)
    try:
        d.start()
        assert d.docker("import", str(root / "files" / "bb.tar"), "busybox:latest").returncode == 0
        yield d
    finally:
        cc._teardown(d, keep=False)


def _offline(d: Any, fn: Callable[[], None]) -> None:
    """Kill the daemon, change its stores as a crash at that point would have, restart."""
    d.kill()
    fn()
    d.start()


def test_rm_killed_after_the_snapshot_went_can_be_retried(daemon: Any) -> None:
    d = daemon
    r = d.docker("create", "--name", "half-rm", "busybox", "true")
    cid = r.stdout.strip()
    data: Path = d.data

    def crash() -> None:
        # rm got as far as removing the rootfs, and marked the record "removing"
        rec = json.loads((data / "containers" / cid / "config.v2.json").read_text())
        rec["state"]["status"] = "removing"
        (data / "containers" / cid / "config.v2.json").write_text(json.dumps(rec))
        svc = ImageService(data / "image")
        try:
            svc.remove_rootfs(cid)
        finally:
            svc.close()

    _offline(d, crash)
    assert "Dead" in d.docker("ps", "-a", "--format", "{{.Status}}").stdout
    r = d.docker("rm", "half-rm")
    assert r.returncode == 0, r.stderr
    assert check(data) == []


def test_create_killed_before_its_record_leaves_nothing(daemon: Any) -> None:
    d = daemon
    cid = d.docker("create", "busybox", "true").stdout.strip()
    data: Path = d.data

    def crash() -> None:
        (data / "containers" / cid / "config.v2.json").unlink()  # the first save never came
        (data / "volumes" / "halfvol" / "_data").mkdir(parents=True)  # nor this volume's record

    _offline(d, crash)
    assert d.docker("ps", "-aq").stdout.split() == []
    assert check(data) == []  # its snapshot, init layer and directory were swept
    r = d.docker("volume", "create", "halfvol")
    assert r.returncode == 0, r.stderr
    assert check(data) == []
