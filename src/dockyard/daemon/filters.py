"""Docker's ``filters`` query parameter: parse it, and match containers against it.

``filters`` is JSON ``{"key": ["v1", "v2"]}`` (or the legacy ``{"key": {"v1": true}}``).
Values of one key are ORed; keys are ANDed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dockyard.errors import InvalidArgument

CONTAINER_KEYS = {"ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task",
                  "label", "name", "network", "publish", "since", "status", "volume"}


def parse(raw: str | None) -> dict[str, list[str]]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid filter: {e}") from e
    if not isinstance(data, dict):
        raise InvalidArgument("invalid filter: expected a JSON object")
    out: dict[str, list[str]] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out[k] = [x for x, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        else:
            out[k] = [str(v)]
    return out


def check_keys(filters: dict[str, list[str]], allowed: set[str]) -> None:
    for k in filters:
        if k not in allowed:
            raise InvalidArgument(f"invalid filter '{k}'")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def timestamp(value: str, now: float | None = None, name: str = "until") -> float:
    """A filter's time (``until``, ``since`` of events/logs) as epoch seconds, in the forms
    dockerd's ``timetypes.GetTimestamp`` takes: a Go duration before now (``10m``, ``1h30m``),
    unix seconds (``1700000000.5``), or an RFC 3339 date/time (``2006-01-02``,
    ``2006-01-02T15:04:05``, with a zone or ``Z``; without one it is UTC)."""
    v = value.strip()
    now = time.time() if now is None else now
    if v and _DURATION.sub("", v) == "" and _DURATION.match(v):
        return now - sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(v))
    try:
        return float(v)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"invalid filter '{name}={value}'") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def label_match(labels: dict[str, str], exprs: list[str]) -> bool:
    for e in exprs:
        k, sep, v = e.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def _port_match(expr: str, ports: list[str]) -> bool:
    """``80``, ``80/udp`` or a range ``8000-8080[/tcp]`` against ``["80/tcp", ...]``."""
    spec, _, proto = expr.partition("/")
    lo, _, hi = spec.partition("-")
    try:
        first, last = int(lo), int(hi or lo)
    except ValueError:
        raise InvalidArgument(f"invalid filter value {expr!r}: expected <port>[-<port>][/<proto>]") from None
    for p in ports:
        n, _, pr = p.partition("/")
        if first <= int(n) <= last and pr == (proto or "tcp"):
            return True
    return False


def match_container(info: dict[str, Any], filters: dict[str, list[str]],
                    resolve_image: Callable[[str], str | None],
                    order_of: Callable[[str], int | None]) -> bool:
    """``info`` carries Id, Name, State, ExitCode, Labels, ImageID, Image, Health, Created order."""
    for key, values in filters.items():
        if not values:
            continue
        if key == "id":
            ok = any(info["Id"].startswith(v) for v in values)
        elif key == "name":
            ok = any(v.lstrip("/") in info["Name"] for v in values)
        elif key == "status":
            for v in values:
                if v not in ("created", "restarting", "running", "removing", "paused", "exited", "dead"):
                    raise InvalidArgument(f"invalid filter 'status={v}'")
            ok = info["State"] in values
        elif key == "exited":
            ok = info["State"] == "exited" and str(info["ExitCode"]) in values
        elif key == "label":
            ok = label_match(info["Labels"], values)
        elif key == "ancestor":
            ok = any(info["ImageID"] == resolve_image(v) or info["Image"] == v for v in values)
        elif key == "health":
            ok = (info.get("Health") or "none") in values
        elif key in ("before", "since"):
            mine = order_of(info["Id"])
            ok = True
            for v in values:
                other = order_of(v)
                if other is None:
                    raise InvalidArgument(f"No such container: {v}")
                ok = mine is not None and (mine < other if key == "before" else mine > other)
        elif key == "network":
            ok = any(v in info.get("Networks", []) for v in values)
        elif key == "is-task":
            ok = "false" in values
        elif key == "volume":  # a volume's name or a mount's destination
            ok = any(v in (m.get("Name"), m.get("Destination"), m.get("Source"))
                     for m in info.get("Mounts", []) for v in values)
        elif key in ("publish", "expose"):
            ports = ([f"{p['PrivatePort']}/{p['Type']}" for p in info.get("Ports", [])] if key == "publish"
                     else [k if "/" in k else f"{k}/tcp" for k in info.get("ExposedPorts", [])])
            ok = any(_port_match(v, ports) for v in values)
        else:
            ok = True  # isolation: nothing we offer can match it
        if not ok:
            return False
    return True
