"""Private ``dockyardd`` processes: ONE copy of their start and stop for the integration tests,
the benchmarks (``sys.path`` += tests/) and scripts/crashcheck.py.

Everything of one daemon lives under a temp directory the caller made::

    root/
      d.sock        the Engine API socket
      data/         --data-root
      exec/         --exec-root (monitor.sock and the monitor's records, bundles)
      daemon.log    the daemon's stdout and stderr (appended: a restarted daemon adds to it)

``spawn(root, *flags, env=None)`` starts ``dockyardd`` (the one beside ``sys.executable``;
``env`` is added to ``os.environ``, e.g. a PYTHONPATH that runs another revision) and returns
once ``GET /_ping`` answers 200; if it exits or does not answer within ``timeout`` seconds it is
killed and ``RuntimeError`` carries the log's tail (and py-spy's dump of where it hung, if
py-spy is installed). ``stop(root, proc)`` force-removes every container, stops the daemon
(SIGTERM, SIGKILL after 20 s), asks its monitor to shut down (monitors outlive daemons by
design; this one must not outlive its test or benchmark), lazily unmounts whatever is still
mounted below ``root`` and deletes ``root``; it never raises, so finalizers can call it.
Processes are only ever signalled by the PID this module started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent


def sock_of(root: Path) -> str:
    return str(root / "d.sock")


def docker_env(root: Path) -> dict[str, str]:
    """``os.environ`` with ``DOCKER_HOST`` naming the daemon under ``root``."""
    return {**os.environ, "DOCKER_HOST": f"unix://{sock_of(root)}"}


def ping(sock: str) -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(1)
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


def spawn(root: Path, *flags: str, env: dict[str, str] | None = None,
          timeout: float = 60) -> subprocess.Popen[bytes]:
    sock = sock_of(root)
    with open(root / "daemon.log", "ab") as log:
        proc = subprocess.Popen([str(VENV_BIN / "dockyardd"), "--host", f"unix://{sock}", "--data-root",
                                 str(root / "data"), "--exec-root", str(root / "exec"), *flags],
                                stdout=log, stderr=log, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(sock):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = (root / "daemon.log").read_text(errors="replace")[-3000:]
    spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if proc.poll() is None and os.path.exists(spy):  # where it hangs
        tail += subprocess.run([spy, "dump", "--pid", str(proc.pid)], capture_output=True, text=True).stdout
    proc.kill()
    proc.wait()
    raise RuntimeError(f"dockyardd did not start (status {proc.returncode}):\n{tail}")


def monitor_request(root: Path, msg: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    """One request line to the monitor of the daemon under ``root``; its reply line."""
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(timeout)
        s.connect(str(root / "exec" / "monitor.sock"))
        s.sendall(json.dumps(msg).encode() + b"\n")
        return dict(json.loads(s.makefile("rb").readline()))
    finally:
        s.close()


def stop_daemon(proc: subprocess.Popen[bytes], wait: float = 20) -> None:
    """Stop a process this caller started (a daemon, a reference dockerd, a registry): SIGTERM,
    then SIGKILL after ``wait`` seconds. A dockyardd's monitor is left running (see ``stop``)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop(root: Path, proc: subprocess.Popen[bytes] | None, *, rmtree: bool = True) -> None:
    """Remove every container, stop the daemon and its monitor, unmount and delete ``root``."""
    env = docker_env(root)
    with contextlib.suppress(Exception):
        if proc is not None and proc.poll() is None:
            ids = subprocess.run(["docker", "ps", "-aq"], env=env, capture_output=True, text=True,
                                 timeout=30).stdout.split()
            for i in range(0, len(ids), 200):
                subprocess.run(["docker", "rm", "-f", *ids[i:i + 200]], env=env, capture_output=True,
                               timeout=120)
    if proc is not None:
        stop_daemon(proc)
    with contextlib.suppress(Exception):
        monitor_request(root, {"op": "shutdown", "if_idle": False})
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if f" {root}/" in line]
    for m in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", m], check=False)
    if rmtree:
        shutil.rmtree(root, ignore_errors=True)
