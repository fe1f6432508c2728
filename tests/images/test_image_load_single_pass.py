"""docker load in one pass: layers that arrive after their manifest and config are stored and
unpacked straight from the archive (no scratch copy, no second read), and bad ones leave nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images.service import ImageService
from dockyard.oci.identity import chain_ids

pytestmark = pytest.mark.root

MAN = "application/vnd.oci.image.manifest.v1+json"


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _oci_archive(layers: list[bytes], diff_ids: list[str], *, layers_first: bool = False) -> io.BytesIO:
    """An OCI layout tar: config, manifest, then layers (save_archive's order) or layers first."""
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    ltype = "application/vnd.oci.image.layer.v1.tar"
    man = json.dumps({
        "schemaVersion": 2, "mediaType": MAN,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(cfg), "size": len(cfg)},
        "layers": [{"mediaType": ltype + ("+gzip" if x[:2] == b"\x1f\x8b" else ""), "digest": _sha(x), "size": len(x)}
                   for x in layers],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": MAN, "digest": _sha(man), "size": len(man),
        "annotations": {"io.containerd.image.name": "docker.io/library/sp:1"},
    }]}).encode()
    meta = [(f"blobs/sha256/{_sha(b)[7:]}", b) for b in (cfg, man)]
    lays = [(f"blobs/sha256/{_sha(b)[7:]}", b) for b in layers]
    tail = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
    return io.BytesIO(_tar((lays + meta if layers_first else meta + lays) + tail))


def _count_ingests(svc: ImageService, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = svc.ingest_layer

    def spy(src, **kw):  # type: ignore[no-untyped-def]
        seen.append(kw["digest"])
        return real(src, **kw)

    monkeypatch.setattr(svc, "ingest_layer", spy)
    return seen


def _store_files(svc: ImageService) -> set[str]:
    return {str(p.relative_to(svc.root)) for p in svc.root.rglob("*") if "metadata.db" not in p.name}


def test_layers_after_their_config_are_unpacked_in_passing(
    svc: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    l1 = _tar([("a", b"1" * 5000)])
    l2 = gzip.compress(_tar([("b", b"2")]))
    ids = [_sha(l1), _sha(gzip.decompress(l2))]
    seen = _count_ingests(svc, monkeypatch)
    assert svc.load(_oci_archive([l1, l2], ids)) == ["Loaded image: sp:1"]
    assert seen == [_sha(l1), _sha(l2)]  # both layers went straight in, the second on the first
    img = svc.get("sp:1")
    assert [x.digest for x in img.layer_blobs] == [_sha(l1), _sha(l2)]
    assert img.size == 5001  # unpacked sizes known without a second pass
    for c in chain_ids(ids):
        assert svc.snapshots.exists(c)
    assert svc.content.read(_sha(l2)) == l2  # stored as it came (gzip kept)


def test_layers_before_their_config_take_the_two_pass_road(
    svc: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    l1 = _tar([("a", b"1")])
    seen = _count_ingests(svc, monkeypatch)
    svc.load(_oci_archive([l1], [_sha(l1)], layers_first=True))
    assert seen == []
    assert svc.snapshots.exists(_sha(l1))
    assert svc.get("sp:1").size == 1


def test_save_load_round_trip_is_single_pass(
    svc: ImageService, busybox_tar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(busybox_tar, "rb") as f:
        iid = svc.import_tarball(f, repo_tag="bb:1")
    buf = io.BytesIO()
    svc.save(["bb:1"], buf)
    other = ImageService(tmp_path / "other", snapshotter=svc.snapshots.name)
    try:
        seen = _count_ingests(other, monkeypatch)
        buf.seek(0)
        assert other.load(buf) == ["Loaded image: bb:1"]
        assert len(seen) == 1
        assert other.get("bb:1").id == iid
        assert other.get("bb:1").size == svc.get(iid).size
    finally:
        other.close()


@pytest.mark.parametrize("case", ["diff-id", "blob-digest", "second-layer-bad"])
def test_bad_streamed_layers_leave_nothing(svc: ImageService, case: str) -> None:
    before = _store_files(svc)
    l1, l2 = _tar([("a", b"1")]), _tar([("b", b"2")])
    if case == "diff-id":
        arch = _oci_archive([l1], [_sha(b"something else")])
    elif case == "blob-digest":
        raw = _oci_archive([l1], [_sha(l1)]).getvalue()
        # the same length, other bytes: the member's name no longer matches its content
        arch = io.BytesIO(raw.replace(l1, l1[:-1] + b"\x01", 1))
    else:
        arch = _oci_archive([l1, l2], [_sha(l1), _sha(b"not l2")])
    with pytest.raises(InvalidArgument, match="invalid archive"):
        svc.load(arch)
    assert svc.list() == []
    assert _store_files(svc) == before
    assert svc.snapshots.list() == []
