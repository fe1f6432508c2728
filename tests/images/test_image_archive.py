"""docker load / save: docker-archive, OCI layout, both-in-one round trip, bad archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images.service import ImageService

pytestmark = pytest.mark.root


def _tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name, target in (links or {}).items():
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tf.addfile(ti)
    buf.seek(0)
    return buf


def _layer(files: dict[str, bytes]) -> bytes:
    return _tar(files).getvalue()


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _config(diff_ids: list[str], cmd: list[str]) -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": cmd},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "x"} for _ in diff_ids],
        "created": "2024-01-01T00:00:00Z",
    }).encode()


def _store_files(svc: ImageService) -> set[str]:
    return {str(p.relative_to(svc.root)) for p in svc.root.rglob("*") if "metadata.db" not in p.name}


def test_load_legacy_docker_archive_with_symlinked_layers(svc: ImageService) -> None:
    l1 = _layer({"a.txt": b"one\n"})
    l2 = _layer({"b.txt": b"two\n"})
    cfg = _config([_sha(l1), _sha(l2)], ["/bin/true"])
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    arch = _tar(
        {
            cfg_name: cfg,
            "aaa/layer.tar": l1,
            "bbb/layer.tar": l2,
            "manifest.json": json.dumps([
                {"Config": cfg_name, "RepoTags": ["legacy:1"], "Layers": ["aaa/layer.tar", "ccc/layer.tar"]},
            ]).encode(),
            "repositories": b'{"legacy":{"1":"bbb"}}',
        },
        links={"ccc/layer.tar": "../bbb/layer.tar"},
    )
    assert svc.load(arch) == ["Loaded image: legacy:1"]
    img = svc.get("legacy:1")
    assert img.id == _sha(cfg)
    assert img.container_config["Cmd"] == ["/bin/true"]
    assert len(img.layers) == 2
    top = svc.snapshots.writable_dir(img.layers[-1])
    assert (top / "b.txt").read_bytes() == b"two\n"


def test_load_oci_layout_gzip_layers_keeps_manifest_digest(svc: ImageService) -> None:
    raw = _layer({"etc/hostname": b"oci\n"})
    gz = gzip.compress(raw)
    cfg = _config([_sha(raw)], ["sh"])
    man = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _sha(gz), "size": len(gz)}],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(man), "size": len(man),
        "annotations": {"org.opencontainers.image.ref.name": "reg.example:5000/team/oci:2"},
    }]}).encode()
    arch = _tar({
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index,
        **{f"blobs/sha256/{_sha(b)[7:]}": b for b in (raw, gz, cfg, man) if b is not raw},
    })
    assert svc.load(arch) == ["Loaded image: reg.example:5000/team/oci:2"]
    img = svc.get("reg.example:5000/team/oci:2")
    assert img.manifest_digest == _sha(man)
    assert svc.resolve(f"reg.example:5000/team/oci@{_sha(man)}") == img.id
    assert (svc.snapshots.writable_dir(img.layers[0]) / "etc/hostname").read_bytes() == b"oci\n"


def test_save_load_round_trip(svc: ImageService, busybox_tar: Path, tmp_path: Path) -> None:
    with open(busybox_tar, "rb") as f:
        iid = svc.import_tarball(f, repo_tag="busybox", changes=['CMD ["sh"]'])
    svc.tag("busybox", "me/app", "1")
    out = tmp_path / "save.tar"
    with open(out, "wb") as f:
        svc.save(["busybox", "me/app:1"], f)
    names = tarfile.open(out).getnames()
    for n in ("oci-layout", "index.json", "manifest.json", "repositories", "blobs/sha256/" + iid[7:]):
        assert n in names
    other = ImageService(tmp_path / "other", snapshotter=svc.snapshots.name)
    try:
        with open(out, "rb") as f:
            assert other.load(f) == ["Loaded image: busybox:latest", "Loaded image: me/app:1"]
        img = other.get("me/app:1")
        assert img.id == iid and set(img.repo_tags) == {"busybox:latest", "me/app:1"}
        # the docker-archive half alone (manifest.json) loads too
        ar = tarfile.open(out)
        legacy = io.BytesIO()
        with tarfile.open(fileobj=legacy, mode="w") as tf:
            for m in ar.getmembers():
                if m.name not in ("index.json", "oci-layout"):
                    tf.addfile(m, ar.extractfile(m) if m.isreg() else None)
        legacy.seek(0)
        third = ImageService(tmp_path / "third", snapshotter=svc.snapshots.name)
        try:
            assert third.load(legacy) == ["Loaded image: busybox:latest", "Loaded image: me/app:1"]
            assert third.get("busybox").id == iid
        finally:
            third.close()
    finally:
        other.close()
    if shutil.which("skopeo"):
        r = subprocess.run(["skopeo", "inspect", f"docker-archive:{out}:me/app:1"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["Layers"] == [svc.get(iid).layer_blobs[0].digest]
        r = subprocess.run(["skopeo", "inspect", f"oci-archive:{out}:1"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("comp", ["gzip", "zstd"])
def test_load_compressed_archive(svc: ImageService, busybox_tar: Path, tmp_path: Path, comp: str) -> None:
    with open(busybox_tar, "rb") as f:
        iid = svc.import_tarball(f, repo_tag="busybox")
    buf = io.BytesIO()
    svc.save(["busybox"], buf)
    if comp == "gzip":
        data = gzip.compress(buf.getvalue())
    else:
        import zstandard

        data = zstandard.ZstdCompressor().compress(buf.getvalue())
    other = ImageService(tmp_path / "o", snapshotter=svc.snapshots.name)
    try:
        assert other.load(io.BytesIO(data)) == ["Loaded image: busybox:latest"]
        assert other.resolve("busybox") == iid
    finally:
        other.close()


def test_save_by_id_is_untagged(svc: ImageService, busybox_tar: Path) -> None:
    with open(busybox_tar, "rb") as f:
        iid = svc.import_tarball(f, repo_tag="busybox")
    buf = io.BytesIO()
    svc.save([iid[7:19]], buf)
    manifest = json.loads(tarfile.open(fileobj=io.BytesIO(buf.getvalue())).extractfile("manifest.json").read())
    assert manifest[0]["RepoTags"] is None


@pytest.mark.parametrize("case", ["no-manifest", "diff-id-mismatch", "truncated", "bad-blob-digest"])
def test_bad_archives_are_refused_and_leave_nothing(svc: ImageService, case: str) -> None:
    before = _store_files(svc)
    l1 = _layer({"a": b"1"})
    cfg = _config([_sha(l1)], ["x"])
    if case == "no-manifest":
        arch = _tar({"something": b"x"})
    elif case == "diff-id-mismatch":
        bad = _config([_sha(b"not the layer")], ["x"])
        arch = _tar({"c.json": bad, "l.tar": l1,
                     "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l.tar"]}]).encode()})
    elif case == "truncated":
        full = _tar({"c.json": cfg, "l.tar": l1 * 4}).getvalue()
        arch = io.BytesIO(full[:3000])
    else:
        arch = _tar({"index.json": b'{"manifests":[]}', "blobs/sha256/" + "0" * 64: b"not that"})
    with pytest.raises(InvalidArgument):
        svc.load(arch)
    assert _store_files(svc) == before
    assert svc.list() == []


@pytest.mark.parametrize("case", ["layer-not-object", "config-not-object", "layer-blob-missing", "bad-diff-id"])
def test_hostile_oci_manifests_are_refused(svc: ImageService, case: str) -> None:
    before = _store_files(svc)
    raw = _layer({"f": b"x"})
    cfg = _config([_sha(raw)], ["sh"])
    if case == "config-not-object":
        cfg = b"[1, 2]"
    if case == "bad-diff-id":
        cfg = _config(["sha256:../../etc"], ["sh"])
    layer: object = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _sha(raw), "size": len(raw)}
    if case == "layer-not-object":
        layer = "sha256:" + "0" * 64
    man = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(cfg), "size": len(cfg)},
        "layers": [layer],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(man), "size": len(man),
    }]}).encode()
    blobs = [cfg, man] + ([] if case == "layer-blob-missing" else [raw])
    arch = _tar({"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index,
                 **{f"blobs/sha256/{_sha(b)[7:]}": b for b in blobs}})
    with pytest.raises(InvalidArgument):
        svc.load(arch)
    assert _store_files(svc) == before


def test_ingest_blob_verifies(svc: ImageService) -> None:
    data = b"blob"
    assert svc.ingest_blob(io.BytesIO(data), _sha(data), len(data)) == _sha(data)
    with pytest.raises(InvalidArgument):
        svc.ingest_blob(io.BytesIO(b"other"), "sha256:" + "1" * 64)
    assert svc.content.read(_sha(data)) == data


def test_pull_flow_ingest_layer_then_add_image(svc: ImageService) -> None:
    """What a registry client does: layers stored and unpacked in one pass, then the image."""
    l1 = _layer({"a": b"1"})
    l2raw = _layer({"b": b"22"})
    l2 = gzip.compress(l2raw)
    cfg = _config([_sha(l1), _sha(l2raw)], ["sh"])
    man = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(cfg), "size": len(cfg)},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _sha(l1), "size": len(l1)},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _sha(l2), "size": len(l2)},
        ],
    }).encode()
    with pytest.raises(InvalidArgument, match="does not match the config's diff_id"):
        svc.ingest_layer(io.BytesIO(l1), digest=_sha(l1), size=len(l1), diff_id=_sha(l2raw), parent_chain=None)
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        svc.ingest_layer(io.BytesIO(l1), digest=_sha(l2), size=None, diff_id=_sha(l1), parent_chain=None)
    assert svc.snapshots.list() == [] and list(svc.content.walk()) == []
    a = svc.ingest_layer(io.BytesIO(l1), digest=_sha(l1), size=len(l1), diff_id=_sha(l1), parent_chain=None)
    assert svc.has_layer(_sha(l1), _sha(l1), None)
    b = svc.ingest_layer(io.BytesIO(l2), digest=_sha(l2), size=len(l2), diff_id=_sha(l2raw), parent_chain=a.diff_id)
    assert b.media_type.endswith("+gzip") and b.unpacked_size == 2
    svc.ingest_blob(io.BytesIO(cfg), _sha(cfg))
    svc.ingest_blob(io.BytesIO(man), _sha(man))
    iid = svc.add_image(_sha(man), repo_tags=["localhost:5000/team/app:1"],
                        repo_digests=[f"localhost:5000/team/app@{_sha(man)}"])
    img = svc.get("localhost:5000/team/app:1")
    assert img.id == iid and img.repo_digests == (f"localhost:5000/team/app@{_sha(man)}",)
    assert img.size == 3 and len(svc.snapshots.list()) == 2  # nothing unpacked twice
