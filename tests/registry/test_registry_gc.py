"""Garbage collection (``dockyard registry gc``) run as a process next to a live registry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from regtest_support import Reg, sha256


def _gc(root: Path, *flags: str) -> str:
    r = subprocess.run([sys.executable, "-m", "dockyard.registry", "gc", "--root", str(root),
                        *flags], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _age_all_blobs(root: Path, seconds: float) -> None:
    past = time.time() - seconds
    for dirpath, _, files in os.walk(root / "blobs"):
        for f in files:
            os.utime(os.path.join(dirpath, f), (past, past))


def test_gc_mark_sweep_grace_and_untagged(reg: Reg) -> None:
    tagged, _ = reg.push_image("app", "v1", layer=b"kept layer")
    untagged, _ = reg.push_image("app", None, layer=b"untagged layer")
    orphan = reg.push_blob("app", b"nobody references me")
    _age_all_blobs(reg.root, 7200)
    # A push in progress: an open session, and a blob it already committed (no manifest yet).
    session = reg.req("POST", "/v2/app/blobs/uploads/").headers["Location"]
    time.sleep(0.05)
    fresh = reg.push_blob("app", b"pushed during gc")

    out = _gc(reg.root, "--grace-period", "0", "--dry-run")
    assert f"would delete blob {orphan}" in out and f"kept young blob {fresh}" in out
    assert reg.req("HEAD", f"/v2/app/blobs/{orphan}").status == 200  # dry run changed nothing

    out = _gc(reg.root, "--grace-period", "0")
    assert f"deleted blob {orphan}" in out
    assert reg.req("HEAD", f"/v2/app/blobs/{orphan}").status == 404
    assert not (reg.root / "repositories/app/_layers/sha256" / orphan.split(":")[1]).exists()
    assert reg.req("HEAD", f"/v2/app/blobs/{fresh}").status == 200  # in-progress push is safe
    assert reg.req("GET", f"/v2/app/blobs/{sha256(b'kept layer')}").body == b"kept layer"
    assert reg.req("GET", f"/v2/app/manifests/{untagged}").status == 200
    assert reg.req("GET", f"/v2/app/blobs/{sha256(b'untagged layer')}").status == 200
    assert reg.req("GET", session).status == 204  # the session survived

    out = _gc(reg.root, "--grace-period", "0", "--delete-untagged")
    assert f"deleted manifest app@{untagged}" in out
    assert reg.req("GET", f"/v2/app/manifests/{untagged}").status == 404
    assert reg.req("GET", f"/v2/app/blobs/{sha256(b'untagged layer')}").status == 404
    r = reg.req("GET", "/v2/app/manifests/v1")
    assert r.status == 200 and r.headers["Docker-Content-Digest"] == tagged
    assert reg.req("GET", f"/v2/app/blobs/{sha256(b'kept layer')}").body == b"kept layer"


def test_gc_default_grace_keeps_recent_blobs(reg: Reg) -> None:
    orphan = reg.push_blob("g", b"recent orphan")
    out = _gc(reg.root)
    assert f"kept young blob {orphan}" in out
    assert reg.req("HEAD", f"/v2/g/blobs/{orphan}").status == 200
