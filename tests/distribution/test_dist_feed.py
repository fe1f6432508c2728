"""Feed: a reader of a file that a download is still writing (distribution/feed.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dockyard.distribution.feed import Feed, FeedFailed


def _append(path: Path, data: bytes, feed: Feed) -> None:
    with open(path, "ab") as f:
        f.write(data)
    feed.advance(len(data))


def _read_all(feed: Feed, out: list[bytes], errors: list[BaseException]) -> None:
    try:
        with feed.reader() as r:
            while chunk := r.read(3):
                out.append(chunk)
    except BaseException as e:  # noqa: BLE001 - handed to the test
        errors.append(e)


def _reading(tmp_path: Path) -> tuple[Path, Feed, threading.Thread, list[bytes], list[BaseException]]:
    """An empty ingest file, its Feed, and a thread already reading it to the end."""
    p = tmp_path / "ingest"
    p.write_bytes(b"")
    feed = Feed(p)
    out: list[bytes] = []
    errors: list[BaseException] = []
    t = threading.Thread(target=_read_all, args=(feed, out, errors))
    t.start()
    return p, feed, t, out, errors


def test_reader_waits_for_the_writer_and_ends_at_finish(tmp_path: Path) -> None:
    p, feed, t, out, errors = _reading(tmp_path)
    _append(p, b"hello ", feed)
    _append(p, b"world", feed)
    t.join(0.2)
    assert t.is_alive()  # caught up, not finished: it waits instead of seeing end-of-file
    feed.finish()
    t.join(10)
    assert not t.is_alive() and errors == []
    assert b"".join(out) == b"hello world"


def test_failure_wakes_a_waiting_reader(tmp_path: Path) -> None:
    p, feed, t, out, errors = _reading(tmp_path)
    _append(p, b"abc", feed)
    feed.fail(ConnectionResetError("peer went away"))
    feed.finish()  # a later finish does not turn the failure into a clean end
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], FeedFailed)
    assert "peer went away" in str(errors[0])


def test_several_readers_each_read_from_the_start(tmp_path: Path) -> None:
    p = tmp_path / "ingest"
    p.write_bytes(b"")
    feed = Feed(p)
    _append(p, b"0123456789", feed)
    feed.finish()
    with feed.reader() as a, feed.reader() as b:
        assert a.read(4) == b"0123"
        assert b.read() == b"0123456789"
        assert a.read() == b"456789"
        assert a.read() == b"" and b.read() == b""


def test_a_file_shorter_than_announced_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "ingest"
    p.write_bytes(b"ab")
    feed = Feed(p)
    feed.advance(5)  # claims more than was flushed: a writer bug, never silent end-of-file
    feed.finish()
    with feed.reader() as r:
        assert r.read(2) == b"ab"
        with pytest.raises(FeedFailed, match="shorter than announced"):
            r.read(2)
