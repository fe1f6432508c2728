"""Gaps found by the issue-3 audit, checked with the real docker CLI (and aiohttp for the
WebSocket attach, which the CLI doesn't use): image list before/since/until filters,
container prune until, restart-policy state while restarting, attach over a WebSocket."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import aiohttp
import pytest

pytestmark = pytest.mark.root


def out(cp: subprocess.CompletedProcess[bytes]) -> str:
    assert cp.returncode == 0, cp.stderr.decode()
    return cp.stdout.decode()


def test_image_list_time_filters(engine: Any) -> None:
    time.sleep(1.1)  # image Created has a resolution of one second
    try:
        out(engine.docker("run", "--name", "audit-src", "busybox", "touch", "/later"))
        out(engine.docker("commit", "audit-src", "audit-later:1"))
        out(engine.docker("tag", "busybox", "audit-same:1"))

        def listed(flt: str) -> set[str]:
            return set(out(engine.docker("images", "--filter", flt, "--format", "{{.Repository}}")).split())

        assert "busybox" not in listed("before=busybox") and "audit-later" not in listed("before=busybox")
        assert listed("before=audit-later:1") >= {"busybox", "audit-same"}
        since = listed("since=busybox")
        assert "audit-later" in since and "busybox" not in since and "audit-same" not in since
        assert listed("until=2000-01-01T00:00:00Z") == set()
        assert "busybox" in listed("until=0s")
        bad = engine.docker("images", "--filter", "until=yesterday")
        assert bad.returncode != 0 and b"invalid filter 'until=yesterday'" in bad.stderr
    finally:
        engine.docker("rm", "-f", "audit-src")
        engine.docker("rmi", "audit-later:1", "audit-same:1")


def test_container_prune_until(engine: Any) -> None:
    cid = out(engine.docker("create", "--name", "audit-prune", "busybox", "true")).strip()
    try:
        out(engine.docker("container", "prune", "-f", "--filter", "until=1h"))
        assert engine.docker("inspect", cid).returncode == 0  # younger than an hour: kept
        time.sleep(1.1)
        assert cid in out(engine.docker("container", "prune", "-f", "--filter", "until=1s"))
        assert engine.docker("inspect", cid).returncode != 0
    finally:
        engine.docker("rm", "-f", "audit-prune")


def test_restarting_never_shows_exited_in_between(engine: Any) -> None:
    """Between the runs of a restart policy a container is "restarting" (as dockerd), never
    "exited" with the new count: that transient made test_restart_policy_and_health flaky."""
    out(engine.docker("run", "-d", "--name", "audit-rp", "--restart", "on-failure:3", "busybox",
                      "sh", "-c", "exit 2"))
    try:
        seen = set()
        deadline = time.monotonic() + 60
        state = ""
        while state != "3 exited 2" and time.monotonic() < deadline:
            state = out(engine.docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
                                      "audit-rp")).strip()
            seen.add(state)
        assert state == "3 exited 2"
        assert {s for s in seen if "exited" in s} == {"3 exited 2"}, seen
    finally:
        engine.docker("rm", "-f", "audit-rp")


@pytest.mark.parametrize(("version", "kind"), [("1.50", aiohttp.WSMsgType.BINARY), ("1.27", aiohttp.WSMsgType.TEXT)])
def test_attach_over_websocket(engine: Any, version: str, kind: aiohttp.WSMsgType) -> None:
    """Raw output, binary frames from API 1.28 on and text frames before (dockerd's rule)."""
    out(engine.docker("run", "-d", "-i", "--name", "audit-ws", "busybox", "sh", "-c",
                      "echo hello; while read l; do echo got-$l; echo err-$l >&2; done"))

    kinds: set[aiohttp.WSMsgType] = set()

    async def receive(ws: aiohttp.ClientWebSocketResponse) -> bytes:
        msg = await asyncio.wait_for(ws.receive(), 20)
        kinds.add(msg.type)
        return msg.data.encode() if isinstance(msg.data, str) else msg.data

    async def session() -> list[bytes]:
        got: list[bytes] = []
        conn = aiohttp.UnixConnector(path=engine.sock)
        async with aiohttp.ClientSession(connector=conn) as s, s.ws_connect(
                f"http://d/v{version}/containers/audit-ws/attach/ws?logs=1&stream=1&stdin=1&stdout=1&stderr=1") as ws:
            while b"hello\n" not in b"".join(got):
                got.append(await receive(ws))
            await ws.send_str("abc\n")
            while not all(x in b"".join(got) for x in (b"got-abc\n", b"err-abc\n")):
                got.append(await receive(ws))
        return got

    try:
        data = b"".join(asyncio.run(session()))
        assert data.startswith(b"hello\n") and b"\x01\x00\x00\x00" not in data  # raw, not multiplexed
        assert kinds == {kind}
        assert b"got-abc\n" in out(engine.docker("logs", "audit-ws")).encode()
    finally:
        engine.docker("rm", "-f", "audit-ws")


def test_sizes_are_computed_when_asked(engine: Any) -> None:
    out(engine.docker("run", "--name", "audit-size", "busybox", "dd", "if=/dev/zero", "of=/big", "bs=1k",
                      "count=300"))
    try:
        rw, root = map(int, out(engine.docker("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}",
                                              "audit-size")).split())
        assert rw >= 300 * 1024 and root > rw
        assert "(virtual " in out(engine.docker("ps", "-as", "--filter", "name=audit-size", "--format", "{{.Size}}"))
        pruned = out(engine.docker("container", "prune", "-f", "--filter", "label!=audit-keep"))
        assert "Total reclaimed space: 0B" not in pruned
    finally:
        engine.docker("rm", "-f", "audit-size")


@pytest.mark.parametrize("opts,msg", [
    (["--cpuset-cpus", "999"], "Requested CPUs are not available - requested 999, available: "),
    (["--cpuset-cpus", "x"], "Invalid value x for cpuset cpus"),
    (["--stop-signal", "BOGUS"], "Invalid signal: BOGUS"),
    (["-w", "relative"], "the working directory 'relative' is invalid, it needs to be an absolute path"),
])
def test_create_refuses_what_dockerd_refuses(engine: Any, opts: list[str], msg: str) -> None:
    cp = engine.docker("create", "--name", "audit-bad", *opts, "busybox", "true")
    try:
        assert cp.returncode != 0 and msg in cp.stderr.decode()
        assert engine.docker("inspect", "audit-bad").returncode != 0
    finally:
        engine.docker("rm", "-f", "audit-bad")


def test_restart_policy_survives_a_daemon_restart_in_its_back_off(engine: Any) -> None:
    """A daemon killed while a policy waits out its back-off restarts the container when it
    comes back, without recording an exit (255) that never happened; a user's start resets
    RestartCount as dockerd's does."""
    out(engine.docker("run", "-d", "--name", "audit-bo", "--restart", "always", "busybox",
                      "sh", "-c", "sleep 0.3; exit 3"))
    try:
        fmt = "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"
        deadline = time.monotonic() + 60
        state = ["0", "", ""]
        while not (int(state[0]) >= 3 and state[1] == "restarting") and time.monotonic() < deadline:
            state = out(engine.docker("inspect", "-f", fmt, "audit-bo")).split()
        assert state[1] == "restarting" and state[2] == "3"
        engine.kill9_and_restart()
        seen = set()
        count = int(state[0])
        while int(state[0]) <= count + 1 and time.monotonic() < deadline:
            state = out(engine.docker("inspect", "-f", fmt, "audit-bo")).split()
            seen.add(state[2])
        # 137: the daemon died between the runtime's create and start of a restart (killed then)
        assert int(state[0]) > count + 1 and seen <= {"0", "3", "137"}, (state, seen)
        out(engine.docker("stop", "-t", "0", "audit-bo"))
        out(engine.docker("start", "audit-bo"))
        assert int(out(engine.docker("inspect", "-f", "{{.RestartCount}}", "audit-bo"))) <= 1
    finally:
        engine.docker("rm", "-f", "audit-bo")


def test_update_restart_policy_of_an_autoremove_container(engine: Any) -> None:
    out(engine.docker("run", "-d", "--rm", "--name", "audit-rmup", "busybox", "sleep", "60"))
    try:
        cp = engine.docker("update", "--restart", "always", "audit-rmup")
        assert cp.returncode != 0
        assert b"Restart policy cannot be updated because AutoRemove is enabled for the container" in cp.stderr
    finally:
        engine.docker("rm", "-f", "audit-rmup")
