"""The start-up-cheap GET for the CLI's most frequent commands (``ps``, ``images``, ``version``).

One ``Connection: close`` request over a bare ``_socket`` and JSON decoded by the C scanner
in ``_json``: importing ``socket`` (enum, selectors), ``json`` (``re``) and ``http.client``
would cost more than the rest of a ``dockyard ps``. Errors are the error vocabulary, chosen by
HTTP status (as ``client.api`` does).
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
