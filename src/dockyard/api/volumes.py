"""Volume routes: list, create, inspect, remove, prune (``docker volume ...``).

Uses ``services.volumes`` (a :class:`dockyard.volumes.service.VolumeService`) and emits
``volume`` events (create, destroy, prune) on ``services.events``. Wire shapes (PascalCase)
are made here from the domain values: :func:`volume_json` for ``Volume``, :func:`df_volumes`
for ``GET /system/df``'s ``Volumes``, :func:`mount_points` for a container inspect's ``Mounts``,
:func:`mount_events` for the ``mount``/``unmount`` events of a container start/stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from dockyard import errors
from dockyard.api.common import body_json, qbool, reply, services
from dockyard.daemon import filters
from dockyard.daemon.mounts import mount_events  # noqa: F401 - part of this module's API
from dockyard.volumes.model import TYPE_BIND, TYPE_TMPFS, TYPE_VOLUME, MountPlan, Usage, Volume


def _run(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    return asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))


def volume_json(v: Volume, usage: Usage | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"CreatedAt": v.created_at, "Driver": v.driver, "Labels": dict(v.labels),
                           "Mountpoint": v.mountpoint, "Name": v.name,
                           "Options": dict(v.options) or None, "Scope": v.scope}
    if usage is not None:
        out["UsageData"] = {"Size": usage.size, "RefCount": usage.ref_count}
    return out


def df_volumes(vols: Any) -> list[dict[str, Any]]:
    """``Volumes`` of ``GET /system/df`` (blocking: call from a worker thread)."""
    return [volume_json(v, vols.usage(v.name)) for v in vols.list()]


def mount_points(plans: Sequence[MountPlan], vols: Any = None) -> list[dict[str, Any]]:
    """A container inspect's ``Mounts`` (dockerd's MountPoint shape). ``vols`` (the
    VolumeService) gives a volume's ``Source`` when the plan is not mounted right now."""
    out = []
    for p in plans:
        if p.type == TYPE_VOLUME:
            source = p.host_path
            if not source and vols is not None and p.source:
                try:
                    source = vols.get(p.source).mountpoint
                except errors.NotFound:
                    source = ""
            out.append({"Type": "volume", "Name": p.source, "Source": source, "Destination": p.destination,
                        "Driver": p.driver or "local", "Mode": p.mode or "z", "RW": not p.read_only,
                        "Propagation": ""})
        elif p.type == TYPE_BIND:
            out.append({"Type": "bind", "Source": p.source, "Destination": p.destination, "Mode": p.mode,
                        "RW": not p.read_only, "Propagation": p.propagation})
        elif p.type == TYPE_TMPFS and p.origin == "mounts":
            out.append({"Type": "tmpfs", "Source": "", "Destination": p.destination, "Mode": "",
                        "RW": not p.read_only, "Propagation": ""})
    return out


def summary_mounts(containers: Any, rec: Any) -> list[dict[str, Any]]:
    """``Mounts`` of a container list / system df entry (the CLI counts LOCAL VOLUMES from
    them; ``ps --filter volume=`` matches them)."""
    if not rec.mounts:
        return []
    try:
        return mount_points(containers.mounts.plans(rec), getattr(containers.mounts, "vols", None))
    except Exception:  # noqa: BLE001 - a listing never fails on one container's mounts
        return []


def _vols(request: web.Request) -> Any:
    vols = getattr(services(request), "volumes", None)
    if vols is None:
        raise errors.Unavailable("the volume service is not running")
    return vols


async def list_(request: web.Request) -> web.StreamResponse:
    flt = filters.parse(request.query.get("filters"))
    vols = await _run(_vols(request).list, flt)
    return reply({"Volumes": [volume_json(v) for v in vols], "Warnings": []})


def _str_map(body: dict[str, Any], key: str) -> dict[str, str]:
    v = body.get(key) or {}
    if not isinstance(v, dict):
        raise errors.InvalidArgument(f"{key} must be an object of strings")
    return {str(k): str(x) for k, x in v.items()}


async def create(request: web.Request) -> web.StreamResponse:
    s = services(request)
    body = await body_json(request) or {}
    if not isinstance(body, dict):
        raise errors.InvalidArgument("invalid volume create request: expected a JSON object")
    if body.get("ClusterVolumeSpec"):
        raise errors.NotImplementedYet("cluster volumes need swarm mode, which Dockyard does not offer")
    name = str(body.get("Name") or "")
    existed = False
    if name:
        try:
            await _run(_vols(request).get, name)
            existed = True
        except errors.NotFound:
            pass
    v = await _run(_vols(request).create, name, str(body.get("Driver") or "local"),
                   _str_map(body, "DriverOpts"), _str_map(body, "Labels"))
    if not existed:
        s.events.emit("volume", "create", v.name, {"driver": v.driver})
    return reply(volume_json(v), status=201)


async def inspect(request: web.Request) -> web.StreamResponse:
    v = await _run(_vols(request).get, request.match_info["name"])
    return reply(volume_json(v))


async def remove(request: web.Request) -> web.StreamResponse:
    s = services(request)
    name = request.match_info["name"]
    vols = _vols(request)
    try:
        v = await _run(vols.get, name)
    except errors.NotFound:
        if qbool(request, "force"):
            return web.Response(status=204)
        raise
    await _run(vols.remove, name, qbool(request, "force"))
    s.events.emit("volume", "destroy", name, {"driver": v.driver})
    return web.Response(status=204)


async def prune(request: web.Request) -> web.StreamResponse:
    s = services(request)
    flt = filters.parse(request.query.get("filters"))
    deleted, reclaimed = await _run(_vols(request).prune, flt)
    for name in deleted:
        s.events.emit("volume", "destroy", name, {"driver": "local"})
    s.events.emit("volume", "prune", "", {"reclaimed": str(reclaimed)})
    return reply({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed})


async def update(request: web.Request) -> web.StreamResponse:
    raise errors.NotImplementedYet("volume update is for cluster volumes, which need swarm mode")


def routes(add: Callable[..., None]) -> None:
    add("GET", "/volumes", list_)
    add("POST", "/volumes/create", create)
    add("POST", "/volumes/prune", prune)
    add("GET", "/volumes/{name}", inspect)
    add("PUT", "/volumes/{name}", update)
    add("DELETE", "/volumes/{name}", remove)
