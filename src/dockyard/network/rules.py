"""nftables rules for bridge networks and published ports, in tables of our own.

We never touch another program's tables. Everything lives in two tables (named ``dockyard``
for the main daemon, ``dockyard_<instance>`` for others: :mod:`dockyard.network.naming`)::

    table ip dockyard                      (NAT)
    ├── chain prerouting   nat hook prerouting, priority dstnat: daddr local, not 127/8 -> ports
    ├── chain output       nat hook output, priority -100:       fib daddr type local -> ports
    ├── chain postrouting  nat hook postrouting, priority srcnat: -> masq
    ├── chain ports        one DNAT rule per published port
    └── chain masq         per network: outbound masquerade, 127/8 and hairpin masquerade
    table inet dockyard                    (filter)
    ├── chain forward      filter hook forward, priority filter, policy accept: -> nets
    ├── chain nets         per network: --internal isolation, enable_icc=false, and no new
    │                      connection into a bridge from elsewhere unless DNATed (published)
    └── chain guard        filter hook prerouting, priority raw: per bridge, drop packets
                           from the bridge addressed to 127.0.0.0/8

The rules are a pure function of the live networks and ports (:func:`render`), applied in one
nft transaction that flushes and refills the rule chains, so the kernel never sees a half
update and a reconcile after a crash is just another :func:`apply` (used on network
create/remove, restore and reconcile). Flushing or deleting rules costs 10-15 ms here (the
kernel waits for an RCU grace period) while adding one costs 0.3 ms, so on the container start
path :func:`add_ports` only adds rules, tagged with a comment naming their owner (the
container), and :func:`remove_ports` (container stop) deletes that owner's rules by handle.
Base chains are created with ``add`` (idempotent); the tables are deleted only when the last
network goes (:func:`teardown`).

Why each masquerade: outbound (``saddr subnet, oif != bridge``) so replies find the host;
``saddr 127.0.0.0/8 oif bridge`` because DNAT of 127.0.0.1:P sends a loopback-sourced packet
onto the bridge (also needs ``route_localnet=1`` on the bridge); ``ct status dnat, saddr
subnet, oif bridge`` (hairpin) because a container reaching a published port of a neighbour
on its own bridge would otherwise get the reply straight from the neighbour's address.

Why ``guard``: ``route_localnet=1`` on a bridge (needed to DNAT 127.0.0.1) also lets a
container that can craft packets (CAP_NET_RAW is in docker's default set) send to the host's
127.0.0.1 through the bridge and reach services bound to localhost only (CVE-2020-8558 is the
same flaw in kube-proxy). Legitimate replies to a DNATed 127.0.0.1 connection are addressed to
the masqueraded gateway address at this point (conntrack reverses NAT later), so they pass.

Why the "unless DNATed" rule: a neighbour that routes the subnet via this host, or a container
on another of our networks, could otherwise open connections to any port of any container;
docker isolates networks and, since 28.0, blocks this direct routing unless the network's
``gateway_mode_ipv4`` is ``nat-unprotected`` or ``routed``.

Why 127/8 is not DNATed in prerouting: the host's own connections to 127.0.0.1:P are DNATed
in ``output``; a packet *arriving* for 127.0.0.1 can only come from a neighbour that routes
127.0.0.1 to us, and DNAT would rewrite it before the kernel drops it as a martian, exposing
ports published on 127.0.0.1 to the LAN (the flaw docker 28 fixed with a raw-table rule).

Note: a ``drop`` in another table's forward chain (dockerd's iptables policy DROP) is final
whatever we accept here: see :mod:`dockyard.network.fwpolicy`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dockyard.network import nft
from dockyard.network.portmap import PublishedPort

DEFAULT_TABLE = "dockyard"


def _tables(table: str) -> tuple[str, str]:
    return f"ip {table}", f"inet {table}"


@dataclass(frozen=True)
class NetRules:
    bridge: str
    subnet: str
    internal: bool = False
    icc: bool = True
    masquerade: bool = True
    protect: bool = True  # new connections from other interfaces only through published ports


def _base(table: str) -> list[str]:
    nat, filt = _tables(table)
    return [
        f"add table {nat}",
        f"add chain {nat} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}",
        f"add chain {nat} output {{ type nat hook output priority -100; policy accept; }}",
        f"add chain {nat} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}",
        f"add chain {nat} ports",
        f"add chain {nat} masq",
        f"add table {filt}",
        f"add chain {filt} forward {{ type filter hook forward priority filter; policy accept; }}",
        f"add chain {filt} nets",
        f"add chain {filt} guard {{ type filter hook prerouting priority raw; policy accept; }}",
        # the jumps are re-added after a flush of the base chains, so there is exactly one each
        f"flush chain {nat} prerouting",
        f"flush chain {nat} output",
        f"flush chain {nat} postrouting",
        f"flush chain {filt} forward",
        # never from outside to 127/8: see "Why 127/8 is not DNATed in prerouting" above
        f"add rule {nat} prerouting ip daddr != 127.0.0.0/8 fib daddr type local jump ports",
        f"add rule {nat} output fib daddr type local jump ports",
        f"add rule {nat} postrouting jump masq",
        f"add rule {filt} forward jump nets",
    ]


def _q(name: str) -> str:
    return '"' + name.replace('"', "") + '"'


def _port_rule(owner: str, p: PublishedPort, table: str) -> str:
    nat = _tables(table)[0]
    match = "" if p.host_ip == "0.0.0.0" else f"ip daddr {p.host_ip} "
    return (f"add rule {nat} ports {match}{p.proto} dport {p.host_port} "
            f"dnat to {p.container_ip}:{p.container_port} comment {_q(owner)}")


def render(networks: Iterable[NetRules], ports: Iterable[tuple[str, PublishedPort]],
           table: str = DEFAULT_TABLE) -> str:
    """The nft transaction that makes the rule chains say exactly this."""
    nat, filt = _tables(table)
    lines = _base(table)
    lines += [f"flush chain {nat} ports", f"flush chain {nat} masq",
              f"flush chain {filt} nets", f"flush chain {filt} guard"]
    for n in networks:
        br = _q(n.bridge)
        lines.append(f"add rule {filt} guard iifname {br} ip daddr 127.0.0.0/8 drop")
        if n.internal:
            lines.append(f"add rule {filt} nets iifname {br} oifname != {br} drop")
            lines.append(f"add rule {filt} nets oifname {br} iifname != {br} drop")
        else:
            if n.masquerade:
                lines.append(f"add rule {nat} masq ip saddr {n.subnet} oifname != {br} masquerade")
            lines.append(f"add rule {nat} masq oifname {br} ip saddr 127.0.0.0/8 masquerade")
            lines.append(f"add rule {nat} masq oifname {br} ct status dnat ip saddr {n.subnet} masquerade")
            if n.protect:
                lines.append(f"add rule {filt} nets oifname {br} iifname != {br} "
                             "ct state new ct status & dnat == 0 drop")
        if not n.icc:
            lines.append(f"add rule {filt} nets iifname {br} oifname {br} drop")
    lines += [_port_rule(owner, p, table) for owner, p in ports]
    return "\n".join(lines) + "\n"


def apply(networks: Iterable[NetRules], ports: Iterable[tuple[str, PublishedPort]],
          table: str = DEFAULT_TABLE) -> None:
    """Make our tables say exactly this (one transaction)."""
    nft.run(render(networks, ports, table))


def add_ports(owner: str, ports: Iterable[PublishedPort], table: str = DEFAULT_TABLE) -> None:
    """Append DNAT rules for ``owner``'s ports (the tables must exist: :func:`apply` first)."""
    text = "".join(_port_rule(owner, p, table) + "\n" for p in ports)
    if text:
        nft.run(text)


def remove_ports(owner: str, table: str = DEFAULT_TABLE) -> None:
    """Delete every DNAT rule tagged with ``owner`` (nothing to do if there is none)."""
    nat = _tables(table)[0]
    if not nft.table_exists("ip", table):
        return
    handles = [o["rule"]["handle"] for o in nft.list_json(f"chain {nat} ports")
               if "rule" in o and o["rule"].get("comment") == owner]
    if handles:
        nft.run("".join(f"delete rule {nat} ports handle {h}\n" for h in handles))


def port_rules(table: str = DEFAULT_TABLE) -> list[tuple[str, int]]:
    """(owner comment, host port) of the DNAT rules present; for tests and reconcile."""
    nat = _tables(table)[0]
    out: list[tuple[str, int]] = []
    if not nft.table_exists("ip", table):
        return out
    for o in nft.list_json(f"chain {nat} ports"):
        if "rule" in o:
            dport = next((e["match"]["right"] for e in o["rule"]["expr"]
                          if "match" in e and e["match"]["left"].get("payload", {}).get("field") == "dport"), 0)
            out.append((o["rule"].get("comment", ""), int(dport)))
    return out


def teardown(table: str = DEFAULT_TABLE) -> None:
    """Delete our tables (no error when they are absent)."""
    cmds = [f"delete table {t}" for t in _tables(table) if nft.table_exists(*t.split())]
    if cmds:
        nft.run("\n".join(cmds) + "\n")


def tables_present(table: str = DEFAULT_TABLE) -> list[str]:
    return [t for t in _tables(table) if nft.table_exists(*t.split())]
