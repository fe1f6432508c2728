"""Fixtures for the network tests: everything happens in namespaces the tests create.

``netns_host`` moves the test's (main) thread into a fresh network namespace that plays the
host, and moves it back afterwards, so bridges, nft tables, iptables rules and port sockets
never touch the real host. Threads started meanwhile inherit that namespace. ``containers``
starts ``unshare --net sleep`` processes whose namespaces play containers. After each test the
fixtures check that nothing of ours is left in the test namespace and none in the real host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nethelpers import Container

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def socket_fds() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                out.add(fd)
        except OSError:
            pass
    return out


def nsfs_mounts(under: Path | None = None) -> list[str]:
    """Mount points of namespace files (named namespaces), only those below ``under`` if given.

    Filtering by this session's temp root keeps the check about our own leaks: other daemons
    (or test sessions) on the machine may mount and unmount namespaces meanwhile."""
    with open("/proc/self/mountinfo") as f:
        points = sorted(ln.split()[4] for ln in f if " - nsfs " in ln)
    if under is None:
        return points
    prefix = str(under).rstrip("/") + "/"
    return [p for p in points if p.startswith(prefix)]


def ours_in_current_netns() -> list[str]:
    """Names of links, nft tables and iptables rules of ours in the thread's namespace."""
    from dockyard.network import bridge, fwpolicy, rules
    from dockyard.network.rtnl import Rtnl

    with Rtnl() as nl:
        left = [name for name, _ in bridge.our_links(nl)]
    return left + rules.tables_present() + fwpolicy.our_rules()


@pytest.fixture
def netns_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from pyroute2 import IPRoute

    from dockyard.network import netns

    base = tmp_path_factory.getbasetemp()
    host_before = ours_in_current_netns()
    nsfs_before = nsfs_mounts(base)
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    sockets_before = socket_fds()
    netns.unshare_net()
    try:
        with IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        yield "/proc/thread-self/ns/net"
        # veths of containers that exited are deleted by a kernel worker, asynchronously;
        # a real leak (its peer namespace still alive) does not go away
        for _ in range(400):
            left = ours_in_current_netns()
            if not left:
                break
            time.sleep(0.005)
    finally:
        netns.setns(saved)
        os.close(saved)
    assert left == [], f"left behind in the test namespace: {left}"
    assert socket_fds() - sockets_before == set(), "sockets left open"
    assert ours_in_current_netns() == host_before, "the real host's namespace was touched"
    assert nsfs_mounts(base) == nsfs_before, "a named network namespace was left mounted"


@pytest.fixture
def containers(netns_host: str) -> Iterator[list[Container]]:
    """A factory list: ``containers.append`` is done by ``new_container``; all are killed."""
    made: list[Container] = []
    yield made
    for c in made:
        if c.proc.poll() is None:
            c.proc.kill()
        c.proc.wait()


@pytest.fixture
def new_container(containers: list[Container]):  # type: ignore[no-untyped-def]
    def make() -> Container:
        mine = os.stat("/proc/thread-self/ns/net").st_ino
        proc = subprocess.Popen(["unshare", "--net", "sleep", "300"])
        c = Container(proc)
        containers.append(c)
        for _ in range(500):  # until unshare has switched before exec'ing sleep
            try:
                if os.stat(c.netns).st_ino != mine:
                    return c
            except FileNotFoundError:
                pass
            time.sleep(0.002)
        raise AssertionError("container namespace did not appear")

    return make


@pytest.fixture
def manager(netns_host: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A NetworkManager in the test namespace; its finalizer removes every network it made."""
    from dockyard.network.ipam import IPv4Network
    from dockyard.network.manager import ManagerConfig, NetworkManager

    cfg = ManagerConfig(default_pools=tuple(IPv4Network("10.213.0.0/16").subnets(new_prefix=24)))
    mgr = NetworkManager(tmp_path / "netstate", cfg)
    yield mgr
    try:
        mgr.purge()
    finally:
        mgr.close()


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[str]]]:
    made: list[subprocess.Popen[str]] = []
    yield made
    for p in made:
        p.kill()
        p.wait()


@pytest.fixture
def outside(new_container):  # type: ignore[no-untyped-def]
    """A namespace beyond the host's 'uplink' tout0 (10.250.0.1 here, 10.250.0.2 there)."""
    o: Container = new_container()
    subprocess.run(["ip", "link", "add", "tout0", "type", "veth", "peer", "name", "eth0", "netns", str(o.proc.pid)], check=True)
    subprocess.run(["ip", "addr", "add", "10.250.0.1/24", "dev", "tout0"], check=True)
    subprocess.run(["ip", "link", "set", "tout0", "up"], check=True)
    o.run("ip", "addr", "add", "10.250.0.2/24", "dev", "eth0")
    o.run("ip", "link", "set", "eth0", "up")
    o.run("ip", "link", "set", "lo", "up")
    return o  # tout0 dies with the test namespace
