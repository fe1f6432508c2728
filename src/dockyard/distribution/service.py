"""``Distribution``: the daemon-wide registry client object the API layer calls.

It holds what outlives one operation: the mirror and insecure-registry settings and the
bearer-token cache. Each operation (pull, push, login, inspect) opens its own
``aiohttp.ClientSession`` (closed when the operation ends) through :meth:`session`, and gets
a :class:`RepoClient` for a repository with :meth:`open_repo`, which tries the endpoints in
order (``endpoints.endpoints_for``) and returns the first that answers ``GET /v2/``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import aiohttp

from dockyard.distribution.auth import ANONYMOUS, Credentials, TokenCache
from dockyard.distribution.certs import CERTS_DIRS
from dockyard.distribution.client import EndpointUnreachable, RepoClient
from dockyard.distribution.endpoints import Endpoint, endpoints_for
from dockyard.errors import NotFound, PermissionDenied, Unavailable

T = TypeVar("T")


class Distribution:
    def __init__(self, *, mirrors: tuple[str, ...] = (), insecure_registries: tuple[str, ...] = (),
                 user_agent: str = "dockyard/0.1.0", certs_dirs: tuple[str, ...] = CERTS_DIRS) -> None:
        self.mirrors = tuple(mirrors)
        self.insecure_registries = tuple(insecure_registries)
        self.tokens = TokenCache()
        self.user_agent = user_agent
        self.certs_dirs = tuple(certs_dirs)
        self._pull_locks: dict[tuple[int, str, str], tuple[asyncio.Lock, list[int]]] = {}
        self._claims: collections.Counter[tuple[int, str]] = collections.Counter()

    @contextlib.contextmanager
    def claiming(self, images: Any, digests: set[str]) -> Iterator[Callable[[str], bool]]:
        """Mark ``digests`` as relied on by one pull until it ends; yields ``sole(digest)``:
        no other pull in progress relies on it (so a failed pull may delete it: another pull
        that found it "Already exists" must not lose it before its image is recorded)."""
        keys = [(id(images), d) for d in digests]
        self._claims.update(keys)
        try:
            yield lambda d: self._claims[(id(images), d)] <= 1
        finally:
            self._claims.subtract(keys)
            for k in keys:
                if self._claims[k] <= 0:
                    del self._claims[k]

    @contextlib.asynccontextmanager
    async def pulling(self, images: Any, ref: str, platform: str | None) -> AsyncIterator[None]:
        """Serialise identical pulls into one store: the second finds every blob present
        ("Already exists", "Image is up to date") instead of downloading it again."""
        key = (id(images), ref, platform or "")
        lock, users = self._pull_locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:  # the last one out removes the entry
                del self._pull_locks[key]

    def session(self) -> aiohttp.ClientSession:
        # limit=0: concurrency is bounded by the callers (3 downloads, 5 uploads, as docker).
        conn = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60)
        return aiohttp.ClientSession(connector=conn, headers={"User-Agent": self.user_agent},
                                     auto_decompress=False)

    def endpoints(self, host: str, *, for_pull: bool) -> list[Endpoint]:
        return endpoints_for(host, mirrors=self.mirrors, insecure_registries=self.insecure_registries,
                             for_pull=for_pull, certs_dirs=self.certs_dirs)

    async def open_repo(self, session: aiohttp.ClientSession, endpoint: Endpoint, repo: str, *,
                        creds: Credentials = ANONYMOUS, actions: str = "pull",
                        extra_scopes: tuple[str, ...] = ()) -> RepoClient:
        rc = RepoClient(session, endpoint, repo, creds=creds, tokens=self.tokens, actions=actions,
                        extra_scopes=extra_scopes)
        await rc.ping()
        return rc

    async def with_endpoints(
        self, host: str, *, for_pull: bool, attempt: Callable[[Endpoint], Awaitable[T]],
    ) -> T:
        """Run ``attempt`` on each endpoint until one succeeds.

        Moves on when an endpoint is unreachable, or when a mirror lacks the content
        (NotFound) or refuses access (PermissionDenied); any other error is final. When all
        fail, the last error is raised (the official endpoint's, which a user understands)."""
        last: Exception | None = None
        for ep in self.endpoints(host, for_pull=for_pull):
            try:
                return await attempt(ep)
            except EndpointUnreachable as e:
                last = e
            except (NotFound, PermissionDenied) as e:
                if not ep.mirror:
                    raise
                last = e
        if last is None:
            raise Unavailable(f"no endpoint for registry {host}")
        raise last


def distribution_for(services: Any) -> Distribution:
    """The Distribution of a daemon's services object, made on first use from ``services.cfg``."""
    d = getattr(services, "_distribution", None)
    if d is None:
        cfg = getattr(services, "cfg", None)
        d = Distribution(mirrors=tuple(getattr(cfg, "registry_mirrors", ()) or ()),
                         insecure_registries=tuple(getattr(cfg, "insecure_registries", ()) or ()))
        services._distribution = d
    return d
