"""A file that one side is still writing and another side reads as it grows.

A pull extracts a layer while it downloads: the download (on the event loop) appends each
chunk to the layer's content-store ingest file and calls :meth:`Feed.advance`; the extractor
(an executor thread) reads the same file through :meth:`Feed.reader`, which blocks while it has
caught up with the download and answers end-of-file only once the download has ended
(:meth:`Feed.finish`). A failed or cancelled download calls :meth:`Feed.fail`: every reader
raises that error at once, so the extractor stops and discards its snapshot.

Lifecycle::

    feed = Feed(path)                    # path: the ingest file, already created by its writer
    download:  write+flush n bytes -> feed.advance(n) ... feed.finish() | feed.fail(exc)
    extractor: with feed.reader(on_read) as r: r.read(n) ... b"" at the end (or raises the failure)
               on_read(position) after each read: the pull's "Extracting" progress

Several readers may read one feed (a manifest that lists the same layer twice), each from
the start. The file itself belongs to the writer (committed into the store or aborted).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from dockyard.errors import Unavailable


class FeedFailed(Unavailable):
    """The download feeding a reader failed or was cancelled before the end."""


class Feed:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._written = 0
        self._done = False
        self._error: BaseException | None = None

    def advance(self, n: int) -> None:
        """``n`` more bytes are in the file (written and flushed)."""
        with self._cond:
            self._written += n
            self._cond.notify_all()

    def finish(self) -> None:
        """The download is complete: readers see end-of-file after the last byte."""
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """The download will not complete: readers raise (first error wins)."""
        with self._cond:
            if not self._done and self._error is None:
                self._error = error
            self._done = True
            self._cond.notify_all()

    def _available(self, pos: int) -> int:
        """Bytes readable at ``pos``; 0 at the end; waits while the download is behind."""
        with self._cond:
            while True:
                if self._error is not None:
                    raise FeedFailed(f"download of {self.path.name} failed: {self._error}") from None
                if self._written > pos or self._done:
                    return self._written - pos
                self._cond.wait()

    def reader(self, on_read: Callable[[int], None] | None = None) -> FeedReader:
        """A reader from the start; ``on_read(position)`` after every read that got bytes."""
        return FeedReader(self, on_read)


class FeedReader:
    """A blocking, read-only file object over a :class:`Feed` (what ``apply_layer`` reads)."""

    def __init__(self, feed: Feed, on_read: Callable[[int], None] | None = None) -> None:
        self._feed = feed
        self._on_read = on_read
        self._fd = os.open(feed.path, os.O_RDONLY | os.O_CLOEXEC)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        avail = self._feed._available(self._pos)
        if avail <= 0:
            return b""
        want = avail if n is None or n < 0 else min(n, avail)
        data = os.pread(self._fd, want, self._pos)
        if not data:  # the writer flushed what it announced: a short file is a bug, not EOF
            raise FeedFailed(f"{self._feed.path.name}: file shorter than announced")
        self._pos += len(data)
        if self._on_read is not None:
            self._on_read(self._pos)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FeedReader:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
