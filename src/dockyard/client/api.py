"""A small Engine API client for the ``dockyard`` CLI: ``http.client`` over a unix socket.

No aiohttp here: the CLI must start fast. Errors come back as the error vocabulary, chosen by
HTTP status (the one place a status is mapped back), carrying the daemon's message.

``hijack(path, body)`` returns the raw socket of an attach / exec start after ``101 UPGRADED``.
``get_json(path, query)`` is the start-up-cheap path (``ps``, ``version``, ``images``): one
``Connection: close`` GET over a bare socket, no ``http.client`` (its import alone costs more
than the rest of a ``dockyard ps``).
"""

from __future__ import annotations

import json
import socket

from dockyard import errors
from dockyard.client.fast import BY_STATUS, DEFAULT_HOST, socket_path, unavailable

__all__ = ["API", "DEFAULT_HOST", "Client", "demux", "socket_path"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import http.client
    from collections.abc import Iterator
    from typing import Any

API = "/v1.50"

_BY_STATUS = BY_STATUS


def _unix_connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise unavailable(path, e) from None
    return s


_CONN: Any = None


def _Conn(path: str) -> http.client.HTTPConnection:
    global _CONN
    if _CONN is None:
        import http.client

        class Conn(http.client.HTTPConnection):
            def __init__(self, path: str) -> None:
                super().__init__("localhost")
                self.path = path

            def connect(self) -> None:
                self.sock = _unix_connect(self.path)
        _CONN = Conn
    return _CONN(path)


def _error(status: int, raw: bytes) -> errors.DockyardError:
    try:
        msg = json.loads(raw).get("message", "")
    except ValueError:
        msg = raw.decode(errors="replace").strip()
    return _BY_STATUS.get(status, errors.Internal)(msg)


def _quote(v: str) -> str:
    safe = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~"
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in v.encode())


class Client:
    def __init__(self, host: str | None = None) -> None:
        self.path = socket_path(host)

    # plumbing -------------------------------------------------------------------------------------
    def _url(self, path: str, query: dict[str, Any] | None) -> str:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        for k, v in list(q.items()):
            if isinstance(v, bool):
                q[k] = "1" if v else "0"
            elif isinstance(v, dict):
                q[k] = json.dumps(v)
        parts = []
        for k, v in q.items():
            for item in (v if isinstance(v, list | tuple) else [v]):
                parts.append(f"{_quote(k)}={_quote(str(item))}")
        return API + path + ("?" + "&".join(parts) if parts else "")

    def get_json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        """GET and decode JSON without http.client (see ``client.fast``)."""
        from dockyard.client.fast import get_json
        return get_json(self.path, path, query)

    def request(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
                headers: dict[str, str] | None = None, stream: bool = False) -> http.client.HTTPResponse:
        conn = _Conn(self.path)
        hdrs = dict(headers or {})
        data: Any = None
        if body is not None:
            if isinstance(body, bytes | bytearray) or hasattr(body, "read"):
                data = body
                hdrs.setdefault("Content-Type", "application/x-tar")
                if hasattr(body, "read"):
                    hdrs.setdefault("Transfer-Encoding", "chunked")
            else:
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
        conn.request(method, self._url(path, query), body=data, headers=hdrs,
                     encode_chunked=hasattr(body, "read"))
        resp = conn.getresponse()
        if resp.status >= 400:
            raw = resp.read()
            conn.close()
            raise _error(resp.status, raw)
        return resp

    def json(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        resp = self.request(method, path, query, body)
        raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def hijack(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> socket.socket:
        s = _unix_connect(self.path)
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"POST {self._url(path, query)} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
                f"Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        s.sendall(head.encode() + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise errors.Unavailable("the daemon closed the connection")
            buf += chunk
        head_b, _, rest = buf.partition(b"\r\n\r\n")
        status = int(head_b.split(b" ", 2)[1])
        if status != 101:
            s.close()
            raise _error(status, rest)
        if rest:
            return _Prefixed(s, rest)  # type: ignore[return-value]
        return s

    # containers -----------------------------------------------------------------------------------
    def create(self, config: dict[str, Any], name: str | None = None) -> str:
        return self.json("POST", "/containers/create", {"name": name}, config)["Id"]

    def start(self, cid: str) -> None:
        self.request("POST", f"/containers/{cid}/start").read()

    def wait(self, cid: str, condition: str = "not-running") -> http.client.HTTPResponse:
        """Returns the response at once (headers); ``json.loads(resp.read())`` blocks until exit."""
        return self.request("POST", f"/containers/{cid}/wait", {"condition": condition})

    def inspect(self, cid: str) -> dict[str, Any]:
        return self.json("GET", f"/containers/{cid}/json")

    def containers(self, all_: bool = False, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        return self.json("GET", "/containers/json", {"all": all_, "filters": filters or None})

    def logs(self, cid: str, **query: Any) -> http.client.HTTPResponse:
        return self.request("GET", f"/containers/{cid}/logs", query)

    def stop(self, cid: str, timeout: int | None = None) -> None:
        self.request("POST", f"/containers/{cid}/stop", {"t": timeout}).read()

    def kill(self, cid: str, signal: str | None = None) -> None:
        self.request("POST", f"/containers/{cid}/kill", {"signal": signal}).read()

    def remove(self, cid: str, force: bool = False) -> None:
        self.request("DELETE", f"/containers/{cid}", {"force": force}).read()

    def exec_create(self, cid: str, config: dict[str, Any]) -> str:
        return self.json("POST", f"/containers/{cid}/exec", None, config)["Id"]

    def exec_inspect(self, eid: str) -> dict[str, Any]:
        return self.json("GET", f"/exec/{eid}/json")

    # images -----------------------------------------------------------------------------------------
    def images(self) -> list[dict[str, Any]]:
        return self.json("GET", "/images/json")

    def import_image(self, data: Any, repo: str | None, changes: list[str], message: str) -> str:
        resp = self.request("POST", "/images/create", {"fromSrc": "-", "repo": repo, "changes": changes or None,
                                                       "message": message or None}, body=data)
        last = ""
        for line in resp.read().splitlines():
            if line.strip():
                last = json.loads(line).get("status", last)
        return last

    def image_remove(self, ref: str, force: bool = False) -> list[dict[str, str]]:
        return self.json("DELETE", f"/images/{ref}", {"force": force})


class _Prefixed:
    """A socket whose first bytes were already read with the response head."""

    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
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
