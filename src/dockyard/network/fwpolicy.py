"""Coexisting with a dockerd that set the iptables FORWARD policy to DROP.

An ``accept`` in our own nftables table does not override a ``drop`` in another table: each
base chain on the forward hook decides on its own, and a drop anywhere is final. So when the
``filter`` table's FORWARD chain (iptables, legacy or nft backend) has policy DROP, the only
way through is a rule in that chain. We insert, per bridge, rules tagged with the comment
``dockyard`` (so :func:`remove_bridge_rules` and reconcile find exactly ours)::

    -A FORWARD -i <br> -j ACCEPT                                   (leaving the bridge)
    -A FORWARD -o <br> -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT   (replies, published ports)

With ``br_netfilter`` loaded, bridged container-to-container traffic traverses FORWARD too
(``-i br -o br``), which the first rule covers. Nothing is done when the policy is ACCEPT or
iptables is absent. These run on network create/remove only, so forking iptables is fine.
"""

from __future__ import annotations

import shutil
import subprocess

from dockyard.errors import Internal

COMMENT = "dockyard"


def _iptables() -> str | None:
    return shutil.which("iptables")


def _run(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = _iptables()
    assert exe is not None
    p = subprocess.run([exe, "-w", *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise Internal(f"iptables {' '.join(args)}: {p.stderr.strip()}")
    return p


def forward_policy_drops() -> bool:
    """True when iptables' filter FORWARD chain exists with policy DROP."""
    if _iptables() is None:
        return False
    p = _run(["-t", "filter", "-S", "FORWARD"], check=False)
    return p.returncode == 0 and "-P FORWARD DROP" in p.stdout.splitlines()[:1]


def _specs(bridge: str, internal: bool) -> list[list[str]]:
    tag = ["-m", "comment", "--comment", COMMENT]
    if internal:
        return [["-i", bridge, "-o", bridge, *tag, "-j", "ACCEPT"]]
    return [
        ["-i", bridge, *tag, "-j", "ACCEPT"],
        ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", *tag, "-j", "ACCEPT"],
    ]


def ensure_bridge_rules(bridge: str, internal: bool = False) -> bool:
    """Insert our ACCEPT rules when FORWARD drops; True if rules are (now) present."""
    if not forward_policy_drops():
        return False
    for spec in _specs(bridge, internal):
        if _run(["-C", "FORWARD", *spec], check=False).returncode != 0:
            _run(["-I", "FORWARD", "1", *spec])
    return True


def our_rules() -> list[str]:
    """Our rules as ``iptables -S`` lines."""
    if _iptables() is None:
        return []
    p = _run(["-t", "filter", "-S", "FORWARD"], check=False)
    return [ln for ln in p.stdout.splitlines() if f"--comment {COMMENT}" in ln and ln.startswith("-A ")]


def remove_bridge_rules(bridge: str | None = None) -> int:
    """Delete our rules for ``bridge`` (every bridge when None); the number deleted."""
    n = 0
    for line in our_rules():
        words = line.split()
        if bridge is not None and not ({"-i", "-o"} & {words[i - 1] for i, w in enumerate(words) if w == bridge}):
            continue
        _run(["-D", *words[1:]])
        n += 1
    return n


def bridges_with_rules() -> set[str]:
    out: set[str] = set()
    for line in our_rules():
        words = line.split()
        for i, w in enumerate(words[:-1]):
            if w in ("-i", "-o"):
                out.add(words[i + 1])
    return out
