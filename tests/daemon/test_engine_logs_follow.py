"""logs.follow and filewatch.DirWatch: a follower wakes on new lines (inotify), on rotation and
on the exit event, and stops at ``until``; no polling interval is involved in any of these."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from dockyard.daemon import logs
from dockyard.daemon.filewatch import DirWatch


@pytest.fixture(autouse=True)
def no_recheck_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    # with the fallback timer out of reach, only inotify and the exit event can wake a follower:
    # a missed wake-up shows as the 30 s wait_for failing, not as a slow pass
    monkeypatch.setattr(logs, "RECHECK_SECONDS", 3600.0)



def line(text: str, t: str = "2026-01-01T00:00:00.000000001Z", stream: str = "stdout") -> bytes:
    return json.dumps({"log": text, "stream": stream, "time": t}).encode() + b"\n"


def test_dirwatch_wakes_on_write_and_times_out(tmp_path: Path) -> None:
    async def main() -> tuple[bool, bool, bool]:
        f = tmp_path / "x.log"
        f.write_bytes(b"")
        with DirWatch(str(tmp_path)) as w:
            quiet = await w.wait(0.01)
            w.changed.clear()
            asyncio.get_running_loop().call_later(0.01, lambda: f.open("ab").write(b"x"))
            woke = await w.wait(30)
            w.changed.clear()
            ev = asyncio.Event()
            ev.set()
            also = await w.wait(30, ev)
        return quiet, woke, also
    assert asyncio.run(main()) == (False, True, True)


def test_dirwatch_bad_directory_is_an_oserror(tmp_path: Path) -> None:
    async def main() -> None:
        DirWatch(str(tmp_path / "missing"))
    with pytest.raises(OSError, match="inotify_add_watch"):
        asyncio.run(main())


def _follow(path: Path, running: list[bool], exited: asyncio.Event | None = None, until: float = 0) -> object:
    return logs.follow(str(path), since=0, until=until, tail=0, streams={"stdout", "stderr"},
                       follow_=True, running=lambda: running[0], exited=exited)


def test_follow_yields_new_lines_then_stops_at_exit(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    path.write_bytes(line("old\n"))

    async def main() -> list[bytes]:
        running = [True]
        exited = asyncio.Event()
        got: list[bytes] = []

        async def writer() -> None:
            for i in range(3):
                await asyncio.sleep(0.01)
                with path.open("ab") as f:
                    f.write(line(f"new{i}\n"))
            await asyncio.sleep(0.01)
            with path.open("ab") as f:
                f.write(line("last\n"))
            running[0] = False
            exited.set()  # no file change after this: only the event can wake the follower

        task = asyncio.ensure_future(writer())
        async for e in _follow(path, running, exited):  # type: ignore[attr-defined]
            got.append(e.data)
        await task
        return got
    assert asyncio.run(asyncio.wait_for(main(), 30)) == [b"new0\n", b"new1\n", b"new2\n", b"last\n"]


def test_follow_survives_rotation(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    path.write_bytes(b"")

    async def main() -> list[bytes]:
        running = [True]
        got: list[bytes] = []

        async def writer() -> None:
            await asyncio.sleep(0.01)
            with path.open("ab") as f:
                f.write(line("before\n"))
            await asyncio.sleep(0.05)
            os.replace(path, str(path) + ".1")
            path.write_bytes(line("after\n"))
            await asyncio.sleep(0.05)
            running[0] = False
            with path.open("ab") as f:
                f.write(line("final\n"))

        task = asyncio.ensure_future(writer())
        async for e in _follow(path, running):  # type: ignore[attr-defined]
            got.append(e.data)
        await task
        return got
    assert asyncio.run(asyncio.wait_for(main(), 30)) == [b"before\n", b"after\n", b"final\n"]


def test_follow_stops_at_until(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    path.write_bytes(b"")

    async def main() -> list[bytes]:
        got: list[bytes] = []

        async def writer() -> None:
            await asyncio.sleep(0.01)
            with path.open("ab") as f:
                f.write(line("early\n", "2026-01-01T00:00:00Z") + line("late\n", "2026-01-01T01:00:00Z"))

        task = asyncio.ensure_future(writer())
        until = logs.parse_time("2026-01-01T00:30:00Z")
        async for e in _follow(path, [True], until=until):  # type: ignore[attr-defined]
            got.append(e.data)
        await task
        return got
    assert asyncio.run(asyncio.wait_for(main(), 30)) == [b"early\n"]


def test_follow_history_and_new_lines_meet_exactly(tmp_path: Path) -> None:
    # history is read through the follower's own handle: a half-written last line is completed
    # by the next write and delivered once; nothing between history and follow is lost
    path = tmp_path / "c-json.log"
    whole = line("one\n") + line("two\n")
    path.write_bytes(whole[: len(whole) - 10])

    async def main() -> list[bytes]:
        running = [True]
        got: list[bytes] = []

        async def writer() -> None:
            await asyncio.sleep(0.01)
            with path.open("ab") as f:
                f.write(whole[len(whole) - 10:] + line("three\n"))
            running[0] = False
            with path.open("ab") as f:
                f.write(b"")

        task = asyncio.ensure_future(writer())
        async for e in logs.follow(str(path), since=0, until=0, tail=-1, streams={"stdout"},
                                   follow_=True, running=lambda: running[0]):
            got.append(e.data)
        await task
        return got
    assert asyncio.run(asyncio.wait_for(main(), 30)) == [b"one\n", b"two\n", b"three\n"]
