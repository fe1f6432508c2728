"""A small Engine API client for the ``dockyard`` CLI, over a unix socket.

No aiohttp, no ``http.client``, ``socket`` or ``json`` imports: the CLI must start fast, so the
wire work is ``client.fast`` (a bare ``_socket``, the ``_json`` C scanner). Errors come back
as the error vocabulary, chosen by HTTP status (the one place a status is mapped back),
carrying the daemon's message.

``request`` returns a ``fast.Response`` once the head is read (``read``, ``read1``, lines);
``json`` decodes a whole body; ``get_json`` is the same for a GET; ``hijack(path, body)``
returns the raw socket of an attach / exec start after ``101 UPGRADED``.
"""

from __future__ import annotations

from dockyard import errors
from dockyard.client import fast
from dockyard.client.fast import API, BY_STATUS, DEFAULT_HOST, Response, socket_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

__all__ = ["API", "DEFAULT_HOST", "Client", "Response", "demux", "socket_path"]

_BY_STATUS = BY_STATUS


class Client:
    def __init__(self, host: str | None = None) -> None:
        self.path = socket_path(host)

    def _url(self, path: str, query: dict[str, Any] | None) -> str:
        return fast.url(path, query)

    def get_json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return fast.get_json(self.path, path, query)

    def request(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
                headers: dict[str, str] | None = None) -> Response:
        hdrs = dict(headers or {})
        data: Any = None
        if body is not None:
            if isinstance(body, bytes | bytearray) or hasattr(body, "read"):
                data = body
                hdrs.setdefault("Content-Type", "application/x-tar")
            else:
                data = fast.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
        resp = fast.request(self.path, method, self._url(path, query), data, hdrs)
        if resp.status >= 400:
            raw = resp.read()
            resp.close()
            raise fast.error_of(resp.status, raw)
        return resp

    def json(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        raw = self.request(method, path, query, body).read().decode()
        return fast.loads(raw) if raw.strip() else None

    def hijack(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        s = fast.connect(self.path)
        data = fast.dumps(body).encode() if body is not None else b""
        head = (f"POST {self._url(path, query)} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
                f"Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        s.sendall(head.encode() + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                s.close()
                raise errors.Unavailable("the daemon closed the connection")
            buf += chunk
        head_b, _, rest = buf.partition(b"\r\n\r\n")
        status = int(head_b.split(b" ", 2)[1])
        if status != 101:
            s.close()
            raise fast.error_of(status, rest)
        if rest:
            return _Prefixed(s, rest)
        return s

    # conveniences kept for callers of the first round ---------------------------------------------
    def create(self, config: dict[str, Any], name: str | None = None) -> str:
        return self.json("POST", "/containers/create", {"name": name}, config)["Id"]

    def start(self, cid: str) -> None:
        self.request("POST", f"/containers/{cid}/start").read()

    def inspect(self, cid: str) -> dict[str, Any]:
        return self.json("GET", f"/containers/{cid}/json")

    def containers(self, all_: bool = False, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        return self.get_json("/containers/json", {"all": all_, "filters": filters or None})

    def images(self) -> list[dict[str, Any]]:
        return self.get_json("/images/json")


class _Prefixed:
    """A socket whose first bytes were already read with the response head."""

    def __init__(self, sock: Any, prefix: bytes) -> None:
        self._sock = sock
        self._prefix = prefix

    def recv(self, n: int) -> bytes:
        if self._prefix:
            out, self._prefix = self._prefix[:n], self._prefix[n:]
            return out
        return self._sock.recv(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def demux(sock: Any) -> Iterator[tuple[int, bytes]]:
    """Docker's multiplexed frames from a hijacked socket: (stream, payload) until EOF."""
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            yield buf[0], buf[8:8 + size]
            buf = buf[8 + size:]
