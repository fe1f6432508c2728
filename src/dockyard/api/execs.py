"""Exec routes: create, start (hijack or detached), resize, inspect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from dockyard import errors
from dockyard.api import hijack, streams
from dockyard.api.common import body_json, qint, reply, services
from dockyard.shim import protocol

# ExecConfig's fields. dockerd decodes the body with Go's encoding/json, which matches field
# names case-insensitively: docker-py sends "detachKeys" (lower-case d) and dockerd takes it.
EXEC_FIELDS = {k.lower(): k for k in ("AttachStdin", "AttachStdout", "AttachStderr", "ConsoleSize",
                                      "DetachKeys", "Tty", "Env", "Cmd", "Privileged", "User",
                                      "WorkingDir")}


async def create(request: web.Request) -> web.StreamResponse:
    body = await body_json(request)
    if not isinstance(body, dict):
        raise errors.InvalidArgument("exec config cannot be empty")
    body = {EXEC_FIELDS.get(k.lower(), k): v for k, v in body.items()}
    eid = services(request).containers.exec_create(request.match_info["id"], body)
    return reply({"Id": eid}, status=201)


async def start(request: web.Request) -> web.StreamResponse:
    svc = services(request).containers
    body = await body_json(request) or {}
    eid = request.match_info["id"]
    ex = svc.exec_get(eid)
    detach = bool(body.get("Detach"))
    tty = body.get("Tty")
    if body.get("ConsoleSize"):
        ex.config["ConsoleSize"] = body["ConsoleSize"]
    if detach:
        await svc.exec_open(eid, True, tty)
        return web.Response(status=200)
    svc.exec_check(eid)  # refuse before the 101: errors after it can only go into the stream
    keys = streams.parse_detach_keys(ex.config.get("DetachKeys") or None)
    # The process gets a terminal if the exec was CREATED with Tty; the start's Tty only picks
    # the stream format, as in dockerd: docker-py's exec_start(tty=False) of a Tty exec reads
    # the terminal's output (CRLF, stderr merged) from stdout frames.
    is_tty = bool(ex.config.get("Tty") if tty is None else tty)
    # Answer 101 before the process starts, as dockerd does: clients (docker-py) that read the
    # response head through a buffer would lose output that arrives together with it.
    stream = hijack.hijack(request, hijack.RAW if is_tty else hijack.MULTIPLEXED, {})
    try:
        try:
            conn = await svc.exec_open(eid, False, tty)
        except errors.DockyardError as e:
            msg = f"{e}\r\n".encode()
            await stream.write(msg if is_tty else protocol.frame(protocol.STDERR, msg))
            return hijack.done()
        assert conn is not None
        code = await streams.pump(stream, conn[0], conn[1], tty=is_tty,
                                  stdin=bool(ex.config.get("AttachStdin")), detach_keys=keys)
        if code is not None:
            svc._exec_exited(eid, code)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        stream.close()
    return hijack.done()


async def resize(request: web.Request) -> web.StreamResponse:
    await services(request).containers.exec_resize(request.match_info["id"], qint(request, "h", 0) or 0,
                                                   qint(request, "w", 0) or 0)
    return web.Response(status=200)


async def inspect(request: web.Request) -> web.StreamResponse:
    svc = services(request).containers
    ex = svc.exec_get(request.match_info["id"])
    cfg = ex.config
    cmd = list(cfg.get("Cmd") or [])
    return reply({
        "ID": ex.id, "Running": ex.running, "ExitCode": ex.exit_code,
        "ProcessConfig": {"tty": bool(cfg.get("Tty")), "entrypoint": cmd[0] if cmd else "",
                          "arguments": cmd[1:], "privileged": bool(cfg.get("Privileged")),
                          "user": cfg.get("User", "")},
        "OpenStdin": bool(cfg.get("AttachStdin")), "OpenStderr": bool(cfg.get("AttachStderr")),
        "OpenStdout": bool(cfg.get("AttachStdout")), "CanRemove": False,
        "ContainerID": ex.container_id, "DetachKeys": cfg.get("DetachKeys", ""), "Pid": ex.pid,
    })


def routes(add: Callable[..., None]) -> None:
    add("POST", "/containers/{id}/exec", create)
    add("POST", "/exec/{id}/start", start)
    add("POST", "/exec/{id}/resize", resize)
    add("GET", "/exec/{id}/json", inspect)
