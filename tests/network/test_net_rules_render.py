"""The nft transaction text (the root tests check its effect on real traffic)."""

from __future__ import annotations

from dockyard.network import rules
from dockyard.network.portmap import PublishedPort


def test_render() -> None:
    text = rules.render(
        [rules.NetRules("dy-a", "10.213.1.0/24"), rules.NetRules("dy-i", "10.213.2.0/24", internal=True, icc=False)],
        [("c1", PublishedPort("tcp", "0.0.0.0", 8080, "10.213.1.2", 80)),
         ("c2", PublishedPort("udp", "127.0.0.1", 5353, "10.213.1.3", 53))],
    )
    lines = text.splitlines()
    assert 'add rule ip dockyard masq ip saddr 10.213.1.0/24 oifname != "dy-a" masquerade' in lines
    assert not any("masquerade" in ln and "dy-i" in ln for ln in lines)  # internal: no way out
    assert 'add rule inet dockyard nets iifname "dy-i" oifname != "dy-i" drop' in lines
    assert 'add rule inet dockyard nets iifname "dy-i" oifname "dy-i" drop' in lines  # icc=false
    assert 'add rule ip dockyard ports tcp dport 8080 dnat to 10.213.1.2:80 comment "c1"' in lines
    assert 'add rule ip dockyard ports ip daddr 127.0.0.1 udp dport 5353 dnat to 10.213.1.3:53 comment "c2"' in lines
    assert ('add rule inet dockyard nets oifname "dy-a" iifname != "dy-a" ct state new '
            'ct status & dnat == 0 drop') in lines
    assert 'add rule inet dockyard guard iifname "dy-a" ip daddr 127.0.0.0/8 drop' in lines
    # chains are flushed before being refilled, in the same transaction
    assert lines.index("flush chain ip dockyard ports") < lines.index(
        'add rule ip dockyard ports tcp dport 8080 dnat to 10.213.1.2:80 comment "c1"')
