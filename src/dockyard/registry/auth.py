"""Who may do what: HTTP basic auth or Docker-style bearer tokens, in front of every route.

``Authenticator.authorize(header, scopes, realm_url)`` returns the account name or raises:

- Unauthorized (401) with a ``WWW-Authenticate`` challenge when credentials are missing or bad.
  Token mode: ``Bearer realm="<realm>",service="<service>",scope="repository:n:pull,push"``.
- Denied (403) when the caller is known but lacks an action (rules in ``access.py``; in token
  mode, the token's ``access`` claim).

``issue_token`` is the token endpoint (``GET /token?service=&scope=`` with optional basic
credentials, or the OAuth2 ``POST`` password grant): it grants the requested actions that the
rules allow (possibly none), as Docker's token server does, and the registry answers 403 later.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.registry.access import ANONYMOUS, Scope, granted
from dockyard.registry.config import AuthConfig
from dockyard.registry.errcodes import Denied, Unauthorized, Unsupported
from dockyard.registry.htpasswd import Htpasswd
from dockyard.registry.tokens import issue, token_allows, verify


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class Authenticator:
    def __init__(self, cfg: AuthConfig) -> None:
        self.cfg = cfg
        self.htpasswd = Htpasswd(cfg.htpasswd) if cfg.htpasswd else None

    @property
    def enabled(self) -> bool:
        return self.cfg.enabled

    def realm(self, own_token_url: str) -> str:
        assert self.cfg.token is not None
        return self.cfg.token.realm or own_token_url

    def _challenge(self, scopes: list[Scope], own_token_url: str, error: str | None = None) -> str:
        if self.cfg.token is None:
            return f'Basic realm="{self.cfg.realm}"'
        parts = [f'realm="{self.realm(own_token_url)}"', f'service="{self.cfg.token.service}"']
        if scopes:
            parts.append(f'scope="{" ".join(str(s) for s in scopes)}"')
        if error:
            parts.append(f'error="{error}"')
        return "Bearer " + ",".join(parts)

    def _unauthorized(self, msg: str, scopes: list[Scope], url: str,
                      error: str | None = None) -> Unauthorized:
        detail = [{"Type": s.type, "Name": s.name, "Action": a} for s in scopes for a in s.actions]
        return Unauthorized(msg, detail=detail or None,
                            headers={"WWW-Authenticate": self._challenge(scopes, url, error)})

    def authorize(self, header: str | None, scopes: list[Scope], own_token_url: str) -> str:
        if not self.enabled:
            return ANONYMOUS
        if self.cfg.token is not None:
            tok = self.cfg.token
            if not header or header[:7].lower() != "bearer ":
                raise self._unauthorized("authentication required", scopes, own_token_url)
            try:
                claims = verify(header[7:].strip(), tok.secret, tok.issuer, tok.service)
            except Unauthorized as e:
                raise self._unauthorized(str(e), scopes, own_token_url, "invalid_token") from None
            for s in scopes:
                if not token_allows(claims, s):
                    raise Denied(f"requested access to the resource is denied: {s}",
                                 detail={"scope": str(s)})
            return str(claims.get("sub") or ANONYMOUS)
        creds = parse_basic(header)
        if creds is None and scopes and all(
                granted(self.cfg.rules, ANONYMOUS, s) == s.actions for s in scopes):
            return ANONYMOUS  # rules open this to anonymous users (e.g. public pulls)
        if creds is None or self.htpasswd is None or not self.htpasswd.verify(*creds):
            raise self._unauthorized("authentication required", scopes, own_token_url)
        for s in scopes:
            if granted(self.cfg.rules, creds[0], s) != s.actions:
                raise Denied(f"requested access to the resource is denied: {s}",
                             detail={"scope": str(s)})
        return creds[0]

    def allowed(self, header: str | None, scope: Scope, own_token_url: str) -> bool:
        """Non-raising check (cross-repository mount falls back to an upload when False)."""
        try:
            self.authorize(header, [scope], own_token_url)
            return True
        except (Unauthorized, Denied):
            return False

    def issue_token(self, user: str | None, password: str | None, service: str | None,
                    scope_strings: list[str]) -> dict[str, Any]:
        tok = self.cfg.token
        if tok is None:
            raise Unsupported("this registry does not issue tokens")
        if service and service != tok.service:
            raise InvalidArgument(f"service: this token server serves {tok.service!r}")
        account = ANONYMOUS
        if user is not None:
            if self.htpasswd is None or not self.htpasswd.verify(user, password or ""):
                raise Unauthorized("invalid username or password",
                                   headers={"WWW-Authenticate": f'Basic realm="{self.cfg.realm}"'})
            account = user
        grants: list[Scope] = []
        for s in scope_strings:
            for one in s.split(" "):
                if not one:
                    continue
                scope = Scope.parse(one)
                actions = granted(self.cfg.rules, account, scope)
                grants.append(Scope(scope.type, scope.name, actions))
        now = time.time()
        t = issue(tok.secret, tok.issuer, tok.service, account, grants, tok.expiration, now)
        return {"token": t, "access_token": t, "expires_in": tok.expiration,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
