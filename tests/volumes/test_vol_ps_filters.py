"""``docker ps --filter volume= / publish= / expose=`` over the list route's info dict."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.daemon.filters import match_container
from dockyard.errors import InvalidArgument

INFO: dict[str, Any] = {
    "Id": "a" * 64, "Name": "web", "State": "running", "ExitCode": 0, "Labels": {}, "ImageID": "",
    "Image": "busybox", "Health": None, "Networks": ["bridge"],
    "Mounts": [{"Type": "volume", "Name": "data", "Source": "/v/data/_data", "Destination": "/data"},
               {"Type": "bind", "Source": "/srv", "Destination": "/srv"}],
    "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
    "ExposedPorts": ["80/tcp", "53/udp", "9000"],
}


def match(flt: dict[str, list[str]]) -> bool:
    return match_container(INFO, flt, lambda ref: None, lambda ref: None)


@pytest.mark.parametrize("flt, expected", [
    ({"volume": ["data"]}, True), ({"volume": ["/data"]}, True), ({"volume": ["/srv"]}, True),
    ({"volume": ["other"]}, False),
    ({"publish": ["80"]}, True), ({"publish": ["80/tcp"]}, True), ({"publish": ["80/udp"]}, False),
    ({"publish": ["70-90"]}, True), ({"publish": ["8080"]}, False),
    ({"expose": ["53/udp"]}, True), ({"expose": ["53"]}, False), ({"expose": ["9000"]}, True),
    ({"expose": ["8000-8999"]}, False),
])
def test_volume_publish_expose_filters(flt: dict[str, list[str]], expected: bool) -> None:
    assert match(flt) is expected


def test_bad_port_filter_names_the_value() -> None:
    with pytest.raises(InvalidArgument, match="'eighty'"):
        match({"publish": ["eighty"]})
