"""Bearer tokens: compact JWTs signed with HMAC-SHA256 (``alg: HS256``).

Claims follow Docker's token spec: ``iss``, ``sub`` (account), ``aud`` (service), ``exp``,
``nbf``, ``iat``, ``jti`` and ``access: [{type, name, actions}]``. Only this registry verifies
them, with the same secret it signed them with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from dockyard.registry.access import Scope
from dockyard.registry.errcodes import Unauthorized

_LEEWAY = 60


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def issue(secret: bytes, issuer: str, service: str, account: str, access: list[Scope],
          expiration: int, now: float | None = None) -> str:
    now = int(now if now is not None else time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "iss": issuer, "sub": account, "aud": service, "iat": now, "nbf": now - 1,
        "exp": now + expiration, "jti": secrets.token_hex(8),
        "access": [{"type": s.type, "name": s.name, "actions": list(s.actions)} for s in access],
    }
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(sig)}"


def verify(token: str, secret: bytes, issuer: str, service: str,
           now: float | None = None) -> dict[str, Any]:
    """Return the claims of a valid token; raise Unauthorized for anything else."""
    now = now if now is not None else time.time()
    try:
        h, c, s = token.split(".")
        header = json.loads(_unb64(h))
        claims = json.loads(_unb64(c))
        sig = _unb64(s)
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("malformed bearer token") from None
    if header.get("alg") != "HS256":
        raise Unauthorized("unsupported token algorithm")
    good = hmac.new(secret, f"{h}.{c}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(sig, good):
        raise Unauthorized("invalid token signature")
    if claims.get("iss") != issuer or claims.get("aud") != service:
        raise Unauthorized("token was issued for another issuer or service")
    if not isinstance(claims.get("exp"), int) or claims["exp"] + _LEEWAY < now:
        raise Unauthorized("token expired")
    if isinstance(claims.get("nbf"), int) and claims["nbf"] - _LEEWAY > now:
        raise Unauthorized("token not valid yet")
    return claims


def token_allows(claims: dict[str, Any], scope: Scope) -> bool:
    have: set[str] = set()
    for a in claims.get("access") or []:
        if a.get("type") == scope.type and a.get("name") == scope.name:
            have.update(a.get("actions") or [])
    return "*" in have or all(x in have for x in scope.actions)
