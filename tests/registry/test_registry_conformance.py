"""Flows modelled on the OCI conformance suite's data sets (empty blob, nested index, index
with subject, artifacts, data field, custom fields, subject pushed before its target)."""

from __future__ import annotations

import base64
import json

from regtest_support import OCI_INDEX, OCI_MANIFEST, Reg, image_manifest, sha256

EMPTY_JSON = b"{}"
EMPTY_CFG = "application/vnd.oci.empty.v1+json"


def _put(reg: Reg, name: str, ref: str, body: bytes, mt: str) -> None:
    r = reg.req("PUT", f"/v2/{name}/manifests/{ref}", body, {"Content-Type": mt})
    assert r.status == 201, r.body


def test_empty_blob_monolithic_and_single_post(reg: Reg) -> None:
    d = sha256(b"")
    loc = reg.req("POST", "/v2/c/r1/blobs/uploads/").headers["Location"]
    r = reg.req("PUT", f"{loc}?digest={d}", b"", {"Content-Length": "0"})
    assert r.status == 201
    r = reg.req("HEAD", f"/v2/c/r1/blobs/{d}")
    assert r.status == 200 and r.headers["Content-Length"] == "0"
    r = reg.req("POST", f"/v2/c/r2/blobs/uploads/?digest={d}", b"")
    assert r.status == 201
    assert reg.req("GET", f"/v2/c/r2/blobs/{d}").body == b""


def test_nested_index_artifact_data_field_and_custom_fields(reg: Reg) -> None:
    name = "c/r1"
    cd = reg.push_blob(name, EMPTY_JSON)
    # artifact: empty config, artifactType, a layer carried inline in "data" too
    ld = reg.push_blob(name, b"artifact payload")
    art = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.test",
        "config": {"mediaType": EMPTY_CFG, "digest": cd, "size": 2,
                   "data": base64.b64encode(EMPTY_JSON).decode()},
        "layers": [{"mediaType": "application/octet-stream", "digest": ld, "size": 16}],
        "x-custom": {"anything": [1, 2, 3]}}).encode()
    _put(reg, name, sha256(art), art, OCI_MANIFEST)
    # image with no layers
    nolayers = image_manifest(cd, 2, [])
    _put(reg, name, "nolayers", nolayers, OCI_MANIFEST)
    inner = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(nolayers), "size": len(nolayers)}]}).encode()
    _put(reg, name, sha256(inner), inner, OCI_INDEX)
    outer = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, "digest": sha256(inner), "size": len(inner)},
        {"mediaType": OCI_MANIFEST, "digest": sha256(art), "size": len(art)}]}).encode()
    _put(reg, name, "nested", outer, OCI_INDEX)
    r = reg.req("GET", f"/v2/{name}/manifests/nested", headers={"Accept": OCI_INDEX})
    assert r.body == outer and r.headers["Content-Type"] == OCI_INDEX
    r = reg.req("GET", f"/v2/{name}/manifests/{sha256(art)}", headers={"Accept": OCI_MANIFEST})
    assert r.body == art


def test_subject_missing_then_pushed(reg: Reg) -> None:
    name = "c/r1"
    cd = reg.push_blob(name, EMPTY_JSON)
    subject = image_manifest(cd, 2, [], extra={"annotations": {"which": "subject"}})
    sd = sha256(subject)
    ref = image_manifest(cd, 2, [], extra={
        "artifactType": "application/x.sig",
        "subject": {"mediaType": OCI_MANIFEST, "digest": sd, "size": len(subject)}})
    r = reg.req("PUT", f"/v2/{name}/manifests/{sha256(ref)}", ref, {"Content-Type": OCI_MANIFEST})
    assert r.status == 201 and r.headers["OCI-Subject"] == sd
    # an index with a subject and no artifactType: artifactType omitted in the listing
    idx = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
                      "subject": {"mediaType": OCI_MANIFEST, "digest": sd,
                                  "size": len(subject)},
                      "annotations": {"k": "v"}}).encode()
    _put(reg, name, sha256(idx), idx, OCI_INDEX)
    listing = reg.req("GET", f"/v2/{name}/referrers/{sd}").json()["manifests"]
    by = {e["digest"]: e for e in listing}
    assert by[sha256(ref)]["artifactType"] == "application/x.sig"
    assert "artifactType" not in by[sha256(idx)] and by[sha256(idx)]["annotations"] == {"k": "v"}
    assert by[sha256(idx)]["mediaType"] == OCI_INDEX and by[sha256(idx)]["size"] == len(idx)
    _put(reg, name, "subject", subject, OCI_MANIFEST)
    assert len(reg.req("GET", f"/v2/{name}/referrers/{sd}").json()["manifests"]) == 2
