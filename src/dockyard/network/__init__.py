"""Container networking: bridge networks, IPAM, published ports, embedded DNS, /etc files.

The engine uses one :class:`~dockyard.network.manager.NetworkManager` (synchronous, thread-safe:
call it from a worker thread of the daemon, which lives in the host's network namespace) and
one :class:`~dockyard.network.dns.DnsServer` on its asyncio loop.

Daemon start::

    from dockyard.network.manager import NetworkManager, NetworkSpec
    mgr = NetworkManager(data_root / "network")   # records only, no kernel change
    mgr.restore()                                 # bridges, nft tables, port sockets back
    mgr.ensure_predefined()                       # "bridge" (dockyard0), "host", "none"
    mgr.reconcile(live_container_ids)             # remove what dead containers left behind
    dns_server = DnsServer(mgr.resolve, reverse=mgr.reverse)   # upstreams: host resolv.conf

A second daemon on the same host (tests, the acceptance scripts' private daemon) must pass
``ManagerConfig(instance="t1")`` (1-3 of [a-z0-9]): its bridges, veths, nft tables and
iptables rules then get names of their own (:mod:`~dockyard.network.naming`), so neither
daemon's reconcile touches the other's; ``mgr.purge()`` removes all of an instance's objects
and records (test teardown, uninstall).

After a daemon restart, the DNS sockets of running containers are gone with the old process:
for each running bridge container, ``open_sockets`` + ``add`` again.

``docker network create/rm/ls/inspect``::

    net = mgr.create_network(NetworkSpec(name, subnet=..., gateway=..., ip_range=...,
                                         internal=..., options={...}, labels={...}))
    mgr.remove_network(ref); mgr.list_networks(); mgr.get(ref)   # ref: id, name or id prefix
    # Network: id, name, driver, created, bridge, pool (subnet, gateway, ip_range), internal,
    #          options, labels, endpoints {container_id: Endpoint(ip, prefixlen, mac, ...)}

Container start, the simple way: ``container.setup(mgr, ContainerNetworkSpec(...), netns_path,
host_resolv_text)`` creates a named namespace at ``netns_path`` (the runtime joins it by path),
connects, publishes and returns the /etc files' text; ``container.teardown(mgr, cid,
netns_path)`` undoes it. The engine splits it (``daemon.networking.Networking.begin``):
``netns.create_named`` first, then ``container.attach`` runs while the runtime creates the
container in that namespace, and is awaited before the runtime's start. The pieces it is made of, for other flows (``docker network
connect`` on a running container)::

    ep = mgr.connect(net_ref, cid, f"/proc/{pid}/ns/net", name=cname, aliases=(...),
                     ip=None, mac=None)          # veth, eth<n>, MAC 02:42:<ip>, route, lo up
    ports = mgr.publish(cid, ep, bindings)       # bindings from portspec.from_port_bindings(
                                                 #   HostConfig.PortBindings) + publish_all(-P)
    udp, tcp = dns.open_sockets(netns_path)      # every bridge container (docker: user networks)
    await dns_server.add(cid, udp, tcp, upstreams=[(ip, 53) ...] or None)   # --dns
    hosts = etcfiles.hosts_file(hostname, [ep.ip], extra_hosts=..., host_gateway=mgr.host_gateway_ip())
    resolv = etcfiles.resolv_conf(open("/etc/resolv.conf").read(), embedded_dns=..., dns=..., ...)
    hostname_text = etcfiles.hostname_file(hostname)

Container stop (best after its processes are gone: the kernel then has removed the veth with
the namespace, and our netlink delete, 10-25 ms, is skipped): ``await dns_server.remove(cid)``
then ``mgr.release_container(cid)`` (unpublish + disconnect everywhere). ``docker network
connect/disconnect`` on a running container: ``mgr.connect``/``mgr.disconnect``.

Publishing defaults: ``ManagerConfig(default_bind_ip="127.0.0.1")`` (dockerd's ``--ip``) is
where ports of the default bridge bind when ``-p`` names no address; a network's
``com.docker.network.bridge.host_binding_ipv4`` option does it per network;
``default_network_opts`` (``--default-network-opt``) are options new networks get.
``mgr.exposure_warnings(net_ref, bindings)`` says which would listen on 0.0.0.0 (the create
warning). ``netstats.container_networks(pid, mode)`` gives ``docker stats``' per-interface
counters from ``/proc/<pid>/net/dev``.

Without kernel NAT (``ManagerConfig(port_nat=False)``), published ports are served by
``proxy.UserlandProxy`` on the daemon's loop: ``await proxy.serve(cid, mgr.proxy_sockets(cid))``
after publish, ``await proxy.stop(cid)`` before unpublish.

Errors are the project's vocabulary (:mod:`dockyard.errors`) with docker's messages: Conflict
"Bind for 0.0.0.0:8080 failed: port is already allocated", Conflict "Pool overlaps with other
one on this address space", AlreadyExists "network with name x already exists",
InvalidArgument for bad -p specs ("invalid hostPort: 70000") and options, PermissionDenied for
removing a predefined network, NotFound for unknown networks.

Modules: ``container`` (the one-call start/stop step), ``manager`` (the facade), ``model``
(records), ``store`` (atomic JSON, on-disk layout), ``ipam``, ``bridge`` (netlink),
``ifioctl`` (in-namespace interface setup), ``netns`` (one-shot setns threads, named
namespaces), ``rules`` + ``nft`` (our nftables tables), ``portspec`` + ``portmap``
(publishing), ``proxy`` (userland proxy fallback), ``fwpolicy`` (iptables FORWARD DROP of a
co-resident dockerd), ``dns`` + ``dnswire`` (embedded DNS), ``etcfiles`` (/etc files),
``netstats`` (traffic counters).
IPv4 only; drivers: bridge, host and null (records only).
"""
