"""Fast unit tests of the registry's pure logic (no server process)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import Digest
from dockyard.registry import tokens
from dockyard.registry.access import Scope, granted
from dockyard.registry.blobstore import BlobStore
from dockyard.registry.config import AccessRule, build_config
from dockyard.registry.errcodes import (
    BlobUploadInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    NameInvalid,
    RangeInvalid,
    TagInvalid,
    Unauthorized,
    classify,
)
from dockyard.registry.layout import Layout
from dockyard.registry.manifest import OCI_MANIFEST, parse_manifest
from dockyard.registry.names import check_name, check_tag
from dockyard.registry.repository import Repositories
from dockyard.registry.uploads import Uploads, parse_content_range


@pytest.mark.parametrize("name", ["a", "library/busybox", "a-b/c_d/e.f", "a__b", "a--b", "x9/y"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "a/", "/a", "a//b", "-a", "a.", "a___b", "a/_b",
                                  "a" * 256])
def test_invalid_names(name: str) -> None:
    with pytest.raises(NameInvalid):
        check_name(name)


def test_tags() -> None:
    assert check_tag("v1.0_rc-1") == "v1.0_rc-1"
    for bad in ("-x", ".x", "a" * 129, "a/b", ""):
        with pytest.raises(TagInvalid):
            check_tag(bad)


def test_error_classification() -> None:
    assert classify(NameInvalid("x"))[:2] == ("NAME_INVALID", 400)
    assert classify(InvalidArgument("x"))[1] == 400
    err = Unauthorized("x", headers={"WWW-Authenticate": "Basic"})
    assert classify(err)[3] == {"WWW-Authenticate": "Basic"}


def _m(**kw: object) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/x.cfg", "digest": "sha256:" + "a" * 64,
                      "size": 1}, "layers": []}
    doc.update(kw)
    return json.dumps(doc).encode()


def test_parse_manifest_fields() -> None:
    pm = parse_manifest(_m(annotations={"a": "b"}), OCI_MANIFEST)
    assert pm.artifact_type == "application/x.cfg" and pm.annotations == {"a": "b"}
    assert [str(b.digest) for b in pm.blobs] == ["sha256:" + "a" * 64]
    foreign = {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
               "digest": "sha256:" + "b" * 64, "size": 3, "urls": ["https://x"]}
    assert len(parse_manifest(_m(layers=[foreign]), None).blobs) == 1  # config only
    nondist = {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
               "digest": "sha256:" + "c" * 64, "size": 3}
    assert len(parse_manifest(_m(layers=[nondist]), None).blobs) == 1
    with pytest.raises(ManifestInvalid, match="layers\\[0\\].size"):
        parse_manifest(_m(layers=[{"digest": "sha256:" + "b" * 64, "size": -1}]), None)
    with pytest.raises(ManifestInvalid, match="subject"):
        parse_manifest(_m(subject={"digest": "x", "size": 1}), None)
    with pytest.raises(ManifestInvalid):
        parse_manifest(b"[]", None)


def test_tokens_roundtrip_and_rejections() -> None:
    s = Scope.parse("repository:a/b:pull,push")
    assert s == Scope("repository", "a/b", ("pull", "push")) and str(s) == "repository:a/b:pull,push"
    assert Scope.parse("repository:host:5000/a:pull").name == "host:5000/a"
    t = tokens.issue(b"k", "iss", "svc", "alice", [s], 60, now=1000)
    claims = tokens.verify(t, b"k", "iss", "svc", now=1010)
    assert claims["sub"] == "alice" and tokens.token_allows(claims, s)
    assert not tokens.token_allows(claims, Scope("repository", "a/b", ("delete",)))
    assert not tokens.token_allows(claims, Scope("repository", "a/c", ("pull",)))
    for args in ((b"other", "iss", "svc", 1010), (b"k", "iss", "other", 1010),
                 (b"k", "iss", "svc", 5000)):
        with pytest.raises(Unauthorized):
            tokens.verify(t, args[0], args[1], args[2], now=args[3])


def test_access_rules() -> None:
    rules = (AccessRule("alice", "*", ("*",)), AccessRule("*", "pub/*", ("pull",)),
             AccessRule("anonymous", "open/*", ("pull",)))
    want = Scope("repository", "team/x", ("pull", "push"))
    assert granted(rules, "alice", want) == ("pull", "push")
    assert granted(rules, "bob", want) == ()
    assert granted(rules, "bob", Scope("repository", "pub/x", ("pull", "push"))) == ("pull",)
    assert granted(rules, "anonymous", Scope("repository", "pub/x", ("pull",))) == ()
    assert granted(rules, "anonymous", Scope("repository", "open/x", ("pull",))) == ("pull",)
    assert granted((), "bob", want) == ("pull", "push")
    assert granted((), "anonymous", want) == ()


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="root"):
        build_config({}, {})
    with pytest.raises(InvalidArgument, match="addr"):
        build_config({"root": "/x", "addr": "nope"}, {})
    with pytest.raises(InvalidArgument, match="actions"):
        build_config({"root": "/x", "auth": {"access": [{"account": "a", "actions": ["fly"]}]}},
                     {})
    with pytest.raises(InvalidArgument, match="remoteurl"):
        build_config({"root": "/x"}, {"proxy_remote_url": "ftp://x"})
    cfg = build_config({"root": "/x", "addr": "0.0.0.0:6000"}, {"addr": "127.0.0.1:7000"})
    assert (cfg.host, cfg.port) == ("127.0.0.1", 7000)


def test_content_range() -> None:
    assert parse_content_range("0-99") == (0, 99)
    assert parse_content_range("bytes 5-9/10") == (5, 9)
    for bad in ("a-b", "9-5", "", "-5"):
        with pytest.raises(RangeInvalid):
            parse_content_range(bad)


async def _chunks(*parts: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for p in parts:
        yield p
    if fail:
        raise ConnectionResetError("client went away")


def test_failed_append_is_undone(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.ensure()
    ups = Uploads(layout, BlobStore(layout))

    async def go() -> None:
        st = ups.start("r")
        await ups.append("r", st.uuid, _chunks(b"abc"), None, 3)
        with pytest.raises(ConnectionResetError):
            await ups.append("r", st.uuid, _chunks(b"def", fail=True), None, None)
        assert ups.status("r", st.uuid).size == 3
        with pytest.raises(BlobUploadInvalid):  # short body vs Content-Length
            await ups.append("r", st.uuid, _chunks(b"de"), None, 3)
        await ups.append("r", st.uuid, _chunks(b"def"), "3-5", 3)
        size = await ups.finish("r", st.uuid, Digest.of_bytes(b"abcdef"), _chunks(), None, 0)
        assert size == 6
        assert BlobStore(layout).read(Digest.of_bytes(b"abcdef")) == b"abcdef"
        assert not layout.upload("r", st.uuid).exists()

    asyncio.run(go())


def test_put_manifest_checks_blobs(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.ensure()
    blobs = BlobStore(layout)
    repos = Repositories(layout, blobs)
    body = _m()
    with pytest.raises(ManifestBlobUnknown):
        repos.put_manifest("r", body, Digest.of_bytes(body), parse_manifest(body, None), ["t"])
    assert not layout.repo("r").exists()
