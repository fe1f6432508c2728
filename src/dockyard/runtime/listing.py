"""``list``: every container under ``root`` with its public state."""

from __future__ import annotations

from dockyard.errors import NotFound
from dockyard.runtime import state


def list_containers(root: str) -> list[dict]:
    """Public OCI states (see ``state.public``), sorted by id; vanished ones are skipped."""
    out = []
    for cid in state.ids(root):
        try:
            rec = state.load(root, cid)
        except (NotFound, ValueError):
            continue
        out.append(state.public(root, rec))
    return out


def table(states: list[dict], owner_of: dict[str, str] | None = None) -> str:
    """runc's table: Go tabwriter with minwidth 12, padding 3."""
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    for s in states:
        rows.append([s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                     (owner_of or {}).get(s["id"], s.get("owner", ""))])
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(5)]
    return "".join("".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + r[5] + "\n" for r in rows)
