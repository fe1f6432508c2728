"""Registry routes: pull (the ``POST /images/create?fromImage=`` hook), push, login, remote inspect.

* ``pull(request, ref)``: the services object's ``pull`` hook that ``api/images.create``
  calls. Streams docker's JSON progress lines (chunked, 200, application/json). An error
  before the first line is an ordinary error response (docker's CLI prints it); after it, an
  ``{"errorDetail": ..., "error": ...}`` line ends the stream, as dockerd does.
* ``POST /images/{name}/push?tag=``: the same streaming; ``tag`` empty -> every tag of ``name``.
* ``POST /auth``: ``{"username", "password", "serveraddress"}`` -> ``{"Status": "Login
  Succeeded", "IdentityToken": ""}``, or 401 ``{"message": ...}``.
* ``GET /distribution/{name}/json``: ``{"Descriptor": {...}, "Platforms": [...]}``.

Credentials come from ``X-Registry-Auth`` (base64url JSON AuthConfig); the daemon-wide
:class:`~dockyard.distribution.service.Distribution` (mirrors, insecure registries, token
cache) is made from ``services.cfg`` on first use.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dockyard import errors
from dockyard.api.common import body_json, reply, services
from dockyard.api.status import status_of
from dockyard.distribution import progress as pg
from dockyard.oci import reference

log = logging.getLogger("dockyard.api.distribution")
_DIGEST_AS_TAG = re.compile(r"[:@](sha256:[0-9a-f]{64})$")


class _JSONLines:
    """Prepares the chunked response at the first message; writes one JSON object per line."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.resp: web.StreamResponse | None = None

    async def __call__(self, msg: pg.Message) -> None:
        if self.resp is None:
            self.resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            self.resp.enable_chunked_encoding()
            await self.resp.prepare(self.request)
        await self.resp.write(json.dumps(msg).encode() + b"\r\n")

    async def finish(self, error: BaseException | None) -> web.StreamResponse:
        if error is not None:
            if self.resp is None:
                return error_reply(error)
            try:
                await self(pg.error(str(error)))
            except (ConnectionError, OSError):
                return self.resp  # the client has gone: nobody to tell
        if self.resp is None:
            return reply({})
        await self.resp.write_eof()
        return self.resp


def error_reply(error: BaseException) -> web.Response:
    """``{"message": ...}`` with the vocabulary's status.

    body= (not text=): a ``; charset=utf-8`` suffix on the content type makes the docker CLI
    print the raw JSON instead of the message."""
    return web.Response(status=status_of(error), body=json.dumps({"message": str(error)}).encode() + b"\n",
                        content_type="application/json")


def _own_errors(handler: Callable[..., Awaitable[web.StreamResponse]]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Answer the vocabulary's errors here, in the form the docker CLI parses (see error_reply)."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request, *args: Any) -> web.StreamResponse:
        try:
            return await handler(request, *args)
        except errors.DockyardError as e:
            return error_reply(e)

    return wrapper


def _emit_event(request: web.Request, action: str, name: str) -> None:
    bus = getattr(services(request), "events", None)
    if bus is not None:
        bus.emit("image", action, name, {"name": name})


async def _stream(request: web.Request, op: Callable[[_JSONLines], Any]) -> web.StreamResponse:
    out = _JSONLines(request)
    try:
        await op(out)
    except errors.DockyardError as e:
        return await out.finish(e)
    except (ConnectionError, OSError) as e:
        if out.resp is None:
            raise
        log.info("registry transfer ended: %s", e)
        return await out.finish(errors.Unavailable(str(e)))
    return await out.finish(None)


@_own_errors
async def pull(request: web.Request, ref: str) -> web.StreamResponse:
    """The ``pull`` hook of ``POST /images/create?fromImage=...&tag=...``."""
    # the registry client is imported by the first request that needs it (not at daemon start)
    from dockyard.distribution.auth import from_registry_auth_header
    from dockyard.distribution.pull import pull as pull_image
    from dockyard.distribution.pull import pull_all_tags
    from dockyard.distribution.service import distribution_for

    s = services(request)
    creds, _ = from_registry_auth_header(request.headers.get("X-Registry-Auth"))
    platform = request.query.get("platform") or None
    # The CLI sends a digest as the tag (fromImage=busybox&tag=sha256:...): name@digest.
    ref = _DIGEST_AS_TAG.sub(r"@\1", ref)
    parsed = reference.parse_normalized(ref)  # a malformed ref is a 400 before any output

    # No tag with a bare name is `docker pull --all-tags` (the CLI sends tag=latest otherwise),
    # as dockerd reads it.
    bare = reference.parse(ref)
    all_tags = not request.query.get("tag") and bare.tag is None and bare.digest is None

    async def op(out: _JSONLines) -> None:
        dist = distribution_for(s)
        if all_tags:
            for res in await pull_all_tags(dist, s.images, str(parsed.name_only()), creds=creds,
                                           platform=platform, emit=out):
                _emit_event(request, "pull", res.reference)
            return
        await pull_image(dist, s.images, str(parsed), creds=creds, platform=platform, emit=out)
        _emit_event(request, "pull", parsed.familiar())

    return await _stream(request, op)


@_own_errors
async def push(request: web.Request) -> web.StreamResponse:
    from dockyard.distribution.auth import from_registry_auth_header
    from dockyard.distribution.push import push as push_image
    from dockyard.distribution.service import distribution_for

    s = services(request)
    name = request.match_info["name"]
    tag = request.query.get("tag") or ""
    creds, _ = from_registry_auth_header(request.headers.get("X-Registry-Auth"))
    parsed = reference.parse(name)
    if tag:
        parsed = parsed.with_tag(tag)
    # An unknown image is a 404 before any output, as dockerd answers.
    if parsed.tag is not None:
        s.images.resolve(str(parsed))

    async def op(out: _JSONLines) -> None:
        for res in await push_image(distribution_for(s), s.images, str(parsed), creds=creds, emit=out):
            _emit_event(request, "push", str(parsed.with_tag(res.tag).familiar()))

    return await _stream(request, op)


@_own_errors
async def auth(request: web.Request) -> web.StreamResponse:
    from dockyard.distribution.auth import from_auth_config
    from dockyard.distribution.login import login
    from dockyard.distribution.service import distribution_for

    body = await body_json(request)
    if not isinstance(body, dict):
        raise errors.InvalidArgument("auth: expected a JSON object with username, password, serveraddress")
    creds = from_auth_config(body)
    server = str(body.get("serveraddress") or body.get("ServerAddress") or "https://index.docker.io/v1/")
    try:
        token = await login(distribution_for(services(request)), server, creds)
    except errors.PermissionDenied as e:
        resp = error_reply(e)
        resp.set_status(401)  # dockerd answers a failed login with 401, not 403
        return resp
    return reply({"Status": "Login Succeeded", "IdentityToken": token})


@_own_errors
async def distribution_inspect(request: web.Request) -> web.StreamResponse:
    from dockyard.distribution.auth import from_registry_auth_header
    from dockyard.distribution.inspect import inspect_remote
    from dockyard.distribution.service import distribution_for

    creds, _ = from_registry_auth_header(request.headers.get("X-Registry-Auth"))
    info = await inspect_remote(distribution_for(services(request)), request.match_info["name"],
                                creds=creds)
    return reply({
        "Descriptor": {"mediaType": info.media_type, "digest": info.digest, "size": info.size},
        "Platforms": list(info.platforms),
    })


def routes(add: Callable[..., None]) -> None:
    add("POST", "/images/{name:.+}/push", push)
    add("POST", "/auth", auth)
    add("GET", "/distribution/{name:.+}/json", distribution_inspect)
