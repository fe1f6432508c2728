"""Shared by the CLI verbs: the client, error -> exit code, output, filters, sizes and times.

A verb is ``def name(g: Globals, argv: list[str]) -> int``: it parses its own flags with
``flags.parse`` and returns the exit code. Errors from the daemon are the error vocabulary
(``dockyard.errors``); ``main`` prints them as docker does (``Error response from daemon: ...``)
and exits 1, or 125 for ``run``/``create`` (docker's code for "the engine refused").
"""

from __future__ import annotations

import sys

from dockyard.units import human_duration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.client.api import Client


class Globals:
    """Global flags (``-H``) and the lazily made client."""

    def __init__(self, host: str | None) -> None:
        self.host = host
        self._client: Client | None = None

    def get_json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        """A cheap GET (no http.client/json/socket imports): for ps, images, version."""
        from dockyard.client.fast import get_json, socket_path
        return get_json(socket_path(self.host), path, query)

    @property
    def client(self) -> Client:
        if self._client is None:
            from dockyard.client.api import Client
            self._client = Client(self.host)
        return self._client


class UsageError(Exception):
    """Wrong number of arguments etc.: printed with a pointer to ``--help``; exit 1."""


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def daemon_error(e: BaseException) -> None:
    err(f"Error response from daemon: {e}")


def filters(items: list[str]) -> dict[str, list[str]] | None:
    """``-f key=value`` (repeatable) -> the Engine API's filters map."""
    flt: dict[str, list[str]] = {}
    for f in items:
        k, eq, v = f.partition("=")
        if not eq:
            raise UsageError(f'bad format of filter (expected name=value): "{f}"')
        flt.setdefault(k.strip().lower(), []).append(v)
    return flt or None


def each(g: Globals, names: list[str], fn: Any, echo: bool = True) -> int:
    """Apply ``fn(client, name)`` to each name; print the name or docker's error line; 1 if any failed."""
    from dockyard import errors
    rc = 0
    for n in names:
        try:
            fn(g.client, n)
            if echo:
                out(n)
        except errors.DockyardError as e:
            daemon_error(e)
            rc = 1
    return rc


def parse_env_file(path: str) -> list[str]:
    import os
    result = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:  # docker: a bare name takes its value from our environment
                if line in os.environ:
                    line = f"{line}={os.environ[line]}"
                else:
                    continue
            result.append(line)
    return result


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """docker's RAMInBytes: ``64m``, ``1g``, ``512k``, ``1024``, ``1.5GB``."""
    t = text.strip().lower()
    if t.endswith("b") and len(t) > 1 and t[-2] in "kmgt":
        t = t[:-1]
    unit = t[-1] if t and t[-1] in "bkmgt" else ""
    num = t[:-1] if unit else t
    try:
        value = float(num)
    except ValueError:
        raise UsageError(f"invalid size: '{text}'") from None
    if value < 0:
        raise UsageError(f"invalid size: '{text}'")
    return int(value * _UNITS[unit])


def human_size(n: float, precision: int = 4) -> str:
    """docker's units.HumanSizeWithPrecision (decimal units)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.{precision}g}{units[i]}"


def bytes_size(n: float) -> str:
    """docker's units.BytesSize (binary units, 4 significant digits): stats' memory column."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024.0
        i += 1
    return f"{n:.4g}{units[i]}"


def since(ts: float) -> str:
    import time
    return human_duration(time.time() - ts) + " ago"


def parse_iso(text: str) -> float:
    """RFC 3339 with nanoseconds (the daemon's ``Created``) -> epoch seconds."""
    from datetime import datetime
    if not text or text.startswith("0001-"):
        return 0.0
    t = text.replace("Z", "+00:00")
    head, dot, rest = t.partition(".")
    if dot:
        frac = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            frac += rest[i]
            i += 1
        t = f"{head}.{frac[:6]}{rest[i:]}"
    return datetime.fromisoformat(t).timestamp()


def short_id(i: str) -> str:
    return i.split(":", 1)[-1][:12]


def confirm(question: str, force: bool) -> bool:
    if force:
        return True
    sys.stdout.write(question + " [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")
