"""skopeo (an independent client) copies an OCI layout into the registry and back."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from regtest_support import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Reg, basic

from dockyard.registry.htpasswd import hash_password

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    hx = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / hx).write_bytes(data)
    return {"digest": f"sha256:{hx}", "size": len(data)}


def make_oci_layout(layout: Path, tag: str) -> str:
    """A one-layer image in OCI layout form; returns the manifest digest."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        payload = b"hello from a layer\n" * 1000
        info = tarfile.TarInfo("hello.txt")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    layer = _blob(layout, gzip.compress(raw.getvalue(), mtime=0))
    config = _blob(layout, json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode())
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **config},
        "layers": [{"mediaType": OCI_LAYER, **layer}]}).encode()
    m = _blob(layout, manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, **m,
             "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return m["digest"]


def _skopeo(*args: str) -> str:
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_skopeo_copy_roundtrip(reg: Reg, tmp_path: Path) -> None:
    digest = make_oci_layout(tmp_path / "src", "v1")
    host = reg.url.split("://")[1]
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:v1",
            f"docker://{host}/skopeo/test:v1")
    r = reg.req("GET", "/v2/skopeo/test/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status == 200 and r.headers["Docker-Content-Digest"] == digest
    info = json.loads(_skopeo("inspect", "--tls-verify=false", f"docker://{host}/skopeo/test:v1"))
    assert info["Digest"] == digest and len(info["Layers"]) == 1
    # and back out into a fresh layout, unchanged
    _skopeo("copy", "--src-tls-verify=false", f"docker://{host}/skopeo/test:v1",
            f"oci:{tmp_path / 'dst'}:v1")
    idx = json.loads((tmp_path / "dst" / "index.json").read_text())
    assert idx["manifests"][0]["digest"] == digest
    # registry to registry inside the same server (mounts)
    _skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
            f"docker://{host}/skopeo/test:v1", f"docker://{host}/skopeo/copy:v2")
    tags = json.loads(_skopeo("list-tags", "--tls-verify=false", f"docker://{host}/skopeo/copy"))
    assert tags["Tags"] == ["v2"]


def test_skopeo_with_token_auth(registry_factory: Any, tmp_path: Path) -> None:
    ht = tmp_path / "htpasswd"
    ht.write_text(f"alice:{hash_password('wonder', rounds=4)}\n")
    reg: Reg = registry_factory("--htpasswd", str(ht), "--auth", "token")
    digest = make_oci_layout(tmp_path / "src", "v1")
    host = reg.url.split("://")[1]
    r = subprocess.run(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
                        f"oci:{tmp_path / 'src'}:v1", f"docker://{host}/private/img:v1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0  # no credentials
    _skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonder",
            f"oci:{tmp_path / 'src'}:v1", f"docker://{host}/private/img:v1")
    tok = reg.req("GET", "/token?service=dockyard-registry&scope=repository:private/img:pull",
                  auth=basic("alice", "wonder")).json()["token"]
    r = reg.req("HEAD", "/v2/private/img/manifests/v1", auth=f"Bearer {tok}",
                headers={"Accept": OCI_MANIFEST})
    assert r.status == 200 and r.headers["Docker-Content-Digest"] == digest
