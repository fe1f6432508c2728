"""Apply ``--change`` Dockerfile instructions to an image config (docker import / commit).

Accepted: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK (NONE or CMD form), LABEL, ONBUILD,
STOPSIGNAL, USER, VOLUME, WORKDIR: the set docker allows for ``--change``. Anything else is an
``InvalidArgument`` naming the instruction. ``config`` is the ``config`` member of the image
configuration (Docker's PascalCase container config: Env, Cmd, Entrypoint, ...); a new dict is
returned, the input is not modified.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from typing import Any

from dockyard.errors import InvalidArgument

ALLOWED = (
    "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL",
    "USER", "VOLUME", "WORKDIR",
)
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def _json_or_shell(rest: str, *, shell: bool = True) -> list[str]:
    s = rest.strip()
    if s.startswith("["):
        try:
            v = json.loads(s)
        except json.JSONDecodeError:
            v = None
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return v
    return ["/bin/sh", "-c", s] if shell else s.split()


def _pairs(instr: str, rest: str) -> list[tuple[str, str]]:
    """``k=v k2="v 2"`` or the legacy ``k v with spaces`` form (ENV, LABEL)."""
    try:
        words = shlex.split(rest, posix=True)
    except ValueError as e:
        raise InvalidArgument(f"{instr}: {e}") from None
    if not words:
        raise InvalidArgument(f"{instr} requires at least one argument")
    if "=" not in words[0]:
        parts = rest.strip().split(None, 1)
        if len(parts) != 2:
            raise InvalidArgument(f"{instr} names can not be blank / requires a value: {rest!r}")
        return [(parts[0], parts[1])]
    out = []
    for w in words:
        k, sep, v = w.partition("=")
        if not sep or not k:
            raise InvalidArgument(f"{instr}: invalid key=value pair {w!r}")
        out.append((k, v))
    return out


def _duration_ns(s: str, field: str) -> int:
    pos, total = 0, 0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNIT_NS[m.group(2)])
        pos = m.end()
    if pos != len(s) or not s:
        raise InvalidArgument(f"HEALTHCHECK: invalid duration for {field}: {s!r}")
    return total


def _healthcheck(rest: str) -> dict[str, Any]:
    words = rest.split()
    opts: dict[str, Any] = {}
    while words and words[0].startswith("--"):
        k, _, v = words.pop(0)[2:].partition("=")
        if k in ("interval", "timeout", "start-period", "start-interval"):
            opts["".join(p.capitalize() for p in k.split("-"))] = _duration_ns(v, k)
        elif k == "retries":
            try:
                opts["Retries"] = int(v)
            except ValueError:
                raise InvalidArgument(f"HEALTHCHECK: invalid retries {v!r}") from None
        else:
            raise InvalidArgument(f"HEALTHCHECK: unknown flag --{k}")
    if not words:
        raise InvalidArgument("HEALTHCHECK requires NONE or CMD")
    kind = words[0].upper()
    if kind == "NONE":
        return {"Test": ["NONE"]}
    if kind != "CMD":
        raise InvalidArgument(f"HEALTHCHECK: unknown type {words[0]!r}")
    body = rest.split(words[0], 1)[1].strip()
    cmd = _json_or_shell(body)
    test = ["CMD", *cmd] if body.startswith("[") and cmd[:2] != ["/bin/sh", "-c"] else ["CMD-SHELL", body]
    return {"Test": test, **opts}


def apply_changes(config: dict[str, Any] | None, changes: list[str] | tuple[str, ...]) -> dict[str, Any]:
    cfg = copy.deepcopy(config) if config else {}
    for raw in changes:
        line = raw.strip()
        if not line:
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        rest = rest.strip()
        if instr not in ALLOWED:
            raise InvalidArgument(f"{instr} is not a valid change command")
        if instr == "CMD":
            cfg["Cmd"] = _json_or_shell(rest)
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(rest)
        elif instr == "ENV":
            env = list(cfg.get("Env") or [])
            for k, v in _pairs(instr, rest):
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif instr == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(instr, rest))
            cfg["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in rest.split():
                num, _, proto = p.partition("/")
                if not re.fullmatch(r"\d+(-\d+)?", num) or proto not in ("", "tcp", "udp", "sctp"):
                    raise InvalidArgument(f"EXPOSE: invalid port {p!r}")
                ports[f"{num}/{proto or 'tcp'}"] = {}
            cfg["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            paths = _json_or_shell(rest, shell=False)
            if not paths or any(not p for p in paths):
                raise InvalidArgument("VOLUME specified can not be an empty string")
            for p in paths:
                vols[p] = {}
            cfg["Volumes"] = vols
        elif instr == "ONBUILD":
            if not rest:
                raise InvalidArgument("ONBUILD requires an instruction")
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest]
        elif instr == "HEALTHCHECK":
            cfg["Healthcheck"] = _healthcheck(rest)
        else:
            if not rest:
                raise InvalidArgument(f"{instr} requires exactly one argument")
            key = {"USER": "User", "WORKDIR": "WorkingDir", "STOPSIGNAL": "StopSignal"}[instr]
            if instr == "WORKDIR" and not rest.startswith("/"):
                rest = (cfg.get("WorkingDir") or "/").rstrip("/") + "/" + rest
            cfg[key] = rest
    return cfg
