"""Network routes: list, inspect, create, remove, prune, connect, disconnect (``docker network ...``).

Uses ``services.networks`` (a :class:`dockyard.network.manager.NetworkManager`; blocking, so
every call runs in a worker thread) and emits ``network`` events (create, destroy, prune).
``connect``/``disconnect`` need a container's network namespace: they go through
``services.containers.network_connect(container, network, endpoint_config)`` /
``network_disconnect(container, network, force)`` when the container service offers them,
and answer 501 otherwise.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from dockyard import errors
from dockyard.api.common import body_json, reply, services
from dockyard.daemon import filters
from dockyard.network.manager import NetworkSpec
from dockyard.network.model import DRIVER_BRIDGE, Network

LIST_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
PRUNE_FILTERS = {"label", "label!", "until"}


def _run(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    return asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))


def _mgr(request: web.Request) -> Any:
    mgr = getattr(services(request), "networks", None)
    if mgr is None:
        raise errors.Unavailable("the network service is not running")
    return mgr


def network_json(n: Network, containers: bool = True) -> dict[str, Any]:
    """dockerd's network inspect shape (``containers=False``: the list's, without endpoints)."""
    config = []
    if n.pool is not None:
        c: dict[str, Any] = {"Subnet": str(n.pool.subnet), "Gateway": str(n.pool.gateway)}
        if n.pool.ip_range is not None:
            c["IPRange"] = str(n.pool.ip_range)
        if n.pool.aux:
            c["AuxiliaryAddresses"] = n.pool.aux_addresses
        config.append(c)
    eps: dict[str, Any] = {}
    if containers:
        for cid, e in n.endpoints.items():
            eps[cid] = {"Name": e.name, "EndpointID": e.id, "MacAddress": e.mac,
                        "IPv4Address": f"{e.ip}/{e.prefixlen}" if e.ip else "", "IPv6Address": ""}
    return {
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local", "Driver": n.driver,
        "EnableIPv4": True, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": config},
        "Internal": n.internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": eps, "Options": dict(n.options), "Labels": dict(n.labels),
    }


def _match(terms: list[str], value: str) -> bool:
    """dockerd's filter Match: equal, or the term as a regular expression found in value."""
    for t in terms:
        if t == value:
            return True
        try:
            if re.search(t, value):
                return True
        except re.error:
            continue
    return False


def _bool(key: str, v: str) -> bool:
    if v.lower() in ("1", "true"):
        return True
    if v.lower() in ("0", "false"):
        return False
    raise errors.InvalidArgument(f"invalid filter '{key}={v}'")


def _keep(n: Network, flt: dict[str, list[str]]) -> bool:
    if flt.get("name") and not _match(flt["name"], n.name):
        return False
    if flt.get("id") and not _match(flt["id"], n.id):
        return False
    if flt.get("driver") and n.driver not in flt["driver"]:
        return False
    if flt.get("label") and not filters.label_match(n.labels, flt["label"]):
        return False
    if flt.get("scope") and "local" not in flt["scope"]:
        return False
    if flt.get("type"):
        for t in flt["type"]:
            if t not in ("custom", "builtin"):
                raise errors.InvalidArgument(f"invalid filter: 'type'='{t}'")
        if ("builtin" if n.predefined else "custom") not in flt["type"]:
            return False
    if flt.get("dangling"):
        dangling = _bool("dangling", flt["dangling"][0])
        if (not n.predefined and not n.endpoints) != dangling:
            return False
    return True


async def list_(request: web.Request) -> web.StreamResponse:
    flt = filters.parse(request.query.get("filters"))
    filters.check_keys(flt, LIST_FILTERS)
    nets = await _run(_mgr(request).list_networks)
    return reply([network_json(n, containers=False) for n in nets if _keep(n, flt)])


async def inspect(request: web.Request) -> web.StreamResponse:
    n = await _run(_mgr(request).get, request.match_info["id"])
    return reply(network_json(n))


def _spec(body: dict[str, Any]) -> NetworkSpec:
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise errors.InvalidArgument("network name must not be empty")
    if body.get("EnableIPv6"):
        raise errors.NotImplementedYet("IPv6 networks are not supported by Dockyard yet")
    if body.get("ConfigOnly") or body.get("ConfigFrom") or body.get("Ingress") or \
            (body.get("Scope") or "local") != "local":
        raise errors.NotImplementedYet("config-only, ingress and swarm-scoped networks are not supported")
    ipam = body.get("IPAM") or {}
    if (ipam.get("Driver") or "default") != "default":
        raise errors.NotImplementedYet(f"IPAM driver {ipam['Driver']!r} is not supported; only \"default\"")
    configs = ipam.get("Config") or []
    if len(configs) > 1:
        raise errors.NotImplementedYet("more than one IPAM config (subnet) per network is not supported")
    cfg = configs[0] if configs else {}
    aux = cfg.get("AuxiliaryAddresses") or {}
    if not isinstance(aux, dict) or not all(isinstance(v, str) for v in aux.values()):
        raise errors.InvalidArgument("IPAM.Config.AuxiliaryAddresses must be an object of name: address")
    if cfg.get("Gateway") and not cfg.get("Subnet"):
        raise errors.InvalidArgument("invalid IPAM config: gateway needs a subnet")
    if (body.get("EnableIPv4") is False):
        raise errors.NotImplementedYet("IPv4 cannot be disabled on a Dockyard network")
    for key in ("Options", "Labels"):
        if not isinstance(body.get(key) or {}, dict):
            raise errors.InvalidArgument(f"{key} must be an object of strings")
    return NetworkSpec(name=name, driver=str(body.get("Driver") or DRIVER_BRIDGE),
                       subnet=cfg.get("Subnet") or None, gateway=cfg.get("Gateway") or None,
                       ip_range=cfg.get("IPRange") or None, aux_addresses={str(k): v for k, v in aux.items()},
                       internal=bool(body.get("Internal")),
                       options={str(k): str(v) for k, v in (body.get("Options") or {}).items()},
                       labels={str(k): str(v) for k, v in (body.get("Labels") or {}).items()})


async def create(request: web.Request) -> web.StreamResponse:
    body = await body_json(request)
    if not isinstance(body, dict):
        raise errors.InvalidArgument("invalid network create request: expected a JSON object")
    n = await _run(_mgr(request).create_network, _spec(body))
    services(request).events.emit("network", "create", n.id, {"name": n.name, "type": n.driver})
    return reply({"Id": n.id, "Warning": ""}, status=201)


def _remove_one(mgr: Any, ref: str) -> Network:
    n = mgr.get(ref)
    if n.endpoints and not n.predefined:
        # dockerd's ActiveEndpointsError is a "forbidden" error (403), not a conflict
        raise errors.PermissionDenied(
            f"error while removing network: network {n.name} id {n.id} has active endpoints")
    mgr.remove_network(n.id)
    return n


async def remove(request: web.Request) -> web.StreamResponse:
    n = await _run(_remove_one, _mgr(request), request.match_info["id"])
    services(request).events.emit("network", "destroy", n.id, {"name": n.name, "type": n.driver})
    return web.Response(status=204)


def _until(values: list[str]) -> float | None:
    if not values:
        return None
    v = values[0]
    try:
        return float(v)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise errors.InvalidArgument(f"invalid filter 'until={v}'") from None


def _prune(mgr: Any, flt: dict[str, list[str]]) -> list[Network]:
    until = _until(flt.get("until", []))
    gone = []
    for n in mgr.list_networks():
        if n.predefined or n.endpoints:
            continue
        if flt.get("label") and not filters.label_match(n.labels, flt["label"]):
            continue
        if flt.get("label!") and any(filters.label_match(n.labels, [e]) for e in flt["label!"]):
            continue
        if until is not None and datetime.fromisoformat(n.created.replace("Z", "+00:00")).timestamp() >= until:
            continue
        try:
            mgr.remove_network(n.id)
        except (errors.Conflict, errors.PermissionDenied, errors.NotFound):
            continue  # got an endpoint meanwhile, or removed by someone else
        gone.append(n)
    return gone


async def prune(request: web.Request) -> web.StreamResponse:
    flt = filters.parse(request.query.get("filters"))
    filters.check_keys(flt, PRUNE_FILTERS)
    gone = await _run(_prune, _mgr(request), flt)
    s = services(request)
    for n in gone:
        s.events.emit("network", "destroy", n.id, {"name": n.name, "type": n.driver})
    s.events.emit("network", "prune", "", {})
    return reply({"NetworksDeleted": [n.name for n in gone]})


async def connect(request: web.Request) -> web.StreamResponse:
    s = services(request)
    body = await body_json(request) or {}
    if not isinstance(body, dict) or not body.get("Container"):
        raise errors.InvalidArgument("Container is required")
    n = await _run(_mgr(request).get, request.match_info["id"])
    fn = getattr(s.containers, "network_connect", None)
    if fn is None:
        raise errors.NotImplementedYet("docker network connect is not supported by this daemon yet")
    await fn(str(body["Container"]), n.id, body.get("EndpointConfig") or {})
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.StreamResponse:
    s = services(request)
    body = await body_json(request) or {}
    if not isinstance(body, dict) or not body.get("Container"):
        raise errors.InvalidArgument("Container is required")
    n = await _run(_mgr(request).get, request.match_info["id"])
    fn = getattr(s.containers, "network_disconnect", None)
    if fn is None:
        raise errors.NotImplementedYet("docker network disconnect is not supported by this daemon yet")
    await fn(str(body["Container"]), n.id, bool(body.get("Force")))
    return web.Response(status=200)


def routes(add: Callable[..., None]) -> None:
    add("GET", "/networks", list_)
    add("POST", "/networks/create", create)
    add("POST", "/networks/prune", prune)
    add("GET", "/networks/{id}", inspect)
    add("DELETE", "/networks/{id}", remove)
    add("POST", "/networks/{id}/connect", connect)
    add("POST", "/networks/{id}/disconnect", disconnect)
