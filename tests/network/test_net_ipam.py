"""IPAM pools: allocation order, static addresses, ranges, overlap and auto subnets."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from dockyard.errors import Conflict, InvalidArgument, Unavailable
from dockyard.network import ipam


def test_allocation_order_release_and_exhaustion() -> None:
    pool = ipam.make_pool("10.213.1.0/29")
    assert pool.gateway == IPv4Address("10.213.1.1")
    got = []
    for _ in range(5):
        pool, a = pool.allocate()
        got.append(str(a))
    assert got == ["10.213.1.2", "10.213.1.3", "10.213.1.4", "10.213.1.5", "10.213.1.6"]
    with pytest.raises(Unavailable):
        pool.allocate()
    pool = pool.release("10.213.1.4")
    assert str(pool.allocate()[1]) == "10.213.1.4"
    assert ipam.Pool.from_json(pool.to_json()) == pool


def test_gateway_range_and_static() -> None:
    pool = ipam.make_pool("10.213.2.0/24", gateway="10.213.2.254", ip_range="10.213.2.16/28")
    pool, a = pool.allocate()
    assert str(a) == "10.213.2.16"
    pool, b = pool.allocate("10.213.2.200")  # static may be outside the range, inside the subnet
    assert str(b) == "10.213.2.200"
    with pytest.raises(Conflict, match="Address already in use"):
        pool.allocate("10.213.2.200")
    for bad in ("10.213.2.254", "10.213.2.255", "10.213.2.0", "10.9.9.9"):
        with pytest.raises(InvalidArgument):
            pool.allocate(bad)
    with pytest.raises(InvalidArgument, match="invalid IPv4Address"):
        pool.allocate("banana")
    auto = ipam.make_pool("10.213.3.0/24", user_subnet=False)
    with pytest.raises(InvalidArgument, match="user configured subnets"):
        auto.allocate("10.213.3.9")


@pytest.mark.parametrize("kwargs, match", [
    (dict(subnet="10.213.0.0/33"), "invalid subnet"),
    (dict(subnet="10.213.0.0/24", gateway="10.213.1.1"), "not a host address"),
    (dict(subnet="10.213.0.0/24", gateway="10.213.0.255"), "not a host address"),
    (dict(subnet="10.213.0.0/24", ip_range="10.213.1.0/28"), "not inside subnet"),
    (dict(subnet="10.213.0.0/31"), "too small"),
])
def test_bad_pools(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        ipam.make_pool(**kwargs)


def test_overlap_message() -> None:
    with pytest.raises(Conflict) as e:
        ipam.make_pool("10.213.0.128/25", existing=[IPv4Network("10.213.0.0/24")])
    assert str(e.value) == "Pool overlaps with other one on this address space"


def test_choose_subnet_avoids_docker0_routes_and_taken() -> None:
    got = ipam.choose_subnet(taken=[IPv4Network("172.18.0.0/16")],
                             host=[IPv4Network("172.19.5.0/24")])
    assert got == IPv4Network("172.20.0.0/16")
    pools = [IPv4Network("172.17.0.0/16"), IPv4Network("10.1.0.0/16")]
    assert ipam.choose_subnet([], [], pools) == IPv4Network("10.1.0.0/16")
    with pytest.raises(Unavailable):
        ipam.choose_subnet([IPv4Network("10.0.0.0/8")], [], [IPv4Network("10.1.0.0/16")])


def test_host_routes_parses_proc(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "route"
    f.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert ipam.host_routes(str(f)) == [IPv4Network("192.0.2.0/24")]


def test_host_routes_of_an_empty_route_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # a fresh network namespace with lo down prints not even the header line
    f = tmp_path / "route"
    f.write_text("")
    assert ipam.host_routes(str(f)) == []


def test_auxiliary_addresses_are_never_handed_out() -> None:
    pool = ipam.make_pool("10.213.9.0/29", aux_addresses={"b": "10.213.9.3", "a": "10.213.9.2"})
    assert pool.aux_addresses == {"a": "10.213.9.2", "b": "10.213.9.3"}
    got = []
    for _ in range(3):
        pool, a = pool.allocate()
        got.append(str(a))
    assert got == ["10.213.9.4", "10.213.9.5", "10.213.9.6"]
    with pytest.raises(Unavailable):
        pool.allocate()
    # a static --ip on an auxiliary address is "in use", as with dockerd
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.make_pool("10.213.9.0/29", aux_addresses={"a": "10.213.9.2"}).allocate("10.213.9.2")
    assert ipam.Pool.from_json(pool.to_json()) == pool
    # a record written before auxiliary addresses existed still loads
    old = {k: v for k, v in pool.to_json().items() if k != "aux"}
    assert ipam.Pool.from_json(old).aux == ()


@pytest.mark.parametrize("aux, word", [
    ({"a": "10.213.10.300"}, r"non parsable secondary ip address \(a:10.213.10.300\)"),
    ({"a": "10.213.11.5"}, r"\(a:10.213.11.5\) must belong to the master pool: 10.213.10.0/24"),
    ({"a": "10.213.10.255"}, r"\(a:10.213.10.255\): Address already in use"),
    ({"a": "10.213.10.1"}, r"\(a:10.213.10.1\): Address already in use"),  # the gateway
    ({"a": "10.213.10.7", "b": "10.213.10.7"}, r"\(b:10.213.10.7\): Address already in use"),
])
def test_bad_auxiliary_addresses_are_refused(aux: dict[str, str], word: str) -> None:
    with pytest.raises(InvalidArgument, match=word):
        ipam.make_pool("10.213.10.0/24", aux_addresses=aux)
