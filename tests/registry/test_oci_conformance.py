"""The OCI distribution conformance suite's checks, expressed in pytest against a real
``dockyard registry serve`` on loopback.

The checks follow opencontainers/distribution-spec/conformance (the 1.1 workflows pull, push,
content discovery and content management; read, not copied): for every blob push API (POST
only, POST+PUT, chunked PATCHes with and without the last chunk in the PUT, streamed PATCH,
mount from a repository, anonymous mount, mount of a missing blob) in sha256 and sha512; HEAD
and GET of what was pushed, with status, body, Content-Length, Content-Type and
Docker-Content-Digest; Location headers that lead back to the content; OCI-Subject and OCI-Tag
on manifest PUT; 416 for out-of-order chunks and the GET that recovers from them; range
requests; the referrers list with its artifactType filter and OCI-Filters-Applied; tag list
with ``last`` and ``n`` (Link); deletes that take effect at once; the error codes of the spec.

The data sets are the suite's: image (gzip and uncompressed layers), a ~3.9 MB manifest,
index, nested index, empty index, artifact, artifact index, artifact without layers,
artifacts and an index with a subject, a missing subject, descriptor ``data``,
non-distributable layers, custom fields, no layers, sha512 throughout, tag parameters with
sha256 and sha512 digests, and a manifest whose bytes don't match its digest.

The real suite (its newest, Go-built runner) is built offline and run against a private
registry by scripts/conformance.sh (Go >= 1.23 and Debian's gocode: not part of CI); this
module keeps its checks running everywhere.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from regtest_support import Reg, Resp

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_ND_GZ = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
EXAMPLE_AT1 = "application/vnd.example.oci.conformance.v1"
EXAMPLE_AT2 = "application/vnd.example.oci.conformance.v2"
OCTET = "application/octet-stream"
REPO1, REPO2 = "conformance/repo1", "conformance/repo2"
CHUNK_MIN = 1024
ALGOS = ("sha256", "sha512")


def digest_of(data: bytes, algo: str = "sha256") -> str:
    return f"{algo}:{hashlib.new(algo, data).hexdigest()}"


def rel(loc: str) -> str:
    """A Location header (absolute or relative) as a path+query on the registry."""
    u = urlsplit(loc)
    return u.path + (f"?{u.query}" if u.query else "")


def with_query(loc: str, **params: str) -> str:
    q = "&".join(f"{k}={quote(v, safe=':')}" for k, v in params.items())
    return f"{loc}{'&' if '?' in loc else '?'}{q}"


# -- the data sets --------------------------------------------------------------------------


@dataclass
class DataSet:
    """Content to push and what the registry must answer about it."""

    algo: str = "sha256"
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, bytes] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # manifests, children before parents
    tags: dict[str, str] = field(default_factory=dict)
    tag_param: set[str] = field(default_factory=set)  # digests pushed with ?tag=
    referrers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bad_digest: set[str] = field(default_factory=set)  # PUT must fail with 400
    media: dict[str, str] = field(default_factory=dict)

    def blob(self, data: bytes) -> str:
        d = digest_of(data, self.algo)
        self.blobs[d] = data
        return d

    def layer(self, compress: bool = True) -> dict[str, Any]:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            payload = os.urandom(256)
            info = tarfile.TarInfo("random.bin")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
        raw = buf.getvalue()
        data = gzip.compress(raw) if compress else raw
        return {"mediaType": OCI_LAYER_GZ if compress else OCI_LAYER,
                "digest": self.blob(data), "size": len(data)}

    def config(self, arch: str = "amd64", diff_ids: list[str] | None = None) -> dict[str, Any]:
        data = json.dumps({"architecture": arch, "os": "linux", "rootfs": {
            "type": "layers", "diff_ids": diff_ids or []}}).encode()
        return {"mediaType": OCI_CONFIG, "digest": self.blob(data), "size": len(data)}

    def add_manifest(self, doc: dict[str, Any], tag: str | None = None,
                     referrer_of: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps(doc, indent=2).encode()
        d = digest_of(body, self.algo)
        self.manifests[d] = body
        self.media[d] = doc["mediaType"]
        self.order.append(d)
        if tag:
            self.tags[tag] = d
        desc: dict[str, Any] = {"mediaType": doc["mediaType"], "digest": d, "size": len(body)}
        if "subject" in doc:
            entry = dict(desc)
            at = doc.get("artifactType") or doc.get("config", {}).get("mediaType")
            if at:
                entry["artifactType"] = at
            if doc.get("annotations"):
                entry["annotations"] = doc["annotations"]
            self.referrers.setdefault(doc["subject"]["digest"], []).append(entry)
        return desc

    def image(self, tag: str | None = None, *, layers: int = 1, compress: bool = True,
              arch: str = "amd64", artifact_type: str | None = None,
              config: dict[str, Any] | None = None, layer_descs: list[dict[str, Any]] | None
              = None, subject: dict[str, Any] | None = None,
              annotations: dict[str, str] | None = None,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
        ls = layer_descs if layer_descs is not None else [
            self.layer(compress) for _ in range(layers)]
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
        if artifact_type:
            doc["artifactType"] = artifact_type
        doc["config"] = config or self.config(arch)
        doc["layers"] = ls
        if subject:
            doc["subject"] = subject
        if annotations:
            doc["annotations"] = annotations
        doc.update(extra or {})
        return self.add_manifest(doc, tag)

    def artifact(self, tag: str | None = None, *, artifact_type: str = EXAMPLE_AT1,
                 layer_mt: str = EXAMPLE_AT1, subject: dict[str, Any] | None = None,
                 annotations: dict[str, str] | None = None) -> dict[str, Any]:
        cd = self.blob(b"{}")
        payload = os.urandom(128)
        layer = {"mediaType": layer_mt, "digest": self.blob(payload), "size": len(payload)}
        return self.image(tag, artifact_type=artifact_type,
                          config={"mediaType": OCI_EMPTY, "digest": cd, "size": 2},
                          layer_descs=[layer], subject=subject, annotations=annotations)

    def index(self, children: list[dict[str, Any]], tag: str | None = None, *,
              artifact_type: str | None = None, subject: dict[str, Any] | None = None,
              annotations: dict[str, str] | None = None,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX}
        if artifact_type:
            doc["artifactType"] = artifact_type
        doc["manifests"] = children
        if subject:
            doc["subject"] = subject
        if annotations:
            doc["annotations"] = annotations
        doc.update(extra or {})
        return self.add_manifest(doc, tag)

    def platform_index(self, tag: str | None = None, **kw: Any) -> dict[str, Any]:
        kids = []
        for arch in ("amd64", "arm64"):
            desc = self.image(arch=arch)
            kids.append({**desc, "platform": {"os": "linux", "architecture": arch}})
        return self.index(kids, tag, **kw)


def _uniq() -> dict[str, str]:
    return {"org.opencontainers.conformance": "hello conformance test",
            "org.example.uniq": os.urandom(8).hex()}


def _ds_image(ds: DataSet) -> None:
    ds.image("image")


def _ds_image_uncompressed(ds: DataSet) -> None:
    ds.image("image-uncompressed", compress=False)


def _ds_large_manifest(ds: DataSet) -> None:
    ds.image("large-manifest",
             annotations={f"large-annotation-{i}": "A" * 10000 for i in range(390)})


def _ds_index(ds: DataSet) -> None:
    ds.platform_index("index")


def _ds_nested_index(ds: DataSet) -> None:
    a, b = ds.platform_index(), ds.platform_index()
    ds.index([a, b], "index-of-index")


def _ds_empty_index(ds: DataSet) -> None:
    ds.index([], "index")


def _ds_artifact(ds: DataSet) -> None:
    ds.artifact("artifact")


def _ds_artifact_index(ds: DataSet) -> None:
    kids = []
    for arch in ("amd64", "arm64"):
        desc = ds.artifact()
        kids.append({**desc, "platform": {"os": "linux", "architecture": arch}})
    ds.index(kids, "artifact-index", artifact_type=EXAMPLE_AT1)


def _ds_artifact_without_layers(ds: DataSet) -> None:
    cd = ds.blob(b"{}")
    empty = {"mediaType": OCI_EMPTY, "digest": cd, "size": 2}
    ds.image("artifact-without-layers", artifact_type=EXAMPLE_AT1, config=empty,
             layer_descs=[empty])


def _ds_artifacts_with_subject(ds: DataSet) -> None:
    subj = ds.image("image")
    ds.image(subject=subj)  # an image referrer: artifactType is its config's mediaType
    ds.artifact("tagged-artifact1", subject=subj, annotations=_uniq())
    ds.artifact("tagged-artifact2", artifact_type=EXAMPLE_AT2, layer_mt=OCTET, subject=subj,
                annotations=_uniq())


def _ds_index_with_subject(ds: DataSet) -> None:
    subj = ds.platform_index("index")
    kids = [ds.artifact() for _ in range(2)]
    ds.index(kids, "tagged-artifact", artifact_type=EXAMPLE_AT1, subject=subj,
             annotations=_uniq())


def _ds_missing_subject(ds: DataSet) -> None:
    missing = {"mediaType": OCI_MANIFEST, "size": 123,
               "digest": digest_of(b"missing content", ds.algo)}
    ds.artifact("tagged-artifact", subject=missing, annotations=_uniq())


def _ds_data_field(ds: DataSet) -> None:
    layer = ds.layer()
    cfg = ds.config()
    for desc in (layer, cfg):
        desc["data"] = base64.b64encode(ds.blobs[desc["digest"]]).decode()
    ds.image("data-field", config=cfg, layer_descs=[layer])


def _ds_nondistributable(ds: DataSet) -> None:
    ghost1 = digest_of(os.urandom(256), ds.algo)
    ghost2 = digest_of(os.urandom(256), ds.algo)
    hexpart = ghost1.split(":")[1]
    layers = [
        {"mediaType": OCI_LAYER_ND_GZ, "digest": ghost1, "size": 123456,
         "urls": [f"https://store.example.com/blobs/sha256/{hexpart}"]},
        {"mediaType": OCI_LAYER_ND, "digest": ghost2, "size": 12345,
         "urls": [f"https://store.example.com/blobs/sha256/{ghost2.split(':')[1]}"]},
        ds.layer(),
    ]
    ds.image("non-distributable-image", layer_descs=layers)


def _ds_custom_fields(ds: DataSet) -> None:
    field_name = f"custom-{os.urandom(4).hex()}"
    kids = []
    for arch in ("amd64", "arm64"):
        desc = ds.image(arch=arch, extra={field_name: {"x": [1, 2, 3]}})
        kids.append({**desc, "platform": {"os": "linux", "architecture": arch}})
    ds.index(kids, "custom-fields", extra={field_name: "value"})


def _ds_no_layers(ds: DataSet) -> None:
    ds.image("no-layers", layers=0)


def _ds_sha512(ds: DataSet) -> None:
    ds.algo = "sha512"
    ds.platform_index()  # non-canonical digests: pushed by digest only


def _tag_param(algo: str) -> Callable[[DataSet], None]:
    def build(ds: DataSet) -> None:
        ds.algo = algo
        name = f"tag-param-{algo}"
        ds.platform_index(name)
        for i, d in enumerate(ds.order):
            ds.tags[f"{name}-{i}"] = d
            ds.tag_param.add(d)
    return build


def _ds_bad_digest(ds: DataSet) -> None:
    desc = ds.image()
    d = desc["digest"]
    ds.manifests[d] += b"  "  # the bytes no longer match the digest they are pushed under
    ds.bad_digest.add(d)


DATA_SETS: dict[str, Callable[[DataSet], None]] = {
    "image": _ds_image, "image-uncompressed": _ds_image_uncompressed,
    "large-manifest": _ds_large_manifest, "index": _ds_index, "nested-index": _ds_nested_index,
    "empty-index": _ds_empty_index, "artifact": _ds_artifact,
    "artifact-index": _ds_artifact_index, "artifact-without-layers": _ds_artifact_without_layers,
    "artifacts-with-subject": _ds_artifacts_with_subject,
    "index-with-subject": _ds_index_with_subject, "missing-subject": _ds_missing_subject,
    "data-field": _ds_data_field, "non-distributable-layers": _ds_nondistributable,
    "custom-fields": _ds_custom_fields, "no-layers": _ds_no_layers, "sha512": _ds_sha512,
    "tag-param-sha256": _tag_param("sha256"), "tag-param-sha512": _tag_param("sha512"),
    "bad-digest-image": _ds_bad_digest,
}


# -- the checks -----------------------------------------------------------------------------


class Check:
    """One registry and the suite's expectations for each API call."""

    def __init__(self, reg: Reg) -> None:
        self.reg = reg

    def req(self, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> Resp:
        return self.reg.req(method, path, body, headers)

    # blobs ----------------------------------------------------------------------------------
    def verify_location(self, loc: str | None, data: bytes) -> None:
        assert loc, "no Location header"
        r = self.req("GET", rel(loc))
        assert r.status == 200 and r.body == data, (loc, r.status)

    def committed(self, r: Resp, d: str, data: bytes) -> None:
        assert r.status == 201, (r.status, r.body)
        assert r.headers.get("Docker-Content-Digest") in (None, d)
        self.verify_location(r.headers.get("Location"), data)

    def start(self, repo: str) -> str:
        r = self.req("POST", f"/v2/{repo}/blobs/uploads/", b"", {"Content-Length": "0"})
        assert r.status == 202, (r.status, r.body)
        assert r.headers.get("Location")
        return rel(r.headers["Location"])

    def post_only(self, repo: str, d: str, data: bytes, bad: bool = False) -> None:
        r = self.req("POST", with_query(f"/v2/{repo}/blobs/uploads/", digest=d), data,
                     {"Content-Type": OCTET, "Content-Length": str(len(data))})
        if bad:
            assert r.status == 400 and r.code == "DIGEST_INVALID", (r.status, r.body)
            return
        self.committed(r, d, data)

    def post_put(self, repo: str, d: str, data: bytes, bad: bool = False) -> None:
        loc = self.start(repo)
        r = self.req("PUT", with_query(loc, digest=d), data,
                     {"Content-Type": OCTET, "Content-Length": str(len(data))})
        if bad:
            assert r.status == 400 and r.code == "DIGEST_INVALID", (r.status, r.body)
            return
        self.committed(r, d, data)

    def chunked(self, repo: str, d: str, data: bytes, *, put_last: bool = False,
                out_of_order: bool = False, bad: bool = False) -> None:
        r = self.req("POST", f"/v2/{repo}/blobs/uploads/", b"", {"Content-Length": "0"})
        assert r.status == 202
        loc = rel(r.headers["Location"])
        min_len = int(r.headers.get("OCI-Chunk-Min-Length") or 0)
        size = max(len(data) // 3 + 1, min_len, CHUNK_MIN)
        size = min(size, len(data))
        last = -1
        final: Resp | None = None
        while last < len(data) - 1:
            if out_of_order:
                bad_start = last + 1 + size
                if bad_start >= len(data):
                    bad_start = 0
                bad_last = min(bad_start + size - 1, len(data) - 1)
                is_put = put_last and bad_last == len(data) - 1
                url = with_query(loc, digest=d) if is_put else loc
                r = self.req("PUT" if is_put else "PATCH", url, data[bad_start:bad_last + 1],
                             {"Content-Type": OCTET, "Content-Range": f"{bad_start}-{bad_last}",
                              "Content-Length": str(bad_last - bad_start + 1)})
                assert r.status == 416, (r.status, r.body)
                # recover: the upload's status tells where it is
                r = self.req("GET", loc)
                assert r.status == 204, (r.status, r.body)
                rng = r.headers.get("Range", "")
                assert rng.startswith("0-"), rng
                if last >= 0:
                    assert int(rng[2:]) == last, (rng, last)
                loc = rel(r.headers["Location"])
            start = last + 1
            last = min(start + size - 1, len(data) - 1)
            hdrs = {"Content-Type": OCTET, "Content-Range": f"{start}-{last}",
                    "Content-Length": str(last - start + 1)}
            if put_last and last == len(data) - 1:
                final = self.req("PUT", with_query(loc, digest=d), data[start:last + 1], hdrs)
            else:
                r = self.req("PATCH", loc, data[start:last + 1], hdrs)
                assert r.status == 202, (r.status, r.body)
                assert r.headers.get("Range") == f"0-{last}"
                loc = rel(r.headers["Location"])
        if final is None:
            final = self.req("PUT", with_query(loc, digest=d), b"",
                             {"Content-Type": OCTET, "Content-Length": "0"})
        if bad:
            assert final.status == 400 and final.code == "DIGEST_INVALID", final.body
            return
        self.committed(final, d, data)

    def stream(self, repo: str, d: str, data: bytes, bad: bool = False) -> None:
        loc = self.start(repo)
        r = self.reg_stream_patch(loc, data)
        assert r.status == 202, (r.status, r.body)
        loc = rel(r.headers["Location"])
        r = self.req("PUT", with_query(loc, digest=d), b"",
                     {"Content-Type": OCTET, "Content-Length": "0"})
        if bad:
            assert r.status == 400 and r.code == "DIGEST_INVALID", (r.status, r.body)
            return
        self.committed(r, d, data)

    def reg_stream_patch(self, loc: str, data: bytes) -> Resp:
        """A PATCH with no Content-Length or Content-Range (chunked transfer encoding)."""
        import http.client

        u = urlsplit(self.reg.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            conn.request("PATCH", loc, body=iter([data[:100], data[100:]]),
                         headers={"Content-Type": OCTET}, encode_chunked=True)
            r = conn.getresponse()
            return Resp(r.status, r.headers, r.read())
        finally:
            conn.close()

    def push_any(self, repo: str, d: str, data: bytes) -> None:
        self.post_put(repo, d, data)

    def mount(self, repo: str, src: str | None, d: str, data: bytes) -> int:
        q = {"mount": d} | ({"from": src} if src else {})
        r = self.req("POST", with_query(f"/v2/{repo}/blobs/uploads/", **q), b"",
                     {"Content-Length": "0"})
        assert r.status in (201, 202), (r.status, r.body)
        assert r.headers.get("Location")
        if r.status == 202:  # not mountable: an ordinary session to finish
            r = self.req("PUT", with_query(rel(r.headers["Location"]), digest=d), data,
                         {"Content-Type": OCTET, "Content-Length": str(len(data))})
            self.committed(r, d, data)
            return 202
        self.committed(r, d, data)
        return 201

    def head_blob(self, repo: str, d: str, data: bytes) -> None:
        r = self.req("HEAD", f"/v2/{repo}/blobs/{d}")
        assert r.status == 200 and r.body == b"", (r.status, r.body)
        assert r.headers["Content-Length"] == str(len(data))
        assert r.headers.get("Docker-Content-Digest") == d

    def get_blob(self, repo: str, d: str, data: bytes) -> None:
        r = self.req("GET", f"/v2/{repo}/blobs/{d}")
        assert r.status == 200 and r.body == data
        assert r.headers["Content-Length"] == str(len(data))
        assert r.headers.get("Docker-Content-Digest") == d

    def delete_blob(self, repo: str, d: str) -> None:
        r = self.req("DELETE", f"/v2/{repo}/blobs/{d}")
        assert r.status in (202, 404), (r.status, r.body)
        r = self.req("HEAD", f"/v2/{repo}/blobs/{d}")
        assert r.status == 404, r.status

    # manifests --------------------------------------------------------------------------------
    def put_manifest(self, repo: str, ref: str, body: bytes, mt: str, d: str,
                     tags: list[str] | None = None, bad: bool = False) -> None:
        path = f"/v2/{repo}/manifests/{ref}"
        for t in tags or []:
            path = with_query(path, tag=t)
        r = self.req("PUT", path, body, {"Content-Type": mt})
        if bad:
            assert r.status == 400, (r.status, r.body)
            return
        assert r.status == 201, (r.status, r.body)
        assert r.headers.get("Docker-Content-Digest") in (None, d)
        doc = json.loads(body)
        if "subject" in doc:
            assert r.headers.get("OCI-Subject") == doc["subject"]["digest"]
        got_tags = [t.strip() for v in r.headers.get_all("OCI-Tag") or [] for t in v.split(",")]
        for t in tags or []:
            assert t in got_tags, (t, got_tags)
        loc = r.headers.get("Location")
        assert loc
        g = self.req("GET", rel(loc), headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
        assert g.status == 200 and g.body == body
        assert g.headers["Content-Type"] == mt
        assert g.headers["Content-Length"] == str(len(body))

    def manifest_exists(self, repo: str, ref: str, body: bytes, mt: str, d: str) -> None:
        accept = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}
        for method in ("HEAD", "GET"):
            r = self.req(method, f"/v2/{repo}/manifests/{ref}", headers=accept)
            assert r.status == 200, (method, ref, r.status)
            assert r.body == (body if method == "GET" else b"")
            assert r.headers["Content-Type"] == mt
            assert r.headers["Content-Length"] == str(len(body))
            assert r.headers.get("Docker-Content-Digest") == d

    def manifest_gone(self, repo: str, ref: str) -> None:
        r = self.req("HEAD", f"/v2/{repo}/manifests/{ref}",
                     headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
        assert r.status == 404, (ref, r.status)

    def tag_list(self, repo: str, query: str = "") -> tuple[list[str], Resp]:
        r = self.req("GET", f"/v2/{repo}/tags/list{query}")
        assert r.status == 200, (r.status, r.body)
        doc = r.json()
        assert doc["name"] == repo
        return doc["tags"] or [], r

    def referrers(self, repo: str, subject: str, artifact_type: str | None = None
                  ) -> tuple[list[dict[str, Any]], Resp]:
        path = f"/v2/{repo}/referrers/{subject}"
        if artifact_type:
            path = with_query(path, artifactType=artifact_type)
        r = self.req("GET", path)
        assert r.status == 200, (r.status, r.body)
        assert r.headers["Content-Type"] == OCI_INDEX
        doc = r.json()
        assert doc["schemaVersion"] == 2 and doc["mediaType"] == OCI_INDEX
        return doc["manifests"], r


def _matches(entry: dict[str, Any], goal: dict[str, Any]) -> bool:
    return (entry.get("digest") == goal["digest"] and entry.get("mediaType") ==
            goal["mediaType"] and entry.get("size") == goal["size"]
            and entry.get("artifactType") == goal.get("artifactType")
            and all(entry.get("annotations", {}).get(k) == v
                    for k, v in (goal.get("annotations") or {}).items()))


@pytest.fixture
def check(reg: Reg) -> Check:
    return Check(reg)


# -- ping, empty repository -----------------------------------------------------------------


def test_ping_and_empty_repository(check: Check) -> None:
    r = check.req("GET", "/v2/")
    assert r.status == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    r = check.req("GET", f"/v2/{REPO1}/tags/list")
    assert r.status in (200, 404)
    if r.status == 404:
        assert r.code == "NAME_UNKNOWN"
    entries, _ = check.referrers(REPO1, digest_of(os.urandom(16)))
    assert entries == []


# -- blob APIs, per digest algorithm --------------------------------------------------------


@pytest.mark.parametrize("algo", ALGOS)
def test_blob_push_apis(check: Check, algo: str) -> None:
    def gen(n: int = 512) -> tuple[str, bytes]:
        data = os.urandom(n)
        return digest_of(data, algo), data

    d, data = gen()
    r = check.req("GET", f"/v2/{REPO1}/blobs/{d}")
    assert r.status == 404 and r.code == "BLOB_UNKNOWN"

    big = CHUNK_MIN * 3 - 5
    pushes: list[tuple[str, Callable[[str, bytes], None], int]] = [
        ("post only", lambda d, b: check.post_only(REPO1, d, b), 512),
        ("post+put", lambda d, b: check.post_put(REPO1, d, b), 512),
        ("chunked single", lambda d, b: check.chunked(REPO1, d, b), 512),
        ("chunked multi", lambda d, b: check.chunked(REPO1, d, b), big),
        ("chunked multi, put chunk", lambda d, b: check.chunked(REPO1, d, b, put_last=True),
         big),
        ("chunked out-of-order", lambda d, b: check.chunked(REPO1, d, b, out_of_order=True),
         big),
        ("chunked out-of-order, put chunk",
         lambda d, b: check.chunked(REPO1, d, b, put_last=True, out_of_order=True), big),
        ("stream", lambda d, b: check.stream(REPO1, d, b), 512),
    ]
    for _name, push, n in pushes:
        d, data = gen(n)
        push(d, data)
        check.head_blob(REPO1, d, data)
        check.get_blob(REPO1, d, data)
        check.delete_blob(REPO1, d)

    # mount from a repository that has it: 201 straight away
    d, data = gen()
    check.push_any(REPO2, d, data)
    assert check.mount(REPO1, REPO2, d, data) == 201
    check.head_blob(REPO1, d, data)
    check.get_blob(REPO1, d, data)
    check.delete_blob(REPO1, d)
    check.delete_blob(REPO2, d)
    # anonymous mount (no "from"): the registry may look anywhere
    d, data = gen()
    check.push_any(REPO2, d, data)
    assert check.mount(REPO1, None, d, data) == 201
    check.delete_blob(REPO1, d)
    check.delete_blob(REPO2, d)
    # mount of a blob the source does not have: must not succeed as a mount
    d, data = gen()
    assert check.mount(REPO1, REPO2, d, data) == 202
    check.delete_blob(REPO1, d)

    # cancel: 204, then the session is gone
    loc = check.start(REPO1)
    r = check.req("DELETE", loc, b"", {"Content-Length": "0"})
    assert r.status == 204
    r = check.req("GET", loc)
    assert r.status == 404 and r.code == "BLOB_UPLOAD_UNKNOWN"

    # well-known contents: empty and "{}"
    for data in (b"", b"{}"):
        d = digest_of(data, algo)
        check.push_any(REPO1, d, data)
        check.head_blob(REPO1, d, data)
        check.get_blob(REPO1, d, data)
        check.delete_blob(REPO1, d)


@pytest.mark.parametrize("algo", ALGOS)
def test_blob_push_with_bad_digest(check: Check, algo: str) -> None:
    apis: list[Callable[[str, bytes], None]] = [
        lambda d, b: check.post_only(REPO1, d, b, bad=True),
        lambda d, b: check.post_put(REPO1, d, b, bad=True),
        lambda d, b: check.chunked(REPO1, d, b, bad=True),
        lambda d, b: check.chunked(REPO1, d, b, put_last=True, bad=True),
        lambda d, b: check.stream(REPO1, d, b, bad=True),
    ]
    for push in apis:
        data = os.urandom(CHUNK_MIN * 3 - 5)
        d = digest_of(data, algo)
        push(d, data + b"oh no")
        r = check.req("HEAD", f"/v2/{REPO1}/blobs/{d}")
        assert r.status == 404  # nothing was stored under the claimed digest


@pytest.mark.parametrize("algo", ALGOS)
def test_range_requests(check: Check, algo: str) -> None:
    data = os.urandom(2048)
    d = digest_of(data, algo)
    check.push_any(REPO1, d, data)
    n = len(data)
    cases = [
        ("bytes=500-1499", data[500:1500], "500-1499"),
        ("bytes=500-", data[500:], f"500-{n - 1}"),
        ("bytes=-500", data[n - 500:], f"{n - 500}-{n - 1}"),
        ("bytes=2000-5000", data[2000:], f"2000-{n - 1}"),
    ]
    for rng, body, cr in cases:
        r = check.req("GET", f"/v2/{REPO1}/blobs/{d}", headers={"Range": rng})
        assert r.status == 206, (rng, r.status)
        assert r.body == body
        assert r.headers["Content-Length"] == str(len(body))
        assert r.headers["Content-Range"] in (f"bytes {cr}/{n}", f"bytes {cr}/*")
    for rng in ("bytes=500-0", "bytes=5000-10000"):
        r = check.req("GET", f"/v2/{REPO1}/blobs/{d}", headers={"Range": rng})
        assert r.status == 416, (rng, r.status)
    check.delete_blob(REPO1, d)


# -- data sets: push, list, head, pull, referrers, delete ------------------------------------


@pytest.mark.parametrize("name", list(DATA_SETS))
def test_data_set(check: Check, name: str) -> None:
    ds = DataSet()
    DATA_SETS[name](ds)
    repo = REPO1

    # push: blobs, manifests by digest (children first), then tags
    for d, data in ds.blobs.items():
        check.push_any(repo, d, data)
    pushed_tags: set[str] = set()
    for d in ds.order:
        tags = [t for t, td in ds.tags.items() if td == d] if d in ds.tag_param else []
        check.put_manifest(repo, d, ds.manifests[d], ds.media[d], d, tags,
                           bad=d in ds.bad_digest)
        pushed_tags.update(tags)
    for tag, d in ds.tags.items():
        if tag not in pushed_tags:
            check.put_manifest(repo, tag, ds.manifests[d], ds.media[d], d)
    good = [d for d in ds.order if d not in ds.bad_digest]

    # list: every tag, and "last" skips the first half
    if ds.tags:
        listed, _ = check.tag_list(repo)
        assert set(ds.tags) <= set(listed)
        if len(listed) >= 2:
            srt = sorted(listed)
            last = srt[len(srt) // 2 - 1]
            partial, _ = check.tag_list(repo, f"?last={quote(last)}")
            assert not set(srt[:len(srt) // 2]) & set(partial)
            assert set(srt[len(srt) // 2:]) <= set(partial)

    # head and pull, by tag and by digest; every blob
    for tag, d in ds.tags.items():
        check.manifest_exists(repo, tag, ds.manifests[d], ds.media[d], d)
    for d in good:
        check.manifest_exists(repo, d, ds.manifests[d], ds.media[d], d)
    for bad in ds.bad_digest:
        check.manifest_gone(repo, bad)
    for d, data in ds.blobs.items():
        check.head_blob(repo, d, data)
        check.get_blob(repo, d, data)

    # referrers: all of them, then filtered by each artifactType
    for subject, goals in ds.referrers.items():
        entries, _ = check.referrers(repo, subject)
        for goal in goals:
            assert any(_matches(e, goal) for e in entries), (goal, entries)
        # exactly these, each once
        assert sorted(e["digest"] for e in entries) == sorted(g["digest"] for g in goals)
        for at in {g.get("artifactType") for g in goals if g.get("artifactType")}:
            assert at is not None
            entries, r = check.referrers(repo, subject, at)
            assert r.headers.get("OCI-Filters-Applied") == "artifactType"
            assert sorted(e["digest"] for e in entries) == sorted(
                g["digest"] for g in goals if g.get("artifactType") == at)
            for goal in goals:
                if goal.get("artifactType") == at:
                    assert any(_matches(e, goal) for e in entries), (goal, entries)

    # delete: tags (gone at once), manifests parents first, then blobs
    for tag in ds.tags:
        r = check.req("DELETE", f"/v2/{repo}/manifests/{tag}")
        assert r.status == 202, (tag, r.status, r.body)
        check.manifest_gone(repo, tag)
    for d in reversed(good):
        r = check.req("DELETE", f"/v2/{repo}/manifests/{d}")
        assert r.status == 202, (d, r.status, r.body)
        check.manifest_gone(repo, d)
    for subject in ds.referrers:
        entries, _ = check.referrers(repo, subject)
        assert entries == []
    for d in ds.blobs:
        check.delete_blob(repo, d)


# -- errors ---------------------------------------------------------------------------------


def test_manifest_errors(check: Check) -> None:
    accept = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}
    r = check.req("GET", f"/v2/{REPO1}/manifests/{digest_of(os.urandom(1024))}",
                  headers=accept)
    assert r.status == 404
    ds = DataSet()
    ds.image()
    for d, data in ds.blobs.items():
        check.push_any(REPO1, d, data)
    r = check.req("GET", f"/v2/{REPO1}/manifests/missing-{os.urandom(10).hex()}",
                  headers=accept)
    assert r.status == 404 and r.code == "MANIFEST_UNKNOWN"
    (d,) = ds.order
    r = check.req("PUT", f"/v2/{REPO1}/manifests/sha256:baddigeststring", ds.manifests[d],
                  {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.code == "DIGEST_INVALID", r.body
    r = check.req("GET", f"/v2/{REPO1}/manifests/sha256:baddigeststring", headers=accept)
    assert r.status in (400, 404)
    # a manifest naming blobs the repository lacks
    ds2 = DataSet()
    ds2.image()
    (d2,) = ds2.order
    r = check.req("PUT", f"/v2/{REPO1}/manifests/lacking", ds2.manifests[d2],
                  {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.code == "MANIFEST_BLOB_UNKNOWN"
    # not a manifest at all
    r = check.req("PUT", f"/v2/{REPO1}/manifests/junk", b"blablabla",
                  {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.code == "MANIFEST_INVALID"
    # an invalid tag name
    r = check.req("PUT", f"/v2/{REPO1}/manifests/{'x' * 129}", ds.manifests[d],
                  {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.code == "TAG_INVALID"
    # a name that cannot be a tag is simply not there when read or deleted (PUT says why)
    for method in ("GET", "HEAD", "DELETE"):
        r = check.req(method, f"/v2/{REPO1}/manifests/.INVALID_MANIFEST_NAME", headers=accept)
        assert r.status == 404, (method, r.status)
    # deleting what is not there
    r = check.req("DELETE", f"/v2/{REPO1}/manifests/{digest_of(os.urandom(8))}")
    assert r.status == 404 and r.code == "MANIFEST_UNKNOWN"
    r = check.req("DELETE", f"/v2/{REPO1}/blobs/{digest_of(os.urandom(8))}")
    assert r.status == 404 and r.code == "BLOB_UNKNOWN"
    # the error body shape
    body = r.json()
    assert set(body) == {"errors"} and {"code", "message"} <= set(body["errors"][0])
    for dd in ds.blobs:
        check.delete_blob(REPO1, dd)


def test_upload_errors(check: Check) -> None:
    loc = check.start(REPO1)
    r = check.req("PUT", loc, b"abc", {"Content-Type": OCTET})
    assert r.status == 400 and r.code == "DIGEST_INVALID"  # no ?digest=
    r = check.req("PUT", with_query(loc, digest="sha256:nothex"), b"",
                  {"Content-Length": "0"})
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    r = check.req("GET", f"/v2/{REPO1}/blobs/uploads/{'0' * 8}-0000-4000-8000-{'0' * 12}")
    assert r.status == 404 and r.code == "BLOB_UPLOAD_UNKNOWN"
    r = check.req("GET", "/v2/Bad_Name/tags/list")
    assert r.status == 400 and r.code == "NAME_INVALID"


def test_tag_list_pagination(check: Check) -> None:
    ds = DataSet()
    desc = ds.image()
    for d, data in ds.blobs.items():
        check.push_any(REPO1, d, data)
    body = ds.manifests[desc["digest"]]
    names = [f"t{i:02d}" for i in range(10)]
    for t in names:
        check.put_manifest(REPO1, t, body, OCI_MANIFEST, desc["digest"])
    listed, r = check.tag_list(REPO1)
    assert listed == names and "Link" not in r.headers  # lexical order, all at once
    page, r = check.tag_list(REPO1, "?n=4")
    assert page == names[:4]
    link = r.headers["Link"]
    assert 'rel="next"' in link
    nxt = link[link.index("<") + 1:link.index(">")]
    page2, _ = check.tag_list(REPO1, "?" + urlsplit(nxt).query)
    assert page2 == names[4:8]
    page3, r = check.tag_list(REPO1, f"?n=4&last={names[7]}")
    assert page3 == names[8:] and "Link" not in r.headers
    empty, _ = check.tag_list(REPO1, "?n=0")
    assert empty == []
