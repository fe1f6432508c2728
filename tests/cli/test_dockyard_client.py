from __future__ import annotations

import pytest

from dockyard import errors
from dockyard.cli.common import parse_size
from dockyard.client.api import _Prefixed, demux, socket_path


def test_socket_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_HOST", raising=False)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert socket_path(None) == "/run/dockyard.sock"
    assert socket_path("unix:///tmp/x.sock") == "/tmp/x.sock"
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/d.sock")
    assert socket_path(None) == "/tmp/d.sock"
    with pytest.raises(errors.InvalidArgument):
        socket_path("tcp://1.2.3.4:2375")


def test_demux_over_partial_reads() -> None:
    data = b"\x01\x00\x00\x00\x00\x00\x00\x02hi\x02\x00\x00\x00\x00\x00\x00\x03err"

    class Sock:
        def __init__(self) -> None:
            self.chunks = [data[i:i + 3] for i in range(0, len(data), 3)]

        def recv(self, n: int) -> bytes:
            return self.chunks.pop(0) if self.chunks else b""

    assert list(demux(_Prefixed(Sock(), b""))) == [(1, b"hi"), (2, b"err")]  # type: ignore[arg-type]


def test_parse_size() -> None:
    assert parse_size("64m") == 64 << 20 and parse_size("1g") == 1 << 30 and parse_size("10") == 10
