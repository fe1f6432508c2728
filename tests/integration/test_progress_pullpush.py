"""The JSON progress streams of push and pull, as the Docker SDK's low-level API reads them.

A private `dockyard registry serve`; daemon A builds a 3-layer image (busybox + two COPY
layers) and pushes it; daemon B (empty: no layer in common) pulls it. dockerd 20.10's
streams for the same image (recorded side by side, see tests/cli/data/) are the model:

pull, per layer id:  Pulling fs layer, Downloading..., Verifying Checksum, Download complete,
                     Extracting..., Pull complete   (then "Digest: ..." and "Status: ...")
push, per layer id:  Preparing (top layer first), Pushing..., Pushed | Layer already exists |
                     Mounted from <repo>           (then "<tag>: digest: ... size: N" + aux)

Every process and directory made here is removed at teardown (registry_procs, daemon_procs).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import daemon_procs
import registry_procs

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")]


@dataclass(frozen=True)
class Setup:
    host: str  # the registry's host:port
    a: Any  # docker.APIClient of daemon A (has the image)
    b: Any  # docker.APIClient of daemon B (empty)
    push: list[dict[str, Any]]  # A's first push of <host>/three:v1
    layers: list[dict[str, Any]]  # the pushed manifest's layer descriptors, bottom first
    diff_ids: list[str]


def _manifest(host: str, repo: str, tag: str) -> bytes:
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return bytes(r.read())


@pytest.fixture(scope="module")
def setup(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    tmp = tmp_path_factory.mktemp("progress")
    procs: list[subprocess.Popen[str]] = []
    daemons: list[tuple[Path, subprocess.Popen[bytes]]] = []
    clients: list[Any] = []
    try:
        p, line = registry_procs.spawn(tmp / "reg", tmp / "reg.log")
        procs.append(p)
        host = line.rsplit("/", 1)[1]
        for _ in range(2):
            root = Path(tempfile.mkdtemp(prefix="dyt-prog-", dir="/tmp"))
            daemons.append((root, daemon_procs.spawn(root)))
            clients.append(docker.APIClient(base_url=f"unix://{daemon_procs.sock_of(root)}", version="1.41",
                                            timeout=120))
        env = daemon_procs.docker_env(daemons[0][0])
        subprocess.run(["tar", "-C", str(busybox_rootfs), "-cf", str(tmp / "bb.tar"), "."], check=True)
        subprocess.run(["docker", "import", str(tmp / "bb.tar"), "busybox:latest"], env=env, check=True,
                       capture_output=True)
        ctx = tmp / "ctx"
        ctx.mkdir()
        (ctx / "a").write_bytes(os.urandom(3 << 20))  # random: gzip cannot make it small
        (ctx / "b").write_bytes(os.urandom(5 << 20))
        (ctx / "Dockerfile").write_text("FROM busybox\nCOPY a /a\nCOPY b /b\n")
        r = subprocess.run(["docker", "build", "-q", "-t", f"{host}/three:v1", str(ctx)], env=env,
                           capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr
        a, b = clients
        push = list(a.push(f"{host}/three", tag="v1", stream=True, decode=True))
        m = json.loads(_manifest(host, "three", "v1"))
        diff_ids = a.inspect_image(f"{host}/three:v1")["RootFS"]["Layers"]
        yield Setup(host, a, b, push, m["layers"], diff_ids)
    finally:
        for c in clients:
            c.close()
        for root, proc in daemons:
            daemon_procs.stop(root, proc)
        registry_procs.stop(procs)


def _short(digest: str) -> str:
    return digest.split(":", 1)[1][:12]


def _statuses(msgs: list[dict[str, Any]], ident: str) -> list[str]:
    """The statuses of one id, runs of the same one collapsed."""
    out: list[str] = []
    for m in msgs:
        if m.get("id") == ident and (not out or out[-1] != m["status"]):
            out.append(m["status"])
    return out


def _index(msgs: list[dict[str, Any]], status: str, ident: str | None = None) -> int:
    return next(i for i, m in enumerate(msgs) if m.get("status") == status and m.get("id") == ident)


def test_pull_reports_each_layer_as_it_completes(setup: Setup) -> None:
    ref = f"{setup.host}/three"
    msgs = list(setup.b.pull(ref, tag="v1", stream=True, decode=True))
    assert not any("error" in m for m in msgs), msgs
    assert msgs[0] == {"status": "Pulling from three", "id": "v1"}
    ids = [_short(x["digest"]) for x in setup.layers]
    assert len(set(ids)) == 3
    layer_ids = {m["id"] for m in msgs[1:] if "id" in m}
    assert layer_ids == set(ids)
    for ident, layer in zip(ids, setup.layers, strict=True):
        st = _statuses(msgs, ident)
        assert st[0] == "Pulling fs layer"
        assert st[-4:] == ["Verifying Checksum", "Download complete", "Extracting", "Pull complete"], st
        assert set(st[1:-4]) <= {"Waiting", "Downloading"}, st
        ext = [m for m in msgs if m.get("id") == ident and m["status"] == "Extracting"]
        assert all(m["progressDetail"]["total"] == layer["size"] for m in ext)
        assert ext[-1]["progressDetail"]["current"] == layer["size"]
        assert ext[-1]["progress"].startswith("[" + "=" * 50 + ">]")
    # bottom layer first; each layer's lines end before the next layer's extraction starts
    completes = [_index(msgs, "Pull complete", i) for i in ids]
    assert completes == sorted(completes)
    for lower, upper in zip(ids, ids[1:], strict=False):
        assert _index(msgs, "Pull complete", lower) < _index(msgs, "Extracting", upper)
    digest = setup.push[-1]["aux"]["Digest"]
    assert [m["status"] for m in msgs[-2:]] == [f"Digest: {digest}",
                                                f"Status: Downloaded newer image for {ref}:v1"]
    assert max(completes) < len(msgs) - 2
    assert setup.b.inspect_image(f"{ref}:v1")["RootFS"]["Layers"] == setup.diff_ids

    again = list(setup.b.pull(ref, tag="v1", stream=True, decode=True))
    assert [m["status"] for m in again] == ["Pulling from three", f"Digest: {digest}",
                                            f"Status: Image is up to date for {ref}:v1"]


def test_push_stream_as_dockerd(setup: Setup) -> None:
    msgs = setup.push
    ref = f"{setup.host}/three"
    ids = [_short(d) for d in setup.diff_ids]  # push shows DiffIDs, as dockerd
    assert msgs[0] == {"status": f"The push refers to repository [{ref}]"}
    assert [m["id"] for m in msgs if m.get("status") == "Preparing"] == ids[::-1]  # top first
    for ident in ids:
        st = _statuses(msgs, ident)
        assert st[0] == "Preparing" and st[-1] == "Pushed", st
        assert set(st[1:-1]) <= {"Waiting", "Pushing"}, st
    assert any(m.get("status") == "Pushing" and m["progressDetail"]["current"] > 0 for m in msgs)
    body = _manifest(setup.host, "three", "v1")
    aux = msgs[-1]["aux"]
    assert aux == {"Tag": "v1", "Digest": "sha256:" + hashlib.sha256(body).hexdigest(), "Size": len(body)}
    assert msgs[-2] == {"status": f"v1: digest: {aux['Digest']} size: {aux['Size']}"}
    assert msgs[-1]["progressDetail"] == {}

    again = list(setup.a.push(ref, tag="v1", stream=True, decode=True))
    assert {m["id"]: m["status"] for m in again if "id" in m and m["status"] != "Preparing"} == \
        dict.fromkeys(ids, "Layer already exists")
    assert again[-1]["aux"] == aux

    setup.a.tag(f"{ref}:v1", f"{setup.host}/other", "v2")
    mounted = list(setup.a.push(f"{setup.host}/other", tag="v2", stream=True, decode=True))
    assert {m["id"]: m["status"] for m in mounted if "id" in m and m["status"] != "Preparing"} == \
        dict.fromkeys(ids, "Mounted from three")
    assert mounted[-1]["aux"]["Digest"] == aux["Digest"]
