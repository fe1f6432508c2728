"""A registry that lies or drops connections: pulls fail cleanly or resume with Range.

The server is a tiny in-process aiohttp app serving one image (busybox, taken from a local
store) with a configurable misbehaviour of the layer blob or the manifest.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dockyard.distribution.pull import pull
from dockyard.distribution.service import Distribution
from dockyard.errors import InvalidArgument, Unavailable
from dockyard.images.service import ImageService

pytestmark = pytest.mark.root


@dataclass
class Liar:
    manifest: bytes
    blobs: dict[str, bytes]
    layer: str
    mode: str = "honest"
    ranges: list[str] = field(default_factory=list)
    layer_gets: int = 0
    stalled: asyncio.Event = field(default_factory=asyncio.Event)

    async def v2(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def get_manifest(self, request: web.Request) -> web.Response:
        body = self.manifest
        if self.mode == "manifest":
            body = body.replace(b'"schemaVersion":2', b'"schemaVersion": 2')
        return web.Response(body=body, content_type="application/vnd.oci.image.manifest.v1+json")

    async def get_blob(self, request: web.Request) -> web.StreamResponse:
        digest = request.match_info["digest"]
        data = self.blobs.get(digest)
        if data is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]},
                                     status=404)
        if digest != self.layer:
            if self.mode == "config":  # the config the manifest names, with other bytes
                return web.Response(body=data.replace(b'"os":', b'"os" :', 1))
            return web.Response(body=data)
        self.layer_gets += 1
        rng = request.headers.get("Range")
        if rng:
            self.ranges.append(rng)
        if self.mode == "busy-once" and self.layer_gets == 1:
            return web.json_response({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]},
                                     status=503)
        if self.mode == "wrong":
            return web.Response(body=bytes(b ^ 0xFF for b in data[:64]) + data[64:])
        if self.mode == "too-long":
            return web.Response(body=data + b"\0" * 4096)
        if self.mode == "regzip":
            # The same tar, gzip'd with another mtime in the gzip header: as long, a valid
            # layer whose DiffID is right, only the digest differs (found after extraction).
            return web.Response(body=data[:4] + bytes(b ^ 0x5A for b in data[4:8]) + data[8:])
        if self.mode == "drop-then-no-range":
            rng = None  # a registry without Range support: the whole blob, 200, every time
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        resp = web.StreamResponse(status=206 if rng else 200)
        if rng:
            resp.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        resp.content_length = len(data) - start
        await resp.prepare(request)
        if self.mode == "stall":  # half the layer, then nothing until the client goes away
            await resp.write(data[: len(data) // 2])
            self.stalled.set()
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.05)
            return resp
        cut = self.mode == "truncated" or (self.mode in ("drop-once", "drop-then-no-range")
                                           and self.layer_gets == 1)
        if cut:
            await resp.write(data[start:start + (len(data) - start) // 2])
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write(data[start:])
        await resp.write_eof()
        return resp


def _image(store: ImageService, image_id: str) -> tuple[bytes, dict[str, bytes], str]:
    manifest, _ = store.manifest(image_id)
    man = json.loads(manifest)
    blobs = {man["config"]["digest"]: store.content.read(man["config"]["digest"])}
    for layer in man["layers"]:
        blobs[layer["digest"]] = store.content.read(layer["digest"])
    return manifest, blobs, man["layers"][0]["digest"]


async def _serve(liar: Liar, fn: Callable[[str], Any]) -> Any:
    app = web.Application()
    app.router.add_get("/v2/", liar.v2)
    app.router.add_get("/v2/{name:.+}/manifests/{ref}", liar.get_manifest)
    app.router.add_get("/v2/{name:.+}/blobs/{digest}", liar.get_blob)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return await fn(f"127.0.0.1:{port}")
    finally:
        await runner.cleanup()


def _clean(store: ImageService) -> None:
    """No image, no ingest leftovers, no blob (not even the verified config fetched before
    the lie was found: the failed pull deletes what it added), no snapshot."""
    assert store.list() == []
    assert os.listdir(store.content.root / "ingest") == []
    assert list(store.content.walk()) == []
    assert store.snapshots.list() == []


@pytest.fixture
def liar_setup(store_factory: Callable[[str], ImageService],
               busybox_image: Callable[..., str]) -> tuple[Liar, ImageService]:
    src = store_factory("src")
    manifest, blobs, layer = _image(src, busybox_image(src))
    return Liar(manifest, blobs, layer), store_factory("dst")


@pytest.mark.parametrize("mode,error,match", [
    ("wrong", InvalidArgument, "filesystem layer verification failed for digest"),
    ("too-long", InvalidArgument, "sent more than the"),
    ("truncated", Unavailable, "download failed after"),
    # a valid layer with the right DiffID but another digest: extracted as it downloads,
    # refused at its end, before its snapshot is committed
    ("regzip", InvalidArgument, "filesystem layer verification failed for digest"),
])
def test_lying_layer_leaves_no_image(liar_setup: tuple[Liar, ImageService], mode: str,
                                     error: type[Exception], match: str) -> None:
    liar, dst = liar_setup
    liar.mode = mode
    with pytest.raises(error, match=match):
        asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app:1")))
    _clean(dst)
    assert not dst.content.exists(liar.layer)
    if mode == "truncated":
        assert len(liar.ranges) == 5  # resumed, each time from where it stopped


def test_wrong_manifest_digest(liar_setup: tuple[Liar, ImageService]) -> None:
    liar, dst = liar_setup
    liar.mode = "manifest"
    digest = "sha256:" + hashlib.sha256(liar.manifest).hexdigest()
    with pytest.raises(InvalidArgument, match=f"manifest verification failed for digest {digest}"):
        asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app@{digest}")))
    _clean(dst)


def test_wrong_diff_id_leaves_no_image(liar_setup: tuple[Liar, ImageService]) -> None:
    liar, dst = liar_setup
    man = json.loads(liar.manifest)
    cfg = json.loads(liar.blobs[man["config"]["digest"]])
    cfg["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    cfg_bytes = json.dumps(cfg).encode()
    cd = "sha256:" + hashlib.sha256(cfg_bytes).hexdigest()
    liar.blobs[cd] = cfg_bytes
    man["config"] = {**man["config"], "digest": cd, "size": len(cfg_bytes)}
    liar.manifest = json.dumps(man).encode()
    with pytest.raises(InvalidArgument, match="does not match the config's diff_id"):
        asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app:1")))
    _clean(dst)


def test_config_digest_mismatch_leaves_nothing(liar_setup: tuple[Liar, ImageService]) -> None:
    liar, dst = liar_setup
    liar.mode = "config"
    cd = json.loads(liar.manifest)["config"]["digest"]
    with pytest.raises(InvalidArgument, match=f"image config verification failed for digest {cd}"):
        asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app:1")))
    _clean(dst)
    assert liar.layer_gets == 0  # refused before any layer was fetched


def test_failed_pull_keeps_blobs_other_images_use(liar_setup: tuple[Liar, ImageService],
                                                  busybox_image: Callable[..., str]) -> None:
    """The lie is in the layer: the config this pull added goes, what the store had stays."""
    liar, dst = liar_setup
    own = busybox_image(dst)
    before = sorted(d for d, _ in dst.content.walk())
    # a new config: the layer the store has ("Already exists") and one more, which lies
    extra = b"extra layer that lies"
    xd = _add_layer(liar, extra, "sha256:" + hashlib.sha256(extra).hexdigest())
    liar.layer = xd
    liar.mode = "wrong"
    with pytest.raises(InvalidArgument, match=f"filesystem layer verification failed for digest {xd}"):
        asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app:1")))
    assert [i.id for i in dst.list()] == [own]
    assert sorted(d for d, _ in dst.content.walk()) == before
    assert os.listdir(dst.content.root / "ingest") == []


def test_dropped_download_resumes_with_range(liar_setup: tuple[Liar, ImageService]) -> None:
    liar, dst = liar_setup
    liar.mode = "drop-once"
    res = asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app:1")))
    assert liar.layer_gets == 2
    size = len(liar.blobs[liar.layer])
    assert liar.ranges == [f"bytes={size // 2}-"]
    assert dst.get(res.image_id).layer_blobs[0].digest == liar.layer


def test_busy_registry_is_retried(liar_setup: tuple[Liar, ImageService]) -> None:
    liar, dst = liar_setup
    liar.mode = "busy-once"
    res = asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app:1")))
    assert liar.layer_gets == 2 and liar.ranges == []  # nothing received: a plain second GET
    assert dst.get(res.image_id).layer_blobs[0].digest == liar.layer


@pytest.mark.parametrize("config", [b"not json", b"[1, 2]"])
def test_garbage_config_is_refused(liar_setup: tuple[Liar, ImageService], config: bytes) -> None:
    liar, dst = liar_setup
    man = json.loads(liar.manifest)
    cd = "sha256:" + hashlib.sha256(config).hexdigest()
    liar.blobs[cd] = config
    man["config"] = {**man["config"], "digest": cd, "size": len(config)}
    liar.manifest = json.dumps(man).encode()
    with pytest.raises(InvalidArgument, match=f"image config {cd}"):
        asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app:1")))
    _clean(dst)


def test_registry_ignoring_range_after_a_drop(liar_setup: tuple[Liar, ImageService]) -> None:
    """The resumed GET gets the whole blob (200): the bytes already fed to the extractor are
    skipped, not fed twice, and the pull succeeds."""
    liar, dst = liar_setup
    liar.mode = "drop-then-no-range"
    res = asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app:1")))
    assert liar.layer_gets == 2
    img = dst.get(res.image_id)
    assert img.layer_blobs[0].digest == liar.layer
    assert dst.content.read(liar.layer) == liar.blobs[liar.layer]
    assert os.listdir(dst.content.root / "ingest") == []


def _add_layer(liar: Liar, blob: bytes, diff_id: str) -> str:
    """Append layer ``blob`` (``diff_id`` in the config) to the liar's image: a new config and
    manifest. Returns the layer's digest."""
    man = json.loads(liar.manifest)
    cfg = json.loads(liar.blobs[man["config"]["digest"]])
    xd = "sha256:" + hashlib.sha256(blob).hexdigest()
    liar.blobs[xd] = blob
    cfg["rootfs"]["diff_ids"].append(diff_id)
    cfg_bytes = json.dumps(cfg).encode()
    cd = "sha256:" + hashlib.sha256(cfg_bytes).hexdigest()
    liar.blobs[cd] = cfg_bytes
    man["config"] = {**man["config"], "digest": cd, "size": len(cfg_bytes)}
    man["layers"].append({"mediaType": man["layers"][0]["mediaType"], "digest": xd, "size": len(blob)})
    liar.manifest = json.dumps(man).encode()
    return xd


def _two_layer_image(liar: Liar, second: bytes) -> str:
    """Give the liar's image a second layer (``second``, a gzip'd tar); return its digest."""
    import gzip
    import zlib

    plain = zlib.decompress(second, 31)
    assert gzip.decompress(second) == plain
    return _add_layer(liar, second, "sha256:" + hashlib.sha256(plain).hexdigest())


def _small_layer() -> bytes:
    import gzip
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"second layer\n" * 1000
        info = tarfile.TarInfo("etc/second")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


@pytest.mark.parametrize("mode", ["wrong", "regzip"])
def test_lie_in_second_layer_drops_the_first_unpacked_layer(liar_setup: tuple[Liar, ImageService],
                                                            mode: str) -> None:
    """Layer 1 is honest and already extracted and committed (it streamed first) when layer 2
    turns out to lie: the failed pull removes layer 1's snapshot too."""
    liar, dst = liar_setup
    liar.layer = _two_layer_image(liar, _small_layer())
    liar.mode = mode
    with pytest.raises(InvalidArgument, match=f"filesystem layer verification failed for digest {liar.layer}"):
        asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app:1")))
    _clean(dst)


def test_two_layers_stream_into_one_image(liar_setup: tuple[Liar, ImageService]) -> None:
    """The honest two-layer image: both layers unpacked in order, the second on the first."""
    liar, dst = liar_setup
    second = _two_layer_image(liar, _small_layer())
    res = asyncio.run(_serve(liar, lambda host: pull(Distribution(), dst, f"{host}/lie/app:1")))
    img = dst.get(res.image_id)
    assert [x.digest for x in img.layer_blobs][1] == second
    [m] = dst.image_mounts(res.image_id)  # overlay, read-only: the two layers as lowerdirs
    lower = next(o for o in m.options if o.startswith("lowerdir=")).split("=", 1)[1].split(":")
    assert len(lower) == 2
    assert (Path(lower[0]) / "etc/second").read_bytes() == b"second layer\n" * 1000  # top first
    assert (Path(lower[1]) / "bin/busybox").exists()
    assert not (Path(lower[1]) / "etc/second").exists()


def test_cancelled_pull_mid_layer_leaves_nothing(liar_setup: tuple[Liar, ImageService]) -> None:
    """A pull cancelled (the client went away) while its layer is half downloaded and half
    extracted: the extractor thread, blocked waiting for bytes, is woken and ends; its
    snapshot, the ingest file and the config blob go."""
    liar, dst = liar_setup
    liar.mode = "stall"

    async def cancel_midway(host: str) -> None:
        liar.stalled = asyncio.Event()
        task = asyncio.create_task(pull(Distribution(), dst, f"{host}/lie/app:1"))
        await asyncio.wait_for(liar.stalled.wait(), 30)
        await asyncio.sleep(0.2)  # the extractor has read what came and waits for more
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)

    asyncio.run(_serve(liar, cancel_midway))
    _clean(dst)
