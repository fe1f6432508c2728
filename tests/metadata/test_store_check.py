"""The data-root checker (metadata/check.py) against a real store, clean and with crash damage."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.images.service import ImageService
from dockyard.metadata.check import check


@pytest.fixture
def store(tmp_path: Path, busybox_rootfs: Path) -> Iterator[tuple[Path, ImageService, str]]:
    tar = tmp_path / "bb.tar"
    subprocess.run(["tar", "-C", str(busybox_rootfs), "-cf", str(tar), "."], check=True)
    data = tmp_path / "data"
    svc = ImageService(data / "image", snapshotter="naive")
    with open(tar, "rb") as f:
        iid = svc.import_tarball(f, repo_tag="busybox:latest")
    try:
        yield data, svc, iid
    finally:
        svc.close()


def _container(data: Path, svc: ImageService, iid: str, cid: str) -> None:
    svc.prepare_rootfs(iid, cid)
    d = data / "containers" / cid
    d.mkdir(parents=True)
    (d / "config.v2.json").write_text(json.dumps({"id": cid, "image_id": iid}))


def kinds(data: Path, **kw: bool) -> set[str]:
    return {p.kind for p in check(data, **kw)}


def test_a_clean_store_with_a_container_passes(store: tuple[Path, ImageService, str]) -> None:
    data, svc, iid = store
    _container(data, svc, iid, "a" * 64)
    assert check(data) == []


def test_an_image_naming_a_missing_blob_or_layer_is_reported(store: tuple[Path, ImageService, str]) -> None:
    data, svc, iid = store
    img = svc.get(iid)
    os.chmod(svc.content.path(img.layer_blobs[0].digest), 0o644)
    svc.content.delete(img.layer_blobs[0].digest)
    svc.snapshots.remove(img.layers[-1])
    got = kinds(data)
    assert {"missing-blob", "missing-layer"} <= got


def test_crash_leftovers_are_reported(store: tuple[Path, ImageService, str]) -> None:
    data, svc, iid = store
    svc.content.put(b"unreferenced")  # a blob written before the crash, never recorded
    svc.snapshots.prepare("extract-0123", svc.get(iid).layers[-1])  # an extraction in flight
    svc.prepare_rootfs(iid, "b" * 64)  # a create that died before its record
    (data / "containers" / ("c" * 64)).mkdir(parents=True)  # ... and its directory
    (data / "image" / "content" / "ingest" / "partial").write_bytes(b"x")
    (data / "image" / "snapshots" / "naive" / "s" / "999").mkdir()
    vol = data / "volumes" / "v1"
    (vol / "_data").mkdir(parents=True)  # a volume create that died before its record
    got = kinds(data)
    assert {"orphan-blob", "orphan-snapshot", "stray-container-dir", "stray-ingest",
            "stray-snapshot-dir", "stray-volume-dir"} <= got
    # right after a crash (before the start-up gc), unreferenced blobs are expected
    assert "orphan-blob" not in kinds(data, strict=False)


def test_reopening_the_image_store_repairs_what_gc_owns(store: tuple[Path, ImageService, str]) -> None:
    data, svc, iid = store
    svc.content.put(b"unreferenced")
    svc.snapshots.prepare("extract-0123", svc.get(iid).layers[-1])
    (data / "image" / "content" / "ingest" / "partial").write_bytes(b"x")
    svc.close()
    again = ImageService(data / "image", snapshotter="naive")
    try:
        assert check(data) == []
    finally:
        again.close()


def test_verify_blobs_finds_a_blob_whose_content_changed(store: tuple[Path, ImageService, str]) -> None:
    data, svc, iid = store
    assert check(data, verify_blobs=True) == []
    p = svc.content.path(iid)
    os.chmod(p, 0o644)
    p.write_bytes(p.read_bytes() + b" ")
    assert [x.kind for x in check(data, verify_blobs=True)] == ["corrupt-blob"]
