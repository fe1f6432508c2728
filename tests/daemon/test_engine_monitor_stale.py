"""A killed monitor's socket held open by a forked child (a container's init waiting for its
start) answers nobody: the daemon must see the listener is gone instead of hanging on a ping."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from dockyard.daemon.config import DaemonConfig
from dockyard.daemon.main import _build_left_overs
from dockyard.daemon.monitor_client import _listener_dead
from dockyard.snapshots.storage import Info, Kind


def test_listener_dead_tells_a_live_listener_from_a_dead_one(tmp_path: Path) -> None:
    path = str(tmp_path / "m.sock")
    assert not _listener_dead(path)  # nothing there: not "dead", just absent
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the "monitor": listen, fork a child that keeps the socket, wait to be killed
        try:
            s = socket.socket(socket.AF_UNIX)
            s.bind(path)
            s.listen(8)
            child = os.fork()
            if child == 0:
                os.close(w)
                os.read(r, 1)  # holds the listening socket until the test closes the pipe
                os._exit(0)
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(r)
    try:
        for _ in range(200):
            if os.path.exists(path):
                break
            time.sleep(0.01)
        time.sleep(0.05)
        assert not _listener_dead(path)
        os.kill(pid, signal.SIGKILL)
        for _ in range(500):  # not reaped yet: a zombie, as a killed monitor is until init reaps it
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.01)
        assert _listener_dead(path)
        os.waitpid(pid, 0)
        assert _listener_dead(path)  # the child still holds the socket; its maker is gone
    finally:
        os.close(w)  # the grandchild reads EOF and exits
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


class _Snaps:
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def list(self) -> list[Info]:
        return [Info(k, i, None, Kind.ACTIVE, 0.0) for i, k in enumerate(self.keys)]


class _Images:
    def __init__(self, keys: list[str]) -> None:
        self.snapshots = _Snaps(keys)


def test_build_left_overs_are_seen_without_the_builder(tmp_path: Path) -> None:
    cfg = DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "exec")
    assert not _build_left_overs(cfg, _Images(["a" * 64]))
    (cfg.exec_root / "build" / "#seccomp").mkdir(parents=True)  # a normal build's cache stays
    assert not _build_left_overs(cfg, _Images([]))
    assert _build_left_overs(cfg, _Images(["build-1234"]))
    (cfg.data_root / "builder" / "tmp" / "build-x").mkdir(parents=True)
    assert _build_left_overs(cfg, _Images([]))
