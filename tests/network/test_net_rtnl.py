"""rtnetlink client: message encoding byte for byte (no root), then real links in a test namespace."""

from __future__ import annotations

import errno
import os
import socket
import struct
from pathlib import Path

import pytest

from dockyard.network import rtnl
from dockyard.network.rtnl import Rtnl


def test_attr_is_padded_and_length_excludes_padding() -> None:
    assert rtnl.attr_str(rtnl.IFLA_IFNAME, "br0") == struct.pack("=HH", 8, 3) + b"br0\0"
    a = rtnl.attr_str(rtnl.IFLA_IFNAME, "dy-0")  # 4 + 5 bytes -> padded to 12
    assert a == struct.pack("=HH", 9, 3) + b"dy-0\0" + b"\0\0\0"
    assert rtnl.parse_attrs(a + rtnl.attr_u32(rtnl.IFLA_MTU, 1400)) == {3: b"dy-0\0", 4: struct.pack("=I", 1400)}


def test_new_bridge_message_layout() -> None:
    kind, flags, body = rtnl.encode_new_bridge("br-x", 1450, forward_delay=0)
    assert (kind, flags) == (rtnl.RTM_NEWLINK, rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL)
    msg = rtnl.message(kind, flags | rtnl.NLM_F_ACK, body, seq=7)
    n, t, f, seq, pid = struct.unpack_from("=IHHII", msg)
    assert (n, t, f, seq, pid) == (len(msg), 16, 0x1 | 0x4 | 0x400 | 0x200, 7, 0)
    assert msg[16:32] == bytes(16)  # ifinfomsg: AF_UNSPEC, index 0, no flags
    attrs = rtnl.parse_attrs(msg[32:])
    assert attrs[rtnl.IFLA_IFNAME] == b"br-x\0"
    assert attrs[rtnl.IFLA_MTU] == struct.pack("=I", 1450)
    info = rtnl.parse_attrs(attrs[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"bridge\0"
    assert rtnl.parse_attrs(info[rtnl.IFLA_INFO_DATA]) == {rtnl.IFLA_BR_FORWARD_DELAY: bytes(4)}


def test_veth_message_puts_the_peer_in_its_namespace() -> None:
    _, _, body = rtnl.encode_new_veth("dyvabc", 9, 1500, "eth0", "02:42:0a:00:00:02", 42)
    family, _type, index, flags, change = struct.unpack_from("=BxHiII", body)
    assert (family, index, flags, change) == (0, 0, rtnl.IFF_UP, rtnl.IFF_UP)
    top = rtnl.parse_attrs(body[16:])
    assert struct.unpack("=I", top[rtnl.IFLA_MASTER]) == (9,)
    data = rtnl.parse_attrs(rtnl.parse_attrs(top[rtnl.IFLA_LINKINFO])[rtnl.IFLA_INFO_DATA])
    peer = data[rtnl.VETH_INFO_PEER]
    assert peer[:16] == bytes(16)  # the peer's own ifinfomsg
    pa = rtnl.parse_attrs(peer[16:])
    assert pa[rtnl.IFLA_IFNAME] == b"eth0\0"
    assert pa[rtnl.IFLA_ADDRESS] == bytes([2, 0x42, 10, 0, 0, 2])
    assert struct.unpack("=I", pa[rtnl.IFLA_NET_NS_FD]) == (42,)


def test_hairpin_protinfo_is_flagged_nested() -> None:
    kind, _, body = rtnl.encode_hairpin(5)
    assert kind == rtnl.RTM_SETLINK and body[0] == socket.AF_BRIDGE
    n, t = struct.unpack_from("=HH", body, 16)
    assert t == rtnl.IFLA_PROTINFO | rtnl.NLA_F_NESTED
    assert rtnl.parse_attrs(body[20:16 + n]) == {rtnl.IFLA_BRPORT_MODE: b"\x01"}


def test_address_message_and_error_parsing() -> None:
    _, flags, body = rtnl.encode_addr(rtnl.RTM_NEWADDR, 3, "10.1.2.3", 24)
    assert flags == rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL
    assert struct.unpack_from("=BBBBI", body) == (socket.AF_INET, 24, 0, 0, 3)
    a = rtnl.parse_attrs(body[8:])
    assert a[rtnl.IFA_LOCAL] == a[rtnl.IFA_ADDRESS] == bytes([10, 1, 2, 3])
    assert rtnl.parse_addr(body) == (3, "10.1.2.3", 24)
    assert rtnl.parse_error(struct.pack("=i", 0) + bytes(16), 0) is None
    echoed = rtnl.message(rtnl.RTM_NEWLINK, 0, b"")
    err = rtnl.parse_error(struct.pack("=i", -errno.EEXIST) + echoed
                           + rtnl.attr_str(rtnl.NLMSGERR_ATTR_MSG, "File exists here"),
                           rtnl.NLM_F_ACK_TLVS)
    assert isinstance(err, OSError) and err.errno == errno.EEXIST and "File exists here" in str(err)
    with pytest.raises(ValueError, match="MAC"):
        rtnl.mac_bytes("02:42:0a")
    with pytest.raises(OSError) as ei:
        list(rtnl.split_messages(struct.pack("=IHHII", 100, 2, 0, 1, 0)))
    assert ei.value.errno == errno.EPROTO


def _hairpin(nl: Rtnl, index: int) -> int | None:
    """IFLA_BRPORT_MODE of a bridge port, from the AF_BRIDGE link dump (what `bridge link` reads)."""
    for kind, body in nl.request(rtnl.RTM_GETLINK, rtnl.NLM_F_DUMP, rtnl.ifinfomsg(family=socket.AF_BRIDGE)):
        if kind == rtnl.RTM_NEWLINK and rtnl.parse_link(body).index == index:
            proto = rtnl.parse_attrs(rtnl.parse_attrs(body[16:]).get(rtnl.IFLA_PROTINFO, b""))
            mode = proto.get(rtnl.IFLA_BRPORT_MODE)
            return mode[0] if mode else None
    return None


@pytest.mark.root
def test_bridge_veth_addresses_for_real(netns_host: str, tmp_path: Path) -> None:
    from dockyard.network import netns

    with Rtnl() as nl:
        assert nl.link("dyt-nope") is None
        lo = nl.link("lo")
        assert lo is not None and lo.kind == "" and lo.up
        nl.add_bridge("dyt-br0", mtu=1400)
        with pytest.raises(OSError) as ei:
            nl.add_bridge("dyt-br0")
        assert ei.value.errno == errno.EEXIST
        br = nl.link("dyt-br0")
        assert br is not None and br.kind == "bridge" and not br.up
        nl.set_up(br.index)
        assert nl.link("dyt-br0").up  # type: ignore[union-attr]
        nl.add_address(br.index, "10.219.0.1", 24)
        with pytest.raises(OSError) as ei:
            nl.add_address(br.index, "10.219.0.1", 24)
        assert ei.value.errno == errno.EEXIST
        assert nl.addresses(br.index) == [("10.219.0.1", 24)]
        nl.delete_address(br.index, "10.219.0.1", 24)
        assert nl.addresses(br.index) == []
        with pytest.raises(OSError) as ei:
            nl.delete_address(br.index, "10.219.0.1", 24)
        assert ei.value.errno == errno.EADDRNOTAVAIL

        ns = str(tmp_path / "ns1")
        netns.create_named(ns)
        try:
            fd = os.open(ns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                nl.add_veth("dyt-v0", br.index, 1400, "eth0", "02:42:0a:db:00:02", fd)
            finally:
                os.close(fd)
            host = nl.link("dyt-v0")
            assert host is not None and (host.kind, host.master, host.up) == ("veth", br.index, True)
            assert _hairpin(nl, host.index) == 0
            nl.set_hairpin(host.index)
            assert _hairpin(nl, host.index) == 1
            assert nl.link("eth0") is None  # the peer was born in the other namespace

            def inside() -> rtnl.Link | None:
                with Rtnl() as inner:
                    return inner.link("eth0")
            peer = netns.run_in_netns(ns, inside)
            assert peer is not None and peer.kind == "veth"
            assert {(link.name, link.kind) for link in nl.links()} >= {("dyt-br0", "bridge"), ("dyt-v0", "veth")}
            nl.delete_link(host.index)
            assert nl.link("dyt-v0") is None
            assert netns.run_in_netns(ns, inside) is None  # deleting one end deletes both
        finally:
            netns.remove_named(ns)
        nl.delete_link(br.index)
        with pytest.raises(OSError) as ei:
            nl.delete_link(br.index)
        assert ei.value.errno == errno.ENODEV
        with pytest.raises(OSError) as ei:
            nl.request(*rtnl.encode_addr(rtnl.RTM_NEWADDR, br.index, "10.219.0.1", 24))
        assert ei.value.errno == errno.ENODEV


@pytest.mark.root
def test_unknown_link_kind_is_refused_with_the_kernels_reason(netns_host: str) -> None:
    body = rtnl.ifinfomsg() + rtnl.attr_str(rtnl.IFLA_IFNAME, "dyt-x") + rtnl.nested(
        rtnl.IFLA_LINKINFO, rtnl.attr_str(rtnl.IFLA_INFO_KIND, "no-such-kind"))
    with Rtnl() as nl:
        with pytest.raises(OSError) as ei:
            nl.request(rtnl.RTM_NEWLINK, rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL, body)
        assert ei.value.errno == errno.EOPNOTSUPP
        assert nl.link("dyt-x") is None
        # the socket stays usable after an error (answers matched by sequence number)
        assert nl.link("lo") is not None
