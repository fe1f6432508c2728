"""Endpoint records keep their legacy links (alias, container name) across a JSON round trip."""

from __future__ import annotations

from dockyard.network.model import Endpoint


def _ep(**kw: object) -> Endpoint:
    base = dict(id="e1", network_id="n1", container_id="c1", name="web", aliases=("w",), ip="10.0.0.2",
                prefixlen=24, mac="02:42:0a:00:00:02", gateway="10.0.0.1", host_ifname="veth1",
                ifname="eth0", netns_path="/run/x")
    return Endpoint(**{**base, **kw})  # type: ignore[arg-type]


def test_links_round_trip_and_old_records_load() -> None:
    ep = _ep(links=(("bar", "upstream"), ("db", "pg")))
    d = ep.to_json()
    assert d["links"] == [["bar", "upstream"], ["db", "pg"]]
    assert Endpoint.from_json(d) == ep
    old = {k: v for k, v in d.items() if k != "links"}  # written before links were kept
    assert Endpoint.from_json(old).links == ()
