"""The network package's records: networks and endpoints (frozen values, JSON round-trip).

A network record holds its IPAM pool and its endpoints, so one atomic file write keeps them
consistent (``<state_dir>/networks/<id>.json``, see :mod:`dockyard.network.store`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from dockyard.network.ipam import Pool

DRIVER_BRIDGE = "bridge"
DRIVER_HOST = "host"
DRIVER_NULL = "null"

OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
OPT_HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
OPT_GATEWAY_MODE = "com.docker.network.bridge.gateway_mode_ipv4"  # nat | nat-unprotected | routed


def _known(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    """Only the fields this version knows: a record written by a newer version still loads."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class Endpoint:
    """A container's attachment to one network."""

    id: str
    network_id: str
    container_id: str
    name: str  # the container's name (resolvable by DNS)
    aliases: tuple[str, ...]
    ip: str
    prefixlen: int
    mac: str
    gateway: str | None
    host_ifname: str  # "" for host/none networks
    ifname: str
    netns_path: str
    # legacy links (``--link name:alias`` on a user-defined network): (alias, container name);
    # the embedded DNS answers ``alias`` for this endpoint's container only
    links: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["aliases"] = list(self.aliases)
        d["links"] = [list(pair) for pair in self.links]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Endpoint:
        return cls(**{**_known(cls, d), "aliases": tuple(d.get("aliases", ())),
                      "links": tuple((str(a), str(n)) for a, n in d.get("links") or ())})


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    driver: str
    created: str  # RFC 3339
    bridge: str = ""  # "" for host/none
    bridge_created: bool = False  # delete the bridge on removal only if we made it
    pool: Pool | None = None
    internal: bool = False
    icc: bool = True
    masquerade: bool = True
    protect: bool = True  # only published ports reachable from outside the bridge
    mtu: int = 1500
    host_binding_ipv4: str = ""
    predefined: bool = False
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # by container id

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["pool"] = self.pool.to_json() if self.pool else None
        d["endpoints"] = {k: e.to_json() for k, e in self.endpoints.items()}
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Network:
        return cls(**{
            **_known(cls, d),
            "pool": Pool.from_json(d["pool"]) if d.get("pool") else None,
            "endpoints": {k: Endpoint.from_json(e) for k, e in d.get("endpoints", {}).items()},
        })
