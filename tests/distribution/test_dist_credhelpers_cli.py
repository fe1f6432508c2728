"""Credential helpers end to end: `dockyard` and the real docker CLI share config.json and its
helpers (a fake ``docker-credential-*`` program written by the test) against a real registry
with basic auth, through the engine's routes; and docker.io credentials reach a mirror.

The engine app serves a unix socket from a thread over a real ImageService; DOCKER_CONFIG and
PATH point into tmp_path, so nothing outside it is read or written.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from credhelper_support import FakeHelper

from apphelpers import serve_engine_app
from dockyard.distribution.auth import Credentials
from dockyard.distribution.pull import pull
from dockyard.distribution.push import push
from dockyard.distribution.service import Distribution
from dockyard.errors import PermissionDenied, Unavailable
from dockyard.images.service import ImageService
from dockyard.registry.htpasswd import hash_password

pytestmark = pytest.mark.root

DOCKER = "/usr/local/bin/docker"
DOCKYARD = str(Path(sys.executable).parent / "dockyard")


def _protected_registry(tmp_path: Path, registry: Callable[..., str]) -> str:
    ht = tmp_path / "htpasswd"
    ht.write_text(f"alice:{hash_password('wonder', rounds=4)}\n")
    rcfg = tmp_path / "registry.json"
    rcfg.write_text(json.dumps({"auth": {"htpasswd": str(ht), "access": [
        {"account": "alice", "name": "*", "actions": ["pull", "push"]}]}}))
    return registry("--config", str(rcfg), "--auth", "basic")


@pytest.fixture
def engine_sock(tmp_path: Path, store_factory: Callable[[str], ImageService],
                ) -> Iterator[tuple[str, ImageService]]:
    from dockyard.api import distribution

    store = store_factory("engine")
    events = SimpleNamespace(emitted=[])
    events.emit = lambda *a: events.emitted.append(a)
    services = SimpleNamespace(cfg=None, images=store, events=events, daemon_id="test",
                               containers=SimpleNamespace(containers={}), pull=distribution.pull)
    sock = str(tmp_path / "engine.sock")
    with serve_engine_app(services, sock):
        yield sock, store


def test_login_push_pull_logout_through_helpers(
        tmp_path: Path, engine_sock: tuple[str, ImageService], registry: Callable[..., str],
        busybox_image: Callable[..., str]) -> None:
    if not os.path.exists(DOCKER):
        pytest.skip("the docker CLI is not installed")
    sock, store = engine_sock
    host = _protected_registry(tmp_path, registry)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = FakeHelper(bindir, "fake")
    dcfg = tmp_path / "dockercfg"
    dcfg.mkdir()
    cfg_file = dcfg / "config.json"
    cfg_file.write_text(json.dumps({"credsStore": "fake"}))
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "DOCKER_CONFIG": str(dcfg),
           "HOME": str(tmp_path), "DOCKER_HOST": f"unix://{sock}"}

    def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), capture_output=True, text=True, env=env, input=stdin,
                              timeout=120)

    image_id = busybox_image(store)
    store.tag(image_id, f"{host}/team/app", "1")
    ref = f"{host}/team/app:1"

    # the real docker CLI logs in: the secret goes to the helper, the file lists the registry
    r = run(DOCKER, "login", host, "-u", "alice", "--password-stdin", stdin="wonder\n")
    assert r.returncode == 0, r
    assert fake.secrets() == {host: {"Username": "alice", "Secret": "wonder"}}
    assert json.loads(cfg_file.read_text())["auths"] == {host: {}}

    # dockyard finds those credentials through the helper
    r = run(DOCKYARD, "push", ref)
    assert r.returncode == 0, r
    assert f"get {host}" in fake.calls()

    # dockyard logout: the helper erases, the file forgets; pushes are refused again
    r = run(DOCKYARD, "logout", host)
    assert r.returncode == 0 and r.stdout == f"Removing login credentials for {host}\n", r
    assert fake.secrets() == {} and json.loads(cfg_file.read_text())["auths"] == {}
    assert fake.calls()[-1] == f"erase {host}"
    r = run(DOCKYARD, "push", ref)
    assert r.returncode != 0
    r = run(DOCKYARD, "logout", host)
    assert r.stdout == f"Not logged in to {host}\n"

    # dockyard login stores through the helper; the real docker CLI pulls with it
    r = run(DOCKYARD, "login", "-u", "alice", "--password-stdin", host, stdin="wonder\n")
    assert r.returncode == 0 and r.stdout == "Login Succeeded\n", r
    assert fake.secrets() == {host: {"Username": "alice", "Secret": "wonder"}}
    assert json.loads(cfg_file.read_text()) == {"credsStore": "fake", "auths": {host: {}}}
    store.remove(ref)
    r = run(DOCKER, "pull", ref)
    assert r.returncode == 0, r
    store.remove(ref)
    r = run(DOCKYARD, "pull", ref)
    assert r.returncode == 0, r
    assert store.resolve(ref) == image_id

    # credHelpers names a different helper for this registry: it wins over credsStore
    other = FakeHelper(bindir, "other")
    other.seed(host, "alice", "wrong")
    doc = json.loads(cfg_file.read_text())
    doc["credHelpers"] = {host: "other"}
    cfg_file.write_text(json.dumps(doc))
    store.remove(ref)
    r = run(DOCKYARD, "pull", ref)
    assert r.returncode != 0 and other.calls() == [f"get {host}"], r
    # a helper that is not installed: a clear error, no request made
    doc["credHelpers"] = {host: "missing"}
    cfg_file.write_text(json.dumps(doc))
    r = run(DOCKYARD, "pull", ref)
    assert r.returncode == 1
    assert 'exec: "docker-credential-missing": executable file not found in $PATH' in r.stderr


def test_mirror_gets_docker_io_credentials(
        tmp_path: Path, registry: Callable[..., str],
        store_factory: Callable[[str], ImageService], busybox_image: Callable[..., str]) -> None:
    host = _protected_registry(tmp_path, registry)
    alice = Credentials("alice", "wonder")
    a = store_factory("a")
    image_id = busybox_image(a)
    a.tag(image_id, f"{host}/library/busybox", "latest")
    [res] = asyncio.run(push(Distribution(), a, f"{host}/library/busybox:latest", creds=alice))

    b = store_factory("b")
    mirrored = Distribution(mirrors=(f"http://{host}",))
    # the credentials given for docker.io are sent to the mirror, as dockerd does
    pr = asyncio.run(pull(mirrored, b, "busybox", creds=alice))
    assert pr.image_id == image_id and pr.digest == res.digest
    # a mirror that refuses them is skipped for the next endpoint (docker.io, unreachable here)
    with pytest.raises(Unavailable, match="registry-1.docker.io"):
        asyncio.run(pull(mirrored, b, "busybox:1", creds=Credentials("alice", "nope")))
    with pytest.raises(Unavailable, match="registry-1.docker.io"):
        asyncio.run(pull(mirrored, b, "busybox:1"))
    # the registry itself (not a mirror) refusing them is final
    with pytest.raises(PermissionDenied):
        asyncio.run(pull(Distribution(), b, f"{host}/library/busybox:latest",
                         creds=Credentials("alice", "nope")))
    assert [i.id for i in b.list()] == [image_id]
