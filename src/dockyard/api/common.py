"""Helpers shared by the route modules: services lookup, query parsing, JSON replies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from dockyard.errors import InvalidArgument

SERVICES: web.AppKey[Any] = web.AppKey("services", object)


def services(request: web.Request) -> Any:
    return request.app[SERVICES]


def experimental(request: web.Request) -> bool:
    """dockerd's ``--experimental``: the CLI reads it from ``Docker-Experimental`` on /_ping."""
    return bool(getattr(getattr(services(request), "cfg", None), "experimental", False))


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    return v.lower() not in ("", "0", "false", "no")


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {v!r}") from None


def api_version(request: web.Request) -> tuple[int, int]:
    v = request.match_info.get("api_version")
    if not v:
        return (1, 50)
    a, b = v.split(".")
    return int(a), int(b)


def reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode() + b"\n",
                        headers={"Content-Type": "application/json"})


async def body_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid JSON body: {e}") from None
