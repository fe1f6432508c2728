"""Docker's port publishing syntax, parsed exactly as docker's go-connections ``nat`` does.

``-p [ip:][hostPort:]containerPort[/proto]`` where ports may be ranges (``8000-8010``), ``ip``
may be IPv6 in brackets, ``proto`` is tcp (default), udp or sctp. An empty host port means
"pick one". A container port range needs a host range of the same length; a single container
port with a host range means "any free host port in that range". The error texts are docker's
so that users see the same message.

The Engine API carries the already-parsed form (``HostConfig.PortBindings``:
``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``); :func:`from_port_bindings` reads that,
and :func:`publish_all` turns ``ExposedPorts`` into random bindings for ``-P``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument

PROTOS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortBinding:
    """One container port published on the host.

    No host port (None, or 0 as docker also accepts) asks for a random port; a range asks for
    any free port within it; ``host_ip`` "" means all addresses (0.0.0.0). The host port is
    kept as given (None vs 0) so that it converts back to docker's text exactly.
    """

    container_port: int
    proto: str = "tcp"
    host_ip: str = ""
    host_port_start: int | None = None
    host_port_end: int | None = None

    @property
    def key(self) -> str:
        """The Engine API's port key, e.g. ``80/tcp``."""
        return f"{self.container_port}/{self.proto}"

    def host_port_text(self) -> str:
        if self.host_port_start is None:
            return ""
        if self.host_port_start == self.host_port_end:
            return str(self.host_port_start)
        return f"{self.host_port_start}-{self.host_port_end}"


def _parse_range(text: str) -> tuple[int, int]:
    """go-connections ParsePortRange: ``N`` or ``N-M``, 16-bit, M >= N. Raises ValueError."""
    if text == "":
        raise ValueError("empty string specified for ports")
    if "-" not in text:
        n = _u16(text)
        return n, n
    parts = text.split("-")
    start, end = _u16(parts[0]), _u16(parts[1])
    if end < start:
        raise ValueError(f"invalid range specified for port: {text}")
    return start, end


def _u16(text: str) -> int:
    if not text.isdigit():  # ParseUint: digits only, no sign, no spaces
        raise ValueError(text)
    n = int(text)
    if n > 65535:
        raise ValueError(text)
    return n


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    n = len(parts)
    if n == 1:
        return "", "", parts[0]
    if n == 2:
        return "", parts[0], parts[1]
    if n == 3:
        return parts[0], parts[1], parts[2]
    return ":".join(parts[: n - 2]), parts[n - 2], parts[n - 1]


def _split_proto(raw: str) -> tuple[str, str]:
    parts = raw.split("/")
    if raw == "" or parts[0] == "":
        return "", ""
    if len(parts) == 1:
        return "tcp", raw
    if parts[1] == "":
        return "tcp", parts[0]
    return parts[1], parts[0]


def _go_parse_ip(text: str) -> bool:
    """Whether Go's net.ParseIP accepts ``text`` (unlike Python's, no IPv6 zone)."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _go_split_host(hostport: str) -> str:
    """The host part as Go's net.SplitHostPort finds it, or ValueError with Go's message
    (``address <hostport>: <why>``): docker strips an IPv6 address's brackets with it."""

    def err(why: str) -> ValueError:
        return ValueError(f"address {hostport}: {why}")

    i = hostport.rfind(":")
    if i < 0:
        raise err("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise err("missing ']' in address")
        if end + 1 == len(hostport):
            raise err("missing port in address")
        if end + 1 != i:
            raise err("too many colons in address" if hostport[end + 1] == ":" else "missing port in address")
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise err("too many colons in address")
    if "[" in hostport[j:]:
        raise err("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise err("unexpected ']' in address")
    return host


def parse_port_spec(raw: str) -> list[PortBinding]:
    """Parse one ``-p`` value into bindings (one per container port of a range)."""
    ip, host, container = _split_parts(raw)
    proto, container = _split_proto(container)
    if ip.startswith("["):
        try:
            ip = _go_split_host(ip + ":")
        except ValueError as e:
            raise InvalidArgument(f"invalid IP address {ip}: {e}") from None
    if ip and not _go_parse_ip(ip):
        raise InvalidArgument(f"invalid IP address: {ip}")
    if container == "":
        raise InvalidArgument(f"no port specified: {raw}<empty>")
    try:
        start, end = _parse_range(container)
    except ValueError:
        raise InvalidArgument(f"invalid containerPort: {container}") from None
    hstart: int | None = None
    hend: int | None = None
    if host:
        try:
            hstart, hend = _parse_range(host)
        except ValueError:
            raise InvalidArgument(f"invalid hostPort: {host}") from None
        if (end - start) != (hend - hstart) and end != start:  # type: ignore[operator]
            raise InvalidArgument(
                f"invalid ranges specified for container and host Ports: {container} and {host}"
            )
    if proto.lower() not in PROTOS:
        raise InvalidArgument(f"invalid proto: {proto}")
    proto = proto.lower()
    out: list[PortBinding] = []
    for i in range(end - start + 1):
        hs: int | None
        he: int | None
        if hstart is None:
            hs = he = None
        elif start == end:
            hs, he = hstart, hend  # one container port, maybe a host range to choose from
        else:
            hs = he = hstart + i
        out.append(PortBinding(start + i, proto, ip, hs, he))
    return out


def from_port_bindings(bindings: Mapping[str, Iterable[Mapping[str, Any]] | None]) -> list[PortBinding]:
    """Read ``HostConfig.PortBindings`` of the Engine API."""
    out: list[PortBinding] = []
    for key, items in bindings.items():
        proto, port = _split_proto(key)
        try:
            cport, cend = _parse_range(port)
        except ValueError:
            raise InvalidArgument(f"invalid port specification: {key!r}") from None
        if cport != cend:
            raise InvalidArgument(f"invalid port specification: {key!r}")
        if proto.lower() not in PROTOS:
            raise InvalidArgument(f"invalid proto: {proto}")
        for item in items or [{}]:
            host = str(item.get("HostPort") or "")
            hs: int | None = None
            he: int | None = None
            if host:
                try:
                    hs, he = _parse_range(host)
                except ValueError:
                    raise InvalidArgument(f"invalid hostPort: {host}") from None
            ip = str(item.get("HostIp") or "")
            if ip and not _go_parse_ip(ip.strip("[]")):
                raise InvalidArgument(f"invalid IP address: {ip}")
            out.append(PortBinding(cport, proto.lower(), ip.strip("[]"), hs, he))
    return out


def publish_all(exposed: Iterable[str]) -> list[PortBinding]:
    """``-P``: every exposed port (``"80/tcp"`` keys) on a random host port."""
    return from_port_bindings({k: [{}] for k in exposed})
