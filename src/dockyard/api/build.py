"""``POST /build`` (the classic builder API) and ``POST /build/prune``.

``/build``: the body is the context as a tar (chunked, maybe gzip'd); query: ``t``
(repeatable), ``dockerfile``, ``buildargs`` / ``labels`` (JSON objects), ``nocache``, ``target``,
``q``, ``networkmode``, ``extrahosts`` (``name:ip`` for RUN's /etc/hosts), ``squash``, ``pull``
(pull FROM images even when present), ``platform``; ``cachefrom`` (a JSON list: when none of
its images exists, no step comes from the cache); ``rm``, ``forcerm`` are accepted and ignored
(intermediate containers never outlive a step). A ``FROM`` image
missing from the store is pulled (its progress in the stream, as dockerd's classic builder)
with the credentials ``X-Registry-Config`` gives for its registry (``docker build`` sends every
registry it has credentials for).
The reply is ``200`` with JSON lines streamed as the build produces them (``stream``, ``aux``,
``errorDetail``); a failed build is reported in the stream, as dockerd does.

The builder (``builder.executor.Builder``) is made on first use from the services object:
``images``, ``cfg.data_root / "builder"`` for its cache, ``cfg.runtime_path()`` and
``cfg.exec_root / "build"`` as the OCI runtime's ``--root``. A daemon may instead put a ready
``builder`` attribute on its services.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dockyard.api.common import qbool, reply, services
from dockyard.api.streams import BodyReader
from dockyard.errors import DockyardError, InvalidArgument, NotImplementedYet

if TYPE_CHECKING:
    from dockyard.builder.executor import Builder, BuildOptions

_LOCK = threading.Lock()
log = logging.getLogger("dockyard.api.build")


def builder_of(s: Any) -> Builder:
    # the builder (~1.5 MB of modules) is imported by the first request that needs it, not by
    # every daemon at start-up
    from dockyard.builder.executor import Builder

    b = getattr(s, "builder", None)
    if isinstance(b, Builder):
        return b
    with _LOCK:
        b = getattr(s, "_dockyard_builder", None)
        if b is None:
            cfg = s.cfg
            runtime = cfg.runtime_path() if hasattr(cfg, "runtime_path") else "runc"
            b = Builder(s.images, Path(cfg.data_root) / "builder", runtime, Path(cfg.exec_root) / "build")
            s._dockyard_builder = b
        return b


def _json_map(request: web.Request, name: str) -> dict[str, str]:
    raw = request.query.get(name)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid {name} JSON: {e}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{name} must be a JSON object")
    return {str(k): str(v) for k, v in data.items() if v is not None}


def _extra_hosts(request: web.Request) -> tuple[str, ...]:
    """``extrahosts``: ``name:ip`` entries, repeated (docker-py, so compose's ``build.extra_hosts``)
    or comma-separated (the docker CLI's ``--add-host``)."""
    out: list[str] = []
    for raw in request.query.getall("extrahosts", []):
        for h in raw.split(","):
            name, sep, ip = h.strip().partition(":")
            if not h.strip():
                continue
            if not sep or not name or not ip:
                raise InvalidArgument(f"extrahosts: invalid host entry {h!r}: expected name:ip")
            out.append(f"{name}:{ip}")
    return tuple(out)


def _cache_from_disables_cache(request: web.Request, images: Any) -> bool:
    """``cachefrom`` (a JSON list): dockerd's classic builder then takes a cached step only from
    the history of those images. Here the local cache stays in use when one of them exists; when
    none does there is nothing to take steps from, so nothing is taken from the cache."""
    raw = request.query.get("cachefrom")
    if not raw:
        return False
    try:
        refs = json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid cachefrom JSON: {e}") from None
    if not isinstance(refs, list):
        raise InvalidArgument("cachefrom must be a JSON list of image references")
    refs = [r for r in refs if isinstance(r, str) and r]
    return bool(refs) and not any(images.exists(r) for r in refs)


def options_from(request: web.Request) -> BuildOptions:
    from dockyard.builder.executor import BuildOptions

    q = request.query
    if q.get("remote"):
        raise NotImplementedYet("building from a remote context (URL or Git) is not supported")
    network = q.get("networkmode") or "default"
    if network not in ("default", "none", "host", "bridge"):
        raise InvalidArgument(f"network mode {network!r} is not supported for builds")
    return BuildOptions(
        dockerfile=q.get("dockerfile") or "Dockerfile",
        tags=tuple(t for t in q.getall("t", []) if t),
        build_args=_json_map(request, "buildargs"),
        target=q.get("target") or None,
        no_cache=qbool(request, "nocache"),
        labels=_json_map(request, "labels"),
        network=network,
        extra_hosts=_extra_hosts(request),
        squash=qbool(request, "squash"),
        quiet=qbool(request, "q"),
        platform=q.get("platform") or None,
        pull=qbool(request, "pull"),
    )


async def build(request: web.Request) -> web.StreamResponse:
    from dockyard.builder.cancel import Cancelled

    s = services(request)
    gone = threading.Event()
    opts = dataclasses.replace(options_from(request), cancel=gone)
    if _cache_from_disables_cache(request, s.images):
        opts = dataclasses.replace(opts, no_cache=True)
    b = builder_of(s)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def emit(msg: dict[str, Any]) -> None:
        if gone.is_set():
            raise Cancelled("the client closed the connection: build cancelled")
        loop.call_soon_threadsafe(queue.put_nowait, json.dumps(msg).encode() + b"\n")

    opts = dataclasses.replace(opts, fetch_base=_base_fetcher(request, s, loop, emit, opts.platform))
    reader = BodyReader(request.content, loop)

    def work() -> str | None:
        try:
            return b.build_tar(reader, opts, emit)
        except Cancelled:
            return None
        except Exception as e:  # noqa: BLE001 - a bug: the stream is open, report it there
            log.exception("build failed")
            msg = f"internal error: {type(e).__name__}: {e}"
            loop.call_soon_threadsafe(queue.put_nowait, json.dumps(
                {"errorDetail": {"message": msg}, "error": msg}).encode() + b"\n")
            return None
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    fut = loop.run_in_executor(None, work)
    while True:
        try:
            chunk = await asyncio.wait_for(queue.get(), 0.5)
        except TimeoutError:
            transport = request.transport
            if transport is None or transport.is_closing():
                gone.set()  # a silent step (RUN sleep) notices within half a second
            continue
        if chunk is None:
            break
        try:
            await resp.write(chunk)
        except (ConnectionError, RuntimeError):
            gone.set()  # the client went away: the build stops at its next message, cleaning up
    image_id = await fut
    events = getattr(s, "events", None)
    if image_id and events is not None:
        for t in opts.tags:
            events.emit("image", "tag", image_id, {"name": t})
    await resp.write_eof()
    return resp


def _base_fetcher(request: web.Request, s: Any, loop: asyncio.AbstractEventLoop,
                  emit: Callable[[dict[str, Any]], None], platform: str | None) -> Callable[[str], str]:
    """The builder's ``fetch_base``: pull a missing FROM image on the daemon's loop (the
    builder runs in a worker thread and waits), with X-Registry-Config's credentials."""
    from dockyard.distribution.auth import ANONYMOUS, from_registry_config_header

    auths = from_registry_config_header(request.headers.get("X-Registry-Config"))  # bad: 400 now

    def fetch(ref: str) -> str:
        from dockyard.distribution.pull import pull
        from dockyard.distribution.service import distribution_for
        from dockyard.oci import reference

        creds = auths.get(reference.parse_normalized(ref).domain, ANONYMOUS)

        async def progress(msg: dict[str, Any]) -> None:
            emit(msg)

        fut = asyncio.run_coroutine_threadsafe(
            pull(distribution_for(s), s.images, ref, creds=creds, platform=platform, emit=progress), loop)
        return fut.result().image_id

    return fetch


async def prune(request: web.Request) -> web.StreamResponse:
    b = builder_of(services(request))
    deleted, reclaimed = await asyncio.get_running_loop().run_in_executor(None, b.prune)
    return reply({"CachesDeleted": deleted, "SpaceReclaimed": reclaimed})


def cache_records(s: Any) -> list[dict[str, Any]]:
    """``BuildCache`` entries of ``GET /system/df`` (the engine's system router calls this)."""
    b = builder_of(s)
    out = []
    for key, image_id, created in b.cache.records():
        try:
            size = s.images.get(image_id).size
        except DockyardError:
            continue
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        out.append({"ID": key[:25], "Parents": None, "Type": "regular", "Description": f"image {image_id[:19]}",
                    "InUse": False, "Shared": True, "Size": size, "CreatedAt": stamp, "LastUsedAt": stamp,
                    "UsageCount": 1})
    return out


def routes(add: Callable[..., None]) -> None:
    add("POST", "/build", build)
    add("POST", "/build/prune", prune)
