"""credstore: config.json's file store, credsStore and credHelpers, with fake helper programs."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from credhelper_support import FakeHelper

from dockyard.distribution import credstore
from dockyard.distribution.auth import (
    DOCKER_HUB_AUTH_KEY,
    Credentials,
    from_registry_auth_header,
    registry_auth_for,
)
from dockyard.errors import InvalidArgument, Unavailable


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "dockercfg"
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    return d / "config.json"


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeHelper]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return lambda name, fail=False: FakeHelper(bindir, name, fail)


def _write(cfg: Path, doc: dict[str, object]) -> None:
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps(doc))


def test_auth_keys() -> None:
    assert credstore.auth_key(None) == DOCKER_HUB_AUTH_KEY
    assert credstore.auth_key("index.docker.io") == DOCKER_HUB_AUTH_KEY
    assert credstore.auth_key("https://127.0.0.1:5000/v2/") == "127.0.0.1:5000"
    assert credstore.auth_key("Registry.Example.com") == "registry.example.com"


def test_file_store_round_trip(cfg: Path) -> None:
    assert credstore.get("127.0.0.1:5000") is None  # no file at all
    credstore.store("127.0.0.1:5000", Credentials("alice", "s3cret"))
    doc = json.loads(cfg.read_text())
    assert doc == {"auths": {"127.0.0.1:5000": {"auth": "YWxpY2U6czNjcmV0"}}}
    assert cfg.stat().st_mode & 0o777 == 0o600
    assert credstore.get("http://127.0.0.1:5000") == Credentials("alice", "s3cret")
    credstore.store("docker.io", Credentials("bob", "", identity_token="refresh-me"))
    hub = json.loads(cfg.read_text())["auths"][DOCKER_HUB_AUTH_KEY]
    assert hub == {"auth": base64.b64encode(b"bob:").decode(), "identitytoken": "refresh-me"}
    assert credstore.get("docker.io") == Credentials("bob", "", identity_token="refresh-me")
    assert credstore.erase("127.0.0.1:5000") is True
    assert credstore.erase("127.0.0.1:5000") is False
    assert credstore.get("127.0.0.1:5000") is None
    assert list(json.loads(cfg.read_text())["auths"]) == [DOCKER_HUB_AUTH_KEY]
    assert [p.name for p in cfg.parent.iterdir()] == ["config.json"]  # no temp files left


def test_entry_written_as_url_is_found(cfg: Path) -> None:
    _write(cfg, {"auths": {"https://127.0.0.1:5000/v2/": {"auth": "YWxpY2U6czNjcmV0"}}})
    assert credstore.get("127.0.0.1:5000") == Credentials("alice", "s3cret")
    assert credstore.erase("127.0.0.1:5000") is True
    assert json.loads(cfg.read_text())["auths"] == {}


def test_creds_store_helper(cfg: Path, helpers: Callable[..., FakeHelper]) -> None:
    fake = helpers("fake")
    _write(cfg, {"auths": {}, "credsStore": "fake"})
    assert credstore.get("127.0.0.1:5000") is None  # helper: "not found" is no error
    credstore.store("127.0.0.1:5000", Credentials("alice", "s3cret"))
    assert fake.secrets() == {"127.0.0.1:5000": {"Username": "alice", "Secret": "s3cret"}}
    doc = json.loads(cfg.read_text())
    assert doc["auths"] == {"127.0.0.1:5000": {}}  # listed, but the secret is in the helper
    assert doc["credsStore"] == "fake"
    assert credstore.get("127.0.0.1:5000") == Credentials("alice", "s3cret")
    # identity tokens travel as Username "<token>"
    credstore.store("docker.io", Credentials("bob", "", identity_token="tok"))
    assert fake.secrets()[DOCKER_HUB_AUTH_KEY] == {"Username": "<token>", "Secret": "tok"}
    assert credstore.get("docker.io") == Credentials(identity_token="tok")
    assert credstore.erase("127.0.0.1:5000") is True
    assert "127.0.0.1:5000" not in fake.secrets()
    assert fake.calls() == ["get 127.0.0.1:5000", "store 127.0.0.1:5000", "get 127.0.0.1:5000",
                            f"store {DOCKER_HUB_AUTH_KEY}", f"get {DOCKER_HUB_AUTH_KEY}",
                            "erase 127.0.0.1:5000"]


def test_cred_helpers_win_for_their_registry(cfg: Path, helpers: Callable[..., FakeHelper]) -> None:
    default, special = helpers("default"), helpers("special")
    default.seed("127.0.0.1:5000", "dflt", "d")
    default.seed("127.0.0.1:6000", "dflt", "d")
    special.seed("127.0.0.1:6000", "spec", "s")
    _write(cfg, {"credsStore": "default", "credHelpers": {"127.0.0.1:6000": "special"}})
    assert credstore.get("127.0.0.1:5000") == Credentials("dflt", "d")
    assert credstore.get("127.0.0.1:6000") == Credentials("spec", "s")
    # and registry_auth_for (what `dockyard pull/push` sends) goes through them
    creds, server = from_registry_auth_header(registry_auth_for("127.0.0.1:6000/team/app:1"))
    assert (creds, server) == (Credentials("spec", "s"), "127.0.0.1:6000")
    assert registry_auth_for("127.0.0.1:7000/x") == "e30="  # nothing stored: anonymous
    assert "get 127.0.0.1:6000" not in default.calls()


def test_helper_errors_are_clear(cfg: Path, helpers: Callable[..., FakeHelper]) -> None:
    _write(cfg, {"credsStore": "absent"})
    with pytest.raises(Unavailable, match=r'exec: "docker-credential-absent": executable file '
                                          r"not found in \$PATH"):
        credstore.get("127.0.0.1:5000")
    helpers("broken", fail=True)
    _write(cfg, {"credsStore": "broken", "auths": {"127.0.0.1:5000": {}}})
    with pytest.raises(Unavailable, match=r"docker-credential-broken get failed \(exit status 3\)"
                                          r": the keychain is locked"):
        credstore.get("127.0.0.1:5000")
    with pytest.raises(Unavailable, match="docker-credential-broken store failed"):
        credstore.store("127.0.0.1:5000", Credentials("a", "b"))
    assert json.loads(cfg.read_text())["auths"] == {"127.0.0.1:5000": {}}  # unchanged
    # erase drops the file's entry even when the helper fails, then reports the failure
    with pytest.raises(Unavailable, match="docker-credential-broken erase failed"):
        credstore.erase("127.0.0.1:5000")
    assert json.loads(cfg.read_text())["auths"] == {}


def test_bad_config_file(cfg: Path) -> None:
    _write(cfg, {})
    cfg.write_text("{not json")
    with pytest.raises(InvalidArgument, match="config.json: cannot read docker config"):
        credstore.get("127.0.0.1:5000")
    cfg.write_text("[]")
    with pytest.raises(InvalidArgument, match="not a JSON object"):
        credstore.store("127.0.0.1:5000", Credentials("a", "b"))
    assert cfg.read_text() == "[]"
