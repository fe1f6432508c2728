"""Docker's JSON progress messages, exactly as the docker CLI's jsonmessage renders them.

A pull or push reports through a :data:`Emit` callable that receives one message (a dict)
at a time; the API layer writes each as one JSON line of a chunked response. Shapes::

    {"status": "Pulling from library/busybox", "id": "latest"}
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "<12 hex>"}
    {"status": "Downloading", "progressDetail": {"current": N, "total": M},
     "progress": "[=>    ...]  36.45kB/1.07MB", "id": "<12 hex>"}
    {"status": "Digest: sha256:..."}
    {"progressDetail": {}, "aux": {"Tag": "1", "Digest": "sha256:...", "Size": 527}}
    {"errorDetail": {"message": "..."}, "error": "..."}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Emit = Callable[[Message], Awaitable[None]]

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float) -> str:
    """go-units ``HumanSizeWithPrecision(size, 4)``: decimal units, 4 significant digits."""
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.4g}{_UNITS[i]}"


def progress_bar(current: int, total: int) -> str:
    """The ``progress`` string of jsonmessage.JSONProgress for a wide terminal."""
    if total <= 0:
        return f"{human_size(current):>8}"
    pct = min(int(current / total * 100) // 2, 50) if current <= total else 50
    return f"[{'=' * pct}>{' ' * (50 - pct)}] {human_size(current):>8}/{human_size(total)}"


def status(text: str, ident: str | None = None) -> Message:
    """A plain status line (``id`` only when given, as docker omits it)."""
    m: Message = {"status": text}
    if ident is not None:
        m["id"] = ident
    return m


def layer(text: str, ident: str) -> Message:
    """A per-layer status (``Pulling fs layer``, ``Pushed``...): carries an empty progressDetail."""
    return {"status": text, "progressDetail": {}, "id": ident}


def transfer(text: str, ident: str, current: int, total: int) -> Message:
    """``Downloading`` / ``Pushing`` / ``Extracting`` with a bar."""
    return {
        "status": text,
        "progressDetail": {"current": current, "total": total},
        "progress": progress_bar(current, total),
        "id": ident,
    }


def aux(data: dict[str, Any]) -> Message:
    return {"progressDetail": {}, "aux": data}


def error(message: str) -> Message:
    return {"errorDetail": {"message": message}, "error": message}


def short_id(digest: str) -> str:
    """The 12 hex characters docker uses as a layer's id in progress output."""
    return digest.split(":", 1)[-1][:12]


class Throttle:
    """Decides when a transfer is worth a new progress message (every 1% or 512 KiB, and at end)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.step = max(512 * 1024, total // 100)
        self.next = 0
        self.last = -1

    def due(self, current: int) -> bool:
        if current == self.last:  # e.g. the end, reported twice: one line is enough
            return False
        if current >= self.next or current >= self.total:
            self.next = current + self.step
            self.last = current
            return True
        return False
