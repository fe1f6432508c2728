"""Messages between the runtime and the container's init over a pair of pipes.

Frame: one tag byte, a 4-byte big-endian length, the UTF-8 payload. Tags, child → parent:
``P`` pid of the init (from the intermediate process), ``U`` please write my uid/gid maps,
``H`` please run the createRuntime hooks, ``R`` ready (set up, blocked before exec),
``E`` error (payload: the message). Parent → child: ``u`` maps written, ``h`` createRuntime hooks done (payload: the
init's host pid, for the state the container's own hooks get). EOF from the child means it exited or exec'd (pipes are close-on-exec).
"""

from __future__ import annotations

import os


def send(fd: int, tag: str, payload: str = "") -> None:
    data = payload.encode()
    os.write(fd, tag.encode() + len(data).to_bytes(4, "big") + data)


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv(fd: int) -> tuple[str, str] | None:
    """Next (tag, payload), or None at EOF."""
    head = _read_exact(fd, 5)
    if head is None:
        return None
    n = int.from_bytes(head[1:], "big")
    body = _read_exact(fd, n) if n else b""
    if body is None:
        return None
    return chr(head[0]), body.decode(errors="replace")
