"""Manifest, tag, catalog and referrers endpoints against a real registry process."""

from __future__ import annotations

import json

from regtest_support import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Reg,
    image_manifest,
    sha256,
    sha512,
)

ZERO = "sha256:" + "0" * 64


def test_push_pull_by_tag_and_digest(reg: Reg) -> None:
    d, m = reg.push_image("team/app", "v1")
    for ref in ("v1", d):
        r = reg.req("GET", f"/v2/team/app/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status == 200 and r.body == m  # exact bytes
        assert r.headers["Docker-Content-Digest"] == d
        assert r.headers["Content-Type"] == OCI_MANIFEST
        r = reg.req("HEAD", f"/v2/team/app/manifests/{ref}")
        assert r.status == 200 and r.body == b""
        assert r.headers["Content-Length"] == str(len(m))
        assert r.headers["Docker-Content-Digest"] == d


def test_put_response_headers(reg: Reg) -> None:
    cd = reg.push_blob("r", b"{}")
    m = image_manifest(cd, 2, [])
    r = reg.req("PUT", "/v2/r/manifests/latest", m, {"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    assert r.headers["Docker-Content-Digest"] == sha256(m)
    assert r.headers["Location"] == f"/v2/r/manifests/{sha256(m)}"


def test_docker_schema2_and_list_negotiation(reg: Reg) -> None:
    amd, _ = reg.push_image("multi", None, b"amd", media_type=DOCKER_MANIFEST)
    arm, _ = reg.push_image("multi", None, b"arm", media_type=DOCKER_MANIFEST)
    lst = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": arm, "size": 1,
         "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": DOCKER_MANIFEST, "digest": amd, "size": 1,
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    r = reg.req("PUT", "/v2/multi/manifests/latest", lst, {"Content-Type": DOCKER_LIST})
    assert r.status == 201
    r = reg.req("GET", "/v2/multi/manifests/latest",
                headers={"Accept": f"{DOCKER_MANIFEST}, {DOCKER_LIST}"})
    assert r.body == lst and r.headers["Content-Type"] == DOCKER_LIST
    # a client that does not take lists gets the linux/amd64 image
    r = reg.req("GET", "/v2/multi/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
    assert r.headers["Docker-Content-Digest"] == amd
    assert r.headers["Content-Type"] == DOCKER_MANIFEST


def test_oci_index_requires_children(reg: Reg) -> None:
    idx = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": ZERO, "size": 10}]}).encode()
    r = reg.req("PUT", "/v2/idx/manifests/latest", idx, {"Content-Type": OCI_INDEX})
    assert r.status == 400 and r.code == "MANIFEST_BLOB_UNKNOWN"
    d, _ = reg.push_image("idx", None)
    idx = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": 10}]}).encode()
    r = reg.req("PUT", "/v2/idx/manifests/latest", idx, {"Content-Type": OCI_INDEX})
    assert r.status == 201


def test_manifest_errors_leave_nothing(reg: Reg) -> None:
    cd = reg.push_blob("err", b"{}")
    # layer missing
    m = image_manifest(cd, 2, [(ZERO, 5)])
    r = reg.req("PUT", "/v2/err/manifests/t", m, {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.code == "MANIFEST_BLOB_UNKNOWN"
    assert ZERO in json.dumps(r.json()["errors"][0]["detail"])
    # invalid JSON
    r = reg.req("PUT", "/v2/err/manifests/t", b"{not json", {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.code == "MANIFEST_INVALID"
    # schema 1 / wrong shapes
    r = reg.req("PUT", "/v2/err/manifests/t", b'{"schemaVersion": 1}')
    assert r.status == 400 and r.code == "MANIFEST_INVALID"
    bad = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"digest": "nope", "size": 1}, "layers": []}).encode()
    r = reg.req("PUT", "/v2/err/manifests/t", bad, {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.code == "MANIFEST_INVALID" and "config.digest" in r.json()[
        "errors"][0]["message"]
    # mediaType vs Content-Type
    good = image_manifest(cd, 2, [])
    r = reg.req("PUT", "/v2/err/manifests/t", good, {"Content-Type": OCI_INDEX})
    assert r.status == 400 and r.code == "MANIFEST_INVALID"
    # digest reference that doesn't match the body
    r = reg.req("PUT", f"/v2/err/manifests/{ZERO}", good, {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    # too large
    huge = b'{"schemaVersion": 2, "x": "' + b"a" * (4 * 1024 * 1024) + b'"}'
    r = reg.req("PUT", "/v2/err/manifests/t", huge, {"Content-Type": OCI_MANIFEST})
    assert r.status == 413 and r.code == "MANIFEST_INVALID"
    # bad tag and bad name
    r = reg.req("PUT", "/v2/err/manifests/-bad", good, {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.code == "TAG_INVALID"
    r = reg.req("PUT", "/v2/Err/manifests/t", good, {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.code == "NAME_INVALID"
    r = reg.req("GET", "/v2/err/tags/list")
    assert r.json()["tags"] == []
    assert not (reg.root / "repositories" / "err" / "_manifests").exists()


def test_unknown_manifest_and_repo(reg: Reg) -> None:
    r = reg.req("GET", "/v2/nope/manifests/latest")
    assert r.status == 404 and r.code == "NAME_UNKNOWN"
    r = reg.req("GET", "/v2/nope/tags/list")
    assert r.status == 404 and r.code == "NAME_UNKNOWN"
    reg.push_image("yes", "v1")
    r = reg.req("GET", "/v2/yes/manifests/v2")
    assert r.status == 404 and r.code == "MANIFEST_UNKNOWN"
    r = reg.req("GET", f"/v2/yes/manifests/{ZERO}")
    assert r.status == 404 and r.code == "MANIFEST_UNKNOWN"
    r = reg.req("HEAD", "/v2/yes/manifests/v2")
    assert r.status == 404


def test_delete_tag_and_manifest(reg: Reg) -> None:
    d, _ = reg.push_image("d", "a")
    r = reg.req("PUT", "/v2/d/manifests/b", reg.req("GET", "/v2/d/manifests/a").body,
                {"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    assert reg.req("DELETE", "/v2/d/manifests/a").status == 202
    assert reg.req("GET", "/v2/d/manifests/a").status == 404
    assert reg.req("GET", "/v2/d/manifests/b").status == 200
    assert reg.req("DELETE", f"/v2/d/manifests/{d}").status == 202
    assert reg.req("GET", f"/v2/d/manifests/{d}").status == 404
    assert reg.req("GET", "/v2/d/manifests/b").status == 404  # tag went with it
    r = reg.req("DELETE", f"/v2/d/manifests/{d}")
    assert r.status == 404 and r.code == "MANIFEST_UNKNOWN"


def test_push_by_digest_with_tags(reg: Reg) -> None:
    cd = reg.push_blob("pt", b"{}")
    m = image_manifest(cd, 2, [])
    r = reg.req("PUT", f"/v2/pt/manifests/{sha256(m)}?tag=1.0&tag=latest", m,
                {"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    assert sorted(r.headers.get_all("OCI-Tag")) == ["1.0", "latest"]
    assert reg.req("GET", "/v2/pt/tags/list").json()["tags"] == ["1.0", "latest"]


def test_sha512_manifest(reg: Reg) -> None:
    cd = reg.push_blob("m5", b"{}")
    m = image_manifest(cd, 2, [])
    d = sha512(m)
    r = reg.req("PUT", f"/v2/m5/manifests/{d}", m, {"Content-Type": OCI_MANIFEST})
    assert r.status == 201 and r.headers["Docker-Content-Digest"] == d
    r = reg.req("GET", f"/v2/m5/manifests/{d}")
    assert r.body == m and r.headers["Docker-Content-Digest"] == d


def test_tags_pagination(reg: Reg) -> None:
    cd = reg.push_blob("pg", b"{}")
    m = image_manifest(cd, 2, [])
    tags = ["a", "B", "c", "d1", "d2"]
    for t in tags:
        assert reg.req("PUT", f"/v2/pg/manifests/{t}", m,
                       {"Content-Type": OCI_MANIFEST}).status == 201
    assert reg.req("GET", "/v2/pg/tags/list").json() == {"name": "pg", "tags": sorted(tags)}
    r = reg.req("GET", "/v2/pg/tags/list?n=2")
    assert r.json()["tags"] == ["B", "a"]
    assert r.headers["Link"] == '</v2/pg/tags/list?n=2&last=a>; rel="next"'
    r = reg.req("GET", "/v2/pg/tags/list?n=2&last=a")
    assert r.json()["tags"] == ["c", "d1"]
    r = reg.req("GET", "/v2/pg/tags/list?n=2&last=d1")
    assert r.json()["tags"] == ["d2"] and "Link" not in r.headers
    r = reg.req("GET", "/v2/pg/tags/list?n=0")
    assert r.json()["tags"] == [] and "Link" not in r.headers
    r = reg.req("GET", "/v2/pg/tags/list?last=c")
    assert r.json()["tags"] == ["d1", "d2"]
    assert reg.req("GET", "/v2/pg/tags/list?n=x").status == 400


def test_catalog_pagination(reg: Reg) -> None:
    for n in ("b/x", "a", "c"):
        reg.push_blob(n, b"x")
    assert reg.req("GET", "/v2/_catalog").json() == {"repositories": ["a", "b/x", "c"]}
    r = reg.req("GET", "/v2/_catalog?n=1")
    assert r.json()["repositories"] == ["a"]
    assert r.headers["Link"] == '</v2/_catalog?n=1&last=a>; rel="next"'
    r = reg.req("GET", "/v2/_catalog?n=5&last=a")
    assert r.json()["repositories"] == ["b/x", "c"] and "Link" not in r.headers


def test_referrers_and_subject(reg: Reg) -> None:
    subject, sm = reg.push_image("ref", "v1")
    # referrers may be pushed before their subject exists: subject need not exist
    cd = reg.push_blob("ref", b"{}")
    made = []
    for at, ann in (("application/vnd.example.sbom", {"k": "1"}),
                    ("application/vnd.example.sig", {"k": "2"})):
        m = image_manifest(cd, 2, [], extra={
            "artifactType": at, "annotations": ann,
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(sm)}})
        r = reg.req("PUT", f"/v2/ref/manifests/{sha256(m)}", m, {"Content-Type": OCI_MANIFEST})
        assert r.status == 201 and r.headers["OCI-Subject"] == subject
        made.append((sha256(m), at, ann))
    # a referrer without artifactType reports the config media type
    m = image_manifest(cd, 2, [], extra={
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(sm)}})
    assert reg.req("PUT", f"/v2/ref/manifests/{sha256(m)}", m,
                   {"Content-Type": OCI_MANIFEST}).status == 201
    r = reg.req("GET", f"/v2/ref/referrers/{subject}")
    assert r.status == 200 and r.headers["Content-Type"] == OCI_INDEX
    idx = r.json()
    assert idx["mediaType"] == OCI_INDEX and idx["schemaVersion"] == 2
    by_digest = {e["digest"]: e for e in idx["manifests"]}
    assert len(by_digest) == 3
    for d, at, ann in made:
        assert by_digest[d]["artifactType"] == at and by_digest[d]["annotations"] == ann
    assert by_digest[sha256(m)]["artifactType"] == OCI_CONFIG
    r = reg.req("GET", f"/v2/ref/referrers/{subject}?artifactType=application/vnd.example.sig")
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [e["digest"] for e in r.json()["manifests"]] == [made[1][0]]
    # deleting a referrer removes it from the list
    assert reg.req("DELETE", f"/v2/ref/manifests/{made[0][0]}").status == 202
    r = reg.req("GET", f"/v2/ref/referrers/{subject}")
    assert made[0][0] not in [e["digest"] for e in r.json()["manifests"]]
    # no referrers: empty index, not 404; bad digest: 400
    r = reg.req("GET", f"/v2/ref/referrers/{ZERO}")
    assert r.status == 200 and r.json()["manifests"] == []
    r = reg.req("GET", "/v2/ref/referrers/sha256:xyz")
    assert r.status == 400 and r.code == "DIGEST_INVALID"


def test_unknown_endpoint_and_method(reg: Reg) -> None:
    assert reg.req("GET", "/v2/x/unknown/thing").status == 404
    r = reg.req("POST", "/v2/x/manifests/latest")
    assert r.status == 405 and r.code == "UNSUPPORTED"
