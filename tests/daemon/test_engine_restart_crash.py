"""A daemon killed in the middle of a policy restart (after the runtime's create, before the
record says "running") finds, once restarted, a live init the monitor supervises for a
container whose record says "restarting". That half-made task is discarded and the restart
resumed; its SIGKILL is not an exit of the container: no "die" with exit code 137, and the exit
code that made the policy restart stays until the new start (it read 137 before)."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import daemon_procs

pytestmark = pytest.mark.root


@pytest.fixture
def daemon(busybox_rootfs: Path) -> Iterator[tuple[Path, list[subprocess.Popen[bytes]]]]:
    """A private dockyardd with busybox; the list holds it and any daemon the test restarts."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = Path(tempfile.mkdtemp(prefix="dyr-", dir="/tmp"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(daemon_procs.spawn(root))
        with tarfile.open(root / "bb.tar", "w") as tf:
            tf.add(busybox_rootfs, arcname=".")
        docker(root, "import", str(root / "bb.tar"), "busybox:latest")
        yield root, procs
    finally:
        for p in procs[:-1]:
            daemon_procs.stop_daemon(p)
        daemon_procs.stop(root, procs[-1] if procs else None)


def docker(root: Path, *args: str) -> str:
    cp = subprocess.run(["docker", *args], env=daemon_procs.docker_env(root), capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 0, f"docker {' '.join(args)}: {cp.stderr}"
    return cp.stdout.strip()


def test_killed_between_create_and_start_of_a_policy_restart(
        daemon: tuple[Path, list[subprocess.Popen[bytes]]]) -> None:
    root, procs = daemon
    cid = docker(root, "run", "-d", "--restart", "always", "--network", "none", "busybox", "sleep", "1000")
    old_pid = int(docker(root, "inspect", "-f", "{{.State.Pid}}", cid))
    assert old_pid > 0

    # Kill the daemon; its record then says what a daemon killed after the runtime's create of
    # a policy restart leaves: "restarting", the exit code that triggered it, no pid. The
    # monitor (which outlives daemons) still supervises the init it made.
    procs[-1].kill()
    procs[-1].wait()
    rec_path = root / "data" / "containers" / cid / "config.v2.json"
    rec = json.loads(rec_path.read_text())
    rec["state"].update(status="restarting", exit_code=3, pid=0)
    rec_path.write_text(json.dumps(rec))

    since = str(int(time.time()) - 1)
    procs.append(daemon_procs.spawn(root))
    for _ in range(400):
        state = json.loads(docker(root, "inspect", "-f", "{{json .State}}", cid))
        if state["Status"] == "running":
            break
        time.sleep(0.05)
    assert state["Status"] == "running", state
    assert state["Pid"] != old_pid
    assert not os.path.exists(f"/proc/{old_pid}") or b"sleep" not in Path(f"/proc/{old_pid}/cmdline").read_bytes()
    assert docker(root, "inspect", "-f", "{{.RestartCount}}", cid) == "1"
    events = docker(root, "events", "--since", since, "--until", str(int(time.time()) + 1),
                    "--filter", f"container={cid}", "--format", "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}")
    assert "die 137" not in events, events
    assert "restart" in events or "start" in events, events
