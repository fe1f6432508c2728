"""docker.io pulls through --registry-mirror; zstd and uncompressed layers survive a round trip."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from dockyard.distribution.pull import pull
from dockyard.distribution.push import push
from dockyard.distribution.service import Distribution
from dockyard.errors import Unavailable
from dockyard.images.service import ImageService
from dockyard.oci import mediatypes as mt

pytestmark = pytest.mark.root


def test_docker_io_pull_through_mirror(registry: Callable[..., str],
                                       store_factory: Callable[[str], ImageService],
                                       busybox_image: Callable[..., str]) -> None:
    host = registry()
    a = store_factory("a")
    image_id = busybox_image(a)
    a.tag(image_id, f"{host}/library/busybox", "latest")
    [res] = asyncio.run(push(Distribution(), a, f"{host}/library/busybox:latest"))

    b = store_factory("b")
    mirrored = Distribution(mirrors=(f"http://{host}",))
    pr = asyncio.run(pull(mirrored, b, "busybox"))
    assert pr.image_id == image_id and pr.digest == res.digest
    img = b.get("busybox:latest")
    assert img.repo_tags == ("busybox:latest",)
    assert img.repo_digests == (f"busybox@{res.digest}",)

    # not on the mirror: docker.io is tried next, which is unreachable here
    with pytest.raises(Unavailable, match="registry-1.docker.io"):
        asyncio.run(pull(mirrored, b, "alpine:3"))
    # no mirror at all: the same clear error
    with pytest.raises(Unavailable, match=r'Get "https://registry-1.docker.io/v2/"'):
        asyncio.run(pull(Distribution(), b, "busybox:1.36"))
    assert [i.id for i in b.list()] == [image_id]


@pytest.mark.parametrize("compression,media_type", [("zstd", mt.OCI_LAYER_ZSTD), ("none", mt.OCI_LAYER)])
def test_layer_compressions_round_trip(compression: str, media_type: str, tmp_path: Path,
                                       busybox_rootfs: Path, registry: Callable[..., str],
                                       store_factory: Callable[[str], ImageService]) -> None:
    host = registry()
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(busybox_rootfs), "-cf", str(tar), "."], check=True)
    if compression == "zstd":
        data = zstandard.ZstdCompressor().compress(tar.read_bytes())
        tar.write_bytes(data)
    a = store_factory("a")
    with open(tar, "rb") as f:
        image_id = a.import_tarball(f, repo_tag=f"{host}/c/{compression}:1")
    assert a.get(image_id).layer_blobs[0].media_type == media_type
    [res] = asyncio.run(push(Distribution(), a, f"{host}/c/{compression}:1"))
    b = store_factory("b")
    pr = asyncio.run(pull(Distribution(), b, f"{host}/c/{compression}:1"))
    assert pr.image_id == image_id and pr.digest == res.digest
    layer = b.get(image_id).layer_blobs[0]
    assert layer.media_type == media_type
    assert b.content.read(layer.digest) == a.content.read(layer.digest)  # sent as stored
