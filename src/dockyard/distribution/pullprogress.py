"""Per-layer "Extracting" / "Pull complete" lines of a pull, in dockerd's order.

A pull extracts each layer while it downloads (pull.py): the extractor thread reads the
growing ingest file, so extraction and download progress of one layer happen at once.
dockerd shows them one after the other, per layer (moby distribution/xfer)::

    <id>: Pulling fs layer
    <id>: Downloading  [==>   ]  1.2MB/9MB      (download side: pull._download)
    <id>: Verifying Checksum
    <id>: Download complete
    <id>: Extracting   [=====>]  9MB/9MB        (this module, once the download is complete
    <id>: Pull complete                           and the extractor has started on the layer)

so :class:`ExtractionReport` holds the extractor's progress back until the layer's
"Download complete" was sent, then sends where the extractor is ("Extracting" with the
compressed bytes it has read, as dockerd counts them), follows it, and sends "Pull complete"
right after that layer's snapshot was committed. Layers finish in manifest order (each is
unpacked on the one below), so the lines come per layer, bottom first, as dockerd's do.

Threads: :meth:`extracting` and :meth:`extracted` are called from the extractor thread and
only hand the news to the event loop (``call_soon_threadsafe``); :meth:`downloaded` and
:meth:`run` belong to the loop. :meth:`run` ends when every reported layer is complete;
a failed pull cancels it (run_all).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from dockyard.distribution import progress as pg
from dockyard.oci.descriptor import Descriptor


class ExtractionReport:
    def __init__(self, loop: asyncio.AbstractEventLoop, layers: Iterable[Descriptor], emit: pg.Emit) -> None:
        self._loop = loop
        self._emit = emit
        self._layers = {x.digest: x for x in layers}  # the layers this pull downloads, in order
        self._read = dict.fromkeys(self._layers, 0)  # compressed bytes the extractor has read
        self._extracted: set[str] = set()
        self._downloaded: set[str] = set()
        self._changed = asyncio.Event()

    # -- extractor thread -------------------------------------------------------------------

    def counter(self, digest: str) -> Callable[[int], None] | None:
        """A callback for the extractor's reader of ``digest`` (its position after each read),
        throttled like a transfer; None for a layer this pull does not report."""
        layer = self._layers.get(digest)
        if layer is None:
            return None
        throttle = pg.Throttle(layer.size)

        def on_read(pos: int) -> None:
            if throttle.due(pos):
                self._loop.call_soon_threadsafe(self._set_read, digest, pos)

        return on_read

    def extracted(self, digest: str) -> None:
        """``digest``'s snapshot is committed (or was there already)."""
        if digest in self._layers:
            self._loop.call_soon_threadsafe(self._set_extracted, digest)

    # -- event loop --------------------------------------------------------------------------

    def downloaded(self, digest: str) -> None:
        """``digest``'s "Download complete" was sent: its extraction lines may follow."""
        self._downloaded.add(digest)
        self._changed.set()

    def _set_read(self, digest: str, pos: int) -> None:
        self._read[digest] = max(self._read[digest], pos)
        self._changed.set()

    def _set_extracted(self, digest: str) -> None:
        self._extracted.add(digest)
        self._changed.set()

    async def run(self) -> None:
        for digest, layer in self._layers.items():
            ident = pg.short_id(digest)
            sent = 0
            while True:
                # No await between reading the state and clearing the event: the loop's
                # callbacks cannot slip in between unseen.
                self._changed.clear()
                if digest in self._downloaded:
                    done = digest in self._extracted
                    pos = layer.size if done else min(self._read[digest], layer.size)
                    if pos > sent:
                        sent = pos
                        await self._emit(pg.transfer("Extracting", ident, pos, layer.size))
                    if done:
                        await self._emit(pg.layer("Pull complete", ident))
                        break
                await self._changed.wait()  # at once if news came while a line was sent
