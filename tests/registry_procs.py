"""`dockyard registry serve` subprocesses for tests, one copy for every test folder.

``spawn(root, log, *flags, addr=...)`` starts a server (its address is ``127.0.0.1:0`` unless
given: the server prints the port it bound) and returns the process and its stripped
``... listening on http://HOST:PORT`` line; ``stop(procs)`` ends each by its PID (SIGTERM,
then SIGKILL after 10 s). Fixtures call ``stop`` at teardown, whatever the test did.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path


def spawn(root: Path, log: Path, *flags: str, addr: str = "127.0.0.1:0") -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "dockyard.registry", "serve", "--addr", addr, "--root", str(root), *flags]
    # stderr (the access log) goes to a file: an unread pipe would fill and stall the server.
    with open(log, "w") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    if "listening on" not in line:
        stop([p])
        raise AssertionError(f"registry did not start: {line} {log.read_text()}")
    return p, line.strip()


def stop(procs: Iterable[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        if p.stdout is not None:
            p.stdout.close()
