"""The event bus behind ``GET /events``: a bounded history (for ``since``) and live subscribers.

Events are Docker's wire shape (``Type``, ``Action``, ``Actor{ID, Attributes}``, ``scope``,
``time``, ``timeNano``, plus the legacy ``status``/``id``/``from`` for containers).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

HISTORY = 1024


class EventBus:
    def __init__(self) -> None:
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def emit(self, kind: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> None:
        now = time.time_ns()
        ev: dict[str, Any] = {"Type": kind, "Action": action,
                              "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
                              "scope": "local", "time": now // 1_000_000_000, "timeNano": now}
        if kind == "container":
            ev.update(status=action, id=actor_id, **({"from": attributes["image"]}
                                                      if attributes and "image" in attributes else {}))
        self.history.append(ev)
        for q in list(self.subscribers):
            q.put_nowait(ev)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(q)


def matches(ev: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Docker's event filters: each key must match one of its values (keys are ANDed)."""
    actor = ev.get("Actor", {})
    attrs = actor.get("Attributes", {})
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = ev.get("Type") in values
        elif key == "event":
            ok = ev.get("Action") in values or ev.get("Action", "").split(":")[0] in values
        elif key in ("container", "image", "network", "volume"):
            ok = (ev.get("Type") == key or key == "image" and ev.get("Type") == "container") and (
                actor.get("ID") in values or attrs.get("name") in values
                or (key == "image" and attrs.get("image") in values)
                or any(actor.get("ID", "").startswith(v) for v in values))
        elif key == "label":
            ok = all(_label_match(attrs, v) for v in values)
        elif key == "scope":
            ok = ev.get("scope") in values
        elif key == "daemon":
            ok = True
        else:
            ok = True
        if not ok:
            return False
    return True


def _label_match(attrs: dict[str, str], expr: str) -> bool:
    k, sep, v = expr.partition("=")
    return k in attrs and (not sep or attrs[k] == v)
