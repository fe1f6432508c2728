from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.oci import reference
from dockyard.oci.digest import Digest
from dockyard.oci.identity import chain_ids

HEX = "a" * 64


@pytest.mark.parametrize(
    ("given", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("me/app", "docker.io/me/app:latest", "me/app:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
        ("localhost/app:v1", "localhost/app:v1", "localhost/app:v1"),
        ("127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app:1"),
        (f"busybox@sha256:{HEX}", f"docker.io/library/busybox@sha256:{HEX}", f"busybox@sha256:{HEX}"),
        ("a/b/c__d-e.f:tag_1.2-x", "docker.io/a/b/c__d-e.f:tag_1.2-x", "a/b/c__d-e.f:tag_1.2-x"),
    ],
)
def test_normalize_and_familiar(given: str, full: str, familiar: str) -> None:
    ref = reference.parse_normalized(given)
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize(
    "bad",
    ["", "Busybox", "busybox:", ":tag", "a//b", "-abc", "busybox@sha256:abc", HEX, "a:b:c"],
)
def test_invalid_references_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        reference.parse(bad)


def test_uppercase_message_names_repository() -> None:
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        reference.parse("Busybox")


def test_with_tag_validates() -> None:
    ref = reference.parse("busybox")
    assert ref.with_tag("1").familiar() == "busybox:1"
    with pytest.raises(InvalidArgument):
        ref.with_tag("bad tag")


def test_digest_parse_and_short() -> None:
    d = Digest.parse("sha256:" + HEX)
    assert d.short == "a" * 12
    with pytest.raises(InvalidArgument):
        Digest.parse("sha256:xyz")


def test_chain_ids_follow_the_spec() -> None:
    import hashlib

    a, b = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    ids = chain_ids([a, b])
    assert ids[0] == a
    assert ids[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([]) == []
