"""docker's -p syntax and error messages (go-connections nat.ParsePortSpec)."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network.portspec import PortBinding, from_port_bindings, parse_port_spec, publish_all


@pytest.mark.parametrize("spec, want", [
    ("80", [PortBinding(80, "tcp", "")]),
    ("8080:80", [PortBinding(80, "tcp", "", 8080, 8080)]),
    ("8080:80/udp", [PortBinding(80, "udp", "", 8080, 8080)]),
    ("80/UDP", [PortBinding(80, "udp", "")]),
    ("80/", [PortBinding(80, "tcp", "")]),
    ("127.0.0.1:8080:80", [PortBinding(80, "tcp", "127.0.0.1", 8080, 8080)]),
    ("127.0.0.1::80", [PortBinding(80, "tcp", "127.0.0.1")]),
    ("[::1]:8080:80", [PortBinding(80, "tcp", "::1", 8080, 8080)]),
    ("8000-8001:80-81", [PortBinding(80, "tcp", "", 8000, 8000), PortBinding(81, "tcp", "", 8001, 8001)]),
    ("8000-8010:80", [PortBinding(80, "tcp", "", 8000, 8010)]),
    ("80-81", [PortBinding(80, "tcp", ""), PortBinding(81, "tcp", "")]),
    ("9/sctp", [PortBinding(9, "sctp", "")]),
])
def test_valid(spec: str, want: list[PortBinding]) -> None:
    assert parse_port_spec(spec) == want


@pytest.mark.parametrize("spec, message", [
    ("", "no port specified: <empty>"),
    ("8080:", "no port specified: 8080:<empty>"),
    ("abc", "invalid containerPort: abc"),
    ("70000", "invalid containerPort: 70000"),
    ("x:80", "invalid hostPort: x"),
    ("70000:80", "invalid hostPort: 70000"),
    ("-1:80", "invalid hostPort: -1"),
    ("1.2.3:80:80", "invalid IP address: 1.2.3"),
    ("8000-8001:80-83", "invalid ranges specified for container and host Ports: 80-83 and 8000-8001"),
    ("90-80", "invalid containerPort: 90-80"),
    ("80/foo", "invalid proto: foo"),
])
def test_invalid_messages(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_port_spec(spec)
    assert str(e.value) == message


def test_engine_api_forms() -> None:
    got = from_port_bindings({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                              "53/udp": [{"HostIp": "", "HostPort": ""}], "22/tcp": None})
    assert got == [PortBinding(80, "tcp", "127.0.0.1", 8080, 8080), PortBinding(53, "udp", ""),
                   PortBinding(22, "tcp", "")]
    assert publish_all(["80/tcp", "81"]) == [PortBinding(80), PortBinding(81)]
    with pytest.raises(InvalidArgument, match="invalid hostPort: nope"):
        from_port_bindings({"80/tcp": [{"HostPort": "nope"}]})
    with pytest.raises(InvalidArgument, match="invalid proto: icmp"):
        from_port_bindings({"80/icmp": [{}]})
