"""Terminal plumbing for run/start -a/attach/exec: a hijacked socket to stdout/stderr, stdin to it.

``attach_and_stream``: attach (before start, so no output is lost), ask for the exit with
``wait?condition=next-exit|removed``, start, size the tty, copy until the daemon closes the
stream, then return the container's exit code. If the stream ended while the container still
runs, the user detached (the daemon saw the detach keys): exit 0, as docker does.
With a tty and ``-i`` the local terminal is raw for the duration and restored on every path;
SIGWINCH resizes the remote tty. Without a tty, SIGINT/SIGTERM are forwarded (``--sig-proxy``).
"""

from __future__ import annotations

import _socket
import contextlib
import os
import sys
import threading

from dockyard.client.api import demux

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from dockyard.cli.common import Globals


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
        sock.shutdown(_socket.SHUT_WR)  # stdin EOF: the container sees it too


@contextlib.contextmanager
def raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled or not sys.stdin.isatty():
        yield
        return
    import termios
    import tty as ttymod
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        ttymod.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


@contextlib.contextmanager
def resizing(resize: Any, enabled: bool) -> Iterator[None]:
    """Size the remote tty now and on every SIGWINCH."""
    if not enabled or not sys.stdout.isatty():
        yield
        return
    import _signal  # `signal` would import enum: a few ms on every run

    def send(*_: Any) -> None:
        size = os.get_terminal_size(sys.stdout.fileno())
        with contextlib.suppress(Exception):
            resize(size.lines, size.columns)
    send()
    old = _signal.signal(_signal.SIGWINCH, send)
    try:
        yield
    finally:
        _signal.signal(_signal.SIGWINCH, old)


@contextlib.contextmanager
def forwarding_signals(kill: Any, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    import _signal
    names = {_signal.SIGINT: "SIGINT", _signal.SIGTERM: "SIGTERM", _signal.SIGHUP: "SIGHUP",
             _signal.SIGUSR1: "SIGUSR1", _signal.SIGUSR2: "SIGUSR2"}
    olds = {}

    def fwd(signum: int, _: Any) -> None:
        with contextlib.suppress(Exception):
            kill(names[signum])
    for s in names:
        olds[s] = _signal.signal(s, fwd)
    try:
        yield
    finally:
        for s, h in olds.items():
            _signal.signal(s, h)


def copy_streams(sock: Any, *, tty: bool, stdin: bool) -> None:
    """Until the daemon closes the stream."""
    if stdin:
        threading.Thread(target=_stdin_pump, args=(sock,), daemon=True).start()
    out = sys.stdout.buffer
    errs = sys.stderr.buffer
    if tty:
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out.write(chunk)
            out.flush()
        return
    for stream, payload in demux(sock):
        target = errs if stream == 2 else out
        target.write(payload)
        target.flush()


def attach_and_stream(g: Globals, cid: str, *, tty: bool, stdin: bool, start: bool, wait_condition: str,
                      detach_keys: str | None, sig_proxy: bool) -> int:
    from dockyard import errors
    c = g.client
    query: dict[str, Any] = {"stream": True, "stdout": True, "stderr": True, "stdin": stdin}
    if detach_keys:
        query["detachKeys"] = detach_keys
    sock = c.hijack(f"/containers/{cid}/attach", query)
    waiter = c.request("POST", f"/containers/{cid}/wait", {"condition": wait_condition})
    result: dict[str, Any] = {}

    def wait_exit() -> None:
        with contextlib.suppress(Exception):
            from dockyard.client.fast import loads
            result.update(loads(waiter.read().decode() or "{}"))
    t = threading.Thread(target=wait_exit, daemon=True)
    t.start()
    if start:
        try:
            c.request("POST", f"/containers/{cid}/start").read()
        except errors.DockyardError as e:
            sock.close()
            from dockyard.cli.containers import run_error
            run_error("run", e)
            # docker's CLI picks 127/126 from the runtime's message (the API has no code for it)
            msg = str(e)
            if "executable file not found" in msg or "no such file or directory" in msg:
                return 127
            if "permission denied" in msg:
                return 126
            return 125
    with raw_terminal(tty and stdin), \
            resizing(lambda h, w: c.request("POST", f"/containers/{cid}/resize", {"h": h, "w": w}).read(), tty), \
            forwarding_signals(lambda s: c.request("POST", f"/containers/{cid}/kill", {"signal": s}).read(),
                               sig_proxy and not tty):
        copy_streams(sock, tty=tty, stdin=stdin)
    with contextlib.suppress(OSError):
        sock.close()
    if stdin:
        # the stream ended: either the process exited or the user typed the detach keys
        t.join(0.5)
        if not result:
            with contextlib.suppress(errors.DockyardError):
                if c.json("GET", f"/containers/{cid}/json")["State"].get("Running"):
                    return 0
    t.join()
    if result.get("Error") and result["Error"].get("Message"):
        from dockyard.cli.common import err
        err(result["Error"]["Message"])
    return int(result.get("StatusCode", 0))


def exec_and_stream(g: Globals, eid: str, *, tty: bool, stdin: bool) -> int:
    from dockyard import errors
    from dockyard.cli.common import daemon_error
    c = g.client
    try:
        sock = c.hijack(f"/exec/{eid}/start", None, {"Detach": False, "Tty": tty})
    except errors.DockyardError as e:
        daemon_error(e)
        return 126
    with raw_terminal(tty and stdin), \
            resizing(lambda h, w: c.request("POST", f"/exec/{eid}/resize", {"h": h, "w": w}).read(), tty):
        copy_streams(sock, tty=tty, stdin=stdin)
    with contextlib.suppress(OSError):
        sock.close()
    info = c.json("GET", f"/exec/{eid}/json")
    if info.get("Running"):  # detached with the detach keys
        return 0
    code = info.get("ExitCode")
    return int(code or 0)
