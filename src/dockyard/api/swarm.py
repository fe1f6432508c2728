"""Swarm-mode routes, answered as a dockerd that is not part of a swarm answers them.

Dockyard has no swarm mode. A dockerd outside a swarm still serves these paths: it answers
``503`` with ``This node is not part of a swarm`` for ``POST /swarm/leave`` and with ``This
node is not a swarm manager...`` for the manager-only reads (swarm, nodes, services, tasks,
secrets, configs, unlock key). Clients depend on that status: docker-py's
``leave_swarm(force=True)`` treats 503 as "nothing to leave" (a 404 "page not found" made it
raise), and the docker CLI prints the message. ``init``/``join``/``update``/``unlock`` and
writes to swarm objects answer ``501``: dockerd would do them, Dockyard cannot.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from dockyard import errors

NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
               'to connect this node to swarm and try again.')
NOT_IN_SWARM = "This node is not part of a swarm"
NO_SWARM_MODE = "swarm mode is not supported by Dockyard"

# swarm objects with list/inspect (manager reads) and create/update/remove (manager writes)
OBJECTS = ("nodes", "services", "tasks", "secrets", "configs")


async def not_manager(request: web.Request) -> web.StreamResponse:
    raise errors.Unavailable(NOT_MANAGER)


async def not_in_swarm(request: web.Request) -> web.StreamResponse:
    raise errors.Unavailable(NOT_IN_SWARM)


async def no_swarm_mode(request: web.Request) -> web.StreamResponse:
    raise errors.NotImplementedYet(NO_SWARM_MODE)


def routes(add: Callable[..., None]) -> None:
    add("GET", "/swarm", not_manager)
    add("GET", "/swarm/unlockkey", not_manager)
    add("POST", "/swarm/leave", not_in_swarm)
    for verb in ("init", "join", "update", "unlock"):
        add("POST", f"/swarm/{verb}", no_swarm_mode)
    for obj in OBJECTS:
        add("GET", f"/{obj}", not_manager)
        add("GET", f"/{obj}/{{id}}", not_manager)
        if obj == "tasks":
            continue
        add("POST", f"/{obj}/create", not_manager)
        add("POST", f"/{obj}/{{id}}/update", not_manager)
        if obj != "nodes":
            add("DELETE", f"/{obj}/{{id}}", not_manager)
    add("DELETE", "/nodes/{id}", not_manager)
    add("GET", "/services/{id}/logs", not_manager)
    add("GET", "/tasks/{id}/logs", not_manager)
