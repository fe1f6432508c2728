"""The real docker CLI against the engine's routes with the registry routes wired in.

An Engine API app (``api.app.build_app``, which wires ``api.distribution`` and the ``pull`` hook)
serves a unix socket from a thread, over a real ImageService; a real registry with token
auth runs as a subprocess. ``DOCKER_CONFIG`` points into tmp_path so ``docker login``
writes nothing outside it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from apphelpers import serve_engine_app
from dockyard.images.service import ImageService
from dockyard.registry.htpasswd import hash_password

pytestmark = pytest.mark.root

DOCKER = "/usr/local/bin/docker"


@pytest.fixture
def engine(tmp_path: Path, store_factory: Callable[[str], ImageService],
           ) -> Iterator[tuple[str, ImageService, asyncio.AbstractEventLoop]]:
    if not os.path.exists(DOCKER):
        pytest.skip("the docker CLI is not installed")
    from dockyard.api import distribution

    store = store_factory("engine")
    events = SimpleNamespace(emitted=[])
    events.emit = lambda *a: events.emitted.append(a)
    services = SimpleNamespace(cfg=None, images=store, events=events, daemon_id="test",
                               containers=SimpleNamespace(containers={}), pull=distribution.pull)
    sock = str(tmp_path / "engine.sock")
    with serve_engine_app(services, sock) as loop:
        yield sock, store, loop


def _docker(sock: str, cfg: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "DOCKER_HOST": f"unix://{sock}",
           "DOCKER_CONFIG": str(cfg), "HOME": str(cfg)}
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, env=env, input=stdin,
                          timeout=120)


def test_docker_cli_login_push_pull(tmp_path: Path, engine: tuple[str, ImageService, Any],
                                    registry: Callable[..., str], busybox_image: Callable[..., str]) -> None:
    sock, store, _ = engine
    ht = tmp_path / "htpasswd"
    ht.write_text(f"alice:{hash_password('wonder', rounds=4)}\n")
    rcfg = tmp_path / "registry.json"
    rcfg.write_text(json.dumps({"auth": {"htpasswd": str(ht), "access": [
        {"account": "alice", "name": "*", "actions": ["pull", "push"]}]}}))
    host = registry("--config", str(rcfg), "--auth", "token")
    dcfg = tmp_path / "dockercfg"
    dcfg.mkdir()
    image_id = busybox_image(store)
    store.tag(image_id, f"{host}/team/app", "1")

    # not logged in: the push is refused with the registry's reason
    r = _docker(sock, dcfg, "push", f"{host}/team/app:1")
    assert r.returncode != 0 and re.search(r"unauthorized|denied", r.stderr), r

    r = _docker(sock, dcfg, "login", host, "-u", "alice", "--password-stdin", stdin="nope\n")
    assert r.returncode != 0 and r.stderr.startswith("Error response from daemon: Get "), r
    assert "invalid username or password" in r.stderr, r
    assert not (dcfg / "config.json").exists() or host not in (dcfg / "config.json").read_text()
    r = _docker(sock, dcfg, "login", host, "-u", "alice", "--password-stdin", stdin="wonder\n")
    assert r.returncode == 0 and "Login Succeeded" in r.stdout, r

    r = _docker(sock, dcfg, "push", f"{host}/team/app:1")
    assert r.returncode == 0, r
    m = re.search(r"^1: digest: (sha256:[0-9a-f]{64}) size: \d+$", r.stdout, re.M)
    assert m, r.stdout
    pushed = m.group(1)
    assert "Pushed" in r.stdout

    store.remove(f"{host}/team/app:1")
    store.remove("busybox:latest")
    assert store.list() == []
    r = _docker(sock, dcfg, "pull", f"{host}/team/app:1")
    assert r.returncode == 0, r
    assert f"Digest: {pushed}" in r.stdout
    assert f"Status: Downloaded newer image for {host}/team/app:1" in r.stdout
    r = _docker(sock, dcfg, "image", "inspect", "-f", "{{json .RepoDigests}}", f"{host}/team/app:1")
    assert json.loads(r.stdout) == [f"{host}/team/app@{pushed}"], r
    assert store.resolve(f"{host}/team/app:1") == image_id

    # by digest: the CLI sends the digest as the tag
    r = _docker(sock, dcfg, "pull", f"{host}/team/app@{pushed}")
    assert r.returncode == 0 and f"Status: Image is up to date for {host}/team/app@{pushed}" in r.stdout, r

    r = _docker(sock, dcfg, "pull", f"{host}/team/app:nope")
    assert r.returncode != 0 and "manifest unknown" in r.stderr, r
    assert r.stderr.startswith("Error response from daemon: manifest for "), r  # not raw JSON

    # GET /distribution/{name}/json with the stored credentials' header
    auth = json.loads((dcfg / "config.json").read_text())["auths"][host]["auth"]
    import base64
    user, _, pw = base64.b64decode(auth).decode().partition(":")
    header = base64.urlsafe_b64encode(json.dumps({"username": user, "password": pw}).encode()).decode()

    async def inspect() -> tuple[int, Any]:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=sock)) as s, \
                s.get(f"http://docker/v1.50/distribution/{host}/team/app:1/json",
                      headers={"X-Registry-Auth": header}) as resp:
            return resp.status, await resp.json()

    status, body = asyncio.run(inspect())
    assert status == 200, body
    assert body["Descriptor"]["digest"] == pushed
    assert body["Platforms"][0]["os"] == "linux"


def test_docker_cli_pull_from_lying_registry(tmp_path: Path, engine: tuple[str, ImageService, Any],
                                             store_factory: Callable[[str], ImageService],
                                             busybox_image: Callable[..., str]) -> None:
    """A failure after progress began: an errorDetail line, the CLI exits 1, no image."""
    from test_dist_lying_registry import Liar, _image

    sock, store, loop = engine
    src = store_factory("src")
    liar = Liar(*_image(src, busybox_image(src)), mode="wrong")
    app = web.Application()
    app.router.add_get("/v2/", liar.v2)
    app.router.add_get("/v2/{name:.+}/manifests/{ref}", liar.get_manifest)
    app.router.add_get("/v2/{name:.+}/blobs/{digest}", liar.get_blob)
    runner = web.AppRunner(app, access_log=None)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        r = _docker(sock, tmp_path, "pull", f"127.0.0.1:{port}/lie/app:1")
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    assert r.returncode == 1, r
    assert "1: Pulling from lie/app" in r.stdout, r
    assert "filesystem layer verification failed for digest " + liar.layer in r.stderr, r
    assert store.list() == []


def test_api_errors_and_all_tags(tmp_path: Path, engine: tuple[str, ImageService, Any], registry: Callable[..., str],
                                 busybox_image: Callable[..., str]) -> None:
    sock, store, _ = engine
    host = registry()
    image_id = busybox_image(store)
    store.tag(image_id, f"{host}/all/app", "a")
    store.tag(image_id, f"{host}/all/app", "b")

    async def go() -> list[tuple[int, str, str]]:
        out = []
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=sock)) as s:
            for method, path, body in [
                ("POST", "/v1.50/images/create?fromImage=Bad%2FName&tag=1", None),
                ("POST", f"/v1.50/images/{host}/nothere/push?tag=1", None),
                ("POST", "/v1.50/auth", b"[1]"),
                ("POST", "/v1.50/auth", json.dumps({"username": "u", "password": "p",
                                                    "serveraddress": host}).encode()),
                ("POST", f"/v1.50/images/{host}/all/app/push?tag=", None),
                ("GET", f"/v1.50/distribution/{host}/all/app:zz/json", None),
            ]:
                async with s.request(method, f"http://docker{path}", data=body,
                                     headers={"X-Registry-Auth": "e30="}) as resp:
                    out.append((resp.status, resp.headers.get("Content-Type", ""), await resp.text()))
        return out

    bad, unknown, auth_bad, auth_open, all_tags, remote_missing = asyncio.run(go())
    assert bad[0] == 400 and bad[1] == "application/json" and "must be lowercase" in json.loads(bad[2])["message"]
    assert unknown[0] == 404 and json.loads(unknown[2])["message"].startswith("No such image")
    assert auth_bad[0] == 400
    # a registry without authentication accepts any login, as with dockerd
    assert auth_open[0] == 200 and json.loads(auth_open[2]) == {"Status": "Login Succeeded", "IdentityToken": ""}
    lines = [json.loads(x) for x in all_tags[2].splitlines() if x.strip()]
    assert all_tags[0] == 200
    assert [m["aux"]["Tag"] for m in lines if "aux" in m] == ["a", "b"]
    assert remote_missing[0] == 404 and "manifest unknown" in json.loads(remote_missing[2])["message"]

    # docker pull --all-tags
    store.remove(f"{host}/all/app:a")
    store.remove(f"{host}/all/app:b")
    r = _docker(sock, tmp_path, "pull", "-a", f"{host}/all/app")
    assert r.returncode == 0, r
    assert "a: Pulling from all/app" in r.stdout and "b: Pulling from all/app" in r.stdout, r
    assert r.stdout.count("Status: ") == 1 and f"Status: Downloaded newer image for {host}/all/app\n" in r.stdout, r
    assert store.resolve(f"{host}/all/app:a") == store.resolve(f"{host}/all/app:b") == image_id


def test_docker_sdk_login_push_pull(tmp_path: Path, engine: tuple[str, ImageService, Any],
                                    registry: Callable[..., str], busybox_image: Callable[..., str]) -> None:
    docker = pytest.importorskip("docker")
    sock, store, _ = engine
    ht = tmp_path / "htpasswd"
    ht.write_text(f"alice:{hash_password('wonder', rounds=4)}\n")
    rcfg = tmp_path / "registry.json"
    rcfg.write_text(json.dumps({"auth": {"htpasswd": str(ht), "access": [
        {"account": "alice", "name": "*", "actions": ["pull", "push"]}]}}))
    host = registry("--config", str(rcfg), "--auth", "basic")
    image_id = busybox_image(store)
    store.tag(image_id, f"{host}/sdk/app", "1")
    client = docker.DockerClient(base_url=f"unix://{sock}", version="1.50")
    try:
        with pytest.raises(docker.errors.APIError) as ei:
            client.login("alice", "bad", registry=host, dockercfg_path=str(tmp_path / "none.json"))
        assert ei.value.response.status_code == 401
        assert client.login("alice", "wonder", registry=host,
                            dockercfg_path=str(tmp_path / "none.json"))["Status"] == "Login Succeeded"
        auth = {"username": "alice", "password": "wonder"}
        lines = list(client.images.push(f"{host}/sdk/app", tag="1", stream=True, decode=True,
                                        auth_config=auth))
        aux = [x["aux"] for x in lines if "aux" in x]
        assert aux and aux[0]["Tag"] == "1", lines
        store.remove(f"{host}/sdk/app:1")
        img = client.images.pull(f"{host}/sdk/app", tag="1", auth_config=auth)
        assert img.id == image_id
        assert img.attrs["RepoDigests"] == [f"{host}/sdk/app@{aux[0]['Digest']}"]
    finally:
        client.close()
