"""``RUN --mount=...`` specifications, parsed and validated as BuildKit does.

``parse_mount("type=cache,target=/root/.cache,sharing=locked")`` -> :class:`Mount`. The spec is
CSV; keys are case-insensitive; bare ``ro``/``rw``/``required`` are booleans. ``expand``
(optional) expands every value first. The instruction layer parses without it: a spec with no
``$`` is fully validated then, one with variables is only checked for a variable in ``from``
(never allowed) and comes back ``pending``; ``expand.expand_instruction`` re-parses it with the
stage's variables. Errors raise InvalidArgument with BuildKit's wording.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.builder.suggest import suggest as _suggest
from dockyard.errors import InvalidArgument

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_KEYS = (
    "type", "from", "source", "src", "target", "dst", "destination", "readonly", "ro",
    "rw", "readwrite", "required", "size", "id", "sharing", "mode", "uid", "gid", "env",
)  # fmt: skip


@dataclass(frozen=True)
class Mount:
    spec: str  # as written (before expansion), kept so the mount can be re-expanded
    type: str = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = ""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    env: str | None = None
    size: int | None = None  # tmpfs size limit in bytes
    pending: bool = False  # values hold variables: only ``spec`` and ``from_`` are meaningful


def _bool(key: str, value: str) -> bool:
    v = value.lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    raise InvalidArgument(f"invalid value for {key}: {value}")


_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?$")


def _ram_in_bytes(value: str) -> int:
    m = _SIZE.match(value.strip())
    if m is None:
        raise InvalidArgument(f"invalid size: '{value}'")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    return int(float(m.group(1)) * mult[m.group(2).lower()])


def _uint(key: str, value: str, base: int) -> int:
    # Go's strconv.ParseUint: digits only (Python's int() would also take "0o7", "1_0", " 1")
    digits = "01234567" if base == 8 else "0123456789"
    if value == "" or any(c not in digits for c in value):
        raise InvalidArgument(f"invalid value {value} for {key}")
    n = int(value, base)
    if n >= 1 << 32:
        raise InvalidArgument(f"invalid value {value} for {key}")
    return n


def parse_mount(spec: str, expand: Callable[[str], str] | None = None) -> Mount:
    try:
        fields = next(csv.reader([spec]), [])
    except csv.Error as err:
        raise InvalidArgument(f"failed to parse csv mounts: {err}") from None
    if expand is None and "$" in spec:
        from_ = ""
        for field in fields:
            key, eq, value = field.partition("=")
            if eq and key.lower() == "from":
                if re.search(r"\$.", value):
                    raise InvalidArgument(
                        "'from' doesn't support variable expansion, define alias stage instead"
                    )
                from_ = value
        return Mount(spec=spec, from_=from_, pending=True)
    kw: dict[str, object] = {"type": "bind"}
    ro_auto = True
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.lower()
        mtype = kw["type"]
        if not eq:
            if key in ("ro", "readonly"):
                kw["readonly"], ro_auto = True, False
            elif key in ("rw", "readwrite"):
                kw["readonly"], ro_auto = False, False
            elif key == "required" and mtype in ("secret", "ssh"):
                kw["required"] = True
            elif key == "required":
                raise InvalidArgument(f"unexpected key '{key}' for mount type '{mtype}'")
            else:
                raise InvalidArgument(f"invalid field '{field}' must be a key=value pair")
            continue
        if expand is not None:
            value = expand(value)
        if key == "type":
            if value.lower() not in MOUNT_TYPES:
                raise InvalidArgument(
                    _suggest(f'unsupported mount type "{value}"', value, list(MOUNT_TYPES), True)
                )
            kw["type"] = value.lower()
        elif key == "from":
            kw["from_"] = value
        elif key in ("source", "src"):
            kw["source"] = value
        elif key in ("target", "dst", "destination"):
            kw["target"] = value
        elif key in ("readonly", "ro"):
            kw["readonly"], ro_auto = _bool(key, value), False
        elif key in ("rw", "readwrite"):
            kw["readonly"], ro_auto = not _bool(key, value), False
        elif key == "required":
            if mtype not in ("secret", "ssh"):
                raise InvalidArgument(f"unexpected key '{key}' for mount type '{mtype}'")
            kw["required"] = _bool(key, value)
        elif key == "size":
            if mtype != "tmpfs":
                raise InvalidArgument(f"unexpected key '{key}' for mount type '{mtype}'")
            kw["size"] = _ram_in_bytes(value)
        elif key == "id":
            kw["id"] = value
        elif key == "sharing":
            if value.lower() not in SHARING_MODES:
                raise InvalidArgument(f'unsupported sharing value "{value}"')
            kw["sharing"] = value.lower()
        elif key == "mode":
            kw["mode"] = _uint(key, value, 8)
        elif key in ("uid", "gid"):
            kw[key] = _uint(key, value, 10)
        elif key == "env":
            kw["env"] = value
        else:
            raise InvalidArgument(
                _suggest(f"unexpected key '{key}' in '{field}'", key, list(_KEYS), True)
            )
    mtype = kw["type"]
    if mtype not in ("secret", "ssh", "cache"):
        for k in ("mode", "uid", "gid"):
            if kw.get(k) is not None:
                raise InvalidArgument(f'{k} not allowed for "{mtype}" type mounts')
    if ro_auto:
        kw["readonly"] = mtype not in ("cache", "tmpfs")
    if kw.get("sharing") and mtype != "cache":
        raise InvalidArgument(f"invalid cache sharing set for {mtype} mount")
    if mtype == "secret":
        if kw.get("from_"):
            raise InvalidArgument("secret mount should not have a from")
        if not (kw.get("source") or kw.get("target") or kw.get("id") or kw.get("env")):
            raise InvalidArgument("invalid secret mount. one of source, target required")
        if kw.get("sharing"):
            raise InvalidArgument("secret mount should not define sharing")
        if kw.get("source") and kw.get("id"):
            raise InvalidArgument("both source and id can't be set")
    if mtype in ("bind", "cache", "tmpfs") and not kw.get("target"):
        raise InvalidArgument(f"mount target is required for {mtype} mounts")
    return Mount(spec=spec, **kw)  # type: ignore[arg-type]
