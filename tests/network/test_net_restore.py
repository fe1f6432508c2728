"""Restore after a host reboot (kernel objects gone, records kept) and concurrent connects."""

from __future__ import annotations

import subprocess
import threading

import pytest

from dockyard.network import bridge, rules
from dockyard.network.manager import NetworkManager, NetworkSpec

pytestmark = pytest.mark.root


def test_restore_rebuilds_bridges_and_rules(manager, new_container):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="rb", subnet="10.213.70.0/24"))
    manager.close()
    # "reboot": every kernel object is gone, the records stay
    subprocess.run(["ip", "link", "del", net.bridge], check=True)
    rules.teardown()
    mgr = NetworkManager(manager.state_dir, manager.config)
    try:
        assert mgr.restore() == []
        assert "10.213.70.1/24" in subprocess.run(["ip", "-o", "addr", "show", net.bridge],
                                                  capture_output=True, text=True).stdout
        assert set(rules.tables_present()) == {"ip dockyard", "inet dockyard"}
        c = new_container()
        ep = mgr.connect(net.id, "c" * 64, c.netns, name="c")
        c.run("busybox", "ping", "-c", "1", "-W", "2", "10.213.70.1")
        assert ep.ip == "10.213.70.2"
        mgr.release_container("c" * 64)
        mgr.remove_network(net.id)
    finally:
        mgr.close()


def test_concurrent_connects_get_distinct_addresses(manager, new_container):  # type: ignore[no-untyped-def]
    net = manager.create_network(NetworkSpec(name="cc", subnet="10.213.71.0/24"))
    cs = [new_container() for _ in range(8)]
    got: dict[int, str] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            got[i] = manager.connect(net.id, f"{i:064x}", cs[i].netns, name=f"c{i}").ip
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(got.values())) == 8
    assert len([n for n, k in bridge.our_links(manager._ipr) if k == "veth"]) == 8
    for i in range(8):
        assert got[i] in cs[i].run("ip", "-o", "addr", "show", "eth0").stdout


def test_two_instances_do_not_touch_each_other(manager, new_container, tmp_path):  # type: ignore[no-untyped-def]
    import dataclasses

    from dockyard.network.portspec import parse_port_spec

    other = NetworkManager(tmp_path / "other", dataclasses.replace(manager.config, instance="t1"))
    try:
        other.ensure_predefined()
        manager.ensure_predefined()
        names = {n.name: n for n in other.list_networks()}
        assert names["bridge"].bridge == "dyt1-default"
        # each instance avoids the other's subnets through the host's routes
        mine = manager.get("bridge")
        assert mine.pool.subnet != names["bridge"].pool.subnet
        onet = other.create_network(NetworkSpec(name="o", subnet="10.213.77.0/24"))
        assert onet.bridge.startswith("dyt1-") and len(onet.bridge) <= 15
        c = new_container()
        ep = other.connect(onet.id, "c" * 64, c.netns, name="c")
        assert ep.host_ifname.startswith("dyt1v")
        other.publish("c" * 64, ep, parse_port_spec("80"))
        assert set(rules.tables_present("dockyard_t1")) == {"ip dockyard_t1", "inet dockyard_t1"}
        # the main instance's reconcile and rule rewrites leave the other's objects alone
        assert manager.reconcile([]) == []
        assert {n for n, _ in bridge.our_links(manager._ipr, other.naming)} == {
            "dyt1-default", onet.bridge, ep.host_ifname}
        assert [o for o, _ in rules.port_rules("dockyard_t1")] == ["c" * 64]
        other.release_container("c" * 64)
        other.remove_network(onet.id)
    finally:
        other.purge()
        other.close()
    assert bridge.our_links(manager._ipr, other.naming) == []
    assert rules.tables_present("dockyard_t1") == []
