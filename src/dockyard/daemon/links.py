"""Legacy container links (``docker run --link name:alias``, ``HostConfig.Links``).

On the default bridge, dockerd gives a container linked to a running container ``name`` as
``alias``: environment variables (moby's ``links.Link.ToEnv``) and an /etc/hosts line
``<ip>  alias <hostname> <name>``. A container on a user-defined network gets neither: there a
link is an endpoint's ``Links`` entry (what the docker CLI sends for ``--link`` with
``--network``), a DNS alias the embedded DNS answers for the linking container only, looked up
when asked (daemon.networking passes them to network.manager.connect). The default bridge's
env and hosts lines are computed at each start from the linked containers' current addresses,
so a restarted link target is found again at the parent's next start.

Environment, for alias ``db`` (upper-cased, ``-`` -> ``_``) of container ``/web`` linking to
``/pg`` exposing 5432/tcp at 172.17.0.2:

    DB_NAME=/web/db
    DB_PORT=tcp://172.17.0.2:5432                 (the lowest exposed port)
    DB_PORT_5432_TCP=tcp://172.17.0.2:5432        (and _ADDR, _PORT, _PROTO, per exposed port)
    DB_ENV_<VAR>=<value>                          (the linked container's Config.Env, not HOME/PATH)

dockerd also folds runs of consecutive ports into ``_START``/``_END`` variables; not done here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard import errors


@dataclass(frozen=True)
class LinkSetup:
    env: tuple[str, ...]  # before the container's own Env: its values win
    hosts: tuple[str, ...]  # extra-host entries "names:ip" for /etc/hosts


def parse(entry: str) -> tuple[str, str]:
    """``name:alias``, ``name`` (alias = name) or dockerd's ``/name:/parent/alias`` -> (name, alias)."""
    name, _, alias = entry.partition(":")
    name = name.strip("/")
    alias = alias.rsplit("/", 1)[-1] if alias else name
    if not name or not alias:
        raise errors.InvalidArgument(f"invalid link: {entry!r}")
    return name, alias


def _bridge_ip(rec: Any) -> str:
    for e in rec.network_settings.get("Endpoints") or []:
        if e.get("name") == "bridge":
            return str(e.get("ip") or "")
    return ""


def _ports(exposed: dict[str, Any] | None) -> list[tuple[int, str]]:
    out = []
    for key in exposed or {}:
        port, _, proto = str(key).partition("/")
        if port.isdigit():
            out.append((int(port), (proto or "tcp").lower()))
    return sorted(out)


def link_env(parent_name: str, alias: str, ip: str, exposed: dict[str, Any] | None,
             env: list[str] | None) -> list[str]:
    prefix = alias.upper().replace("-", "_")
    out: list[str] = []
    ports = _ports(exposed)
    if ports:
        port, proto = ports[0]
        out.append(f"{prefix}_PORT={proto}://{ip}:{port}")
    for port, proto in ports:
        key = f"{prefix}_PORT_{port}_{proto.upper()}"
        out += [f"{key}={proto}://{ip}:{port}", f"{key}_ADDR={ip}", f"{key}_PORT={port}", f"{key}_PROTO={proto}"]
    out.append(f"{prefix}_NAME=/{parent_name}/{alias}")
    for item in env or []:
        var, sep, val = item.partition("=")
        if sep and var not in ("HOME", "PATH"):
            out.append(f"{prefix}_ENV_{var}={val}")
    return out


def setup(rec: Any, lookup: Any, on_default_bridge: bool) -> LinkSetup:
    """The links of ``rec`` (``lookup(name)`` -> the linked record, NotFound if none).
    Raises Conflict, as dockerd refuses the start, when a linked container is not running."""
    entries = rec.host_config.get("Links") or []
    if not entries or not on_default_bridge:
        return LinkSetup((), ())
    env: list[str] = []
    hosts: list[str] = []
    for entry in entries:
        name, alias = parse(entry)
        child = lookup(name)
        if child.status.value not in ("running", "paused"):
            raise errors.Conflict(f"Cannot link to a non running container: /{child.name} AS /{rec.name}/{alias}")
        ip = _bridge_ip(child)
        if not ip:
            raise errors.Conflict(f"Cannot link to /{child.name}, as it does not belong to the default network")
        env += link_env(rec.name, alias, ip, child.config.get("ExposedPorts"), child.config.get("Env"))
        names = f"{alias} {child.config.get('Hostname') or child.id[:12]}"
        if alias != child.name:
            names += f" {child.name}"
        hosts.append(f"{names}:{ip}")
    return LinkSetup(tuple(env), tuple(hosts))
