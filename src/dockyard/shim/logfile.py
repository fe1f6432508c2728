"""Docker's ``json-file`` log driver: one JSON object per line, rotated by size.

Layout (``path`` is ``<data-root>/containers/<id>/<id>-json.log``)::

    <id>-json.log       current file, appended to
    <id>-json.log.1     previous (``max_file`` - 1 of them kept, oldest has the highest number)

Each line: ``{"log": "text\\n", "stream": "stdout"|"stderr", "time": "RFC3339Nano"}``. Output is
split at newlines as Docker does; a partial line is flushed as is when the stream ends.
"""

from __future__ import annotations

import json
import os
import time


def rfc3339_nano(ts_ns: int) -> str:
    secs, nanos = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


class JsonLog:
    """Appends container output to a json-file log; ``max_size`` 0 means no rotation."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1) -> None:
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._partial: dict[str, bytes] = {}

    def write(self, stream: str, data: bytes) -> None:
        data = self._partial.pop(stream, b"") + data
        lines = data.split(b"\n")
        rest = lines.pop()
        if rest:
            self._partial[stream] = rest
        if lines:
            now = rfc3339_nano(time.time_ns())
            entries = [self._entry(line + b"\n", stream, now) for line in lines]
            if not self.max_size:
                self._append(b"".join(entries))
                return
            # with rotation, pack entries into writes that keep each file under max_size
            batch: list[bytes] = []
            size = self._size
            for e in entries:
                if batch and size + len(e) > self.max_size:
                    self._append(b"".join(batch))
                    batch, size = [], self._size
                batch.append(e)
                size += len(e)
            if batch:
                self._append(b"".join(batch))

    def flush_partial(self) -> None:
        now = rfc3339_nano(time.time_ns())
        for stream, rest in list(self._partial.items()):
            self._append(self._entry(rest, stream, now))
        self._partial.clear()

    def close(self) -> None:
        self.flush_partial()
        os.close(self._fd)

    @staticmethod
    def _entry(text: bytes, stream: str, now: str) -> bytes:
        return (json.dumps({"log": text.decode("utf-8", "replace"), "stream": stream, "time": now},
                           separators=(",", ":")) + "\n").encode()

    def _append(self, blob: bytes) -> None:
        if self.max_size and self._size + len(blob) > self.max_size and self._size > 0:
            self._rotate()
        os.write(self._fd, blob)
        self._size += len(blob)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_file > 1:
            for n in range(self.max_file - 1, 0, -1):
                src = self.path if n == 1 else f"{self.path}.{n - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{n}")
        else:
            os.unlink(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = 0


def replay(path: str, want: set[str]) -> list[tuple[str, bytes]]:
    """The entries of a json-file log (rotated files oldest first) as ``(stream, data)``.

    Read synchronously by the single-threaded monitor between two writes of its own, so the
    result and the live output that follows neither overlap nor leave a gap (``attach?logs=1``).
    """
    rotated = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    out: list[tuple[str, bytes]] = []
    for f in [*reversed(rotated), path]:
        try:
            fh = open(f, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            continue
        with fh:
            for raw in fh:
                try:
                    d = json.loads(raw)
                    stream, data = d["stream"], d["log"].encode()
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
                if stream in want:
                    out.append((stream, data))
    return out

