"""Terminal plumbing for run/exec/attach: copy a hijacked socket to stdout/stderr, stdin to it."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import termios
import threading
import tty as ttymod
from collections.abc import Iterator
from typing import Any

from dockyard.client.api import demux


def _stdin_pump(sock: Any) -> None:
    fd = sys.stdin.fileno()
    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            sock.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)  # stdin EOF: the container sees it too


@contextlib.contextmanager
def raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled or not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        ttymod.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def copy_streams(sock: Any, *, tty: bool, stdin: bool) -> None:
    """Until the daemon closes the stream."""
    if stdin:
        threading.Thread(target=_stdin_pump, args=(sock,), daemon=True).start()
    out = sys.stdout.buffer
    err = sys.stderr.buffer
    if tty:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out.write(chunk)
            out.flush()
        return
    for stream, payload in demux(sock):
        target = err if stream == 2 else out
        target.write(payload)
        target.flush()
