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


def _tar(path: Path, members: list[tuple[str, bytes | str]]) -> Path:
    """A tar of (name, data) files; data given as a str is a symlink's target."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            if isinstance(data, str):
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return path


def test_hostile_or_corrupt_archives_are_refused_and_change_nothing(daemon: Any) -> None:
    d = daemon
    files: Path = d.root / "files"
    out = files / "outside"
    out.mkdir()
    before = sorted(d.docker("images", "-q", "--no-trunc").stdout.split())
    blobs_before = sorted(os.listdir(d.data / "image" / "content" / "blobs" / "sha256"))
    cases = {
        "escape.tar": _tar(files / "escape.tar", [("ok", b"x"), (f"../../../../..{out}/pwned", b"x")]),
        "symlink.tar": _tar(files / "symlink.tar", [("link", str(out)), ("link/pwned", b"x")]),
        "garbage.tar": files / "garbage.tar",
    }
    cases["garbage.tar"].write_bytes(b"this is not a tar archive at all" * 40)
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["evil:1"], "Layers": ["../../etc/passwd"]}])
    load_cases = {
        "load-escape.tar": _tar(files / "load-escape.tar", [("manifest.json", manifest.encode()),
                                                            ("c.json", b"{}")]),
        "load-cut.tar": files / "load-cut.tar",
    }
    assert d.docker("save", "-o", str(files / "full.tar"), "busybox").returncode == 0
    load_cases["load-cut.tar"].write_bytes((files / "full.tar").read_bytes()[:600_000])
    for name, path in cases.items():
        r = d.docker("import", str(path), f"x/{name[:-4]}")
        if r.returncode == 0:  # docker imports what a tar reader can make sense of...
            iid = d.docker("image", "inspect", "-f", "{{.Id}}", f"x/{name[:-4]}").stdout.strip()
            assert d.docker("rmi", iid).returncode == 0
        else:
            assert r.stderr.strip(), name  # ... or refuses it with a message
        assert not (out / "pwned").exists() and not list(out.iterdir()), name
    for name, path in load_cases.items():
        r = d.docker("load", "-i", str(path))
        assert r.returncode != 0 and r.stderr.strip(), (name, r.stdout, r.stderr)
    assert sorted(d.docker("images", "-q", "--no-trunc").stdout.split()) == before
    assert sorted(os.listdir(d.data / "image" / "content" / "blobs" / "sha256")) == blobs_before
    assert check(d.data) == []


def test_start_killed_before_its_record_said_running_can_start_again(daemon: Any) -> None:
    d = daemon
    cid = d.docker("create", "--name", "half-start", "busybox", "sleep", "1000").stdout.strip()
    assert d.docker("start", cid).returncode == 0
    pid = d.docker("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip()
    data: Path = d.data

    def crash() -> None:
        # the runtime created (and maybe started) the container, the record still says created
        path = data / "containers" / cid / "config.v2.json"
        rec = json.loads(path.read_text())
        rec["state"].update(status="created", pid=0)
        path.write_text(json.dumps(rec))

    _offline(d, crash)
    assert not (d.exec / "runtime" / cid).exists()  # the runtime's state went at start-up
    assert not Path(f"/proc/{pid}").exists() or b"sleep" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    r = d.docker("start", cid)  # used to fail: "container with given ID already exists"
    assert r.returncode == 0, r.stderr
    assert d.docker("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "running"
    assert d.docker("rm", "-f", cid).returncode == 0
    assert check(data) == []


def test_a_pause_left_by_a_killed_daemon_is_resumed(daemon: Any) -> None:
    d = daemon
    data: Path = d.data
    a = d.docker("run", "-d", "busybox", "sleep", "1000").stdout.strip()  # pause saved: no record
    b = d.docker("run", "-d", "busybox", "sleep", "1000").stdout.strip()  # commit's pause
    c = d.docker("run", "-d", "busybox", "sleep", "1000").stdout.strip()  # the user's pause
    for cid in (a, b, c):
        assert d.docker("pause", cid).returncode == 0

    def crash() -> None:
        path = data / "containers" / a / "config.v2.json"
        rec = json.loads(path.read_text())
        rec["state"]["status"] = "running"  # killed between the runtime's pause and the save
        path.write_text(json.dumps(rec))
        (data / "containers" / b / "commit-paused").touch()  # killed in the middle of a commit

    _offline(d, crash)
    status = {cid: d.docker("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() for cid in (a, b, c)}
    assert status == {a: "running", b: "running", c: "paused"}
    assert not (data / "containers" / b / "commit-paused").exists()
    for cid in (a, b):  # thawed: the exec runs (a frozen one would hang) and rm -f kills at once
        r = d.docker("exec", cid, "true", timeout=20)
        assert r.returncode == 0, r.stderr
    for cid in (a, b, c):
        r = d.docker("rm", "-f", cid, timeout=20)
        assert r.returncode == 0, r.stderr
    assert check(data) == []
