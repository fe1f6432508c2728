"""Pull-through cache: fetch what the local store lacks from an upstream registry, keep it.

``Upstream`` speaks the pull half of the distribution API to ``remote_url``. It answers an
upstream 401 by following the ``WWW-Authenticate`` challenge: basic credentials when the
upstream asks for basic, else a token from the bearer realm (with the configured credentials,
or anonymously), cached per scope until it expires. Network failures raise UpstreamUnavailable
so the caller can fall back to what it has cached.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from dockyard.oci.digest import Digest
from dockyard.registry.config import ProxyConfig
from dockyard.registry.errcodes import (
    BlobUnknown,
    ManifestUnknown,
    NameUnknown,
    UpstreamUnavailable,
)
from dockyard.registry.manifest import MANIFEST_TYPES

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
# Manifests and tag lists are small: a slow upstream should not stall a cached pull for long.
_META_TIMEOUT = aiohttp.ClientTimeout(total=20, sock_connect=5)


@dataclass(frozen=True)
class FetchedManifest:
    body: bytes
    media_type: str
    digest: Digest


class Upstream:
    def __init__(self, cfg: ProxyConfig) -> None:
        self.cfg = cfg
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[str, tuple[str, float]] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60))
        return self._session

    def _basic(self) -> aiohttp.BasicAuth | None:
        if self.cfg.username is None:
            return None
        return aiohttp.BasicAuth(self.cfg.username, self.cfg.password or "")

    async def _token(self, challenge: str, scope: str) -> str:
        cached = self._tokens.get(scope)
        if cached and cached[1] > time.time():
            return cached[0]
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", None)
        if not realm:
            raise UpstreamUnavailable("upstream sent a bearer challenge without realm")
        query = {"scope": scope}
        if "service" in params:
            query["service"] = params["service"]
        async with self._sess().get(realm, params=query, auth=self._basic()) as r:
            if r.status != 200:
                raise UpstreamUnavailable(f"upstream token endpoint answered {r.status}")
            body = await r.json(content_type=None)
        token = body.get("token") or body.get("access_token")
        if not token:
            raise UpstreamUnavailable("upstream token endpoint returned no token")
        ttl = int(body.get("expires_in", 60))
        self._tokens[scope] = (token, time.time() + max(ttl - 10, 1))
        return token

    async def _open(self, method: str, name: str, path: str, headers: dict[str, str],
                    timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        url = f"{self.cfg.remote_url}/v2/{name}/{path}"
        scope = f"repository:{name}:pull"
        try:
            auth_hdr: dict[str, str] = {}
            cached = self._tokens.get(scope)
            if cached and cached[1] > time.time():
                auth_hdr = {"Authorization": f"Bearer {cached[0]}"}
            kw: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
            r = await self._sess().request(method, url, headers={**headers, **auth_hdr},
                                           auth=None if auth_hdr else self._basic(), **kw)
            if r.status == 401:
                challenge = r.headers.get("WWW-Authenticate", "")
                r.release()
                if challenge.lower().startswith("bearer"):
                    token = await self._token(challenge, scope)
                    r = await self._sess().request(
                        method, url, headers={**headers, "Authorization": f"Bearer {token}"},
                        **kw)
            return r
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise UpstreamUnavailable(f"upstream {self.cfg.remote_url}: {e}") from None

    async def manifest(self, name: str, ref: str) -> FetchedManifest:
        r = await self._open("GET", name, f"manifests/{ref}",
                             {"Accept": ", ".join(MANIFEST_TYPES)}, _META_TIMEOUT)
        async with r:
            if r.status == 404:
                raise ManifestUnknown(f"manifest {name}:{ref} unknown upstream")
            if r.status != 200:
                raise UpstreamUnavailable(f"upstream answered {r.status} for manifest {name}:{ref}")
            body = await r.read()
            mt = (r.content_type or "").split(";")[0]
        d = Digest.parse(ref) if ":" in ref else Digest.of_bytes(body)
        if Digest.of_bytes(body, d.algorithm) != d:
            raise UpstreamUnavailable(f"upstream manifest {name}@{ref} does not match its digest")
        return FetchedManifest(body, mt, d)

    async def tags(self, name: str) -> list[str]:
        r = await self._open("GET", name, "tags/list", {}, _META_TIMEOUT)
        async with r:
            if r.status == 404:
                raise NameUnknown(f"repository {name} unknown upstream", detail={"name": name})
            if r.status != 200:
                raise UpstreamUnavailable(f"upstream answered {r.status} for tags of {name}")
            body = await r.json(content_type=None)
        tags = body.get("tags") or []
        return sorted(t for t in tags if isinstance(t, str))

    async def blob(self, name: str, d: Digest) -> tuple[aiohttp.ClientResponse, int | None]:
        """An open response streaming blob ``d``; the caller reads and releases it."""
        r = await self._open("GET", name, f"blobs/{d}", {})
        if r.status == 404:
            r.release()
            raise BlobUnknown(f"blob {d} unknown upstream", detail={"digest": str(d)})
        if r.status != 200:
            r.release()
            raise UpstreamUnavailable(f"upstream answered {r.status} for blob {d}")
        return r, r.content_length


async def iter_body(r: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    async for chunk in r.content.iter_any():
        yield chunk
