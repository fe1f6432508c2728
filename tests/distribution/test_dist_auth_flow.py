"""Token and basic auth against a real registry: right creds work, wrong ones change nothing."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.distribution.auth import Credentials
from dockyard.distribution.login import login
from dockyard.distribution.pull import pull
from dockyard.distribution.push import push
from dockyard.distribution.service import Distribution
from dockyard.errors import PermissionDenied
from dockyard.images.service import ImageService
from dockyard.registry.htpasswd import hash_password

pytestmark = pytest.mark.root

RULES = [
    {"account": "alice", "name": "*", "actions": ["pull", "push", "delete"]},
    {"account": "bob", "name": "team/*", "actions": ["pull"]},
]


def _config(tmp_path: Path) -> Path:
    ht = tmp_path / "htpasswd"
    ht.write_text("".join(f"{u}:{hash_password(p, rounds=4)}\n"
                          for u, p in (("alice", "wonder"), ("bob", "builder"))))
    cfg = tmp_path / "registry.json"
    cfg.write_text(json.dumps({"auth": {"htpasswd": str(ht), "access": RULES}}))
    return cfg


def _tree(root: Path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.parametrize("scheme", ["token", "basic"])
def test_auth_push_pull_login(scheme: str, tmp_path: Path, registry: Callable[..., str],
                              store_factory: Callable[[str], ImageService],
                              busybox_image: Callable[..., str]) -> None:
    host = registry("--config", str(_config(tmp_path)), "--auth", scheme)
    a = store_factory("a")
    image_id = busybox_image(a)
    a.tag(image_id, f"{host}/team/app", "1")
    dist = Distribution()
    alice = Credentials("alice", "wonder")
    wrong = Credentials("alice", "nope")

    # refused pushes leave the registry's storage as it was
    before = _tree(tmp_path / "reg1")
    with pytest.raises(PermissionDenied):
        run(push(dist, a, f"{host}/team/app:1", creds=wrong))
    with pytest.raises(PermissionDenied):
        run(push(dist, a, f"{host}/team/app:1"))  # anonymous
    with pytest.raises(PermissionDenied):
        run(push(dist, a, f"{host}/team/app:1", creds=Credentials("bob", "builder")))  # pull only
    assert _tree(tmp_path / "reg1") == before
    assert a.get(image_id).repo_digests == ()

    [res] = run(push(dist, a, f"{host}/team/app:1", creds=alice))

    b = store_factory("b")
    with pytest.raises(PermissionDenied, match=r"pull access denied for .*team/app, repository does "
                                                r"not exist or may require 'docker login'"):
        run(pull(dist, b, f"{host}/team/app:1"))
    with pytest.raises(PermissionDenied):
        run(pull(dist, b, f"{host}/team/app:1", creds=wrong))
    assert b.list() == []
    pr = run(pull(dist, b, f"{host}/team/app:1", creds=Credentials("bob", "builder")))
    assert pr.digest == res.digest and pr.image_id == image_id

    assert run(login(dist, f"http://{host}", alice)) == ""
    assert run(login(dist, host, Credentials("bob", "builder"))) == ""
    with pytest.raises(PermissionDenied):
        run(login(dist, host, wrong))
    with pytest.raises(PermissionDenied):
        run(login(dist, host, Credentials("mallory", "x")))


def test_token_cache_reused(tmp_path: Path, registry: Callable[..., str],
                            store_factory: Callable[[str], ImageService],
                            busybox_image: Callable[..., str]) -> None:
    host = registry("--config", str(_config(tmp_path)), "--auth", "token")
    a = store_factory("a")
    a.tag(busybox_image(a), f"{host}/team/app", "1")
    dist = Distribution()
    run(push(dist, a, f"{host}/team/app:1", creds=Credentials("alice", "wonder")))
    keys = list(dist.tokens._tokens)
    assert keys and all(k[3] == "alice" for k in keys)
    assert any("repository:team/app:pull,push" in k[2] for k in keys)
    # the cached token serves a second push without asking the realm again
    log = (tmp_path / "reg1.log").read_text().count("/token")
    run(push(dist, a, f"{host}/team/app:1", creds=Credentials("alice", "wonder")))
    assert (tmp_path / "reg1.log").read_text().count("/token") == log
