"""Docker's JSON-message stream display (pull, push, load, build's JSON lines).

On a terminal each layer id owns a line, redrawn in place (cursor up/down, clear line) with
docker's bar ``[=====>     ]  1.2MB/3.4MB``; elsewhere progress updates are dropped and
status lines printed plainly, as docker does (byte for byte what docker CLI 28's jsonmessage
writes for the same stream). Returns 1 at an ``error`` message, which ends the display.
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
    for raw in resp:
        if not raw.strip():
            continue
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if msg.get("error"):  # the end of the stream for docker's CLI: nothing after it is shown
            stream.flush()
            import sys
            sys.stderr.write(msg["error"].rstrip("\n") + "\n")
            return 1
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
        # jsonmessage.Display: a progress message on a terminal clears its line and ends in
        # "\r" (the cursor stays on it); elsewhere a drawn bar is not printed at all.
        endl = ""
        if tty and not msg.get("stream") and detail is not None:
            stream.write("\x1b[2K\r")
            endl = "\r"
        elif detail is not None and bar(detail, width):
            continue
        prefix = f"{mid}: " if mid else ""
        if detail is not None and tty:
            stream.write(f"{prefix}{status} {bar(detail, width)}{endl}")
        elif msg.get("progress"):
            stream.write(f"{prefix}{status} {msg['progress']}{endl}")
        elif msg.get("stream"):
            stream.write(f"{prefix}{msg['stream']}{endl}")
        else:
            stream.write(f"{prefix}{status}{endl}\n")
        if mid and tty and diff:
            stream.write(f"\x1b[{diff}B")
        stream.flush()
    return 0
