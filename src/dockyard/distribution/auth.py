"""Registry credentials and authorisation: where creds come from, how a challenge is answered.

Credentials reach the engine two ways:

* ``X-Registry-Auth`` on pull/push: base64url JSON ``{"username", "password",
  "serveraddress", "identitytoken", "registrytoken"}`` (``e30=`` = ``{}`` = anonymous);
* ``~/.docker/config.json`` for our own CLI: ``{"auths": {"<host>": {"auth": base64("u:p"),
  "identitytoken": ...}}}``, keyed by host (``127.0.0.1:5000``) or URL
  (``https://index.docker.io/v1/`` for Docker Hub), or a credential helper named by
  ``credsStore``/``credHelpers`` (``credstore.py`` reads and writes all of these).

Answering a 401 (Docker's flow, as distribution's ``registry/client/auth`` does it):

* ``WWW-Authenticate: Basic realm=...`` -> send ``Authorization: Basic`` with the creds;
* ``WWW-Authenticate: Bearer realm=R,service=S[,scope=X]`` -> ``GET R?service=S&scope=X``
  (basic creds when we have them, anonymous otherwise; an identity token is exchanged with a
  POST grant_type=refresh_token) -> ``{"token"|"access_token", "expires_in"}``; tokens are
  cached per (realm, service, scope, user) until shortly before they expire.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument

DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth refresh token (docker login with a token service)
    registry_token: str = ""  # a bearer token to use as is

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.identity_token or self.registry_token)

    def basic_header(self) -> str | None:
        if not self.username:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


ANONYMOUS = Credentials()


def _b64decode_any(s: str) -> bytes:
    """base64 in either alphabet, padding optional (clients differ)."""
    s = s.strip()
    s += "=" * (-len(s) % 4)
    try:
        if "-" in s or "_" in s:
            return base64.urlsafe_b64decode(s)
        return base64.b64decode(s)
    except (binascii.Error, ValueError) as e:
        raise InvalidArgument(f"invalid base64: {e}") from None


def from_registry_auth_header(value: str | None) -> tuple[Credentials, str]:
    """Decode ``X-Registry-Auth``; returns (credentials, serveraddress). Empty -> anonymous."""
    if not value or not value.strip():
        return ANONYMOUS, ""
    try:
        data = json.loads(_b64decode_any(value))
    except (InvalidArgument, ValueError) as e:
        raise InvalidArgument(f"X-Registry-Auth: invalid value: {e}") from None
    if not isinstance(data, dict):
        raise InvalidArgument("X-Registry-Auth: expected a JSON object")
    return from_auth_config(data), str(data.get("serveraddress") or "")


def from_registry_config_header(value: str | None) -> dict[str, Credentials]:
    """Decode ``X-Registry-Config`` (what ``docker build`` sends: base64url JSON of
    ``{"<server address>": AuthConfig, ...}``, every registry the CLI has credentials for)
    into {normalised host: Credentials}. Missing/empty -> {}."""
    if not value or not value.strip():
        return {}
    try:
        data = json.loads(_b64decode_any(value))
    except (InvalidArgument, ValueError) as e:
        raise InvalidArgument(f"X-Registry-Config: invalid value: {e}") from None
    if not isinstance(data, dict):
        raise InvalidArgument("X-Registry-Config: expected a JSON object of registry -> auth config")
    out: dict[str, Credentials] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise InvalidArgument(f"X-Registry-Config: entry {key!r}: expected a JSON object")
        creds = from_auth_config(entry)
        if not creds.anonymous:
            out[normalize_server_address(str(key))] = creds
    return out


def from_auth_config(data: dict[str, Any]) -> Credentials:
    """An AuthConfig object (the body of POST /auth, the decoded X-Registry-Auth)."""
    def s(*keys: str) -> str:
        for k in keys:
            v = data.get(k)
            if v:
                return str(v)
        return ""

    user, pw = s("username", "Username"), s("password", "Password")
    auth = s("auth", "Auth")
    if auth and not user:
        u, _, p = _b64decode_any(auth).decode(errors="replace").partition(":")
        user, pw = u, p
    return Credentials(user, pw, s("identitytoken", "IdentityToken"), s("registrytoken", "RegistryToken"))


def normalize_server_address(addr: str) -> str:
    """``https://127.0.0.1:5000/v2/`` -> ``127.0.0.1:5000``; Hub's names -> ``docker.io``."""
    a = addr.strip()
    a = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", a)
    a = a.split("/", 1)[0].lower()
    if a in ("", "index.docker.io", "registry-1.docker.io", "docker.io", "registry.hub.docker.com"):
        return "docker.io"
    return a


def load_docker_config(path: Path | None = None) -> dict[str, Credentials]:
    """``~/.docker/config.json`` ``auths`` as {normalised host: Credentials}. Missing file: {}.

    The file's own entries only; ``credstore.get`` also asks credential helpers."""
    if path is None:
        import os

        base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
        path = Path(base) / "config.json"
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"{path}: cannot read docker config: {e}") from None
    auths = doc.get("auths") if isinstance(doc, dict) else None
    out: dict[str, Credentials] = {}
    for key, entry in (auths or {}).items():
        if isinstance(entry, dict):
            out[normalize_server_address(key)] = from_auth_config(entry)
    return out


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "basic" or "bearer" (lower case)
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


_PARAM_RE = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """``WWW-Authenticate`` values -> challenges (schemes we don't know are kept, ignored later)."""
    out: list[Challenge] = []
    for h in headers:
        m = re.match(r"\s*([A-Za-z]+)\s*(.*)$", h)
        if not m:
            continue
        params = {k.lower(): (q if q is not None and q != "" else (u or "")).replace('\\"', '"')
                  for k, q, u in _PARAM_RE.findall(m.group(2))}
        out.append(Challenge(m.group(1).lower(), params))
    return out


class TokenCache:
    """Bearer tokens by (realm, service, scope, user); shared by all operations of a daemon."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        hit = self._tokens.get(key)
        if hit is None:
            return None
        token, expires = hit
        if time.monotonic() >= expires:
            del self._tokens[key]
            return None
        return token

    def put(self, key: tuple[str, str, str, str], token: str, expires_in: int) -> None:
        # Refresh a little early so a token never expires between lookup and use.
        ttl = max(int(expires_in or 60), 60) - 10
        self._tokens[key] = (token, time.monotonic() + ttl)

    def drop(self, key: tuple[str, str, str, str]) -> None:
        self._tokens.pop(key, None)


def encode_registry_auth(creds: Credentials, server_address: str = "") -> str:
    """The ``X-Registry-Auth`` value for ``creds`` (base64url JSON, as the docker CLI sends)."""
    doc: dict[str, str] = {}
    if creds.username:
        doc["username"] = creds.username
        doc["password"] = creds.password
    if creds.identity_token:
        doc["identitytoken"] = creds.identity_token
    if creds.registry_token:
        doc["registrytoken"] = creds.registry_token
    if server_address:
        doc["serveraddress"] = server_address
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def registry_auth_for(image_ref: str, config_path: Path | None = None) -> str:
    """``X-Registry-Auth`` for pushing/pulling ``image_ref``, from ~/.docker/config.json.

    For our CLI: the credentials stored for the reference's registry (in the file or through
    its credential helper, as the docker CLI looks them up), or ``e30=`` (anonymous)."""
    from dockyard.distribution import credstore
    from dockyard.oci import reference

    host = reference.parse(image_ref).domain
    creds = credstore.get(host, config_path)
    if creds is None:
        return "e30="
    return encode_registry_auth(creds, DOCKER_HUB_AUTH_KEY if host == "docker.io" else host)
