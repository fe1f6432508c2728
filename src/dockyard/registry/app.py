"""The registry's HTTP application (aiohttp): routing, auth, headers, error bodies.

Routes (``<name>`` may contain '/', so one catch-all ``/v2/{tail}`` is matched against these
patterns from the right, as distribution's router does)::

    GET          /v2/                                   api version check (auth challenge)
    GET          /v2/_catalog?n=&last=                  repositories (registry:catalog:*)
    GET          /v2/<name>/tags/list?n=&last=          tags                      pull
    GET|HEAD     /v2/<name>/manifests/<ref>             manifest                  pull
    PUT          /v2/<name>/manifests/<ref>[?tag=..]    push manifest             push
    DELETE       /v2/<name>/manifests/<ref>             delete tag / manifest     delete
    GET|HEAD     /v2/<name>/blobs/<digest>              blob (ranges, sendfile)   pull
    DELETE       /v2/<name>/blobs/<digest>              unlink blob               delete
    POST         /v2/<name>/blobs/uploads/              start/single-POST/mount   push (+pull from)
    GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>  status/chunk/commit/cancel  push
    GET          /v2/<name>/referrers/<digest>?artifactType=   referrers          pull
    GET|POST     /token                                 token endpoint (token auth only)

Every response carries ``Docker-Distribution-API-Version: registry/2.0``; every error is
``{"errors": [{"code", "message", "detail"}]}`` with the code's status (``errcodes.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from dockyard.errors import DockyardError, Internal, InvalidArgument
from dockyard.oci.digest import Digest
from dockyard.registry.access import Scope
from dockyard.registry.auth import Authenticator, parse_basic
from dockyard.registry.blobstore import BlobStore
from dockyard.registry.config import RegistryConfig
from dockyard.registry.errcodes import (
    BlobUnknown,
    DigestInvalid,
    ManifestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
    RangeInvalid,
    Unsupported,
    UpstreamUnavailable,
    classify,
)
from dockyard.registry.layout import Layout
from dockyard.registry.manifest import (
    INDEX_TYPES,
    MAX_MANIFEST_SIZE,
    OCI_INDEX,
    parse_manifest,
    pick_platform,
)
from dockyard.registry.names import check_name, is_digest_ref, valid_tag
from dockyard.registry.proxy import Upstream, iter_body
from dockyard.registry.repository import Repositories
from dockyard.registry.uploads import Uploads

log = logging.getLogger("dockyard.registry")
API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, tuple[str, str | None]]  # method -> (handler attribute, action)


def _r(pattern: str, **methods: tuple[str, str | None]) -> Route:
    return Route(re.compile(pattern), methods)


ROUTES = [
    _r(r"^$", GET=("base", None), HEAD=("base", None)),
    _r(r"^_catalog$", GET=("catalog", "catalog")),
    _r(r"^(?P<name>.+)/tags/list$", GET=("tags_list", "pull")),
    _r(r"^(?P<name>.+)/manifests/(?P<ref>[^/]+)$", GET=("manifest_get", "pull"),
       HEAD=("manifest_get", "pull"), PUT=("manifest_put", "push"),
       DELETE=("manifest_delete", "delete")),
    _r(r"^(?P<name>.+)/blobs/uploads/?$", POST=("upload_start", "push")),
    _r(r"^(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)$", GET=("upload_status", "push"),
       PATCH=("upload_patch", "push"), PUT=("upload_put", "push"),
       DELETE=("upload_cancel", "push")),
    _r(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$", GET=("blob_get", "pull"),
       HEAD=("blob_get", "pull"), DELETE=("blob_delete", "delete")),
    _r(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$", GET=("referrers", "pull")),
]


def error_response(err: DockyardError, head: bool = False) -> web.Response:
    code, status, detail, headers = classify(err)
    body = {"errors": [{"code": code, "message": str(err), "detail": detail}]}
    return web.json_response(body, status=status, headers=headers)


def _parse_digest(s: str) -> Digest:
    try:
        return Digest.parse(s)
    except InvalidArgument as e:
        raise DigestInvalid(str(e), detail={"digest": s}) from None


def _readable_ref(name: str, ref: str) -> None:
    """A reference to read or delete: a bad digest is DIGEST_INVALID (400), but a name that
    can't be a tag is simply unknown (404), as distribution answers (its router never matches
    such a path); only a PUT reports TAG_INVALID."""
    if is_digest_ref(ref):
        _parse_digest(ref)
    elif not valid_tag(ref):
        raise ManifestUnknown(f"manifest {name}:{ref} unknown", detail={"tag": ref})


def _page_size(request: web.Request) -> int | None:
    n = request.query.get("n")
    if n is None or n == "":
        return None
    if not n.isdigit():
        raise PaginationInvalid(f"n: expected a non-negative integer, got {n!r}")
    return int(n)


class PaginationInvalid(DigestInvalid):
    code = "PAGINATION_NUMBER_INVALID"


def _paginate(items: list[str], request: web.Request, path: str) -> tuple[list[str], str | None]:
    """Apply n/last; return the page and the Link header (None when no more)."""
    last = request.query.get("last")
    if last:
        items = [i for i in items if i > last]
    n = _page_size(request)
    if n is None:
        return items, None
    page = items[:n]
    if n == 0 or len(items) <= n:
        return page, None
    return page, f'<{path}?{urlencode({"n": n, "last": page[-1]})}>; rel="next"'


def _accepts(request: web.Request) -> list[str]:
    out = []
    for h in request.headers.getall("Accept", []):
        out += [p.split(";")[0].strip().lower() for p in h.split(",") if p.strip()]
    return out


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ManifestTooLarge(f"manifest is {request.content_length} bytes; the limit is {limit}")
    buf = bytearray()
    async for chunk in request.content.iter_any():
        buf += chunk
        if len(buf) > limit:
            raise ManifestTooLarge(f"manifest exceeds the limit of {limit} bytes")
    return bytes(buf)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


class Registry:
    """The handlers; one instance per server process."""

    def __init__(self, cfg: RegistryConfig) -> None:
        self.cfg = cfg
        self.layout = Layout(cfg.root)
        self.layout.ensure()
        self.blobs = BlobStore(self.layout)
        self.uploads = Uploads(self.layout, self.blobs)
        self.repos = Repositories(self.layout, self.blobs)
        self.auth = Authenticator(cfg.auth)
        self.upstream = Upstream(cfg.proxy) if cfg.proxy else None
        self._fetch_locks: dict[str, asyncio.Lock] = {}

    # -- plumbing --------------------------------------------------------------------------
    def _token_url(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}/token"

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        for route in ROUTES:
            m = route.pattern.match(tail)
            if not m:
                continue
            if request.method not in route.methods:
                raise Unsupported(f"method {request.method} not allowed on {request.path}",
                                  headers={"Allow": ", ".join(route.methods)})
            attr, action = route.methods[request.method]
            params = m.groupdict()
            if "name" in params:
                check_name(params["name"])
            self._authorize(request, params, action)
            handler: Handler = getattr(self, attr)
            return await handler(request, params)
        raise web.HTTPNotFound(
            text=json.dumps({"errors": [{"code": "NAME_UNKNOWN", "message": "no such endpoint",
                                         "detail": {"path": request.path}}]}),
            content_type="application/json")

    def _authorize(self, request: web.Request, params: dict[str, str], action: str | None) -> None:
        if not self.auth.enabled:
            return
        scopes: list[Scope] = []
        if action == "catalog":
            scopes.append(Scope("registry", "catalog", ("*",)))
        elif action == "push":
            # Docker asks for pull,push on push; a push needs both (HEAD checks precede it).
            scopes.append(Scope("repository", params["name"], ("pull", "push")))
        elif action is not None:
            scopes.append(Scope("repository", params["name"], (action,)))
        self.auth.authorize(request.headers.get("Authorization"), scopes,
                            self._token_url(request))

    def _no_writes_in_proxy(self) -> None:
        if self.upstream is not None:
            raise Unsupported("this registry is a pull-through cache: pushes and deletes are off")

    # -- base, catalog, tags -------------------------------------------------------------------
    async def base(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        return web.json_response({})

    async def catalog(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        repos, link = _paginate(self.repos.catalog(), request, "/v2/_catalog")
        return web.json_response({"repositories": repos}, headers={"Link": link} if link else None)

    async def tags_list(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name = p["name"]
        all_tags: list[str] | None = None
        if self.upstream is not None:
            try:  # a cache lists the upstream's tags (what a pull would find)
                all_tags = await self.upstream.tags(name)
            except UpstreamUnavailable:
                all_tags = None
        if all_tags is None:
            self.repos.require(name)
            all_tags = self.repos.tags(name)
        tags, link = _paginate(all_tags, request, f"/v2/{name}/tags/list")
        return web.json_response({"name": name, "tags": tags},
                                 headers={"Link": link} if link else None)

    # -- manifests -------------------------------------------------------------------------
    async def manifest_get(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name, ref = p["name"], p["ref"]
        _readable_ref(name, ref)
        if self.upstream is not None:
            await self._proxy_manifest(name, ref)
        body, mt, d = self.repos.get_manifest(name, ref)
        accept = _accepts(request)
        if (mt in INDEX_TYPES and accept and mt not in accept and "*/*" not in accept
                and not is_digest_ref(ref)):
            # An old client that can't read indexes: give it the linux/amd64 image, as
            # distribution does, when that manifest is here.
            child = pick_platform(json.loads(body))
            if child is not None and self.repos.has_manifest(name, child):
                body, mt, d = self.repos.get_manifest(name, str(child))
        headers = {"Docker-Content-Digest": str(d), "ETag": f'"{d}"', "Content-Type": mt}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)

    async def manifest_put(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        self._no_writes_in_proxy()
        name, ref = p["name"], p["ref"]
        body = await _read_limited(request, MAX_MANIFEST_SIZE)
        if is_digest_ref(ref):
            d = _parse_digest(ref)
            actual = Digest.of_bytes(body, d.algorithm)
            if actual != d:
                raise DigestInvalid(f"manifest digest is {actual}, not {d}",
                                    detail={"expected": str(d), "actual": str(actual)})
            tags = request.query.getall("tag", [])
        else:
            d = Digest.of_bytes(body)
            tags = [ref]
        parsed = parse_manifest(body, request.headers.get("Content-Type"))
        self.repos.put_manifest(name, body, d, parsed, tags)
        headers = {"Location": f"/v2/{name}/manifests/{d}", "Docker-Content-Digest": str(d)}
        if parsed.subject is not None:
            headers["OCI-Subject"] = str(parsed.subject.digest)
        resp = web.Response(status=201, headers=headers)
        if is_digest_ref(ref):
            for t in tags:
                resp.headers.add("OCI-Tag", t)
        return resp

    async def manifest_delete(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        self._no_writes_in_proxy()
        if not self.cfg.delete_enabled:
            raise Unsupported("deletion is disabled on this registry")
        name, ref = p["name"], p["ref"]
        _readable_ref(name, ref)
        if is_digest_ref(ref):
            self.repos.delete_manifest(name, _parse_digest(ref))
        else:
            self.repos.delete_tag(name, ref)
        return web.Response(status=202)

    async def _proxy_manifest(self, name: str, ref: str) -> None:
        """Refresh/fetch a manifest from upstream into the local store (pull-through)."""
        assert self.upstream is not None
        if is_digest_ref(ref) and self.repos.has_manifest(name, _parse_digest(ref)):
            return
        try:
            fetched = await self.upstream.manifest(name, ref)
        except UpstreamUnavailable:
            return  # serve what we cached, if anything
        try:
            parsed = parse_manifest(fetched.body, fetched.media_type)
        except ManifestInvalid:
            raise UpstreamUnavailable(f"upstream sent an invalid manifest for {name}:{ref}") \
                from None
        tags = [] if is_digest_ref(ref) else [ref]
        # Blobs arrive lazily on first GET, so don't require them now.
        self.repos.put_manifest(name, fetched.body, fetched.digest, parsed, tags, check=False)

    # -- blobs -----------------------------------------------------------------------------
    async def blob_get(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name, d = p["name"], _parse_digest(p["digest"])
        size = self.repos.has_blob(name, d)
        if size is None and self.upstream is not None:
            if request.method == "GET" and "Range" not in request.headers:
                streamed = await self._proxy_blob_stream(request, name, d)
                if streamed is not None:
                    return streamed
            await self._proxy_blob(name, d)
            size = self.repos.has_blob(name, d)
        if size is None:
            raise BlobUnknown(f"blob {d} unknown to repository {name}", detail={"digest": str(d)})
        headers = {"Docker-Content-Digest": str(d), "Content-Type": "application/octet-stream",
                   "Accept-Ranges": "bytes"}
        if request.method == "HEAD":
            headers["Content-Length"] = str(size)
            headers["ETag"] = f'"{d}"'
            return web.Response(status=200, headers=headers)
        # FileResponse: sendfile, Range/If-Range, 206/416 done by aiohttp.
        return web.FileResponse(self.blobs.path(d), headers=headers)

    async def _proxy_blob_stream(self, request: web.Request, name: str,
                                 d: Digest) -> web.StreamResponse | None:
        """Send an upstream blob to the client while caching it (tee), or None when another
        request is already fetching it (the caller then waits for that and serves the file).

        The download goes on to completion even if the client leaves, so the cache fills; the
        blob becomes visible only after its digest was verified, like any upload. A client
        that got bytes not matching the digest detects it itself (the connection is aborted).
        """
        assert self.upstream is not None
        key = str(d)
        lock = self._fetch_locks.setdefault(key, asyncio.Lock())
        if lock.locked():
            return None
        try:
            async with lock:
                if self.blobs.size(d) is not None:
                    return None
                r, length = await self.upstream.blob(name, d)
                resp = web.StreamResponse(headers={
                    "Docker-Content-Digest": key, "Content-Type": "application/octet-stream"})
                if length is not None:
                    resp.content_length = length
                client_ok = True
                # The newest chunk is held back until the blob is verified and committed: a
                # client that has the whole body then finds it cached, and a corrupt upstream
                # body never reaches a client complete.
                held = b""

                async def send(chunk: bytes) -> None:
                    nonlocal client_ok
                    if client_ok and chunk:
                        try:
                            await resp.write(chunk)
                        except (ConnectionError, RuntimeError):
                            client_ok = False  # keep caching without the client

                async def tee() -> AsyncIterator[bytes]:
                    nonlocal held
                    async for chunk in r.content.iter_any():
                        await send(held)
                        held = chunk
                        yield chunk

                st = self.uploads.start(name, d.algorithm)
                try:
                    async with r:
                        await resp.prepare(request)
                        await self.uploads.append(name, st.uuid, tee(), None, length)
                    await self.uploads.finish(name, st.uuid, d, _empty(), None, 0)
                except BaseException:
                    self.uploads.discard(name, st.uuid)
                    raise
                self.repos.link_layer(name, d)
                await send(held)
                if client_ok:
                    await resp.write_eof()
                return resp
        finally:
            if not lock.locked():
                self._fetch_locks.pop(key, None)

    async def _proxy_blob(self, name: str, d: Digest) -> None:
        assert self.upstream is not None
        # One download per digest at a time; later requests find the committed blob.
        lock = self._fetch_locks.setdefault(str(d), asyncio.Lock())
        try:
            async with lock:
                if self.blobs.size(d) is not None:
                    self.repos.link_layer(name, d)  # fetched for another repository already
                    return
                r, length = await self.upstream.blob(name, d)
                st = self.uploads.start(name, d.algorithm)
                try:
                    async with r:
                        await self.uploads.append(name, st.uuid, iter_body(r), None, length)
                    await self.uploads.finish(name, st.uuid, d, _empty(), None, 0)
                except BaseException:
                    self.uploads.discard(name, st.uuid)
                    raise
                self.repos.link_layer(name, d)
        finally:
            if not lock.locked():
                self._fetch_locks.pop(str(d), None)

    async def blob_delete(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        self._no_writes_in_proxy()
        if not self.cfg.delete_enabled:
            raise Unsupported("deletion is disabled on this registry")
        d = _parse_digest(p["digest"])
        self.repos.unlink_layer(p["name"], d)
        return web.Response(status=202, headers={"Docker-Content-Digest": str(d)})

    # -- uploads ---------------------------------------------------------------------------
    def _upload_headers(self, name: str, uuid: str, size: int) -> dict[str, str]:
        # Range is inclusive; distribution reports "0-0" for an empty session, not "0--1".
        return {"Location": f"/v2/{name}/blobs/uploads/{uuid}",
                "Range": f"0-{max(size - 1, 0)}", "Docker-Upload-UUID": uuid}

    def _created(self, name: str, d: Digest) -> web.Response:
        return web.Response(status=201, headers={
            "Location": f"/v2/{name}/blobs/{d}", "Docker-Content-Digest": str(d)})

    async def upload_start(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        self._no_writes_in_proxy()
        name, q = p["name"], request.query
        if "mount" in q:
            d = _parse_digest(q["mount"])
            src = q.get("from")
            if src:
                check_name(src)
                ok = self.repos.has_blob(src, d) is not None and (
                    not self.auth.enabled or self.auth.allowed(
                        request.headers.get("Authorization"),
                        Scope("repository", src, ("pull",)), self._token_url(request)))
            else:
                # Anonymous mount (spec: "from" MAY be optional): any blob the registry holds.
                # Only without auth: with auth, a digest alone must not grant read access.
                ok = not self.auth.enabled and self.blobs.size(d) is not None
            if ok:
                self.repos.link_layer(name, d)
                return self._created(name, d)
            # Not mountable: fall through to an ordinary upload session (202), per spec.
        algorithm = q.get("digest-algorithm", "sha256")
        if "digest" in q:
            d = _parse_digest(q["digest"])
            st = self.uploads.start(name, d.algorithm)
            try:
                await self.uploads.finish(name, st.uuid, d, request.content.iter_any(), None,
                                          request.content_length)
            except BaseException:
                self.uploads.discard(name, st.uuid)  # a single POST leaves no session behind
                raise
            self.repos.link_layer(name, d)
            return self._created(name, d)
        st = self.uploads.start(name, algorithm)
        return web.Response(status=202, headers=self._upload_headers(name, st.uuid, 0))

    async def upload_status(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        st = self.uploads.status(p["name"], p["uuid"])
        return web.Response(status=204, headers=self._upload_headers(st.name, st.uuid, st.size))

    async def upload_patch(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name, uuid = p["name"], p["uuid"]
        try:
            st = await self.uploads.append(name, uuid, request.content.iter_any(),
                                           request.headers.get("Content-Range"),
                                           request.content_length)
        except RangeInvalid as e:
            cur = self.uploads.status(name, uuid)
            e.headers.update(self._upload_headers(name, uuid, cur.size))
            raise
        return web.Response(status=202, headers=self._upload_headers(name, uuid, st.size))

    async def upload_put(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name, uuid = p["name"], p["uuid"]
        if "digest" not in request.query:
            self.uploads.status(name, uuid)  # unknown session -> 404 first
            raise DigestInvalid("digest query parameter is required to complete an upload")
        d = _parse_digest(request.query["digest"])
        try:
            await self.uploads.finish(name, uuid, d, request.content.iter_any(),
                                      request.headers.get("Content-Range"),
                                      request.content_length)
        except RangeInvalid as e:
            cur = self.uploads.status(name, uuid)
            e.headers.update(self._upload_headers(name, uuid, cur.size))
            raise
        self.repos.link_layer(name, d)
        return self._created(name, d)

    async def upload_cancel(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        self.uploads.cancel(p["name"], p["uuid"])
        return web.Response(status=204)

    # -- referrers -------------------------------------------------------------------------
    async def referrers(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name, d = p["name"], _parse_digest(p["digest"])
        entries = self.repos.referrers(name, d)
        headers = {}
        at = request.query.get("artifactType")
        if at:
            entries = [e for e in entries if e.get("artifactType") == at]
            headers["OCI-Filters-Applied"] = "artifactType"
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        return web.Response(status=200, body=json.dumps(body).encode(),
                            content_type=OCI_INDEX, headers=headers)

    # -- token endpoint ----------------------------------------------------------------------
    async def token(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            form = await request.post()
            if form.get("grant_type") != "password":
                raise Unsupported("only the password grant is supported")
            user, password = str(form.get("username", "")), str(form.get("password", ""))
            scopes = str(form.get("scope", "")).split(" ")
            service = str(form.get("service", "")) or None
        else:
            creds = parse_basic(request.headers.get("Authorization"))
            user, password = creds if creds else (None, None)
            scopes = request.query.getall("scope", [])
            service = request.query.get("service")
        return web.json_response(self.auth.issue_token(user, password, service, scopes))


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except DockyardError as e:
        return error_response(e)
    except web.HTTPException:
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise  # the client went away; the handlers undid their partial work
    except Exception as e:  # a bug: log it, answer in the spec's error format
        log.exception("%s %s failed", request.method, request.path)
        return error_response(Internal(f"internal error: {type(e).__name__}"))


async def _api_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]


def make_app(cfg: RegistryConfig) -> web.Application:
    reg = Registry(cfg)
    app = web.Application(middlewares=[_errors])
    app["registry"] = reg
    app.router.add_route("*", "/v2/{tail:.*}", reg.dispatch)
    app.router.add_route("*", "/v2", lambda r: _redirect_v2())
    app.router.add_route("GET", "/token", reg.token)
    app.router.add_route("POST", "/token", reg.token)
    app.on_response_prepare.append(_api_header)

    async def _close(app: web.Application) -> None:
        if reg.upstream is not None:
            await reg.upstream.close()

    app.on_cleanup.append(_close)
    return app


async def _redirect_v2() -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/v2/")


