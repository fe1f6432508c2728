"""Volume events of a container's start and exit, and inspect's Mounts of a stopped container."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

Engine = Any  # the fixture's type lives in this folder's conftest.py

pytestmark = pytest.mark.root


def test_volume_mount_unmount_events_and_stopped_inspect(engine: Engine) -> None:
    t0 = int(time.time())
    name = f"evvol{t0}"
    cp = engine.docker("run", "--name", name, "-v", f"{name}:/data", "busybox", "sh", "-c", "echo x > /data/f")
    try:
        assert cp.returncode == 0, cp.stderr
        t1 = int(time.time()) + 1
        ev = engine.docker("events", "--since", str(t0 - 1), "--until", str(t1),
                           "--filter", "type=volume", "--format", "{{json .}}")
        assert ev.returncode == 0, ev.stderr
        events = [json.loads(line) for line in ev.stdout.decode().splitlines() if line]
        actions = [(e["Action"], e["Actor"]["ID"]) for e in events]
        assert ("mount", name) in actions and ("unmount", name) in actions, actions
        mount = next(e for e in events if e["Action"] == "mount")
        assert mount["Actor"]["Attributes"]["destination"] == "/data"
        # the container has exited: the volume is not mounted, its Source still shows
        insp = json.loads(engine.docker("inspect", name).stdout)[0]
        (m,) = insp["Mounts"]
        assert m["Name"] == name and m["Source"].endswith(f"/{name}/_data"), m
    finally:
        engine.docker("rm", "-f", name)
        engine.docker("volume", "rm", name)
