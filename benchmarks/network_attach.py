"""How much container networking adds to a container start, measured side by side.

Runs entirely in a private network namespace (the host is untouched). For N iterations:
a process in a new netns is created (outside the timing), then each variant is timed:

- ``connect``     NetworkManager.connect (veth with the peer created in the target netns,
                  address/route/lo set from a setns'ed thread, hairpin) + disconnect excluded
- ``connect+dns`` the above plus the embedded DNS sockets (open_sockets)
- ``publish``     NetworkManager.publish of one port (bind + one nft rule add)
- ``unpublish``   NetworkManager.unpublish (nft rule delete: waits for an RCU grace period)
- ``disconnect``  NetworkManager.disconnect, with the container running (netlink delete of
                  the veth, which waits for RCU) and after it exited (the kernel deletes the
                  pair with the namespace, nothing to wait for)
- ``container.setup/teardown`` the engine's one-call step: a named namespace (bind mount)
                  plus connect and the /etc files; teardown unmounts it (the kernel then
                  deletes the veth) and releases the address
- ``pyroute2 netns=`` for comparison: IPRoute(netns=path) open+close, the forking way

Usage (root): .venv/bin/python benchmarks/network_attach.py [N]

Seen on the 2-core dev machine (medians, N=40, other jobs running): connect 4.5-9 ms, dns
sockets 0.2-0.4 ms, publish 0.9-1.9 ms, unpublish 10-13 ms, disconnect of a running container
21-29 ms, of an exited one 0.7 ms; container.setup 6.6 ms (named namespace included),
container.teardown 0.6 ms; pyroute2 IPRoute(netns=) alone 8-15 ms.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pyroute2 import IPRoute

from dockyard.network import container, dns, netns
from dockyard.network.manager import ManagerConfig, NetworkManager, NetworkSpec
from dockyard.network.portspec import parse_port_spec


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    netns.unshare_net()  # this thread (the only one) now lives in a private namespace
    times: dict[str, list[float]] = {}

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        times.setdefault(name, []).append((time.perf_counter() - t) * 1000)

    with tempfile.TemporaryDirectory() as state:
        mgr = NetworkManager(state, ManagerConfig())
        net = mgr.create_network(NetworkSpec(name="bench", subnet="10.213.200.0/24"))
        try:
            for i in range(n):
                p = subprocess.Popen(["unshare", "--net", "sleep", "30"])
                time.sleep(0.02)
                path = f"/proc/{p.pid}/ns/net"
                cid = f"{i:064x}"
                try:
                    with timed("connect"):
                        ep = mgr.connect(net.id, cid, path, name=f"c{i}")
                    with timed("dns sockets"):
                        u, t = dns.open_sockets(path)
                    u.close()
                    t.close()
                    with timed("publish"):
                        mgr.publish(cid, ep, parse_port_spec("80"))
                    with timed("unpublish"):
                        mgr.unpublish(cid)
                    if i % 2:
                        with timed("disconnect (running)"):
                            mgr.disconnect(net.id, cid)
                    else:  # the usual stop path: the container's processes are gone
                        p.kill()
                        p.wait()
                        with timed("disconnect (exited)"):
                            mgr.disconnect(net.id, cid)
                    if i < 10 and p.poll() is None:
                        with timed("pyroute2 IPRoute(netns=)"):
                            IPRoute(netns=path).close()
                finally:
                    p.kill()
                    p.wait()
            # the engine's one-call step: named namespace + connect (+ teardown)
            for i in range(n):
                cid = f"{i + n:064x}"
                ns = f"{state}/ns-{i}"
                spec = container.ContainerNetworkSpec(cid, f"s{i}", "h", (container.NetworkRequest("bench"),))
                with timed("container.setup"):
                    container.setup(mgr, spec, ns, "nameserver 192.0.2.53\n")
                with timed("container.teardown"):
                    container.teardown(mgr, cid, ns)
        finally:
            mgr.remove_network(net.id)
            mgr.close()
    print(f"{'step':28} {'median ms':>10} {'min':>7} {'max':>7}  (n)")
    for name, ts in times.items():
        print(f"{name:28} {statistics.median(ts):10.2f} {min(ts):7.2f} {max(ts):7.2f}  ({len(ts)})")


if __name__ == "__main__":
    main()
