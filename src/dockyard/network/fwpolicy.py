"""Coexisting with a dockerd that set the iptables FORWARD policy to DROP.

An ``accept`` in our own nftables table does not override a ``drop`` in another table: each
base chain on the forward hook decides on its own, and a drop anywhere is final. So when the
``filter`` table's FORWARD chain has policy DROP, the only way through is an ACCEPT reached
from that chain. Both iptables back ends are checked (``iptables-nft`` and
``iptables-legacy`` keep separate rule sets and dockerd may use either). We keep our rules in
a chain of our own and add a single jump to FORWARD (chain and comment are per instance,
``DOCKYARD``/``dockyard`` for the main daemon: :mod:`dockyard.network.naming`)::

    -A FORWARD -m comment --comment dockyard -j DOCKYARD                      (inserted first)
    -A DOCKYARD -i <br> -j ACCEPT                    (leaving the bridge; --internal: -i br -o br)
    -A DOCKYARD -o <br> -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT
                                                     (replies, and published ports)

Packets our chain does not accept return to FORWARD and meet dockerd's rules and policy as
before. With ``br_netfilter`` (``bridge-nf-call-iptables=1``), bridged container-to-container
traffic traverses FORWARD too, as ``-i br -o br``, which the first rule covers. Nothing is
done when the policy is ACCEPT or iptables is absent; the chain and the jump go with the last
bridge's rules. These run on network create/remove only, so forking iptables is acceptable.
"""

from __future__ import annotations

import shutil
import subprocess

from dockyard.errors import Internal

COMMENT = "dockyard"  # the main daemon's; others pass naming.Naming.comment


def _chain(comment: str) -> str:
    return comment.upper()


def _variants() -> list[str]:
    found = [p for p in (shutil.which("iptables-nft"), shutil.which("iptables-legacy")) if p]
    if not found and (plain := shutil.which("iptables")):
        found = [plain]
    return found


def _run(exe: str, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([exe, "-w", *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise Internal(f"{exe} {' '.join(args)}: {p.stderr.strip()}")
    return p


def _drops(exe: str) -> bool:
    p = _run(exe, ["-t", "filter", "-S", "FORWARD"], check=False)
    return p.returncode == 0 and p.stdout.splitlines()[:1] == ["-P FORWARD DROP"]


def forward_policy_drops() -> bool:
    """True when a filter FORWARD chain (either back end) has policy DROP."""
    return any(_drops(exe) for exe in _variants())


def _jump(comment: str) -> list[str]:
    return ["-m", "comment", "--comment", comment, "-j", _chain(comment)]


def _specs(bridge: str, internal: bool) -> list[list[str]]:
    if internal:
        return [["-i", bridge, "-o", bridge, "-j", "ACCEPT"]]
    return [
        ["-i", bridge, "-j", "ACCEPT"],
        ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "ACCEPT"],
    ]


def _chain_lines(exe: str, comment: str) -> list[str] | None:
    """``-A`` lines of our chain; None when the chain does not exist."""
    p = _run(exe, ["-t", "filter", "-S", _chain(comment)], check=False)
    if p.returncode != 0:
        return None
    return [ln for ln in p.stdout.splitlines() if ln.startswith("-A ")]


def ensure_bridge_rules(bridge: str, internal: bool = False, comment: str = COMMENT) -> bool:
    """Accept the bridge's traffic where FORWARD drops; True if any back end needed it."""
    needed = False
    chain = _chain(comment)
    for exe in _variants():
        if not _drops(exe):
            continue
        needed = True
        if _chain_lines(exe, comment) is None:
            _run(exe, ["-t", "filter", "-N", chain])
        if _run(exe, ["-C", "FORWARD", *_jump(comment)], check=False).returncode != 0:
            _run(exe, ["-I", "FORWARD", "1", *_jump(comment)])
        for spec in _specs(bridge, internal):
            if _run(exe, ["-C", chain, *spec], check=False).returncode != 0:
                _run(exe, ["-A", chain, *spec])
    return needed


def our_rules(comment: str = COMMENT) -> list[str]:
    """Our jump and chain rules as ``iptables -S`` lines (all back ends)."""
    out: list[str] = []
    for exe in _variants():
        fwd = _run(exe, ["-t", "filter", "-S", "FORWARD"], check=False).stdout.splitlines()
        out += [ln for ln in fwd if ln.startswith("-A ") and f"-j {_chain(comment)}" in ln]
        out += _chain_lines(exe, comment) or []
    return out


def _bridges_of(line: str) -> set[str]:
    words = line.split()
    return {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-i", "-o")}


def remove_bridge_rules(bridge: str | None = None, comment: str = COMMENT) -> int:
    """Delete our rules for ``bridge`` (all when None), and the chain and jump once empty.
    Returns the number of bridge rules deleted."""
    n = 0
    chain = _chain(comment)
    for exe in _variants():
        lines = _chain_lines(exe, comment)
        if lines is None:
            continue
        for line in lines:
            if bridge is None or bridge in _bridges_of(line):
                _run(exe, ["-D", *line.split()[1:]])
                n += 1
        if not _chain_lines(exe, comment):
            while _run(exe, ["-D", "FORWARD", *_jump(comment)], check=False).returncode == 0:
                pass
            _run(exe, ["-t", "filter", "-X", chain])
    return n


def bridges_with_rules(comment: str = COMMENT) -> set[str]:
    return {b for exe in _variants() for line in (_chain_lines(exe, comment) or [])
            for b in _bridges_of(line)}
