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


def _oci_archive(
    layers: list[bytes], diff_ids: list[str], *, layers_first: bool = False, top_down: bool = False
) -> io.BytesIO:
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
    lays = [(f"blobs/sha256/{_sha(b)[7:]}", b) for b in (layers[::-1] if top_down else layers)]
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


def _count_extractions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import dockyard.images.service as service_mod

    n = [0]
    real = service_mod.apply_layer

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        n[0] += 1
        return real(*a, **kw)

    monkeypatch.setattr(service_mod, "apply_layer", spy)
    return n


def _chains_left(svc: ImageService) -> set[str]:
    return {i.key for i in svc.snapshots.list()}


def test_layers_before_their_config_are_unpacked_once_on_a_guessed_parent(
    svc: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker save's order (layers, then config and manifest): each layer is stored and unpacked
    as it passes, on the layer before it; add_image finds every ChainID ready."""
    l1 = _tar([("a", b"1" * 5000)])
    l2 = gzip.compress(_tar([("b", b"2")]))
    l3 = _tar([("c", b"3" * 70_000)])
    ids = [_sha(l1), _sha(gzip.decompress(l2)), _sha(l3)]
    n = _count_extractions(monkeypatch)
    assert svc.load(_oci_archive([l1, l2, l3], ids, layers_first=True)) == ["Loaded image: sp:1"]
    assert n[0] == 3
    assert _chains_left(svc) == set(chain_ids(ids))
    assert svc.get("sp:1").size == 75_001
    assert svc.content.read(_sha(l2)) == l2
    # Loaded again: the blobs are there, nothing is unpacked twice.
    assert svc.load(_oci_archive([l1, l2, l3], ids, layers_first=True)) == ["Loaded image: sp:1"]
    assert n[0] == 3


def test_a_wrong_parent_guess_costs_time_only(svc: ImageService, monkeypatch: pytest.MonkeyPatch) -> None:
    """Layers in top-down order: the guesses are wrong, the image is still right and the
    snapshots unpacked on the wrong parents are gone."""
    l1, l2 = _tar([("a", b"1")]), _tar([("b", b"2")])
    ids = [_sha(l1), _sha(l2)]
    n = _count_extractions(monkeypatch)
    svc.load(_oci_archive([l1, l2], ids, layers_first=True, top_down=True))
    assert n[0] > 2  # l2 on l1's place was wasted work, redone from the stored blob
    assert _chains_left(svc) == set(chain_ids(ids))
    assert svc.get("sp:1").size == 2


def test_legacy_archive_layers_follow_their_json_parent(
    svc: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker 20.10's format: `<v1 id>/json` names the parent dir, dirs come in name order (a
    child may come first: it waits for the second pass), manifest.json last."""
    l1, l2 = _tar([("a", b"1")]), _tar([("b", b"22")])
    ids = [_sha(l1), _sha(l2)]
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": ids}}).encode()
    base, top = "b" * 64, "a" * 64  # the top layer's dir sorts first
    members = [
        (f"{_sha(cfg)[7:]}.json", cfg),
        (f"{top}/VERSION", b"1.0"), (f"{top}/json", json.dumps({"id": top, "parent": base}).encode()),
        (f"{top}/layer.tar", l2),
        (f"{base}/VERSION", b"1.0"), (f"{base}/json", json.dumps({"id": base}).encode()),
        (f"{base}/layer.tar", l1),
        ("manifest.json", json.dumps([{"Config": f"{_sha(cfg)[7:]}.json", "RepoTags": ["leg:1"],
                                       "Layers": [f"{base}/layer.tar", f"{top}/layer.tar"]}]).encode()),
    ]
    n = _count_extractions(monkeypatch)
    assert svc.load(io.BytesIO(_tar(members))) == ["Loaded image: leg:1"]
    assert n[0] == 2  # base in passing; top (parent not yet unpacked) from the stored blob
    assert _chains_left(svc) == set(chain_ids(ids))
    assert svc.get("leg:1").size == 3


@pytest.mark.parametrize("case", ["blob-digest", "bad-tar", "diff-id"])
def test_bad_layers_before_their_config_leave_nothing(svc: ImageService, case: str) -> None:
    before = _store_files(svc)
    l1 = _tar([("a", b"1" * 2000)])
    if case == "blob-digest":
        raw = _oci_archive([l1], [_sha(l1)], layers_first=True).getvalue()
        arch = io.BytesIO(raw.replace(l1, l1[:-1] + b"\x01", 1))
    elif case == "bad-tar":
        bad = l1[:512] + b"\x01" * (len(l1) - 512)  # garbage where the next header belongs
        arch = _oci_archive([bad], [_sha(bad)], layers_first=True)
    else:
        arch = _oci_archive([l1], [_sha(b"other")], layers_first=True)
    with pytest.raises(InvalidArgument, match="invalid archive|diff_id"):
        svc.load(arch)
    assert svc.list() == []
    assert _store_files(svc) == before
    assert svc.snapshots.list() == []


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


@pytest.mark.parametrize("layers_first", [False, True])
def test_archive_cut_inside_a_layer_is_refused_and_leaves_nothing(svc: ImageService, layers_first: bool) -> None:
    """Layer data is read straight from the archive stream (past tarfile): an archive that ends
    inside a layer is an error, whichever road the layer takes."""
    before = _store_files(svc)
    l1 = _tar([("a", bytes(range(256)) * 400)])
    raw = _oci_archive([l1], [_sha(l1)], layers_first=layers_first).getvalue()
    cut = raw[: raw.index(l1) + len(l1) // 2]
    with pytest.raises(InvalidArgument, match="invalid archive"):
        svc.load(io.BytesIO(cut))
    assert svc.list() == []
    assert _store_files(svc) == before
    assert svc.snapshots.list() == []
