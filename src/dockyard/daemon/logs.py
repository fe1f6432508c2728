"""Reading json-file logs for ``GET /containers/{id}/logs`` and ``attach?logs=1``.

Entries come from the rotated files oldest first. ``since``/``until`` are epoch seconds (float);
``tail`` keeps the last N entries. ``follow`` keeps reading the current file until the caller
says the container stopped and the file is drained.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from dockyard.daemon.filewatch import DirWatch

# how often an idle follower re-checks running() when nothing woke it (restarts, lost events)
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class LogEntry:
    stream: str  # "stdout" | "stderr"
    data: bytes
    time: str  # RFC 3339 nano

    @property
    def epoch(self) -> float:
        return parse_time(self.time)


def parse_time(ts: str) -> float:
    main, _, frac = ts.rstrip("Z").partition(".")
    secs = calendar.timegm(tuple(int(x) for x in (main[0:4], main[5:7], main[8:10], main[11:13],
                                                   main[14:16], main[17:19])) + (0, 0, 0))
    return secs + (float("0." + frac) if frac else 0.0)


def _parse_line(line: bytes) -> LogEntry | None:
    try:
        d = json.loads(line)
        return LogEntry(d["stream"], d["log"].encode(), d["time"])
    except (ValueError, KeyError, TypeError):
        return None


def files(path: str) -> list[str]:
    rotated = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


def read_entries(path: str) -> Iterator[LogEntry]:
    for f in files(path):
        with open(f, "rb") as fh:
            for line in fh:
                e = _parse_line(line)
                if e is not None:
                    yield e


def _keep(e: LogEntry, since: float, until: float, want: set[str]) -> bool:
    if e.stream not in want:
        return False
    if since or until:
        t = e.epoch
        if since and t < since:
            return False
        if until and t > until:
            return False
    return True


async def follow(path: str, *, since: float, until: float, tail: int, streams: set[str],
                 follow_: bool, running: Callable[[], bool],
                 exited: asyncio.Event | None = None) -> AsyncIterator[LogEntry]:
    """Yield entries; with ``follow_`` keep tailing while ``running()`` is true.

    A follower sleeps on an inotify watch of the log's directory (``filewatch``): it wakes when
    the monitor writes, or when ``exited`` is set, and otherwise re-checks ``running()`` every
    second (a restart or a state change that wrote nothing).
    """
    # A follower opens the current file BEFORE reading the history and reads the history's
    # last part through that same handle: a line written between "history read" and "start
    # following" is then neither lost (seek to the end) nor sent twice.
    fh = None
    if follow_:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - held across awaits, closed in finally
        except FileNotFoundError:
            return
    pending = b""

    def history() -> Iterator[LogEntry]:
        nonlocal pending
        if fh is None:
            yield from read_entries(path)
            return
        for f in files(path)[:-1]:
            with open(f, "rb") as rh:
                for raw in rh:
                    e = _parse_line(raw)
                    if e is not None:
                        yield e
        *lines, pending = fh.read().split(b"\n")
        for raw in lines:
            e = _parse_line(raw)
            if e is not None:
                yield e

    try:
        if tail >= 0:
            last: deque[LogEntry] = deque(maxlen=tail)
            for e in history():
                if _keep(e, since, until, streams):
                    last.append(e)
            for e in last:
                yield e
        else:
            for e in history():
                if _keep(e, since, until, streams):
                    yield e
    except BaseException:
        if fh is not None:
            fh.close()
        raise
    if fh is None:
        return
    watch: DirWatch | None = None
    try:
        watch = DirWatch(os.path.dirname(path) or ".")
    except OSError:
        pass  # no inotify: the timer below still drives the loop
    try:
        while True:
            if watch is not None:
                watch.changed.clear()  # before the read: a write after it still wakes us
            chunk = fh.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    e = _parse_line(line)
                    if e is not None and _keep(e, since, 0, streams):
                        if until and e.epoch > until:
                            return
                        yield e
                continue
            if not running():
                # one last read: the monitor writes the final lines before the exit is published
                chunk = fh.read()
                if chunk:
                    pending += chunk
                    continue
                return
            try:
                if os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino:  # rotated
                    fh.close()
                    fh = open(path, "rb")  # noqa: SIM115
                    continue
            except FileNotFoundError:
                return
            if watch is not None:
                await watch.wait(RECHECK_SECONDS, exited)
                if exited is not None and exited.is_set():
                    exited = None  # seen once; a restarted container must not make us spin
            else:
                await asyncio.sleep(0.05)
    finally:
        fh.close()
        if watch is not None:
            watch.close()
