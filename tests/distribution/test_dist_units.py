"""Pure logic of the registry client: progress strings, credentials, challenges, endpoints."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dockyard.distribution import progress as pg
from dockyard.distribution.auth import (
    Credentials,
    TokenCache,
    from_registry_auth_header,
    load_docker_config,
    normalize_server_address,
    parse_challenges,
)
from dockyard.distribution.client import registry_message
from dockyard.distribution.endpoints import DOCKER_HUB_URL, Endpoint, endpoints_for, is_insecure
from dockyard.errors import InvalidArgument


def test_progress_matches_dockerd_wire_trace() -> None:
    # Lines recorded from dockerd 20.10 pulling busybox (shared/specs/docker/wire-trace...).
    assert pg.transfer("Downloading", "d586fe1170be", 36445, 1069946) == {
        "status": "Downloading", "progressDetail": {"current": 36445, "total": 1069946},
        "progress": "[=>" + " " * 49 + "]  36.45kB/1.07MB", "id": "d586fe1170be"}
    assert pg.progress_bar(1069946, 1069946) == "[" + "=" * 50 + ">]   1.07MB/1.07MB"
    assert pg.progress_bar(32768, 1069946) == "[=>" + " " * 49 + "]  32.77kB/1.07MB"
    assert pg.layer("Pull complete", "d586fe1170be") == {
        "status": "Pull complete", "progressDetail": {}, "id": "d586fe1170be"}
    assert pg.status("Pulling from library/busybox", "latest") == {
        "status": "Pulling from library/busybox", "id": "latest"}
    assert pg.status("Digest: sha256:x") == {"status": "Digest: sha256:x"}
    assert pg.error("boom") == {"errorDetail": {"message": "boom"}, "error": "boom"}
    assert [pg.human_size(n) for n in (0, 999, 1000, 1536, 212_000_000, 10**12)] == [
        "0B", "999B", "1kB", "1.536kB", "212MB", "1TB"]
    assert pg.short_id("sha256:" + "ab" * 32) == "abababababab"


def test_throttle_reports_start_steps_and_end() -> None:
    t = pg.Throttle(10 << 20)
    due = [n for n in range(0, (10 << 20) + 1, 64 << 10) if t.due(n)]
    assert due[0] == 0 and due[-1] == 10 << 20
    assert 10 <= len(due) <= 25
    assert not t.due(10 << 20)  # the end reported again (a stream's last chunk, then EOF): one line


def test_registry_auth_header() -> None:
    assert from_registry_auth_header("e30=")[0].anonymous
    assert from_registry_auth_header(None)[0].anonymous
    raw = json.dumps({"username": "alice", "password": "wonder/?", "serveraddress": "127.0.0.1:5000"})
    enc = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    creds, addr = from_registry_auth_header(enc)
    assert creds == Credentials("alice", "wonder/?") and addr == "127.0.0.1:5000"
    assert creds.basic_header() == "Basic " + base64.b64encode(b"alice:wonder/?").decode()
    tok = base64.b64encode(json.dumps({"identitytoken": "refresh"}).encode()).decode()
    assert from_registry_auth_header(tok)[0].identity_token == "refresh"
    with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
        from_registry_auth_header("!!!not base64")
    with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
        from_registry_auth_header(base64.b64encode(b"[1]").decode())


def test_docker_config_json(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
        "127.0.0.1:5000": {"auth": base64.b64encode(b"alice:a:b").decode()},
        "http://localhost:5001/v2/": {"identitytoken": "tok"},
    }}))
    creds = load_docker_config(p)
    assert creds["docker.io"] == Credentials("hub", "pw")
    assert creds["127.0.0.1:5000"] == Credentials("alice", "a:b")
    assert creds["localhost:5001"].identity_token == "tok"
    assert load_docker_config(tmp_path / "missing.json") == {}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InvalidArgument, match="bad.json"):
        load_docker_config(tmp_path / "bad.json")


def test_server_address_and_challenges() -> None:
    assert normalize_server_address("https://index.docker.io/v1/") == "docker.io"
    assert normalize_server_address("http://127.0.0.1:5000/v2/") == "127.0.0.1:5000"
    assert normalize_server_address("Registry.Example.com") == "registry.example.com"
    [ch] = parse_challenges(['Bearer realm="https://auth.io/token",service="reg",scope="repository:a:pull,push"'])
    assert ch.scheme == "bearer" and ch.realm == "https://auth.io/token"
    assert ch.params["scope"] == "repository:a:pull,push" and ch.params["service"] == "reg"
    [b] = parse_challenges(['Basic realm="Registry Realm"'])
    assert b.scheme == "basic" and b.realm == "Registry Realm"


def test_token_cache_expiry() -> None:
    c = TokenCache()
    c.put(("r", "s", "scope", "u"), "t", 300)
    assert c.get(("r", "s", "scope", "u")) == "t"
    assert c.get(("r", "s", "scope", "other")) is None
    c._tokens[("r", "s", "scope", "u")] = ("t", 0.0)
    assert c.get(("r", "s", "scope", "u")) is None


def test_endpoints() -> None:
    assert is_insecure("127.0.0.1:5000") and is_insecure("localhost:5000") and is_insecure("[::1]:5000")
    assert not is_insecure("registry.example.com")
    assert is_insecure("10.1.2.3:5000", ("10.0.0.0/8",))
    assert is_insecure("reg.lan:5000", ("reg.lan:5000",))
    assert endpoints_for("127.0.0.1:5000") == [
        Endpoint("https://127.0.0.1:5000", tls_verify=False), Endpoint("http://127.0.0.1:5000", tls_verify=False)]
    assert endpoints_for("registry.example.com") == [Endpoint("https://registry.example.com")]
    eps = endpoints_for("docker.io", mirrors=("http://127.0.0.1:5000/",))
    assert eps == [Endpoint("http://127.0.0.1:5000", tls_verify=False, mirror=True), Endpoint(DOCKER_HUB_URL)]
    assert endpoints_for("docker.io", mirrors=("http://127.0.0.1:5000",), for_pull=False) == [
        Endpoint(DOCKER_HUB_URL)]


def test_registry_error_text() -> None:
    body = json.dumps({"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]})
    assert registry_message(403, body.encode()) == "denied: requested access to the resource is denied"
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
    assert registry_message(404, body.encode()) == "manifest unknown: manifest unknown"
    assert registry_message(502, b"<html>bad gateway</html>") == "unexpected status 502: <html>bad gateway</html>"


def test_registry_auth_for_cli(tmp_path: Path) -> None:
    from dockyard.distribution.auth import encode_registry_auth, registry_auth_for

    p = tmp_path / "config.json"
    p.write_text(json.dumps({"auths": {
        "127.0.0.1:5000": {"auth": base64.b64encode(b"alice:wonder").decode()},
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
    }}))
    creds, addr = from_registry_auth_header(registry_auth_for("127.0.0.1:5000/team/app:1", p))
    assert creds == Credentials("alice", "wonder") and addr == "127.0.0.1:5000"
    creds, addr = from_registry_auth_header(registry_auth_for("busybox", p))
    assert creds == Credentials("hub", "pw") and addr == "https://index.docker.io/v1/"
    assert registry_auth_for("other.example:5000/x", p) == "e30="
    assert from_registry_auth_header(encode_registry_auth(Credentials(identity_token="t")))[0].identity_token == "t"
