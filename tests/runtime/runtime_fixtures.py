"""Shared helpers for the runtime tests: bundles made from the busybox rootfs, a CLI runner
that always cleans its containers up, and cgroup/state leak checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

RUNTIME = str(Path(sys.executable).parent / "dockyard-runtime")


def default_config() -> dict:
    from dockyard.runtime.spec import default_spec

    cfg = default_spec()
    cfg["process"]["terminal"] = False
    return cfg


class Runtime:
    """Runs ``dockyard-runtime --root <tmp>``; ``cleanup()`` force-deletes what is left."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, *args: str, check: bool = False, timeout: float = 30,
                 input: bytes | None = None) -> subprocess.CompletedProcess:
        # Files, not pipes: a created container inherits stdout/stderr (as with runc), so a
        # pipe would not see EOF until the container exits.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run([RUNTIME, "--root", str(self.root), *args], stdout=out,
                               stderr=err, timeout=timeout, input=input)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"{args} failed ({p.returncode}): {p.stderr.decode()}")
        return p

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid, check=True).stdout)

    def cleanup(self) -> None:
        out = self("list", "-q").stdout.decode().split()
        for cid in out:
            self("delete", "-f", cid)


class Bundle:
    def __init__(self, path: Path, rootfs_src: Path):
        self.path = path
        self.rootfs = path / "rootfs"
        shutil.copytree(rootfs_src, self.rootfs, symlinks=True)
        self.config = default_config()

    def write(self, **process: object) -> Bundle:
        self.config["process"].update(process)
        (self.path / "config.json").write_text(json.dumps(self.config))
        return self


@pytest.fixture(name="rt")
def rt_fixture(tmp_path: Path):
    r = Runtime(tmp_path / "state")
    yield r
    r.cleanup()


@pytest.fixture(name="bundle")
def bundle_fixture(tmp_path: Path, busybox_rootfs: Path) -> Bundle:
    return Bundle(tmp_path / "bundle", busybox_rootfs)


def cgroup_dirs_for(cid: str) -> list[str]:
    """Existing cgroup directories named ``cid`` under this process's own cgroups."""
    from dockyard.linux import cgroups

    cg = cgroups.resolve(None, cid)
    return [d for d in cg.dirs.values() if os.path.exists(d)]
