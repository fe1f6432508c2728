"""Push to and pull from a real ``dockyard registry serve``: digests, progress, platforms."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import Callable
from typing import Any

import pytest

from dockyard.distribution import progress as pg
from dockyard.distribution.auth import ANONYMOUS
from dockyard.distribution.endpoints import Endpoint
from dockyard.distribution.pull import pull
from dockyard.distribution.push import push
from dockyard.distribution.service import Distribution
from dockyard.errors import NotFound
from dockyard.images.platforms import host_platform
from dockyard.images.service import ImageService
from dockyard.oci import mediatypes as mt

pytestmark = pytest.mark.root


class Recorder:
    def __init__(self) -> None:
        self.messages: list[pg.Message] = []

    async def __call__(self, m: pg.Message) -> None:
        json.dumps(m)  # every message must be JSON
        self.messages.append(m)

    def statuses(self) -> list[str]:
        return [m.get("status", "") for m in self.messages]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_push_wipe_pull_same_digest(registry: Callable[..., str], store_factory: Callable[[str], ImageService],
                                    busybox_image: Callable[..., str]) -> None:
    host = registry()
    a = store_factory("a")
    image_id = busybox_image(a)
    a.tag("busybox:latest", f"{host}/team/app", "1")
    dist = Distribution()
    rec = Recorder()
    [res] = run(push(dist, a, f"{host}/team/app:1", emit=rec))
    assert rec.messages[0] == {"status": f"The push refers to repository [{host}/team/app]"}
    diff_short = pg.short_id(a.get(image_id).diff_ids[0])
    assert {"status": "Preparing", "progressDetail": {}, "id": diff_short} in rec.messages
    assert {"status": "Pushed", "progressDetail": {}, "id": diff_short} in rec.messages
    assert any(m.get("status") == "Pushing" and m["progressDetail"]["current"] > 0 for m in rec.messages)
    manifest, _ = a.manifest(image_id)
    assert res.size == len(manifest)
    assert rec.messages[-2] == {"status": f"1: digest: {res.digest} size: {len(manifest)}"}
    assert rec.messages[-1] == {"progressDetail": {}, "aux": {"Tag": "1", "Digest": res.digest, "Size": len(manifest)}}
    assert f"{host}/team/app@{res.digest}" in a.get(image_id).repo_digests

    # a second push finds every layer there
    rec2 = Recorder()
    run(push(dist, a, f"{host}/team/app:1", emit=rec2))
    assert {"status": "Layer already exists", "progressDetail": {}, "id": diff_short} in rec2.messages

    # another repository on the same registry: the layer is mounted, not sent again
    a.tag(image_id, f"{host}/other/app", "2")
    rec3 = Recorder()
    run(push(dist, a, f"{host}/other/app:2", emit=rec3))
    assert {"status": "Mounted from team/app", "progressDetail": {}, "id": diff_short} in rec3.messages

    # a fresh store pulls it back: same image id and manifest digest
    b = store_factory("b")
    rec4 = Recorder()
    pr = run(pull(dist, b, f"{host}/team/app:1", emit=rec4))
    assert pr.digest == res.digest and pr.image_id == image_id and not pr.up_to_date
    layer_short = pg.short_id(a.get(image_id).layer_blobs[0].digest)
    st = rec4.statuses()
    assert rec4.messages[0] == {"status": "Pulling from team/app", "id": "1"}
    for s in ("Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete",
              "Extracting", "Pull complete"):
        assert s in st, s
    assert all(m["id"] == layer_short for m in rec4.messages[1:-2])
    assert st[-2:] == [f"Digest: {res.digest}", f"Status: Downloaded newer image for {host}/team/app:1"]
    img = b.get(f"{host}/team/app:1")
    assert img.manifest_digest == a.get(image_id).manifest_digest
    assert img.repo_digests == (f"{host}/team/app@{res.digest}",)

    # pulled again: nothing downloaded
    rec5 = Recorder()
    pr2 = run(pull(dist, b, f"{host}/team/app:1", emit=rec5))
    assert pr2.up_to_date
    # the image is here: no layer lines at all, as dockerd 20.10 prints it
    assert rec5.statuses() == ["Pulling from team/app", f"Digest: {res.digest}",
                               f"Status: Image is up to date for {host}/team/app:1"]

    # by digest, into a third store that has the layer blob but not the image: "Already exists"
    c = store_factory("c")
    layer_digest = a.get(image_id).layer_blobs[0].digest
    c.content.put(a.content.read(layer_digest), expected_digest=layer_digest)
    rec6 = Recorder()
    pr3 = run(pull(dist, c, f"{host}/team/app@{res.digest}", emit=rec6))
    assert pr3.image_id == image_id
    # dockerd 20.10 names a digest pull's first line by the whole (familiar) reference
    assert rec6.messages[0] == {"status": "Pulling from team/app", "id": f"{host}/team/app@{res.digest}"}
    assert {"status": "Already exists", "progressDetail": {}, "id": layer_short} in rec6.messages
    assert "Downloading" not in rec6.statuses()
    assert c.get(f"{host}/team/app@{res.digest}").repo_tags == ()

    # unknown tag: docker's message, nothing recorded
    with pytest.raises(NotFound, match=r"manifest for .*/team/app:nope not found: manifest unknown"):
        run(pull(dist, c, f"{host}/team/app:nope"))
    # unknown repository (NAME_UNKNOWN): dockerd's other wording
    with pytest.raises(NotFound, match=rf"^repository {host}/no/such not found: name unknown: "):
        run(pull(dist, c, f"{host}/no/such:1"))




def test_index_picks_host_platform(registry: Callable[..., str], store_factory: Callable[[str], ImageService],
                                   busybox_image: Callable[..., str]) -> None:
    host = registry()
    a = store_factory("a")
    image_id = busybox_image(a)
    a.tag(image_id, f"{host}/multi/app", "build")
    dist = Distribution()
    [res] = run(push(dist, a, f"{host}/multi/app:build"))
    manifest, media_type = a.manifest(image_id)
    # a second platform: the same layer, a config that says arm64 (not the host's)
    _, harch, _ = host_platform()
    other_arch = "arm64" if harch != "arm64" else "amd64"
    cfg = dict(a.config_of(image_id))
    cfg["architecture"] = other_arch
    cfg_bytes = json.dumps(cfg).encode()
    man = json.loads(manifest)

    async def build() -> str:
        async with dist.session() as s:
            rc = await dist.open_repo(s, Endpoint(f"http://{host}", tls_verify=False), "multi/app",
                                      creds=ANONYMOUS, actions="pull,push")
            from dockyard.distribution.client import sha256
            d = sha256(cfg_bytes)
            loc = await rc.start_upload()
            assert loc is not None
            resp = await rc.request("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={d}", data=cfg_bytes)
            async with resp:
                assert resp.status == 201
            man["config"] = {"mediaType": mt.OCI_CONFIG, "digest": d, "size": len(cfg_bytes)}
            other = json.dumps(man).encode()
            other_digest = await rc.put_manifest(sha256(other), other, media_type)
            index = json.dumps({
                "schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                "manifests": [
                    {"mediaType": media_type, "digest": other_digest, "size": len(other),
                     "platform": {"os": "linux", "architecture": other_arch}},
                    {"mediaType": media_type, "digest": res.digest, "size": len(manifest),
                     "platform": {"os": "linux", "architecture": harch}},
                ],
            }).encode()
            return await rc.put_manifest("multi", index, mt.OCI_INDEX)

    index_digest = run(build())
    b = store_factory("b")
    pr = run(pull(dist, b, f"{host}/multi/app:multi"))
    assert pr.image_id == image_id  # the host's entry, though listed second
    assert pr.digest == index_digest  # RepoDigests carry the index digest, as docker's
    assert b.get(pr.image_id).repo_digests == (f"{host}/multi/app@{index_digest}",)
    pr2 = run(pull(dist, b, f"{host}/multi/app:multi", platform=f"linux/{other_arch}"))
    assert pr2.image_id != image_id
    assert b.get(f"{host}/multi/app:multi").config["architecture"] == other_arch
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        run(pull(dist, b, f"{host}/multi/app:multi", platform="linux/s390x"))


def test_derived_image_mounts_base_layers(registry: Callable[..., str],
                                          store_factory: Callable[[str], ImageService],
                                          busybox_image: Callable[..., str]) -> None:
    """A blob known in another repository (a different image holds it there) is mounted."""
    host = registry()
    a = store_factory("a")
    base = busybox_image(a)
    a.tag(base, f"{host}/team/base", "1")
    dist = Distribution()
    run(push(dist, a, f"{host}/team/base:1"))
    derived = a.derive(base, config={"Cmd": ["sh"]}, created_by="CMD sh",
                       repo_tag=f"{host}/team/derived:1")
    assert derived != base
    rec = Recorder()
    run(push(dist, a, f"{host}/team/derived:1", emit=rec))
    diff_short = pg.short_id(a.get(base).diff_ids[0])
    assert {"status": "Mounted from team/base", "progressDetail": {}, "id": diff_short} in rec.messages
    b = store_factory("b")
    assert run(pull(dist, b, f"{host}/team/derived:1")).image_id == derived


def _two_layer_image(store: ImageService, base: str, ref: str) -> str:
    """``base`` plus one small uncompressed layer (/added), recorded as ``ref``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("added")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"added"))
    layer = buf.getvalue()
    ld = store.content.put(layer)
    cfg = json.loads(json.dumps(store.config_of(base)))
    cfg["rootfs"]["diff_ids"].append(ld)
    cfg.setdefault("history", []).append({"created_by": "ADD added /"})
    cd = store.content.put(json.dumps(cfg).encode())
    man = json.loads(store.manifest(base)[0])
    man["config"] = {**man["config"], "digest": cd, "size": store.content.size(cd)}
    man["layers"].append({"mediaType": mt.OCI_LAYER, "digest": ld, "size": len(layer)})
    md = store.content.put(json.dumps(man).encode())
    return store.add_image(md, repo_tags=[ref])


def test_push_lists_top_layer_first(registry: Callable[..., str], store_factory: Callable[[str], ImageService],
                                    busybox_image: Callable[..., str]) -> None:
    """dockerd walks an image from its top layer down: Preparing/Pushed lines in that order."""
    host = registry()
    a = store_factory("a")
    image_id = _two_layer_image(a, busybox_image(a), f"{host}/team/two:1")
    rec = Recorder()
    run(push(Distribution(), a, f"{host}/team/two:1", emit=rec))
    ids = [pg.short_id(d) for d in a.get(image_id).diff_ids]
    preparing = [m["id"] for m in rec.messages if m.get("status") == "Preparing"]
    assert preparing == ids[::-1]
    b = store_factory("b")
    assert run(pull(Distribution(), b, f"{host}/team/two:1")).image_id == image_id


def test_identical_concurrent_pulls_download_once(registry: Callable[..., str],
                                                  store_factory: Callable[[str], ImageService],
                                                  busybox_image: Callable[..., str]) -> None:
    host = registry()
    a = store_factory("a")
    a.tag(busybox_image(a), f"{host}/team/app", "1")
    dist = Distribution()
    run(push(dist, a, f"{host}/team/app:1"))
    b = store_factory("b")
    r1, r2 = Recorder(), Recorder()

    async def both() -> list[Any]:
        return await asyncio.gather(pull(dist, b, f"{host}/team/app:1", emit=r1),
                                    pull(dist, b, f"{host}/team/app:1", emit=r2))

    p1, p2 = run(both())
    assert p1.image_id == p2.image_id
    assert "Downloading" in r1.statuses() and "Downloading" not in r2.statuses()
    assert r2.statuses()[-1].startswith("Status: Image is up to date for")
    assert dist._pull_locks == {}
