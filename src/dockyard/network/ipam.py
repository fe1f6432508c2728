"""IPv4 address management: one pool per network.

A :class:`Pool` is a value (frozen): the subnet, the gateway, the optional ``--ip-range`` that
dynamic allocations are drawn from, and the set of addresses in use. ``allocate``/``release``
return a new pool; the manager persists it with the network record, so nothing here does I/O
except :func:`host_routes`, which reads the calling thread's routing table.

Rules (docker's, libnetwork ipams/defaultipam):

- the network and broadcast addresses and the gateway are never handed out;
- nor are the auxiliary addresses (``--aux-address name=ip``: hosts the user keeps on the
  subnet), neither dynamically nor as a static ``--ip`` ("Address already in use");
- dynamic addresses come from ``ip_range`` (or the whole subnet), lowest free first;
- a static address (``--ip``) may lie anywhere in the subnet but must be free;
- two networks' subnets may not overlap: "Pool overlaps with other one on this address space";
- a subnet chosen automatically also avoids every route of the host (and docker0's
  172.17.0.0/16, which a co-resident dockerd uses even when it is down).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network

from dockyard.errors import Conflict, InvalidArgument, Unavailable

OVERLAP_MESSAGE = "Pool overlaps with other one on this address space"

# docker's default address pools: 172.17-31.0.0/16 then 192.168.0.0/16 cut into /20s. We skip
# 172.17.0.0/16 (docker0) for every network, the default bridge included.
DEFAULT_POOLS: tuple[IPv4Network, ...] = tuple(
    [IPv4Network(f"172.{b}.0.0/16") for b in range(18, 32)]
    + list(IPv4Network("192.168.0.0/16").subnets(new_prefix=20))
)
DOCKER0 = IPv4Network("172.17.0.0/16")


@dataclass(frozen=True)
class Pool:
    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network | None = None
    allocated: frozenset[IPv4Address] = field(default_factory=frozenset)
    user_subnet: bool = False  # static --ip is only allowed on user-configured subnets (docker)
    aux: tuple[tuple[str, IPv4Address], ...] = ()  # (name, address), sorted by name

    @property
    def aux_addresses(self) -> dict[str, str]:
        """What network inspect shows as ``AuxiliaryAddresses``."""
        return {k: str(v) for k, v in self.aux}

    def to_json(self) -> dict[str, object]:
        return {
            "subnet": str(self.subnet),
            "gateway": str(self.gateway),
            "ip_range": str(self.ip_range) if self.ip_range else None,
            "allocated": sorted(str(a) for a in self.allocated),
            "user_subnet": self.user_subnet,
            "aux": self.aux_addresses,
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Pool:
        return cls(
            subnet=IPv4Network(str(d["subnet"])),
            gateway=IPv4Address(str(d["gateway"])),
            ip_range=IPv4Network(str(d["ip_range"])) if d.get("ip_range") else None,
            allocated=frozenset(IPv4Address(a) for a in d.get("allocated", []) or []),  # type: ignore[union-attr]
            user_subnet=bool(d.get("user_subnet", False)),
            aux=tuple((str(k), IPv4Address(str(v))) for k, v in sorted(dict(d.get("aux") or {}).items())),  # type: ignore[call-overload]
        )

    def _reserved(self, addr: IPv4Address) -> bool:
        return addr in (self.subnet.network_address, self.subnet.broadcast_address, self.gateway)

    def allocate(self, ip: str | IPv4Address | None = None) -> tuple[Pool, IPv4Address]:
        """Take ``ip`` (static) or the lowest free address; return the new pool and the address."""
        if ip is not None:
            addr = _parse_addr(ip, "IPv4Address")
            if not self.user_subnet:
                raise InvalidArgument(
                    "user specified IP address is supported only when connecting to networks "
                    "with user configured subnets"
                )
            if addr not in self.subnet or self._reserved(addr):
                raise InvalidArgument(
                    f"no configured subnet or ip-range contain the IP address {addr}"
                )
            if addr in self.allocated or any(addr == a for _, a in self.aux):
                raise Conflict(f"Address already in use: {addr}")
            return replace(self, allocated=self.allocated | {addr}), addr
        aux = {a for _, a in self.aux}
        for addr in self._candidates():
            if addr not in self.allocated and addr not in aux and not self._reserved(addr):
                return replace(self, allocated=self.allocated | {addr}), addr
        raise Unavailable(f"no available IPv4 addresses on this network's address pools ({self.subnet})")

    def _candidates(self) -> Iterator[IPv4Address]:
        # every address of the range: only the *subnet's* network/broadcast addresses and the
        # gateway are excluded (``_reserved``), so a range's own .0 is handed out, as docker does
        yield from self.ip_range or self.subnet

    def release(self, ip: str | IPv4Address) -> Pool:
        return replace(self, allocated=self.allocated - {IPv4Address(str(ip))})


def _parse_addr(value: str | IPv4Address, what: str) -> IPv4Address:
    try:
        return IPv4Address(str(value))
    except ValueError as e:
        raise InvalidArgument(f"invalid {what}: {value!r}") from e


def _parse_net(value: str, what: str) -> IPv4Network:
    try:
        return IPv4Network(value, strict=False)
    except ValueError as e:
        raise InvalidArgument(f"invalid {what}: {value!r}") from e


def make_pool(
    subnet: str,
    gateway: str | None = None,
    ip_range: str | None = None,
    *,
    existing: Iterable[IPv4Network] = (),
    user_subnet: bool = True,
    aux_addresses: Mapping[str, str] | None = None,
) -> Pool:
    """Validate a user's ``--subnet/--gateway/--ip-range/--aux-address`` against the other
    networks' subnets. An auxiliary address must be a host address of the subnet other than
    the gateway and other than another auxiliary address."""
    net = _parse_net(subnet, "subnet")
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {net} is too small: at least a /30 is needed")
    for other in existing:
        if net.overlaps(other):
            raise Conflict(OVERLAP_MESSAGE)
    gw = _parse_addr(gateway, "gateway") if gateway else next(net.hosts())
    if gw not in net or gw in (net.network_address, net.broadcast_address):
        raise InvalidArgument(f"gateway {gw} is not a host address of subnet {net}")
    rng = None
    if ip_range:
        rng = _parse_net(ip_range, "ip-range")
        if not rng.subnet_of(net):
            raise InvalidArgument(f"ip-range {rng} is not inside subnet {net}")
    aux: list[tuple[str, IPv4Address]] = []
    for name, value in sorted((aux_addresses or {}).items()):
        # dockerd's wording; it answers 403/500 for these, we answer 400 (the request is wrong)
        try:
            a = IPv4Address(str(value))
        except ValueError:
            raise InvalidArgument(f"non parsable secondary ip address ({name}:{value}) passed") from None
        if a not in net:
            raise InvalidArgument(f"auxiliary address: ({name}:{a}) must belong to the master pool: {net}")
        if a in (net.network_address, net.broadcast_address, gw) or any(a == b for _, b in aux):
            raise InvalidArgument(f"failed to allocate secondary ip address ({name}:{a}): Address already in use")
        aux.append((str(name), a))
    return Pool(subnet=net, gateway=gw, ip_range=rng, user_subnet=user_subnet, aux=tuple(aux))


def choose_subnet(
    taken: Iterable[IPv4Network],
    host: Iterable[IPv4Network],
    pools: Iterable[IPv4Network] = DEFAULT_POOLS,
) -> IPv4Network:
    """The first candidate pool clashing with no network of ours, no host route, nor docker0."""
    busy = [*taken, *host, DOCKER0]
    for cand in pools:
        if not any(cand.overlaps(b) for b in busy):
            return cand
    raise Unavailable("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")


def host_routes(proc_route: str = "/proc/thread-self/net/route") -> list[IPv4Network]:
    """Every IPv4 destination in the calling thread's main routing table, default route excluded.

    Connected subnets of the host's addresses appear here as kernel routes, so this covers
    addresses too. (``/proc/self/net`` would show the thread-group leader's namespace.)
    """
    nets: list[IPv4Network] = []
    with open(proc_route) as f:
        next(f, None)  # the header; a namespace with no interface up may print nothing at all
        for line in f:
            parts = line.split()
            if len(parts) < 8:
                continue
            dest = ipaddress.IPv4Address(int(parts[1], 16).to_bytes(4, "little"))
            mask = ipaddress.IPv4Address(int(parts[7], 16).to_bytes(4, "little"))
            net = IPv4Network(f"{dest}/{mask}", strict=False)
            if net.prefixlen > 0:
                nets.append(net)
    return nets
