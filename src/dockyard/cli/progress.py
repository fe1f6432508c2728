"""Docker's JSON-message stream display (pull, push, load, build's JSON lines).

On a terminal each layer id owns a line, redrawn in place (cursor up/down, clear line) with
docker's bar ``[=====>     ]  1.2MB/3.4MB``; elsewhere progress updates are dropped and
status lines printed plainly, as docker does. Returns 1 if an ``error`` message came.
"""

from __future__ import annotations

import json

from dockyard.cli.common import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO


def bar(detail: dict[str, Any], width: int) -> str:
    cur, total = detail.get("current") or 0, detail.get("total") or 0
    if cur <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(cur):>8}"
    pct = min(int(cur / total * 100) // 2, 50)
    box = f"[{'=' * pct}>{' ' * max(50 - pct, 0)}] " if width > 110 else ""
    nums = f"{human_size(cur):>8}/{human_size(total)}" if cur <= total else f"{human_size(cur):>8}"
    return box + nums


def display(resp: Any, stream: TextIO, quiet: bool = False) -> int:
    import os
    try:
        tty = stream.isatty()
        width = os.get_terminal_size(stream.fileno()).columns if tty else 80
    except (OSError, ValueError):
        tty, width = False, 80
    ids: dict[str, int] = {}
    rc = 0
    for raw in resp:
        if not raw.strip():
            continue
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if msg.get("error"):
            stream.flush()
            import sys
            sys.stderr.write(msg["error"].rstrip("\n") + "\n")
            rc = 1
            continue
        if "aux" in msg or quiet:
            continue
        mid = msg.get("id") or ""
        status = msg.get("status") or ""
        detail = msg.get("progressDetail")
        has_progress = detail is not None or msg.get("progress")
        diff = 0
        if mid and has_progress:
            if mid not in ids:
                ids[mid] = len(ids)
                if tty:
                    stream.write("\n")
            diff = len(ids) - ids[mid]
            if tty:
                stream.write(f"\x1b[{diff}A")
        else:
            ids = {}
        if msg.get("stream") is not None:
            stream.write(msg["stream"])
        elif tty and has_progress:
            text = bar(detail or {}, width)
            stream.write(f"\x1b[2K\r{mid + ': ' if mid else ''}{status} {text}\r" if text else
                         f"\x1b[2K\r{mid + ': ' if mid else ''}{status}\r")
        elif has_progress and bar(detail or {}, width):
            pass  # non-terminal: progress updates are not printed
        else:
            stream.write(f"{mid + ': ' if mid else ''}{status}\n")
        if mid and tty and diff:
            stream.write(f"\x1b[{diff}B")
        stream.flush()
    return rc
