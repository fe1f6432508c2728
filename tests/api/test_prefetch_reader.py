"""PrefetchReader: the read-ahead body view ``docker load`` consumes from a worker thread.

The body is a real aiohttp StreamReader fed by the test (as the HTTP parser feeds it)."""

from __future__ import annotations

import asyncio
import os
import threading
from unittest import mock

import pytest
from aiohttp import base_protocol
from aiohttp.streams import StreamReader

from dockyard.api import streams


def _body(loop: asyncio.AbstractEventLoop) -> StreamReader:
    proto = mock.Mock(spec=base_protocol.BaseProtocol)
    proto._reading_paused = False
    return StreamReader(proto, 1 << 16, loop=loop)


def _feed_later(loop: asyncio.AbstractEventLoop, body: StreamReader, data: bytes, step: int) -> None:
    """Feed ``data`` in ``step``-byte pieces, one per loop iteration, then EOF."""
    pieces = [data[i:i + step] for i in range(0, len(data), step)]

    def next_piece() -> None:
        if pieces:
            body.feed_data(pieces.pop(0))
            loop.call_soon(next_piece)
        else:
            body.feed_eof()

    loop.call_soon(next_piece)


@pytest.mark.parametrize("sizes", [[512, 1 << 20], [7, 100_000, 3], [-1]])
def test_reads_return_exact_sizes_and_the_whole_body_in_order(sizes: list[int]) -> None:
    data = os.urandom(3 << 20)

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        body = _body(loop)
        _feed_later(loop, body, data, 100_003)  # pieces that straddle every read size

        def consume(r: streams.PrefetchReader) -> list[bytes]:
            out, i = [], 0
            while True:
                n = sizes[i % len(sizes)]
                i += 1
                b = r.read(n)
                if not b:
                    return out
                if n >= 0 and sum(map(len, out)) + n <= len(data):
                    assert len(b) == n  # short only at the very end
                out.append(b)

        # A small limit: the pump must wait for room and be woken by the reads.
        async with streams.PrefetchReader(body, limit=256 << 10) as r:
            return await loop.run_in_executor(None, consume, r)

    assert b"".join(asyncio.run(main())) == data


def test_a_body_error_reaches_the_worker() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        body = _body(loop)
        body.feed_data(b"x" * 1000)
        loop.call_soon(body.set_exception, ConnectionResetError("client went away"))
        async with streams.PrefetchReader(body) as r:
            with pytest.raises(ConnectionResetError, match="client went away"):
                await loop.run_in_executor(None, r.read, 1 << 20)

    asyncio.run(main())


def test_a_worker_still_reading_after_the_block_ends_is_released() -> None:
    """The handler leaves (cancelled: the client is gone) while the thread still reads: the
    thread gets an error instead of waiting forever for a body nobody reads any more."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        body = _body(loop)  # never fed: a stalled client
        async with streams.PrefetchReader(body) as r:
            fut = loop.run_in_executor(None, r.read, 10)
            await asyncio.sleep(0.05)
            assert not fut.done()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(fut, 10)

    asyncio.run(main())


def test_a_big_read_is_woken_once_its_bytes_are_in_not_per_http_chunk() -> None:
    """docker sends the body in 32 KiB HTTP chunks; a worker waiting for 1 MiB is woken when
    the MiB is there (or at the end), not 32 times on the way (each wake-up is a futex and a
    context switch for both threads)."""
    data = os.urandom(4 << 20)
    wakes = [0]

    class Counting(threading.Condition):
        def notify_all(self) -> None:
            wakes[0] += 1
            super().notify_all()

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        body = _body(loop)
        _feed_later(loop, body, data, 32 << 10)
        async with streams.PrefetchReader(body) as r:
            r._cv = Counting()

            def consume() -> list[bytes]:
                out = []
                while b := r.read(1 << 20):
                    out.append(b)
                return out

            return await loop.run_in_executor(None, consume)

    assert b"".join(asyncio.run(main())) == data
    assert wakes[0] <= 4 + 1  # one per MiB read at most, and the end


@pytest.mark.parametrize("sizes", [[512, 1 << 20], [7, 100_000, 3]])
def test_readinto_fills_the_callers_buffer_with_the_whole_body_in_order(sizes: list[int]) -> None:
    """readinto (what apply_layer uses: one reused buffer, no bytes object per read) gives
    the same bytes as read: full buffers, short only at the very end, then 0."""
    data = os.urandom(3 << 20)

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        body = _body(loop)
        _feed_later(loop, body, data, 100_003)

        def consume(r: streams.PrefetchReader) -> list[bytes]:
            out, i, got = [], 0, 0
            while True:
                buf = bytearray(sizes[i % len(sizes)])
                i += 1
                k = r.readinto(buf)
                if not k:
                    return out
                if got + len(buf) <= len(data):
                    assert k == len(buf)
                got += k
                out.append(bytes(buf[:k]))

        async with streams.PrefetchReader(body, limit=256 << 10) as r:
            return await loop.run_in_executor(None, consume, r)

    assert b"".join(asyncio.run(main())) == data


def test_readinto_raises_a_body_error() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        body = _body(loop)
        loop.call_soon(body.set_exception, ConnectionResetError("client went away"))
        async with streams.PrefetchReader(body) as r:
            with pytest.raises(ConnectionResetError, match="client went away"):
                await loop.run_in_executor(None, r.readinto, bytearray(1 << 20))

    asyncio.run(main())
