"""The Engine API application: version prefix, common headers, error mapping, route table.

Every route is served at ``/path`` and ``/v{1.24..1.50}/path``. Errors raised by services
(the vocabulary in ``dockyard.errors``) become ``{"message": ...}`` with the status from
``api.status``. Each resource's handlers live in their own module (``system``, ``containers``,
``execs``, ``images``) and register through ``routes(add)``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dockyard import errors
from dockyard.api import containers, execs, hijack, images, swarm, system
from dockyard.api.common import SERVICES, experimental
from dockyard.api.status import status_of

MIN_API = (1, 24)
MAX_API = (1, 50)
API_VERSION = "1.50"
SERVER = "Dockyard/0.1.0 (linux)"
COMMON_HEADERS = {"Api-Version": API_VERSION, "Docker-Experimental": "false", "Ostype": "linux",
                  "Server": SERVER}

log = logging.getLogger("dockyard.api")


def error_response(status: int, message: str) -> web.Response:
    # exactly "application/json" (no charset): the docker CLI only decodes that
    return web.Response(status=status, body=json.dumps({"message": message}).encode() + b"\n",
                        headers={"Content-Type": "application/json"})


@web.middleware
async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    version = request.match_info.get("api_version")
    if version is not None:
        try:
            major, minor = (int(x) for x in version.split("."))
        except ValueError:
            return error_response(400, f"invalid API version: {version}")
        if (major, minor) > MAX_API:
            return error_response(400, f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
        if (major, minor) < MIN_API:
            return error_response(400, f"client version {version} is too old. Minimum supported API version is "
                                       f"{MIN_API[0]}.{MIN_API[1]}, please upgrade your client to a newer version")
    try:
        return await handler(request)
    except errors.NotModified:
        return web.Response(status=304)
    except errors.DockyardError as e:
        return error_response(status_of(e), str(e))
    except web.HTTPNotFound:
        return error_response(404, "page not found")
    except web.HTTPMethodNotAllowed:
        return error_response(405, "method not allowed")
    except web.HTTPException:
        raise
    except json.JSONDecodeError as e:
        return error_response(400, f"invalid JSON: {e}")
    except ConnectionError as e:
        # the client went away mid-stream: nothing more to send, nothing to report
        log.debug("%s %s: client gone (%s)", request.method, request.path, e)
        return hijack.done()
    except OSError as e:
        log.exception("request %s %s failed", request.method, request.path)
        return error_response(500, str(e))
    except Exception as e:  # noqa: BLE001 - a bug: report it as 500, keep serving
        log.exception("request %s %s failed", request.method, request.path)
        return error_response(500, f"{type(e).__name__}: {e}")


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    for k, v in COMMON_HEADERS.items():
        response.headers[k] = v
    if experimental(request):
        response.headers["Docker-Experimental"] = "true"


def build_app(services: Any) -> web.Application:
    app = web.Application(middlewares=[middleware], client_max_size=1 << 40)
    app[SERVICES] = services
    app.on_response_prepare.append(_headers)

    def add(method: str, path: str, handler: Callable[..., Awaitable[web.StreamResponse]]) -> None:
        for prefix in ("", "/v{api_version:[0-9]+\\.[0-9]+}"):
            app.router.add_route(method, prefix + path, handler)

    for module in (system, containers, execs, images, swarm):
        module.routes(add)
    for module in _optional_modules(services):
        module.routes(add)
    return app


def _optional_modules(services: Any) -> list[Any]:
    """Routers other packages own (registry client, builder): a broken one must not stop the daemon."""
    import importlib
    found = []
    for name in ("dockyard.api.distribution", "dockyard.api.build", "dockyard.api.networks",
                 "dockyard.api.volumes"):
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - log and serve the rest
            log.exception("the %s routes are unavailable", name)
            continue
        found.append(module)
        if name.endswith("distribution") and getattr(services, "pull", None) is None:
            services.pull = module.pull
    return found
