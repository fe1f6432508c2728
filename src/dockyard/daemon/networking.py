"""The network step of a container start (and its undo), over ``dockyard.network``.

``--network none`` -> a new empty namespace (the runtime makes it); ``host`` -> the host's;
anything else (``default``/``bridge`` or a user network) -> ``network.container.setup`` makes a
named namespace at ``<exec-root>/netns/<id>`` with the veths, addresses and published ports,
and returns the /etc files, which are written over the container's own. Bridge containers (the
default bridge too) get the embedded DNS (127.0.0.11 in the namespace, answered by this daemon).

The networks a start attaches are kept on the record (:func:`desired_networks`): create's
NetworkingConfig, then edited by ``network connect``/``disconnect`` of a stopped container.

After a daemon restart, ``reattach_dns`` reopens the DNS sockets of running containers (the
namespaces outlive the daemon: they are bind mounts under the exec root).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from dockyard import errors
from dockyard.daemon.links import parse
from dockyard.daemon.record import ContainerRecord

log = logging.getLogger("dockyard.networking")
SETUP_FAILED = "failed to set up container networking: "  # dockerd 28's prefix of start errors


class Networking:
    def __init__(self, manager: Any, exec_root: Path,
                 emit: Callable[[str, str, str, dict[str, str]], Any] | None = None) -> None:
        self.mgr = manager  # dockyard.network.manager.NetworkManager, or None (none/host only)
        self.emit = emit  # EventBus.emit: network connect/disconnect events, as dockerd's
        self._pending: dict[str, asyncio.Future[None]] = {}  # container id -> begin()'s 2nd half
        self.netns_dir = exec_root / "netns"
        self.dns: Any = None

    def netns_path(self, cid: str) -> str:
        return str(self.netns_dir / cid)

    def _dns_server(self) -> Any:
        if self.dns is None:
            from dockyard.network.dns import DnsServer
            mgr = self.mgr
            self.dns = DnsServer(lambda key, name: mgr.resolve(key, name),
                                 reverse=lambda key, ip: mgr.reverse(key, ip))
        return self.dns

    def desired(self, rec: ContainerRecord) -> dict[str, dict[str, Any]]:
        """The networks a start attaches, by name, in order (NetworkMode's first), each with
        its endpoint config (Aliases, IPAMConfig, MacAddress): create's NetworkingConfig plus
        what ``network connect`` added and minus what ``disconnect`` took while stopped."""
        return desired_networks(rec)

    async def setup(self, rec: ContainerRecord, etc_dir: Path) -> str | None:
        """:meth:`begin` and wait until the network is ready; on failure nothing is left."""
        path, ready = await self.begin(rec, etc_dir)
        try:
            await ready
        except BaseException:
            await self.teardown(rec)
            raise
        return path

    async def begin(self, rec: ContainerRecord, etc_dir: Path,
                    extra_hosts: tuple[str, ...] = ()) -> tuple[str | None, Awaitable[None]]:
        """The network step of a start, in two halves so that the second overlaps the
        runtime's create: returns the namespace for the runtime to join ("host", a path, or
        None for a new empty one) once it exists, and an awaitable that finishes when the
        veths, addresses, ports, /etc files and DNS are in place (await it before the
        runtime's start). On any failure, :meth:`teardown` (which first waits for the
        second half) removes everything. ``extra_hosts`` ("names:ip", legacy links') go into
        /etc/hosts before HostConfig.ExtraHosts."""
        mode = rec.host_config.get("NetworkMode") or "default"
        if mode == "host":
            return "host", _done()
        if mode == "none":
            return None, _done()
        if self.mgr is None:
            raise errors.Unavailable("bridge networking is unavailable on this daemon; use --network none|host")
        from dockyard.network.container import ContainerNetworkSpec, NetworkRequest
        from dockyard.network.netns import create_named
        from dockyard.network.portspec import from_port_bindings
        hc = rec.host_config
        wanted = desired_networks(rec)
        if not wanted:
            return None, _done()  # every network was disconnected while stopped: loopback only
        spec = ContainerNetworkSpec(
            container_id=rec.id, name=rec.name, hostname=rec.config.get("Hostname") or rec.id[:12],
            domainname=rec.config.get("Domainname") or "",
            networks=tuple(NetworkRequest(net, _start_aliases(rec, net, ep),
                                          ((ep.get("IPAMConfig") or {}).get("IPv4Address") or None),
                                          ep.get("MacAddress") or _legacy_mac(rec, net),
                                          _endpoint_links(ep))
                           for net, ep in wanted.items()),
            ports=tuple(from_port_bindings(_port_bindings(rec))),
            dns=tuple(hc.get("Dns") or ()), dns_search=tuple(hc.get("DnsSearch") or ()),
            dns_options=tuple(hc.get("DnsOptions") or ()),
            extra_hosts=(*extra_hosts, *(hc.get("ExtraHosts") or ())))  # legacy links' lines first
        for req in spec.networks:  # an unknown network fails the start before anything is made
            try:
                self.mgr.get("bridge" if req.network == "default" else req.network)
            except errors.DockyardError as e:
                raise type(e)(f"{SETUP_FAILED}{e}") from None
        self.netns_dir.mkdir(parents=True, exist_ok=True)
        path = self.netns_path(rec.id)
        await asyncio.get_running_loop().run_in_executor(None, create_named, path)
        task = asyncio.ensure_future(self._attach(rec, spec, path, etc_dir))
        self._pending[rec.id] = task
        return path, task

    async def _attach(self, rec: ContainerRecord, spec: Any, path: str, etc_dir: Path) -> None:
        from dockyard.network.container import attach
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        loop = asyncio.get_running_loop()
        try:
            cn = await loop.run_in_executor(None, attach, self.mgr, spec, path, host_resolv)
        except errors.DockyardError as e:  # same class (status), dockerd's wording
            raise type(e)(f"{SETUP_FAILED}{e}") from None
        rec.network_settings["SandboxKey"] = path
        rec.network_settings["Endpoints"] = [_endpoint_json(e, self._net_name(e.network_id))
                                             for e in cn.endpoints]
        rec.network_settings["Ports"] = [p.to_json() for p in cn.ports]
        rec.network_settings["EmbeddedDNS"] = cn.embedded_dns
        # the runtime bind-mounts these files; writing in place (same inode) is seen inside
        (etc_dir / "hosts").write_text(cn.hosts)
        (etc_dir / "resolv.conf").write_text(cn.resolv_conf)
        if cn.embedded_dns:
            from dockyard.network.dns import open_sockets
            udp, tcp = await loop.run_in_executor(None, open_sockets, path)
            await self._dns_server().add(rec.id, udp, tcp, upstreams=cn.dns_upstreams or None)
        for e in cn.endpoints:
            self._event("connect", rec, e.network_id)

    def create_warnings(self, hc: dict[str, Any]) -> list[str]:
        """Warnings for ``POST /containers/create``: ports published on 0.0.0.0."""
        mode = hc.get("NetworkMode") or "default"
        if self.mgr is None or mode in ("host", "none") or not hc.get("PortBindings"):
            return []
        from dockyard.network.portspec import from_port_bindings
        try:
            bindings = from_port_bindings(hc.get("PortBindings") or {})
        except errors.DockyardError:
            return []  # the start reports the bad binding
        return list(self.mgr.exposure_warnings("bridge" if mode == "default" else mode, bindings))

    def _event(self, action: str, rec: ContainerRecord, network_id: str) -> None:
        """dockerd's ``network connect|disconnect`` event: id of the network; attributes the
        container, the network's name and its driver."""
        if self.emit is None:
            return
        attrs = {"container": rec.id, "name": self._net_name(network_id), "type": "bridge"}
        with contextlib.suppress(errors.DockyardError):
            attrs["type"] = str(self.mgr.get(network_id).driver)
        self.emit("network", action, network_id, attrs)

    def _net_name(self, nid: str) -> str:
        with contextlib.suppress(errors.DockyardError):
            return str(self.mgr.get(nid).name)
        return nid

    async def teardown(self, rec: ContainerRecord, shared: bool = False) -> None:
        """Undo :meth:`begin`. ``shared``: other containers joined the namespace
        (``--network container:``) and keep it alive, so its veths are deleted explicitly."""
        mode = rec.host_config.get("NetworkMode") or "default"
        if mode in ("host", "none") or mode.startswith("container:") or self.mgr is None:
            return
        from dockyard.network.container import teardown
        pending = self._pending.pop(rec.id, None)
        if pending is not None:  # a start's second half still running: let it finish first
            with contextlib.suppress(BaseException):
                await pending
        if self.dns is not None:
            with contextlib.suppress(Exception):
                await self.dns.remove(rec.id)
        try:
            await asyncio.get_running_loop().run_in_executor(None, teardown, self.mgr, rec.id,
                                                             self.netns_path(rec.id), shared)
        except Exception:  # noqa: BLE001 - a stop must finish; the manager reconciles later
            log.exception("network teardown of %s", rec.id)
        for e in rec.network_settings.pop("Endpoints", None) or []:
            self._event("disconnect", rec, e["network"])
        rec.network_settings.pop("Ports", None)
        rec.network_settings.pop("SandboxKey", None)  # a stopped container has no namespace

    async def connect(self, rec: ContainerRecord, network_id: str, ep_cfg: dict[str, Any]) -> None:
        """``docker network connect``: a running container gets the endpoint now; any container
        keeps the network in its configuration, so each later start attaches it (docker-compose
        connects containers between create and start)."""
        if self.mgr is None:
            raise errors.NotFound(f"network {network_id} not found")
        mode = rec.host_config.get("NetworkMode") or "default"
        if mode in ("host", "none") or mode.startswith("container:"):
            raise errors.PermissionDenied(
                "container sharing network namespace with another container or host cannot be "
                "connected to any other network")
        net = self.mgr.get(network_id)
        if net.driver != "bridge":
            raise errors.PermissionDenied(f"container cannot be disconnected from host network or "
                                          f"connected to {net.driver} network")
        wanted = desired_networks(rec)
        if self._find(wanted, net) is not None:
            raise errors.PermissionDenied(f"endpoint with name {rec.name} already exists in network {net.name}")
        cfg = {k: ep_cfg[k] for k in ("Aliases", "IPAMConfig", "MacAddress", "Links", "DriverOpts")
               if ep_cfg.get(k)}
        links = _endpoint_links(cfg)  # a bad entry is refused now, not at the next start
        running = bool(rec.network_settings.get("SandboxKey")) and rec.status.value in ("running", "paused")
        if running:
            loop = asyncio.get_running_loop()
            ipam = cfg.get("IPAMConfig") or {}
            ep = await loop.run_in_executor(None, lambda: self.mgr.connect(
                net.id, rec.id, self.netns_path(rec.id), name=rec.name,
                aliases=tuple(cfg.get("Aliases") or ()), ip=ipam.get("IPv4Address") or None,
                mac=cfg.get("MacAddress") or None, links=links))
            rec.network_settings.setdefault("Endpoints", []).append(_endpoint_json(ep, net.name))
            self._event("connect", rec, net.id)
        _set_desired(rec, {**wanted, net.name: {**cfg, "NetworkID": net.id}})
        if running and not rec.network_settings.get("EmbeddedDNS"):  # started before DNS on the default bridge
            rec.network_settings["EmbeddedDNS"] = True
            await self.reattach_dns(rec)

    def _find(self, wanted: dict[str, dict[str, Any]], net: Any) -> str | None:
        """The key under which ``net`` is configured (by name, id or id prefix), if any."""
        for key, ep in wanted.items():
            if key in (net.name, net.id) or ep.get("NetworkID") == net.id:
                return key
            if key in ("default", "bridge") and net.name == "bridge":
                return key
            with contextlib.suppress(errors.DockyardError):
                if self.mgr.get(key).id == net.id:
                    return key
        return None

    async def disconnect(self, rec: ContainerRecord, network_id: str) -> None:
        if self.mgr is None:
            raise errors.NotFound(f"container {rec.id} is not connected to network {network_id}")
        net = self.mgr.get(network_id)
        wanted = desired_networks(rec)
        key = self._find(wanted, net)
        attached = any(e["network"] == net.id for e in rec.network_settings.get("Endpoints") or [])
        if key is None and not attached:
            raise errors.NotFound(f"container {rec.id[:12]} is not connected to network {net.name}")
        if attached:
            await asyncio.get_running_loop().run_in_executor(None, self.mgr.disconnect, net.id, rec.id)
            rec.network_settings["Endpoints"] = [e for e in rec.network_settings.get("Endpoints") or []
                                                 if e["network"] != net.id]
            self._event("disconnect", rec, net.id)
        if key is not None:
            _set_desired(rec, {k: v for k, v in wanted.items() if k != key})

    async def reattach_dns(self, rec: ContainerRecord) -> None:
        if not rec.network_settings.get("EmbeddedDNS") or self.mgr is None:
            return
        from dockyard.network.dns import open_sockets
        try:
            udp, tcp = await asyncio.get_running_loop().run_in_executor(None, open_sockets,
                                                                        self.netns_path(rec.id))
            await self._dns_server().add(rec.id, udp, tcp)
        except Exception:  # noqa: BLE001 - resolution degrades; the container keeps running
            log.exception("reopening the DNS of %s", rec.id)

    async def close(self, containers_left: int, instance: str) -> None:
        if self.dns is not None:
            await self.dns.close()
        # A secondary daemon (tests, acceptance runs: each with its own data root) that stops
        # with nothing left removes its bridges, so runs don't pile up subnets on the host.
        if self.mgr is not None and instance and containers_left == 0:
            user_nets = [n for n in self.mgr.list_networks() if n.name not in ("bridge", "host", "none")]
            if not user_nets:
                try:
                    await asyncio.get_running_loop().run_in_executor(None, self.mgr.purge)
                except Exception:  # noqa: BLE001
                    log.exception("removing this daemon's networks")


def _done() -> asyncio.Future[None]:
    f: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    f.set_result(None)
    return f


def _port_bindings(rec: ContainerRecord) -> dict[str, Any]:
    """HostConfig.PortBindings, plus with ``-P`` (PublishAllPorts) every exposed port (image
    EXPOSE, ``--expose``) that has no binding yet, on a random host port."""
    bindings = dict(rec.host_config.get("PortBindings") or {})
    if rec.host_config.get("PublishAllPorts"):
        for key in rec.config.get("ExposedPorts") or {}:
            k = key if "/" in key else f"{key}/tcp"
            if k not in bindings and key not in bindings:
                bindings[k] = [{"HostIp": "", "HostPort": ""}]
    return bindings


def _endpoint_json(e: Any, net_name: str) -> dict[str, Any]:
    return {"network": e.network_id, "ip": e.ip, "prefixlen": e.prefixlen, "mac": e.mac,
            "gateway": e.gateway or "", "endpoint": e.id, "name": net_name, "aliases": list(e.aliases)}


def _start_aliases(rec: ContainerRecord, net: str, ep: dict[str, Any]) -> tuple[str, ...]:
    """The endpoint's aliases plus, on a user-defined network, a hostname the user chose (compose's
    ``hostname:``): dockerd makes it resolvable there too (an alias up to 20.10, a DNSName after)."""
    aliases = tuple(ep.get("Aliases") or ())
    host = rec.config.get("Hostname") or ""
    if net != "bridge" and host and host not in (rec.name, rec.id[:12]) and host not in aliases:
        aliases += (host,)
    return aliases


def _endpoint_links(ep: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """An endpoint config's ``Links`` ("name:alias", what the docker CLI sends for ``--link`` with
    a user-defined ``--network``) as (alias, name) pairs for the embedded DNS (moby's
    buildJoinOptions: libnetwork's per-endpoint aliases; no env vars or hosts lines there)."""
    out = []
    for entry in ep.get("Links") or ():
        name, alias = parse(str(entry))
        out.append((alias, name))
    return tuple(out)


def _legacy_mac(rec: ContainerRecord, net: str) -> str | None:
    """The deprecated container-wide ``Config.MacAddress`` (docker-py and so compose's
    ``mac_address:`` still send it), which dockerd applies to the primary network's endpoint."""
    mode = rec.host_config.get("NetworkMode") or "default"
    return (rec.config.get("MacAddress") or None) if net == ("bridge" if mode == "default" else mode) else None


def desired_networks(rec: ContainerRecord) -> dict[str, dict[str, Any]]:
    """See :meth:`Networking.desired`. Stored under ``network_settings["_request"]``: as
    create's ``EndpointsConfig`` until a connect/disconnect rewrites it (``Desired`` then)."""
    req = rec.network_settings.get("_request") or {}
    if "Desired" in req:
        return dict(req["Desired"])
    mode = rec.host_config.get("NetworkMode") or "default"
    if mode in ("host", "none") or mode.startswith("container:"):
        return {}
    eps = dict(req.get("EndpointsConfig") or {})
    first = "bridge" if mode == "default" else mode
    cfg = eps.pop(mode, None) or eps.pop(first, None) or {}
    return {first: cfg, **eps}


def network_refs(rec: ContainerRecord) -> list[str]:
    """Names and ids of the networks a container is on (or will be at its next start): what
    ``docker ps --filter network=`` matches; the NetworkMode for host/none."""
    mode = rec.host_config.get("NetworkMode") or "default"
    refs = [mode]
    for e in rec.network_settings.get("Endpoints") or []:
        refs += [e["name"], e["network"]]
    for name, cfg in desired_networks(rec).items():
        refs += [name, cfg.get("NetworkID") or name]
    return list(dict.fromkeys(refs))


def _set_desired(rec: ContainerRecord, wanted: dict[str, dict[str, Any]]) -> None:
    req = dict(rec.network_settings.get("_request") or {})
    req["Desired"] = wanted
    rec.network_settings["_request"] = req


def open_manager(data_root: Path, instance: str = "", default_bind_ip: str = "",
                 default_network_opts: dict[str, dict[str, str]] | None = None) -> Any:
    """The NetworkManager, restored and reconciled later by the container service; None if
    the network package can't work here (the daemon then offers none/host only)."""
    try:
        from dockyard.network.manager import ManagerConfig, NetworkManager
        mgr = NetworkManager(data_root / "network", ManagerConfig(
            instance=instance, default_bind_ip=default_bind_ip,
            default_network_opts=default_network_opts or {}))
        mgr.restore()
        mgr.ensure_predefined()
        return mgr
    except Exception:  # noqa: BLE001 - degrade to none/host networking, loudly
        log.exception("bridge networking is unavailable")
        return None
