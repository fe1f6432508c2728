"""Container routes: /containers/... (create, start, attach, wait, logs, stop, kill, rm, ...)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from dockyard import errors
from dockyard.api import hijack, streams, versions, wire
from dockyard.api.common import api_version, body_json, qbool, qint, reply, services
from dockyard.api.volumes import summary_mounts
from dockyard.daemon import filters, logs
from dockyard.daemon.networking import network_refs
from dockyard.daemon.state import Status
from dockyard.shim import protocol

log = logging.getLogger("dockyard.api.containers")


async def create(request: web.Request) -> web.StreamResponse:
    s = services(request)
    body = await body_json(request)
    if body is None:
        raise errors.InvalidArgument("config cannot be empty in order to create a container")
    cid, warnings = await s.containers.create(body, request.query.get("name") or None,
                                              request.query.get("platform"))
    return reply({"Id": cid, "Warnings": warnings}, status=201)


async def list_(request: web.Request) -> web.StreamResponse:
    s = services(request)
    svc = s.containers
    flt = filters.parse(request.query.get("filters"))
    filters.check_keys(flt, filters.CONTAINER_KEYS)
    show_all = qbool(request, "all")
    limit = qint(request, "limit", -1) or -1
    size = qbool(request, "size")

    def resolve_image(ref: str) -> str | None:
        try:
            return s.images.resolve(ref)
        except errors.DockyardError:
            return None

    def order_of(ref: str) -> int | None:
        try:
            return svc.order.get(svc.get(ref).id)
        except errors.DockyardError:
            return None

    recs = sorted(svc.containers.values(), key=lambda r: svc.order.get(r.id, 0), reverse=True)
    out = []
    for rec in recs:
        if not show_all and rec.status not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING) \
                and not flt.get("status") and not flt.get("exited") and limit <= 0:
            continue
        info = {"Id": rec.id, "Name": rec.name, "State": rec.status.value, "ExitCode": rec.state.exit_code,
                "Labels": rec.config.get("Labels") or {}, "ImageID": rec.image_id, "Image": rec.image,
                "Health": (rec.state.health or {}).get("Status"),
                "Networks": network_refs(rec), "Mounts": summary_mounts(svc, rec),
                "Ports": wire.container_summary(rec)["Ports"],
                "ExposedPorts": list(rec.config.get("ExposedPorts") or {})}
        if not filters.match_container(info, flt, resolve_image, order_of):
            continue
        item = {**wire.container_summary(rec), "Mounts": info["Mounts"]}
        if size:
            item.update(await sizes(s, rec))
        out.append(item)
        if 0 < limit <= len(out):
            break
    return reply(out)


async def sizes(s: Any, rec: Any) -> dict[str, int]:
    """``SizeRw`` (the writable layer's bytes) and ``SizeRootFs`` (plus the image's), which
    dockerd computes only when asked (``size=1``: ``ps -s``, ``inspect -s``, ``system df``)."""
    loop = asyncio.get_running_loop()
    try:
        rw = int(await loop.run_in_executor(None, s.images.rootfs_usage, rec.id))
    except (errors.DockyardError, OSError):
        rw = 0
    try:
        base = int(s.images.get(rec.image_id).size)
    except errors.DockyardError:
        base = 0
    return {"SizeRw": rw, "SizeRootFs": rw + base}


async def inspect(request: web.Request) -> web.StreamResponse:
    s = services(request)
    rec = s.containers.get(request.match_info["id"])
    out = wire.container_inspect(rec, s.containers.log_path(rec), str(s.containers.etc_dir(rec)))
    if qbool(request, "size"):
        out.update(await sizes(s, rec))
    if rec.mounts:
        from dockyard.api.volumes import mount_points
        out["Mounts"] = mount_points(s.containers.mounts.plans(rec), getattr(s, "volumes", None))
    return reply(versions.container_inspect(out, api_version(request)))


async def start(request: web.Request) -> web.StreamResponse:
    await services(request).containers.start(request.match_info["id"])
    return web.Response(status=204)


async def wait(request: web.Request) -> web.StreamResponse:
    s = services(request)
    rec = s.containers.get(request.match_info["id"])
    condition = request.query.get("condition", "")
    if condition not in ("", "not-running", "next-exit", "removed"):
        raise errors.InvalidArgument(f"invalid condition: {condition!r}")
    task = asyncio.ensure_future(s.containers.wait(rec.id, condition))
    # The CLI calls wait before start: send the headers now, the body at exit.
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        result = await task
    except errors.DockyardError as e:
        result = {"StatusCode": -1, "Error": {"Message": str(e)}}
    with contextlib.suppress(ConnectionError):
        await resp.write(json.dumps(result).encode() + b"\n")
        await resp.write_eof()
    return resp


async def attach(request: web.Request) -> web.StreamResponse:
    s = services(request)
    rec = s.containers.get(request.match_info["id"])
    want_stdin = qbool(request, "stdin")
    want_out = qbool(request, "stdout")
    want_err = qbool(request, "stderr")
    tty = bool(rec.config.get("Tty"))
    keys = streams.parse_detach_keys(request.query.get("detachKeys"))
    stream = hijack.hijack(request, hijack.RAW if tty else hijack.MULTIPLEXED, {})
    # logs=1&stream=1 on a running container: the monitor replays the log and subscribes in one
    # step (reading the file here first would lose the lines written before the subscription)
    replay = (qbool(request, "logs") and qbool(request, "stream") and s.containers.monitor.version >= 3
              and rec.status in (Status.RUNNING, Status.PAUSED))
    try:
        if qbool(request, "logs") and not replay:
            want = {n for n, on in (("stdout", want_out), ("stderr", want_err)) if on}
            for e in logs.read_entries(s.containers.log_path(rec)):
                if e.stream in want:
                    await stream.write(e.data if tty else protocol.frame(
                        protocol.STDERR if e.stream == "stderr" else protocol.STDOUT, e.data))
        if qbool(request, "stream"):
            conn = await s.containers.attach_stream(rec.id, {"stdin": want_stdin and bool(rec.config.get("OpenStdin")),
                                                             "stdout": want_out, "stderr": want_err,
                                                             **({"logs": True} if replay else {})})
            exited = s.containers.exits.get(rec.id)
            if conn is not None:
                code = await streams.pump(stream, conn[0], conn[1], tty=tty, stdin=want_stdin,
                                          detach_keys=keys)
                if code is not None and exited is not None:
                    # the process ended: answer after the daemon has recorded it, so a client that
                    # removes the container as soon as the attach ends (docker-py) finds it exited
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(exited.wait(), 10)
    except (ConnectionError, asyncio.CancelledError) as e:
        log.debug("attach to %s ended: %r", rec.id, e)
    finally:
        stream.close()
    return hijack.done()


async def logs_(request: web.Request) -> web.StreamResponse:
    s = services(request)
    rec = s.containers.get(request.match_info["id"])
    want = {n for n in ("stdout", "stderr") if qbool(request, n)}
    if not want:
        raise errors.InvalidArgument("Bad parameters: you must choose at least one stream")
    lt = (rec.host_config.get("LogConfig") or {}).get("Type") or "json-file"
    if lt not in ("json-file", "local"):
        raise errors.InvalidArgument(f'configured logging driver does not support reading: "{lt}"')
    tail_s = request.query.get("tail", "all")
    tail = -1 if tail_s in ("all", "") else int(tail_s) if tail_s.isdigit() else -1
    since = _ts(request.query.get("since"))
    until = _ts(request.query.get("until"))
    stamps = qbool(request, "timestamps")
    tty = bool(rec.config.get("Tty"))
    resp = web.StreamResponse(status=200, headers={
        "Content-Type": hijack.RAW if tty else hijack.MULTIPLEXED})
    await resp.prepare(request)
    svc = s.containers
    cid = rec.id

    def running() -> bool:
        r = svc.containers.get(cid)
        return r is not None and r.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

    try:
        async for e in logs.follow(svc.log_path(rec), since=since, until=until, tail=tail, streams=want,
                                   follow_=qbool(request, "follow"), running=running,
                                   exited=svc.exits.get(cid)):
            data = (e.time.encode() + b" " + e.data) if stamps else e.data
            await resp.write(data if tty else protocol.frame(
                protocol.STDERR if e.stream == "stderr" else protocol.STDOUT, data))
    except (ConnectionError, asyncio.CancelledError):
        return resp
    await resp.write_eof()
    return resp


def _ts(v: str | None) -> float:
    if not v:
        return 0.0
    try:
        return float(v)
    except ValueError:
        try:
            return logs.parse_time(v)
        except (ValueError, IndexError):
            raise errors.InvalidArgument(f"invalid value for time: {v!r}") from None


async def stop(request: web.Request) -> web.StreamResponse:
    t = qint(request, "t")
    await services(request).containers.stop(request.match_info["id"], t, request.query.get("signal"))
    return web.Response(status=204)


async def restart(request: web.Request) -> web.StreamResponse:
    t = qint(request, "t")
    await services(request).containers.restart(request.match_info["id"], t, request.query.get("signal"))
    return web.Response(status=204)


async def kill(request: web.Request) -> web.StreamResponse:
    await services(request).containers.kill(request.match_info["id"], request.query.get("signal"))
    return web.Response(status=204)


async def remove(request: web.Request) -> web.StreamResponse:
    await services(request).containers.remove(request.match_info["id"], force=qbool(request, "force"),
                                              volumes=qbool(request, "v"))
    return web.Response(status=204)


async def remove_link(request: web.Request) -> web.StreamResponse:
    """``DELETE /containers/{parent}/{alias}?link=1`` (docker rm --link): dockerd names a legacy
    link ``/parent/alias``, so without ``link`` the path is a container name that cannot exist."""
    ref = f"{request.match_info['id']}/{request.match_info['alias']}"
    if not qbool(request, "link"):
        raise errors.NotFound(f"No such container: {ref}")
    await services(request).containers.remove_link(request.match_info["id"], request.match_info["alias"])
    return web.Response(status=204)


async def resize(request: web.Request) -> web.StreamResponse:
    h = qint(request, "h", 0) or 0
    w = qint(request, "w", 0) or 0
    await services(request).containers.resize(request.match_info["id"], h, w)
    return web.Response(status=200)


async def pause(request: web.Request) -> web.StreamResponse:
    await services(request).containers.pause(request.match_info["id"])
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.StreamResponse:
    await services(request).containers.unpause(request.match_info["id"])
    return web.Response(status=204)


async def rename(request: web.Request) -> web.StreamResponse:
    name = request.query.get("name")
    if not name:
        raise errors.InvalidArgument("Neither old nor new names may be empty")
    await services(request).containers.rename(request.match_info["id"], name)
    return web.Response(status=204)


async def top(request: web.Request) -> web.StreamResponse:
    return reply(await services(request).containers.top(request.match_info["id"],
                                                        request.query.get("ps_args", "")))


async def update(request: web.Request) -> web.StreamResponse:
    body = await body_json(request) or {}
    warnings = await services(request).containers.update(request.match_info["id"], body)
    return reply({"Warnings": warnings})


async def stats(request: web.Request) -> web.StreamResponse:
    s = services(request)
    rec = s.containers.get(request.match_info["id"])
    stream_ = qbool(request, "stream", True) and not qbool(request, "one-shot")
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    prev: dict[str, Any] | None = None
    from dockyard.daemon import stats as cstats
    try:
        while True:
            cur = cstats.sample(rec, s.containers)
            out = cstats.to_wire(rec, cur, prev)
            await resp.write(json.dumps(out).encode() + b"\n")
            if not stream_:
                break
            prev = cur
            await asyncio.sleep(1)
            if rec.id not in s.containers.containers:
                break
    except (ConnectionError, asyncio.CancelledError):
        return resp
    await resp.write_eof()
    return resp


async def prune(request: web.Request) -> web.StreamResponse:
    s = services(request)
    flt = filters.parse(request.query.get("filters"))
    filters.check_keys(flt, {"until", "label", "label!"})
    until = [filters.timestamp(v) for v in flt.get("until", [])]
    deleted = []
    reclaimed = 0
    for rec in list(s.containers.containers.values()):
        if rec.status not in (Status.EXITED, Status.CREATED, Status.DEAD):
            continue
        if until and not all(wire.epoch(rec.created) < t for t in until):
            continue
        labels = rec.config.get("Labels") or {}
        if flt.get("label") and not filters.label_match(labels, flt["label"]):
            continue
        if flt.get("label!") and filters.label_match(labels, flt["label!"]):
            continue
        rw = (await sizes(s, rec))["SizeRw"]
        with contextlib.suppress(errors.DockyardError):
            await s.containers.remove(rec.id)
            deleted.append(rec.id)
            reclaimed += rw
    return reply({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})


async def changes(request: web.Request) -> web.StreamResponse:
    s = services(request)
    rec = s.containers.get(request.match_info["id"])
    found = await asyncio.get_running_loop().run_in_executor(None, s.images.changes, rec.id)
    return reply([c.to_dict() for c in found] or None)


async def export(request: web.Request) -> web.StreamResponse:
    s = services(request)
    rec = s.containers.get(request.match_info["id"])
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
    await resp.prepare(request)
    await streams.export_to(resp, s.images, rec.id)
    await resp.write_eof()
    return resp


def _archive_ctx(request: web.Request) -> Any:
    from dockyard.daemon import archive
    s = services(request)
    rec = s.containers.get(request.match_info["id"])
    path = request.query.get("path")
    if not path:
        raise errors.InvalidArgument("path cannot be empty")
    running = rec.status in (Status.RUNNING, Status.PAUSED)
    binds: list[tuple[str, str, bool]] = []
    if rec.mounts and not running:
        from dockyard.api.volumes import mount_points
        binds = [(m["Source"], m["Destination"], not m["RW"])
                 for m in mount_points(s.containers.mounts.plans(rec), getattr(s, "volumes", None))
                 if m["Type"] in ("volume", "bind")]
    return archive, s, rec, path, archive.mounted_rootfs(s.images, s.containers.bundles, rec.id, running,
                                                         pid=rec.state.pid or 0, binds=binds)


async def archive_head(request: web.Request) -> web.StreamResponse:
    archive, s, rec, path, ctx = _archive_ctx(request)
    with ctx as root:
        hdr = archive.stat_header(root, path)
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": hdr})


async def archive_get(request: web.Request) -> web.StreamResponse:
    archive, s, rec, path, ctx = _archive_ctx(request)
    with ctx as root:
        hdr = archive.stat_header(root, path)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar",
                                                       "X-Docker-Container-Path-Stat": hdr})
        await resp.prepare(request)
        await streams.write_from_thread(resp, lambda out: archive.write_tar(root, path, out))
    await resp.write_eof()
    return resp


async def archive_put(request: web.Request) -> web.StreamResponse:
    archive, s, rec, path, ctx = _archive_ctx(request)
    if rec.host_config.get("ReadonlyRootfs"):
        raise errors.Conflict("container rootfs is marked read-only")
    reader = streams.BodyReader(request.content, asyncio.get_running_loop())
    with ctx as root:
        await asyncio.get_running_loop().run_in_executor(None, archive.extract, root, path, reader)
    return web.Response(status=200)


def routes(add: Callable[..., None]) -> None:
    add("HEAD", "/containers/{id}/archive", archive_head)
    add("GET", "/containers/{id}/archive", archive_get)
    add("PUT", "/containers/{id}/archive", archive_put)
    add("POST", "/containers/create", create)
    add("GET", "/containers/json", list_)
    add("POST", "/containers/prune", prune)
    add("GET", "/containers/{id}/json", inspect)
    add("POST", "/containers/{id}/start", start)
    add("POST", "/containers/{id}/wait", wait)
    add("POST", "/containers/{id}/attach", attach)
    from dockyard.api.attach_ws import attach_ws
    add("GET", "/containers/{id}/attach/ws", attach_ws)
    add("GET", "/containers/{id}/logs", logs_)
    add("POST", "/containers/{id}/stop", stop)
    add("POST", "/containers/{id}/restart", restart)
    add("POST", "/containers/{id}/kill", kill)
    add("DELETE", "/containers/{id}", remove)
    add("DELETE", "/containers/{id}/{alias}", remove_link)
    add("POST", "/containers/{id}/resize", resize)
    add("POST", "/containers/{id}/pause", pause)
    add("POST", "/containers/{id}/unpause", unpause)
    add("POST", "/containers/{id}/rename", rename)
    add("GET", "/containers/{id}/top", top)
    add("POST", "/containers/{id}/update", update)
    add("GET", "/containers/{id}/stats", stats)
    add("GET", "/containers/{id}/changes", changes)
    add("GET", "/containers/{id}/export", export)
