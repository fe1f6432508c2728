"""One call per container for the engine: its namespace, networks, ports and /etc files.

``setup`` is the network step of a container start, ``teardown`` its undo (stop, failed
start). Between them::

    setup(mgr, spec, netns_path, host_resolv_text)
      1. netns.create_named(netns_path)          a new namespace the runtime will join by path
         (attach(...) = steps 2-4 alone: the engine runs them while the runtime creates the
         container in the namespace, so they cost a start almost nothing)
      2. mgr.connect(...) for each network        veth, eth0..n, address, MAC, default route
      3. mgr.publish(...) on the first network    host ports reserved, DNAT rules
      4. /etc/hosts, resolv.conf, hostname text   returned; the engine writes the files
    -> ContainerNetwork; the engine then, on its loop, if ``embedded_dns``:
       udp, tcp = dns.open_sockets(netns_path); await dns_server.add(cid, udp, tcp,
                                                                     upstreams=cn.dns_upstreams)

    teardown(mgr, cid, netns_path)                (after ``await dns_server.remove(cid)``)
      unpublish, remove the namespace's mount (with the container's processes gone it dies
      and the kernel deletes the veths), disconnect everywhere

A failure in ``setup`` undoes the completed steps before re-raising. Every bridge container
gets the embedded DNS (127.0.0.11), which forwards what it doesn't know to the host's
resolvers (or ``--dns``). Unlike docker, this includes the default bridge: containers there
resolve each other by name too (issue 6), and one that later joins a user network needs no
resolv.conf change.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field

from dockyard.errors import InvalidArgument
from dockyard.network import etcfiles, netns
from dockyard.network.manager import NetworkManager
from dockyard.network.model import DRIVER_BRIDGE, Endpoint
from dockyard.network.portmap import PublishedPort
from dockyard.network.portspec import PortBinding


@dataclass(frozen=True)
class NetworkRequest:
    """``--network`` / ``--network-alias`` / ``--ip`` / ``--mac-address`` for one network."""

    network: str  # id, name or id prefix; "default" means the predefined "bridge"
    aliases: tuple[str, ...] = ()
    ip: str | None = None
    mac: str | None = None
    # legacy links on this network, (alias, container name): the embedded DNS answers the
    # alias with that container's address, for this container only (libnetwork's ep.aliases)
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ContainerNetworkSpec:
    container_id: str
    name: str  # without docker's leading "/"
    hostname: str
    networks: tuple[NetworkRequest, ...]
    domainname: str = ""
    ports: tuple[PortBinding, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerNetwork:
    netns_path: str
    endpoints: tuple[Endpoint, ...]
    ports: tuple[PublishedPort, ...]
    hosts: str
    resolv_conf: str
    hostname: str
    embedded_dns: bool  # serve 127.0.0.11 in the namespace (every bridge container)
    dns_upstreams: tuple[tuple[str, int], ...] = field(default=())  # the container's --dns


def setup(mgr: NetworkManager, spec: ContainerNetworkSpec, netns_path: str,
          host_resolv_text: str) -> ContainerNetwork:
    """The namespace and everything in it: :func:`netns.create_named` then :func:`attach`."""
    netns.create_named(netns_path)
    try:
        return attach(mgr, spec, netns_path, host_resolv_text)
    except BaseException:
        netns.remove_named(netns_path)
        raise


def attach(mgr: NetworkManager, spec: ContainerNetworkSpec, netns_path: str,
           host_resolv_text: str) -> ContainerNetwork:
    """Steps 2-4 of :func:`setup` into an existing namespace (the engine creates it first and
    attaches while the runtime creates the container in it). On failure the endpoints and
    ports made so far are undone; the namespace stays, the caller's to remove."""
    if not spec.networks:
        raise InvalidArgument("a bridge container needs at least one network")
    cid = spec.container_id
    nets = [mgr.get("bridge" if r.network == "default" else r.network) for r in spec.networks]
    for n in nets:
        if n.driver != DRIVER_BRIDGE:
            raise InvalidArgument(f"container cannot be connected to {n.driver} network {n.name} "
                                  "together with others; use --network host|none alone")
    with ExitStack() as undo:
        eps: list[Endpoint] = []
        for req, n in zip(spec.networks, nets, strict=True):
            eps.append(mgr.connect(n.id, cid, netns_path, name=spec.name, aliases=req.aliases,
                                   ip=req.ip, mac=req.mac, links=req.links))
            undo.callback(mgr.disconnect, n.id, cid)
        ports = mgr.publish(cid, eps[0], spec.ports) if spec.ports else []
        undo.callback(mgr.unpublish, cid)
        embedded = True  # every bridge network, the default one included: see the docstring
        rc = etcfiles.resolv_conf(host_resolv_text, embedded_dns=embedded, dns=spec.dns,
                                  dns_search=spec.dns_search, dns_options=spec.dns_options)
        hosts = etcfiles.hosts_file(spec.hostname, [e.ip for e in eps], domainname=spec.domainname,
                                    extra_hosts=spec.extra_hosts, host_gateway=mgr.host_gateway_ip())
        undo.pop_all()
    return ContainerNetwork(
        netns_path, tuple(eps), tuple(ports), hosts, rc.text, etcfiles.hostname_file(spec.hostname),
        embedded, tuple((s, 53) for s in rc.upstreams) if spec.dns else (),
    )


def teardown(mgr: NetworkManager, container_id: str, netns_path: str | None,
             shared: bool = False) -> None:
    """Undo :func:`setup` (idempotent). Call after the DNS sockets are removed and, best,
    after the container's processes are gone (then no veth has to be deleted by hand).
    ``shared``: other containers' processes are in the namespace (``--network container:``)
    and keep it alive after the mount is gone, so the endpoints are disconnected first,
    while the namespace is still named: that deletes the veths, as dockerd does, instead of
    leaving them (and a released address) answering inside the joiners' namespace."""
    if shared:
        mgr.release_container(container_id)
    mgr.unpublish(container_id)
    if netns_path:
        netns.remove_named(netns_path)
    mgr.release_container(container_id)

