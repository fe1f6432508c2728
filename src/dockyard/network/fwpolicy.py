"""Coexisting with a dockerd that set the iptables FORWARD policy to DROP.

An ``accept`` in our own nftables table does not override a ``drop`` in another table: each
base chain on the forward hook decides on its own, and a drop anywhere is final. So when the
``filter`` table's FORWARD chain has policy DROP, the only way through is a rule in that
chain. Both iptables back ends are checked (``iptables-nft`` and ``iptables-legacy`` keep
separate rule sets and dockerd may use either). We insert, per bridge, rules tagged with the
comment ``dockyard`` (so :func:`remove_bridge_rules` and reconcile find exactly ours)::

    -I FORWARD -i <br> -j ACCEPT                    (leaving the bridge; --internal: -i br -o br)
    -I FORWARD -o <br> -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT
                                                    (replies, and published ports)

With ``br_netfilter`` (``bridge-nf-call-iptables=1``), bridged container-to-container traffic
traverses FORWARD too, as ``-i br -o br``, which the first rule covers. Nothing is done when
the policy is ACCEPT or iptables is absent. These run on network create/remove only, so
forking iptables (a few ms) is acceptable there.
"""

from __future__ import annotations

import shutil
import subprocess

from dockyard.errors import Internal

COMMENT = "dockyard"  # the main daemon's; others pass naming.Naming.comment


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


def _specs(bridge: str, internal: bool, comment: str) -> list[list[str]]:
    tag = ["-m", "comment", "--comment", comment]
    if internal:
        return [["-i", bridge, "-o", bridge, *tag, "-j", "ACCEPT"]]
    return [
        ["-i", bridge, *tag, "-j", "ACCEPT"],
        ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", *tag, "-j", "ACCEPT"],
    ]


def ensure_bridge_rules(bridge: str, internal: bool = False, comment: str = COMMENT) -> bool:
    """Insert our ACCEPT rules where FORWARD drops; True if any back end needed them."""
    needed = False
    for exe in _variants():
        if not _drops(exe):
            continue
        needed = True
        for spec in _specs(bridge, internal, comment):
            if _run(exe, ["-C", "FORWARD", *spec], check=False).returncode != 0:
                _run(exe, ["-I", "FORWARD", "1", *spec])
    return needed


def _ours(exe: str, comment: str) -> list[str]:
    p = _run(exe, ["-t", "filter", "-S", "FORWARD"], check=False)
    return [ln for ln in p.stdout.splitlines()
            if ln.startswith("-A ") and f"--comment {comment} " in ln + " "]


def our_rules(comment: str = COMMENT) -> list[str]:
    """Our rules as ``iptables -S`` lines (all back ends)."""
    return [ln for exe in _variants() for ln in _ours(exe, comment)]


def _bridges_of(line: str) -> set[str]:
    words = line.split()
    return {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-i", "-o")}


def remove_bridge_rules(bridge: str | None = None, comment: str = COMMENT) -> int:
    """Delete our rules for ``bridge`` (every bridge when None); the number deleted."""
    n = 0
    for exe in _variants():
        for line in _ours(exe, comment):
            if bridge is None or bridge in _bridges_of(line):
                _run(exe, ["-D", *line.split()[1:]])
                n += 1
    return n


def bridges_with_rules(comment: str = COMMENT) -> set[str]:
    return {b for line in our_rules(comment) for b in _bridges_of(line)}
