"""A monitor that is alive but stuck (here: SIGSTOPped) fails the daemon's requests after the
op's reply timeout with ``MonitorTimeout`` (503, "context deadline exceeded") instead of hanging
them; the daemon does not start a second monitor beside it; once continued, it answers again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.api.status import status_of
from dockyard.daemon.monitor_client import REPLY_TIMEOUTS, MonitorClient, MonitorTimeout


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[tuple[MonitorClient, int]]:
    """A real monitor (``python -m dockyard.shim.monitor``) on a private exec root; the
    finalizer continues it (it may be stopped) and stops it, by the pid it answered."""
    client = MonitorClient(tmp_path)
    asyncio.run(client.connect())
    pid = int(asyncio.run(client.request({"op": "ping"}))["pid"])
    try:
        yield client, pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)  # nothing supervised: SIGTERM ends its loop
        for _ in range(500):
            if not _alive(pid):
                break
            time.sleep(0.01)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_stopped_monitor_times_out_requests_and_answers_once_continued(
        monitor: tuple[MonitorClient, int]) -> None:
    client, pid = monitor
    client.timeouts.update(kill=0.3, list=0.3, ping=0.3)
    os.kill(pid, signal.SIGSTOP)

    with pytest.raises(MonitorTimeout) as exc:
        asyncio.run(client.request({"op": "kill", "id": "nosuch", "signal": 9}))
    assert isinstance(exc.value, errors.Unavailable)
    assert status_of(exc.value) == 503
    msg = str(exc.value)
    assert "'kill'" in msg and "0.3s" in msg and "context deadline exceeded" in msg

    with pytest.raises(MonitorTimeout):
        asyncio.run(client.request({"op": "list"}))

    # connect() sees a monitor that accepts but does not answer: it must neither start a
    # second monitor (which would kill the first one's containers as orphans) nor hang
    with pytest.raises(MonitorTimeout):
        asyncio.run(client.connect())

    os.kill(pid, signal.SIGCONT)
    # the same monitor answers again (the requests that timed out did not break it)
    assert int(asyncio.run(client.request({"op": "ping"}))["pid"]) == pid
    with pytest.raises(errors.NotFound):
        asyncio.run(client.request({"op": "kill", "id": "nosuch", "signal": 9}))
    asyncio.run(client.connect())  # a live, answering monitor of our version: kept
    assert int(asyncio.run(client.request({"op": "ping"}))["pid"]) == pid


def test_only_the_reply_is_timed_not_the_stream_after_it(monitor: tuple[MonitorClient, int]) -> None:
    """The events stream stays open past the reply timeout (it lasts as long as the daemon)."""
    client, _ = monitor
    client.timeouts["events"] = 0.2

    async def follow() -> bool:
        reader, writer, reply = await client.open_stream({"op": "events"})
        try:
            assert reply["ok"]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.6):  # three reply timeouts: nothing comes, no error
                    await reader.readline()
                return False
            return True
        finally:
            writer.close()

    assert asyncio.run(follow())


def test_every_op_of_the_monitor_has_a_reply_timeout() -> None:
    from dockyard.shim.monitor import Monitor

    ops = {n[3:] for n in dir(Monitor) if n.startswith("op_")}
    assert ops == set(REPLY_TIMEOUTS)
    # the ops that run the runtime or wait for a process get minutes, the others seconds
    assert all(REPLY_TIMEOUTS[o] >= 60 for o in ("create", "start", "delete", "exec", "runtime"))
    assert all(REPLY_TIMEOUTS[o] <= 10 for o in ("ping", "kill", "list", "resize", "forget"))
