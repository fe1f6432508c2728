"""ExtractionReport: a pull's per-layer "Extracting"/"Pull complete" lines, in dockerd's order.

The extractor side is driven from a real thread (as pull.py's extractor runs), the download
side from the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest

from dockyard.distribution import progress as pg
from dockyard.distribution.pullprogress import ExtractionReport
from dockyard.oci.descriptor import Descriptor

L1 = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + "1" * 64, 10 << 20)
L2 = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + "2" * 64, 4 << 20)
ID1, ID2 = pg.short_id(L1.digest), pg.short_id(L2.digest)


def lines(msgs: list[pg.Message]) -> list[tuple[str, str]]:
    return [(m["id"], m["status"]) for m in msgs]


async def in_thread(fn: Callable[[], None]) -> None:
    t = threading.Thread(target=fn)
    t.start()
    await asyncio.get_running_loop().run_in_executor(None, t.join)


async def settle() -> None:
    """Let call_soon_threadsafe callbacks and the reporter run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def with_report(layers: list[Descriptor],
                      body: Callable[[ExtractionReport, list[pg.Message]], Awaitable[None]]) -> list[pg.Message]:
    out: list[pg.Message] = []

    async def emit(m: pg.Message) -> None:
        out.append(m)

    report = ExtractionReport(asyncio.get_running_loop(), layers, emit)
    task = asyncio.create_task(report.run())
    await body(report, out)
    await asyncio.wait_for(task, 10)
    return out


def test_extraction_waits_for_download_complete_then_follows_it() -> None:
    async def body(report: ExtractionReport, out: list[pg.Message]) -> None:
        on_read = report.counter(L1.digest)
        assert on_read is not None
        await in_thread(lambda: on_read(3 << 20))  # extracting while downloading: held back
        await settle()
        assert out == []
        report.downloaded(L1.digest)
        await settle()
        assert out == [pg.transfer("Extracting", ID1, 3 << 20, L1.size)]
        await in_thread(lambda: on_read(8 << 20))
        await settle()
        assert out[-1] == pg.transfer("Extracting", ID1, 8 << 20, L1.size)
        await in_thread(lambda: report.extracted(L1.digest))

    out = asyncio.run(with_report([L1], body))
    assert out[-2:] == [pg.transfer("Extracting", ID1, L1.size, L1.size), pg.layer("Pull complete", ID1)]


def test_layers_complete_in_order_whatever_order_downloads_end() -> None:
    async def body(report: ExtractionReport, out: list[pg.Message]) -> None:
        report.downloaded(L2.digest)  # the upper layer's download ends first
        await settle()
        assert out == []  # its extraction has not started: nothing to say
        report.downloaded(L1.digest)

        def extract() -> None:
            for layer in (L1, L2):
                cb = report.counter(layer.digest)
                assert cb is not None
                cb(layer.size // 2)
                report.extracted(layer.digest)

        await in_thread(extract)

    out = asyncio.run(with_report([L1, L2], body))
    assert lines(out) == [(ID1, "Extracting"), (ID1, "Pull complete"),
                          (ID2, "Extracting"), (ID2, "Pull complete")]
    assert out[-2] == pg.transfer("Extracting", ID2, L2.size, L2.size)


def test_layers_the_pull_does_not_download_are_not_reported() -> None:
    async def body(report: ExtractionReport, out: list[pg.Message]) -> None:
        assert report.counter(L1.digest) is None  # "Already exists": no Extracting lines
        report.extracted(L1.digest)
        report.downloaded(L2.digest)
        await in_thread(lambda: report.extracted(L2.digest))

    out = asyncio.run(with_report([L2], body))
    assert lines(out) == [(ID2, "Extracting"), (ID2, "Pull complete")]


def test_a_layer_listed_twice_completes_once() -> None:
    async def body(report: ExtractionReport, out: list[pg.Message]) -> None:
        report.downloaded(L1.digest)
        await in_thread(lambda: (report.extracted(L1.digest), report.extracted(L1.digest)))

    out = asyncio.run(with_report([L1, L1], body))
    assert lines(out) == [(ID1, "Extracting"), (ID1, "Pull complete")]


def test_a_failed_pull_cancels_the_reporter() -> None:
    async def main() -> None:
        async def emit(m: pg.Message) -> None:
            return None

        report = ExtractionReport(asyncio.get_running_loop(), [L1], emit)
        task = asyncio.create_task(report.run())
        await settle()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
