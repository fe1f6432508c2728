"""Wire protocol between dockyardd and its monitor (``dockyard.shim.monitor``).

One unix socket, ``<exec-root>/monitor.sock``. Every connection starts with ONE request line
(JSON object, ``\\n``-terminated) and gets ONE reply line (``{"ok": true, ...}`` or
``{"ok": false, "error": "...", "kind": "NotFound|Conflict|InvalidArgument|Internal"}``).

Two requests turn the connection into a stream after the reply:

- ``attach`` / ``exec``: monitor -> daemon carries output frames in Docker's multiplexed
  format ``[stream, 0, 0, 0, size:u32 BE] + payload`` (stream 1 = stdout, 2 = stderr; a tty's
  output is stream 1), then one final frame of stream ``EXIT_STREAM`` whose payload is JSON
  ``{"exit_code": N}`` once the process exited and its output was drained, then EOF.
  daemon -> monitor carries stdin as frames too: ``STDIN`` frames of data, then one
  ``STDIN_EOF`` frame when the client's stdin ended (the process's stdin is closed if it was
  opened with ``StdinOnce``). A connection closed without ``STDIN_EOF`` is a detach: the
  process keeps its stdin.
  An ``attach`` with ``"logs": true`` first replays the json-file log (and any unterminated
  line) as frames, atomically with the subscription (protocol version 3).
- ``events``: monitor -> daemon carries JSON lines, one per finished process:
  ``{"id", "kind": "init"|"exec", "container_id", "pid", "exit_code", "exited_at", "oom"}``.

Frames are the same bytes Docker clients parse, so the daemon forwards non-tty output as is.
"""

from __future__ import annotations

import json
import struct
from typing import Any

VERSION = 3  # bumped when the protocol changes; ping answers it
STDIN, STDOUT, STDERR = 0, 1, 2
STDIN_EOF = 3
EXIT_STREAM = 255
HEADER = struct.Struct(">BxxxI")


def frame(stream: int, payload: bytes) -> bytes:
    """Encode one multiplexed frame."""
    return HEADER.pack(stream, len(payload)) + payload


def parse_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Pop every complete frame off the front of ``buf`` (which keeps the incomplete rest)."""
    out: list[tuple[int, bytes]] = []
    while len(buf) >= HEADER.size:
        stream, size = HEADER.unpack_from(buf)
        end = HEADER.size + size
        if len(buf) < end:
            break
        out.append((stream, bytes(buf[HEADER.size:end])))
        del buf[:end]
    return out


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    msg = json.loads(line)
    if not isinstance(msg, dict):
        raise ValueError("a monitor message must be a JSON object")
    return msg
