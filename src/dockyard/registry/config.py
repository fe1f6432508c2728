"""Registry configuration: a YAML or JSON file, overridden by command-line flags.

File shape (every key optional)::

    addr: 127.0.0.1:5000
    root: /var/lib/dockyard-registry
    tls: {cert: server.crt, key: server.key}
    storage: {delete: true}           # false: DELETE answers 405 UNSUPPORTED
    gc: {grace_seconds: 3600}
    auth:
      htpasswd: /etc/registry/htpasswd  # bcrypt entries; alone => HTTP basic auth
      realm: dockyard-registry          # basic realm
      token:                            # present => bearer tokens (Docker token flow)
        realm: https://host/token       # default: this server's own /token
        service: dockyard-registry
        issuer: dockyard-registry
        secret: <hmac key>              # default: random per process
        expiration: 300
      access:                           # default: any authenticated account may do anything
        - {account: alice, name: "team/*", actions: [pull, push, delete]}
        - {account: "*", name: "*", actions: [pull]}          # any authenticated account
        - {account: anonymous, name: "public/*", actions: [pull]}
    proxy: {remoteurl: http://upstream:5000, username: u, password: p}
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument


@dataclass(frozen=True)
class AccessRule:
    account: str            # an account name, "*" (any authenticated) or "anonymous"
    name: str               # repository glob (fnmatch)
    actions: tuple[str, ...]  # pull, push, delete or "*"


@dataclass(frozen=True)
class TokenConfig:
    realm: str | None       # None: the server's own /token endpoint
    service: str = "dockyard-registry"
    issuer: str = "dockyard-registry"
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    expiration: int = 300


@dataclass(frozen=True)
class AuthConfig:
    htpasswd: Path | None = None
    realm: str = "dockyard-registry"
    token: TokenConfig | None = None
    rules: tuple[AccessRule, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.htpasswd is not None or self.token is not None


@dataclass(frozen=True)
class ProxyConfig:
    remote_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RegistryConfig:
    root: Path
    host: str = "127.0.0.1"
    port: int = 5000
    auth: AuthConfig = AuthConfig()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    proxy: ProxyConfig | None = None
    delete_enabled: bool = True
    gc_grace_seconds: int = 3600


def parse_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgument(f"addr: expected HOST:PORT, got {addr!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def load_file(path: Path) -> dict[str, Any]:
    """Read a YAML or JSON config file (JSON is YAML, but try JSON first for clear errors)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise InvalidArgument(f"config {path}: {e.strerror}") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InvalidArgument(f"config {path}: invalid JSON: {e}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InvalidArgument(f"config {path}: invalid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidArgument(f"config {path}: top level must be a mapping")
    return data


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    v = data.get(key) or {}
    if not isinstance(v, dict):
        raise InvalidArgument(f"config: {key} must be a mapping")
    return v


def _rules(items: Any) -> tuple[AccessRule, ...]:
    if not isinstance(items, list):
        raise InvalidArgument("config: auth.access must be a list")
    rules = []
    for i, r in enumerate(items):
        if not isinstance(r, dict) or "account" not in r:
            raise InvalidArgument(f"config: auth.access[{i}] needs an account")
        actions = r.get("actions", ["pull"])
        if isinstance(actions, str):
            actions = [a.strip() for a in actions.split(",")]
        bad = [a for a in actions if a not in ("pull", "push", "delete", "*")]
        if bad:
            raise InvalidArgument(f"config: auth.access[{i}].actions: unknown action {bad[0]!r}")
        rules.append(AccessRule(str(r["account"]), str(r.get("name", "*")), tuple(actions)))
    return tuple(rules)


def build_config(file_data: dict[str, Any], overrides: dict[str, Any]) -> RegistryConfig:
    """Merge a config file's data with CLI ``overrides`` (None values are ignored)."""
    o = {k: v for k, v in overrides.items() if v is not None}
    addr = o.get("addr") or file_data.get("addr") or "127.0.0.1:5000"
    host, port = parse_addr(str(addr))
    root = o.get("root") or file_data.get("root")
    if not root:
        raise InvalidArgument("root: a storage directory is required (--root or root:)")
    tls = _section(file_data, "tls")
    auth = _section(file_data, "auth")
    tok = auth.get("token")
    if tok is not None and not isinstance(tok, dict):
        tok = {}
    if o.get("auth") == "token" and tok is None:
        tok = {}
    token_cfg = None
    if tok is not None and o.get("auth") != "basic":
        secret = o.get("token_secret") or tok.get("secret")
        token_cfg = TokenConfig(
            realm=o.get("token_realm") or tok.get("realm"),
            service=o.get("token_service") or tok.get("service") or "dockyard-registry",
            issuer=tok.get("issuer") or "dockyard-registry",
            secret=secret.encode() if secret else TokenConfig(None).secret,
            expiration=int(tok.get("expiration", 300)),
        )
    htpasswd = o.get("htpasswd") or auth.get("htpasswd")
    if token_cfg is not None and not htpasswd:
        raise InvalidArgument("auth.token needs auth.htpasswd (the accounts tokens are issued to)")
    auth_cfg = AuthConfig(
        htpasswd=Path(htpasswd) if htpasswd else None,
        realm=str(auth.get("realm", "dockyard-registry")),
        token=token_cfg,
        rules=_rules(auth.get("access", [])),
    )
    if auth_cfg.htpasswd is not None and not auth_cfg.htpasswd.is_file():
        raise InvalidArgument(f"auth.htpasswd: no such file {str(auth_cfg.htpasswd)!r}")
    cert = o.get("tls_cert") or tls.get("cert")
    key = o.get("tls_key") or tls.get("key")
    if bool(cert) != bool(key):
        raise InvalidArgument("tls: both a certificate and a key are needed")
    proxy = _section(file_data, "proxy")
    remote = o.get("proxy_remote_url") or proxy.get("remoteurl")
    proxy_cfg = None
    if remote:
        if not str(remote).startswith(("http://", "https://")):
            raise InvalidArgument(f"proxy.remoteurl: expected an http(s) URL, got {remote!r}")
        proxy_cfg = ProxyConfig(str(remote).rstrip("/"),
                                o.get("proxy_username") or proxy.get("username"),
                                o.get("proxy_password") or proxy.get("password"))
    storage = _section(file_data, "storage")
    gc = _section(file_data, "gc")
    return RegistryConfig(
        root=Path(root), host=host, port=port, auth=auth_cfg,
        tls_cert=Path(cert) if cert else None, tls_key=Path(key) if key else None,
        proxy=proxy_cfg, delete_enabled=bool(storage.get("delete", True)),
        gc_grace_seconds=int(gc.get("grace_seconds", 3600)),
    )
