"""Basic and bearer-token authentication against a real registry process."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from regtest_support import Reg, basic, sha256

from dockyard.registry.htpasswd import hash_password

RULES = [
    {"account": "alice", "name": "*", "actions": ["pull", "push", "delete"]},
    {"account": "bob", "name": "team/*", "actions": ["pull"]},
    {"account": "anonymous", "name": "public/*", "actions": ["pull"]},
]


@pytest.fixture
def auth_files(tmp_path: Path) -> tuple[Path, Path]:
    ht = tmp_path / "htpasswd"
    ht.write_text("".join(f"{u}:{hash_password(p, rounds=4).replace('$2b$', '$2y$')}\n"
                          for u, p in (("alice", "wonder"), ("bob", "builder"))))
    cfg = tmp_path / "registry.yml"
    cfg.write_text(json.dumps({"auth": {"htpasswd": str(ht), "access": RULES}}))
    return ht, cfg


def _tree(root: Path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


def test_basic_auth(registry_factory: Any, auth_files: tuple[Path, Path]) -> None:
    _, cfg = auth_files
    reg: Reg = registry_factory("--config", str(cfg))
    r = reg.req("GET", "/v2/")
    assert r.status == 401 and r.code == "UNAUTHORIZED"
    assert r.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert reg.req("GET", "/v2/", auth=basic("alice", "wrong")).status == 401
    assert reg.req("GET", "/v2/", auth=basic("nobody", "x")).status == 401
    assert reg.req("GET", "/v2/", auth=basic("alice", "wonder")).status == 200
    reg.auth = basic("alice", "wonder")
    d = reg.push_blob("team/app", b"secret")
    pd = reg.push_blob("public/img", b"for everyone")
    before = _tree(reg.root)
    # bob may pull team/* but not push
    bob = basic("bob", "builder")
    assert reg.req("GET", f"/v2/team/app/blobs/{d}", auth=bob).body == b"secret"
    r = reg.req("POST", "/v2/team/app/blobs/uploads/", auth=bob)
    assert r.status == 403 and r.code == "DENIED"
    r = reg.req("DELETE", f"/v2/team/app/blobs/{d}", auth=bob)
    assert r.status == 403
    r = reg.req("GET", f"/v2/other/blobs/{d}", auth=bob)
    assert r.status == 403
    r = reg.req("POST", f"/v2/team/app/blobs/uploads/?digest={sha256(b'x')}", b"x", auth=None)
    assert r.status == 401
    # anonymous pulls where a rule allows them (public/*), and only there
    assert reg.req("GET", f"/v2/public/img/blobs/{pd}", auth=None).body == b"for everyone"
    assert reg.req("GET", f"/v2/team/app/blobs/{d}", auth=None).status == 401
    assert reg.req("POST", "/v2/public/img/blobs/uploads/", auth=None).status == 401
    assert _tree(reg.root) == before  # nothing changed by refused requests


def _challenge(header: str) -> dict[str, str]:
    assert header.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def _token(reg: Reg, scope: str, auth: str | None) -> str:
    r = reg.req("GET", f"/token?service=dockyard-registry&scope={quote(scope)}", auth=auth)
    assert r.status == 200, r.body
    body = r.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0
    return "Bearer " + body["token"]


def test_token_auth_flow(registry_factory: Any, auth_files: tuple[Path, Path]) -> None:
    _, cfg = auth_files
    reg: Reg = registry_factory("--config", str(cfg), "--auth", "token")
    r = reg.req("GET", "/v2/")
    assert r.status == 401
    ch = _challenge(r.headers["WWW-Authenticate"])
    assert ch["realm"] == f"{reg.url}/token" and ch["service"] == "dockyard-registry"
    r = reg.req("POST", "/v2/team/app/blobs/uploads/")
    assert r.status == 401
    assert _challenge(r.headers["WWW-Authenticate"])["scope"] == "repository:team/app:pull,push"

    # alice gets pull+push and pushes
    tok = _token(reg, "repository:team/app:pull,push", basic("alice", "wonder"))
    reg.auth = tok
    d = reg.push_blob("team/app", b"tokenised")
    assert reg.req("GET", f"/v2/team/app/blobs/{d}").body == b"tokenised"
    # the token is scoped to team/app only
    r = reg.req("GET", f"/v2/team/other/blobs/{d}")
    assert r.status == 403 and r.code == "DENIED"
    before = _tree(reg.root)

    # wrong password at the token endpoint
    r = reg.req("GET", "/token?service=dockyard-registry&scope=repository:team/app:pull",
                auth=basic("alice", "nope"))
    assert r.status == 401

    # bob asks for pull,push and gets only pull: reads work, pushes are denied
    bob = _token(reg, "repository:team/app:pull,push", basic("bob", "builder"))
    assert reg.req("GET", f"/v2/team/app/blobs/{d}", auth=bob).status == 200
    r = reg.req("POST", "/v2/team/app/blobs/uploads/", auth=bob)
    assert r.status == 403 and r.code == "DENIED"
    r = reg.req("PUT", "/v2/team/app/manifests/x", b"{}", auth=bob)
    assert r.status == 403

    # anonymous token: pull on public/* only
    anon = _token(reg, "repository:team/app:pull", None)
    assert reg.req("GET", f"/v2/team/app/blobs/{d}", auth=anon).status == 403

    # a forged or garbage token is unauthorized, not denied
    forged = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
    r = reg.req("GET", f"/v2/team/app/blobs/{d}", auth=forged)
    assert r.status == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert reg.req("GET", "/v2/", auth="Bearer garbage").status == 401
    assert _tree(reg.root) == before

    # catalog needs registry:catalog:*
    assert reg.req("GET", "/v2/_catalog").status == 403
    cat = _token(reg, "registry:catalog:*", basic("alice", "wonder"))
    assert reg.req("GET", "/v2/_catalog", auth=cat).json()["repositories"] == ["team/app"]

    # OAuth2 password grant (POST) works too
    r = reg.req("POST", "/token",
                b"grant_type=password&username=alice&password=wonder&service=dockyard-registry"
                b"&scope=repository:team/app:pull",
                {"Content-Type": "application/x-www-form-urlencoded"}, auth=None)
    assert r.status == 200 and r.json()["access_token"]


def test_bad_config_is_refused(registry_factory: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("auth: {htpasswd: /nonexistent/file}\n")
    with pytest.raises(AssertionError, match="auth.htpasswd"):
        registry_factory("--config", str(bad))
    assert not (tmp_path / "reg1").exists()


def test_token_cross_repository_mount(registry_factory: Any, auth_files: tuple[Path, Path]) -> None:
    _, cfg = auth_files
    reg: Reg = registry_factory("--config", str(cfg), "--auth", "token")
    alice = basic("alice", "wonder")
    reg.auth = _token(reg, "repository:src/a:pull,push", alice)
    d = reg.push_blob("src/a", b"shared layer")
    # docker asks for both scopes in one token request (two scope parameters)
    r = reg.req("GET", "/token?service=dockyard-registry&scope=repository:dst/b:pull,push"
                       "&scope=repository:src/a:pull", auth=alice)
    both = "Bearer " + r.json()["token"]
    r = reg.req("POST", f"/v2/dst/b/blobs/uploads/?mount={d}&from=src/a", auth=both)
    assert r.status == 201
    # a token without pull on the source: no mount, an upload session instead
    only_dst = _token(reg, "repository:dst/c:pull,push", alice)
    r = reg.req("POST", f"/v2/dst/c/blobs/uploads/?mount={d}&from=src/a", auth=only_dst)
    assert r.status == 202 and "/blobs/uploads/" in r.headers["Location"]
    assert reg.req("HEAD", f"/v2/dst/c/blobs/{d}", auth=only_dst).status == 404
    # and no anonymous (from-less) mount when auth is on
    r = reg.req("POST", f"/v2/dst/c/blobs/uploads/?mount={d}", auth=only_dst)
    assert r.status == 202
