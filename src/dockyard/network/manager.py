"""NetworkManager: the one object the engine talks to for container networking.

Synchronous and thread-safe (one lock); the daemon calls it from a worker thread. All kernel
objects are created in the network namespace of the thread that constructed the manager
(the daemon's: the host's), except what ``connect`` puts into a container's namespace.

Lifecycle::

    mgr = NetworkManager(state_dir)          # loads records; touches no kernel object
    mgr.restore()                            # daemon start: bridges, nft rules, port sockets back
    mgr.ensure_predefined()                  # "bridge" (dockyard0), "host", "none"
    mgr.reconcile(live_container_ids)        # drop what dead containers left (after a crash)
    net = mgr.create_network(NetworkSpec(name="app", subnet="10.213.0.0/24"))
    ep  = mgr.connect(net.id, cid, "/proc/<pid>/ns/net", name="web", aliases=("www",))
    pp  = mgr.publish(cid, ep, parse_port_spec("127.0.0.1:8080:80"))
    ...  mgr.resolve(cid, "web") -> ["10.213.0.2"]   (the embedded DNS's lookup function)
    mgr.release_container(cid)               # stop: unpublish + disconnect everywhere
    mgr.remove_network(net.id)
    mgr.close()

State: see :mod:`dockyard.network.store`. Every multi-step operation undoes its completed
steps when a later one fails, so a failed connect/publish leaves no veth, rule, socket or
allocated address behind.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from ipaddress import IPv4Network
from pathlib import Path

from dockyard.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PermissionDenied
from dockyard.network import bridge as br
from dockyard.network import fwpolicy, ipam, rules, store
from dockyard.network.model import (
    DRIVER_BRIDGE,
    DRIVER_HOST,
    DRIVER_NULL,
    OPT_BRIDGE_NAME,
    OPT_DEFAULT_BRIDGE,
    OPT_GATEWAY_MODE,
    OPT_HOST_BINDING,
    OPT_ICC,
    OPT_MASQUERADE,
    OPT_MTU,
    Endpoint,
    Network,
)
from dockyard.network.naming import Naming
from dockyard.network.portmap import PortReserver, PublishedPort, Reservation
from dockyard.network.portspec import PortBinding
from dockyard.network.rtnl import Rtnl

log = logging.getLogger("dockyard.network")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _bool_opt(opts: Mapping[str, str], key: str, default: bool) -> bool:
    if key not in opts:
        return default
    v = str(opts[key])
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InvalidArgument(f"invalid value {v!r} for option {key}: expected a boolean")


def _quarantine(path: Path, err: Exception) -> None:
    """A record we cannot read (hand-edited, disk trouble) is moved aside, not fatal: the
    daemon starts, reconcile removes the kernel objects nobody accounts for any more."""
    log.warning("network record %s is unreadable (%s); moved to %s.corrupt", path, err, path.name)
    os.replace(path, path.with_name(path.name + ".corrupt"))


@dataclass(frozen=True)
class NetworkSpec:
    """What ``docker network create`` asks for."""

    name: str
    driver: str = DRIVER_BRIDGE
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    aux_addresses: Mapping[str, str] = field(default_factory=dict)  # --aux-address name=ip
    internal: bool = False
    options: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ManagerConfig:
    default_bridge_subnet: str | None = None  # None: the first default pool clashing with nothing
    default_pools: tuple[IPv4Network, ...] = ipam.DEFAULT_POOLS
    enable_ip_forward: bool = True
    handle_forward_drop: bool = True  # add ACCEPT rules when iptables FORWARD policy is DROP
    port_nat: bool = True  # DNAT published ports; False: the daemon runs proxy.UserlandProxy
    instance: str = ""  # "" for the main daemon; others (tests) get names of their own: naming
    # dockerd's --ip / "ip": the host address ports on the default bridge bind to when -p names
    # none ("" = 0.0.0.0, every host address)
    default_bind_ip: str = ""
    # dockerd's --default-network-opt / "default-network-opts": driver -> options that new
    # networks get unless their create names them
    default_network_opts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


class NetworkManager:
    def __init__(self, state_dir: str | os.PathLike[str], config: ManagerConfig | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.config = config or ManagerConfig()
        self._lock = threading.RLock()
        self.naming = Naming(self.config.instance)
        self._ipr = Rtnl()
        self._closed = False
        self._reserver = PortReserver(reuse_addr=not self.config.port_nat)
        self._reservations: dict[str, list[Reservation]] = {}
        self._ports: dict[str, list[PublishedPort]] = {}
        # copy-on-write: every change installs a new dict, so resolve() (called from the DNS
        # server's event loop) reads a consistent snapshot without waiting for the lock,
        # which a connect or disconnect holds for 5-25 ms
        self._nets: dict[str, Network] = {}
        for p in store.list_json(self.state_dir / "networks"):
            try:
                n = Network.from_json(store.read_json(p))
            except (ValueError, KeyError, TypeError) as e:
                _quarantine(p, e)
                continue
            self._nets[n.id] = n
        for p in store.list_json(self.state_dir / "ports"):
            try:
                self._ports[p.stem] = [PublishedPort.from_json(d) for d in store.read_json(p)["ports"]]
            except (ValueError, KeyError, TypeError) as e:
                _quarantine(p, e)

    # ---- queries -------------------------------------------------------------------------
    def list_networks(self) -> list[Network]:
        with self._lock:
            return sorted(self._nets.values(), key=lambda n: n.created)

    def get(self, ref: str) -> Network:
        """By full id, exact name, or unique id prefix (docker's lookup order)."""
        with self._lock:
            if ref in self._nets:
                return self._nets[ref]
            for n in self._nets.values():
                if n.name == ref:
                    return n
            found = [n for n in self._nets.values() if ref and n.id.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(found)} matches found based on ID prefix)")
            raise NotFound(f"network {ref} not found")

    def ports_of(self, container_id: str) -> list[PublishedPort]:
        with self._lock:
            return list(self._ports.get(container_id, []))

    def endpoints_of(self, container_id: str) -> list[Endpoint]:
        with self._lock:
            return [n.endpoints[container_id] for n in self._nets.values() if container_id in n.endpoints]

    def host_gateway_ip(self) -> str | None:
        """The default bridge's gateway: what ``--add-host x:host-gateway`` resolves to."""
        with self._lock:
            for n in self._nets.values():
                if n.options.get(OPT_DEFAULT_BRIDGE) == "true" and n.pool:
                    return str(n.pool.gateway)
            return None

    def resolve(self, container_id: str, name: str) -> list[str] | None:
        """Embedded DNS lookup: ``name`` among the endpoints sharing a network with the
        asker (the default bridge included, which docker doesn't do): container name, aliases,
        12-char id, each also as ``<name>.<network>``; and the asker's own legacy links on that
        network (alias -> the linked container's name there). None when unknown (the query is
        then forwarded upstream)."""
        name = name.lower().rstrip(".")
        found: list[str] = []
        for n in self._nets.values():  # a snapshot: see __init__
            asker = n.endpoints.get(container_id)
            if asker is None:
                continue
            suffix = "." + n.name.lower()
            short = name[: -len(suffix)] if name.endswith(suffix) else name
            short = next((target.lower() for alias, target in asker.links if alias.lower() == short), short)
            for e in n.endpoints.values():
                names = {e.name.lower(), e.container_id[:12], *(a.lower() for a in e.aliases)}
                if short in names and e.ip and e.ip not in found:
                    found.append(e.ip)
        return found or None

    def reverse(self, container_id: str, ip: str) -> str | None:
        """PTR lookup: ``<container>.<network>`` for an address on the asker's networks."""
        for n in self._nets.values():
            if container_id not in n.endpoints:
                continue
            for e in n.endpoints.values():
                if e.ip == ip and e.name:
                    return f"{e.name}.{n.name}"
        return None

    # ---- networks ------------------------------------------------------------------------
    def _save(self, n: Network) -> None:
        store.write_json(self.state_dir / "networks" / f"{n.id}.json", n.to_json())
        self._nets = {**self._nets, n.id: n}

    def _forget(self, nid: str) -> None:
        self._nets = {k: v for k, v in self._nets.items() if k != nid}

    def _taken_subnets(self) -> list[IPv4Network]:
        return [n.pool.subnet for n in self._nets.values() if n.pool]

    def create_network(self, spec: NetworkSpec, *, predefined: bool = False) -> Network:
        with self._lock:
            if not spec.name or "/" in spec.name:
                raise InvalidArgument(f"invalid network name {spec.name!r}")
            if any(n.name == spec.name for n in self._nets.values()):
                raise AlreadyExists(f"network with name {spec.name} already exists")
            if not predefined and spec.driver in (DRIVER_HOST, DRIVER_NULL):
                raise PermissionDenied(f"only one instance of \"{spec.driver}\" network is allowed")
            if spec.driver not in (DRIVER_BRIDGE, DRIVER_HOST, DRIVER_NULL):
                raise NotFound(f"plugin \"{spec.driver}\" not found")
            nid = secrets.token_hex(32)
            created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            defaults = {} if predefined else dict(self.config.default_network_opts.get(spec.driver) or {})
            opts = {str(k): str(v) for k, v in {**defaults, **spec.options}.items()}
            if spec.driver != DRIVER_BRIDGE:
                n = Network(nid, spec.name, spec.driver, created, predefined=predefined,
                            options=opts, labels=dict(spec.labels))
                self._save(n)
                return n
            return self._create_bridge_network(nid, created, spec, opts, predefined)

    def _create_bridge_network(self, nid: str, created: str, spec: NetworkSpec,
                               opts: dict[str, str], predefined: bool) -> Network:
        if spec.subnet:
            pool = ipam.make_pool(spec.subnet, spec.gateway, spec.ip_range,
                                  existing=self._taken_subnets(), aux_addresses=spec.aux_addresses)
        else:
            if spec.gateway or spec.ip_range or spec.aux_addresses:
                raise InvalidArgument("--gateway, --ip-range and --aux-address need --subnet")
            subnet = ipam.choose_subnet(self._taken_subnets(), ipam.host_routes(),
                                        self.config.default_pools)
            pool = ipam.make_pool(str(subnet), user_subnet=False)
        default = opts.get(OPT_DEFAULT_BRIDGE) == "true"
        name = opts.get(OPT_BRIDGE_NAME) or (self.naming.default_bridge if default
                                             else self.naming.bridge_for(nid))
        br.check_ifname(name)
        if any(n.bridge == name for n in self._nets.values()):
            raise Conflict(f"bridge name {name} is used by another network")
        try:
            mtu = int(opts.get(OPT_MTU, "1500") or 1500)
        except ValueError:
            raise InvalidArgument(f"invalid value {opts[OPT_MTU]!r} for option {OPT_MTU}") from None
        if not 68 <= mtu <= 65535:
            raise InvalidArgument(f"invalid MTU {mtu} in option {OPT_MTU}: 68..65535")
        mode = opts.get(OPT_GATEWAY_MODE, "nat") or "nat"
        if mode not in ("nat", "nat-unprotected", "routed"):
            raise InvalidArgument(f"invalid value {mode!r} for option {OPT_GATEWAY_MODE}: "
                                  "expected nat, nat-unprotected or routed")
        n = Network(
            nid, spec.name, DRIVER_BRIDGE, created, bridge=name,
            # a leftover bridge with one of our names (state lost) is ours to delete as well
            bridge_created=(br.link_index(self._ipr, name) is None
                            or self.naming.is_ours(name, "bridge")), pool=pool,
            internal=spec.internal, icc=_bool_opt(opts, OPT_ICC, True),
            masquerade=_bool_opt(opts, OPT_MASQUERADE, True) and mode != "routed",
            protect=mode == "nat", mtu=mtu,
            host_binding_ipv4=opts.get(OPT_HOST_BINDING, ""), predefined=predefined,
            options=opts, labels=dict(spec.labels),
        )
        with ExitStack() as undo:
            self._bring_up(n)
            undo.callback(self._tear_down, n)
            self._save(n)
            undo.callback(store.remove, self.state_dir / "networks" / f"{n.id}.json")
            undo.callback(self._forget, n.id)
            self._sync_rules()
            undo.pop_all()
        return n

    def _bring_up(self, n: Network) -> None:
        assert n.pool is not None
        br.create_bridge(self._ipr, br.BridgeConfig(n.bridge, str(n.pool.gateway),
                                                    n.pool.subnet.prefixlen, n.mtu))
        try:
            if not n.internal and self.config.enable_ip_forward:
                br.set_ip_forward()
            if self.config.handle_forward_drop:
                fwpolicy.ensure_bridge_rules(n.bridge, n.internal, self.naming.comment)
        except BaseException:
            self._tear_down(n)
            raise

    def _tear_down(self, n: Network) -> None:
        if n.bridge_created:
            br.delete_link(self._ipr, n.bridge)
        elif n.pool is not None:  # someone else's bridge: take back only our gateway address
            br.remove_address(self._ipr, n.bridge, str(n.pool.gateway), n.pool.subnet.prefixlen)
        if self.config.handle_forward_drop:
            fwpolicy.remove_bridge_rules(n.bridge, self.naming.comment)

    def _sync_rules(self) -> None:
        nets = [rules.NetRules(n.bridge, str(n.pool.subnet), n.internal, n.icc, n.masquerade, n.protect)
                for n in self._nets.values() if n.driver == DRIVER_BRIDGE and n.pool]
        if not nets:
            rules.teardown(self.naming.table)
            return
        nat = [(cid, p) for cid, ps in self._ports.items() for p in ps] if self.config.port_nat else []
        rules.apply(nets, nat, self.naming.table)

    def remove_network(self, ref: str) -> None:
        with self._lock:
            n = self.get(ref)
            if n.predefined:
                raise PermissionDenied(f"{n.name} is a pre-defined network and cannot be removed")
            if n.endpoints:
                raise Conflict(f"error while removing network: network {n.name} id {n.id} has active endpoints")
            self._forget(n.id)
            store.remove(self.state_dir / "networks" / f"{n.id}.json")
            if n.driver == DRIVER_BRIDGE:
                self._tear_down(n)
                self._sync_rules()

    def ensure_predefined(self) -> None:
        """Create docker's three predefined networks if they are missing."""
        with self._lock:
            names = {n.name for n in self._nets.values()}
            if "bridge" not in names:
                self.create_network(NetworkSpec(
                    name="bridge", subnet=self.config.default_bridge_subnet,
                    options={OPT_DEFAULT_BRIDGE: "true", OPT_BRIDGE_NAME: self.naming.default_bridge,
                             OPT_ICC: "true", OPT_MASQUERADE: "true"},
                ), predefined=True)
            if "host" not in names:
                self.create_network(NetworkSpec(name="host", driver=DRIVER_HOST), predefined=True)
            if "none" not in names:
                self.create_network(NetworkSpec(name="none", driver=DRIVER_NULL), predefined=True)

    # ---- endpoints -----------------------------------------------------------------------
    def connect(self, ref: str, container_id: str, netns_path: str, *, name: str = "",
                aliases: Iterable[str] = (), ip: str | None = None, mac: str | None = None,
                links: Iterable[tuple[str, str]] = ()) -> Endpoint:
        """Attach a container's namespace to a network: veth, address, MAC, default route.
        ``links``: (alias, container name) pairs only this container resolves (legacy links)."""
        links = tuple((str(a), str(t)) for a, t in links)
        with self._lock:
            n = self.get(ref)
            if container_id in n.endpoints:
                raise Conflict(f"endpoint with name {name or container_id} already exists in network {n.name}")
            if n.driver != DRIVER_BRIDGE or n.pool is None:
                ep = Endpoint(secrets.token_hex(32), n.id, container_id, name, tuple(aliases), "", 0,
                              "", None, "", "", netns_path, links)
                self._save(replace(n, endpoints={**n.endpoints, container_id: ep}))
                return ep
            if ip is not None and n.options.get(OPT_DEFAULT_BRIDGE) == "true":
                raise InvalidArgument("user specified IP address is supported on user defined networks only")
            pool, addr = n.pool.allocate(ip)
            used = {e.ifname for e in self.endpoints_of(container_id)}
            ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
            epid = secrets.token_hex(32)
            ep = Endpoint(
                epid, n.id, container_id, name, tuple(aliases), str(addr), n.pool.subnet.prefixlen,
                mac or br.mac_for_ip(str(addr)), None if n.internal else str(n.pool.gateway),
                self.naming.veth_for(epid), ifname, netns_path, links,
            )
            br.attach(self._ipr, br.Attachment(
                n.bridge, ep.host_ifname, netns_path, ep.ifname, ep.mac, ep.ip, ep.prefixlen,
                ep.gateway, n.mtu))
            try:
                self._save(replace(n, pool=pool, endpoints={**n.endpoints, container_id: ep}))
            except BaseException:
                br.detach(self._ipr, ep.host_ifname)
                raise
            return ep

    def disconnect(self, ref: str, container_id: str) -> None:
        with self._lock:
            n = self.get(ref)
            ep = n.endpoints.get(container_id)
            if ep is None:
                raise NotFound(f"container {container_id} is not connected to network {n.name}")
            if ep.host_ifname and os.path.exists(ep.netns_path):
                br.detach(self._ipr, ep.host_ifname)
            # else the container's namespace is gone and the kernel deletes both ends of the
            # pair with it, off our path (a netlink delete waits 10-25 ms for RCU)
            pool = n.pool.release(ep.ip) if n.pool and ep.ip else n.pool
            eps = {k: v for k, v in n.endpoints.items() if k != container_id}
            self._save(replace(n, pool=pool, endpoints=eps))

    # ---- ports ---------------------------------------------------------------------------
    def default_host_ip(self, n: Network) -> str:
        """Where ``-p 8080:80`` (no host address) binds on ``n``: its host_binding_ipv4
        option, else on the default bridge the daemon's ``--ip``; "" means 0.0.0.0."""
        if n.host_binding_ipv4:
            return n.host_binding_ipv4
        if n.options.get(OPT_DEFAULT_BRIDGE) == "true":
            return self.config.default_bind_ip
        return ""

    def exposure_warnings(self, ref: str, bindings: Iterable[PortBinding]) -> list[str]:
        """Warnings for a container create: ports that will listen on every host address."""
        try:
            n = self.get(ref)
        except NotFound:
            return []
        if n.internal or n.driver != DRIVER_BRIDGE:
            return []
        wide = sorted({f"{b.host_port_text() or '*'}->{b.key}" for b in bindings
                       if (b.host_ip or self.default_host_ip(n)) in ("", "0.0.0.0")})
        if not wide:
            return []
        return [f"Published ports {', '.join(wide)} listen on every host address (0.0.0.0) and "
                "bypass the host's firewall rules (their DNAT happens before the INPUT chain). "
                "Publish on 127.0.0.1 (-p 127.0.0.1:8080:80), or start dockyardd with "
                "--ip 127.0.0.1 to make loopback the default."]

    def publish(self, container_id: str, endpoint: Endpoint,
                bindings: Iterable[PortBinding]) -> list[PublishedPort]:
        """Reserve host ports and add DNAT rules towards ``endpoint``'s address."""
        with self._lock:
            n = self.get(endpoint.network_id)
            bindings = list(bindings)
            if not bindings or n.internal or not endpoint.ip:
                return []  # docker publishes nothing from internal networks
            if container_id in self._ports:
                raise Conflict(f"ports of container {container_id} are published already")
            with ExitStack() as undo:
                held: list[Reservation] = []
                for b in bindings:
                    if not b.host_ip and self.default_host_ip(n):
                        b = replace(b, host_ip=self.default_host_ip(n))
                    r = self._reserver.reserve(b, endpoint.ip)
                    undo.callback(r.release)
                    held.append(r)
                ports = [r.port for r in held]
                if self.config.port_nat:
                    rules.add_ports(container_id, ports, self.naming.table)
                    undo.callback(rules.remove_ports, container_id, self.naming.table)
                store.write_json(self.state_dir / "ports" / f"{container_id}.json",
                                 {"ports": [p.to_json() for p in ports]})
                undo.pop_all()
            self._reservations[container_id] = held
            self._ports[container_id] = ports
            return ports

    def proxy_sockets(self, container_id: str) -> list[tuple[socket.socket, PublishedPort]]:
        """Duplicates of the sockets reserving ``container_id``'s host ports, for the
        userland proxy (the manager keeps its own, so the port stays reserved until unpublish;
        the proxy must be stopped before unpublish so the port is really free then)."""
        with self._lock:
            return [(r.dup(), r.port) for r in self._reservations.get(container_id, [])
                    if r.has_socket]

    def unpublish(self, container_id: str) -> None:
        with self._lock:
            ports = self._ports.pop(container_id, None)
            for r in self._reservations.pop(container_id, []):
                r.release()
            if ports is not None and self.config.port_nat:
                rules.remove_ports(container_id, self.naming.table)
            store.remove(self.state_dir / "ports" / f"{container_id}.json")

    def release_container(self, container_id: str) -> None:
        """Container stop: unpublish its ports and disconnect it from every network."""
        with self._lock:
            self.unpublish(container_id)
            for ep in self.endpoints_of(container_id):
                self.disconnect(ep.network_id, container_id)

    # ---- restart and crash recovery ------------------------------------------------------
    def restore(self) -> list[str]:
        """Daemon start: recreate bridges and rules from the records, take the host ports again.

        Returns messages for ports that could not be re-reserved (taken meanwhile); their
        rules stay, as the container still runs.
        """
        problems: list[str] = []
        with self._lock:
            for n in self._nets.values():
                if n.driver == DRIVER_BRIDGE and n.pool:
                    self._bring_up(n)
            for cid, ports in self._ports.items():
                held = []
                for p in ports:
                    try:
                        held.append(self._reserver.rebind(p))
                    except Conflict as e:
                        problems.append(f"container {cid}: {e}")
                self._reservations[cid] = held
            if self._nets:
                self._sync_rules()
        return problems

    def reconcile(self, live_containers: Iterable[str]) -> list[str]:
        """Remove everything of ours that no live container or known network accounts for:
        endpoints and ports of dead containers, stray bridges/veths with our prefixes, our
        iptables rules for unknown bridges; then rewrite the nft tables. Returns what it did."""
        live = set(live_containers)
        done: list[str] = []
        with self._lock:
            for cid in [c for c in self._ports if c not in live]:
                self.unpublish(cid)
                done.append(f"unpublished ports of {cid}")
            for p in store.list_json(self.state_dir / "ports"):
                if p.stem not in live:
                    store.remove(p)
            for n in list(self._nets.values()):
                for cid in [c for c in n.endpoints if c not in live]:
                    self.disconnect(n.id, cid)
                    done.append(f"disconnected {cid} from {n.name}")
            bridges = {n.bridge for n in self._nets.values() if n.bridge}
            veths = {e.host_ifname for n in self._nets.values() for e in n.endpoints.values()}
            for name, kind in br.our_links(self._ipr, self.naming):
                if name in bridges or name in veths:
                    continue
                if kind == "bridge" or kind == "veth":
                    if br.delete_link(self._ipr, name):
                        done.append(f"deleted {kind} {name}")
            if self.config.handle_forward_drop:
                for b in fwpolicy.bridges_with_rules(self.naming.comment) - bridges:
                    fwpolicy.remove_bridge_rules(b, self.naming.comment)
                    done.append(f"deleted iptables FORWARD rules of {b}")
            self._sync_rules()
        return done

    def purge(self) -> None:
        """Remove everything of this instance: ports, endpoints, every network (predefined
        ones too) with their records, bridges, veths, nft tables and iptables rules. For test
        daemons' teardown and an uninstall; the main daemon keeps its networks across stops."""
        with self._lock:
            if self._closed:  # a teardown utility: works after close() too
                self._ipr = Rtnl()
                self._closed = False
            for cid in list(self._ports):
                self.unpublish(cid)
            for n in list(self._nets.values()):
                for cid in list(n.endpoints):
                    self.disconnect(n.id, cid)
            for n in list(self._nets.values()):
                self._forget(n.id)
                store.remove(self.state_dir / "networks" / f"{n.id}.json")
                if n.driver == DRIVER_BRIDGE:
                    self._tear_down(n)
            for name, _kind in br.our_links(self._ipr, self.naming):
                br.delete_link(self._ipr, name)
            if self.config.handle_forward_drop:
                fwpolicy.remove_bridge_rules(None, self.naming.comment)
            rules.teardown(self.naming.table)

    def close(self) -> None:
        """Release port sockets and the netlink socket (kernel objects stay: restore() later).
        Idempotent."""
        with self._lock:
            for held in self._reservations.values():
                for r in held:
                    r.release()
            self._reservations.clear()
            if not self._closed:
                self._ipr.close()
                self._closed = True
