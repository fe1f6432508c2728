"""HTTP/1.1 over a unix socket and JSON, without ``socket``, ``json`` or ``http.client``.

Importing ``socket`` (enum, selectors), ``json`` (``re``) and ``http.client`` (email.*) costs
more than the rest of a ``dockyard ps``; so every request is one ``Connection: close``
exchange over a bare ``_socket``, JSON is decoded by the C scanner in ``_json`` and encoded
by ``dumps`` below. ``Response`` reads the head at once and the body lazily (``read``,
``read1``, line iteration), de-chunking as it goes. Errors are the error vocabulary, chosen
by HTTP status.
"""

from __future__ import annotations

import _json
import _socket
import os

from dockyard import errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_HOST = "unix:///run/dockyard.sock"
API = "/v1.50"

BY_STATUS: dict[int, type[errors.DockyardError]] = {
    400: errors.InvalidArgument, 403: errors.PermissionDenied, 404: errors.NotFound,
    409: errors.Conflict, 501: errors.NotImplementedYet, 503: errors.Unavailable,
}


def socket_path(host: str | None) -> str:
    host = host or os.environ.get("DOCKYARD_HOST") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    if host.startswith("unix://"):
        return host[len("unix://"):]
    if host.startswith("/"):
        return host
    raise errors.InvalidArgument(f"unsupported host {host!r}: use unix:///path/to.sock")


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))


_scan = _json.make_scanner(_Ctx())


def loads(text: str) -> Any:
    i = 0
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    value, end = _scan(text, i)
    return value


def quote(s: str) -> str:
    """A JSON string literal (non-ASCII kept), without importing ``json``."""
    return _json.encode_basestring(s)


_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~")


def _q(v: str) -> str:
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in v.encode())


def url(path: str, query: dict[str, Any] | None) -> str:
    parts = []
    for k, v in (query or {}).items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "1" if v else "0"
        elif isinstance(v, dict):
            v = "{" + ",".join(f"{quote(a)}:[" + ",".join(quote(x) for x in b) + "]" for a, b in v.items()) + "}"
        for item in (v if isinstance(v, list | tuple) else [v]):
            parts.append(f"{_q(k)}={_q(str(item))}")
    return API + path + ("?" + "&".join(parts) if parts else "")


def unavailable(path: str, e: OSError) -> errors.Unavailable:
    return errors.Unavailable(f"Cannot connect to the Dockyard daemon at unix://{path}. "
                              f"Is dockyardd running? ({e.strerror})")


def error_of(status: int, body: bytes) -> errors.DockyardError:
    text = body.decode(errors="replace").strip()
    try:
        msg = loads(text).get("message", "")
    except (ValueError, StopIteration, AttributeError):
        msg = text
    return BY_STATUS.get(status, errors.Internal)(msg)


def dumps(v: Any) -> str:
    """Compact JSON (ASCII-escaped strings), enough for request bodies."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _json.encode_basestring_ascii(v)
    if isinstance(v, int):
        return int.__repr__(v)
    if isinstance(v, float):
        return float.__repr__(v)
    if isinstance(v, dict):
        return "{" + ",".join(f"{_json.encode_basestring_ascii(str(k))}:{dumps(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    raise TypeError(f"cannot encode {type(v).__name__} as JSON")


def connect(sock_path: str) -> Any:
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(sock_path)
    except OSError as e:
        s.close()
        raise unavailable(sock_path, e) from None
    return s


class Response:
    """One HTTP response: status and headers read at once, the body on demand."""

    def __init__(self, sock: Any, method: str) -> None:
        self._sock = sock
        self._buf = b""
        self._done = False
        while b"\r\n\r\n" not in self._buf:
            if not self._fill():
                raise errors.Unavailable("the daemon closed the connection")
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        self.headers: dict[str, str] = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self._left = 0  # bytes left in the current chunk
        cl = self.headers.get("content-length")
        self._remaining: int | None = int(cl) if cl is not None and not self._chunked else None
        if method == "HEAD" or self.status in (204, 304):
            self._remaining = 0
            self._chunked = False

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def _fill(self) -> bool:
        data = self._sock.recv(262144)
        self._buf += data
        return bool(data)

    def _take(self, n: int) -> bytes:
        if not self._buf and not self._fill():
            return b""
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _line(self) -> bytes:
        while b"\n" not in self._buf:
            if not self._fill():
                out, self._buf = self._buf, b""
                return out
        line, _, self._buf = self._buf.partition(b"\n")
        return line + b"\n"

    def _finish(self) -> bytes:
        self._done = True
        self.close()
        return b""

    def read1(self, n: int = 65536) -> bytes:
        """Up to n bytes of body as soon as some are there; b"" at the end."""
        if self._done:
            return b""
        if self._chunked:
            if self._left == 0:
                size_line = self._line()
                if not size_line:
                    return self._finish()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self._line() not in (b"\r\n", b"\n", b""):
                        pass
                    return self._finish()
                self._left = size
            data = self._take(min(n, self._left))
            if not data:
                return self._finish()
            self._left -= len(data)
            if self._left == 0:
                self._line()  # the CRLF closing the chunk
            return data
        if self._remaining is not None:
            if self._remaining <= 0:
                return self._finish()
            data = self._take(min(n, self._remaining))
            if not data:
                return self._finish()
            self._remaining -= len(data)
            return data
        data = self._take(n)
        return data if data else self._finish()

    def read(self, n: int = -1) -> bytes:
        parts = []
        got = 0
        while n < 0 or got < n:
            data = self.read1(65536 if n < 0 else min(65536, n - got))
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def __iter__(self) -> Any:
        pending = b""
        while True:
            data = self.read1()
            if not data:
                if pending:
                    yield pending
                return
            pending += data
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                yield line + b"\n"

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass


def request(sock_path: str, method: str, target: str, body: Any = None,
            headers: dict[str, str] | None = None) -> Response:
    """Send one request (bytes, a file object streamed chunked, or None) and read the head."""
    s = connect(sock_path)
    try:
        hdrs = {"Host": "localhost", "Connection": "close", **(headers or {})}
        streamed = hasattr(body, "read")
        if streamed:
            hdrs["Transfer-Encoding"] = "chunked"
        elif body is not None:
            hdrs["Content-Length"] = str(len(body))
        elif method in ("POST", "PUT"):
            hdrs["Content-Length"] = "0"
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        try:
            if streamed:
                s.sendall(head.encode())
                while data := body.read(1 << 20):
                    s.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            else:
                s.sendall(head.encode() + (body or b""))
        except BrokenPipeError:
            pass  # the daemon answered early (an error): read what it said
        return Response(s, method)
    except BaseException:
        s.close()
        raise


def get_json(sock_path: str, path: str, query: dict[str, Any] | None = None) -> Any:
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            s.connect(sock_path)
        except OSError as e:
            raise unavailable(sock_path, e) from None
        s.sendall(f"GET {url(path, query)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while data := s.recv(262144):
            chunks.append(data)
    finally:
        s.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    chunked = any(ln.lower().replace(b" ", b"") == b"transfer-encoding:chunked" for ln in lines[1:])
    if chunked:
        out, rest = [], body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            if n == 0:
                break
            out.append(rest[:n])
            rest = rest[n + 2:]
        body = b"".join(out)
    if status >= 400:
        raise error_of(status, body)
    text = body.decode()
    return loads(text) if text.strip() else None
