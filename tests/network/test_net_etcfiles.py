"""/etc/hosts, resolv.conf and hostname content."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network import etcfiles

HOST = "# host\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch corp.example\noptions edns0\n"


def test_hosts_file() -> None:
    text = etcfiles.hosts_file("abc123", ["10.213.0.2"], extra_hosts=["db:10.0.0.9", "gw=host-gateway",
                               "v6:[fd00::1]"], host_gateway="172.18.0.1")
    assert text.splitlines() == [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::\tip6-localnet",
        "ff00::\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
        "10.0.0.9\tdb",
        "172.18.0.1\tgw",
        "fd00::1\tv6",
        "10.213.0.2\tabc123",
    ]
    short = etcfiles.hosts_file("h", ["10.0.0.2"], domainname="example.com", ipv6=False)
    assert short == "127.0.0.1\tlocalhost\n10.0.0.2\th.example.com h\n"


@pytest.mark.parametrize("entry, match", [
    ("nohost", "bad format for add-host"),
    ("x:", 'invalid IP address in add-host: ""'),
    (":1.2.3.4", "bad format"),
    ("x:1.2.3", "invalid IP address in add-host"),
    ("x:host-gateway", "host-gateway"),
])
def test_bad_add_host(entry: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        etcfiles.hosts_file("h", [], extra_hosts=[entry])


def test_resolv_conf_embedded() -> None:
    rc = etcfiles.resolv_conf(HOST, embedded_dns=True)
    assert rc.upstreams == ("127.0.0.53", "10.255.255.53")
    lines = rc.text.splitlines()
    assert "nameserver 127.0.0.11" in lines and not any("10.255" in ln for ln in lines if ln.startswith("nameserver"))
    assert "search corp.example" in lines and "options ndots:0 edns0" in lines
    rc = etcfiles.resolv_conf(HOST, embedded_dns=True, dns=["192.0.2.53"], dns_search=["."],
                              dns_options=["ndots:2"])
    assert rc.upstreams == ("192.0.2.53",)
    assert not any(ln.startswith("search") for ln in rc.text.splitlines())
    assert "options ndots:2" in rc.text.splitlines()


def test_resolv_conf_default_bridge() -> None:
    rc = etcfiles.resolv_conf(HOST, embedded_dns=False)
    assert [ln for ln in rc.text.splitlines() if ln.startswith("nameserver")] == ["nameserver 10.255.255.53"]
    only_loop = etcfiles.resolv_conf("nameserver 127.0.0.53\n", embedded_dns=False)
    assert "nameserver 8.8.8.8" in only_loop.text and rc.upstreams == ()
    with pytest.raises(InvalidArgument, match="IP address is not correctly formatted: dns.example"):
        etcfiles.resolv_conf(HOST, embedded_dns=False, dns=["dns.example"])
    assert etcfiles.hostname_file("web") == "web\n"
