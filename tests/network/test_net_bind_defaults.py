"""The default host address of published ports (dockerd's --ip, host_binding_ipv4), the
0.0.0.0 warning, default network options, and the daemon flags that set them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.daemon.config import parse_args
from dockyard.errors import InvalidArgument
from dockyard.network.ipam import IPv4Network
from dockyard.network.manager import ManagerConfig, NetworkManager, NetworkSpec
from dockyard.network.portspec import parse_port_spec


@pytest.fixture
def loopback_manager(netns_host: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = ManagerConfig(default_pools=tuple(IPv4Network("10.213.0.0/16").subnets(new_prefix=24)),
                        default_bind_ip="127.0.0.1",
                        default_network_opts={"bridge": {"com.docker.network.driver.mtu": "1400"}})
    mgr = NetworkManager(tmp_path / "netstate", cfg)
    yield mgr
    try:
        mgr.purge()
    finally:
        mgr.close()


@pytest.mark.root
def test_daemon_ip_binds_default_bridge_ports_to_loopback(loopback_manager, new_container):  # type: ignore[no-untyped-def]
    mgr = loopback_manager
    mgr.ensure_predefined()
    c = new_container()
    ep = mgr.connect("bridge", "a" * 64, c.netns, name="a")
    ports = mgr.publish("a" * 64, ep, parse_port_spec("80") + parse_port_spec("0.0.0.0::81"))
    assert sorted((p.container_port, p.host_ip) for p in ports) == [(80, "127.0.0.1"), (81, "0.0.0.0")]
    assert mgr.exposure_warnings("bridge", parse_port_spec("8080:80")) == []
    warn = mgr.exposure_warnings("bridge", parse_port_spec("0.0.0.0:8080:80"))
    assert len(warn) == 1 and "8080->80/tcp" in warn[0] and "firewall" in warn[0]
    mgr.unpublish("a" * 64)
    mgr.disconnect("bridge", "a" * 64)


@pytest.mark.root
def test_user_networks_get_default_options_but_not_the_daemon_ip(loopback_manager):  # type: ignore[no-untyped-def]
    mgr = loopback_manager
    plain = mgr.create_network(NetworkSpec(name="plain"))
    assert plain.options["com.docker.network.driver.mtu"] == "1400" and plain.mtu == 1400
    own = mgr.create_network(NetworkSpec(name="own", options={"com.docker.network.driver.mtu": "1300"}))
    assert own.mtu == 1300
    # docker's --ip is about the default bridge; a user network binds 0.0.0.0 unless told
    assert len(mgr.exposure_warnings("plain", parse_port_spec("8080:80/udp"))) == 1
    local = mgr.create_network(NetworkSpec(
        name="local", options={"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"}))
    assert mgr.exposure_warnings(local.id, parse_port_spec("8080:80")) == []
    internal = mgr.create_network(NetworkSpec(name="int", internal=True))
    assert mgr.exposure_warnings(internal.name, parse_port_spec("8080:80")) == []
    assert mgr.exposure_warnings("no-such-network", parse_port_spec("8080:80")) == []


def test_config_ip_and_default_network_opts(tmp_path: Path) -> None:
    base = ["--data-root", str(tmp_path / "d")]
    assert parse_args(base).default_bind_ip == ""
    assert parse_args([*base, "--ip", "127.0.0.1"]).default_bind_ip == "127.0.0.1"
    assert parse_args([*base, "--ip", "0.0.0.0"]).default_bind_ip == ""
    f = tmp_path / "daemon.json"
    f.write_text(json.dumps({"ip": "127.0.0.1", "default-network-opts": {
        "bridge": {"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"}}}))
    cfg = parse_args([*base, "--config-file", str(f),
                      "--default-network-opt", "bridge=com.docker.network.driver.mtu=1400"])
    assert cfg.default_bind_ip == "127.0.0.1"
    assert cfg.default_network_opts == {"bridge": {"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
                                                   "com.docker.network.driver.mtu": "1400"}}


@pytest.mark.parametrize("argv, field", [
    (["--ip", "localhost"], "--ip"),
    (["--ip", "::1"], "--ip"),
    (["--default-network-opt", "bridge=mtu"], "--default-network-opt"),
    (["--default-network-opt", "nodriver"], "--default-network-opt"),
])
def test_config_bad_network_flags_name_the_flag(tmp_path: Path, argv: list[str], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        parse_args(["--data-root", str(tmp_path / "d"), *argv])


def test_config_bad_default_network_opts_in_file(tmp_path: Path) -> None:
    f = tmp_path / "daemon.json"
    f.write_text(json.dumps({"default-network-opts": {"bridge": "mtu=1400"}}))
    with pytest.raises(InvalidArgument, match="default-network-opts"):
        parse_args(["--data-root", str(tmp_path / "d"), "--config-file", str(f)])
