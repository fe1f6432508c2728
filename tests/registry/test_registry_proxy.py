"""Pull-through cache: a second registry process fronting the first, both on loopback."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from regtest_support import OCI_MANIFEST, Reg, basic, sha256

from dockyard.registry.htpasswd import hash_password


def test_pull_through_cache(registry_factory: Any) -> None:
    upstream: Reg = registry_factory()
    d, m = upstream.push_image("library/busybox", "latest", layer=b"busybox layer")
    cache: Reg = registry_factory("--proxy-remote-url", upstream.url)

    r = cache.req("GET", "/v2/library/busybox/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert r.status == 200 and r.body == m and r.headers["Docker-Content-Digest"] == d
    layer = sha256(b"busybox layer")
    r = cache.req("GET", f"/v2/library/busybox/blobs/{layer}")
    assert r.status == 200 and r.body == b"busybox layer"
    assert (cache.root / "blobs" / "sha256" / layer.split(":")[1]).read_bytes() == b"busybox layer"
    # unknown things are unknown through the cache too
    assert cache.req("GET", "/v2/library/busybox/manifests/nope").status == 404
    assert cache.req("GET", f"/v2/library/busybox/blobs/sha256:{'0' * 64}").status == 404
    # tags are the upstream's, fetched or not
    upstream.push_image("library/busybox", "other", layer=b"another layer")
    assert cache.req("GET", "/v2/library/busybox/tags/list").json()["tags"] == ["latest", "other"]
    assert cache.req("GET", "/v2/library/nothing/tags/list").status == 404
    # a cache refuses pushes
    r = cache.req("POST", "/v2/library/busybox/blobs/uploads/")
    assert r.status == 405 and r.code == "UNSUPPORTED"

    # with the upstream gone, what was served stays available
    os.kill(upstream.pid, signal.SIGKILL)
    _wait_gone(upstream)
    r = cache.req("GET", "/v2/library/busybox/manifests/latest")
    assert r.status == 200 and r.body == m
    assert cache.req("GET", f"/v2/library/busybox/manifests/{d}").body == m
    assert cache.req("GET", f"/v2/library/busybox/blobs/{layer}").body == b"busybox layer"
    assert cache.req("GET", "/v2/library/busybox/tags/list").json()["tags"] == ["latest"]


def _wait_gone(reg: Reg) -> None:
    import time

    for _ in range(200):
        try:
            reg.req("GET", "/v2/")
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError("upstream did not stop")


def test_pull_through_token_upstream(registry_factory: Any, tmp_path: Path) -> None:
    ht = tmp_path / "htpasswd"
    ht.write_text(f"puller:{hash_password('pw', rounds=4)}\n")
    upstream: Reg = registry_factory("--htpasswd", str(ht), "--auth", "token")
    r = upstream.req("GET", "/token?service=dockyard-registry&scope=repository:x/y:pull,push",
                     auth=basic("puller", "pw"))
    upstream.auth = "Bearer " + r.json()["token"]
    d, m = upstream.push_image("x/y", "v1", layer=b"private layer")
    cache: Reg = registry_factory("--proxy-remote-url", upstream.url,
                                  "--proxy-username", "puller", "--proxy-password", "pw")
    r = cache.req("GET", "/v2/x/y/manifests/v1")
    assert r.status == 200 and r.body == m
    assert cache.req("GET", f"/v2/x/y/blobs/{sha256(b'private layer')}").body == b"private layer"




def test_pull_through_large_blob_concurrently(registry_factory: Any) -> None:
    import concurrent.futures

    upstream: Reg = registry_factory()
    data = os.urandom(8_000_000)
    d = upstream.push_blob("big/repo", data)
    cache: Reg = registry_factory("--proxy-remote-url", upstream.url)

    def get(_: int) -> bytes:
        r = cache.req("GET", f"/v2/big/repo/blobs/{d}")
        assert r.status == 200 and r.headers["Docker-Content-Digest"] == d
        return r.body

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        bodies = list(ex.map(get, range(4)))
    assert all(b == data for b in bodies)
    # cached once, committed before any client had the whole body
    assert (cache.root / "blobs" / "sha256" / d.split(":")[1]).stat().st_size == len(data)
    assert not list((cache.root / "repositories" / "big" / "repo").glob("_uploads/*"))
    r = cache.req("GET", f"/v2/big/repo/blobs/{d}", headers={"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == data[100:200]
