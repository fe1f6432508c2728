"""Names that mark kernel objects as ours, per daemon instance.

Reconcile deletes every bridge, veth, nft table and iptables rule whose name says it is ours
and that no record accounts for, so two daemons on one host (a test daemon next to the real
one) must not share names. ``instance`` ("" for the main daemon, else 1-3 of [a-z0-9]) is
woven into every name::

    instance ""      instance "t1"
    dockyard0        dyt1-default     the default bridge network's bridge
    dy-<id12>        dyt1-<id10>      a user network's bridge
    dyv<id12>        dyt1v<id10>      the host end of a container's veth pair
    ip/inet dockyard ip/inet dockyard_t1   nftables tables
    dockyard         dockyard_t1      iptables: comment of the FORWARD jump to the chain of
    DOCKYARD         DOCKYARD_T1      our ACCEPT rules (only with a FORWARD policy of DROP)

All interface names stay within IFNAMSIZ-1 = 15 bytes. Links are matched by prefix *and*
kind (bridge or veth), so one instance's prefixes never claim another's objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

_INSTANCE = re.compile(r"[a-z0-9]{0,3}")


@dataclass(frozen=True)
class Naming:
    instance: str = ""

    def __post_init__(self) -> None:
        if not _INSTANCE.fullmatch(self.instance):
            raise InvalidArgument(f"invalid network instance name {self.instance!r}: 0-3 of [a-z0-9]")

    @property
    def default_bridge(self) -> str:
        return f"dy{self.instance}-default" if self.instance else "dockyard0"

    @property
    def bridge_prefix(self) -> str:
        return f"dy{self.instance}-"

    @property
    def veth_prefix(self) -> str:
        return f"dy{self.instance}v" if self.instance else "dyv"

    @property
    def table(self) -> str:
        return f"dockyard_{self.instance}" if self.instance else "dockyard"

    @property
    def comment(self) -> str:
        return self.table

    def bridge_for(self, network_id: str) -> str:
        return (self.bridge_prefix + network_id)[:15]

    def veth_for(self, endpoint_id: str) -> str:
        return (self.veth_prefix + endpoint_id)[:15]

    def is_ours(self, name: str, kind: str) -> bool:
        if kind == "bridge":
            return name == self.default_bridge or name.startswith(self.bridge_prefix)
        if kind == "veth":
            return name.startswith(self.veth_prefix)
        return False


DEFAULT = Naming()
