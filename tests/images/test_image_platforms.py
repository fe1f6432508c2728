from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.images.platforms import host_platform, matches, parse_platform, select_manifest


def test_parse_and_normalize() -> None:
    assert parse_platform("linux/x86_64") == ("linux", "amd64", "")
    assert parse_platform("linux/arm64/v8") == ("linux", "arm64", "")
    assert parse_platform("linux/arm") == ("linux", "arm", "v7")
    assert parse_platform(None) == host_platform()
    with pytest.raises(InvalidArgument, match="invalid platform"):
        parse_platform("linux//")


def test_select_manifest_skips_attestations_and_other_platforms() -> None:
    index = {"manifests": [
        {"digest": "a", "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "att", "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        {"digest": "b", "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    assert select_manifest(index, "linux/amd64")["digest"] == "b"
    assert select_manifest(index, "linux/aarch64")["digest"] == "a"
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        select_manifest(index, "linux/s390x")
    assert matches(None, ("linux", "amd64", ""))
