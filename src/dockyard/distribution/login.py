"""login: check credentials against a registry (what ``POST /auth`` does for ``docker login``).

``GET /v2/`` without credentials: 200 -> the registry needs none (success); 401 Basic ->
``GET /v2/`` again with them; 401 Bearer -> ask the token realm with them (no scope). A
refusal raises PermissionDenied with docker's text; an unreachable registry Unavailable.
Returns the identity (refresh) token the token server handed out, or "".
"""

from __future__ import annotations

from dockyard.distribution.auth import Credentials, normalize_server_address
from dockyard.distribution.client import RepoClient
from dockyard.distribution.endpoints import Endpoint
from dockyard.distribution.service import Distribution
from dockyard.errors import InvalidArgument, PermissionDenied, Unavailable


async def login(dist: Distribution, server_address: str, creds: Credentials) -> str:
    host = normalize_server_address(server_address)
    if not creds.username and not creds.identity_token:
        raise InvalidArgument("login: a username is required")
    async with dist.session() as session:

        async def attempt(ep: Endpoint) -> str:
            rc = RepoClient(session, ep, "", creds=creds, tokens=dist.tokens)
            await rc.ping()
            ch = rc.challenge
            if ch is None:
                return ""
            url = ep.url + "/v2/"
            if ch.scheme == "basic":
                basic = creds.basic_header() or ""
                resp = await rc._send("GET", url, headers={"Authorization": basic})
                async with resp:
                    await resp.read()
                    if resp.status == 200:
                        return ""
                    raise PermissionDenied(
                        f"login attempt to {url} failed with status: {resp.status} {resp.reason}"
                    )
            if ch.scheme == "bearer":
                rc.scopes = ()
                await rc.fetch_token(scopes=())
                return ""
            raise Unavailable(f"login: unsupported authentication scheme {ch.scheme!r} at {url}")

        return await dist.with_endpoints(host, for_pull=False, attempt=attempt)


